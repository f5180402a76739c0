# t0400: sfc-miou on predicted label PNGs (palette and grayscale) against
# the numbers of the numpy oracle tests/ref/ref_miou.py (committed in
# tests/golden/miou/cli; head/middle/tail ranked by ground-truth image
# counts); ids from --list, arguments and standard input give the same
# bytes; the aligned table; progress on stderr unless -q.
# Needs: awk.
. tests/cli/lib.sh
G=tests/golden/miou/cli
A="--gt $G/gt --pred $G/pred --classes $G/classes.txt --groups gt"

expect_ok sfc-miou $A -q --csv --list $G/list.txt
cp "$T/.out" "$T/list.csv"
check "csv header" grep -q '^map,bg,threshold,kind,class_id,name,iou,' "$T/list.csv"
check "per-class and mean rows agree with the oracle" \
    awk -v map=pred -f tests/cli/miou-compare.awk $G/expect-pred.txt "$T/list.csv"
# the comparison itself can fail
check "comparison rejects other numbers" sh -c \
    "! awk -v map=pred -f tests/cli/miou-compare.awk $G/expect-cam_w.txt '$T/list.csv' >/dev/null"

expect_ok sfc-miou $A -q --csv $(cat $G/list.txt)
same_bytes "$T/.out" "$T/list.csv"
expect_ok sfc-miou $A -q --csv <$G/list.txt
same_bytes "$T/.out" "$T/list.csv"
check "quiet means no stderr" test ! -s "$T/.err"

# the table: percent, NaN as '-', group sizes of 20 classes are 7/7/6
expect_ok sfc-miou $A --list $G/list.txt
check "table mIoU" grep -q '^ *mIoU  *35\.41$' "$T/.out"
check "table background row" \
    grep -q '^  0  background  *76\.53  *94\.16  *80\.34  *702  *599$' "$T/.out"
check "absent class shows -" grep -q '^  1  aeroplane  *-  *-  *-  *0  *0$' "$T/.out"
check "head group" grep -q '^ *head  *58\.06   (7 classes)$' "$T/.out"
check "tail group" grep -q '^ *tail  *0\.00   (6 classes)$' "$T/.out"
check "progress on stderr" grep -q '^sfc-miou: images: 5/5' "$T/.err"

# --groups none drops the group rows
expect_ok sfc-miou --gt $G/gt --pred $G/pred --classes $G/classes.txt \
    --groups none -q --csv --list $G/list.txt
check "no group rows" sh -c "! grep -q ',head,' '$T/.out'"
finish
