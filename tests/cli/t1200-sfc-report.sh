# t1200: sfc-report on the tiny toy run of t0900 (both methods): the page
# has every section, its numbers match the db and numpy
# (report-check.py, with Debian's python3 when it has numpy), it opens in
# headless Chromium with every image decoded and no console message, and
# a screenshot of it is left for a person to look at. A resumed training
# has its resume point and warm-up marked on the curves. Runs missing stages
# give a page without those sections; a missing folder, a corrupt or
# foreign db and a failing gnuplot give one error line, exit 1 and leave
# the output as it was. Needs: make, sqlite3, gnuplot; chromium (skipped
# without it, except under CI, where it must run).
. tests/cli/lib.sh

run() {
    make --no-print-directory -f pipelines/toy.mk BINDIR="$SFC_BIN" \
        TOY_RUN="$T/run" TOY_TRAIN=48 TOY_VAL=8 TOY_SIZE=32 TOY_CLASSES=4 \
        TOY_EPOCHS=1 TOY_BATCH=8 TOY_DRAWS=2 TOY_PDW_WARMUP=2 \
        TOY_SCALES=1,0.5 TOY_WIDTH=4 TOY_SIDE=4,4,8,8 TOY_IRN_IMAGES=16 \
        TOY_IRN_EPOCHS=1 TOY_IRN_RADIUS=3 TOY_SEG_ITERS=2 TOY_SEG_WIDTH=2 \
        TOY_SEG_BATCH=4 "$@"
}

expect_ok run toy-report
check "make toy-report writes the page" test -s "$T/run/report.html"
expect_ok sfc-report -q -o "$T/r.html" "$T/run"
same_bytes "$T/r.html" "$T/run/report.html"
check "page written" test -s "$T/r.html"
for s in record training bank evaluation comparison examples; do
    check "section $s" grep -q "<section id=\"$s\">" "$T/r.html"
done
check "figures inlined" test "$(grep -o 'src="data:image/svg+xml;base64,' \
    "$T/r.html" | wc -l)" -ge 8
check "tiles inlined" test "$(grep -o -e 'src="data:image/png;base64,' \
    -e 'src="data:image/jpeg;base64,' "$T/r.html" | wc -l)" -ge 16
check "nothing fetched from elsewhere" test "$(grep -c -e 'src="http' \
    -e 'href="http' -e '<link' "$T/r.html")" = 0
check "both methods side by side" grep -q "<h1>sfc report: sfc vs baseline</h1>" "$T/r.html"
# the same page from the two method folders named one by one
expect_ok sfc-report -q -o "$T/r2.html" "$T/run/sfc" "$T/run/baseline"
same_bytes "$T/r.html" "$T/r2.html"

# numbers against the db (SQL) and the PNGs (numpy); the checker must
# catch a changed value
py=${SFC_ORACLE:-}
if [ -n "$py" ] && "$py" -c 'import numpy, PIL' 2>/dev/null; then
    expect_ok "$py" tests/cli/report-check.py "$T/r.html" "$T/run/sfc.db" \
        "$T/run/sfc" "$T/run/baseline"
    sed '0,/data-iou="[0-9.e-]*"/s//data-iou="0.123"/' "$T/r.html" >"$T/bad.html"
    check "checker sees a changed IoU" sh -c \
        "! '$py' tests/cli/report-check.py '$T/bad.html' '$T/run/sfc.db' \
        '$T/run/sfc' '$T/run/baseline' >/dev/null"
else
    echo "note: no python3 with numpy; numbers not rechecked" >&2
fi

# a training stopped and resumed: the curves mark the resume point (and
# the L_PDW warm-up); --db names a db outside the folder
cp "$T/run/sfc.db" "$T/res.db"
net="--blocks 1,1,1,1 --width 4 --side 4,4,8,8 --frozen 0 --lr 0.1 \
    --pdw-warmup 2 --seed 0 -q"
expect_ok sfc-trainstep --db "$T/res.db" --out "$T/resumed" $net --steps 3
expect_ok sfc-trainstep --db "$T/res.db" --out "$T/resumed" $net
expect_ok sfc-report -q --db "$T/res.db" -o "$T/res.html" "$T/resumed"
second=$(sqlite3 "$T/res.db" "SELECT max(id) FROM runs WHERE tool = 'sfc-trainstep'")
grep -o 'src="data:image/svg+xml;base64,[^"]*"' "$T/res.html" |
    sed 's/^src="data:image\/svg+xml;base64,//; s/"$//' |
    while read -r d; do echo "$d" | base64 -d; done >"$T/res.svg"
check "resume point marked" grep -q "resume (run $second)" "$T/res.svg"
check "warm-up marked" grep -q "L_PDW on" "$T/res.svg"
check "resumed: no evaluation" test "$(grep -c '<section id="evaluation">' \
    "$T/res.html")" = 0

# missing stages: a run that only sampled has a record and a bank, no
# training, evaluation or examples
mkdir -p "$T/early"
expect_ok sh -c "cp '$T/run/sfc.db' '$T/early/sfc.db' && sqlite3 \
    '$T/early/sfc.db' \"PRAGMA foreign_keys = ON; DELETE FROM runs WHERE tool NOT IN ('sfc-ingest', \
    'sfc-sample')\""
expect_ok sfc-report -q -o "$T/early.html" "$T/early"
check "early: record" grep -q '<section id="record">' "$T/early.html"
check "early: bank" grep -q '<section id="bank">' "$T/early.html"
check "early: no training, evaluation, examples" test "$(grep -c \
    -e '<section id="training">' -e '<section id="evaluation">' \
    -e '<section id="examples">' "$T/early.html")" = 0

# errors: one line, exit 1, the output left as it was
echo old >"$T/keep.html"
mkdir -p "$T/corrupt" "$T/foreign" "$T/nodb"
head -c 20000 "$T/run/sfc.db" >"$T/corrupt/sfc.db"
sqlite3 "$T/foreign/sfc.db" "CREATE TABLE t (x); INSERT INTO t VALUES (1);"
expect_fail 1 sfc-report -q -o "$T/keep.html" "$T/corrupt"
expect_fail 1 sfc-report -q -o "$T/keep.html" "$T/foreign"
stderr_has "not an sfc database"
expect_fail 1 sfc-report -q -o "$T/keep.html" "$T/nodb"
stderr_has "no sfc.db"
expect_fail 1 sfc-report -q -o "$T/keep.html" "$T/missing"
expect_fail 1 sfc-report -q -o "$T/keep.html" --gnuplot "$T/no-gnuplot" "$T/run"
check "output untouched" test "$(cat "$T/keep.html")" = old
check "no temporary left" test "$(ls -a "$T" | grep -c '\.tmp\.')" = 0
expect_fail 2 sfc-report "$T/run"
expect_fail 2 sfc-report -o "$T/x.html"

# the page in a browser: every image decoded, no console message, and a
# screenshot for people (in the test binaries' folder)
if ! command -v chromium >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        fail "chromium is not installed (CI must run the browser check)"
    else
        echo "skip: chromium not installed, browser check not run" >&2
    fi
    finish
    exit $?
fi
sed 's|</body>|<script>window.addEventListener("load", function () {\
var n = 0, bad = 0; for (const im of document.images) { n++;\
if (!im.complete \|\| im.naturalWidth < 1) bad++; }\
document.body.setAttribute("data-images", n);\
document.body.setAttribute("data-broken", bad); });</script></body>|' \
    "$T/r.html" >"$T/probe.html"
chrome() {
    rm -rf "$T/profile"
    mkdir "$T/profile"
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync \
        --user-data-dir="$T/profile" --enable-logging=stderr --v=0 \
        --virtual-time-budget=10000 "$@"
}
expect_ok chrome --dump-dom "file://$T/probe.html"
cp "$T/.out" "$T/dom.html"
grep CONSOLE "$T/.err" >&2
check "no console message" test "$(grep -c CONSOLE "$T/.err")" = 0
nimg=$(grep -o 'data-images="[0-9]*"' "$T/dom.html" | tr -dc 0-9)
check "the browser saw the images" test "${nimg:-0}" -ge 24
check "every image decoded" grep -q 'data-broken="0"' "$T/dom.html"
for s in record training bank evaluation comparison examples; do
    check "rendered section $s" grep -q "<section id=\"$s\">" "$T/dom.html"
done
shot=${SFC_TESTBIN:-$T}/t1200-report.png
expect_ok chrome --hide-scrollbars --window-size=1400,4000 \
    --screenshot="$shot" "file://$T/r.html"
check "screenshot written" test -s "$shot"
echo "screenshot: $shot" >&2
finish
