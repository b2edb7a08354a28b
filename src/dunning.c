/*-------------------------------------------------------------------------
 *
 * dunning.c
 *	  dunning_run(as_of date): one notice per customer and currency (not
 *	  per invoice), one level per run, each level's fee booked once per
 *	  dunning cycle, every notice written to the outbox and announced with
 *	  NOTIFY.  A run is idempotent for its date (a second call returns the
 *	  first call's notices) and cannot run for a date before the last run.
 *
 *	  The run never waits for a till.  It decides first, reading without
 *	  locks; then, in one short phase at the end, it locks only the account
 *	  rows it is going to change, in (customer_id, currency) order and with
 *	  SKIP LOCKED, decides those again from what is committed now, and
 *	  writes.  An account a till holds at that moment is skipped (a NOTICE
 *	  names it) and picked up by the next run; a till selling to a customer
 *	  the run does not change never waits for the run.
 *
 *	  Dates are UTC days: an item is overdue on as_of when it fell due
 *	  before as_of 00:00 UTC, and its days overdue count from there, so the
 *	  answer for a date does not depend on the session's TimeZone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "dunning_rules.h"
#include "input.h"
#include "money.h"
#include "posting.h"
#include "spi_util.h"

#define MAX_STEPS 16
/* skipped accounts named in the NOTICE's detail */
#define MAX_NAMED_SKIPS 10

/* the ladder, as read at the start of the run */
typedef struct Ladder
{
	DunningStep steps[MAX_STEPS];
	char	   *actions[MAX_STEPS];
	char	   *fee_major[MAX_STEPS];
	int			nsteps;
} Ladder;

/* one notice the run decided to send */
typedef struct Decision
{
	int64		customer_id;
	char	   *currency;
	int32		level;
	int32		cycle;
	int64		overdue;
	int64		fee;
	char	   *action;
} Decision;

/* (customer_id, currency) pairs, as arrays for unnest() */
typedef struct KeyList
{
	int			n;
	int			cap;
	int64	   *customer_id;
	char	  **currency;
} KeyList;

/*
 * What the ladder needs of every account with something overdue: the
 * undisputed receivables due before as_of 00:00 UTC ($1), summed per
 * customer and currency.  Read without locks.
 */
#define CANDIDATES_ALL \
	"SELECT i.customer_id, i.currency, i.overdue, i.oldest, s.dunning_level," \
	"  s.dunned_at, s.dunning_cycle, c.customer_group" \
	" FROM (SELECT customer_id, currency, sum(open)::bigint AS overdue, min(due_at) AS oldest" \
	"       FROM customer_account.open_item" \
	"       WHERE settled_at IS NULL AND NOT disputed AND kind <> 'prepayment'" \
	"         AND due_at < $1 GROUP BY customer_id, currency) i" \
	" JOIN customer_account.account_state s ON s.customer_id = i.customer_id AND s.currency = i.currency" \
	" JOIN customer_account.customer c ON c.customer_id = i.customer_id" \
	" ORDER BY i.customer_id, i.currency"

/* the same for the accounts named in $2, $3 (read after locking them) */
#define CANDIDATES_OF_KEYS \
	"SELECT k.c, k.cur, i.overdue, i.oldest, s.dunning_level," \
	"  s.dunned_at, s.dunning_cycle, c.customer_group" \
	" FROM unnest($2::bigint[], $3::text[]) AS k(c, cur)" \
	" JOIN customer_account.account_state s ON s.customer_id = k.c AND s.currency = k.cur" \
	" JOIN customer_account.customer c ON c.customer_id = k.c" \
	" CROSS JOIN LATERAL (SELECT sum(o.open)::bigint AS overdue, min(o.due_at) AS oldest" \
	"       FROM customer_account.open_item o" \
	"       WHERE o.customer_id = k.c AND o.currency = k.cur AND o.settled_at IS NULL" \
	"         AND NOT o.disputed AND o.kind <> 'prepayment' AND o.due_at < $1) i" \
	" WHERE i.overdue IS NOT NULL" \
	" ORDER BY k.c, k.cur"

/* nothing overdue any more (as of $1): the account leaves dunning */
#define NOTHING_OVERDUE \
	" s.dunning_level > 0 AND NOT EXISTS (SELECT 1 FROM customer_account.open_item i" \
	"   WHERE i.customer_id = s.customer_id AND i.currency = s.currency" \
	"     AND i.settled_at IS NULL AND NOT i.disputed AND i.kind <> 'prepayment'" \
	"     AND i.due_at < $1)"

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
							  " FROM customer_account.dunning_notice WHERE run_date = $1 AND merged_from IS NULL"
							  " ORDER BY customer_id, currency", 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read dunning notices");
	for (uint64 i = 0; i < SPI_processed; i++)
		put_notice_row(rsinfo, ca_get_int64(i, 1, NULL), ca_get_text(i, 2), ca_get_int32(i, 3, NULL),
					   ca_get_int64(i, 4, NULL), ca_get_int64(i, 5, NULL), ca_get_text(i, 6));
}

static char *
date_text(DateADT d)
{
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
}

static void
keys_add(KeyList *k, int64 customer_id, char *currency)
{
	if (k->n == k->cap)
	{
		k->cap = Max(16, k->cap * 2);
		k->customer_id = k->customer_id ? repalloc(k->customer_id, sizeof(int64) * k->cap)
			: palloc(sizeof(int64) * k->cap);
		k->currency = k->currency ? repalloc(k->currency, sizeof(char *) * k->cap)
			: palloc(sizeof(char *) * k->cap);
	}
	k->customer_id[k->n] = customer_id;
	k->currency[k->n] = currency;
	k->n++;
}

/* the keys as a bigint[] and a text[] argument */
static void
keys_args(const KeyList *k, Datum *ids, Datum *currencies)
{
	Datum	   *a = palloc(sizeof(Datum) * Max(k->n, 1));
	Datum	   *b = palloc(sizeof(Datum) * Max(k->n, 1));

	for (int i = 0; i < k->n; i++)
	{
		a[i] = Int64GetDatum(k->customer_id[i]);
		b[i] = CStringGetTextDatum(k->currency[i]);
	}
	*ids = PointerGetDatum(construct_array(a, k->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	*currencies = PointerGetDatum(construct_array(b, k->n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* (customer_id, currency) order, the currency compared bytewise (COLLATE "C") */
static int
key_cmp(int64 ca, const char *ra, int64 cb, const char *rb)
{
	if (ca != cb)
		return ca < cb ? -1 : 1;
	return strcmp(ra, rb);
}

static int
key_index_cmp(const void *a, const void *b, void *arg)
{
	const KeyList *k = (const KeyList *) arg;
	int			i = *(const int *) a;
	int			j = *(const int *) b;

	return key_cmp(k->customer_id[i], k->currency[i], k->customer_id[j], k->currency[j]);
}

/* a dunning fee of the ladder in minor units of a currency */
static int64
fee_units(const char *fee_major, int32 minor)
{
	Datum		fee = DirectFunctionCall3(numeric_in, CStringGetDatum(fee_major),
										  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	Datum		scaled = DirectFunctionCall2(numeric_mul, fee,
											 NumericGetDatum(int64_to_numeric(pow10_int64(minor))));

	return DatumGetInt64(DirectFunctionCall1(numeric_int8,
											 DirectFunctionCall2(numeric_round, scaled, Int32GetDatum(0))));
}

/*
 * The ladder decides, in C, for every candidate row of SPI_tuptable (the
 * columns of CANDIDATES_ALL); returns the notices to send.
 */
static Decision *
decide(const Ladder *ladder, DateADT as_of, TimestampTz as_of_ts, int *ndecided)
{
	SPITupleTable *cands = SPI_tuptable;
	int			ncand = (int) SPI_processed;
	Decision   *out = palloc(sizeof(Decision) * Max(ncand, 1));
	int			n = 0;

	for (int i = 0; i < ncand; i++)
	{
		int64		customer_id;
		char	   *currency;
		int64		overdue;
		TimestampTz oldest;
		int32		level;
		int32		last_day = 0;
		bool		has_last;
		bool		isnull;
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
		group = ca_get_text(i, 8);
		minor = currency_minor_units(currency_pack(currency, 3));
		pol = ca_credit_policy(-1, group, currency);
		tolerance = ca_conf_to_units(pol->overdue_tolerance, minor);
		level = dunning_next_level(ca_get_int32(i, 5, NULL), last_day, has_last, (int32) as_of,
								   ca_days_between(as_of_ts, oldest, "days overdue"), overdue, tolerance,
								   ladder->steps, ladder->nsteps);
		if (level <= 0)
			continue;
		out[n].fee = 0;
		out[n].action = NULL;
		for (int st = 0; st < ladder->nsteps; st++)
			if (ladder->steps[st].level == level)
			{
				out[n].fee = fee_units(ladder->fee_major[st], minor);
				out[n].action = ladder->actions[st];
			}
		out[n].customer_id = customer_id;
		out[n].currency = currency;
		out[n].level = level;
		out[n].cycle = ca_get_int32(i, 7, NULL);
		out[n].overdue = overdue;
		n++;
	}
	SPI_tuptable = cands;
	*ndecided = n;
	return out;
}

/*
 * Lock the wanted account rows in (customer_id, currency) order, skipping
 * those another transaction holds; returns the locked ones and raises a
 * NOTICE naming the skipped ones.
 */
static KeyList
lock_accounts(KeyList *wanted, DateADT as_of)
{
	KeyList		locked = {0};
	Oid			types[2] = {INT8ARRAYOID, TEXTARRAYOID};
	Datum		args[2];
	int		   *order;
	int			skipped = 0;
	StringInfoData names;
	int			j = 0;

	if (wanted->n == 0)
		return locked;
	keys_args(wanted, &args[0], &args[1]);
	if (SPI_execute_with_args("SELECT s.customer_id, s.currency FROM customer_account.account_state s"
							  " JOIN unnest($1, $2) AS k(c, cur) ON s.customer_id = k.c AND s.currency = k.cur"
							  " ORDER BY s.customer_id, s.currency FOR UPDATE OF s SKIP LOCKED",
							  2, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the accounts to dun");
	for (uint64 i = 0; i < SPI_processed; i++)
		keys_add(&locked, ca_get_int64(i, 1, NULL), ca_get_text(i, 2));

	/* which were skipped: both lists in key order, compared side by side */
	order = palloc(sizeof(int) * wanted->n);
	for (int i = 0; i < wanted->n; i++)
		order[i] = i;
	qsort_arg(order, wanted->n, sizeof(int), key_index_cmp, wanted);
	initStringInfo(&names);
	for (int i = 0; i < wanted->n; i++)
	{
		int64		id = wanted->customer_id[order[i]];
		const char *cur = wanted->currency[order[i]];

		while (j < locked.n && key_cmp(locked.customer_id[j], locked.currency[j], id, cur) < 0)
			j++;
		if (j < locked.n && key_cmp(locked.customer_id[j], locked.currency[j], id, cur) == 0)
			continue;
		if (i > 0 && key_cmp(wanted->customer_id[order[i - 1]], wanted->currency[order[i - 1]], id, cur) == 0)
			continue;			/* named twice */
		if (skipped < MAX_NAMED_SKIPS)
			appendStringInfo(&names, "%scustomer " INT64_FORMAT " in %s", skipped > 0 ? ", " : "", id, cur);
		else if (skipped == MAX_NAMED_SKIPS)
			appendStringInfoString(&names, ", ...");
		skipped++;
	}
	if (skipped > 0)
		ereport(NOTICE,
				(errmsg("dunning run for %s skipped %d account(s) held by another transaction", date_text(as_of),
						skipped),
				 errdetail("Skipped: %s.", names.data),
				 errhint("The next run picks them up.")));
	return locked;
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
	Oid			ttype[1] = {TIMESTAMPTZOID};
	Datum		tval[1];
	bool		isnull;
	Ladder		ladder;
	KeyList		wanted = {0};
	KeyList		locked;
	Decision   *dec;
	int			ndec;
	MemoryContext loopcxt;
	MemoryContext oldcxt;
	int			notices = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (DATE_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dunning needs a finite date")));
	/* as_of 00:00 UTC, whatever the session's TimeZone */
	{
		int			overflow = 0;

		as_of_ts = date2timestamp_opt_overflow(as_of, &overflow);
		if (overflow != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("dunning date out of range")));
	}
	dval[0] = DateADTGetDatum(as_of);
	tval[0] = TimestampTzGetDatum(as_of_ts);

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
							date_text(as_of), date_text(DatumGetDateADT(last))),
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
	ladder.nsteps = (int) SPI_processed;
	for (int i = 0; i < ladder.nsteps; i++)
	{
		ladder.steps[i].level = ca_get_int32(i, 1, NULL);
		ladder.steps[i].days_overdue = ca_get_int32(i, 2, NULL);
		ladder.steps[i].delay_days = ca_get_int32(i, 3, NULL);
		ladder.steps[i].fee = 0;
		ladder.fee_major[i] = ca_get_text(i, 4);
		ladder.actions[i] = ca_get_text(i, 5);
	}

	/*
	 * Phase 1, no locks: who leaves dunning (paid or disputed, nothing
	 * overdue any more) and who gets a notice.
	 */
	if (SPI_execute_with_args("SELECT s.customer_id, s.currency FROM customer_account.account_state s"
							  " WHERE" NOTHING_OVERDUE,
							  1, ttype, tval, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the accounts leaving dunning");
	for (uint64 i = 0; i < SPI_processed; i++)
		keys_add(&wanted, ca_get_int64(i, 1, NULL), ca_get_text(i, 2));
	if (SPI_execute_with_args(CANDIDATES_ALL, 1, ttype, tval, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read overdue items");
	dec = decide(&ladder, as_of, as_of_ts, &ndec);
	SPI_freetuptable(SPI_tuptable);
	for (int i = 0; i < ndec; i++)
		keys_add(&wanted, dec[i].customer_id, dec[i].currency);

	/*
	 * Phase 2, the writes: lock exactly those rows (SKIP LOCKED: a till
	 * holding one now is not waited for), then decide them again from what
	 * is committed now, since a payment may have come in meanwhile.
	 */
	locked = lock_accounts(&wanted, as_of);
	if (locked.n > 0)
	{
		Oid			ktypes[3] = {TIMESTAMPTZOID, INT8ARRAYOID, TEXTARRAYOID};
		Datum		kargs[3];

		kargs[0] = TimestampTzGetDatum(as_of_ts);
		keys_args(&locked, &kargs[1], &kargs[2]);
		if (SPI_execute_with_args("UPDATE customer_account.account_state s SET dunning_level = 0,"
								  " dunning_cycle = dunning_cycle + 1, updated_at = now()"
								  " FROM unnest($2, $3) AS k(c, cur)"
								  " WHERE s.customer_id = k.c AND s.currency = k.cur AND" NOTHING_OVERDUE,
								  3, ktypes, kargs, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not reset dunning levels");
		if (SPI_execute_with_args(CANDIDATES_OF_KEYS, 3, ktypes, kargs, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read overdue items");
		dec = decide(&ladder, as_of, as_of_ts, &ndec);
		SPI_freetuptable(SPI_tuptable);
	}
	else
		ndec = 0;

	if (ndec > 0)
	{
		Datum	   *n_cust = palloc(sizeof(Datum) * ndec);
		Datum	   *n_cur = palloc(sizeof(Datum) * ndec);
		Datum	   *n_level = palloc(sizeof(Datum) * ndec);
		Datum	   *n_cycle = palloc(sizeof(Datum) * ndec);
		Datum	   *n_overdue = palloc(sizeof(Datum) * ndec);
		Datum	   *n_fee = palloc(sizeof(Datum) * ndec);
		Datum	   *n_action = palloc(sizeof(Datum) * ndec);
		Datum		args[8];
		Oid			argtypes[8] = {INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID,
		INT8ARRAYOID, TEXTARRAYOID, DATEOID};
		uint64		inserted;

		for (int i = 0; i < ndec; i++)
		{
			n_cust[i] = Int64GetDatum(dec[i].customer_id);
			n_cur[i] = CStringGetTextDatum(dec[i].currency);
			n_level[i] = Int32GetDatum(dec[i].level);
			n_cycle[i] = Int32GetDatum(dec[i].cycle);
			n_overdue[i] = Int64GetDatum(dec[i].overdue);
			n_fee[i] = Int64GetDatum(dec[i].fee);
			n_action[i] = CStringGetTextDatum(dec[i].action ? dec[i].action : "");
		}
		/* notices, once per customer, currency, level and cycle: the new ones come back */
		args[0] = PointerGetDatum(construct_array(n_cust, ndec, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[1] = PointerGetDatum(construct_array(n_cur, ndec, TEXTOID, -1, false, TYPALIGN_INT));
		args[2] = PointerGetDatum(construct_array(n_level, ndec, INT4OID, 4, true, TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(n_cycle, ndec, INT4OID, 4, true, TYPALIGN_INT));
		args[4] = PointerGetDatum(construct_array(n_overdue, ndec, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[5] = PointerGetDatum(construct_array(n_fee, ndec, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[6] = PointerGetDatum(construct_array(n_action, ndec, TEXTOID, -1, false, TYPALIGN_INT));
		args[7] = DateADTGetDatum(as_of);
		if (SPI_execute_with_args("INSERT INTO customer_account.dunning_notice"
								  " (customer_id, currency, level, cycle, run_date, overdue_amount, fee, action)"
								  " SELECT u.c, u.cur, u.l, u.cy, $8, u.o, u.f, u.a"
								  " FROM unnest($1, $2, $3, $4, $5, $6, $7) AS u(c, cur, l, cy, o, f, a)"
								  " ON CONFLICT (customer_id, currency, level, cycle) DO NOTHING"
								  " RETURNING customer_id, currency, level, overdue_amount, fee, action",
								  8, argtypes, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not write dunning notices");
		inserted = SPI_processed;
		if (inserted > 0)
		{
			SPITupleTable *notices_tt = SPI_tuptable;

			/* the new levels and the outbox, each in one statement (the rows are ours) */
			if (SPI_execute_with_args("UPDATE customer_account.account_state s SET dunning_level = n.level, dunned_at = $1,"
									  "   updated_at = now()"
									  " FROM customer_account.dunning_notice n"
									  " WHERE n.run_date = $1 AND s.customer_id = n.customer_id AND s.currency = n.currency",
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
	if (notices > 0
		&& SPI_execute("SELECT pg_catalog.pg_notify('customer_account_outbox', 'dunning')", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not notify");
	ca_finish();
	return (Datum) 0;
}
