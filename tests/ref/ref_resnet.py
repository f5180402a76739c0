#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/resnet.c: torchvision's ResNet (Bottleneck v1.5, its own
_make_layer) in eval mode with random weights and random non-trivial BN
running statistics; forward to the five stage outputs (stem, layer1..4)
and backward of L = sum_s <feat_s, d_s> for random d_s; every parameter
gradient. Files are safetensors written here with json + numpy:
  <case>.weights.safetensors  the state_dict (torchvision key names,
                              num_batches_tracked included)
  <case>.case.safetensors     x, d0..d4, f0..f4, grad.<name>; metadata holds
                              the configuration
--golden   tiny-width cases into tests/golden/resnet/
--out DIR --seed S [--full]  fresh cases; --full adds a whole ResNet-50
           (strides 2,2,2,1) at 2x3x97x81 with every gradient and a
           ResNet-101 with DeepLab dilations (forward).
--masked-grads DIR --tag T  case T's float64 gradients through the ReLU
           masks the engine chose (see masked_grads).
References are float64."""
import argparse
import copy
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torchvision.models.resnet import Bottleneck, ResNet



class Tiny(ResNet):
    """torchvision's ResNet with a configurable width, blocks, strides and
    dilation, built by torchvision's own _make_layer."""

    def __init__(self, blocks, width, strides, dilate):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i in range(4):
            setattr(self, "layer%d" % (i + 1),
                    self._make_layer(Bottleneck, width << i, blocks[i],
                                     stride=strides[i], dilate=bool(dilate[i])))


def layer4_stride1(m):
    """IRN/SFC's strides (2,2,2,1) on a torchvision model."""
    m.layer4[0].conv2.stride = (1, 1)
    m.layer4[0].downsample[0].stride = (1, 1)


def randomise(m, g):
    with torch.no_grad():
        for name, t in m.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_mean") or name.endswith("bias"):
                t.copy_(torch.rand(t.shape, generator=g) - 0.5)
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 1.5 + 0.5)
            elif t.dim() == 1:  # BN gamma
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.dim() == 2:  # fc (ignored by the C model)
                t.copy_(torch.randn(t.shape, generator=g) * 0.01)
            else:  # conv: kaiming normal (fan_out), as torchvision
                fan_out = t.shape[0] * t.shape[2] * t.shape[3]
                t.copy_(torch.randn(t.shape, generator=g) *
                        (2.0 / fan_out) ** 0.5)


def save_safetensors(path, tensors, meta=None):
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def stages(m, x, frozen):
    """The five stage outputs; stages below `frozen` run without grad and
    their outputs are detached (sfc-reference.md §2.2)."""
    feats = []
    mods = [nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool),
            m.layer1, m.layer2, m.layer3, m.layer4]
    for s, mod in enumerate(mods):
        if s < frozen:
            with torch.no_grad():
                x = mod(x)
        else:
            x = mod(x)
        feats.append(x)
    return feats


def compute(model, x, ds, frozen, backward, dtype):
    m = copy.deepcopy(model).to(dtype)
    feats = stages(m, x.to(dtype), frozen)
    grads = {}
    if backward and frozen < 5:
        loss = sum((f * ds[s].to(dtype)).sum()
                   for s, f in enumerate(feats) if s >= frozen)
        loss.backward()
        grads = {n: p.grad.double() for n, p in m.named_parameters()
                 if p.grad is not None}
    return [f.detach().double() for f in feats], grads


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def run_case(outdir, tag, model, cfg, shape, seed, frozen, backward=True):
    """The reference is computed in float64; the error of PyTorch's own
    float32 result against it is recorded (torch_f32_rel_err). See
    masked_grads for the gradients at ReLU kinks."""
    g = torch.Generator().manual_seed(seed)
    randomise(model, g)
    model.eval()
    x = torch.randn(shape, generator=g)
    with torch.no_grad():
        fshapes = [f.shape for f in stages(model, x, 5)]
    ds = [torch.randn(fs, generator=g) for fs in fshapes]
    f32, g32 = compute(model, x, ds, frozen, backward, torch.float32)
    f64, g64 = compute(model, x, ds, frozen, backward, torch.float64)
    e32 = max([rel(a, b) for a, b in zip(f32, f64)] +
              [rel(g32[n], g64[n]) for n in g64])
    case = {"x": x.numpy()}
    for s in range(5):
        case["f%d" % s] = f64[s].float().numpy()
        if s >= frozen:
            case["d%d" % s] = ds[s].numpy()
    for n, t in g64.items():
        case["grad." + n] = t.float().numpy()
    meta = dict(cfg)
    meta["frozen"] = frozen
    meta["backward"] = int(backward)
    meta["torch_f32_rel_err"] = "%.3g" % e32
    meta["torch"] = torch.__version__
    meta["torchvision"] = torchvision.__version__
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    save_safetensors(os.path.join(outdir, tag + ".weights.safetensors"), sd)
    save_safetensors(os.path.join(outdir, tag + ".case.safetensors"), case,
                     meta)


def load_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n = int.from_bytes(b[:8], "little")
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        out[k] = torch.from_numpy(
            np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(
                v["shape"]).copy())
    return out


def masked_grads(dir_, tag):
    """ReLU kinks (and max-pool near-ties, routed the same way through the
    engine's argmax, pool.stem): where a pre-activation lies within float32 rounding of
    0, any float32 implementation (PyTorch's own included: it misses a 1e-3
    bar against float64 on about half of the random ResNet-50 draws) may
    take the other branch, and at these spatial sizes one such element
    moves gradients by percents. So the gradient reference is float64
    backpropagation through the ReLU masks the engine under test chose
    (<tag>.masks.safetensors: mask.stem, mask.layerL.B.1/2/3 as 0/1
    floats), written to <tag>.grads.safetensors. Everything else is the
    float64 computation; a wrong mask shows in the forward check."""
    w = load_safetensors(os.path.join(dir_, tag + ".weights.safetensors"))
    c = load_safetensors(os.path.join(dir_, tag + ".case.safetensors"))
    mk = load_safetensors(os.path.join(dir_, tag + ".masks.safetensors"))
    with open(os.path.join(dir_, tag + ".case.safetensors"), "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        meta = json.loads(f.read(n))["__metadata__"]
    ints = [[int(v) for v in meta[k].split(",")]
            for k in ("blocks", "strides", "dilate")]
    model = Tiny(ints[0], int(meta["width"]), ints[1], ints[2])
    model.load_state_dict(w, strict=False)  # (no fc here)
    m = model.double().eval()
    M = {k: v.double() for k, v in mk.items()}
    frozen = int(meta["frozen"])

    def act(key, t):  # frozen stages keep no activations: plain ReLU there
        return t * M[key] if key in M else torch.relu(t)

    with torch.set_grad_enabled(frozen == 0):
        x = act("mask.stem", m.bn1(m.conv1(c["x"].double())))
        if "pool.stem" in M:  # the engine's max-pool choices, as its masks
            idx = M["pool.stem"].long()
            x = x.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
        else:
            x = m.maxpool(x)
    feats = [x]
    for li in range(1, 5):
        with torch.set_grad_enabled(li >= frozen):
            for bi, blk in enumerate(getattr(m, "layer%d" % li)):
                p = "mask.layer%d.%d." % (li, bi)
                o = act(p + "1", blk.bn1(blk.conv1(x)))
                o = act(p + "2", blk.bn2(blk.conv2(o)))
                o = blk.bn3(blk.conv3(o))
                idn = blk.downsample(x) if blk.downsample is not None else x
                x = act(p + "3", o + idn)
        feats.append(x)
    loss = sum((f * c["d%d" % s].double()).sum() for s, f in enumerate(feats)
               if "d%d" % s in c)
    loss.backward()
    out = {"grad." + n: p.grad.float().numpy()
           for n, p in m.named_parameters() if p.grad is not None}
    save_safetensors(os.path.join(dir_, tag + ".grads.safetensors"), out)


def cfgstr(blocks, width, strides, dilate):
    return {"blocks": ",".join(map(str, blocks)), "width": width,
            "strides": ",".join(map(str, strides)),
            "dilate": ",".join(map(str, dilate))}


def tiny_cases(outdir, seed):
    torch.manual_seed(seed)
    b, s, d = [2, 1, 2, 1], [1, 2, 2, 1], [0, 0, 0, 0]
    run_case(outdir, "tiny_sfc", Tiny(b, 2, s, d), cfgstr(b, 2, s, d),
             (2, 3, 29, 23), seed, 0)
    run_case(outdir, "tiny_frozen", Tiny(b, 2, s, d), cfgstr(b, 2, s, d),
             (2, 3, 29, 23), seed + 1, 3)
    b, s, d = [1, 1, 2, 2], [1, 2, 2, 2], [0, 0, 1, 1]
    run_case(outdir, "tiny_deeplab", Tiny(b, 2, s, d), cfgstr(b, 2, s, d),
             (1, 3, 35, 31), seed + 2, 0)


def full_cases(outdir, seed):
    m = torchvision.models.resnet50()
    layer4_stride1(m)
    run_case(outdir, "r50", m, cfgstr([3, 4, 6, 3], 64, [1, 2, 2, 1],
                                      [0, 0, 0, 0]),
             (2, 3, 97, 81), seed + 10, 0)
    # the engine loads these weights as `make weights WEIGHTS_FROM=x.pth`
    # converts them: the state_dict saved by PyTorch, then scripts/weights.py
    pth = os.path.join(outdir, "r50.pth")
    torch.save(m.state_dict(), pth)
    conv = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "..", "scripts", "weights.py")
    subprocess.run([sys.executable, conv, "convert", pth,
                    os.path.join(outdir, "r50.weights.safetensors")],
                   check=True)
    os.unlink(pth)
    m = torchvision.models.resnet101(
        replace_stride_with_dilation=[False, True, True])
    run_case(outdir, "r101_deeplab", m,
             cfgstr([3, 4, 23, 3], 64, [1, 2, 2, 2], [0, 0, 1, 1]),
             (2, 3, 97, 81), seed + 11, 5, backward=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--masked-grads", metavar="DIR",
                    help="float64 gradients of DIR/TAG through the ReLU "
                    "masks in DIR/TAG.masks.safetensors")
    ap.add_argument("--tag", default="r50")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.masked_grads:
        masked_grads(a.masked_grads, a.tag)
    elif a.golden:
        d = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "..", "golden", "resnet")
        os.makedirs(d, exist_ok=True)
        tiny_cases(d, 1234)
    elif a.out:
        os.makedirs(a.out, exist_ok=True)
        tiny_cases(a.out, a.seed)
        if a.full:
            full_cases(a.out, a.seed)
    else:
        ap.error("give --golden or --out DIR")


if __name__ == "__main__":
    sys.exit(main())
