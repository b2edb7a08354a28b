#!/usr/bin/env bash
# The benchmark program, inside pg_virtualenv (PGHOST etc. set).  Loads N
# customers through the posting path, runs every workload of
# shared/design/benchmarks.md beside its reference, prints one table and
# writes it as Markdown ($BENCH_OUT).
set -euo pipefail
N=${N:-100000}
DUR=${DUR:-15}                 # seconds per pgbench workload
CHUNK=${CHUNK:-10000}          # customers per load transaction
DB=ca_bench
PGB=/usr/lib/postgresql/${PG_MAJOR:-15}/bin/pgbench
TMP=$(mktemp -d)
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB")
q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1"; }
now_ms() { date +%s%3N; }
result() {  # workload figure value p50 p99 reference ref_value ratio target holds
    "${PSQL[@]}" -c "INSERT INTO bench.result (workload, figure, value, p50_ms, p99_ms, reference, ref_value, ratio, target, holds)
        VALUES ('$1', '$2', NULLIF('$3','')::numeric, NULLIF('$4','')::numeric, NULLIF('$5','')::numeric, '$6',
                NULLIF('$7','')::numeric, NULLIF('$8','')::numeric, '$9', '${10}')"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; }'; }
holds() { awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN { if (r == "") { print "n/a"; exit }
    ok = (op == ">=") ? (r >= t) : (r <= t); print ok ? "yes" : "no" }'; }

# pgbench: prints "tps p50_ms p99_ms failed"
run_pgbench() {  # name clients script
    local name=$1 clients=$2 script=$3
    rm -f "$TMP"/log_"$name"*
    "$PGB" -n -M prepared -c "$clients" -j "$clients" -T "$DUR" -D N="$N" -f "$script" \
        --log --log-prefix="$TMP/log_$name" "$DB" > "$TMP/$name.out" 2>&1 || true
    local tps failed
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$TMP/$name.out" | head -1)
    failed=$(grep -c "ERROR\|aborted" "$TMP/$name.out" || true)
    cat "$TMP"/log_"$name"* 2>/dev/null | awk '{print $3}' | sort -n > "$TMP/$name.lat"
    local n p50 p99
    n=$(wc -l < "$TMP/$name.lat")
    p50=$(awk -v n="$n" 'NR == int(n * 0.50) + 1 { printf "%.3f", $1 / 1000 }' "$TMP/$name.lat")
    p99=$(awk -v n="$n" 'NR == int(n * 0.99) + 1 { printf "%.3f", $1 / 1000 }' "$TMP/$name.lat")
    echo "${tps:-0} ${p50:-} ${p99:-} $failed"
}
time_sql() {  # prints ms of one statement run in its own session
    local t0 t1
    t0=$(now_ms); psql -X -q -d "$DB" -c "$1" > /dev/null; t1=$(now_ms)
    echo $(( t1 - t0 ))
}

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
"${PSQL[@]}" -c "SET client_min_messages = warning; CREATE EXTENSION customer_account CASCADE"
"${PSQL[@]}" -f test/bench/lib.sql -f test/bench/setup.sql -f test/bench/reference.sql > /dev/null

echo "== loading $N customers through the posting path (2 sessions)"
t0=$(now_ms)
seq 1 "$CHUNK" "$N" | xargs -P 2 -I{} sh -c \
    'psql -X -q -1 -v ON_ERROR_STOP=1 -d '"$DB"' -v lo={} -v hi=$(( {} + '"$CHUNK"' > '"$N"' + 1 ? '"$N"' + 1 : {} + '"$CHUNK"' )) -f test/bench/generate.sql'
t1=$(now_ms)
ledger_rows=$(q "SELECT count(*) FROM customer_account.ledger")
load_s=$(awk -v ms=$((t1 - t0)) 'BEGIN { printf "%.1f", ms / 1000 }')
echo "   $ledger_rows ledger rows in $load_s s ($(awk -v r="$ledger_rows" -v s="$load_s" 'BEGIN { printf "%d", r / s }') rows/s)"
# the real policy from here on; statistics for the planner
"${PSQL[@]}" -c "DELETE FROM customer_account.credit_policy; INSERT INTO customer_account.credit_policy (shipped) VALUES (true)"
"${PSQL[@]}" -c "VACUUM ANALYZE" -c "SELECT customer_account.refresh_value_segments()" > /dev/null
# autovacuum kept the planner's statistics fresh during the load; from here
# on it would only compete with the workloads for the two cores
"${PSQL[@]}" -c "ALTER SYSTEM SET autovacuum = off" -c "SELECT pg_reload_conf()" > /dev/null
result "load (posting path)" "s" "$load_s" "" "" "ledger rows: $ledger_rows" "" "" "minutes at full size" "$(awk -v s="$load_s" 'BEGIN { print (s < 3600) ? "yes" : "no" }')"

echo "== rebuild: verify_balances() beside count(*) of the ledger"
diffs=$(q "SELECT count(*) FROM customer_account.verify_balances()")
t_verify=$(time_sql "SELECT count(*) FROM customer_account.verify_balances()")
t_scan=$(time_sql "SELECT count(*) FROM customer_account.ledger")
r=$(ratio "$t_verify" "$t_scan")
result "rebuild: verify_balances()" "ms" "$t_verify" "" "" "count(*) ledger: $t_scan ms; differences: $diffs" "$t_scan" "$r" "<= 3" "$( [ "$diffs" = 0 ] && holds "$r" "<=" 3 || echo no)"

echo "== the references agree with the extension on a sample"
bad_bal=$(q "SELECT count(*) FROM generate_series(1, 1000) g, LATERAL (SELECT 1 + (hashint4(g) & 2147483647) % $N AS id) c,
    LATERAL customer_account.balance(c.id) b JOIN LATERAL bench.ref_balance(c.id) r ON r.currency = b.currency
    WHERE customer_account.amount_of(b.balance) <> r.balance OR customer_account.amount_of(b.open_amount) <> r.open_amount
       OR customer_account.amount_of(b.store_credit) <> r.store_credit OR customer_account.amount_of(b.lifetime_revenue) <> r.lifetime_revenue
       OR customer_account.amount_of(b.revenue_12m) <> r.revenue_12m OR b.orders_12m <> r.orders_12m")
bad_pay=$(q "SELECT count(*) FROM generate_series(1, 1000) g, LATERAL (SELECT 1 + (hashint4(g) & 2147483647) % $N AS id) c,
    LATERAL (SELECT method, allowed, reason_code FROM customer_account.payment_options(c.id, '150.00 EUR', 'web-de')
             EXCEPT SELECT * FROM bench.ref_payment_options(c.id, 150.00, 'EUR', 'web-de')) d")
# the return decision: line 1 of a customer's first order, at a till in the order's currency
RET_ARGS="'G' || c.id || '-1', 'SKU-' || ((abs(hashint8(c.id::bigint * 100 + 1)) >> 1) & 4095), 1, CASE WHEN c.id % 10 = 7 THEN 'web-ch' ELSE 'store-berlin' END"
bad_ret=$(q "SELECT count(*) FROM generate_series(1, 1000) g, LATERAL (SELECT 1 + (hashint4(g) & 2147483647) % $N AS id) c,
    LATERAL ((SELECT action::text, customer_account.amount_of(refund), reason_code FROM customer_account.decide_return($RET_ARGS)
              EXCEPT SELECT * FROM bench.ref_decide_return($RET_ARGS))
             UNION ALL
             (SELECT * FROM bench.ref_decide_return($RET_ARGS)
              EXCEPT SELECT action::text, customer_account.amount_of(refund), reason_code FROM customer_account.decide_return($RET_ARGS))) d")
echo "   balance mismatches: $bad_bal, payment decision mismatches: $bad_pay, return decision mismatches: $bad_ret (of 1000 customers)"
result "reference agreement (1000 customers)" "rows" "$((bad_bal + bad_pay + bad_ret))" "" "" "balance: $bad_bal, payment_options: $bad_pay, decide_return: $bad_ret differ" "" "" "= 0" "$( [ $((bad_bal + bad_pay + bad_ret)) = 0 ] && echo yes || echo no)"

cat > "$TMP/select1.sql" <<'SQL'
SELECT 1;
SQL
cat > "$TMP/balance.sql" <<'SQL'
\set id random(1, :N)
SELECT * FROM customer_account.balance(:id);
SQL
cat > "$TMP/ref_balance.sql" <<'SQL'
\set id random(1, :N)
SELECT * FROM bench.ref_balance(:id);
SQL
cat > "$TMP/payment.sql" <<'SQL'
\set id random(1, :N)
SELECT * FROM customer_account.payment_options(:id, '79.90 EUR', 'web-de');
SQL
cat > "$TMP/ref_payment.sql" <<'SQL'
\set id random(1, :N)
SELECT * FROM bench.ref_payment_options(:id, 79.90, 'EUR', 'web-de');
SQL
cat > "$TMP/return.sql" <<'SQL'
\set id random(1, :N)
SELECT * FROM customer_account.decide_return('G' || :id || '-1', 'SKU-' || ((abs(hashint8(:id::bigint * 100 + 1)) >> 1) & 4095), 1,
                                             CASE WHEN :id % 10 = 7 THEN 'web-ch' ELSE 'store-berlin' END);
SQL
cat > "$TMP/ref_return.sql" <<'SQL'
\set id random(1, :N)
SELECT * FROM bench.ref_decide_return('G' || :id || '-1', 'SKU-' || ((abs(hashint8(:id::bigint * 100 + 1)) >> 1) & 4095), 1,
                                      CASE WHEN :id % 10 = 7 THEN 'web-ch' ELSE 'store-berlin' END);
SQL
cat > "$TMP/write.sql" <<'SQL'
\set id random(1, :N)
BEGIN;
SELECT customer_account.place_order('BW-' || txid_current(), :id, 'web-de',
  '[{"sku":"A-1","qty":1,"unit_price":"19.99 EUR"},{"sku":"B-2","qty":2,"unit_price":"5.00 EUR"},{"sku":"C-3","qty":1,"unit_price":"49.90 EUR"}]',
  'credit_card');
SELECT customer_account.record_payment('BP-' || txid_current(), :id, '25.00 EUR', 'bank_transfer', 'web-de');
END;
SQL
cat > "$TMP/plain_write.sql" <<'SQL'
\set id random(1, :N)
BEGIN;
INSERT INTO bench.plain_orders (order_no, customer_id, channel, payment_method, total, currency)
  VALUES ('BW-' || txid_current(), :id, 'web-de', 'credit_card', 79.89, 'EUR');
INSERT INTO bench.plain_lines (order_no, line_no, sku, qty, unit_price) VALUES
  ('BW-' || txid_current(), 1, 'A-1', 1, 19.99), ('BW-' || txid_current(), 2, 'B-2', 2, 5.00), ('BW-' || txid_current(), 3, 'C-3', 1, 49.90);
INSERT INTO bench.plain_payments (payment_ref, customer_id, amount, currency, method, channel)
  VALUES ('BP-' || txid_current(), :id, 25.00, 'EUR', 'bank_transfer', 'web-de');
END;
SQL
cat > "$TMP/hot.sql" <<'SQL'
SELECT customer_account.place_order('HOT-' || txid_current(), 1, 'store-berlin',
  '[{"sku":"A-1","qty":1,"unit_price":"1.00 EUR"}]', 'cash');
SQL

echo "== end to end (pgbench, prepared, 2 clients, ${DUR}s each)"
read -r tps1 p50_1 p99_1 _ <<< "$(run_pgbench select1 2 "$TMP/select1.sql")"
echo "   SELECT 1: $tps1 tps"
read -r tpsb p50b p99b fb <<< "$(run_pgbench balance 2 "$TMP/balance.sql")"
r=$(ratio "$tpsb" "$tps1"); result "balance lookup (end to end)" "tps" "$tpsb" "$p50b" "$p99b" "SELECT 1: $tps1 tps" "$tps1" "$r" ">= 0.75" "$(holds "$r" ">=" 0.75)"
read -r tpsrb p50rb p99rb _ <<< "$(run_pgbench ref_balance 2 "$TMP/ref_balance.sql")"
r=$(ratio "$tpsb" "$tpsrb"); result "balance lookup vs reference (end to end)" "tps" "$tpsb" "$p50b" "$p99b" "SQL summing history: $tpsrb tps" "$tpsrb" "$r" "(information)" "-"
read -r tpsp p50p p99p fp <<< "$(run_pgbench payment 2 "$TMP/payment.sql")"
r=$(ratio "$tpsp" "$tps1"); result "payment decision (end to end)" "tps" "$tpsp" "$p50p" "$p99p" "SELECT 1: $tps1 tps" "$tps1" "$r" ">= 0.65" "$(holds "$r" ">=" 0.65)"
read -r tpsrp p50rp p99rp _ <<< "$(run_pgbench ref_payment 2 "$TMP/ref_payment.sql")"
r=$(ratio "$tpsp" "$tpsrp"); result "payment decision vs reference (end to end)" "tps" "$tpsp" "$p50p" "$p99p" "PL/pgSQL IF/ELSE: $tpsrp tps" "$tpsrp" "$r" "(information)" "-"
read -r tpsd p50d p99d fd <<< "$(run_pgbench return 2 "$TMP/return.sql")"
r=$(ratio "$tpsd" "$tps1"); result "return decision (end to end)" "tps" "$tpsd" "$p50d" "$p99d" "SELECT 1: $tps1 tps" "$tps1" "$r" ">= 0.6" "$( [ "$fd" = 0 ] && holds "$r" ">=" 0.6 || echo "no ($fd errors)")"
read -r tpsrd p50rd p99rd _ <<< "$(run_pgbench ref_return 2 "$TMP/ref_return.sql")"
r=$(ratio "$tpsd" "$tpsrd"); result "return decision vs reference (end to end)" "tps" "$tpsd" "$p50d" "$p99d" "PL/pgSQL IF/ELSE: $tpsrd tps" "$tpsrd" "$r" "(information)" "-"
read -r tpsw p50w p99w fw <<< "$(run_pgbench write 2 "$TMP/write.sql")"
read -r tpspw p50pw p99pw _ <<< "$(run_pgbench plain_write 2 "$TMP/plain_write.sql")"
r=$(ratio "$tpsw" "$tpspw"); result "order write path (place_order 3 lines + record_payment)" "tps" "$tpsw" "$p50w" "$p99w" "plain INSERTs of the same rows: $tpspw tps" "$tpspw" "$r" ">= 0.5" "$( [ "$fw" = 0 ] && holds "$r" ">=" 0.5 || echo "no ($fw errors)")"
before=$(q "SELECT count(*) FROM customer_account.ledger WHERE customer_id = 1")
read -r tpsh p50h p99h fh <<< "$(run_pgbench hot 2 "$TMP/hot.sql")"
hot_ok=$(q "SELECT count(*) = 0 FROM customer_account.verify_balances() WHERE customer_id = 1")
hot_orders=$(q "SELECT count(*) FROM customer_account.orders WHERE customer_id = 1 AND order_no LIKE 'HOT-%'")
result "hot customer (2 clients, one customer)" "tps" "$tpsh" "$p50h" "$p99h" "$hot_orders orders, errors: $fh, balance exact: $hot_ok" "" "" "no errors, exact" "$( [ "$fh" = 0 ] && [ "$hot_ok" = t ] && echo yes || echo no)"

echo "== in the server (one backend, 100 000 random customers in one statement)"
t_b=$(time_sql "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL customer_account.balance(1 + (hashint4(g) & 2147483647) % $N)")
t_rb=$(time_sql "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL bench.ref_balance(1 + (hashint4(g) & 2147483647) % $N)")
r=$(ratio "$t_rb" "$t_b"); result "balance lookup (in the server)" "ms" "$t_b" "" "" "SQL summing history: $t_rb ms" "$t_rb" "$r" ">= 5 (x faster)" "$(holds "$r" ">=" 5)"
t_p=$(time_sql "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL customer_account.payment_options(1 + (hashint4(g) & 2147483647) % $N, '79.90 EUR', 'web-de')")
t_rp=$(time_sql "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL bench.ref_payment_options(1 + (hashint4(g) & 2147483647) % $N, 79.90, 'EUR', 'web-de')")
r=$(ratio "$t_rp" "$t_p"); result "payment decision (in the server)" "ms" "$t_p" "" "" "PL/pgSQL IF/ELSE: $t_rp ms" "$t_rp" "$r" ">= 3 (x faster)" "$(holds "$r" ">=" 3)"

t_d=$(time_sql "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL (SELECT 1 + (hashint4(g) & 2147483647) % $N AS id) c, LATERAL customer_account.decide_return($RET_ARGS)")
t_rd=$(time_sql "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL (SELECT 1 + (hashint4(g) & 2147483647) % $N AS id) c, LATERAL bench.ref_decide_return($RET_ARGS)")
r=$(ratio "$t_rd" "$t_d"); result "return decision (in the server)" "ms" "$t_d" "" "" "PL/pgSQL IF/ELSE: $t_rd ms" "$t_rd" "$r" ">= 3 (x faster)" "$(holds "$r" ">=" 3)"

echo "== reports beside a count(*) scan"
t_scan=$(time_sql "SELECT count(*) FROM customer_account.open_item")
t_aging=$(time_sql "SELECT * FROM customer_account.aging_report()")
r=$(ratio "$t_aging" "$t_scan"); result "aging_report()" "ms" "$t_aging" "" "" "count(*) open items: $t_scan ms" "$t_scan" "$r" "<= 2" "$(holds "$r" "<=" 2)"
t_dun=$(time_sql "SELECT count(*) FROM customer_account.dunning_run(current_date)")
notices=$(q "SELECT count(*) FROM customer_account.dunning_notice WHERE run_date = current_date")
r=$(ratio "$t_dun" "$t_scan"); result "dunning_run() ($notices notices)" "ms" "$t_dun" "" "" "count(*) open items: $t_scan ms" "$t_scan" "$r" "<= 2" "$(holds "$r" "<=" 2)"
result "channel report" "-" "" "" "" "channel_report() is not built yet" "" "" "<= 2" "missing"

echo "== memory: one backend, 1 000 000 payment decisions"
mem=$(psql -X -q -A -t -d "$DB" <<SQL
CREATE TEMP TABLE m (round int, bytes bigint);
$(for i in $(seq 1 10); do echo "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL customer_account.payment_options(1 + (hashint4(g + $i * 100000) & 2147483647) % $N, '79.90 EUR', 'web-de') \\g /dev/null
INSERT INTO m SELECT $i, sum(total_bytes) FROM pg_backend_memory_contexts;"; done)
SELECT (SELECT bytes FROM m WHERE round = 1) || ' ' || (SELECT bytes FROM m WHERE round = 10);
SQL
)
read -r m1 m10 <<< "$mem"
result "memory (1 000 000 decisions, one backend)" "bytes" "$m10" "" "" "after the first 100 000: $m1 bytes" "$m1" "$(ratio "$m10" "$m1")" "flat (<= 1.05)" "$(holds "$(ratio "$m10" "$m1")" "<=" 1.05)"

echo "== money sum (10 million rows)"
"${PSQL[@]}" -f test/bench/money_sum.sql

table=$(psql -X -A -F ' | ' -P footer=off -d "$DB" -c "
  SELECT workload, coalesce(value::text || ' ' || figure, '-') AS result,
         coalesce(p50_ms::text, '-') AS p50_ms, coalesce(p99_ms::text, '-') AS p99_ms,
         reference, coalesce(ratio::text, '-') AS ratio, target, holds
  FROM bench.result ORDER BY seq")
machine="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), PostgreSQL $(psql -X -A -t -d "$DB" -c 'SHOW server_version' | cut -d' ' -f1)"
{
    echo "# Benchmark results"
    echo
    echo "Run $(date -u +%Y-%m-%dT%H:%MZ), N = $N customers, ${DUR}s per pgbench workload, on $machine."
    echo "Every ratio is measured in one run against the reference that ran beside it"
    echo "(see \`test/bench/\` and the design's benchmarks page). Rerun: \`N=$N bash test/bench/run.sh\`."
    echo
    echo "| $(echo "$table" | head -1) |"
    echo "|$(echo "$table" | head -1 | sed 's/[^|]*/---/g')|"
    echo "$table" | tail -n +2 | sed 's/^/| /; s/$/ |/'
} > "$BENCH_OUT"
echo
cat "$BENCH_OUT"
rm -rf "$TMP"
