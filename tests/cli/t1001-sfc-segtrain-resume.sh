# t1001: an interrupted sfc-segtrain train resumes to the same weights:
# stopped after 1 and then 2 more steps (--stop-after leaves the
# checkpoint), and killed with SIGKILL part-way (timeout -s KILL,
# checkpoint every step), each finished by a plain re-run, give the bytes
# of an uninterrupted run (the image order and each sample's augmentation
# follow from the seed and the step, so replayed steps are the same). A
# checkpoint of a run with other options (seed, lr) or other ids is
# refused with one line, exit 1.
# Needs: sfc-toygen.
. tests/cli/lib.sh
expect_ok sfc-toygen --out "$T/toy" --size 40 --train 6 --val 1 -q
D="$T/toy"
A="--images $D/JPEGImages --labels $D/SegmentationClass
   --list $D/ImageSets/Segmentation/train.txt --classes 9 --width 4
   --blocks 1,1,1,1 --crop 41 --batch 2 --micro 1 --iters 6 -q"

expect_ok sfc-segtrain train $A --out "$T/full.st"

expect_ok sfc-segtrain train $A --out "$T/a.st" --stop-after 1
check "stopped: no model yet" test ! -e "$T/a.st"
check "stopped: checkpoint" test -s "$T/a.st.ckpt"
expect_ok sfc-segtrain train $A --out "$T/a.st" --stop-after 2
check "still no model" test ! -e "$T/a.st"
expect_ok sfc-segtrain train $A --out "$T/a.st"
same_bytes "$T/full.st" "$T/a.st"
check "checkpoint removed" test ! -e "$T/a.st.ckpt"

expect_ok sfc-segtrain train $A --out "$T/b.st" --stop-after 1
expect_fail 1 sfc-segtrain train $A --out "$T/b.st" --seed 1
stderr_has "b.st.ckpt"
expect_fail 1 sfc-segtrain train $A --out "$T/b.st" --lr 0.1
head -3 $D/ImageSets/Segmentation/train.txt >"$T/three"
expect_fail 1 sfc-segtrain train $A --out "$T/b.st" --list "$T/three"
check "refused runs write no model" test ! -e "$T/b.st"

timeout -s KILL 1 sfc-segtrain train $A --out "$T/k.st" \
    --checkpoint-every 1 >/dev/null 2>&1
expect_ok sfc-segtrain train $A --out "$T/k.st" --checkpoint-every 1
same_bytes "$T/full.st" "$T/k.st"
finish
