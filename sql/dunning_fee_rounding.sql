--
-- A dunning fee finer than the currency's minor unit.  Configuration amounts
-- round half to even, like the money type (0330e24; credit_policy and
-- payment_method through ca_conf_to_units), but dunning_level.fee is turned
-- into minor units by dunning.c's fee_units with numeric_round, half away
-- from zero: a fee of 2.505 is booked as 2.51 EUR.  Expected: 2.50 EUR
-- (and 2.505 KWD, which is exact).
--
SET search_path = customer_account, public;
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SET TimeZone = 'UTC';
SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('web-kw', 'webshop', 'KWD');
UPDATE credit_policy SET overdue_tolerance = 0;
SELECT register_customer('Eva') AS eva \gset
SELECT register_customer('Karl') AS karl \gset
SELECT place_order('F-E', :eva, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'invoice', now() - interval '80 days');
SELECT place_order('F-K', :karl, 'web-kw', '[{"sku":"A","qty":1,"unit_price":"1.000 KWD"}]', 'invoice', now() - interval '80 days');
-- 2.505 lies exactly halfway between 2.50 and 2.51 EUR (and 2.505 KWD is exact)
UPDATE dunning_level SET fee = 2.505 WHERE level = 1;
SELECT customer_id = :eva AS eva, currency, level, fee FROM dunning_run(current_date) ORDER BY currency;
-- what the money type and the payment decisions do with the same tie
SELECT '2.50 EUR'::currency_amount * 1.002 AS money_type_half_even;
SELECT * FROM verify_balances();
