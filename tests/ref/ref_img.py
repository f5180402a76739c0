#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/img.c: PIL and numpy write the inputs and the expected
decodes; they also check the label PNGs and RGB PNGs that the C side wrote.

  ref_img.py --golden              cases into tests/golden/img/
  ref_img.py --out DIR --seed S    fresh cases into DIR
  ref_img.py --check DIR           verify C-written files in DIR:
      label_c.png  (+ label_c.npy)  PIL mode "P", same indices, VOC palette
      rgb_c.png    (+ rgb_c.npy)    PIL reads the same RGB pixels
Expected arrays are .npy (uint8): images (H, W, 3), labels (H, W).
"""
import argparse
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image


def voc_palette():
    # VOC devkit colour map, written from its definition: bit k of the
    # class id's r/g/b triple (bits 0, 1, 2 of each octal digit) goes to
    # bit 7 - k of the channel.
    pal = np.zeros((256, 3), np.uint8)
    for i in range(256):
        bits = [(i >> s) & 1 for s in range(24)]
        for ch in range(3):
            v = 0
            for k in range(8):
                v += bits[3 * k + ch] << (7 - k)
            pal[i, ch] = v
    return pal


def png16(path, arr):
    """A minimal 16-bit PNG writer (PIL cannot write 16-bit RGB)."""
    h, w = arr.shape[:2]
    ct = 2 if arr.ndim == 3 else 0
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, ct, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))


def to8(v16):
    # round(v * 255 / 65535), the rule img.c documents
    return ((v16.astype(np.uint64) * 255 + 32767) // 65535).astype(np.uint8)


def smooth_rgb(rng, h, w):
    # a smooth field plus a little noise, so JPEG has something realistic
    y, x = np.mgrid[0:h, 0:w]
    out = np.zeros((h, w, 3))
    for c in range(3):
        a, b, p = rng.uniform(0.05, 0.3, 3)
        out[..., c] = 128 + 90 * np.sin(a * x + b * y + p * 6)
    out += rng.normal(0, 8, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def write_cases(d, seed):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(9, 24)), int(rng.integers(9, 24))
    save = lambda name, a: np.save(os.path.join(d, name), a)
    p = lambda name: os.path.join(d, name)

    np.save(p("voc_palette.npy"), voc_palette())

    # palette PNG with a random (non-VOC) palette: the reader must return
    # indices, not colours; 255 appears as in VOC's ignore label
    idx = rng.integers(0, 21, (h, w)).astype(np.uint8)
    idx[rng.random((h, w)) < 0.1] = 255
    im = Image.fromarray(idx, "P")
    pal = rng.integers(0, 256, (256, 3)).astype(np.uint8)
    im.putpalette(pal.tobytes())
    im.save(p("pal8.png"))
    save("pal8_label.npy", idx)
    save("pal8_rgb.npy", pal[idx])

    # 4-bit palette PNG (bit depth < 8 must be unpacked, unscaled)
    idx4 = rng.integers(0, 16, (h, w)).astype(np.uint8)
    im = Image.fromarray(idx4, "P")
    im.putpalette(pal[:16].tobytes())
    im.save(p("pal4.png"), bits=4)
    save("pal4_label.npy", idx4)

    # grayscale label / image
    g = rng.integers(0, 256, (h, w)).astype(np.uint8)
    Image.fromarray(g, "L").save(p("gray.png"))
    save("gray_label.npy", g)
    save("gray_rgb.npy", np.repeat(g[..., None], 3, 2))

    # RGB, RGBA (alpha dropped), LA (grey replicated)
    rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(p("rgb.png"))
    save("rgb_rgb.npy", rgb)
    rgba = rng.integers(0, 256, (h, w, 4)).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(p("rgba.png"))
    save("rgba_rgb.npy", np.asarray(Image.open(p("rgba.png")).convert("RGB")))
    la = rng.integers(0, 256, (h, w, 2)).astype(np.uint8)
    Image.fromarray(la, "LA").save(p("la.png"))
    save("la_rgb.npy", np.repeat(la[..., :1], 3, 2))

    # 16-bit RGB and grey
    v = rng.integers(0, 65536, (h, w, 3)).astype(np.uint16)
    v[0, 0] = (0, 65535, 257 * 17)
    png16(p("rgb16.png"), v)
    save("rgb16_rgb.npy", to8(v))
    g16 = rng.integers(0, 65536, (h, w)).astype(np.uint16)
    png16(p("gray16.png"), g16)
    save("gray16_rgb.npy", np.repeat(to8(g16)[..., None], 3, 2))

    # JPEG (colour and grey): expected = PIL's decode
    jh, jw = int(rng.integers(16, 40)), int(rng.integers(16, 40))
    Image.fromarray(smooth_rgb(rng, jh, jw)).save(p("rgb.jpg"), quality=90)
    save("rgb_jpg_rgb.npy", np.asarray(Image.open(p("rgb.jpg")).convert("RGB")))
    gj = smooth_rgb(rng, jh, jw)[..., 1]
    Image.fromarray(gj, "L").save(p("gray.jpg"), quality=85)
    save("gray_jpg_rgb.npy",
         np.asarray(Image.open(p("gray.jpg")).convert("RGB")))


def check(d):
    ok = True
    voc = voc_palette()
    lab = os.path.join(d, "label_c.png")
    if os.path.exists(lab):
        im = Image.open(lab)
        want = np.load(os.path.join(d, "label_c.npy"))
        if im.mode != "P":
            print(f"{lab}: PIL mode {im.mode}, want P")
            ok = False
        else:
            got = np.asarray(im)
            if got.shape != want.shape or (got != want).any():
                print(f"{lab}: indices differ from label_c.npy")
                ok = False
            pal = np.frombuffer(bytes(im.getpalette()), np.uint8)
            pal = pal.reshape(-1, 3)
            if pal.shape[0] < 256 or (pal[:256] != voc).any():
                print(f"{lab}: palette is not the VOC colour map")
                ok = False
    rgbp = os.path.join(d, "rgb_c.png")
    if os.path.exists(rgbp):
        got = np.asarray(Image.open(rgbp).convert("RGB"))
        want = np.load(os.path.join(d, "rgb_c.npy"))
        if got.shape != want.shape or (got != want).any():
            print(f"{rgbp}: pixels differ from rgb_c.npy")
            ok = False
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check")
    a = ap.parse_args()
    if a.check:
        sys.exit(0 if check(a.check) else 1)
    if a.golden:
        here = os.path.dirname(os.path.abspath(__file__))
        write_cases(os.path.join(here, "..", "golden", "img"), 20240101)
    elif a.out:
        write_cases(a.out, a.seed)
    else:
        ap.error("give --golden, --out DIR or --check DIR")


if __name__ == "__main__":
    main()
