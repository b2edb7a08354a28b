-- The search workload's keywords: for a kind of keyword and a random
-- customer id, the keyword a call center agent would type for that customer
-- of the generated data (test/bench/generate.sql) and the customer it must
-- find.  Deterministic: the keyword follows from the id and the generated
-- data; kinds not every customer has (phone, marketplace buyer, return
-- number) move to the nearest customer at or below (above, for returns) who
-- has one.  The pgbench scripts call search() on bench.search_case(kind,
-- :id).keyword, in the same statement; the hit check below calls it on a
-- sample.
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS bench;
RESET client_min_messages;

CREATE OR REPLACE FUNCTION bench.search_case(kind text, id bigint,
    OUT keyword text, OUT customer_id bigint, OUT matched_on text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    pid bigint;
    n text;
    first text;
    last text;
    card text := lpad(id::text, 8, '0');
BEGIN
    customer_id := id;
    CASE kind
    WHEN 'order_no' THEN            -- an order number as printed: G<id>-1 or -2 (every customer has 2 or more)
        keyword := 'G' || id || '-' || (1 + id % 2); matched_on := 'order_no';
    WHEN 'order_prefix' THEN        -- the start of an order number: G<id> (also finds G<id>0-..., G<id>1-...)
        keyword := 'G' || id; matched_on := 'order_no';
    WHEN 'return_no' THEN           -- the return number (RT1...) of the first return at or after the customer
        SELECT r.return_no, r.customer_id INTO keyword, customer_id
        FROM customer_account.return_request r WHERE r.customer_id >= id ORDER BY r.customer_id, r.return_no LIMIT 1;
        IF NOT FOUND THEN
            SELECT r.return_no, r.customer_id INTO keyword, customer_id
            FROM customer_account.return_request r ORDER BY r.customer_id, r.return_no LIMIT 1;
        END IF;
        matched_on := 'return_no';
    WHEN 'email' THEN               -- the whole address, in another case than stored
        keyword := 'C' || id || '@Example.com'; matched_on := 'email';
    WHEN 'email_part' THEN          -- a part of the address (like README's berger.exa)
        keyword := 'c' || id || '@exa'; matched_on := 'email';
    WHEN 'phone' THEN               -- 60% have a phone (id % 5 < 3): stored +49 30 1004711 or 0049 ...,
                                    -- asked nationally 030/1004711; Swiss +41 44 ... asked as 0041 44 ...
        pid := greatest(1, id - id % 5 + id % 3);
        SELECT c.phone INTO n FROM customer_account.customer c WHERE c.customer_id = pid;
        keyword := CASE WHEN n ~ '^(\+|00)49 ' THEN regexp_replace(n, '^(\+|00)49 ([0-9]+) ([0-9]+)$', '0\2/\3')
                        ELSE regexp_replace(n, '^\+', '00') END;
        customer_id := pid; matched_on := 'phone';
    WHEN 'card' THEN                -- the loyalty card without separators
        keyword := '9276' || card; matched_on := 'loyalty_card';
    WHEN 'card_sep' THEN            -- the loyalty card as printed: 9276 0000 4711
        keyword := '9276 ' || substr(card, 1, 4) || ' ' || substr(card, 5, 4); matched_on := 'loyalty_card';
    WHEN 'marketplace' THEN         -- every second customer: the buyer id without the marketplace
        pid := greatest(2, id - id % 2);
        keyword := 'b' || lpad(to_hex((pid * 2654435761) % 4294967296), 8, '0');
        customer_id := pid; matched_on := 'marketplace';
    WHEN 'name' THEN                -- the name with a letter of the last name missing, last name first
                                    -- in lower case for even ids ("schmdt anna"), else "Anna Schmdt"
        SELECT c.full_name INTO n FROM customer_account.customer c WHERE c.customer_id = id;
        first := split_part(n, ' ', 1);
        last := split_part(n, ' ', 2);
        last := overlay(last PLACING '' FROM 2 + (id % (length(last) - 1))::int FOR 1);
        keyword := CASE WHEN id % 2 = 0 THEN lower(last || ' ' || first) ELSE first || ' ' || last END;
        matched_on := 'name';
    ELSE
        RAISE EXCEPTION 'unknown kind of keyword "%"', kind;
    END CASE;
END $$;

-- the hit check: of up to `sample` random customers, for how many the
-- keyword of the kind finds the customer it must (among search()'s default
-- 20 rows, matched on the expected kind); stops after `budget` so that a
-- slow search() cannot stall the benchmark.  Returns hits and tried.
CREATE OR REPLACE FUNCTION bench.search_hits(kind text, n bigint, sample int DEFAULT 200,
    budget interval DEFAULT '20 seconds', OUT hits int, OUT tried int)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    k record;
BEGIN
    hits := 0; tried := 0;
    FOR g IN 1 .. sample LOOP
        EXIT WHEN clock_timestamp() - t0 > budget;
        SELECT * INTO k FROM bench.search_case(kind, 1 + (hashint4(g + 7919) & 2147483647) % n);
        tried := tried + 1;
        IF EXISTS (SELECT 1 FROM customer_account.search(k.keyword) s
                   WHERE s.customer_id = k.customer_id AND s.matched_on = k.matched_on) THEN
            hits := hits + 1;
        END IF;
    END LOOP;
END $$;
