-- Every cache of the extension in one session.  A backend has room for ten
-- relcache callbacks for the server and all its libraries together, and
-- running out ends the session (FATAL).  The extension listens through one
-- callback (relcache_watch.c) whatever it caches; this file touches every
-- cache in one session: the relation OIDs of the read path, the
-- configuration, the return policy and the return reads, loyalty terms and
-- reads, capture maps, role grants and the restore lookups.  It ran out
-- (FATAL: out of relcache_callback_list slots) when each cache registered
-- its own callback.
SET client_min_messages = warning;
DROP EXTENSION customer_account CASCADE;
CREATE EXTENSION customer_account;
RESET client_min_messages;
SET search_path = customer_account, public;
SELECT add_channel('web', 'webshop', 'EUR');
SELECT add_channel('till', 'store', 'EUR');
SELECT set_loyalty_terms('EUR', '0.01 EUR');
SELECT add_earn_rule('standard', 1);
SELECT register_customer('Anna', 'anna@example.com') AS anna \gset
-- configuration, read path, restore lookups, loyalty earning (config + terms)
SELECT place_order('O-1', :anna, 'web', '[{"sku":"MUG","qty":2,"unit_price":"10.00 EUR"}]', 'credit_card', now() - interval '3 days');
SELECT mark_delivered('O-1', now() - interval '2 days');
SELECT currency, balance, lifetime_revenue FROM balance(:anna);
SELECT method, allowed FROM payment_options(:anna, '10.00 EUR', 'web') WHERE method = 'invoice';
-- loyalty reads
SELECT available FROM loyalty_points(:anna);
-- return policy and the return reads
SELECT action, refund, reason_code FROM decide_return('O-1', 'MUG', 1, 'till');
SELECT action, refund FROM accept_return('O-1', 'MUG', 1, 'till');
-- role grants (channel_guard) under a profile role
CREATE ROLE one_session_till;
SELECT grant_profile('one_session_till', 'pos', 'till');
SET ROLE one_session_till;
SELECT place_order('T-1', :anna, 'till', '[{"sku":"CUP","qty":1,"unit_price":"4.00 EUR"}]', 'cash');
RESET ROLE;
-- capture maps
CREATE TABLE pg_temp.shop_orders (id int PRIMARY KEY, email text NOT NULL, total numeric(10,2) NOT NULL,
    status text NOT NULL DEFAULT 'pending');
CREATE TABLE pg_temp.shop_items (item_id int PRIMARY KEY, order_id int NOT NULL, sku text NOT NULL,
    qty int NOT NULL, price numeric(10,2) NOT NULL);
CREATE TRIGGER account AFTER INSERT OR UPDATE ON pg_temp.shop_orders FOR EACH ROW EXECUTE FUNCTION capture_order(
    'order_no=id', 'prefix=SHOP-', 'customer=email:email', 'channel=const:web', 'total=total',
    'method=const:credit_card', 'status=status', 'status_map=pending:place', 'lines=pg_temp.shop_items');
CREATE TRIGGER account AFTER INSERT OR UPDATE OR DELETE ON pg_temp.shop_items FOR EACH ROW EXECUTE FUNCTION capture_order_line(
    'order_no=order_id', 'line_key=item_id', 'sku=sku', 'qty=qty', 'unit_price=price');
BEGIN;
INSERT INTO pg_temp.shop_orders (id, email, total) VALUES (1, 'anna@example.com', 15.00);
INSERT INTO pg_temp.shop_items VALUES (1, 1, 'BAG', 1, 15.00);
COMMIT;
SELECT order_no, total FROM orders ORDER BY order_no;
-- the session is still alive, and the books agree
SELECT 'still here' AS session;
SELECT * FROM verify_balances();
DROP OWNED BY one_session_till;
DROP ROLE one_session_till;
