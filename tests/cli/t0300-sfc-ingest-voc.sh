# t0300: sfc-ingest on the 3-image VOC folder of tests/golden/ingest/voc
# (written by tests/ref/ref_ingest.py with PIL; the expected sizes, labels
# and class counts are numpy's reading of the masks): labels from masks,
# from the XML annotations and from a label list all give the expected
# rows; splits keep list order; re-ingesting changes no data row; a class
# file is honoured. With the oracle, the same on a fresh random folder.
# Needs: sqlite3.
. tests/cli/lib.sh
G=tests/golden/ingest/voc

# The db's view of a dataset, in the expectation files' formats.
db_images() {
    sqlite3 "$1" "SELECT id, width, height FROM images ORDER BY id" | tr '|' ' '
}
db_labels() {
    sqlite3 "$1" "SELECT i.id || ifnull((SELECT ' ' || group_concat(class,
        ' ') FROM (SELECT class FROM image_labels WHERE image = i.id
        ORDER BY class)), '') FROM images i ORDER BY i.id"
}
db_counts() {
    sqlite3 "$1" "SELECT split, class, n_images FROM class_stats
        WHERE run IS NULL ORDER BY split, class" | tr '|' ' '
}
# Every data row (not runs), for idempotence.
db_data() {
    for t in classes images image_splits image_labels; do
        sqlite3 "$1" "SELECT * FROM $t ORDER BY 1, 2" || echo "error $t"
    done
    sqlite3 "$1" "SELECT * FROM class_stats ORDER BY split, class"
}

check_folder() { # DIR DB: the db holds what the expectation files say
    db_images "$2" >"$T/got_images"
    sort "$1/expected_images.txt" >"$T/want_images"
    same_bytes "$T/got_images" "$T/want_images"
    db_labels "$2" >"$T/got_labels"
    same_bytes "$T/got_labels" "$1/expected_labels.txt"
    db_counts "$2" >"$T/got_counts"
    same_bytes "$T/got_counts" "$1/expected_counts.txt"
}

cp -r "$G" "$T/voc"
expect_ok sfc-ingest -q --db "$T/a.db" "$T/voc"
check_folder "$T/voc" "$T/a.db"
check "stdout class table header" grep -q "^id	name	train	trainval	val$" \
    "$T/.out"
check "stdout: person row" grep -q "^15	person	" "$T/.out"
check "20 VOC classes + background" \
    test "$(sqlite3 "$T/a.db" "SELECT count(*) || ' ' || max(id) || ' ' ||
        (SELECT name FROM classes WHERE id = 20) FROM classes")" = "21 20 tvmonitor"
# val.txt is in SFC's path style; its ids and list order are kept
sed 's|^/JPEGImages/\([^.]*\)\.jpg .*|\1|' "$T/voc/ImageSets/Segmentation/val.txt" \
    >"$T/want_val"
sqlite3 "$T/a.db" "SELECT image FROM image_splits WHERE split = 'val'
    ORDER BY pos" >"$T/got_val"
same_bytes "$T/got_val" "$T/want_val"
sqlite3 "$T/a.db" "SELECT image FROM image_splits WHERE split = 'trainval'
    ORDER BY pos" >"$T/got_tv"
same_bytes "$T/got_tv" "$T/voc/ImageSets/Segmentation/trainval.txt"
# paths: absolute, the .png image found, every mask recorded
check "image paths are absolute files" test "$(sqlite3 "$T/a.db" \
    "SELECT count(*) FROM images WHERE path LIKE '/%' AND mask LIKE
     '%/SegmentationClass/' || id || '.png'")" = 3
for p in $(sqlite3 "$T/a.db" "SELECT path FROM images"); do
    check "image file $p exists" test -f "$p"
done
check "one .png image" test "$(sqlite3 "$T/a.db" \
    "SELECT count(*) FROM images WHERE path LIKE '%.png'")" = 1
check "run recorded" test "$(sqlite3 "$T/a.db" "SELECT tool, status,
    seed IS NULL, json_extract(config, '\$.labels') FROM runs")" = \
    "sfc-ingest|ok|1|masks"
check "groups recorded" test "$(sqlite3 "$T/a.db" "SELECT count(*) FROM
    class_stats WHERE grp IS NULL")" = 0

# re-ingest: the same data rows, one more run
db_data "$T/a.db" >"$T/data1"
check "data rows read" test "$(wc -l <"$T/data1")" -eq 96 -a \
    "$(grep -c error "$T/data1")" -eq 0
expect_ok sfc-ingest -q --db "$T/a.db" "$T/voc"
db_data "$T/a.db" >"$T/data2"
same_bytes "$T/data1" "$T/data2"
check "second run" test "$(sqlite3 "$T/a.db" "SELECT count(*) FROM runs")" = 2

# labels from the XML annotations (a <part> name is not a class)
expect_ok sfc-ingest -q --labels xml --db "$T/x.db" "$T/voc"
check_folder "$T/voc" "$T/x.db"
# labels from a list file (names and ids mixed)
expect_ok sfc-ingest -q --labels list --label-file "$T/voc/labels.txt" \
    --db "$T/l.db" "$T/voc"
check_folder "$T/voc" "$T/l.db"
# only some splits
expect_ok sfc-ingest -q --splits val --db "$T/v.db" "$T/voc"
check "only val" test "$(sqlite3 "$T/v.db" "SELECT group_concat(DISTINCT split)
    FROM image_splits")" = val
grep '^val ' "$T/voc/expected_counts.txt" >"$T/want_vc"
db_counts "$T/v.db" >"$T/got_vc"
same_bytes "$T/got_vc" "$T/want_vc"

# a class file: classes.txt in the folder is used (here the VOC names
# again, with a comment and a leading "background" line)
{ echo "# the VOC classes"; echo background
  sed -n 's/^[0-9]*	\([a-z]*\)	.*/\1/p' "$T/.out"; } >"$T/voc/classes.txt"
test "$(wc -l <"$T/voc/classes.txt")" -eq 22 || fail "classes.txt not written"
expect_ok sfc-ingest -q --db "$T/c.db" "$T/voc"
check_folder "$T/voc" "$T/c.db"
check "classes.txt recorded" test "$(sqlite3 "$T/c.db" "SELECT
    json_extract(config, '\$.classes') LIKE '%/classes.txt' FROM runs")" = 1

# a fresh random folder from the oracle
if [ -n "${SFC_ORACLE:-}" ]; then
    seed=$(date +%s)
    if "$SFC_ORACLE" tests/ref/ref_ingest.py --out "$T/fresh" --seed "$seed"; then
        expect_ok sfc-ingest -q --db "$T/f.db" "$T/fresh"
        check_folder "$T/fresh" "$T/f.db"
        expect_ok sfc-ingest -q --labels xml --db "$T/fx.db" "$T/fresh"
        check_folder "$T/fresh" "$T/fx.db"
    else
        fail "ref_ingest.py --seed $seed failed"
    fi
fi
finish
