# t1001: sfc-coco's error paths on broken copies of
# tests/golden/coco/toy/instances.json: malformed JSON (truncated, a stray
# comma), an unknown category id, an unknown image id, a polygon point
# outside the image, an RLE of the wrong size, RLE runs that do not cover
# the image, a bad compressed counts string, a missing image file, and a
# db holding other classes. Each gives exit 1 and one stderr line naming
# the file and the annotation, writes no output folder, and leaves an
# existing db byte-for-byte unchanged (and creates none). Usage errors
# exit 2. Needs: sqlite3.
. tests/cli/lib.sh
G=tests/golden/coco/toy
J="$T/bad.json"

cp -r "$G/JPEGImages" "$T/img"
expect_ok sfc-coco -q --db "$T/db" --images "$T/img" --out "$T/good" \
    --split train "$G/instances.json"
cp "$T/db" "$T/db.orig"

# expect exit 1 naming the file and $1; nothing written
fails() {
    what=$1
    shift
    expect_fail 1 sfc-coco -q --db "$T/db" --images "$T/img" --out "$T/out" \
        --split train "$@"
    stderr_has "$what"
    same_bytes "$T/db" "$T/db.orig"
    check "no output written ($what)" test ! -e "$T/out"
    expect_fail 1 sfc-coco -q --db "$T/new.db" --images "$T/img" \
        --out "$T/out" --split train "$@"
    check "no db created ($what)" test ! -e "$T/new.db"
}
# sed the first match of $1 into $2 in a copy of the golden file
broken() {
    sed "s/$1/$2/" "$G/instances.json" >"$J"
}

at=$(grep -bo '"annotations"' "$G/instances.json" | cut -d: -f1)
head -c $((at + 3000)) "$G/instances.json" >"$J"
fails "bad.json: malformed JSON at byte" "$J"
stderr_has "after annotation 100"

broken '"iscrowd": 0,' '"iscrowd": 0,,'
fails "bad.json: malformed JSON at byte" "$J"
stderr_has "in the first annotation"

broken '"category_id": [0-9]*' '"category_id": 12'
fails "bad.json: annotation 1000: unknown category id 12" "$J"

broken '"image_id": 5000' '"image_id": 7777'
fails "bad.json: annotation 1000: unknown image id 7777" "$J"

broken '"segmentation": \[\[' '"segmentation": [[500.25, 3, '
fails "bad.json: annotation 1000: polygon point (500.25, 3) outside the 96x96 image" "$J"

broken '"size": \[96, 96\]' '"size": [96, 95]'
fails "bad.json: annotation 100" "$J"
stderr_has "RLE size 95x96 differs from its image"

broken '"counts": \[' '"counts": [5, '
fails "bad.json: annotation 100" "$J"
stderr_has "segmentation outside the image"

broken '"counts": "' '"counts": "~'
fails "bad.json: annotation 100" "$J"
stderr_has "outside '0'..'o'"

broken '"segmentation": \[\[34.5, ' '"segmentation": [[34.5, "x", '
fails "bad.json: annotation 1000: a polygon holds a non-number" "$J"

mv "$T/img/000003.jpg" "$T/img.tmp"
fails "img/000003.jpg: missing image (image 5002, annotation 100" \
    "$G/instances.json"
mv "$T/img.tmp" "$T/img/000003.jpg"

# a db holding another dataset's classes
sqlite3 "$T/other.db" <db/schema.sql
sqlite3 "$T/other.db" "PRAGMA journal_mode = WAL; INSERT INTO classes VALUES (0, 'background'), (1, 'x')" >/dev/null
cp "$T/other.db" "$T/other.orig"
expect_fail 1 sfc-coco -q --db "$T/other.db" --images "$T/img" --out "$T/out" \
    --split train "$G/instances.json"
stderr_has "other.db: its 2 classes differ from the 81"
same_bytes "$T/other.db" "$T/other.orig"
check "no output written (classes)" test ! -e "$T/out"

# usage errors
expect_fail 2 sfc-coco --db "$T/db" --images "$T/img" "$G/instances.json"
expect_fail 2 sfc-coco --db "$T/db" --images "$T/img" --out "$T/out" \
    --crowd maybe "$G/instances.json"
expect_fail 2 sfc-coco --db "$T/db" --images "$T/img" --out "$T/out"
finish
