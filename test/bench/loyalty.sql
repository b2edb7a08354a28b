-- The benchmark's loyalty programme (idempotent): the load and the write-path
-- workload run with loyalty on.  Read by setup.sql once, and by generate.sql
-- when a chunk runs on a database without it.
SELECT customer_account.set_loyalty_terms('EUR', '0.01 EUR', 730);
SELECT customer_account.set_loyalty_terms('CHF', '0.01 CHF', 730);
SELECT customer_account.add_earn_rule('standard', 1);
SELECT customer_account.add_earn_rule('stores', 2, 'store');
SELECT customer_account.add_earn_rule('marketplaces', 0.5, 'marketplace');
SELECT customer_account.add_earn_rule('excluded', 0, NULL, 'SKU-40%');
SELECT customer_account.add_loyalty_tier(t, 'EUR', a::customer_account.currency_amount)
FROM (VALUES ('member', '0.00 EUR'), ('silver', '500.00 EUR'), ('gold', '1500.00 EUR')) v(t, a);
SELECT customer_account.add_points_multiplier('gold-bonus', 1.5, 'gold');
SELECT customer_account.add_points_multiplier('app-weeks', 2, NULL, 'app', NULL, date_trunc('day', now()) - interval '120 days',
                                             date_trunc('day', now()) - interval '90 days');
SELECT customer_account.add_reactivation_rule('welcome-back', 'webshop', 180, 'store', 2, 365, '5.00 EUR');
