#!/bin/sh
# make bench-resnet (and make bench): this engine (bench-resnet) beside
# PyTorch (bench_torch.py) on ResNet-50 (strides 2,2,2,1): forward and
# forward+backward at 1x3x512x512 and SFC's training shape 20x3x512x512
# with conv1..layer2 frozen (per image), 2 threads each, peak RSS; the
# sgemm ceiling before and after. Writes the resnet section of
# BENCHMARKS.md. Run it under the bench lock with real-time priority:
#   flock <lock> chrt -f 10 make bench-resnet
#
# Engines run interleaved, ROUNDS rounds of (PyTorch, engine, ...), each
# a median of RUNS timed runs; the table takes the median over rounds, so
# a load change hits both sides alike. OpenBLAS: the engine runs with
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (the native kernel; only
# this benchmark unsets them), with the environment's OPENBLAS_CORETYPE
# (Haswell when unset: the machine's default, which CI and tests keep),
# and native with the 3x3 convolutions forced through im2col
# (SFC_BENCH_ALGO=im2col: what Winograd brings). Idle OpenMP threads
# spin briefly, then sleep (GOMP_SPINCOUNT=20000, both engines: a bounded
# spin of some microseconds, safe under chrt unlike OMP_WAIT_POLICY=
# ACTIVE; 2 % faster than PASSIVE for this engine, whose OpenMP threads
# now drive the sgemm calls, and 2-6 % for PyTorch, 2026-11-24).
set -e
CORE=${OPENBLAS_CORETYPE:-Haswell}
BIN=${1:-build/bench/bench-resnet}
RUNS=${RUNS:-5}
ROUNDS=${ROUNDS:-3}
TRAIN_RUNS=${TRAIN_RUNS:-2}
PY=/usr/bin/python3
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 GOMP_SPINCOUNT=20000
unset OMP_WAIT_POLICY
out=$(mktemp)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine load before: $load0" >&2
row() { # engine label, then the bench line
    echo "$1 $2" >>"$out"
    echo "$1 $2" >&2
}
native() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$@"; }
row sgemm-native "$(native $BIN sgemm 5)"
for mode in fwd fwdbwd train; do
    n=$RUNS rounds=$ROUNDS
    [ "$mode" = train ] && n=$TRAIN_RUNS rounds=1
    r=0
    while [ $r -lt $rounds ]; do
        row torch "$($PY bench/bench_torch.py $mode $n)"
        row sfc-native "$(native $BIN $mode $n)"
        row "sfc-$CORE" "$(OPENBLAS_CORETYPE=$CORE $BIN $mode $n)"
        [ "$mode" = train ] ||
            row sfc-native-im2col "$(SFC_BENCH_ALGO=im2col native $BIN $mode $n)"
        r=$((r + 1))
    done
done
row sgemm-native "$(native $BIN sgemm 5)"
row "sgemm-$CORE" "$(OPENBLAS_CORETYPE=$CORE $BIN sgemm 5)"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "machine load after: $load1" >&2
$PY bench/report.py "$out" "$load0" "$load1" "$CORE"
rm -f "$out"
