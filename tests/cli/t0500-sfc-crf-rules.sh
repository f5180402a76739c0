# t0500: sfc-crf's three rules on a hand-made CAM (tests/golden/crf/cli:
# colour bands background | ambiguous | object with the object's evidence
# spilling 3 px over the edge): the label PNG holds exactly the map derived
# by hand in tests/ref/ref_crf.py (checked by decoding with PIL when the
# oracle is installed); the lattice (binary16 and float32 values) and the
# exact filter write the same bytes; ids from arguments, --list and stdin agree; a second run skips.
# Needs: the python3 oracle for the content check (skipped without it).
. tests/cli/lib.sh
G=tests/golden/crf/cli
A="--images $G/images --ext .png --cams $G/cams -q"

same_as_expect() { # png npy
    [ -z "${SFC_ORACLE:-}" ] && return 0
    "$SFC_ORACLE" -c '
import sys, numpy as np
from PIL import Image
im = Image.open(sys.argv[1])
got, want = np.array(im), np.load(sys.argv[2])
sys.exit(0 if im.mode == "P" and got.shape == want.shape
         and (got == want).all() else 1)' "$1" "$2"
}

for rule in sfc irn cam-crf; do
    expect_ok sfc-crf $A --rule $rule --out "$T/$rule" blocks
    check "$rule: output written" test -f "$T/$rule/blocks.png"
    check "$rule: the hand-derived map" same_as_expect "$T/$rule/blocks.png" \
        "$G/expect-$rule.npy"
    expect_ok sfc-crf $A --rule $rule --filter exact --out "$T/$rule-x" blocks
    same_bytes "$T/$rule/blocks.png" "$T/$rule-x/blocks.png"
    expect_ok sfc-crf $A --rule $rule --filter lattice32 --out "$T/$rule-32" \
        blocks
    same_bytes "$T/$rule/blocks.png" "$T/$rule-32/blocks.png"
done
# the content check can fail: the cam-crf map is not the sfc map
if [ -n "${SFC_ORACLE:-}" ] &&
    same_as_expect "$T/cam-crf/blocks.png" "$G/expect-sfc.npy"; then
    fail "content check accepted the wrong map"
fi
# without the pairwise terms the spill stays (the CRF did the work)
expect_ok sfc-crf $A --gauss-compat 0 --bilat-compat 0 --out "$T/nocrf" blocks
if [ -n "${SFC_ORACLE:-}" ] &&
    same_as_expect "$T/nocrf/blocks.png" "$G/expect-sfc.npy"; then
    fail "no-CRF output equals the CRF's"
fi

# ids: arguments, --list, stdin; progress on stderr unless -q
B="--images $G/images --ext .png --cams $G/cams"
expect_ok sfc-crf $B --out "$T/args" $(cat $G/list.txt)
check "progress on stderr" grep -q '5 written, 0 already there' "$T/.err"
expect_ok sfc-crf $B -q --out "$T/list" --list $G/list.txt
expect_ok sfc-crf $B -q --out "$T/stdin" <$G/list.txt
check "quiet means no stderr" test ! -s "$T/.err"
for id in $(cat $G/list.txt); do
    same_bytes "$T/args/$id.png" "$T/list/$id.png"
    same_bytes "$T/args/$id.png" "$T/stdin/$id.png"
done
# a second run finds everything done
expect_ok sfc-crf $B --out "$T/args" --list $G/list.txt
check "second run skips" grep -q '0 written, 5 already there' "$T/.err"
check "no temporaries left" sh -c "! ls -a '$T/args' | grep -q tmp"
finish
