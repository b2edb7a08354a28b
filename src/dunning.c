/*-------------------------------------------------------------------------
 *
 * dunning.c
 *	  dunning_run(as_of date): one notice per customer and currency (not
 *	  per invoice), one level per run, each level's fee booked once per
 *	  dunning cycle, every notice written to the outbox and announced with
 *	  NOTIFY.  A run is idempotent for its date (a second call returns the
 *	  first call's notices) and cannot run for a date before the last run.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "dunning_rules.h"
#include "money.h"
#include "posting.h"
#include "spi_util.h"

#define MAX_STEPS 16

static SPIPlanPtr plan_notice;
static SPIPlanPtr plan_state_dunning;
static SPIPlanPtr plan_outbox;

static void
put_notice_row(ReturnSetInfo *rsinfo, int64 customer_id, const char *currency, int32 level,
			   int64 overdue, int64 fee, const char *action)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	int32		code = currency_pack(currency, 3);

	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	values[2] = Int32GetDatum(level);
	values[3] = CurrencyAmountPGetDatum(make_currency_amount(overdue, code));
	values[4] = CurrencyAmountPGetDatum(make_currency_amount(fee, code));
	values[5] = CStringGetTextDatum(action);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* the notices of an earlier run of the same date, unchanged */
static void
replay_run(ReturnSetInfo *rsinfo, DateADT as_of)
{
	Oid			types[1] = {DATEOID};
	Datum		values[1] = {DateADTGetDatum(as_of)};

	if (SPI_execute_with_args("SELECT customer_id, currency, level, overdue_amount, fee, action"
							  " FROM customer_account.dunning_notice WHERE run_date = $1"
							  " ORDER BY customer_id, currency", 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read dunning notices");
	for (uint64 i = 0; i < SPI_processed; i++)
		put_notice_row(rsinfo, ca_get_int64(i, 1, NULL), ca_get_text(i, 2), ca_get_int32(i, 3, NULL),
					   ca_get_int64(i, 4, NULL), ca_get_int64(i, 5, NULL), ca_get_text(i, 6));
}

PG_FUNCTION_INFO_V1(dunning_run);
Datum
dunning_run(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DateADT		as_of = PG_GETARG_DATEADT(0);
	TimestampTz as_of_ts;
	Oid			dtype[1] = {DATEOID};
	Datum		dval[1];
	bool		isnull;
	DunningStep steps[MAX_STEPS];
	char	   *actions[MAX_STEPS];
	char	   *fee_major[MAX_STEPS];
	int			nsteps;
	int			ncand;
	int64	   *cand_customer;
	char	  **cand_currency;
	int64	   *cand_overdue;
	TimestampTz *cand_due;
	MemoryContext loopcxt;
	MemoryContext oldcxt;
	int			notices = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (DATE_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dunning needs a finite date")));
	as_of_ts = date2timestamp_no_overflow(as_of);
	dval[0] = DateADTGetDatum(as_of);

	ca_connect();
	/* one dunning run at a time */
	if (SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('customer_account.dunning_run'))",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not take the dunning lock");
	/* a fresh snapshot (read_only = false): a run that committed while we waited is seen */
	if (SPI_execute("SELECT max(run_date) FROM customer_account.dunning_run_log", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the dunning log");
	{
		Datum		last = ca_get_datum(0, 1, &isnull);

		if (!isnull && DatumGetDateADT(last) > as_of)
			ereport(ERROR,
					(errcode(ERRCODE_CA_REFUSED),
					 errmsg("cannot run dunning for %s: the last run was for %s",
							DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(as_of))),
							DatumGetCString(DirectFunctionCall1(date_out, last))),
					 errhint("Dunning runs move forward in time; run it for today.")));
		if (!isnull && DatumGetDateADT(last) == as_of)
		{
			replay_run(rsinfo, as_of);
			ca_finish();
			return (Datum) 0;
		}
	}
	if (SPI_execute_with_args("INSERT INTO customer_account.dunning_run_log (run_date) VALUES ($1)",
							  1, dtype, dval, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not log the dunning run");

	/* the ladder */
	if (SPI_execute("SELECT level, days_overdue, delay_days, fee::text, action FROM customer_account.dunning_level"
					" ORDER BY level", true, MAX_STEPS) != SPI_OK_SELECT)
		elog(ERROR, "could not read the dunning levels");
	nsteps = (int) SPI_processed;
	for (int i = 0; i < nsteps; i++)
	{
		steps[i].level = ca_get_int32(i, 1, NULL);
		steps[i].days_overdue = ca_get_int32(i, 2, NULL);
		steps[i].delay_days = ca_get_int32(i, 3, NULL);
		fee_major[i] = ca_get_text(i, 4);
		actions[i] = ca_get_text(i, 5);
	}

	/* paid (or disputed) items leave dunning: reset who has nothing overdue any more */
	if (SPI_execute_with_args("UPDATE customer_account.account_state s SET dunning_level = 0,"
							  " dunning_cycle = dunning_cycle + 1, updated_at = now()"
							  " WHERE s.dunning_level > 0 AND NOT EXISTS (SELECT 1 FROM customer_account.open_item i"
							  "   WHERE i.customer_id = s.customer_id AND i.currency = s.currency"
							  "     AND i.settled_at IS NULL AND NOT i.disputed AND i.kind <> 'prepayment'"
							  "     AND i.due_at < $1::timestamptz)",
							  1, dtype, dval, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not reset dunning levels");

	/* who is overdue: a range scan of the unsettled items by due date */
	if (SPI_execute_with_args("SELECT customer_id, currency, sum(open)::bigint, min(due_at)"
							  " FROM customer_account.open_item"
							  " WHERE settled_at IS NULL AND NOT disputed AND kind <> 'prepayment'"
							  "   AND due_at < $1::timestamptz"
							  " GROUP BY customer_id, currency ORDER BY customer_id, currency",
							  1, dtype, dval, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read overdue items");
	ncand = (int) SPI_processed;
	cand_customer = palloc(sizeof(int64) * Max(ncand, 1));
	cand_currency = palloc(sizeof(char *) * Max(ncand, 1));
	cand_overdue = palloc(sizeof(int64) * Max(ncand, 1));
	cand_due = palloc(sizeof(TimestampTz) * Max(ncand, 1));
	for (int i = 0; i < ncand; i++)
	{
		cand_customer[i] = ca_get_int64(i, 1, NULL);
		cand_currency[i] = ca_get_text(i, 2);
		cand_overdue[i] = ca_get_int64(i, 3, NULL);
		cand_due[i] = ca_get_timestamptz(i, 4, NULL);
	}
	SPI_freetuptable(SPI_tuptable);

	loopcxt = AllocSetContextCreate(CurrentMemoryContext, "dunning loop", ALLOCSET_DEFAULT_SIZES);
	for (int i = 0; i < ncand; i++)
	{
		AccountState st;
		int32		minor = currency_minor_units(currency_pack(cand_currency[i], 3));
		int32		run_day = (int32) as_of;
		int32		oldest_days;
		int32		last_day = 0;
		bool		has_last;
		int32		cycle;
		int64		tolerance;
		int32		level;
		int64		fee = 0;
		const char *action = NULL;

		oldcxt = MemoryContextSwitchTo(loopcxt);
		lock_account(cand_customer[i], cand_currency[i], &st);
		{
			Oid			types[3] = {INT8OID, TEXTOID, INT4OID};
			Datum		values[3];

			ca_prepare(&plan_state_dunning,
					   "SELECT s.dunned_at, s.dunning_cycle,"
					   "  round(p.overdue_tolerance * 10::numeric ^ $3)::bigint"
					   " FROM customer_account.account_state s"
					   " JOIN customer_account.customer c ON c.customer_id = s.customer_id"
					   " LEFT JOIN LATERAL (SELECT * FROM customer_account.credit_policy p"
					   "   WHERE p.channel_kind IS NULL AND (p.customer_group IS NULL OR p.customer_group = c.customer_group)"
					   "     AND (p.currency IS NULL OR p.currency = s.currency)"
					   "   ORDER BY p.customer_group IS NULL, p.currency IS NULL LIMIT 1) p ON true"
					   " WHERE s.customer_id = $1 AND s.currency = $2",
					   3, types);
			values[0] = Int64GetDatum(cand_customer[i]);
			values[1] = CStringGetTextDatum(cand_currency[i]);
			values[2] = Int32GetDatum(minor);
			ca_execute(plan_state_dunning, values, NULL, true, 1);
			{
				Datum		d = ca_get_datum(0, 1, &isnull);

				has_last = !isnull;
				if (has_last)
					last_day = (int32) DatumGetDateADT(d);
			}
			cycle = ca_get_int32(0, 2, NULL);
			tolerance = ca_get_int64(0, 3, &isnull);
			if (isnull)
				tolerance = 0;
			SPI_freetuptable(SPI_tuptable);
		}
		oldest_days = (int32) ((as_of_ts - cand_due[i]) / USECS_PER_DAY);
		level = dunning_next_level(st.dunning_level, last_day, has_last, run_day, oldest_days,
								   cand_overdue[i], tolerance, steps, nsteps);
		if (level > 0)
		{
			Oid			types[8] = {INT8OID, TEXTOID, INT4OID, INT4OID, DATEOID, INT8OID, INT8OID, TEXTOID};
			Datum		values[8];

			for (int s = 0; s < nsteps; s++)
				if (steps[s].level == level)
				{
					fee = DatumGetInt64(DirectFunctionCall1(numeric_int8,
															DirectFunctionCall2(numeric_round,
																				DirectFunctionCall2(numeric_mul,
																									DirectFunctionCall3(numeric_in, CStringGetDatum(fee_major[s]), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)),
																									NumericGetDatum(int64_to_numeric(pow10_int64(minor)))),
																				Int32GetDatum(0))));
					action = actions[s];
				}

			/* the notice; a level's fee is booked once per dunning cycle */
			ca_prepare(&plan_notice,
					   "INSERT INTO customer_account.dunning_notice"
					   " (customer_id, currency, level, cycle, run_date, overdue_amount, fee, action)"
					   " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
					   " ON CONFLICT (customer_id, currency, level, cycle) DO NOTHING",
					   8, types);
			values[0] = Int64GetDatum(cand_customer[i]);
			values[1] = CStringGetTextDatum(cand_currency[i]);
			values[2] = Int32GetDatum(level);
			values[3] = Int32GetDatum(cycle);
			values[4] = DateADTGetDatum(as_of);
			values[5] = Int64GetDatum(cand_overdue[i]);
			values[6] = Int64GetDatum(fee);
			values[7] = CStringGetTextDatum(action);
			ca_execute(plan_notice, values, NULL, false, 0);
			if (SPI_processed == 1)
			{
				Oid			otypes[6] = {INT8OID, TEXTOID, INT4OID, INT8OID, INT8OID, TEXTOID};
				Datum		ovalues[6];

				if (fee > 0)
					post_fee(cand_customer[i], cand_currency[i], fee, as_of_ts,
							 psprintf("dunning fee, level %d (%s)", level, action));
				if (SPI_execute_with_args("UPDATE customer_account.account_state SET dunning_level = $3, dunned_at = $4"
										  " WHERE customer_id = $1 AND currency = $2", 4,
										  (Oid[]) {INT8OID, TEXTOID, INT4OID, DATEOID},
										  (Datum[]) {Int64GetDatum(cand_customer[i]), CStringGetTextDatum(cand_currency[i]),
										  Int32GetDatum(level), DateADTGetDatum(as_of)}, NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "could not update the dunning level");
				ca_prepare(&plan_outbox,
						   "INSERT INTO customer_account.outbox (customer_id, topic, payload)"
						   " VALUES ($1, 'dunning', jsonb_build_object('currency', $2, 'level', $3,"
						   "   'overdue_amount', customer_account.currency_amount_from_minor_units($4, $2)::text,"
						   "   'fee', customer_account.currency_amount_from_minor_units($5, $2)::text, 'action', $6,"
						   "   'language', (SELECT language FROM customer_account.customer WHERE customer_id = $1)))",
						   6, otypes);
				ovalues[0] = Int64GetDatum(cand_customer[i]);
				ovalues[1] = CStringGetTextDatum(cand_currency[i]);
				ovalues[2] = Int32GetDatum(level);
				ovalues[3] = Int64GetDatum(cand_overdue[i]);
				ovalues[4] = Int64GetDatum(fee);
				ovalues[5] = CStringGetTextDatum(action);
				ca_execute(plan_outbox, ovalues, NULL, false, 0);
				MemoryContextSwitchTo(oldcxt);
				put_notice_row(rsinfo, cand_customer[i], cand_currency[i], level, cand_overdue[i], fee, action);
				notices++;
			}
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(loopcxt);
	}
	MemoryContextDelete(loopcxt);
	if (notices > 0
		&& SPI_execute("SELECT pg_catalog.pg_notify('customer_account_outbox', 'dunning')", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not notify");
	ca_finish();
	return (Datum) 0;
}
