#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/ops.c: each op's forward and backward computed by PyTorch
(CPU, float32) on random inputs, written as .npy files plus a manifest.

  ref_ops.py --golden            fixed seed, small cases -> tests/golden/ops/
  ref_ops.py --out DIR --seed S  fresh cases (a few larger) -> DIR

manifest.txt has one line per case: "<op> <name> key=value ...". Tensors
are <name>.<tensor>.npy (float32, C order). Backward is autograd of
sum(y * dy) with a random dy (losses: dloss * loss)."""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


class Writer:
    def __init__(self, out):
        self.out = out
        self.lines = []
        os.makedirs(out, exist_ok=True)

    def case(self, op, name, params, tensors):
        kv = " ".join(f"{k}={v}" for k, v in params.items())
        self.lines.append(f"{op} {name} {kv}".rstrip())
        for t, v in tensors.items():
            a = v.detach().numpy() if torch.is_tensor(v) else np.asarray(v)
            np.save(os.path.join(self.out, f"{name}.{t}.npy"),
                    np.ascontiguousarray(a, dtype=np.float32))

    def close(self):
        with open(os.path.join(self.out, "manifest.txt"), "w") as f:
            f.write("\n".join(self.lines) + "\n")


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def grads(y, dy, *xs):
    gs = torch.autograd.grad((y * dy).sum(), xs, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(xs, gs)]


def groupnorm(w, name, N, C, G, H, W):
    x = leaf(torch.randn(N, C, H, W) * 2 + 0.5)
    ga = leaf(torch.rand(C) + 0.5)
    be = leaf(torch.randn(C))
    y = F.group_norm(x, G, ga, be, 1e-5)
    dy = torch.randn_like(y)
    dx, dga, dbe = grads(y, dy, x, ga, be)
    w.case("groupnorm", name, dict(N=N, C=C, G=G, H=H, W=W),
           dict(x=x, gamma=ga, beta=be, y=y, dy=dy, dx=dx, dgamma=dga,
                dbeta=dbe))


def resize(w, name, mode, N, C, H, W, size=None, scale=None, ac=0):
    x = leaf(torch.randn(N, C, H, W))
    kw = {} if mode == "nearest" else dict(align_corners=bool(ac))
    if scale is not None:
        y = F.interpolate(x, scale_factor=scale, mode=mode, **kw)
        sh, sw = scale
    else:
        y = F.interpolate(x, size=size, mode=mode, **kw)
        sh = sw = 0
    dy = torch.randn_like(y)
    (dx,) = grads(y, dy, x)
    p = dict(N=N, C=C, H=H, W=W, OH=y.shape[2], OW=y.shape[3], sh=sh, sw=sw)
    if mode == "bilinear":
        p["ac"] = ac
    w.case(mode, name, p, dict(x=x, y=y, dy=dy, dx=dx))


def l2norm(w, name, N, C, H, W):
    x = torch.randn(N, C, H, W)
    x[0, :, 1, 2] = 0  # a zero pixel: torch.norm's gradient there is 0
    x = leaf(x)
    y = x / (torch.norm(x, dim=1, keepdim=True) + 1e-5)
    dy = torch.randn_like(y)
    (dx,) = grads(y, dy, x)
    w.case("l2norm", name, dict(N=N, C=C, H=H, W=W),
           dict(x=x, y=y, dy=dy, dx=dx))


def cosine(w, name, N, K, D, H, W):
    x = torch.randn(N, D, H, W)
    p = torch.randn(N, K, D)
    p[0, K - 1] = 0            # zero prototype: cos 0, clamped norm
    p[N - 1, 0] *= 1e-9        # tiny prototype: norm clamped at eps
    x[N - 1, :, 0, 1] = 0      # zero pixel
    x, p = leaf(x), leaf(p)
    y = torch.cosine_similarity(x.unsqueeze(1), p[..., None, None], dim=2,
                                eps=1e-8)
    dy = torch.randn_like(y)
    dx, dp = grads(y, dy, x, p)
    w.case("cosine", name, dict(N=N, K=K, D=D, H=H, W=W),
           dict(x=x, p=p, y=y, dy=dy, dx=dx, dp=dp))


def pcm_affinity(w, name, N, C, HW):
    f = leaf(torch.randn(N, C, HW))
    a = F.relu(torch.matmul(f.transpose(1, 2), f))
    a = a / (torch.sum(a, dim=1, keepdim=True) + 1e-5)
    da = torch.randn_like(a)
    (df,) = grads(a, da, f)
    w.case("pcm_affinity", name, dict(N=N, C=C, HW=HW),
           dict(f=f, a=a, da=da, df=df))


def pcm_apply(w, name, N, K, HW):
    cam = leaf(torch.randn(N, K, HW))
    a = leaf(torch.rand(N, HW, HW))
    y = torch.matmul(cam, a)
    dy = torch.randn_like(y)
    dcam, da = grads(y, dy, cam, a)
    w.case("pcm_apply", name, dict(N=N, K=K, HW=HW),
           dict(cam=cam, a=a, y=y, dy=dy, dcam=dcam, da=da))


def proto(w, name, N, K, D, H, W):
    # seeds exactly as SFC's Net.prototype (argmax after bg * 0.3, one-hot,
    # times the valid mask)
    cam = torch.rand(N, K, H, W)
    cam[0, 2, 0, 0] = cam[0, 3, 0, 0] = 2.0  # a tie: first index wins
    valid = (torch.rand(N, K, 1, 1) > 0.3).float().expand(N, K, H, W)
    valid = valid.contiguous()
    nc = cam.clone()
    nc[:, 0] = nc[:, 0] * 0.3
    seeds = torch.zeros(N, H, W, K)
    seeds = seeds.scatter_(-1, nc.argmax(1).view(N, H, W, 1), 1)
    seeds = seeds.permute(0, 3, 1, 2).contiguous() * valid
    hie = leaf(torch.randn(N, D, H, W))
    crop = seeds.unsqueeze(2) * hie.unsqueeze(1)
    p = F.adaptive_avg_pool2d(crop.view(-1, D, H, W), (1, 1)).view(N, K, D)
    dp = torch.randn_like(p)
    (dhie,) = grads(p, dp, hie)
    w.case("proto", name, dict(N=N, K=K, D=D, H=H, W=W),
           dict(cam=cam, valid=valid, seeds=seeds, hie=hie, p=p, dp=dp,
                dhie=dhie))


def maxnorm(w, name, N, C, H, W):
    x = F.relu(torch.randn(N, C, H, W))
    x[0, 1] = 0                      # all-zero plane (max 0, first index)
    x[N - 1, 2, 0, 3] = x[N - 1, 2, 2, 1] = 5.0  # tied maxima
    x = leaf(x)
    y = x / (F.adaptive_max_pool2d(x, (1, 1)) + 1e-5)
    dy = torch.randn_like(y)
    (dx,) = grads(y, dy, x)
    w.case("maxnorm", name, dict(N=N, C=C, H=H, W=W),
           dict(x=x, y=y, dy=dy, dx=dx))


def chanmax(w, name, N, C, H, W):
    x = torch.randn(N, C, H, W)
    x[0, 1, 0, 0] = x[0, 3, 0, 0] = 9.0  # tie across channels
    x[1, :, 1, 1] = 0.0                  # all tied
    x = leaf(x)
    y = torch.max(x, dim=1)[0]
    dy = torch.randn_like(y)
    (dx,) = grads(y, dy, x)
    w.case("chanmax", name, dict(N=N, C=C, H=H, W=W),
           dict(x=x, y=y, dy=dy, dx=dx))


def mlsm(w, name, N, C, dloss):
    x = leaf(torch.randn(N, C) * 3)
    t = (torch.rand(N, C) > 0.7).float()
    loss = F.multilabel_soft_margin_loss(x, t)
    (dx,) = grads(loss, torch.tensor(dloss), x)
    w.case("mlsm", name, dict(N=N, C=C, dloss=dloss),
           dict(x=x, t=t, loss=loss.reshape(1), dx=dx))


def l1(w, name, N, C, H, W, c0, nc, weighted, dloss):
    a = torch.randn(N, C, H, W)
    b = torch.randn(N, C, H, W)
    b[0, c0, 0, :3] = a[0, c0, 0, :3]  # equal entries: sign(0) = 0
    a, b = leaf(a), leaf(b)
    wt = torch.rand(C) + 0.5 if weighted else torch.ones(C)
    d = torch.abs(a[:, c0:c0 + nc] - b[:, c0:c0 + nc])
    loss = torch.mean(d * wt[c0:c0 + nc].view(1, -1, 1, 1))
    da, db = grads(loss, torch.tensor(dloss), a, b)
    w.case("l1", name, dict(N=N, C=C, H=H, W=W, c0=c0, nc=nc,
                            weighted=int(weighted), dloss=dloss),
           dict(a=a, b=b, w=wt, loss=loss.reshape(1), da=da, db=db))


def sfc_head(w, name, N, Cf, h, sides):
    """SFC's Net.forward after the backbone (§2.2: normalised CAM, PCM, hie
    features, prototype CAM) at h x h and h/2 x h/2, and the training loss
    (§2.5: L_cls + 1.6 L_PDW + 0.8 L_WDW) as train_resnet50_SFC.py writes
    it. Inputs are the classifier CAMs, f9 outputs and side outputs;
    gradients of the total loss w.r.t. each."""
    h2 = h // 2
    lab = (torch.rand(N, 20) > 0.6).float()
    lab[:, 3] = 1.0
    y21 = torch.cat([torch.ones(N, 1), lab], 1).view(N, 21, 1, 1)
    def vmask(s):
        v = torch.zeros(N, 21, s, s)
        v[:, :, : s - 1, 1:] = 1.0          # a padded row and column
        return v * y21
    v1, v2 = vmask(h), vmask(h2)
    wt = torch.cat([torch.ones(1), torch.rand(20) + 0.5])
    cam1 = leaf(torch.randn(N, 20, h, h) * 2)
    cam2 = leaf(torch.randn(N, 20, h2, h2) * 2)
    f1 = leaf(torch.randn(N, Cf, h, h))
    f2 = leaf(torch.randn(N, Cf, h2, h2))
    sd = [leaf(torch.randn(N, c, s, s)) for c, s in sides]

    def net(cam, f, valid, hs):
        n, _, hh, ww = cam.shape
        score = F.adaptive_avg_pool2d(cam, 1)
        nc = F.relu(cam)
        nc = nc / (F.adaptive_max_pool2d(nc, (1, 1)) + 1e-5)
        bkg = 1 - torch.max(nc, dim=1)[0].unsqueeze(1)
        nc = torch.cat([bkg, nc], dim=1)
        nc = F.interpolate(nc, (hh, ww), mode="bilinear",
                           align_corners=True) * valid
        fv = f.view(n, -1, hh * ww)
        fv = fv / (torch.norm(fv, dim=1, keepdim=True) + 1e-5)
        aff = F.relu(torch.matmul(fv.transpose(1, 2), fv))
        aff = aff / (torch.sum(aff, dim=1, keepdim=True) + 1e-5)
        cv = nc.view(n, -1, hh * ww)
        mw = torch.matmul(torch.matmul(cv, aff), aff).view(n, -1, hh, ww)
        if hs is None:
            return score, mw, None, None
        hie = torch.cat([F.interpolate(
            s / (torch.norm(s, dim=1, keepdim=True) + 1e-5), (hh, ww),
            mode="bilinear") for s in hs], dim=1)
        ncl = mw.clone()
        ncl[:, 0] = ncl[:, 0] * 0.3
        seeds = torch.zeros(n, hh, ww, 21)
        seeds = seeds.scatter_(-1, ncl.argmax(1).view(n, hh, ww, 1), 1)
        seeds = seeds.permute(0, 3, 1, 2).contiguous() * valid
        d = hie.shape[1]
        crop = seeds.unsqueeze(2) * hie.unsqueeze(1)
        proto = F.adaptive_avg_pool2d(crop.view(-1, d, hh, ww), (1, 1))
        proto = proto.view(n, 21, d, 1, 1)
        mp = F.relu(torch.cosine_similarity(hie.unsqueeze(1), proto, dim=2))
        return score, mw, mp, seeds

    s1, mw1, mp1, seeds = net(cam1, f1, v1, sd)
    s2, mw2, _, _ = net(cam2, f2, v2, None)
    lab4 = lab.view(N, 20, 1, 1)
    cls = (F.multilabel_soft_margin_loss(s1, lab4) +
           F.multilabel_soft_margin_loss(s2, lab4)) / 2
    mpn = mp1 / (F.adaptive_max_pool2d(mp1, (1, 1)) + 1e-5)
    gsc = torch.mean(torch.abs(mw1 - mpn) * wt.view(1, 21, 1, 1)) * 1.6
    dd = F.interpolate(mw1, scale_factor=0.5, mode="bilinear",
                       align_corners=True) * y21
    ee = mw2 * y21
    cons = torch.mean(torch.abs(dd - ee)[:, 1:] *
                      wt[1:].view(1, 20, 1, 1)) * 0.8
    loss = cls + gsc + cons
    gs = torch.autograd.grad(loss, [cam1, cam2, f1, f2] + sd)
    t = dict(cam1=cam1, cam2=cam2, f1=f1, f2=f2, v1=v1, v2=v2, label=lab,
             w=wt, mw1=mw1, mp1=mp1, mw2=mw2, seeds=seeds,
             loss=torch.stack([loss, cls, gsc, cons]))
    for i, (c, s) in enumerate(sides):
        t[f"s{i}"] = sd[i]
        t[f"ds{i}"] = gs[4 + i]
    t.update(dcam1=gs[0], dcam2=gs[1], df1=gs[2], df2=gs[3])
    p = dict(N=N, Cf=Cf, h=h, ns=len(sides))
    for i, (c, s) in enumerate(sides):
        p[f"c{i}"], p[f"h{i}"] = c, s
    w.case("sfc_head", name, p, t)


def all_cases(w, big):
    groupnorm(w, "gn1", 2, 8, 4, 5, 7)
    groupnorm(w, "gn2", 1, 12, 3, 3, 3)
    for ac in (0, 1):
        resize(w, f"bl_up{ac}", "bilinear", 2, 3, 13, 11, size=(32, 29), ac=ac)
        resize(w, f"bl_dn{ac}", "bilinear", 1, 2, 32, 29, size=(13, 11),
               ac=ac)
        resize(w, f"bl_one{ac}", "bilinear", 1, 2, 5, 7, size=(1, 1), ac=ac)
        resize(w, f"bl_sf{ac}", "bilinear", 1, 2, 13, 11, scale=(2.5, 2.5),
               ac=ac)
        resize(w, f"bl_half{ac}", "bilinear", 1, 2, 13, 11, scale=(0.5, 0.5),
               ac=ac)
    resize(w, "bl_x4", "bilinear", 1, 2, 9, 7, scale=(4.0, 4.0))
    resize(w, "bl_mix", "bilinear", 1, 2, 5, 9, scale=(1.1, 0.7))
    resize(w, "nn_up", "nearest", 2, 3, 13, 11, size=(32, 29))
    resize(w, "nn_dn", "nearest", 1, 2, 32, 29, size=(13, 11))
    resize(w, "nn_x2", "nearest", 1, 2, 5, 4, size=(10, 8))
    resize(w, "nn_sf", "nearest", 1, 2, 13, 11, scale=(2.5, 0.3))
    resize(w, "nn_16", "nearest", 1, 2, 48, 32, size=(3, 2))
    l2norm(w, "l2", 2, 9, 5, 7)
    cosine(w, "cos", 2, 5, 12, 5, 7)
    pcm_affinity(w, "aff", 2, 6, 35)
    pcm_apply(w, "app", 2, 4, 35)
    proto(w, "proto", 2, 5, 6, 5, 7)
    maxnorm(w, "mxn", 2, 4, 5, 7)
    chanmax(w, "cmx", 2, 5, 3, 4)
    mlsm(w, "mlsm", 4, 20, 0.5)
    l1(w, "l1w", 2, 6, 5, 7, 1, 5, True, 0.8)
    l1(w, "l1u", 2, 6, 5, 7, 0, 6, False, 1.6)
    # wider than the C kernel's 256-column chunk
    resize(w, "bl_wide0", "bilinear", 1, 1, 3, 100, size=(4, 300), ac=0)
    resize(w, "bl_wide1", "bilinear", 1, 1, 3, 100, scale=(1.5, 3.0), ac=1)
    sfc_head(w, "head", 2, 8, 6, [(3, 24), (3, 12), (4, 6), (4, 6)])
    if big:
        groupnorm(w, "gn_big", 2, 32, 4, 16, 15)
        resize(w, "bl_big", "bilinear", 2, 8, 32, 32, scale=(0.5, 0.5), ac=1)
        l2norm(w, "l2_big", 2, 128, 13, 11)
        cosine(w, "cos_big", 2, 21, 96, 13, 11)
        pcm_affinity(w, "aff_big", 2, 64, 143)
        pcm_apply(w, "app_big", 2, 21, 143)
        proto(w, "proto_big", 2, 21, 96, 13, 11)
        sfc_head(w, "head_big", 3, 32, 8, [(8, 32), (8, 16), (16, 8),
                                            (16, 8)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--golden", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.golden == bool(a.out):
        ap.error("give exactly one of --golden, --out DIR")
    torch.set_num_threads(1)
    torch.manual_seed(a.seed if a.out else 20240511)
    out = a.out or os.path.join(HERE, "..", "golden", "ops")
    w = Writer(out)
    all_cases(w, big=bool(a.out))
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
