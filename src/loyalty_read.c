/*-------------------------------------------------------------------------
 *
 * loyalty_read.c
 *	  loyalty_points(customer_id, as_of): correct from the dates alone.
 *	  When nothing was booked after as_of (the usual question, "now"), the
 *	  customer's lots are read by direct index scans, no SQL; a question
 *	  about the past sums the lot uses up to as_of instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "config.h"
#include "direct.h"
#include "loyalty_int.h"
#include "spi_util.h"
#include "relcache_watch.h"

static SPIPlanPtr plan_past_lots;


/* a lot row from SPI_tuptable: lot_id, remaining, earned_at, available_at, expires_at at col.. */
void
ca_loyalty_lot_from_spi(int row, int col, LoyaltyLotState *l)
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
	Oid			owner;			/* owner of the extension's tables */
} LoyaltyRels;

static LoyaltyRels lrels;
static bool lrels_callback = false;

/* relcache callback: one of the tables read directly changed */
static void
lrels_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == lrels.lot || relid == lrels.lot_customer || relid == lrels.account
		|| relid == lrels.account_pkey)
		lrels.valid = false;
}

/* a relation of the extension by name; 42P01 when the schema predates it */
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

/* a column number by name */
static AttrNumber
loyalty_att(Oid rel, const char *name)
{
	AttrNumber	a = get_attnum(rel, name);

	if (a == InvalidAttrNumber)
		elog(ERROR, "column %s of relation %u not found", name, rel);
	return a;
}

/* resolve the relations, indexes and columns read directly, once per backend */
static void
ensure_lrels(void)
{
	Oid			nsp;

	if (!lrels_callback)
	{
		ca_watch_relcache(lrels_invalidate);
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
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lrels.lot));

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for relation %u", lrels.lot);
		lrels.owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
		ReleaseSysCache(tup);
	}
	lrels.valid = true;
}

/* the owner of the extension's tables (the loyalty lots') */
Oid
ca_loyalty_owner(void)
{
	ensure_lrels();
	return lrels.owner;
}

typedef void (*RowFn) (TupleTableSlot *slot, void *arg);

/* scan heap through index on its first column = customer_id; calls fn per row */
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

/* a lot that still holds points, into the list */
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

/* the loyalty account's latest entry that moved points */
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
			   "SELECT l.lot_id, l.points + coalesce((SELECT sum(u.points) FROM customer_account.loyalty_lot_use u"
			   "   WHERE u.lot_id = l.lot_id AND u.at <= $2 AND u.kind <> 'expire'), 0)::bigint,"
			   "  l.earned_at, l.available_at, l.expires_at"
			   " FROM customer_account.loyalty_lot l WHERE l.customer_id = $1 AND l.earned_at <= $2",
			   2, types);
	ca_execute(plan_past_lots, values, NULL, true, 0);
	ll->n = 0;
	if ((int) SPI_processed > ll->max)
	{
		ll->max = (int) SPI_processed;
		ll->lots = repalloc(ll->lots, sizeof(LoyaltyLotState) * ll->max);
	}
	for (uint64 i = 0; i < SPI_processed; i++)
		ca_loyalty_lot_from_spi(i, 1, &ll->lots[ll->n++]);
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
char *
ca_loyalty_known_customer(int64 customer_id, Snapshot snap)
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
	(void) ca_loyalty_known_customer(customer_id, snap);
	lots_at(customer_id, as_of, snap, &ll);
	ca_lr_reading(ll.lots, ll.n, as_of, &r);
	values[0] = Int64GetDatum(r.available);
	values[1] = Int64GetDatum(r.pending);
	values[2] = Int64GetDatum(r.has_expiring ? r.expiring_next : 0);
	values[3] = TimestampTzGetDatum(r.expiring_at);
	nulls[3] = !r.has_expiring;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
