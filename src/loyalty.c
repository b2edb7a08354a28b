/*-------------------------------------------------------------------------
 *
 * loyalty.c
 *	  Loyalty inside the posting path: earning and the hooks.  Every INSERT
 *	  into order_line (from place_order() or a shop's own INSERT) fires one
 *	  statement trigger that credits each new line per earn rule, a lot per
 *	  (order line, rule) with the rule and multipliers that produced it;
 *	  the unique lot key makes crediting idempotent.  The posting core
 *	  calls the hooks of loyalty.h when an order is booked (reactivation
 *	  credit), delivered (pending points get their dates) and merged;
 *	  cancellations and returns are debits (loyalty_debit.c).
 *
 *	  The points ledger is loyalty_entry; loyalty_lot_use records which
 *	  lots every entry created or consumed; loyalty_account caches the
 *	  totals per customer and is the lock a debit takes (after the account
 *	  state row of the currency concerned, the order every writer keeps).
 *	  Money (the reactivation credit, store credit from a redemption) goes
 *	  through the posting core's ledger and account state.
 *
 *	  The rules themselves are in loyalty_rules.c; this file gathers the
 *	  facts and writes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "loyalty.h"
#include "loyalty_cache.h"
#include "loyalty_int.h"
#include "money.h"
#include "payment.h"
#include "posting.h"
#include "restore.h"
#include "spi_util.h"

static SPIPlanPtr plan_order_facts;
static SPIPlanPtr plan_credit;
static SPIPlanPtr plan_react_facts;
static SPIPlanPtr plan_react_grant;
static SPIPlanPtr plan_notify;
static SPIPlanPtr plan_deliver;

/* ------------------------------------------------------------------------
 * small helpers
 * ------------------------------------------------------------------------
 */

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
	bool		restored;		/* booked by an earlier transaction: pg_restore loading lines */
	int64		total;
} OrderIn;

/*
 * The orders post_order booked in this transaction while loyalty was on,
 * with their facts, so that their lines (inserted right after) are
 * credited without reading the order again, and so that lines of any other
 * order earn nothing: lines pg_restore loads for restored orders (their
 * lots are restored too), lines of orders booked before the programme had
 * terms.  A hit is trusted only while the booking (sub)transaction is
 * alive.  The table lives in the transaction's memory; past RECENT_MAX
 * orders (or with an order number too long for its key) a transaction
 * reads the orders of each chunk of lines instead, and leaves out those
 * booked by an earlier transaction (restored).
 */
#define RECENT_KEY 64
#define RECENT_MAX 100000
typedef struct RecentOrder
{
	char		order_no[RECENT_KEY];	/* the hash key */
	TransactionId xid;
	char		channel[64];
	OrderIn		facts;			/* order_no and channel point into this entry */
} RecentOrder;
static HTAB *recent = NULL;
static LocalTransactionId recent_lxid = InvalidLocalTransactionId;
static bool recent_incomplete = false;

/* this transaction's table of booked orders; NULL when none yet and !create */
static HTAB *
recent_table(bool create)
{
	HASHCTL		ctl;

	if (recent != NULL && recent_lxid == MyProc->lxid)
		return recent;
	recent = NULL;
	recent_incomplete = false;
	if (!create)
		return NULL;
	ctl.keysize = RECENT_KEY;
	ctl.entrysize = sizeof(RecentOrder);
	ctl.hcxt = TopTransactionContext;
	recent = hash_create("customer_account loyalty orders", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	recent_lxid = MyProc->lxid;
	return recent;
}

/* the order booked in this transaction under that number, or NULL */
static RecentOrder *
recent_order(const char *order_no)
{
	HTAB	   *t = recent_table(false);
	RecentOrder *r;

	if (t == NULL || strlen(order_no) >= RECENT_KEY)
		return NULL;
	r = hash_search(t, order_no, HASH_FIND, NULL);
	if (r != NULL && TransactionIdIsCurrentTransactionId(r->xid))
		return r;
	return NULL;
}

/* keep an order's facts for its lines */
static void
remember_order(const OrderIn *o)
{
	HTAB	   *t = recent_table(true);
	RecentOrder *r;

	if (strlen(o->order_no) >= RECENT_KEY || strlen(o->channel) >= sizeof(r->channel)
		|| hash_get_num_entries(t) >= RECENT_MAX)
	{
		recent_incomplete = true;
		return;
	}
	r = hash_search(t, o->order_no, HASH_ENTER, NULL);
	r->xid = GetCurrentTransactionId();
	strlcpy(r->channel, o->channel, sizeof(r->channel));
	r->facts = *o;
	r->facts.order_no = r->order_no;
	r->facts.channel = r->channel;
}

/* true when every order booked in this transaction is in the table */
static bool
recent_complete(void)
{
	(void) recent_table(false);
	return !recent_incomplete;
}

/* a cancellation before the lines arrived: they earn nothing */
void
ca_loyalty_note_cancelled(const char *order_no)
{
	RecentOrder *r = recent_order(order_no);

	if (r != NULL)
		r->facts.cancelled = true;
}

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

/* one value of one lot column */
static void
batch_put(LotBatch *b, int col, Datum d, bool isnull)
{
	b->col[col] = accumArrayResult(b->col[col], d, isnull, lot_elem_types[col], CurrentMemoryContext);
}

/* lines by order number, then line number */
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

/* an order number against an OrderIn, for bsearch */
static int
order_key_cmp(const void *key, const void *elem)
{
	return strcmp((const char *) key, ((const OrderIn *) elem)->order_no);
}

/* one new order line from the transition table, copied out of the slot */
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

/*
 * The orders of a chunk of lines (sorted by number, as the lines are):
 * those booked in this transaction from memory; when the memory holds them
 * all, the others earn nothing; else they are read in one query that sees
 * every order written so far in this transaction, this statement included.
 */
static void
fetch_orders(OrderIn *orders, int norders, MemoryContext cxt)
{
	Oid			types[1] = {TEXTARRAYOID};
	Datum		values[1];
	ArrayBuildState *a = initArrayResult(TEXTOID, cxt, false);
	int			missing = 0;

	for (int i = 0; i < norders; i++)
	{
		RecentOrder *r = recent_order(orders[i].order_no);

		if (r != NULL)
		{
			char	   *no = orders[i].order_no;

			orders[i] = r->facts;
			orders[i].order_no = no;
			orders[i].channel = pstrdup(r->channel);
			continue;
		}
		a = accumArrayResult(a, CStringGetTextDatum(orders[i].order_no), false, TEXTOID, cxt);
		missing++;
	}
	if (missing == 0 || recent_complete())
		return;
	values[0] = makeArrayResult(a, cxt);
	ca_prepare(&plan_order_facts,
			   "SELECT o.order_no, o.customer_id, o.channel, o.payment_method = 'store_credit', o.placed_at,"
			   " o.delivered_at, o.cancelled_at IS NOT NULL, customer_account.minor_units(o.total)"
			   " FROM customer_account.orders o WHERE o.order_no = ANY ($1)",
			   1, types);
	ca_execute(plan_order_facts, values, NULL, false, 0);
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

		/*
		 * Lines of an order booked by an earlier transaction are restored
		 * ones (see restore.c): their lots are restored too, and crediting
		 * them anew under today's rules could earn twice.
		 */
		o->restored = ca_order_posted_earlier(o->order_no);
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
	month = ca_month_of(o->placed_at);
	ca_read_periods(o->customer_id, currency, ca_month_minus(month, 12), month, GetLatestSnapshot(), &ps);
	return ca_lr_tier(p, currency, ps.revenue - o->total);
}

/* one lot into the batch */
static void
add_lot(LotBatch *b, const OrderIn *o, const LoyaltyChannel *ch, const LoyaltyTerms *t,
		const LineIn *l, const LoyaltyLineEarning *e, const char *tier)
{
	StringInfoData mults;
	int32		window = ca_lr_window_days(t, ch->return_window_days);
	bool		dated = o->delivered || ch->kind == ca_loyalty_kind_index("store");
	TimestampTz available = 0;
	TimestampTz expires = 0;

	/* a store order is handed over at the till: delivered when placed unless told otherwise */
	if (dated)
		ca_lr_lot_dates(o->delivered ? o->delivered_at : o->placed_at, window, t->expiry_days, &available, &expires);
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
 * entry per order for the lots it created, and the customers' totals.  An
 * earning needs no lot uses: a lot's points are its own record of it.
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
			   "  RETURNING customer_id, order_no, channel, points, earned_at"
			   "), ent AS ("
			   "  INSERT INTO customer_account.loyalty_entry (customer_id, kind, points, order_no, channel, at, reason_code)"
			   "  SELECT customer_id, 'earn', sum(points), order_no, channel, earned_at, 'points_earned' FROM lots"
			   "  GROUP BY customer_id, order_no, channel, earned_at HAVING sum(points) > 0"
			   "  RETURNING customer_id, points, at"
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

		if (o->found && !o->cancelled && !o->restored)
		{
			ch = ca_loyalty_channel(o->channel);
			t = ca_lr_terms(p, ch->currency);
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
			if (ca_lr_line_earning(p, &of, &lf, &e))
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
	bool		switched;
	OwnerContext oc;

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
	/* inside place_order() we run as the owner already; a shop's own INSERT switches */
	switched = GetUserId() != ca_loyalty_owner();
	if (switched)
		ca_become_owner(&oc);
	ca_connect();
	do
	{
		/*
		 * The slot may own a tuple the tuplestore read from disk into cxt
		 * (a statement larger than work_mem): let it go before the reset.
		 */
		ExecClearTuple(slot);
		MemoryContextReset(cxt);
		MemoryContextSwitchTo(cxt);
		n = 0;
		while (n < CREDIT_CHUNK && tuplestore_gettupleslot(ts, true, false, slot))
			read_line(slot, &atts, &lines[n++]);
		if (n > 0)
			credit_lines(p, lines, n, cxt);
	} while (n == CREDIT_CHUNK);
	ExecClearTuple(slot);
	MemoryContextSwitchTo(caller);
	ca_finish();
	MemoryContextSwitchTo(caller);
	if (switched)
		ca_restore_user(&oc);
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
			   "                              AND b.reason_code = 'reactivation_credit_cancelled'"
			   /* a credit counts unless its take-back recovered all of it */
			   "                              AND b.unrecovered = 0))"
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
	ca_execute(plan_react_facts, values, NULL, false, 1);
	f->previous_at = ca_get_timestamptz(0, 1, &n);
	f->has_previous = !n;
	f->source_purchases = ca_get_int32(0, 2, NULL);
	f->granted_recently = ca_get_bool(0, 3, NULL);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * A cheap first look: a customer whose account shows no purchase on the
 * source kind within the period (in any currency) cannot qualify, whatever
 * the orders say.  Saves the query for most orders.
 */
static bool
source_purchase_since(int64 customer_id, const LoyaltyReactivationRule *r, TimestampTz placed_at)
{
	StateRow   *rows;
	int			n;
	TimestampTz since = placed_at - (TimestampTz) r->within_days * USECS_PER_DAY;

	if (r->min_purchases <= 0)
		return true;
	rows = ca_read_all_states(customer_id, GetLatestSnapshot(), &n);
	for (int i = 0; i < n; i++)
		if (rows[i].has_last[r->source_kind] && rows[i].last[r->source_kind] >= since)
			return true;
	return false;
}

/* book the credit: store credit through the posting core, the history, the outbox */
static void
grant_reactivation(const LoyaltyReactivationRule *r, int64 customer_id, const char *order_no,
				   const LoyaltyChannel *ch, const char *currency, int64 credit, TimestampTz at)
{
	StateRow	st;
	LedgerEntry e = {0};
	Oid			types[7] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[7];

	ca_lock_account(customer_id, currency, &st);
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
	ca_post_entries(&e, 1, NULL);

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

/* end of post_order: keep the facts for the lines; grant the reactivation credit when earned */
void
ca_loyalty_order_posted(int64 customer_id, const char *order_no, const char *channel,
						const char *method, const char *currency, int64 total,
						TimestampTz placed_at, bool delivered, TimestampTz delivered_at)
{
	const LoyaltyPolicy *p = ca_loyalty_policy();
	const LoyaltyChannel *ch;

	if (p->nterms > 0)
	{
		OrderIn		o;

		memset(&o, 0, sizeof(o));
		o.order_no = (char *) order_no;
		o.found = true;
		o.customer_id = customer_id;
		o.channel = (char *) channel;
		o.by_credit = strcmp(method, "store_credit") == 0;
		o.placed_at = placed_at;
		o.delivered = delivered;
		o.delivered_at = delivered_at;
		o.total = total;
		remember_order(&o);
	}
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
		f.currency_code = ca_currency_pack(currency, 3);
		f.total = total;
		f.placed_at = placed_at;
		/* a rule whose credit is in another currency needs no facts */
		if ((r->has_credit && r->credit_code != f.currency_code) || (r->has_max && r->max_code != f.currency_code))
			code = "other_currency";
		else if (!source_purchase_since(customer_id, r, placed_at))
			code = "too_few_source_purchases";
		else
		{
			reactivation_facts(r, customer_id, order_no, placed_at, &f);
			code = ca_lr_reactivation(r, &f, &credit);
		}
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

	RecentOrder *r = recent_order(order_no);

	if (r != NULL)
	{
		/* delivered before its lines arrived: they are dated when credited */
		r->facts.delivered = true;
		r->facts.delivered_at = delivered_at;
	}
	if (p->nterms == 0)
		return;					/* no terms (or no loyalty tables): nothing was credited */
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

/* merge_customers: lots, history and totals move to the survivor with their dates */
void
ca_loyalty_merge(int64 survivor, int64 duplicate)
{
	if (!ca_loyalty_policy()->installed)
		return;
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
	return ca_lr_tier(ca_loyalty_policy(), currency, revenue_12m);
}
