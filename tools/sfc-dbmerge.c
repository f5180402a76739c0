/* SPDX-License-Identifier: MIT */
/* sfc-dbmerge: the driver's side of shards that run on other machines
 * (README "Many machines", lib/db.h rows mode). --snapshot writes the copy
 * of the run db the shards read; the positional files, rows dbs the
 * shards wrote (SFC_DB_ROWS), are merged into the run db in one
 * transaction, each run and its rows once however often it is merged. */
#include <stdio.h>
#include <stdlib.h>

#include "db.h"
#include "sfc.h"

static const char *const usage[] = {
    "sfc-dbmerge --db FILE --snapshot OUT",
    "sfc-dbmerge --db FILE ROWS.db [ROWS.db...]",
    NULL,
};

int main(int argc, char **argv)
{
    const char *dbpath = NULL, *snapshot = NULL;
    int quiet = 0;
    const struct sfc_opt opts[] = {
        SFC_OPT_STRING_("db", &dbpath, "FILE", "the run db"),
        SFC_OPT_STRING_("snapshot", &snapshot, "OUT",
                        "write a copy of the run db for shards to read "
                        "(kept if OUT exists)"),
        SFC_OPT_FLAG_("quiet", 'q', &quiet, "no summary line on stdout"),
        SFC_OPT_END_,
    };
    const struct sfc_cli cli = {
        usage,
        "With --snapshot, copy the run db (a consistent snapshot, rollback "
        "journal) to OUT unless OUT exists; shards on other machines read "
        "it with SFC_DB_SNAPSHOT=OUT. With ROWS.db files (written by tools "
        "run with SFC_DB_ROWS=ROWS.db), add their runs and those runs' rows "
        "to the run db under new run ids, all files in one transaction; a "
        "run already there (every field equal) is skipped, so a rerun adds "
        "nothing. Prints: merged <files> files, <runs> runs, <rows> rows, "
        "<skipped> already there.",
        opts};
    sfc_proginit(argv[0]);
    int npos = sfc_cli_parse(&cli, argc, argv);
    if (!dbpath) sfc_cli_die("--db is required");
    if (!snapshot && npos == 0)
        sfc_cli_die("give --snapshot OUT or ROWS.db files");
    /* this process writes the run db itself */
    unsetenv("SFC_DB_ROWS");
    struct sfc_db *db = sfc_db_open(dbpath, 0);
    if (!db) sfc_die_errmsg();
    if (snapshot && sfc_db_snapshot(db, snapshot)) sfc_die_errmsg();
    if (npos > 0) {
        struct sfc_db_merge_count c = {0, 0, 0};
        if (sfc_db_begin(db)) sfc_die_errmsg();
        for (int i = 0; i < npos; i++)
            if (sfc_db_merge_rows(db, argv[i], &c)) {
                sfc_db_rollback(db);
                sfc_die_errmsg();
            }
        if (sfc_db_commit(db)) sfc_die_errmsg();
        if (!quiet)
            printf("merged %d files, %ld runs, %ld rows, %ld already there\n",
                   npos, c.runs, c.rows, c.skipped);
    }
    sfc_db_close(db);
    return sfc_fshut(stdout, "<stdout>");
}
