#!/usr/bin/env bash
# test_faults_readers.sh - viewers that stop reading, read slowly or are SIGSTOPped; a source that goes still.
#
# Stalled readers: one connection that never reads (TCP window full), one curl at
# 20 KB/s (a stream needs about 600 KB/s) and one streamcheck stopped with SIGSTOP,
# added one after the other and left stalled to the end. After each, four other
# viewers must keep the source rate, capd its rate, and the responder's memory must
# stay bounded: at most two frame buffers per stalled viewer (the part being written
# and the last one; the fan-out never queues frames), and no growth over time.
# Still source: capd --source stdin fed one JPEG, then nothing, behind a lighttpd
# whose idle limits are 5 s: the 3-s keep-alive repeat keeps the streams open.
. "$(dirname "$0")/lib.sh"

SOURCE_FPS=30
MIN_FPS=27
rss_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }
fd_count() { find "/proc/$1/fd" -mindepth 1 2>/dev/null | wc -l; }
# capd's published-frame counter and the time, from /state.
capd_frames() {
    echo "$(curl -s --max-time 3 "$(url /state)" | grep -o '"frames":[0-9]*' | head -1 | cut -d: -f2) $(date +%s.%N)"
}
# others_ok WHAT: 4 fresh viewers for 6 s must each keep >= MIN_FPS with no bad frame,
# and capd must publish at >= MIN_FPS over the same window (its frame counter: /state's "fps"
# is the last second alone, which a moment of CPU starvation under ASan once took to 16).
others_ok() {
    local what=$1 i rc ok=0 fpss="" v=() before after
    before=$(capd_frames)
    for i in 1 2 3 4; do
        "$STREAMCHECK" --quiet --seconds 6 --min-fps "$MIN_FPS" --expect-size 640x480 \
            "$(url /stream)" >"$TMP/other$i.out" 2>&1 &
        v[i]=$!
    done
    for i in 1 2 3 4; do
        wait "${v[i]}"
        rc=$?
        fpss+="$(field fps "$(grep '^status=' "$TMP/other$i.out")") "
        if [ "$rc" -eq 0 ]; then
            ok=$((ok + 1))
        else
            echo "    viewer $i (exit $rc): $(tr '\n' ' ' <"$TMP/other$i.out")"
        fi
    done
    [ "$ok" -eq 4 ] && pass "$what: 4 other viewers keep >= $MIN_FPS fps (${fpss% })" ||
        fail "$what: only $ok of 4 other viewers kept $MIN_FPS fps (${fpss% })"
    after=$(capd_frames)
    local cf
    cf=$(awk -v b="$before" -v a="$after" 'BEGIN { split(b, x, " "); split(a, y, " ")
        if (x[1] == "" || y[1] == "" || y[2] <= x[2]) print "?"
        else printf "%.2f", (y[1] - x[1]) / (y[2] - x[2]) }')
    awk -v f="$cf" -v m="$MIN_FPS" 'BEGIN { exit !(f != "?" && f >= m) }' &&
        pass "$what: capd keeps its rate ($cf fps over the viewers' window)" ||
        fail "$what: capd publishes at $cf fps (frames and time before: $before, after: $after)"
}

start_capd default --size 640x480 --fps "$SOURCE_FPS" || { fail "capd starts"; exit; }
start_lighttpd || { fail "lighttpd starts"; exit; }
slot_kib=$(sed -n 's/.* slots of \([0-9]*\) KiB.*/\1/p' "$TMP/capd-default.log" | head -1)
[ -n "$slot_kib" ] || { fail "slot size from capd's log"; exit; }
curl -s -o /dev/null "$(url /state)"
responder=$(responder_pids)
# Warm up: the first viewers allocate the fan-out's channel, buffers and arenas.
others_ok "no stalled reader (baseline)"
rss0=$(rss_kb "$responder")
lrss0=$(rss_kb "$LIGHTTPD_PID")
fds0=$(fd_count "$responder")
echo "    baseline: responder RssAnon $rss0 kB, $fds0 fds; lighttpd RssAnon $lrss0 kB; slots of $slot_kib KiB"

# ---- a viewer that never reads: its TCP window fills -----------------------------------------
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: stalled\r\n\r\n' >&3
sleep 1
others_ok "a viewer that never reads"
# Bytes nobody reads pile up in its receive queue and in lighttpd's send queue
# towards it (a reading client keeps both near 0): the stall is real. (With a state
# filter, ss prints no State column: Recv-Q, Send-Q come first.)
unread=$(ss -tnH state established "( dport = :$PORT )" | awk '{ if ($1 > m) m = $1 } END { print m + 0 }')
unsent=$(ss -tnH state established "( sport = :$PORT )" | awk '{ if ($2 > m) m = $2 } END { print m + 0 }')
[ "$unread" -gt 60000 ] && [ "$unsent" -gt 500000 ] &&
    pass "the non-reading viewer is stalled: $unread bytes unread, lighttpd has $unsent queued to it" ||
    fail "the non-reading viewer does not look stalled: $unread bytes unread, $unsent queued"
rss1=$(rss_kb "$responder")

# ---- a viewer on a slow link: 20 KB/s ---------------------------------------------------------
# (disowned: the shell would report its SIGKILL at the end)
curl -s --limit-rate 20k "$(url /stream)" -o "$TMP/slow.bin" &
slow=$!
disown "$slow"
sleep 1
others_ok "plus a viewer at 20 KB/s"
# A full-rate viewer gets ~650 KB/s; curl's limit averages, so allow its first burst.
slow_bytes=$(stat -c %s "$TMP/slow.bin")
kill -0 "$slow" 2>/dev/null && [ "$slow_bytes" -gt 20000 ] && [ "$slow_bytes" -lt 1500000 ] &&
    pass "the slow viewer keeps streaming at its own pace ($slow_bytes bytes in ~7 s)" ||
    fail "slow viewer: $slow_bytes bytes, running: $(kill -0 "$slow" 2>/dev/null && echo yes || echo no)"
rss2=$(rss_kb "$responder")

# ---- a reader stopped with SIGSTOP, forever ---------------------------------------------------
"$STREAMCHECK" --quiet --seconds 600 "$(url /stream)" >"$TMP/stopped.out" 2>&1 &
stopped=$!
disown "$stopped"
sleep 1
kill -STOP "$stopped"
sleep 1
rss3a=$(rss_kb "$responder")
lrss3a=$(rss_kb "$LIGHTTPD_PID")
others_ok "plus a SIGSTOPped reader"
sleep 6
rss3b=$(rss_kb "$responder")
lrss3b=$(rss_kb "$LIGHTTPD_PID")
echo "    responder RssAnon kB: baseline $rss0, +never-reads $rss1, +slow $rss2," \
    "+stopped $rss3a, 13 s later $rss3b; lighttpd $lrss0 -> $lrss3a -> $lrss3b"

# Bounded: two frame buffers per stalled viewer (at most a slot each) plus 2 MiB of
# allocator slack; and no growth while ~400 frames pass the three stalled viewers.
# ThreadSanitizer keeps shadow memory and a history per thread that grow as frames pass:
# its RSS says nothing about the responder's buffers (the plain and ASan builds judge them).
bound=$((3 * 2 * slot_kib + 2048))
if nm "$BUILD/capd.fcgi" 2>/dev/null | grep -q __tsan_init; then
    echo "    TSan build: responder RSS not judged (+$((rss3b - rss0)) kB)"
else
    [ $((rss3b - rss0)) -le "$bound" ] &&
        pass "responder memory bounded: +$((rss3b - rss0)) kB with 3 stalled viewers (bound $bound kB)" ||
        fail "responder RssAnon grew by $((rss3b - rss0)) kB with 3 stalled viewers (bound $bound kB)"
    [ $((rss3b - rss3a)) -le 1024 ] &&
        pass "responder memory flat while stalled: +$((rss3b - rss3a)) kB over 13 s (~400 frames)" ||
        fail "responder RssAnon grows while viewers are stalled: +$((rss3b - rss3a)) kB over 13 s"
fi
[ $((lrss3b - lrss3a)) -le 1024 ] &&
    pass "lighttpd memory flat while stalled: +$((lrss3b - lrss3a)) kB over 13 s" ||
    fail "lighttpd RssAnon grows while viewers are stalled: +$((lrss3b - lrss3a)) kB over 13 s"

# ---- the stalled viewers go away: everything they held is released ----------------------------
kill -KILL "$stopped" "$slow"
exec 3>&-
if wait_for 10 bash -c "curl -s '$(url /state)' | grep -q '\"streams\":0,'" &&
    wait_for 5 bash -c "[ \$(find /proc/$responder/fd -mindepth 1 | wc -l) -le $fds0 ]"; then
    pass "once the stalled viewers are gone, their streams end and fds return to $fds0"
else
    fail "after the stalled viewers left: $(fd_count "$responder") fds (baseline $fds0), $(curl -s "$(url /state)" | grep -o '"responder".*')"
fi
[ "$(responder_pids)" = "$responder" ] && pass "the responder never restarted (pid $responder)" ||
    fail "responder pid changed: $responder -> $(responder_pids)"

# ---- still source: nothing new for 20 s behind 5-s idle limits --------------------------------
kill "$LIGHTTPD_PID" "$CAPD_PID"
wait "$LIGHTTPD_PID" "$CAPD_PID" 2>/dev/null
"$BUILD/tests/mjpeg_fixtures" --dir "$TMP/fx" --count 1 --size 320x240 >/dev/null ||
    { fail "mjpeg_fixtures makes a JPEG"; exit; }
mkfifo "$TMP/feed"
"$BUILD/capd" --name default --source stdin <"$TMP/feed" >>"$TMP/capd-still.log" 2>&1 &
CAPD_PID=$!
track "$CAPD_PID"
exec 4>"$TMP/feed"
cat "$TMP/fx/expected_000.jpg" >&4 # one frame, then silence (the FIFO stays open)
wait_for 10 ring_exists default || { fail "capd --source stdin starts"; exit; }

# A test config with 5-s idle limits, plus a CGI that goes silent after its first line: the
# control that shows the limit really cuts a quiet response.
sed -e 's/^server.max-write-idle.*/server.max-write-idle = 5/' \
    -e 's/^server.max-read-idle.*/server.max-read-idle = 5/' "$ROOT/lighttpd.conf" >"$TMP/idle.conf"
grep -q '^server.max-write-idle = 5$' "$TMP/idle.conf" || { fail "test config with 5-s idle limits"; exit; }
printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nfirst line\\n"\nsleep 15\necho never\n' \
    >"$TMP/quiet.cgi"
chmod +x "$TMP/quiet.cgi"
cat >>"$TMP/idle.conf" <<EOF
alias.url += ( "/quiet.cgi" => "$TMP/quiet.cgi" )
\$HTTP["url"] =~ "^/quiet\\.cgi\$" { cgi.assign = ( "" => "" ) }
EOF
start_lighttpd "$TMP/idle.conf" || { fail "lighttpd with 5-s idle limits starts"; exit; }

still_paths=(/stream /cgi-bin/capd.cgi/stream)
for i in "${!still_paths[@]}"; do
    "$STREAMCHECK" --quiet --seconds 20 --timeout 10 --expect-size 320x240 \
        "$(url "${still_paths[i]}")" >"$TMP/still$i.out" 2>&1 &
    viewer[i]=$!
done
"$STREAMCHECK" --quiet --seconds 20 --timeout 10 "$(url '/stream?parts=early')" \
    >"$TMP/still-early.out" 2>&1 &
early=$!
start=$(date +%s%N)
body=$(curl -s --max-time 20 "$(url /quiet.cgi)")
quiet_ms=$((($(date +%s%N) - start) / 1000000))
[ "$body" = "first line" ] && [ "$quiet_ms" -ge 4000 ] && [ "$quiet_ms" -le 9000 ] &&
    pass "control: lighttpd cuts a response silent for 5 s (after $quiet_ms ms)" ||
    fail "control: a silent CGI lasted $quiet_ms ms with body '$body' (idle limit not in force?)"
state=$(curl -s "$(url /state)")
grep -q '"online":true,"state":"running"' <<<"$state" &&
    pass "a still source stays online in state (heartbeat without frames)" || fail "state: $state"
expect "a snapshot of a still source answers with the last frame" \
    "$STREAMCHECK" --expect-size 320x240 "$(url /snapshot)"
ok=0
for i in "${!still_paths[@]}"; do
    wait "${viewer[i]}"
    rc=$?
    out=$(grep '^status=' "$TMP/still$i.out")
    frames=$(field frames "$out")
    if [ "$rc" -eq 0 ] && [ "$(field bad "$out")" = 0 ] && [ "$(field offline "$out")" = 0 ] &&
        [ "${frames:-0}" -ge 6 ]; then
        ok=$((ok + 1))
    else
        echo "    ${still_paths[i]} (exit $rc): $(tr '\n' ' ' <"$TMP/still$i.out")"
    fi
done
wait "$early"
rc=$?
[ "$rc" -eq 0 ] && [ "$(field bad "$(grep '^status=' "$TMP/still-early.out")")" = 0 ] && ok=$((ok + 1))
echo "    /stream: $(grep '^status=' "$TMP/still0.out")"
[ "$ok" -eq 3 ] &&
    pass "still source: fan-out, CGI and browser-layout streams stay open 20 s through 5-s idle limits (repeats every 3 s)" ||
    fail "still source: only $ok of 3 streams stayed open for 20 s"

# A viewer who comes after the others have left: the fan-out had already delivered the one frame
# and dropped it with its last viewer; the newcomer must still get it (within the waiter's 1-s
# wait) and then its repeats, without the I/O thread spinning meanwhile (it once did, at about
# 20 000 system calls a second: a core).
wait_for 10 bash -c "[ \"\$(curl -s '$(url /state)' | sed -n 's/.*\"streams\":\([0-9]*\),.*/\1/p')\" = 0 ]" ||
    fail "the still-source viewers did not all end"
responder=$(responder_pids)
[[ $responder =~ ^[0-9]+$ ]] || fail "one FastCGI responder under lighttpd: '$responder'"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" || echo unreadable; }
ticks0=$(cpu_ticks "$responder")
"$STREAMCHECK" --quiet --seconds 8 --timeout 5 --expect-size 320x240 "$(url /stream)" \
    >"$TMP/still-late.out" 2>&1
rc=$?
ticks1=$(cpu_ticks "$responder")
[[ $ticks0$ticks1 =~ ^[0-9]+$ ]] && ticks=$((ticks1 - ticks0)) || ticks="unknown ($ticks0, $ticks1)"
out=$(grep '^status=' "$TMP/still-late.out")
[ "$rc" -eq 0 ] && [ "$(field bad "$out")" = 0 ] && [ "$(field frames "$out")" -ge 2 ] &&
    pass "still source: a viewer who comes after everyone left gets the last frame and its repeats ($(field frames "$out") parts in 8 s)" ||
    fail "still source, late viewer (exit $rc): $(tr '\n' ' ' <"$TMP/still-late.out")"
# 8 s of a core is 800 ticks; an idle responder uses next to none.
[[ $ticks =~ ^[0-9]+$ ]] && [ "$ticks" -le 80 ] && pass "still source: the responder idles meanwhile ($ticks CPU ticks in 8 s)" ||
    fail "still source: the responder used $ticks CPU ticks in 8 s with one idle viewer (spinning?)"
exec 4>&-
