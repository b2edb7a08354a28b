/*-------------------------------------------------------------------------
 *
 * posting.h
 *	  The posting core: the one place that writes the ledger, the open items
 *	  and the account state.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_POSTING_H
#define CUSTOMER_ACCOUNT_POSTING_H

#include "postgres.h"
#include "datatype/timestamp.h"

#include "config.h"
#include "direct.h"

/*
 * The account state row of one customer and currency is StateRow
 * (direct.h), shared by the read path, the decisions and the writers.
 * ca_lock_account fills its money figures, counters, dunning level, next due
 * date and last event; the ring and the customer facts stay unset.
 */

/*
 * What one business event does to an account (minor units).  Derived from
 * the event's ledger entries by ca_post_entries (ledger.c), so that the
 * state is the sum of the ledger by construction; only a merge builds one
 * by hand (merge.c moves a whole account).
 */
typedef struct AccountDelta
{
	int64		balance;
	int64		open;
	int64		credit;
	int64		revenue;
	int64		purchased;
	int64		returned;
	int32		orders;
	int32		paid_orders;
	TimestampTz event_at;
	bool		has_purchase;	/* an order: last purchase, first order */
	const char *channel_kind;
	bool		has_new_due;	/* a new receivable with this due date */
	TimestampTz new_due_at;
	bool		recompute_due;	/* receivables were settled: recompute */
	bool		has_period;		/* revenue counters for this month */
	DateADT		period;
} AccountDelta;

/* one ledger row */
typedef struct LedgerEntry
{
	int64		customer_id;
	const char *currency;
	const char *entry_type;
	int64		amount;
	int64		open_delta;
	int64		credit_delta;
	int64		revenue_delta;
	int64		returned_delta;
	int32		order_delta;
	bool		has_period;
	DateADT		revenue_period;
	TimestampTz event_at;
	TimestampTz sold_at;		/* 'cancel': when the order was placed */
	const char *channel;
	const char *channel_kind;
	const char *order_no;
	const char *payment_ref;
	const char *method;
	const char *note;
} LedgerEntry;

/* what an event does that its ledger entries do not say: the receivables side */
typedef struct PostingExtra
{
	int32		paid_orders;	/* orders now fully paid (negative: no longer) */
	bool		has_new_due;	/* a new receivable with this due date */
	TimestampTz new_due_at;
	bool		recompute_due;	/* receivables were settled: recompute */
} PostingExtra;

/* inside an SPI connection: */
extern void ca_lock_account(int64 customer_id, const char *currency, StateRow *st);
/*
 * The posting core's entry point: book the ledger entries of one event (one
 * customer and currency) and move the account state by exactly what they
 * add up to, plus what x says of the receivables (x may be NULL).
 */
extern void ca_post_entries(const LedgerEntry *entries, int n, const PostingExtra *x);
/* the ledger rows alone (merge.c: a transfer between two accounts) */
extern void ca_book_entry(const LedgerEntry *e);
extern void ca_apply_delta(int64 customer_id, const char *currency, const AccountDelta *d);
extern DateADT ca_month_of(TimestampTz ts);
struct pg_tm;
extern void ca_utc_fields(TimestampTz ts, struct pg_tm *tm, fsec_t *fsec);
/* RA002 when the customer is unknown or was merged into another */
extern void ca_check_customer(int64 customer_id);

/* settle items with a return's credit: those of order_no, else overdue ones; returns what was applied */
extern int64 ca_settle_items(int64 customer_id, const char *currency, const char *order_no,
							 TimestampTz due_before, int64 amount, TimestampTz at, const char *ref,
							 int32 *orders_paid);

/*
 * SQL: the account row s has a dunning level, yet nothing of it is overdue
 * at clock (an SQL expression): the one rule by which a dunning cycle ends,
 * after a payment or return (clock now()), a merge (now()) or in a dunning
 * run (its run date)
 */
#define CA_NOTHING_OVERDUE(clock) \
	" s.dunning_level > 0 AND NOT EXISTS (SELECT 1 FROM customer_account.open_item i" \
	"   WHERE i.customer_id = s.customer_id AND i.currency = s.currency" \
	"     AND i.settled_at IS NULL AND NOT i.disputed AND i.kind <> 'prepayment'" \
	"     AND i.due_at < " clock ")"

/* dunning: level 0 and a new cycle where nothing is overdue at `at` (accounts locked by the caller) */
extern void ca_end_dunning(TimestampTz at, Datum customer_ids, Datum currencies);
/* dunning: the new levels of the accounts locked by the caller, by row version; the rows updated */
extern uint64 ca_set_dunning_levels(DateADT run_date, Datum tids, Datum levels);

/* post a dunning fee: a fee item due at once and its ledger entry */
extern void ca_post_fee(int64 customer_id, const char *currency, int64 fee, TimestampTz at, const char *note);

#endif
