#!/bin/sh
# make bench-seg: DeepLab-v2 ResNet-101 (lib/deeplab, bench-seg) beside
# PyTorch (bench/seg_torch.py) on the same machine and threads (2 each:
# OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=2, torch.set_num_threads(2); OpenMP
# threads wait passively): training images/s at 10x3x321x321 with the
# scales 1, 0.75, 0.5 (every convolution trained, BN frozen; micro-batches
# of SFC_BENCH_MICRO, default 1, in both) with peak RSS, and prediction
# seconds per 500x375 image (3 scales, without and with the flip).
# TRAIN_RUNS (default 3) steps and RUNS (default 3) images each, medians.
# OPENBLAS_CORETYPE is left as the environment has it. Writes the
# bench-seg section of BENCHMARKS.md.
set -e
BIN=${1:-build/bench/bench-seg}
RUNS=${RUNS:-3}
TRAIN_RUNS=${TRAIN_RUNS:-3}
PY=/usr/bin/python3
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE
export SFC_BENCH_MICRO=${SFC_BENCH_MICRO:-1}
out=$(mktemp)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
policy=$(chrt -p $$ 2>/dev/null | sed -n '1s/.*: *//p')
echo "machine load before: $load0" >&2
for mode in predict predictflip train; do
    n=$RUNS
    [ "$mode" = train ] && n=$TRAIN_RUNS
    l=$($PY bench/seg_torch.py $mode $n); echo "torch $l" >>"$out"
    echo "torch $l" >&2
    l=$($BIN $mode $n); echo "sfc $l" >>"$out"
    echo "sfc $l" >&2
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine load after: $load1" >&2
$PY bench/seg_report.py "$out" "$load0" "$load1" "$SFC_BENCH_MICRO" \
    "$RUNS" "$TRAIN_RUNS" "${policy:-unknown}"
rm -f "$out"
