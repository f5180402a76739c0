# t0930: pipelines/voc.mk survives SIGKILL. An uninterrupted tiny run is
# the reference; another run is killed (make and every tool it started,
# SIGKILL to the process group) inside each stage that writes files (once
# its tool runs, after a random delay) and then after random delays,
# restarted after each kill, and finally run to the end. Its final outputs (weights, CAMs, IR
# labels, IRN, pseudo labels, mIoU tables) must equal the reference's byte
# for byte, and its db must be consistent: integrity_check ok, no foreign
# key violations, no failed run, no training step logged twice by runs that
# ended ok, the same metrics as the reference. Killed runs stay 'running'
# in the runs table (their pid tells them apart); that is by design.
# Then four CRF shards run at once on one db (the concurrent-writer case).
# The delays come from a seed printed first (SFC_KILL_SEED=N replays the
# delays; where a kill lands also depends on the machine's speed).
# Needs: make, sqlite3, setsid.
. tests/cli/lib.sh

SRC=$(pwd)
seed=${SFC_KILL_SEED:-$(( $(date +%s) % 100000 ))}
echo "kill seed $seed (SFC_KILL_SEED=$seed replays the delays)"
sfc-toygen --out "$T/VOC" --size 32 --train 24 --val 8 --classes 4 \
    --seed 5 -q >/dev/null

args() {
    echo -C "$T" -f "$SRC/pipelines/voc.mk" BINDIR="$SFC_BIN" \
        VOC="$T/VOC" WEIGHTS=none SHARDS=2 VOC_BLOCKS=1,1,1,1 VOC_WIDTH=4 \
        VOC_SIDE=4,4,8,8 VOC_CROP=32 VOC_CANVAS=32 VOC_EPOCHS=4 \
        VOC_BATCH=4 VOC_DRAWS=2 VOC_SCALES=1,0.5 VOC_IRN_BATCH=4 \
        VOC_IRN_MICRO=2 VOC_IRN_EPOCHS=2 VOC_IRN_RADIUS=3 VOC_CKPT_EVERY=3 \
        VOC_IRN_CKPT_EVERY=2 VOC_QUIET=-q RUN="$1"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

t0=$(now_ms)
expect_ok make -s -j2 $(args ref) voc-files
tref=$(( $(now_ms) - t0 ))
echo "uninterrupted run: $tref ms"

# start the pipeline in its own process group; stop it with SIGKILL to
# the whole group
start() {
    setsid make -s -j2 $(args kill) voc-files >"$T/kill.out" 2>&1 &
    pid=$!
}
stop() {
    kill -KILL "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "killed $1: $(ls "$T/runs/kill" 2>/dev/null | grep -e start \
        -e done | tr '\n' ' ')"
}
msleep() { sleep "$(awk -v d="$1" 'BEGIN { printf "%.3f", d / 1000 }')"; }

# random fractions from the seed: 5 for the stages, 4 of the run's length
set -- $(awk -v s="$seed" 'BEGIN { srand(s);
    for (i = 0; i < 9; i++) printf "%.4f ", rand() }')
# inside each stage that writes files: once its tool runs (polled every
# 10 ms), after a fraction of that tool's time in the reference run (its
# runs row) plus 20 ms of start-up
for tool in sfc-trainstep sfc-cam sfc-crf "sfc-irn train" "sfc-irn infer"; do
    ms=$(sqlite3 "$T/runs/ref/sfc.db" "SELECT CAST(20 + $1 * max( \
        (julianday(ended) - julianday(started)) * 86400000) AS INTEGER) \
        FROM runs WHERE tool = '$tool'")
    shift
    start
    n=0
    while ! pgrep -g "$pid" -f "$tool" >/dev/null && [ $n -lt 3000 ]; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
        n=$((n + 1))
    done
    msleep "$ms"
    stop "in $tool ($ms ms after $n polls)"
done
# anywhere: after delays spread over about one run's length
for f in "$@"; do
    d=$(awk -v f="$f" -v t="$tref" 'BEGIN { printf "%d", 1 + f * t * 0.35 }')
    start
    msleep "$d"
    stop "after $d ms"
done
expect_ok make -s -j2 $(args kill) voc-files

R=$T/runs/ref
K=$T/runs/kill
for f in train/final.safetensors irn.safetensors; do
    same_bytes "$R/$f" "$K/$f"
done
# the tables name their folders: runs/ref/... and runs/kill/...
for f in cam-miou.txt crf-miou.txt pseudo-miou.txt; do
    sed 's,runs/kill/,runs/ref/,' "$K/$f" > "$T/$f"
    same_bytes "$R/$f" "$T/$f"
done
for d in cam ir_label pseudo; do
    check "$d: same files (seed $seed)" test "$(ls "$R/$d")" = "$(ls "$K/$d")"
    for f in "$R/$d"/*; do
        same_bytes "$f" "$K/$d/$(basename "$f")"
    done
done

q() { sqlite3 "$K/sfc.db" "$1"; }
echo "runs killed mid-way: $(q "SELECT group_concat(tool || ' x' || n, ', ') \
    FROM (SELECT tool, count(*) AS n FROM runs WHERE status = 'running' \
    GROUP BY tool)")"
check "integrity_check (seed $seed)" test "$(q 'PRAGMA integrity_check')" = ok
check "foreign keys (seed $seed)" test -z "$(q 'PRAGMA foreign_key_check')"
check "no failed run (seed $seed)" test "$(q "SELECT count(*) FROM runs \
    WHERE status = 'failed'")" = 0
check "no step logged twice by finished runs (seed $seed)" test -z "$(q \
    "SELECT r.tool, step FROM train_log l JOIN runs r ON r.id = l.run \
    WHERE r.status = 'ok' GROUP BY r.tool, step HAVING count(*) > 1")"
# a step recomputed after a kill has the same loss as in the reference
check "resumed losses equal the reference's (seed $seed)" test -z "$(q \
    "ATTACH '$R/sfc.db' AS ref; SELECT k.step FROM train_log k JOIN runs \
    kr ON kr.id = k.run, ref.train_log f JOIN ref.runs fr ON fr.id = f.run \
    WHERE kr.tool = fr.tool AND k.step = f.step AND k.loss != f.loss")"
metrics="SELECT stage, map, split, ifnull(class, -1), name, value FROM \
    metrics m WHERE run = (SELECT max(run) FROM metrics n WHERE n.stage = \
    m.stage AND n.map = m.map) ORDER BY 1, 2, 3, 4, 5"
check "metrics equal the reference's (seed $seed)" test \
    "$(sqlite3 "$R/sfc.db" "$metrics")" = "$(q "$metrics")"

# four CRF shards at once, one db: the same labels, four finished runs
for i in 0 1 2 3; do
    sfc-crf --db "$K/sfc.db" --cams "$K/cam" --out "$T/crf4" \
        --split train --rule sfc --w-map cam_w --w-weight 1 --p-weight 0.7 \
        --bg-scale 0.5 --iters 12 --gt-prob 0.7 --gauss-sxy 3 \
        --gauss-compat 3 --bilat-sxy 50 --bilat-srgb 5 --bilat-compat 10 \
        --filter lattice --threads 1 --shard $i/4 -q 2>"$T/crf4.$i.err" &
done
wait
check "four shards ok" test "$(cat "$T"/crf4.*.err)" = ""
for f in "$R/ir_label"/*.png; do
    same_bytes "$f" "$T/crf4/$(basename "$f")"
done
check "four more finished sfc-crf runs" test "$(q "SELECT count(*) FROM \
    (SELECT * FROM runs WHERE tool = 'sfc-crf' ORDER BY id DESC LIMIT 4) \
    WHERE status = 'ok'")" = 4
check "integrity_check after the shards" test "$(q 'PRAGMA integrity_check')" = ok
finish
