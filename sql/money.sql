--
-- currency_amount: input, output, arithmetic, comparison, aggregates and
-- every bad input of the contract, each with its SQLSTATE.
--
SET search_path = customer_account, public;
SET extra_float_digits = 0;

-- try(sql): the SQLSTATE and message of a statement that must fail
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

-- text forms: amount first or code first, spaces around, signs
SELECT v, v::currency_amount AS parsed
FROM (VALUES ('19.99 EUR'), ('-5.00 EUR'), ('1500 JPY'), ('1.250 BHD'), ('EUR 19.99'),
             ('  7 EUR  '), ('EUR -0.5'), ('+3.1 USD'), ('.5 CHF'), ('12. CHF'),
             ('0.0001 CLF'), ('eur 1'), ('-0 EUR'), ('1 KWD'), ('100 KRW')) t(v);

-- output always has exactly the currency's minor digits
SELECT currency_amount(1, c) AS one, currency_amount(-0.5, 'EUR') AS half
FROM (VALUES ('EUR'), ('JPY'), ('BHD'), ('CLF'), ('CHF'), ('UYW')) t(c);

-- extremes of the 64-bit range
SELECT '92233720368547758.07 EUR'::currency_amount AS max_eur,
       '-92233720368547758.08 EUR'::currency_amount AS min_eur,
       '9223372036854775807 JPY'::currency_amount AS max_jpy,
       '-922337203685477.5808 CLF'::currency_amount AS min_clf;

-- bad input: garbage, empty, unknown currency, too many decimals, overflow
SELECT v, pg_temp.try(format('SELECT %L::customer_account.currency_amount', v)) AS result
FROM (VALUES (''), ('   '), ('EUR'), ('19.99'), ('abc EUR'), ('19.99 EURO'), ('19.99 XYZ'),
             ('19.99 EU'), ('1.999 EUR'), ('1.5 JPY'), ('19,99 EUR'), ('1 2 EUR'),
             ('EUR 1 EUR'), ('- EUR'), ('92233720368547758.08 EUR'),
             ('-92233720368547758.09 EUR'), ('99999999999999999999 JPY'),
             ('1e3 EUR'), ('19.99 EUR x'), ('19.990 EUR'), ('19.99 123')) t(v);

-- constructors and accessors
SELECT currency_amount(19.99, 'EUR') AS a, currency_amount(1500, 'jpy') AS b,
       currency_of('1.250 BHD'), amount_of('1.250 BHD'), amount_of('-5 EUR'),
       minor_units('19.99 EUR'), minor_units('1500 JPY'),
       currency_amount_from_minor_units(1999, 'EUR') AS from_units;
SELECT pg_temp.try($$SELECT customer_account.currency_amount(1.005, 'EUR')$$);
SELECT pg_temp.try($$SELECT customer_account.currency_amount(1, 'XXX')$$);
SELECT pg_temp.try($$SELECT customer_account.currency_amount('NaN', 'EUR')$$);
SELECT pg_temp.try($$SELECT customer_account.currency_amount('Infinity', 'EUR')$$);
SELECT pg_temp.try($$SELECT customer_account.currency_amount(1e17, 'EUR')$$);
SELECT count(*) AS currencies, count(*) FILTER (WHERE minor_units = 0) AS zero_decimal,
       count(*) FILTER (WHERE minor_units = 3) AS three_decimal,
       bool_and(code ~ '^[A-Z]{3}$') AS well_formed
FROM currencies();
-- the table is sorted and free of duplicates
SELECT count(*) AS out_of_order FROM (
    SELECT code, lag(code) OVER (ORDER BY ordinality) AS prev
    FROM currencies() WITH ORDINALITY) s WHERE prev >= code;

-- arithmetic
SELECT '19.99 EUR'::currency_amount + '0.01 EUR' AS add,
       '5.00 EUR'::currency_amount - '7.50 EUR' AS sub,
       -'5.00 EUR'::currency_amount AS neg,
       abs('-5.00 EUR'::currency_amount) AS abs,
       '19.99 EUR'::currency_amount * 3 AS mul_int,
       3 * '19.99 EUR'::currency_amount AS int_mul,
       '19.99 EUR'::currency_amount * 3000000000::bigint AS mul_bigint,
       '19.99 EUR'::currency_amount * 0.19 AS mul_num,
       1.5 * '1.01 EUR'::currency_amount AS num_mul;
-- half to even at the minor unit, both signs
SELECT x, x * 0.5 AS half, x / 2 AS div2, x / 2.0 AS div2num, x / 4 AS div4
FROM (VALUES ('0.01 EUR'::currency_amount), ('0.03 EUR'), ('0.05 EUR'), ('-0.01 EUR'),
             ('-0.03 EUR'), ('0.02 EUR'), ('0.06 EUR'), ('-0.06 EUR'), ('1 JPY'), ('3 JPY')) t(x);
SELECT '10.00 EUR'::currency_amount / 3 AS third, '-10.00 EUR'::currency_amount / 3 AS neg_third,
       '10.00 EUR'::currency_amount / -3 AS div_neg, '1.00 EUR'::currency_amount / 0.3 AS div_num,
       '100 JPY'::currency_amount / 8 AS jpy, '0.125 BHD'::currency_amount * 0.5 AS bhd;
-- mixed currencies, overflow, division by zero
SELECT pg_temp.try($$SELECT '1 EUR'::customer_account.currency_amount + '1 USD'$$);
SELECT pg_temp.try($$SELECT '1 EUR'::customer_account.currency_amount - '1 USD'$$);
SELECT pg_temp.try($$SELECT '92233720368547758.07 EUR'::customer_account.currency_amount + '0.01 EUR'$$);
SELECT pg_temp.try($$SELECT '-92233720368547758.08 EUR'::customer_account.currency_amount - '0.01 EUR'$$);
SELECT pg_temp.try($$SELECT -'-92233720368547758.08 EUR'::customer_account.currency_amount$$);
SELECT pg_temp.try($$SELECT '92233720368547758.07 EUR'::customer_account.currency_amount * 2$$);
SELECT pg_temp.try($$SELECT '92233720368547758.07 EUR'::customer_account.currency_amount * 1.5$$);
SELECT pg_temp.try($$SELECT '-92233720368547758.08 EUR'::customer_account.currency_amount / -1$$);
SELECT pg_temp.try($$SELECT '1 EUR'::customer_account.currency_amount / 0$$);
SELECT pg_temp.try($$SELECT '1 EUR'::customer_account.currency_amount / 0::bigint$$);
SELECT pg_temp.try($$SELECT '1 EUR'::customer_account.currency_amount / 0.0$$);
SELECT pg_temp.try($$SELECT '1 EUR'::customer_account.currency_amount * 'NaN'::numeric$$);

-- comparison: equality across currencies is false, ordering refuses
SELECT '1 EUR'::currency_amount = '1.00 EUR' AS eq, '1 EUR'::currency_amount = '1 USD' AS eq_mixed,
       '1 EUR'::currency_amount <> '1 USD' AS ne_mixed, '1 EUR'::currency_amount < '2 EUR' AS lt,
       '2 EUR'::currency_amount <= '2 EUR' AS le, '3 EUR'::currency_amount > '2 EUR' AS gt,
       '-3 EUR'::currency_amount >= '2 EUR' AS ge;
SELECT pg_temp.try($$SELECT '1 EUR'::customer_account.currency_amount < '2 USD'$$);
SELECT pg_temp.try($$SELECT '1 EUR'::customer_account.currency_amount >= '2 USD'$$);

-- B-tree order: currency code, then amount; usable as a key, sorted, grouped
CREATE TEMP TABLE amounts (a currency_amount PRIMARY KEY);
INSERT INTO amounts VALUES ('5 USD'), ('-1 EUR'), ('10 CHF'), ('3 EUR'), ('0 JPY'), ('2.5 USD');
SELECT a FROM amounts ORDER BY a;
SELECT pg_temp.try($$INSERT INTO amounts VALUES ('3.00 EUR')$$);
SELECT currency_of(a), count(*) FROM amounts GROUP BY currency_of(a) ORDER BY 1;
CREATE INDEX ON amounts USING hash (a);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM amounts WHERE a = '3 EUR';
SELECT * FROM amounts WHERE a = '3 EUR';
RESET enable_seqscan;
RESET enable_bitmapscan;
SET enable_sort = off;
SELECT a, count(*) FROM (SELECT a FROM amounts UNION ALL SELECT a FROM amounts) s GROUP BY a ORDER BY a;
RESET enable_sort;

-- aggregates
SELECT sum(a), min(a), max(a), count(a) FROM (VALUES ('1.10 EUR'::currency_amount), ('2.20 EUR'), (NULL), ('-0.30 EUR')) t(a);
SELECT sum(a) IS NULL AS empty_sum, min(a) IS NULL AS empty_min FROM amounts WHERE false;
SELECT currency_of(a) AS cur, sum(a), min(a), max(a) FROM amounts GROUP BY 1 ORDER BY 1;
SELECT pg_temp.try($$SELECT customer_account.sum(a) FROM (VALUES ('1 EUR'::customer_account.currency_amount), ('1 USD')) t(a)$$);
SELECT pg_temp.try($$SELECT customer_account.max(a) FROM (VALUES ('1 EUR'::customer_account.currency_amount), ('1 USD')) t(a)$$);
-- a final sum outside 64 bits is an error even though partial sums wrap ...
SELECT pg_temp.try($$SELECT customer_account.sum(a) FROM (VALUES ('92233720368547758.07 EUR'::customer_account.currency_amount), ('0.01 EUR')) t(a)$$);
SELECT pg_temp.try($$SELECT customer_account.sum(a) FROM (VALUES ('-92233720368547758.08 EUR'::customer_account.currency_amount), ('-0.01 EUR')) t(a)$$);
-- ... and a sum whose partial sums leave the range but whose total fits is exact
SELECT sum(a) FROM (VALUES ('92233720368547758.07 EUR'::currency_amount), ('92233720368547758.07 EUR'),
                           ('-92233720368547758.08 EUR'), ('-92233720368547758.06 EUR')) t(a);

-- parallel aggregation uses the combine and (de)serial functions
CREATE TABLE par (a currency_amount) WITH (parallel_workers = 2);
INSERT INTO par SELECT currency_amount_from_minor_units(i, 'EUR') FROM generate_series(1, 200000) i;
ANALYZE par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT sum(a), min(a), max(a) FROM par;
SELECT sum(a), min(a), max(a) FROM par;
-- first half at the top of the range, second half at the bottom: the partial
-- sums leave 64 bits many times over, the total fits
UPDATE par SET a = CASE WHEN minor_units(a) <= 100000 THEN '92233720368547758.07 EUR'::currency_amount
                        ELSE '-92233720368547758.07 EUR'::currency_amount END;
SELECT sum(a) FROM par;
SELECT pg_temp.try($$SELECT customer_account.sum(a) FROM customer_account.par$$) LIKE 'no error' AS parallel_ok;
INSERT INTO par VALUES ('0.01 EUR'), ('92233720368547758.07 EUR');
SELECT pg_temp.try($$SELECT customer_account.sum(a) FROM customer_account.par$$);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE par;
