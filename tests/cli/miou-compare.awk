# miou-compare.awk: check sfc-miou --csv rows of one map against an
# expect-*.txt written by tests/ref/ref_miou.py (helper of t04*-sfc-miou-*).
#   awk -v map=M_W -f miou-compare.awk expect.txt out.csv
# expect lines: "id name iou precision recall gt_pixels pred_pixels" per
# class, then "mIoU v", "fg_mIoU v", "head v", "middle v", "tail v".
# Values agree when both are nan or |a - b| <= 1e-12 (float rounding of
# the mean); counts exactly. Prints the mismatches and exits 1 on any.
function close_to(a, b) {
    if (a == "nan" || b == "nan") return a == b
    d = a - b; if (d < 0) d = -d
    return d <= 1e-12
}
function bad(msg) { print "mismatch: " msg; nbad++ }
BEGIN { FS = " " }
FNR == NR {
    if (NF == 7) { want[$1] = $3 " " $4 " " $5 " " $6 " " $7; nwant++ }
    else if (NF == 2) { wmean[$1] = $2; nwant++ }
    next
}
FNR == 1 { FS = ","; $0 = $0; next }  # CSV header
$1 == map && $4 == "class" {
    split(want[$5], w, " ")
    if (!($5 in want)) { bad("unexpected class " $5); next }
    if (!close_to($7, w[1]) || !close_to($8, w[2]) || !close_to($9, w[3]) ||
        $10 != w[4] || $11 != w[5])
        bad("class " $5 ": got " $7 " " $8 " " $9 " " $10 " " $11 \
            ", want " want[$5])
    seen++
}
$1 == map && $4 == "mean" {
    if (!($6 in wmean)) { bad("unexpected mean " $6); next }
    if (!close_to($7, wmean[$6]))
        bad($6 ": got " $7 ", want " wmean[$6])
    seen++
}
END {
    if (seen != nwant) bad("saw " seen " rows of map " map ", want " nwant)
    exit nbad ? 1 : 0
}
