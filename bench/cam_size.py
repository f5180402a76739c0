#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Disk cost of sfc-cam's CAM files, float32 against float16, on
real-size synthetic CAMs (README: sfc-cam, MS COCO 2014):
  cam_size.py [--seed 0]
A synthetic map follows sfc-cam's recipe on the shapes of real ones: per
scale (1, 0.5, 1.5, 2) a stride-16 grid of smooth random activations,
ReLU'd (most of a class map is 0, as a real CAM's), bilinearly resized to
the image and summed; then max-normalised per channel, background + 0.4,
foreground x 2. Files are written as sfc-cam writes them (keys, cam_w,
cam_p; deflated members at zlib's default level, which lib/npy uses, as
np.savez_compressed does), stored (--compress 0) sizes are exact. Prints
bytes per image for VOC (500x375, K = 3) and COCO (640x480, K = 3, 4, 5;
COCO train averages 2.9 classes, so K = 3.9) and the COCO train set
(82,081 annotated images)."""
import argparse
import io

import numpy as np
import torch
import torch.nn.functional as F


def smooth_grid(rng, k, h, w):
    g = rng.standard_normal((1, k, h + 2, w + 2)).astype(np.float32)
    t = torch.from_numpy(g)
    t = F.avg_pool2d(t, 3, 1)  # neighbouring cells correlate
    return torch.relu(t - 0.3)


def cam(rng, k, H, W):
    s = torch.zeros(1, k, H, W)
    for sc in (1, 0.5, 1.5, 2):
        h, w = max(1, round(H * sc / 16)), max(1, round(W * sc / 16))
        s += F.interpolate(smooth_grid(rng, k, h, w), (H, W),
                           mode="bilinear", align_corners=False)
    m = s[0].numpy()
    m = m / (m.reshape(k, -1).max(1)[:, None, None] + 1e-5)
    m[0] += 0.4
    m[1:] *= 2
    return m.astype(np.float32)


def size(arrays, compress):
    b = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(b, **arrays)
    return len(b.getvalue())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=5, help="images per case")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    res = {}
    for name, H, W, k in (("voc", 375, 500, 3), ("coco", 480, 640, 3),
                          ("coco", 480, 640, 4), ("coco", 480, 640, 5)):
        tot = np.zeros(4)
        for _ in range(a.n):
            keys = np.arange(k, dtype=np.int64)
            w, p = cam(rng, k, H, W), cam(rng, k, H, W)
            for i, dt in enumerate((np.float32, np.float16)):
                arr = dict(keys=keys, cam_w=w.astype(dt), cam_p=p.astype(dt))
                tot[2 * i] += size(arr, 0)
                tot[2 * i + 1] += size(arr, 1)
        res[name, k] = tot / a.n / 2 ** 20
        print("%-4s %dx%d K=%d  MiB/image: f32 stored %.2f deflated %.2f | "
              "f16 stored %.2f deflated %.2f" % ((name, W, H, k) + tuple(
                  res[name, k])))
    c3, c4 = res["coco", 3], res["coco", 4]
    c = c3 + 0.9 * (c4 - c3)
    n = 82081
    print("coco K=3.9 (interpolated) GiB for %d images: f32 stored %.0f "
          "deflated %.0f | f16 stored %.0f deflated %.0f"
          % ((n,) + tuple(c * n / 1024)))


if __name__ == "__main__":
    main()
