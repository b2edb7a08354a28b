--
-- Input that must be refused with a clear error (issue 8, points 10-15):
-- event times outside the accepted range, payments in the wrong currency or
-- with a method the channel does not take, retries with other content,
-- more currencies than a fixed array held, 64-bit sums outside the money
-- type, and min()/max() over mixed currencies answered from an index.
-- Every refusal shows its SQLSTATE and leaves the books as they were.
--
SET search_path = customer_account, public;
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SET TimeZone = 'UTC';

CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- ask(sql): the first column of a query's first row, or its SQLSTATE and message
CREATE FUNCTION pg_temp.ask(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r text;
BEGIN
    EXECUTE sql INTO r;
    RETURN r;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- a fingerprint of everything the books hold, to prove failures change nothing
CREATE FUNCTION pg_temp.books() RETURNS text LANGUAGE sql AS $$
    SELECT format('ledger=%s items=%s state=%s orders=%s delivered=%s cancelled=%s payments=%s',
        (SELECT count(*) FROM customer_account.ledger),
        (SELECT coalesce(sum(open), 0) FROM customer_account.open_item),
        (SELECT coalesce(sum(balance), 0) || '/' || coalesce(sum(store_credit), 0) FROM customer_account.account_state),
        (SELECT count(*) FROM customer_account.orders),
        (SELECT count(delivered_at) FROM customer_account.orders),
        (SELECT count(cancelled_at) FROM customer_account.orders),
        (SELECT count(*) FROM customer_account.payment))
$$;

SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('till', 'store', 'EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT add_channel('web-us', 'webshop', 'USD');
SELECT register_customer('Anna', 'anna@example.com', NULL, 'de', '2024-01-01') AS anna;
SELECT register_customer('Ben', 'ben@example.com', NULL, 'en', '2024-01-01') AS ben;
SELECT register_customer('Rich', 'rich@example.com', NULL, 'en', '2020-01-01') AS rich;
SELECT set_credit_limit(1, '1000.00 EUR');
SELECT place_order('O-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'invoice', '2026-01-10 10:00+00');
SELECT place_order('O-2', 1, 'web', '[{"sku":"B","qty":1,"unit_price":"20.00 EUR"}]', 'invoice', '2026-01-11 10:00+00');

------------------------------------------------------------------------------
-- point 10: event times
-- Accepted: finite, not before 1970-01-01 00:00 UTC, at most one day after
-- the current time (a till's clock may run ahead).  A delivery or a
-- cancellation never lies before the placement.
------------------------------------------------------------------------------
SELECT pg_temp.books() AS before_bad_times;
-- (a time derived from now() is shown as <now + ...>)
SELECT v AS bad_time,
       regexp_replace(pg_temp.try(v), '_at 20\d\d-\d\d-\d\d [0-9:.]+\+00 of', '_at <now + ...> of') AS result
FROM (VALUES
  ($$SELECT customer_account.place_order('T-1a', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'credit_card', 'infinity')$$),
  ($$SELECT customer_account.place_order('T-1b', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'credit_card', '-infinity')$$),
  ($$SELECT customer_account.place_order('T-1c', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'invoice', '294276-12-31 23:00+00')$$),
  ($$SELECT customer_account.place_order('T-1d', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'credit_card', '1969-12-31 23:59:59+00')$$),
  ($$SELECT customer_account.place_order('T-1e', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'credit_card', now() + interval '1 day 1 minute')$$),
  ($$SELECT customer_account.record_payment('TP-1a', 1, '1.00 EUR', 'bank_transfer', 'web', NULL, 'infinity')$$),
  ($$SELECT customer_account.record_payment('TP-1b', 1, '1.00 EUR', 'bank_transfer', 'web', NULL, '-infinity')$$),
  ($$SELECT customer_account.record_payment('TP-1c', 1, '1.00 EUR', 'bank_transfer', 'web', NULL, '4000-01-01')$$),
  ($$SELECT customer_account.mark_delivered('O-1', 'infinity')$$),
  ($$SELECT customer_account.mark_delivered('O-1', '-infinity')$$),
  ($$SELECT customer_account.mark_delivered('O-1', '2026-01-09 10:00+00')$$),
  ($$SELECT customer_account.cancel_order('O-1', 'infinity')$$),
  ($$SELECT customer_account.cancel_order('O-1', '-infinity')$$),
  ($$SELECT customer_account.cancel_order('O-1', '2026-01-09 10:00+00')$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at) VALUES ('T-2a', 1, 'web', 'credit_card', '1.00 EUR', 'infinity');
     INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('T-2a', 1, 'A', 1, '1.00 EUR');
     SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at) VALUES ('T-2b', 1, 'web', 'credit_card', '1.00 EUR', '1900-01-01');
     INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('T-2b', 1, 'A', 1, '1.00 EUR');
     SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at, delivered_at) VALUES ('T-2c', 1, 'till', 'cash', '1.00 EUR', '2026-01-10', 'infinity');
     INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('T-2c', 1, 'A', 1, '1.00 EUR');
     SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at, delivered_at) VALUES ('T-2d', 1, 'till', 'cash', '1.00 EUR', '2026-01-10', '2026-01-09');
     INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('T-2d', 1, 'A', 1, '1.00 EUR');
     SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, received_at) VALUES ('TP-2a', 1, '1.00 EUR', 'bank_transfer', 'web', 'infinity')$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, received_at) VALUES ('TP-2b', 1, '1.00 EUR', 'bank_transfer', 'web', now() + interval '2 days')$$),
  ($$UPDATE customer_account.orders SET delivered_at = 'infinity' WHERE order_no = 'O-1'$$),
  ($$UPDATE customer_account.orders SET delivered_at = '2026-01-01' WHERE order_no = 'O-1'$$),
  ($$UPDATE customer_account.orders SET cancelled_at = '-infinity' WHERE order_no = 'O-1'$$),
  ($$UPDATE customer_account.orders SET cancelled_at = '2026-01-01' WHERE order_no = 'O-1'$$),
  ($$UPDATE customer_account.orders SET cancelled_at = now() + interval '3 days' WHERE order_no = 'O-1'$$)
) t(v);
SELECT pg_temp.books() AS after_bad_times;
SELECT count(*) AS infinite_times FROM ledger WHERE NOT isfinite(event_at);
SELECT count(*) AS infinite_due_dates FROM open_item WHERE NOT isfinite(due_at);
-- the edges of the range are accepted: 1970-01-01 and a till's clock a few hours ahead
SELECT place_order('T-3', 1, 'till', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'cash', '1970-01-01 00:00+00');
SELECT place_order('T-4', 1, 'till', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'cash', now() + interval '23 hours');
SELECT record_payment('TP-3', 1, '1.00 EUR', 'bank_transfer', 'web', NULL, now() + interval '23 hours');
SELECT mark_delivered('O-1', '2026-01-10 10:00+00');          -- at the moment of placement
SELECT cancel_order('O-2', '2026-01-11 10:00+00');
SELECT order_no, delivered_at, cancelled_at FROM orders WHERE order_no IN ('O-1', 'O-2') ORDER BY 1;

-- a payment term cannot wrap the due date: at most ten years
BEGIN;
SELECT pg_temp.try($$SELECT customer_account.add_channel('web-long', 'webshop', 'EUR', 30, NULL, 2000000000)$$) AS huge_term;
SELECT pg_temp.try($$UPDATE customer_account.channel SET payment_term_days = 3651 WHERE code = 'web'$$) AS term_3651;
SELECT pg_temp.ask($$SELECT customer_account.place_order('T-6', 1, 'web-long', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'invoice', '2026-01-12 10:00+00')$$) AS order_on_huge_term;
SELECT due_at AS wrapped_due_date FROM open_item WHERE order_no = 'T-6';
ROLLBACK;
SELECT add_channel('web-ten-years', 'webshop', 'EUR', 30, NULL, 3650);
SELECT place_order('T-5', 1, 'web-ten-years', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'invoice', '2026-01-12 10:00+00');
SELECT due_at FROM open_item WHERE order_no = 'T-5';
-- a customer's start date is a finite time
BEGIN;
SELECT pg_temp.try($$SELECT customer_account.register_customer('Zed', NULL, NULL, 'en', '-infinity')$$) AS since_minus_infinity;
SELECT pg_temp.try($$UPDATE customer_account.customer SET customer_since = 'infinity' WHERE customer_id = 2$$) AS since_infinity;
ROLLBACK;

------------------------------------------------------------------------------
-- point 11: payments a channel cannot take
------------------------------------------------------------------------------
SELECT pg_temp.books() AS before_bad_payments;
SELECT v AS bad_payment, pg_temp.try(v) AS result FROM (VALUES
  ($$SELECT customer_account.record_payment('BP-1a', 1, '5.00 USD', 'bank_transfer', 'web')$$),
  ($$SELECT customer_account.record_payment('BP-1b', 1, '5.00 EUR', 'cash', 'web')$$),
  ($$SELECT customer_account.record_payment('BP-1c', 1, '5.00 EUR', 'marketplace', 'till')$$),
  ($$SELECT customer_account.record_payment('BP-1d', 1, '5.00 EUR', 'store_credit', 'till')$$),
  ($$SELECT customer_account.record_payment('BP-1e', 1, '5.00 EUR', 'store_credit', 'web', 'O-1')$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel) VALUES ('BP-2a', 1, '5.00 USD', 'bank_transfer', 'web')$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel) VALUES ('BP-2b', 1, '5.00 EUR', 'cash', 'web')$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel) VALUES ('BP-2c', 1, '5.00 EUR', 'store_credit', 'web')$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel) VALUES ('BP-2d', 77, '5.00 EUR', 'bank_transfer', 'web')$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel) VALUES ('BP-2e', 1, '5.00 EUR', 'gold', 'web')$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel) VALUES ('BP-2f', 1, '5.00 EUR', 'bank_transfer', 'web-fr')$$),
  ($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, order_no) VALUES ('BP-2g', 1, '5.00 EUR', 'bank_transfer', 'web', 'NOPE')$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('BO-1a', 77, 'web', 'invoice', '5.00 EUR');
     INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('BO-1a', 1, 'A', 1, '5.00 EUR');
     SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('BO-1b', 1, 'web-fr', 'invoice', '5.00 EUR');
     INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('BO-1b', 1, 'A', 1, '5.00 EUR');
     SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('BO-1c', 1, 'web', 'bitcoin', '5.00 EUR');
     INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('BO-1c', 1, 'A', 1, '5.00 EUR');
     SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED$$)
) t(v);
SELECT pg_temp.books() AS after_bad_payments;
-- what a channel takes is fine: cash at the till, a transfer in the web shop
SELECT record_payment('GP-1', 1, '5.00 EUR', 'cash', 'till');
SELECT record_payment('GP-2', 1, '5.00 EUR', 'bank_transfer', 'web');
SELECT pg_temp.books() AS after_good_payments;

------------------------------------------------------------------------------
-- point 12: a retry with the same key and other content is an error
------------------------------------------------------------------------------
SELECT place_order('R-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"3.00 EUR","category":"shoes"}]', 'credit_card', '2026-02-01 10:00+00');
SELECT record_payment('RP-1', 1, '2.00 EUR', 'bank_transfer', 'web', NULL, '2026-02-02 10:00+00');
SELECT pg_temp.books() AS before_retries;
SELECT v AS retry, pg_temp.try(v) AS result FROM (VALUES
  -- the same content, and the same without a time (the default now()), post nothing
  ($$SELECT customer_account.place_order('R-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"3.00 EUR","category":"shoes"}]', 'credit_card', '2026-02-01 10:00+00')$$),
  ($$SELECT customer_account.place_order('R-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"3.00 EUR","category":"shoes"}]', 'credit_card')$$),
  ($$SELECT customer_account.record_payment('RP-1', 1, '2.00 EUR', 'bank_transfer', 'web', NULL, '2026-02-02 10:00+00')$$),
  ($$SELECT customer_account.record_payment('RP-1', 1, '2.00 EUR', 'bank_transfer', 'web')$$),
  ($$SELECT customer_account.mark_delivered('O-1', '2026-01-10 10:00+00')$$),
  ($$SELECT customer_account.mark_delivered('O-1')$$),
  ($$SELECT customer_account.cancel_order('O-2', '2026-01-11 10:00+00')$$),
  ($$SELECT customer_account.cancel_order('O-2')$$),
  -- another time, category, returnable flag: 23505
  ($$SELECT customer_account.place_order('R-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"3.00 EUR","category":"shoes"}]', 'credit_card', '2026-02-01 11:00+00')$$),
  ($$SELECT customer_account.place_order('R-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"3.00 EUR","category":"hats"}]', 'credit_card', '2026-02-01 10:00+00')$$),
  ($$SELECT customer_account.place_order('R-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"3.00 EUR"}]', 'credit_card', '2026-02-01 10:00+00')$$),
  ($$SELECT customer_account.place_order('R-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"3.00 EUR","category":"shoes","returnable":false}]', 'credit_card', '2026-02-01 10:00+00')$$),
  ($$SELECT customer_account.record_payment('RP-1', 1, '2.00 EUR', 'bank_transfer', 'web', NULL, '2026-02-03 10:00+00')$$),
  ($$SELECT customer_account.mark_delivered('O-1', '2026-01-12 10:00+00')$$),
  ($$SELECT customer_account.cancel_order('O-2', '2026-01-12 10:00+00')$$)
) t(v);
SELECT pg_temp.books() AS after_retries;

------------------------------------------------------------------------------
-- point 13: no silent caps: 70 currencies on one customer are 70 rows
------------------------------------------------------------------------------
SELECT count(add_channel('c-' || code, 'webshop', code)) AS channels
FROM (SELECT code FROM currencies() ORDER BY code LIMIT 70) c;
SELECT count(place_order('M-' || code, 2, 'c-' || code,
                         jsonb_build_array(jsonb_build_object('sku', 'A', 'qty', 1,
                             'unit_price', currency_amount_from_minor_units(100, code)::text)),
                         'credit_card', '2026-02-01 10:00+00')) AS orders
FROM (SELECT code FROM currencies() ORDER BY code LIMIT 70) c;
SELECT count(*) AS currencies, count(DISTINCT currency) AS distinct_currencies,
       min(currency) AS first, max(currency) AS last, sum(orders_12m) AS orders
FROM balance(2, '2026-02-10');
SELECT count(*) AS currencies_now FROM balance(2);
-- dunning_run() reads at most 16 levels: a 17th is refused where it is created
SELECT pg_temp.try($$INSERT INTO customer_account.dunning_level (level, days_overdue, delay_days, action) VALUES (17, 400, 14, 'lawyer')$$) AS level_17;

------------------------------------------------------------------------------
-- point 14: 64-bit sums outside the money type are checked
------------------------------------------------------------------------------
-- a credit method without an amount bound and a customer with the highest
-- possible limit: one open invoice of half the 64-bit range
SELECT add_payment_method('big_invoice', true);
SELECT set_credit_limit(3, '92233720368547758.07 EUR');
SELECT place_order('BIG-1', 3, 'web', '[{"sku":"YACHT","qty":1,"unit_price":"46116860184273879.04 EUR"}]', 'big_invoice', now() - interval '1 hour');
-- the same again would take the exposure past 2^63 minor units: an error, not "allowed"
SELECT pg_temp.ask($$SELECT reason_code FROM customer_account.payment_options(3, '46116860184273879.04 EUR', 'web') WHERE method = 'big_invoice'$$) AS exposure;
SELECT pg_temp.try($$SELECT customer_account.place_order('BIG-2', 3, 'web', '[{"sku":"YACHT","qty":1,"unit_price":"46116860184273879.04 EUR"}]', 'big_invoice')$$) AS second_yacht;
-- a smaller order still gets an answer
SELECT method, allowed, reason_code FROM payment_options(3, '10.00 EUR', 'web') WHERE method IN ('big_invoice', 'invoice');
-- open items written behind the posting core's back cannot wrap the direct read
BEGIN;
INSERT INTO open_item (customer_id, currency, kind, amount, open, created_at, due_at)
VALUES (3, 'EUR', 'fee', 9223372036854775807, 9223372036854775807, '2026-02-01', '2036-02-01');
SELECT pg_temp.ask($$SELECT reason_code FROM customer_account.payment_options(3, '10.00 EUR', 'web') WHERE method = 'big_invoice'$$) AS items_sum;
ROLLBACK;
-- a grace period that cannot be added to a date: an error, not a wrapped cut-off
-- (1e9 days wrapped under -fwrapv put the cut-off in the far future: O-3,
-- due in two weeks, counted as overdue and refused the invoice)
SELECT place_order('O-3', 2, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'invoice', now() - interval '1 day');
BEGIN;
UPDATE credit_policy SET overdue_grace_days = 1000000000;
SELECT regexp_replace(pg_temp.ask($$SELECT reason_code FROM customer_account.payment_options(2, '10.00 EUR', 'web') WHERE method = 'invoice'$$),
                      '20\d\d-\d\d-\d\d [0-9:.]+\+00', '<now>') AS grace;
ROLLBACK;
SELECT method, reason_code FROM payment_options(2, '10.00 EUR', 'web') WHERE method = 'invoice';

------------------------------------------------------------------------------
-- point 15: min() and max() over mixed currencies are an error, also when
-- an index could answer them
------------------------------------------------------------------------------
CREATE TABLE pg_temp.mixed (id int, a currency_amount);
INSERT INTO pg_temp.mixed
SELECT i, currency_amount(i, CASE WHEN i % 2 = 0 THEN 'EUR' ELSE 'USD' END) FROM generate_series(1, 2000) i;
CREATE INDEX mixed_a ON pg_temp.mixed (a);
ANALYZE pg_temp.mixed;
SELECT pg_temp.try($$SELECT min(a) FROM pg_temp.mixed$$) AS min_seq, pg_temp.try($$SELECT max(a) FROM pg_temp.mixed$$) AS max_seq;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT min(a) FROM pg_temp.mixed;
SELECT pg_temp.try($$SELECT min(a) FROM pg_temp.mixed$$) AS min_index, pg_temp.try($$SELECT max(a) FROM pg_temp.mixed$$) AS max_index;
-- grouped by currency, and for one currency, min and max answer
SELECT currency_of(a) AS currency, min(a), max(a), count(*) FROM pg_temp.mixed GROUP BY 1 ORDER BY 1;
SELECT min(a), max(a) FROM pg_temp.mixed WHERE currency_of(a) = 'EUR';
RESET enable_seqscan;
-- a single-currency column with an index
CREATE TABLE pg_temp.euros (a currency_amount);
INSERT INTO pg_temp.euros SELECT currency_amount(i, 'EUR') FROM generate_series(1, 2000) i;
CREATE INDEX euros_a ON pg_temp.euros (a);
ANALYZE pg_temp.euros;
SET enable_seqscan = off;
SELECT min(a), max(a) FROM pg_temp.euros;
RESET enable_seqscan;
-- a parallel plan: partial aggregates in the workers, combined in the leader
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_bitmapscan = off;
CREATE TABLE public.hardening_mixed AS SELECT * FROM pg_temp.mixed;
ANALYZE public.hardening_mixed;
EXPLAIN (COSTS OFF) SELECT min(a), max(a) FROM public.hardening_mixed;
\set VERBOSITY sqlstate
SELECT min(a) FROM public.hardening_mixed;
SELECT max(a) FROM public.hardening_mixed;
\set VERBOSITY default
SELECT min(a), max(a), sum(a) FROM public.hardening_mixed WHERE currency_of(a) = 'USD';
DROP TABLE public.hardening_mixed;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET enable_indexscan;
RESET enable_indexonlyscan;
RESET enable_bitmapscan;

-- the books agree with the ledger after all of it
SELECT * FROM verify_balances();
