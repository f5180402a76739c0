/* SPDX-License-Identifier: MIT */
/* dataset.h: writing a dataset's label set into the db, shared by the
 * ingest tools (sfc-ingest for VOC layout, sfc-coco for COCO files). */
#ifndef SFC_DATASET_H
#define SFC_DATASET_H

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

#endif
