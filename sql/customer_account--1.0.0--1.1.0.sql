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

-- set_disputed: through the posting core (open_items.c), under the lock of
-- the order's account like every other change of its items, so a dispute
-- and a payment, return or dunning run of that account never interleave
CREATE OR REPLACE FUNCTION @extschema@.set_disputed(order_no text, disputed boolean DEFAULT true) RETURNS integer
AS 'MODULE_PATHNAME', 'set_disputed' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;



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

-- (verify_balances() is defined near the end: it reads every figure the
-- sections below add to the account state)

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
    point_value  numeric NOT NULL CONSTRAINT loyalty_terms_point_value_range
                 CHECK (point_value OPERATOR(pg_catalog.>) 0 AND point_value OPERATOR(pg_catalog.<=) 1000000
                        AND point_value OPERATOR(pg_catalog.<>) 'NaN'),   -- bounded like every configuration amount
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
-- a customer's reactivation credits by rule and time, for once_per_days at
-- every order of the rule's target kind (the customer index would read
-- every entry of the customer)
CREATE INDEX loyalty_entry_reactivation ON @extschema@.loyalty_entry (customer_id, rule_code, at)
    WHERE kind OPERATOR(pg_catalog.=) 'credit' AND reason_code OPERATOR(pg_catalog.=) 'reactivation_credit';
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

-- the returns booking's hooks as SQL, by line and by SKU, for tests (not granted to anyone)
CREATE FUNCTION @extschema@.loyalty_reverse_return(customer_id bigint, order_no text, line_no integer,
        qty integer, at timestamptz DEFAULT now())
RETURNS bigint
    AS 'MODULE_PATHNAME', 'loyalty_reverse_return_sql' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = @extschema@, pg_temp;
CREATE FUNCTION @extschema@.loyalty_reverse_return_sku(customer_id bigint, order_no text, sku text,
        qty integer, at timestamptz DEFAULT now())
RETURNS bigint
    AS 'MODULE_PATHNAME', 'loyalty_reverse_return_sku_sql' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
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
    ('callcenter', 'table', 'return_request', 'SELECT', true), ('callcenter', 'table', 'return_line', 'SELECT', true),
    ('callcenter', 'table', 'return_refund', 'SELECT', true),
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
    ('admin', 'table', 'return_policy', 'SELECT', true), ('admin', 'table', 'return_policy', 'INSERT', true),
    ('admin', 'table', 'return_policy', 'UPDATE', true), ('admin', 'table', 'return_policy', 'DELETE', true),
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
-- section: service (search, baskets, reports)
------------------------------------------------------------------------------

-- Baskets: saved on one channel, resumed and paid on another.  The token
-- (12 characters of Crockford base32, 60 random bits from pg_strong_random)
-- is handed to the customer; the table keeps only its SHA-256, so a copy of
-- the table does not let anyone check a basket out.
CREATE FUNCTION @extschema@.basket_token() RETURNS text
    AS 'MODULE_PATHNAME', 'basket_token' LANGUAGE C VOLATILE PARALLEL RESTRICTED
    SECURITY DEFINER SET search_path = @extschema@, pg_temp;
REVOKE ALL ON FUNCTION @extschema@.basket_token() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.basket_token() IS
    'a new basket token: 12 characters of Crockford base32 from the strong random source';

-- the hash a token is stored under; read leniently (case, spaces, dashes,
-- O for 0, I and L for 1: Crockford's rules for tokens typed by hand)
CREATE FUNCTION @extschema@.basket_token_hash(token text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = @extschema@, pg_temp AS $$
    SELECT pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.translate(pg_catalog.upper(pg_catalog.regexp_replace(token, '[\s-]', '', 'g')), 'OIL', '011'), 'UTF8'))
$$;
REVOKE ALL ON FUNCTION @extschema@.basket_token_hash(text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.basket_token_hash(text) IS
    'the SHA-256 a basket token is stored under (case, spaces and dashes ignored; O read as 0, I and L as 1)';

CREATE TABLE @extschema@.basket (
    customer_id  bigint NOT NULL REFERENCES @extschema@.customer,
    token_hash   bytea PRIMARY KEY,
    channel      text NOT NULL REFERENCES @extschema@.channel ON UPDATE CASCADE,
    currency     text COLLATE "C" NOT NULL,
    lines        jsonb NOT NULL CHECK (pg_catalog.jsonb_typeof(lines) = 'array'),
    total        @extschema@.currency_amount NOT NULL,
    saved_at     timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    order_no     text,           -- the order it was checked out as
    checked_out_at timestamptz,
    CHECK (expires_at > saved_at),
    CHECK ((order_no IS NULL) = (checked_out_at IS NULL))
);
CREATE INDEX basket_customer ON @extschema@.basket (customer_id);
CREATE INDEX basket_expires ON @extschema@.basket (expires_at) WHERE order_no IS NULL;
REVOKE ALL ON TABLE @extschema@.basket FROM PUBLIC;
COMMENT ON TABLE @extschema@.basket IS
    'baskets saved with save_basket(): the SHA-256 of the token, the lines, when they expire, the order they became';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.basket', '');

-- forget_customer() erases personal data: a basket not checked out is personal data
CREATE FUNCTION @extschema@.forget_baskets() RETURNS trigger
LANGUAGE plpgsql SET search_path = @extschema@, pg_temp AS $$
BEGIN
    DELETE FROM basket b WHERE b.customer_id OPERATOR(pg_catalog.=) NEW.customer_id AND b.order_no IS NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER forget_baskets AFTER UPDATE OF forgotten_at ON @extschema@.customer
    FOR EACH ROW WHEN (NEW.forgotten_at IS NOT NULL AND OLD.forgotten_at IS NULL)
    EXECUTE FUNCTION @extschema@.forget_baskets();

-- save_basket(customer, channel, lines, valid_for): a new token on every call
CREATE FUNCTION @extschema@.save_basket(customer_id bigint, channel text, lines jsonb,
        valid_for interval DEFAULT '7 days')
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    known_customer boolean;
    merged bigint;
    forgotten timestamptz;
    ch_currency text;
    total currency_amount;
    token text;
BEGIN
    SELECT c.customer_id IS NOT NULL, c.merged_into, c.forgotten_at,
           (SELECT x.currency FROM channel x WHERE x.code OPERATOR(pg_catalog.=) save_basket.channel)
    INTO known_customer, merged, forgotten, ch_currency
    FROM (SELECT 1) one LEFT JOIN customer c ON c.customer_id OPERATOR(pg_catalog.=) save_basket.customer_id;
    IF NOT known_customer THEN
        RAISE EXCEPTION 'unknown customer %', coalesce(customer_id::text, 'NULL') USING ERRCODE = 'RA002';
    ELSIF merged IS NOT NULL THEN
        RAISE EXCEPTION 'customer % was merged into customer %', customer_id, merged USING ERRCODE = 'RA002',
            HINT = pg_catalog.format('Use the surviving customer %s.', merged);
    ELSIF forgotten IS NOT NULL THEN
        RAISE EXCEPTION 'customer % was forgotten', customer_id USING ERRCODE = 'RA002';
    ELSIF ch_currency IS NULL THEN
        RAISE EXCEPTION 'unknown channel "%"', channel USING ERRCODE = 'RA002';
    END IF;
    IF NOT may_write_channel(channel) THEN
        RAISE EXCEPTION 'role "%" may not write for channel "%"', audit_role(), channel USING ERRCODE = '42501',
            HINT = 'grant_profile(role, profile, channel) decides which channel a pos or shop role writes for.';
    END IF;
    IF valid_for IS NULL OR valid_for <= interval '0' OR valid_for > interval '366 days' THEN
        RAISE EXCEPTION 'a basket is valid for more than 0 and at most 366 days, not %', coalesce(valid_for::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    IF lines IS NULL OR pg_catalog.jsonb_typeof(lines) <> 'array' OR pg_catalog.jsonb_array_length(lines) = 0 THEN
        RAISE EXCEPTION 'basket lines must be a non-empty JSON array' USING ERRCODE = '22023',
            HINT = 'Write lines like [{"sku":"A1","qty":2,"unit_price":"19.99 EUR"}].';
    END IF;
    -- the checks place_order() makes, so that a saved basket can be ordered
    SELECT sum((j ->> 'unit_price')::currency_amount * (j ->> 'qty')::integer) INTO total
    FROM pg_catalog.jsonb_array_elements(lines) WITH ORDINALITY AS l(j, n)
    WHERE CASE
        WHEN pg_catalog.jsonb_typeof(j) <> 'object' THEN line_error(n, 'is not an object')
        WHEN pg_catalog.jsonb_typeof(j -> 'sku') IS DISTINCT FROM 'string' OR j ->> 'sku' = '' THEN line_error(n, 'needs a "sku" string')
        WHEN pg_catalog.jsonb_typeof(j -> 'qty') IS DISTINCT FROM 'number' OR (j ->> 'qty') !~ '^-?[0-9]+$' THEN line_error(n, 'needs an integer "qty"')
        WHEN (j ->> 'qty')::numeric <= 0 THEN line_error(n, 'has a quantity that is not positive')
        WHEN (j ->> 'qty')::numeric > 2147483647 THEN line_error(n, 'has a quantity out of range')
        WHEN pg_catalog.jsonb_typeof(j -> 'unit_price') IS DISTINCT FROM 'string' THEN line_error(n, 'needs a "unit_price" such as "19.99 EUR"')
        WHEN j ? 'returnable' AND pg_catalog.jsonb_typeof(j -> 'returnable') <> 'boolean' THEN line_error(n, 'has a "returnable" that is not true or false')
        ELSE true END;
    IF currency_of(total) <> ch_currency THEN
        RAISE EXCEPTION 'basket is in % but channel "%" sells in %', currency_of(total), channel, ch_currency
            USING ERRCODE = '22023';
    END IF;
    LOOP
        token := basket_token();
        BEGIN
            INSERT INTO basket (customer_id, token_hash, channel, currency, lines, total, expires_at)
            VALUES (customer_id, basket_token_hash(token), channel, ch_currency, lines, total, now() + valid_for);
            RETURN token;
        EXCEPTION WHEN unique_violation THEN
            NULL;   -- 60 random bits met an existing token: draw again
        END;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION @extschema@.save_basket(bigint, text, jsonb, interval) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.save_basket(bigint, text, jsonb, interval) IS
    'save a basket on a channel; returns a new 12-character token (not guessable) valid for valid_for';

-- the basket of a token, locked when asked; RA002 when unknown or expired
-- (a basket already checked out is returned whatever its expiry)
CREATE FUNCTION @extschema@.basket_of(token text, for_update boolean) RETURNS @extschema@.basket
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    b basket;
BEGIN
    IF token IS NULL OR pg_catalog.length(token) > 64 THEN
        RAISE EXCEPTION 'unknown basket token' USING ERRCODE = 'RA002';
    END IF;
    IF for_update THEN
        SELECT * INTO b FROM basket x WHERE x.token_hash OPERATOR(pg_catalog.=) basket_token_hash(token) FOR UPDATE;
    ELSE
        SELECT * INTO b FROM basket x WHERE x.token_hash OPERATOR(pg_catalog.=) basket_token_hash(token);
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown basket token' USING ERRCODE = 'RA002',
            HINT = 'Check the token on the receipt or QR code; tokens have 12 characters.';
    END IF;
    IF b.order_no IS NULL AND b.expires_at <= now() THEN
        RAISE EXCEPTION 'basket token expired at %', b.expires_at USING ERRCODE = 'RA002',
            HINT = 'Save the basket again for a new token.';
    END IF;
    RETURN b;
END $$;
REVOKE ALL ON FUNCTION @extschema@.basket_of(text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.basket_of(text, boolean) IS
    'the basket of a token (locked when for_update); unknown or expired: RA002';

-- resume_basket(token, channel): the basket, shown on another channel
CREATE FUNCTION @extschema@.resume_basket(token text, channel text)
RETURNS TABLE (customer_id bigint, lines jsonb, saved_on text, expires_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    b basket;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM channel x WHERE x.code OPERATOR(pg_catalog.=) resume_basket.channel) THEN
        RAISE EXCEPTION 'unknown channel "%"', channel USING ERRCODE = 'RA002';
    END IF;
    b := basket_of(token, false);
    IF b.order_no IS NOT NULL THEN
        RAISE EXCEPTION 'basket was checked out as order "%"', b.order_no USING ERRCODE = 'RA001';
    END IF;
    -- the survivor, when the customer was merged since
    RETURN QUERY
    WITH RECURSIVE up(id, next) AS (
        SELECT c.customer_id, c.merged_into FROM customer c WHERE c.customer_id OPERATOR(pg_catalog.=) b.customer_id
        UNION ALL
        SELECT c.customer_id, c.merged_into FROM customer c JOIN up ON c.customer_id OPERATOR(pg_catalog.=) up.next
    )
    SELECT (SELECT up.id FROM up WHERE up.next IS NULL), b.lines, b.channel, b.expires_at;
END $$;
REVOKE ALL ON FUNCTION @extschema@.resume_basket(text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.resume_basket(text, text) IS
    'the basket of a token (customer, lines, channel it was saved on, expiry); unknown or expired: RA002';

-- checkout_basket(token, order_no, channel, method): the basket becomes an
-- order through place_order() (payment decision and enforcement), once
CREATE FUNCTION @extschema@.checkout_basket(token text, order_no text, channel text, payment_method text)
RETURNS @extschema@.currency_amount LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    b basket;
    ch_currency text;
    buyer bigint;
    total currency_amount;
BEGIN
    IF order_no IS NULL OR pg_catalog.btrim(order_no) = '' THEN
        RAISE EXCEPTION 'a checkout needs an order number' USING ERRCODE = '22023';
    END IF;
    SELECT x.currency INTO ch_currency FROM channel x WHERE x.code OPERATOR(pg_catalog.=) checkout_basket.channel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown channel "%"', channel USING ERRCODE = 'RA002';
    END IF;
    IF NOT may_write_channel(channel) THEN
        RAISE EXCEPTION 'role "%" may not write for channel "%"', audit_role(), channel USING ERRCODE = '42501',
            HINT = 'grant_profile(role, profile, channel) decides which channel a pos or shop role writes for.';
    END IF;
    b := basket_of(token, true);   -- two tills cannot check one basket out twice
    IF b.order_no IS NOT NULL THEN
        IF b.order_no OPERATOR(pg_catalog.=) checkout_basket.order_no THEN
            SELECT o.total INTO total FROM orders o WHERE o.order_no OPERATOR(pg_catalog.=) b.order_no;
            RETURN total;   -- a retry answers what the checkout answered
        END IF;
        RAISE EXCEPTION 'basket was already checked out as another order' USING ERRCODE = 'RA001',
            HINT = 'A basket checks out once; save a new basket for another order.';
    END IF;
    IF ch_currency <> b.currency THEN
        RAISE EXCEPTION 'basket is in % but channel "%" sells in %', b.currency, channel, ch_currency
            USING ERRCODE = '22023';
    END IF;
    -- the survivor, when the customer was merged since saving
    WITH RECURSIVE up(id, next) AS (
        SELECT c.customer_id, c.merged_into FROM customer c WHERE c.customer_id OPERATOR(pg_catalog.=) b.customer_id
        UNION ALL
        SELECT c.customer_id, c.merged_into FROM customer c JOIN up ON c.customer_id OPERATOR(pg_catalog.=) up.next
    )
    SELECT up.id INTO buyer FROM up WHERE up.next IS NULL;
    total := place_order(order_no, buyer, channel, b.lines, payment_method);
    UPDATE basket x SET order_no = checkout_basket.order_no, checked_out_at = now()
    WHERE x.token_hash OPERATOR(pg_catalog.=) b.token_hash;
    RETURN total;
END $$;
REVOKE ALL ON FUNCTION @extschema@.checkout_basket(text, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.checkout_basket(text, text, text, text) IS
    'turn a saved basket into an order on this channel through place_order(); once per token';

-- inactive_customers(days): the lapsed customers worth an incentive.  One
-- row per customer and currency they bought in (lifetime revenue is money
-- in one currency), for customers whose latest purchase in every currency
-- is older than `days`; orders all cancelled count as no purchase; merged
-- duplicates (their history is the survivor's) and forgotten customers (no
-- one to write to) are left out.  Ordered by currency, then highest
-- lifetime revenue first.  The index serves the range of old purchases.
CREATE INDEX account_state_last_purchase ON @extschema@.account_state (last_purchase_at)
    WHERE last_purchase_at IS NOT NULL;
CREATE FUNCTION @extschema@.inactive_customers(days integer)
RETURNS TABLE (customer_id bigint, last_purchase_at timestamptz, lifetime_revenue @extschema@.currency_amount)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    cutoff timestamptz;
BEGIN
    IF days IS NULL OR days < 0 THEN
        RAISE EXCEPTION 'days must be 0 or more, not %', coalesce(days::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    cutoff := now() - pg_catalog.make_interval(days => days);
    RETURN QUERY
    SELECT s.customer_id, s.last_purchase_at, currency_amount_from_minor_units(s.lifetime_revenue, s.currency)
    FROM account_state s
    JOIN customer c ON c.customer_id OPERATOR(pg_catalog.=) s.customer_id
    WHERE s.last_purchase_at < cutoff
      AND s.orders_count > 0
      AND c.merged_into IS NULL AND c.forgotten_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM account_state r
                      WHERE r.customer_id OPERATOR(pg_catalog.=) s.customer_id
                        AND r.last_purchase_at >= cutoff AND r.orders_count > 0)
    ORDER BY s.currency, s.lifetime_revenue DESC, s.customer_id;
END $$;
REVOKE ALL ON FUNCTION @extschema@.inactive_customers(integer) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.inactive_customers(integer) IS
    'customers with no purchase in the last days (one row per customer and currency), highest lifetime revenue first within each currency';

-- channel_day: the DBA's figures per UTC day, channel and currency, kept
-- by the posting core from the entries it books (ledger.c): an 'order' adds
-- one order and its value on the day it was placed, its 'cancel' takes both
-- off that day again, a 'return' adds its value on the day of the return
-- under the channel that sold the goods.  One row per slot as well: a
-- booking transaction holds a slot no other running or prepared transaction
-- holds (its backend id, else the id plus a multiple of max_connections;
-- a transaction-level advisory lock taken without waiting), so two sessions
-- never update one row, the summary makes no till wait and no bookings
-- deadlock; readers add the slots up.  verify_balances() rebuilds every
-- figure from the ledger.
CREATE TABLE @extschema@.channel_day (
    day       date NOT NULL,
    channel   text COLLATE "C" NOT NULL,
    currency  text COLLATE "C" NOT NULL,
    slot      integer NOT NULL,
    orders    bigint NOT NULL DEFAULT 0,
    purchased bigint NOT NULL DEFAULT 0,     -- minor units: orders placed that day, less their cancellations
    returned  bigint NOT NULL DEFAULT 0,     -- minor units: returns booked that day
    PRIMARY KEY (day, channel, currency, slot)
) WITH (fillfactor = 70);                    -- room for HOT updates of the counters
COMMENT ON TABLE @extschema@.channel_day IS
    'per UTC day, channel, currency and booking slot: orders placed (less cancellations), their value, returns; kept by the posting core';
REVOKE ALL ON @extschema@.channel_day FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.channel_day', '');
-- an existing database: the figures of its books so far, in slot 0
INSERT INTO @extschema@.channel_day (day, channel, currency, slot, orders, purchased, returned)
SELECT (l.event_at AT TIME ZONE 'UTC')::date, l.channel, l.currency, 0,
       count(*) FILTER (WHERE l.entry_type = 'order' AND c.order_no IS NULL),
       coalesce(sum(l.revenue_delta) FILTER (WHERE l.entry_type = 'order' AND c.order_no IS NULL), 0),
       coalesce(sum(l.returned_delta) FILTER (WHERE l.entry_type = 'return'), 0)
FROM @extschema@.ledger l
LEFT JOIN (SELECT DISTINCT x.order_no FROM @extschema@.ledger x WHERE x.entry_type = 'cancel') c
       ON l.entry_type = 'order' AND c.order_no OPERATOR(pg_catalog.=) l.order_no
WHERE l.entry_type IN ('order', 'return')
GROUP BY 1, 2, 3;

-- channel_report(from, to): per channel, the orders placed in [from, to)
-- and not cancelled, their value net of the returns booked in the period,
-- the returned value (a return counts under the channel that sold the
-- order, at the time of the return) and returned / purchased value.  Every
-- UTC day the period touches comes from channel_day, except at either end
-- where the period cuts a day: there the ledger's 'order' and 'return'
-- entries (through a partial index that covers every column the report
-- needs) either add the part inside the period or are taken off the whole
-- day for the part outside it, whichever spans less time up to now: a
-- report up to now reads today from the summary and takes off nothing
-- (nothing is booked after now), a report from a time in the past reads
-- the rest of that day.
CREATE INDEX ledger_channel_report ON @extschema@.ledger (event_at)
    INCLUDE (entry_type, channel, currency, revenue_delta, returned_delta, order_no)
    WHERE entry_type IN ('order', 'return');
CREATE FUNCTION @extschema@.channel_report(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (channel text, orders bigint, revenue @extschema@.currency_amount,
               returned @extschema@.currency_amount, return_rate numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    n        timestamptz := now();
    zero     interval := interval '0';
    d0       date;          -- the first and the last UTC day the period touches
    dl       date;
    d0_at    timestamptz;   -- their midnights
    dl_at    timestamptz;
    sum_lo   date;          -- channel_day is read for [sum_lo, sum_hi]
    sum_hi   date;
    a_lo timestamptz; a_hi timestamptz; a_sign integer := 1;   -- two ledger ranges, added
    b_lo timestamptz; b_hi timestamptz; b_sign integer := 1;   -- (+1) or taken off (-1)
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR from_ts > to_ts
       OR from_ts IN ('infinity', '-infinity') OR to_ts IN ('infinity', '-infinity') THEN
        RAISE EXCEPTION 'a report period runs from a time to a later time, not from % to %',
            coalesce(from_ts::text, 'NULL'), coalesce(to_ts::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF from_ts < to_ts THEN
        d0 := (from_ts AT TIME ZONE 'UTC')::date;
        d0_at := d0::timestamp AT TIME ZONE 'UTC';
        dl := (to_ts AT TIME ZONE 'UTC')::date;
        dl_at := dl::timestamp AT TIME ZONE 'UTC';
        IF dl_at = to_ts THEN            -- ends at a midnight: the day before is the last
            dl := dl - 1;
            dl_at := dl::timestamp AT TIME ZONE 'UTC';
        END IF;
        IF d0 = dl THEN                  -- one day, cut at one end or both
            IF greatest(least(to_ts, n) - from_ts, zero)
               <= greatest(least(from_ts, n) - d0_at, zero) + greatest(least(d0_at + interval '1 day', n) - to_ts, zero)
            THEN
                a_lo := from_ts; a_hi := to_ts;
            ELSE
                sum_lo := d0; sum_hi := d0;
                a_lo := d0_at; a_hi := from_ts; a_sign := -1;
                b_lo := to_ts; b_hi := d0_at + interval '1 day'; b_sign := -1;
            END IF;
        ELSE
            sum_lo := d0 + 1;
            sum_hi := dl - 1;
            -- the first day
            IF from_ts = d0_at THEN
                sum_lo := d0;
            ELSIF greatest(least(d0_at + interval '1 day', n) - from_ts, zero) <= greatest(least(from_ts, n) - d0_at, zero) THEN
                a_lo := from_ts; a_hi := d0_at + interval '1 day';
            ELSE
                sum_lo := d0;
                a_lo := d0_at; a_hi := from_ts; a_sign := -1;
            END IF;
            -- the last day
            IF to_ts = dl_at + interval '1 day' THEN
                sum_hi := dl;
            ELSIF greatest(least(to_ts, n) - dl_at, zero) <= greatest(least(dl_at + interval '1 day', n) - to_ts, zero) THEN
                b_lo := dl_at; b_hi := to_ts;
            ELSE
                sum_hi := dl;
                b_lo := to_ts; b_hi := dl_at + interval '1 day'; b_sign := -1;
            END IF;
        END IF;
    END IF;
    RETURN QUERY
    WITH parts AS (
        SELECT d.channel AS ch, d.currency AS cur, sum(d.orders)::bigint AS n,
               sum(d.purchased)::bigint AS purchased, sum(d.returned)::bigint AS back
        FROM channel_day d
        WHERE d.day >= sum_lo AND d.day <= sum_hi
        GROUP BY d.channel, d.currency
        UNION ALL
        SELECT l.channel, l.currency,
               r.s * count(*) FILTER (WHERE l.entry_type = 'order' AND NOT EXISTS (
                   SELECT 1 FROM orders o WHERE o.order_no OPERATOR(pg_catalog.=) l.order_no
                                            AND o.cancelled_at IS NOT NULL)),
               r.s * coalesce(sum(l.revenue_delta) FILTER (WHERE l.entry_type = 'order' AND NOT EXISTS (
                   SELECT 1 FROM orders o WHERE o.order_no OPERATOR(pg_catalog.=) l.order_no
                                            AND o.cancelled_at IS NOT NULL)), 0)::bigint,
               r.s * coalesce(sum(l.returned_delta) FILTER (WHERE l.entry_type = 'return'), 0)::bigint
        FROM (VALUES (a_lo, a_hi, a_sign), (b_lo, b_hi, b_sign)) r(lo, hi, s)
        JOIN ledger l ON l.entry_type IN ('order', 'return') AND l.event_at >= r.lo AND l.event_at < r.hi
        GROUP BY l.channel, l.currency, r.s
    ), total AS (
        SELECT p.ch, p.cur, sum(p.n)::bigint AS n, sum(p.purchased)::bigint AS purchased, sum(p.back)::bigint AS back
        FROM parts p GROUP BY p.ch, p.cur
    )
    SELECT t.ch, t.n, currency_amount_from_minor_units(t.purchased - t.back, t.cur),
           currency_amount_from_minor_units(t.back, t.cur),
           CASE WHEN t.purchased > 0 THEN pg_catalog.round(t.back::numeric / t.purchased, 4) END
    FROM total t
    WHERE t.n <> 0 OR t.back <> 0
    ORDER BY t.ch, t.cur;
END $$;
REVOKE ALL ON FUNCTION @extschema@.channel_report(timestamptz, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.channel_report(timestamptz, timestamptz) IS
    'per channel: orders placed in [from_ts, to_ts) and not cancelled, revenue net of the period''s returns, returned value, return rate';

-- search(query, max_rows): the call center's search box.  Exact identifiers
-- first (order and return numbers, email, phone, loyalty card, marketplace
-- buyer), then order-number prefixes and parts of email addresses, then
-- names by similarity (typos, any order, through pg_trgm).  One row per
-- customer and order, with what matched best.  Merged
-- duplicates and forgotten customers are never found.
--
-- Phone numbers compare in international digits: a national number
-- (leading 0) gets the country code of the policy row, 00 and + are
-- international prefixes.  The index holds each stored number's digits
-- reversed, so the national digits of the query find every way the number
-- was written (+49 30 ..., 030/..., 0049 30 ...) by prefix.
ALTER TABLE @extschema@.policy
    ADD COLUMN phone_country_code text NOT NULL DEFAULT '49' CHECK (phone_country_code ~ '^[1-9][0-9]{0,2}$');
COMMENT ON COLUMN @extschema@.policy.phone_country_code IS
    'country calling code for phone numbers written nationally (leading 0), e.g. 49';

-- a phone number in international digits (no + or 00), cc for national numbers
CREATE FUNCTION @extschema@.phone_international(phone text, cc text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = @extschema@, pg_temp AS $$
    SELECT CASE WHEN x.d = '' THEN NULL
                WHEN pg_catalog.btrim(phone) LIKE '+%' THEN x.d
                WHEN x.d LIKE '00%' THEN pg_catalog.substr(x.d, 3)
                WHEN x.d LIKE '0%' THEN cc OPERATOR(pg_catalog.||) pg_catalog.substr(x.d, 2)
                ELSE cc OPERATOR(pg_catalog.||) x.d END
    FROM (SELECT pg_catalog.regexp_replace(phone, '[^0-9]', '', 'g') AS d) x
$$;
REVOKE ALL ON FUNCTION @extschema@.phone_international(text, text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.phone_international(text, text) IS
    'a phone number as international digits; cc is the country code of a number written nationally';

-- the buyer id of a marketplace identity (''ebay:buyer77'' -> ''buyer77'')
CREATE FUNCTION @extschema@.marketplace_buyer(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = @extschema@, pg_temp AS $$
    SELECT pg_catalog.lower(pg_catalog.substr(value, pg_catalog.strpos(value, ':') + 1))
$$;
REVOKE ALL ON FUNCTION @extschema@.marketplace_buyer(text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.marketplace_buyer(text) IS 'the buyer id of a marketplace identity, without the marketplace';

-- a LIKE pattern that matches the text literally
CREATE FUNCTION @extschema@.like_literal(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = @extschema@, pg_temp AS $$
    SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(value, '\', '\\'), '%', '\%'), '_', '\_')
$$;
REVOKE ALL ON FUNCTION @extschema@.like_literal(text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.like_literal(text) IS 'the text with LIKE''s wildcards escaped';

-- the least text above every text that starts with p, in byte order (the
-- order of text_pattern_ops): p with its last character advanced; NULL when
-- there is none (p ends in the highest character, or the database encoding
-- is not UTF8 and the character is not ASCII)
CREATE FUNCTION @extschema@.prefix_end(p text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = @extschema@, pg_temp AS $$
DECLARE
    c integer;
    top integer := CASE WHEN pg_catalog.current_setting('server_encoding') = 'UTF8' THEN 1114111 ELSE 127 END;
BEGIN
    WHILE pg_catalog.length(p) > 0 LOOP
        c := pg_catalog.ascii(pg_catalog.right(p, 1));
        IF c < top THEN
            c := c + 1;
            IF c BETWEEN 55296 AND 57343 THEN     -- UTF-16 surrogates are no characters
                c := 57344;
            END IF;
            RETURN pg_catalog.left(p, -1) OPERATOR(pg_catalog.||) pg_catalog.chr(c);
        END IF;
        p := pg_catalog.left(p, -1);
    END LOOP;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION @extschema@.prefix_end(text) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.prefix_end(text) IS
    'the least text above every text starting with p in byte order; NULL when there is none';

-- order numbers by prefix (text_pattern_ops: LIKE 'X%' whatever the
-- collation), on the ledger's one 'order' entry per order: an index on
-- orders could not be built by an update run in a transaction that has
-- just booked orders (their deferred checks are pending)
CREATE INDEX ledger_order_no_prefix ON @extschema@.ledger (order_no text_pattern_ops) WHERE entry_type = 'order';
-- phone numbers by their reversed digits (see above)
CREATE INDEX customer_identity_phone_digits ON @extschema@.customer_identity
    (pg_catalog.reverse(pg_catalog.regexp_replace(value, '[^0-9]', '', 'g')) text_pattern_ops) WHERE kind = 'phone';
CREATE INDEX customer_phone_digits ON @extschema@.customer
    (pg_catalog.reverse(pg_catalog.regexp_replace(phone, '[^0-9]', '', 'g')) text_pattern_ops) WHERE phone IS NOT NULL;
-- marketplace buyer ids without the marketplace
CREATE INDEX customer_identity_marketplace_buyer ON @extschema@.customer_identity
    (@extschema@.marketplace_buyer(value)) WHERE kind = 'marketplace';

-- pg_trgm lives in a schema chosen when it was installed: the trigram
-- indexes and search() name it explicitly (never through search_path)
DO $do$
DECLARE
    trgm text := (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e
                  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
                  WHERE e.extname OPERATOR(pg_catalog.=) 'pg_trgm');
BEGIN
    -- names with typos and in any order; parts of email addresses (LIKE '%x%')
    EXECUTE pg_catalog.replace($ddl$
        CREATE INDEX customer_name_trgm ON @extschema@.customer USING gin (full_name @trgm@.gin_trgm_ops)
            WHERE full_name IS NOT NULL AND merged_into IS NULL$ddl$, '@trgm@', trgm);
    EXECUTE pg_catalog.replace($ddl$
        CREATE INDEX customer_identity_email_trgm ON @extschema@.customer_identity USING gin (value @trgm@.gin_trgm_ops)
            WHERE kind = 'email'$ddl$, '@trgm@', trgm);
    EXECUTE pg_catalog.replace($ddl$
CREATE FUNCTION @extschema@.search(query text, max_rows integer DEFAULT 20)
RETURNS TABLE (customer_id bigint, full_name text, email text, order_no text, channel text, matched_on text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $body$
#variable_conflict use_column
DECLARE
    q text := pg_catalog.btrim(query);
    ql text;
    cc text;
    qn text;          -- the query as a phone number, international digits
    nat text;         -- its national digits (without the policy's country code)
    card text;
    qu text;          -- the query in capitals, NULL when it is the same
    q_end text;       -- order numbers starting with q lie in [q, q_end) (prefix_end)
    qu_end text;
    email_part text;  -- LIKE pattern for a part of an email address
BEGIN
    IF max_rows IS NULL OR max_rows < 1 OR max_rows > 1000 THEN
        RAISE EXCEPTION 'max_rows must be between 1 and 1000, not %', coalesce(max_rows::text, 'NULL') USING ERRCODE = '22023';
    END IF;
    IF q IS NULL OR pg_catalog.length(q) < 2 THEN
        RETURN;
    END IF;
    ql := pg_catalog.lower(q);
    SELECT p.phone_country_code INTO cc FROM policy p;
    cc := coalesce(cc, '49');
    IF q ~ '^\+?[0-9][0-9 ()/.-]*$' AND pg_catalog.length(pg_catalog.regexp_replace(q, '[^0-9]', '', 'g')) >= 5 THEN
        qn := phone_international(q, cc);
        nat := CASE WHEN qn LIKE cc || '%' THEN pg_catalog.substr(qn, pg_catalog.length(cc) + 1) ELSE qn END;
    END IF;
    card := pg_catalog.upper(pg_catalog.regexp_replace(q, '[^A-Za-z0-9]', '', 'g'));
    qu := NULLIF(pg_catalog.upper(q), q);
    q_end := prefix_end(q);
    qu_end := prefix_end(qu);
    email_part := '%' OPERATOR(pg_catalog.||) like_literal(ql) OPERATOR(pg_catalog.||) '%';
    -- every pattern and bound is computed here, once: the statement below
    -- compares columns with parameters, so each branch is an index range
    RETURN QUERY
    WITH hits (customer_id, order_no, channel, matched_on, rank, score) AS (
        -- order number, exact (as typed or in capitals)
        SELECT o.customer_id, o.order_no, o.channel, 'order_no', 0, 1::real
        FROM orders o WHERE o.order_no IN (q, pg_catalog.upper(q))
        UNION ALL
        -- order number, by prefix (as typed and in capitals): a range of
        -- the text_pattern_ops index, read in its order up to max_rows
        SELECT o.customer_id, o.order_no, o.channel, 'order_no', 1, 0.5::real
        FROM (SELECT l.order_no FROM ledger l
              WHERE l.entry_type = 'order' AND l.order_no OPERATOR(pg_catalog.~>=~) q
                AND l.order_no OPERATOR(pg_catalog.~<~) q_end AND l.order_no <> q
              ORDER BY l.order_no USING OPERATOR(pg_catalog.~<~) LIMIT max_rows) p
        JOIN orders o ON o.order_no = p.order_no
        UNION ALL
        SELECT o.customer_id, o.order_no, o.channel, 'order_no', 1, 0.5::real
        FROM (SELECT l.order_no FROM ledger l
              WHERE l.entry_type = 'order' AND l.order_no OPERATOR(pg_catalog.~>=~) qu
                AND l.order_no OPERATOR(pg_catalog.~<~) qu_end AND l.order_no <> qu
              ORDER BY l.order_no USING OPERATOR(pg_catalog.~<~) LIMIT max_rows) p
        JOIN orders o ON o.order_no = p.order_no
        UNION ALL
        -- (no end to the range: q ends in the highest character)
        SELECT o.customer_id, o.order_no, o.channel, 'order_no', 1, 0.5::real
        FROM (SELECT l.order_no FROM ledger l
              WHERE (q_end IS NULL OR (qu IS NOT NULL AND qu_end IS NULL))
                AND l.entry_type = 'order' AND l.order_no <> q AND l.order_no IS DISTINCT FROM qu
                AND (pg_catalog.starts_with(l.order_no, q) OR pg_catalog.starts_with(l.order_no, qu))
              ORDER BY l.order_no USING OPERATOR(pg_catalog.~<~) LIMIT max_rows) p
        JOIN orders o ON o.order_no = p.order_no
        UNION ALL
        -- return number
        SELECT o.customer_id, r.order_no, coalesce(r.channel, r.announced_on), 'return_no', 0, 1::real
        FROM return_request r JOIN orders o ON o.order_no = r.order_no
        WHERE r.return_no IN (q, pg_catalog.upper(q))
        UNION ALL
        -- email, exact
        SELECT i.customer_id, NULL, NULL, 'email', 0, 1::real
        FROM customer_identity i WHERE i.kind = 'email' AND i.value = ql
        UNION ALL
        -- email, a part of it
        SELECT e.customer_id, NULL, NULL, 'email', 1, e.score
        FROM (SELECT i.customer_id, @trgm@.similarity(i.value, ql) AS score FROM customer_identity i
              WHERE pg_catalog.length(q) >= 3 AND q !~ '\s' AND i.kind = 'email'
                AND i.value LIKE email_part AND i.value <> ql
              ORDER BY 2 DESC LIMIT max_rows) e
        UNION ALL
        -- phone, however it was written
        SELECT i.customer_id, NULL, NULL, 'phone', 0, 1::real
        FROM customer_identity i
        WHERE qn IS NOT NULL AND i.kind = 'phone'
          AND pg_catalog.reverse(pg_catalog.regexp_replace(i.value, '[^0-9]', '', 'g')) LIKE pg_catalog.reverse(nat) || '%'
          AND phone_international(i.value, cc) = qn
        UNION ALL
        SELECT c.customer_id, NULL, NULL, 'phone', 0, 1::real
        FROM customer c
        WHERE qn IS NOT NULL AND c.phone IS NOT NULL
          AND pg_catalog.reverse(pg_catalog.regexp_replace(c.phone, '[^0-9]', '', 'g')) LIKE pg_catalog.reverse(nat) || '%'
          AND phone_international(c.phone, cc) = qn
        UNION ALL
        -- loyalty card, with or without separators
        SELECT i.customer_id, NULL, NULL, 'loyalty_card', 0, 1::real
        FROM customer_identity i WHERE card <> '' AND i.kind = 'loyalty_card' AND i.value = card
        UNION ALL
        -- marketplace buyer, with or without the marketplace
        SELECT i.customer_id, NULL, NULL, 'marketplace', 0, 1::real
        FROM customer_identity i
        WHERE i.kind = 'marketplace' AND (i.value = ql OR marketplace_buyer(i.value) = ql)
        UNION ALL
        -- names: typos, fragments, any order
        SELECT n.customer_id, NULL, NULL, 'name', 2, n.score
        FROM (SELECT c.customer_id,
                     GREATEST(@trgm@.similarity(c.full_name, q), @trgm@.word_similarity(q, c.full_name)) AS score
              FROM customer c
              WHERE c.full_name IS NOT NULL AND c.merged_into IS NULL
                AND (c.full_name OPERATOR(@trgm@.%) q OR q OPERATOR(@trgm@.<%) c.full_name)
              ORDER BY 2 DESC, 1 LIMIT max_rows) n
    )
    SELECT h.customer_id, c.full_name, c.email, h.order_no, h.channel, h.matched_on
    FROM (SELECT DISTINCT ON (x.customer_id, x.order_no) x.*
          FROM hits x ORDER BY x.customer_id, x.order_no, x.rank, x.score DESC) h
    JOIN customer c ON c.customer_id = h.customer_id
    WHERE c.forgotten_at IS NULL AND c.merged_into IS NULL
    ORDER BY h.rank, h.score DESC, h.customer_id, h.order_no
    LIMIT max_rows;
END $body$$ddl$, '@trgm@', trgm);
END $do$;
REVOKE ALL ON FUNCTION @extschema@.search(text, integer) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.search(text, integer) IS
    'the call center''s search box: exact identifiers first, then order-number prefixes, then similarity; matched_on says what matched';



------------------------------------------------------------------------------
-- section: verify_balances (after every section that adds a cached figure)
------------------------------------------------------------------------------

-- verify_balances(): every figure the account state caches, rebuilt from the
-- books in one pass over the ledger (plus the open items, the orders and the
-- dunning notices for the figures that live there).  Money differences come
-- as currency_amount in stored/recomputed; every difference also as text in
-- stored_value/recomputed_value.  Figures that follow a customer's history
-- (first and last purchase, last event, monthly counters, dunning level) are
-- checked on the surviving account of a merge, over the ledgers of every
-- customer merged into it; a merged-away account must stay at zero.
--
-- The rebuild is verify_balances_rebuild() in C (src/verify.c): one
-- sequential scan of each table (customer, account_period, ledger,
-- open_item, orders, dunning_notice, account_state) into per-account
-- accumulators, no per-row function call, no sort, no hash join.  What it
-- computes, figure by figure, is this query (the SQL definition it replaced):
--
--   chain/roots: each merged-away customer under the survivor at the top of
--     its merge chain (a chain to an unknown customer or round in a circle
--     has no top: the rows stay under the customer itself)
--   per account (customer_id, currency) of account_state FULL JOIN the
--     ledger's accounts, LEFT JOIN customer:
--     balance            sum(minor_units(ledger.amount))
--     open_amount        sum(open_delta)
--     store_credit       sum(credit_delta)
--     lifetime_revenue   sum(revenue_delta)
--     lifetime_returned  sum(returned_delta)
--     orders_count       sum(order_delta)
--     open_items         the state's open_amount = sum(open) of the unsettled open items
--     balance = open - credit   on the state row itself
--     next_due_at        min(due_at) of the unsettled items other than prepayments
--     paid_orders        orders not cancelled without an unsettled item, by
--                        customer_id and currency_of(total) (0 when merged away)
--     dunning_level      max(level) of the notices of the state's dunning_cycle
--                        (0 when merged away)
--   per surviving account, over the ledgers of everyone merged into it:
--     first_order_at     min(event_at) of the 'order' entries
--     last_purchase_at   max(event_at) of the 'order' entries
--     last_webshop .. last_app   the same per channel_kind
--     last_event_at      max(event_at) of the entries other than merge_in/merge_out
--   per state row: month_ring = account_period's rows of the twelve months up
--     to its latest (period > latest - interval '12 months'), oldest first, as
--     bigint[n][5] {extract(year) * 12 + extract(month) - 1, revenue,
--     purchased, returned, orders} ('{}' when none); and the customer facts
--     merged_into, customer_blocked, customer_since, customer_language,
--     customer_credit_limit, customer_group against the customer row
--   account_period FULL JOIN the ledger's months (revenue_period, under the
--     survivor): period revenue, period purchased (the revenue of 'order' and
--     'cancel' entries), period returned, period orders
--   channel_day (its slots added up) FULL JOIN per UTC day, channel and
--     currency: the orders not cancelled placed that day and their total
--     (from orders), the returned_delta of the ledger's 'return' entries of
--     that day (channel = the channel that sold the goods); as figures
--     'channel_day orders|purchased|returned' with customer_id NULL and the
--     day and channel in the values ('2026-11-21 till: 6')
--
-- Each figure is compared in its own type with IS DISTINCT FROM semantics (a
-- missing account or month counts as zeros, as the SQL's coalesce did); the
-- text of a value is its type's output (bool as true/false).  Reads with the
-- statement's snapshot, as a query would.
CREATE FUNCTION @extschema@.verify_balances_rebuild(OUT customer_id bigint, OUT currency text,
        OUT stored @extschema@.currency_amount, OUT recomputed @extschema@.currency_amount, OUT figure text,
        OUT stored_value text, OUT recomputed_value text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'verify_balances_rebuild' LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION @extschema@.verify_balances_rebuild() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.verify_balances_rebuild() IS
    'the differences verify_balances() reports, unsorted (it checks SELECT on the tables it reads)';

DROP FUNCTION @extschema@.verify_balances();
CREATE FUNCTION @extschema@.verify_balances(OUT customer_id bigint, OUT currency text,
        OUT stored @extschema@.currency_amount, OUT recomputed @extschema@.currency_amount, OUT figure text,
        OUT stored_value text, OUT recomputed_value text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp
AS $$
    SELECT v.customer_id, v.currency, v.stored, v.recomputed, v.figure, v.stored_value, v.recomputed_value
    FROM @extschema@.verify_balances_rebuild() v
    ORDER BY v.customer_id, v.currency COLLATE "C", v.figure
$$;
REVOKE ALL ON FUNCTION @extschema@.verify_balances() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.verify_balances() IS
    'every figure the account state and the monthly counters cache, rebuilt from the books; always empty';



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
