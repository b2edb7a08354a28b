/*-------------------------------------------------------------------------
 *
 * orders.c
 *	  Orders: an INSERT into orders books the order (post_order: the
 *	  payment-method decision under the account lock, the ledger rows, the
 *	  open item, the account state, the loyalty hook), setting cancelled_at
 *	  books the cancellation (post_cancel); orders_post is the AFTER row
 *	  trigger that calls them.  order_line_check checks each line against its
 *	  order, order_total_check (deferred) the order's total against its lines
 *	  at commit.
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
#include "input.h"
#include "loyalty.h"
#include "payment.h"
#include "posting_int.h"
#include "restore.h"
#include "spi_util.h"

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

/* note an order booked in this transaction, for the checks of its lines */
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

/* an order noted by remember_order in this (still live) transaction, or NULL */
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

/* book a new order: decision, ledger rows, open item, account state, loyalty */
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
	StateRow	st;
	PostingExtra x = {0};
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

	ca_check_customer(customer_id);
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
						ca_currency_amount_to_cstring(total))));

	/* the payment-method decision, under the customer's lock */
	if (f.needs_lock)
		ca_lock_account(customer_id, currency, &st);
	else
		memset(&st, 0, sizeof(st));
	ca_payment_enforce(customer_id, channel, f.channel_kind, currency, method, total->units, placed_at, &st);

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
	e.revenue_period = ca_month_of(placed_at);

	if (strcmp(f.settlement, "immediate") == 0)
	{
		LedgerEntry both[2];

		/* settled at once: paid by card, cash, marketplace or store credit */
		both[0] = e;
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
								ca_currency_amount_to_cstring(total)),
						 errdetail("reason_code: insufficient_store_credit")));
			/* the credit was already part of the balance: spend it */
			e.amount = 0;
			e.credit_delta = -total->units;
		}
		else
			e.amount = -total->units;
		both[1] = e;
		x.paid_orders = 1;
		ca_post_entries(both, 2, &x);
	}
	else
	{
		bool		prepaid = strcmp(f.settlement, "prepaid") == 0;
		TimestampTz due = ca_add_days(placed_at, f.payment_term_days, "due date of order", order_no);

		e.open_delta = total->units;
		ca_insert_item(customer_id, currency, prepaid ? "prepayment" : "invoice", order_no,
					total->units, placed_at, due);
		if (!prepaid)
		{
			x.has_new_due = true;
			x.new_due_at = due;
		}
		ca_post_entries(&e, 1, &x);
	}
	/* the UPDATE above took the lock: a merge may have committed while it waited */
	if (!f.needs_lock)
		ca_check_customer(customer_id);
	remember_order(order_no, customer_id, total->code);
	/* loyalty: the reactivation credit (points are credited when the lines arrive) */
	{
		bool		undelivered;
		Datum		delivered = tuple_datum(tup, td, "delivered_at", &undelivered);

		ca_loyalty_order_posted(customer_id, order_no, channel, method, currency, total->units, placed_at,
								!undelivered, undelivered ? 0 : DatumGetTimestampTz(delivered));
	}
}

/* book the cancellation of an order: close its items, reverse it, refund or credit what was paid */
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
	StateRow	st;
	PostingExtra x = {0};
	LedgerEntry e = {0};
	int64		open = 0;

	load_order_facts(channel, method, &f);
	ca_lock_account(customer_id, currency, &st);

	/* close what is still open of the order */
	open = ca_close_order_items(order_no, cancelled_at);

	e.customer_id = customer_id;
	e.currency = currency;
	e.event_at = cancelled_at;
	e.channel = channel;
	e.channel_kind = f.channel_kind;
	e.order_no = order_no;
	e.method = method;
	e.entry_type = "cancel";
	e.sold_at = placed_at;
	e.amount = -total->units;
	e.open_delta = -open;
	e.revenue_delta = -total->units;
	e.order_delta = -1;
	e.has_period = true;
	e.revenue_period = ca_month_of(placed_at);

	x.recompute_due = (open > 0);

	if (strcmp(f.settlement, "immediate") == 0 && strcmp(method, "store_credit") != 0)
	{
		LedgerEntry both[2];

		/* the money goes back the way it came */
		both[0] = e;
		e.open_delta = 0;
		e.entry_type = "refund";
		e.amount = total->units;
		e.revenue_delta = 0;
		e.order_delta = 0;
		e.has_period = false;
		e.note = "cancellation refunded to the original payment method";
		both[1] = e;
		x.paid_orders = -1;
		ca_post_entries(both, 2, &x);
	}
	else
	{
		/* what was paid (or spent from store credit) becomes store credit */
		e.credit_delta = total->units - open;
		if (open == 0)
			x.paid_orders = -1;
		ca_post_entries(&e, 1, &x);
	}
	/* loyalty: everything the order earned, and its reactivation credit, goes back */
	ca_loyalty_order_cancelled(customer_id, order_no, currency, cancelled_at);
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

static SPIPlanPtr plan_accepted_return;

/*
 * Has a till accepted a return of this order?  Then a cancellation would
 * refund those items a second time.  (Before ALTER EXTENSION UPDATE to
 * 1.1.0 there are no returns.)
 */
static bool
has_accepted_return(const char *order_no)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (SPI_execute("SELECT pg_catalog.to_regclass('customer_account.return_line') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || !ca_get_bool(0, 1, NULL))
		return false;
	ca_prepare(&plan_accepted_return,
			   "SELECT 1 FROM customer_account.return_line"
			   " WHERE order_no = $1 AND status = 'accepted' LIMIT 1",
			   1, types);
	values[0] = CStringGetTextDatum(order_no);
	ca_execute(plan_accepted_return, values, NULL, false, 1);
	return SPI_processed > 0;
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
			|| (!ca_merging && column_changed(old, new, td, "customer_id")))
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
			if (has_accepted_return(order_no))
				ereport(ERROR,
						(errcode(ERRCODE_CA_REFUSED),
						 errmsg("order \"%s\" has returned goods and cannot be cancelled", order_no),
						 errdetail("reason_code: already_returned"),
						 errhint("Return the remaining items instead; a cancellation would refund the returned ones twice.")));
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
	if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event) && ca_merging)
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
				 errmsg("unit price %s on order \"%s\" must not be negative", ca_currency_amount_to_cstring(price), order_no)));

	{
		RecentOrder *r = recent_order(order_no);

		if (r != NULL)
		{
			if (r->code != price->code)
				ca_check_same_currency(r->code, price->code, "book");
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
			ca_check_same_currency(total.code, price->code, "book");
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

		ca_currency_unpack(total.code, iso);
		ereport(ERROR,
				(errcode(ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION),
				 errmsg("order \"%s\" has total %s but its lines sum to %s", order_no,
						ca_currency_amount_to_cstring(&total), n == 0 ? "nothing (no lines)" : format_amount(sum, iso)),
				 errhint("Insert the order and all of its lines in one transaction, with total = sum(unit_price * qty).")));
	}
	return PointerGetDatum(NULL);
}
