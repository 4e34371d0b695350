#!/usr/bin/env bash
# profile.sh - where the responder's time goes at 100 viewers of 720p30 (perf is not available
# here): instructions per delivered frame with valgrind's callgrind, and the system calls per
# delivered frame with strace, on capd.fcgi (fan-out mode) under lighttpd with lighttpd.conf.
#
#   bench/profile.sh [BUILD]     under a minute; `make bench` runs it in the full run only
#                                (BENCH_PROFILE=1 adds it to a quick run, BENCH_PROFILE=0
#                                leaves it out of a full one)
#
# Environment: PROFILE_VIEWERS (100), PROFILE_SECONDS (10), PROFILE_RES (720p), BENCH_OUT,
# BENCH_FRAMES (as bench/run.sh).
#
# 1. callgrind: lighttpd spawns the responder through a wrapper in CAPD_BIN that execs
#    `valgrind --tool=callgrind` (as tests/integration/test_valgrind.sh does with memcheck).
#    The viewers connect and settle; then `callgrind_control -z` zeroes the counters,
#    PROFILE_SECONDS later `callgrind_control -d` dumps them, and the responder's own
#    frames_sent counter (from /state) at both ends gives the frames delivered in between.
#    Instructions are user space only (the kernel's share of writev is not in them). Under
#    valgrind the responder's own code runs some 50x slower; when it falls behind it skips to
#    the newest frame and delivers fewer frames: read the costs per frame, not the rate.
# 2. strace: the same load on the plain responder; `strace -f -c -p` for PROFILE_SECONDS, and
#    frames_sent before and after. strace stops the responder at every call, which may cost it
#    frames the same way.
# Raw output in $BENCH_OUT/profile/: callgrind.out.*, annotate-inclusive.txt,
# annotate-self.txt, strace-c.txt, meta.json; bench/report.py formats them
# (`report.py profile DIR` prints the section alone).
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=${BENCH_OUT:-/tmp/capd-bench}/profile
FRAMES=${BENCH_FRAMES:-/tmp/capd-bench-frames}
VIEWERS=${PROFILE_VIEWERS:-100}
WINDOW=${PROFILE_SECONDS:-10}
RES=${PROFILE_RES:-720p}
LOADCLIENT=$BUILD/bench/loadclient
export CAPD_SHM_PREFIX="prof$$-"
. "$ROOT/bench/lib.sh"

die() {
    echo "profile: $*" >&2
    exit 1
}
for t in valgrind callgrind_control callgrind_annotate strace; do
    command -v "$t" >/dev/null || die "$t is missing (apt-get install valgrind strace)"
done
for tool in "$LOADCLIENT" "$BUILD/capd" "$BUILD/capd.fcgi"; do
    [ -x "$tool" ] || die "$tool is missing: run make benchtools"
done
if nm "$BUILD/capd.fcgi" 2>/dev/null | grep -q __asan_init; then
    die "$BUILD is a sanitizer build: valgrind cannot run it (use the plain build)"
fi
"$ROOT/bench/baselines/make-frames.sh" "$FRAMES" >/dev/null || die "cannot make the frames"

rm -rf "$OUT"
mkdir -p "$OUT/bin"
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

frames_sent() {
    curl -s --max-time 30 "http://127.0.0.1:$PORT/state" | sed -n 's/.*"frames_sent":\([0-9]*\).*/\1/p'
}

# setup RUNDIR FCGI_BIN_DIR: capd, lighttpd and the responder (spawned by a first request),
# then the viewers (LOAD) for warm-up + window + a margin; sets RESPONDER.
setup() {
    local rundir=$1 bin=$2 warmup=$3
    rm -rf "$rundir"
    mkdir -p "$rundir"
    start_capd "$rundir" --source "file:$FRAMES/$RES" --fps 30 || die "capd did not start"
    PORT=$(free_port)
    CAPD_MAX_VIEWERS=$((VIEWERS + 20)) start_lighttpd "$rundir" "$PORT" "$bin"
    wait_port "$PORT" || die "lighttpd did not start: $(cat "$rundir"/*.out 2>/dev/null)"
    for _ in $(seq 60); do
        [ -n "$(frames_sent)" ] && break
        sleep 1
    done
    RESPONDER=$(pgrep -P "$LIGHTTPD_PID" | head -1)
    [ -n "$RESPONDER" ] || die "lighttpd spawned no responder: $(cat "$rundir"/error.log)"
    pids+=("$RESPONDER") # stop_all waits for it (valgrind writes its last dump at exit)
    # 3 s longer than the window, so that no viewer leaves inside it.
    "$LOADCLIENT" --viewers "$VIEWERS" --warmup "$warmup" --seconds $((WINDOW + 3)) --ramp 2000 \
        --source-fps 30 --label "profile $RES $VIEWERS" --json \
        "http://127.0.0.1:$PORT/stream" >"$rundir/load.json" 2>"$rundir/load.err" &
    LOAD=$!
}

# ---- 1. callgrind ------------------------------------------------------------------------------
cat >"$OUT/bin/capd.fcgi" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --max-threads=2000 --dump-instr=no --collect-systime=no \\
    --callgrind-out-file=$OUT/callgrind.out.%p --log-file=$OUT/valgrind.%p.log \\
    $BUILD/capd.fcgi "\$@"
EOF
chmod +x "$OUT/bin/capd.fcgi"
echo "profile: callgrind, $VIEWERS viewers of $RES at 30 fps, $WINDOW s"
WARMUP=8
setup "$OUT/run-callgrind" "$OUT/bin" "$WARMUP"
sleep "$WARMUP"
callgrind_control -z "$RESPONDER" >"$OUT/callgrind_control.log" 2>&1 || die "callgrind_control -z failed"
cg_start=$(date +%s.%N)
cg_f0=$(frames_sent)
sleep "$WINDOW"
cg_f1=$(frames_sent)
callgrind_control -d "$RESPONDER" >>"$OUT/callgrind_control.log" 2>&1 || die "callgrind_control -d failed"
cg_end=$(date +%s.%N)
wait "$LOAD"
cp "$OUT/run-callgrind/load.json" "$OUT/load-callgrind.json"
stop_all
dump=$(ls "$OUT"/callgrind.out.*.1 2>/dev/null | head -1)
[ -n "$dump" ] || die "no callgrind dump: $(cat "$OUT/callgrind_control.log")"
# callgrind_annotate 3.19 takes "calls=0" (a call begun before the counters were zeroed: every
# thread's main loop) for no call and adds its inclusive cost to the caller's self cost, which
# then shows clone() with 100 % self. The count does not matter here: make it 1.
sed 's/^calls=0 /calls=1 /' "$dump" >"$OUT/callgrind.window"
callgrind_annotate --inclusive=yes --auto=no --threshold=99.9 "$OUT/callgrind.window" \
    >"$OUT/annotate-inclusive.txt" 2>&1
callgrind_annotate --inclusive=no --auto=no --threshold=99.9 "$OUT/callgrind.window" \
    >"$OUT/annotate-self.txt" 2>&1

# ---- 2. strace on the plain responder ----------------------------------------------------------
echo "profile: strace -c, $VIEWERS viewers of $RES at 30 fps, $WINDOW s"
WARMUP=4
setup "$OUT/run-strace" "$BUILD" "$WARMUP"
sleep "$WARMUP"
st_f0=$(frames_sent)
st_start=$(date +%s.%N)
timeout -s INT "$WINDOW" strace -f -c -p "$RESPONDER" -o "$OUT/strace-c.txt" 2>"$OUT/strace.log"
st_end=$(date +%s.%N)
st_f1=$(frames_sent)
wait "$LOAD"
cp "$OUT/run-strace/load.json" "$OUT/load-strace.json"
threads=$(ls "/proc/$RESPONDER/task" 2>/dev/null | wc -l)
stop_all

cat >"$OUT/meta.json" <<EOF
{"viewers": $VIEWERS, "seconds": $WINDOW, "res": "$RES", "responder_threads": $threads,
 "callgrind": {"dump": "$dump", "frames_start": ${cg_f0:-null}, "frames_end": ${cg_f1:-null},
               "t_start": $cg_start, "t_end": $cg_end},
 "strace": {"frames_start": ${st_f0:-null}, "frames_end": ${st_f1:-null},
            "t_start": $st_start, "t_end": $st_end}}
EOF
echo "profile: raw output in $OUT"
