#!/usr/bin/env bash
# test_fuzz.sh - libFuzzer: query parser, MJPEG splitter, JPEG walker, DHT inserter, ring reader.
#
# Builds the fuzzers (tests/fuzz/fuzz.mk, clang) when needed, replays every regression input
# in tests/fuzz/regressions/, then fuzzes each target for FUZZ_SECONDS (30) seconds: one
# PASS/FAIL line per target with its number of executions. A crashing input is saved under
# this test's temporary folder, which is kept and named on failure. FUZZ_JOBS=N runs N
# targets at once (by default one per core, at most 5: the suite runs one test at a time, so
# each target still has a core to itself for its FUZZ_SECONDS). tests/run.sh gives a test
# 300 s, so keep FUZZ_SECONDS x 5 / FUZZ_JOBS under about 250 there; for longer runs use
# `make fuzz FUZZ_SECONDS=...`, which has no such limit.
. "$(dirname "$0")/lib.sh"

# The fuzzers carry their own ASan+UBSan build; running them again for every sanitized
# build folder would only double the time.
if nm "$BUILD/capd" 2>/dev/null | grep -qE '__asan_init|__tsan_init'; then
    echo "    skipped: the fuzzers are their own ASan+UBSan build (the plain build runs them)"
    exit 0
fi

FUZZ_CC=${FUZZ_CC:-clang}
cat >"$TMP/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)data;
    (void)size;
    return 0;
}
EOF
if ! "$FUZZ_CC" -fsanitize=fuzzer,address,undefined -o "$TMP/probe" "$TMP/probe.c" \
    >"$TMP/probe.log" 2>&1; then
    fail "fuzz: $FUZZ_CC cannot build a libFuzzer program (Debian: clang libclang-rt-14-dev): \
$(head -2 "$TMP/probe.log" | tr '\n' ' ')"
    exit
fi

# make decides whether anything is stale; only our own makefile is read.
if ! make -C "$ROOT" -f tests/fuzz/fuzz.mk FUZZ_CC="$FUZZ_CC" fuzz-build \
    >"$TMP/build.log" 2>&1; then
    fail "fuzz: building the fuzzers failed: $(grep -m3 -E 'error|Error' "$TMP/build.log" |
        tr '\n' ' ')"
    sed 's/^/    /' "$TMP/build.log" | tail -20
    exit
fi

# Crashing inputs and logs go to $TMP, which lib.sh keeps when anything failed.
cores=$(nproc 2>/dev/null || echo 1)
FUZZ_ARTIFACTS="$TMP" FUZZ_SECONDS="${FUZZ_SECONDS:-30}" FUZZ_JOBS="${FUZZ_JOBS:-$((cores < 5 ? cores : 5))}" \
    "$ROOT/tests/fuzz/run.sh" >"$TMP/run.out" 2>&1
rc=$?
while IFS= read -r line; do
    case $line in
    FAIL\ *) fail "${line#FAIL }" ;;
    *) echo "$line" ;;
    esac
done <"$TMP/run.out"
[ "$rc" -eq 0 ] || [ "$FAILED" -ne 0 ] || fail "fuzz: tests/fuzz/run.sh exited with status $rc"
