# t1003: `make -n voc-seg` (pipelines/voc.mk) shows the whole chain after
# the pseudo labels: sfc-segtrain train on them with every DeepLab option
# as a flag, sfc-segtrain predict on the val list in SHARDS shards, and
# sfc-miou of the predictions; SEG_WEIGHTS reaches --weights. Nothing runs.
# Needs: make.
. tests/cli/lib.sh
mkdir -p "$T/VOC/ImageSets/Segmentation"
: >"$T/VOC/ImageSets/Segmentation/train.txt"
: >"$T/VOC/ImageSets/Segmentation/val.txt"
: >"$T/r101.safetensors"
expect_ok make --no-print-directory -n -f pipelines/voc.mk voc-seg \
    VOC="$T/VOC" WEIGHTS=none SEG_WEIGHTS="$T/r101.safetensors" \
    VOC_SEG_BLOCKS=3,4,23,3 SHARDS=2 VOC_R="$T/run"
tr -d '\\\n' <"$T/.out" | tr -s ' ' >"$T/cmds"
check "train on the pseudo labels" grep -q \
    "sfc-segtrain train --db $T/run/sfc.db --split train --labels $T/run/pseudo --weights $T/r101.safetensors --blocks 3,4,23,3" \
    "$T/cmds"
for o in "--iters 20000" "--batch 10" "--crop 321" "--msc 1,0.75,0.5" \
    "--lr 2.5e-4 --head-lr-mult 10 --bias-lr-mult 20" "--momentum 0.9" \
    "--weight-decay 5e-4" "--scales 0.5,0.75,1,1.25,1.5"; do
    check "train flag $o" grep -q -- "$o" "$T/cmds"
done
check "predict shard 0/2" grep -q "sfc-segtrain predict.*--shard 0/2" \
    "$T/cmds"
check "predict shard 1/2" grep -q "sfc-segtrain predict.*--shard 1/2" \
    "$T/cmds"
check "predict the val list" grep -q -- \
    "--list $T/VOC/ImageSets/Segmentation/val.txt --model" "$T/cmds"
check "score the predictions" grep -q \
    "sfc-miou --db $T/run/sfc.db --gt $T/VOC/SegmentationClass --pred $T/run/seg" \
    "$T/cmds"
check "the pseudo labels come first" sh -c \
    "grep -o 'sfc-irn infer\|sfc-segtrain train' '$T/cmds' | head -1 | grep -q 'sfc-irn infer'"
finish
