-- pgTAP: the read path touches one row.  The account state row carries the
-- twelve-month ring and the customer facts, and both stay equal to what they
-- cache (account_period, the customer row) through every way an account
-- changes; aging_report() for today answers from the unsettled items as the
-- SQL over the open items does.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET search_path = customer_account, public;
SET TimeZone = 'UTC';
SELECT plan(26);

-- the state table leaves room for HOT updates; the unsettled items' index
-- carries what the reads need
SELECT ok((SELECT 'fillfactor=70' = ANY (reloptions) FROM pg_class WHERE oid = 'customer_account.account_state'::regclass),
          'account_state has fillfactor 70');
SELECT ok((SELECT pg_get_indexdef('customer_account.open_item_unsettled'::regclass)
           LIKE '%(customer_id, currency, due_at) INCLUDE (open, kind, disputed, created_at) WHERE (settled_at IS NULL)'),
          'open_item_unsettled covers open, kind, disputed and created_at');

-- the ring on its own: months fall out behind a new head, old months are
-- for account_period only, rows come out in month order
SELECT is(month_ring_add('{}', '2025-03-01', 100, 100, 0, 1), '{{24302,100,100,0,1}}'::bigint[], 'first event: one bucket');
SELECT is(month_ring_add(month_ring_add('{}', '2025-03-01', 100, 100, 0, 1), '2025-01-01', 5, 5, 2, 1),
          '{{24300,5,5,2,1},{24302,100,100,0,1}}'::bigint[], 'an earlier month inside the twelve is kept in order');
SELECT is(month_ring_add(month_ring_add('{}', '2025-03-01', 100, 100, 0, 1), '2026-03-01', 7, 7, 0, 1),
          '{{24314,7,7,0,1}}'::bigint[], 'a head twelve months later drops the old month');
SELECT is(month_ring_add(month_ring_add('{}', '2025-03-01', 100, 100, 0, 1), '2026-02-01', 7, 7, 0, 1),
          '{{24302,100,100,0,1},{24313,7,7,0,1}}'::bigint[], 'eleven months later both stay');
SELECT is(month_ring_add('{{24314,7,7,0,1}}', '2025-03-01', 100, 100, 0, 1), '{{24314,7,7,0,1}}'::bigint[],
          'a month older than the ring is left to account_period');
SELECT is(month_ring_add('{{24302,100,100,0,1}}', '2025-03-01', -100, -100, 0, -1), '{{24302,0,0,0,0}}'::bigint[],
          'a cancellation in the same month nets the bucket to zero, as account_period keeps it');
SELECT results_eq($$SELECT period, revenue, orders FROM month_ring_rows('{{24300,5,5,2,1},{24302,100,100,0,1}}')$$,
                  $$VALUES ('2025-01-01'::date, 5::bigint, 1), ('2025-03-01'::date, 100::bigint, 1)$$,
                  'month_ring_rows() reads the buckets as periods');
SELECT throws_ok($$SELECT month_ring_add('{1,2,3}', '2025-03-01', 1, 1, 0, 1)$$, 'XX001', NULL,
                 'a malformed ring is refused');

-- a book through the posting path: orders over eighteen months, a cancel, a
-- payment, a future-dated order, a merge
SELECT add_channel('rp-web', 'webshop', 'EUR');
SELECT add_channel('rp-store', 'store', 'EUR');
SELECT register_customer('Rita Ring', 'rita@example.com', NULL, 'en', now() - interval '3 years') AS rita \gset
SELECT register_customer('Rita Twin', 'rita2@example.com', NULL, 'en', now() - interval '1 year') AS twin \gset
SELECT place_order('RP-' || i, :rita, CASE WHEN i % 2 = 0 THEN 'rp-web' ELSE 'rp-store' END,
                   '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]',
                   CASE WHEN i IN (3, 6) THEN 'invoice' WHEN i % 2 = 0 THEN 'credit_card' ELSE 'cash' END,
                   now() - interval '25 days' * i)
FROM generate_series(1, 22) i;
SELECT cancel_order('RP-3', now() - interval '70 days');
SELECT record_payment('RP-P1', :rita, '10.00 EUR', 'bank_transfer', 'rp-web', 'RP-6', now() - interval '100 days');
SELECT place_order('RP-T1', :twin, 'rp-web', '[{"sku":"B","qty":1,"unit_price":"20.00 EUR"}]', 'invoice', now() - interval '200 days');

SELECT is_empty($$SELECT s.customer_id FROM account_state s
                  WHERE s.month_ring IS DISTINCT FROM month_ring_of(s.customer_id, s.currency)$$,
                'every ring equals the one rebuilt from account_period');
SELECT set_eq(format($$SELECT period, revenue, purchased, returned, orders FROM account_state s, month_ring_rows(s.month_ring)
                       WHERE s.customer_id = %s$$, :rita),
              format($$SELECT p.period, p.revenue, p.purchased, p.returned, p.orders FROM account_period p
                       WHERE p.customer_id = %1$s AND p.period > (SELECT max(period) FROM account_period
                                                                   WHERE customer_id = %1$s) - interval '12 months'$$, :rita),
              'the ring holds exactly the twelve months up to the latest one booked');
SELECT is((SELECT (b.revenue_12m, b.orders_12m)::text FROM balance(:rita) b),
          (SELECT (currency_amount_from_minor_units(sum(revenue)::bigint, 'EUR'), sum(orders)::int)::text
           FROM account_period WHERE customer_id = :rita
             AND period > date_trunc('month', now() AT TIME ZONE 'UTC') - interval '12 months'),
          'balance() takes its twelve-month figures from the ring');

-- (an event at most one day ahead of the clock is accepted, so the ring's
-- head can pass the current month only across a month's end: balance() and
-- the decisions then read account_period; src/month_ring.c ca_ring_sum)

-- the customer facts follow every change of the customer row
CREATE FUNCTION pg_temp.facts_differ() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM customer_account.account_state s JOIN customer_account.customer c USING (customer_id)
    WHERE (s.merged_into, s.customer_blocked, s.customer_since, s.customer_language, s.customer_credit_limit,
           s.customer_group) IS DISTINCT FROM (c.merged_into, c.blocked, c.customer_since, c.language,
           c.credit_limit, c.customer_group)
$$;
SELECT is(pg_temp.facts_differ(), 0::bigint, 'new state rows take the customer facts');
SELECT set_credit_limit(:rita, '5000.00 EUR');
UPDATE customer SET customer_group = 'vip', language = 'de' WHERE customer_id = :rita;
SELECT is(pg_temp.facts_differ(), 0::bigint, 'a credit limit, group and language reach the state row');
UPDATE customer SET blocked = true WHERE customer_id = :twin;
SELECT is((SELECT reason_code FROM payment_options(:twin, '10.00 EUR', 'rp-web') WHERE method = 'invoice'),
          'customer_blocked', 'a block reaches the decision at once');
UPDATE customer SET blocked = false WHERE customer_id = :twin;
SELECT isnt((SELECT reason_code FROM payment_options(:twin, '10.00 EUR', 'rp-web') WHERE method = 'invoice'),
            'customer_blocked', 'and so does lifting it');
SELECT merge_customers(:rita, :twin);
SELECT is(pg_temp.facts_differ(), 0::bigint, 'a merge reaches both accounts');
SELECT throws_ok(format('SELECT * FROM customer_account.balance(%s)', :twin), 'RA002', NULL,
                 'balance() of the merged-away customer is refused from its state row');
SELECT throws_ok(format($$SELECT * FROM customer_account.payment_options(%s, '1.00 EUR', 'rp-web')$$, :twin), 'RA002', NULL,
                 'and so is its payment decision');
SELECT is_empty($$SELECT s.customer_id FROM account_state s
                  WHERE s.month_ring IS DISTINCT FROM month_ring_of(s.customer_id, s.currency)$$,
                'after the merge every ring equals the one rebuilt from account_period');
SELECT throws_ok('SELECT * FROM customer_account.balance(987654321)', 'RA002', NULL,
                 'an unknown customer is still refused');
SELECT register_customer('No Orders', NULL, NULL, 'en') AS nobody \gset
SELECT is_empty(format('SELECT * FROM customer_account.balance(%s)', :nobody), 'a customer without a state row has no rows');

-- aging today from the unsettled items equals the SQL over the open items
CREATE FUNCTION pg_temp.aging_sql(as_of date) RETURNS TABLE (currency text, bucket text, customers bigint, amount currency_amount)
LANGUAGE sql AS $$
    WITH bucketed AS (
        SELECT i.currency, i.customer_id, i.open,
               CASE WHEN d <= 0 THEN 'current' WHEN d <= 30 THEN '1-30' WHEN d <= 60 THEN '31-60'
                    WHEN d <= 90 THEN '61-90' ELSE '90+' END AS bucket
        FROM customer_account.open_item i, LATERAL (SELECT as_of - (i.due_at AT TIME ZONE 'UTC')::date AS d) x
        WHERE i.settled_at IS NULL AND i.kind <> 'prepayment' AND i.created_at < (as_of + 1)::timestamp AT TIME ZONE 'UTC'
    )
    SELECT c.currency, b.name, count(DISTINCT bk.customer_id),
           customer_account.currency_amount_from_minor_units(coalesce(sum(bk.open), 0)::bigint, c.currency)
    FROM (SELECT DISTINCT bucketed.currency FROM bucketed) c
    CROSS JOIN (VALUES (1, 'current'), (2, '1-30'), (3, '31-60'), (4, '61-90'), (5, '90+')) b(ord, name)
    LEFT JOIN bucketed bk ON bk.currency = c.currency AND bk.bucket = b.name
    GROUP BY c.currency, b.ord, b.name ORDER BY c.currency, b.ord
$$;
SELECT add_channel('rp-ch', 'webshop', 'CHF');
SELECT register_customer('Aging ' || i, NULL, NULL, 'en', now() - interval '2 years') FROM generate_series(1, 30) i;
SELECT place_order('AG-' || c.customer_id || '-' || k, c.customer_id, CASE WHEN c.customer_id % 4 = 0 THEN 'rp-ch' ELSE 'rp-web' END,
                   format('[{"sku":"A","qty":1,"unit_price":"%s.00 %s"}]', 5 + k, CASE WHEN c.customer_id % 4 = 0 THEN 'CHF' ELSE 'EUR' END)::jsonb,
                   CASE WHEN k = 2 THEN 'prepayment' ELSE 'invoice' END, now() - interval '17 days' * (k + c.customer_id % 7))
FROM customer c, generate_series(1, 3) k WHERE c.full_name LIKE 'Aging %';
SELECT record_payment('AG-P-' || c.customer_id, c.customer_id, '3.00 EUR', 'bank_transfer', 'rp-web', NULL, now() - interval '1 day')
FROM customer c WHERE c.full_name LIKE 'Aging %' AND c.customer_id % 4 <> 0 AND c.customer_id % 3 = 0;
SELECT results_eq('SELECT * FROM customer_account.aging_report()', 'SELECT * FROM pg_temp.aging_sql(current_date)',
                  'aging_report() today: the C pass equals the SQL over the open items');
SELECT results_eq($$SELECT * FROM customer_account.aging_report(current_date + 45)$$, 'SELECT * FROM pg_temp.aging_sql(current_date + 45)',
                  'and so on a day ahead');
SELECT cmp_ok((SELECT count(DISTINCT currency) FROM customer_account.aging_report())::int, '=', 2,
              'both currencies are reported');

SELECT * FROM finish();
ROLLBACK;
