#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/resample.c: Pillow's own Image.resize (BICUBIC, NEAREST)
on random uint8 images, and numpy's np.round for the rescale sizes (the
reference's imutils.pil_rescale). Writes one .npz per case.

Usage: ref_resample.py --out DIR [--seed S] | --golden
"""
import os

import numpy as np
from PIL import Image

from refcommon import main_cases


def make_cases(out, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    # shapes: up, down, mixed, odd, one axis only, grayscale
    cases = [((37, 29, 3), (74, 58)), ((40, 33, 3), (20, 16)),
             ((31, 45, 3), (47, 22)), ((25, 25, 1), (25, 13)),
             ((19, 23, 3), (57, 23)), ((50, 37, 3), (12, 9))]
    for i, ((h, w, c), (oh, ow)) in enumerate(cases):
        img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        img[: h // 2, : w // 3] = rng.integers(0, 256, (c,))  # flat + edge
        pil = Image.fromarray(img[..., 0] if c == 1 else img)
        bic = np.asarray(pil.resize((ow, oh), Image.BICUBIC))
        nea = np.asarray(pil.resize((ow, oh), Image.NEAREST))
        np.savez(os.path.join(out, "case%d.npz" % i), img=img,
                 bicubic=bic.reshape(oh, ow, c), nearest=nea.reshape(oh, ow, c))
    sizes = np.array([375, 500, 333, 125, 281, 1, 7, 511], np.int64)
    scales = np.array([0.5, 1.5, 2.0, 0.25, 0.75, 1.25], np.float64)
    rounded = np.array([[int(np.round(s * f)) for f in scales] for s in sizes],
                       np.int64)
    # the scales are listed again in test-resample.c (float64 is not a
    # dtype sfc reads)
    np.savez(os.path.join(out, "sizes.npz"), sizes=sizes, rounded=rounded)


def main():
    main_cases(make_cases, "resample")


if __name__ == "__main__":
    main()
