/*-------------------------------------------------------------------------
 *
 * input.h
 *	  Input the account cannot hold is refused before it is booked: event
 *	  times outside the accepted range, payments a channel cannot take,
 *	  and (checked.h) 64-bit arithmetic that would wrap.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_INPUT_H
#define CUSTOMER_ACCOUNT_INPUT_H

#include "postgres.h"
#include "datatype/timestamp.h"

#include "checked.h"

struct ChannelConf;

/*
 * The accepted range of event times (placed_at, received_at, delivered_at,
 * cancelled_at): finite, not before 1970-01-01 00:00 UTC, and at most one
 * day after the current time (the clock of a till may run ahead).
 */
#define CA_EVENT_EARLIEST	((TimestampTz) (UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)
#define CA_EVENT_AHEAD		USECS_PER_DAY

/* 22008 when ts lies outside the accepted range ("placed_at of order X") */
extern void ca_check_event_time(TimestampTz ts, const char *column, const char *what, const char *key);
/* 22023 when a delivery or cancellation lies before the placement */
extern void ca_check_not_before_placed(TimestampTz at, TimestampTz placed_at, const char *verb,
									   const char *order_no);
/* 22023 / RA001 for a payment the channel cannot take */
extern void ca_check_payment_method(const char *payment_ref, const struct ChannelConf *ch,
									const char *channel, const char *method, const char *currency);

#endif
