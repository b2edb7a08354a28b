-- Workload "money sum": sum(currency_amount) beside sum(bigint) (the limit,
-- the same 64-bit work) and sum(numeric), over the same 10 million rows,
-- single backend without parallel workers so the aggregate itself is timed.
\set rows 10000000
SET max_parallel_workers_per_gather = 0;
DROP TABLE IF EXISTS bench.money;
CREATE TABLE bench.money AS
SELECT customer_account.currency_amount_from_minor_units((i * 7919) % 100000 - 20000, 'EUR') AS a,
       ((i * 7919) % 100000 - 20000)::bigint AS b,
       (((i * 7919) % 100000 - 20000) / 100.0)::numeric(12,2) AS n
FROM generate_series(1::bigint, :rows) i;
VACUUM (FREEZE, ANALYZE) bench.money;

SELECT bench.time_ms('SELECT customer_account.sum(a) FROM bench.money') AS t_money \gset
SELECT bench.time_ms('SELECT sum(b) FROM bench.money') AS t_bigint \gset
SELECT bench.time_ms('SELECT sum(n) FROM bench.money') AS t_numeric \gset
-- all three agree on the total
SELECT (SELECT customer_account.minor_units(customer_account.sum(a)) FROM bench.money)
     = (SELECT sum(b) FROM bench.money) AND
       (SELECT customer_account.amount_of(customer_account.sum(a)) FROM bench.money)
     = (SELECT sum(n) FROM bench.money) AS totals_agree \gset
\if :totals_agree
\else
\echo 'money sum: the three sums disagree'
\quit
\endif
INSERT INTO bench.result (workload, figure, value, reference, ref_value, ratio, target, holds)
VALUES ('money sum vs sum(bigint)', 'ms', :t_money, 'sum(bigint)', :t_bigint,
        round(:t_money / :t_bigint, 2), '<= 1.25', CASE WHEN :t_money / :t_bigint <= 1.25 THEN 'yes' ELSE 'no' END),
       ('money sum vs sum(numeric)', 'ms', :t_money, 'sum(numeric)', :t_numeric,
        round(:t_money / :t_numeric, 2), '<= 0.65', CASE WHEN :t_money / :t_numeric <= 0.65 THEN 'yes' ELSE 'no' END);
DROP TABLE bench.money;
