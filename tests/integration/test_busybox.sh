#!/usr/bin/env bash
# test_busybox.sh - capd behind real busybox httpd, the responder as cgi-bin/capd.cgi (one process per request).
. "$(dirname "$0")/lib.sh"

if ! command -v busybox >/dev/null || ! busybox --list | grep -qx httpd; then
    fail "busybox with httpd is installed (apt-get install busybox-static, or busybox)"
    exit
fi

# The shipped httpd.conf as it is; the responder linked in as cgi-bin/capd.cgi.
mkdir -p "$TMP/www/cgi-bin"
ln -s "$BUILD/capd.fcgi" "$TMP/www/cgi-bin/capd.cgi"
cp "$ROOT/deploy/busybox/httpd.conf" "$TMP/httpd.conf"

start_capd default --size 640x480 --fps 30 || { fail "capd starts"; exit; }
PORT=$(free_port)
# busybox httpd hands its own environment to every CGI, CAPD_SHM_PREFIX and the sanitizer
# settings included: no wrapper needed.
busybox httpd -f -p "127.0.0.1:$PORT" -h "$TMP/www" -c "$TMP/httpd.conf" >>"$TMP/httpd.log" 2>&1 &
HTTPD_PID=$!
track "$HTTPD_PID"
if ! wait_for 10 port_open "$PORT"; then
    fail "busybox httpd starts"
    sed 's/^/    /' "$TMP/httpd.log"
    exit
fi
CGI=/cgi-bin/capd.cgi
within() { awk -v v="$1" -v max="$2" 'BEGIN { exit !(v != "-" && v + 0 < max + 0) }'; }
# busybox forks a process per connection, and that process starts the CGI. Prints
# "CGI-PID CONNECTION-PID" for each capd.cgi running under our httpd.
FCGI_EXE=$(readlink -f "$BUILD/capd.fcgi")
cgi_pids() {
    local conn pid
    for conn in $(pgrep -P "$HTTPD_PID"); do
        for pid in $(pgrep -P "$conn"); do
            [ "$(readlink "/proc/$pid/exe")" = "$FCGI_EXE" ] && echo "$pid $conn"
        done
    done
}
no_cgi() { [ -z "$(cgi_pids)" ]; }
some_cgi() { [ -n "$(cgi_pids)" ]; }

# ---- state first: it tells which capd the CGI found ------------------------------------------
state=$(curl -s "$(url $CGI/state)")
if grep -q "\"pid\":$CAPD_PID," <<<"$state" && grep -q '"mode":"cgi"' <<<"$state" &&
    grep -q '"name":"default","online":true' <<<"$state"; then
    pass "state: the CGI reads this test's capd (CAPD_SHM_PREFIX reached it), mode cgi"
else
    fail "state: $state"
fi

# ---- streams: busybox copies the CGI's output as it reads it ---------------------------------
out=$("$STREAMCHECK" --seconds 5 --expect-size 640x480 --min-fps 27 "$(url $CGI/stream)" 2>&1)
rc=$?
echo "    $CGI/stream: $out"
if [ $rc -eq 0 ] && [ "$(field bad "$out")" = 0 ] && within "$(field lat_p50_ms "$out")" 30; then
    pass "stream: 640x480 frames decode at >= 27 fps (source 30), latency p50 $(field lat_p50_ms "$out") ms"
else
    fail "stream: $out"
fi
# At fps=1 a server that buffers would hold each frame until the next one, a second later.
out=$("$STREAMCHECK" --seconds 5 "$(url "$CGI/stream?fps=1")" 2>&1)
echo "    $CGI/stream?fps=1: $out"
within "$(field lat_p50_ms "$out")" 300 && [ "$(field frames "$out")" -ge 4 ] &&
    pass "unbuffered: at fps=1 frames arrive at once (latency p50 $(field lat_p50_ms "$out") ms)" ||
    fail "buffering at fps=1: $out"
expect "stream at $CGI?action=stream" \
    "$STREAMCHECK" --frames 10 --expect-size 640x480 "$(url "$CGI?action=stream")"

# Five viewers at once: five httpd processes and five CGIs, each reading the ring itself.
for i in 1 2 3 4 5; do
    "$STREAMCHECK" --seconds 4 --expect-size 640x480 --min-fps 25 "$(url $CGI/stream)" \
        >"$TMP/viewer$i.out" 2>&1 &
    viewer[i]=$!
done
sleep 2
cgis=$(cgi_pids | wc -l)
ok=0
for i in 1 2 3 4 5; do
    wait "${viewer[i]}" && ok=$((ok + 1)) || echo "    viewer $i: $(cat "$TMP/viewer$i.out")"
done
[ "$ok" -eq 5 ] && [ "$cgis" -eq 5 ] &&
    pass "5 concurrent viewers at >= 25 fps, one capd.cgi process each ($cgis)" ||
    fail "5 concurrent viewers: $ok of 5 succeeded, $cgis CGI processes"

out=$("$STREAMCHECK" --frames 20 --user-agent "Mozilla/5.0 (X11; Linux x86_64) Chrome/120" \
    "$(url $CGI/stream)" 2>&1) && [ "$(field bad "$out")" = 0 ] &&
    pass "browser user agent: the stream decodes" || fail "browser user agent: $out"
curl -s -A "Mozilla/5.0" --max-time 2 "$(url $CGI/stream)" -o "$TMP/early.bin"
# -z: NUL-separated records, so that \r\n inside the pattern is matched as bytes.
early=$(LC_ALL=C grep -zacP '\xff\xd9\r\n--capdframe\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8' \
    "$TMP/early.bin")
[ "$early" -ge 10 ] && pass "browser user agent: early layout through busybox ($early frames in 2 s)" ||
    fail "browser user agent: no early part layout ($early)"

# ---- snapshots, errors, access control -------------------------------------------------------
expect "snapshot at $CGI?action=snapshot is a 640x480 JPEG" \
    "$STREAMCHECK" --expect-size 640x480 "$(url "$CGI?action=snapshot")"
expect "snapshot at $CGI/snapshot is a 640x480 JPEG" \
    "$STREAMCHECK" --expect-size 640x480 "$(url $CGI/snapshot)"

check_status "fps=abc" 400 "$CGI/stream?fps=abc"
check_status "unknown camera" 404 "$CGI/snapshot?cam=nosuchcam"
check_status "no endpoint" 404 "$CGI"
check_status "POST" 405 "$CGI/state" -X POST -d x=1
# httpd.conf allows 127.0.0.1 and private ranges only; 127.0.0.3 is in none of them.
code=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.3 "$(url $CGI/state)")
[ "$code" = 403 ] && pass "httpd.conf: a client outside its A: lines gets 403" ||
    fail "httpd.conf access control: 127.0.0.3 got $code"

# ---- memory and CPU per viewer; viewers that leave end their CGI -----------------------------
# Earlier requests' processes are gone once no CGI is left.
wait_for 5 no_cgi
curl -s --max-time 6 "$(url $CGI/stream)" -o /dev/null &
holder=$!
wait_for 3 some_cgi
sleep 1
read -r cgi conn <<<"$(cgi_pids)"
mem() { awk '/^(Rss|Pss):/ { v[$1] = $2 } /^Private_(Clean|Dirty):/ { p += $2 }
             END { printf "RSS %d kB, PSS %d kB, private %d kB", v["Rss:"], v["Pss:"], p }' \
    "/proc/$1/smaps_rollup" 2>/dev/null; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }
cpu_cgi=$(ticks "$cgi")
cpu_conn=$(ticks "$conn")
sleep 3
echo "    one viewer (640x480 at 30 fps): capd.cgi $(mem "$cgi"), $(($(ticks "$cgi") - cpu_cgi)) CPU ticks in 3 s;" \
    "its httpd process $(mem "$conn"), $(($(ticks "$conn") - cpu_conn)) ticks (CLK_TCK $(getconf CLK_TCK))"
[ -n "${cgi:-}" ] && pass "a stream is served by a capd.cgi process of its own" ||
    fail "no capd.cgi under busybox while a stream runs"
wait "$holder"
curls=()
for _ in 1 2 3; do
    curl -s --max-time 1 "$(url $CGI/stream)" -o /dev/null &
    curls+=($!)
done
wait "${curls[@]}"
if wait_for 5 no_cgi; then
    pass "viewers that hang up: their httpd and capd.cgi processes exit"
else
    fail "CGI processes left after viewers hung up: $(cgi_pids | tr '\n' ' ')"
fi
if wait_for 8 bash -c "curl -s '$(url $CGI/state)' | grep -q '\"viewers\":0,'"; then
    pass "capd's viewer count returns to 0"
else
    fail "viewer count: $(curl -s "$(url $CGI/state)")"
fi
