/*-------------------------------------------------------------------------
 *
 * payments.c
 *	  Payments and fees on the books: an INSERT into payment books the
 *	  payment (post_payment: applied to the named order's items, then the
 *	  oldest due; the rest becomes store credit), payment_post is its AFTER
 *	  row trigger; ca_post_fee books a dunning fee.  The payment-method
 *	  decision for an order lives in payment.c.
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
#include "posting_int.h"
#include "restore.h"
#include "spi_util.h"

/* ------------------------------------------------------------------------
 * payments
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_order_of_payment;

/* book a payment: applied to the order's items, then the oldest due; the rest is store credit */
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
	StateRow	st;
	PostingExtra x = {0};
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
						ca_currency_amount_to_cstring(amount)),
				 errhint("Money paid out to the customer is a refund, not a negative payment.")));
	ca_check_customer(customer_id);
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

	ca_lock_account(customer_id, currency, &st);
	applied = ca_apply_money(customer_id, currency, order_no, amount->units, received_at, payment_ref, &orders_paid);

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
	x.paid_orders = orders_paid;
	x.recompute_due = applied > 0;
	ca_post_entries(&e, 1, &x);
}

/* a dunning fee: a receivable due 14 days after the notice */
void
ca_post_fee(int64 customer_id, const char *currency, int64 fee, TimestampTz at, const char *note)
{
	StateRow	st;
	PostingExtra x = {0};
	LedgerEntry e = {0};
	TimestampTz due;

	ca_lock_account(customer_id, currency, &st);
	e.customer_id = customer_id;
	e.currency = currency;
	e.entry_type = "fee";
	e.amount = fee;
	e.open_delta = fee;
	e.event_at = at;
	e.note = note;
	due = ca_add_days(at, 14, "due date of a dunning fee", NULL);
	ca_insert_item(customer_id, currency, "fee", NULL, fee, at, due);
	x.has_new_due = true;
	x.new_due_at = due;
	ca_post_entries(&e, 1, &x);
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
	else if (!(ca_merging && TRIGGER_FIRED_BY_UPDATE(trig->tg_event)))
		refuse_change("payment", tuple_text(trig->tg_trigtuple, td, "payment_ref"),
					  "Payments stay in the books; book a correction instead.");
	ca_finish();
	return PointerGetDatum(NULL);
}
