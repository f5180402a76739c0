#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turn bench/run.sh's rows into the resnet section of BENCHMARKS.md
(replacing the section between its markers, keeping everything else, and
keeping the hand-written notes from its notes marker to its end).

write_section() is every bench script's BENCHMARKS.md section writer."""
import datetime
import os
import statistics
import sys

BEGIN, END = "<!-- bench-resnet begin -->", "<!-- bench-resnet end -->"
NOTES = "<!-- bench-resnet notes -->"


def write_section(begin, end, lines, path="BENCHMARKS.md", notes=None):
    """Replace the section between the markers begin..end of path by lines
    (which start with begin and end with end), or append it; written to a
    temporary name, then renamed. With notes (the section's notes marker,
    `<!-- bench-<area> notes -->`), the hand-written block from that
    marker to the end marker in the old section is kept, placed just
    before end (the marker alone where the old section has none). Returns
    the lines written."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    old = None
    if begin in text:
        a, b = text.index(begin), text.index(end) + len(end)
        old = text[a:b]
    if notes:
        block = notes
        if old is not None and notes in old:
            block = old[old.index(notes):old.index(end)].rstrip("\n")
        lines = lines[:-1] + [block, lines[-1]]
    if old is not None:
        text = text[:a] + "\n".join(lines) + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    return lines


def main():
    rows, load0, load1, coretype = sys.argv[1], sys.argv[2], sys.argv[3], \
        sys.argv[4]
    runs = {}
    for line in open(rows):
        eng, mode, sec, gf, mb = line.split()
        runs.setdefault((eng, mode), []).append(
            (float(sec), float(gf), float(mb)))
    # median over the rounds (each row is already a median of runs)
    r = {k: (statistics.median(x[0] for x in v),
             statistics.median(x[1] for x in v), max(x[2] for x in v),
             len(v)) for k, v in runs.items()}
    engines = sorted({e for e, m in r if not e.startswith("sgemm")},
                     key=lambda e: (e != "torch", e))
    ceil = {e[6:]: r[(e, "sgemm")][1] for e, m in r if m == "sgemm"}
    ceil_all = {e[6:]: [x[1] for x in v] for (e, m), v in runs.items()
                if m == "sgemm"}
    label = {"fwd": "forward 1x3x512x512",
             "fwdbwd": "forward+backward 1x3x512x512",
             "train": "training shape 20x3x512x512, conv1..layer2 frozen, "
                      "per image"}
    out = [BEGIN, "## ResNet-50 engine vs PyTorch (strides 2,2,2,1)", "",
           "Command: `flock BENCH_LOCK chrt -f 10 make "
           "bench-resnet` (bench/run.sh: real-time priority, 2 threads each "
           "(OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=2, "
           "torch.set_num_threads(2)); the engines interleaved round by "
           "round, each row the median over rounds of a median of runs; "
           "`sfc-native` runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE "
           "unset in its own command, `sfc-%s` with the environment's value, "
           "`sfc-native-im2col` native with every 3x3 through im2col). %s "
           "UTC; machine load (1/5/15 min) %s before, %s after (other "
           "sessions share the 2 cores)."
           % (coretype, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
              load0, load1), "",
           "| case | engine | rounds | seconds | GFLOP/s | % of sgemm "
           "ceiling | speed vs PyTorch | peak RSS MB |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for mode in ("fwd", "fwdbwd", "train"):
        t = r.get(("torch", mode))
        for e in engines:
            if (e, mode) not in r:
                continue
            sec, gf, mb, n = r[(e, mode)]
            key = "native" if "native" in e else coretype
            c = ceil.get(key) if e != "torch" else None
            out.append("| %s | %s | %d | %.3f | %.0f | %s | %s | %.0f |" % (
                label[mode], e, n, sec, gf,
                "%.0f %%" % (100 * gf / c) if c else "-",
                "%.2fx" % (t[0] / sec) if t and e != "torch" else "-", mb))
    out += ["", "sgemm ceiling (2048^3, 2 threads; median of the "
            "measurements before and after the engines): " + ", ".join(
                "%s %.0f GFLOP/s (%s)" % (k, v, ", ".join(
                    "%.0f" % x for x in ceil_all[k]))
                for k, v in sorted(ceil.items())),
            "", "GFLOP/s are nominal: 2 x conv multiply-adds of the direct "
            "convolution; backward counts 2x the forward of the trained "
            "stages; the same count for both engines (Winograd does fewer "
            "multiplies than it is credited with, so its % of the ceiling "
            "is nominal too). Training: this engine runs micro-batches of 4 "
            "(SFC_BENCH_MICRO) with gradient accumulation, PyTorch one batch "
            "of 20.", END]
    # hand-written analysis between NOTES and END survives a rerun
    print("\n".join(write_section(BEGIN, END, out, notes=NOTES)))


if __name__ == "__main__":
    main()
