#!/usr/bin/env bash
# test_viewer.sh - the viewer page (www/) in Debian's Chromium, driven by playwright-core (tests/browser/).
#
# The checks themselves are in tests/browser/viewer_test.js (it starts capd and lighttpd,
# plain and with TLS + HTTP/2, and prints the PASS/FAIL lines). This script checks the
# programs it needs, installs the pinned playwright-core with `npm ci` when node_modules is
# missing or stale (no browser is downloaded: the test uses /usr/bin/chromium), and runs it.
# KEEP_TMP=1 keeps the screenshots ($TMP/shots/*.png).
. "$(dirname "$0")/lib.sh"

BROWSER_DIR=$ROOT/tests/browser

missing=""
for prog in node npm chromium lighttpd openssl; do
    command -v "$prog" >/dev/null || missing="$missing $prog"
done
if [ -n "$missing" ]; then
    fail "the viewer test's programs are installed (missing:$missing; Debian packages nodejs npm chromium lighttpd lighttpd-mod-openssl openssl)"
    exit
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
    fail "node 18 or newer (have $(node --version))"
    exit
fi

# The version node_modules holds against the one package-lock.json pins.
installed_version() {
    node -p 'require("./node_modules/playwright-core/package.json").version' 2>/dev/null
}
pinned_version() {
    node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version'
}
cd "$BROWSER_DIR" || exit
if [ "$(installed_version)" != "$(pinned_version)" ]; then
    if ! npm ci --no-audit --no-fund --loglevel=error >"$TMP/npm.log" 2>&1; then
        fail "npm ci in tests/browser: $(tail -5 "$TMP/npm.log" | tr '\n' ' ')"
        exit
    fi
fi
cd "$ROOT" || exit

# PASS/FAIL lines go straight to tests/run.sh; a crash without one is a failure too.
ROOT=$ROOT BUILD=$BUILD TMP=$TMP node "$BROWSER_DIR/viewer_test.js" | tee "$TMP/viewer_test.out"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
    FAILED=1
    grep -q '^FAIL ' "$TMP/viewer_test.out" || fail "viewer_test.js exited with status $rc"
fi
