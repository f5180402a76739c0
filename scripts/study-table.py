#!/usr/bin/env python3
"""study-table.py DIR [NAME...]: the SFC study's table (RESULTS.md) from
DIR/<name>/<seed>/miou.csv (scripts/study.sh): per method and map, the
mean and the sample standard deviation over seeds of mIoU and of the
head / middle / tail means, in percent, as a Markdown table.
Optional CLASS_COLS=1 adds each class's mean IoU."""
import csv
import glob
import os
import statistics
import sys

MAPS = [("CAM", "CAM"), ("M_W", "M_W"), ("M_P", "M_P"),
        ("M_W+M_P", "M_W+M_P")]
COLS = ["mIoU", "head", "middle", "tail"]


def load(path):
    out = {}
    for row in csv.reader(open(path)):
        if len(row) < 7 or row[0] == "map":
            continue
        m, kind = row[0], row[3]
        if kind == "mean":
            out.setdefault(m, {})[row[5]] = float(row[6])
        elif kind == "class":
            out.setdefault(m, {})["c:" + row[5]] = float(row[6])
    return out


def fmt(v):
    if not v:
        return "-"
    m = 100 * statistics.mean(v)
    if len(v) == 1:
        return "%.1f" % m
    return "%.1f ± %.1f" % (m, 100 * statistics.stdev(v))


def main():
    d = sys.argv[1]
    names = sys.argv[2:] or sorted(os.listdir(d))
    cls_cols = os.environ.get("CLASS_COLS") == "1"
    header = None
    for name in names:
        runs = sorted(glob.glob(os.path.join(d, name, "*", "miou.csv")))
        if not runs:
            continue
        res = [load(r) for r in runs]
        seeds = [r.split(os.sep)[-2] for r in runs]
        times = []
        for r in runs:
            t = open(os.path.join(os.path.dirname(r), "time.txt")).read()
            times.append(int(t.split()[1]))
        classes = sorted((k for k in res[0].get("CAM", {}) if
                          k.startswith("c:") and k != "c:background"))
        if header is None:
            cols = COLS + ([c[2:] for c in classes] if cls_cols else [])
            print("| run | seeds | map | " + " | ".join(cols) +
                  " | train s |")
            print("|" + "---|" * (len(cols) + 4))
            header = True
        base = "--baseline" in open(os.path.join(d, name, "cmd.txt")).read() \
            if os.path.exists(os.path.join(d, name, "cmd.txt")) else False
        for label, key in MAPS:
            if base and key != "CAM":
                continue
            vals = [[r[key][c] for r in res if key in r and c in r[key]]
                    for c in COLS + (classes if cls_cols else [])]
            if not vals[0]:
                continue
            print("| %s | %s | %s | %s | %d |" % (
                name, ",".join(seeds), label,
                " | ".join(fmt(v) for v in vals),
                statistics.mean(times)))


main()
