#!/bin/sh
# SPDX-License-Identifier: MIT
# scripts/weights.sh (`make weights`): torchvision's ImageNet ResNet-50 as
# safetensors for `make voc-pseudolabels WEIGHTS=...`.
#
#   weights.sh OUT [FROM] [URL] [SHA256]
#
# OUT exists: check it (every ResNet-50 key and shape, not truncated) and
# print its sha256. FROM given: a local torchvision .pth (torch.save of a
# state_dict, converted with /usr/bin/python3 and python3-torch) or a
# safetensors file, checked and copied to OUT. Otherwise download URL
# (default: timm's resnet50.tv_in1k, the torchvision weights in
# safetensors with torchvision's key names) with curl or wget; a .pth URL
# is converted. Verified: SHA256 when given; for torchvision's
# <name>-<8 hex>.pth files the hex is the sha256 prefix torch.hub checks;
# always the ResNet-50 structure. Nothing is left at OUT on failure; every
# failure is one line on stderr, exit status 1.
set -u
out=$1
from=${2:-}
url=${3:-https://huggingface.co/timm/resnet50.tv_in1k/resolve/main/model.safetensors}
sha=${4:-}
py=/usr/bin/python3
here=$(dirname "$0")

die() {
    echo "weights: $*" >&2
    rm -f "$out.part" "$out.pth.part"
    exit 1
}

check() {
    "$py" "$here/weights.py" check "$1" || { rm -f "$out.part"; exit 1; }
}

# verify "$1" (a downloaded or given file) against SHA256 and its name
verify() {
    got=$(sha256sum "$1" | cut -d' ' -f1)
    if [ -n "$sha" ] && [ "$got" != "$sha" ]; then
        die "sha256 of '$2' is $got, expected $sha"
    fi
    case $(basename "$2") in
    *-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f].pth)
        pre=$(basename "$2" .pth | sed 's/.*-//')
        case $got in
        "$pre"*) ;;
        *) die "sha256 of '$2' is $got, its name says $pre..." ;;
        esac ;;
    esac
}

# install "$1" (safetensors or .pth) as OUT through OUT.part
install_from() {
    case $1 in
    *.pth|*.pt|*.tar)
        "$py" "$here/weights.py" convert "$1" "$out.part" ||
            { rm -f "$out.part"; exit 1; } ;;
    *)
        cp "$1" "$out.part" || die "cannot copy '$1' to '$out.part'" ;;
    esac
    check "$out.part"
    mv "$out.part" "$out" || die "cannot rename '$out.part' to '$out'"
}

if [ -e "$out" ] && [ -z "$from" ]; then
    check "$out"
    echo "sha256 $(sha256sum "$out" | cut -d' ' -f1)"
    exit 0
fi
if [ -n "$from" ]; then
    [ -r "$from" ] || die "cannot read '$from'"
    verify "$from" "$from"
    install_from "$from"
    echo "sha256 $(sha256sum "$out" | cut -d' ' -f1)"
    exit 0
fi

echo "weights: ImageNet ResNet-50 (torchvision's, ~100 MB) from $url" >&2
case $url in
*.pth) part=$out.pth.part ;;
*) part=$out.part ;;
esac
if command -v curl >/dev/null 2>&1; then
    curl -fsSL --connect-timeout 20 -o "$part" "$url" 2>/dev/null ||
        die "cannot download '$url' (offline?): fetch it elsewhere and run 'make weights WEIGHTS_FROM=FILE' (.pth or .safetensors)"
elif command -v wget >/dev/null 2>&1; then
    wget -q -T 20 -O "$part" "$url" ||
        die "cannot download '$url' (offline?): fetch it elsewhere and run 'make weights WEIGHTS_FROM=FILE' (.pth or .safetensors)"
else
    die "neither curl nor wget: fetch '$url' and run 'make weights WEIGHTS_FROM=FILE'"
fi
verify "$part" "$url"
if [ "$part" = "$out.pth.part" ]; then
    mv "$part" "$out.pth" || die "cannot keep '$out.pth'"
    install_from "$out.pth"
    rm -f "$out.pth"
else
    check "$part"
    mv "$part" "$out" || die "cannot rename '$part' to '$out'"
fi
echo "sha256 $(sha256sum "$out" | cut -d' ' -f1)"
