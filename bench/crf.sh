#!/bin/sh
# make bench-crf: lib/crf's dense CRF beside pydensecrf on one generated
# 500x375 image with 21 labels (bench-crf gen; SFC's CRF parameters), t = 10
# and t = 12 mean-field iterations: medians of RUNS runs of the whole
# crf_inference_label (lattices, unaries, inference, argmax), with 2 and 1
# OpenMP threads, peak RSS, lattice sizes; pydensecrf (single-threaded) in
# the same run when `import pydensecrf` works with PYTHONPATH (or
# PYDENSECRF=DIR, prepended to it), else the issue's anchor, marked as not
# measured here; the labels' agreement; then the whole sfc-crf tool (PNG
# and npz in, PNG out) on the same case. Writes the crf section of
# BENCHMARKS.md. OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE):
# the machine's 2 cores are shared.
set -e
BIN=${1:-build/bench/bench-crf}
TOOL=${2:-bin/sfc-crf}
RUNS=${RUNS:-7}
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
for t in 10 12; do
    row sfc2 "$(OMP_NUM_THREADS=2 "$BIN" run "$dir" "$t" "$RUNS" 2)"
    row sfc1 "$(OMP_NUM_THREADS=1 "$BIN" run "$dir" "$t" "$RUNS" 1)"
    row py "$($PY bench/crf_pydensecrf.py "$dir" "$t" "$RUNS")"
done
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
$PY bench/crf_report.py "$out" "$dir" "$load0" "$load1" "$RUNS"
