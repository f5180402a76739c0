/* SPDX-License-Identifier: MIT */
/* db.c: SQLite connection, schema creation and version check, transactions,
 * statement helpers, the runs API and the dataset readers (see db.h).
 *
 * The schema is db/schema.sql, compiled in as a byte array by the
 * Makefile (build/gen/db/schema.sql.inc). A new db is created inside one
 * BEGIN IMMEDIATE transaction that re-checks user_version, so two
 * processes creating the same file cannot both run the schema. Every
 * message names the db file. Class statistics follow sfc-reference 1.2
 * (N_c = images of a split containing class c) and the head/middle/tail
 * split by rank documented in db/schema.sql. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "err.h"
#include "sfc.h"
#include "util.h"

static const unsigned char schema_sql[] = {
#include "db/schema.sql.inc" /* defines: the bytes of db/schema.sql, NUL-ended */
};

const char *sfc_db_schema_sql(void)
{
    return (const char *)schema_sql;
}

static int db_fail(struct sfc_db *db, const char *what)
{
    if (what)
        return sfc_error(db->path, "%s: %s", what, sqlite3_errmsg(db->h));
    return sfc_error(db->path, "%s", sqlite3_errmsg(db->h));
}

/* ---- binding --------------------------------------------------------- */

static int bind_va(struct sfc_db *db, sqlite3_stmt *st, const char *types,
                   va_list ap)
{
    int k = 1, rc = SQLITE_OK;
    for (const char *t = types ? types : ""; *t && rc == SQLITE_OK; t++, k++) {
        switch (*t) {
        case 'i':
            rc = sqlite3_bind_int(st, k, va_arg(ap, int));
            break;
        case 'I':
            rc = sqlite3_bind_int64(st, k, (sqlite3_int64)va_arg(ap, int64_t));
            break;
        case 'd':
            rc = sqlite3_bind_double(st, k, va_arg(ap, double));
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            rc = s ? sqlite3_bind_text(st, k, s, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st, k);
            break;
        }
        case 'n':
            rc = sqlite3_bind_null(st, k);
            break;
        default:
            SFC_ASSERT(!"bad type letter in sfc_db bind list");
        }
    }
    if (rc != SQLITE_OK) return db_fail(db, "bind");
    return 0;
}

sqlite3_stmt *sfc_db_prepare(struct sfc_db *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK) {
        db_fail(db, NULL);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

int sfc_db_bind(struct sfc_db *db, sqlite3_stmt *st, const char *types, ...)
{
    va_list ap;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    va_start(ap, types);
    int r = bind_va(db, st, types, ap);
    va_end(ap);
    return r;
}

int sfc_db_step(struct sfc_db *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    db_fail(db, NULL);
    sqlite3_reset(st);
    return -1;
}

int sfc_db_exec(struct sfc_db *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        sfc_error(db->path, "%s", msg ? msg : sqlite3_errmsg(db->h));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int execv_va(struct sfc_db *db, const char *sql, const char *types,
                    va_list ap)
{
    sqlite3_stmt *st = sfc_db_prepare(db, sql);
    if (!st) return -1;
    int r = bind_va(db, st, types, ap);
    while (r == 0 && (r = sfc_db_step(db, st)) == 1) r = 0;
    sqlite3_finalize(st);
    return r < 0 ? -1 : 0;
}

int sfc_db_execv(struct sfc_db *db, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int r = execv_va(db, sql, types, ap);
    va_end(ap);
    return r;
}

int sfc_db_query_int64(struct sfc_db *db, int64_t *out, const char *sql,
                       const char *types, ...)
{
    sqlite3_stmt *st = sfc_db_prepare(db, sql);
    if (!st) return -1;
    va_list ap;
    va_start(ap, types);
    int r = bind_va(db, st, types, ap);
    va_end(ap);
    if (r == 0) {
        r = sfc_db_step(db, st);
        if (r == 1 && sqlite3_column_type(st, 0) != SQLITE_NULL) {
            *out = (int64_t)sqlite3_column_int64(st, 0);
            r = 0;
        } else if (r >= 0) {
            r = 1;
        }
    }
    sqlite3_finalize(st);
    return r;
}

/* ---- transactions ---------------------------------------------------- */

int sfc_db_in_transaction(const struct sfc_db *db)
{
    return !sqlite3_get_autocommit(db->h);
}

int sfc_db_begin(struct sfc_db *db)
{
    if (sfc_db_in_transaction(db))
        return sfc_error(db->path, "transaction already open");
    if (sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, "cannot begin a transaction");
    return 0;
}

int sfc_db_commit(struct sfc_db *db)
{
    if (sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        int r = db_fail(db, "cannot commit");
        sfc_db_rollback(db);
        return r;
    }
    return 0;
}

void sfc_db_rollback(struct sfc_db *db)
{
    if (!db || !db->h || !sfc_db_in_transaction(db)) return;
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

/* Begin unless a transaction is open; *own tells whether we began it. */
static int begin_own(struct sfc_db *db, int *own)
{
    *own = !sfc_db_in_transaction(db);
    return *own ? sfc_db_begin(db) : 0;
}

static int end_own(struct sfc_db *db, int own, int r)
{
    if (!own) return r;
    if (r == 0) return sfc_db_commit(db);
    sfc_db_rollback(db);
    return r;
}

/* ---- open / close ---------------------------------------------------- */

static int create_or_check(struct sfc_db *db)
{
    int64_t ver = 0, ntab = 0;
    if (sfc_db_query_int64(db, &ver, "PRAGMA user_version", NULL) < 0)
        return -1;
    if (ver == 0) {
        /* Possibly new: create under the write lock, re-checking there. */
        if (sfc_db_begin(db)) return -1;
        int r = sfc_db_query_int64(db, &ver, "PRAGMA user_version", NULL);
        if (r >= 0)
            r = sfc_db_query_int64(db, &ntab,
                                   "SELECT count(*) FROM sqlite_schema", NULL);
        if (r >= 0 && ver == 0 && ntab > 0) {
            sfc_db_rollback(db);
            return sfc_error(db->path, "not an sfc database (no schema "
                             "version, but it has tables)");
        }
        if (r >= 0 && ver == 0) {
            r = sfc_db_exec(db, sfc_db_schema_sql());
            if (r == 0)
                r = sfc_db_query_int64(db, &ver, "PRAGMA user_version", NULL);
        }
        if (r < 0) {
            sfc_db_rollback(db);
            return -1;
        }
        if (sfc_db_commit(db)) return -1;
    }
    if (ver != SFC_DB_SCHEMA_VERSION)
        return sfc_error(db->path, "schema version %lld, this build of sfc "
                         "expects %d", (long long)ver, SFC_DB_SCHEMA_VERSION);
    return 0;
}

/* Switch to WAL. The switch needs an exclusive lock, and SQLite answers
 * SQLITE_BUSY at once (without the busy handler) while another process
 * holds one, e.g. when it is creating the same db: retry until the busy
 * timeout. The pragma answers with the mode in force. */
static int set_wal(struct sfc_db *db)
{
    double t0 = sfc_now();
    for (;;) {
        sqlite3_stmt *st = sfc_db_prepare(db, "PRAGMA journal_mode=WAL");
        if (!st) return -1;
        int rc = sqlite3_step(st);
        int wal = rc == SQLITE_ROW &&
                  !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        if (rc == SQLITE_ROW && wal) return 0;
        if (rc == SQLITE_ROW)
            return sfc_error(db->path, "cannot switch to WAL mode");
        if ((rc & 0xff) != SQLITE_BUSY ||
            sfc_now() - t0 > SFC_DB_BUSY_MS / 1000.0)
            return db_fail(db, "cannot switch to WAL mode");
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
}

static struct sfc_db *open_rows(const char *path, const char *rows);

struct sfc_db *sfc_db_open(const char *path, unsigned flags)
{
    const char *rows = getenv("SFC_DB_ROWS");
    if (rows && *rows) return open_rows(path, rows);
    struct stat sb;
    if (!(flags & SFC_DB_CREATE) && stat(path, &sb) != 0) {
        sfc_error(path, "cannot open database:");
        return NULL;
    }
    struct sfc_db *db = sfc_xcalloc(1, sizeof *db);
    db->path = sfc_xstrdup(path);
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
                 ((flags & SFC_DB_CREATE) ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, &db->h, oflags, NULL) != SQLITE_OK) {
        if (db->h)
            db_fail(db, "cannot open database");
        else
            sfc_error(path, "cannot open database: out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, SFC_DB_BUSY_MS);
    if (set_wal(db)) goto fail;
    if (sfc_db_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL"))
        goto fail;
    if (create_or_check(db)) goto fail;
    return db;
fail:
    sfc_db_close(db);
    return NULL;
}

/* ---- rows mode: shards on other machines ------------------------------
 * SQLite's locking (WAL's shared memory above all) does not work between
 * machines over a network file system, so a shard that runs elsewhere
 * never touches the run db. It reads a snapshot that nobody changes
 * (opened immutable: no locks at all) and writes its rows into a small db
 * of its own in rollback-journal mode that only it writes; the driver
 * merges that db into the run db afterwards (sfc_db_merge_rows), on the
 * machine that owns the run db. The connection's main db is the rows db
 * (full schema, so every INSERT lands there with its checks); every table
 * of the source without a `run` column (the dataset: classes, images,
 * splits, labels) is shadowed by a TEMP view of the source's table, as
 * unqualified names resolve temp first. The classes are also copied in,
 * for the foreign keys of per-class metrics rows. */

/* "file:" URI of a path, every byte outside [A-Za-z0-9/._~-] as %XX */
static char *file_uri(const char *path, const char *query)
{
    size_t n = strlen(path);
    char *u = sfc_xmalloc(5 + 3 * n + strlen(query) + 1), *o = u;
    memcpy(o, "file:", 5);
    o += 5;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || strchr("/._~-", *p)) {
            *o++ = (char)*p;
        } else {
            sprintf(o, "%%%02X", *p);
            o += 3;
        }
    }
    strcpy(o, query);
    return u;
}

static struct sfc_db *open_rows(const char *path, const char *rows)
{
    const char *snap = getenv("SFC_DB_SNAPSHOT");
    const char *src = snap && *snap ? snap : path;
    struct stat sb;
    if (stat(src, &sb) != 0) {
        sfc_error(src, "cannot open database:");
        return NULL;
    }
    struct sfc_db *db = sfc_xcalloc(1, sizeof *db);
    db->path = sfc_xstrdup(rows);
    char *uri = NULL;
    int64_t ver = 0;
    if (sqlite3_open_v2(rows, &db->h, SQLITE_OPEN_READWRITE |
                        SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
                        SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        if (db->h)
            db_fail(db, "cannot open database");
        else
            sfc_error(rows, "cannot open database: out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(db->h, 1);
    sqlite3_busy_timeout(db->h, SFC_DB_BUSY_MS);
    if (sfc_db_exec(db, "PRAGMA journal_mode=DELETE; PRAGMA foreign_keys=ON") ||
        create_or_check(db))
        goto fail;
    /* a snapshot never changes: no locks; the run db itself (one machine,
     * SFC_DB_SNAPSHOT unset) is read like any reader would */
    uri = file_uri(src, snap && *snap ? "?mode=ro&immutable=1" : "?mode=ro");
    if (sfc_db_execv(db, "ATTACH ?1 AS src", "s", uri)) goto fail;
    if (sfc_db_query_int64(db, &ver, "PRAGMA src.user_version", NULL) < 0)
        goto fail;
    if (ver != SFC_DB_SCHEMA_VERSION) {
        sfc_error(src, "schema version %lld, this build of sfc expects %d",
                  (long long)ver, SFC_DB_SCHEMA_VERSION);
        goto fail;
    }
    sqlite3_stmt *st = sfc_db_prepare(
        db, "SELECT m.name FROM src.sqlite_schema m WHERE m.type = 'table' "
            "AND m.name NOT LIKE 'sqlite%' AND m.name <> 'runs' AND NOT EXISTS "
            "(SELECT 1 FROM pragma_table_info(m.name, 'src') p WHERE p.name = "
            "'run') ORDER BY m.name");
    if (!st) goto fail;
    int r;
    while ((r = sfc_db_step(db, st)) == 1) {
        char *sql = sqlite3_mprintf("CREATE TEMP VIEW \"%w\" AS SELECT * "
                                    "FROM src.\"%w\"", sqlite3_column_text(st, 0),
                                    sqlite3_column_text(st, 0));
        r = sfc_db_exec(db, sql);
        sqlite3_free(sql);
        if (r) break;
    }
    sqlite3_finalize(st);
    if (r < 0) goto fail;
    if (sfc_db_begin(db) ||
        sfc_db_exec(db, "INSERT OR IGNORE INTO main.classes (id, name) "
                    "SELECT id, name FROM src.classes") ||
        sfc_db_commit(db))
        goto fail;
    free(uri);
    return db;
fail:
    free(uri);
    sfc_db_close(db);
    return NULL;
}

int sfc_db_snapshot(struct sfc_db *db, const char *out)
{
    if (sfc_file_exists(out)) return 0;
    char *tmp = sfc_xasprintf("%s.tmp.%ld", out, (long)getpid());
    unlink(tmp);
    int r = sfc_db_execv(db, "VACUUM INTO ?1", "s", tmp);
    /* link: never over an existing file (another shard's, perhaps open
     * elsewhere); a file system without hard links gets a rename */
    if (r == 0 && link(tmp, out) != 0 && errno != EEXIST &&
        (sfc_file_exists(out) ? 0 : rename(tmp, out) != 0))
        r = sfc_error(out, "cannot create the snapshot:");
    unlink(tmp);
    free(tmp);
    return r;
}

/* The columns of a table of db h as "a, b, c" (sqlite3_free), and the
 * index of column `run` (-1 without one). */
static char *table_columns(struct sfc_db *db, sqlite3 *h, const char *table,
                           int *run_col, int *ncol)
{
    sqlite3_stmt *st = NULL;
    char *q = sqlite3_mprintf("SELECT name FROM pragma_table_info(%Q) "
                              "ORDER BY cid", table);
    char *cols = NULL;
    *run_col = -1;
    *ncol = 0;
    if (sqlite3_prepare_v2(h, q, -1, &st, NULL) != SQLITE_OK) {
        sfc_error(db->path, "%s: %s", table, sqlite3_errmsg(h));
        goto out;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *c = (const char *)sqlite3_column_text(st, 0);
        if (!strcmp(c, "run")) *run_col = *ncol;
        char *next = cols ? sqlite3_mprintf("%s, \"%w\"", cols, c)
                          : sqlite3_mprintf("\"%w\"", c);
        sqlite3_free(cols);
        cols = next;
        (*ncol)++;
    }
    if (rc != SQLITE_DONE) {
        sfc_error(db->path, "%s: %s", table, sqlite3_errmsg(h));
        sqlite3_free(cols);
        cols = NULL;
    }
out:
    sqlite3_finalize(st);
    sqlite3_free(q);
    return cols;
}

/* Copy the rows of table `table` of run `old` in h into db as run `new`. */
static int copy_run_rows(struct sfc_db *db, sqlite3 *h, const char *rows,
                         const char *table, int64_t old, int64_t new,
                         long *nrows)
{
    int run_col, ncol;
    char *cols = table_columns(db, h, table, &run_col, &ncol);
    if (!cols) return -1;
    char *sel = sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE run = ?1", cols,
                                table);
    /* the placeholders: ?, ?, ... */
    char *marks = sfc_xmalloc((size_t)ncol * 3 + 1);
    marks[0] = 0;
    for (int i = 0; i < ncol; i++) strcat(marks, i ? ", ?" : "?");
    char *ins = sqlite3_mprintf("INSERT INTO \"%w\" (%s) VALUES (%s)", table, cols,
                          marks);
    free(marks);
    sqlite3_stmt *s = NULL, *d = NULL;
    int r = 0;
    if (sqlite3_prepare_v2(h, sel, -1, &s, NULL) != SQLITE_OK) {
        r = sfc_error(rows, "%s", sqlite3_errmsg(h));
        goto out;
    }
    if (!(d = sfc_db_prepare(db, ins))) {
        r = -1;
        goto out;
    }
    sqlite3_bind_int64(s, 1, old);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        sqlite3_reset(d);
        for (int i = 0; i < ncol; i++) {
            if (i == run_col)
                sqlite3_bind_int64(d, i + 1, new);
            else
                sqlite3_bind_value(d, i + 1, sqlite3_column_value(s, i));
        }
        if (sfc_db_step(db, d) < 0) {
            r = -1;
            goto out;
        }
        (*nrows)++;
    }
    if (rc != SQLITE_DONE) r = sfc_error(rows, "%s", sqlite3_errmsg(h));
out:
    sqlite3_finalize(s);
    sqlite3_finalize(d);
    sqlite3_free(sel);
    sqlite3_free(ins);
    sqlite3_free(cols);
    return r;
}

int sfc_db_merge_rows(struct sfc_db *db, const char *rows,
                      struct sfc_db_merge_count *count)
{
    if (!sfc_db_in_transaction(db))
        return sfc_error(db->path, "merge outside a transaction");
    struct stat sb;
    if (stat(rows, &sb) != 0) return sfc_error(rows, "cannot open:");
    sqlite3 *h = NULL;
    sqlite3_stmt *runs = NULL, *tabs = NULL;
    char *uri = file_uri(rows, "?mode=ro");
    int r = 0, rc = SQLITE_DONE;
    if (sqlite3_open_v2(uri, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK) {
        r = sfc_error(rows, "cannot open database: %s",
                      h ? sqlite3_errmsg(h) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(h, SFC_DB_BUSY_MS);
    /* one read transaction: a consistent view of the file */
    if (sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &runs, NULL) !=
            SQLITE_OK ||
        sqlite3_step(runs) != SQLITE_ROW) {
        r = sfc_error(rows, "not a database: %s", sqlite3_errmsg(h));
        goto out;
    }
    if (sqlite3_column_int64(runs, 0) != SFC_DB_SCHEMA_VERSION) {
        r = sfc_error(rows, "schema version %lld, this build of sfc expects "
                      "%d", (long long)sqlite3_column_int64(runs, 0),
                      SFC_DB_SCHEMA_VERSION);
        goto out;
    }
    sqlite3_finalize(runs);
    runs = NULL;
    if (sqlite3_prepare_v2(h, "SELECT id, tool, version, seed, config, "
                           "started, ended, status, pid FROM runs ORDER BY id",
                           -1, &runs, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(h, "SELECT m.name FROM sqlite_schema m WHERE "
                           "m.type = 'table' AND m.name <> 'runs' AND EXISTS "
                           "(SELECT 1 FROM pragma_table_info(m.name) p WHERE "
                           "p.name = 'run') ORDER BY m.name", -1, &tabs,
                           NULL) != SQLITE_OK) {
        r = sfc_error(rows, "%s", sqlite3_errmsg(h));
        goto out;
    }
    while (r == 0 && (rc = sqlite3_step(runs)) == SQLITE_ROW) {
        int64_t old = sqlite3_column_int64(runs, 0), new = 0;
        /* merged before (a rerun of the merge): every field equal */
        sqlite3_stmt *q = sfc_db_prepare(
            db, "SELECT id FROM runs WHERE tool IS ?1 AND version IS ?2 AND "
                "seed IS ?3 AND config IS ?4 AND started IS ?5 AND ended IS "
                "?6 AND status IS ?7 AND pid IS ?8");
        if (!q) {
            r = -1;
            break;
        }
        for (int i = 1; i <= 8; i++)
            sqlite3_bind_value(q, i, sqlite3_column_value(runs, i));
        int found = sfc_db_step(db, q);
        sqlite3_finalize(q);
        if (found < 0) {
            r = -1;
            break;
        }
        if (found) {
            count->skipped++;
            continue;
        }
        q = sfc_db_prepare(db, "INSERT INTO runs (tool, version, seed, config, "
                           "started, ended, status, pid) VALUES (?1, ?2, ?3, "
                           "?4, ?5, ?6, ?7, ?8)");
        if (!q) {
            r = -1;
            break;
        }
        for (int i = 1; i <= 8; i++)
            sqlite3_bind_value(q, i, sqlite3_column_value(runs, i));
        r = sfc_db_step(db, q) < 0 ? -1 : 0;
        new = sqlite3_last_insert_rowid(db->h);
        sqlite3_finalize(q);
        if (r) break;
        count->runs++;
        sqlite3_reset(tabs);
        while (r == 0 && (rc = sqlite3_step(tabs)) == SQLITE_ROW)
            r = copy_run_rows(db, h, rows,
                              (const char *)sqlite3_column_text(tabs, 0), old,
                              new, &count->rows);
        if (r == 0 && rc != SQLITE_DONE)
            r = sfc_error(rows, "%s", sqlite3_errmsg(h));
    }
    if (r == 0 && rc != SQLITE_DONE) r = sfc_error(rows, "%s", sqlite3_errmsg(h));
out:
    sqlite3_finalize(runs);
    sqlite3_finalize(tabs);
    if (h) sqlite3_close_v2(h);
    free(uri);
    return r;
}

void sfc_db_close(struct sfc_db *db)
{
    if (!db) return;
    if (db->h) {
        sfc_db_rollback(db);
        sqlite3_close_v2(db->h);
    }
    free(db->path);
    free(db);
}

/* ---- runs ------------------------------------------------------------ */

int64_t sfc_db_run_begin(struct sfc_db *db, const char *tool, int64_t seed,
                         const char *config_json)
{
    int own;
    if (begin_own(db, &own)) return -1;
    int r;
    if (seed == SFC_DB_NO_SEED)
        r = sfc_db_execv(db, "INSERT INTO runs (tool, version, seed, config, "
                         "pid) VALUES (?, ?, NULL, ?, ?)", "sssI", tool,
                         SFC_VERSION, config_json ? config_json : "{}",
                         (int64_t)getpid());
    else
        r = sfc_db_execv(db, "INSERT INTO runs (tool, version, seed, config, "
                         "pid) VALUES (?, ?, ?, ?, ?)", "ssIsI", tool,
                         SFC_VERSION, seed, config_json ? config_json : "{}",
                         (int64_t)getpid());
    int64_t id = sqlite3_last_insert_rowid(db->h);
    if (end_own(db, own, r)) return -1;
    return id;
}

int sfc_db_run_end(struct sfc_db *db, int64_t run, enum sfc_run_status st)
{
    int own;
    if (begin_own(db, &own)) return -1;
    int r = sfc_db_execv(db, "UPDATE runs SET status = ?, ended = "
                         "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
                         "sI", st == SFC_RUN_OK ? "ok" : "failed", run);
    if (r == 0 && sqlite3_changes(db->h) != 1)
        r = sfc_error(db->path, "no run %lld", (long long)run);
    return end_own(db, own, r);
}

/* ---- readers --------------------------------------------------------- */

void sfc_db_strv_free(char **v, long n)
{
    if (!v) return;
    for (long i = 0; i < n; i++) free(v[i]);
    free(v);
}

static char *col_strdup(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    return s ? sfc_xstrdup((const char *)s) : NULL;
}

int sfc_db_class_names(struct sfc_db *db, char ***names_out, int *n_out)
{
    sqlite3_stmt *st = sfc_db_prepare(db, "SELECT id, name FROM classes "
                                      "ORDER BY id");
    if (!st) return -1;
    char **v = NULL;
    int n = 0, r;
    while ((r = sfc_db_step(db, st)) == 1) {
        if (sqlite3_column_int(st, 0) != n) {
            r = sfc_error(db->path, "class ids are not 0..C (id %d missing)",
                          n);
            break;
        }
        v = sfc_xrealloc(v, (size_t)(n + 1) * sizeof *v);
        v[n++] = col_strdup(st, 1);
    }
    sqlite3_finalize(st);
    if (r == 0 && n == 0) r = sfc_error(db->path, "no classes (run sfc-ingest)");
    if (r < 0) {
        sfc_db_strv_free(v, n);
        return -1;
    }
    *names_out = v;
    *n_out = n;
    return 0;
}

int sfc_db_splits(struct sfc_db *db, char ***names_out, long *n_out)
{
    sqlite3_stmt *st = sfc_db_prepare(db, "SELECT DISTINCT split FROM "
                                      "image_splits ORDER BY split");
    if (!st) return -1;
    char **v = NULL;
    long n = 0;
    int r;
    while ((r = sfc_db_step(db, st)) == 1) {
        v = sfc_xrealloc(v, (size_t)(n + 1) * sizeof *v);
        v[n++] = col_strdup(st, 0);
    }
    sqlite3_finalize(st);
    if (r < 0) {
        sfc_db_strv_free(v, n);
        return -1;
    }
    *names_out = v;
    *n_out = n;
    return 0;
}

void sfc_db_image_release(struct sfc_db_image *im)
{
    if (!im) return;
    free(im->id);
    free(im->path);
    free(im->mask);
    free(im->labels);
    memset(im, 0, sizeof *im);
}

void sfc_db_images_free(struct sfc_db_image *v, long n)
{
    if (!v) return;
    for (long i = 0; i < n; i++) sfc_db_image_release(&v[i]);
    free(v);
}

/* Columns: id, path, mask, width, height, labels ('1 5 15' or NULL). */
#define IMAGE_COLS                                                           \
    "i.id, i.path, i.mask, i.width, i.height, (SELECT group_concat(class, "  \
    "' ') FROM (SELECT class FROM image_labels l WHERE l.image = i.id "      \
    "ORDER BY class))"

static void image_from_row(sqlite3_stmt *st, struct sfc_db_image *im)
{
    memset(im, 0, sizeof *im);
    im->id = col_strdup(st, 0);
    im->path = col_strdup(st, 1);
    im->mask = col_strdup(st, 2);
    im->width = sqlite3_column_int(st, 3);
    im->height = sqlite3_column_int(st, 4);
    const char *s = (const char *)sqlite3_column_text(st, 5);
    int cap = 0;
    while (s && *s) {
        char *end;
        long c = strtol(s, &end, 10);
        if (end == s) break;
        if (im->nlabels == cap) {
            cap = cap ? 2 * cap : 4;
            im->labels = sfc_xrealloc(im->labels, (size_t)cap * sizeof(int));
        }
        im->labels[im->nlabels++] = (int)c;
        s = end;
    }
}

int sfc_db_split_images(struct sfc_db *db, const char *split,
                        struct sfc_db_image **out, long *n_out)
{
    sqlite3_stmt *st = sfc_db_prepare(db, "SELECT " IMAGE_COLS " FROM "
                                      "image_splits s JOIN images i ON "
                                      "i.id = s.image WHERE s.split = ? "
                                      "ORDER BY s.pos");
    if (!st) return -1;
    struct sfc_db_image *v = NULL;
    long n = 0, cap = 0;
    int r = sfc_db_bind(db, st, "s", split);
    while (r == 0 && (r = sfc_db_step(db, st)) == 1) {
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            v = sfc_xrealloc(v, (size_t)cap * sizeof *v);
        }
        image_from_row(st, &v[n++]);
        r = 0;
    }
    sqlite3_finalize(st);
    if (r == 0 && n == 0) r = sfc_error(db->path, "no split '%s'", split);
    if (r < 0) {
        sfc_db_images_free(v, n);
        return -1;
    }
    *out = v;
    *n_out = n;
    return 0;
}

int sfc_db_image_get(struct sfc_db *db, const char *id,
                     struct sfc_db_image *out)
{
    sqlite3_stmt *st = sfc_db_prepare(db, "SELECT " IMAGE_COLS
                                      " FROM images i WHERE i.id = ?");
    if (!st) return -1;
    int r = sfc_db_bind(db, st, "s", id);
    if (r == 0) r = sfc_db_step(db, st);
    if (r == 1) {
        image_from_row(st, out);
        r = 0;
    } else if (r == 0) {
        r = sfc_error(db->path, "no image '%s'", id);
    }
    sqlite3_finalize(st);
    return r;
}

int sfc_db_class_counts(struct sfc_db *db, const char *split,
                        int64_t *counts, int ncls)
{
    sqlite3_stmt *st = sfc_db_prepare(db, "SELECT l.class, count(*) FROM "
                                      "image_splits s JOIN image_labels l ON "
                                      "l.image = s.image WHERE s.split = ? "
                                      "GROUP BY l.class");
    if (!st) return -1;
    for (int c = 0; c < ncls; c++) counts[c] = 0;
    int r = sfc_db_bind(db, st, "s", split);
    while (r == 0 && (r = sfc_db_step(db, st)) == 1) {
        int c = sqlite3_column_int(st, 0);
        if (c < 0 || c >= ncls) {
            r = sfc_error(db->path, "class id %d out of range 0..%d", c,
                          ncls - 1);
            break;
        }
        counts[c] = (int64_t)sqlite3_column_int64(st, 1);
        r = 0;
    }
    sqlite3_finalize(st);
    return r < 0 ? -1 : 0;
}

/* ---- class statistics ------------------------------------------------ */

const char *sfc_class_group_name(enum sfc_class_group g)
{
    static const char *const names[] = {"head", "middle", "tail"};
    SFC_ASSERT(g >= SFC_GROUP_HEAD && g <= SFC_GROUP_TAIL);
    return names[g];
}

void sfc_class_groups(const int64_t *counts, int ncls, int *grp_out)
{
    int n = ncls - 1;
    if (ncls > 0) grp_out[0] = -1;
    for (int c = 1; c < ncls; c++) {
        /* rank = classes ahead of c: more images, or as many and lower id */
        int rank = 0;
        for (int k = 1; k < ncls; k++)
            if (counts[k] > counts[c] || (counts[k] == counts[c] && k < c))
                rank++;
        grp_out[c] = 3 * rank < n       ? SFC_GROUP_HEAD
                     : 3 * rank < 2 * n ? SFC_GROUP_MIDDLE
                                        : SFC_GROUP_TAIL;
    }
}

int sfc_db_class_stats_write(struct sfc_db *db, int64_t run,
                             const char *split, const int64_t *counts,
                             const double *dc, int ncls)
{
    int own;
    if (begin_own(db, &own)) return -1;
    int *grp = sfc_xmalloc((size_t)(ncls > 0 ? ncls : 1) * sizeof *grp);
    sfc_class_groups(counts, ncls, grp);
    sqlite3_stmt *st = NULL;
    int r = sfc_db_execv(db, "DELETE FROM class_stats WHERE ifnull(run, 0) "
                         "= ? AND split = ?", "Is", run, split);
    if (r == 0) {
        st = sfc_db_prepare(db, "INSERT INTO class_stats (run, split, class, "
                            "n_images, dc, grp) VALUES (?, ?, ?, ?, ?, ?)");
        if (!st) r = -1;
    }
    for (int c = 1; r == 0 && c < ncls; c++) {
        if (run) /* run 0 = the dataset's own statistics: run NULL */
            r = sfc_db_bind(db, st, "IsiI", run, split, c, counts[c]);
        else
            r = sfc_db_bind(db, st, "nsiI", split, c, counts[c]);
        if (r == 0 && dc)
            r = sqlite3_bind_double(st, 5, dc[c]) == SQLITE_OK
                    ? 0 : db_fail(db, "bind");
        if (r == 0 &&
            sqlite3_bind_text(st, 6, sfc_class_group_name(grp[c]), -1,
                              SQLITE_STATIC) != SQLITE_OK)
            r = db_fail(db, "bind");
        if (r == 0) r = sfc_db_step(db, st) < 0 ? -1 : 0;
    }
    sqlite3_finalize(st);
    free(grp);
    return end_own(db, own, r);
}

int sfc_db_class_stats_read(struct sfc_db *db, int64_t run,
                            const char *split, int64_t *counts, double *dc,
                            int *grp, int ncls)
{
    sqlite3_stmt *st = sfc_db_prepare(db, "SELECT class, n_images, dc, grp "
                                      "FROM class_stats WHERE ifnull(run, 0) "
                                      "= ? AND split = ?");
    if (!st) return -1;
    char *seen = sfc_xcalloc((size_t)(ncls > 0 ? ncls : 1), 1);
    for (int c = 0; c < ncls; c++) {
        counts[c] = 0;
        if (dc) dc[c] = NAN;
        if (grp) grp[c] = -1;
    }
    int r = sfc_db_bind(db, st, "Is", run, split);
    while (r == 0 && (r = sfc_db_step(db, st)) == 1) {
        int c = sqlite3_column_int(st, 0);
        r = 0;
        if (c < 1 || c >= ncls) {
            r = sfc_error(db->path, "class_stats: class %d out of range "
                          "1..%d", c, ncls - 1);
            break;
        }
        seen[c] = 1;
        counts[c] = (int64_t)sqlite3_column_int64(st, 1);
        if (dc && sqlite3_column_type(st, 2) != SQLITE_NULL)
            dc[c] = sqlite3_column_double(st, 2);
        const char *g = (const char *)sqlite3_column_text(st, 3);
        if (grp && g)
            grp[c] = !strcmp(g, "head")     ? SFC_GROUP_HEAD
                     : !strcmp(g, "middle") ? SFC_GROUP_MIDDLE
                                            : SFC_GROUP_TAIL;
    }
    sqlite3_finalize(st);
    for (int c = 1; r == 0 && c < ncls; c++)
        if (!seen[c])
            r = sfc_error(db->path, "no class statistics for class %d of "
                          "split '%s'%s", c, split,
                          run ? "" : " (run sfc-ingest)");
    free(seen);
    return r < 0 ? -1 : 0;
}

void sfc_db_run_die(struct sfc_db *db, int64_t run)
{
    if (db && run > 0) {
        char *msg = sfc_xstrdup(sfc_errmsg());
        sfc_db_rollback(db);
        sfc_db_run_end(db, run, SFC_RUN_FAILED);
        sfc_error(NULL, "%s", msg);
        free(msg);
    }
    sfc_die_errmsg();
}
