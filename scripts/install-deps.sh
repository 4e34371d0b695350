#!/bin/sh
# install-deps.sh - installs the Debian/Ubuntu packages capd needs, only those that are missing.
#
#   scripts/install-deps.sh          what `make` and `make demo` need
#   scripts/install-deps.sh --check  also what `make check` needs (browser, ffmpeg, qemu, ...)
set -eu

packages="gcc make libc6-dev libfcgi-dev libturbojpeg0-dev libv4l-dev lighttpd curl"
if [ "${1:-}" = "--check" ]; then
    # qemu-system-x86 and kmod: the vivid tests boot Debian's kernel under qemu (the kernel
    # itself, busybox-static and v4l2loopback-dkms are only downloaded, never installed).
    packages="$packages chromium fonts-dejavu-core ffmpeg procps valgrind qemu-system-x86 kmod"
fi

missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: this script knows only apt-get (Debian/Ubuntu); install them by hand." >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install-deps: missing packages:$missing; run as root or install sudo." >&2
        exit 1
    fi
    sudo="sudo"
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
$sudo apt-get install -y -qq --no-install-recommends $missing
