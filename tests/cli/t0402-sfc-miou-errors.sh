# t0402: sfc-miou's error paths: a missing ground-truth, prediction or CAM
# file, a size mismatch, a label value outside the class range, a file
# that is not a PNG, a truncated .npz, an empty id list -> one stderr line
# naming the file, exit 1, nothing on stdout; conflicting or missing
# options -> exit 2.
# Needs: the fixture tests/golden/miou/cli.
. tests/cli/lib.sh
G=tests/golden/miou/cli
C="--classes $G/classes.txt -q"

no_stdout() { check "no stdout on error ($1)" test ! -s "$T/.out"; }

# missing ground truth (checked before any work)
expect_fail 1 sfc-miou $C --gt $G/gt --pred $G/pred img_000 nope
stderr_has "$G/gt/nope.png: missing ground-truth file"
no_stdout gt

# missing prediction / CAM file
mkdir "$T/pred" "$T/cam"
cp $G/pred/img_000.png $G/pred/img_001.png "$T/pred/"
expect_fail 1 sfc-miou $C --gt $G/gt --pred "$T/pred" --list $G/list.txt
stderr_has "$T/pred/img_002.png: missing prediction file"
no_stdout pred
expect_fail 1 sfc-miou $C --gt $G/gt --cams "$T/cam" img_000
stderr_has "$T/cam/img_000.npz: missing CAM file"

# size mismatch: img_001's prediction under img_000's name
cp $G/pred/img_001.png "$T/pred/img_000.png"
expect_fail 1 sfc-miou $C --gt $G/gt --pred "$T/pred" img_000
stderr_has "$T/pred/img_000.png: size 8x13 differs from the ground truth '$G/gt/img_000.png' (18x23)"
no_stdout size
cp $G/cam/img_001.npz "$T/cam/img_000.npz"
expect_fail 1 sfc-miou $C --gt $G/gt --cams "$T/cam" img_000
stderr_has "$T/cam/img_000.npz: CAM size 8x13 differs"

# values outside [0, K): three classes only
printf 'background\na\nb\n' >"$T/three.txt"
expect_fail 1 sfc-miou --classes "$T/three.txt" --gt $G/gt --pred $G/pred img_000
stderr_has "$G/gt/img_000.png: label value 12 out of range \[0, 3)"
no_stdout range
expect_fail 1 sfc-miou --classes "$T/three.txt" --gt $G/gt --cams $G/cam img_000
stderr_has "$G/cam/img_000.npz: 'keys' holds class 12, outside \[0, 3)"

# not a PNG; a truncated npz
echo hello >"$T/pred/img_002.png"
expect_fail 1 sfc-miou $C --gt $G/gt --pred "$T/pred" img_002
stderr_has "$T/pred/img_002.png"
head -c 300 $G/cam/img_002.npz >"$T/cam/img_002.npz"
expect_fail 1 sfc-miou $C --gt $G/gt --cams "$T/cam" img_002
stderr_has "$T/cam/img_002.npz"
no_stdout npz

# no ids
: >"$T/empty.txt"
expect_fail 1 sfc-miou $C --gt $G/gt --pred $G/pred --list "$T/empty.txt"
stderr_has "no image ids"
expect_fail 1 sfc-miou $C --gt $G/gt --pred $G/pred --list "$T/none.txt"
stderr_has "$T/none.txt: cannot open"

# usage errors
expect_fail 2 sfc-miou $C --pred $G/pred img_000
stderr_has "--gt DIR is required"
expect_fail 2 sfc-miou $C --gt $G/gt img_000
expect_fail 2 sfc-miou $C --gt $G/gt --pred $G/pred --cams $G/cam img_000
stderr_has "--pred and --cams conflict"
expect_fail 2 sfc-miou $C --gt $G/gt --pred $G/pred --sweep 0:1:0.1 img_000
expect_fail 2 sfc-miou $C --gt $G/gt --cams $G/cam --sweep 0:1 img_000
expect_fail 2 sfc-miou $C --gt $G/gt --cams $G/cam --sweep 0.5:0.1:0.1 img_000
expect_fail 2 sfc-miou $C --gt $G/gt --cams $G/cam --map nope img_000
expect_fail 2 sfc-miou $C --gt $G/gt --pred $G/pred --split train
stderr_has "--split needs --db"
expect_fail 2 sfc-miou -q --gt $G/gt --pred $G/pred img_000
stderr_has "need --classes FILE or --db"
expect_fail 2 sfc-miou $C --gt $G/gt --pred $G/pred --list $G/list.txt img_000
expect_fail 2 sfc-miou $C --gt $G/gt --pred $G/pred --groups db img_000
finish
