#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs each one for a bounded time.
#
#   scripts/fuzz.sh [seconds-per-target]       (default 20)
#
# Stable toolchain only: the targets are libFuzzer binaries (the `libfuzzer-sys` crate
# builds libFuzzer from source with the machine's C++ compiler), compiled with the
# SanitizerCoverage flags rustc accepts on stable and no sanitizer. Nothing is
# installed: the first build fetches crates and takes a few minutes; later builds
# reuse $EMBER_FUZZ_TARGET_DIR.
#
# Each target runs on a copy of fuzz/corpus/<target> in a temporary folder, so runs
# never add files to the committed corpus. A crash, a timeout (an input taking longer
# than $EMBER_FUZZ_TIMEOUT seconds) or running out of memory fails the run: the input
# is kept in fuzz/artifacts/<target>/ and its path printed with the end of the log.
#
# Settings (environment):
#   EMBER_FUZZ_TARGETS     targets to run (default: every target in fuzz/fuzz_targets)
#   EMBER_FUZZ_TARGET_DIR  cargo target dir (default: $HOME/.cache/ember-fuzz-target)
#   EMBER_FUZZ_JOBS        targets run at once (default: the number of cores, at most 4)
#   EMBER_FUZZ_TIMEOUT     seconds one input may take (default 10)
#   EMBER_FUZZ_STACK_KB    stack of the fuzzing thread (default 2048: tokio's worker
#                          threads, where the server runs this code, have 2 MiB)
#   EMBER_FUZZ_KEEP        keep the temporary folder (corpora grown by the run) if set
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)

seconds=${1:-20}
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [seconds-per-target]" >&2
    exit 2
fi
target_dir=${EMBER_FUZZ_TARGET_DIR:-$HOME/.cache/ember-fuzz-target}
timeout=${EMBER_FUZZ_TIMEOUT:-10}
stack_kb=${EMBER_FUZZ_STACK_KB:-2048}
jobs=${EMBER_FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 4 ] && jobs=4
if [ -n "${EMBER_FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$EMBER_FUZZ_TARGETS"
else
    targets=()
    for f in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# The flags cargo-fuzz passes with `--sanitizer none`, all accepted by stable rustc:
# libFuzzer's coverage feedback (SanitizerCoverage: 8-bit counters, PC table,
# comparisons, stack depth), `cfg(fuzzing)`, and debug assertions (so arithmetic
# overflow panics) in an optimised build. One codegen unit: the coverage pass keeps
# functions from being inlined across units otherwise, and the targets run 2-3 times
# slower; the cold build is no longer for it.
flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg=fuzzing
    -Cdebug-assertions
    -Ccodegen-units=1
)
# CARGO_ENCODED_RUSTFLAGS would override RUSTFLAGS; keep any extra flags of the caller.
unset CARGO_ENCODED_RUSTFLAGS
export RUSTFLAGS="${flags[*]}${RUSTFLAGS:+ $RUSTFLAGS}"

# The fuzz crate has its own lock file, started from the workspace's so that both
# build the same versions; cargo then adds libfuzzer-sys and drops what is unused.
if [ ! -f fuzz/Cargo.lock ] || [ Cargo.lock -nt fuzz/Cargo.lock ]; then
    cp Cargo.lock fuzz/Cargo.lock
fi

echo "fuzz: building ${targets[*]} (target dir $target_dir)"
start=$(date +%s)
# `--target` keeps the coverage flags away from build scripts and proc macros.
build=(cargo build --manifest-path fuzz/Cargo.toml --release --target "$host"
    --target-dir "$target_dir")
for t in "${targets[@]}"; do
    build+=(--bin "$t")
done
"${build[@]}"
echo "fuzz: built in $(($(date +%s) - start)) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/ember-fuzz.XXXXXX")
cleanup() {
    # Targets still running when the script is interrupted.
    local pid
    for pid in "$work"/*.pid; do
        [ -f "$pid" ] && [ ! -f "${pid%.pid}.status" ] && kill "$(cat "$pid")" 2>/dev/null
    done
    wait
    if [ -n "${EMBER_FUZZ_KEEP:-}" ]; then
        echo "fuzz: kept $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Runs one target; writes its log to $work/<target>.log and its status to
# $work/<target>.status.
run_one() {
    local t=$1 dir="$work/$1"
    local artifacts="$root/fuzz/artifacts/$t"
    mkdir -p "$dir/tmp" "$artifacts"
    cp -R "fuzz/corpus/$t" "$dir/corpus"
    local status=0 pid
    (
        ulimit -s "$stack_kb"
        cd "$dir"
        TMPDIR="$dir/tmp" exec "$target_dir/$host/release/$t" \
            -max_total_time="$seconds" \
            -timeout="$timeout" \
            -rss_limit_mb=2048 \
            -print_final_stats=1 \
            -artifact_prefix="$artifacts/" \
            "$dir/corpus"
    ) >"$work/$t.log" 2>&1 &
    pid=$!
    echo "$pid" >"$work/$t.pid"
    wait "$pid" || status=$?
    echo "$status" >"$work/$t.status"
}

[ "$jobs" -gt "${#targets[@]}" ] && jobs=${#targets[@]}
echo "fuzz: running ${#targets[@]} target(s) for $seconds s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait || true

failed=()
for t in "${targets[@]}"; do
    log="$work/$t.log"
    status=$(cat "$work/$t.status" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -n 1 || true)
    if [ "$status" = 0 ]; then
        echo "fuzz: $t: ${execs:-?} executions (${rate:-?}/s), $cov: ok"
    else
        failed+=("$t")
        echo "fuzz: $t: FAILED (exit $status) after ${execs:-?} executions; from its log:"
        {
            # The panic and the top of its backtrace, then libFuzzer's report.
            grep -a -m 1 -A 24 'panicked at\|has overflowed its stack' "$log" || true
            echo '...'
            sed -n '/ERROR: libFuzzer\|ALARM: working on the last Unit/,$p' "$log" |
                grep -v '^stat::' || true
        } | sed 's/^/    /'
        input=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
        if [ -n "$input" ]; then
            echo "fuzz: $t: failing input: $input"
            echo "fuzz: $t: reproduce: (ulimit -s $stack_kb; $target_dir/$host/release/$t $input)"
        fi
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}"
    exit 1
fi
echo "fuzz: ${#targets[@]} target(s) ran $seconds s each without a failure"
