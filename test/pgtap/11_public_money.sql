-- pgTAP: the money type is for everyone, the account for nobody by default.
-- A role that holds nothing but what PUBLIC holds can use currency_amount
-- (the schema, the type, its functions, operators and aggregates) and can
-- neither read nor change an account.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SELECT plan(11);

CREATE ROLE ca_nobody;
SELECT customer_account.add_channel('pm-web', 'webshop', 'EUR');
SELECT customer_account.register_customer('Paula Public', 'paula@example.com') AS paula \gset
SET ROLE ca_nobody;

SELECT ok(has_schema_privilege('customer_account', 'USAGE'), 'PUBLIC may use the schema');
SELECT is('19.99 EUR'::customer_account.currency_amount::text, '19.99 EUR', 'the type reads and prints');
SELECT is((SELECT customer_account.sum(a)::text FROM (VALUES ('1.50 EUR'::customer_account.currency_amount), ('2.25 EUR')) v(a)),
          '3.75 EUR', 'sum() over the type');
SELECT is((SELECT customer_account.max(a)::text FROM (VALUES ('1.50 EUR'::customer_account.currency_amount), ('2.25 EUR')) v(a)),
          '2.25 EUR', 'max() over the type');
SELECT is(customer_account.currency_of('1.250 BHD'), 'BHD', 'currency_of()');
SELECT is(customer_account.minor_units('1.00 EUR'::customer_account.currency_amount OPERATOR(customer_account.+)
          '2.00 EUR'::customer_account.currency_amount), 300::bigint, 'the operators');
SELECT throws_ok(format('SELECT * FROM customer_account.balance(%s)', :paula), '42501', NULL, 'balance() is not for PUBLIC');
SELECT throws_ok(format($$SELECT customer_account.place_order('PM-1', %s, 'pm-web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'credit_card')$$, :paula),
                 '42501', NULL, 'place_order() is not for PUBLIC');
SELECT throws_ok('SELECT count(*) FROM customer_account.customer', '42501', NULL, 'personal data is not for PUBLIC');
SELECT throws_ok('SELECT * FROM customer_account.verify_balances()', '42501', NULL, 'reports are not for PUBLIC');
RESET ROLE;
SELECT is_empty($$
    SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'customer_account'::regnamespace
      AND c.relkind IN ('r', 'S', 'v', 'm')
      AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT')
           OR has_table_privilege('public', c.oid, 'UPDATE') OR has_table_privilege('public', c.oid, 'DELETE'))$$,
    'no table, sequence or view is open to PUBLIC');

SELECT * FROM finish();
ROLLBACK;
