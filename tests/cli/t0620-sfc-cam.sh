# t0620: sfc-cam on a tiny toy set with a small random network: the maps
# equal a PyTorch re-expression of §3 (tests/ref/ref_cam.py, when the
# oracle is installed), shards together give the same files as one run,
# finished images are skipped, bad input fails with one line and no file.
# Needs: sqlite3; python3-torch for the oracle part.
. tests/cli/lib.sh

expect_ok sfc-toygen --out "$T/toy" --size 40 --train 12 --val 4 \
    --classes 5 --seed 5 -q
expect_ok sfc-ingest --db "$T/db" -q "$T/toy"
if [ -n "${SFC_ORACLE:-}" ]; then
    expect_ok "$SFC_ORACLE" tests/ref/ref_sfc.py --out "$T/net" --seed 7
    W="$T/net/weights.safetensors"
else
    W=tests/golden/sfc/weights.safetensors
fi
expect_ok sfc-cam --db "$T/db" --ckpt "$W" --out "$T/cam" --split val \
    --scales 1,0.5,1.5 -q
check "one file per image" test "$(ls "$T/cam" | wc -l)" = 4
for s in 0 1; do
    expect_ok sfc-cam --db "$T/db" --ckpt "$W" --out "$T/sh" --split val \
        --scales 1,0.5,1.5 --shard $s/2 -q
done
for f in "$T"/cam/*.npz; do same_bytes "$f" "$T/sh/$(basename "$f")"; done
expect_ok sfc-cam --db "$T/db" --ckpt "$W" --out "$T/cam" --split val \
    --scales 1,0.5,1.5
check "second run skips" grep -q "0 written	4 skipped" "$T/.out"
# --cam-c 0: the same M_W and M_P without cam_c (smaller files)
expect_ok sfc-cam --db "$T/db" --ckpt "$W" --out "$T/nc" --split val \
    --scales 1,0.5,1.5 --cam-c 0 -q
check "--cam-c 0 files are smaller" test "$(du -sb "$T/nc" | cut -f1)" -lt \
    "$(du -sb "$T/cam" | cut -f1)"
G="$T/toy/SegmentationClass"
expect_ok sfc-miou --gt "$G" --cams "$T/cam" --db "$T/db" --split val --map all
cp "$T/.out" "$T/m1"
expect_ok sfc-miou --gt "$G" --cams "$T/nc" --db "$T/db" --split val --map all
same_bytes "$T/.out" "$T/m1"
expect_fail 1 sfc-miou --gt "$G" --cams "$T/nc" --db "$T/db" --split val \
    --map cam_c
if [ -n "${SFC_ORACLE:-}" ]; then
    args=""
    for id in $(cat "$T/toy/ImageSets/Segmentation/val.txt"); do
        lab=$(sqlite3 "$T/db" \
            "SELECT group_concat(class) FROM image_labels WHERE image = '$id'")
        args="$args $T/toy/JPEGImages/$id.jpg:$lab"
    done
    expect_ok "$SFC_ORACLE" tests/ref/ref_cam.py "$W" "$T/cam" 1,0.5,1.5 \
        $args
fi
# errors
expect_fail 1 sfc-cam --db "$T/db" --ckpt "$T/none.safetensors" \
    --out "$T/e" --split val -q
check "no output folder" test ! -e "$T/e"
expect_fail 1 sfc-cam --db "$T/db" --ckpt "$W" --out "$T/e2" nosuchid -q
check "no partial file" test -z "$(ls "$T/e2" 2>/dev/null)"
check "the failed run is marked failed" test "$(sqlite3 "$T/db" \
    "SELECT status FROM runs WHERE tool = 'sfc-cam' ORDER BY id DESC
     LIMIT 1")" = failed
expect_fail 2 sfc-cam --db "$T/db" --ckpt "$W" --out "$T/e3" --scales 1,x
finish
