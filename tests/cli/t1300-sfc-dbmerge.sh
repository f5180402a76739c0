# t1300: rows mode (SFC_DB_ROWS, lib/db.h) and sfc-dbmerge, the way a
# shard on another machine records its rows. The oracle is the same tool
# writing the run db directly: sfc-miou on t0403's fixture in rows mode
# leaves the run db untouched, its rows file holds one run and the same
# metrics rows (per-class rows: the foreign keys to classes hold), and
# after the merge the run db has the rows a direct run writes, under a
# new run id; merging again adds nothing; a second shard's file merges
# beside the first; without SFC_DB_SNAPSHOT the run db is read in place; a
# bad file leaves the run db as it was; an existing snapshot is kept.
# Needs: the sqlite3 shell.
. tests/cli/lib.sh
G=tests/golden/miou/cli
command -v sqlite3 >/dev/null || { echo "skip: no sqlite3 shell"; exit 0; }

# the fixture db (as t0403): classes, images, split 'train', labels
mkdb() {
    sqlite3 "$1" <db/schema.sql
    awk '{ printf "INSERT INTO classes VALUES (%d, '\''%s'\'');\n", NR - 1, $1 }' \
        $G/classes.txt | sqlite3 "$1"
    awk '{ printf "INSERT INTO images (id, width, height, path) VALUES ('\''%s'\'', %d, %d, '\''%s.jpg'\'');\n", $1, $2, $3, $1
           printf "INSERT INTO image_splits VALUES ('\''train'\'', '\''%s'\'', %d);\n", $1, NR - 1
           for (i = 4; i <= NF; i++)
               printf "INSERT INTO image_labels VALUES ('\''%s'\'', %d);\n", $1, $i }' \
        $G/images.txt | sqlite3 "$1"
}
mkdb "$T/plain.db"
mkdb "$T/run.db"
miou() {
    sfc-miou -q --db "$1" --split train --gt $G/gt --pred $G/pred \
        --stage "$2"
}
metrics="SELECT stage, map, split, step, ifnull(class, -1), name, \
    quote(value) FROM metrics ORDER BY 1, 2, 3, 4, 5, 6"
runs="SELECT tool, version, config, status FROM runs ORDER BY config"

# the oracle: a direct run
expect_ok miou "$T/plain.db" pseudo
# the shard: reads a snapshot, writes its own file
expect_ok sfc-dbmerge --db "$T/run.db" --snapshot "$T/snap.db"
check "snapshot: rollback journal" test "$(sqlite3 "$T/snap.db" \
    "PRAGMA journal_mode")" = delete
check "snapshot: the dataset" test "$(sqlite3 "$T/snap.db" \
    "SELECT count(*) FROM images")" = "$(sqlite3 "$T/run.db" \
    "SELECT count(*) FROM images")"
sqlite3 "$T/run.db" .dump > "$T/before.sql"
# (rows mode: SFC_DB_ROWS in the environment)
rows() {
    export SFC_DB_ROWS="$1" SFC_DB_SNAPSHOT="$2"
    [ -n "$2" ] || unset SFC_DB_SNAPSHOT
}
norows() { unset SFC_DB_ROWS SFC_DB_SNAPSHOT; }
rows "$T/rows-0.db" "$T/snap.db"
expect_ok miou "$T/run.db" pseudo
norows
sqlite3 "$T/run.db" .dump > "$T/after.sql"
same_bytes "$T/before.sql" "$T/after.sql"
check "rows file: rollback journal" test "$(sqlite3 "$T/rows-0.db" \
    "PRAGMA journal_mode")" = delete
check "rows file: one ok run" test "$(sqlite3 "$T/rows-0.db" \
    "SELECT count(*), tool, status FROM runs")" = "1|sfc-miou|ok"
check "rows file: the direct run's metrics" test \
    "$(sqlite3 "$T/rows-0.db" "$metrics")" = "$(sqlite3 "$T/plain.db" "$metrics")"
check "rows file: no dataset rows but the classes" test "$(sqlite3 \
    "$T/rows-0.db" "SELECT (SELECT count(*) FROM images) || ',' || \
    (SELECT count(*) FROM classes)")" = "0,$(wc -l < $G/classes.txt)"

# the merge: a run already in the db keeps its id, the shard's run is new
expect_ok miou "$T/run.db" cam
expect_ok miou "$T/plain.db" cam
expect_ok sfc-dbmerge --db "$T/run.db" "$T/rows-0.db"
check "merge summary" grep -q "merged 1 files, 1 runs, 131 rows, 0 already" \
    "$T/.out"
check "merged: the direct run's metrics" test \
    "$(sqlite3 "$T/run.db" "$metrics")" = "$(sqlite3 "$T/plain.db" "$metrics")"
check "merged: run ids 1 (cam) and 2 (pseudo)" test "$(sqlite3 "$T/run.db" \
    "SELECT group_concat(run || stage) FROM (SELECT DISTINCT run, stage \
    FROM metrics ORDER BY run)")" = "1cam,2pseudo"
check "merged: runs rows" test "$(sqlite3 "$T/run.db" "$runs")" = \
    "$(sqlite3 "$T/plain.db" "$runs" | sed 's/plain\.db/run.db/')"
check "merged: the shard's times and pid kept" test "$(sqlite3 \
    "$T/rows-0.db" "SELECT started, ended, pid FROM runs")" = \
    "$(sqlite3 "$T/run.db" "SELECT started, ended, pid FROM runs WHERE id = 2")"

# merging again adds nothing; a second shard (read in place, no
# snapshot) merges beside it
rows "$T/rows-1.db" ""
expect_ok miou "$T/run.db" crf
norows
expect_ok sfc-dbmerge --db "$T/run.db" "$T/rows-0.db" "$T/rows-1.db"
check "second merge: one new run" grep -q \
    "merged 2 files, 1 runs, 131 rows, 1 already" "$T/.out"
expect_ok sfc-dbmerge --db "$T/run.db" "$T/rows-0.db" "$T/rows-1.db"
check "third merge: nothing new" grep -q \
    "merged 2 files, 0 runs, 0 rows, 2 already" "$T/.out"
check "three runs, 393 metrics rows" test "$(sqlite3 "$T/run.db" \
    "SELECT (SELECT count(*) FROM runs) || ',' || (SELECT count(*) FROM \
    metrics)")" = "3,393"
check "integrity" test "$(sqlite3 "$T/run.db" "PRAGMA integrity_check")" = ok
check "foreign keys" test -z "$(sqlite3 "$T/run.db" "PRAGMA foreign_key_check")"

# a bad file anywhere in the list: nothing merged, one line
sqlite3 "$T/run.db" .dump > "$T/before.sql"
rows "$T/rows-2.db" "$T/snap.db"
expect_ok miou "$T/run.db" seg
norows
printf 'half a db' > "$T/rows-3.db"
expect_fail 1 sfc-dbmerge --db "$T/run.db" "$T/rows-2.db" "$T/rows-3.db"
stderr_has "rows-3.db"
expect_fail 1 sfc-dbmerge --db "$T/run.db" "$T/rows-2.db" "$T/nothere.db"
stderr_has "nothere.db"
sqlite3 "$T/rows-2.db" "PRAGMA user_version = 99"
expect_fail 1 sfc-dbmerge --db "$T/run.db" "$T/rows-2.db"
stderr_has "schema version 99"
sqlite3 "$T/run.db" .dump > "$T/after.sql"
same_bytes "$T/before.sql" "$T/after.sql"
# a rows-mode tool whose snapshot is missing fails with one line
rows "$T/rows-4.db" "$T/none.db"
expect_fail 1 sfc-miou -q --db "$T/run.db" --split train --gt $G/gt \
    --pred $G/pred
norows
stderr_has "none.db"

# an existing snapshot is kept as it is
cp "$T/snap.db" "$T/snap.copy"
expect_ok miou "$T/run.db" extra
expect_ok sfc-dbmerge --db "$T/run.db" --snapshot "$T/snap.db"
same_bytes "$T/snap.copy" "$T/snap.db"
expect_fail 2 sfc-dbmerge --db "$T/run.db"
expect_fail 2 sfc-dbmerge "$T/rows-0.db"
finish
