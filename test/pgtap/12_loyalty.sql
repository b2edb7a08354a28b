-- pgTAP: the loyalty contract's catalog side (functions, argument order,
-- result columns, volatility, security), the triggers and config dumps,
-- a channel role that reads and redeems points without rights on the
-- tables, the SQLSTATEs of refusals, and the configuration cache noticing
-- an edit inside the same transaction.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET search_path = customer_account, public;
SELECT plan(45);

-- the contract's functions, with their argument order
SELECT has_function('customer_account', 'loyalty_points', ARRAY['bigint', 'timestamp with time zone']);
SELECT has_function('customer_account', 'redeem_points', ARRAY['bigint', 'bigint', 'text']);
SELECT has_function('customer_account', 'loyalty_history', ARRAY['bigint']);
SELECT has_function('customer_account', 'expire_points', ARRAY['timestamp with time zone']);
SELECT has_function('customer_account', 'loyalty_liability', ARRAY['timestamp with time zone']);
SELECT has_function('customer_account', 'set_loyalty_terms', ARRAY['text', 'customer_account.currency_amount', 'integer', 'integer']);
SELECT has_function('customer_account', 'add_earn_rule', ARRAY['text', 'numeric', 'customer_account.channel_kind', 'text',
    'timestamp with time zone', 'timestamp with time zone']);
SELECT has_function('customer_account', 'add_points_multiplier', ARRAY['text', 'numeric', 'text', 'customer_account.channel_kind',
    'text', 'timestamp with time zone', 'timestamp with time zone']);
SELECT has_function('customer_account', 'add_loyalty_tier', ARRAY['text', 'text', 'customer_account.currency_amount']);
SELECT has_function('customer_account', 'add_reactivation_rule', ARRAY['text', 'customer_account.channel_kind', 'integer',
    'customer_account.channel_kind', 'integer', 'integer', 'customer_account.currency_amount', 'numeric',
    'customer_account.currency_amount', 'integer']);
SELECT has_function('customer_account', 'verify_loyalty', ARRAY[]::text[]);

-- argument names and result columns of the contract
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'customer_account.loyalty_points(bigint, timestamptz)'::regprocedure),
    ARRAY['customer_id', 'as_of', 'available', 'pending', 'expiring_next', 'expiring_at'], 'loyalty_points() columns');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'customer_account.redeem_points(bigint, bigint, text)'::regprocedure),
    ARRAY['customer_id', 'points', 'channel'], 'redeem_points() arguments');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'customer_account.loyalty_history(bigint)'::regprocedure),
    ARRAY['customer_id', 'at', 'kind', 'points', 'amount', 'order_no', 'reason_code', 'reason'], 'loyalty_history() columns');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'customer_account.loyalty_liability(timestamptz)'::regprocedure),
    ARRAY['as_of', 'currency', 'pending', 'available', 'expiring_30d', 'expiring_90d', 'value'], 'loyalty_liability() columns');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'customer_account.add_reactivation_rule(text, customer_account.channel_kind, integer, customer_account.channel_kind, integer, integer, customer_account.currency_amount, numeric, customer_account.currency_amount, integer)'::regprocedure),
    ARRAY['code', 'target_kind', 'absent_days', 'source_kind', 'min_purchases', 'within_days', 'credit', 'credit_percent',
          'max_credit', 'once_per_days'], 'add_reactivation_rule() arguments');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'customer_account.add_points_multiplier(text, numeric, text, customer_account.channel_kind, text, timestamptz, timestamptz)'::regprocedure),
    ARRAY['code', 'factor', 'tier', 'channel_kind', 'sku_pattern', 'valid_from', 'valid_to'], 'add_points_multiplier() arguments');
SELECT is((SELECT proargnames FROM pg_proc WHERE oid = 'customer_account.set_loyalty_terms(text, customer_account.currency_amount, integer, integer)'::regprocedure),
    ARRAY['currency', 'point_value', 'expiry_days', 'pending_days'], 'set_loyalty_terms() arguments');

-- reads are STABLE and need no owner rights; writes are SECURITY DEFINER
SELECT is((SELECT provolatile::text || prosecdef::text FROM pg_proc WHERE oid = 'customer_account.loyalty_points(bigint, timestamptz)'::regprocedure),
    'sfalse', 'loyalty_points is STABLE and not SECURITY DEFINER (direct reads)');
SELECT is((SELECT provolatile::text || prosecdef::text FROM pg_proc WHERE oid = 'customer_account.redeem_points(bigint, bigint, text)'::regprocedure),
    'vtrue', 'redeem_points is VOLATILE and SECURITY DEFINER');
SELECT is((SELECT provolatile::text FROM pg_proc WHERE oid = 'customer_account.loyalty_history(bigint)'::regprocedure), 's',
    'loyalty_history is STABLE');
SELECT is((SELECT provolatile::text FROM pg_proc WHERE oid = 'customer_account.expire_points(timestamptz)'::regprocedure), 'v',
    'expire_points is VOLATILE');

-- triggers: crediting, the append-only history, the configuration cache
SELECT has_trigger('customer_account', 'order_line', 'loyalty_lines_post', 'order lines are credited');
SELECT is((SELECT count(*)::int FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           WHERE t.tgname = 'config_changed' AND c.relname IN ('loyalty_terms', 'loyalty_earn_rule', 'loyalty_multiplier',
                                                              'loyalty_tier', 'loyalty_reactivation_rule')),
    5, 'every loyalty configuration table invalidates the cache');
SELECT has_trigger('customer_account', 'loyalty_entry', 'loyalty_append_only', 'the points ledger is append-only');
-- pg_dump keeps the loyalty tables and where their identities continue
SELECT is((SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = 'customer_account'::regnamespace
             AND c.relname LIKE 'loyalty%' AND c.relkind IN ('r', 'S')
             AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'customer_account')::oid[])),
          0, 'every loyalty table and sequence is registered with pg_extension_config_dump');

-- a programme, a customer with 100 available points
SELECT add_channel('tap-web', 'webshop', 'EUR');
SELECT add_channel('tap-ch', 'webshop', 'CHF');
SELECT set_loyalty_terms('EUR', '0.01 EUR', 730, 0);
SELECT add_earn_rule('tap-base', 1);
SELECT register_customer('Tap Loyal', 'tap-loyal@example.com', NULL, 'en', now() - interval '1 year') AS tap \gset
SELECT place_order('TAP-L1', :tap, 'tap-web', '[{"sku":"A","qty":1,"unit_price":"100.00 EUR"}]', 'credit_card',
                   now() - interval '10 days');
SELECT mark_delivered('TAP-L1', now() - interval '9 days');
SELECT is((SELECT available FROM loyalty_points(:tap)), 100::bigint, '100 points available');

-- refusals carry their SQLSTATE and change nothing
SELECT throws_ok(format('SELECT customer_account.redeem_points(%s, 0, %L)', :tap, 'tap-web'), '22023', NULL, 'zero points: 22023');
SELECT throws_ok(format('SELECT customer_account.redeem_points(%s, -1, %L)', :tap, 'tap-web'), '22023', NULL, 'negative points: 22023');
SELECT throws_ok(format('SELECT customer_account.redeem_points(%s, 101, %L)', :tap, 'tap-web'), 'RA001', NULL, 'too many points: RA001');
SELECT throws_like(format('SELECT customer_account.redeem_points(%s, 101, %L)', :tap, 'tap-web'), '%insufficient_points%',
    'the message names insufficient_points');
SELECT throws_like(format('SELECT customer_account.redeem_points(%s, 10, %L)', :tap, 'tap-ch'), '%no_loyalty_terms%',
    'a currency without terms: no_loyalty_terms');
SELECT throws_ok('SELECT customer_account.redeem_points(424242, 10, ''tap-web'')', 'RA002', NULL, 'unknown customer: RA002');
SELECT throws_ok('SELECT * FROM customer_account.loyalty_points(424242)', 'RA002', NULL, 'unknown customer reading: RA002');
SELECT is((SELECT available FROM loyalty_points(:tap)), 100::bigint, 'the refusals changed nothing');

-- an edit in this very transaction is seen by the next order (the cache is invalidated)
UPDATE loyalty_earn_rule SET points_per_unit = 3 WHERE code = 'tap-base';
SELECT place_order('TAP-L2', :tap, 'tap-web', '[{"sku":"A","qty":1,"unit_price":"10.00 EUR"}]', 'credit_card',
                   now() - interval '5 days');
SELECT is((SELECT points FROM loyalty_lot WHERE order_no = 'TAP-L2'), 30::bigint, 'the edited rate applies at once');

-- a channel role with EXECUTE on the documented functions and nothing else
CREATE ROLE ca_test_loyalty;
GRANT USAGE ON SCHEMA customer_account TO ca_test_loyalty;
GRANT EXECUTE ON FUNCTION customer_account.place_order(text, bigint, text, jsonb, text, timestamptz),
    customer_account.loyalty_points(bigint, timestamptz), customer_account.redeem_points(bigint, bigint, text),
    customer_account.loyalty_history(bigint), customer_account.balance(bigint, timestamptz) TO ca_test_loyalty;
SET ROLE ca_test_loyalty;
SELECT is((SELECT available FROM customer_account.loyalty_points(:tap)), 100::bigint,
    'a channel role reads the points without rights on the tables');
SELECT is(customer_account.redeem_points(:tap, 40, 'tap-web'), '0.40 EUR'::customer_account.currency_amount,
    'a channel role redeems');
SELECT is((SELECT count(*)::int FROM customer_account.loyalty_history(:tap)), 3, 'a channel role reads the history');
SELECT is((SELECT loyalty_tier FROM customer_account.balance(:tap)), NULL, 'no tier configured: NULL');
SELECT throws_ok('SELECT count(*) FROM customer_account.loyalty_lot', '42501', NULL, 'the lots are not readable by a channel role');
SELECT throws_ok('SELECT customer_account.expire_points()', '42501', NULL, 'expire_points is not for channel roles');
SELECT throws_ok(format('SELECT customer_account.loyalty_reverse_return(%s, %L, 1, 1)', :tap, 'TAP-L1'), '42501', NULL,
    'the returns hook is granted to no one');
SELECT throws_ok(format('SELECT customer_account.loyalty_reverse_return_sku(%s, %L, %L, 1)', :tap, 'TAP-L1', 'A'), '42501', NULL,
    'nor is the returns hook by SKU');
RESET ROLE;
SELECT is_empty('SELECT * FROM customer_account.verify_loyalty()', 'verify_loyalty() finds no difference');

SELECT * FROM finish();
ROLLBACK;
