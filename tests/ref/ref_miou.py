#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/metrics.c and sfc-miou.

Confusion and IoU re-express chainercv's
  chainercv.evaluations.calc_semantic_segmentation_confusion
  chainercv.evaluations.calc_semantic_segmentation_iou
(chainercv is not installed) from their documented definition: per image,
np.bincount over n_class * gt + pred of the pixels with gt >= 0, the
matrix grown to max label + 1; IoU = diag / (rowsum + colsum - diag); the
mean is np.nanmean. As in IRN's eval_sem_seg.py (sfc-reference.md §8) the
ground truth is read as int32 with 255 -> -1 and predicted 255 -> 0.

The IRN background-threshold rule follows IRN's step/make_cam.py (per-
channel max-normalisation, torch, + 1e-5) and step/eval_cam.py (np.pad a
constant threshold channel in front, np.argmax, map through keys).

Usage:
  ref_miou.py --golden            write tests/golden/miou/ (fixed seeds)
  ref_miou.py --out DIR --seed S  write fresh cases into DIR

Float64 results are stored bit-exactly as int64 arrays (name_bits,
ndarray.view(np.int64)) because lib/npy reads no float64.
"""
import argparse
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

K = 21
VOC_NAMES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle",
             "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
             "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
             "train", "tvmonitor"]


# ---- chainercv, re-expressed ------------------------------------------------

def calc_semantic_segmentation_confusion(pred_labels, gt_labels):
    """Mirror of chainercv.evaluations.calc_semantic_segmentation_confusion."""
    n_class = 0
    confusion = np.zeros((n_class, n_class), dtype=np.int64)
    for pred_label, gt_label in zip(pred_labels, gt_labels):
        assert pred_label.ndim == 2 and gt_label.ndim == 2
        assert pred_label.shape == gt_label.shape
        pred_label = pred_label.flatten()
        gt_label = gt_label.flatten()
        lb_max = np.max((pred_label, gt_label))
        if lb_max >= n_class:
            grown = np.zeros((lb_max + 1, lb_max + 1), dtype=np.int64)
            grown[0:n_class, 0:n_class] = confusion
            n_class = lb_max + 1
            confusion = grown
        mask = gt_label >= 0
        confusion += np.bincount(
            n_class * gt_label[mask].astype(int) + pred_label[mask],
            minlength=n_class ** 2).reshape((n_class, n_class))
    return confusion


def calc_semantic_segmentation_iou(confusion):
    """Mirror of chainercv.evaluations.calc_semantic_segmentation_iou."""
    with np.errstate(divide="ignore", invalid="ignore"):
        den = confusion.sum(axis=1) + confusion.sum(axis=0) - np.diag(confusion)
        return np.diag(confusion) / den


def confusion_k(preds_u8, gts_u8, k):
    """The eval_sem_seg.py way: gt int32 with 255 -> -1, pred 255 -> 0,
    then the chainercv confusion cut (or padded) to k x k."""
    preds, gts = [], []
    for p, g in zip(preds_u8, gts_u8):
        p = p.astype(np.int64)
        p[p == 255] = 0
        g = g.astype(np.int32)
        g[g == 255] = -1
        preds.append(p)
        gts.append(g)
    c = calc_semantic_segmentation_confusion(preds, gts)
    out = np.zeros((k, k), dtype=np.int64)
    n = min(k, c.shape[0])
    out[:n, :n] = c[:n, :n]
    assert c[n:, :].sum() == 0 and c[:, n:].sum() == 0
    return out


def scores(conf):
    iou = calc_semantic_segmentation_iou(conf)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.diag(conf) / conf.sum(axis=0)
        rec = np.diag(conf) / conf.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nanmean of all-NaN
        miou = np.nanmean(iou)
    return iou, prec, rec, np.float64(miou)


def groups_of(counts):
    """Head/middle/tail of the foreground classes: rank by count, largest
    first, ties by class id; sizes (n+2)//3, (n+1)//3, n//3."""
    k = len(counts)
    n = k - 1
    order = sorted(range(1, k), key=lambda c: (-int(counts[c]), c))
    g = np.full(k, -1, dtype=np.int64)
    nh, nm = (n + 2) // 3, (n + 1) // 3
    for i, c in enumerate(order):
        g[c] = 0 if i < nh else (1 if i < nh + nm else 2)
    return g


def group_means(iou, g):
    out = []
    for j in range(3):
        v = iou[g == j]
        v = v[~np.isnan(v)]
        out.append(v.mean() if len(v) else np.nan)
    return np.array(out, dtype=np.float64)


def bits(x):
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64)).view(np.int64)


# ---- random label maps ------------------------------------------------------

def random_maps(rng, n_img, k):
    """Label maps with 255s, classes absent from both maps, classes only
    predicted and classes only in the ground truth."""
    present = rng.permutation(np.arange(1, k))[: rng.integers(5, k - 3)]
    gt_only = present[:2]
    pred_only = present[2:4]
    shared = present[4:]
    preds, gts = [], []
    for _ in range(n_img):
        h, w = rng.integers(5, 40), rng.integers(5, 40)
        gcl = np.concatenate([[0], gt_only, shared])
        pcl = np.concatenate([[0], pred_only, shared])
        g = rng.choice(gcl, size=(h, w)).astype(np.uint8)
        # predictions agree with gt most of the time
        p = np.where(rng.random((h, w)) < 0.6, g,
                     rng.choice(pcl, size=(h, w))).astype(np.uint8)
        p[np.isin(p, gt_only)] = 0
        g[rng.random((h, w)) < 0.1] = 255
        p[rng.random((h, w)) < 0.05] = 255
        preds.append(p)
        gts.append(g)
    return preds, gts


def conf_case(rng):
    n_img = int(rng.integers(1, 5))
    preds, gts = random_maps(rng, n_img, K)
    conf = confusion_k(preds, gts, K)
    iou, prec, rec, miou = scores(conf)
    # class counts with deliberate ties
    counts = rng.integers(0, 6, size=K).astype(np.int64) * 10
    g = groups_of(counts)
    d = {"K": np.array(K, dtype=np.int64), "n_img": np.array(n_img, np.int64),
         "confusion": conf, "iou_bits": bits(iou),
         "precision_bits": bits(prec), "recall_bits": bits(rec),
         "miou_bits": bits([miou]), "counts": counts, "groups": g,
         "group_bits": bits(group_means(iou, g))}
    for i in range(n_img):
        d["pred%d" % i] = preds[i]
        d["gt%d" % i] = gts[i]
    return d


def cam_labels_sfc(keys, score):
    return keys[np.argmax(score, axis=0)].astype(np.uint8)


def irn_normalised(score):
    """IRN make_cam.py: highres_cam /= adaptive_max_pool2d(., (1, 1)) + 1e-5
    on the foreground channels."""
    t = torch.from_numpy(np.ascontiguousarray(score[1:]))
    t = t / (F.adaptive_max_pool2d(t, (1, 1)) + 1e-5)
    return t.numpy()


def cam_labels_irn(keys, score, thres):
    """IRN eval_cam.py with the stored background channel dropped."""
    cams = np.pad(irn_normalised(score), ((1, 0), (0, 0), (0, 0)),
                  mode="constant", constant_values=thres)
    return keys[np.argmax(cams, axis=0)].astype(np.uint8)


def random_cam(rng, h, w):
    keys = np.concatenate([[0], np.sort(rng.choice(np.arange(1, K),
                          size=rng.integers(0, 4), replace=False))])
    keys = keys.astype(np.int64)
    kk = len(keys)
    cam_w = (rng.random((kk, h, w)) ** 2).astype(np.float32)
    cam_p = (rng.random((kk, h, w)) ** 2).astype(np.float32)
    # SFC's storage: background + 0.4, foreground x 2 (sfc-reference.md §3)
    cam_w[0] += np.float32(0.4)
    cam_w[1:] *= np.float32(2)
    cam_p[0] += np.float32(0.4)
    cam_p[1:] *= np.float32(2)
    return keys, cam_w, cam_p


def cam_case(rng, ww, wp):
    h, w = int(rng.integers(4, 20)), int(rng.integers(4, 20))
    keys, cam_w, cam_p = random_cam(rng, h, w)
    score = np.float32(ww) * cam_w + np.float32(wp) * cam_p
    if ww == 0:
        score = np.float32(wp) * cam_p
    if wp == 0:
        score = np.float32(ww) * cam_w
    gt = rng.choice(np.concatenate([keys, rng.integers(1, K, 2)]),
                    size=(h, w)).astype(np.uint8)
    gt[rng.random((h, w)) < 0.1] = 255
    thr = np.array([0.05 + i * 0.05 for i in range(12)])  # 0.05:0.60:0.05
    sweep = np.stack([confusion_k([cam_labels_irn(keys, score, t)], [gt], K)
                      for t in thr])
    return {"keys": keys, "cam_w": cam_w, "cam_p": cam_p,
            "weights_bits": bits([ww, wp]), "gt": gt,
            "label_sfc": cam_labels_sfc(keys, score),
            "label_irn": cam_labels_irn(keys, score, 0.15),
            "thr_bits": bits(thr), "sweep_conf": sweep}


# ---- CLI fixture --------------------------------------------------------------

def voc_palette():
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    return pal


def save_png(path, lab, gray=False):
    if gray:
        Image.fromarray(lab, mode="L").save(path)
    else:
        im = Image.fromarray(lab, mode="P")
        im.putpalette(voc_palette().flatten().tolist())
        im.save(path)


def write_expect(path, conf, names, counts):
    iou, prec, rec, miou = scores(conf)
    g = groups_of(counts)
    gm = group_means(iou, g)
    with open(path, "w") as f:
        for c in range(len(names)):
            f.write("%d %s %.17g %.17g %.17g %d %d\n" % (
                c, names[c], iou[c], prec[c], rec[c], conf[c].sum(),
                conf[:, c].sum()))
        f.write("mIoU %.17g\n" % miou)
        f.write("fg_mIoU %.17g\n" % np.nanmean(iou[1:]))
        for j, nm in enumerate(["head", "middle", "tail"]):
            f.write("%s %.17g\n" % (nm, gm[j]))


def cli_fixture(rng, d):
    """Five images: gt/pred PNGs (palette and grayscale), CAM npz, a list,
    the class names, images.txt (sizes and image-level labels) and the
    expected numbers (gt image counts rank the groups)."""
    for sub in ("gt", "pred", "cam"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    ids = ["img_%03d" % i for i in range(5)]
    preds, gts, cams = [], [], []
    for i, name in enumerate(ids):
        h, w = int(rng.integers(8, 24)), int(rng.integers(8, 24))
        keys, cam_w, cam_p = random_cam(rng, h, w)
        # gt: mostly the CAM's own classes, plus 255 borders
        g = rng.choice(keys, size=(h, w)).astype(np.uint8)
        g[0, :] = 255
        noise = np.concatenate([keys, rng.integers(1, K, 2)])
        p = np.where(rng.random((h, w)) < 0.7, g,
                     rng.choice(noise, size=(h, w))).astype(np.uint8)
        p[rng.random((h, w)) < 0.05] = 255
        save_png(os.path.join(d, "gt", name + ".png"), g, gray=(i == 1))
        save_png(os.path.join(d, "pred", name + ".png"), p, gray=(i == 2))
        np.savez(os.path.join(d, "cam", name + ".npz"), keys=keys,
                 cam_w=cam_w, cam_p=cam_p)
        preds.append(p)
        gts.append(g)
        cams.append((keys, cam_w, cam_p))
    with open(os.path.join(d, "list.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")
    with open(os.path.join(d, "classes.txt"), "w") as f:
        f.write("\n".join(VOC_NAMES) + "\n")
    with open(os.path.join(d, "images.txt"), "w") as f:
        # id, width, height, then the foreground classes of its gt (the
        # image-level labels a db would hold)
        for name, g in zip(ids, gts):
            fg = [int(c) for c in np.unique(g) if 0 < c < K]
            f.write(" ".join([name, str(g.shape[1]), str(g.shape[0])] +
                             [str(c) for c in fg]) + "\n")
    counts = np.zeros(K, dtype=np.int64)  # image-level counts of the gt
    for g in gts:
        for c in np.unique(g):
            if c < K:
                counts[c] += 1
    write_expect(os.path.join(d, "expect-pred.txt"),
                 confusion_k(preds, gts, K), VOC_NAMES, counts)
    variants = {"cam_w": (1.0, 0.0), "cam_p": (0.0, 1.0), "sum": (1.0, 0.7)}
    for mname, (ww, wp) in variants.items():
        labs = []
        for keys, cam_w, cam_p in cams:
            s = (np.float32(ww) * cam_w + np.float32(wp) * cam_p
                 if ww and wp else (np.float32(ww) * cam_w if ww
                                    else np.float32(wp) * cam_p))
            labs.append(cam_labels_sfc(keys, s))
        write_expect(os.path.join(d, "expect-%s.txt" % mname),
                     confusion_k(labs, gts, K), VOC_NAMES, counts)
    # IRN sweep on the sum map: the whole curve
    thr = [0.05 + i * 0.05 for i in range(12)]
    with open(os.path.join(d, "expect-sweep.txt"), "w") as f:
        for t in thr:
            labs = []
            for keys, cam_w, cam_p in cams:
                s = np.float32(1.0) * cam_w + np.float32(0.7) * cam_p
                labs.append(cam_labels_irn(keys, s, t))
            f.write("%.17g %.17g\n" % (t, scores(confusion_k(labs, gts, K))[3]))


def write_cases(d, seed, n_conf=4, n_cam=4):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n_conf):
        np.savez(os.path.join(d, "conf-%d.npz" % i), **conf_case(rng))
    weights = [(1.0, 0.0), (0.0, 1.0), (1.0, 0.7), (1.0, 0.3)]
    for i in range(n_cam):
        ww, wp = weights[i % len(weights)]
        np.savez(os.path.join(d, "cam-%d.npz" % i), **cam_case(rng, ww, wp))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cli", help="write the CLI fixture into this folder")
    a = ap.parse_args()
    if a.golden:
        here = os.path.dirname(os.path.abspath(__file__))
        g = os.path.join(here, "..", "golden", "miou")
        write_cases(g, 20261124)
        cli_fixture(np.random.default_rng(7), os.path.join(g, "cli"))
    elif a.out:
        write_cases(a.out, a.seed)
        if a.cli:
            cli_fixture(np.random.default_rng(a.seed), a.cli)
    elif a.cli:
        cli_fixture(np.random.default_rng(a.seed), a.cli)
    else:
        ap.error("need --golden or --out DIR")


if __name__ == "__main__":
    main()
