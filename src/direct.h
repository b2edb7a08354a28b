/*-------------------------------------------------------------------------
 *
 * direct.h
 *	  The read path: index lookups straight into the account tables (no
 *	  SQL, no executor), the relation cache behind them and the switch to
 *	  the tables' owner.  The configuration cache is in config.h (it uses these reads).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_DIRECT_H
#define CUSTOMER_ACCOUNT_DIRECT_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/date.h"
#include "utils/snapshot.h"

#include "channel_kind.h"
#include "month_ring.h"

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
	bool		has_ring;		/* false before ALTER EXTENSION UPDATE */
	MonthRing	ring;			/* the twelve-month buckets */
	bool		has_customer;	/* the customer facts below are filled */
	CustomerRow customer;		/* as cached on the row (state_facts.c) */
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

/* does account_state carry the month ring and customer facts (1.1.0)? */
extern bool ca_state_has_ring(void);
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

/* one unsettled open item, as ca_scan_unsettled passes it on */
typedef struct UnsettledItem
{
	int64		customer_id;
	char		currency[4];
	TimestampTz due_at;
	TimestampTz created_at;
	int64		open;
	bool		prepayment;
	bool		disputed;
} UnsettledItem;
typedef void (*UnsettledCallback) (const UnsettledItem *item, void *arg);

/* every unsettled item, or those of one customer and currency (due before a cut-off) */
extern void ca_scan_unsettled(const int64 *customer_id, const char *currency, bool has_due_before,
							  TimestampTz due_before, Snapshot snap, UnsettledCallback cb, void *arg);

/* an order by number: customer, total and the inserting transaction */
struct CurrencyAmount;
extern bool ca_read_order(const char *order_no, Snapshot snap, int64 *customer_id,
						  struct CurrencyAmount *total, TransactionId *xmin);
/* the sum of an order's lines in minor units (22023 on a foreign currency); returns the count */
extern int	ca_sum_order_lines(const char *order_no, Snapshot snap, int32 code, int64 *sum);

/* resolve (once per backend) the relations read here; registers the invalidation callback */
extern void ca_ensure_rels(void);

/* switch to the tables' owner with a pinned search_path, and back */
typedef struct OwnerContext
{
	Oid			save_user;
	int			save_sec;
	int			gucnest;
} OwnerContext;
extern void ca_become_owner(OwnerContext *oc);
extern void ca_restore_user(OwnerContext *oc);

#endif
