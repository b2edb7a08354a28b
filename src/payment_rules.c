/*-------------------------------------------------------------------------
 *
 * payment_rules.c
 *	  The payment-method rules.  Credit-granting methods (invoice, direct
 *	  debit, cash on delivery) are for customers in good standing;
 *	  immediate and prepaid methods stay open so that nobody is left without
 *	  a way to pay, except that a blocked customer may only pay at once.
 *
 *	  The checks run in a fixed order, and the first that fails names the
 *	  reason, so a refusal is always explained by one stable code.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"

#include "payment_rules.h"

double
ca_return_rate(int64 purchased, int64 returned)
{
	if (purchased <= 0 || returned <= 0)
		return 0.0;
	if (returned >= purchased)
		return 1.0;
	return (double) returned / (double) purchased;
}

static bool
is_new_customer(const PaymentFacts *f, const PaymentPolicy *p)
{
	/* an explicit credit limit is credit control's decision: it replaces the new-customer limit */
	if (f->has_explicit_limit)
		return false;
	return f->account_age_days < p->new_customer_days || f->paid_orders < p->new_customer_paid_orders;
}

const char *
ca_decide_payment_method(const PaymentMethodInfo *m, const PaymentFacts *f, const PaymentPolicy *p)
{
	int64		exposure_after;

	if (!m->offered_on_kind)
		return "not_offered_on_channel";
	if ((m->has_min && f->order_total < m->min_units) || (m->has_max && f->order_total > m->max_units))
		return "amount_out_of_range";
	if (f->blocked && m->settlement != SETTLE_IMMEDIATE)
		return "customer_blocked";
	if (m->is_store_credit && f->store_credit < f->order_total)
		return "insufficient_store_credit";
	if (m->settlement != SETTLE_CREDIT)
		return "ok";

	/* credit-granting methods from here on */
	if (p->dunning_block_level > 0 && f->dunning_level >= p->dunning_block_level)
		return "dunning";
	if (f->overdue > p->overdue_tolerance)
		return "overdue_debt";
	if (f->orders_12m >= p->return_rate_min_orders
		&& ca_return_rate(f->purchased_12m, f->returned_12m) > p->max_return_rate)
		return "frequent_returner";

	if (pg_add_s64_overflow(f->exposure, f->order_total, &exposure_after))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("open receivables plus the order total are out of range"),
				 errdetail("Open receivables of " INT64_FORMAT " and an order of " INT64_FORMAT
						   " minor units do not sum within 64 bits.", f->exposure, f->order_total)));
	if (is_new_customer(f, p) && exposure_after > p->first_order_limit)
		return "new_customer_limit";
	if (exposure_after > (f->has_explicit_limit ? f->explicit_limit : p->default_credit_limit))
		return "credit_limit_exceeded";
	return "ok";
}

/*
 * The advice for an agent looking at the account: remind about overdue
 * money, offer credit or only prepayment (with the reason credit is
 * refused), send an incentive to a customer who has been away long, and
 * flag a frequent returner.  Returns how many entries were written.
 */
int
ca_decide_advice(const PaymentFacts *f, const PaymentPolicy *p, bool has_last_purchase,
			  int32 days_since_purchase, int32 incentive_after_days, Advice *out)
{
	PaymentMethodInfo on_account = {"invoice", SETTLE_CREDIT, true, false, false, 0, false, 0};
	const char *credit;
	int			n = 0;

	if (f->overdue > 0)
	{
		out[n].advice = "remind_payment";
		out[n++].reason_code = "remind_payment";
	}
	credit = ca_decide_payment_method(&on_account, f, p);
	if (strcmp(credit, "ok") == 0)
	{
		out[n].advice = "credit_allowed";
		out[n++].reason_code = "credit_allowed";
	}
	else
	{
		out[n].advice = "prepayment_only";
		out[n++].reason_code = credit;
	}
	if (has_last_purchase && days_since_purchase >= incentive_after_days)
	{
		out[n].advice = "send_incentive";
		out[n++].reason_code = "send_incentive";
	}
	if (f->orders_12m >= p->return_rate_min_orders
		&& ca_return_rate(f->purchased_12m, f->returned_12m) > p->max_return_rate)
	{
		out[n].advice = "frequent_returner";
		out[n++].reason_code = "frequent_returner_advice";
	}
	return n;
}
