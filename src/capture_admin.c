/*-------------------------------------------------------------------------
 *
 * capture_admin.c
 *	  The DBA's side of capture triggers: capture_backfill() books a table's
 *	  existing rows through the same reconciliation as the triggers (in key
 *	  order, batch by batch, resumable); replay_quarantine() books
 *	  quarantined rows again after a fix; check_capture() checks every
 *	  capture trigger of a table at once; capture_validate() is the check
 *	  the extension's event trigger runs on CREATE TRIGGER.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_index.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "capture.h"
#include "currency.h"
#include "spi_util.h"

/* ------------------------------------------------------------------------
 * capture_backfill(source regclass, batch_size int): the table's history
 * through the same reconciliation, resumable
 * ------------------------------------------------------------------------
 */
static SPIPlanPtr plan_state_read;
static SPIPlanPtr plan_state_write;
static SPIPlanPtr plan_state_done;
static SPIPlanPtr plan_quarantine_open;
static SPIPlanPtr plan_quarantine_done;

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
			if (ca_capture_kind_of_function(rel->trigdesc->triggers[i].tgfoid) == k)
				result = lappend(result, &rel->trigdesc->triggers[i]);
	}
	return result;
}

/* the first trigger of rel calling the capture function of kind, or NULL */
static const Trigger *
trigger_of_kind(Relation rel, int kind)
{
	for (int i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
		if (ca_capture_kind_of_function(rel->trigdesc->triggers[i].tgfoid) == kind)
			return &rel->trigdesc->triggers[i];
	return NULL;
}

/* the caller (the role in effect) must be able to read the shop's table */
static void
require_select(Oid relid)
{
	if (pg_class_aclcheck(relid, GetOuterUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid)),
				 errhint("The back-fill and the replay read the shop's table; the caller needs SELECT on it.")));
}

/* where an interrupted back-fill of this trigger stopped (NULL: the start) */
static char *
backfill_resume_key(Oid relid, const char *tgname)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		values[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(tgname)};

	ca_prepare(&plan_state_read,
			   "SELECT last_key FROM customer_account.capture_backfill_state"
			   " WHERE source = $1::pg_catalog.regclass AND trigger_name = $2", 2, types);
	ca_execute(plan_state_read, values, NULL, false, 1);
	return SPI_processed > 0 ? ca_get_text(0, 1) : NULL;
}

/* remember where this call stopped; a finished table starts over next time */
static void
backfill_remember(Oid relid, const char *tgname, bool done, const char *last_key, int64 rows)
{
	Oid			types[4] = {OIDOID, TEXTOID, TEXTOID, INT8OID};
	Datum		values[4] = {ObjectIdGetDatum(relid), CStringGetTextDatum(tgname), (Datum) 0, Int64GetDatum(rows)};

	if (done)
	{
		ca_prepare(&plan_state_done,
				   "DELETE FROM customer_account.capture_backfill_state"
				   " WHERE source = $1::pg_catalog.regclass AND trigger_name = $2", 2, types);
		ca_execute(plan_state_done, values, NULL, false, 0);
		return;
	}
	values[2] = CStringGetTextDatum(last_key ? last_key : "");
	ca_prepare(&plan_state_write,
			   "INSERT INTO customer_account.capture_backfill_state AS s (source, trigger_name, last_key, rows_done)"
			   " VALUES ($1::pg_catalog.regclass, $2, $3, $4) ON CONFLICT (source, trigger_name) DO UPDATE SET"
			   " last_key = EXCLUDED.last_key, rows_done = s.rows_done + EXCLUDED.rows_done, updated_at = now()",
			   4, types);
	ca_execute(plan_state_write, values, NULL, false, 0);
}

/*
 * Book the next up to want rows after *last_key (in key order), each in its
 * own SPI connection and a per-row memory context; count the outcomes.
 * Returns how many rows were read and moves *last_key on.
 */
static uint64
backfill_batch(Relation rel, CaptureMap *m, char **last_key, int want, int64 *counts, MemoryContext rowcxt)
{
	const CaptureSource *ks = &m->src[ca_capture_key_setting(m->kind)];
	const char *col = quote_identifier(ks->colname);
	char	   *sql;
	SPITupleTable *tt;
	uint64		n;

	sql = psprintf("SELECT _ca_row, _ca_row.%s::text FROM %s _ca_row WHERE _ca_row.%s IS NOT NULL%s ORDER BY _ca_row.%s LIMIT %d",
				   col, m->relname, col, *last_key ? psprintf(" AND _ca_row.%s OPERATOR(pg_catalog.>) $1", col) : "",
				   col, want);
	if (*last_key)
	{
		Oid			kt;
		Datum		kv = ca_capture_key_datum(rel, ks->attno, *last_key, &kt);

		ca_execute(ca_capture_plan(sql, 1, &kt), &kv, NULL, true, 0);
	}
	else
		ca_execute(ca_capture_plan(sql, 0, NULL), NULL, NULL, true, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);
		bool		isnull;
		CaptureJob	j;

		memset(&j, 0, sizeof(j));
		j.map = m;
		j.rel = rel;
		j.tup = ca_capture_row_tuple(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull), RelationGetRelid(rel));
		j.key = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
		counts[ca_capture_run(&j, m->quarantine, NULL)]++;
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
		CHECK_FOR_INTERRUPTS();
	}
	if (n > 0)
		*last_key = SPI_getvalue(tt->vals[n - 1], tt->tupdesc, 2);
	SPI_freetuptable(tt);
	return n;
}

/* back-fill through one trigger: a batch, or everything (batch_size 0); one result row */
static void
backfill_trigger(Relation rel, const Trigger *t, int32 batch_size, ReturnSetInfo *rsinfo, MemoryContext rowcxt)
{
	CaptureKind kind = (CaptureKind) ca_capture_kind_of_function(t->tgfoid);
	CaptureMap *m = ca_capture_map_get(rel, t, kind);
	char	   *last_key;
	int64		counts[OUT_COUNT] = {0};
	int64		rows = 0;
	bool		done = false;
	int			chunk = batch_size > 0 ? Min(batch_size, 10000) : 1000;
	int64		left = batch_size > 0 ? batch_size : -1;
	Datum		values[9];
	bool		nulls[9] = {false};

	if (m->src[ca_capture_key_setting(kind)].kind != SRC_COLUMN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capture trigger \"%s\" on %s: the back-fill needs a key column", m->tgname, m->relname)));
	last_key = backfill_resume_key(RelationGetRelid(rel), m->tgname);
	while (!done && left != 0)
	{
		int			want = (int) (left > 0 ? Min(left, chunk) : chunk);
		uint64		n = backfill_batch(rel, m, &last_key, want, counts, rowcxt);

		rows += n;
		if (left > 0)
			left -= n;
		done = ((int) n < want);
	}
	backfill_remember(RelationGetRelid(rel), m->tgname, done, last_key, rows);
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

PG_FUNCTION_INFO_V1(capture_backfill);
Datum
capture_backfill(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int32		batch_size = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel;
	List	   *triggers;
	ListCell   *lc;
	MemoryContext rowcxt;

	if (!PG_ARGISNULL(1) && batch_size <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be positive, not %d", batch_size)));
	InitMaterializedSRF(fcinfo, 0);
	require_select(relid);
	rel = table_open(relid, AccessShareLock);
	triggers = booking_triggers(rel);
	if (triggers == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("table %s has no capture_order, capture_payment or capture_return trigger",
						RelationGetRelationName(rel)),
				 trigger_of_kind(rel, CAPTURE_LINE)
				 ? errhint("Lines are back-filled with their orders: run capture_backfill() on the orders table.")
				 : errhint("Attach the capture trigger first; the back-fill books through its mapping.")));
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "capture_backfill row", ALLOCSET_DEFAULT_SIZES);
	ca_connect();
	foreach(lc, triggers)
		backfill_trigger(rel, (const Trigger *) lfirst(lc), batch_size, rsinfo, rowcxt);
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
	/* what the replay did */
	char	   *outcome;
	bool		resolved;
	ErrorData  *err;
} QRow;

/* the open quarantine rows (of one table, or all), locked, copied into cxt */
static QRow *
open_quarantine_rows(Oid only, MemoryContext cxt, int *n)
{
	Oid			types[1] = {OIDOID};
	Datum		v = ObjectIdGetDatum(only);
	char		nulls[1] = {OidIsValid(only) ? ' ' : 'n'};
	QRow	   *rows;
	MemoryContext old;

	ca_prepare(&plan_quarantine_open,
			   "SELECT quarantine_id, source::pg_catalog.oid, trigger_name::text, kind, source_key"
			   " FROM customer_account.capture_quarantine"
			   " WHERE resolved_at IS NULL AND ($1 IS NULL OR source = $1::pg_catalog.regclass)"
			   " ORDER BY quarantine_id FOR UPDATE", 1, types);
	ca_execute(plan_quarantine_open, &v, nulls, false, 0);
	*n = (int) SPI_processed;
	old = MemoryContextSwitchTo(cxt);
	rows = palloc0(sizeof(QRow) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		rows[i].id = ca_get_int64(i, 1, NULL);
		rows[i].relid = DatumGetObjectId(ca_get_datum(i, 2, NULL));
		rows[i].tgname = ca_get_text(i, 3);
		rows[i].kind = ca_get_text(i, 4);
		rows[i].key = ca_get_text(i, 5);
	}
	MemoryContextSwitchTo(old);
	return rows;
}

/* reconcile a quarantined row's key again; a line is replayed as its order */
static void
replay_key(QRow *q, Relation rel, const Trigger *t, int kind)
{
	CaptureJob	j;
	Relation	orel = NULL;
	CaptureOutcome out;

	memset(&j, 0, sizeof(j));
	j.map = ca_capture_map_get(rel, t, (CaptureKind) kind);
	j.rel = rel;
	j.key = q->key;
	j.check_lines = true;
	if (kind == CAPTURE_LINE)
	{
		Oid			order_relid;
		Oid			order_tg = ca_capture_find_order_trigger(q->relid, &order_relid);

		if (!OidIsValid(order_tg))
		{
			q->outcome = "kept: no capture_order trigger names this table in lines=";
			return;
		}
		orel = table_open(order_relid, AccessShareLock);
		j.map = ca_capture_map_get(orel, ca_capture_find_trigger(orel, order_tg, NULL), CAPTURE_ORDER);
		j.rel = orel;
	}
	out = ca_capture_run(&j, false, &q->err);
	if (q->err == NULL)
	{
		q->outcome = psprintf("replayed: %s", ca_capture_outcome_names[out]);
		q->resolved = true;
	}
	else
		q->outcome = psprintf("failed again: %s: %s", unpack_sql_state(q->err->sqlerrcode),
							  ca_capture_error_reason(q->err));
	if (orel)
		table_close(orel, AccessShareLock);
}

/* replay one quarantined row: find its trigger (by name, else the one of its kind) */
static void
replay_one(QRow *q)
{
	Relation	rel = try_table_open(q->relid, AccessShareLock);
	int			kind;
	const Trigger *t;

	if (rel == NULL)
	{
		q->outcome = "kept: the table no longer exists";
		return;
	}
	kind = strcmp(q->kind, "order") == 0 ? CAPTURE_ORDER : strcmp(q->kind, "line") == 0 ? CAPTURE_LINE :
		strcmp(q->kind, "payment") == 0 ? CAPTURE_PAYMENT : CAPTURE_RETURN;
	require_select(q->relid);
	t = ca_capture_find_trigger(rel, InvalidOid, q->tgname);
	if (t == NULL || ca_capture_kind_of_function(t->tgfoid) != kind)
		t = trigger_of_kind(rel, kind); /* recreated under another name */
	if (t == NULL)
		q->outcome = "kept: the table has no capture trigger of this kind";
	else if (q->key == NULL)
		q->outcome = "kept: the row had no key; fix the row in the shop";
	else
		replay_key(q, rel, t, kind);
	table_close(rel, AccessShareLock);
}

/* write what the replay did into the quarantine row */
static void
replay_record(const QRow *q)
{
	Oid			types[5] = {INT8OID, BOOLOID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', 'n', 'n'};

	values[0] = Int64GetDatum(q->id);
	values[1] = BoolGetDatum(q->resolved);
	values[2] = CStringGetTextDatum(q->outcome);
	if (q->err)
	{
		values[3] = CStringGetTextDatum(unpack_sql_state(q->err->sqlerrcode));
		values[4] = CStringGetTextDatum(ca_capture_error_reason(q->err));
		nulls[3] = nulls[4] = ' ';
	}
	ca_prepare(&plan_quarantine_done,
			   "UPDATE customer_account.capture_quarantine SET"
			   " resolved_at = CASE WHEN $2 THEN now() END, resolution = CASE WHEN $2 THEN $3 END,"
			   " sqlstate = coalesce($4, sqlstate), reason = coalesce($5, reason),"
			   " attempts = attempts + CASE WHEN $2 THEN 0 ELSE 1 END, last_seen = now()"
			   " WHERE quarantine_id = $1", 5, types);
	ca_execute(plan_quarantine_done, values, nulls, false, 0);
}

PG_FUNCTION_INFO_V1(replay_quarantine);
Datum
replay_quarantine(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			only = PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
	MemoryContext outer = CurrentMemoryContext;
	QRow	   *rows;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	if (OidIsValid(only))
		require_select(only);
	ca_connect();
	rows = open_quarantine_rows(only, outer, &n);
	for (int i = 0; i < n; i++)
	{
		QRow	   *q = &rows[i];
		Datum		values[4];
		bool		nulls[4] = {false, false, q->key == NULL, false};

		replay_one(q);
		replay_record(q);
		values[0] = Int64GetDatum(q->id);
		values[1] = ObjectIdGetDatum(q->relid);
		values[2] = q->key ? CStringGetTextDatum(q->key) : (Datum) 0;
		values[3] = CStringGetTextDatum(q->outcome);
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

/* one result row of check_capture() */
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

/* does the query (one text parameter) return a row? */
static bool
row_exists(const char *sql, const char *value)
{
	Oid			types[1] = {TEXTOID};
	Datum		v = CStringGetTextDatum(value);

	ca_execute(ca_capture_plan(sql, 1, types), &v, NULL, true, 1);
	return SPI_processed > 0;
}

/* is code a payment method of the account? */
static bool
known_method(const char *code)
{
	return row_exists("SELECT 1 FROM customer_account.payment_method WHERE code = $1", code);
}

/* is code a channel of the account? */
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
	ca_execute(ca_capture_plan(sql, 0, NULL), NULL, NULL, true, 0);
	tt = SPI_tuptable;
	n = SPI_processed;
	for (uint64 i = 0; i < n; i++)
	{
		char	   *v = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		char	   *problem = NULL;

		if (s == CS_STATUS)
		{
			const char *mapped = ca_capture_lookup(&m->status_map, v);
			const char *const *events = m->kind == CAPTURE_ORDER ? ca_capture_order_events
				: ca_capture_book_events;
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
			const char *mapped = ca_capture_lookup(&m->method_map, v);

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
			char	   *c = ca_capture_upper_trim(v);
			int32		code = ca_currency_pack(c, strlen(c));

			if (code < 0 || ca_currency_minor_units(code) < 0)
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
		m = ca_capture_parse(rel, t, kind, cxt);
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
		const char *mapped = ca_capture_lookup(&m->method_map, m->src[CS_METHOD].value);

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
				if (ca_capture_kind_of_function(lrel->trigdesc->triggers[i].tgfoid) == CAPTURE_LINE)
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

		if (!OidIsValid(ca_capture_find_order_trigger(m->relid, &orel)))
			check_emit(co, false, psprintf("no capture_order trigger names %s in lines=", m->relname));
	}
	if (m->kind == CAPTURE_RETURN && !OidIsValid(ca_capture_accept_return_oid()))
		check_emit(co, false, "customer_account.accept_return() is not installed: returns wait in the quarantine");
	if (m->kind != CAPTURE_LINE && m->src[ca_capture_key_setting(m->kind)].kind == SRC_COLUMN
		&& !has_leading_index(rel, m->src[ca_capture_key_setting(m->kind)].attno))
		check_emit(co, false, psprintf("table %s has no index on its key column \"%s\": commit-time bookings read rows by it",
									   m->relname, m->src[ca_capture_key_setting(m->kind)].colname));
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
		int			kind = ca_capture_kind_of_function(t->tgfoid);
		CaptureMap *m;
		char	   *why = NULL;

		if (kind < 0)
			continue;
		seen++;
		co.tgname = t->tgname;
		co.function = ca_capture_function_names[kind];
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
		int			kind = ca_capture_kind_of_function(t->tgfoid);

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
			(void) ca_capture_parse(rel, &trigger, (CaptureKind) kind, cxt);
			MemoryContextDelete(cxt);
			table_close(rel, AccessShareLock);
		}
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	PG_RETURN_VOID();
}
