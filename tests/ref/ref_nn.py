#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ref_nn.py: PyTorch oracle for the layer kernels (lib/conv.c, lib/layers.c).

For each case it draws float32 inputs and a random upstream gradient dout,
runs the PyTorch layer in float64 (so the reference carries no float32
rounding of its own), back-propagates (out * dout).sum() and writes one
.npz per case: inputs, parameters, outputs, every gradient (float32) and a
"meta" int64 vector with the dimensions, in the order tests/test-nn.c
reads them.

  ref_nn.py --golden            write the committed cases to tests/golden/nn/
  ref_nn.py --out DIR --seed S  write fresh cases into DIR
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from refcommon import main_cases

# name, N, C, OC, H, W, K, S, P, D, bias: every conv the models use
# (7x7 s2 p3, 3x3 s1/s2 p1, dilated 3x3, 1x1 s1/s2) on odd, non-square
# sizes, plus a wider one that exercises sgemm blocking.
CONV = [
    ("conv_k7s2p3", 2, 3, 5, 13, 11, 7, 2, 3, 1, 0),
    ("conv_k7s2p3_even", 1, 3, 4, 12, 10, 7, 2, 3, 1, 1),
    ("conv_k3s1p1", 2, 4, 6, 13, 11, 3, 1, 1, 1, 1),
    ("conv_k3s2p1", 2, 5, 4, 13, 11, 3, 2, 1, 1, 0),
    ("conv_k3s2p1_even", 1, 4, 3, 12, 10, 3, 2, 1, 1, 1),
    ("conv_k3d2p2", 2, 3, 4, 13, 11, 3, 1, 2, 2, 1),
    ("conv_k3d4p4", 1, 4, 5, 15, 13, 3, 1, 4, 4, 0),
    ("conv_k1s1", 2, 6, 5, 13, 11, 1, 1, 0, 1, 0),
    ("conv_k1s1_bias", 2, 7, 3, 9, 5, 1, 1, 0, 1, 1),
    ("conv_k1s2", 2, 6, 5, 13, 11, 1, 2, 0, 1, 0),
    ("conv_k1s2_even", 1, 5, 4, 12, 10, 1, 2, 0, 1, 1),
    ("conv_k3s1p1_wide", 1, 24, 20, 9, 7, 3, 1, 1, 1, 0),
    ("conv_k1s1_wide", 1, 72, 40, 7, 9, 1, 1, 0, 1, 1),
]
# 3x3 stride 1 with padding 0 and 2 (Winograd tiles cut by the edges);
# drawn last, so that the cases above keep their values
CONV_EDGE = [
    ("conv_k3s1p0", 2, 5, 7, 11, 9, 3, 1, 0, 1, 1),
    ("conv_k3s1p2", 1, 6, 5, 9, 13, 3, 1, 2, 1, 0),
]
# name, N, C, H, W, eps
BN = [("bn", 2, 5, 7, 9, 1e-5), ("bn_eps", 1, 3, 4, 5, 1e-3)]
# name, N, C, H, W
RELU = [("relu", 2, 3, 7, 5)]
# name, N, C, H, W, K, S, P, ties (integer-valued input with many ties)
POOL = [
    ("maxpool_k3s2p1", 2, 3, 13, 11, 3, 2, 1, 0),
    ("maxpool_k3s2p1_even", 1, 2, 12, 10, 3, 2, 1, 0),
    ("maxpool_k2s2p0", 1, 2, 9, 7, 2, 2, 0, 0),
    ("maxpool_k3s1p1", 1, 2, 6, 7, 3, 1, 1, 0),
    ("maxpool_ties", 2, 3, 13, 11, 3, 2, 1, 1),
]
# name, N, C, H, W
GAP = [("gap", 2, 6, 5, 7)]


def f32(t):
    return t.detach().to(torch.float32).numpy()


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def save(outdir, name, arrays):
    np.savez(os.path.join(outdir, name + ".npz"), **arrays)


def conv_case(rng, outdir, spec):
    name, n, c, oc, h, w, k, s, p, d, bias = spec
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((oc, c, k, k)) / np.sqrt(c * k * k)).astype(
        np.float32)
    b = rng.standard_normal(oc).astype(np.float32)
    tx, tw, tb = leaf(x), leaf(wt), leaf(b)
    y = F.conv2d(tx, tw, tb if bias else None, stride=s, padding=p,
                 dilation=d)
    dout = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    (y * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    arrays = dict(meta=np.array([n, c, oc, h, w, k, s, p, d, bias],
                                dtype=np.int64),
                  x=x, w=wt, y=f32(y), dout=dout, dx=f32(tx.grad),
                  dw=f32(tw.grad))
    if bias:
        arrays.update(b=b, db=f32(tb.grad))
    save(outdir, name, arrays)


def bn_case(rng, outdir, spec):
    name, n, c, h, w, eps = spec
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    mean = rng.standard_normal(c).astype(np.float32)
    var = rng.uniform(0.2, 2.0, c).astype(np.float32)
    gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
    beta = rng.standard_normal(c).astype(np.float32)
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    y = F.batch_norm(tx, torch.tensor(mean, dtype=torch.float64),
                     torch.tensor(var, dtype=torch.float64), tg, tb,
                     training=False, eps=eps)
    dout = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    (y * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    save(outdir, name, dict(meta=np.array([n, c, h, w], dtype=np.int64),
                            eps=np.array([eps], dtype=np.float32),
                            x=x, mean=mean, var=var, gamma=gamma, beta=beta,
                            y=f32(y), dout=dout, dx=f32(tx.grad),
                            dgamma=f32(tg.grad), dbeta=f32(tb.grad)))


def relu_case(rng, outdir, spec):
    name, n, c, h, w = spec
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    x.flat[::7] = 0.0  # exact zeros: PyTorch passes no gradient at 0
    tx = leaf(x)
    y = F.relu(tx)
    dout = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    (y * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    save(outdir, name, dict(meta=np.array([n, c, h, w], dtype=np.int64),
                            x=x, y=f32(y), dout=dout, dx=f32(tx.grad)))


def pool_case(rng, outdir, spec):
    name, n, c, h, w, k, s, p, ties = spec
    if ties:
        x = rng.integers(0, 3, (n, c, h, w)).astype(np.float32)
    else:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    # float32 here: the tie-breaking of PyTorch's own CPU kernel is what
    # the C kernel must reproduce.
    tx = torch.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(tx, k, s, p, return_indices=True)
    dout = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    (y * torch.tensor(dout)).sum().backward()
    save(outdir, name, dict(meta=np.array([n, c, h, w, k, s, p],
                                          dtype=np.int64),
                            x=x, y=f32(y), idx=idx.numpy().astype(np.int32),
                            dout=dout, dx=f32(tx.grad)))


def gap_case(rng, outdir, spec):
    name, n, c, h, w = spec
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    tx = leaf(x)
    y = F.adaptive_avg_pool2d(tx, 1).reshape(n, c)
    dout = rng.standard_normal(tuple(y.shape)).astype(np.float32)
    (y * torch.tensor(dout, dtype=torch.float64)).sum().backward()
    save(outdir, name, dict(meta=np.array([n, c, h, w], dtype=np.int64),
                            x=x, y=f32(y), dout=dout, dx=f32(tx.grad)))


def cases(out, seed):
    rng = np.random.default_rng(seed)
    for spec in CONV:
        conv_case(rng, out, spec)
    for spec in BN:
        bn_case(rng, out, spec)
    for spec in RELU:
        relu_case(rng, out, spec)
    for spec in POOL:
        pool_case(rng, out, spec)
    for spec in GAP:
        gap_case(rng, out, spec)
    for spec in CONV_EDGE:
        conv_case(rng, out, spec)


def main():
    main_cases(cases, "nn", before=lambda: torch.set_num_threads(1),
               golden_seed=20240101, seed=20240101, mkdir=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
