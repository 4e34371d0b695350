#!/usr/bin/env bash
# test_hostile.sh - hostile query strings, paths and methods: a 4xx with a reason, never a 5xx or a crash.
#
# Every request goes through the real lighttpd with the project's config, and the
# raw ones (bytes lighttpd would repair or refuse before the responder sees them)
# also straight to capd.fcgi as a CGI program, as another web server might pass
# them. lighttpd normalises some input itself: it refuses %00 in a path (400) and
# re-encodes a broken escape such as %zz as %25zz, so the responder then sees a
# well-formed value (an unknown parameter with it is ignored, a known one fails its
# own check). It also answers methods it does not know (e.g. FOO) with 501 before
# any backend runs; the responder alone answers them 405.
. "$(dirname "$0")/lib.sh"

start_capd default --size 320x240 --fps 15 || { fail "capd starts"; exit; }
start_lighttpd || { fail "lighttpd starts"; exit; }
curl -s -o /dev/null "$(url /state)"
responder=$(responder_pids)
long() { head -c "$1" /dev/zero | tr '\0' "${2:-a}"; }
requests=0
server_errors=0

# via_lighttpd WHAT EXPECTED PATH [curl args]: EXPECTED is a status or 4xx; the body must
# say why (non-empty) and never echo markup back.
via_lighttpd() {
    local what=$1 want=$2 path=$3 code
    shift 3
    code=$(curl -s -g --path-as-is -o "$TMP/body" -w '%{http_code}' --max-time 4 "$@" "$(url "$path")")
    requests=$((requests + 1))
    [[ $code == 5* ]] && server_errors=$((server_errors + 1))
    local reason
    reason=$(head -c 200 "$TMP/body" | tr '\r\n' '  ' | sed 's/<[^>]*>//g; s/  */ /g' | cut -c1-90)
    if { [ "$want" = 4xx ] && [[ $code == 4?? ]] || [ "$code" = "$want" ]; } && [ -s "$TMP/body" ] &&
        ! grep -qi '<script' "$TMP/body"; then
        pass "$what -> $code ($reason)"
    else
        fail "$what: expected $want with a reason, got $code ($reason)"
    fi
}
# as_cgi WHAT EXPECTED METHOD QUERY [PATH_INFO]: capd.fcgi run directly as a CGI program.
as_cgi() {
    local what=$1 want=$2 method=$3 query=$4 path=${5:-/stream} rc code
    REQUEST_METHOD=$method QUERY_STRING=$query SCRIPT_NAME=/capd.cgi PATH_INFO=$path \
        timeout 5 "$BUILD/capd.fcgi" </dev/null >"$TMP/cgi.out" 2>"$TMP/cgi.err"
    rc=$?
    requests=$((requests + 1))
    code=$(sed -n '1s/^Status: \([0-9]*\).*/\1/p' "$TMP/cgi.out" | tr -d '\r')
    local reason
    reason=$(sed '1,/^\r$/d' "$TMP/cgi.out" | head -c 120 | tr '\n' ' ')
    if [ "$rc" -eq 0 ] && [ "$code" = "$want" ] && [ -n "$reason" ]; then
        pass "CGI: $what -> $code ($reason)"
    else
        fail "CGI: $what: expected $want with a reason, got status '$code', exit $rc ($reason $(head -c 200 "$TMP/cgi.err"))"
    fi
}

# ---- very long values ----------------------------------------------------------------------------
via_lighttpd "cam of 100 characters" 400 "/stream?cam=$(long 100)"
via_lighttpd "cam of 2000 characters" 400 "/stream?cam=$(long 2000)"
via_lighttpd "query of 3000 bytes" 400 "/snapshot?cam=$(long 3000)"
via_lighttpd "query of 100000 bytes (lighttpd's header limit)" 4xx "/stream?cam=$(long 100000)"
via_lighttpd "fps of 1000 digits" 400 "/stream?fps=$(long 1000 7)"
via_lighttpd "unknown parameter of 2040 bytes (fits) with a bad fps" 400 "/stream?x=$(long 2030)&fps=x"
via_lighttpd "path of 5000 characters" 404 "/cgi-bin/capd.cgi/$(long 5000)"
as_cgi "query of 100000 bytes" 400 GET "cam=$(long 100000)"

# ---- %00 and broken percent-escapes ------------------------------------------------------------
via_lighttpd "%00 inside cam" 400 "/snapshot?cam=a%00b"
via_lighttpd "%00 as a parameter name" 400 "/stream?%00=1"
via_lighttpd "%00 as fps" 400 "/stream?fps=%00"
via_lighttpd "%00 in the path" 400 "/stream%00"
via_lighttpd "%00 in a CGI path" 400 "/cgi-bin/capd.cgi/%00"
via_lighttpd "broken escape %zz in cam" 400 "/stream?cam=%zz"
via_lighttpd "lone % in fps" 400 "/stream?fps=%"
via_lighttpd "truncated escape %4 in cam" 400 "/state?cam=%4"
via_lighttpd "broken escape in a parameter name" 400 "/stream?c%zzam=x&fps=%"
as_cgi "%00 in an unknown parameter" 400 GET "x=%00"
as_cgi "broken escape %zz in an unknown parameter" 400 GET "x=%zz"
as_cgi "lone % at the end" 400 GET "cam=default%"
as_cgi "broken escape in a parameter name" 400 GET "f%Gps=1"
as_cgi "raw NUL-free control bytes in cam" 400 GET "cam=$(printf 'a\001\002b')"

# ---- repeated parameters ---------------------------------------------------------------------------
via_lighttpd "fps twice" 400 "/stream?fps=5&fps=5"
via_lighttpd "cam and its alias camera" 400 "/stream?cam=default&camera=default"
via_lighttpd "frames and nbrofframes" 400 "/stream?frames=1&nbrofframes=1"
via_lighttpd "seconds and duration" 400 "/stream?seconds=1&duration=1"
via_lighttpd "action twice" 400 "/?action=stream&action=stream"
via_lighttpd "200 repeated fps" 400 "/stream?$(for _ in $(seq 200); do printf 'fps=1&'; done)"

# ---- out-of-range numbers -------------------------------------------------------------------------
for q in fps=-1 fps=1e99 fps=121 fps=nan fps=inf fps=0x10 fps=1.2.3 'fps=%2B5' 'fps=5%20' fps= \
    frames=0 frames=-1 frames=99999999999999999999 frames=18446744073709551616 \
    seconds=99999999999999999999 seconds=-3 resolution=0x0 resolution=99999x99999 resolution=640x \
    resolution=x480 dual_final=2 headers=yes parts=bogus action=bogus; do
    via_lighttpd "$q" 400 "/stream?$q"
done
# VAPIX camera= is a name or a 1-based number; these are well-formed names of no camera.
for q in camera=0 camera=-1 camera=99999999999999999999; do
    via_lighttpd "$q" 404 "/stream?$q"
done

# ---- camera names with /, .. and Unicode ---------------------------------------------------------
for q in 'cam=a/b' 'cam=a%2Fb' 'cam=..' 'cam=%2e%2e' 'cam=..%2F..%2Fetc%2Fpasswd' 'cam=/etc/passwd' \
    'cam=%C3%A9' 'cam=caf%C3%A9' 'cam=%E2%80%AE' 'cam=%F0%9F%98%80' 'cam=%FF%FE' 'cam=Default' \
    'cam=a%20b' 'cam=%3Cscript%3Ealert(1)%3C/script%3E' 'camera=../x' 'cam=default.viewers'; do
    via_lighttpd "$q" 400 "/stream?$q"
done
via_lighttpd "a valid but unknown camera" 404 "/snapshot?cam=nosuchcam"
via_lighttpd "VAPIX camera by a number beyond the cameras" 404 "/axis-cgi/jpg/image.cgi?camera=7"
as_cgi "Unicode camera name (raw UTF-8)" 400 GET "cam=$(printf 'caf\303\251')"
as_cgi "raw invalid UTF-8 in cam" 400 GET "cam=$(printf '\377\376')"
as_cgi "cam=../../dev/shm" 400 GET "cam=../../dev/shm"

# ---- paths -----------------------------------------------------------------------------------------
via_lighttpd "CGI path escaping upwards" 4xx "/cgi-bin/capd.cgi/../../../../etc/passwd"
via_lighttpd "encoded ../ in the path" 4xx "/stream/..%2f..%2fetc/passwd"
via_lighttpd "%2e%2e segments" 4xx "/%2e%2e/%2e%2e/etc/passwd"
via_lighttpd "no such endpoint under CGI" 404 "/cgi-bin/capd.cgi/nosuch"
via_lighttpd "Unicode endpoint under CGI" 404 "/cgi-bin/capd.cgi/%C3%A9"
via_lighttpd "the FastCGI program without an endpoint" 404 "/capd.fcgi"
via_lighttpd "action= with a NUL" 400 "/?action=%00"
via_lighttpd "path and action= disagree" 400 "/state?action=stream"
as_cgi "PATH_INFO with .. segments" 404 GET "" "/../../etc/passwd"
as_cgi "PATH_INFO of 10000 characters" 404 GET "" "/$(long 10000)"

# ---- methods: HEAD like GET without a body; OPTIONS gets Allow; the rest 405 -----------------------
# raw_request METHOD PATH: one HTTP/1.0 request; the whole answer in $TMP/raw (5 s at most).
raw_request() {
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: hostile\r\n\r\n' "$1" "$2" >&3
    timeout 5 cat <&3 >"$TMP/raw"
    RAW_RC=$?
    exec 3>&-
}
# The header names of an answer, without the hop-by-hop ones that differ between an
# HTTP/1.0 HEAD and an HTTP/1.1 GET (Connection, Transfer-Encoding), Date, and lighttpd's
# Accept-Ranges (added to some buffered answers only).
header_names() {
    sed -n '2,/^\r$/p' "$1" | sed -n 's/^\([A-Za-z-]*\):.*/\1/p' |
        grep -vix 'date\|content-length\|connection\|transfer-encoding\|accept-ranges' | sort | tr '\n' ' '
}
for ep in snapshot state stream; do
    raw_request HEAD "/$ep"
    head_rc=$RAW_RC
    cp "$TMP/raw" "$TMP/head-$ep"
    body_bytes=$(sed '1,/^\r$/d' "$TMP/head-$ep" | wc -c)
    curl -s -D "$TMP/get-$ep" -o /dev/null --max-time 1 "$(url "/$ep")"
    if [ "$head_rc" -eq 0 ] && grep -q '^HTTP/1.[01] 200' "$TMP/head-$ep" && [ "$body_bytes" = 0 ] &&
        [ "$(header_names "$TMP/head-$ep")" = "$(header_names "$TMP/get-$ep")" ]; then
        pass "HEAD /$ep: 200, the same headers as GET ($(header_names "$TMP/head-$ep")), no body, connection done"
    else
        fail "HEAD /$ep: exit $head_rc, $body_bytes body bytes; HEAD headers '$(header_names "$TMP/head-$ep")' vs GET '$(header_names "$TMP/get-$ep")'"
    fi
done
grep -qi '^Content-Length: [1-9]' "$TMP/head-snapshot" && grep -qi '^Content-Length: [1-9]' "$TMP/head-state" &&
    pass "HEAD /snapshot and /state announce the length a GET would send" ||
    fail "HEAD without Content-Length: $(grep -i content-length "$TMP"/head-* | tr '\n' ' ')"
for ep in stream snapshot state; do
    for base in "" /cgi-bin/capd.cgi; do
        code=$(curl -s -D "$TMP/h" -o /dev/null -w '%{http_code}' -X OPTIONS --max-time 4 "$(url "$base/$ep")")
        allow=$(grep -i '^Allow:' "$TMP/h" | tr -d '\r')
        [[ $code == 20? ]] && [ "$allow" = "Allow: GET, HEAD, OPTIONS" ] &&
            pass "OPTIONS $base/$ep -> $code, $allow" || fail "OPTIONS $base/$ep -> $code, '$allow'"
    done
done
for m in POST PUT DELETE PATCH TRACE CONNECT PROPFIND; do
    eps=(/stream /snapshot /state /cgi-bin/capd.cgi/stream)
    [ "$m" = CONNECT ] && eps=(/stream /snapshot /state) # mod_cgi answers CONNECT itself, below
    for ep in "${eps[@]}"; do
        code=$(curl -s -D "$TMP/h" -o "$TMP/body" -w '%{http_code}' -X "$m" --data-binary x=1 \
            --max-time 4 "$(url "$ep")")
        requests=$((requests + 1))
        if [ "$code" = 405 ] && grep -qi '^Allow: GET, HEAD, OPTIONS' "$TMP/h" && [ -s "$TMP/body" ]; then
            pass "$m $ep -> 405 with Allow ($(tr -d '\n' <"$TMP/body"))"
        else
            fail "$m $ep -> $code $(grep -i '^Allow' "$TMP/h" | tr -d '\r') $(head -c 100 "$TMP/body")"
        fi
    done
done
# lighttpd answers these itself, before any backend: still 4xx.
via_lighttpd "CONNECT to the CGI (lighttpd's mod_cgi)" 405 /cgi-bin/capd.cgi/stream -X CONNECT
via_lighttpd "POST without a body" 411 /state -X POST
as_cgi "method FOO" 405 FOO "" /state
as_cgi "method DELETE" 405 DELETE "" /stream
as_cgi "empty method" 405 "" "" /state
code=$(curl -s -o /dev/null -w '%{http_code}' -X FOO --max-time 4 "$(url /state)")
echo "    note: lighttpd answers an unknown method (FOO) itself with $code; the responder never sees it"

# ---- nothing crashed ---------------------------------------------------------------------------------
[ "$server_errors" = 0 ] && pass "no 5xx among $requests hostile requests" ||
    fail "$server_errors of $requests hostile requests got a 5xx"
[ "$(responder_pids)" = "$responder" ] && pass "the responder survived every request (pid $responder)" ||
    fail "responder pid changed: $responder -> $(responder_pids)"
expect "the responder still streams afterwards" \
    "$STREAMCHECK" --frames 10 --expect-size 320x240 "$(url /stream)"
state=$(curl -s "$(url /state)")
client_errors=$(sed -n 's/.*"client_errors":\([0-9]*\).*/\1/p' <<<"$state")
[ "${client_errors:-0}" -gt 50 ] && pass "state counts the refused requests (client_errors $client_errors)" ||
    fail "state client_errors: $client_errors"
