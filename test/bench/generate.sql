-- The data generator: customers :lo .. :hi - 1 with an omnichannel history,
-- loaded through the product's own posting path (plain INSERTs into the
-- order, line and payment tables, so the C triggers book every event).
-- Deterministic: every choice is a hash of the customer and order number.
-- Run it in one transaction (psql -1): the deferred total check runs at commit.
--   per customer: 2-6 orders over 18 months on web, app, stores, marketplaces
--   and the hotline; ~10% in CHF; invoices mostly paid, some late, some not
--   at all (overdue); a few cancellations; returns of recent orders at the
--   tills.  About 10 ledger rows each.
--   loyalty on (test/bench/loyalty.sql): every line earns per rule, the store
--   regulars who come back online get the reactivation credit, cancellations
--   take points back, a tenth of the customers redeem half of their points.
\set ON_ERROR_STOP on
SET LOCAL search_path = customer_account, public;
SELECT NOT EXISTS (SELECT 1 FROM customer_account.loyalty_terms) AS need_loyalty \gset
\if :need_loyalty
\ir loyalty.sql
\endif
INSERT INTO customer_account.customer (customer_id, full_name, email, language, customer_since)
SELECT i, 'Customer ' || i, 'c' || i || '@example.com', CASE WHEN i % 4 = 0 THEN 'en' ELSE 'de' END,
       now() - interval '1 day' * (30 + (hashint8(i) & 1023))
FROM generate_series(:lo::bigint, :hi::bigint - 1) i;
INSERT INTO customer_account.customer_identity (kind, value, customer_id)
SELECT 'email', 'c' || i || '@example.com', i FROM generate_series(:lo::bigint, :hi::bigint - 1) i;

CREATE TEMP TABLE gen_orders ON COMMIT DROP AS
SELECT 'G' || i || '-' || k AS order_no, i AS customer_id, k,
       CASE WHEN i % 10 = 7 THEN 'web-ch'
            ELSE (ARRAY['web-de', 'web-de', 'web-at', 'app-de', 'store-berlin', 'store-hamburg', 'store-munich',
                        'ebay', 'amazon', 'hotline'])[1 + ((h >> 3) & 1023) % 10] END AS channel,
       h, now() - interval '1 hour' * (24 + ((h >> 13) & 16383) % 13000) AS placed_at,
       1 + ((h >> 27) & 3) % 3 AS nlines
FROM generate_series(:lo::bigint, :hi::bigint - 1) i,
     LATERAL generate_series(1, 2 + (hashint8(i * 7) & 7) % 5) k,
     LATERAL (SELECT abs(hashint8(i * 100 + k)) AS h) x;
ALTER TABLE gen_orders ADD COLUMN method text, ADD COLUMN currency text;
UPDATE gen_orders SET currency = CASE channel WHEN 'web-ch' THEN 'CHF' ELSE 'EUR' END,
    method = CASE
        WHEN channel LIKE 'store-%' THEN (ARRAY['cash', 'credit_card', 'invoice'])[1 + (h >> 40) % 3]
        WHEN channel IN ('ebay', 'amazon') THEN 'marketplace'
        WHEN channel = 'hotline' THEN (ARRAY['invoice', 'prepayment', 'cash_on_delivery'])[1 + (h >> 40) % 3]
        ELSE (ARRAY['invoice', 'invoice', 'credit_card', 'paypal', 'direct_debit'])[1 + (h >> 40) % 5] END;

CREATE TEMP TABLE gen_lines ON COMMIT DROP AS
SELECT o.order_no, o.customer_id, l AS line_no, 'SKU-' || ((o.h >> l) & 4095) AS sku, 1 + ((o.h >> (l * 3)) & 1) AS qty,
       customer_account.currency_amount_from_minor_units(500 + ((o.h >> (l * 5)) & 16383), o.currency) AS unit_price
FROM gen_orders o, LATERAL generate_series(1, o.nlines) l;

-- orders in time order, then their lines; the deferred check sees both at commit
INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)
SELECT o.order_no, o.customer_id, o.channel, o.method, t.total, o.placed_at
FROM gen_orders o
JOIN (SELECT order_no, customer_account.sum(unit_price * qty) AS total FROM gen_lines GROUP BY order_no) t USING (order_no)
ORDER BY o.placed_at;
INSERT INTO customer_account.order_line (order_no, line_no, customer_id, sku, qty, unit_price)
SELECT order_no, line_no, customer_id, sku, qty, unit_price FROM gen_lines;

-- payments of invoices: 75% in full (some late), 10% part, 15% not at all;
-- a bank transfer for a store's invoice arrives through the web shop (a till takes no transfers)
INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)
SELECT 'PAY-' || o.order_no, o.customer_id,
       CASE WHEN (o.h >> 50) % 20 < 15 THEN o.total ELSE o.total / 2 END,
       'bank_transfer', CASE WHEN o.channel LIKE 'store-%' THEN 'web-de' ELSE o.channel END, o.order_no,
       o.placed_at + interval '1 day' * (3 + (o.h >> 45) % 30)
FROM (SELECT g.*, x.total FROM gen_orders g JOIN customer_account.orders x USING (order_no)) o
WHERE o.method IN ('invoice', 'direct_debit', 'cash_on_delivery', 'prepayment') AND (o.h >> 50) % 20 < 17
  AND o.placed_at + interval '1 day' * (3 + (o.h >> 45) % 30) < now()
ORDER BY 7;

-- a few cancellations of undelivered orders, most orders delivered
UPDATE customer_account.orders o SET cancelled_at = o.placed_at + interval '2 hours'
FROM gen_orders g WHERE g.order_no = o.order_no AND (g.h >> 55) % 40 = 0;
UPDATE customer_account.orders o SET delivered_at = o.placed_at + interval '2 days'
FROM gen_orders g WHERE g.order_no = o.order_no AND o.cancelled_at IS NULL AND (g.h >> 55) % 40 <> 0;
-- loyalty: a tenth of the customers turn half of their available points into store credit
SELECT count(customer_account.redeem_points(a.customer_id, p.available / 2, 'web-de')) AS redemptions
FROM customer_account.loyalty_account a, LATERAL customer_account.loyalty_points(a.customer_id) p
WHERE a.customer_id >= :lo AND a.customer_id < :hi AND a.customer_id % 10 = 3 AND p.available >= 200 \gset
-- returns through accept_return(): the first line of about one in four orders
-- of the last 60 days comes back at a till (or by parcel to the Swiss shop);
-- refused returns (window, not delivered) are recorded too
CREATE TEMP TABLE gen_returns ON COMMIT DROP AS
SELECT r.* FROM gen_orders g
JOIN gen_lines l ON l.order_no = g.order_no AND l.line_no = 1,
LATERAL customer_account.accept_return(g.order_no, l.sku, 1,
    CASE WHEN g.currency = 'CHF' THEN 'web-ch' ELSE (ARRAY['store-berlin', 'store-hamburg'])[1 + (g.h >> 33) % 2] END) r
WHERE g.placed_at > now() - interval '60 days' AND (g.h >> 35) % 4 = 0
ORDER BY g.placed_at;
DROP TABLE gen_returns;
DROP TABLE gen_lines;
DROP TABLE gen_orders;
