-- customer_account demo: one customer account across every sales channel.
-- Run by demo/run.sh on a throwaway cluster.
\set QUIET on
\pset null '(null)'
SET client_min_messages = warning;
CREATE EXTENSION customer_account CASCADE;
RESET client_min_messages;
SET search_path = customer_account, public;
SET TimeZone = 'Europe/Berlin';
\set QUIET off

\echo
\echo '=== Scene 1: money is exact and carries its currency ==='
SELECT '19.99 EUR'::currency_amount AS price,
       '19.99 EUR'::currency_amount * 3 AS three,
       '19.99 EUR'::currency_amount * 0.19 AS vat_19,
       '100.00 EUR'::currency_amount / 3 AS a_third,
       '1500 JPY'::currency_amount AS yen,
       'BHD 1.25'::currency_amount AS dinar;
\echo 'Two currencies never mix (the error below is expected):'
\set ON_ERROR_STOP off
SELECT '10.00 EUR'::currency_amount + '10.00 USD'::currency_amount;
\set ON_ERROR_STOP on

\echo
\echo '=== Scene 2: the retailer sets up its channels ==='
SELECT add_channel('web-de', 'webshop', 'EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF');
SELECT add_channel('store-berlin', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT add_channel('hotline', 'callcenter', 'EUR');
SELECT add_channel('app-de', 'app', 'EUR');
SELECT code, kind, currency, payment_term_days FROM channel ORDER BY code;

\echo
\echo '=== Scene 3: Anna buys in the web shop, in a store and on eBay: one account ==='
SELECT register_customer('Anna Schmidt', 'anna.schmidt@example.de', '+49 30 1234567', 'de', now() - interval '3 years') AS anna \gset
SELECT link_identity(:anna, 'loyalty_card', 'LC-0042-77');
SELECT link_identity(:anna, 'marketplace', 'ebay:anna_77');
SELECT place_order('WEB-1001', :anna, 'web-de',
    '[{"sku":"SHOE-42","qty":1,"unit_price":"89.90 EUR"},{"sku":"SOCKS","qty":3,"unit_price":"4.99 EUR","returnable":false}]',
    'invoice', now() - interval '10 days') AS web_order_total;
\echo 'At the Berlin till, the clerk scans her loyalty card:'
SELECT find_customer('loyalty_card', 'lc 0042 77') AS customer_at_till;
SELECT place_order('POS-77-0001', find_customer('loyalty_card', 'lc 0042 77'), 'store-berlin',
    '[{"sku":"JACKET-M","qty":1,"unit_price":"149.00 EUR"}]', 'cash', now() - interval '3 days') AS store_total;
\echo 'The eBay order arrives through the marketplace adapter as a plain INSERT:'
BEGIN;
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('EBAY-3301', find_customer('marketplace', 'ebay:anna_77'), 'ebay', 'marketplace', '50.00 EUR', now() - interval '1 day');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price) VALUES ('EBAY-3301', 1, 'BAG-1', 2, '25.00 EUR');
COMMIT;
\echo 'She pays 50.00 EUR of the web invoice by bank transfer:'
SELECT record_payment('BANK-2026-0815', :anna, '50.00 EUR', 'bank_transfer', 'web-de', 'WEB-1001');
\echo 'The account at a glance:'
\x on
SELECT * FROM balance(:anna);
\x off
SELECT entry_id, entry_type, amount, channel, order_no, payment_ref FROM ledger WHERE customer_id = :anna ORDER BY entry_id;

\echo
\echo '=== Scene 4: Larry has an overdue invoice: the checkout offers him only prepayment ==='
SELECT register_customer('Larry Late', 'larry@example.com', NULL, 'en', now() - interval '2 years') AS larry \gset
SELECT set_credit_limit(:larry, '1000.00 EUR');
SELECT place_order('WEB-0900', :larry, 'web-de', '[{"sku":"TV-55","qty":1,"unit_price":"499.00 EUR"}]',
    'invoice', now() - interval '45 days');
SELECT * FROM payment_options(:larry, '79.90 EUR', 'web-de');
\echo 'His shop tries invoice anyway; the account refuses with RA001 and the reason (expected error):'
\set ON_ERROR_STOP off
SELECT place_order('WEB-0901', :larry, 'web-de', '[{"sku":"HDMI","qty":1,"unit_price":"79.90 EUR"}]', 'invoice');
\set ON_ERROR_STOP on
SELECT place_order('WEB-0901', :larry, 'web-de', '[{"sku":"HDMI","qty":1,"unit_price":"79.90 EUR"}]', 'prepayment') AS prepaid_order;
\echo 'What the call-center agent sees:'
SELECT * FROM account_advice(:larry);

\echo
\echo '=== Scene 5: accounting: aging and the dunning run (safe to run twice) ==='
SELECT * FROM aging_report();
SELECT * FROM dunning_run(current_date);
SELECT * FROM dunning_run(current_date);
SELECT event_id, customer_id, topic, payload FROM outbox ORDER BY event_id;

\echo
\echo '=== Scene 6: an offline till syncs late; a duplicate account is merged ==='
SELECT place_order('POS-12-0420', :anna, 'store-berlin', '[{"sku":"BELT","qty":1,"unit_price":"35.00 EUR"}]',
    'credit_card', now() - interval '40 days') AS late_sale;
SELECT register_customer('A. Schmidt', NULL, NULL, 'de', now() - interval '1 year') AS dup \gset
SELECT place_order('HOT-5', :dup, 'hotline', '[{"sku":"UMBRELLA","qty":1,"unit_price":"25.00 EUR"}]', 'invoice', now() - interval '5 days');
SELECT merge_customers(:anna, :dup);
SELECT currency, balance, open_amount, lifetime_revenue, orders_12m, last_purchase_by_kind FROM balance(:anna);

\echo
\echo '=== Scene 7: the web order comes back in a Berlin store ==='
SELECT mark_delivered('WEB-1001', now() - interval '7 days');
\echo 'Anna brings the shoes of her web order to the Berlin till. The clerk scans the order number:'
SELECT * FROM decide_return('WEB-1001', 'SHOE-42', 1, 'store-berlin');
\echo 'Of 104.87 EUR she has paid 50.00 EUR: the open invoice shrinks first, the rest goes back by bank transfer.'
SELECT * FROM accept_return('WEB-1001', 'SHOE-42', 1, 'store-berlin');
\echo 'The web shop learns the outcome from the outbox (NOTIFY customer_account_outbox):'
SELECT event_id, channel, payload ->> 'return_no' AS return_no, payload ->> 'status' AS status,
       payload ->> 'refund_total' AS refund_total, payload -> 'refunds' AS refunds
FROM outbox WHERE topic = 'return' ORDER BY event_id;
SELECT currency, balance, open_amount, lifetime_revenue, returned_value_12m, return_rate FROM balance(:anna);

\echo
\echo '=== Scene 8: a refused return, and one announced online and completed at a till ==='
\echo 'The socks were sold as not returnable: the till refuses, books nothing, and the web shop hears of it.'
SELECT * FROM accept_return('WEB-1001', 'SOCKS', 3, 'store-berlin');
\echo 'Anna announces the eBay bag for return on her phone and gets a return number ...'
SELECT mark_delivered('EBAY-3301', now() - interval '1 day');
SELECT announce_return('EBAY-3301', '[{"sku":"BAG-1","qty":1}]', 'ebay') AS return_no \gset
SELECT :'return_no' AS return_no;
\echo '... which the Berlin till completes; eBay refunds its buyer and is told so.'
SELECT * FROM accept_return(:'return_no', 'BAG-1', 1, 'store-berlin');
SELECT channel, payload ->> 'return_no' AS return_no, payload ->> 'status' AS status, payload ->> 'reason_code' AS reason_code
FROM outbox WHERE topic = 'return' ORDER BY event_id;
\echo 'Policy is data: a DBA makes sale items exchange-only, and the next decision everywhere follows.'
INSERT INTO return_policy (sku_pattern, exchange_only, note) VALUES ('SALE-%', true, 'reduced goods: exchange only');
SELECT place_order('POS-77-0002', :anna, 'store-berlin', '[{"sku":"SALE-SCARF","qty":1,"unit_price":"12.00 EUR"}]', 'cash') AS sale;
SELECT * FROM decide_return('POS-77-0002', 'SALE-SCARF', 1, 'store-berlin');

\echo
\echo '=== Scene 9: a web shop keeps its own tables; capture triggers feed the account ==='
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id serial PRIMARY KEY, customer_email text NOT NULL, billing_name text,
    grand_total numeric(10,2) NOT NULL, payment_code text NOT NULL, status text NOT NULL DEFAULT 'pending',
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE shop.order_items (item_id serial PRIMARY KEY, order_id integer NOT NULL REFERENCES shop.orders,
    sku text NOT NULL, qty integer NOT NULL, price numeric(10,2) NOT NULL);
CREATE INDEX ON shop.order_items (order_id);
\echo 'The DBA attaches two triggers whose arguments map the shop''s columns, and checks them:'
CREATE TRIGGER account AFTER INSERT OR UPDATE ON shop.orders FOR EACH ROW EXECUTE FUNCTION capture_order(
    'order_no=id', 'prefix=SHOP-', 'customer=email:customer_email', 'create_customer=name:billing_name',
    'channel=const:web-de', 'total=grand_total', 'adjust_sku=SHIPPING',
    'method=payment_code', 'method_map=cc:credit_card,inv:invoice,pp:paypal',
    'status=status', 'status_map=pending:place,processing:place,completed:deliver,cancelled:cancel',
    'placed_at=created_at', 'lines=shop.order_items');
CREATE TRIGGER account AFTER INSERT OR UPDATE OR DELETE ON shop.order_items FOR EACH ROW EXECUTE FUNCTION capture_order_line(
    'order_no=order_id', 'line_key=item_id', 'sku=sku', 'qty=qty', 'unit_price=price');
SELECT * FROM check_capture('shop.orders');
\echo 'The shop application gets the shop profile for web-de; it needs no rights on the account itself:'
CREATE ROLE webshop_app;
GRANT USAGE ON SCHEMA shop TO webshop_app;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA shop TO webshop_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA shop TO webshop_app;
SELECT grant_profile('webshop_app', 'shop', 'web-de');
SET application_name = 'webshop';
SET ROLE webshop_app;
\echo 'It writes its tables as always: Anna (known by her email, however typed) and a new customer, Ben:'
BEGIN;
INSERT INTO shop.orders (customer_email, billing_name, grand_total, payment_code, created_at)
VALUES ('ANNA.Schmidt@example.de', 'Anna Schmidt', 64.85, 'pp', now() - interval '2 days');
INSERT INTO shop.order_items (order_id, sku, qty, price) VALUES (1, 'SCARF', 1, 29.90), (1, 'GLOVES', 1, 29.95);
INSERT INTO shop.orders (customer_email, billing_name, grand_total, payment_code, created_at)
VALUES ('ben@example.com', 'Ben Becker', 45.00, 'cc', now() - interval '2 days');
INSERT INTO shop.order_items (order_id, sku, qty, price) VALUES (2, 'BOOTS', 1, 45.00);
COMMIT;
\echo 'The shop ships Anna''s order, writes the row again (nothing books twice), and Ben cancels:'
UPDATE shop.orders SET status = 'processing' WHERE id = 1;
UPDATE shop.orders SET status = 'completed' WHERE id = 1;
UPDATE shop.orders SET status = 'completed' WHERE id = 1;
UPDATE shop.orders SET status = 'cancelled' WHERE id = 2;
\echo 'A status the mapping does not know fails the shop''s statement, naming trigger, argument and column (expected error):'
\set ON_ERROR_STOP off
UPDATE shop.orders SET status = 'on-hold' WHERE id = 1;
\set ON_ERROR_STOP on
RESET ROLE;
RESET application_name;
\echo 'Booked at commit, each order with its lines and the shipping; delivered and cancelled once:'
SELECT o.order_no, c.full_name, o.payment_method, o.total, o.delivered_at IS NOT NULL AS delivered,
       o.cancelled_at IS NOT NULL AS cancelled,
       string_agg(l.qty || ' x ' || l.sku || ' @ ' || l.unit_price::text, ', ' ORDER BY l.line_no) AS lines
FROM orders o JOIN customer c USING (customer_id) JOIN order_line l USING (order_no)
WHERE o.order_no LIKE 'SHOP-%' GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1;
\echo 'Who cancelled Ben''s order, and refunded it? One query:'
SELECT entry_type, amount, channel, booked_by, application_name FROM ledger
WHERE order_no = 'SHOP-2' AND entry_type IN ('cancel', 'refund') ORDER BY entry_id;
\echo 'The shop''s role cannot write for the Berlin store (expected error):'
SET ROLE webshop_app;
\set ON_ERROR_STOP off
SELECT record_payment('CASH-1', :anna, '10.00 EUR', 'cash', 'store-berlin');
\set ON_ERROR_STOP on
RESET ROLE;
\echo 'Anna''s account: the web shop''s order beside the store and eBay ones:'
SELECT currency, balance, lifetime_revenue, last_purchase_by_kind FROM balance(:anna);

\echo
\echo '=== Scene 10: one loyalty card online and offline; the store regular comes back to the web shop ==='
SELECT set_loyalty_terms('EUR', '0.01 EUR');                 -- a point is worth a cent and lives two years
SELECT add_earn_rule('standard', 1);                         -- 1 point per euro on every channel
SELECT add_earn_rule('stores', 2, 'store');                  -- 2 at the till
SELECT add_earn_rule('gift-cards', 0, NULL, 'GIFT-%');       -- gift cards earn nothing
SELECT add_loyalty_tier('member', 'EUR', '0.00 EUR');
SELECT add_loyalty_tier('silver', 'EUR', '300.00 EUR');
SELECT add_points_multiplier('silver-bonus', 1.5, 'silver');
-- back online after 180 days, with 3 store purchases in the year before: 10.00 EUR credit, once a year
SELECT add_reactivation_rule('welcome-back-online', 'webshop', 180, 'store', 3, 365, '10.00 EUR');
SELECT register_customer('Tom Treu', 'tom.treu@example.de', NULL, 'de', now() - interval '5 years') AS tom \gset
SELECT link_identity(:tom, 'loyalty_card', 'LC-7788');
\echo 'Tom bought a raincoat in the web shop 14 months ago:'
SELECT place_order('WEB-2001', :tom, 'web-de', '[{"sku":"RAINCOAT","qty":1,"unit_price":"129.00 EUR"}]',
    'credit_card', now() - interval '14 months') AS web_total;
SELECT mark_delivered('WEB-2001', now() - interval '14 months' + interval '2 days');
\echo 'Since then he shops in Berlin; the till finds him by his card:'
SELECT n AS months_ago, place_order('POS-77-' || n, find_customer('loyalty_card', 'lc 7788'), 'store-berlin',
           jsonb_build_array(jsonb_build_object('sku', 'SHIRT-' || n, 'qty', 1, 'unit_price', '49.90 EUR')),
           'cash', now() - n * interval '1 month') AS till_total
FROM (VALUES (5), (3), (1)) v(n);
SELECT * FROM loyalty_points(:tom);
\echo 'Now he orders online again: the account receives a welcome-back credit, and the web shop learns of it:'
SELECT place_order('WEB-2002', :tom, 'web-de',
    '[{"sku":"BOOTS","qty":1,"unit_price":"89.90 EUR"},{"sku":"GIFT-25","qty":1,"unit_price":"25.00 EUR"}]', 'credit_card')
    AS web_total;
SELECT order_no, line_no, rule_code, points, multipliers, tier FROM loyalty_lot WHERE customer_id = :tom ORDER BY lot_id;
SELECT * FROM loyalty_history(:tom);
SELECT currency, balance, store_credit, revenue_12m, loyalty_tier FROM balance(:tom);
SELECT topic, channel, payload FROM outbox WHERE topic = 'loyalty';
\echo 'At the till he turns his available points into store credit and pays with it:'
SELECT redeem_points(:tom, (SELECT available FROM loyalty_points(:tom)), 'store-berlin') AS credit_from_points;
SELECT place_order('POS-77-9', :tom, 'store-berlin', '[{"sku":"UMBRELLA","qty":1,"unit_price":"12.00 EUR"}]',
    'store_credit') AS paid_with_credit;
SELECT currency, store_credit FROM balance(:tom);
SELECT * FROM loyalty_points(:tom);
\echo 'Finance: the points outstanding, and what they are worth:'
SELECT * FROM loyalty_liability();

\echo
\echo '=== Scene 11: Anna calls the hotline; the basket she saved in the app is paid at the Berlin till ==='
\echo 'Anna fills a basket in the shop''s app and saves it; the app shows its token as a QR code.'
\echo '(Tokens are random: the demo keeps this one in the session setting demo.basket and does not print it.)'
SELECT length(set_config('demo.basket', save_basket(:anna, 'app-de',
    '[{"sku":"HAT-L","qty":1,"unit_price":"39.00 EUR"},{"sku":"SCARF","qty":1,"unit_price":"29.90 EUR"}]'), false)) AS token_length,
       current_setting('demo.basket') ~ '^[0-9A-HJKMNP-TV-Z]{12}$' AS crockford_base32;
\echo 'Then she phones the hotline. The agent types the name as heard, misspelt and in any order:'
SELECT * FROM search('schmitt ana');
\echo '... and checks the number on the caller display, written otherwise than it was stored (+49 30 1234567):'
SELECT * FROM search('030/1234567');
\echo 'The agent''s screen: the account, the advice, and the history (the ledger, newest first):'
\x on
SELECT currency, balance, open_amount, overdue_amount, store_credit, lifetime_revenue, orders_12m,
       returned_value_12m, last_purchase_by_kind, dunning_level, loyalty_tier FROM balance(:anna);
\x off
SELECT * FROM account_advice(:anna);
SELECT current_date - event_at::date AS days_ago, entry_type, amount, channel, order_no, coalesce(payment_ref, method) AS ref
FROM ledger WHERE customer_id = :anna ORDER BY event_at DESC, entry_id DESC;
\echo 'She would like to try the hat on. At the Berlin till the clerk scans the code from her app:'
SELECT customer_id = :anna AS is_anna, saved_on, expires_at::date - current_date AS valid_days,
       jsonb_array_length(lines) AS lines
FROM resume_basket(current_setting('demo.basket'), 'store-berlin');
SELECT checkout_basket(current_setting('demo.basket'), 'POS-77-0003', 'store-berlin', 'cash') AS paid_at_till;
\echo 'The till retries after a network hiccup: same answer, nothing booked twice:'
SELECT checkout_basket(current_setting('demo.basket'), 'POS-77-0003', 'store-berlin', 'cash') AS paid_again;
\echo 'A second till scans the same code: the basket is already paid (expected error):'
\set ON_ERROR_STOP off
SELECT checkout_basket(current_setting('demo.basket'), 'POS-77-0004', 'store-berlin', 'cash');
\set ON_ERROR_STOP on
\echo 'The agent, still on the phone, sees the order in Anna''s account, with the points it earned at the till:'
SELECT order_no, channel, payment_method, total,
       (SELECT string_agg(l.qty || ' x ' || l.sku, ', ' ORDER BY l.line_no) FROM order_line l WHERE l.order_no = o.order_no) AS lines
FROM orders o WHERE customer_id = :anna AND order_no = 'POS-77-0003';
SELECT entry_type, amount, channel, order_no FROM ledger WHERE order_no = 'POS-77-0003' ORDER BY entry_id;
SELECT currency, balance, lifetime_revenue, orders_12m, loyalty_tier FROM balance(:anna);
SELECT kind, points, order_no, reason FROM loyalty_history(:anna);

\echo
\echo '=== Scene 12: the DBA''s reports: revenue and returns per channel, and the lapsed customers worth an incentive ==='
\echo 'The last 30 days per channel (a return counts for the channel that sold the goods, whichever till took them back):'
SELECT * FROM channel_report(now() - interval '30 days', now() + interval '1 minute');
\echo 'Greta and Paul bought in the spring and have not been back since:'
SELECT register_customer('Greta Gruen', 'greta@example.de') AS greta \gset
SELECT register_customer('Paul Peters', 'paul@example.de') AS paul \gset
SELECT place_order('W-2041', :greta, 'web-de', '[{"sku":"COAT","qty":1,"unit_price":"189.00 EUR"}]', 'credit_card', now() - interval '200 days');
SELECT place_order('W-2042', :paul, 'web-de', '[{"sku":"SOCKS","qty":3,"unit_price":"4.99 EUR"}]', 'paypal', now() - interval '150 days');
\echo 'Customers without a purchase in the last 90 days, best first (for a win-back campaign):'
SELECT i.customer_id, c.full_name, i.last_purchase_at::date AS last_purchase, i.lifetime_revenue
FROM inactive_customers(90) i JOIN customer c USING (customer_id);

\echo
\echo '=== The books always agree with the ledger (no rows = no difference) ==='
SELECT * FROM verify_balances();
SELECT * FROM verify_loyalty();
