#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for sfc-ingest: PIL writes a small VOC-layout folder with random
masks, and numpy reads the masks back to give the expected image-level
labels and class counts.

  ref_ingest.py --golden              3 images into tests/golden/ingest/voc/
  ref_ingest.py --out DIR --seed S    a fresh folder (8 images) into DIR
  ref_ingest.py --expect DIR --to D   expected_labels.txt and
      expected_counts.txt of any VOC folder DIR (its classes.txt, lists
      and SegmentationClass masks, read with PIL), written into D

The folder: JPEGImages/<id>.jpg (one .png), SegmentationClass/<id>.png
(palette PNGs with the VOC colour map, one grayscale), Annotations/<id>.xml
(one <object> per class, a person with a <part>), ImageSets/Segmentation/
train.txt (VOC style), val.txt (SFC's "/JPEGImages/x.jpg /Seg.../x.png"
style), trainval.txt; labels.txt (ids then class names or ids); and the
expectations:
  expected_images.txt   id width height            (PIL's sizes)
  expected_labels.txt   id class...                (numpy: classes in the mask)
  expected_counts.txt   split class count          (every split, class 1..20)
  bad/unknown_id.png    the first image's mask with a pixel of value 30
  bad/wrong_size.png    a mask one pixel wider than the first image
"""
import argparse
import os

import numpy as np
from PIL import Image

VOC = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
       "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
       "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def voc_palette():
    # VOC devkit colour map: bit k of the id's octal digits -> bit 7-k
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c = i
        r = g = b = 0
        for k in range(8):
            r |= ((c >> 0) & 1) << (7 - k)
            g |= ((c >> 1) & 1) << (7 - k)
            b |= ((c >> 2) & 1) << (7 - k)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def save_mask(path, m, gray):
    if gray:
        Image.fromarray(m, "L").save(path)
    else:
        im = Image.fromarray(m, "P")
        im.putpalette(voc_palette().reshape(-1).tolist())
        im.save(path)


def make(out, n, seed):
    rng = np.random.default_rng(seed)
    d = {k: os.path.join(out, k) for k in
         ("JPEGImages", "SegmentationClass", "Annotations",
          "ImageSets/Segmentation", "bad")}
    for p in d.values():
        os.makedirs(p, exist_ok=True)
    ids = ["2007_%06d" % (k * 7 + 3) for k in range(n)]
    sizes, labels = {}, {}
    for k, i in enumerate(ids):
        h, w = int(rng.integers(12, 40)), int(rng.integers(12, 40))
        ncls = int(rng.integers(1, 4))
        cls = sorted(set(int(c) for c in rng.integers(1, 21, ncls)))
        if k == 0:
            cls = sorted(set(cls) | {15})  # a person, for the XML part
        m = np.zeros((h, w), np.uint8)
        for c in cls:  # a rectangle per class, drawn in order (may overlap)
            y0, x0 = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
            m[y0:y0 + 4 + int(rng.integers(0, 6)),
              x0:x0 + 4 + int(rng.integers(0, 6))] = c
        m[0, :] = np.where(m[0, :] > 0, 255, m[0, :])  # some ignore pixels
        save_mask(os.path.join(d["SegmentationClass"], i + ".png"), m,
                  gray=(k == n - 1))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        ext = "png" if k == 1 else "jpg"
        Image.fromarray(img, "RGB").save(os.path.join(d["JPEGImages"],
                                                      i + "." + ext))
        # read back with PIL: the expectations come from the files
        back = np.array(Image.open(os.path.join(d["SegmentationClass"],
                                                i + ".png")))
        present = sorted(int(v) for v in np.unique(back) if 0 < v < 255)
        labels[i] = present
        sizes[i] = Image.open(os.path.join(d["JPEGImages"],
                                           i + "." + ext)).size
        objs = []
        for c in present:
            part = ("<part><name>head</name><bndbox><xmin>1</xmin></bndbox>"
                    "</part>" if c == 15 else "")
            # the part (whose <name> is not a class) comes first
            objs.append("\t<object>%s\n\t\t<name>%s</name>\n\t\t<pose>"
                        "Left</pose>\n\t</object>\n" % (part, VOC[c - 1]))
        with open(os.path.join(d["Annotations"], i + ".xml"), "w") as f:
            f.write("<annotation>\n\t<filename>%s.jpg</filename>\n%s"
                    "</annotation>\n" % (i, "".join(objs)))
    half = (n + 1) // 2
    splits = {"train": ids[:half], "val": ids[half:], "trainval": ids}
    with open(os.path.join(d["ImageSets/Segmentation"], "train.txt"), "w") as f:
        f.write("".join(i + "\n" for i in splits["train"]))
    with open(os.path.join(d["ImageSets/Segmentation"], "val.txt"), "w") as f:
        f.write("".join("/JPEGImages/%s.jpg /SegmentationClassAug/%s.png\n"
                        % (i, i) for i in splits["val"]))
    with open(os.path.join(d["ImageSets/Segmentation"], "trainval.txt"),
              "w") as f:
        f.write("".join(i + "\n" for i in splits["trainval"]))
    with open(os.path.join(out, "labels.txt"), "w") as f:
        for k, i in enumerate(ids):  # names, ids, and both mixed
            toks = [VOC[c - 1] if (k + j) % 2 else str(c)
                    for j, c in enumerate(labels[i])]
            f.write(i + " " + " ".join(toks) + "\n")
    with open(os.path.join(out, "expected_images.txt"), "w") as f:
        for i in ids:
            f.write("%s %d %d\n" % (i, sizes[i][0], sizes[i][1]))
    with open(os.path.join(out, "expected_labels.txt"), "w") as f:
        for i in sorted(ids):
            f.write(" ".join([i] + [str(c) for c in labels[i]]) + "\n")
    with open(os.path.join(out, "expected_counts.txt"), "w") as f:
        for s in sorted(splits):
            for c in range(1, 21):
                f.write("%s %d %d\n" % (s, c, sum(c in labels[i]
                                                  for i in splits[s])))
    first = np.array(Image.open(os.path.join(d["SegmentationClass"],
                                             ids[0] + ".png")))
    bad = first.copy()
    bad[-1, -1] = 30
    save_mask(os.path.join(d["bad"], "unknown_id.png"), bad, gray=False)
    wide = np.zeros((first.shape[0], first.shape[1] + 1), np.uint8)
    save_mask(os.path.join(d["bad"], "wrong_size.png"), wide, gray=False)


def expect(root, to):
    """The expectations of an existing folder, from its masks."""
    with open(os.path.join(root, "classes.txt")) as f:
        ncls = len([ln for ln in f if ln.strip()])
    ldir = os.path.join(root, "ImageSets", "Segmentation")
    splits = {}
    for name in sorted(os.listdir(ldir)):
        if name.endswith(".txt"):
            with open(os.path.join(ldir, name)) as f:
                splits[name[:-4]] = [ln.split()[0] for ln in f if ln.strip()]
    labels = {}
    for ids in splits.values():
        for i in ids:
            if i not in labels:
                m = np.array(Image.open(os.path.join(
                    root, "SegmentationClass", i + ".png")))
                labels[i] = sorted(int(v) for v in np.unique(m)
                                   if 0 < v < 255)
    os.makedirs(to, exist_ok=True)
    with open(os.path.join(to, "expected_labels.txt"), "w") as f:
        for i in sorted(labels):
            f.write(" ".join([i] + [str(c) for c in labels[i]]) + "\n")
    with open(os.path.join(to, "expected_counts.txt"), "w") as f:
        for s in sorted(splits):
            for c in range(1, ncls + 1):
                f.write("%s %d %d\n" % (s, c, sum(c in labels[i]
                                                  for i in splits[s])))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--golden", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=20240102)
    ap.add_argument("--expect")
    ap.add_argument("--to")
    a = ap.parse_args()
    if a.expect:
        expect(a.expect, a.to or a.expect)
    elif a.golden:
        here = os.path.dirname(os.path.abspath(__file__))
        make(os.path.join(here, "..", "golden", "ingest", "voc"), 3, 20240102)
    elif a.out:
        make(a.out, 8, a.seed)
    else:
        ap.error("give --golden or --out DIR")


if __name__ == "__main__":
    main()
