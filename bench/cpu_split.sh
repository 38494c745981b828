#!/usr/bin/env bash
# Where CPU 0 goes during one workload: dbapi-runtime's own CPU time and the
# benchmark cluster's backends' CPU time, per request, over a 10 s wrk run
# with the shared harness's pinning (server + PostgreSQL on SERVER_CPUS, wrk
# on LOAD_CPUS). Uses the release binary as built by bench/run.sh and the
# dataset it brought up.
#
#   bench/cpu_split.sh W2                 (W1..W6; the request comes from targets/ours.sh)
#   REDIS=1 bench/cpu_split.sh W6 cache.yaml   (with a throwaway redis-server pinned with the server,
#       passed as --redis-url; its CPU is counted apart)
#   bench/cpu_split.sh W2 pool16.yaml     (with a --config document)
#   URL_SUFFIX='?host=/var/tmp/dbapi-bench/pg' bench/cpu_split.sh W2     (Unix socket)
#   URL_SUFFIX='?options%5Bplan_cache_mode%5D=force_generic_plan' bench/cpu_split.sh W2
#   PERF=/tmp/w2.perf bench/cpu_split.sh W2   (also perf record -C 0 -g for 4 s; PERF_ARGS replaces -g,
#       e.g. PERF_ARGS="-e cpu-clock --call-graph dwarf,32768 -F 499" where frame pointers are missing)
#   RUNTIME_BIN=/path/to/other/dbapi-runtime bench/cpu_split.sh W3   (another build, for an A/B)
#   OURS_HEADERS='apikey: <key>' bench/cpu_split.sh W1 secured.yaml   (headers on every request, '|' between them)
#   LABEL=text, DURATION=10s, LISTEN=127.0.0.1:8181, ADMIN_LISTEN=127.0.0.1:9191
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
W=${1:?usage: cpu_split.sh W1|W2|W3|W4 [config.yaml]}
CONF=${2:-}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
require_bench_cluster
# shellcheck source=/dev/null
. "$SHARED_BENCH/targets/ours.sh"
export W1_PATH W2_PATH W3_PATH W4_PATH W5_METHOD W5_PATH W5_BODY W6_PATH REQ_HEADERS
LISTEN=${LISTEN:-127.0.0.1:8181}
ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:9191}
BIN=${RUNTIME_BIN:-$REPO/target/release/dbapi-runtime}
command -v "$WRK" >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
DURATION=${DURATION:-10s}

args=(serve --listen "$LISTEN" --admin-listen "$ADMIN_LISTEN")
[ -n "$CONF" ] && args+=(--config "$CONF")
RS=""
if [ "${REDIS:-0}" = 1 ]; then
    command -v redis-server >/dev/null || { echo "redis-server not found (apt-get install redis-server)" >&2; exit 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    $(pin_server) redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir /tmp \
        >"${TMPDIR:-/tmp}/cpu_split_redis.log" 2>&1 &
    RS=$!
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    args+=(--redis-url "redis://127.0.0.1:$port")
fi
DBAPI_DATABASE_URL="$DATABASE_URL${URL_SUFFIX:-}" $(pin_server) "$BIN" "${args[@]}" >"${TMPDIR:-/tmp}/cpu_split_runtime.log" 2>&1 &
RT=$!
trap 'kill "$RT" $RS 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://$ADMIN_LISTEN/readyz" && break; sleep 0.2; done
script=$(ls "$SHARED_BENCH"/wrk/"${W,,}"_*.lua)
$(pin_load) "$WRK" -t1 -c32 -d3s -s "$script" "http://$LISTEN" >/dev/null 2>&1   # warm-up
sleep 1

ticks() { local s=0 p f; for p in "$@"; do { read -ra f <"/proc/$p/stat"; } 2>/dev/null && s=$((s + f[13] + f[14])); done; echo "$s"; }
backends() { ps -o pid= --ppid "$PM" | tr '\n' ' '; }   # this cluster only
hz=$(getconf CLK_TCK)
b0=$(backends); r0=$(ticks "$RT"); g0=$(ticks $b0); s0=$(ticks $RS)
PP=""
if [ -n "${PERF:-}" ]; then (sleep 3; perf record -F 1999 -C "$SERVER_CPUS" ${PERF_ARGS:--g} -o "$PERF" -- sleep 4 >/dev/null 2>&1) & PP=$!; fi
out=$($(pin_load) "$WRK" -t1 -c32 -d"$DURATION" -s "$script" "http://$LISTEN" 2>&1)
r1=$(ticks "$RT"); g1=$(ticks $b0); s1=$(ticks $RS)
# backends that appeared during the run count in full
for p in $(backends); do [[ " $b0 " == *" $p "* ]] || g1=$((g1 + $(ticks "$p"))); done
[ -n "$PP" ] && wait "$PP"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$RT/status")
sed -n 's/^RESULT //p' <<<"$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
rt, pg, hwm, hz, label, rs = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5],
                              int(sys.argv[6]) if len(sys.argv) > 6 else None)
n = r["requests"]
err = r["non2xx"] + r["sock_errors"] + r["timeouts"]
redis = "  redis %5.1f us/req" % (rs * 1e6 / hz / n) if rs is not None else ""
print("%-26s %6.0f req/s  p50 %5.1f  p99 %5.1f ms  err %d  runtime %5.1f us/req  postgres %5.1f us/req%s  "
      "(server CPU used %3.0f%%)  runtime VmHWM %.1f MiB"
      % (label, r["rps"], r["p50_ms"], r["p99_ms"], err, rt * 1e6 / hz / n, pg * 1e6 / hz / n, redis,
         100.0 * (rt + pg + (rs or 0)) / hz / r["duration_s"], hwm / 1024))
' $((r1 - r0)) $((g1 - g0)) "$hwm" "$hz" "$W ${LABEL:-}" ${RS:+$((s1 - s0))}
