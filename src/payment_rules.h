/*-------------------------------------------------------------------------
 *
 * payment_rules.h
 *	  Which payment methods a customer may use: a pure function over plain
 *	  structs.  No SPI and no catalog access here; src/payment.c gathers
 *	  the facts and formats the answer.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_PAYMENT_RULES_H
#define CUSTOMER_ACCOUNT_PAYMENT_RULES_H

#include "postgres.h"

typedef enum MethodSettlement
{
	SETTLE_IMMEDIATE,
	SETTLE_PREPAID,
	SETTLE_CREDIT
} MethodSettlement;

typedef struct PaymentMethodInfo
{
	const char *code;
	MethodSettlement settlement;	/* SETTLE_CREDIT == grants credit */
	bool		offered_on_kind;
	bool		is_store_credit;
	bool		has_min;
	int64		min_units;
	bool		has_max;
	int64		max_units;
} PaymentMethodInfo;

/* what we know of the customer, in minor units of the order's currency */
typedef struct PaymentFacts
{
	int64		order_total;
	bool		blocked;
	int32		account_age_days;
	int32		paid_orders;
	int32		dunning_level;
	int64		exposure;		/* open receivables before this order */
	int64		overdue;		/* undisputed, past due beyond the grace days */
	bool		has_explicit_limit;
	int64		explicit_limit;
	int32		orders_12m;
	int64		purchased_12m;
	int64		returned_12m;
	int64		store_credit;
} PaymentFacts;

typedef struct PaymentPolicy
{
	int64		default_credit_limit;
	int64		first_order_limit;
	int32		new_customer_days;
	int32		new_customer_paid_orders;
	int64		overdue_tolerance;
	double		max_return_rate;
	int32		return_rate_min_orders;
	int32		dunning_block_level;
} PaymentPolicy;

/* the reason code for one method: "ok" or a refusal code */
extern const char *ca_decide_payment_method(const PaymentMethodInfo *m, const PaymentFacts *f,
										 const PaymentPolicy *p);

/* return rate over 12 months, 0..1 (0 when nothing was purchased) */
extern double ca_return_rate(int64 purchased, int64 returned);


/* account_advice: the call-center's decision aid */
#define MAX_ADVICE 4
typedef struct Advice
{
	const char *advice;			/* remind_payment, credit_allowed, ... */
	const char *reason_code;	/* the sentence to show */
} Advice;

extern int	ca_decide_advice(const PaymentFacts *f, const PaymentPolicy *p, bool has_last_purchase,
						  int32 days_since_purchase, int32 incentive_after_days, Advice *out);

#endif
