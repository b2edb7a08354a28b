--
-- Hardening of merge, forget and dunning (issue 8, points 1, 16, 17, 18):
-- a merge re-checks both customers under its lock and refuses a customer
-- merged away (RA002, naming the survivor); after a merge the survivor's
-- next due date covers the duplicate's items, so balance() shows their
-- overdue debt; forget_customer erases duplicates merged at any depth;
-- dunning_run(date) answers the same whatever the session's TimeZone.
-- The concurrent cases are isolation specs (merge_merge, merge_booking,
-- merge_dunning, dunning_till).
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

-- what balance() shows of a customer, as of a fixed date far after every event
CREATE FUNCTION pg_temp.show(id bigint) RETURNS TABLE (
    currency text, balance currency_amount, open currency_amount, overdue currency_amount, days int,
    dunning_level int)
LANGUAGE sql AS $$
    SELECT currency, balance, open_amount, overdue_amount, oldest_overdue_days, dunning_level
    FROM customer_account.balance(id, '2030-01-01 00:00+00')
$$;

-- next_due_at of every account against its unsettled receivables
CREATE FUNCTION pg_temp.due_dates_wrong() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM customer_account.account_state s
    WHERE s.next_due_at IS DISTINCT FROM (SELECT min(i.due_at) FROM customer_account.open_item i
        WHERE i.customer_id = s.customer_id AND i.currency = s.currency
          AND i.settled_at IS NULL AND i.kind <> 'prepayment')
$$;

SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('web-us', 'webshop', 'USD');
SELECT add_channel('till', 'store', 'EUR');

------------------------------------------------------------------------------
-- point 16: the survivor's next due date after a merge
------------------------------------------------------------------------------
SELECT register_customer('Anna', 'anna@example.com', NULL, 'de', '2020-01-01') AS anna;
SELECT register_customer('Anna S.', NULL, NULL, 'de', '2020-01-01') AS anna_duplicate;
SELECT set_credit_limit(1, '1000.00 EUR'), set_credit_limit(2, '1000.00 EUR');
-- the duplicate's invoice of 2 March 2024 (due 16 March 2024) was never paid
SELECT place_order('DUP-1', 2, 'web', '[{"sku":"A","qty":1,"unit_price":"120.00 EUR"}]', 'invoice', '2024-03-02 12:00+00');
-- the survivor bought by card: no receivable, no due date
SELECT place_order('SUR-1', 1, 'web', '[{"sku":"B","qty":1,"unit_price":"30.00 EUR"}]', 'credit_card', '2024-05-01 12:00+00');
SELECT * FROM pg_temp.show(2);
SELECT merge_customers(1, 2);
-- the duplicate's 120.00 EUR are overdue for 2116 days on 1 January 2030
SELECT * FROM pg_temp.show(1);
SELECT customer_id, currency, next_due_at FROM account_state ORDER BY 1, 2;
SELECT pg_temp.due_dates_wrong() AS wrong_due_dates;
-- and payment_options() sees the overdue debt too
SELECT method, allowed, reason_code FROM payment_options(1, '10.00 EUR', 'web') WHERE method = 'invoice';

------------------------------------------------------------------------------
-- point 1 (sequentially): a merge re-checks both customers
------------------------------------------------------------------------------
SELECT pg_temp.try($$SELECT customer_account.merge_customers(2, 1)$$);
SELECT pg_temp.try($$SELECT customer_account.merge_customers(1, 2)$$);
SELECT pg_temp.try($$SELECT customer_account.merge_customers(1, 99)$$);
SELECT pg_temp.try($$SELECT customer_account.merge_customers(99, 1)$$);
-- a booking for the duplicate is refused, on every path
SELECT pg_temp.try($$SELECT customer_account.place_order('X-1', 2, 'till', '[{"sku":"C","qty":1,"unit_price":"5.00 EUR"}]', 'cash')$$);
SELECT pg_temp.try($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel)
                     VALUES ('X-P1', 2, '5.00 USD', 'bank_transfer', 'web-us')$$);

------------------------------------------------------------------------------
-- a merge keeps the later dunning date and the higher level, and a merged
-- account whose debt is all paid leaves dunning
------------------------------------------------------------------------------
SELECT register_customer('Ben', 'ben@example.com', NULL, 'en', '2020-01-01') AS ben;
SELECT register_customer('Ben B.', NULL, NULL, 'en', '2020-01-01') AS ben_duplicate;
SELECT set_credit_limit(3, '1000.00 EUR'), set_credit_limit(4, '1000.00 EUR');
SELECT place_order('BEN-1', 3, 'web', '[{"sku":"D","qty":1,"unit_price":"50.00 EUR"}]', 'invoice', '2025-01-01 12:00+00');
SELECT place_order('BEN-2', 4, 'web', '[{"sku":"E","qty":1,"unit_price":"70.00 EUR"}]', 'invoice', '2025-01-01 12:00+00');
SELECT record_payment('BEN-P1', 3, '50.00 EUR', 'bank_transfer', 'web', 'BEN-1', '2025-01-10 12:00+00');
UPDATE account_state SET dunning_level = 2, dunned_at = '2025-02-20' WHERE customer_id = 4;
SELECT merge_customers(3, 4);
SELECT customer_id, currency, balance, open_amount, dunning_level, dunned_at FROM account_state
WHERE customer_id IN (3, 4) ORDER BY 1, 2;
SELECT * FROM pg_temp.show(3);
SELECT record_payment('BEN-P2', 3, '70.00 EUR', 'bank_transfer', 'web', NULL, '2025-03-01 12:00+00');
SELECT customer_id, currency, balance, open_amount, dunning_level FROM account_state WHERE customer_id = 3;

------------------------------------------------------------------------------
-- point 17: forget_customer erases duplicates merged at any depth
------------------------------------------------------------------------------
SELECT register_customer('Carla Ruiz', 'carla@example.com', '+49 30 555', 'en', '2020-01-01') AS carla;
SELECT register_customer('C. Ruiz', 'c.ruiz@example.com', '+49 30 556', 'en', '2020-01-01') AS carla_b;
SELECT register_customer('Carla R.', 'ruiz@example.org', '+49 30 557', 'en', '2020-01-01') AS carla_c;
SELECT link_identity(7, 'loyalty_card', 'LC-77');
SELECT place_order('C-1', 7, 'till', '[{"sku":"F","qty":1,"unit_price":"9.00 EUR"}]', 'cash', '2025-06-01 12:00+00');
-- C into B, then B into A: A <- B <- C
SELECT merge_customers(6, 7);
SELECT merge_customers(5, 6);
SELECT customer_id, full_name, email, phone, merged_into FROM customer WHERE customer_id IN (5, 6, 7) ORDER BY 1;
SELECT kind, value, customer_id FROM customer_identity WHERE customer_id IN (5, 6, 7) ORDER BY 1, 2;
SELECT forget_customer(5);
SELECT customer_id, full_name, email, phone, merged_into, forgotten_at IS NOT NULL AS forgotten
FROM customer WHERE customer_id IN (5, 6, 7) ORDER BY 1;
SELECT count(*) AS identities_left FROM customer_identity WHERE customer_id IN (5, 6, 7);
SELECT find_customer('loyalty_card', 'LC-77') AS by_card, find_customer('email', 'ruiz@example.org') AS by_email;
-- the books stay
SELECT currency, balance, open FROM pg_temp.show(5);
-- other customers are untouched
SELECT customer_id, full_name FROM customer WHERE customer_id IN (1, 3) ORDER BY 1;
SELECT pg_temp.try($$SELECT customer_account.forget_customer(6)$$);

SELECT * FROM verify_balances();
SELECT pg_temp.due_dates_wrong() AS wrong_due_dates;

------------------------------------------------------------------------------
-- point 18: one answer per date, whatever the session's TimeZone
------------------------------------------------------------------------------
-- a fresh set-up
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SELECT add_channel('web', 'webshop', 'EUR');
-- Dora owes 3.00 EUR since January (below the 5.00 EUR tolerance) and
-- 10.00 EUR due 17 February 20:00 UTC.  On 18 February she owes 13.00 EUR
-- overdue: both fell due before 18 February 00:00 UTC.  (Before, a session
-- whose midnight comes before 17 February 20:00 UTC, UTC+4 and east of it,
-- counted only the 3.00 EUR and sent nothing.)
SELECT register_customer('Dora', 'dora@example.com', NULL, 'en', '2020-01-01') AS dora;
SELECT set_credit_limit(1, '1000.00 EUR');
SELECT place_order('D-1', 1, 'web', '[{"sku":"G","qty":1,"unit_price":"3.00 EUR"}]', 'invoice', '2026-01-01 12:00+00');
SELECT place_order('D-2', 1, 'web', '[{"sku":"H","qty":1,"unit_price":"10.00 EUR"}]', 'invoice', '2026-02-03 20:00+00');
-- Emil's only invoice falls due 17 February 04:00 UTC: on 17 February
-- nothing of his is overdue yet (UTC), so his level 1 ends that day.
-- (Before, a session west of UTC saw it overdue and kept him at level 1.)
SELECT register_customer('Emil', 'emil@example.com', NULL, 'en', '2020-01-01') AS emil;
SELECT set_credit_limit(2, '1000.00 EUR');
SELECT place_order('E-1', 2, 'web', '[{"sku":"I","qty":1,"unit_price":"40.00 EUR"}]', 'invoice', '2026-02-03 04:00+00');
UPDATE account_state SET dunning_level = 1, dunned_at = '2026-02-10' WHERE customer_id = 2;
SELECT customer_id, order_no, open, due_at FROM open_item ORDER BY due_at;

-- the runs of 17 and 18 February and the levels after them, in one time zone
CREATE FUNCTION pg_temp.runs_in(zone text) RETURNS TABLE (run date, customer_id bigint, currency text,
        level int, overdue_amount currency_amount, fee currency_amount, action text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('TimeZone', zone, true);
    RETURN QUERY SELECT '2026-02-17'::date, r.* FROM customer_account.dunning_run('2026-02-17') r;
    RETURN QUERY SELECT '2026-02-18'::date, r.* FROM customer_account.dunning_run('2026-02-18') r;
    RETURN QUERY SELECT NULL::date, s.customer_id, s.currency, s.dunning_level, NULL::currency_amount,
                        NULL::currency_amount, 'level after the runs'
                 FROM customer_account.account_state s ORDER BY s.customer_id;
END $$;
-- the same data in four time zones (each rolled back): the same answer
BEGIN;
SELECT * FROM pg_temp.runs_in('UTC');
ROLLBACK;
BEGIN;
SELECT * FROM pg_temp.runs_in('Pacific/Kiritimati');
ROLLBACK;
BEGIN;
SELECT * FROM pg_temp.runs_in('Asia/Tokyo');
ROLLBACK;
BEGIN;
SELECT * FROM pg_temp.runs_in('America/Los_Angeles');
ROLLBACK;
-- for real, in a far-east session; safe to run twice
SET TimeZone = 'Pacific/Kiritimati';
SELECT * FROM dunning_run('2026-02-17');
SELECT * FROM dunning_run('2026-02-18');
SELECT * FROM dunning_run('2026-02-18');
SET TimeZone = 'UTC';
SELECT customer_id, currency, level, cycle, run_date, overdue_amount, fee, action FROM dunning_notice ORDER BY 1, 2, 3;
SELECT customer_id, dunning_level, dunning_cycle, dunned_at FROM account_state ORDER BY 1;
SELECT count(*) AS fee_entries FROM ledger WHERE entry_type = 'fee';
SELECT * FROM verify_balances();
