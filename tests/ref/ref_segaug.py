#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/segaug.c: DeepLab-v2's training sample (deeplab-pytorch
base.py _augmentation, with PIL bicubic for the image as sfc resizes it)
in numpy + Pillow: sizes int(H s), image Image.resize BICUBIC, label
NEAREST, ImageNet normalisation in float32, padding at the bottom and
right (0 = the mean after normalisation, label 255), the crop window, the
flip. For random images and random draws (scale, row offset, column
offset, flip) it writes case<i>.npz: img, lab, draw (float32 [scale, oy,
ox, flip, crop]), x (3, crop, crop), y (crop, crop).

Usage: ref_segaug.py --out DIR [--seed S] | --golden
"""
import os

import numpy as np
from PIL import Image

from refcommon import main_cases

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def sample(img, lab, s, oy, ox, flip, crop):
    H, W = lab.shape
    sh, sw = max(1, int(H * s)), max(1, int(W * s))
    if (sh, sw) != (H, W):
        img = np.asarray(Image.fromarray(img).resize((sw, sh), Image.BICUBIC))
        lab = np.asarray(Image.fromarray(lab).resize((sw, sh), Image.NEAREST))
    xn = (img.astype(np.float32) / np.float32(255) - MEAN) / STD
    ph, pw = max(sh, crop), max(sw, crop)
    cx = np.zeros((ph, pw, 3), np.float32)
    cy = np.full((ph, pw), 255, np.uint8)
    cx[:sh, :sw] = xn
    cy[:sh, :sw] = lab
    x = cx[oy:oy + crop, ox:ox + crop].transpose(2, 0, 1)
    y = cy[oy:oy + crop, ox:ox + crop]
    if flip:
        x, y = x[:, :, ::-1], y[:, ::-1]
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def make_cases(out, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    scales = [0.5, 0.75, 1.0, 1.25, 1.5]
    for i, (H, W, crop) in enumerate([(37, 29, 33), (23, 41, 17),
                                      (30, 30, 30), (19, 26, 41)]):
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        lab = rng.integers(0, 21, (H, W), dtype=np.uint8)
        lab[rng.random((H, W)) < 0.1] = 255
        s = scales[rng.integers(0, 5)] if i != 2 else 1.0
        sh, sw = max(1, int(H * s)), max(1, int(W * s))
        oy = int(rng.integers(0, max(sh, crop) - crop + 1))
        ox = int(rng.integers(0, max(sw, crop) - crop + 1))
        flip = int(rng.integers(0, 2)) if i != 3 else 1
        x, y = sample(img, lab, s, oy, ox, flip, crop)
        np.savez(os.path.join(out, "case%d.npz" % i), img=img, lab=lab,
                 draw=np.array([s, oy, ox, flip, crop], np.float32), x=x, y=y)


def main():
    main_cases(make_cases, "segaug")


if __name__ == "__main__":
    main()
