#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch side of make bench-seg (bench/seg.sh): the same DeepLab-v2 as
bench-seg.c, torchvision's ResNet-101 with replace_stride_with_dilation =
[False, True, True] + the ASPP head (rates 6, 12, 18, 24), BN in eval mode
with its parameters frozen, the MSC wrapper (scales 1, 0.75, 0.5, max
fusion), one CrossEntropyLoss(ignore_index=255) per output.

  seg_torch.py MODE [runs]   MODE: train | predict | predictflip
train: one SGD step (momentum 0.9, DeepLab's 1x/10x/20x groups) of a batch
of 10x3x321x321 in micro-batches of SFC_BENCH_MICRO (default 1) with
gradient accumulation; predict: one 500x375 image (+ its mirror), after a
first untimed run. Prints: mode, median seconds, 0 (GFLOP/s: see the sfc
line), peak RSS in MB."""
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class DeepLabV2(nn.Module):
    def __init__(self, nclass=21):
        super().__init__()
        r = torchvision.models.resnet101(
            replace_stride_with_dilation=[False, True, True])
        self.body = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool,
                                  r.layer1, r.layer2, r.layer3, r.layer4)
        self.aspp = nn.ModuleList(
            nn.Conv2d(2048, nclass, 3, 1, padding=d, dilation=d, bias=True)
            for d in (6, 12, 18, 24))
        for c in self.aspp:
            nn.init.normal_(c.weight, 0, 0.01)
            nn.init.zeros_(c.bias)

    def forward(self, x):
        f = self.body(x)
        return sum(c(f) for c in self.aspp)


def msc(model, x, scales=(0.75, 0.5)):
    logits = [model(x)]
    for s in scales:
        logits.append(model(F.interpolate(x, scale_factor=s, mode="bilinear",
                                          align_corners=False)))
    H, W = logits[0].shape[2:]
    ups = [logits[0]] + [F.interpolate(l, size=(H, W), mode="bilinear",
                                       align_corners=False)
                         for l in logits[1:]]
    return logits, torch.max(torch.stack(ups), dim=0)[0]


def main():
    mode = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(1)
    m = DeepLabV2().eval()  # eval: frozen BN statistics
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            for p in mod.parameters():
                p.requires_grad_(False)
    t = []
    if mode == "train":
        micro = int(os.environ.get("SFC_BENCH_MICRO", "1"))
        B, S = 10, 321
        x = torch.randn(B, 3, S, S)
        lab = torch.randint(0, 21, (B, S, S), dtype=torch.uint8)
        bb = [p for n, p in m.named_parameters()
              if n.startswith("body.") and p.requires_grad]
        hw = [c.weight for c in m.aspp]
        hb = [c.bias for c in m.aspp]
        opt = torch.optim.SGD([{"params": bb, "lr": 2.5e-4},
                               {"params": hw, "lr": 2.5e-3},
                               {"params": hb, "lr": 5e-3,
                                "weight_decay": 0}],
                              lr=2.5e-4, momentum=0.9, weight_decay=5e-4)
        for _ in range(runs):
            t0 = time.time()
            opt.zero_grad()
            for i in range(0, B, micro):
                logits, fused = msc(m, x[i:i + micro])
                loss = 0
                for l in logits + [fused]:
                    tl = F.interpolate(lab[i:i + micro, None].float(),
                                       size=l.shape[2:], mode="nearest")
                    loss = loss + F.cross_entropy(l, tl[:, 0].long(),
                                                  ignore_index=255)
                (loss * micro / B).backward()
            opt.step()
            t.append(time.time() - t0)
    else:
        H, W = 375, 500
        img = torch.randn(1, 3, H, W)
        flip = mode == "predictflip"
        with torch.no_grad():
            for r in range(runs + 1):
                t0 = time.time()
                x = torch.cat([img, img.flip(3)]) if flip else img
                _, f = msc(m, x)
                if flip:
                    f = torch.max(f[:1], f[1:].flip(3))
                F.interpolate(f, size=(H, W), mode="bilinear",
                              align_corners=False)
                if r:
                    t.append(time.time() - t0)
    t.sort()
    med = t[len(t) // 2] if len(t) % 2 else 0.5 * (t[len(t) // 2 - 1] +
                                                   t[len(t) // 2])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("%s %.3f 0 %.0f" % (mode, med, rss))


if __name__ == "__main__":
    main()
