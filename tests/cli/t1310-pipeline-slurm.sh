# t1310: the pipelines through a real Slurm (SUBMIT=srun) on a one-machine
# cluster (scripts/slurm-local.sh: munged, slurmctld, slurmd in $T, stopped
# at exit whatever happens). The reference is the plain `make -j2` run.
# 1. t0900's tiny toy pipeline with SUBMIT=srun: every CAM, label,
#    segmentation and weight file equal byte for byte, the same mIoU
#    tables, and the db holds every per-image run (same tools, options and
#    count as the plain run, all ok) and the same metrics rows.
# 2. pipelines/voc.mk, two shards, SUBMIT=srun, a CRF shard's job cancelled
#    (scancel) after its tool wrote its outputs and rows file, before the
#    job ended: make stops; the rerun completes it; files equal to the
#    plain run's, and the db has each shard's run exactly once (the
#    cancelled job's rows file is discarded, not merged).
# Needs: root, make, sqlite3, slurm-wlm and munge (skipped without them,
# except under CI, where it must run). Not run on the sanitizer build: it
# would only repeat t1300's rows-mode checks, at three times the time.
. tests/cli/lib.sh

SRC=$(pwd)
case "$SFC_BIN" in
*build-san*) echo "skip: slurm pipeline test not run on the sanitizer build"
    exit 0 ;;
esac
missing=
for p in munged slurmctld slurmd srun scancel squeue sinfo; do
    command -v $p >/dev/null 2>&1 || missing="$missing $p"
done
[ "$(id -u)" -eq 0 ] || missing="$missing root"
if [ -n "$missing" ]; then
    if [ -n "${CI:-}" ]; then
        fail "slurm test cannot run, missing:$missing (scripts/deps.sh)"
        finish
        exit
    fi
    echo "skip: slurm test not run, missing:$missing"
    exit 0
fi

# the cluster, stopped on every exit
D=$T/slurm
trap 'bash "$SRC/scripts/slurm-local.sh" stop "$D"; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP
expect_ok bash scripts/slurm-local.sh start "$D"
export SLURM_CONF=$D/slurm.conf
check "node idle" test "$(sinfo -h -N -o %t)" = idle

# 1. the toy pipeline (t0900's sizes)
toy() {
    make --no-print-directory -f pipelines/toy.mk BINDIR="$SFC_BIN" \
        TOY_TRAIN=48 TOY_VAL=8 TOY_SIZE=32 TOY_CLASSES=4 \
        TOY_EPOCHS=1 TOY_BATCH=8 TOY_DRAWS=2 TOY_PDW_WARMUP=2 \
        TOY_SCALES=1,0.5 TOY_WIDTH=4 TOY_SIDE=4,4,8,8 TOY_IRN_IMAGES=16 \
        TOY_IRN_EPOCHS=1 TOY_IRN_RADIUS=3 TOY_SEG_ITERS=2 TOY_SEG_WIDTH=2 \
        TOY_SEG_BATCH=4 -j2 "$@" demo-files
}
t0=$(date +%s)
expect_ok toy TOY_RUN="$T/plain"
t1=$(date +%s)
expect_ok toy TOY_RUN="$T/srun" SUBMIT=srun
echo "toy: plain $((t1 - t0)) s, through srun $(($(date +%s) - t1)) s"
check "toy: shards went through srun" grep -q "^srun env SFC_DB_ROWS=\|&& srun env" \
    "$T/.out"
check "toy: rows merged" grep -q "^merged 1 files, 1 runs" "$T/.out"

# every file but the db and the stamps' hidden files, byte for byte (the
# mIoU tables name their folders)
cd "$T/plain" && find . -type f ! -name 'sfc.db*' ! -path '*/.*' | sort \
    > "$T/files" && cd "$SRC"
check "toy: same file list" test "$(cd "$T/srun" && find . -type f ! -name \
    'sfc.db*' ! -path '*/.*' | sort)" = "$(cat "$T/files")"
check "toy: files to compare" test "$(grep -c -e '\.npz$' -e '\.png$' \
    "$T/files")" -gt 100
while read -r f; do
    case "$f" in
    *.txt) sed "s,$T/srun/,$T/plain/," "$T/srun/$f" > "$T/cmp.txt"
        same_bytes "$T/plain/$f" "$T/cmp.txt" ;;
    *) same_bytes "$T/plain/$f" "$T/srun/$f" ;;
    esac
done < "$T/files"

# the db: the same runs (tool, options, status) and metrics rows
runs="SELECT tool, status, replace(config, '$T/srun/', '$T/plain/') FROM \
    runs ORDER BY 1, 3"
check "toy: every run recorded once, all ok" test \
    "$(sqlite3 "$T/plain/sfc.db" "$runs")" = "$(sqlite3 "$T/srun/sfc.db" \
    "$runs")"
perimage="SELECT count(*) FROM runs WHERE tool IN ('sfc-cam', 'sfc-crf', \
    'sfc-irn infer', 'sfc-segtrain predict') AND status = 'ok'"
n=$(sqlite3 "$T/srun/sfc.db" "$perimage")
echo "toy: $n per-image runs through srun"
check "toy: per-image runs ($n)" test "$n" -gt 8 -a "$n" = \
    "$(sqlite3 "$T/plain/sfc.db" "$perimage")"
metrics="SELECT stage, map, split, ifnull(class, -1), name, quote(value) \
    FROM metrics ORDER BY 1, 2, 3, 4, 5"
check "toy: same metrics" test "$(sqlite3 "$T/plain/sfc.db" "$metrics")" = \
    "$(sqlite3 "$T/srun/sfc.db" "$metrics")"
check "toy: db integrity" test "$(sqlite3 "$T/srun/sfc.db" \
    "PRAGMA integrity_check")" = ok

# 2. voc.mk with two shards; a CRF shard's job cancelled near its end
sfc-toygen --out "$T/VOC" --size 32 --train 24 --val 8 --classes 4 \
    --seed 3 -q >/dev/null
voc() {
    make --no-print-directory -C "$T" -f "$SRC/pipelines/voc.mk" \
        BINDIR="$SFC_BIN" VOC="$T/VOC" WEIGHTS=none SHARDS=2 \
        VOC_BLOCKS=1,1,1,1 VOC_WIDTH=4 VOC_SIDE=4,4,8,8 VOC_CROP=32 \
        VOC_CANVAS=32 VOC_EPOCHS=1 VOC_BATCH=8 VOC_DRAWS=2 \
        VOC_SCALES=1,0.5 VOC_IRN_BATCH=8 VOC_IRN_MICRO=8 VOC_IRN_EPOCHS=1 \
        VOC_IRN_RADIUS=3 VOC_QUIET=-q -j2 "$@" voc-files
}
# the CRF stage's program: sfc-crf; on its first call for shard 0 in a
# Slurm job it then reports its job and waits to be cancelled
cat > "$T/crf" <<EOF
#!/bin/sh
"$SFC_BIN/sfc-crf" "\$@" || exit 1
case "\$*" in
*"--shard 0/2"*)
    if [ -n "\${SLURM_JOB_ID:-}" ] && [ ! -e "$T/held" ]; then
        echo "\$SLURM_JOB_ID" > "$T/held.tmp" && mv "$T/held.tmp" "$T/held"
        sleep 60
    fi ;;
esac
EOF
chmod +x "$T/crf"
t0=$(date +%s)
expect_ok voc RUN=plain CRF="$T/crf"
echo "voc: plain $(($(date +%s) - t0)) s"
t0=$(date +%s)
voc RUN=kill CRF="$T/crf" SUBMIT=srun > "$T/kill.out" 2>&1 &
mpid=$!
n=0
while [ ! -e "$T/held" ] && [ $n -lt 600 ]; do
    sleep 0.1
    n=$((n + 1))
done
check "a CRF shard job held" test -s "$T/held"
job=$(cat "$T/held" 2>/dev/null)
check "its job is running" test "$(squeue -h -j "$job" -o %T)" = RUNNING
scancel "$job"
wait $mpid
st=$?
check "make stops when a job is cancelled (status $st)" test "$st" -ne 0
K=$T/runs/kill
check "the cancelled shard left its rows file" test -s \
    "$K/ir_label/.rows-0-of-2.db"
check "and no stamp" test ! -e "$K/ir_label/.done-0-of-2"
check "the stage is not done" test ! -e "$K/irlabel.done"
expect_ok voc RUN=kill CRF="$T/crf" SUBMIT=srun
echo "voc: killed and rerun through srun $(($(date +%s) - t0)) s"
check "rerun: the shard again" grep -q -- "--shard 0/2" "$T/.out"
check "rerun: not shard 1's CRF" test "$(grep -c \
    "crf.*--shard 1/2" "$T/.out")" = 0

P=$T/runs/plain
same_bytes "$P/train/final.safetensors" "$K/train/final.safetensors"
same_bytes "$P/irn.safetensors" "$K/irn.safetensors"
for d in cam ir_label pseudo; do
    check "$d: same files" test "$(ls "$P/$d")" = "$(ls "$K/$d")"
    for f in "$P/$d"/*; do
        same_bytes "$f" "$K/$d/$(basename "$f")"
    done
done
for f in cam-miou.txt crf-miou.txt pseudo-miou.txt; do
    sed 's,runs/kill/,runs/plain/,' "$K/$f" > "$T/$f"
    same_bytes "$P/$f" "$T/$f"
done
runs="SELECT tool, status, replace(config, 'runs/kill/', 'runs/plain/') \
    FROM runs ORDER BY 1, 3"
check "voc: each shard's run exactly once, all ok" test \
    "$(sqlite3 "$P/sfc.db" "$runs")" = "$(sqlite3 "$K/sfc.db" "$runs")"
check "voc: CRF shards 0/2 and 1/2" test "$(sqlite3 "$K/sfc.db" \
    "SELECT group_concat(json_extract(config, '$.shard')) FROM (SELECT \
    config FROM runs WHERE tool = 'sfc-crf' ORDER BY 1)")" = "0/2,1/2"
check "voc: same metrics" test "$(sqlite3 "$P/sfc.db" "$metrics")" = \
    "$(sqlite3 "$K/sfc.db" "$metrics")"
check "voc: db integrity" test "$(sqlite3 "$K/sfc.db" \
    "PRAGMA integrity_check")" = ok

# 3. data-parallel training as srun tasks. Without --mpi=pmix the 2 tasks
#    are two one-rank copies: each refuses (t1103) before touching a file.
#    With it (the MPI build, Slurm's PMIx plugin) they are one job of 2
#    ranks and train the weights of a plain run, within 1e-5.
G=$T/dp
expect_ok sfc-toygen --out "$G/toy" --size 32 --train 8 --val 2 \
    --classes 3 --seed 3 -q
expect_ok sfc-ingest --db "$G/db" -q "$G/toy"
expect_ok sfc-sample --db "$G/db" --split train --epochs 1 --batch 4 \
    --draws 0 --crop 32 --seed 1 -q
cp "$G/db" "$G/db.before"
NET="--blocks 1,1,1,1 --width 4"
srun -n 2 sfc-trainstep --db "$G/db" --out "$G/bad" $NET >"$T/.out" \
    2>"$T/.err"
check "srun without pmix: refused" test $? -ne 0
check "srun without pmix: each task says why" test "$(grep -c \
    '^sfc-trainstep: started as one of 2 tasks (SLURM_STEP_NUM_TASKS=2)' \
    "$T/.err")" = 2
same_bytes "$G/db.before" "$G/db"
check "srun without pmix: no output" test ! -e "$G/bad"
if [ "${SFC_MPI:-1}" = 1 ] && srun --mpi=list 2>&1 | grep -qw pmix; then
    expect_ok sfc-trainstep --db "$G/db" --out "$G/plain" $NET -q
    expect_ok env OMPI_MCA_btl=self,vader \
        OMPI_MCA_btl_vader_single_copy_mechanism=none OMP_NUM_THREADS=1 \
        OPENBLAS_NUM_THREADS=1 srun -n 2 --mpi=pmix sfc-trainstep \
        --db "$G/db" --out "$G/pmix" $NET
    stderr_has "sfc-trainstep: 2 ranks, 2 steps"
    check "srun --mpi=pmix: 2 ranks train the plain run's weights" \
        /usr/bin/python3 tests/cli/st-close.py "$G/plain/final.safetensors" \
        "$G/pmix/final.safetensors"
elif [ -n "${CI:-}" ]; then
    fail "srun has no pmix plugin, or the tools are built without MPI"
fi
check "no job left" test -z "$(squeue -h -o %i)"
finish
