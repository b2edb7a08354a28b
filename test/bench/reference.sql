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

-- return decision: the same rules as IF/ELSE, every fact read with SQL and
-- the account figures summed from history; one row per refund route
CREATE OR REPLACE FUNCTION bench.ref_decide_return(p_no text, p_sku text, p_qty int, p_channel text,
                                                   p_at timestamptz DEFAULT now())
RETURNS TABLE (action text, refund numeric, reason_code text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    o record; ret_order text; ann_at timestamptz; sold record; c record; pol record; l record; t record; tender_method text;
    this_return text; declared timestamptz; delivered timestamptz; is_delivered boolean;
    scale numeric; bought int := 0; returned int := 0; reserved int := 0; skip int; want int; take_units int;
    value numeric := 0; returnable boolean := true; win int := 1000000; exch boolean := false;
    rule record; legal boolean; blocked boolean; frequent boolean; orders12 bigint; bought12 numeric; returned12 numeric;
    unpaid numeric := 0; own_overdue numeric := 0; overdue numeric := 0; debt numeric; remaining numeric; take numeric;
    cash_left numeric; cash numeric; refunded numeric; route text;
    a text[] := '{}'; r numeric[] := '{}'; rc text[] := '{}';
    a2 text[] := '{}'; r2 numeric[] := '{}'; rc2 text[] := '{}'; off numeric;
    tm text[] := '{}'; tr text[] := '{}'; tv numeric[] := '{}';
BEGIN
    SELECT x.*, customer_account.currency_of(x.total) AS cur, customer_account.amount_of(x.total) AS tot
    INTO o FROM customer_account.orders x WHERE x.order_no = p_no;
    IF NOT FOUND THEN
        SELECT q.order_no, q.announced_at INTO ret_order, ann_at FROM customer_account.return_request q WHERE q.return_no = p_no;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'unknown order or return number "%"', p_no USING ERRCODE = 'RA002';
        END IF;
        this_return := p_no;
        SELECT x.*, customer_account.currency_of(x.total) AS cur, customer_account.amount_of(x.total) AS tot
        INTO o FROM customer_account.orders x WHERE x.order_no = ret_order;
    END IF;
    SELECT * INTO sold FROM customer_account.channel WHERE code = o.channel;
    SELECT * INTO c FROM customer_account.customer WHERE customer_id = o.customer_id;
    SELECT 10 ^ m.minor_units INTO scale FROM customer_account.currencies() m WHERE m.code = o.cur;
    declared := CASE WHEN ann_at IS NOT NULL AND ann_at <= p_at THEN ann_at ELSE p_at END;
    is_delivered := o.delivered_at IS NOT NULL OR sold.kind = 'store';
    delivered := coalesce(o.delivered_at, o.placed_at);

    SELECT coalesce(sum(x.qty) FILTER (WHERE x.status = 'accepted'), 0) INTO returned
    FROM customer_account.return_line x WHERE x.order_no = o.order_no AND x.sku = p_sku;
    SELECT coalesce(sum(x.announced), 0) INTO reserved FROM (
        SELECT sum(y.qty) FILTER (WHERE y.status = 'announced') AS announced
        FROM customer_account.return_line y WHERE y.order_no = o.order_no AND y.sku = p_sku
          AND y.return_no IS DISTINCT FROM this_return
        GROUP BY y.return_no HAVING count(*) FILTER (WHERE y.status <> 'announced') = 0) x;

    skip := returned; want := p_qty;
    FOR l IN SELECT * FROM customer_account.order_line x WHERE x.order_no = o.order_no AND x.sku = p_sku ORDER BY x.line_no LOOP
        bought := bought + l.qty;
        IF want > 0 AND skip < l.qty THEN
            take_units := least(l.qty - skip, want);
            want := want - take_units;
            value := value + customer_account.amount_of(l.unit_price) * take_units;
            SELECT * INTO rule FROM customer_account.return_policy p
            WHERE (p.channel IS NULL OR p.channel = o.channel) AND (p.channel_kind IS NULL OR p.channel_kind = sold.kind)
              AND (p.category IS NULL OR p.category = l.category) AND (p.sku_pattern IS NULL OR p_sku LIKE p.sku_pattern)
            ORDER BY p.sku_pattern IS NULL, p.category IS NULL, p.channel IS NULL, p.channel_kind IS NULL, p.rule_id LIMIT 1;
            returnable := returnable AND l.returnable AND coalesce(rule.returnable, true);
            win := least(win, coalesce(rule.return_window_days, sold.return_window_days));
            exch := exch OR coalesce(rule.exchange_only, false);
        END IF;
        skip := greatest(skip - l.qty, 0);
    END LOOP;

    IF o.cancelled_at IS NOT NULL OR o.placed_at > p_at OR bought = 0 THEN
        RETURN QUERY SELECT 'reject', NULL::numeric, 'not_sold_by_us'; RETURN;
    ELSIF p_qty > bought THEN
        RETURN QUERY SELECT 'reject', NULL::numeric, 'quantity_exceeds_purchase'; RETURN;
    ELSIF p_qty > bought - returned - reserved THEN
        RETURN QUERY SELECT 'reject', NULL::numeric, 'already_returned'; RETURN;
    ELSIF NOT is_delivered OR delivered > p_at THEN
        RETURN QUERY SELECT 'reject', NULL::numeric, 'not_delivered'; RETURN;
    ELSIF NOT returnable THEN
        RETURN QUERY SELECT 'reject', NULL::numeric, 'item_not_returnable'; RETURN;
    END IF;
    legal := sold.kind <> 'store' AND declared <= delivered + interval '14 days';
    IF NOT legal AND declared > delivered + make_interval(days => win) THEN
        RETURN QUERY SELECT 'reject', NULL::numeric, 'return_window_expired'; RETURN;
    ELSIF NOT legal AND c.blocked THEN
        RETURN QUERY SELECT 'reject', NULL::numeric, 'customer_blocked'; RETURN;
    END IF;

    SELECT * INTO pol FROM customer_account.credit_policy p
    WHERE (p.channel_kind IS NULL OR p.channel_kind = sold.kind) AND (p.customer_group IS NULL OR p.customer_group = c.customer_group)
      AND (p.currency IS NULL OR p.currency = o.cur)
    ORDER BY p.customer_group IS NULL, p.channel_kind IS NULL, p.currency IS NULL, p.policy_id LIMIT 1;
    SELECT coalesce(sum(x.order_delta), 0), coalesce(sum(x.revenue_delta) FILTER (WHERE x.entry_type IN ('order', 'cancel')), 0),
           coalesce(sum(x.returned_delta), 0)
    INTO orders12, bought12, returned12
    FROM customer_account.ledger x WHERE x.customer_id = o.customer_id AND x.currency = o.cur
      AND x.revenue_period > date_trunc('month', p_at AT TIME ZONE 'UTC') - interval '12 months'
      AND x.revenue_period <= date_trunc('month', p_at AT TIME ZONE 'UTC');
    frequent := sold.kind = 'store' AND orders12 >= pol.return_rate_min_orders AND bought12 > 0
                AND least(returned12, bought12) / bought12 > pol.max_return_rate;
    SELECT coalesce(sum(i.open) FILTER (WHERE NOT i.disputed AND i.kind <> 'prepayment'
                                          AND i.due_at < p_at - make_interval(days => pol.overdue_grace_days)), 0) / scale
    INTO overdue FROM customer_account.open_item i
    WHERE i.customer_id = o.customer_id AND i.currency = o.cur AND i.settled_at IS NULL;

    -- the tenders, first paid first
    IF (SELECT m.settlement FROM customer_account.payment_method m WHERE m.code = o.payment_method) = 'immediate' THEN
        SELECT coalesce(sum(customer_account.amount_of(f.refund)), 0) INTO refunded
        FROM customer_account.return_refund f WHERE f.order_no = o.order_no AND f.tender = 'order';
        tm := ARRAY[o.payment_method]; tv := ARRAY[o.tot - refunded];
    ELSE
        SELECT coalesce(sum(i.open) FILTER (WHERE i.settled_at IS NULL), 0) / scale,
               coalesce(sum(i.open) FILTER (WHERE i.settled_at IS NULL AND NOT i.disputed AND i.kind <> 'prepayment'
                                              AND i.due_at < p_at - make_interval(days => pol.overdue_grace_days)), 0) / scale
        INTO unpaid, own_overdue
        FROM customer_account.open_item i WHERE i.order_no = o.order_no AND i.customer_id = o.customer_id;
        FOR t IN SELECT ap.payment_ref AS ref, sum(ap.amount) / scale AS paid, min(ap.applied_at) AS first_at
                 FROM customer_account.open_item i JOIN customer_account.item_application ap ON ap.item_id = i.item_id
                 WHERE i.order_no = o.order_no AND i.customer_id = o.customer_id
                 GROUP BY ap.payment_ref ORDER BY min(ap.applied_at), ap.payment_ref LOOP
            SELECT p.method INTO tender_method FROM customer_account.payment p WHERE p.payment_ref = t.ref;
            IF NOT FOUND THEN
                CONTINUE WHEN EXISTS (SELECT 1 FROM customer_account.return_request q WHERE q.return_no = t.ref AND q.order_no = o.order_no);
                tender_method := 'store_credit';
            END IF;
            SELECT coalesce(sum(customer_account.amount_of(f.refund)), 0) INTO refunded
            FROM customer_account.return_refund f WHERE f.order_no = o.order_no AND f.tender = 'payment' AND f.payment_ref = t.ref;
            tm := tm || tender_method; tv := tv || (t.paid - refunded);
        END LOOP;
    END IF;

    remaining := value;
    IF unpaid > 0 AND remaining > 0 THEN
        take := least(unpaid, remaining);
        a := a || 'reduce_open_invoice'::text; r := r || take; rc := rc || 'unpaid_order'::text;
        remaining := remaining - take;
    END IF;
    cash_left := coalesce(customer_account.amount_of((SELECT x.cash_refund_limit FROM customer_account.channel x WHERE x.code = p_channel)), 1e18);
    FOR i IN REVERSE coalesce(array_length(tv, 1), 0) .. 1 LOOP
        EXIT WHEN remaining <= 0;
        take := least(tv[i], remaining);
        CONTINUE WHEN take <= 0;
        remaining := remaining - take;
        route := CASE WHEN sold.kind = 'marketplace' OR tm[i] = 'marketplace' THEN 'marketplace'
                      WHEN tm[i] = 'cash' THEN 'cash' WHEN tm[i] = 'store_credit' THEN 'store_credit' ELSE 'original' END;
        IF route = 'marketplace' THEN
            a := a || 'refund_via_marketplace'::text; r := r || take; rc := rc || 'marketplace_order'::text;
        ELSIF NOT legal AND exch THEN
            a := a || 'exchange_only'::text; r := r || take; rc := rc || 'exchange_only'::text;
        ELSIF NOT legal AND frequent AND route <> 'store_credit' THEN
            a := a || 'store_credit'::text; r := r || take; rc := rc || 'frequent_returner'::text;
        ELSIF route = 'store_credit' THEN
            a := a || 'store_credit'::text; r := r || take; rc := rc || 'ok'::text;
        ELSIF route = 'cash' AND (SELECT x.kind FROM customer_account.channel x WHERE x.code = p_channel) = 'store' THEN
            cash := least(take, cash_left); cash_left := cash_left - cash;
            IF cash > 0 THEN
                a := a || 'refund_cash'::text; r := r || cash; rc := rc || 'ok'::text;
            END IF;
            IF take - cash > 0 THEN
                a := a || CASE WHEN legal THEN 'refund_original_payment' ELSE 'store_credit' END;
                r := r || (take - cash); rc := rc || 'cash_limit_exceeded'::text;
            END IF;
        ELSE
            a := a || 'refund_original_payment'::text; r := r || take; rc := rc || 'ok'::text;
        END IF;
    END LOOP;
    IF remaining > 0 THEN
        a := a || 'store_credit'::text; r := r || remaining; rc := rc || 'ok'::text;
    END IF;
    -- overdue debt of other orders is set off against what would be paid out or credited
    debt := greatest(overdue - own_overdue, 0);
    FOR i IN 1 .. coalesce(array_length(a, 1), 0) LOOP
        IF debt > 0 AND a[i] IN ('refund_cash', 'refund_original_payment', 'store_credit') THEN
            off := least(r[i], debt); debt := debt - off;
            IF r[i] - off > 0 THEN
                a2 := a2 || a[i]; r2 := r2 || (r[i] - off); rc2 := rc2 || rc[i];
            END IF;
            a2 := a2 || 'reduce_open_invoice'::text; r2 := r2 || off; rc2 := rc2 || 'offset_against_debt'::text;
        ELSE
            a2 := a2 || a[i]; r2 := r2 || r[i]; rc2 := rc2 || rc[i];
        END IF;
    END LOOP;
    IF coalesce(array_length(a2, 1), 0) = 0 THEN
        RETURN QUERY SELECT CASE WHEN tm[array_length(tm, 1)] = 'marketplace' OR sold.kind = 'marketplace'
                                 THEN 'refund_via_marketplace' ELSE 'refund_original_payment' END, 0::numeric, 'ok';
        RETURN;
    END IF;
    RETURN QUERY SELECT x.a, x.r, x.rc FROM unnest(a2, r2, rc2) WITH ORDINALITY AS x(a, r, rc, n) ORDER BY x.n;
END $$;

-- the write path without the extension: the same rows into plain tables
CREATE TABLE IF NOT EXISTS bench.plain_orders (order_no text PRIMARY KEY, customer_id bigint NOT NULL, channel text NOT NULL,
    payment_method text NOT NULL, total numeric NOT NULL, currency text NOT NULL, placed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench.plain_lines (order_no text NOT NULL REFERENCES bench.plain_orders, line_no int NOT NULL,
    sku text NOT NULL, qty int NOT NULL, unit_price numeric NOT NULL, PRIMARY KEY (order_no, line_no));
CREATE TABLE IF NOT EXISTS bench.plain_payments (payment_ref text PRIMARY KEY, customer_id bigint NOT NULL, amount numeric NOT NULL,
    currency text NOT NULL, method text NOT NULL, channel text NOT NULL, received_at timestamptz NOT NULL DEFAULT now());

-- channel_report(from, to) in plain SQL, from the orders and the ledger's
-- return entries: per selling channel and currency, the orders placed in
-- [from, to) and not cancelled, their value net of the returns booked in the
-- period, the returned value (under the channel that sold the order, read
-- from the order, whatever till took it back) and returned / purchased
CREATE OR REPLACE FUNCTION bench.ref_channel_report(from_ts timestamptz, to_ts timestamptz)
RETURNS TABLE (channel text, currency text, orders bigint, revenue numeric, returned numeric, return_rate numeric)
LANGUAGE sql STABLE AS $$
    WITH placed AS (
        SELECT o.channel, customer_account.currency_of(o.total) AS currency, count(*) AS n,
               sum(customer_account.amount_of(o.total)) AS purchased
        FROM customer_account.orders o
        WHERE o.placed_at >= from_ts AND o.placed_at < to_ts AND o.cancelled_at IS NULL
        GROUP BY 1, 2
    ), back AS (
        SELECT o.channel, l.currency, sum(l.returned_delta) / 10::numeric ^ m.minor_units AS value
        FROM customer_account.ledger l
        JOIN customer_account.orders o ON o.order_no = l.order_no
        JOIN customer_account.currencies() m ON m.code = l.currency
        WHERE l.entry_type = 'return' AND l.event_at >= from_ts AND l.event_at < to_ts
        GROUP BY o.channel, l.currency, m.minor_units
    )
    SELECT channel, currency, coalesce(p.n, 0), coalesce(p.purchased, 0) - coalesce(b.value, 0), coalesce(b.value, 0),
           CASE WHEN coalesce(p.purchased, 0) > 0 THEN round(coalesce(b.value, 0) / p.purchased, 4) END
    FROM placed p FULL JOIN back b USING (channel, currency)
$$;

-- inactive_customers(days) in plain SQL over the ledger: per customer and
-- currency the latest order, the order count and the lifetime revenue net of
-- returns summed from history; customers with an order not cancelled in a
-- currency whose latest order in every such currency is older than `days`
-- (the latest order as balance() reports it: the time of the latest
-- order booked, cancelled or not); merged and forgotten customers left out
CREATE OR REPLACE FUNCTION bench.ref_inactive_customers(days integer)
RETURNS TABLE (customer_id bigint, currency text, last_purchase_at timestamptz, lifetime_revenue numeric)
LANGUAGE sql STABLE AS $$
    WITH per AS (
        SELECT l.customer_id, l.currency, max(l.event_at) FILTER (WHERE l.entry_type = 'order') AS last_at,
               sum(l.order_delta) AS orders, sum(l.revenue_delta) / 10::numeric ^ m.minor_units AS lifetime
        FROM customer_account.ledger l
        JOIN customer_account.currencies() m ON m.code = l.currency
        GROUP BY l.customer_id, l.currency, m.minor_units
    )
    SELECT p.customer_id, p.currency, p.last_at, p.lifetime
    FROM per p JOIN customer_account.customer c ON c.customer_id = p.customer_id
    WHERE p.orders > 0 AND p.last_at < now() - make_interval(days => days)
      AND c.merged_into IS NULL AND c.forgotten_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM per r WHERE r.customer_id = p.customer_id AND r.orders > 0
                                            AND r.last_at >= now() - make_interval(days => days))
$$;
