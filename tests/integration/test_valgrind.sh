#!/usr/bin/env bash
# test_valgrind.sh - memcheck over capd (test pattern and stdin) and the responder (FastCGI and CGI).
. "$(dirname "$0")/lib.sh"

if nm "$BUILD/capd" 2>/dev/null | grep -q __asan_init; then
    echo "    skipped: valgrind cannot run sanitizer builds (the plain build runs this test)"
    exit 0
fi
if ! command -v valgrind >/dev/null; then
    fail "valgrind is not installed (scripts/install-deps.sh --check installs it)"
    exit
fi
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-fds=no)

# Errors and leaks make valgrind exit 99; its log says where.
vg_verdict() { # what status log
    if [ "$2" -eq 0 ] && ! grep -q "ERROR SUMMARY: [1-9]" "$3" 2>/dev/null; then
        pass "$1"
    else
        fail "$1: exit $2, $(grep -m2 -E 'Invalid|uninitialised|definitely lost|ERROR SUMMARY' "$3" | tr '\n' ' ')"
        sed 's/^/    /' "$3" | head -40
    fi
}

# ---- capd: test pattern, then a clean stop -----------------------------------------------
"${VG[@]}" --log-file="$TMP/vg-capd.log" "$BUILD/capd" --name vg --size 320x240 --fps 10 \
    >"$TMP/capd-vg.out" 2>&1 &
vgpid=$!
track "$vgpid"
wait_for 30 ring_exists vg || fail "capd under valgrind creates its ring"
sleep 2
kill -TERM "$vgpid"
wait "$vgpid"
vg_verdict "capd test pattern: no memory errors, no leaks" $? "$TMP/vg-capd.log"

# ---- capd: stdin with a good, a truncated and a good JPEG ------------------------------------
"$BUILD/capd" --name gen --size 160x120 --fps 20 >"$TMP/gen.log" 2>&1 &
gen=$!
track "$gen"
wait_for 10 ring_exists gen
sleep 0.3
REQUEST_METHOD=GET QUERY_STRING='action=snapshot&cam=gen' "$BUILD/capd.fcgi" </dev/null |
    sed '1,/^\r$/d' >"$TMP/a.jpg"
kill "$gen"
size=$(stat -c %s "$TMP/a.jpg")
{
    cat "$TMP/a.jpg"
    head -c $((size / 2)) "$TMP/a.jpg"
    cat "$TMP/a.jpg" "$TMP/a.jpg"
} >"$TMP/input.mjpeg"
"${VG[@]}" --log-file="$TMP/vg-stdin.log" "$BUILD/capd" --name vgin --source stdin \
    <"$TMP/input.mjpeg" >"$TMP/capd-vgin.out" 2>&1
status=$?
grep -q "end of input" "$TMP/capd-vgin.out" || status=97
vg_verdict "capd stdin source: no memory errors, no leaks" $status "$TMP/vg-stdin.log"

# ---- the responder under lighttpd (FastCGI), through a wrapper in CAPD_BIN ------------------
start_capd default --size 320x240 --fps 15 || fail "capd starts"
mkdir -p "$TMP/vgbin"
cat >"$TMP/vgbin/capd.fcgi" <<EOF
#!/bin/sh
exec ${VG[*]} --log-file=$TMP/vg-fcgi.%p.log $BUILD/capd.fcgi "\$@"
EOF
chmod +x "$TMP/vgbin/capd.fcgi"
BUILD_SAVED=$BUILD
BUILD=$TMP/vgbin CAPD_MAX_VIEWERS=8 start_lighttpd || fail "lighttpd starts"
BUILD=$BUILD_SAVED
curl -s --max-time 20 -o /dev/null "$(url /state)"
ok=1
for i in 1 2 3; do
    "$STREAMCHECK" --timeout 30 --frames 10 "$(url /stream)" >"$TMP/vgv$i.out" 2>&1 &
    pids[i]=$!
done
for i in 1 2 3; do wait "${pids[i]}" || ok=0; done
"$STREAMCHECK" --timeout 30 "$(url /snapshot)" >/dev/null || ok=0
curl -s --max-time 20 "$(url '/state?fps=abc')" >/dev/null
curl -s --max-time 3 "$(url /stream)" -o /dev/null # leaves mid-frame
[ $ok -eq 1 ] && pass "streams, snapshot and state through the responder under valgrind" ||
    fail "requests through the responder under valgrind: $(cat "$TMP"/vgv*.out)"
kill -TERM "$LIGHTTPD_PID"
wait "$LIGHTTPD_PID"
# lighttpd sends SIGTERM to the responder; give valgrind time to write its report.
wait_for 30 bash -c "! pgrep -f 'vg-fcgi' >/dev/null"
status=0
logs=$(ls "$TMP"/vg-fcgi.*.log 2>/dev/null | wc -l)
[ "$logs" -ge 1 ] || { status=98; echo "    no valgrind log: the responder did not run under valgrind"; }
for log in "$TMP"/vg-fcgi.*.log; do
    grep -q "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]\|indirectly lost: [1-9]" "$log" && status=99
done
vg_verdict "FastCGI responder: no memory errors, no leaks" $status "$(ls "$TMP"/vg-fcgi.*.log | head -1)"

# ---- the responder as CGI ------------------------------------------------------------------
for q in 'action=snapshot' 'action=state' 'action=stream&frames=3' 'action=stream&fps=x' ''; do
    REQUEST_METHOD=GET QUERY_STRING="$q" SCRIPT_NAME=/cgi-bin/capd.cgi \
        "${VG[@]}" --log-file="$TMP/vg-cgi.log" "$BUILD/capd.fcgi" </dev/null >"$TMP/cgi.out"
    vg_verdict "CGI responder '$q': no memory errors, no leaks" $? "$TMP/vg-cgi.log"
done
