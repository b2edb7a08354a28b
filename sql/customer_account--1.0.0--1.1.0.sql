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
-- section: loyalty
------------------------------------------------------------------------------

-- Loyalty: one programme, one card online and offline.  Points belong to
-- the customer.  Policy is data (terms, earn rules, multipliers, tiers,
-- reactivation rules: tables a DBA may edit, cached per backend and
-- reloaded on every change); earning, debits and the reactivation credit
-- are C inside the posting path (src/loyalty*.c).

-- the terms of a currency: what a point is worth (major units, may be finer
-- than the minor unit), how long available points live, and optionally how
-- long points stay pending after delivery instead of the channel's return window
CREATE TABLE @extschema@.loyalty_terms (
    currency     text COLLATE "C" PRIMARY KEY
                 CHECK (@extschema@.is_currency(currency) AND currency OPERATOR(pg_catalog.=) pg_catalog.upper(currency)),
    point_value  numeric NOT NULL CHECK (point_value OPERATOR(pg_catalog.>) 0),
    expiry_days  integer NOT NULL DEFAULT 730 CHECK (expiry_days OPERATOR(pg_catalog.>) 0),
    pending_days integer CHECK (pending_days OPERATOR(pg_catalog.>=) 0),
    updated_at   timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE @extschema@.loyalty_terms IS
    'loyalty terms per currency: point value in major units, expiry and pending days; without terms an order earns nothing';

-- base earning rates: the most specific valid rule wins (SKU pattern, then channel kind)
CREATE TABLE @extschema@.loyalty_earn_rule (
    code            text PRIMARY KEY CHECK (code OPERATOR(pg_catalog.<>) '' AND code OPERATOR(pg_catalog.=) pg_catalog.btrim(code)),
    points_per_unit numeric NOT NULL CHECK (points_per_unit OPERATOR(pg_catalog.>=) 0),
    channel_kind    @extschema@.channel_kind,
    sku_pattern     text CHECK (sku_pattern OPERATOR(pg_catalog.<>) ''),
    valid_from      timestamptz,
    valid_to        timestamptz,
    CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_from OPERATOR(pg_catalog.<) valid_to)
);
COMMENT ON TABLE @extschema@.loyalty_earn_rule IS
    'points per whole currency unit of a line; sku_pattern is a LIKE pattern; points_per_unit 0 excludes a category';

-- factors that multiply a line's points when all their conditions match
CREATE TABLE @extschema@.loyalty_multiplier (
    code         text PRIMARY KEY CHECK (code OPERATOR(pg_catalog.<>) '' AND code OPERATOR(pg_catalog.=) pg_catalog.btrim(code)),
    factor       numeric NOT NULL CHECK (factor OPERATOR(pg_catalog.>) 0),
    tier         text CHECK (tier OPERATOR(pg_catalog.<>) ''),
    channel_kind @extschema@.channel_kind,
    sku_pattern  text CHECK (sku_pattern OPERATOR(pg_catalog.<>) ''),
    valid_from   timestamptz,
    valid_to     timestamptz,
    CHECK (valid_from IS NULL OR valid_to IS NULL OR valid_from OPERATOR(pg_catalog.<) valid_to)
);

-- tiers per currency on the rolling 12-month revenue net of returns
CREATE TABLE @extschema@.loyalty_tier (
    currency        text COLLATE "C" NOT NULL CHECK (@extschema@.is_currency(currency)),
    tier            text NOT NULL CHECK (tier OPERATOR(pg_catalog.<>) ''),
    min_revenue_12m @extschema@.currency_amount NOT NULL,
    PRIMARY KEY (currency, tier),
    CHECK (@extschema@.currency_of(min_revenue_12m) OPERATOR(pg_catalog.=) currency
           AND @extschema@.minor_units(min_revenue_12m) OPERATOR(pg_catalog.>=) 0)
);

-- the cross-channel reactivation credit
CREATE TABLE @extschema@.loyalty_reactivation_rule (
    code           text PRIMARY KEY CHECK (code OPERATOR(pg_catalog.<>) '' AND code OPERATOR(pg_catalog.=) pg_catalog.btrim(code)),
    target_kind    @extschema@.channel_kind NOT NULL,
    absent_days    integer NOT NULL CHECK (absent_days OPERATOR(pg_catalog.>=) 0),
    source_kind    @extschema@.channel_kind NOT NULL,
    min_purchases  integer NOT NULL CHECK (min_purchases OPERATOR(pg_catalog.>=) 0),
    within_days    integer NOT NULL CHECK (within_days OPERATOR(pg_catalog.>) 0),
    credit         @extschema@.currency_amount CHECK (@extschema@.minor_units(credit) OPERATOR(pg_catalog.>) 0),
    credit_percent numeric CHECK (credit_percent OPERATOR(pg_catalog.>) 0 AND credit_percent OPERATOR(pg_catalog.<=) 100),
    max_credit     @extschema@.currency_amount CHECK (@extschema@.minor_units(max_credit) OPERATOR(pg_catalog.>) 0),
    once_per_days  integer NOT NULL DEFAULT 365 CHECK (once_per_days OPERATOR(pg_catalog.>=) 0),
    CHECK ((credit IS NULL) OPERATOR(pg_catalog.<>) (credit_percent IS NULL)),
    CHECK (max_credit IS NULL OR credit_percent IS NOT NULL)
);
COMMENT ON TABLE @extschema@.loyalty_reactivation_rule IS
    'store credit for a customer back on target_kind after absent_days, having bought min_purchases times on source_kind within within_days';

-- per customer: the cached totals of the points ledger, and the row a debit locks
CREATE TABLE @extschema@.loyalty_account (
    customer_id bigint PRIMARY KEY,
    points      bigint NOT NULL DEFAULT 0,    -- outstanding: sum of the lots' remaining
    earned      bigint NOT NULL DEFAULT 0,
    redeemed    bigint NOT NULL DEFAULT 0,
    expired     bigint NOT NULL DEFAULT 0,
    reversed    bigint NOT NULL DEFAULT 0,
    last_at     timestamptz,              -- latest entry that moved points (readings before it use the history)
    updated_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- one lot per order line and earn rule: what it earned, why, what is left, and its dates
-- (the write path credits every order line here: one small CHECK only, as
-- every CHECK is read and compiled once per statement; verify_loyalty() checks the rest)
CREATE TABLE @extschema@.loyalty_lot (
    customer_id     bigint NOT NULL,
    lot_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_no        text NOT NULL,
    line_no         integer NOT NULL,
    rule_code       text NOT NULL,
    currency        text COLLATE "C" NOT NULL,
    channel         text NOT NULL,
    channel_kind    @extschema@.channel_kind NOT NULL,
    qty             integer NOT NULL,
    line_value      bigint NOT NULL,             -- minor units that earned (store credit left out)
    points_per_unit numeric NOT NULL,
    multipliers     text[] NOT NULL DEFAULT '{}',
    factor          numeric NOT NULL DEFAULT 1,  -- product of the multipliers
    tier            text,                        -- the customer's tier just before the order
    points          bigint NOT NULL,
    remaining       bigint NOT NULL,
    returned_qty    integer NOT NULL DEFAULT 0,
    reversed        bigint NOT NULL DEFAULT 0,   -- points returns and cancellation claimed from the line
    earned_at       timestamptz NOT NULL,        -- the order's placed_at
    pending_days    integer NOT NULL,            -- days after delivery until available
    expiry_days     integer NOT NULL,            -- days available until expired
    available_at    timestamptz,                 -- NULL: pending until delivery
    expires_at      timestamptz,
    UNIQUE (order_no, line_no, rule_code),
    CHECK (remaining OPERATOR(pg_catalog.>=) 0 AND remaining OPERATOR(pg_catalog.<=) points)
);
CREATE INDEX loyalty_lot_customer ON @extschema@.loyalty_lot (customer_id, expires_at);
-- for expire_points(); a lot enters it when it gets its dates (delivery), not when credited
CREATE INDEX loyalty_lot_expiring ON @extschema@.loyalty_lot (expires_at)
    WHERE remaining OPERATOR(pg_catalog.>) 0 AND expires_at IS NOT NULL;
COMMENT ON TABLE @extschema@.loyalty_lot IS
    'points lots: one per order line and earn rule, with the rule, multipliers and tier that produced them';

-- the points ledger: every earning, redemption, expiry, reversal and credit
CREATE TABLE @extschema@.loyalty_entry (
    customer_id bigint NOT NULL,
    entry_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,                  -- earn, redeem, expire, reverse, credit
    points      bigint NOT NULL,
    amount      @extschema@.currency_amount,    -- redeem: the store credit; credit: the money (negative: taken back)
    order_no    text,
    line_no     integer,
    rule_code   text,                           -- credit: the reactivation rule
    channel     text,
    at          timestamptz NOT NULL,
    reason_code text NOT NULL,
    unrecovered bigint NOT NULL DEFAULT 0,      -- reverse: points already spent; credit: minor units already spent
    note        text,
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now()
    -- kinds and signs are checked by verify_loyalty(), not per row (see loyalty_lot)
);
CREATE INDEX loyalty_entry_customer ON @extschema@.loyalty_entry (customer_id, at);
-- the credits of an order, for its cancellation (earnings need no second index)
CREATE INDEX loyalty_entry_credit ON @extschema@.loyalty_entry (order_no) WHERE kind OPERATOR(pg_catalog.=) 'credit';
COMMENT ON TABLE @extschema@.loyalty_entry IS
    'append-only points ledger; loyalty_lot_use says which lots each debit consumed';

-- which lots a debit consumed (soonest expiry first), and how much of each;
-- an earning is its lots (a lot's points), so remaining = points + its uses
CREATE TABLE @extschema@.loyalty_lot_use (
    customer_id bigint NOT NULL,
    entry_id    bigint NOT NULL REFERENCES @extschema@.loyalty_entry,
    lot_id      bigint NOT NULL REFERENCES @extschema@.loyalty_lot,
    kind        text NOT NULL,
    at          timestamptz NOT NULL,
    points      bigint NOT NULL,
    PRIMARY KEY (entry_id, lot_id)
);
CREATE INDEX loyalty_lot_use_lot ON @extschema@.loyalty_lot_use (lot_id, at);

-- the history is append-only (merge_customers re-points customer_id)
CREATE TRIGGER loyalty_append_only BEFORE DELETE ON @extschema@.loyalty_entry
    FOR EACH ROW EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.loyalty_entry
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER loyalty_append_only BEFORE DELETE ON @extschema@.loyalty_lot_use
    FOR EACH ROW EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.loyalty_lot_use
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER loyalty_append_only BEFORE DELETE ON @extschema@.loyalty_lot
    FOR EACH ROW EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.loyalty_lot
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.loyalty_account
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();

-- every backend caches the loyalty configuration; a write sends a relcache invalidation
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.loyalty_terms
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.loyalty_earn_rule
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.loyalty_multiplier
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.loyalty_tier
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.loyalty_reactivation_rule
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();

-- earning: every INSERT into order_line (place_order() or a shop's own) credits its lines
-- (not SECURITY DEFINER: inside place_order() it runs as the owner already,
-- so it switches to the owner, with a pinned search_path, only for a shop's own INSERT)
CREATE FUNCTION @extschema@.loyalty_lines_post() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE TRIGGER loyalty_lines_post AFTER INSERT ON @extschema@.order_line
    REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.loyalty_lines_post();

-- configuration functions: they write rows a DBA may also edit
CREATE FUNCTION @extschema@.set_loyalty_terms(currency text, point_value @extschema@.currency_amount,
        expiry_days integer DEFAULT 730, pending_days integer DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    cur text := upper(btrim(currency));
BEGIN
    IF currency IS NULL OR NOT is_currency(cur) THEN
        RAISE EXCEPTION 'unknown currency "%" for loyalty terms', currency USING ERRCODE = '22023';
    END IF;
    IF point_value IS NULL OR currency_of(point_value) <> cur OR minor_units(point_value) <= 0 THEN
        RAISE EXCEPTION 'point value % must be a positive amount in %', point_value, cur USING ERRCODE = '22023',
            HINT = 'For one cent per point write ''0.01 EUR''; a DBA may store finer values in customer_account.loyalty_terms.';
    END IF;
    IF expiry_days IS NULL OR expiry_days <= 0 THEN
        RAISE EXCEPTION 'expiry_days % must be positive', expiry_days USING ERRCODE = '22023';
    END IF;
    IF pending_days < 0 THEN
        RAISE EXCEPTION 'pending_days % must not be negative', pending_days USING ERRCODE = '22023';
    END IF;
    INSERT INTO loyalty_terms AS t (currency, point_value, expiry_days, pending_days)
    VALUES (cur, amount_of(point_value), expiry_days, pending_days)
    ON CONFLICT ON CONSTRAINT loyalty_terms_pkey DO UPDATE
    SET point_value = EXCLUDED.point_value, expiry_days = EXCLUDED.expiry_days,
        pending_days = EXCLUDED.pending_days, updated_at = now();
END $$;

CREATE FUNCTION @extschema@.add_earn_rule(code text, points_per_unit numeric,
        channel_kind @extschema@.channel_kind DEFAULT NULL, sku_pattern text DEFAULT NULL,
        valid_from timestamptz DEFAULT NULL, valid_to timestamptz DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    existing loyalty_earn_rule;
BEGIN
    IF code IS NULL OR btrim(code) = '' OR points_per_unit IS NULL OR points_per_unit < 0 THEN
        RAISE EXCEPTION 'an earn rule needs a code and points_per_unit >= 0 (got %)', points_per_unit
            USING ERRCODE = '22023';
    END IF;
    IF valid_from >= valid_to THEN
        RAISE EXCEPTION 'earn rule "%" is valid from % to %: the period is empty', code, valid_from, valid_to
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO loyalty_earn_rule AS r (code, points_per_unit, channel_kind, sku_pattern, valid_from, valid_to)
    VALUES (code, points_per_unit, channel_kind, sku_pattern, valid_from, valid_to)
    ON CONFLICT ON CONSTRAINT loyalty_earn_rule_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM loyalty_earn_rule r WHERE r.code = add_earn_rule.code;
        IF (existing.points_per_unit, existing.channel_kind, existing.sku_pattern, existing.valid_from, existing.valid_to)
           IS DISTINCT FROM (points_per_unit, channel_kind, sku_pattern, valid_from, valid_to) THEN
            RAISE EXCEPTION 'earn rule "%" already exists with other settings', code USING ERRCODE = '23505',
                HINT = 'Change a rule with UPDATE customer_account.loyalty_earn_rule.';
        END IF;
    END IF;
END $$;

CREATE FUNCTION @extschema@.add_points_multiplier(code text, factor numeric, tier text DEFAULT NULL,
        channel_kind @extschema@.channel_kind DEFAULT NULL, sku_pattern text DEFAULT NULL,
        valid_from timestamptz DEFAULT NULL, valid_to timestamptz DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    existing loyalty_multiplier;
BEGIN
    IF code IS NULL OR btrim(code) = '' OR factor IS NULL OR factor <= 0 THEN
        RAISE EXCEPTION 'a points multiplier needs a code and a positive factor (got %)', factor USING ERRCODE = '22023';
    END IF;
    IF valid_from >= valid_to THEN
        RAISE EXCEPTION 'multiplier "%" is valid from % to %: the period is empty', code, valid_from, valid_to
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO loyalty_multiplier AS m (code, factor, tier, channel_kind, sku_pattern, valid_from, valid_to)
    VALUES (code, factor, tier, channel_kind, sku_pattern, valid_from, valid_to)
    ON CONFLICT ON CONSTRAINT loyalty_multiplier_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM loyalty_multiplier m WHERE m.code = add_points_multiplier.code;
        IF (existing.factor, existing.tier, existing.channel_kind, existing.sku_pattern, existing.valid_from, existing.valid_to)
           IS DISTINCT FROM (factor, tier, channel_kind, sku_pattern, valid_from, valid_to) THEN
            RAISE EXCEPTION 'points multiplier "%" already exists with other settings', code USING ERRCODE = '23505',
                HINT = 'Change a multiplier with UPDATE customer_account.loyalty_multiplier.';
        END IF;
    END IF;
END $$;

CREATE FUNCTION @extschema@.add_loyalty_tier(tier text, currency text, min_revenue_12m @extschema@.currency_amount)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    cur text := upper(btrim(currency));
    existing loyalty_tier;
BEGIN
    IF tier IS NULL OR btrim(tier) = '' OR currency IS NULL OR NOT is_currency(cur) THEN
        RAISE EXCEPTION 'a loyalty tier needs a name and a known currency (got "%", "%")', tier, currency
            USING ERRCODE = '22023';
    END IF;
    IF min_revenue_12m IS NULL OR currency_of(min_revenue_12m) <> cur OR minor_units(min_revenue_12m) < 0 THEN
        RAISE EXCEPTION 'tier threshold % must be an amount in % that is not negative', min_revenue_12m, cur
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO loyalty_tier AS t (currency, tier, min_revenue_12m) VALUES (cur, tier, min_revenue_12m)
    ON CONFLICT ON CONSTRAINT loyalty_tier_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM loyalty_tier t WHERE t.currency = cur AND t.tier = add_loyalty_tier.tier;
        IF existing.min_revenue_12m <> min_revenue_12m THEN
            RAISE EXCEPTION 'loyalty tier "%" in % already exists with threshold %', tier, cur, existing.min_revenue_12m
                USING ERRCODE = '23505', HINT = 'Change a tier with UPDATE customer_account.loyalty_tier.';
        END IF;
    END IF;
END $$;

CREATE FUNCTION @extschema@.add_reactivation_rule(code text, target_kind @extschema@.channel_kind, absent_days integer,
        source_kind @extschema@.channel_kind, min_purchases integer, within_days integer,
        credit @extschema@.currency_amount DEFAULT NULL, credit_percent numeric DEFAULT NULL,
        max_credit @extschema@.currency_amount DEFAULT NULL, once_per_days integer DEFAULT 365)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    existing loyalty_reactivation_rule;
BEGIN
    IF code IS NULL OR btrim(code) = '' OR target_kind IS NULL OR source_kind IS NULL THEN
        RAISE EXCEPTION 'a reactivation rule needs a code, a target kind and a source kind' USING ERRCODE = '22023';
    END IF;
    IF absent_days IS NULL OR absent_days < 0 OR min_purchases IS NULL OR min_purchases < 0
       OR within_days IS NULL OR within_days <= 0 OR once_per_days IS NULL OR once_per_days < 0 THEN
        RAISE EXCEPTION 'reactivation rule "%": absent_days, min_purchases and once_per_days must not be negative, within_days must be positive', code
            USING ERRCODE = '22023';
    END IF;
    IF (credit IS NULL) = (credit_percent IS NULL) THEN
        RAISE EXCEPTION 'reactivation rule "%" needs exactly one of credit and credit_percent', code USING ERRCODE = '22023';
    END IF;
    IF minor_units(credit) <= 0 OR credit_percent <= 0 OR credit_percent > 100 OR minor_units(max_credit) <= 0 THEN
        RAISE EXCEPTION 'reactivation rule "%": the credit must be positive and a percentage at most 100', code
            USING ERRCODE = '22023';
    END IF;
    IF max_credit IS NOT NULL AND credit_percent IS NULL THEN
        RAISE EXCEPTION 'reactivation rule "%": max_credit caps a credit_percent only', code USING ERRCODE = '22023';
    END IF;
    INSERT INTO loyalty_reactivation_rule AS r (code, target_kind, absent_days, source_kind, min_purchases, within_days,
                                                credit, credit_percent, max_credit, once_per_days)
    VALUES (code, target_kind, absent_days, source_kind, min_purchases, within_days, credit, credit_percent, max_credit,
            once_per_days)
    ON CONFLICT ON CONSTRAINT loyalty_reactivation_rule_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM loyalty_reactivation_rule r WHERE r.code = add_reactivation_rule.code;
        IF (existing.target_kind, existing.absent_days, existing.source_kind, existing.min_purchases, existing.within_days,
            existing.credit, existing.credit_percent, existing.max_credit, existing.once_per_days)
           IS DISTINCT FROM (target_kind, absent_days, source_kind, min_purchases, within_days, credit, credit_percent,
                             max_credit, once_per_days) THEN
            RAISE EXCEPTION 'reactivation rule "%" already exists with other settings', code USING ERRCODE = '23505',
                HINT = 'Change a rule with UPDATE customer_account.loyalty_reactivation_rule.';
        END IF;
    END IF;
END $$;

-- reading and spending
CREATE FUNCTION @extschema@.loyalty_points(customer_id bigint, as_of timestamptz DEFAULT now(),
        OUT available bigint, OUT pending bigint, OUT expiring_next bigint, OUT expiring_at timestamptz)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'loyalty_points' LANGUAGE C STABLE STRICT ROWS 1;
COMMENT ON FUNCTION @extschema@.loyalty_points(bigint, timestamptz) IS
    'available, pending and soonest-expiring points at as_of, from the dates alone; reads by direct index scans (EXECUTE is the authorisation)';

CREATE FUNCTION @extschema@.redeem_points(customer_id bigint, points bigint, channel text)
RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME', 'redeem_points' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = @extschema@, pg_temp;
COMMENT ON FUNCTION @extschema@.redeem_points(bigint, bigint, text) IS
    'turns available points (soonest expiry first) into store credit in the channel''s currency, rounded down';

CREATE FUNCTION @extschema@.loyalty_history(customer_id bigint,
        OUT at timestamptz, OUT kind text, OUT points bigint, OUT amount @extschema@.currency_amount,
        OUT order_no text, OUT reason_code text, OUT reason text)
RETURNS SETOF record LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    lang text := (require_customer(loyalty_history.customer_id)).language;
BEGIN
    RETURN QUERY
    SELECT e.at, e.kind, e.points, e.amount, e.order_no, e.reason_code, reason_text(e.reason_code, lang)
    FROM loyalty_entry e WHERE e.customer_id = loyalty_history.customer_id
    ORDER BY e.at, e.entry_id;
END $$;

-- books what expired up to as_of (at each lot's expiry); a second run books nothing
CREATE FUNCTION @extschema@.expire_points(as_of timestamptz DEFAULT now()) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    n bigint;
BEGIN
    IF as_of IS NULL OR as_of > now() THEN
        RAISE EXCEPTION 'cannot book expiry as of %, which is later than now', as_of USING ERRCODE = '22023',
            HINT = 'Readings at a future date already leave out what will have expired by then.';
    END IF;
    -- the loyalty accounts first, in id order: the lock order every debit keeps
    PERFORM 1 FROM loyalty_account a
    WHERE a.customer_id IN (SELECT l.customer_id FROM loyalty_lot l WHERE l.remaining > 0 AND l.expires_at <= as_of)
    ORDER BY a.customer_id FOR UPDATE;
    WITH due AS (
        SELECT l.lot_id, l.customer_id, l.remaining, l.expires_at FROM loyalty_lot l
        WHERE l.remaining > 0 AND l.expires_at <= as_of FOR UPDATE
    ), upd AS (
        UPDATE loyalty_lot l SET remaining = 0 FROM due WHERE l.lot_id = due.lot_id RETURNING l.lot_id
    ), grp AS (
        SELECT due.customer_id, due.expires_at, sum(due.remaining)::bigint AS pts FROM due GROUP BY 1, 2
    ), ent AS (
        INSERT INTO loyalty_entry (customer_id, kind, points, at, reason_code)
        SELECT grp.customer_id, 'expire', -grp.pts, grp.expires_at, 'points_expired' FROM grp
        RETURNING entry_id, loyalty_entry.customer_id, loyalty_entry.at
    ), uses AS (
        INSERT INTO loyalty_lot_use (customer_id, entry_id, lot_id, kind, at, points)
        SELECT due.customer_id, ent.entry_id, due.lot_id, 'expire', due.expires_at, -due.remaining
        FROM due JOIN ent ON ent.customer_id = due.customer_id AND ent.at = due.expires_at
    ), acc AS (
        UPDATE loyalty_account a SET points = a.points - s.pts, expired = a.expired + s.pts,
            last_at = GREATEST(a.last_at, s.last_at), updated_at = now()
        FROM (SELECT grp.customer_id, sum(grp.pts) AS pts, max(grp.expires_at) AS last_at FROM grp GROUP BY 1) s
        WHERE a.customer_id = s.customer_id
    )
    SELECT coalesce(sum(grp.pts), 0)::bigint INTO n FROM grp;
    RETURN n;
END $$;

-- the finance view: outstanding points by the currency of the orders that earned them
CREATE FUNCTION @extschema@.loyalty_liability(as_of timestamptz DEFAULT now(),
        OUT currency text, OUT pending bigint, OUT available bigint, OUT expiring_30d bigint,
        OUT expiring_90d bigint, OUT value @extschema@.currency_amount)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
    WITH fast AS (      -- nothing booked after as_of: the lots as they are
        SELECT loyalty_liability.as_of >= coalesce((SELECT max(a.last_at) FROM loyalty_account a), '-infinity') AS yes
    ), lots AS (
        SELECT l.currency, l.available_at, l.expires_at, l.remaining AS rem
        FROM loyalty_lot l, fast
        WHERE fast.yes AND l.remaining > 0 AND l.earned_at <= loyalty_liability.as_of
        UNION ALL       -- else what every entry up to as_of left in them
        SELECT l.currency, l.available_at, l.expires_at,
               l.points + coalesce((SELECT sum(u.points) FROM loyalty_lot_use u
                                    WHERE u.lot_id = l.lot_id AND u.at <= loyalty_liability.as_of
                                      AND u.kind <> 'expire'), 0)
        FROM loyalty_lot l, fast
        WHERE NOT fast.yes AND l.earned_at <= loyalty_liability.as_of
    ), classed AS (
        SELECT lots.currency, lots.rem, lots.expires_at,
               (lots.available_at IS NULL OR lots.available_at > loyalty_liability.as_of) AS is_pending,
               (lots.available_at <= loyalty_liability.as_of AND lots.expires_at > loyalty_liability.as_of) AS is_available
        FROM lots
    ), sums AS (
        SELECT c.currency,
               coalesce(sum(c.rem) FILTER (WHERE c.is_pending), 0)::bigint AS pending,
               coalesce(sum(c.rem) FILTER (WHERE c.is_available), 0)::bigint AS available,
               coalesce(sum(c.rem) FILTER (WHERE c.is_available
                   AND c.expires_at <= loyalty_liability.as_of + interval '30 days'), 0)::bigint AS expiring_30d,
               coalesce(sum(c.rem) FILTER (WHERE c.is_available
                   AND c.expires_at <= loyalty_liability.as_of + interval '90 days'), 0)::bigint AS expiring_90d
        FROM classed c GROUP BY c.currency
    )
    SELECT s.currency, s.pending, s.available, s.expiring_30d, s.expiring_90d,
           CASE WHEN t.point_value IS NOT NULL THEN currency_amount_from_minor_units(
               floor((s.pending + s.available) * t.point_value * (10::numeric ^ cur.minor_units))::bigint, s.currency) END
    FROM sums s
    LEFT JOIN loyalty_terms t ON t.currency = s.currency
    LEFT JOIN currencies() cur ON cur.code = s.currency
    ORDER BY s.currency
$$;

-- the points ledger rebuilt: the lots, the entries and the cached totals must agree (always empty)
CREATE FUNCTION @extschema@.verify_loyalty(OUT customer_id bigint, OUT figure text, OUT stored text, OUT recomputed text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
    WITH lot_sums AS (
        SELECT l.customer_id, sum(l.remaining)::bigint AS remaining, sum(l.points)::bigint AS points
        FROM loyalty_lot l GROUP BY 1
    ), entry_sums AS (
        SELECT e.customer_id, sum(e.points)::bigint AS points,
               coalesce(sum(e.points) FILTER (WHERE e.kind = 'earn'), 0)::bigint AS earned,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'redeem'), 0)::bigint AS redeemed,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'expire'), 0)::bigint AS expired,
               coalesce(-sum(e.points) FILTER (WHERE e.kind = 'reverse'), 0)::bigint AS reversed,
               max(e.at) FILTER (WHERE e.kind <> 'credit' AND e.points <> 0) AS last_at
        FROM loyalty_entry e GROUP BY 1
    ), customers AS (
        SELECT a.customer_id FROM loyalty_account a
        UNION SELECT ls.customer_id FROM lot_sums ls
        UNION SELECT es.customer_id FROM entry_sums es
    )
    SELECT c.customer_id, f.figure, f.stored, f.recomputed
    FROM customers c
    LEFT JOIN loyalty_account a ON a.customer_id = c.customer_id
    LEFT JOIN lot_sums ls ON ls.customer_id = c.customer_id
    LEFT JOIN entry_sums es ON es.customer_id = c.customer_id
    CROSS JOIN LATERAL (VALUES
        ('points = lots remaining', coalesce(a.points, 0)::text, coalesce(ls.remaining, 0)::text),
        ('points = points ledger', coalesce(a.points, 0)::text, coalesce(es.points, 0)::text),
        ('earned', coalesce(a.earned, 0)::text, coalesce(es.earned, 0)::text),
        ('earned = lots'' points', coalesce(a.earned, 0)::text, coalesce(ls.points, 0)::text),
        ('redeemed', coalesce(a.redeemed, 0)::text, coalesce(es.redeemed, 0)::text),
        ('expired', coalesce(a.expired, 0)::text, coalesce(es.expired, 0)::text),
        ('reversed', coalesce(a.reversed, 0)::text, coalesce(es.reversed, 0)::text),
        ('last_at', a.last_at::text, es.last_at::text),
        ('points not negative', (coalesce(a.points, 0) >= 0)::text, 'true')
    ) AS f(figure, stored, recomputed)
    WHERE f.stored IS DISTINCT FROM f.recomputed
    UNION ALL           -- every lot holds what it earned less what the debits took from it
    SELECT l.customer_id, 'lot ' || l.lot_id || ' remaining', l.remaining::text, (l.points + coalesce(u.points, 0))::text
    FROM loyalty_lot l
    LEFT JOIN (SELECT lu.lot_id, sum(lu.points)::bigint AS points FROM loyalty_lot_use lu GROUP BY 1) u
           ON u.lot_id = l.lot_id
    WHERE l.remaining <> l.points + coalesce(u.points, 0)
    UNION ALL           -- kinds and signs: earnings add, debits take, credits are money only
    SELECT e.customer_id, 'entry ' || e.entry_id || ' sign', e.kind || ' ' || e.points, 'earn > 0, credit = 0, debits <= 0'
    FROM loyalty_entry e
    WHERE NOT CASE e.kind WHEN 'earn' THEN e.points > 0 WHEN 'credit' THEN e.points = 0
                          WHEN 'redeem' THEN e.points <= 0 WHEN 'expire' THEN e.points <= 0
                          WHEN 'reverse' THEN e.points <= 0 ELSE false END
    UNION ALL           -- what returns and cancellations claimed stays within what the line earned and sold
    SELECT l.customer_id, 'lot ' || l.lot_id || ' claims', l.reversed || ' of ' || l.points || ', ' || l.returned_qty || ' of ' || l.qty,
           'within the points and units'
    FROM loyalty_lot l
    WHERE l.reversed < 0 OR l.reversed > l.points OR l.returned_qty < 0 OR l.returned_qty > l.qty
    UNION ALL           -- a lot is dated once it is delivered: both dates or none, in order
    SELECT l.customer_id, 'lot ' || l.lot_id || ' dates', l.available_at::text || ' / ' || l.expires_at::text,
           'both or none, available before expiry'
    FROM loyalty_lot l
    WHERE (l.available_at IS NULL) <> (l.expires_at IS NULL) OR l.available_at > l.expires_at
    UNION ALL           -- every debit took exactly the points its lot uses took
    SELECT e.customer_id, 'entry ' || e.entry_id || ' points', e.points::text, coalesce(u.points, 0)::text
    FROM loyalty_entry e
    LEFT JOIN (SELECT lu.entry_id, sum(lu.points)::bigint AS points FROM loyalty_lot_use lu GROUP BY 1) u
           ON u.entry_id = e.entry_id
    WHERE e.kind NOT IN ('earn', 'credit') AND e.points <> coalesce(u.points, 0)
    UNION ALL           -- a use belongs to the customer of its lot and of its entry
    SELECT u.customer_id, 'use of lot ' || u.lot_id || ' by entry ' || u.entry_id || ' customer',
           u.customer_id::text, l.customer_id::text || '/' || e.customer_id::text
    FROM loyalty_lot_use u JOIN loyalty_lot l ON l.lot_id = u.lot_id JOIN loyalty_entry e ON e.entry_id = u.entry_id
    WHERE u.customer_id <> l.customer_id OR u.customer_id <> e.customer_id
    ORDER BY 1, 2
$$;
COMMENT ON FUNCTION @extschema@.verify_loyalty() IS
    'the loyalty totals, lots and entries rebuilt from the lot uses; always empty';

-- the returns booking's hook as SQL, for tests (not granted to anyone)
CREATE FUNCTION @extschema@.loyalty_reverse_return(customer_id bigint, order_no text, line_no integer,
        qty integer, at timestamptz DEFAULT now())
RETURNS bigint
    AS 'MODULE_PATHNAME', 'loyalty_reverse_return_sql' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = @extschema@, pg_temp;

-- balance() gains the customer's tier as its last column; grants on it survive the upgrade
DO $do$
DECLARE
    grants text[];
    g text;
BEGIN
    SELECT coalesce(array_agg(pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.balance(bigint, timestamptz) TO %s%s',
               CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r.rolname) END,
               CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)), '{}')
    INTO grants
    FROM pg_catalog.pg_proc p
    CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
    LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
    WHERE p.oid OPERATOR(pg_catalog.=) '@extschema@.balance(bigint, timestamptz)'::pg_catalog.regprocedure
      AND a.grantee OPERATOR(pg_catalog.<>) p.proowner AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE';
    DROP FUNCTION @extschema@.balance(bigint, timestamptz);
    CREATE FUNCTION @extschema@.balance(customer_id bigint, as_of timestamptz DEFAULT now(),
            OUT customer_id bigint, OUT currency text, OUT balance @extschema@.currency_amount,
            OUT open_amount @extschema@.currency_amount, OUT overdue_amount @extschema@.currency_amount,
            OUT oldest_overdue_days integer, OUT store_credit @extschema@.currency_amount,
            OUT lifetime_revenue @extschema@.currency_amount, OUT revenue_12m @extschema@.currency_amount,
            OUT orders_12m integer, OUT returned_value_12m @extschema@.currency_amount, OUT return_rate numeric,
            OUT last_purchase_at timestamptz, OUT last_purchase_by_kind jsonb, OUT dunning_level integer,
            OUT value_segment text, OUT loyalty_tier text)
    RETURNS SETOF record
        AS 'MODULE_PATHNAME', 'account_balance' LANGUAGE C STABLE STRICT ROWS 2;
    COMMENT ON FUNCTION @extschema@.balance(bigint, timestamptz) IS
        'the account at a glance, one row per currency; reads by direct index scans (EXECUTE is the authorisation)';
    REVOKE ALL ON FUNCTION @extschema@.balance(bigint, timestamptz) FROM PUBLIC;
    FOREACH g IN ARRAY grants LOOP
        EXECUTE g;
    END LOOP;
END $do$;

-- pg_dump keeps every loyalty table (and where identities continue)
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_terms', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_earn_rule', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_multiplier', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_tier', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_reactivation_rule', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_account', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_lot', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_entry', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.loyalty_lot_use', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.loyalty_lot', 'lot_id'), '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.loyalty_entry', 'entry_id'), '');

REVOKE ALL ON @extschema@.loyalty_terms, @extschema@.loyalty_earn_rule, @extschema@.loyalty_multiplier,
    @extschema@.loyalty_tier, @extschema@.loyalty_reactivation_rule, @extschema@.loyalty_account,
    @extschema@.loyalty_lot, @extschema@.loyalty_entry, @extschema@.loyalty_lot_use FROM PUBLIC;


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
