# t1000: sfc-coco on tests/golden/coco/toy/instances.json (the toy dataset
# as COCO: 80 categories with COCO's gapped ids, polygons, compressed RLE,
# one crowd region, one image without annotations; made by
# tests/ref/ref_coco.py from `sfc-toygen --train 12 --val 1 --seed 1`):
# the db gets 81 classes in category-id order, the 12 annotated images with
# the labels of the toy's true masks, the unannotated image is left out and
# listed; the VOC-layout output (masks with values up to 77, classes.txt)
# goes through sfc-ingest with the same labels (81 classes in the VOC
# ingest); a rerun writes the same bytes; --crowd ignore puts 255 on the
# crowd region; sfc-sample runs on the 80-class db. Needs: sqlite3.
. tests/cli/lib.sh
G=tests/golden/coco/toy

expect_ok sfc-toygen -q --out "$T/toy" --train 12 --val 1 --seed 1
# the image without annotations must exist too
first=$(head -n 1 "$T/toy/ImageSets/Segmentation/train.txt")
cp "$T/toy/JPEGImages/$first.jpg" "$T/toy/JPEGImages/unannotated.jpg"
expect_ok sfc-coco -q --db "$T/db" --images "$T/toy/JPEGImages" \
    --out "$T/coco" --split train "$G/instances.json"
check "81 classes" test "$(sqlite3 "$T/db" 'SELECT count(*) FROM classes')" = 81
check "class 5 is traffic_light" \
    test "$(sqlite3 "$T/db" 'SELECT name FROM classes WHERE id = 5')" = traffic_light
check "12 images in split train" \
    test "$(sqlite3 "$T/db" "SELECT count(*) FROM image_splits WHERE split = 'train'")" = 12
check "unannotated image listed" grep -qx unannotated "$T/coco/train_unannotated.txt"
check "unannotated image not in the db" \
    test "$(sqlite3 "$T/db" "SELECT count(*) FROM images WHERE id = 'unannotated'")" = 0
check "12 masks" test "$(ls "$T/coco/SegmentationClass" | wc -l)" = 12
check "80 names in classes.txt" test "$(wc -l <"$T/coco/classes.txt")" = 80
check "class counts on stdout" grep -q "^77	" "$T/.out"

# labels equal those of the toy's true masks (toy class c = class 10c - 3)
expect_ok sfc-ingest -q --db "$T/toy.db" "$T/toy"
sqlite3 "$T/toy.db" "SELECT s.image, l.class * 10 - 3 FROM image_labels l
    JOIN image_splits s ON s.image = l.image AND s.split = 'train'
    ORDER BY 1, 2" >"$T/want"
sqlite3 "$T/db" "SELECT image, class FROM image_labels ORDER BY 1, 2" >"$T/got"
same_bytes "$T/got" "$T/want"

# the VOC-layout output through the existing ingest: 81 classes, same labels
expect_ok sfc-ingest -q --db "$T/voc.db" --images "$T/toy/JPEGImages" \
    --classes "$T/coco/classes.txt" "$T/coco"
sqlite3 "$T/voc.db" "SELECT image, class FROM image_labels ORDER BY 1, 2" >"$T/got2"
same_bytes "$T/got2" "$T/want"
sqlite3 "$T/db" "SELECT id, name FROM classes ORDER BY id" >"$T/c1"
sqlite3 "$T/voc.db" "SELECT id, name FROM classes ORDER BY id" >"$T/c2"
same_bytes "$T/c1" "$T/c2"

# deterministic; the db takes the rerun
expect_ok sfc-coco -q --db "$T/db" --images "$T/toy/JPEGImages" \
    --out "$T/coco2" --split train "$G/instances.json"
for f in "$T/coco/SegmentationClass/"*.png; do
    same_bytes "$f" "$T/coco2/SegmentationClass/$(basename "$f")"
done
same_bytes "$T/coco/ImageSets/Segmentation/train.txt" \
    "$T/coco2/ImageSets/Segmentation/train.txt"

# crowd ignored: the crowd image's mask holds 255, the others are the same
expect_ok sfc-coco -q --db "$T/db3" --images "$T/toy/JPEGImages" \
    --out "$T/coco3" --crowd ignore --split train "$G/instances.json"
ndiff=0
for f in "$T/coco/SegmentationClass/"*.png; do
    cmp -s "$f" "$T/coco3/SegmentationClass/$(basename "$f")" || ndiff=$((ndiff + 1))
done
check "one mask differs with --crowd ignore ($ndiff)" test "$ndiff" = 1
expect_ok sfc-ingest -q --db "$T/voc3.db" --images "$T/toy/JPEGImages" \
    --classes "$T/coco3/classes.txt" "$T/coco3"

# 80 classes downstream: sampling (DC from the data, an 80-slot bank)
expect_ok sfc-sample -q --db "$T/db" --split train --epochs 1 --batch 4 \
    --draws 2 --crop 64 --seed 1
check "80 DC rows" test "$(sqlite3 "$T/db" "SELECT count(*) FROM class_stats
    WHERE run IS NOT NULL AND dc IS NOT NULL")" = 80
check "bank rows for 80 classes" test "$(sqlite3 "$T/db" "SELECT count(DISTINCT class)
    FROM image_bank")" = 80
finish
