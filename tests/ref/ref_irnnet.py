#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/irnnet.c: IRN's edge branch and affinity loss.

Re-expresses sfc-reference.md §6.3 in PyTorch (autograd gives the
gradients): five side branches conv1x1 (no bias) -> GroupNorm(4, 32) ->
bilinear upsampling (align_corners False, scale factors 1, 1, 2, 4, 4) ->
ReLU, cropped to branch 2's size and concatenated, a 1x1 fusion conv with
bias; then e = sigmoid(logit), aff = 1 - max of e over each path (path
index of §6.2 from ref_irn.py), and L = (Lpos + Lneg) / 2 with the batch
sums of §6.3. Random features stand in for the backbone's stage outputs
(non-negative, as after a ReLU), so no ResNet is needed.

Each case is one .npz: x1..x5, labels (N, h, w) uint8, nclass, every head
parameter under its state_dict key, logit (N, h, w), loss, lpos, lneg and
grad.<key> for every parameter.

Kinks: where a ReLU input of the head lies within KINK_DELTA of 0, a
float32 computation (the C code's, or this script's) may land on either
side, and the side decides whether that unit passes its gradient on: a
fresh case once moved fc_edge1's weight gradient by 1-2 % that way, and
flipping two units within 1e-6 of 0 moved fc_edge2's by 7e-4 (seed 1005).
A draw is used only if flipping every unit within KINK_DELTA at once
moves no parameter's gradient by more than KINK_SHIFT of its largest
value (in float64), a tenth of test-irnnet's 1e-3 bar; else the case is
drawn again. KINK_DELTA is ten times the float32 error of those inputs
(the logits made from them agree with the C code to ~1e-6 of their
largest value).

--cli-fixture DIR copies a few toy images and masks (from sfc-toygen's
folder given as --toy) as PNG images and IR labels and writes CAM files
for them (smoothed one-hot masks plus noise), the inputs of the sfc-irn
CLI tests; these are fixtures, not oracle values.

Usage: ref_irnnet.py --out DIR [--seed S] | --golden
       ref_irnnet.py --cli-fixture DIR --toy TOYDIR [--seed S]
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_irn import directions, src_grid  # noqa: E402

UP = (1, 1, 2, 4, 4)
EPS = 1e-5


def edge_to_affinity(e, r):
    """e (h, w) -> aff (ndir, nsrc) = 1 - max over each direction's path."""
    dirs, paths = directions(r)
    h, w = e.shape
    ys, xs = src_grid(r, h, w)
    ys, xs = torch.from_numpy(ys), torch.from_numpy(xs)
    rows = []
    for pts in paths:
        vals = torch.stack([e[ys + py, xs + px] for py, px in pts])
        rows.append(1 - vals.max(dim=0).values)
    return torch.stack(rows)


def affinity_labels(L, r, nclass):
    dirs, _ = directions(r)
    ys, xs = src_grid(r, *L.shape)
    f = L[ys, xs].astype(np.int64)
    bg, fg, ng = [], [], []
    for dy, dx in dirs:
        t = L[ys + dy, xs + dx].astype(np.int64)
        valid = (f < nclass) & (t < nclass)
        bg.append(valid & (f == t) & (f == 0))
        fg.append(valid & (f == t) & (f > 0))
        ng.append(valid & (f != t))
    cv = lambda a: torch.from_numpy(np.array(a, np.float32))
    return cv(bg), cv(fg), cv(ng)


KINK_DELTA, KINK_SHIFT = 1e-5, 1e-4


def head(xs, p, flip_below=0):
    """The edge head; with flip_below, the ReLU units whose input is
    within flip_below of 0 take the other side of the kink."""
    outs = []
    for i in range(5):
        k = "fc_edge%d" % (i + 1)
        y = F.conv2d(xs[i], p[k + ".0.weight"])
        y = F.group_norm(y, 4, p[k + ".1.weight"], p[k + ".1.bias"], 1e-5)
        if UP[i] > 1:
            y = F.interpolate(y, scale_factor=UP[i], mode="bilinear",
                              align_corners=False)
        if flip_below:
            m = (y > 0).to(y.dtype)
            outs.append(y * torch.where(y.detach().abs() < flip_below,
                                        1 - m, m))
        else:
            outs.append(F.relu(y))
    h, w = outs[1].shape[2:]
    cat = torch.cat([o[:, :, :h, :w] for o in outs], dim=1)
    return F.conv2d(cat, p["fc_edge6.weight"], p["fc_edge6.bias"])


def loss_fn(logit, labels, r, nclass):
    N = logit.shape[0]
    aff, lab = [], []
    for n in range(N):
        aff.append(edge_to_affinity(torch.sigmoid(logit[n, 0]), r))
        lab.append(affinity_labels(labels[n], r, nclass))
    aff = torch.stack(aff)
    bg = torch.stack([t[0] for t in lab])
    fg = torch.stack([t[1] for t in lab])
    ng = torch.stack([t[2] for t in lab])
    pos = -torch.log(aff + EPS)
    neg = -torch.log(1 + EPS - aff)
    lpos = 0.5 * ((bg * pos).sum() / (bg.sum() + EPS) +
                  (fg * pos).sum() / (fg.sum() + EPS))
    lneg = (ng * neg).sum() / (ng.sum() + EPS)
    return (lpos + lneg) / 2, lpos, lneg


def kink_shift(xs, p, labels, r, nclass):
    """max over the parameters of max |g' - g| / max |g|, in float64: g
    the gradients, g' those with the ReLU units within KINK_DELTA of 0
    flipped (see the module's comment)."""
    g = []
    for flip in (0, KINK_DELTA):
        tp = {k: torch.as_tensor(v).detach().double().requires_grad_()
              for k, v in p.items()}
        logit = head([torch.as_tensor(x).double() for x in xs], tp, flip)
        loss_fn(logit, labels, r, nclass)[0].backward()
        g.append({k: v.grad for k, v in tp.items()})
    return max(((g[1][k] - g[0][k]).abs().max() /
                g[0][k].abs().max().clamp(min=1e-30)).item() for k in g[0])


def well_conditioned(draw, what):
    """draw() until kink_shift of its (xs, p, labels, r, nclass, ...) is
    at most KINK_SHIFT; returns that draw."""
    for _ in range(50):
        d = draw()
        if kink_shift(*d[:5]) <= KINK_SHIFT:
            return d
    raise SystemExit("%s: no draw away from the ReLU kinks in 50" % what)


def make_case(path, rng, N, chans, h, w, nclass, r=10):
    xs, p, labels, _, _ = well_conditioned(
        lambda: draw_case(rng, N, chans, h, w, nclass, r), path)
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in p.items()}
    logit = head([torch.from_numpy(x) for x in xs], tp)
    loss, lpos, lneg = loss_fn(logit, labels, r, nclass)
    loss.backward()
    out = {"x%d" % (i + 1): x for i, x in enumerate(xs)}
    out.update(p)
    out["labels"] = labels
    out["nclass"] = np.array(nclass, np.int64)
    out["radius"] = np.array(r, np.int64)
    out["logit"] = logit.detach().numpy()[:, 0]
    out["loss"] = np.array(loss.item(), np.float32)
    out["lpos"] = np.array(lpos.item(), np.float32)
    out["lneg"] = np.array(lneg.item(), np.float32)
    for k, v in tp.items():
        out["grad." + k] = v.grad.numpy()
    np.savez_compressed(path, **out)


def draw_case(rng, N, chans, h, w, nclass, r):
    sizes = [(h, w), (h, w)]
    for _ in range(3):
        sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
    sizes[4] = sizes[3]  # layer4 keeps layer3's stride
    xs = [np.maximum(rng.standard_normal((N, c, a, b)), 0).astype(np.float32)
          for c, (a, b) in zip(chans, sizes)]
    p = {}
    for i, c in enumerate(chans):
        k = "fc_edge%d" % (i + 1)
        p[k + ".0.weight"] = (rng.standard_normal((32, c, 1, 1)) /
                              np.sqrt(c)).astype(np.float32)
        p[k + ".1.weight"] = (1 + 0.2 * rng.standard_normal(32)).astype(
            np.float32)
        p[k + ".1.bias"] = (0.2 * rng.standard_normal(32)).astype(np.float32)
    p["fc_edge6.weight"] = (rng.standard_normal((1, 160, 1, 1)) /
                            np.sqrt(160)).astype(np.float32)
    p["fc_edge6.bias"] = (0.1 * rng.standard_normal(1)).astype(np.float32)
    # blocky labels (regions of 4x4 pixels) with ignored and invalid values
    blocks = rng.integers(0, nclass, (N, (h + 3) // 4, (w + 3) // 4))
    # every case has background pairs, foreground pairs and negatives
    # among the source pixels (rows < h - 9, columns 9 .. w - 10 at radius
    # 10): background blocks over pixel rows 0-3, class 1 under them (rows
    # 4-7), both over columns 8-15
    blocks[0, 0, 2:4] = 0
    blocks[0, 1, 2:4] = 1
    labels = np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)[:, :h, :w]
    labels = labels.astype(np.uint8)
    labels[rng.random((N, h, w)) < 0.05] = 255
    labels[rng.random((N, h, w)) < 0.02] = nclass  # >= nclass: invalid
    return xs, p, labels, r, nclass


MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def aug_case(path, rng, H, W, crop):
    """One training sample of §6.1 with PIL, for a random draw."""
    from PIL import Image
    img = rng.integers(0, 256, (H, W, 3)).astype(np.uint8)
    img = np.clip(img.astype(np.int64) // 2 + 64 + np.arange(W)[None, :, None],
                  0, 255).astype(np.uint8)  # some structure for bicubic
    lab = rng.integers(0, 4, (H, W)).astype(np.uint8)
    lab[rng.random((H, W)) < 0.1] = 255
    scale = rng.uniform(0.5, 1.5)
    sh, sw = int(np.round(H * scale)), int(np.round(W * scale))
    flip = int(rng.random() < 0.5)
    box = []
    for n in (sh, sw):
        ln = min(n, crop)
        if n > crop:
            box += [int(rng.integers(0, n - crop + 1)), 0, ln]
        else:
            box += [0, int(rng.integers(0, crop - n + 1)), ln]
    sy, dy, ly, sx, dx, lx = box
    ri = np.asarray(Image.fromarray(img).resize((sw, sh), Image.BICUBIC))
    rl = np.asarray(Image.fromarray(lab).resize((sw, sh), Image.NEAREST))
    x = (ri.astype(np.float32) / 255.0 - MEAN) / STD
    if flip:
        x, rl = x[:, ::-1], rl[:, ::-1]
    cx = np.zeros((crop, crop, 3), np.float32)
    cl = np.full((crop, crop), 255, np.uint8)
    cx[dy:dy + ly, dx:dx + lx] = x[sy:sy + ly, sx:sx + lx]
    cl[dy:dy + ly, dx:dx + lx] = rl[sy:sy + ly, sx:sx + lx]
    g = int(np.round(crop * 0.25))
    grid = np.asarray(Image.fromarray(cl).resize((g, g), Image.NEAREST))
    np.savez_compressed(path, img=img, lab=lab,
                        draw=np.array([sh, sw, flip, sy, dy, sx, dx, ly, lx,
                                       crop], np.int64),
                        x=np.ascontiguousarray(cx.transpose(2, 0, 1)),
                        grid=grid)


def net_case(path_st, path_npz, seed):
    """The whole net: a tiny torchvision-built ResNet (width 4, one block
    per layer, strides 2, 2, 2, 1, eval-mode BatchNorm with random
    statistics, fully frozen) under IRN's edge head, saved as sfc-irn
    writes its model (head keys, backbone under 'resnet50.')."""
    from ref_resnet import Tiny, layer4_stride1, randomise, save_safetensors
    g = torch.Generator().manual_seed(seed)
    m = Tiny([1, 1, 1, 1], 4, [1, 2, 2, 1], [0, 0, 0, 0])
    randomise(m, g)
    m.eval()
    rng = np.random.default_rng(seed)
    chans = (4, 16, 32, 64, 128)

    def draw():
        p = {}
        for i, c in enumerate(chans):
            k = "fc_edge%d" % (i + 1)
            p[k + ".0.weight"] = torch.from_numpy(
                (rng.standard_normal((32, c, 1, 1)) /
                 np.sqrt(c)).astype(np.float32))
            p[k + ".1.weight"] = torch.from_numpy(
                (1 + 0.2 * rng.standard_normal(32)).astype(np.float32))
            p[k + ".1.bias"] = torch.from_numpy(
                (0.2 * rng.standard_normal(32)).astype(np.float32))
        p["fc_edge6.weight"] = torch.from_numpy(
            (rng.standard_normal((1, 160, 1, 1)) /
             np.sqrt(160)).astype(np.float32))
        p["fc_edge6.bias"] = torch.from_numpy(
            (0.1 * rng.standard_normal(1)).astype(np.float32))
        N, H, W = 2, 80, 96
        x = torch.from_numpy(
            rng.standard_normal((N, 3, H, W)).astype(np.float32))
        h, w = (H + 3) // 4, (W + 3) // 4
        blocks = rng.integers(0, 3, (N, (h + 3) // 4, (w + 3) // 4))
        labels = np.repeat(np.repeat(blocks, 4, axis=1), 4, axis=2)[:, :h, :w]
        labels = labels.astype(np.uint8)
        labels[rng.random((N, h, w)) < 0.05] = 255
        feats = []
        with torch.no_grad():
            y = m.maxpool(m.relu(m.bn1(m.conv1(x))))
            feats.append(y)
            for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
                y = layer(y)
                feats.append(y)
        return feats, p, labels, 10, 3, x

    feats, p, labels, _, _, x = well_conditioned(draw, path_npz)
    for v in p.values():
        v.requires_grad_(True)
    logit = head(feats, p)
    loss, lpos, lneg = loss_fn(logit, labels, 10, 3)
    loss.backward()
    tensors = {k: v.detach().numpy() for k, v in p.items()}
    for k, v in m.state_dict().items():
        if not k.startswith("fc.") and not k.endswith("num_batches_tracked"):
            tensors["resnet50." + k] = v.numpy()
    save_safetensors(path_st, tensors,
                     {"sfc.model": "irn-edge", "sfc.depth": "50",
                      "sfc.width": "4"})
    out = {"x": x.numpy(), "labels": labels, "logit": logit.detach().numpy()[:, 0],
           "loss": np.array(loss.item(), np.float32),
           "lpos": np.array(lpos.item(), np.float32),
           "lneg": np.array(lneg.item(), np.float32)}
    for k, v in p.items():
        out["grad." + k] = v.grad.numpy()
    np.savez_compressed(path_npz, **out)


def make_cases(out, seed):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    make_case(os.path.join(out, "head_a.npz"), rng, 2, (8, 12, 16, 20, 24),
              20, 26, 3)
    make_case(os.path.join(out, "head_b.npz"), rng, 3, (4, 8, 8, 12, 16),
              17, 23, 4)
    net_case(os.path.join(out, "net.safetensors"),
             os.path.join(out, "net.npz"), seed + 1)
    # PIL nearest index maps for every n -> m in 1..48 (rows of a 1 x n
    # ramp resized to 1 x m, then the same as columns), concatenated
    from PIL import Image
    maps = []
    for n in range(1, 49):
        ramp = np.arange(n, dtype=np.uint8)
        for m in range(1, 49):
            r = np.asarray(Image.fromarray(ramp[None, :]).resize(
                (m, 1), Image.NEAREST))[0]
            c = np.asarray(Image.fromarray(ramp[:, None]).resize(
                (1, m), Image.NEAREST))[:, 0]
            maps += [r, c]
    np.savez_compressed(os.path.join(out, "nearest.npz"),
                        maps=np.concatenate(maps))
    for k, (H, W, crop) in enumerate(((37, 50, 32), (30, 24, 40),
                                      (45, 41, 36), (20, 60, 28))):
        aug_case(os.path.join(out, "aug_%d.npz" % k), rng, H, W, crop)


def cli_fixture(out, toy, seed, n=4):
    from PIL import Image
    rng = np.random.default_rng(seed)
    for sub in ("images", "labels", "cam"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    ids = [l.split()[0] for l in
           open(os.path.join(toy, "ImageSets", "Segmentation", "train.txt"))]
    ids = ids[:n]
    for i in ids:
        img = Image.open(os.path.join(toy, "JPEGImages", i + ".jpg"))
        img.convert("RGB").save(os.path.join(out, "images", i + ".png"))
        m = np.array(Image.open(os.path.join(toy, "SegmentationClass",
                                             i + ".png")))
        Image.fromarray(m).save(os.path.join(out, "labels", i + ".png"))
        keys = [0] + sorted(int(c) for c in np.unique(m) if 0 < c < 255)
        oh = np.stack([(m == k).astype(np.float32) for k in keys])
        t = torch.from_numpy(oh)[None]
        cam = F.avg_pool2d(t, 9, 1, 4, count_include_pad=False)[0].numpy()
        cam[0] *= 0.5  # weak background, strong foreground (as SFC's x2)
        cam[1:] *= 2
        cam = np.clip(cam + 0.1 * rng.random(cam.shape), 0, None)
        cam_p = np.clip(cam + 0.1 * rng.random(cam.shape), 0, None)
        cam, cam_p = np.round(cam * 64) / 64, np.round(cam_p * 64) / 64
        np.savez_compressed(os.path.join(out, "cam", i + ".npz"),
                            keys=np.array(keys, np.int64),
                            cam_w=cam.astype(np.float32),
                            cam_p=cam_p.astype(np.float32))
    with open(os.path.join(out, "list.txt"), "w") as f:
        f.write("".join(i + "\n" for i in ids))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--golden", action="store_true")
    ap.add_argument("--cli-fixture")
    ap.add_argument("--toy")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.cli_fixture:
        cli_fixture(a.cli_fixture, a.toy, a.seed)
    elif a.golden:
        here = os.path.dirname(os.path.abspath(__file__))
        make_cases(os.path.join(here, "..", "golden", "irnnet"), 20261124)
    elif a.out:
        make_cases(a.out, a.seed)
    else:
        ap.error("give --out DIR or --golden")


if __name__ == "__main__":
    main()
