--
-- Loyalty: earning per channel kind and SKU category with the floor per
-- line, multipliers and tiers, pending -> available -> expired (at read
-- time and booked), redemption, cancellations and returns taking back
-- exactly what was earned, the reactivation credit (granted and refused
-- for each condition), merge, the finance view and the history in German
-- and English.  Every date is fixed (in the past), so that the output does
-- not depend on the day the test runs; what happens "now" is shown without
-- its timestamp.
--
SET search_path = customer_account, public;
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- the lots of some orders: what each line earned, by which rule, and its dates
CREATE FUNCTION pg_temp.lots(pattern text) RETURNS TABLE (order_no text, line int, rule text, points bigint,
    remaining bigint, mults text[], factor numeric, tier text, available date, expires date)
LANGUAGE sql AS $$
    SELECT l.order_no, l.line_no, l.rule_code, l.points, l.remaining, l.multipliers, l.factor, l.tier,
           l.available_at::date, l.expires_at::date
    FROM customer_account.loyalty_lot l WHERE l.order_no LIKE pattern ORDER BY l.order_no, l.line_no
$$;

-- the history, with "now" for what was booked during the test run
CREATE FUNCTION pg_temp.hist(id bigint) RETURNS TABLE (at text, kind text, points bigint, amount currency_amount,
    order_no text, reason_code text, reason text)
LANGUAGE sql AS $$
    SELECT CASE WHEN h.at > now() - interval '1 hour' THEN 'now' ELSE h.at::date::text END,
           h.kind, h.points, h.amount, h.order_no, h.reason_code, h.reason
    FROM customer_account.loyalty_history(id) h
$$;

CREATE FUNCTION pg_temp.pts(id bigint, at timestamptz DEFAULT now()) RETURNS text LANGUAGE sql AS $$
    SELECT format('available=%s pending=%s expiring=%s at %s', p.available, p.pending, p.expiring_next,
                  coalesce(p.expiring_at::date::text, '-'))
    FROM customer_account.loyalty_points(id, at) p
$$;

-- a fingerprint of the points books, to prove failures change nothing
CREATE FUNCTION pg_temp.books() RETURNS text LANGUAGE sql AS $$
    SELECT format('lots=%s remaining=%s entries=%s uses=%s credit=%s',
        (SELECT count(*) FROM customer_account.loyalty_lot),
        (SELECT coalesce(sum(remaining), 0) FROM customer_account.loyalty_lot),
        (SELECT count(*) FROM customer_account.loyalty_entry),
        (SELECT count(*) FROM customer_account.loyalty_lot_use),
        (SELECT coalesce(sum(store_credit), 0) FROM customer_account.account_state))
$$;

SELECT add_channel('web-de', 'webshop', 'EUR');
SELECT add_channel('app-de', 'app', 'EUR', 14);
SELECT add_channel('store-berlin', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF', 14);

------------------------------------------------------------------------------
-- configuration: the functions write rows; bad input is refused
------------------------------------------------------------------------------
-- before any terms: orders earn nothing, and nothing can be redeemed
SELECT register_customer('Nina Nobody', 'nina@example.com', NULL, 'en', '2020-01-01') AS nina \gset
SELECT place_order('N-1', :nina, 'web-de', '[{"sku":"SHOE","qty":1,"unit_price":"50.00 EUR"}]', 'credit_card', '2025-01-05');
SELECT count(*) AS lots_without_terms FROM loyalty_lot;
SELECT pg_temp.try(format('SELECT customer_account.redeem_points(%s, 1, %L)', :nina, 'web-de'));

SELECT set_loyalty_terms('EUR', '0.01 EUR', 36500);
SELECT set_loyalty_terms('EUR', '0.01 EUR');                 -- replaces the row
SELECT set_loyalty_terms('eur', '0.01 EUR', 36500);          -- and again
SELECT currency, point_value, expiry_days, pending_days FROM loyalty_terms;
SELECT pg_temp.try($$SELECT customer_account.set_loyalty_terms('XYZ', '0.01 EUR')$$);
SELECT pg_temp.try($$SELECT customer_account.set_loyalty_terms('EUR', '0.01 CHF')$$);
SELECT pg_temp.try($$SELECT customer_account.set_loyalty_terms('EUR', '0.00 EUR')$$);
SELECT pg_temp.try($$SELECT customer_account.set_loyalty_terms('EUR', '0.01 EUR', 0)$$);
SELECT pg_temp.try($$SELECT customer_account.set_loyalty_terms('EUR', '0.01 EUR', 730, -1)$$);

-- earn rules: a base rate, per channel kind, per SKU category; gift cards earn nothing
SELECT add_earn_rule('base', 1);
SELECT add_earn_rule('app', 1.5, 'app');
SELECT add_earn_rule('store', 2, 'store');
SELECT add_earn_rule('gift-cards', 0, NULL, 'GC-%');
SELECT add_earn_rule('sale-web', 0.5, 'webshop', 'SALE-%');
SELECT add_earn_rule('sale', 0.25, NULL, 'SALE-%');
SELECT add_earn_rule('base', 1);                             -- same again: nothing happens
SELECT pg_temp.try($$SELECT customer_account.add_earn_rule('base', 2)$$);
SELECT pg_temp.try($$SELECT customer_account.add_earn_rule('minus', -1)$$);
SELECT pg_temp.try($$SELECT customer_account.add_earn_rule('empty', 1, NULL, NULL, '2025-02-01', '2025-01-01')$$);
SELECT pg_temp.try($$SELECT customer_account.add_points_multiplier('zero', 0)$$);
SELECT pg_temp.try($$SELECT customer_account.add_loyalty_tier('gold', 'EUR', '100.00 CHF')$$);
SELECT pg_temp.try($$SELECT customer_account.add_reactivation_rule('both', 'webshop', 180, 'store', 3, 365, '10.00 EUR', 10)$$);
SELECT pg_temp.try($$SELECT customer_account.add_reactivation_rule('neither', 'webshop', 180, 'store', 3, 365)$$);
SELECT pg_temp.try($$SELECT customer_account.add_reactivation_rule('capped', 'webshop', 180, 'store', 3, 365, '10.00 EUR', NULL, '5.00 EUR')$$);
SELECT pg_temp.try($$SELECT customer_account.add_reactivation_rule('pct', 'webshop', 180, 'store', 3, 365, NULL, 150)$$);

------------------------------------------------------------------------------
-- earning per channel kind and category, floored per line
------------------------------------------------------------------------------
SELECT register_customer('Anna Schmidt', 'anna@example.de', NULL, 'de', '2020-01-01') AS anna \gset
-- 89.90 EUR at 1 point per EUR earns 89; a gift card nothing; 3 x 9.99 on sale
-- in the web shop (0.5 per EUR, most specific rule) earns floor(14.985) = 14,
-- per line, not 3 x floor(4.995) = 12
SELECT place_order('A-WEB', :anna, 'web-de',
    '[{"sku":"SHOE","qty":1,"unit_price":"89.90 EUR"},{"sku":"GC-50","qty":1,"unit_price":"50.00 EUR"},
      {"sku":"SALE-SOCK","qty":3,"unit_price":"9.99 EUR"}]', 'credit_card', '2025-03-01 10:00');
-- the app earns 1.5 per EUR: 134.85 -> 134; on sale outside the web shop 0.25 per EUR
SELECT place_order('A-APP', :anna, 'app-de',
    '[{"sku":"SHOE","qty":1,"unit_price":"89.90 EUR"},{"sku":"SALE-SOCK","qty":3,"unit_price":"9.99 EUR"}]',
    'credit_card', '2025-03-02 10:00');
-- the till earns 2 per EUR: 179.8 -> 179
SELECT place_order('A-POS', :anna, 'store-berlin', '[{"sku":"SHOE","qty":1,"unit_price":"89.90 EUR"}]', 'cash',
    '2025-03-03 10:00');
-- a marketplace order through the shop's own INSERTs earns like any other (base rate)
BEGIN;
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('A-EBAY', :anna, 'ebay', 'marketplace', '45.50 EUR', '2025-03-04 10:00');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price) VALUES ('A-EBAY', 1, 'BAG', 1, '25.50 EUR');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price) VALUES ('A-EBAY', 2, 'GC-20', 1, '20.00 EUR');
COMMIT;
SELECT * FROM pg_temp.lots('A-%');
-- the store order is handed over at the till: available 30 days later; the others stay pending until delivery
SELECT pg_temp.pts(:anna, '2025-04-15');

-- a retried order and a delivery reported twice credit once
SELECT place_order('A-WEB', :anna, 'web-de',
    '[{"sku":"SHOE","qty":1,"unit_price":"89.90 EUR"},{"sku":"GC-50","qty":1,"unit_price":"50.00 EUR"},
      {"sku":"SALE-SOCK","qty":3,"unit_price":"9.99 EUR"}]', 'credit_card', '2025-03-01 10:00') AS retried;
SELECT mark_delivered('A-WEB', '2025-03-03 12:00');
SELECT mark_delivered('A-WEB', '2025-03-03 12:00');
SELECT order_no, count(*) AS lots, sum(points) AS points FROM loyalty_lot WHERE order_no = 'A-WEB' GROUP BY 1;
SELECT count(*) AS earn_entries FROM loyalty_entry WHERE order_no = 'A-WEB';
SELECT order_no, available_at::date, expires_at::date FROM loyalty_lot WHERE order_no = 'A-WEB' AND line_no = 1;

-- store credit pays for an order anywhere, and the part paid with it earns nothing
SELECT record_payment('A-PAY', :anna, '40.00 EUR', 'bank_transfer', 'web-de', NULL, '2025-03-05');
SELECT store_credit FROM balance(:anna);
SELECT place_order('A-CREDIT', :anna, 'store-berlin', '[{"sku":"CAP","qty":1,"unit_price":"30.00 EUR"}]',
    'store_credit', '2025-03-06 10:00');
SELECT * FROM pg_temp.lots('A-CREDIT');
SELECT store_credit FROM balance(:anna);
-- no tiers are configured yet: balance() shows no tier
SELECT currency, loyalty_tier FROM balance(:anna);

------------------------------------------------------------------------------
-- multipliers: inside and outside their period, per SKU, per tier; factors multiply
------------------------------------------------------------------------------
SELECT add_points_multiplier('spring-days', 2, NULL, NULL, NULL, '2025-04-01', '2025-04-04');
SELECT add_points_multiplier('boost-web', 3, NULL, 'webshop', 'BOOST-%');
SELECT register_customer('Bob Baker', 'bob@example.com', NULL, 'en', '2020-01-01') AS bob \gset
SELECT place_order('B-1', :bob, 'web-de', '[{"sku":"TOY","qty":1,"unit_price":"10.50 EUR"}]', 'credit_card', '2025-04-02 10:00');
SELECT place_order('B-2', :bob, 'web-de', '[{"sku":"TOY","qty":1,"unit_price":"10.50 EUR"}]', 'credit_card', '2025-04-04 10:00');
SELECT place_order('B-3', :bob, 'web-de', '[{"sku":"BOOST-1","qty":1,"unit_price":"10.50 EUR"}]', 'credit_card', '2025-04-03 10:00');
SELECT place_order('B-4', :bob, 'app-de', '[{"sku":"BOOST-1","qty":1,"unit_price":"10.50 EUR"}]', 'credit_card', '2025-04-10 10:00');
SELECT * FROM pg_temp.lots('B-%');

-- tiers on the rolling 12-month revenue; a tier multiplier uses the tier just before the order
SELECT add_loyalty_tier('basic', 'EUR', '0.00 EUR');
SELECT add_loyalty_tier('silver', 'EUR', '500.00 EUR');
SELECT add_loyalty_tier('gold', 'EUR', '1000.00 EUR');
SELECT add_loyalty_tier('gold', 'EUR', '1000.00 EUR');      -- same again: nothing happens
SELECT pg_temp.try($$SELECT customer_account.add_loyalty_tier('gold', 'EUR', '900.00 EUR')$$);
SELECT add_points_multiplier('gold-bonus', 1.5, 'gold');
SELECT register_customer('Clara Gold', 'clara@example.com', NULL, 'en', '2020-01-01') AS clara \gset
SELECT place_order('C-1', :clara, 'web-de', '[{"sku":"SOFA","qty":1,"unit_price":"1200.00 EUR"}]', 'credit_card', '2025-05-10 10:00');
SELECT place_order('C-2', :clara, 'web-de', '[{"sku":"LAMP","qty":1,"unit_price":"100.00 EUR"}]', 'credit_card', '2025-05-20 10:00');
SELECT * FROM pg_temp.lots('C-%');
-- the tier rises with the revenue and falls when it leaves the 12 months (or is cancelled)
SELECT '2025-05-01' AS as_of, loyalty_tier FROM balance(:clara, '2025-05-01')
UNION ALL SELECT '2025-05-15', loyalty_tier FROM balance(:clara, '2025-05-15')
UNION ALL SELECT '2026-05-15', loyalty_tier FROM balance(:clara, '2026-05-15')
UNION ALL SELECT '2026-07-01', loyalty_tier FROM balance(:clara, '2026-07-01');
SELECT place_order('C-3', :clara, 'web-de', '[{"sku":"RUG","qty":1,"unit_price":"600.00 EUR"}]', 'credit_card', '2025-06-01 10:00');
SELECT loyalty_tier AS before_cancel FROM balance(:clara, '2025-06-02');
SELECT cancel_order('C-1', '2025-06-05');
SELECT loyalty_tier AS after_cancel FROM balance(:clara, '2025-06-06');

------------------------------------------------------------------------------
-- pending -> available -> expired, at read time and booked by expire_points()
------------------------------------------------------------------------------
-- lots keep the terms they were credited under: this customer's points live 365 days
SELECT set_loyalty_terms('EUR', '0.01 EUR', 365);
SELECT register_customer('Carl Clock', 'carl@example.com', NULL, 'en', '2020-01-01') AS carl \gset
SELECT place_order('K-1', :carl, 'web-de', '[{"sku":"WATCH","qty":1,"unit_price":"100.00 EUR"}]', 'credit_card', '2024-01-10 10:00');
SELECT place_order('K-2', :carl, 'web-de', '[{"sku":"STRAP","qty":1,"unit_price":"20.00 EUR"}]', 'credit_card', '2024-03-01 10:00');
SELECT pg_temp.pts(:carl, '2024-01-09');                     -- nothing placed yet
SELECT pg_temp.pts(:carl, '2024-01-20');                     -- pending: not delivered
SELECT mark_delivered('K-1', '2024-01-12 10:00');
SELECT pg_temp.pts(:carl, '2024-02-01');                     -- pending: the 30-day return window runs
SELECT pg_temp.pts(:carl, '2024-02-12');                     -- available, expiring 365 days later
SELECT pg_temp.pts(:carl, '2025-02-10');
SELECT pg_temp.pts(:carl, '2025-02-12');                     -- expired at read time; K-2 never delivered
SELECT pg_temp.pts(:carl);
SELECT expire_points('2025-01-01') AS booked_too_early;
SELECT expire_points('2025-03-01') AS booked;
SELECT expire_points('2025-03-01') AS booked_again;
SELECT expire_points() AS booked_now;
SELECT pg_temp.try($$SELECT customer_account.expire_points('2100-01-01')$$);
-- a reading of the past is unchanged by the booking
SELECT pg_temp.pts(:carl, '2024-06-01');
SELECT * FROM pg_temp.hist(:carl);
SELECT set_loyalty_terms('EUR', '0.01 EUR', 36500);

------------------------------------------------------------------------------
-- redemption: soonest expiry first, rounded down, refusals change nothing
------------------------------------------------------------------------------
SELECT register_customer('Dora Spender', 'dora@example.com', NULL, 'en', '2020-01-01') AS dora \gset
SELECT place_order('D-1', :dora, 'web-de', '[{"sku":"BIKE","qty":1,"unit_price":"500.00 EUR"}]', 'credit_card', '2025-02-01 10:00');
SELECT place_order('D-2', :dora, 'web-de', '[{"sku":"HELMET","qty":1,"unit_price":"100.00 EUR"}]', 'credit_card', '2025-01-01 10:00');
SELECT place_order('D-3', :dora, 'web-de', '[{"sku":"BELL","qty":1,"unit_price":"50.00 EUR"}]', 'credit_card', '2025-03-01 10:00');
SELECT mark_delivered('D-1', '2025-02-02');
SELECT mark_delivered('D-2', '2025-01-02');
SELECT pg_temp.pts(:dora);
SELECT redeem_points(:dora, 150, 'web-de');                  -- D-2 expires first: all 100 of it, then 50 of D-1
SELECT * FROM pg_temp.lots('D-%');
SELECT e.kind, u.points, l.order_no FROM loyalty_lot_use u JOIN loyalty_entry e USING (entry_id)
JOIN loyalty_lot l USING (lot_id) WHERE e.customer_id = :dora AND e.kind = 'redeem' ORDER BY l.expires_at;
SELECT store_credit, balance FROM balance(:dora);
-- a DBA sets half a cent per point: 233 points are worth 1.165 EUR, credited 1.16 EUR
UPDATE loyalty_terms SET point_value = 0.005 WHERE currency = 'EUR';
SELECT redeem_points(:dora, 233, 'web-de');
UPDATE loyalty_terms SET point_value = 0.01 WHERE currency = 'EUR';
SELECT pg_temp.pts(:dora);
SELECT pg_temp.books() AS before_refusals \gset
SELECT pg_temp.try(format('SELECT customer_account.redeem_points(%s, 1000, %L)', :dora, 'web-de'));
SELECT pg_temp.try(format('SELECT customer_account.redeem_points(%s, 0, %L)', :dora, 'web-de'));
SELECT pg_temp.try(format('SELECT customer_account.redeem_points(%s, -5, %L)', :dora, 'web-de'));
SELECT pg_temp.try($$SELECT customer_account.redeem_points(424242, 10, 'web-de')$$);
SELECT pg_temp.try(format('SELECT customer_account.redeem_points(%s, 10, %L)', :dora, 'web-ch'));
SELECT pg_temp.try(format('SELECT customer_account.redeem_points(%s, 10, %L)', :dora, 'nowhere'));
SELECT pg_temp.try($$SELECT * FROM customer_account.loyalty_points(424242)$$);
SELECT pg_temp.try($$SELECT * FROM customer_account.loyalty_history(424242)$$);
SELECT pg_temp.books() = :'before_refusals' AS refusals_changed_nothing;
-- the pending points of an undelivered order cannot be spent
SELECT pg_temp.try(format('SELECT customer_account.redeem_points(%s, %s, %L)', :dora,
    (SELECT available + 1 FROM loyalty_points(:dora)), 'web-de'));
-- with terms in CHF the same points are spent in a CHF channel
SELECT set_loyalty_terms('CHF', '0.01 CHF');
SELECT redeem_points(:dora, 100, 'web-ch');
SELECT currency, store_credit FROM balance(:dora) ORDER BY currency;
SELECT * FROM pg_temp.hist(:dora);

------------------------------------------------------------------------------
-- cancellations and returns take back exactly what was earned
------------------------------------------------------------------------------
SELECT register_customer('Eva Return', 'eva@example.com', NULL, 'de', '2020-01-01') AS eva \gset
SELECT place_order('E-1', :eva, 'web-de',
    '[{"sku":"COAT","qty":1,"unit_price":"199.99 EUR"},{"sku":"SCARF","qty":2,"unit_price":"15.50 EUR"}]',
    'credit_card', '2025-06-01 10:00');
SELECT place_order('E-2', :eva, 'web-de', '[{"sku":"SHIRT","qty":3,"unit_price":"33.40 EUR"}]', 'credit_card', '2025-06-02 10:00');
SELECT pg_temp.pts(:eva, '2025-06-10');
SELECT cancel_order('E-1', '2025-06-03');
SELECT * FROM pg_temp.lots('E-%');
SELECT pg_temp.pts(:eva, '2025-06-10');
-- returning 1 of 3 shirts (100 points) takes back floor(100 / 3) = 33, again 33, the last one 34
SELECT mark_delivered('E-2', '2025-06-04');
SELECT loyalty_reverse_return(:eva, 'E-2', 1, 1, '2025-06-10') AS first_shirt;
SELECT loyalty_reverse_return(:eva, 'E-2', 1, 1, '2025-06-11') AS second_shirt;
SELECT loyalty_reverse_return(:eva, 'E-2', 1, 1, '2025-06-12') AS last_shirt;
SELECT loyalty_reverse_return(:eva, 'E-2', 1, 1, '2025-06-13') AS nothing_left;
SELECT * FROM pg_temp.lots('E-2');
-- points already spent: the return takes them from the customer's other points, pending first
SELECT place_order('E-3', :eva, 'store-berlin', '[{"sku":"BOOTS","qty":2,"unit_price":"50.00 EUR"}]', 'cash', '2025-07-01 10:00');
SELECT place_order('E-4', :eva, 'web-de', '[{"sku":"GLOVES","qty":1,"unit_price":"30.00 EUR"}]', 'credit_card', '2025-07-02 10:00');
SELECT redeem_points(:eva, 150, 'store-berlin');             -- E-3 (200 points) is available since 2025-07-31
SELECT loyalty_reverse_return(:eva, 'E-3', 1, 2) AS both_boots;
SELECT * FROM pg_temp.lots('E-%');
-- the other line of the same order is one of those other points
SELECT place_order('E-5', :eva, 'web-de', '[{"sku":"HAT","qty":1,"unit_price":"40.00 EUR"},{"sku":"BELT","qty":1,"unit_price":"60.00 EUR"}]',
    'credit_card', '2025-08-01 10:00');
SELECT mark_delivered('E-5', '2025-08-01 12:00');
SELECT redeem_points(:eva, 80, 'web-de');                    -- the hat's 40, then 40 of the belt's 60
SELECT loyalty_reverse_return(:eva, 'E-5', 1, 1) AS hat_returned;
SELECT * FROM pg_temp.lots('E-5');
-- a return by SKU (as accept_return() sees it) spreads over the order's lines of that SKU in line order
SELECT place_order('E-6', :eva, 'web-de', '[{"sku":"SOCK","qty":1,"unit_price":"10.00 EUR"},{"sku":"TIE","qty":1,"unit_price":"5.00 EUR"},
    {"sku":"SOCK","qty":2,"unit_price":"10.00 EUR"}]', 'credit_card', '2025-08-05 10:00');
SELECT mark_delivered('E-6', '2025-08-06');
SELECT loyalty_reverse_return_sku(:eva, 'E-6', 'SOCK', 2, '2025-08-10') AS two_socks;
SELECT order_no, line_no, points, remaining, returned_qty, reversed FROM loyalty_lot WHERE order_no = 'E-6' ORDER BY line_no;
SELECT kind, points, order_no, reason_code, unrecovered FROM loyalty_entry WHERE customer_id = :eva ORDER BY entry_id;
SELECT * FROM pg_temp.hist(:eva);

------------------------------------------------------------------------------
-- the reactivation credit: the store regular who comes back to the web shop
------------------------------------------------------------------------------
SELECT add_reactivation_rule('welcome-back', 'webshop', 180, 'store', 3, 365, '10.00 EUR');
SELECT add_reactivation_rule('app-comeback', 'app', 90, 'store', 2, 180, NULL, 10, '15.00 EUR', 30);
SELECT add_reactivation_rule('welcome-back', 'webshop', 180, 'store', 3, 365, '10.00 EUR');  -- same: nothing
SELECT pg_temp.try($$SELECT customer_account.add_reactivation_rule('welcome-back', 'webshop', 90, 'store', 3, 365, '10.00 EUR')$$);
CREATE FUNCTION pg_temp.credits(id bigint) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s %s %s', e.order_no, e.amount, e.reason_code), '; ' ORDER BY e.entry_id), 'none')
    FROM customer_account.loyalty_entry e WHERE e.customer_id = id AND e.kind = 'credit'
$$;
-- purchases one after the other: 'order_no channel date [amount]' each
CREATE FUNCTION pg_temp.shop(id bigint, VARIADIC purchases text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p text[];
    b text;
    done text[] := '{}';
BEGIN
    FOREACH b IN ARRAY purchases LOOP
        p := string_to_array(b, ' ');
        PERFORM customer_account.place_order(p[1], id, p[2],
            jsonb_build_array(jsonb_build_object('sku', 'ITEM', 'qty', 1,
                'unit_price', coalesce(p[4] || ' ' || p[5], '20.00 EUR'))),
            CASE WHEN p[2] LIKE 'store%' THEN 'cash' ELSE 'credit_card' END, p[3]::timestamptz);
        done := done || p[1];
    END LOOP;
    RETURN array_to_string(done, ' ');
END $$;
-- every order on a target channel that does not earn the credit says why at DEBUG1
SET client_min_messages = debug1;
-- Frank: web shop in January, three store purchases in summer, back online in September
SELECT register_customer('Frank Regular', 'frank@example.com', NULL, 'de', '2020-01-01') AS frank \gset
SELECT pg_temp.shop(:frank, 'F-1 web-de 2024-01-10', 'F-2 store-berlin 2024-06-01',
    'F-3 store-berlin 2024-07-01', 'F-4 store-berlin 2024-08-01', 'F-5 web-de 2024-09-01');
SELECT pg_temp.credits(:frank) AS granted;
SELECT store_credit, balance FROM balance(:frank);
SELECT topic, channel, payload - 'entry_id' AS payload FROM outbox WHERE topic = 'loyalty' ORDER BY event_id;
-- back again two weeks later: absent too short (and within 365 days of the credit)
SELECT pg_temp.shop(:frank, 'F-6 web-de 2024-09-15');
-- nine months later, after three more store visits: at most once in 365 days
SELECT pg_temp.shop(:frank, 'F-7 store-berlin 2025-01-10', 'F-8 store-berlin 2025-02-10',
    'F-9 store-berlin 2025-03-10', 'F-10 web-de 2025-06-01');
SELECT pg_temp.credits(:frank) AS still_once;
-- more than 365 days after the first credit it is granted again; cancelling that order takes it back
SELECT pg_temp.shop(:frank, 'F-11 web-de 2026-01-10');
SELECT pg_temp.credits(:frank) AS twice;
SELECT cancel_order('F-11', '2026-01-11');
SELECT pg_temp.credits(:frank) AS after_cancel;
SELECT store_credit FROM balance(:frank);
-- Gina never ordered in the web shop before: no credit
SELECT register_customer('Gina Newweb', 'gina@example.com', NULL, 'en', '2020-01-01') AS gina \gset
SELECT pg_temp.shop(:gina, 'G-1 store-berlin 2024-06-01', 'G-2 store-berlin 2024-07-01',
    'G-3 store-berlin 2024-08-01', 'G-4 web-de 2024-09-01');
SELECT pg_temp.credits(:gina) AS never_ordered_there;
-- Hans bought only twice in the stores
SELECT register_customer('Hans Twice', 'hans@example.com', NULL, 'en', '2020-01-01') AS hans \gset
SELECT pg_temp.shop(:hans, 'H-1 web-de 2024-01-10', 'H-2 store-berlin 2024-06-01',
    'H-3 store-berlin 2024-07-01', 'H-4 web-de 2024-09-01');
SELECT pg_temp.credits(:hans) AS too_few_store_purchases;
-- Olga came back after four months: too soon
SELECT register_customer('Olga Soon', 'olga@example.com', NULL, 'en', '2020-01-01') AS olga \gset
SELECT pg_temp.shop(:olga, 'O-1 web-de 2024-05-01', 'O-2 store-berlin 2024-06-01',
    'O-3 store-berlin 2024-07-01', 'O-4 store-berlin 2024-08-01', 'O-5 web-de 2024-09-01');
SELECT pg_temp.credits(:olga) AS absent_too_short;
-- Ida's third store purchase was cancelled: it does not count
SELECT register_customer('Ida Cancel', 'ida@example.com', NULL, 'en', '2020-01-01') AS ida \gset
SELECT pg_temp.shop(:ida, 'I-1 web-de 2024-01-10', 'I-2 store-berlin 2024-06-01',
    'I-3 store-berlin 2024-07-01', 'I-4 store-berlin 2024-08-01');
SELECT cancel_order('I-4', '2024-08-02');
SELECT pg_temp.shop(:ida, 'I-5 web-de 2024-09-01');
SELECT pg_temp.credits(:ida) AS cancelled_store_purchase;
-- Jana's last web order was cancelled: the one before it counts, so she was away long enough;
-- she spends 6.00 of the credit, then cancels the order that earned it: 4.00 can be taken back
SELECT register_customer('Jana Away', 'jana@example.com', NULL, 'en', '2020-01-01') AS jana \gset
SELECT pg_temp.shop(:jana, 'J-1 web-de 2024-01-10', 'J-2 web-de 2024-05-10');
SELECT cancel_order('J-2', '2024-05-11');
SELECT pg_temp.shop(:jana, 'J-3 store-berlin 2024-06-01', 'J-4 store-berlin 2024-07-01',
    'J-5 store-berlin 2024-08-01', 'J-6 web-de 2024-09-01');
SELECT pg_temp.credits(:jana) AS cancelled_web_order_ignored;
SELECT place_order('J-7', :jana, 'web-de', '[{"sku":"PEN","qty":1,"unit_price":"6.00 EUR"}]', 'store_credit', '2024-09-02');
SELECT * FROM pg_temp.lots('J-7');
SELECT cancel_order('J-6', '2024-09-03');
SELECT pg_temp.credits(:jana) AS partly_taken_back;
SELECT kind, amount, reason_code, unrecovered FROM loyalty_entry WHERE customer_id = :jana AND kind = 'credit' ORDER BY entry_id;
SELECT store_credit FROM balance(:jana);
-- the percentage variant, capped: 10 % of 80.00 and of 300.00 (capped at 15.00)
SELECT register_customer('Kai App', 'kai@example.com', NULL, 'en', '2020-01-01') AS kai \gset
SELECT pg_temp.shop(:kai, 'KA-1 app-de 2024-01-10', 'KA-2 store-berlin 2024-05-01',
    'KA-3 store-berlin 2024-06-01', 'KA-4 app-de 2024-07-01 80.00 EUR', 'KA-5 store-berlin 2024-08-01',
    'KA-6 store-berlin 2024-09-01', 'KA-7 app-de 2024-12-01 300.00 EUR');
SELECT pg_temp.credits(:kai) AS percent_and_cap;
-- a rule with a credit in another currency does not apply to a CHF order
SELECT register_customer('Lars Swiss', 'lars@example.com', NULL, 'en', '2020-01-01') AS lars \gset
SELECT pg_temp.shop(:lars, 'L-1 web-ch 2024-01-10 20.00 CHF', 'L-2 store-berlin 2024-06-01',
    'L-3 store-berlin 2024-07-01', 'L-4 store-berlin 2024-08-01', 'L-5 web-ch 2024-09-01 20.00 CHF');
SELECT pg_temp.credits(:lars) AS other_currency;
SELECT currency, loyalty_tier FROM balance(:lars) ORDER BY currency;   -- no tiers in CHF
RESET client_min_messages;
SELECT * FROM pg_temp.hist(:frank);

-- the books agree: points ledger, lots and totals; money ledger and accounts
SELECT * FROM verify_loyalty();
SELECT * FROM verify_balances();

------------------------------------------------------------------------------
-- a policy change is seen at once (the cache notices DBA edits)
------------------------------------------------------------------------------
UPDATE loyalty_earn_rule SET points_per_unit = 5 WHERE code = 'base';
SELECT place_order('N-2', :nina, 'web-de', '[{"sku":"SHOE","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', '2025-01-06');
DELETE FROM loyalty_earn_rule WHERE code = 'base';
SELECT place_order('N-3', :nina, 'web-de', '[{"sku":"SHOE","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', '2025-01-07');
SELECT * FROM pg_temp.lots('N-%');
SELECT add_earn_rule('base', 1);

------------------------------------------------------------------------------
-- merge: lots and history move to the survivor with their dates
------------------------------------------------------------------------------
SELECT register_customer('Mia Main', 'mia@example.com', NULL, 'en', '2020-01-01') AS mia \gset
SELECT register_customer('M. Main', NULL, NULL, 'en', '2021-01-01') AS mia2 \gset
SELECT place_order('M-1', :mia, 'store-berlin', '[{"sku":"TEA","qty":1,"unit_price":"10.00 EUR"}]', 'cash', '2025-01-10');
SELECT place_order('M-2', :mia2, 'store-berlin', '[{"sku":"CUP","qty":1,"unit_price":"20.00 EUR"}]', 'cash', '2025-02-10');
SELECT place_order('M-3', :mia2, 'web-de', '[{"sku":"POT","qty":1,"unit_price":"30.00 EUR"}]', 'credit_card', '2025-03-10');
SELECT pg_temp.pts(:mia, '2025-04-01') AS survivor, pg_temp.pts(:mia2, '2025-04-01') AS duplicate;
SELECT merge_customers(:mia, :mia2);
SELECT pg_temp.pts(:mia, '2025-04-01') AS merged;
SELECT l.customer_id = :mia AS survivor_owns, l.order_no, l.points, l.available_at::date, l.expires_at::date
FROM loyalty_lot l WHERE l.order_no LIKE 'M-%' ORDER BY l.order_no;
SELECT * FROM pg_temp.hist(:mia);
SELECT pg_temp.try(format('SELECT * FROM customer_account.loyalty_points(%s)', :mia2));
SELECT points, earned FROM loyalty_account WHERE customer_id IN (:mia, :mia2) ORDER BY customer_id;
SELECT * FROM verify_loyalty();

------------------------------------------------------------------------------
-- the finance view and the call center's history in both languages
------------------------------------------------------------------------------
SELECT * FROM loyalty_liability('2024-03-01');
SELECT * FROM loyalty_liability('2025-01-01');             -- Carl's 100 points expire within 90 days
SELECT * FROM loyalty_liability('2025-01-20');             -- and within 30
SELECT * FROM loyalty_liability('2025-04-15');
SELECT * FROM loyalty_liability();
-- the finance view agrees with every customer's own reading, then and now
SELECT CASE WHEN x.as_of > now() - interval '1 hour' THEN 'now' ELSE x.as_of::date::text END AS as_of,
       x.l = x.c AS agrees FROM (
    SELECT a.as_of,
           (SELECT (sum(pending), sum(available)) FROM loyalty_liability(a.as_of)) AS l,
           (SELECT (sum(p.pending), sum(p.available)) FROM customer c, LATERAL loyalty_points(c.customer_id, a.as_of) p
            WHERE c.merged_into IS NULL) AS c
    FROM (VALUES ('2024-03-01'::timestamptz), ('2025-01-20'), ('2025-04-15'), (now())) a(as_of)) x
ORDER BY x.as_of;
SELECT * FROM pg_temp.hist(:anna);
SELECT * FROM pg_temp.hist(:bob);

-- the history is append-only
SELECT pg_temp.try($$DELETE FROM customer_account.loyalty_entry$$);
SELECT pg_temp.try($$TRUNCATE customer_account.loyalty_lot_use$$);
SELECT * FROM verify_loyalty();

------------------------------------------------------------------------------
-- a return at a till takes back what the returned units earned
------------------------------------------------------------------------------
SELECT register_customer('Rita Return', 'rita@example.com', NULL, 'en', '2020-01-01') AS rita \gset
SELECT place_order('RR-1', :rita, 'web-de', '[{"sku":"SHIRT","qty":2,"unit_price":"25.00 EUR"}]', 'credit_card',
                   now() - interval '3 days');
SELECT mark_delivered('RR-1', now() - interval '2 days');
SELECT available, pending FROM loyalty_points(:rita);
SELECT action, refund, reason_code FROM accept_return('RR-1', 'SHIRT', 1, 'store-berlin');
SELECT available, pending FROM loyalty_points(:rita);
SELECT kind, points, order_no FROM loyalty_history(:rita) ORDER BY at, kind;
SELECT action, refund, reason_code FROM accept_return('RR-1', 'SHIRT', 1, 'store-berlin');
SELECT available, pending FROM loyalty_points(:rita);
SELECT * FROM verify_loyalty();
SELECT * FROM verify_balances();

------------------------------------------------------------------------------
-- one statement with more lines than fit in work_mem (the transition table
-- spills to disk) and more than one crediting chunk: every line earns once
------------------------------------------------------------------------------
SELECT register_customer('Lars Large', 'lars.large@example.com', NULL, 'en', '2020-01-01') AS lars \gset
SET work_mem = '64kB';
BEGIN;
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('BIG-1', :lars, 'web-de', 'credit_card', '2500.00 EUR', now() - interval '1 day');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price)
SELECT 'BIG-1', g, 'BULK-' || g, 1, '1.00 EUR' FROM generate_series(1, 2500) g;
COMMIT;
RESET work_mem;
SELECT available, pending FROM loyalty_points(:lars);
SELECT count(*) AS lots, sum(points) AS points FROM loyalty_lot WHERE order_no = 'BIG-1';
SELECT * FROM verify_loyalty();

------------------------------------------------------------------------------
-- the reactivation credit cannot be earned again by spending it and then
-- cancelling the order that earned it; an order with returned goods cannot
-- be cancelled (it would refund them twice)
------------------------------------------------------------------------------
SELECT register_customer('Rex Repeat', 'rex@example.com', NULL, 'en', '2020-01-01') AS rex \gset
SELECT add_reactivation_rule('rex-back', 'webshop', 30, 'store', 1, 365, NULL, 50, '20.00 EUR', 365);
SELECT place_order('RX-W0', :rex, 'web-de', '[{"sku":"K","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '100 days');
SELECT place_order('RX-S0', :rex, 'store-berlin', '[{"sku":"K","qty":1,"unit_price":"10.00 EUR"}]', 'cash', now() - interval '50 days');
SELECT place_order('RX-W1', :rex, 'web-de', '[{"sku":"K","qty":1,"unit_price":"30.00 EUR"}]', 'credit_card', now() - interval '1 hour');
SELECT store_credit FROM balance(:rex);
SELECT place_order('RX-S1', :rex, 'store-berlin', '[{"sku":"K","qty":1,"unit_price":"15.00 EUR"}]', 'store_credit', now() - interval '50 minutes');
SELECT cancel_order('RX-W1');
SELECT place_order('RX-W2', :rex, 'web-de', '[{"sku":"K","qty":1,"unit_price":"30.00 EUR"}]', 'credit_card', now() - interval '40 minutes');
SELECT store_credit FROM balance(:rex);
SELECT kind, reason_code, amount, order_no FROM loyalty_history(:rex) WHERE kind = 'credit' ORDER BY at;
SELECT * FROM verify_loyalty();
SELECT * FROM verify_balances();
SELECT place_order('RX-S2', :rex, 'store-berlin', '[{"sku":"K","qty":2,"unit_price":"100.00 EUR"}]', 'cash', now() - interval '5 days');
SELECT action, refund FROM accept_return('RX-S2', 'K', 2, 'store-berlin');
SELECT pg_temp.try($$SELECT customer_account.cancel_order('RX-S2')$$) AS cancel_after_return;
SELECT count(*) FILTER (WHERE entry_type = 'refund') AS refunds FROM ledger WHERE order_no = 'RX-S2';
-- a point is worth more than nothing and at most 1 000 000 major units
SELECT pg_temp.try($$UPDATE customer_account.loyalty_terms SET point_value = 'NaN' WHERE currency = 'EUR'$$);
SELECT pg_temp.try($$UPDATE customer_account.loyalty_terms SET point_value = 92233720368547758.07 WHERE currency = 'EUR'$$);
