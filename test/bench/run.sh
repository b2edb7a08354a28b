#!/usr/bin/env bash
# The benchmark program: a throwaway cluster, the workloads of the README's
# Benchmarks section, one table of ratios measured in one run.
#
#   bash test/bench/run.sh            # quick size
#   N=1000000 bash test/bench/run.sh  # full size, for the record
#   DUR=5 bash test/bench/run.sh      # seconds per pgbench run (default 15)
#   ROUNDS=3                          # alternating runs of each workload and its reference
#   BENCH_OUT=/tmp/bench.md           # where the Markdown table goes (default test/bench/RESULTS.md)
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/common.sh
ensure_packages
build_and_install
export N=${N:-100000}
export BENCH_OUT=${BENCH_OUT:-test/bench/RESULTS.md}
export DUR=${DUR:-15}
export ROUNDS=${ROUNDS:-3}
run_in_cluster -o shared_buffers=4GB -o work_mem=64MB -o max_wal_size=8GB \
    -o checkpoint_timeout=30min -o synchronous_commit=off bash test/bench/in-cluster.sh
