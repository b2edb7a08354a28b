--
-- Service across channels: baskets saved on one channel and paid on another
-- (save_basket, resume_basket, checkout_basket), the lapsed customers
-- (inactive_customers) and the channel report (channel_report), each with
-- hand-computed figures and the bad inputs with their SQLSTATEs.  Times
-- are relative to now(), so the answers do not age.
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

SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('app', 'app', 'EUR');
SELECT add_channel('till', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF');
SELECT register_customer('Anna Schmidt', 'anna@example.de') AS anna \gset
SELECT register_customer('Bert Meier', 'bert@example.de') AS bert \gset

------------------------------------------------------------------------------
-- 1. Baskets: saved in the app, resumed and paid at the till
------------------------------------------------------------------------------
-- 2 x 19.99 + 1 x 5.00 = 44.98 EUR
SELECT save_basket(:anna, 'app', '[{"sku":"MUG","qty":2,"unit_price":"19.99 EUR"},{"sku":"TEA","qty":1,"unit_price":"5.00 EUR"}]') AS tok \gset
-- 12 characters of Crockford base32, a new token on every call
SELECT :'tok' ~ '^[0-9A-HJKMNP-TV-Z]{12}$' AS token_form;
SELECT save_basket(:anna, 'app', '[{"sku":"MUG","qty":2,"unit_price":"19.99 EUR"},{"sku":"TEA","qty":1,"unit_price":"5.00 EUR"}]') <> :'tok' AS new_token_each_call;
-- only the hash of the token is stored
SELECT count(*) AS baskets, count(*) FILTER (WHERE token_hash = sha256(convert_to(:'tok', 'UTF8'))) AS by_hash,
       count(*) FILTER (WHERE position(convert_to(:'tok', 'UTF8') IN token_hash) > 0) AS token_in_clear
FROM basket;
SELECT customer_id = :anna AS anna, lines, saved_on, expires_at > now() + interval '6 days 23 hours' AND expires_at <= now() + interval '7 days' AS seven_days
FROM resume_basket(:'tok', 'till');
-- typed by hand at the till: lower case, with a dash
SELECT customer_id = :anna AS anna FROM resume_basket(lower(substr(:'tok', 1, 6)) || '-' || substr(:'tok', 7), 'till');
-- paid at the till: the order goes through place_order (channel till)
SELECT checkout_basket(:'tok', 'T-1', 'till', 'cash') AS total;
SELECT order_no, customer_id = :anna AS anna, channel, payment_method, total FROM orders WHERE order_no = 'T-1';
SELECT sku, qty, unit_price FROM order_line WHERE order_no = 'T-1' ORDER BY line_no;
SELECT balance, lifetime_revenue FROM balance(:anna);
-- the same call again answers the same total and books nothing more
SELECT checkout_basket(:'tok', 'T-1', 'till', 'cash') AS total_again;
SELECT count(*) AS order_entries FROM ledger WHERE order_no = 'T-1' AND entry_type = 'order';
-- once per token: another order number is refused; resuming it too
SELECT pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'tok', 'T-2', 'till', 'cash'));
SELECT pg_temp.try(format('SELECT * FROM resume_basket(%L, %L)', :'tok', 'web'));
SELECT count(*) AS no_t2 FROM orders WHERE order_no = 'T-2';

-- unknown and expired tokens: RA002
SELECT pg_temp.try($$SELECT * FROM resume_basket('ZZZZZZZZZZZZ', 'till')$$);
SELECT pg_temp.try($$SELECT checkout_basket('ZZZZZZZZZZZZ', 'T-3', 'till', 'cash')$$);
SELECT pg_temp.try($$SELECT * FROM resume_basket(NULL, 'till')$$);
SELECT save_basket(:bert, 'web', '[{"sku":"LAMP","qty":1,"unit_price":"80.00 EUR"}]', '1 hour') AS old \gset
UPDATE basket SET saved_at = saved_at - interval '2 hours', expires_at = expires_at - interval '2 hours'
WHERE token_hash = basket_token_hash(:'old');
SELECT regexp_replace(pg_temp.try(format('SELECT * FROM resume_basket(%L, %L)', :'old', 'till')), 'at .*', 'at ...') AS expired;
SELECT regexp_replace(pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'old', 'T-4', 'till', 'cash')), 'at .*', 'at ...') AS expired;

-- a channel in another currency than the basket's prices: 22023, nothing booked
SELECT save_basket(:bert, 'web', '[{"sku":"LAMP","qty":1,"unit_price":"80.00 EUR"}]') AS lamp \gset
SELECT pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'lamp', 'C-1', 'web-ch', 'credit_card'));
-- the payment decision applies: a method the till does not offer is RA001
-- and the basket stays open for a second try
SELECT pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'lamp', 'T-5', 'till', 'paypal'));
SELECT count(*) AS no_t5 FROM orders WHERE order_no = 'T-5';
SELECT checkout_basket(:'lamp', 'T-5', 'till', 'credit_card') AS total;
-- an order number that belongs to another order: 23505 from place_order, basket still open
SELECT save_basket(:bert, 'app', '[{"sku":"PEN","qty":3,"unit_price":"1.50 EUR"}]') AS pen \gset
SELECT pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'pen', 'T-1', 'till', 'cash'));
SELECT checkout_basket(:'pen', 'T-6', 'till', 'cash') AS total;

-- bad inputs of save_basket
SELECT pg_temp.try($$SELECT save_basket(999999, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]')$$);
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L)', :anna, 'nowhere', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]'));
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L)', :anna, 'app', '[]'));
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L)', :anna, 'app', '{"sku":"A"}'));
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L)', :anna, 'app', '[{"sku":"A","qty":0,"unit_price":"1.00 EUR"}]'));
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L)', :anna, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 CHF"}]'));
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L)', :anna, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"},{"sku":"B","qty":1,"unit_price":"1.00 CHF"}]'));
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L, %L)', :anna, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', '-1 day'));
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L, %L)', :anna, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', '400 days'));
-- bad inputs of checkout_basket
SELECT save_basket(:anna, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]') AS a \gset
SELECT pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'a', '', 'till', 'cash'));
SELECT pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'a', 'T-7', 'nowhere', 'cash'));
SELECT pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'a', 'T-7', 'till', 'nothing'));
SELECT pg_temp.try(format('SELECT * FROM resume_basket(%L, %L)', :'a', 'nowhere'));

-- a merged customer's basket is paid by the survivor
SELECT register_customer('Anna Schmidt (dup)', 'anna.dup@example.de') AS dup \gset
SELECT save_basket(:dup, 'app', '[{"sku":"CUP","qty":1,"unit_price":"7.00 EUR"}]') AS duptok \gset
SELECT merge_customers(:anna, :dup);
SELECT customer_id = :anna AS survivor FROM resume_basket(:'duptok', 'web');
SELECT checkout_basket(:'duptok', 'W-1', 'web', 'credit_card') AS total;
SELECT customer_id = :anna AS survivor FROM orders WHERE order_no = 'W-1';
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L)', :dup, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]'));
-- forgetting a customer erases the baskets not checked out
SELECT save_basket(:bert, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]') AS bt \gset
SELECT forget_customer(:bert);
SELECT count(*) FILTER (WHERE order_no IS NULL) AS open_baskets_of_bert, count(*) AS checked_out_kept
FROM basket WHERE customer_id = :bert;
SELECT pg_temp.try(format('SELECT * FROM resume_basket(%L, %L)', :'bt', 'till'));

-- a shop role bound to the app writes baskets for the app only (42501)
CREATE ROLE regress_ca_app;
SELECT grant_profile('regress_ca_app', 'shop', 'app');
SET ROLE regress_ca_app;
SELECT length(save_basket(:anna, 'app', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]')) AS app_ok;
SELECT pg_temp.try(format('SELECT save_basket(%s, %L, %L)', :anna, 'web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]'));
SELECT pg_temp.try(format('SELECT checkout_basket(%L, %L, %L, %L)', :'a', 'W-2', 'web', 'credit_card'));
-- the table itself is closed
SELECT pg_temp.try('SELECT * FROM customer_account.basket');
RESET ROLE;
SELECT count(*) AS no_w2 FROM orders WHERE order_no = 'W-2';
SELECT * FROM verify_balances();
DROP OWNED BY regress_ca_app;
DROP ROLE regress_ca_app;

------------------------------------------------------------------------------
-- 2. inactive_customers(days): lapsed customers, best first
------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF');
SELECT register_customer('Anna') AS anna \gset
SELECT register_customer('Bert') AS bert \gset
SELECT register_customer('Carl') AS carl \gset
SELECT register_customer('Dora') AS dora \gset
SELECT register_customer('Eve') AS eve \gset
SELECT register_customer('Franz') AS franz \gset
SELECT register_customer('Gustav') AS gustav \gset
SELECT register_customer('Hanna') AS hanna \gset
SELECT register_customer('Ida') AS ida \gset
CREATE FUNCTION pg_temp.buy(no text, who bigint, ch text, price text, days_ago int) RETURNS void LANGUAGE sql AS $$
    SELECT customer_account.place_order(no, who, ch, jsonb_build_array(jsonb_build_object('sku', 'X', 'qty', 1, 'unit_price', price)),
                                        'credit_card', now() - make_interval(days => days_ago))
$$;
-- Anna: 30.00 (200 days ago) + 50.00 (100 days ago): last 100 days ago, 80.00
SELECT pg_temp.buy('A-1', :anna, 'web', '30.00 EUR', 200), pg_temp.buy('A-2', :anna, 'web', '50.00 EUR', 100);
-- Bert: 200.00 (120 days ago); Eve, merged into Bert: 10.00 (300 days ago) -> Bert 210.00
SELECT pg_temp.buy('B-1', :bert, 'web', '200.00 EUR', 120), pg_temp.buy('E-1', :eve, 'web', '10.00 EUR', 300);
SELECT merge_customers(:bert, :eve);
-- Carl bought 10 days ago: active
SELECT pg_temp.buy('C-1', :carl, 'web', '500.00 EUR', 10);
-- Dora's only order was cancelled: never bought
SELECT pg_temp.buy('D-1', :dora, 'web', '900.00 EUR', 100);
SELECT cancel_order('D-1', now() - interval '99 days');
-- Franz was forgotten
SELECT pg_temp.buy('F-1', :franz, 'web', '700.00 EUR', 100);
SELECT forget_customer(:franz);
-- Gustav: CHF only, 50 days ago
SELECT pg_temp.buy('G-1', :gustav, 'web-ch', '60.00 CHF', 50);
-- Hanna: CHF 100 days ago but EUR 5 days ago: active in one currency, so active
SELECT pg_temp.buy('H-1', :hanna, 'web-ch', '999.00 CHF', 100), pg_temp.buy('H-2', :hanna, 'web', '1.00 EUR', 5);
-- Ida never bought
SELECT customer_id, CASE customer_id WHEN :anna THEN 'Anna' WHEN :bert THEN 'Bert' WHEN :gustav THEN 'Gustav' END AS who,
       round(extract(epoch FROM now() - last_purchase_at) / 86400) AS days_ago, lifetime_revenue
FROM inactive_customers(30);
-- 110 days: only Bert (Anna bought 100 days ago)
SELECT customer_id = :bert AS bert, lifetime_revenue FROM inactive_customers(110);
-- 0 days: everyone who ever bought, Carl and Hanna included
SELECT count(*) AS rows_, count(DISTINCT customer_id) AS customers FROM inactive_customers(0);
SELECT count(*) AS nobody FROM inactive_customers(1000);
SELECT pg_temp.try('SELECT * FROM customer_account.inactive_customers(-1)');
SELECT pg_temp.try('SELECT * FROM customer_account.inactive_customers(NULL)');

------------------------------------------------------------------------------
-- 3. channel_report(from, to): orders, revenue, returns per channel
------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SELECT add_channel('web', 'webshop', 'EUR', 60);
SELECT add_channel('till', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF');
SELECT register_customer('Anna') AS anna \gset
SELECT register_customer('Bert') AS bert \gset
SELECT register_customer('Carl') AS carl \gset
SELECT now() - interval '10 days' AS p1 \gset
-- web, in the period: W-1 4 x 25.00 = 100.00 (Anna), placed at p1
SELECT place_order('W-1', :anna, 'web', '[{"sku":"SHIRT","qty":4,"unit_price":"25.00 EUR"}]', 'credit_card', :'p1');
SELECT mark_delivered('W-1', now() - interval '9 days');
-- web, cancelled: W-2 50.00, not counted
SELECT place_order('W-2', :anna, 'web', '[{"sku":"CAP","qty":1,"unit_price":"50.00 EUR"}]', 'credit_card', now() - interval '5 days');
SELECT cancel_order('W-2', now() - interval '4 days');
-- web, before the period: W-0 2 x 40.00 = 80.00 (Bert), returned now
SELECT place_order('W-0', :bert, 'web', '[{"sku":"BOOT","qty":2,"unit_price":"40.00 EUR"}]', 'credit_card', now() - interval '40 days');
SELECT mark_delivered('W-0', now() - interval '39 days');
-- till: T-1 30.00 cash (Carl)
SELECT place_order('T-1', :carl, 'till', '[{"sku":"SOCK","qty":3,"unit_price":"10.00 EUR"}]', 'cash', now() - interval '2 days');
-- CHF: 45.50
SELECT place_order('C-1', :carl, 'web-ch', '[{"sku":"HAT","qty":1,"unit_price":"45.50 CHF"}]', 'credit_card', now() - interval '3 days');
-- returns: one shirt online, one shirt at the till (both count for web), one boot
SELECT return_no, action, refund FROM accept_return('W-1', 'SHIRT', 1, 'web', 'R-1');
SELECT return_no, action, refund FROM accept_return('W-1', 'SHIRT', 1, 'till', 'R-2');
SELECT return_no, action, refund FROM accept_return('W-0', 'BOOT', 1, 'web', 'R-3');
SELECT entry_type, channel, order_no, revenue_delta, returned_delta FROM ledger
WHERE entry_type IN ('order', 'return', 'cancel') ORDER BY entry_id;
-- web: 1 order (W-1), returned 25.00 + 25.00 + 40.00 = 90.00, revenue 100.00 - 90.00 = 10.00, rate 90/100
-- till: 1 order, 30.00, nothing returned; CHF shop: 1 order, 45.50
SELECT * FROM channel_report(now() - interval '30 days', now() + interval '1 hour');
-- [p1, ...) holds W-1; [..., p1) does not; the returns are booked now
SELECT * FROM channel_report(:'p1', now() + interval '1 hour') WHERE channel = 'web';
SELECT * FROM channel_report(now() - interval '30 days', :'p1');
-- the 40 days: W-0 too (80.00 more purchased), the cancelled W-2 still not
-- web: 2 orders, 180.00 - 90.00 = 90.00, rate 90/180 = 0.5
SELECT * FROM channel_report(now() - interval '41 days', now() + interval '1 hour') WHERE channel = 'web';
-- a period with only returns: no purchases, no rate
SELECT * FROM channel_report(now() - interval '1 minute', now() + interval '1 hour');
-- empty period
SELECT * FROM channel_report(now() - interval '100 days', now() - interval '99 days');
SELECT pg_temp.try($$SELECT * FROM customer_account.channel_report('2026-02-01', '2026-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.channel_report(NULL, '2026-01-01')$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.channel_report('-infinity', '2026-01-01')$$);
-- the report reads the ledger's order and return entries through a partial
-- index on event_at that covers every column it needs
SELECT indexdef FROM pg_indexes WHERE schemaname = 'customer_account' AND indexname = 'ledger_channel_report';
SELECT indexdef FROM pg_indexes WHERE schemaname = 'customer_account' AND indexname = 'account_state_last_purchase';
SELECT * FROM verify_balances();
-- the whole days of a period come from channel_day, which the posting core
-- keeps per UTC day, channel and currency: W-1 and T-1 where they were
-- placed, W-2 placed and cancelled (nothing left), W-0 40 days ago, the
-- returns today (under web, which sold the goods)
SELECT day - (now() AT TIME ZONE 'UTC')::date AS day_from_today, channel, currency,
       sum(orders) AS orders, sum(purchased) AS purchased, sum(returned) AS returned
FROM channel_day GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- the report equals the plain reading of the ledger for periods that start
-- and end at any hour (whole days from the summary, the ends from the
-- ledger) and for periods inside one day
CREATE FUNCTION pg_temp.ledger_report(f timestamptz, t timestamptz)
RETURNS TABLE (channel text, orders bigint, revenue bigint, returned bigint) LANGUAGE sql AS $$
    WITH placed AS (
        SELECT l.channel AS ch, l.currency AS cur, count(*) AS n, sum(l.revenue_delta)::bigint AS purchased
        FROM customer_account.ledger l
        WHERE l.entry_type = 'order' AND l.event_at >= f AND l.event_at < t
          AND NOT EXISTS (SELECT 1 FROM customer_account.ledger c WHERE c.entry_type = 'cancel' AND c.order_no = l.order_no)
        GROUP BY 1, 2
    ), back AS (
        SELECT l.channel AS ch, l.currency AS cur, sum(l.returned_delta)::bigint AS value
        FROM customer_account.ledger l
        WHERE l.entry_type = 'return' AND l.event_at >= f AND l.event_at < t
        GROUP BY 1, 2
    )
    SELECT ch, coalesce(p.n, 0), coalesce(p.purchased, 0) - coalesce(b.value, 0), coalesce(b.value, 0)
    FROM placed p FULL JOIN back b USING (ch, cur)
$$;
SELECT count(*) AS periods,
       count(*) FILTER (WHERE EXISTS (
           (SELECT channel, orders, customer_account.minor_units(revenue), customer_account.minor_units(returned)
            FROM customer_account.channel_report(w.f, w.t)
            EXCEPT SELECT * FROM pg_temp.ledger_report(w.f, w.t))
           UNION ALL
           (SELECT * FROM pg_temp.ledger_report(w.f, w.t)
            EXCEPT SELECT channel, orders, customer_account.minor_units(revenue), customer_account.minor_units(returned)
            FROM customer_account.channel_report(w.f, w.t)))) AS differing
FROM generate_series(0, 1000, 7) a, generate_series(1, 1100, 97) b,
     LATERAL (SELECT now() - interval '1 hour' * a AS f, now() - interval '1 hour' * (a - b) AS t) w;
-- proof that whole days are read from the summary: a figure changed behind
-- the posting core's back shows in the report, and verify_balances names it
UPDATE channel_day SET orders = orders + 5
WHERE channel = 'till' AND day = ((now() - interval '2 days') AT TIME ZONE 'UTC')::date;
SELECT channel, orders FROM channel_report(now() - interval '30 days', now() + interval '1 hour') WHERE channel = 'till';
SELECT channel, orders FROM channel_report(now() - interval '2 days' - interval '1 hour', now() - interval '2 days' + interval '1 hour');
SELECT customer_id, currency, figure,
       split_part(stored_value, ' ', 1)::date - (now() AT TIME ZONE 'UTC')::date AS day_from_today,
       substr(stored_value, 12) AS stored, substr(recomputed_value, 12) AS recomputed
FROM verify_balances();
UPDATE channel_day SET orders = orders - 5
WHERE channel = 'till' AND day = ((now() - interval '2 days') AT TIME ZONE 'UTC')::date;
SELECT * FROM verify_balances();

------------------------------------------------------------------------------
-- 4. search(query, max_rows): one box for every kind of keyword
------------------------------------------------------------------------------
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('till', 'store', 'EUR');
SELECT register_customer('Anna Schmidt', 'anna.schmidt@example.de', '030/1234567') AS anna \gset
SELECT register_customer('Hanna Schmitz', 'h.schmitz@example.de', '+49 40 7654321') AS hanna \gset
SELECT register_customer('Otto Berger', 'otto@berger.example', '0041 44 5550000') AS otto \gset
SELECT register_customer('Frieda Vogel', 'frieda@example.de', '0891112222') AS frieda \gset
SELECT link_identity(:anna, 'loyalty_card', '1234-5678-9012');
SELECT link_identity(:hanna, 'marketplace', 'ebay:buyer77');
SELECT place_order('WEB-100234', :anna, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT place_order('WEB-100235', :hanna, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT place_order('WEB-2001', :otto, 'web', '[{"sku":"A","qty":2,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT mark_delivered('WEB-2001', now() - interval '1 day');
SELECT return_no FROM accept_return('WEB-2001', 'A', 1, 'till', 'RET-77');
SELECT place_order('WEB-3001', :frieda, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '2 days');
-- Frieda asks to be forgotten: no trace by name, email, phone or her order
SELECT forget_customer(:frieda);

CREATE FUNCTION pg_temp.s(q text, n int DEFAULT 20) RETURNS TABLE (who text, order_no text, channel text, matched_on text)
LANGUAGE sql AS $$
    SELECT coalesce(s.full_name, '#' || s.customer_id), s.order_no, s.channel, s.matched_on
    FROM customer_account.search(q, n) s
$$;
-- order number: exact (any case), then by prefix
SELECT * FROM pg_temp.s('WEB-100234');
SELECT * FROM pg_temp.s('web-100234');
SELECT * FROM pg_temp.s('WEB-1002');
SELECT * FROM pg_temp.s('WEB-1002', 1);
SELECT * FROM pg_temp.s('WEB-1009');
-- return number: the order it belongs to, the channel it came back at
SELECT * FROM pg_temp.s('RET-77');
SELECT * FROM pg_temp.s('ret-77');
-- email: exact, then a part of it
SELECT * FROM pg_temp.s('Anna.Schmidt@Example.de');
SELECT * FROM pg_temp.s('berger.exa');
SELECT * FROM pg_temp.s('anna.s');
SELECT * FROM pg_temp.s('nobody@example.de');
-- phone in any format; a national number reads as +49
SELECT * FROM pg_temp.s('+49 30 1234567');
SELECT * FROM pg_temp.s('030 123 45 67');
SELECT * FROM pg_temp.s('0049-30-1234567');
SELECT * FROM pg_temp.s('040/7654321');
SELECT * FROM pg_temp.s('+41 44 555 00 00');
-- near misses: one digit off, another country
SELECT * FROM pg_temp.s('030 1234568');
SELECT * FROM pg_temp.s('+43 30 1234567');
-- the policy's country code for national numbers
UPDATE policy SET phone_country_code = '41';
SELECT * FROM pg_temp.s('044 555 00 00');
SELECT * FROM pg_temp.s('030 1234567');
UPDATE policy SET phone_country_code = '49';
-- loyalty card with or without separators; marketplace buyer with or without the marketplace
SELECT * FROM pg_temp.s('123456789012');
SELECT * FROM pg_temp.s('1234 5678 9012');
SELECT * FROM pg_temp.s('1234 5678 9013');
SELECT * FROM pg_temp.s('ebay:buyer77');
SELECT * FROM pg_temp.s('BUYER77');
SELECT * FROM pg_temp.s('buyer78');
-- names: typos, any order, best first
SELECT * FROM pg_temp.s('schmit anna');
SELECT * FROM pg_temp.s('Hanna Schmitz');
SELECT * FROM pg_temp.s('berger');
SELECT * FROM pg_temp.s('zzyzx');
-- ranking: an exact order number before its prefixes; a part of an email
-- (Hanna's h.schmitz@...) before a similar name (Anna Schmidt); max_rows cuts
SELECT place_order('WEB-10', :otto, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT * FROM pg_temp.s('WEB-10');
SELECT * FROM pg_temp.s('WEB-10', 2);
SELECT * FROM pg_temp.s('schmitz');
SELECT * FROM pg_temp.s('schmitz', 1);
-- forgotten: her name, email, phone and order find nothing
SELECT * FROM pg_temp.s('Frieda Vogel');
SELECT * FROM pg_temp.s('frieda@example.de');
SELECT * FROM pg_temp.s('089 1112222');
SELECT * FROM pg_temp.s('WEB-3001');
-- a merged duplicate is found as the survivor
SELECT register_customer('Anne Schmidt', 'anne.dup@example.de', '030 9999999') AS dup \gset
SELECT merge_customers(:anna, :dup);
SELECT * FROM pg_temp.s('030 9999999');
SELECT * FROM pg_temp.s('anne.dup@example.de');
SELECT * FROM pg_temp.s('Anne Schmidt');
-- under two characters, blank, NULL: no rows; LIKE wildcards are literal
SELECT count(*) FROM search('a');
SELECT count(*) FROM search('  a ');
SELECT count(*) FROM search(NULL);
SELECT count(*) FROM search('%%');
SELECT count(*) FROM search('WEB_');
-- order-number prefixes are an index range [q, prefix_end(q)) in byte
-- order, read in that order: wildcards and the last character of any
-- alphabet are literal; a prefix ending in the highest character has no end
SELECT label, prefix_end(p) = e AS end_as_expected,
       p || 'x' >= p COLLATE "C" AND p || 'x' < prefix_end(p) COLLATE "C" AS p_x_inside
FROM (VALUES ('WEB-10', 'WEB-10', 'WEB-11'), ('Z9', 'Z9', 'Z:'), ('a%', 'a%', 'a&'), ('WEB_', 'WEB_', 'WEB`'),
             ('ÄÖ', 'ÄÖ', 'Ä×'), ('x + U+10FFFF', 'x' || chr(1114111), 'y'),
             ('x + U+D7FF (then no surrogates)', 'x' || chr(55295), 'x' || chr(57344))) v(label, p, e);
SELECT prefix_end(chr(1114111)) IS NULL AS no_end, prefix_end('') IS NULL AS empty_no_end;
SELECT place_order('WEB_7', :otto, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT place_order('WEB%8', :otto, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT place_order('ÄRGER-1', :otto, 'web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT * FROM pg_temp.s('WEB_');
SELECT * FROM pg_temp.s('WEB%');
SELECT * FROM pg_temp.s('ärger');
SELECT * FROM pg_temp.s('ÄRG');
-- max_rows out of range: 22023
SELECT pg_temp.try($$SELECT * FROM customer_account.search('anna', 0)$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.search('anna', NULL)$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.search('anna', 100000)$$);
