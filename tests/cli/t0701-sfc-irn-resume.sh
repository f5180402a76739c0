# t0701: an interrupted sfc-irn train resumes to the same weights: stopped
# after 1 and then 2 more steps (--stop-after leaves the checkpoint), and
# killed with SIGKILL part-way (timeout -s KILL, checkpoint every step),
# each finished by a plain re-run, give the bytes of an uninterrupted run.
# A checkpoint of a run with other options (seed, batch) or other ids is
# refused with one line, exit 1.
. tests/cli/lib.sh
F=tests/golden/irnnet/cli
A="--images $F/images --ext .png --labels $F/labels --list $F/list.txt
   --width 4 --batch 2 --micro 1 --epochs 3 --crop 64 --radius 5 -q"

expect_ok sfc-irn train $A --out "$T/full.st"

expect_ok sfc-irn train $A --out "$T/a.st" --stop-after 1
check "stopped: no model yet" test ! -e "$T/a.st"
check "stopped: checkpoint" test -s "$T/a.st.ckpt"
expect_ok sfc-irn train $A --out "$T/a.st" --stop-after 2
check "still no model" test ! -e "$T/a.st"
expect_ok sfc-irn train $A --out "$T/a.st"
same_bytes "$T/full.st" "$T/a.st"
check "checkpoint removed" test ! -e "$T/a.st.ckpt"

expect_ok sfc-irn train $A --out "$T/b.st" --stop-after 1
expect_fail 1 sfc-irn train $A --out "$T/b.st" --seed 1
stderr_has "b.st.ckpt"
expect_fail 1 sfc-irn train $A --out "$T/b.st" --batch 1
head -3 $F/list.txt >"$T/three"
expect_fail 1 sfc-irn train $A --out "$T/b.st" --list "$T/three"
check "refused runs write no model" test ! -e "$T/b.st"

# SIGKILL at some point (whenever it lands), then finish
timeout -s KILL 2 sfc-irn train $A --out "$T/k.st" --checkpoint-every 1 \
    >/dev/null 2>&1
expect_ok sfc-irn train $A --out "$T/k.st" --checkpoint-every 1
same_bytes "$T/full.st" "$T/k.st"
finish
