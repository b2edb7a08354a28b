--
-- Capture triggers: four differently shaped shop tables feed the account
-- (emails vs the account's ids vs the shop's own customer numbers vs
-- marketplace buyers; statuses vs delivery/cancellation columns; numeric
-- amounts plus a currency code, cents, currency_amount), rows updated
-- many times, every bad mapping with its error, the quarantine and its
-- replay, the back-fill of existing history, and the audit of who booked.
--
SET search_path = customer_account, public;
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
DROP SCHEMA IF EXISTS web, pos, market, erp, imp, old CASCADE;
RESET client_min_messages;
SET TimeZone = 'UTC';

-- run statements, then book what they captured as a commit would (the
-- capture constraint first, then the core's deferred checks), so that
-- commit-time errors show here too; a failure rolls all back.  An error of
-- the core (unknown channel, invalid email) is shown with the context line
-- that names the capture trigger, the argument and the column.
CREATE FUNCTION pg_temp.try(VARIADIC sqls text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    s text;
    ctx text;
BEGIN
    FOREACH s IN ARRAY sqls LOOP
        EXECUTE s;
    END LOOP;
    SET CONSTRAINTS customer_account.capture_commit IMMEDIATE;
    SET CONSTRAINTS ALL IMMEDIATE;
    SET CONSTRAINTS ALL DEFERRED;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS ctx = PG_EXCEPTION_CONTEXT;
    RETURN SQLSTATE || ': ' || SQLERRM
        || CASE WHEN SQLERRM NOT LIKE '%capture trigger%' AND ctx ~ 'capture trigger'
                THEN E'\n  (' || substring(ctx from 'capture trigger[^\n]*') || ')' ELSE '' END;
END $$;

-- what the books hold: rows per table, and what every order booked
CREATE FUNCTION pg_temp.books() RETURNS text LANGUAGE sql AS $$
    SELECT format('ledger=%s orders=%s lines=%s payments=%s customers=%s',
        (SELECT count(*) FROM customer_account.ledger), (SELECT count(*) FROM customer_account.orders),
        (SELECT count(*) FROM customer_account.order_line), (SELECT count(*) FROM customer_account.payment),
        (SELECT count(*) FROM customer_account.customer))
$$;
-- (times booked "now", for statuses without a time column, show as "now")
CREATE FUNCTION pg_temp.order_book(prefix text) RETURNS TABLE(order_no text, customer text, channel text, method text,
        total customer_account.currency_amount, lines text, delivered text, cancelled text, entries text)
LANGUAGE sql AS $$
    SELECT o.order_no, c.full_name, o.channel, o.payment_method, o.total,
           (SELECT string_agg(l.qty || 'x' || l.sku || '@' || l.unit_price::text, ' ' ORDER BY l.line_no)
            FROM customer_account.order_line l WHERE l.order_no = o.order_no),
           CASE WHEN o.delivered_at > now() - interval '1 hour' THEN 'now' ELSE to_char(o.delivered_at, 'YYYY-MM-DD HH24:MI') END,
           CASE WHEN o.cancelled_at > now() - interval '1 hour' THEN 'now' ELSE to_char(o.cancelled_at, 'YYYY-MM-DD HH24:MI') END,
           (SELECT string_agg(e.entry_type, ',' ORDER BY e.entry_id) FROM customer_account.ledger e WHERE e.order_no = o.order_no)
    FROM customer_account.orders o JOIN customer_account.customer c USING (customer_id)
    WHERE o.order_no LIKE prefix || '%'
    ORDER BY length(o.order_no), o.order_no
$$;

SELECT add_channel('web-de', 'webshop', 'EUR');
SELECT add_channel('web-ch', 'webshop', 'CHF');
SELECT add_channel('store-berlin', 'store', 'EUR', 30, '200.00 EUR');
SELECT add_channel('ebay', 'marketplace', 'EUR');
SELECT register_customer('Berta Brandt', 'berta@example.de', NULL, 'de', '2025-01-01') AS berta \gset
SELECT register_customer('Carl Clausen', 'carl@example.de', NULL, 'de', '2025-01-01') AS carl \gset

------------------------------------------------------------------------------
-- 1. A web shop (WooCommerce-like): customers by email, created on their
--    first order; statuses drive delivery and cancellation; numeric
--    amounts in the channel's currency; a grand total that includes shipping
------------------------------------------------------------------------------
CREATE SCHEMA web;
CREATE TABLE web.orders (
    id           serial PRIMARY KEY,
    email        text,
    billing_name text,
    grand_total  numeric(12,2),
    payment_code text,
    status       text NOT NULL DEFAULT 'pending',
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz
);
CREATE TABLE web.order_items (
    item_id  serial PRIMARY KEY,
    order_id integer NOT NULL REFERENCES web.orders,
    sku      text,
    qty      integer,
    price    numeric(12,2)
);
CREATE INDEX ON web.order_items (order_id);
CREATE TRIGGER account AFTER INSERT OR UPDATE ON web.orders FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order(
    'order_no=id', 'prefix=WEB-', 'customer=email:email', 'create_customer=name:billing_name',
    'channel=const:web-de', 'total=grand_total', 'method=payment_code',
    'method_map=cc:credit_card,pp:paypal,inv:invoice',
    'status=status', 'status_map=pending_payment:hold,pending:place,processing:place,completed:deliver,cancelled:cancel',
    'placed_at=created_at', 'lines=web.order_items', 'adjust_sku=SHIPPING');
CREATE TRIGGER account AFTER INSERT OR UPDATE OR DELETE ON web.order_items FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order_line('order_no=order_id', 'line_key=item_id', 'sku=sku', 'qty=qty',
    'unit_price=price');
SELECT * FROM check_capture('web.orders');
SELECT * FROM check_capture('web.order_items');

-- order, lines and shipping in one transaction: booked at commit
BEGIN;
INSERT INTO web.orders (email, billing_name, grand_total, payment_code, created_at)
VALUES ('Dora@Example.de', 'Dora Dietz', 34.95, 'inv', '2026-03-01 10:00');
INSERT INTO web.order_items (order_id, sku, qty, price) VALUES (1, 'SHIRT', 1, 10.00), (1, 'SOCKS', 2, 10.00);
SELECT pg_temp.books() AS "nothing booked before commit";
COMMIT;
SELECT * FROM pg_temp.order_book('WEB-');
SELECT customer_id, full_name, email, customer_since FROM customer WHERE full_name = 'Dora Dietz';

-- the shop updates the row again and again: each status change books once
UPDATE web.orders SET updated_at = '2026-03-01 11:00' WHERE id = 1;   -- nothing mapped changed
UPDATE web.orders SET status = 'processing' WHERE id = 1;              -- still placed
SELECT pg_temp.books();
UPDATE web.orders SET status = 'completed', updated_at = '2026-03-03 09:00' WHERE id = 1;
UPDATE web.orders SET status = 'completed' WHERE id = 1;
UPDATE web.orders SET status = 'completed', updated_at = now() WHERE id = 1;
SELECT pg_temp.books();
SELECT * FROM pg_temp.order_book('WEB-1');

-- a second order by the same person (email written otherwise), cancelled later
BEGIN;
INSERT INTO web.orders (email, billing_name, grand_total, payment_code, created_at)
VALUES (' dora@example.DE ', 'Dora D.', 19.99, 'cc', '2026-03-05 12:00');
INSERT INTO web.order_items (order_id, sku, qty, price) VALUES (2, 'CAP', 1, 19.99);
COMMIT;
UPDATE web.orders SET status = 'cancelled' WHERE id = 2;
UPDATE web.orders SET status = 'cancelled', updated_at = '2026-03-06' WHERE id = 2;
SELECT * FROM pg_temp.order_book('WEB-2');

-- an order waiting for its payment is not booked; it is once it is placed,
-- with the lines its table has then
BEGIN;
INSERT INTO web.orders (email, billing_name, grand_total, payment_code, status, created_at)
VALUES ('erik@example.de', 'Erik Ernst', 25.00, 'pp', 'pending_payment', '2026-03-07 08:00');
INSERT INTO web.order_items (order_id, sku, qty, price) VALUES (3, 'BELT', 1, 20.00);
COMMIT;
INSERT INTO web.order_items (order_id, sku, qty, price) VALUES (3, 'BUCKLE', 1, 5.00);
SELECT count(*) AS "order 3 booked" FROM orders WHERE order_no = 'WEB-3';
UPDATE web.orders SET status = 'processing' WHERE id = 3;
SELECT * FROM pg_temp.order_book('WEB-3');

-- imported as completed in one go: booked and delivered at once
BEGIN;
INSERT INTO web.orders (email, billing_name, grand_total, payment_code, status, created_at)
VALUES ('berta@example.de', NULL, 12.00, 'cc', 'completed', '2026-03-08 08:00');
INSERT INTO web.order_items (order_id, sku, qty, price) VALUES (4, 'MUG', 2, 6.00);
COMMIT;
SELECT * FROM pg_temp.order_book('WEB-4');

-- a shop replaying its rows (a sync job) books nothing twice
SELECT pg_temp.books() AS before;
UPDATE web.orders SET status = status, grand_total = grand_total;
INSERT INTO web.orders AS o (id, email, billing_name, grand_total, payment_code, status, created_at)
SELECT id, email, billing_name, grand_total, payment_code, status, created_at FROM web.orders
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, updated_at = '2026-04-01';
SELECT pg_temp.books() AS after;

-- what the shop cannot change once booked, and what it cannot do
SELECT pg_temp.try($$UPDATE web.orders SET payment_code = 'pp' WHERE id = 1$$);
SELECT pg_temp.try($$UPDATE web.order_items SET qty = 3 WHERE order_id = 1 AND sku = 'SOCKS'$$);
SELECT pg_temp.try($$INSERT INTO web.order_items (order_id, sku, qty, price) VALUES (1, 'EXTRA', 1, 1.00)$$);
SELECT pg_temp.try($$DELETE FROM web.order_items WHERE order_id = 1 AND sku = 'SHIRT'$$);
SELECT pg_temp.try($$UPDATE web.orders SET status = 'cancelled' WHERE id = 1$$);
SELECT pg_temp.try($$INSERT INTO web.orders (email, billing_name, grand_total, payment_code, created_at) VALUES ('x@example.de', 'X', 50.00, 'cc', '2026-03-09')$$,
                   $$INSERT INTO web.order_items (order_id, sku, qty, price) VALUES (currval('web.orders_id_seq'), 'A', 1, 60.00)$$);
SELECT pg_temp.try($$INSERT INTO web.orders (email, billing_name, grand_total, payment_code, created_at) VALUES ('x@example.de', 'X', 50.00, 'cc', '2026-03-09')$$);
SELECT pg_temp.try($$INSERT INTO web.orders (email, billing_name, grand_total, payment_code, status, created_at) VALUES ('x@example.de', 'X', 5, 'cc', 'on-hold', '2026-03-09')$$);
SELECT pg_temp.try($$INSERT INTO web.orders (email, billing_name, grand_total, payment_code, created_at) VALUES ('x@example.de', 'X', 5, 'bitcoin', '2026-03-09')$$);
SELECT pg_temp.try($$INSERT INTO web.orders (email, billing_name, grand_total, payment_code, created_at) VALUES ('not an email', 'X', 5, 'cc', '2026-03-09')$$);
SELECT pg_temp.try($$INSERT INTO web.orders (email, billing_name, grand_total, payment_code, created_at) VALUES (NULL, 'X', 5, 'cc', '2026-03-09')$$);
SELECT pg_temp.books() AS "unchanged by the failures";

------------------------------------------------------------------------------
-- 2. A POS system that knows the account's customer ids; one row per sale
--    with a currency_amount total (no lines table), handed over at once
------------------------------------------------------------------------------
CREATE SCHEMA pos;
CREATE TABLE pos.sales (
    receipt_no  text PRIMARY KEY,
    customer_id bigint,
    total       customer_account.currency_amount NOT NULL,
    sold_at     timestamptz NOT NULL
);
CREATE TRIGGER account AFTER INSERT OR UPDATE ON pos.sales FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order('order_no=receipt_no', 'customer=id:customer_id',
    'channel=const:store-berlin', 'method=const:cash', 'total=total', 'placed_at=sold_at',
    'delivered_at=sold_at', 'sku=const:TILL', 'returnable=const:false');
SELECT * FROM check_capture('pos.sales');
INSERT INTO pos.sales VALUES ('B-0001', :berta, '49.90 EUR', '2026-03-02 15:00'),
                             ('B-0002', :carl, '5.00 EUR', '2026-03-02 15:05');
INSERT INTO pos.sales VALUES ('B-0003', :carl, '7.50 EUR', '2026-03-02 16:00');
SELECT * FROM pg_temp.order_book('B-');
SELECT pg_temp.try($$INSERT INTO pos.sales VALUES ('B-0004', 424242, '1.00 EUR', '2026-03-02 16:00')$$);
SELECT pg_temp.try($$INSERT INTO pos.sales VALUES ('B-0005', 1, '1.00 CHF', '2026-03-02 16:00')$$);
SELECT pg_temp.try($$UPDATE pos.sales SET total = '59.90 EUR' WHERE receipt_no = 'B-0001'$$);
SELECT pg_temp.try($$UPDATE pos.sales SET receipt_no = 'B-9999' WHERE receipt_no = 'B-0002'$$);

------------------------------------------------------------------------------
-- 3. A marketplace importer: buyers by their marketplace id, amounts in
--    cents plus a currency code, cancellation by a timestamp column,
--    channel from a column; the importer upserts every row on each run
------------------------------------------------------------------------------
CREATE SCHEMA market;
CREATE TABLE market.orders (
    market_order text PRIMARY KEY,
    market       text NOT NULL,
    buyer        text NOT NULL,
    buyer_name   text,
    total_cents  bigint NOT NULL,
    currency     char(3) NOT NULL,
    bought_at    timestamp NOT NULL,      -- without time zone: read in the session's zone
    shipped_at   timestamp,
    cancelled_at timestamp
);
CREATE TABLE market.lines (
    market_order text NOT NULL REFERENCES market.orders,
    pos          integer NOT NULL,
    article      text NOT NULL,
    quantity     numeric NOT NULL,
    line_cents   bigint NOT NULL,
    PRIMARY KEY (market_order, pos)
);
CREATE TRIGGER account AFTER INSERT OR UPDATE ON market.orders FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order('order_no=market_order', 'prefix=MP-',
    'customer=marketplace:buyer', 'identity_prefix=ebay:', 'create_customer=name:buyer_name,language:const:en',
    'channel=market', 'currency=currency', 'total=minor:total_cents', 'method=const:marketplace',
    'placed_at=bought_at', 'delivered_at=shipped_at', 'cancelled_at=cancelled_at', 'lines=market.lines');
CREATE TRIGGER account AFTER INSERT OR UPDATE OR DELETE ON market.lines FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order_line('order_no=market_order', 'line_key=pos', 'sku=article',
    'qty=quantity', 'line_total=minor:line_cents', 'currency=currency_of_line');
-- (the line trigger names a column that is not there: CREATE TRIGGER says so)
CREATE TRIGGER account AFTER INSERT OR UPDATE OR DELETE ON market.lines FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order_line('order_no=market_order', 'line_key=pos', 'sku=article',
    'qty=quantity', 'line_total=minor:line_cents');
SELECT * FROM check_capture('market.orders');

-- one import run, in one transaction
CREATE PROCEDURE pg_temp.import(run int) LANGUAGE sql AS $$
    INSERT INTO market.orders VALUES
        ('E-100', 'ebay', 'anna_77', 'Anna Schmidt', 5000, 'EUR', '2026-03-10 09:00', CASE WHEN run > 1 THEN '2026-03-11 09:00'::timestamp END, NULL),
        ('E-101', 'ebay', 'anna_77', 'Anna Schmidt', 1250, 'EUR', '2026-03-10 09:30', NULL, CASE WHEN run > 2 THEN '2026-03-12 10:00'::timestamp END)
    ON CONFLICT (market_order) DO UPDATE SET shipped_at = EXCLUDED.shipped_at, cancelled_at = EXCLUDED.cancelled_at;
    INSERT INTO market.lines VALUES ('E-100', 1, 'BAG-1', 2, 5000), ('E-101', 1, 'STRAP', 1, 1250)
    ON CONFLICT (market_order, pos) DO UPDATE SET quantity = EXCLUDED.quantity, line_cents = EXCLUDED.line_cents;
$$;
CALL pg_temp.import(1);
SELECT * FROM pg_temp.order_book('MP-');
CALL pg_temp.import(1);
CALL pg_temp.import(2);
CALL pg_temp.import(2);
CALL pg_temp.import(3);
CALL pg_temp.import(3);
SELECT * FROM pg_temp.order_book('MP-');
SELECT i.kind, i.value, c.full_name, c.language FROM customer_identity i JOIN customer c USING (customer_id)
WHERE i.kind = 'marketplace';
SELECT pg_temp.try($$INSERT INTO market.orders VALUES ('E-102', 'ebay', 'anna_77', 'A', 1999, 'JPY', '2026-03-10', NULL, NULL)$$,
                   $$INSERT INTO market.lines VALUES ('E-102', 1, 'X', 1, 1999)$$);
SELECT pg_temp.try($$INSERT INTO market.orders VALUES ('E-102', 'amazon', 'anna_77', 'A', 1999, 'EUR', '2026-03-10', NULL, NULL)$$);
SELECT pg_temp.try($$INSERT INTO market.orders VALUES ('E-102', 'ebay', 'anna_77', 'A', 1999, 'EUR', '2026-03-10', NULL, NULL)$$,
                   $$INSERT INTO market.lines VALUES ('E-102', 1, 'X', 3, 1999)$$);
SELECT pg_temp.try($$INSERT INTO market.orders VALUES ('E-102', 'ebay', 'anna_77', 'A', 1999, 'EUR', '2026-03-10', NULL, NULL)$$,
                   $$INSERT INTO market.lines VALUES ('E-102', 1, 'X', 1.5, 1999)$$);
SELECT pg_temp.try($$INSERT INTO market.orders VALUES ('E-102', 'ebay', 'anna_77', 'A', 1999, 'EUR', '2026-03-10', NULL, NULL)$$);

------------------------------------------------------------------------------
-- 4. An ERP with its own customer numbers, invoices, and a payment table;
--    a payment that arrives before its order is booked waits for it
------------------------------------------------------------------------------
CREATE SCHEMA erp;
CREATE TABLE erp.invoices (
    invoice_no integer PRIMARY KEY,
    cust_no    integer NOT NULL,
    cust_name  text,
    cust_mail  text,
    amount     numeric(12,2) NOT NULL,
    state      text NOT NULL,
    issued_at  date NOT NULL
);
CREATE TABLE erp.payments (
    payment_id integer PRIMARY KEY,
    invoice_no integer,
    cust_no    integer,
    amount     numeric(12,2) NOT NULL,
    currency   text NOT NULL DEFAULT 'EUR',
    state      text NOT NULL,
    paid_on    date NOT NULL
);
CREATE TRIGGER account AFTER INSERT OR UPDATE ON erp.invoices FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order('order_no=invoice_no', 'prefix=ERP-',
    'customer=external:cust_no', 'identity_prefix=erp:', 'create_customer=name:cust_name,email:cust_mail',
    'channel=const:web-de', 'total=amount', 'method=const:invoice', 'placed_at=issued_at',
    'status=state', 'status_map=draft:hold,open:place,shipped:deliver,void:cancel');
CREATE TRIGGER account AFTER INSERT OR UPDATE ON erp.payments FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_payment('payment_ref=payment_id', 'prefix=ERP-PAY-',
    'order_no=invoice_no', 'order_prefix=ERP-', 'amount=amount', 'currency=currency', 'method=const:bank_transfer',
    'channel=const:web-de', 'received_at=paid_on', 'status=state', 'status_map=pending:hold,cleared:book');
SELECT * FROM check_capture('erp.payments');
-- the ERP's customer 7 is Carl: the email links the new number to his account
BEGIN;
INSERT INTO erp.invoices VALUES (5001, 7, 'Carl Clausen', 'carl@example.de', 100.00, 'open', '2026-03-03');
INSERT INTO erp.payments VALUES (1, 5001, NULL, 40.00, 'EUR', 'cleared', '2026-03-04');
COMMIT;
-- a payment for an invoice still in draft waits; it is booked with the invoice
INSERT INTO erp.invoices VALUES (5002, 8, 'Greta Gruen', NULL, 60.00, 'draft', '2026-03-05');
INSERT INTO erp.payments VALUES (2, 5002, NULL, 60.00, 'EUR', 'cleared', '2026-03-06');
SELECT source, trigger_name, source_key, order_no FROM capture_waiting;
UPDATE erp.invoices SET state = 'open' WHERE invoice_no = 5002;
SELECT count(*) AS waiting FROM capture_waiting;
INSERT INTO erp.payments VALUES (3, 5001, NULL, 60.00, 'EUR', 'pending', '2026-03-20');
UPDATE erp.payments SET state = 'cleared' WHERE payment_id = 3;
UPDATE erp.payments SET state = 'cleared' WHERE payment_id = 3;
SELECT * FROM pg_temp.order_book('ERP-');
SELECT p.payment_ref, c.full_name, p.amount, p.order_no, p.received_at FROM payment p JOIN customer c USING (customer_id)
WHERE p.payment_ref LIKE 'ERP-%' ORDER BY 1;
SELECT i.value, c.full_name FROM customer_identity i JOIN customer c USING (customer_id) WHERE i.kind = 'external' ORDER BY 1;
SELECT pg_temp.try($$UPDATE erp.payments SET amount = 45.00 WHERE payment_id = 1$$);
SELECT pg_temp.try($$INSERT INTO erp.payments VALUES (4, 5001, NULL, -5.00, 'EUR', 'cleared', '2026-03-21')$$);
SELECT pg_temp.try($$INSERT INTO erp.payments VALUES (4, 5001, NULL, 5.00, 'CHF', 'cleared', '2026-03-21')$$);

------------------------------------------------------------------------------
-- 5. Every bad mapping names the trigger, the argument and the column, at
--    CREATE TRIGGER (structure) or at the first row (values)
------------------------------------------------------------------------------
CREATE TABLE web.bad (id int PRIMARY KEY, mail text, amount numeric, created timestamptz, flag text, n int);
CREATE FUNCTION pg_temp.trig(args text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'CREATE TRIGGER bad AFTER INSERT ON web.bad FOR EACH ROW EXECUTE FUNCTION customer_account.capture_order(' || args || ')';
    EXECUTE 'DROP TRIGGER bad ON web.bad';
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT pg_temp.trig($$'order_no=idx', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total=created'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'totl=amount'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'method=const:invoice', 'total=amount'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=iban:mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=id:mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount', 'create_customer=name:mail'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount', 'status=flag', 'status_map=done:ship'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount', 'status_map=done:deliver'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount', 'currency=const:EURO'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'lines=web.nowhere'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount', 'on_error=ignore'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total=amount', 'total=n'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:web-de', 'method=const:invoice', 'total=minor:created'$$);
SELECT pg_temp.trig($$'order_no=id', 'customer=email:mail', 'channel=const:', 'method=const:invoice', 'total=amount'$$);
SELECT pg_temp.trig($$$$);
DO $$ BEGIN
    CREATE TRIGGER bad BEFORE INSERT ON web.bad FOR EACH ROW EXECUTE FUNCTION customer_account.capture_order('order_no=id');
EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%: %', SQLSTATE, SQLERRM;
END $$;
-- a line trigger whose table no order trigger names fails at its first row
CREATE TABLE web.stray (order_id int, sku text, qty int, price numeric);
CREATE TRIGGER account AFTER INSERT ON web.stray FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order_line('order_no=order_id', 'sku=sku', 'qty=qty', 'unit_price=price');
SELECT * FROM check_capture('web.stray');
SELECT pg_temp.try($$INSERT INTO web.stray VALUES (1, 'A', 1, 1.00)$$);
-- constants and values that do not exist, found by check_capture before a row arrives
INSERT INTO web.bad VALUES (1, 'a@example.de', 1, now(), 'c', 1), (2, 'a@example.de', 1, now(), 'x', 1);
CREATE TRIGGER bad AFTER INSERT ON web.bad FOR EACH ROW EXECUTE FUNCTION customer_account.capture_order(
    'order_no=id', 'customer=email:mail', 'channel=const:web-fr', 'method=flag', 'method_map=c:card,i:invoice',
    'total=amount');
SELECT * FROM check_capture('web.bad');
SELECT pg_temp.try($$INSERT INTO web.bad VALUES (3, 'a@example.de', 1, now(), 'i', 1)$$);
DROP TRIGGER bad ON web.bad;

------------------------------------------------------------------------------
-- 6. The quarantine: a trigger with on_error=quarantine lets the shop's
--    statement pass and keeps the row with the reason; replay after the fix
------------------------------------------------------------------------------
CREATE SCHEMA imp;
CREATE TABLE imp.orders (ref text PRIMARY KEY, mail text, amount numeric, pay text, channel text, at timestamptz);
CREATE TRIGGER account AFTER INSERT OR UPDATE ON imp.orders FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order('order_no=ref', 'prefix=IMP-', 'customer=email:mail',
    'channel=channel', 'total=amount', 'method=pay', 'placed_at=at', 'on_error=quarantine');
BEGIN;
INSERT INTO imp.orders VALUES
    ('1', 'berta@example.de', 10.00, 'credit_card', 'web-de', '2026-03-15'),   -- fine
    ('2', 'berta@example.de', 10.00, 'crypto', 'web-de', '2026-03-15'),        -- no such method
    ('3', 'nobody@example.de', 10.00, 'credit_card', 'web-de', '2026-03-15'),  -- unknown customer
    ('4', 'berta@example.de', 10.00, 'cash', 'web-de', '2026-03-15'),          -- cash is not offered online
    ('5', 'berta@example.de', 10.00, 'credit_card', 'web-fr', '2026-03-15'),   -- no such channel
    ('6', 'berta@example.de', 10.005, 'credit_card', 'web-de', '2026-03-15');  -- a tenth of a cent
COMMIT;
SELECT * FROM pg_temp.order_book('IMP-');
\x on
SELECT source, trigger_name, kind, source_key, sqlstate, reason, detail, row_image ->> 'pay' AS pay, attempts
FROM capture_quarantine ORDER BY quarantine_id;
\x off
-- the fixes: the shop corrects two rows (booked at once), the DBA adds the
-- channel and registers the customer; replay books the rest
UPDATE imp.orders SET pay = 'credit_card' WHERE ref IN ('2', '4');
SELECT add_channel('web-fr', 'webshop', 'EUR');
SELECT register_customer('Nobody Known', 'nobody@example.de', NULL, 'en', '2025-01-01') IS NOT NULL AS registered;
\x on
SELECT * FROM replay_quarantine() ORDER BY 1;
\x off
SELECT quarantine_id, source_key, resolved_at IS NOT NULL AS resolved, resolution, attempts FROM capture_quarantine ORDER BY 1;
SELECT * FROM pg_temp.order_book('IMP-');
-- returns: booked through accept_return(); a return the rules refuse waits here with its reason
CREATE TABLE imp.returns (rma text PRIMARY KEY, ref text, sku text, qty int, store text);
CREATE TRIGGER account AFTER INSERT OR UPDATE ON imp.returns FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_return('return_no=rma', 'order_no=ref', 'order_prefix=IMP-', 'sku=sku',
    'qty=qty', 'channel=store');
SELECT trigger_name, capture, ok, problem FROM check_capture('imp.returns');
INSERT INTO imp.returns VALUES ('R-1', '1', 'ORDER', 1, 'store-berlin');
\x on
SELECT kind, source_key, sqlstate, reason FROM capture_quarantine WHERE resolved_at IS NULL;
\x off
-- a delivered order's return is booked at once, as a till would book it
INSERT INTO imp.orders VALUES ('7', 'berta@example.de', 20.00, 'credit_card', 'web-de', now() - interval '2 days');
SELECT mark_delivered('IMP-7', now() - interval '1 day');
INSERT INTO imp.returns VALUES ('R-2', '7', 'ORDER', 1, 'store-berlin');
UPDATE imp.returns SET store = 'store-berlin' WHERE rma = 'R-2';   -- written again: books nothing twice
SELECT r.return_no, r.order_no, r.status, l.sku, l.qty FROM return_request r JOIN return_line l USING (return_no)
WHERE r.return_no = 'R-2';
SELECT entry_type, amount, order_no FROM ledger WHERE order_no = 'IMP-7' ORDER BY entry_id;

------------------------------------------------------------------------------
-- 7. The back-fill: a table with history before the trigger existed, booked
--    through the same path in batches; an interrupted run resumes
------------------------------------------------------------------------------
CREATE SCHEMA old;
CREATE TABLE old.orders (no integer PRIMARY KEY, mail text, total numeric(10,2), placed date, state text);
CREATE TABLE old.items (no integer NOT NULL, sku text, n integer, price numeric(10,2));
CREATE INDEX ON old.items (no);
INSERT INTO old.orders SELECT g, 'buyer' || (g % 7) || '@example.de', 3 * (g % 5 + 1), date '2026-01-01' + g,
    CASE WHEN g % 10 = 0 THEN 'cancelled' ELSE 'done' END FROM generate_series(1, 25) g;
INSERT INTO old.items SELECT g, 'SKU-' || k, 1, (g % 5 + 1) FROM generate_series(1, 25) g, generate_series(1, 3) k;
CREATE TRIGGER account AFTER INSERT OR UPDATE ON old.orders FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order('order_no=no', 'prefix=OLD-', 'customer=email:mail',
    'create_customer=name:mail', 'channel=const:web-de', 'total=total', 'method=const:credit_card',
    'placed_at=placed', 'status=state', 'status_map=done:deliver,cancelled:cancel', 'lines=old.items');
CREATE TRIGGER account AFTER INSERT OR UPDATE OR DELETE ON old.items FOR EACH ROW
EXECUTE FUNCTION customer_account.capture_order_line('order_no=no', 'sku=sku', 'qty=n', 'unit_price=price');
SELECT pg_temp.try($$SELECT * FROM customer_account.capture_backfill('old.items')$$);
SELECT * FROM capture_backfill('old.orders', 10);
-- interrupted: the second batch rolls back, and the next call starts where the first ended
BEGIN;
SELECT * FROM capture_backfill('old.orders', 10);
ROLLBACK;
SELECT source, trigger_name, last_key, rows_done FROM capture_backfill_state;
SELECT * FROM capture_backfill('old.orders', 10);
SELECT * FROM capture_backfill('old.orders', 10);
SELECT * FROM capture_backfill('old.orders');          -- again, all of it: nothing twice
SELECT count(*) AS orders, count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
       sum(minor_units(total)) AS cents FROM orders WHERE order_no LIKE 'OLD-%';
SELECT count(*) AS "lines booked" FROM order_line WHERE order_no LIKE 'OLD-%';
SELECT count(DISTINCT customer_id) AS "customers created" FROM orders WHERE order_no LIKE 'OLD-%';
-- the README's loop, one committed batch at a time (all booked already)
DO $$ BEGIN
    WHILE NOT (SELECT bool_and(done) FROM customer_account.capture_backfill('old.orders', 7)) LOOP
        COMMIT;
    END LOOP;
END $$;
SELECT count(*) AS "state left behind" FROM capture_backfill_state;
-- the payments of the ERP, back-filled: all booked already
SELECT * FROM capture_backfill('erp.payments');

------------------------------------------------------------------------------
-- 8. Who booked: role in effect, session role, channel, application
------------------------------------------------------------------------------
CREATE ROLE regress_ca_webshop;
GRANT USAGE ON SCHEMA web TO regress_ca_webshop;
GRANT SELECT, INSERT, UPDATE ON web.orders, web.order_items TO regress_ca_webshop;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA web TO regress_ca_webshop;
SET application_name = 'webshop-prod';
SET ROLE regress_ca_webshop;
BEGIN;
INSERT INTO web.orders (email, billing_name, grand_total, payment_code, created_at)
VALUES ('dora@example.de', 'Dora Dietz', 8.00, 'cc', '2026-03-20 10:00') RETURNING id AS web_id \gset
INSERT INTO web.order_items (order_id, sku, qty, price) VALUES (:web_id, 'PIN', 1, 8.00);
COMMIT;
UPDATE web.orders SET status = 'cancelled' WHERE id = :web_id;
RESET ROLE;
RESET application_name;
-- "who refunded this?" in one query
SELECT l.entry_type, l.amount, l.channel, l.booked_by, l.session_role = session_user AS by_this_login, l.application_name
FROM ledger l WHERE l.order_no = 'WEB-' || :web_id ORDER BY l.entry_id;
DROP OWNED BY regress_ca_webshop;
DROP ROLE regress_ca_webshop;

-- the books agree with themselves after everything above
SELECT * FROM verify_balances();
SELECT count(*) AS pending_keys FROM capture_pending;

-- a duplicate account merged away: the POS's old id books on the survivor
-- (after the check above: the books after a merge are merge_customers' own tests)
SELECT register_customer('Carl C.', NULL, NULL, 'de', '2025-06-01') AS carl_dup \gset
SELECT merge_customers(:carl, :carl_dup);
INSERT INTO pos.sales VALUES ('B-0010', :carl_dup, '3.00 EUR', '2026-03-25 10:00');
SELECT order_no, customer_id = :carl AS on_the_survivor FROM orders WHERE order_no = 'B-0010';
