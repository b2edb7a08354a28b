/*-------------------------------------------------------------------------
 *
 * capture_book.c
 *	  Booking what the shop's rows say.  Booking reconciles rather than
 *	  replays events: it compares the shop's order, payment or return row
 *	  with what the account holds and books the difference (a new order
 *	  with all its lines, its delivery, its cancellation, a payment, a
 *	  return), so a shop that updates a row five times or replays it books
 *	  nothing twice.  It writes through the same tables as every channel:
 *	  INSERT into orders, order_line and payment (whose posting triggers
 *	  book), UPDATE of delivered_at / cancelled_at, accept_return().
 *
 *	  A booked order does not change: other content in the shop's row is an
 *	  error that says what the account holds and what the shop says now.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "capture.h"
#include "currency.h"
#include "config.h"
#include "direct.h"
#include "money.h"
#include "spi_util.h"

typedef enum OrderEvent
{
	EV_PLACE,
	EV_HOLD,
	EV_DELIVER,
	EV_CANCEL
} OrderEvent;

const char *const ca_capture_outcome_names[OUT_COUNT] =
{"booked", "changed", "unchanged", "not booked", "waiting for its order", "quarantined"};
const char *const ca_capture_order_events[] = {"place", "hold", "deliver", "cancel", NULL};
const char *const ca_capture_book_events[] = {"book", "hold", NULL};

/* ------------------------------------------------------------------------
 * SPI plans for statements built from the shop's table and column names,
 * prepared once per backend and text (refint.c keeps its plans the same way)
 * ------------------------------------------------------------------------
 */
typedef struct DynPlan
{
	char	   *key;
	SPIPlanPtr	plan;
} DynPlan;

static List *dyn_plans = NIL;

/* a kept SPI plan for a statement over the shop's tables, by its text and parameter types */
SPIPlanPtr
ca_capture_plan(const char *sql, int nargs, Oid *types)
{
	StringInfoData key;
	ListCell   *lc;
	SPIPlanPtr	plan;
	MemoryContext old;
	DynPlan    *dp;

	initStringInfo(&key);
	appendStringInfoString(&key, sql);
	for (int i = 0; i < nargs; i++)
		appendStringInfo(&key, "|%u", types[i]);
	foreach(lc, dyn_plans)
	{
		dp = (DynPlan *) lfirst(lc);
		if (strcmp(dp->key, key.data) == 0)
			return dp->plan;
	}
	plan = SPI_prepare(sql, nargs, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	old = MemoryContextSwitchTo(CacheMemoryContext);
	dp = palloc(sizeof(DynPlan));
	dp->key = pstrdup(key.data);
	dp->plan = plan;
	dyn_plans = lappend(dyn_plans, dp);
	MemoryContextSwitchTo(old);
	return plan;
}

/* the column type's Datum for a key given as text */
Datum
ca_capture_key_datum(Relation rel, AttrNumber attno, const char *key, Oid *type)
{
	Oid			typid = TupleDescAttr(RelationGetDescr(rel), attno - 1)->atttypid;
	Oid			in;
	Oid			ioparam;

	getTypeInputInfo(typid, &in, &ioparam);
	*type = typid;
	return OidInputFunctionCall(in, (char *) key, ioparam, -1);
}

/* a whole-row value of rel as a tuple in rel's own layout */
HeapTuple
ca_capture_row_tuple(Datum d, Oid relid)
{
	HeapTupleHeader th = DatumGetHeapTupleHeader(d);
	HeapTuple	tup = palloc(sizeof(HeapTupleData));

	tup->t_len = HeapTupleHeaderGetDatumLength(th);
	ItemPointerSetInvalid(&tup->t_self);
	tup->t_tableOid = relid;
	tup->t_data = th;
	return tup;
}

/* the shop's row whose key column equals key, or NULL */
static HeapTuple
fetch_row(const CaptureMap *m, Relation rel, CaptureSetting keyset, const char *key)
{
	const CaptureSource *src = &m->src[keyset];
	Oid			type;
	Datum		value = ca_capture_key_datum(rel, src->attno, key, &type);
	char	   *sql = psprintf("SELECT _ca_row FROM %s _ca_row WHERE _ca_row.%s OPERATOR(pg_catalog.=) $1 LIMIT 2",
							   m->relname, quote_identifier(src->colname));
	bool		isnull;
	Datum		d;

	ca_execute(ca_capture_plan(sql, 1, &type), &value, NULL, false, 0);
	if (SPI_processed == 0)
		return NULL;
	if (SPI_processed > 1)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("capture trigger \"%s\" on %s: more than one row has %s \"%s\"",
						m->tgname, m->relname, src->colname, key),
				 errhint("The column of argument \"%s\" must identify one row.", src->arg)));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return ca_capture_row_tuple(d, m->relid);
}

/* the shop's row as jsonb, for the quarantine */
Datum
ca_capture_row_image(const CaptureMap *m, Relation rel, HeapTuple tup, const char *key, bool *isnull)
{
	*isnull = true;
	if (tup != NULL)
	{
		Oid			type = m->reltype;
		Datum		value = heap_copy_tuple_as_datum(tup, RelationGetDescr(rel));

		ca_execute(ca_capture_plan("SELECT pg_catalog.to_jsonb($1)", 1, &type), &value, NULL, true, 1);
	}
	else
	{
		CaptureSetting keyset = m->kind == CAPTURE_PAYMENT ? CS_PAYMENT_REF :
		m->kind == CAPTURE_RETURN ? CS_RETURN_NO : CS_ORDER_NO;
		Oid			type;
		Datum		value;

		if (key == NULL || m->src[keyset].kind != SRC_COLUMN)
			return (Datum) 0;
		value = ca_capture_key_datum(rel, m->src[keyset].attno, key, &type);
		ca_execute(ca_capture_plan(psprintf("SELECT pg_catalog.to_jsonb(_ca_row) FROM %s _ca_row WHERE _ca_row.%s OPERATOR(pg_catalog.=) $1 LIMIT 1",
									 m->relname, quote_identifier(m->src[keyset].colname)), 1, &type),
				   &value, NULL, true, 1);
	}
	if (SPI_processed == 0)
		return (Datum) 0;
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

/* ------------------------------------------------------------------------
 * small helpers
 * ------------------------------------------------------------------------
 */
CaptureSetting
ca_capture_key_setting(CaptureKind kind)
{
	return kind == CAPTURE_PAYMENT ? CS_PAYMENT_REF : kind == CAPTURE_RETURN ? CS_RETURN_NO : CS_ORDER_NO;
}

/* the ISO letters of a packed currency code */
static char *
iso_of(int32 code)
{
	char	   *iso = palloc(4);

	ca_currency_unpack(code, iso);
	return iso;
}

/* a code from a shop column: trimmed, upper case */
char *
ca_capture_upper_trim(const char *s)
{
	char	   *r = pstrdup(s);
	char	   *p = r;
	int			len;

	while (*p == ' ')
		p++;
	len = strlen(p);
	while (len > 0 && p[len - 1] == ' ')
		p[--len] = '\0';
	for (char *c = p; *c; c++)
		*c = pg_toupper((unsigned char) *c);
	return p;
}

/* minor units of a currency as text, e.g. 19.99 EUR */
static char *
format_units(int64 units, int32 code)
{
	return ca_currency_amount_to_cstring(ca_make_currency_amount(units, code));
}

/* the method the shop's value stands for; an unknown one names the argument */
static char *
resolve_method(const CaptureMap *m, HeapTuple tup, TupleDesc td)
{
	char	   *value = ca_capture_text_required(m, CS_METHOD, tup, td);
	const char *mapped = ca_capture_lookup(&m->method_map, value);
	const MethodConf *methods;
	int			n;

	methods = ca_methods(&n);
	if (mapped == NULL)
		mapped = value;
	for (int i = 0; i < n; i++)
		if (strcmp(methods[i].code, mapped) == 0)
			return pstrdup(mapped);
	if (m->method_map.n > 0 || m->method_map.other)
	{
		if (ca_capture_lookup(&m->method_map, value) == NULL)
			ca_capture_unmapped(m, CS_METHOD_MAP, CS_METHOD, value);
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\" maps \"%s\" to \"%s\", which is not a payment method",
						m->tgname, m->relname, m->src[CS_METHOD_MAP].argno, m->src[CS_METHOD_MAP].arg, value, mapped),
				 errhint("Payment methods are listed in customer_account.payment_method.")));
	}
	ca_capture_unmapped(m, CS_METHOD_MAP, CS_METHOD, value);
	return NULL;				/* not reached */
}

/* the event a status value stands for */
static int
resolve_event(const CaptureMap *m, HeapTuple tup, TupleDesc td, const char *const *events, int dflt)
{
	char	   *value;
	const char *mapped;

	if (m->src[CS_STATUS].kind == SRC_NONE)
		return dflt;
	value = ca_capture_text(m, CS_STATUS, tup, td);
	if (value == NULL)
		value = "";
	mapped = ca_capture_lookup(&m->status_map, value);
	if (mapped == NULL)
		mapped = value;
	for (int i = 0; events[i]; i++)
		if (strcmp(events[i], mapped) == 0)
			return i;
	ca_capture_unmapped(m, CS_STATUS_MAP, CS_STATUS, value);
	return dflt;				/* not reached */
}

/* the channel named by the row (RA002 with the argument in the context) */
static const ChannelConf *
resolve_channel(const CaptureMap *m, HeapTuple tup, TupleDesc td, char **code)
{
	int			prev;
	const ChannelConf *ch;

	*code = ca_capture_text_required(m, CS_CHANNEL, tup, td);
	prev = ca_capture_enter_setting(m, CS_CHANNEL);
	ch = ca_channel(*code);
	ca_capture_leave_setting(m, prev);
	return ch;
}

/* the currency of the row: the mapped column or constant, else the channel's */
static char *
resolve_currency(const CaptureMap *m, HeapTuple tup, TupleDesc td, const char *dflt)
{
	char	   *c = ca_capture_text(m, CS_CURRENCY, tup, td);
	int			prev;

	if (c == NULL)
		return dflt ? pstrdup(dflt) : NULL;
	c = ca_capture_upper_trim(c);
	prev = ca_capture_enter_setting(m, CS_CURRENCY);
	(void) ca_currency_lookup_or_error(c, strlen(c));
	ca_capture_leave_setting(m, prev);
	return c;
}

/* ------------------------------------------------------------------------
 * orders
 * ------------------------------------------------------------------------
 */
typedef struct OrderHeader
{
	char	   *key;
	char	   *order_no;
	char	   *channel;
	const ChannelConf *ch;
	char	   *currency;
	char	   *method;
	bool		has_total;
	CurrencyAmount total;
	TimestampTz placed_at;
	int			event;
	TimestampTz event_at;
} OrderHeader;

/* what the shop's order row says: number, channel, currency, method, total, times, event */
static void
resolve_order_header(const CaptureMap *m, HeapTuple tup, TupleDesc td, OrderHeader *h)
{
	TimestampTz t;

	memset(h, 0, sizeof(*h));
	h->key = ca_capture_text_required(m, CS_ORDER_NO, tup, td);
	h->order_no = psprintf("%s%s", m->prefix, h->key);
	h->ch = resolve_channel(m, tup, td, &h->channel);
	h->currency = resolve_currency(m, tup, td, h->ch->currency);
	h->method = resolve_method(m, tup, td);
	h->has_total = ca_capture_amount(m, CS_TOTAL, tup, td, h->currency, &h->total);
	if (h->has_total)
		h->currency = iso_of(h->total.code);	/* a total that carries its currency says which */
	if (!ca_capture_time(m, CS_PLACED_AT, tup, td, &h->placed_at))
		h->placed_at = GetCurrentTransactionStartTimestamp();
	h->event = resolve_event(m, tup, td, ca_capture_order_events, EV_PLACE);
	h->event_at = GetCurrentTransactionStartTimestamp();
	if (ca_capture_time(m, CS_CANCELLED_AT, tup, td, &t))
	{
		h->event = EV_CANCEL;
		h->event_at = t;
	}
	else if (ca_capture_time(m, CS_DELIVERED_AT, tup, td, &t) && (h->event == EV_PLACE || h->event == EV_DELIVER))
	{
		h->event = EV_DELIVER;
		h->event_at = t;
	}
	if (!OidIsValid(m->lines_relid) && !h->has_total && h->event != EV_HOLD && h->event != EV_CANCEL)
		(void) ca_capture_text_required(m, CS_TOTAL, tup, td);
}

typedef struct LineValues
{
	char	   *key;
	char	   *sku;
	int32		qty;
	CurrencyAmount price;
	bool		returnable;
	char	   *category;
} LineValues;

/* one line of the shop's table; false to skip it (quantity 0) */
static bool
resolve_line(const CaptureMap *lm, HeapTuple tup, TupleDesc td, const char *order_currency, LineValues *lv)
{
	int64		qty;
	char	   *currency;

	memset(lv, 0, sizeof(*lv));
	lv->sku = ca_capture_text_required(lm, CS_SKU, tup, td);
	if (!ca_capture_int64(lm, CS_QTY, tup, td, &qty))
		(void) ca_capture_text_required(lm, CS_QTY, tup, td);
	if (qty == 0)
		return false;
	if (qty < 0 || qty > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": quantity " INT64_FORMAT " of sku \"%s\" is out of range",
						lm->tgname, lm->relname, lm->src[CS_QTY].argno, lm->src[CS_QTY].arg, qty, lv->sku),
				 errhint("A returned item is booked as a return, not as a negative quantity.")));
	lv->qty = (int32) qty;
	currency = resolve_currency(lm, tup, td, order_currency);
	if (lm->src[CS_UNIT_PRICE].kind != SRC_NONE)
	{
		if (!ca_capture_amount(lm, CS_UNIT_PRICE, tup, td, currency, &lv->price))
			(void) ca_capture_text_required(lm, CS_UNIT_PRICE, tup, td);
	}
	else
	{
		CurrencyAmount total;

		if (!ca_capture_amount(lm, CS_LINE_TOTAL, tup, td, currency, &total))
			(void) ca_capture_text_required(lm, CS_LINE_TOTAL, tup, td);
		if (total.units % qty != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": line total %s of sku \"%s\" does not divide into %d equal unit prices",
							lm->tgname, lm->relname, lm->src[CS_LINE_TOTAL].argno, lm->src[CS_LINE_TOTAL].arg,
							ca_currency_amount_to_cstring(&total), lv->sku, lv->qty),
					 errhint("Map unit_price= instead.")));
		lv->price = total;
		lv->price.units = total.units / qty;
	}
	if (!ca_capture_bool(lm, CS_RETURNABLE, tup, td, &lv->returnable))
		lv->returnable = true;
	lv->category = ca_capture_text(lm, CS_CATEGORY, tup, td);
	lv->key = ca_capture_text(lm, CS_LINE_KEY, tup, td);
	if (lv->key == NULL)
		lv->key = lv->sku;
	return true;
}

/* check a line row without knowing its order's currency (row time) */
void
ca_capture_validate_line(const CaptureMap *lm, HeapTuple tup, TupleDesc td)
{
	int64		qty;
	char	   *price;
	int			prev;

	(void) ca_capture_text_required(lm, CS_SKU, tup, td);
	if (!ca_capture_int64(lm, CS_QTY, tup, td, &qty))
		(void) ca_capture_text_required(lm, CS_QTY, tup, td);
	(void) resolve_currency(lm, tup, td, NULL);
	if (lm->src[CS_UNIT_PRICE].kind != SRC_NONE)
	{
		price = ca_capture_text_required(lm, CS_UNIT_PRICE, tup, td);
		prev = ca_capture_enter_setting(lm, CS_UNIT_PRICE);
	}
	else
	{
		price = ca_capture_text_required(lm, CS_LINE_TOTAL, tup, td);
		prev = ca_capture_enter_setting(lm, CS_LINE_TOTAL);
	}
	/* a number, or an amount with its currency */
	if (strspn(price, "0123456789.-+ ") == strlen(price))
		(void) DirectFunctionCall3(numeric_in, CStringGetDatum(price), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	ca_capture_leave_setting(lm, prev);
}

/* the order of lines for comparing: sku, quantity, price */
static int
line_cmp(const void *a, const void *b)
{
	const LineValues *x = (const LineValues *) a;
	const LineValues *y = (const LineValues *) b;
	int			c = strcmp(x->sku, y->sku);

	if (c != 0)
		return c;
	if (x->qty != y->qty)
		return x->qty < y->qty ? -1 : 1;
	if (x->price.code != y->price.code)
		return x->price.code < y->price.code ? -1 : 1;
	if (x->price.units != y->price.units)
		return x->price.units < y->price.units ? -1 : 1;
	return 0;
}

/* the capture_order_line trigger of the lines table */
static CaptureMap *
line_map_of(const CaptureMap *om, Relation *lrel)
{
	const Trigger *found = NULL;

	*lrel = table_open(om->lines_relid, AccessShareLock);
	if ((*lrel)->trigdesc)
		for (int i = 0; i < (*lrel)->trigdesc->numtriggers; i++)
		{
			const Trigger *t = &(*lrel)->trigdesc->triggers[i];

			if (ca_capture_kind_of_function(t->tgfoid) != CAPTURE_LINE)
				continue;
			if (found)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("capture trigger \"%s\" on %s: table %s has two capture_order_line triggers",
								om->tgname, om->relname, RelationGetRelationName(*lrel))));
			found = t;
		}
	if (found == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\" names table %s, which has no capture_order_line trigger",
						om->tgname, om->relname, om->src[CS_LINES].argno, om->src[CS_LINES].arg,
						RelationGetRelationName(*lrel)),
				 errhint("Attach customer_account.capture_order_line(...) to the lines table.")));
	return ca_capture_map_get(*lrel, found, CAPTURE_LINE);
}

/* the order's lines as the shop's lines table has them now */
static LineValues *
load_lines(const CaptureMap *om, const OrderHeader *h, int *n)
{
	Relation	lrel;
	CaptureMap *lm = line_map_of(om, &lrel);
	TupleDesc	ltd = RelationGetDescr(lrel);
	const CaptureSource *oc = &lm->src[CS_ORDER_NO];
	const CaptureSource *sortcol = lm->src[CS_LINE_KEY].kind == SRC_COLUMN ? &lm->src[CS_LINE_KEY] :
	lm->src[CS_SKU].kind == SRC_COLUMN ? &lm->src[CS_SKU] : NULL;
	Oid			type;
	Datum		value;
	char	   *sql;
	SPITupleTable *tt;
	uint64		rows;
	LineValues *lines;
	ErrorContextCallback cb;
	CaptureErrorContext ec;

	value = ca_capture_key_datum(lrel, oc->attno, h->key, &type);
	sql = psprintf("SELECT _ca_row FROM %s _ca_row WHERE _ca_row.%s OPERATOR(pg_catalog.=) $1%s%s",
				   lm->relname, quote_identifier(oc->colname),
				   sortcol ? " ORDER BY _ca_row." : "", sortcol ? quote_identifier(sortcol->colname) : "");
	ca_execute(ca_capture_plan(sql, 1, &type), &value, NULL, false, 0);
	tt = SPI_tuptable;
	rows = SPI_processed;
	lines = palloc(sizeof(LineValues) * (rows + 1));
	*n = 0;
	ca_capture_push_context(&ec, &cb, lm);
	ec.key = h->key;
	for (uint64 i = 0; i < rows; i++)
	{
		bool		isnull;
		HeapTuple	lt = ca_capture_row_tuple(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull), lm->relid);
		LineValues *lv = &lines[*n];

		if (!resolve_line(lm, lt, ltd, h->currency, lv))
			continue;
		if (lm->src[CS_LINE_KEY].kind != SRC_NONE)
			for (int j = 0; j < *n; j++)
				if (strcmp(lines[j].key, lv->key) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_UNIQUE_VIOLATION),
							 errmsg("capture trigger \"%s\" on %s: two lines of order \"%s\" have line key \"%s\"",
									lm->tgname, lm->relname, h->key, lv->key)));
		(*n)++;
	}
	ca_capture_pop_context(&cb);
	table_close(lrel, AccessShareLock);
	return lines;
}

typedef struct BookedOrder
{
	int64		customer_id;
	char	   *channel;
	char	   *method;
	CurrencyAmount total;
	TimestampTz placed_at;
	bool		delivered;
	bool		cancelled;
} BookedOrder;

static SPIPlanPtr plan_read_order;
static SPIPlanPtr plan_insert_order;
static SPIPlanPtr plan_insert_line;
static SPIPlanPtr plan_deliver;
static SPIPlanPtr plan_cancel;
static SPIPlanPtr plan_booked_lines;
static SPIPlanPtr plan_waiting_take;
static SPIPlanPtr plan_resolve_quarantine;

/* the order as the account holds it; false when not booked */
static bool
read_booked_order(const char *order_no, BookedOrder *b)
{
	Oid			types[1] = {TEXTOID};
	Datum		v = CStringGetTextDatum(order_no);
	bool		isnull;

	ca_prepare(&plan_read_order,
			   "SELECT customer_id, channel, payment_method, customer_account.minor_units(total),"
			   " customer_account.currency_of(total), placed_at, delivered_at IS NOT NULL, cancelled_at IS NOT NULL"
			   " FROM customer_account.orders WHERE order_no = $1", 1, types);
	ca_execute(plan_read_order, &v, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	b->customer_id = ca_get_int64(0, 1, NULL);
	b->channel = ca_get_text(0, 2);
	b->method = ca_get_text(0, 3);
	b->total.units = ca_get_int64(0, 4, NULL);
	{
		char	   *c = ca_get_text(0, 5);

		b->total.code = ca_currency_pack(c, 3);
		b->total.pad = 0;
	}
	b->placed_at = ca_get_timestamptz(0, 6, &isnull);
	b->delivered = ca_get_bool(0, 7, NULL);
	b->cancelled = ca_get_bool(0, 8, NULL);
	return true;
}

/* book the order through the orders table (its posting trigger books) */
static void
insert_order(const OrderHeader *h, int64 customer_id, int64 total_units, int32 code)
{
	Oid			types[7] = {TEXTOID, INT8OID, TEXTOID, TEXTOID, INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[7];

	ca_prepare(&plan_insert_order,
			   "INSERT INTO customer_account.orders (order_no, customer_id, channel, payment_method, total, placed_at)"
			   " VALUES ($1, $2, $3, $4, customer_account.currency_amount_from_minor_units($5, $6), $7)", 7, types);
	values[0] = CStringGetTextDatum(h->order_no);
	values[1] = Int64GetDatum(customer_id);
	values[2] = CStringGetTextDatum(h->channel);
	values[3] = CStringGetTextDatum(h->method);
	values[4] = Int64GetDatum(total_units);
	values[5] = CStringGetTextDatum(iso_of(code));
	values[6] = TimestampTzGetDatum(h->placed_at);
	ca_execute(plan_insert_order, values, NULL, false, 0);
}

/* one line of an order booked in this transaction */
static void
insert_line(const char *order_no, int line_no, int64 customer_id, const LineValues *lv)
{
	Oid			types[9] = {TEXTOID, INT4OID, INT8OID, TEXTOID, INT4OID, INT8OID, TEXTOID, BOOLOID, TEXTOID};
	Datum		values[9];
	char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	ca_prepare(&plan_insert_line,
			   "INSERT INTO customer_account.order_line (order_no, line_no, customer_id, sku, qty, unit_price, returnable, category)"
			   " VALUES ($1, $2, $3, $4, $5, customer_account.currency_amount_from_minor_units($6, $7), $8, $9)", 9, types);
	values[0] = CStringGetTextDatum(order_no);
	values[1] = Int32GetDatum(line_no);
	values[2] = Int64GetDatum(customer_id);
	values[3] = CStringGetTextDatum(lv->sku);
	values[4] = Int32GetDatum(lv->qty);
	values[5] = Int64GetDatum(lv->price.units);
	values[6] = CStringGetTextDatum(iso_of(lv->price.code));
	values[7] = BoolGetDatum(lv->returnable);
	values[8] = ca_capture_text_or_null(lv->category, &nulls[8]);
	ca_execute(plan_insert_line, values, nulls, false, 0);
}

/* delivered_at or cancelled_at, not before the order was placed */
static void
set_order_time(bool deliver, const char *order_no, TimestampTz at)
{
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2];

	if (deliver)
		ca_prepare(&plan_deliver,
				   "UPDATE customer_account.orders SET delivered_at = GREATEST($2, placed_at)"
				   " WHERE order_no = $1 AND delivered_at IS NULL", 2, types);
	else
		ca_prepare(&plan_cancel,
				   "UPDATE customer_account.orders SET cancelled_at = GREATEST($2, placed_at)"
				   " WHERE order_no = $1 AND cancelled_at IS NULL", 2, types);
	values[0] = CStringGetTextDatum(order_no);
	values[1] = TimestampTzGetDatum(at);
	ca_execute(deliver ? plan_deliver : plan_cancel, values, NULL, false, 0);
}

/* the lines as booked, sorted like line_cmp */
static LineValues *
booked_lines(const char *order_no, int *n)
{
	Oid			types[1] = {TEXTOID};
	Datum		v = CStringGetTextDatum(order_no);
	LineValues *lines;

	ca_prepare(&plan_booked_lines,
			   "SELECT sku, qty, customer_account.minor_units(unit_price), customer_account.currency_of(unit_price)"
			   " FROM customer_account.order_line WHERE order_no = $1", 1, types);
	ca_execute(plan_booked_lines, &v, NULL, false, 0);
	*n = (int) SPI_processed;
	lines = palloc0(sizeof(LineValues) * (*n + 1));
	for (int i = 0; i < *n; i++)
	{
		lines[i].sku = ca_get_text(i, 1);
		lines[i].qty = ca_get_int32(i, 2, NULL);
		lines[i].price.units = ca_get_int64(i, 3, NULL);
		lines[i].price.code = ca_currency_pack(ca_get_text(i, 4), 3);
	}
	qsort(lines, *n, sizeof(LineValues), line_cmp);
	return lines;
}

/* lines as text for a message: 2 x SKU at 9.99 EUR, ... */
static char *
describe_lines(const LineValues *lines, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%d x %s at %s", i ? ", " : "", lines[i].qty, lines[i].sku,
						 ca_currency_amount_to_cstring(&lines[i].price));
	return n ? buf.data : "no lines";
}

/* what the captured lines add up to; the adjustment line when the total says more */
static int64
settle_total(const CaptureMap *om, const OrderHeader *h, LineValues *lines, int *n)
{
	int64		sum = 0;
	int32		code = ca_currency_pack(h->currency, 3);

	if (*n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capture trigger \"%s\" on %s: order \"%s\" has no lines in %s",
						om->tgname, om->relname, h->order_no,
						quote_qualified_identifier(get_namespace_name(get_rel_namespace(om->lines_relid)),
												   get_rel_name(om->lines_relid))),
				 errhint("Insert the order and its lines in one transaction, or give the order a status the status_map holds (hold) until its lines exist.")));
	for (int i = 0; i < *n; i++)
	{
		int64		line;

		if (pg_mul_s64_overflow(lines[i].price.units, lines[i].qty, &line) || pg_add_s64_overflow(sum, line, &sum))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("lines of order \"%s\" sum out of range", h->order_no)));
	}
	if (h->has_total && h->total.units != sum)
	{
		int64		diff = h->total.units - sum;

		if (diff > 0 && om->adjust_sku != NULL && h->total.code == code)
		{
			LineValues *adj = &lines[*n];

			memset(adj, 0, sizeof(*adj));
			adj->sku = (char *) om->adjust_sku;
			adj->key = adj->sku;
			adj->qty = 1;
			adj->price = h->total;
			adj->price.units = diff;
			adj->returnable = false;
			(*n)++;
			return h->total.units;
		}
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capture trigger \"%s\" on %s: order \"%s\" has total %s (argument %d \"%s\") but its lines sum to %s",
						om->tgname, om->relname, h->order_no, ca_currency_amount_to_cstring(&h->total),
						om->src[CS_TOTAL].argno, om->src[CS_TOTAL].arg, format_units(sum, code)),
				 errdetail("Lines: %s.", describe_lines(lines, *n)),
				 errhint("Leave total= out to book the sum of the lines, or name adjust_sku= to book a positive difference (shipping, fees) as one more line.")));
	}
	return sum;
}

/* mark open quarantine entries of a key as resolved */
static void
resolve_quarantined(Oid relid, const char *kind, const char *key, const char *how)
{
	Oid			types[4] = {OIDOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];

	ca_prepare(&plan_resolve_quarantine,
			   "UPDATE customer_account.capture_quarantine SET resolved_at = now(), resolution = $4"
			   " WHERE source = $1::pg_catalog.regclass AND kind = $2 AND source_key = $3 AND resolved_at IS NULL",
			   4, types);
	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(kind);
	values[2] = CStringGetTextDatum(key);
	values[3] = CStringGetTextDatum(how);
	ca_execute(plan_resolve_quarantine, values, NULL, false, 0);
}


/* book the payments that waited for this order */
static void
book_waiting_payments(const char *order_no)
{
	Oid			types[1] = {TEXTOID};
	Datum		v = CStringGetTextDatum(order_no);
	SPITupleTable *tt;
	uint64		n;

	ca_prepare(&plan_waiting_take,
			   "DELETE FROM customer_account.capture_waiting WHERE order_no = $1"
			   " RETURNING source::pg_catalog.oid, trigger_name::text, source_key", 1, types);
	ca_execute(plan_waiting_take, &v, NULL, false, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		char	   *tgname = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
		char	   *key = SPI_getvalue(tt->vals[i], tt->tupdesc, 3);
		Relation	rel = try_table_open(relid, AccessShareLock);
		const Trigger *t;

		if (rel == NULL)
			continue;
		t = ca_capture_find_trigger(rel, InvalidOid, tgname);
		if (t != NULL && ca_capture_kind_of_function(t->tgfoid) == CAPTURE_PAYMENT)
		{
			CaptureMap *pm = ca_capture_map_get(rel, t, CAPTURE_PAYMENT);
			ErrorContextCallback cb;
			CaptureErrorContext ec;

			ca_capture_push_context(&ec, &cb, pm);
			ec.key = key;
			(void) ca_capture_reconcile_payment(pm, rel, key, NULL, false);
			ca_capture_pop_context(&cb);
		}
		table_close(rel, AccessShareLock);
	}
}

/* a new order: the customer, its lines, the order, its delivery, waiting payments */
static CaptureOutcome
book_new_order(const CaptureMap *om, HeapTuple tup, TupleDesc td, const OrderHeader *h)
{
	CaptureErrorContext *ec = ca_capture_current_context();
	int64		customer_id;
	bool		found;
	LineValues *lines;
	int			n;
	int64		total;

	if (h->event == EV_HOLD || h->event == EV_CANCEL)
		return OUT_NOT_BOOKED;
	customer_id = ca_capture_resolve_customer(om, tup, td, true, h->placed_at, &found);
	if (!found)
		ca_capture_unknown_customer(om, tup, td);
	if (OidIsValid(om->lines_relid))
		lines = load_lines(om, h, &n);
	else
	{
		/* no lines table: the total is one line */
		lines = palloc0(sizeof(LineValues) * 2);
		n = 1;
		lines[0].sku = ca_capture_text_required(om, CS_SKU, tup, td);
		lines[0].key = lines[0].sku;
		lines[0].qty = 1;
		lines[0].price = h->total;
		if (!ca_capture_bool(om, CS_RETURNABLE, tup, td, &lines[0].returnable))
			lines[0].returnable = true;
	}
	total = settle_total(om, h, lines, &n);
	if (ec)
		ec->doing = "booking order";
	insert_order(h, customer_id, total, ca_currency_pack(h->currency, 3));
	for (int i = 0; i < n; i++)
		insert_line(h->order_no, i + 1, customer_id, &lines[i]);
	if (h->event == EV_DELIVER)
		set_order_time(true, h->order_no, h->event_at);
	book_waiting_payments(h->order_no);
	return OUT_BOOKED;
}

/* the lines of a booked order must be the shop's lines (with the adjustment line) */
static void
compare_booked_lines(const CaptureMap *om, const OrderHeader *h)
{
	int			n,
				nb;
	LineValues *lines = load_lines(om, h, &n);
	LineValues *had = booked_lines(h->order_no, &nb);
	int64		sum = 0;
	bool		same;

	for (int i = 0; i < n; i++)
		sum += lines[i].price.units * lines[i].qty;
	if (h->has_total && om->adjust_sku && n > 0 && h->total.units > sum)
	{
		memset(&lines[n], 0, sizeof(LineValues));
		lines[n].sku = (char *) om->adjust_sku;
		lines[n].qty = 1;
		lines[n].price = h->total;
		lines[n].price.units = h->total.units - sum;
		n++;
	}
	qsort(lines, n, sizeof(LineValues), line_cmp);
	same = (n == nb);
	for (int i = 0; same && i < n; i++)
		same = (line_cmp(&lines[i], &had[i]) == 0);
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("capture trigger \"%s\" on %s: the lines of order \"%s\" changed after it was booked",
						om->tgname, om->relname, h->order_no),
				 errdetail("The account holds %s; the shop's lines now say %s.", describe_lines(had, nb),
						   describe_lines(lines, n)),
				 errhint("Booked lines do not change; book a return for items taken back, or cancel and place a new order.")));
}

/*
 * A booked order: its content must agree with the shop's row; a delivery or
 * cancellation the account does not have yet is booked, once.
 */
static CaptureOutcome
reconcile_booked_order(const CaptureMap *om, const OrderHeader *h, const BookedOrder *b, bool check_lines)
{
	CaptureErrorContext *ec = ca_capture_current_context();

	if (strcmp(b->channel, h->channel) != 0 || strcmp(b->method, h->method) != 0
		|| (h->has_total && (b->total.units != h->total.units || b->total.code != h->total.code)))
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("capture trigger \"%s\" on %s: order \"%s\" was booked with other content",
						om->tgname, om->relname, h->order_no),
				 errdetail("The account holds channel %s, method %s, total %s; the shop's row now says channel %s, method %s%s%s.",
						   b->channel, b->method, ca_currency_amount_to_cstring(&b->total), h->channel, h->method,
						   h->has_total ? ", total " : "", h->has_total ? ca_currency_amount_to_cstring(&h->total) : ""),
				 errhint("A booked order does not change; cancel it in the shop and place a new one.")));
	if (check_lines && OidIsValid(om->lines_relid))
		compare_booked_lines(om, h);
	if (h->event == EV_CANCEL && !b->cancelled)
	{
		if (b->delivered)
			ereport(ERROR,
					(errcode(ERRCODE_CA_REFUSED),
					 errmsg("capture trigger \"%s\" on %s: order \"%s\" was delivered and cannot be cancelled",
							om->tgname, om->relname, h->order_no),
					 errdetail("reason_code: already_delivered"),
					 errhint("Take the goods back as a return (capture_return or accept_return).")));
		if (ec)
			ec->doing = "cancelling order";
		set_order_time(false, h->order_no, h->event_at);
		return OUT_CHANGED;
	}
	if (h->event == EV_DELIVER && !b->delivered)
	{
		if (b->cancelled)
			ereport(ERROR,
					(errcode(ERRCODE_CA_REFUSED),
					 errmsg("capture trigger \"%s\" on %s: order \"%s\" is cancelled in the account; the shop now says delivered",
							om->tgname, om->relname, h->order_no),
					 errhint("A cancellation is final; place a new order for goods that were shipped after all.")));
		if (ec)
			ec->doing = "delivering order";
		set_order_time(true, h->order_no, h->event_at);
		return OUT_CHANGED;
	}
	return OUT_UNCHANGED;
}

/*
 * Bring the account in line with the shop's order row: book it with its
 * lines, book a delivery or a cancellation the account does not have yet,
 * or find that the account already agrees.  Content that differs from
 * what was booked is an error (never a silent divergence).  validate_only:
 * the checks of the shop's statement, nothing booked.
 */
CaptureOutcome
ca_capture_reconcile_order(CaptureMap *om, Relation rel, const char *key, HeapTuple tup, bool check_lines,
						   bool validate_only)
{
	TupleDesc	td = RelationGetDescr(rel);
	OrderHeader h;
	BookedOrder b;
	CaptureOutcome outcome;
	CaptureErrorContext *ec = ca_capture_current_context();

	if (tup == NULL && (tup = fetch_row(om, rel, CS_ORDER_NO, key)) == NULL)
		return OUT_NOT_BOOKED;	/* deleted in the shop before it was booked */
	resolve_order_header(om, tup, td, &h);
	if (ec)
	{
		ec->key = h.key;
		ec->doing = "order";
	}
	if (validate_only)
	{
		bool		found;

		if (h.event != EV_HOLD && h.event != EV_CANCEL)
		{
			(void) ca_capture_resolve_customer(om, tup, td, false, h.placed_at, &found);
			if (!found && !om->create.allowed)
				ca_capture_unknown_customer(om, tup, td);
		}
		return OUT_UNCHANGED;
	}
	if (read_booked_order(h.order_no, &b))
		outcome = reconcile_booked_order(om, &h, &b, check_lines);
	else
		outcome = book_new_order(om, tup, td, &h);
	if (om->quarantine)
		resolve_quarantined(om->relid, "order", h.key, "booked by a later change of the row");
	return outcome;
}

/* ------------------------------------------------------------------------
 * payments
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_read_payment;
static SPIPlanPtr plan_insert_payment;
static SPIPlanPtr plan_order_customer;
static SPIPlanPtr plan_wait;

typedef struct PaymentRow
{
	char	   *key;
	char	   *ref;
	char	   *channel;
	CurrencyAmount amount;
	char	   *method;
	char	   *order_no;		/* NULL: applied to the oldest open items */
	TimestampTz received_at;
	int			event;			/* 0 book, 1 hold */
	bool		have_customer;	/* mapped: customer_id; else the order's */
	int64		customer_id;
} PaymentRow;

/* what the shop's payment row says */
static void
resolve_payment(const CaptureMap *pm, HeapTuple tup, TupleDesc td, PaymentRow *p)
{
	const ChannelConf *ch;
	char	   *currency;
	char	   *order_raw;

	memset(p, 0, sizeof(*p));
	p->key = ca_capture_text_required(pm, CS_PAYMENT_REF, tup, td);
	p->ref = psprintf("%s%s", pm->prefix, p->key);
	ch = resolve_channel(pm, tup, td, &p->channel);
	currency = resolve_currency(pm, tup, td, ch->currency);
	p->event = resolve_event(pm, tup, td, ca_capture_book_events, 0);
	if (!ca_capture_amount(pm, CS_AMOUNT, tup, td, currency, &p->amount))
		(void) ca_capture_text_required(pm, CS_AMOUNT, tup, td);
	p->method = resolve_method(pm, tup, td);
	order_raw = ca_capture_text(pm, CS_ORDER_NO, tup, td);
	if (order_raw != NULL && order_raw[0] != '\0')
		p->order_no = psprintf("%s%s", pm->order_prefix, order_raw);
	if (!ca_capture_time(pm, CS_RECEIVED_AT, tup, td, &p->received_at))
		p->received_at = GetCurrentTransactionStartTimestamp();
	if (pm->src[CS_CUSTOMER].kind != SRC_NONE)
	{
		p->customer_id = ca_capture_resolve_customer(pm, tup, td, false, p->received_at, &p->have_customer);
		if (!p->have_customer)
			ca_capture_unknown_customer(pm, tup, td);
	}
}

/* booked before: true when the account holds the same payment; other content is an error */
static bool
payment_booked(const CaptureMap *pm, const PaymentRow *p)
{
	Oid			types[1] = {TEXTOID};
	Datum		v = CStringGetTextDatum(p->ref);
	int64		units;
	char	   *cur;
	char	   *bm;
	char	   *bc;
	char	   *bo;

	ca_prepare(&plan_read_payment,
			   "SELECT customer_id, customer_account.minor_units(amount), customer_account.currency_of(amount),"
			   " method, channel, order_no FROM customer_account.payment WHERE payment_ref = $1", 1, types);
	ca_execute(plan_read_payment, &v, NULL, false, 1);
	if (SPI_processed == 0)
		return false;
	units = ca_get_int64(0, 2, NULL);
	cur = ca_get_text(0, 3);
	bm = ca_get_text(0, 4);
	bc = ca_get_text(0, 5);
	bo = ca_get_text(0, 6);
	if (units != p->amount.units || ca_currency_pack(cur, 3) != p->amount.code || strcmp(bm, p->method) != 0
		|| strcmp(bc, p->channel) != 0 || (bo == NULL) != (p->order_no == NULL)
		|| (bo && strcmp(bo, p->order_no) != 0)
		|| (p->have_customer && ca_get_int64(0, 1, NULL) != p->customer_id))
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("capture trigger \"%s\" on %s: payment \"%s\" was booked with other content",
						pm->tgname, pm->relname, p->ref),
				 errdetail("The account holds %s by %s on %s%s%s; the shop's row now says %s by %s on %s%s%s.",
						   format_units(units, ca_currency_pack(cur, 3)), bm, bc, bo ? " for order " : "", bo ? bo : "",
						   ca_currency_amount_to_cstring(&p->amount), p->method, p->channel,
						   p->order_no ? " for order " : "", p->order_no ? p->order_no : ""),
				 errhint("A booked payment does not change; book a correction instead.")));
	return true;
}

/* the payment's order is not booked: wait for it; true when waiting */
static bool
wait_for_order(const CaptureMap *pm, PaymentRow *p)
{
	Oid			t1[1] = {TEXTOID};
	Datum		v = CStringGetTextDatum(p->order_no);
	Oid			types[4] = {OIDOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];

	ca_prepare(&plan_order_customer, "SELECT customer_id FROM customer_account.orders WHERE order_no = $1", 1, t1);
	ca_execute(plan_order_customer, &v, NULL, false, 1);
	if (SPI_processed > 0)
	{
		if (!p->have_customer)
			p->customer_id = ca_get_int64(0, 1, NULL);
		return false;
	}
	ca_prepare(&plan_wait,
			   "INSERT INTO customer_account.capture_waiting (source, trigger_name, source_key, order_no)"
			   " VALUES ($1::pg_catalog.regclass, $2, $3, $4) ON CONFLICT DO NOTHING", 4, types);
	values[0] = ObjectIdGetDatum(pm->relid);
	values[1] = CStringGetTextDatum(pm->tgname);
	values[2] = CStringGetTextDatum(p->key);
	values[3] = CStringGetTextDatum(p->order_no);
	ca_execute(plan_wait, values, NULL, false, 0);
	return true;
}

/* book the payment through the payment table (its posting trigger books) */
static void
insert_payment(const PaymentRow *p)
{
	Oid			types[8] = {TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	ca_prepare(&plan_insert_payment,
			   "INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)"
			   " VALUES ($1, $2, customer_account.currency_amount_from_minor_units($3, $4), $5, $6, $7, $8)", 8, types);
	values[0] = CStringGetTextDatum(p->ref);
	values[1] = Int64GetDatum(p->customer_id);
	values[2] = Int64GetDatum(p->amount.units);
	values[3] = CStringGetTextDatum(iso_of(p->amount.code));
	values[4] = CStringGetTextDatum(p->method);
	values[5] = CStringGetTextDatum(p->channel);
	values[6] = ca_capture_text_or_null(p->order_no, &nulls[6]);
	values[7] = TimestampTzGetDatum(p->received_at);
	ca_execute(plan_insert_payment, values, nulls, false, 0);
}

/*
 * Bring the account in line with the shop's payment row: book it once
 * (when its order is booked), or find that the account holds it already.
 */
CaptureOutcome
ca_capture_reconcile_payment(CaptureMap *pm, Relation rel, const char *key, HeapTuple tup, bool validate_only)
{
	PaymentRow	p;
	CaptureErrorContext *ec = ca_capture_current_context();

	if (tup == NULL && (tup = fetch_row(pm, rel, CS_PAYMENT_REF, key)) == NULL)
		return OUT_NOT_BOOKED;
	if (ec)
	{
		ec->key = ca_capture_text(pm, CS_PAYMENT_REF, tup, RelationGetDescr(rel));
		ec->doing = "payment";
	}
	resolve_payment(pm, tup, RelationGetDescr(rel), &p);
	if (validate_only)
		return OUT_UNCHANGED;
	if (p.event == 1)
		return OUT_NOT_BOOKED;
	if (payment_booked(pm, &p))
		return OUT_UNCHANGED;
	if (p.order_no != NULL && wait_for_order(pm, &p))
		return OUT_WAITING;
	if (ec)
		ec->doing = "booking payment";
	insert_payment(&p);
	if (pm->quarantine)
		resolve_quarantined(pm->relid, "payment", p.key, "booked by a later change of the row");
	return OUT_BOOKED;
}

/* ------------------------------------------------------------------------
 * returns: booked through accept_return() when the installation has it
 * ------------------------------------------------------------------------
 */
Oid
ca_capture_accept_return_oid(void)
{
	Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID};

	return LookupFuncName(list_make2(makeString("customer_account"), makeString("accept_return")), 5, types, true);
}

/*
 * Book the shop's return row through accept_return() when the installation
 * has it; a refusal (reject) or a missing accept_return() is an error, which
 * the quarantine (capture_return's default) keeps for a replay.
 */
CaptureOutcome
ca_capture_reconcile_return(CaptureMap *rm, Relation rel, const char *key, HeapTuple tup, bool validate_only)
{
	TupleDesc	td = RelationGetDescr(rel);
	char	   *return_no;
	char	   *order_no;
	char	   *sku;
	char	   *channel;
	int64		qty;
	int			event;
	CaptureErrorContext *ec = ca_capture_current_context();

	if (tup == NULL)
	{
		tup = fetch_row(rm, rel, CS_RETURN_NO, key);
		if (tup == NULL)
			return OUT_NOT_BOOKED;
	}
	key = ca_capture_text_required(rm, CS_RETURN_NO, tup, td);
	if (ec)
	{
		ec->key = key;
		ec->doing = "return";
	}
	return_no = psprintf("%s%s", rm->prefix, key);
	order_no = psprintf("%s%s", rm->order_prefix, ca_capture_text_required(rm, CS_ORDER_NO, tup, td));
	sku = ca_capture_text_required(rm, CS_SKU, tup, td);
	if (!ca_capture_int64(rm, CS_QTY, tup, td, &qty))
		(void) ca_capture_text_required(rm, CS_QTY, tup, td);
	if (qty <= 0 || qty > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": returned quantity " INT64_FORMAT " is out of range",
						rm->tgname, rm->relname, rm->src[CS_QTY].argno, rm->src[CS_QTY].arg, qty)));
	(void) resolve_channel(rm, tup, td, &channel);
	event = resolve_event(rm, tup, td, ca_capture_book_events, 0);
	if (event == 1 || validate_only)
		return event == 1 ? OUT_NOT_BOOKED : OUT_UNCHANGED;

	if (!OidIsValid(ca_capture_accept_return_oid()))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("capture trigger \"%s\" on %s: return \"%s\" cannot be booked: customer_account.accept_return() is not installed",
						rm->tgname, rm->relname, return_no),
				 errhint("With on_error=quarantine (the default of capture_return) the row waits in customer_account.capture_quarantine; replay_quarantine() books it once returns are installed.")));
	if (ec)
		ec->doing = "booking return";
	{
		Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID};
		Datum		values[5];
		char	   *action;

		values[0] = CStringGetTextDatum(order_no);
		values[1] = CStringGetTextDatum(sku);
		values[2] = Int32GetDatum((int32) qty);
		values[3] = CStringGetTextDatum(channel);
		values[4] = CStringGetTextDatum(return_no);
		ca_execute(ca_capture_plan("SELECT r.action::text, r.reason_code, r.reason"
							" FROM customer_account.accept_return($1, $2, $3, $4, $5) r", 5, types),
				   values, NULL, false, 0);
		if (SPI_processed == 0)
			elog(ERROR, "accept_return returned no row");
		action = ca_get_text(0, 1);
		if (action && strcmp(action, "reject") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CA_REFUSED),
					 errmsg("capture trigger \"%s\" on %s: return \"%s\" was refused: %s",
							rm->tgname, rm->relname, return_no, ca_get_text(0, 3) ? ca_get_text(0, 3) : "?"),
					 errdetail("reason_code: %s", ca_get_text(0, 2) ? ca_get_text(0, 2) : "?")));
	}
	if (rm->quarantine)
		resolve_quarantined(rm->relid, "return", key, "booked by a later change of the row");
	return OUT_BOOKED;
}
