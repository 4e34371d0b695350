# lib.sh - shared helpers for integration tests: real capd, real lighttpd, loopback ports, cleanup.
#
# Source it from tests/integration/test_*.sh. It gives each test script:
#   - ROOT (the source tree), BUILD (the build folder under test), TMP (a private temp folder)
#   - a private shared-memory prefix (CAPD_SHM_PREFIX), so tests never see other rings
#   - pass/fail/expect helpers printing the "PASS x" / "FAIL x: why" lines tests/run.sh counts
#   - start_capd, start_lighttpd, free_port, wait_for; everything started is stopped at exit
#   - sanitizer reports (ASan/UBSan/LSan) from any process become a FAIL line
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
TEST_NAME=$(basename "$0" .sh)
TMP=$(mktemp -d "/tmp/capd-$TEST_NAME.XXXXXX")
export CAPD_SHM_PREFIX="t$$-"
export ASAN_OPTIONS="log_path=$TMP/asan:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$TMP/ubsan:print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="log_path=$TMP/asan"
export TSAN_OPTIONS="log_path=$TMP/tsan:halt_on_error=0:suppressions=$ROOT/tests/tsan.supp"
STREAMCHECK="$BUILD/tests/streamcheck"
PORT=""
FAILED=0
_pids=()

pass() { echo "PASS $1"; }
fail() {
    echo "FAIL $1"
    FAILED=1
}
# expect "what" command...: PASS when the command succeeds, FAIL (with its output) otherwise.
expect() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then
        pass "$what"
    else
        fail "$what: $(echo "$out" | tail -3 | tr '\n' ' ')"
    fi
}

# Remembers a background pid so that cleanup stops it.
track() { _pids+=("$1"); }

_cleanup() {
    local pid report
    # A background subshell inherits this trap; only the test script itself cleans up.
    [ "$BASHPID" = "$_main_pid" ] || return 0
    for pid in "${_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${_pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # lighttpd's FastCGI children may outlive lighttpd by a moment.
    sleep 0.3
    for report in "$TMP"/asan.* "$TMP"/ubsan.* "$TMP"/tsan.*; do
        [ -e "$report" ] || continue
        fail "sanitizer report $(basename "$report"): $(grep -m3 -E 'ERROR|runtime error|SUMMARY' "$report" | tr '\n' ' ')"
        sed 's/^/    /' "$report" | head -40
    done
    rm -f /dev/shm/"$CAPD_SHM_PREFIX"* 2>/dev/null
    if [ "$FAILED" -ne 0 ] || [ -n "${KEEP_TMP:-}" ]; then
        echo "    logs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$FAILED"
}
_main_pid=$BASHPID
trap _cleanup EXIT

# wait_for SECONDS command...: polls every 0.1 s until the command succeeds.
wait_for() {
    local limit=$1 i=0
    shift
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -ge $((limit * 10)) ] && return 1
        sleep 0.1
    done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A loopback port nobody listens on.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        port_open "$p" || break
    done
    echo "$p"
}

ring_exists() { [ -e "/dev/shm/${CAPD_SHM_PREFIX}$1" ]; }

# start_capd NAME [capd flags...]: starts capd, waits for its ring; sets CAPD_PID.
start_capd() {
    local name=$1
    shift
    "$BUILD/capd" --name "$name" "$@" >>"$TMP/capd-$name.log" 2>&1 &
    CAPD_PID=$!
    track "$CAPD_PID"
    if ! wait_for 10 ring_exists "$name"; then
        echo "    capd did not start:" && sed 's/^/    /' "$TMP/capd-$name.log"
        return 1
    fi
    # The ring exists; give the first frame a moment.
    sleep 0.2
}

# start_lighttpd [CONF]: runs lighttpd with the project's config (or CONF) on a
# free port; sets PORT and LIGHTTPD_PID. Extra environment passes through.
start_lighttpd() {
    local conf=${1:-$ROOT/lighttpd.conf}
    PORT=$(free_port)
    mkdir -p "$TMP/lighttpd"
    CAPD_PORT=$PORT CAPD_HOST=127.0.0.1 CAPD_ROOT=$ROOT CAPD_BIN=$BUILD CAPD_RUNDIR=$TMP/lighttpd \
        lighttpd -D -f "$conf" >>"$TMP/lighttpd/stdout.log" 2>&1 &
    LIGHTTPD_PID=$!
    track "$LIGHTTPD_PID"
    if ! wait_for 10 port_open "$PORT"; then
        echo "    lighttpd did not start:" && sed 's/^/    /' "$TMP/lighttpd/"*.log
        return 1
    fi
}

url() { echo "http://127.0.0.1:$PORT$1"; }

# The value of KEY in a streamcheck summary line.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# check_status WHAT WANT PATH [curl args...]: PATH answers status WANT with capd's one-line
# reason as the body (not a web server's HTML error page).
check_status() {
    local what=$1 want=$2 path=$3 got body
    shift 3
    body=$(curl -s --max-time 10 -o /dev/stdout -w '\n%{http_code}' "$@" "$(url "$path")")
    got=$(tail -1 <<<"$body")
    body=$(head -1 <<<"$body")
    if [ "$got" = "$want" ] && [ -n "$body" ] && ! grep -qi '<html\|<!doctype' <<<"$body"; then
        pass "$what -> $got ($body)"
    else
        fail "$what: expected $want with a reason, got $got ($(head -c 120 <<<"$body"))"
    fi
}

# Prints the pid(s) of the FastCGI responder that our lighttpd spawned (started with
# lighttpd.conf's --max-viewers), not the CGI ones it runs for /cgi-bin/capd.cgi (the same binary).
responder_pids() { pgrep -P "$LIGHTTPD_PID" -f 'capd\.fcgi --max-viewers' || true; }

# run_viewer_test [VAR=value...]: tests/browser/viewer_test.js in Debian's Chromium (through
# playwright-core, which `npm ci` installs in tests/browser when node_modules is missing or
# not the version package-lock.json pins; no browser is downloaded). Its PASS/FAIL lines go to
# tests/run.sh; a missing program, a failed install or a crash without a FAIL line is a FAIL.
# The arguments are extra environment, e.g. VIEWER_URL (see viewer_test.js).
run_viewer_test() {
    local browser_dir=$ROOT/tests/browser missing="" prog rc out=$TMP/viewer_test.out
    for prog in node npm chromium; do
        command -v "$prog" >/dev/null || missing="$missing $prog"
    done
    if [ -n "$missing" ]; then
        fail "the viewer test's programs (missing:$missing; Debian packages nodejs npm chromium)"
        return 1
    fi
    if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
        fail "node 18 or newer (have $(node --version))"
        return 1
    fi
    local installed pinned
    installed=$(cd "$browser_dir" &&
        node -p 'require("./node_modules/playwright-core/package.json").version' 2>/dev/null)
    pinned=$(cd "$browser_dir" &&
        node -p 'require("./package-lock.json").packages["node_modules/playwright-core"].version')
    if [ "$installed" != "$pinned" ]; then
        if ! (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error) >"$TMP/npm.log" 2>&1; then
            fail "npm ci in tests/browser: $(tail -5 "$TMP/npm.log" | tr '\n' ' ')"
            return 1
        fi
    fi
    env ROOT="$ROOT" BUILD="$BUILD" TMP="$TMP" "$@" node "$browser_dir/viewer_test.js" | tee -a "$out"
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ]; then
        FAILED=1
        grep -q '^FAIL ' "$out" || fail "viewer_test.js exited with status $rc"
    fi
    return "$rc"
}
