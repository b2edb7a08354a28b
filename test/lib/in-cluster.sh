#!/usr/bin/env bash
# Runs inside pg_virtualenv: PGHOST, PGPORT, PGUSER, PGPASSWORD point at the
# throwaway cluster.  pg_prove runs last so its summary closes the output.
set -uo pipefail
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
status=0

echo "== pg_regress and isolation specs (make installcheck)"
if ! make -s installcheck PG_CONFIG="$PG_CONFIG"; then
    status=1
    for f in regression.diffs output_iso/regression.diffs; do
        [ -f "$f" ] && { echo "---- $f"; cat "$f"; }
    done
fi

echo "== pgTAP suites (pg_prove)"
dropdb --if-exists ca_tap >/dev/null 2>&1
createdb ca_tap
psql -X -q -d ca_tap -c "CREATE EXTENSION pgtap" >/dev/null
pg_prove -d ca_tap --ext .sql -r test/pgtap 2>&1 | tee "${PROVE_SUMMARY:-/dev/null}"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    status=1
fi
exit $status
