#!/usr/bin/env bash
# test_sources.sh - capd's stdin and file sources end to end, read back through lighttpd.
#
# Frames that capd republishes untouched must reach the viewer byte for byte: every frame saved by
# streamcheck must have the MD5 of one of the input JPEGs. Bad, truncated and oversize input must
# be dropped and counted (the state endpoint's "drops") while the good frames keep flowing.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

SIZE=320x240
IN=$TMP/in

# Succeeds while process $1 runs (exists and has not exited into a zombie).
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# wait_exit PID SECONDS: reaps a child that should end by itself; kills it after SECONDS. Sets RC.
wait_exit() {
    local pid=$1
    for _ in $(seq $(($2 * 20))); do
        running "$pid" || break
        sleep 0.05
    done
    running "$pid" && kill -KILL "$pid"
    wait "$pid"
    RC=$?
}

# background OUT CMD...: runs a shell function or command with stdout to OUT (opened in the
# background, as OUT may be a FIFO without a reader yet) in a tracked subshell that drops lib.sh's
# EXIT trap (a subshell killed by the cleanup must not run the cleanup itself). Sets BG_PID.
background() {
    local out=$1
    shift
    (
        trap - EXIT
        exec >"$out" 2>/dev/null
        "$@"
    ) &
    BG_PID=$!
    track "$BG_PID"
}

# feed_files ROUNDS DELAY FILE...: writes the files to stdout in order, ROUNDS times, pausing
# DELAY seconds after each, like a camera writing one JPEG per frame.
feed_files() {
    local rounds=$1 delay=$2 f
    shift 2
    for _ in $(seq "$rounds"); do
        for f in "$@"; do
            cat "$f" || return
            sleep "$delay"
        done
    done
}

# start_stdin_capd NAME INPUT [capd flags...]: capd --source stdin reading INPUT (a file or a
# FIFO; lib.sh's start_capd gives background jobs /dev/null as stdin). Sets CAPD_PID.
start_stdin_capd() {
    local name=$1 input=$2
    shift 2
    "$BUILD/capd" --name "$name" --source stdin "$@" <"$input" >>"$TMP/capd-$name.log" 2>&1 &
    CAPD_PID=$!
    track "$CAPD_PID"
    if ! wait_for 10 ring_exists "$name"; then
        echo "    capd did not start:" && sed 's/^/    /' "$TMP/capd-$name.log"
        return 1
    fi
}

# stream NAME FRAMES DIR [streamcheck flags...]: reads FRAMES frames of camera NAME through
# lighttpd, saving them in DIR. Sets SC_RC and SUMMARY.
stream() {
    local name=$1 frames=$2 dir=$3
    shift 3
    rm -rf "$dir" && mkdir -p "$dir"
    SUMMARY=$("$STREAMCHECK" --quiet --frames "$frames" --timeout 10 --expect-size "$SIZE" \
        --save-frames "$dir" "$@" "$(url "/stream?cam=$name&parts=full")" 2>"$dir.err")
    SC_RC=$?
}

# stream_ok WHAT FRAMES: the last stream() delivered FRAMES live, valid frames of $SIZE.
stream_ok() {
    local what=$1 frames=$2
    if [ "$SC_RC" -eq 0 ] && [ "$(field live "$SUMMARY")" = "$frames" ] &&
        [ "$(field bad "$SUMMARY")" = 0 ] && [ "$(field sizes "$SUMMARY")" = "$SIZE" ]; then
        pass "$what: $frames valid $SIZE frames at $(field fps "$SUMMARY") fps"
    else
        fail "$what: streamcheck exit $SC_RC: $SUMMARY $(tr '\n' ' ' <"$3.err" 2>/dev/null)"
    fi
}

# frames_match WHAT DIR MD5S...: every frame saved in DIR has one of the given MD5 sums. Sets
# DISTINCT to how many of them were seen.
frames_match() {
    local what=$1 dir=$2 f sum unknown=0 total=0
    shift 2
    local -A seen=() wanted=()
    for sum in "$@"; do wanted[$sum]=1; done
    for f in "$dir"/frame_*.jpg; do
        [ -e "$f" ] || continue
        total=$((total + 1))
        sum=$(md5sum <"$f" | cut -d' ' -f1)
        if [ -n "${wanted[$sum]:-}" ]; then
            seen[$sum]=1
        else
            unknown=$((unknown + 1))
            cp "$f" "$TMP/unknown-$(basename "$dir")-$(basename "$f")"
        fi
    done
    DISTINCT=${#seen[@]}
    if [ "$total" -gt 0 ] && [ "$unknown" -eq 0 ]; then
        pass "$what: all $total frames byte-identical to an input ($DISTINCT distinct inputs seen)"
    else
        fail "$what: $unknown of $total frames match no input (copies in $TMP/unknown-*)"
    fi
}

md5() { md5sum <"$1" | cut -d' ' -f1; }

# The numeric value of KEY for camera NAME in /state.
state_number() {
    curl -s --max-time 5 "$(url "/state?cam=$1")" | grep -o "\"$2\":[0-9.]*" | head -1 | cut -d: -f2
}
drops_at_least() { [ "$(state_number "$1" drops)" -ge "$2" ] 2>/dev/null; }

# stop_feeder_expect_eof WHAT FEEDER_PID CAPD_PID NAME: ends the input; capd must exit 0 saying so.
stop_feeder_expect_eof() {
    local what=$1 feeder=$2 capd=$3 log=$TMP/capd-$4.log
    kill -TERM "$feeder" 2>/dev/null
    wait_exit "$capd" 10
    if [ "$RC" -eq 0 ] && grep -q "end of input" "$log"; then
        pass "$what: capd exits 0 when its input ends ($(grep -o 'source ended.*' "$log"))"
    else
        fail "$what: capd exit $RC at the end of input: $(tail -3 "$log" | tr '\n' ' ')"
    fi
}

# ---- inputs ------------------------------------------------------------------------------------
mkdir -p "$IN"
if ! ffmpeg -v error -nostdin -f lavfi -i "testsrc=size=$SIZE:rate=5" -frames:v 6 -q:v 5 \
    "$IN/f%02d.jpg" || ! ffmpeg -v error -nostdin -f lavfi \
    -i "nullsrc=s=640x480,geq=random(1)*255:128:128" -frames:v 1 -q:v 1 "$IN/big.jpg"; then
    fail "ffmpeg could not make the input JPEGs"
    exit 1
fi
GOOD=("$IN"/f0[1-6].jpg)
GOOD_MD5=()
for f in "${GOOD[@]}"; do GOOD_MD5+=("$(md5 "$f")"); done
[ "$(printf '%s\n' "${GOOD_MD5[@]}" | sort -u | wc -l)" -eq 6 ] ||
    fail "the six input frames are not distinct"
# A JPEG cut in the middle of its entropy-coded data.
head -c $(($(stat -c %s "$IN/f03.jpg") / 2)) "$IN/f03.jpg" >"$IN/truncated.jpg"

if ! start_lighttpd "$ROOT/lighttpd.conf"; then
    fail "lighttpd did not start"
    exit 1
fi

# ---- stdin: ffmpeg's concatenated JPEGs and its multipart MJPEG ----------------------------------
for format in mjpeg mpjpeg; do
    name=ff-$format
    mkfifo "$TMP/$name.fifo"
    ffmpeg -v error -nostdin -re -f lavfi -i "testsrc=size=$SIZE:rate=15" -t 40 -q:v 5 \
        -f "$format" pipe:1 >"$TMP/$name.fifo" 2>>"$TMP/ffmpeg.log" &
    ffmpeg_pid=$!
    track "$ffmpeg_pid"
    if start_stdin_capd "$name" "$TMP/$name.fifo"; then
        stream "$name" 20 "$TMP/$name" --min-fps 8
        stream_ok "stdin from ffmpeg -f $format" 20 "$TMP/$name"
        stop_feeder_expect_eof "stdin from ffmpeg -f $format" "$ffmpeg_pid" "$CAPD_PID" "$name"
    else
        fail "stdin from ffmpeg -f $format: capd did not start"
    fi
done

# ---- stdin: republished byte for byte -----------------------------------------------------------
mkfifo "$TMP/exact.fifo"
background "$TMP/exact.fifo" feed_files 100 0.03 "${GOOD[@]}"
feeder=$BG_PID
if start_stdin_capd exact "$TMP/exact.fifo"; then
    stream exact 30 "$TMP/exact"
    stream_ok "stdin, a looped set of JPEG files" 30 "$TMP/exact"
    frames_match "stdin, a looped set of JPEG files" "$TMP/exact" "${GOOD_MD5[@]}"
    [ "$DISTINCT" -ge 3 ] || fail "stdin, a looped set of JPEG files: only $DISTINCT inputs seen"
    stop_feeder_expect_eof "stdin, a looped set of JPEG files" "$feeder" "$CAPD_PID" exact
else
    fail "stdin, a looped set of JPEG files: capd did not start"
fi

# ---- stdin: a truncated JPEG in the middle -------------------------------------------------------
mkfifo "$TMP/corrupt.fifo"
background "$TMP/corrupt.fifo" feed_files 100 0.03 "$IN/f01.jpg" "$IN/f02.jpg" \
    "$IN/truncated.jpg" "$IN/f04.jpg" "$IN/f05.jpg" "$IN/f06.jpg"
feeder=$BG_PID
if start_stdin_capd corrupt "$TMP/corrupt.fifo"; then
    if wait_for 10 drops_at_least corrupt 1; then
        pass "stdin with a truncated JPEG: /state counts \"drops\":$(state_number corrupt drops)"
    else
        fail "stdin with a truncated JPEG: /state shows drops=$(state_number corrupt drops)"
    fi
    stream corrupt 20 "$TMP/corrupt"
    stream_ok "stdin with a truncated JPEG, frames after it" 20 "$TMP/corrupt"
    frames_match "stdin with a truncated JPEG" "$TMP/corrupt" "${GOOD_MD5[0]}" "${GOOD_MD5[1]}" \
        "${GOOD_MD5[3]}" "${GOOD_MD5[4]}" "${GOOD_MD5[5]}"
    drops=$(state_number corrupt drops)
    frames=$(state_number corrupt frames)
    # Every sixth part is the bad one: the drops must keep pace with the frames, not stop at one.
    if running "$CAPD_PID" && [ "${drops:-0}" -ge 2 ] && [ "${frames:-0}" -ge $((drops * 4)) ]; then
        pass "stdin with a truncated JPEG: capd keeps going (frames=$frames drops=$drops)"
    else
        fail "stdin with a truncated JPEG: frames=$frames drops=$drops (capd stopped?)"
    fi
    stop_feeder_expect_eof "stdin with a truncated JPEG" "$feeder" "$CAPD_PID" corrupt
else
    fail "stdin with a truncated JPEG: capd did not start"
fi

# ---- stdin: end of input -------------------------------------------------------------------------
cat "${GOOD[@]}" >"$TMP/six.mjpeg"
timeout -k 2 10 "$BUILD/capd" --name eof --source stdin <"$TMP/six.mjpeg" >"$TMP/eof.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q "end of input" "$TMP/eof.log" &&
    grep -q "source ended after 6 frames" "$TMP/eof.log" &&
    [ ! -e "/dev/shm/${CAPD_SHM_PREFIX}eof" ]; then
    pass "stdin EOF after six JPEGs: exit 0, all 6 published, ring removed"
else
    fail "stdin EOF after six JPEGs: exit $rc: $(tr '\n' ' ' <"$TMP/eof.log")"
fi
timeout -k 2 10 "$BUILD/capd" --name eof --source stdin </dev/null >"$TMP/eof0.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q "end of input" "$TMP/eof0.log"; then
    pass "stdin EOF at once (/dev/null): exit 0"
else
    fail "stdin EOF at once (/dev/null): exit $rc: $(tr '\n' ' ' <"$TMP/eof0.log")"
fi

# ---- stdin: a frame larger than a slot -----------------------------------------------------------
mkfifo "$TMP/oversize.fifo"
background "$TMP/oversize.fifo" feed_files 100 0.03 "$IN/f01.jpg" "$IN/big.jpg" "$IN/f02.jpg" \
    "$IN/f03.jpg"
feeder=$BG_PID
if start_stdin_capd oversize "$TMP/oversize.fifo" --slot-size 64K; then
    if wait_for 10 drops_at_least oversize 1; then
        big=$(stat -c %s "$IN/big.jpg")
        pass "stdin, a $big-byte frame over --slot-size 64K: drops=$(state_number oversize drops)"
    else
        fail "stdin, a frame over --slot-size: /state shows drops=$(state_number oversize drops)"
    fi
    stream oversize 15 "$TMP/oversize"
    stream_ok "stdin, the frames that fit the slots" 15 "$TMP/oversize"
    frames_match "stdin, the frames that fit the slots" "$TMP/oversize" "${GOOD_MD5[@]:0:3}"
    stop_feeder_expect_eof "stdin with oversize frames" "$feeder" "$CAPD_PID" oversize
else
    fail "stdin with oversize frames: capd did not start"
fi

# ---- file: a folder, one file, a folder with a bad file, a file over the slot size --------------
mkdir -p "$TMP/three" "$TMP/mixed" "$TMP/bigdir"
cp "$IN/f01.jpg" "$TMP/three/a.jpg"
cp "$IN/f02.jpg" "$TMP/three/b.jpg"
cp "$IN/f03.jpg" "$TMP/three/c.jpeg"
if start_capd three --source "file:$TMP/three" --fps 10; then
    stream three 15 "$TMP/three.out" --min-fps 7
    stream_ok "file:FOLDER of 3 JPEGs at --fps 10" 15 "$TMP/three.out"
    fps=$(field fps "$SUMMARY")
    # Below 13 fps: paced by --fps, not by how fast the files can be read.
    if [ "${fps%%.*}" -lt 13 ] 2>/dev/null; then
        pass "file:FOLDER at --fps 10 is paced: $fps fps"
    else
        fail "file:FOLDER at --fps 10 delivered $fps fps"
    fi
    frames_match "file:FOLDER of 3 JPEGs" "$TMP/three.out" "${GOOD_MD5[@]:0:3}"
    if [ "$DISTINCT" -eq 3 ]; then
        pass "file:FOLDER: all three files were seen"
    else
        fail "file:FOLDER: only $DISTINCT of the 3 files were seen"
    fi
else
    fail "file:FOLDER: capd did not start"
fi

if start_capd one --source "file:$IN/f05.jpg" --fps 10; then
    stream one 5 "$TMP/one.out"
    stream_ok "file:ONE.jpg" 5 "$TMP/one.out"
    frames_match "file:ONE.jpg" "$TMP/one.out" "${GOOD_MD5[4]}"
else
    fail "file:ONE.jpg: capd did not start"
fi

cp "$IN/f01.jpg" "$TMP/mixed/a.jpg"
echo "this is not a JPEG" >"$TMP/mixed/bad.jpg"
cp "$IN/f02.jpg" "$TMP/mixed/c.jpg"
if start_capd mixed --source "file:$TMP/mixed" --fps 20; then
    stream mixed 10 "$TMP/mixed.out"
    stream_ok "file:FOLDER with a non-JPEG bad.jpg" 10 "$TMP/mixed.out"
    frames_match "file:FOLDER with a non-JPEG bad.jpg" "$TMP/mixed.out" "${GOOD_MD5[@]:0:2}"
    if drops_at_least mixed 2; then
        pass "file:FOLDER with a non-JPEG bad.jpg: /state drops=$(state_number mixed drops)"
    else
        fail "file:FOLDER with a non-JPEG bad.jpg: /state shows drops=$(state_number mixed drops)"
    fi
else
    fail "file:FOLDER with a non-JPEG bad.jpg: capd did not start"
fi

cp "$IN/f04.jpg" "$TMP/bigdir/a.jpg"
cp "$IN/big.jpg" "$TMP/bigdir/b.jpg"
if start_capd bigdir --source "file:$TMP/bigdir" --fps 20 --slot-size 64K; then
    stream bigdir 8 "$TMP/bigdir.out"
    stream_ok "file:FOLDER with a file over --slot-size" 8 "$TMP/bigdir.out"
    frames_match "file:FOLDER with a file over --slot-size" "$TMP/bigdir.out" "${GOOD_MD5[3]}"
    if drops_at_least bigdir 2; then
        pass "file:FOLDER with a file over --slot-size: /state drops=$(state_number bigdir drops)"
    else
        fail "file:FOLDER with a file over --slot-size: /state drops=$(state_number bigdir drops)"
    fi
else
    fail "file:FOLDER with a file over --slot-size: capd did not start"
fi
