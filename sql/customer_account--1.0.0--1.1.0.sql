/* customer_account--1.0.0--1.1.0.sql: hardening of the account core */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION customer_account UPDATE TO '1.1.0'" to load this file. \quit

-- CREATE EXTENSION customer_account installs 1.1.0 as the 1.0.0 script plus
-- this one, so a fresh install and an upgraded database are the same.
SELECT pg_catalog.set_config('search_path', '@extschema@, pg_catalog, pg_temp', true);

------------------------------------------------------------------------------
-- section: races and merge (merge_customers, dunning_run, forget_customer)
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: configuration cache (bounds that fit the money type, names)
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: backup and restore (sequences dumped, restore without re-posting)
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: input that must be refused (times, payments, retries, money)
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: verify_balances checks every cached figure; PUBLIC and the money type
------------------------------------------------------------------------------

-- verify_balances(): every figure the account state caches, rebuilt from the
-- books in one pass over the ledger (plus the open items, the orders and the
-- dunning notices for the figures that live there).  Money differences come
-- as currency_amount in stored/recomputed; every difference also as text in
-- stored_value/recomputed_value.  Figures that follow a customer's history
-- (first and last purchase, last event, monthly counters, dunning level) are
-- checked on the surviving account of a merge, over the ledgers of every
-- customer merged into it; a merged-away account must stay at zero.
DROP FUNCTION @extschema@.verify_balances();
CREATE FUNCTION @extschema@.verify_balances(OUT customer_id bigint, OUT currency text,
        OUT stored @extschema@.currency_amount, OUT recomputed @extschema@.currency_amount, OUT figure text,
        OUT stored_value text, OUT recomputed_value text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp
    SET work_mem = '256MB'     -- one hash group per account and month: keep the rebuild in memory
AS $$
    WITH RECURSIVE chain(customer_id, root) AS (
        SELECT c.customer_id, c.merged_into FROM @extschema@.customer c WHERE c.merged_into IS NOT NULL
        UNION
        SELECT ch.customer_id, c.merged_into FROM chain ch
        JOIN @extschema@.customer c ON c.customer_id OPERATOR(pg_catalog.=) ch.root
        WHERE c.merged_into IS NOT NULL
    ), roots AS (        -- a merged-away customer and the survivor at the top of its chain
        SELECT ch.customer_id, ch.root FROM chain ch
        JOIN @extschema@.customer r ON r.customer_id OPERATOR(pg_catalog.=) ch.root
        WHERE r.merged_into IS NULL
    ), led AS (          -- the one pass over the ledger
        SELECT l.customer_id, l.currency, l.revenue_period,
               sum(@extschema@.minor_units(l.amount)) AS balance, sum(l.open_delta) AS open,
               sum(l.credit_delta) AS credit, sum(l.revenue_delta) AS revenue,
               sum(l.returned_delta) AS returned, sum(l.order_delta) AS orders,
               sum(l.revenue_delta) FILTER (WHERE l.entry_type IN ('order', 'cancel')) AS purchased,
               min(l.event_at) FILTER (WHERE l.entry_type = 'order') AS first_order,
               max(l.event_at) FILTER (WHERE l.entry_type = 'order') AS last_purchase,
               max(l.event_at) FILTER (WHERE l.entry_type = 'order' AND l.channel_kind = 'webshop') AS last_webshop,
               max(l.event_at) FILTER (WHERE l.entry_type = 'order' AND l.channel_kind = 'store') AS last_store,
               max(l.event_at) FILTER (WHERE l.entry_type = 'order' AND l.channel_kind = 'marketplace') AS last_marketplace,
               max(l.event_at) FILTER (WHERE l.entry_type = 'order' AND l.channel_kind = 'callcenter') AS last_callcenter,
               max(l.event_at) FILTER (WHERE l.entry_type = 'order' AND l.channel_kind = 'app') AS last_app,
               max(l.event_at) FILTER (WHERE l.entry_type NOT IN ('merge_in', 'merge_out')) AS last_event
        FROM @extschema@.ledger l
        GROUP BY l.customer_id, l.currency, l.revenue_period
    ), led_r AS (        -- each group under the surviving customer
        SELECT coalesce(r.root, led.customer_id) AS root, led.*
        FROM led LEFT JOIN roots r ON r.customer_id OPERATOR(pg_catalog.=) led.customer_id
    ), money AS (        -- per account: what its own ledger rows add up to
        SELECT led.customer_id, led.currency, sum(led.balance)::bigint AS balance, sum(led.open)::bigint AS open,
               sum(led.credit)::bigint AS credit, sum(led.revenue)::bigint AS revenue,
               sum(led.returned)::bigint AS returned, sum(led.orders)::bigint AS orders
        FROM led GROUP BY led.customer_id, led.currency
    ), hist AS (         -- per surviving account: its history and that of everyone merged into it
        SELECT t.root AS customer_id, t.currency, min(t.first_order) AS first_order,
               max(t.last_purchase) AS last_purchase, max(t.last_webshop) AS last_webshop,
               max(t.last_store) AS last_store, max(t.last_marketplace) AS last_marketplace,
               max(t.last_callcenter) AS last_callcenter, max(t.last_app) AS last_app,
               max(t.last_event) AS last_event
        FROM led_r t GROUP BY t.root, t.currency
    ), months AS (       -- the monthly counters as the ledger has them
        SELECT t.root AS customer_id, t.currency, t.revenue_period AS period, sum(t.revenue)::bigint AS revenue,
               coalesce(sum(t.purchased), 0)::bigint AS purchased, sum(t.returned)::bigint AS returned,
               sum(t.orders)::bigint AS orders
        FROM led_r t WHERE t.revenue_period IS NOT NULL
        GROUP BY t.root, t.currency, t.revenue_period
    ), items AS (
        SELECT i.customer_id, i.currency, sum(i.open)::bigint AS open,
               min(i.due_at) FILTER (WHERE i.kind <> 'prepayment') AS next_due
        FROM @extschema@.open_item i WHERE i.settled_at IS NULL
        GROUP BY i.customer_id, i.currency
    ), paid AS (         -- orders not cancelled and with nothing left to pay
        SELECT o.customer_id, @extschema@.currency_of(o.total) AS currency, count(*) AS paid_orders
        FROM @extschema@.orders o
        WHERE o.cancelled_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM @extschema@.open_item i
                          WHERE i.order_no OPERATOR(pg_catalog.=) o.order_no AND i.settled_at IS NULL)
        GROUP BY 1, 2
    ), notices AS (
        SELECT n.customer_id, n.currency, n.cycle, max(n.level) AS level
        FROM @extschema@.dunning_notice n GROUP BY 1, 2, 3
    ), accounts AS (
        SELECT coalesce(s.customer_id, m.customer_id) AS customer_id, coalesce(s.currency, m.currency) AS currency,
               s AS st, m AS m, (c.merged_into IS NOT NULL) AS merged_away
        FROM @extschema@.account_state s
        FULL JOIN money m ON m.customer_id OPERATOR(pg_catalog.=) s.customer_id
                         AND m.currency OPERATOR(pg_catalog.=) s.currency
        LEFT JOIN @extschema@.customer c ON c.customer_id OPERATOR(pg_catalog.=) coalesce(s.customer_id, m.customer_id)
    ), diffs AS (
        SELECT a.customer_id, a.currency, f.figure, f.is_money, f.stored, f.recomputed
        FROM accounts a
        LEFT JOIN hist h ON h.customer_id OPERATOR(pg_catalog.=) a.customer_id AND h.currency OPERATOR(pg_catalog.=) a.currency
        LEFT JOIN items it ON it.customer_id OPERATOR(pg_catalog.=) a.customer_id AND it.currency OPERATOR(pg_catalog.=) a.currency
        LEFT JOIN paid p ON p.customer_id OPERATOR(pg_catalog.=) a.customer_id AND p.currency OPERATOR(pg_catalog.=) a.currency
        LEFT JOIN notices n ON n.customer_id OPERATOR(pg_catalog.=) a.customer_id AND n.currency OPERATOR(pg_catalog.=) a.currency
                           AND n.cycle OPERATOR(pg_catalog.=) (a.st).dunning_cycle
        CROSS JOIN LATERAL (VALUES
            ('balance', true, coalesce((a.st).balance, 0)::text, coalesce((a.m).balance, 0)::text),
            ('open_amount', true, coalesce((a.st).open_amount, 0)::text, coalesce((a.m).open, 0)::text),
            ('store_credit', true, coalesce((a.st).store_credit, 0)::text, coalesce((a.m).credit, 0)::text),
            ('lifetime_revenue', true, coalesce((a.st).lifetime_revenue, 0)::text, coalesce((a.m).revenue, 0)::text),
            ('lifetime_returned', true, coalesce((a.st).lifetime_returned, 0)::text, coalesce((a.m).returned, 0)::text),
            ('orders_count', false, coalesce((a.st).orders_count, 0)::text, coalesce((a.m).orders, 0)::text),
            ('open_items', true, coalesce((a.st).open_amount, 0)::text, coalesce(it.open, 0)::text),
            ('balance = open - credit', true, coalesce((a.st).balance, 0)::text,
                (coalesce((a.st).open_amount, 0) - coalesce((a.st).store_credit, 0))::text),
            ('next_due_at', false, (a.st).next_due_at::text, it.next_due::text),
            ('paid_orders', false, coalesce((a.st).paid_orders, 0)::text,
                CASE WHEN a.merged_away THEN '0' ELSE coalesce(p.paid_orders, 0)::text END),
            ('dunning_level', false, coalesce((a.st).dunning_level, 0)::text,
                CASE WHEN a.merged_away THEN '0' ELSE coalesce(n.level, 0)::text END)
        ) AS f(figure, is_money, stored, recomputed)
        WHERE f.stored IS DISTINCT FROM f.recomputed
        UNION ALL
        -- history figures, on the surviving accounts only
        SELECT a.customer_id, a.currency, f.figure, false, f.stored, f.recomputed
        FROM accounts a
        LEFT JOIN hist h ON h.customer_id OPERATOR(pg_catalog.=) a.customer_id AND h.currency OPERATOR(pg_catalog.=) a.currency
        CROSS JOIN LATERAL (VALUES
            ('first_order_at', (a.st).first_order_at::text, h.first_order::text),
            ('last_purchase_at', (a.st).last_purchase_at::text, h.last_purchase::text),
            ('last_webshop', (a.st).last_webshop::text, h.last_webshop::text),
            ('last_store', (a.st).last_store::text, h.last_store::text),
            ('last_marketplace', (a.st).last_marketplace::text, h.last_marketplace::text),
            ('last_callcenter', (a.st).last_callcenter::text, h.last_callcenter::text),
            ('last_app', (a.st).last_app::text, h.last_app::text),
            ('last_event_at', (a.st).last_event_at::text, h.last_event::text)
        ) AS f(figure, stored, recomputed)
        WHERE NOT a.merged_away AND f.stored IS DISTINCT FROM f.recomputed
        UNION ALL
        -- the monthly counters of the surviving accounts
        SELECT coalesce(ap.customer_id, mo.customer_id), coalesce(ap.currency, mo.currency), f.figure, f.is_money,
               f.stored, f.recomputed
        FROM @extschema@.account_period ap
        FULL JOIN months mo ON mo.customer_id OPERATOR(pg_catalog.=) ap.customer_id
                           AND mo.currency OPERATOR(pg_catalog.=) ap.currency AND mo.period OPERATOR(pg_catalog.=) ap.period
        CROSS JOIN LATERAL (VALUES
            ('period revenue', true, coalesce(ap.revenue, 0)::text, coalesce(mo.revenue, 0)::text),
            ('period purchased', true, coalesce(ap.purchased, 0)::text, coalesce(mo.purchased, 0)::text),
            ('period returned', true, coalesce(ap.returned, 0)::text, coalesce(mo.returned, 0)::text),
            ('period orders', false, coalesce(ap.orders, 0)::text, coalesce(mo.orders, 0)::text)
        ) AS f(figure, is_money, stored, recomputed)
        WHERE f.stored IS DISTINCT FROM f.recomputed
    )
    SELECT d.customer_id, d.currency,
           CASE WHEN d.is_money THEN @extschema@.currency_amount_from_minor_units(d.stored::bigint, d.currency) END,
           CASE WHEN d.is_money THEN @extschema@.currency_amount_from_minor_units(d.recomputed::bigint, d.currency) END,
           d.figure,
           CASE WHEN d.is_money THEN @extschema@.currency_amount_from_minor_units(d.stored::bigint, d.currency)::text
                ELSE d.stored END,
           CASE WHEN d.is_money THEN @extschema@.currency_amount_from_minor_units(d.recomputed::bigint, d.currency)::text
                ELSE d.recomputed END
    FROM diffs d
    ORDER BY 1, 2, 5
$$;
REVOKE ALL ON FUNCTION @extschema@.verify_balances() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.verify_balances() IS
    'every figure the account state and the monthly counters cache, rebuilt from the books; always empty';

-- the money type is for everyone: the schema may be used by PUBLIC, which
-- then reaches exactly what has EXECUTE for PUBLIC (the type, its functions,
-- operators and aggregates); tables, sequences and account functions stay closed
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;



------------------------------------------------------------------------------
-- section: returns
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: core speed (reads that touch one row, reports from summaries)
------------------------------------------------------------------------------

-- Everything balance() and payment_options() need sits on the account state
-- row, so that a read is one index descent and one heap fetch:
--   month_ring: the twelve-month figures as a ring of monthly buckets,
--     bigint[n][5] = {month number (year * 12 + month - 1), revenue,
--     purchased, returned, orders}, oldest first: exactly the account_period
--     rows of the twelve months up to the latest month booked; maintained
--     by the posting core next to account_period (month_ring_add), rebuilt
--     from account_period by month_ring_of(), read with month_ring_rows();
--   merged_into, customer_blocked, customer_since, customer_language,
--     customer_credit_limit, customer_group: the customer's row as the
--     decisions use it, copied by two triggers (state_facts.c).
-- account_period keeps the full monthly history (questions about the past,
-- reports, value segments).
ALTER TABLE @extschema@.account_state
    ADD COLUMN month_ring bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN merged_into bigint,
    ADD COLUMN customer_blocked boolean NOT NULL DEFAULT false,
    ADD COLUMN customer_since timestamptz,
    ADD COLUMN customer_language text,
    ADD COLUMN customer_credit_limit @extschema@.currency_amount,
    ADD COLUMN customer_group text;
-- every posting updates the row: room on its page for the new version keeps
-- the update HOT (no index entry, no chain across pages for readers)
ALTER TABLE @extschema@.account_state SET (fillfactor = 70);

CREATE FUNCTION @extschema@.month_ring_add(ring bigint[], period date, revenue bigint, purchased bigint,
        returned bigint, orders integer) RETURNS bigint[]
    AS 'MODULE_PATHNAME', 'month_ring_add' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.month_ring_add(bigint[], date, bigint, bigint, bigint, integer) IS
    'the month ring of an account state row after one event (the posting core calls it)';

CREATE FUNCTION @extschema@.month_ring_rows(ring bigint[], OUT period date, OUT revenue bigint,
        OUT purchased bigint, OUT returned bigint, OUT orders integer)
RETURNS SETOF record LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = @extschema@, pg_temp AS $$
    SELECT pg_catalog.make_date((ring[i][1] OPERATOR(pg_catalog./) 12)::integer,
                                (ring[i][1] OPERATOR(pg_catalog.%) 12 OPERATOR(pg_catalog.+) 1)::integer, 1),
           ring[i][2], ring[i][3], ring[i][4], ring[i][5]::integer
    FROM pg_catalog.generate_subscripts(ring, 1) i
    ORDER BY 1
$$;
COMMENT ON FUNCTION @extschema@.month_ring_rows(bigint[]) IS
    'the buckets of an account state row''s month ring as account_period rows';

CREATE FUNCTION @extschema@.month_ring_of(customer_id bigint, currency text) RETURNS bigint[]
LANGUAGE sql STABLE SET search_path = @extschema@, pg_temp AS $$
    SELECT coalesce(pg_catalog.array_agg(ARRAY[
               (pg_catalog.date_part('year', p.period) OPERATOR(pg_catalog.*) 12
                OPERATOR(pg_catalog.+) pg_catalog.date_part('month', p.period) OPERATOR(pg_catalog.-) 1)::bigint,
               p.revenue, p.purchased, p.returned, p.orders::bigint] ORDER BY p.period), '{}')
    FROM @extschema@.account_period p
    WHERE p.customer_id OPERATOR(pg_catalog.=) $1 AND p.currency OPERATOR(pg_catalog.=) $2
      AND p.period OPERATOR(pg_catalog.>) (
          SELECT (pg_catalog.max(q.period) OPERATOR(pg_catalog.-) interval '12 months')::date
          FROM @extschema@.account_period q
          WHERE q.customer_id OPERATOR(pg_catalog.=) $1 AND q.currency OPERATOR(pg_catalog.=) $2)
$$;
COMMENT ON FUNCTION @extschema@.month_ring_of(bigint, text) IS
    'the month ring of an account rebuilt from account_period (what account_state.month_ring must hold)';

CREATE FUNCTION @extschema@.account_state_facts() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
CREATE TRIGGER account_state_facts BEFORE INSERT ON @extschema@.account_state
    FOR EACH ROW EXECUTE FUNCTION @extschema@.account_state_facts();
CREATE FUNCTION @extschema@.customer_facts_changed() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
CREATE TRIGGER customer_facts_changed AFTER UPDATE ON @extschema@.customer
    FOR EACH ROW WHEN (OLD.merged_into IS DISTINCT FROM NEW.merged_into OR OLD.blocked IS DISTINCT FROM NEW.blocked
                       OR OLD.customer_since IS DISTINCT FROM NEW.customer_since
                       OR OLD.language IS DISTINCT FROM NEW.language
                       OR OLD.credit_limit IS DISTINCT FROM NEW.credit_limit
                       OR OLD.customer_group IS DISTINCT FROM NEW.customer_group)
    EXECUTE FUNCTION @extschema@.customer_facts_changed();

-- the unsettled items carry every column balance(), the payment decision and
-- the aging report read, so that on all-visible pages they are answered from
-- the index alone (index-only scans; direct.c ca_scan_unsettled)
DROP INDEX @extschema@.open_item_unsettled;
CREATE INDEX open_item_unsettled ON @extschema@.open_item (customer_id, currency, due_at)
    INCLUDE (open, kind, disputed, created_at) WHERE settled_at IS NULL;

-- aging_report(as_of): today or later from one pass over the unsettled items
-- in C (aging.c); a past day still from the items and what was paid since
CREATE FUNCTION @extschema@.aging_open_items(as_of date,
        OUT currency text, OUT bucket text, OUT customers bigint, OUT amount @extschema@.currency_amount)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'aging_open_items' LANGUAGE C STABLE STRICT;
CREATE OR REPLACE FUNCTION @extschema@.aging_report(as_of date DEFAULT current_date,
        OUT currency text, OUT bucket text, OUT customers bigint, OUT amount @extschema@.currency_amount)
RETURNS SETOF record LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    cutoff timestamptz := (as_of OPERATOR(pg_catalog.+) 1)::timestamp AT TIME ZONE 'UTC';   -- end of the day, UTC
BEGIN
    IF cutoff OPERATOR(pg_catalog.>) pg_catalog.now() THEN
        RETURN QUERY SELECT * FROM @extschema@.aging_open_items(as_of);
        RETURN;
    END IF;
    RETURN QUERY
    WITH items AS (
        SELECT i.customer_id, i.currency,
               i.amount OPERATOR(pg_catalog.-) coalesce((SELECT pg_catalog.sum(a.amount) FROM @extschema@.item_application a
                                    WHERE a.item_id OPERATOR(pg_catalog.=) i.item_id
                                      AND a.applied_at OPERATOR(pg_catalog.<) cutoff), 0) AS open,
               i.due_at
        FROM @extschema@.open_item i
        WHERE i.kind OPERATOR(pg_catalog.<>) 'prepayment' AND i.created_at OPERATOR(pg_catalog.<) cutoff
          AND (i.settled_at IS NULL OR i.settled_at OPERATOR(pg_catalog.>=) cutoff)
    ), bucketed AS (
        SELECT it.currency, it.customer_id, it.open,
               CASE WHEN d OPERATOR(pg_catalog.<=) 0 THEN 'current' WHEN d OPERATOR(pg_catalog.<=) 30 THEN '1-30'
                    WHEN d OPERATOR(pg_catalog.<=) 60 THEN '31-60'
                    WHEN d OPERATOR(pg_catalog.<=) 90 THEN '61-90' ELSE '90+' END AS bucket
        FROM items it, LATERAL (SELECT as_of OPERATOR(pg_catalog.-) (it.due_at AT TIME ZONE 'UTC')::date AS d) x
        WHERE it.open OPERATOR(pg_catalog.>) 0
    )
    SELECT c.currency, b.name, pg_catalog.count(DISTINCT bk.customer_id),
           @extschema@.currency_amount_from_minor_units(coalesce(pg_catalog.sum(bk.open), 0)::bigint, c.currency)
    FROM (SELECT DISTINCT bucketed.currency FROM bucketed) c
    CROSS JOIN (VALUES (1, 'current'), (2, '1-30'), (3, '31-60'), (4, '61-90'), (5, '90+')) b(ord, name)
    LEFT JOIN bucketed bk ON bk.currency OPERATOR(pg_catalog.=) c.currency AND bk.bucket OPERATOR(pg_catalog.=) b.name
    GROUP BY c.currency, b.ord, b.name
    ORDER BY c.currency, b.ord;
END $$;

-- an upgraded database: the new columns from the books
UPDATE @extschema@.account_state s
SET month_ring = @extschema@.month_ring_of(s.customer_id, s.currency), merged_into = c.merged_into,
    customer_blocked = c.blocked, customer_since = c.customer_since, customer_language = c.language,
    customer_credit_limit = c.credit_limit, customer_group = c.customer_group
FROM @extschema@.customer c WHERE c.customer_id OPERATOR(pg_catalog.=) s.customer_id;



------------------------------------------------------------------------------
-- section: loyalty
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: capture triggers, role profiles, audit
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- last: nothing of the account is executable by PUBLIC, whatever the sections
-- above added; the money type's functions stay open to everyone
------------------------------------------------------------------------------
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_depend d ON d.objid OPERATOR(pg_catalog.=) p.oid
             AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
             AND d.deptype OPERATOR(pg_catalog.=) 'e'
        JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
             AND e.extname OPERATOR(pg_catalog.=) 'customer_account'
        WHERE p.prokind OPERATOR(pg_catalog.=) 'f'
          AND p.proname NOT LIKE 'currency\_amount%' AND p.proname NOT LIKE '%\_mul\_currency\_amount'
          AND p.proname NOT IN ('currency_of', 'amount_of', 'minor_units', 'currencies', 'abs',
                                'is_currency', 'reason_text')
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;
