#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turn bench/crf.sh's rows into the crf section of BENCHMARKS.md
(replacing the section between its markers, keeping everything else)."""
import datetime
import os
import statistics
import sys

import numpy as np

import report as bench_report  # bench/report.py: the section writer

BEGIN, END = "<!-- bench-crf begin -->", "<!-- bench-crf end -->"
# pydensecrf on this machine, from issue 5 (not measured by this script)
ANCHOR = {10: 0.71, 12: 0.75}


def main():
    rows, d, load0, load1, runs = sys.argv[1:6]
    lib, py, tool = {}, {}, {}
    for line in open(rows):
        f = line.split()
        if f[0] in ("sfc1", "sfc2"):
            t = int(f[1])
            lib[(f[0], t)] = dict(sec=float(f[2]), lo=float(f[3]),
                                  hi=float(f[4]), mb=float(f[5]),
                                  m=(int(f[7]), int(f[8])), cpu=float(f[9]))
        elif f[0] == "py" and f[1] != "unavailable":
            py[int(f[1])] = dict(sec=float(f[2]), lo=float(f[3]),
                                 hi=float(f[4]), mb=float(f[5]),
                                 agree=float(f[6]), cpu=float(f[7]))
        elif f[0].startswith("tool-"):
            tool.setdefault(f[0][5:], []).append((float(f[1]),
                                                   float(f[2]) / 1024))
    # the tool's labels against the library's (the same CRF)
    same = None
    try:
        from PIL import Image
        same = bool((np.array(Image.open(os.path.join(d, "tool.png"))) ==
                     np.load(os.path.join(d, "sfc_t10.npy"))).all())
    except (ImportError, OSError):
        pass

    date = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
    out = [BEGIN, "## Dense CRF (lib/crf, sfc-crf) vs pydensecrf", "",
           "Command: `flock .bench.lock chrt -f 10 nice -n 0 make "
           "bench-crf` (bench/crf.sh; PYDENSECRF=DIR puts a pydensecrf "
           "build on PYTHONPATH; SCHED_FIFO, so the run preempts the other "
           "sessions' work on the 2 cores). %s UTC; machine load "
           "(1/5/15 min) %s before, %s after." % (date, load0, load1), "",
           "Case: one generated 500x375 image with 21 labels "
           "(bench/bench-crf.c: Voronoi cells with colour gradients, texture "
           "and noise; noisy labels), SFC's CRF (gt_prob 0.7, Gaussian sxy 3 "
           "compat 3, bilateral sxy 50 srgb 5 compat 10). Time of the whole "
           "crf_inference_label (lattices, unaries, t iterations, argmax), "
           "median of %s runs after a warm-up (min-max in brackets); "
           "pydensecrf is single-threaded; OMP_WAIT_POLICY=PASSIVE. CPU "
           "seconds: median process CPU time of a run, all threads (on a "
           "loaded machine the wall time is set by the process's share of "
           "the cores). Peak RSS of the process (pydensecrf's includes the "
           "Python interpreter and numpy)." % runs, "",
           "| t | engine | seconds | speed vs pydensecrf | CPU seconds | "
           "CPU vs pydensecrf | peak RSS MB |",
           "|---:|---|---:|---:|---:|---:|---:|"]
    for t in (10, 12):
        p = py.get(t)
        if p:
            out.append("| %d | pydensecrf | %.3f (%.3f-%.3f) | - | %.3f | - | "
                       "%.0f |" % (t, p["sec"], p["lo"], p["hi"], p["cpu"],
                                   p["mb"]))
        else:
            out.append("| %d | pydensecrf: not measured here (issue 5's "
                       "anchor) | %.2f | - | - | - | - |" % (t, ANCHOR[t]))
        ref = p["sec"] if p else ANCHOR[t]
        for e, name in (("sfc2", "lib/crf, 2 threads"),
                        ("sfc1", "lib/crf, 1 thread")):
            r = lib.get((e, t))
            if not r:
                continue
            out.append("| %d | %s | %.3f (%.3f-%.3f) | %.2fx%s | %.3f | %s | "
                       "%.0f |" % (t, name, r["sec"], r["lo"], r["hi"],
                                   ref / r["sec"],
                                   "" if p else " (vs anchor)", r["cpu"],
                                   "%.2fx" % (p["cpu"] / r["cpu"]) if p
                                   else "-", r["mb"]))
    m = lib.get(("sfc2", 10), {}).get("m")
    out.append("")
    g = lib.get(("sfc2", 10))
    if g:
        p = py.get(10)
        ratio = (p["sec"] if p else ANCHOR[10]) / g["sec"]
        ok = g["sec"] <= 0.23 and ratio >= 3
        out.append("Goal of issue 5 (t=10, 2 threads: <= 0.23 s and >= 3x "
                   "pydensecrf, <= 200 MB): %.3f s, %.2fx%s, %.0f MB: %s in "
                   "this run%s." % (
                       g["sec"], ratio, "" if p else " (vs anchor)", g["mb"],
                       "met" if ok else "NOT met",
                       "" if ok or not p else
                       "; CPU time ratio %.2fx" % (p["cpu"] / g["cpu"])))
    out.append("pydensecrf: built outside this repository from its source "
               "(Debian cython3, /usr/bin/python3, distutils' -O2), as "
               "`DenseCRF2D` with `unary_from_labels(zero_unsure=False)`.")
    if m:
        out.append("Lattice vertices: Gaussian %d, bilateral %d." % m)
    if py:
        out.append("Labels equal to pydensecrf's: %s." % ", ".join(
            "t=%d %.3f %%" % (t, py[t]["agree"]) for t in sorted(py)))
    else:
        out.append("pydensecrf was not importable: no side-by-side "
                   "timing or label agreement in this run.")
    out += ["", "The whole tool (`sfc-crf --images --cams --out`, 2 threads; "
            "PNG and npz read, PNG written), median of 3 runs:", "",
            "| rule | seconds | peak RSS MB |", "|---|---:|---:|"]
    for rule, label in (("cam-crf", "cam-crf (one CRF, t=10: the case "
                         "above)"), ("sfc", "sfc (default: two CRFs, "
                                     "t=12)")):
        if rule in tool:
            s = statistics.median(x[0] for x in tool[rule])
            mb = max(x[1] for x in tool[rule])
            out.append("| %s | %.3f | %.0f |" % (label, s, mb))
    if same is not None:
        out.append("")
        out.append("The tool's cam-crf labels %s the library's." %
                   ("equal" if same else "DIFFER FROM"))
    out.append(END)
    print("\n".join(bench_report.write_section(BEGIN, END, out)))


if __name__ == "__main__":
    main()
