# t1000: sfc-segtrain train + predict on a tiny toy set (width 4, ResNet
# blocks 1,1,1,1, 41 px crops): the same options and seed give the same
# model bytes; --micro 1 and 2 give the same training up to float
# rounding (the loss curves agree); the db has one train_log row per step
# with a decaying lr; the model carries its configuration. predict writes
# a palette PNG of the image's size for every id (also with --flip 1 --crf
# 1, and for images of another size), skips ids whose output exists, two
# shards give the bytes of one run, and sfc-miou scores the predictions.
# Needs: sfc-toygen, sfc-miou, sqlite3, od.
. tests/cli/lib.sh
expect_ok sfc-toygen --out "$T/toy" --size 40 --train 8 --val 3 -q
expect_ok sfc-toygen --out "$T/big" --size 57 --train 1 --val 2 -q
D="$T/toy"
A="--images $D/JPEGImages --labels $D/SegmentationClass
   --list $D/ImageSets/Segmentation/train.txt --classes 9 --width 4
   --blocks 1,1,1,1 --crop 41 --batch 4 --iters 5 -q"

expect_ok sfc-segtrain train $A --micro 2 --out "$T/m.st" --db "$T/s.db"
expect_ok sfc-segtrain train $A --micro 2 --out "$T/m2.st"
same_bytes "$T/m.st" "$T/m2.st"
check "no checkpoint left" test ! -e "$T/m.st.ckpt"
check "model metadata" sh -c "head -c 4000 '$T/m.st' | grep -aq deeplab-v2"
check "5 train_log rows" test "$(sqlite3 "$T/s.db" \
    'SELECT count(*) FROM train_log')" = 5
check "lr decays" test "$(sqlite3 "$T/s.db" \
    'SELECT count(*) FROM train_log a JOIN train_log b ON b.step = a.step + 1
     WHERE b.lr < a.lr')" = 4
check "run ok" test "$(sqlite3 "$T/s.db" \
    "SELECT status FROM runs WHERE tool = 'sfc-segtrain train'")" = ok
# micro-batches: the same losses up to float rounding
expect_ok sfc-segtrain train $A --micro 1 --out "$T/m1.st" --db "$T/s1.db"
sqlite3 "$T/s.db" 'SELECT loss FROM train_log ORDER BY step' >"$T/l2"
sqlite3 "$T/s1.db" 'SELECT loss FROM train_log ORDER BY step' >"$T/l1"
check "micro 1 and 2 give the same losses" awk '
    NR == FNR { a[FNR] = $1; next }
    { d = $1 - a[FNR]; if (d < 0) d = -d; if (d > 1e-4 * a[FNR]) bad = 1 }
    END { exit bad }' "$T/l2" "$T/l1"

P="--images $D/JPEGImages --list $D/ImageSets/Segmentation/val.txt
   --model $T/m.st -q"
expect_ok sfc-segtrain predict $P --out "$T/p" --db "$T/s.db"
for id in $(cat $D/ImageSets/Segmentation/val.txt); do
    # PNG IHDR: width and height 40, bit depth 8, colour type 3 (palette)
    check "$id is a 40x40 palette PNG" test \
        "$(od -An -tx1 -j16 -N10 "$T/p/$id.png" | tr -d ' \n')" = \
        "00000028000000280803"
done
printf "background\n" | cat - $D/classes.txt >"$T/classes"
expect_ok sfc-miou --gt $D/SegmentationClass --pred "$T/p" \
    --classes "$T/classes" --list $D/ImageSets/Segmentation/val.txt
check "miou prints a table" grep -qi miou "$T/.out"

mkdir -p "$T/p3"
echo planted >"$T/p3/000010.png"
expect_ok sfc-segtrain predict $P --out "$T/p3"
check "planted output kept" grep -q planted "$T/p3/000010.png"
same_bytes "$T/p/000011.png" "$T/p3/000011.png"

expect_ok sfc-segtrain predict $P --out "$T/s" --shard 0/2
check "shard 0/2 writes 2" test "$(ls "$T/s" | wc -l)" = 2
expect_ok sfc-segtrain predict $P --out "$T/s" --shard 1/2
for id in $(cat $D/ImageSets/Segmentation/val.txt); do
    same_bytes "$T/p/$id.png" "$T/s/$id.png"
done

expect_ok sfc-segtrain predict $P --out "$T/fc" --flip 1 --crf 1 \
    --msc 1,0.75,0.5,1.25
check "flip + crf + extra scale write all" test "$(ls "$T/fc" | wc -l)" = 3
expect_ok sfc-segtrain predict --images "$T/big/JPEGImages" \
    --list "$T/big/ImageSets/Segmentation/val.txt" --model "$T/m.st" -q \
    --out "$T/b"
id=$(head -1 "$T/big/ImageSets/Segmentation/val.txt")
check "another size: 57x57" test \
    "$(od -An -tx1 -j16 -N10 "$T/b/$id.png" | tr -d ' \n')" = \
    "00000039000000390803"
finish
