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
import sys

import numpy as np
import torch

from ref_nn import conv_case
from refcommon import main_cases

# name, N, C, OC, H, W, K, S, P, D, bias
CASES = [
    ("dil2_odd", 2, 5, 6, 13, 11, 3, 1, 2, 2, 1),
    ("dil2_even", 1, 8, 7, 12, 10, 3, 1, 2, 2, 0),
    ("dil3", 1, 4, 7, 17, 10, 3, 1, 3, 3, 0),
    ("dil4", 2, 6, 5, 15, 9, 3, 1, 4, 4, 1),
    ("dil4_small", 1, 3, 4, 3, 6, 3, 1, 4, 4, 0),
    ("dil5", 1, 3, 3, 11, 12, 3, 1, 5, 5, 1),
]


def cases(out, seed):
    rng = np.random.default_rng(seed)
    for spec in CASES:
        conv_case(rng, out, spec)


def main():
    main_cases(cases, "convdil", before=lambda: torch.set_num_threads(1),
               golden_seed=20261124, seed=20261124, mkdir=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
