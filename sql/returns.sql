--
-- Returns: every reason code of decide_return() with a scenario, in German
-- and English; accept_return() booking each route through the posting core
-- (verify_balances() empty after each), the retry, the refusal that books
-- nothing, the announced return completed at a till, the outbox, the policy
-- as data, and the bad inputs with their SQLSTATEs.  Times are relative to
-- now(), so the answers do not age.
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
-- the books agree with the ledger: 0 differences
CREATE FUNCTION pg_temp.differences() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM customer_account.verify_balances() $$;
CREATE FUNCTION pg_temp.decide(no text, sku text, q int, ch text, at timestamptz DEFAULT now())
RETURNS TABLE (action customer_account.return_action, refund customer_account.currency_amount, reason_code text, method text)
LANGUAGE sql AS $$ SELECT action, refund, reason_code, method FROM customer_account.decide_return(no, sku, q, ch, at) $$;
CREATE FUNCTION pg_temp.accept(no text, sku text, q int, ch text, rno text DEFAULT NULL)
RETURNS TABLE (return_no text, action customer_account.return_action, refund customer_account.currency_amount, reason_code text, method text)
LANGUAGE sql AS $$ SELECT return_no, action, refund, reason_code, method FROM customer_account.accept_return(no, sku, q, ch, rno) $$;

SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT add_channel('berlin', 'store', 'EUR', 30, '100.00 EUR');
SELECT add_channel('hamburg', 'store', 'EUR', 14);
SELECT add_channel('zurich', 'store', 'CHF');

-- the return policy a DBA edits: hygiene goods never come back, sale items
-- only as an exchange, food within 7 days
INSERT INTO return_policy (category, returnable, note) VALUES ('hygiene', false, 'sealed hygiene goods');
INSERT INTO return_policy (sku_pattern, exchange_only, note) VALUES ('SALE-%', true, 'reduced goods: exchange only');
INSERT INTO return_policy (category, return_window_days, note) VALUES ('food', 7, 'fresh goods');

-- 1 Anna (de): buys everywhere
SELECT register_customer('Anna Schmidt', 'anna@example.de', NULL, 'de', now() - interval '2 years');
SELECT place_order('W-1', 1, 'web', '[{"sku":"SHOE","qty":1,"unit_price":"89.90 EUR"},
    {"sku":"SOCKS","qty":3,"unit_price":"4.99 EUR","returnable":false},
    {"sku":"SOAP","qty":1,"unit_price":"3.50 EUR","category":"hygiene"}]', 'credit_card', now() - interval '7 days');
SELECT mark_delivered('W-1', now() - interval '5 days');
SELECT place_order('W-2', 1, 'web', '[{"sku":"SHIRT","qty":2,"unit_price":"19.95 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT place_order('W-3', 1, 'web', '[{"sku":"JEANS","qty":1,"unit_price":"59.00 EUR"}]', 'paypal', now() - interval '45 days');
SELECT mark_delivered('W-3', now() - interval '40 days');
SELECT place_order('W-4', 1, 'web', '[{"sku":"COAT","qty":1,"unit_price":"120.00 EUR"}]', 'invoice', now() - interval '4 days');
SELECT mark_delivered('W-4', now() - interval '3 days');
SELECT place_order('W-5', 1, 'web', '[{"sku":"DRESS","qty":1,"unit_price":"100.00 EUR"}]', 'prepayment', now() - interval '6 days');
-- split tender: 30.00 EUR by bank transfer first, the rest by PayPal
SELECT record_payment('BT-1', 1, '30.00 EUR', 'bank_transfer', 'web', 'W-5', now() - interval '6 days');
SELECT record_payment('PP-1', 1, '70.00 EUR', 'paypal', 'web', 'W-5', now() - interval '5 days');
SELECT mark_delivered('W-5', now() - interval '4 days');
SELECT place_order('W-6', 1, 'web', '[{"sku":"SALE-CAP","qty":1,"unit_price":"9.00 EUR"},
    {"sku":"TEA","qty":2,"unit_price":"6.50 EUR","category":"food"}]', 'credit_card', now() - interval '12 days');
SELECT mark_delivered('W-6', now() - interval '10 days');
SELECT place_order('W-7', 1, 'web', '[{"sku":"LAMP","qty":1,"unit_price":"45.00 EUR"}]', 'credit_card', now() - interval '3 days');
SELECT cancel_order('W-7');
SELECT place_order('W-9', 1, 'web', '[{"sku":"CUP","qty":2,"unit_price":"7.45 EUR"},{"sku":"PLATE","qty":1,"unit_price":"12.00 EUR"}]',
    'credit_card', now() - interval '6 days');
SELECT mark_delivered('W-9', now() - interval '4 days');
-- an eBay order arrives as a plain INSERT, delivered
BEGIN;
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at, delivered_at)
VALUES ('E-1', 1, 'ebay', 'marketplace', '50.00 EUR', now() - interval '5 days', now() - interval '3 days');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price) VALUES ('E-1', 1, 'BAG', 2, '25.00 EUR');
COMMIT;
-- store sales are handed over at the till: delivered when placed
SELECT place_order('S-1', 1, 'berlin', '[{"sku":"JACKET","qty":1,"unit_price":"149.00 EUR"}]', 'cash', now() - interval '3 days');
SELECT place_order('S-2', 1, 'hamburg', '[{"sku":"BELT","qty":1,"unit_price":"35.00 EUR"}]', 'credit_card', now() - interval '20 days');
-- split tender at the till: 60.00 EUR cash, then 40.00 EUR by card
SELECT place_order('S-5', 1, 'berlin', '[{"sku":"CHAIR","qty":2,"unit_price":"50.00 EUR"}]', 'invoice', now() - interval '2 days');
SELECT record_payment('TILL-1', 1, '60.00 EUR', 'cash', 'berlin', 'S-5', now() - interval '2 days');
SELECT record_payment('TILL-2', 1, '40.00 EUR', 'credit_card', 'berlin', 'S-5', now() - interval '2 days' + interval '1 minute');
SELECT place_order('S-3', 1, 'berlin', '[{"sku":"SALE-SCARF","qty":1,"unit_price":"15.00 EUR"},
    {"sku":"TEA","qty":1,"unit_price":"6.50 EUR","category":"food"}]', 'credit_card', now() - interval '10 days');
-- 2 Bernd (en): blocked after buying
SELECT register_customer('Bernd Block', 'bernd@example.com', NULL, 'en', now() - interval '2 years');
SELECT place_order('B-W', 2, 'web', '[{"sku":"PHONE","qty":1,"unit_price":"299.00 EUR"}]', 'credit_card', now() - interval '4 days');
SELECT mark_delivered('B-W', now() - interval '2 days');
SELECT place_order('B-S', 2, 'berlin', '[{"sku":"CASE","qty":1,"unit_price":"19.00 EUR"}]', 'credit_card', now() - interval '2 days');
UPDATE customer SET blocked = true WHERE customer_id = 2;
-- 3 Rita (de): six store purchases this month, four of them brought back below
SELECT register_customer('Rita Retour', 'rita@example.de', NULL, 'de', now() - interval '2 years');
SELECT place_order('R-' || i, 3, 'berlin', '[{"sku":"TOP","qty":1,"unit_price":"50.00 EUR"}]', 'credit_card', now() - interval '10 days')
FROM generate_series(1, 6) i;
SELECT place_order('R-W', 3, 'web', '[{"sku":"SKIRT","qty":1,"unit_price":"40.00 EUR"}]', 'credit_card', now() - interval '8 days');
SELECT mark_delivered('R-W', now() - interval '6 days');
-- 4 Otto (en): an invoice 40 days old and unpaid, and a card order to return
SELECT register_customer('Otto Overdue', 'otto@example.com', NULL, 'en', now() - interval '2 years');
SELECT place_order('O-1', 4, 'web', '[{"sku":"DRILL","qty":1,"unit_price":"80.00 EUR"}]', 'invoice', now() - interval '40 days');
SELECT mark_delivered('O-1', now() - interval '38 days');
SELECT place_order('O-2', 4, 'web', '[{"sku":"SAW","qty":1,"unit_price":"120.00 EUR"}]', 'credit_card', now() - interval '5 days');
SELECT mark_delivered('O-2', now() - interval '3 days');
SELECT pg_temp.differences() AS differences;

-- Rita returns four tops at the till (card: back to the card); her return
-- rate climbs to 200 of 300 EUR bought in twelve months
SELECT r.* FROM generate_series(1, 4) i, LATERAL pg_temp.accept('R-' || i, 'TOP', 1, 'berlin') r;
SELECT orders_12m, returned_value_12m, return_rate FROM balance(3);
SELECT pg_temp.differences() AS differences;
-- Anna brings back the shoe of W-1 (so that it counts as returned below)
SELECT * FROM pg_temp.accept('W-1', 'SHOE', 1, 'berlin');
SELECT pg_temp.differences() AS differences;

------------------------------------------------------------------------------
-- every reason code: one scenario each, read-only, in German then English
------------------------------------------------------------------------------
CREATE TEMP TABLE scenario (n serial, expect text, no text, sku text, qty int, channel text, at timestamptz DEFAULT now());
INSERT INTO scenario (expect, no, sku, qty, channel, at) VALUES
    ('ok: card back to the card', 'W-9', 'CUP', 2, 'berlin', now()),
    ('not_sold_by_us: not on the order', 'W-1', 'HAT', 1, 'berlin', now()),
    ('not_sold_by_us: a cancelled order', 'W-7', 'LAMP', 1, 'berlin', now()),
    ('not_delivered: still on its way', 'W-2', 'SHIRT', 1, 'berlin', now()),
    ('already_returned: the shoe came back', 'W-1', 'SHOE', 1, 'berlin', now()),
    ('quantity_exceeds_purchase', 'W-9', 'CUP', 3, 'berlin', now()),
    ('return_window_expired: web, 40 days', 'W-3', 'JEANS', 1, 'berlin', now()),
    ('return_window_expired: store food after 7 days', 'S-3', 'TEA', 1, 'berlin', now()),
    ('item_not_returnable: marked at the sale', 'W-1', 'SOCKS', 1, 'berlin', now()),
    ('item_not_returnable: a hygiene category', 'W-1', 'SOAP', 1, 'berlin', now()),
    ('unpaid_order: the invoice shrinks', 'W-4', 'COAT', 1, 'berlin', now()),
    ('marketplace_order', 'E-1', 'BAG', 2, 'berlin', now()),
    ('cash_limit_exceeded: 100.00 EUR cash, the rest credit', 'S-1', 'JACKET', 1, 'berlin', now()),
    ('split tender: PayPal first, then the transfer', 'W-5', 'DRESS', 1, 'berlin', now()),
    ('split tender at the till: the card, then cash', 'S-5', 'CHAIR', 2, 'berlin', now()),
    ('exchange_only: sale item bought in a store', 'S-3', 'SALE-SCARF', 1, 'berlin', now()),
    ('legal floor: sale item bought online, 10 days', 'W-6', 'SALE-CAP', 1, 'berlin', now()),
    ('legal floor: food bought online, 10 days', 'W-6', 'TEA', 2, 'berlin', now()),
    ('frequent_returner: store purchase as credit', 'R-5', 'TOP', 1, 'berlin', now()),
    ('frequent returner, online order: the card', 'R-W', 'SKIRT', 1, 'berlin', now()),
    ('offset_against_debt: 80.00 EUR set off', 'O-2', 'SAW', 1, 'berlin', now()),
    ('customer_blocked: store purchase', 'B-S', 'CASE', 1, 'berlin', now()),
    ('legal floor: blocked, online, 2 days', 'B-W', 'PHONE', 1, 'berlin', now()),
    ('not_delivered: asked before the delivery', 'W-9', 'CUP', 1, 'berlin', now() - interval '5 days'),
    ('a return sent by parcel: no cash at the webshop', 'S-1', 'JACKET', 1, 'web', now());

-- German (Anna, Rita) and English (Bernd, Otto) as the customers speak
SELECT s.expect, d.action, d.refund, d.reason_code, d.reason
FROM scenario s, LATERAL decide_return(s.no, s.sku, s.qty, s.channel, s.at) d ORDER BY s.n;
-- everyone in English, then everyone in German
UPDATE customer SET language = 'en';
SELECT s.expect, d.action, d.refund, d.reason_code, d.reason
FROM scenario s, LATERAL decide_return(s.no, s.sku, s.qty, s.channel, s.at) d ORDER BY s.n;
UPDATE customer SET language = 'de';
SELECT s.expect, d.action, d.reason_code, d.reason
FROM scenario s, LATERAL decide_return(s.no, s.sku, s.qty, s.channel, s.at) d
WHERE s.no IN ('B-S', 'B-W', 'O-2') ORDER BY s.n;
UPDATE customer SET language = 'en' WHERE customer_id IN (2, 4);
-- the answer carries the method of every route
SELECT * FROM pg_temp.decide('W-5', 'DRESS', 1, 'berlin');
-- every contract reason code appears above
SELECT c AS missing_reason_code FROM unnest(ARRAY['ok', 'not_sold_by_us', 'not_delivered', 'already_returned',
    'quantity_exceeds_purchase', 'return_window_expired', 'item_not_returnable', 'unpaid_order', 'marketplace_order',
    'cash_limit_exceeded', 'frequent_returner', 'offset_against_debt', 'customer_blocked']) c
EXCEPT SELECT d.reason_code FROM scenario s, LATERAL decide_return(s.no, s.sku, s.qty, s.channel, s.at) d;
-- a decision reads, it never writes
SELECT count(*) AS ledger_rows, (SELECT count(*) FROM return_request) AS returns FROM ledger;

------------------------------------------------------------------------------
-- accept_return books each route; verify_balances() after every booking
------------------------------------------------------------------------------
-- cash up to the till's limit, the rest as store credit
SELECT * FROM pg_temp.accept('S-1', 'JACKET', 1, 'berlin');
SELECT pg_temp.differences() AS differences;
-- split tender at the till, one chair at a time: the card first, then cash
SELECT * FROM pg_temp.accept('S-5', 'CHAIR', 1, 'berlin');
SELECT * FROM pg_temp.accept('S-5', 'CHAIR', 1, 'berlin');
SELECT pg_temp.differences() AS differences;
-- the unpaid invoice is reduced, nothing is paid out
SELECT * FROM pg_temp.accept('W-4', 'COAT', 1, 'berlin');
SELECT i.open, i.settled_at IS NOT NULL AS settled FROM open_item i WHERE i.order_no = 'W-4';
SELECT pg_temp.differences() AS differences;
-- the marketplace refunds its buyer
SELECT * FROM pg_temp.accept('E-1', 'BAG', 2, 'berlin');
SELECT pg_temp.differences() AS differences;
-- split tender, each part back its own way, the last paid first
SELECT * FROM pg_temp.accept('W-5', 'DRESS', 1, 'berlin');
SELECT pg_temp.differences() AS differences;
-- Otto: 40.00 EUR back to the card, 80.00 EUR settle his overdue invoice
SELECT overdue_amount, open_amount FROM balance(4);
SELECT * FROM pg_temp.accept('O-2', 'SAW', 1, 'berlin');
SELECT balance, overdue_amount, open_amount FROM balance(4);
SELECT pg_temp.differences() AS differences;
-- Rita: the fifth top comes back as store credit
SELECT * FROM pg_temp.accept('R-5', 'TOP', 1, 'berlin');
SELECT store_credit, return_rate FROM balance(3);
SELECT pg_temp.differences() AS differences;
-- exchange only: the value waits as credit for the exchange
SELECT * FROM pg_temp.accept('S-3', 'SALE-SCARF', 1, 'berlin');
SELECT pg_temp.differences() AS differences;
-- a refusal books nothing, but the selling channel hears of it
SELECT count(*) AS ledger_rows FROM ledger \gset before_
SELECT * FROM pg_temp.accept('W-3', 'JEANS', 1, 'berlin');
SELECT count(*) - :before_ledger_rows AS new_ledger_rows FROM ledger;
SELECT status, channel FROM return_request WHERE order_no = 'W-3';
SELECT pg_temp.differences() AS differences;

-- a till retries after a network failure: the same return number books once
SELECT * FROM pg_temp.accept('W-9', 'PLATE', 1, 'berlin', 'POS-RET-1');
SELECT count(*) AS ledger_rows FROM ledger \gset before_
SELECT * FROM pg_temp.accept('W-9', 'PLATE', 1, 'berlin', 'POS-RET-1');
SELECT count(*) - :before_ledger_rows AS new_ledger_rows, (SELECT count(*) FROM outbox WHERE payload ->> 'return_no' = 'POS-RET-1') AS events
FROM ledger;
-- the same return number with another quantity is an error, so is another order's number
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return('W-9', 'PLATE', 2, 'berlin', 'POS-RET-1')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return('W-6', 'TEA', 1, 'berlin', 'POS-RET-1')$$);
SELECT pg_temp.differences() AS differences;

------------------------------------------------------------------------------
-- announced online, completed at a till with the return number
------------------------------------------------------------------------------
SELECT announce_return('W-9', '[{"sku":"CUP","qty":1},{"sku":"CUP","qty":1}]', 'web') AS return_no \gset
SELECT :'return_no' AS return_no, status, channel, announced_on FROM return_request WHERE return_no = :'return_no';
SELECT sku, qty, status FROM return_line WHERE return_no = :'return_no';
-- the announced cups are reserved for that return
SELECT * FROM pg_temp.decide('W-9', 'CUP', 1, 'berlin');
SELECT * FROM pg_temp.decide(:'return_no', 'CUP', 2, 'berlin');
-- declared in time: the window counts from the announcement, not the visit
SELECT * FROM pg_temp.decide(:'return_no', 'CUP', 2, 'berlin', now() + interval '60 days');
-- more units than were announced under that number: refused, nothing booked
SELECT pg_temp.try(format($$SELECT * FROM customer_account.accept_return(%L, 'CUP', 3, 'berlin')$$, :'return_no'));
SELECT * FROM pg_temp.accept(:'return_no', 'CUP', 2, 'berlin');
SELECT status, channel, announced_on FROM return_request WHERE return_no = :'return_no';
SELECT pg_temp.differences() AS differences;
-- an announcement that a till would refuse is refused
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-1', '[{"sku":"SOCKS","qty":1}]', 'web')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-9', '[{"sku":"CUP","qty":1}]', 'web')$$);

------------------------------------------------------------------------------
-- the account learns: returned value, return rate, net revenue
------------------------------------------------------------------------------
SELECT b.customer_id, b.lifetime_revenue, b.revenue_12m, b.returned_value_12m, b.return_rate, b.store_credit, b.balance
FROM customer c, LATERAL balance(c.customer_id) b ORDER BY 1;
SELECT entry_type, count(*), sum(amount) AS amount, sum(returned_delta) AS returned
FROM ledger WHERE entry_type IN ('return', 'refund') GROUP BY 1 ORDER BY 1;
-- what was paid back equals the value returned, per return line
SELECT count(*) AS lines_not_adding_up FROM return_line l
JOIN order_line o ON o.order_no = l.order_no AND o.sku = l.sku
WHERE l.status = 'accepted'
  AND o.unit_price * l.qty <> (SELECT sum(f.refund) FROM return_refund f WHERE f.return_no = l.return_no AND f.line_no = l.line_no);
-- a full return refunds exactly the order's total
SELECT o.order_no, o.total, sum(f.refund) AS refunded FROM orders o JOIN return_refund f USING (order_no)
WHERE o.order_no IN ('S-1', 'W-4', 'E-1', 'W-5', 'S-5', 'O-2') GROUP BY 1, 2 ORDER BY 1;

-- status back to the channel that sold the order
SELECT channel, payload ->> 'return_no' AS return_no, payload ->> 'order_no' AS order_no, payload ->> 'status' AS status,
       payload ->> 'reason_code' AS reason_code, payload ->> 'refund_total' AS refund_total,
       jsonb_array_length(payload -> 'refunds') AS routes
FROM outbox WHERE topic = 'return' ORDER BY event_id;
SELECT payload FROM outbox WHERE payload ->> 'order_no' = 'W-5';

------------------------------------------------------------------------------
-- policy is data: an UPDATE is seen by the next decision
------------------------------------------------------------------------------
SELECT action, reason_code FROM pg_temp.decide('S-3', 'TEA', 1, 'berlin');
UPDATE return_policy SET return_window_days = 30 WHERE category = 'food';
SELECT action, reason_code FROM pg_temp.decide('S-3', 'TEA', 1, 'berlin');
SELECT action, refund, reason_code FROM pg_temp.decide('S-2', 'BELT', 1, 'berlin');
UPDATE channel SET return_window_days = 30 WHERE code = 'hamburg';
SELECT action, refund, reason_code FROM pg_temp.decide('S-2', 'BELT', 1, 'berlin');
-- (Anna is a frequent returner by now; Carl, new, paid cash at the till)
SELECT register_customer('Carl Cash', 'carl@example.com', NULL, 'en', now() - interval '1 year');
SELECT place_order('C-1', 5, 'berlin', '[{"sku":"BIKE","qty":1,"unit_price":"180.00 EUR"}]', 'cash', now() - interval '1 day');
SELECT action, refund, reason_code FROM pg_temp.decide('C-1', 'BIKE', 1, 'berlin');
UPDATE channel SET cash_refund_limit = '200.00 EUR' WHERE code = 'berlin';
SELECT action, refund, reason_code FROM pg_temp.decide('C-1', 'BIKE', 1, 'berlin');
UPDATE channel SET cash_refund_limit = NULL WHERE code = 'berlin';
SELECT action, refund, reason_code FROM pg_temp.decide('C-1', 'BIKE', 1, 'berlin');

------------------------------------------------------------------------------
-- a duplicate account with a return is merged: the return moves along
------------------------------------------------------------------------------
SELECT register_customer('A. Schmidt', NULL, NULL, 'de', now() - interval '1 year') AS dup \gset
SELECT place_order('D-1', :dup, 'web', '[{"sku":"MUG","qty":2,"unit_price":"8.00 EUR"}]', 'credit_card', now() - interval '4 days');
SELECT mark_delivered('D-1', now() - interval '2 days');
SELECT return_no, action, refund FROM pg_temp.accept('D-1', 'MUG', 1, 'berlin');
SELECT merge_customers(1, :dup);
SELECT DISTINCT customer_id FROM return_request WHERE order_no = 'D-1'
UNION ALL SELECT DISTINCT customer_id FROM return_line WHERE order_no = 'D-1'
UNION ALL SELECT DISTINCT customer_id FROM return_refund WHERE order_no = 'D-1';
SELECT action, refund, reason_code FROM pg_temp.decide('D-1', 'MUG', 1, 'berlin');
SELECT return_no, action, refund FROM pg_temp.accept('D-1', 'MUG', 1, 'berlin');
SELECT pg_temp.differences() AS differences;

------------------------------------------------------------------------------
-- bad input: a clear error, and nothing written
------------------------------------------------------------------------------
SELECT count(*) AS ledger_rows, (SELECT count(*) FROM return_line) AS return_lines FROM ledger \gset before_
SELECT pg_temp.try($$SELECT * FROM customer_account.decide_return('NOPE', 'A', 1, 'berlin')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return('NOPE', 'A', 1, 'berlin')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.decide_return('W-9', 'CUP', 0, 'berlin')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return('W-9', 'CUP', -1, 'berlin')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.decide_return('W-9', 'CUP', 1, 'paris')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return('W-9', 'CUP', 1, 'paris')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.decide_return('W-9', 'CUP', 1, 'zurich')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return('W-6', 'TEA', 1, 'zurich')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return(NULL, 'CUP', 1, 'berlin')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return('W-6', 'TEA', NULL, 'berlin')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.accept_return('W-6', 'TEA', 1, 'berlin', '')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('NOPE', '[{"sku":"A","qty":1}]', 'web')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-6', '[{"sku":"A","qty":1}]', 'paris')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-6', '{"sku":"TEA","qty":1}', 'web')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-6', '[]', 'web')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-6', '[{"sku":"TEA","qty":0}]', 'web')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-6', '[{"sku":"TEA","qty":1.5}]', 'web')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-6', '[{"qty":1}]', 'web')$$);
SELECT pg_temp.try($$SELECT customer_account.announce_return('W-6', '[{"sku":"TEA","qty":1}]', 'zurich')$$);
SELECT pg_temp.try(format($$SELECT customer_account.announce_return(%L, '[{"sku":"CUP","qty":1}]', 'web')$$, :'return_no'));
SELECT count(*) - :before_ledger_rows AS new_ledger_rows, (SELECT count(*) FROM return_line) - :before_return_lines AS new_return_lines
FROM ledger;
-- NULL arguments of the read-only decision: no answer (STRICT)
SELECT count(*) AS null_args FROM decide_return(NULL, 'A', 1, 'berlin');
SELECT reason_text('return.already_returned', 'de') AS de, reason_text('return.already_returned', 'en') AS en;

SELECT * FROM verify_balances();

-- an order with many lines of one SKU, and a SKU longer than 255 bytes
SELECT place_order('MANY-1', 1, 'web', (SELECT jsonb_agg(jsonb_build_object('sku', 'SAME', 'qty', 1, 'unit_price', '1.00 EUR'))
                                           FROM generate_series(1, 40)), 'credit_card', now() - interval '5 days');
SELECT mark_delivered('MANY-1', now() - interval '3 days');
SELECT action, refund, reason_code FROM decide_return('MANY-1', 'SAME', 40, 'web');
SELECT place_order('LONG-1', 1, 'web', jsonb_build_array(jsonb_build_object('sku', repeat('L', 300), 'qty', 1, 'unit_price', '3.00 EUR')),
                   'credit_card', now() - interval '5 days');
SELECT mark_delivered('LONG-1', now() - interval '3 days');
SELECT action, refund, reason_code FROM decide_return('LONG-1', repeat('L', 300), 1, 'web');
SELECT count(*) AS differences FROM verify_balances();
