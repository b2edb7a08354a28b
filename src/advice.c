/*-------------------------------------------------------------------------
 *
 * advice.c
 *	  account_advice(customer_id): the call-center's decision aid.  The
 *	  rules are ca_decide_advice() in payment_rules.c; this gathers the facts
 *	  for the currency the customer used last.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "input.h"
#include "payment.h"
#include "payment_rules.h"
#include "posting.h"
#include "reason.h"
#include "spi_util.h"

static SPIPlanPtr plan_advice_state;

PG_FUNCTION_INFO_V1(account_advice);
Datum
account_advice(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		customer_id = PG_GETARG_INT64(0);
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	char	   *currency;
	bool		has_last;
	TimestampTz last_purchase;
	int32		incentive_days;
	PaymentFacts f;
	PaymentPolicy p;
	char	   *language;
	Advice		advice[MAX_ADVICE];
	int			n;

	InitMaterializedSRF(fcinfo, 0);
	ca_connect();
	ca_check_customer(customer_id);
	ca_prepare(&plan_advice_state,
			   "SELECT coalesce(s.currency, (SELECT currency FROM customer_account.channel ORDER BY created_at, code LIMIT 1), 'EUR'),"
			   "  s.last_purchase_at, coalesce((SELECT incentive_after_days FROM customer_account.policy), 180)"
			   " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * FROM customer_account.account_state"
			   "   WHERE customer_id = $1 ORDER BY last_event_at DESC NULLS LAST, currency LIMIT 1) s ON true",
			   1, types);
	values[0] = Int64GetDatum(customer_id);
	ca_execute(plan_advice_state, values, NULL, true, 1);
	currency = ca_get_text(0, 1);
	last_purchase = ca_get_timestamptz(0, 2, &has_last);
	has_last = !has_last;
	incentive_days = ca_get_int32(0, 3, NULL);

	language = ca_payment_gather_facts(customer_id, currency, "webshop", 1, now, GetActiveSnapshot(), &f, &p);
	n = ca_decide_advice(&f, &p, has_last, has_last ? ca_days_between(now, last_purchase, "days since the last purchase") : 0,
					  incentive_days, advice);
	for (int i = 0; i < n; i++)
	{
		Datum		out[2];
		bool		nulls[2] = {false, false};

		out[0] = CStringGetTextDatum(advice[i].advice);
		out[1] = CStringGetTextDatum(ca_reason_text(advice[i].reason_code, language));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, nulls);
	}
	ca_finish();
	return (Datum) 0;
}
