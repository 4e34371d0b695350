#!/usr/bin/env bash
# test_urls.sh - the URLs camera software already uses, and the per-viewer choices, through lighttpd.
. "$(dirname "$0")/lib.sh"

start_capd default --size 320x240 --fps 20 || { fail "capd default starts"; exit; }
start_capd garage --size 640x480 --fps 20 || { fail "capd garage starts"; exit; }
start_lighttpd || { fail "lighttpd starts"; exit; }

status_of() { curl -s -o "$TMP/body" -w '%{http_code}' --max-time 5 "$(url "$1")"; }

# ---- mjpg-streamer / µStreamer at the root ------------------------------------------------
expect "/?action=stream at the root streams" \
    "$STREAMCHECK" --frames 5 --expect-size 320x240 "$(url '/?action=stream')"
expect "/?action=snapshot at the root" \
    "$STREAMCHECK" --expect-size 640x480 "$(url '/?action=snapshot&cam=garage')"
[ "$(status_of '/?action=state')" = 200 ] && grep -q '"ok":true,"result":{' "$TMP/body" &&
    pass "/?action=state answers JSON with µStreamer's ok/result" || fail "/?action=state: $(cat "$TMP/body")"
[ "$(status_of '/')" = 200 ] && grep -qi '<html' "$TMP/body" &&
    pass "a plain / still serves the viewer page" || fail "/: $(head -c 200 "$TMP/body")"
[ "$(status_of '/?v=2')" = 200 ] && grep -qi '<html' "$TMP/body" &&
    pass "/ with another query still serves the page" || fail "/?v=2"

# ---- Axis VAPIX -------------------------------------------------------------------------------
expect "VAPIX video.cgi, camera by name" \
    "$STREAMCHECK" --frames 3 --expect-size 640x480 "$(url '/axis-cgi/mjpg/video.cgi?camera=garage')"
expect "VAPIX video.cgi, camera=2 is the second camera in name order" \
    "$STREAMCHECK" --frames 3 --expect-size 640x480 "$(url '/axis-cgi/mjpg/video.cgi?camera=2')"
expect "VAPIX image.cgi, camera=1" \
    "$STREAMCHECK" --expect-size 320x240 "$(url '/axis-cgi/jpg/image.cgi?camera=1')"
out=$("$STREAMCHECK" --allow-eof --seconds 10 "$(url '/axis-cgi/mjpg/video.cgi?nbrofframes=4')" 2>&1)
[ "$(field frames "$out")" = 4 ] && pass "nbrofframes=4 ends the stream after 4 frames" ||
    fail "nbrofframes=4: $out"
curl -s --max-time 5 "$(url '/axis-cgi/mjpg/video.cgi?nbrofframes=2')" -o "$TMP/close.bin"
tail -c 20 "$TMP/close.bin" | grep -aq -- '--capdframe--' &&
    pass "a frame limit ends with the closing boundary" || fail "no closing boundary"
start=$(date +%s%N)
out=$("$STREAMCHECK" --allow-eof --seconds 10 "$(url '/axis-cgi/mjpg/video.cgi?duration=2')" 2>&1)
took=$((($(date +%s%N) - start) / 1000000))
[ "$took" -ge 1800 ] && [ "$took" -lt 4000 ] && [ "$(field bad "$out")" = 0 ] &&
    pass "duration=2 ends the stream after 2 s (${took} ms)" || fail "duration=2: ${took} ms, $out"
out=$("$STREAMCHECK" --seconds 3 "$(url '/axis-cgi/mjpg/video.cgi?fps=5')" 2>&1)
awk -v f="$(field fps "$out")" 'BEGIN { exit !(f > 3.5 && f < 5.6) }' &&
    pass "VAPIX fps=5 caps the rate ($(field fps "$out") fps)" || fail "fps=5: $out"
expect "resolution=640x480 served when the camera has it" \
    "$STREAMCHECK" --expect-size 640x480 "$(url '/axis-cgi/jpg/image.cgi?camera=garage&resolution=640x480')"
code=$(status_of '/axis-cgi/jpg/image.cgi?camera=garage&resolution=1920x1080')
[ "$code" = 400 ] && grep -q "available: 640x480" "$TMP/body" &&
    pass "resolution=1920x1080 -> 400 naming the available size ($(cat "$TMP/body"))" ||
    fail "resolution mismatch: $code $(cat "$TMP/body")"
code=$(status_of '/axis-cgi/mjpg/video.cgi?camera=3')
[ "$code" = 404 ] && pass "camera=3 with two cameras -> 404" || fail "camera=3: $code"
code=$(status_of '/stream?cam=garage&camera=garage')
[ "$code" = 400 ] && pass "cam and camera together -> 400 ($(cat "$TMP/body"))" || fail "cam+camera: $code"

# ---- headers=1: timing headers, frame numbers that advance --------------------------------
curl -s --max-time 2 "$(url '/stream?cam=garage&headers=1')" -o "$TMP/h.bin"
frames=$(LC_ALL=C grep -a '^X-Capd-Frame: ' "$TMP/h.bin" | tr -d '\r' | awk '{print $2}')
if LC_ALL=C grep -aq '^X-Capd-Publish: [0-9]*\.[0-9]\{6\}' "$TMP/h.bin" &&
    LC_ALL=C grep -aq '^X-Capd-Send: [0-9]*\.[0-9]\{6\}' "$TMP/h.bin" &&
    LC_ALL=C grep -aq '^X-Capd-Drops: [0-9]' "$TMP/h.bin" &&
    [ "$(wc -l <<<"$frames")" -ge 10 ] && sort -n -c <<<"$frames" 2>/dev/null; then
    pass "headers=1: publish, send, frame and drops headers; frame numbers rise"
else
    fail "headers=1: $(LC_ALL=C grep -a '^X-Capd' "$TMP/h.bin" | head -6 | tr '\r\n' '  ')"
fi

# ---- dual_final=1: the last frame of a burst comes twice ------------------------------------
mkfifo "$TMP/feed"
"$BUILD/capd" --name burst --source stdin <"$TMP/feed" >"$TMP/capd-burst.log" 2>&1 &
track $!
exec 3>"$TMP/feed"
wait_for 5 ring_exists burst
REQUEST_METHOD=GET QUERY_STRING='action=snapshot&cam=garage' "$BUILD/capd.fcgi" </dev/null |
    sed '1,/^\r$/d' >"$TMP/one.jpg"
for mode in 1 0; do
    curl -s --max-time 3 "$(url "/stream?cam=burst&headers=1&dual_final=$mode")" -o "$TMP/dual$mode.bin" &
    c=$!
    sleep 0.7
    for _ in 1 2 3 4 5; do cat "$TMP/one.jpg" >&3; sleep 0.03; done
    wait "$c"
done
exec 3>&-
last1=$(LC_ALL=C grep -a '^X-Capd-Frame: ' "$TMP/dual1.bin" | tr -d '\r' | awk '{print $2}' | tail -2 | uniq -c | awk '{print $1}' | tail -1)
last0=$(LC_ALL=C grep -a '^X-Capd-Frame: ' "$TMP/dual0.bin" | tr -d '\r' | awk '{print $2}' | uniq -d | wc -l)
if [ "$last1" = 2 ] && [ "$last0" = 0 ]; then
    pass "dual_final=1 sends a burst's last frame twice; without it, once"
else
    fail "dual_final: with=$(LC_ALL=C grep -a '^X-Capd-Frame' "$TMP/dual1.bin" | tr -d '\r\n') without=$(LC_ALL=C grep -a '^X-Capd-Frame' "$TMP/dual0.bin" | tr -d '\r\n')"
fi

# ---- real clients: ffmpeg and ffprobe ---------------------------------------------------------
if ffmpeg -hide_banner -loglevel error -i "$(url /stream?cam=garage)" -frames:v 30 -f framemd5 - \
    >"$TMP/ffmpeg.md5" 2>"$TMP/ffmpeg.err" && [ "$(grep -c '^0,' "$TMP/ffmpeg.md5")" = 30 ]; then
    pass "ffmpeg decodes 30 frames of /stream"
else
    fail "ffmpeg: $(head -3 "$TMP/ffmpeg.err") $(grep -c '^0,' "$TMP/ffmpeg.md5") frames"
fi
if ffmpeg -hide_banner -loglevel error -i "$(url '/axis-cgi/mjpg/video.cgi?camera=1')" -frames:v 30 \
    -f framemd5 - >"$TMP/ffmpeg2.md5" 2>"$TMP/ffmpeg2.err" && [ "$(grep -c '^0,' "$TMP/ffmpeg2.md5")" = 30 ]; then
    pass "ffmpeg decodes 30 frames of the VAPIX URL"
else
    fail "ffmpeg VAPIX: $(head -3 "$TMP/ffmpeg2.err")"
fi
probe=$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height \
    -of csv=p=0 "$(url '/?action=stream&cam=garage')" 2>&1)
[ "$probe" = "mjpeg,640,480" ] && pass "ffprobe sees mjpeg 640x480 at /?action=stream" ||
    fail "ffprobe: $probe"
