#!/usr/bin/env bash
# test_viewer.sh - the viewer page (www/) in Debian's Chromium, driven by playwright-core (tests/browser/).
#
# The checks themselves are in tests/browser/viewer_test.js (it starts capd and lighttpd,
# plain and with TLS + HTTP/2, and prints the PASS/FAIL lines); run_viewer_test (lib.sh)
# installs the pinned playwright-core and runs it. test_apache.sh runs the same page behind
# Apache. KEEP_TMP=1 keeps the screenshots ($TMP/shots/*.png).
. "$(dirname "$0")/lib.sh"

for prog in lighttpd openssl; do
    command -v "$prog" >/dev/null ||
        { fail "the viewer test needs $prog (Debian packages lighttpd lighttpd-mod-openssl openssl)" && exit; }
done
run_viewer_test
