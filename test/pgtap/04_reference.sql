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
SELECT plan(8);

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

-- the return decision: line 1 of every customer's first order, at a Berlin till
SELECT cmp_ok((SELECT count(*) FROM customer_account.return_request)::int, '>', 5, 'the generator booked returns');
SELECT is_empty($$
    WITH q AS (SELECT o.order_no, l.sku, CASE WHEN customer_account.currency_of(o.total) = 'CHF' THEN 'web-ch' ELSE 'store-berlin' END AS ch
               FROM generate_series(1, 400) c(id)
               JOIN customer_account.orders o ON o.order_no = 'G' || c.id || '-1'
               JOIN customer_account.order_line l ON l.order_no = o.order_no AND l.line_no = 1)
    (SELECT q.order_no, d.n, d.action::text, customer_account.amount_of(d.refund), d.reason_code
     FROM q, LATERAL customer_account.decide_return(q.order_no, q.sku, 1, q.ch) WITH ORDINALITY AS d(action, refund, reason_code, reason, method, n)
     EXCEPT
     SELECT q.order_no, r.n, r.action, r.refund, r.reason_code
     FROM q, LATERAL bench.ref_decide_return(q.order_no, q.sku, 1, q.ch) WITH ORDINALITY AS r(action, refund, reason_code, n))
    UNION ALL
    (SELECT q.order_no, r.n, r.action, r.refund, r.reason_code
     FROM q, LATERAL bench.ref_decide_return(q.order_no, q.sku, 1, q.ch) WITH ORDINALITY AS r(action, refund, reason_code, n)
     EXCEPT
     SELECT q.order_no, d.n, d.action::text, customer_account.amount_of(d.refund), d.reason_code
     FROM q, LATERAL customer_account.decide_return(q.order_no, q.sku, 1, q.ch) WITH ORDINALITY AS d(action, refund, reason_code, reason, method, n))$$,
    'decide_return() and the PL/pgSQL reference agree for 400 orders');
SELECT cmp_ok((SELECT count(DISTINCT d.reason_code) FROM generate_series(1, 400) c(id)
               JOIN customer_account.orders o ON o.order_no = 'G' || c.id || '-1'
               JOIN customer_account.order_line l ON l.order_no = o.order_no AND l.line_no = 1,
               LATERAL customer_account.decide_return(o.order_no, l.sku, 1,
                   CASE WHEN customer_account.currency_of(o.total) = 'CHF' THEN 'web-ch' ELSE 'store-berlin' END) d)::int,
              '>=', 5, 'the return sample exercises several reason codes');

SELECT * FROM finish();
ROLLBACK;
