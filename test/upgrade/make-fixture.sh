#!/usr/bin/env bash
# Writes the fixture of the upgrade test (test/pgtap/21_upgrade.sql): a
# database populated BY THE RELEASED 1.0.0 CODE, so that the test updates
# data 1.0.0 really wrote, whatever the current library does.
#
#   test/upgrade/fixture-1.0.0.sql       pg_dump --data-only --disable-triggers
#                                        -n customer_account, then the
#                                        positions of the identity sequences
#                                        (1.0.0 does not dump them)
#   test/upgrade/fixture-1.0.0.expected  what 1.0.0 answered: balance() of
#                                        every customer as of the fixture's
#                                        time, the row count of every table
#
# It builds release 1.0.0 from git, installs it into the PostgreSQL
# installation (default_version becomes 1.0.0 there), populates a throwaway
# cluster with test/restore/populate.sql, then builds and installs the
# current code again.  Run it alone: it replaces the installed extension
# for a minute.  The fixture is committed; rerun only to regenerate it.
#
#   bash test/upgrade/make-fixture.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/common.sh
RELEASE=46727c797314422eedddf612a08db39ca9fff248   # the released 1.0.0
ensure_packages
pg_config="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
src=$(mktemp -d -t ca-1.0.0.XXXXXX)
trap 'rm -rf "$src"' EXIT
git archive "$RELEASE" | tar -x -C "$src"
grep -q "^default_version = '1.0.0'" "$src/customer_account.control"
echo "== building and installing release 1.0.0 ($RELEASE)"
make -s -C "$src" PG_CONFIG="$pg_config" >/dev/null
$SUDO make -s -C "$src" install PG_CONFIG="$pg_config" >/dev/null
status=0
RELEASE=$RELEASE run_in_cluster bash test/upgrade/fixture-in-cluster.sh || status=$?
echo "== installing the current code again"
build_and_install
exit $status
