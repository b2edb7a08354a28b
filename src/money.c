/*-------------------------------------------------------------------------
 *
 * money.c
 *	  The currency_amount type: I/O, arithmetic, comparison, hashing and the
 *	  sum/min/max aggregates.
 *
 * Amounts are whole minor units in an int64.  Nothing here ever rounds
 * silently: input with more decimals than the currency has is refused, and
 * multiplication or division by a fraction rounds half to even to the minor
 * unit, as the contract says, with every overflow reported as 22003.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "common/hashfn.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "currency.h"
#include "money.h"

#define CURRENCY_AMOUNT_BINARY_VERSION 1

/* ------------------------------------------------------------------------
 * helpers
 * ------------------------------------------------------------------------
 */
CurrencyAmount *
ca_make_currency_amount(int64 units, int32 code)
{
	CurrencyAmount *ca = (CurrencyAmount *) palloc(sizeof(CurrencyAmount));

	ca->units = units;
	ca->code = code;
	ca->pad = 0;
	return ca;
}

void
ca_check_same_currency(int32 a, int32 b, const char *what)
{
	if (unlikely(a != b))
	{
		char		ca[4],
					cb[4];

		ca_currency_unpack(a, ca);
		ca_currency_unpack(b, cb);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot %s amounts in different currencies: %s and %s", what, ca, cb),
				 errdetail("Amounts in two currencies are never combined; convert one of them first.")));
	}
}

static void
report_out_of_range(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("currency_amount out of range in %s", what),
			 errdetail("An amount must fit in 64-bit minor units.")));
}

char *
ca_currency_amount_to_cstring(const CurrencyAmount *ca)
{
	char		iso[4];
	char		digits[32];
	char	   *out;
	int			minor = ca_currency_minor_units(ca->code);
	uint64		mag;
	int			len;

	ca_currency_unpack(ca->code, iso);
	if (minor < 0)
		elog(ERROR, "corrupt currency_amount: unknown currency code %d", ca->code);

	/* magnitude as unsigned, so that INT64_MIN prints */
	mag = ca->units < 0 ? (uint64) 0 - (uint64) ca->units : (uint64) ca->units;
	len = snprintf(digits, sizeof(digits), "%0*llu", minor + 1, (unsigned long long) mag);

	out = palloc(len + 10);
	if (minor == 0)
		snprintf(out, len + 10, "%s%s %s", ca->units < 0 ? "-" : "", digits, iso);
	else
		snprintf(out, len + 10, "%s%.*s.%s %s", ca->units < 0 ? "-" : "",
				 len - minor, digits, digits + len - minor, iso);
	return out;
}

static void
invalid_syntax(const char *str)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type currency_amount: \"%s\"", str),
			 errhint("Write an amount and an ISO 4217 code, such as '19.99 EUR' or 'EUR 19.99'.")));
}

/*
 * Parse '<amount> <CODE>' or '<CODE> <amount>', with optional surrounding
 * spaces.  The amount is [+-]digits[.digits].
 */
static CurrencyAmount *
parse_currency_amount(const char *str)
{
	const char *p = str;
	const char *code_start = NULL;
	const char *num_start;
	const char *num_end;
	int32		code;
	int			minor;
	bool		neg = false;
	uint64		mag = 0;
	int			int_digits = 0;
	int			frac_digits = 0;
	uint64		limit;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '\0')
		invalid_syntax(str);

	if (isalpha((unsigned char) *p))
	{
		/* code first */
		code_start = p;
		while (isalpha((unsigned char) *p))
			p++;
		if (p - code_start != 3)
			invalid_syntax(str);
		while (isspace((unsigned char) *p))
			p++;
	}

	num_start = p;
	if (*p == '+' || *p == '-')
	{
		neg = (*p == '-');
		p++;
	}
	while (isdigit((unsigned char) *p))
	{
		p++;
		int_digits++;
	}
	if (*p == '.')
	{
		p++;
		while (isdigit((unsigned char) *p))
		{
			p++;
			frac_digits++;
		}
	}
	num_end = p;
	if (int_digits + frac_digits == 0)
		invalid_syntax(str);

	if (code_start == NULL)
	{
		while (isspace((unsigned char) *p))
			p++;
		code_start = p;
		while (isalpha((unsigned char) *p))
			p++;
		if (p - code_start == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type currency_amount: \"%s\"", str),
					 errdetail("The currency is missing."),
					 errhint("Write an amount and an ISO 4217 code, such as '19.99 EUR'.")));
		if (p - code_start != 3)
			invalid_syntax(str);
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		invalid_syntax(str);

	code = ca_currency_pack(code_start, 3);
	if (code < 0 || ca_currency_minor_units(code) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown currency \"%.3s\" in currency_amount \"%s\"", code_start, str),
				 errhint("Use an active ISO 4217 code such as EUR, USD, CHF or JPY; customer_account.currencies() lists them.")));
	minor = ca_currency_minor_units(code);

	if (frac_digits > minor)
	{
		char		iso[4];

		ca_currency_unpack(code, iso);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("too many decimal places in currency_amount \"%s\"", str),
				 errdetail("%s has %d minor-unit digit%s.", iso, minor, minor == 1 ? "" : "s")));
	}

	/* accumulate digits; the magnitude may reach 2^63 for a negative value */
	limit = neg ? (uint64) PG_INT64_MAX + 1 : (uint64) PG_INT64_MAX;
	for (const char *d = num_start; d < num_end; d++)
	{
		if (!isdigit((unsigned char) *d))
			continue;
		if (mag > (limit - (uint64) (*d - '0')) / 10)
			goto overflow;
		mag = mag * 10 + (uint64) (*d - '0');
	}
	for (int i = frac_digits; i < minor; i++)
	{
		if (mag > limit / 10)
			goto overflow;
		mag *= 10;
	}

	if (neg)
		return ca_make_currency_amount(mag == (uint64) PG_INT64_MAX + 1 ? PG_INT64_MIN : -(int64) mag, code);
	return ca_make_currency_amount((int64) mag, code);

overflow:
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("value \"%s\" is out of range for type currency_amount", str),
			 errdetail("An amount must fit in 64-bit minor units.")));
	return NULL;				/* keep compiler quiet */
}

/* ------------------------------------------------------------------------
 * I/O
 * ------------------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(currency_amount_in);
Datum
currency_amount_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(parse_currency_amount(PG_GETARG_CSTRING(0)));
}

PG_FUNCTION_INFO_V1(currency_amount_out);
Datum
currency_amount_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(ca_currency_amount_to_cstring(PG_GETARG_CURRENCY_AMOUNT_P(0)));
}

/*
 * Binary format: version byte, the three-letter code, the int64 minor
 * units.  The letters, not the packed code, go on the wire so that clients
 * need no table.
 */
PG_FUNCTION_INFO_V1(currency_amount_send);
Datum
currency_amount_send(PG_FUNCTION_ARGS)
{
	CurrencyAmount *ca = PG_GETARG_CURRENCY_AMOUNT_P(0);
	StringInfoData buf;
	char		iso[4];

	ca_currency_unpack(ca->code, iso);
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, CURRENCY_AMOUNT_BINARY_VERSION);
	pq_sendbytes(&buf, iso, 3);
	pq_sendint64(&buf, ca->units);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(currency_amount_recv);
Datum
currency_amount_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version = pq_getmsgbyte(buf);
	const char *iso;
	int32		code;
	int64		units;

	if (version != CURRENCY_AMOUNT_BINARY_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary format version %d for type currency_amount", version)));
	iso = pq_getmsgbytes(buf, 3);
	code = ca_currency_pack(iso, 3);
	if (code < 0 || ca_currency_minor_units(code) < 0 || iso[0] < 'A' || iso[0] > 'Z'
		|| iso[1] < 'A' || iso[1] > 'Z' || iso[2] < 'A' || iso[2] > 'Z')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unknown currency \"%.3s\" in binary currency_amount", iso)));
	units = pq_getmsgint64(buf);
	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(units, code));
}

/* ------------------------------------------------------------------------
 * constructors and accessors
 * ------------------------------------------------------------------------
 */
static Numeric
int64_numeric(int64 v)
{
	return int64_to_numeric(v);
}

static int
numeric_cmp_internal(Numeric a, Numeric b)
{
	return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a), NumericGetDatum(b)));
}

/* convert an integral numeric to int64, or report 22003 for `what` */
static int64
numeric_to_units(Numeric n, const char *what)
{
	static Numeric max_n = NULL;
	static Numeric min_n = NULL;

	if (max_n == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		max_n = int64_numeric(PG_INT64_MAX);
		min_n = int64_numeric(PG_INT64_MIN);
		MemoryContextSwitchTo(old);
	}
	if (numeric_cmp_internal(n, max_n) > 0 || numeric_cmp_internal(n, min_n) < 0)
		report_out_of_range(what);
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(n)));
}

static void
check_finite(Numeric n, const char *what)
{
	if (numeric_is_nan(n) || numeric_is_inf(n))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot use %s in %s", numeric_is_nan(n) ? "NaN" : "infinity", what),
				 errdetail("A currency_amount is always a finite number of minor units.")));
}

PG_FUNCTION_INFO_V1(currency_amount_from_numeric);
Datum
currency_amount_from_numeric(PG_FUNCTION_ARGS)
{
	Numeric		n = PG_GETARG_NUMERIC(0);
	text	   *cur = PG_GETARG_TEXT_PP(1);
	int32		code = ca_currency_lookup_or_error(VARDATA_ANY(cur), VARSIZE_ANY_EXHDR(cur));
	int			minor = ca_currency_minor_units(code);
	Numeric		scaled;
	Numeric		truncated;

	check_finite(n, "currency_amount");
	scaled = DatumGetNumeric(DirectFunctionCall2(numeric_mul, NumericGetDatum(n),
												 NumericGetDatum(int64_numeric(ca_pow10_int64(minor)))));
	truncated = DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(scaled), Int32GetDatum(0)));
	if (numeric_cmp_internal(scaled, truncated) != 0)
	{
		char		iso[4];

		ca_currency_unpack(code, iso);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("too many decimal places for %s in %s", iso,
						DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(n)))),
				 errdetail("%s has %d minor-unit digit%s.", iso, minor, minor == 1 ? "" : "s"),
				 errhint("Round the value first, for example with round(value, %d).", minor)));
	}
	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(numeric_to_units(truncated, "currency_amount()"), code));
}

PG_FUNCTION_INFO_V1(currency_amount_from_units);
Datum
currency_amount_from_units(PG_FUNCTION_ARGS)
{
	int64		units = PG_GETARG_INT64(0);
	text	   *cur = PG_GETARG_TEXT_PP(1);
	int32		code = ca_currency_lookup_or_error(VARDATA_ANY(cur), VARSIZE_ANY_EXHDR(cur));

	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(units, code));
}

PG_FUNCTION_INFO_V1(currency_amount_currency_of);
Datum
currency_amount_currency_of(PG_FUNCTION_ARGS)
{
	char		iso[4];

	ca_currency_unpack(PG_GETARG_CURRENCY_AMOUNT_P(0)->code, iso);
	PG_RETURN_TEXT_P(cstring_to_text(iso));
}

PG_FUNCTION_INFO_V1(currency_amount_amount_of);
Datum
currency_amount_amount_of(PG_FUNCTION_ARGS)
{
	CurrencyAmount *ca = PG_GETARG_CURRENCY_AMOUNT_P(0);

	PG_RETURN_NUMERIC(int64_div_fast_to_numeric(ca->units, ca_currency_minor_units(ca->code)));
}

PG_FUNCTION_INFO_V1(currency_amount_minor_units);
Datum
currency_amount_minor_units(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(PG_GETARG_CURRENCY_AMOUNT_P(0)->units);
}

/* currencies() -> setof (code text, minor_units int) */
PG_FUNCTION_INFO_V1(currency_amount_currencies);
Datum
currency_amount_currencies(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *iso;
	int			minor;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; ca_currency_entry(i, &iso, &minor); i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(iso);
		values[1] = Int32GetDatum(minor);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * arithmetic
 * ------------------------------------------------------------------------
 */
PG_FUNCTION_INFO_V1(currency_amount_add);
Datum
currency_amount_add(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);
	CurrencyAmount *b = PG_GETARG_CURRENCY_AMOUNT_P(1);
	int64		r;

	ca_check_same_currency(a->code, b->code, "add");
	if (pg_add_s64_overflow(a->units, b->units, &r))
		report_out_of_range("addition");
	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(r, a->code));
}

PG_FUNCTION_INFO_V1(currency_amount_sub);
Datum
currency_amount_sub(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);
	CurrencyAmount *b = PG_GETARG_CURRENCY_AMOUNT_P(1);
	int64		r;

	ca_check_same_currency(a->code, b->code, "subtract");
	if (pg_sub_s64_overflow(a->units, b->units, &r))
		report_out_of_range("subtraction");
	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(r, a->code));
}

PG_FUNCTION_INFO_V1(currency_amount_neg);
Datum
currency_amount_neg(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);

	if (a->units == PG_INT64_MIN)
		report_out_of_range("negation");
	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(-a->units, a->code));
}

PG_FUNCTION_INFO_V1(currency_amount_abs);
Datum
currency_amount_abs(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);

	if (a->units == PG_INT64_MIN)
		report_out_of_range("abs()");
	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(a->units < 0 ? -a->units : a->units, a->code));
}

static CurrencyAmount *
mul_int64(CurrencyAmount *a, int64 f)
{
	int64		r;

	if (pg_mul_s64_overflow(a->units, f, &r))
		report_out_of_range("multiplication");
	return ca_make_currency_amount(r, a->code);
}

PG_FUNCTION_INFO_V1(currency_amount_mul_int8);
Datum
currency_amount_mul_int8(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(mul_int64(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_INT64(1)));
}

PG_FUNCTION_INFO_V1(int8_mul_currency_amount);
Datum
int8_mul_currency_amount(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(mul_int64(PG_GETARG_CURRENCY_AMOUNT_P(1), PG_GETARG_INT64(0)));
}

PG_FUNCTION_INFO_V1(currency_amount_mul_int4);
Datum
currency_amount_mul_int4(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(mul_int64(PG_GETARG_CURRENCY_AMOUNT_P(0), (int64) PG_GETARG_INT32(1)));
}

PG_FUNCTION_INFO_V1(int4_mul_currency_amount);
Datum
int4_mul_currency_amount(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(mul_int64(PG_GETARG_CURRENCY_AMOUNT_P(1), (int64) PG_GETARG_INT32(0)));
}

/*
 * Round an exact numeric to an integer, half to even, and return it as
 * int64 (22003 when it does not fit).
 */
int64
ca_numeric_round_half_even(Numeric x, const char *what)
{
	Numeric		q = DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(x), Int32GetDatum(0)));
	Numeric		r = DatumGetNumeric(DirectFunctionCall2(numeric_sub, NumericGetDatum(x), NumericGetDatum(q)));
	Numeric		twice;
	Numeric		one = int64_numeric(1);
	int			c;
	int			sign = DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(r),
														 NumericGetDatum(int64_numeric(0))));

	if (sign == 0)
		return numeric_to_units(q, what);

	twice = DatumGetNumeric(DirectFunctionCall2(numeric_mul,
												DirectFunctionCall1(numeric_abs, NumericGetDatum(r)),
												NumericGetDatum(int64_numeric(2))));
	c = numeric_cmp_internal(twice, one);
	if (c > 0 || (c == 0 && DatumGetBool(DirectFunctionCall2(numeric_ne,
															 DirectFunctionCall2(numeric_mod, NumericGetDatum(q), NumericGetDatum(int64_numeric(2))),
															 NumericGetDatum(int64_numeric(0))))))
		q = DatumGetNumeric(DirectFunctionCall2(numeric_add, NumericGetDatum(q),
												NumericGetDatum(int64_numeric(sign))));
	return numeric_to_units(q, what);
}

static CurrencyAmount *
mul_numeric(CurrencyAmount *a, Numeric f)
{
	Numeric		product;

	check_finite(f, "currency_amount multiplication");
	product = DatumGetNumeric(DirectFunctionCall2(numeric_mul, NumericGetDatum(int64_numeric(a->units)),
												  NumericGetDatum(f)));
	return ca_make_currency_amount(ca_numeric_round_half_even(product, "multiplication"), a->code);
}

PG_FUNCTION_INFO_V1(currency_amount_mul_numeric);
Datum
currency_amount_mul_numeric(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(mul_numeric(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_NUMERIC(1)));
}

PG_FUNCTION_INFO_V1(numeric_mul_currency_amount);
Datum
numeric_mul_currency_amount(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(mul_numeric(PG_GETARG_CURRENCY_AMOUNT_P(1), PG_GETARG_NUMERIC(0)));
}

static void
report_division_by_zero(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DIVISION_BY_ZERO),
			 errmsg("division by zero")));
}

static CurrencyAmount *
div_int64(CurrencyAmount *a, int64 d)
{
	int64		q;
	int64		r;
	uint64		ar,
				ad;

	if (d == 0)
		report_division_by_zero();
	if (d == -1)
	{
		if (a->units == PG_INT64_MIN)
			report_out_of_range("division");
		return ca_make_currency_amount(-a->units, a->code);
	}
	q = a->units / d;
	r = a->units % d;
	if (r != 0)
	{
		ar = r < 0 ? (uint64) 0 - (uint64) r : (uint64) r;
		ad = d < 0 ? (uint64) 0 - (uint64) d : (uint64) d;
		/* compare 2|r| with |d| without overflowing */
		if (ar > ad - ar || (ar == ad - ar && (q % 2) != 0))
			q += ((a->units < 0) != (d < 0)) ? -1 : 1;
	}
	return ca_make_currency_amount(q, a->code);
}

PG_FUNCTION_INFO_V1(currency_amount_div_int8);
Datum
currency_amount_div_int8(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(div_int64(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_INT64(1)));
}

PG_FUNCTION_INFO_V1(currency_amount_div_int4);
Datum
currency_amount_div_int4(PG_FUNCTION_ARGS)
{
	PG_RETURN_CURRENCY_AMOUNT_P(div_int64(PG_GETARG_CURRENCY_AMOUNT_P(0), (int64) PG_GETARG_INT32(1)));
}

PG_FUNCTION_INFO_V1(currency_amount_div_numeric);
Datum
currency_amount_div_numeric(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);
	Numeric		d = PG_GETARG_NUMERIC(1);
	Numeric		zero = int64_numeric(0);
	Numeric		u;
	Numeric		q;
	Numeric		r;
	Numeric		twice_r;
	Numeric		abs_d;
	int			c;

	check_finite(d, "currency_amount division");
	if (numeric_cmp_internal(d, zero) == 0)
		report_division_by_zero();

	/* exact truncated quotient and remainder, then round half to even */
	u = int64_numeric(a->units);
	q = DatumGetNumeric(DirectFunctionCall2(numeric_div_trunc, NumericGetDatum(u), NumericGetDatum(d)));
	r = DatumGetNumeric(DirectFunctionCall2(numeric_sub, NumericGetDatum(u),
											DirectFunctionCall2(numeric_mul, NumericGetDatum(q), NumericGetDatum(d))));
	if (numeric_cmp_internal(r, zero) != 0)
	{
		bool		q_odd;
		bool		negative = (a->units < 0) != (numeric_cmp_internal(d, zero) < 0);

		twice_r = DatumGetNumeric(DirectFunctionCall2(numeric_mul,
													  DirectFunctionCall1(numeric_abs, NumericGetDatum(r)),
													  NumericGetDatum(int64_numeric(2))));
		abs_d = DatumGetNumeric(DirectFunctionCall1(numeric_abs, NumericGetDatum(d)));
		c = numeric_cmp_internal(twice_r, abs_d);
		q_odd = DatumGetBool(DirectFunctionCall2(numeric_ne,
												 DirectFunctionCall2(numeric_mod, NumericGetDatum(q), NumericGetDatum(int64_numeric(2))),
												 NumericGetDatum(zero)));
		if (c > 0 || (c == 0 && q_odd))
			q = DatumGetNumeric(DirectFunctionCall2(numeric_add, NumericGetDatum(q),
													NumericGetDatum(int64_numeric(negative ? -1 : 1))));
	}
	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(numeric_to_units(q, "division"), a->code));
}

/* ------------------------------------------------------------------------
 * comparison and hashing
 *
 * Equality across currencies is simply false.  The ordering operators
 * refuse to compare two currencies (there is no meaningful "less" between
 * 5 EUR and 5 USD), while the B-tree support function orders by currency
 * code first so that mixed columns can still be sorted and indexed.
 * ------------------------------------------------------------------------
 */
static inline int
ca_cmp(const CurrencyAmount *a, const CurrencyAmount *b)
{
	if (a->code != b->code)
		return a->code < b->code ? -1 : 1;
	if (a->units != b->units)
		return a->units < b->units ? -1 : 1;
	return 0;
}

static inline int
ca_cmp_same(const CurrencyAmount *a, const CurrencyAmount *b)
{
	ca_check_same_currency(a->code, b->code, "compare");
	return ca_cmp(a, b);
}

PG_FUNCTION_INFO_V1(currency_amount_cmp);
Datum
currency_amount_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(ca_cmp(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_CURRENCY_AMOUNT_P(1)));
}

PG_FUNCTION_INFO_V1(currency_amount_eq);
Datum
currency_amount_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ca_cmp(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_CURRENCY_AMOUNT_P(1)) == 0);
}

PG_FUNCTION_INFO_V1(currency_amount_ne);
Datum
currency_amount_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ca_cmp(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_CURRENCY_AMOUNT_P(1)) != 0);
}

PG_FUNCTION_INFO_V1(currency_amount_lt);
Datum
currency_amount_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ca_cmp_same(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_CURRENCY_AMOUNT_P(1)) < 0);
}

PG_FUNCTION_INFO_V1(currency_amount_le);
Datum
currency_amount_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ca_cmp_same(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_CURRENCY_AMOUNT_P(1)) <= 0);
}

PG_FUNCTION_INFO_V1(currency_amount_gt);
Datum
currency_amount_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ca_cmp_same(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_CURRENCY_AMOUNT_P(1)) > 0);
}

PG_FUNCTION_INFO_V1(currency_amount_ge);
Datum
currency_amount_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ca_cmp_same(PG_GETARG_CURRENCY_AMOUNT_P(0), PG_GETARG_CURRENCY_AMOUNT_P(1)) >= 0);
}

PG_FUNCTION_INFO_V1(currency_amount_smaller);
Datum
currency_amount_smaller(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);
	CurrencyAmount *b = PG_GETARG_CURRENCY_AMOUNT_P(1);

	PG_RETURN_CURRENCY_AMOUNT_P(ca_cmp_same(a, b) <= 0 ? a : b);
}

PG_FUNCTION_INFO_V1(currency_amount_larger);
Datum
currency_amount_larger(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);
	CurrencyAmount *b = PG_GETARG_CURRENCY_AMOUNT_P(1);

	PG_RETURN_CURRENCY_AMOUNT_P(ca_cmp_same(a, b) >= 0 ? a : b);
}

PG_FUNCTION_INFO_V1(currency_amount_hash);
Datum
currency_amount_hash(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);
	int64		key[2];

	key[0] = a->units;
	key[1] = a->code;
	return hash_any((unsigned char *) key, sizeof(key));
}

PG_FUNCTION_INFO_V1(currency_amount_hash_extended);
Datum
currency_amount_hash_extended(PG_FUNCTION_ARGS)
{
	CurrencyAmount *a = PG_GETARG_CURRENCY_AMOUNT_P(0);
	int64		key[2];

	key[0] = a->units;
	key[1] = a->code;
	return hash_any_extended((unsigned char *) key, sizeof(key), PG_GETARG_INT64(1));
}

/* ------------------------------------------------------------------------
 * sum()
 *
 * The state keeps an int64 partial sum plus a count of wrap-arounds, so the
 * true sum is partial + wraps * 2^64.  Intermediate overflow is harmless
 * (a later negative row may bring the sum back); only a final sum outside
 * the 64-bit range (wraps != 0) is an error.  That is as cheap per row as
 * sum(bigint) and exact.
 * ------------------------------------------------------------------------
 */
typedef struct SumState
{
	int64		sum;
	int64		wraps;
	int32		code;
	bool		seen;
} SumState;

static inline void
sum_state_add(SumState *st, int64 v)
{
	int64		r;

	if (unlikely(pg_add_s64_overflow(st->sum, v, &r)))
	{
		st->wraps += (v > 0) ? 1 : -1;
		r = (int64) ((uint64) st->sum + (uint64) v);
	}
	st->sum = r;
}

static SumState *
sum_state_new(FunctionCallInfo fcinfo)
{
	MemoryContext aggcontext;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "currency_amount sum state function called in non-aggregate context");
	return (SumState *) MemoryContextAllocZero(aggcontext, sizeof(SumState));
}

PG_FUNCTION_INFO_V1(currency_amount_sum_accum);
Datum
currency_amount_sum_accum(PG_FUNCTION_ARGS)
{
	SumState   *st = PG_ARGISNULL(0) ? NULL : (SumState *) PG_GETARG_POINTER(0);
	CurrencyAmount *v;

	if (st == NULL)
		st = sum_state_new(fcinfo);
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(st);
	v = PG_GETARG_CURRENCY_AMOUNT_P(1);
	if (unlikely(!st->seen))
	{
		st->code = v->code;
		st->seen = true;
	}
	else if (unlikely(st->code != v->code))
		ca_check_same_currency(st->code, v->code, "sum");
	sum_state_add(st, v->units);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(currency_amount_sum_combine);
Datum
currency_amount_sum_combine(PG_FUNCTION_ARGS)
{
	SumState   *a = PG_ARGISNULL(0) ? NULL : (SumState *) PG_GETARG_POINTER(0);
	SumState   *b = PG_ARGISNULL(1) ? NULL : (SumState *) PG_GETARG_POINTER(1);

	if (b == NULL || !b->seen)
	{
		if (a == NULL)
			a = sum_state_new(fcinfo);
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = sum_state_new(fcinfo);
	if (!a->seen)
	{
		a->code = b->code;
		a->seen = true;
	}
	else
		ca_check_same_currency(a->code, b->code, "sum");
	sum_state_add(a, b->sum);
	a->wraps += b->wraps;
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(currency_amount_sum_serialize);
Datum
currency_amount_sum_serialize(PG_FUNCTION_ARGS)
{
	SumState   *st = (SumState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "aggregate function called in non-aggregate context");
	pq_begintypsend(&buf);
	pq_sendbyte(&buf, st->seen ? 1 : 0);
	pq_sendint32(&buf, st->code);
	pq_sendint64(&buf, st->sum);
	pq_sendint64(&buf, st->wraps);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(currency_amount_sum_deserialize);
Datum
currency_amount_sum_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *sstate = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	SumState   *st;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "aggregate function called in non-aggregate context");
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, VARDATA_ANY(sstate), VARSIZE_ANY_EXHDR(sstate));
	st = (SumState *) palloc0(sizeof(SumState));
	st->seen = pq_getmsgbyte(&buf) != 0;
	st->code = pq_getmsgint(&buf, 4);
	st->sum = pq_getmsgint64(&buf);
	st->wraps = pq_getmsgint64(&buf);
	pq_getmsgend(&buf);
	pfree(buf.data);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(currency_amount_sum_final);
Datum
currency_amount_sum_final(PG_FUNCTION_ARGS)
{
	SumState   *st = PG_ARGISNULL(0) ? NULL : (SumState *) PG_GETARG_POINTER(0);

	if (st == NULL || !st->seen)
		PG_RETURN_NULL();
	if (st->wraps != 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("sum of currency_amount out of range"),
				 errdetail("The total does not fit in 64-bit minor units.")));
	PG_RETURN_CURRENCY_AMOUNT_P(ca_make_currency_amount(st->sum, st->code));
}

/* is_currency(text): an ISO 4217 code this type accepts */
PG_FUNCTION_INFO_V1(currency_is_known);
Datum
currency_is_known(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	int32		code = ca_currency_pack(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));

	PG_RETURN_BOOL(code >= 0 && ca_currency_minor_units(code) >= 0);
}
