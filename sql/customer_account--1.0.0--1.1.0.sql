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



------------------------------------------------------------------------------
-- section: verify_balances checks every cached figure; PUBLIC and the money type
------------------------------------------------------------------------------



------------------------------------------------------------------------------
-- section: returns
------------------------------------------------------------------------------



