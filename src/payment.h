/*-------------------------------------------------------------------------
 *
 * payment.h
 *	  Payment-method decisions: facts gathering, enforcement at booking.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_PAYMENT_H
#define CUSTOMER_ACCOUNT_PAYMENT_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/date.h"
#include "utils/snapshot.h"

#include "payment_rules.h"
#include "config.h"
#include "direct.h"

extern void ca_payment_enforce(int64 customer_id, const char *channel, const char *channel_kind,
							const char *currency, const char *method, int64 total, TimestampTz at,
							const StateRow *st);
extern DateADT ca_month_minus(DateADT month, int n);

/* the facts and policy for one customer, currency and channel kind; returns the language */
extern char *ca_payment_gather_facts(int64 customer_id, const char *currency, const char *channel_kind,
								  int64 total, TimestampTz at, Snapshot snap, PaymentFacts *f,
								  PaymentPolicy *p);

#endif
