# t0502: sfc-crf's honest errors: a missing image or CAM file, a truncated
# .npz, a CAM whose size differs from the image, keys not starting with 0,
# a missing map: exit 1, one stderr line naming the file, no output file.
# Usage errors exit 2: bad --shard, --gt-prob out of range, missing
# required options, conflicting id sources; an id with a '/' exits 1.
. tests/cli/lib.sh
G=tests/golden/crf/cli
mkdir -p "$T/cams" "$T/images"
cp $G/images/blocks.png $G/images/scene0.png "$T/images/"
A="--images $T/images --ext .png --cams $T/cams -q"

expect_fail 1 sfc-crf $A --out "$T/o1" blocks
stderr_has "$T/cams/blocks.npz"
check "no output after a missing CAM" test ! -e "$T/o1/blocks.png"

cp $G/cams/blocks.npz "$T/cams/"
expect_fail 1 sfc-crf --images "$T/images" --ext .jpg --cams "$T/cams" -q \
    --out "$T/o2" blocks
stderr_has "$T/images/blocks.jpg"
check "no output after a missing image" test ! -e "$T/o2/blocks.png"

head -c 3000 $G/cams/scene1.npz >"$T/cams/trunc.npz"
cp $G/images/scene1.png "$T/images/trunc.png"
expect_fail 1 sfc-crf $A --out "$T/o3" trunc
stderr_has "trunc.npz"
check "no output after a truncated npz" test ! -e "$T/o3/trunc.png"

# the block image's CAM (30x20) against a 40x30 image
cp $G/cams/blocks.npz "$T/cams/scene0.npz"
expect_fail 1 sfc-crf $A --out "$T/o4" scene0
stderr_has "scene0.npz: CAM size 30x20 differs from the image"
check "no output after a size mismatch" test ! -e "$T/o4/scene0.png"

if [ -n "${SFC_ORACLE:-}" ]; then
    "$SFC_ORACLE" -c '
import sys, numpy as np
z = dict(np.load(sys.argv[1]))
z["keys"] = z["keys"] + 1
np.savez(sys.argv[2], **z)
del z["cam_p"]
np.savez(sys.argv[3], **z)' $G/cams/blocks.npz "$T/cams/badkeys.npz" \
        "$T/cams/nomap.npz"
    cp $G/images/blocks.png "$T/images/badkeys.png"
    cp $G/images/blocks.png "$T/images/nomap.png"
    expect_fail 1 sfc-crf $A --out "$T/o5" badkeys
    stderr_has "badkeys.npz: 'keys' must start with 0"
    expect_fail 1 sfc-crf $A --out "$T/o5" nomap
    stderr_has "nomap.npz"
    check "no outputs after bad CAMs" test ! -e "$T/o5/badkeys.png"
fi

# usage errors
expect_fail 2 sfc-crf $A --out "$T/u" --shard 3/2 blocks
expect_fail 2 sfc-crf $A --out "$T/u" --gt-prob 1 blocks
stderr_has "gt-prob"
expect_fail 2 sfc-crf --cams "$T/cams" --out "$T/u" blocks
expect_fail 2 sfc-crf $A blocks
expect_fail 2 sfc-crf $A --out "$T/u" --list $G/list.txt blocks
expect_fail 2 sfc-crf $A --out "$T/u" --split train blocks
expect_fail 2 sfc-crf $A --out "$T/u" --rule bogus blocks
expect_fail 2 sfc-crf $A --out "$T/u" --w-weight 0 --p-weight 0 blocks
expect_fail 1 sfc-crf $A --out "$T/u" ../blocks
stderr_has "not a valid image id"
expect_fail 1 sfc-crf $A --out "$T/u" </dev/null
stderr_has "no image ids"
finish
