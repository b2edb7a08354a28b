/* customer_account--1.0.0.sql: one central customer account across every sales channel */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION customer_account CASCADE" to load this file. \quit

-- Every name below is schema-qualified with @extschema@ or pg_catalog; the
-- search_path is pinned for the rest of the script as PostgreSQL's guidance
-- for extension scripts asks.
SELECT pg_catalog.set_config('search_path', '@extschema@, pg_catalog, pg_temp', true);

------------------------------------------------------------------------------
-- currency_amount: exact money, 64-bit minor units plus ISO 4217 currency
------------------------------------------------------------------------------
CREATE TYPE @extschema@.currency_amount;

CREATE FUNCTION @extschema@.currency_amount_in(cstring) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_out(@extschema@.currency_amount) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_recv(internal) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_send(@extschema@.currency_amount) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.currency_amount (
    INTERNALLENGTH = 16,
    INPUT = @extschema@.currency_amount_in,
    OUTPUT = @extschema@.currency_amount_out,
    RECEIVE = @extschema@.currency_amount_recv,
    SEND = @extschema@.currency_amount_send,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE @extschema@.currency_amount IS
    'exact money: 64-bit minor units with their ISO 4217 currency, e.g. ''19.99 EUR''';

-- constructors and accessors
CREATE FUNCTION @extschema@.currency_amount(numeric, text) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME', 'currency_amount_from_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.currency_amount(numeric, text) IS
    'amount and ISO 4217 code to currency_amount; more decimals than the currency has is an error';
CREATE FUNCTION @extschema@.currency_amount_from_minor_units(bigint, text) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME', 'currency_amount_from_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_of(@extschema@.currency_amount) RETURNS text
    AS 'MODULE_PATHNAME', 'currency_amount_currency_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.amount_of(@extschema@.currency_amount) RETURNS numeric
    AS 'MODULE_PATHNAME', 'currency_amount_amount_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.minor_units(@extschema@.currency_amount) RETURNS bigint
    AS 'MODULE_PATHNAME', 'currency_amount_minor_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currencies(OUT code text, OUT minor_units int) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'currency_amount_currencies' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 180;
COMMENT ON FUNCTION @extschema@.currencies() IS 'the ISO 4217 currencies currency_amount accepts, with their minor-unit digits';
CREATE FUNCTION @extschema@.abs(@extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME', 'currency_amount_abs' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- arithmetic
CREATE FUNCTION @extschema@.currency_amount_add(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sub(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_neg(@extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_mul_numeric(@extschema@.currency_amount, numeric) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.numeric_mul_currency_amount(numeric, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_mul_int8(@extschema@.currency_amount, bigint) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.int8_mul_currency_amount(bigint, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_mul_int4(@extschema@.currency_amount, integer) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.int4_mul_currency_amount(integer, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_div_numeric(@extschema@.currency_amount, numeric) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_div_int8(@extschema@.currency_amount, bigint) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_div_int4(@extschema@.currency_amount, integer) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.+ (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_add, COMMUTATOR = OPERATOR(@extschema@.+));
CREATE OPERATOR @extschema@.- (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_sub);
CREATE OPERATOR @extschema@.- (RIGHTARG = @extschema@.currency_amount, FUNCTION = @extschema@.currency_amount_neg);
CREATE OPERATOR @extschema@.* (LEFTARG = @extschema@.currency_amount, RIGHTARG = numeric,
    FUNCTION = @extschema@.currency_amount_mul_numeric, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = numeric, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.numeric_mul_currency_amount, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = @extschema@.currency_amount, RIGHTARG = bigint,
    FUNCTION = @extschema@.currency_amount_mul_int8, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = bigint, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.int8_mul_currency_amount, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = @extschema@.currency_amount, RIGHTARG = integer,
    FUNCTION = @extschema@.currency_amount_mul_int4, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = integer, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.int4_mul_currency_amount, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@./ (LEFTARG = @extschema@.currency_amount, RIGHTARG = numeric,
    FUNCTION = @extschema@.currency_amount_div_numeric);
CREATE OPERATOR @extschema@./ (LEFTARG = @extschema@.currency_amount, RIGHTARG = bigint,
    FUNCTION = @extschema@.currency_amount_div_int8);
CREATE OPERATOR @extschema@./ (LEFTARG = @extschema@.currency_amount, RIGHTARG = integer,
    FUNCTION = @extschema@.currency_amount_div_int4);

-- comparison
CREATE FUNCTION @extschema@.currency_amount_eq(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_ne(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_lt(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_le(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_gt(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_ge(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_cmp(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_hash(@extschema@.currency_amount) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_hash_extended(@extschema@.currency_amount, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_smaller(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_larger(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.= (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_eq, COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR @extschema@.<> (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_ne, COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR @extschema@.< (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_lt, COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR @extschema@.<= (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_le, COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR @extschema@.> (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_gt, COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR @extschema@.>= (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_ge, COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS @extschema@.currency_amount_ops
    DEFAULT FOR TYPE @extschema@.currency_amount USING btree AS
        OPERATOR 1 @extschema@.< ,
        OPERATOR 2 @extschema@.<= ,
        OPERATOR 3 @extschema@.= ,
        OPERATOR 4 @extschema@.>= ,
        OPERATOR 5 @extschema@.> ,
        FUNCTION 1 @extschema@.currency_amount_cmp(@extschema@.currency_amount, @extschema@.currency_amount);

CREATE OPERATOR CLASS @extschema@.currency_amount_hash_ops
    DEFAULT FOR TYPE @extschema@.currency_amount USING hash AS
        OPERATOR 1 @extschema@.= ,
        FUNCTION 1 @extschema@.currency_amount_hash(@extschema@.currency_amount),
        FUNCTION 2 @extschema@.currency_amount_hash_extended(@extschema@.currency_amount, bigint);

-- aggregates
CREATE FUNCTION @extschema@.currency_amount_sum_accum(internal, @extschema@.currency_amount) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sum_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sum_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sum_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sum_final(internal) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE @extschema@.sum(@extschema@.currency_amount) (
    SFUNC = @extschema@.currency_amount_sum_accum,
    STYPE = internal,
    SSPACE = 24,
    FINALFUNC = @extschema@.currency_amount_sum_final,
    COMBINEFUNC = @extschema@.currency_amount_sum_combine,
    SERIALFUNC = @extschema@.currency_amount_sum_serialize,
    DESERIALFUNC = @extschema@.currency_amount_sum_deserialize,
    PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@.min(@extschema@.currency_amount) (
    SFUNC = @extschema@.currency_amount_smaller,
    STYPE = @extschema@.currency_amount,
    COMBINEFUNC = @extschema@.currency_amount_smaller,
    SORTOP = OPERATOR(@extschema@.<),
    PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@.max(@extschema@.currency_amount) (
    SFUNC = @extschema@.currency_amount_larger,
    STYPE = @extschema@.currency_amount,
    COMBINEFUNC = @extschema@.currency_amount_larger,
    SORTOP = OPERATOR(@extschema@.>),
    PARALLEL = SAFE
);

------------------------------------------------------------------------------
-- enums of the contract
------------------------------------------------------------------------------
CREATE TYPE @extschema@.channel_kind AS ENUM ('webshop', 'store', 'marketplace', 'callcenter', 'app');
CREATE TYPE @extschema@.return_action AS ENUM
    ('refund_cash', 'refund_original_payment', 'reduce_open_invoice', 'store_credit',
     'exchange_only', 'refund_via_marketplace', 'reject');

-- is_currency(text): true for an ISO 4217 code currency_amount accepts
CREATE FUNCTION @extschema@.is_currency(text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'currency_is_known' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

------------------------------------------------------------------------------
-- configuration: channels, payment methods, policy
------------------------------------------------------------------------------
CREATE TABLE @extschema@.channel (
    code               text PRIMARY KEY CHECK (code <> '' AND code = btrim(code)),
    kind               @extschema@.channel_kind NOT NULL,
    currency           text NOT NULL CHECK (@extschema@.is_currency(currency) AND currency = upper(currency)),
    return_window_days integer NOT NULL DEFAULT 30 CHECK (return_window_days >= 0),
    cash_refund_limit  @extschema@.currency_amount,
    payment_term_days  integer NOT NULL DEFAULT 14 CHECK (payment_term_days >= 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (cash_refund_limit IS NULL OR @extschema@.currency_of(cash_refund_limit) = currency)
);
COMMENT ON TABLE @extschema@.channel IS 'sales channels: each webshop, store, marketplace, call center, app';

-- settlement: how an order paid with the method is booked
--   credit    we deliver before we are paid: a receivable due after the channel's payment term
--   prepaid   the customer pays before we ship: an open item that is never overdue debt
--   immediate settled at once (card, PayPal, cash, marketplace, store credit)
CREATE TABLE @extschema@.payment_method (
    code           text PRIMARY KEY CHECK (code <> '' AND code = btrim(code)),
    grants_credit  boolean NOT NULL,
    channel_kinds  @extschema@.channel_kind[],
    settlement     text NOT NULL CHECK (settlement IN ('credit', 'prepaid', 'immediate')),
    min_amount     numeric CHECK (min_amount >= 0),
    max_amount     numeric CHECK (max_amount >= 0),
    sort_order     integer NOT NULL DEFAULT 100,
    shipped        boolean NOT NULL DEFAULT false,   -- installed by CREATE EXTENSION
    CHECK (grants_credit = (settlement = 'credit')),
    CHECK (min_amount IS NULL OR max_amount IS NULL OR min_amount <= max_amount)
);
COMMENT ON TABLE @extschema@.payment_method IS
    'payment methods; min_amount/max_amount are in major units of the order''s currency (NULL: no bound)';

INSERT INTO @extschema@.payment_method (code, grants_credit, channel_kinds, settlement, max_amount, sort_order, shipped) VALUES
    ('invoice',          true,  '{webshop,app,callcenter,store}', 'credit', 5000, 10, true),
    ('direct_debit',     true,  '{webshop,app,callcenter}', 'credit', 5000, 20, true),
    ('credit_card',      false, NULL, 'immediate', NULL, 30, true),
    ('paypal',           false, '{webshop,app,marketplace}', 'immediate', NULL, 40, true),
    ('prepayment',       false, '{webshop,app,callcenter}', 'prepaid', NULL, 50, true),
    ('bank_transfer',    false, '{webshop,app,callcenter}', 'prepaid', NULL, 60, true),
    ('cash_on_delivery', true,  '{webshop,app,callcenter}', 'credit', 1000, 70, true),
    ('cash',             false, '{store}', 'immediate', NULL, 80, true),
    ('store_credit',     false, NULL, 'immediate', NULL, 90, true),
    ('marketplace',      false, '{marketplace}', 'immediate', NULL, 100, true);

------------------------------------------------------------------------------
-- customers and how we recognise them
------------------------------------------------------------------------------
CREATE TABLE @extschema@.customer (
    customer_id    bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    full_name      text,
    email          text,
    phone          text,
    language       text NOT NULL DEFAULT 'de' CHECK (language ~ '^[a-z]{2}$'),
    customer_since timestamptz NOT NULL DEFAULT now(),
    customer_group text,
    credit_limit   @extschema@.currency_amount,
    blocked        boolean NOT NULL DEFAULT false,
    merged_into    bigint REFERENCES @extschema@.customer,
    forgotten_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (merged_into IS DISTINCT FROM customer_id)
);
COMMENT ON TABLE @extschema@.customer IS 'one central account per person, across every channel';

-- identity kinds: email, phone, loyalty_card, marketplace, external
CREATE TABLE @extschema@.customer_identity (
    kind        text NOT NULL CHECK (kind IN ('email', 'phone', 'loyalty_card', 'marketplace', 'external')),
    value       text NOT NULL CHECK (value <> ''),
    customer_id bigint NOT NULL REFERENCES @extschema@.customer,
    linked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);
CREATE INDEX customer_identity_customer ON @extschema@.customer_identity (customer_id);

------------------------------------------------------------------------------
-- business events: orders, order lines, payments
------------------------------------------------------------------------------
CREATE TABLE @extschema@.orders (
    order_no       text PRIMARY KEY CHECK (order_no <> ''),
    customer_id    bigint NOT NULL REFERENCES @extschema@.customer,
    channel        text NOT NULL REFERENCES @extschema@.channel,
    payment_method text NOT NULL REFERENCES @extschema@.payment_method,
    total          @extschema@.currency_amount NOT NULL,
    placed_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at   timestamptz,
    cancelled_at   timestamptz,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer ON @extschema@.orders (customer_id, placed_at);
COMMENT ON TABLE @extschema@.orders IS
    'orders of every channel; INSERT here or call place_order(): the same trigger books both';

CREATE TABLE @extschema@.order_line (
    order_no    text NOT NULL REFERENCES @extschema@.orders,
    line_no     integer NOT NULL CHECK (line_no > 0),
    customer_id bigint,
    sku         text NOT NULL CHECK (sku <> ''),
    qty         integer NOT NULL,
    unit_price  @extschema@.currency_amount NOT NULL,
    returnable  boolean NOT NULL DEFAULT true,
    category    text,
    PRIMARY KEY (order_no, line_no)
);
CREATE INDEX order_line_customer ON @extschema@.order_line (customer_id);

CREATE TABLE @extschema@.payment (
    payment_ref text PRIMARY KEY CHECK (payment_ref <> ''),
    customer_id bigint NOT NULL REFERENCES @extschema@.customer,
    amount      @extschema@.currency_amount NOT NULL,
    method      text NOT NULL REFERENCES @extschema@.payment_method,
    channel     text NOT NULL REFERENCES @extschema@.channel,
    order_no    text REFERENCES @extschema@.orders,
    received_at timestamptz NOT NULL DEFAULT now(),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payment_customer ON @extschema@.payment (customer_id);
CREATE INDEX payment_order ON @extschema@.payment (order_no) WHERE order_no IS NOT NULL;

------------------------------------------------------------------------------
-- the books: ledger (append-only truth), open items, account state (cache)
-- Only the posting core (src/posting.c) writes these.
------------------------------------------------------------------------------
CREATE TABLE @extschema@.ledger (
    entry_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id    bigint NOT NULL,
    currency       text COLLATE "C" NOT NULL,   -- ISO code: bytewise, no locale
    entry_type     text NOT NULL CHECK (entry_type IN
                       ('order', 'settlement', 'payment', 'cancel', 'refund', 'fee',
                        'merge_in', 'merge_out', 'return', 'credit', 'correction')),
    amount         @extschema@.currency_amount NOT NULL,   -- effect on the balance
    open_delta     bigint NOT NULL DEFAULT 0,              -- effect on open items (minor units)
    credit_delta   bigint NOT NULL DEFAULT 0,              -- effect on store credit
    revenue_delta  bigint NOT NULL DEFAULT 0,              -- effect on net revenue
    returned_delta bigint NOT NULL DEFAULT 0,              -- effect on returned value
    order_delta    integer NOT NULL DEFAULT 0,             -- effect on the order count
    revenue_period date,                                    -- month the revenue effect belongs to
    event_at       timestamptz NOT NULL,                    -- when it happened
    recorded_at    timestamptz NOT NULL DEFAULT now(),      -- when it was booked
    channel        text,
    channel_kind   @extschema@.channel_kind,
    order_no       text,
    payment_ref    text,
    method         text,
    note           text
);
CREATE INDEX ledger_customer ON @extschema@.ledger (customer_id, event_at);
CREATE INDEX ledger_order ON @extschema@.ledger (order_no) WHERE order_no IS NOT NULL;
COMMENT ON TABLE @extschema@.ledger IS
    'append-only journal: every effect on an account; UPDATE, DELETE and TRUNCATE are refused';

CREATE TABLE @extschema@.open_item (
    item_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    currency    text COLLATE "C" NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('invoice', 'prepayment', 'fee')),
    order_no    text,
    amount      bigint NOT NULL CHECK (amount > 0),
    open        bigint NOT NULL CHECK (open >= 0 AND open <= amount),
    created_at  timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,
    settled_at  timestamptz,
    disputed    boolean NOT NULL DEFAULT false,
    CHECK ((open = 0) = (settled_at IS NOT NULL))
);
CREATE INDEX open_item_unsettled ON @extschema@.open_item (customer_id, currency, due_at) WHERE settled_at IS NULL;
CREATE INDEX open_item_settled ON @extschema@.open_item (customer_id, settled_at) WHERE settled_at IS NOT NULL;
CREATE INDEX open_item_due ON @extschema@.open_item (due_at) WHERE settled_at IS NULL;
CREATE INDEX open_item_order ON @extschema@.open_item (order_no) WHERE order_no IS NOT NULL;
CREATE INDEX open_item_settled_at ON @extschema@.open_item (settled_at) WHERE settled_at IS NOT NULL;

-- what paid an open item, and when: lets aging and balance answer "as of" a past date
CREATE TABLE @extschema@.item_application (
    item_id     bigint NOT NULL REFERENCES @extschema@.open_item,
    customer_id bigint NOT NULL,
    payment_ref text,
    amount      bigint NOT NULL CHECK (amount > 0),
    applied_at  timestamptz NOT NULL
);
CREATE INDEX item_application_item ON @extschema@.item_application (item_id, applied_at);

-- per customer and currency: the cache of the ledger that reads are served from
CREATE TABLE @extschema@.account_state (
    customer_id       bigint NOT NULL,
    currency          text COLLATE "C" NOT NULL,
    balance           bigint NOT NULL DEFAULT 0,
    open_amount       bigint NOT NULL DEFAULT 0,
    store_credit      bigint NOT NULL DEFAULT 0,
    lifetime_revenue  bigint NOT NULL DEFAULT 0,
    lifetime_returned bigint NOT NULL DEFAULT 0,
    orders_count      integer NOT NULL DEFAULT 0,
    paid_orders       integer NOT NULL DEFAULT 0,
    first_order_at    timestamptz,
    last_purchase_at  timestamptz,
    last_webshop      timestamptz,
    last_store        timestamptz,
    last_marketplace  timestamptz,
    last_callcenter   timestamptz,
    last_app          timestamptz,
    next_due_at       timestamptz,     -- earliest due date of an unsettled receivable
    last_event_at     timestamptz,     -- latest event time booked (fast path of balance)
    dunning_level     integer NOT NULL DEFAULT 0,
    dunning_cycle     integer NOT NULL DEFAULT 0,    -- a new cycle starts when everything overdue is paid
    dunned_at         date,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, currency)
) WITH (fillfactor = 80);

-- rolling counters by UTC calendar month, for the 12-month figures
CREATE TABLE @extschema@.account_period (
    customer_id bigint NOT NULL,
    currency    text COLLATE "C" NOT NULL,
    period      date NOT NULL,
    revenue     bigint NOT NULL DEFAULT 0,
    purchased   bigint NOT NULL DEFAULT 0,
    returned    bigint NOT NULL DEFAULT 0,
    orders      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, currency, period)
);

-- customer-base averages for value_segment, refreshed by refresh_value_segments()
-- (a batch job), so no write ever touches a global row
CREATE TABLE @extschema@.segment_stats (
    currency     text COLLATE "C" PRIMARY KEY,
    customers    bigint NOT NULL,
    avg_revenue_12m numeric NOT NULL,
    refreshed_at timestamptz NOT NULL DEFAULT now()
);

-- policy: at most one row of account-wide knobs.  No row means the defaults
-- below; a DBA inserts the row to change them (so pg_dump keeps it).
CREATE TABLE @extschema@.policy (
    id                boolean PRIMARY KEY DEFAULT true CHECK (id),
    new_customer_days integer NOT NULL DEFAULT 90 CHECK (new_customer_days >= 0),  -- value_segment 'new'
    segment_band      numeric NOT NULL DEFAULT 0.25 CHECK (segment_band >= 0 AND segment_band < 1),
    incentive_after_days integer NOT NULL DEFAULT 180 CHECK (incentive_after_days > 0)  -- account_advice
);

-- credit policy: the most specific row wins (customer group, then channel
-- kind, then currency); amounts are in major units of the order's currency
CREATE TABLE @extschema@.credit_policy (
    policy_id                integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    channel_kind             @extschema@.channel_kind,
    customer_group           text,
    currency                 text CHECK (currency IS NULL OR @extschema@.is_currency(currency)),
    credit_limit             numeric NOT NULL DEFAULT 1000 CHECK (credit_limit >= 0),
    first_order_limit        numeric NOT NULL DEFAULT 250 CHECK (first_order_limit >= 0),
    new_customer_days        integer NOT NULL DEFAULT 30 CHECK (new_customer_days >= 0),
    new_customer_paid_orders integer NOT NULL DEFAULT 1 CHECK (new_customer_paid_orders >= 0),
    overdue_tolerance        numeric NOT NULL DEFAULT 5 CHECK (overdue_tolerance >= 0),
    overdue_grace_days       integer NOT NULL DEFAULT 3 CHECK (overdue_grace_days >= 0),
    max_return_rate          numeric NOT NULL DEFAULT 0.5 CHECK (max_return_rate BETWEEN 0 AND 1),
    return_rate_min_orders   integer NOT NULL DEFAULT 5 CHECK (return_rate_min_orders >= 0),
    dunning_block_level      integer NOT NULL DEFAULT 1 CHECK (dunning_block_level >= 0),
    shipped                  boolean NOT NULL DEFAULT false,
    UNIQUE NULLS NOT DISTINCT (channel_kind, customer_group, currency)
);
COMMENT ON TABLE @extschema@.credit_policy IS
    'who may buy on credit: limits, tolerances, first-order limit, return-rate and dunning thresholds';
INSERT INTO @extschema@.credit_policy (shipped) VALUES (true);

------------------------------------------------------------------------------
-- the posting core: C row triggers on the order, line and payment tables
------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.orders_post() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
-- these two read by direct index scans, run no SQL and write nothing:
-- they need neither the owner's rights nor a pinned search_path
CREATE FUNCTION @extschema@.order_line_check() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION @extschema@.order_total_check() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE FUNCTION @extschema@.payment_post() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C SECURITY DEFINER SET search_path = @extschema@, pg_temp;
CREATE FUNCTION @extschema@.ledger_guard() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE TRIGGER orders_post AFTER INSERT OR UPDATE OR DELETE ON @extschema@.orders
    FOR EACH ROW EXECUTE FUNCTION @extschema@.orders_post();
CREATE CONSTRAINT TRIGGER order_total_check AFTER INSERT ON @extschema@.orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION @extschema@.order_total_check();
CREATE TRIGGER order_line_check BEFORE INSERT OR UPDATE OR DELETE ON @extschema@.order_line
    FOR EACH ROW EXECUTE FUNCTION @extschema@.order_line_check();
CREATE TRIGGER payment_post AFTER INSERT OR UPDATE OR DELETE ON @extschema@.payment
    FOR EACH ROW EXECUTE FUNCTION @extschema@.payment_post();
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON @extschema@.ledger
    FOR EACH ROW EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.ledger
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
-- (UPDATE stays possible: merge_customers() re-points customer_id)
CREATE TRIGGER item_application_append_only BEFORE DELETE ON @extschema@.item_application
    FOR EACH ROW EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.item_application
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.orders
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.order_line
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.payment
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.open_item
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();
CREATE TRIGGER no_truncate BEFORE TRUNCATE ON @extschema@.account_state
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.ledger_guard();

------------------------------------------------------------------------------
-- set-up and identity (thin wrappers; data-changing ones are SECURITY DEFINER)
------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.add_channel(code text, kind @extschema@.channel_kind, currency text,
        return_window_days integer DEFAULT 30, cash_refund_limit @extschema@.currency_amount DEFAULT NULL,
        payment_term_days integer DEFAULT 14)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    existing channel;
BEGIN
    IF code IS NULL OR btrim(code) = '' OR kind IS NULL OR currency IS NULL THEN
        RAISE EXCEPTION 'a channel needs a code, a kind and a currency' USING ERRCODE = '22023';
    END IF;
    IF NOT is_currency(currency) THEN
        RAISE EXCEPTION 'unknown currency "%" for channel "%"', currency, code USING ERRCODE = '22023';
    END IF;
    IF cash_refund_limit IS NOT NULL AND currency_of(cash_refund_limit) <> upper(currency) THEN
        RAISE EXCEPTION 'cash refund limit % is not in the channel''s currency %', cash_refund_limit, upper(currency)
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO channel AS c (code, kind, currency, return_window_days, cash_refund_limit, payment_term_days)
    VALUES (code, kind, upper(currency), return_window_days, cash_refund_limit, payment_term_days)
    ON CONFLICT ON CONSTRAINT channel_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM channel c WHERE c.code = add_channel.code;
        IF (existing.kind, existing.currency, existing.return_window_days, existing.payment_term_days)
           IS DISTINCT FROM (kind, upper(currency), return_window_days, payment_term_days)
           OR existing.cash_refund_limit IS DISTINCT FROM cash_refund_limit THEN
            RAISE EXCEPTION 'channel "%" already exists with other settings', code USING ERRCODE = '23505',
                HINT = 'Change a channel with UPDATE customer_account.channel.';
        END IF;
    END IF;
END $$;

CREATE FUNCTION @extschema@.add_payment_method(code text, grants_credit boolean,
        channel_kinds @extschema@.channel_kind[] DEFAULT NULL, settlement text DEFAULT NULL,
        min_amount numeric DEFAULT NULL, max_amount numeric DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    s text := coalesce(settlement, CASE WHEN grants_credit THEN 'credit' ELSE 'immediate' END);
    existing payment_method;
BEGIN
    IF code IS NULL OR btrim(code) = '' OR grants_credit IS NULL THEN
        RAISE EXCEPTION 'a payment method needs a code and grants_credit' USING ERRCODE = '22023';
    END IF;
    IF s NOT IN ('credit', 'prepaid', 'immediate') OR (s = 'credit') <> grants_credit THEN
        RAISE EXCEPTION 'settlement "%" does not fit grants_credit = %', s, grants_credit USING ERRCODE = '22023',
            HINT = 'Credit-granting methods settle as credit; others as prepaid or immediate.';
    END IF;
    INSERT INTO payment_method AS m (code, grants_credit, channel_kinds, settlement, min_amount, max_amount)
    VALUES (code, grants_credit, channel_kinds, s, min_amount, max_amount)
    ON CONFLICT ON CONSTRAINT payment_method_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO existing FROM payment_method m WHERE m.code = add_payment_method.code;
        IF (existing.grants_credit, existing.channel_kinds, existing.settlement)
           IS DISTINCT FROM (grants_credit, channel_kinds, s) THEN
            RAISE EXCEPTION 'payment method "%" already exists with other settings', code USING ERRCODE = '23505',
                HINT = 'Change a method with UPDATE customer_account.payment_method.';
        END IF;
    END IF;
END $$;

-- identities are stored normalised, so that a lookup finds them however typed
CREATE FUNCTION @extschema@.normalize_identity(kind text, value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = @extschema@, pg_temp AS $$
BEGIN
    IF value IS NULL THEN
        RETURN NULL;
    END IF;
    CASE kind
        WHEN 'email' THEN
            IF btrim(value) !~ '^[^@\s]+@[^@\s]+$' THEN
                RAISE EXCEPTION 'invalid email address "%"', value USING ERRCODE = '22023';
            END IF;
            RETURN lower(btrim(value));
        WHEN 'phone' THEN
            IF regexp_replace(value, '[^0-9]', '', 'g') !~ '^[0-9]{5,}$' THEN
                RAISE EXCEPTION 'invalid phone number "%"', value USING ERRCODE = '22023';
            END IF;
            RETURN CASE WHEN btrim(value) LIKE '+%' THEN '+' ELSE '' END || regexp_replace(value, '[^0-9]', '', 'g');
        WHEN 'loyalty_card' THEN RETURN upper(regexp_replace(value, '[^A-Za-z0-9]', '', 'g'));
        WHEN 'marketplace' THEN
            IF btrim(value) !~ '^[^:\s]+:.+$' THEN
                RAISE EXCEPTION 'invalid marketplace identity "%"', value USING ERRCODE = '22023',
                    HINT = 'Write the marketplace and its buyer id, such as ''ebay:buyer77''.';
            END IF;
            RETURN lower(btrim(value));
        WHEN 'external' THEN RETURN btrim(value);
        ELSE
            RAISE EXCEPTION 'unknown identity kind "%"', kind USING ERRCODE = '22023',
                HINT = 'Kinds are email, phone, loyalty_card, marketplace and external.';
    END CASE;
END $$;

CREATE FUNCTION @extschema@.register_customer(full_name text, email text DEFAULT NULL, phone text DEFAULT NULL,
        language text DEFAULT 'de', customer_since timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    e text := normalize_identity('email', email);
    p text := normalize_identity('phone', phone);
    other bigint;
    id bigint;
BEGIN
    IF full_name IS NULL OR btrim(full_name) = '' THEN
        RAISE EXCEPTION 'a customer needs a name' USING ERRCODE = '22023';
    END IF;
    IF language IS NULL OR language !~ '^[a-z]{2}$' THEN
        RAISE EXCEPTION 'invalid language "%"', language USING ERRCODE = '22023',
            HINT = 'Use a two-letter ISO 639-1 code such as de or en.';
    END IF;
    IF e IS NOT NULL THEN
        SELECT i.customer_id INTO other FROM customer_identity i WHERE i.kind = 'email' AND i.value = e;
        IF FOUND THEN
            RAISE EXCEPTION 'email "%" already belongs to customer %', e, other USING ERRCODE = '23505',
                HINT = 'Use that customer, or link_identity() another way to recognise them.';
        END IF;
    END IF;
    INSERT INTO customer (full_name, email, phone, language, customer_since)
    VALUES (btrim(full_name), e, p, language, coalesce(customer_since, now()))
    RETURNING customer.customer_id INTO id;
    IF e IS NOT NULL THEN
        INSERT INTO customer_identity (kind, value, customer_id) VALUES ('email', e, id);
    END IF;
    IF p IS NOT NULL THEN
        INSERT INTO customer_identity (kind, value, customer_id) VALUES ('phone', p, id)
        ON CONFLICT DO NOTHING;   -- a shared household phone stays with its first customer
    END IF;
    RETURN id;
END $$;

CREATE FUNCTION @extschema@.require_customer(customer_id bigint) RETURNS @extschema@.customer
LANGUAGE plpgsql STABLE SET search_path = @extschema@, pg_temp AS $$
DECLARE
    c customer;
BEGIN
    SELECT * INTO c FROM customer WHERE customer.customer_id = require_customer.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown customer %', customer_id USING ERRCODE = 'RA002';
    END IF;
    IF c.merged_into IS NOT NULL THEN
        RAISE EXCEPTION 'customer % was merged into customer %', customer_id, c.merged_into USING ERRCODE = 'RA002',
            HINT = format('Use the surviving customer %s.', c.merged_into);
    END IF;
    RETURN c;
END $$;

CREATE FUNCTION @extschema@.set_credit_limit(customer_id bigint, credit_limit @extschema@.currency_amount)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
BEGIN
    PERFORM require_customer(customer_id);
    IF credit_limit IS NOT NULL AND minor_units(credit_limit) < 0 THEN
        RAISE EXCEPTION 'credit limit % must not be negative', credit_limit USING ERRCODE = '22023';
    END IF;
    UPDATE customer c SET credit_limit = set_credit_limit.credit_limit WHERE c.customer_id = set_credit_limit.customer_id;
END $$;

CREATE FUNCTION @extschema@.link_identity(customer_id bigint, kind text, value text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    v text := normalize_identity(kind, value);
    other bigint;
BEGIN
    PERFORM require_customer(customer_id);
    IF v IS NULL OR v = '' THEN
        RAISE EXCEPTION 'identity value must not be empty' USING ERRCODE = '22023';
    END IF;
    INSERT INTO customer_identity AS i (kind, value, customer_id) VALUES (kind, v, customer_id)
    ON CONFLICT ON CONSTRAINT customer_identity_pkey DO NOTHING;
    IF NOT FOUND THEN
        SELECT i.customer_id INTO other FROM customer_identity i WHERE i.kind = link_identity.kind AND i.value = v;
        IF other <> customer_id THEN
            RAISE EXCEPTION '% "%" already belongs to customer %', kind, v, other USING ERRCODE = '23505',
                HINT = 'If both are the same person, merge_customers() makes one account of them.';
        END IF;
    END IF;
    IF kind = 'email' THEN
        UPDATE customer c SET email = coalesce(c.email, v) WHERE c.customer_id = link_identity.customer_id;
    END IF;
END $$;

CREATE FUNCTION @extschema@.find_customer(kind text, value text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    id bigint;
BEGIN
    SELECT i.customer_id INTO id FROM customer_identity i
    WHERE i.kind = find_customer.kind AND i.value = normalize_identity(find_customer.kind, find_customer.value);
    RETURN id;
END $$;

CREATE FUNCTION @extschema@.merge_customers(survivor bigint, duplicate bigint) RETURNS void
    AS 'MODULE_PATHNAME', 'merge_customers' LANGUAGE C STRICT SECURITY DEFINER SET search_path = @extschema@, pg_temp;

CREATE FUNCTION @extschema@.forget_customer(customer_id bigint) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
BEGIN
    PERFORM require_customer(customer_id);
    DELETE FROM customer_identity i WHERE i.customer_id = forget_customer.customer_id;
    UPDATE customer c SET full_name = NULL, email = NULL, phone = NULL, forgotten_at = now()
    WHERE c.customer_id = forget_customer.customer_id OR c.merged_into = forget_customer.customer_id;
END $$;

------------------------------------------------------------------------------
-- writing business events (thin wrappers over INSERT/UPDATE; the triggers book)
------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.place_order(order_no text, customer_id bigint, channel text, lines jsonb,
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
               AND ARRAY(SELECT (l.sku, l.qty, l.unit_price, l.returnable)::text FROM order_line l
                         WHERE l.order_no = existing.order_no ORDER BY l.line_no)
                 = ARRAY(SELECT (j ->> 'sku', (j ->> 'qty')::integer, (j ->> 'unit_price')::currency_amount,
                                 coalesce((j ->> 'returnable')::boolean, true))::text
                         FROM jsonb_array_elements(lines) WITH ORDINALITY AS x(j, n) ORDER BY n)
        INTO same;
        IF NOT same THEN
            RAISE EXCEPTION 'order "%" already exists with different content', order_no USING ERRCODE = '23505',
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

CREATE FUNCTION @extschema@.line_error(n bigint, what text) RETURNS boolean
LANGUAGE plpgsql SET search_path = @extschema@, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'order line % %', n, what USING ERRCODE = '22023',
        HINT = 'Write lines like [{"sku":"A1","qty":2,"unit_price":"19.99 EUR","returnable":true}].';
END $$;

CREATE FUNCTION @extschema@.mark_delivered(order_no text, delivered_at timestamptz DEFAULT now())
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    o orders;
BEGIN
    SELECT * INTO o FROM orders x WHERE x.order_no = mark_delivered.order_no FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown order "%"', order_no USING ERRCODE = 'RA002';
    END IF;
    IF o.delivered_at IS NOT NULL THEN
        RETURN;   -- delivered once; a retry changes nothing
    END IF;
    IF delivered_at < o.placed_at THEN
        RAISE EXCEPTION 'order "%" cannot be delivered at % before it was placed at %', order_no, delivered_at, o.placed_at
            USING ERRCODE = '22023';
    END IF;
    UPDATE orders x SET delivered_at = coalesce(mark_delivered.delivered_at, now()) WHERE x.order_no = mark_delivered.order_no;
END $$;

CREATE FUNCTION @extschema@.cancel_order(order_no text, cancelled_at timestamptz DEFAULT now())
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    o orders;
BEGIN
    SELECT * INTO o FROM orders x WHERE x.order_no = cancel_order.order_no FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown order "%"', order_no USING ERRCODE = 'RA002';
    END IF;
    IF o.cancelled_at IS NOT NULL THEN
        RETURN;   -- cancelled once; a retry changes nothing
    END IF;
    UPDATE orders x SET cancelled_at = greatest(coalesce(cancel_order.cancelled_at, now()), o.placed_at)
    WHERE x.order_no = cancel_order.order_no;
END $$;

CREATE FUNCTION @extschema@.record_payment(payment_ref text, customer_id bigint, amount @extschema@.currency_amount,
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
           IS DISTINCT FROM (customer_id, amount, method, channel, order_no) THEN
            RAISE EXCEPTION 'payment "%" already exists with different content', payment_ref USING ERRCODE = '23505',
                HINT = 'A payment reference books once.';
        END IF;
    END IF;
END $$;

------------------------------------------------------------------------------
-- reading the account
------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.balance(customer_id bigint, as_of timestamptz DEFAULT now(),
        OUT customer_id bigint, OUT currency text, OUT balance @extschema@.currency_amount,
        OUT open_amount @extschema@.currency_amount, OUT overdue_amount @extschema@.currency_amount,
        OUT oldest_overdue_days integer, OUT store_credit @extschema@.currency_amount,
        OUT lifetime_revenue @extschema@.currency_amount, OUT revenue_12m @extschema@.currency_amount,
        OUT orders_12m integer, OUT returned_value_12m @extschema@.currency_amount, OUT return_rate numeric,
        OUT last_purchase_at timestamptz, OUT last_purchase_by_kind jsonb, OUT dunning_level integer,
        OUT value_segment text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'account_balance' LANGUAGE C STABLE STRICT ROWS 2;
COMMENT ON FUNCTION @extschema@.balance(bigint, timestamptz) IS
    'the account at a glance, one row per currency; reads by direct index scans (EXECUTE is the authorisation)';

CREATE FUNCTION @extschema@.payment_options(customer_id bigint, order_total @extschema@.currency_amount, channel text,
        OUT method text, OUT allowed boolean, OUT reason_code text, OUT reason text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'payment_options' LANGUAGE C STABLE STRICT ROWS 10;
COMMENT ON FUNCTION @extschema@.payment_options(bigint, @extschema@.currency_amount, text) IS
    'every payment method with allowed, reason code and sentence; reads by direct index scans (EXECUTE is the authorisation)';

CREATE FUNCTION @extschema@.reason_text(code text, language text DEFAULT 'en') RETURNS text
    AS 'MODULE_PATHNAME', 'reason_text_sql' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- refresh the customer-base averages that value_segment compares against
-- (a batch job, e.g. nightly; no write of the posting path touches them)
CREATE FUNCTION @extschema@.refresh_value_segments(as_of timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    n integer;
    to_month date := date_trunc('month', as_of AT TIME ZONE 'UTC')::date;
BEGIN
    DELETE FROM segment_stats;
    INSERT INTO segment_stats (currency, customers, avg_revenue_12m, refreshed_at)
    SELECT currency, count(*), avg(rev), now()
    FROM (SELECT customer_id, currency, sum(revenue) AS rev FROM account_period
          WHERE period > (to_month - interval '12 months')::date AND period <= to_month
          GROUP BY customer_id, currency) r
    WHERE rev > 0
    GROUP BY currency;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- verify_balances(): every figure of every account state row recomputed from
-- the ledger, and the open items against the state; returns the differences
CREATE FUNCTION @extschema@.verify_balances(OUT customer_id bigint, OUT currency text,
        OUT stored @extschema@.currency_amount, OUT recomputed @extschema@.currency_amount, OUT figure text)
RETURNS SETOF record LANGUAGE sql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp
    SET work_mem = '256MB'     -- one hash group per account: keep the rebuild in memory
AS $$
    WITH led AS (
        SELECT l.customer_id, l.currency, sum(minor_units(l.amount))::bigint AS balance,
               sum(l.open_delta)::bigint AS open, sum(l.credit_delta)::bigint AS credit,
               sum(l.revenue_delta)::bigint AS revenue, sum(l.returned_delta)::bigint AS returned,
               sum(l.order_delta)::bigint AS orders
        FROM ledger l GROUP BY l.customer_id, l.currency
    ), items AS (
        SELECT i.customer_id, i.currency, sum(i.open)::bigint AS open
        FROM open_item i WHERE i.settled_at IS NULL GROUP BY i.customer_id, i.currency
    ), joined AS (
        SELECT coalesce(s.customer_id, led.customer_id) AS customer_id, coalesce(s.currency, led.currency) AS currency,
               s.balance AS s_balance, s.open_amount AS s_open, s.store_credit AS s_credit,
               s.lifetime_revenue AS s_revenue, s.lifetime_returned AS s_returned, s.orders_count AS s_orders,
               led.balance, led.open, led.credit, led.revenue, led.returned, led.orders
        FROM account_state s FULL JOIN led ON led.customer_id = s.customer_id AND led.currency = s.currency
    )
    SELECT j.customer_id, j.currency,
           currency_amount_from_minor_units(coalesce(f.stored, 0), j.currency),
           currency_amount_from_minor_units(coalesce(f.recomputed, 0), j.currency), f.figure
    FROM joined j
    LEFT JOIN items it ON it.customer_id = j.customer_id AND it.currency = j.currency
    CROSS JOIN LATERAL (VALUES
        ('balance', j.s_balance, j.balance),
        ('open_amount', j.s_open, j.open),
        ('store_credit', j.s_credit, j.credit),
        ('lifetime_revenue', j.s_revenue, j.revenue),
        ('lifetime_returned', j.s_returned, j.returned),
        ('orders', j.s_orders, j.orders),
        ('open_items', j.s_open, coalesce(it.open, 0)),
        ('balance = open - credit', j.s_balance, j.s_open - j.s_credit)
    ) AS f(figure, stored, recomputed)
    WHERE coalesce(f.stored, 0) <> coalesce(f.recomputed, 0)
    ORDER BY 1, 2, 5
$$;

------------------------------------------------------------------------------
-- receivables: disputes, aging, dunning, the outbox
------------------------------------------------------------------------------
-- the dunning ladder: level N after N-1 and its delay; fee in major units
CREATE TABLE @extschema@.dunning_level (
    level        integer PRIMARY KEY CHECK (level > 0),
    days_overdue integer NOT NULL CHECK (days_overdue >= 0),
    delay_days   integer NOT NULL CHECK (delay_days >= 0),
    fee          numeric NOT NULL DEFAULT 0 CHECK (fee >= 0),
    action       text NOT NULL CHECK (action <> ''),
    shipped      boolean NOT NULL DEFAULT false
);
INSERT INTO @extschema@.dunning_level (level, days_overdue, delay_days, fee, action, shipped) VALUES
    (1, 7, 0, 0, 'reminder_1', true),
    (2, 21, 14, 5, 'reminder_2', true),
    (3, 35, 14, 10, 'final_notice', true),
    (4, 60, 14, 0, 'collection', true);

CREATE TABLE @extschema@.dunning_run_log (
    run_date date PRIMARY KEY,
    run_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE @extschema@.dunning_notice (
    customer_id    bigint NOT NULL,
    currency       text COLLATE "C" NOT NULL,
    level          integer NOT NULL,
    cycle          integer NOT NULL,
    run_date       date NOT NULL,
    overdue_amount bigint NOT NULL,
    fee            bigint NOT NULL,
    action         text NOT NULL,
    PRIMARY KEY (customer_id, currency, level, cycle)
);
CREATE INDEX dunning_notice_run ON @extschema@.dunning_notice (run_date);

-- events for mailers and channel adapters: read, act, acknowledge
CREATE TABLE @extschema@.outbox (
    event_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     bigint NOT NULL,
    topic           text NOT NULL,
    channel         text,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text
);
CREATE INDEX outbox_pending ON @extschema@.outbox (topic, event_id) WHERE acknowledged_at IS NULL;
COMMENT ON TABLE @extschema@.outbox IS
    'events (dunning notices, later return status) announced on NOTIFY customer_account_outbox; acknowledge with ack_outbox()';

CREATE FUNCTION @extschema@.dunning_run(as_of date DEFAULT current_date,
        OUT customer_id bigint, OUT currency text, OUT level integer,
        OUT overdue_amount @extschema@.currency_amount, OUT fee @extschema@.currency_amount, OUT action text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'dunning_run' LANGUAGE C VOLATILE STRICT SECURITY DEFINER
    SET search_path = @extschema@, pg_temp;

CREATE FUNCTION @extschema@.account_advice(customer_id bigint, OUT advice text, OUT reason text)
RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'account_advice' LANGUAGE C STABLE STRICT SECURITY DEFINER
    SET search_path = @extschema@, pg_temp ROWS 4;

-- mark the open items of an order as disputed (dunning skips them) or not
CREATE FUNCTION @extschema@.set_disputed(order_no text, disputed boolean DEFAULT true) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    PERFORM 1 FROM orders o WHERE o.order_no = set_disputed.order_no;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown order "%"', order_no USING ERRCODE = 'RA002';
    END IF;
    UPDATE open_item i SET disputed = coalesce(set_disputed.disputed, true)
    WHERE i.order_no = set_disputed.order_no AND i.settled_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- aging_report(as_of): receivables by days past due, per currency, from the
-- open items (a range query); a past date also counts what was paid since
CREATE FUNCTION @extschema@.aging_report(as_of date DEFAULT current_date,
        OUT currency text, OUT bucket text, OUT customers bigint, OUT amount @extschema@.currency_amount)
RETURNS SETOF record LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
DECLARE
    cutoff timestamptz := (as_of + 1)::timestamp AT TIME ZONE 'UTC';   -- end of the day, UTC
BEGIN
    RETURN QUERY
    WITH items AS (
        SELECT i.customer_id, i.currency, i.open, i.due_at
        FROM open_item i
        WHERE i.settled_at IS NULL AND i.kind <> 'prepayment' AND i.created_at < cutoff
          AND cutoff > now()                     -- today or later: what is open now
        UNION ALL
        SELECT i.customer_id, i.currency,
               i.amount - coalesce((SELECT sum(a.amount) FROM item_application a
                                    WHERE a.item_id = i.item_id AND a.applied_at < cutoff), 0),
               i.due_at
        FROM open_item i
        WHERE cutoff <= now() AND i.kind <> 'prepayment' AND i.created_at < cutoff
          AND (i.settled_at IS NULL OR i.settled_at >= cutoff)
    ), bucketed AS (
        SELECT it.currency, it.customer_id, it.open,
               CASE WHEN d <= 0 THEN 'current' WHEN d <= 30 THEN '1-30' WHEN d <= 60 THEN '31-60'
                    WHEN d <= 90 THEN '61-90' ELSE '90+' END AS bucket
        FROM items it, LATERAL (SELECT as_of - (it.due_at AT TIME ZONE 'UTC')::date AS d) x
        WHERE it.open > 0
    )
    SELECT c.currency, b.name, count(DISTINCT bk.customer_id),
           currency_amount_from_minor_units(coalesce(sum(bk.open), 0)::bigint, c.currency)
    FROM (SELECT DISTINCT bucketed.currency FROM bucketed) c
    CROSS JOIN (VALUES (1, 'current'), (2, '1-30'), (3, '31-60'), (4, '61-90'), (5, '90+')) b(ord, name)
    LEFT JOIN bucketed bk ON bk.currency = c.currency AND bk.bucket = b.name
    GROUP BY c.currency, b.ord, b.name
    ORDER BY c.currency, b.ord;
END $$;

-- the outbox: pending events (locked for this reader, skipping others'), acknowledge
CREATE FUNCTION @extschema@.outbox_pending(topic text DEFAULT NULL, max_rows integer DEFAULT 100)
RETURNS SETOF @extschema@.outbox LANGUAGE sql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
    SELECT * FROM outbox o
    WHERE o.acknowledged_at IS NULL AND (outbox_pending.topic IS NULL OR o.topic = outbox_pending.topic)
    ORDER BY o.event_id LIMIT max_rows FOR UPDATE SKIP LOCKED
$$;

CREATE FUNCTION @extschema@.ack_outbox(event_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = @extschema@, pg_temp AS $$
BEGIN
    UPDATE outbox o SET acknowledged_at = now(), acknowledged_by = session_user
    WHERE o.event_id = ack_outbox.event_id AND o.acknowledged_at IS NULL;
    IF FOUND THEN
        RETURN true;
    END IF;
    PERFORM 1 FROM outbox o WHERE o.event_id = ack_outbox.event_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown outbox event %', event_id USING ERRCODE = 'RA002';
    END IF;
    RETURN false;   -- acknowledged before: a retry changes nothing
END $$;

------------------------------------------------------------------------------
-- every backend caches the configuration tables; a write to one of them
-- sends a relcache invalidation so the next call everywhere reads it anew
------------------------------------------------------------------------------
CREATE FUNCTION @extschema@.config_changed() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.policy
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.segment_stats
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.credit_policy
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.payment_method
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();
CREATE TRIGGER config_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON @extschema@.channel
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.config_changed();

------------------------------------------------------------------------------
-- pg_dump keeps the data of every table; rows the extension ships are
-- recreated by CREATE EXTENSION, so only the DBA's rows are dumped
------------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('@extschema@.channel', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.payment_method', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.credit_policy', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.policy', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.dunning_level', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customer', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.customer_identity', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.orders', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.order_line', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.payment', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.ledger', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.open_item', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.item_application', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.account_state', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.account_period', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.segment_stats', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.dunning_run_log', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.dunning_notice', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.outbox', '');

------------------------------------------------------------------------------
-- privileges: nothing of the account is open to PUBLIC.  The money type, its
-- operators and pure helpers stay executable by everyone; every function that
-- reads or changes an account is granted by the DBA to channel roles (see
-- README, "Roles and grants").
------------------------------------------------------------------------------
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_depend d ON d.objid = p.oid AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
             AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_account'
        WHERE p.prokind = 'f'
          AND p.proname NOT LIKE 'currency\_amount%' AND p.proname NOT LIKE '%\_mul\_currency\_amount'
          AND p.proname NOT IN ('currency_of', 'amount_of', 'minor_units', 'currencies', 'abs',
                                'is_currency', 'reason_text')
    LOOP
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END $$;
