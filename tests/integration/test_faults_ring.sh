#!/usr/bin/env bash
# test_faults_ring.sh - the ring's shm object deleted, replaced, resized in place and overwritten with random bytes.
#
# In every case the responders must not crash (same pid, no sanitizer report),
# must never send a part that breaks the stream (every part framed, SOI..EOI), must
# refuse the broken object (offline / "invalid") and must recover when capd
# recreates the ring. Two viewers watch each case from before the fault until after
# capd's restart at another size: one through the FastCGI fan-out (one reader shared
# by the process) and one through CGI (a reader of its own).
#
# What the code does (ring.c): a reader keeps the mapping it attached to for as long
# as the capd behind it lives; it re-opens the name only when that capd is gone. So
# a deleted or replaced name does not disturb attached viewers while capd runs; new
# readers see the name as it is now.
. "$(dirname "$0")/lib.sh"

ring=/dev/shm/${CAPD_SHM_PREFIX}default
size=640x480
status_of() { curl -s -o "$TMP/body" -w '%{http_code}' --max-time 6 "$(url "$1")"; }
camera_state() { curl -s --max-time 5 "$(url /state)" | grep -o '"cameras":\[[^]]*\]'; }

start_capd default --size "$size" --fps 30 || { fail "capd starts"; exit; }
start_lighttpd || { fail "lighttpd starts"; exit; }
curl -s -o /dev/null "$(url /state)"
responder=$(responder_pids)

# watch NAME: starts the two long viewers of a case (8 s: the fault, then capd's restart by 6 s).
watch() {
    case_name=$1
    "$STREAMCHECK" --events --quiet --seconds 8 --max-bad 1000 "$(url /stream)" \
        >"$TMP/$case_name-fanout.out" 2>&1 &
    watcher[0]=$!
    "$STREAMCHECK" --events --quiet --seconds 8 --max-bad 1000 "$(url /cgi-bin/capd.cgi/stream)" \
        >"$TMP/$case_name-cgi.out" 2>&1 &
    watcher[1]=$!
    sleep 1.5
}
# restart_capd: stops capd (SIGTERM; it may be dead already) and starts it at the other size.
restart_capd() {
    kill -TERM "$CAPD_PID" 2>/dev/null
    wait "$CAPD_PID" 2>/dev/null
    old_size=$size
    [ "$size" = 640x480 ] && size=320x240 || size=640x480
    start_capd default --size "$size" --fps 30 || fail "$case_name: capd restarts at $size"
}
# responder_check: the responder that served the case is still the same process.
responder_check() {
    local now
    now=$(responder_pids)
    if [ "$now" = "$responder" ] && [ -n "$now" ]; then
        pass "$case_name: the responder did not crash (pid $responder)"
    else
        fail "$case_name: the responder died (pid $responder, now '$now'): $(grep -m1 'child signalled\|child exited' "$TMP/lighttpd/error.log")"
        responder=$now
    fi
}
# watchers_check [TOLERATE_DECODE]: both viewers stayed open, got only well-framed parts
# (with TOLERATE_DECODE, decode failures are allowed: bytes written by a hostile
# process can form a well-framed but undecodable JPEG), and ended at the new size. An
# offline period is not required (a quick restart can be followed without one), but
# every one that started must have ended.
watchers_check() {
    local tolerate=${1:-} i out rc reasons bad last ok=0 names=(fanout cgi)
    for i in 0 1; do
        wait "${watcher[i]}"
        rc=$?
        out=$(grep '^status=' "$TMP/$case_name-${names[i]}.out")
        reasons=$(grep -o 'event=bad.*reason=[a-z_]*' "$TMP/$case_name-${names[i]}.out" |
            sed 's/.*reason=//' | sort | uniq -c | tr '\n' ' ')
        bad=$(field bad "$out")
        if [ -n "$tolerate" ]; then
            grep 'event=bad' "$TMP/$case_name-${names[i]}.out" |
                grep -qv 'reason=decode_error\|reason=decode_warning' && bad=framing
            [ "$bad" != framing ] && bad=0
        fi
        last=$(grep -o 'event=offline_[a-z]*' "$TMP/$case_name-${names[i]}.out" | tail -1)
        if [ "$rc" -eq 0 ] && [ "$bad" = 0 ] && [[ $(field sizes "$out") == *"$size" ]] &&
            [ "$last" != event=offline_start ]; then
            ok=$((ok + 1))
        else
            echo "    $case_name ${names[i]} viewer (exit $rc; bad: ${reasons:-none}):"
            grep -v '^event=bad' "$TMP/$case_name-${names[i]}.out" | tail -4 | sed 's/^/      /'
        fi
        [ -n "$reasons" ] && echo "    $case_name ${names[i]} viewer, bad frames by reason: $reasons"
    done
    [ "$ok" -eq 2 ] &&
        pass "$case_name: fan-out and CGI viewers stay open, get only well-framed parts${tolerate:+ (decode failures tolerated)} and resume at $size" ||
        fail "$case_name: only $ok of 2 viewers stayed open, clean and resumed at $size"
}
# fresh_check: after the restart, a new viewer and a snapshot get clean frames.
fresh_check() {
    expect "$case_name: after capd recreates the ring, a new viewer gets clean $size frames" \
        "$STREAMCHECK" --frames 10 --expect-size "$size" "$(url /stream)"
    grep -q '"online":true,"state":"running"' <<<"$(camera_state)" &&
        pass "$case_name: state shows the camera running again" ||
        fail "$case_name: state after recovery: $(camera_state)"
}

# ---- deleted while viewers stream ------------------------------------------------------------
watch deleted
rm "$ring"
sleep 0.5
[ "$(status_of '/stream?cam=default')" = 404 ] && grep -q "unknown camera" "$TMP/body" &&
    pass "deleted: a new viewer naming the camera gets 404 ($(cat "$TMP/body"))" ||
    fail "deleted: /stream?cam=default -> $(cat "$TMP/body")"
code=$(status_of /snapshot)
[ "$code" = 503 ] && pass "deleted: a snapshot gets 503 ($(cat "$TMP/body"))" ||
    fail "deleted: snapshot -> $code $(cat "$TMP/body")"
[ "$(camera_state)" = '"cameras":[]' ] && pass "deleted: state lists no camera" ||
    fail "deleted: state: $(camera_state)"
kill -0 "$CAPD_PID" && pass "deleted: capd keeps running on its mapping" || fail "deleted: capd died"
sleep 2
# The attached viewers were still live until now: no offline before capd's restart.
offline_early=$(grep -c 'event=offline_start' "$TMP/deleted-fanout.out" "$TMP/deleted-cgi.out" |
    awk -F: '{ s += $2 } END { print s }')
[ "$offline_early" = 0 ] &&
    pass "deleted: attached viewers keep live frames while capd lives (their mapping stays valid)" ||
    fail "deleted: attached viewers went offline while capd was still running"
restart_capd
watchers_check
responder_check
fresh_check

# ---- replaced by an object of another size (a new object under the name) ---------------------
watch replaced
cp "$ring" "$TMP/ring.copy"
rm "$ring"
# A plausible impostor: the live ring's own first megabyte (valid magic, same generation),
# so only its size gives it away.
head -c 1048576 "$TMP/ring.copy" >"$ring"
sleep 0.5
grep -q '"name":"default","online":false,"state":"invalid"' <<<"$(camera_state)" &&
    pass "replaced: state reports the object invalid" || fail "replaced: state: $(camera_state)"
code=$(status_of /snapshot)
[ "$code" = 503 ] && pass "replaced: a snapshot gets 503 ($(cat "$TMP/body"))" ||
    fail "replaced: snapshot -> $code"
out=$("$STREAMCHECK" --quiet --seconds 2 "$(url /cgi-bin/capd.cgi/stream)" 2>&1)
[ "$(field offline "$out")" -ge 1 ] && [ "$(field live "$out")" = 0 ] && [ "$(field bad "$out")" = 0 ] &&
    pass "replaced: a new reader refuses the impostor and shows the offline card" ||
    fail "replaced: a new CGI viewer: $out"
sleep 1
restart_capd
watchers_check
responder_check
fresh_check

# ---- resized in place (same object): grown, then shrunk --------------------------------------
# Grown: every existing mapping stays valid, so only new readers are concerned.
case_name=grown
truncate -s +1M "$ring"
sleep 0.5
kill -0 "$CAPD_PID" && pass "grown in place: capd keeps running" || fail "grown in place: capd died"
grep -q '"state":"invalid"' <<<"$(camera_state)" &&
    pass "grown in place: new readers refuse it (size no longer matches the header)" ||
    fail "grown in place: state: $(camera_state)"
expect "grown in place: attached viewers keep streaming" \
    "$STREAMCHECK" --frames 10 --expect-size "$size" "$(url /stream)"
restart_capd
responder_check
fresh_check

# Shrinking the object under live mappings makes pages beyond the new end fault
# (SIGBUS) for every process that touches them. capd, the owner, dies of it on its
# next write (expected: whoever can shrink the object can also kill capd); its
# sanitizer report is set aside. The responders must survive.
capd_sigbus_check() {
    local rc
    sleep 1.5
    if kill -0 "$CAPD_PID" 2>/dev/null; then
        echo "    $case_name: capd survived"
        return
    fi
    wait "$CAPD_PID" 2>/dev/null
    rc=$?
    if [ -e "$TMP/asan.$CAPD_PID" ] && grep -q 'AddressSanitizer: BUS' "$TMP/asan.$CAPD_PID"; then
        mv "$TMP/asan.$CAPD_PID" "$TMP/expected-capd-sigbus.$CAPD_PID"
        rc=135
    fi
    [ "$rc" -eq 135 ] && echo "    $case_name: capd died of SIGBUS (its own writes beyond the new end), as expected" ||
        fail "$case_name: capd ended with status $rc, not SIGBUS"
}
watch shrunk
truncate -s 4096 "$ring" # header and slot table survive, frame data is gone
capd_sigbus_check
restart_capd
watchers_check
responder_check
fresh_check

watch truncated
truncate -s 0 "$ring" # nothing left: even the header is beyond the end
capd_sigbus_check
restart_capd
watchers_check
responder_check
fresh_check

# ---- overwritten with random bytes by a process with write access -----------------------------
# While capd runs, five passes of random bytes over the whole object.
watch scribbled
bytes=$(stat -c %s "$ring")
for pass_no in 1 2 3 4 5; do
    dd if=/dev/urandom of="$ring" bs=65536 count=$((bytes / 65536)) conv=notrunc status=none
    sleep 0.3
done
kill -0 "$CAPD_PID" && pass "scribbled: capd keeps running" || fail "scribbled: capd died"
grep -q '"state":"invalid"' <<<"$(camera_state)" &&
    pass "scribbled: new readers refuse the object (invalid)" ||
    fail "scribbled: state: $(camera_state)"
code=$(status_of /snapshot)
[ "$code" = 503 ] && pass "scribbled: a snapshot gets 503" || fail "scribbled: snapshot -> $code"
sleep 1
restart_capd
watchers_check tolerate-decode
responder_check
fresh_check

# With capd dead: the viewers are offline already; random bytes must not bring them back.
watch scribbled-dead
kill -KILL "$CAPD_PID"
wait "$CAPD_PID" 2>/dev/null
sleep 1.5
bytes=$(stat -c %s "$ring")
dd if=/dev/urandom of="$ring" bs=65536 count=$((bytes / 65536)) conv=notrunc status=none
sleep 0.5
grep -q '"name":"default","online":false' <<<"$(camera_state)" &&
    pass "scribbled-dead: state shows the camera offline" || fail "scribbled-dead: state: $(camera_state)"
sleep 1
restart_capd
watchers_check tolerate-decode
responder_check
fresh_check
