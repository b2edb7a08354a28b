/*-------------------------------------------------------------------------
 *
 * payment.c
 *	  payment_options() and the enforcement of its decision when an order
 *	  is booked.  This file gathers the facts (direct index reads and the
 *	  configuration cache of config.c) and formats the answer; the rules
 *	  themselves are in payment_rules.c.
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
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "input.h"
#include "money.h"
#include "payment.h"
#include "payment_rules.h"
#include "posting.h"
#include "reason.h"
#include "spi_util.h"

DateADT
ca_month_minus(DateADT month, int n)
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
 * Gather what the rules need, by direct index reads (direct.c) under the
 * given snapshot: the account state row of the currency, which carries the
 * customer facts and the twelve-month ring, and the unsettled items when
 * something is open.  The customer row is read only when the account has
 * no state row in the currency yet.  Returns the customer's language.
 */
char *
ca_payment_gather_facts(int64 customer_id, const char *currency, const char *channel_kind, int64 total,
					 TimestampTz at, Snapshot snap, PaymentFacts *f, PaymentPolicy *p)
{
	int32		code = ca_currency_pack(currency, 3);
	int			minor = ca_currency_minor_units(code);
	DateADT		this_month = ca_month_of(at);
	CustomerRow c;
	StateRow	st;
	bool		has_state;
	int			kind = -1;
	const CreditPolicyConf *pol;

	for (int k = 0; k < CHANNEL_KINDS; k++)
		if (strcmp(ca_channel_kind_names[k], channel_kind) == 0)
			kind = k;
	has_state = ca_read_states(customer_id, currency, snap, &st, 1) == 1;
	if (has_state && st.has_customer)
		c = st.customer;
	else
		ca_read_customer(customer_id, snap, &c);	/* RA002 when unknown */
	if (c.merged)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("customer " INT64_FORMAT " was merged into customer " INT64_FORMAT,
						customer_id, c.merged_into)));
	pol = ca_credit_policy(kind, c.has_group ? c.group : NULL, currency);

	memset(f, 0, sizeof(*f));
	f->order_total = total;
	f->blocked = c.blocked;
	f->account_age_days = at > c.since ? ca_days_between(at, c.since, "age of the customer account") : 0;
	f->has_explicit_limit = c.has_limit && c.limit_code == code;
	f->explicit_limit = f->has_explicit_limit ? c.limit_units : 0;

	p->default_credit_limit = ca_conf_to_units(pol->credit_limit, minor);
	p->first_order_limit = ca_conf_to_units(pol->first_order_limit, minor);
	p->new_customer_days = pol->new_customer_days;
	p->new_customer_paid_orders = pol->new_customer_paid_orders;
	p->overdue_tolerance = ca_conf_to_units(pol->overdue_tolerance, minor);
	p->max_return_rate = pol->max_return_rate;
	p->return_rate_min_orders = pol->return_rate_min_orders;
	p->dunning_block_level = pol->dunning_block_level;

	if (has_state)
	{
		int64		revenue;

		f->paid_orders = st.paid_orders;
		f->dunning_level = st.dunning_level;
		f->store_credit = st.store_credit;
		if (!st.has_ring || !ca_ring_sum(&st.ring, this_month, &revenue, &f->purchased_12m, &f->returned_12m, &f->orders_12m))
		{
			/* a month after this one is booked: the ring has moved past it */
			PeriodSums	ps;

			ca_read_periods(customer_id, currency, ca_month_minus(this_month, 12), this_month, snap, &ps);
			f->orders_12m = ps.orders;
			f->purchased_12m = ps.purchased;
			f->returned_12m = ps.returned;
		}
		if (st.open_amount > 0)
		{
			ItemSums	items;

			ca_read_items(customer_id, currency, at,
						  ca_add_days(at, -(int64) pol->overdue_grace_days,
									  "overdue cut-off of the credit policy's overdue_grace_days", NULL),
						  false, snap, &items);
			f->exposure = items.exposure;
			f->overdue = items.overdue_undisputed;
		}
	}
	return pstrdup(c.language);
}

static PaymentMethodInfo
method_info(const MethodConf *m, int kind, int minor)
{
	PaymentMethodInfo info;

	info.code = m->code;
	info.settlement = m->settlement == 'c' ? SETTLE_CREDIT : m->settlement == 'p' ? SETTLE_PREPAID : SETTLE_IMMEDIATE;
	info.offered_on_kind = m->all_kinds || (kind >= 0 && m->kinds[kind]);
	info.is_store_credit = strcmp(m->code, "store_credit") == 0;
	info.has_min = m->has_min;
	info.min_units = m->has_min ? ca_conf_to_units(m->min_amount, minor) : 0;
	info.has_max = m->has_max;
	info.max_units = m->has_max ? ca_conf_to_units(m->max_amount, minor) : 0;
	return info;
}

/*
 * Called by the posting core with the account row locked: refuse the
 * order's method with RA001 and the reason when the rules do not allow it.
 */
void
ca_payment_enforce(int64 customer_id, const char *channel, const char *channel_kind, const char *currency,
				const char *method, int64 total, TimestampTz at, const StateRow *st)
{
	PaymentFacts f;
	PaymentPolicy p;
	char	   *language;
	int			n;
	const MethodConf *methods = ca_methods(&n);
	const MethodConf *m = NULL;
	PaymentMethodInfo info;
	const char *code;
	int			kind = -1;

	for (int k = 0; k < CHANNEL_KINDS; k++)
		if (strcmp(ca_channel_kind_names[k], channel_kind) == 0)
			kind = k;
	for (int i = 0; i < n; i++)
		if (strcmp(methods[i].code, method) == 0)
			m = &methods[i];
	if (m == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown payment method \"%s\"", method)));
	info = method_info(m, kind, ca_currency_minor_units(ca_currency_pack(currency, 3)));
	/* immediate methods offered on the channel need no account facts, except store credit */
	if (info.settlement == SETTLE_IMMEDIATE && info.offered_on_kind && !info.is_store_credit
		&& !info.has_min && !info.has_max)
		return;

	/*
	 * The account row is locked by now; read with a fresh snapshot so that
	 * what a concurrent writer committed before we got the lock counts.
	 */
	language = ca_payment_gather_facts(customer_id, currency, channel_kind, total, at, GetLatestSnapshot(), &f, &p);
	code = ca_decide_payment_method(&info, &f, &p);
	if (strcmp(code, "ok") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_CA_REFUSED),
				 errmsg("payment method \"%s\" is not allowed for customer " INT64_FORMAT " on channel \"%s\": %s",
						method, customer_id, channel, code),
				 errdetail("%s", ca_reason_text(code, language)),
				 errhint("customer_account.payment_options() lists the methods this customer may use.")));
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
	const ChannelConf *ch;
	PaymentFacts f;
	PaymentPolicy p;
	char	   *language;
	const MethodConf *methods;
	int			n;
	int			minor;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	ca_currency_unpack(total->code, currency);
	minor = ca_currency_minor_units(total->code);
	if (total->units <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order total %s must be positive", ca_currency_amount_to_cstring(total))));
	ch = ca_channel(channel);
	if (strcmp(ch->currency, currency) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order total is in %s but channel \"%s\" sells in %s", currency, channel, ch->currency)));
	language = ca_payment_gather_facts(customer_id, currency, ca_channel_kind_names[ch->kind], total->units,
									GetCurrentTransactionStartTimestamp(), GetActiveSnapshot(), &f, &p);
	methods = ca_methods(&n);
	for (int i = 0; i < n; i++)
	{
		PaymentMethodInfo info = method_info(&methods[i], ch->kind, minor);
		const char *code = ca_decide_payment_method(&info, &f, &p);
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum(info.code);
		values[1] = BoolGetDatum(strcmp(code, "ok") == 0);
		values[2] = CStringGetTextDatum(code);
		values[3] = CStringGetTextDatum(ca_reason_text(code, language));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* ca_reason_text(code, language): the catalog, for SQL callers */
PG_FUNCTION_INFO_V1(reason_text_sql);
Datum
reason_text_sql(PG_FUNCTION_ARGS)
{
	char	   *code = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *lang = text_to_cstring(PG_GETARG_TEXT_PP(1));

	if (!ca_reason_known(code))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown reason code \"%s\"", code)));
	PG_RETURN_TEXT_P(cstring_to_text(ca_reason_text(code, lang)));
}
