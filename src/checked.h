/*-------------------------------------------------------------------------
 *
 * checked.h
 *	  64-bit arithmetic on stored values that refuses to wrap.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_CHECKED_H
#define CUSTOMER_ACCOUNT_CHECKED_H

#include "postgres.h"
#include "datatype/timestamp.h"

/* ts + days, or 22008 naming what ("due date of order", key) when out of range */
extern TimestampTz ca_add_days(TimestampTz ts, int64 days, const char *what, const char *key);
/* whole days from earlier to later (truncated), or 22008 when out of range */
extern int32 ca_days_between(TimestampTz later, TimestampTz earlier, const char *what);
/* *sum += v, or 22003 naming what was summed */
extern void ca_add_units(int64 *sum, int64 v, const char *what);

#endif
