#!/usr/bin/env bash
# mkinitramfs.sh - packs the vivid VM's initramfs: busybox, media modules, the build's binaries.
#
#   tests/vivid/mkinitramfs.sh KERNEL_DIR BUILD_DIR FIXTURE_DIR OUT
#
# KERNEL_DIR is what fetch.sh prepared. The initramfs holds:
#   /init, /guest.sh              tests/vivid/init and tests/vivid/guest.sh
#   /guest-*.sh                   other guest scripts, run instead of guest.sh when the kernel
#                                 command line says capd_guest=* (guest-cpu.sh: bench/vivid_cpu.sh)
#   /bin/busybox                  static; /init installs its applets
#   /lib/modules/*.ko             vivid and v4l2loopback with their dependencies, and the load
#                                 order in /etc/vivid.modules and /etc/loopback.modules
#   /capd/                        capd, capd.fcgi, ringcheck, v4l2tool and mjpeg_fixtures
#                                 from BUILD_DIR, with
#                                 every shared library ldd reports at its own path (so the
#                                 ASan build brings libasan along)
#   /fixtures/                    FIXTURE_DIR's files (the MJPEG frames fed to v4l2loopback)
# OUT is an uncompressed newc cpio: under TCG the kernel would spend longer decompressing it
# than the host spends reading a few more megabytes.
set -euo pipefail

kdir=$1 build=$2 fixtures=$3 out=$4
here=$(cd "$(dirname "$0")" && pwd)
kver=$(cat "$kdir/kver")
ir=$(mktemp -d "${TMPDIR:-/tmp}/vivid-initramfs.XXXXXX")
trap 'rm -rf "$ir"' EXIT

die() {
    echo "mkinitramfs: $*" >&2
    exit 1
}

mkdir -p "$ir"/{bin,capd,dev,etc,fixtures,lib/modules,proc,sys,tmp,run}
install -m755 "$kdir/busybox" "$ir/bin/busybox"
install -m755 "$here/init" "$ir/init"
install -m644 "$here/guest.sh" "$ir/guest.sh"
for g in "$here"/guest-*.sh; do
    if [ -f "$g" ]; then install -m644 "$g" "$ir/$(basename "$g")"; fi
done
cp -a "$fixtures"/. "$ir/fixtures/"

# Modules in load order, as modprobe would load them; /etc/<list>.modules names the files.
modlist() {
    local name=$1 list=$2 ko base
    modprobe -d "$kdir" -S "$kver" --show-depends "$name" >"$ir/etc/$list.deps" ||
        die "modprobe --show-depends $name failed"
    awk '$1 == "insmod" { print $2 }' "$ir/etc/$list.deps" | while read -r ko; do
        base=$(basename "$ko")
        base=${base%.xz}
        base=${base%.zst}
        if [ ! -e "$ir/lib/modules/$base" ]; then
            case $ko in
            *.xz) xz -dc "$ko" ;;
            *.zst) zstd -dcq "$ko" ;;
            *) cat "$ko" ;;
            esac >"$ir/lib/modules/$base"
        fi
        echo "$base"
    done >"$ir/etc/$list.modules"
    rm "$ir/etc/$list.deps"
    [ -s "$ir/etc/$list.modules" ] || die "no modules found for $name"
}
modlist vivid vivid
modlist v4l2loopback loopback

# A program and the libraries the dynamic loader will want, at the same paths.
copy_program() {
    local src=$1 lib
    [ -x "$src" ] || die "$src is not built"
    install -m755 "$src" "$ir/capd/$(basename "$src")"
    for lib in $(ldd "$src" | grep -o '/[^ )]*'); do
        [ -e "$ir$lib" ] || install -D -m755 "$(readlink -f "$lib")" "$ir$lib"
    done
}
for prog in capd capd.fcgi tests/ringcheck tests/v4l2tool tests/mjpeg_fixtures; do
    copy_program "$build/$prog"
done
# libv4l2 loads its plugins by path; bring them along so capd runs as on a real machine.
for plugdir in /usr/lib/*/libv4l/plugins; do
    [ -d "$plugdir" ] || continue
    mkdir -p "$ir$plugdir"
    cp "$plugdir"/*.so "$ir$plugdir/" 2>/dev/null || true
done

(cd "$ir" && find . | LC_ALL=C sort | "$kdir/busybox" cpio -o -H newc 2>/dev/null) >"$out.tmp"
mv "$out.tmp" "$out"
