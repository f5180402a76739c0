# t1104: a run stopped from outside leaves an honest row (lib/trainer.h).
# 1. One rank of a 2-rank sfc-trainstep is killed (SIGKILL) after 4 steps:
#    mpirun ends the other rank (rank 0, which writes the db) with
#    SIGTERM, and rank 0 marks its run 'failed' with an end time instead
#    of leaving it 'running'. The run then resumes from its checkpoint on
#    2 ranks, its new row ends 'ok', and the weights are the bytes of an
#    uninterrupted 2-rank run (a checkpoint holds the whole state; over 30
#    steps 1 and 2 ranks drift apart beyond t1102's 1e-5).
# 2. A plain (one-process) run stopped by SIGTERM ends with that signal
#    (exit status 143) and its row is 'failed' too.
# Needs: mpirun (skipped without it), sqlite3, pgrep.
. tests/cli/lib.sh
. tests/cli/mpi.sh
need_mpi
# the pid of rank $1 of the sfc-trainstep whose command line has $2
rank_pid() {
    for p in $(pgrep -x sfc-trainstep); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null |
            grep -qx "OMPI_COMM_WORLD_RANK=$1" || continue
        tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "$2" && echo "$p"
    done
}
# wait (at most 120 s: the sanitizer build is slow) until the running run
# writing to $1 has $2 train_log rows
wait_rows() {
    i=0
    while [ $i -lt 2400 ]; do
        r=$(sqlite3 "$T/db" "SELECT count(*) FROM train_log WHERE run = \
            (SELECT max(id) FROM runs WHERE status = 'running' AND \
            json_extract(config, '$.out') = '$1')" 2>/dev/null)
        [ "${r:-0}" -ge "$2" ] && return 0
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}
status() {
    sqlite3 "$T/db" "SELECT group_concat(status || ':' || (ended IS NOT \
        NULL), ' ') FROM (SELECT * FROM runs WHERE tool = 'sfc-trainstep' \
        AND json_extract(config, '$.out') = '$1' ORDER BY id)"
}

expect_ok sfc-toygen --out "$T/toy" --size 32 --train 40 --val 6 \
    --classes 4 --seed 3 -q
expect_ok sfc-ingest --db "$T/db" -q "$T/toy"
expect_ok sfc-sample --db "$T/db" --split train --epochs 3 --batch 4 \
    --draws 2 --crop 32 --seed 1 -q
NET="--blocks 1,1,1,1 --width 4 --side 4,4,8,8 --lr 0.05 --micro-batch 2"
expect_ok mpi 2 sfc-trainstep --db "$T/db" --out "$T/whole" $NET -q

# 1. rank 1 killed
mpirun --oversubscribe --bind-to none -np 2 sfc-trainstep --db "$T/db" \
    --out "$T/k" $NET -q --ckpt-every 2 >/dev/null 2>&1 &
job=$!
check "4 steps done" wait_rows "$T/k" 4
p=$(rank_pid 1 "$T/k")
check "rank 1 found" test -n "$p"
[ -n "$p" ] && kill -KILL $p
wait $job
check "mpirun failed" test $? -ne 0
check "killed before the end" test ! -e "$T/k/final.safetensors"
check "a checkpoint survived" test -s "$T/k/ckpt.safetensors"
check "the run's row: failed, with an end time ($(status "$T/k"))" \
    test "$(status "$T/k")" = "failed:1"
expect_ok mpi 2 sfc-trainstep --db "$T/db" --out "$T/k" $NET -q \
    --ckpt-every 2
check "resumed: the old row failed, the new ok ($(status "$T/k"))" \
    test "$(status "$T/k")" = "failed:1 ok:1"
same_bytes "$T/whole/final.safetensors" "$T/k/final.safetensors"

# 2. one process, SIGTERM
sfc-trainstep --db "$T/db" --out "$T/t" $NET -q >/dev/null 2>&1 &
job=$!
check "4 steps done" wait_rows "$T/t" 4
kill -TERM $job
wait $job
rc=$?
check "ended by SIGTERM (exit status $rc)" test $rc -eq 143
check "its row: failed, with an end time ($(status "$T/t"))" \
    test "$(status "$T/t")" = "failed:1"
finish
