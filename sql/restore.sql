--
-- Restore: pg_restore loads the ledger before the orders and payments that
-- produced it, each table in a transaction of its own, with the triggers
-- on.  A row whose ledger entry exists is checked against it and not booked
-- again; a restored order takes its lines in a later transaction, once;
-- a double booking fails loudly.  (The full pg_dump/pg_restore round trip
-- is test/pgtap/20_restore.sql.)  Here the restore is played by hand: the
-- ledger rows first, then the rows that produced them.
--
SET search_path = customer_account, public;
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SET TimeZone = 'UTC';

CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- a ledger row as pg_restore's COPY brings it
CREATE FUNCTION pg_temp.restored_entry(entry_type text, customer_id bigint, amount currency_amount,
        event_at timestamptz, order_no text, payment_ref text DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO customer_account.ledger (customer_id, currency, entry_type, amount, event_at, channel, order_no, payment_ref)
    VALUES (customer_id, customer_account.currency_of(amount), entry_type, amount, event_at, 'web', order_no, payment_ref)
$$;

CREATE FUNCTION pg_temp.entries() RETURNS text LANGUAGE sql AS $$
    SELECT count(*) || ' ledger rows, ' || (SELECT count(*) FROM customer_account.open_item) || ' open items, balance '
           || coalesce((SELECT sum(balance) FROM customer_account.account_state), 0)
    FROM customer_account.ledger
$$;

SELECT add_channel('web', 'webshop', 'EUR');
SELECT register_customer('Anna', 'anna@example.com');
SELECT register_customer('Ben', 'ben@example.com');
SELECT register_customer('Ben twice', 'ben2@example.com');
SELECT set_credit_limit(c, '5000.00 EUR') FROM generate_series(1, 3) c;

-- pg_dump keeps the position of every identity sequence
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) x(oid) JOIN pg_class c ON c.oid = x.oid
WHERE e.extname = 'customer_account' AND c.relkind = 'S' ORDER BY 1;

-- a live order, booked by its INSERT
SELECT place_order('L-1', 1, 'web', '[{"sku":"A","qty":1,"unit_price":"40.00 EUR"}]', 'invoice', '2026-11-01 10:00+00');
SELECT pg_temp.entries();

-- a restored order: its ledger entry first (one transaction), then the
-- order (another one, without lines: the total is not checked), then its
-- lines (a third one)
SELECT pg_temp.restored_entry('order', 1, '100.00 EUR', '2026-11-02 10:00+00', 'R-1');
SELECT pg_temp.entries();
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('R-1', 1, 'web', 'invoice', '100.00 EUR', '2026-11-02 10:00+00');
SELECT pg_temp.entries();
BEGIN;
INSERT INTO order_line (order_no, line_no, customer_id, sku, qty, unit_price) VALUES ('R-1', 1, 1, 'A', 2, '30.00 EUR'),
    ('R-1', 2, 1, 'B', 1, '40.00 EUR');
-- not beyond the order's total
SELECT pg_temp.try($$INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('R-1', 3, 'C', 1, '0.01 EUR')$$);
COMMIT;
SELECT order_no, line_no, customer_id, sku, qty, unit_price FROM order_line WHERE order_no = 'R-1' ORDER BY line_no;
-- once restored with its lines, an order takes no more, like a live one
SELECT pg_temp.try($$INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('R-1', 3, 'C', 1, '0.01 EUR')$$);
SELECT pg_temp.try($$INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('L-1', 2, 'C', 1, '0.01 EUR')$$);
-- an order changed in this transaction (delivered, or re-pointed by a
-- merge) was still booked in an earlier one: no line either
BEGIN;
SELECT mark_delivered('L-1', '2026-11-02 10:00+00');
SELECT pg_temp.try($$INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('L-1', 2, 'C', 1, '0.01 EUR')$$);
ROLLBACK;
SELECT register_customer('Dora', 'dora@example.com');
SELECT register_customer('Dora again', 'dora2@example.com');
SELECT place_order('M-1', 5, 'web', '[{"sku":"F","qty":1,"unit_price":"5.00 EUR"}]', 'credit_card', '2026-11-01 11:00+00');
BEGIN;
SELECT merge_customers(4, 5);
SELECT pg_temp.try($$INSERT INTO customer_account.order_line (order_no, line_no, sku, qty, unit_price) VALUES ('M-1', 2, 'GIFT', 1, '0.00 EUR')$$);
ROLLBACK;
-- the same number again is the primary key's business
SELECT pg_temp.try($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
    VALUES ('R-1', 1, 'web', 'invoice', '100.00 EUR', '2026-11-02 10:00+00')$$);
SELECT pg_temp.entries();

-- a restored order must be the one its entry books
SELECT pg_temp.restored_entry('order', 1, '50.00 EUR', '2026-11-03 10:00+00', 'R-2');
SELECT pg_temp.try($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
    VALUES ('R-2', 1, 'web', 'invoice', '60.00 EUR', '2026-11-03 10:00+00')$$);
SELECT pg_temp.try($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
    VALUES ('R-2', 1, 'web', 'invoice', '50.00 EUR', '2026-11-03 11:00+00')$$);
SELECT pg_temp.try($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
    VALUES ('R-2', 2, 'web', 'invoice', '50.00 EUR', '2026-11-03 10:00+00')$$);
-- a merge re-points orders but not the ledger: the survivor's order is the duplicate's entry
SELECT merge_customers(2, 3);
SELECT pg_temp.restored_entry('order', 3, '70.00 EUR', '2026-11-04 10:00+00', 'R-3');
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('R-3', 2, 'web', 'invoice', '70.00 EUR', '2026-11-04 10:00+00');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price) VALUES ('R-3', 1, 'D', 1, '70.00 EUR');
SELECT order_no, line_no, customer_id FROM order_line WHERE order_no = 'R-3';

-- a cancelled order is restored as an INSERT with cancelled_at; the
-- ledger must book its cancellation, and only then
SELECT pg_temp.restored_entry('order', 1, '20.00 EUR', '2026-11-05 10:00+00', 'R-4');
SELECT pg_temp.restored_entry('cancel', 1, '-20.00 EUR', '2026-11-06 10:00+00', 'R-4');
SELECT pg_temp.restored_entry('order', 1, '20.00 EUR', '2026-11-05 10:00+00', 'R-5');
SELECT pg_temp.restored_entry('order', 1, '20.00 EUR', '2026-11-05 10:00+00', 'R-6');
SELECT pg_temp.restored_entry('cancel', 1, '-20.00 EUR', '2026-11-06 10:00+00', 'R-6');
SELECT pg_temp.entries();
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at, cancelled_at, delivered_at)
VALUES ('R-4', 1, 'web', 'invoice', '20.00 EUR', '2026-11-05 10:00+00', '2026-11-06 10:00+00', NULL);
SELECT pg_temp.try($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at, cancelled_at)
    VALUES ('R-5', 1, 'web', 'invoice', '20.00 EUR', '2026-11-05 10:00+00', '2026-11-06 10:00+00')$$);
SELECT pg_temp.try($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
    VALUES ('R-6', 1, 'web', 'invoice', '20.00 EUR', '2026-11-05 10:00+00')$$);
-- a delivered order is restored with delivered_at
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at, delivered_at)
VALUES ('R-5', 1, 'web', 'invoice', '20.00 EUR', '2026-11-05 10:00+00', '2026-11-07 10:00+00');
SELECT pg_temp.entries();
-- a new order inserted as cancelled is still refused
SELECT pg_temp.try($$INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at, cancelled_at)
    VALUES ('N-1', 1, 'web', 'invoice', '20.00 EUR', '2026-11-05 10:00+00', '2026-11-06 10:00+00')$$);

-- a restored payment: its entry takes the money off the balance
SELECT pg_temp.restored_entry('payment', 1, '-25.00 EUR', '2026-11-08 10:00+00', 'R-1', 'P-R');
SELECT pg_temp.try($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)
    VALUES ('P-R', 1, '26.00 EUR', 'bank_transfer', 'web', 'R-1', '2026-11-08 10:00+00')$$);
SELECT pg_temp.try($$INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)
    VALUES ('P-R', 1, '25.00 EUR', 'bank_transfer', 'web', 'R-1', '2026-11-09 10:00+00')$$);
SELECT pg_temp.entries();
INSERT INTO payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)
VALUES ('P-R', 1, '25.00 EUR', 'bank_transfer', 'web', 'R-1', '2026-11-08 10:00+00');
SELECT pg_temp.entries();

-- a double booking fails loudly
SELECT pg_temp.try($$SELECT pg_temp.restored_entry('order', 1, '40.00 EUR', '2026-11-01 10:00+00', 'L-1')$$);
SELECT record_payment('P-1', 1, '10.00 EUR', 'bank_transfer', 'web', 'L-1', '2026-11-10 10:00+00');
SELECT pg_temp.try($$SELECT pg_temp.restored_entry('payment', 1, '-10.00 EUR', '2026-11-10 10:00+00', 'L-1', 'P-1')$$);

-- restored in one transaction with its ledger (pg_restore --single-transaction):
-- the lines must come in that transaction, as for a new order
BEGIN;
SELECT pg_temp.restored_entry('order', 1, '15.00 EUR', '2026-11-11 10:00+00', 'R-7');
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('R-7', 1, 'web', 'invoice', '15.00 EUR', '2026-11-11 10:00+00');
INSERT INTO order_line (order_no, line_no, sku, qty, unit_price) VALUES ('R-7', 1, 'E', 3, '5.00 EUR');
COMMIT;
BEGIN;
SELECT pg_temp.restored_entry('order', 1, '15.00 EUR', '2026-11-11 10:00+00', 'R-8');
INSERT INTO orders (order_no, customer_id, channel, payment_method, total, placed_at)
VALUES ('R-8', 1, 'web', 'invoice', '15.00 EUR', '2026-11-11 10:00+00');
COMMIT;
SELECT order_no FROM orders WHERE order_no IN ('R-7', 'R-8');

-- nothing above booked anything a second time
SELECT entry_type, order_no, payment_ref, amount FROM ledger ORDER BY entry_id;
