# t1002: pipelines/coco.mk's chain as `make -n` prints it for a COCO 2014
# folder (annotation files present, images not needed for -n): sfc-coco on
# both splits, sfc-sample, sfc-trainstep, sfc-cam in shards, CAM + CRF
# pseudo labels (SFC's COCO protocol), sfc-miou over the db's classes; with
# COCO_PSEUDO=irn the IRN chain; `make -n coco-seg` adds sfc-segtrain
# train on the pseudo labels (81 classes), predict on val2014 in shards and
# sfc-miou of the predictions (the rules voc-seg shares, stages.mk); missing
# inputs stop make at parse time.
. tests/cli/lib.sh
C="$T/coco2014"
mkdir -p "$C/annotations" "$C/train2014" "$C/val2014"
touch "$C/annotations/instances_train2014.json" \
    "$C/annotations/instances_val2014.json"
top=$(pwd)
mk() {
    make --no-print-directory -C "$top" -n BINDIR="$SFC_BIN" "$@"
}
expect_ok mk coco-pseudolabels COCO="$C" WEIGHTS=none SHARDS=2 COCO_R="$T/r"
cp "$T/.out" "$T/n.txt"
for pat in "sfc-coco --db $T/r/sfc.db --images $C/train2014" \
    "--split val2014" "sfc-sample --db" "sfc-trainstep --db" \
    "--shard 1/2" "sfc-crf --db $T/r/sfc.db --cams $T/r/cam --out $T/r/pseudo" \
    "--rule cam-crf" "sfc-miou --db $T/r/sfc.db --gt $T/r/gt/SegmentationClass" \
    "81 classes"; do
    check "make -n shows '$pat'" grep -q -- "$pat" "$T/n.txt"
done
check "CAMs stored as float32 by default" grep -q -- "--cam-dtype f32" "$T/n.txt"
check "no IRN in the CRF protocol" sh -c "! grep -q sfc-irn '$T/n.txt'"
check "no make warnings" sh -c "! grep -q warning '$T/.err'"
expect_ok mk coco-pseudolabels COCO="$C" WEIGHTS=none SHARDS=1 \
    COCO_PSEUDO=irn COCO_R="$T/r"
check "IRN option trains and infers" \
    test "$(grep -c 'sfc-irn \(train\|infer\)' "$T/.out")" = 2
: >"$T/r101.safetensors"
expect_ok mk coco-seg COCO="$C" WEIGHTS=none SHARDS=2 COCO_R="$T/r" \
    CAM_DTYPE=f16 SEG_WEIGHTS="$T/r101.safetensors" COCO_SEG_BLOCKS=3,4,23,3
tr -d '\\\n' <"$T/.out" | tr -s ' ' >"$T/seg.txt"
for pat in "sfc-crf --db $T/r/sfc.db --cams $T/r/cam --out $T/r/pseudo" \
    "sfc-segtrain train --db $T/r/sfc.db --split train2014 --labels $T/r/pseudo --weights $T/r101.safetensors --blocks 3,4,23,3 --width 64 --classes 81 --iters 100000" \
    "sfc-segtrain predict --db $T/r/sfc.db --split val2014 --model $T/r/seg.safetensors" \
    "sfc-cam .*--cam-dtype f16 --shard 1/2" \
    "sfc-segtrain predict.*--shard 0/2" "sfc-segtrain predict.*--shard 1/2" \
    "sfc-miou --db $T/r/sfc.db --gt $T/r/gt/SegmentationClass --pred $T/r/seg --split val2014 --count-split train2014 --stage seg"; do
    check "make -n coco-seg shows '$pat'" grep -q -- "$pat" "$T/seg.txt"
done
check "coco-seg: the pseudo labels before the training" sh -c \
    "grep -o 'sfc-crf\|sfc-segtrain train' '$T/seg.txt' | head -1 | grep -q sfc-crf"
nchecks=$((nchecks + 1))
rm "$C/annotations/instances_val2014.json"
if mk coco-seg COCO="$C" WEIGHTS=none >/dev/null 2>"$T/err"; then
    fail "coco-seg without val annotations succeeded"
fi
check "missing val annotation file named" grep -q \
    "coco-seg scores val2014: no annotation file" "$T/err"
nchecks=$((nchecks + 1))
if mk coco-pseudolabels WEIGHTS=none >/dev/null 2>"$T/err"; then
    fail "make without COCO succeeded"
fi
check "missing COCO named" grep -q "set COCO=" "$T/err"
nchecks=$((nchecks + 1))
if mk coco-pseudolabels COCO="$T/nowhere" WEIGHTS=none >/dev/null 2>"$T/err"; then
    fail "make without annotations succeeded"
fi
check "missing annotation file named" grep -q "no annotation file" "$T/err"
finish
