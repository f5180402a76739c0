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
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        sc = x if self.downsample is None else self.downsample(x)
        return F.relu(y + sc)


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
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
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
        c = F.relu(cam)
        c = c / (c.amax(dim=(2, 3), keepdim=True) + EPS)
        bg = 1 - c.max(dim=1, keepdim=True)[0]
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
        A = F.relu(torch.bmm(f.transpose(1, 2), f))
        A = A / (A.sum(dim=1, keepdim=True) + EPS)
        mw = torch.bmm(torch.bmm(cam21.flatten(2), A), A)
        mw = mw.view(cam21.shape)
        # prototypes: seeds from M_W with background x0.3 (no gradient)
        s = mw.detach().clone()
        s[:, 0] *= self.proto_bg
        seeds = F.one_hot(s.argmax(1), self.C + 1).permute(0, 3, 1, 2)
        seeds = seeds.float() * vm
        proto = (seeds.unsqueeze(2) * hie.unsqueeze(1)).mean(dim=(3, 4))
        mp = F.relu(F.cosine_similarity(hie.unsqueeze(1),
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
    c = F.relu(cam)
    c = c / (c.amax(dim=(2, 3), keepdim=True) + EPS)
    cam21 = torch.cat([1 - c.max(dim=1, keepdim=True)[0], c], 1)
    xs = F.interpolate(fuse(x2)[None], (h, w), mode="bilinear",
                       align_corners=True)
    f = net.f9(torch.cat([xs, fuse(x4)[None]], 1)).flatten(2)
    f = f / (f.norm(dim=1, keepdim=True) + EPS)
    A = F.relu(torch.bmm(f.transpose(1, 2), f))
    A = A / (A.sum(dim=1, keepdim=True) + EPS)
    mw = torch.bmm(torch.bmm(cam21.flatten(2), A), A).view(cam21.shape)
    s = mw.clone()
    s[:, 0] *= net.proto_bg
    seeds = F.one_hot(s.argmax(1), net.C + 1).permute(0, 3, 1, 2).float()
    seeds = seeds * y21[None, :, None, None]
    proto = (seeds.unsqueeze(2) * hie.unsqueeze(1)).mean(dim=(3, 4))
    mp = F.relu(F.cosine_similarity(hie.unsqueeze(1), proto[..., None, None],
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
    mp_hat = o1["mp"] / (o1["mp"].amax(dim=(2, 3), keepdim=True) + EPS)
    l_pdw = 1.6 * (w21 * (o1["mw"] - mp_hat).abs()).mean()
    d = F.interpolate(o1["mw"], scale_factor=0.5, mode="bilinear",
                      align_corners=True) * y21
    e = o2["mw"] * y21
    l_wdw = 0.8 * (dc[None, :, None, None] *
                   (d[:, 1:] - e[:, 1:]).abs()).mean()
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
    inference; seeds are tried from `seed` on until that holds."""
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
            float(cam_mp.abs().sum()) > 0):
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
