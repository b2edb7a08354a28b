/*-------------------------------------------------------------------------
 *
 * return_book.c
 *	  accept_return() and announce_return(): the return decided again under
 *	  the customer's lock, then booked through the posting core.
 *
 *	  An accepted return books a credit note (entry 'return': revenue down,
 *	  returned value up, in the month of the return) and, per route, money
 *	  paid out (entry 'refund'), store credit, or a reduction of the open
 *	  invoice (the order's own, or overdue ones set off); the return record,
 *	  its line and one refund row per route and tender.  A refused return
 *	  books nothing but its record.  Either way the channel that sold the
 *	  order learns the outcome through the outbox (topic 'return') and
 *	  NOTIFY customer_account_outbox.
 *
 *	  The return number is the natural key: a decision is taken once per
 *	  return number and SKU, so a retried accept_return() answers what was
 *	  booked and books nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "money.h"
#include "loyalty.h"
#include "posting.h"
#include "profile.h"
#include "return_rules.h"
#include "returns.h"
#include "spi_util.h"

static SPIPlanPtr plan_next_no;
static SPIPlanPtr plan_request;
static SPIPlanPtr plan_line_no;
static SPIPlanPtr plan_line;
static SPIPlanPtr plan_refund;
static SPIPlanPtr plan_outbox;
static SPIPlanPtr plan_replay;
static SPIPlanPtr plan_lines;

/* text argument n, or an error naming it when NULL */
static char *
required_text(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	return text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* a text parameter, or NULL */
static Datum
text_or_null(const char *s, char *null_flag)
{
	*null_flag = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* minor units as money text, e.g. 19.99 EUR */
static char *
format_units(int64 units, int32 code)
{
	return ca_currency_amount_to_cstring(ca_make_currency_amount(units, code));
}

/* a new return number that is not also an order number */
static char *
next_return_no(void)
{
	for (;;)
	{
		char	   *no;

		/*
		 * The number is drawn once, in the subquery; the order lookup then
		 * compares with it through the orders' primary key (compared with
		 * currval(), a volatile call, it read every order per return: the
		 * returns of a load of 1 000 000 customers took hours)
		 */
		ca_prepare(&plan_next_no,
				   "SELECT x.no, EXISTS (SELECT 1 FROM customer_account.orders o WHERE o.order_no = x.no)"
				   " FROM (SELECT 'RT' || nextval('customer_account.return_no_seq') AS no OFFSET 0) x",
				   0, NULL);
		ca_execute(plan_next_no, NULL, NULL, false, 1);
		no = ca_get_text(0, 1);
		if (!ca_get_bool(0, 2, NULL))
			return no;
	}
}

/* the return record: created, or its status and channel after a decision */
static void
write_request(const ReturnCase *rc, const char *channel, const char *status, const char *announced_on,
			  TimestampTz now)
{
	Oid			types[8] = {INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	ca_prepare(&plan_request,
			   "INSERT INTO customer_account.return_request AS r"
			   " (customer_id, return_no, order_no, channel, announced_on, status, announced_at, decided_at)"
			   " VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $8 THEN $7 END, CASE WHEN NOT $8 THEN $7 END)"
			   " ON CONFLICT (return_no) DO UPDATE SET channel = EXCLUDED.channel,"
			   " status = CASE WHEN r.status = 'accepted' THEN 'accepted' ELSE EXCLUDED.status END,"
			   " decided_at = EXCLUDED.decided_at",
			   8, types);
	values[0] = Int64GetDatum(rc->customer_id);
	values[1] = CStringGetTextDatum(rc->return_no);
	values[2] = CStringGetTextDatum(rc->order_no);
	values[3] = text_or_null(channel, &nulls[3]);
	values[4] = text_or_null(announced_on, &nulls[4]);
	values[5] = CStringGetTextDatum(status);
	values[6] = TimestampTzGetDatum(now);
	values[7] = BoolGetDatum(announced_on != NULL);
	ca_execute(plan_request, values, nulls, false, 0);
}

/* a line of the return: announced (code NULL), accepted or rejected */
static int32
write_line(const ReturnCase *rc, const char *sku, int32 qty, const char *status, const char *code,
		   const char *channel)
{
	Oid			ltypes[1] = {TEXTOID};
	Oid			types[9] = {INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int32		line_no;

	ca_prepare(&plan_line_no,
			   "SELECT coalesce(max(line_no), 0) + 1 FROM customer_account.return_line WHERE return_no = $1",
			   1, ltypes);
	values[0] = CStringGetTextDatum(rc->return_no);
	ca_execute(plan_line_no, values, NULL, false, 1);
	line_no = ca_get_int32(0, 1, NULL);

	ca_prepare(&plan_line,
			   "INSERT INTO customer_account.return_line"
			   " (customer_id, return_no, line_no, order_no, sku, qty, status, reason_code, channel)"
			   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			   9, types);
	values[0] = Int64GetDatum(rc->customer_id);
	values[1] = CStringGetTextDatum(rc->return_no);
	values[2] = Int32GetDatum(line_no);
	values[3] = CStringGetTextDatum(rc->order_no);
	values[4] = CStringGetTextDatum(sku);
	values[5] = Int32GetDatum(qty);
	values[6] = CStringGetTextDatum(status);
	values[7] = text_or_null(code, &nulls[7]);
	values[8] = CStringGetTextDatum(channel);
	ca_execute(plan_line, values, nulls, false, 0);
	return line_no;
}

/* the tender a route refunds: 'order', 'payment' (with its reference) or 'invoice' */
static const char *
route_tender(const ReturnCase *rc, const ReturnRoute *r, const char **ref, const char **method)
{
	*ref = NULL;
	*method = rc->method;
	if (r->tender == RETURN_TENDER_UNPAID)
		return "invoice";
	if (r->tender >= 0)
	{
		*method = rc->tenders[r->tender].method;
		if (rc->tenders[r->tender].kind == TENDER_KIND_PAYMENT)
		{
			*ref = rc->tenders[r->tender].payment_ref;
			return "payment";
		}
	}
	return "order";
}

/* one route of an accepted line, with the tender it refunds */
static void
write_refund(const ReturnCase *rc, int32 line_no, int route_no, const ReturnRoute *r)
{
	Oid			types[12] = {INT8OID, TEXTOID, INT4OID, INT4OID, TEXTOID, TEXTOID, INT8OID, TEXTOID,
		TEXTOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[12];
	char		nulls[12] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	const char *ref;
	const char *method;
	const char *tender = route_tender(rc, r, &ref, &method);

	ca_prepare(&plan_refund,
			   "INSERT INTO customer_account.return_refund (customer_id, return_no, line_no, route_no, order_no,"
			   " action, refund, reason_code, tender, payment_ref, method)"
			   " VALUES ($1, $2, $3, $4, $5, $6::customer_account.return_action,"
			   " customer_account.currency_amount_from_minor_units($7, $8), $9, $10, $11, $12)",
			   12, types);
	values[0] = Int64GetDatum(rc->customer_id);
	values[1] = CStringGetTextDatum(rc->return_no);
	values[2] = Int32GetDatum(line_no);
	values[3] = Int32GetDatum(route_no);
	values[4] = CStringGetTextDatum(rc->order_no);
	values[5] = CStringGetTextDatum(ca_return_action_names[r->action]);
	values[6] = Int64GetDatum(r->refund);
	values[7] = CStringGetTextDatum(rc->currency);
	values[8] = CStringGetTextDatum(r->reason_code);
	values[9] = CStringGetTextDatum(tender);
	values[10] = text_or_null(ref, &nulls[10]);
	values[11] = text_or_null(method, &nulls[11]);
	ca_execute(plan_refund, values, nulls, false, 0);
}

/* a route that pays money out (not credit, not a reduction) */
static bool
is_payout(ReturnAction a)
{
	return a == RETURN_REFUND_CASH || a == RETURN_REFUND_ORIGINAL || a == RETURN_VIA_MARKETPLACE;
}

/* money paid out: a 'refund' entry per route, from the channel that pays it, after out[0..n-1]; the new n */
static int
payout_entries(const ReturnCase *rc, const ReturnDecision *d, const char *channel, int ret_kind,
			   TimestampTz now, LedgerEntry *out, int n)
{
	for (int i = 0; i < d->nroutes; i++)
	{
		const ReturnRoute *r = &d->routes[i];
		LedgerEntry *p = &out[n];
		const char *ref;
		const char *method;

		if (!is_payout(r->action))
			continue;
		(void) route_tender(rc, r, &ref, &method);
		memset(p, 0, sizeof(*p));
		p->customer_id = rc->customer_id;
		p->currency = rc->currency;
		p->entry_type = "refund";
		p->amount = r->refund;
		p->event_at = now;
		p->channel = channel;
		p->channel_kind = ca_channel_kind_names[ret_kind];
		p->order_no = rc->order_no;
		p->payment_ref = ref;
		p->method = method;
		p->note = psprintf("return %s: %s", rc->return_no, ca_return_action_names[r->action]);
		n++;
	}
	return n;
}

/*
 * The books of an accepted return: the open items it reduces, then the
 * credit note and the money paid out per route, and with them the account
 * state, through the posting core with the account row locked by the caller.
 */
static void
book_return(const ReturnCase *rc, const ReturnDecision *d, const char *sku, int32 qty,
			const char *channel, int ret_kind, TimestampTz now)
{
	LedgerEntry *entries = palloc0(sizeof(LedgerEntry) * (d->nroutes + 1));
	LedgerEntry *e = &entries[0];
	PostingExtra x = {0};
	int64		reduction = 0;
	int64		offset = 0;
	int64		credit = 0;
	int32		orders_paid = 0;
	int			n;
	const char *sold_kind = ca_channel_kind_names[rc->sold_kind];

	for (int i = 0; i < d->nroutes; i++)
	{
		const ReturnRoute *r = &d->routes[i];

		if (is_payout(r->action))
			continue;
		else if (r->action == RETURN_REDUCE_INVOICE && r->tender == RETURN_TENDER_UNPAID)
			reduction += r->refund;
		else if (r->action == RETURN_REDUCE_INVOICE)
			offset += r->refund;
		else
			credit += r->refund;
	}

	/* what was never paid shrinks the order's invoice; overdue debt is set off */
	if (reduction > 0
		&& ca_settle_items(rc->customer_id, rc->currency, rc->order_no, 0, reduction, now, rc->return_no,
						   &orders_paid) != reduction)
		elog(ERROR, "open items of order \"%s\" do not cover the return's reduction", rc->order_no);
	if (offset > 0
		&& ca_settle_items(rc->customer_id, rc->currency, NULL,
						   now - (TimestampTz) rc->overdue_grace_days * USECS_PER_DAY, offset, now,
						   rc->return_no, &orders_paid) != offset)
		elog(ERROR, "overdue items of customer " INT64_FORMAT " do not cover the set-off", rc->customer_id);

	/* the credit note: the sale is undone under the channel that sold it */
	e->customer_id = rc->customer_id;
	e->currency = rc->currency;
	e->entry_type = "return";
	e->amount = -d->value;
	e->open_delta = -(reduction + offset);
	e->credit_delta = credit;
	e->revenue_delta = -d->value;
	e->returned_delta = d->value;
	e->has_period = true;
	e->revenue_period = ca_month_of(now);
	e->event_at = now;
	e->channel = rc->sold_channel;
	e->channel_kind = sold_kind;
	e->order_no = rc->order_no;
	e->method = rc->method;
	e->note = psprintf("return %s: %d x %s at %s", rc->return_no, qty, sku, channel);
	n = payout_entries(rc, d, channel, ret_kind, now, entries, 1);

	x.paid_orders = orders_paid;
	x.recompute_due = reduction + offset > 0;
	ca_post_entries(entries, n, &x);
}

/* the outcome for the channel that sold the order, announced on commit */
static void
write_outbox(const ReturnCase *rc, const ReturnDecision *d, const char *sku, int32 qty, const char *channel)
{
	StringInfoData js;
	Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
	Datum		values[3];
	int64		total = 0;

	initStringInfo(&js);
	appendStringInfoString(&js, "{\"return_no\": ");
	escape_json(&js, rc->return_no);
	appendStringInfoString(&js, ", \"order_no\": ");
	escape_json(&js, rc->order_no);
	appendStringInfo(&js, ", \"status\": \"%s\", \"sku\": ", d->accepted ? "accepted" : "rejected");
	escape_json(&js, sku);
	appendStringInfo(&js, ", \"quantity\": %d, \"returned_on\": ", qty);
	escape_json(&js, channel);
	appendStringInfo(&js, ", \"reason_code\": \"%s\", \"refunds\": [", d->reason_code);
	for (int i = 0; d->accepted && i < d->nroutes; i++)
	{
		const ReturnRoute *r = &d->routes[i];
		const char *ref;
		const char *method;

		(void) route_tender(rc, r, &ref, &method);
		total += r->refund;
		appendStringInfo(&js, "%s{\"action\": \"%s\", \"refund\": \"%s\", \"reason_code\": \"%s\", \"method\": ",
						 i > 0 ? ", " : "", ca_return_action_names[r->action], format_units(r->refund, rc->code),
						 r->reason_code);
		escape_json(&js, method);
		appendStringInfoChar(&js, '}');
	}
	appendStringInfo(&js, "], \"refund_total\": \"%s\"}", format_units(total, rc->code));

	ca_prepare(&plan_outbox,
			   "INSERT INTO customer_account.outbox (customer_id, topic, channel, payload)"
			   " VALUES ($1, 'return', $2, $3::jsonb)",
			   3, types);
	values[0] = Int64GetDatum(rc->customer_id);
	values[1] = CStringGetTextDatum(rc->sold_channel);
	values[2] = CStringGetTextDatum(js.data);
	ca_execute(plan_outbox, values, NULL, false, 0);
	Async_Notify("customer_account_outbox", "return");
}

/* one result row of accept_return() */
static void
put_row(ReturnSetInfo *rsinfo, Oid action_type, const char *return_no, ReturnAction action, bool has_refund,
		int64 refund, int32 code, const char *reason_code, const char *language, const char *method)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	values[0] = CStringGetTextDatum(return_no);
	values[1] = DirectFunctionCall2(enum_in, CStringGetDatum(ca_return_action_names[action]),
									ObjectIdGetDatum(action_type));
	if (has_refund)
		values[2] = CurrencyAmountPGetDatum(ca_make_currency_amount(refund, code));
	else
		nulls[2] = true;
	values[3] = CStringGetTextDatum(reason_code);
	values[4] = CStringGetTextDatum(ca_return_reason(reason_code, action, language));
	if (method)
		values[5] = CStringGetTextDatum(method);
	else
		nulls[5] = true;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* the enum value of an action name */
static ReturnAction
action_of(const char *name)
{
	for (int a = 0; a <= RETURN_REJECT; a++)
		if (strcmp(ca_return_action_names[a], name) == 0)
			return (ReturnAction) a;
	elog(ERROR, "unknown return action \"%s\"", name);
	return RETURN_REJECT;
}

/* a retry: answer what the first call booked */
static void
replay(ReturnSetInfo *rsinfo, Oid action_type, const ReturnCase *rc)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];

	ca_prepare(&plan_replay,
			   "SELECT f.action::text, customer_account.minor_units(f.refund), f.reason_code, f.method, l.reason_code"
			   " FROM customer_account.return_line l"
			   " LEFT JOIN customer_account.return_refund f ON f.return_no = l.return_no AND f.line_no = l.line_no"
			   " WHERE l.return_no = $1 AND l.line_no = $2 ORDER BY f.route_no",
			   2, types);
	values[0] = CStringGetTextDatum(rc->return_no);
	values[1] = Int32GetDatum(rc->decided_line);
	/* not read-only: a fresh snapshot sees the attempt we waited for */
	ca_execute(plan_replay, values, NULL, false, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *action = ca_get_text(i, 1);

		if (action == NULL)
			put_row(rsinfo, action_type, rc->return_no, RETURN_REJECT, false, 0, rc->code, ca_get_text(i, 5),
					rc->language, NULL);
		else
			put_row(rsinfo, action_type, rc->return_no, action_of(action), true, ca_get_int64(i, 2, NULL),
					rc->code, ca_get_text(i, 3), rc->language, ca_get_text(i, 4));
	}
}

/*
 * The return number of this call: the one named first, or the one given
 * (which must not belong to another order), or none yet (a new one is
 * drawn when the decision is recorded).
 */
static void
name_return(ReturnCase *rc, const char *no, const char *given_no, Snapshot snap)
{
	char		order_no[128];

	if (rc->by_return)
	{
		if (given_no != NULL && strcmp(given_no, rc->return_no) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("return number \"%s\" does not match return \"%s\" named first", given_no, no),
					 errhint("Pass either the return number first, or the order number and the return number.")));
		return;
	}
	if (given_no == NULL)
		return;
	if (ca_return_read(given_no, snap, order_no, sizeof(order_no), &rc->announced, &rc->announced_at)
		&& strcmp(order_no, rc->order_no) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("return \"%s\" already exists for order \"%s\", not \"%s\"", given_no, order_no,
						rc->order_no),
				 errhint("A return number belongs to one order; use a new number.")));
	strlcpy(rc->return_no, given_no, sizeof(rc->return_no));
}

/* a first decision: recorded, booked when accepted, told to the channel, answered */
static void
decide_and_book(ReturnSetInfo *rsinfo, Oid action_type, ReturnCase *rc, const ReturnFacts *f,
				const char *sku, int32 quantity, const char *channel, int ret_kind, TimestampTz now)
{
	ReturnDecision *d = palloc(sizeof(ReturnDecision));
	const char *status;
	int32		line_no;

	ca_return_decide(f, d);
	status = d->accepted ? "accepted" : "rejected";
	if (rc->return_no[0] == '\0')
		strlcpy(rc->return_no, next_return_no(), sizeof(rc->return_no));
	write_request(rc, channel, status, NULL, now);
	line_no = write_line(rc, sku, quantity, status, d->reason_code, channel);
	if (d->accepted)
	{
		for (int i = 0; i < d->nroutes; i++)
			write_refund(rc, line_no, i + 1, &d->routes[i]);
		book_return(rc, d, sku, quantity, channel, ret_kind, now);
		/* the account is locked: take back what those units earned */
		(void) ca_loyalty_reverse_return_sku(rc->customer_id, rc->order_no, sku, quantity, now);
	}
	write_outbox(rc, d, sku, quantity, channel);
	for (int i = 0; i < d->nroutes; i++)
	{
		const ReturnRoute *r = &d->routes[i];
		const char *ref;
		const char *method;

		(void) route_tender(rc, r, &ref, &method);
		put_row(rsinfo, action_type, rc->return_no, r->action, r->action != RETURN_REJECT, r->refund,
				rc->code, r->reason_code, rc->language, r->action == RETURN_REJECT ? NULL : method);
	}
}

/*
 * accept_return(order_or_return_no text, sku text, quantity int, channel
 *   text, return_no text DEFAULT NULL) -> TABLE(return_no text, action
 *   return_action, refund currency_amount, reason_code text, reason text,
 *   method text)
 */
PG_FUNCTION_INFO_V1(accept_return);
Datum
accept_return(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *no = required_text(fcinfo, 0, "order or return number");
	char	   *sku = required_text(fcinfo, 1, "sku");
	char	   *channel = required_text(fcinfo, 3, "channel");
	char	   *given_no = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	int32		quantity;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	ReturnCase *rc = palloc(sizeof(ReturnCase));
	ReturnFacts *f = palloc(sizeof(ReturnFacts));
	const ChannelConf *ch;
	Oid			action_type;
	StateRow	st;
	Snapshot	snap;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("quantity must not be NULL")));
	quantity = PG_GETARG_INT32(2);
	if (quantity <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantity %d must be positive", quantity)));
	if (given_no != NULL && given_no[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a return number must not be empty")));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	action_type = TupleDescAttr(rsinfo->setDesc, 1)->atttypid;
	ch = ca_channel(channel);
	ca_check_channel_write(channel);	/* a pos role books only for its till */

	ca_connect();
	/* find the customer, lock the account, then read everything afresh */
	ca_return_resolve(no, GetActiveSnapshot(), rc);
	ca_lock_account(rc->customer_id, rc->currency, &st);
	snap = RegisterSnapshot(GetLatestSnapshot());
	ca_return_resolve(no, snap, rc);

	name_return(rc, no, given_no, snap);

	ca_return_gather(rc, sku, quantity, channel, now, snap, f);
	if (rc->decided_before)
	{
		if (rc->decided_qty != quantity)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("return \"%s\" already decided %d x \"%s\", not %d", rc->return_no, rc->decided_qty,
							sku, quantity),
					 errhint("A return number decides each SKU once; return more units under a new return number.")));
		replay(rsinfo, action_type, rc);
	}
	else if (rc->own_announced > 0 && quantity > rc->own_announced)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("return \"%s\" announced %d x \"%s\", not %d", rc->return_no, rc->own_announced,
						sku, quantity),
				 errhint("A till completes at most the announced units; return more under a new return number.")));
	else
		decide_and_book(rsinfo, action_type, rc, f, sku, quantity, channel, ch->kind, now);
	UnregisterSnapshot(snap);
	ca_finish();
	return (Datum) 0;
}

typedef struct AnnouncedLine
{
	char	   *sku;
	int32		qty;
} AnnouncedLine;

/* the lines of an announcement: [{"sku":"A1","qty":1}, ...], one entry per SKU */
static AnnouncedLine *
parse_lines(Datum lines, int *n)
{
	Oid			types[1] = {JSONBOID};
	AnnouncedLine *out;
	int			rows;

	ca_prepare(&plan_lines,
			   "SELECT x.n, jsonb_typeof(x.j), jsonb_typeof(x.j -> 'sku'), x.j ->> 'sku',"
			   " jsonb_typeof(x.j -> 'qty'), x.j ->> 'qty'"
			   " FROM jsonb_array_elements(CASE WHEN jsonb_typeof($1) = 'array' THEN $1 ELSE '[]' END)"
			   " WITH ORDINALITY AS x(j, n) ORDER BY x.n",
			   1, types);
	ca_execute(plan_lines, &lines, NULL, true, 0);
	rows = (int) SPI_processed;
	if (rows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("return lines must be a non-empty JSON array"),
				 errhint("Write lines like [{\"sku\":\"A1\",\"qty\":1}].")));
	out = palloc0(sizeof(AnnouncedLine) * rows);
	*n = 0;
	for (int i = 0; i < rows; i++)
	{
		char	   *type = ca_get_text(i, 2);
		char	   *sku_type = ca_get_text(i, 3);
		char	   *sku = ca_get_text(i, 4);
		char	   *qty_type = ca_get_text(i, 5);
		char	   *qty_text = ca_get_text(i, 6);
		int64		qty = 0;
		int			k;
		bool		good_qty = qty_type != NULL && strcmp(qty_type, "number") == 0
			&& strspn(qty_text, "0123456789") == strlen(qty_text) && strlen(qty_text) <= 10;

		if (good_qty)
			qty = strtoll(qty_text, NULL, 10);
		if (strcmp(type, "object") != 0 || sku_type == NULL || strcmp(sku_type, "string") != 0
			|| sku[0] == '\0' || !good_qty || qty <= 0 || qty > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("return line %d needs a \"sku\" string and a positive integer \"qty\"", i + 1),
					 errhint("Write lines like [{\"sku\":\"A1\",\"qty\":1}].")));
		for (k = 0; k < *n; k++)
			if (strcmp(out[k].sku, sku) == 0)
				break;
		if (k == *n)
			out[(*n)++].sku = sku;
		if ((int64) out[k].qty + qty > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("return lines of SKU \"%s\" add up to more than %d", sku, PG_INT32_MAX)));
		out[k].qty += (int32) qty;
	}
	return out;
}

/*
 * announce_return(order_no text, lines jsonb, channel text) -> text
 *   Every line is decided as a till would decide it now; a line that would
 *   be refused refuses the announcement (RA001 with the reason).  The
 *   announced units are reserved for this return until a till decides it.
 */
PG_FUNCTION_INFO_V1(announce_return);
Datum
announce_return(PG_FUNCTION_ARGS)
{
	char	   *order_no = required_text(fcinfo, 0, "order number");
	char	   *channel = required_text(fcinfo, 2, "channel");
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	ReturnCase *rc = palloc(sizeof(ReturnCase));
	ReturnFacts *f = palloc(sizeof(ReturnFacts));
	ReturnDecision *d = palloc(sizeof(ReturnDecision));
	AnnouncedLine *lines;
	int			nlines;
	StateRow	st;
	Snapshot	snap;
	char	   *return_no;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("return lines must not be NULL")));
	(void) ca_channel(channel);
	ca_check_channel_write(channel);	/* a shop role announces only for its shop */
	ca_connect();
	ca_return_resolve(order_no, GetActiveSnapshot(), rc);
	if (rc->by_return)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown order \"%s\"", order_no),
				 errhint("\"%s\" is a return number; announce a return with the order number.", order_no)));
	lines = parse_lines(PG_GETARG_DATUM(1), &nlines);

	ca_lock_account(rc->customer_id, rc->currency, &st);
	snap = RegisterSnapshot(GetLatestSnapshot());
	ca_return_resolve(order_no, snap, rc);
	for (int i = 0; i < nlines; i++)
	{
		ca_return_gather(rc, lines[i].sku, lines[i].qty, channel, now, snap, f);
		ca_return_decide(f, d);
		if (!d->accepted)
			ereport(ERROR,
					(errcode(ERRCODE_CA_REFUSED),
					 errmsg("%d x \"%s\" of order \"%s\" cannot be returned: %s", lines[i].qty, lines[i].sku,
							order_no, d->reason_code),
					 errdetail("%s", ca_return_reason(d->reason_code, RETURN_REJECT, rc->language)),
					 errhint("customer_account.decide_return() explains each item.")));
	}

	return_no = next_return_no();
	strlcpy(rc->return_no, return_no, sizeof(rc->return_no));
	write_request(rc, NULL, "announced", channel, now);
	for (int i = 0; i < nlines; i++)
		(void) write_line(rc, lines[i].sku, lines[i].qty, "announced", NULL, channel);
	UnregisterSnapshot(snap);
	ca_finish();
	PG_RETURN_TEXT_P(cstring_to_text(return_no));
}
