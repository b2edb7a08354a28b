/*-------------------------------------------------------------------------
 *
 * posting.c
 *	  The posting core.  Every business event (order, cancellation,
 *	  payment, dunning fee, merge) funnels through here, whether it came
 *	  from a function such as place_order() or from a plain INSERT into the
 *	  order and payment tables: the C row triggers below call the same
 *	  routines.  In one transaction they append ledger rows, maintain the
 *	  open items and update the account state row, which they lock first so
 *	  that two writers for one customer serialize and different customers
 *	  never wait on each other.
 *
 *	  Invariant kept for every customer and currency:
 *		balance = open_amount - store_credit
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

#include "currency.h"
#include "direct.h"
#include "input.h"
#include "loyalty.h"
#include "money.h"
#include "payment.h"
#include "posting.h"
#include "restore.h"
#include "spi_util.h"

/* set while merge_customers() moves rows, so the order guard lets it */
static bool merging = false;

/* ------------------------------------------------------------------------
 * small helpers
 * ------------------------------------------------------------------------
 */
/* the UTC calendar fields of ts (no time zone argument means UTC) */
void
utc_fields(TimestampTz ts, struct pg_tm *tm, fsec_t *fsec)
{
	if (timestamp2tm(ts, NULL, tm, fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
}

DateADT
month_of(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	utc_fields(ts, &tm, &fsec);
	return date2j(tm.tm_year, tm.tm_mon, 1) - POSTGRES_EPOCH_JDATE;
}

static Datum
text_or_null(const char *s, char *null_flag)
{
	if (s == NULL)
	{
		*null_flag = 'n';
		return (Datum) 0;
	}
	*null_flag = ' ';
	return CStringGetTextDatum(s);
}

static char *
tuple_text(HeapTuple tup, TupleDesc td, const char *col)
{
	int			attno = SPI_fnumber(td, col);
	bool		isnull;
	Datum		d;

	if (attno <= 0)
		elog(ERROR, "column \"%s\" not found", col);
	d = SPI_getbinval(tup, td, attno, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

static Datum
tuple_datum(HeapTuple tup, TupleDesc td, const char *col, bool *isnull)
{
	int			attno = SPI_fnumber(td, col);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" not found", col);
	return SPI_getbinval(tup, td, attno, isnull);
}

static bool
column_changed(HeapTuple a, HeapTuple b, TupleDesc td, const char *col)
{
	bool		na,
				nb;
	int			attno = SPI_fnumber(td, col);
	Form_pg_attribute att = TupleDescAttr(td, attno - 1);
	Datum		da = SPI_getbinval(a, td, attno, &na);
	Datum		db = SPI_getbinval(b, td, attno, &nb);

	if (na || nb)
		return na != nb;
	return !datumIsEqual(da, db, att->attbyval, att->attlen);
}

static char *
currency_text(const CurrencyAmount *ca)
{
	char	   *iso = palloc(4);

	currency_unpack(ca->code, iso);
	return iso;
}

static char *
format_amount(int64 units, const char *currency)
{
	CurrencyAmount ca;

	ca.units = units;
	ca.code = currency_pack(currency, 3);
	ca.pad = 0;
	return currency_amount_to_cstring(&ca);
}

/* ------------------------------------------------------------------------
 * the three writers: account state, ledger, periods
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_lock_state;
static SPIPlanPtr plan_insert_state;
static SPIPlanPtr plan_ledger;
static SPIPlanPtr plan_update_state;
static SPIPlanPtr plan_period;

static bool
fetch_locked_state(int64 customer_id, const char *currency, AccountState *st)
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
	st->balance = ca_get_int64(0, 1, NULL);
	st->open_amount = ca_get_int64(0, 2, NULL);
	st->store_credit = ca_get_int64(0, 3, NULL);
	st->lifetime_revenue = ca_get_int64(0, 4, NULL);
	st->lifetime_returned = ca_get_int64(0, 5, NULL);
	st->orders_count = ca_get_int32(0, 6, NULL);
	st->paid_orders = ca_get_int32(0, 7, NULL);
	st->dunning_level = ca_get_int32(0, 8, NULL);
	st->next_due_at = ca_get_timestamptz(0, 9, &n);
	st->has_next_due = !n;
	st->last_event_at = ca_get_timestamptz(0, 10, &n);
	st->has_last_event = !n;
	SPI_freetuptable(SPI_tuptable);
	return true;
}

/* RA002: customer_id was merged into merged_into */
static void
merged_error(int64 customer_id, int64 merged_into)
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
		merged_error(customer_id, into);
}

/*
 * Lock the account state row of (customer, currency), creating it on first
 * use.  Everything a writer decides (credit limit, returnable quantity) is
 * decided after this lock, so two sessions for the same customer cannot
 * both pass a limit that only one fits under.
 */
void
lock_account(int64 customer_id, const char *currency, AccountState *st)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	if (fetch_locked_state(customer_id, currency, st))
	{
		/* a merge that held this row may have committed while we waited */
		check_customer(customer_id);
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

void
book_entry(const LedgerEntry *e)
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
}

static SPIPlanPtr plan_ledger2;

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
void
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
}

#define UPDATE_STATE_SQL(ring_clause) \
	"UPDATE customer_account.account_state SET" \
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
	" dunning_level = CASE WHEN $16 AND dunning_level > 0 AND NOT EXISTS (SELECT 1" \
	"     FROM customer_account.open_item i WHERE i.customer_id = $1 AND i.currency = $2" \
	"       AND i.settled_at IS NULL AND NOT i.disputed AND i.kind <> 'prepayment' AND i.due_at < now())" \
	"   THEN 0 ELSE dunning_level END," \
	" dunning_cycle = dunning_cycle + CASE WHEN $16 AND dunning_level > 0 AND NOT EXISTS (SELECT 1" \
	"     FROM customer_account.open_item i WHERE i.customer_id = $1 AND i.currency = $2" \
	"       AND i.settled_at IS NULL AND NOT i.disputed AND i.kind <> 'prepayment' AND i.due_at < now())" \
	"   THEN 1 ELSE 0 END," \
	ring_clause \
	" updated_at = now()" \
	" WHERE customer_id = $1 AND currency = $2"
/* the month ring beside account_period (1.1.0; absent until ALTER EXTENSION UPDATE) */
#define RING_CLAUSE \
	" month_ring = CASE WHEN $17 THEN customer_account.month_ring_add(month_ring, $18, $6, $19, $7, $8)" \
	"   ELSE month_ring END,"
static SPIPlanPtr plan_update_state_1_0;

void
apply_delta(int64 customer_id, const char *currency, const AccountDelta *d)
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
		AccountState st;

		lock_account(customer_id, currency, &st);
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

/* ------------------------------------------------------------------------
 * open items
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_item_insert;
static SPIPlanPtr plan_items_of_order;
static SPIPlanPtr plan_items_oldest;
static SPIPlanPtr plan_item_apply;
static SPIPlanPtr plan_application;
static SPIPlanPtr plan_item_close_order;

static void
insert_item(int64 customer_id, const char *currency, const char *kind, const char *order_no,
			int64 amount, TimestampTz created_at, TimestampTz due_at)
{
	Oid			types[7] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	ca_prepare(&plan_item_insert,
			   "INSERT INTO customer_account.open_item"
			   " (customer_id, currency, kind, order_no, amount, open, created_at, due_at)"
			   " VALUES ($1, $2, $3, $4, $5, $5, $6, $7)",
			   7, types);
	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	values[2] = CStringGetTextDatum(kind);
	values[3] = text_or_null(order_no, &nulls[3]);
	values[4] = Int64GetDatum(amount);
	values[5] = TimestampTzGetDatum(created_at);
	values[6] = TimestampTzGetDatum(due_at);
	ca_execute(plan_item_insert, values, nulls, false, 0);
}

typedef struct ItemRow
{
	int64		item_id;
	int64		open;
	bool		is_order;		/* an order's item: paying it off pays the order */
} ItemRow;

/* unsettled items, either of one order or all, oldest due first */
static ItemRow *
fetch_items(int64 customer_id, const char *currency, const char *order_no, int *n)
{
	ItemRow    *rows;
	Datum		values[3];

	if (order_no != NULL)
	{
		Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};

		ca_prepare(&plan_items_of_order,
				   "SELECT item_id, open, order_no IS NOT NULL FROM customer_account.open_item"
				   " WHERE customer_id = $1 AND currency = $2 AND order_no = $3 AND settled_at IS NULL"
				   " ORDER BY due_at, item_id FOR UPDATE",
				   3, types);
		values[2] = CStringGetTextDatum(order_no);
	}
	else
	{
		Oid			types[2] = {INT8OID, TEXTOID};

		ca_prepare(&plan_items_oldest,
				   "SELECT item_id, open, order_no IS NOT NULL FROM customer_account.open_item"
				   " WHERE customer_id = $1 AND currency = $2 AND settled_at IS NULL"
				   " ORDER BY disputed, due_at, item_id FOR UPDATE",
				   2, types);
	}
	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	ca_execute(order_no ? plan_items_of_order : plan_items_oldest, values, NULL, false, 0);
	*n = (int) SPI_processed;
	rows = palloc(sizeof(ItemRow) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		rows[i].item_id = ca_get_int64(i, 1, NULL);
		rows[i].open = ca_get_int64(i, 2, NULL);
		rows[i].is_order = ca_get_bool(i, 3, NULL);
	}
	return rows;
}

static void
apply_to_item(int64 customer_id, int64 item_id, int64 amount, TimestampTz at, const char *payment_ref)
{
	Oid			types[3] = {INT8OID, INT8OID, TIMESTAMPTZOID};
	Oid			atypes[5] = {INT8OID, INT8OID, TEXTOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	ca_prepare(&plan_item_apply,
			   "UPDATE customer_account.open_item SET open = open - $2,"
			   " settled_at = CASE WHEN open - $2 = 0 THEN $3 END WHERE item_id = $1",
			   3, types);
	values[0] = Int64GetDatum(item_id);
	values[1] = Int64GetDatum(amount);
	values[2] = TimestampTzGetDatum(at);
	ca_execute(plan_item_apply, values, NULL, false, 0);

	ca_prepare(&plan_application,
			   "INSERT INTO customer_account.item_application (item_id, customer_id, payment_ref, amount, applied_at)"
			   " VALUES ($1, $2, $3, $4, $5)",
			   5, atypes);
	values[0] = Int64GetDatum(item_id);
	values[1] = Int64GetDatum(customer_id);
	values[2] = text_or_null(payment_ref, &nulls[2]);
	values[3] = Int64GetDatum(amount);
	values[4] = TimestampTzGetDatum(at);
	ca_execute(plan_application, values, nulls, false, 0);
}

/*
 * Apply money to unsettled items: those of order_no first when given,
 * then the oldest due.  Returns what was applied; counts the orders whose
 * items were paid off.
 */
static int64
apply_money(int64 customer_id, const char *currency, const char *order_no, int64 amount,
			TimestampTz at, const char *payment_ref, int32 *orders_paid)
{
	int64		applied = 0;

	for (int pass = (order_no ? 0 : 1); pass < 2 && applied < amount; pass++)
	{
		int			n;
		ItemRow    *rows = fetch_items(customer_id, currency, pass == 0 ? order_no : NULL, &n);

		for (int i = 0; i < n && applied < amount; i++)
		{
			int64		take = Min(rows[i].open, amount - applied);

			apply_to_item(customer_id, rows[i].item_id, take, at, payment_ref);
			applied += take;
			if (take == rows[i].open && rows[i].is_order)
				(*orders_paid)++;
		}
	}
	return applied;
}

static SPIPlanPtr plan_items_overdue;

/*
 * Settle items with money that is not a payment (a return's credit note):
 * the unsettled items of order_no, or, with order_no NULL, the undisputed
 * receivables due before due_before, oldest first.  ref names the return
 * in the item applications.  Returns what was applied; counts the orders
 * whose items were paid off.
 */
int64
ca_settle_items(int64 customer_id, const char *currency, const char *order_no, TimestampTz due_before,
				int64 amount, TimestampTz at, const char *ref, int32 *orders_paid)
{
	ItemRow    *rows;
	int			n;
	int64		applied = 0;

	if (order_no != NULL)
		rows = fetch_items(customer_id, currency, order_no, &n);
	else
	{
		Oid			types[3] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
		Datum		values[3];

		ca_prepare(&plan_items_overdue,
				   "SELECT item_id, open, order_no IS NOT NULL FROM customer_account.open_item"
				   " WHERE customer_id = $1 AND currency = $2 AND settled_at IS NULL AND NOT disputed"
				   " AND kind <> 'prepayment' AND due_at < $3 ORDER BY due_at, item_id FOR UPDATE",
				   3, types);
		values[0] = Int64GetDatum(customer_id);
		values[1] = CStringGetTextDatum(currency);
		values[2] = TimestampTzGetDatum(due_before);
		ca_execute(plan_items_overdue, values, NULL, false, 0);
		n = (int) SPI_processed;
		rows = palloc(sizeof(ItemRow) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			rows[i].item_id = ca_get_int64(i, 1, NULL);
			rows[i].open = ca_get_int64(i, 2, NULL);
			rows[i].is_order = ca_get_bool(i, 3, NULL);
		}
	}
	for (int i = 0; i < n && applied < amount; i++)
	{
		int64		take = Min(rows[i].open, amount - applied);

		apply_to_item(customer_id, rows[i].item_id, take, at, ref);
		applied += take;
		if (take == rows[i].open && rows[i].is_order)
			(*orders_paid)++;
	}
	return applied;
}

/* ------------------------------------------------------------------------
 * orders
 * ------------------------------------------------------------------------
 */
typedef struct OrderFacts
{
	char	   *channel_kind;
	char	   *channel_currency;
	int32		payment_term_days;
	char	   *settlement;
	bool		offered;
	bool		needs_lock;		/* a decision reads the account: lock it first */
} OrderFacts;


/*
 * RA002 for an unknown or merged customer.  Read with a fresh snapshot: a
 * merge that committed while this writer waited for the customer's row
 * (the foreign-key check) must be seen.
 */
void
check_customer(int64 customer_id)
{
	CustomerRow c;

	ca_read_customer(customer_id, GetLatestSnapshot(), &c);
	if (c.merged)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT, customer_id, c.merged_into),
				 errhint("Book on the surviving customer " INT64_FORMAT ".", c.merged_into)));
}

/* channel and method facts, from the configuration cache; RA002 when unknown */
static void
load_order_facts(const char *channel, const char *method, OrderFacts *f)
{
	const ChannelConf *ch = ca_channel(channel);
	const MethodConf *methods;
	const MethodConf *m = NULL;
	int			n;

	methods = ca_methods(&n);
	for (int i = 0; i < n; i++)
		if (strcmp(methods[i].code, method) == 0)
			m = &methods[i];
	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown payment method \"%s\"", method),
				 errhint("Payment methods are added with customer_account.add_payment_method().")));
	f->channel_kind = (char *) ca_channel_kind_names[ch->kind];
	f->channel_currency = (char *) ch->currency;
	f->payment_term_days = ch->payment_term_days;
	f->settlement = m->settlement == 'c' ? "credit" : m->settlement == 'p' ? "prepaid" : "immediate";
	f->offered = m->all_kinds || m->kinds[ch->kind];
	/* card, cash, marketplace: nothing to decide from the account, the final UPDATE locks it */
	f->needs_lock = !(m->settlement == 'i' && f->offered && !m->has_min && !m->has_max
					  && strcmp(method, "store_credit") != 0);
}

/*
 * The orders booked in this transaction, so that their lines (inserted
 * right after) are checked without a query.  A hit is trusted only while
 * the booking (sub)transaction is still alive; the foreign key on
 * order_line catches anything else.
 */
#define RECENT_ORDERS 8
typedef struct RecentOrder
{
	char		order_no[64];
	int64		customer_id;
	int32		code;
	TransactionId xid;
} RecentOrder;
static RecentOrder recent_orders[RECENT_ORDERS];
static int	recent_next = 0;

static void
remember_order(const char *order_no, int64 customer_id, int32 code)
{
	RecentOrder *r = &recent_orders[recent_next];

	if (strlen(order_no) >= sizeof(r->order_no))
		return;
	strlcpy(r->order_no, order_no, sizeof(r->order_no));
	r->customer_id = customer_id;
	r->code = code;
	r->xid = GetCurrentTransactionId();
	recent_next = (recent_next + 1) % RECENT_ORDERS;
}

static RecentOrder *
recent_order(const char *order_no)
{
	for (int i = 0; i < RECENT_ORDERS; i++)
	{
		RecentOrder *r = &recent_orders[i];

		if (TransactionIdIsValid(r->xid) && strcmp(r->order_no, order_no) == 0
			&& TransactionIdIsCurrentTransactionId(r->xid))
			return r;
	}
	return NULL;
}

/*
 * The times of a new order: placed_at in the accepted range, and a delivery
 * (a till hands the goods over at once) in range and not before placed_at.
 */
static void
check_order_times(HeapTuple tup, TupleDesc td, const char *order_no, TimestampTz placed_at)
{
	bool		isnull;
	TimestampTz at;

	ca_check_event_time(placed_at, "placed_at", "order", order_no);
	at = DatumGetTimestampTz(tuple_datum(tup, td, "delivered_at", &isnull));
	if (!isnull)
	{
		ca_check_event_time(at, "delivered_at", "order", order_no);
		ca_check_not_before_placed(at, placed_at, "delivered", order_no);
	}
}

static void
post_order(HeapTuple tup, TupleDesc td)
{
	char	   *order_no = tuple_text(tup, td, "order_no");
	char	   *channel = tuple_text(tup, td, "channel");
	char	   *method = tuple_text(tup, td, "payment_method");
	bool		isnull;
	int64		customer_id = DatumGetInt64(tuple_datum(tup, td, "customer_id", &isnull));
	CurrencyAmount *total = DatumGetCurrencyAmountP(tuple_datum(tup, td, "total", &isnull));
	TimestampTz placed_at = DatumGetTimestampTz(tuple_datum(tup, td, "placed_at", &isnull));
	char	   *currency = currency_text(total);
	OrderFacts	f;
	AccountState st;
	AccountDelta d = {0};
	LedgerEntry e = {0};
	bool		not_cancelled;

	/* restored with its ledger entries (pg_restore): it is booked already */
	if (ca_order_already_posted(tup, td))
		return;

	/* delivered_at given on insert is fine (handed over at the till); cancelled is not */
	(void) tuple_datum(tup, td, "cancelled_at", &not_cancelled);
	if (!not_cancelled)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order \"%s\" cannot be inserted as cancelled", order_no),
				 errhint("Insert the order, then cancel it with customer_account.cancel_order().")));

	check_customer(customer_id);
	check_order_times(tup, td, order_no, placed_at);
	load_order_facts(channel, method, &f);
	if (strcmp(f.channel_currency, currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order \"%s\" is in %s but channel \"%s\" sells in %s", order_no, currency, channel,
						f.channel_currency)));
	if (total->units <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order \"%s\" has total %s; an order total must be positive", order_no,
						currency_amount_to_cstring(total))));

	/* the payment-method decision, under the customer's lock */
	if (f.needs_lock)
		lock_account(customer_id, currency, &st);
	else
		memset(&st, 0, sizeof(st));
	payment_enforce(customer_id, channel, f.channel_kind, currency, method, total->units, placed_at, &st);

	e.customer_id = customer_id;
	e.currency = currency;
	e.event_at = placed_at;
	e.channel = channel;
	e.channel_kind = f.channel_kind;
	e.order_no = order_no;
	e.method = method;

	/* the order itself: revenue, one more order, what the customer owes */
	e.entry_type = "order";
	e.amount = total->units;
	e.revenue_delta = total->units;
	e.order_delta = 1;
	e.has_period = true;
	e.revenue_period = month_of(placed_at);

	d.balance = total->units;
	d.revenue = total->units;
	d.purchased = total->units;
	d.orders = 1;
	d.event_at = placed_at;
	d.has_purchase = true;
	d.channel_kind = f.channel_kind;
	d.has_period = true;
	d.period = e.revenue_period;

	if (strcmp(f.settlement, "immediate") == 0)
	{
		LedgerEntry order_entry = e;

		/* settled at once: paid by card, cash, marketplace or store credit */
		e.open_delta = 0;
		e.entry_type = "settlement";
		e.revenue_delta = 0;
		e.order_delta = 0;
		e.has_period = false;
		if (strcmp(method, "store_credit") == 0)
		{
			if (st.store_credit < total->units)
				ereport(ERROR,
						(errcode(ERRCODE_CA_REFUSED),
						 errmsg("store credit of customer " INT64_FORMAT " is %s, the order \"%s\" needs %s",
								customer_id, format_amount(st.store_credit, currency), order_no,
								currency_amount_to_cstring(total)),
						 errdetail("reason_code: insufficient_store_credit")));
			/* the credit was already part of the balance: spend it */
			e.amount = 0;
			e.credit_delta = -total->units;
			d.credit = -total->units;
		}
		else
		{
			e.amount = -total->units;
			d.balance = 0;
		}
		book_entries(&order_entry, &e);
		d.paid_orders = 1;
	}
	else
	{
		bool		prepaid = strcmp(f.settlement, "prepaid") == 0;
		TimestampTz due = ca_add_days(placed_at, f.payment_term_days, "due date of order", order_no);

		e.open_delta = total->units;
		book_entry(&e);
		insert_item(customer_id, currency, prepaid ? "prepayment" : "invoice", order_no,
					total->units, placed_at, due);
		d.open = total->units;
		if (!prepaid)
		{
			d.has_new_due = true;
			d.new_due_at = due;
		}
	}
	apply_delta(customer_id, currency, &d);
	/* the UPDATE above took the lock: a merge may have committed while it waited */
	if (!f.needs_lock)
		check_customer(customer_id);
	remember_order(order_no, customer_id, total->code);
	/* loyalty: the reactivation credit (points are credited when the lines arrive) */
	{
		bool		undelivered;
		Datum		delivered = tuple_datum(tup, td, "delivered_at", &undelivered);

		ca_loyalty_order_posted(customer_id, order_no, channel, method, currency, total->units, placed_at,
								!undelivered, undelivered ? 0 : DatumGetTimestampTz(delivered));
	}
}

static SPIPlanPtr plan_order_items_open;

static void
post_cancel(HeapTuple tup, TupleDesc td, TimestampTz cancelled_at)
{
	char	   *order_no = tuple_text(tup, td, "order_no");
	char	   *channel = tuple_text(tup, td, "channel");
	char	   *method = tuple_text(tup, td, "payment_method");
	bool		isnull;
	int64		customer_id = DatumGetInt64(tuple_datum(tup, td, "customer_id", &isnull));
	CurrencyAmount *total = DatumGetCurrencyAmountP(tuple_datum(tup, td, "total", &isnull));
	TimestampTz placed_at = DatumGetTimestampTz(tuple_datum(tup, td, "placed_at", &isnull));
	char	   *currency = currency_text(total);
	OrderFacts	f;
	AccountState st;
	AccountDelta d = {0};
	LedgerEntry e = {0};
	int64		open = 0;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	load_order_facts(channel, method, &f);
	lock_account(customer_id, currency, &st);

	/* close what is still open of the order */
	ca_prepare(&plan_order_items_open,
			   "SELECT coalesce(sum(open), 0)::bigint FROM customer_account.open_item"
			   " WHERE order_no = $1 AND settled_at IS NULL",
			   1, types);
	values[0] = CStringGetTextDatum(order_no);
	ca_execute(plan_order_items_open, values, NULL, false, 1);
	open = ca_get_int64(0, 1, NULL);
	{
		Oid			ctypes[2] = {TEXTOID, TIMESTAMPTZOID};
		Datum		cvalues[2];

		ca_prepare(&plan_item_close_order,
				   "UPDATE customer_account.open_item SET open = 0, settled_at = $2"
				   " WHERE order_no = $1 AND settled_at IS NULL",
				   2, ctypes);
		cvalues[0] = values[0];
		cvalues[1] = TimestampTzGetDatum(cancelled_at);
		ca_execute(plan_item_close_order, cvalues, NULL, false, 0);
	}

	e.customer_id = customer_id;
	e.currency = currency;
	e.event_at = cancelled_at;
	e.channel = channel;
	e.channel_kind = f.channel_kind;
	e.order_no = order_no;
	e.method = method;
	e.entry_type = "cancel";
	e.amount = -total->units;
	e.open_delta = -open;
	e.revenue_delta = -total->units;
	e.order_delta = -1;
	e.has_period = true;
	e.revenue_period = month_of(placed_at);

	d.balance = -total->units;
	d.open = -open;
	d.revenue = -total->units;
	d.purchased = -total->units;
	d.orders = -1;
	d.event_at = cancelled_at;
	d.has_period = true;
	d.period = e.revenue_period;
	d.recompute_due = (open > 0);

	if (strcmp(f.settlement, "immediate") == 0 && strcmp(method, "store_credit") != 0)
	{
		/* the money goes back the way it came */
		book_entry(&e);
		e.open_delta = 0;
		e.entry_type = "refund";
		e.amount = total->units;
		e.revenue_delta = 0;
		e.order_delta = 0;
		e.has_period = false;
		e.note = "cancellation refunded to the original payment method";
		book_entry(&e);
		d.balance = 0;
		d.paid_orders = -1;
	}
	else
	{
		/* what was paid (or spent from store credit) becomes store credit */
		int64		paid = total->units - open;

		e.credit_delta = paid;
		d.credit = paid;
		if (open == 0)
			d.paid_orders = -1;
		book_entry(&e);
	}
	apply_delta(customer_id, currency, &d);
	/* loyalty: everything the order earned, and its reactivation credit, goes back */
	ca_loyalty_order_cancelled(customer_id, order_no, currency, cancelled_at);
}

/* ------------------------------------------------------------------------
 * payments
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_order_of_payment;

static void
post_payment(HeapTuple tup, TupleDesc td)
{
	char	   *payment_ref = tuple_text(tup, td, "payment_ref");
	char	   *channel = tuple_text(tup, td, "channel");
	char	   *method = tuple_text(tup, td, "method");
	char	   *order_no = tuple_text(tup, td, "order_no");
	bool		isnull;
	int64		customer_id = DatumGetInt64(tuple_datum(tup, td, "customer_id", &isnull));
	CurrencyAmount *amount = DatumGetCurrencyAmountP(tuple_datum(tup, td, "amount", &isnull));
	TimestampTz received_at = DatumGetTimestampTz(tuple_datum(tup, td, "received_at", &isnull));
	char	   *currency = currency_text(amount);
	const ChannelConf *ch;
	char	   *channel_kind;
	AccountState st;
	AccountDelta d = {0};
	LedgerEntry e = {0};
	int64		applied;
	int32		orders_paid = 0;
	Datum		values[2];

	/* restored with its ledger entries (pg_restore): it is booked already */
	if (ca_payment_already_posted(tup, td))
		return;

	if (amount->units <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payment \"%s\" has amount %s; a payment must be positive", payment_ref,
						currency_amount_to_cstring(amount)),
				 errhint("Money paid out to the customer is a refund, not a negative payment.")));
	check_customer(customer_id);
	ca_check_event_time(received_at, "received_at", "payment", payment_ref);
	ch = ca_channel(channel);
	channel_kind = (char *) ca_channel_kind_names[ch->kind];
	if (order_no != NULL)
	{
		Oid			types[1] = {TEXTOID};
		bool		cn;

		ca_prepare(&plan_order_of_payment,
				   "SELECT customer_id, customer_account.currency_of(total) FROM customer_account.orders WHERE order_no = $1",
				   1, types);
		values[0] = CStringGetTextDatum(order_no);
		ca_execute(plan_order_of_payment, values, NULL, true, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CA_UNKNOWN),
					 errmsg("unknown order \"%s\"", order_no)));
		if (ca_get_int64(0, 1, &cn) != customer_id)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("payment \"%s\" names order \"%s\" of another customer", payment_ref, order_no)));
		if (strcmp(ca_get_text(0, 2), currency) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot apply payment in %s to order \"%s\" in %s", currency, order_no,
							ca_get_text(0, 2))));
	}
	ca_check_payment_method(payment_ref, ch, channel, method, currency);

	lock_account(customer_id, currency, &st);
	applied = apply_money(customer_id, currency, order_no, amount->units, received_at, payment_ref, &orders_paid);

	e.customer_id = customer_id;
	e.currency = currency;
	e.entry_type = "payment";
	e.amount = -amount->units;
	e.open_delta = -applied;
	/* money beyond what was owed stays on the account as credit */
	e.credit_delta = amount->units - applied;
	e.event_at = received_at;
	e.channel = channel;
	e.channel_kind = channel_kind;
	e.order_no = order_no;
	e.payment_ref = payment_ref;
	e.method = method;
	book_entry(&e);

	d.balance = -amount->units;
	d.open = -applied;
	d.credit = amount->units - applied;
	d.paid_orders = orders_paid;
	d.event_at = received_at;
	d.recompute_due = applied > 0;
	apply_delta(customer_id, currency, &d);
}

/* a dunning fee: a receivable due 14 days after the notice */
void
post_fee(int64 customer_id, const char *currency, int64 fee, TimestampTz at, const char *note)
{
	AccountState st;
	AccountDelta d = {0};
	LedgerEntry e = {0};
	TimestampTz due;

	lock_account(customer_id, currency, &st);
	e.customer_id = customer_id;
	e.currency = currency;
	e.entry_type = "fee";
	e.amount = fee;
	e.open_delta = fee;
	e.event_at = at;
	e.note = note;
	book_entry(&e);
	due = ca_add_days(at, 14, "due date of a dunning fee", NULL);
	insert_item(customer_id, currency, "fee", NULL, fee, at, due);
	d.balance = fee;
	d.open = fee;
	d.event_at = at;
	d.has_new_due = true;
	d.new_due_at = due;
	apply_delta(customer_id, currency, &d);
}

/* ------------------------------------------------------------------------
 * triggers
 * ------------------------------------------------------------------------
 */
static TriggerData *
check_trigger(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called by trigger manager", name)));
	return (TriggerData *) fcinfo->context;
}

static void
refuse_change(const char *what, const char *key, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s \"%s\" cannot be changed", what, key),
			 errhint("%s", hint)));
}

/* a delivery or cancellation set by an UPDATE: in range, not before placed_at */
static void
check_order_change_times(HeapTuple new, TupleDesc td, const char *order_no,
						 bool old_deliv_null, bool old_cancel_null)
{
	bool		isnull;
	bool		deliv_null;
	TimestampTz placed_at = DatumGetTimestampTz(tuple_datum(new, td, "placed_at", &isnull));
	TimestampTz at;

	at = DatumGetTimestampTz(tuple_datum(new, td, "delivered_at", &deliv_null));
	if (old_deliv_null && !deliv_null)
	{
		ca_check_event_time(at, "delivered_at", "order", order_no);
		ca_check_not_before_placed(at, placed_at, "delivered", order_no);
	}
	/* (a delivered order is not cancelled at all: the caller says so) */
	at = DatumGetTimestampTz(tuple_datum(new, td, "cancelled_at", &isnull));
	if (old_cancel_null && !isnull && deliv_null)
	{
		ca_check_event_time(at, "cancelled_at", "order", order_no);
		ca_check_not_before_placed(at, placed_at, "cancelled", order_no);
	}
}

/*
 * orders: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW.
 * INSERT books the order; setting cancelled_at books the cancellation;
 * delivered_at may be set once; nothing else may change and nothing be
 * deleted.
 */
PG_FUNCTION_INFO_V1(orders_post);
Datum
orders_post(PG_FUNCTION_ARGS)
{
	TriggerData *trig = check_trigger(fcinfo, "orders_post");
	TupleDesc	td = trig->tg_relation->rd_att;

	if (!TRIGGER_FIRED_AFTER(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event))
		elog(ERROR, "orders_post must be fired AFTER ... FOR EACH ROW");

	ca_connect();
	if (TRIGGER_FIRED_BY_INSERT(trig->tg_event))
		post_order(trig->tg_trigtuple, td);
	else if (TRIGGER_FIRED_BY_DELETE(trig->tg_event))
		refuse_change("order", tuple_text(trig->tg_trigtuple, td, "order_no"),
					  "Orders stay in the books; cancel with customer_account.cancel_order() or return items.");
	else
	{
		HeapTuple	old = trig->tg_trigtuple;
		HeapTuple	new = trig->tg_newtuple;
		char	   *order_no = tuple_text(old, td, "order_no");
		bool		old_cancel_null,
					new_cancel_null,
					old_deliv_null,
					new_deliv_null;
		Datum		new_cancel;

		if (column_changed(old, new, td, "order_no") || column_changed(old, new, td, "channel")
			|| column_changed(old, new, td, "payment_method") || column_changed(old, new, td, "total")
			|| column_changed(old, new, td, "placed_at") || column_changed(old, new, td, "recorded_at")
			|| (!merging && column_changed(old, new, td, "customer_id")))
			refuse_change("order", order_no,
						  "Only delivered_at and cancelled_at of an order change; correct an order by cancelling it and placing a new one.");

		(void) tuple_datum(old, td, "cancelled_at", &old_cancel_null);
		new_cancel = tuple_datum(new, td, "cancelled_at", &new_cancel_null);
		(void) tuple_datum(old, td, "delivered_at", &old_deliv_null);
		(void) tuple_datum(new, td, "delivered_at", &new_deliv_null);

		if (!old_cancel_null && column_changed(old, new, td, "cancelled_at"))
			refuse_change("cancelled order", order_no, "A cancellation is final; place a new order.");
		if (!old_deliv_null && column_changed(old, new, td, "delivered_at"))
			refuse_change("delivery of order", order_no, "A delivery is recorded once.");
		if (!old_cancel_null && old_deliv_null && !new_deliv_null)
			ereport(ERROR,
					(errcode(ERRCODE_CA_REFUSED),
					 errmsg("order \"%s\" is cancelled and cannot be delivered", order_no)));
		check_order_change_times(new, td, order_no, old_deliv_null, old_cancel_null);
		if (old_cancel_null && !new_cancel_null)
		{
			if (!new_deliv_null)
				ereport(ERROR,
						(errcode(ERRCODE_CA_REFUSED),
						 errmsg("order \"%s\" was delivered and cannot be cancelled", order_no),
						 errdetail("reason_code: already_delivered"),
						 errhint("Take the goods back as a return instead.")));
			post_cancel(new, td, DatumGetTimestampTz(new_cancel));
		}
		/* loyalty: pending points get their available and expiry dates */
		if (old_deliv_null && !new_deliv_null)
			ca_loyalty_order_delivered(order_no, DatumGetTimestampTz(tuple_datum(new, td, "delivered_at", &new_deliv_null)));
	}
	ca_finish();
	return PointerGetDatum(NULL);
}

/*
 * order_line: BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW.
 * Lines belong to an order booked in the same transaction; they carry the
 * order's customer and currency; they never change afterwards.  The one
 * exception is an order restored by pg_restore, whose lines come in the
 * next transaction (see restore.c).
 */

PG_FUNCTION_INFO_V1(order_line_check);
Datum
order_line_check(PG_FUNCTION_ARGS)
{
	TriggerData *trig = check_trigger(fcinfo, "order_line_check");
	TupleDesc	td = trig->tg_relation->rd_att;
	HeapTuple	tup = trig->tg_trigtuple;
	char	   *order_no;
	bool		isnull;
	int64		order_customer;
	int32		qty;
	CurrencyAmount *price;
	HeapTuple	result;

	if (!TRIGGER_FIRED_BEFORE(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event))
		elog(ERROR, "order_line_check must be fired BEFORE ... FOR EACH ROW");
	order_no = tuple_text(tup, td, "order_no");
	if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event) && merging)
		return PointerGetDatum(trig->tg_newtuple);	/* merge re-points customer_id */
	if (!TRIGGER_FIRED_BY_INSERT(trig->tg_event))
		refuse_change("line of order", order_no,
					  "Order lines are part of the books; return or cancel instead.");

	qty = DatumGetInt32(tuple_datum(tup, td, "qty", &isnull));
	if (qty <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantity %d on order \"%s\" must be positive", qty, order_no),
				 errhint("Returns are booked with accept_return(), not with negative quantities.")));
	price = DatumGetCurrencyAmountP(tuple_datum(tup, td, "unit_price", &isnull));
	if (price->units < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unit price %s on order \"%s\" must not be negative", currency_amount_to_cstring(price), order_no)));

	{
		RecentOrder *r = recent_order(order_no);

		if (r != NULL)
		{
			if (r->code != price->code)
				check_same_currency(r->code, price->code, "book");
			order_customer = r->customer_id;
			goto have_order;
		}
	}
	{
		CurrencyAmount total;
		TransactionId xmin;

		/* a direct read: no SQL, so this trigger needs no owner rights */
		if (!ca_read_order(order_no, GetLatestSnapshot(), &order_customer, &total, &xmin))
			ereport(ERROR,
					(errcode(ERRCODE_CA_UNKNOWN),
					 errmsg("unknown order \"%s\"", order_no)));
		if (total.code != price->code)
			check_same_currency(total.code, price->code, "book");
		if (!ca_order_booked_in_this_transaction(order_no, xmin)
			&& !ca_restored_order_takes_line(order_no, &total, price, qty))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("order \"%s\" was booked in an earlier transaction; its lines are final", order_no),
					 errhint("Insert an order and its lines in one transaction.")));
	}

have_order:
	/* fill in or check the customer */
	{
		int			attno = SPI_fnumber(td, "customer_id");
		Datum		d = SPI_getbinval(tup, td, attno, &isnull);

		if (!isnull && DatumGetInt64(d) != order_customer)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("line of order \"%s\" names customer " INT64_FORMAT " but the order belongs to " INT64_FORMAT,
							order_no, DatumGetInt64(d), order_customer)));
		if (isnull)
		{
			Datum		newval = Int64GetDatum(order_customer);
			bool		newnull = false;

			result = heap_modify_tuple_by_cols(tup, td, 1, &attno, &newval, &newnull);
			return PointerGetDatum(result);
		}
	}
	return PointerGetDatum(tup);
}

/*
 * order_total_check: a deferred constraint trigger on orders.  At commit,
 * the order's total equals the sum of its lines, unless the order was
 * restored onto a ledger that booked it earlier (its lines follow).
 */
PG_FUNCTION_INFO_V1(order_total_check);
Datum
order_total_check(PG_FUNCTION_ARGS)
{
	TriggerData *trig = check_trigger(fcinfo, "order_total_check");
	TupleDesc	td = trig->tg_relation->rd_att;
	char	   *order_no = tuple_text(trig->tg_trigtuple, td, "order_no");
	Snapshot	snap = GetLatestSnapshot();
	int64		customer_id;
	CurrencyAmount total;
	TransactionId xmin;
	int64		sum;
	int			n;

	if (!ca_read_order(order_no, snap, &customer_id, &total, &xmin))
		return PointerGetDatum(NULL);	/* rolled back to a savepoint */
	n = ca_sum_order_lines(order_no, snap, total.code, &sum);
	if ((sum != total.units || n == 0) && !ca_order_posted_earlier(order_no))
	{
		char		iso[4];

		currency_unpack(total.code, iso);
		ereport(ERROR,
				(errcode(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION),
				 errmsg("order \"%s\" has total %s but its lines sum to %s", order_no,
						currency_amount_to_cstring(&total), n == 0 ? "nothing (no lines)" : format_amount(sum, iso)),
				 errhint("Insert the order and all of its lines in one transaction, with total = sum(unit_price * qty).")));
	}
	return PointerGetDatum(NULL);
}

/* payment: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW */
PG_FUNCTION_INFO_V1(payment_post);
Datum
payment_post(PG_FUNCTION_ARGS)
{
	TriggerData *trig = check_trigger(fcinfo, "payment_post");
	TupleDesc	td = trig->tg_relation->rd_att;

	ca_connect();
	if (TRIGGER_FIRED_BY_INSERT(trig->tg_event))
		post_payment(trig->tg_trigtuple, td);
	else if (!(merging && TRIGGER_FIRED_BY_UPDATE(trig->tg_event)))
		refuse_change("payment", tuple_text(trig->tg_trigtuple, td, "payment_ref"),
					  "Payments stay in the books; book a correction instead.");
	ca_finish();
	return PointerGetDatum(NULL);
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

/* ------------------------------------------------------------------------
 * merge_customers(survivor, duplicate)
 * ------------------------------------------------------------------------
 */
static void
exec_sql(const char *sql, int64 a, int64 b)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(a), Int64GetDatum(b)};

	if (SPI_execute_with_args(sql, 2, types, values, NULL, false, 0) < 0)
		elog(ERROR, "merge statement failed: %s", sql);
}

/*
 * Lock the two customer rows of a merge in id order and check them under
 * the lock.  FOR NO KEY UPDATE does not block the FOR KEY SHARE locks that
 * foreign-key checks of concurrent orders and payments take.  In READ
 * COMMITTED a locking read returns the newest version of a row it had to
 * wait for, so a merge that committed meanwhile is seen here.
 */
static void
lock_merge_customers(int64 survivor, int64 duplicate)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(survivor), Int64GetDatum(duplicate)};
	bool		seen_survivor = false;
	bool		seen_duplicate = false;

	if (SPI_execute_with_args("SELECT customer_id, merged_into FROM customer_account.customer"
							  " WHERE customer_id IN ($1, $2) ORDER BY customer_id FOR NO KEY UPDATE",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock customers");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = ca_get_int64(i, 1, NULL);
		int64		into = ca_get_int64(i, 2, &isnull);

		if (!isnull)
			merged_error(id, into);
		seen_survivor |= (id == survivor);
		seen_duplicate |= (id == duplicate);
	}
	if (!seen_survivor || !seen_duplicate)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown customer " INT64_FORMAT, seen_survivor ? duplicate : survivor)));
}

/* the duplicate's account rows, as locked */
typedef struct MergeRow
{
	char	   *currency;
	AccountState st;
} MergeRow;

/*
 * Lock the account rows of one customer of a merge, by currency; when it
 * is the duplicate, its orders first (cancel_order locks an order before
 * the account row) and its rows are returned.
 */
static MergeRow *
lock_merge_accounts(int64 customer_id, int64 duplicate, int *n)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(customer_id), Int64GetDatum(duplicate)};
	MergeRow   *rows;

	if (customer_id == duplicate
		&& SPI_execute_with_args("SELECT 1 FROM customer_account.orders WHERE customer_id = $1"
								 " ORDER BY order_no FOR NO KEY UPDATE", 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the orders of customer " INT64_FORMAT, customer_id);
	/* the survivor's rows of the duplicate's currencies exist already (see merge_customers) */
	if (SPI_execute_with_args("SELECT currency, balance, open_amount, store_credit, lifetime_revenue,"
							  " lifetime_returned, orders_count, paid_orders, last_event_at"
							  " FROM customer_account.account_state WHERE customer_id = $1"
							  " AND currency IN (SELECT currency FROM customer_account.account_state WHERE customer_id = $2)"
							  " ORDER BY currency FOR UPDATE",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the accounts of customer " INT64_FORMAT, customer_id);
	*n = (int) SPI_processed;
	rows = palloc0(sizeof(MergeRow) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		bool		isnull;

		rows[i].currency = ca_get_text(i, 1);
		rows[i].st.balance = ca_get_int64(i, 2, NULL);
		rows[i].st.open_amount = ca_get_int64(i, 3, NULL);
		rows[i].st.store_credit = ca_get_int64(i, 4, NULL);
		rows[i].st.lifetime_revenue = ca_get_int64(i, 5, NULL);
		rows[i].st.lifetime_returned = ca_get_int64(i, 6, NULL);
		rows[i].st.orders_count = ca_get_int32(i, 7, NULL);
		rows[i].st.paid_orders = ca_get_int32(i, 8, NULL);
		rows[i].st.last_event_at = ca_get_timestamptz(i, 9, &isnull);
		rows[i].st.has_last_event = !isnull;
	}
	SPI_freetuptable(SPI_tuptable);
	return rows;
}

/*
 * merge_customers(survivor, duplicate): the duplicate's books, items,
 * orders, payments and identities move to the survivor.
 *
 * Lock order, the same as every other writer's: the two customer rows by
 * id; then per customer by id, the duplicate's orders and the account rows
 * by currency.  Everything is decided after the locks.
 */
PG_FUNCTION_INFO_V1(merge_customers);
Datum
merge_customers(PG_FUNCTION_ARGS)
{
	int64		survivor = PG_GETARG_INT64(0);
	int64		duplicate = PG_GETARG_INT64(1);
	MergeRow   *dup_rows = NULL;
	int			ndup = 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (survivor == duplicate)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot merge customer " INT64_FORMAT " with itself", survivor)));
	ca_connect();
	/* early answers without locks; the binding check is made under the locks */
	check_customer(survivor);
	check_customer(duplicate);
	lock_merge_customers(survivor, duplicate);

	/*
	 * The survivor gets a row for each currency of the duplicate.  Nobody
	 * else can be creating one: a first booking in a currency holds the
	 * customer row FOR SHARE (lock_account), which our lock excludes.
	 */
	exec_sql("INSERT INTO customer_account.account_state (customer_id, currency)"
			 " SELECT $1, currency FROM customer_account.account_state WHERE customer_id = $2"
			 " ON CONFLICT (customer_id, currency) DO NOTHING", survivor, duplicate);
	for (int pass = 0; pass < 2; pass++)
	{
		int64		id = (pass == 0) ? Min(survivor, duplicate) : Max(survivor, duplicate);
		int			n;
		MergeRow   *rows = lock_merge_accounts(id, duplicate, &n);

		if (id == duplicate)
		{
			dup_rows = rows;
			ndup = n;
		}
	}

	for (int i = 0; i < ndup; i++)
	{
		AccountState *b = &dup_rows[i].st;
		LedgerEntry e = {0};
		AccountDelta d = {0};

		/* the duplicate's books move by a transfer pair, keeping both ledgers whole */
		e.currency = dup_rows[i].currency;
		e.event_at = now;
		e.note = psprintf("merge of customer " INT64_FORMAT " into " INT64_FORMAT, duplicate, survivor);
		e.customer_id = duplicate;
		e.entry_type = "merge_out";
		e.amount = -b->balance;
		e.open_delta = -b->open_amount;
		e.credit_delta = -b->store_credit;
		e.revenue_delta = -b->lifetime_revenue;
		e.returned_delta = -b->lifetime_returned;
		e.order_delta = -b->orders_count;
		book_entry(&e);
		e.customer_id = survivor;
		e.entry_type = "merge_in";
		e.amount = b->balance;
		e.open_delta = b->open_amount;
		e.credit_delta = b->store_credit;
		e.revenue_delta = b->lifetime_revenue;
		e.returned_delta = b->lifetime_returned;
		e.order_delta = b->orders_count;
		book_entry(&e);

		d.balance = b->balance;
		d.open = b->open_amount;
		d.credit = b->store_credit;
		d.revenue = b->lifetime_revenue;
		d.returned = b->lifetime_returned;
		d.orders = b->orders_count;
		d.paid_orders = b->paid_orders;
		d.event_at = b->has_last_event ? b->last_event_at : now;
		/* next_due_at is recomputed below, once the items have moved */
		d.recompute_due = false;
		apply_delta(survivor, dup_rows[i].currency, &d);
	}

	/* survivor takes the duplicate's timestamps, counters by month, items */
	exec_sql("UPDATE customer_account.account_state s SET"
			 " first_order_at = LEAST(s.first_order_at, x.first_order_at),"
			 " last_purchase_at = GREATEST(s.last_purchase_at, x.last_purchase_at),"
			 " last_webshop = GREATEST(s.last_webshop, x.last_webshop),"
			 " last_store = GREATEST(s.last_store, x.last_store),"
			 " last_marketplace = GREATEST(s.last_marketplace, x.last_marketplace),"
			 " last_callcenter = GREATEST(s.last_callcenter, x.last_callcenter),"
			 " last_app = GREATEST(s.last_app, x.last_app),"
			 " last_event_at = GREATEST(s.last_event_at, x.last_event_at),"
			 " dunning_level = GREATEST(s.dunning_level, x.dunning_level),"
			 " dunned_at = GREATEST(s.dunned_at, x.dunned_at)"
			 " FROM customer_account.account_state x"
			 " WHERE s.customer_id = $1 AND x.customer_id = $2 AND x.currency = s.currency", survivor, duplicate);
	/*
	 * The duplicate's notices of its current dunning cycle become the
	 * survivor's (marked merged_from, so a replayed run does not show them
	 * again): the survivor's level stays what its notices say.
	 */
	exec_sql("INSERT INTO customer_account.dunning_notice AS n"
			 " (customer_id, currency, level, cycle, run_date, overdue_amount, fee, action, merged_from)"
			 " SELECT $1, d.currency, d.level, s.dunning_cycle, d.run_date, d.overdue_amount, d.fee, d.action, $2"
			 " FROM customer_account.dunning_notice d"
			 " JOIN customer_account.account_state x ON x.customer_id = d.customer_id AND x.currency = d.currency"
			 "   AND x.dunning_cycle = d.cycle AND x.dunning_level > 0"
			 " JOIN customer_account.account_state s ON s.customer_id = $1 AND s.currency = d.currency"
			 " WHERE d.customer_id = $2"
			 " ON CONFLICT (customer_id, currency, level, cycle) DO NOTHING", survivor, duplicate);
	exec_sql("UPDATE customer_account.account_state SET balance = 0, open_amount = 0, store_credit = 0,"
			 " lifetime_revenue = 0, lifetime_returned = 0, orders_count = 0, paid_orders = 0,"
			 " next_due_at = NULL, dunning_level = 0, updated_at = now() WHERE customer_id = $2 AND $1 IS NOT NULL",
			 survivor, duplicate);
	exec_sql("INSERT INTO customer_account.account_period AS p (customer_id, currency, period, revenue, purchased, returned, orders)"
			 " SELECT $1, currency, period, revenue, purchased, returned, orders"
			 " FROM customer_account.account_period WHERE customer_id = $2"
			 " ON CONFLICT (customer_id, currency, period) DO UPDATE SET"
			 " revenue = p.revenue + EXCLUDED.revenue, purchased = p.purchased + EXCLUDED.purchased,"
			 " returned = p.returned + EXCLUDED.returned, orders = p.orders + EXCLUDED.orders", survivor, duplicate);
	exec_sql("DELETE FROM customer_account.account_period WHERE customer_id = $2 AND $1 IS NOT NULL", survivor, duplicate);
	if (ca_state_has_ring())
		exec_sql("UPDATE customer_account.account_state SET month_ring = customer_account.month_ring_of(customer_id, currency)"
				 " WHERE customer_id = $2 OR (customer_id = $1 AND currency IN"
				 "   (SELECT x.currency FROM customer_account.account_state x WHERE x.customer_id = $2))",
				 survivor, duplicate);	/* only the accounts the merge changes (and holds) */
	exec_sql("UPDATE customer_account.open_item SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
	exec_sql("UPDATE customer_account.item_application SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);

	/*
	 * Now that the duplicate's items are the survivor's: the earliest due
	 * date over all of them (balance() looks for overdue items only when
	 * it is past), and dunning ends where nothing is overdue any more.
	 */
	exec_sql("UPDATE customer_account.account_state s SET"
			 " next_due_at = (SELECT min(i.due_at) FROM customer_account.open_item i"
			 "     WHERE i.customer_id = s.customer_id AND i.currency = s.currency"
			 "       AND i.settled_at IS NULL AND i.kind <> 'prepayment'),"
			 " dunning_level = CASE WHEN s.dunning_level > 0 AND NOT EXISTS (SELECT 1"
			 "     FROM customer_account.open_item i WHERE i.customer_id = s.customer_id AND i.currency = s.currency"
			 "       AND i.settled_at IS NULL AND NOT i.disputed AND i.kind <> 'prepayment' AND i.due_at < now())"
			 "   THEN 0 ELSE s.dunning_level END,"
			 " dunning_cycle = s.dunning_cycle + CASE WHEN s.dunning_level > 0 AND NOT EXISTS (SELECT 1"
			 "     FROM customer_account.open_item i WHERE i.customer_id = s.customer_id AND i.currency = s.currency"
			 "       AND i.settled_at IS NULL AND NOT i.disputed AND i.kind <> 'prepayment' AND i.due_at < now())"
			 "   THEN 1 ELSE 0 END"
			 " WHERE s.customer_id = $1"
			 "   AND s.currency IN (SELECT x.currency FROM customer_account.account_state x WHERE x.customer_id = $2)",
			 survivor, duplicate);

	merging = true;
	PG_TRY();
	{
		exec_sql("UPDATE customer_account.orders SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
		exec_sql("UPDATE customer_account.payment SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
		exec_sql("UPDATE customer_account.order_line SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
	}
	PG_FINALLY();
	{
		merging = false;
	}
	PG_END_TRY();
	exec_sql("UPDATE customer_account.customer_identity SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
	exec_sql("UPDATE customer_account.customer SET merged_into = $1, email = NULL, phone = NULL WHERE customer_id = $2",
			 survivor, duplicate);
	exec_sql("UPDATE customer_account.customer s SET"
			 " customer_since = LEAST(s.customer_since, d.customer_since),"
			 " email = coalesce(s.email, (SELECT value FROM customer_account.customer_identity"
			 "                           WHERE customer_id = $1 AND kind = 'email' ORDER BY linked_at LIMIT 1)),"
			 " blocked = s.blocked OR d.blocked"
			 " FROM customer_account.customer d WHERE s.customer_id = $1 AND d.customer_id = $2", survivor, duplicate);
	/* loyalty: lots, history and totals move to the survivor with their dates */
	ca_loyalty_merge(survivor, duplicate);
	ca_finish();
	PG_RETURN_VOID();
}
