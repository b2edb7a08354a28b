/*-------------------------------------------------------------------------
 *
 * loyalty.c
 *	  Loyalty inside the posting path.  Earning: every INSERT into
 *	  order_line (from place_order() or a shop's own INSERT) fires one
 *	  statement trigger that credits each new line per earn rule, a lot per
 *	  (order line, rule) with the rule and multipliers that produced it;
 *	  the unique lot key makes crediting idempotent.  The posting core
 *	  calls the hooks of loyalty.h when an order is booked (reactivation
 *	  credit), delivered (pending points get their dates), cancelled
 *	  (everything it earned is taken back) and merged.
 *
 *	  The points ledger is loyalty_entry; loyalty_lot_use records which
 *	  lots every entry created or consumed; loyalty_account caches the
 *	  totals per customer and is the lock a debit takes (after the account
 *	  state row of the currency concerned, the order every writer keeps).
 *	  Money (store credit from a redemption or the reactivation credit)
 *	  goes through the posting core's ledger and account state.
 *
 *	  The rules themselves are in loyalty_rules.c; this file gathers the
 *	  facts and writes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "currency.h"
#include "direct.h"
#include "loyalty.h"
#include "loyalty_cache.h"
#include "loyalty_rules.h"
#include "money.h"
#include "payment.h"
#include "posting.h"
#include "reason.h"
#include "spi_util.h"

static SPIPlanPtr plan_order_facts;
static SPIPlanPtr plan_credit;
static SPIPlanPtr plan_react_facts;
static SPIPlanPtr plan_react_grant;
static SPIPlanPtr plan_notify;
static SPIPlanPtr plan_deliver;
static SPIPlanPtr plan_lock_loyalty;
static SPIPlanPtr plan_order_lots;
static SPIPlanPtr plan_other_lots;
static SPIPlanPtr plan_available_lots;
static SPIPlanPtr plan_debit;
static SPIPlanPtr plan_order_credits;
static SPIPlanPtr plan_credit_back;
static SPIPlanPtr plan_past_lots;

/* ------------------------------------------------------------------------
 * small helpers
 * ------------------------------------------------------------------------
 */
static Datum
text_param(const char *s, char *null_flag)
{
	if (s == NULL)
	{
		*null_flag = 'n';
		return (Datum) 0;
	}
	*null_flag = ' ';
	return CStringGetTextDatum(s);
}

static TimestampTz
now_ts(void)
{
	return GetCurrentTransactionStartTimestamp();
}

/* s as an element of a text[] literal: quoted, with " and \ escaped */
static void
append_array_elem(StringInfo buf, const char *s)
{
	appendStringInfoChar(buf, '"');
	for (const char *c = s; *c; c++)
	{
		if (*c == '"' || *c == '\\')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *c);
	}
	appendStringInfoChar(buf, '"');
}

/* a lot row from SPI_tuptable: lot_id, remaining, earned_at, available_at, expires_at at col.. */
static void
spi_lot_state(int row, int col, LoyaltyLotState *l)
{
	bool		n;

	l->lot_id = ca_get_int64(row, col, NULL);
	l->remaining = ca_get_int64(row, col + 1, NULL);
	l->earned_at = ca_get_timestamptz(row, col + 2, NULL);
	l->available_at = ca_get_timestamptz(row, col + 3, &n);
	l->has_available = !n;
	l->expires_at = ca_get_timestamptz(row, col + 4, &n);
	if (n)
		l->has_available = false;
}

/* ------------------------------------------------------------------------
 * earning: the statement trigger on order_line
 * ------------------------------------------------------------------------
 */
typedef struct LineIn
{
	char	   *order_no;
	int32		line_no;
	text	   *sku;
	int32		qty;
	int64		value;
} LineIn;

typedef struct OrderIn
{
	char	   *order_no;
	bool		found;
	int64		customer_id;
	char	   *channel;
	bool		by_credit;		/* paid with store credit */
	TimestampTz placed_at;
	bool		delivered;
	TimestampTz delivered_at;
	bool		cancelled;
	int64		total;
} OrderIn;

typedef struct LineAtts
{
	int			order_no,
				line_no,
				sku,
				qty,
				unit_price;
} LineAtts;

/* the columns of a lot as the crediting statement takes them */
enum
{
	LOT_CUSTOMER, LOT_ORDER, LOT_LINE, LOT_RULE, LOT_CURRENCY, LOT_CHANNEL, LOT_KIND, LOT_QTY,
	LOT_VALUE, LOT_PPU, LOT_MULTS, LOT_FACTOR, LOT_TIER, LOT_POINTS, LOT_EARNED, LOT_PENDING_DAYS,
	LOT_EXPIRY_DAYS, LOT_AVAILABLE, LOT_EXPIRES, LOT_NCOLS
};
static const Oid lot_elem_types[LOT_NCOLS] = {
	INT8OID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, INT4OID,
	INT8OID, NUMERICOID, TEXTOID, NUMERICOID, TEXTOID, INT8OID, TIMESTAMPTZOID, INT4OID,
	INT4OID, TIMESTAMPTZOID, TIMESTAMPTZOID
};
static const Oid lot_array_types[LOT_NCOLS] = {
	INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT4ARRAYOID,
	INT8ARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, NUMERICARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TIMESTAMPTZARRAYOID,
	INT4ARRAYOID, INT4ARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID
};

typedef struct LotBatch
{
	ArrayBuildState *col[LOT_NCOLS];
	int			n;
} LotBatch;

static void
batch_put(LotBatch *b, int col, Datum d, bool isnull)
{
	b->col[col] = accumArrayResult(b->col[col], d, isnull, lot_elem_types[col], CurrentMemoryContext);
}

static int
line_cmp(const void *a, const void *b)
{
	const LineIn *x = a;
	const LineIn *y = b;
	int			c = strcmp(x->order_no, y->order_no);

	if (c != 0)
		return c;
	return (x->line_no > y->line_no) - (x->line_no < y->line_no);
}

static int
order_key_cmp(const void *key, const void *elem)
{
	return strcmp((const char *) key, ((const OrderIn *) elem)->order_no);
}

static void
read_line(TupleTableSlot *slot, const LineAtts *a, LineIn *l)
{
	bool		n;
	CurrencyAmount *price;

	l->order_no = TextDatumGetCString(slot_getattr(slot, a->order_no, &n));
	l->line_no = DatumGetInt32(slot_getattr(slot, a->line_no, &n));
	l->sku = DatumGetTextPCopy(slot_getattr(slot, a->sku, &n));
	l->qty = DatumGetInt32(slot_getattr(slot, a->qty, &n));
	price = DatumGetCurrencyAmountP(slot_getattr(slot, a->unit_price, &n));
	if (pg_mul_s64_overflow(price->units, (int64) l->qty, &l->value))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("line %d of order \"%s\" is out of range", l->line_no, l->order_no)));
}

/* the orders of a chunk of lines, by number (orders sorted, as the lines are) */
static void
fetch_orders(OrderIn *orders, int norders, MemoryContext cxt)
{
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];
	ArrayBuildState *a = initArrayResult(TEXTOID, cxt, false);

	for (int i = 0; i < norders; i++)
		a = accumArrayResult(a, CStringGetTextDatum(orders[i].order_no), false, TEXTOID, cxt);
	values[0] = makeArrayResult(a, cxt);
	ca_prepare(&plan_order_facts,
			   "SELECT o.order_no, o.customer_id, o.channel, o.payment_method = 'store_credit', o.placed_at,"
			   " o.delivered_at, o.cancelled_at IS NOT NULL, customer_account.minor_units(o.total)"
			   " FROM customer_account.orders o WHERE o.order_no = ANY ($1)",
			   1, types);
	ca_execute(plan_order_facts, values, NULL, true, 0);
	MemoryContextSwitchTo(cxt);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *no = ca_get_text(r, 1);
		OrderIn    *o = bsearch(no, orders, norders, sizeof(OrderIn), order_key_cmp);
		bool		n;

		if (o == NULL)
			continue;
		o->found = true;
		o->customer_id = ca_get_int64(r, 2, NULL);
		o->channel = ca_get_text(r, 3);
		o->by_credit = ca_get_bool(r, 4, NULL);
		o->placed_at = ca_get_timestamptz(r, 5, NULL);
		o->delivered_at = ca_get_timestamptz(r, 6, &n);
		o->delivered = !n;
		o->cancelled = ca_get_bool(r, 7, NULL);
		o->total = ca_get_int64(r, 8, NULL);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* the customer's tier in the currency just before this order */
static const char *
tier_before(const LoyaltyPolicy *p, const OrderIn *o, const char *currency)
{
	PeriodSums	ps;
	DateADT		month;

	if (!p->tier_multipliers)
		return NULL;
	month = month_of(o->placed_at);
	ca_read_periods(o->customer_id, currency, month_minus(month, 12), month, GetLatestSnapshot(), &ps);
	return lr_tier(p, currency, ps.revenue - o->total);
}

/* one lot into the batch */
static void
add_lot(LotBatch *b, const OrderIn *o, const LoyaltyChannel *ch, const LoyaltyTerms *t,
		const LineIn *l, const LoyaltyLineEarning *e, const char *tier)
{
	StringInfoData mults;
	int32		window = lr_window_days(t, ch->return_window_days);
	bool		dated = o->delivered || ch->kind == ca_loyalty_kind_index("store");
	TimestampTz available = 0;
	TimestampTz expires = 0;

	/* a store order is handed over at the till: delivered when placed unless told otherwise */
	if (dated)
		lr_lot_dates(o->delivered ? o->delivered_at : o->placed_at, window, t->expiry_days, &available, &expires);
	initStringInfo(&mults);
	appendStringInfoChar(&mults, '{');
	for (int i = 0; i < e->nmults; i++)
	{
		if (i > 0)
			appendStringInfoChar(&mults, ',');
		append_array_elem(&mults, e->mults[i]->code);
	}
	appendStringInfoChar(&mults, '}');

	batch_put(b, LOT_CUSTOMER, Int64GetDatum(o->customer_id), false);
	batch_put(b, LOT_ORDER, CStringGetTextDatum(o->order_no), false);
	batch_put(b, LOT_LINE, Int32GetDatum(l->line_no), false);
	batch_put(b, LOT_RULE, CStringGetTextDatum(e->rule->code), false);
	batch_put(b, LOT_CURRENCY, CStringGetTextDatum(t->currency), false);
	batch_put(b, LOT_CHANNEL, CStringGetTextDatum(ch->code), false);
	batch_put(b, LOT_KIND, CStringGetTextDatum(ca_channel_kind_names[ch->kind]), false);
	batch_put(b, LOT_QTY, Int32GetDatum(l->qty), false);
	batch_put(b, LOT_VALUE, Int64GetDatum(e->eligible), false);
	batch_put(b, LOT_PPU, NumericGetDatum(e->rule->points_per_unit), false);
	batch_put(b, LOT_MULTS, CStringGetTextDatum(mults.data), false);
	batch_put(b, LOT_FACTOR, NumericGetDatum(e->factor), false);
	batch_put(b, LOT_TIER, tier ? CStringGetTextDatum(tier) : (Datum) 0, tier == NULL);
	batch_put(b, LOT_POINTS, Int64GetDatum(e->points), false);
	batch_put(b, LOT_EARNED, TimestampTzGetDatum(o->placed_at), false);
	batch_put(b, LOT_PENDING_DAYS, Int32GetDatum(window), false);
	batch_put(b, LOT_EXPIRY_DAYS, Int32GetDatum(t->expiry_days), false);
	batch_put(b, LOT_AVAILABLE, TimestampTzGetDatum(available), !dated);
	batch_put(b, LOT_EXPIRES, TimestampTzGetDatum(expires), !dated);
	b->n++;
}

/*
 * Write a batch of lots in one statement: the lots (a lot that exists
 * already is skipped: crediting is idempotent per line and rule), one earn
 * entry per order with the lots it created, and the customers' totals.
 */
static void
write_lots(LotBatch *b, MemoryContext cxt)
{
	Datum		values[LOT_NCOLS];

	for (int c = 0; c < LOT_NCOLS; c++)
		values[c] = makeArrayResult(b->col[c], cxt);
	ca_prepare(&plan_credit,
			   "WITH src AS ("
			   "  SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
			   "  AS s(customer_id, order_no, line_no, rule_code, currency, channel, channel_kind, qty, line_value,"
			   "       ppu, multipliers, factor, tier, points, earned_at, pending_days, expiry_days, available_at, expires_at)"
			   "), lots AS ("
			   "  INSERT INTO customer_account.loyalty_lot (customer_id, order_no, line_no, rule_code, currency, channel,"
			   "    channel_kind, qty, line_value, points_per_unit, multipliers, factor, tier, points, remaining,"
			   "    earned_at, pending_days, expiry_days, available_at, expires_at)"
			   "  SELECT customer_id, order_no, line_no, rule_code, currency, channel,"
			   "    channel_kind::customer_account.channel_kind, qty, line_value, ppu, multipliers::text[], factor, tier,"
			   "    points, points, earned_at, pending_days, expiry_days, available_at, expires_at FROM src"
			   "  ON CONFLICT (order_no, line_no, rule_code) DO NOTHING"
			   "  RETURNING lot_id, customer_id, order_no, channel, points, earned_at"
			   "), ent AS ("
			   "  INSERT INTO customer_account.loyalty_entry (customer_id, kind, points, order_no, channel, at, reason_code)"
			   "  SELECT customer_id, 'earn', sum(points), order_no, channel, earned_at, 'points_earned' FROM lots"
			   "  GROUP BY customer_id, order_no, channel, earned_at HAVING sum(points) > 0"
			   "  RETURNING entry_id, customer_id, order_no, points, at"
			   "), uses AS ("
			   "  INSERT INTO customer_account.loyalty_lot_use (customer_id, entry_id, lot_id, kind, at, points)"
			   "  SELECT l.customer_id, e.entry_id, l.lot_id, 'earn', l.earned_at, l.points"
			   "  FROM lots l JOIN ent e ON e.order_no = l.order_no WHERE l.points > 0"
			   ")"
			   " INSERT INTO customer_account.loyalty_account AS a (customer_id, points, earned, last_at)"
			   " SELECT customer_id, sum(points), sum(points), max(at) FROM ent GROUP BY customer_id ORDER BY customer_id"
			   " ON CONFLICT (customer_id) DO UPDATE SET points = a.points + EXCLUDED.points,"
			   "   earned = a.earned + EXCLUDED.earned, last_at = GREATEST(a.last_at, EXCLUDED.last_at), updated_at = now()",
			   LOT_NCOLS, (Oid *) lot_array_types);
	ca_execute(plan_credit, values, NULL, false, 0);
	MemoryContextSwitchTo(cxt);
}

/* credit a chunk of new lines */
static void
credit_lines(const LoyaltyPolicy *p, LineIn *lines, int n, MemoryContext cxt)
{
	OrderIn    *orders = palloc0(sizeof(OrderIn) * n);
	int			norders = 0;
	LotBatch	batch;

	memset(&batch, 0, sizeof(batch));
	for (int c = 0; c < LOT_NCOLS; c++)
		batch.col[c] = initArrayResult(lot_elem_types[c], cxt, false);
	qsort(lines, n, sizeof(LineIn), line_cmp);
	for (int i = 0; i < n; i++)
		if (norders == 0 || strcmp(orders[norders - 1].order_no, lines[i].order_no) != 0)
			orders[norders++].order_no = lines[i].order_no;
	fetch_orders(orders, norders, cxt);

	for (int i = 0, g = 0; i < n; g++)
	{
		OrderIn    *o = &orders[g];
		const LoyaltyChannel *ch = NULL;
		const LoyaltyTerms *t = NULL;
		LoyaltyOrderFacts of;
		const char *tier = NULL;

		if (o->found && !o->cancelled)
		{
			ch = ca_loyalty_channel(o->channel);
			t = lr_terms(p, ch->currency);
		}
		if (t != NULL)
		{
			tier = tier_before(p, o, t->currency);
			of.kind = ch->kind;
			of.placed_at = o->placed_at;
			of.tier = tier;
			of.minor = t->minor;
			of.total = o->total;
			of.paid_by_credit = o->by_credit ? o->total : 0;
		}
		for (; i < n && strcmp(lines[i].order_no, o->order_no) == 0; i++)
		{
			LoyaltyLineFacts lf;
			LoyaltyLineEarning e;

			if (t == NULL)
				continue;
			lf.sku = lines[i].sku;
			lf.qty = lines[i].qty;
			lf.value = lines[i].value;
			if (lr_line_earning(p, &of, &lf, &e))
				add_lot(&batch, o, ch, t, &lines[i], &e, tier);
		}
	}
	if (batch.n > 0)
		write_lots(&batch, cxt);
}

#define CREDIT_CHUNK 1000

/*
 * loyalty_lines_post: AFTER INSERT ON order_line REFERENCING NEW TABLE
 * FOR EACH STATEMENT.  Credits every new line, a chunk at a time.
 */
PG_FUNCTION_INFO_V1(loyalty_lines_post);
Datum
loyalty_lines_post(PG_FUNCTION_ARGS)
{
	TriggerData *trig;
	const LoyaltyPolicy *p;
	Tuplestorestate *ts;
	TupleDesc	td;
	TupleTableSlot *slot;
	LineAtts	atts;
	MemoryContext cxt;
	MemoryContext caller = CurrentMemoryContext;
	LineIn	   *lines;
	int			n;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("loyalty_lines_post: not called by trigger manager")));
	trig = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_AFTER(trig->tg_event) || !TRIGGER_FIRED_FOR_STATEMENT(trig->tg_event)
		|| !TRIGGER_FIRED_BY_INSERT(trig->tg_event) || trig->tg_newtable == NULL)
		elog(ERROR, "loyalty_lines_post must be fired AFTER INSERT ... REFERENCING NEW TABLE FOR EACH STATEMENT");
	p = ca_loyalty_policy();
	if (p->nterms == 0 || p->nrules == 0)
		return PointerGetDatum(NULL);	/* nothing can earn */

	ts = trig->tg_newtable;
	td = RelationGetDescr(trig->tg_relation);
	atts.order_no = SPI_fnumber(td, "order_no");
	atts.line_no = SPI_fnumber(td, "line_no");
	atts.sku = SPI_fnumber(td, "sku");
	atts.qty = SPI_fnumber(td, "qty");
	atts.unit_price = SPI_fnumber(td, "unit_price");
	if (atts.order_no <= 0 || atts.line_no <= 0 || atts.sku <= 0 || atts.qty <= 0 || atts.unit_price <= 0)
		elog(ERROR, "order_line lacks a column loyalty crediting reads");

	slot = MakeSingleTupleTableSlot(td, &TTSOpsMinimalTuple);
	tuplestore_select_read_pointer(ts, tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND));
	tuplestore_rescan(ts);
	cxt = AllocSetContextCreate(caller, "loyalty crediting", ALLOCSET_DEFAULT_SIZES);
	lines = MemoryContextAlloc(caller, sizeof(LineIn) * CREDIT_CHUNK);
	ca_connect();
	do
	{
		MemoryContextReset(cxt);
		MemoryContextSwitchTo(cxt);
		n = 0;
		while (n < CREDIT_CHUNK && tuplestore_gettupleslot(ts, true, false, slot))
			read_line(slot, &atts, &lines[n++]);
		if (n > 0)
			credit_lines(p, lines, n, cxt);
	} while (n == CREDIT_CHUNK);
	MemoryContextSwitchTo(caller);
	ca_finish();
	MemoryContextSwitchTo(caller);
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(cxt);
	return PointerGetDatum(NULL);
}

/* ------------------------------------------------------------------------
 * the reactivation credit (end of post_order)
 * ------------------------------------------------------------------------
 */
static void
reactivation_facts(const LoyaltyReactivationRule *r, int64 customer_id, const char *order_no,
				   TimestampTz placed_at, ReactivationFacts *f)
{
	Oid			types[8] = {INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, INT4OID};
	Datum		values[8];
	bool		n;

	ca_prepare(&plan_react_facts,
			   "SELECT max(o.placed_at) FILTER (WHERE c.kind = $3::customer_account.channel_kind),"
			   "  count(*) FILTER (WHERE c.kind = $4::customer_account.channel_kind AND o.placed_at >= $5)::int,"
			   "  EXISTS (SELECT 1 FROM customer_account.loyalty_entry e"
			   "          WHERE e.customer_id = $1 AND e.kind = 'credit' AND e.rule_code = $7"
			   "            AND e.reason_code = 'reactivation_credit'"
			   "            AND e.at > $2 - $8 * interval '1 day' AND e.at < $2 + $8 * interval '1 day'"
			   "            AND NOT EXISTS (SELECT 1 FROM customer_account.loyalty_entry b"
			   "                            WHERE b.order_no = e.order_no AND b.kind = 'credit' AND b.rule_code = e.rule_code"
			   "                              AND b.reason_code = 'reactivation_credit_cancelled'))"
			   " FROM customer_account.orders o JOIN customer_account.channel c ON c.code = o.channel"
			   " WHERE o.customer_id = $1 AND o.placed_at < $2 AND o.cancelled_at IS NULL AND o.order_no <> $6",
			   8, types);
	values[0] = Int64GetDatum(customer_id);
	values[1] = TimestampTzGetDatum(placed_at);
	values[2] = CStringGetTextDatum(ca_channel_kind_names[r->target_kind]);
	values[3] = CStringGetTextDatum(ca_channel_kind_names[r->source_kind]);
	values[4] = TimestampTzGetDatum(placed_at - (TimestampTz) r->within_days * USECS_PER_DAY);
	values[5] = CStringGetTextDatum(order_no);
	values[6] = CStringGetTextDatum(r->code);
	values[7] = Int32GetDatum(r->once_per_days);
	ca_execute(plan_react_facts, values, NULL, true, 1);
	f->previous_at = ca_get_timestamptz(0, 1, &n);
	f->has_previous = !n;
	f->source_purchases = ca_get_int32(0, 2, NULL);
	f->granted_recently = ca_get_bool(0, 3, NULL);
	SPI_freetuptable(SPI_tuptable);
}

/* book the credit: store credit through the posting core, the history, the outbox */
static void
grant_reactivation(const LoyaltyReactivationRule *r, int64 customer_id, const char *order_no,
				   const LoyaltyChannel *ch, const char *currency, int64 credit, TimestampTz at)
{
	AccountState st;
	LedgerEntry e = {0};
	AccountDelta d = {0};
	Oid			types[7] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[7];

	lock_account(customer_id, currency, &st);
	e.customer_id = customer_id;
	e.currency = currency;
	e.entry_type = "credit";
	e.amount = -credit;
	e.credit_delta = credit;
	e.event_at = at;
	e.channel = ch->code;
	e.channel_kind = ca_channel_kind_names[ch->kind];
	e.order_no = order_no;
	e.note = psprintf("loyalty: reactivation credit (rule %s)", r->code);
	book_entry(&e);
	d.balance = -credit;
	d.credit = credit;
	d.event_at = at;
	apply_delta(customer_id, currency, &d);

	ca_prepare(&plan_react_grant,
			   "WITH e AS (INSERT INTO customer_account.loyalty_entry"
			   "   (customer_id, kind, points, amount, order_no, rule_code, channel, at, reason_code)"
			   "   VALUES ($1, 'credit', 0, customer_account.currency_amount_from_minor_units($2, $3), $4, $5, $6, $7,"
			   "           'reactivation_credit') RETURNING entry_id, amount)"
			   " INSERT INTO customer_account.outbox (customer_id, topic, channel, payload)"
			   " SELECT $1, 'loyalty', $6, jsonb_build_object('event', 'reactivation_credit', 'order_no', $4,"
			   "   'rule', $5, 'credit', e.amount::text, 'entry_id', e.entry_id) FROM e",
			   7, types);
	values[0] = Int64GetDatum(customer_id);
	values[1] = Int64GetDatum(credit);
	values[2] = CStringGetTextDatum(currency);
	values[3] = CStringGetTextDatum(order_no);
	values[4] = CStringGetTextDatum(r->code);
	values[5] = CStringGetTextDatum(ch->code);
	values[6] = TimestampTzGetDatum(at);
	ca_execute(plan_react_grant, values, NULL, false, 0);
	ca_prepare(&plan_notify, "SELECT pg_catalog.pg_notify('customer_account_outbox', 'loyalty')", 0, NULL);
	ca_execute(plan_notify, NULL, NULL, false, 0);
}

void
ca_loyalty_order_posted(int64 customer_id, const char *order_no, const char *channel,
						const char *currency, int64 total, TimestampTz placed_at)
{
	const LoyaltyPolicy *p = ca_loyalty_policy();
	const LoyaltyChannel *ch;

	if (p->nreact == 0)
		return;
	ch = ca_loyalty_channel(channel);
	for (int i = 0; i < p->nreact; i++)
	{
		const LoyaltyReactivationRule *r = &p->react[i];
		ReactivationFacts f;
		int64		credit;
		const char *code;

		if (r->target_kind != ch->kind)
			continue;
		memset(&f, 0, sizeof(f));
		f.currency_code = currency_pack(currency, 3);
		f.total = total;
		f.placed_at = placed_at;
		if ((r->has_credit && r->credit_code != f.currency_code) || (r->has_max && r->max_code != f.currency_code))
			continue;			/* a rule in another currency */
		reactivation_facts(r, customer_id, order_no, placed_at, &f);
		code = lr_reactivation(r, &f, &credit);
		if (strcmp(code, "reactivation_credit") == 0)
			grant_reactivation(r, customer_id, order_no, ch, currency, credit, placed_at);
		else
			elog(DEBUG1, "order \"%s\": no reactivation credit by rule %s: %s", order_no, r->code, code);
	}
}

/* ------------------------------------------------------------------------
 * delivery: pending points get their dates
 * ------------------------------------------------------------------------
 */
void
ca_loyalty_order_delivered(const char *order_no, TimestampTz delivered_at)
{
	const LoyaltyPolicy *p = ca_loyalty_policy();
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2];

	if (p->nterms == 0)
		return;
	/* 24-hour days, as the lots were dated when credited */
	ca_prepare(&plan_deliver,
			   "UPDATE customer_account.loyalty_lot SET"
			   " available_at = $2 + (pending_days::bigint * 86400) * interval '1 second',"
			   " expires_at = $2 + ((pending_days::bigint + expiry_days) * 86400) * interval '1 second'"
			   " WHERE order_no = $1 AND (available_at IS NULL OR (channel_kind = 'store' AND remaining = points))",
			   2, types);
	values[0] = CStringGetTextDatum(order_no);
	values[1] = TimestampTzGetDatum(delivered_at);
	ca_execute(plan_deliver, values, NULL, false, 0);
}

/* ------------------------------------------------------------------------
 * debits: redemption, return and cancellation reversal
 * ------------------------------------------------------------------------
 */
typedef struct Debit
{
	const char *kind;			/* redeem, reverse */
	int64		customer_id;
	int			n;				/* lots touched */
	int64	   *lot_id;
	int64	   *take;
	int32	   *add_qty;		/* returned units recorded on the lot */
	int64	   *add_reversed;	/* points the return or cancellation claims from the lot */
	int64		total;
	int64		unrecovered;
	const char *order_no;
	int32		line_no;		/* 0: none */
	bool		has_amount;
	int64		amount;
	const char *currency;
	const char *channel;
	TimestampTz at;
	const char *reason_code;
	const char *note;
} Debit;

static void
debit_init(Debit *d, const char *kind, int64 customer_id, int max)
{
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->customer_id = customer_id;
	d->lot_id = palloc0(sizeof(int64) * Max(max, 1));
	d->take = palloc0(sizeof(int64) * Max(max, 1));
	d->add_qty = palloc0(sizeof(int32) * Max(max, 1));
	d->add_reversed = palloc0(sizeof(int64) * Max(max, 1));
}

static int
debit_slot(Debit *d, int64 lot_id)
{
	for (int i = 0; i < d->n; i++)
		if (d->lot_id[i] == lot_id)
			return i;
	d->lot_id[d->n] = lot_id;
	return d->n++;
}

static Datum
int8_array(const int64 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
int4_array(const int32 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int32GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT4OID, 4, true, TYPALIGN_INT));
}

/* the lots, the entry and its uses, the totals: one statement */
static void
write_debit(const Debit *d)
{
	Oid			types[16] = {INT8OID, TEXTOID, INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT8OID,
		INT8OID, TEXTOID, INT4OID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[16];
	char		nulls[16];

	ca_prepare(&plan_debit,
			   "WITH t AS (SELECT * FROM unnest($3, $4, $5, $6) AS t(lot_id, take, add_qty, add_rev)),"
			   " upd AS (UPDATE customer_account.loyalty_lot l SET remaining = l.remaining - t.take,"
			   "   returned_qty = l.returned_qty + t.add_qty, reversed = l.reversed + t.add_rev"
			   "   FROM t WHERE l.lot_id = t.lot_id RETURNING l.lot_id),"
			   " ent AS (INSERT INTO customer_account.loyalty_entry (customer_id, kind, points, amount, order_no,"
			   "   line_no, channel, at, reason_code, unrecovered, note)"
			   "   SELECT $1, $2, -$7, CASE WHEN $11 IS NOT NULL THEN customer_account.currency_amount_from_minor_units($11, $12) END,"
			   "     $9, $10, $13, $14, $15, $8, $16 WHERE $7 > 0 OR $8 > 0 RETURNING entry_id),"
			   " uses AS (INSERT INTO customer_account.loyalty_lot_use (customer_id, entry_id, lot_id, kind, at, points)"
			   "   SELECT $1, ent.entry_id, t.lot_id, $2, $14, -t.take FROM ent, t WHERE t.take > 0)"
			   " UPDATE customer_account.loyalty_account SET points = points - $7,"
			   "   redeemed = redeemed + CASE WHEN $2 = 'redeem' THEN $7 ELSE 0 END,"
			   "   reversed = reversed + CASE WHEN $2 = 'reverse' THEN $7 ELSE 0 END,"
			   "   last_at = CASE WHEN $7 > 0 THEN GREATEST(last_at, $14) ELSE last_at END, updated_at = now()"
			   " WHERE customer_id = $1",
			   16, types);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(d->customer_id);
	values[1] = CStringGetTextDatum(d->kind);
	values[2] = int8_array(d->lot_id, d->n);
	values[3] = int8_array(d->take, d->n);
	values[4] = int4_array(d->add_qty, d->n);
	values[5] = int8_array(d->add_reversed, d->n);
	values[6] = Int64GetDatum(d->total);
	values[7] = Int64GetDatum(d->unrecovered);
	values[8] = text_param(d->order_no, &nulls[8]);
	values[9] = Int32GetDatum(d->line_no);
	nulls[9] = d->line_no > 0 ? ' ' : 'n';
	values[10] = Int64GetDatum(d->amount);
	nulls[10] = d->has_amount ? ' ' : 'n';
	values[11] = text_param(d->currency, &nulls[11]);
	values[12] = text_param(d->channel, &nulls[12]);
	values[13] = TimestampTzGetDatum(d->at);
	values[14] = CStringGetTextDatum(d->reason_code);
	values[15] = text_param(d->note, &nulls[15]);
	ca_execute(plan_debit, values, nulls, false, 0);
}

/* lock the customer's loyalty account; false when the customer never earned */
static bool
lock_loyalty(int64 customer_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(customer_id)};
	bool		found;

	ca_prepare(&plan_lock_loyalty,
			   "SELECT 1 FROM customer_account.loyalty_account WHERE customer_id = $1 FOR UPDATE",
			   1, types);
	ca_execute(plan_lock_loyalty, values, NULL, false, 1);
	found = SPI_processed > 0;
	SPI_freetuptable(SPI_tuptable);
	return found;
}

typedef struct OwnLot
{
	LoyaltyLotState st;
	int64		points;
	int32		qty;
	int32		returned_qty;
	int64		reversed;
} OwnLot;

/* the lots of an order (line_no 0: every line), locked */
static OwnLot *
order_lots(const char *order_no, int32 line_no, int *n)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(order_no), Int32GetDatum(line_no)};
	OwnLot	   *lots;

	ca_prepare(&plan_order_lots,
			   "SELECT lot_id, remaining, earned_at, available_at, expires_at, points, qty, returned_qty, reversed"
			   " FROM customer_account.loyalty_lot WHERE order_no = $1 AND ($2 = 0 OR line_no = $2)"
			   " ORDER BY lot_id FOR UPDATE",
			   2, types);
	ca_execute(plan_order_lots, values, NULL, false, 0);
	*n = (int) SPI_processed;
	lots = palloc0(sizeof(OwnLot) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		spi_lot_state(i, 1, &lots[i].st);
		lots[i].points = ca_get_int64(i, 6, NULL);
		lots[i].qty = ca_get_int32(i, 7, NULL);
		lots[i].returned_qty = ca_get_int32(i, 8, NULL);
		lots[i].reversed = ca_get_int64(i, 9, NULL);
	}
	SPI_freetuptable(SPI_tuptable);
	return lots;
}

/* the customer's other lots holding points, locked */
static LoyaltyLotState *
other_lots(int64 customer_id, const char *order_no, int *n)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {Int64GetDatum(customer_id), CStringGetTextDatum(order_no)};
	LoyaltyLotState *lots;

	ca_prepare(&plan_other_lots,
			   "SELECT lot_id, remaining, earned_at, available_at, expires_at FROM customer_account.loyalty_lot"
			   " WHERE customer_id = $1 AND remaining > 0 AND order_no <> $2 ORDER BY lot_id FOR UPDATE",
			   2, types);
	ca_execute(plan_other_lots, values, NULL, false, 0);
	*n = (int) SPI_processed;
	lots = palloc0(sizeof(LoyaltyLotState) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		spi_lot_state(i, 1, &lots[i]);
	SPI_freetuptable(SPI_tuptable);
	return lots;
}

/*
 * Take back what an order's lines earned: k returned units of one line, or
 * (k = 0) the whole order on cancellation.  Each lot gives what it still
 * holds up to its claim; what its points were already spent on is taken
 * from the customer's other lots, pending first, then the soonest to
 * expire; what even they do not hold is recorded as unrecovered.
 */
static int64
reverse_points(int64 customer_id, const char *order_no, int32 line_no, int32 k, TimestampTz at,
			   const char *reason_code)
{
	OwnLot	   *own;
	int			nown;
	int64		claim = 0;
	int64		taken = 0;
	Debit		d;

	if (!lock_loyalty(customer_id))
		return 0;				/* never earned anything */
	own = order_lots(order_no, line_no, &nown);
	if (nown == 0)
		return 0;
	debit_init(&d, "reverse", customer_id, nown);
	for (int i = 0; i < nown; i++)
	{
		OwnLot	   *l = &own[i];
		int32		units = k > 0 ? Min(k, l->qty - l->returned_qty) : 0;
		int64		want = k > 0 ? lr_return_points(l->points, l->qty, l->returned_qty, l->reversed, units)
			: Max(l->points - l->reversed, 0);
		int64		t = 0;
		int			s;

		if (l->st.remaining > 0 && !(l->st.has_available && l->st.expires_at <= at))
			t = Min(want, l->st.remaining);
		s = debit_slot(&d, l->st.lot_id);
		d.take[s] = t;
		d.add_qty[s] = units;
		d.add_reversed[s] = want;
		claim += want;
		taken += t;
	}
	if (claim > taken)
	{
		int			nother;
		LoyaltyLotState *other = other_lots(customer_id, order_no, &nother);
		int64	   *take = palloc0(sizeof(int64) * Max(nother, 1));
		int64		more = lr_plan_debit(other, nother, claim - taken, at, true, take);
		Debit		wider;

		/* room for the other lots too */
		debit_init(&wider, "reverse", customer_id, d.n + nother);
		for (int i = 0; i < d.n; i++)
		{
			int			s = debit_slot(&wider, d.lot_id[i]);

			wider.take[s] = d.take[i];
			wider.add_qty[s] = d.add_qty[i];
			wider.add_reversed[s] = d.add_reversed[i];
		}
		for (int i = 0; i < nother; i++)
			if (take[i] > 0)
				wider.take[debit_slot(&wider, other[i].lot_id)] += take[i];
		d = wider;
		taken += more;
	}
	d.total = taken;
	d.unrecovered = claim - taken;
	d.order_no = order_no;
	d.line_no = line_no;
	d.at = at;
	d.reason_code = reason_code;
	write_debit(&d);
	return taken;
}

int64
ca_loyalty_reverse_return(int64 customer_id, const char *order_no, int32 line_no, int32 qty_returned,
						  TimestampTz at)
{
	if (qty_returned <= 0 || line_no <= 0)
		return 0;
	return reverse_points(customer_id, order_no, line_no, qty_returned, at, "points_returned");
}

/* the order's reactivation credits go back, as far as the store credit still holds them */
static void
take_back_credits(int64 customer_id, const char *order_no, const char *currency, TimestampTz at)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(order_no)};
	int			n;
	char	  **rules;
	int64	   *credits;
	char	  **channels;

	ca_prepare(&plan_order_credits,
			   "SELECT rule_code, sum(customer_account.minor_units(amount))::bigint, min(channel)"
			   " FROM customer_account.loyalty_entry WHERE order_no = $1 AND kind = 'credit'"
			   " GROUP BY rule_code HAVING sum(customer_account.minor_units(amount)) > 0 ORDER BY rule_code",
			   1, types);
	ca_execute(plan_order_credits, values, NULL, false, 0);
	n = (int) SPI_processed;
	rules = palloc(sizeof(char *) * Max(n, 1));
	credits = palloc(sizeof(int64) * Max(n, 1));
	channels = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		rules[i] = ca_get_text(i, 1);
		credits[i] = ca_get_int64(i, 2, NULL);
		channels[i] = ca_get_text(i, 3);
	}
	SPI_freetuptable(SPI_tuptable);

	for (int i = 0; i < n; i++)
	{
		AccountState st;
		int64		back;
		Oid			btypes[8] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID};
		Datum		bvalues[8];
		char		bnulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		lock_account(customer_id, currency, &st);
		back = Min(credits[i], Max(st.store_credit, 0));
		if (back > 0)
		{
			LedgerEntry e = {0};
			AccountDelta d = {0};

			e.customer_id = customer_id;
			e.currency = currency;
			e.entry_type = "credit";
			e.amount = back;
			e.credit_delta = -back;
			e.event_at = at;
			e.channel = channels[i];
			e.order_no = order_no;
			e.note = psprintf("loyalty: reactivation credit (rule %s) taken back, order cancelled", rules[i]);
			book_entry(&e);
			d.balance = back;
			d.credit = -back;
			d.event_at = at;
			apply_delta(customer_id, currency, &d);
		}
		ca_prepare(&plan_credit_back,
				   "INSERT INTO customer_account.loyalty_entry (customer_id, kind, points, amount, order_no, rule_code,"
				   "  channel, at, reason_code, unrecovered)"
				   " VALUES ($1, 'credit', 0, customer_account.currency_amount_from_minor_units(-$2, $3), $4, $5, $6, $7,"
				   "  'reactivation_credit_cancelled', $8)",
				   8, btypes);
		bvalues[0] = Int64GetDatum(customer_id);
		bvalues[1] = Int64GetDatum(back);
		bvalues[2] = CStringGetTextDatum(currency);
		bvalues[3] = CStringGetTextDatum(order_no);
		bvalues[4] = CStringGetTextDatum(rules[i]);
		bvalues[5] = text_param(channels[i], &bnulls[5]);
		bvalues[6] = TimestampTzGetDatum(at);
		bvalues[7] = Int64GetDatum(credits[i] - back);
		ca_execute(plan_credit_back, bvalues, bnulls, false, 0);
	}
}

void
ca_loyalty_order_cancelled(int64 customer_id, const char *order_no, const char *currency,
						   TimestampTz cancelled_at)
{
	reverse_points(customer_id, order_no, 0, 0, cancelled_at, "points_cancelled");
	take_back_credits(customer_id, order_no, currency, cancelled_at);
}

/* ------------------------------------------------------------------------
 * merge
 * ------------------------------------------------------------------------
 */
static void
merge_sql(const char *sql, int64 survivor, int64 duplicate)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(survivor), Int64GetDatum(duplicate)};

	if (SPI_execute_with_args(sql, 2, types, values, NULL, false, 0) < 0)
		elog(ERROR, "loyalty merge statement failed: %s", sql);
}

void
ca_loyalty_merge(int64 survivor, int64 duplicate)
{
	/* both loyalty accounts, lower id first, as the account states were */
	merge_sql("SELECT 1 FROM customer_account.loyalty_account WHERE customer_id IN ($1, $2)"
			  " ORDER BY customer_id FOR UPDATE", survivor, duplicate);
	merge_sql("UPDATE customer_account.loyalty_lot_use SET customer_id = $1 WHERE lot_id IN"
			  " (SELECT lot_id FROM customer_account.loyalty_lot WHERE customer_id = $2)", survivor, duplicate);
	merge_sql("UPDATE customer_account.loyalty_lot SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
	merge_sql("UPDATE customer_account.loyalty_entry SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
	merge_sql("INSERT INTO customer_account.loyalty_account AS a (customer_id, points, earned, redeemed, expired,"
			  "  reversed, last_at)"
			  " SELECT $1, points, earned, redeemed, expired, reversed, last_at"
			  " FROM customer_account.loyalty_account WHERE customer_id = $2"
			  " ON CONFLICT (customer_id) DO UPDATE SET points = a.points + EXCLUDED.points,"
			  "  earned = a.earned + EXCLUDED.earned, redeemed = a.redeemed + EXCLUDED.redeemed,"
			  "  expired = a.expired + EXCLUDED.expired, reversed = a.reversed + EXCLUDED.reversed,"
			  "  last_at = GREATEST(a.last_at, EXCLUDED.last_at), updated_at = now()", survivor, duplicate);
	merge_sql("UPDATE customer_account.loyalty_account SET points = 0, earned = 0, redeemed = 0, expired = 0,"
			  " reversed = 0, last_at = NULL, updated_at = now() WHERE customer_id = $2 AND $1 IS NOT NULL",
			  survivor, duplicate);
}

/* ------------------------------------------------------------------------
 * tiers, for balance()
 * ------------------------------------------------------------------------
 */
const char *
ca_loyalty_tier(const char *currency, int64 revenue_12m)
{
	return lr_tier(ca_loyalty_policy(), currency, revenue_12m);
}

/* ------------------------------------------------------------------------
 * loyalty_points(customer_id, as_of): direct reads, the past from the uses
 * ------------------------------------------------------------------------
 */
typedef struct LoyaltyRels
{
	bool		valid;
	Oid			lot,
				lot_customer,
				account,
				account_pkey;
	AttrNumber	lot_id,
				remaining,
				earned_at,
				available_at,
				expires_at,
				last_at;
} LoyaltyRels;

static LoyaltyRels lrels;
static bool lrels_callback = false;

static void
lrels_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == lrels.lot || relid == lrels.lot_customer || relid == lrels.account
		|| relid == lrels.account_pkey)
		lrels.valid = false;
}

static Oid
loyalty_rel(Oid nsp, const char *name)
{
	Oid			oid = get_relname_relid(name, nsp);

	if (!OidIsValid(oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation customer_account.%s does not exist", name),
				 errhint("Update the extension: ALTER EXTENSION customer_account UPDATE.")));
	return oid;
}

static AttrNumber
loyalty_att(Oid rel, const char *name)
{
	AttrNumber	a = get_attnum(rel, name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column %s of relation %u not found", name, rel);
	return a;
}

static void
ensure_lrels(void)
{
	Oid			nsp;

	if (!lrels_callback)
	{
		CacheRegisterRelcacheCallback(lrels_invalidate, (Datum) 0);
		lrels_callback = true;
	}
	if (lrels.valid)
		return;
	nsp = get_namespace_oid("customer_account", false);
	lrels.lot = loyalty_rel(nsp, "loyalty_lot");
	lrels.lot_customer = loyalty_rel(nsp, "loyalty_lot_customer");
	lrels.account = loyalty_rel(nsp, "loyalty_account");
	lrels.account_pkey = loyalty_rel(nsp, "loyalty_account_pkey");
	lrels.lot_id = loyalty_att(lrels.lot, "lot_id");
	lrels.remaining = loyalty_att(lrels.lot, "remaining");
	lrels.earned_at = loyalty_att(lrels.lot, "earned_at");
	lrels.available_at = loyalty_att(lrels.lot, "available_at");
	lrels.expires_at = loyalty_att(lrels.lot, "expires_at");
	lrels.last_at = loyalty_att(lrels.account, "last_at");
	lrels.valid = true;
}

/* scan heap through index on its first column = customer_id; calls fn per row */
typedef void (*RowFn) (TupleTableSlot *slot, void *arg);

static void
scan_customer(Oid heap_oid, Oid index_oid, int64 customer_id, Snapshot snap, RowFn fn, void *arg)
{
	Relation	heap = table_open(heap_oid, AccessShareLock);
	Relation	index = index_open(index_oid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	ScanKeyData key;
	IndexScanDesc scan;

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0],
						   F_INT8EQ, Int64GetDatum(customer_id));
	scan = index_beginscan(heap, index, snap, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
		fn(slot, arg);
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
}

typedef struct LotList
{
	LoyaltyLotState *lots;
	int			n;
	int			max;
} LotList;

static void
collect_lot(TupleTableSlot *slot, void *arg)
{
	LotList    *ll = arg;
	LoyaltyLotState *l;
	bool		n;
	Datum		d;

	if (ll->n == ll->max)
	{
		ll->max *= 2;
		ll->lots = repalloc(ll->lots, sizeof(LoyaltyLotState) * ll->max);
	}
	l = &ll->lots[ll->n];
	l->remaining = DatumGetInt64(slot_getattr(slot, lrels.remaining, &n));
	if (l->remaining <= 0)
		return;
	l->lot_id = DatumGetInt64(slot_getattr(slot, lrels.lot_id, &n));
	l->earned_at = DatumGetTimestampTz(slot_getattr(slot, lrels.earned_at, &n));
	d = slot_getattr(slot, lrels.available_at, &n);
	l->has_available = !n;
	l->available_at = n ? 0 : DatumGetTimestampTz(d);
	d = slot_getattr(slot, lrels.expires_at, &n);
	l->expires_at = n ? 0 : DatumGetTimestampTz(d);
	if (n)
		l->has_available = false;
	ll->n++;
}

typedef struct LastAt
{
	bool		found;
	bool		has;
	TimestampTz at;
} LastAt;

static void
read_last_at(TupleTableSlot *slot, void *arg)
{
	LastAt	   *la = arg;
	bool		n;
	Datum		d = slot_getattr(slot, lrels.last_at, &n);

	la->found = true;
	la->has = !n;
	la->at = n ? 0 : DatumGetTimestampTz(d);
}

/* the lots as they stood at as_of: what every entry up to then left in them */
static void
past_lots(int64 customer_id, TimestampTz as_of, LotList *ll)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2] = {Int64GetDatum(customer_id), TimestampTzGetDatum(as_of)};
	OwnerContext oc;

	ca_become_owner(&oc);
	ca_connect();
	ca_prepare(&plan_past_lots,
			   "SELECT l.lot_id, coalesce(sum(u.points), 0)::bigint, l.earned_at, l.available_at, l.expires_at"
			   " FROM customer_account.loyalty_lot l JOIN customer_account.loyalty_lot_use u ON u.lot_id = l.lot_id"
			   " WHERE l.customer_id = $1 AND l.earned_at <= $2 AND u.at <= $2 AND u.kind <> 'expire'"
			   " GROUP BY l.lot_id",
			   2, types);
	ca_execute(plan_past_lots, values, NULL, true, 0);
	ll->n = 0;
	if ((int) SPI_processed > ll->max)
	{
		ll->max = (int) SPI_processed;
		ll->lots = repalloc(ll->lots, sizeof(LoyaltyLotState) * ll->max);
	}
	for (uint64 i = 0; i < SPI_processed; i++)
		spi_lot_state(i, 1, &ll->lots[ll->n++]);
	ca_finish();
	ca_restore_user(&oc);
}

/* the customer's lots at as_of: today's lots when nothing was booked after as_of */
static void
lots_at(int64 customer_id, TimestampTz as_of, Snapshot snap, LotList *ll)
{
	LastAt		la = {0};

	ensure_lrels();
	ll->max = 16;
	ll->n = 0;
	ll->lots = palloc(sizeof(LoyaltyLotState) * ll->max);
	scan_customer(lrels.account, lrels.account_pkey, customer_id, snap, read_last_at, &la);
	if (!la.found || !la.has)
		return;					/* never earned */
	if (as_of >= la.at)
		scan_customer(lrels.lot, lrels.lot_customer, customer_id, snap, collect_lot, ll);
	else
		past_lots(customer_id, as_of, ll);
}

/* RA002 for an unknown or merged customer; returns the language */
static char *
known_customer(int64 customer_id, Snapshot snap)
{
	CustomerRow c;

	ca_read_customer(customer_id, snap, &c);
	if (c.merged)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT, customer_id, c.merged_into),
				 errhint("Use the surviving customer " INT64_FORMAT ".", c.merged_into)));
	return pstrdup(c.language);
}

/*
 * loyalty_points(customer_id bigint, as_of timestamptz)
 *   -> TABLE(available bigint, pending bigint, expiring_next bigint, expiring_at timestamptz)
 */
PG_FUNCTION_INFO_V1(loyalty_points);
Datum
loyalty_points(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		customer_id = PG_GETARG_INT64(0);
	TimestampTz as_of = PG_GETARG_TIMESTAMPTZ(1);
	Snapshot	snap = GetActiveSnapshot();
	LotList		ll;
	LoyaltyReading r;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	(void) known_customer(customer_id, snap);
	lots_at(customer_id, as_of, snap, &ll);
	lr_reading(ll.lots, ll.n, as_of, &r);
	values[0] = Int64GetDatum(r.available);
	values[1] = Int64GetDatum(r.pending);
	values[2] = Int64GetDatum(r.has_expiring ? r.expiring_next : 0);
	values[3] = TimestampTzGetDatum(r.expiring_at);
	nulls[3] = !r.has_expiring;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * redeem_points(customer_id, points, channel) -> currency_amount
 * ------------------------------------------------------------------------
 */
static LoyaltyLotState *
available_lots(int64 customer_id, TimestampTz at, int *n)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2] = {Int64GetDatum(customer_id), TimestampTzGetDatum(at)};
	LoyaltyLotState *lots;

	ca_prepare(&plan_available_lots,
			   "SELECT lot_id, remaining, earned_at, available_at, expires_at FROM customer_account.loyalty_lot"
			   " WHERE customer_id = $1 AND remaining > 0 AND available_at <= $2 AND expires_at > $2"
			   "   AND earned_at <= $2 ORDER BY expires_at, lot_id FOR UPDATE",
			   2, types);
	ca_execute(plan_available_lots, values, NULL, false, 0);
	*n = (int) SPI_processed;
	lots = palloc0(sizeof(LoyaltyLotState) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		spi_lot_state(i, 1, &lots[i]);
	SPI_freetuptable(SPI_tuptable);
	return lots;
}

/* store credit through the posting core */
static void
book_store_credit(int64 customer_id, const char *currency, const LoyaltyChannel *ch, int64 credit,
				  TimestampTz at, const char *note)
{
	LedgerEntry e = {0};
	AccountDelta d = {0};

	e.customer_id = customer_id;
	e.currency = currency;
	e.entry_type = "credit";
	e.amount = -credit;
	e.credit_delta = credit;
	e.event_at = at;
	e.channel = ch->code;
	e.channel_kind = ca_channel_kind_names[ch->kind];
	e.note = note;
	book_entry(&e);
	d.balance = -credit;
	d.credit = credit;
	d.event_at = at;
	apply_delta(customer_id, currency, &d);
}

PG_FUNCTION_INFO_V1(redeem_points);
Datum
redeem_points(PG_FUNCTION_ARGS)
{
	int64		customer_id = PG_GETARG_INT64(0);
	int64		points = PG_GETARG_INT64(1);
	char	   *channel = text_to_cstring(PG_GETARG_TEXT_PP(2));
	TimestampTz at = now_ts();
	const LoyaltyPolicy *p;
	const LoyaltyChannel *ch;
	const LoyaltyTerms *t;
	char	   *language;
	AccountState st;
	LoyaltyLotState *lots;
	int			n;
	int64	   *take;
	int64		have;
	int64		credit;
	Debit		d;
	CurrencyAmount *result;

	if (points <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot redeem " INT64_FORMAT " points; redeem a positive number of points", points)));
	p = ca_loyalty_policy();
	ca_connect();
	language = known_customer(customer_id, GetLatestSnapshot());
	ch = ca_loyalty_channel(channel);
	t = lr_terms(p, ch->currency);
	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CA_REFUSED),
				 errmsg("points cannot be redeemed on channel \"%s\": %s has no loyalty terms: no_loyalty_terms",
						channel, ch->currency),
				 errdetail("%s", reason_text("no_loyalty_terms", language)),
				 errhint("Set them with customer_account.set_loyalty_terms().")));

	/* the account state of the currency first, then the loyalty account: no overspending */
	lock_account(customer_id, ch->currency, &st);
	(void) lock_loyalty(customer_id);
	lots = available_lots(customer_id, at, &n);
	take = palloc0(sizeof(int64) * Max(n, 1));
	have = lr_plan_debit(lots, n, PG_INT64_MAX, at, false, take);
	if (have < points)
		ereport(ERROR,
				(errcode(ERRCODE_CA_REFUSED),
				 errmsg("customer " INT64_FORMAT " has " INT64_FORMAT " points available, cannot redeem " INT64_FORMAT
						": insufficient_points", customer_id, have, points),
				 errdetail("%s", reason_text("insufficient_points", language))));
	credit = lr_points_value(points, t->point_value, t->minor);
	if (credit <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(INT64_FORMAT " points are worth less than the smallest amount in %s", points, ch->currency),
				 errhint("Redeem more points at once.")));

	(void) lr_plan_debit(lots, n, points, at, false, take);
	debit_init(&d, "redeem", customer_id, n);
	for (int i = 0; i < n; i++)
		if (take[i] > 0)
			d.take[debit_slot(&d, lots[i].lot_id)] = take[i];
	d.total = points;
	d.has_amount = true;
	d.amount = credit;
	d.currency = ch->currency;
	d.channel = ch->code;
	d.at = at;
	d.reason_code = "points_redeemed";
	write_debit(&d);
	book_store_credit(customer_id, ch->currency, ch, credit, at,
					  psprintf("loyalty: " INT64_FORMAT " points redeemed", points));
	ca_finish();

	result = make_currency_amount(credit, currency_pack(ch->currency, 3));
	PG_RETURN_CURRENCY_AMOUNT_P(result);
}

/*
 * loyalty_reverse_return(customer_id, order_no, line_no, qty, at): the
 * returns booking's hook as SQL, for tests; not granted to anyone.
 */
PG_FUNCTION_INFO_V1(loyalty_reverse_return_sql);
Datum
loyalty_reverse_return_sql(PG_FUNCTION_ARGS)
{
	int64		customer_id = PG_GETARG_INT64(0);
	char	   *order_no = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		line_no = PG_GETARG_INT32(2);
	int32		qty = PG_GETARG_INT32(3);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(4);
	int64		taken;
	int64		order_customer;
	CurrencyAmount total;
	TransactionId xmin;
	AccountState st;
	char		currency[4];

	ca_connect();
	if (!ca_read_order(order_no, GetLatestSnapshot(), &order_customer, &total, &xmin))
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown order \"%s\"", order_no)));
	if (order_customer != customer_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order \"%s\" belongs to customer " INT64_FORMAT, order_no, order_customer)));
	if (qty <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("returned quantity %d must be positive", qty)));
	currency_unpack(total.code, currency);
	lock_account(customer_id, currency, &st);
	taken = ca_loyalty_reverse_return(customer_id, order_no, line_no, qty, at);
	ca_finish();
	PG_RETURN_INT64(taken);
}
