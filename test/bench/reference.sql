-- The reference implementations: the same answers the way a DBA would write
-- them without this extension's engine: sum the customer's history at query
-- time and decide with IF/ELSE in PL/pgSQL, over the same tables.
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;
RESET client_min_messages;

-- balance: every figure summed from the ledger and the open items per call
CREATE OR REPLACE FUNCTION bench.ref_balance(p_customer bigint, p_as_of timestamptz DEFAULT now())
RETURNS TABLE (customer_id bigint, currency text, balance numeric, open_amount numeric, overdue_amount numeric,
               store_credit numeric, lifetime_revenue numeric, revenue_12m numeric, orders_12m bigint,
               last_purchase_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT p_customer, l.currency,
           sum(customer_account.amount_of(l.amount)),
           (SELECT coalesce(sum(i.open), 0) / 10 ^ m.minor_units FROM customer_account.open_item i
             WHERE i.customer_id = p_customer AND i.currency = l.currency AND i.settled_at IS NULL),
           (SELECT coalesce(sum(i.open), 0) / 10 ^ m.minor_units FROM customer_account.open_item i
             WHERE i.customer_id = p_customer AND i.currency = l.currency AND i.settled_at IS NULL
               AND i.kind <> 'prepayment' AND i.due_at < p_as_of),
           sum(l.credit_delta) / 10 ^ m.minor_units,
           sum(l.revenue_delta) / 10 ^ m.minor_units,
           coalesce(sum(l.revenue_delta) FILTER (WHERE l.revenue_period > date_trunc('month', p_as_of AT TIME ZONE 'UTC') - interval '12 months'), 0) / 10 ^ m.minor_units,
           coalesce(sum(l.order_delta) FILTER (WHERE l.revenue_period > date_trunc('month', p_as_of AT TIME ZONE 'UTC') - interval '12 months'), 0),
           max(l.event_at) FILTER (WHERE l.entry_type = 'order')
    FROM customer_account.ledger l
    JOIN customer_account.currencies() m ON m.code = l.currency
    WHERE l.customer_id = p_customer AND l.event_at <= p_as_of
    GROUP BY l.currency, m.minor_units
    ORDER BY l.currency
$$;

-- payment options: the same rules as IF/ELSE, facts summed from history
CREATE OR REPLACE FUNCTION bench.ref_payment_options(p_customer bigint, p_total numeric, p_currency text, p_channel text)
RETURNS TABLE (method text, allowed boolean, reason_code text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    c record; pol record; m record; k text;
    exposure numeric; overdue numeric; paid int; age int; orders12 bigint; bought numeric; returned numeric;
    credit numeric; lim numeric; rc text;
BEGIN
    SELECT * INTO c FROM customer_account.customer WHERE customer_id = p_customer;
    SELECT ch.kind::text INTO k FROM customer_account.channel ch WHERE ch.code = p_channel;
    SELECT * INTO pol FROM customer_account.credit_policy p
    WHERE (p.channel_kind IS NULL OR p.channel_kind::text = k) AND (p.customer_group IS NULL OR p.customer_group = c.customer_group)
      AND (p.currency IS NULL OR p.currency = p_currency)
    ORDER BY p.customer_group IS NULL, p.channel_kind IS NULL, p.currency IS NULL LIMIT 1;
    SELECT coalesce(sum(open) FILTER (WHERE kind <> 'prepayment'), 0),
           coalesce(sum(open) FILTER (WHERE kind <> 'prepayment' AND NOT disputed AND due_at < now() - make_interval(days => pol.overdue_grace_days)), 0)
    INTO exposure, overdue
    FROM customer_account.open_item WHERE customer_id = p_customer AND currency = p_currency AND settled_at IS NULL;
    SELECT count(*) INTO paid FROM customer_account.orders o
    WHERE o.customer_id = p_customer AND o.cancelled_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM customer_account.open_item i WHERE i.order_no = o.order_no AND i.settled_at IS NULL);
    SELECT coalesce(sum(l.order_delta), 0), coalesce(sum(l.revenue_delta) FILTER (WHERE l.entry_type IN ('order', 'cancel')), 0),
           coalesce(sum(l.returned_delta), 0)
    INTO orders12, bought, returned
    FROM customer_account.ledger l WHERE l.customer_id = p_customer AND l.currency = p_currency
      AND l.revenue_period > date_trunc('month', now() AT TIME ZONE 'UTC') - interval '12 months';
    SELECT coalesce(sum(credit_delta), 0) INTO credit FROM customer_account.ledger
    WHERE customer_id = p_customer AND currency = p_currency;
    exposure := exposure / 100; overdue := overdue / 100; bought := bought / 100; returned := returned / 100; credit := credit / 100;
    age := extract(day FROM now() - c.customer_since);
    FOR m IN SELECT * FROM customer_account.payment_method ORDER BY sort_order, code LOOP
        IF m.channel_kinds IS NOT NULL AND NOT (k = ANY (m.channel_kinds::text[])) THEN
            rc := 'not_offered_on_channel';
        ELSIF (m.min_amount IS NOT NULL AND p_total < m.min_amount) OR (m.max_amount IS NOT NULL AND p_total > m.max_amount) THEN
            rc := 'amount_out_of_range';
        ELSIF c.blocked AND m.settlement <> 'immediate' THEN
            rc := 'customer_blocked';
        ELSIF m.code = 'store_credit' AND credit < p_total THEN
            rc := 'insufficient_store_credit';
        ELSIF m.settlement <> 'credit' THEN
            rc := 'ok';
        ELSIF pol.dunning_block_level > 0 AND (SELECT dunning_level FROM customer_account.account_state
                                               WHERE customer_id = p_customer AND currency = p_currency) >= pol.dunning_block_level THEN
            rc := 'dunning';
        ELSIF overdue > pol.overdue_tolerance THEN
            rc := 'overdue_debt';
        ELSIF orders12 >= pol.return_rate_min_orders AND bought > 0 AND returned / bought > pol.max_return_rate THEN
            rc := 'frequent_returner';
        ELSE
            lim := CASE WHEN customer_account.currency_of(c.credit_limit) = p_currency
                        THEN customer_account.amount_of(c.credit_limit) END;
            IF lim IS NULL AND (age < pol.new_customer_days OR paid < pol.new_customer_paid_orders)
               AND exposure + p_total > pol.first_order_limit THEN
                rc := 'new_customer_limit';
            ELSIF exposure + p_total > coalesce(lim, pol.credit_limit) THEN
                rc := 'credit_limit_exceeded';
            ELSE
                rc := 'ok';
            END IF;
        END IF;
        method := m.code; allowed := rc = 'ok'; reason_code := rc;
        RETURN NEXT;
    END LOOP;
END $$;

-- the write path without the extension: the same rows into plain tables
CREATE TABLE IF NOT EXISTS bench.plain_orders (order_no text PRIMARY KEY, customer_id bigint NOT NULL, channel text NOT NULL,
    payment_method text NOT NULL, total numeric NOT NULL, currency text NOT NULL, placed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench.plain_lines (order_no text NOT NULL REFERENCES bench.plain_orders, line_no int NOT NULL,
    sku text NOT NULL, qty int NOT NULL, unit_price numeric NOT NULL, PRIMARY KEY (order_no, line_no));
CREATE TABLE IF NOT EXISTS bench.plain_payments (payment_ref text PRIMARY KEY, customer_id bigint NOT NULL, amount numeric NOT NULL,
    currency text NOT NULL, method text NOT NULL, channel text NOT NULL, received_at timestamptz NOT NULL DEFAULT now());
