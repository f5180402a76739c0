/* SPDX-License-Identifier: MIT */
/* dataset.h: writing a dataset's label set into the db, shared by the
 * ingest tools (sfc-ingest for VOC layout, sfc-coco for COCO files). */
#ifndef SFC_DATASET_H
#define SFC_DATASET_H

#include <stdint.h>
#include <stdio.h>

#include "db.h"

/* The classes table must hold exactly names[0..n) for ids 0..n-1; an
 * empty table gets them. Classes that differ are an error naming the db
 * and source ("one db holds one dataset"). Joins the open transaction. */
int sfc_dataset_put_classes(struct sfc_db *db, char *const *names, int n,
                            const char *source);
/* 0 if the db's classes are names[0..n) or the table is empty, else -1
 * with the same message; reads only (for checks before any write). */
int sfc_dataset_check_classes(struct sfc_db *db, char *const *names, int n,
                              const char *source);

/* Writing images, their labels and split lists inside the ingest's one
 * transaction (prepared statements kept in the writer). */
struct sfc_dataset_writer {
    struct sfc_db *db;
    struct sqlite3_stmt *ins_img, *del_lab, *ins_lab, *ins_split;
};
/* 0, or -1 after sfc_error; the writer is released either way by
 * sfc_dataset_writer_release. */
int sfc_dataset_writer_open(struct sfc_dataset_writer *w, struct sfc_db *db);
void sfc_dataset_writer_release(struct sfc_dataset_writer *w);
/* Inserts or updates image `id` (size, image path, mask path or NULL) and
 * replaces its labels by the classes k in 1..ncls-1 with present[k]. */
int sfc_dataset_put_image(struct sfc_dataset_writer *w, const char *id,
                          int width, int height, const char *path,
                          const char *mask, const uint8_t *present, int ncls);
/* Empties split `split` (pos 0) and puts `id` at position pos. */
int sfc_dataset_split_clear(struct sfc_dataset_writer *w, const char *split);
int sfc_dataset_split_add(struct sfc_dataset_writer *w, const char *split,
                          const char *id, long pos);

/* The whole of an ingest (sfc-ingest, sfc-coco). One image: */
struct sfc_dataset_image {
    const char *id, *path, *mask; /* mask NULL: none */
    int width, height;
    const uint8_t *present; /* [ncls]: present[k] for the classes 1.. */
};
/* One split: its ids in list order and its class counts [ncls]. */
struct sfc_dataset_split {
    const char *name;
    char *const *ids;
    long n;
    const int64_t *counts;
};
/* In one transaction of the db at dbpath (created if missing): the
 * classes names[0..ncls) (sfc_dataset_put_classes, source naming them in
 * an error), a run of `tool` with configuration cfg (JSON), every image
 * with its labels, each split's list (replacing the split) and class
 * counts, the run's end. Returns the run id, or -1 after sfc_error with
 * the db as it was. */
int64_t sfc_dataset_ingest(const char *dbpath, const char *tool,
                           const char *cfg, char *const *names, int ncls,
                           const char *source,
                           const struct sfc_dataset_image *im, long nim,
                           const struct sfc_dataset_split *sp, int nsplit);
/* The class table the ingest tools print: "id<TAB>name<TAB><split>..."
 * then a row per class 1..ncls-1 with its count in each split. */
void sfc_dataset_print_counts(FILE *fp, char *const *names, int ncls,
                              const struct sfc_dataset_split *sp,
                              int nsplit);

#endif
