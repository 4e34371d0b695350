#!/usr/bin/env bash
# test_lighttpd.sh - the whole pipeline through real lighttpd: capd -> ring -> capd.fcgi -> HTTP clients.
. "$(dirname "$0")/lib.sh"

start_capd default --size 640x480 --fps 30 || { fail "capd starts"; exit; }
start_lighttpd || { fail "lighttpd starts"; exit; }

# ---- 10 concurrent viewers at the source rate, every frame decoded --------------------------
for i in $(seq 10); do
    "$STREAMCHECK" --seconds 5 --expect-size 640x480 --min-fps 27 "$(url /stream)" \
        >"$TMP/viewer$i.out" 2>&1 &
    viewer[i]=$!
done
ok=0
for i in $(seq 10); do
    if wait "${viewer[i]}"; then
        ok=$((ok + 1))
    else
        echo "    viewer $i: $(cat "$TMP/viewer$i.out")"
    fi
done
summary=$(tail -1 "$TMP/viewer1.out")
echo "    viewer 1: $summary"
if [ "$ok" -eq 10 ]; then
    pass "10 concurrent viewers get valid 640x480 JPEGs at >= 27 fps (source 30)"
else
    fail "10 concurrent viewers: only $ok of 10 succeeded"
fi

# Browsers get the early layout: the next part's headers right after each frame.
out=$("$STREAMCHECK" --frames 20 --user-agent "Mozilla/5.0 (X11; Linux x86_64) Chrome/120" \
    "$(url /stream)" 2>&1) && [ "$(field bad "$out")" = 0 ] &&
    pass "browser user agent: early part layout decodes" ||
    fail "browser user agent: $out"
curl -s -A "Mozilla/5.0" --max-time 2 "$(url /stream)" -o "$TMP/early.bin"
# The header block of the next part must follow the JPEG's EOI at once.
# (grep -z: the pattern spans lines; a plain grep would match each line on its own.)
if [ "$(LC_ALL=C grep -zacP '\xff\xd9\r\n--capdframe\r\nContent-Type: image/jpeg\r\n\r\n' "$TMP/early.bin")" -ge 10 ]; then
    pass "early layout: boundary and next part headers follow each frame"
else
    fail "early layout: no part header block right after a frame"
fi
curl -s --max-time 2 "$(url /stream)" -o "$TMP/full.bin"
if [ "$(LC_ALL=C grep -zacP '\xff\xd9\r\n--capdframe\r\nContent-Type: image/jpeg\r\nContent-Length: ' "$TMP/full.bin")" -ge 10 ] &&
    [ "$(LC_ALL=C grep -zacP '\xff\xd9\r\n--capdframe\r\nContent-Type: image/jpeg\r\n\r\n' "$TMP/full.bin")" = 0 ] &&
    LC_ALL=C grep -aq '^X-Timestamp: [0-9]*\.[0-9]\{6\}' "$TMP/full.bin" &&
    LC_ALL=C head -c 200 "$TMP/full.bin" | grep -aq '^--capdframe'; then
    pass "full layout: boundary first, then Content-Type, Content-Length, X-Timestamp per part"
else
    fail "full layout: part headers missing"
fi

# ---- frame limits, fps cap ---------------------------------------------------------------
out=$("$STREAMCHECK" --allow-eof --seconds 10 "$(url /stream?frames=7)" 2>&1)
[ "$(field frames "$out")" = 7 ] && pass "frames=7 ends the stream after 7 frames" ||
    fail "frames=7: $out"
out=$("$STREAMCHECK" --seconds 3 "$(url /stream?fps=5)" 2>&1)
fps=$(field fps "$out")
if awk -v f="$fps" 'BEGIN { exit !(f > 3.5 && f < 5.6) }'; then
    pass "fps=5 caps the viewer's rate ($fps fps)"
else
    fail "fps=5: $out"
fi

# ---- snapshot and state ---------------------------------------------------------------------
expect "snapshot is a valid 640x480 JPEG" \
    "$STREAMCHECK" --expect-size 640x480 --save "$TMP/snap.jpg" "$(url /snapshot)"
headers=$(curl -s -I "$(url /snapshot)")
if grep -q "Content-Type: image/jpeg" <<<"$headers" && [ -z "$(curl -s -I -o /dev/stdout -w '' "$(url /snapshot)" | sed -n '/^\r$/,$p' | tail -n +2)" ]; then
    pass "HEAD /snapshot answers headers only"
else
    fail "HEAD /snapshot: $headers"
fi
state=$(curl -s "$(url /state)")
if grep -q '"name":"default","online":true,"state":"running"' <<<"$state" &&
    grep -q '"width":640,"height":480' <<<"$state" && grep -q '"mode":"fastcgi"' <<<"$state"; then
    pass "state lists the camera online at 640x480"
else
    fail "state: $state"
fi

# ---- CGI mode through /cgi-bin/ ------------------------------------------------------------
expect "CGI stream: /cgi-bin/capd.cgi/stream?frames=10" \
    "$STREAMCHECK" --frames 10 --expect-size 640x480 "$(url /cgi-bin/capd.cgi/stream?frames=10)"
expect "CGI snapshot: /cgi-bin/capd.cgi?action=snapshot" \
    "$STREAMCHECK" --expect-size 640x480 "$(url '/cgi-bin/capd.cgi?action=snapshot')"
state=$(curl -s "$(url /cgi-bin/capd.cgi/state)")
grep -q '"mode":"cgi"' <<<"$state" && grep -q '"online":true' <<<"$state" &&
    pass "CGI state" || fail "CGI state: $state"

# ---- bad requests get a 4xx with a reason -----------------------------------------------
check_status "fps=abc" 400 "/stream?fps=abc"
check_status "fps=1e99" 400 "/stream?fps=1e99"
check_status "frames=99999999999999999999" 400 "/stream?frames=99999999999999999999"
check_status "cam=../etc" 400 "/stream?cam=../etc"
check_status "cam repeated" 400 "/snapshot?cam=default&cam=default"
check_status "broken escape %zz" 400 "/state?cam=%zz"
check_status "NUL byte %00" 400 "/snapshot?cam=a%00b"
check_status "unknown camera" 404 "/snapshot?cam=nosuchcam"
check_status "CGI without an endpoint" 404 "/cgi-bin/capd.cgi"
check_status "POST" 405 "/state" -X POST -d x=1
check_status "action and path disagree" 400 "/state?action=stream"

# ---- kill -9 capd mid-stream, restart with a new size: offline card, then resume ---------
for i in 1 2 3; do
    "$STREAMCHECK" --events --seconds 9 "$(url /stream)" >"$TMP/crash$i.out" 2>&1 &
    viewer[i]=$!
done
sleep 2
kill -9 "$CAPD_PID"
sleep 2.5
start_capd default --size 320x240 --fps 30 || fail "capd restarts"
ok=0
for i in 1 2 3; do
    wait "${viewer[i]}"
    rc=$?
    out=$(tail -1 "$TMP/crash$i.out")
    if [ $rc -eq 0 ] && [ "$(field bad "$out")" = 0 ] && [ "$(field offline "$out")" -ge 1 ] &&
        [ "$(field sizes "$out")" = "640x480,320x240" ] &&
        grep -q "event=offline_end" "$TMP/crash$i.out"; then
        ok=$((ok + 1))
    else
        echo "    viewer $i (rc $rc):" && sed 's/^/    /' "$TMP/crash$i.out"
    fi
done
echo "    after restart: $(tail -1 "$TMP/crash1.out")"
[ "$ok" -eq 3 ] && pass "kill -9 capd: streams show the offline frame, then resume at the new size, no bad frame" ||
    fail "kill -9 capd: $ok of 3 viewers recovered cleanly"

# ---- viewers that leave free their threads and presence slots ---------------------------
pid=$(responder_pids | head -1)
threads_before=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
curls=()
for i in $(seq 5); do
    curl -s --max-time 1 "$(url /stream)" -o /dev/null &
    curls+=($!)
done
sleep 0.5
streams=$(curl -s "$(url /state)" | sed -n 's/.*"streams":\([0-9]*\).*/\1/p')
wait "${curls[@]}"
if wait_for 5 bash -c "curl -s '$(url /state)' | grep -q '\"streams\":0,'"; then
    pass "5 viewers that hang up are noticed and their streams end ($streams were active)"
else
    fail "streams still active after viewers left: $(curl -s "$(url /state)")"
fi
threads_after=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
[ "$threads_before" = "$threads_after" ] && pass "responder thread count unchanged ($threads_after)" ||
    fail "responder threads $threads_before -> $threads_after"
if wait_for 8 bash -c "curl -s '$(url /state)' | grep -q '\"viewers\":0,'"; then
    pass "capd's viewer count returns to 0"
else
    fail "viewer count: $(curl -s "$(url /state)")"
fi

# ---- the viewer cap answers 503 with Retry-After ------------------------------------------
kill "$LIGHTTPD_PID"
wait "$LIGHTTPD_PID" 2>/dev/null
CAPD_MAX_VIEWERS=2 start_lighttpd || fail "lighttpd restarts"
curls=()
curl -s --max-time 4 "$(url /stream)" -o /dev/null &
curls+=($!)
curl -s --max-time 4 "$(url /stream)" -o /dev/null &
curls+=($!)
sleep 1
headers=$(curl -s -D - -o /dev/null --max-time 3 "$(url /stream)")
if grep -q "^HTTP/1.1 503" <<<"$headers" && grep -qi "^Retry-After: " <<<"$headers"; then
    pass "beyond --max-viewers: 503 with Retry-After"
else
    fail "viewer cap: $headers"
fi
expect "existing viewers and snapshots still work at the cap" \
    "$STREAMCHECK" --expect-size 320x240 "$(url /snapshot)"
wait "${curls[@]}"
