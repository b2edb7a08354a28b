#!/usr/bin/env bash
# Two throwaway clusters started at the same moment, as two test runs (or a
# test run beside the demo) would: each must come up on its own and answer.
# Prints one tab-separated row per run: 'cluster'  <n>  <status> <port>.
# test/pgtap/22_clusters.sql asserts them.
set -uo pipefail
cd "$(dirname "$0")/../.."
# started from inside a cluster's environment: forget that cluster
unset PGHOST PGPORT PGDATABASE PGUSER PGPASSWORD PGSYSCONFDIR PG_CLUSTER_CONF_ROOT PGSERVICE
. test/lib/common.sh
out=$(mktemp -d -t ca-clusters.XXXXXX)
for n in 1 2; do
    run_in_cluster psql -X -At -c "SELECT 'up ' || current_setting('port')" >"$out/$n" 2>&1 &
done
wait
for n in 1 2; do
    printf 'cluster\t%s\t%s\n' "$n" "$(grep -m1 '^up \|refusing\|rror' "$out/$n" || echo "no answer: $(tail -1 "$out/$n")")"
done
rm -rf "$out"
