#!/usr/bin/env bash
# test_nginx.sh - capd behind real nginx: deploy/nginx's site and snippet, FastCGI to capd.fcgi --listen.
. "$(dirname "$0")/lib.sh"

if ! command -v nginx >/dev/null || [ ! -r /etc/nginx/fastcgi_params ]; then
    fail "nginx is installed (apt-get install nginx)"
    exit
fi

NGINX=$TMP/nginx
SOCK=$TMP/capd-fcgi.sock
CAPPED_SOCK=$TMP/capped-fcgi.sock
mkdir -p "$NGINX/logs"
cp /etc/nginx/fastcgi_params "$NGINX/"

# start_responder NAME SOCKET [flags...]: capd.fcgi on its own socket, started here so that it
# inherits CAPD_SHM_PREFIX and the sanitizer settings.
start_responder() {
    local name=$1 sock=$2
    shift 2
    "$BUILD/capd.fcgi" --listen "unix:$sock" "$@" >>"$TMP/responder-$name.log" 2>&1 &
    track $!
    wait_for 10 test -S "$sock" || {
        sed 's/^/    /' "$TMP/responder-$name.log"
        return 1
    }
}

# The shipped site and snippet, with only the paths and the port replaced.
PORT=$(free_port)
sed -e "s#/run/capd/capd-fcgi.sock#$SOCK#" -e "s#/usr/local/share/capd/www/#$ROOT/www/#" \
    "$ROOT/deploy/nginx/capd.conf" >"$NGINX/capd.conf"
sed -e "s#listen 8080;#listen 127.0.0.1:$PORT;#" -e "s#include snippets/capd.conf;#include capd.conf;#" \
    "$ROOT/deploy/nginx/example-server.conf" >"$NGINX/site.conf"
if grep -q "$SOCK" "$NGINX/capd.conf" && grep -q "$ROOT/www/" "$NGINX/capd.conf" &&
    grep -q "127.0.0.1:$PORT" "$NGINX/site.conf" && grep -q "include capd.conf;" "$NGINX/site.conf"; then
    pass "deploy/nginx: the socket, www and listen lines are where the test expects them"
else
    fail "deploy/nginx changed: the test's substitutions no longer apply"
fi

# A second server on another port for what the shipped site cannot show: the same responder
# with buffering on (once obeying the responder's X-Accel-Buffering: no, once ignoring it), and
# a second responder with --max-viewers 1 for the viewer cap.
CMP_PORT=$(free_port)
while [ "$CMP_PORT" = "$PORT" ]; do CMP_PORT=$(free_port); done
cat >"$NGINX/nginx.conf" <<EOF
user $(id -un) $(id -gn);
worker_processes 1;
pid logs/nginx.pid;
error_log logs/error.log info;
events { worker_connections 1024; }
http {
    access_log logs/access.log;
    client_body_temp_path tmp/body;
    fastcgi_temp_path tmp/fastcgi;
    proxy_temp_path tmp/proxy;
    scgi_temp_path tmp/scgi;
    uwsgi_temp_path tmp/uwsgi;
    include site.conf;
    server {
        listen 127.0.0.1:$CMP_PORT;
        location /header-only/ {
            fastcgi_pass unix:$SOCK;
            include fastcgi_params;
            fastcgi_buffering on;
        }
        location /buffered/ {
            fastcgi_pass unix:$SOCK;
            include fastcgi_params;
            fastcgi_buffering on;
            fastcgi_ignore_headers X-Accel-Buffering;
        }
        location /capped/ {
            fastcgi_pass unix:$CAPPED_SOCK;
            include fastcgi_params;
            fastcgi_buffering off;
        }
    }
}
EOF
mkdir -p "$NGINX/tmp"

start_capd default --size 640x480 --fps 30 || { fail "capd starts"; exit; }
start_responder main "$SOCK" || { fail "capd.fcgi --listen starts"; exit; }
start_responder capped "$CAPPED_SOCK" --max-viewers 1 || { fail "capped capd.fcgi starts"; exit; }
expect "nginx -t accepts the site and the snippet" \
    nginx -t -p "$NGINX" -e "$NGINX/logs/error.log" -c nginx.conf
nginx -p "$NGINX" -e "$NGINX/logs/error.log" -c nginx.conf -g 'daemon off;' \
    >>"$NGINX/logs/stdout.log" 2>&1 &
NGINX_PID=$!
track "$NGINX_PID"
if ! wait_for 10 port_open "$PORT" || ! wait_for 5 port_open "$CMP_PORT"; then
    fail "nginx starts"
    sed 's/^/    /' "$NGINX/logs/"*.log
    exit
fi
cmp_url() { echo "http://127.0.0.1:$CMP_PORT$1"; }
within() { awk -v v="$1" -v max="$2" 'BEGIN { exit !(v != "-" && v + 0 < max + 0) }'; }

# ---- streams: every frame decoded, at the source rate, without delay ------------------------
out=$("$STREAMCHECK" --seconds 5 --expect-size 640x480 --min-fps 27 "$(url /camera/stream)" 2>&1)
rc=$?
echo "    /camera/stream: $out"
if [ $rc -eq 0 ] && [ "$(field bad "$out")" = 0 ] && within "$(field lat_p50_ms "$out")" 30; then
    pass "stream: 640x480 frames decode at >= 27 fps (source 30), latency p50 $(field lat_p50_ms "$out") ms"
else
    fail "stream: $out"
fi
# At fps=1 a frame held back by a buffer waits a whole second for the next one to push it out
# (the median, because this machine may be busy with other tests).
out=$("$STREAMCHECK" --seconds 5 "$(url '/camera/stream?fps=1')" 2>&1)
echo "    /camera/stream?fps=1: $out"
within "$(field lat_p50_ms "$out")" 300 && [ "$(field frames "$out")" -ge 4 ] &&
    pass "unbuffered: at fps=1 frames arrive at once (latency p50 $(field lat_p50_ms "$out") ms)" ||
    fail "buffering at fps=1: $out"

# The same with fastcgi_buffering on: the responder's X-Accel-Buffering: no still turns it off
# (asserted: it is what protects configs that lack the line); ignoring the header shows the
# failure the snippet's line prevents (numbers only).
out=$("$STREAMCHECK" --seconds 5 "$(cmp_url '/header-only/stream?fps=1')" 2>&1)
echo "    fastcgi_buffering on, header obeyed, fps=1: $out"
within "$(field lat_p50_ms "$out")" 300 &&
    pass "X-Accel-Buffering: no from the responder turns nginx's buffering off on its own" ||
    fail "X-Accel-Buffering: no is not obeyed: $out"
for q in "" "?fps=1"; do
    out=$("$STREAMCHECK" --seconds 5 "$(cmp_url "/buffered/stream$q")" 2>&1)
    echo "    for comparison, fastcgi_buffering on + header ignored, stream$q: $out"
done

for path in "/?action=stream" "/camera/?action=stream" "/axis-cgi/mjpg/video.cgi"; do
    expect "stream at $path" "$STREAMCHECK" --frames 10 --expect-size 640x480 "$(url "$path")"
done

# Browsers get the early layout: the next part's headers right after each frame.
out=$("$STREAMCHECK" --frames 20 --user-agent "Mozilla/5.0 (X11; Linux x86_64) Chrome/120" \
    "$(url /camera/stream)" 2>&1) && [ "$(field bad "$out")" = 0 ] &&
    pass "browser user agent: the stream decodes" || fail "browser user agent: $out"
curl -s -A "Mozilla/5.0" --max-time 2 "$(url /camera/stream)" -o "$TMP/early.bin"
# -z: NUL-separated records, so that \r\n inside the pattern is matched as bytes.
early=$(LC_ALL=C grep -zacP '\xff\xd9\r\n--capdframe\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8' \
    "$TMP/early.bin")
[ "$early" -ge 10 ] && pass "browser user agent: early layout through nginx ($early frames in 2 s)" ||
    fail "browser user agent: no early part layout ($early)"

# ---- snapshot, state, the viewer page, errors ------------------------------------------------
for path in /camera/snapshot "/?action=snapshot" /axis-cgi/jpg/image.cgi; do
    expect "snapshot at $path is a 640x480 JPEG" \
        "$STREAMCHECK" --expect-size 640x480 "$(url "$path")"
done
state=$(curl -s -D "$TMP/state.h" "$(url /camera/state)")
if grep -q '"name":"default","online":true' <<<"$state" && grep -q '"mode":"fastcgi"' <<<"$state" &&
    grep -q "\"pid\":$CAPD_PID," <<<"$state" &&
    grep -q '"width":640,"height":480' <<<"$state" && grep -qi '^Content-Type: application/json' "$TMP/state.h"; then
    pass "state: JSON with the camera online at 640x480"
else
    fail "state: $state"
fi
state=$(curl -s "$(url '/?action=state')")
grep -q '"online":true' <<<"$state" && pass "state at /?action=state" || fail "/?action=state: $state"
page=$(curl -s -w '\n%{http_code}' "$(url /camera/)")
[ "$(tail -1 <<<"$page")" = 200 ] && grep -q "viewer.js" <<<"$page" &&
    pass "the viewer page at /camera/" || fail "viewer page: $(tail -1 <<<"$page")"
code=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$(url /)")
[ "$code" = "302 $(url /camera/)" ] && pass "/ leads to /camera/" || fail "/: $code"

check_status "fps=abc" 400 "/camera/stream?fps=abc"
check_status "unknown camera" 404 "/camera/snapshot?cam=nosuchcam"
check_status "action and path disagree" 400 "/camera/state?action=stream"
check_status "POST" 405 "/camera/state" -X POST -d x=1

# ---- viewers that leave end their streams at the responder -----------------------------------
curls=()
for _ in 1 2 3; do
    curl -s --max-time 1 "$(url /camera/stream)" -o /dev/null &
    curls+=($!)
done
wait "${curls[@]}"
if wait_for 5 bash -c "curl -s '$(url /camera/state)' | grep -q '\"streams\":0,'"; then
    pass "viewers that hang up: nginx closes the FastCGI connection and the streams end"
else
    fail "streams still active after viewers left: $(curl -s "$(url /camera/state)")"
fi

# ---- the viewer cap's 503 passes through nginx -----------------------------------------------
curl -s --max-time 4 "$(cmp_url /capped/stream)" -o /dev/null &
holder=$!
wait_for 3 bash -c "curl -s '$(cmp_url /capped/state)' | grep -q '\"streams\":1,'"
headers=$(curl -s -D - -o /dev/null --max-time 3 "$(cmp_url /capped/stream)")
if grep -q "^HTTP/1.1 503" <<<"$headers" && grep -qi "^Retry-After: [0-9]" <<<"$headers"; then
    pass "beyond --max-viewers: 503 with Retry-After through nginx"
else
    fail "viewer cap through nginx: $headers"
fi
expect "a snapshot still works at the viewer cap" \
    "$STREAMCHECK" --expect-size 640x480 "$(cmp_url /capped/snapshot)"
wait "$holder"

# ---- nginx itself saw nothing wrong ----------------------------------------------------------
errors=$(grep -E '\[(alert|crit|emerg)\]|upstream timed out|upstream prematurely closed' \
    "$NGINX/logs/error.log")
[ -z "$errors" ] && pass "nginx's error log: no alert, crit or upstream error" ||
    fail "nginx's error log: $(head -3 <<<"$errors")"
