/*-------------------------------------------------------------------------
 *
 * money.h
 *	  currency_amount: exact money, 64-bit minor units plus ISO 4217 code.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_MONEY_H
#define CUSTOMER_ACCOUNT_MONEY_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/numeric.h"

/*
 * On-disk and in-memory layout (16 bytes, double alignment, pass by
 * reference).  pad is always zero so that equal values are equal images.
 */
typedef struct CurrencyAmount
{
	int64		units;			/* amount in minor units (cents) */
	int32		code;			/* packed ISO 4217 code, see currency.h */
	int32		pad;
} CurrencyAmount;

#define DatumGetCurrencyAmountP(X)	((CurrencyAmount *) DatumGetPointer(X))
#define CurrencyAmountPGetDatum(X)	PointerGetDatum(X)
#define PG_GETARG_CURRENCY_AMOUNT_P(n) DatumGetCurrencyAmountP(PG_GETARG_DATUM(n))
#define PG_RETURN_CURRENCY_AMOUNT_P(x) return CurrencyAmountPGetDatum(x)

extern CurrencyAmount *ca_make_currency_amount(int64 units, int32 code);
extern char *ca_currency_amount_to_cstring(const CurrencyAmount *ca);
/* raise 22023 naming both currencies when they differ */
extern void ca_check_same_currency(int32 a, int32 b, const char *what);

/* an exact numeric rounded half to even to an integer (22003 when it does not fit int64) */
extern int64 ca_numeric_round_half_even(Numeric x, const char *what);

#endif
