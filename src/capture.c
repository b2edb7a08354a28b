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
 *	  then (capture_book.c): an order and all its lines arrive in separate
 *	  statements, and the account's orders table wants them in one
 *	  transaction with total = sum of the lines.
 *
 *	  With on_error=quarantine a failure is caught in a subtransaction and
 *	  the row is kept in capture_quarantine with the reason instead.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "capture.h"
#include "spi_util.h"

/* ------------------------------------------------------------------------
 * running a job, with or without the quarantine
 * ------------------------------------------------------------------------
 */
/* reconcile (or, at row time, check) one key in its own SPI connection */
static CaptureOutcome
run_job(CaptureJob *j)
{
	CaptureOutcome out = OUT_UNCHANGED;
	ErrorContextCallback cb;
	CaptureErrorContext ec;

	ca_connect();
	ca_capture_push_context(&ec, &cb, j->map);
	ec.key = j->key;
	switch (j->map->kind)
	{
		case CAPTURE_ORDER:
			out = ca_capture_reconcile_order(j->map, j->rel, j->key, j->tup, j->check_lines, j->validate_only);
			break;
		case CAPTURE_LINE:
			/* row time only: orders book their lines */
			ca_capture_validate_line(j->map, j->tup, RelationGetDescr(j->rel));
			break;
		case CAPTURE_PAYMENT:
			out = ca_capture_reconcile_payment(j->map, j->rel, j->key, j->tup, j->validate_only);
			break;
		case CAPTURE_RETURN:
			out = ca_capture_reconcile_return(j->map, j->rel, j->key, j->tup, j->validate_only);
			break;
		default:
			elog(ERROR, "unknown capture kind %d", j->map->kind);
	}
	ca_capture_pop_context(&cb);
	ca_finish();
	return out;
}

static SPIPlanPtr plan_quarantine;

/*
 * The reason of a failure: its message, and when that does not name the
 * trigger (an error of the core, such as an unknown channel), the capture
 * context line that names the trigger, the argument and the column.
 */
char *
ca_capture_error_reason(ErrorData *edata)
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
quarantine_row(CaptureJob *j, ErrorData *edata)
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
	values[2] = CStringGetTextDatum(ca_capture_kind_names[j->map->kind]);
	values[3] = ca_capture_text_or_null(j->key, &nulls[3]);
	values[4] = ca_capture_row_image(j->map, j->rel, j->tup, j->key, &isnull);
	nulls[4] = isnull ? 'n' : ' ';
	values[5] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
	values[6] = CStringGetTextDatum(ca_capture_error_reason(edata));
	initStringInfo(&detail);
	if (edata->detail)
		appendStringInfoString(&detail, edata->detail);
	if (edata->hint)
		appendStringInfo(&detail, "%sHint: %s", detail.len ? " " : "", edata->hint);
	values[7] = ca_capture_text_or_null(detail.len ? detail.data : NULL, &nulls[7]);
	ca_execute(plan_quarantine, values, nulls, false, 0);
	ca_finish();
}

/*
 * Run a job in a subtransaction.  A failure is put in the quarantine
 * (quarantine true) or handed back in *edata (when edata is not NULL);
 * otherwise the job runs plainly and its errors fail the statement.
 */
CaptureOutcome
ca_capture_run(CaptureJob *j, bool quarantine, ErrorData **edata)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile CaptureOutcome out = OUT_UNCHANGED;
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

/* the row's key as text (NULL when null) */
static char *
key_of(const CaptureMap *m, HeapTuple tup, TupleDesc td)
{
	return ca_capture_text(m, ca_capture_key_setting(m->kind), tup, td);
}

/*
 * The key to note for booking at commit: a line notes its order (through the
 * capture_order trigger whose lines= names the line's table); an order,
 * payment or return notes itself, and its key may not change.
 */
static Oid
pending_target(TriggerData *trig, CaptureMap *m, const char *key, Oid *relid)
{
	TupleDesc	td = RelationGetDescr(trig->tg_relation);

	if (m->kind == CAPTURE_LINE)
	{
		if (!OidIsValid(m->link_tgoid))
			m->link_tgoid = ca_capture_find_order_trigger(m->relid, &m->link_relid);
		if (!OidIsValid(m->link_tgoid))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("capture trigger \"%s\" on %s: no capture_order trigger names this table in lines=",
							m->tgname, m->relname),
					 errhint("Give the capture_order trigger of the orders table the argument 'lines=%s'.", m->relname)));
		*relid = m->link_relid;
		return m->link_tgoid;
	}
	if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event))
	{
		char	   *old_key = key_of(m, trig->tg_trigtuple, td);

		if (old_key && key && strcmp(old_key, key) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("capture trigger \"%s\" on %s: the key of a captured row changed from \"%s\" to \"%s\"",
							m->tgname, m->relname, old_key, key),
					 errhint("Order numbers, payment references and return numbers are the account's natural keys and do not change.")));
	}
	*relid = m->relid;
	return m->tgoid;
}

/*
 * The four capture triggers: AFTER INSERT OR UPDATE (lines also DELETE)
 * FOR EACH ROW.  Check the row against the mapping now, so that a value it
 * cannot take fails the shop's statement (or goes to the quarantine), and
 * note the key; capture_commit books it at commit.
 */
static Datum
capture_trigger(FunctionCallInfo fcinfo, CaptureKind kind)
{
	TriggerData *trig;
	TupleDesc	td;
	CaptureMap *m;
	HeapTuple	tup;
	CaptureJob	j;
	char	   *key;
	Oid			mark_tgoid;
	Oid			mark_relid;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called by trigger manager", ca_capture_function_names[kind])));
	trig = (TriggerData *) fcinfo->context;
	td = RelationGetDescr(trig->tg_relation);
	if (!TRIGGER_FIRED_AFTER(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("capture trigger \"%s\" on %s must be AFTER INSERT OR UPDATE ... FOR EACH ROW",
						trig->tg_trigger->tgname, RelationGetRelationName(trig->tg_relation))));
	/* a deleted shop row books nothing (lines: the order is checked again) */
	if (TRIGGER_FIRED_BY_DELETE(trig->tg_event) && kind != CAPTURE_LINE)
		return PointerGetDatum(NULL);

	m = ca_capture_map_get(trig->tg_relation, trig->tg_trigger, kind);
	tup = TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple : trig->tg_trigtuple;
	if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event) && !mapped_change(m, trig->tg_trigtuple, tup, td))
		return PointerGetDatum(NULL);
	key = key_of(m, tup, td);
	mark_tgoid = pending_target(trig, m, key, &mark_relid);

	if (!TRIGGER_FIRED_BY_DELETE(trig->tg_event))
	{
		memset(&j, 0, sizeof(j));
		j.map = m;
		j.rel = trig->tg_relation;
		j.key = key;
		j.tup = tup;
		j.validate_only = true;
		if (ca_capture_run(&j, m->quarantine, NULL) == OUT_QUARANTINED)
			return PointerGetDatum(NULL);
	}
	if (key == NULL)
		(void) ca_capture_text_required(m, ca_capture_key_setting(kind), tup, td);
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

/* capture_order(): the capture trigger of a shop's order table */
PG_FUNCTION_INFO_V1(capture_order);
Datum
capture_order(PG_FUNCTION_ARGS)
{
	return capture_trigger(fcinfo, CAPTURE_ORDER);
}

/* capture_order_line(): the capture trigger of a shop's order line table */
PG_FUNCTION_INFO_V1(capture_order_line);
Datum
capture_order_line(PG_FUNCTION_ARGS)
{
	return capture_trigger(fcinfo, CAPTURE_LINE);
}

/* capture_payment(): the capture trigger of a shop's payment table */
PG_FUNCTION_INFO_V1(capture_payment);
Datum
capture_payment(PG_FUNCTION_ARGS)
{
	return capture_trigger(fcinfo, CAPTURE_PAYMENT);
}

/* capture_return(): the capture trigger of a shop's return table */
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
	CaptureJob			j;
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
	t = ca_capture_find_trigger(rel, tgoid, NULL);
	kind = t ? ca_capture_kind_of_function(t->tgfoid) : -1;
	if (kind >= 0)
	{
		memset(&j, 0, sizeof(j));
		j.map = ca_capture_map_get(rel, t, (CaptureKind) kind);
		j.rel = rel;
		j.key = key;
		j.check_lines = check_lines;
		(void) ca_capture_run(&j, j.map->quarantine, NULL);
	}
	table_close(rel, AccessShareLock);
	ca_finish();
	return PointerGetDatum(NULL);
}
