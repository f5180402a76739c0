# t0302: sfc-ingest on a small generated toy set (sfc-toygen): its
# classes.txt is used, and the db's image labels and per-split class
# counts N_c equal those that PIL + numpy read from the masks
# (tests/ref/ref_ingest.py --expect). Without Python's PIL/numpy, only the
# db's own consistency is checked. Needs: sqlite3.
. tests/cli/lib.sh

expect_ok sfc-toygen -q --out "$T/toy" --train 40 --val 16 --size 40 --seed 3
cp "$T/.out" "$T/toygen.tab"
expect_ok sfc-ingest -q --db "$T/toy.db" "$T/toy"

# classes from classes.txt, in order, after background
{ echo background; cat "$T/toy/classes.txt"; } >"$T/want_classes"
sqlite3 "$T/toy.db" "SELECT name FROM classes ORDER BY id" >"$T/got_classes"
same_bytes "$T/got_classes" "$T/want_classes"
check "56 images, 40 + 16 in the splits" test "$(sqlite3 "$T/toy.db" \
    "SELECT (SELECT count(*) FROM images) || ' ' || group_concat(n, ' ')
     FROM (SELECT count(*) AS n FROM image_splits GROUP BY split
           ORDER BY split)")" = "56 40 16"

# class_stats (dataset rows) agree with the image labels
check "class_stats = counts of image_labels" test "$(sqlite3 "$T/toy.db" \
    "SELECT count(*) FROM class_stats s WHERE s.run IS NULL AND s.n_images <>
     (SELECT count(*) FROM image_splits p JOIN image_labels l ON
      l.image = p.image WHERE p.split = s.split AND l.class = s.class)")" = 0

py=${SFC_ORACLE:-}
if [ -z "$py" ] && /usr/bin/python3 -c 'import PIL, numpy' 2>/dev/null; then
    py=/usr/bin/python3
fi
if [ -n "$py" ]; then
    expect_ok "$py" tests/ref/ref_ingest.py --expect "$T/toy" --to "$T/exp"
    sqlite3 "$T/toy.db" "SELECT split, class, n_images FROM class_stats
        WHERE run IS NULL ORDER BY split, class" | tr '|' ' ' >"$T/got_counts"
    same_bytes "$T/got_counts" "$T/exp/expected_counts.txt"
    sqlite3 "$T/toy.db" "SELECT i.id || ifnull((SELECT ' ' ||
        group_concat(class, ' ') FROM (SELECT class FROM image_labels
        WHERE image = i.id ORDER BY class)), '') FROM images i ORDER BY i.id" \
        >"$T/got_labels"
    same_bytes "$T/got_labels" "$T/exp/expected_labels.txt"
else
    echo "note: no python3 PIL/numpy; mask counts not checked" >&2
fi
finish
