/* SPDX-License-Identifier: MIT */
/* dataset.h: writing a dataset's label set into the db, shared by the
 * ingest tools (sfc-ingest for VOC layout, sfc-coco for COCO files). */
#ifndef SFC_DATASET_H
#define SFC_DATASET_H

#include <stdint.h>

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

#endif
