#!/usr/bin/env bash
# Instructions the runtime executes per request, W1..W5, counted by
# valgrind's callgrind: a count that does not move with whatever else runs on
# the machine (this VM has no hardware counters, so `perf stat` cannot count
# instructions). The runtime runs under callgrind with instrumentation off; after
# a warm-up of the same workload (prepared statements, pools, caches), the
# count is taken over N sequential keep-alive requests and divided by N.
# Uses the release binary and the dataset bench/run.sh brought up.
#
#   bench/instructions.sh                  (W1..W5, N=300 each)
#   N=1000 bench/instructions.sh W3 W4
#   KEEP=/tmp/prof bench/instructions.sh W3    (keep callgrind.W3.out there:
#       callgrind_annotate --inclusive=yes /tmp/prof/callgrind.W3.out | head -60
#       is the profile of the request path, the flame graph's data in text)
#   CONFIG=roles.yaml bench/instructions.sh    (serve with a --config document)
#   OURS_HEADERS='apikey: <key>' CONFIG=secured.yaml bench/instructions.sh W3   (headers on every request,
#       '|' between them, as for the shared run.sh)
#   CONFIG=cache.yaml SERVE_ARGS="--redis-url redis://127.0.0.1:6379" bench/instructions.sh W6
#       (more `serve` arguments; W6 with the response cache)
#   RUNTIME_BIN=/path/to/old/dbapi-runtime bench/instructions.sh   (another build, for a before/after)
#   DBAPI_WORKER_THREADS=2 bench/instructions.sh   (the multi-threaded scheduler; the default here
#       is 1, the scheduler the benchmark's server, pinned to one CPU, gets)
set -euo pipefail
export DBAPI_WORKER_THREADS=${DBAPI_WORKER_THREADS:-1}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
require_bench_cluster
BIN=${RUNTIME_BIN:-$BIN}
require_release_binary
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$SHARED_BENCH/targets/ours.sh"
N=${N:-300}
WARM=${WARM:-300}
LISTEN=${LISTEN:-127.0.0.1:8183}
ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:9193}
WORK=$(mktemp -d)
trap 'kill "${RT:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(W1 W2 W3 W4 W5)
read -ra serve_args <<<"${SERVE_ARGS:-}"

# Sequential requests on one keep-alive connection, from the shared
# templates with the shared placeholders (seeded: the same requests each run).
drive() {
    python3 - "$LISTEN" "$1" "$2" "$3" "$4" "${REQ_HEADERS:-}" <<'EOF'
import http.client, random, re, sys
listen, n, method, path, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
extra = dict(h.split(":", 1) for h in sys.argv[6].split("|") if ":" in h)
extra = {k.strip(): v.strip() for k, v in extra.items()}
host, port = listen.rsplit(":", 1)
rnd = random.Random(42)
conn = http.client.HTTPConnection(host, int(port))
bad = 0
for _ in range(n):
    offset = rnd.randint(0, 10000)
    v = {"offset": offset, "page": offset // 25 + 1, "id": rnd.randint(1, 1000000),
         "customer_id": rnd.randint(1, 100000), "total": "%d.%02d" % (rnd.randint(1, 999), rnd.randint(0, 99))}
    fill = lambda s: re.sub(r"\{(\w+)\}", lambda m: str(v[m.group(1)]), s)
    headers = dict(extra, **({"Content-Type": "application/json"} if body else {}))
    # As wrk sends it: no Accept-Encoding (http.client would add "identity").
    data = fill(body).encode() if body else None
    conn.putrequest(method, fill(path), skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    if data is not None:
        conn.putheader("Content-Length", str(len(data)))
    conn.endheaders(data)
    r = conn.getresponse()
    r.read()
    bad += r.status >= 300
if bad:
    sys.exit(f"{bad} of {n} answers were not 2xx")
EOF
}

# Another process on these ports would answer the readiness probe in our
# runtime's place and the requests would then go nowhere.
for addr in "$LISTEN" "$ADMIN_LISTEN"; do
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
        echo "$addr is taken by another process; stop it or set LISTEN / ADMIN_LISTEN" >&2
        exit 1
    fi
done
printf '%-4s %12s %10s\n' workload instructions/req requests
for w in "${workloads[@]}"; do
    method_var=${w}_METHOD path_var=${w}_PATH body_var=${w}_BODY
    method=${!method_var:-GET} path=${!path_var} body=${!body_var:-}
    args=(serve --listen "$LISTEN" --admin-listen "$ADMIN_LISTEN")
    [ -n "${CONFIG:-}" ] && args+=(--config "$CONFIG")
    args+=("${serve_args[@]}")
    out=$WORK/callgrind.$w.out
    DBAPI_DATABASE_URL=$DATABASE_URL valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
        "$BIN" "${args[@]}" >"$WORK/runtime.$w.log" 2>&1 &
    RT=$!
    for _ in $(seq 300); do curl -sf -o /dev/null "http://$ADMIN_LISTEN/readyz" && break; sleep 0.2; done
    curl -sf -o /dev/null "http://$ADMIN_LISTEN/readyz" || { cat "$WORK/runtime.$w.log" >&2; exit 1; }
    drive "$WARM" "$method" "$path" "$body"
    callgrind_control -i on "$RT" >/dev/null
    drive "$N" "$method" "$path" "$body"
    callgrind_control -i off "$RT" >/dev/null
    kill -INT "$RT"
    wait "$RT" || true
    RT=
    total=$(awk '/^totals:/ {t = $2} END {print t + 0}' "$out")
    printf '%-4s %12d %10d\n' "$w" $((total / N)) "$N"
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$out" "$KEEP/"; fi
done
