/* SPDX-License-Identifier: MIT */
/* db.h: the SQLite state of a run folder (schema: db/schema.sql, embedded
 * in the library at build time).
 *
 * A connection has foreign keys on, WAL journal, synchronous=NORMAL and a
 * busy timeout (SFC_DB_BUSY_MS), so several processes (make -j shards, a
 * trainer and a report) can read and write one db at once. Writes go in
 * transactions begun with BEGIN IMMEDIATE (sfc_db_begin), one per logical
 * change; a failed change is rolled back and leaves the db as it was.
 *
 * Every function returns 0 / a valid pointer / an id >= 1 on success and
 * -1 / NULL on failure with the error slot set to "<db path>: <problem>".
 * The raw handle (db->h) may be used for queries the helpers lack.
 *
 * Typed argument lists ("types" + varargs) bind statement parameters ?1,
 * ?2, ... in order: 'i' int, 'I' int64_t, 'd' double, 's' const char *
 * (NULL binds NULL), 'n' NULL (no argument consumed). */
#ifndef SFC_DB_H
#define SFC_DB_H

#include <sqlite3.h>
#include <stdint.h>

/* Must equal the PRAGMA user_version at the end of db/schema.sql. */
#define SFC_DB_SCHEMA_VERSION 1
/* How long a writer waits for another process's transaction. */
#define SFC_DB_BUSY_MS 60000
/* sfc_db_run_begin: the run draws no random numbers (seed stored NULL). */
#define SFC_DB_NO_SEED INT64_MIN

struct sfc_db {
    sqlite3 *h;
    char *path; /* as given to sfc_db_open; the domain of every error */
};

enum sfc_db_open_flags {
    SFC_DB_CREATE = 1 << 0 /* create the file and the schema if missing */
};

/* Open a db. A missing file is an error unless SFC_DB_CREATE; a new
 * (empty) db gets the schema. A db whose user_version differs from
 * SFC_DB_SCHEMA_VERSION, or a non-empty file that is not an sfc db, is an
 * error. Two processes creating the same db at once is safe. */
struct sfc_db *sfc_db_open(const char *path, unsigned flags);
/* Rows mode (shards on other machines; README "Many machines"): when the
 * environment has SFC_DB_ROWS=FILE, sfc_db_open(path) does not write to
 * path at all. FILE (created with the schema if missing, rollback journal,
 * meant for one writer) receives every row the tool writes: runs and the
 * tables with a `run` column. The dataset tables (those without a `run`
 * column: classes, images, image_splits, image_labels) are read from
 * SFC_DB_SNAPSHOT (a file nobody changes, opened immutable, see
 * sfc_db_snapshot) or, when that is unset, from path opened read-only.
 * Reads of a `run` table see FILE's rows only, so the mode suits tools
 * that record results (sfc-cam, sfc-crf, sfc-irn infer, sfc-segtrain
 * predict, sfc-miou), not those resuming from earlier runs' rows.
 * db->path is FILE. The driver merges FILE with sfc_db_merge_rows. */

/* Write a consistent copy of db to out (VACUUM INTO, rollback journal),
 * for shards to read in rows mode. An existing out is kept as it is (it
 * may be open on other machines; it is never replaced): 0. */
int sfc_db_snapshot(struct sfc_db *db, const char *out);

struct sfc_db_merge_count {
    long runs;    /* runs rows added */
    long rows;    /* rows of the other tables added */
    long skipped; /* runs already in db (merged before) */
};

/* Inside an open transaction of db: add the runs of the rows-mode db
 * `rows` and every row of theirs in the tables with a `run` column, under
 * new run ids. A run equal in every field to one already in db was merged
 * before and is skipped with its rows, so merging a file twice changes
 * nothing. Adds to *count. Errors name the file. */
int sfc_db_merge_rows(struct sfc_db *db, const char *rows,
                      struct sfc_db_merge_count *count);

/* Close; accepts NULL. An open transaction is rolled back. */
void sfc_db_close(struct sfc_db *db);

/* The schema SQL compiled into the library (db/schema.sql). */
const char *sfc_db_schema_sql(void);

/* ---- transactions ---------------------------------------------------- */

/* BEGIN IMMEDIATE (takes the write lock now, waiting up to the busy
 * timeout). Transactions do not nest: beginning inside one is an error. */
int sfc_db_begin(struct sfc_db *db);
int sfc_db_commit(struct sfc_db *db);
/* Roll back the open transaction; a no-op without one. Keeps the error
 * slot as it was (so it can run on an error path). */
void sfc_db_rollback(struct sfc_db *db);
/* 1 inside a transaction, else 0. */
int sfc_db_in_transaction(const struct sfc_db *db);

/* ---- statements ------------------------------------------------------ */

/* Run SQL text (one or more statements, no parameters, rows ignored). */
int sfc_db_exec(struct sfc_db *db, const char *sql);
/* Run one statement with bound parameters to completion (rows ignored). */
int sfc_db_execv(struct sfc_db *db, const char *sql, const char *types, ...);

/* Prepare one statement; finalize it with sqlite3_finalize(). */
sqlite3_stmt *sfc_db_prepare(struct sfc_db *db, const char *sql);
/* Reset the statement, clear its bindings and bind the arguments; for
 * reusing one prepared INSERT over many rows. */
int sfc_db_bind(struct sfc_db *db, sqlite3_stmt *st, const char *types, ...);
/* Step: 1 = a row is ready, 0 = done, -1 = error (slot set). */
int sfc_db_step(struct sfc_db *db, sqlite3_stmt *st);

/* The first column of the first row of a query as an integer; *out is
 * left untouched and 1 returned when there is no row or it is NULL, 0 on
 * success, -1 on error. */
int sfc_db_query_int64(struct sfc_db *db, int64_t *out, const char *sql,
                       const char *types, ...);

/* ---- runs ------------------------------------------------------------ */

enum sfc_run_status { SFC_RUN_OK, SFC_RUN_FAILED };

/* Record the start of a run: tool name, seed (or SFC_DB_NO_SEED), options
 * as a JSON object (NULL = "{}"), SFC_VERSION, the start time and the
 * pid; status 'running'. Returns the run id (>= 1) or -1. Joins the open
 * transaction if there is one, else commits on its own. */
int64_t sfc_db_run_begin(struct sfc_db *db, const char *tool, int64_t seed,
                         const char *config_json);
/* Record the end time and status of a run. Joins an open transaction. */
int sfc_db_run_end(struct sfc_db *db, int64_t run, enum sfc_run_status st);

/* Die with the error slot's message after marking run failed (rolling
 * back an open transaction first): the one exit path of a tool whose run
 * has begun. db may be NULL (no run recorded). */
_Noreturn void sfc_db_run_die(struct sfc_db *db, int64_t run);

/* ---- dataset readers ------------------------------------------------- */

/* Class names indexed by id: (*names_out)[c] for c = 0..*n_out-1, n =
 * C + 1 (background included). The ids must be exactly 0..C, else an
 * error. Free with sfc_db_strv_free(names, n). */
int sfc_db_class_names(struct sfc_db *db, char ***names_out, int *n_out);
void sfc_db_strv_free(char **v, long n);

struct sfc_db_image {
    char *id;
    char *path;       /* image file */
    char *mask;       /* ground-truth label PNG, or NULL */
    int width, height;
    int nlabels;      /* foreground classes present */
    int *labels;      /* their ids, ascending */
};

/* The images of a split in list order, with their labels. A split with
 * no images is an error ("no split 'x'"). Free with sfc_db_images_free. */
int sfc_db_split_images(struct sfc_db *db, const char *split,
                        struct sfc_db_image **out, long *n_out);
/* One image by id; an unknown id is an error. Release with
 * sfc_db_image_release. */
int sfc_db_image_get(struct sfc_db *db, const char *id,
                     struct sfc_db_image *out);
void sfc_db_image_release(struct sfc_db_image *im);
void sfc_db_images_free(struct sfc_db_image *v, long n);

/* The split names present, sorted. Free with sfc_db_strv_free. */
int sfc_db_splits(struct sfc_db *db, char ***names_out, long *n_out);

/* N_c counted now from image_labels: counts[c] = number of images of the
 * split whose labels contain c, for c = 0..ncls-1 (counts[0] = 0). */
int sfc_db_class_counts(struct sfc_db *db, const char *split,
                        int64_t *counts, int ncls);

/* ---- class statistics ------------------------------------------------ */

enum sfc_class_group { SFC_GROUP_HEAD, SFC_GROUP_MIDDLE, SFC_GROUP_TAIL };
/* "head", "middle", "tail". */
const char *sfc_class_group_name(enum sfc_class_group g);
/* Groups of classes 1..ncls-1 by rank of counts[c] (descending, ties by
 * ascending id): rank r of n = ncls - 1 classes is head if 3r < n, middle
 * if 3r < 2n, else tail. grp_out[0] (background) is set to -1. */
void sfc_class_groups(const int64_t *counts, int ncls, int *grp_out);

/* Replace the class_stats rows of (run, split): run 0 = the dataset's own
 * statistics (stored with run NULL). counts[c] and, when dc != NULL,
 * dc[c] for c = 1..ncls-1; groups from sfc_class_groups. Joins an open
 * transaction, else runs in its own. */
int sfc_db_class_stats_write(struct sfc_db *db, int64_t run,
                             const char *split, const int64_t *counts,
                             const double *dc, int ncls);
/* Read them back (run 0 = dataset): counts[c], dc[c] (NaN when NULL; dc
 * may be NULL) and grp[c] (may be NULL) for c = 1..ncls-1; index 0 is set
 * to 0 / NaN / -1. Missing rows are an error. */
int sfc_db_class_stats_read(struct sfc_db *db, int64_t run,
                            const char *split, int64_t *counts, double *dc,
                            int *grp, int ncls);

#endif
