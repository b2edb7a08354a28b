/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  Rows whose postings already exist.
 *
 *	  pg_dump writes the data of the extension's tables ordered by their
 *	  foreign keys and otherwise by name, so pg_restore loads the ledger,
 *	  the open items and the account state before the orders and payments
 *	  that produced them, each table in a transaction of its own (order
 *	  lines after their orders).  The posting triggers fire on those
 *	  INSERTs.  They recognise a restored row by its ledger entry: every
 *	  order is booked by exactly one 'order' entry and every payment by
 *	  exactly one 'payment' entry (unique partial indexes ledger_order_posted
 *	  and ledger_payment_posted enforce it).  A row whose entry exists is
 *	  checked against that entry and not booked again.
 *
 *	  The lookups are direct index reads, like the rest of the write path's
 *	  checks: order_line_check and order_total_check run without the
 *	  owner's rights.  In a database still at 1.0.0 (the library is shared
 *	  by every version) the indexes do not exist and nothing is recognised:
 *	  the 1.0.0 behaviour until ALTER EXTENSION ... UPDATE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "common/int.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "config.h"
#include "direct.h"
#include "money.h"
#include "restore.h"
#include "relcache_watch.h"

/* relations and columns, resolved once per backend until they change */
typedef struct RestoreRels
{
	bool		valid;
	Oid			ledger,
				ledger_order,	/* (order_no) WHERE order_no IS NOT NULL */
				order_posted,	/* unique (order_no) WHERE entry_type = 'order' */
				payment_posted, /* unique (payment_ref) WHERE entry_type = 'payment' */
				line,
				line_pkey;
	AttrNumber	e_customer,
				e_type,
				e_amount,
				e_event_at,
				l_price,
				l_qty;
} RestoreRels;

static RestoreRels rr;
static bool rr_callback = false;

/* a relcache invalidation of any of ours (a new index sends one for ledger) */
static void
rr_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == rr.ledger || relid == rr.ledger_order
		|| relid == rr.order_posted || relid == rr.payment_posted
		|| relid == rr.line || relid == rr.line_pkey)
		rr.valid = false;
}

static Oid
required_rel(Oid nsp, const char *name)
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
required_att(Oid rel, const char *name)
{
	AttrNumber	a = get_attnum(rel, name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column %s of relation %u not found", name, rel);
	return a;
}

static void
rr_ensure(void)
{
	Oid			nsp;

	if (!rr_callback)
	{
		ca_watch_relcache(rr_invalidate);
		rr_callback = true;
	}
	if (rr.valid)
		return;
	nsp = get_namespace_oid("customer_account", false);
	rr.ledger = required_rel(nsp, "ledger");
	rr.ledger_order = required_rel(nsp, "ledger_order");
	/* absent in a 1.0.0 database */
	rr.order_posted = get_relname_relid("ledger_order_posted", nsp);
	rr.payment_posted = get_relname_relid("ledger_payment_posted", nsp);
	rr.line = required_rel(nsp, "order_line");
	rr.line_pkey = required_rel(nsp, "order_line_pkey");
	rr.e_customer = required_att(rr.ledger, "customer_id");
	rr.e_type = required_att(rr.ledger, "entry_type");
	rr.e_amount = required_att(rr.ledger, "amount");
	rr.e_event_at = required_att(rr.ledger, "event_at");
	rr.l_price = required_att(rr.line, "unit_price");
	rr.l_qty = required_att(rr.line, "qty");
	rr.valid = true;
}

/* the entry that booked an order or a payment, as found in the ledger */
typedef struct PostedEntry
{
	int64		customer_id;
	CurrencyAmount amount;
	TimestampTz event_at;
	TransactionId xmin;
} PostedEntry;

/* look key up in one of the unique partial indexes; false when absent */
static bool
find_posting(Oid index_oid, const char *key, PostedEntry *e)
{
	Relation	heap;
	Relation	index;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	ScanKeyData skey;
	bool		found;

	if (!OidIsValid(index_oid))
		return false;
	heap = table_open(rr.ledger, AccessShareLock);
	index = index_open(index_oid, AccessShareLock);
	slot = table_slot_create(heap, NULL);
	ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0],
						   F_TEXTEQ, CStringGetTextDatum(key));
	scan = index_beginscan(heap, index, GetLatestSnapshot(), 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	if (found)
	{
		bool		isnull;

		e->customer_id = DatumGetInt64(slot_getattr(slot, rr.e_customer, &isnull));
		e->amount = *DatumGetCurrencyAmountP(slot_getattr(slot, rr.e_amount, &isnull));
		e->event_at = DatumGetTimestampTz(slot_getattr(slot, rr.e_event_at, &isnull));
		e->xmin = DatumGetTransactionId(slot_getsysattr(slot, MinTransactionIdAttributeNumber, &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	return found;
}

/* does the ledger hold an entry of this type for the order? */
static bool
ledger_has(const char *order_no, const char *entry_type)
{
	Relation	heap = table_open(rr.ledger, AccessShareLock);
	Relation	index = index_open(rr.ledger_order, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	IndexScanDesc scan;
	ScanKeyData skey;
	bool		found = false;

	ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0],
						   F_TEXTEQ, CStringGetTextDatum(order_no));
	scan = index_beginscan(heap, index, GetLatestSnapshot(), 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	while (!found && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		char	   *type = TextDatumGetCString(slot_getattr(slot, rr.e_type, &isnull));

		found = (strcmp(type, entry_type) == 0);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	return found;
}

/*
 * The entry's customer is the row's, or was merged (perhaps over several
 * steps) into it: a merge re-points orders and payments but never
 * rewrites the ledger.
 */
static bool
same_account(int64 entry_customer, int64 row_customer)
{
	int64		c = entry_customer;

	for (int depth = 0; c != row_customer; depth++)
	{
		CustomerRow row;

		if (depth > 1000)
			return false;
		ca_read_customer(c, GetLatestSnapshot(), &row);
		if (!row.merged)
			return false;
		c = row.merged_into;
	}
	return true;
}

/* a column of a trigger's row, by name */
static Datum
col(HeapTuple tup, TupleDesc td, const char *name, bool *isnull)
{
	int			attno = SPI_fnumber(td, name);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" not found", name);
	return heap_getattr(tup, attno, td, isnull);
}

static char *
col_text(HeapTuple tup, TupleDesc td, const char *name)
{
	bool		isnull;
	Datum		d = col(tup, td, name, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* 23505: the ledger books this key for something else than the row */
static void
posted_otherwise(const char *what, const char *key, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNIQUE_VIOLATION),
			 errmsg("%s \"%s\" is already booked in the ledger with other content", what, key),
			 errdetail("%s", detail),
			 errhint("A restored row must match the restored ledger; an order number or payment reference books once.")));
}

bool
ca_order_already_posted(HeapTuple tup, TupleDesc td)
{
	char	   *order_no = col_text(tup, td, "order_no");
	bool		isnull;
	int64		customer_id = DatumGetInt64(col(tup, td, "customer_id", &isnull));
	CurrencyAmount *total = DatumGetCurrencyAmountP(col(tup, td, "total", &isnull));
	TimestampTz placed_at = DatumGetTimestampTz(col(tup, td, "placed_at", &isnull));
	bool		not_cancelled;
	PostedEntry e;

	rr_ensure();
	if (!find_posting(rr.order_posted, order_no, &e))
		return false;
	if (e.amount.code != total->code || e.amount.units != total->units)
		posted_otherwise("order", order_no,
						 psprintf("The ledger books %s, the order's total is %s.",
								  ca_currency_amount_to_cstring(&e.amount), ca_currency_amount_to_cstring(total)));
	if (e.event_at != placed_at)
		posted_otherwise("order", order_no,
						 psprintf("The ledger books it placed at %s, the order says %s.",
								  pstrdup(timestamptz_to_str(e.event_at)), timestamptz_to_str(placed_at)));
	if (!same_account(e.customer_id, customer_id))
		posted_otherwise("order", order_no,
						 psprintf("The ledger books it for customer " INT64_FORMAT ", the order names customer " INT64_FORMAT ".",
								  e.customer_id, customer_id));
	(void) col(tup, td, "cancelled_at", &not_cancelled);
	if (!not_cancelled != ledger_has(order_no, "cancel"))
		posted_otherwise("order", order_no,
						 not_cancelled ? "The ledger books its cancellation, the order is not cancelled."
						 : "The order is cancelled, the ledger books no cancellation.");
	return true;
}

bool
ca_payment_already_posted(HeapTuple tup, TupleDesc td)
{
	char	   *payment_ref = col_text(tup, td, "payment_ref");
	bool		isnull;
	int64		customer_id = DatumGetInt64(col(tup, td, "customer_id", &isnull));
	CurrencyAmount *amount = DatumGetCurrencyAmountP(col(tup, td, "amount", &isnull));
	TimestampTz received_at = DatumGetTimestampTz(col(tup, td, "received_at", &isnull));
	PostedEntry e;

	rr_ensure();
	if (!find_posting(rr.payment_posted, payment_ref, &e))
		return false;
	/* a payment's entry takes the (positive) amount off the balance */
	if (e.amount.code != amount->code || amount->units <= 0 || e.amount.units != -amount->units)
		posted_otherwise("payment", payment_ref,
						 psprintf("The ledger books %s, the payment is %s.",
								  ca_currency_amount_to_cstring(&e.amount), ca_currency_amount_to_cstring(amount)));
	if (e.event_at != received_at)
		posted_otherwise("payment", payment_ref,
						 psprintf("The ledger books it received at %s, the payment says %s.",
								  pstrdup(timestamptz_to_str(e.event_at)), timestamptz_to_str(received_at)));
	if (!same_account(e.customer_id, customer_id))
		posted_otherwise("payment", payment_ref,
						 psprintf("The ledger books it for customer " INT64_FORMAT ", the payment names customer " INT64_FORMAT ".",
								  e.customer_id, customer_id));
	return true;
}

bool
ca_order_posted_earlier(const char *order_no)
{
	PostedEntry e;

	rr_ensure();
	return find_posting(rr.order_posted, order_no, &e) && !TransactionIdIsCurrentTransactionId(e.xmin);
}

bool
ca_order_booked_in_this_transaction(const char *order_no, TransactionId order_xmin)
{
	PostedEntry e;

	rr_ensure();
	if (!OidIsValid(rr.order_posted))
		return TransactionIdIsCurrentTransactionId(order_xmin);	/* 1.0.0 */
	return find_posting(rr.order_posted, order_no, &e) && TransactionIdIsCurrentTransactionId(e.xmin);
}

bool
ca_restored_order_takes_line(const char *order_no, const CurrencyAmount *total,
							 const CurrencyAmount *price, int32 qty)
{
	PostedEntry e;
	Relation	heap;
	Relation	index;
	TupleTableSlot *slot;
	IndexScanDesc scan;
	ScanKeyData skey;
	bool		only_mine = true;
	int64		sum;

	rr_ensure();
	if (!find_posting(rr.order_posted, order_no, &e))
		return false;
	if (pg_mul_s64_overflow(price->units, qty, &sum))
		return false;

	/*
	 * Every line the order has so far, this transaction's included (even
	 * those of the running statement: a restore copies all lines in one):
	 * an order that committed with its lines never takes another.  A line
	 * this transaction merely updated (a merge re-points its customer) is
	 * not one it inserted.
	 */
	heap = table_open(rr.line, AccessShareLock);
	index = index_open(rr.line_pkey, AccessShareLock);
	slot = table_slot_create(heap, NULL);
	ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid, index->rd_indcollation[0],
						   F_TEXTEQ, CStringGetTextDatum(order_no));
	scan = index_beginscan(heap, index, SnapshotSelf, 1, 0);
	index_rescan(scan, &skey, 1, NULL, 0);
	while (only_mine && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		CurrencyAmount *p = DatumGetCurrencyAmountP(slot_getattr(slot, rr.l_price, &isnull));
		int32		q = DatumGetInt32(slot_getattr(slot, rr.l_qty, &isnull));
		TransactionId xmin = DatumGetTransactionId(slot_getsysattr(slot, MinTransactionIdAttributeNumber, &isnull));
		HeapTuple	tuple = ExecFetchSlotHeapTuple(slot, false, NULL);
		int64		line;

		if (!TransactionIdIsCurrentTransactionId(xmin) || (tuple->t_data->t_infomask & HEAP_UPDATED)
			|| p->code != total->code
			|| pg_mul_s64_overflow(p->units, q, &line) || pg_add_s64_overflow(sum, line, &sum))
			only_mine = false;
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	return only_mine && sum <= total->units;
}
