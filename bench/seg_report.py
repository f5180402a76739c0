#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Turn bench/seg.sh's rows into the bench-seg section of BENCHMARKS.md
(replacing the section between its markers, keeping everything else and
the hand-written notes from its notes marker to its end)."""
import datetime
import sys

import report as bench_report  # bench/report.py: the section writer

BEGIN, END = "<!-- bench-seg begin -->", "<!-- bench-seg end -->"
NOTES = "<!-- bench-seg notes -->"


def main():
    rows, load0, load1, micro, runs, truns, policy = sys.argv[1:8]
    r = {}
    for line in open(rows):
        eng, mode, sec, gf, mb = line.split()
        r[(eng, mode)] = (float(sec), float(gf), float(mb))
    out = [BEGIN, "## DeepLab-v2 ResNet-101 vs PyTorch (make bench-seg)", "",
           "Command: `flock BENCH_LOCK chrt -f 10 make bench-seg` "
           "(bench/seg.sh: 2 threads each, OMP_WAIT_POLICY=PASSIVE, "
           "OPENBLAS_CORETYPE as the environment has it, random weights and "
           "inputs; scheduling policy of the run: %s). %s UTC; machine load "
           "(1/5/15 min) %s before, %s after (other sessions share the 2 "
           "cores; the two engines ran one after the other in the same "
           "minutes). Medians of %s timed images per prediction case (after "
           "an untimed planning/warm-up image) and of %s training step(s) "
           "(the first of them includes the planning)." %
           (policy, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
            load0, load1, runs, truns), "",
           "| case | engine | seconds | images/s | sfc GFLOP/s | "
           "speed vs PyTorch | peak RSS MB | RSS vs PyTorch |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    label = {"train": "training step, batch 10x3x321x321, scales 1/0.75/0.5,"
                      " micro-batches of %s" % micro,
             "predict": "predict 500x375, scales 1/0.75/0.5",
             "predictflip": "predict 500x375, scales 1/0.75/0.5 + flip"}
    for mode in ("train", "predict", "predictflip"):
        t = r.get(("torch", mode))
        for e in ("torch", "sfc"):
            if (e, mode) not in r:
                continue
            sec, gf, mb = r[(e, mode)]
            ips = (10 if mode == "train" else 1) / sec
            out.append("| %s | %s | %.2f | %.3f | %s | %s | %.0f | %s |" % (
                label[mode], e, sec, ips, "%.0f" % gf if e == "sfc" else "-",
                "%.2fx" % (t[0] / sec) if t and e == "sfc" else "-", mb,
                "%.2fx" % (mb / t[2]) if t and e == "sfc" else "-"))
    out += ["", "Training: every convolution trained (BN frozen: eval-mode "
            "statistics, gamma/beta fixed), SGD with DeepLab's 1x/10x/20x "
            "groups, the loss of each scale and of the max fusion; the step "
            "time includes this engine's one-time planning. GFLOP/s are "
            "nominal: 2 x multiply-adds of the forward (x3 for training). "
            "Speed vs PyTorch > 1: sfc is faster; RSS vs PyTorch < 1: sfc "
            "uses less memory (peak RSS of the whole process, one mode per "
            "process).", "", END]
    # hand-written notes, kept from run to run
    print("\n".join(bench_report.write_section(BEGIN, END, out, notes=NOTES)))


if __name__ == "__main__":
    main()
