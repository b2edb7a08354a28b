--
-- channel_day and prepared transactions (two-phase commit).  channel_day
-- keeps one row per day, channel, currency and backend slot (MyBackendId)
-- "so that no sale waits for another".  A transaction prepared with
-- PREPARE TRANSACTION keeps its row locks after its session has gone on
-- (or disconnected), while the slot number is handed to the next booking
-- of that session or to the next session that gets the same backend id:
-- that booking, for another customer, waits on the slot row until someone
-- commits or rolls back the prepared transaction (forever, without a
-- lock_timeout).  Expected: the second order books at once.
--
-- Needs max_prepared_transactions > 0 in the test cluster (pg_virtualenv
-- -o max_prepared_transactions=10); the prepared transaction is rolled back
-- at the end whatever happened, so the files after this one are not blocked.
--
SET search_path = customer_account, public;
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SET TimeZone = 'UTC';
SELECT add_channel('web', 'webshop', 'EUR');
SELECT register_customer('Anna') AS anna \gset
SELECT register_customer('Bert') AS bert \gset

-- a coordinator prepares Anna's order, then this session sells to Bert
BEGIN;
SELECT place_order('2PC-1', :anna, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card');
PREPARE TRANSACTION 'ca_channel_day_prepared';
SET lock_timeout = '3s';
SELECT place_order('2PC-2', :bert, 'web', '[{"sku":"B","qty":1,"unit_price":"20.00 EUR"}]', 'credit_card') AS bert_order;
RESET lock_timeout;
ROLLBACK PREPARED 'ca_channel_day_prepared';
SELECT order_no, customer_id = :bert AS bert FROM orders ORDER BY order_no;
SELECT * FROM verify_balances();
