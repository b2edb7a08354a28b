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



