#!/usr/bin/env bash
# run.sh - `make bench`: capd's full path and the baselines, side by side on the same frames.
#
#   bench/run.sh [BUILD]            the full run (about 25 minutes), writes bench/results.md
#   BENCH_QUICK=1 bench/run.sh      a one-minute run (720p, 10 and 100 viewers)
#
# Systems (see bench/baselines/README.md), each fed the same JPEG folder at 30 fps:
#   capd          capd --source file: + capd.fcgi (fan-out) + lighttpd with lighttpd.conf
#   capd-threads  the same with capd.fcgi --stream-mode threads (a thread per viewer)
#   naive         naive_fcgi behind lighttpd-naive.conf (Debian defaults + stream-response-body 2)
#   direct        direct_epoll, the single-process limit
#   flask         the seed's design, Flask's threaded server
# Every run starts its system afresh, then build/bench/loadclient connects the viewers, waits
# out a warm-up and measures a window: fps, latency, and the CPU of every server process per
# delivered frame. Raw results: $BENCH_OUT/raw.jsonl; the report: bench/results.md.
set -u
cd "$(dirname "$0")/.."
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
else
    RESOLUTIONS=(720p 1080p)
    VIEWER_COUNTS=(1 10 100 300)
    SYSTEMS=(capd capd-threads naive direct flask)
    WINDOW=10
    WARMUP=3
    KNEE=(200 300 400 500 600 800 1000)
fi

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

mkdir -p "$OUT"
: >"$OUT/raw.jsonl"
"$ROOT/bench/baselines/make-frames.sh" "$FRAMES" >"$OUT/frames.txt" || die "cannot make the frames"

# ---- starting and stopping systems ---------------------------------------------------------
pids=()
stop_all() {
    local p
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    pids=()
    rm -f /dev/shm/"$CAPD_SHM_PREFIX"*
}
trap 'stop_all; exit 130' INT TERM
trap stop_all EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        port_open "$p" || break
    done
    echo "$p"
}
wait_port() {
    for _ in $(seq 100); do port_open "$1" && return 0; sleep 0.1; done
    return 1
}

# start SYSTEM RES FPS: sets PORT, PATH_Q and CPU_ARGS (loadclient's --pid/--tree flags).
start() {
    local system=$1 res=$2 fps=$3 rundir=$OUT/run
    PORT=$(free_port)
    PATH_Q=/stream
    rm -rf "$rundir"
    mkdir -p "$rundir"
    case $system in
    capd | capd-threads)
        "$BUILD/capd" --name default --source "file:$FRAMES/$res" --fps "$fps" \
            >"$rundir/capd.log" 2>&1 &
        local capd=$!
        pids+=("$capd")
        for _ in $(seq 50); do [ -e "/dev/shm/${CAPD_SHM_PREFIX}default" ] && break; sleep 0.1; done
        local args=""
        [ "$system" = capd-threads ] && args="--stream-mode threads"
        CAPD_PORT=$PORT CAPD_ROOT=$ROOT CAPD_BIN=$BUILD CAPD_RUNDIR=$rundir \
            CAPD_MAX_VIEWERS=1100 CAPD_FCGI_ARGS="$args" \
            lighttpd -D -f "$ROOT/lighttpd.conf" >"$rundir/lighttpd.out" 2>&1 &
        pids+=($!)
        CPU_ARGS=(--tree "$!" --pid "$capd")
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
        cat "$rundir"/*.log "$rundir"/*.out >&2 2>/dev/null
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
    start "$system" "$res" "$fps" || {
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

# ---- ring microbenchmark ---------------------------------------------------------------------
"$BUILD/bench/ring_bench" >"$OUT/ring.txt" 2>&1 || echo "bench: ring_bench failed" >&2

# ---- the report ----------------------------------------------------------------------------------
$PY "$ROOT/bench/report.py" report "$OUT/raw.jsonl" "$OUT/ring.txt" "$OUT/frames.txt" \
    "${BENCH_QUICK:+quick}" >"$ROOT/bench/results.md" &&
    echo "bench: wrote bench/results.md"
