# t0403: sfc-miou --db: ids from a split and class names from the db,
# head/middle/tail from the db's image labels, one runs row (tool, status,
# configuration) and the metrics rows (per class iou/precision/recall/
# tp/fp/fn, NULL for 0/0, summary rows; the sweep curve as maps
# '<map>@<threshold>'); a failed run leaves status 'failed' and no rows;
# --classes must agree with the db.
# Needs: the sqlite3 shell (make deps), db/schema.sql, awk.
. tests/cli/lib.sh
G=tests/golden/miou/cli
DB="$T/sfc.db"
command -v sqlite3 >/dev/null || { echo "skip: no sqlite3 shell"; exit 0; }
q() { sqlite3 "$DB" "$1"; }

# a db holding the fixture: classes, images, the split 'train', labels
sqlite3 "$DB" <db/schema.sql
awk '{ printf "INSERT INTO classes VALUES (%d, '\''%s'\'');\n", NR - 1, $1 }' \
    $G/classes.txt | sqlite3 "$DB"
awk '{ printf "INSERT INTO images (id, width, height, path) VALUES ('\''%s'\'', %d, %d, '\''%s.jpg'\'');\n", $1, $2, $3, $1
       printf "INSERT INTO image_splits VALUES ('\''train'\'', '\''%s'\'', %d);\n", $1, NR - 1
       for (i = 4; i <= NF; i++)
           printf "INSERT INTO image_labels VALUES ('\''%s'\'', %d);\n", $1, $i }' \
    $G/images.txt | sqlite3 "$DB"

# predictions: the same numbers as with --classes and --groups gt (the
# db's labels are the gt's classes)
expect_ok sfc-miou -q --csv --db "$DB" --split train --gt $G/gt --pred $G/pred
cp "$T/.out" "$T/db.csv"
check "numbers with db classes and groups" \
    awk -v map=pred -f tests/cli/miou-compare.awk $G/expect-pred.txt "$T/db.csv"
check "one run, ok" test "$(q "SELECT count(*), tool, status FROM runs")" = "1|sfc-miou|ok"
check "run ended" test -n "$(q "SELECT ended FROM runs WHERE id = 1")"
check "config records --pred" test "$(q "SELECT json_extract(config, '\$.pred') FROM runs")" = "$G/pred"
check "131 rows (21 x 6 per class + 5 summary)" test "$(q "SELECT count(*) FROM metrics WHERE run = 1")" -eq 131
check "stage, map, split" test "$(q "SELECT DISTINCT stage || '/' || map || '/' || split FROM metrics")" = "pseudo//train"
miou=$(q "SELECT value FROM metrics WHERE run = 1 AND name = 'miou'")
want=$(grep '^mIoU ' $G/expect-pred.txt | cut -d' ' -f2)
check "db miou $miou vs $want" awk -v a="$miou" -v b="$want" \
    'BEGIN { d = a - b; exit !(d < 1e-12 && d > -1e-12) }'
nnan=$(awk 'NF == 7 && $3 == "nan"' $G/expect-pred.txt | wc -l)
check "0/0 IoU stored as NULL" test "$(q "SELECT count(*) FROM metrics WHERE name = 'iou' AND value IS NULL")" -eq "$nnan"
check "tp + fn = gt pixels (background)" test "$(q "SELECT sum(value) FROM metrics WHERE class = 0 AND name IN ('tp', 'fn')")" = "702.0"
check "head row" test "$(q "SELECT round(value, 6) FROM metrics WHERE name = 'head'")" = "0.580636"

# CAM sweep: best rows plus the curve
expect_ok sfc-miou -q --db "$DB" --split train --gt $G/gt --cams $G/cam \
    --map sum --p-weight 0.7 --sweep 0.05:0.6:0.05 --stage cam
check "second run ok" test "$(q "SELECT status FROM runs WHERE id = 2")" = ok
check "curve rows" test "$(q "SELECT count(*) FROM metrics WHERE run = 2 AND map LIKE 'M_W+0.7M_P@%' AND name = 'miou'")" -eq 12
check "best threshold row" test "$(q "SELECT value FROM metrics WHERE run = 2 AND map = 'M_W+0.7M_P' AND name = 'threshold'")" = 0.05

# a failing run: status failed, no rows
expect_fail 1 sfc-miou -q --db "$DB" --gt $G/gt --pred $G/pred img_000 nope
check "failed run recorded" test "$(q "SELECT status FROM runs WHERE id = 3")" = failed
check "no rows of the failed run" test "$(q "SELECT count(*) FROM metrics WHERE run = 3")" -eq 0

# --classes must match the db; a missing db is an error
printf 'background\na\n' >"$T/two.txt"
expect_fail 1 sfc-miou -q --db "$DB" --classes "$T/two.txt" --gt $G/gt --pred $G/pred img_000
stderr_has "$T/two.txt: 2 class names, the db has 21"
expect_fail 1 sfc-miou -q --db "$T/none.db" --gt $G/gt --pred $G/pred img_000
stderr_has "$T/none.db"
finish
