# t1102: data-parallel sfc-trainstep (lib/dist.h) on a tiny toy schedule
# (20 steps of 4 images + 2 bank draws): 1, 2 and 4 ranks under mpirun
# train the same weights as one plain process (oracle: the one-process
# run, tested against PyTorch elsewhere), within 1e-5 relative per tensor;
# 1 rank gives its bytes; only rank 0 writes db rows (one train_log row
# per step of each run). A run killed by SIGKILL (injected into rank 0 at
# its 5th checkpoint rename) on 4 ranks and resumed on 3 ends at the same
# weights. Another --lr is outside the tolerance. The gradient sum
# overlapped with the backward pass in many chunks (SFC_DIST_CHUNK=97), or
# run after it (SFC_DIST_OVERLAP=0), gives the same bytes as the default
# on 2 and 4 ranks (lib/dist.h: each float summed by one rank in rank
# order, however the sum is cut).
# Needs: mpirun (skipped without it), strace, sqlite3, /usr/bin/python3 +
# numpy.
. tests/cli/lib.sh
. tests/cli/mpi.sh
need_mpi
not_overlapped() { grep -q "per step\$" "$T/.err"; }

expect_ok sfc-toygen --out "$T/toy" --size 32 --train 40 --val 6 \
    --classes 4 --seed 3 -q
expect_ok sfc-ingest --db "$T/db" -q "$T/toy"
expect_ok sfc-sample --db "$T/db" --split train --epochs 2 --batch 4 \
    --draws 2 --crop 32 --seed 1 -q
NET="--blocks 1,1,1,1 --width 4 --side 4,4,8,8 --lr 0.05 --micro-batch 2"

expect_ok sfc-trainstep --db "$T/db" --out "$T/plain" $NET -q
P="$T/plain/final.safetensors"
for n in 1 2 4; do
    expect_ok mpi $n sfc-trainstep --db "$T/db" --out "$T/r$n" $NET
    [ $n -gt 1 ] && stderr_has "sfc-trainstep: $n ranks, 20 steps"
    check "$n ranks: weights within 1e-5" close "$P" "$T/r$n/final.safetensors"
done
same_bytes "$P" "$T/r1/final.safetensors"
check "a train_log row per step of each run" test "$(sqlite3 "$T/db" \
    "SELECT count(*) FROM train_log")" = 80
# the gradient sum in chunks of 97 floats, overlapped with the backward
# pass, or after it (SFC_DIST_OVERLAP=0): the same bits as the default
for n in 2 4; do
    expect_ok mpi $n env SFC_DIST_CHUNK=97 sfc-trainstep --db "$T/db" \
        --out "$T/c$n" $NET
    stderr_has "per step (overlapped with backward: "
    same_bytes "$T/r$n/final.safetensors" "$T/c$n/final.safetensors"
done
expect_ok mpi 2 env SFC_DIST_OVERLAP=0 sfc-trainstep --db "$T/db" \
    --out "$T/o2" $NET
check "SFC_DIST_OVERLAP=0: not overlapped" not_overlapped
same_bytes "$T/r2/final.safetensors" "$T/o2/final.safetensors"
expect_ok sfc-trainstep --db "$T/db" --out "$T/lr" $NET -q --lr 0.04
check "another lr is outside the tolerance" far "$P" "$T/lr/final.safetensors"

strace -f -o /dev/null -e trace=rename,renameat,renameat2 \
    -e inject=rename,renameat,renameat2:signal=KILL:when=5 \
    mpirun --oversubscribe --bind-to none -np 4 \
    sfc-trainstep --db "$T/db" --out "$T/k" $NET -q --ckpt-every 2 \
    >/dev/null 2>&1
check "killed before the end" test ! -e "$T/k/final.safetensors"
check "a checkpoint survived" test -s "$T/k/ckpt.safetensors"
expect_ok mpi 3 sfc-trainstep --db "$T/db" --out "$T/k" $NET --ckpt-every 2
check "killed + resumed: weights within 1e-5" close "$P" \
    "$T/k/final.safetensors"
finish
