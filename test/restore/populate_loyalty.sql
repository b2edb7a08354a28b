-- Loyalty rows for the dump/restore test, loaded after populate.sql (which
-- the 1.0.0 upgrade fixture also uses, so it stays free of loyalty): the
-- programme's configuration and every kind of loyalty row: lots pending,
-- available and expired, an earning per order, a redemption, an expiry
-- booking, a cancelled order's reversal, a reactivation credit with its
-- outbox event.  A restore must neither credit the restored lines again
-- nor lose any of it.
\set ON_ERROR_STOP on
SET search_path = customer_account, public;
SET TimeZone = 'UTC';

SELECT set_loyalty_terms('EUR', '0.01 EUR', 30, 0);
SELECT set_loyalty_terms('CHF', '0.01 CHF');
SELECT add_earn_rule('base', 1);
SELECT add_earn_rule('stores', 2, 'store');
SELECT add_earn_rule('gift-cards', 0, NULL, 'GIFT-%');
SELECT add_loyalty_tier('member', 'EUR', '0.00 EUR');
SELECT add_points_multiplier('member-bonus', 1.5, 'member');
SELECT add_reactivation_rule('back', 'webshop', 15, 'store', 1, 365, '5.00 EUR');

-- Anna (1): a store purchase 60 days ago (expired by now), one 5 days ago,
-- back in the web shop 19 days after her last web order: a credit
SELECT place_order('LOY-1', 1, 'store-berlin', '[{"sku":"SCARF","qty":1,"unit_price":"40.00 EUR"}]', 'cash', now() - interval '60 days');
SELECT place_order('LOY-2', 1, 'store-berlin', '[{"sku":"GLOVES","qty":2,"unit_price":"25.00 EUR"}]', 'cash', now() - interval '5 days');
SELECT place_order('LOY-3', 1, 'web-de', '[{"sku":"COAT","qty":1,"unit_price":"120.00 EUR"},{"sku":"GIFT-10","qty":1,"unit_price":"10.00 EUR"}]',
                   'credit_card', now() - interval '1 day');
SELECT redeem_points(1, 50, 'store-berlin');
SELECT expire_points();
-- Ben (2): an order cancelled, its points taken back; Carla (3) earns in CHF
SELECT place_order('LOY-4', 2, 'web-de', '[{"sku":"BOOK","qty":3,"unit_price":"12.00 EUR"}]', 'credit_card', now() - interval '2 days');
SELECT cancel_order('LOY-4', now() - interval '1 day');
SELECT place_order('LOY-5', 3, 'web-ch', '[{"sku":"KNIFE","qty":1,"unit_price":"80.00 CHF"}]', 'credit_card', now() - interval '3 days');

DO $$
BEGIN
    IF (SELECT count(DISTINCT kind) FROM customer_account.loyalty_entry) < 5 THEN
        RAISE EXCEPTION 'the loyalty rows lack a kind of entry';
    END IF;
    IF EXISTS (SELECT 1 FROM customer_account.verify_loyalty()) THEN
        RAISE EXCEPTION 'verify_loyalty() is not empty before the dump';
    END IF;
END $$;
