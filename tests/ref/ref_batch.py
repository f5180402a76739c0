#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/batch.c: a training slot built as the reference's data
pipeline does (sfc-reference.md §1.4, §2.1, §6.1): PIL bicubic resize,
horizontal flip, ImageNet normalisation, then the window of the (flipped)
image pasted into a zero canvas, with the pasted box as the valid mask.

Usage: ref_batch.py --out DIR [--seed S] | --golden
"""
import os

import numpy as np
from PIL import Image

from refcommon import main_cases

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def fill(rgb, h, w, flip, img_top, img_left, cont_top, cont_left, ch, cw, S):
    im = rgb
    if (h, w) != rgb.shape[:2]:
        im = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC))
    if flip:
        im = im[:, ::-1]
    norm = (im.astype(np.float32) / 255.0 - MEAN) / STD
    canvas = np.zeros((S, S, 3), np.float32)
    box = np.zeros((S, S), np.float32)
    canvas[cont_top:cont_top + ch, cont_left:cont_left + cw] = \
        norm[img_top:img_top + ch, img_left:img_left + cw]
    box[cont_top:cont_top + ch, cont_left:cont_left + cw] = 1
    return canvas.transpose(2, 0, 1), box


def make_cases(out, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    S = 40
    rgb = rng.integers(0, 256, (31, 45, 3), dtype=np.uint8)
    H, W = rgb.shape[:2]
    augs = []
    for k in range(6):
        resize = k >= 2
        scale = rng.uniform(0.6, 1.6) if resize else 1.0
        h, w = (int(round(H * scale)), int(round(W * scale))) if resize \
            else (H, W)
        flip = int(resize and k % 2 == 0)
        ch, cw = min(h, S), min(w, S)
        it = rng.integers(0, h - ch + 1)
        il = rng.integers(0, w - cw + 1)
        ct = rng.integers(0, S - ch + 1)
        cl = rng.integers(0, S - cw + 1)
        augs.append([h, w, flip, it, il, ct, cl, ch, cw])
    imgs, boxes = zip(*(fill(rgb, *a, S) for a in augs))
    np.savez(os.path.join(out, "batch.npz"), rgb=rgb,
             augs=np.array(augs, np.int64), img=np.stack(imgs),
             box=np.stack(boxes), S=np.array(S, np.int64))


def main():
    main_cases(make_cases, "batch")


if __name__ == "__main__":
    main()
