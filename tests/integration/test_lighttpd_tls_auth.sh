#!/usr/bin/env bash
# test_lighttpd_tls_auth.sh - lighttpd.conf with HTTPS + HTTP/2 (CAPD_TLS_PEM) and Basic auth (CAPD_AUTH_USERFILE).
. "$(dirname "$0")/lib.sh"

for tool in openssl curl ffmpeg; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed"; exit; }
done
[ -e /usr/lib/lighttpd/mod_openssl.so ] || { fail "lighttpd's mod_openssl is not installed (lighttpd-mod-openssl)"; exit; }

# A self-signed certificate, as `make demo TLS=1` makes, and an htpasswd file.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
cat "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/server.pem"
printf 'viewer:%s\n' "$(openssl passwd -6 'correct horse')" >"$TMP/users"

start_capd default --size 320x240 --fps 20 || { fail "capd starts"; exit; }
CAPD_TLS_PEM=$TMP/server.pem CAPD_AUTH_USERFILE=$TMP/users start_lighttpd || {
    fail "lighttpd starts with TLS and auth"
    exit
}
https() { echo "https://127.0.0.1:$PORT$1"; }

# ---- auth: every endpoint refuses without credentials, answers with them ----------------------
for path in / /stream /snapshot /state '/?action=snapshot' /axis-cgi/jpg/image.cgi \
    /cgi-bin/capd.cgi/state; do
    code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 3 "$(https "$path")")
    [ "$code" = 401 ] && pass "no credentials: $path -> 401" || fail "no credentials: $path -> $code"
done
code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 3 -u 'viewer:wrong' "$(https /snapshot)")
[ "$code" = 401 ] && pass "wrong password -> 401" || fail "wrong password -> $code"
code=$(curl -sk -o "$TMP/snap.jpg" -w '%{http_code}' --max-time 5 -u 'viewer:correct horse' "$(https /snapshot)")
[ "$code" = 200 ] && ffmpeg -v error -i "$TMP/snap.jpg" -f null - 2>/dev/null &&
    pass "with credentials: snapshot 200 and decodes" || fail "with credentials: snapshot -> $code"

# ---- HTTP/2: a stream over TLS with curl --http2 --------------------------------------------
info=$(curl -sk --http2 -u 'viewer:correct horse' --max-time 3 -o "$TMP/h2.bin" \
    -w '%{http_version} %{content_type}' "$(https /stream)")
parts=$(LC_ALL=C grep -ac '^Content-Type: image/jpeg' "$TMP/h2.bin")
if [ "${info%% *}" = 2 ] && [[ $info == *multipart/x-mixed-replace* ]] && [ "$parts" -ge 30 ]; then
    pass "HTTP/2 over TLS: the stream flows ($parts parts in 3 s)"
else
    fail "HTTP/2 stream: version/type '$info', $parts parts"
fi
# Decode every complete part that arrived over HTTP/2 (the last one is cut by --max-time).
ffmpeg -v error -f mpjpeg -i "$TMP/h2.bin" -f framemd5 - >"$TMP/h2.md5" 2>"$TMP/h2.err"
if [ "$(grep -c '^0,' "$TMP/h2.md5")" -ge $((parts - 1)) ] && [ "$parts" -ge 30 ]; then
    pass "the frames received over HTTP/2 decode ($(grep -c '^0,' "$TMP/h2.md5"))"
else
    fail "decoding the HTTP/2 stream: $(head -2 "$TMP/h2.err")"
fi
# Several streams share one HTTP/2 connection: what lets a page show more than 6 cameras.
curl -sk --http2 -u 'viewer:correct horse' --max-time 2 -o /dev/null -o /dev/null -o /dev/null \
    -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    -w '%{num_connects}\n' "$(https '/stream?_=1')" "$(https '/stream?_=2')" \
    "$(https '/stream?_=3')" "$(https '/stream?_=4')" "$(https '/stream?_=5')" \
    "$(https '/stream?_=6')" "$(https '/stream?_=7')" "$(https '/stream?_=8')" --parallel \
    >"$TMP/conns" 2>/dev/null
connects=$(awk '{ s += $1 } END { print s }' "$TMP/conns")
[ "$connects" = 1 ] && pass "8 parallel streams over one HTTP/2 connection" ||
    fail "8 parallel streams opened $connects connections"
