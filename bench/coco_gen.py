#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Write a COCO-2014-train-sized instances file for bench-coco:
  coco_gen.py OUT.json IMAGEDIR [--images 82783] [--anns 604907] [--seed 0]

Shapes follow the real file's statistics: 82,783 images of 640 on the long
side (480..640 short side), 604,907 annotations (7.3 per image, drawn per
image from a geometric law, so ~12 % of the images have none; the real
file ~1 %), 80 categories
with COCO's gapped ids listed last (as the official file does), ~1 % crowd
annotations as uncompressed RLE, the rest 1..3 star-shaped polygons of
6..60 points (drawn from a pool of 20,000) with two-decimal coordinates (~450 MB in all). The image
files are created empty in IMAGEDIR (sfc-coco only checks they exist).
Written as a stream, so the generator itself stays small."""
import argparse
import os

import numpy as np

COCO_IDS = ([i for i in range(1, 12)] + [i for i in range(13, 26)] +
            [27, 28] + [i for i in range(31, 45)] + [i for i in range(46, 66)]
            + [67, 70] + [i for i in range(72, 83)] +
            [i for i in range(84, 91)])


def crowd_rle(rng, h, w):
    """Runs of a random blob (a vertical band per column) over (h, w)."""
    x0 = int(rng.integers(0, w - 20))
    x1 = int(rng.integers(x0 + 10, min(w, x0 + 300)))
    counts, pos = [], 0
    for x in range(x0, x1):
        a = int(rng.integers(0, h // 2))
        b = int(rng.integers(a + 1, h))
        start = x * h + a
        counts += [start - pos, b - a]
        pos = x * h + b
    counts.append(h * w - pos)
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("imagedir")
    ap.add_argument("--images", type=int, default=82783)
    ap.add_argument("--anns", type=int, default=604907)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    n_img = a.images
    per = rng.geometric(1 / (1 + a.anns / n_img), n_img) - 1
    per = np.minimum(per, 90)
    per = np.round(per * a.anns / max(per.sum(), 1)).astype(int)
    # polygon texts drawn from a pool (formatting 20 million numbers one
    # by one in Python takes an hour); each fits the smallest image
    pool = []
    for _ in range(20000):
        n = int(rng.integers(6, 61))
        cx, cy = rng.uniform(0, 480), rng.uniform(0, 480)
        r = rng.uniform(5, 150)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rr = r * rng.uniform(0.5, 1, n)
        x = np.clip(cx + rr * np.cos(ang), 0, 480)
        y = np.clip(cy + rr * np.sin(ang), 0, 480)
        xy = np.stack([x, y], 1).reshape(-1)
        pool.append("[" + ", ".join("%.2f" % v for v in xy) + "]")
    sizes = []
    os.makedirs(a.imagedir, exist_ok=True)
    with open(a.out, "w") as f:
        f.write('{"info": {"description": "sfc bench-coco, generated"}, '
                '"images": [')
        for i in range(n_img):
            short = int(rng.integers(480, 641))
            h, w = (short, 640) if rng.random() < 0.7 else (640, short)
            sizes.append((h, w))
            name = "COCO_train2014_%012d.jpg" % (i + 1)
            open(os.path.join(a.imagedir, name), "w").close()
            f.write('%s{"license": 1, "file_name": "%s", "coco_url": '
                    '"http://x/%s", "height": %d, "width": %d, '
                    '"date_captured": "2013-11-14 11:18:45", "id": %d}'
                    % ("," if i else "", name, name, h, w, i + 1))
        f.write('], "licenses": [{"url": "x", "id": 1, "name": "x"}], '
                '"annotations": [')
        aid = 0
        for i in range(n_img):
            h, w = sizes[i]
            for _ in range(per[i]):
                aid += 1
                cat = COCO_IDS[int(rng.integers(0, 80))]
                if rng.random() < 0.01:
                    seg = ('{"counts": [%s], "size": [%d, %d]}'
                           % (", ".join(map(str, crowd_rle(rng, h, w))),
                              h, w))
                    crowd = 1
                else:
                    polys = [pool[int(rng.integers(0, len(pool)))] for _ in
                             range(int(rng.integers(1, 4)) if
                                   rng.random() < 0.2 else 1)]
                    seg = "[" + ", ".join(polys) + "]"
                    crowd = 0
                f.write('%s{"segmentation": %s, "area": 1000.0, '
                        '"iscrowd": %d, "image_id": %d, "bbox": [1.0, 2.0, '
                        '3.0, 4.0], "category_id": %d, "id": %d}'
                        % ("," if aid > 1 else "", seg, crowd, i + 1, cat,
                           aid))
        f.write('], "categories": [')
        f.write(", ".join('{"supercategory": "s", "id": %d, "name": "c%d"}'
                          % (c, c) for c in COCO_IDS))
        f.write("]}")
    print("images", n_img, "annotations", aid)


if __name__ == "__main__":
    main()
