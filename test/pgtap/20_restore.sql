-- pgTAP: a full pg_dump -Fc of a populated account and a plain pg_restore
-- into a new database (no --disable-triggers, no other flag) round-trip
-- exactly: every table and sequence of the extension, balance() of every
-- customer; the restored database books new business with fresh keys and
-- refuses to book a restored order or payment a second time.  The work is
-- done by test/restore/roundtrip.sh (databases ca_restore_*), whose rows
-- are loaded here.
-- (the script runs while this session is idle: a session inside COPY FROM
-- would not answer the barrier of the script's CREATE/DROP DATABASE)
\set rt_file `mktemp -t ca-restore-rows.XXXXXX`
\setenv CA_RT_FILE :rt_file
\! bash test/restore/roundtrip.sh > "$CA_RT_FILE"
BEGIN;
SET search_path = customer_account, public;
CREATE TEMP TABLE rt (side text, key text, value text);
\copy rt FROM PROGRAM 'cat "$CA_RT_FILE" && rm -f "$CA_RT_FILE"'
CREATE TEMP VIEW src AS SELECT key, value FROM rt WHERE side = 'src';

SELECT plan(25 + 3 * (SELECT count(*)::int FROM src));

-- pg_dump keeps the position of every sequence the extension owns
SELECT is(ARRAY(SELECT c.relname::text FROM pg_class c, pg_extension e
                WHERE e.extname = 'customer_account' AND c.relnamespace = e.extnamespace AND c.relkind = 'S'
                  AND c.oid <> ALL (e.extconfig) ORDER BY 1),
          '{}'::text[], 'every sequence of the extension is registered with pg_extension_config_dump');

SELECT is((SELECT value FROM rt WHERE side = 'restore' AND key = 'populate'), NULL, 'the source database is populated');
SELECT is((SELECT value FROM rt WHERE side = 'restore dst' AND key = 'exit'), '0', 'pg_restore exits 0');
SELECT is((SELECT value FROM rt WHERE side = 'restore dst' AND key = 'first_error'), '', 'pg_restore reports no error');
SELECT is((SELECT value FROM rt WHERE side = 'restore one' AND key = 'exit'), '0', 'pg_restore --single-transaction exits 0');
SELECT is((SELECT value FROM rt WHERE side = 'restore one' AND key = 'first_error'), '', 'pg_restore --single-transaction reports no error');
SELECT is((SELECT value FROM rt WHERE side = 'restore ins' AND key = 'exit'), '0', 'pg_restore --single-transaction of a dump of INSERTs exits 0');
SELECT is((SELECT value FROM rt WHERE side = 'restore ins' AND key = 'first_error'), '', 'pg_restore --single-transaction of a dump of INSERTs reports no error');
SELECT cmp_ok((SELECT count(*)::int FROM src WHERE key LIKE 'table %'), '>=', 19, 'every table of the extension is compared');
SELECT cmp_ok((SELECT count(*)::int FROM src WHERE key LIKE 'sequence %'), '>=', 5, 'every sequence of the extension is compared');
SELECT is((SELECT value FROM src WHERE key = 'verify_balances'), '0', 'the source''s books agree');

-- every table, sequence and balance, in every restored database
SELECT is((SELECT value FROM rt d WHERE d.side = 'dst' AND d.key = s.key), s.value, 'pg_restore: ' || s.key)
FROM src s ORDER BY s.key;
SELECT is((SELECT value FROM rt d WHERE d.side = 'one' AND d.key = s.key), s.value, 'pg_restore --single-transaction: ' || s.key)
FROM src s ORDER BY s.key;
SELECT is((SELECT value FROM rt d WHERE d.side = 'ins' AND d.key = s.key), s.value, 'INSERTs, pg_restore --single-transaction: ' || s.key)
FROM src s ORDER BY s.key;

-- new business after the restore
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'register_customer'), 'ok t', 'register_customer() gets a new id');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'place_order'), 'ok 10.00 EUR', 'an invoice order books');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'place_order_card'), 'ok 6.00 EUR', 'a card order books');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'record_payment'), 'ok ', 'a payment on a restored order books');
SELECT alike((SELECT value FROM rt WHERE side = 'after' AND key = 'dunning_fee'), 'ok %', 'a dunning run books');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'new_keys'), 'ok t', 'new ledger rows get keys after the restored ones');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'cancel_restored'), 'ok ', 'a restored order is cancelled');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'cancel_restored_ledger'), 'ok order,payment,cancel',
    'a restored order is cancelled once, on top of its restored entries');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'deliver_restored'), 'ok ', 'a restored order is delivered');
SELECT alike((SELECT value FROM rt WHERE side = 'after' AND key = 'line_on_restored_order'), 'ERROR:  55000%',
    'a line cannot be added to a restored order that has its lines');
SELECT alike((SELECT value FROM rt WHERE side = 'after' AND key = 'order_again'), 'ERROR:  23505%',
    'a restored order is not booked a second time');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'verify_balances'), 'ok 0', 'the books agree after the new business');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'loyalty_earns'), 'ok AFTER-1 15, AFTER-2 18',
    'new orders earn points after the restore (the restored lines were not credited again)');
SELECT is((SELECT value FROM rt WHERE side = 'after' AND key = 'verify_loyalty'), 'ok 0', 'the points books agree after the new business');

-- keep the script's log (its path is in the rows) only when something failed
SELECT num_failed() = 0 AND coalesce(value LIKE '%/ca-restore.%/log', false) AS rt_passed, value AS rt_log
FROM rt WHERE side = 'log' \gset
\if :rt_passed
\setenv CA_RT_LOG :rt_log
\! case "$CA_RT_LOG" in */ca-restore.*/log) rm -rf "${CA_RT_LOG%/log}" ;; esac
\endif
SELECT * FROM finish();
ROLLBACK;
