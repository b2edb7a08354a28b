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



------------------------------------------------------------------------------
-- section: returns
------------------------------------------------------------------------------



