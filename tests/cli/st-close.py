# st-close.py A B [RTOL]: exit 0 if every float32 tensor of safetensors
# file B equals A's within RTOL (default 1e-5) relative to the tensor's
# largest magnitude: max|a - b| <= RTOL * max|a| (exact zeros compare
# exactly); the same keys and shapes. Prints the worst tensor. Used by the
# data-parallel tests (1 vs 2 vs 4 ranks: equal up to summation order).
import json
import struct
import sys

import numpy as np


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__" or v["dtype"] != "F32":
            continue
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[a:b], "<f4").reshape(v["shape"])
    return out


A, B = load(sys.argv[1]), load(sys.argv[2])
rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-5
if A.keys() != B.keys():
    sys.exit("different keys: %s" % sorted(set(A) ^ set(B)))
worst, wk = 0.0, None
for k in A:
    a, b = A[k].astype(np.float64), B[k].astype(np.float64)
    if a.shape != b.shape:
        sys.exit("%s: shape %s vs %s" % (k, a.shape, b.shape))
    scale = np.abs(a).max() if a.size else 0.0
    d = np.abs(a - b).max() if a.size else 0.0
    r = d / scale if scale > 0 else (0.0 if d == 0 else np.inf)
    if r > worst or wk is None:
        worst, wk = r, k
print("worst relative difference %.3g (%s), tolerance %g" % (worst, wk, rtol))
sys.exit(0 if worst <= rtol else 1)
