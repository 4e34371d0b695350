#!/usr/bin/env bash
# idle.sh - the system calls an idle viewer costs the responder (issue 4: "an idle viewer makes
# no syscalls except the keep-alive repeat"), counted with strace on capd.fcgi under lighttpd.
#
#   bench/idle.sh [BUILD]      about 90 s (IDLE_SECONDS=10; 60 s with 6, the quick run's);
#                              run.sh calls it in the full and the quick run
#
# capd --source stdin reads a FIFO that this script holds open: it publishes a frame when the
# script writes one and nothing otherwise (a still camera, alive: it keeps its heartbeat).
# lighttpd with lighttpd.conf spawns the responder (fan-out mode, CAPD_MAX_VIEWERS default).
# Passes, each with build/bench/loadclient holding the viewers:
#   v1, v10  1 and 10 viewers connect, then one frame is published, then nothing: the viewers
#            are idle. `strace -f -c -p RESPONDER` counts for IDLE_SECONDS (lighttpd is counted
#            alongside, for context), then `strace -f -tt` lists the calls for IDLE_SECONDS.
#   v0       the viewers have left (the camera's fan-out threads stay): the same two passes.
#   late     1 viewer connects after the last frame and the last viewer before it left, so it
#            has no frame to repeat: counted the same way, and listed for 1 s only.
# Raw output in $BENCH_OUT/idle/ (default /tmp/capd-bench/idle): strace-c-PASS.txt,
# lighttpd-c-PASS.txt, strace-tt-PASS.txt, load-PASS.json, meta.json; bench/report.py turns them
# into the "Idle viewers" section of bench/results.md (`report.py idle DIR` prints it alone).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=${BENCH_OUT:-/tmp/capd-bench}/idle
FRAMES=${BENCH_FRAMES:-/tmp/capd-bench-frames}
SECONDS_PER_PASS=${IDLE_SECONDS:-10}
LOADCLIENT=$BUILD/bench/loadclient
export CAPD_SHM_PREFIX="idle$$-"
. "$ROOT/bench/lib.sh"

die() {
    echo "idle: $*" >&2
    exit 1
}
command -v strace >/dev/null || die "strace is missing (apt-get install strace)"
for tool in "$LOADCLIENT" "$BUILD/capd" "$BUILD/capd.fcgi"; do
    [ -x "$tool" ] || die "$tool is missing: run make benchtools"
done
"$ROOT/bench/baselines/make-frames.sh" "$FRAMES" >/dev/null || die "cannot make the frames"
FRAME=$(ls "$FRAMES"/720p/*.jpg | head -1)

rm -rf "$OUT"
mkdir -p "$OUT/run"
cleanup() {
    exec 7>&- 2>/dev/null
    stop_all
}
trap 'cleanup; exit 130' INT TERM
trap cleanup EXIT

mkfifo "$OUT/run/stdin"
"$BUILD/capd" --name default --source stdin <"$OUT/run/stdin" >"$OUT/run/capd.log" 2>&1 &
CAPD_PID=$!
pids+=("$CAPD_PID")
exec 7>"$OUT/run/stdin" # opens when capd opens its end; held until the end
wait_ring default || die "capd did not start: $(cat "$OUT/run/capd.log")"
PORT=$(free_port)
start_lighttpd "$OUT/run" "$PORT"
wait_port "$PORT" || die "lighttpd did not start: $(cat "$OUT/run"/*.out "$OUT/run"/error.log 2>/dev/null)"
curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/state" # spawns the responder
RESPONDER=$(pgrep -P "$LIGHTTPD_PID" -x capd.fcgi | head -1)
[ -n "$RESPONDER" ] || die "no capd.fcgi under lighttpd"

publish() { cat "$FRAME" >&7; }
# Viewers that hung up while idle are noticed at their next repeat (the write fails): wait for
# the responder's streams to reach 0, so that no pass counts the previous one's teardown.
no_streams() {
    for _ in $(seq 80); do
        curl -s --max-time 2 "http://127.0.0.1:$PORT/state" | grep -q '"streams":0,' && return 0
        sleep 0.1
    done
    echo "idle: streams of the previous pass still open after 8 s" >&2
}

# count PASS SECONDS_OF_LISTING: strace -c on the responder and lighttpd, then strace -tt.
count() {
    local pass=$1 listing=$2 sl
    timeout -s INT "$SECONDS_PER_PASS" strace -f -c -p "$LIGHTTPD_PID" -o "$OUT/lighttpd-c-$pass.txt" \
        2>>"$OUT/strace.log" &
    sl=$!
    timeout -s INT "$SECONDS_PER_PASS" strace -f -c -p "$RESPONDER" -o "$OUT/strace-c-$pass.txt" \
        2>>"$OUT/strace.log"
    wait "$sl"
    timeout -s INT "$listing" strace -f -tt -p "$RESPONDER" -o "$OUT/strace-tt-$pass.txt" \
        2>>"$OUT/strace.log"
}

# viewers PASS N SECONDS: N loadclient viewers for SECONDS (+ 0.5 s to connect); sets LOAD.
viewers() {
    "$LOADCLIENT" --viewers "$2" --warmup 0.5 --seconds "$3" \
        --label "idle $1" --json "http://127.0.0.1:$PORT/stream" >"$OUT/load-$1.json" \
        2>"$OUT/load-$1.err" &
    LOAD=$!
}

passes=()
for n in 1 10; do
    echo "idle: $n viewer(s), one frame, then nothing (2 x $SECONDS_PER_PASS s)"
    viewers "v$n" "$n" $((2 * SECONDS_PER_PASS + 4))
    sleep 1
    publish
    sleep 1.5
    count "v$n" "$SECONDS_PER_PASS"
    wait "$LOAD"
    passes+=("v$n:$n")
    no_streams
done

echo "idle: no viewers (2 x $SECONDS_PER_PASS s)"
count v0 "$SECONDS_PER_PASS"
passes+=("v0:0")

echo "idle: 1 viewer arriving after the last frame ($SECONDS_PER_PASS + 1 s)"
viewers late 1 $((SECONDS_PER_PASS + 4))
sleep 1.5
count late 1
wait "$LOAD"
passes+=("late:1")

threads=$(ls "/proc/$RESPONDER/task" 2>/dev/null | wc -l)
printf '{"seconds": %s, "responder_pid": %s, "capd_pid": %s, "responder_threads": %s, "frame": "%s", "passes": "%s"}\n' \
    "$SECONDS_PER_PASS" "$RESPONDER" "$CAPD_PID" "$threads" "$FRAME" "${passes[*]}" >"$OUT/meta.json"
echo "idle: raw output in $OUT"
