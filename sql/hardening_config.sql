--
-- The per-backend configuration cache, in one session: amounts that do not
-- fit the money type are refused where they are written; a reload that
-- fails is never trusted afterwards; names of any length (channel, method,
-- customer group) are neither cut nor confused; a change in the own
-- transaction is seen at once, also under REPEATABLE READ, and undone by
-- ROLLBACK; an upgrade from 1.0.0 names the rows beyond the bounds.
-- (Two backends: test/isolation/specs/config_*.spec.)
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
CREATE FUNCTION pg_temp.why(id bigint, total text, channel text, m text) RETURNS text
LANGUAGE sql AS $$ SELECT reason_code FROM customer_account.payment_options(id, total::customer_account.currency_amount, channel) WHERE method = m $$;
CREATE FUNCTION pg_temp.line(price text) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_array(jsonb_build_object('sku', 'A', 'qty', 1, 'unit_price', price)) $$;

SELECT add_channel('web', 'webshop', 'EUR');
SELECT register_customer('Anna', 'anna@example.com', NULL, 'en', now() - interval '2 years');
SELECT pg_temp.why(1, '60.00 EUR', 'web', 'invoice') AS before_any_change;

--
-- 1. amounts beyond 1e12 major units (or NaN) are refused with 23514 where
--    they are written, in every amount column the cache converts (in a
--    transaction rolled back, so that nothing accepted here lingers)
--
BEGIN;
SELECT v AS bad_update, pg_temp.try(v) AS result FROM (VALUES
  ('UPDATE customer_account.credit_policy SET credit_limit = 1e16'),
  ('UPDATE customer_account.credit_policy SET credit_limit = 1000000000000.0001'),
  ('UPDATE customer_account.credit_policy SET credit_limit = ''NaN'''),
  ('UPDATE customer_account.credit_policy SET credit_limit = ''Infinity'''),
  ('UPDATE customer_account.credit_policy SET first_order_limit = 1e13'),
  ('UPDATE customer_account.credit_policy SET overdue_tolerance = 1e13'),
  ('UPDATE customer_account.payment_method SET min_amount = 1e13, max_amount = NULL WHERE code = ''invoice'''),
  ('UPDATE customer_account.payment_method SET max_amount = 1e13 WHERE code = ''invoice'''),
  ('UPDATE customer_account.payment_method SET max_amount = ''NaN'' WHERE code = ''invoice'''),
  ('UPDATE customer_account.dunning_level SET fee = 1e13 WHERE level = 2'),
  ('INSERT INTO customer_account.credit_policy (currency, credit_limit) VALUES (''USD'', 1e20)')
) t(v);
SELECT pg_temp.try($$SELECT customer_account.add_payment_method('huge', false, NULL, 'immediate', NULL, 1e13)$$) AS add_payment_method_huge;
ROLLBACK;
-- the bounds are named, so a DBA finds them
SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
WHERE connamespace = 'customer_account'::regnamespace AND conname LIKE '%\_range' ORDER BY 1, 2;
-- the largest amount allowed converts into minor units of every currency
UPDATE credit_policy SET credit_limit = 1e12, first_order_limit = 1e12, overdue_tolerance = 1e12;
UPDATE payment_method SET max_amount = 1e12 WHERE code = 'invoice';
SELECT add_channel('web-' || lower(code), 'webshop', code) FROM (VALUES ('JPY'), ('KWD'), ('CLF')) c(code);
SELECT c AS channel, pg_temp.why(1, t, c, 'invoice') AS invoice
FROM (VALUES ('web', '60.00 EUR'), ('web-jpy', '60 JPY'), ('web-kwd', '60.000 KWD'), ('web-clf', '60.0000 CLF')) v(c, t);
SELECT place_order('BIG-1', 1, 'web-clf', pg_temp.line('900000.0000 CLF'), 'invoice') AS largest_limits_work;
UPDATE credit_policy SET credit_limit = 1000, first_order_limit = 250, overdue_tolerance = 5;
UPDATE payment_method SET max_amount = 5000 WHERE code = 'invoice';
-- a configuration amount finer than the currency's minor unit rounds half
-- to even, like the money type: 50.005 EUR is 50.00 (50.01 over the range),
-- 50.015 EUR is 50.02; 60.5 JPY is 60 (61 over), 61.5 JPY is 62; and a
-- value past the tie is not rounded twice to it (50.00500001 EUR is 50.01)
UPDATE payment_method SET max_amount = 50.005 WHERE code = 'invoice';
SELECT t, pg_temp.why(1, t, c, 'invoice') AS max_50_005
FROM (VALUES ('50.00 EUR', 'web'), ('50.01 EUR', 'web')) v(t, c);
UPDATE payment_method SET max_amount = 50.015 WHERE code = 'invoice';
SELECT t, pg_temp.why(1, t, c, 'invoice') AS max_50_015
FROM (VALUES ('50.02 EUR', 'web'), ('50.03 EUR', 'web')) v(t, c);
UPDATE payment_method SET max_amount = 50.00500001 WHERE code = 'invoice';
SELECT t, pg_temp.why(1, t, c, 'invoice') AS max_50_00500001
FROM (VALUES ('50.01 EUR', 'web'), ('50.02 EUR', 'web')) v(t, c);
UPDATE payment_method SET max_amount = 60.5 WHERE code = 'invoice';
SELECT t, pg_temp.why(1, t, c, 'invoice') AS max_60_5
FROM (VALUES ('60 JPY', 'web-jpy'), ('61 JPY', 'web-jpy')) v(t, c);
UPDATE payment_method SET max_amount = 61.5 WHERE code = 'invoice';
SELECT t, pg_temp.why(1, t, c, 'invoice') AS max_61_5
FROM (VALUES ('62 JPY', 'web-jpy'), ('63 JPY', 'web-jpy')) v(t, c);
UPDATE payment_method SET max_amount = 5000 WHERE code = 'invoice';

--
-- 2. a reload that fails is never trusted: with the bound dropped (as a
--    database restored from an old dump might have it), the bad row makes
--    every reload fail with 22003, and the next call fails again instead of
--    answering from freed memory; once the row is corrected the answers are
--    right again, in the same session
--
ALTER TABLE credit_policy DROP CONSTRAINT IF EXISTS credit_policy_credit_limit_range;
UPDATE credit_policy SET credit_limit = 1e16;
SELECT pg_temp.try($$SELECT * FROM customer_account.payment_options(1, '60.00 EUR', 'web')$$) AS first_call;
SELECT pg_temp.try($$SELECT * FROM customer_account.payment_options(1, '60.00 EUR', 'web')$$) AS second_call;
SELECT pg_temp.try($$SELECT customer_account.place_order('F-1', 1, 'web', pg_temp.line('60.00 EUR'), 'invoice')$$) AS order_while_broken;
UPDATE credit_policy SET credit_limit = 50;
SELECT pg_temp.why(1, '60.00 EUR', 'web', 'invoice') AS after_correction;
SELECT pg_temp.try($$SELECT customer_account.place_order('F-2', 1, 'web', pg_temp.line('60.00 EUR'), 'invoice')$$) AS refused_by_new_limit;
SELECT place_order('F-3', 1, 'web', pg_temp.line('40.00 EUR'), 'invoice') AS within_new_limit;
-- a failure inside a subtransaction, then success in the same transaction
BEGIN;
UPDATE credit_policy SET credit_limit = 1e16;
SELECT pg_temp.try($$SELECT * FROM customer_account.payment_options(1, '60.00 EUR', 'web')$$) AS in_subtransaction;
UPDATE credit_policy SET credit_limit = 1000;
SELECT pg_temp.why(1, '60.00 EUR', 'web', 'invoice') AS same_transaction_after;
COMMIT;
ALTER TABLE credit_policy ADD CONSTRAINT credit_policy_credit_limit_range CHECK (credit_limit <= 1000000000000);

--
-- 3. names are never cut: a 70-character channel and payment method work,
--    two channels sharing a 63-byte prefix (a store and a marketplace) stay
--    apart, and customer groups are matched in full, also by dunning_run
--
SELECT add_channel(repeat('w', 70), 'webshop', 'EUR');
SELECT pg_temp.why(1, '10.00 EUR', repeat('w', 70), 'invoice') AS long_channel;
SELECT place_order('L-1', 1, repeat('w', 70), pg_temp.line('10.00 EUR'), 'credit_card') AS long_channel_order;
SELECT add_channel(repeat('p', 63) || '-store', 'store', 'EUR');
SELECT add_channel(repeat('p', 63) || '-market', 'marketplace', 'EUR');
SELECT right(c, 7) AS channel, pg_temp.why(1, '10.00 EUR', c, 'cash') AS cash, pg_temp.why(1, '10.00 EUR', c, 'marketplace') AS marketplace
FROM (VALUES (repeat('p', 63) || '-store'), (repeat('p', 63) || '-market')) v(c);
SELECT place_order('L-2', 1, repeat('p', 63) || '-store', pg_temp.line('10.00 EUR'), 'cash') AS store_takes_cash;
SELECT pg_temp.try(format($$SELECT customer_account.place_order('L-3', 1, %L, pg_temp.line('10.00 EUR'), 'cash')$$,
                          repeat('p', 63) || '-market')) AS marketplace_refuses_cash;
SELECT add_payment_method(repeat('m', 63) || '-voucher', false, '{webshop}', 'immediate');
SELECT add_payment_method(repeat('m', 63) || '-invoice', true, '{webshop}', 'credit', NULL, 20);
SELECT right(method, 8) AS method, allowed, reason_code FROM payment_options(1, '30.00 EUR', 'web')
WHERE method LIKE 'mmm%' ORDER BY 1;
SELECT place_order('L-4', 1, 'web', pg_temp.line('30.00 EUR'), repeat('m', 63) || '-voucher') AS long_method_order;
SELECT pg_temp.try(format($$SELECT customer_account.place_order('L-5', 1, 'web', pg_temp.line('30.00 EUR'), %L)$$,
                          repeat('m', 63) || '-invoice')) AS long_method_refused;
-- groups: Ben's 70-character group has limits of 5, Carl's (same first 63 bytes) 2000
SELECT register_customer('Ben', 'ben@example.com', NULL, 'en', now() - interval '2 years');
SELECT register_customer('Carl', 'carl@example.com', NULL, 'en', now() - interval '2 years');
UPDATE customer SET customer_group = repeat('g', 63) || '-small' WHERE customer_id = 2;
UPDATE customer SET customer_group = repeat('g', 63) || '-large' WHERE customer_id = 3;
INSERT INTO credit_policy (customer_group, credit_limit, first_order_limit, overdue_tolerance)
VALUES (repeat('g', 63) || '-small', 5, 5, 1000), (repeat('g', 63) || '-large', 2000, 2000, 0);
SELECT customer_id, pg_temp.why(customer_id, '60.00 EUR', 'web', 'invoice') AS invoice_60
FROM generate_series(2, 3) customer_id;
-- both owe 50.00 EUR for 40 days: only Carl is beyond his group's tolerance
UPDATE credit_policy SET credit_limit = 5000, first_order_limit = 5000 WHERE customer_group = repeat('g', 63) || '-small';
SELECT place_order('G-' || id, id, 'web', pg_temp.line('50.00 EUR'), 'invoice', now() - interval '40 days')
FROM generate_series(2, 3) id;
SELECT customer_id, level, action FROM dunning_run(current_date) ORDER BY customer_id;

--
-- 4. the own transaction's changes are seen at once, in READ COMMITTED and
--    REPEATABLE READ, and a ROLLBACK undoes them in the cache too
--
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) AS channels_before FROM channel;
SELECT add_channel('pop-up', 'store', 'EUR');
UPDATE credit_policy SET credit_limit = 50 WHERE channel_kind IS NULL AND customer_group IS NULL AND currency IS NULL;
SELECT pg_temp.why(1, '60.00 EUR', 'pop-up', 'invoice') AS own_change_in_rr;
ROLLBACK;
SELECT pg_temp.try($$SELECT * FROM customer_account.payment_options(1, '60.00 EUR', 'pop-up')$$) AS after_rollback;
SELECT pg_temp.why(1, '60.00 EUR', 'web', 'invoice') AS limit_after_rollback;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) AS channels_before FROM channel;
SELECT add_channel('pop-up', 'store', 'EUR');
SELECT pg_temp.why(1, '60.00 EUR', 'pop-up', 'invoice') AS own_change_in_serializable;
ROLLBACK;
SELECT * FROM verify_balances();

--
-- 5. upgrading from 1.0.0: amounts beyond the bounds stop ALTER EXTENSION
--    UPDATE with 23514 naming every offending row; once corrected, the
--    update adds the named bounds
--
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account VERSION '1.0.0';
RESET client_min_messages;
UPDATE credit_policy SET credit_limit = 1e16;
UPDATE payment_method SET max_amount = 'NaN' WHERE code = 'invoice';
UPDATE dunning_level SET fee = 1e13 WHERE level = 3;
SELECT pg_temp.try($$ALTER EXTENSION customer_account UPDATE TO '1.1.0'$$) AS update_refused;
SELECT extversion FROM pg_extension WHERE extname = 'customer_account';
UPDATE credit_policy SET credit_limit = 1e12;
UPDATE payment_method SET max_amount = 5000 WHERE code = 'invoice';
UPDATE dunning_level SET fee = 10 WHERE level = 3;
ALTER EXTENSION customer_account UPDATE TO '1.1.0';
SELECT extversion FROM pg_extension WHERE extname = 'customer_account';
SELECT count(*) AS bounds FROM pg_constraint
WHERE connamespace = 'customer_account'::regnamespace AND conname LIKE '%\_range';
SELECT pg_temp.try('UPDATE customer_account.credit_policy SET credit_limit = 1e16') AS bound_after_update;
