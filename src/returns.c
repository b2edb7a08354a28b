/*-------------------------------------------------------------------------
 *
 * returns.c
 *	  decide_return() and the facts every return decision is taken on.
 *
 *	  A till must never wait, so the facts are read without SQL: direct
 *	  B-tree lookups of the order, its lines of the SKU, the returns and
 *	  refunds of the order, and (only for orders not settled at once) the
 *	  order's open items, what paid them and with which method.  The account
 *	  figures come from direct.c (customer, state row, monthly counters,
 *	  unsettled items), the policy from the caches of config.c and
 *	  return_policy.c.  The rules are in return_rules.c; accept_return() and
 *	  announce_return() in return_book.c take the same facts under the
 *	  customer's lock.
 *
 *	  No permission check happens here: decide_return() is not granted to
 *	  PUBLIC, and EXECUTE on it is the authorisation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "money.h"
#include "payment.h"
#include "posting.h"
#include "reason.h"
#include "return_rules.h"
#include "returns.h"
#include "spi_util.h"
#include "relcache_watch.h"

#define KIND_WEBSHOP	0
#define KIND_STORE		1
#define KIND_MARKETPLACE 2

/* ------------------------------------------------------------------------
 * relations and attribute numbers, resolved once per backend
 * ------------------------------------------------------------------------
 */
typedef struct RetRels
{
	bool		valid;
	Oid			orders,
				orders_pkey,
				line,
				line_pkey,
				request,
				request_pkey,
				rline,
				rline_order,
				refund,
				refund_order,
				item,
				item_order,
				appl,
				appl_item,
				payment,
				payment_pkey;
	/* orders */
	AttrNumber	o_customer,
				o_channel,
				o_method,
				o_total,
				o_placed,
				o_delivered,
				o_cancelled;
	/* order_line */
	AttrNumber	l_sku,
				l_qty,
				l_price,
				l_returnable,
				l_category;
	/* return_request */
	AttrNumber	q_order,
				q_announced_at;
	/* return_line */
	AttrNumber	rl_return,
				rl_line,
				rl_qty,
				rl_status;
	/* return_refund */
	AttrNumber	rf_tender,
				rf_ref,
				rf_refund;
	/* open_item */
	AttrNumber	i_id,
				i_customer,
				i_kind,
				i_open,
				i_due,
				i_settled,
				i_disputed;
	/* item_application */
	AttrNumber	a_ref,
				a_amount,
				a_applied;
	/* payment */
	AttrNumber	p_method;
} RetRels;

static RetRels rr;
static bool rels_callback_registered = false;

static void
rels_callback(Datum arg, Oid relid)
{
	/* any change to one of ours (or everything) is rare: resolve all again */
	if (!OidIsValid(relid) || relid == rr.orders || relid == rr.line || relid == rr.request
		|| relid == rr.rline || relid == rr.refund || relid == rr.item || relid == rr.appl
		|| relid == rr.payment || relid == rr.orders_pkey || relid == rr.line_pkey
		|| relid == rr.request_pkey || relid == rr.rline_order || relid == rr.refund_order
		|| relid == rr.item_order || relid == rr.appl_item || relid == rr.payment_pkey)
		rr.valid = false;
}

/* a relation of the extension's schema by name */
static Oid
rel(Oid nsp, const char *name)
{
	Oid			oid = get_relname_relid(name, nsp);

	if (!OidIsValid(oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation customer_account.%s does not exist", name),
				 errhint("Update the extension: ALTER EXTENSION customer_account UPDATE.")));
	return oid;
}

/* a column number by name */
static AttrNumber
attr(Oid relid, const char *name)
{
	AttrNumber	a = get_attnum(relid, name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column %s of relation %u not found", name, relid);
	return a;
}

/* resolve the relations and columns once per backend (again after a change) */
static void
ensure_rels(void)
{
	Oid			nsp;

	if (!rels_callback_registered)
	{
		ca_watch_relcache(rels_callback);
		rels_callback_registered = true;
	}
	AcceptInvalidationMessages();
	if (rr.valid)
		return;
	nsp = get_namespace_oid("customer_account", false);
	rr.orders = rel(nsp, "orders");
	rr.orders_pkey = rel(nsp, "orders_pkey");
	rr.line = rel(nsp, "order_line");
	rr.line_pkey = rel(nsp, "order_line_pkey");
	rr.request = rel(nsp, "return_request");
	rr.request_pkey = rel(nsp, "return_request_pkey");
	rr.rline = rel(nsp, "return_line");
	rr.rline_order = rel(nsp, "return_line_order");
	rr.refund = rel(nsp, "return_refund");
	rr.refund_order = rel(nsp, "return_refund_order");
	rr.item = rel(nsp, "open_item");
	rr.item_order = rel(nsp, "open_item_order");
	rr.appl = rel(nsp, "item_application");
	rr.appl_item = rel(nsp, "item_application_item");
	rr.payment = rel(nsp, "payment");
	rr.payment_pkey = rel(nsp, "payment_pkey");

	rr.o_customer = attr(rr.orders, "customer_id");
	rr.o_channel = attr(rr.orders, "channel");
	rr.o_method = attr(rr.orders, "payment_method");
	rr.o_total = attr(rr.orders, "total");
	rr.o_placed = attr(rr.orders, "placed_at");
	rr.o_delivered = attr(rr.orders, "delivered_at");
	rr.o_cancelled = attr(rr.orders, "cancelled_at");
	rr.l_sku = attr(rr.line, "sku");
	rr.l_qty = attr(rr.line, "qty");
	rr.l_price = attr(rr.line, "unit_price");
	rr.l_returnable = attr(rr.line, "returnable");
	rr.l_category = attr(rr.line, "category");
	rr.q_order = attr(rr.request, "order_no");
	rr.q_announced_at = attr(rr.request, "announced_at");
	rr.rl_return = attr(rr.rline, "return_no");
	rr.rl_line = attr(rr.rline, "line_no");
	rr.rl_qty = attr(rr.rline, "qty");
	rr.rl_status = attr(rr.rline, "status");
	rr.rf_tender = attr(rr.refund, "tender");
	rr.rf_ref = attr(rr.refund, "payment_ref");
	rr.rf_refund = attr(rr.refund, "refund");
	rr.i_id = attr(rr.item, "item_id");
	rr.i_customer = attr(rr.item, "customer_id");
	rr.i_kind = attr(rr.item, "kind");
	rr.i_open = attr(rr.item, "open");
	rr.i_due = attr(rr.item, "due_at");
	rr.i_settled = attr(rr.item, "settled_at");
	rr.i_disputed = attr(rr.item, "disputed");
	rr.a_ref = attr(rr.appl, "payment_ref");
	rr.a_amount = attr(rr.appl, "amount");
	rr.a_applied = attr(rr.appl, "applied_at");
	rr.p_method = attr(rr.payment, "method");
	rr.valid = true;
}

/* ------------------------------------------------------------------------
 * index scans: equality keys on the leading index columns
 * ------------------------------------------------------------------------
 */
typedef struct IdxScan
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
} IdxScan;

/* open heap and index and start a scan with equality keys on the first columns */
static void
scan_open(IdxScan *s, Oid heap, Oid index, Snapshot snap, int nkeys, const RegProcedure *procs,
		  const Datum *args)
{
	ScanKeyData keys[2];

	Assert(nkeys <= 2);
	s->heap = table_open(heap, AccessShareLock);
	s->index = index_open(index, AccessShareLock);
	s->slot = table_slot_create(s->heap, NULL);
	for (int i = 0; i < nkeys; i++)
		ScanKeyEntryInitialize(&keys[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
							   s->index->rd_indcollation[i], procs[i], args[i]);
	s->scan = index_beginscan(s->heap, s->index, snap, nkeys, 0);
	index_rescan(s->scan, keys, nkeys, NULL, 0);
}

/* the next visible row, in index order */
static bool
scan_next(IdxScan *s)
{
	return index_getnext_slot(s->scan, ForwardScanDirection, s->slot);
}

/* end the scan and close both relations */
static void
scan_close(IdxScan *s)
{
	index_endscan(s->scan);
	ExecDropSingleTupleTableSlot(s->slot);
	index_close(s->index, AccessShareLock);
	table_close(s->heap, AccessShareLock);
}

/* one text key */
static void
scan_text(IdxScan *s, Oid heap, Oid index, Snapshot snap, const char *key)
{
	RegProcedure proc = F_TEXTEQ;
	Datum		arg = PointerGetDatum(cstring_to_text(key));

	scan_open(s, heap, index, snap, 1, &proc, &arg);
}

/* a column of the current row */
static Datum
get(IdxScan *s, AttrNumber a, bool *isnull)
{
	return slot_getattr(s->slot, a, isnull);
}

/* a text column into buf (empty when NULL); returns whether it was set */
static bool
get_text(IdxScan *s, AttrNumber a, char *buf, int buflen)
{
	bool		n;
	Datum		d = get(s, a, &n);

	buf[0] = '\0';
	if (!n)
	{
		text	   *t = DatumGetTextPP(d);
		int			len = Min((int) VARSIZE_ANY_EXHDR(t), buflen - 1);

		if ((int) VARSIZE_ANY_EXHDR(t) > buflen - 1)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a value of %d bytes is longer than returns can handle (%d)",
							(int) VARSIZE_ANY_EXHDR(t), buflen - 1)));
		memcpy(buf, VARDATA_ANY(t), len);
		buf[len] = '\0';
	}
	return !n;
}

/* does a text column hold exactly s?  (no copy, no length limit) */
static bool
text_equals(IdxScan *s, AttrNumber a, const char *str)
{
	bool		n;
	Datum		d = get(s, a, &n);
	text	   *t;

	if (n)
		return false;
	t = DatumGetTextPP(d);
	return VARSIZE_ANY_EXHDR(t) == strlen(str) && memcmp(VARDATA_ANY(t), str, strlen(str)) == 0;
}

/* a timestamptz column; has: whether it is set */
static TimestampTz
get_ts(IdxScan *s, AttrNumber a, bool *has)
{
	bool		n;
	Datum		d = get(s, a, &n);

	*has = !n;
	return n ? 0 : DatumGetTimestampTz(d);
}

/* ------------------------------------------------------------------------
 * the order, and the return a till names
 * ------------------------------------------------------------------------
 */
static bool
read_order(const char *order_no, Snapshot snap, ReturnCase *rc)
{
	IdxScan		s;
	bool		found;

	scan_text(&s, rr.orders, rr.orders_pkey, snap, order_no);
	found = scan_next(&s);
	if (found)
	{
		bool		n;
		bool		has;
		CurrencyAmount *total;

		strlcpy(rc->order_no, order_no, sizeof(rc->order_no));
		rc->customer_id = DatumGetInt64(get(&s, rr.o_customer, &n));
		get_text(&s, rr.o_channel, rc->sold_channel, sizeof(rc->sold_channel));
		get_text(&s, rr.o_method, rc->method, sizeof(rc->method));
		total = DatumGetCurrencyAmountP(get(&s, rr.o_total, &n));
		rc->total = total->units;
		rc->code = total->code;
		ca_currency_unpack(total->code, rc->currency);
		rc->placed_at = get_ts(&s, rr.o_placed, &has);
		rc->delivered_at = get_ts(&s, rr.o_delivered, &rc->has_delivered);
		(void) get_ts(&s, rr.o_cancelled, &rc->cancelled);
	}
	scan_close(&s);
	return found;
}

/* the order of a return number; false when there is no such return */
static bool
read_return(const char *return_no, Snapshot snap, char *order_no, int order_len, bool *announced,
			TimestampTz *announced_at)
{
	IdxScan		s;
	bool		found;

	scan_text(&s, rr.request, rr.request_pkey, snap, return_no);
	found = scan_next(&s);
	if (found)
	{
		get_text(&s, rr.q_order, order_no, order_len);
		*announced_at = get_ts(&s, rr.q_announced_at, announced);
	}
	scan_close(&s);
	return found;
}

/* a return by number, for the booking code */
bool
ca_return_read(const char *return_no, Snapshot snap, char *order_no, int order_len, bool *announced,
					TimestampTz *announced_at)
{
	ensure_rels();
	return read_return(return_no, snap, order_no, order_len, announced, announced_at);
}

/* the order (or return) a till names, with its channel and method */
void
ca_return_resolve(const char *order_or_return_no, Snapshot snap, ReturnCase *rc)
{
	char		order_no[128];
	const ChannelConf *ch;
	const MethodConf *methods;
	int			n;

	ensure_rels();
	memset(rc, 0, sizeof(*rc));
	if (!read_order(order_or_return_no, snap, rc))
	{
		if (!read_return(order_or_return_no, snap, order_no, sizeof(order_no), &rc->announced,
						 &rc->announced_at))
			ereport(ERROR,
					(errcode(ERRCODE_CA_UNKNOWN),
					 errmsg("unknown order or return number \"%s\"", order_or_return_no)));
		if (!read_order(order_no, snap, rc))
			elog(ERROR, "order \"%s\" of return \"%s\" not found", order_no, order_or_return_no);
		rc->by_return = true;
		strlcpy(rc->return_no, order_or_return_no, sizeof(rc->return_no));
	}
	ch = ca_channel(rc->sold_channel);
	rc->sold_kind = ch->kind;
	rc->method_settlement = 'c';
	methods = ca_methods(&n);
	for (int i = 0; i < n; i++)
		if (strcmp(methods[i].code, rc->method) == 0)
			rc->method_settlement = methods[i].settlement;
}

/* ------------------------------------------------------------------------
 * the facts
 * ------------------------------------------------------------------------
 */

/* the lines of the SKU, in line order, with the policy that applies to each */
static void
gather_lines(ReturnCase *rc, const char *sku, Snapshot snap, ReturnFacts *f)
{
	IdxScan		s;
	int32		channel_window = ca_return_channel(rc->sold_channel)->window_days;

	scan_text(&s, rr.line, rr.line_pkey, snap, rc->order_no);
	while (scan_next(&s))
	{
		char		category[256];
		bool		has_category;
		bool		n;
		ReturnLineFacts *l;
		bool		rule_returnable;

		if (!text_equals(&s, rr.l_sku, sku))
			continue;
		if (f->nlines >= RETURN_MAX_LINES)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("order \"%s\" has more than %d lines of SKU \"%s\"", rc->order_no,
							RETURN_MAX_LINES, sku)));
		has_category = get_text(&s, rr.l_category, category, sizeof(category));
		l = &f->lines[f->nlines++];
		l->qty = DatumGetInt32(get(&s, rr.l_qty, &n));
		l->unit_price = DatumGetCurrencyAmountP(get(&s, rr.l_price, &n))->units;
		l->returnable = DatumGetBool(get(&s, rr.l_returnable, &n));
		ca_return_rule(rc->sold_channel, rc->sold_kind, has_category ? category : NULL, sku,
					   channel_window, &l->window_days, &rule_returnable, &l->exchange_only);
		l->returnable = l->returnable && rule_returnable;
	}
	scan_close(&s);
}

#define MAX_RETURNS_SEEN 64

/*
 * Units of the SKU accepted back by earlier returns, and units reserved by
 * announcements of other returns that no till has decided yet.  A decision
 * of a return completes its announcement for the SKU.
 */
static void
gather_returned(ReturnCase *rc, const char *sku, Snapshot snap, ReturnFacts *f)
{
	IdxScan		s;
	RegProcedure procs[2] = {F_TEXTEQ, F_TEXTEQ};
	Datum		args[2];
	struct
	{
		char		return_no[128];
		int32		announced;
		int32		decided;
	}		   *seen = palloc0(sizeof(*seen) * MAX_RETURNS_SEEN);
	int			nseen = 0;

	args[0] = PointerGetDatum(cstring_to_text(rc->order_no));
	args[1] = PointerGetDatum(cstring_to_text(sku));
	rc->own_announced = 0;
	scan_open(&s, rr.rline, rr.rline_order, snap, 2, procs, args);
	while (scan_next(&s))
	{
		char		return_no[128];
		char		status[16];
		bool		n;
		int32		qty = DatumGetInt32(get(&s, rr.rl_qty, &n));
		int			k;

		get_text(&s, rr.rl_return, return_no, sizeof(return_no));
		get_text(&s, rr.rl_status, status, sizeof(status));
		if (strcmp(status, "accepted") == 0)
			f->returned += qty;
		if (status[0] != 'a' || status[1] != 'n')	/* accepted or rejected */
		{
			if (rc->return_no[0] != '\0' && strcmp(return_no, rc->return_no) == 0)
			{
				rc->decided_before = true;
				rc->decided_qty = qty;
				rc->decided_line = DatumGetInt32(get(&s, rr.rl_line, &n));
			}
		}
		for (k = 0; k < nseen; k++)
			if (strcmp(seen[k].return_no, return_no) == 0)
				break;
		if (k == nseen)
		{
			if (nseen == MAX_RETURNS_SEEN)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("SKU \"%s\" of order \"%s\" is on more than %d returns", sku, rc->order_no,
								MAX_RETURNS_SEEN)));
			strlcpy(seen[nseen++].return_no, return_no, sizeof(seen[0].return_no));
		}
		if (strcmp(status, "announced") == 0)
		{
			seen[k].announced += qty;
			if (rc->return_no[0] != '\0' && strcmp(return_no, rc->return_no) == 0)
				rc->own_announced += qty;
		}
		else
			seen[k].decided += qty;
	}
	scan_close(&s);
	for (int k = 0; k < nseen; k++)
		if (seen[k].decided == 0 && strcmp(seen[k].return_no, rc->return_no) != 0)
			f->reserved += seen[k].announced;
	pfree(seen);
}

typedef struct Refunded
{
	int64		order;			/* refunded on the order's own payment */
	int			n;
	char		(*refs)[128];
	int64	   *amounts;
} Refunded;

/* what earlier returns of the order paid back, per tender */
static void
gather_refunded(ReturnCase *rc, Snapshot snap, Refunded *r)
{
	IdxScan		s;
	int			cap = 8;

	r->order = 0;
	r->n = 0;
	r->refs = palloc(sizeof(*r->refs) * cap);
	r->amounts = palloc(sizeof(int64) * cap);
	scan_text(&s, rr.refund, rr.refund_order, snap, rc->order_no);
	while (scan_next(&s))
	{
		char		tender[16];
		char		ref[128];
		bool		n;
		int64		units = DatumGetCurrencyAmountP(get(&s, rr.rf_refund, &n))->units;
		int			k;

		get_text(&s, rr.rf_tender, tender, sizeof(tender));
		if (strcmp(tender, "order") == 0)
			r->order += units;
		if (strcmp(tender, "payment") != 0)
			continue;
		get_text(&s, rr.rf_ref, ref, sizeof(ref));
		for (k = 0; k < r->n; k++)
			if (strcmp(r->refs[k], ref) == 0)
				break;
		if (k == r->n)
		{
			if (r->n == cap)
			{
				cap *= 2;
				r->refs = repalloc(r->refs, sizeof(*r->refs) * cap);
				r->amounts = repalloc(r->amounts, sizeof(int64) * cap);
			}
			strlcpy(r->refs[r->n], ref, sizeof(r->refs[0]));
			r->amounts[r->n++] = 0;
		}
		r->amounts[k] += units;
	}
	scan_close(&s);
}

/* what earlier returns paid back on one payment */
static int64
refunded_of(const Refunded *r, const char *ref)
{
	for (int k = 0; k < r->n; k++)
		if (strcmp(r->refs[k], ref) == 0)
			return r->amounts[k];
	return 0;
}

/* the way money paid by a method goes back */
static TenderRoute
method_route(const ReturnCase *rc, const char *method)
{
	if (rc->sold_kind == KIND_MARKETPLACE || strcmp(method, "marketplace") == 0)
		return TENDER_MARKETPLACE;
	if (strcmp(method, "cash") == 0)
		return TENDER_CASH;
	if (strcmp(method, "store_credit") == 0)
		return TENDER_STORE_CREDIT;
	return TENDER_ORIGINAL;
}

typedef struct Application
{
	char		ref[128];
	int64		amount;
	TimestampTz applied_at;
} Application;

/* in the order the money came; the reference breaks a tie */
static int
application_cmp(const void *a, const void *b)
{
	const Application *x = a;
	const Application *y = b;

	if (x->applied_at != y->applied_at)
		return x->applied_at < y->applied_at ? -1 : 1;
	return strcmp(x->ref, y->ref);
}

/* the method of a payment reference; false when it is not a payment */
static bool
payment_method_of(const char *ref, Snapshot snap, char *method, int len)
{
	IdxScan		s;
	bool		found;

	scan_text(&s, rr.payment, rr.payment_pkey, snap, ref);
	found = scan_next(&s);
	if (found)
		get_text(&s, rr.p_method, method, len);
	scan_close(&s);
	return found;
}

/*
 * The order's open items: what is still unpaid and what of it is overdue.
 * Returns the ids of all its items (settled ones too: they were paid).
 */
static int64 *
gather_open_items(ReturnCase *rc, Snapshot snap, TimestampTz cutoff, ReturnFacts *f, int64 *own_overdue,
				  int *nitems)
{
	IdxScan		s;
	int			cap = 8;
	int64	   *ids = palloc(sizeof(int64) * cap);

	*own_overdue = 0;
	*nitems = 0;
	scan_text(&s, rr.item, rr.item_order, snap, rc->order_no);
	while (scan_next(&s))
	{
		bool		n;
		bool		settled;
		bool		has;
		char		kind[16];
		int64		open;

		if (DatumGetInt64(get(&s, rr.i_customer, &n)) != rc->customer_id)
			continue;
		if (*nitems == cap)
		{
			cap *= 2;
			ids = repalloc(ids, sizeof(int64) * cap);
		}
		ids[(*nitems)++] = DatumGetInt64(get(&s, rr.i_id, &n));
		(void) get_ts(&s, rr.i_settled, &settled);
		if (settled)
			continue;
		open = DatumGetInt64(get(&s, rr.i_open, &n));
		f->unpaid += open;
		get_text(&s, rr.i_kind, kind, sizeof(kind));
		if (strcmp(kind, "prepayment") != 0 && !DatumGetBool(get(&s, rr.i_disputed, &n))
			&& get_ts(&s, rr.i_due, &has) < cutoff)
			*own_overdue += open;
	}
	scan_close(&s);
	return ids;
}

/* the money applied to the items, one entry per payment reference, in the order it came */
static Application *
gather_applications(const int64 *item_ids, int nitems, Snapshot snap, int *napps)
{
	IdxScan		s;
	int			cap = 8;
	Application *apps = palloc(sizeof(Application) * cap);

	*napps = 0;
	for (int i = 0; i < nitems; i++)
	{
		RegProcedure proc = F_INT8EQ;
		Datum		arg = Int64GetDatum(item_ids[i]);

		scan_open(&s, rr.appl, rr.appl_item, snap, 1, &proc, &arg);
		while (scan_next(&s))
		{
			bool		n;
			bool		has;
			int			k;
			char		ref[128];

			get_text(&s, rr.a_ref, ref, sizeof(ref));
			for (k = 0; k < *napps; k++)
				if (strcmp(apps[k].ref, ref) == 0)
					break;
			if (k == *napps)
			{
				if (*napps == cap)
				{
					cap *= 2;
					apps = repalloc(apps, sizeof(Application) * cap);
				}
				strlcpy(apps[k].ref, ref, sizeof(apps[k].ref));
				apps[k].amount = 0;
				apps[k].applied_at = PG_INT64_MAX;
				(*napps)++;
			}
			apps[k].amount += DatumGetInt64(get(&s, rr.a_amount, &n));
			apps[k].applied_at = Min(apps[k].applied_at, get_ts(&s, rr.a_applied, &has));
		}
		scan_close(&s);
	}
	qsort(apps, *napps, sizeof(Application), application_cmp);
	return apps;
}

/*
 * The tenders of an order not settled at once: the money applied to its
 * items.  Applications made by a return of this order are reductions, not
 * money; a set-off from a return of another order came from credit we
 * owed, so it goes back as credit.
 */
static void
gather_items(ReturnCase *rc, Snapshot snap, TimestampTz cutoff, const Refunded *refunded,
			 ReturnFacts *f, int64 *own_overdue)
{
	int			nitems;
	int			napps;
	int64	   *item_ids = gather_open_items(rc, snap, cutoff, f, own_overdue, &nitems);
	Application *apps = gather_applications(item_ids, nitems, snap, &napps);

	for (int k = 0; k < napps; k++)
	{
		char		method[64];
		char		order_no[128];
		bool		announced;
		TimestampTz announced_at;
		TenderInfo *t;
		ReturnTender *ft;

		if (payment_method_of(apps[k].ref, snap, method, sizeof(method)))
			;
		else if (read_return(apps[k].ref, snap, order_no, sizeof(order_no), &announced, &announced_at)
				 && strcmp(order_no, rc->order_no) == 0)
			continue;			/* this order's own reduction */
		else
			strlcpy(method, "store_credit", sizeof(method));
		if (f->ntenders >= RETURN_MAX_TENDERS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("order \"%s\" was paid by more than %d payments", rc->order_no, RETURN_MAX_TENDERS)));
		t = &rc->tenders[f->ntenders];
		ft = &f->tenders[f->ntenders++];
		t->kind = TENDER_KIND_PAYMENT;
		strlcpy(t->payment_ref, apps[k].ref, sizeof(t->payment_ref));
		strlcpy(t->method, method, sizeof(t->method));
		ft->route = method_route(rc, method);
		ft->refundable = apps[k].amount - refunded_of(refunded, apps[k].ref);
	}
}

/* the customer: block, language, and the credit policy of the sale */
static void
gather_customer(ReturnCase *rc, Snapshot snap, ReturnFacts *f)
{
	CustomerRow c;
	const CreditPolicyConf *pol;

	ca_read_customer(rc->customer_id, snap, &c);
	f->blocked = c.blocked;
	strlcpy(rc->language, c.language, sizeof(rc->language));
	pol = ca_credit_policy(rc->sold_kind, c.has_group ? c.group : NULL, rc->currency);
	f->max_return_rate = pol->max_return_rate;
	f->return_rate_min_orders = pol->return_rate_min_orders;
	rc->overdue_grace_days = pol->overdue_grace_days;
}

/* the account: 12-month return rate (store sales only), overdue debt */
static void
gather_account(ReturnCase *rc, Snapshot snap, TimestampTz at, ReturnFacts *f, int64 *overdue_all)
{
	StateRow	st;

	*overdue_all = 0;
	if (ca_read_states(rc->customer_id, rc->currency, snap, &st, 1) != 1)
		return;
	if (f->store_sale)
	{
		DateADT		this_month = ca_month_of(at);
		PeriodSums	ps;

		ca_read_periods(rc->customer_id, rc->currency, ca_month_minus(this_month, 12), this_month, snap, &ps);
		f->orders_12m = ps.orders;
		f->purchased_12m = ps.purchased;
		f->returned_12m = ps.returned;
	}
	if (st.open_amount > 0)
	{
		ItemSums	items;

		ca_read_items(rc->customer_id, rc->currency, at,
					  at - (TimestampTz) rc->overdue_grace_days * USECS_PER_DAY, false, snap, &items);
		*overdue_all = items.overdue_undisputed;
	}
}

/* the facts of one returned item: item facts first, the money only when it may come back */
void
ca_return_gather(ReturnCase *rc, const char *sku, int32 quantity, const char *channel, TimestampTz at,
			   Snapshot snap, ReturnFacts *f)
{
	const ChannelConf *ret = ca_channel(channel);
	const ReturnChannelConf *ret_conf = ca_return_channel(channel);
	Refunded	refunded;
	int64		overdue_all;
	int64		own_overdue = 0;
	TimestampTz cutoff;
	int64		value;
	bool		legal_floor;
	bool		exchange_only;

	ensure_rels();
	if (strcmp(ret->currency, rc->currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order \"%s\" is in %s but channel \"%s\" takes returns in %s", rc->order_no,
						rc->currency, channel, ret->currency),
				 errhint("Refunds are paid in the order's currency; take the return on a channel that sells in it.")));
	memset(f, 0, sizeof(*f));
	f->quantity = quantity;
	f->at = at;
	f->declared_at = (rc->announced && rc->announced_at <= at) ? rc->announced_at : at;
	f->store_sale = rc->sold_kind == KIND_STORE;
	f->marketplace_sale = rc->sold_kind == KIND_MARKETPLACE;
	f->distance_sale = !f->store_sale;
	f->at_till = ret->kind == KIND_STORE;
	f->has_cash_limit = ret_conf->has_cash_limit;
	f->cash_limit = ret_conf->cash_limit;
	/* handed over at the till: a store sale is delivered when placed */
	f->delivered = rc->has_delivered || f->store_sale;
	f->delivered_at = rc->has_delivered ? rc->delivered_at : rc->placed_at;

	gather_lines(rc, sku, snap, f);
	f->sold = !rc->cancelled && rc->placed_at <= at && f->nlines > 0;
	gather_returned(rc, sku, snap, f);
	gather_customer(rc, snap, f);
	/* an item that may not come back needs no money facts */
	if (ca_return_refusal(f, &value, &legal_floor, &exchange_only) != NULL)
		return;
	gather_account(rc, snap, at, f, &overdue_all);

	/* the money: the order's own payment, or its items and what paid them */
	gather_refunded(rc, snap, &refunded);
	cutoff = at - (TimestampTz) rc->overdue_grace_days * USECS_PER_DAY;
	if (rc->method_settlement == 'i')
	{
		rc->tenders[0].kind = TENDER_KIND_ORDER;
		strlcpy(rc->tenders[0].method, rc->method, sizeof(rc->tenders[0].method));
		f->tenders[0].route = method_route(rc, rc->method);
		f->tenders[0].refundable = rc->total - refunded.order;
		f->ntenders = 1;
	}
	else
		gather_items(rc, snap, cutoff, &refunded, f, &own_overdue);
	f->overdue_debt = Max(overdue_all - own_overdue, 0);
}

/* the sentence for a route: "return.<code>", or "return.ok.<action>" */
const char *
ca_return_reason(const char *code, ReturnAction action, const char *language)
{
	char		key[64];

	if (strcmp(code, "ok") == 0)
		snprintf(key, sizeof(key), "return.ok.%s", ca_return_action_names[action]);
	else
		snprintf(key, sizeof(key), "return.%s", code);
	return ca_reason_text(key, language);
}

/*
 * decide_return(order_or_return_no text, sku text, quantity int, channel
 *   text, at timestamptz) -> TABLE(action return_action, refund
 *   currency_amount, reason_code text, reason text, method text)
 */
PG_FUNCTION_INFO_V1(decide_return);
Datum
decide_return(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *no = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *sku = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		quantity = PG_GETARG_INT32(2);
	char	   *channel = text_to_cstring(PG_GETARG_TEXT_PP(3));
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(4);
	Snapshot	snap = GetActiveSnapshot();
	ReturnCase *rc = palloc(sizeof(ReturnCase));
	ReturnFacts *f = palloc(sizeof(ReturnFacts));
	ReturnDecision *d = palloc(sizeof(ReturnDecision));
	Oid			action_type;

	if (quantity <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("quantity %d must be positive", quantity)));
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	action_type = TupleDescAttr(rsinfo->setDesc, 0)->atttypid;
	(void) ca_channel(channel);
	ca_return_resolve(no, snap, rc);
	ca_return_gather(rc, sku, quantity, channel, at, snap, f);
	ca_return_decide(f, d);

	for (int i = 0; i < d->nroutes; i++)
	{
		const ReturnRoute *r = &d->routes[i];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		values[0] = DirectFunctionCall2(enum_in, CStringGetDatum(ca_return_action_names[r->action]),
										ObjectIdGetDatum(action_type));
		if (r->action == RETURN_REJECT)
			nulls[1] = true;
		else
			values[1] = CurrencyAmountPGetDatum(ca_make_currency_amount(r->refund, rc->code));
		values[2] = CStringGetTextDatum(r->reason_code);
		values[3] = CStringGetTextDatum(ca_return_reason(r->reason_code, r->action, rc->language));
		if (r->tender >= 0)
			values[4] = CStringGetTextDatum(rc->tenders[r->tender].method);
		else if (r->tender == RETURN_TENDER_UNPAID)
			values[4] = CStringGetTextDatum(rc->method);
		else
			nulls[4] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
