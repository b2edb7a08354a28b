--
-- The read path on all-visible pages: after VACUUM the unsettled items are
-- read from open_item_unsettled alone (index-only), and balance(), the
-- payment decision and aging_report() must answer exactly as the SQL over
-- the tables does; each first call in a fresh backend too.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SET TimeZone = 'UTC';
-- the benchmark's generator and references (test/bench), quietly
\set ECHO none
\set QUIET on
\o /dev/null
\i test/bench/setup.sql
BEGIN;
\set lo 1
\set hi 301
\i test/bench/generate.sql
COMMIT;
\i test/bench/reference.sql
\o
\set QUIET off
\set ECHO all
DELETE FROM customer_account.credit_policy;
INSERT INTO customer_account.credit_policy (shipped) VALUES (true);
VACUUM (ANALYZE) customer_account.open_item, customer_account.account_state;
SELECT count(*) > 100 AS many_unsettled_items FROM customer_account.open_item WHERE settled_at IS NULL;
CREATE VIEW aging_sql AS
    WITH bucketed AS (
        SELECT i.currency, i.customer_id, i.open,
               CASE WHEN d <= 0 THEN 'current' WHEN d <= 30 THEN '1-30' WHEN d <= 60 THEN '31-60'
                    WHEN d <= 90 THEN '61-90' ELSE '90+' END AS bucket
        FROM customer_account.open_item i, LATERAL (SELECT current_date - (i.due_at AT TIME ZONE 'UTC')::date AS d) x
        WHERE i.settled_at IS NULL AND i.kind <> 'prepayment'
    )
    SELECT c.currency, b.name AS bucket, count(DISTINCT bk.customer_id) AS customers,
           customer_account.currency_amount_from_minor_units(coalesce(sum(bk.open), 0)::bigint, c.currency) AS amount
    FROM (SELECT DISTINCT bucketed.currency FROM bucketed) c
    CROSS JOIN (VALUES (1, 'current'), (2, '1-30'), (3, '31-60'), (4, '61-90'), (5, '90+')) b(ord, name)
    LEFT JOIN bucketed bk ON bk.currency = c.currency AND bk.bucket = b.name
    GROUP BY c.currency, b.ord, b.name;
-- a fresh backend: the report is its first read
\set QUIET on
\c
\set QUIET off
SELECT count(*) >= 5 AS aging_rows FROM customer_account.aging_report();
SELECT count(*) AS aging_differences FROM (
    (SELECT * FROM customer_account.aging_report() EXCEPT ALL SELECT * FROM aging_sql)
    UNION ALL (SELECT * FROM aging_sql EXCEPT ALL SELECT * FROM customer_account.aging_report())) d;
\set QUIET on
\c
\set QUIET off
SELECT count(*) AS balance_differences
FROM generate_series(1, 300) c(id), LATERAL customer_account.balance(c.id) b
JOIN LATERAL bench.ref_balance(c.id) r ON r.currency = b.currency
WHERE customer_account.amount_of(b.balance) <> r.balance OR customer_account.amount_of(b.open_amount) <> r.open_amount
   OR customer_account.amount_of(b.overdue_amount) <> r.overdue_amount
   OR customer_account.amount_of(b.store_credit) <> r.store_credit
   OR customer_account.amount_of(b.lifetime_revenue) <> r.lifetime_revenue
   OR customer_account.amount_of(b.revenue_12m) <> r.revenue_12m OR b.orders_12m <> r.orders_12m
   OR b.last_purchase_at IS DISTINCT FROM r.last_purchase_at;
\set QUIET on
\c
\set QUIET off
SELECT count(*) AS payment_differences
FROM generate_series(1, 300) c(id),
     LATERAL (SELECT method, allowed, reason_code FROM customer_account.payment_options(c.id, '150.00 EUR', 'web-de')
              EXCEPT SELECT * FROM bench.ref_payment_options(c.id, 150.00, 'EUR', 'web-de')) d;
SELECT count(DISTINCT reason_code) >= 3 AS several_reasons
FROM generate_series(1, 300) c(id), LATERAL customer_account.payment_options(c.id, '150.00 EUR', 'web-de');
SET client_min_messages = warning;
DROP VIEW aging_sql;
DROP SCHEMA bench CASCADE;
