-- Benchmark helpers, loaded into the benchmark database (not part of the extension).
CREATE SCHEMA IF NOT EXISTS bench;

-- bench.time_ms(sql, reps): the median wall time in ms of running sql reps times
CREATE OR REPLACE FUNCTION bench.time_ms(sql text, reps int DEFAULT 5) RETURNS numeric
LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    times numeric[] := '{}';
BEGIN
    EXECUTE sql;                          -- warm-up: hint bits, cache
    FOR i IN 1 .. reps LOOP
        t0 := clock_timestamp();
        EXECUTE sql;
        times := times || (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric;
    END LOOP;
    RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x)::numeric(12,1);
END $$;

-- results of one run, printed as one table at the end
CREATE TABLE IF NOT EXISTS bench.result (
    seq        serial,
    workload   text,
    figure     text,      -- 'tps' or 'ms'
    value      numeric,
    p50_ms     numeric,
    p99_ms     numeric,
    reference  text,
    ref_value  numeric,
    ratio      numeric,
    target     text,
    holds      text
);
