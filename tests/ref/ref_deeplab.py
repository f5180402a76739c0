#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/deeplab.c: DeepLab-v2 re-expressed in PyTorch as
kazuto1011/deeplab-pytorch builds it (torchvision's ResNet with
replace_stride_with_dilation = [False, True, True], built by torchvision's
own _make_layer; the ASPP head: four 3x3 convolutions with bias, dilation =
padding = 6, 12, 18, 24, summed), eval-mode (frozen) BatchNorm, the MSC
wrapper (F.interpolate of the input by 0.75 and 0.5, their logits resized
to the full-scale logits' size, torch.max over the stack), labels resized
by PIL nearest to each logit size, and one CrossEntropyLoss(ignore_index=
255) per output, summed. Written per case:
  <case>.weights.safetensors  state_dict (torchvision keys + aspp.c*.*)
  <case>.case.safetensors     x, lab (float), logit.K, fused, loss (the
                              nscale + 1 terms), grad.<name> (every
                              parameter), step.<name> (every parameter
                              after `steps` SGD steps with DeepLab's
                              groups), metadata: the configuration
--golden          tiny-width cases into tests/golden/deeplab/
--out DIR --seed S  fresh cases.
References are float64 (float32 weights and inputs). A draw is used only
if PyTorch's own float32 computation agrees with it within 1e-4 relative
(forward, every gradient, the weights after the steps): otherwise a ReLU
kink or a near-tie of the max fusion sits within float32 rounding and any
float32 implementation may take either branch; the script then redraws
(seed + 1000 k) and records the seed used."""
import copy
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_resnet import Tiny, randomise, save_safetensors  # noqa: E402
from refcommon import main_cases  # noqa: E402


class DeepLabV2(Tiny):
    """torchvision's dilated ResNet (keys unprefixed) + the ASPP head."""

    def __init__(self, blocks, width, nclass, rates):
        super().__init__(blocks, width, [1, 2, 2, 2], [0, 0, 1, 1])
        self.aspp = nn.Module()
        for i, r in enumerate(rates):
            self.aspp.add_module("c%d" % i, nn.Conv2d(
                width * 32, nclass, 3, 1, padding=r, dilation=r, bias=True))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return sum(c(x) for c in self.aspp.children())


def msc(model, x, scales):
    logits = [model(x)]
    for s in scales[1:]:
        h = F.interpolate(x, scale_factor=s, mode="bilinear",
                          align_corners=False)
        logits.append(model(h))
    H, W = logits[0].shape[2:]
    ups = [logits[0]] + [F.interpolate(l, size=(H, W), mode="bilinear",
                                       align_corners=False)
                         for l in logits[1:]]
    fused = torch.max(torch.stack(ups), dim=0)[0]
    return logits, fused


def resize_labels(lab, h, w):
    """PIL nearest, as deeplab-pytorch's resize_labels."""
    return torch.from_numpy(np.stack([
        np.asarray(Image.fromarray(l).resize((w, h), Image.NEAREST))
        for l in lab]).astype(np.int64))


def loss_terms(logits, fused, lab):
    terms = []
    for l in logits + [fused]:
        t = resize_labels(lab, l.shape[2], l.shape[3])
        terms.append(F.cross_entropy(l, t, ignore_index=255))
    return terms


def groups(model, lr, wd, head_mult, bias_mult):
    """deeplab-pytorch's 1x / 10x / 20x groups; BN gamma and beta frozen."""
    bb = [p for n, p in model.named_parameters()
          if not n.startswith("aspp.") and p.dim() == 4]
    hw = [p for n, p in model.named_parameters()
          if n.startswith("aspp.") and n.endswith("weight")]
    hb = [p for n, p in model.named_parameters()
          if n.startswith("aspp.") and n.endswith("bias")]
    return [{"params": bb, "lr": lr, "weight_decay": wd, "lr0": lr},
            {"params": hw, "lr": lr * head_mult, "weight_decay": wd,
             "lr0": lr * head_mult},
            {"params": hb, "lr": lr * bias_mult, "weight_decay": 0.0,
             "lr0": lr * bias_mult}]


def compute(model, x, lab, cfg, dtype):
    m = copy.deepcopy(model).to(dtype).eval()
    xs = x.to(dtype)
    logits, fused = msc(m, xs, cfg["scales"])
    terms = loss_terms(logits, fused, lab)
    sum(terms).backward()
    out = {"logit.%d" % k: l.detach().double() for k, l in enumerate(logits)}
    out["fused"] = fused.detach().double()
    out["loss"] = torch.tensor([t.item() for t in terms], dtype=torch.float64)
    for n, p in m.named_parameters():
        out["grad." + n] = p.grad.double()
    # SGD steps (momentum, poly), the first one from the gradient above
    m2 = copy.deepcopy(model).to(dtype).eval()
    opt = torch.optim.SGD(groups(m2, cfg["lr"], cfg["wd"], cfg["head_mult"],
                                 cfg["bias_mult"]),
                          lr=cfg["lr"], momentum=cfg["momentum"])
    for t in range(cfg["steps"]):
        f = (1 - t / cfg["max_step"]) ** cfg["power"]
        for g in opt.param_groups:
            g["lr"] = g["lr0"] * f
        opt.zero_grad()
        lg, fu = msc(m2, xs, cfg["scales"])
        sum(loss_terms(lg, fu, lab)).backward()
        opt.step()
    for n, p in m2.named_parameters():
        out["step." + n] = p.detach().double()
    return out


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def draw(seed, cfg, shape):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DeepLabV2(cfg["blocks"], cfg["width"], cfg["nclass"],
                      cfg["rates"])
    randomise(model, g)
    with torch.no_grad():  # a head large enough to matter
        for c in model.aspp.children():
            c.weight.copy_(torch.randn(c.weight.shape, generator=g) * 0.1)
            c.bias.copy_(torch.randn(c.bias.shape, generator=g) * 0.1)
    x = torch.randn(shape, generator=g)
    N, _, H, W = shape
    lab = torch.randint(0, cfg["nclass"], (N, H, W), generator=g)
    ign = torch.rand((N, H, W), generator=g) < 0.2
    lab[ign] = 255
    return model, x, lab.numpy().astype(np.uint8)


def run_case(outdir, tag, cfg, shape, seed):
    for k in range(20):
        s = seed + 1000 * k
        model, x, lab = draw(s, cfg, shape)
        r32 = compute(model, x, lab, cfg, torch.float32)
        r64 = compute(model, x, lab, cfg, torch.float64)
        # the C test compares weight changes after the SGD steps, which
        # cancel most of the weight: a draw is used only if float32's
        # changes (not just its weights) agree with float64's, so that a
        # rounding-sensitive trajectory cannot decide the test
        init = {"step." + n: p.detach().double()
                for n, p in model.named_parameters()}
        e32 = max(rel(r32[n] - init.get(n, 0), r64[n] - init.get(n, 0))
                  for n in r64)
        if e32 < 1e-4:
            break
    else:
        raise SystemExit("%s: no draw where float32 agrees with float64" %
                         tag)
    case = {"x": x.numpy(), "lab": lab.astype(np.float32)}
    for n, t in r64.items():
        case[n] = t.float().numpy()
    meta = {"blocks": ",".join(map(str, cfg["blocks"])),
            "width": cfg["width"], "nclass": cfg["nclass"],
            "rates": ",".join(map(str, cfg["rates"])),
            "scales": ",".join(map(str, cfg["scales"])),
            "lr": cfg["lr"], "wd": cfg["wd"], "momentum": cfg["momentum"],
            "power": cfg["power"], "max_step": cfg["max_step"],
            "steps": cfg["steps"], "head_mult": cfg["head_mult"],
            "bias_mult": cfg["bias_mult"], "seed": s,
            "torch_f32_rel_err": "%.3g" % e32, "torch": torch.__version__,
            "torchvision": torchvision.__version__}
    sd = {k: v.numpy() for k, v in model.state_dict().items()
          if not k.endswith("num_batches_tracked")}
    save_safetensors(os.path.join(outdir, tag + ".weights.safetensors"), sd)
    save_safetensors(os.path.join(outdir, tag + ".case.safetensors"), case,
                     meta)
    predict_case(outdir, tag, cfg, model, s + 7)


def predict_case(outdir, tag, cfg, model, seed):
    """sfc_deeplab_predict: an odd-sized uint8 image, normalised with the
    ImageNet statistics in float32, the fused logits of it and of its
    mirror (mirrored back), their max, resized to the image (bilinear,
    align_corners False). <tag>.predict.safetensors: img (float), out."""
    g = torch.Generator().manual_seed(seed)
    H, W = 43, 38
    img = torch.randint(0, 256, (H, W, 3), generator=g).to(torch.uint8)
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    x = ((img.float() / 255 - mean) / std).permute(2, 0, 1)[None]
    x = torch.cat([x, x.flip(3)]).double()
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        _, fused = msc(m, x, cfg["scales"])
        f = torch.max(fused[:1], fused[1:].flip(3))
        out = F.interpolate(f, size=(H, W), mode="bilinear",
                            align_corners=False)[0]
    save_safetensors(os.path.join(outdir, tag + ".predict.safetensors"),
                     {"img": img.float().numpy(),
                      "out": out.float().numpy()})


def cases(outdir, seed):
    base = {"blocks": [1, 1, 2, 2], "width": 2, "nclass": 5,
            "rates": [6, 12, 18, 24], "scales": [1, 0.75, 0.5],
            "lr": 0.01, "wd": 5e-4, "momentum": 0.9, "power": 0.9,
            "max_step": 10, "steps": 3, "head_mult": 10, "bias_mult": 20}
    run_case(outdir, "msc", base, (2, 3, 41, 37), seed)
    one = dict(base, blocks=[1, 1, 1, 1], scales=[1], rates=[1, 2, 3, 4],
               nclass=3)
    run_case(outdir, "single", one, (1, 3, 33, 45), seed + 1)


def main():
    main_cases(cases, "deeplab", before=lambda: torch.set_num_threads(1),
               golden_seed=1234, seed=0, mkdir=True)


if __name__ == "__main__":
    sys.exit(main())
