#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/crf.c's exact mean field, and the sfc-crf CLI fixtures.

The model is the fully connected CRF of Kraehenbuehl & Koltun (2011) as
pydensecrf's DenseCRF2D runs it (pydensecrf cannot be installed here), written
from its definition with dense float64 kernel matrices:
  features  Gaussian (x/sxy, y/sxy), bilateral (x/sxy, y/sxy, rgb/srgb)
  kernel    k_ij = exp(-|f_i - f_j|^2 / 2), j = i included
  normalise n_i = 1/sqrt(sum_j k_ij)   (NORMALIZE_SYMMETRIC)
  message   m_i = n_i sum_j k_ij n_j Q_j
  unary     -ln(gt_prob) for the label, -ln((1-gt_prob)/(K-1)) otherwise
            (pydensecrf.utils.unary_from_labels, zero_unsure=False), float32
  iterate   Q = softmax(-U); t times Q = softmax(-U + sum w_m m_m)

Usage:
  ref_crf.py --golden            write tests/golden/crf/ (fixed seeds)
  ref_crf.py --out DIR --seed S  write fresh mean-field cases into DIR

Cases mf-N.npz: rgb uint8 (H, W, 3), lab uint8 (H, W), params float32
[iters, gt_prob, gauss_sxy, gauss_compat, bilat_sxy, bilat_srgb,
bilat_compat], K int32 (1,), q float32 (H*W, K) (computed in float64).

cli/: inputs for tests/cli/t05*-sfc-crf-*.sh: images/<id>.png, cams/<id>.npz
(keys int64, cam_w, cam_p float32 (K, H, W)), list.txt, and for the block
image the IR labels each rule must give, derived by hand from
sfc-reference.md 5 (expect-<rule>.npy, uint8 (H, W)).
"""
import argparse
import os

import numpy as np
from PIL import Image


# ---- the mean field ----------------------------------------------------------

def features(rgb, sxy, srgb=None):
    H, W = rgb.shape[:2]
    y, x = np.mgrid[0:H, 0:W]
    f = [x.ravel() / np.float64(sxy), y.ravel() / np.float64(sxy)]
    if srgb is not None:
        for c in range(3):
            f.append(rgb[:, :, c].ravel().astype(np.float64) / np.float64(srgb))
    return np.stack(f, 1)


def message_matrix(f):
    d2 = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d2 / 2)
    n = 1 / np.sqrt(k.sum(1))
    return n[:, None] * k * n[None, :]


def unary_from_labels(lab, K, gt_prob):
    gt_prob = np.float32(gt_prob)
    U = np.full((lab.size, K), -np.log((1 - gt_prob) / (K - 1)), np.float32)
    U[np.arange(lab.size), lab.ravel()] = -np.log(gt_prob)
    return U


def softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def mean_field(rgb, lab, K, p):
    iters, gt_prob, gsxy, gw, bsxy, bsrgb, bw = [float(v) for v in p]
    A = message_matrix(features(rgb, np.float32(gsxy)))
    B = message_matrix(features(rgb, np.float32(bsxy), np.float32(bsrgb)))
    U = unary_from_labels(lab, K, gt_prob).astype(np.float64)
    Q = softmax(-U)
    for _ in range(int(iters)):
        Q = softmax(-U + gw * (A @ Q) + bw * (B @ Q))
    return Q


# ---- scenes ------------------------------------------------------------------

def scene(rng, H, W, K, noise):
    """Voronoi cells with flat distinct colours plus Gaussian noise."""
    cx, cy = rng.uniform(0, W, K), rng.uniform(0, H, K)
    cols = rng.uniform(30, 225, (K, 3))
    y, x = np.mgrid[0:H, 0:W]
    d = (x[None] - cx[:, None, None]) ** 2 + (y[None] - cy[:, None, None]) ** 2
    gt = d.argmin(0)
    img = cols[gt] + noise * rng.standard_normal((H, W, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), gt, cx, cy


def noisy(rng, gt, cx, cy, shift, flip):
    K = len(cx)
    H, W = gt.shape
    cx = cx + rng.uniform(-shift, shift, K)
    cy = cy + rng.uniform(-shift, shift, K)
    y, x = np.mgrid[0:H, 0:W]
    d = (x[None] - cx[:, None, None]) ** 2 + (y[None] - cy[:, None, None]) ** 2
    lab = d.argmin(0)
    m = rng.uniform(size=gt.shape) < flip
    lab[m] = rng.integers(0, K, m.sum())
    return lab.astype(np.uint8)


def write_mf_cases(out, seed, n=3):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        H, W = int(rng.integers(8, 14)), int(rng.integers(10, 18))
        K = int(rng.integers(2, 5))
        rgb, gt, cx, cy = scene(rng, H, W, K, rng.uniform(2, 10))
        lab = noisy(rng, gt, cx, cy, 2, 0.15)
        # SFC's values and a variant where both kernels act at this size
        p = np.array([12, 0.7, 3, 3, 50, 5, 10] if i % 2 == 0 else
                     [int(rng.integers(1, 8)), rng.uniform(0.5, 0.9),
                      rng.uniform(1, 4), rng.uniform(0.5, 5),
                      rng.uniform(3, 20), rng.uniform(5, 40),
                      rng.uniform(0.5, 8)], np.float32)
        q = mean_field(rgb, lab, K, p)
        np.savez(os.path.join(out, "mf-%d.npz" % i), rgb=rgb, lab=lab,
                 params=p, K=np.array([K], np.int32), q=q.astype(np.float32))


# ---- CLI fixtures ------------------------------------------------------------

def save_cam(path, keys, S_bg, S_cls_list, rng):
    """cam_w and cam_p such that cam_w + 0.7 cam_p = S (float32)."""
    S = np.stack([S_bg] + S_cls_list).astype(np.float32)
    cam_p = (rng.uniform(0, 1, S.shape) * 0.5 * S).astype(np.float32)
    cam_w = (S - np.float32(0.7) * cam_p).astype(np.float32)
    np.savez(path, keys=np.array(keys, np.int64), cam_w=cam_w, cam_p=cam_p)


def write_cli(out):
    rng = np.random.default_rng(5)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "cams"), exist_ok=True)
    # blocks: three 10 px bands background | ambiguous | object (class 9),
    # the object's evidence spilling 3 px into the ambiguous band
    H, W = 20, 30
    cols = np.array([[40, 90, 200], [200, 200, 60], [150, 30, 40]], np.uint8)
    band = np.repeat(np.arange(3), 10)[None, :].repeat(H, 0)
    Image.fromarray(cols[band]).save(os.path.join(out, "images/blocks.png"))
    bg = np.array([1.0, 0.3, 0.1])[band]
    cl = np.array([0.02, 0.2, 0.9])[band]
    bg[:, 17:20], cl[:, 17:20] = 0.1, 0.9
    save_cam(os.path.join(out, "cams/blocks.npz"), [0, 9], bg, [cl], rng)
    # By hand (S = M_W + 0.7 M_P): sfc: fg map bg | bg | 9 (1 > .02, .3 > .2,
    # .1 < .9), bg map (bg x .5) bg | 9 | 9; irn (class / .9): fg map
    # (.30) bg | bg | 9, bg map (.05) bg | 9 | 9; the CRF takes the spill
    # back to the colour edge. sfc, irn: 0 | 255 | 9; cam-crf: 0 | 0 | 9.
    np.save(os.path.join(out, "expect-sfc.npy"),
            np.array([0, 255, 9], np.uint8)[band])
    np.save(os.path.join(out, "expect-irn.npy"),
            np.array([0, 255, 9], np.uint8)[band])
    np.save(os.path.join(out, "expect-cam-crf.npy"),
            np.array([0, 0, 9], np.uint8)[band])
    ids = ["blocks"]
    # scenes with blurred, shifted CAMs for the shard / resume tests
    for i in range(4):
        rgb, gt, cx, cy = scene(rng, 30, 40, 3, 6)
        lab = noisy(rng, gt, cx, cy, 4, 0.0)
        keys = [0] + sorted(rng.choice(np.arange(1, 21), 2, replace=False)
                            .tolist())
        S = [np.where(lab == k, 1.0, 0.2) + rng.uniform(0, 0.3, lab.shape)
             for k in range(3)]
        name = "scene%d" % i
        Image.fromarray(rgb).save(os.path.join(out, "images", name + ".png"))
        save_cam(os.path.join(out, "cams", name + ".npz"), keys, S[0],
                 S[1:], rng)
        ids.append(name)
    with open(os.path.join(out, "list.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.golden:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "golden", "crf")
        write_mf_cases(root, 20261124)
        write_cli(os.path.join(root, "cli"))
    elif a.out:
        write_mf_cases(a.out, a.seed)
    else:
        ap.error("need --golden or --out DIR")


if __name__ == "__main__":
    main()
