-- Benchmark set-up: channels and a generous credit policy for the load (the
-- load replays history; refusals would only stop it), restored afterwards.
SELECT customer_account.add_channel(c, k::customer_account.channel_kind, cur)
FROM (VALUES ('web-de', 'webshop', 'EUR'), ('web-at', 'webshop', 'EUR'), ('app-de', 'app', 'EUR'),
             ('store-berlin', 'store', 'EUR'), ('store-hamburg', 'store', 'EUR'), ('store-munich', 'store', 'EUR'),
             ('ebay', 'marketplace', 'EUR'), ('amazon', 'marketplace', 'EUR'), ('hotline', 'callcenter', 'EUR'),
             ('web-ch', 'webshop', 'CHF')) v(c, k, cur);
UPDATE customer_account.credit_policy SET credit_limit = 1e9, first_order_limit = 1e9, overdue_tolerance = 1e9,
    new_customer_days = 0, new_customer_paid_orders = 0, max_return_rate = 1, dunning_block_level = 0;
-- the loyalty programme: every order of the load and of the workloads earns
\ir loyalty.sql
