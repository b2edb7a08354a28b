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



------------------------------------------------------------------------------
-- section: input that must be refused (times, payments, retries, money)
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: verify_balances checks every cached figure; PUBLIC and the money type
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: returns
------------------------------------------------------------------------------



