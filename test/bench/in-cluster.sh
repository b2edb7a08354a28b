#!/usr/bin/env bash
# The benchmark program, inside pg_virtualenv (PGHOST etc. set).  Loads N
# customers through the posting path, runs every workload of
# the benchmark page (README, Benchmarks) beside its reference, prints one table and
# writes it as Markdown ($BENCH_OUT).
set -euo pipefail
N=${N:-100000}
DUR=${DUR:-15}                 # seconds per pgbench run
ROUNDS=${ROUNDS:-3}            # alternating runs per workload (A, B, A, B, A, B)
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

# pgbench, one run of one workload: prints "tps failed"; the latency log of
# every run is kept (log_<name>_r<round>) for the percentiles over all runs
run_pgbench() {  # name clients script round
    local name=$1 clients=$2 script=$3 round=$4
    rm -f "$TMP"/log_"$name"_r"$round".*
    "$PGB" -n -M prepared -c "$clients" -j "$clients" -T "$DUR" -D N="$N" -f "$script" \
        --log --log-prefix="$TMP/log_${name}_r$round" "$DB" > "$TMP/$name.r$round.out" 2>&1 || true
    local tps failed
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$TMP/$name.r$round.out" | head -1)
    failed=$(grep -c "ERROR\|aborted" "$TMP/$name.r$round.out" || true)
    echo "${tps:-0} $failed"
}
# Alternating runs: ROUNDS rounds of the given workloads in turn (A, B, A, B,
# A, B), so that a slow phase of the machine hits every workload alike.
# Records TPS[name,round] and FAILED[name]; prints each run.
declare -A TPS FAILED
run_alternating() {  # clients name...
    local clients=$1 r name tps failed
    shift
    for name in "$@"; do FAILED[$name]=0; done
    for r in $(seq 1 "$ROUNDS"); do
        for name in "$@"; do
            read -r tps failed <<< "$(run_pgbench "$name" "$clients" "$TMP/$name.sql" "$r")"
            TPS[$name,$r]=$tps
            FAILED[$name]=$(( ${FAILED[$name]} + failed ))
            echo "   round $r: $name $tps tps"
        done
    done
}
# median of the numbers given
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit;
    if (NR % 2) printf "%.6g", v[(NR + 1) / 2]; else printf "%.6g", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
median_tps() { local r v=(); for r in $(seq 1 "$ROUNDS"); do v+=("${TPS[$1,$r]}"); done; median "${v[@]}"; }
# median over the rounds of TPS(a) / TPS(b), each ratio from runs side by side
median_ratio() { local r v=(); for r in $(seq 1 "$ROUNDS"); do v+=("$(ratio6 "${TPS[$1,$r]}" "${TPS[$2,$r]}")"); done
    printf '%.2f' "$(median "${v[@]}")"; }
ratio6() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.6f", a / b; else print 0 }'; }
# p50 and p99 in ms over every run of a workload
latency() {
    cat "$TMP"/log_"$1"_r* 2>/dev/null | awk '{print $3}' | sort -n > "$TMP/$1.lat"
    local n
    n=$(wc -l < "$TMP/$1.lat")
    awk -v n="$n" 'NR == int(n * 0.50) + 1 { p50 = sprintf("%.3f", $1 / 1000) }
                   NR == int(n * 0.99) + 1 { p99 = sprintf("%.3f", $1 / 1000) } END { print p50, p99 }' "$TMP/$1.lat"
}
# ms of a statement's second run in one session: the first warms the
# backend (catalog caches, the library, its first touch of shared buffers)
time_warm() {
    psql -X -q -d "$DB" -c "$1" -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1 \
        | awk '{ printf "%.0f", $1 }'
}
# in the server: ROUNDS alternating timings of two statements; sets T_A and
# T_B (median ms) and T_RATIO (median of t_b / t_a over the rounds)
time_alternating() {  # sql_a sql_b
    local r a b ta=() tb=() rs=()
    for r in $(seq 1 "$ROUNDS"); do
        a=$(time_warm "$1"); b=$(time_warm "$2")
        ta+=("$a"); tb+=("$b"); rs+=("$(ratio6 "$b" "$a")")
        echo "   round $r: $a ms / $b ms"
    done
    T_A=$(median "${ta[@]}"); T_B=$(median "${tb[@]}"); T_RATIO=$(printf '%.2f' "$(median "${rs[@]}")")
}
time_sql() {  # prints ms of one statement run in its own session (psql's \timing: without the connection set-up)
    psql -X -q -d "$DB" -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1 \
        | awk '{ printf "%.0f", $1 }'
}

dropdb --if-exists "$DB" >/dev/null 2>&1
createdb "$DB"
"${PSQL[@]}" -c "SET client_min_messages = warning; CREATE EXTENSION customer_account CASCADE"
"${PSQL[@]}" -f test/bench/lib.sql -f test/bench/setup.sql -f test/bench/reference.sql -f test/bench/search.sql > /dev/null

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
time_alternating "SELECT count(*) FROM customer_account.ledger" "SELECT count(*) FROM customer_account.verify_balances()"
result "rebuild: verify_balances()" "ms" "$T_B" "" "" "count(*) ledger: $T_A ms; differences: $diffs" "$T_A" "$T_RATIO" "<= 3" "$( [ "$diffs" = 0 ] && holds "$T_RATIO" "<=" 3 || echo no)"

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
cat > "$TMP/pk_state.sql" <<'SQL'
\set id random(1, :N)
SELECT * FROM customer_account.account_state WHERE customer_id = :id AND currency = 'EUR';
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

echo "== end to end (pgbench, prepared, 2 clients, ${DUR}s per run, $ROUNDS alternating rounds)"
run_alternating 2 select1 pk_state balance ref_balance payment ref_payment
tps1=$(median_tps select1); tpsk=$(median_tps pk_state); tpsb=$(median_tps balance); tpsrb=$(median_tps ref_balance)
tpsp=$(median_tps payment); tpsrp=$(median_tps ref_payment)
read -r p50 p99 <<< "$(latency pk_state)"
r=$(median_ratio pk_state select1); result "primary-key lookup of one account_state row (end to end)" "tps" "$tpsk" "$p50" "$p99" "SELECT 1: $tps1 tps" "$tps1" "$r" "(the practical limit of a read)" "-"
read -r p50 p99 <<< "$(latency balance)"
r=$(median_ratio balance select1); result "balance lookup (end to end)" "tps" "$tpsb" "$p50" "$p99" "SELECT 1: $tps1 tps" "$tps1" "$r" ">= 0.75" "$( [ "${FAILED[balance]}" = 0 ] && holds "$r" ">=" 0.75 || echo "no (${FAILED[balance]} errors)")"
r=$(median_ratio balance pk_state); result "balance lookup vs primary-key lookup (end to end)" "tps" "$tpsb" "$p50" "$p99" "primary-key lookup: $tpsk tps" "$tpsk" "$r" "(information)" "-"
r=$(median_ratio balance ref_balance); result "balance lookup vs reference (end to end)" "tps" "$tpsb" "$p50" "$p99" "SQL summing history: $tpsrb tps" "$tpsrb" "$r" "(information)" "-"
read -r p50 p99 <<< "$(latency payment)"
r=$(median_ratio payment select1); result "payment decision (end to end)" "tps" "$tpsp" "$p50" "$p99" "SELECT 1: $tps1 tps" "$tps1" "$r" ">= 0.65" "$( [ "${FAILED[payment]}" = 0 ] && holds "$r" ">=" 0.65 || echo "no (${FAILED[payment]} errors)")"
r=$(median_ratio payment pk_state); result "payment decision vs primary-key lookup (end to end)" "tps" "$tpsp" "$p50" "$p99" "primary-key lookup: $tpsk tps" "$tpsk" "$r" "(information)" "-"
r=$(median_ratio payment ref_payment); result "payment decision vs reference (end to end)" "tps" "$tpsp" "$p50" "$p99" "PL/pgSQL IF/ELSE: $tpsrp tps" "$tpsrp" "$r" "(information)" "-"

run_alternating 2 return ref_return
tpsd=$(median_tps return); tpsrd=$(median_tps ref_return)
read -r p50 p99 <<< "$(latency return)"
r=$(median_ratio return select1); result "return decision (end to end)" "tps" "$tpsd" "$p50" "$p99" "SELECT 1: $tps1 tps" "$tps1" "$r" ">= 0.6" "$( [ "${FAILED[return]}" = 0 ] && holds "$r" ">=" 0.6 || echo "no (${FAILED[return]} errors)")"
r=$(median_ratio return pk_state); result "return decision vs primary-key lookup (end to end)" "tps" "$tpsd" "$p50" "$p99" "primary-key lookup: $tpsk tps" "$tpsk" "$r" "(information)" "-"
r=$(median_ratio return ref_return); result "return decision vs reference (end to end)" "tps" "$tpsd" "$p50" "$p99" "PL/pgSQL IF/ELSE: $tpsrd tps" "$tpsrd" "$r" "(information)" "-"

echo "== search: one pgbench script per kind of keyword (2 clients, ${DUR}s per run, $ROUNDS rounds)"
# each script picks a random customer and searches the keyword of its kind for
# that customer (test/bench/search.sql: bench.search_case, in the same statement)
SEARCH_KINDS=(order_no order_prefix return_no email email_part phone card card_sep marketplace name)
declare -A SEARCH_LABEL=([order_no]="order number" [order_prefix]="order number prefix" [return_no]="return number"
    [email]="email" [email_part]="part of an email" [phone]="phone, written nationally" [card]="loyalty card"
    [card_sep]="loyalty card with separators" [marketplace]="marketplace buyer id" [name]="name with a typo, any order")
for k in "${SEARCH_KINDS[@]}"; do
    printf '%s\n' '\set id random(1, :N)' \
        "SELECT * FROM customer_account.search((SELECT keyword FROM bench.search_case('$k', :id)));" > "$TMP/search_$k.sql"
done
run_alternating 2 "${SEARCH_KINDS[@]/#/search_}"
# the hit check: up to SAMPLE keywords per kind (at most 20 s per kind), each
# must find its customer; a name with a typo may rank below 20 similar names
SAMPLE=200
for k in "${SEARCH_KINDS[@]}"; do
    tpss=$(median_tps "search_$k")
    read -r p50 p99 <<< "$(latency "search_$k")"
    read -r hits tried <<< "$(q "SELECT hits, tried FROM bench.search_hits('$k', $N, $SAMPLE)" | tr '|' ' ')"
    example=$(q "SELECT keyword FROM bench.search_case('$k', 1 + 4711 % $N)")
    if [ "${FAILED[search_$k]}" != 0 ]; then ok="no (${FAILED[search_$k]} errors)"
    elif [ "$k" != name ] && [ "$hits" != "$tried" ]; then ok="no (finds $hits of $tried)"   # exact keywords must find
    else ok=$(awk -v p="$p99" 'BEGIN { print (p != "" && p < 20) ? "yes" : "no" }'); fi
    result "search: ${SEARCH_LABEL[$k]}" "tps" "$tpss" "$p50" "$p99" "e.g. \`$example\`; finds its customer for $hits of $tried sampled" "" "" "p99 < 20 ms" "$ok"
done

run_alternating 2 write plain_write
tpsw=$(median_tps write); tpspw=$(median_tps plain_write)
read -r p50 p99 <<< "$(latency write)"
r=$(median_ratio write plain_write); result "order write path (place_order 3 lines + record_payment)" "tps" "$tpsw" "$p50" "$p99" "plain INSERTs of the same rows: $tpspw tps" "$tpspw" "$r" ">= 0.5" "$( [ "${FAILED[write]}" = 0 ] && holds "$r" ">=" 0.5 || echo "no (${FAILED[write]} errors)")"

read -r tpsh fh <<< "$(run_pgbench hot 2 "$TMP/hot.sql" 1)"
read -r p50 p99 <<< "$(latency hot)"
hot_ok=$(q "SELECT count(*) = 0 FROM customer_account.verify_balances() WHERE customer_id = 1")
hot_orders=$(q "SELECT count(*) FROM customer_account.orders WHERE customer_id = 1 AND order_no LIKE 'HOT-%'")
result "hot customer (2 clients, one customer)" "tps" "$tpsh" "$p50" "$p99" "$hot_orders orders, errors: $fh, balance exact: $hot_ok" "" "" "no errors, exact" "$( [ "$fh" = 0 ] && [ "$hot_ok" = t ] && echo yes || echo no)"

echo "== in the server (one backend, 100 000 random customers in one statement, $ROUNDS alternating rounds)"
time_alternating "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL customer_account.balance(1 + (hashint4(g) & 2147483647) % $N)" \
                 "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL bench.ref_balance(1 + (hashint4(g) & 2147483647) % $N)"
result "balance lookup (in the server)" "ms" "$T_A" "" "" "SQL summing history: $T_B ms" "$T_B" "$T_RATIO" ">= 5 (x faster)" "$(holds "$T_RATIO" ">=" 5)"
time_alternating "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL customer_account.payment_options(1 + (hashint4(g) & 2147483647) % $N, '79.90 EUR', 'web-de')" \
                 "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL bench.ref_payment_options(1 + (hashint4(g) & 2147483647) % $N, 79.90, 'EUR', 'web-de')"
result "payment decision (in the server)" "ms" "$T_A" "" "" "PL/pgSQL IF/ELSE: $T_B ms" "$T_B" "$T_RATIO" ">= 3 (x faster)" "$(holds "$T_RATIO" ">=" 3)"

time_alternating "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL (SELECT 1 + (hashint4(g) & 2147483647) % $N AS id) c, LATERAL customer_account.decide_return($RET_ARGS)" \
                 "SELECT count(*) FROM generate_series(1, 100000) g, LATERAL (SELECT 1 + (hashint4(g) & 2147483647) % $N AS id) c, LATERAL bench.ref_decide_return($RET_ARGS)"
result "return decision (in the server)" "ms" "$T_A" "" "" "PL/pgSQL IF/ELSE: $T_B ms" "$T_B" "$T_RATIO" ">= 3 (x faster)" "$(holds "$T_RATIO" ">=" 3)"

echo "== reports beside a count(*) scan"
time_alternating "SELECT count(*) FROM customer_account.open_item" "SELECT * FROM customer_account.aging_report()"
t_scan=$T_A
result "aging_report()" "ms" "$T_B" "" "" "count(*) open items: $T_A ms" "$T_A" "$T_RATIO" "<= 2" "$(holds "$T_RATIO" "<=" 2)"
t_dun=$(time_sql "SELECT count(*) FROM customer_account.dunning_run(current_date)")
notices=$(q "SELECT count(*) FROM customer_account.dunning_notice WHERE run_date = current_date")
r=$(ratio "$t_dun" "$t_scan"); result "dunning_run() ($notices notices)" "ms" "$t_dun" "" "" "count(*) open items: $t_scan ms (median)" "$t_scan" "$r" "<= 2" "$(holds "$r" "<=" 2)"
# channel_report() for the last 30 days and the whole 18 months, beside a
# count(*) of the ledger rows of the period; its figures against plain SQL
to_ts=$(q "SELECT now()")
bad_cr=0
for iv in "30 days" "18 months"; do
    label=$( [ "$iv" = "30 days" ] && echo "last 30 days" || echo "whole history, 18 months")
    from_ts=$(q "SELECT '$to_ts'::timestamptz - interval '$iv'")
    period="'$from_ts', '$to_ts'"
    rows=$(q "SELECT count(*) FROM customer_account.ledger WHERE event_at >= '$from_ts' AND event_at < '$to_ts'")
    time_alternating "SELECT count(*) FROM customer_account.ledger WHERE event_at >= '$from_ts' AND event_at < '$to_ts'" \
                     "SELECT * FROM customer_account.channel_report($period)"
    result "channel_report(), $label" "ms" "$T_B" "" "" "count(*) of the ledger rows of the period ($rows): $T_A ms" "$T_A" "$T_RATIO" "<= 2" "$(holds "$T_RATIO" "<=" 2)"
    n=$(q "SELECT count(*) FROM (
        (SELECT r.channel, customer_account.currency_of(r.revenue), r.orders, customer_account.amount_of(r.revenue),
                customer_account.amount_of(r.returned), r.return_rate FROM customer_account.channel_report($period) r
         EXCEPT ALL SELECT * FROM bench.ref_channel_report($period))
        UNION ALL
        (SELECT * FROM bench.ref_channel_report($period)
         EXCEPT ALL SELECT r.channel, customer_account.currency_of(r.revenue), r.orders, customer_account.amount_of(r.revenue),
                customer_account.amount_of(r.returned), r.return_rate FROM customer_account.channel_report($period) r)) d")
    echo "   $label: $n rows differ from plain SQL"
    bad_cr=$((bad_cr + n))
done
# inactive_customers(365): beside a count(*) of account_state; against plain SQL (one statement, one now())
inactive=$(q "SELECT count(*) FROM customer_account.inactive_customers(365)")
time_alternating "SELECT count(*) FROM customer_account.account_state" "SELECT count(*) FROM customer_account.inactive_customers(365)"
result "inactive_customers(365) ($inactive rows)" "ms" "$T_B" "" "" "count(*) account_state: $T_A ms" "$T_A" "$T_RATIO" "(information)" "-"
bad_ic=$(q "SELECT count(*) FROM (
    (SELECT customer_id, customer_account.currency_of(lifetime_revenue), last_purchase_at, customer_account.amount_of(lifetime_revenue)
     FROM customer_account.inactive_customers(365) EXCEPT ALL SELECT * FROM bench.ref_inactive_customers(365))
    UNION ALL
    (SELECT * FROM bench.ref_inactive_customers(365) EXCEPT ALL
     SELECT customer_id, customer_account.currency_of(lifetime_revenue), last_purchase_at, customer_account.amount_of(lifetime_revenue)
     FROM customer_account.inactive_customers(365))) d")
echo "   inactive_customers(365): $bad_ic rows differ from plain SQL"
result "report agreement (plain SQL)" "rows" "$((bad_cr + bad_ic))" "" "" "channel_report (30 days, 18 months): $bad_cr, inactive_customers(365): $bad_ic differ" "" "" "= 0" "$( [ $((bad_cr + bad_ic)) = 0 ] && echo yes || echo no)"

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
    echo "Run $(date -u +%Y-%m-%dT%H:%MZ), N = $N customers, ${DUR}s per pgbench run, on $machine."
    echo "Every ratio is the median of $ROUNDS rounds in which the workload and its reference ran"
    echo "alternately (A, B, A, B, ...); TPS and times are medians, p50/p99 over every run; a time"
    echo "in the server is a statement's second run in its session (the first warms the backend)"
    echo "(see \`test/bench/\` and the design's benchmarks page). Rerun: \`N=$N DUR=$DUR ROUNDS=$ROUNDS bash test/bench/run.sh\`."
    echo
    echo "| $(echo "$table" | head -1) |"
    echo "|$(echo "$table" | head -1 | sed 's/[^|]*/---/g')|"
    echo "$table" | tail -n +2 | sed 's/^/| /; s/$/ |/'
} > "$BENCH_OUT"
echo
cat "$BENCH_OUT"
rm -rf "$TMP"
