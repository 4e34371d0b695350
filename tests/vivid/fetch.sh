#!/usr/bin/env bash
# fetch.sh - downloads Debian's kernel, busybox-static and v4l2loopback for the vivid VM, into a cache.
#
#   tests/vivid/fetch.sh CACHE_DIR
#
# Nothing is installed: the packages are fetched with `apt-get download` (no root needed, but
# the apt lists must be there: `apt-get update`) and only what the VM needs is unpacked:
#   CACHE_DIR/<kernel release>_<package version>/   (CACHE_DIR/incoming while being made)
#     vmlinuz                      the kernel
#     lib/modules/<release>/...    the media modules plus v4l2loopback (built here from
#                                  v4l2loopback-dkms against the matching headers), depmod'ed
#     busybox                      static busybox, the VM's only userland besides our programs
#     kver                         the kernel release, e.g. 6.1.0-56-amd64
# and prints that folder's path on the last line of stdout. A complete folder is reused as is
# (a repeated run costs nothing); older versions are removed once a new one is complete.
# The kernel is the one linux-image-amd64 currently points to (override: VIVID_KERNEL_PKG).
set -euo pipefail

cache=${1:?usage: fetch.sh CACHE_DIR}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

die() {
    echo "vivid fetch: $*" >&2
    exit 1
}

# Only one fetch at a time per cache (make check runs the plain and the ASan build in turn,
# a developer may run two checkouts' tests at once).
exec 9>"$cache/.lock"
flock 9

# A complete kernel is reused without asking apt (whose start-up alone costs seconds), so a
# warm run costs nothing; VIVID_REFRESH=1 fetches the kernel apt offers now.
if [ -z "${VIVID_REFRESH:-}" ]; then
    for ready in "$cache"/*/.complete; do
        [ -f "$ready" ] && dirname "$ready" && exit 0
    done
fi

kpkg=${VIVID_KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/ { print $2; exit }')}
[ -n "$kpkg" ] || die "apt knows no linux-image-amd64 package: run 'apt-get update' first"
kver=${kpkg#linux-image-}
hpkg=linux-headers-$kver
hcommon=linux-headers-${kver%-*}-common

echo "vivid fetch: downloading $kpkg and what v4l2loopback needs" >&2
start=$(date +%s)
work=$cache/incoming
rm -rf "$work"
mkdir -p "$work/debs" "$work/root" "$work/hdr"
sandbox=()
# As root, apt drops to the _apt user for downloads, which cannot write to a root-owned folder.
[ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
download() {
    (cd "$work/debs" && apt-get -q "${sandbox[@]}" download "$@" >&2) ||
        die "apt-get download $* failed (are the apt lists up to date? apt-get update)"
}
download "$kpkg" "$hpkg" "$hcommon" busybox-static v4l2loopback-dkms
deb() { echo "$work"/debs/"$1"_*.deb; }
kversion=$(dpkg-deb -f "$(deb "$kpkg")" Version)
[ "$(dpkg-deb -f "$(deb "$hpkg")" Version)" = "$kversion" ] ||
    die "$hpkg is not at the kernel's version $kversion"
# The kbuild tools (modpost, fixdep) live in a package named after the kernel series.
kbuild=$(dpkg-deb -f "$(deb "$hpkg")" Depends | grep -o 'linux-kbuild-[0-9.]*' | head -1)
[ -n "$kbuild" ] || die "cannot tell which linux-kbuild package $hpkg needs"
download "$kbuild"

# Kernel: vmlinuz and the media modules, not the other 350 MB. Unpacking means decompressing
# all 70 MB, so it runs while v4l2loopback builds.
dpkg-deb --fsys-tarfile "$(deb "$kpkg")" | tar -x -C "$work/root" --wildcards \
    './boot/vmlinuz-*' "./lib/modules/$kver/modules.*" \
    "./lib/modules/$kver/kernel/drivers/media/*" &
unpack_pid=$!

# v4l2loopback, built like DKMS would, against headers unpacked next to each other: the -amd64
# Makefile includes the -common tree by its installed path, so point it at ours.
for p in "$hpkg" "$hcommon" "$kbuild" v4l2loopback-dkms; do
    dpkg-deb -x "$(deb "$p")" "$work/hdr"
done
hdir=$work/hdr/usr/src/linux-headers-$kver
echo "include $work/hdr/usr/src/$hcommon/Makefile" >"$hdir/Makefile"
src=$(echo "$work"/hdr/usr/src/v4l2loopback-*)
[ -f "$src/v4l2loopback.c" ] || die "no v4l2loopback source in v4l2loopback-dkms"
make -s -C "$hdir" M="$src" modules >"$work/v4l2loopback-build.log" 2>&1 ||
    die "building v4l2loopback failed: $(tail -5 "$work/v4l2loopback-build.log")"
wait "$unpack_pid" || die "unpacking $kpkg failed"
mv "$work/root/boot/vmlinuz-$kver" "$work/vmlinuz"
install -D -m644 "$src/v4l2loopback.ko" "$work/root/lib/modules/$kver/updates/v4l2loopback.ko"
depmod -b "$work/root" "$kver" || die "depmod failed"
mv "$work/root/lib" "$work/lib"

dpkg-deb --fsys-tarfile "$(deb busybox-static)" | tar -x -C "$work/root" ./bin/busybox
mv "$work/root/bin/busybox" "$work/busybox"
echo "$kver" >"$work/kver"

rm -rf "$work/debs" "$work/hdr" "$work/root"
# Keep one kernel: the new one replaces any other.
for old in "$cache"/*/.complete; do
    [ -f "$old" ] && rm -rf "$(dirname "$old")"
done
dest=$cache/${kver}_$kversion
mv "$work" "$dest"
touch "$dest/.complete"
echo "vivid fetch: ready in $(($(date +%s) - start)) s ($(du -sh "$dest" | cut -f1))" >&2
echo "$dest"
