#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ref_convdil.py: PyTorch oracle for dilated 3x3 stride-1 convolutions
with padding = dilation (lib/conv_dilated.c through lib/conv.c).

Each case is F.conv2d(x, w, b, padding=d, dilation=d) in float64 and the
gradients of (out * dout).sum(), written as one .npz in ref_nn.py's conv
layout (tests/test-convdil.c reads it the same way): odd and even sizes,
maps smaller than the dilation, dilations 2 to 5.

  ref_convdil.py --golden            write tests/golden/convdil/
  ref_convdil.py --out DIR --seed S  write fresh cases into DIR
"""
import argparse
import os
import sys

import numpy as np
import torch

from ref_nn import conv_case

# name, N, C, OC, H, W, K, S, P, D, bias
CASES = [
    ("dil2_odd", 2, 5, 6, 13, 11, 3, 1, 2, 2, 1),
    ("dil2_even", 1, 8, 7, 12, 10, 3, 1, 2, 2, 0),
    ("dil3", 1, 4, 7, 17, 10, 3, 1, 3, 3, 0),
    ("dil4", 2, 6, 5, 15, 9, 3, 1, 4, 4, 1),
    ("dil4_small", 1, 3, 4, 3, 6, 3, 1, 4, 4, 0),
    ("dil5", 1, 3, 3, 11, 12, 3, 1, 5, 5, 1),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--golden", action="store_true",
                    help="write tests/golden/convdil/ with the fixed seed")
    ap.add_argument("--out", help="output directory")
    ap.add_argument("--seed", type=int, default=20261124)
    a = ap.parse_args()
    if a.golden:
        out = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "golden", "convdil")
        seed = 20261124
    elif a.out:
        out, seed = a.out, a.seed
    else:
        ap.error("need --golden or --out DIR")
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    for spec in CASES:
        conv_case(rng, out, spec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
