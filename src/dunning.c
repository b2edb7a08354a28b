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
#include "utils/array.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "direct.h"
#include "dunning_rules.h"
#include "money.h"
#include "posting.h"
#include "spi_util.h"

#define MAX_STEPS 16


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

	/*
	 * Who is overdue: a range scan of the unsettled items by due date,
	 * joined to the account rows, which are locked here in one go (in key
	 * order) so that no writer changes them while the run decides.
	 */
	if (SPI_execute_with_args("SELECT i.customer_id, i.currency, i.overdue, i.oldest, s.dunning_level,"
							  "  s.dunned_at, s.dunning_cycle, c.customer_group"
							  " FROM (SELECT customer_id, currency, sum(open)::bigint AS overdue, min(due_at) AS oldest"
							  "       FROM customer_account.open_item"
							  "       WHERE settled_at IS NULL AND NOT disputed AND kind <> 'prepayment'"
							  "         AND due_at < $1::timestamptz GROUP BY customer_id, currency) i"
							  " JOIN customer_account.account_state s ON s.customer_id = i.customer_id AND s.currency = i.currency"
							  " JOIN customer_account.customer c ON c.customer_id = i.customer_id"
							  " ORDER BY i.customer_id, i.currency FOR UPDATE OF s",
							  1, dtype, dval, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read overdue items");
	ncand = (int) SPI_processed;
	{
		Datum	   *n_cust = palloc(sizeof(Datum) * Max(ncand, 1));
		Datum	   *n_cur = palloc(sizeof(Datum) * Max(ncand, 1));
		Datum	   *n_level = palloc(sizeof(Datum) * Max(ncand, 1));
		Datum	   *n_cycle = palloc(sizeof(Datum) * Max(ncand, 1));
		Datum	   *n_overdue = palloc(sizeof(Datum) * Max(ncand, 1));
		Datum	   *n_fee = palloc(sizeof(Datum) * Max(ncand, 1));
		Datum	   *n_action = palloc(sizeof(Datum) * Max(ncand, 1));
		int			n = 0;
		int32		run_day = (int32) as_of;
		Datum		args[9];
		Oid			argtypes[9] = {INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID,
		INT8ARRAYOID, TEXTARRAYOID, DATEOID, TIMESTAMPTZOID};
		SPITupleTable *cands = SPI_tuptable;
		uint64		inserted;

		/* the ladder decides, in C, for every candidate */
		for (int i = 0; i < ncand; i++)
		{
			int64		customer_id;
			char	   *currency;
			int64		overdue;
			TimestampTz oldest;
			int32		level;
			int32		last_day = 0;
			bool		has_last;
			int32		minor;
			int64		tolerance;
			const CreditPolicyConf *pol;
			char	   *group;
			Datum		d;

			SPI_tuptable = cands;
			customer_id = ca_get_int64(i, 1, NULL);
			currency = ca_get_text(i, 2);
			overdue = ca_get_int64(i, 3, NULL);
			oldest = ca_get_timestamptz(i, 4, NULL);
			d = ca_get_datum(i, 6, &isnull);
			has_last = !isnull;
			if (has_last)
				last_day = (int32) DatumGetDateADT(d);
			group = ca_get_text(i, 8);	/* any length: matched in full */
			minor = currency_minor_units(currency_pack(currency, 3));
			pol = ca_credit_policy(-1, group, currency);
			tolerance = ca_conf_to_units(pol->overdue_tolerance, minor);
			level = dunning_next_level(ca_get_int32(i, 5, NULL), last_day, has_last, run_day,
									   (int32) ((as_of_ts - oldest) / USECS_PER_DAY), overdue, tolerance,
									   steps, nsteps);
			if (level <= 0)
				continue;
			for (int st = 0; st < nsteps; st++)
				if (steps[st].level == level)
				{
					n_fee[n] = Int64GetDatum(DatumGetInt64(DirectFunctionCall1(numeric_int8,
																			  DirectFunctionCall2(numeric_round,
																								  DirectFunctionCall2(numeric_mul,
																													  DirectFunctionCall3(numeric_in, CStringGetDatum(fee_major[st]), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)),
																													  NumericGetDatum(int64_to_numeric(pow10_int64(minor)))),
																								  Int32GetDatum(0)))));
					n_action[n] = CStringGetTextDatum(actions[st]);
				}
			n_cust[n] = Int64GetDatum(customer_id);
			n_cur[n] = CStringGetTextDatum(currency);
			n_level[n] = Int32GetDatum(level);
			n_cycle[n] = Int32GetDatum(ca_get_int32(i, 7, NULL));
			n_overdue[n] = Int64GetDatum(overdue);
			n++;
		}
		SPI_freetuptable(cands);

		if (n > 0)
		{
			/* notices, once per customer, currency, level and cycle: the new ones come back */
			args[0] = PointerGetDatum(construct_array(n_cust, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[1] = PointerGetDatum(construct_array(n_cur, n, TEXTOID, -1, false, TYPALIGN_INT));
			args[2] = PointerGetDatum(construct_array(n_level, n, INT4OID, 4, true, TYPALIGN_INT));
			args[3] = PointerGetDatum(construct_array(n_cycle, n, INT4OID, 4, true, TYPALIGN_INT));
			args[4] = PointerGetDatum(construct_array(n_overdue, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[5] = PointerGetDatum(construct_array(n_fee, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[6] = PointerGetDatum(construct_array(n_action, n, TEXTOID, -1, false, TYPALIGN_INT));
			args[7] = DateADTGetDatum(as_of);
			args[8] = TimestampTzGetDatum(as_of_ts);
			if (SPI_execute_with_args("INSERT INTO customer_account.dunning_notice"
									  " (customer_id, currency, level, cycle, run_date, overdue_amount, fee, action)"
									  " SELECT u.c, u.cur, u.l, u.cy, $8, u.o, u.f, u.a"
									  " FROM unnest($1, $2, $3, $4, $5, $6, $7) AS u(c, cur, l, cy, o, f, a)"
									  " ON CONFLICT (customer_id, currency, level, cycle) DO NOTHING"
									  " RETURNING customer_id, currency, level, overdue_amount, fee, action",
									  9, argtypes, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
				elog(ERROR, "could not write dunning notices");
			inserted = SPI_processed;
			if (inserted > 0)
			{
				SPITupleTable *notices_tt = SPI_tuptable;

				/* the new levels and the outbox, each in one statement */
				if (SPI_execute_with_args("UPDATE customer_account.account_state s SET dunning_level = n.level, dunned_at = $1,"
										  "   updated_at = now()"
										  " FROM customer_account.dunning_notice n"
										  " WHERE n.run_date = $1 AND s.customer_id = n.customer_id AND s.currency = n.currency"
,
										  1, dtype, dval, NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "could not update the dunning levels");
				if (SPI_execute_with_args("INSERT INTO customer_account.outbox (customer_id, topic, payload)"
										  " SELECT n.customer_id, 'dunning', jsonb_build_object('currency', n.currency,"
										  "   'level', n.level,"
										  "   'overdue_amount', customer_account.currency_amount_from_minor_units(n.overdue_amount, n.currency)::text,"
										  "   'fee', customer_account.currency_amount_from_minor_units(n.fee, n.currency)::text,"
										  "   'action', n.action, 'language', c.language)"
										  " FROM customer_account.dunning_notice n JOIN customer_account.customer c USING (customer_id)"
										  " WHERE n.run_date = $1"

										  " ORDER BY n.customer_id, n.currency",
										  1, dtype, dval, NULL, false, 0) != SPI_OK_INSERT)
					elog(ERROR, "could not write the outbox");
				/* fees go through the posting core; the answer is the new notices */
				loopcxt = AllocSetContextCreate(CurrentMemoryContext, "dunning fees", ALLOCSET_DEFAULT_SIZES);
				for (uint64 r = 0; r < inserted; r++)
				{
					int64		customer_id;
					char	   *currency;
					int32		level;
					int64		overdue;
					int64		fee;
					char	   *action;

					SPI_tuptable = notices_tt;
					customer_id = ca_get_int64(r, 1, NULL);
					currency = ca_get_text(r, 2);
					level = ca_get_int32(r, 3, NULL);
					overdue = ca_get_int64(r, 4, NULL);
					fee = ca_get_int64(r, 5, NULL);
					action = ca_get_text(r, 6);
					put_notice_row(rsinfo, customer_id, currency, level, overdue, fee, action);
					notices++;
					if (fee > 0)
					{
						oldcxt = MemoryContextSwitchTo(loopcxt);
						post_fee(customer_id, currency, fee, as_of_ts,
								 psprintf("dunning fee, level %d (%s)", level, action));
						MemoryContextSwitchTo(oldcxt);
						MemoryContextReset(loopcxt);
					}
				}
				MemoryContextDelete(loopcxt);
			}
		}
	}
	if (notices > 0
		&& SPI_execute("SELECT pg_catalog.pg_notify('customer_account_outbox', 'dunning')", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not notify");
	ca_finish();
	return (Datum) 0;
}
