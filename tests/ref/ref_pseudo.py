#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/pseudo.c: sfc-reference.md §7 re-expressed with PyTorch's
F.interpolate and the dense float64 random walk of ref_irn.py: SFC's two
passes (S = M_W + 0.3 M_P, resized, ^1.3; pass A on the foreground, pass B
on S^1.3 with background; x4 upsampling with the scale factor, crop,
global max; background 0.25) and IRN's single pass.

Usage: ref_pseudo.py --out DIR [--seed S] | --golden
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

from ref_irn import random_walk

from refcommon import main_cases


def up_norm(rw, H, W):
    t = torch.from_numpy(rw)[None]
    up = F.interpolate(t, scale_factor=4, mode="bilinear",
                       align_corners=False)[0, :, :H, :W]
    return up / up.max()


def pseudo(cam_w, cam_p, keys, edge, two_pass):
    K, H, W = cam_w.shape
    h, w = edge.shape
    s = torch.from_numpy(cam_w + 0.3 * cam_p)[None]
    s = F.interpolate(s, (h, w), mode="bilinear", align_corners=False)[0]
    s = s ** 1.3
    ra = up_norm(random_walk(s[1:].numpy(), edge, 5, 10.0, 8), H, W)
    score = F.pad(ra, (0, 0, 0, 0, 1, 0), value=0.25)
    if two_pass:
        rb = up_norm(random_walk((s ** 1.3).numpy(), edge, 5, 10.0, 8), H, W)
        score = score + rb
    return keys[torch.argmax(score, 0).numpy()].astype(np.uint8)


def make_cases(out, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    for i, (H, W, K) in enumerate(((37, 50, 3), (44, 29, 4))):
        h, w = (H + 3) // 4, (W + 3) // 4
        yy, xx = np.mgrid[0:H, 0:W] / np.array([H, W])[:, None, None]
        cam_w = np.zeros((K, H, W), np.float32)
        cam_p = np.zeros((K, H, W), np.float32)
        cam_w[0] = 0.4 + 0.3 * rng.random((H, W))
        for c in range(1, K):  # a blob per class at a random place
            cy, cx = rng.random(2)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.02)
            cam_w[c] = 1.2 * blob + 0.1 * rng.random((H, W))
            cam_p[c] = blob * rng.random()
        keys = np.concatenate([[0], np.sort(rng.choice(
            np.arange(1, 21), K - 1, replace=False))]).astype(np.int64)
        edge = (0.3 * rng.random((h, w))).astype(np.float32)
        edge[:, w // 3] = 0.95
        for two in (1, 0):
            lab = pseudo(cam_w, cam_p, keys, edge, two)
            np.savez(os.path.join(out, "case%d_%s.npz" %
                                  (i, "sfc" if two else "irn")),
                     cam_w=cam_w, cam_p=cam_p, keys=keys, edge=edge,
                     label=lab)


def main():
    main_cases(make_cases, "pseudo", before=lambda: torch.set_num_threads(1))


if __name__ == "__main__":
    main()
