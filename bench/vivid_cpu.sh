#!/usr/bin/env bash
# vivid_cpu.sh - capd's CPU capturing vivid (YUYV) in the qemu VM, against the test pattern in
# the same VM, and an estimate for native vivid capture from the native test pattern.
#
#   bench/vivid_cpu.sh [BUILD]                     (BUILD: default build; about 7 minutes)
#
# Knobs: VIVID_CPU_SIZES (1280x720,1920x1080), VIVID_CPU_REPEAT (4 windows per size and source),
# VIVID_CPU_SECONDS (12 s per window), VIVID_CPU_WARMUP (3 s), VIVID_CPU_OUT (where the VM's
# logs and raw results go; default a new /tmp/capd-vivid-cpu.*), VIVID_CACHE (the kernel, as
# for make test-vivid: build/vivid-cache), VIVID_TIMEOUT, VIVID_ACCEL (tcg or kvm);
# VIVID_CPU_NATIVE=0 skips step 2, VIVID_CPU_NATIVE_FPS/_SECONDS/_REPEAT (30, 20, 3) tune it.
#
# Heavy (a TCG VM on both cores for a few minutes, then bench/capd_cpu.sh): on a shared
# machine run it under `flock /work/logs/heavy.lock bench/vivid_cpu.sh`.
#
# 1. Boots the same VM as make test-vivid (tests/vivid: Debian's kernel with vivid, busybox,
#    the build's binaries; the kernel cache is VIVID_CACHE, default BUILD/vivid-cache) with
#    capd_guest=cpu on the kernel command line, so /init runs tests/vivid/guest-cpu.sh instead
#    of the test cases. For each size it measures capd capturing vivid's YUYV at vivid's
#    highest rate, then capd --source testpattern at the same size and rate, one viewer each.
# 2. Runs bench/capd_cpu.sh natively at the same sizes, at 30 fps: CPU per frame does not
#    depend on the rate, and vivid's 5 fps at 1080p would leave too few frames in a window.
# 3. Prints a table: VM numbers, the median over run pairs of the ratio vivid/testpattern of
#    capd's CPU per frame in the VM, the native test pattern, and native vivid ESTIMATED as
#    native testpattern x ratio, at vivid's rate and at 30 fps.
#
# No KVM here: the guest runs under TCG, which inflates every CPU number by an amount that
# depends on the code (SIMD, syscalls, page faults are emulated at different costs). Only the
# ratio within one VM is meant to carry over, and even that is an approximation.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
CACHE=${VIVID_CACHE:-$ROOT/build/vivid-cache}
SECS=${VIVID_CPU_SECONDS:-12}
WARM=${VIVID_CPU_WARMUP:-3}
REPEAT=${VIVID_CPU_REPEAT:-4}
SIZES=${VIVID_CPU_SIZES:-1280x720,1920x1080}
ACCEL=${VIVID_ACCEL:-tcg}
nsizes=$(echo "$SIZES" | tr , '\n' | grep -c .)
VM_TIMEOUT=${VIVID_TIMEOUT:-$((120 + REPEAT * nsizes * 2 * (SECS + WARM + 15)))}
OUT=${VIVID_CPU_OUT:-$(mktemp -d /tmp/capd-vivid-cpu.XXXXXX)}
mkdir -p "$OUT"
PATH=$PATH:/usr/sbin:/sbin

die() {
    echo "vivid_cpu: $*" >&2
    exit 1
}
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing (qemu-system-x86)"
for tool in capd capd.fcgi tests/ringcheck tests/v4l2tool tests/mjpeg_fixtures; do
    [ -x "$BUILD/$tool" ] || die "$BUILD/$tool is missing: make all tests"
done

if ! KDIR=$("$ROOT/tests/vivid/fetch.sh" "$CACHE" 2>"$OUT/fetch.log") ||
    [ ! -f "$KDIR/vmlinuz" ]; then
    die "cannot prepare the kernel: $(tail -3 "$OUT/fetch.log")"
fi
mkdir -p "$OUT/fixtures"
"$ROOT/tests/vivid/mkinitramfs.sh" "$KDIR" "$BUILD" "$OUT/fixtures" "$OUT/initrd" \
    2>"$OUT/mkinitramfs.log" || die "mkinitramfs failed: $(tail -3 "$OUT/mkinitramfs.log")"

qemu=(qemu-system-x86_64 -m 1024 -smp 2 -display none -monitor none -no-reboot -nic none
    -serial "file:$OUT/console.log" -serial "file:$OUT/results.log"
    -kernel "$KDIR/vmlinuz" -initrd "$OUT/initrd"
    -append "console=ttyS0 quiet panic=-1 capd_guest=cpu capd_cpu_seconds=$SECS capd_cpu_warmup=$WARM capd_cpu_sizes=$SIZES capd_cpu_repeat=$REPEAT")
if [ "$ACCEL" = kvm ]; then
    qemu+=(-accel kvm -cpu host)
else
    qemu+=(-accel tcg -cpu max)
fi
echo "vivid_cpu: booting the VM ($ACCEL, kernel $(cat "$KDIR/kver")), at most $VM_TIMEOUT s; logs in $OUT" >&2
t0=$(date +%s)
timeout -k 5 "$VM_TIMEOUT" "${qemu[@]}" </dev/null >"$OUT/qemu.log" 2>&1
qemu_rc=$?
echo "vivid_cpu: VM done in $(($(date +%s) - t0)) s (exit $qemu_rc)" >&2
tr -d '\r' <"$OUT/results.log" >"$OUT/vm.txt"
grep -q '^DONE' "$OUT/vm.txt" || die "the VM did not finish: $(tail -2 "$OUT/qemu.log"); console: $OUT/console.log"
grep '^FAIL' "$OUT/vm.txt" >&2 && die "the guest failed"
grep '^RESULT' "$OUT/vm.txt" >"$OUT/vm-results.txt"

# 2. The native test pattern at the VM's sizes.
: >"$OUT/native-results.txt"
if [ "${VIVID_CPU_NATIVE:-1}" != 0 ]; then
    CPU_SIZES=$(sed -n 's/^RESULT source=testpattern size=\([^ ]*\) .*/\1/p' "$OUT/vm-results.txt" |
        sort -u | xargs) CPU_FPS=${VIVID_CPU_NATIVE_FPS:-30} CPU_SECONDS=${VIVID_CPU_NATIVE_SECONDS:-20} \
        CPU_REPEAT=${VIVID_CPU_NATIVE_REPEAT:-3} "$ROOT/bench/capd_cpu.sh" "$BUILD" >"$OUT/native.txt" ||
        die "bench/capd_cpu.sh failed: $(tail -3 "$OUT/native.txt")"
    grep '^RESULT' "$OUT/native.txt" >"$OUT/native-results.txt"
fi

echo "capd CPU, vivid vs the test pattern (VM: qemu $ACCEL -smp 2; windows of $SECS s after $WARM s; one CGI viewer)"
echo "host: $(uname -srm), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(date -u +%Y-%m-%dT%H:%MZ)"
sed 's/^RESULT /vm: /' "$OUT/vm-results.txt"
sed 's/^RESULT /native: /' "$OUT/native-results.txt"
/usr/bin/python3 - "$OUT/vm-results.txt" "$OUT/native-results.txt" <<'PY'
import re, shlex, statistics, sys

def load(path):
    rows = []
    for line in open(path):
        if line.startswith("RESULT "):
            rows.append(dict(kv.split("=", 1) for kv in shlex.split(line[7:]) if "=" in kv))
    return rows

vm, native = load(sys.argv[1]), load(sys.argv[2])
med = statistics.median
def col(rows, key): return [float(r[key]) for r in rows]
def rng(xs, fmt="%.0f"): return (fmt % min(xs)) + ".." + (fmt % max(xs))

print("\n%-10s %-30s %7s %7s %9s  %s" % ("size", "what", "fps", "cpu %", "µs/frame", "range of µs/frame (runs)"))
sizes = []
for r in vm:
    if r["size"] not in sizes: sizes.append(r["size"])
for size in sizes:
    if any(r["size"] == size and ("unavailable" in r or "failed" in r) for r in vm):
        print("%-10s vivid: not measured (%s)" % (size, [r for r in vm if r["size"] == size][0]))
        continue
    v = [r for r in vm if r["size"] == size and r["source"] == "vivid"]
    p = [r for r in vm if r["size"] == size and r["source"] == "testpattern"]
    n = [r for r in native if r["size"] == size]
    if not v or not p: continue
    print("%-10s %-30s %7.2f %7.1f %9.0f  %s (%d); vivid's kthread %.1f %% (the camera, not capd)" % (
        size, "VM vivid YUYV @ " + v[0]["capture"].split("@ ")[1].split(" ")[0], med(col(v, "fps")),
        med(col(v, "capd_cpu_pct")), med(col(v, "capd_us_per_frame")),
        rng(col(v, "capd_us_per_frame")), len(v), med(col(v, "vivid_kthread_cpu_pct"))))
    print("%-10s %-30s %7.2f %7.1f %9.0f  %s (%d)" % (size, "VM testpattern --fps " + p[0]["fps_asked"],
        med(col(p, "fps")), med(col(p, "capd_cpu_pct")), med(col(p, "capd_us_per_frame")),
        rng(col(p, "capd_us_per_frame")), len(p)))
    ratios = [float(a["capd_us_per_frame"]) / float(b["capd_us_per_frame"])
              for a, b in zip(v, p) if float(b["capd_us_per_frame"]) > 0]
    ratio = med(ratios)
    print("%-10s %-30s %7s %7s %9.2f  %s (per run)" % (size, "VM ratio vivid/testpattern", "", "", ratio,
        rng(ratios, "%.2f")))
    if n:
        nus = med(col(n, "capd_us_per_frame"))
        print("%-10s %-30s %7.2f %7.2f %9.0f  %s (%d)" % (size, "native testpattern --fps " + n[0]["fps_asked"],
            med(col(n, "fps")), med(col(n, "capd_cpu_pct")), nus, rng(col(n, "capd_us_per_frame")), len(n)))
        vfps = med(col(v, "fps"))
        est = nus * ratio
        for fps, label in ((vfps, "at vivid's %.1f fps" % vfps), (30.0, "at 30 fps")):
            print("%-10s %-30s %7.1f %7.2f %9.0f  %s..%s  ESTIMATE = native testpattern x VM ratio" % (
                size, "native vivid YUYV, " + label, fps, est * fps / 1e4, est,
                "%.0f" % (nus * min(ratios)), "%.0f" % (nus * max(ratios))))
PY
