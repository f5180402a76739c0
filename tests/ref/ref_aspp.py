#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/aspp.c: the ASPP head of DeepLab-v2, sum over branches b
of F.conv2d(x, w_b, b_b, padding=r_b, dilation=r_b) (3x3 kernels), and
its gradients by autograd for a random upstream gradient dy, all in
float64 (float32 inputs). One file per case, <case>.safetensors:
x (N, F, h, w), w.<b> (C, F, 3, 3), b.<b> (C), dy (N, C, h, w), y, dx,
dw.<b>, db.<b>; metadata rates.
Cases: odd map sizes, rates larger than the map (taps wholly in the
padding), a repeated rate (taps with the same offset), a 1x1 map.
--golden          the cases into tests/golden/aspp/
--out DIR --seed S  fresh cases."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_resnet import save_safetensors  # noqa: E402
from refcommon import main_cases  # noqa: E402

CASES = [  # tag, N, F, C, h, w, rates
    ("odd", 2, 7, 3, 5, 9, [1, 2, 6, 12]),
    ("deeplab", 1, 16, 5, 13, 11, [6, 12, 18, 24]),
    ("repeat", 2, 4, 2, 4, 3, [2, 2, 3]),
    ("one", 1, 6, 4, 1, 1, [6, 12, 18, 24]),
]


def run_case(outdir, tag, N, Fi, C, h, w, rates, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, Fi, h, w, generator=g)
    ws = [torch.randn(C, Fi, 3, 3, generator=g) for _ in rates]
    bs = [torch.randn(C, generator=g) for _ in rates]
    dy = torch.randn(N, C, h, w, generator=g)
    xd = x.double().requires_grad_()
    wd = [t.double().requires_grad_() for t in ws]
    bd = [t.double().requires_grad_() for t in bs]
    y = sum(F.conv2d(xd, wd[i], bd[i], padding=r, dilation=r)
            for i, r in enumerate(rates))
    y.backward(dy.double())
    case = {"x": x.numpy(), "dy": dy.numpy(),
            "y": y.detach().float().numpy(), "dx": xd.grad.float().numpy()}
    for i in range(len(rates)):
        case["w.%d" % i] = ws[i].numpy()
        case["b.%d" % i] = bs[i].numpy()
        case["dw.%d" % i] = wd[i].grad.float().numpy()
        case["db.%d" % i] = bd[i].grad.float().numpy()
    meta = {"rates": ",".join(map(str, rates)), "seed": seed,
            "torch": torch.__version__}
    save_safetensors(os.path.join(outdir, tag + ".safetensors"), case, meta)


def cases(outdir, seed):
    for i, c in enumerate(CASES):
        run_case(outdir, *c, seed + i)


def main():
    main_cases(cases, "aspp", before=lambda: torch.set_num_threads(1),
               golden_seed=1234, seed=0, mkdir=True)


if __name__ == "__main__":
    sys.exit(main())
