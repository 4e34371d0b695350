#!/usr/bin/env bash
# run.sh - runs every unit and integration test against each build folder; the last line counts them.
#
#   tests/run.sh build [build-asan ...]
#   TESTS=ring tests/run.sh build      only tests whose file name contains "ring"
#   tests/run.sh build-tsan:ring,lighttpd   in that folder, only tests whose name contains
#                                           one of the words (as TESTS, per folder)
#
# Each test program prints "PASS <what>" / "FAIL <what>" lines; a program that
# exits non-zero without a FAIL line counts as one failure.
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
passed=0
failed=0
failures=()
filter=${TESTS:-}

# only_matches NAME WORDS: succeeds when WORDS (comma-separated) is empty or one is in NAME.
only_matches() {
    local word
    [ -z "$2" ] && return 0
    for word in ${2//,/ }; do
        [[ $1 == *"$word"* ]] && return 0
    done
    return 1
}

run_one() {
    local build=$1 prog=$2 only=$3
    local name start rc line fails_here=0 out
    name=$(basename "$prog")
    [ -n "$filter" ] && [[ $name != *"$filter"* ]] && return 0
    only_matches "$name" "$only" || return 0
    start=$(date +%s)
    out=$(mktemp)
    # Each program gets 5 minutes at most; a hang is a failure, not a stuck CI.
    BUILD="$root/$build" timeout -k 10 300 "$prog" >"$out" 2>&1
    rc=$?
    while IFS= read -r line; do
        case $line in
        PASS\ *)
            passed=$((passed + 1))
            echo "PASS [$build] $name: ${line#PASS }"
            ;;
        FAIL\ *)
            failed=$((failed + 1))
            fails_here=$((fails_here + 1))
            failures+=("[$build] $name: ${line#FAIL }")
            echo "FAIL [$build] $name: ${line#FAIL }"
            ;;
        *[0-9]\ passed,\ [0-9]*\ failed) ;; # a program's own summary
        *) echo "    $line" ;;
        esac
    done <"$out"
    rm -f "$out"
    if [ "$rc" -ne 0 ] && [ "$fails_here" -eq 0 ]; then
        failed=$((failed + 1))
        failures+=("[$build] $name: exited with status $rc")
        echo "FAIL [$build] $name: exited with status $rc$([ "$rc" -eq 124 ] && echo ' (timed out)')"
    fi
    echo "---- [$build] $name: $(($(date +%s) - start)) s"
}

if [ $# -eq 0 ]; then
    echo "usage: tests/run.sh BUILD_DIR..." >&2
    exit 2
fi
suite_start=$(date +%s)
# ThreadSanitizer: the one intended race list; integration tests set their own (lib.sh).
export TSAN_OPTIONS="${TSAN_OPTIONS:-suppressions=$root/tests/tsan.supp}"
for spec in "$@"; do
    build=${spec%%:*}
    only=""
    [[ $spec == *:* ]] && only=${spec#*:}
    if [ ! -x "$build/capd" ] || [ ! -x "$build/capd.fcgi" ]; then
        echo "FAIL [$build]: not built (run make tests BUILD=$build)"
        failed=$((failed + 1))
        failures+=("[$build]: not built")
        continue
    fi
    for prog in "$build"/tests/test_*; do
        [ -x "$prog" ] && run_one "$build" "$prog" "$only"
    done
    for prog in tests/integration/test_*.sh; do
        run_one "$build" "$prog" "$only"
    done
done
echo
echo "suite time: $(($(date +%s) - suite_start)) s"
if [ "$failed" -gt 0 ]; then
    echo "failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
