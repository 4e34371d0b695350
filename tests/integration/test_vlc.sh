#!/usr/bin/env bash
# test_vlc.sh - VLC (cvlc, dummy interface, no display) decodes capd's MJPEG from lighttpd and
# from Apache (mod_proxy_fcgi), at the URLs VLC users type.
#
# VLC's scene video filter writes every picture it decoded as a PNG (--scene-ratio=1) while the
# dummy video output shows nothing. Each run must end on its own when the server ends the stream
# (VAPIX duration=3, seconds=3: --run-time does not stop a live MJPEG stream, whose pictures carry
# no timestamps), within a timeout. Checked per run: VLC's exit status, at least 10 distinct
# pictures, the decoded picture size VLC reports (its -vv log: "vsz 320x240"), PNGs of the size of
# VLC's picture buffer, and the colour bars of capd's test pattern in them.
#
# VLC refuses to run as root: as root it runs as nobody (setpriv), with a HOME of its own in $TMP.
# Needs vlc-bin and vlc-plugin-base (Debian 12: scene, vdummy, mjpeg demux, avcodec decoder, png).
. "$(dirname "$0")/lib.sh"

VLC=$(command -v cvlc || command -v vlc || true)
MODULES=/usr/lib/apache2/modules
APACHE=$(command -v apache2 || echo /usr/sbin/apache2)
SRV=$TMP/srv
SOCKET=$SRV/run/capd-fcgi.sock
MIN_PICTURES=10

# ---- requirements: a clear FAIL, never a silent skip ---------------------------------------
if [ -z "$VLC" ]; then
    fail "required: cvlc (apt-get install --no-install-recommends vlc-bin vlc-plugin-base)"
    exit
fi
for need in "$APACHE" "$MODULES"/mod_{mpm_event,authz_core,mime,dir,alias,env,proxy,proxy_fcgi}.so; do
    [ -e "$need" ] || { fail "required: $need (apt-get install apache2)" && exit; }
done
command -v ffprobe >/dev/null && command -v ffmpeg >/dev/null || { fail "required: ffmpeg, ffprobe" && exit; }

as_vlc_user=()
capd_group=()
as_server_user=()
server_user=""
if [ "$(id -u)" = 0 ]; then
    if ! id nobody >/dev/null 2>&1 || ! id www-data >/dev/null 2>&1 || ! command -v setpriv >/dev/null; then
        fail "running as root needs the users nobody and www-data, and setpriv (util-linux)"
        exit
    fi
    as_vlc_user=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
    # Apache serves as www-data (see test_apache.sh): capd hands its ring to that group, and
    # $TMP is the group's (sanitizer logs) and can be crossed by nobody (VLC's own folder).
    server_user=www-data
    capd_group=(--group www-data)
    as_server_user=(setpriv --reuid=www-data --regid=www-data --init-groups)
    chgrp www-data "$TMP" && chmod 0771 "$TMP"
fi
mkdir -p "$TMP/vlc/home"
[ "$(id -u)" = 0 ] && chown -R nobody: "$TMP/vlc"

# run_vlc ARGS...: VLC as an unprivileged user, with a clean environment (no display, no session
# bus, no sound server), at most 15 s.
run_vlc() {
    env -i PATH="$PATH" HOME="$TMP/vlc/home" LANG=C.UTF-8 \
        timeout -k 2 15 "${as_vlc_user[@]}" "$VLC" "$@"
}

out=$(run_vlc --version 2>&1) && version=$(head -1 <<<"$out") && [[ $version == VLC* ]] ||
    { fail "VLC runs headless: $(tail -3 <<<"$out" | tr '\n' ' ')" && exit; }
pass "$version runs headless as $( [ -n "${as_vlc_user[*]}" ] && echo nobody || id -un)"

start_capd default --source testpattern --size 320x240 --fps 15 "${capd_group[@]}" ||
    { fail "capd starts"; exit; }

# watch NAME URL: VLC plays URL until the server ends it, every picture into $TMP/vlc/NAME/.
watch() {
    local name=$1 link=$2 dir=$TMP/vlc/$1 start rc
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown nobody: "$dir"
    start=$(date +%s.%N)
    # -vv: the decoder's picture format ("original format sz ... vsz ...") is a debug line.
    # --avcodec-hw=none: pictures in memory (no VA-API); no late picture is dropped.
    run_vlc -I dummy -vv --aout=dummy --vout=dummy --avcodec-hw=none --no-media-library --no-dbus \
        --network-caching=300 --no-drop-late-frames --no-skip-frames \
        --video-filter=scene --scene-format=png --scene-ratio=1 --scene-prefix=frame \
        --scene-path="$dir" --play-and-exit "$link" >"$dir.log" 2>&1
    rc=$?
    WATCH_SECONDS=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    return "$rc"
}

# check NAME WHAT: what `watch NAME` left, as PASS/FAIL lines about WHAT.
check() {
    local name=$1 what=$2 dir=$TMP/vlc/$1 n distinct format sz vsz dims colours
    n=$(find "$dir" -name 'frame*.png' | wc -l)
    distinct=$(md5sum "$dir"/frame*.png 2>/dev/null | awk '{ print $1 }' | sort -u | wc -l)
    # The last picture format the video output was opened with (the first one may be a
    # hardware surface that VLC gives up on).
    format=$(grep 'main video output debug: original format sz' "$dir.log" | tail -1)
    sz=$(sed -n 's/.*original format sz \([0-9]*x[0-9]*\),.*/\1/p' <<<"$format")
    vsz=$(sed -n 's/.* vsz \([0-9]*x[0-9]*\),.*/\1/p' <<<"$format")
    echo "    $what: $n pictures ($distinct distinct) in $WATCH_SECONDS s; VLC's format: ${format#*debug: }"
    if [ "$distinct" -ge "$MIN_PICTURES" ]; then
        pass "$what: VLC decoded $distinct distinct pictures in $WATCH_SECONDS s (source 15 fps)"
    else
        fail "$what: VLC decoded $distinct distinct pictures ($n written), at least $MIN_PICTURES expected; $(grep -E 'error|http stream' "$dir.log" | grep -v -E 'filter error|audio output|interface' | tail -3 | tr '\n' ' ')"
        return
    fi
    [ "$vsz" = 320x240 ] && pass "$what: VLC's decoded pictures are 320x240" ||
        fail "$what: VLC's decoded picture size: '$vsz' ($format)"
    # The scene filter writes the whole picture buffer (the decoder aligns its height: 256 lines
    # for 240), scaled from the visible 320x240: same width, the buffer's height.
    dims=$(ffprobe -v error -select_streams v -show_entries stream=width,height -of csv=p=0:s=x \
        "$(find "$dir" -name 'frame*.png' | sort | tail -1)")
    [ -n "$sz" ] && [ "$dims" = "$sz" ] && [ "${dims%x*}" = 320 ] &&
        pass "$what: the PNGs VLC wrote are ${dims} (its picture buffer for 320x240)" ||
        fail "$what: PNG size $dims, VLC's buffer $sz"
    # Row 20 of each picture crosses the colour bars: the first is grey (191,191,191), the last
    # blue (0,0,191). Each is sampled at a fifth and at four fifths of its width, further apart
    # than the sweeping white bar is wide: one of the two shows the bar's colour.
    colours=$(ffmpeg -v error -i "$dir/frame%05d.png" -vf "crop=iw:1:0:20" -f rawvideo -pix_fmt rgb24 - |
        od -An -v -tu1 -w$((3 * ${dims%x*})) |
        awk -v w="${dims%x*}" '
            function near(x, r, g, b) {
                x = 3 * int(x)
                return $(x + 1) >= r - 40 && $(x + 1) <= r + 40 && $(x + 2) >= g - 40 &&
                    $(x + 2) <= g + 40 && $(x + 3) >= b - 40 && $(x + 3) <= b + 40
            }
            { bar = w / 7
              total++
              if ((near(bar / 5, 191, 191, 191) || near(bar * 4 / 5, 191, 191, 191)) &&
                  (near(6 * bar + bar / 5, 0, 0, 191) || near(6 * bar + bar * 4 / 5, 0, 0, 191))) good++ }
            END { printf "%d %d", good, total }')
    if [ "${colours#* }" -gt 0 ] && [ "${colours% *}" = "${colours#* }" ]; then
        pass "$what: every picture shows the test pattern's grey and blue bars (${colours#* } pictures)"
    else
        fail "$what: the test pattern's bars in ${colours% *} of ${colours#* } pictures"
    fi
}

# run NAME WHAT URL: watch, then check.
run() {
    local name=$1 what=$2 link=$3
    if watch "$name" "$link"; then
        pass "$what: VLC played to the end of the stream and exited (status 0, $WATCH_SECONDS s)"
    else
        fail "$what: VLC exited with status $? after $WATCH_SECONDS s$(grep -q 'end of playlist' "$TMP/vlc/$name.log" || echo ' (it never reached the end)')"
    fi
    check "$name" "$what"
}

# ============================ lighttpd =====================================================
if start_lighttpd; then
    run lighttpd-vapix "lighttpd /axis-cgi/mjpg/video.cgi?duration=3" "$(url '/axis-cgi/mjpg/video.cgi?duration=3')"
    run lighttpd-stream "lighttpd /stream?seconds=3" "$(url '/stream?seconds=3')"
else
    fail "lighttpd starts"
fi

# ============================ Apache, mod_proxy_fcgi =======================================
# What test_apache.sh does for this mode, reduced: a ServerRoot in $SRV with
# deploy/apache/capd-proxy-fcgi.conf included unchanged, and the responder on its socket.
mkdir -p "$SRV"/{run,logs,htdocs}
[ -n "$server_user" ] && chown "$server_user:" "$SRV/run"
"${as_server_user[@]}" "$BUILD/capd.fcgi" --listen "unix:$SOCKET" >>"$SRV/logs/responder.log" 2>&1 &
track $!
wait_for 10 test -S "$SOCKET" || fail "proxy-fcgi: the responder listens on $SOCKET"
apache_started=""
for _ in 1 2 3; do
    PORT=$(free_port)
    {
        cat <<EOF
ServerRoot "$SRV"
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile "$SRV/run/apache.pid"
DefaultRuntimeDir "$SRV/run"
Mutex file:$SRV/run default
ErrorLog "$SRV/logs/error.log"
LogLevel warn
EOF
        for m in mpm_event authz_core mime dir alias env proxy proxy_fcgi; do
            echo "LoadModule ${m}_module $MODULES/mod_$m.so"
        done
        [ -n "$server_user" ] && printf 'User %s\nGroup %s\n' "$server_user" "$server_user"
        cat <<EOF
TypesConfig /etc/mime.types
DocumentRoot "$SRV/htdocs"
Include "$ROOT/deploy/apache/capd-mpm-event.conf"
Define CAPD_SOCKET "$SOCKET"
Define CAPD_WWW "$ROOT/www"
Include "$ROOT/deploy/apache/capd-proxy-fcgi.conf"
EOF
    } >"$SRV/apache.conf"
    "$APACHE" -d "$SRV" -f "$SRV/apache.conf" -DFOREGROUND >>"$SRV/logs/stdout.log" 2>&1 &
    apache_pid=$!
    track "$apache_pid"
    if wait_for 10 port_open "$PORT"; then
        apache_started=1
        break
    fi
    kill "$apache_pid" 2>/dev/null
    wait "$apache_pid" 2>/dev/null
    grep -q "Address already in use" "$SRV/logs/stdout.log" || break
done
if [ -n "$apache_started" ]; then
    run apache-vapix "Apache proxy_fcgi /axis-cgi/mjpg/video.cgi?duration=3" \
        "$(url '/axis-cgi/mjpg/video.cgi?duration=3')"
    run apache-action "Apache proxy_fcgi /?action=stream&seconds=3" "$(url '/?action=stream&seconds=3')"
else
    fail "proxy-fcgi: apache2 starts: $(tail -5 "$SRV"/logs/*.log | tr '\n' ' ')"
fi
