-- pgTAP: the catalog and security side of the account: every function's
-- volatility, strictness, security and pinned search_path; nothing open to
-- PUBLIC that a channel role should not have; triggers and config dumps.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET search_path = customer_account, public;
SELECT plan(46);

-- the contract's functions exist with their argument order
SELECT has_function('customer_account', 'add_channel', ARRAY['text', 'customer_account.channel_kind', 'text', 'integer', 'customer_account.currency_amount', 'integer']);
SELECT has_function('customer_account', 'add_payment_method', ARRAY['text', 'boolean', 'customer_account.channel_kind[]', 'text', 'numeric', 'numeric']);
SELECT has_function('customer_account', 'register_customer', ARRAY['text', 'text', 'text', 'text', 'timestamp with time zone']);
SELECT has_function('customer_account', 'set_credit_limit', ARRAY['bigint', 'customer_account.currency_amount']);
SELECT has_function('customer_account', 'link_identity', ARRAY['bigint', 'text', 'text']);
SELECT has_function('customer_account', 'find_customer', ARRAY['text', 'text']);
SELECT has_function('customer_account', 'merge_customers', ARRAY['bigint', 'bigint']);
SELECT has_function('customer_account', 'forget_customer', ARRAY['bigint']);
SELECT has_function('customer_account', 'place_order', ARRAY['text', 'bigint', 'text', 'jsonb', 'text', 'timestamp with time zone']);
SELECT has_function('customer_account', 'mark_delivered', ARRAY['text', 'timestamp with time zone']);
SELECT has_function('customer_account', 'cancel_order', ARRAY['text', 'timestamp with time zone']);
SELECT has_function('customer_account', 'record_payment', ARRAY['text', 'bigint', 'customer_account.currency_amount', 'text', 'text', 'text', 'timestamp with time zone']);
SELECT has_function('customer_account', 'balance', ARRAY['bigint', 'timestamp with time zone']);
SELECT has_function('customer_account', 'payment_options', ARRAY['bigint', 'customer_account.currency_amount', 'text']);
SELECT has_function('customer_account', 'account_advice', ARRAY['bigint']);
SELECT has_function('customer_account', 'aging_report', ARRAY['date']);
SELECT has_function('customer_account', 'dunning_run', ARRAY['date']);
SELECT has_function('customer_account', 'verify_balances', ARRAY[]::text[]);

-- result columns of the contract, in order
SELECT is((SELECT proargnames[3:] FROM pg_proc WHERE oid = 'customer_account.balance(bigint, timestamptz)'::regprocedure),
    ARRAY['customer_id', 'currency', 'balance', 'open_amount', 'overdue_amount', 'oldest_overdue_days', 'store_credit',
          'lifetime_revenue', 'revenue_12m', 'orders_12m', 'returned_value_12m', 'return_rate', 'last_purchase_at',
          'last_purchase_by_kind', 'dunning_level', 'value_segment', 'loyalty_tier'],
    'balance() returns the contract''s columns in order');
SELECT is((SELECT proargnames[4:] FROM pg_proc WHERE oid = 'customer_account.payment_options(bigint, customer_account.currency_amount, text)'::regprocedure),
    ARRAY['method', 'allowed', 'reason_code', 'reason'], 'payment_options() columns');
SELECT is((SELECT proargnames[2:] FROM pg_proc WHERE oid = 'customer_account.dunning_run(date)'::regprocedure),
    ARRAY['customer_id', 'currency', 'level', 'overdue_amount', 'fee', 'action'], 'dunning_run() columns');
SELECT is((SELECT proargnames[2:] FROM pg_proc WHERE oid = 'customer_account.aging_report(date)'::regprocedure),
    ARRAY['currency', 'bucket', 'customers', 'amount'], 'aging_report() columns');

-- enums of the contract
SELECT enum_has_labels('customer_account', 'channel_kind', ARRAY['webshop', 'store', 'marketplace', 'callcenter', 'app']);
SELECT enum_has_labels('customer_account', 'return_action', ARRAY['refund_cash', 'refund_original_payment',
    'reduce_open_invoice', 'store_credit', 'exchange_only', 'refund_via_marketplace', 'reject']);

-- volatility: reads are STABLE, writes VOLATILE
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'customer_account.balance(bigint, timestamptz)'::regprocedure), 's'::"char", 'balance is STABLE');
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'customer_account.payment_options(bigint, customer_account.currency_amount, text)'::regprocedure), 's'::"char", 'payment_options is STABLE');
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'customer_account.place_order(text, bigint, text, jsonb, text, timestamptz)'::regprocedure), 'v'::"char", 'place_order is VOLATILE');

-- every SECURITY DEFINER function pins its search_path
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_account'
    WHERE p.prosecdef AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')$$,
    'every SECURITY DEFINER function has SET search_path');
-- every function that changes data is SECURITY DEFINER
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_account'
    WHERE p.provolatile = 'v' AND NOT p.prosecdef AND p.prorettype <> 'trigger'::regtype
      AND p.proname NOT IN ('line_error')$$,
    'every data-changing function is SECURITY DEFINER');
-- nothing of the account is executable by PUBLIC
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_account'
    WHERE p.prokind = 'f' AND has_function_privilege('public', p.oid, 'EXECUTE')
      AND p.proname NOT LIKE 'currency\_amount%' AND p.proname NOT LIKE '%\_mul\_currency\_amount'
      AND p.proname NOT IN ('currency_of', 'amount_of', 'minor_units', 'currencies', 'abs', 'is_currency', 'reason_text')$$,
    'account functions are not granted to PUBLIC');
SELECT ok(has_function_privilege('public', 'customer_account.currency_amount_in(cstring)', 'EXECUTE'),
    'the money type stays usable by everyone');
-- tables are not readable or writable by PUBLIC
SELECT is_empty($$
    SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'customer_account'::regnamespace AND c.relkind = 'r'
      AND (has_table_privilege('public', c.oid, 'SELECT') OR has_table_privilege('public', c.oid, 'INSERT'))$$,
    'no table is open to PUBLIC');

-- the posting triggers are in place
SELECT has_trigger('customer_account', 'orders', 'orders_post', 'orders feed the posting core');
SELECT has_trigger('customer_account', 'order_line', 'order_line_check', 'order lines are checked');
SELECT has_trigger('customer_account', 'payment', 'payment_post', 'payments feed the posting core');
SELECT has_trigger('customer_account', 'ledger', 'ledger_append_only', 'the ledger is append-only');
-- pg_dump keeps every table's data
SELECT is((SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = 'customer_account'::regnamespace AND c.relkind = 'r'
             AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'customer_account')::oid[])),
          0, 'every table is registered with pg_extension_config_dump');

-- errors carry their SQLSTATE
SELECT throws_ok($$SELECT * FROM customer_account.balance(424242)$$, 'RA002', NULL, 'unknown customer: RA002');
SELECT throws_ok($$SELECT customer_account.place_order('X', 424242, 'nowhere', '[]', 'invoice')$$, 'RA002', NULL, 'unknown customer on order: RA002');

-- a channel role with EXECUTE on the documented functions and nothing else
CREATE ROLE ca_test_channel;
GRANT USAGE ON SCHEMA customer_account TO ca_test_channel;
GRANT EXECUTE ON FUNCTION customer_account.place_order(text, bigint, text, jsonb, text, timestamptz),
    customer_account.balance(bigint, timestamptz),
    customer_account.payment_options(bigint, customer_account.currency_amount, text) TO ca_test_channel;
SELECT customer_account.add_channel('tap-web', 'webshop', 'EUR');
SELECT customer_account.register_customer('Tap Tester', 'tap@example.com', NULL, 'en', now() - interval '1 year') AS tap_id \gset
SET ROLE ca_test_channel;
SELECT lives_ok(format($$SELECT customer_account.place_order('TAP-1', %s, 'tap-web', '[{"sku":"A","qty":1,"unit_price":"9.99 EUR"}]', 'credit_card')$$, :tap_id),
    'a channel role books an order through place_order()');
SELECT is((SELECT customer_account.minor_units(lifetime_revenue) FROM customer_account.balance(:tap_id)), 999::bigint,
    'a channel role reads balance() without rights on the tables');
SELECT is((SELECT count(*)::int FROM customer_account.payment_options(:tap_id, '10.00 EUR', 'tap-web')), 10,
    'a channel role reads payment_options()');
SELECT throws_ok($$SELECT count(*) FROM customer_account.ledger$$, '42501', NULL, 'the ledger is not readable by a channel role');
SELECT throws_ok($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('X', 1, 'tap-web', 'cash', '1 EUR')$$,
    '42501', NULL, 'no plain INSERT without a grant');
SELECT throws_ok($$SELECT customer_account.record_payment('P', 1, '1.00 EUR', 'cash', 'tap-web')$$, '42501', NULL,
    'functions not granted cannot be called');
SELECT throws_ok($$SELECT customer_account.merge_customers(1, 2)$$, '42501', NULL, 'merge is not for channel roles');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
