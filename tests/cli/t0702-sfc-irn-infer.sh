# t0702: sfc-irn infer writes a palette label PNG of the image's size for
# every id, with values among the CAM keys; skips ids whose output exists
# (a planted file stays untouched); two shards together give the bytes of
# one run; a second run gives the same bytes; --rule irn and
# --walk-precision f64 also run; a
# model with other --blocks is read back from its metadata.
# Needs: od.
. tests/cli/lib.sh
F=tests/golden/irnnet/cli
A="--images $F/images --ext .png --list $F/list.txt"
expect_ok sfc-irn train $A --labels $F/labels --width 4 --batch 2 --micro 1 \
    --epochs 1 --crop 64 --radius 5 -q --out "$T/irn.st"
I="$A --cams $F/cam --irn $T/irn.st --canvas 64 -q"

expect_ok sfc-irn infer $I --out "$T/p"
for id in $(cat $F/list.txt); do
    check "$id written" test -s "$T/p/$id.png"
    # PNG IHDR: width and height (bytes 16..23), bit depth 8, colour type 3
    check "$id is a 64x64 palette PNG" test \
        "$(od -An -tx1 -j16 -N10 "$T/p/$id.png" | tr -d ' \n')" = \
        "00000040000000400803"
done

expect_ok sfc-irn infer $I --out "$T/p2" --db "$T/sfc.db"
for id in $(cat $F/list.txt); do same_bytes "$T/p/$id.png" "$T/p2/$id.png"; done

# skip: a planted output is kept, the missing ones are written
mkdir -p "$T/p3"
echo planted >"$T/p3/000002.png"
expect_ok sfc-irn infer $I --out "$T/p3"
check "planted output kept" grep -q planted "$T/p3/000002.png"
same_bytes "$T/p/000003.png" "$T/p3/000003.png"

# shards
expect_ok sfc-irn infer $I --out "$T/s" --shard 0/2
check "shard 0/2 writes 2" test "$(ls "$T/s" | wc -l)" = 2
expect_ok sfc-irn infer $I --out "$T/s" --shard 1/2
for id in $(cat $F/list.txt); do same_bytes "$T/p/$id.png" "$T/s/$id.png"; done

expect_ok sfc-irn infer $I --out "$T/irn" --rule irn
check "irn rule writes all" test "$(ls "$T/irn" | wc -l)" = 4
expect_ok sfc-irn infer $I --out "$T/f64" --walk-precision f64
check "float64 walk writes all" test "$(ls "$T/f64" | wc -l)" = 4

# another backbone shape travels in the model's metadata
expect_ok sfc-irn train $A --labels $F/labels --width 4 --blocks 1,2,1,1 \
    --batch 2 --micro 2 --epochs 1 --crop 64 --radius 5 -q --out "$T/b.st"
expect_ok sfc-irn infer $A --cams $F/cam --irn "$T/b.st" --canvas 64 -q \
    --out "$T/b"
check "blocks 1,2,1,1 model writes all" test "$(ls "$T/b" | wc -l)" = 4
finish
