#!/usr/bin/env bash
# The project's one test command.
#
#     ./scripts/test.sh [extra args for the cargo test runner]
#     ./scripts/test.sh -E 'test(grammar)'      # e.g. a nextest filter
#
# Starts throwaway PostgreSQL, MariaDB and Redis instances (see
# scripts/test-services.sh; set DBAPI_TEST_PG_URL / DBAPI_TEST_MYSQL_URL /
# DBAPI_TEST_REDIS_URL to use running servers instead), then runs:
#   1. the Rust tests: `cargo nextest run --workspace --no-fail-fast` when
#      cargo-nextest is installed, else `cargo test --workspace --no-fail-fast`;
#      then the pipeline microbenchmarks once each (api-runtime/benches,
#      `cargo test --bench pipeline`: they must run, they are not timed);
#   2. tests/compat/run.sh, the PostgREST-client compatibility suite, if present;
#   3. scripts/chart-check.sh, if present;
#   4. images: scripts/images.sh then scripts/image-check.sh, the container
#      images as OCI archives from the debug build, and their checks (needs
#      Debian's umoci: installed with apt-get when run as root, else the
#      step is reported skipped).
# Every step runs even if an earlier one failed; the exit status is non-zero
# if any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO_ROOT="$(pwd)"

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found; install the Rust toolchain (https://rustup.rs) and cargo-nextest (cargo install cargo-nextest --locked)" >&2
    exit 1
fi

# shellcheck source=scripts/test-services.sh
source "$REPO_ROOT/scripts/test-services.sh"

require_binaries

trap stop_test_services EXIT
# Make Ctrl-C / kill run the EXIT trap so no server is left behind.
trap 'exit 130' INT
trap 'exit 143' TERM

start_test_services

# One target dir for everything built here, including by the compat suite.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

echo "test.sh: services in use:"
echo "    DBAPI_TEST_PG_URL=$DBAPI_TEST_PG_URL"
echo "    DBAPI_TEST_MYSQL_URL=$DBAPI_TEST_MYSQL_URL"
echo "    DBAPI_TEST_REDIS_URL=$DBAPI_TEST_REDIS_URL"


results=()
failed=0

# run_step NAME COMMAND...: runs the command, records "NAME: ok|FAILED (exit N)".
run_step() {
    local name="$1" rc=0
    shift
    echo
    echo "==> $name: $*"
    "$@" || rc=$?
    if ((rc == 0)); then
        results+=("$name: ok")
    else
        results+=("$name: FAILED (exit $rc)")
        failed=1
    fi
}

if [[ -z "${KUBECONFIG:-}" ]]; then
    echo "test.sh: NOTE: KUBECONFIG is not set, so the operator end-to-end test (tests/e2e) will report itself SKIPPED;"
    echo "test.sh:       point KUBECONFIG at a kind or k3d cluster to run it (README: End-to-end tests)."
fi

run_step "cargo fmt" cargo fmt --all -- --check
run_step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
    run_step "cargo nextest" cargo nextest run --workspace --no-fail-fast "$@"
else
    echo "test.sh: cargo-nextest not installed; falling back to cargo test" >&2
    run_step "cargo test" cargo test --workspace --no-fail-fast "$@"
fi
# The pipeline microbenchmarks, each run once (a smoke test, never timed).
run_step "benches" cargo test -p dbapi-runtime --bench pipeline

compat="tests/compat/run.sh"
if [[ -x "$compat" ]]; then
    run_step "compat" "./$compat"
elif [[ -e "$compat" ]]; then
    echo "test.sh: WARNING: $compat exists but is not executable (chmod +x it); not run" >&2
    results+=("compat: FAILED (not executable)")
    failed=1
else
    results+=("compat: skipped (no $compat)")
fi

chart="scripts/chart-check.sh"
if [[ -x "$chart" ]]; then
    run_step "chart-check" "./$chart"
elif [[ -e "$chart" ]]; then
    run_step "chart-check" bash "$chart"
else
    results+=("chart-check: skipped (no $chart)")
fi

# The container images. From the debug build the steps above made
# (DBAPI_IMAGE_PROFILE=dev): a release build of both binaries takes about
# 15 minutes on two cores, and the images are assembled and checked the same
# way whatever the profile. umoci comes from Debian, as the services do;
# installed here when we may, since the step is worthless skipped in CI.
images_step() {
    local rc=0 start=$SECONDS
    echo
    echo "==> images: scripts/images.sh && scripts/image-check.sh"
    if ! command -v umoci >/dev/null 2>&1 && ((EUID == 0)) && command -v apt-get >/dev/null 2>&1; then
        echo "test.sh: installing umoci (apt-get install -y -qq umoci)"
        { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq umoci ||
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq umoci; }; } >/dev/null 2>&1 ||
            echo "test.sh: apt-get install umoci failed" >&2
    fi
    # Apart from target/images/, so no debug image is taken for a release one.
    export DBAPI_IMAGE_PROFILE="${DBAPI_IMAGE_PROFILE:-dev}"
    export DBAPI_IMAGE_DIR="${DBAPI_IMAGE_DIR:-$CARGO_TARGET_DIR/images/test-$DBAPI_IMAGE_PROFILE}"
    ./scripts/images.sh || rc=$?
    if ((rc == 3)); then
        results+=("images: skipped (install umoci: apt-get install umoci)")
        return
    elif ((rc != 0)); then
        results+=("images: FAILED (scripts/images.sh exit $rc)")
        failed=1
        return
    fi
    ./scripts/image-check.sh || rc=$?
    echo "test.sh: images step took $((SECONDS - start))s"
    case $rc in
        0) results+=("images: ok") ;;
        3) results+=("images: ok, binaries not started (chroot needs root)") ;;
        *) results+=("images: FAILED (scripts/image-check.sh exit $rc)"); failed=1 ;;
    esac
}
if [[ -e scripts/images.sh ]]; then
    images_step
else
    results+=("images: skipped (no scripts/images.sh)")
fi

summary="$(printf '%s; ' "${results[@]}")"
summary="${summary%; }"
echo
if ((failed)); then
    echo "test.sh: FAILED after ${SECONDS}s -- $summary"
    exit 1
fi
echo "test.sh: OK after ${SECONDS}s -- $summary"
