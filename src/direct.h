/*-------------------------------------------------------------------------
 *
 * direct.h
 *	  The read path: index lookups straight into the account tables (no
 *	  SQL, no executor), and a per-backend cache of the configuration
 *	  tables that notices every change.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_DIRECT_H
#define CUSTOMER_ACCOUNT_DIRECT_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/date.h"
#include "utils/snapshot.h"

#define CHANNEL_KINDS 5
extern const char *const ca_channel_kind_names[CHANNEL_KINDS];

typedef struct CustomerRow
{
	bool		merged;
	int64		merged_into;
	bool		blocked;
	TimestampTz since;
	char		language[8];
	bool		has_limit;
	int64		limit_units;
	int32		limit_code;
	bool		has_group;
	char	   *group;			/* palloc'd, any length; NULL when none */
} CustomerRow;

typedef struct StateRow
{
	char		currency[4];
	int64		balance;
	int64		open_amount;
	int64		store_credit;
	int64		lifetime_revenue;
	int64		lifetime_returned;
	int32		orders_count;
	int32		paid_orders;
	int32		dunning_level;
	bool		has_next_due;
	TimestampTz next_due;
	bool		has_last_event;
	TimestampTz last_event;
	bool		has_last[CHANNEL_KINDS];
	TimestampTz last[CHANNEL_KINDS];
} StateRow;

typedef struct PeriodSums
{
	int64		revenue;
	int64		purchased;
	int64		returned;
	int32		orders;
} PeriodSums;

typedef struct ItemSums
{
	int64		open;			/* every unsettled item */
	int64		exposure;		/* unsettled receivables (not prepayment) */
	int64		overdue;		/* receivables due before the cut-off */
	int64		overdue_undisputed;
	bool		has_oldest;
	TimestampTz oldest_due;
} ItemSums;

/* RA002 when unknown; fills row (merged customers are reported, not raised) */
extern void ca_read_customer(int64 customer_id, Snapshot snap, CustomerRow *row);
/* the state rows of a customer, all currencies or one; returns how many (more than max: an error) */
extern int	ca_read_states(int64 customer_id, const char *currency, Snapshot snap, StateRow *rows, int max);
/* every state row of a customer, however many currencies (palloc'd) */
extern StateRow *ca_read_all_states(int64 customer_id, Snapshot snap, int *n);
extern void ca_read_periods(int64 customer_id, const char *currency, DateADT after, DateADT upto,
							Snapshot snap, PeriodSums *sums);
/* unsettled items; only_due_before: stop at the cut-off (overdue only) */
extern void ca_read_items(int64 customer_id, const char *currency, TimestampTz due_before,
						  TimestampTz undisputed_due_before, bool only_due_before, Snapshot snap,
						  ItemSums *sums);

/* an order by number: customer, total and the inserting transaction */
struct CurrencyAmount;
extern bool ca_read_order(const char *order_no, Snapshot snap, int64 *customer_id,
						  struct CurrencyAmount *total, TransactionId *xmin);
/* the sum of an order's lines in minor units (22023 on a foreign currency); returns the count */
extern int	ca_sum_order_lines(const char *order_no, Snapshot snap, int32 code, int64 *sum);

/* switch to the tables' owner with a pinned search_path, and back */
typedef struct OwnerContext
{
	Oid			save_user;
	int			save_sec;
	int			gucnest;
} OwnerContext;
extern void ca_become_owner(OwnerContext *oc);
extern void ca_restore_user(OwnerContext *oc);

/*
 * configuration, cached per backend; amounts in 1/10000 of a major unit,
 * names palloc'd in the cache (any length).  A pointer returned by the
 * functions below stays valid until the end of the transaction.
 */

/* the largest amount of a configuration table, in major units (CHECK bounds) */
#define CA_CONF_AMOUNT_MAX	INT64CONST(1000000000000)

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

/* 1/10000 major units -> minor units of a currency (0 to 4 digits) */
extern int64 ca_conf_to_units(int64 conf_amount, int minor);

#endif
