# t0621: sfc-cam --cam-dtype f16 stores the maps as float16: numpy opens
# the files, the maps are '<f2' and equal numpy's float16 cast of the
# float32 run's maps exactly (round to nearest even); the keys are the
# same; the files are smaller. Downstream, the readers take both (lib/
# camfile.h): sfc-crf's IR labels and sfc-miou's CAM labels from the f16
# CAMs are compared with the f32 ones (the differing pixels are printed;
# rounding may flip a near-tie, so only a bound is checked).
# Needs: sqlite3; python3 with numpy for the numpy part.
. tests/cli/lib.sh

expect_ok sfc-toygen --out "$T/toy" --size 40 --train 12 --val 4 \
    --classes 5 --seed 5 -q
expect_ok sfc-ingest --db "$T/db" -q "$T/toy"
W=tests/golden/sfc/weights.safetensors
for d in f32 f16; do
    expect_ok sfc-cam --db "$T/db" --ckpt "$W" --out "$T/$d" --split train \
        --scales 1,0.5 --cam-dtype $d -q
done
check "12 f16 files" test "$(ls "$T/f16" | wc -l)" = 12
s32=$(cat "$T"/f32/*.npz | wc -c)
s16=$(cat "$T"/f16/*.npz | wc -c)
echo "note: 12 CAM files: f32 $s32 bytes, f16 $s16 bytes" >&2
check "f16 files smaller ($s16 vs $s32)" test "$s16" -lt "$s32"
expect_fail 2 sfc-cam --db "$T/db" --ckpt "$W" --out "$T/x" --split train \
    --cam-dtype f8

py=${SFC_ORACLE:-/usr/bin/python3}
if "$py" -c 'import numpy' 2>/dev/null; then
    cat >"$T/cmp.py" <<'PY'
import glob, os, sys
import numpy as np
a, b = sys.argv[1:3]
n = 0
for f in sorted(glob.glob(os.path.join(a, "*.npz"))):
    x, h = np.load(f), np.load(os.path.join(b, os.path.basename(f)))
    assert sorted(x.files) == sorted(h.files), f
    assert (x["keys"] == h["keys"]).all() and h["keys"].dtype == np.int64
    for m in ("cam_w", "cam_p", "cam_c"):
        assert x[m].dtype == np.float32 and h[m].dtype == np.float16, m
        want = x[m].astype(np.float16)
        assert want.tobytes() == h[m].tobytes(), (f, m)
        n += 1
print(n)
PY
    expect_ok "$py" "$T/cmp.py" "$T/f32" "$T/f16"
    check "numpy: 36 maps equal float16(f32)" test "$(cat "$T/.out")" = 36
    # the check can fail: a changed value is seen
    mkdir -p "$T/f16b"
    cp "$T"/f16/*.npz "$T/f16b/"
    first=$(ls "$T/f16b" | head -n 1)
    "$py" -c 'import numpy as np, sys
z = dict(np.load(sys.argv[1])); z["cam_w"].flat[3] += np.float16(0.5)
np.savez_compressed(sys.argv[1], **z)' "$T/f16b/$first"
    check "numpy check sees a changed value" sh -c \
        "! '$py' '$T/cmp.py' '$T/f32' '$T/f16b' >/dev/null 2>&1"
else
    echo "note: no python3 with numpy; the float16 values not rechecked" >&2
fi

# downstream: IR labels (sfc-crf) and CAM labels (sfc-miou) from both
for d in f32 f16; do
    expect_ok sfc-crf --db "$T/db" --cams "$T/$d" --out "$T/crf-$d" \
        --split train --rule sfc -q
    expect_ok sfc-miou --db "$T/db" --gt "$T/toy/SegmentationClass" \
        --cams "$T/$d" --split train --map all -q
    grep -i "miou" "$T/.out" >"$T/miou-$d"
done
check "12 IR labels from f16" test "$(ls "$T/crf-f16" | wc -l)" = 12
ndiff=0
for f in "$T"/crf-f32/*.png; do
    cmp -s "$f" "$T/crf-f16/$(basename "$f")" || ndiff=$((ndiff + 1))
done
echo "note: IR labels from f16 vs f32 CAMs: $ndiff of 12 images differ" >&2
if "$py" -c 'import numpy, PIL' 2>/dev/null; then
    "$py" -c 'import glob, os, sys
import numpy as np
from PIL import Image
a, b = sys.argv[1:3]
d = t = 0
for f in sorted(glob.glob(os.path.join(a, "*.png"))):
    x = np.array(Image.open(f))
    y = np.array(Image.open(os.path.join(b, os.path.basename(f))))
    d += int((x != y).sum())
    t += x.size
print(d, t)' "$T/crf-f32" "$T/crf-f16" >"$T/px"
    echo "note: IR label pixels that differ: $(cat "$T/px")" >&2
    check "under 0.5 % of the pixels differ" awk \
        '{ exit !($1 * 200 < $2) }' "$T/px"
fi
echo "note: sfc-miou f32: $(tr '\n' ' ' <"$T/miou-f32")" >&2
echo "note: sfc-miou f16: $(tr '\n' ' ' <"$T/miou-f16")" >&2
finish
