/* customer_account--1.0.0--1.1.0.sql: hardening of the account core */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION customer_account UPDATE TO '1.1.0'" to load this file. \quit

-- CREATE EXTENSION customer_account installs 1.1.0 as the 1.0.0 script plus
-- this one, so a fresh install and an upgraded database are the same.
SELECT pg_catalog.set_config('search_path', '@extschema@, pg_catalog, pg_temp', true);

------------------------------------------------------------------------------
-- section: races and merge (merge_customers, dunning_run, forget_customer)
------------------------------------------------------------------------------

-- forget_customer: also the duplicates merged into this customer at any
-- depth (A <- B <- C: C was merged into B before B was merged into A)
CREATE OR REPLACE FUNCTION @extschema@.forget_customer(customer_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
BEGIN
    PERFORM require_customer(customer_id);
    -- the person and every duplicate merged into them, directly or not
    WITH RECURSIVE chain(id) AS (
        SELECT forget_customer.customer_id
        UNION
        SELECT c.customer_id FROM customer c JOIN chain ON c.merged_into = chain.id
    ), identities AS (
        DELETE FROM customer_identity i USING chain WHERE i.customer_id = chain.id
    )
    UPDATE customer c SET full_name = NULL, email = NULL, phone = NULL, forgotten_at = now()
    FROM chain WHERE c.customer_id = chain.id;
END $$;

-- the duplicates of a customer, for forget_customer's walk down the chain
CREATE INDEX customer_merged_into ON @extschema@.customer (merged_into) WHERE merged_into IS NOT NULL;



------------------------------------------------------------------------------
-- section: configuration cache (bounds that fit the money type, names)
------------------------------------------------------------------------------

-- Every amount of a configuration table (major units of the order's
-- currency) is held by the per-backend cache as a 64-bit count of 1/10000
-- of a major unit and converted to minor units of any currency: bound them
-- to 1e12 major units, so that each conversion fits (1e12 * 1e4 = 1e16).
-- NaN and infinity fail the bound too.  A database holding a larger amount
-- cannot be upgraded until it is corrected: say which rows first.
DO $config_bounds$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(format('%s %s %s = %s', t, k, c, v), '; ' ORDER BY t, k, c) INTO bad
    FROM (
        SELECT 'credit_policy' AS t, 'policy_id ' || policy_id AS k, x.c, x.v
        FROM @extschema@.credit_policy,
             LATERAL (VALUES ('credit_limit', credit_limit), ('first_order_limit', first_order_limit),
                             ('overdue_tolerance', overdue_tolerance)) x(c, v)
        UNION ALL
        SELECT 'payment_method', 'code ' || code, x.c, x.v
        FROM @extschema@.payment_method,
             LATERAL (VALUES ('min_amount', min_amount), ('max_amount', max_amount)) x(c, v)
        UNION ALL
        SELECT 'dunning_level', 'level ' || level, 'fee', fee FROM @extschema@.dunning_level
    ) a
    WHERE NOT (v <= 1000000000000);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'configuration amounts out of range: %', bad
            USING ERRCODE = '23514',
                  HINT = 'Amounts must lie between 0 and 1000000000000 major units; correct these rows, then run ALTER EXTENSION customer_account UPDATE again.';
    END IF;
END
$config_bounds$;

ALTER TABLE @extschema@.credit_policy
    ADD CONSTRAINT credit_policy_credit_limit_range CHECK (credit_limit <= 1000000000000),
    ADD CONSTRAINT credit_policy_first_order_limit_range CHECK (first_order_limit <= 1000000000000),
    ADD CONSTRAINT credit_policy_overdue_tolerance_range CHECK (overdue_tolerance <= 1000000000000);
ALTER TABLE @extschema@.payment_method
    ADD CONSTRAINT payment_method_min_amount_range CHECK (min_amount <= 1000000000000),
    ADD CONSTRAINT payment_method_max_amount_range CHECK (max_amount <= 1000000000000);
ALTER TABLE @extschema@.dunning_level
    ADD CONSTRAINT dunning_level_fee_range CHECK (fee <= 1000000000000);



------------------------------------------------------------------------------
-- section: backup and restore (sequences dumped, restore without re-posting)
------------------------------------------------------------------------------
-- pg_dump keeps the position of every identity sequence, so that a restored
-- database hands out keys after the restored ones (customers, ledger entries,
-- open items, outbox events, credit policies)
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.customer', 'customer_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.ledger', 'entry_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.open_item', 'item_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.outbox', 'event_id')::pg_catalog.regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.credit_policy', 'policy_id')::pg_catalog.regclass, '');

-- An order is booked by exactly one 'order' entry and a payment by exactly
-- one 'payment' entry.  The posting triggers look these up to recognise a
-- row whose postings already exist (pg_restore loads the ledger before the
-- orders and payments) and do not book it again; a double booking that
-- slipped past them fails here instead of silently doubling an account.
CREATE UNIQUE INDEX ledger_order_posted ON @extschema@.ledger (order_no) WHERE entry_type = 'order';
CREATE UNIQUE INDEX ledger_payment_posted ON @extschema@.ledger (payment_ref) WHERE entry_type = 'payment';

-- customer.merged_into references customer itself, and a dump holds the rows
-- in storage order, where a merged duplicate can precede its survivor.  COPY
-- checks the key at the end of the statement; a dump of INSERTs restored in
-- one transaction (pg_dump --inserts, pg_restore --single-transaction) needs
-- the check at commit.
ALTER TABLE @extschema@.customer ALTER CONSTRAINT customer_merged_into_fkey DEFERRABLE INITIALLY DEFERRED;



------------------------------------------------------------------------------
-- section: input that must be refused (times, payments, retries, money)
------------------------------------------------------------------------------

-- Event times (placed_at, received_at, delivered_at, cancelled_at) are
-- checked where every write passes, in the posting triggers (src/input.c):
-- finite, not before 1970-01-01 00:00 UTC, at most one day after the current
-- time (22008); a delivery or cancellation not before the placement (22023).
-- Payments: the channel's currency (22023), never store credit (22023), a
-- method the channel kind offers (RA001, not_offered_on_channel).

-- a payment term a due date can hold: at most ten years
ALTER TABLE @extschema@.channel ADD CONSTRAINT channel_payment_term_days_range
    CHECK (payment_term_days BETWEEN 0 AND 3650);
-- a customer's start date is a point in time (account age is computed from it)
ALTER TABLE @extschema@.customer ADD CONSTRAINT customer_since_finite
    CHECK (pg_catalog.isfinite(customer_since));
-- dunning_run() reads at most 16 levels: a 17th would be ignored silently
ALTER TABLE @extschema@.dunning_level ADD CONSTRAINT dunning_level_at_most_16
    CHECK (level <= 16);

-- everything an order or a payment names must exist: RA002 from a BEFORE
-- trigger, before the foreign keys' checks (AFTER triggers that fire ahead
-- of the posting trigger) would answer 23503
CREATE FUNCTION @extschema@.event_input_check() RETURNS trigger
    AS 'MODULE_PATHNAME', 'event_input_check' LANGUAGE C;
REVOKE ALL ON FUNCTION @extschema@.event_input_check() FROM PUBLIC;
CREATE TRIGGER event_input_check BEFORE INSERT ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.event_input_check();
CREATE TRIGGER event_input_check BEFORE INSERT ON @extschema@.payment
    FOR EACH ROW EXECUTE FUNCTION @extschema@.event_input_check();

-- min() and max() without SORTOP: the planner must not answer them from a
-- B-tree index, whose order (currency code, then amount) would return a
-- value where mixed currencies are an error (22023)
DROP AGGREGATE @extschema@.min(@extschema@.currency_amount);
DROP AGGREGATE @extschema@.max(@extschema@.currency_amount);
CREATE AGGREGATE @extschema@.min(@extschema@.currency_amount) (
    SFUNC = @extschema@.currency_amount_smaller,
    STYPE = @extschema@.currency_amount,
    COMBINEFUNC = @extschema@.currency_amount_smaller,
    PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@.max(@extschema@.currency_amount) (
    SFUNC = @extschema@.currency_amount_larger,
    STYPE = @extschema@.currency_amount,
    COMBINEFUNC = @extschema@.currency_amount_larger,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.min(@extschema@.currency_amount) IS
    'the smallest amount; amounts in two currencies are an error (22023), whatever the plan';
COMMENT ON AGGREGATE @extschema@.max(@extschema@.currency_amount) IS
    'the largest amount; amounts in two currencies are an error (22023), whatever the plan';

-- retries: the same order number with other content is an error for every
-- field that matters, the placement time and each line's returnable flag and
-- category included; a retry that leaves placed_at to its default (now())
-- matches the booked time
CREATE OR REPLACE FUNCTION @extschema@.place_order(order_no text, customer_id bigint, channel text, lines jsonb,
        payment_method text, placed_at timestamptz DEFAULT now())
RETURNS @extschema@.currency_amount LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    known_customer boolean;
    merged bigint;
    ch_currency text;
    known_method boolean;
    total currency_amount;
    existing orders;
    same boolean;
BEGIN
    IF order_no IS NULL OR btrim(order_no) = '' THEN
        RAISE EXCEPTION 'an order needs an order number' USING ERRCODE = '22023';
    END IF;
    -- one query for everything the order names
    SELECT c.customer_id IS NOT NULL, c.merged_into,
           (SELECT x.currency FROM channel x WHERE x.code = place_order.channel),
           EXISTS (SELECT 1 FROM payment_method m WHERE m.code = place_order.payment_method)
    INTO known_customer, merged, ch_currency, known_method
    FROM (SELECT 1) one LEFT JOIN customer c ON c.customer_id = place_order.customer_id;
    IF NOT known_customer THEN
        RAISE EXCEPTION 'unknown customer %', coalesce(customer_id::text, 'NULL') USING ERRCODE = 'RA002';
    ELSIF merged IS NOT NULL THEN
        RAISE EXCEPTION 'customer % was merged into customer %', customer_id, merged USING ERRCODE = 'RA002',
            HINT = format('Use the surviving customer %s.', merged);
    ELSIF ch_currency IS NULL THEN
        RAISE EXCEPTION 'unknown channel "%"', channel USING ERRCODE = 'RA002';
    ELSIF NOT known_method THEN
        RAISE EXCEPTION 'unknown payment method "%"', payment_method USING ERRCODE = 'RA002';
    END IF;
    IF lines IS NULL OR jsonb_typeof(lines) <> 'array' OR jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'order lines must be a non-empty JSON array' USING ERRCODE = '22023',
            HINT = 'Write lines like [{"sku":"A1","qty":2,"unit_price":"19.99 EUR","returnable":true}].';
    END IF;
    -- every line is validated (the WHERE runs before the sum sees the row)
    SELECT sum((j ->> 'unit_price')::currency_amount * (j ->> 'qty')::integer) INTO total
    FROM jsonb_array_elements(lines) WITH ORDINALITY AS l(j, n)
    WHERE CASE
        WHEN jsonb_typeof(j) <> 'object' THEN line_error(n, 'is not an object')
        WHEN jsonb_typeof(j -> 'sku') IS DISTINCT FROM 'string' OR j ->> 'sku' = '' THEN line_error(n, 'needs a "sku" string')
        WHEN jsonb_typeof(j -> 'qty') IS DISTINCT FROM 'number' OR (j ->> 'qty') !~ '^-?[0-9]+$' THEN line_error(n, 'needs an integer "qty"')
        WHEN (j ->> 'qty')::numeric <= 0 THEN line_error(n, 'has a quantity that is not positive')
        WHEN (j ->> 'qty')::numeric > 2147483647 THEN line_error(n, 'has a quantity out of range')
        WHEN jsonb_typeof(j -> 'unit_price') IS DISTINCT FROM 'string' THEN line_error(n, 'needs a "unit_price" such as "19.99 EUR"')
        WHEN j ? 'returnable' AND jsonb_typeof(j -> 'returnable') <> 'boolean' THEN line_error(n, 'has a "returnable" that is not true or false')
        ELSE true END;
    IF currency_of(total) <> ch_currency THEN
        RAISE EXCEPTION 'order "%" is in % but channel "%" sells in %', order_no, currency_of(total), channel, ch_currency
            USING ERRCODE = '22023';
    END IF;

    INSERT INTO orders AS o (order_no, customer_id, channel, payment_method, total, placed_at)
    VALUES (order_no, customer_id, channel, payment_method, total, coalesce(placed_at, now()))
    ON CONFLICT ON CONSTRAINT orders_pkey DO NOTHING;
    IF NOT FOUND THEN
        -- a retry posts once; the same number with other content is an error
        SELECT * INTO existing FROM orders o WHERE o.order_no = place_order.order_no;
        SELECT existing.customer_id = customer_id AND existing.channel = channel
               AND existing.payment_method = payment_method AND existing.total = total
               AND (placed_at IS NULL OR placed_at = now() OR placed_at = existing.placed_at)
               AND ARRAY(SELECT (l.sku, l.qty, l.unit_price, l.returnable, l.category)::text FROM order_line l
                         WHERE l.order_no = existing.order_no ORDER BY l.line_no)
                 = ARRAY(SELECT (j ->> 'sku', (j ->> 'qty')::integer, (j ->> 'unit_price')::currency_amount,
                                 coalesce((j ->> 'returnable')::boolean, true), j ->> 'category')::text
                         FROM jsonb_array_elements(lines) WITH ORDINALITY AS x(j, n) ORDER BY n)
        INTO same;
        IF NOT same THEN
            RAISE EXCEPTION 'order "%" already exists with different content', order_no USING ERRCODE = '23505',
                DETAIL = format('Booked: customer %s, channel %s, method %s, total %s, placed at %s, %s line(s).',
                                existing.customer_id, existing.channel, existing.payment_method, existing.total,
                                existing.placed_at,
                                (SELECT count(*) FROM order_line l WHERE l.order_no = existing.order_no)),
                HINT = 'An order number books once; use a new number for a new order.';
        END IF;
        RETURN existing.total;
    END IF;
    INSERT INTO order_line (order_no, line_no, customer_id, sku, qty, unit_price, returnable, category)
    SELECT order_no, n, customer_id, j ->> 'sku', (j ->> 'qty')::integer, (j ->> 'unit_price')::currency_amount,
           coalesce((j ->> 'returnable')::boolean, true), j ->> 'category'
    FROM jsonb_array_elements(lines) WITH ORDINALITY AS x(j, n);
    RETURN total;
END $$;

-- a delivery is recorded once: a retry changes nothing, another explicit
-- time is an error (23505); the time itself is checked by the trigger
CREATE OR REPLACE FUNCTION @extschema@.mark_delivered(order_no text, delivered_at timestamptz DEFAULT now())
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    o orders;
BEGIN
    SELECT * INTO o FROM orders x WHERE x.order_no = mark_delivered.order_no FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown order "%"', order_no USING ERRCODE = 'RA002';
    END IF;
    IF o.delivered_at IS NOT NULL THEN
        IF delivered_at IS NOT NULL AND delivered_at <> now() AND delivered_at <> o.delivered_at THEN
            RAISE EXCEPTION 'order "%" was delivered at %, not at %', order_no, o.delivered_at, delivered_at
                USING ERRCODE = '23505', HINT = 'A delivery is recorded once.';
        END IF;
        RETURN;   -- delivered once; a retry changes nothing
    END IF;
    UPDATE orders x SET delivered_at = coalesce(mark_delivered.delivered_at, now()) WHERE x.order_no = mark_delivered.order_no;
END $$;

-- a cancellation is recorded once, never before the placement (22023 from
-- the trigger; no longer moved silently to the placement time)
CREATE OR REPLACE FUNCTION @extschema@.cancel_order(order_no text, cancelled_at timestamptz DEFAULT now())
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    o orders;
BEGIN
    SELECT * INTO o FROM orders x WHERE x.order_no = cancel_order.order_no FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown order "%"', order_no USING ERRCODE = 'RA002';
    END IF;
    IF o.cancelled_at IS NOT NULL THEN
        IF cancelled_at IS NOT NULL AND cancelled_at <> now() AND cancelled_at <> o.cancelled_at THEN
            RAISE EXCEPTION 'order "%" was cancelled at %, not at %', order_no, o.cancelled_at, cancelled_at
                USING ERRCODE = '23505', HINT = 'A cancellation is final and recorded once.';
        END IF;
        RETURN;   -- cancelled once; a retry changes nothing
    END IF;
    UPDATE orders x SET cancelled_at = coalesce(cancel_order.cancelled_at, now())
    WHERE x.order_no = cancel_order.order_no;
END $$;

-- the same payment reference with other content (received_at included) is
-- an error; a retry that leaves received_at to its default matches
CREATE OR REPLACE FUNCTION @extschema@.record_payment(payment_ref text, customer_id bigint, amount @extschema@.currency_amount,
        method text, channel text, order_no text DEFAULT NULL, received_at timestamptz DEFAULT now())
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    known_customer boolean;
    merged bigint;
    known_channel boolean;
    known_method boolean;
    known_order boolean;
    existing payment;
BEGIN
    IF payment_ref IS NULL OR btrim(payment_ref) = '' THEN
        RAISE EXCEPTION 'a payment needs a reference' USING ERRCODE = '22023';
    END IF;
    IF amount IS NULL THEN
        RAISE EXCEPTION 'a payment needs an amount' USING ERRCODE = '22023';
    END IF;
    SELECT c.customer_id IS NOT NULL, c.merged_into,
           EXISTS (SELECT 1 FROM channel x WHERE x.code = record_payment.channel),
           EXISTS (SELECT 1 FROM payment_method m WHERE m.code = record_payment.method),
           record_payment.order_no IS NULL OR EXISTS (SELECT 1 FROM orders o WHERE o.order_no = record_payment.order_no)
    INTO known_customer, merged, known_channel, known_method, known_order
    FROM (SELECT 1) one LEFT JOIN customer c ON c.customer_id = record_payment.customer_id;
    IF NOT known_customer THEN
        RAISE EXCEPTION 'unknown customer %', coalesce(customer_id::text, 'NULL') USING ERRCODE = 'RA002';
    ELSIF merged IS NOT NULL THEN
        RAISE EXCEPTION 'customer % was merged into customer %', customer_id, merged USING ERRCODE = 'RA002',
            HINT = format('Use the surviving customer %s.', merged);
    ELSIF NOT known_method THEN
        RAISE EXCEPTION 'unknown payment method "%"', method USING ERRCODE = 'RA002';
    ELSIF NOT known_channel THEN
        RAISE EXCEPTION 'unknown channel "%"', channel USING ERRCODE = 'RA002';
    ELSIF NOT known_order THEN
        RAISE EXCEPTION 'unknown order "%"', order_no USING ERRCODE = 'RA002';
    END IF;
    INSERT INTO payment AS p (payment_ref, customer_id, amount, method, channel, order_no, received_at)
    VALUES (payment_ref, customer_id, amount, method, channel, order_no, coalesce(received_at, now()))
    ON CONFLICT ON CONSTRAINT payment_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM payment p WHERE p.payment_ref = record_payment.payment_ref;
        IF (existing.customer_id, existing.amount, existing.method, existing.channel, existing.order_no)
           IS DISTINCT FROM (customer_id, amount, method, channel, order_no)
           OR (received_at IS NOT NULL AND received_at <> now() AND received_at <> existing.received_at) THEN
            RAISE EXCEPTION 'payment "%" already exists with different content', payment_ref USING ERRCODE = '23505',
                DETAIL = format('Booked: customer %s, %s by %s on channel %s, order %s, received at %s.',
                                existing.customer_id, existing.amount, existing.method, existing.channel,
                                coalesce(existing.order_no, 'none'), existing.received_at),
                HINT = 'A payment reference books once.';
        END IF;
    END IF;
END $$;



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

-- a merge hands the duplicate's notices of its current dunning cycle to the
-- survivor, marked with where they came from (a replayed run leaves them out)
ALTER TABLE @extschema@.dunning_notice ADD COLUMN merged_from bigint;
COMMENT ON COLUMN @extschema@.dunning_notice.merged_from IS
    'set on a notice the survivor of merge_customers() took over from this merged-away customer';

-- the money type is for everyone: the schema may be used by PUBLIC, which
-- then reaches exactly what has EXECUTE for PUBLIC (the type, its functions,
-- operators and aggregates); tables, sequences and account functions stay closed
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;



------------------------------------------------------------------------------
-- section: returns
------------------------------------------------------------------------------

-- Returns at any till for any channel's order (src/return_rules.c decides,
-- src/returns.c gathers the facts and books through the posting core).
-- Every table carries customer_id first, so a return lives with its customer.

-- a return: announced online (self-service) or started at a till, decided
-- line by line by accept_return()
CREATE TABLE @extschema@.return_request (
    customer_id  bigint NOT NULL,
    return_no    text PRIMARY KEY CHECK (return_no <> '' AND return_no = pg_catalog.btrim(return_no)),
    order_no     text NOT NULL,                             -- the order (orders are never deleted)
    channel      text REFERENCES @extschema@.channel,       -- where the goods came back (NULL: only announced)
    announced_on text REFERENCES @extschema@.channel,       -- where it was announced (NULL: started at a till)
    status       text NOT NULL CHECK (status IN ('announced', 'accepted', 'rejected')),
    announced_at timestamptz,
    decided_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CHECK ((status = 'announced') = (decided_at IS NULL))
);
CREATE INDEX return_request_order ON @extschema@.return_request (order_no);
CREATE INDEX return_request_customer ON @extschema@.return_request (customer_id);
COMMENT ON TABLE @extschema@.return_request IS
    'returns: announced (announce_return) or decided at a till (accept_return); status of the latest decision';

-- the lines of a return: announced quantities, then every decision
-- (accepted or rejected) with its quantity and reason
CREATE TABLE @extschema@.return_line (
    customer_id bigint NOT NULL,
    return_no   text NOT NULL REFERENCES @extschema@.return_request,
    line_no     integer NOT NULL CHECK (line_no > 0),
    order_no    text NOT NULL,
    sku         text NOT NULL CHECK (sku <> ''),
    qty         integer NOT NULL CHECK (qty > 0),
    status      text NOT NULL CHECK (status IN ('announced', 'accepted', 'rejected')),
    reason_code text,
    channel     text,                                      -- where it was announced or decided
    recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (return_no, line_no),
    CHECK ((status = 'announced') = (reason_code IS NULL))
);
CREATE INDEX return_line_order ON @extschema@.return_line (order_no, sku);
CREATE INDEX return_line_customer ON @extschema@.return_line (customer_id);

-- what an accepted return line paid back, one row per route and tender:
-- tender 'order' is the order's own immediate payment, 'payment' a payment
-- applied to the order (payment_ref), 'invoice' the unpaid rest of the order
CREATE TABLE @extschema@.return_refund (
    customer_id bigint NOT NULL,
    return_no   text NOT NULL,
    line_no     integer NOT NULL,
    route_no    integer NOT NULL CHECK (route_no > 0),
    order_no    text NOT NULL,
    action      @extschema@.return_action NOT NULL CHECK (action <> 'reject'),
    refund      @extschema@.currency_amount NOT NULL,
    reason_code text NOT NULL,
    tender      text NOT NULL CHECK (tender IN ('order', 'payment', 'invoice')),
    payment_ref text,
    method      text,
    PRIMARY KEY (return_no, line_no, route_no),
    FOREIGN KEY (return_no, line_no) REFERENCES @extschema@.return_line,
    CHECK ((tender = 'payment') = (payment_ref IS NOT NULL))
);
CREATE INDEX return_refund_order ON @extschema@.return_refund (order_no);
CREATE INDEX return_refund_customer ON @extschema@.return_refund (customer_id);

-- generated return numbers: RT100001, RT100002, ...
CREATE SEQUENCE @extschema@.return_no_seq START 100001;

-- the return policy a DBA edits: per selling channel or channel kind, per
-- product category or SKU pattern (LIKE).  The most specific matching rule
-- wins (SKU pattern, then category, then channel, then channel kind); no
-- rule means the selling channel's return_window_days and returnable items.
CREATE TABLE @extschema@.return_policy (
    rule_id            integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    channel            text REFERENCES @extschema@.channel,
    channel_kind       @extschema@.channel_kind,
    category           text CHECK (category <> ''),
    sku_pattern        text CHECK (sku_pattern <> ''),
    return_window_days integer CHECK (return_window_days >= 0),   -- NULL: the selling channel's
    returnable         boolean NOT NULL DEFAULT true,             -- false: a non-returnable category
    exchange_only      boolean NOT NULL DEFAULT false,            -- money back only as an exchange
    note               text,
    CHECK (channel IS NOT NULL OR channel_kind IS NOT NULL OR category IS NOT NULL OR sku_pattern IS NOT NULL)
);
COMMENT ON TABLE @extschema@.return_policy IS
    'return windows per channel, channel kind, category or SKU pattern; non-returnable and exchange-only items';
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.return_policy
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();

-- a merge moves the duplicate's returns to the survivor (merge_customers()
-- re-points the orders; this keeps the returns with them)
CREATE FUNCTION @extschema@.return_follow_merge() RETURNS trigger
LANGUAGE plpgsql SET search_path = @extschema@, pg_temp AS $$
BEGIN
    UPDATE @extschema@.return_request r SET customer_id = NEW.merged_into
    WHERE r.customer_id OPERATOR(pg_catalog.=) NEW.customer_id;
    UPDATE @extschema@.return_line l SET customer_id = NEW.merged_into
    WHERE l.customer_id OPERATOR(pg_catalog.=) NEW.customer_id;
    UPDATE @extschema@.return_refund f SET customer_id = NEW.merged_into
    WHERE f.customer_id OPERATOR(pg_catalog.=) NEW.customer_id;
    RETURN NULL;
END $$;
CREATE TRIGGER return_follow_merge AFTER UPDATE OF merged_into ON @extschema@.customer
    FOR EACH ROW WHEN (NEW.merged_into IS NOT NULL AND OLD.merged_into IS DISTINCT FROM NEW.merged_into)
    EXECUTE FUNCTION @extschema@.return_follow_merge();

-- decide_return: read-only, direct index reads (EXECUTE is the authorisation)
CREATE FUNCTION @extschema@.decide_return(order_or_return_no text, sku text, quantity integer, channel text,
        at timestamptz DEFAULT pg_catalog.now(),
        OUT action @extschema@.return_action, OUT refund @extschema@.currency_amount,
        OUT reason_code text, OUT reason text, OUT method text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'decide_return' LANGUAGE C STABLE STRICT ROWS 2;
COMMENT ON FUNCTION @extschema@.decide_return(text, text, integer, text, timestamptz) IS
    'what a till may do with a returned item: one row per refund route (or one reject), reason code and sentence';

CREATE FUNCTION @extschema@.accept_return(order_or_return_no text, sku text, quantity integer, channel text,
        return_no text DEFAULT NULL,
        OUT return_no text, OUT action @extschema@.return_action, OUT refund @extschema@.currency_amount,
        OUT reason_code text, OUT reason text, OUT method text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'accept_return' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = @extschema@, pg_temp ROWS 2;
COMMENT ON FUNCTION @extschema@.accept_return(text, text, integer, text, text) IS
    'decides under the customer''s lock and books the return; a retry with the same return number books once';

CREATE FUNCTION @extschema@.announce_return(order_no text, lines jsonb, channel text) RETURNS text
    AS 'MODULE_PATHNAME', 'announce_return' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = @extschema@, pg_temp;
COMMENT ON FUNCTION @extschema@.announce_return(text, jsonb, text) IS
    'self-service return started online; the return number completes it at any till';

REVOKE ALL ON FUNCTION @extschema@.decide_return(text, text, integer, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.accept_return(text, text, integer, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.announce_return(text, jsonb, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.return_follow_merge() FROM PUBLIC;
REVOKE ALL ON TABLE @extschema@.return_request, @extschema@.return_line, @extschema@.return_refund,
    @extschema@.return_policy FROM PUBLIC;
REVOKE ALL ON SEQUENCE @extschema@.return_no_seq FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_request', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_line', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_refund', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_policy', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.return_no_seq', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('@extschema@.return_policy', 'rule_id')::pg_catalog.regclass, '');


------------------------------------------------------------------------------
-- section: core speed (reads that touch one row, reports from summaries)
------------------------------------------------------------------------------



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
