# t1004: pipelines/coco.mk's coco-seg end to end on a tiny COCO 2014
# folder: the toy dataset as COCO (tests/golden/coco/toy/instances.json,
# made from `sfc-toygen --train 12 --val 1 --seed 1`; the same file serves
# as val2014), a tiny network, two shards under make -j2: the db, CAMs,
# CAM + CRF pseudo labels, DeepLab trained on them, its predictions on
# val2014 and their mIoU over 81 classes, with float16 CAM files
# (CAM_DTYPE=f16); a second make does nothing.
# Needs: make, sqlite3.
. tests/cli/lib.sh
SRC=$(pwd)
C=$T/coco2014
expect_ok sfc-toygen -q --out "$T/toy" --train 12 --val 1 --seed 1
first=$(head -n 1 "$T/toy/ImageSets/Segmentation/train.txt")
cp "$T/toy/JPEGImages/$first.jpg" "$T/toy/JPEGImages/unannotated.jpg"
mkdir -p "$C/annotations"
cp -r "$T/toy/JPEGImages" "$C/train2014"
cp -r "$T/toy/JPEGImages" "$C/val2014"
cp tests/golden/coco/toy/instances.json "$C/annotations/instances_train2014.json"
cp tests/golden/coco/toy/instances.json "$C/annotations/instances_val2014.json"
run() {
    make --no-print-directory -C "$T" -f "$SRC/pipelines/coco.mk" \
        BINDIR="$SFC_BIN" COCO="$C" WEIGHTS=none SHARDS=2 COCO_R="$T/r" \
        COCO_BLOCKS=1,1,1,1 COCO_WIDTH=4 COCO_SIDE=4,4,8,8 COCO_CROP=32 \
        COCO_EPOCHS=1 COCO_BATCH=4 COCO_DRAWS=2 COCO_SCALES=1 \
        COCO_CRF_ITERS=2 COCO_SEG_BLOCKS=1,1,1,1 COCO_SEG_ITERS=2 \
        COCO_SEG_BATCH=2 COCO_SEG_MICRO=2 COCO_SEG_CROP=32 COCO_SEG_MSC=1 \
        CAM_DTYPE=f16 COCO_QUIET=-q "$@"
}
R=$T/r
expect_ok run -j2 coco-seg
check "the mIoU table printed (81 classes)" grep -q "unused_80" "$T/.out"
check "the first make runs the tools" grep -q "^$SFC_BIN/sfc-segtrain train" "$T/.out"
check "seg model" test -s "$R/seg.safetensors"
py=${SFC_ORACLE:-/usr/bin/python3}
if "$py" -c 'import numpy' 2>/dev/null; then
    check "float16 CAMs" "$py" -c 'import numpy as np, sys
assert np.load(sys.argv[1])["cam_w"].dtype == np.float16' "$R/cam/$first.npz"
fi
check "12 pseudo labels" test "$(ls "$R/pseudo" | wc -l)" = 12
check "12 predictions" test "$(ls "$R/seg" | wc -l)" = 12
check "two prediction shards" test -e "$R/seg/.done-0-of-2" -a \
    -e "$R/seg/.done-1-of-2"
check "seg metrics in the db" test "$(sqlite3 "$R/sfc.db" \
    "SELECT count(*) FROM metrics WHERE stage = 'seg' AND class IS NULL \
    AND name = 'miou'")" = 1
check "a seg mIoU" test -s "$R/seg-miou.txt"
check "every run ended ok" test "$(sqlite3 "$R/sfc.db" \
    "SELECT count(*) FROM runs WHERE status != 'ok'")" = 0
expect_ok run coco-seg
check "a second make runs no tool" sh -c "! grep -q '^$SFC_BIN/sfc-' '$T/.out'"
check "and prints the table again" grep -q "unused_80" "$T/.out"
finish
