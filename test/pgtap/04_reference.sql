-- pgTAP: the benchmark's reference implementations (plain SQL and PL/pgSQL
-- over the same tables, test/bench/reference.sql) and the extension give the
-- same answers on data from the benchmark's own generator, so that the
-- benchmark compares like with like.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET client_min_messages = warning;
\i test/bench/setup.sql
\set lo 1
\set hi 401
\i test/bench/generate.sql
\i test/bench/reference.sql
RESET client_min_messages;
-- the real policy for the comparison (the load used a generous one)
DELETE FROM customer_account.credit_policy;
INSERT INTO customer_account.credit_policy (shipped) VALUES (true);
SET search_path = customer_account, public;
SELECT plan(5);

SELECT cmp_ok((SELECT count(*) FROM customer_account.ledger)::int, '>', 2000, 'the generator booked a history');
SELECT is_empty($$SELECT * FROM customer_account.verify_balances()$$, 'the generated books are consistent');
SELECT is_empty($$
    SELECT c.id, b.currency FROM generate_series(1, 400) c(id), LATERAL customer_account.balance(c.id) b
    JOIN LATERAL bench.ref_balance(c.id) r ON r.currency = b.currency
    WHERE customer_account.amount_of(b.balance) <> r.balance OR customer_account.amount_of(b.open_amount) <> r.open_amount
       OR customer_account.amount_of(b.overdue_amount) <> r.overdue_amount
       OR customer_account.amount_of(b.store_credit) <> r.store_credit
       OR customer_account.amount_of(b.lifetime_revenue) <> r.lifetime_revenue
       OR customer_account.amount_of(b.revenue_12m) <> r.revenue_12m OR b.orders_12m <> r.orders_12m
       OR b.last_purchase_at IS DISTINCT FROM r.last_purchase_at$$,
    'balance() and the SQL reference agree for 400 customers');
SELECT is_empty($$
    SELECT c.id, d.* FROM generate_series(1, 400) c(id),
    LATERAL (SELECT method, allowed, reason_code FROM customer_account.payment_options(c.id, '150.00 EUR', 'web-de')
             EXCEPT SELECT * FROM bench.ref_payment_options(c.id, 150.00, 'EUR', 'web-de')) d$$,
    'payment_options() and the PL/pgSQL reference agree for 400 customers');
SELECT cmp_ok((SELECT count(DISTINCT reason_code) FROM generate_series(1, 400) c(id),
               LATERAL customer_account.payment_options(c.id, '150.00 EUR', 'web-de'))::int, '>=', 4,
              'the sample exercises several reason codes');

SELECT * FROM finish();
ROLLBACK;
