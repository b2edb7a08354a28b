-- pgTAP property test: a few thousand random business events for a few
-- hundred customers, through the functions and through plain INSERTs, in
-- random (also back-dated) order, returns at tills and by parcel included.  Afterwards every account state row equals
-- the ledger (verify_balances() is empty), the monthly counters equal the
-- ledger, and balance() agrees with the books customer by customer.  With
-- a loyalty programme on, a second round adds deliveries, redemptions,
-- returns, cancellations and expiry bookings: the points ledger, the lots
-- and the cached totals always agree (verify_loyalty() is empty), and the
-- readings (now, in the past, the finance view) agree with the lots.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET search_path = customer_account, public;
SELECT plan(19);

SELECT setseed(0.4242);
SELECT add_channel('web-de', 'webshop', 'EUR');
SELECT add_channel('app-de', 'app', 'EUR');
SELECT add_channel('store-1', 'store', 'EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT add_channel('phone', 'callcenter', 'EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF');
SELECT register_customer('Customer ' || i, 'c' || i || '@example.com', NULL, CASE WHEN i % 3 = 0 THEN 'en' ELSE 'de' END,
                         now() - interval '3 years') FROM generate_series(1, 300) i;
UPDATE credit_policy SET credit_limit = 3000, overdue_tolerance = 1000000;
-- the loyalty programme: every order earns while the events are booked
SELECT set_loyalty_terms('EUR', '0.01 EUR', 400);
SELECT set_loyalty_terms('CHF', '0.01 CHF', 300, 10);
SELECT add_earn_rule('base', 1);
SELECT add_earn_rule('store', 2, 'store');
SELECT add_earn_rule('excluded', 0, NULL, 'SKU-4%');
SELECT add_points_multiplier('web-weeks', 2, NULL, 'webshop', NULL, now() - interval '200 days', now() - interval '150 days');
SELECT add_loyalty_tier('basic', 'EUR', '0.00 EUR');
SELECT add_loyalty_tier('gold', 'EUR', '300.00 EUR');
SELECT add_points_multiplier('gold', 1.5, 'gold');
SELECT add_reactivation_rule('back', 'webshop', 60, 'store', 1, 365, '5.00 EUR', NULL, NULL, 90);
SELECT add_reactivation_rule('back-app', 'app', 30, 'marketplace', 1, 365, NULL, 10, '4.00 EUR', 60);

CREATE TEMP TABLE outcome (kind text, ok boolean, sqlstate text, message text);

DO $$
DECLARE
    ch text[] := ARRAY['web-de', 'app-de', 'store-1', 'ebay', 'phone', 'web-ch'];
    methods jsonb := '{"web-de":["invoice","credit_card","paypal","prepayment","direct_debit"],
                       "app-de":["invoice","paypal","credit_card"],
                       "store-1":["cash","credit_card","invoice"],
                       "ebay":["marketplace","paypal"],
                       "phone":["invoice","prepayment","cash_on_delivery"],
                       "web-ch":["invoice","credit_card"]}';
    c bigint; k text; m text; cur text; at timestamptz; n int; o text; r float8;
    lines jsonb;
BEGIN
    FOR i IN 1 .. 3000 LOOP
        r := random();
        c := 1 + floor(random() * 300)::bigint;
        at := now() - (random() * 400) * interval '1 day';
        BEGIN
            IF r < 0.40 THEN
                k := ch[1 + floor(random() * 6)::int];
                m := methods -> k ->> floor(random() * jsonb_array_length(methods -> k))::int;
                cur := CASE WHEN k = 'web-ch' THEN 'CHF' ELSE 'EUR' END;
                n := 1 + floor(random() * 3)::int;
                SELECT jsonb_agg(jsonb_build_object('sku', 'SKU-' || floor(random() * 50), 'qty', 1 + floor(random() * 3)::int,
                                                    'unit_price', (1 + floor(random() * 9000)) / 100.0 || ' ' || cur))
                INTO lines FROM generate_series(1, n);
                PERFORM customer_account.place_order('F-' || i, c, k, lines, m, at);
                INSERT INTO outcome VALUES ('order via function', true, NULL, NULL);
            ELSIF r < 0.60 THEN
                -- a shop writing its own tables
                k := ch[1 + floor(random() * 5)::int];
                m := CASE k WHEN 'store-1' THEN 'cash' WHEN 'ebay' THEN 'marketplace' ELSE 'invoice' END;
                INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
                VALUES ('I-' || i, c, k, m, '99.00 EUR', at);
                INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price)
                VALUES ('I-' || i, 1, 'SKU-A', 1, '49.50 EUR'), ('I-' || i, 2, 'SKU-B', 2, '24.75 EUR');
                SET CONSTRAINTS customer_account.order_total_check IMMEDIATE;
                SET CONSTRAINTS customer_account.order_total_check DEFERRED;
                INSERT INTO outcome VALUES ('order via INSERT', true, NULL, NULL);
            ELSIF r < 0.80 THEN
                cur := CASE WHEN random() < 0.1 THEN 'CHF' ELSE 'EUR' END;
                SELECT order_no INTO o FROM customer_account.orders
                WHERE customer_id = c AND customer_account.currency_of(orders.total) = cur AND random() < 0.5 LIMIT 1;
                IF random() < 0.5 THEN
                    PERFORM customer_account.record_payment('P-' || i, c,
                        customer_account.currency_amount(((1 + floor(random() * 20000)) / 100.0)::numeric, cur),
                        'bank_transfer', CASE cur WHEN 'CHF' THEN 'web-ch' ELSE 'web-de' END, o, at);
                    INSERT INTO outcome VALUES ('payment via function', true, NULL, NULL);
                ELSE
                    INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)
                    VALUES ('P-' || i, c, customer_account.currency_amount(((1 + floor(random() * 20000)) / 100.0)::numeric, cur),
                            'bank_transfer', CASE cur WHEN 'CHF' THEN 'web-ch' ELSE 'web-de' END, o, at);
                    INSERT INTO outcome VALUES ('payment via INSERT', true, NULL, NULL);
                END IF;
            ELSIF r < 0.90 THEN
                SELECT order_no INTO o FROM customer_account.orders
                WHERE customer_id = c AND cancelled_at IS NULL AND delivered_at IS NULL LIMIT 1;
                IF o IS NOT NULL THEN
                    PERFORM customer_account.cancel_order(o, now());
                    INSERT INTO outcome VALUES ('cancel', true, NULL, NULL);
                END IF;
            ELSIF r < 0.95 THEN
                SELECT order_no INTO o FROM customer_account.orders
                WHERE customer_id = c AND cancelled_at IS NULL AND delivered_at IS NULL LIMIT 1;
                IF o IS NOT NULL THEN
                    PERFORM customer_account.mark_delivered(o, now());
                    INSERT INTO outcome VALUES ('deliver', true, NULL, NULL);
                END IF;
            ELSIF r < 0.99 THEN
                -- a return at a till or by parcel: accepted or refused, booked or not
                SELECT x.order_no, l.sku, customer_account.currency_of(x.total) INTO o, k, cur
                FROM customer_account.orders x JOIN customer_account.order_line l ON l.order_no = x.order_no
                WHERE x.customer_id = c
                ORDER BY (x.delivered_at IS NOT NULL OR x.channel = 'store-1') AND random() < 0.9 DESC, random() LIMIT 1;
                IF o IS NOT NULL THEN
                    -- most parcels arrive before they come back
                    IF random() < 0.7 THEN
                        PERFORM customer_account.mark_delivered(x.order_no, now()) FROM customer_account.orders x
                        WHERE x.order_no = o AND x.cancelled_at IS NULL AND x.delivered_at IS NULL;
                    END IF;
                    PERFORM customer_account.accept_return(o, k, CASE WHEN random() < 0.8 THEN 1 ELSE 2 + floor(random() * 2)::int END,
                        CASE WHEN cur = 'CHF' THEN 'web-ch' WHEN random() < 0.7 THEN 'store-1' ELSE 'web-de' END);
                    INSERT INTO outcome VALUES ('return', true, NULL, NULL);
                END IF;
            ELSE
                -- a retry of an earlier order posts nothing
                SELECT order_no INTO o FROM customer_account.orders WHERE order_no LIKE 'F-%' AND random() < 0.05 LIMIT 1;
                IF o IS NOT NULL THEN
                    PERFORM customer_account.place_order(o, x.customer_id, x.channel,
                        (SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'qty', l.qty, 'unit_price', l.unit_price::text,
                                                             'returnable', l.returnable) ORDER BY l.line_no)
                         FROM customer_account.order_line l WHERE l.order_no = o),
                        x.payment_method, x.placed_at)
                    FROM customer_account.orders x WHERE x.order_no = o;
                    INSERT INTO outcome VALUES ('retry', true, NULL, NULL);
                END IF;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO outcome VALUES ('refused', false, SQLSTATE, SQLERRM);
        END;
    END LOOP;
END $$;

-- the loyalty round: deliveries, redemptions, returns, cancellations, expiry, more orders
DO $$
DECLARE
    c bigint; o text; r float8; n int; at timestamptz; k text; cur text;
    l record;
BEGIN
    FOR i IN 1 .. 1500 LOOP
        r := random();
        c := 1 + floor(random() * 300)::bigint;
        BEGIN
            IF r < 0.30 THEN
                SELECT x.order_no, x.placed_at INTO o, at FROM customer_account.orders x
                WHERE x.customer_id = c AND x.cancelled_at IS NULL AND x.delivered_at IS NULL LIMIT 1;
                IF o IS NOT NULL THEN
                    PERFORM customer_account.mark_delivered(o, least(at + random() * interval '5 days', now()));
                    INSERT INTO outcome VALUES ('loyalty deliver', true, NULL, NULL);
                END IF;
            ELSIF r < 0.50 THEN
                cur := CASE WHEN random() < 0.1 THEN 'web-ch' ELSE (ARRAY['web-de', 'store-1', 'app-de'])[1 + floor(random() * 3)::int] END;
                PERFORM customer_account.redeem_points(c, 1 + floor(random() * 400)::bigint, cur);
                INSERT INTO outcome VALUES ('loyalty redeem', true, NULL, NULL);
            ELSIF r < 0.65 THEN
                SELECT lot.order_no, lot.line_no, lot.qty - lot.returned_qty AS left INTO l
                FROM customer_account.loyalty_lot lot
                WHERE lot.customer_id = c AND lot.returned_qty < lot.qty ORDER BY random() LIMIT 1;
                IF FOUND THEN
                    PERFORM customer_account.loyalty_reverse_return(c, l.order_no, l.line_no, 1 + floor(random() * l.left)::int);
                    INSERT INTO outcome VALUES ('loyalty return', true, NULL, NULL);
                END IF;
            ELSIF r < 0.75 THEN
                SELECT x.order_no INTO o FROM customer_account.orders x
                WHERE x.customer_id = c AND x.cancelled_at IS NULL AND x.delivered_at IS NULL ORDER BY random() LIMIT 1;
                IF o IS NOT NULL THEN
                    PERFORM customer_account.cancel_order(o, now());
                    INSERT INTO outcome VALUES ('loyalty cancel', true, NULL, NULL);
                END IF;
            ELSIF r < 0.80 THEN
                PERFORM customer_account.expire_points(now() - random() * interval '200 days');
                INSERT INTO outcome VALUES ('loyalty expire', true, NULL, NULL);
            ELSE
                k := (ARRAY['web-de', 'app-de', 'store-1', 'ebay', 'web-ch'])[1 + floor(random() * 5)::int];
                cur := CASE WHEN k = 'web-ch' THEN 'CHF' ELSE 'EUR' END;
                n := 1 + floor(random() * 3)::int;
                PERFORM customer_account.place_order('L-' || i, c, k,
                    (SELECT jsonb_agg(jsonb_build_object('sku', 'SKU-' || floor(random() * 50), 'qty', 1 + floor(random() * 4)::int,
                                                         'unit_price', (1 + floor(random() * 9000)) / 100.0 || ' ' || cur))
                     FROM generate_series(1, n)),
                    CASE k WHEN 'store-1' THEN 'cash' WHEN 'ebay' THEN 'marketplace' ELSE 'credit_card' END,
                    now() - random() * interval '300 days');
                INSERT INTO outcome VALUES ('loyalty order', true, NULL, NULL);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO outcome VALUES ('refused', false, SQLSTATE, SQLERRM);
        END;
    END LOOP;
END $$;

SELECT cmp_ok((SELECT count(*) FROM outcome WHERE ok)::int, '>', 2000, 'most random events were booked');
SELECT is_empty($$SELECT * FROM outcome WHERE NOT ok AND sqlstate NOT IN ('RA001')$$,
    'the only refusals are business refusals (RA001)');
SELECT cmp_ok((SELECT count(DISTINCT customer_id) FROM customer_account.ledger)::int, '>=', 250, 'a few hundred customers have books');
SELECT is_empty($$SELECT * FROM customer_account.verify_balances()$$, 'verify_balances() finds no difference');
SELECT is_empty($$
    SELECT customer_id, currency, revenue_period, sum(revenue_delta) FROM customer_account.ledger
    WHERE revenue_period IS NOT NULL GROUP BY 1, 2, 3
    EXCEPT
    SELECT customer_id, currency, period, revenue FROM customer_account.account_period$$,
    'monthly revenue counters equal the ledger');
SELECT is_empty($$
    SELECT b.customer_id, b.currency FROM customer_account.account_state s,
         LATERAL customer_account.balance(s.customer_id, now() + interval '1 day') b
    WHERE b.currency = s.currency
      AND (customer_account.minor_units(b.balance) <> (SELECT sum(customer_account.minor_units(l.amount)) FROM customer_account.ledger l
                                                        WHERE l.customer_id = s.customer_id AND l.currency = s.currency)
           OR customer_account.minor_units(b.open_amount) <> (SELECT coalesce(sum(i.open), 0) FROM customer_account.open_item i
                                                             WHERE i.customer_id = s.customer_id AND i.currency = s.currency AND i.settled_at IS NULL))$$,
    'balance() agrees with the ledger and the open items for every customer');
-- as of a date in the past, balance() reads the ledger: it must agree with summing it
SELECT is_empty($$
    SELECT s.customer_id FROM customer_account.account_state s,
         LATERAL customer_account.balance(s.customer_id, now() - interval '100 days') b
    WHERE b.currency = s.currency
      AND customer_account.minor_units(b.balance) <> (SELECT coalesce(sum(customer_account.minor_units(l.amount)), 0)
            FROM customer_account.ledger l WHERE l.customer_id = s.customer_id AND l.currency = s.currency
              AND l.event_at <= now() - interval '100 days')$$,
    'balance() as of a past date equals the ledger up to that date');
SELECT is_empty($$
    SELECT s.customer_id FROM customer_account.account_state s
    WHERE s.balance <> s.open_amount - s.store_credit$$,
    'balance = open - store credit for every account');
-- returns: booked, never more than was bought or paid, the credit notes equal the refund rows
SELECT cmp_ok((SELECT count(*) FROM customer_account.ledger WHERE entry_type = 'return')::int, '>', 20,
    'random returns were booked');
SELECT is_empty($$
    SELECT l.order_no, l.sku FROM customer_account.return_line l WHERE l.status = 'accepted'
    GROUP BY l.order_no, l.sku
    HAVING sum(l.qty) > (SELECT sum(o.qty) FROM customer_account.order_line o WHERE o.order_no = l.order_no AND o.sku = l.sku)
    UNION ALL
    SELECT o.order_no, NULL FROM customer_account.orders o
    WHERE o.total < (SELECT customer_account.sum(f.refund) FROM customer_account.return_refund f WHERE f.order_no = o.order_no)$$,
    'no item comes back more often than it was bought, no order refunds more than its total');
SELECT is_empty($$
    SELECT order_no, sum(returned_delta) FROM customer_account.ledger WHERE entry_type = 'return' GROUP BY 1
    EXCEPT
    SELECT order_no, sum(customer_account.minor_units(refund)) FROM customer_account.return_refund GROUP BY 1$$,
    'the credit notes in the ledger equal the refund rows of every order');

-- loyalty: every kind of entry happened, and the books agree
SELECT is((SELECT array_agg(DISTINCT kind ORDER BY kind) FROM customer_account.loyalty_entry),
    ARRAY['credit', 'earn', 'expire', 'redeem', 'reverse'], 'earnings, redemptions, expiries, reversals and credits were booked');
SELECT cmp_ok((SELECT count(*) FROM outcome WHERE kind = 'loyalty redeem')::int, '>', 50, 'many redemptions went through');
SELECT is_empty($$SELECT * FROM customer_account.verify_loyalty()$$, 'verify_loyalty() finds no difference');
SELECT is_empty($$SELECT * FROM customer_account.loyalty_lot WHERE remaining < 0 OR remaining > points OR reversed > points$$,
    'no lot holds less than nothing or more than it earned');
-- the readings from the dates alone agree with the lots: now (direct reads) ...
SELECT is_empty($$
    SELECT a.customer_id FROM customer_account.loyalty_account a, LATERAL customer_account.loyalty_points(a.customer_id) p
    WHERE (p.available::numeric, p.pending::numeric) IS DISTINCT FROM (
        SELECT (coalesce(sum(l.remaining) FILTER (WHERE l.available_at <= now() AND l.expires_at > now()), 0),
                coalesce(sum(l.remaining) FILTER (WHERE l.available_at IS NULL OR l.available_at > now()), 0))
        FROM customer_account.loyalty_lot l WHERE l.customer_id = a.customer_id AND l.earned_at <= now())$$,
    'loyalty_points() now agrees with the lots');
-- ... and in the past (what the lots earned less the debits up to then, expiry bookings left out)
SELECT is_empty($$
    SELECT a.customer_id FROM customer_account.loyalty_account a,
         LATERAL customer_account.loyalty_points(a.customer_id, now() - interval '90 days') p
    WHERE (p.available::numeric, p.pending::numeric) IS DISTINCT FROM (
        SELECT (coalesce(sum(x.rem) FILTER (WHERE x.available_at <= now() - interval '90 days'
                                            AND x.expires_at > now() - interval '90 days'), 0),
                coalesce(sum(x.rem) FILTER (WHERE x.available_at IS NULL OR x.available_at > now() - interval '90 days'), 0))
        FROM (SELECT l.available_at, l.expires_at,
                     l.points + coalesce(sum(u.points) FILTER (WHERE u.at <= now() - interval '90 days'
                                                               AND u.kind <> 'expire'), 0) AS rem
              FROM customer_account.loyalty_lot l LEFT JOIN customer_account.loyalty_lot_use u ON u.lot_id = l.lot_id
              WHERE l.customer_id = a.customer_id AND l.earned_at <= now() - interval '90 days'
              GROUP BY l.lot_id) x)$$,
    'loyalty_points() in the past agrees with the lot uses');
SELECT ok((SELECT (sum(pending), sum(available)) FROM customer_account.loyalty_liability())
    IS NOT DISTINCT FROM
    (SELECT (sum(p.pending), sum(p.available)) FROM customer_account.customer c, LATERAL customer_account.loyalty_points(c.customer_id) p
     WHERE c.merged_into IS NULL),
    'the finance view adds up to the customers'' readings');
SELECT is_empty($$
    SELECT o.order_no FROM customer_account.orders o JOIN customer_account.loyalty_lot l ON l.order_no = o.order_no
    WHERE o.cancelled_at IS NOT NULL GROUP BY o.order_no HAVING sum(l.remaining) > 0$$,
    'cancelled orders hold no points');

SELECT * FROM finish();
ROLLBACK;
