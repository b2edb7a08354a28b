-- Everything a database of customer_account holds, as (key, value) rows:
-- every table of the extension's schema (row count and the md5 of its rows
-- in a fixed order), every sequence's position, balance() of every customer
-- not merged away as of :'as_of', and what verify_balances() finds.  Generic on purpose:
-- tables added later are compared without touching this file.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET extra_float_digits = 3;
CREATE FUNCTION pg_temp.fingerprint(as_of timestamptz) RETURNS TABLE (key text, value text)
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    v text;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel, c.relname, c.relkind
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'customer_account' AND c.relkind IN ('r', 'p', 'S')
        ORDER BY c.relname
    LOOP
        IF r.relkind = 'S' THEN
            EXECUTE format('SELECT last_value || '' '' || is_called FROM %s', r.rel) INTO v;
            key := 'sequence ' || r.relname;
        ELSE
            EXECUTE format('SELECT count(*) || '' '' || md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text COLLATE "C"), ''''))'
                           ' FROM %s t', r.rel) INTO v;
            key := 'table ' || r.relname;
        END IF;
        value := v;
        RETURN NEXT;
    END LOOP;
    FOR r IN SELECT c.customer_id FROM customer_account.customer c WHERE c.merged_into IS NULL ORDER BY 1 LOOP
        key := 'balance of customer ' || r.customer_id;
        SELECT coalesce(string_agg(b::text, ' | ' ORDER BY b.currency), '(none)') INTO value
        FROM customer_account.balance(r.customer_id, as_of) b;
        RETURN NEXT;
    END LOOP;
    key := 'verify_balances';
    SELECT count(*)::text INTO value FROM customer_account.verify_balances();
    RETURN NEXT;
    key := 'extversion';
    SELECT e.extversion INTO value FROM pg_extension e WHERE e.extname = 'customer_account';
    RETURN NEXT;
END $$;
COPY (SELECT :'side', key, value FROM pg_temp.fingerprint(:'as_of')) TO STDOUT;
