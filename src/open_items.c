/*-------------------------------------------------------------------------
 *
 * open_items.c
 *	  Open items: the receivables (invoice, prepayment, fee) of an account,
 *	  and the money applied to them.  New items (ca_insert_item), payments
 *	  applied to an order's items and then the oldest due (ca_apply_money),
 *	  a return's credit applied (ca_settle_items), a cancelled order's items
 *	  closed (ca_close_order_items).
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

#include "posting_int.h"
#include "spi_util.h"

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
static SPIPlanPtr plan_order_items_open;

/* a new open item (invoice, prepayment or fee), open for its whole amount */
void
ca_insert_item(int64 customer_id, const char *currency, const char *kind, const char *order_no,
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

/* take amount off one item (settling it when nothing is left) and record the application */
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
int64
ca_apply_money(int64 customer_id, const char *currency, const char *order_no, int64 amount,
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

/* close what is still open of an order (a cancellation); returns that amount */
int64
ca_close_order_items(const char *order_no, TimestampTz at)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int64		open;

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
		cvalues[1] = TimestampTzGetDatum(at);
		ca_execute(plan_item_close_order, cvalues, NULL, false, 0);
	}
	return open;
}

/*
 * set_disputed(order_no, disputed DEFAULT true): mark the unsettled items
 * of an order disputed (the dunning run leaves them out) or no longer, under
 * the account's lock like every other change of an account's items.
 * Returns how many items it marked.
 */
PG_FUNCTION_INFO_V1(set_disputed);
Datum
set_disputed(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr plan_order;
	static SPIPlanPtr plan_mark;
	Oid			types[2] = {TEXTOID, BOOLOID};
	Datum		values[2];
	bool		disputed = PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);
	int64		customer_id;
	char	   *currency;
	StateRow	st;
	int32		marked;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown order \"<NULL>\"")));
	values[0] = PointerGetDatum(PG_GETARG_TEXT_PP(0));
	values[1] = BoolGetDatum(disputed);
	ca_connect();
	ca_prepare(&plan_order,
			   "SELECT customer_id, customer_account.currency_of(total) FROM customer_account.orders"
			   " WHERE order_no = $1",
			   1, types);
	ca_execute(plan_order, values, NULL, true, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown order \"%s\"", text_to_cstring(PG_GETARG_TEXT_PP(0)))));
	customer_id = ca_get_int64(0, 1, NULL);
	currency = ca_get_text(0, 2);
	ca_lock_account(customer_id, currency, &st);
	ca_prepare(&plan_mark,
			   "UPDATE customer_account.open_item SET disputed = $2 WHERE order_no = $1 AND settled_at IS NULL",
			   2, types);
	ca_execute(plan_mark, values, NULL, false, 0);
	marked = (int32) SPI_processed;
	ca_finish();
	PG_RETURN_INT32(marked);
}
