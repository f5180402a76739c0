#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Oracle for lib/npy.c and lib/safetensors.c (tests/test-npy.c,
tests/test-safetensors.c).

numpy writes .npy/.npz files (np.save, np.savez, np.savez_compressed,
np.lib.format.write_array for versions 2.0/3.0) and a manifest that tells
the C test what each file must contain (dtype, shape, raw little-endian
bytes as hex) or which error it must produce. Safetensors files are
written here with Python's json module and numpy, since Debian has no
safetensors package, in two layouts: the one the safetensors library uses
(metadata first, data ordered by dtype then name) and a shuffled one
(header keys in a different order from the data).

  --golden             write the fixed-seed cases into tests/golden/formats/
  --out DIR --seed S   write fresh random cases into DIR
  --torch DIR --seed S a torchvision resnet18 state dict (random init and
                       random BN statistics) as DIR/resnet18.safetensors,
                       with per-tensor sums in DIR/manifest-torch.txt
  --verify DIR         check the files the C test wrote, listed in
                       DIR/verify.txt (np.load, our json reader, and
                       load_state_dict(strict=True) into torchvision's
                       resnet18 for the checkpoint); exit 1 on mismatch

Manifest lines (whitespace separated; hex = raw little-endian bytes, "-"
for none; names never contain spaces):
  npy FILE DTYPE NDIM DIMS... HEX      the .npy must read as this array
  npybytes FILE                        re-encoding it gives the same bytes
  npz FILE MEMBER DTYPE NDIM DIMS... HEX
  npzmembers FILE NAMES...             members, in archive order
  st FILE NAME DTYPE NDIM DIMS... HEX  (safetensors; dtype F32 or I64)
  storder FILE NAMES...                tensor order in the data section
  stmeta FILE KEYHEX VALUEHEX          a __metadata__ pair (UTF-8 as hex)
  stbytes FILE                         rewriting it gives the same bytes
  stsum FILE NAME DTYPE NDIM DIMS... SUM   (sum in float64, for big ones)
  reject KIND FILE SUBSTRING...        KIND npy|npz|st: reading fails with
                                       "<FILE>: ..." containing SUBSTRING
"""
import argparse
import io
import json
import os
import struct
import sys
import time
import zipfile
import zlib

import numpy as np

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                      "golden", "formats")
NPDT = {"float32": "<f4", "uint8": "|u1", "int32": "<i4", "int64": "<i8",
        "float16": "<f2"}
STDT = {"F32": "<f4", "I64": "<i8"}
# Rust safetensors Dtype enum order (data is sorted by dtype, descending).
ST_RANK = {"U8": 1, "I32": 9, "F32": 11, "I64": 13}


def hexof(a):
    b = np.ascontiguousarray(a).tobytes()
    return b.hex() if b else "-"


def dims(a):
    return " ".join([str(a.ndim)] + [str(d) for d in a.shape])


def rand_array(rng, dtype, shape):
    if dtype == "float32":
        return rng.standard_normal(shape).astype("<f4")
    if dtype == "float16":
        return rng.standard_normal(shape).astype("<f2")
    if dtype == "uint8":
        return rng.integers(0, 256, shape).astype("|u1")
    if dtype == "int32":
        return rng.integers(-2**31, 2**31, shape, dtype=np.int64).astype("<i4")
    return rng.integers(-2**63, 2**63 - 1, shape, dtype=np.int64).astype("<i8")


class Out:
    def __init__(self, d):
        self.d = d
        os.makedirs(d, exist_ok=True)
        self.lines = []

    def path(self, name):
        return os.path.join(self.d, name)

    def raw(self, name, data):
        with open(self.path(name), "wb") as f:
            f.write(data)

    def line(self, *words):
        self.lines.append(" ".join(str(w) for w in words))

    def close(self, name="manifest.txt"):
        with open(self.path(name), "w") as f:
            f.write("\n".join(self.lines) + "\n")


# ---------------------------------------------------------------------
# .npy / .npz cases

def npy_cases(o, rng, fresh):
    """Every dtype in 0-d, 1-d, 4-d and empty shapes, written by np.save."""
    shapes = [(), (7,), (2, 3, 4, 5), (0,), (3, 0, 2), (5, 6)]
    if fresh:
        shapes = [(), tuple(rng.integers(1, 9, 1)),
                  tuple(rng.integers(1, 5, 4)), (0,),
                  tuple(rng.integers(0, 4, 3)), tuple(rng.integers(1, 12, 2))]
    arrays = {}
    for dt in NPDT:
        for k, shp in enumerate(shapes):
            a = rand_array(rng, dt, shp)
            name = "%s-%d.npy" % (dt, k)
            np.save(o.path(name), a)
            o.line("npy", name, dt, dims(a), hexof(a))
            o.line("npybytes", name)
            arrays["%s_%d" % (dt, k)] = a
    # Header versions 2.0 and 3.0 (np.save picks 1.0 for small headers).
    for ver in [(2, 0), (3, 0)]:
        a = rand_array(rng, "float32", (3, 4))
        name = "v%d.npy" % ver[0]
        with open(o.path(name), "wb") as f:
            np.lib.format.write_array(f, a, version=ver)
        o.line("npy", name, "float32", dims(a), hexof(a))
    # A Fortran-ordered 1-d array is the same bytes; np.save writes False,
    # so spell out the header by hand to check we accept True there.
    a = rand_array(rng, "int32", (5,))
    hdr = "{'descr': '<i4', 'fortran_order': True, 'shape': (5,), }"
    o.raw("fortran-1d.npy", wrap_header(hdr) + a.tobytes())
    o.line("npy", "fortran-1d.npy", "int32", dims(a), hexof(a))

    # .npz: stored and deflated, several members, in insertion order.
    some = {k: arrays[k] for k in sorted(arrays)[:: 3 if fresh else 2]}
    np.savez(o.path("stored.npz"), **some)
    np.savez_compressed(o.path("deflated.npz"), **some)
    for f in ["stored.npz", "deflated.npz"]:
        o.line("npzmembers", f, *some.keys())
        for k, a in some.items():
            o.line("npz", f, k, str(a.dtype), dims(a), hexof(a))
    # Positional arrays get numpy's arr_N names.
    a = rand_array(rng, "uint8", (2, 2))
    np.savez(o.path("positional.npz"), a)
    o.line("npz", "positional.npz", "arr_0", "uint8", dims(a), hexof(a))
    np.savez(o.path("empty.npz"))
    o.line("npzmembers", "empty.npz")
    # zip64 everywhere (central extras for sizes and offsets, zip64 end
    # records): lower zipfile's limits as CPython's own tests do.
    lim = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 16, 1
    try:
        np.savez_compressed(o.path("zip64.npz"), x=arrays["float32_2"],
                            y=arrays["int64_5"])
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = lim
    o.line("npzmembers", "zip64.npz", "x", "y")
    o.line("npz", "zip64.npz", "x", "float32", dims(arrays["float32_2"]),
           hexof(arrays["float32_2"]))
    o.line("npz", "zip64.npz", "y", "int64", dims(arrays["int64_5"]),
           hexof(arrays["int64_5"]))


def wrap_header(text, version=(1, 0)):
    """The header numpy writes for a dict literal (format.py _wrap_header)."""
    pre = 10 if version[0] == 1 else 12
    hlen = len(text) + 1
    pad = 64 - (pre + hlen) % 64
    fmt = "<H" if version[0] == 1 else "<I"
    return (b"\x93NUMPY" + bytes(version) + struct.pack(fmt, hlen + pad) +
            text.encode("latin1") + b" " * pad + b"\n")


def npy_bytes(a):
    f = io.BytesIO()
    np.save(f, a, allow_pickle=True)
    return f.getvalue()


def zip_bytes(members, method=zipfile.ZIP_STORED):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return f.getvalue()


def npy_rejects(o, rng):
    good = npy_bytes(rand_array(rng, "float32", (2, 3)))
    cases = [
        ("be.npy", npy_bytes(np.arange(6, dtype=">f4").reshape(2, 3)),
         "big-endian data ('>f4')"),
        ("be-i8.npy", npy_bytes(np.arange(3, dtype=">i8")),
         "big-endian data ('>i8')"),
        ("fortran.npy", npy_bytes(np.asfortranarray(
            np.arange(6, dtype="<f4").reshape(2, 3))),
         "Fortran-order arrays are not supported"),
        ("object.npy", npy_bytes(np.array([1, "a", None], dtype=object)),
         "object arrays are not supported"),
        ("f8.npy", npy_bytes(np.zeros(3)), "unsupported dtype '<f8'"),
        ("bool.npy", npy_bytes(np.zeros(3, bool)), "unsupported dtype '|b1'"),
        ("structured.npy", npy_bytes(np.zeros(2, "i4,f4")),
         "structured dtypes are not supported"),
        ("trunc-data.npy", good[:-3], "truncated data"),
        ("trunc-header.npy", good[:40], "truncated .npy header"),
        ("trunc-magic.npy", good[:5], "truncated .npy header"),
        ("empty.npy", b"", "truncated .npy header"),
        ("long-data.npy", good + b"\0\0\0\0", "where the shape needs"),
        ("huge-header.npy", b"\x93NUMPY\x02\x00" + struct.pack("<I", 2**31)
         + good[10:], "exceeds the limit"),
        ("bad-magic.npy", b"\x93NUMPZ" + good[6:], "bad magic"),
        ("bad-version.npy", good[:6] + b"\x04\x00" + good[8:],
         "unsupported .npy format version 4.0"),
        ("bad-dict.npy", wrap_header("{'descr': '<f4', 'fortran_order': "
                                     "False, 'shape': (2, 3), ") +
         bytes(24), "malformed .npy header"),
        ("bad-key.npy", wrap_header("{'descr': '<f4', 'fortran_order': "
                                    "False, 'shape': (2,), 'x': 1, }") +
         bytes(8), "unexpected key 'x'"),
        ("no-shape.npy", wrap_header("{'descr': '<f4', 'fortran_order': "
                                     "False, }"), "lacks"),
        ("npz-as-npy.npy", zip_bytes([("a.npy", good)]), "is an .npz archive"),
    ]
    for name, data, msg in cases:
        o.raw(name, data)
        o.line("reject", "npy", name, msg)


def npz_rejects(o, rng):
    good = npy_bytes(rand_array(rng, "float32", (4, 4)))
    stored = zip_bytes([("a.npy", good), ("b.npy", good)])
    cases = []
    # Flip a data byte of the first stored member: CRC mismatch.
    i = stored.index(good) + len(good) - 1
    cases.append(("crc.npz", stored[:i] + bytes([stored[i] ^ 1]) +
                  stored[i + 1:], "member 'a.npy': CRC mismatch"))
    # Damage the CRC field in the central directory of a deflated archive.
    defl = zip_bytes([("a.npy", good)], zipfile.ZIP_DEFLATED)
    c = defl.index(b"PK\x01\x02")
    cases.append(("crc-deflate.npz", defl[:c + 16] + b"\0\0\0\0" +
                  defl[c + 20:], "member 'a.npy': CRC mismatch"))
    # Invalid deflate data: a reserved block type (BTYPE=11) at the start.
    lo = defl.index(b"a.npy") + 5
    cases.append(("bad-deflate.npz", defl[:lo] + b"\xff" + defl[lo + 1:],
                  "member 'a.npy': corrupt deflate data"))
    cases.append(("trunc.npz", stored[:len(stored) // 2],
                  "truncated zip archive"))
    cases.append(("trunc-tail.npz", stored[:-5], "truncated zip archive"))
    cases.append(("not-npy-member.npz", zip_bytes([("readme.txt", b"hi")]),
                  "member 'readme.txt' is not an .npy array"))
    cases.append(("be-member.npz", zip_bytes(
        [("x.npy", npy_bytes(np.zeros(2, ">f4")))]),
        "member 'x.npy': big-endian data ('>f4')"))
    cases.append(("trunc-member.npz", zip_bytes([("x.npy", good[:-4])]),
                  "member 'x.npy': truncated data"))
    # Central directory offset pointing past the end record.
    e = stored.rindex(b"PK\x05\x06")
    cases.append(("bad-cd-offset.npz", stored[:e + 16] +
                  struct.pack("<I", len(stored)) + stored[e + 20:],
                  "central directory is out of range"))
    # Local header offset pointing at garbage.
    c = stored.index(b"PK\x01\x02")
    cases.append(("bad-local-offset.npz", stored[:c + 42] +
                  struct.pack("<I", 7) + stored[c + 46:],
                  "bad local header offset"))
    cases.append(("npy-as-npz.npz", good, "is an .npy file, not an .npz"))
    cases.append(("not-zip.npz", b"hello, this is not a zip archive\n" * 3,
                  "not a zip archive"))
    cases.append(("bzip2.npz", zip_bytes([("a.npy", good)], zipfile.ZIP_BZIP2),
                  "unsupported compression method 12"))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dup = zip_bytes([("a.npy", good), ("a.npy", good)])
    cases.append(("dup.npz", dup, "duplicate member 'a.npy'"))
    # A stored member whose central sizes disagree with each other.
    cases.append(("size-lie.npz", stored[:c + 20] +
                  struct.pack("<I", len(good) - 8) + stored[c + 24:],
                  "different sizes"))
    for name, data, msg in cases:
        o.raw(name, data)
        o.line("reject", "npz", name, msg)


# ---------------------------------------------------------------------
# safetensors, written with json + numpy

def st_bytes(tensors, meta=None, layout="sfc", rng=None, pad=True):
    """tensors: list of (name, array) in the order given. layout "sfc":
    header keys and data in the given order (what our writer does); "hf":
    data sorted by (dtype rank desc, name) as the safetensors library
    writes it; "shuffled": data in the given order, header keys shuffled."""
    items = list(tensors)
    if layout == "hf":
        items.sort(key=lambda t: (-ST_RANK[stdtype(t[1])], t[0]))
    hdr = {}
    if meta is not None:
        hdr["__metadata__"] = dict(meta)
    off = 0
    entries = []
    for name, a in items:
        n = a.nbytes
        entries.append((name, {"dtype": stdtype(a), "shape": list(a.shape),
                               "data_offsets": [off, off + n]}))
        off += n
    if layout == "shuffled":
        perm = rng.permutation(len(entries))
        entries = [entries[i] for i in perm]
    for name, e in entries:
        hdr[name] = e
    text = json.dumps(hdr, separators=(",", ":"), ensure_ascii=False)
    text = text.encode("utf-8")
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    data = b"".join(np.ascontiguousarray(a).tobytes() for _, a in items)
    return struct.pack("<Q", len(text)) + text + data, [n for n, _ in items]


def stdtype(a):
    return {"<f4": "F32", "<i8": "I64"}[a.dtype.str]


def st_read(path):
    """Independent reader (json + numpy): ordered dict name -> array,
    metadata, data order."""
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    hdr = json.loads(b[8:8 + n].decode("utf-8"))
    meta = hdr.pop("__metadata__", {})
    data = b[8 + n:]
    out = {}
    order = sorted(hdr, key=lambda k: hdr[k]["data_offsets"][0])
    expect = 0
    for k in order:
        e = hdr[k]
        lo, hi = e["data_offsets"]
        assert lo == expect, (k, lo, expect)
        expect = hi
        a = np.frombuffer(data[lo:hi], dtype=STDT[e["dtype"]])
        out[k] = a.reshape(e["shape"])
    assert expect == len(data), "trailing data"
    return out, meta, order


def tiny_state_dict(rng, fresh):
    """torchvision resnet key names and shapes, scaled down."""
    c = int(rng.integers(2, 6)) if fresh else 4
    sd = []

    def conv(name, oc, ic, k):
        sd.append((name + ".weight",
                   rand_array(rng, "float32", (oc, ic, k, k))))

    def bn(name, ch):
        sd.append((name + ".weight", rand_array(rng, "float32", (ch,))))
        sd.append((name + ".bias", rand_array(rng, "float32", (ch,))))
        sd.append((name + ".running_mean", rand_array(rng, "float32", (ch,))))
        sd.append((name + ".running_var",
                   np.abs(rand_array(rng, "float32", (ch,))) + 0.5))
        sd.append((name + ".num_batches_tracked",
                   np.array(rng.integers(0, 10**6), dtype="<i8")))

    conv("conv1", c, 3, 3)
    bn("bn1", c)
    conv("layer1.0.conv1", c, c, 3)
    bn("layer1.0.bn1", c)
    conv("layer1.0.downsample.0", 2 * c, c, 1)
    bn("layer1.0.downsample.1", 2 * c)
    sd.append(("fc.weight", rand_array(rng, "float32", (3, 2 * c))))
    sd.append(("fc.bias", rand_array(rng, "float32", (3,))))
    sd.append(("empty", rand_array(rng, "float32", (0, 4))))
    return sd


def st_cases(o, rng, fresh):
    sd = tiny_state_dict(rng, fresh)
    meta = {"format": "pt", "step": str(int(rng.integers(0, 1000))),
            "note": "tab\there, quote \" backslash \\ \u00e9\u4e2d\U0001f600"}
    for layout in ["sfc", "hf", "shuffled"]:
        name = "tiny-%s.safetensors" % layout
        b, order = st_bytes(sd, meta if layout != "shuffled" else None,
                            layout, rng)
        o.raw(name, b)
        o.line("storder", name, *order)
        for k, a in sd:
            o.line("st", name, k, stdtype(a), dims(a), hexof(a))
        if layout != "shuffled":
            for k, v in meta.items():
                o.line("stmeta", name, tohex(k.encode()), tohex(v.encode()))
        if layout == "sfc":
            o.line("stbytes", name)
    # No padding after the JSON, and no metadata.
    b, order = st_bytes(sd[:3], None, "sfc", rng, pad=False)
    o.raw("nopad.safetensors", b)
    o.line("storder", "nopad.safetensors", *order)
    for k, a in sd[:3]:
        o.line("st", "nopad.safetensors", k, stdtype(a), dims(a), hexof(a))
    b, _ = st_bytes([], None)
    o.raw("none.safetensors", b)
    o.line("storder", "none.safetensors")


def st_raw(hdr_text, data=b"", size=None):
    h = hdr_text.encode()
    return struct.pack("<Q", len(h) if size is None else size) + h + data


def st_rejects(o):
    f24 = bytes(24)
    w = '"w":{"dtype":"F32","shape":[2,3],"data_offsets":[%d,%d]}'
    cases = [
        ("badjson.safetensors", st_raw('{"w":{"dtype":"F32",', f24),
         "header: malformed JSON"),
        ("notobject.safetensors", st_raw('[1,2]'), "not a JSON object"),
        ("overlap.safetensors", st_raw(
            '{' + w % (0, 24) + ',"v":{"dtype":"F32","shape":[2],'
            '"data_offsets":[16,24]}}', f24), "overlap"),
        ("gap.safetensors", st_raw('{' + w % (8, 32) + '}', bytes(32)),
         "gap"),
        ("trailing.safetensors", st_raw('{' + w % (0, 24) + '}', bytes(32)),
         "8 bytes after the last tensor"),
        ("range.safetensors", st_raw('{' + w % (0, 24) + '}', bytes(16)),
         "out of range"),
        ("beginend.safetensors", st_raw('{' + w % (24, 0) + '}', f24),
         "tensor 'w': data_offsets begin 24 > end 0"),
        ("size.safetensors", st_raw(
            '{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}',
            bytes(20)), "tensor 'w': shape [2, 3] (F32) needs 24 bytes"),
        ("f16.safetensors", st_raw(
            '{"x.half":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}',
            bytes(4)), "tensor 'x.half': unsupported dtype 'F16'"),
        ("hugeheader.safetensors", st_raw('{}', size=2**40),
         "header size"),
        ("shortheader.safetensors", st_raw('{}', size=100),
         "truncated"),
        ("tiny.safetensors", b"\x10\0\0", "truncated"),
        ("metaint.safetensors", st_raw('{"__metadata__":{"a":1}}'),
         "__metadata__ value 'a' is not a string"),
        ("dupkey.safetensors", st_raw('{' + w % (0, 24) + ',' + w % (0, 24)
                                      + '}', f24), "duplicate"),
        ("noshape.safetensors", st_raw(
            '{"w":{"dtype":"F32","data_offsets":[0,24]}}', f24),
         "tensor 'w': missing 'shape'"),
        ("negshape.safetensors", st_raw(
            '{"w":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]}}',
            f24), "tensor 'w': bad shape"),
        ("trailingjunk.safetensors", st_raw('{} x'), "header: malformed JSON"),
        ("badescape.safetensors", st_raw('{"a\\q":1}'),
         "header: malformed JSON"),
    ]
    for name, data, msg in cases:
        o.raw(name, data)
        o.line("reject", "st", name, msg)


class FixedClock:
    """zipfile stamps members with the current local time; a fixed clock
    keeps the golden archives byte-identical when regenerated."""

    def __getattr__(self, name):
        return getattr(time, name)

    def time(self):
        return 315705600.0  # 1980-01-03 00:00 UTC

    def localtime(self, t=None):
        return time.gmtime(self.time() if t is None else t)


def write_cases(d, seed, fresh):
    zipfile.time = FixedClock()
    rng = np.random.default_rng(seed)
    o = Out(d)
    npy_cases(o, rng, fresh)
    npy_rejects(o, rng)
    npz_rejects(o, rng)
    st_cases(o, rng, fresh)
    st_rejects(o)
    o.close()


# ---------------------------------------------------------------------
# torchvision

def resnet18(seed):
    import torch
    import torchvision
    torch.manual_seed(seed)
    m = torchvision.models.resnet18()
    g = torch.Generator().manual_seed(seed + 1)
    for name, buf in m.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=g))
        elif name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
        elif name.endswith("num_batches_tracked"):
            buf.fill_(int(torch.randint(0, 10**6, (1,), generator=g)))
    return m


def write_torch(d, seed):
    m = resnet18(seed)
    sd = [(k, v.detach().numpy()) for k, v in m.state_dict().items()]
    b, order = st_bytes(sd, {"format": "pt"}, "hf")
    o = Out(d)
    o.raw("resnet18.safetensors", b)
    o.line("storder", "resnet18.safetensors", *order)
    for k, a in sd:
        s = float(a.astype(np.float64).sum())
        o.line("stsum", "resnet18.safetensors", k, stdtype(a), dims(a),
               repr(s))
    o.close("manifest-torch.txt")


# ---------------------------------------------------------------------
# verification of C-written files

def parse_array(words):
    """DTYPE NDIM DIMS... HEX -> array"""
    dt, nd = words[0], int(words[1])
    shape = tuple(int(x) for x in words[2:2 + nd])
    hx = words[2 + nd]
    raw = b"" if hx == "-" else bytes.fromhex(hx)
    npdt = NPDT.get(dt) or STDT[dt]
    return np.frombuffer(raw, dtype=npdt).reshape(shape), words[3 + nd:]


def unhex(h):
    return b"" if h == "-" else bytes.fromhex(h)


def tohex(b):
    return b.hex() if b else "-"


def same(a, b):
    return (a.dtype.str == b.dtype.str and a.shape == b.shape and
            a.tobytes() == b.tobytes())


def verify(d):
    bad = []
    nchecks = 0
    npz_cache = {}
    st_cache = {}

    def check(ok, msg):
        nonlocal nchecks
        nchecks += 1
        if not ok:
            bad.append(msg)

    with open(os.path.join(d, "verify.txt"), encoding="utf-8") as f:
        lines = [ln.split() for ln in f if ln.strip()]
    for w in lines:
        kind, fn = w[0], os.path.join(d, w[1])
        if kind == "npy":
            want, _ = parse_array(w[2:])
            got = np.load(fn)
            check(same(got, want), "%s: np.load differs" % w[1])
            with open(fn, "rb") as f:
                check(f.read() == npy_bytes(want),
                      "%s: bytes differ from np.save" % w[1])
        elif kind in ("npz", "npzmembers"):
            if fn not in npz_cache:
                with np.load(fn) as z:
                    npz_cache[fn] = ({k: z[k] for k in z.files}, z.files)
                with zipfile.ZipFile(fn) as z:
                    check(z.testzip() is None, "%s: zip CRC" % w[1])
            arrs, files = npz_cache[fn]
            if kind == "npz":
                want, _ = parse_array(w[3:])
                check(w[2] in arrs and same(arrs[w[2]], want),
                      "%s: member %s differs" % (w[1], w[2]))
            else:
                check(files == w[2:], "%s: members %s, want %s" %
                      (w[1], files, w[2:]))
        elif kind in ("st", "storder", "stmeta"):
            if fn not in st_cache:
                st_cache[fn] = st_read(fn)
            arrs, meta, order = st_cache[fn]
            if kind == "st":
                want, _ = parse_array(w[3:])
                check(w[2] in arrs and same(arrs[w[2]], want),
                      "%s: tensor %s differs" % (w[1], w[2]))
            elif kind == "storder":
                check(order == w[2:], "%s: data order %s" % (w[1], order))
            else:
                k, v = unhex(w[2]).decode(), unhex(w[3]).decode()
                check(meta.get(k) == v, "%s: metadata %r" % (w[1], k))
        elif kind == "resnet":
            import torch
            seed = int(w[2])
            arrs, meta, order = st_read(fn)
            ref = resnet18(seed)
            m = resnet18(seed + 1000)
            sd = {k: torch.from_numpy(a.copy()) for k, a in arrs.items()}
            m.load_state_dict(sd, strict=True)
            refsd = ref.state_dict()
            check(order == list(refsd), "%s: order is not the state_dict "
                                        "order" % w[1])
            for k, v in m.state_dict().items():
                check(torch.equal(v, refsd[k]), "%s: %s differs" % (w[1], k))
            check(meta.get("step") == w[3], "%s: step metadata" % w[1])
        else:
            check(False, "unknown verify line %r" % w[0])
    for b in bad:
        print("verify:", b, file=sys.stderr)
    print("verify: %d checks, %d failed" % (nchecks, len(bad)),
          file=sys.stderr)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--golden", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--torch")
    ap.add_argument("--verify")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.golden:
        write_cases(GOLDEN, 20240101, False)
    if a.out:
        write_cases(a.out, a.seed, True)
    if a.torch:
        write_torch(a.torch, a.seed)
    if a.verify:
        return verify(a.verify)
    return 0


if __name__ == "__main__":
    sys.exit(main())
