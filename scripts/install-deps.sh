#!/bin/sh
# install-deps.sh - installs the Debian/Ubuntu packages capd needs, only those that are missing.
#
#   scripts/install-deps.sh          what `make` and `make demo` need
#   scripts/install-deps.sh --check  also what `make check` needs (browser, ffmpeg, qemu, ...)
#   scripts/install-deps.sh --bench  also what `make bench` needs (Flask for the seed's design)
#   scripts/install-deps.sh --list [--check|--bench]   print the missing packages, install nothing
#
# Only missing packages are named or installed: a machine that already has Node.js 18+ and npm
# from elsewhere (nodesource's nodejs bundles npm and conflicts with Debian's npm package), or
# busybox-static instead of busybox, keeps what it has.
set -eu

list=""
if [ "${1:-}" = "--list" ]; then
    list=1
    shift
fi
# Build and run: compiler, libfcgi, TurboJPEG (and libjpeg for the striped encoder), libv4l2,
# lighttpd (with its TLS module for `make demo TLS=1`), curl, openssl.
packages="gcc make libc6-dev libfcgi-dev libturbojpeg0-dev libjpeg62-turbo-dev libv4l-dev"
packages="$packages lighttpd lighttpd-mod-openssl curl openssl"
case "${1:-}" in
--check | --bench)
    # The suite's real clients and servers: Chromium (+ a font), ffmpeg, nginx, busybox httpd,
    # Apache with mod_fcgid, Node.js + npm (playwright-core drives Chromium for the viewer page),
    # procps (pgrep/ps), valgrind; qemu-system-x86 and kmod for the vivid tests (the kernel
    # itself, busybox-static and v4l2loopback-dkms are only downloaded, never installed).
    packages="$packages chromium fonts-dejavu-core ffmpeg nginx busybox apache2"
    packages="$packages libapache2-mod-fcgid procps valgrind nodejs npm"
    packages="$packages qemu-system-x86 kmod ca-certificates"
    # libFuzzer for tests/integration/test_fuzz.sh: clang and its runtime libraries.
    packages="$packages clang libclang-rt-14-dev"
    # test_systemd.sh: systemd-analyze checks deploy/systemd's unit; strace checks its
    # system-call filter against what capd really calls. Neither starts systemd.
    packages="$packages systemd strace"
    # test_vlc.sh: VLC without a display (cvlc -I dummy; its scene filter, vdummy output,
    # mjpeg demux and avcodec decoder are all in vlc-plugin-base).
    packages="$packages vlc-bin vlc-plugin-base"
    ;;
esac
if [ "${1:-}" = "--bench" ]; then
    packages="$packages python3-flask"
fi
missing=""
for p in $packages; do
    # busybox or busybox-static: either gives the httpd applet; they conflict.
    if [ "$p" = busybox ] && command -v busybox >/dev/null 2>&1; then
        continue
    fi
    # Any Node.js 18+ with its npm will do (e.g. nodesource's, which conflicts with Debian's npm).
    if { [ "$p" = nodejs ] || [ "$p" = npm ]; } && command -v node >/dev/null 2>&1 &&
        command -v npm >/dev/null 2>&1; then
        continue
    fi
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$list" ]; then
    echo "$missing"
    exit 0
fi
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
