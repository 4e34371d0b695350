#!/usr/bin/env bash
# test_faults_capd.sh - capd SIGKILLed mid-publish 20 times under 10 viewers, restarted at a new size, stopped with SIGTERM.
#
# Every viewer decodes every frame (streamcheck): no torn or invalid JPEG may ever
# reach one, the streams stay open through every outage (offline card, then live
# again) and end up at the size of the last capd. Half of the kills are aimed: capd
# is frozen with SIGSTOP until the ring shows a slot marked busy (a publish in
# progress), then killed while frozen, so those kills land mid-publish for certain.
# capd runs at 1280x720, where an encode is long enough to be caught (at 640x480 one
# freeze in 300 lands in it); half the viewers cap their rate to spare the CPU.
# SEED=N replays a schedule; KILLS=N changes the count.
. "$(dirname "$0")/lib.sh"

KILLS=${KILLS:-20}
seed=${SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed
echo "    schedule seed $seed (SEED=$seed replays it)"
ring=/dev/shm/${CAPD_SHM_PREFIX}default
# Millisecond clock and sleeps without forking (forks cost ~10 ms here).
exec {nap_fd}<> <(:)
now_ms() { local t=${EPOCHREALTIME//[.,]/}; NOW=$((t / 1000)); }
nap_ms() {
    local s
    [ "$1" -gt 0 ] || return 0
    printf -v s '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
    read -r -t "$s" -u "$nap_fd" _
}
sleep_until() { now_ms; nap_ms $(($1 - NOW)); }

# The ring header and slot table as 8-byte words (ring.h: the slot count at byte 32,
# head at 264, slot i's seq at 512 + 64 i).
ring_words() { od -An -tu8 -w8 -v -N1024 "$ring" >"$TMP/words" 2>/dev/null && mapfile -t w <"$TMP/words"; }
# Succeeds when the slot after the newest frame is marked busy (seq 0 once the
# ring has wrapped): capd is between ring_writer_begin() and _commit().
publish_in_progress() {
    local n head
    ring_words && [ "${#w[@]}" -ge 128 ] || return 1
    n=$((w[4] & 0xffffffff))
    head=$((w[33]))
    [ "$n" -ge 2 ] && [ "$head" -ge "$n" ] && [ "$((w[64 + 8 * ((head + 1) % n)]))" -eq 0 ]
}
# Freezes capd while a publish is in progress (tests/tools/freeze_publish watches the
# slot table every 0.1 ms), for up to 1.2 s; leaves it frozen and succeeds, or gives up
# with capd running. A random wait first, so the kills land at different points of the
# encode.
freeze_mid_publish() {
    nap_ms $((RANDOM % 20))
    "$BUILD/tests/freeze_publish" "$ring" "$CAPD_PID" 1200
}
kill_capd() {
    kill -KILL "$CAPD_PID"
    wait "$CAPD_PID" 2>/dev/null
}

start_capd default --size 1280x720 --fps 30 || { fail "capd starts"; exit; }
start_lighttpd || { fail "lighttpd starts"; exit; }
curl -s -o /dev/null "$(url /state)"
responder=$(responder_pids)

# ---- the schedule: up 0.3-1.2 s, then down 0-1.5 s (every 4th outage 1.5-2.3 s) -----------
# Absolute instants, so that the last restart happens on time whatever the aiming costs.
planned=0
for i in $(seq "$KILLS"); do
    planned=$((planned + 300 + RANDOM % 900))
    kill_at[i]=$planned
    if [ $((i % 4)) -eq 0 ]; then
        planned=$((planned + 1500 + RANDOM % 800))
    else
        planned=$((planned + RANDOM % 1500))
    fi
    start_at[i]=$planned
    planned=$((planned + 300)) # start_capd's own wait
done
view_s=$((planned / 1000 + 8))
echo "    $KILLS kills planned over $((planned / 1000)) s; viewers watch for $view_s s"

# 10 viewers: 8 through the FastCGI fan-out (4 of them capped at 10 fps), 1 in the
# browser layout, 1 through CGI (a reader per request rather than the fan-out's
# shared one). The browser layout has no per-part headers, so its offline cards
# cannot be told apart.
paths=(/stream /stream /stream /stream '/stream?fps=10' '/stream?fps=10' '/stream?fps=10'
    '/stream?fps=10' '/stream?parts=early&fps=10' '/cgi-bin/capd.cgi/stream?fps=10')
for i in "${!paths[@]}"; do
    "$STREAMCHECK" --events --quiet --seconds "$view_s" --timeout 10 "$(url "${paths[i]}")" \
        >"$TMP/viewer$i.out" 2>&1 &
    viewer[i]=$!
done
nap_ms 1000

now_ms
t0=$NOW
aimed=0
mid_publish=0
for i in $(seq "$KILLS"); do
    sleep_until $((t0 + kill_at[i]))
    # Even kills are aimed at a publish in progress; odd ones land wherever capd is.
    [ $((i % 2)) -eq 0 ] && freeze_mid_publish && aimed=$((aimed + 1))
    kill_capd
    publish_in_progress && mid_publish=$((mid_publish + 1))
    sleep_until $((t0 + start_at[i]))
    # The last restart brings a different size.
    if [ "$i" -eq "$KILLS" ]; then
        start_capd default --size 640x480 --fps 30 || fail "capd restarts at 640x480"
    else
        start_capd default --size 1280x720 --fps 30 || fail "capd restart $i"
    fi
done
now_ms
loop_ms=$((NOW - t0))
echo "    $KILLS kills in $((loop_ms / 1000)) s; $mid_publish left a slot marked busy (publish in" \
    "progress); $aimed of $((KILLS / 2)) aimed kills froze capd mid-publish"
[ "$loop_ms" -le $(((view_s - 5) * 1000)) ] ||
    fail "the schedule overran ($loop_ms ms): viewers end before the last restart shows"
[ "$mid_publish" -ge $((KILLS / 5)) ] &&
    pass "$mid_publish of $KILLS SIGKILLs landed mid-publish (a slot left busy)" ||
    fail "only $mid_publish of $KILLS kills landed mid-publish: the test did not exercise torn slots"

objects() { find /dev/shm -maxdepth 1 -name "${CAPD_SHM_PREFIX}$1*" -printf '%f\n' | sort | tr '\n' ' '; }

ok=0
total_offline=0
for i in "${!paths[@]}"; do
    wait "${viewer[i]}"
    rc=$?
    out=$(tail -1 "$TMP/viewer$i.out")
    starts=$(grep -c 'event=offline_start' "$TMP/viewer$i.out")
    last=$(grep -o 'event=offline_[a-z]*' "$TMP/viewer$i.out" | tail -1)
    total_offline=$((total_offline + starts))
    # Every outage must have ended; the browser layout cannot tell cards apart.
    offline_ok=0
    if [[ ${paths[i]} == *parts=early* ]]; then
        offline_ok=1
    elif [ "$starts" -ge 1 ] && [ "$last" = event=offline_end ]; then
        offline_ok=1
    fi
    if [ "$rc" -eq 0 ] && [ "$(field bad "$out")" = 0 ] && [ "$offline_ok" = 1 ] &&
        [[ $(field sizes "$out") == 1280x720,*640x480 ]]; then
        ok=$((ok + 1))
    else
        echo "    viewer $i ${paths[i]} (exit $rc, $starts offline periods, last $last):"
        grep -v '^event=offline' "$TMP/viewer$i.out" | tail -5 | sed 's/^/      /'
    fi
done
echo "    viewer 0: $(tail -1 "$TMP/viewer0.out")"
echo "    offline periods: $total_offline over the $((${#paths[@]} - 1)) viewers with part headers"
[ "$ok" -eq "${#paths[@]}" ] &&
    pass "$KILLS x kill -9 under ${#paths[@]} viewers: every frame decodes (bad=0), every stream stays open, shows offline and resumes" ||
    fail "kill -9 storm: only $ok of ${#paths[@]} viewers stayed clean and resumed"
resized=$(grep -l 'sizes=1280x720,.*640x480 ' "$TMP"/viewer*.out | wc -l)
[ "$resized" -eq "${#paths[@]}" ] &&
    pass "after the restart with --size 640x480 every stream continues at the new size" ||
    fail "only $resized of ${#paths[@]} streams reached the new size"
[ "$(responder_pids)" = "$responder" ] &&
    pass "the responder survived every capd death (pid $responder)" ||
    fail "responder pid changed: $responder -> $(responder_pids)"
state=$(curl -s "$(url /state)")
grep -q '"online":true,"state":"running"' <<<"$state" && grep -q '"width":640,"height":480' <<<"$state" &&
    pass "state: the last capd is online at 640x480" || fail "state after the storm: $state"
[ "$(objects '')" = "${CAPD_SHM_PREFIX}default ${CAPD_SHM_PREFIX}default.viewers " ] &&
    pass "each restart replaced the dead capd's objects: only the live ring and viewer object exist" ||
    fail "shared-memory objects after the storm: $(objects '')"

# ---- clean shutdown: SIGTERM stops capd within 2 s and removes its objects ------------------
# stop_child PID: SIGTERM to our child PID, then reaps it (SIGKILL after 3 s). Sets STOP_MS
# and STOP_RC. Not in a subshell: only the parent can reap.
stop_child() {
    local pid=$1 t guard
    now_ms
    t=$NOW
    kill -TERM "$pid"
    (sleep 3 && kill -KILL "$pid" 2>/dev/null) &
    guard=$!
    wait "$pid" 2>/dev/null
    STOP_RC=$?
    now_ms
    STOP_MS=$((NOW - t))
    kill "$guard" 2>/dev/null
    wait "$guard" 2>/dev/null
}

for i in 1 2 3; do
    "$STREAMCHECK" --quiet --allow-eof --seconds 4 "$(url /stream)" >"$TMP/stop$i.out" 2>&1 &
    viewer[i]=$!
done
nap_ms 1000
stop_child "$CAPD_PID"
[ "$STOP_MS" -le 2000 ] && [ "$STOP_RC" -eq 0 ] &&
    pass "SIGTERM with 3 viewers: capd exits 0 in $STOP_MS ms" ||
    fail "SIGTERM: capd took $STOP_MS ms, status $STOP_RC"
[ -z "$(objects default)" ] && pass "no shared-memory object left after SIGTERM" ||
    fail "left after SIGTERM: $(objects default)"
bad=0
for i in 1 2 3; do
    wait "${viewer[i]}" || bad=$((bad + 1))
    [ "$(field bad "$(tail -1 "$TMP/stop$i.out")")" = 0 ] || bad=$((bad + 1))
done
[ "$bad" -eq 0 ] && pass "viewers of a capd stopped by SIGTERM see no bad frame" ||
    fail "viewers of the stopped capd: $(cat "$TMP"/stop*.out | tr '\n' ' ')"

# A capd blocked reading an idle stdin stops as promptly.
mkfifo "$TMP/idle"
"$BUILD/capd" --name idle --source stdin <"$TMP/idle" >>"$TMP/capd-idle.log" 2>&1 &
pid=$!
track "$pid"
exec 5>"$TMP/idle"
wait_for 10 ring_exists idle || fail "capd --source stdin starts"
nap_ms 500
stop_child "$pid"
[ "$STOP_MS" -le 2000 ] && [ "$STOP_RC" -eq 0 ] && [ -z "$(objects idle)" ] &&
    pass "SIGTERM to capd blocked on an idle stdin: exits 0 in $STOP_MS ms, objects removed" ||
    fail "capd on idle stdin: $STOP_MS ms, status $STOP_RC, left: $(objects idle)"
exec 5>&-

# --keep-ring opts out: both objects stay, and the next capd replaces them.
start_capd keep --size 160x120 --keep-ring || fail "capd --keep-ring starts"
stop_child "$CAPD_PID"
[ "$STOP_MS" -le 2000 ] && [ "$(objects keep)" = "${CAPD_SHM_PREFIX}keep ${CAPD_SHM_PREFIX}keep.viewers " ] &&
    pass "--keep-ring: SIGTERM in $STOP_MS ms leaves the ring and the viewer object" ||
    fail "--keep-ring: $STOP_MS ms, objects: $(objects keep)"
start_capd keep --size 160x120 || fail "capd starts over a kept ring"
expect "a capd started over a kept ring serves fresh frames" \
    "$STREAMCHECK" --frames 5 --expect-size 160x120 "$(url '/stream?cam=keep')"
stop_child "$CAPD_PID"
[ -z "$(objects keep)" ] && pass "that capd removes the objects at SIGTERM ($STOP_MS ms)" ||
    fail "left: $(objects keep)"
