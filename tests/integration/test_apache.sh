#!/usr/bin/env bash
# test_apache.sh - capd behind real Apache 2.4 (event MPM) with deploy/apache/: mod_proxy_fcgi, mod_fcgid, mod_cgid.
#
# Each mode runs apache2 from a ServerRoot in $TMP on a free loopback port, with a minimal main
# config that includes the shipped snippets unchanged (only paths are given with Define).
# As root, Apache runs its children (and the responders that mod_fcgid and mod_cgid start) as
# www-data, since it refuses to serve as root: capd then hands its rings to group www-data, the
# proxy_fcgi responder runs as www-data too, and $TMP becomes group-writable for sanitizer logs.
#
# Every mode is also checked with real clients (curl, ffmpeg, ffprobe); mod_proxy_fcgi also with
# the viewer page in Chromium (tests/browser/viewer_test.js with VIEWER_URL; VLC: test_vlc.sh).
#
# CAPD_APACHE_COMPARE=1 also measures the settings the snippets avoid (flushpackets off,
# mod_fcgid's default output buffer) and prints the latencies; they are not checked.
# CAPD_APACHE_MODES="cgid" runs only the modes named (proxy-fcgi fcgid cgid).
. "$(dirname "$0")/lib.sh"

MODULES=/usr/lib/apache2/modules
APACHE=$(command -v apache2 || echo /usr/sbin/apache2)
SRV=$TMP/srv
DEPLOY=$ROOT/deploy/apache
SOCKET=$SRV/run/capd-fcgi.sock

# ---- requirements: a clear FAIL, never a silent skip ---------------------------------------
missing=0
for need in "$APACHE" "$MODULES"/mod_{mpm_event,authz_core,authz_host,mime,dir,alias,env,status,filter,deflate}.so \
    "$MODULES"/mod_{proxy,proxy_fcgi,fcgid,cgid,actions}.so; do
    if [ ! -e "$need" ]; then
        fail "required: $need (apt-get install apache2 libapache2-mod-fcgid)"
        missing=1
    fi
done
for need in curl ffmpeg ffprobe; do
    command -v "$need" >/dev/null || { fail "required: $need (apt-get install curl ffmpeg)" && missing=1; }
done
[ "$missing" = 0 ] || exit

capd_group=()
as_server_user=()
server_user=""
if [ "$(id -u)" = 0 ]; then
    if ! id www-data >/dev/null 2>&1 || ! command -v setpriv >/dev/null; then
        fail "running as root needs the user www-data and setpriv (util-linux)"
        exit
    fi
    server_user=www-data
    capd_group=(--group www-data)
    as_server_user=(setpriv --reuid=www-data --regid=www-data --init-groups)
    chgrp www-data "$TMP" && chmod 0770 "$TMP"
fi

# What deploy/apache/README.md installs under /usr, here in $SRV.
mkdir -p "$SRV"/{bin,cgi-bin,run,logs,fcgid,htdocs}
install -m 755 "$BUILD/capd.fcgi" "$SRV/bin/capd.fcgi"
install -m 755 "$BUILD/capd.fcgi" "$SRV/cgi-bin/capd.cgi"
cp -r "$ROOT/www" "$SRV/www"
echo '<html><body>the site that was here before</body></html>' >"$SRV/htdocs/index.html"
[ -n "$server_user" ] && chown "$server_user:" "$SRV/run" "$SRV/fcgid"

start_capd default --size 320x240 --fps 30 "${capd_group[@]}" || { fail "capd starts"; exit; }
# 4 fps: a frame held back until the next one shows as 250 ms of latency.
start_capd slow --size 320x240 --fps 4 "${capd_group[@]}" || { fail "capd slow starts"; exit; }

# write_conf MODE SNIPPET: the main config (a minimal ServerRoot) that includes SNIPPET.
write_conf() {
    local mode=$1 snippet=$2 conf=$SRV/$1.conf
    {
        cat <<EOF
ServerRoot "$SRV"
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile "$SRV/run/$mode.pid"
DefaultRuntimeDir "$SRV/run"
Mutex file:$SRV/run default
ErrorLog "$SRV/logs/$mode-error.log"
LogLevel warn
LogFormat "%h %t \"%r\" %>s %B %D" capd
CustomLog "$SRV/logs/$mode-access.log" capd
EOF
        for m in mpm_event authz_core authz_host mime dir alias env status filter deflate; do
            echo "LoadModule ${m}_module $MODULES/mod_$m.so"
        done
        case $mode in
        proxy-fcgi*) echo "LoadModule proxy_module $MODULES/mod_proxy.so" &&
            echo "LoadModule proxy_fcgi_module $MODULES/mod_proxy_fcgi.so" ;;
        fcgid*) echo "LoadModule fcgid_module $MODULES/mod_fcgid.so" ;;
        cgid*) echo "LoadModule cgid_module $MODULES/mod_cgid.so" &&
            echo "LoadModule actions_module $MODULES/mod_actions.so" ;;
        esac
        [ -n "$server_user" ] && printf 'User %s\nGroup %s\n' "$server_user" "$server_user"
        cat <<EOF
TypesConfig /etc/mime.types
# A hostile neighbour: compress everything. The snippets must keep it off the streams.
SetOutputFilter DEFLATE
DocumentRoot "$SRV/htdocs"
DirectoryIndex index.html
<Directory "$SRV/htdocs">
    Require all granted
</Directory>
<Location "/server-status">
    SetHandler server-status
    Require ip 127.0.0.1
</Location>

Include "$DEPLOY/capd-mpm-event.conf"
# Smaller than the shipped sizes: 32 workers, 16 per process.
<IfModule mpm_event_module>
    ThreadsPerChild     16
    MaxRequestWorkers   32
    MinSpareThreads      8
    MaxSpareThreads     48
</IfModule>

Define CAPD_SOCKET "$SOCKET"
Define CAPD_BIN "$SRV/bin"
Define CAPD_CGI_DIR "$SRV/cgi-bin"
Define CAPD_WWW "$SRV/www"
Define CAPD_SHM_PREFIX "$CAPD_SHM_PREFIX"
EOF
        case $mode in
        fcgid*)
            echo "FcgidIPCDir \"$SRV/fcgid\""
            echo "FcgidProcessTableFile \"$SRV/fcgid/table\""
            for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS; do
                [ -n "${!v:-}" ] && echo "FcgidInitialEnv $v \"${!v}\""
            done
            ;;
        cgid*)
            echo "ScriptSock \"$SRV/run/cgid.sock\""
            echo "PassEnv ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS TSAN_OPTIONS"
            ;;
        esac
        # The snippet as a Debian admin would a2enconf it: at server level, applying to every
        # virtual host; a name-based virtual host (like 000-default) stands in for the site.
        echo "Include \"$snippet\""
        cat <<EOF
<VirtualHost 127.0.0.1:$PORT>
    ServerName localhost
    DocumentRoot "$SRV/htdocs"
</VirtualHost>
EOF
    } >"$conf"
}

# start_apache MODE SNIPPET: on a free port (a few tries: the port may be taken meanwhile).
start_apache() {
    local mode=$1 snippet=$2
    for _ in 1 2 3; do
        PORT=$(free_port)
        write_conf "$mode" "$snippet"
        "$APACHE" -d "$SRV" -f "$SRV/$mode.conf" -DFOREGROUND >>"$SRV/logs/$mode-stdout.log" 2>&1 &
        APACHE_PID=$!
        track "$APACHE_PID"
        for _ in $(seq 100); do
            port_open "$PORT" && return 0
            kill -0 "$APACHE_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill "$APACHE_PID" 2>/dev/null
        wait "$APACHE_PID" 2>/dev/null
        grep -q "Address already in use" "$SRV/logs/$mode-stdout.log" || break
    done
    echo "    apache2 did not start:" && sed 's/^/    /' "$SRV/logs/$mode"-*.log | tail -20
    return 1
}

stop_apache() {
    kill -TERM "$APACHE_PID" 2>/dev/null
    wait "$APACHE_PID" 2>/dev/null
}

# start_responder [flags]: capd.fcgi on its own socket, as the proxy_fcgi snippet expects.
start_responder() {
    rm -f "$SOCKET"
    "${as_server_user[@]}" "$SRV/bin/capd.fcgi" --listen "unix:$SOCKET" "$@" \
        >>"$SRV/logs/responder.log" 2>&1 &
    RESPONDER_PID=$!
    track "$RESPONDER_PID"
    wait_for 10 test -S "$SOCKET"
}

busy_workers() { curl -s --max-time 5 "$(url '/server-status?auto')" | sed -n 's/^BusyWorkers: //p'; }
state_field() { curl -s --max-time 5 "$(url "$1")" | sed -n "s/.*\"$2\":\\([0-9a-z]*\\).*/\\1/p"; }
status_of() { curl -s -o "$TMP/body" -w '%{http_code}' --max-time 5 "$@"; }

# check_clients MODE: the real clients of issue 5 receive and decode frames through this mode.
# ffmpeg must decode every frame it reads without one error line (-xerror would stop at one).
check_clients() {
    local mode=$1 n probe parts
    if ffmpeg -hide_banner -nostdin -loglevel error -i "$(url '/axis-cgi/mjpg/video.cgi?camera=default')" \
        -frames:v 30 -f framemd5 - >"$TMP/$mode-ffmpeg.md5" 2>"$TMP/$mode-ffmpeg.err" &&
        n=$(grep -c '^0,' "$TMP/$mode-ffmpeg.md5") && [ "$n" = 30 ] && [ ! -s "$TMP/$mode-ffmpeg.err" ]; then
        pass "$mode: ffmpeg decodes 30 frames of /axis-cgi/mjpg/video.cgi without an error"
    else
        fail "$mode: ffmpeg: $(grep -c '^0,' "$TMP/$mode-ffmpeg.md5") frames; $(head -3 "$TMP/$mode-ffmpeg.err" | tr '\n' ' ')"
    fi
    probe=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height \
        -of csv=p=0 "$(url '/?action=stream')" 2>&1)
    [ "$probe" = "mjpeg,320,240" ] && pass "$mode: ffprobe sees mjpeg 320x240 at /?action=stream" ||
        fail "$mode: ffprobe /?action=stream: $probe"
    # curl: a snapshot that ffmpeg decodes, and a 10-frame stream that ends by itself. ffmpeg's
    # mpjpeg demuxer calls the close delimiter ("--capdframe--", RFC 2046) invalid data: that
    # one line is allowed, any other is not.
    if [ "$(status_of "$(url '/?action=snapshot')")" = 200 ] &&
        [ "$(ffprobe -v error -show_entries stream=width,height -of csv=p=0 "$TMP/body" 2>&1)" = "320,240" ] &&
        ffmpeg -v error -nostdin -i "$TMP/body" -f null - 2>&1 | { ! grep -q .; }; then
        pass "$mode: curl saves a snapshot that ffmpeg decodes as 320x240"
    else
        fail "$mode: curl snapshot: $(file -b "$TMP/body" 2>/dev/null || head -c 80 "$TMP/body")"
    fi
    if curl -s --max-time 10 -o "$TMP/$mode-curl.mjpeg" "$(url '/stream?frames=10')" &&
        parts=$(LC_ALL=C grep -a -c '^Content-Type: image/jpeg' "$TMP/$mode-curl.mjpeg") && [ "$parts" = 10 ] &&
        n=$(ffmpeg -hide_banner -nostdin -loglevel error -f mpjpeg -i "$TMP/$mode-curl.mjpeg" -f framemd5 - \
            2>"$TMP/$mode-curl.err" | grep -c '^0,') && [ "$n" = 10 ] &&
        ! grep -v 'curl.mjpeg: Invalid data found when processing input$' "$TMP/$mode-curl.err" | grep -q .; then
        pass "$mode: curl receives /stream?frames=10 to its end; ffmpeg decodes the 10 parts"
    else
        fail "$mode: curl stream: ${parts:-?} parts, ${n:-?} decoded; $(head -2 "$TMP/$mode-curl.err" 2>/dev/null | tr '\n' ' ')"
    fi
}

# The checks every mode passes. $1: the mode's name, $2: the responder mode in /state.
check_mode() {
    local mode=$1 responder_mode=$2 i ok busy out p50 summary

    # ---- concurrent viewers at the source rate, and one on the 4 fps camera ----------------
    for i in 1 2 3 4; do
        "$STREAMCHECK" --seconds 4 --expect-size 320x240 --min-fps 22 "$(url /stream)" \
            >"$TMP/$mode-viewer$i.out" 2>&1 &
        viewer[i]=$!
    done
    "$STREAMCHECK" --seconds 4 --expect-size 320x240 "$(url '/stream?cam=slow')" \
        >"$TMP/$mode-slow.out" 2>&1 &
    viewer[5]=$!
    sleep 2.5
    busy=$(busy_workers)
    [ "$mode" = fcgid ] && procs=$(pgrep -c -f "^$SRV/bin/capd.fcgi" || true)
    ok=0
    for i in 1 2 3 4; do
        if wait "${viewer[i]}"; then
            ok=$((ok + 1))
        else
            echo "    viewer $i: $(cat "$TMP/$mode-viewer$i.out")"
        fi
    done
    summary=$(tail -1 "$TMP/$mode-viewer1.out")
    echo "    $mode viewer 1: $summary"
    [ "$ok" -eq 4 ] && pass "$mode: 4 concurrent viewers get valid 320x240 frames at >= 22 fps (source 30)" ||
        fail "$mode: only $ok of 4 viewers succeeded"
    # Each stream holds one worker thread (plus the one answering server-status).
    [ -n "$busy" ] && [ "$busy" -ge 6 ] && pass "$mode: each stream holds an Apache worker ($busy busy with 5 viewers)" ||
        fail "$mode: busy workers with 5 viewers: '${busy}'"
    if [ "$mode" = fcgid ]; then
        [ "${procs:-0}" -ge 5 ] && pass "fcgid: one responder process per viewer ($procs processes for 5 viewers)" ||
            fail "fcgid: $procs responder processes for 5 viewers"
    fi
    wait "${viewer[5]}"
    out=$(tail -1 "$TMP/$mode-slow.out")
    echo "    $mode 4 fps camera: $out"
    p50=$(field lat_p50_ms "$out")
    if [ "$(field bad "$out")" = 0 ] && awk -v l="$p50" 'BEGIN { exit !(l != "-" && l < 100) }'; then
        pass "$mode: frames leave at once, not with the next frame (latency p50 $p50 ms; a frame is 250 ms)"
    else
        fail "$mode: frames held back at 4 fps: $out"
    fi

    # ---- viewers that hang up free their worker threads ------------------------------------
    for i in 1 2 3; do
        curl -s --max-time 1 "$(url /stream)" -o /dev/null &
        viewer[i]=$!
    done
    wait "${viewer[1]}" "${viewer[2]}" "${viewer[3]}"
    if wait_for 8 bash -c "[ \"\$(curl -s '$(url '/server-status?auto')' | sed -n 's/^BusyWorkers: //p')\" = 1 ]"; then
        pass "$mode: viewers that hang up free their workers (busy back to 1)"
    else
        fail "$mode: busy workers after viewers left: $(busy_workers)"
    fi
    if wait_for 8 bash -c "curl -s '$(url /state)' | grep -q '\"name\":\"default\",[^}]*\"viewers\":0,'"; then
        pass "$mode: capd's viewer count returns to 0"
    else
        fail "$mode: viewer count: $(curl -s "$(url /state)")"
    fi

    # ---- snapshot, state, the other URL forms --------------------------------------------
    expect "$mode: /snapshot is a valid 320x240 JPEG" \
        "$STREAMCHECK" --expect-size 320x240 "$(url /snapshot)"
    state=$(curl -s --max-time 5 "$(url /state)")
    if grep -q '"name":"default","online":true,"state":"running"' <<<"$state" &&
        grep -q '"width":320,"height":240' <<<"$state" &&
        grep -q "\"mode\":\"$responder_mode\"" <<<"$state"; then
        pass "$mode: /state lists the camera online at 320x240, responder mode $responder_mode"
    else
        fail "$mode: /state: $state"
    fi
    expect "$mode: /?action=stream" "$STREAMCHECK" --frames 3 --expect-size 320x240 "$(url '/?action=stream')"
    expect "$mode: /?action=snapshot" "$STREAMCHECK" --expect-size 320x240 "$(url '/?action=snapshot')"
    [ "$(status_of "$(url '/?x=1&action=state')")" = 200 ] && grep -q '"ok":true,"result":{' "$TMP/body" &&
        pass "$mode: /?action=state (after another parameter)" || fail "$mode: /?action=state: $(head -c 200 "$TMP/body")"
    expect "$mode: /axis-cgi/mjpg/video.cgi" \
        "$STREAMCHECK" --frames 3 --expect-size 320x240 "$(url '/axis-cgi/mjpg/video.cgi?camera=default')"
    expect "$mode: /axis-cgi/jpg/image.cgi" "$STREAMCHECK" --expect-size 320x240 "$(url /axis-cgi/jpg/image.cgi)"
    [ "$(status_of "$(url /)")" = 200 ] && grep -q 'the site that was here before' "$TMP/body" &&
        [ "$(status_of "$(url '/?v=2')")" = 200 ] && grep -q 'the site that was here before' "$TMP/body" &&
        pass "$mode: a plain / (also with other parameters) stays the site's page" ||
        fail "$mode: / is not the site's page: $(head -c 200 "$TMP/body")"
    [ "$(status_of "$(url /camera/)")" = 200 ] && grep -qi '<html' "$TMP/body" &&
        [ "$(status_of "$(url /camera/viewer.js)")" = 200 ] &&
        expect "$mode: the viewer page at /camera/, its stream at /camera/stream" \
            "$STREAMCHECK" --frames 3 "$(url /camera/stream)" ||
        fail "$mode: viewer page: $(head -c 200 "$TMP/body")"

    # ---- a server that compresses everything leaves streams alone ----------------------------
    page=$(curl -s -D - -o /dev/null --compressed --max-time 5 "$(url /camera/viewer.js)")
    stream=$(curl -s -D - -o /dev/null --compressed --max-time 1 "$(url /stream)")
    if grep -qi '^Content-Encoding: gzip' <<<"$page" && ! grep -qi '^Content-Encoding' <<<"$stream" &&
        grep -qi '^Content-Type: multipart/x-mixed-replace' <<<"$stream"; then
        pass "$mode: with SetOutputFilter DEFLATE viewer.js is gzipped, the stream is not (no-gzip)"
    else
        fail "$mode: compression: page $(grep -i '^Content-Encoding' <<<"$page"), stream: $(tr '\r\n' '  ' <<<"$stream")"
    fi

    # ---- bad requests get capd's 4xx with a reason ---------------------------------------
    check_status "$mode: fps=abc" 400 "/stream?fps=abc"
    check_status "$mode: unknown camera" 404 "/snapshot?cam=nosuchcam"

    check_clients "$mode"
}

modes=" ${CAPD_APACHE_MODES:-proxy-fcgi fcgid cgid} "

# ============================ mod_proxy_fcgi ==============================================
if [[ $modes == *" proxy-fcgi "* ]]; then
start_responder --max-viewers 8 || fail "proxy-fcgi: the responder listens on $SOCKET"
if start_apache proxy-fcgi "$DEPLOY/capd-proxy-fcgi.conf"; then
    check_mode proxy-fcgi fastcgi
    expect "proxy-fcgi: /camera/?action=snapshot" "$STREAMCHECK" --expect-size 320x240 "$(url '/camera/?action=snapshot')"
    # The viewer page at /camera/ in Chromium (the checks that need no control over the server).
    run_viewer_test VIEWER_URL="$(url /camera/)" VIEWER_LABEL="proxy-fcgi: viewer page in Chromium"
    [ "$(state_field /state streams)" = 0 ] && pass "proxy-fcgi: the responder's streams back to 0" ||
        fail "proxy-fcgi: streams: $(curl -s "$(url /state)")"

    # The viewer cap below MaxRequestWorkers: the 9th viewer gets capd's 503, the rest still works.
    curls=()
    for i in $(seq 8); do
        curl -s --max-time 3 "$(url /stream)" -o /dev/null &
        curls+=($!)
    done
    sleep 1
    headers=$(curl -s -D - -o /dev/null --max-time 3 "$(url /stream)")
    if grep -q "^HTTP/1.1 503" <<<"$headers" && grep -qi "^Retry-After: " <<<"$headers"; then
        pass "proxy-fcgi: beyond --max-viewers 8: 503 with Retry-After, at once"
    else
        fail "proxy-fcgi: viewer cap: $headers"
    fi
    expect "proxy-fcgi: with 8 viewers (of 32 workers) snapshots still work" \
        "$STREAMCHECK" --expect-size 320x240 "$(url /snapshot)"
    wait "${curls[@]}"

    # kill -9 capd mid-stream and restart it at a new size; meanwhile a graceful restart.
    start_capd crash --size 320x240 --fps 30 "${capd_group[@]}" || fail "capd crash starts"
    crash_pid=$CAPD_PID
    for i in 1 2; do
        "$STREAMCHECK" --events --seconds 8 "$(url '/stream?cam=crash')" >"$TMP/crash$i.out" 2>&1 &
        viewer[i]=$!
    done
    "$STREAMCHECK" --seconds 8 --min-fps 25 "$(url /stream)" >"$TMP/graceful.out" 2>&1 &
    graceful_viewer=$!
    sleep 1
    kill -USR1 "$APACHE_PID"
    sleep 1
    { kill -9 "$crash_pid" && wait "$crash_pid"; } 2>/dev/null
    sleep 2.5
    start_capd crash --size 160x120 --fps 30 "${capd_group[@]}" || fail "capd crash restarts"
    ok=0
    for i in 1 2; do
        wait "${viewer[i]}"
        rc=$?
        out=$(tail -1 "$TMP/crash$i.out")
        if [ $rc -eq 0 ] && [ "$(field bad "$out")" = 0 ] && [ "$(field offline "$out")" -ge 1 ] &&
            [ "$(field sizes "$out")" = "320x240,160x120" ] && grep -q "event=offline_end" "$TMP/crash$i.out"; then
            ok=$((ok + 1))
        else
            echo "    viewer $i (rc $rc):" && sed 's/^/    /' "$TMP/crash$i.out"
        fi
    done
    echo "    after the restart: $(tail -1 "$TMP/crash1.out")"
    [ "$ok" -eq 2 ] && pass "proxy-fcgi: kill -9 capd: the offline frame, then the new size, no bad frame" ||
        fail "proxy-fcgi: kill -9 capd: $ok of 2 viewers recovered cleanly"
    wait "$graceful_viewer" && pass "proxy-fcgi: a stream goes on through a graceful restart (apache2ctl graceful)" ||
        fail "proxy-fcgi: graceful restart: $(cat "$TMP/graceful.out")"

    # The responder restarts (systemctl restart capd-fcgi): Apache forwards again at once.
    kill -TERM "$RESPONDER_PID"
    wait "$RESPONDER_PID" 2>/dev/null
    code=$(status_of "$(url /state)")
    start_responder --max-viewers 8 || fail "proxy-fcgi: the responder restarts"
    codes=""
    for i in 1 2 3 4; do codes="$codes $(status_of "$(url /state)")"; done
    [ "$code" = 503 ] && [ "$codes" = " 200 200 200 200" ] &&
        pass "proxy-fcgi: responder down -> 503, back -> 200 at once (retry=0)" ||
        fail "proxy-fcgi: responder restart: $code, then$codes"
    stop_apache

    if [ -n "${CAPD_APACHE_COMPARE:-}" ]; then
        sed 's/flushpackets=on/flushpackets=off/' "$DEPLOY/capd-proxy-fcgi.conf" >"$SRV/noflush.conf"
        for snippet in "$DEPLOY/capd-proxy-fcgi.conf" "$SRV/noflush.conf"; do
            start_apache proxy-fcgi-compare "$snippet" || continue
            for cam in default slow; do
                echo "    compare $(basename "$snippet") cam=$cam: $("$STREAMCHECK" --seconds 6 "$(url "/stream?cam=$cam")" 2>&1 | tail -1)"
            done
            stop_apache
        done
    fi
else
    fail "proxy-fcgi: apache2 starts"
fi
kill -TERM "$RESPONDER_PID" 2>/dev/null
wait "$RESPONDER_PID" 2>/dev/null
fi

# ============================ mod_fcgid ====================================================
if [[ $modes == *" fcgid "* ]]; then
if start_apache fcgid "$DEPLOY/capd-fcgid.conf"; then
    check_mode fcgid fastcgi
    expect "fcgid: /camera/?action=snapshot" "$STREAMCHECK" --expect-size 320x240 "$(url '/camera/?action=snapshot')"
    stop_apache
    if [ -n "${CAPD_APACHE_COMPARE:-}" ]; then
        sed 's/^FcgidOutputBufferSize 0/# (default buffer)/' "$DEPLOY/capd-fcgid.conf" >"$SRV/buffered.conf"
        for snippet in "$DEPLOY/capd-fcgid.conf" "$SRV/buffered.conf"; do
            start_apache fcgid-compare "$snippet" || continue
            for cam in default slow; do
                echo "    compare $(basename "$snippet") cam=$cam: $("$STREAMCHECK" --seconds 6 "$(url "/stream?cam=$cam")" 2>&1 | tail -1)"
            done
            stop_apache
        done
    fi
else
    fail "fcgid: apache2 starts"
fi
fi

# ============================ mod_cgid =====================================================
if [[ $modes == *" cgid "* ]]; then
if start_apache cgid "$DEPLOY/capd-cgid.conf"; then
    check_mode cgid cgi
    expect "cgid: /cgi-bin/capd.cgi/stream" \
        "$STREAMCHECK" --frames 5 --expect-size 320x240 "$(url '/cgi-bin/capd.cgi/stream')"
    expect "cgid: /cgi-bin/capd.cgi?action=snapshot" \
        "$STREAMCHECK" --expect-size 320x240 "$(url '/cgi-bin/capd.cgi?action=snapshot')"
    stop_apache
else
    fail "cgid: apache2 starts"
fi
fi

# Apache took every process it started with it.
if wait_for 5 bash -c "! pgrep -f '^$SRV/' >/dev/null"; then
    pass "no responder process outlives Apache"
else
    fail "left over: $(pgrep -a -f "^$SRV/" | tr '\n' ' ')"
fi
