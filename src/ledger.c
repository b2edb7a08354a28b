/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  The ledger writer: every business event appends its ledger rows here
 *	  (ca_book_entry, book_entries), and ledger_guard keeps the books
 *	  append-only.  The ledger is the truth; account_state is its running
 *	  sum (account_state.c), and channel_day, the DBA's per-channel and
 *	  day figures, follows from the 'order', 'cancel' and 'return' entries
 *	  booked here (channel_day_book).
 *
 *	  channel_day has one row per UTC day, channel, currency and slot: a
 *	  transaction books into a slot no other running or prepared
 *	  transaction holds (channel_day_slot), so the summary makes no till
 *	  wait for another and no two bookings deadlock on it; channel_report()
 *	  adds the slots up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/backendid.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "posting_int.h"
#include "relcache_watch.h"
#include "spi_util.h"

static SPIPlanPtr plan_ledger;
static SPIPlanPtr plan_channel_day;

/* does channel_day exist?  -1 not known yet (again after any relcache change) */
static int	has_channel_day = -1;

/* a relation changed: look for channel_day again (ALTER EXTENSION UPDATE creates it) */
static void
channel_day_invalidate(Datum arg, Oid relid)
{
	has_channel_day = -1;
}

/* false in a database still at 1.0.0: the library serves every version */
static bool
channel_day_exists(void)
{
	if (has_channel_day < 0)
	{
		ca_watch_relcache(channel_day_invalidate);
		has_channel_day = OidIsValid(get_relname_relid("channel_day",
													   get_namespace_oid("customer_account", false)));
	}
	return has_channel_day == 1;
}

/* field 4 of the advisory lock tag of a channel_day slot: apart from pg_advisory_*() (1 and 2) */
#define CHANNEL_DAY_LOCK_FIELD4 0xCA
#define CHANNEL_DAY_LOCK_KEY	0x43445359	/* "CDSY" */

/*
 * This transaction's slot of channel_day: the backend's id, unless a
 * prepared transaction (two-phase commit) still holds that slot; its rows
 * stay locked until it is committed or rolled back, while the id has gone
 * to this session.  A slot is held by a transaction-level advisory lock,
 * taken without waiting (and passed on to the prepared transaction by
 * PREPARE TRANSACTION); a busy slot makes the transaction take the id plus
 * a multiple of MaxBackends instead.  Asked again in the same transaction,
 * the first free slot is the one it holds already.
 */
static int32
channel_day_slot(void)
{
	for (int32 k = 0; k < 1000; k++)
	{
		int32		slot = MyBackendId + k * MaxBackends;
		LOCKTAG		tag;

		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, CHANNEL_DAY_LOCK_KEY, (uint32) slot, CHANNEL_DAY_LOCK_FIELD4);
		if (LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
			return slot;
	}
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("no free slot in channel_day for backend %d", MyBackendId),
			 errhint("Prepared transactions hold the slots: COMMIT PREPARED or ROLLBACK PREPARED them (pg_prepared_xacts).")));
	return 0;					/* not reached */
}

/* the UTC day of ts */
static DateADT
utc_day(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	ca_utc_fields(ts, &tm, &fsec);
	return date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE;
}

/*
 * what an entry adds to channel_day: an order counts on the day it was
 * placed, its cancellation takes it off that day again (sold_at), a return
 * counts on its own day under the channel that sold the goods
 */
static void
channel_day_book(const LedgerEntry *e)
{
	Oid			types[7] = {DATEOID, TEXTOID, TEXTOID, INT4OID, INT4OID, INT8OID, INT8OID};
	Datum		values[7];
	TimestampTz day_of;

	if (strcmp(e->entry_type, "order") == 0)
		day_of = e->event_at;
	else if (strcmp(e->entry_type, "cancel") == 0)
		day_of = e->sold_at;
	else if (strcmp(e->entry_type, "return") == 0)
		day_of = e->event_at;
	else
		return;
	if (!channel_day_exists())
		return;
	Assert(e->channel != NULL);
	ca_prepare(&plan_channel_day,
			   "INSERT INTO customer_account.channel_day AS d"
			   " (day, channel, currency, slot, orders, purchased, returned)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7)"
			   " ON CONFLICT (day, channel, currency, slot) DO UPDATE"
			   " SET orders = d.orders + excluded.orders, purchased = d.purchased + excluded.purchased,"
			   " returned = d.returned + excluded.returned",
			   7, types);
	values[0] = DateADTGetDatum(utc_day(day_of));
	values[1] = CStringGetTextDatum(e->channel);
	values[2] = CStringGetTextDatum(e->currency);
	values[3] = Int32GetDatum(channel_day_slot());
	values[4] = Int32GetDatum(e->order_delta);
	/* purchased: an order's value, less a cancellation's; a return's revenue_delta is not purchase */
	values[5] = Int64GetDatum(strcmp(e->entry_type, "return") == 0 ? 0 : e->revenue_delta);
	values[6] = Int64GetDatum(e->returned_delta);
	ca_execute(plan_channel_day, values, NULL, false, 0);
}

/* append one ledger row (plan prepared once per backend) */
void
ca_book_entry(const LedgerEntry *e)
{
	Oid			types[17] = {INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID,
	INT8OID, INT4OID, DATEOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[17];
	char		nulls[17];

	ca_prepare(&plan_ledger,
			   "INSERT INTO customer_account.ledger (customer_id, currency, entry_type, amount,"
			   " open_delta, credit_delta, revenue_delta, returned_delta, order_delta, revenue_period,"
			   " event_at, channel, channel_kind, order_no, payment_ref, method, note)"
			   " VALUES ($1, $2, $3, customer_account.currency_amount_from_minor_units($4, $2),"
			   " $5, $6, $7, $8, $9, $10, $11, $12, $13::customer_account.channel_kind, $14, $15, $16, $17)",
			   17, types);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(e->customer_id);
	values[1] = CStringGetTextDatum(e->currency);
	values[2] = CStringGetTextDatum(e->entry_type);
	values[3] = Int64GetDatum(e->amount);
	values[4] = Int64GetDatum(e->open_delta);
	values[5] = Int64GetDatum(e->credit_delta);
	values[6] = Int64GetDatum(e->revenue_delta);
	values[7] = Int64GetDatum(e->returned_delta);
	values[8] = Int32GetDatum(e->order_delta);
	values[9] = DateADTGetDatum(e->revenue_period);
	if (!e->has_period)
		nulls[9] = 'n';
	values[10] = TimestampTzGetDatum(e->event_at);
	values[11] = text_or_null(e->channel, &nulls[11]);
	values[12] = text_or_null(e->channel_kind, &nulls[12]);
	values[13] = text_or_null(e->order_no, &nulls[13]);
	values[14] = text_or_null(e->payment_ref, &nulls[14]);
	values[15] = text_or_null(e->method, &nulls[15]);
	values[16] = text_or_null(e->note, &nulls[16]);
	ca_execute(plan_ledger, values, nulls, false, 0);
	channel_day_book(e);
}

static SPIPlanPtr plan_ledger2;

/* the 17 parameters of one ledger row, for the two-row INSERT */
static void
entry_params(const LedgerEntry *e, Datum *values, char *nulls)
{
	values[0] = Int64GetDatum(e->customer_id);
	values[1] = CStringGetTextDatum(e->currency);
	values[2] = CStringGetTextDatum(e->entry_type);
	values[3] = Int64GetDatum(e->amount);
	values[4] = Int64GetDatum(e->open_delta);
	values[5] = Int64GetDatum(e->credit_delta);
	values[6] = Int64GetDatum(e->revenue_delta);
	values[7] = Int64GetDatum(e->returned_delta);
	values[8] = Int32GetDatum(e->order_delta);
	values[9] = DateADTGetDatum(e->revenue_period);
	nulls[9] = e->has_period ? ' ' : 'n';
	values[10] = TimestampTzGetDatum(e->event_at);
	values[11] = text_or_null(e->channel, &nulls[11]);
	values[12] = text_or_null(e->channel_kind, &nulls[12]);
	values[13] = text_or_null(e->order_no, &nulls[13]);
	values[14] = text_or_null(e->payment_ref, &nulls[14]);
	values[15] = text_or_null(e->method, &nulls[15]);
	values[16] = text_or_null(e->note, &nulls[16]);
}

/* two ledger rows in one statement (an order and its settlement) */
static void
book_entries(const LedgerEntry *a, const LedgerEntry *b)
{
	Oid			types[34];
	Datum		values[34];
	char		nulls[34];
	static const Oid one[17] = {INT8OID, TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID,
		INT8OID, INT4OID, DATEOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID};

	memcpy(types, one, sizeof(one));
	memcpy(types + 17, one, sizeof(one));
	ca_prepare(&plan_ledger2,
			   "INSERT INTO customer_account.ledger (customer_id, currency, entry_type, amount,"
			   " open_delta, credit_delta, revenue_delta, returned_delta, order_delta, revenue_period,"
			   " event_at, channel, channel_kind, order_no, payment_ref, method, note)"
			   " VALUES ($1, $2, $3, customer_account.currency_amount_from_minor_units($4, $2),"
			   " $5, $6, $7, $8, $9, $10, $11, $12, $13::customer_account.channel_kind, $14, $15, $16, $17),"
			   " ($18, $19, $20, customer_account.currency_amount_from_minor_units($21, $19),"
			   " $22, $23, $24, $25, $26, $27, $28, $29, $30::customer_account.channel_kind, $31, $32, $33, $34)",
			   34, types);
	memset(nulls, ' ', sizeof(nulls));
	entry_params(a, values, nulls);
	entry_params(b, values + 17, nulls + 17);
	ca_execute(plan_ledger2, values, nulls, false, 0);
	channel_day_book(a);
	channel_day_book(b);
}

/*
 * What entries add up to, for the account state: every money figure and
 * counter is the sum of its column over the entries ('purchased' is the
 * revenue of orders and their cancellations), the last event the latest
 * entry, a purchase the 'order' entry (its channel kind), the month of the
 * revenue counters the entries' revenue period.  A merge's transfer pair
 * is not an event of the account (merge.c).
 */
static void
delta_of_entries(const LedgerEntry *entries, int n, const PostingExtra *x, AccountDelta *d)
{
	memset(d, 0, sizeof(*d));
	for (int i = 0; i < n; i++)
	{
		const LedgerEntry *e = &entries[i];

		if (e->customer_id != entries[0].customer_id || strcmp(e->currency, entries[0].currency) != 0)
			elog(ERROR, "the entries of one posting belong to one customer and currency");
		d->balance += e->amount;
		d->open += e->open_delta;
		d->credit += e->credit_delta;
		d->revenue += e->revenue_delta;
		d->returned += e->returned_delta;
		d->orders += e->order_delta;
		if (strcmp(e->entry_type, "order") == 0 || strcmp(e->entry_type, "cancel") == 0)
			d->purchased += e->revenue_delta;
		if (i == 0 || e->event_at > d->event_at)
			d->event_at = e->event_at;
		if (strcmp(e->entry_type, "order") == 0)
		{
			d->has_purchase = true;
			d->channel_kind = e->channel_kind;
		}
		if (e->has_period)
		{
			if (d->has_period && d->period != e->revenue_period)
				elog(ERROR, "the entries of one posting belong to one revenue period");
			d->has_period = true;
			d->period = e->revenue_period;
		}
	}
	if (x != NULL)
	{
		d->paid_orders = x->paid_orders;
		d->has_new_due = x->has_new_due;
		d->new_due_at = x->new_due_at;
		d->recompute_due = x->recompute_due;
	}
}

/* book the entries of one event and move the account state by their sum */
void
ca_post_entries(const LedgerEntry *entries, int n, const PostingExtra *x)
{
	AccountDelta d;

	Assert(n > 0);
	delta_of_entries(entries, n, x, &d);
	if (n == 2)
		book_entries(&entries[0], &entries[1]);
	else
		for (int i = 0; i < n; i++)
			ca_book_entry(&entries[i]);
	ca_apply_delta(entries[0].customer_id, entries[0].currency, &d);
}

/*
 * ledger_guard: BEFORE UPDATE OR DELETE FOR EACH ROW, and BEFORE TRUNCATE
 * on the append-only tables.  The argument names the table for the message.
 */
PG_FUNCTION_INFO_V1(ledger_guard);
Datum
ledger_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trig = check_trigger(fcinfo, "ledger_guard");
	const char *op = TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? "UPDATE" :
		TRIGGER_FIRED_BY_DELETE(trig->tg_event) ? "DELETE" :
		TRIGGER_FIRED_BY_TRUNCATE(trig->tg_event) ? "TRUNCATE" : "INSERT";

	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s on %s is not allowed: the books are append-only", op,
					RelationGetRelationName(trig->tg_relation)),
			 errdetail("History is never rewritten."),
			 errhint("Correct a mistake with a reversing entry (cancel_order, a return, a correction).")));
	return PointerGetDatum(NULL);
}
