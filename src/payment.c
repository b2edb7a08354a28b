/*-------------------------------------------------------------------------
 *
 * payment.c
 *	  payment_options() and the enforcement of its decision when an order
 *	  is booked.  This file gathers the facts (one prepared query for the
 *	  customer, policy, account state, open items and 12-month counters,
 *	  one for the methods) and formats the answer; the rules themselves are
 *	  in payment_rules.c.
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
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "money.h"
#include "payment.h"
#include "payment_rules.h"
#include "posting.h"
#include "reason.h"
#include "spi_util.h"

static SPIPlanPtr plan_facts;
static SPIPlanPtr plan_methods;
static SPIPlanPtr plan_channel;

DateADT
month_minus(DateADT month, int n)
{
	int			y,
				m,
				d;

	j2date(month + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	m -= n;
	while (m <= 0)
	{
		m += 12;
		y--;
	}
	return date2j(y, m, 1) - POSTGRES_EPOCH_JDATE;
}

/*
 * Gather what the rules need.  When the caller holds the account lock
 * (booking an order), the state row read here is the locked one.
 * Returns the customer's language.
 */
char *
payment_gather_facts(int64 customer_id, const char *currency, const char *channel_kind, int64 total,
			 TimestampTz at, bool read_only, PaymentFacts *f, PaymentPolicy *p)
{
	Oid			types[6] = {INT8OID, TEXTOID, TEXTOID, INT4OID, TIMESTAMPTZOID, DATEOID};
	Datum		values[6];
	int32		minor = currency_minor_units(currency_pack(currency, 3));
	DateADT		this_month = month_of(at);
	bool		n;
	char	   *language;
	TimestampTz since;

	ca_prepare(&plan_facts,
			   "SELECT c.blocked, c.customer_since, c.language,"
			   "  CASE WHEN customer_account.currency_of(c.credit_limit) = $3"
			   "       THEN customer_account.minor_units(c.credit_limit) END,"
			   "  round(p.credit_limit * 10::numeric ^ $4)::bigint,"
			   "  round(p.first_order_limit * 10::numeric ^ $4)::bigint,"
			   "  p.new_customer_days, p.new_customer_paid_orders,"
			   "  round(p.overdue_tolerance * 10::numeric ^ $4)::bigint,"
			   "  p.max_return_rate::float8, p.return_rate_min_orders, p.dunning_block_level,"
			   "  coalesce(s.open_amount, 0), coalesce(s.paid_orders, 0), coalesce(s.dunning_level, 0),"
			   "  coalesce(s.store_credit, 0),"
			   "  coalesce(per.orders, 0)::int, coalesce(per.purchased, 0)::bigint, coalesce(per.returned, 0)::bigint,"
			   "  coalesce(it.exposure, 0)::bigint, coalesce(it.overdue, 0)::bigint, c.merged_into"
			   " FROM customer_account.customer c"
			   " LEFT JOIN LATERAL (SELECT * FROM customer_account.credit_policy p"
			   "     WHERE (p.channel_kind IS NULL OR p.channel_kind::text = $2)"
			   "       AND (p.customer_group IS NULL OR p.customer_group = c.customer_group)"
			   "       AND (p.currency IS NULL OR p.currency = $3)"
			   "     ORDER BY p.customer_group IS NULL, p.channel_kind IS NULL, p.currency IS NULL LIMIT 1) p ON true"
			   " LEFT JOIN customer_account.account_state s ON s.customer_id = c.customer_id AND s.currency = $3"
			   " LEFT JOIN LATERAL (SELECT sum(orders) AS orders, sum(purchased) AS purchased, sum(returned) AS returned"
			   "     FROM customer_account.account_period a WHERE a.customer_id = c.customer_id AND a.currency = $3"
			   "       AND a.period > ($6 - interval '12 months')::date AND a.period <= $6) per ON true"
			   " LEFT JOIN LATERAL (SELECT sum(i.open) FILTER (WHERE i.kind <> 'prepayment') AS exposure,"
			   "       sum(i.open) FILTER (WHERE i.kind <> 'prepayment' AND NOT i.disputed"
			   "                           AND i.due_at < $5 - make_interval(days => p.overdue_grace_days)) AS overdue"
			   "     FROM customer_account.open_item i WHERE i.customer_id = c.customer_id AND i.currency = $3"
			   "       AND i.settled_at IS NULL AND s.open_amount > 0) it ON true"
			   " WHERE c.customer_id = $1",
			   6, types);
	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(channel_kind);
	values[2] = CStringGetTextDatum(currency);
	values[3] = Int32GetDatum(minor);
	values[4] = TimestampTzGetDatum(at);
	values[5] = DateADTGetDatum(this_month);
	ca_execute(plan_facts, values, NULL, read_only, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown customer " INT64_FORMAT, customer_id)));
	(void) ca_get_int64(0, 22, &n);
	if (!n)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT,
						customer_id, ca_get_int64(0, 22, NULL))));

	memset(f, 0, sizeof(*f));
	f->order_total = total;
	f->blocked = ca_get_bool(0, 1, NULL);
	since = ca_get_timestamptz(0, 2, NULL);
	f->account_age_days = at > since ? (int32) ((at - since) / USECS_PER_DAY) : 0;
	language = ca_get_text(0, 3);
	f->explicit_limit = ca_get_int64(0, 4, &n);
	f->has_explicit_limit = !n;
	(void) ca_get_int64(0, 5, &n);
	if (n)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("no credit policy applies to channel kind %s in %s", channel_kind, currency),
				 errhint("Keep a default row in customer_account.credit_policy with channel_kind, customer_group and currency NULL.")));
	p->default_credit_limit = ca_get_int64(0, 5, NULL);
	p->first_order_limit = ca_get_int64(0, 6, NULL);
	p->new_customer_days = ca_get_int32(0, 7, NULL);
	p->new_customer_paid_orders = ca_get_int32(0, 8, NULL);
	p->overdue_tolerance = ca_get_int64(0, 9, NULL);
	p->max_return_rate = DatumGetFloat8(ca_get_datum(0, 10, &n));
	p->return_rate_min_orders = ca_get_int32(0, 11, NULL);
	p->dunning_block_level = ca_get_int32(0, 12, NULL);
	/* column 13: open_amount (only gates the open-item scan) */
	f->paid_orders = ca_get_int32(0, 14, NULL);
	f->dunning_level = ca_get_int32(0, 15, NULL);
	f->store_credit = ca_get_int64(0, 16, NULL);
	f->orders_12m = ca_get_int32(0, 17, NULL);
	f->purchased_12m = ca_get_int64(0, 18, NULL);
	f->returned_12m = ca_get_int64(0, 19, NULL);
	f->exposure = ca_get_int64(0, 20, NULL);
	f->overdue = ca_get_int64(0, 21, NULL);
	return language;
}

typedef struct MethodRow
{
	PaymentMethodInfo info;
} MethodRow;

static MethodRow *
load_methods(const char *channel_kind, const char *currency, const char *only_method, bool read_only, int *nrows)
{
	Oid			types[3] = {TEXTOID, INT4OID, TEXTOID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	MethodRow  *rows;

	ca_prepare(&plan_methods,
			   "SELECT code, settlement, (channel_kinds IS NULL OR $1 = ANY (channel_kinds::text[])),"
			   "  round(min_amount * 10::numeric ^ $2)::bigint, round(max_amount * 10::numeric ^ $2)::bigint"
			   " FROM customer_account.payment_method WHERE $3::text IS NULL OR code = $3"
			   " ORDER BY sort_order, code",
			   3, types);
	values[0] = CStringGetTextDatum(channel_kind);
	values[1] = Int32GetDatum(currency_minor_units(currency_pack(currency, 3)));
	if (only_method)
		values[2] = CStringGetTextDatum(only_method);
	else
		nulls[2] = 'n';
	ca_execute(plan_methods, values, nulls, read_only, 0);
	*nrows = (int) SPI_processed;
	rows = palloc0(sizeof(MethodRow) * Max(*nrows, 1));
	for (int i = 0; i < *nrows; i++)
	{
		PaymentMethodInfo *m = &rows[i].info;
		char	   *settlement = ca_get_text(i, 2);
		bool		n;

		m->code = ca_get_text(i, 1);
		m->settlement = strcmp(settlement, "credit") == 0 ? SETTLE_CREDIT :
			strcmp(settlement, "prepaid") == 0 ? SETTLE_PREPAID : SETTLE_IMMEDIATE;
		m->offered_on_kind = ca_get_bool(i, 3, NULL);
		m->is_store_credit = strcmp(m->code, "store_credit") == 0;
		m->min_units = ca_get_int64(i, 4, &n);
		m->has_min = !n;
		m->max_units = ca_get_int64(i, 5, &n);
		m->has_max = !n;
	}
	return rows;
}

/*
 * Called by the posting core with the account row locked: refuse the
 * order's method with RA001 and the reason when the rules do not allow it.
 */
void
payment_enforce(int64 customer_id, const char *channel, const char *channel_kind, const char *currency,
				const char *method, int64 total, TimestampTz at, const AccountState *st)
{
	PaymentFacts f;
	PaymentPolicy p;
	char	   *language;
	int			n;
	MethodRow  *rows;
	const char *code;

	rows = load_methods(channel_kind, currency, method, false, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown payment method \"%s\"", method)));
	/* immediate methods offered on the channel need no account facts, except store credit */
	if (rows[0].info.settlement == SETTLE_IMMEDIATE && rows[0].info.offered_on_kind
		&& !rows[0].info.is_store_credit && !rows[0].info.has_min && !rows[0].info.has_max)
		return;

	language = payment_gather_facts(customer_id, currency, channel_kind, total, at, false, &f, &p);
	code = decide_payment_method(&rows[0].info, &f, &p);
	if (strcmp(code, "ok") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CA_REFUSED),
				 errmsg("payment method \"%s\" is not allowed for customer " INT64_FORMAT " on channel \"%s\": %s",
						method, customer_id, channel, code),
				 errdetail("%s", reason_text(code, language)),
				 errhint("customer_account.payment_options() lists the methods this customer may use.")));
}

/* channel -> kind and currency, RA002 when unknown */
void
load_channel(const char *channel, char **kind, char **currency, bool read_only)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	ca_prepare(&plan_channel,
			   "SELECT kind::text, currency FROM customer_account.channel WHERE code = $1", 1, types);
	values[0] = CStringGetTextDatum(channel);
	ca_execute(plan_channel, values, NULL, read_only, 1);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown channel \"%s\"", channel),
				 errhint("Channels are added with customer_account.add_channel().")));
	*kind = ca_get_text(0, 1);
	*currency = ca_get_text(0, 2);
}

/*
 * payment_options(customer_id bigint, order_total currency_amount, channel text)
 *   -> TABLE(method text, allowed bool, reason_code text, reason text)
 */
PG_FUNCTION_INFO_V1(payment_options);
Datum
payment_options(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		customer_id = PG_GETARG_INT64(0);
	CurrencyAmount *total = PG_GETARG_CURRENCY_AMOUNT_P(1);
	char	   *channel = text_to_cstring(PG_GETARG_TEXT_PP(2));
	char		currency[4];
	char	   *kind;
	char	   *channel_currency;
	PaymentFacts f;
	PaymentPolicy p;
	char	   *language;
	MethodRow  *rows;
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	currency_unpack(total->code, currency);
	if (total->units <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order total %s must be positive", currency_amount_to_cstring(total))));

	ca_connect();
	load_channel(channel, &kind, &channel_currency, true);
	if (strcmp(channel_currency, currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order total is in %s but channel \"%s\" sells in %s", currency, channel, channel_currency)));
	language = payment_gather_facts(customer_id, currency, kind, total->units, GetCurrentTransactionStartTimestamp(),
							true, &f, &p);
	rows = load_methods(kind, currency, NULL, true, &n);
	for (int i = 0; i < n; i++)
	{
		const char *code = decide_payment_method(&rows[i].info, &f, &p);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(rows[i].info.code);
		values[1] = BoolGetDatum(strcmp(code, "ok") == 0);
		values[2] = CStringGetTextDatum(code);
		values[3] = CStringGetTextDatum(reason_text(code, language));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	ca_finish();
	return (Datum) 0;
}

/* reason_text(code, language): the catalog, for SQL callers */
PG_FUNCTION_INFO_V1(reason_text_sql);
Datum
reason_text_sql(PG_FUNCTION_ARGS)
{
	char	   *code = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *lang = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (!reason_known(code))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown reason code \"%s\"", code)));
	PG_RETURN_TEXT_P(cstring_to_text(reason_text(code, lang)));
}
