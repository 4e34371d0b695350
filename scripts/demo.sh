#!/usr/bin/env bash
# demo.sh - `make demo`: runs capd (camera "default") and lighttpd with lighttpd.conf, in the foreground.
#
# Environment: PORT (default 8080), CAPD_ARGS (extra capd flags, e.g. "--source file:/tmp/jpgs"),
# HOST (default 127.0.0.1). Ctrl-C stops both. Without --source in CAPD_ARGS the demo shows
# /dev/video0 when there is one that capd can open, else the test pattern.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-8080}
host=${HOST:-127.0.0.1}
bin="$here/build"
rundir="/tmp/capd-demo-$port"
capd_pid=""
lighttpd_pid=""

stop() {
    trap - INT TERM EXIT
    [ -n "$lighttpd_pid" ] && kill "$lighttpd_pid" 2>/dev/null
    [ -n "$capd_pid" ] && kill "$capd_pid" 2>/dev/null
    wait 2>/dev/null
    echo
    echo "demo: stopped"
}

port_busy() {
    # A TCP connect succeeds only when something listens.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

if port_busy "$port"; then
    echo "demo: port $port is already in use; try: make demo PORT=8081" >&2
    exit 1
fi
mkdir -p "$rundir"
: > "$rundir/error.log"

source_arg=""
camera=""
case " ${CAPD_ARGS:-} " in
*" --source "* | *" -s "* | *" --source="*) ;;
*)
    if [ -c /dev/video0 ]; then
        camera=/dev/video0
        source_arg="--source /dev/video0"
        echo "demo: showing the camera /dev/video0 (CAPD_ARGS=\"--source testpattern\" for the test pattern)"
    else
        source_arg="--source testpattern"
    fi
    ;;
esac

trap 'stop; exit 0' INT TERM
trap stop EXIT
# shellcheck disable=SC2086 # CAPD_ARGS is a list of flags
"$bin/capd" --name default $source_arg ${CAPD_ARGS:-} &
capd_pid=$!

# Wait for the ring to appear (or capd to fail).
i=0
while [ ! -e "/dev/shm/${CAPD_SHM_PREFIX:-capd-}default" ]; do
    if ! kill -0 "$capd_pid" 2>/dev/null; then
        wait "$capd_pid"
        if [ -n "$camera" ]; then
            # Not a capture device, no permission (the video group), or busy: the test pattern
            # still shows that the rest works.
            echo "demo: capd cannot use $camera (see its message above); using the test pattern"
            camera=""
            # shellcheck disable=SC2086 # CAPD_ARGS is a list of flags
            "$bin/capd" --name default --source testpattern ${CAPD_ARGS:-} &
            capd_pid=$!
            i=0
            continue
        fi
        capd_pid=""
        echo "demo: capd did not start (see its message above)" >&2
        exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "demo: capd did not create its ring within 10 s" >&2
        exit 1
    fi
    sleep 0.1
done

CAPD_PORT=$port CAPD_HOST=$host CAPD_ROOT=$here CAPD_BIN=$bin CAPD_RUNDIR=$rundir \
    lighttpd -D -f "$here/lighttpd.conf" &
lighttpd_pid=$!
i=0
until port_busy "$port"; do
    if ! kill -0 "$lighttpd_pid" 2>/dev/null; then
        lighttpd_pid=""
        echo "demo: lighttpd did not start; its log:" >&2
        cat "$rundir/error.log" >&2
        exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "demo: lighttpd did not listen on port $port within 10 s" >&2
        exit 1
    fi
    sleep 0.1
done

cat <<MSG

  capd demo is running:   http://$host:$port/

  stream     http://$host:$port/stream
  snapshot   http://$host:$port/snapshot
  state      http://$host:$port/state
  CGI        http://$host:$port/cgi-bin/capd.cgi/stream
  log        $rundir/error.log

  Press Ctrl-C to stop.

MSG

# Run until Ctrl-C or until either process dies. Both exit 0 when Ctrl-C
# reaches them first (the whole process group gets it), which is no error.
while kill -0 "$capd_pid" 2>/dev/null && kill -0 "$lighttpd_pid" 2>/dev/null; do
    sleep 1
done
status=0
if ! kill -0 "$capd_pid" 2>/dev/null; then
    wait "$capd_pid" || status=$?
    capd_pid=""
fi
if ! kill -0 "$lighttpd_pid" 2>/dev/null; then
    wait "$lighttpd_pid" || status=$?
    lighttpd_pid=""
fi
if [ "$status" -ne 0 ]; then
    echo "demo: a process exited with status $status; see $rundir/error.log" >&2
fi
exit "$status"
