-- pgTAP: role profiles.  For each profile (and for a role without one),
-- every contract function and table is tried against the README's table
-- "Role profiles": allowed exactly where the table says so, refused
-- everywhere else.  Then the channel binding of pos and shop roles is
-- exercised for real under SET ROLE (functions, plain INSERTs, a member
-- role, SECURITY DEFINER paths), and revoke_profile keeps the rights
-- another profile still gives.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET search_path = customer_account, public;

-- the README's table: object, privilege, and the profiles that have it
CREATE TEMP TABLE matrix (object text, kind text, privilege text, profiles text[]);
INSERT INTO matrix VALUES
    ('add_channel(text, channel_kind, text, integer, currency_amount, integer)', 'function', 'EXECUTE', '{admin}'),
    ('add_payment_method(text, boolean, channel_kind[], text, numeric, numeric)', 'function', 'EXECUTE', '{admin}'),
    ('register_customer(text, text, text, text, timestamptz)', 'function', 'EXECUTE', '{pos,shop}'),
    ('set_credit_limit(bigint, currency_amount)', 'function', 'EXECUTE', '{admin}'),
    ('link_identity(bigint, text, text)', 'function', 'EXECUTE', '{pos,shop}'),
    ('find_customer(text, text)', 'function', 'EXECUTE', '{pos,shop,callcenter}'),
    ('merge_customers(bigint, bigint)', 'function', 'EXECUTE', '{admin}'),
    ('forget_customer(bigint)', 'function', 'EXECUTE', '{admin}'),
    ('place_order(text, bigint, text, jsonb, text, timestamptz)', 'function', 'EXECUTE', '{pos,shop}'),
    ('mark_delivered(text, timestamptz)', 'function', 'EXECUTE', '{pos,shop}'),
    ('cancel_order(text, timestamptz)', 'function', 'EXECUTE', '{pos,shop}'),
    ('record_payment(text, bigint, currency_amount, text, text, text, timestamptz)', 'function', 'EXECUTE', '{pos,shop,callcenter}'),
    ('balance(bigint, timestamptz)', 'function', 'EXECUTE', '{pos,shop,callcenter}'),
    ('account_advice(bigint)', 'function', 'EXECUTE', '{callcenter}'),
    ('payment_options(bigint, currency_amount, text)', 'function', 'EXECUTE', '{pos,shop,callcenter}'),
    ('decide_return(text, text, integer, text, timestamptz)', 'function', 'EXECUTE', '{pos,shop,callcenter}'),
    ('accept_return(text, text, integer, text, text)', 'function', 'EXECUTE', '{pos,shop}'),
    ('announce_return(text, jsonb, text)', 'function', 'EXECUTE', '{shop}'),
    ('save_basket(bigint, text, jsonb, interval)', 'function', 'EXECUTE', '{shop}'),
    ('resume_basket(text, text)', 'function', 'EXECUTE', '{pos,shop}'),
    ('checkout_basket(text, text, text, text)', 'function', 'EXECUTE', '{pos,shop}'),
    ('loyalty_points(bigint, timestamptz)', 'function', 'EXECUTE', '{pos,shop,callcenter}'),
    ('redeem_points(bigint, bigint, text)', 'function', 'EXECUTE', '{pos,shop}'),
    ('loyalty_history(bigint)', 'function', 'EXECUTE', '{callcenter}'),
    ('expire_points(timestamptz)', 'function', 'EXECUTE', '{admin}'),
    ('loyalty_liability(timestamptz)', 'function', 'EXECUTE', '{report}'),
    ('set_loyalty_terms(text, currency_amount, integer, integer)', 'function', 'EXECUTE', '{admin}'),
    ('add_earn_rule(text, numeric, channel_kind, text, timestamptz, timestamptz)', 'function', 'EXECUTE', '{admin}'),
    ('add_points_multiplier(text, numeric, text, channel_kind, text, timestamptz, timestamptz)', 'function', 'EXECUTE', '{admin}'),
    ('add_loyalty_tier(text, text, currency_amount)', 'function', 'EXECUTE', '{admin}'),
    ('add_reactivation_rule(text, channel_kind, integer, channel_kind, integer, integer, currency_amount, numeric, currency_amount, integer)', 'function', 'EXECUTE', '{admin}'),
    ('aging_report(date)', 'function', 'EXECUTE', '{report}'),
    ('dunning_run(date)', 'function', 'EXECUTE', '{admin}'),
    ('channel_report(timestamptz, timestamptz)', 'function', 'EXECUTE', '{report}'),
    ('inactive_customers(integer)', 'function', 'EXECUTE', '{report}'),
    ('verify_balances()', 'function', 'EXECUTE', '{report,admin}'),
    ('search(text, integer)', 'function', 'EXECUTE', '{callcenter}'),
    ('outbox_pending(text, integer)', 'function', 'EXECUTE', '{shop,admin}'),
    ('ack_outbox(bigint)', 'function', 'EXECUTE', '{shop,admin}'),
    ('set_disputed(text, boolean)', 'function', 'EXECUTE', '{admin}'),
    ('refresh_value_segments(timestamptz)', 'function', 'EXECUTE', '{admin}'),
    ('check_capture(regclass, boolean)', 'function', 'EXECUTE', '{admin}'),
    ('capture_backfill(regclass, integer)', 'function', 'EXECUTE', '{admin}'),
    ('replay_quarantine(regclass)', 'function', 'EXECUTE', '{admin}'),
    ('grant_profile(name, text, text)', 'function', 'EXECUTE', '{}'),
    ('revoke_profile(name, text)', 'function', 'EXECUTE', '{}'),
    ('may_write_channel(text)', 'function', 'EXECUTE', '{pos,shop}'),
    ('capture_order()', 'function', 'EXECUTE', '{}'),
    ('capture_order_line()', 'function', 'EXECUTE', '{}'),
    ('capture_payment()', 'function', 'EXECUTE', '{}'),
    ('capture_return()', 'function', 'EXECUTE', '{}');
INSERT INTO matrix
SELECT t.name, 'table', p.priv, CASE
        WHEN t.name IN ('orders', 'order_line') AND p.priv = 'INSERT' THEN '{pos,shop}'
        WHEN t.name = 'payment' AND p.priv = 'INSERT' THEN '{pos,shop,callcenter}'
        WHEN t.name IN ('orders', 'order_line', 'payment', 'ledger', 'customer', 'customer_identity', 'open_item',
                        'account_state', 'customer_note') AND p.priv = 'SELECT' THEN '{callcenter}'
        WHEN t.name IN ('channel', 'payment_method', 'credit_policy', 'dunning_level', 'policy') THEN '{admin}'
        WHEN t.name IN ('capture_quarantine', 'profile_grant') AND p.priv = 'SELECT' THEN '{admin}'
        ELSE '{}' END::text[]
FROM unnest(ARRAY['orders', 'order_line', 'payment', 'ledger', 'customer', 'customer_identity', 'account_state',
                  'open_item', 'outbox', 'channel', 'payment_method', 'credit_policy', 'dunning_level', 'policy',
                  'customer_note', 'capture_quarantine', 'profile_grant']) t(name),
     unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p(priv);
-- the call center writes a note's customer and body; the author is its role
INSERT INTO matrix VALUES ('customer_note.customer_id', 'column', 'INSERT', '{callcenter}'),
    ('customer_note.body', 'column', 'INSERT', '{callcenter}'),
    ('customer_note.written_by', 'column', 'INSERT', '{}');

-- what exists in this installation (returns, loyalty, baskets may come later)
CREATE TEMP VIEW present AS
SELECT m.*, CASE m.kind
        WHEN 'function' THEN to_regprocedure('customer_account.' || m.object) IS NOT NULL
        WHEN 'table' THEN to_regclass('customer_account.' || m.object) IS NOT NULL
        ELSE true END AS exists
FROM matrix m;

CREATE TEMP TABLE profile_role (profile text, role_name name);
INSERT INTO profile_role VALUES ('pos', 'tap_pos'), ('shop', 'tap_shop'), ('callcenter', 'tap_callcenter'),
    ('report', 'tap_report'), ('admin', 'tap_admin'), ('none', 'tap_nobody');

SELECT plan((SELECT count(*)::int FROM present WHERE exists) * 6 + 43 + 7);

CREATE ROLE tap_pos;
CREATE ROLE tap_shop;
CREATE ROLE tap_callcenter;
CREATE ROLE tap_report;
CREATE ROLE tap_admin;
CREATE ROLE tap_nobody;
SELECT add_channel('tap-store', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('tap-store-2', 'store', 'EUR');
SELECT add_channel('tap-web', 'webshop', 'EUR');
SELECT grant_profile('tap_pos', 'pos', 'tap-store');
SELECT grant_profile('tap_shop', 'shop', 'tap-web');
SELECT grant_profile('tap_callcenter', 'callcenter');
SELECT grant_profile('tap_report', 'report');
SELECT grant_profile('tap_admin', 'admin');

-- 1. the matrix: every object, every profile
SELECT is(CASE p.kind
            WHEN 'function' THEN has_function_privilege(r.role_name, ('customer_account.' || p.object)::regprocedure, p.privilege)
            WHEN 'table' THEN has_table_privilege(r.role_name, ('customer_account.' || p.object)::regclass, p.privilege)
            ELSE has_column_privilege(r.role_name, ('customer_account.' || split_part(p.object, '.', 1))::regclass,
                                      split_part(p.object, '.', 2), p.privilege) END,
          r.profile = ANY (p.profiles),
          format('%s: %s %s %s', r.profile, CASE WHEN r.profile = ANY (p.profiles) THEN 'may' ELSE 'may not' END,
                 p.privilege, p.object))
FROM present p CROSS JOIN profile_role r
WHERE p.exists
ORDER BY p.kind, p.object, p.privilege, r.profile;

-- the matrix names every installed contract function by its real signature
-- (a changed signature would otherwise skip its row silently)
SELECT is_empty($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'customer_account'::regnamespace
      AND p.proname IN (SELECT split_part(m.object, '(', 1) FROM matrix m WHERE m.kind = 'function')
      AND p.oid NOT IN (SELECT to_regprocedure('customer_account.' || m.object) FROM matrix m
                        WHERE m.kind = 'function' AND to_regprocedure('customer_account.' || m.object) IS NOT NULL)$$,
    'every installed contract function is in the matrix under its real signature');
-- and no profile executes anything of the account beyond its rows
SELECT is_empty(format($$
    SELECT p.oid::regprocedure::text FROM pg_proc p
    WHERE p.pronamespace = 'customer_account'::regnamespace
      AND has_function_privilege(%L, p.oid, 'EXECUTE') AND NOT has_function_privilege('public', p.oid, 'EXECUTE')
      AND p.oid NOT IN (SELECT to_regprocedure('customer_account.' || m.object) FROM matrix m
                        WHERE m.kind = 'function' AND %L = ANY (m.profiles)
                          AND to_regprocedure('customer_account.' || m.object) IS NOT NULL)$$, r.role_name, r.profile),
    format('%s: no function beyond the table', r.profile))
FROM profile_role r ORDER BY r.profile;

-- 2. grant_profile refuses what is not a profile
SELECT throws_ok($$SELECT customer_account.grant_profile('tap_no_such_role', 'pos')$$, '42704', NULL, 'unknown role: 42704');
SELECT throws_ok($$SELECT customer_account.grant_profile('tap_pos', 'cashier')$$, '22023', NULL, 'unknown profile: 22023');
SELECT throws_ok($$SELECT customer_account.grant_profile('tap_callcenter', 'callcenter', 'tap-web')$$, '22023', NULL,
    'only pos and shop are bound to a channel');
SELECT throws_ok($$SELECT customer_account.grant_profile('tap_pos', 'pos', 'tap-web')$$, '22023', NULL, 'pos is for store channels');
SELECT throws_ok($$SELECT customer_account.grant_profile('tap_shop', 'shop', 'tap-store')$$, '22023', NULL, 'shop is not for a store');
SELECT throws_ok($$SELECT customer_account.grant_profile('tap_pos', 'pos', 'nowhere')$$, 'RA002', NULL, 'unknown channel: RA002');
SELECT lives_ok($$SELECT customer_account.grant_profile('tap_report', 'report')$$, 'granting twice changes nothing');
SELECT is((SELECT count(*)::int FROM profile_grant WHERE role_name = 'tap_report'), 1, 'one row per role, profile and channel');

-- 3. a pos role writes for its store and no other channel, judged by the role in effect
SELECT register_customer('Tap Customer', 'tap.customer@example.com', NULL, 'en', now() - interval '1 year') AS tap_id \gset
SET ROLE tap_pos;
SELECT is(find_customer('email', 'TAP.customer@example.com'), :'tap_id'::bigint, 'pos finds a customer by identity');
SELECT lives_ok(format($$SELECT customer_account.place_order('TAP-POS-1', %s, 'tap-store', '[{"sku":"A","qty":1,"unit_price":"9.99 EUR"}]', 'cash')$$, :tap_id),
    'pos places an order on its store');
SELECT throws_ok(format($$SELECT customer_account.place_order('TAP-POS-2', %s, 'tap-web', '[{"sku":"A","qty":1,"unit_price":"9.99 EUR"}]', 'credit_card')$$, :tap_id),
    '42501', 'role "tap_pos" may not write for channel "tap-web"', 'pos may not place an order for the web shop');
SELECT throws_ok(format($$SELECT customer_account.place_order('TAP-POS-3', %s, 'tap-store-2', '[{"sku":"A","qty":1,"unit_price":"9.99 EUR"}]', 'cash')$$, :tap_id),
    '42501', NULL, 'nor for another store');
SELECT throws_ok(format($$SELECT customer_account.record_payment('TAP-PAY-1', %s, '5.00 EUR', 'cash', 'tap-store-2')$$, :tap_id),
    '42501', NULL, 'nor record a payment for another store');
SELECT lives_ok(format($$SELECT customer_account.record_payment('TAP-PAY-2', %s, '5.00 EUR', 'cash', 'tap-store')$$, :tap_id),
    'pos records a payment at its store');
SELECT throws_ok(format($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('TAP-POS-4', %s, 'tap-web', 'credit_card', '1.00 EUR')$$, :tap_id),
    '42501', NULL, 'a plain INSERT for another channel is refused');
SELECT lives_ok(format($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total) VALUES ('TAP-POS-5', %s, 'tap-store', 'cash', '1.00 EUR');
                         INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('TAP-POS-5', 1, 'B', 1, '1.00 EUR')$$, :tap_id),
    'a plain INSERT for its own store passes');
SELECT lives_ok($$SELECT customer_account.mark_delivered('TAP-POS-1')$$, 'pos hands over its own order');
SELECT ok((SELECT count(*) FROM customer_account.balance(:tap_id)) = 1, 'pos reads the balance');
SELECT throws_ok($$SELECT count(*) FROM customer_account.customer$$, '42501', NULL, 'pos reads no personal data table');
RESET ROLE;
-- the order of another channel is not the pos role's to deliver or cancel
SELECT place_order('TAP-WEB-1', :tap_id, 'tap-web', '[{"sku":"C","qty":1,"unit_price":"5.00 EUR"}]', 'credit_card') AS web_total \gset
SET ROLE tap_pos;
SELECT throws_ok($$SELECT customer_account.cancel_order('TAP-WEB-1')$$, '42501', NULL, 'pos may not cancel a web order');
RESET ROLE;

-- 4. who booked: the role in effect, not the SECURITY DEFINER owner
SELECT is((SELECT array_agg(DISTINCT booked_by) FROM ledger WHERE order_no IN ('TAP-POS-1', 'TAP-POS-5')), ARRAY['tap_pos'],
    'the ledger names the pos role that booked, also through place_order()');
SELECT is((SELECT session_role FROM ledger WHERE order_no = 'TAP-POS-1' LIMIT 1), session_user::text,
    'and the session''s login');

-- 5. a member of a bound role is bound too; SET ROLE decides
CREATE ROLE tap_till IN ROLE tap_pos;
SET ROLE tap_till;
SELECT throws_ok(format($$SELECT customer_account.place_order('TAP-TILL-1', %s, 'tap-web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'credit_card')$$, :tap_id),
    '42501', 'role "tap_till" may not write for channel "tap-web"', 'a member of a pos role is bound to its store');
RESET ROLE;
SELECT grant_profile('tap_pos', 'pos', 'tap-store-2');
SET ROLE tap_till;
SELECT lives_ok(format($$SELECT customer_account.place_order('TAP-TILL-2', %s, 'tap-store-2', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'cash')$$, :tap_id),
    'a second channel granted to the pos role opens it');
RESET ROLE;
SELECT ok(may_write_channel('tap-web'), 'the DBA (superuser) is bound to no channel');

-- 6. the shop role: its web channel only
SET ROLE tap_shop;
SELECT lives_ok(format($$SELECT customer_account.place_order('TAP-SHOP-1', %s, 'tap-web', '[{"sku":"A","qty":1,"unit_price":"2.00 EUR"}]', 'credit_card')$$, :tap_id),
    'shop places an order on its web channel');
SELECT throws_ok(format($$SELECT customer_account.place_order('TAP-SHOP-2', %s, 'tap-store', '[{"sku":"A","qty":1,"unit_price":"2.00 EUR"}]', 'cash')$$, :tap_id),
    '42501', NULL, 'shop may not write for a store');
SELECT ok(customer_account.may_write_channel('tap-web') AND NOT customer_account.may_write_channel('tap-store'),
    'may_write_channel() answers the same for SQL write paths');
RESET ROLE;

-- 7. the call center: reads accounts, writes notes and payments, nothing else
SET ROLE tap_callcenter;
SELECT lives_ok(format($$SELECT customer_account.record_payment('TAP-PAY-CC', %s, '3.00 EUR', 'bank_transfer', 'tap-web')$$, :tap_id),
    'the call center records a payment (bound to no channel)');
SELECT lives_ok(format($$INSERT INTO customer_account.customer_note (customer_id, body) VALUES (%s, 'called about the invoice')$$, :tap_id),
    'the call center writes a note');
SELECT is((SELECT written_by FROM customer_account.customer_note WHERE customer_id = :tap_id), 'tap_callcenter', 'signed by its role');
SELECT throws_ok(format($$INSERT INTO customer_account.customer_note (customer_id, body, written_by) VALUES (%s, 'x', 'someone else')$$, :tap_id),
    '42501', NULL, 'and cannot sign as someone else');
SELECT throws_ok(format($$SELECT customer_account.place_order('TAP-CC-1', %s, 'tap-web', '[{"sku":"A","qty":1,"unit_price":"1.00 EUR"}]', 'invoice')$$, :tap_id),
    '42501', NULL, 'the call center places no orders');
SELECT ok((SELECT count(*) FROM customer_account.ledger WHERE customer_id = :tap_id) > 0, 'the call center reads the history');
RESET ROLE;

-- 8. report and admin
SET ROLE tap_report;
SELECT lives_ok($$SELECT * FROM customer_account.aging_report()$$, 'report runs the aging report');
SELECT throws_ok(format($$SELECT * FROM customer_account.balance(%s)$$, :tap_id), '42501', NULL, 'report reads no single account');
RESET ROLE;
SET ROLE tap_admin;
SELECT lives_ok($$SELECT customer_account.add_channel('tap-app', 'app', 'EUR')$$, 'admin adds a channel');
SELECT lives_ok($$UPDATE customer_account.credit_policy SET credit_limit = credit_limit WHERE shipped$$, 'admin edits the credit policy');
SELECT throws_ok($$SELECT customer_account.grant_profile('tap_admin', 'pos')$$, '42501', NULL, 'admin does not hand out profiles');
RESET ROLE;

-- 9. revoke_profile keeps what another profile of the role still gives
SELECT grant_profile('tap_pos', 'callcenter');
SELECT ok(has_function_privilege('tap_pos', 'customer_account.account_advice(bigint)', 'EXECUTE'), 'pos + callcenter: advice');
SELECT revoke_profile('tap_pos', 'callcenter');
SELECT ok(NOT has_function_privilege('tap_pos', 'customer_account.account_advice(bigint)', 'EXECUTE'), 'callcenter revoked: no advice');
SELECT ok(has_function_privilege('tap_pos', 'customer_account.balance(bigint, timestamptz)', 'EXECUTE'), 'but pos still reads balances');
SELECT revoke_profile('tap_pos', 'pos');
SELECT ok(NOT has_function_privilege('tap_pos', 'customer_account.place_order(text, bigint, text, jsonb, text, timestamptz)', 'EXECUTE')
          AND NOT EXISTS (SELECT 1 FROM profile_grant WHERE role_name = 'tap_pos'), 'pos revoked: nothing left');

SELECT * FROM finish();
ROLLBACK;
