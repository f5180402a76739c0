# t1101: data-parallel sfc-irn train (lib/dist.h) on the tiny fixture: 1,
# 2 and 4 ranks under mpirun train the same head as one plain process
# (oracle: the one-process run, tested elsewhere), within 1e-5 relative per
# tensor; 1 rank gives its bytes. With --db only rank 0 writes: one run
# row and one train_log row per step. A run killed by SIGKILL (injected
# into rank 0 at its 5th checkpoint rename) on 4 ranks and resumed on 2
# ends at the same weights. Another --lr is outside the tolerance.
# Needs: mpirun (skipped without it), strace, sqlite3, /usr/bin/python3 +
# numpy.
. tests/cli/lib.sh
. tests/cli/mpi.sh
need_mpi
F=tests/golden/irnnet/cli
A="--images $F/images --ext .png --labels $F/labels --list $F/list.txt
   --width 4 --batch 4 --micro 1 --epochs 20 --crop 64 --radius 5"

expect_ok sfc-irn train $A -q --out "$T/plain.st"
for n in 1 2 4; do
    expect_ok mpi $n sfc-irn train $A --out "$T/r$n.st" --db "$T/db$n"
    [ $n -gt 1 ] && stderr_has "sfc-irn: $n ranks, 20 steps"
    check "$n ranks: weights within 1e-5" close "$T/plain.st" "$T/r$n.st"
    check "$n ranks: one run row, 20 train_log rows" test "$(sqlite3 \
        "$T/db$n" "SELECT count(*) || ' ' || (SELECT count(*) FROM train_log)
        FROM runs WHERE status = 'ok'")" = "1 20"
done
same_bytes "$T/plain.st" "$T/r1.st"
expect_ok sfc-irn train $A -q --out "$T/lr.st" --lr 0.09
check "another lr is outside the tolerance" far "$T/plain.st" "$T/lr.st"

killed_then_resumed 4 2 "$T/plain.st" sfc-irn train $A
finish
