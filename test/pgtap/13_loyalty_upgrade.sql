-- pgTAP: updating 1.0.0 to 1.1.0 with data and grants in place.  The new
-- binaries serve a 1.0.0 schema (before ALTER EXTENSION UPDATE) with loyalty
-- off; the update adds the loyalty tables, keeps the DBA's grants on
-- balance() (which gains loyalty_tier) and the books, and orders earn from then on.
BEGIN;
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS customer_account CASCADE;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION customer_account VERSION '1.0.0';
RESET client_min_messages;
SELECT plan(9);

CREATE ROLE ca_test_till;
GRANT USAGE ON SCHEMA customer_account TO ca_test_till;
GRANT EXECUTE ON FUNCTION customer_account.balance(bigint, timestamptz) TO ca_test_till;
SELECT customer_account.add_channel('up-web', 'webshop', 'EUR');
SELECT customer_account.register_customer('Up Grade', 'up@example.com', NULL, 'en', '2020-01-01') AS up \gset
SELECT lives_ok(format($$SELECT customer_account.place_order('UP-1', %s, 'up-web',
    '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', '2025-01-01')$$, :up),
    'the new binaries book an order on the 1.0.0 schema (loyalty off)');
SELECT lives_ok(format($$SELECT customer_account.cancel_order('UP-1', '2025-01-02')$$),
    'and cancel it');

ALTER EXTENSION customer_account UPDATE TO '1.1.0';
SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'customer_account'), '1.1.0', 'updated to 1.1.0');
SELECT ok(has_function_privilege('ca_test_till', 'customer_account.balance(bigint, timestamptz)', 'EXECUTE'),
    'the grant on balance() survives the update');
SELECT ok(NOT has_function_privilege('public', 'customer_account.balance(bigint, timestamptz)', 'EXECUTE'),
    'balance() stays closed to PUBLIC');
SELECT is((SELECT proargnames[19] FROM pg_proc WHERE oid = 'customer_account.balance(bigint, timestamptz)'::regprocedure),
    'loyalty_tier', 'balance() ends with loyalty_tier');

SELECT customer_account.set_loyalty_terms('EUR', '0.01 EUR');
SELECT customer_account.add_earn_rule('up-base', 1);
SELECT customer_account.place_order('UP-2', :up, 'up-web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]',
    'credit_card', '2025-02-01');
SELECT is((SELECT sum(points)::int FROM customer_account.loyalty_lot WHERE customer_id = :up), 10,
    'after the update orders earn (the order before it earned nothing)');
SET ROLE ca_test_till;
SELECT is((SELECT count(*)::int FROM customer_account.balance(:up)), 1, 'the till still reads balance()');
RESET ROLE;
SELECT is_empty('SELECT * FROM customer_account.verify_balances()', 'the books agree after the update');

SELECT * FROM finish();
ROLLBACK;
