-- pgTAP: ALTER EXTENSION customer_account UPDATE from 1.0.0 on a populated
-- database.  test/upgrade/upgrade.sh creates the extension at 1.0.0 with
-- the current library, loads data the released 1.0.0 code wrote
-- (test/upgrade/fixture-1.0.0.sql, made by test/upgrade/make-fixture.sh),
-- updates, and describes the result and a fresh install; its rows are
-- loaded and asserted here: the update succeeds, every balance is what
-- 1.0.0 answered, the books agree, new business books, and the updated
-- database has exactly the objects of a fresh install.
-- (the script runs while this session is idle, see 20_restore.sql)
\set up_file `mktemp -t ca-upgrade-rows.XXXXXX`
\setenv CA_UP_FILE :up_file
\! bash test/upgrade/upgrade.sh > "$CA_UP_FILE"
BEGIN;
CREATE TEMP TABLE up (side text, category text, key text, value text);
\copy up FROM PROGRAM 'cat "$CA_UP_FILE" && rm -f "$CA_UP_FILE"'
CREATE TEMP TABLE fixture (kind text, key text, value text);
\copy fixture FROM 'test/upgrade/fixture-1.0.0.expected'

SELECT plan(32);

SELECT is((SELECT value FROM up WHERE side = 'step' AND category = 'create'), 'ok', 'CREATE EXTENSION customer_account VERSION ''1.0.0''');
SELECT is((SELECT value FROM up WHERE side = 'step' AND category = 'load'), 'ok', 'the data 1.0.0 wrote loads');
SELECT is((SELECT value FROM up WHERE side = 'step' AND category = 'update'), 'ok', 'ALTER EXTENSION customer_account UPDATE');
SELECT is((SELECT value FROM up WHERE side = 'step' AND category = 'fresh'), 'ok', 'a fresh CREATE EXTENSION beside it');
SELECT is((SELECT value FROM up WHERE side = 'upgraded' AND category = 'extversion'), '1.1.0', 'the database is at 1.1.0');

-- the account as 1.0.0 left it
SELECT cmp_ok((SELECT count(*)::int FROM fixture WHERE kind = 'balance'), '>=', 6, 'the fixture holds the balances of several customers');
SELECT bag_eq($$SELECT key, value FROM up WHERE side = 'upgraded' AND category = 'balance'$$,
              $$SELECT key, value FROM fixture WHERE kind = 'balance'$$,
              'balance() of every customer is what 1.0.0 answered');
SELECT bag_eq($$SELECT key, value FROM up WHERE side = 'upgraded' AND category = 'rows' AND key IN (SELECT key FROM fixture WHERE kind = 'rows')$$,
              $$SELECT key, value FROM fixture WHERE kind = 'rows'$$,
              'every table keeps its rows');
SELECT is((SELECT value FROM up WHERE side = 'upgraded' AND category = 'verify_balances'), '0', 'verify_balances() finds nothing after the update');

-- new business after the update
SELECT is((SELECT value FROM up WHERE side = 'after' AND category = 'register_customer'), 'ok t', 'register_customer() gets a new id');
SELECT is((SELECT value FROM up WHERE side = 'after' AND category = 'place_order'), 'ok 10.00 EUR', 'an invoice order books');
SELECT is((SELECT value FROM up WHERE side = 'after' AND category = 'place_order_card'), 'ok 6.00 EUR', 'a card order books');
SELECT is((SELECT value FROM up WHERE side = 'after' AND category = 'record_payment'), 'ok ', 'a payment on an order of 1.0.0 books');
SELECT is((SELECT value FROM up WHERE side = 'after' AND category = 'cancel_order'), 'ok ', 'an order of 1.0.0 is cancelled');
SELECT alike((SELECT value FROM up WHERE side = 'after' AND category = 'order_again'), 'ERROR:  23505%', 'an order of 1.0.0 is not booked again');
SELECT is((SELECT value FROM up WHERE side = 'after' AND category = 'verify_balances'), 'ok 0', 'the books agree after the new business');

-- the updated database has exactly the objects of a fresh install
SELECT cmp_ok((SELECT count(*)::int FROM up WHERE side = 'fresh' AND category = 'member'), '>=', 100, 'the fresh install is described');
SELECT bag_eq(format('SELECT key, value FROM up WHERE side = %L AND category = %L', 'upgraded', c),
              format('SELECT key, value FROM up WHERE side = %L AND category = %L', 'fresh', c),
              'updated = fresh: ' || c)
FROM unnest(ARRAY['member', 'function', 'table', 'column', 'constraint', 'index', 'trigger', 'policy', 'sequence',
                  'type', 'operator', 'opclass', 'extension', 'schema']) AS c
ORDER BY c;
SELECT is((SELECT count(*)::int FROM up WHERE side = 'upgraded' AND category NOT IN ('member', 'function', 'table', 'column',
            'constraint', 'index', 'trigger', 'policy', 'sequence', 'type', 'operator', 'opclass', 'extension', 'schema',
            'extversion', 'balance', 'rows', 'verify_balances')), 0, 'every category described is compared');

-- keep the script's log (its path is in the rows) only when something failed
SELECT num_failed() = 0 AND coalesce(value LIKE '%/ca-upgrade-log.%', false) AS up_passed, value AS up_log
FROM up WHERE side = 'log' \gset
\if :up_passed
\setenv CA_UP_LOG :up_log
\! case "$CA_UP_LOG" in */ca-upgrade-log.*) rm -f "$CA_UP_LOG" ;; esac
\endif
SELECT * FROM finish();
ROLLBACK;
