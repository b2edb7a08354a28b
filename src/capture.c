/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  Capture triggers: the shop's own tables feed the central account.
 *
 *	  A capture trigger does little when the shop's row arrives: it checks
 *	  the row against the mapping (so that a value the mapping cannot take
 *	  fails the shop's statement at once, naming the trigger, the argument
 *	  and the column) and notes the order, payment or return in
 *	  capture_pending.  A deferred constraint trigger on that table books
 *	  every noted key once, at commit, from the shop's rows as they stand
 *	  then: an order and all its lines arrive in separate statements, and
 *	  the account's orders table wants them in one transaction with
 *	  total = sum of the lines.  Booking means INSERT into the extension's
 *	  orders, order_line and payment tables, whose posting triggers book as
 *	  for every other channel, and UPDATE of delivered_at / cancelled_at.
 *
 *	  Booking reconciles rather than replays events: it compares the shop's
 *	  row with what the account holds and books the difference (a new
 *	  order, its delivery, its cancellation), so a shop that updates a row
 *	  five times or replays it books nothing twice.  The back-fill and the
 *	  replay of quarantined rows run the very same reconciliation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "catalog/indexing.h"
#include "catalog/pg_index.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "capture.h"
#include "currency.h"
#include "direct.h"
#include "money.h"
#include "spi_util.h"

/* what reconciling one key did */
typedef enum Outcome
{
	OUT_BOOKED,					/* newly booked */
	OUT_CHANGED,				/* a delivery or cancellation booked */
	OUT_UNCHANGED,				/* the account already agrees */
	OUT_NOT_BOOKED,				/* on hold, or cancelled before it was booked */
	OUT_WAITING,				/* a payment waiting for its order */
	OUT_QUARANTINED,
	OUT_COUNT
} Outcome;

static const char *const outcome_names[OUT_COUNT] =
{"booked", "changed", "unchanged", "not booked", "waiting for its order", "quarantined"};

typedef enum OrderEvent
{
	EV_PLACE,
	EV_HOLD,
	EV_DELIVER,
	EV_CANCEL
} OrderEvent;

static const char *const order_event_names[] = {"place", "hold", "deliver", "cancel", NULL};
static const char *const book_event_names[] = {"book", "hold", NULL};

/* one unit of work: reconcile the key of a map (and the row when at hand) */
typedef struct Job
{
	CaptureMap *map;
	Relation	rel;
	const char *key;
	HeapTuple	tup;			/* NULL: read the row by key */
	bool		check_lines;	/* compare the lines of a booked order */
	bool		validate_only;	/* row time: check the row, book nothing */
} Job;

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

static SPIPlanPtr
dyn_plan(const char *sql, int nargs, Oid *types)
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
static Datum
key_datum(Relation rel, AttrNumber attno, const char *key, Oid *type)
{
	Oid			typid = TupleDescAttr(RelationGetDescr(rel), attno - 1)->atttypid;
	Oid			in;
	Oid			ioparam;

	getTypeInputInfo(typid, &in, &ioparam);
	*type = typid;
	return OidInputFunctionCall(in, (char *) key, ioparam, -1);
}

/* a whole-row value of rel as a tuple in rel's own layout */
static HeapTuple
row_tuple(Datum d, Oid relid)
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
	Datum		value = key_datum(rel, src->attno, key, &type);
	char	   *sql = psprintf("SELECT _ca_row FROM %s _ca_row WHERE _ca_row.%s OPERATOR(pg_catalog.=) $1 LIMIT 2",
							   m->relname, quote_identifier(src->colname));
	bool		isnull;
	Datum		d;

	ca_execute(dyn_plan(sql, 1, &type), &value, NULL, false, 0);
	if (SPI_processed == 0)
		return NULL;
	if (SPI_processed > 1)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("capture trigger \"%s\" on %s: more than one row has %s \"%s\"",
						m->tgname, m->relname, src->colname, key),
				 errhint("The column of argument \"%s\" must identify one row.", src->arg)));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return row_tuple(d, m->relid);
}

/* the shop's row as jsonb, for the quarantine */
static Datum
row_image(const CaptureMap *m, Relation rel, HeapTuple tup, const char *key, bool *isnull)
{
	*isnull = true;
	if (tup != NULL)
	{
		Oid			type = m->reltype;
		Datum		value = heap_copy_tuple_as_datum(tup, RelationGetDescr(rel));

		ca_execute(dyn_plan("SELECT pg_catalog.to_jsonb($1)", 1, &type), &value, NULL, true, 1);
	}
	else
	{
		CaptureSetting keyset = m->kind == CAPTURE_PAYMENT ? CS_PAYMENT_REF :
		m->kind == CAPTURE_RETURN ? CS_RETURN_NO : CS_ORDER_NO;
		Oid			type;
		Datum		value;

		if (key == NULL || m->src[keyset].kind != SRC_COLUMN)
			return (Datum) 0;
		value = key_datum(rel, m->src[keyset].attno, key, &type);
		ca_execute(dyn_plan(psprintf("SELECT pg_catalog.to_jsonb(_ca_row) FROM %s _ca_row WHERE _ca_row.%s OPERATOR(pg_catalog.=) $1 LIMIT 1",
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
static CaptureSetting
key_setting(CaptureKind kind)
{
	return kind == CAPTURE_PAYMENT ? CS_PAYMENT_REF : kind == CAPTURE_RETURN ? CS_RETURN_NO : CS_ORDER_NO;
}

/* point the error context at a setting while something else reads it */
static int
ctx_setting(const CaptureMap *m, int s)
{
	CaptureErrorContext *ec = capture_current_context();
	int			prev = -1;

	if (ec && ec->map == m)
	{
		prev = ec->setting;
		ec->setting = s;
	}
	return prev;
}

static Datum
text_or_null(const char *s, char *null_flag)
{
	*null_flag = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

static char *
iso_of(int32 code)
{
	char	   *iso = palloc(4);

	currency_unpack(code, iso);
	return iso;
}

static char *
upper_trim(const char *s)
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

static char *
format_units(int64 units, int32 code)
{
	return currency_amount_to_cstring(make_currency_amount(units, code));
}

/* the method the shop's value stands for; an unknown one names the argument */
static char *
resolve_method(const CaptureMap *m, HeapTuple tup, TupleDesc td)
{
	char	   *value = capture_text_required(m, CS_METHOD, tup, td);
	const char *mapped = capture_lookup(&m->method_map, value);
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
		if (capture_lookup(&m->method_map, value) == NULL)
			capture_unmapped(m, CS_METHOD_MAP, CS_METHOD, value);
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\" maps \"%s\" to \"%s\", which is not a payment method",
						m->tgname, m->relname, m->src[CS_METHOD_MAP].argno, m->src[CS_METHOD_MAP].arg, value, mapped),
				 errhint("Payment methods are listed in customer_account.payment_method.")));
	}
	capture_unmapped(m, CS_METHOD_MAP, CS_METHOD, value);
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
	value = capture_text(m, CS_STATUS, tup, td);
	if (value == NULL)
		value = "";
	mapped = capture_lookup(&m->status_map, value);
	if (mapped == NULL)
		mapped = value;
	for (int i = 0; events[i]; i++)
		if (strcmp(events[i], mapped) == 0)
			return i;
	capture_unmapped(m, CS_STATUS_MAP, CS_STATUS, value);
	return dflt;				/* not reached */
}

/* the channel named by the row (RA002 with the argument in the context) */
static const ChannelConf *
resolve_channel(const CaptureMap *m, HeapTuple tup, TupleDesc td, char **code)
{
	int			prev;
	const ChannelConf *ch;

	*code = capture_text_required(m, CS_CHANNEL, tup, td);
	prev = ctx_setting(m, CS_CHANNEL);
	ch = ca_channel(*code);
	ctx_setting(m, prev);
	return ch;
}

/* the currency of the row: the mapped column or constant, else the channel's */
static char *
resolve_currency(const CaptureMap *m, HeapTuple tup, TupleDesc td, const char *dflt)
{
	char	   *c = capture_text(m, CS_CURRENCY, tup, td);
	int			prev;

	if (c == NULL)
		return dflt ? pstrdup(dflt) : NULL;
	c = upper_trim(c);
	prev = ctx_setting(m, CS_CURRENCY);
	(void) currency_lookup_or_error(c, strlen(c));
	ctx_setting(m, prev);
	return c;
}

/* ------------------------------------------------------------------------
 * customers
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_find_customer;
static SPIPlanPtr plan_customer_row;
static SPIPlanPtr plan_register;
static SPIPlanPtr plan_link;
static SPIPlanPtr plan_identity_lock;
static SPIPlanPtr plan_normalize;

/* an identity as customer_identity stores it (find_customer's normalisation) */
static char *
normalize_identity(const char *kind, const char *value)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	ca_prepare(&plan_normalize, "SELECT customer_account.normalize_identity($1, $2)", 2, types);
	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(value);
	ca_execute(plan_normalize, values, NULL, false, 1);
	return ca_get_text(0, 1);
}

static int64
find_identity(const char *kind, const char *value, bool *found)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		isnull;
	int64		id;

	ca_prepare(&plan_find_customer, "SELECT customer_account.find_customer($1, $2)", 2, types);
	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(value);
	ca_execute(plan_find_customer, values, NULL, false, 1);
	id = ca_get_int64(0, 1, &isnull);
	*found = !isnull;
	return id;
}

/* the surviving account of a customer id, following merges; RA002 when unknown */
static int64
surviving_customer(const CaptureMap *m, int64 id)
{
	Oid			types[1] = {INT8OID};

	ca_prepare(&plan_customer_row,
			   "SELECT merged_into FROM customer_account.customer WHERE customer_id = $1", 1, types);
	for (int hops = 0; hops < 32; hops++)
	{
		Datum		v = Int64GetDatum(id);
		bool		isnull;
		int64		next;

		ca_execute(plan_customer_row, &v, NULL, false, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CA_UNKNOWN),
					 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": no customer has id " INT64_FORMAT,
							m->tgname, m->relname, m->src[CS_CUSTOMER].argno, m->src[CS_CUSTOMER].arg, id),
					 errhint("customer=id: names the account's customer id; the shop's own customer numbers are customer=external:column.")));
		next = ca_get_int64(0, 1, &isnull);
		if (isnull)
			return id;
		id = next;
	}
	return id;
}

/*
 * The customer of a row: by id, or by an identity (find_customer's
 * normalisation), created when the DBA allowed it.  found=false and 0 when
 * unknown and create is false.
 */
static int64
resolve_customer(const CaptureMap *m, HeapTuple tup, TupleDesc td, bool create, TimestampTz since, bool *found)
{
	const char *kind = capture_customer_kinds[m->customer_kind];
	char	   *raw;
	char	   *value;
	int64		id;
	int			prev;

	*found = false;
	if (m->customer_kind == CUSTOMER_ID)
	{
		if (!capture_int64(m, CS_CUSTOMER, tup, td, &id))
			(void) capture_text_required(m, CS_CUSTOMER, tup, td);
		*found = true;
		return surviving_customer(m, id);
	}
	raw = capture_text_required(m, CS_CUSTOMER, tup, td);
	prev = ctx_setting(m, CS_CUSTOMER);
	value = normalize_identity(kind, psprintf("%s%s", m->identity_prefix, raw));
	id = find_identity(kind, value, found);
	ctx_setting(m, prev);
	if (*found || !create || !m->create.allowed)
		return id;

	/* one creator per identity at a time (however typed): a second waits, then finds it */
	{
		Oid			types[1] = {TEXTOID};
		Datum		v = CStringGetTextDatum(psprintf("customer_account capture %s %s", kind, value));

		ca_prepare(&plan_identity_lock, "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))", 1, types);
		ca_execute(plan_identity_lock, &v, NULL, false, 1);
	}
	prev = ctx_setting(m, CS_CUSTOMER);
	id = find_identity(kind, value, found);
	ctx_setting(m, prev);
	if (*found)
		return id;

	prev = ctx_setting(m, CS_CREATE_CUSTOMER);
	{
		const CreateCustomer *cc = &m->create;
		char	   *name = NULL;
		char	   *email = NULL;
		char	   *phone = NULL;
		char	   *language = NULL;
		bool		by_email = false;
		Oid			rtypes[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
		Datum		rvalues[5];
		char		rnulls[5] = {' ', ' ', ' ', ' ', ' '};

		name = capture_source_text(&cc->name, tup, td);
		email = capture_source_text(&cc->email, tup, td);
		phone = capture_source_text(&cc->phone, tup, td);
		language = capture_source_text(&cc->language, tup, td);
		if (m->customer_kind == CUSTOMER_EMAIL)
			email = value;
		if (name == NULL || name[0] == '\0')
			name = value;
		if (email != NULL && m->customer_kind != CUSTOMER_EMAIL)
		{
			/*
			 * The same person may be known by email already: link, do not
			 * duplicate.  The email's lock is always taken last, so two
			 * creators never wait for each other in a circle.
			 */
			Datum		v;

			email = normalize_identity("email", email);
			v = CStringGetTextDatum(psprintf("customer_account capture email %s", email));
			ca_execute(plan_identity_lock, &v, NULL, false, 1);
			id = find_identity("email", email, &by_email);
		}
		if (!by_email)
		{
			ca_prepare(&plan_register,
					   "SELECT customer_account.register_customer($1, $2, $3, coalesce($4, 'de'), $5)", 5, rtypes);
			rvalues[0] = CStringGetTextDatum(name);
			rvalues[1] = text_or_null(email, &rnulls[1]);
			rvalues[2] = text_or_null(phone, &rnulls[2]);
			rvalues[3] = text_or_null(language, &rnulls[3]);
			rvalues[4] = TimestampTzGetDatum(since);
			ca_execute(plan_register, rvalues, rnulls, false, 1);
			id = ca_get_int64(0, 1, NULL);
		}
		if (m->customer_kind != CUSTOMER_EMAIL)
		{
			Oid			ltypes[3] = {INT8OID, TEXTOID, TEXTOID};
			Datum		lvalues[3];

			ca_prepare(&plan_link, "SELECT customer_account.link_identity($1, $2, $3)", 3, ltypes);
			lvalues[0] = Int64GetDatum(id);
			lvalues[1] = CStringGetTextDatum(kind);
			lvalues[2] = CStringGetTextDatum(value);
			ca_execute(plan_link, lvalues, NULL, false, 1);
		}
	}
	ctx_setting(m, prev);
	*found = true;
	return id;
}

/* an unknown customer where the mapping may not create one */
static void
unknown_customer(const CaptureMap *m, HeapTuple tup, TupleDesc td)
{
	char	   *raw = capture_text(m, CS_CUSTOMER, tup, td);

	ereport(ERROR,
			(errcode(ERRCODE_CA_UNKNOWN),
			 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": no customer has %s \"%s%s\" (column \"%s\")",
					m->tgname, m->relname, m->src[CS_CUSTOMER].argno, m->src[CS_CUSTOMER].arg,
					capture_customer_kinds[m->customer_kind], m->identity_prefix, raw ? raw : "",
					m->src[CS_CUSTOMER].colname ? m->src[CS_CUSTOMER].colname : "(constant)"),
			 errhint("Register the customer (register_customer, link_identity) or allow create_customer=name:column on the order trigger.")));
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

static void
resolve_order_header(const CaptureMap *m, HeapTuple tup, TupleDesc td, OrderHeader *h)
{
	TimestampTz t;

	memset(h, 0, sizeof(*h));
	h->key = capture_text_required(m, CS_ORDER_NO, tup, td);
	h->order_no = psprintf("%s%s", m->prefix, h->key);
	h->ch = resolve_channel(m, tup, td, &h->channel);
	h->currency = resolve_currency(m, tup, td, h->ch->currency);
	h->method = resolve_method(m, tup, td);
	h->has_total = capture_amount(m, CS_TOTAL, tup, td, h->currency, &h->total);
	if (h->has_total)
		h->currency = iso_of(h->total.code);	/* a total that carries its currency says which */
	if (!capture_time(m, CS_PLACED_AT, tup, td, &h->placed_at))
		h->placed_at = GetCurrentTransactionStartTimestamp();
	h->event = resolve_event(m, tup, td, order_event_names, EV_PLACE);
	h->event_at = GetCurrentTransactionStartTimestamp();
	if (capture_time(m, CS_CANCELLED_AT, tup, td, &t))
	{
		h->event = EV_CANCEL;
		h->event_at = t;
	}
	else if (capture_time(m, CS_DELIVERED_AT, tup, td, &t) && (h->event == EV_PLACE || h->event == EV_DELIVER))
	{
		h->event = EV_DELIVER;
		h->event_at = t;
	}
	if (!OidIsValid(m->lines_relid) && !h->has_total && h->event != EV_HOLD && h->event != EV_CANCEL)
		(void) capture_text_required(m, CS_TOTAL, tup, td);
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
	lv->sku = capture_text_required(lm, CS_SKU, tup, td);
	if (!capture_int64(lm, CS_QTY, tup, td, &qty))
		(void) capture_text_required(lm, CS_QTY, tup, td);
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
		if (!capture_amount(lm, CS_UNIT_PRICE, tup, td, currency, &lv->price))
			(void) capture_text_required(lm, CS_UNIT_PRICE, tup, td);
	}
	else
	{
		CurrencyAmount total;

		if (!capture_amount(lm, CS_LINE_TOTAL, tup, td, currency, &total))
			(void) capture_text_required(lm, CS_LINE_TOTAL, tup, td);
		if (total.units % qty != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": line total %s of sku \"%s\" does not divide into %d equal unit prices",
							lm->tgname, lm->relname, lm->src[CS_LINE_TOTAL].argno, lm->src[CS_LINE_TOTAL].arg,
							currency_amount_to_cstring(&total), lv->sku, lv->qty),
					 errhint("Map unit_price= instead.")));
		lv->price = total;
		lv->price.units = total.units / qty;
	}
	if (!capture_bool(lm, CS_RETURNABLE, tup, td, &lv->returnable))
		lv->returnable = true;
	lv->category = capture_text(lm, CS_CATEGORY, tup, td);
	lv->key = capture_text(lm, CS_LINE_KEY, tup, td);
	if (lv->key == NULL)
		lv->key = lv->sku;
	return true;
}

/* check a line row without knowing its order's currency (row time) */
static void
validate_line(const CaptureMap *lm, HeapTuple tup, TupleDesc td)
{
	int64		qty;
	char	   *price;
	int			prev;

	(void) capture_text_required(lm, CS_SKU, tup, td);
	if (!capture_int64(lm, CS_QTY, tup, td, &qty))
		(void) capture_text_required(lm, CS_QTY, tup, td);
	(void) resolve_currency(lm, tup, td, NULL);
	if (lm->src[CS_UNIT_PRICE].kind != SRC_NONE)
	{
		price = capture_text_required(lm, CS_UNIT_PRICE, tup, td);
		prev = ctx_setting(lm, CS_UNIT_PRICE);
	}
	else
	{
		price = capture_text_required(lm, CS_LINE_TOTAL, tup, td);
		prev = ctx_setting(lm, CS_LINE_TOTAL);
	}
	/* a number, or an amount with its currency */
	if (strspn(price, "0123456789.-+ ") == strlen(price))
		(void) DirectFunctionCall3(numeric_in, CStringGetDatum(price), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	ctx_setting(lm, prev);
}

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

			if (capture_kind_of_function(t->tgfoid) != CAPTURE_LINE)
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
	return capture_map_get(*lrel, found, CAPTURE_LINE);
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

	value = key_datum(lrel, oc->attno, h->key, &type);
	sql = psprintf("SELECT _ca_row FROM %s _ca_row WHERE _ca_row.%s OPERATOR(pg_catalog.=) $1%s%s",
				   lm->relname, quote_identifier(oc->colname),
				   sortcol ? " ORDER BY _ca_row." : "", sortcol ? quote_identifier(sortcol->colname) : "");
	ca_execute(dyn_plan(sql, 1, &type), &value, NULL, false, 0);
	tt = SPI_tuptable;
	rows = SPI_processed;
	lines = palloc(sizeof(LineValues) * (rows + 1));
	*n = 0;
	capture_push_context(&ec, &cb, lm);
	ec.key = h->key;
	for (uint64 i = 0; i < rows; i++)
	{
		bool		isnull;
		HeapTuple	lt = row_tuple(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull), lm->relid);
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
	capture_pop_context(&cb);
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

		b->total.code = currency_pack(c, 3);
		b->total.pad = 0;
	}
	b->placed_at = ca_get_timestamptz(0, 6, &isnull);
	b->delivered = ca_get_bool(0, 7, NULL);
	b->cancelled = ca_get_bool(0, 8, NULL);
	return true;
}

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
	values[8] = text_or_null(lv->category, &nulls[8]);
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
		lines[i].price.code = currency_pack(ca_get_text(i, 4), 3);
	}
	qsort(lines, *n, sizeof(LineValues), line_cmp);
	return lines;
}

static char *
describe_lines(const LineValues *lines, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%d x %s at %s", i ? ", " : "", lines[i].qty, lines[i].sku,
						 currency_amount_to_cstring(&lines[i].price));
	return n ? buf.data : "no lines";
}

/* what the captured lines add up to; the adjustment line when the total says more */
static int64
settle_total(const CaptureMap *om, const OrderHeader *h, LineValues *lines, int *n)
{
	int64		sum = 0;
	int32		code = currency_pack(h->currency, 3);

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
						om->tgname, om->relname, h->order_no, currency_amount_to_cstring(&h->total),
						om->src[CS_TOTAL].argno, om->src[CS_TOTAL].arg, format_units(sum, code)),
				 errdetail("Lines: %s.", describe_lines(lines, *n)),
				 errhint("Leave total= out to book the sum of the lines, or name adjust_sku= to book a positive difference (shipping, fees) as one more line.")));
	}
	return sum;
}

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

static Outcome reconcile_payment(CaptureMap *pm, Relation rel, const char *key, HeapTuple tup);

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
		t = capture_find_trigger(rel, InvalidOid, tgname);
		if (t != NULL && capture_kind_of_function(t->tgfoid) == CAPTURE_PAYMENT)
		{
			CaptureMap *pm = capture_map_get(rel, t, CAPTURE_PAYMENT);
			ErrorContextCallback cb;
			CaptureErrorContext ec;

			capture_push_context(&ec, &cb, pm);
			ec.key = key;
			(void) reconcile_payment(pm, rel, key, NULL);
			capture_pop_context(&cb);
		}
		table_close(rel, AccessShareLock);
	}
}

/*
 * Bring the account in line with the shop's order row: book it with its
 * lines, book a delivery or a cancellation the account does not have yet,
 * or find that the account already agrees.  Content that differs from
 * what was booked is an error (never a silent divergence).
 */
static Outcome
reconcile_order(CaptureMap *om, Relation rel, const char *key, HeapTuple tup, bool check_lines, bool validate_only)
{
	TupleDesc	td = RelationGetDescr(rel);
	OrderHeader h;
	BookedOrder b;
	Outcome		outcome = OUT_UNCHANGED;
	CaptureErrorContext *ec = capture_current_context();

	if (tup == NULL)
	{
		tup = fetch_row(om, rel, CS_ORDER_NO, key);
		if (tup == NULL)
			return OUT_NOT_BOOKED;	/* deleted in the shop before it was booked */
	}
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
			(void) resolve_customer(om, tup, td, false, h.placed_at, &found);
			if (!found && !om->create.allowed)
				unknown_customer(om, tup, td);
		}
		return OUT_UNCHANGED;
	}

	if (!read_booked_order(h.order_no, &b))
	{
		int64		customer_id;
		bool		found;
		LineValues *lines;
		int			n;
		int64		total;

		if (h.event == EV_HOLD || h.event == EV_CANCEL)
			return OUT_NOT_BOOKED;
		customer_id = resolve_customer(om, tup, td, true, h.placed_at, &found);
		if (!found)
			unknown_customer(om, tup, td);
		if (OidIsValid(om->lines_relid))
			lines = load_lines(om, &h, &n);
		else
		{
			CaptureMap *m = om;

			lines = palloc0(sizeof(LineValues) * 2);
			n = 1;
			lines[0].sku = capture_text_required(m, CS_SKU, tup, td);
			lines[0].key = lines[0].sku;
			lines[0].qty = 1;
			lines[0].price = h.total;
			if (!capture_bool(m, CS_RETURNABLE, tup, td, &lines[0].returnable))
				lines[0].returnable = true;
		}
		total = settle_total(om, &h, lines, &n);
		if (ec)
			ec->doing = "booking order";
		insert_order(&h, customer_id, total, currency_pack(h.currency, 3));
		for (int i = 0; i < n; i++)
			insert_line(h.order_no, i + 1, customer_id, &lines[i]);
		if (h.event == EV_DELIVER)
			set_order_time(true, h.order_no, h.event_at);
		book_waiting_payments(h.order_no);
		outcome = OUT_BOOKED;
	}
	else
	{
		/* booked before: the content must agree; status changes book once */
		if (strcmp(b.channel, h.channel) != 0 || strcmp(b.method, h.method) != 0
			|| (h.has_total && (b.total.units != h.total.units || b.total.code != h.total.code)))
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("capture trigger \"%s\" on %s: order \"%s\" was booked with other content",
							om->tgname, om->relname, h.order_no),
					 errdetail("The account holds channel %s, method %s, total %s; the shop's row now says channel %s, method %s%s%s.",
							   b.channel, b.method, currency_amount_to_cstring(&b.total), h.channel, h.method,
							   h.has_total ? ", total " : "", h.has_total ? currency_amount_to_cstring(&h.total) : ""),
					 errhint("A booked order does not change; cancel it in the shop and place a new one.")));
		if (check_lines && OidIsValid(om->lines_relid))
		{
			int			n,
						nb;
			LineValues *lines = load_lines(om, &h, &n);
			LineValues *had = booked_lines(h.order_no, &nb);
			int64		sum = 0;
			bool		same;

			/* the lines as they would be booked now, with the adjustment line */
			for (int i = 0; i < n; i++)
				sum += lines[i].price.units * lines[i].qty;
			if (h.has_total && om->adjust_sku && n > 0 && h.total.units > sum)
			{
				memset(&lines[n], 0, sizeof(LineValues));
				lines[n].sku = (char *) om->adjust_sku;
				lines[n].qty = 1;
				lines[n].price = h.total;
				lines[n].price.units = h.total.units - sum;
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
								om->tgname, om->relname, h.order_no),
						 errdetail("The account holds %s; the shop's lines now say %s.", describe_lines(had, nb),
								   describe_lines(lines, n)),
						 errhint("Booked lines do not change; book a return for items taken back, or cancel and place a new order.")));
		}
		if (h.event == EV_CANCEL && !b.cancelled)
		{
			if (b.delivered)
				ereport(ERROR,
						(errcode(ERRCODE_CA_REFUSED),
						 errmsg("capture trigger \"%s\" on %s: order \"%s\" was delivered and cannot be cancelled",
								om->tgname, om->relname, h.order_no),
						 errdetail("reason_code: already_delivered"),
						 errhint("Take the goods back as a return (capture_return or accept_return).")));
			if (ec)
				ec->doing = "cancelling order";
			set_order_time(false, h.order_no, h.event_at);
			outcome = OUT_CHANGED;
		}
		else if (h.event == EV_DELIVER && !b.delivered)
		{
			if (b.cancelled)
				ereport(ERROR,
						(errcode(ERRCODE_CA_REFUSED),
						 errmsg("capture trigger \"%s\" on %s: order \"%s\" is cancelled in the account; the shop now says delivered",
								om->tgname, om->relname, h.order_no),
						 errhint("A cancellation is final; place a new order for goods that were shipped after all.")));
			if (ec)
				ec->doing = "delivering order";
			set_order_time(true, h.order_no, h.event_at);
			outcome = OUT_CHANGED;
		}
	}
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

static Outcome
reconcile_payment(CaptureMap *pm, Relation rel, const char *key, HeapTuple tup)
{
	TupleDesc	td = RelationGetDescr(rel);
	char	   *ref;
	char	   *channel;
	const ChannelConf *ch;
	char	   *currency;
	char	   *method;
	char	   *order_raw;
	char	   *order_no = NULL;
	CurrencyAmount amount;
	TimestampTz received_at;
	int			event;
	int64		customer_id = 0;
	bool		have_customer = false;
	CaptureErrorContext *ec = capture_current_context();
	Oid			t1[1] = {TEXTOID};

	if (tup == NULL)
	{
		tup = fetch_row(pm, rel, CS_PAYMENT_REF, key);
		if (tup == NULL)
			return OUT_NOT_BOOKED;
	}
	key = capture_text_required(pm, CS_PAYMENT_REF, tup, td);
	if (ec)
	{
		ec->key = key;
		ec->doing = "payment";
	}
	ref = psprintf("%s%s", pm->prefix, key);
	ch = resolve_channel(pm, tup, td, &channel);
	currency = resolve_currency(pm, tup, td, ch->currency);
	event = resolve_event(pm, tup, td, book_event_names, 0);
	if (!capture_amount(pm, CS_AMOUNT, tup, td, currency, &amount))
		(void) capture_text_required(pm, CS_AMOUNT, tup, td);
	method = resolve_method(pm, tup, td);
	order_raw = capture_text(pm, CS_ORDER_NO, tup, td);
	if (order_raw != NULL && order_raw[0] != '\0')
		order_no = psprintf("%s%s", pm->order_prefix, order_raw);
	if (!capture_time(pm, CS_RECEIVED_AT, tup, td, &received_at))
		received_at = GetCurrentTransactionStartTimestamp();
	if (pm->src[CS_CUSTOMER].kind != SRC_NONE)
	{
		customer_id = resolve_customer(pm, tup, td, false, received_at, &have_customer);
		if (!have_customer)
			unknown_customer(pm, tup, td);
	}
	if (event == 1)
		return OUT_NOT_BOOKED;

	/* booked before? */
	ca_prepare(&plan_read_payment,
			   "SELECT customer_id, customer_account.minor_units(amount), customer_account.currency_of(amount),"
			   " method, channel, order_no FROM customer_account.payment WHERE payment_ref = $1", 1, t1);
	{
		Datum		v = CStringGetTextDatum(ref);

		ca_execute(plan_read_payment, &v, NULL, false, 1);
	}
	if (SPI_processed > 0)
	{
		int64		units = ca_get_int64(0, 2, NULL);
		char	   *cur = ca_get_text(0, 3);
		char	   *bm = ca_get_text(0, 4);
		char	   *bc = ca_get_text(0, 5);
		char	   *bo = ca_get_text(0, 6);

		if (units != amount.units || currency_pack(cur, 3) != amount.code || strcmp(bm, method) != 0
			|| strcmp(bc, channel) != 0 || (bo == NULL) != (order_no == NULL)
			|| (bo && strcmp(bo, order_no) != 0)
			|| (have_customer && ca_get_int64(0, 1, NULL) != customer_id))
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("capture trigger \"%s\" on %s: payment \"%s\" was booked with other content",
							pm->tgname, pm->relname, ref),
					 errdetail("The account holds %s by %s on %s%s%s; the shop's row now says %s by %s on %s%s%s.",
							   format_units(units, currency_pack(cur, 3)), bm, bc, bo ? " for order " : "", bo ? bo : "",
							   currency_amount_to_cstring(&amount), method, channel,
							   order_no ? " for order " : "", order_no ? order_no : ""),
					 errhint("A booked payment does not change; book a correction instead.")));
		return OUT_UNCHANGED;
	}

	if (order_no != NULL)
	{
		Datum		v = CStringGetTextDatum(order_no);

		ca_prepare(&plan_order_customer,
				   "SELECT customer_id FROM customer_account.orders WHERE order_no = $1", 1, t1);
		ca_execute(plan_order_customer, &v, NULL, false, 1);
		if (SPI_processed == 0)
		{
			/* the order is on hold or not captured yet: book when it is */
			Oid			wtypes[4] = {OIDOID, TEXTOID, TEXTOID, TEXTOID};
			Datum		wvalues[4];

			ca_prepare(&plan_wait,
					   "INSERT INTO customer_account.capture_waiting (source, trigger_name, source_key, order_no)"
					   " VALUES ($1::pg_catalog.regclass, $2, $3, $4) ON CONFLICT DO NOTHING", 4, wtypes);
			wvalues[0] = ObjectIdGetDatum(pm->relid);
			wvalues[1] = CStringGetTextDatum(pm->tgname);
			wvalues[2] = CStringGetTextDatum(key);
			wvalues[3] = CStringGetTextDatum(order_no);
			ca_execute(plan_wait, wvalues, NULL, false, 0);
			return OUT_WAITING;
		}
		if (!have_customer)
			customer_id = ca_get_int64(0, 1, NULL);
	}

	if (ec)
		ec->doing = "booking payment";
	{
		Oid			types[8] = {TEXTOID, INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
		Datum		values[8];
		char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		ca_prepare(&plan_insert_payment,
				   "INSERT INTO customer_account.payment (payment_ref, customer_id, amount, method, channel, order_no, received_at)"
				   " VALUES ($1, $2, customer_account.currency_amount_from_minor_units($3, $4), $5, $6, $7, $8)", 8, types);
		values[0] = CStringGetTextDatum(ref);
		values[1] = Int64GetDatum(customer_id);
		values[2] = Int64GetDatum(amount.units);
		values[3] = CStringGetTextDatum(iso_of(amount.code));
		values[4] = CStringGetTextDatum(method);
		values[5] = CStringGetTextDatum(channel);
		values[6] = text_or_null(order_no, &nulls[6]);
		values[7] = TimestampTzGetDatum(received_at);
		ca_execute(plan_insert_payment, values, nulls, false, 0);
	}
	if (pm->quarantine)
		resolve_quarantined(pm->relid, "payment", key, "booked by a later change of the row");
	return OUT_BOOKED;
}

/* ------------------------------------------------------------------------
 * returns: booked through accept_return() when the installation has it
 * ------------------------------------------------------------------------
 */
static Oid
accept_return_oid(void)
{
	Oid			types[5] = {TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID};

	return LookupFuncName(list_make2(makeString("customer_account"), makeString("accept_return")), 5, types, true);
}

static Outcome
reconcile_return(CaptureMap *rm, Relation rel, const char *key, HeapTuple tup, bool validate_only)
{
	TupleDesc	td = RelationGetDescr(rel);
	char	   *return_no;
	char	   *order_no;
	char	   *sku;
	char	   *channel;
	int64		qty;
	int			event;
	CaptureErrorContext *ec = capture_current_context();

	if (tup == NULL)
	{
		tup = fetch_row(rm, rel, CS_RETURN_NO, key);
		if (tup == NULL)
			return OUT_NOT_BOOKED;
	}
	key = capture_text_required(rm, CS_RETURN_NO, tup, td);
	if (ec)
	{
		ec->key = key;
		ec->doing = "return";
	}
	return_no = psprintf("%s%s", rm->prefix, key);
	order_no = psprintf("%s%s", rm->order_prefix, capture_text_required(rm, CS_ORDER_NO, tup, td));
	sku = capture_text_required(rm, CS_SKU, tup, td);
	if (!capture_int64(rm, CS_QTY, tup, td, &qty))
		(void) capture_text_required(rm, CS_QTY, tup, td);
	if (qty <= 0 || qty > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": returned quantity " INT64_FORMAT " is out of range",
						rm->tgname, rm->relname, rm->src[CS_QTY].argno, rm->src[CS_QTY].arg, qty)));
	(void) resolve_channel(rm, tup, td, &channel);
	event = resolve_event(rm, tup, td, book_event_names, 0);
	if (event == 1 || validate_only)
		return event == 1 ? OUT_NOT_BOOKED : OUT_UNCHANGED;

	if (!OidIsValid(accept_return_oid()))
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
		ca_execute(dyn_plan("SELECT r.action::text, r.reason_code, r.reason"
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

/* ------------------------------------------------------------------------
 * running a job, with or without the quarantine
 * ------------------------------------------------------------------------
 */
static Outcome
run_job(Job *j)
{
	Outcome		out = OUT_UNCHANGED;
	ErrorContextCallback cb;
	CaptureErrorContext ec;

	ca_connect();
	capture_push_context(&ec, &cb, j->map);
	ec.key = j->key;
	switch (j->map->kind)
	{
		case CAPTURE_ORDER:
			out = reconcile_order(j->map, j->rel, j->key, j->tup, j->check_lines, j->validate_only);
			break;
		case CAPTURE_LINE:
			/* row time only: orders book their lines */
			validate_line(j->map, j->tup, RelationGetDescr(j->rel));
			break;
		case CAPTURE_PAYMENT:
			if (j->validate_only)
			{
				/* everything but the booking */
				TupleDesc	td = RelationGetDescr(j->rel);
				char	   *channel;
				const ChannelConf *ch = resolve_channel(j->map, j->tup, td, &channel);
				char	   *currency = resolve_currency(j->map, j->tup, td, ch->currency);
				CurrencyAmount a;
				TimestampTz t;
				bool		found;

				(void) resolve_event(j->map, j->tup, td, book_event_names, 0);
				if (!capture_amount(j->map, CS_AMOUNT, j->tup, td, currency, &a))
					(void) capture_text_required(j->map, CS_AMOUNT, j->tup, td);
				(void) resolve_method(j->map, j->tup, td);
				(void) capture_time(j->map, CS_RECEIVED_AT, j->tup, td, &t);
				if (j->map->src[CS_CUSTOMER].kind != SRC_NONE)
				{
					(void) resolve_customer(j->map, j->tup, td, false, 0, &found);
					if (!found)
						unknown_customer(j->map, j->tup, td);
				}
			}
			else
				out = reconcile_payment(j->map, j->rel, j->key, j->tup);
			break;
		case CAPTURE_RETURN:
			out = reconcile_return(j->map, j->rel, j->key, j->tup, j->validate_only);
			break;
		default:
			elog(ERROR, "unknown capture kind %d", j->map->kind);
	}
	capture_pop_context(&cb);
	ca_finish();
	return out;
}

static SPIPlanPtr plan_quarantine;

/*
 * The reason of a failure: its message, and when that does not name the
 * trigger (an error of the core, such as an unknown channel), the capture
 * context line that names the trigger, the argument and the column.
 */
static char *
error_reason(ErrorData *edata)
{
	const char *msg = edata->message ? edata->message : "?";
	const char *ctx = edata->context;
	const char *at;

	if (strstr(msg, "capture trigger") != NULL || ctx == NULL || (at = strstr(ctx, "capture trigger")) == NULL)
		return pstrdup(msg);
	return psprintf("%s (%.*s)", msg, (int) strcspn(at, "\n"), at);
}

/* put the row in the quarantine with the reason */
static void
quarantine_row(Job *j, ErrorData *edata)
{
	Oid			types[8] = {OIDOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	StringInfoData detail;

	ca_connect();
	ca_prepare(&plan_quarantine,
			   "INSERT INTO customer_account.capture_quarantine AS q"
			   " (source, trigger_name, kind, source_key, row_image, sqlstate, reason, detail)"
			   " VALUES ($1::pg_catalog.regclass, $2, $3, $4, $5, $6, $7, $8)"
			   " ON CONFLICT (source, kind, source_key) WHERE resolved_at IS NULL DO UPDATE SET"
			   " trigger_name = EXCLUDED.trigger_name, row_image = EXCLUDED.row_image, sqlstate = EXCLUDED.sqlstate,"
			   " reason = EXCLUDED.reason, detail = EXCLUDED.detail, last_seen = now(), attempts = q.attempts + 1",
			   8, types);
	values[0] = ObjectIdGetDatum(j->map->relid);
	values[1] = CStringGetTextDatum(j->map->tgname);
	values[2] = CStringGetTextDatum(capture_kind_names[j->map->kind]);
	values[3] = text_or_null(j->key, &nulls[3]);
	values[4] = row_image(j->map, j->rel, j->tup, j->key, &isnull);
	nulls[4] = isnull ? 'n' : ' ';
	values[5] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	values[6] = CStringGetTextDatum(error_reason(edata));
	initStringInfo(&detail);
	if (edata->detail)
		appendStringInfoString(&detail, edata->detail);
	if (edata->hint)
		appendStringInfo(&detail, "%sHint: %s", detail.len ? " " : "", edata->hint);
	values[7] = text_or_null(detail.len ? detail.data : NULL, &nulls[7]);
	ca_execute(plan_quarantine, values, nulls, false, 0);
	ca_finish();
}

/*
 * Run a job in a subtransaction.  A failure is put in the quarantine
 * (quarantine true) or handed back in *edata (when edata is not NULL);
 * otherwise the job runs plainly and its errors fail the statement.
 */
static Outcome
run_job_guarded(Job *j, bool quarantine, ErrorData **edata)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile Outcome out = OUT_UNCHANGED;
	ErrorData  *volatile err = NULL;

	if (!quarantine && edata == NULL)
		return run_job(j);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		out = run_job(j);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		err = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	if (err == NULL)
		return out;
	if (edata != NULL)
	{
		*edata = err;
		return OUT_QUARANTINED;
	}
	quarantine_row(j, err);
	return OUT_QUARANTINED;
}

/* ------------------------------------------------------------------------
 * the trigger functions
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_mark;

/* note a key for booking at commit (once per key and transaction) */
static void
mark_pending(Oid tgoid, Oid relid, const char *key, bool check_lines)
{
	Oid			types[4] = {OIDOID, OIDOID, TEXTOID, BOOLOID};
	Datum		values[4];

	ca_connect();
	ca_prepare(&plan_mark,
			   "INSERT INTO customer_account.capture_pending AS p (trigger_oid, source, source_key, check_lines)"
			   " VALUES ($1, $2, $3, $4) ON CONFLICT (trigger_oid, source_key)"
			   " DO UPDATE SET check_lines = true WHERE $4 AND NOT p.check_lines", 4, types);
	values[0] = ObjectIdGetDatum(tgoid);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = CStringGetTextDatum(key);
	values[3] = BoolGetDatum(check_lines);
	ca_execute(plan_mark, values, NULL, false, 0);
	ca_finish();
}

/* did an UPDATE change anything the mapping reads? */
static bool
mapped_change(const CaptureMap *m, HeapTuple a, HeapTuple b, TupleDesc td)
{
	const CaptureSource *extra[4] = {&m->create.name, &m->create.email, &m->create.phone, &m->create.language};

	for (int s = 0; s < CS_COUNT + 4; s++)
	{
		const CaptureSource *src = s < CS_COUNT ? &m->src[s] : extra[s - CS_COUNT];
		bool		na,
					nb;
		Datum		da,
					db;
		Form_pg_attribute att;

		if (src->kind != SRC_COLUMN)
			continue;
		att = TupleDescAttr(td, src->attno - 1);
		da = heap_getattr(a, src->attno, td, &na);
		db = heap_getattr(b, src->attno, td, &nb);
		if (na != nb || (!na && !datumIsEqual(da, db, att->attbyval, att->attlen)))
			return true;
	}
	return false;
}

static char *
key_of(const CaptureMap *m, HeapTuple tup, TupleDesc td)
{
	return capture_text(m, key_setting(m->kind), tup, td);
}

static Datum
capture_trigger(FunctionCallInfo fcinfo, CaptureKind kind)
{
	TriggerData *trig;
	Relation	rel;
	TupleDesc	td;
	CaptureMap *m;
	HeapTuple	tup;
	Job			j;
	char	   *key;
	Oid			mark_tgoid;
	Oid			mark_relid;
	Outcome		out;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called by trigger manager", capture_function_names[kind])));
	trig = (TriggerData *) fcinfo->context;
	rel = trig->tg_relation;
	td = RelationGetDescr(rel);
	if (!TRIGGER_FIRED_AFTER(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("capture trigger \"%s\" on %s must be AFTER INSERT OR UPDATE ... FOR EACH ROW",
						trig->tg_trigger->tgname, RelationGetRelationName(rel))));
	/* a deleted shop row books nothing (lines: the order is checked again) */
	if (TRIGGER_FIRED_BY_DELETE(trig->tg_event) && kind != CAPTURE_LINE)
		return PointerGetDatum(NULL);

	m = capture_map_get(rel, trig->tg_trigger, kind);
	tup = TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple : trig->tg_trigtuple;
	if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event) && !mapped_change(m, trig->tg_trigtuple, tup, td))
		return PointerGetDatum(NULL);

	key = key_of(m, tup, td);
	mark_tgoid = m->tgoid;
	mark_relid = m->relid;
	if (kind == CAPTURE_LINE)
	{
		if (!OidIsValid(m->link_tgoid))
			m->link_tgoid = capture_find_order_trigger(m->relid, &m->link_relid);
		if (!OidIsValid(m->link_tgoid))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("capture trigger \"%s\" on %s: no capture_order trigger names this table in lines=",
							m->tgname, m->relname),
					 errhint("Give the capture_order trigger of the orders table the argument 'lines=%s'.", m->relname)));
		mark_tgoid = m->link_tgoid;
		mark_relid = m->link_relid;
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event))
	{
		char	   *old_key = key_of(m, trig->tg_trigtuple, td);

		if (old_key && key && strcmp(old_key, key) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("capture trigger \"%s\" on %s: the key of a captured row changed from \"%s\" to \"%s\"",
							m->tgname, m->relname, old_key, key),
					 errhint("Order numbers, payment references and return numbers are the account's natural keys and do not change.")));
	}

	/* check the row now, so that a bad value fails this statement */
	memset(&j, 0, sizeof(j));
	j.map = m;
	j.rel = rel;
	j.key = key;
	j.tup = tup;
	j.validate_only = true;
	if (TRIGGER_FIRED_BY_DELETE(trig->tg_event))
		out = OUT_UNCHANGED;
	else
		out = run_job_guarded(&j, m->quarantine, NULL);
	if (out == OUT_QUARANTINED)
		return PointerGetDatum(NULL);
	if (key == NULL)
		(void) capture_text_required(m, key_setting(kind), tup, td);
	mark_pending(mark_tgoid, mark_relid, key, kind == CAPTURE_LINE);

	/* a line that moved to another order: that order is checked too */
	if (kind == CAPTURE_LINE && TRIGGER_FIRED_BY_UPDATE(trig->tg_event))
	{
		char	   *old_key = key_of(m, trig->tg_trigtuple, td);

		if (old_key && strcmp(old_key, key) != 0)
			mark_pending(mark_tgoid, mark_relid, old_key, true);
	}
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(capture_order);
Datum
capture_order(PG_FUNCTION_ARGS)
{
	return capture_trigger(fcinfo, CAPTURE_ORDER);
}

PG_FUNCTION_INFO_V1(capture_order_line);
Datum
capture_order_line(PG_FUNCTION_ARGS)
{
	return capture_trigger(fcinfo, CAPTURE_LINE);
}

PG_FUNCTION_INFO_V1(capture_payment);
Datum
capture_payment(PG_FUNCTION_ARGS)
{
	return capture_trigger(fcinfo, CAPTURE_PAYMENT);
}

PG_FUNCTION_INFO_V1(capture_return);
Datum
capture_return(PG_FUNCTION_ARGS)
{
	return capture_trigger(fcinfo, CAPTURE_RETURN);
}

/*
 * capture_commit: the deferred constraint trigger on capture_pending.  At
 * commit, each noted key is booked once from the shop's rows as they are.
 */
static SPIPlanPtr plan_claim;

PG_FUNCTION_INFO_V1(capture_commit);
Datum
capture_commit(PG_FUNCTION_ARGS)
{
	TriggerData *trig;
	TupleDesc	td;
	bool		isnull;
	Oid			tgoid;
	Oid			relid;
	char	   *key;
	bool		check_lines;
	Relation	rel;
	const Trigger *t;
	Job			j;
	int			kind;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("capture_commit: not called by trigger manager")));
	trig = (TriggerData *) fcinfo->context;
	td = RelationGetDescr(trig->tg_relation);
	tgoid = DatumGetObjectId(heap_getattr(trig->tg_trigtuple, 1, td, &isnull));
	relid = DatumGetObjectId(heap_getattr(trig->tg_trigtuple, 2, td, &isnull));
	key = TextDatumGetCString(heap_getattr(trig->tg_trigtuple, 3, td, &isnull));

	/* claim the key: booked once even if noted again meanwhile */
	ca_connect();
	{
		Oid			types[2] = {OIDOID, TEXTOID};
		Datum		values[2] = {ObjectIdGetDatum(tgoid), CStringGetTextDatum(key)};

		ca_prepare(&plan_claim,
				   "DELETE FROM customer_account.capture_pending WHERE trigger_oid = $1 AND source_key = $2"
				   " RETURNING check_lines", 2, types);
		ca_execute(plan_claim, values, NULL, false, 0);
		if (SPI_processed == 0)
		{
			ca_finish();
			return PointerGetDatum(NULL);
		}
		check_lines = ca_get_bool(0, 1, NULL);
	}
	rel = try_table_open(relid, AccessShareLock);
	if (rel == NULL)
	{
		ca_finish();
		return PointerGetDatum(NULL);
	}
	t = capture_find_trigger(rel, tgoid, NULL);
	kind = t ? capture_kind_of_function(t->tgfoid) : -1;
	if (kind >= 0)
	{
		memset(&j, 0, sizeof(j));
		j.map = capture_map_get(rel, t, (CaptureKind) kind);
		j.rel = rel;
		j.key = key;
		j.check_lines = check_lines;
		(void) run_job_guarded(&j, j.map->quarantine, NULL);
	}
	table_close(rel, AccessShareLock);
	ca_finish();
	return PointerGetDatum(NULL);
}

/* ------------------------------------------------------------------------
 * capture_backfill(source regclass, batch_size int): the table's history
 * through the same reconciliation, resumable
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_state_read;
static SPIPlanPtr plan_state_write;
static SPIPlanPtr plan_state_done;

/* the capture triggers of rel that book (orders before payments before returns) */
static List *
booking_triggers(Relation rel)
{
	List	   *result = NIL;

	for (int k = CAPTURE_ORDER; k < CAPTURE_KINDS; k++)
	{
		if (k == CAPTURE_LINE || rel->trigdesc == NULL)
			continue;
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
			if (capture_kind_of_function(rel->trigdesc->triggers[i].tgfoid) == k)
				result = lappend(result, &rel->trigdesc->triggers[i]);
	}
	return result;
}

static void
require_select(Oid relid)
{
	if (pg_class_aclcheck(relid, GetOuterUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid)),
				 errhint("The back-fill and the replay read the shop's table; the caller needs SELECT on it.")));
}

PG_FUNCTION_INFO_V1(capture_backfill);
Datum
capture_backfill(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		batched = !PG_ARGISNULL(1);
	int32		batch_size = batched ? PG_GETARG_INT32(1) : 0;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	List	   *triggers;
	ListCell   *lc;
	MemoryContext rowcxt;

	if (batched && batch_size <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive, not %d", batch_size)));
	InitMaterializedSRF(fcinfo, 0);
	require_select(relid);
	rel = table_open(relid, AccessShareLock);
	triggers = booking_triggers(rel);
	if (triggers == NIL)
	{
		bool		lines = false;

		if (rel->trigdesc)
			for (int i = 0; i < rel->trigdesc->numtriggers; i++)
				if (capture_kind_of_function(rel->trigdesc->triggers[i].tgfoid) == CAPTURE_LINE)
					lines = true;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table %s has no capture_order, capture_payment or capture_return trigger",
						RelationGetRelationName(rel)),
				 lines ? errhint("Lines are back-filled with their orders: run capture_backfill() on the orders table.")
				 : errhint("Attach the capture trigger first; the back-fill books through its mapping.")));
	}
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "capture_backfill row", ALLOCSET_DEFAULT_SIZES);
	ca_connect();
	foreach(lc, triggers)
	{
		const Trigger *t = (const Trigger *) lfirst(lc);
		CaptureKind kind = (CaptureKind) capture_kind_of_function(t->tgfoid);
		CaptureMap *m = capture_map_get(rel, t, kind);
		const CaptureSource *ks = &m->src[key_setting(kind)];
		char	   *last_key = NULL;
		int64		counts[OUT_COUNT] = {0};
		int64		rows = 0;
		bool		done = false;
		int			chunk = batched ? Min(batch_size, 10000) : 1000;
		int64		left = batched ? batch_size : -1;
		Datum		values[9];
		bool		nulls[9] = {false};

		if (ks->kind != SRC_COLUMN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("capture trigger \"%s\" on %s: the back-fill needs a key column", m->tgname, m->relname)));
		/* where an interrupted run stopped */
		{
			Oid			types[2] = {OIDOID, TEXTOID};
			Datum		sv[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(m->tgname)};

			ca_prepare(&plan_state_read,
					   "SELECT last_key FROM customer_account.capture_backfill_state"
					   " WHERE source = $1::pg_catalog.regclass AND trigger_name = $2", 2, types);
			ca_execute(plan_state_read, sv, NULL, false, 1);
			if (SPI_processed > 0)
				last_key = ca_get_text(0, 1);
		}
		while (!done)
		{
			char	   *sql;
			SPITupleTable *tt;
			uint64		n;
			Datum		kv;
			Oid			kt;
			int			want = (int) (left >= 0 ? Min(left, chunk) : chunk);

			if (want <= 0)
				break;
			sql = psprintf("SELECT _ca_row, _ca_row.%s::text FROM %s _ca_row WHERE _ca_row.%s IS NOT NULL%s ORDER BY _ca_row.%s LIMIT %d",
						   quote_identifier(ks->colname), m->relname, quote_identifier(ks->colname),
						   last_key ? psprintf(" AND _ca_row.%s OPERATOR(pg_catalog.>) $1", quote_identifier(ks->colname)) : "",
						   quote_identifier(ks->colname), want);
			if (last_key)
			{
				kv = key_datum(rel, ks->attno, last_key, &kt);
				ca_execute(dyn_plan(sql, 1, &kt), &kv, NULL, true, 0);
			}
			else
				ca_execute(dyn_plan(sql, 0, NULL), NULL, NULL, true, 0);
			tt = SPI_tuptable;
			n = SPI_processed;
			for (uint64 i = 0; i < n; i++)
			{
				MemoryContext old = MemoryContextSwitchTo(rowcxt);
				bool		isnull;
				Job			j;
				Outcome		out;

				memset(&j, 0, sizeof(j));
				j.map = m;
				j.rel = rel;
				j.tup = row_tuple(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull), relid);
				j.key = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
				out = run_job_guarded(&j, m->quarantine, NULL);
				counts[out]++;
				MemoryContextSwitchTo(old);
				MemoryContextReset(rowcxt);
				CHECK_FOR_INTERRUPTS();
			}
			rows += n;
			if (n > 0)
				last_key = SPI_getvalue(tt->vals[n - 1], tt->tupdesc, 2);
			SPI_freetuptable(tt);
			if (left >= 0)
				left -= n;
			if ((int) n < want)
				done = true;
		}
		/* remember where this call stopped; a finished table starts over next time */
		{
			Oid			types[4] = {OIDOID, TEXTOID, TEXTOID, INT8OID};
			Datum		sv[4] = {ObjectIdGetDatum(relid), CStringGetTextDatum(m->tgname), (Datum) 0, Int64GetDatum(rows)};

			if (done)
			{
				ca_prepare(&plan_state_done,
						   "DELETE FROM customer_account.capture_backfill_state"
						   " WHERE source = $1::pg_catalog.regclass AND trigger_name = $2", 2, types);
				ca_execute(plan_state_done, sv, NULL, false, 0);
			}
			else
			{
				sv[2] = CStringGetTextDatum(last_key ? last_key : "");
				ca_prepare(&plan_state_write,
						   "INSERT INTO customer_account.capture_backfill_state AS s (source, trigger_name, last_key, rows_done)"
						   " VALUES ($1::pg_catalog.regclass, $2, $3, $4) ON CONFLICT (source, trigger_name) DO UPDATE SET"
						   " last_key = EXCLUDED.last_key, rows_done = s.rows_done + EXCLUDED.rows_done, updated_at = now()",
						   4, types);
				ca_execute(plan_state_write, sv, NULL, false, 0);
			}
		}
		values[0] = DirectFunctionCall1(namein, CStringGetDatum(m->tgname));
		values[1] = Int64GetDatum(rows);
		values[2] = Int64GetDatum(counts[OUT_BOOKED]);
		values[3] = Int64GetDatum(counts[OUT_CHANGED]);
		values[4] = Int64GetDatum(counts[OUT_UNCHANGED]);
		values[5] = Int64GetDatum(counts[OUT_NOT_BOOKED]);
		values[6] = Int64GetDatum(counts[OUT_WAITING]);
		values[7] = Int64GetDatum(counts[OUT_QUARANTINED]);
		values[8] = BoolGetDatum(done);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	ca_finish();
	table_close(rel, AccessShareLock);
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * replay_quarantine(source regclass DEFAULT NULL)
 * ------------------------------------------------------------------------
 */
typedef struct QRow
{
	int64		id;
	Oid			relid;
	char	   *tgname;
	char	   *kind;
	char	   *key;
} QRow;

PG_FUNCTION_INFO_V1(replay_quarantine);
Datum
replay_quarantine(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			only = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	QRow	   *rows;
	int			n;
	MemoryContext outer = CurrentMemoryContext;

	InitMaterializedSRF(fcinfo, 0);
	if (OidIsValid(only))
		require_select(only);
	ca_connect();
	{
		Oid			types[1] = {OIDOID};
		Datum		v = ObjectIdGetDatum(only);
		char		nulls[1] = {OidIsValid(only) ? ' ' : 'n'};

		if (SPI_execute_with_args("SELECT quarantine_id, source::pg_catalog.oid, trigger_name::text, kind, source_key"
								  " FROM customer_account.capture_quarantine"
								  " WHERE resolved_at IS NULL AND ($1 IS NULL OR source = $1::pg_catalog.regclass)"
								  " ORDER BY quarantine_id FOR UPDATE",
								  1, types, &v, nulls, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the quarantine");
	}
	n = (int) SPI_processed;
	rows = MemoryContextAlloc(outer, sizeof(QRow) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(outer);

		rows[i].id = ca_get_int64(i, 1, NULL);
		rows[i].relid = DatumGetObjectId(ca_get_datum(i, 2, NULL));
		rows[i].tgname = ca_get_text(i, 3);
		rows[i].kind = ca_get_text(i, 4);
		rows[i].key = ca_get_text(i, 5);
		MemoryContextSwitchTo(old);
	}
	for (int i = 0; i < n; i++)
	{
		QRow	   *q = &rows[i];
		Relation	rel = try_table_open(q->relid, AccessShareLock);
		const Trigger *t = NULL;
		char	   *outcome = NULL;
		Datum		values[4];
		bool		nulls[4] = {false, false, q->key == NULL, false};
		bool		resolved = false;
		ErrorData  *err = NULL;

		if (rel == NULL)
			outcome = "kept: the table no longer exists";
		else
		{
			int			want = strcmp(q->kind, "order") == 0 ? CAPTURE_ORDER : strcmp(q->kind, "line") == 0 ? CAPTURE_LINE :
			strcmp(q->kind, "payment") == 0 ? CAPTURE_PAYMENT : CAPTURE_RETURN;

			require_select(q->relid);
			t = capture_find_trigger(rel, InvalidOid, q->tgname);
			if (t == NULL || capture_kind_of_function(t->tgfoid) != want)
			{
				/* recreated under another name: the one trigger of that kind */
				t = NULL;
				if (rel->trigdesc)
					for (int k = 0; k < rel->trigdesc->numtriggers; k++)
						if (capture_kind_of_function(rel->trigdesc->triggers[k].tgfoid) == want)
							t = &rel->trigdesc->triggers[k];
			}
			if (t == NULL)
				outcome = "kept: the table has no capture trigger of this kind";
			else if (q->key == NULL)
				outcome = "kept: the row had no key; fix the row in the shop";
			else
			{
				Job			j;
				Relation	orel = NULL;
				Outcome		out;

				memset(&j, 0, sizeof(j));
				j.map = capture_map_get(rel, t, (CaptureKind) want);
				j.rel = rel;
				j.key = q->key;
				if (want == CAPTURE_LINE)
				{
					/* a line is replayed as its order, lines compared */
					Oid			order_relid;
					Oid			order_tg = capture_find_order_trigger(q->relid, &order_relid);

					if (OidIsValid(order_tg))
					{
						const Trigger *ot;

						orel = table_open(order_relid, AccessShareLock);
						ot = capture_find_trigger(orel, order_tg, NULL);
						j.map = capture_map_get(orel, ot, CAPTURE_ORDER);
						j.rel = orel;
						j.check_lines = true;
					}
					else
						outcome = "kept: no capture_order trigger names this table in lines=";
				}
				else
					j.check_lines = true;
				if (outcome == NULL)
				{
					out = run_job_guarded(&j, false, &err);
					if (err == NULL)
					{
						outcome = psprintf("replayed: %s", outcome_names[out]);
						resolved = true;
					}
					else
						outcome = psprintf("failed again: %s: %s", unpack_sql_state(err->sqlerrcode), error_reason(err));
				}
				if (orel)
					table_close(orel, AccessShareLock);
			}
			table_close(rel, AccessShareLock);
		}
		{
			Oid			types[5] = {INT8OID, BOOLOID, TEXTOID, TEXTOID, TEXTOID};
			Datum		uv[5];
			char		un[5] = {' ', ' ', ' ', 'n', 'n'};

			uv[0] = Int64GetDatum(q->id);
			uv[1] = BoolGetDatum(resolved);
			uv[2] = CStringGetTextDatum(outcome);
			if (err)
			{
				uv[3] = CStringGetTextDatum(unpack_sql_state(err->sqlerrcode));
				uv[4] = CStringGetTextDatum(error_reason(err));
				un[3] = un[4] = ' ';
			}
			if (SPI_execute_with_args("UPDATE customer_account.capture_quarantine SET"
									  " resolved_at = CASE WHEN $2 THEN now() END,"
									  " resolution = CASE WHEN $2 THEN $3 END,"
									  " sqlstate = coalesce($4, sqlstate), reason = coalesce($5, reason),"
									  " attempts = attempts + CASE WHEN $2 THEN 0 ELSE 1 END, last_seen = now()"
									  " WHERE quarantine_id = $1",
									  5, types, uv, un, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not update the quarantine");
		}
		values[0] = Int64GetDatum(q->id);
		values[1] = ObjectIdGetDatum(q->relid);
		values[2] = q->key ? CStringGetTextDatum(q->key) : (Datum) 0;
		values[3] = CStringGetTextDatum(outcome);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	ca_finish();
	return (Datum) 0;
}

/* ------------------------------------------------------------------------
 * check_capture(trigger_table regclass, scan_data bool): every capture
 * trigger of a table, checked at once
 * ------------------------------------------------------------------------
 */
typedef struct CheckOut
{
	ReturnSetInfo *rsinfo;
	const char *tgname;
	const char *function;
	int			problems;
} CheckOut;

static void
check_emit(CheckOut *co, bool ok, const char *problem)
{
	Datum		values[4];
	bool		nulls[4] = {false, false, false, problem == NULL};

	values[0] = DirectFunctionCall1(namein, CStringGetDatum(co->tgname));
	values[1] = CStringGetTextDatum(co->function);
	values[2] = BoolGetDatum(ok);
	values[3] = problem ? CStringGetTextDatum(problem) : (Datum) 0;
	tuplestore_putvalues(co->rsinfo->setResult, co->rsinfo->setDesc, values, nulls);
	if (!ok)
		co->problems++;
}

static bool
row_exists(const char *sql, const char *value)
{
	Oid			types[1] = {TEXTOID};
	Datum		v = CStringGetTextDatum(value);

	ca_execute(dyn_plan(sql, 1, types), &v, NULL, true, 1);
	return SPI_processed > 0;
}

static bool
known_method(const char *code)
{
	return row_exists("SELECT 1 FROM customer_account.payment_method WHERE code = $1", code);
}

static bool
known_channel(const char *code)
{
	return row_exists("SELECT 1 FROM customer_account.channel WHERE code = $1", code);
}

/* the distinct values of a mapped column that the map or the tables do not take */
static void
check_column_values(CheckOut *co, const CaptureMap *m, CaptureSetting s)
{
	const CaptureSource *src = &m->src[s];
	char	   *sql;
	SPITupleTable *tt;
	uint64		n;

	if (src->kind != SRC_COLUMN)
		return;
	sql = psprintf("SELECT DISTINCT _ca_row.%s::text FROM %s _ca_row WHERE _ca_row.%s IS NOT NULL LIMIT 1000",
				   quote_identifier(src->colname), m->relname, quote_identifier(src->colname));
	ca_execute(dyn_plan(sql, 0, NULL), NULL, NULL, true, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		char	   *v = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		char	   *problem = NULL;

		if (s == CS_STATUS)
		{
			const char *mapped = capture_lookup(&m->status_map, v);
			const char *const *events = m->kind == CAPTURE_ORDER ? order_event_names
				: book_event_names;
			bool		ok = false;

			if (mapped == NULL)
				mapped = v;
			for (int e = 0; events[e]; e++)
				if (strcmp(events[e], mapped) == 0)
					ok = true;
			if (!ok)
				problem = psprintf("value \"%s\" of column \"%s\" is in the table but not in %s", v, src->colname,
								   m->src[CS_STATUS_MAP].argno ? m->src[CS_STATUS_MAP].arg : "a status_map= argument");
		}
		else if (s == CS_METHOD)
		{
			const char *mapped = capture_lookup(&m->method_map, v);

			if (!known_method(mapped ? mapped : v))
				problem = mapped ? psprintf("value \"%s\" of column \"%s\" maps to \"%s\", which is not a payment method",
											v, src->colname, mapped)
					: psprintf("value \"%s\" of column \"%s\" is in the table but neither a payment method nor in %s",
							   v, src->colname, m->src[CS_METHOD_MAP].argno ? m->src[CS_METHOD_MAP].arg : "a method_map= argument");
		}
		else if (s == CS_CHANNEL)
		{
			if (!known_channel(v))
				problem = psprintf("value \"%s\" of column \"%s\" is in the table but not a channel (add_channel)", v, src->colname);
		}
		else if (s == CS_CURRENCY)
		{
			char	   *c = upper_trim(v);
			int32		code = currency_pack(c, strlen(c));

			if (code < 0 || currency_minor_units(code) < 0)
				problem = psprintf("value \"%s\" of column \"%s\" is not an ISO 4217 currency", v, src->colname);
		}
		if (problem)
			check_emit(co, false, problem);
	}
}

/* does rel have an index that starts with attno? */
static bool
has_leading_index(Relation rel, AttrNumber attno)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		HeapTuple	it = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));

		if (HeapTupleIsValid(it))
		{
			Form_pg_index idx = (Form_pg_index) GETSTRUCT(it);

			if (idx->indnkeyatts > 0 && idx->indkey.values[0] == attno)
				found = true;
			ReleaseSysCache(it);
		}
	}
	list_free(indexes);
	return found;
}

/* parse a trigger's arguments; NULL and the message (with its hint) on failure */
static CaptureMap *
try_parse(Relation rel, const Trigger *t, CaptureKind kind, char **why)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "check_capture", ALLOCSET_SMALL_SIZES);
	CaptureMap *volatile m = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		m = capture_parse(rel, t, kind, cxt);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *err;

		MemoryContextSwitchTo(oldcontext);
		err = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		*why = err->hint ? psprintf("%s (%s)", err->message, err->hint) : err->message;
		m = NULL;
	}
	PG_END_TRY();
	return m;
}

/* the checks that need data: constants, value maps, links, indexes */
static void
check_data(CheckOut *co, Relation rel, CaptureMap *m, bool scan_data)
{
	if (m->src[CS_CHANNEL].kind == SRC_CONST && !known_channel(m->src[CS_CHANNEL].value))
		check_emit(co, false, psprintf("argument \"%s\": channel \"%s\" does not exist (add_channel)",
									   m->src[CS_CHANNEL].arg, m->src[CS_CHANNEL].value));
	if (m->src[CS_METHOD].kind == SRC_CONST)
	{
		const char *mapped = capture_lookup(&m->method_map, m->src[CS_METHOD].value);

		if (!known_method(mapped ? mapped : m->src[CS_METHOD].value))
			check_emit(co, false, psprintf("argument \"%s\": \"%s\" is not a payment method",
										   m->src[CS_METHOD].arg, mapped ? mapped : m->src[CS_METHOD].value));
	}
	for (int i = 0; i < m->method_map.n; i++)
		if (!known_method(m->method_map.to[i]))
			check_emit(co, false, psprintf("argument \"%s\" maps \"%s\" to \"%s\", which is not a payment method",
										   m->src[CS_METHOD_MAP].arg, m->method_map.from[i], m->method_map.to[i]));
	if (m->method_map.other && !known_method(m->method_map.other))
		check_emit(co, false, psprintf("argument \"%s\" maps * to \"%s\", which is not a payment method",
									   m->src[CS_METHOD_MAP].arg, m->method_map.other));
	if (m->kind == CAPTURE_ORDER && OidIsValid(m->lines_relid))
	{
		Relation	lrel = try_table_open(m->lines_relid, AccessShareLock);
		int			nline = 0;
		const Trigger *lt = NULL;

		if (lrel && lrel->trigdesc)
			for (int i = 0; i < lrel->trigdesc->numtriggers; i++)
				if (capture_kind_of_function(lrel->trigdesc->triggers[i].tgfoid) == CAPTURE_LINE)
				{
					nline++;
					lt = &lrel->trigdesc->triggers[i];
				}
		if (nline != 1)
			check_emit(co, false, psprintf("argument \"%s\": table %s has %d capture_order_line triggers; it needs one",
										   m->src[CS_LINES].arg, get_rel_name(m->lines_relid), nline));
		else
		{
			char	   *why = NULL;
			CaptureMap *lm = try_parse(lrel, lt, CAPTURE_LINE, &why);

			if (lm == NULL)
				check_emit(co, false, psprintf("the capture_order_line trigger of %s does not parse: %s",
											   get_rel_name(m->lines_relid), why));
			else if (lm->src[CS_ORDER_NO].kind == SRC_COLUMN && !has_leading_index(lrel, lm->src[CS_ORDER_NO].attno))
				check_emit(co, false, psprintf("table %s has no index on column \"%s\": every booking reads an order's lines by it",
											   get_rel_name(m->lines_relid), lm->src[CS_ORDER_NO].colname));
		}
		if (lrel)
			table_close(lrel, AccessShareLock);
	}
	if (m->kind == CAPTURE_LINE)
	{
		Oid			orel;

		if (!OidIsValid(capture_find_order_trigger(m->relid, &orel)))
			check_emit(co, false, psprintf("no capture_order trigger names %s in lines=", m->relname));
	}
	if (m->kind == CAPTURE_RETURN && !OidIsValid(accept_return_oid()))
		check_emit(co, false, "customer_account.accept_return() is not installed: returns wait in the quarantine");
	if (m->kind != CAPTURE_LINE && m->src[key_setting(m->kind)].kind == SRC_COLUMN
		&& !has_leading_index(rel, m->src[key_setting(m->kind)].attno))
		check_emit(co, false, psprintf("table %s has no index on its key column \"%s\": commit-time bookings read rows by it",
									   m->relname, m->src[key_setting(m->kind)].colname));
	if (scan_data)
	{
		check_column_values(co, m, CS_STATUS);
		check_column_values(co, m, CS_METHOD);
		check_column_values(co, m, CS_CHANNEL);
		check_column_values(co, m, CS_CURRENCY);
	}
}

PG_FUNCTION_INFO_V1(check_capture);
Datum
check_capture(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	bool		scan_data = PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	CheckOut	co;
	volatile int seen = 0;

	InitMaterializedSRF(fcinfo, 0);
	require_select(relid);
	rel = table_open(relid, AccessShareLock);
	co.rsinfo = rsinfo;
	ca_connect();
	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		const Trigger *t = &rel->trigdesc->triggers[i];
		int			kind = capture_kind_of_function(t->tgfoid);
		CaptureMap *m;
		char	   *why = NULL;

		if (kind < 0)
			continue;
		seen++;
		co.tgname = t->tgname;
		co.function = capture_function_names[kind];
		co.problems = 0;
		if (!TRIGGER_FOR_ROW(t->tgtype) || TRIGGER_FOR_BEFORE(t->tgtype) || TRIGGER_FOR_INSTEAD(t->tgtype))
			check_emit(&co, false, "a capture trigger is AFTER INSERT OR UPDATE ... FOR EACH ROW");
		m = try_parse(rel, t, (CaptureKind) kind, &why);
		if (m == NULL)
			check_emit(&co, false, why);
		if (m != NULL)
			check_data(&co, rel, m, scan_data);
		if (co.problems == 0)
			check_emit(&co, true, NULL);
	}
	ca_finish();
	if (seen == 0)
		ereport(NOTICE,
				(errmsg("table %s has no capture triggers", RelationGetRelationName(rel))));
	table_close(rel, AccessShareLock);
	return (Datum) 0;
}

/*
 * capture_validate(trigger oid): the structural check when a capture
 * trigger is created (called by the extension's event trigger), so that a
 * mapping naming a missing column fails CREATE TRIGGER itself.
 */
PG_FUNCTION_INFO_V1(capture_validate);
Datum
capture_validate(PG_FUNCTION_ARGS)
{
	Oid			tgoid = PG_GETARG_OID(0);
	Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(tgoid));
	scan = systable_beginscan(tgrel, TriggerOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_trigger t = (Form_pg_trigger) GETSTRUCT(tup);
		int			kind = capture_kind_of_function(t->tgfoid);

		if (kind >= 0)
		{
			Trigger		trigger;
			Relation	rel = table_open(t->tgrelid, AccessShareLock);
			MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "capture_validate", ALLOCSET_SMALL_SIZES);
			bool		isnull;

			if (!TRIGGER_FOR_ROW(t->tgtype) || TRIGGER_FOR_BEFORE(t->tgtype) || TRIGGER_FOR_INSTEAD(t->tgtype)
				|| !(TRIGGER_FOR_INSERT(t->tgtype) || TRIGGER_FOR_UPDATE(t->tgtype)))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
						 errmsg("capture trigger \"%s\" on %s must be AFTER INSERT OR UPDATE ... FOR EACH ROW",
								NameStr(t->tgname),
								quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
														   RelationGetRelationName(rel)))));
			memset(&trigger, 0, sizeof(trigger));
			trigger.tgoid = tgoid;
			trigger.tgname = NameStr(t->tgname);
			trigger.tgfoid = t->tgfoid;
			trigger.tgtype = t->tgtype;
			trigger.tgnargs = t->tgnargs;
			if (t->tgnargs > 0)
			{
				bytea	   *args = DatumGetByteaPP(heap_getattr(tup, Anum_pg_trigger_tgargs,
															  RelationGetDescr(tgrel), &isnull));
				char	   *p = VARDATA_ANY(args);

				trigger.tgargs = palloc(sizeof(char *) * t->tgnargs);
				for (int i = 0; i < t->tgnargs; i++)
				{
					trigger.tgargs[i] = pstrdup(p);
					p += strlen(p) + 1;
				}
			}
			(void) capture_parse(rel, &trigger, (CaptureKind) kind, cxt);
			MemoryContextDelete(cxt);
			table_close(rel, AccessShareLock);
		}
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	PG_RETURN_VOID();
}
