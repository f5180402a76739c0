/* SPDX-License-Identifier: MIT */
/* test-db.c: lib/db against SQLite itself as the oracle: a new db gets the
 * commented schema and user_version, WAL and foreign keys are on, version
 * mismatches and foreign files are refused with the file named, foreign
 * keys are enforced, a rolled-back change leaves no row, the runs API and
 * the dataset readers return what was inserted, class groups follow the
 * VOC train_aug ranks of sfc-reference 1.2, and two forked processes can
 * create and write one db at once without losing a transaction. */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "sfc.h"
#include "test.h"

static char *tmp;

static char *tpath(const char *name)
{
    return sfc_path_join(tmp, name);
}

static int64_t q64(struct sfc_db *db, const char *sql)
{
    int64_t v = -999;
    T_CHECK_MSG(sfc_db_query_int64(db, &v, sql, NULL) == 0, "%s: %s", sql,
                sfc_errmsg());
    return v;
}

static void test_open(void)
{
    char *p = tpath("a.db");
    T_CHECK(sfc_db_open(p, 0) == NULL);
    T_CHECK(strstr(sfc_errmsg(), p) == sfc_errmsg());
    struct sfc_db *db = sfc_db_open(p, SFC_DB_CREATE);
    T_CHECK_MSG(db != NULL, "%s", sfc_errmsg());
    if (!db) return;
    T_CHECK(q64(db, "PRAGMA user_version") == SFC_DB_SCHEMA_VERSION);
    T_CHECK(q64(db, "PRAGMA foreign_keys") == 1);
    T_CHECK(q64(db, "SELECT count(*) FROM pragma_journal_mode "
                    "WHERE journal_mode = 'wal'") == 1);
    /* Every table of the brief exists and keeps its comments. */
    const char *tables[] = {"classes", "images", "image_splits",
                            "image_labels", "runs", "class_stats",
                            "schedule", "image_bank", "train_log", "metrics"};
    for (size_t i = 0; i < SFC_ARRAY_LEN(tables); i++) {
        int64_t n = -1;
        T_CHECK(sfc_db_query_int64(db, &n, "SELECT count(*) FROM "
                                   "sqlite_schema WHERE type = 'table' AND "
                                   "name = ? AND sql LIKE '%--%'", "s",
                                   tables[i]) == 0);
        T_CHECK_MSG(n == 1, "table %s missing or uncommented", tables[i]);
    }
    /* The embedded text is db/schema.sql's (ends with the version). */
    char buf[64];
    snprintf(buf, sizeof buf, "PRAGMA user_version = %d;",
             SFC_DB_SCHEMA_VERSION);
    T_CHECK(strstr(sfc_db_schema_sql(), buf) != NULL);
    sfc_db_close(db);

    /* Reopening an existing db does not run the schema again. */
    db = sfc_db_open(p, 0);
    T_CHECK_MSG(db != NULL, "%s", sfc_errmsg());
    sfc_db_close(db);

    /* Another schema version: refused, naming the file and both versions. */
    sqlite3 *h;
    T_CHECK(sqlite3_open(p, &h) == SQLITE_OK);
    T_CHECK(sqlite3_exec(h, "PRAGMA user_version = 99", 0, 0, 0) == 0);
    sqlite3_close(h);
    T_CHECK(sfc_db_open(p, SFC_DB_CREATE) == NULL);
    T_CHECK_MSG(strstr(sfc_errmsg(), p) && strstr(sfc_errmsg(), "99"),
                "%s", sfc_errmsg());

    /* A db with tables but no version is not ours. */
    char *q = tpath("foreign.db");
    T_CHECK(sqlite3_open(q, &h) == SQLITE_OK);
    T_CHECK(sqlite3_exec(h, "CREATE TABLE t (x)", 0, 0, 0) == 0);
    sqlite3_close(h);
    T_CHECK(sfc_db_open(q, 0) == NULL);
    T_CHECK_MSG(strstr(sfc_errmsg(), "not an sfc database") &&
                    strstr(sfc_errmsg(), q), "%s", sfc_errmsg());
    free(q);

    /* A file that is not SQLite at all. */
    q = tpath("junk.db");
    T_CHECK(sfc_atomic_write(q, "hello, not a database, just some bytes"
                             " that are long enough for a header......"
                             "................................", 100) == 0);
    T_CHECK(sfc_db_open(q, 0) == NULL);
    T_CHECK_MSG(strstr(sfc_errmsg(), q) == sfc_errmsg(), "%s", sfc_errmsg());
    free(q);
    free(p);
}

static void fill_dataset(struct sfc_db *db)
{
    T_CHECK(sfc_db_begin(db) == 0);
    const char *names[] = {"background", "cat", "dog", "cow"};
    for (int c = 0; c < 4; c++)
        T_CHECK(sfc_db_execv(db, "INSERT INTO classes VALUES (?, ?)", "is", c,
                             names[c]) == 0);
    const char *ids[] = {"b", "a", "c"};
    for (int i = 0; i < 3; i++)
        T_CHECK(sfc_db_execv(db, "INSERT INTO images VALUES (?, ?, ?, ?, ?)",
                             "siiss", ids[i], 10 + i, 20 + i, "p.jpg",
                             i == 2 ? NULL : "m.png") == 0);
    /* split 's' lists b, a, c in that order; 't' only a */
    for (int i = 0; i < 3; i++)
        T_CHECK(sfc_db_execv(db, "INSERT INTO image_splits VALUES ('s', ?, ?)",
                             "si", ids[i], i) == 0);
    T_CHECK(sfc_db_exec(db, "INSERT INTO image_splits VALUES ('t', 'a', 0);"
                        "INSERT INTO image_labels VALUES ('b', 3), ('b', 1),"
                        "('a', 1), ('c', 2), ('c', 1)") == 0);
    T_CHECK(sfc_db_commit(db) == 0);
}

static void test_integrity(void)
{
    char *p = tpath("b.db");
    struct sfc_db *db = sfc_db_open(p, SFC_DB_CREATE);
    T_CHECK(db != NULL);
    if (!db) return;
    fill_dataset(db);

    /* Foreign keys: a label for an unknown image or class is refused. */
    T_CHECK(sfc_db_execv(db, "INSERT INTO image_labels VALUES ('zz', 1)",
                         NULL) == -1);
    T_CHECK_MSG(strstr(sfc_errmsg(), "FOREIGN KEY") &&
                    strstr(sfc_errmsg(), p) == sfc_errmsg(),
                "%s", sfc_errmsg());
    T_CHECK(sfc_db_execv(db, "INSERT INTO image_labels VALUES ('a', 9)",
                         NULL) == -1);
    /* Background is never an image label; CHECKs hold. */
    T_CHECK(sfc_db_execv(db, "INSERT INTO image_labels VALUES ('a', 0)",
                         NULL) == -1);
    T_CHECK(sfc_db_execv(db, "INSERT INTO images VALUES ('x', 0, 5, 'p', "
                         "NULL)", NULL) == -1);
    /* Deleting an image takes its labels and split rows with it. */
    T_CHECK(sfc_db_exec(db, "DELETE FROM images WHERE id = 'c'") == 0);
    T_CHECK(q64(db, "SELECT count(*) FROM image_labels WHERE image = 'c'")
            == 0);
    T_CHECK(q64(db, "SELECT count(*) FROM image_splits WHERE image = 'c'")
            == 0);

    /* Rollback: a multi-row change that fails half-way leaves nothing. */
    int64_t before = q64(db, "SELECT count(*) FROM images");
    int64_t labels_before = q64(db, "SELECT count(*) FROM image_labels");
    T_CHECK(sfc_db_begin(db) == 0);
    T_CHECK(sfc_db_begin(db) == -1); /* no nesting */
    T_CHECK(sfc_db_in_transaction(db));
    T_CHECK(sfc_db_exec(db, "INSERT INTO images VALUES ('n1', 1, 1, 'p', "
                        "NULL); INSERT INTO image_labels VALUES ('n1', 2)")
            == 0);
    T_CHECK(q64(db, "SELECT count(*) FROM images") == before + 1);
    T_CHECK(sfc_db_execv(db, "INSERT INTO image_labels VALUES ('n1', 77)",
                         NULL) == -1);
    sfc_db_rollback(db);
    T_CHECK(!sfc_db_in_transaction(db));
    T_CHECK(strstr(sfc_errmsg(), "FOREIGN KEY") != NULL); /* slot kept */
    T_CHECK(q64(db, "SELECT count(*) FROM images") == before);
    T_CHECK(q64(db, "SELECT count(*) FROM image_labels") == labels_before);
    sfc_db_rollback(db); /* no-op without a transaction */
    sfc_db_close(db);

    /* Seen from a fresh connection too. */
    db = sfc_db_open(p, 0);
    T_CHECK(db && q64(db, "SELECT count(*) FROM images WHERE id = 'n1'")
            == 0);
    sfc_db_close(db);
    free(p);
}

static void test_runs(void)
{
    char *p = tpath("c.db");
    struct sfc_db *db = sfc_db_open(p, SFC_DB_CREATE);
    T_CHECK(db != NULL);
    if (!db) return;
    int64_t r1 = sfc_db_run_begin(db, "sfc-x", 10, "{\"iters\":12}");
    int64_t r2 = sfc_db_run_begin(db, "sfc-y", SFC_DB_NO_SEED, NULL);
    T_CHECK(r1 == 1 && r2 == 2);
    T_CHECK(q64(db, "SELECT seed FROM runs WHERE id = 1") == 10);
    T_CHECK(q64(db, "SELECT seed IS NULL FROM runs WHERE id = 2") == 1);
    T_CHECK(q64(db, "SELECT config ->> '$.iters' FROM runs WHERE id = 1")
            == 12);
    T_CHECK(q64(db, "SELECT count(*) FROM runs WHERE status = 'running' "
                    "AND ended IS NULL AND pid IS NOT NULL AND version = '"
                    SFC_VERSION "' AND started LIKE '20__-__-__T%Z'") == 2);
    T_CHECK(sfc_db_run_end(db, r1, SFC_RUN_OK) == 0);
    T_CHECK(sfc_db_run_end(db, r2, SFC_RUN_FAILED) == 0);
    T_CHECK(q64(db, "SELECT count(*) FROM runs WHERE status = 'ok' AND "
                    "ended >= started") == 1);
    T_CHECK(q64(db, "SELECT id FROM runs WHERE status = 'failed'") == 2);
    T_CHECK(sfc_db_run_end(db, 99, SFC_RUN_OK) == -1);
    /* Bad JSON is refused; inside a transaction the run joins it. */
    T_CHECK(sfc_db_run_begin(db, "sfc-z", 1, "{not json") == -1);
    T_CHECK(sfc_db_begin(db) == 0);
    T_CHECK(sfc_db_run_begin(db, "sfc-z", 1, "{}") == 3);
    T_CHECK(sfc_db_in_transaction(db));
    sfc_db_rollback(db);
    T_CHECK(q64(db, "SELECT count(*) FROM runs") == 2);
    sfc_db_close(db);
    free(p);
}

static void test_readers(void)
{
    char *p = tpath("d.db");
    struct sfc_db *db = sfc_db_open(p, SFC_DB_CREATE);
    T_CHECK(db != NULL);
    if (!db) return;
    char **names;
    int nc;
    T_CHECK(sfc_db_class_names(db, &names, &nc) == -1); /* none yet */
    fill_dataset(db);
    T_CHECK(sfc_db_class_names(db, &names, &nc) == 0 && nc == 4);
    T_CHECK(nc == 4 && !strcmp(names[0], "background") &&
            !strcmp(names[3], "cow"));
    sfc_db_strv_free(names, nc);

    struct sfc_db_image *im;
    long n;
    T_CHECK(sfc_db_split_images(db, "s", &im, &n) == 0 && n == 3);
    if (n == 3) {
        T_CHECK(!strcmp(im[0].id, "b") && !strcmp(im[1].id, "a") &&
                !strcmp(im[2].id, "c"));
        T_CHECK(im[0].width == 10 && im[0].height == 20 &&
                !strcmp(im[0].mask, "m.png") && im[2].mask == NULL);
        T_CHECK(im[0].nlabels == 2 && im[0].labels[0] == 1 &&
                im[0].labels[1] == 3);
        T_CHECK(im[1].nlabels == 1 && im[1].labels[0] == 1);
    }
    sfc_db_images_free(im, n);
    T_CHECK(sfc_db_split_images(db, "nope", &im, &n) == -1);
    T_CHECK(strstr(sfc_errmsg(), "no split 'nope'") != NULL);

    struct sfc_db_image one;
    T_CHECK(sfc_db_image_get(db, "c", &one) == 0 && one.nlabels == 2 &&
            one.labels[0] == 1 && one.labels[1] == 2 && one.width == 12);
    sfc_db_image_release(&one);
    T_CHECK(sfc_db_image_get(db, "zz", &one) == -1);

    char **splits;
    long ns;
    T_CHECK(sfc_db_splits(db, &splits, &ns) == 0 && ns == 2 &&
            !strcmp(splits[0], "s") && !strcmp(splits[1], "t"));
    sfc_db_strv_free(splits, ns);

    int64_t cnt[4];
    T_CHECK(sfc_db_class_counts(db, "s", cnt, 4) == 0);
    T_CHECK(cnt[0] == 0 && cnt[1] == 3 && cnt[2] == 1 && cnt[3] == 1);
    T_CHECK(sfc_db_class_counts(db, "t", cnt, 4) == 0);
    T_CHECK(cnt[1] == 1 && cnt[2] == 0 && cnt[3] == 0);
    T_CHECK(sfc_db_class_counts(db, "s", cnt, 2) == -1); /* class 3 >= 2 */

    /* class_stats: dataset (run 0 -> NULL) and a run's own, replaced on
     * rewrite, read back. */
    int64_t c1[4] = {0, 3, 1, 1}, c2[4] = {0, 5, 6, 7}, got[4];
    double dc[4] = {0, 0.5, 1.0, 1.5}, gdc[4];
    int grp[4];
    T_CHECK(sfc_db_class_stats_write(db, 0, "s", c2, NULL, 4) == 0);
    T_CHECK(sfc_db_class_stats_write(db, 0, "s", c1, NULL, 4) == 0);
    int64_t run = sfc_db_run_begin(db, "sfc-sample", 1, NULL);
    T_CHECK(sfc_db_class_stats_write(db, run, "s", c2, dc, 4) == 0);
    T_CHECK(q64(db, "SELECT count(*) FROM class_stats WHERE run IS NULL")
            == 3);
    T_CHECK(sfc_db_class_stats_read(db, 0, "s", got, gdc, grp, 4) == 0);
    T_CHECK(got[1] == 3 && got[2] == 1 && got[3] == 1 && isnan(gdc[2]));
    T_CHECK(grp[0] == -1 && grp[1] == SFC_GROUP_HEAD &&
            grp[2] == SFC_GROUP_MIDDLE && grp[3] == SFC_GROUP_TAIL);
    T_CHECK(sfc_db_class_stats_read(db, run, "s", got, gdc, NULL, 4) == 0);
    T_CHECK(got[3] == 7 && gdc[3] == 1.5);
    T_CHECK(sfc_db_class_stats_read(db, 0, "t", got, NULL, NULL, 4) == -1);
    sfc_db_close(db);
    free(p);
}

/* Head/middle/tail on VOC train_aug: the ranks are those of the table in
 * sfc-reference 1.2 (counts by class index 0..19, id = index + 1). */
static void test_groups(void)
{
    const int64_t voc[21] = {0,   590, 504, 705,  468, 714, 393,
                             1150, 1005, 1228, 267, 613, 1188, 445,
                             492, 4155, 522, 300, 649, 503, 567};
    /* reference ranks 1..20 by class index 0..19 */
    const int rank[20] = {10, 13, 7, 16, 6, 18, 4, 5, 2, 20,
                          9, 3, 17, 15, 1, 12, 19, 8, 14, 11};
    int grp[21];
    sfc_class_groups(voc, 21, grp);
    for (int k = 0; k < 20; k++) {
        int r = rank[k] - 1, want = 3 * r < 20 ? 0 : 3 * r < 40 ? 1 : 2;
        T_CHECK_MSG(grp[k + 1] == want, "class %d rank %d grp %d", k + 1,
                    rank[k], grp[k + 1]);
    }
    /* ties: lower id ranks first */
    int64_t tie[4] = {0, 5, 5, 5};
    sfc_class_groups(tie, 4, grp);
    T_CHECK(grp[1] == 0 && grp[2] == 1 && grp[3] == 2);
    T_CHECK(!strcmp(sfc_class_group_name(SFC_GROUP_TAIL), "tail"));
}

/* Two processes open (and create) the same db at once and each commit
 * NTX transactions of a run plus NROW train_log rows. */
#define NTX 300
#define NROW 5
static int writer(const char *path, int who, int go_fd)
{
    struct sfc_db *db = sfc_db_open(path, SFC_DB_CREATE);
    if (!db) {
        fprintf(stderr, "writer %d: %s\n", who, sfc_errmsg());
        return 1;
    }
    char c;
    if (read(go_fd, &c, 1) != 1) return 1; /* start together */
    for (int t = 0; t < NTX; t++) {
        int64_t run;
        int ok = sfc_db_begin(db) == 0 &&
                 (run = sfc_db_run_begin(db, "writer", who, NULL)) > 0;
        for (int s = 0; ok && s < NROW; s++)
            ok = sfc_db_execv(db, "INSERT INTO train_log (run, step, loss, "
                              "lr) VALUES (?, ?, ?, 0.1)", "Iid", run, s,
                              (double)who) == 0;
        if (ok) ok = sfc_db_commit(db) == 0;
        /* a little work between commits, as a trainer has (a writer in a
         * tight loop can keep the lock from the other one until done) */
        nanosleep(&(struct timespec){0, 500000}, NULL);
        if (!ok) {
            fprintf(stderr, "writer %d: %s\n", who, sfc_errmsg());
            sfc_db_close(db);
            return 1;
        }
    }
    sfc_db_close(db);
    return 0;
}

static void test_concurrent(void)
{
    char *p = tpath("conc.db");
    pid_t pid[2];
    int go[2];
    T_CHECK(pipe(go) == 0);
    for (int w = 0; w < 2; w++) {
        pid[w] = fork();
        T_CHECK(pid[w] >= 0);
        if (pid[w] == 0) _exit(writer(p, w + 1, go[0]));
    }
    T_CHECK(write(go[1], "go", 2) == 2);
    close(go[0]);
    close(go[1]);
    for (int w = 0; w < 2; w++) {
        int status = -1;
        T_CHECK(waitpid(pid[w], &status, 0) == pid[w]);
        T_CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                    "writer %d status %d", w + 1, status);
    }
    struct sfc_db *db = sfc_db_open(p, 0);
    T_CHECK(db != NULL);
    if (db) {
        T_CHECK(q64(db, "SELECT count(*) FROM runs") == 2 * NTX);
        T_CHECK(q64(db, "SELECT count(*) FROM runs WHERE seed = 1") == NTX);
        T_CHECK(q64(db, "SELECT count(*) FROM train_log") == 2 * NTX * NROW);
        T_CHECK(q64(db, "SELECT count(*) FROM train_log t JOIN runs r ON "
                        "r.id = t.run WHERE t.loss = r.seed")
                == 2 * NTX * NROW);
        /* How often the writers took turns (information, not a check:
         * it depends on scheduling). */
        fprintf(stderr, "concurrent writers: %lld turns in %d transactions\n",
                (long long)q64(db, "SELECT count(*) FROM runs a JOIN runs b "
                               "ON b.id = a.id + 1 WHERE a.seed <> b.seed"),
                2 * NTX);
        T_CHECK(q64(db, "SELECT count(*) FROM pragma_integrity_check "
                        "WHERE integrity_check = 'ok'") == 1);
    }
    sfc_db_close(db);
    free(p);
}

int main(int argc, char **argv)
{
    (void)argc;
    sfc_proginit(argv[0]);
    tmp = test_tmpdir("db");
    test_open();
    test_integrity();
    test_runs();
    test_readers();
    test_groups();
    test_concurrent();
    char *cmd = sfc_xasprintf("rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmp);
    free(cmd);
    free(tmp);
    return test_summary();
}
