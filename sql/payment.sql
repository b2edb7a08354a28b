--
-- Payment-method decisions: one scenario per reason code, in German and
-- English, policy changed with an UPDATE, enforcement at booking (function
-- and plain INSERT), and the bad inputs.  Times are relative to now(), so
-- the answers do not age.
--
SET search_path = customer_account, public;
-- a fresh extension: the files share one regression database
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
CREATE FUNCTION pg_temp.options(id bigint, total text, channel text) RETURNS TABLE (method text, allowed boolean, reason_code text)
LANGUAGE sql AS $$ SELECT method, allowed, reason_code FROM customer_account.payment_options(id, total::customer_account.currency_amount, channel) $$;
CREATE FUNCTION pg_temp.why(id bigint, total text, channel text, m text) RETURNS text
LANGUAGE sql AS $$ SELECT reason_code || ': ' || reason FROM customer_account.payment_options(id, total::customer_account.currency_amount, channel) WHERE method = m $$;

SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('till', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT add_channel('phone', 'callcenter', 'EUR');

-- 1 good (de): paid a card order two months ago
SELECT register_customer('Gute Kundin', 'gut@example.de', NULL, 'de', now() - interval '2 years');
SELECT place_order('G-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"80.00 EUR"}]', 'credit_card', now() - interval '60 days');
-- 2 overdue (en): registered now, the overdue invoice is booked after the dunning run below
SELECT register_customer('Late Larry', 'larry@example.com', NULL, 'en', now() - interval '2 years');
-- 3 credit limit (de): limit 100, 60 open and not yet due
SELECT register_customer('Limitierte Lena', 'lena@example.de', NULL, 'de', now() - interval '2 years');
SELECT set_credit_limit(3, '100.00 EUR');
SELECT place_order('C-1', 3, 'web', '[{"sku":"A","qty":1,"unit_price":"60.00 EUR"}]', 'invoice', now() - interval '2 days');
-- 4 new (en): registered today
SELECT register_customer('New Nina', 'nina@example.com', NULL, 'en');
-- 5 frequent returner (de): 6 orders this year, most of it sent back
SELECT register_customer('Rücksende Rudi', 'rudi@example.de', NULL, 'de', now() - interval '2 years');
SELECT place_order('R-' || i, 5, 'web', '[{"sku":"A","qty":1,"unit_price":"50.00 EUR"}]', 'credit_card', now() - interval '1 day' * i)
FROM generate_series(1, 6) i;
-- delivered, and five of the six sent back (returned 250.00 of 300.00 EUR)
SELECT count(*) FROM (SELECT mark_delivered('R-' || i, now() - interval '1 day' * i + interval '1 hour')
                      FROM generate_series(1, 6) i) d;
SELECT count(*) FROM generate_series(1, 5) i, LATERAL accept_return('R-' || i, 'A', 1, 'web') r
WHERE r.action = 'refund_original_payment';
-- 6 in dunning (en): a reminder went out for an invoice 30 days old
SELECT register_customer('Dunned Dan', 'dan@example.com', NULL, 'en', now() - interval '2 years');
SELECT place_order('D-1', 6, 'web', '[{"sku":"A","qty":1,"unit_price":"30.00 EUR"}]', 'invoice', now() - interval '30 days');
SELECT customer_id, level, action FROM dunning_run(current_date);
SELECT place_order('L-1', 2, 'web', '[{"sku":"A","qty":1,"unit_price":"120.00 EUR"}]', 'invoice', now() - interval '40 days');
-- 7 blocked (fr, falls back to English)
SELECT register_customer('Bloqué Bernard', 'bernard@example.fr', NULL, 'fr', now() - interval '2 years');
UPDATE customer SET blocked = true WHERE customer_id = 7;

-- the full answer for the good customer on each channel kind
SELECT * FROM payment_options(1, '100.00 EUR', 'web');
SELECT * FROM pg_temp.options(1, '100.00 EUR', 'till');
SELECT * FROM pg_temp.options(1, '100.00 EUR', 'ebay');
SELECT * FROM pg_temp.options(1, '100.00 EUR', 'phone');

-- one reason code per scenario, each with its sentence
SELECT pg_temp.why(2, '50.00 EUR', 'web', 'invoice') AS overdue_en;
SELECT pg_temp.why(2, '50.00 EUR', 'web', 'prepayment') AS still_prepayment;
SELECT pg_temp.why(3, '50.00 EUR', 'web', 'invoice') AS limit_de;
SELECT pg_temp.why(3, '40.00 EUR', 'web', 'invoice') AS exactly_at_limit;
SELECT pg_temp.why(4, '300.00 EUR', 'web', 'invoice') AS new_en;
SELECT pg_temp.why(4, '200.00 EUR', 'web', 'invoice') AS new_small_order;
SELECT pg_temp.why(5, '50.00 EUR', 'web', 'invoice') AS returner_de;
SELECT pg_temp.why(6, '10.00 EUR', 'web', 'direct_debit') AS dunning_en;
SELECT pg_temp.why(7, '10.00 EUR', 'web', 'invoice') AS blocked_fr;
SELECT * FROM pg_temp.options(7, '10.00 EUR', 'web');
SELECT pg_temp.why(1, '6000.00 EUR', 'web', 'invoice') AS out_of_range;
SELECT pg_temp.why(1, '10.00 EUR', 'web', 'cash') AS not_on_channel;
SELECT pg_temp.why(1, '10.00 EUR', 'web', 'store_credit') AS no_credit;
-- every refusal leaves a way to pay
SELECT customer_id, bool_or(allowed) AS can_pay
FROM generate_series(1, 7) customer_id, LATERAL payment_options(customer_id, '50.00 EUR', 'web')
GROUP BY customer_id ORDER BY customer_id;

-- policy is data: the next call sees an UPDATE
UPDATE credit_policy SET first_order_limit = 500 WHERE channel_kind IS NULL AND customer_group IS NULL AND currency IS NULL;
SELECT pg_temp.why(4, '300.00 EUR', 'web', 'invoice') AS after_raising_first_order_limit;
INSERT INTO credit_policy (channel_kind, credit_limit, first_order_limit) VALUES ('store', 50, 50);
SELECT pg_temp.why(1, '60.00 EUR', 'till', 'invoice') AS store_policy, pg_temp.why(1, '60.00 EUR', 'web', 'invoice') AS web_policy;
UPDATE customer SET customer_group = 'vip' WHERE customer_id = 1;
INSERT INTO credit_policy (customer_group, credit_limit) VALUES ('vip', 20000);
SELECT pg_temp.why(1, '6000.00 EUR', 'till', 'invoice') AS vip_but_method_range;
UPDATE payment_method SET max_amount = NULL WHERE code = 'invoice';
SELECT pg_temp.why(1, '6000.00 EUR', 'till', 'invoice') AS vip_group_wins;
UPDATE payment_method SET channel_kinds = '{webshop}' WHERE code = 'invoice';
SELECT pg_temp.why(1, '60.00 EUR', 'till', 'invoice') AS invoice_now_web_only;
UPDATE payment_method SET channel_kinds = '{webshop,app,callcenter,store}', max_amount = 5000 WHERE code = 'invoice';
UPDATE credit_policy SET overdue_tolerance = 200 WHERE channel_kind IS NULL AND customer_group IS NULL AND currency IS NULL;
SELECT pg_temp.why(2, '50.00 EUR', 'web', 'invoice') AS overdue_within_tolerance;
UPDATE credit_policy SET overdue_tolerance = 5 WHERE channel_kind IS NULL AND customer_group IS NULL AND currency IS NULL;

-- enforcement: a refused method is refused when booking, by function or INSERT
SELECT pg_temp.try($$SELECT customer_account.place_order('L-2', 2, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'invoice')$$);
SELECT pg_temp.try($$SELECT customer_account.place_order('L-2', 2, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'cash_on_delivery')$$);
SELECT pg_temp.try($$
    INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('L-3', 2, 'web', 'invoice', '10.00 EUR')$$);
SELECT place_order('L-4', 2, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'prepayment') AS prepayment_works;
SELECT pg_temp.try($$SELECT customer_account.place_order('B-1', 7, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'prepayment')$$);
SELECT place_order('B-2', 7, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card') AS blocked_pays_at_once;
SELECT place_order('N-1', 4, 'web', '[{"sku":"A","qty":1,"unit_price":"100.00 EUR"}]', 'invoice') AS new_customer_small_invoice;
SELECT pg_temp.try($$SELECT customer_account.place_order('N-2', 4, 'web', '[{"sku":"A","qty":1,"unit_price":"450.00 EUR"}]', 'invoice')$$);

-- bad input
SELECT v AS bad_call, pg_temp.try(v) AS result FROM (VALUES
  ($$SELECT * FROM customer_account.payment_options(99, '10.00 EUR', 'web')$$),
  ($$SELECT * FROM customer_account.payment_options(1, '10.00 EUR', 'nowhere')$$),
  ($$SELECT * FROM customer_account.payment_options(1, '0.00 EUR', 'web')$$),
  ($$SELECT * FROM customer_account.payment_options(1, '-5.00 EUR', 'web')$$),
  ($$SELECT * FROM customer_account.payment_options(1, '10.00 USD', 'web')$$),
  ($$SELECT * FROM customer_account.payment_options(1, '10.00 EURO', 'web')$$)
) t(v);
SELECT count(*) AS null_args FROM payment_options(NULL, '10.00 EUR', 'web');

-- the reason catalog
SELECT reason_text('overdue_debt', 'de') AS de, reason_text('overdue_debt', 'en') AS en, reason_text('overdue_debt', 'it') AS it_falls_back;
SELECT pg_temp.try($$SELECT customer_account.reason_text('no_such_code', 'en')$$);
SELECT * FROM verify_balances();
