/*-------------------------------------------------------------------------
 *
 * basket.c
 *	  The token of a saved basket: 12 characters of Crockford base32
 *	  (60 bits) from the operating system's strong random source, so a
 *	  token can be neither guessed nor enumerated.  The baskets themselves
 *	  are SQL (save_basket, resume_basket, checkout_basket).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#define BASKET_TOKEN_LEN 12

/* Crockford's base32: no I, L, O, U (nothing to misread on a receipt) */
static const char token_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* basket_token(): a new random basket token */
PG_FUNCTION_INFO_V1(basket_token);
Datum
basket_token(PG_FUNCTION_ARGS)
{
	uint8		bytes[8];
	uint64		bits = 0;
	char		token[BASKET_TOKEN_LEN + 1];

	if (!pg_strong_random(bytes, sizeof(bytes)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random basket token")));
	for (int i = 0; i < (int) sizeof(bytes); i++)
		bits = (bits << 8) | bytes[i];
	for (int i = 0; i < BASKET_TOKEN_LEN; i++)
	{
		token[i] = token_alphabet[bits & 31];
		bits >>= 5;
	}
	token[BASKET_TOKEN_LEN] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(token));
}
