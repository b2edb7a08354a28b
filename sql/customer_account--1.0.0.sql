/* customer_account--1.0.0.sql: one central customer account across every sales channel */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION customer_account CASCADE" to load this file. \quit

-- Every name below is schema-qualified with @extschema@ or pg_catalog; the
-- search_path is pinned for the rest of the script as PostgreSQL's guidance
-- for extension scripts asks.
SELECT pg_catalog.set_config('search_path', '@extschema@, pg_catalog, pg_temp', true);

------------------------------------------------------------------------------
-- currency_amount: exact money, 64-bit minor units plus ISO 4217 currency
------------------------------------------------------------------------------
CREATE TYPE @extschema@.currency_amount;

CREATE FUNCTION @extschema@.currency_amount_in(cstring) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_out(@extschema@.currency_amount) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_recv(internal) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_send(@extschema@.currency_amount) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.currency_amount (
    INTERNALLENGTH = 16,
    INPUT = @extschema@.currency_amount_in,
    OUTPUT = @extschema@.currency_amount_out,
    RECEIVE = @extschema@.currency_amount_recv,
    SEND = @extschema@.currency_amount_send,
    ALIGNMENT = double,
    STORAGE = plain
);
COMMENT ON TYPE @extschema@.currency_amount IS
    'exact money: 64-bit minor units with their ISO 4217 currency, e.g. ''19.99 EUR''';

-- constructors and accessors
CREATE FUNCTION @extschema@.currency_amount(numeric, text) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME', 'currency_amount_from_numeric' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.currency_amount(numeric, text) IS
    'amount and ISO 4217 code to currency_amount; more decimals than the currency has is an error';
CREATE FUNCTION @extschema@.currency_amount_from_minor_units(bigint, text) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME', 'currency_amount_from_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_of(@extschema@.currency_amount) RETURNS text
    AS 'MODULE_PATHNAME', 'currency_amount_currency_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.amount_of(@extschema@.currency_amount) RETURNS numeric
    AS 'MODULE_PATHNAME', 'currency_amount_amount_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.minor_units(@extschema@.currency_amount) RETURNS bigint
    AS 'MODULE_PATHNAME', 'currency_amount_minor_units' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currencies(OUT code text, OUT minor_units int) RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'currency_amount_currencies' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 180;
COMMENT ON FUNCTION @extschema@.currencies() IS 'the ISO 4217 currencies currency_amount accepts, with their minor-unit digits';
CREATE FUNCTION @extschema@.abs(@extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME', 'currency_amount_abs' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- arithmetic
CREATE FUNCTION @extschema@.currency_amount_add(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sub(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_neg(@extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_mul_numeric(@extschema@.currency_amount, numeric) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.numeric_mul_currency_amount(numeric, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_mul_int8(@extschema@.currency_amount, bigint) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.int8_mul_currency_amount(bigint, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_mul_int4(@extschema@.currency_amount, integer) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.int4_mul_currency_amount(integer, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_div_numeric(@extschema@.currency_amount, numeric) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_div_int8(@extschema@.currency_amount, bigint) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_div_int4(@extschema@.currency_amount, integer) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.+ (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_add, COMMUTATOR = OPERATOR(@extschema@.+));
CREATE OPERATOR @extschema@.- (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_sub);
CREATE OPERATOR @extschema@.- (RIGHTARG = @extschema@.currency_amount, FUNCTION = @extschema@.currency_amount_neg);
CREATE OPERATOR @extschema@.* (LEFTARG = @extschema@.currency_amount, RIGHTARG = numeric,
    FUNCTION = @extschema@.currency_amount_mul_numeric, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = numeric, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.numeric_mul_currency_amount, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = @extschema@.currency_amount, RIGHTARG = bigint,
    FUNCTION = @extschema@.currency_amount_mul_int8, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = bigint, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.int8_mul_currency_amount, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = @extschema@.currency_amount, RIGHTARG = integer,
    FUNCTION = @extschema@.currency_amount_mul_int4, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@.* (LEFTARG = integer, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.int4_mul_currency_amount, COMMUTATOR = OPERATOR(@extschema@.*));
CREATE OPERATOR @extschema@./ (LEFTARG = @extschema@.currency_amount, RIGHTARG = numeric,
    FUNCTION = @extschema@.currency_amount_div_numeric);
CREATE OPERATOR @extschema@./ (LEFTARG = @extschema@.currency_amount, RIGHTARG = bigint,
    FUNCTION = @extschema@.currency_amount_div_int8);
CREATE OPERATOR @extschema@./ (LEFTARG = @extschema@.currency_amount, RIGHTARG = integer,
    FUNCTION = @extschema@.currency_amount_div_int4);

-- comparison
CREATE FUNCTION @extschema@.currency_amount_eq(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_ne(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_lt(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_le(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_gt(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_ge(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS bool
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_cmp(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_hash(@extschema@.currency_amount) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_hash_extended(@extschema@.currency_amount, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION @extschema@.currency_amount_smaller(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_larger(@extschema@.currency_amount, @extschema@.currency_amount) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR @extschema@.= (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_eq, COMMUTATOR = OPERATOR(@extschema@.=), NEGATOR = OPERATOR(@extschema@.<>),
    RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR @extschema@.<> (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_ne, COMMUTATOR = OPERATOR(@extschema@.<>), NEGATOR = OPERATOR(@extschema@.=),
    RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR @extschema@.< (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_lt, COMMUTATOR = OPERATOR(@extschema@.>), NEGATOR = OPERATOR(@extschema@.>=),
    RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR @extschema@.<= (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_le, COMMUTATOR = OPERATOR(@extschema@.>=), NEGATOR = OPERATOR(@extschema@.>),
    RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR @extschema@.> (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_gt, COMMUTATOR = OPERATOR(@extschema@.<), NEGATOR = OPERATOR(@extschema@.<=),
    RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR @extschema@.>= (LEFTARG = @extschema@.currency_amount, RIGHTARG = @extschema@.currency_amount,
    FUNCTION = @extschema@.currency_amount_ge, COMMUTATOR = OPERATOR(@extschema@.<=), NEGATOR = OPERATOR(@extschema@.<),
    RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS @extschema@.currency_amount_ops
    DEFAULT FOR TYPE @extschema@.currency_amount USING btree AS
        OPERATOR 1 @extschema@.< ,
        OPERATOR 2 @extschema@.<= ,
        OPERATOR 3 @extschema@.= ,
        OPERATOR 4 @extschema@.>= ,
        OPERATOR 5 @extschema@.> ,
        FUNCTION 1 @extschema@.currency_amount_cmp(@extschema@.currency_amount, @extschema@.currency_amount);

CREATE OPERATOR CLASS @extschema@.currency_amount_hash_ops
    DEFAULT FOR TYPE @extschema@.currency_amount USING hash AS
        OPERATOR 1 @extschema@.= ,
        FUNCTION 1 @extschema@.currency_amount_hash(@extschema@.currency_amount),
        FUNCTION 2 @extschema@.currency_amount_hash_extended(@extschema@.currency_amount, bigint);

-- aggregates
CREATE FUNCTION @extschema@.currency_amount_sum_accum(internal, @extschema@.currency_amount) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sum_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sum_serialize(internal) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sum_deserialize(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.currency_amount_sum_final(internal) RETURNS @extschema@.currency_amount
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE AGGREGATE @extschema@.sum(@extschema@.currency_amount) (
    SFUNC = @extschema@.currency_amount_sum_accum,
    STYPE = internal,
    SSPACE = 24,
    FINALFUNC = @extschema@.currency_amount_sum_final,
    COMBINEFUNC = @extschema@.currency_amount_sum_combine,
    SERIALFUNC = @extschema@.currency_amount_sum_serialize,
    DESERIALFUNC = @extschema@.currency_amount_sum_deserialize,
    PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@.min(@extschema@.currency_amount) (
    SFUNC = @extschema@.currency_amount_smaller,
    STYPE = @extschema@.currency_amount,
    COMBINEFUNC = @extschema@.currency_amount_smaller,
    SORTOP = OPERATOR(@extschema@.<),
    PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@.max(@extschema@.currency_amount) (
    SFUNC = @extschema@.currency_amount_larger,
    STYPE = @extschema@.currency_amount,
    COMBINEFUNC = @extschema@.currency_amount_larger,
    SORTOP = OPERATOR(@extschema@.>),
    PARALLEL = SAFE
);
