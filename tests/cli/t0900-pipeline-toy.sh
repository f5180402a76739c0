# t0900: the toy pipeline end to end on a tiny set (pipelines/toy.mk run
# on its own with the tools under test): both methods produce CAMs, CRF
# labels, pseudo labels, segmentation networks (and the true masks' one)
# and mIoU rows; a second make does nothing; removing one stage's
# output reruns only what follows it. Needs: make, sqlite3.
. tests/cli/lib.sh

run() {
    make --no-print-directory -f pipelines/toy.mk BINDIR="$SFC_BIN" \
        TOY_RUN="$T/run" TOY_TRAIN=48 TOY_VAL=8 TOY_SIZE=32 TOY_CLASSES=4 \
        TOY_EPOCHS=1 TOY_BATCH=8 TOY_DRAWS=2 TOY_PDW_WARMUP=2 \
        TOY_SCALES=1,0.5 TOY_WIDTH=4 TOY_SIDE=4,4,8,8 TOY_IRN_IMAGES=16 \
        TOY_IRN_EPOCHS=1 TOY_IRN_RADIUS=3 TOY_SEG_ITERS=2 TOY_SEG_WIDTH=2 \
        TOY_SEG_BATCH=4 "$@"
}

expect_ok run demo
check "mIoU table printed" grep -q "crf-sfc" "$T/.out"
for m in sfc baseline; do
    check "$m: final weights" test -s "$T/run/$m/final.safetensors"
    check "$m: 8 CAM files" test "$(ls "$T/run/$m/cam" | wc -l)" = 8
    check "$m: 8 CRF labels" test "$(ls "$T/run/$m/crf" | wc -l)" = 8
    check "$m: 16 IR labels" test "$(ls "$T/run/$m/ir_label" | wc -l)" = 16
    check "$m: 8 pseudo labels" test "$(ls "$T/run/$m/pseudo" | wc -l)" = 8
    check "$m: 16 train pseudo labels" \
        test "$(ls "$T/run/$m/pseudo-train" | wc -l)" = 16
done
for m in sfc baseline gt; do
    check "$m: segmentation model" test -s "$T/run/$m/seg.safetensors"
    check "$m: 8 segmentations" test "$(ls "$T/run/$m/seg" | wc -l)" = 8
done
check "segmentation table printed" grep -q "pseudo_train" "$T/.out"
check "metrics rows for 11 stages" test "$(sqlite3 "$T/run/sfc.db" \
    "SELECT count(DISTINCT stage) FROM metrics")" = 11
check "every run ended ok" test "$(sqlite3 "$T/run/sfc.db" \
    "SELECT count(*) FROM runs WHERE status != 'ok'")" = 0
expect_ok run -q demo-files
expect_ok run --question demo-files
rm "$T/run/sfc/crf-miou.txt"
expect_ok run -n demo-files
cp "$T/.out" "$T/dry"
check "only the removed stage reruns" test "$(grep -c "sfc-miou" "$T/dry")" = 1
check "nothing else reruns" test "$(grep -c -e sfc-cam -e sfc-trainstep -e sfc-crf -e sfc-irn "$T/dry")" = 0
# a stage in the middle: SFC's CAMs; its CAM scores, CRF and pseudo labels
# follow, its training and the baseline do not
rm "$T/run/sfc/cam.done"
expect_ok run -n demo-files
cp "$T/.out" "$T/dry2"
check "the CAM stage reruns" test "$(grep -c "sfc-cam .*sfc/final" "$T/dry2")" = 1
cat "$T/dry2" >&2
check "its followers rerun" test "$(grep -c -e "sfc-crf .*sfc/cam " \
    -e "sfc-irn infer" "$T/dry2")" = 2
check "no training, no baseline" test "$(grep -c -e sfc-trainstep -e "irn train" \
    -e baseline/cam "$T/dry2")" = 0
finish
