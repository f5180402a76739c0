#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for sfc-cam (sfc-reference.md §3): loads a checkpoint written by
sfc-trainstep (safetensors read with json + numpy; the network rebuilt from
its sfc.* metadata with ref_sfc.py's PyTorch re-expression), computes the
multi-scale CAMs of the given images (PIL bicubic scales with np.round
sizes, image + flip, bilinear resize to full size, sum over scales,
max-normalisation, background + 0.4, foreground x 2, present classes kept)
and compares them with sfc-cam's .npz files.

Usage: ref_cam.py CKPT CAM_DIR SCALES IMAGE:LABELS...
  (LABELS = comma-separated class ids); exit 1 if any map differs by more
  than 1e-3 of its range.
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ref_sfc import SFCNet, cam_infer

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    tensors = {}
    for k, v in head.items():
        b, e = v["data_offsets"]
        dt = {"F32": np.float32, "I64": np.int64}[v["dtype"]]
        tensors[k] = torch.from_numpy(
            np.frombuffer(data[b:e], dt).reshape(v["shape"]).copy())
    return tensors, meta


def ints(s):
    return [int(x) for x in s.split(",")]


def main():
    ckpt, camdir, scales = sys.argv[1], sys.argv[2], sys.argv[3]
    scales = [float(s) for s in scales.split(",")]
    t, meta = load(ckpt)
    st = ints(meta["sfc.strides"])
    net = SFCNet(C=int(meta["sfc.classes"]), side=ints(meta["sfc.side"]),
                 blocks=ints(meta["sfc.blocks"]),
                 width=int(meta["sfc.width"]),
                 strides=(int(meta["sfc.stem_stride"]), st[1], st[2], st[3]))
    sd = {("backbone." + k if not k.split(".")[0] in
           ("classifier", "f9", "side1", "side2", "side3", "side4") else k): v
          for k, v in t.items() if not k.startswith("optim.")}
    net.load_state_dict(sd, strict=True)
    torch.set_num_threads(1)
    bad = 0
    for arg in sys.argv[4:]:
        path, labels = arg.split(":")
        labels = [int(x) for x in labels.split(",") if x]
        rgb = np.asarray(Image.open(path).convert("RGB"))
        H, W = rgb.shape[:2]
        keys = np.array([0] + sorted(labels), np.int64)
        y21 = torch.zeros(net.C + 1)
        y21[keys] = 1
        sw = torch.zeros(net.C + 1, H, W)
        sp = torch.zeros(net.C + 1, H, W)
        sc = torch.zeros(net.C + 1, H, W)
        with torch.no_grad():
            for s in scales:
                im = rgb
                if s != 1:
                    size = (int(np.round(W * s)), int(np.round(H * s)))
                    im = np.asarray(Image.fromarray(rgb).resize(size,
                                                                Image.BICUBIC))
                x = torch.from_numpy(((im / 255.0 - MEAN) / STD)
                                     .astype(np.float32).transpose(2, 0, 1))
                mw, mp, mc = cam_infer(net, torch.stack([x, x.flip(-1)]), y21,
                                       raw=True)
                sw += F.interpolate(mw[None], (H, W), mode="bilinear",
                                    align_corners=False)[0]
                sp += F.interpolate(mp[None], (H, W), mode="bilinear",
                                    align_corners=False)[0]
                sc += F.interpolate(mc[None], (H, W), mode="bilinear",
                                    align_corners=False)[0]
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        z = np.load("%s/%s.npz" % (camdir, stem))
        if not np.array_equal(z["keys"], keys):
            print("%s: keys %s, want %s" % (stem, z["keys"], keys))
            bad += 1
            continue
        for name, m in (("cam_w", sw), ("cam_p", sp), ("cam_c", sc)):
            m = m / (m.amax(dim=(1, 2), keepdim=True) + 1e-5)
            m = torch.cat([m[:1] + 0.4, 2 * m[1:]])[keys].numpy()
            err = np.abs(m - z[name]).max()
            if err > 1e-3 * max(1.0, np.abs(m).max()):
                print("%s %s: max abs error %g" % (stem, name, err))
                bad += 1
    print("%d images, %d maps differ" % (len(sys.argv) - 4, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
