/*-------------------------------------------------------------------------
 *
 * table_scan.c
 *	  A sequential scan of one table of the extension, its columns by name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "table_scan.h"

/* open table name of schema nsp for a scan under snap; check_select: the caller's SELECT right */
void
ca_scan_begin(CaTableScan *t, Oid nsp, const char *name, Snapshot snap, bool check_select)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		elog(ERROR, "customer_account: table %s is missing", name);
	t->rel = table_open(relid, AccessShareLock);
	if (check_select)
	{
		AclResult	acl = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);

		if (acl != ACLCHECK_OK)
			aclcheck_error(acl, OBJECT_TABLE, name);
	}
	t->scan = table_beginscan(t->rel, snap, 0, NULL);
	t->slot = table_slot_create(t->rel, NULL);
	t->maxatt = 0;
}

/* the number of a column, which must have type (any type when InvalidOid) */
AttrNumber
ca_scan_col(CaTableScan *t, const char *name, Oid type)
{
	TupleDesc	td = RelationGetDescr(t->rel);

	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), name) != 0)
			continue;
		if (type != InvalidOid && att->atttypid != type)
			elog(ERROR, "customer_account: column %s.%s has type %s, expected %s",
				 RelationGetRelationName(t->rel), name, format_type_be(att->atttypid), format_type_be(type));
		t->maxatt = Max(t->maxatt, i + 1);
		return i + 1;
	}
	elog(ERROR, "customer_account: column %s.%s is missing", RelationGetRelationName(t->rel), name);
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/* close the scan; the lock stays until the end of the transaction, as a query's */
void
ca_scan_end(CaTableScan *t)
{
	ExecDropSingleTupleTableSlot(t->slot);
	table_endscan(t->scan);
	table_close(t->rel, NoLock);
}
