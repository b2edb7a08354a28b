/*-------------------------------------------------------------------------
 *
 * loyalty_rules.h
 *	  The loyalty rules over plain structs: which earn rule and multipliers
 *	  apply to an order line and what it earns, the customer's tier, what
 *	  a return takes back, when points are pending, available or expired,
 *	  which lots a debit consumes, and whether an order earns the
 *	  reactivation credit.  No SPI, no catalog access.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_LOYALTY_RULES_H
#define CUSTOMER_ACCOUNT_LOYALTY_RULES_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/numeric.h"

#define LR_ANY_KIND (-1)

/* the terms of one currency: what a point is worth, how long it lives */
typedef struct LoyaltyTerms
{
	char		currency[4];
	int			minor;			/* minor-unit digits of the currency */
	Numeric		point_value;	/* major units per point */
	int32		expiry_days;
	bool		has_pending_days;
	int32		pending_days;
} LoyaltyTerms;

/* a base earning rate; kind and sku_pattern narrow it */
typedef struct LoyaltyEarnRule
{
	char	   *code;
	Numeric		points_per_unit;
	int			kind;			/* LR_ANY_KIND or a channel kind index */
	text	   *sku_pattern;	/* LIKE pattern, NULL: any */
	bool		has_from;
	TimestampTz valid_from;
	bool		has_to;
	TimestampTz valid_to;
} LoyaltyEarnRule;

/* a factor that applies when all of its conditions match */
typedef struct LoyaltyMultiplier
{
	char	   *code;
	Numeric		factor;
	char	   *tier;			/* NULL: any tier (or none) */
	int			kind;
	text	   *sku_pattern;
	bool		has_from;
	TimestampTz valid_from;
	bool		has_to;
	TimestampTz valid_to;
} LoyaltyMultiplier;

typedef struct LoyaltyTier
{
	char	   *tier;
	char		currency[4];
	int64		min_units;		/* rolling 12-month revenue threshold */
} LoyaltyTier;

typedef struct LoyaltyReactivationRule
{
	char	   *code;
	int			target_kind;
	int32		absent_days;
	int			source_kind;
	int32		min_purchases;
	int32		within_days;
	bool		has_credit;
	int64		credit_units;
	int32		credit_code;	/* packed currency of credit */
	bool		has_percent;
	Numeric		credit_percent;
	bool		has_max;
	int64		max_units;
	int32		max_code;
	int32		once_per_days;
} LoyaltyReactivationRule;

/* the whole programme, as the configuration cache holds it */
typedef struct LoyaltyPolicy
{
	LoyaltyTerms *terms;
	int			nterms;
	LoyaltyEarnRule *rules;
	int			nrules;
	LoyaltyMultiplier *mults;
	int			nmults;
	LoyaltyTier *tiers;
	int			ntiers;
	LoyaltyReactivationRule *react;
	int			nreact;
	bool		tier_multipliers;	/* some multiplier asks for a tier */
	bool		installed;		/* false: the schema predates loyalty (not yet updated) */
} LoyaltyPolicy;

/* the order a line belongs to, as far as earning is concerned */
typedef struct LoyaltyOrderFacts
{
	int			kind;
	TimestampTz placed_at;
	const char *tier;			/* the customer's tier just before the order */
	int			minor;
	int64		total;			/* the order total, minor units */
	int64		paid_by_credit; /* the part of it paid with store credit */
} LoyaltyOrderFacts;

typedef struct LoyaltyLineFacts
{
	text	   *sku;
	int32		qty;
	int64		value;			/* what the customer pays for the line, minor units */
} LoyaltyLineFacts;

#define LR_MAX_MULTIPLIERS 16

/* what one line earns, and why */
typedef struct LoyaltyLineEarning
{
	const LoyaltyEarnRule *rule;
	int			nmults;
	const LoyaltyMultiplier *mults[LR_MAX_MULTIPLIERS];
	Numeric		factor;			/* the product of the multipliers */
	int64		eligible;		/* the line value that earns (store credit left out) */
	int64		points;
} LoyaltyLineEarning;

/* one lot as the readings and debits see it */
typedef struct LoyaltyLotState
{
	int64		lot_id;
	int64		remaining;
	TimestampTz earned_at;
	bool		has_available;	/* false: pending until delivery */
	TimestampTz available_at;
	TimestampTz expires_at;
} LoyaltyLotState;

typedef struct LoyaltyReading
{
	int64		available;
	int64		pending;
	int64		expiring_next;
	bool		has_expiring;
	TimestampTz expiring_at;
} LoyaltyReading;

/* what the reactivation rule looks at for one order */
typedef struct ReactivationFacts
{
	int32		currency_code;
	int64		total;
	TimestampTz placed_at;
	bool		has_previous;	/* an earlier, not cancelled order on the target kind */
	TimestampTz previous_at;
	int32		source_purchases;	/* on the source kind within within_days before */
	bool		granted_recently;	/* this rule's credit within once_per_days */
} ReactivationFacts;

extern const LoyaltyTerms *ca_lr_terms(const LoyaltyPolicy *p, const char *currency);
extern bool ca_lr_sku_matches(text *pattern, text *sku);
extern const LoyaltyEarnRule *ca_lr_earn_rule(const LoyaltyPolicy *p, int kind, text *sku, TimestampTz at);
extern bool ca_lr_line_earning(const LoyaltyPolicy *p, const LoyaltyOrderFacts *o, const LoyaltyLineFacts *l,
							LoyaltyLineEarning *out);
extern const char *ca_lr_tier(const LoyaltyPolicy *p, const char *currency, int64 revenue_12m);
extern int64 ca_lr_return_points(int64 points, int32 qty, int32 returned_qty, int64 reversed, int32 k);
extern int32 ca_lr_window_days(const LoyaltyTerms *t, int32 channel_window_days);
extern void ca_lr_lot_dates(TimestampTz delivered_at, int32 window_days, int32 expiry_days,
						 TimestampTz *available_at, TimestampTz *expires_at);
extern void ca_lr_reading(const LoyaltyLotState *lots, int n, TimestampTz as_of, LoyaltyReading *r);
extern int64 ca_lr_plan_debit(const LoyaltyLotState *lots, int n, int64 points, TimestampTz at,
						   bool pending_too, int64 *take);
extern int64 ca_lr_points_value(int64 points, Numeric point_value, int minor);
extern const char *ca_lr_reactivation(const LoyaltyReactivationRule *r, const ReactivationFacts *f,
								   int64 *credit);

#endif
