#!/usr/bin/env bash
# capd_cpu.sh - capd's own CPU at 720p30 and 1080p30 from the test pattern, one viewer attached.
#
#   bench/capd_cpu.sh [BUILD]                  (BUILD: default build; needs capd and capd.fcgi)
#   CPU_SECONDS=20 CPU_WARMUP=3 CPU_REPEAT=3 CPU_SIZES="1280x720 1920x1080" CPU_FPS=30 \
#       bench/capd_cpu.sh                      (the defaults: about 2.5 minutes)
#
# More than a smoke test (about CPU_REPEAT x sizes x (warm-up + window) s of a busy core): on a
# shared machine run it under `flock /work/logs/heavy.lock bench/capd_cpu.sh`.
#
# For every size (CPU_REPEAT times, sizes taking turns) it starts
#   capd --source testpattern --size WxH --fps CPU_FPS
# and one viewer: capd.fcgi run as a CGI program streaming to /dev/null (what a web server's
# CGI would run; it joins the presence object, so the ring's viewer count is 1). After
# CPU_WARMUP seconds it takes, at both ends of a CPU_SECONDS window:
#   - capd's CPU time, all its threads: the scheduler's nanoseconds (the first field of
#     /proc/PID/task/*/schedstat, summed) and utime+stime in clock ticks from /proc/PID/stat
#     (10 ms steps, coarse at low rates; printed as a cross-check); the responder's likewise;
#   - frames_published and frames_dropped from the ring header itself (offsets 280 and 288 of
#     /dev/shm/PREFIXNAME, see capd/ring.h), so the frame count and the CPU cover the same
#     window.
# It prints, per run: fps published, capd's % of one core, capd's CPU µs per frame, the
# responder's % of one core, dropped frames, and the load average before and after.
#
# capd can only encode raw frames it gets from a V4L2 device: stdin and file: carry JPEGs that
# are republished as they are, so there is no native YUYV-source measurement here. The YUYV
# capture path is measured in the vivid VM (bench/vivid_cpu.sh) and in isolation by
# build/bench/encode_bench (bench/README-encode.md).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SECONDS_WINDOW=${CPU_SECONDS:-20}
WARMUP=${CPU_WARMUP:-3}
REPEAT=${CPU_REPEAT:-3}
SIZES=${CPU_SIZES:-1280x720 1920x1080}
FPS=${CPU_FPS:-30}
HZ=$(getconf CLK_TCK)
export CAPD_SHM_PREFIX="cpu$$-"
TMP=$(mktemp -d /tmp/capd-cpu.XXXXXX)

die() {
    echo "capd_cpu: $*" >&2
    exit 1
}
for tool in "$BUILD/capd" "$BUILD/capd.fcgi"; do
    [ -x "$tool" ] || die "$tool is missing: run make all"
done

CAPD_PID=
VIEWER_PID=
stop() {
    local pid
    for pid in $VIEWER_PID $CAPD_PID; do
        kill -TERM "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    CAPD_PID='' VIEWER_PID=''
}
trap 'stop; rm -f /dev/shm/"$CAPD_SHM_PREFIX"*; rm -rf "$TMP"' EXIT

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# nanoseconds on a CPU, summed over the process's threads (they live as long as capd does)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%.0f\n", n }'; }
# "published dropped" from the ring header (little-endian u64 at 280 and 288)
ring_counts() { od -A n -t u8 -j 280 -N 16 "/dev/shm/$CAPD_SHM_PREFIX$1" | awk '{ print $1, $2 }'; }
ring_viewers() { od -A n -t u4 -j 300 -N 4 "/dev/shm/$CAPD_SHM_PREFIX$1" | awk '{ print $1 }'; }
now_ns() { date +%s%N; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# measure SIZE RUN: one window; prints one table row and a RESULT line.
measure() {
    local size=$1 run=$2 name t0 t1 c0 c1 v0 v1 f0 d0 f1 d1 l0 l1 viewers n0 n1 m0 m1
    name="cpu-${size}-$run"
    "$BUILD/capd" --name "$name" --source testpattern --size "$size" --fps "$FPS" -v \
        >"$TMP/capd-$name.log" 2>&1 &
    CAPD_PID=$!
    for _ in $(seq 100); do
        [ -e "/dev/shm/$CAPD_SHM_PREFIX$name.viewers" ] && break
        kill -0 "$CAPD_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -e "/dev/shm/$CAPD_SHM_PREFIX$name.viewers" ] ||
        die "capd did not start: $(tail -3 "$TMP/capd-$name.log")"
    env -u PATH_INFO -u CONTENT_LENGTH GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET \
        QUERY_STRING="action=stream&cam=$name&seconds=$((WARMUP + SECONDS_WINDOW + 10))" \
        SCRIPT_NAME=/cgi-bin/capd.cgi "$BUILD/capd.fcgi" </dev/null >/dev/null 2>"$TMP/viewer.err" &
    VIEWER_PID=$!
    sleep "$WARMUP"
    # capd copies the viewer count into the ring header once a second
    for _ in $(seq 30); do
        viewers=$(ring_viewers "$name")
        [ "$viewers" = 1 ] && break
        sleep 0.1
    done
    [ "$viewers" = 1 ] || die "the ring counts $viewers viewers, not 1: $(tail -2 "$TMP/viewer.err")"
    l0=$(loadavg)
    t0=$(now_ns)
    n0=$(cpu_ns "$CAPD_PID")
    m0=$(cpu_ns "$VIEWER_PID")
    c0=$(ticks "$CAPD_PID")
    v0=$(ticks "$VIEWER_PID")
    read -r f0 d0 < <(ring_counts "$name")
    sleep "$SECONDS_WINDOW"
    t1=$(now_ns)
    n1=$(cpu_ns "$CAPD_PID")
    m1=$(cpu_ns "$VIEWER_PID")
    c1=$(ticks "$CAPD_PID")
    v1=$(ticks "$VIEWER_PID")
    read -r f1 d1 < <(ring_counts "$name")
    l1=$(loadavg)
    kill -0 "$VIEWER_PID" 2>/dev/null || die "the viewer ended early: $(tail -2 "$TMP/viewer.err")"
    stop
    awk -v size="$size" -v run="$run" -v t="$(((t1 - t0) / 1000))" -v c=$((c1 - c0)) \
        -v n=$((n1 - n0)) -v m=$((m1 - m0)) -v v=$((v1 - v0)) -v f=$((f1 - f0)) -v d=$((d1 - d0)) -v hz="$HZ" -v l0="$l0" -v l1="$l1" \
        -v want="$FPS" -v out="$TMP/results" 'BEGIN {
        s = t / 1e6
        fps = f / s; cpu = n / 1e7 / s; us = f ? n / 1e3 / f : 0; vcpu = m / 1e7 / s
        tcpu = 100 * c / hz / s; tus = f ? 1e6 * c / hz / f : 0
        printf "%-10s %3d %7.2f %7.2f %8.0f %8.0f %10.2f %7d %6s..%s\n", size, run, fps, cpu, us, tus, vcpu, d, l0, l1
        printf "RESULT source=testpattern size=%s fps_asked=%s run=%d seconds=%.2f frames=%d dropped=%d fps=%.2f capd_cpu_pct=%.2f capd_us_per_frame=%.0f capd_us_per_frame_ticks=%.0f viewer_cpu_pct=%.2f load=%s..%s\n",
            size, want, run, s, f, d, fps, cpu, us, tus, vcpu, l0, l1 >> out
    }'
}

echo "capd CPU, --source testpattern --fps $FPS, one CGI viewer; ${WARMUP} s warm-up, ${SECONDS_WINDOW} s window"
echo "$(uname -srm), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(date -u +%Y-%m-%dT%H:%MZ)"
printf "%-10s %3s %7s %7s %8s %8s %10s %7s %s\n" size run fps "cpu %" "µs/frame" "(ticks)" "viewer %" dropped load
for run in $(seq "$REPEAT"); do
    for size in $SIZES; do
        measure "$size" "$run"
    done
done
cat "$TMP/results"
