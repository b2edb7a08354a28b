/*-------------------------------------------------------------------------
 *
 * account_state.c
 *	  The account-state writer: ca_lock_account locks (and on first use
 *	  creates) the state row of one customer and currency, ca_apply_delta adds
 *	  what one business event does to it (with the month ring and
 *	  account_period), ca_check_customer refuses unknown and merged customers.
 *
 *	  Invariant kept for every customer and currency:
 *	  	balance = open_amount - store_credit
 *	  and every column of account_state is the sum of the ledger's deltas.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "config.h"
#include "direct.h"
#include "posting_int.h"
#include "spi_util.h"

static SPIPlanPtr plan_lock_state;
static SPIPlanPtr plan_insert_state;
static SPIPlanPtr plan_update_state;
static SPIPlanPtr plan_period;

/* the UTC calendar fields of ts (no time zone argument means UTC) */
void
ca_utc_fields(TimestampTz ts, struct pg_tm *tm, fsec_t *fsec)
{
	if (timestamp2tm(ts, NULL, tm, fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
}

/* the first day of the UTC month of ts (the revenue period) */
DateADT
ca_month_of(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	ca_utc_fields(ts, &tm, &fsec);
	return date2j(tm.tm_year, tm.tm_mon, 1) - POSTGRES_EPOCH_JDATE;
}

/* read the state row of (customer, currency) FOR UPDATE; false when there is none */
static bool
fetch_locked_state(int64 customer_id, const char *currency, StateRow *st)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];
	bool		n;

	ca_prepare(&plan_lock_state,
			   "SELECT balance, open_amount, store_credit, lifetime_revenue, lifetime_returned,"
			   " orders_count, paid_orders, dunning_level, next_due_at, last_event_at"
			   " FROM customer_account.account_state"
			   " WHERE customer_id = $1 AND currency = $2 FOR UPDATE",
			   2, types);
	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	ca_execute(plan_lock_state, values, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	memset(st, 0, sizeof(*st));
	strlcpy(st->currency, currency, sizeof(st->currency));
	st->balance = ca_get_int64(0, 1, NULL);
	st->open_amount = ca_get_int64(0, 2, NULL);
	st->store_credit = ca_get_int64(0, 3, NULL);
	st->lifetime_revenue = ca_get_int64(0, 4, NULL);
	st->lifetime_returned = ca_get_int64(0, 5, NULL);
	st->orders_count = ca_get_int32(0, 6, NULL);
	st->paid_orders = ca_get_int32(0, 7, NULL);
	st->dunning_level = ca_get_int32(0, 8, NULL);
	st->next_due = ca_get_timestamptz(0, 9, &n);
	st->has_next_due = !n;
	st->last_event = ca_get_timestamptz(0, 10, &n);
	st->has_last_event = !n;
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/* RA002: customer_id was merged into merged_into */
void
ca_merged_error(int64 customer_id, int64 merged_into)
{
	ereport(ERROR,
			(errcode(ERRCODE_CA_UNKNOWN),
			 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT, customer_id, merged_into),
			 errhint("Use the surviving customer " INT64_FORMAT ".", merged_into)));
}

static SPIPlanPtr plan_lock_customer;

/*
 * Hold the customer row FOR SHARE before creating an account row for it.
 * A merge holds both customer rows FOR NO KEY UPDATE, which conflicts: so
 * either the merge waits for this transaction and then moves the new row
 * with the others, or this waits for the merge and, seeing the customer
 * merged, refuses with RA002.  Without it, a first booking in a new
 * currency could land on a customer being merged away and stay there.
 */
static void
lock_customer_share(int64 customer_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(customer_id)};
	bool		isnull;
	int64		into;

	ca_prepare(&plan_lock_customer,
			   "SELECT merged_into FROM customer_account.customer WHERE customer_id = $1 FOR SHARE",
			   1, types);
	ca_execute(plan_lock_customer, values, NULL, false, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown customer " INT64_FORMAT, customer_id)));
	into = ca_get_int64(0, 1, &isnull);
	SPI_freetuptable(SPI_tuptable);
	if (!isnull)
		ca_merged_error(customer_id, into);
}

/*
 * Lock the account state row of (customer, currency), creating it on first
 * use.  Everything a writer decides (credit limit, returnable quantity) is
 * decided after this lock, so two sessions for the same customer cannot
 * both pass a limit that only one fits under.
 */
void
ca_lock_account(int64 customer_id, const char *currency, StateRow *st)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	if (fetch_locked_state(customer_id, currency, st))
	{
		/* a merge that held this row may have committed while we waited */
		ca_check_customer(customer_id);
		return;
	}
	/* the first booking in this currency: exclude a merge of the customer */
	lock_customer_share(customer_id);
	ca_prepare(&plan_insert_state,
			   "INSERT INTO customer_account.account_state (customer_id, currency)"
			   " VALUES ($1, $2) ON CONFLICT (customer_id, currency) DO NOTHING",
			   2, types);
	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	ca_execute(plan_insert_state, values, NULL, false, 0);
	if (!fetch_locked_state(customer_id, currency, st))
		elog(ERROR, "account state of customer " INT64_FORMAT " in %s vanished", customer_id, currency);
}

/*
 * RA002 for an unknown or merged customer.  Read with a fresh snapshot: a
 * merge that committed while this writer waited for the customer's row
 * (the foreign-key check) must be seen.
 */
void
ca_check_customer(int64 customer_id)
{
	CustomerRow c;

	ca_read_customer(customer_id, GetLatestSnapshot(), &c);
	if (c.merged)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT, customer_id, c.merged_into),
				 errhint("Book on the surviving customer " INT64_FORMAT ".", c.merged_into)));
}

#define UPDATE_STATE_SQL(ring_clause) \
	"UPDATE customer_account.account_state s SET" \
	" balance = balance + $3, open_amount = open_amount + $4," \
	" store_credit = store_credit + $5, lifetime_revenue = lifetime_revenue + $6," \
	" lifetime_returned = lifetime_returned + $7, orders_count = orders_count + $8," \
	" paid_orders = paid_orders + $9," \
	" first_order_at = CASE WHEN $12 THEN LEAST(first_order_at, $10) ELSE first_order_at END," \
	" last_purchase_at = CASE WHEN $12 THEN GREATEST(last_purchase_at, $10) ELSE last_purchase_at END," \
	" last_webshop = CASE WHEN $12 AND $11 = 'webshop' THEN GREATEST(last_webshop, $10) ELSE last_webshop END," \
	" last_store = CASE WHEN $12 AND $11 = 'store' THEN GREATEST(last_store, $10) ELSE last_store END," \
	" last_marketplace = CASE WHEN $12 AND $11 = 'marketplace' THEN GREATEST(last_marketplace, $10) ELSE last_marketplace END," \
	" last_callcenter = CASE WHEN $12 AND $11 = 'callcenter' THEN GREATEST(last_callcenter, $10) ELSE last_callcenter END," \
	" last_app = CASE WHEN $12 AND $11 = 'app' THEN GREATEST(last_app, $10) ELSE last_app END," \
	" next_due_at = CASE WHEN $16 THEN (SELECT min(i.due_at) FROM customer_account.open_item i" \
	"     WHERE i.customer_id = $1 AND i.currency = $2 AND i.settled_at IS NULL AND i.kind <> 'prepayment')" \
	"   WHEN $14 THEN LEAST(next_due_at, $13) ELSE next_due_at END," \
	" last_event_at = GREATEST(last_event_at, $15)," \
	" dunning_level = CASE WHEN $16 AND" CA_NOTHING_OVERDUE("now()") " THEN 0 ELSE dunning_level END," \
	" dunning_cycle = dunning_cycle + CASE WHEN $16 AND" CA_NOTHING_OVERDUE("now()") " THEN 1 ELSE 0 END," \
	ring_clause \
	" updated_at = now()" \
	" WHERE s.customer_id = $1 AND s.currency = $2"
/* the month ring beside account_period (1.1.0; absent until ALTER EXTENSION UPDATE) */
#define RING_CLAUSE \
	" month_ring = CASE WHEN $17 THEN customer_account.month_ring_add(month_ring, $18, $6, $19, $7, $8)" \
	"   ELSE month_ring END,"
static SPIPlanPtr plan_update_state_1_0;

/* add one event's delta to the state row, the month ring and account_period */
void
ca_apply_delta(int64 customer_id, const char *currency, const AccountDelta *d)
{
	SPIPlanPtr	plan;
	Oid			types[19] = {INT8OID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, INT8OID,
		INT4OID, INT4OID, TIMESTAMPTZOID, TEXTOID, BOOLOID, TIMESTAMPTZOID, BOOLOID, TIMESTAMPTZOID, BOOLOID,
	BOOLOID, DATEOID, INT8OID};
	Datum		values[19];
	char		nulls[19];

	plan = ca_state_has_ring()
		? ca_prepare(&plan_update_state, UPDATE_STATE_SQL(RING_CLAUSE), 19, types)
		: ca_prepare(&plan_update_state_1_0, UPDATE_STATE_SQL(""), 19, types);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	values[2] = Int64GetDatum(d->balance);
	values[3] = Int64GetDatum(d->open);
	values[4] = Int64GetDatum(d->credit);
	values[5] = Int64GetDatum(d->revenue);
	values[6] = Int64GetDatum(d->returned);
	values[7] = Int32GetDatum(d->orders);
	values[8] = Int32GetDatum(d->paid_orders);
	values[9] = TimestampTzGetDatum(d->event_at);
	values[10] = text_or_null(d->channel_kind, &nulls[10]);
	values[11] = BoolGetDatum(d->has_purchase);
	values[12] = TimestampTzGetDatum(d->new_due_at);
	values[13] = BoolGetDatum(d->has_new_due);
	values[14] = TimestampTzGetDatum(d->event_at);
	values[15] = BoolGetDatum(d->recompute_due);
	/* the month ring of the state row, next to account_period below */
	values[16] = BoolGetDatum(d->has_period);
	values[17] = DateADTGetDatum(d->has_period ? d->period : 0);
	values[18] = Int64GetDatum(d->purchased);
	if (ca_execute(plan, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "account state of customer " INT64_FORMAT " in %s not updated", customer_id, currency);
	if (SPI_processed == 0)
	{
		/* the first event of this customer and currency, booked without a lock */
		StateRow	st;

		ca_lock_account(customer_id, currency, &st);
		if (ca_execute(plan, values, nulls, false, 0) != SPI_OK_UPDATE || SPI_processed != 1)
			elog(ERROR, "account state of customer " INT64_FORMAT " in %s not updated", customer_id, currency);
	}

	if (d->has_period)
	{
		Oid			ptypes[7] = {INT8OID, TEXTOID, DATEOID, INT8OID, INT8OID, INT8OID, INT4OID};
		Datum		pvalues[7];

		ca_prepare(&plan_period,
				   "INSERT INTO customer_account.account_period AS p"
				   " (customer_id, currency, period, revenue, purchased, returned, orders)"
				   " VALUES ($1, $2, $3, $4, $5, $6, $7)"
				   " ON CONFLICT (customer_id, currency, period) DO UPDATE SET"
				   " revenue = p.revenue + EXCLUDED.revenue, purchased = p.purchased + EXCLUDED.purchased,"
				   " returned = p.returned + EXCLUDED.returned, orders = p.orders + EXCLUDED.orders",
				   7, ptypes);
		pvalues[0] = Int64GetDatum(customer_id);
		pvalues[1] = CStringGetTextDatum(currency);
		pvalues[2] = DateADTGetDatum(d->period);
		pvalues[3] = Int64GetDatum(d->revenue);
		pvalues[4] = Int64GetDatum(d->purchased);
		pvalues[5] = Int64GetDatum(d->returned);
		pvalues[6] = Int32GetDatum(d->orders);
		ca_execute(plan_period, pvalues, NULL, false, 0);
	}
}

/* dunning: level 0 and a new cycle where nothing is overdue at `at` (accounts locked by the caller) */
void
ca_end_dunning(TimestampTz at, Datum customer_ids, Datum currencies)
{
	Oid			types[3] = {TIMESTAMPTZOID, INT8ARRAYOID, TEXTARRAYOID};
	Datum		args[3];

	args[0] = TimestampTzGetDatum(at);
	args[1] = customer_ids;
	args[2] = currencies;
	if (SPI_execute_with_args("UPDATE customer_account.account_state s SET dunning_level = 0,"
							  " dunning_cycle = dunning_cycle + 1, updated_at = now()"
							  " FROM unnest($2, $3) AS k(c, cur)"
							  " WHERE s.customer_id = k.c AND s.currency = k.cur AND" CA_NOTHING_OVERDUE("$1"),
							  3, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not reset dunning levels");
}

/* dunning: the new levels of the accounts locked by the caller, by row version; the rows updated */
uint64
ca_set_dunning_levels(DateADT run_date, Datum tids, Datum levels)
{
	Oid			types[3] = {DATEOID, TIDARRAYOID, INT4ARRAYOID};
	Datum		args[3];

	args[0] = DateADTGetDatum(run_date);
	args[1] = tids;
	args[2] = levels;
	if (SPI_execute_with_args("UPDATE customer_account.account_state s SET dunning_level = u.l,"
							  " dunned_at = $1, updated_at = now()"
							  " FROM unnest($2, $3) AS u(t, l) WHERE s.ctid = u.t",
							  3, types, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update the dunning levels");
	return SPI_processed;
}
