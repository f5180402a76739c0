#!/bin/sh
# study.sh: one short experiment of the SFC study (RESULTS.md, "SFC on the
# toy data: the study"): train one method on the toy data, compute its val
# CAMs and score them. Only the classifier, sfc-cam and sfc-miou run.
#
#   scripts/study.sh DIR NAME SEED [sfc-trainstep options...]
#
# DIR holds the data and the db (made on first use with STUDY_* settings);
# the schedule of SEED is sampled once per (seed, epochs); NAME/SEED/ gets
# final.safetensors, cam/, miou.csv and time.txt. Environment:
# STUDY_EPOCHS (6), STUDY_TOYGEN (extra sfc-toygen options), BIN (bin).
set -eu
dir=$1 name=$2 seed=$3
shift 3
BIN=${BIN:-bin}
ep=${STUDY_EPOCHS:-6}
db=$dir/sfc.db
mkdir -p "$dir"
if [ ! -f "$dir/data.done" ]; then
    # shellcheck disable=SC2086
    "$BIN/sfc-toygen" --out "$dir/data" --seed 0 -q ${STUDY_TOYGEN:-} \
        > "$dir/classes.txt"
    "$BIN/sfc-ingest" --db "$db" -q "$dir/data" > /dev/null
    touch "$dir/data.done"
fi
sched=$(sqlite3 "$db" "SELECT id FROM runs WHERE tool = 'sfc-sample' AND \
status = 'ok' AND seed = $seed AND json_extract(config, '\$.epochs') = $ep \
ORDER BY id DESC LIMIT 1")
if [ -z "$sched" ]; then
    "$BIN/sfc-sample" --db "$db" --split train --epochs "$ep" --batch 16 \
        --draws 4 --crop 96 --aug sfc --seed "$seed" -q > /dev/null
    sched=$(sqlite3 "$db" "SELECT max(id) FROM runs WHERE tool = \
'sfc-sample' AND status = 'ok'")
fi
out=$dir/$name/$seed
mkdir -p "$out"
echo "sfc-trainstep $*" > "$dir/$name/cmd.txt"
t0=$(date +%s)
"$BIN/sfc-trainstep" --db "$db" --out "$out" --schedule "$sched" \
    --seed "$seed" -q "$@" > /dev/null
t1=$(date +%s)
"$BIN/sfc-cam" --db "$db" --ckpt "$out/final.safetensors" --out "$out/cam" \
    --split val --scales 1,0.5,1.5,2 -q > /dev/null
t2=$(date +%s)
for m in all cam_c; do
    "$BIN/sfc-miou" --db "$db" --gt "$dir/data/SegmentationClass" \
        --cams "$out/cam" --split val --count-split train --map $m --csv -q
done > "$out/miou.csv.tmp"
mv "$out/miou.csv.tmp" "$out/miou.csv"
echo "train $((t1 - t0)) s, cam $((t2 - t1)) s, load $(cut -d' ' -f1 /proc/loadavg)" \
    > "$out/time.txt"
echo "$name seed $seed: $(cat "$out/time.txt")"
