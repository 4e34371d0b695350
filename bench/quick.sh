#!/usr/bin/env bash
# quick.sh - a first measurement of the full path: N viewers through lighttpd, fps, latency, CPU per frame.
#
#   bench/quick.sh [VIEWERS] [SECONDS] [capd flags...]
#   e.g. bench/quick.sh 10 10 --size 1280x720 --fps 30
#
# It starts capd (test pattern unless flags say otherwise) and lighttpd with the
# project's lighttpd.conf on a free port, runs VIEWERS copies of streamcheck for
# SECONDS, and reports per-viewer fps and latency (receipt minus X-Timestamp) and
# the CPU each server process used per delivered frame, from /proc/PID/stat.
# Absolute numbers depend on the machine: compare runs made side by side.
set -u
viewers=${1:-10}
seconds=${2:-10}
shift 2 2>/dev/null || shift $#
capd_flags=("$@")
[ ${#capd_flags[@]} -eq 0 ] && capd_flags=(--size 640x480 --fps 30)

. "$(dirname "$0")/../tests/integration/lib.sh"
trap - EXIT
trap '_cleanup >/dev/null' EXIT

start_capd default "${capd_flags[@]}" || exit 1
start_lighttpd || exit 1
curl -s -o /dev/null "$(url /state)" # spawns the responder
fcgi_pid=$(responder_pids | head -1)

ticks() { # utime + stime of a process, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}
cpu_start=("$(ticks "$CAPD_PID")" "$(ticks "$fcgi_pid")" "$(ticks "$LIGHTTPD_PID")")
for i in $(seq "$viewers"); do
    "$STREAMCHECK" --seconds "$seconds" "$(url /stream)" >"$TMP/v$i.out" 2>&1 &
    pids[i]=$!
done
for i in $(seq "$viewers"); do wait "${pids[i]}"; done
cpu_end=("$(ticks "$CAPD_PID")" "$(ticks "$fcgi_pid")" "$(ticks "$LIGHTTPD_PID")")

frames=0
for i in $(seq "$viewers"); do
    f=$(field frames "$(tail -1 "$TMP/v$i.out")")
    frames=$((frames + ${f:-0}))
done
hz=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(uname -r); $(date -u +%Y-%m-%d)"
echo "capd ${capd_flags[*]}; $viewers viewers for $seconds s; $frames frames delivered"
awk -v hz="$hz" -v n="$viewers" -v frames="$frames" \
    -v c0="${cpu_start[0]}" -v c1="${cpu_end[0]}" -v f0="${cpu_start[1]}" -v f1="${cpu_end[1]}" \
    -v l0="${cpu_start[2]}" -v l1="${cpu_end[2]}" 'BEGIN {
    us = 1e6 / hz / (frames > 0 ? frames : 1)
    printf "CPU per delivered frame: capd %.1f us, capd.fcgi %.1f us, lighttpd %.1f us, total %.1f us\n",
        (c1 - c0) * us, (f1 - f0) * us, (l1 - l0) * us, (c1 - c0 + f1 - f0 + l1 - l0) * us
}'
values() { # KEY: the KEY= values of every viewer, sorted numerically
    for f in "$TMP"/v*.out; do field "$1" "$(tail -1 "$f")"; done | sort -n
}
median() { awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
bad=$(values bad | awk '{ s += $1 } END { print s }')
echo "per viewer: fps min $(values fps | head -1), median $(values fps | median);" \
    "latency p50 (median viewer) $(values lat_p50_ms | median) ms, p99 (worst viewer)" \
    "$(values lat_p99_ms | tail -1) ms; bad frames $bad"
