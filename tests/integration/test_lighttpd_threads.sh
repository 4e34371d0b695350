#!/usr/bin/env bash
# test_lighttpd_threads.sh - the lighttpd pipeline tests with the responder's per-thread stream mode.
# (test_lighttpd.sh covers the default fan-out mode; CGI always streams per thread.)
CAPD_FCGI_ARGS="--stream-mode threads" exec "$(dirname "$0")/test_lighttpd.sh"
