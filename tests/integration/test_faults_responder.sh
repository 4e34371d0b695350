#!/usr/bin/env bash
# test_faults_responder.sh - a responder SIGKILLed under viewers, and SIGTERM to responders (spawned and --listen).
#
# lighttpd.conf runs one responder process; this test copies it with max-procs 2,
# so that one process can die while the other keeps its viewers.
. "$(dirname "$0")/lib.sh"

now_ms() { local t=${EPOCHREALTIME//[.,]/}; NOW=$((t / 1000)); }
sockets_of() { find "/proc/$1/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
# gone_within MS PID...: succeeds when every PID has exited (or is a zombie) within MS;
# sets GONE_MS.
gone_within() {
    local limit=$1 start pid alive
    shift
    now_ms
    start=$NOW
    while :; do
        alive=0
        for pid in "$@"; do
            [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null &&
                alive=1
        done
        now_ms
        GONE_MS=$((NOW - start))
        [ "$alive" = 0 ] && return 0
        [ "$GONE_MS" -gt "$limit" ] && return 1
        sleep 0.02
    done
}

start_capd default --size 640x480 --fps 30 || { fail "capd starts"; exit; }
sed 's/"max-procs" *=> *1,/"max-procs" => 2,/' "$ROOT/lighttpd.conf" >"$TMP/two.conf"
grep -q '"max-procs" => 2,' "$TMP/two.conf" || { fail "test config with max-procs 2"; exit; }
start_lighttpd "$TMP/two.conf" || { fail "lighttpd starts"; exit; }
wait_for 5 bash -c "[ \$(pgrep -P $LIGHTTPD_PID -f capd.fcgi | wc -l) -eq 2 ]" ||
    { fail "lighttpd starts two responders: $(responder_pids | tr '\n' ' ')"; exit; }
read -r -d '' -a procs < <(responder_pids)
for p in "${procs[@]}"; do base[p]=$(sockets_of "$p"); done

# ---- kill -9 one responder while 8 viewers stream --------------------------------------------
for i in $(seq 8); do
    "$STREAMCHECK" --quiet --seconds 8 --min-fps 27 "$(url /stream)" >"$TMP/v$i.out" 2>&1 &
    viewer[i]=$!
done
sleep 1.5
for p in "${procs[@]}"; do on[p]=$(($(sockets_of "$p") - base[p])); done
echo "    viewers per responder: $(for p in "${procs[@]}"; do printf '%s:%s ' "$p" "${on[p]}"; done)"
victim=${procs[0]}
survivor=${procs[1]}
if [ "${on[$victim]}" -lt 1 ] || [ "${on[$survivor]}" -lt 1 ]; then
    fail "lighttpd did not spread the viewers over both responders"
fi
kill -KILL "$victim"
wait_for 5 bash -c "[ \$(pgrep -P $LIGHTTPD_PID -f capd.fcgi | wc -l) -eq 2 ]" &&
    ! responder_pids | grep -qx "$victim" &&
    pass "lighttpd brings up a new responder after kill -9 ($(responder_pids | tr '\n' ' '))" ||
    fail "no replacement responder: $(responder_pids | tr '\n' ' ')"
expect "the next request works: a stream of 10 frames" \
    "$STREAMCHECK" --frames 10 --expect-size 640x480 "$(url /stream)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$(url /state)")
[ "$code" = 200 ] && pass "state answers 200 after the crash" || fail "state after the crash: $code"
kept=0 cut=0 other=0
for i in $(seq 8); do
    wait "${viewer[i]}"
    rc=$?
    out=$(tail -1 "$TMP/v$i.out")
    summary=$(grep '^status=' "$TMP/v$i.out")
    if [ "$rc" -eq 0 ]; then
        kept=$((kept + 1))
        echo "    kept: $summary"
    elif [ "$rc" -eq 4 ] && [ "$(field bad "$summary")" = 0 ]; then
        cut=$((cut + 1)) # the killed process's viewers: cut cleanly
    else
        other=$((other + 1))
        echo "    viewer $i (exit $rc): $(tr '\n' ' ' <"$TMP/v$i.out")"
    fi
done
[ "$kept" -eq "${on[$survivor]}" ] && [ "$other" -eq 0 ] &&
    pass "the $kept viewers of the surviving responder keep >= 27 fps with no bad frame" ||
    fail "surviving responder had ${on[$survivor]} viewers; $kept kept their fps, $other failed otherwise"
[ "$cut" -eq "${on[$victim]}" ] &&
    pass "the $cut viewers of the killed responder are cut cleanly (EOF, no bad frame)" ||
    fail "killed responder had ${on[$victim]} viewers; $cut ended cleanly"
kill -0 "$survivor" 2>/dev/null && pass "the other responder lives on (pid $survivor)" ||
    fail "the other responder died too"

# ---- SIGTERM to a spawned responder while it streams: gone within 2 s -----------------------
read -r -d '' -a procs < <(responder_pids)
for i in 1 2 3 4; do
    "$STREAMCHECK" --quiet --allow-eof --seconds 5 "$(url /stream)" >"$TMP/t$i.out" 2>&1 &
    viewer[i]=$!
done
sleep 1
busy=${procs[0]}
for p in "${procs[@]}"; do [ "$(($(sockets_of "$p") - 1))" -ge 1 ] && busy=$p; done
kill -TERM "$busy"
gone_within 2000 "$busy" && pass "SIGTERM: a streaming responder exits in $GONE_MS ms" ||
    fail "SIGTERM: responder $busy still running after $GONE_MS ms"
bad=0
for i in 1 2 3 4; do
    wait "${viewer[i]}" || bad=$((bad + 1))
    [ "$(field bad "$(grep '^status=' "$TMP/t$i.out")")" = 0 ] || bad=$((bad + 1))
done
[ "$bad" -eq 0 ] && pass "its viewers end without a bad frame" ||
    fail "viewers of the stopped responder: $(cat "$TMP"/t*.out | tr '\n' ' ')"

# ---- SIGTERM to lighttpd: its responders go with it within 2 s ------------------------------
wait_for 5 bash -c "[ \$(pgrep -P $LIGHTTPD_PID -f capd.fcgi | wc -l) -eq 2 ]"
read -r -d '' -a procs < <(responder_pids)
"$STREAMCHECK" --quiet --allow-eof --seconds 5 "$(url /stream)" >"$TMP/l.out" 2>&1 &
sc=$!
sleep 1
kill -TERM "$LIGHTTPD_PID"
gone_within 2000 "$LIGHTTPD_PID" "${procs[@]}" &&
    pass "SIGTERM to lighttpd: lighttpd and its ${#procs[@]} responders exit in $GONE_MS ms" ||
    fail "after SIGTERM to lighttpd, still running after $GONE_MS ms: $(for p in "$LIGHTTPD_PID" "${procs[@]}"; do [ -e "/proc/$p" ] && printf '%s ' "$p"; done)"
wait "$LIGHTTPD_PID" 2>/dev/null
wait "$sc" 2>/dev/null

# ---- a --listen responder (the nginx/Apache way) behind lighttpd ----------------------------
# The same config without bin-path: lighttpd connects to the socket we serve.
sed -e '/"bin-path"/,/var.capd_fcgi_args,$/d' -e '/"max-procs"/d' "$ROOT/lighttpd.conf" >"$TMP/listen.conf"
grep -q '"bin-path"' "$TMP/listen.conf" && { fail "test config without bin-path"; exit; }
mkdir -p "$TMP/lighttpd"
"$BUILD/capd.fcgi" --listen "unix:$TMP/lighttpd/capd-fcgi.sock" >>"$TMP/listen.log" 2>&1 &
listener=$!
track "$listener"
wait_for 5 test -S "$TMP/lighttpd/capd-fcgi.sock" || fail "capd.fcgi --listen starts"
start_lighttpd "$TMP/listen.conf" || { fail "lighttpd starts (external responder)"; exit; }
expect "streams through a --listen responder" \
    "$STREAMCHECK" --frames 10 --expect-size 640x480 "$(url /stream)"
for i in 1 2 3; do
    "$STREAMCHECK" --quiet --allow-eof --seconds 5 "$(url /stream)" >"$TMP/x$i.out" 2>&1 &
    viewer[i]=$!
done
sleep 1
now_ms
t=$NOW
kill -TERM "$listener"
wait "$listener"
rc=$?
now_ms
ms=$((NOW - t))
[ "$ms" -le 2000 ] && [ "$rc" -eq 0 ] &&
    pass "SIGTERM: a --listen responder with 3 viewers exits 0 in $ms ms" ||
    fail "SIGTERM to the --listen responder: $ms ms, status $rc"
bad=0
for i in 1 2 3; do
    wait "${viewer[i]}" || bad=$((bad + 1))
    [ "$(field bad "$(grep '^status=' "$TMP/x$i.out")")" = 0 ] || bad=$((bad + 1))
done
[ "$bad" -eq 0 ] && pass "its viewers end without a bad frame" ||
    fail "viewers of the --listen responder: $(cat "$TMP"/x*.out | tr '\n' ' ')"
