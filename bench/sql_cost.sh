#!/usr/bin/env bash
# What the database alone pays for the SQL dbapi-runtime renders, next to the
# shared harness's SQL for the same workload: pgbench, same settings and CPU
# pinning as the shared run.sh (PostgreSQL on SERVER_CPUS, pgbench on
# LOAD_CPUS), no HTTP at all.
#
#   bench/sql_cost.sh [--quick]      (needs the dataset: bench/run.sh or db_up.sh)
#   bench/sql_cost.sh --w2-forms [--quick]
#                                    W2's page as JSON in each form the database
#                                    could build it (bench/pgbench/w2_forms), next
#                                    to the same page as plain rows: the most any
#                                    server that lets PostgreSQL build the JSON
#                                    can reach on W2 (bench/README.md, "2026-12-08")
#   ROUNDS=2 (interleaved repetitions), PGBENCH_SECONDS, PIN ... as in env.sh
#
# Columns, transactions/s:
#   shared         ../shared/bench/pgbench/wN_*.sql (plain rows, the harness's figure)
#   ours           bench/pgbench/ours_wN.sql: the runtime's statement today
#                  (whole-row json_agg, LIMIT written as a number)
#   before f0f6c8c bench/pgbench/old_wN.sql: the statement before that commit
#                  (json_build_object per row, LIMIT bound as a parameter)
#   old, generic   old_wN.sql with plan_cache_mode=force_generic_plan
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FORMS=0
for arg in "$@"; do
    case $arg in
        --quick) export PGBENCH_SECONDS=${PGBENCH_SECONDS_QUICK:-5} ;;
        --w2-forms) FORMS=1 ;;
        *) echo "usage: bench/sql_cost.sh [--quick] [--w2-forms]" >&2; exit 2 ;;
    esac
done
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
require_bench_cluster


tps() {   # file [PGOPTIONS]
    local f=$1 opts=${2:-}
    PGOPTIONS=$opts $(pin_load) "$PGBIN/pgbench" -n -M prepared -c "$PGBENCH_CLIENTS" -j 1 --random-seed=42 \
        -T "${WARMUP%s}" -f "$f" >/dev/null 2>&1
    PGOPTIONS=$opts $(pin_load) "$PGBIN/pgbench" -n -M prepared -c "$PGBENCH_CLIENTS" -j 1 --random-seed=42 \
        -T "$PGBENCH_SECONDS" -f "$f" 2>&1 | sed -n 's/^tps = \([0-9.]*\) (without.*/\1/p'
}
cell() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print(" · ".join(f"{x:,.0f}" for x in v))' $1; }
mean() { python3 -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print(sum(v)/len(v))' $1; }
ROUNDS=${ROUNDS:-2}

if [ "$FORMS" = 1 ]; then
    forms=(plain_rows json_agg_record json_build_object concat_agg concat_rows row_to_json_rows)
    echo "W2 forms: pgbench -M prepared -c $PGBENCH_CLIENTS -j 1 -T $PGBENCH_SECONDS, $ROUNDS interleaved rounds;"
    echo "PIN=$PIN (PostgreSQL on CPU $SERVER_CPUS, pgbench on CPU $LOAD_CPUS); load $(cut -d' ' -f1-3 /proc/loadavg)"
    declare -A F
    for round in $(seq "$ROUNDS"); do
        for f in "${forms[@]}"; do F[$f]+=" $(tps "$HERE/pgbench/w2_forms/$f.sql")"; done
    done
    echo
    echo "| form | tx/s | of plain rows (means) |"
    echo "|---|---|---|"
    for f in "${forms[@]}"; do
        ratio=$(python3 -c "print(f'{100*$(mean "${F[$f]}")/$(mean "${F[plain_rows]}"):.0f}%')")
        echo "| $f | $(cell "${F[$f]}") | $ratio |"
    done
    exit 0
fi

declare -A SHARED=([W1]=w1_page [W2]=w2_filter [W3]=w3_pk [W4]=w4_embed)
echo "pgbench -M prepared -c $PGBENCH_CLIENTS -j 1 -T $PGBENCH_SECONDS, $ROUNDS interleaved rounds (cells: round 1 · round 2 ...);"
echo "PIN=$PIN (PostgreSQL on CPU $SERVER_CPUS, pgbench on CPU $LOAD_CPUS); load $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A R
for round in $(seq "$ROUNDS"); do
    for w in W1 W2 W3 W4; do
        lc=${w,,}
        R[$w,s]+=" $(tps "$SHARED_BENCH/pgbench/${SHARED[$w]}.sql")"
        R[$w,o]+=" $(tps "$HERE/pgbench/ours_$lc.sql")"
        R[$w,b]+=" $(tps "$HERE/pgbench/old_$lc.sql")"
        R[$w,g]+=" $(tps "$HERE/pgbench/old_$lc.sql" "-c plan_cache_mode=force_generic_plan")"
    done
done
echo
echo "| workload | shared SQL | ours (today) | before f0f6c8c | before f0f6c8c, generic plan | ours / shared (means) |"
echo "|---|---|---|---|---|---|"
for w in W1 W2 W3 W4; do
    ratio=$(python3 -c "print(f'{100*$(mean "${R[$w,o]}")/$(mean "${R[$w,s]}"):.0f}%')")
    echo "| $w | $(cell "${R[$w,s]}") | $(cell "${R[$w,o]}") | $(cell "${R[$w,b]}") | $(cell "${R[$w,g]}") | $ratio |"
done
