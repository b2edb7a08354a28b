#!/usr/bin/env bash
# The benchmark program: a throwaway cluster, the workloads of
# shared/design/benchmarks.md, one table of ratios measured in one run.
#
#   bash test/bench/run.sh            # quick size
#   N=1000000 bash test/bench/run.sh  # full size, for the record
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/common.sh
ensure_packages
build_and_install
export N=${N:-100000}
export BENCH_OUT=${BENCH_OUT:-test/bench/RESULTS.md}
run_in_cluster -o shared_buffers=4GB -o work_mem=64MB -o max_wal_size=8GB \
    -o checkpoint_timeout=30min -o synchronous_commit=off bash test/bench/in-cluster.sh
