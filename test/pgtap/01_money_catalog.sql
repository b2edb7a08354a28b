-- pgTAP: the catalog side of currency_amount: type, operators, opclasses,
-- aggregates, and the volatility / strictness / parallel labels.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET search_path = customer_account, public;
SELECT plan(33);

SELECT has_type('customer_account', 'currency_amount', 'type currency_amount exists');
SELECT is((SELECT typlen FROM pg_type WHERE oid = 'customer_account.currency_amount'::regtype), 16::smallint,
          'fixed length 16 bytes');
SELECT is((SELECT typalign FROM pg_type WHERE oid = 'customer_account.currency_amount'::regtype), 'd'::"char",
          'double alignment for the int64');
SELECT isnt((SELECT typsend FROM pg_type WHERE oid = 'customer_account.currency_amount'::regtype), 0::regproc,
            'binary send exists');
SELECT isnt((SELECT typreceive FROM pg_type WHERE oid = 'customer_account.currency_amount'::regtype), 0::regproc,
            'binary receive exists');

SELECT ok(to_regoperator('customer_account.+(customer_account.currency_amount,customer_account.currency_amount)') IS NOT NULL, '+ exists');
SELECT ok(to_regoperator('customer_account.-(customer_account.currency_amount,customer_account.currency_amount)') IS NOT NULL, '- exists');
SELECT ok(to_regoperator('customer_account.-(NONE,customer_account.currency_amount)') IS NOT NULL, 'unary - exists');
SELECT ok(to_regoperator('customer_account.*(customer_account.currency_amount,numeric)') IS NOT NULL, '* numeric exists');
SELECT ok(to_regoperator('customer_account.*(customer_account.currency_amount,integer)') IS NOT NULL, '* integer exists');
SELECT ok(to_regoperator('customer_account./(customer_account.currency_amount,bigint)') IS NOT NULL, '/ bigint exists');
SELECT ok(to_regoperator('customer_account./(customer_account.currency_amount,numeric)') IS NOT NULL, '/ numeric exists');
SELECT bag_eq(
    $$SELECT oprname::text FROM pg_operator
      WHERE oprleft = 'customer_account.currency_amount'::regtype
        AND oprright = 'customer_account.currency_amount'::regtype AND oprresult = 'bool'::regtype$$,
    ARRAY['=', '<>', '<', '<=', '>', '>='],
    'all six comparison operators exist');
SELECT ok((SELECT oprcanhash AND oprcanmerge FROM pg_operator
           WHERE oprname = '=' AND oprleft = 'customer_account.currency_amount'::regtype),
          '= supports hash and merge joins');

SELECT has_opclass('customer_account', 'currency_amount_ops', 'btree opclass');
SELECT has_opclass('customer_account', 'currency_amount_hash_ops', 'hash opclass');
SELECT is((SELECT count(*)::int FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
           WHERE c.opcintype = 'customer_account.currency_amount'::regtype AND c.opcdefault),
          2, 'both opclasses are the defaults');
SELECT is((SELECT count(*)::int FROM pg_amop o JOIN pg_opclass c ON c.opcfamily = o.amopfamily
           WHERE c.opcname = 'currency_amount_ops'), 5, 'btree opclass has five strategies');
SELECT is((SELECT count(*)::int FROM pg_amproc p JOIN pg_opclass c ON c.opcfamily = p.amprocfamily
           WHERE c.opcname = 'currency_amount_hash_ops'), 2, 'hash opclass has standard and extended hash');

SELECT has_function('customer_account', 'currency_amount', ARRAY['numeric', 'text']);
SELECT has_function('customer_account', 'currency_of', ARRAY['customer_account.currency_amount']);
SELECT has_function('customer_account', 'amount_of', ARRAY['customer_account.currency_amount']);
SELECT has_function('customer_account', 'minor_units', ARRAY['customer_account.currency_amount']);

SELECT ok((SELECT prokind = 'a' FROM pg_proc WHERE oid = to_regprocedure('customer_account.sum(customer_account.currency_amount)')), 'sum is an aggregate');
SELECT ok((SELECT prokind = 'a' FROM pg_proc WHERE oid = to_regprocedure('customer_account.min(customer_account.currency_amount)')), 'min is an aggregate');
SELECT ok((SELECT prokind = 'a' FROM pg_proc WHERE oid = to_regprocedure('customer_account.max(customer_account.currency_amount)')), 'max is an aggregate');
SELECT is((SELECT aggcombinefn::text <> '-' AND aggserialfn::text <> '-' AND aggdeserialfn::text <> '-'
           FROM pg_aggregate WHERE aggfnoid = 'customer_account.sum(customer_account.currency_amount)'::regprocedure),
          true, 'sum has combine, serial and deserial functions');
SELECT is((SELECT count(*)::int FROM pg_aggregate
           WHERE aggfnoid IN ('customer_account.min(customer_account.currency_amount)'::regprocedure,
                              'customer_account.max(customer_account.currency_amount)'::regprocedure)
             AND aggcombinefn::text <> '-' AND aggsortop = 0), 2,
          'min and max combine, and have no sort operator (an index would answer mixed currencies)');

-- every function of the type: immutable, parallel safe, and strict except the
-- aggregate support that must see NULL states
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_account'
    WHERE (p.proname LIKE 'currency_amount%' OR p.proname IN ('currency_of', 'amount_of', 'minor_units', 'abs', 'currencies')
           OR p.proname LIKE '%_mul_currency_amount')
      AND (p.provolatile <> 'i' OR p.proparallel <> 's')$$,
    'money functions are IMMUTABLE PARALLEL SAFE');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_account'
    WHERE (p.proname LIKE 'currency_amount%' OR p.proname IN ('currency_of', 'amount_of', 'minor_units', 'abs'))
      AND p.prokind = 'f' AND NOT p.proisstrict
      AND p.proname NOT IN ('currency_amount_sum_accum', 'currency_amount_sum_combine', 'currency_amount_sum_final')$$,
    'money functions are STRICT');
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'customer_account'
    WHERE p.proname IN ('sum', 'min', 'max') AND p.proparallel <> 's'$$,
    'aggregates are PARALLEL SAFE');

SELECT throws_ok($$SELECT '1 EUR'::customer_account.currency_amount + '1 USD'$$, '22023', NULL, 'mixed currencies: 22023');
SELECT throws_ok($$SELECT '1.999 EUR'::customer_account.currency_amount$$, '22P02', NULL, 'too many decimals: 22P02');

SELECT * FROM finish();
ROLLBACK;
