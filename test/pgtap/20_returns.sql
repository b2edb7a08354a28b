-- pgTAP: returns.  The contract's functions and columns, their labels and
-- rights; every reason code has a German and an English sentence; a till
-- role with EXECUTE only decides and books a return without any right on
-- the tables; errors carry their SQLSTATE and change nothing.
BEGIN;
CREATE EXTENSION IF NOT EXISTS customer_account CASCADE;
SET search_path = customer_account, public;
SELECT plan(37);

-- the contract
SELECT has_function('customer_account', 'decide_return', ARRAY['text', 'text', 'integer', 'text', 'timestamp with time zone']);
SELECT has_function('customer_account', 'accept_return', ARRAY['text', 'text', 'integer', 'text', 'text']);
SELECT has_function('customer_account', 'announce_return', ARRAY['text', 'jsonb', 'text']);
SELECT is((SELECT proargnames[6:] FROM pg_proc WHERE oid = 'customer_account.decide_return(text, text, integer, text, timestamptz)'::regprocedure),
    ARRAY['action', 'refund', 'reason_code', 'reason', 'method'], 'decide_return() columns (method added at the end)');
SELECT is((SELECT proargnames[6:] FROM pg_proc WHERE oid = 'customer_account.accept_return(text, text, integer, text, text)'::regprocedure),
    ARRAY['return_no', 'action', 'refund', 'reason_code', 'reason', 'method'], 'accept_return() columns (method added at the end)');
SELECT is((SELECT pg_get_function_result('customer_account.announce_return(text, jsonb, text)'::regprocedure)), 'text',
    'announce_return() returns the return number');

-- labels: the decision reads, the others write with the owner's rights
SELECT is((SELECT provolatile FROM pg_proc WHERE oid = 'customer_account.decide_return(text, text, integer, text, timestamptz)'::regprocedure),
    's'::"char", 'decide_return is STABLE');
SELECT ok((SELECT proisstrict AND NOT prosecdef FROM pg_proc WHERE oid = 'customer_account.decide_return(text, text, integer, text, timestamptz)'::regprocedure),
    'decide_return is STRICT and runs with the caller''s rights (direct reads)');
SELECT ok((SELECT provolatile = 'v' AND prosecdef FROM pg_proc WHERE oid = 'customer_account.accept_return(text, text, integer, text, text)'::regprocedure),
    'accept_return is VOLATILE SECURITY DEFINER');
SELECT ok((SELECT provolatile = 'v' AND prosecdef FROM pg_proc WHERE oid = 'customer_account.announce_return(text, jsonb, text)'::regprocedure),
    'announce_return is VOLATILE SECURITY DEFINER');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'customer_account.accept_return(text, text, integer, text, text)'::regprocedure),
    ARRAY['search_path=customer_account, pg_temp'], 'accept_return pins its search_path');
SELECT is((SELECT proconfig FROM pg_proc WHERE oid = 'customer_account.announce_return(text, jsonb, text)'::regprocedure),
    ARRAY['search_path=customer_account, pg_temp'], 'announce_return pins its search_path');
SELECT ok(NOT has_function_privilege('public', 'customer_account.decide_return(text, text, integer, text, timestamptz)', 'EXECUTE'),
    'decide_return is not for PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'customer_account.accept_return(text, text, integer, text, text)', 'EXECUTE'),
    'accept_return is not for PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'customer_account.announce_return(text, jsonb, text)', 'EXECUTE'),
    'announce_return is not for PUBLIC');

-- the tables: customer_id first, kept by pg_dump, closed to PUBLIC; the policy table announces changes
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
           WHERE c.relnamespace = 'customer_account'::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'return\_%'
             AND (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = 1) = 'customer_id'),
    ARRAY['return_line', 'return_refund', 'return_request'], 'every return table starts with customer_id');
SELECT ok((SELECT bool_and(c.oid = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'customer_account')::oid[]))
           FROM pg_class c WHERE c.relnamespace = 'customer_account'::regnamespace
             AND c.relname IN ('return_request', 'return_line', 'return_refund', 'return_policy', 'return_no_seq',
                               'return_policy_rule_id_seq')),
    'the return tables and the return number sequence are dumped with their data');
SELECT ok(NOT has_table_privilege('public', 'customer_account.return_request', 'SELECT')
          AND NOT has_table_privilege('public', 'customer_account.return_policy', 'INSERT')
          AND NOT has_sequence_privilege('public', 'customer_account.return_no_seq', 'USAGE'),
    'nothing of the returns is open to PUBLIC');
SELECT has_trigger('customer_account', 'return_policy', 'config_changed', 'a change of the return policy reaches every backend');
SELECT has_trigger('customer_account', 'customer', 'return_follow_merge', 'returns follow a merged customer');

-- every reason code speaks German and English
SELECT is_empty($$
    SELECT c FROM unnest(ARRAY['not_sold_by_us', 'not_delivered', 'already_returned', 'quantity_exceeds_purchase',
        'return_window_expired', 'item_not_returnable', 'unpaid_order', 'marketplace_order', 'cash_limit_exceeded',
        'frequent_returner', 'offset_against_debt', 'customer_blocked', 'exchange_only',
        'ok.refund_cash', 'ok.refund_original_payment', 'ok.reduce_open_invoice', 'ok.store_credit',
        'ok.exchange_only', 'ok.refund_via_marketplace']) c
    WHERE customer_account.reason_text('return.' || c, 'de') = customer_account.reason_text('return.' || c, 'en')$$,
    'every return reason has a German and an English sentence');

-- a till role: EXECUTE on the three functions, no right on any table
SELECT customer_account.add_channel('tap-web', 'webshop', 'EUR');
SELECT customer_account.add_channel('tap-till', 'store', 'EUR', 30, '50.00 EUR');
SELECT customer_account.register_customer('Tap Returner', 'tapret@example.com', NULL, 'en', now() - interval '1 year') AS cid \gset
SELECT customer_account.place_order('TAP-R-1', :cid, 'tap-web',
    '[{"sku":"A","qty":2,"unit_price":"20.00 EUR"},{"sku":"B","qty":1,"unit_price":"5.00 EUR"}]', 'paypal', now() - interval '3 days');
SELECT customer_account.mark_delivered('TAP-R-1', now() - interval '1 day');
CREATE ROLE ca_test_till;
GRANT USAGE ON SCHEMA customer_account TO ca_test_till;
GRANT EXECUTE ON FUNCTION customer_account.decide_return(text, text, integer, text, timestamptz),
    customer_account.accept_return(text, text, integer, text, text),
    customer_account.announce_return(text, jsonb, text) TO ca_test_till;
SET ROLE ca_test_till;
SELECT results_eq($$SELECT action::text, customer_account.minor_units(refund), reason_code, method
                    FROM customer_account.decide_return('TAP-R-1', 'A', 1, 'tap-till')$$,
    $$VALUES ('refund_original_payment', 2000::bigint, 'ok', 'paypal')$$,
    'a till role decides without rights on the tables');
SELECT results_eq($$SELECT return_no, action::text, reason_code FROM customer_account.accept_return('TAP-R-1', 'A', 1, 'tap-till', 'TAP-RET-1')$$,
    $$VALUES ('TAP-RET-1', 'refund_original_payment', 'ok')$$, 'a till role books a return');
SELECT results_eq($$SELECT return_no, action::text, reason_code FROM customer_account.accept_return('TAP-R-1', 'A', 1, 'tap-till', 'TAP-RET-1')$$,
    $$VALUES ('TAP-RET-1', 'refund_original_payment', 'ok')$$, 'the retry answers the same');
SELECT matches(customer_account.announce_return('TAP-R-1', '[{"sku":"B","qty":1}]', 'tap-web'), '^RT[0-9]+$',
    'a shop role announces a return and gets its number');
SELECT throws_ok($$SELECT count(*) FROM customer_account.return_request$$, '42501', NULL, 'returns are not readable by the role');
SELECT throws_ok($$UPDATE customer_account.return_policy SET returnable = true$$, '42501', NULL, 'the policy is not writable by the role');
SELECT throws_ok($$SELECT * FROM customer_account.decide_return('TAP-NOPE', 'A', 1, 'tap-till')$$, 'RA002', NULL, 'unknown order: RA002');
SELECT throws_ok($$SELECT * FROM customer_account.accept_return('TAP-R-1', 'A', 0, 'tap-till')$$, '22023', NULL, 'quantity 0: 22023');
SELECT throws_ok($$SELECT * FROM customer_account.accept_return('TAP-R-1', 'A', 1, 'tap-nowhere')$$, 'RA002', NULL, 'unknown channel: RA002');
SELECT throws_ok($$SELECT customer_account.announce_return('TAP-R-1', '[{"sku":"A","qty":5}]', 'tap-web')$$, 'RA001', NULL,
    'an announcement the rules refuse: RA001');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM customer_account.ledger WHERE customer_id = :cid AND entry_type IN ('return', 'refund')), 2,
    'one credit note and one refund: the retry and the errors booked nothing');
SELECT is((SELECT count(*)::int FROM customer_account.return_line WHERE customer_id = :cid), 2,
    'one decided line and one announced line');
SELECT is((SELECT minor_units(returned_value_12m) FROM customer_account.balance(:cid)), 2000::bigint,
    'balance() shows the returned value');
SELECT is_empty($$SELECT * FROM customer_account.verify_balances() WHERE customer_id = $$ || :cid,
    'verify_balances() finds no difference');
-- the decision is a pure read: it takes no lock and writes nothing
SELECT is((SELECT count(*)::int FROM customer_account.decide_return('TAP-R-1', 'A', 1, 'tap-till')), 1,
    'the second unit can still be decided');
SELECT is((SELECT count(*)::int FROM customer_account.return_request WHERE customer_id = :cid), 2,
    'deciding wrote no return record');

SELECT * FROM finish();
ROLLBACK;
