/*-------------------------------------------------------------------------
 *
 * input.c
 *	  Input that must be refused with a clear error, before anything is
 *	  booked.
 *
 *	  Event times (placed_at, received_at, delivered_at, cancelled_at) are
 *	  finite, not before 1970-01-01 00:00 UTC and at most one day after the
 *	  current time; a delivery or a cancellation never lies before the
 *	  placement.  A payment is in its channel's currency, with a method the
 *	  channel kind offers, and never in store credit (store credit is spent
 *	  through orders, not paid in).  Sums and date arithmetic on stored
 *	  64-bit values are checked: 22003 or 22008 instead of a wrapped value.
 *
 *	  event_input_check() is a BEFORE INSERT row trigger on the order and
 *	  payment tables: it answers an unknown customer, channel, method or
 *	  order with RA002 before the foreign keys would answer 23503 (their
 *	  checks are AFTER triggers that fire before the posting trigger).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "config.h"
#include "direct.h"
#include "input.h"
#include "money.h"
#include "spi_util.h"

/* a timestamp as text (ISO, session time zone), in memory of its own */
static char *
ts_text(TimestampTz ts)
{
	return pstrdup(timestamptz_to_str(ts));
}

/* 22008 when ts is not an acceptable event time */
void
ca_check_event_time(TimestampTz ts, const char *column, const char *what, const char *key)
{
	const char *detail;
	TimestampTz latest;

	if (TIMESTAMP_NOT_FINITE(ts))
		detail = "Event times must be finite.";
	else if (ts < CA_EVENT_EARLIEST)
		detail = "Event times before 1970-01-01 00:00:00+00 are not accepted.";
	else if (!pg_add_s64_overflow(GetCurrentTimestamp(), CA_EVENT_AHEAD, &latest) && ts > latest)
		detail = "An event time may lie at most one day after the current time (the clock of a till may run ahead, no more).";
	else
		return;
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("%s %s of %s \"%s\" is out of range", column, ts_text(ts), what, key),
			 errdetail("%s", detail)));
}

/* 22023 when a delivery or a cancellation lies before the placement */
void
ca_check_not_before_placed(TimestampTz at, TimestampTz placed_at, const char *verb, const char *order_no)
{
	if (at >= placed_at)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("order \"%s\" cannot be %s at %s before it was placed at %s",
					order_no, verb, ts_text(at), ts_text(placed_at))));
}

/*
 * A payment the channel cannot take: another currency (22023), store credit
 * paid in (22023), a method the channel kind does not offer (RA001, with
 * the reason code of payment_options()).
 */
void
ca_check_payment_method(const char *payment_ref, const ChannelConf *ch, const char *channel,
						const char *method, const char *currency)
{
	const MethodConf *methods;
	const MethodConf *m = NULL;
	int			n;

	if (strcmp(ch->currency, currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payment \"%s\" is in %s but channel \"%s\" takes %s",
						payment_ref, currency, channel, ch->currency)));
	if (strcmp(method, "store_credit") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("payment \"%s\" cannot be paid in with store credit", payment_ref),
				 errdetail("Store credit is spent by placing an order with payment method store_credit; it is never paid in."),
				 errhint("Book money received with the method it arrived by, such as bank_transfer or cash.")));
	methods = ca_methods(&n);
	for (int i = 0; i < n; i++)
		if (strcmp(methods[i].code, method) == 0)
			m = &methods[i];
	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown payment method \"%s\"", method)));
	if (!m->all_kinds && (ch->kind < 0 || !m->kinds[ch->kind]))
		ereport(ERROR,
				(errcode(ERRCODE_CA_REFUSED),
				 errmsg("payment method \"%s\" is not offered on channel \"%s\" (%s)", method, channel,
						ch->kind >= 0 ? ca_channel_kind_names[ch->kind] : "?"),
				 errdetail("reason_code: not_offered_on_channel"),
				 errhint("Record the payment on a channel that takes %s, or add the channel kind to customer_account.payment_method.channel_kinds.",
						 method)));
}

/* the attribute number of a column the trigger's table must have */
static int
column_number(TupleDesc td, const char *name)
{
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);

		if (!a->attisdropped && strcmp(NameStr(a->attname), name) == 0)
			return i + 1;
	}
	return 0;
}

/* a text column of the new row, NULL when null or absent */
static char *
column_text(HeapTuple tup, TupleDesc td, const char *name)
{
	int			attno = column_number(td, name);
	bool		isnull;
	Datum		d;

	if (attno == 0)
		return NULL;
	d = heap_getattr(tup, attno, td, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * event_input_check: BEFORE INSERT FOR EACH ROW on orders and payment.
 * Everything the row names must exist: the customer (a direct index read),
 * the channel and the payment method (the configuration cache) and, for a
 * payment, the order.  RA002 otherwise.  Runs no SQL and needs no rights.
 */
PG_FUNCTION_INFO_V1(event_input_check);
Datum
event_input_check(PG_FUNCTION_ARGS)
{
	TriggerData *trig;
	TupleDesc	td;
	HeapTuple	tup;
	int			attno;
	bool		is_payment;
	char	   *channel;
	char	   *method;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("event_input_check: not called by trigger manager")));
	trig = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_BEFORE(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event)
		|| !TRIGGER_FIRED_BY_INSERT(trig->tg_event))
		elog(ERROR, "event_input_check must be fired BEFORE INSERT ... FOR EACH ROW");
	td = trig->tg_relation->rd_att;
	tup = trig->tg_trigtuple;
	is_payment = column_number(td, "payment_ref") > 0;

	/* NULLs are left to the NOT NULL constraints */
	attno = column_number(td, "customer_id");
	if (attno > 0)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, attno, td, &isnull);

		if (!isnull)
		{
			CustomerRow c;

			/* a fresh snapshot: a customer committed a moment ago counts */
			ca_read_customer(DatumGetInt64(d), GetLatestSnapshot(), &c);
		}
	}
	channel = column_text(tup, td, "channel");
	if (channel != NULL)
		(void) ca_channel(channel);
	method = column_text(tup, td, is_payment ? "method" : "payment_method");
	if (method != NULL)
	{
		const MethodConf *methods;
		int			n;
		bool		found = false;

		methods = ca_methods(&n);
		for (int i = 0; i < n && !found; i++)
			found = strcmp(methods[i].code, method) == 0;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_CA_UNKNOWN),
					 errmsg("unknown payment method \"%s\"", method),
					 errhint("Payment methods are added with customer_account.add_payment_method().")));
	}
	if (is_payment)
	{
		char	   *order_no = column_text(tup, td, "order_no");
		int64		order_customer;
		CurrencyAmount total;
		TransactionId xmin;

		if (order_no != NULL && !ca_read_order(order_no, GetLatestSnapshot(), &order_customer, &total, &xmin))
			ereport(ERROR,
					(errcode(ERRCODE_CA_UNKNOWN),
					 errmsg("unknown order \"%s\"", order_no)));
	}
	return PointerGetDatum(tup);
}
