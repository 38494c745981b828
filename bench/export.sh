#!/usr/bin/env bash
# Issue 17, item 10: a streamed export of the whole `order_items` table of the
# shared dataset (about 2.5 M rows) through dbapi-runtime, in NDJSON and in
# CSV, by a role whose `maxRows` allows it; the runtime's resident memory is
# sampled during the export. Next to it, the database alone producing the
# same JSON rows (`COPY (SELECT json_build_object(...)) TO STDOUT` through
# psql). Targets: the runtime's peak RSS under 64 MiB whatever the export's
# size; throughput in rows/s reported against the database's own.
#
#   bench/export.sh            (needs the dataset: bench/run.sh or db_up.sh)
#   ROUNDS=3 LISTEN=127.0.0.1:8181 ADMIN_LISTEN=127.0.0.1:9191
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
require_bench_cluster
ROUNDS=${ROUNDS:-3}
LISTEN=${LISTEN:-127.0.0.1:8181}
ADMIN_LISTEN=${ADMIN_LISTEN:-127.0.0.1:9191}
require_release_binary
WORK=$(mktemp -d)

cleanup() {
    kill "${SAMPLER:-}" "${RT:-}" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# Anonymous callers act as a role that may export whole tables; JSON
# answers stay at the default cap.
cat >"$WORK/config.yaml" <<'YAML'
auth: {anonymousRole: exporter}
roles:
  - name: exporter
    maxRows: 100000000
    rules: [{tables: ["*"], verbs: [GET]}]
server: {requestTimeoutSeconds: 600}
YAML

start_runtime --config "$WORK/config.yaml"

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$RT/status"; }
# The most resident memory seen while `$1` runs, sampled every 20 ms.
sample_while() {
    : >"$WORK/rss"
    ( while kill -0 "$RT" 2>/dev/null; do rss_kib >>"$WORK/rss"; sleep 0.02; done ) &
    SAMPLER=$!
    "$@"
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    sort -n "$WORK/rss" | tail -1
}

# One export: status, bytes, seconds on stderr (curl's -w), lines on stdout.
export_once() {
    $(pin_load) curl -sS -H "Accept: $1" -w '%{stderr}%{http_code} %{size_download} %{time_total}\n' \
        "http://$LISTEN/order_items" 2>"$WORK/curl" | wc -l >"$WORK/lines"
}

rows=$(psql_bench -d "$DATABASE_URL" -Atc "SELECT COUNT(*) FROM order_items")
idle=$(rss_kib)
echo "order_items: $rows rows; runtime RSS idle: $((idle / 1024)) MiB"
printf '%-22s %10s %12s %10s %12s %12s\n' format lines MiB seconds rows/s "peak RSS MiB"
for format in application/x-ndjson text/csv; do
    for _ in $(seq "$ROUNDS"); do
        peak=$(sample_while export_once "$format")
        read -r status bytes seconds <"$WORK/curl"
        lines=$(cat "$WORK/lines")
        [ "$status" = 200 ] || { echo "export answered $status" >&2; exit 1; }
        python3 - "$format" "$lines" "$bytes" "$seconds" "$peak" <<'PY'
import sys
fmt, lines, size, secs, peak = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
print(f"{fmt:<22} {lines:>10} {size / 2**20:>12.1f} {secs:>10.2f} {lines / secs:>12,.0f} {peak / 1024:>12.1f}")
PY
    done
done

# The database alone: the same objects, written by COPY to psql (same core).
columns="json_build_object('id', id, 'order_id', order_id, 'product_id', product_id, 'qty', qty, 'unit_price', unit_price)"
for _ in $(seq "$ROUNDS"); do
    start=$(date +%s.%N)
    $(pin_load) "$PGBIN/psql" -X -q -d "$DATABASE_URL" -Atc "COPY (SELECT $columns FROM order_items) TO STDOUT" >/dev/null
    end=$(date +%s.%N)
    python3 -c "import sys; s = $end - $start; print(f\"{'database alone (COPY)':<22} {$rows:>10} {'':>12} {s:>10.2f} {$rows / s:>12,.0f}\")"
done
echo "runtime peak RSS over the whole run (VmHWM): $(awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$RT/status") MiB"
