#!/usr/bin/env bash
# test_demo.sh - scripts/demo.sh (`make demo`): plain HTTP, and TLS=1 (self-signed HTTPS + HTTP/2).
#
# Runs the demo three times on free test ports, with the test pattern and this test's private
# shared-memory prefix (lib.sh), against $BUILD (CAPD_BIN): plain, stopped by SIGINT to its
# process group as Ctrl-C does; TLS=1, stopped by SIGTERM to the script; TLS=1 again on the
# same port, which must reuse the certificate. Each time: the printed URL, a JPEG from
# /snapshot, and after the stop no capd, lighttpd, capd.fcgi, port or ring left. With TLS
# also: HTTP/2, the certificate (mode, key, names) and lighttpd's HTTP/2 stream limit that
# the README quotes. The demo's run folders (/tmp/capd-demo-PORT) are removed at the end
# (copied into the kept log folder first when something failed).
. "$(dirname "$0")/lib.sh"

for tool in curl openssl; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed"; exit; }
done
have_tls=1
if [ ! -e /usr/lib/lighttpd/mod_openssl.so ]; then
    have_tls=""
    fail "lighttpd's mod_openssl is not installed (lighttpd-mod-openssl): TLS=1 not tested"
fi

DEMO_PID=""
DEMO_PIDS=()
RUNDIRS=()
# kill_demo PID: stops a demo that is still running, with its whole process group.
kill_demo() {
    kill -0 "$1" 2>/dev/null || return 0
    kill -TERM -- "-$1" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
_demo_cleanup() {
    [ "$BASHPID" = "$_main_pid" ] || return 0
    local pid dir
    # A demo still running (a check failed half-way).
    for pid in "${DEMO_PIDS[@]}"; do
        kill_demo "$pid"
    done
    for dir in "${RUNDIRS[@]}"; do
        if [ "$FAILED" -ne 0 ] && [ -d "$dir" ]; then
            cp -r "$dir" "$TMP/" 2>/dev/null
        fi
        rm -rf "$dir"
    done
    _cleanup
}
trap _demo_cleanup EXIT

# A port nobody listens on whose run folder does not exist (a user's demo keeps its folder).
# Below the kernel's ephemeral range when it leaves room: the TLS demo binds the same port
# twice, and a client socket of some other program could take it in between.
demo_port() {
    local p lo=0 _hi
    read -r lo _hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null
    while :; do
        if [ "${lo:-0}" -gt 21000 ]; then
            p=$((20000 + RANDOM % (lo - 20000)))
            port_open "$p" && continue
        else
            p=$(free_port)
        fi
        [ -e "/tmp/capd-demo-$p" ] || break
    done
    echo "$p"
}

# A process that still runs (a zombie has exited: only its parent has not reaped it yet).
alive() {
    local stat
    stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $stat != Z* ]]
}

# start_demo LABEL PORT [VAR=value...]: runs scripts/demo.sh in the background, in a process
# group of its own (job control: so that SIGINT is not ignored, as for any background job of
# a script) and waits for its banner. Sets DEMO_PID and DEMO_LOG.
start_demo() {
    local label=$1 port=$2
    shift 2
    DEMO_LOG="$TMP/demo-$label.log"
    : >"$DEMO_LOG"
    set -m
    env "$@" PORT="$port" CAPD_ARGS="--source testpattern --size 320x240 --fps 15" \
        CAPD_BIN="$BUILD" "$ROOT/scripts/demo.sh" >"$DEMO_LOG" 2>&1 </dev/null &
    DEMO_PID=$!
    DEMO_PIDS+=("$DEMO_PID")
    set +m
    RUNDIRS+=("/tmp/capd-demo-$port")
    local i=0
    until grep -q 'capd demo is running:' "$DEMO_LOG"; do
        if ! kill -0 "$DEMO_PID" 2>/dev/null || [ "$i" -ge 300 ]; then
            fail "$label: the demo did not start: $(tail -5 "$DEMO_LOG" | tr '\n' ' ')"
            return 1
        fi
        i=$((i + 1))
        sleep 0.1
    done
    pass "$label: the demo starts"
}

# check_url LABEL URL: the banner names URL as the viewer page.
check_url() {
    local printed
    printed=$(sed -n 's/^ *capd demo is running: *//p' "$DEMO_LOG")
    [ "$printed" = "$2" ] && pass "$1: prints $2" || fail "$1: printed '$printed', expected $2"
}

# check_snapshot LABEL URL [curl flags]: a 200 image/jpeg that is a whole JPEG (SOI ... EOI).
check_snapshot() {
    local label=$1 url=$2 info head tail
    shift 2
    info=$(curl -s --max-time 10 "$@" -o "$TMP/snap.jpg" \
        -w '%{http_code} %{content_type} %{http_version}' "$url")
    head=$(head -c 3 "$TMP/snap.jpg" 2>/dev/null | od -An -tx1 | tr -d ' \n')
    tail=$(tail -c 2 "$TMP/snap.jpg" 2>/dev/null | od -An -tx1 | tr -d ' \n')
    if [[ $info == "200 image/jpeg "* ]] && [ "$head" = ffd8ff ] && [ "$tail" = ffd9 ]; then
        pass "$label: $url is a JPEG ($(wc -c <"$TMP/snap.jpg") bytes, HTTP/${info##* })"
    else
        fail "$label: $url -> '$info', starts with $head, ends with $tail"
    fi
    SNAP_INFO=$info
}

# h2_max_streams PORT: SETTINGS_MAX_CONCURRENT_STREAMS from the server's first HTTP/2 frame
# (its SETTINGS: 3 bytes length, type 4, flags, stream id, then 6-byte id/value pairs).
h2_max_streams() {
    local hex len i
    hex=$({
        printf 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\000\000\000\004\000\000\000\000\000'
        sleep 0.5
    } | timeout 5 openssl s_client -alpn h2 -quiet -no_ign_eof -connect "127.0.0.1:$1" 2>/dev/null |
        od -An -v -tx1 | tr -d ' \n')
    [ "${hex:6:2}" = 04 ] || return 1
    len=$((16#${hex:0:6}))
    for ((i = 18; i < 18 + 2 * len; i += 12)); do
        [ "${hex:i:4}" = 0003 ] && echo $((16#${hex:i+4:8})) && return 0
    done
    return 1
}

# stop_demo LABEL SIGNAL group|script PORT: stops the demo, then checks that it exited 0 and left
# no process, port or shared-memory object behind.
stop_demo() {
    local label=$1 sig=$2 how=$3 port=$4 capd lighttpd fcgi pid left="" status i
    capd=$(pgrep -P "$DEMO_PID" -x capd)
    lighttpd=$(pgrep -P "$DEMO_PID" -x lighttpd)
    fcgi=$([ -n "$lighttpd" ] && pgrep -P "$lighttpd" -f capd.fcgi)
    if [ -n "$capd" ] && [ -n "$lighttpd" ] && [ -n "$fcgi" ] &&
        [ "$(readlink "/proc/$capd/exe")" = "$BUILD/capd" ] &&
        [ "$(readlink "/proc/$fcgi/exe")" = "$BUILD/capd.fcgi" ]; then
        pass "$label: capd, lighttpd and capd.fcgi (from $(basename "$BUILD")/) run"
    else
        fail "$label: processes: capd '$capd', lighttpd '$lighttpd', capd.fcgi '$fcgi'"
    fi
    if [ "$how" = group ]; then
        kill "-$sig" -- "-$DEMO_PID" # Ctrl-C: the terminal signals the whole process group
    else
        kill "-$sig" "$DEMO_PID"
    fi
    i=0
    while kill -0 "$DEMO_PID" 2>/dev/null && [ "$i" -lt 100 ]; do
        i=$((i + 1))
        sleep 0.1
    done
    if kill -0 "$DEMO_PID" 2>/dev/null; then
        fail "$label: the demo still runs 10 s after SIG$sig"
        kill_demo "$DEMO_PID"
        DEMO_PID=""
        return 1
    fi
    wait "$DEMO_PID"
    status=$?
    DEMO_PID=""
    if [ "$status" -eq 0 ] && grep -q '^demo: stopped' "$DEMO_LOG"; then
        pass "$label: SIG$sig to the $how stops the demo (exit 0)"
    else
        fail "$label: after SIG$sig the demo exited with $status: $(tail -3 "$DEMO_LOG" | tr '\n' ' ')"
    fi
    # capd.fcgi may outlive lighttpd by a moment.
    for pid in $capd $lighttpd $fcgi; do
        for _ in $(seq 30); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && left="$left $(ps -o pid=,comm= -p "$pid")"
    done
    port_open "$port" && left="$left port-$port"
    for obj in /dev/shm/"$CAPD_SHM_PREFIX"*; do
        [ -e "$obj" ] && left="$left $obj"
    done
    if [ -n "$left" ]; then
        fail "$label: left behind:$left"
        return 1
    fi
    pass "$label: nothing left (processes, port, shared memory)"
}

# ---- a TLS value that is not a yes or a no ------------------------------------------------------
out=$(TLS=maybe PORT=$(demo_port) CAPD_BIN="$BUILD" "$ROOT/scripts/demo.sh" 2>&1 </dev/null)
status=$?
[ "$status" = 2 ] && [[ $out == *"TLS=maybe"* ]] && pass "TLS=maybe is refused (exit 2)" ||
    fail "TLS=maybe: exit $status: $out"

# ---- plain HTTP, Ctrl-C ------------------------------------------------------------------------
port=$(demo_port)
if start_demo plain "$port"; then
    check_url plain "http://127.0.0.1:$port/"
    check_snapshot plain "http://127.0.0.1:$port/snapshot"
    [ -e "/tmp/capd-demo-$port/server.pem" ] && fail "plain: a certificate was made without TLS=1" ||
        pass "plain: no certificate without TLS=1"
    stop_demo plain INT group "$port"
fi

[ -n "$have_tls" ] || exit

# ---- TLS=1, SIGTERM ----------------------------------------------------------------------------
port=$(demo_port)
pem="/tmp/capd-demo-$port/server.pem"
if start_demo tls "$port" TLS=1; then
    check_url tls "https://127.0.0.1:$port/"
    # The note follows the URL lines, from a later write: give it a moment.
    wait_for 5 grep -q 'self-signed certificate: the browser warns about it; curl needs -k' "$DEMO_LOG" &&
        pass "tls: notes the self-signed certificate and curl -k" ||
        fail "tls: no note about the self-signed certificate and curl -k"
    check_snapshot tls "https://127.0.0.1:$port/snapshot" -k --http2
    [ "${SNAP_INFO##* }" = 2 ] && pass "tls: HTTP/2 is negotiated" ||
        fail "tls: curl --http2 got HTTP/${SNAP_INFO##* }"
    mode=$(stat -c %a "$pem" 2>/dev/null)
    [ "$mode" = 600 ] && pass "tls: $pem is mode 0600" || fail "tls: $pem mode '$mode'"
    # One PEM with the key and a certificate that verifies for 127.0.0.1 and localhost.
    openssl pkey -in "$pem" -noout 2>/dev/null && pass "tls: the PEM holds the key" ||
        fail "tls: no key in $pem"
    code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/state")
    [ "$code" = 000 ] && pass "tls: curl without -k refuses the self-signed certificate" ||
        fail "tls: curl without -k got $code"
    expect "tls: the certificate verifies for 127.0.0.1 and localhost (curl --cacert)" \
        bash -c "curl -sf --max-time 5 --cacert '$pem' -o /dev/null 'https://127.0.0.1:$port/state' &&
            curl -sf --max-time 5 --cacert '$pem' --resolve 'localhost:$port:127.0.0.1' \
                -o /dev/null 'https://localhost:$port/state'"
    # What the README says about the viewer page over HTTP/2.
    streams=$(h2_max_streams "$port")
    [ "$streams" = 8 ] && pass "tls: HTTP/2 allows 8 concurrent streams per connection" ||
        fail "tls: HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS is '$streams', the README says 8"
    sum=$(sha256sum <"$pem")
    # ---- TLS=1 again on the same port: the certificate is reused, Ctrl-C ------------------------
    if stop_demo tls TERM script "$port" && start_demo tls-again "$port" TLS=1; then
        grep -q "reusing the self-signed certificate $pem" "$DEMO_LOG" &&
            [ "$(sha256sum <"$pem")" = "$sum" ] &&
            pass "tls-again: reuses the certificate" || fail "tls-again: the certificate was not reused"
        check_snapshot tls-again "https://127.0.0.1:$port/snapshot" -k --http2
        stop_demo tls-again INT group "$port"
    fi
fi
