# t1002: sfc-segtrain errors: a missing label, a label of the wrong size, a
# label value that is no class, a missing image (train); a missing model,
# a file that is not a DeepLab model, a truncated model, a missing image
# (predict) each give one stderr line naming the file, exit 1 and leave no
# output; usage errors (no or unknown subcommand, --micro not dividing
# --batch, a bad --msc or --scales list, no --labels) exit 2.
# Needs: sfc-toygen, head, printf.
. tests/cli/lib.sh
expect_ok sfc-toygen --out "$T/toy" --size 40 --train 4 --val 1 -q
expect_ok sfc-toygen --out "$T/big" --size 48 --train 1 --val 1 -q
D="$T/toy"
L=$D/ImageSets/Segmentation/train.txt
A="--images $T/img --labels $T/lab --list $L --classes 9 --width 4
   --blocks 1,1,1,1 --crop 41 --batch 2 --micro 1 --iters 2 -q"
mkdir "$T/img" "$T/lab"
cp $D/JPEGImages/*.jpg "$T/img/"
cp $D/SegmentationClass/*.png "$T/lab/"

rm "$T/lab/000002.png"
expect_fail 1 sfc-segtrain train $A --out "$T/m.st"
stderr_has "000002.png"
check "no model after a missing label" test ! -e "$T/m.st"
check "no checkpoint either" test ! -e "$T/m.st.ckpt"

cp "$T/big/SegmentationClass/000001.png" "$T/lab/000002.png"
expect_fail 1 sfc-segtrain train $A --out "$T/m.st"
stderr_has "000002.png"
check "no model after a wrong-size label" test ! -e "$T/m.st"

cp $D/SegmentationClass/000002.png "$T/lab/000002.png"
expect_fail 1 sfc-segtrain train $A --classes 2 --out "$T/m.st"
stderr_has "not a class"
check "no model after a bad label value" test ! -e "$T/m.st"

rm "$T/img/000003.jpg"
expect_fail 1 sfc-segtrain train $A --out "$T/m.st"
stderr_has "000003.jpg"
check "no model after a missing image" test ! -e "$T/m.st"
cp $D/JPEGImages/000003.jpg "$T/img/"
expect_ok sfc-segtrain train $A --out "$T/ok.st"

V=$D/ImageSets/Segmentation/val.txt
P="--images $T/img --list $V -q"
expect_fail 1 sfc-segtrain predict $P --model "$T/none.st" --out "$T/p"
stderr_has "none.st"
check "no outputs without a model" test -z "$(ls "$T/p" 2>/dev/null)"
expect_fail 1 sfc-segtrain predict $P \
    --model tests/golden/resnet/tiny_sfc.weights.safetensors --out "$T/p"
stderr_has "not a DeepLab"
head -c 3000 "$T/ok.st" >"$T/trunc.st"
expect_fail 1 sfc-segtrain predict $P --model "$T/trunc.st" --out "$T/p"
stderr_has "trunc.st"
check "no outputs from a bad model" test -z "$(ls "$T/p" 2>/dev/null)"
expect_fail 1 sfc-segtrain predict --images "$T/img" -q --model "$T/ok.st" \
    --out "$T/q" 000099
stderr_has "000099"
check "nothing written for a missing image" test ! -e "$T/q/000099.png"

expect_fail 2 sfc-segtrain
expect_fail 2 sfc-segtrain fit
expect_fail 2 sfc-segtrain train $A --micro 3 --out "$T/u.st"
expect_fail 2 sfc-segtrain train $A --msc 1,x --out "$T/u.st"
expect_fail 2 sfc-segtrain train $A --scales 0.5,-1 --out "$T/u.st"
expect_fail 2 sfc-segtrain train --images "$T/img" --list $L --out "$T/u.st"
expect_fail 2 sfc-segtrain predict $P --model "$T/ok.st" --msc 0 --out "$T/u"
check "usage errors write nothing" test ! -e "$T/u.st" -a ! -e "$T/u"
finish
