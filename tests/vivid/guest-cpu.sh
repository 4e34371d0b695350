# guest-cpu.sh - capd's CPU capturing vivid, against the test pattern in the same VM (busybox sh).
#
# Run by /init instead of guest.sh when the kernel command line says capd_guest=cpu (that is
# bench/vivid_cpu.sh; make test-vivid never does). It measures, one after the other and with
# one viewer attached (capd.fcgi as a CGI program streaming to /dev/null):
#   vivid        capd --source /dev/video0 --format yuyv --size WxH --fps 60 --idle-stop 0
#                (60 asks for vivid's highest rate at that size; capd logs the one it got)
#   testpattern  capd --source testpattern --size WxH --fps <the rate vivid gave>
# and writes one "RESULT ..." line per window on fd 3 (and a readable line on the console):
# frames published and dropped (read from the ring header), capd's CPU time (all threads: the
# scheduler's nanoseconds from /proc/PID/task/*/schedstat, and utime+stime ticks as a cross-check),
# the viewer's, vivid's capture kthread's (the "camera", not capd) and the whole VM's busy time.
# Under TCG every number is inflated by emulation: compare within one VM, not with the host.
#
# Kernel command line knobs: capd_cpu_seconds=N (window, default 15), capd_cpu_warmup=N
# (default 3), capd_cpu_sizes=WxH,WxH (default 1280x720,1920x1080), capd_cpu_repeat=N (1).

export CAPD_SHM_PREFIX=cpu-
DEV=/dev/video0
HZ=100 # USER_HZ: what /proc/PID/stat counts in, 100 on x86
CAPD_PID=
VIEWER_PID=

note() { echo "guest-cpu: $*"; }
arg() {
    local v
    v=$(sed -n "s/.*\\bcapd_$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline)
    echo "${v:-$2}"
}
SECS=$(arg cpu_seconds 15)
WARM=$(arg cpu_warmup 3)
SIZES=$(arg cpu_sizes 1280x720,1920x1080 | tr , ' ')
REPEAT=$(arg cpu_repeat 1)

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# nanoseconds on a CPU, summed over the process's threads
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%.0f\n", n }'; }
# "published dropped" from the ring header: little-endian u64 at offsets 280 and 288 (ring.h)
ring_counts() {
    od -A n -t u1 -j 280 -N 16 "/dev/shm/$CAPD_SHM_PREFIX$1" | tr -s ' \n' '  ' | awk '{
        p = 0; d = 0
        for (i = 8; i >= 1; i--) p = p * 256 + $i
        for (i = 16; i >= 9; i--) d = d * 256 + $i
        print p, d }'
}
ring_viewers() { od -A n -t u1 -j 300 -N 1 "/dev/shm/$CAPD_SHM_PREFIX$1" | tr -d ' '; }
# busy and total jiffies of the whole VM (all cpus), from /proc/stat
vm_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# pid of vivid's capture thread (a kernel thread named vivid-000-vid-cap), or empty
vivid_thread() {
    local p
    for p in /proc/[0-9]*; do
        case $(cat "$p/comm" 2>/dev/null) in
        vivid-*cap*)
            echo "${p#/proc/}"
            return
            ;;
        esac
    done
}

stop_all() {
    local pid i
    for pid in $VIEWER_PID $CAPD_PID; do
        kill -TERM "$pid" 2>/dev/null
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    CAPD_PID='' VIEWER_PID=''
}

# start NAME ARGS...: capd (log /tmp/capd-NAME.log) and its viewer; status 1 when capd fails.
start() {
    local name=$1 i=0
    shift
    capd --name "$name" -v "$@" >"/tmp/capd-$name.log" 2>&1 &
    CAPD_PID=$!
    while [ ! -e "/dev/shm/$CAPD_SHM_PREFIX$name.viewers" ]; do
        i=$((i + 1))
        if ! kill -0 "$CAPD_PID" 2>/dev/null || [ $i -ge 100 ]; then
            note "capd $* did not start: $(tail -3 "/tmp/capd-$name.log" | tr '\n' ' ')"
            stop_all
            return 1
        fi
        sleep 0.1
    done
    env GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=GET SCRIPT_NAME=/cgi-bin/capd.cgi \
        QUERY_STRING="action=stream&cam=$name&seconds=$((WARM + SECS + 30))" \
        capd.fcgi </dev/null >/dev/null 2>"/tmp/viewer-$name.err" &
    VIEWER_PID=$!
}

# measure SOURCE NAME SIZE FPS_ASKED RUN: the window; one RESULT line on fd 3.
measure() {
    local source=$1 name=$2 size=$3 asked=$4 run=$5 kt t0 t1 c0 c1 v0 v1 k0=0 k1=0 f0 d0 f1 d1
    local b0 n0 b1 n1 viewers line x0 x1 y0 y1 z0=0 z1=0
    sleep "$WARM"
    viewers=$(ring_viewers "$name")
    kt=
    [ "$source" = vivid ] && kt=$(vivid_thread)
    t0=$(uptime_s)
    x0=$(cpu_ns "$CAPD_PID")
    y0=$(cpu_ns "$VIEWER_PID")
    [ -n "$kt" ] && z0=$(cpu_ns "$kt")
    c0=$(ticks "$CAPD_PID")
    v0=$(ticks "$VIEWER_PID")
    [ -n "$kt" ] && k0=$(ticks "$kt")
    read -r f0 d0 <<EOF
$(ring_counts "$name")
EOF
    read -r b0 n0 <<EOF
$(vm_busy)
EOF
    sleep "$SECS"
    t1=$(uptime_s)
    x1=$(cpu_ns "$CAPD_PID")
    y1=$(cpu_ns "$VIEWER_PID")
    [ -n "$kt" ] && z1=$(cpu_ns "$kt")
    c1=$(ticks "$CAPD_PID")
    v1=$(ticks "$VIEWER_PID")
    [ -n "$kt" ] && k1=$(ticks "$kt")
    read -r f1 d1 <<EOF
$(ring_counts "$name")
EOF
    read -r b1 n1 <<EOF
$(vm_busy)
EOF
    line=$(awk -v src="$source" -v size="$size" -v asked="$asked" -v run="$run" -v t0="$t0" -v t1="$t1" \
        -v x=$((x1 - x0)) -v y=$((y1 - y0)) -v z=$((z1 - z0)) \
        -v c=$((c1 - c0)) -v v=$((v1 - v0)) -v k=$((k1 - k0)) -v f=$((f1 - f0)) -v d=$((d1 - d0)) \
        -v b=$((b1 - b0)) -v n=$((n1 - n0)) -v hz=$HZ -v viewers="$viewers" \
        -v chosen="$(grep -m1 'capture:' "/tmp/capd-$name.log" | sed 's/.*capture: *//')" 'BEGIN {
        s = t1 - t0
        fps = f / s; cpu = x / 1e7 / s; us = f ? x / 1e3 / f : 0; tus = f ? 1e6 * c / hz / f : 0
        printf "RESULT source=%s size=%s fps_asked=%s run=%d seconds=%.2f frames=%d dropped=%d fps=%.2f capd_cpu_pct=%.1f capd_us_per_frame=%.0f capd_us_per_frame_ticks=%.0f viewer_cpu_pct=%.1f vivid_kthread_cpu_pct=%.1f vivid_kthread_cpu_pct_ticks=%.1f vm_busy_pct=%.1f viewers=%s capture=\"%s\"\n",
            src, size, asked, run, s, f, d, fps, cpu, us, tus, y / 1e7 / s, z / 1e7 / s,
            100 * k / hz / s, n ? 100 * b / n : 0, viewers, chosen
    }')
    echo "$line"
    echo "$line" >&3
}

# One size: vivid at its highest rate, then the test pattern at that rate.
run_size() {
    local size=$1 run=$2 chosen got rate i=0
    if start "vivid$run" --source "$DEV" --format yuyv --size "$size" --fps 60 --idle-stop 0; then
        while ! grep -q 'capture:' "/tmp/capd-vivid$run.log" && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        chosen=$(grep -m1 'capture:' "/tmp/capd-vivid$run.log" | sed 's/.*capture: *//')
        got=$(echo "$chosen" | awk '{ print $1 }')
        rate=$(echo "$chosen" | sed -n 's/.* @ \([0-9.]*\) fps.*/\1/p')
        note "vivid at $size: capture: $chosen"
        if [ "$got" != "$size" ]; then
            echo "RESULT source=vivid size=$size unavailable=1 capture=\"$chosen\"" >&3
            stop_all
            return
        fi
        measure vivid "vivid$run" "$size" 60 "$run"
        tail -4 "/tmp/capd-vivid$run.log" | sed 's/^/  capd[vivid]: /'
        stop_all
    else
        echo "RESULT source=vivid size=$size failed=1" >&3
        return
    fi
    rate=$(awk -v r="$rate" 'BEGIN { r = int(r + 0.5); print r < 1 ? 1 : r }')
    if start "pattern$run" --source testpattern --size "$size" --fps "$rate"; then
        measure testpattern "pattern$run" "$size" "$rate" "$run"
        stop_all
    fi
}

note "cpu measurement: sizes $SIZES, ${WARM} s warm-up, ${SECS} s windows, $REPEAT run(s), $(nproc) vCPUs"
grep -m1 'model name' /proc/cpuinfo | sed 's/^/guest-cpu: /'
capd --list --source "$DEV" 2>&1 | grep -A12 'YUYV' | head -14 | sed 's/^/  list: /'
run=1
while [ "$run" -le "$REPEAT" ]; do
    for size in $SIZES; do
        run_size "$size" "$run"
    done
    run=$((run + 1))
done
