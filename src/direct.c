/*-------------------------------------------------------------------------
 *
 * direct.c
 *	  The read path of balance() and the payment decision.
 *
 *	  A till must never wait, so these reads do not go through SQL: they
 *	  open the account tables and walk their B-tree indexes directly (one
 *	  lookup of the account state, one short range of monthly counters, the
 *	  customer's unsettled items only when needed).  The configuration
 *	  tables (policy, credit policy, payment methods, channels, segment
 *	  averages) are read once per backend and kept until a relcache
 *	  invalidation says they changed: the config_changed trigger on those
 *	  tables sends one with every write, so the next call sees an UPDATE.
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
#include "input.h"
#include "money.h"
#include "spi_util.h"

const char *const ca_channel_kind_names[CHANNEL_KINDS] = {"webshop", "store", "marketplace", "callcenter", "app"};

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
				s_last[CHANNEL_KINDS];
	/* account_period */
	AttrNumber	p_revenue,
				p_purchased,
				p_returned,
				p_orders;
	/* open_item */
	AttrNumber	i_kind,
				i_open,
				i_due,
				i_disputed;
	/* configuration tables, for the invalidation callback */
	Oid			conf[5];
	Oid			owner;			/* owner of the extension's tables */
} Rels;

static Rels rels;
static bool callback_registered = false;

/* the configuration cache (below): valid until a change is announced */
static bool conf_valid = false;
static uint64 conf_invals = 0;	/* announcements seen, to notice one during a load */

static Oid
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

static AttrNumber
att(Oid rel, const char *name)
{
	AttrNumber	a = get_attnum(rel, name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column %s of relation %u not found", name, rel);
	return a;
}

/*
 * Relcache invalidation: forget the resolved relations when one of them
 * changed, and the configuration when a configuration table changed (or
 * everything was reset).  The configuration tables are checked before
 * anything else: several messages arrive in one batch, and one for, say,
 * the customer table (an ANALYZE) must not hide the next one.
 */
static void
relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid))
	{
		rels.valid = false;
		conf_valid = false;
		conf_invals++;
		return;
	}
	for (int i = 0; i < (int) lengthof(rels.conf); i++)
		if (relid == rels.conf[i])
		{
			conf_valid = false;
			conf_invals++;
		}
	if (!rels.valid)
		return;
	if (relid == rels.customer || relid == rels.state || relid == rels.period || relid == rels.item
		|| relid == rels.customer_pkey || relid == rels.state_pkey || relid == rels.period_pkey
		|| relid == rels.item_unsettled || relid == rels.orders || relid == rels.orders_pkey
		|| relid == rels.line || relid == rels.line_pkey)
		rels.valid = false;
}

static void
ensure_rels(void)
{
	Oid			nsp;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
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
	{
		Oid			conf_oids[lengthof(rels.conf)];

		conf_oids[0] = rel_oid(nsp, "policy");
		conf_oids[1] = rel_oid(nsp, "segment_stats");
		conf_oids[2] = rel_oid(nsp, "credit_policy");
		conf_oids[3] = rel_oid(nsp, "payment_method");
		conf_oids[4] = rel_oid(nsp, "channel");
		/* other tables than the cache was read from (extension recreated) */
		if (memcmp(conf_oids, rels.conf, sizeof(conf_oids)) != 0)
		{
			memcpy(rels.conf, conf_oids, sizeof(conf_oids));
			conf_valid = false;
			conf_invals++;
		}
	}

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
	rels.valid = true;
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

static void
key_init(ScanKey key, Relation index, AttrNumber col, StrategyNumber strategy, RegProcedure proc, Datum arg)
{
	ScanKeyEntryInitialize(key, 0, col, strategy, InvalidOid, index->rd_indcollation[col - 1], proc, arg);
}

static void
scan_begin(DirectScan *ds, Oid heap, Oid index, Snapshot snap)
{
	ds->heap = table_open(heap, AccessShareLock);
	ds->index = index_open(index, AccessShareLock);
	ds->slot = table_slot_create(ds->heap, NULL);
	ds->scan = NULL;
	(void) snap;
}

static void
scan_keys(DirectScan *ds, Snapshot snap, ScanKey keys, int nkeys)
{
	ds->scan = index_beginscan(ds->heap, ds->index, snap, nkeys, 0);
	index_rescan(ds->scan, keys, nkeys, NULL, 0);
}

static void
scan_end(DirectScan *ds)
{
	if (ds->scan)
		index_endscan(ds->scan);
	ExecDropSingleTupleTableSlot(ds->slot);
	index_close(ds->index, AccessShareLock);
	table_close(ds->heap, AccessShareLock);
}

static int64
slot_int64(TupleTableSlot *slot, AttrNumber a, bool *isnull)
{
	bool		n;
	Datum		d = slot_getattr(slot, a, &n);

	if (isnull)
		*isnull = n;
	return n ? 0 : DatumGetInt64(d);
}

static int32
slot_int32(TupleTableSlot *slot, AttrNumber a)
{
	bool		n;
	Datum		d = slot_getattr(slot, a, &n);

	return n ? 0 : DatumGetInt32(d);
}

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

static Datum
text_datum(const char *s)
{
	return PointerGetDatum(cstring_to_text(s));
}

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

void
ca_read_items(int64 customer_id, const char *currency, TimestampTz due_before,
			  TimestampTz undisputed_due_before, bool only_due_before, Snapshot snap, ItemSums *sums)
{
	DirectScan	ds;
	ScanKeyData key[3];

	ensure_rels();
	memset(sums, 0, sizeof(*sums));
	scan_begin(&ds, rels.item, rels.item_unsettled, snap);
	key_init(&key[0], ds.index, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(customer_id));
	key_init(&key[1], ds.index, 2, BTEqualStrategyNumber, F_TEXTEQ, text_datum(currency));
	if (only_due_before)
		key_init(&key[2], ds.index, 3, BTLessStrategyNumber, F_TIMESTAMPTZ_LT, TimestampTzGetDatum(due_before));
	scan_keys(&ds, snap, key, only_due_before ? 3 : 2);
	while (index_getnext_slot(ds.scan, ForwardScanDirection, ds.slot))
	{
		char		kind[16];
		bool		has;
		int64		open = slot_int64(ds.slot, rels.i_open, NULL);
		TimestampTz due = slot_ts(ds.slot, rels.i_due, &has);
		bool		n;
		bool		disputed = DatumGetBool(slot_getattr(ds.slot, rels.i_disputed, &n));

		ca_add_units(&sums->open, open, "sum of the open items");
		slot_text(ds.slot, rels.i_kind, kind, sizeof(kind), NULL);
		if (strcmp(kind, "prepayment") == 0)
			continue;
		ca_add_units(&sums->exposure, open, "sum of the open receivables");
		if (due < due_before)
		{
			ca_add_units(&sums->overdue, open, "sum of the overdue receivables");
			if (!sums->has_oldest || due < sums->oldest_due)
				sums->oldest_due = due;
			sums->has_oldest = true;
		}
		if (due < undisputed_due_before && !disputed)
			ca_add_units(&sums->overdue_undisputed, open, "sum of the overdue receivables");
	}
	scan_end(&ds);
}

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

		check_same_currency(code, price->code, "sum");
		if (pg_mul_s64_overflow(price->units, qty, &line) || pg_add_s64_overflow(*sum, line, sum))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("lines of order \"%s\" sum out of range", order_no)));
		n++;
	}
	scan_end(&ds);
	return n;
}

/* ------------------------------------------------------------------------
 * the configuration cache
 *
 * One generation of the configuration lives in one memory context.  A
 * reload builds a complete new generation in a fresh context that hangs
 * below the current transaction, so that an error anywhere (a lock
 * timeout, a value out of range, a cancel) frees it with the transaction
 * and leaves the installed generation untouched and still marked invalid.
 * Only a complete generation moves below CacheMemoryContext and is
 * installed; the one it replaces is handed to the transaction, because a
 * caller of this statement may still hold a channel or method it returned
 * (as partdesc.c does with partition descriptors).
 *
 * The tables are read with one fresh snapshot (GetLatestSnapshot), never
 * the caller's transaction snapshot: a reload inside a REPEATABLE READ
 * transaction must not cache a policy that was already replaced, as the
 * cache outlives the transaction.  Own uncommitted changes are seen (the
 * snapshot's command id is current) and a ROLLBACK invalidates them again.
 *
 * Names (codes, groups, currencies) are palloc'd strings of any length.
 * ------------------------------------------------------------------------
 */
typedef struct SegmentAvg
{
	char	   *currency;
	double		avg;
} SegmentAvg;

typedef struct ConfCache
{
	MemoryContext cxt;			/* holds this struct and everything below */
	PolicyConf	policy;
	SegmentAvg *segments;
	int			nsegments;
	CreditPolicyConf *credit_policies;
	int			ncredit_policies;
	MethodConf *methods;
	int			nmethods;
	ChannelConf *channels;
	int			nchannels;
} ConfCache;

/* the installed generation (NULL before the first load) */
static ConfCache *conf = NULL;

/* kind name -> index into ca_channel_kind_names, -1 when unknown */
static int
kind_index(const char *kind)
{
	for (int k = 0; k < CHANNEL_KINDS; k++)
		if (strcmp(ca_channel_kind_names[k], kind) == 0)
			return k;
	return -1;
}

/* a text column of the current SPI row copied into cxt, NULL when null */
static char *
conf_text(MemoryContext cxt, int row, int col)
{
	char	   *s = ca_get_text(row, col);

	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

/*
 * An amount column (numeric, major units) as int64 in 1/10000 of a major
 * unit.  The tables bound every amount to [0, CA_CONF_AMOUNT_MAX] (CHECK
 * constraints); a value outside (NaN, infinity, a row written while a bound
 * was dropped) is refused with 22003 naming the row, before any arithmetic
 * that could overflow.
 */
static int64
conf_amount(int row, int col, const char *table, const char *key, bool *isnull)
{
	bool		n;
	Datum		d = ca_get_datum(row, col, &n);
	Datum		lo = NumericGetDatum(int64_to_numeric(0));
	Datum		hi = NumericGetDatum(int64_to_numeric(CA_CONF_AMOUNT_MAX));
	Datum		scaled;

	if (isnull)
		*isnull = n;
	if (n)
		return 0;
	/* NaN sorts above every number, so it fails the upper bound */
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, d, lo)) < 0
		|| DatumGetInt32(DirectFunctionCall2(numeric_cmp, d, hi)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s of customer_account.%s is out of range: %s",
						SPI_fname(SPI_tuptable->tupdesc, col), table,
						DatumGetCString(DirectFunctionCall1(numeric_out, d))),
				 errdetail("Row %s.", key),
				 errhint("Amounts in the configuration tables must lie between 0 and " INT64_FORMAT " major units.",
						 CA_CONF_AMOUNT_MAX)));
	/* at most 1e12 * 1e4 = 1e16: the cast cannot overflow */
	scaled = DirectFunctionCall2(numeric_round,
								 DirectFunctionCall2(numeric_mul, d, NumericGetDatum(int64_to_numeric(10000))),
								 Int32GetDatum(0));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, scaled));
}

/* run one read-only query of the configuration under snap */
static void
conf_query(const char *sql, Snapshot snap, const char *table)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
	if (SPI_execute_snapshot(plan, NULL, NULL, snap, InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read customer_account.%s", table);
}

/* read the configuration tables into a new generation allocated in cxt */
static void
read_conf(ConfCache *c, Snapshot snap)
{
	MemoryContext cxt = c->cxt;

	conf_query("SELECT coalesce(max(new_customer_days), 90), coalesce(max(segment_band), 0.25)::float8,"
			   " coalesce(max(incentive_after_days), 180) FROM customer_account.policy", snap, "policy");
	c->policy.new_customer_days = ca_get_int32(0, 1, NULL);
	c->policy.segment_band = DatumGetFloat8(ca_get_datum(0, 2, NULL));
	c->policy.incentive_after_days = ca_get_int32(0, 3, NULL);

	conf_query("SELECT currency, avg_revenue_12m::float8 FROM customer_account.segment_stats", snap, "segment_stats");
	c->nsegments = (int) SPI_processed;
	c->segments = MemoryContextAllocZero(cxt, sizeof(SegmentAvg) * Max(c->nsegments, 1));
	for (int i = 0; i < c->nsegments; i++)
	{
		c->segments[i].currency = conf_text(cxt, i, 1);
		c->segments[i].avg = DatumGetFloat8(ca_get_datum(i, 2, NULL));
	}

	conf_query("SELECT channel_kind::text, customer_group, currency, credit_limit, first_order_limit,"
			   " new_customer_days, new_customer_paid_orders, overdue_tolerance, overdue_grace_days,"
			   " max_return_rate::float8, return_rate_min_orders, dunning_block_level, 'policy_id ' || policy_id"
			   " FROM customer_account.credit_policy"
			   " ORDER BY customer_group IS NULL, channel_kind IS NULL, currency IS NULL, policy_id", snap, "credit_policy");
	c->ncredit_policies = (int) SPI_processed;
	c->credit_policies = MemoryContextAllocZero(cxt, sizeof(CreditPolicyConf) * Max(c->ncredit_policies, 1));
	for (int i = 0; i < c->ncredit_policies; i++)
	{
		CreditPolicyConf *p = &c->credit_policies[i];
		char	   *kind = ca_get_text(i, 1);
		char	   *key = ca_get_text(i, 13);

		p->any_kind = (kind == NULL);
		p->kind = kind ? kind_index(kind) : -1;
		p->group = conf_text(cxt, i, 2);
		p->any_group = (p->group == NULL);
		p->currency = conf_text(cxt, i, 3);
		p->any_currency = (p->currency == NULL);
		p->credit_limit = conf_amount(i, 4, "credit_policy", key, NULL);
		p->first_order_limit = conf_amount(i, 5, "credit_policy", key, NULL);
		p->new_customer_days = ca_get_int32(i, 6, NULL);
		p->new_customer_paid_orders = ca_get_int32(i, 7, NULL);
		p->overdue_tolerance = conf_amount(i, 8, "credit_policy", key, NULL);
		p->overdue_grace_days = ca_get_int32(i, 9, NULL);
		p->max_return_rate = DatumGetFloat8(ca_get_datum(i, 10, NULL));
		p->return_rate_min_orders = ca_get_int32(i, 11, NULL);
		p->dunning_block_level = ca_get_int32(i, 12, NULL);
	}

	conf_query("SELECT code, settlement, channel_kinds::text[], min_amount, max_amount, format('code %L', code)"
			   " FROM customer_account.payment_method ORDER BY sort_order, code", snap, "payment_method");
	c->nmethods = (int) SPI_processed;
	c->methods = MemoryContextAllocZero(cxt, sizeof(MethodConf) * Max(c->nmethods, 1));
	for (int i = 0; i < c->nmethods; i++)
	{
		MethodConf *m = &c->methods[i];
		char	   *settlement = ca_get_text(i, 2);
		char	   *key = ca_get_text(i, 6);
		bool		n;
		Datum		kinds = ca_get_datum(i, 3, &n);

		m->code = conf_text(cxt, i, 1);
		m->settlement = settlement[0] == 'c' ? 'c' : settlement[0] == 'p' ? 'p' : 'i';
		m->all_kinds = n;
		if (!n)
		{
			ArrayType  *arr = DatumGetArrayTypeP(kinds);
			Datum	   *elems;
			bool	   *enulls;
			int			nelems;

			deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &nelems);
			for (int e = 0; e < nelems; e++)
			{
				int			k;

				if (enulls[e])
					continue;
				k = kind_index(TextDatumGetCString(elems[e]));
				if (k >= 0)
					m->kinds[k] = true;
			}
		}
		m->min_amount = conf_amount(i, 4, "payment_method", key, &n);
		m->has_min = !n;
		m->max_amount = conf_amount(i, 5, "payment_method", key, &n);
		m->has_max = !n;
	}

	conf_query("SELECT code, kind::text, currency, payment_term_days FROM customer_account.channel", snap, "channel");
	c->nchannels = (int) SPI_processed;
	c->channels = MemoryContextAllocZero(cxt, sizeof(ChannelConf) * Max(c->nchannels, 1));
	for (int i = 0; i < c->nchannels; i++)
	{
		ChannelConf *ch = &c->channels[i];

		ch->code = conf_text(cxt, i, 1);
		ch->kind = kind_index(ca_get_text(i, 2));
		ch->currency = conf_text(cxt, i, 3);
		ch->payment_term_days = ca_get_int32(i, 4, NULL);
	}
}

/* build a complete new generation and install it; on error nothing changes */
static void
load_conf(void)
{
	uint64		invals_before = conf_invals;
	MemoryContext cxt;
	ConfCache  *c;
	Snapshot	snap;
	OwnerContext oc;

	ensure_rels();

	/*
	 * Below the current transaction until complete: an error frees it with
	 * the (sub)transaction, and the installed generation stays invalid.
	 */
	cxt = AllocSetContextCreate(CurTransactionContext, "customer_account config cache",
								ALLOCSET_SMALL_SIZES);
	c = MemoryContextAllocZero(cxt, sizeof(ConfCache));
	c->cxt = cxt;

	snap = RegisterSnapshot(GetLatestSnapshot());
	ca_become_owner(&oc);
	ca_connect();
	read_conf(c, snap);
	ca_finish();
	ca_restore_user(&oc);
	UnregisterSnapshot(snap);

	/* complete: install it, and let the transaction free the old one */
	MemoryContextSetParent(cxt, CacheMemoryContext);
	if (conf != NULL)
		MemoryContextSetParent(conf->cxt, TopTransactionContext);
	conf = c;

	/*
	 * A change that committed while we read may be missing from our
	 * snapshot: if one was announced meanwhile, read again next time.
	 */
	conf_valid = (conf_invals == invals_before);
}

/* the installed generation, reloaded first when a change was announced */
static const ConfCache *
ensure_conf(void)
{
	ensure_rels();
	/* process pending invalidations, so a committed UPDATE is seen now */
	AcceptInvalidationMessages();
	if (!conf_valid || conf == NULL)
		load_conf();
	return conf;
}

const PolicyConf *
ca_policy(void)
{
	return &ensure_conf()->policy;
}

bool
ca_segment_avg(const char *currency, double *avg)
{
	const ConfCache *c = ensure_conf();

	for (int i = 0; i < c->nsegments; i++)
		if (c->segments[i].currency != NULL && strcmp(c->segments[i].currency, currency) == 0)
		{
			*avg = c->segments[i].avg;
			return true;
		}
	return false;
}

const CreditPolicyConf *
ca_credit_policy(int kind, const char *group, const char *currency)
{
	const ConfCache *c = ensure_conf();

	/* rows are ordered most specific first: the first match wins */
	for (int i = 0; i < c->ncredit_policies; i++)
	{
		const CreditPolicyConf *p = &c->credit_policies[i];

		if (!p->any_kind && (kind < 0 || p->kind != kind))
			continue;
		if (!p->any_group && (group == NULL || strcmp(p->group, group) != 0))
			continue;
		if (!p->any_currency && strcmp(p->currency, currency) != 0)
			continue;
		return p;
	}
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("no credit policy applies to channel kind %s in %s",
					kind >= 0 ? ca_channel_kind_names[kind] : "?", currency),
			 errhint("Keep a default row in customer_account.credit_policy with channel_kind, customer_group and currency NULL.")));
	return NULL;
}

const MethodConf *
ca_methods(int *n)
{
	const ConfCache *c = ensure_conf();

	*n = c->nmethods;
	return c->methods;
}

const ChannelConf *
ca_channel(const char *code)
{
	const ConfCache *c = ensure_conf();

	for (int i = 0; i < c->nchannels; i++)
		if (strcmp(c->channels[i].code, code) == 0)
		{
			const ChannelConf *ch = &c->channels[i];

			if (ch->kind < 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("channel \"%s\" has a kind this version of customer_account does not know", code)));
			return ch;
		}
	ereport(ERROR,
			(errcode(ERRCODE_CA_UNKNOWN),
			 errmsg("unknown channel \"%s\"", code),
			 errhint("Channels are added with customer_account.add_channel().")));
	return NULL;
}

int64
ca_conf_to_units(int64 conf_amount, int minor)
{
	int64		div;
	int64		q;
	int64		r;

	/* ISO 4217 knows 0 to 4 minor digits; amounts are bounded at load */
	if (minor < 0 || minor > 4 || conf_amount < -CA_CONF_AMOUNT_MAX * 10000
		|| conf_amount > CA_CONF_AMOUNT_MAX * 10000)
		elog(ERROR, "configuration amount " INT64_FORMAT " with %d minor digits out of range", conf_amount, minor);
	/* round half away from zero to the minor unit */
	div = pow10_int64(4 - minor);
	q = conf_amount / div;
	r = conf_amount % div;
	if (2 * (r < 0 ? -r : r) >= div)
		q += conf_amount < 0 ? -1 : 1;
	return q;
}

/*
 * config_changed: AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE FOR EACH
 * STATEMENT on the configuration tables.  Sends a relcache invalidation for
 * the table, so that every backend reloads its cache before the next call.
 */
PG_FUNCTION_INFO_V1(config_changed);
Datum
config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trig;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("config_changed: not called by trigger manager")));
	trig = (TriggerData *) fcinfo->context;
	CacheInvalidateRelcache(trig->tg_relation);
	return PointerGetDatum(NULL);
}
