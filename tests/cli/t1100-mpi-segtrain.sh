# t1100: data-parallel sfc-segtrain train (lib/dist.h): 1, 2 and 4 ranks
# under mpirun train the same weights as one plain process, within 1e-5
# relative per tensor (the gradient is summed over ranks in another order:
# the oracle is the one-process run, which has its own tests); a run on 1
# rank is byte-identical to the plain run. A run killed by SIGKILL (strace
# injects it into rank 0 at its 5th checkpoint rename; mpirun then ends the
# other rank) and resumed with 3 ranks ends at the same weights. The
# tolerance is not vacuous: a run with another --lr is outside it. The
# gradient sum overlapped with the backward pass in many chunks
# (SFC_DIST_CHUNK=97), or run after it (SFC_DIST_OVERLAP=0), gives the
# same bytes as the default (lib/dist.h).
# Needs: mpirun (skipped without it), strace, /usr/bin/python3 + numpy.
. tests/cli/lib.sh
. tests/cli/mpi.sh
need_mpi

expect_ok sfc-toygen --out "$T/toy" --size 40 --train 6 --val 1 -q
D="$T/toy"
A="--images $D/JPEGImages --labels $D/SegmentationClass
   --list $D/ImageSets/Segmentation/train.txt --classes 9 --width 4
   --blocks 1,1,1,1 --crop 41 --batch 4 --micro 1 --iters 20"

expect_ok sfc-segtrain train $A -q --out "$T/plain.st"
for n in 1 2 4; do
    expect_ok mpi $n sfc-segtrain train $A --out "$T/r$n.st"
    [ $n -gt 1 ] && stderr_has "sfc-segtrain: $n ranks, 20 steps"
    check "$n ranks: weights within 1e-5" close "$T/plain.st" "$T/r$n.st"
done
same_bytes "$T/plain.st" "$T/r1.st"
# the gradient sum in chunks of 97 floats, overlapped with the backward
# pass, or after it (SFC_DIST_OVERLAP=0): the same bits as the default
expect_ok mpi 2 env SFC_DIST_CHUNK=97 sfc-segtrain train $A --out "$T/c2.st"
stderr_has "per step (overlapped with backward: "
same_bytes "$T/r2.st" "$T/c2.st"
expect_ok mpi 2 env SFC_DIST_OVERLAP=0 sfc-segtrain train $A --out "$T/o2.st"
check "SFC_DIST_OVERLAP=0: not overlapped" grep -q "per step\$" "$T/.err"
same_bytes "$T/r2.st" "$T/o2.st"
expect_ok sfc-segtrain train $A -q --out "$T/lr.st" --lr 2e-4
check "another lr is outside the tolerance" far "$T/plain.st" "$T/lr.st"

# killed on 2 ranks at the 5th checkpoint (step 10), resumed on 3
killed_then_resumed 2 3 "$T/plain.st" sfc-segtrain train $A
check "checkpoint removed" test ! -e "$T/k.st.ckpt"
finish
