#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/pathidx.c and lib/rw.c (issue 6, item 4).

Re-expresses sfc-reference.md §6.2 (path index), §6.1 (affinity labels),
§6.3 (affinity from edges) and §7 (random walk) in numpy, densely: the
random walk builds the full hw x hw transition matrix and raises it to the
power 2^exp_times by repeated squaring in float64, as the reference does
(in float32 on a GPU there).

Usage: ref_irn.py --out DIR [--seed S] | --golden
"""
import os

import numpy as np

from refcommon import main_cases


def directions(r):
    """Forward half-disc, grouped by path length (stable)."""
    dirs = [(0, x) for x in range(1, r)]
    dirs += [(y, x) for y in range(1, r) for x in range(-r + 1, r)
             if x * x + y * y < r * r]
    paths = []
    for dy, dx in dirs:
        pts = [(y, x)
               for y in range(min(0, dy), max(0, dy) + 1)
               for x in range(min(0, dx), max(0, dx) + 1)
               if (dy * x - dx * y) ** 2 / (dy * dy + dx * dx) < 1]
        pts = sorted(pts, key=lambda q: -(abs(q[0]) + abs(q[1])))  # stable
        paths.append(pts)
    order = sorted(range(len(dirs)), key=lambda k: len(paths[k]))  # stable
    return [dirs[k] for k in order], [paths[k] for k in order]


def src_grid(r, H, W):
    rf = r - 1
    ys, xs = np.meshgrid(np.arange(H - rf), np.arange(rf, W - rf),
                         indexing="ij")
    return ys.ravel(), xs.ravel()


def affinity_labels(r, L, nclass):
    dirs, _ = directions(r)
    ys, xs = src_grid(r, *L.shape)
    f = L[ys, xs].astype(np.int64)
    out = np.zeros((3, len(dirs), len(ys)), np.float32)
    for k, (dy, dx) in enumerate(dirs):
        t = L[ys + dy, xs + dx].astype(np.int64)
        valid = (f < nclass) & (t < nclass)
        out[0, k] = valid & (f == t) & (f == 0)
        out[1, k] = valid & (f == t) & (f > 0)
        out[2, k] = valid & (f != t)
    return out


def edge_affinity(r, edge):
    dirs, paths = directions(r)
    ys, xs = src_grid(r, *edge.shape)
    aff = np.zeros((len(dirs), len(ys)), np.float32)
    for k, pts in enumerate(paths):
        m = np.max(np.stack([edge[ys + py, xs + px] for py, px in pts]), 0)
        aff[k] = 1 - m
    return aff


def random_walk(x, edge, r, beta, exp_times, dtype=np.float64):
    """x (K,h,w), edge (h,w) -> (K,h,w); dense, in dtype throughout
    (float64; IRN itself computes in float32 on a GPU)."""
    h, w = edge.shape
    n = h * w
    dirs, paths = directions(r)
    A = np.eye(n, dtype=dtype)
    e = edge.astype(dtype)
    for (dy, dx), pts in zip(dirs, paths):
        for y in range(h):
            for xx in range(w):
                if 0 <= y + dy < h and 0 <= xx + dx < w:
                    m = max(e[y + py, xx + px] for py, px in pts)
                    i, j = y * w + xx, (y + dy) * w + xx + dx
                    A[i, j] = A[j, i] = 1 - m
    B = A ** dtype(beta)
    T = B / B.sum(0, keepdims=True)
    for _ in range(exp_times):
        T = T @ T
    xv = (x.astype(dtype) * (1 - e)).reshape(x.shape[0], n)
    return (xv @ T).reshape(x.shape)


def make_cases(out, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    for r in (5, 10):
        dirs, paths = directions(r)
        H, W = 2 * r + 3, 2 * r + 5
        L = rng.integers(0, 4, (H, W)).astype(np.uint8)
        L[rng.random((H, W)) < 0.15] = 255
        L[rng.random((H, W)) < 0.05] = 3  # class 3 >= nclass -> invalid
        edge = rng.random((H, W)).astype(np.float32)
        starts = np.cumsum([0] + [len(p) for p in paths])
        np.savez_compressed(os.path.join(out, "path_r%d.npz" % r),
                 dirs=np.array(dirs, np.int64),
                 starts=starts.astype(np.int64),
                 points=np.array([q for p in paths for q in p], np.int64),
                 labels=L, edge=edge,
                 aff_labels=affinity_labels(r, L, 3),
                 aff=edge_affinity(r, edge))
    # random walk: smooth regions separated by an edge line, K = 3
    for tag, (h, w) in (("a", (13, 17)), ("b", (20, 24))):
        edge = (rng.random((h, w)) * 0.2).astype(np.float32)
        edge[:, w // 2] = 0.9 + 0.1 * rng.random(h).astype(np.float32)
        edge[h // 3, :] = np.maximum(edge[h // 3, :], 0.7)
        x = rng.random((3, h, w)).astype(np.float32)
        x[:, :, : w // 2] *= np.array([1, 0.2, 0.1], np.float32)[:, None, None]
        rw = random_walk(x, edge, 5, 10.0, 8)
        # the same formula computed in float32 (as IRN does): its distance
        # to rw is the rounding a float32 walk may have
        rw32 = random_walk(x, edge, 5, 10.0, 8, np.float32)
        np.savez(os.path.join(out, "rw_%s.npz" % tag), x=x, edge=edge,
                 rw=rw.astype(np.float32), rw32=rw32,
                 params=np.array([5, 10, 8], np.int64))


def main():
    main_cases(make_cases, "irn")


if __name__ == "__main__":
    main()
