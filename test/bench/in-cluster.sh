#!/usr/bin/env bash
# Runs inside pg_virtualenv.  Each workload appends rows to bench.result.
set -euo pipefail
DB=ca_bench
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB")
dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
"${PSQL[@]}" -c "CREATE EXTENSION customer_account CASCADE" >/dev/null
"${PSQL[@]}" -f test/bench/lib.sql >/dev/null

for w in ${WORKLOADS:-money_sum}; do
    echo "== workload $w"
    start=$(date +%s)
    "${PSQL[@]}" -f "test/bench/$w.sql"
    echo "   ($(( $(date +%s) - start )) s)"
done

table=$("${PSQL[@]}" -A -F ' | ' -P footer=off -c "
  SELECT workload, coalesce(value::text, '-') || ' ' || figure AS result,
         coalesce(p50_ms::text, '-') AS p50_ms, coalesce(p99_ms::text, '-') AS p99_ms,
         reference || ': ' || coalesce(ref_value::text, '-') AS reference,
         coalesce(ratio::text, '-') AS ratio, target, holds
  FROM bench.result ORDER BY seq")
machine="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m), PostgreSQL $(psql -X -A -t -c 'SHOW server_version' | cut -d' ' -f1)"
{
    echo "# Benchmark results"
    echo
    echo "Run $(date -u +%Y-%m-%dT%H:%MZ), N = $N customers, on $machine."
    echo "Ratios are measured in one run against a reference that runs beside them (see shared design, benchmarks)."
    echo
    echo "| $(echo "$table" | head -1) |"
    echo "|$(echo "$table" | head -1 | sed 's/[^|]*/---/g')|"
    echo "$table" | tail -n +2 | sed 's/^/| /; s/$/ |/'
} > "$BENCH_OUT"
cat "$BENCH_OUT"
