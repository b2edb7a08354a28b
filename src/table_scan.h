/*-------------------------------------------------------------------------
 *
 * table_scan.h
 *	  A sequential scan of one table of the extension, its columns by name:
 *	  what the whole-table readers (verify_balances' rebuild, the dunning
 *	  run's first read) share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_TABLE_SCAN_H
#define CUSTOMER_ACCOUNT_TABLE_SCAN_H

#include "postgres.h"

#include "access/tableam.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/rel.h"
#include "utils/snapshot.h"

typedef struct CaTableScan
{
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	AttrNumber	maxatt;			/* the last column asked for */
} CaTableScan;

/* open table name of schema nsp for a scan under snap; check_select: the caller's SELECT right */
extern void ca_scan_begin(CaTableScan *t, Oid nsp, const char *name, Snapshot snap, bool check_select);
/* the number of a column, which must have type (any type when InvalidOid) */
extern AttrNumber ca_scan_col(CaTableScan *t, const char *name, Oid type);
/* close the scan; the lock stays until the end of the transaction, as a query's */
extern void ca_scan_end(CaTableScan *t);

/* the next row, its columns up to the last one asked for deformed; false at the end */
static inline bool
ca_scan_next(CaTableScan *t)
{
	CHECK_FOR_INTERRUPTS();
	if (!table_scan_getnextslot(t->scan, ForwardScanDirection, t->slot))
		return false;
	slot_getsomeattrs(t->slot, t->maxatt);
	return true;
}

/* a column of the current row, and whether it is null */
#define CA_COL(t, c) ((t)->slot->tts_values[(c) - 1])
#define CA_NUL(t, c) ((t)->slot->tts_isnull[(c) - 1])

#endif
