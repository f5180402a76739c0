#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pydensecrf on bench-crf's case (make bench-crf; bench/crf.sh runs it).

    crf_pydensecrf.py DIR T RUNS

Runs the same CRF as lib/crf's sfc_crf_label (crf_inference_label of
SFC/IRN: unary from the hard labels with gt_prob 0.7, Gaussian sxy 3
compat 3, bilateral sxy 50 srgb 5 compat 10, T iterations, argmax) on
DIR/rgb.npy and DIR/lab.npy, RUNS times after one warm-up, and prints one
line: T, median seconds, min, max, peak RSS in MB (the whole interpreter,
numpy included), and the percentage of pixels whose label equals lib/crf's
(DIR/sfc_t<T>.npy, written by `bench-crf run`; -1 when absent), and the
median CPU seconds of a run. Writes
DIR/py_t<T>.npy. Prints "unavailable" and exits 0 when pydensecrf cannot
be imported (it is not a dependency of the project: put a build of it on
PYTHONPATH to compare)."""
import os
import resource
import sys
import time

import numpy as np

try:
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_labels
except ImportError:
    print("unavailable")
    sys.exit(0)


def crf_label(img, lab, K, t):
    H, W = lab.shape
    d = dcrf.DenseCRF2D(W, H, K)
    d.setUnaryEnergy(unary_from_labels(lab, K, gt_prob=0.7,
                                       zero_unsure=False))
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=50, srgb=5, rgbim=np.ascontiguousarray(img),
                           compat=10)
    q = d.inference(t)
    return np.argmax(np.array(q).reshape(K, H, W), axis=0).astype(np.uint8)


def main():
    d, t, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    img = np.load(os.path.join(d, "rgb.npy"))
    lab = np.load(os.path.join(d, "lab.npy"))
    K = 21
    times, cpu = [], []
    for k in range(runs + 1):  # k = 0: warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        out = crf_label(img, lab, K, t)
        if k:
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    np.save(os.path.join(d, "py_t%d.npy" % t), out)
    mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    ours = os.path.join(d, "sfc_t%d.npy" % t)
    agree = 100.0 * np.mean(np.load(ours) == out) if os.path.exists(ours) \
        else -1
    print("%d %.4f %.4f %.4f %.1f %.3f %.4f" % (
        t, float(np.median(times)), min(times), max(times), mb, agree,
        float(np.median(cpu))))


if __name__ == "__main__":
    main()
