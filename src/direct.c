/*-------------------------------------------------------------------------
 *
 * direct.c
 *	  The read path of balance() and the payment decision.
 *
 *	  A till must never wait, so these reads do not go through SQL: they
 *	  open the account tables and walk their B-tree indexes directly (one
 *	  lookup of the account state, one short range of monthly counters, the
 *	  customer's unsettled items only when needed).  The relation numbers
 *	  are resolved once per backend and forgotten on a relcache
 *	  invalidation, which also tells the configuration cache (config.c)
 *	  when a configuration table changed.
 *
 *	  No permission check happens here: the SQL functions built on this are
 *	  not granted to PUBLIC, and EXECUTE on them is the authorisation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "storage/bufmgr.h"
#include "catalog/namespace.h"
#include "common/int.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "direct.h"
#include "checked.h"
#include "money.h"
#include "spi_util.h"
#include "relcache_watch.h"

/* ------------------------------------------------------------------------
 * relation and attribute numbers, resolved once per backend
 * ------------------------------------------------------------------------
 */
typedef struct Rels
{
	bool		valid;
	Oid			customer,
				customer_pkey,
				state,
				state_pkey,
				period,
				period_pkey,
				item,
				item_unsettled,
				orders,
				orders_pkey,
				line,
				line_pkey;
	AttrNumber	o_customer,
				o_total,
				l_price,
				l_qty;
	/* customer */
	AttrNumber	c_merged_into,
				c_blocked,
				c_since,
				c_language,
				c_limit,
				c_group;
	/* account_state */
	AttrNumber	s_currency,
				s_balance,
				s_open,
				s_credit,
				s_revenue,
				s_returned,
				s_orders,
				s_paid,
				s_dunning,
				s_next_due,
				s_last_event,
				s_last[CHANNEL_KINDS],
				s_ring,
				s_merged_into,
				s_c_blocked,
				s_c_since,
				s_c_language,
				s_c_limit,
				s_c_group;
	bool		state_cache;	/* the columns above exist (1.1.0 catalog) */
	/* account_period */
	AttrNumber	p_revenue,
				p_purchased,
				p_returned,
				p_orders;
	/* open_item */
	AttrNumber	i_kind,
				i_open,
				i_due,
				i_disputed,
				i_customer,
				i_currency,
				i_created;
	Oid			owner;			/* owner of the extension's tables */
} Rels;

static Rels rels;
static bool callback_registered = false;

/* the OID of customer_account.name; an error when the extension is missing */
static inline Oid
rel_oid(Oid nsp, const char *name)
{
	Oid			oid = get_relname_relid(name, nsp);

	if (!OidIsValid(oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation customer_account.%s does not exist", name),
				 errhint("Is the extension installed? CREATE EXTENSION customer_account CASCADE.")));
	return oid;
}

/* the attribute number of a column that must exist */
static inline AttrNumber
att(Oid rel, const char *name)
{
	AttrNumber	a = get_attnum(rel, name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column %s of relation %u not found", name, rel);
	return a;
}

/*
 * Relcache invalidation: forget the resolved relations when one of them
 * changed (or everything was reset).  The configuration cache listens for
 * its own tables (config.c).
 */
static void
relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid))
	{
		rels.valid = false;
		return;
	}
	if (!rels.valid)
		return;
	if (relid == rels.customer || relid == rels.state || relid == rels.period || relid == rels.item
		|| relid == rels.customer_pkey || relid == rels.state_pkey || relid == rels.period_pkey
		|| relid == rels.item_unsettled || relid == rels.orders || relid == rels.orders_pkey
		|| relid == rels.line || relid == rels.line_pkey)
		rels.valid = false;
}

/* resolve the relations and columns once per backend (again after an invalidation) */
static void
ensure_rels(void)
{
	Oid			nsp;

	if (!callback_registered)
	{
		ca_watch_relcache(relcache_callback);
		callback_registered = true;
	}
	if (rels.valid)
		return;
	nsp = get_namespace_oid("customer_account", false);
	rels.customer = rel_oid(nsp, "customer");
	rels.customer_pkey = rel_oid(nsp, "customer_pkey");
	rels.state = rel_oid(nsp, "account_state");
	rels.state_pkey = rel_oid(nsp, "account_state_pkey");
	rels.period = rel_oid(nsp, "account_period");
	rels.period_pkey = rel_oid(nsp, "account_period_pkey");
	rels.item = rel_oid(nsp, "open_item");
	rels.item_unsettled = rel_oid(nsp, "open_item_unsettled");
	rels.orders = rel_oid(nsp, "orders");
	rels.orders_pkey = rel_oid(nsp, "orders_pkey");
	rels.line = rel_oid(nsp, "order_line");
	rels.line_pkey = rel_oid(nsp, "order_line_pkey");
	rels.o_customer = att(rels.orders, "customer_id");
	rels.o_total = att(rels.orders, "total");
	rels.l_price = att(rels.line, "unit_price");
	rels.l_qty = att(rels.line, "qty");
	rels.c_merged_into = att(rels.customer, "merged_into");
	rels.c_blocked = att(rels.customer, "blocked");
	rels.c_since = att(rels.customer, "customer_since");
	rels.c_language = att(rels.customer, "language");
	rels.c_limit = att(rels.customer, "credit_limit");
	rels.c_group = att(rels.customer, "customer_group");

	rels.s_currency = att(rels.state, "currency");
	rels.s_balance = att(rels.state, "balance");
	rels.s_open = att(rels.state, "open_amount");
	rels.s_credit = att(rels.state, "store_credit");
	rels.s_revenue = att(rels.state, "lifetime_revenue");
	rels.s_returned = att(rels.state, "lifetime_returned");
	rels.s_orders = att(rels.state, "orders_count");
	rels.s_paid = att(rels.state, "paid_orders");
	rels.s_dunning = att(rels.state, "dunning_level");
	rels.s_next_due = att(rels.state, "next_due_at");
	rels.s_last_event = att(rels.state, "last_event_at");
	rels.s_last[0] = att(rels.state, "last_webshop");
	rels.s_last[1] = att(rels.state, "last_store");
	rels.s_last[2] = att(rels.state, "last_marketplace");
	rels.s_last[3] = att(rels.state, "last_callcenter");
	rels.s_last[4] = att(rels.state, "last_app");
	/*
	 * The ring and the customer facts come with the 1.1.0 catalog; with the
	 * library installed and ALTER EXTENSION UPDATE not yet run, the reads
	 * take the counters and the customer row as before.
	 */
	rels.s_ring = get_attnum(rels.state, "month_ring");
	rels.s_merged_into = get_attnum(rels.state, "merged_into");
	rels.s_c_blocked = get_attnum(rels.state, "customer_blocked");
	rels.s_c_since = get_attnum(rels.state, "customer_since");
	rels.s_c_language = get_attnum(rels.state, "customer_language");
	rels.s_c_limit = get_attnum(rels.state, "customer_credit_limit");
	rels.s_c_group = get_attnum(rels.state, "customer_group");
	rels.state_cache = rels.s_ring != InvalidAttrNumber && rels.s_merged_into != InvalidAttrNumber
		&& rels.s_c_blocked != InvalidAttrNumber && rels.s_c_since != InvalidAttrNumber
		&& rels.s_c_language != InvalidAttrNumber && rels.s_c_limit != InvalidAttrNumber
		&& rels.s_c_group != InvalidAttrNumber;

	rels.p_revenue = att(rels.period, "revenue");
	rels.p_purchased = att(rels.period, "purchased");
	rels.p_returned = att(rels.period, "returned");
	rels.p_orders = att(rels.period, "orders");

	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rels.customer));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", rels.customer);
		rels.owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
	}
	rels.i_kind = att(rels.item, "kind");
	rels.i_open = att(rels.item, "open");
	rels.i_due = att(rels.item, "due_at");
	rels.i_disputed = att(rels.item, "disputed");
	rels.i_customer = att(rels.item, "customer_id");
	rels.i_currency = att(rels.item, "currency");
	rels.i_created = att(rels.item, "created_at");
	rels.valid = true;
}

/* ensure_rels for the other files (config.c) */
void
ca_ensure_rels(void)
{
	ensure_rels();
}

/* does account_state carry the month ring (the 1.1.0 catalog)? */
bool
ca_state_has_ring(void)
{
	ensure_rels();
	return rels.state_cache;
}

/* ------------------------------------------------------------------------
 * running SQL as the owner
 *
 * The read functions are not SECURITY DEFINER (that would cost a GUC
 * change on every call); the few places that run SQL (the configuration
 * load, a question about the past) switch to the tables' owner with a
 * pinned search_path around it, as pg_cron does.  An error unwinds both
 * with the (sub)transaction.
 * ------------------------------------------------------------------------
 */
void
ca_become_owner(OwnerContext *oc)
{
	ensure_rels();
	GetUserIdAndSecContext(&oc->save_user, &oc->save_sec);
	SetUserIdAndSecContext(rels.owner, oc->save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	oc->gucnest = NewGUCNestLevel();
	(void) set_config_option("search_path", "customer_account, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/* undo ca_become_owner: the caller's user and search_path again */
void
ca_restore_user(OwnerContext *oc)
{
	AtEOXact_GUC(true, oc->gucnest);
	SetUserIdAndSecContext(oc->save_user, oc->save_sec);
}

/* ------------------------------------------------------------------------
 * index scans
 * ------------------------------------------------------------------------
 */
typedef struct DirectScan
{
	Relation	heap;
	Relation	index;
	IndexScanDesc scan;
	TupleTableSlot *slot;
} DirectScan;

/* one scan key on column col of an index, with the index's collation */
static void
key_init(ScanKey key, Relation index, AttrNumber col, StrategyNumber strategy, RegProcedure proc, Datum arg)
{
	ScanKeyEntryInitialize(key, 0, col, strategy, InvalidOid, index->rd_indcollation[col - 1], proc, arg);
}

/* open a heap and one of its indexes for a direct scan */
static void
scan_begin(DirectScan *ds, Oid heap, Oid index, Snapshot snap)
{
	ds->heap = table_open(heap, AccessShareLock);
	ds->index = index_open(index, AccessShareLock);
	ds->slot = table_slot_create(ds->heap, NULL);
	ds->scan = NULL;
	(void) snap;
}

/* start the index scan with its keys */
static void
scan_keys(DirectScan *ds, Snapshot snap, ScanKey keys, int nkeys)
{
	ds->scan = index_beginscan(ds->heap, ds->index, snap, nkeys, 0);
	index_rescan(ds->scan, keys, nkeys, NULL, 0);
}

/*
 * The locks stay until the end of the transaction, as the executor keeps
 * them: a statement that reads many accounts takes each lock once.
 */
static void
scan_end(DirectScan *ds)
{
	if (ds->scan)
		index_endscan(ds->scan);
	ExecDropSingleTupleTableSlot(ds->slot);
	index_close(ds->index, NoLock);
	table_close(ds->heap, NoLock);
}

/* an int8 column of the slot, 0 when null */
static int64
slot_int64(TupleTableSlot *slot, AttrNumber a, bool *isnull)
{
	bool		n;
	Datum		d = slot_getattr(slot, a, &n);

	if (isnull)
		*isnull = n;
	return n ? 0 : DatumGetInt64(d);
}

/* an int4 column of the slot, 0 when null */
static int32
slot_int32(TupleTableSlot *slot, AttrNumber a)
{
	bool		n;
	Datum		d = slot_getattr(slot, a, &n);

	return n ? 0 : DatumGetInt32(d);
}

/* a timestamptz column of the slot; *has says whether it was not null */
static TimestampTz
slot_ts(TupleTableSlot *slot, AttrNumber a, bool *has)
{
	bool		n;
	Datum		d = slot_getattr(slot, a, &n);

	*has = !n;
	return n ? 0 : DatumGetTimestampTz(d);
}

/* a text column into buf; a value that does not fit is an error, never cut */
static void
slot_text(TupleTableSlot *slot, AttrNumber a, char *buf, int buflen, bool *has)
{
	bool		n;
	Datum		d = slot_getattr(slot, a, &n);

	if (has)
		*has = !n;
	buf[0] = '\0';
	if (!n)
	{
		text	   *t = DatumGetTextPP(d);
		int			len = (int) VARSIZE_ANY_EXHDR(t);

		if (len >= buflen)
			elog(ERROR, "value of column %d (%d bytes) exceeds its buffer of %d bytes", a, len, buflen);
		memcpy(buf, VARDATA_ANY(t), len);
		buf[len] = '\0';
	}
}

/* a text column as a palloc'd string of any length, NULL when null */
static char *
slot_text_dup(TupleTableSlot *slot, AttrNumber a)
{
	bool		n;
	Datum		d = slot_getattr(slot, a, &n);

	return n ? NULL : TextDatumGetCString(d);
}

/* a text Datum for a scan key */
static Datum
text_datum(const char *s)
{
	return PointerGetDatum(cstring_to_text(s));
}

/* the customer row by id, read through customer_pkey */
void
ca_read_customer(int64 customer_id, Snapshot snap, CustomerRow *row)
{
	DirectScan	ds;
	ScanKeyData key[1];
	bool		found;

	ensure_rels();
	memset(row, 0, sizeof(*row));
	scan_begin(&ds, rels.customer, rels.customer_pkey, snap);
	key_init(&key[0], ds.index, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(customer_id));
	scan_keys(&ds, snap, key, 1);
	found = index_getnext_slot(ds.scan, ForwardScanDirection, ds.slot);
	if (found)
	{
		bool		n;
		bool		has;
		Datum		d;

		row->merged_into = slot_int64(ds.slot, rels.c_merged_into, &n);
		row->merged = !n;
		d = slot_getattr(ds.slot, rels.c_blocked, &n);
		row->blocked = !n && DatumGetBool(d);
		row->since = slot_ts(ds.slot, rels.c_since, &has);
		slot_text(ds.slot, rels.c_language, row->language, sizeof(row->language), NULL);
		d = slot_getattr(ds.slot, rels.c_limit, &n);
		if (!n)
		{
			CurrencyAmount *ca = DatumGetCurrencyAmountP(d);

			row->has_limit = true;
			row->limit_units = ca->units;
			row->limit_code = ca->code;
		}
		row->group = slot_text_dup(ds.slot, rels.c_group);
		row->has_group = (row->group != NULL);
	}
	scan_end(&ds);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown customer " INT64_FORMAT, customer_id)));
}

/* the customer facts cached on a state row (has_customer false when not filled) */
static void
read_state_customer(TupleTableSlot *slot, StateRow *r)
{
	CustomerRow *c = &r->customer;
	bool		n;
	Datum		d;

	memset(c, 0, sizeof(*c));
	c->since = slot_ts(slot, rels.s_c_since, &r->has_customer);
	if (!r->has_customer)
		return;
	c->merged_into = slot_int64(slot, rels.s_merged_into, &n);
	c->merged = !n;
	d = slot_getattr(slot, rels.s_c_blocked, &n);
	c->blocked = !n && DatumGetBool(d);
	slot_text(slot, rels.s_c_language, c->language, sizeof(c->language), NULL);
	d = slot_getattr(slot, rels.s_c_limit, &n);
	if (!n)
	{
		CurrencyAmount *ca = DatumGetCurrencyAmountP(d);

		c->has_limit = true;
		c->limit_units = ca->units;
		c->limit_code = ca->code;
	}
	c->group = slot_text_dup(slot, rels.s_c_group);
	c->has_group = (c->group != NULL);
}

/* one account state row from the slot of a scan */
static void
state_from_slot(TupleTableSlot *slot, StateRow *r)
{
	slot_text(slot, rels.s_currency, r->currency, sizeof(r->currency), NULL);
	r->balance = slot_int64(slot, rels.s_balance, NULL);
	r->open_amount = slot_int64(slot, rels.s_open, NULL);
	r->store_credit = slot_int64(slot, rels.s_credit, NULL);
	r->lifetime_revenue = slot_int64(slot, rels.s_revenue, NULL);
	r->lifetime_returned = slot_int64(slot, rels.s_returned, NULL);
	r->orders_count = slot_int32(slot, rels.s_orders);
	r->paid_orders = slot_int32(slot, rels.s_paid);
	r->dunning_level = slot_int32(slot, rels.s_dunning);
	r->next_due = slot_ts(slot, rels.s_next_due, &r->has_next_due);
	r->last_event = slot_ts(slot, rels.s_last_event, &r->has_last_event);
	for (int k = 0; k < CHANNEL_KINDS; k++)
		r->last[k] = slot_ts(slot, rels.s_last[k], &r->has_last[k]);
	r->has_ring = rels.state_cache;
	r->has_customer = false;
	if (rels.state_cache)
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, rels.s_ring, &isnull);

		ca_ring_read(isnull ? NULL : DatumGetArrayTypeP(d), &r->ring);
		read_state_customer(slot, r);
	}
}

/* start a scan of a customer's state rows, all currencies or one */
static void
states_begin(DirectScan *ds, ScanKey key, int64 customer_id, const char *currency, Snapshot snap)
{
	ensure_rels();
	scan_begin(ds, rels.state, rels.state_pkey, snap);
	key_init(&key[0], ds->index, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(customer_id));
	if (currency)
		key_init(&key[1], ds->index, 2, BTEqualStrategyNumber, F_TEXTEQ, text_datum(currency));
	scan_keys(ds, snap, key, currency ? 2 : 1);
}

/* the state rows of a customer (all currencies or one) into rows[max] */
int
ca_read_states(int64 customer_id, const char *currency, Snapshot snap, StateRow *rows, int max)
{
	DirectScan	ds;
	ScanKeyData key[2];
	int			n = 0;

	states_begin(&ds, key, customer_id, currency, snap);
	while (index_getnext_slot(ds.scan, ForwardScanDirection, ds.slot))
	{
		/* never drop a row silently: a caller that expects fewer is wrong */
		if (n >= max)
			elog(ERROR, "customer " INT64_FORMAT " has more than %d account state rows", customer_id, max);
		state_from_slot(ds.slot, &rows[n++]);
	}
	scan_end(&ds);
	return n;
}

/* every state row of a customer, palloc'd */
StateRow *
ca_read_all_states(int64 customer_id, Snapshot snap, int *n)
{
	DirectScan	ds;
	ScanKeyData key[2];
	int			cap = 4;
	StateRow   *rows = palloc(sizeof(StateRow) * cap);

	*n = 0;
	states_begin(&ds, key, customer_id, NULL, snap);
	while (index_getnext_slot(ds.scan, ForwardScanDirection, ds.slot))
	{
		if (*n == cap)
		{
			cap *= 2;
			rows = repalloc(rows, sizeof(StateRow) * cap);
		}
		state_from_slot(ds.slot, &rows[(*n)++]);
	}
	scan_end(&ds);
	return rows;
}

/* the monthly counters of (customer, currency) in (after, upto], summed */
void
ca_read_periods(int64 customer_id, const char *currency, DateADT after, DateADT upto, Snapshot snap,
				PeriodSums *sums)
{
	DirectScan	ds;
	ScanKeyData key[4];

	ensure_rels();
	memset(sums, 0, sizeof(*sums));
	scan_begin(&ds, rels.period, rels.period_pkey, snap);
	key_init(&key[0], ds.index, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(customer_id));
	key_init(&key[1], ds.index, 2, BTEqualStrategyNumber, F_TEXTEQ, text_datum(currency));
	key_init(&key[2], ds.index, 3, BTGreaterStrategyNumber, F_DATE_GT, DateADTGetDatum(after));
	key_init(&key[3], ds.index, 3, BTLessEqualStrategyNumber, F_DATE_LE, DateADTGetDatum(upto));
	scan_keys(&ds, snap, key, 4);
	while (index_getnext_slot(ds.scan, ForwardScanDirection, ds.slot))
	{
		ca_add_units(&sums->revenue, slot_int64(ds.slot, rels.p_revenue, NULL), "12-month revenue");
		ca_add_units(&sums->purchased, slot_int64(ds.slot, rels.p_purchased, NULL), "12-month purchased value");
		ca_add_units(&sums->returned, slot_int64(ds.slot, rels.p_returned, NULL), "12-month returned value");
		if (pg_add_s32_overflow(sums->orders, slot_int32(ds.slot, rels.p_orders), &sums->orders))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("12-month order count of customer " INT64_FORMAT " in %s out of range",
							customer_id, currency)));
	}
	scan_end(&ds);
}

/* the column of an index that holds heap column a (0 when none) */
static int
index_column(Relation index, AttrNumber a)
{
	for (int i = 0; i < index->rd_index->indnatts; i++)
		if (index->rd_index->indkey.values[i] == a)
			return i + 1;
	return 0;
}

/* a text column of an index tuple or a slot into buf */
static void
copy_text_datum(Datum d, char *buf, int buflen)
{
	text	   *t = DatumGetTextPP(d);
	int			len = Min((int) VARSIZE_ANY_EXHDR(t), buflen - 1);

	memcpy(buf, VARDATA_ANY(t), len);
	buf[len] = '\0';
}

/*
 * Every unsettled item (of one customer and currency when customer_id is
 * not NULL; due before due_before when has_due_before), in the order of
 * open_item_unsettled: customer, currency, due date.  The index carries
 * every column read here, so an item on an all-visible page is answered
 * from the index alone (an index-only scan); other pages are read.
 */
void
ca_scan_unsettled(const int64 *customer_id, const char *currency, bool has_due_before,
				  TimestampTz due_before, Snapshot snap, UnsettledCallback cb, void *arg)
{
	DirectScan	ds;
	ScanKeyData key[3];
	int			nkeys = 0;
	int			ic[7];
	bool		covering = true;
	Buffer		vmbuffer = InvalidBuffer;
	ItemPointer tid;
	AttrNumber	cols[7];

	ensure_rels();
	cols[0] = rels.i_customer;
	cols[1] = rels.i_currency;
	cols[2] = rels.i_due;
	cols[3] = rels.i_open;
	cols[4] = rels.i_kind;
	cols[5] = rels.i_disputed;
	cols[6] = rels.i_created;
	scan_begin(&ds, rels.item, rels.item_unsettled, snap);
	if (customer_id)
	{
		key_init(&key[nkeys++], ds.index, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(*customer_id));
		key_init(&key[nkeys++], ds.index, 2, BTEqualStrategyNumber, F_TEXTEQ, text_datum(currency));
		if (has_due_before)
			key_init(&key[nkeys++], ds.index, 3, BTLessStrategyNumber, F_TIMESTAMPTZ_LT,
					 TimestampTzGetDatum(due_before));
	}
	for (int i = 0; i < 7; i++)
	{
		ic[i] = index_column(ds.index, cols[i]);
		covering = covering && ic[i] > 0;
	}
	ds.scan = index_beginscan(ds.heap, ds.index, snap, nkeys, 0);
	ds.scan->xs_want_itup = covering;
	index_rescan(ds.scan, key, nkeys, NULL, 0);
	while ((tid = index_getnext_tid(ds.scan, ForwardScanDirection)) != NULL)
	{
		UnsettledItem item;
		Datum		v[7];
		bool		n[7];

		CHECK_FOR_INTERRUPTS();
		if (covering && VM_ALL_VISIBLE(ds.heap, ItemPointerGetBlockNumber(tid), &vmbuffer))
		{
			/* every transaction sees the heap row the index entry points to */
			for (int i = 0; i < 7; i++)
				v[i] = index_getattr(ds.scan->xs_itup, ic[i], ds.scan->xs_itupdesc, &n[i]);
		}
		else
		{
			if (!index_fetch_heap(ds.scan, ds.slot))
				continue;		/* not visible to this snapshot */
			for (int i = 0; i < 7; i++)
				v[i] = slot_getattr(ds.slot, cols[i], &n[i]);
		}
		item.customer_id = DatumGetInt64(v[0]);
		copy_text_datum(v[1], item.currency, sizeof(item.currency));
		item.due_at = DatumGetTimestampTz(v[2]);
		item.open = DatumGetInt64(v[3]);
		{
			text	   *k = DatumGetTextPP(v[4]);

			item.prepayment = VARSIZE_ANY_EXHDR(k) == 10 && memcmp(VARDATA_ANY(k), "prepayment", 10) == 0;
		}
		item.disputed = !n[5] && DatumGetBool(v[5]);
		item.created_at = DatumGetTimestampTz(v[6]);
		cb(&item, arg);
	}
	if (vmbuffer != InvalidBuffer)
		ReleaseBuffer(vmbuffer);
	scan_end(&ds);
}

typedef struct ItemSumsArgs
{
	ItemSums   *sums;
	TimestampTz due_before;
	TimestampTz undisputed_due_before;
} ItemSumsArgs;

/* one item into the sums of ca_read_items */
static void
add_item(const UnsettledItem *item, void *arg)
{
	ItemSumsArgs *a = (ItemSumsArgs *) arg;
	ItemSums   *sums = a->sums;

	ca_add_units(&sums->open, item->open, "sum of the open items");
	if (item->prepayment)
		return;
	ca_add_units(&sums->exposure, item->open, "sum of the open receivables");
	if (item->due_at < a->due_before)
	{
		ca_add_units(&sums->overdue, item->open, "sum of the overdue receivables");
		if (!sums->has_oldest || item->due_at < sums->oldest_due)
			sums->oldest_due = item->due_at;
		sums->has_oldest = true;
	}
	if (item->due_at < a->undisputed_due_before && !item->disputed)
		ca_add_units(&sums->overdue_undisputed, item->open, "sum of the overdue receivables");
}

/* the sums of a customer's unsettled items in one currency */
void
ca_read_items(int64 customer_id, const char *currency, TimestampTz due_before,
			  TimestampTz undisputed_due_before, bool only_due_before, Snapshot snap, ItemSums *sums)
{
	ItemSumsArgs a;

	memset(sums, 0, sizeof(*sums));
	a.sums = sums;
	a.due_before = due_before;
	a.undisputed_due_before = undisputed_due_before;
	ca_scan_unsettled(&customer_id, currency, only_due_before, due_before, snap, add_item, &a);
}

/* an order by number: its customer, total and inserting transaction */
bool
ca_read_order(const char *order_no, Snapshot snap, int64 *customer_id, CurrencyAmount *total,
			  TransactionId *xmin)
{
	DirectScan	ds;
	ScanKeyData key[1];
	bool		found;

	ensure_rels();
	scan_begin(&ds, rels.orders, rels.orders_pkey, snap);
	key_init(&key[0], ds.index, 1, BTEqualStrategyNumber, F_TEXTEQ, text_datum(order_no));
	scan_keys(&ds, snap, key, 1);
	found = index_getnext_slot(ds.scan, ForwardScanDirection, ds.slot);
	if (found)
	{
		bool		n;

		*customer_id = slot_int64(ds.slot, rels.o_customer, NULL);
		*total = *DatumGetCurrencyAmountP(slot_getattr(ds.slot, rels.o_total, &n));
		*xmin = DatumGetTransactionId(slot_getsysattr(ds.slot, MinTransactionIdAttributeNumber, &n));
	}
	scan_end(&ds);
	return found;
}

/* the sum of an order's lines in minor units; returns how many lines */
int
ca_sum_order_lines(const char *order_no, Snapshot snap, int32 code, int64 *sum)
{
	DirectScan	ds;
	ScanKeyData key[1];
	int			n = 0;

	ensure_rels();
	*sum = 0;
	scan_begin(&ds, rels.line, rels.line_pkey, snap);
	key_init(&key[0], ds.index, 1, BTEqualStrategyNumber, F_TEXTEQ, text_datum(order_no));
	scan_keys(&ds, snap, key, 1);
	while (index_getnext_slot(ds.scan, ForwardScanDirection, ds.slot))
	{
		bool		isnull;
		CurrencyAmount *price = DatumGetCurrencyAmountP(slot_getattr(ds.slot, rels.l_price, &isnull));
		int64		qty = slot_int32(ds.slot, rels.l_qty);
		int64		line;

		ca_check_same_currency(code, price->code, "sum");
		if (pg_mul_s64_overflow(price->units, qty, &line) || pg_add_s64_overflow(*sum, line, sum))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("lines of order \"%s\" sum out of range", order_no)));
		n++;
	}
	scan_end(&ds);
	return n;
}
