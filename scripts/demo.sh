#!/usr/bin/env bash
# demo.sh - `make demo`: runs capd (camera "default") and lighttpd with lighttpd.conf, in the foreground.
#
# Environment: PORT (default 8080), CAPD_ARGS (extra capd flags, e.g. "--source file:/tmp/jpgs"),
# HOST (default 127.0.0.1). Ctrl-C stops both. Without --source in CAPD_ARGS the demo shows
# /dev/video0 when there is one that capd can open, else the test pattern.
#
# TLS=1 serves HTTPS with HTTP/2 instead of plain HTTP: a self-signed certificate for
# localhost and 127.0.0.1 (made with openssl; certificate and key in one PEM file, mode 0600)
# is kept in the run folder /tmp/capd-demo-$PORT and reused while it is valid for another day.
# Browsers warn about it; curl needs -k.
#
# Also: CAPD_BIN (default build/, the folder holding capd and capd.fcgi) and CAPD_SHM_PREFIX
# (default capd-, the shared-memory names) let tests run the demo without touching yours.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-8080}
host=${HOST:-127.0.0.1}
bin=${CAPD_BIN:-$here/build}
rundir="/tmp/capd-demo-$port"
case ${TLS:-} in
"" | 0 | no | false | off) tls="" ;;
1 | yes | true | on) tls=1 ;;
*)
    echo "demo: TLS=$TLS: use TLS=1 for HTTPS (or leave it unset)" >&2
    exit 2
    ;;
esac
scheme=http${tls:+s}
capd_pid=""
lighttpd_pid=""

# shellcheck disable=SC2317 # reached through the traps
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

# TLS=1: a self-signed certificate, made once and reused while it is valid for another day.
pem=""
if [ -n "$tls" ]; then
    if ! command -v openssl >/dev/null; then
        echo "demo: TLS=1 needs openssl (apt-get install openssl)" >&2
        exit 1
    fi
    # The key goes into this folder: it must be ours, not something another user put in /tmp.
    if [ -L "$rundir" ] || [ ! -O "$rundir" ]; then
        echo "demo: $rundir belongs to another user; remove it or use another PORT" >&2
        exit 1
    fi
    # Debian's and Ubuntu's lighttpd keep their modules here.
    if [ -d /usr/lib/lighttpd ] && [ ! -e /usr/lib/lighttpd/mod_openssl.so ]; then
        echo "demo: TLS=1 needs lighttpd's mod_openssl (apt-get install lighttpd-mod-openssl)" >&2
        exit 1
    fi
    pem="$rundir/server.pem"
    if [ -s "$pem" ] && [ -O "$pem" ] && openssl pkey -in "$pem" -noout 2>/dev/null &&
        openssl x509 -in "$pem" -noout -checkend 86400 >/dev/null 2>&1; then
        chmod 600 "$pem"
        echo "demo: reusing the self-signed certificate $pem"
    else
        rm -f "$pem" "$rundir/server.key.new" "$rundir/server.crt.new" "$rundir/server.pem.new"
        if ! (umask 077 &&
            openssl req -x509 -newkey rsa:2048 -nodes -days 90 -subj /CN=localhost \
                -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
                -keyout "$rundir/server.key.new" -out "$rundir/server.crt.new" \
                >"$rundir/openssl.log" 2>&1 &&
            cat "$rundir/server.crt.new" "$rundir/server.key.new" >"$rundir/server.pem.new" &&
            mv "$rundir/server.pem.new" "$pem"); then
            rm -f "$rundir/server.key.new" "$rundir/server.crt.new" "$rundir/server.pem.new"
            echo "demo: openssl could not make a certificate:" >&2
            cat "$rundir/openssl.log" >&2
            exit 1
        fi
        rm -f "$rundir/server.key.new" "$rundir/server.crt.new" "$rundir/openssl.log"
        echo "demo: made a self-signed certificate for localhost and 127.0.0.1: $pem"
    fi
fi

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
    CAPD_TLS_PEM=$pem lighttpd -D -f "$here/lighttpd.conf" &
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

base="$scheme://$host:$port"
cat <<MSG

  capd demo is running:   $base/

  stream     $base/stream
  snapshot   $base/snapshot
  state      $base/state
  CGI        $base/cgi-bin/capd.cgi/stream
  log        $rundir/error.log
MSG
if [ -n "$tls" ]; then
    cat <<MSG
  cert       $pem

  HTTPS + HTTP/2 with a self-signed certificate: the browser warns about it; curl needs -k.
MSG
fi
cat <<MSG

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
