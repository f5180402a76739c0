# tests/cli/report-check.py: the numbers of an sfc-report page recomputed
# from the db with SQL and from the label PNGs with numpy (run by
# t1200-sfc-report.sh with Debian's python3).
#
#   report-check.py PAGE DB RUN_DIR...   (run names = folder names)
#
# Checks, for every run: the summary rows (mIoU, fg mIoU, head, middle,
# tail) and every per-class IoU equal the db's metrics rows of the latest
# sfc-miou run per (stage, map, split); over-activation = FP / (TP + FN)
# and under-activation = FN / (TP + FN) from the stored pixel counts; the
# comparison table is run minus first run, rows in N_c order (descending,
# ties by id, background first), and its mIoU / head / tail summary
# equals each run's rows; each example's per-image mIoU equals a
# numpy confusion-matrix mIoU of its label PNG against the ground truth,
# every "best"/"worst" pick is the best/worst image not shown before it,
# head/tail picks hold a class of that group. Prints each mismatch; exit
# status 1 if any.
import math
import os
import sqlite3
import sys
from html.parser import HTMLParser

import numpy as np
from PIL import Image

page, dbpath, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
names = [os.path.basename(os.path.normpath(d)) for d in dirs]
errors = []


def close(a, b, tol=1e-7):
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        na = a is None or math.isnan(a)
        nb = b is None or math.isnan(b)
        return na and nb
    return abs(a - b) <= tol


def num(s):
    return float(s) if s is not None else float("nan")


class Page(HTMLParser):
    """Collects the cells of the tables the checks read."""

    def __init__(self):
        super().__init__()
        self.table = None  # (class, attrs) of the table being read
        self.row = None
        self.cells = []  # (table class, table run, row attrs, cell attrs)
        self.examples = []  # row attrs of tr.ex, with the rn cell's data-v
        self.sections = []
        self.ex_row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "table":
            self.table = a
        elif tag == "tr":
            self.row = a
            self.ex_row = None
            if a.get("class") == "ex" and self.table is not None and \
                    self.table.get("class") == "examples":
                self.ex_row = dict(a)
                self.examples.append(self.ex_row)
        elif tag == "td" and self.table is not None and self.row is not None:
            self.cells.append((self.table, self.row, a))
            if a.get("class") == "rn" and self.examples and \
                    self.examples[-1] is self.ex_row:
                self.examples[-1]["v"] = num(a.get("data-v"))

    def handle_endtag(self, tag):
        if tag == "table":
            self.table = None


p = Page()
p.feed(open(page, encoding="utf-8").read())

db = sqlite3.connect(dbpath)
ncls = db.execute("SELECT count(*) FROM classes").fetchone()[0]
sample = db.execute("SELECT max(id) FROM runs WHERE tool = 'sfc-sample' "
                    "AND status = 'ok'").fetchone()[0]
stats = db.execute("SELECT class, n_images, grp FROM class_stats WHERE "
                   "run = ?", (sample,)).fetchall()
n_c = {c: n for c, n, g in stats}
grp = {c: g for c, n, g in stats}
order = [0] + sorted(n_c, key=lambda c: (-n_c[c], c))


def stage_rows(run):
    """{(key, split): {class or name: {name: value}}} of the latest
    sfc-miou run per (stage, map, split) whose folder is run's."""
    out = {}
    suffix = "-" + run
    for rid, stage, mp, split in db.execute(
            "SELECT DISTINCT run, stage, map, split FROM metrics "
            "WHERE step = -1 AND instr(map, '@') = 0 ORDER BY run"):
        if not stage.endswith(suffix):
            continue
        base = stage[:-len(suffix)]
        key = base + (" " + mp if mp else "")
        rows = {}
        for cls, name, value in db.execute(
                "SELECT class, name, value FROM metrics WHERE run = ? AND "
                "stage = ? AND map = ? AND split = ? AND step = -1",
                (rid, stage, mp, split)):
            v = float("nan") if value is None else value
            rows.setdefault(cls, {})[name] = v
        out[(key, split)] = rows
    return out


stages = {name: stage_rows(name) for name in names}


def by_key(name, key):
    for (k, split), rows in stages[name].items():
        if k == key:
            return rows
    return None


for sec in ["record", "training", "bank", "evaluation", "examples"] + \
        (["comparison"] if len(names) > 1 else []):
    if sec not in p.sections:
        errors.append("section %s missing" % sec)

nchecked = 0
iou_rows = {}
for table, row, cell in p.cells:
    cls = table.get("class")
    run = table.get("data-run")
    if cls == "summary" and "data-v" in cell:
        pass  # checked below by column order
    if cls == "iou" and "data-stage" in cell:
        rows = by_key(run, cell["data-stage"])
        c = int(row["data-class"])
        if rows is None:
            errors.append("iou: no db rows for %s %s" % (run, cell["data-stage"]))
            continue
        r = rows.get(c, {})
        tp, fp, fn = r.get("tp"), r.get("fp"), r.get("fn")
        gt = (tp or 0) + (fn or 0)
        want = [r.get("iou"), fp / gt if gt else None, fn / gt if gt else None]
        got = [num(cell.get("data-iou")), num(cell.get("data-over")),
               num(cell.get("data-under"))]
        for what, w, g in zip(["iou", "over", "under"], want, got):
            nchecked += 1
            if not close(w, g):
                errors.append("%s %s class %d %s: page %r, db %r"
                              % (run, cell["data-stage"], c, what, g, w))
        iou_rows.setdefault(run, []).append(c)
    if cls == "diff" and "data-stage" in cell:
        base = table.get("data-base")
        c = int(row["data-class"])
        ra, rb = by_key(base, cell["data-stage"]), by_key(run, cell["data-stage"])
        want = rb.get(c, {}).get("iou", float("nan")) - \
            ra.get(c, {}).get("iou", float("nan"))
        nchecked += 1
        if not close(want, num(cell.get("data-v"))):
            errors.append("diff %s-%s %s class %d: page %s, db %r"
                          % (run, base, cell["data-stage"], c,
                             cell.get("data-v"), want))

# row order: classes by N_c (background first)
for table_cls in ["diff"]:
    seen = []
    for table, row, cell in p.cells:
        if table.get("class") == table_cls and row.get("data-class") is not None:
            c = int(row["data-class"])
            if not seen or seen[-1] != c:
                seen.append(c)
    if len(names) > 1 and seen[:len(order)] != order:
        errors.append("diff rows %r, want N_c order %r" % (seen, order))

# summary rows: columns mIoU, fg mIoU, head, middle, tail
sums = ["miou", "fg_miou", "head", "middle", "tail"]
col = {}
for table, row, cell in p.cells:
    if table.get("class") != "summary" or "data-v" not in cell:
        continue
    k = (table.get("data-run"), row.get("data-stage"))
    i = col.get(k, 0)
    col[k] = i + 1
    rows = by_key(k[0], k[1])
    want = rows.get(None, {}).get(sums[i], float("nan"))
    nchecked += 1
    if not close(want, num(cell["data-v"])):
        errors.append("summary %s %s %s: page %s, db %r"
                      % (k[0], k[1], sums[i], cell["data-v"], want))

# the comparison's summary: per stage of the first run, mIoU, head and
# tail of each run
pos = {}
for table, row, cell in p.cells:
    if table.get("class") != "cmpsum" or "data-v" not in cell:
        continue
    key = row.get("data-stage")
    i = pos.get(key, 0)
    pos[key] = i + 1
    run, what = names[i // 3], ["miou", "head", "tail"][i % 3]
    rows = by_key(run, key)
    want = rows.get(None, {}).get(what, float("nan")) if rows else float("nan")
    nchecked += 1
    if not close(want, num(cell["data-v"])):
        errors.append("comparison summary %s %s %s: page %s, db %r"
                      % (run, key, what, cell["data-v"], want))

# examples: per-image mIoU of the last label stage, by numpy
val = [r[0] for r in db.execute(
    "SELECT image FROM image_splits WHERE split = 'val' ORDER BY pos")]
masks = dict(db.execute("SELECT id, mask FROM images"))
labels = {}
for im, c in db.execute("SELECT image, class FROM image_labels"):
    labels.setdefault(im, set()).add(c)


def image_miou(pred_png, gt_png, K):
    pred = np.array(Image.open(pred_png)).astype(np.int64)
    gt = np.array(Image.open(gt_png)).astype(np.int64)
    pred[pred == 255] = 0
    keep = gt != 255
    cm = np.bincount(gt[keep] * K + pred[keep], minlength=K * K).reshape(K, K)
    inter = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")


# the stage the page scores with: the last PNG stage, the segmentation
# network's predictions (seg) when the toy run has them, else pseudo
last = "seg" if all(os.path.isdir(os.path.join(d, "seg")) for d in dirs) \
    else "pseudo"
scores = {name: {i: image_miou(os.path.join(d, last, i + ".png"),
                               masks[i], ncls) for i in val}
          for d, name in zip(dirs, names)}
for d, name in zip(dirs, names):
    score = scores[name]
    shown = []
    for ex in p.examples:
        if ex["data-run"] != names[0]:
            continue
        shown.append(ex["data-id"])
    for ex in p.examples:
        if ex["data-run"] != name:
            continue
        i = ex["data-id"]
        nchecked += 1
        if not close(score[i], ex["v"], 1e-6):
            errors.append("example %s %s: page mIoU %r, numpy %r"
                          % (name, i, ex["v"], score[i]))
    if name != names[0]:
        continue
    for k, i in enumerate(shown):
        why = [e["data-why"] for e in p.examples
               if e["data-id"] == i and e["data-run"] == name][0]
        rest = [j for j in val if j not in shown[:k]]
        if why in ("best", "worst"):
            vals = [score[j] for j in rest if not math.isnan(score[j])]
            want = max(vals) if why == "best" else min(vals)
            nchecked += 1
            if not close(score[i], want, 1e-12):
                errors.append("%s pick %s scores %r, the %s left is %r"
                              % (why, i, score[i], why, want))
        if why in ("largest gain", "largest loss"):
            gain = {j: scores[names[1]][j] - score[j] for j in rest}
            vals = [v for v in gain.values() if not math.isnan(v)]
            want = max(vals) if why == "largest gain" else min(vals)
            nchecked += 1
            if not close(gain[i], want, 1e-12):
                errors.append("%s pick %s gains %r, the %s left is %r"
                              % (why, i, gain[i], why, want))
        if why in ("head class", "tail class"):
            g = why.split()[0]
            nchecked += 1
            if not any(grp.get(c) == g for c in labels.get(i, ())):
                errors.append("%s pick %s has no %s class" % (why, i, g))

for e in errors:
    print("report-check:", e)
print("report-check: %d values checked, %d mismatches" % (nchecked, len(errors)))
sys.exit(1 if errors or nchecked == 0 else 0)
