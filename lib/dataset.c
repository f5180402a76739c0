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

int64_t sfc_dataset_ingest(const char *dbpath, const char *tool,
                           const char *cfg, char *const *names, int ncls,
                           const char *source,
                           const struct sfc_dataset_image *im, long nim,
                           const struct sfc_dataset_split *sp, int nsplit)
{
    struct sfc_db *db = sfc_db_open(dbpath, SFC_DB_CREATE);
    if (!db) return -1;
    if (sfc_db_begin(db)) {
        sfc_db_close(db);
        return -1;
    }
    int r = sfc_dataset_put_classes(db, names, ncls, source);
    int64_t run = r ? -1 : sfc_db_run_begin(db, tool, SFC_DB_NO_SEED, cfg);
    if (run < 0) r = -1;
    struct sfc_dataset_writer w = {0};
    if (r == 0 && sfc_dataset_writer_open(&w, db)) r = -1;
    for (long i = 0; r == 0 && i < nim; i++)
        r = sfc_dataset_put_image(&w, im[i].id, im[i].width, im[i].height,
                                  im[i].path, im[i].mask, im[i].present,
                                  ncls);
    for (int s = 0; r == 0 && s < nsplit; s++) {
        r = sfc_dataset_split_clear(&w, sp[s].name);
        for (long i = 0; r == 0 && i < sp[s].n; i++)
            r = sfc_dataset_split_add(&w, sp[s].name, sp[s].ids[i], i);
        if (r == 0)
            r = sfc_db_class_stats_write(db, 0, sp[s].name, sp[s].counts,
                                         NULL, ncls);
    }
    sfc_dataset_writer_release(&w);
    if (r == 0) r = sfc_db_run_end(db, run, SFC_RUN_OK);
    if (r == 0) r = sfc_db_commit(db);
    if (r) {
        sfc_db_rollback(db);
        run = -1;
    }
    sfc_db_close(db);
    return run;
}

void sfc_dataset_print_counts(FILE *fp, char *const *names, int ncls,
                              const struct sfc_dataset_split *sp, int nsplit)
{
    fprintf(fp, "id\tname");
    for (int s = 0; s < nsplit; s++) fprintf(fp, "\t%s", sp[s].name);
    fprintf(fp, "\n");
    for (int c = 1; c < ncls; c++) {
        fprintf(fp, "%d\t%s", c, names[c]);
        for (int s = 0; s < nsplit; s++)
            fprintf(fp, "\t%lld", (long long)sp[s].counts[c]);
        fprintf(fp, "\n");
    }
}
