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



------------------------------------------------------------------------------
-- section: capture triggers, role profiles, audit
------------------------------------------------------------------------------

-- Audit: who booked each ledger entry.  The posting core inserts into the
-- ledger as the extension's owner (SECURITY DEFINER), so a default of
-- current_user would name the owner; audit_role() returns the role in effect
-- (the session's role, or the one SET ROLE chose).  Rows booked before 1.1.0
-- keep NULL (unknown): the columns get their defaults after they exist.
CREATE FUNCTION @extschema@.audit_role() RETURNS text
    AS 'MODULE_PATHNAME', 'audit_role' LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.audit_role() IS
    'the role in effect (SET ROLE counts), also inside SECURITY DEFINER functions';
ALTER TABLE @extschema@.ledger
    ADD COLUMN booked_by text,
    ADD COLUMN session_role text,
    ADD COLUMN application_name text;
ALTER TABLE @extschema@.ledger
    ALTER COLUMN booked_by SET DEFAULT @extschema@.audit_role(),
    ALTER COLUMN session_role SET DEFAULT (SESSION_USER)::text,
    ALTER COLUMN application_name SET DEFAULT NULLIF(pg_catalog.current_setting('application_name'), '');
COMMENT ON COLUMN @extschema@.ledger.booked_by IS 'the role in effect when the entry was booked (SET ROLE counts)';
COMMENT ON COLUMN @extschema@.ledger.session_role IS 'the session user (the login) when the entry was booked';
COMMENT ON COLUMN @extschema@.ledger.application_name IS 'application_name of the session that booked the entry';

-- Role profiles.  The extension creates no roles: grant_profile() gives an
-- existing role the rights of a profile, recorded here.  A pos or shop
-- profile with a channel restricts the role's writes to that channel.
CREATE TABLE @extschema@.profile_grant (
    role_name  name NOT NULL,
    profile    text NOT NULL CHECK (profile IN ('pos', 'shop', 'callcenter', 'report', 'admin')),
    channel    text REFERENCES @extschema@.channel ON UPDATE CASCADE,
    granted_at timestamptz NOT NULL DEFAULT now(),
    granted_by text NOT NULL DEFAULT @extschema@.audit_role(),
    CHECK (channel IS NULL OR profile IN ('pos', 'shop')),
    UNIQUE NULLS NOT DISTINCT (role_name, profile, channel)
);
COMMENT ON TABLE @extschema@.profile_grant IS
    'profiles given with grant_profile(); a channel binds a pos or shop role''s writes to it';
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.profile_grant
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();

-- what each profile may do: the README's table, as data grant_profile() reads.
-- Objects that do not exist (yet) in this installation are skipped.
CREATE TABLE @extschema@.profile_privilege (
    profile     text NOT NULL CHECK (profile IN ('pos', 'shop', 'callcenter', 'report', 'admin')),
    object_type text NOT NULL CHECK (object_type IN ('function', 'table')),
    object      text NOT NULL,   -- function signature or table name, in the extension's schema
    privilege   text NOT NULL CHECK (privilege ~ '^(EXECUTE|SELECT|INSERT|UPDATE|DELETE)( \([a-z_, ]+\))?$'),
    shipped     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (profile, object_type, object, privilege)
);
COMMENT ON TABLE @extschema@.profile_privilege IS
    'the rights of each profile; grant_profile() grants those whose object exists';

INSERT INTO @extschema@.profile_privilege (profile, object_type, object, privilege, shipped)
SELECT p.profile, 'function', f.sig, 'EXECUTE', true
FROM (VALUES
    -- find a customer, read the account, decide
    ('pos', 'find_customer(text, text)'), ('shop', 'find_customer(text, text)'), ('callcenter', 'find_customer(text, text)'),
    ('pos', 'balance(bigint, timestamptz)'), ('shop', 'balance(bigint, timestamptz)'), ('callcenter', 'balance(bigint, timestamptz)'),
    ('pos', 'payment_options(bigint, currency_amount, text)'), ('shop', 'payment_options(bigint, currency_amount, text)'),
    ('callcenter', 'payment_options(bigint, currency_amount, text)'),
    -- sign up a customer at the till or at checkout
    ('pos', 'register_customer(text, text, text, text, timestamptz)'), ('shop', 'register_customer(text, text, text, text, timestamptz)'),
    ('pos', 'link_identity(bigint, text, text)'), ('shop', 'link_identity(bigint, text, text)'),
    -- write orders and payments (for the channel the profile names)
    ('pos', 'place_order(text, bigint, text, jsonb, text, timestamptz)'), ('shop', 'place_order(text, bigint, text, jsonb, text, timestamptz)'),
    ('pos', 'mark_delivered(text, timestamptz)'), ('shop', 'mark_delivered(text, timestamptz)'),
    ('pos', 'cancel_order(text, timestamptz)'), ('shop', 'cancel_order(text, timestamptz)'),
    ('pos', 'record_payment(text, bigint, currency_amount, text, text, text, timestamptz)'),
    ('shop', 'record_payment(text, bigint, currency_amount, text, text, text, timestamptz)'),
    ('callcenter', 'record_payment(text, bigint, currency_amount, text, text, text, timestamptz)'),
    -- returns
    ('pos', 'decide_return(text, text, integer, text, timestamptz)'), ('shop', 'decide_return(text, text, integer, text, timestamptz)'),
    ('callcenter', 'decide_return(text, text, integer, text, timestamptz)'),
    ('pos', 'accept_return(text, text, integer, text, text)'), ('shop', 'accept_return(text, text, integer, text, text)'),
    ('shop', 'announce_return(text, jsonb, text)'),
    -- baskets: saved on the web, paid at the till
    ('shop', 'save_basket(bigint, text, jsonb, interval)'),
    ('pos', 'resume_basket(text, text)'), ('shop', 'resume_basket(text, text)'),
    ('pos', 'checkout_basket(text, text, text, text)'), ('shop', 'checkout_basket(text, text, text, text)'),
    -- loyalty
    ('pos', 'loyalty_points(bigint, timestamptz)'), ('shop', 'loyalty_points(bigint, timestamptz)'),
    ('callcenter', 'loyalty_points(bigint, timestamptz)'),
    ('pos', 'redeem_points(bigint, bigint, text)'), ('shop', 'redeem_points(bigint, bigint, text)'),
    ('callcenter', 'loyalty_history(bigint)'),
    -- status events back to the channel
    ('shop', 'outbox_pending(text, integer)'), ('shop', 'ack_outbox(bigint)'),
    -- may this role write for that channel? (asked before acting)
    ('pos', 'may_write_channel(text)'), ('shop', 'may_write_channel(text)'),
    -- the call center's screen
    ('callcenter', 'account_advice(bigint)'), ('callcenter', 'search(text, integer)'),
    -- reports
    ('report', 'aging_report(date)'), ('report', 'channel_report(timestamptz, timestamptz)'),
    ('report', 'inactive_customers(integer)'), ('report', 'verify_balances()'),
    ('report', 'loyalty_liability(timestamptz)'),
    -- administration: policy and configuration
    ('admin', 'add_channel(text, channel_kind, text, integer, currency_amount, integer)'),
    ('admin', 'add_payment_method(text, boolean, channel_kind[], text, numeric, numeric)'),
    ('admin', 'set_credit_limit(bigint, currency_amount)'),
    ('admin', 'merge_customers(bigint, bigint)'), ('admin', 'forget_customer(bigint)'),
    ('admin', 'set_disputed(text, boolean)'), ('admin', 'dunning_run(date)'),
    ('admin', 'refresh_value_segments(timestamptz)'), ('admin', 'outbox_pending(text, integer)'),
    ('admin', 'ack_outbox(bigint)'), ('admin', 'verify_balances()'),
    ('admin', 'set_loyalty_terms(text, currency_amount, integer, integer)'),
    ('admin', 'add_earn_rule(text, numeric, channel_kind, text, timestamptz, timestamptz)'),
    ('admin', 'add_points_multiplier(text, numeric, text, channel_kind, text, timestamptz, timestamptz)'),
    ('admin', 'add_loyalty_tier(text, text, currency_amount)'),
    ('admin', 'add_reactivation_rule(text, channel_kind, integer, channel_kind, integer, integer, currency_amount, numeric, currency_amount, integer)'),
    ('admin', 'expire_points(timestamptz)'),
    ('admin', 'check_capture(regclass, boolean)'), ('admin', 'capture_backfill(regclass, integer)'),
    ('admin', 'replay_quarantine(regclass)')
) AS f(profile, sig)
JOIN (VALUES ('pos'), ('shop'), ('callcenter'), ('report'), ('admin')) AS p(profile) USING (profile);

INSERT INTO @extschema@.profile_privilege (profile, object_type, object, privilege, shipped) VALUES
    -- channels that write their own rows (plain INSERTs, channel checked)
    ('pos', 'table', 'orders', 'INSERT', true), ('pos', 'table', 'order_line', 'INSERT', true),
    ('pos', 'table', 'payment', 'INSERT', true),
    ('shop', 'table', 'orders', 'INSERT', true), ('shop', 'table', 'order_line', 'INSERT', true),
    ('shop', 'table', 'payment', 'INSERT', true),
    -- the call center reads accounts and history, writes notes and payments
    ('callcenter', 'table', 'customer', 'SELECT', true), ('callcenter', 'table', 'customer_identity', 'SELECT', true),
    ('callcenter', 'table', 'orders', 'SELECT', true), ('callcenter', 'table', 'order_line', 'SELECT', true),
    ('callcenter', 'table', 'payment', 'SELECT', true), ('callcenter', 'table', 'ledger', 'SELECT', true),
    ('callcenter', 'table', 'open_item', 'SELECT', true), ('callcenter', 'table', 'account_state', 'SELECT', true),
    ('callcenter', 'table', 'customer_note', 'SELECT', true),
    ('callcenter', 'table', 'customer_note', 'INSERT (customer_id, body)', true),
    ('callcenter', 'table', 'payment', 'INSERT', true),
    -- the policy tables
    ('admin', 'table', 'channel', 'SELECT', true), ('admin', 'table', 'channel', 'INSERT', true),
    ('admin', 'table', 'channel', 'UPDATE', true), ('admin', 'table', 'channel', 'DELETE', true),
    ('admin', 'table', 'payment_method', 'SELECT', true), ('admin', 'table', 'payment_method', 'INSERT', true),
    ('admin', 'table', 'payment_method', 'UPDATE', true), ('admin', 'table', 'payment_method', 'DELETE', true),
    ('admin', 'table', 'credit_policy', 'SELECT', true), ('admin', 'table', 'credit_policy', 'INSERT', true),
    ('admin', 'table', 'credit_policy', 'UPDATE', true), ('admin', 'table', 'credit_policy', 'DELETE', true),
    ('admin', 'table', 'dunning_level', 'SELECT', true), ('admin', 'table', 'dunning_level', 'INSERT', true),
    ('admin', 'table', 'dunning_level', 'UPDATE', true), ('admin', 'table', 'dunning_level', 'DELETE', true),
    ('admin', 'table', 'policy', 'SELECT', true), ('admin', 'table', 'policy', 'INSERT', true),
    ('admin', 'table', 'policy', 'UPDATE', true), ('admin', 'table', 'policy', 'DELETE', true),
    ('admin', 'table', 'profile_grant', 'SELECT', true),
    ('admin', 'table', 'capture_quarantine', 'SELECT', true), ('admin', 'table', 'capture_waiting', 'SELECT', true),
    ('admin', 'table', 'capture_backfill_state', 'SELECT', true);

-- the grants of one profile's existing objects, as GRANT or REVOKE statements
CREATE FUNCTION @extschema@.profile_statements(profile text, role_name name, grant_ boolean)
RETURNS SETOF text LANGUAGE sql STABLE SET search_path = @extschema@, pg_temp AS $$
    SELECT pg_catalog.format(CASE WHEN grant_ THEN 'GRANT %s ON %s %s TO %I' ELSE 'REVOKE %s ON %s %s FROM %I' END,
               pp.privilege, CASE pp.object_type WHEN 'function' THEN 'FUNCTION' ELSE 'TABLE' END,
               CASE pp.object_type WHEN 'function' THEN pg_catalog.to_regprocedure('@extschema@.' OPERATOR(pg_catalog.||) pp.object)::text
                    ELSE pg_catalog.to_regclass('@extschema@.' OPERATOR(pg_catalog.||) pp.object)::text END,
               role_name)
    FROM @extschema@.profile_privilege pp
    WHERE pp.profile OPERATOR(pg_catalog.=) profile_statements.profile
      AND CASE pp.object_type
            WHEN 'function' THEN pg_catalog.to_regprocedure('@extschema@.' OPERATOR(pg_catalog.||) pp.object) IS NOT NULL
            ELSE pg_catalog.to_regclass('@extschema@.' OPERATOR(pg_catalog.||) pp.object) IS NOT NULL END
    ORDER BY pp.object_type, pp.object, pp.privilege
$$;

-- grant_profile(role, profile, channel): the rights of a profile for an
-- existing role; channel binds a pos or shop role's writes to one channel
CREATE FUNCTION @extschema@.grant_profile(role_name name, profile text, channel text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    ch_kind channel_kind;
    stmt text;
BEGIN
    IF role_name IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) role_name) THEN
        RAISE EXCEPTION 'role "%" does not exist', role_name USING ERRCODE = '42704',
            HINT = 'The extension creates no roles: CREATE ROLE first.';
    END IF;
    IF profile IS NULL OR profile NOT IN ('pos', 'shop', 'callcenter', 'report', 'admin') THEN
        RAISE EXCEPTION 'unknown profile "%"', profile USING ERRCODE = '22023',
            HINT = 'Profiles are pos, shop, callcenter, report and admin.';
    END IF;
    IF channel IS NOT NULL THEN
        IF profile NOT IN ('pos', 'shop') THEN
            RAISE EXCEPTION 'profile % is not bound to a channel; only pos and shop are', profile USING ERRCODE = '22023';
        END IF;
        SELECT c.kind INTO ch_kind FROM channel c WHERE c.code OPERATOR(pg_catalog.=) grant_profile.channel;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown channel "%"', channel USING ERRCODE = 'RA002';
        END IF;
        IF profile = 'pos' AND ch_kind <> 'store' THEN
            RAISE EXCEPTION 'a pos profile is for a store channel; "%" is a % channel', channel, ch_kind USING ERRCODE = '22023';
        END IF;
        IF profile = 'shop' AND ch_kind = 'store' THEN
            RAISE EXCEPTION 'a shop profile is for a web, app, marketplace or call-center channel; "%" is a store', channel
                USING ERRCODE = '22023', HINT = 'Give a till the pos profile.';
        END IF;
    END IF;
    INSERT INTO profile_grant (role_name, profile, channel) VALUES (role_name, profile, channel)
    ON CONFLICT DO NOTHING;
    EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA @extschema@ TO %I', role_name);
    FOR stmt IN SELECT * FROM profile_statements(profile, role_name, true) LOOP
        EXECUTE stmt;
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.grant_profile(name, text, text) IS
    'give an existing role the profile pos, shop, callcenter, report or admin; channel binds a pos or shop role''s writes';

-- revoke_profile(role, profile): the profile's rights go, except those
-- another profile of the same role still gives
CREATE FUNCTION @extschema@.revoke_profile(role_name name, profile text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    other text;
    stmt text;
BEGIN
    IF profile IS NULL OR profile NOT IN ('pos', 'shop', 'callcenter', 'report', 'admin') THEN
        RAISE EXCEPTION 'unknown profile "%"', profile USING ERRCODE = '22023',
            HINT = 'Profiles are pos, shop, callcenter, report and admin.';
    END IF;
    DELETE FROM profile_grant g WHERE g.role_name OPERATOR(pg_catalog.=) revoke_profile.role_name
        AND g.profile OPERATOR(pg_catalog.=) revoke_profile.profile;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) role_name) THEN
        RETURN;   -- a dropped role has no rights left to revoke
    END IF;
    FOR stmt IN SELECT * FROM profile_statements(profile, role_name, false) LOOP
        EXECUTE stmt;
    END LOOP;
    FOR other IN SELECT DISTINCT g.profile FROM profile_grant g WHERE g.role_name OPERATOR(pg_catalog.=) revoke_profile.role_name LOOP
        FOR stmt IN SELECT * FROM profile_statements(other, role_name, true) LOOP
            EXECUTE stmt;
        END LOOP;
    END LOOP;
END $$;
COMMENT ON FUNCTION @extschema@.revoke_profile(name, text) IS
    'take a profile from a role; rights another of its profiles gives stay';

-- the channel check of the write paths: the role in effect (GetOuterUserId)
-- must be allowed to write for the row's channel
CREATE FUNCTION @extschema@.channel_guard() RETURNS trigger
    AS 'MODULE_PATHNAME', 'channel_guard' LANGUAGE C;
CREATE TRIGGER channel_guard BEFORE INSERT OR UPDATE OF delivered_at, cancelled_at ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.channel_guard();
CREATE TRIGGER channel_guard BEFORE INSERT ON @extschema@.payment
    FOR EACH ROW EXECUTE FUNCTION @extschema@.channel_guard();
CREATE FUNCTION @extschema@.may_write_channel(channel text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'may_write_channel' LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION @extschema@.may_write_channel(text) IS
    'may the role in effect write for this channel (its pos or shop profile)? For write paths written in SQL';

-- notes: the call center writes them; the author is the role in effect
CREATE TABLE @extschema@.customer_note (
    note_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES @extschema@.customer,
    body        text NOT NULL CHECK (body <> ''),
    written_by  text NOT NULL DEFAULT CURRENT_USER,
    written_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_note_customer ON @extschema@.customer_note (customer_id, written_at);
COMMENT ON TABLE @extschema@.customer_note IS 'notes on a customer (the call center); erased by forget_customer()';
-- forget_customer() erases personal data: notes are personal data
CREATE FUNCTION @extschema@.forget_notes() RETURNS trigger
LANGUAGE plpgsql SET search_path = @extschema@, pg_temp AS $$
BEGIN
    DELETE FROM customer_note n WHERE n.customer_id OPERATOR(pg_catalog.=) NEW.customer_id;
    RETURN NULL;
END $$;
CREATE TRIGGER forget_notes AFTER UPDATE OF forgotten_at ON @extschema@.customer
    FOR EACH ROW WHEN (NEW.forgotten_at IS NOT NULL AND OLD.forgotten_at IS NULL)
    EXECUTE FUNCTION @extschema@.forget_notes();

-- Capture triggers: a shop's own tables feed the account (see README,
-- "Capture triggers").  capture_pending holds, within one transaction,
-- the keys to book at commit; the deferred constraint trigger books each.
CREATE TABLE @extschema@.capture_pending (
    trigger_oid oid NOT NULL,
    source      oid NOT NULL,
    source_key  text NOT NULL,
    check_lines boolean NOT NULL DEFAULT false,
    PRIMARY KEY (trigger_oid, source_key)
);
COMMENT ON TABLE @extschema@.capture_pending IS
    'captured keys of the current transaction, booked at commit (always empty between transactions)';

-- payments whose order is not booked yet (on hold, or captured later)
CREATE TABLE @extschema@.capture_waiting (
    source       regclass NOT NULL,
    trigger_name name NOT NULL,
    source_key   text NOT NULL,
    order_no     text NOT NULL,
    since        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, trigger_name, source_key)
);
CREATE INDEX capture_waiting_order ON @extschema@.capture_waiting (order_no);
COMMENT ON TABLE @extschema@.capture_waiting IS
    'captured payments waiting for their order to be booked; booked with it';

-- rows a trigger with on_error=quarantine could not book, with the reason
CREATE TABLE @extschema@.capture_quarantine (
    quarantine_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        regclass NOT NULL,
    trigger_name  name NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('order', 'line', 'payment', 'return')),
    source_key    text,
    row_image     jsonb,
    sqlstate      text NOT NULL,
    reason        text NOT NULL,
    detail        text,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 1,
    resolved_at   timestamptz,
    resolution    text
);
CREATE UNIQUE INDEX capture_quarantine_open ON @extschema@.capture_quarantine (source, kind, source_key)
    WHERE resolved_at IS NULL;
COMMENT ON TABLE @extschema@.capture_quarantine IS
    'shop rows that could not be booked (on_error=quarantine), with the reason; replay_quarantine() books them after the fix';

-- where an interrupted capture_backfill() continues
CREATE TABLE @extschema@.capture_backfill_state (
    source       regclass NOT NULL,
    trigger_name name NOT NULL,
    last_key     text NOT NULL,
    rows_done    bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, trigger_name)
);

CREATE FUNCTION @extschema@.capture_order() RETURNS trigger
    AS 'MODULE_PATHNAME', 'capture_order' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
CREATE FUNCTION @extschema@.capture_order_line() RETURNS trigger
    AS 'MODULE_PATHNAME', 'capture_order_line' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
CREATE FUNCTION @extschema@.capture_payment() RETURNS trigger
    AS 'MODULE_PATHNAME', 'capture_payment' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
CREATE FUNCTION @extschema@.capture_return() RETURNS trigger
    AS 'MODULE_PATHNAME', 'capture_return' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
COMMENT ON FUNCTION @extschema@.capture_order() IS
    'AFTER INSERT OR UPDATE trigger for a shop''s order table: arguments map its columns (README, "Capture triggers")';
COMMENT ON FUNCTION @extschema@.capture_order_line() IS
    'AFTER INSERT OR UPDATE OR DELETE trigger for a shop''s order lines (the order trigger names the table in lines=)';
COMMENT ON FUNCTION @extschema@.capture_payment() IS 'AFTER INSERT OR UPDATE trigger for a shop''s payment table';
COMMENT ON FUNCTION @extschema@.capture_return() IS
    'AFTER INSERT OR UPDATE trigger for a shop''s return table (books through accept_return())';

CREATE FUNCTION @extschema@.capture_commit() RETURNS trigger
    AS 'MODULE_PATHNAME', 'capture_commit' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
CREATE CONSTRAINT TRIGGER capture_commit AFTER INSERT ON @extschema@.capture_pending
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION @extschema@.capture_commit();

CREATE FUNCTION @extschema@.check_capture(trigger_table regclass, scan_data boolean DEFAULT true,
        OUT trigger_name name, OUT capture text, OUT ok boolean, OUT problem text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'check_capture' LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = @extschema@, pg_temp;
COMMENT ON FUNCTION @extschema@.check_capture(regclass, boolean) IS
    'every capture trigger of a table checked at once: arguments, columns, constants, links, and (scan_data) the values in the table';

CREATE FUNCTION @extschema@.capture_backfill(source regclass, batch_size integer DEFAULT NULL,
        OUT trigger_name name, OUT rows_read bigint, OUT booked bigint, OUT changed bigint, OUT unchanged bigint,
        OUT not_booked bigint, OUT waiting bigint, OUT quarantined bigint, OUT done boolean)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'capture_backfill' LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = @extschema@, pg_temp;
COMMENT ON FUNCTION @extschema@.capture_backfill(regclass, integer) IS
    'book a shop table''s existing rows through its capture trigger; batch_size rows per call, resumable (done = true at the end)';

CREATE FUNCTION @extschema@.replay_quarantine(source regclass DEFAULT NULL,
        OUT quarantine_id bigint, OUT source regclass, OUT source_key text, OUT outcome text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'replay_quarantine' LANGUAGE C VOLATILE SECURITY DEFINER SET search_path = @extschema@, pg_temp;
COMMENT ON FUNCTION @extschema@.replay_quarantine(regclass) IS
    'book the quarantined rows again from the shop''s current rows (after the fix); failures stay with the new reason';

-- a capture trigger whose arguments do not fit its table fails CREATE TRIGGER
CREATE FUNCTION @extschema@.capture_validate(trigger_oid oid) RETURNS void
    AS 'MODULE_PATHNAME', 'capture_validate' LANGUAGE C VOLATILE STRICT SECURITY DEFINER SET search_path = @extschema@, pg_temp;
CREATE FUNCTION @extschema@.capture_ddl() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    t oid;
BEGIN
    FOR t IN SELECT c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c
             WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass LOOP
        PERFORM @extschema@.capture_validate(t);
    END LOOP;
END $$;
CREATE EVENT TRIGGER customer_account_capture_check ON ddl_command_end
    WHEN TAG IN ('CREATE TRIGGER') EXECUTE FUNCTION @extschema@.capture_ddl();

SELECT pg_catalog.pg_extension_config_dump('@extschema@.profile_grant', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.profile_privilege', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customer_note', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capture_pending', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capture_waiting', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capture_quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capture_backfill_state', '');



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
