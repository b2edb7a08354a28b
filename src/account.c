/*-------------------------------------------------------------------------
 *
 * account.c
 *	  balance(customer_id, as_of): the account at a glance, one row per
 *	  currency.
 *
 *	  Reads are O(1) in the length of the history: one account state row
 *	  per currency, at most twelve monthly counter rows, and the customer's
 *	  unsettled open items only when one of them is past due.  Only a
 *	  question about the past (as_of before the latest event booked) is
 *	  answered from the ledger and the item applications, so that late and
 *	  back-dated events count as if they had arrived on time.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "money.h"
#include "payment.h"
#include "posting.h"
#include "spi_util.h"

#define BALANCE_COLS 16

static const char *const channel_kinds[5] = {"webshop", "store", "marketplace", "callcenter", "app"};

typedef struct BalanceRow
{
	char	   *currency;
	int64		balance;
	int64		open_amount;
	int64		overdue;
	int32		oldest_overdue_days;
	int64		store_credit;
	int64		lifetime_revenue;
	int64		revenue_12m;
	int32		orders_12m;
	int64		purchased_12m;
	int64		returned_12m;
	bool		has_last[5];
	TimestampTz last[5];
	int32		dunning_level;
	int32		orders_count;
} BalanceRow;

static SPIPlanPtr plan_state;
static SPIPlanPtr plan_overdue_now;
static SPIPlanPtr plan_overdue_past;
static SPIPlanPtr plan_history;

static void
append_iso(StringInfo buf, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	appendStringInfo(buf, "\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year, tm.tm_mon, tm.tm_mday,
					 tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (fsec != 0)
		appendStringInfo(buf, ".%06d", (int) fsec);
	appendStringInfoString(buf, "Z\"");
}

static Datum
amount_datum(int64 units, const char *currency)
{
	return CurrencyAmountPGetDatum(make_currency_amount(units, currency_pack(currency, 3)));
}

/* overdue receivables at as_of: unsettled now (fast) or as they stood then */
static void
overdue_at(int64 customer_id, const char *currency, TimestampTz as_of, bool past, BalanceRow *r)
{
	Oid			types[3] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	bool		n;
	TimestampTz oldest;

	if (!past)
		ca_prepare(&plan_overdue_now,
				   "SELECT coalesce(sum(open), 0)::bigint, min(due_at) FROM customer_account.open_item"
				   " WHERE customer_id = $1 AND currency = $2 AND settled_at IS NULL"
				   "   AND kind <> 'prepayment' AND due_at < $3",
				   3, types);
	else
		ca_prepare(&plan_overdue_past,
				   "SELECT coalesce(sum(i.amount - coalesce((SELECT sum(a.amount) FROM customer_account.item_application a"
				   "        WHERE a.item_id = i.item_id AND a.applied_at <= $3), 0)), 0)::bigint, min(i.due_at)"
				   " FROM customer_account.open_item i"
				   " WHERE i.customer_id = $1 AND i.currency = $2 AND i.kind <> 'prepayment'"
				   "   AND i.created_at <= $3 AND i.due_at < $3 AND (i.settled_at IS NULL OR i.settled_at > $3)",
				   3, types);
	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	values[2] = TimestampTzGetDatum(as_of);
	ca_execute(past ? plan_overdue_past : plan_overdue_now, values, NULL, true, 1);
	r->overdue = ca_get_int64(0, 1, NULL);
	oldest = ca_get_timestamptz(0, 2, &n);
	r->oldest_overdue_days = (n || r->overdue == 0) ? 0 : (int32) ((as_of - oldest) / USECS_PER_DAY);
}

/*
 * The account as it stood at as_of, from the ledger of the customer and of
 * every customer merged into it (transfer entries left out, so the merged
 * history counts as if it had always been one account).
 */
static void
history_at(int64 customer_id, const char *currency, TimestampTz as_of, DateADT from_month,
		   DateADT to_month, BalanceRow *r)
{
	Oid			types[5] = {INT8OID, TEXTOID, TIMESTAMPTZOID, DATEOID, DATEOID};
	Datum		values[5];

	ca_prepare(&plan_history,
			   "WITH RECURSIVE ids(id) AS (SELECT $1::bigint UNION"
			   "   SELECT c.customer_id FROM customer_account.customer c JOIN ids ON c.merged_into = ids.id)"
			   " SELECT coalesce(sum(customer_account.minor_units(amount)), 0)::bigint,"
			   "  coalesce(sum(open_delta), 0)::bigint, coalesce(sum(credit_delta), 0)::bigint,"
			   "  coalesce(sum(revenue_delta), 0)::bigint,"
			   "  coalesce(sum(revenue_delta) FILTER (WHERE revenue_period > $4 AND revenue_period <= $5), 0)::bigint,"
			   "  coalesce(sum(order_delta) FILTER (WHERE revenue_period > $4 AND revenue_period <= $5), 0)::int,"
			   "  coalesce(sum(revenue_delta) FILTER (WHERE entry_type IN ('order', 'cancel')"
			   "           AND revenue_period > $4 AND revenue_period <= $5), 0)::bigint,"
			   "  coalesce(sum(returned_delta) FILTER (WHERE revenue_period > $4 AND revenue_period <= $5), 0)::bigint,"
			   "  max(event_at) FILTER (WHERE entry_type = 'order' AND channel_kind = 'webshop'),"
			   "  max(event_at) FILTER (WHERE entry_type = 'order' AND channel_kind = 'store'),"
			   "  max(event_at) FILTER (WHERE entry_type = 'order' AND channel_kind = 'marketplace'),"
			   "  max(event_at) FILTER (WHERE entry_type = 'order' AND channel_kind = 'callcenter'),"
			   "  max(event_at) FILTER (WHERE entry_type = 'order' AND channel_kind = 'app'),"
			   "  coalesce(sum(order_delta), 0)::int"
			   " FROM customer_account.ledger"
			   " WHERE customer_id IN (SELECT id FROM ids) AND currency = $2 AND event_at <= $3"
			   "   AND entry_type NOT IN ('merge_in', 'merge_out')",
			   5, types);
	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	values[2] = TimestampTzGetDatum(as_of);
	values[3] = DateADTGetDatum(from_month);
	values[4] = DateADTGetDatum(to_month);
	ca_execute(plan_history, values, NULL, true, 1);
	r->balance = ca_get_int64(0, 1, NULL);
	r->open_amount = ca_get_int64(0, 2, NULL);
	r->store_credit = ca_get_int64(0, 3, NULL);
	r->lifetime_revenue = ca_get_int64(0, 4, NULL);
	r->revenue_12m = ca_get_int64(0, 5, NULL);
	r->orders_12m = ca_get_int32(0, 6, NULL);
	r->purchased_12m = ca_get_int64(0, 7, NULL);
	r->returned_12m = ca_get_int64(0, 8, NULL);
	for (int k = 0; k < 5; k++)
	{
		bool		n;

		r->last[k] = ca_get_timestamptz(0, 9 + k, &n);
		r->has_last[k] = !n;
	}
	r->orders_count = ca_get_int32(0, 14, NULL);
}

static const char *
value_segment(const BalanceRow *r, TimestampTz as_of, TimestampTz since, int32 new_days,
			  bool has_avg, double avg, double band)
{
	if (r->orders_count <= 0 || (as_of - since) < (TimestampTz) new_days * USECS_PER_DAY)
		return "new";
	if (!has_avg || avg <= 0)
		return "average";
	if ((double) r->revenue_12m < avg * (1.0 - band))
		return "below_average";
	if ((double) r->revenue_12m > avg * (1.0 + band))
		return "above_average";
	return "average";
}

/*
 * balance(customer_id bigint, as_of timestamptz) -> TABLE(customer_id,
 *   currency, balance, open_amount, overdue_amount, oldest_overdue_days,
 *   store_credit, lifetime_revenue, revenue_12m, orders_12m,
 *   returned_value_12m, return_rate, last_purchase_at,
 *   last_purchase_by_kind, dunning_level, value_segment)
 */
PG_FUNCTION_INFO_V1(account_balance);
Datum
account_balance(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		customer_id = PG_GETARG_INT64(0);
	TimestampTz as_of = PG_ARGISNULL(1) ? GetCurrentTransactionStartTimestamp() : PG_GETARG_TIMESTAMPTZ(1);
	Oid			types[3] = {INT8OID, DATEOID, DATEOID};
	Datum		qvalues[3];
	DateADT		to_month = month_of(as_of);
	DateADT		from_month = month_minus(to_month, 12);
	int			nrows;
	BalanceRow *rows;
	TimestampTz since;
	int32		new_days;
	double		band;
	bool		n;

	InitMaterializedSRF(fcinfo, 0);
	ca_connect();
	check_customer(customer_id);

	ca_prepare(&plan_state,
			   "SELECT s.currency, s.balance, s.open_amount, s.store_credit, s.lifetime_revenue,"
			   "  s.dunning_level, s.orders_count, s.next_due_at, s.last_event_at,"
			   "  s.last_webshop, s.last_store, s.last_marketplace, s.last_callcenter, s.last_app,"
			   "  coalesce(per.revenue, 0)::bigint, coalesce(per.orders, 0)::int,"
			   "  coalesce(per.purchased, 0)::bigint, coalesce(per.returned, 0)::bigint,"
			   "  c.customer_since, coalesce(pol.new_customer_days, 90), coalesce(pol.segment_band, 0.25)::float8,"
			   "  seg.avg_revenue_12m::float8"
			   " FROM customer_account.account_state s"
			   " JOIN customer_account.customer c ON c.customer_id = s.customer_id"
			   " LEFT JOIN customer_account.policy pol ON true"
			   " LEFT JOIN customer_account.segment_stats seg ON seg.currency = s.currency"
			   " LEFT JOIN LATERAL (SELECT sum(a.revenue) AS revenue, sum(a.orders) AS orders,"
			   "        sum(a.purchased) AS purchased, sum(a.returned) AS returned"
			   "     FROM customer_account.account_period a"
			   "     WHERE a.customer_id = s.customer_id AND a.currency = s.currency"
			   "       AND a.period > $2 AND a.period <= $3) per ON true"
			   " WHERE s.customer_id = $1 ORDER BY s.currency",
			   3, types);
	qvalues[0] = Int64GetDatum(customer_id);
	qvalues[1] = DateADTGetDatum(from_month);
	qvalues[2] = DateADTGetDatum(to_month);
	ca_execute(plan_state, qvalues, NULL, true, 0);

	nrows = (int) SPI_processed;
	rows = palloc0(sizeof(BalanceRow) * Max(nrows, 1));
	if (nrows == 0)
	{
		ca_finish();
		return (Datum) 0;
	}
	since = ca_get_timestamptz(0, 19, NULL);
	new_days = ca_get_int32(0, 20, NULL);
	band = DatumGetFloat8(ca_get_datum(0, 21, &n));

	/* copy the state rows first: the queries below replace SPI_tuptable */
	{
		SPITupleTable *tt = SPI_tuptable;
		bool	   *past = palloc0(sizeof(bool) * nrows);
		bool	   *check_overdue = palloc0(sizeof(bool) * nrows);
		double	   *avg = palloc0(sizeof(double) * nrows);
		bool	   *has_avg = palloc0(sizeof(bool) * nrows);

		for (int i = 0; i < nrows; i++)
		{
			BalanceRow *r = &rows[i];
			bool		dn,
						en;
			TimestampTz next_due,
						last_event;

			SPI_tuptable = tt;
			r->currency = ca_get_text(i, 1);
			r->balance = ca_get_int64(i, 2, NULL);
			r->open_amount = ca_get_int64(i, 3, NULL);
			r->store_credit = ca_get_int64(i, 4, NULL);
			r->lifetime_revenue = ca_get_int64(i, 5, NULL);
			r->dunning_level = ca_get_int32(i, 6, NULL);
			r->orders_count = ca_get_int32(i, 7, NULL);
			next_due = ca_get_timestamptz(i, 8, &dn);
			last_event = ca_get_timestamptz(i, 9, &en);
			for (int k = 0; k < 5; k++)
			{
				bool		ln;

				r->last[k] = ca_get_timestamptz(i, 10 + k, &ln);
				r->has_last[k] = !ln;
			}
			r->revenue_12m = ca_get_int64(i, 15, NULL);
			r->orders_12m = ca_get_int32(i, 16, NULL);
			r->purchased_12m = ca_get_int64(i, 17, NULL);
			r->returned_12m = ca_get_int64(i, 18, NULL);
			avg[i] = DatumGetFloat8(ca_get_datum(i, 22, &n));
			has_avg[i] = !n;
			past[i] = !en && last_event > as_of;
			check_overdue[i] = past[i] || (!dn && next_due < as_of);
		}
		for (int i = 0; i < nrows; i++)
		{
			if (past[i])
				history_at(customer_id, rows[i].currency, as_of, from_month, to_month, &rows[i]);
			if (check_overdue[i])
				overdue_at(customer_id, rows[i].currency, as_of, past[i], &rows[i]);
		}

		for (int i = 0; i < nrows; i++)
		{
			BalanceRow *r = &rows[i];
			Datum		values[BALANCE_COLS];
			bool		nulls[BALANCE_COLS];
			StringInfoData js;
			bool		first = true;
			bool		any_last = false;
			TimestampTz last_purchase = 0;

			memset(nulls, 0, sizeof(nulls));
			initStringInfo(&js);
			appendStringInfoChar(&js, '{');
			for (int k = 0; k < 5; k++)
			{
				if (!r->has_last[k] || r->last[k] > as_of)
					continue;
				if (!first)
					appendStringInfoChar(&js, ',');
				first = false;
				appendStringInfo(&js, "\"%s\":", channel_kinds[k]);
				append_iso(&js, r->last[k]);
				if (!any_last || r->last[k] > last_purchase)
					last_purchase = r->last[k];
				any_last = true;
			}
			appendStringInfoChar(&js, '}');

			values[0] = Int64GetDatum(customer_id);
			values[1] = CStringGetTextDatum(r->currency);
			values[2] = amount_datum(r->balance, r->currency);
			values[3] = amount_datum(r->open_amount, r->currency);
			values[4] = amount_datum(r->overdue, r->currency);
			values[5] = Int32GetDatum(r->oldest_overdue_days);
			values[6] = amount_datum(r->store_credit, r->currency);
			values[7] = amount_datum(r->lifetime_revenue, r->currency);
			values[8] = amount_datum(r->revenue_12m, r->currency);
			values[9] = Int32GetDatum(r->orders_12m);
			values[10] = amount_datum(r->returned_12m, r->currency);
			if (r->purchased_12m > 0)
				values[11] = NumericGetDatum(DatumGetNumeric(DirectFunctionCall2(numeric_round,
																				 DirectFunctionCall2(numeric_div,
																									 NumericGetDatum(int64_to_numeric(Min(r->returned_12m, r->purchased_12m))),
																									 NumericGetDatum(int64_to_numeric(r->purchased_12m))),
																				 Int32GetDatum(4))));
			else
				values[11] = NumericGetDatum(int64_to_numeric(0));
			values[12] = TimestampTzGetDatum(last_purchase);
			nulls[12] = !any_last;
			values[13] = DirectFunctionCall1(jsonb_in, CStringGetDatum(js.data));
			values[14] = Int32GetDatum(r->dunning_level);
			values[15] = CStringGetTextDatum(value_segment(r, as_of, since, new_days, has_avg[i], avg[i], band));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	ca_finish();
	return (Datum) 0;
}
