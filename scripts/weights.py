#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""ImageNet ResNet-50 weights for sfc (scripts/weights.sh drives this).

  weights.py check FILE        FILE is a complete safetensors file holding
                               torchvision's ResNet-50 (every key with its
                               shape, float32; fc.* and num_batches_tracked
                               optional); prints one line, exit 1 if not
  weights.py convert IN OUT    a PyTorch checkpoint (torch.save of a
                               state_dict, e.g. torchvision's
                               resnet50-19c8e357.pth) to safetensors with the
                               same key names, written atomically; needs torch

check uses the standard library only; convert imports torch (Debian's
python3-torch). Errors are one line on stderr, exit status 1."""
import json
import os
import sys

PROG = "weights"


def die(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.exit(1)


def resnet50_shapes():
    """torchvision's resnet50() state_dict: key -> shape (fc excluded)."""
    s = {"conv1.weight": [64, 3, 7, 7]}

    def bn(name, c):
        for k in ("weight", "bias", "running_mean", "running_var"):
            s["%s.%s" % (name, k)] = [c]

    bn("bn1", 64)
    inp = 64
    for li, nb in enumerate([3, 4, 6, 3]):
        p = 64 << li
        for b in range(nb):
            pre = "layer%d.%d." % (li + 1, b)
            s[pre + "conv1.weight"] = [p, inp, 1, 1]
            bn(pre + "bn1", p)
            s[pre + "conv2.weight"] = [p, p, 3, 3]
            bn(pre + "bn2", p)
            s[pre + "conv3.weight"] = [4 * p, p, 1, 1]
            bn(pre + "bn3", 4 * p)
            if b == 0:
                s[pre + "downsample.0.weight"] = [4 * p, inp, 1, 1]
                bn(pre + "downsample.1", 4 * p)
            inp = 4 * p
    return s


def read_header(path):
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > size - 8:
                die("'%s' is not a safetensors file (header length %d, file "
                    "%d bytes)" % (path, n, size))
            h = json.loads(f.read(n))
    except OSError as e:
        die("cannot read '%s': %s" % (path, e.strerror))
    except ValueError:
        die("'%s' is not a safetensors file (bad header)" % path)
    return h, size - 8 - n


def check(path):
    h, data = read_header(path)
    want = resnet50_shapes()
    end, nparam = 0, 0
    for k, v in h.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        end = max(end, e)
        if k in want:
            if v["dtype"] != "F32" or v["shape"] != want[k]:
                die("'%s': %s is %s %s, ResNet-50 has F32 %s" % (
                    path, k, v["dtype"], v["shape"], want[k]))
            nparam += 1
        elif not (k.startswith("fc.") or k.endswith(".num_batches_tracked")):
            die("'%s': unexpected tensor %s (not torchvision's ResNet-50)"
                % (path, k))
    if end != data:
        die("'%s' is truncated or padded: tensors end at byte %d of %d"
            % (path, end, data))
    missing = sorted(set(want) - set(h))
    if missing:
        die("'%s' lacks %d ResNet-50 tensors, e.g. %s"
            % (path, len(missing), missing[0]))
    print("%s: torchvision ResNet-50, %d tensors checked" % (path, nparam))


def convert(src, dst):
    try:
        import torch
    except ImportError:
        die("converting '%s' needs python3-torch (make deps)" % src)
    try:
        sd = torch.load(src, map_location="cpu")
    except Exception as e:  # torch raises many kinds; one line for all
        die("cannot read '%s' as a PyTorch checkpoint: %s"
            % (src, str(e).splitlines()[0] if str(e) else type(e).__name__))
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not sd:
        die("'%s' holds no state_dict" % src)
    header, blobs, off = {}, [], 0
    for name, t in sd.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if not torch.is_tensor(t):
            die("'%s': %s is not a tensor" % (src, name))
        if t.is_floating_point():
            a, dt = t.detach().float().contiguous().numpy(), "F32"
        elif t.dtype == torch.int64:
            a, dt = t.contiguous().numpy(), "I64"
        else:
            die("'%s': %s has dtype %s" % (src, name, t.dtype))
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = "%s.tmp.%d" % (dst, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(len(h).to_bytes(8, "little"))
            f.write(h)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        die("cannot write '%s': %s" % (dst, e.strerror))


def main(argv):
    if len(argv) == 3 and argv[1] == "check":
        check(argv[2])
    elif len(argv) == 4 and argv[1] == "convert":
        convert(argv[2], argv[3])
    else:
        sys.stderr.write("usage: weights.py check FILE | convert IN.pth "
                         "OUT.safetensors\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
