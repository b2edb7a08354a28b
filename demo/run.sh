#!/usr/bin/env bash
# The main job: an omnichannel story on a throwaway PostgreSQL cluster.
#
#   bash demo/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/common.sh
ensure_packages
build_and_install
run_in_cluster psql -X -v ON_ERROR_STOP=1 --echo-queries -P pager=off -f demo/omnichannel.sql
