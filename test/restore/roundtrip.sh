#!/usr/bin/env bash
# The dump/restore round trip of a populated account, as README describes
# it: pg_dump -Fc of a database, createdb, pg_restore -d (no special flags).
# Runs inside a cluster (pg_virtualenv); prints tab-separated rows
#   side  key  value
# that test/pgtap/20_restore.sql loads with \copy and asserts:
#   src       the fingerprint of the source (test/restore/fingerprint.sql)
#   dst       the fingerprint of the plain restore
#   one       the same dump restored with --single-transaction
#   ins       a dump made with --inserts, restored with --single-transaction
#   restore <side>  pg_restore's exit status and first error
#   after     what the restored database does with new business
# Everything else goes to a log file, named in a 'log' row.
set -uo pipefail
cd "$(dirname "$0")/../.."
BINDIR=$("${PG_CONFIG:-pg_config}" --bindir)
SRC=ca_restore_src
DST=ca_restore_dst
ONE=ca_restore_one      # the same dump restored with --single-transaction
INS=ca_restore_ins      # a dump of INSERT statements, restored --single-transaction
WORK=$(mktemp -d -t ca-restore.XXXXXX)
LOG=$WORK/log
PSQL=("$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate)
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3"; }
row log file "$LOG"

{
    "$BINDIR/dropdb" --if-exists "$SRC"
    "$BINDIR/dropdb" --if-exists "$DST"
    "$BINDIR/dropdb" --if-exists "$ONE"
    "$BINDIR/dropdb" --if-exists "$INS"
    "$BINDIR/createdb" "$SRC"
} >>"$LOG" 2>&1
if ! "${PSQL[@]}" -d "$SRC" -f test/restore/populate.sql -f test/restore/populate_loyalty.sql >>"$LOG" 2>&1; then
    row restore populate failed
    exit 0
fi

# one point in time for both fingerprints (balance() depends on it)
AS_OF=$("${PSQL[@]}" -At -d "$SRC" -c "SELECT now()")

"$BINDIR/pg_dump" -Fc -f "$WORK/dump" "$SRC" >>"$LOG" 2>&1 || row restore dump failed
"$BINDIR/pg_dump" -Fc --inserts -f "$WORK/dump-inserts" "$SRC" >>"$LOG" 2>&1 || row restore dump failed
"${PSQL[@]}" -d "$SRC" -v side=src -v as_of="$AS_OF" -f test/restore/fingerprint.sql 2>>"$LOG"

# restore <side> <database> <dump> [pg_restore options]: restore into a
# new database, report the exit status and first error, fingerprint it
restore() {
    local side=$1 db=$2 dump=$3
    shift 3
    "$BINDIR/createdb" "$db" >>"$LOG" 2>&1
    "$BINDIR/pg_restore" "$@" -d "$db" "$dump" >"$WORK/$side.out" 2>&1
    row "restore $side" exit "$?"
    row "restore $side" first_error "$(grep -m1 'ERROR' "$WORK/$side.out" | tr '\t' ' ')"
    cat "$WORK/$side.out" >>"$LOG"
    "${PSQL[@]}" -d "$db" -v side="$side" -v as_of="$AS_OF" -f test/restore/fingerprint.sql 2>>"$LOG"
}
restore dst "$DST" "$WORK/dump"
restore one "$ONE" "$WORK/dump" --single-transaction
restore ins "$INS" "$WORK/dump-inserts" --single-transaction

# new business in the restored database: each statement's outcome
after() {
    local name=$1 sql=$2 out
    if out=$("${PSQL[@]}" -At -d "$DST" -c "SET search_path = customer_account, public" -c "$sql" 2>&1); then
        row after "$name" "ok $(printf %s "$out" | tr '\n\t' '  ')"
    else
        row after "$name" "$(printf %s "$out" | tr '\n\t' '  ')"
    fi
    echo "after $name: $out" >>"$LOG"
}
state() {
    echo "SELECT (SELECT string_agg(entry_type, ',' ORDER BY entry_id) FROM ledger WHERE order_no = '$1')"
}
after register_customer "SELECT register_customer('Fritz New', 'fritz@example.de') > (SELECT max(customer_id) FROM customer WHERE full_name <> 'Fritz New')"
after place_order "SELECT place_order('AFTER-1', 3, 'web-de', '[{\"sku\":\"X\",\"qty\":1,\"unit_price\":\"10.00 EUR\"}]', 'invoice')"
after place_order_card "SELECT place_order('AFTER-2', 2, 'store-berlin', '[{\"sku\":\"Y\",\"qty\":2,\"unit_price\":\"3.00 EUR\"}]', 'credit_card')"
after record_payment "SELECT record_payment('AFTER-PAY', 1, '25.00 EUR', 'bank_transfer', 'web-de', 'WEB-1')"
after dunning_fee "SELECT count(*) FROM dunning_run(current_date + 1)"
after new_keys "SELECT (SELECT max(entry_id) FROM ledger) > $("${PSQL[@]}" -At -d "$SRC" -c "SELECT max(entry_id) FROM customer_account.ledger")"
after cancel_restored "SELECT cancel_order('WEB-2')"
after cancel_restored_ledger "$(state WEB-2)"
after deliver_restored "SELECT mark_delivered('POS-1')"
after line_on_restored_order "INSERT INTO order_line (order_no, line_no, sku, qty, unit_price) VALUES ('WEB-1', 9, 'MORE', 1, '1.00 EUR')"
after order_again "INSERT INTO orders (order_no, customer_id, channel, payment_method, total) VALUES ('WEB-1', 1, 'web-de', 'invoice', '104.87 EUR')"
after verify_balances "SELECT count(*) FROM verify_balances()"
after loyalty_earns "SELECT string_agg(order_no || ' ' || points, ', ' ORDER BY order_no) FROM loyalty_lot WHERE order_no LIKE 'AFTER-%'"
after verify_loyalty "SELECT count(*) FROM verify_loyalty()"

{
    "$BINDIR/dropdb" --if-exists "$SRC"
    "$BINDIR/dropdb" --if-exists "$DST"
    "$BINDIR/dropdb" --if-exists "$ONE"
    "$BINDIR/dropdb" --if-exists "$INS"
} >>"$LOG" 2>&1
rm -f "$WORK"/dump*
exit 0
