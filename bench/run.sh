#!/usr/bin/env bash
# run.sh - `make bench`: capd's full path and the baselines, side by side on the same frames.
#
#   bench/run.sh [BUILD]            the full run (about 30 minutes), writes bench/results.md
#   BENCH_QUICK=1 bench/run.sh      a 2.5-minute run (720p, 10 and 100 viewers, capd, naive,
#                                   direct, flask; the idle passes 6 s each; no profile)
#
# Systems (see bench/baselines/README.md), each fed the same JPEG folder at 30 fps:
#   capd          capd --source file: + capd.fcgi (fan-out) + lighttpd with lighttpd.conf
#   capd-threads  the same with capd.fcgi --stream-mode threads (a thread per viewer)
#   capd-apache   capd + capd.fcgi --listen behind Apache 2.4 (event MPM) with
#                 deploy/apache/capd-proxy-fcgi.conf (mod_proxy_fcgi, flushpackets=on)
#   naive         naive_fcgi behind lighttpd-naive.conf (Debian defaults + stream-response-body 2)
#   direct        direct_epoll, the single-process limit
#   flask         the seed's design, Flask's threaded server
# Every run starts its system afresh, then build/bench/loadclient connects the viewers, waits
# out a warm-up and measures a window: fps, latency, and the CPU of every server process per
# delivered frame. Then bench/idle.sh counts the responder's system calls with idle viewers
# (about 90 s; 60 s quick) and, in the full run, bench/profile.sh profiles it at 100 viewers
# (callgrind and strace, under a minute). Raw results: $BENCH_OUT (default /tmp/capd-bench);
# the report: bench/results.md, with bench/analysis.md appended when it exists.
#
# For trying pieces out (the report then has only what ran):
#   BENCH_SYSTEMS="capd capd-apache"  BENCH_VIEWERS="3"  BENCH_RESOLUTIONS="720p"
#   BENCH_IDLE=0 (no idle passes)  BENCH_PROFILE=1|0 (profile in a quick run / not in a full one)
#   BENCH_RING=0 (no ring_bench)  BENCH_REPORT=FILE (instead of bench/results.md)
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
BUILD=${1:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
OUT=${BENCH_OUT:-/tmp/capd-bench}
FRAMES=${BENCH_FRAMES:-/tmp/capd-bench-frames}
PY=/usr/bin/python3
LOADCLIENT=$BUILD/bench/loadclient
export CAPD_SHM_PREFIX="bench$$-"

if [ -n "${BENCH_QUICK:-}" ]; then
    RESOLUTIONS=(720p)
    VIEWER_COUNTS=(10 100)
    SYSTEMS=(capd naive direct flask)
    WINDOW=5
    WARMUP=2
    KNEE=()
    IDLE_SECONDS=${IDLE_SECONDS:-6}
    PROFILE=${BENCH_PROFILE:-0}
else
    RESOLUTIONS=(720p 1080p)
    VIEWER_COUNTS=(1 10 100 300)
    SYSTEMS=(capd capd-threads capd-apache naive direct flask)
    WINDOW=10
    WARMUP=3
    KNEE=(200 300 400 500 600 800 1000)
    IDLE_SECONDS=${IDLE_SECONDS:-10}
    PROFILE=${BENCH_PROFILE:-1}
fi
export IDLE_SECONDS
[ -n "${BENCH_SYSTEMS:-}" ] && read -ra SYSTEMS <<<"$BENCH_SYSTEMS"
[ -n "${BENCH_VIEWERS:-}" ] && read -ra VIEWER_COUNTS <<<"$BENCH_VIEWERS"
[ -n "${BENCH_RESOLUTIONS:-}" ] && read -ra RESOLUTIONS <<<"$BENCH_RESOLUTIONS"
if [ -n "${BENCH_SYSTEMS:-}${BENCH_VIEWERS:-}${BENCH_RESOLUTIONS:-}" ]; then
    KNEE=() # a partial run: no knee search
fi
REPORT=${BENCH_REPORT:-$ROOT/bench/results.md}

die() {
    echo "bench: $*" >&2
    exit 1
}
for tool in "$LOADCLIENT" "$BUILD/capd" "$BUILD/capd.fcgi" "$BUILD/bench/baselines/naive_fcgi" \
    "$BUILD/bench/baselines/direct_epoll" "$BUILD/bench/ring_bench"; do
    [ -x "$tool" ] || die "$tool is missing: run make benchtools"
done
$PY -c 'import flask' 2>/dev/null || die "Debian's python3-flask is missing (apt-get install python3-flask)"
command -v lighttpd >/dev/null || die "lighttpd is missing"
if [[ " ${SYSTEMS[*]} " == *" capd-apache "* ]]; then
    if [ ! -x "$(command -v apache2 || echo /usr/sbin/apache2)" ] ||
        [ ! -e /usr/lib/apache2/modules/mod_proxy_fcgi.so ]; then
        die "Apache with mod_proxy_fcgi is missing (apt-get install apache2)"
    fi
fi
[ "${BENCH_IDLE:-1}" = 0 ] || command -v strace >/dev/null || die "strace is missing (apt-get install strace)"
[ "$PROFILE" = 0 ] || command -v valgrind >/dev/null || die "valgrind is missing (apt-get install valgrind)"

mkdir -p "$OUT"
: >"$OUT/raw.jsonl"
"$ROOT/bench/baselines/make-frames.sh" "$FRAMES" >"$OUT/frames.txt" || die "cannot make the frames"

# ---- starting and stopping systems (bench/lib.sh: stop_all, ports, capd, lighttpd, Apache) ------
. "$ROOT/bench/lib.sh"
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

# start SYSTEM RES FPS VIEWERS: sets PORT, PATH_Q and CPU_ARGS (loadclient's --pid/--tree flags).
start() {
    local system=$1 res=$2 fps=$3 viewers=$4 rundir=$OUT/run
    PORT=$(free_port)
    PATH_Q=/stream
    rm -rf "$rundir"
    mkdir -p "$rundir"
    case $system in
    capd | capd-threads)
        start_capd "$rundir" --source "file:$FRAMES/$res" --fps "$fps"
        local args=""
        [ "$system" = capd-threads ] && args="--stream-mode threads"
        CAPD_MAX_VIEWERS=1100 CAPD_FCGI_ARGS="$args" start_lighttpd "$rundir" "$PORT"
        CPU_ARGS=(--tree "$LIGHTTPD_PID" --pid "$CAPD_PID")
        ;;
    capd-apache)
        start_capd "$rundir" --source "file:$FRAMES/$res" --fps "$fps"
        start_apache "$rundir" "$PORT" "$viewers" --max-viewers 1100
        CPU_ARGS=(--tree "$APACHE_PID" --pid "$RESPONDER_PID" --pid "$CAPD_PID")
        ;;
    naive)
        NAIVE_DIR=$FRAMES/$res NAIVE_FPS=$fps NAIVE_PORT=$PORT NAIVE_THREADS=1100 \
            NAIVE_BIN=$BUILD/bench/baselines NAIVE_RUNDIR=$rundir \
            lighttpd -D -f "$ROOT/bench/baselines/lighttpd-naive.conf" >"$rundir/lighttpd.out" 2>&1 &
        pids+=($!)
        CPU_ARGS=(--tree "$!")
        ;;
    direct)
        "$BUILD/bench/baselines/direct_epoll" --dir "$FRAMES/$res" --fps "$fps" --port "$PORT" \
            >"$rundir/direct.log" 2>&1 &
        pids+=($!)
        CPU_ARGS=(--pid "$!")
        ;;
    flask)
        $PY "$ROOT/bench/baselines/flask_seed.py" --dir "$FRAMES/$res" --fps "$fps" \
            --port "$PORT" --quiet >"$rundir/flask.log" 2>&1 &
        pids+=($!)
        CPU_ARGS=(--pid "$!")
        ;;
    esac
    wait_port "$PORT" || {
        echo "bench: $system did not start:" >&2
        cat "$rundir"/*.log "$rundir"/*.out "$rundir"/apache/logs/*.log >&2 2>/dev/null
        return 1
    }
    # Spawn the FastCGI backends before the window (lighttpd starts them lazily).
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT$PATH_Q?frames=1" || true
    sleep 0.5
}

# measure SYSTEM RES FPS VIEWERS [SECONDS]
measure() {
    local system=$1 res=$2 fps=$3 viewers=$4 window=${5:-$WINDOW} ramp
    ramp=$((viewers > 100 ? 2000 : 500))
    start "$system" "$res" "$fps" "$viewers" || {
        stop_all
        return 1
    }
    "$LOADCLIENT" --viewers "$viewers" --seconds "$window" --warmup "$WARMUP" --ramp "$ramp" \
        --source-fps "$fps" "${CPU_ARGS[@]}" --label "$system $res ${fps}fps $viewers" --json \
        "http://127.0.0.1:$PORT$PATH_Q" >"$OUT/last.json" 2>"$OUT/last.err"
    if [ -s "$OUT/last.json" ]; then
        $PY "$ROOT/bench/report.py" tag "$system" "$res" "$fps" "$viewers" \
            <"$OUT/last.json" >>"$OUT/raw.jsonl"
        $PY "$ROOT/bench/report.py" line <"$OUT/last.json"
    else
        echo "  $system $res $viewers: no result ($(head -c 300 "$OUT/last.err"))"
    fi
    stop_all
}

echo "bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); raw results in $OUT"
cat "$OUT/frames.txt"

# ---- the side-by-side table: systems interleaved at each point ---------------------------------
for res in "${RESOLUTIONS[@]}"; do
    for viewers in "${VIEWER_COUNTS[@]}"; do
        for system in "${SYSTEMS[@]}"; do
            measure "$system" "$res" 30 "$viewers"
        done
    done
done

# ---- the knee: most viewers at full rate (30 fps, p99 < 100 ms), capd vs naive -----------------
for system in capd naive; do
    for viewers in "${KNEE[@]}"; do
        measure "$system" 720p 30 "$viewers"
        ok=$($PY "$ROOT/bench/report.py" knee "$OUT/raw.jsonl" "$system" "$viewers")
        [ "$ok" = 1 ] || break
    done
done

# ---- 1000 viewers at 5 fps --------------------------------------------------------------------
if [ -z "${BENCH_QUICK:-}" ]; then
    measure capd 720p 5 1000 15
fi

# ---- idle viewers and the profile (each starts and stops its own capd and lighttpd) ----------
IDLE_DIR=()
if [ "${BENCH_IDLE:-1}" != 0 ]; then
    BENCH_OUT=$OUT BENCH_FRAMES=$FRAMES "$ROOT/bench/idle.sh" "$BUILD" && IDLE_DIR=(--idle "$OUT/idle") ||
        echo "bench: idle.sh failed" >&2
fi
PROFILE_DIR=()
if [ "$PROFILE" != 0 ]; then
    BENCH_OUT=$OUT BENCH_FRAMES=$FRAMES "$ROOT/bench/profile.sh" "$BUILD" &&
        PROFILE_DIR=(--profile "$OUT/profile") || echo "bench: profile.sh failed" >&2
fi

# ---- ring microbenchmark ---------------------------------------------------------------------
if [ "${BENCH_RING:-1}" != 0 ]; then
    "$BUILD/bench/ring_bench" >"$OUT/ring.txt" 2>&1 || echo "bench: ring_bench failed" >&2
else
    echo "(not run: BENCH_RING=0)" >"$OUT/ring.txt"
fi

# ---- the report ----------------------------------------------------------------------------------
$PY "$ROOT/bench/report.py" report "$OUT/raw.jsonl" "$OUT/ring.txt" "$OUT/frames.txt" \
    ${BENCH_QUICK:+quick} "${IDLE_DIR[@]}" "${PROFILE_DIR[@]}" >"$REPORT" &&
    echo "bench: wrote $REPORT"
