/*-------------------------------------------------------------------------
 *
 * currency.h
 *	  ISO 4217 currency codes and their minor units.
 *
 * A currency is carried in a 15-bit code: three upper-case letters, five
 * bits each, first letter most significant.  Integer order of the packed
 * code is therefore alphabetical order of the ISO code, which is the order
 * the B-tree operator class promises.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_CURRENCY_H
#define CUSTOMER_ACCOUNT_CURRENCY_H

#include "postgres.h"

#define CURRENCY_CODE_SPACE 32768

/* pack three letters A-Z into a code; returns -1 when not three letters */
extern int32 ca_currency_pack(const char *s, int len);
extern void ca_currency_unpack(int32 code, char *buf /* at least 4 bytes */ );

/* minor-unit digits of a packed code, or -1 when the code is not ISO 4217 */
extern int	ca_currency_minor_units(int32 code);

/* iterate the table: returns false past the end */
extern bool ca_currency_entry(int i, const char **iso, int *minor);

/* 10^n for n in 0..18 */
extern int64 ca_pow10_int64(int n);

/* look up a currency given as text, raising 22023 when unknown */
extern int32 ca_currency_lookup_or_error(const char *s, int len);

#endif
