#!/bin/sh
# bench-coco: sfc-coco on a COCO-2014-train-sized instances file (made by
# bench/coco_gen.py: 82,783 images, 604,907 annotations, ~450 MB), beside
# the anchor Python's json.load of the same file (the in-memory tree that
# pycocotools' COCO() starts from). Measures wall time, CPU time and peak
# RSS (GNU time) of each, the machine load before and after, and writes
# the bench-coco section of BENCHMARKS.md (bench/coco_report.py).
#   sh bench/coco.sh BINDIR     (work folder: $SFC_BENCH_DIR, default
#                                ${TMPDIR:-/tmp}/sfc-bench-coco; ~1 GB)
set -e
BIN=$1
D=${SFC_BENCH_DIR:-${TMPDIR:-/tmp}/sfc-bench-coco}
mkdir -p "$D"
if [ ! -s "$D/instances_train2014.json" ]; then
    echo "bench-coco: generating $D/instances_train2014.json" >&2
    nice /usr/bin/python3 bench/coco_gen.py "$D/gen.json" "$D/train2014"
    mv "$D/gen.json" "$D/instances_train2014.json"
fi
rm -rf "$D/out" "$D/sfc.db" "$D/sfc.db-wal" "$D/sfc.db-shm"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/time -v "$BIN/sfc-coco" -q --db "$D/sfc.db" --images "$D/train2014" \
    --out "$D/out" "$D/instances_train2014.json" >/dev/null 2>"$D/sfc.time"
/usr/bin/time -v /usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))' \
    "$D/instances_train2014.json" 2>"$D/json.time"
load1=$(cut -d' ' -f1-3 /proc/loadavg)
masks=$(du -sm "$D/out/SegmentationClass" | cut -f1)
/usr/bin/python3 bench/coco_report.py "$D" "$load0" "$load1" "$masks" \
    "$(sqlite3 "$D/sfc.db" "SELECT count(*) FROM image_splits")" \
    "$(wc -l <"$D/out/train2014_unannotated.txt")"
