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
#include "common/int.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "input.h"
#include "loyalty.h"
#include "money.h"
#include "payment.h"
#include "posting.h"
#include "spi_util.h"

#define BALANCE_COLS 17


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

static SPIPlanPtr plan_overdue_past;
static SPIPlanPtr plan_history;

/* n as exactly width decimal digits at p (n >= 0); returns the end */
static inline char *
put_digits(char *p, int n, int width)
{
	for (int i = width - 1; i >= 0; i--)
	{
		p[i] = (char) ('0' + n % 10);
		n /= 10;
	}
	return p + width;
}

/* ts as ISO 8601 in UTC ("2024-05-01T10:00:00Z"), into buf; returns the length */
static int
format_iso(char *buf, size_t len, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;
	char	   *p = buf;

	ca_utc_fields(ts, &tm, &fsec);
	if (tm.tm_year < 0 || tm.tm_year > 9999 || fsec < 0)
	{
		if (fsec != 0)
			return snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year, tm.tm_mon,
							tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
		return snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year, tm.tm_mon, tm.tm_mday,
						tm.tm_hour, tm.tm_min, tm.tm_sec);
	}
	/* the common case without snprintf: it showed in the profile */
	Assert(len >= 28);
	p = put_digits(p, tm.tm_year, 4);
	*p++ = '-';
	p = put_digits(p, tm.tm_mon, 2);
	*p++ = '-';
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = 'T';
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	if (fsec != 0)
	{
		*p++ = '.';
		p = put_digits(p, (int) fsec, 6);
	}
	*p++ = 'Z';
	*p = '\0';
	return (int) (p - buf);
}

/*
 * last_purchase_by_kind: {"webshop": "<ISO time>", ...} for every channel
 * kind bought on up to as_of, built as a JsonbValue (no text parsing).
 * Sets *latest to the latest of them; returns false in *any when none.
 */
static Datum
last_by_kind_jsonb(const BalanceRow *r, TimestampTz as_of, bool *any, TimestampTz *latest)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	char		iso[CHANNEL_KINDS][64];

	*any = false;
	*latest = 0;
	(void) pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int k = 0; k < CHANNEL_KINDS; k++)
	{
		JsonbValue	key;
		JsonbValue	val;

		if (!r->has_last[k] || r->last[k] > as_of)
			continue;
		key.type = jbvString;
		key.val.string.val = (char *) ca_channel_kind_names[k];
		key.val.string.len = strlen(ca_channel_kind_names[k]);
		(void) pushJsonbValue(&state, WJB_KEY, &key);
		val.type = jbvString;
		val.val.string.len = Min(format_iso(iso[k], sizeof(iso[k]), r->last[k]), (int) sizeof(iso[k]) - 1);
		val.val.string.val = iso[k];
		(void) pushJsonbValue(&state, WJB_VALUE, &val);
		if (!*any || r->last[k] > *latest)
			*latest = r->last[k];
		*any = true;
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

static Datum
amount_datum(int64 units, const char *currency)
{
	return CurrencyAmountPGetDatum(ca_make_currency_amount(units, ca_currency_pack(currency, 3)));
}

/* overdue receivables at a past as_of: the items as they stood then */
static void
overdue_at(int64 customer_id, const char *currency, TimestampTz as_of, BalanceRow *r)
{
	Oid			types[3] = {INT8OID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[3];
	bool		n;
	TimestampTz oldest;

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
	ca_execute(plan_overdue_past, values, NULL, true, 1);
	r->overdue = ca_get_int64(0, 1, NULL);
	oldest = ca_get_timestamptz(0, 2, &n);
	r->oldest_overdue_days = (n || r->overdue == 0) ? 0 : ca_days_between(as_of, oldest, "days overdue");
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

/* returned / purchased over 12 months as numeric(.,4), 0 when nothing was bought */
static Datum
return_rate_datum(int64 returned, int64 purchased)
{
	if (purchased <= 0 || returned <= 0)
		return NumericGetDatum(int64_div_fast_to_numeric(0, 4));
	returned = Min(returned, purchased);
	if (returned <= PG_INT64_MAX / 20000)
	{
		/* in ten-thousandths, rounded half up (returned and purchased are >= 0) */
		int64		q = (returned * 20000 / purchased + 1) / 2;

		return NumericGetDatum(int64_div_fast_to_numeric(q, 4));
	}
	return DirectFunctionCall2(numeric_round,
							   DirectFunctionCall2(numeric_div,
												   NumericGetDatum(int64_to_numeric(returned)),
												   NumericGetDatum(int64_to_numeric(purchased))),
							   Int32GetDatum(4));
}

static const char *
value_segment(const BalanceRow *r, TimestampTz as_of, TimestampTz since, int32 new_days,
			  bool has_avg, double avg, double band)
{
	int64		age;
	int64		new_for;

	if (r->orders_count <= 0)
		return "new";
	if (pg_sub_s64_overflow(as_of, since, &age) || pg_mul_s64_overflow(new_days, USECS_PER_DAY, &new_for))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("age of the customer account out of range: since %s, %d days new",
						timestamptz_to_str(since), new_days)));
	if (age < new_for)
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
 *   returned_value_12m, ca_return_rate, last_purchase_at,
 *   last_purchase_by_kind, dunning_level, value_segment, loyalty_tier)
 *
 * The fast path (as_of at or after the latest event booked) reads the
 * account state rows by one index descent: they carry the customer facts
 * and the twelve-month ring.  Only when something may be overdue does it
 * read the unsettled items, and only when a month after as_of is booked the
 * monthly counters (direct.c).
 */
/* RA002 for a customer merged into another */
static void
refuse_merged(int64 customer_id, const CustomerRow *c)
{
	if (c->merged)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT,
						customer_id, c->merged_into),
				 errhint("Use the surviving customer " INT64_FORMAT ".", c->merged_into)));
}

PG_FUNCTION_INFO_V1(account_balance);
Datum
account_balance(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		customer_id = PG_GETARG_INT64(0);
	TimestampTz as_of = PG_ARGISNULL(1) ? GetCurrentTransactionStartTimestamp() : PG_GETARG_TIMESTAMPTZ(1);
	DateADT		to_month = ca_month_of(as_of);
	DateADT		from_month = ca_month_minus(to_month, 12);
	Snapshot	snap = GetActiveSnapshot();
	CustomerRow cust;
	StateRow   *states;
	int			nrows;
	const PolicyConf *pol;
	bool		spi_connected = false;
	OwnerContext oc;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	/* every currency the customer used, however many */
	states = ca_read_all_states(customer_id, snap, &nrows);
	if (nrows > 0 && states[0].has_customer)
		cust = states[0].customer;
	else
		ca_read_customer(customer_id, snap, &cust);		/* RA002 when unknown */
	refuse_merged(customer_id, &cust);
	if (nrows == 0)
		return (Datum) 0;
	pol = ca_policy();

	for (int i = 0; i < nrows; i++)
	{
		StateRow   *st = &states[i];
		BalanceRow	row;
		BalanceRow *r = &row;
		Datum		values[BALANCE_COLS];
		bool		nulls[BALANCE_COLS];
		bool		any_last = false;
		TimestampTz last_purchase = 0;
		double		avg = 0;
		bool		has_avg;

		memset(r, 0, sizeof(*r));
		r->currency = st->currency;
		if (st->has_last_event && st->last_event > as_of)
		{
			/* a question about the past: the books as they stood then */
			if (!spi_connected)
			{
				ca_become_owner(&oc);
				ca_connect();
				spi_connected = true;
			}
			history_at(customer_id, st->currency, as_of, from_month, to_month, r);
			overdue_at(customer_id, st->currency, as_of, r);
			r->dunning_level = st->dunning_level;
		}
		else
		{
			PeriodSums ps;

			r->balance = st->balance;
			r->open_amount = st->open_amount;
			r->store_credit = st->store_credit;
			r->lifetime_revenue = st->lifetime_revenue;
			r->dunning_level = st->dunning_level;
			r->orders_count = st->orders_count;
			for (int k = 0; k < 5; k++)
			{
				r->has_last[k] = st->has_last[k];
				r->last[k] = st->last[k];
			}
			if (!st->has_ring || !ca_ring_sum(&st->ring, to_month, &r->revenue_12m, &r->purchased_12m, &r->returned_12m,
							 &r->orders_12m))
			{
				/* a month after as_of is booked: the ring has moved past it */
				ca_read_periods(customer_id, st->currency, from_month, to_month, snap, &ps);
				r->revenue_12m = ps.revenue;
				r->orders_12m = ps.orders;
				r->purchased_12m = ps.purchased;
				r->returned_12m = ps.returned;
			}
			if (st->has_next_due && st->next_due < as_of)
			{
				ItemSums	items;

				ca_read_items(customer_id, st->currency, as_of, as_of, true, snap, &items);
				r->overdue = items.overdue;
				r->oldest_overdue_days = (items.has_oldest && items.overdue > 0) ?
					ca_days_between(as_of, items.oldest_due, "days overdue") : 0;
			}
		}

		memset(nulls, 0, sizeof(nulls));
		values[13] = last_by_kind_jsonb(r, as_of, &any_last, &last_purchase);
		has_avg = ca_segment_avg(r->currency, &avg);

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
		values[11] = return_rate_datum(r->returned_12m, r->purchased_12m);
		values[12] = TimestampTzGetDatum(last_purchase);
		nulls[12] = !any_last;
		values[14] = Int32GetDatum(r->dunning_level);
		values[15] = CStringGetTextDatum(value_segment(r, as_of, cust.since, pol->new_customer_days,
													   has_avg, avg, pol->segment_band));
		{
			const char *tier = ca_loyalty_tier(r->currency, r->revenue_12m);

			values[16] = tier ? CStringGetTextDatum(tier) : (Datum) 0;
			nulls[16] = (tier == NULL);
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (spi_connected)
	{
		ca_finish();
		ca_restore_user(&oc);
	}
	return (Datum) 0;
}
