-- pgTAP: verify_balances() rebuilds every figure the account state caches.
-- A small book is built through the posting path (orders on every kind of
-- settlement, a payment, a cancellation, a merge); then each cached figure is
-- tampered with, one at a time, and verify_balances() must name it.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET search_path = customer_account, public;
SET TimeZone = 'UTC';
SELECT plan(29);

SELECT add_channel('vb-web', 'webshop', 'EUR');
SELECT add_channel('vb-store', 'store', 'EUR');
SELECT add_channel('vb-ebay', 'marketplace', 'EUR');
SELECT register_customer('Vera Book', 'vera@example.com', NULL, 'en', now() - interval '2 years') AS vera \gset
SELECT register_customer('Vera Double', 'vera.b@example.com', NULL, 'en', now() - interval '2 years') AS dup \gset
SELECT place_order('VB-1', :vera, 'vb-web', '[{"sku":"A","qty":2,"unit_price":"10.00 EUR"}]', 'invoice', now() - interval '60 days');
SELECT place_order('VB-2', :vera, 'vb-store', '[{"sku":"B","qty":1,"unit_price":"5.00 EUR"}]', 'cash', now() - interval '40 days');
SELECT place_order('VB-3', :vera, 'vb-web', '[{"sku":"C","qty":1,"unit_price":"7.00 EUR"}]', 'prepayment', now() - interval '10 days');
SELECT record_payment('VB-P1', :vera, '7.00 EUR', 'bank_transfer', 'vb-web', 'VB-3', now() - interval '9 days');
SELECT place_order('VB-4', :vera, 'vb-web', '[{"sku":"D","qty":1,"unit_price":"3.00 EUR"}]', 'prepayment', now() - interval '5 days');
SELECT cancel_order('VB-4', now() - interval '4 days');
SELECT place_order('VB-5', :dup, 'vb-ebay', '[{"sku":"E","qty":1,"unit_price":"30.00 EUR"}]', 'marketplace', now() - interval '3 days');
SELECT place_order('VB-6', :dup, 'vb-web', '[{"sku":"F","qty":1,"unit_price":"12.00 EUR"}]', 'invoice', now() - interval '400 days');
SELECT merge_customers(:vera, :dup);
SELECT register_customer('Larry Late', 'larry@example.com', NULL, 'en', now() - interval '2 years') AS larry \gset
SELECT place_order('VB-7', :larry, 'vb-web', '[{"sku":"G","qty":1,"unit_price":"9.00 EUR"}]', 'invoice', now() - interval '30 days');

SELECT is_empty($$SELECT * FROM verify_balances()$$, 'the untouched books verify');

-- a duplicate in dunning merged into a clean account: the level follows its notices
SELECT register_customer('Dora Dunned', 'dora@example.com', NULL, 'en', now() - interval '2 years') AS dora \gset
SELECT register_customer('Sam Survivor', 'sam@example.com', NULL, 'en', now() - interval '2 years') AS sam \gset
SELECT place_order('VB-8', :dora, 'vb-web', '[{"sku":"H","qty":1,"unit_price":"15.00 EUR"}]', 'invoice', now() - interval '40 days');
SELECT count(*) FROM dunning_run((now() AT TIME ZONE 'UTC')::date);
SELECT merge_customers(:sam, :dora);
SELECT is((SELECT dunning_level FROM balance(:sam)), 1, 'the survivor takes the duplicate''s dunning level');
SELECT is_empty($$SELECT * FROM verify_balances()$$, 'and its level still follows the notices');

-- tamper with one figure at a time (as the owner, bypassing the posting core)
CREATE FUNCTION pg_temp.tampered(upd text, fig text) RETURNS boolean LANGUAGE plpgsql AS $f$
DECLARE
    found boolean;
BEGIN
    BEGIN
        EXECUTE upd;
        SELECT count(*) > 0 INTO found FROM customer_account.verify_balances() v WHERE v.figure = fig;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001', DETAIL = found::text;
    EXCEPTION WHEN raise_exception THEN
        GET STACKED DIAGNOSTICS upd = PG_EXCEPTION_DETAIL;
        RETURN upd::boolean;
    END;
END $f$;

SELECT ok(pg_temp.tampered(format('UPDATE account_state SET balance = balance + 1 WHERE customer_id = %s', :vera), 'balance'), 'balance');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET open_amount = open_amount + 1 WHERE customer_id = %s', :vera), 'open_amount'), 'open_amount');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET store_credit = store_credit + 1 WHERE customer_id = %s', :vera), 'store_credit'), 'store_credit');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET lifetime_revenue = lifetime_revenue + 1 WHERE customer_id = %s', :vera), 'lifetime_revenue'), 'lifetime_revenue');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET lifetime_returned = lifetime_returned + 1 WHERE customer_id = %s', :vera), 'lifetime_returned'), 'lifetime_returned');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET orders_count = orders_count + 1 WHERE customer_id = %s', :vera), 'orders_count'), 'orders_count');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET paid_orders = paid_orders + 1 WHERE customer_id = %s', :vera), 'paid_orders'), 'paid_orders');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET first_order_at = first_order_at + interval ''1 day'' WHERE customer_id = %s', :vera), 'first_order_at'), 'first_order_at');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET last_purchase_at = last_purchase_at - interval ''1 day'' WHERE customer_id = %s', :vera), 'last_purchase_at'), 'last_purchase_at');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET last_webshop = last_webshop - interval ''1 day'' WHERE customer_id = %s', :vera), 'last_webshop'), 'last_webshop');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET last_store = NULL WHERE customer_id = %s', :vera), 'last_store'), 'last_store');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET last_marketplace = NULL WHERE customer_id = %s', :vera), 'last_marketplace'), 'last_marketplace (moved in by the merge)');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET last_app = now() WHERE customer_id = %s', :vera), 'last_app'), 'last_app');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET last_callcenter = now() WHERE customer_id = %s', :vera), 'last_callcenter'), 'last_callcenter');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET next_due_at = NULL WHERE customer_id = %s', :vera), 'next_due_at'), 'next_due_at');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET last_event_at = last_event_at - interval ''1 day'' WHERE customer_id = %s', :vera), 'last_event_at'), 'last_event_at');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET dunning_level = 2 WHERE customer_id = %s', :larry), 'dunning_level'), 'dunning_level');
SELECT ok(pg_temp.tampered(format('UPDATE account_state SET balance = balance + 1, open_amount = open_amount + 1 WHERE customer_id = %s', :dup), 'balance'), 'a merged-away account must stay at zero');
SELECT ok(pg_temp.tampered(format('UPDATE open_item SET open = open - 1 WHERE customer_id = %s AND order_no = ''VB-1''', :vera), 'open_items'), 'open items against the state');
SELECT ok(pg_temp.tampered(format('UPDATE account_period SET revenue = revenue + 1 WHERE customer_id = %s AND period = (SELECT max(period) FROM account_period WHERE customer_id = %s)', :vera, :vera), 'period revenue'), 'monthly revenue');
SELECT ok(pg_temp.tampered(format('UPDATE account_period SET purchased = purchased + 1 WHERE customer_id = %s AND period = (SELECT max(period) FROM account_period WHERE customer_id = %s)', :vera, :vera), 'period purchased'), 'monthly purchased');
SELECT ok(pg_temp.tampered(format('UPDATE account_period SET returned = returned + 1 WHERE customer_id = %s AND period = (SELECT max(period) FROM account_period WHERE customer_id = %s)', :vera, :vera), 'period returned'), 'monthly returned');
SELECT ok(pg_temp.tampered(format('UPDATE account_period SET orders = orders + 1 WHERE customer_id = %s AND period = (SELECT max(period) FROM account_period WHERE customer_id = %s)', :vera, :vera), 'period orders'), 'monthly orders');
SELECT ok(pg_temp.tampered(format('DELETE FROM account_period WHERE customer_id = %s AND period = (SELECT min(period) FROM account_period WHERE customer_id = %s)', :vera, :vera), 'period revenue'), 'a lost month (the duplicate''s, moved in by the merge)');
SELECT ok(pg_temp.tampered(format('INSERT INTO account_period (customer_id, currency, period, revenue, purchased, orders) VALUES (%s, ''EUR'', ''2001-01-01'', 5, 5, 1)', :vera), 'period revenue'), 'a month that the ledger does not know');

-- the money figures are reported as money, the others as text
UPDATE account_state SET balance = balance + 1 WHERE customer_id = :vera;
SELECT results_eq(
    $$SELECT stored, recomputed, stored_value, recomputed_value FROM verify_balances() WHERE figure = 'balance'$$,
    $$VALUES ('32.01 EUR'::customer_account.currency_amount, '32.00 EUR'::customer_account.currency_amount, '32.01 EUR', '32.00 EUR')$$,
    'a difference in money shows both amounts');
SELECT * FROM finish();
ROLLBACK;
