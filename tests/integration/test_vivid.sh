#!/usr/bin/env bash
# test_vivid.sh - capd against a real V4L2 driver: Debian's kernel with vivid, booted under qemu.
#
# The host kernel has no V4L2, so this boots Debian's own kernel (downloaded, never installed;
# see tests/vivid/fetch.sh) under qemu-system-x86_64 with a busybox initramfs that carries the
# build's binaries (tests/vivid/mkinitramfs.sh). Inside, tests/vivid/guest.sh runs the cases
# and writes PASS/FAIL lines to a second serial port, which this script relays. Nothing here
# passes silently: no qemu, no kernel, a VM that does not reach its end, all are FAIL lines.
#
# Environment: VIVID_CACHE (default ROOT/build/vivid-cache: the unpacked kernel, reused),
# VIVID_TIMEOUT (seconds for the VM, default 200), VIVID_ACCEL (tcg or kvm, default tcg).
# KEEP_TMP=1 keeps the VM's console log (capd's logs, every ringcheck line) and the initramfs.
# A sanitizer build runs the same cases (about 1.5 times the VM time of -O2, 30-40 s on two
# cores); sanitizer reports from inside the VM become FAIL lines too.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

CACHE=${VIVID_CACHE:-$ROOT/build/vivid-cache}
VM_TIMEOUT=${VIVID_TIMEOUT:-200}
ACCEL=${VIVID_ACCEL:-tcg}

elapsed() { echo $(($(date +%s) - $1)); }
first_file() { echo "$1"; }

if ! command -v qemu-system-x86_64 >/dev/null; then
    fail "vivid: qemu-system-x86_64 is not installed (package qemu-system-x86; scripts/install-deps.sh --check installs it)"
    exit 1
fi
PATH=$PATH:/usr/sbin:/sbin # modprobe and depmod, for users without sbin in PATH
if ! command -v modprobe >/dev/null || ! command -v depmod >/dev/null; then
    fail "vivid: modprobe and depmod (package kmod) are not installed"
    exit 1
fi

# 1. The kernel, its media modules, v4l2loopback and busybox (cached between runs).
t0=$(date +%s)
if ! KDIR=$("$ROOT/tests/vivid/fetch.sh" "$CACHE" 2>"$TMP/fetch.log") ||
    [ ! -f "$KDIR/vmlinuz" ]; then
    fail "vivid: cannot prepare the kernel: $(tail -3 "$TMP/fetch.log" | tr '\n' ' ')"
    exit 1
fi
fetch_s=$(elapsed "$t0")

# 2. MJPEG fixtures for v4l2loopback: a real frame from capd's own encoder (it carries the
#    standard Huffman tables), the same frame without them, as some cameras send it, and
#    mjpeg_fixtures' camera-like frames with the bytes capd must publish for each.
t0=$(date +%s)
mkdir -p "$TMP/fixtures"
if start_capd fixture --size 640x480 --fps 10 &&
    "$BUILD/tests/ringcheck" --name fixture --frames 1 --save "$TMP/frames" >/dev/null &&
    cp "$(first_file "$TMP"/frames/frame-*.jpg)" "$TMP/fixtures/with-dht.jpg" &&
    "$BUILD/tests/v4l2tool" strip-dht "$TMP/fixtures/with-dht.jpg" "$TMP/fixtures/no-dht.jpg" &&
    "$BUILD/tests/mjpeg_fixtures" --dir "$TMP/fixtures/camera" --size 640x480 >/dev/null; then
    :
else
    fail "vivid: cannot make the MJPEG fixtures with capd, ringcheck and mjpeg_fixtures"
fi
kill "$CAPD_PID" 2>/dev/null

# 3. The initramfs for this build.
if ! "$ROOT/tests/vivid/mkinitramfs.sh" "$KDIR" "$BUILD" "$TMP/fixtures" "$TMP/initrd" \
    2>"$TMP/mkinitramfs.log"; then
    fail "vivid: cannot build the initramfs: $(tail -3 "$TMP/mkinitramfs.log" | tr '\n' ' ')"
    exit 1
fi
initrd_s=$(elapsed "$t0")

# 4. Boot. Console (kernel, capd logs) and results go to separate serial ports and files.
qemu=(qemu-system-x86_64 -m 1024 -smp 2 -display none -monitor none -no-reboot -nic none
    -serial "file:$TMP/console.log" -serial "file:$TMP/results.log"
    -kernel "$KDIR/vmlinuz" -initrd "$TMP/initrd" -append "console=ttyS0 quiet panic=-1")
if [ "$ACCEL" = kvm ]; then
    qemu+=(-accel kvm -cpu host)
else
    qemu+=(-accel tcg -cpu max)
fi
t0=$(date +%s)
: >"$TMP/console.log"
: >"$TMP/results.log"
timeout -k 5 "$VM_TIMEOUT" "${qemu[@]}" </dev/null >"$TMP/qemu.log" 2>&1
qemu_rc=$?
vm_s=$(elapsed "$t0")

# 5. Relay the guest's verdicts.
guest_failed=0
done_seen=0
while IFS= read -r line; do
    line=${line%$'\r'}
    case $line in
    PASS\ *) echo "$line" ;;
    FAIL\ *)
        echo "$line"
        FAILED=1
        guest_failed=1
        ;;
    DONE*) done_seen=1 ;;
    esac
done <"$TMP/results.log"
if [ "$done_seen" -eq 0 ]; then
    why="exit status $qemu_rc"
    [ "$qemu_rc" -eq 124 ] && why="killed after $VM_TIMEOUT s"
    fail "vivid: the VM did not finish its tests ($why): $(tr -d '\r' <"$TMP/qemu.log" | tail -2 | tr '\n' ' ')"
    guest_failed=1
fi
if [ "$guest_failed" -ne 0 ]; then
    echo "vivid VM console (last 60 lines; all of it in $TMP/console.log):"
    tr -d '\r' <"$TMP/console.log" | tail -60 | sed 's/^/  /'
fi
echo "vivid: kernel $(cat "$KDIR/kver") ready in ${fetch_s} s, initramfs $(($(stat -c %s "$TMP/initrd") / 1048576)) MB in ${initrd_s} s, VM ${vm_s} s ($ACCEL)"
