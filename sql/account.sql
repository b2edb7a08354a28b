--
-- The central account: set-up, identity, orders, payments, cancellations,
-- the plain-INSERT path, ledger integrity, balance() as of dates, merge and
-- forget.  Every bad input is shown with its SQLSTATE and shown to leave the
-- account exactly as it was.
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

-- a fingerprint of everything the books hold, to prove failures change nothing
CREATE FUNCTION pg_temp.books() RETURNS text LANGUAGE sql AS $$
    SELECT format('ledger=%s items=%s state=%s orders=%s lines=%s payments=%s',
        (SELECT count(*) FROM customer_account.ledger),
        (SELECT coalesce(sum(open), 0) FROM customer_account.open_item),
        (SELECT coalesce(sum(balance), 0) || '/' || coalesce(sum(store_credit), 0) FROM customer_account.account_state),
        (SELECT count(*) FROM customer_account.orders),
        (SELECT count(*) FROM customer_account.order_line),
        (SELECT count(*) FROM customer_account.payment))
$$;

CREATE FUNCTION pg_temp.show(id bigint, at timestamptz) RETURNS TABLE (
    currency text, balance currency_amount, open currency_amount, overdue currency_amount, days int,
    credit currency_amount, revenue currency_amount, revenue_12m currency_amount, orders_12m int,
    last_by_kind jsonb, segment text)
LANGUAGE sql AS $$
    SELECT currency, balance, open_amount, overdue_amount, oldest_overdue_days, store_credit,
           lifetime_revenue, revenue_12m, orders_12m, last_purchase_by_kind, value_segment
    FROM customer_account.balance(id, at)
$$;

-- channels and payment methods
SELECT add_channel('web-de', 'webshop', 'EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF', 14);
SELECT add_channel('store-berlin', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT add_channel('callcenter', 'callcenter', 'EUR');
SELECT add_channel('web-de', 'webshop', 'EUR');          -- same again: nothing happens
SELECT pg_temp.try($$SELECT customer_account.add_channel('web-de', 'store', 'EUR')$$);
SELECT pg_temp.try($$SELECT customer_account.add_channel('web-xx', 'webshop', 'XYZ')$$);
SELECT pg_temp.try($$SELECT customer_account.add_channel('web-xx', 'webshop', 'EUR', 30, '10 USD')$$);
SELECT add_payment_method('klarna', true, '{webshop,app}');
SELECT pg_temp.try($$SELECT customer_account.add_payment_method('klarna', false)$$);
SELECT pg_temp.try($$SELECT customer_account.add_payment_method('voucher', false, NULL, 'credit')$$);
SELECT code, grants_credit, channel_kinds, settlement FROM payment_method ORDER BY sort_order, code;

-- customers and identities
SELECT register_customer('Anna Schmidt', 'Anna.Schmidt@Example.com', '+49 30 1234-567', 'de', '2024-01-10') AS anna;
SELECT register_customer('Ben Miller', 'ben@example.org', NULL, 'en', '2026-03-20') AS ben;
SELECT register_customer('Anna S.', NULL, NULL, 'de', '2025-06-01') AS anna_duplicate;
SELECT pg_temp.try($$SELECT customer_account.register_customer('Someone', 'anna.schmidt@example.com')$$);
SELECT pg_temp.try($$SELECT customer_account.register_customer('Someone', 'not-an-email')$$);
SELECT pg_temp.try($$SELECT customer_account.register_customer('Someone', NULL, NULL, 'german')$$);
SELECT pg_temp.try($$SELECT customer_account.register_customer('')$$);
SELECT link_identity(1, 'loyalty_card', 'lc 0042 77');
SELECT link_identity(1, 'marketplace', 'ebay:Anna_77');
SELECT link_identity(3, 'external', 'POS-4711');
SELECT link_identity(1, 'loyalty_card', 'LC004277');     -- same again: nothing happens
SELECT pg_temp.try($$SELECT customer_account.link_identity(2, 'loyalty_card', 'LC004277')$$);
SELECT pg_temp.try($$SELECT customer_account.link_identity(2, 'shoe_size', '42')$$);
SELECT pg_temp.try($$SELECT customer_account.link_identity(99, 'external', 'x')$$);
SELECT pg_temp.try($$SELECT customer_account.link_identity(2, 'marketplace', 'buyer77')$$);
SELECT find_customer('email', '  ANNA.SCHMIDT@example.COM ') AS by_email,
       find_customer('phone', '+49 (30) 1234567') AS by_phone,
       find_customer('loyalty_card', 'LC 004277') AS by_card,
       find_customer('marketplace', 'EBAY:anna_77') AS by_marketplace,
       find_customer('external', 'POS-4711') AS by_external,
       find_customer('email', 'nobody@example.com') AS unknown;
SELECT pg_temp.try($$SELECT customer_account.set_credit_limit(2, '-1.00 EUR')$$);
SELECT pg_temp.try($$SELECT customer_account.set_credit_limit(99, '100.00 EUR')$$);

-- orders on three channels; the web order on invoice is due after 14 days
SELECT place_order('W-1001', 1, 'web-de',
    '[{"sku":"SHOE-42","qty":1,"unit_price":"89.90 EUR"},{"sku":"SOCK-3","qty":3,"unit_price":"4.99 EUR","returnable":false}]',
    'invoice', '2026-03-01 10:00+00') AS total;
SELECT place_order('S-2001', 1, 'store-berlin', '[{"sku":"JACKET-M","qty":1,"unit_price":"149.00 EUR"}]',
    'cash', '2026-03-05 16:30+00') AS total;
SELECT place_order('E-3001', 1, 'ebay', '[{"sku":"BAG-1","qty":2,"unit_price":"25.00 EUR"}]',
    'marketplace', '2026-03-07 09:00+00') AS total;
SELECT * FROM pg_temp.show(1, '2026-03-10');
-- a retry after a network failure posts once
SELECT pg_temp.books() AS before_retry;
SELECT place_order('W-1001', 1, 'web-de',
    '[{"sku":"SHOE-42","qty":1,"unit_price":"89.90 EUR"},{"sku":"SOCK-3","qty":3,"unit_price":"4.99 EUR","returnable":false}]',
    'invoice', '2026-03-01 10:00+00') AS retry_total;
SELECT pg_temp.books() AS after_retry;

-- bad orders: each one refused, the books unchanged
SELECT pg_temp.books() AS before_bad_orders;
SELECT v AS bad_order, pg_temp.try(v) AS result FROM (VALUES
  ($$SELECT customer_account.place_order('W-1001', 1, 'web-de', '[{"sku":"SHOE-42","qty":2,"unit_price":"89.90 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 99, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-fr', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'bitcoin')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '{"sku":"A"}', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"qty":1,"unit_price":"1.00 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":"2","unit_price":"1.00 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":-1,"unit_price":"1.00 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":1.5,"unit_price":"1.00 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.001 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"},{"sku":"B","qty":1,"unit_price":"1.00 USD"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.00 CHF"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR","returnable":"yes"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":1,"unit_price":"0.00 EUR"}]', 'invoice')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'store-berlin', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'marketplace')$$),
  ($$SELECT customer_account.place_order('X-1', 1, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'store_credit')$$),
  ($$SELECT customer_account.place_order('', 1, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'invoice')$$)
) t(v);
SELECT pg_temp.books() AS after_bad_orders;

-- the same effects from plain INSERTs (a shop that keeps writing its tables)
BEGIN;
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('W-1002', 2, 'web-de', 'invoice', '60.00 EUR', '2026-03-25 12:00+00');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price)
VALUES ('W-1002', 1, 'SHIRT', 2, '20.00 EUR'), ('W-1002', 2, 'TIE', 1, '20.00 EUR');
COMMIT;
SELECT order_no, line_no, customer_id, sku FROM order_line WHERE order_no = 'W-1002' ORDER BY line_no;
SELECT entry_type, amount, open_delta, revenue_delta, channel_kind FROM ledger WHERE order_no = 'W-1002';
-- a total that is not the sum of the lines fails at commit, leaving nothing
SELECT pg_temp.books() AS before_bad_inserts;
SELECT pg_temp.try($$
    INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
    VALUES ('W-1003', 2, 'web-de', 'invoice', '61.00 EUR', '2026-03-25 12:00+00');
    INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price)
    VALUES ('W-1003', 1, 'SHIRT', 3, '20.00 EUR');
    SET CONSTRAINTS ALL IMMEDIATE$$);
SELECT v AS bad_write, pg_temp.try(v) AS result FROM (VALUES
  ($$INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('W-1002', 3, 'BELT', 1, '10.00 EUR')$$),
  ($$INSERT INTO customer_account.order_line (order_no, line_no, customer_id, sku, qty, unit_price) VALUES ('W-1002', 3, 1, 'BELT', 1, '10.00 EUR')$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('W-1004', 2, 'web-de', 'invoice', '-5.00 EUR')$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('W-1004', 2, 'web-de', 'invoice', '5.00 USD')$$),
  ($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('W-1004', 77, 'web-de', 'invoice', '5.00 EUR')$$),
  ($$UPDATE customer_account.orders SET total = '1.00 EUR' WHERE order_no = 'W-1002'$$),
  ($$UPDATE customer_account.order_line SET qty = 5 WHERE order_no = 'W-1002'$$),
  ($$DELETE FROM customer_account.orders WHERE order_no = 'W-1002'$$),
  ($$UPDATE customer_account.ledger SET amount = '0.00 EUR'$$),
  ($$DELETE FROM customer_account.ledger$$),
  ($$TRUNCATE customer_account.ledger$$),
  ($$TRUNCATE customer_account.orders CASCADE$$)
) t(v);
SELECT pg_temp.books() AS after_bad_inserts;

-- on 20 March the web invoice is overdue: buying on invoice again is refused
-- (RA001, with the reason in Anna's language), prepayment is fine
SELECT pg_temp.try($$SELECT customer_account.place_order('W-1005', 1, 'web-de',
    '[{"sku":"HAT","qty":1,"unit_price":"30.00 EUR"}]', 'invoice', '2026-03-20 10:00+00')$$);
SELECT place_order('W-1005', 1, 'web-de', '[{"sku":"HAT","qty":1,"unit_price":"30.00 EUR"}]', 'prepayment',
    '2026-03-20 10:00+00') AS total;
-- payments: to the named order, else oldest first; overpayment becomes credit
SELECT record_payment('PAY-1', 1, '30.00 EUR', 'bank_transfer', 'web-de', 'W-1005', '2026-03-22 08:00+00');
SELECT record_payment('PAY-2', 1, '50.00 EUR', 'bank_transfer', 'web-de', NULL, '2026-03-28 08:00+00');
SELECT order_no, amount, open, due_at, settled_at FROM open_item WHERE customer_id = 1 ORDER BY item_id;
SELECT * FROM pg_temp.show(1, '2026-04-01');
-- the remaining 54.87 is overdue since 15 March; pay 60.00: 5.13 becomes credit
SELECT record_payment('PAY-3', 1, '60.00 EUR', 'bank_transfer', 'web-de', NULL, '2026-04-02 08:00+00');
SELECT * FROM pg_temp.show(1, '2026-04-05');
-- retries and bad payments
SELECT record_payment('PAY-3', 1, '60.00 EUR', 'bank_transfer', 'web-de', NULL, '2026-04-02 08:00+00');
SELECT pg_temp.books() AS before_bad_payments;
SELECT v AS bad_payment, pg_temp.try(v) AS result FROM (VALUES
  ($$SELECT customer_account.record_payment('PAY-3', 1, '61.00 EUR', 'bank_transfer', 'web-de')$$),
  ($$SELECT customer_account.record_payment('PAY-9', 1, '-1.00 EUR', 'bank_transfer', 'web-de')$$),
  ($$SELECT customer_account.record_payment('PAY-9', 1, '0.00 EUR', 'bank_transfer', 'web-de')$$),
  ($$SELECT customer_account.record_payment('PAY-9', 1, '1.00 CHF', 'bank_transfer', 'web-de', 'W-1005')$$),
  ($$SELECT customer_account.record_payment('PAY-9', 2, '1.00 EUR', 'bank_transfer', 'web-de', 'W-1005')$$),
  ($$SELECT customer_account.record_payment('PAY-9', 99, '1.00 EUR', 'bank_transfer', 'web-de')$$),
  ($$SELECT customer_account.record_payment('PAY-9', 1, '1.00 EUR', 'gold', 'web-de')$$),
  ($$SELECT customer_account.record_payment('PAY-9', 1, '1.00 EUR', 'bank_transfer', 'web-fr')$$),
  ($$SELECT customer_account.record_payment('PAY-9', 1, '1.00 EUR', 'bank_transfer', 'web-de', 'NOPE')$$)
) t(v);
SELECT pg_temp.try($$DELETE FROM customer_account.payment WHERE payment_ref = 'PAY-1'$$);
SELECT pg_temp.try($$UPDATE customer_account.payment SET amount = '1.00 EUR' WHERE payment_ref = 'PAY-1'$$);
SELECT pg_temp.books() AS after_bad_payments;

-- delivery and cancellation
SELECT mark_delivered('S-2001', '2026-03-05 16:30+00');
SELECT mark_delivered('S-2001');                       -- again: nothing happens
SELECT pg_temp.try($$SELECT customer_account.cancel_order('S-2001')$$);
SELECT pg_temp.try($$SELECT customer_account.cancel_order('NOPE')$$);
SELECT pg_temp.try($$SELECT customer_account.mark_delivered('NOPE')$$);
SELECT place_order('W-1006', 2, 'web-de', '[{"sku":"COAT","qty":1,"unit_price":"100.00 EUR"}]', 'invoice', '2026-04-01 10:00+00');
SELECT record_payment('PAY-4', 2, '40.00 EUR', 'bank_transfer', 'web-de', 'W-1006', '2026-04-03 10:00+00');
SELECT cancel_order('W-1006', '2026-04-04 10:00+00');  -- 60.00 open is closed, the 40.00 paid becomes credit
SELECT cancel_order('W-1006');                         -- again: nothing happens
SELECT pg_temp.try($$SELECT customer_account.mark_delivered('W-1006')$$);
SELECT place_order('E-3002', 2, 'ebay', '[{"sku":"CAP","qty":1,"unit_price":"15.00 EUR"}]', 'marketplace', '2026-04-05 10:00+00');
SELECT cancel_order('E-3002', '2026-04-05 11:00+00');  -- paid through the marketplace: refunded there
SELECT entry_type, amount, open_delta, credit_delta, revenue_delta, order_delta FROM ledger
WHERE order_no IN ('W-1006', 'E-3002') OR payment_ref = 'PAY-4' ORDER BY entry_id;
SELECT * FROM pg_temp.show(2, '2026-04-10');
-- store credit pays a later order anywhere
SELECT place_order('S-2002', 2, 'store-berlin', '[{"sku":"SCARF","qty":1,"unit_price":"25.00 EUR"}]', 'store_credit', '2026-04-12 10:00+00');
SELECT * FROM pg_temp.show(2, '2026-04-12 12:00');

-- a second currency is a second row
SELECT place_order('CH-1', 1, 'web-ch', '[{"sku":"WATCH","qty":1,"unit_price":"250.00 CHF"}]', 'credit_card', '2026-04-06 10:00+00');
SELECT * FROM pg_temp.show(1, '2026-04-10');

-- late events: a till that was offline syncs a March sale in April
SELECT place_order('S-2003', 1, 'store-berlin', '[{"sku":"BELT","qty":1,"unit_price":"35.00 EUR"}]', 'cash', '2026-02-20 11:00+00');
SELECT * FROM pg_temp.show(1, '2026-04-10');
-- balance as of a past date: the books as they stood then
SELECT * FROM pg_temp.show(1, '2026-03-06');
SELECT * FROM pg_temp.show(1, '2026-03-21');
-- twelve months later the early revenue has rolled out of revenue_12m
SELECT * FROM pg_temp.show(1, '2027-03-15');

-- merge: Anna's duplicate bought in the store on her external id
SELECT place_order('S-2004', 3, 'store-berlin', '[{"sku":"GLOVES","qty":1,"unit_price":"19.00 EUR"}]', 'invoice', '2026-04-07 10:00+00');
SELECT * FROM pg_temp.show(3, '2026-04-10');
SELECT pg_temp.try($$SELECT customer_account.merge_customers(1, 1)$$);
SELECT pg_temp.try($$SELECT customer_account.merge_customers(1, 99)$$);
SELECT merge_customers(1, 3);
SELECT * FROM pg_temp.show(1, '2026-04-10');
SELECT find_customer('external', 'POS-4711') AS merged_identity;
SELECT pg_temp.try($$SELECT customer_account.place_order('X-9', 3, 'web-de', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'credit_card')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.balance(3)$$);
SELECT customer_id, order_no FROM orders WHERE order_no = 'S-2004';
-- the merged history reads as one account, even as of a date before the
-- merge and before the duplicate's order: both customers' books as they stood
SELECT * FROM pg_temp.show(1, '2026-04-06 12:00');

-- forget: personal data gone, books intact
SELECT forget_customer(2);
SELECT customer_id, full_name, email, phone, forgotten_at IS NOT NULL AS forgotten FROM customer WHERE customer_id = 2;
SELECT count(*) AS identities_left FROM customer_identity WHERE customer_id = 2;
SELECT * FROM pg_temp.show(2, '2026-04-12 12:00');

-- unknown customers and the ledger recomputation
SELECT pg_temp.try($$SELECT * FROM customer_account.balance(99)$$);
SELECT register_customer('Carla New', 'carla@example.com') AS carla;
SELECT count(*) AS no_currency_yet FROM balance(4);
SELECT * FROM verify_balances();
