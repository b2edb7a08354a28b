#!/usr/bin/env bash
# ALTER EXTENSION customer_account UPDATE from 1.0.0 on a populated
# database.  Runs inside a cluster (pg_virtualenv) with the current code
# installed; prints tab-separated rows
#   side  category  key  value
# that test/pgtap/21_upgrade.sql loads with \copy and asserts:
#   step      CREATE EXTENSION ... VERSION '1.0.0', loading the fixture
#             (data 1.0.0 wrote: test/upgrade/make-fixture.sh), ALTER
#             EXTENSION ... UPDATE: 'ok' or the error
#   upgraded  the updated database: its figures (extversion, balance() as of
#             the fixture's time, row counts, verify_balances) and its
#             objects (test/upgrade/catalog.sql)
#   fresh     the objects of a fresh CREATE EXTENSION in another database
#   after     new business in the updated database: 'ok ...' or the error
set -uo pipefail
cd "$(dirname "$0")/../.."
BINDIR=$("${PG_CONFIG:-pg_config}" --bindir)
OLD=ca_upgrade_old
NEW=ca_upgrade_new
LOG=$(mktemp -t ca-upgrade-log.XXXXXX)
PSQL=("$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate)
row() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4"; }
flat() { printf %s "$1" | tr '\n\t' '  '; }
row log file log "$LOG"
step() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then row step "$name" "" ok; else row step "$name" "" "$(flat "$out")"; fi
    echo "step $name: $out" >>"$LOG"
}

{
    "$BINDIR/dropdb" --if-exists "$OLD"
    "$BINDIR/dropdb" --if-exists "$NEW"
    "$BINDIR/createdb" "$OLD"
    "$BINDIR/createdb" "$NEW"
} >>"$LOG" 2>&1
step create "${PSQL[@]}" -d "$OLD" -c "CREATE EXTENSION customer_account VERSION '1.0.0' CASCADE"
step load "${PSQL[@]}" -d "$OLD" -f test/upgrade/fixture-1.0.0.sql
step update "${PSQL[@]}" -d "$OLD" -c "ALTER EXTENSION customer_account UPDATE"
step fresh "${PSQL[@]}" -d "$NEW" -c "CREATE EXTENSION customer_account CASCADE"

"${PSQL[@]}" -d "$OLD" -v side=upgraded -f test/upgrade/catalog.sql 2>>"$LOG"
"${PSQL[@]}" -d "$NEW" -v side=fresh -f test/upgrade/catalog.sql 2>>"$LOG"

# the figures, as of the fixture's time
as_of=$(awk -F'\t' '$1 == "as_of" { print $3 }' test/upgrade/fixture-1.0.0.expected)
"${PSQL[@]}" -d "$OLD" -v as_of="$as_of" 2>>"$LOG" <<'SQL'
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET search_path = customer_account, pg_catalog;
CREATE FUNCTION pg_temp.row_counts() RETURNS TABLE (relname text, n bigint) LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel, c.relname FROM pg_class c
             WHERE c.relnamespace = 'customer_account'::regnamespace AND c.relkind = 'r' ORDER BY c.relname LOOP
        relname := r.relname;
        EXECUTE format('SELECT count(*) FROM %s', r.rel) INTO n;
        RETURN NEXT;
    END LOOP;
END $$;
COPY (
    SELECT 'upgraded', 'extversion', '', extversion FROM pg_extension WHERE extname = 'customer_account'
  UNION ALL
    -- the columns 1.0.0 had; later versions add theirs at the end (loyalty_tier)
    SELECT 'upgraded', 'balance', b.customer_id || ' ' || b.currency,
           ROW(b.customer_id, b.currency, b.balance, b.open_amount, b.overdue_amount, b.oldest_overdue_days,
               b.store_credit, b.lifetime_revenue, b.revenue_12m, b.orders_12m, b.returned_value_12m, b.return_rate,
               b.last_purchase_at, b.last_purchase_by_kind, b.dunning_level, b.value_segment)::text
    FROM customer c, balance(c.customer_id, :'as_of') b WHERE c.merged_into IS NULL
  UNION ALL
    SELECT 'upgraded', 'rows', relname, n::text FROM pg_temp.row_counts()
  UNION ALL
    SELECT 'upgraded', 'verify_balances', '', count(*)::text FROM verify_balances()
) TO STDOUT;
SQL

# new business in the updated database
after() {
    local name=$1 sql=$2 out
    if out=$("${PSQL[@]}" -At -d "$OLD" -c "SET search_path = customer_account, public" -c "$sql" 2>&1); then
        row after "$name" "" "ok $(flat "$out")"
    else
        row after "$name" "" "$(flat "$out")"
    fi
    echo "after $name: $out" >>"$LOG"
}
after register_customer "SELECT register_customer('Fritz New', 'fritz@example.de') > (SELECT max(customer_id) FROM customer WHERE full_name <> 'Fritz New')"
after place_order "SELECT place_order('AFTER-1', 3, 'web-de', '[{\"sku\":\"X\",\"qty\":1,\"unit_price\":\"10.00 EUR\"}]', 'invoice')"
after place_order_card "SELECT place_order('AFTER-2', 2, 'store-berlin', '[{\"sku\":\"Y\",\"qty\":2,\"unit_price\":\"3.00 EUR\"}]', 'credit_card')"
after record_payment "SELECT record_payment('AFTER-PAY', 1, '25.00 EUR', 'bank_transfer', 'web-de', 'WEB-1')"
after cancel_order "SELECT cancel_order('WEB-2')"
after order_again "INSERT INTO orders (order_no, customer_id, channel, payment_method, total) VALUES ('WEB-1', 1, 'web-de', 'invoice', '104.87 EUR')"
after verify_balances "SELECT count(*) FROM verify_balances()"

{
    "$BINDIR/dropdb" --if-exists "$OLD"
    "$BINDIR/dropdb" --if-exists "$NEW"
} >>"$LOG" 2>&1
exit 0
