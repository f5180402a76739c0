# t0920: `make weights` (scripts/weights.sh, scripts/weights.py) offline:
# an unreachable URL fails with one line and leaves nothing; files that are
# not torchvision's ResNet-50 (truncated, another network) are refused with
# one line. With python3-torch: torchvision's resnet50() saved by
# torch.save converts to safetensors holding the same tensors (read back
# with numpy), a file:// "download" is checked against WEIGHTS_SHA256 and
# the <name>-<sha256 prefix>.pth convention. (test-resnet loads a
# converted .pth and checks the engine's forward against torch's.)
# Needs: make, sha256sum, /usr/bin/python3.
. tests/cli/lib.sh

SRC=$(pwd)
w() {
    make -s --no-print-directory -C "$T" -f "$SRC/pipelines/voc.mk" weights "$@"
}
# one line from the script (make's own "***" line aside), no output file
refused() {
    want=$1
    out=$2
    shift 2
    nchecks=$((nchecks + 1))
    if w "$@" >"$T/.out" 2>"$T/.err"; then
        fail "make weights accepted: $*"
        return
    fi
    grep -v -e '^make\(\[[0-9]*\]\)\{0,1\}: \*\*\*' -e '^weights: ImageNet ResNet-50' "$T/.err" \
        > "$T/.err1"
    if [ "$(wc -l < "$T/.err1")" -ne 1 ] || ! grep -q "$want" "$T/.err1"; then
        fail "expected one line with '$want', got: $(cat "$T/.err")"
    fi
    check "no file left at $out" test ! -e "$T/$out" -a ! -e "$T/$out.part"
}

refused "cannot download" w.safetensors WEIGHTS=w.safetensors \
    WEIGHTS_URL=http://127.0.0.1:9/model.safetensors
refused "cannot read" w.safetensors WEIGHTS=w.safetensors \
    WEIGHTS_FROM="$T/missing.pth"
printf 'not a safetensors file' > "$T/junk.safetensors"
refused "not a safetensors" w.safetensors WEIGHTS=w.safetensors \
    WEIGHTS_FROM="$T/junk.safetensors"
# a safetensors of another network (a golden tiny ResNet)
refused "ResNet-50" w.safetensors WEIGHTS=w.safetensors \
    WEIGHTS_FROM="$SRC/tests/golden/resnet/tiny_sfc.weights.safetensors"

if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
    /usr/bin/python3 - "$T" <<'EOF'
import sys, torch, torchvision
torch.manual_seed(1)
m = torchvision.models.resnet50()
for mod in m.modules():  # non-trivial BN statistics
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-1, 1)
        mod.running_var.uniform_(0.5, 2)
torch.save(m.state_dict(), sys.argv[1] + "/r50.pth")
EOF
    expect_ok w WEIGHTS=w.safetensors WEIGHTS_FROM="$T/r50.pth"
    check "converted" test -s "$T/w.safetensors"
    check "the same tensors as torch.load" /usr/bin/python3 - "$T" <<'EOF'
import json, sys
import numpy as np, torch
d = sys.argv[1]
sd = torch.load(d + "/r50.pth")
b = open(d + "/w.safetensors", "rb").read()
n = int.from_bytes(b[:8], "little")
h = json.loads(b[8:8 + n])
assert set(h) == set(sd), set(h) ^ set(sd)
for k, t in sd.items():
    s, e = h[k]["data_offsets"]
    dt = {"F32": np.float32, "I64": np.int64}[h[k]["dtype"]]
    a = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(h[k]["shape"])
    assert np.array_equal(a, t.numpy()), k
EOF
    # an existing file is checked
    expect_ok w WEIGHTS=w.safetensors
    check "check prints the sha256" grep -q "^sha256 [0-9a-f]\{64\}$" "$T/.out"
    sum=$(sha256sum "$T/w.safetensors" | cut -d' ' -f1)
    refused "expected 0000" w2.safetensors WEIGHTS=w2.safetensors \
        WEIGHTS_URL="file://$T/w.safetensors" WEIGHTS_SHA256=0000
    expect_ok w WEIGHTS=w2.safetensors WEIGHTS_URL="file://$T/w.safetensors" \
        WEIGHTS_SHA256="$sum"
    same_bytes "$T/w.safetensors" "$T/w2.safetensors"
    # torchvision's file names carry the sha256 prefix
    cp "$T/r50.pth" "$T/resnet50-00000000.pth"
    refused "its name says 00000000" w3.safetensors WEIGHTS=w3.safetensors \
        WEIGHTS_URL="file://$T/resnet50-00000000.pth"
    head -c 1000000 "$T/w.safetensors" > "$T/cut.safetensors"
    refused "truncated" cut2.safetensors WEIGHTS=cut2.safetensors \
        WEIGHTS_FROM="$T/cut.safetensors"
else
    echo "note: no python3-torch; conversion not tested" >&2
fi
finish
