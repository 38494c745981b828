#!/usr/bin/env bash
# Issue 4: a 1,000-row bulk insert, POST /orders with a JSON array of 1,000
# new orders, against dbapi-runtime on the shared dataset (server and
# PostgreSQL pinned to SERVER_CPUS, the client to LOAD_CPUS), one request at
# a time; next to the database alone running the same 1,000-row INSERT
# (pgbench, one client). Target: median under 50 ms. Inserted rows are
# deleted afterwards.
#
#   bench/bulk_insert.sh            (needs the dataset: bench/run.sh first)
#   ROUNDS=100 ROWS=1000 LISTEN=127.0.0.1:8181 ADMIN_LISTEN=127.0.0.1:9191
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
require_bench_cluster
ROUNDS=${ROUNDS:-100}
ROWS=${ROWS:-1000}
LISTEN=${LISTEN:-127.0.0.1:8181}
ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:9191}
require_release_binary
WORK=$(mktemp -d)

cleanup() {
    kill "${RT:-}" 2>/dev/null || true
    psql_bench -d "$DATABASE_URL" -c "DELETE FROM orders WHERE id > $ORDERS_BASE" -c "SELECT setval('orders_id_seq', $ORDERS_BASE)" \
        -c "VACUUM ANALYZE orders" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The same rows for both sides: customers and totals spread over the data.
python3 - "$ROWS" "$WORK" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
rows = [{"customer_id": 1 + (i * 7919) % 100000, "status": "pending", "total": round((i * 37) % 50000 / 100, 2)}
        for i in range(n)]
json.dump(rows, open(f"{work}/body.json", "w"))
values = ",".join(f"({r['customer_id']}, 'pending', {r['total']})" for r in rows)
open(f"{work}/insert.sql", "w").write(f"INSERT INTO orders (customer_id, status, total) VALUES {values};\n")
PY

start_runtime

post() {
    $(pin_load) curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "http://$LISTEN/orders" \
        -H 'Content-Type: application/json' --data-binary "@$WORK/body.json"
}
for _ in 1 2 3 4 5; do post >/dev/null; done   # warm-up
for _ in $(seq "$ROUNDS"); do post; done >"$WORK/times"
# The database alone: the same INSERT, one client, as many rounds.
$(pin_load) "$PGBIN/pgbench" -n -c 1 -t "$ROUNDS" -r -f "$WORK/insert.sql" "$DATABASE_URL" >"$WORK/pgbench.txt" 2>&1 \
    || { cat "$WORK/pgbench.txt" >&2; exit 1; }
pg_ms=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$WORK/pgbench.txt")

python3 - "$WORK/times" "$ROWS" "$pg_ms" <<'PY'
import statistics, sys
lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
bad = [c for c, _ in lines if c != "201"]
ms = sorted(float(t) * 1000 for _, t in lines)
med, p90 = statistics.median(ms), ms[int(0.9 * (len(ms) - 1))]
print(f"\n## bulk insert: POST /orders with {sys.argv[2]} rows, {len(ms)} requests one at a time\n")
print("| | median | p90 | max |\n|---|---|---|---|")
print(f"| dbapi-runtime | {med:.1f} ms | {p90:.1f} ms | {ms[-1]:.1f} ms |")
print(f"| pgbench, same INSERT (average) | {float(sys.argv[3]):.1f} ms | | |")
print(f"\n- target median < 50 ms: {'yes' if med < 50 and not bad else 'no'}"
      + (f"; {len(bad)} responses were not 201" if bad else ""))
PY
