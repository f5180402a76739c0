#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for the SFC network and losses (issue 4, item 4).

A PyTorch re-expression written from ../shared/docs/sfc-reference.md
sections 2.2 (network, PCM, prototypes), 2.4 (two scales, masks) and 2.5
(L_cls, L_PDW, L_WDW with DC weights), independent of the C code. The
backbone is a torchvision-layout bottleneck ResNet (v1.5, stride on the 3x3
conv, frozen BatchNorm in eval semantics) with configurable blocks, base
width and stage strides, so tiny networks run in CI; parameter names are
torchvision's (backbone) plus the SFC heads' (classifier, f9, side1..4).

Usage:
  ref_sfc.py --out DIR [--seed S]   write weights.safetensors + case.npz
  ref_sfc.py --golden               the same into tests/golden/sfc/
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from refcommon import main_cases

EPS = 1e-5

# ---- kinks and ill-conditioned normalisations ----------------------------
# The float32 C code and float32 PyTorch round differently. Two kinds of
# spot turn that rounding into gradient differences over test-sfcnet's bar:
# - kinks: a ReLU input within rounding of 0, a near-tie of a max (CAM
#   normalisation, 1 - max background, M_P normalisation), an L1
#   difference near 0, a near-tie of the argmax that picks the prototype
#   seeds (a seed moves a whole pixel between prototypes): the side taken
#   decides where a gradient goes;
# - the max normalisations c / (max c + 1e-5) of the CAM and of M_P when
#   the largest value is barely positive: they amplify the maps' rounding
#   error by max |map| / max(map).
# At seed 531849 (first draw used before this check) image 2's class-4 CAM
# at scale 0.5 peaked at 1.1e-4 with max |CAM| 0.31: the C gradients of
# layer4/classifier were off by 1.2e-4, 1.8e-4 and 3.5e-4 of their largest
# value (full batch, micro-batches of 1, of 2: the error grows with the C
# code's summation order, the same pattern each time), the last over the
# element-wise 1e-4 * max + 1e-3 rel bar; float32 PyTorch against float64
# was 4e-5. That draw also had a layer4.0 bn2 ReLU input at -6.3e-7 whose
# flip moves bn2.bias's gradient by 10 %.
# A draw is used only if, in float64, flipping every kink within KINK_DELTA
# of its switch (exact zeros and exact ties are left alone: they are
# structural, masked pixels or empty classes, and exact in the C code
# too) and adding a fixed +-JITTER * max |map| pattern to the CAM and M_P
# before their normalisations, all at once, moves no gradient, loss or
# output by more than KINK_SHIFT of its largest value (kink_shift); else
# the next seed is tried. KINK_DELTA is 10-20x the float32 error of the
# backbone's pre-ReLU values (~5e-8 against float64); JITTER is 4x the
# C code's error of the CAM relative to its largest value (~2.5e-6, from
# the seed above); KINK_SHIFT is a tenth of the 1e-3 bar and the
# element-wise floor 1e-4 * max, so a used draw's C gradients are expected
# within ~KINK_SHIFT / 4 of PyTorch's. Seed 531849's old draw gives 1.4e-3
# (jitter alone) and 0.1 (flip alone); the golden draw 2.6e-5 (used as
# before). About a third of the draws that pass the other conditions are
# redrawn (5 of 17 over 12 seeds).
KINK_DELTA, JITTER, KINK_SHIFT = 1e-6, 1e-5, 1e-4
_flip = [0.0]


def _near(x):
    a = x.detach().abs()
    return (a > 0) & (a < _flip[0])


def relu(x):
    if not _flip[0]:
        return F.relu(x)
    m = (x > 0).to(x.dtype)
    return x * torch.where(_near(x), 1 - m, m)


def kabs(x):
    if not _flip[0]:
        return x.abs()
    sg = torch.sign(x.detach())
    return x * torch.where(_near(x), -sg, sg)


def _top2(x):
    """x (..., n): the top two values' indices and whether they are within
    the flip margin of each other."""
    v, i = x.detach().topk(2, dim=-1)
    d = v[..., 0] - v[..., 1]
    return i, (d > 0) & (d < _flip[0])


def kamax_hw(x):
    """x.amax over the last two dims (keepdim)."""
    if not _flip[0]:
        return x.amax(dim=(2, 3), keepdim=True)
    xf = x.flatten(2)
    i, near = _top2(xf)
    j = torch.where(near, i[..., 1], i[..., 0])
    return xf.gather(2, j[..., None])[..., None]


def kmax_c(x):
    """x.max over dim 1 (keepdim), the value."""
    if not _flip[0]:
        return x.max(dim=1, keepdim=True)[0]
    xt = x.movedim(1, -1)
    i, near = _top2(xt)
    j = torch.where(near, i[..., 1], i[..., 0])
    return xt.gather(-1, j[..., None]).movedim(-1, 1)


def jitter(x):
    """x (N, K, h, w) plus a fixed +-JITTER pattern scaled by max |x| per
    map (an all-zero map, structural, stays zero): a
    float32-sized error in front of the max normalisations, which amplify
    it by max |x| / max(x) when the largest value is barely positive."""
    if not _flip[0]:
        return x
    g = torch.Generator().manual_seed(0)
    pm = torch.randint(0, 2, x.shape, generator=g).to(x.dtype) * 2 - 1
    scale = x.detach().abs().amax(dim=(2, 3), keepdim=True)
    return x + JITTER * scale * pm


def kargmax_c(x):
    if not _flip[0]:
        return x.argmax(1)
    i, near = _top2(x.movedim(1, -1))
    return torch.where(near, i[..., 1], i[..., 0])


# ---- safetensors by hand (the format is 8-byte length + JSON + data) ----

def save_safetensors(path, tensors, meta=None):
    header, offset, blobs = {}, 0, []
    if meta:
        header["__metadata__"] = meta
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy())
        dt = {np.float32: "F32", np.int64: "I64"}[a.dtype.type]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- backbone ----------------------------------------------------------

class FrozenBN(nn.Module):
    """BatchNorm with fixed running statistics; gamma/beta trainable."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var,
                            self.weight, self.bias, False, 0.0, EPS)


class Bottleneck(nn.Module):
    def __init__(self, cin, planes, stride, dilation):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = FrozenBN(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation,
                               dilation, bias=False)
        self.bn2 = FrozenBN(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = FrozenBN(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), FrozenBN(cout))

    def forward(self, x):
        y = relu(self.bn1(self.conv1(x)))
        y = relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        sc = x if self.downsample is None else self.downsample(x)
        return relu(y + sc)


class ResNet(nn.Module):
    """strides = (conv1, layer2, layer3, layer4) as IRN's resnet50."""

    def __init__(self, blocks=(3, 4, 6, 3), width=64, strides=(2, 2, 2, 1)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, strides[0], 3, bias=False)
        self.bn1 = FrozenBN(width)
        cin = width
        st = (1, strides[1], strides[2], strides[3])
        for i in range(4):
            planes = width * 2 ** i
            layer = []
            for b in range(blocks[i]):
                layer.append(Bottleneck(cin, planes, st[i] if b == 0 else 1, 1))
                cin = planes * 4
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*layer))
        self.channels = [width * 4 * 2 ** i for i in range(4)]

    def forward(self, x):
        x = F.max_pool2d(relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x1 = self.layer1(x)
        x2 = self.layer2(x1).detach()  # conv1..layer2 frozen (§2.2)
        x3 = self.layer3(x2)
        x4 = self.layer4(x3)
        return x1, x2, x3, x4


# ---- the SFC network (§2.2) --------------------------------------------

def l2n(x):
    return x / (x.norm(dim=1, keepdim=True) + EPS)


class SFCNet(nn.Module):
    def __init__(self, C=20, side=(128, 128, 256, 256), **kw):
        super().__init__()
        self.backbone = ResNet(**kw)
        ch = self.backbone.channels
        self.C = C
        self.proto_bg = 0.3  # background weight of the prototype seeds
        self.classifier = nn.Conv2d(ch[3], C, 1, bias=False)
        self.f9 = nn.Conv2d(3 + ch[3], ch[3], 1, bias=False)
        for i in range(4):
            setattr(self, "side%d" % (i + 1),
                    nn.Conv2d(ch[i], side[i], 1, bias=False))

    def forward(self, x, vm):
        """x (N,3,H,W) normalised image; vm (N,C+1,h,w) low-res mask."""
        x1, x2, x3, x4 = self.backbone(x)
        h, w = x3.shape[2:]
        cam = self.classifier(x4)
        score = cam.mean(dim=(2, 3))
        c = relu(jitter(cam))
        c = c / (kamax_hw(c) + EPS)
        bg = 1 - kmax_c(c)
        cam21 = torch.cat([bg, c], 1)
        cam21 = F.interpolate(cam21, (h, w), mode="bilinear",
                              align_corners=True) * vm
        sides = [getattr(self, "side%d" % (i + 1))(f.detach())
                 for i, f in enumerate((x1, x2, x3, x4))]
        hie = torch.cat([F.interpolate(l2n(s), (h, w), mode="bilinear",
                                       align_corners=False) for s in sides], 1)
        # PCM: image + x4 -> f9 -> normalised affinity, applied twice
        xs = F.interpolate(x, (h, w), mode="bilinear", align_corners=True)
        f = self.f9(torch.cat([xs, x4], 1)).flatten(2)
        f = f / (f.norm(dim=1, keepdim=True) + EPS)
        A = relu(torch.bmm(f.transpose(1, 2), f))
        A = A / (A.sum(dim=1, keepdim=True) + EPS)
        mw = torch.bmm(torch.bmm(cam21.flatten(2), A), A)
        mw = mw.view(cam21.shape)
        # prototypes: seeds from M_W with background x0.3 (no gradient)
        s = mw.detach().clone()
        s[:, 0] *= self.proto_bg
        seeds = F.one_hot(kargmax_c(s), self.C + 1).permute(0, 3, 1, 2)
        seeds = seeds.float() * vm
        proto = (seeds.unsqueeze(2) * hie.unsqueeze(1)).mean(dim=(3, 4))
        mp = relu(F.cosine_similarity(hie.unsqueeze(1),
                                        proto[..., None, None], dim=2))
        return dict(score=score, cam=cam, cam21=cam21, hie=hie, mw=mw,
                    proto=proto, mp=mp, seeds=seeds)


def cam_infer(net, x2, y21, raw=False):
    """§3: x2 (2,3,H,W) image and its flip; y21 (K,) padded label.
    Returns M_W, M_P (K,h,w): both copies summed (flip undone) for the
    CAM, the hierarchical feature, the image and x4; no label masking
    before PCM; prototypes seeded inside y21."""
    def fuse(t):
        return t[0] + t[1].flip(-1)
    x1, x2_, x3, x4 = net.backbone(x2)
    h, w = x3.shape[2:]
    sides = [getattr(net, "side%d" % (i + 1))(f)
             for i, f in enumerate((x1, x2_, x3, x4))]
    hie = torch.cat([F.interpolate(l2n(s), (h, w), mode="bilinear",
                                   align_corners=False) for s in sides], 1)
    cam = fuse(net.classifier(x4))[None]
    hie = fuse(hie)[None]
    c = relu(jitter(cam))
    c = c / (kamax_hw(c) + EPS)
    cam21 = torch.cat([1 - kmax_c(c), c], 1)
    xs = F.interpolate(fuse(x2)[None], (h, w), mode="bilinear",
                       align_corners=True)
    f = net.f9(torch.cat([xs, fuse(x4)[None]], 1)).flatten(2)
    f = f / (f.norm(dim=1, keepdim=True) + EPS)
    A = relu(torch.bmm(f.transpose(1, 2), f))
    A = A / (A.sum(dim=1, keepdim=True) + EPS)
    mw = torch.bmm(torch.bmm(cam21.flatten(2), A), A).view(cam21.shape)
    s = mw.clone()
    s[:, 0] *= net.proto_bg
    seeds = F.one_hot(kargmax_c(s), net.C + 1).permute(0, 3, 1, 2).float()
    seeds = seeds * y21[None, :, None, None]
    proto = (seeds.unsqueeze(2) * hie.unsqueeze(1)).mean(dim=(3, 4))
    mp = relu(F.cosine_similarity(hie.unsqueeze(1), proto[..., None, None],
                                    dim=2))
    if raw:  # also the classifier CAM before PCM (orignal_cam)
        return mw[0], mp[0], cam21[0]
    return mw[0], mp[0]


# ---- losses (§2.4, §2.5) ------------------------------------------------

def sfc_losses(net, img, label, vmask, dc):
    """img (N,3,S,S); label (N,C) multi-hot; vmask (N,C+1,S,S) box mask;
    dc (C,) class weights. Returns the three terms and the outputs."""
    N, _, S, _ = img.shape
    img2 = F.interpolate(img, scale_factor=0.5, mode="bilinear",
                         align_corners=True)
    vm = vmask.clone()
    vm[:, 1:] *= label[:, :, None, None]
    vm0 = F.interpolate(vm, size=(S // 16, S // 16), mode="nearest")
    vm1 = F.interpolate(vm, size=(S // 32, S // 32), mode="nearest")
    y21 = torch.cat([torch.ones(N, 1), label], 1)[:, :, None, None]
    o1 = net(img, vm0)
    o2 = net(img2, vm1)
    l_cls = 0.5 * (F.multilabel_soft_margin_loss(o1["score"], label) +
                   F.multilabel_soft_margin_loss(o2["score"], label))
    w21 = torch.cat([torch.ones(1), dc])[None, :, None, None]
    mp = jitter(o1["mp"])
    mp_hat = mp / (kamax_hw(mp) + EPS)
    l_pdw = 1.6 * (w21 * kabs(o1["mw"] - mp_hat)).mean()
    d = F.interpolate(o1["mw"], scale_factor=0.5, mode="bilinear",
                      align_corners=True) * y21
    e = o2["mw"] * y21
    l_wdw = 0.8 * (dc[None, :, None, None] *
                   kabs(d[:, 1:] - e[:, 1:])).mean()
    return l_cls, l_pdw, l_wdw, o1, o2


def randomise(net, g):
    """Non-trivial frozen-BN statistics and affine values."""
    for m in net.modules():
        if isinstance(m, FrozenBN):
            c = m.weight.numel()
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def nontrivial(m):
    """Channels of m (..., K, h, w) that vary over the pixels of some
    image."""
    m = m.reshape(-1, m.shape[-3], m.shape[-2] * m.shape[-1])
    return int((m.std(dim=2) > 1e-6).any(dim=0).sum())


def make_case(out, seed):
    """A case whose maps exercise every path: the prototype seeds change
    when the background weight 0.3 becomes 1 (so the weight is tested),
    M_P varies in two or more channels at both scales and is not zero at
    inference, and it is away from kinks and ill-conditioned normalisations
    (kink_shift); seeds are tried from `seed` on until that holds."""
    for k in range(500):  # about 1 in 20 random nets qualifies
        arrays, params, meta = try_case(seed + 1000 * k)
        if arrays is not None:
            break
    else:
        raise SystemExit("ref_sfc.py: no non-trivial case found")
    os.makedirs(out, exist_ok=True)
    save_safetensors(os.path.join(out, "weights.safetensors"), params, meta)
    np.savez_compressed(os.path.join(out, "case.npz"),
                        **{k: np.asarray(v.detach().numpy(), dtype=np.float32)
                           for k, v in arrays.items()},
                        config=np.array([5, 96, 3, 1, 1, 1, 1, 4, 2, 2, 2, 1,
                                         4, 4, 8, 8], dtype=np.int64))


def kink_shift(net, img, label, vmask, dc, xi, y21):
    """max over the gradients, losses and outputs (training step and CAM
    inference) of max |v' - v| / max |v|, in float64: v' with every kink
    within KINK_DELTA flipped (see the comment at the top)."""
    import copy
    vals = []
    for flip in (0.0, KINK_DELTA):
        n = copy.deepcopy(net).double()
        n.zero_grad()
        _flip[0] = flip
        try:
            out = sfc_losses(n, img.double(), label.double(), vmask.double(),
                             dc.double())
            (out[0] + out[1] + out[2]).backward()
            v = {"loss%d" % i: out[i] for i in range(3)}
            for tag, o in (("s1", out[3]), ("s2", out[4])):
                for k in ("score", "cam21", "hie", "mw", "proto", "mp"):
                    v[tag + k] = o[k]
            v.update({k: p.grad for k, p in n.named_parameters()
                      if p.grad is not None})
            with torch.no_grad():
                x2 = torch.cat([xi, xi.flip(-1)]).double()
                v["cam_mw"], v["cam_mp"] = cam_infer(n, x2, y21.double())
        finally:
            _flip[0] = 0.0
        vals.append({k: t.detach() for k, t in v.items()})
    return max(((vals[1][k] - vals[0][k]).abs().max() /
                vals[0][k].abs().max().clamp(min=1e-30)).item()
               for k in vals[0])


def try_case(seed):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    C, S, N = 5, 96, 3
    cfg = dict(blocks=(1, 1, 1, 1), width=4, strides=(2, 2, 2, 1))
    net = SFCNet(C=C, side=(4, 4, 8, 8), **cfg)
    randomise(net, g)
    with torch.no_grad():  # mostly negative CAMs: peaked maps, some bg wins
        w = net.classifier.weight
        w.copy_((torch.randn(w.shape, generator=g) - 0.2) / w.shape[1] ** 0.5)
    img = torch.randn(N, 3, S, S, generator=g)
    label = (torch.rand(N, C, generator=g) < 0.4).float()
    label[0, 0] = 1
    vmask = torch.zeros(N, C + 1, S, S)
    vmask[0] = 1
    vmask[1, :, 8:80, 0:60] = 1        # a pasted box
    vmask[2, :, 40:96, 20:92] = 1      # another
    img = img * vmask[:, :1]           # padding is 0 (the mean colour)
    dc = torch.rand(C, generator=g) + 0.5
    l_cls, l_pdw, l_wdw, o1, o2 = sfc_losses(net, img, label, vmask, dc)
    (l_cls + l_pdw + l_wdw).backward()
    # CAM inference on the first image (H x W not a multiple of 16)
    with torch.no_grad():
        xi = torch.randn(1, 3, 100, 90, generator=g)
        y21 = torch.cat([torch.ones(1), label[0]])
        cam_mw, cam_mp = cam_infer(net, torch.cat([xi, xi.flip(-1)]), y21)
    with torch.no_grad():
        net.proto_bg = 1.0
        vm0 = F.interpolate(vmask * torch.cat([torch.ones(N, 1), label],
                                              1)[:, :, None, None],
                            size=(S // 16, S // 16), mode="nearest")
        seeds1 = net(img, vm0)["seeds"]
        net.proto_bg = 0.3
    if not (not torch.equal(seeds1, o1["seeds"]) and
            nontrivial(o1["mp"]) >= 2 and nontrivial(o2["mp"]) >= 2 and
            float(cam_mp.abs().sum()) > 0 and
            kink_shift(net, img, label, vmask, dc, xi, y21) <= KINK_SHIFT):
        return None, None, None
    params = {}
    for k, v in net.state_dict().items():
        params[k.replace("backbone.", "")] = v
    # the sfc.* metadata sfc-trainstep writes, so sfc-cam can load it
    meta = {"sfc.classes": str(C), "sfc.blocks": "1,1,1,1", "sfc.width": "4",
            "sfc.stem_stride": "2", "sfc.strides": "1,2,2,1",
            "sfc.dilate": "0,0,0,0", "sfc.side": "4,4,8,8", "sfc.frozen": "3"}
    arrays = dict(img=img, label=label, box=vmask[:, 0], dc=dc,
                  cam_img=xi[0], cam_y21=y21, cam_mw=cam_mw, cam_mp=cam_mp,
                  l_cls=l_cls, l_pdw=l_pdw, l_wdw=l_wdw)
    for tag, o in (("s1", o1), ("s2", o2)):
        for k in ("score", "cam21", "hie", "mw", "proto", "mp"):
            arrays["%s_%s" % (tag, k)] = o[k]
    for k, p in net.named_parameters():
        if p.grad is not None:
            arrays["grad." + k.replace("backbone.", "")] = p.grad
    return arrays, params, meta


def main():
    main_cases(make_case, "sfc", before=lambda: torch.set_num_threads(1))


if __name__ == "__main__":
    main()
