/*-------------------------------------------------------------------------
 *
 * config.h
 *	  The configuration cache: policy, credit policy, payment methods,
 *	  channels and segment averages, read once per backend and reloaded
 *	  when a change is announced (config.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_CONFIG_H
#define CUSTOMER_ACCOUNT_CONFIG_H

#include "postgres.h"

#include "channel_kind.h"

/*
 * configuration, cached per backend; amounts in millionths of a major unit
 * (CA_CONF_SCALE; see conf_amount in config.c),
 * names palloc'd in the cache (any length).  A pointer returned by the
 * functions below stays valid until the end of the transaction.
 */

/* the largest amount of a configuration table, in major units (CHECK bounds) */
#define CA_CONF_AMOUNT_MAX	INT64CONST(1000000000000)
/* cached amounts are in 1/CA_CONF_SCALE major units: 1e12 * 1e6 fits int64 */
#define CA_CONF_SCALE_DIGITS 6

typedef struct PolicyConf
{
	int32		new_customer_days;
	double		segment_band;
	int32		incentive_after_days;
} PolicyConf;

typedef struct CreditPolicyConf
{
	bool		any_kind;
	int			kind;			/* index into ca_channel_kind_names, -1 unknown */
	bool		any_group;
	char	   *group;
	bool		any_currency;
	char	   *currency;
	int64		credit_limit;
	int64		first_order_limit;
	int32		new_customer_days;
	int32		new_customer_paid_orders;
	int64		overdue_tolerance;
	int32		overdue_grace_days;
	double		max_return_rate;
	int32		return_rate_min_orders;
	int32		dunning_block_level;
} CreditPolicyConf;

typedef struct MethodConf
{
	char	   *code;
	char		settlement;		/* 'c' credit, 'p' prepaid, 'i' immediate */
	bool		all_kinds;
	bool		kinds[CHANNEL_KINDS];
	bool		has_min;
	int64		min_amount;
	bool		has_max;
	int64		max_amount;
} MethodConf;

typedef struct ChannelConf
{
	char	   *code;
	int			kind;			/* index into ca_channel_kind_names */
	char	   *currency;
	int32		payment_term_days;
} ChannelConf;

extern const PolicyConf *ca_policy(void);
extern bool ca_segment_avg(const char *currency, double *avg);
extern const CreditPolicyConf *ca_credit_policy(int kind, const char *group, const char *currency);
extern const MethodConf *ca_methods(int *n);
extern const ChannelConf *ca_channel(const char *code);

/* a cached amount -> minor units of a currency (0 to 4 digits), half to even */
extern int64 ca_conf_to_units(int64 conf_amount, int minor);


#endif
