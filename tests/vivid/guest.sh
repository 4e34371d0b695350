# guest.sh - the V4L2 test cases, run by /init inside the vivid VM (busybox sh); verdicts on fd 3.
#
# Each case prints one "PASS what" or "FAIL what: why" line on fd 3 (the host relays them to
# tests/run.sh) and its details on stdout/stderr (the VM console, shown by the host on failure).
# The binaries are the build's own, in /capd: capd, capd.fcgi, ringcheck, v4l2tool and
# mjpeg_fixtures.
# vivid is loaded with one capture node, /dev/video0 (webcam input: 640x480 at 25 fps).

export CAPD_SHM_PREFIX=vm-
# For a sanitizer build: reports go to files, which the end of this script turns into FAILs.
export ASAN_OPTIONS=log_path=/tmp/asan:detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=log_path=/tmp/asan
export UBSAN_OPTIONS=log_path=/tmp/ubsan:print_stacktrace=1:halt_on_error=1
DEV=/dev/video0
CAPD_PID=

pass() { echo "PASS $*" >&3; }
fail() { echo "FAIL $*" >&3; }
note() { echo "guest: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
# ms between two uptime readings
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
# The value of KEY in a ringcheck summary line.
field() { echo "$2" | sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p"; }
# 1 if a > b (decimal numbers), else 0
greater() { awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 > b + 0) ? 1 : 0 }'; }

# start_capd WHAT NAME ARGS...: capd in the background, log in /tmp/capd-NAME.log, sets
# CAPD_PID; waits for its ring. When capd exits or makes no ring within 10 s: a FAIL line
# for WHAT with capd's last words, and status 1.
start_capd() {
    local what=$1 name=$2 i=0
    shift 2
    capd --name "$name" "$@" >"/tmp/capd-$name.log" 2>&1 &
    CAPD_PID=$!
    CAPD_NAME=$name
    while [ ! -e "/dev/shm/$CAPD_SHM_PREFIX$name" ]; do
        i=$((i + 1))
        if ! alive || [ $i -ge 100 ]; then
            fail "$what: capd $* did not start: $(tail -2 "/tmp/capd-$name.log" | tr '\n' ' ')"
            stop_capd
            return 1
        fi
        sleep 0.1
    done
}

# stop_capd: SIGTERM, then SIGKILL after 5 s; prints capd's log on the console.
stop_capd() {
    local i=0
    [ -n "$CAPD_PID" ] || return 0
    kill -TERM "$CAPD_PID" 2>/dev/null
    while kill -0 "$CAPD_PID" 2>/dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$CAPD_PID" 2>/dev/null
    wait "$CAPD_PID" 2>/dev/null
    sed "s/^/  capd[$CAPD_NAME]: /" "/tmp/capd-$CAPD_NAME.log" | tail -20
    CAPD_PID=
}

alive() { kill -0 "$CAPD_PID" 2>/dev/null; }

# The V4L2 device nodes a process holds open.
video_fds() {
    local fd
    for fd in "/proc/$1/fd"/*; do
        readlink "$fd"
    done 2>/dev/null | grep '^/dev/video' | sort -u | xargs
}

# What capd logged about its choice ("capture: 640x480 YUYV @ 25 fps").
capture_line() { grep -m1 'capture:' "/tmp/capd-$1.log" | sed 's/.*capture: *//'; }

# rc_run ARGS...: runs ringcheck, summary in RC_LINE, status in RC_STATUS, stderr shown.
rc_run() {
    RC_LINE=$(ringcheck "$@" 2>/tmp/ringcheck.err)
    RC_STATUS=$?
    note "ringcheck $*: status $RC_STATUS: $RC_LINE $(cat /tmp/ringcheck.err)"
}

load_vivid() {
    insmod /lib/modules/vivid.ko n_devs=1 node_types=0x1
}

# ---- capd --list ------------------------------------------------------------------------------
case_list() {
    local out rc missing=""
    out=$(timeout 20 capd --list 2>&1)
    rc=$?
    echo "$out" >/tmp/list.txt
    # The whole list is some 600 lines (vivid has 83 formats): show the head and the controls.
    { head -12 /tmp/list.txt; sed -n '/control/,$p' /tmp/list.txt | head -40; } | sed 's/^/  list: /'
    # vivid's webcam input: these formats, 640x480 at 25 fps, brightness with its range.
    grep -q '/dev/video0.*vivid' /tmp/list.txt || missing="$missing /dev/video0+vivid"
    for fourcc in YUYV NV12 GREY; do
        grep -qw "$fourcc" /tmp/list.txt || missing="$missing $fourcc"
    done
    grep -q '640x480.*25.*fps' /tmp/list.txt || missing="$missing '640x480 ... 25 ... fps'"
    grep -qi 'brightness.*255' /tmp/list.txt || missing="$missing 'brightness ... 255'"
    if [ "$rc" -eq 0 ] && [ -z "$missing" ]; then
        pass "capd --list names /dev/video0 (vivid), YUYV, NV12, GREY, 640x480 at 25 fps, brightness up to 255"
    else
        fail "capd --list: exit $rc, does not mention:$missing"
    fi
}

# ---- capture in one raw format ------------------------------------------------------------------
# case_capture FORMAT FOURCC: 25 frames of 640x480, each a valid JPEG of that size.
case_capture() {
    local format=$1 fourcc=$2 name="fmt-$1" what chosen fps running
    what="$fourcc 640x480 capture"
    start_capd "$what" "$name" --source "$DEV" --format "$format" --size 640x480 --fps 25 \
        --idle-stop 0 || return
    rc_run --name "$name" --frames 25 --timeout 30 --expect-size 640x480 --luma
    chosen=$(capture_line "$name")
    alive && running=1 || running=0
    stop_capd
    fps=$(field fps "$RC_LINE")
    if [ "$RC_STATUS" -ne 0 ] || [ "$(field live "$RC_LINE")" != 25 ]; then
        fail "$what: ringcheck status $RC_STATUS: $RC_LINE $(head -2 /tmp/ringcheck.err | tr '\n' ' ')"
    elif [ "$running" -ne 1 ]; then
        fail "$what: capd exited during the capture"
    elif ! echo "$chosen" | grep -q "640x480 $fourcc"; then
        fail "$what: capd did not log 'capture: 640x480 $fourcc ...' (logged: '$chosen')"
    elif [ "$(greater "$fps" 5)" -ne 1 ]; then
        fail "$what: only $fps fps through the ring (vivid sends 25)"
    else
        pass "$what: 25 valid 640x480 JPEGs via the ring at $fps fps (luma $(field luma_mean "$RC_LINE")), capd: '$chosen'"
    fi
}

# ---- --ctrl -------------------------------------------------------------------------------------
# mean_luma VALUE: the mean luma of 10 frames captured with --ctrl brightness=VALUE, in LUMA.
mean_luma() {
    start_capd "--ctrl brightness=$1" "bright$1" --source "$DEV" --format yuyv --size 640x480 \
        --idle-stop 0 --ctrl "brightness=$1" || return 2
    rc_run --name "bright$1" --live 10 --timeout 30 --luma
    stop_capd
    LUMA=$(field luma_mean "$RC_LINE")
    [ "$RC_STATUS" -eq 0 ] && [ -n "$LUMA" ] && [ "$LUMA" != - ]
}

case_ctrl() {
    local out rc low high
    for bad in nosuchcontrol=1 brightness=bright; do
        out=$(timeout 10 capd --name badctrl --source "$DEV" --ctrl "$bad" 2>&1)
        rc=$?
        echo "$out" | sed 's/^/  capd[badctrl]: /'
        if [ "$rc" -eq 2 ] && echo "$out" | grep -q "${bad%%=*}"; then
            pass "capd --ctrl $bad: exit 2, $(echo "$out" | grep -m1 "${bad%%=*}")"
        else
            fail "capd --ctrl $bad: exit $rc (want 2 and a message naming ${bad%%=*}): $(echo "$out" | head -2 | tr '\n' ' ')"
        fi
    done
    for value in 0 255; do
        mean_luma $value
        case $? in
        0) ;;
        1)
            fail "--ctrl brightness=$value: no frames: $RC_LINE"
            return
            ;;
        *) return ;; # start_capd said why
        esac
        [ $value = 0 ] && low=$LUMA
    done
    high=$LUMA
    if [ "$(greater "$high" "$(awk -v l="$low" 'BEGIN { print l + 40 }')")" -eq 1 ]; then
        pass "--ctrl brightness: mean luma $low at 0, $high at 255"
    else
        fail "--ctrl brightness has no visible effect: mean luma $low at 0, $high at 255"
    fi
}

# ---- unplug and replug --------------------------------------------------------------------------
# unplug_vivid WHAT: pulls the plug while capd streams; sets HOW. FAIL line and status 1 when
# vivid cannot be removed.
unplug_vivid() {
    local i=0 t0
    t0=$(up)
    # An open device holds a reference on vivid, so a plain rmmod is refused while capd
    # streams. vivid's Disconnect control is its USB unplug: the node goes away and every
    # call fails with ENODEV. Once capd has let go, rmmod goes through.
    if rmmod vivid 2>/dev/null; then
        HOW="rmmod vivid"
    else
        v4l2tool ctrl "$DEV" disconnect=1
        HOW="vivid's Disconnect control + rmmod vivid"
        until rmmod vivid 2>/dev/null; do
            i=$((i + 1))
            if [ $i -ge 50 ]; then
                fail "$1: rmmod vivid still refused 5 s after the disconnect (capd's video fds: $(video_fds "$CAPD_PID"))"
                return 1
            fi
            sleep 0.1
        done
    fi
    note "unplugged ($HOW) in $(ms_between "$t0" "$(up)") ms"
}

# case_unplug node|by-id: capture, unplug, NO SIGNAL cards, replug, live frames again. With
# by-id, capd is given a /dev/v4l/by-id/ link (made here, as udev would) and the camera comes
# back as /dev/video1, the link following it.
case_unplug() {
    local kind=$1 source=$DEV link what t0 t1 fds replug_params=
    what="unplug ($kind)"
    if [ "$kind" = by-id ]; then
        link=/dev/v4l/by-id/usb-capd_test_vivid-video-index0
        mkdir -p /dev/v4l/by-id
        ln -sf /dev/video0 "$link"
        source=$link
        replug_params="vid_cap_nr=1"
    fi
    start_capd "$what" unplug --source "$source" --format yuyv --size 640x480 --idle-stop 0 ||
        return
    rc_run --name unplug --live 5 --timeout 30
    if [ "$RC_STATUS" -ne 0 ]; then
        fail "$what: no live frames before the unplug: $RC_LINE"
        stop_capd
        return
    fi
    if ! unplug_vivid "$what"; then
        stop_capd
        rmmod vivid
        load_vivid
        return
    fi
    rc_run --name unplug --cards 2 --timeout 15
    if [ "$RC_STATUS" -eq 0 ] && alive && field states "$RC_LINE" | grep -q no-signal; then
        pass "$what, $HOW: capd keeps running, ring state no-signal, NO SIGNAL cards: $RC_LINE"
    else
        fail "$what, $HOW: want NO SIGNAL cards and state no-signal (capd alive: $(alive && echo yes || echo no)): $RC_LINE"
    fi
    t0=$(up)
    # shellcheck disable=SC2086 # module parameters
    insmod /lib/modules/vivid.ko n_devs=1 node_types=0x1 $replug_params
    [ "$kind" = by-id ] && ln -sf /dev/video1 "$link"
    rc_run --name unplug --live 5 --timeout 15 --expect-size 640x480
    t1=$(up)
    fds=$(video_fds "$CAPD_PID")
    if [ "$RC_STATUS" -ne 0 ] || ! alive || ! field states "$RC_LINE" | grep -q running; then
        fail "replug ($kind): no live frames again: $RC_LINE"
    elif [ "$kind" = by-id ] && [ "$fds" != "/dev/video1" ]; then
        fail "replug ($kind): live frames, but capd holds '$fds' instead of /dev/video1"
    elif [ "$kind" = by-id ]; then
        pass "replug as /dev/video1 with $link following it: live 640x480 frames from /dev/video1 $(ms_between "$t0" "$t1") ms later"
    else
        pass "replug (insmod vivid): live 640x480 frames again $(ms_between "$t0" "$t1") ms later"
    fi
    stop_capd
    if [ "$kind" = by-id ]; then # back to /dev/video0 for the cases that follow
        rm -rf /dev/v4l
        rmmod vivid && load_vivid
    fi
}

# ---- on demand ----------------------------------------------------------------------------------
case_on_demand() {
    local fds t0 snap_ms len
    start_capd "on demand" demand --source "$DEV" --format yuyv --size 640x480 \
        --idle-stop 2 || return
    rc_run --name demand --wait-state idle --timeout 15
    fds=$(video_fds "$CAPD_PID")
    if [ "$RC_STATUS" -eq 0 ] && [ -z "$fds" ] && alive; then
        pass "on demand: no viewer for 2 s: ring state idle, no /dev/video fd in /proc/PID/fd"
    else
        fail "on demand: want state idle and the device closed: $RC_LINE, video fds: '$fds'"
    fi

    # A viewer (ringcheck joins the presence object like a responder) wakes it up.
    ringcheck --name demand --viewer --live 40 --timeout 15 --expect-size 640x480 \
        >/tmp/viewer.out 2>/tmp/viewer.err &
    local viewer=$!
    sleep 1
    fds=$(video_fds "$CAPD_PID")
    wait "$viewer"
    RC_STATUS=$?
    RC_LINE=$(cat /tmp/viewer.out)
    note "viewer: status $RC_STATUS: $RC_LINE $(cat /tmp/viewer.err)"
    local first
    first=$(field first_live_ms "$RC_LINE")
    if [ "$RC_STATUS" -eq 0 ] && [ -n "$fds" ] && [ "$first" != - ] && [ "$first" -lt 1000 ]; then
        pass "on demand: a viewer arrives: device reopened ($fds), first live frame after $first ms"
    else
        fail "on demand: a viewer should get a live frame within 1000 ms: first_live_ms=$first, video fds while watching: '$fds', $RC_LINE"
    fi

    # The viewer left: idle again; then a snapshot through the responder (CGI) wakes it too.
    rc_run --name demand --wait-state idle --timeout 15
    fds=$(video_fds "$CAPD_PID")
    if [ "$RC_STATUS" -eq 0 ] && [ -z "$fds" ]; then
        pass "on demand: the viewer left: idle again with the device closed"
    else
        fail "on demand: after the viewer left, want idle and no device: $RC_LINE, fds '$fds'"
    fi
    t0=$(up)
    env GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET QUERY_STRING="action=snapshot&cam=demand" \
        SCRIPT_NAME=/cgi-bin/capd.cgi timeout 10 capd.fcgi </dev/null >/tmp/snap.cgi 2>/tmp/snap.err
    snap_ms=$(ms_between "$t0" "$(up)")
    len=$(sed -n 's/^Content-Length: \([0-9]*\).*/\1/p' /tmp/snap.cgi)
    if head -1 /tmp/snap.cgi | grep -q '^Status: 200' && [ -n "$len" ] && [ "$len" -gt 1000 ]; then
        pass "on demand: a CGI snapshot while idle: Status 200, a $len-byte JPEG after $snap_ms ms"
    else
        fail "on demand: CGI snapshot while idle: $(head -1 /tmp/snap.cgi) $(head -2 /tmp/snap.err | tr '\n' ' ')"
    fi
    stop_capd
}

# ---- MJPEG from a real driver: v4l2loopback ----------------------------------------------------
# mjpeg_session LABEL "FILES" RINGCHECK_ARGS...: v4l2tool feeds FILES in turn to /dev/video10
# as MJPEG, capd captures them with --format mjpeg, ringcheck checks 16 live frames in the ring.
# Status 0 when ringcheck was happy and capd chose MJPEG; FAIL lines are the caller's.
mjpeg_session() {
    local label=$1 files=$2 feeder i
    shift 2
    # shellcheck disable=SC2086 # a list of files
    v4l2tool feed /dev/video10 --fps 20 $files &
    feeder=$!
    # The producer must set the format before a consumer opens the device: until then
    # v4l2loopback (exclusive_caps=1) does not even call itself a capture device.
    i=0
    until v4l2tool caps /dev/video10 >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge 50 ] || ! kill -0 "$feeder" 2>/dev/null; then
            fail "MJPEG passthrough, $label: /dev/video10 never became a capture device"
            kill -TERM "$feeder" 2>/dev/null
            wait "$feeder" 2>/dev/null
            return 2
        fi
        sleep 0.1
    done
    if ! start_capd "MJPEG passthrough, $label" mjpeg --source /dev/video10 --format mjpeg \
        --size 640x480 --idle-stop 0; then
        kill -TERM "$feeder" 2>/dev/null
        wait "$feeder" 2>/dev/null
        return 2
    fi
    rc_run --name mjpeg --live 16 --timeout 20 --expect-size 640x480 "$@"
    CHOSEN=$(capture_line mjpeg)
    stop_capd
    kill -TERM "$feeder" 2>/dev/null
    wait "$feeder" 2>/dev/null
    [ "$RC_STATUS" -eq 0 ] && echo "$CHOSEN" | grep -q "MJPEG"
}

# mjpeg_case LABEL "FILES" RINGCHECK_ARGS...: one PASS/FAIL line for an mjpeg_session.
mjpeg_case() {
    local label=$1
    mjpeg_session "$@"
    case $? in
    0) pass "MJPEG passthrough (v4l2loopback), $label: $RC_LINE" ;;
    1) fail "MJPEG passthrough (v4l2loopback), $label: ringcheck status $RC_STATUS: $RC_LINE $(head -2 /tmp/ringcheck.err | tr '\n' ' ') capd: '$CHOSEN'" ;;
    esac
}

case_mjpeg() {
    local m mod out
    while read -r m; do
        mod=$(echo "${m%.ko}" | tr - _)
        grep -q "^$mod " /proc/modules && continue
        params=
        # max_buffers: its default of 2 is fewer than any real camera (and capd) uses.
        [ "$m" = v4l2loopback.ko ] &&
            params="video_nr=10 exclusive_caps=1 max_buffers=8 card_label=loopback"
        # shellcheck disable=SC2086 # module parameters
        if ! insmod "/lib/modules/$m" $params; then
            fail "MJPEG passthrough: insmod $m failed"
            return
        fi
    done </etc/loopback.modules
    # Checked by ringcheck alone: byte-identical, and "the same bytes plus a DHT".
    mjpeg_case "frames with DHT come out byte-identical" /fixtures/with-dht.jpg \
        --expect-file /fixtures/with-dht.jpg
    mjpeg_case "frames without DHT get the standard tables inserted, nothing else changed" \
        /fixtures/no-dht.jpg --expect-dht-inserted /fixtures/no-dht.jpg
    # Camera-like frames from mjpeg_fixtures (with DHT, without, UVC's AVI1 with restart
    # markers, padding after EOI), checked against the bytes it expects for each.
    rm -rf /tmp/mjpeg-saved
    mjpeg_session "mjpeg_fixtures frames" "$(ls /fixtures/camera/frame_*.jpg)" \
        --save /tmp/mjpeg-saved
    case $? in
    0)
        if out=$(mjpeg_fixtures --verify /fixtures/camera /tmp/mjpeg-saved 2>&1); then
            pass "MJPEG passthrough (v4l2loopback), camera-like frames (DHT, no DHT, AVI1 with restarts, padding) published as expected: $(echo "$out" | tail -1)"
        else
            fail "MJPEG passthrough (v4l2loopback), camera-like frames differ from the expected bytes: $(echo "$out" | tail -3 | tr '\n' ' ')"
        fi
        ;;
    1) fail "MJPEG passthrough (v4l2loopback), camera-like frames: ringcheck status $RC_STATUS: $RC_LINE $(head -2 /tmp/ringcheck.err | tr '\n' ' ') capd: '$CHOSEN'" ;;
    esac
}

note "cases start at $(up) s"
for c in list "capture yuyv YUYV" "capture nv12 NV12" "capture grey GREY" ctrl "unplug node" \
    "unplug by-id" on_demand mjpeg; do
    t=$(up)
    # shellcheck disable=SC2086 # the case name and its arguments
    set -- $c
    name=$1
    shift
    "case_$name" "$@"
    note "case $c took $(ms_between "$t" "$(up)") ms"
done

for report in /tmp/asan.* /tmp/ubsan.*; do
    [ -e "$report" ] || continue
    fail "sanitizer report $report: $(grep -m3 -E 'ERROR|runtime error|SUMMARY' "$report" | tr '\n' ' ')"
    sed 's/^/  sanitizer: /' "$report" | head -60
done
