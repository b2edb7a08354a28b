/*-------------------------------------------------------------------------
 *
 * month_ring.h
 *	  The twelve-month figures of an account, kept on its state row as a
 *	  small ring of monthly buckets (account_state.month_ring), so that
 *	  balance() and the decisions need no range scan of account_period.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_MONTH_RING_H
#define CUSTOMER_ACCOUNT_MONTH_RING_H

#include "postgres.h"
#include "utils/array.h"
#include "utils/date.h"

#define RING_MONTHS 12
#define RING_FIELDS 5			/* month number, revenue, purchased, returned, orders */

/* the buckets of a ring, oldest month first */
typedef struct MonthRing
{
	int			n;
	int64		b[RING_MONTHS][RING_FIELDS];
} MonthRing;

/* year * 12 + month - 1 of the month a date falls in, and back */
extern int64 ca_month_number(DateADT d);
extern DateADT ca_month_date(int64 month);

/* the ring of an array datum (NULL or '{}' is empty); ERROR when malformed */
extern void ca_ring_read(ArrayType *a, MonthRing *ring);
extern ArrayType *ca_ring_build(const MonthRing *ring);
/* add one event's effect on the month of period */
extern void ca_ring_add(MonthRing *ring, DateADT period, int64 revenue, int64 purchased, int64 returned,
						int64 orders);

/*
 * Sums over the twelve months up to and including to_month; false when the
 * ring cannot answer (a month after to_month is booked: read the periods).
 */
extern bool ca_ring_sum(const MonthRing *ring, DateADT to_month, int64 *revenue, int64 *purchased,
						int64 *returned, int32 *orders);

#endif
