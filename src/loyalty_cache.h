/*-------------------------------------------------------------------------
 *
 * loyalty_cache.h
 *	  The loyalty programme's configuration (terms, earn rules, multipliers,
 *	  tiers, reactivation rules, and the channels' kinds and return
 *	  windows), cached per backend and reloaded after any change.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_LOYALTY_CACHE_H
#define CUSTOMER_ACCOUNT_LOYALTY_CACHE_H

#include "postgres.h"

#include "loyalty_rules.h"

typedef struct LoyaltyChannel
{
	char	   *code;
	int			kind;			/* index into ca_channel_kind_names */
	char		currency[4];
	int32		return_window_days;
} LoyaltyChannel;

/* the programme as configured now; valid until the next call of this function */
extern const LoyaltyPolicy *ca_loyalty_policy(void);

/* a channel by code; RA002 when unknown */
extern const LoyaltyChannel *ca_loyalty_channel(const char *code);

/* a channel kind name to its index; -1 when unknown */
extern int	ca_loyalty_kind_index(const char *kind);

#endif
