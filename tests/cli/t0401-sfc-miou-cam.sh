# t0401: sfc-miou on CAM .npz files: the argmax with the stored background
# channel for M_W, M_P and M_W + 0.7 M_P (one run, --map all) against the
# numpy oracle; IRN's background threshold (max-normalised foreground) and
# the threshold sweep (curve and best) against the oracle's torch/numpy
# version (tests/golden/miou/cli/expect-*.txt).
# Needs: awk.
. tests/cli/lib.sh
G=tests/golden/miou/cli
A="--gt $G/gt --cams $G/cam --classes $G/classes.txt --groups gt -q"

expect_ok sfc-miou $A --csv --p-weight 0.7 --list $G/list.txt
cp "$T/.out" "$T/all.csv"
for m in M_W:cam_w M_P:cam_p M_W+0.7M_P:sum; do
    check "map ${m%%:*} agrees with the oracle" awk -v map="${m%%:*}" \
        -f tests/cli/miou-compare.awk "$G/expect-${m##*:}.txt" "$T/all.csv"
done
check "bg column says channel" sh -c "cut -d, -f2 '$T/all.csv' | sed 1d | sort -u | grep -qx channel"

# one map alone gives the same rows as in the all-maps run
expect_ok sfc-miou $A --csv --map cam_p --list $G/list.txt
grep '^M_P,' "$T/all.csv" >"$T/p1"
sed 1d "$T/.out" >"$T/p2"
same_bytes "$T/p1" "$T/p2"

# sweep: the whole curve, then the rows at the best threshold
expect_ok sfc-miou $A --csv --map sum --p-weight 0.7 --sweep 0.05:0.6:0.05 \
    --list $G/list.txt
cp "$T/.out" "$T/sweep.csv"
grep ',curve,' "$T/sweep.csv" | cut -d, -f3,7 | tr , ' ' >"$T/curve"
check "curve has 12 thresholds" test "$(wc -l <"$T/curve")" -eq 12
check "curve agrees with the oracle" awk '
    FNR == NR { t[FNR] = $1; v[FNR] = $2; n = FNR; next }
    { d = $2 - v[FNR]; if (d < 0) d = -d; e = $1 - t[FNR]; if (e < 0) e = -e
      if (d > 1e-12 || e > 1e-12) { print "curve " FNR ": " $0; bad = 1 } }
    END { exit bad || FNR != n }' "$G/expect-sweep.txt" "$T/curve"
best=$(sort -k2,2g "$G/expect-sweep.txt" | tail -1 | cut -d' ' -f1)
check "best threshold" sh -c "grep ',mean,,mIoU,' '$T/sweep.csv' | cut -d, -f3 | grep -qx '$best'"

# a fixed threshold gives the curve's value at that threshold
expect_ok sfc-miou $A --csv --map sum --p-weight 0.7 --bg threshold \
    --threshold 0.15 --list $G/list.txt
got=$(grep ',mean,,mIoU,' "$T/.out" | cut -d, -f7)
want=$(sed -n 3p "$G/expect-sweep.txt" | cut -d' ' -f2)
check "threshold 0.15 mIoU $got vs $want" awk -v a="$got" -v b="$want" \
    'BEGIN { d = a - b; exit !(d < 1e-12 && d > -1e-12) }'

# the table form of the sweep
expect_ok sfc-miou $A --map sum --p-weight 0.7 --sweep 0.05:0.6:0.05 \
    --list $G/list.txt
check "sweep table best line" grep -q '^best threshold 0\.05$' "$T/.out"
check "sweep table title" grep -q '^map M_W+0.7M_P, background threshold 0.05, 5 images$' "$T/.out"
finish
