#!/usr/bin/env bash
# run.sh - replays the fuzz regression inputs, then fuzzes each target for a bounded time.
#
#   tests/fuzz/run.sh [TARGET...]        default: every build-fuzz/fuzz_* (make fuzz-build first)
#
# Environment:
#   FUZZ_SECONDS    seconds of fuzzing per target (30)
#   FUZZ_JOBS       targets fuzzed at the same time (1)
#   FUZZ_BUILD      where the fuzzers are (build-fuzz)
#   FUZZ_ARTIFACTS  where crashing inputs and logs go ($FUZZ_BUILD/artifacts)
#
# For each target: every file in tests/fuzz/regressions/TARGET/ is run once (a past crash
# that must stay fixed), then libFuzzer runs for FUZZ_SECONDS over the seed corpus
# tests/fuzz/corpus/TARGET/ (read only) and the working corpus $FUZZ_BUILD/corpus/TARGET/
# (where new inputs go, so the repository is never written to), with tests/fuzz/TARGET.dict
# when there is one. A crash, sanitizer report, broken invariant, timeout (10 s per input) or
# memory blow-up is a FAIL that names the saved input and how to replay it.
# Prints "PASS <target> ..." / "FAIL <target> ..." lines (tests/run.sh counts them); exits 1
# on any failure.
set -u
cd "$(dirname "$0")/../.."
build=${FUZZ_BUILD:-build-fuzz}
seconds=${FUZZ_SECONDS:-30}
jobs=${FUZZ_JOBS:-1}
artifacts=${FUZZ_ARTIFACTS:-$build/artifacts}

# fuzz_ring_shm creates "/${CAPD_SHM_PREFIX}fz<pid>-cam"; a private prefix lets us clean up
# after a crash without touching anybody else's objects.
export CAPD_SHM_PREFIX=${CAPD_SHM_PREFIX:-fzr$$-}
# Sanitizer reports go to the fuzzer's stderr (our log), where libFuzzer also reports.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:symbolize=1"
unset LSAN_OPTIONS
# Stacks name functions and lines only with llvm-symbolizer; Debian's llvm-14 package has it
# under a versioned name that the sanitizers do not look for by themselves.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    for symbolizer in "$(command -v llvm-symbolizer)" /usr/lib/llvm-14/bin/llvm-symbolizer \
        "$(command -v llvm-symbolizer-14)"; do
        if [ -n "$symbolizer" ] && [ -x "$symbolizer" ]; then
            export ASAN_SYMBOLIZER_PATH=$symbolizer
            break
        fi
    done
fi

case $seconds in '' | *[!0-9]*)
    echo "FAIL fuzz: FUZZ_SECONDS must be a whole number of seconds, not '$seconds'"
    exit 1
    ;;
esac

# Longest input each target is given: room for its largest interesting structure.
max_len() {
    case $1 in
    fuzz_query) echo 4096 ;;            # QUERY_MAX_LENGTH is 2048
    fuzz_jpeg) echo 70000 ;;            # one segment may be 64 KiB
    fuzz_mjpeg_split) echo 140000 ;;    # several frames around the largest max_frame
    fuzz_ring | fuzz_ring_shm) echo 70000 ;; # a structured image of 8 slots of 8 KiB
    *) echo 65536 ;;
    esac
}

# The first lines that say what went wrong, from a libFuzzer log.
what_failed() {
    grep -m1 -E 'invariant failed|ERROR: |runtime error|ALARM|out-of-memory|deadly signal' "$1" |
        sed -E 's/^==[0-9]+==//' | cut -c1-220
}

# Frames of the report's first stack that are in this source tree (not libc's or libFuzzer's).
where_failed() {
    grep -E '^ +#[0-9]+ 0x' "$1" | grep -F "$PWD/" | grep -E '\.[ch]:[0-9]+(:[0-9]+)?$' | head -6 |
        sed -E "s|^ +#[0-9]+ 0x[0-9a-f]+ in |      at |; s|$PWD/||"
}

# fuzz_one TARGET: writes its PASS/FAIL lines to $artifacts/TARGET.result.
fuzz_one() {
    local t=$1 bin=$build/$1 result=$artifacts/$1.result log=$artifacts/$1.log
    local regressions=0 regression_failed=0 input rlog rc execs cov corpus artifact dict=()

    : >"$result"
    for input in tests/fuzz/regressions/"$t"/*; do
        [ -f "$input" ] || continue
        regressions=$((regressions + 1))
        rlog=$log.regression-$(basename "$input")
        # libFuzzer writes a crashing input again (as crash-<sha1>): keep it out of the tree.
        timeout -k 5 120 "$bin" -timeout=10 -rss_limit_mb=2048 \
            -artifact_prefix="$artifacts/$t-regression-" "$input" >"$rlog" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ]; then
            regression_failed=1
            {
                echo "FAIL $t regression $input: $(what_failed "$rlog")"
                where_failed "$rlog"
                echo "      replay: $bin $input   (log: $rlog)"
            } >>"$result"
        fi
    done
    if [ "$regressions" -gt 0 ] && [ "$regression_failed" -eq 0 ]; then
        echo "PASS $t: $regressions regression input(s) replayed cleanly" >>"$result"
    fi

    mkdir -p "$build/corpus/$t"
    [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
    timeout -k 10 $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len="$(max_len "$t")" -print_final_stats=1 \
        -artifact_prefix="$artifacts/$t-" "${dict[@]}" \
        "$build/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
    corpus=$(find "$build/corpus/$t" "tests/fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
    if [ "$rc" -eq 0 ]; then
        echo "PASS $t: ${execs:-?} executions in ${seconds} s, coverage ${cov:-?} edges," \
            "corpus $corpus inputs, no crash" >>"$result"
    else
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        {
            echo "FAIL $t: after ${execs:-?} executions: $(what_failed "$log")" \
                "$([ "$rc" -eq 124 ] && echo '(the fuzzer itself hung)')"
            where_failed "$log"
            if [ -n "$artifact" ]; then
                echo "      crashing input saved to $artifact"
                echo "      replay: $bin $artifact"
                echo "      keep it: cp $artifact tests/fuzz/regressions/$t/"
            fi
            echo "      log: $log"
        } >>"$result"
    fi
    # Only fuzz_ring_shm makes shm objects; cleaning up after another target could pull one
    # from under it while it runs in parallel (FUZZ_JOBS).
    [ "$t" = fuzz_ring_shm ] && rm -f /dev/shm/"${CAPD_SHM_PREFIX}"fz*-cam 2>/dev/null
    return 0
}

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for bin in "$build"/fuzz_*; do
        [ -x "$bin" ] && targets+=("$(basename "$bin")")
    done
fi
if [ ${#targets[@]} -eq 0 ]; then
    echo "FAIL fuzz: no fuzzers in $build (make fuzz-build)"
    exit 1
fi
mkdir -p "$artifacts"
echo "    fuzzing ${targets[*]} for $seconds s each, $jobs at a time; logs in $artifacts"
running=0
for t in "${targets[@]}"; do
    if [ ! -x "$build/$t" ]; then
        echo "FAIL $t: $build/$t not built (make fuzz-build)" >"$artifacts/$t.result"
        continue
    fi
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
status=0
for t in "${targets[@]}"; do
    cat "$artifacts/$t.result"
    grep -q '^FAIL' "$artifacts/$t.result" && status=1
done
exit "$status"
