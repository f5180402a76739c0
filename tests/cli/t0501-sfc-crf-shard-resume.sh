# t0501: sfc-crf --shard I/N: the shards together write exactly the files
# and bytes of one unsharded run, each only its own ids; an interrupted
# run (some outputs there, one output deleted) resumes to the same bytes;
# two runs are byte-identical whatever the thread count.
. tests/cli/lib.sh
G=tests/golden/crf/cli
A="--images $G/images --ext .png --cams $G/cams -q --list $G/list.txt"

expect_ok sfc-crf $A --out "$T/one"
expect_ok sfc-crf $A --out "$T/sh" --shard 0/2
check "shard 0/2 writes ids 0, 2, 4" test "$(ls "$T/sh" | wc -l)" -eq 3
check "shard 0/2 skips id 1" test ! -e "$T/sh/scene0.png"
expect_ok sfc-crf $A --out "$T/sh" --shard 1/2
for id in $(cat $G/list.txt); do
    same_bytes "$T/one/$id.png" "$T/sh/$id.png"
done

# resume: a run that stopped after some images, one output lost
mkdir -p "$T/re"
cp "$T/one/blocks.png" "$T/one/scene1.png" "$T/re/"
expect_ok sfc-crf $A --out "$T/re"
for id in $(cat $G/list.txt); do
    same_bytes "$T/one/$id.png" "$T/re/$id.png"
done
rm "$T/re/scene2.png"
expect_ok sfc-crf $A --out "$T/re"
same_bytes "$T/one/scene2.png" "$T/re/scene2.png"

# determinism across thread counts
expect_ok sfc-crf $A --out "$T/t1" --threads 1
expect_ok sfc-crf $A --out "$T/t3" --threads 3
for id in $(cat $G/list.txt); do
    same_bytes "$T/t1/$id.png" "$T/t3/$id.png"
    same_bytes "$T/t1/$id.png" "$T/one/$id.png"
done
finish
