# t0703: sfc-irn errors: a missing IR label, a label of the wrong size, a
# missing image, a missing model, a CAM of another size than its image and
# an image larger than the canvas each give one stderr line naming the
# file, exit 1 and leave no output; usage errors (no subcommand, --crop
# not a multiple of 4, --micro not dividing --batch) exit 2.
# Needs: sfc-toygen (a 48x48 image and label).
. tests/cli/lib.sh
F=tests/golden/irnnet/cli
A="--ext .png --list $F/list.txt --width 4 --batch 2 --micro 1 --epochs 1
   --crop 64 --radius 5 -q"
expect_ok sfc-toygen --out "$T/toy48" --size 48 --train 1 --val 1 -q

mkdir "$T/lab" "$T/img"
cp $F/labels/*.png "$T/lab/"
cp $F/images/*.png "$T/img/"
rm "$T/lab/000003.png"
expect_fail 1 sfc-irn train $A --images "$T/img" --labels "$T/lab" \
    --out "$T/m.st"
stderr_has "000003.png"
check "no model after a missing label" test ! -e "$T/m.st"
check "no checkpoint either" test ! -e "$T/m.st.ckpt"

cp "$T/toy48/SegmentationClass/000001.png" "$T/lab/000003.png"
expect_fail 1 sfc-irn train $A --images "$T/img" --labels "$T/lab" \
    --out "$T/m.st"
stderr_has "000003.png"
check "no model after a wrong-size label" test ! -e "$T/m.st"

cp $F/labels/000003.png "$T/lab/000003.png"
rm "$T/img/000004.png"
expect_fail 1 sfc-irn train $A --images "$T/img" --labels "$T/lab" \
    --out "$T/m.st"
stderr_has "000004.png"
check "no model after a missing image" test ! -e "$T/m.st"

cp $F/images/000004.png "$T/img/"
expect_ok sfc-irn train $A --images "$T/img" --labels "$T/lab" \
    --out "$T/ok.st"

I="--ext .png --list $F/list.txt --cams $F/cam --canvas 64 -q"
expect_fail 1 sfc-irn infer $I --images "$T/img" --irn "$T/none.st" \
    --out "$T/p"
stderr_has "none.st"
check "no outputs without a model" test -z "$(ls "$T/p" 2>/dev/null)"

expect_fail 1 sfc-irn infer $I --images "$T/img" --irn "$T/ok.st" \
    --canvas 32 --out "$T/q"
stderr_has "canvas"
check "nothing written for a too-small canvas" test -z "$(ls "$T/q" 2>/dev/null)"

cp "$T/toy48/JPEGImages/000001.jpg" "$T/img/000001.jpg"
rm "$T/img/000001.png"
expect_fail 1 sfc-irn infer --ext .jpg --cams $F/cam --canvas 64 -q \
    --images "$T/img" --irn "$T/ok.st" --out "$T/r" 000001
stderr_has "000001.npz"
check "no label for a CAM of the wrong size" test ! -e "$T/r/000001.png"

expect_fail 2 sfc-irn
expect_fail 2 sfc-irn train $A --images $F/images --labels $F/labels --crop 62
expect_fail 2 sfc-irn train $A --images $F/images --labels $F/labels \
    --batch 3 --micro 2
finish
