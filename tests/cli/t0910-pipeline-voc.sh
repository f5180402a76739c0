# t0910: pipelines/voc.mk end to end on a tiny VOC-layout folder (the toy
# generator's output: JPEGImages, SegmentationClass, ImageSets/Segmentation,
# classes.txt), a tiny network, two shards under make -j2: every stage's
# files and db rows; a second make does nothing; `make -n` on a fresh run
# shows the whole chain; a swapped stage program reruns that stage and what
# follows only, with the same bytes when it computes the same, and so do
# swapping it back and a changed parameter (the stage signatures); a stage
# whose input changed replaces its old outputs; voc-report; progress lines
# (SFC_PROGRESS=lines); every tool's runs record, failed runs marked; with
# SegmentationClassAug the training list is train_aug; missing inputs stop
# make with one message. Needs: make, sqlite3.
. tests/cli/lib.sh

SRC=$(pwd)
sfc-toygen --out "$T/VOC" --size 32 --train 24 --val 8 --classes 4 \
    --seed 3 -q >/dev/null

# make -n output with continued lines joined, one command a line
plan() {
    sed -e :a -e '/\\$/N; s/\\\n//; ta' "$T/.out" > "$1"
}

run() {
    make --no-print-directory -C "$T" -f "$SRC/pipelines/voc.mk" \
        BINDIR="$SFC_BIN" VOC="$T/VOC" WEIGHTS=none SHARDS=2 \
        VOC_BLOCKS=1,1,1,1 VOC_WIDTH=4 VOC_SIDE=4,4,8,8 VOC_CROP=32 \
        VOC_CANVAS=32 VOC_EPOCHS=1 VOC_BATCH=8 VOC_DRAWS=2 \
        VOC_SCALES=1,0.5 VOC_IRN_BATCH=8 VOC_IRN_MICRO=8 VOC_IRN_EPOCHS=1 \
        VOC_IRN_RADIUS=3 VOC_QUIET=-q "$@"
}
R=$T/runs/voc
DB=$R/sfc.db

# the plan of a fresh run: every stage, both shards of the per-image ones
expect_ok run -n voc-pseudolabels
plan "$T/plan"
for c in "sfc-ingest" "sfc-sample" "sfc-trainstep" "sfc-cam.*--shard 0/2" \
    "sfc-cam.*--shard 1/2" "sfc-crf.*--shard 1/2" "sfc-irn train" \
    "sfc-irn infer.*--shard 0/2" "sfc-miou.*--stage pseudo"; do
    check "make -n shows $c" grep -q -- "$c" "$T/plan"
done
check "no run folder after make -n" test ! -e "$R"
check "training list train" grep -q "sfc-sample.*--split train " "$T/plan"

expect_ok run -j2 voc-pseudolabels
check "summary printed" grep -q "^pseudo " "$T/.out"
check "final weights" test -s "$R/train/final.safetensors"
check "IRN weights" test -s "$R/irn.safetensors"
for d in cam ir_label pseudo; do
    check "$d: 24 outputs" test "$(ls "$R/$d" | wc -l)" = 24
    check "$d: two shard stamps" test -e "$R/$d/.done-0-of-2" -a \
        -e "$R/$d/.done-1-of-2"
done
check "metrics of cam, crf, pseudo" test "$(sqlite3 "$DB" \
    "SELECT group_concat(stage) FROM (SELECT DISTINCT stage FROM metrics \
    ORDER BY stage)")" = "cam,crf,pseudo"
check "every run ended ok" test "$(sqlite3 "$DB" \
    "SELECT count(*) FROM runs WHERE status != 'ok'")" = 0
check "two runs per sharded stage" test "$(sqlite3 "$DB" "SELECT \
    group_concat(n) FROM (SELECT count(*) AS n FROM runs WHERE tool IN \
    ('sfc-cam', 'sfc-crf') GROUP BY tool)")" = "2,2"

# the report page of the run
expect_ok run voc-report
check "report page" grep -q "<html" "$R/report.html"

# progress: lines, not a bar, when the shards share a terminal
if command -v script >/dev/null 2>&1; then
    mi="sfc-miou --db $DB --gt $T/VOC/SegmentationClass --pred $R/pseudo --split train"
    # (the terminal ends lines with \r\n; a bar starts with \r)
    env -u SFC_PROGRESS script -qec "$mi >/dev/null" /dev/null > "$T/bar"
    script -qec "SFC_PROGRESS=lines $mi >/dev/null" /dev/null > "$T/lines"
    cr=$(printf '\r')
    check "a bar on a terminal" grep -q "${cr}sfc-miou: images" "$T/bar"
    check "SFC_PROGRESS=lines: no bar" test "$(grep -c "${cr}sfc" \
        "$T/lines")" = 0
    check "SFC_PROGRESS=lines: a line" grep -q \
        "^sfc-miou: images: 24/24 done" "$T/lines"
fi

# a second run does nothing
expect_ok run -q voc-pseudolabels
expect_ok run voc-pseudolabels
check "second make runs nothing" test ! -s "$T/.out" -o \
    "$(grep -c sfc- "$T/.out")" = 0

# swap the CRF stage for a program honouring the same files (here a
# wrapper of sfc-crf that logs its calls): the CRF stage and what follows
# rerun, training and CAMs do not, and equal inputs give equal bytes
cp -r "$R/pseudo" "$T/pseudo.before"
cp "$R/train/final.safetensors" "$T/final.before"
cat > "$T/my-crf" <<EOF
#!/bin/sh
echo called >> "$T/my-crf.log"
exec "$SFC_BIN/sfc-crf" "\$@"
EOF
chmod +x "$T/my-crf"
expect_ok run -n voc-pseudolabels CRF="$T/my-crf"
plan "$T/plan2"
check "swap: no training" test "$(grep -c -e "^[^ ]*sfc-trainstep" \
    -e "^[^ ]*sfc-cam" -e "^[^ ]*sfc-sample" "$T/plan2")" = 0
check "swap: the CRF and what follows rerun" test "$(grep -c \
    -e "^[^ ]*my-crf" -e "^[^ ]*sfc-irn train" -e "^[^ ]*sfc-irn infer" \
    "$T/plan2")" = 5
expect_ok run -j2 voc-pseudolabels CRF="$T/my-crf"
check "swapped program ran per shard" test "$(wc -l < "$T/my-crf.log")" = 2
same_bytes "$T/final.before" "$R/train/final.safetensors"
for f in "$T"/pseudo.before/*.png; do
    same_bytes "$f" "$R/pseudo/$(basename "$f")"
done
expect_ok run -q voc-files CRF="$T/my-crf"
# back to sfc-crf, older than every stamp: the signature (crf.sig) still
# reruns the stage; so does a changed parameter, and only from its stage on
expect_ok run -n voc-pseudolabels
plan "$T/plan4"
check "swap back: the CRF reruns" test "$(grep -c "^[^ ]*sfc-crf .*--shard" \
    "$T/plan4")" = 2
check "swap back: no training, no CAMs" test "$(grep -c -e "^[^ ]*sfc-cam" \
    -e "^[^ ]*sfc-trainstep" "$T/plan4")" = 0
expect_ok run -j2 voc-pseudolabels
expect_ok run -n voc-pseudolabels VOC_RW_RADIUS=4
plan "$T/plan5"
check "a new random-walk radius reruns the walk" test "$(grep -c \
    "^[^ ]*sfc-irn infer .*--radius 4 --shard" "$T/plan5")" = 2
check "and nothing before it" test "$(grep -c -e "^[^ ]*sfc-crf" \
    -e "^[^ ]*sfc-irn train" -e "^[^ ]*sfc-cam" "$T/plan5")" = 0

# a stage whose input changed does not keep its old outputs (the tools
# skip existing files): a planted label is replaced when the IRN changes
id=$(head -n 1 "$T/VOC/ImageSets/Segmentation/train.txt")
cp "$R/pseudo/$id.png" "$T/good.png"
printf 'stale' > "$R/pseudo/$id.png"
touch "$R/irn.safetensors"
expect_ok run -j2 voc-pseudolabels
same_bytes "$T/good.png" "$R/pseudo/$id.png"

# SBD present: train_aug is the training list, its masks give the labels
cp -r "$T/VOC/SegmentationClass" "$T/VOC/SegmentationClassAug"
cat "$T/VOC/ImageSets/Segmentation/train.txt" \
    "$T/VOC/ImageSets/Segmentation/val.txt" \
    > "$T/VOC/ImageSets/Segmentation/train_aug.txt"
expect_ok run -n voc-pseudolabels RUN=aug
plan "$T/plan3"
check "aug: masks" grep -q "sfc-ingest.*--masks SegmentationClassAug" "$T/plan3"
check "aug: both lists" grep -q -- "--splits train,train_aug" "$T/plan3"
check "aug: training list" grep -q "sfc-sample.*--split train_aug" "$T/plan3"
check "aug: CAMs of train_aug" grep -q "sfc-cam.*--split train_aug" "$T/plan3"
check "aug: scored on train" grep -q "sfc-miou.*--split train " "$T/plan3"

# every stage left a record: tool, version, options, seed where it draws
# random numbers, start and end times
check "every tool recorded" test "$(sqlite3 "$DB" "SELECT group_concat(tool) \
    FROM (SELECT DISTINCT tool FROM runs ORDER BY tool)")" = \
    "sfc-cam,sfc-crf,sfc-ingest,sfc-irn infer,sfc-irn train,sfc-miou,sfc-sample,sfc-trainstep"
check "versions, options, times" test "$(sqlite3 "$DB" "SELECT count(*) FROM \
    runs WHERE version = '' OR config = '{}' OR ended < started \
    OR ended IS NULL")" = 0
check "seeds of the seeded tools" test "$(sqlite3 "$DB" "SELECT count(*) FROM \
    runs WHERE seed IS NULL AND tool IN ('sfc-sample', 'sfc-trainstep', \
    'sfc-irn train')")" = 0
check "options recorded" test "$(sqlite3 "$DB" "SELECT group_concat(s) FROM \
    (SELECT json_extract(config, '$.shard') AS s FROM runs WHERE tool = \
    'sfc-cam' ORDER BY s)")" = 0/2,1/2
# a run that fails after it began is marked failed
id=$(head -n 1 "$T/VOC/ImageSets/Segmentation/train.txt")
mkdir -p "$T/badcam"
printf 'not an npz' > "$T/badcam/$id.npz"
expect_fail 1 sfc-irn infer --db "$DB" --cams "$T/badcam" \
    --images "$T/VOC/JPEGImages" --irn "$R/irn.safetensors" \
    --out "$T/badpseudo" --canvas 32 -q "$id"
check "failed infer marked" test "$(sqlite3 "$DB" "SELECT status FROM runs \
    WHERE tool = 'sfc-irn infer' ORDER BY id DESC LIMIT 1")" = failed
# (its checkpoint cannot be written: the first save fails)
expect_fail 1 sfc-irn train --db "$DB" --split train --labels "$R/ir_label" \
    --blocks 1,1,1,1 --width 4 --batch 8 --micro 8 --epochs 1 --crop 32 \
    --classes 5 --radius 3 --checkpoint "$T/nodir/x.ckpt" \
    --checkpoint-every 1 --out "$T/bad.safetensors" -q
check "failed training marked" test "$(sqlite3 "$DB" "SELECT status FROM runs \
    WHERE tool = 'sfc-irn train' ORDER BY id DESC LIMIT 1")" = failed

# missing inputs stop make before anything runs, with one message
stops() {
    want=$1
    shift
    nchecks=$((nchecks + 1))
    if make --no-print-directory -C "$T" -f "$SRC/pipelines/voc.mk" "$@" \
        voc-pseudolabels >"$T/.out" 2>"$T/.err"; then
        fail "make did not stop: $*"
    elif [ "$(wc -l < "$T/.err")" -ne 1 ] || ! grep -q "$want" "$T/.err"; then
        fail "expected one line with '$want', got: $(cat "$T/.err")"
    fi
}
stops "set VOC=" WEIGHTS=none
stops "set WEIGHTS=" VOC="$T/VOC"
stops "no weights file" VOC="$T/VOC" WEIGHTS="$T/nothere.safetensors"
stops "no training list" VOC="$T" WEIGHTS=none
expect_ok run voc-clean
check "voc-clean removes the run" test ! -e "$R"
finish
