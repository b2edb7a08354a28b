#!/usr/bin/env bash
# Every test of customer_account: builds, installs, starts a throwaway
# PostgreSQL cluster (pg_virtualenv) and runs pg_regress, the isolation specs
# and the pgTAP suites.  Exits non-zero when anything fails.
#
#   bash test/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/common.sh

ensure_packages
build_and_install
echo "== starting a throwaway cluster"
export PROVE_SUMMARY
PROVE_SUMMARY=$(mktemp)
status=0
run_in_cluster -o max_prepared_transactions=10 bash test/lib/in-cluster.sh || status=$?
# pg_virtualenv's own last words come after pg_prove's; repeat its summary
# so that the output ends with it
echo "== pg_prove summary"
sed -n '/^Test Summary Report\|^All tests successful\|^Files=\|^Result:/,$p' "$PROVE_SUMMARY"
rm -f "$PROVE_SUMMARY"
exit $status
