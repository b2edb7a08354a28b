-- A populated account database for the dump/restore test: every kind of
-- row the extension writes.  Customers with every identity kind; orders on
-- a webshop (invoice, prepayment), a store (cash, card), a marketplace, a
-- call center (direct debit) and an app, in two currencies; cancelled and
-- delivered orders, orders by plain INSERT; payments (partial, full, more
-- than owed); store credit spent; a merge whose survivor has the higher id;
-- a dunning ladder with fees and its outbox events; the DBA's own rows in
-- the shipped configuration tables; value segments.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
RESET client_min_messages;
SET search_path = customer_account, public;
SET TimeZone = 'UTC';

-- configuration, including rows next to the shipped ones
SELECT add_channel('web-de', 'webshop', 'EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF', 14, NULL, 30);
SELECT add_channel('store-berlin', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT add_channel('hotline', 'callcenter', 'EUR');
SELECT add_channel('app', 'app', 'EUR');
SELECT add_payment_method('klarna', true, '{webshop,app}');
INSERT INTO credit_policy (channel_kind, credit_limit, first_order_limit) VALUES ('webshop', 3000, 500);
INSERT INTO credit_policy (currency, credit_limit) VALUES ('CHF', 2000);
INSERT INTO policy (new_customer_days) VALUES (60);
INSERT INTO dunning_level (level, days_overdue, delay_days, fee, action) VALUES (5, 90, 14, 0, 'lawyer');

-- customers: ids 1..6; 4 is merged into 6 (the survivor has the higher id)
SELECT register_customer('Anna Schmidt', 'anna@example.de', '+49 30 1234567', 'de', now() - interval '3 years');
SELECT register_customer('Ben Miller', 'ben@example.com', NULL, 'en', now() - interval '2 years');
SELECT register_customer('Carla Rossi', 'carla@example.it', '+39 06 5555555', 'it', now() - interval '400 days');
SELECT register_customer('A. Duplicate', NULL, NULL, 'de', now() - interval '1 year');
SELECT register_customer('Dora Late', 'dora@example.com', NULL, 'en', now() - interval '2 years');
SELECT register_customer('Ede Survivor', 'ede@example.de', NULL, 'de', now() - interval '5 years');
SELECT link_identity(1, 'loyalty_card', 'LC-0042-77');
SELECT link_identity(1, 'marketplace', 'ebay:anna_77');
SELECT link_identity(3, 'external', 'POS-4711');
SELECT link_identity(4, 'loyalty_card', 'LC-0099-01');
SELECT set_credit_limit(c, '4000.00 EUR') FROM generate_series(1, 6) c;

-- orders on every channel kind and settlement
SELECT place_order('WEB-1', 1, 'web-de', '[{"sku":"SHOE","qty":1,"unit_price":"89.90 EUR"},{"sku":"SOCKS","qty":3,"unit_price":"4.99 EUR","returnable":false}]',
                   'invoice', now() - interval '50 days');
SELECT place_order('WEB-2', 1, 'web-de', '[{"sku":"HAT","qty":1,"unit_price":"19.00 EUR","category":"acc"}]', 'prepayment', now() - interval '20 days');
SELECT place_order('POS-1', 1, 'store-berlin', '[{"sku":"JACKET","qty":1,"unit_price":"149.00 EUR"}]', 'cash', now() - interval '10 days');
SELECT place_order('POS-2', 2, 'store-berlin', '[{"sku":"BELT","qty":2,"unit_price":"35.00 EUR"}]', 'credit_card', now() - interval '9 days');
SELECT place_order('HOT-1', 2, 'hotline', '[{"sku":"TV","qty":1,"unit_price":"499.00 EUR"}]', 'direct_debit', now() - interval '8 days');
SELECT place_order('APP-1', 3, 'app', '[{"sku":"CASE","qty":4,"unit_price":"12.50 EUR"}]', 'paypal', now() - interval '7 days');
SELECT place_order('CH-1', 3, 'web-ch', '[{"sku":"WATCH","qty":1,"unit_price":"250.00 CHF"}]', 'invoice', now() - interval '6 days');
SELECT place_order('WEB-3', 4, 'web-de', '[{"sku":"LAMP","qty":1,"unit_price":"60.00 EUR"}]', 'invoice', now() - interval '5 days');
SELECT place_order('POS-3', 4, 'store-berlin', '[{"sku":"MUG","qty":2,"unit_price":"8.00 EUR"}]', 'cash', now() - interval '5 days');
SELECT place_order('WEB-9', 6, 'web-de', '[{"sku":"DESK","qty":1,"unit_price":"300.00 EUR"}]', 'klarna', now() - interval '4 days');
SELECT place_order('DORA-1', 5, 'web-de', '[{"sku":"SOFA","qty":1,"unit_price":"900.00 EUR"}]', 'invoice', now() - interval '80 days');
SELECT place_order('DORA-2', 5, 'web-de', '[{"sku":"RUG","qty":1,"unit_price":"120.00 EUR"}]', 'invoice', now() - interval '75 days');
-- a marketplace order and an app order by plain INSERT (the adapters' path)
BEGIN;
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('EBAY-1', 1, 'ebay', 'marketplace', '50.00 EUR', now() - interval '3 days');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price) VALUES ('EBAY-1', 1, 'BAG', 2, '25.00 EUR');
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at, delivered_at)
VALUES ('APP-2', 2, 'app', 'credit_card', '30.00 EUR', now() - interval '3 days', now() - interval '2 days');
INSERT INTO order_line (order_no, line_no, customer_id, sku, qty, unit_price, category)
VALUES ('APP-2', 1, 2, 'CABLE', 3, '10.00 EUR', 'electronics');
COMMIT;

-- deliveries and cancellations (an open invoice, a card order refunded,
-- a partly paid invoice whose payment becomes store credit)
SELECT mark_delivered('WEB-1', now() - interval '48 days');
SELECT mark_delivered('POS-2', now() - interval '9 days');
SELECT mark_delivered('HOT-1', now() - interval '6 days');
SELECT cancel_order('WEB-3', now() - interval '4 days');
SELECT cancel_order('APP-1', now() - interval '6 days');
SELECT record_payment('PAY-CH-1', 3, '100.00 CHF', 'bank_transfer', 'web-ch', 'CH-1', now() - interval '5 days');
SELECT cancel_order('CH-1', now() - interval '4 days');

-- payments: partial, full, more than owed, an order's prepayment
SELECT record_payment('PAY-1', 1, '50.00 EUR', 'bank_transfer', 'web-de', 'WEB-1', now() - interval '30 days');
SELECT record_payment('PAY-2', 1, '19.00 EUR', 'bank_transfer', 'web-de', 'WEB-2', now() - interval '19 days');
SELECT record_payment('PAY-3', 2, '520.00 EUR', 'direct_debit', 'hotline', NULL, now() - interval '2 days');
SELECT record_payment('PAY-4', 5, '100.00 EUR', 'bank_transfer', 'web-de', 'DORA-1', now() - interval '40 days');
-- spending the store credit the overpayment left
SELECT place_order('WEB-4', 2, 'web-de', '[{"sku":"PEN","qty":2,"unit_price":"5.00 EUR"}]', 'store_credit', now() - interval '1 day');

-- a payment by plain INSERT
INSERT INTO payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)
VALUES ('PAY-5', 4, '10.00 EUR', 'bank_transfer', 'web-de', NULL, now() - interval '3 days');

-- the merge: the duplicate 4 into 6 (survivor row after the duplicate's)
SELECT merge_customers(6, 4);

-- the dunning ladder: Dora is 60+ days overdue; levels 1 and 2 with a fee
SELECT count(*) FROM dunning_run(current_date - 30);
SELECT count(*) FROM dunning_run(current_date - 10);
SELECT count(*) FROM dunning_run(current_date);
SELECT ack_outbox(min(event_id)) FROM outbox;
SELECT set_disputed('DORA-2');
SELECT refresh_value_segments();

-- returns: one accepted at a till, one announced online and not yet completed
SELECT count(*) FROM accept_return('POS-2', 'BELT', 1, 'store-berlin');
SELECT announce_return('HOT-1', '[{"sku":"TV","qty":1}]', 'hotline');

-- the books agree before the dump
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM customer_account.verify_balances()) THEN
        RAISE EXCEPTION 'verify_balances() is not empty before the dump';
    END IF;
END $$;
