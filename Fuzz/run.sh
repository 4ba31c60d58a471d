#!/usr/bin/env bash
# Builds the libFuzzer targets (ASan + coverage) and fuzzes each for a bounded time.
#
# Usage: Fuzz/run.sh [seconds-per-target]     (default 30)
# Environment:
#   FUZZ_SCRATCH    build folder (default /tmp/envnet-fuzz-build)
#   FUZZ_ARTIFACTS  where crashing/hanging/OOM inputs and logs go (default /tmp/envnet-fuzz-artifacts)
#   FUZZ_TARGETS    which targets to run (default "WAV CSV SafeTensors")
#   FUZZ_JOBS       build jobs (default 1)
# Exits non-zero when the build fails or any target finds a crash, hang (>5 s), or OOM (RSS over
# 2 GB, or one allocation over 512 MB). The checked-in seed corpora (Fuzz/Corpus/*) are read, never
# modified; new inputs found are kept in $FUZZ_ARTIFACTS/corpus-<target>/ for longer runs.
set -euo pipefail
export SWIFT_BACKTRACE=enable=no  # the backtracer trips ASan after a crash; ASan reports suffice
cd "$(dirname "$0")"
budget="${1:-30}"
scratch="${FUZZ_SCRATCH:-/tmp/envnet-fuzz-build}"
artifacts="${FUZZ_ARTIFACTS:-/tmp/envnet-fuzz-artifacts}"
targets="${FUZZ_TARGETS:-WAV CSV SafeTensors}"
# swiftc keeps only the last of several -sanitize= flags' coverage settings: SwiftPM passes
# -sanitize=fuzzer -sanitize=address, which leaves the Swift code without coverage
# instrumentation (libFuzzer then reports ~28 counters, all from the C target, and finds nothing
# new). -sanitize-coverage asks for it explicitly.
flags=(-c debug --scratch-path "$scratch" -j "${FUZZ_JOBS:-1}"
       --sanitize=fuzzer --sanitize=address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld
       -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table)

swift build "${flags[@]}"
bin="$(swift build "${flags[@]}" --show-bin-path)"
mkdir -p "$artifacts"

failed=()
for target in $targets; do
    corpus="Corpus/$(echo "$target" | tr '[:upper:]' '[:lower:]')"
    work="$artifacts/corpus-$target"
    log="$artifacts/Fuzz$target.log"
    mkdir -p "$work"
    echo "== Fuzz$target: ${budget} s, seeds $corpus, log $log"
    status=0
    "$bin/Fuzz$target" "$work" "$corpus" \
        -max_total_time="$budget" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=5 \
        -artifact_prefix="$artifacts/Fuzz$target-" -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E "^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|#[0-9]+ +DONE" "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "!! Fuzz$target failed (exit $status):"
        grep -E "ERROR|SUMMARY|Fatal error|Test unit written|Slowest unit|==[0-9]+==" "$log" | head -20 || true
        failed+=("Fuzz$target")
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzzing found problems in: ${failed[*]} (inputs and logs in $artifacts)"
    exit 1
fi
echo "fuzzing: no crash, hang or OOM in ${budget} s per target"
