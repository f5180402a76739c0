/* SPDX-License-Identifier: MIT */
/* dataset.c: the label set of a dataset in the db (see dataset.h). One db
 * holds one dataset: its classes table is written once, and any later
 * ingest must bring the same names for the same ids. */
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "dataset.h"
#include "err.h"

int sfc_dataset_check_classes(struct sfc_db *db, char *const *names, int n,
                              const char *source)
{
    int64_t have = 0;
    if (sfc_db_query_int64(db, &have, "SELECT count(*) FROM classes", NULL) <
        0)
        return -1;
    if (have == 0) return 0;
    int64_t same = 0;
    for (int c = 0; c < n; c++) {
        int64_t k = 0;
        if (sfc_db_query_int64(db, &k, "SELECT count(*) FROM classes WHERE "
                               "id = ? AND name = ?", "is", c, names[c]) < 0)
            return -1;
        same += k;
    }
    if (have != n || same != n)
        return sfc_error(db->path, "its %lld classes differ from the %d of "
                         "'%s' (one db holds one dataset)", (long long)have,
                         n, source);
    return 0;
}

int sfc_dataset_put_classes(struct sfc_db *db, char *const *names, int n,
                            const char *source)
{
    int64_t have = 0;
    if (sfc_db_query_int64(db, &have, "SELECT count(*) FROM classes", NULL) <
        0)
        return -1;
    if (have)
        return sfc_dataset_check_classes(db, names, n, source);
    for (int c = 0; c < n; c++)
        if (sfc_db_execv(db, "INSERT INTO classes (id, name) VALUES (?, ?)",
                         "is", c, names[c]))
            return -1;
    return 0;
}

int sfc_dataset_writer_open(struct sfc_dataset_writer *w, struct sfc_db *db)
{
    w->db = db;
    w->ins_img = sfc_db_prepare(
        db, "INSERT INTO images (id, width, height, path, mask) VALUES (?, "
            "?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET width = "
            "excluded.width, height = excluded.height, path = excluded.path, "
            "mask = excluded.mask");
    w->del_lab = sfc_db_prepare(db, "DELETE FROM image_labels WHERE image = ?");
    w->ins_lab = sfc_db_prepare(
        db, "INSERT INTO image_labels (image, class) VALUES (?, ?)");
    w->ins_split = sfc_db_prepare(
        db, "INSERT INTO image_splits (split, image, pos) VALUES (?, ?, ?)");
    return w->ins_img && w->del_lab && w->ins_lab && w->ins_split ? 0 : -1;
}

void sfc_dataset_writer_release(struct sfc_dataset_writer *w)
{
    sqlite3_finalize(w->ins_img);
    sqlite3_finalize(w->del_lab);
    sqlite3_finalize(w->ins_lab);
    sqlite3_finalize(w->ins_split);
    w->ins_img = w->del_lab = w->ins_lab = w->ins_split = NULL;
}

int sfc_dataset_put_image(struct sfc_dataset_writer *w, const char *id,
                          int width, int height, const char *path,
                          const char *mask, const uint8_t *present, int ncls)
{
    if (sfc_db_bind(w->db, w->ins_img, "siiss", id, width, height, path,
                    mask) ||
        sfc_db_step(w->db, w->ins_img) < 0 ||
        sfc_db_bind(w->db, w->del_lab, "s", id) ||
        sfc_db_step(w->db, w->del_lab) < 0)
        return -1;
    for (int k = 1; k < ncls; k++)
        if (present[k] && (sfc_db_bind(w->db, w->ins_lab, "si", id, k) ||
                           sfc_db_step(w->db, w->ins_lab) < 0))
            return -1;
    return 0;
}

int sfc_dataset_split_clear(struct sfc_dataset_writer *w, const char *split)
{
    return sfc_db_execv(w->db, "DELETE FROM image_splits WHERE split = ?",
                        "s", split);
}

int sfc_dataset_split_add(struct sfc_dataset_writer *w, const char *split,
                          const char *id, long pos)
{
    return sfc_db_bind(w->db, w->ins_split, "ssI", split, id, (int64_t)pos) ||
                   sfc_db_step(w->db, w->ins_split) < 0
               ? -1
               : 0;
}
