#!/usr/bin/env bash
# Fuzzes the URL grammar and the Prefer/Range/Accept header parsers with
# cargo-fuzz (libFuzzer). Not part of ./scripts/test.sh: it needs a nightly
# toolchain and takes minutes.
#
#     ./scripts/fuzz.sh [seconds]                 # total budget, default 600
#     FUZZ_TARGETS="query accept" ./scripts/fuzz.sh 120
#
# The budget is shared out: `query` (the whole query string, re-parsed from
# its canonical form) gets two parts, `filter_value`, `prefer` (Prefer and
# Range) and `accept` one part each. Every input has 2 s (-timeout=2) before
# it counts as a hang. Seeds come from api-runtime/fuzz/corpus/<target>/
# (committed, never written); what the fuzzer learns goes to
# api-runtime/fuzz/target/corpus/<target>/ (or $FUZZ_WORK_DIR), crashes and
# hangs to api-runtime/fuzz/artifacts/<target>/. The exit status is non-zero
# if any target found a crash or a hang.
#
# Needs: rustup's nightly toolchain (`rustup toolchain install nightly`) and
# cargo-fuzz, which this script installs (`cargo install cargo-fuzz
# --locked`) when it is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"
BUDGET="${1:-600}"
TARGETS="${FUZZ_TARGETS:-query filter_value prefer accept}"
WORK="${FUZZ_WORK_DIR:-$REPO_ROOT/api-runtime/fuzz/target/corpus}"

if ! [[ "$BUDGET" =~ ^[0-9]+$ ]] || [ "$BUDGET" -lt 4 ]; then
    echo "fuzz.sh: the budget is a whole number of seconds, at least 4 (got '$BUDGET')" >&2
    exit 2
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is not installed; installing it now with: cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi

parts=0
for t in $TARGETS; do
    if [ "$t" = query ]; then parts=$((parts + 2)); else parts=$((parts + 1)); fi
done

cd "$REPO_ROOT/api-runtime/fuzz"
echo "fuzz.sh: building the targets (nightly, AddressSanitizer, debug assertions)"
cargo +nightly fuzz build

failed=()
summary=()
for t in $TARGETS; do
    share=1
    [ "$t" = query ] && share=2
    seconds=$((BUDGET * share / parts))
    mkdir -p "$WORK/$t"
    log="$WORK/$t.log"
    cmd=(cargo +nightly fuzz run "$t" "$WORK/$t" "corpus/$t" -- "-max_total_time=$seconds" -timeout=2 -print_final_stats=1)
    echo "fuzz.sh: ${cmd[*]}"
    set +e
    "${cmd[@]}" 2>&1 | tee "$log" | grep --line-buffered -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^(==|SUMMARY|Done)|panicked|Timeout'
    status=${PIPESTATUS[0]}
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1)
    summary+=("$t: ${seconds}s, ${runs:-?} executions, ${rate:-?} exec/s, ${cov:-no coverage line}, exit $status")
    [ "$status" -eq 0 ] || failed+=("$t")
done

echo
echo "fuzz.sh: summary (budget ${BUDGET}s)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crash or hang in: ${failed[*]} (inputs in api-runtime/fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: no crash, no hang"
