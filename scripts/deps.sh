#!/bin/sh
# Install the Debian packages sfc needs, when they are missing.
# Build: libvips-dev libpng-dev libopenblas-dev libsqlite3-dev zlib1g-dev pkg-config
# libyajl-dev (streaming JSON, COCO annotations);
# tools: sqlite3; test oracles: python3-torch python3-torchvision python3-numpy
# python3-pil; sfc-report's figures: gnuplot-nox; its browser test: chromium;
# kill tests: strace (injects SIGKILL at a chosen syscall); the Slurm test
# (t1310, a one-node cluster): slurm-wlm munge; data-parallel training
# (optional at build time; the MPI tests): libopenmpi-dev openmpi-bin.
set -e
PKGS="build-essential pkg-config libvips-dev libpng-dev libopenblas-dev libsqlite3-dev \
zlib1g-dev libyajl-dev sqlite3 python3-numpy python3-pil python3-torch python3-torchvision \
gnuplot-nox chromium strace slurm-wlm munge libopenmpi-dev openmpi-bin"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "deps: all installed"
    exit 0
fi
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# Service packages (munge, slurmd) try to start their daemon on install and
# fail without a configuration; the tests start their own. Where the image
# has no policy-rc.d, forbid service starts for the install only.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get update -q
$SUDO apt-get install -y -q $missing
