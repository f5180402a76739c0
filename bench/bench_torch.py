#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch side of make bench (bench/run.sh): the same configurations as
bench-resnet.c, one per process, printing "mode median_s GFLOP/s peak_MB"
with the same nominal FLOP count. torchvision's resnet50 with layer4's
stride set to 1 (IRN/SFC strides 2,2,2,1), eval mode (frozen BN).
train: batch 20 in one step, conv1..layer2 run without grad (SFC detaches
their output), backward from layer4."""
import resource
import statistics
import sys
import time

import torch
import torchvision


def conv_flops(m, x, frozen_below=None):
    """2 x multiply-adds of every conv in the forward of x."""
    total = [0.0, 0.0]  # all, stages >= 3 (layer3, layer4)

    def hook(mod, inp, out):
        k = mod.kernel_size[0] * mod.kernel_size[1]
        f = 2.0 * out.numel() * mod.in_channels * k
        total[0] += f
        if getattr(mod, "_late", False):
            total[1] += f
    hs = []
    for name, mod in m.named_modules():
        if isinstance(mod, torch.nn.Conv2d):
            mod._late = name.startswith("layer3") or name.startswith("layer4")
            hs.append(mod.register_forward_hook(hook))
    with torch.no_grad():
        m(x)
    for h in hs:
        h.remove()
    return total


def main():
    mode = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(2)
    torch.manual_seed(1)
    m = torchvision.models.resnet50()
    m.layer4[0].conv2.stride = (1, 1)
    m.layer4[0].downsample[0].stride = (1, 1)
    m.fc = torch.nn.Identity()
    m.avgpool = torch.nn.Identity()
    m.eval()
    N = 20 if mode == "train" else 1
    x = torch.randn(N, 3, 512, 512)
    fl_all, fl_late = conv_flops(m, x[:1])
    fl_all *= N
    fl_late *= N
    stem = torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool)

    def feats(x, frozen):
        mods = [stem, m.layer1, m.layer2, m.layer3, m.layer4]
        for s, mod in enumerate(mods):
            if s < frozen:
                with torch.no_grad():
                    x = mod(x)
            else:
                x = mod(x)
        return x

    d4 = None
    if mode == "fwd":
        def step():
            with torch.no_grad():
                feats(x, 0)
        flops = fl_all
    elif mode in ("fwdbwd", "train"):
        frozen = 3 if mode == "train" else 0
        for s, mod in enumerate([stem, m.layer1, m.layer2, m.layer3,
                                 m.layer4]):
            for p in mod.parameters():
                p.requires_grad_(s >= frozen)
        d4 = torch.randn(feats(x[:1], 5).shape[1:]).expand(N, -1, -1, -1)

        def step():
            m.zero_grad(set_to_none=False)
            f = feats(x, frozen)
            f.backward(d4)
        flops = fl_all + 2 * (fl_late if mode == "train" else fl_all)
    else:
        raise SystemExit("unknown mode " + mode)
    t = []
    for r in range(runs + 1):
        t0 = time.perf_counter()
        step()
        if r:
            t.append(time.perf_counter() - t0)
    med = statistics.median(t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("%s %.4f %.1f %.0f" % (mode, med / N, flops / med / 1e9, peak))


if __name__ == "__main__":
    main()
