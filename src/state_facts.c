/*-------------------------------------------------------------------------
 *
 * state_facts.c
 *	  The customer facts that balance() and the decisions use (merged_into,
 *	  blocked, customer_since, language, credit_limit, customer_group),
 *	  cached on every account state row of the customer so that a read
 *	  touches one row.
 *
 *	  Two triggers keep them equal to the customer row: a state row gets
 *	  them when it is inserted (BEFORE INSERT on account_state, reading the
 *	  customer FOR SHARE so that a concurrent change of the customer is
 *	  either seen or waits for this insert), and every change of one of
 *	  them on the customer row is copied to the customer's state rows
 *	  (AFTER UPDATE on customer).  verify_balances() compares them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/rel.h"

#include "spi_util.h"

#define NFACTS 6
/* the cached columns of account_state, in the order of the queries below */
static const char *const fact_columns[NFACTS] = {
	"merged_into", "customer_blocked", "customer_since", "customer_language", "customer_credit_limit",
	"customer_group"
};

static SPIPlanPtr plan_customer_facts;
static SPIPlanPtr plan_copy_facts;

/* the trigger's data, or 39P01 when not called as a trigger */
static TriggerData *
trigger_data(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called by trigger manager", name)));
	return (TriggerData *) fcinfo->context;
}

/*
 * account_state_facts: BEFORE INSERT FOR EACH ROW on account_state.  Fills
 * the cached customer columns from the customer row (left as given when
 * the customer is not there, as during a restore that loads account_state
 * first: the dumped values are the right ones then).
 */
PG_FUNCTION_INFO_V1(account_state_facts);
Datum
account_state_facts(PG_FUNCTION_ARGS)
{
	TriggerData *trig = trigger_data(fcinfo, "account_state_facts");
	Relation	rel = trig->tg_relation;
	TupleDesc	td = RelationGetDescr(rel);
	HeapTuple	tup = trig->tg_trigtuple;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;
	int			attnums[NFACTS];
	Datum		facts[NFACTS];
	char		nulls[NFACTS];

	if (!TRIGGER_FIRED_BEFORE(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event)
		|| !TRIGGER_FIRED_BY_INSERT(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("account_state_facts: must fire BEFORE INSERT FOR EACH ROW")));
	values[0] = heap_getattr(tup, SPI_fnumber(td, "customer_id"), td, &isnull);
	if (isnull)
		return PointerGetDatum(tup);	/* the NOT NULL constraint refuses it */

	ca_connect();
	ca_prepare(&plan_customer_facts,
			   "SELECT merged_into, blocked, customer_since, language, credit_limit, customer_group"
			   " FROM customer_account.customer WHERE customer_id = $1 FOR SHARE",
			   1, types);
	ca_execute(plan_customer_facts, values, NULL, false, 1);
	if (SPI_processed == 1)
	{
		for (int i = 0; i < NFACTS; i++)
		{
			bool		n;

			attnums[i] = SPI_fnumber(td, fact_columns[i]);
			if (attnums[i] <= 0)
				elog(ERROR, "column %s of account_state not found", fact_columns[i]);
			facts[i] = ca_get_datum(0, i + 1, &n);
			nulls[i] = n ? 'n' : ' ';
		}
		/* allocated in the trigger's caller's context, outlives SPI_finish */
		tup = SPI_modifytuple(rel, tup, NFACTS, attnums, facts, nulls);
		if (tup == NULL)
			elog(ERROR, "SPI_modifytuple failed: %s", SPI_result_code_string(SPI_result));
	}
	ca_finish();
	return PointerGetDatum(tup);
}

/*
 * customer_facts_changed: AFTER UPDATE FOR EACH ROW on customer, WHEN one
 * of the cached facts changed.  Copies them to the customer's state rows.
 */
PG_FUNCTION_INFO_V1(customer_facts_changed);
Datum
customer_facts_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trig = trigger_data(fcinfo, "customer_facts_changed");
	TupleDesc	td = RelationGetDescr(trig->tg_relation);
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		isnull;

	if (!TRIGGER_FIRED_AFTER(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event)
		|| !TRIGGER_FIRED_BY_UPDATE(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("customer_facts_changed: must fire AFTER UPDATE FOR EACH ROW")));
	values[0] = heap_getattr(trig->tg_newtuple, SPI_fnumber(td, "customer_id"), td, &isnull);
	ca_connect();
	/* the customer row as this statement left it (an AFTER trigger sees it) */
	ca_prepare(&plan_copy_facts,
			   "UPDATE customer_account.account_state s SET merged_into = c.merged_into,"
			   " customer_blocked = c.blocked, customer_since = c.customer_since,"
			   " customer_language = c.language, customer_credit_limit = c.credit_limit,"
			   " customer_group = c.customer_group"
			   " FROM customer_account.customer c WHERE c.customer_id = $1 AND s.customer_id = $1"
			   /* only rows whose facts differ: no wait on a row another writer holds */
			   "   AND (s.merged_into, s.customer_blocked, s.customer_since, s.customer_language,"
			   "        s.customer_credit_limit, s.customer_group)"
			   "     IS DISTINCT FROM (c.merged_into, c.blocked, c.customer_since, c.language,"
			   "        c.credit_limit, c.customer_group)",
			   1, types);
	ca_execute(plan_copy_facts, values, NULL, false, 0);
	ca_finish();
	return PointerGetDatum(NULL);
}
