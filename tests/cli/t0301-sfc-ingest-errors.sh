# t0301: sfc-ingest's error paths on broken copies of tests/golden/ingest/voc:
# a missing image, a mask of the wrong size, a mask with an unknown class
# id, a missing mask, unknown class names (XML, label list) and ids (label
# list), a missing list, and classes that differ from the db's. Each gives
# exit 1 and one stderr line naming the file, and leaves an existing db
# byte-for-byte unchanged (and creates no db when there was none). Usage
# errors exit 2. Needs: sqlite3.
. tests/cli/lib.sh
G=tests/golden/ingest/voc
A=2007_000003 # the first image (its masks are in bad/)

cp -r "$G" "$T/good"
expect_ok sfc-ingest -q --db "$T/db" "$T/good"
cp "$T/db" "$T/db.orig"
test ! -e "$T/db-wal" || fail "WAL file left after a clean close"

# fresh broken copy of the folder: $T/bad
broken() {
    rm -rf "$T/bad"
    cp -r "$G" "$T/bad"
}
# expect exit 1, one line naming $1, db unchanged, no new db
fails_naming() {
    what=$1
    shift
    expect_fail 1 sfc-ingest -q "$@" --db "$T/db" "$T/bad"
    stderr_has "$what"
    same_bytes "$T/db" "$T/db.orig"
    expect_fail 1 sfc-ingest -q "$@" --db "$T/new.db" "$T/bad"
    check "no db created ($what)" test ! -e "$T/new.db"
}

broken
rm "$T/bad/JPEGImages/2007_000017.jpg"
fails_naming "JPEGImages/2007_000017.jpg"
stderr_has "missing image"

broken
cp "$T/bad/bad/wrong_size.png" "$T/bad/SegmentationClass/$A.png"
fails_naming "SegmentationClass/$A.png"
stderr_has "mask is "

broken
cp "$T/bad/bad/unknown_id.png" "$T/bad/SegmentationClass/$A.png"
fails_naming "SegmentationClass/$A.png"
stderr_has "unknown class id 30"

broken
rm "$T/bad/SegmentationClass/2007_000010.png"
fails_naming "SegmentationClass/2007_000010.png"
stderr_has "missing mask"

# a wrong-size mask is caught also when labels come from elsewhere
broken
cp "$T/bad/bad/wrong_size.png" "$T/bad/SegmentationClass/$A.png"
fails_naming "SegmentationClass/$A.png" --labels xml

broken
sed -i 's|<name>person</name>|<name>zebra</name>|' "$T/bad/Annotations/$A.xml"
fails_naming "Annotations/$A.xml" --labels xml
stderr_has "unknown class name 'zebra'"

broken
sed -i "s/^$A .*/$A person zebra/" "$T/bad/labels.txt"
fails_naming "labels.txt" --labels list --label-file "$T/bad/labels.txt"
stderr_has "line 1: unknown class name 'zebra'"

broken
sed -i "s/^$A .*/$A 15 21/" "$T/bad/labels.txt"
fails_naming "labels.txt" --labels list --label-file "$T/bad/labels.txt"
stderr_has "unknown class id '21'"

broken
sed -i "/^2007_000017 /d" "$T/bad/labels.txt"
fails_naming "labels.txt" --labels list --label-file "$T/bad/labels.txt"
stderr_has "no labels for image '2007_000017'"

broken
echo "$A" >>"$T/bad/ImageSets/Segmentation/train.txt"
fails_naming "ImageSets/Segmentation/train.txt"
stderr_has "listed twice"

broken
fails_naming "nosuch.txt" --splits train,nosuch

# classes differing from those already in the db: the db is named
broken
printf 'cat\ndog\n' >"$T/bad/classes.txt"
printf '2007_000017 cat\n' >"$T/cl.txt"
expect_fail 1 sfc-ingest -q --db "$T/db" --splits val --labels list \
    --label-file "$T/cl.txt" "$T/bad"
stderr_has "$T/db: its 21 classes differ from the 3 of '.*classes.txt'"
same_bytes "$T/db" "$T/db.orig"
# ... while a new db takes them
expect_ok sfc-ingest -q --db "$T/cats.db" --splits val --labels list \
    --label-file "$T/cl.txt" "$T/bad"
check "cat and dog" test "$(sqlite3 "$T/cats.db" "SELECT group_concat(name)
    FROM (SELECT name FROM classes ORDER BY id)")" = "background,cat,dog"

# a db that is not sfc's
echo "not a database at all, just text that is long enough to be read" \
    >"$T/junk.db"
broken
expect_fail 1 sfc-ingest -q --db "$T/junk.db" "$T/bad"
stderr_has "junk.db"

# usage errors
expect_fail 2 sfc-ingest --db "$T/db"
expect_fail 2 sfc-ingest "$T/good"
expect_fail 2 sfc-ingest --db "$T/db" --labels list "$T/good"
expect_fail 2 sfc-ingest --db "$T/db" --label-file x "$T/good"
expect_fail 2 sfc-ingest --db "$T/db" --labels nope "$T/good"
same_bytes "$T/db" "$T/db.orig"
finish
