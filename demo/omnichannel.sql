-- customer_account demo: one customer account across every sales channel.
-- Run by demo/run.sh on a throwaway cluster.
\set QUIET on
CREATE EXTENSION customer_account CASCADE;
SET search_path = customer_account, public;
\set QUIET off

\echo
\echo '=== Scene 1: money is exact and carries its currency ==='
SELECT '19.99 EUR'::currency_amount AS price,
       '19.99 EUR'::currency_amount * 3 AS three,
       '19.99 EUR'::currency_amount * 0.19 AS vat_19,
       '100.00 EUR'::currency_amount / 3 AS a_third,
       '1500 JPY'::currency_amount AS yen,
       'BHD 1.25'::currency_amount AS dinar;
\echo 'Two currencies never mix (the error below is expected):'
\set ON_ERROR_STOP off
SELECT '10.00 EUR'::currency_amount + '10.00 USD'::currency_amount;
\set ON_ERROR_STOP on
