# t0610: sfc-trainstep on a tiny toy set: the schedule trains to the end,
# train_log gets a row per step, a run stopped part-way (--steps, or
# SIGKILL) and resumed ends at the same bytes as an uninterrupted run, the
# baseline trains, and bad input fails with one line. Needs: sqlite3,
# strace.
. tests/cli/lib.sh

expect_ok sfc-toygen --out "$T/toy" --size 32 --train 40 --val 6 \
    --classes 4 --seed 3 -q
expect_ok sfc-ingest --db "$T/db" -q "$T/toy"
expect_ok sfc-sample --db "$T/db" --split train --epochs 1 --batch 4 \
    --draws 2 --crop 32 --seed 1 -q
NET="--blocks 1,1,1,1 --width 4 --side 4,4,8,8 --lr 0.05 -q"

expect_ok sfc-trainstep --db "$T/db" --out "$T/a" --ckpt-every 3 $NET
check "final written" test -s "$T/a/final.safetensors"
check "a train_log row per step" test "$(sqlite3 "$T/db" \
    "SELECT count(*) FROM train_log")" = 10
check "losses are finite and positive" test "$(sqlite3 "$T/db" \
    "SELECT count(*) FROM train_log WHERE loss > 0 AND loss_cls > 0
     AND loss_pdw >= 0 AND loss_wdw >= 0 AND lr > 0 AND seconds > 0
     AND images_per_s > 0 AND grad_norm > 0")" = 10
expect_ok sfc-trainstep --db "$T/db" --out "$T/a" --ckpt-every 3 $NET
check "a finished run does nothing" test "$(sqlite3 "$T/db" \
    "SELECT count(*) FROM train_log")" = 10

# stop after 4 steps (checkpoint at 3), resume: same final bytes
expect_ok sfc-trainstep --db "$T/db" --out "$T/b" --ckpt-every 3 --steps 4 \
    $NET
check "no final after a partial run" test ! -e "$T/b/final.safetensors"
expect_ok sfc-trainstep --db "$T/db" --out "$T/b" --ckpt-every 3 $NET
same_bytes "$T/a/final.safetensors" "$T/b/final.safetensors"

# killed (SIGKILL) while it writes its second checkpoint (step 4; strace
# injects the signal at the second rename, so the kill lands there however
# fast the machine is), then resumed
strace -f -o /dev/null -e trace=rename,renameat,renameat2 \
    -e inject=rename,renameat,renameat2:signal=KILL:when=2 \
    sfc-trainstep --db "$T/db" --out "$T/c" --ckpt-every 2 $NET \
    >/dev/null 2>&1
check "killed before the end" test ! -e "$T/c/final.safetensors"
check "a checkpoint survived" test -s "$T/c/ckpt.safetensors"
expect_ok sfc-trainstep --db "$T/db" --out "$T/c" --ckpt-every 3 $NET
same_bytes "$T/a/final.safetensors" "$T/c/final.safetensors"

# --micro-batch is not part of the options a resume must share: 4 (two
# passes of 3 of the 6 images) for 4 steps, then 1 to the end; the losses
# follow the whole-batch run (equal up to float rounding)
expect_ok sfc-trainstep --db "$T/db" --out "$T/m" --ckpt-every 2 --steps 4 \
    --micro-batch 4 $NET
expect_ok sfc-trainstep --db "$T/db" --out "$T/m" --ckpt-every 3 \
    --micro-batch 1 $NET
check "micro-batched run finished" test -s "$T/m/final.safetensors"
check "micro-batched losses equal the whole batch's" test "$(sqlite3 \
    "$T/db" "SELECT count(*) FROM train_log x JOIN train_log y
     ON x.step = y.step WHERE
     x.run = (SELECT min(id) FROM runs WHERE config LIKE '%/a\"%')
     AND y.run IN (SELECT id FROM runs WHERE config LIKE '%/m\"%')
     AND abs(x.loss - y.loss) <= 1e-4 * x.loss
     AND abs(x.loss_pdw - y.loss_pdw) <= 1e-4 * x.loss_pdw + 1e-7
     AND abs(x.loss_wdw - y.loss_wdw) <= 1e-4 * x.loss_wdw + 1e-7")" = 10

expect_ok sfc-trainstep --db "$T/db" --out "$T/base" --baseline $NET
check "baseline logs no MSDW terms" test "$(sqlite3 "$T/db" \
    "SELECT count(*) FROM train_log t JOIN runs r ON r.id = t.run
     WHERE r.config LIKE '%\"baseline\":true%' AND loss_pdw = 0
     AND loss_wdw = 0")" = 10
expect_fail 2 sfc-sample --db "$T/db" --split train --crop 40 -q

# --strides: output stride 8 is stored in the checkpoint (sfc-cam builds
# the network from it) and is one of the options a resume must share
expect_ok sfc-trainstep --db "$T/db" --out "$T/os8" --strides 1,2,1,1 \
    --steps 2 --ckpt-every 2 $NET
check "strides in the checkpoint" grep -q '"sfc.strides":"1,2,1,1"' \
    "$T/os8/ckpt.safetensors"
expect_fail 1 sfc-trainstep --db "$T/db" --out "$T/os8" $NET
stderr_has "other options"
expect_ok sfc-trainstep --db "$T/db" --out "$T/os8" --strides 1,2,1,1 $NET
expect_ok sfc-cam --db "$T/db" --ckpt "$T/os8/final.safetensors" \
    --out "$T/os8/cam" --scales 1 -q 000001
check "a CAM from the stride-8 network" test -s "$T/os8/cam/000001.npz"
expect_fail 2 sfc-trainstep --db "$T/db" --out "$T/w" --strides 1,2,0,1 $NET

# a resumed run keeps its schedule and options: a newer schedule is not
# picked up, other options are refused
expect_ok sfc-trainstep --db "$T/db" --out "$T/d" --steps 3 --ckpt-every 3 \
    $NET
expect_ok sfc-sample --db "$T/db" --split train --epochs 2 --batch 4 \
    --draws 2 --crop 32 --seed 2 -q
expect_fail 1 sfc-trainstep --db "$T/db" --out "$T/d" $NET --lr 0.01
stderr_has "other options"
new=$(sqlite3 "$T/db" "SELECT max(id) FROM runs WHERE tool = 'sfc-sample'")
expect_fail 1 sfc-trainstep --db "$T/db" --out "$T/d" --schedule "$new" $NET
stderr_has "schedule"
expect_ok sfc-trainstep --db "$T/db" --out "$T/d" --ckpt-every 3 $NET
same_bytes "$T/a/final.safetensors" "$T/d/final.safetensors"

# errors
expect_fail 1 sfc-trainstep --db "$T/nodb" --out "$T/x" $NET
check "nothing created" test ! -e "$T/x"
expect_fail 1 sfc-trainstep --db "$T/db" --out "$T/x" --schedule 99 $NET
echo "not a checkpoint" >"$T/bad.safetensors"
expect_fail 1 sfc-trainstep --db "$T/db" --out "$T/y" \
    --weights "$T/bad.safetensors" $NET
stderr_has "bad.safetensors"
expect_fail 2 sfc-trainstep --db "$T/db" --out "$T/z" $NET --blocks 1,1
expect_fail 2 sfc-trainstep --db "$T/db"
finish
