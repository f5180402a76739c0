#!/bin/sh
# make bench-crf: lib/crf's dense CRF beside pydensecrf on one generated
# 500x375 image with 21 labels (bench-crf gen; SFC's CRF parameters), t = 10
# and t = 12 mean-field iterations, in ROUNDS interleaved rounds (each
# round runs every engine once, each in its own process: lib/crf with 2
# and 1 OpenMP threads, pydensecrf (single-threaded) when `import
# pydensecrf` works with PYTHONPATH (or PYDENSECRF=DIR, prepended to it),
# else the issue's anchor is shown, marked as not measured here); a
# process times RUNS runs of the whole crf_inference_label (lattices,
# unaries, inference, argmax) after a warm-up and reports their median;
# each row of the report is the median over the rounds (min and max over
# all runs, the largest peak RSS), with lattice sizes and the labels'
# agreement; then the whole sfc-crf tool (PNG and npz in, PNG out) on the
# same case. Writes the crf section of BENCHMARKS.md. OpenMP threads wait
# passively (OMP_WAIT_POLICY=PASSIVE): the machine's 2 cores are shared.
set -e
BIN=${1:-build/bench/bench-crf}
TOOL=${2:-bin/sfc-crf}
RUNS=${RUNS:-3}
ROUNDS=${ROUNDS:-7}
PY=/usr/bin/python3
[ -n "${PYDENSECRF:-}" ] && PYTHONPATH="$PYDENSECRF${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONPATH OMP_WAIT_POLICY=PASSIVE
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
out="$dir/rows"
"$BIN" gen "$dir"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine load before: $load0" >&2
row() {
    echo "$*" >>"$out"
    echo "$*" >&2
}
rrow() {
    echo "$*" >>"$dir/rounds"
    echo "$*" >&2
}
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for t in 10 12; do
        rrow sfc2 "$(OMP_NUM_THREADS=2 "$BIN" run "$dir" "$t" "$RUNS" 2)"
        rrow sfc1 "$(OMP_NUM_THREADS=1 "$BIN" run "$dir" "$t" "$RUNS" 1)"
        rrow py "$($PY bench/crf_pydensecrf.py "$dir" "$t" "$RUNS")"
    done
    r=$((r + 1))
done
# one row per engine and t: medians over the rounds (seconds, CPU
# seconds, agreement), min and max over all runs, the largest RSS
$PY - "$dir/rounds" >>"$out" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) > 2:
        rows.setdefault((f[0], f[1]), []).append(f)
for (eng, t), rs in rows.items():
    c = list(zip(*rs))
    med = lambda j: statistics.median(float(x) for x in c[j])
    lo, hi = min(map(float, c[3])), max(map(float, c[4]))
    mb = max(map(float, c[5]))
    if eng == "py":  # t sec lo hi mb agree cpu
        print("py %s %.4f %.4f %.4f %.1f %.3f %.4f" % (
            t, med(2), lo, hi, mb, med(6), med(7)))
    else:  # t sec lo hi mb threads m0 m1 cpu
        print("%s %s %.4f %.4f %.4f %.1f %s %s %s %.4f" % (
            eng, t, med(2), lo, hi, mb, c[6][0], c[7][0], c[8][0], med(9)))
EOF
cat "$out" >&2
# the tool, 3 runs each: cam-crf (one CRF, t = 10, the case above) and the
# default rule (SFC's: two CRFs, t = 12)
for rule in cam-crf sfc; do
    it=10
    [ "$rule" = sfc ] && it=12
    for k in 1 2 3; do
        rm -rf "$dir/out"
        /usr/bin/time -f "%e %M" -o "$dir/time" env OMP_NUM_THREADS=2 \
            "$TOOL" --rule $rule --iters $it --images "$dir/images" \
            --ext .png --cams "$dir/cams" --out "$dir/out" -q bench
        row "tool-$rule" "$(cat "$dir/time")"
    done
    [ "$rule" = cam-crf ] && cp "$dir/out/bench.png" "$dir/tool.png"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine load after: $load1" >&2
$PY bench/crf_report.py "$out" "$dir" "$load0" "$load1" \
    "$ROUNDS interleaved rounds x $RUNS"
