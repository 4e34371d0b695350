#!/usr/bin/env bash
# test_capd_cli.sh - capd and capd.fcgi command lines, signals, ring cleanup, one-shot CGI.
#
# Runs the real binaries of $BUILD: help and version, every bad flag or value (exit 2 naming the
# flag), unusable sources (exit 1), a duplicate camera, SIGTERM/SIGINT cleanup, --keep-ring, and
# the responder started by hand as a CGI program (state, snapshot, bad query) without a web server.
# The V4L2 flags are checked here as far as a machine without cameras allows (--list, a missing
# device, --wait-device's NO SIGNAL frames); capture itself is tested against vivid in
# test_vivid.sh.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

CAPD=$BUILD/capd
FCGI=$BUILD/capd.fcgi
SHM=/dev/shm/$CAPD_SHM_PREFIX

# run_capd OUT [args...]: runs capd in the foreground (5 s at most); stdout+stderr in OUT, sets RC.
run_capd() {
    local out=$1
    shift
    timeout -k 2 5 "$CAPD" "$@" >"$out" 2>&1 </dev/null
    RC=$?
}

# One line of output for FAIL messages.
oneline() { tr '\n' ' ' <"$1" | cut -c1-200; }

# The long option names in a source file's longopts[] table.
source_longopts() {
    sed -n '/longopts\[\] = {/,/^ *};/p' "$1" | grep -oE '\{"[a-z-]+"' | tr -d '{"'
}

# The short option letters in a source file's getopt_long() option string.
source_shortopts() {
    grep -oE 'getopt_long\(argc, argv, "[^"]*"' "$1" | sed 's/.*"\(.*\)"/\1/' | tr -d ':' |
        grep -o .
}

# check_help PROG SOURCE: --help exits 0 and mentions every option SOURCE accepts; every option
# the help mentions is accepted by the parser (it is either consumed, or complains about its
# value, but never is an "unknown option").
check_help() {
    local prog=$1 src=$2 name opt letter missing="" rejected="" rc
    name=$(basename "$prog")
    "$prog" --help >"$TMP/$name.help" 2>"$TMP/$name.help.err" </dev/null
    rc=$?
    if [ "$rc" -eq 0 ] && [ -s "$TMP/$name.help" ] && [ ! -s "$TMP/$name.help.err" ]; then
        pass "$name --help exits 0 with the text on stdout"
    else
        fail "$name --help: exit $rc, stderr: $(oneline "$TMP/$name.help.err")"
    fi
    [ -n "$(source_longopts "$src")" ] || fail "$name: no longopts found in $src (test is stale)"
    for opt in $(source_longopts "$src"); do
        grep -q -- "--$opt\\b" "$TMP/$name.help" || missing="$missing --$opt"
    done
    for letter in $(source_shortopts "$src"); do
        grep -qE -- "^ +-$letter, --" "$TMP/$name.help" || missing="$missing -$letter"
    done
    if [ -z "$missing" ]; then
        pass "$name --help documents every option its parser accepts"
    else
        fail "$name --help does not document:$missing"
    fi
    for opt in $(grep -oE -- '(^|[^a-z-])--[a-z][a-z-]*' "$TMP/$name.help" |
        grep -oE -- '--[a-z-]+' | sort -u) $(grep -oE -- '^ +-[a-zA-Z],' "$TMP/$name.help" |
        tr -d ' ,'); do
        # A flag taking a value swallows the bogus word (invalid as any value) and names itself;
        # a flag without one lets the parser reach the bogus word and complain about that.
        timeout -k 2 5 "$prog" "$opt" --ZZ/no-such-option >"$TMP/opt.out" 2>&1 </dev/null
        rc=$?
        if grep -qF -- "$opt: unknown option" "$TMP/opt.out" ||
            { [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; } ||
            { [ "$rc" -eq 2 ] && ! grep -qF -- "$opt" "$TMP/opt.out" &&
                ! grep -qF -- "--ZZ/no-such-option: unknown option" "$TMP/opt.out"; }; then
            rejected="$rejected $opt(exit $rc: $(oneline "$TMP/opt.out"))"
        fi
    done
    if [ -z "$rejected" ]; then
        pass "$name accepts every option its --help mentions"
    else
        fail "$name rejects options its --help mentions:$rejected"
    fi
}

# expect_usage_error WHAT NAMED -- ARGS...: capd ARGS exits 2 with a message naming NAMED and
# leaves no shared-memory object behind.
expect_usage_error() {
    local what=$1 named=$2
    shift 3
    run_capd "$TMP/usage.out" --name usage "$@"
    if [ "$RC" -ne 2 ]; then
        fail "$what: exit $RC, expected 2: $(oneline "$TMP/usage.out")"
    elif ! grep -qF -- "$named" "$TMP/usage.out"; then
        fail "$what: the message does not name '$named': $(oneline "$TMP/usage.out")"
    elif [ "$named" != --bogus ] && grep -q "unknown option" "$TMP/usage.out"; then
        fail "$what: reported as an unknown option: $(oneline "$TMP/usage.out")"
    elif [ -e "${SHM}usage" ]; then
        fail "$what: left ${SHM}usage behind"
    else
        pass "$what: exit 2 naming $named"
    fi
}

# Succeeds while process $1 runs (exists and has not exited into a zombie).
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# stop_with SIGNAL PID: signals a running capd and reaps it; sets RC and ELAPSED_MS. A capd that
# outlives the signal by 4 s is killed, so that the test fails instead of hanging.
stop_with() {
    local sig=$1 pid=$2 start
    start=$(date +%s%N)
    kill "-$sig" "$pid"
    for _ in $(seq 80); do
        running "$pid" || break
        sleep 0.05
    done
    ELAPSED_MS=$((($(date +%s%N) - start) / 1000000))
    running "$pid" && kill -KILL "$pid"
    wait "$pid"
    RC=$?
}

# cgi OUT QUERY [PATH_INFO [METHOD]]: runs the responder once as a CGI program; the whole CGI
# response in OUT, the body alone in OUT.body. Sets RC.
cgi() {
    local out=$1 query=$2 path_info=${3:-} method=${4:-GET} hdr_bytes
    env -u PATH_INFO -u CONTENT_LENGTH GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD="$method" \
        QUERY_STRING="$query" SCRIPT_NAME=/cgi-bin/capd.cgi ${path_info:+PATH_INFO=$path_info} \
        timeout -k 2 10 "$FCGI" </dev/null >"$out" 2>"$out.err"
    RC=$?
    # The header block ends at the first empty line (CRLF or LF).
    hdr_bytes=$(sed -e '/^\r\{0,1\}$/q' "$out" | wc -c)
    tail -c +$((hdr_bytes + 1)) "$out" >"$out.body"
}

# The value of a CGI header.
header() { sed -n -e '/^\r\{0,1\}$/q' -e "s/^$1: \\(.*\\)\\r\$/\\1/p" "$2"; }

# ---- capd --help, --version ---------------------------------------------------------------------
check_help "$CAPD" "$ROOT/capd/capd.c"

run_capd "$TMP/version.out" --version
if [ "$RC" -eq 0 ] && grep -qE '^capd [0-9]+\.[0-9]+\.[0-9]+$' "$TMP/version.out"; then
    pass "capd --version: exit 0, $(cat "$TMP/version.out")"
else
    fail "capd --version: exit $RC: $(oneline "$TMP/version.out")"
fi

# ---- bad flags and values ------------------------------------------------------------------------
long_name=$(printf 'a%.0s' $(seq 65))
expect_usage_error "--fps 0" --fps -- --fps 0
expect_usage_error "--fps abc" --fps -- --fps abc
expect_usage_error "--fps 121" --fps -- --fps 121
expect_usage_error "--fps without a value" --fps -- --fps
expect_usage_error "--size 10x10" --size -- --size 10x10
expect_usage_error "--size 640" --size -- --size 640
expect_usage_error "--size 640x" --size -- --size 640x
expect_usage_error "--quality 101" --quality -- --quality 101
expect_usage_error "--quality 0" --quality -- --quality 0
expect_usage_error "--slots 1" --slots -- --slots 1
expect_usage_error "--slots 257" --slots -- --slots 257
expect_usage_error "--slot-size 1K" --slot-size -- --slot-size 1K
expect_usage_error "--slot-size 65M" --slot-size -- --slot-size 65M
expect_usage_error "--slot-size 12Q" --slot-size -- --slot-size 12Q
expect_usage_error "--name Bad/Name" --name -- --name Bad/Name
expect_usage_error "--name ../x" --name -- --name ../x
expect_usage_error "--name of 65 characters" --name -- --name "$long_name"
expect_usage_error "--name ''" --name -- --name ""
expect_usage_error "--group nosuchgroup" --group -- --group nosuchgroup
expect_usage_error "--bogus" --bogus -- --bogus
expect_usage_error "a stray argument" stray -- stray
expect_usage_error "--source nosuch" --source -- --source nosuch
expect_usage_error "--source file: (no path)" --source -- --source file:
expect_usage_error "--format h264" --format -- --format h264
expect_usage_error "--ctrl without =" --ctrl -- --ctrl brightness
expect_usage_error "--ctrl without a name" --ctrl -- --ctrl =5
expect_usage_error "--ctrl without a value" --ctrl -- --ctrl brightness=
expect_usage_error "--idle-stop abc" --idle-stop -- --idle-stop abc
expect_usage_error "--idle-stop 86401" --idle-stop -- --idle-stop 86401
expect_usage_error "--drop-same -1" --drop-same -- --drop-same -1
expect_usage_error "--encoders 0" --encoders -- --encoders 0
expect_usage_error "--encoders 17" --encoders -- --encoders 17

CAPD_SHM_PREFIX=Bad/Prefix run_capd "$TMP/prefix.out" --name usage
if [ "$RC" -eq 2 ] && grep -q CAPD_SHM_PREFIX "$TMP/prefix.out"; then
    pass "a bad CAPD_SHM_PREFIX: exit 2 naming the variable"
else
    fail "a bad CAPD_SHM_PREFIX: exit $RC: $(oneline "$TMP/prefix.out")"
fi

# A test pattern needs slots that hold its largest JPEG.
run_capd "$TMP/small.out" --name small --slot-size 8K --size 640x480
if [ "$RC" -eq 2 ] && grep -q -- "--slot-size" "$TMP/small.out" &&
    grep -q "too small" "$TMP/small.out" && [ ! -e "${SHM}small" ]; then
    pass "--slot-size too small for the test pattern: exit 2, $(oneline "$TMP/small.out")"
else
    fail "--slot-size too small for the test pattern: exit $RC: $(oneline "$TMP/small.out")"
fi

# ---- sources that cannot work -------------------------------------------------------------------
run_capd "$TMP/video.out" --name video --source /dev/video9
if [ "$RC" -ne 0 ] && [ "$RC" -lt 128 ] && [ "$RC" -ne 124 ] &&
    grep -q "/dev/video9" "$TMP/video.out" && [ ! -e "${SHM}video" ]; then
    pass "--source /dev/video9: exit $RC naming /dev/video9"
else
    fail "--source /dev/video9: exit $RC: $(oneline "$TMP/video.out")"
fi

# A device node that is not a camera: exit 1 naming it.
run_capd "$TMP/null.out" --name null --source /dev/null
if [ "$RC" -eq 1 ] && grep -q "/dev/null" "$TMP/null.out" &&
    grep -qi "not a V4L2 device" "$TMP/null.out" && [ ! -e "${SHM}null" ]; then
    pass "--source /dev/null: exit 1, not a V4L2 device"
else
    fail "--source /dev/null: exit $RC: $(oneline "$TMP/null.out")"
fi

# ---- --list -------------------------------------------------------------------------------------
run_capd "$TMP/list.out" --list
if ls /dev/video* >/dev/null 2>&1; then
    # A machine with cameras: each capture node gets a block starting with its path.
    if [ "$RC" -eq 0 ] && grep -q "^/dev/video[0-9]*" "$TMP/list.out"; then
        pass "capd --list: exit 0, lists $(grep -c '^/dev/video' "$TMP/list.out") node(s)"
    else
        fail "capd --list: exit $RC: $(oneline "$TMP/list.out")"
    fi
elif [ "$RC" -eq 0 ] && grep -q "no V4L2 devices" "$TMP/list.out"; then
    pass "capd --list without cameras: exit 0, $(oneline "$TMP/list.out")"
else
    fail "capd --list without cameras: exit $RC: $(oneline "$TMP/list.out")"
fi
run_capd "$TMP/list9.out" --list --source /dev/video9
if [ "$RC" -eq 1 ] && grep -q "/dev/video9" "$TMP/list9.out"; then
    pass "capd --list --source /dev/video9: exit 1 naming it"
else
    fail "capd --list --source /dev/video9: exit $RC: $(oneline "$TMP/list9.out")"
fi

# ---- --wait-device: a camera that is not there yet is NO SIGNAL, not an error -------------------
if start_capd waitdev --source /dev/video9 --wait-device --size 320x240; then
    sleep 1.2
    cgi "$TMP/waitdev.cgi" "action=state&cam=waitdev"
    cgi "$TMP/waitsnap.cgi" "action=snapshot&cam=waitdev"
    if running "$CAPD_PID" && grep -q '"state":"no-signal"' "$TMP/waitdev.cgi.body" &&
        head -1 "$TMP/waitsnap.cgi" | grep -q '^Status: 200' &&
        [ "$(head -c 2 "$TMP/waitsnap.cgi.body" | od -An -tx1 | tr -d ' ')" = ffd8 ] &&
        grep -q "waiting for it" "$TMP/capd-waitdev.log"; then
        pass "--source /dev/video9 --wait-device: runs, state no-signal, a NO SIGNAL JPEG"
    else
        why="state $(oneline "$TMP/waitdev.cgi.body"), snapshot $(head -1 "$TMP/waitsnap.cgi")"
        fail "--wait-device: $why, log $(oneline "$TMP/capd-waitdev.log")"
    fi
    # The retries stay quiet: the failure is logged once, not every second.
    if [ "$(grep -c "/dev/video9" "$TMP/capd-waitdev.log")" -le 2 ]; then
        pass "--wait-device: the missing device is logged once, not at every retry"
    else
        fail "--wait-device: logged $(grep -c /dev/video9 "$TMP/capd-waitdev.log") times"
    fi
    stop_with TERM "$CAPD_PID"
else
    fail "--wait-device: capd did not start"
fi

run_capd "$TMP/nofile.out" --name nofile --source file:/nonexistent
if [ "$RC" -eq 1 ] && grep -q "/nonexistent" "$TMP/nofile.out" &&
    grep -qi "no such file" "$TMP/nofile.out" && [ ! -e "${SHM}nofile" ]; then
    pass "--source file:/nonexistent: exit 1, $(oneline "$TMP/nofile.out")"
else
    fail "--source file:/nonexistent: exit $RC: $(oneline "$TMP/nofile.out")"
fi

mkdir -p "$TMP/empty"
run_capd "$TMP/empty.out" --name empty --source "file:$TMP/empty"
if [ "$RC" -eq 1 ] && grep -q "$TMP/empty" "$TMP/empty.out"; then
    pass "--source file:EMPTY_FOLDER: exit 1, $(oneline "$TMP/empty.out")"
else
    fail "--source file:EMPTY_FOLDER: exit $RC: $(oneline "$TMP/empty.out")"
fi

# ---- a running camera: duplicate name, then the responder as a one-shot CGI --------------------
if start_capd main --size 320x240 --fps 20; then
    MAIN_PID=$CAPD_PID
    inode_before=$(stat -c %i "${SHM}main")
    run_capd "$TMP/dup.out" --name main --size 320x240
    sleep 0.3
    if [ "$RC" -eq 1 ] && grep -q "already served" "$TMP/dup.out"; then
        pass "a second capd --name main: exit 1, $(oneline "$TMP/dup.out")"
    else
        fail "a second capd --name main: exit $RC: $(oneline "$TMP/dup.out")"
    fi
    inode_after=$(stat -c %i "${SHM}main" 2>/dev/null)
    if running "$MAIN_PID" && [ "$inode_after" = "$inode_before" ] && [ -e "${SHM}main.viewers" ]
    then
        pass "the first capd keeps running with its ring untouched"
    else
        fail "the first capd did not survive the duplicate (ring inode $inode_after)"
    fi

    # state
    cgi "$TMP/state.cgi" "action=state"
    if [ "$RC" -eq 0 ] && head -1 "$TMP/state.cgi" | grep -q $'^Status: 200 OK\r$' &&
        [ "$(header Content-Type "$TMP/state.cgi")" = application/json ] &&
        grep -q '"cameras":\[{"name":"main","online":true,' "$TMP/state.cgi.body" &&
        grep -q '"width":320,"height":240' "$TMP/state.cgi.body" &&
        grep -q '"mode":"cgi"' "$TMP/state.cgi.body" &&
        [ "$(header Content-Length "$TMP/state.cgi")" = "$(wc -c <"$TMP/state.cgi.body")" ]; then
        pass "CGI action=state: Status 200, JSON lists camera main online at 320x240"
    else
        why=$(oneline "$TMP/state.cgi.err")
        fail "CGI action=state: exit $RC: $(oneline "$TMP/state.cgi") $why"
    fi

    # snapshot, by action= and by PATH_INFO
    for how in "action=snapshot|" "|/snapshot"; do
        cgi "$TMP/snap.cgi" "${how%%|*}" "${how#*|}"
        label=$([ -n "${how%%|*}" ] && echo "QUERY_STRING=${how%%|*}" || echo "PATH_INFO=${how#*|}")
        body=$TMP/snap.cgi.body
        len=$(wc -c <"$body")
        soi=$(od -An -tx1 -N2 "$body" | tr -d ' ')
        eoi=$(tail -c 2 "$body" | od -An -tx1 | tr -d ' ')
        decoded=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height \
            -of csv=p=0 "$body" 2>&1)
        ffmpeg -v error -nostdin -i "$body" -f null - >"$TMP/snap.ffmpeg" 2>&1
        ffrc=$?
        if [ "$RC" -eq 0 ] && head -1 "$TMP/snap.cgi" | grep -q $'^Status: 200 OK\r$' &&
            [ "$(header Content-Type "$TMP/snap.cgi")" = image/jpeg ] &&
            [ "$(header Content-Length "$TMP/snap.cgi")" = "$len" ] && [ "$len" -gt 1000 ] &&
            [ "$soi" = ffd8 ] && [ "$eoi" = ffd9 ] && [ "$ffrc" -eq 0 ] &&
            [ ! -s "$TMP/snap.ffmpeg" ] && [ "$decoded" = "320,240" ]; then
            pass "CGI snapshot ($label): a $len-byte JPEG, FFD8..FFD9, decodes as 320x240"
        else
            headers=$(head -c 300 "$TMP/snap.cgi" | tr -c '[:print:]' ' ')
            why="exit $RC len=$len soi=$soi eoi=$eoi ffmpeg=$ffrc size=$decoded"
            fail "CGI snapshot ($label): $why: $headers $(oneline "$TMP/snap.ffmpeg")"
        fi
    done

    # bad requests
    cgi "$TMP/bad.cgi" "fps=abc&action=stream"
    if [ "$RC" -eq 0 ] && head -1 "$TMP/bad.cgi" | grep -q $'^Status: 400 ' &&
        grep -q fps "$TMP/bad.cgi.body" && ! grep -q abc "$TMP/bad.cgi.body"; then
        pass "CGI fps=abc&action=stream: Status 400, $(oneline "$TMP/bad.cgi.body")"
    else
        fail "CGI fps=abc&action=stream: exit $RC: $(oneline "$TMP/bad.cgi")"
    fi
    cgi "$TMP/noroute.cgi" "action=state" "/bogus"
    if [ "$RC" -eq 0 ] && head -1 "$TMP/noroute.cgi" | grep -q $'^Status: 404 '; then
        pass "CGI PATH_INFO=/bogus: Status 404"
    else
        fail "CGI PATH_INFO=/bogus: exit $RC: $(oneline "$TMP/noroute.cgi")"
    fi
    cgi "$TMP/nocam.cgi" "action=snapshot&cam=nosuch"
    if [ "$RC" -eq 0 ] && head -1 "$TMP/nocam.cgi" | grep -q $'^Status: 404 '; then
        pass "CGI snapshot of an unknown camera: Status 404"
    else
        fail "CGI snapshot of an unknown camera: exit $RC: $(oneline "$TMP/nocam.cgi")"
    fi
    cgi "$TMP/post.cgi" "action=state" "" POST
    if [ "$RC" -eq 0 ] && head -1 "$TMP/post.cgi" | grep -q $'^Status: 405 '; then
        pass "CGI POST: Status 405"
    else
        fail "CGI POST: exit $RC: $(oneline "$TMP/post.cgi")"
    fi
    # A bounded stream as CGI: 3 frames, then the closing boundary and exit.
    cgi "$TMP/stream.cgi" "action=stream&frames=3&parts=full"
    parts=$(grep -ac $'^Content-Type: image/jpeg\r$' "$TMP/stream.cgi.body")
    if [ "$RC" -eq 0 ] && [ "$parts" -eq 3 ] &&
        tail -c 20 "$TMP/stream.cgi" | grep -aq -- '--capdframe--'; then
        pass "CGI action=stream&frames=3: 3 parts and the closing boundary"
    else
        fail "CGI action=stream&frames=3: exit $RC, $parts parts: $(oneline "$TMP/stream.cgi.err")"
    fi

    stop_with TERM "$MAIN_PID"
else
    fail "capd --name main did not start"
fi

# ---- the responder's own command line -----------------------------------------------------------
check_help "$FCGI" "$ROOT/fcgi/responder.c"
timeout -k 2 5 "$FCGI" --max-viewers 0 >"$TMP/mv.out" 2>&1 </dev/null
rc=$?
if [ "$rc" -eq 2 ] && grep -q -- "--max-viewers" "$TMP/mv.out" &&
    ! grep -q "unknown option" "$TMP/mv.out"; then
    pass "capd.fcgi --max-viewers 0: exit 2 naming the flag"
else
    fail "capd.fcgi --max-viewers 0: exit $rc: $(oneline "$TMP/mv.out")"
fi
for args in "--threads 0|--threads" "--max-viewers abc|--max-viewers" "--bogus|--bogus" \
    "stray|stray"; do
    # shellcheck disable=SC2086
    timeout -k 2 5 "$FCGI" ${args%%|*} >"$TMP/fa.out" 2>&1 </dev/null
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "${args#*|}" "$TMP/fa.out"; then
        pass "capd.fcgi ${args%%|*}: exit 2 naming ${args#*|}"
    else
        fail "capd.fcgi ${args%%|*}: exit $rc: $(oneline "$TMP/fa.out")"
    fi
done

# ---- signals, cleanup, --keep-ring --------------------------------------------------------------
for sig in TERM INT; do
    name=sig$(echo "$sig" | tr "[:upper:]" "[:lower:]")
    if start_capd "$name" --size 160x120; then
        stop_with "$sig" "$CAPD_PID"
        if [ "$RC" -eq 0 ] && [ "$ELAPSED_MS" -le 2000 ] && [ ! -e "$SHM$name" ] &&
            [ ! -e "$SHM$name.viewers" ]; then
            pass "SIG$sig: capd exits 0 in $ELAPSED_MS ms and removes $name and $name.viewers"
        else
            fail "SIG$sig: exit $RC after $ELAPSED_MS ms; left: $(echo "$SHM$name"*)"
        fi
        grep -q "stopping on signal" "$TMP/capd-$name.log" ||
            fail "SIG$sig: no 'stopping on signal' log line: $(oneline "$TMP/capd-$name.log")"
    else
        fail "SIG$sig: capd did not start"
    fi
done

if start_capd keep --size 160x120 --keep-ring; then
    stop_with TERM "$CAPD_PID"
    if [ "$RC" -eq 0 ] && [ -e "${SHM}keep" ] && [ -e "${SHM}keep.viewers" ]; then
        pass "--keep-ring: exit 0 and both shared-memory objects stay"
    else
        fail "--keep-ring: exit $RC; objects: $(echo "${SHM}keep"*)"
    fi
    # The kept objects belong to a stopped capd: a new one takes the name over.
    if start_capd keep --size 160x120; then
        stop_with TERM "$CAPD_PID"
        if [ "$RC" -eq 0 ] && [ ! -e "${SHM}keep" ]; then
            pass "a new capd replaces a kept ring and removes it at exit"
        else
            fail "a new capd over a kept ring: exit $RC"
        fi
    else
        fail "a new capd did not start over a kept ring"
    fi
else
    fail "--keep-ring: capd did not start"
fi

# ---- --user: started as root, capd runs as another user once its setup is done ------------------
if [ "$(id -u)" -ne 0 ]; then
    echo "    (--user needs root: not checked as $(id -un))"
elif ! getent passwd nobody >/dev/null; then
    fail "--user: this machine has no user 'nobody' to switch to"
elif start_capd priv --size 160x120 --user nobody --group "$(id -gn nobody)"; then
    uid=$(awk '/^Uid:/ {print $2 $3 $4 $5}' "/proc/$CAPD_PID/status")
    owners=$(stat -c '%u:%g %a' "${SHM}priv" "${SHM}priv.viewers" | tr '\n' ' ')
    nobody="$(id -u nobody):$(id -g nobody)"
    if [ "$uid" = "$(id -u nobody)$(id -u nobody)$(id -u nobody)$(id -u nobody)" ] &&
        [ "$owners" = "$nobody 640 $nobody 660 " ]; then
        pass "--user nobody: capd runs as nobody; ring 0640 and viewers 0660 owned by it"
    else
        fail "--user nobody: uid fields '$uid', objects '$owners'"
    fi
    # A responder of another user in that group (as the web server would be) reads it.
    REQUEST_METHOD=GET QUERY_STRING='action=snapshot&cam=priv' \
        setpriv --reuid=54321 --regid="$(id -g nobody)" --clear-groups "$BUILD/capd.fcgi" \
        </dev/null >"$TMP/priv.cgi" 2>"$TMP/priv.err"
    sed '1,/^\r$/d' "$TMP/priv.cgi" >"$TMP/priv.jpg"
    if head -1 "$TMP/priv.cgi" | grep -q "Status: 200" &&
        ffprobe -v error -show_entries stream=width,height -of csv=p=0 "$TMP/priv.jpg" |
        grep -q '^160,120$'; then
        pass "a responder of another user in --group reads that capd's frames"
    else
        fail "responder in the group: $(head -1 "$TMP/priv.cgi") $(cat "$TMP/priv.err")"
    fi
    stop_with TERM "$CAPD_PID"
    [ "$RC" -eq 0 ] && [ ! -e "${SHM}priv" ] && [ ! -e "${SHM}priv.viewers" ] &&
        pass "--user: a clean stop still removes the objects" ||
        fail "--user: exit $RC, objects left: $(echo "${SHM}priv"*)"
else
    fail "--user nobody: capd did not start"
fi
if [ "$(id -u)" -eq 0 ]; then
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$BUILD/capd" --user root 2>&1)
    rc=$?
    [ "$rc" = 2 ] && grep -q -- "--user" <<<"$out" &&
        pass "--user without root: exit 2 naming the flag" || fail "--user without root: $rc $out"
fi
