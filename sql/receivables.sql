--
-- Receivables: aging as of today and as of past dates, the dunning ladder
-- (one notice per customer and currency, level N after N-1 and its delay,
-- fees once, idempotent per date, never backwards, disputes skipped, paid
-- items leave dunning), the outbox, and account_advice.
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

SELECT add_channel('web', 'webshop', 'EUR', 30, NULL, 14);
SELECT add_channel('web-ch', 'webshop', 'CHF', 30, NULL, 30);
SELECT register_customer('Anna', 'anna@example.de', NULL, 'de', '2024-01-01');
SELECT register_customer('Ben', 'ben@example.com', NULL, 'en', '2024-01-01');
SELECT register_customer('Carla', 'carla@example.com', NULL, 'en', '2024-01-01');
SELECT set_credit_limit(id, '5000.00 EUR') FROM generate_series(1, 3) id;
-- Anna: two invoices in January, due 15 and 29 January
SELECT place_order('A-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"100.00 EUR"}]', 'invoice', '2026-01-01 09:00+00');
SELECT place_order('A-2', 1, 'web', '[{"sku":"B","qty":1,"unit_price":"40.00 EUR"}]', 'invoice', '2026-01-15 09:00+00');
-- Ben: one invoice in February, due 15 February, disputed later
SELECT place_order('B-1', 2, 'web', '[{"sku":"C","qty":1,"unit_price":"250.00 EUR"}]', 'invoice', '2026-02-01 09:00+00');
-- Carla: a Swiss invoice, 30 days term, and a small EUR one
SELECT place_order('C-1', 3, 'web-ch', '[{"sku":"D","qty":1,"unit_price":"80.00 CHF"}]', 'invoice', '2026-01-10 09:00+00');
SELECT place_order('C-2', 3, 'web', '[{"sku":"E","qty":1,"unit_price":"3.00 EUR"}]', 'invoice', '2026-01-10 09:00+00');

-- aging per currency and bucket
SELECT * FROM aging_report('2026-01-20');
SELECT * FROM aging_report('2026-03-01');
-- the dunning ladder: level 1 at 7 days overdue
SELECT * FROM dunning_run('2026-01-20');
SELECT * FROM dunning_run('2026-02-05');
-- level 2 needs 21 days overdue and 14 days after level 1
SELECT * FROM dunning_run('2026-02-15');
SELECT * FROM dunning_run('2026-02-25');
-- the same date again: the same notices, nothing booked twice
SELECT * FROM dunning_run('2026-02-25');
SELECT count(*) AS fee_entries, sum(amount) AS fees FROM ledger WHERE entry_type = 'fee';
-- never backwards
SELECT pg_temp.try($$SELECT * FROM customer_account.dunning_run('2026-02-01')$$);
-- Ben disputes his invoice: dunning skips it
SELECT set_disputed('B-1');
SELECT pg_temp.try($$SELECT customer_account.set_disputed('NOPE')$$);
SELECT * FROM dunning_run('2026-03-04');
-- Anna pays A-1 on 5 March; aging as of 1 March still shows it (a past date)
SELECT record_payment('PA-1', 1, '100.00 EUR', 'bank_transfer', 'web', 'A-1', '2026-03-05 10:00+00');
SELECT * FROM aging_report('2026-03-01');



-- she also pays A-2 and her fee: she leaves dunning by herself
SELECT record_payment('PA-2', 1, '45.00 EUR', 'bank_transfer', 'web', NULL, '2026-03-06 10:00+00');
SELECT customer_id, currency, balance, open_amount, dunning_level FROM balance(1, '2026-03-07');
SELECT * FROM aging_report('2026-03-10');
SELECT * FROM aging_report('2026-06-30');
SELECT * FROM dunning_run('2026-03-20');
SELECT customer_id, currency, level, cycle, run_date, overdue_amount, fee, action FROM dunning_notice ORDER BY run_date, customer_id, currency;
SELECT customer_id, currency, dunning_level, dunned_at FROM account_state ORDER BY 1, 2;

-- every notice went to the outbox once; a mailer reads and acknowledges
SELECT event_id, customer_id, topic, payload FROM outbox ORDER BY event_id;
SELECT count(*) AS pending FROM outbox_pending('dunning');
SELECT ack_outbox(1) AS first_ack, ack_outbox(1) AS second_ack;
SELECT count(*) AS pending FROM outbox_pending();
SELECT pg_temp.try($$SELECT customer_account.ack_outbox(999)$$);

-- account advice for the call center
SELECT * FROM account_advice(1);
SELECT * FROM account_advice(2);
SELECT * FROM account_advice(3);
SELECT register_customer('Dora', 'dora@example.com', NULL, 'en', '2020-01-01') AS dora;
SELECT place_order('D-1', 4, 'web', '[{"sku":"F","qty":1,"unit_price":"20.00 EUR"}]', 'credit_card', now() - interval '400 days');
SELECT * FROM account_advice(4);
SELECT pg_temp.try($$SELECT * FROM customer_account.account_advice(99)$$);
SELECT * FROM verify_balances();
