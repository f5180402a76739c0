/* SPDX-License-Identifier: MIT */
/* dataset.c: the label set of a dataset in the db (see dataset.h). One db
 * holds one dataset: its classes table is written once, and any later
 * ingest must bring the same names for the same ids. */
#include <stddef.h>
#include <stdint.h>

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
