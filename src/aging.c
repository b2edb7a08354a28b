/*-------------------------------------------------------------------------
 *
 * aging.c
 *	  aging_report() for today (or a later day): receivables by days past
 *	  due, per currency, in one pass over the unsettled items.
 *
 *	  The items come in the order of open_item_unsettled (customer,
 *	  currency, due date), mostly from the index alone (ca_scan_unsettled),
 *	  so the distinct customers of a bucket are counted at the end of each
 *	  customer's run: no sort, no hash of customers.  A day in the past is
 *	  answered by the SQL of aging_report(), which also reads what was paid
 *	  since.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "money.h"

#define AGING_BUCKETS 5
static const char *const bucket_names[AGING_BUCKETS] = {"current", "1-30", "31-60", "61-90", "90+"};

typedef struct AgingCurrency
{
	char		code[4];
	int64		amount[AGING_BUCKETS];
	int64		customers[AGING_BUCKETS];
} AgingCurrency;

typedef struct AgingState
{
	DateADT		as_of;
	TimestampTz cutoff;			/* items created before the end of as_of */
	AgingCurrency *cur;
	int			ncur;
	int			maxcur;
	/* the customer and currency of the current run, and its buckets */
	bool		in_run;
	int64		run_customer;
	int			run_cur;
	bool		run_seen[AGING_BUCKETS];
} AgingState;

/* the bucket of an item due at due on as_of */
static inline int
bucket_of(DateADT as_of, TimestampTz due)
{
	/* (due AT TIME ZONE 'UTC')::date, rounding down before 2000 too */
	int64		day = due / USECS_PER_DAY - ((due % USECS_PER_DAY) < 0 ? 1 : 0);
	int64		d = (int64) as_of - day;

	return d <= 0 ? 0 : d <= 30 ? 1 : d <= 60 ? 2 : d <= 90 ? 3 : 4;
}

/* close the current run: its customer counts once in each bucket it has */
static void
end_run(AgingState *st)
{
	if (!st->in_run)
		return;
	for (int b = 0; b < AGING_BUCKETS; b++)
		if (st->run_seen[b])
			st->cur[st->run_cur].customers[b]++;
	st->in_run = false;
}

/* the accumulator of a currency, added on first sight */
static int
currency_slot(AgingState *st, const char *code)
{
	for (int i = 0; i < st->ncur; i++)
		if (strcmp(st->cur[i].code, code) == 0)
			return i;
	if (st->ncur == st->maxcur)
	{
		st->maxcur *= 2;
		st->cur = repalloc(st->cur, sizeof(AgingCurrency) * st->maxcur);
	}
	memset(&st->cur[st->ncur], 0, sizeof(AgingCurrency));
	strlcpy(st->cur[st->ncur].code, code, sizeof(st->cur[st->ncur].code));
	return st->ncur++;
}

/* one unsettled item into the report */
static void
add_item(const UnsettledItem *item, void *arg)
{
	AgingState *st = (AgingState *) arg;
	int			b;

	if (item->prepayment || item->open <= 0 || item->created_at >= st->cutoff)
		return;
	if (!st->in_run || item->customer_id != st->run_customer
		|| strcmp(st->cur[st->run_cur].code, item->currency) != 0)
	{
		end_run(st);
		st->in_run = true;
		st->run_customer = item->customer_id;
		st->run_cur = currency_slot(st, item->currency);
		memset(st->run_seen, 0, sizeof(st->run_seen));
	}
	b = bucket_of(st->as_of, item->due_at);
	st->run_seen[b] = true;
	if (pg_add_s64_overflow(st->cur[st->run_cur].amount[b], item->open, &st->cur[st->run_cur].amount[b]))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("receivables in %s out of range", item->currency)));
}

/* currencies in bytewise order, as the report sorts them */
static int
cmp_currency(const void *a, const void *b)
{
	return strcmp(((const AgingCurrency *) a)->code, ((const AgingCurrency *) b)->code);
}

/*
 * aging_open_items(as_of date) -> TABLE(currency text, bucket text,
 *   customers bigint, amount currency_amount): the aging of what is open
 *   now, for as_of today or later (aging_report() calls it).
 */
PG_FUNCTION_INFO_V1(aging_open_items);
Datum
aging_open_items(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DateADT		as_of = PG_GETARG_DATEADT(0);
	AgingState	st;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	if (DATE_NOT_FINITE(as_of) || as_of >= (DateADT) (PG_INT64_MAX / USECS_PER_DAY) - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("aging_report needs a finite date")));
	memset(&st, 0, sizeof(st));
	st.as_of = as_of;
	st.cutoff = (TimestampTz) (as_of + 1) * USECS_PER_DAY;
	st.maxcur = 8;
	st.cur = palloc(sizeof(AgingCurrency) * st.maxcur);
	ca_scan_unsettled(NULL, NULL, false, 0, GetActiveSnapshot(), add_item, &st);
	end_run(&st);
	qsort(st.cur, st.ncur, sizeof(AgingCurrency), cmp_currency);
	for (int i = 0; i < st.ncur; i++)
	{
		int32		code = ca_currency_pack(st.cur[i].code, 3);

		for (int b = 0; b < AGING_BUCKETS; b++)
		{
			Datum		values[4];
			bool		nulls[4] = {false, false, false, false};

			values[0] = CStringGetTextDatum(st.cur[i].code);
			values[1] = CStringGetTextDatum(bucket_names[b]);
			values[2] = Int64GetDatum(st.cur[i].customers[b]);
			values[3] = CurrencyAmountPGetDatum(ca_make_currency_amount(st.cur[i].amount[b], code));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
