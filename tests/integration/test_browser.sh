#!/usr/bin/env bash
# test_browser.sh - the viewer page (www/) in headless Chromium against real lighttpd and capd.
#
# Why the DevTools pipe and not `chromium --screenshot --timeout=MS`: chromium's
# command handler takes that screenshot at the page's load event and uses
# --timeout only as an upper bound. The viewer builds its tiles after load
# (from `state`), so such a screenshot shows the page before, during or after
# the first frame depending on the machine (5 of 15 runs had no video).
# --virtual-time-budget happened to work, but by design it holds the page's
# timers while a fetch is pending, and a stream always is. So the test drives
# chromium itself over --remote-debugging-pipe (DevTools protocol: NUL-terminated
# JSON, commands on fd 3, replies on fd 4), waits for conditions in the page and
# takes each screenshot when it wants. No npm, no python: bash, curl, ffmpeg, od,
# awk, cmp.
#
# KEEP_TMP=1 keeps the screenshots ($TMP/*.png).
. "$(dirname "$0")/lib.sh"

WIDTH=800
HEIGHT=600
# A stream is refused while curl holds the only viewer slot: that tests the retry.
export CAPD_MAX_VIEWERS=1

# ---- a small DevTools-protocol client -----------------------------------------------------
CDP_ID=0
CDP_REPLY=""
SESSION=""

# Starts headless chromium with its protocol pipe on two FIFOs (fds 7 and 8 here).
# Read-write opens do not block, so a chromium that fails to start cannot hang us.
cdp_start() {
    mkfifo "$TMP/cdp.in" "$TMP/cdp.out"
    exec 7<>"$TMP/cdp.in" 8<>"$TMP/cdp.out"
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$TMP/chrome" --window-size="$WIDTH,$HEIGHT" --remote-debugging-pipe \
        about:blank 3<"$TMP/cdp.in" 4>"$TMP/cdp.out" 7>&- 8>&- >>"$TMP/chromium.log" 2>&1 &
    track $!
}

# cdp_call METHOD PARAMS_JSON: sends one command (to the page session once there
# is one) and waits for its reply in CDP_REPLY; fails on an error reply or after 20 s.
# Uncaught page exceptions arriving meanwhile are collected in $TMP/js-errors.
cdp_call() {
    local msg id=$((++CDP_ID))
    printf '{"id":%d,%s"method":"%s","params":%s}\0' "$id" \
        "${SESSION:+\"sessionId\":\"$SESSION\",}" "$1" "$2" >&7
    while IFS= read -r -d '' -t 20 msg <&8; do
        case $msg in
        "{\"id\":$id,\"error\""*) CDP_REPLY=$msg && return 1 ;;
        "{\"id\":$id,"*) CDP_REPLY=$msg && return 0 ;;
        *'"method":"Runtime.exceptionThrown"'*) echo "$msg" | head -c 600 >>"$TMP/js-errors" ;;
        esac
    done
    CDP_REPLY="no reply to $1 within 20 s"
    return 1
}

# Opens URL in a new tab of WIDTH x HEIGHT CSS pixels and attaches to it.
open_page() {
    local target
    cdp_call Target.createTarget '{"url":"about:blank"}' || return 1
    [[ $CDP_REPLY =~ \"targetId\":\"([^\"]+)\" ]] && target=${BASH_REMATCH[1]}
    cdp_call Target.attachToTarget "{\"targetId\":\"$target\",\"flatten\":true}" || return 1
    [[ $CDP_REPLY =~ \"sessionId\":\"([^\"]+)\" ]] && SESSION=${BASH_REMATCH[1]}
    cdp_call Emulation.setDeviceMetricsOverride \
        "{\"width\":$WIDTH,\"height\":$HEIGHT,\"deviceScaleFactor\":1,\"mobile\":false}" &&
        cdp_call Runtime.enable '{}' &&
        cdp_call Page.navigate "{\"url\":\"$1\"}"
}

# js EXPR: prints the string the page's EXPR evaluates to (no backslashes in EXPR).
js() {
    local expr=${1//$'\n'/ }
    expr=${expr//\"/\\\"}
    cdp_call Runtime.evaluate "{\"expression\":\"String($expr)\",\"returnByValue\":true}" ||
        return 1
    local string='"value":"(([^"\\]|\\.)*)"'
    [[ $CDP_REPLY =~ $string ]] && echo "${BASH_REMATCH[1]}"
}

# What the page shows, for failure messages: each tile's camera and status.
page_summary() {
    js "[...document.querySelectorAll('.tile')].map((t) => t.dataset.cam + ':' + t.dataset.status)
        .join(' ') + ' empty=' + !document.getElementById('empty').hidden + ' header=' +
        document.getElementById('summary').textContent"
}

# wait_js SECONDS EXPR: polls until EXPR is true in the page.
wait_js() {
    local limit=$1 i=0
    until [ "$(js "$2")" = true ]; do
        i=$((i + 1))
        [ "$i" -ge $((limit * 5)) ] && return 1
        sleep 0.2
    done
}

# screenshot FILE: the viewport as PNG.
screenshot() {
    cdp_call Page.captureScreenshot '{"format":"png"}' || return 1
    [[ $CDP_REPLY =~ \"data\":\"([^\"]+)\" ]] && base64 -d <<<"${BASH_REMATCH[1]}" >"$1"
}

# bar_pixels FILE: how many pixels have the test pattern's saturated red, green
# and blue (prints the smallest of the three counts). Page chrome has none of these.
bar_pixels() {
    ffmpeg -v error -i "$1" -f rawvideo -pix_fmt rgb24 - | od -An -v -tu1 -w3 |
        awk '$1 >= 150 && $2 <= 60 && $3 <= 60 { r++ }
             $2 >= 150 && $1 <= 60 && $3 <= 60 { g++ }
             $3 >= 150 && $1 <= 60 && $2 <= 60 { b++ }
             END { m = r; if (g < m) m = g; if (b < m) m = b; print m + 0 }'
}

state_streams() { curl -s --max-time 2 "$(url /state)" | sed -n 's/.*"streams":\([0-9]*\).*/\1/p'; }
streams_are() { [ "$(state_streams)" = "$1" ]; }
streams_at_least() { [ "$(state_streams)" -ge "$1" ] 2>/dev/null; }

# The page's own tile for camera "default".
TILE="document.querySelector('.tile[data-cam=default]')"
IMG="$TILE.querySelector('img')"
MIN_BAR_PIXELS=2000

if ! command -v chromium >/dev/null; then
    fail "chromium is installed (scripts/install-deps.sh --check)"
    exit
fi
start_capd default --size 320x240 --fps 10 || { fail "capd starts"; exit; }
start_lighttpd || { fail "lighttpd starts"; exit; }
cdp_start

# ---- a refused stream is retried ---------------------------------------------------------------
# curl takes the only viewer slot, so the page's stream gets 503 and its <img> an error.
curl -s -N -o /dev/null "$(url '/stream?cam=default')" 7>&- 8>&- &
holder=$!
track "$holder"
wait_for 5 streams_are 1 || fail "curl holds the viewer slot: $(curl -s "$(url /state)")"
# stats=0: nothing on the page changes by itself except the video.
open_page "$(url '/?stats=0')" || { fail "chromium opens the page: $CDP_REPLY"; exit; }
if wait_js 10 "$TILE && $TILE.dataset.status === 'retrying'"; then
    kill "$holder"
    if wait_js 10 "$TILE.dataset.status === 'playing' && $IMG.naturalWidth > 0"; then
        pass "a refused stream (503) is retried and plays once a slot frees: $(js "$IMG.src")"
    else
        fail "stream not playing after the viewer slot freed: $(page_summary)"
    fi
else
    kill "$holder"
    fail "refused stream: tile not in retrying state: $(page_summary)"
fi

# ---- the tile ----------------------------------------------------------------------------------
wait_js 10 "$TILE && $IMG.naturalWidth > 0" ||
    fail "no frame on the page within 10 s: $(page_summary)"
got=$(js "[document.querySelectorAll('.tile').length, $TILE.querySelector('.name').textContent,
    $TILE.querySelector('.size').textContent, $TILE.querySelector('.badge').textContent,
    $TILE.querySelector('.snapshot').getAttribute('href'),
    $TILE.querySelector('.snapshot').hasAttribute('download')].join('|')")
expect "tile shows name, size, badge and a snapshot download link ($got)" \
    test "$got" = '1|default|320\u00d7240|Online|snapshot?cam=default|true' # JSON-escaped ×

# ---- 1: the page shows moving video --------------------------------------------------------
screenshot "$TMP/video1.png" && sleep 1.5 && screenshot "$TMP/video2.png"
if [ -s "$TMP/video1.png" ] && ! cmp -s "$TMP/video1.png" "$TMP/video2.png"; then
    pass "two screenshots 1.5 s apart differ (the pattern moves)"
else
    fail "screenshots 1.5 s apart are identical or missing"
fi

# ---- 2: the pixels are video, not page chrome ----------------------------------------------
video_bars=$(bar_pixels "$TMP/video1.png")
expect "screenshot shows the test pattern's colour bars ($video_bars px each of red, green, blue)" \
    test "${video_bars:-0}" -ge "$MIN_BAR_PIXELS"

# ---- 3: the responder serves the page's stream -------------------------------------------------
if wait_for 5 streams_at_least 1; then
    pass "/state reports the page's stream (streams: $(state_streams))"
else
    fail "/state reports no stream while the page is open: $(curl -s "$(url /state)")"
fi

# ---- a restarted responder ends the stream cleanly, which fires nothing in the page -----------
# The viewer notices it by the camera's viewer count and starts a new stream.
wait_js 5 "$TILE.querySelector('.viewers').textContent === '1 viewer'" ||
    fail "the tile never counted its own stream: $(page_summary)"
old_src=$(js "$IMG.getAttribute('src')")
responder=$(curl -s "$(url /state)" | sed -n 's/.*"responder":{[^}]*"pid":\([0-9]*\).*/\1/p')
kill -TERM "$responder"
if wait_js 15 "$IMG.getAttribute('src') !== '$old_src' && $TILE.dataset.status === 'playing' &&
        $IMG.naturalWidth > 0"; then
    pass "after a responder restart the tile starts a new stream: $(js "$IMG.src")"
else
    fail "the stream stays dead after a responder restart: $(page_summary)"
fi

# ---- the camera goes away: tile removed, its stream closed, empty state ------------------------
kill -TERM "$CAPD_PID"
wait "$CAPD_PID" 2>/dev/null
if wait_js 8 "!$TILE && !document.getElementById('empty').hidden &&
        document.getElementById('empty').textContent.includes('No camera is running')"; then
    pass "tile removed and the empty state shown when capd stops"
else
    fail "after capd stopped: $(page_summary)"
fi
if wait_for 5 streams_are 0; then
    pass "the removed tile's stream is closed (/state: streams 0)"
else
    fail "the removed tile's stream stays open: $(curl -s "$(url /state)")"
fi

# ---- controls: a page without video is static and has no bar colours ---------------------------
# They show that checks 1 and 2 above can fail.
screenshot "$TMP/empty1.png" && sleep 1.5 && screenshot "$TMP/empty2.png"
if [ -s "$TMP/empty1.png" ] && cmp -s "$TMP/empty1.png" "$TMP/empty2.png"; then
    pass "control: without video two screenshots 1.5 s apart are identical"
else
    fail "control: the empty page changes by itself (or no screenshot)"
fi
empty_bars=$(bar_pixels "$TMP/empty1.png")
expect "control: the empty page has no colour bars ($empty_bars px)" \
    test "${empty_bars:-0}" -lt "$MIN_BAR_PIXELS"

# ---- a new camera appears without reloading -------------------------------------------------
start_capd porch --size 320x240 --fps 10 7>&- 8>&- || fail "second capd starts"
if wait_js 8 "document.querySelector('.tile[data-cam=porch] img') &&
        document.querySelector('.tile[data-cam=porch] img').naturalWidth > 0"; then
    pass "a camera started later gets a live tile without a reload"
else
    fail "no tile for camera porch: $(page_summary)"
fi

if [ -s "$TMP/js-errors" ]; then
    fail "uncaught JavaScript exceptions: $(head -c 400 "$TMP/js-errors")"
else
    pass "no uncaught JavaScript exceptions"
fi
SESSION=""
cdp_call Browser.close '{}'
