/*-------------------------------------------------------------------------
 *
 * currency.c
 *	  The ISO 4217 table of active currencies with their minor units.
 *
 * Source: ISO 4217 list one (current currency and funds), as maintained by
 * SIX on behalf of ISO.  Entries whose minor unit is "N.A." (precious
 * metals, SDR, test and "no currency" codes) are left out because an amount
 * in them has no exact minor unit.  Withdrawn codes that are still found in
 * old data during a changeover (ANG next to XCG, SLL next to SLE, ZWL next to
 * ZWG) stay until their last legal use has passed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "currency.h"

typedef struct CurrencyInfo
{
	const char *iso;
	int8		minor;
} CurrencyInfo;

/* keep sorted: the regression test checks that the list is */
static const CurrencyInfo currencies[] = {
	{"AED", 2}, {"AFN", 2}, {"ALL", 2}, {"AMD", 2}, {"ANG", 2}, {"AOA", 2},
	{"ARS", 2}, {"AUD", 2}, {"AWG", 2}, {"AZN", 2}, {"BAM", 2}, {"BBD", 2},
	{"BDT", 2}, {"BGN", 2}, {"BHD", 3}, {"BIF", 0}, {"BMD", 2}, {"BND", 2},
	{"BOB", 2}, {"BOV", 2}, {"BRL", 2}, {"BSD", 2}, {"BTN", 2}, {"BWP", 2},
	{"BYN", 2}, {"BZD", 2}, {"CAD", 2}, {"CDF", 2}, {"CHE", 2}, {"CHF", 2},
	{"CHW", 2}, {"CLF", 4}, {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"COU", 2},
	{"CRC", 2}, {"CUP", 2}, {"CVE", 2}, {"CZK", 2}, {"DJF", 0}, {"DKK", 2},
	{"DOP", 2}, {"DZD", 2}, {"EGP", 2}, {"ERN", 2}, {"ETB", 2}, {"EUR", 2},
	{"FJD", 2}, {"FKP", 2}, {"GBP", 2}, {"GEL", 2}, {"GHS", 2}, {"GIP", 2},
	{"GMD", 2}, {"GNF", 0}, {"GTQ", 2}, {"GYD", 2}, {"HKD", 2}, {"HNL", 2},
	{"HTG", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"IQD", 3},
	{"IRR", 2}, {"ISK", 0}, {"JMD", 2}, {"JOD", 3}, {"JPY", 0}, {"KES", 2},
	{"KGS", 2}, {"KHR", 2}, {"KMF", 0}, {"KPW", 2}, {"KRW", 0}, {"KWD", 3},
	{"KYD", 2}, {"KZT", 2}, {"LAK", 2}, {"LBP", 2}, {"LKR", 2}, {"LRD", 2},
	{"LSL", 2}, {"LYD", 3}, {"MAD", 2}, {"MDL", 2}, {"MGA", 2}, {"MKD", 2},
	{"MMK", 2}, {"MNT", 2}, {"MOP", 2}, {"MRU", 2}, {"MUR", 2}, {"MVR", 2},
	{"MWK", 2}, {"MXN", 2}, {"MXV", 2}, {"MYR", 2}, {"MZN", 2}, {"NAD", 2},
	{"NGN", 2}, {"NIO", 2}, {"NOK", 2}, {"NPR", 2}, {"NZD", 2}, {"OMR", 3},
	{"PAB", 2}, {"PEN", 2}, {"PGK", 2}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2},
	{"PYG", 0}, {"QAR", 2}, {"RON", 2}, {"RSD", 2}, {"RUB", 2}, {"RWF", 0},
	{"SAR", 2}, {"SBD", 2}, {"SCR", 2}, {"SDG", 2}, {"SEK", 2}, {"SGD", 2},
	{"SHP", 2}, {"SLE", 2}, {"SLL", 2}, {"SOS", 2}, {"SRD", 2}, {"SSP", 2},
	{"STN", 2}, {"SVC", 2}, {"SYP", 2}, {"SZL", 2}, {"THB", 2}, {"TJS", 2},
	{"TMT", 2}, {"TND", 3}, {"TOP", 2}, {"TRY", 2}, {"TTD", 2}, {"TWD", 2},
	{"TZS", 2}, {"UAH", 2}, {"UGX", 0}, {"USD", 2}, {"USN", 2}, {"UYI", 0},
	{"UYU", 2}, {"UYW", 4}, {"UZS", 2}, {"VED", 2}, {"VES", 2}, {"VND", 0},
	{"VUV", 0}, {"WST", 2}, {"XAF", 0}, {"XCD", 2}, {"XCG", 2}, {"XOF", 0},
	{"XPF", 0}, {"YER", 2}, {"ZAR", 2}, {"ZMW", 2}, {"ZWG", 2}, {"ZWL", 2},
};

#define NUM_CURRENCIES ((int) lengthof(currencies))

/*
 * Direct-indexed minor units by packed code, built on first use: the output
 * function and every constructor need it, and a bsearch per row would show
 * in sum() over millions of rows.  -1 marks codes that are not ISO 4217.
 */
static int8 minor_by_code[CURRENCY_CODE_SPACE];
static bool minor_by_code_ready = false;

static void
build_minor_table(void)
{
	memset(minor_by_code, -1, sizeof(minor_by_code));
	for (int i = 0; i < NUM_CURRENCIES; i++)
		minor_by_code[ca_currency_pack(currencies[i].iso, 3)] = currencies[i].minor;
	minor_by_code_ready = true;
}

int32
ca_currency_pack(const char *s, int len)
{
	int32		code = 0;

	if (len != 3)
		return -1;
	for (int i = 0; i < 3; i++)
	{
		char		c = s[i];

		if (c >= 'a' && c <= 'z')
			c = c - 'a' + 'A';
		if (c < 'A' || c > 'Z')
			return -1;
		code = (code << 5) | (c - 'A');
	}
	return code;
}

void
ca_currency_unpack(int32 code, char *buf)
{
	buf[0] = 'A' + ((code >> 10) & 31);
	buf[1] = 'A' + ((code >> 5) & 31);
	buf[2] = 'A' + (code & 31);
	buf[3] = '\0';
}

int
ca_currency_minor_units(int32 code)
{
	if (code < 0 || code >= CURRENCY_CODE_SPACE)
		return -1;
	if (unlikely(!minor_by_code_ready))
		build_minor_table();
	return minor_by_code[code];
}

bool
ca_currency_entry(int i, const char **iso, int *minor)
{
	if (i < 0 || i >= NUM_CURRENCIES)
		return false;
	*iso = currencies[i].iso;
	*minor = currencies[i].minor;
	return true;
}

int64
ca_pow10_int64(int n)
{
	static const int64 p[] = {
		INT64CONST(1), INT64CONST(10), INT64CONST(100), INT64CONST(1000),
		INT64CONST(10000), INT64CONST(100000), INT64CONST(1000000),
		INT64CONST(10000000), INT64CONST(100000000), INT64CONST(1000000000),
		INT64CONST(10000000000), INT64CONST(100000000000),
		INT64CONST(1000000000000), INT64CONST(10000000000000),
		INT64CONST(100000000000000), INT64CONST(1000000000000000),
		INT64CONST(10000000000000000), INT64CONST(100000000000000000),
		INT64CONST(1000000000000000000)
	};

	Assert(n >= 0 && n < (int) lengthof(p));
	return p[n];
}

int32
ca_currency_lookup_or_error(const char *s, int len)
{
	int32		code = ca_currency_pack(s, len);

	if (code < 0 || ca_currency_minor_units(code) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown currency \"%.*s\"", len, s),
				 errhint("Use an active ISO 4217 code such as EUR, USD, CHF or JPY; customer_account.currencies() lists them.")));
	return code;
}
