# Shared start of the bench/ tools: the shared harness's settings, the
# machine-wide benchmark lock and where the dataset's cluster lives.
# Sourced (not run) by bench/*.sh after they set HERE.
# shellcheck shell=bash

REPO=$(cd "$HERE/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "$REPO/.." && pwd)/shared/bench}
[ -f "$SHARED_BENCH/env.sh" ] || { echo "shared harness not found at $SHARED_BENCH (set SHARED_BENCH)" >&2; exit 1; }
CALLER_BENCH_DIR=${BENCH_DIR:-}
# shellcheck source=/dev/null
. "$SHARED_BENCH/env.sh"

# One benchmark at a time on this machine: two runs would share the CPUs,
# the database and the ports (the shared run.sh would even measure the other
# run's server). Every bench/ tool takes this lock.
mkdir -p "$PEERS_DIR"
if [ "${BENCH_LOCK_HELD:-0}" = 1 ]; then
    :   # started by bench/run.sh, which holds the lock
elif ! { exec 9>"$PEERS_DIR/bench.lock"; flock -n 9; }; then
    echo "[bench] another benchmark holds $PEERS_DIR/bench.lock; waiting for it" >&2
    flock -w "${LOCK_WAIT_S:-3600}" 9 || { echo "[bench] gave up waiting for the lock" >&2; exit 1; }
fi

# bench/run.sh puts PGDATA under /var/tmp when run as root (the PostgreSQL
# OS user cannot enter /root).
if [ -z "$CALLER_BENCH_DIR" ] && [ -d /var/tmp/dbapi-bench/pg ] && [ ! -s "$BENCH_DIR/PG_VERSION" ]; then
    BENCH_DIR=/var/tmp/dbapi-bench/pg
fi

# Fails unless the dataset's cluster runs; pins it like the shared run.sh.
require_bench_cluster() {
    [ -s "$BENCH_DIR/postmaster.pid" ] || { echo "PostgreSQL is not running (run bench/run.sh first)" >&2; exit 1; }
    PM=$(head -1 "$BENCH_DIR/postmaster.pid")
    if [ "$PIN" = 1 ]; then
        taskset -a -p -c "$SERVER_CPUS" "$PM" >/dev/null
        for c in $(ps -o pid= --ppid "$PM"); do taskset -a -p -c "$SERVER_CPUS" "$c" >/dev/null 2>&1 || true; done
    fi
}

# The release binary the tools measure.
BIN=$REPO/target/release/dbapi-runtime
require_release_binary() {
    [ -x "$BIN" ] || { echo "$BIN missing: cargo build --release -p dbapi-runtime" >&2; exit 1; }
}

# Starts the runtime on the dataset, pinned like the shared run.sh, with
# any extra `serve` arguments; its log goes to $WORK/runtime.log. Sets RT
# (its pid) and returns once /readyz answers, else stops with the log.
start_runtime() {
    DBAPI_DATABASE_URL=$DATABASE_URL $(pin_server) "$BIN" serve "$@" --listen "$LISTEN" --admin-listen "$ADMIN_LISTEN" \
        >"$WORK/runtime.log" 2>&1 &
    RT=$!
    for _ in $(seq 100); do curl -sf -o /dev/null "http://$ADMIN_LISTEN/readyz" && return 0; sleep 0.2; done
    cat "$WORK/runtime.log" >&2
    exit 1
}
