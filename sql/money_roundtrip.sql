--
-- Round trips for every currency: text -> type -> text and binary
-- send -> receive, over generated values including the 64-bit extremes.
--
SET search_path = customer_account, public;

CREATE TEMP TABLE samples AS
SELECT c.code, currency_amount_from_minor_units(u, c.code) AS a, u
FROM currencies() c,
     LATERAL (SELECT unnest(ARRAY[0, 1, -1, 5, -5, 99, 100, -100, 123456789,
                                  9223372036854775807, -9223372036854775808,
                                  9223372036854775806, -9223372036854775807]::bigint[])
              UNION ALL
              SELECT ((hashint8(c.minor_units * 1000 + g) * 2147483648::bigint)
                      + hashint8(g))::bigint
              FROM generate_series(1, 20) g) v(u);

SELECT count(*) AS samples, count(DISTINCT code) AS currencies FROM samples;

-- text round trip is lossless, and the text is the exact decimal with the
-- currency's minor digits (checked against numeric, independently)
SELECT count(*) AS text_mismatches FROM samples
WHERE a::text::currency_amount <> a
   OR minor_units(a::text::currency_amount) <> u
   OR a::text <> (amount_of(a)::text || ' ' || code)
   OR currency_amount(amount_of(a), code) <> a;
-- code-first input reads the same value
SELECT count(*) AS code_first_mismatches FROM samples
WHERE (code || ' ' || amount_of(a)::text)::currency_amount <> a;

-- binary send -> receive through COPY (FORMAT binary)
\copy samples TO 'results/money_roundtrip.bin' (FORMAT binary)
CREATE TEMP TABLE samples_back (LIKE samples);
\copy samples_back FROM 'results/money_roundtrip.bin' (FORMAT binary)
SELECT count(*) AS binary_rows,
       count(*) FILTER (WHERE b.a IS DISTINCT FROM s.a OR minor_units(b.a) <> s.u) AS binary_mismatches
FROM samples s JOIN samples_back b ON b.code = s.code AND b.u = s.u;
-- the wire format: version byte, ISO letters, int64 minor units
SELECT currency_amount_send('19.99 EUR'), currency_amount_send('-1 JPY');
