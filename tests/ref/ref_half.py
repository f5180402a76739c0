#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle of lib/tensor.c's float16 conversions and lib/camfile.c: numpy's
float32 -> float16 cast (round to nearest, ties to even, subnormals,
overflow to infinity) and float16 -> float32 widening.
  ref_half.py --golden | --out DIR --seed S
Writes into DIR:
  half.npz   x (float32, N): edge cases (ties at every binade edge, the
             subnormal range, 2^-25 and its neighbours, 65504..65520 and
             beyond, +-0, +-inf, a quiet NaN) and random values at scales
             2^-30..2^17; h = x.astype(float16); back = h.astype(float32)
  cam.npz    a CAM file as np.savez_compressed writes it with float16
             maps: keys (int64), cam_w, cam_p (float16, (3, 7, 9))
  want.npz   keys and the same maps widened by numpy to float32"""
import os

import numpy as np

from refcommon import main_cases


def f32(bits):
    return np.array(bits, dtype="<u4").view("<f4")


def edge_values():
    v = [0.0, -0.0, np.inf, -np.inf, 65504.0, 65505.0, 65519.0, 65519.996,
         65520.0, 65536.0, 1e6, 3.4e38, -65520.0, 2.0 ** -14, 2.0 ** -24,
         2.0 ** -25, 2.0 ** -26, 1.5 * 2.0 ** -25, 1.0, 1.0 + 2.0 ** -11,
         1.0 + 3 * 2.0 ** -11, 1.0 + 2.0 ** -12, 2048.0, 2049.0, 2051.0,
         0.1, 0.2, 0.3, 0.4, 1.4, 2.4]
    x = list(np.array(v, dtype="<f4"))
    # halfway and one-ulp-off cases at every half exponent and in the
    # subnormal range: the float32 just below, at and above each midpoint
    h = np.arange(0, 0x7c00, 97, dtype="<u2").view("<f2").astype("<f4")
    h2 = (np.arange(0, 0x7c00, 97, dtype="<u2") + 1).view("<f2").astype("<f4")
    mid = (h.astype(np.float64) + h2.astype(np.float64)) / 2
    mid32 = mid.astype("<f4")  # exact: a midpoint needs 12 bits
    bits = mid32.view("<u4")
    x += list(mid32) + list(f32(bits - 1)) + list(f32(bits + 1))
    x += [f32(0x7fc00000)[()]]
    return np.array(x, dtype="<f4")


def make_cases(d, seed):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    e = edge_values()
    r = (rng.standard_normal(600) *
         2.0 ** rng.integers(-30, 18, 600)).astype("<f4")
    x = np.concatenate([e, r, -e[:50]])
    with np.errstate(over="ignore"):
        h = x.astype("<f2")
    np.savez_compressed(os.path.join(d, "half.npz"), x=x, h=h,
                        back=h.astype("<f4"))
    keys = np.array([0, 3, 17], dtype="<i8")
    cw = (rng.random((3, 7, 9)) * 2).astype("<f2")
    cp = (rng.random((3, 7, 9)) * 2).astype("<f2")
    np.savez_compressed(os.path.join(d, "cam.npz"), keys=keys, cam_w=cw,
                        cam_p=cp)
    np.savez(os.path.join(d, "want.npz"), keys=keys,
             cam_w=cw.astype("<f4"), cam_p=cp.astype("<f4"))


if __name__ == "__main__":
    main_cases(make_cases, "half")
