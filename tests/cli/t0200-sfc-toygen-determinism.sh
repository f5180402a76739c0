# t0200: sfc-toygen writes a VOC-layout folder; the same seed gives the
# same bytes on 1 and 2 threads, another seed other bytes; label PNGs
# read back through PIL as mode "P" when the oracle is there; bad options
# exit 2, an unwritable output exits 1 with one line.
. tests/cli/lib.sh
gen() {
    expect_ok env OMP_NUM_THREADS="$1" sfc-toygen -q --train 40 --val 12 \
        --seed "$2" --out "$3"
}
gen 1 5 "$T/a"
cp "$T/.out" "$T/table-a"
gen 2 5 "$T/b"
gen 2 6 "$T/c"
check "same seed, same bytes" diff -r "$T/a" "$T/b"
check "another seed, other bytes" sh -c "! diff -rq '$T/a' '$T/c' >/dev/null"
check "40 train ids" test "$(wc -l <"$T/a/ImageSets/Segmentation/train.txt")" -eq 40
check "12 val ids" test "$(wc -l <"$T/a/ImageSets/Segmentation/val.txt")" -eq 12
check "8 class names" test "$(wc -l <"$T/a/classes.txt")" -eq 8
check "52 images" test "$(ls "$T/a/JPEGImages" | wc -l)" -eq 52
check "52 masks" test "$(ls "$T/a/SegmentationClass" | wc -l)" -eq 52
check "no temporaries" sh -c "! ls -a '$T/a'/*/ | grep -q '\.tmp\.'"
check "class table on stdout" grep -q "^1	oval_disc	1	head	" "$T/table-a"
first=$(head -1 "$T/a/ImageSets/Segmentation/train.txt")
check "listed image exists" test -f "$T/a/JPEGImages/$first.jpg"
if [ -n "${SFC_ORACLE:-}" ]; then
    check "PIL reads masks as mode P with ids in 0..8" "$SFC_ORACLE" -c "
import sys, glob, numpy as np
from PIL import Image
for f in glob.glob(sys.argv[1] + '/SegmentationClass/*.png'):
    im = Image.open(f)
    assert im.mode == 'P', f
    assert np.asarray(im).max() <= 8, f
    assert Image.open(f.replace('SegmentationClass', 'JPEGImages')[:-3] + 'jpg').size == (96, 96)
" "$T/a"
fi
expect_fail 2 sfc-toygen --classes 1
expect_fail 2 sfc-toygen --size 5
expect_fail 2 sfc-toygen --train x
expect_fail 2 sfc-toygen --imbalance -1
expect_fail 2 sfc-toygen --out "$T/d" extra
check "no output after a usage error" test ! -e "$T/d"
: >"$T/file"
expect_fail 1 sfc-toygen -q --train 2 --val 1 --out "$T/file"
stderr_has "$T/file"
finish
