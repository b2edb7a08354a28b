/*-------------------------------------------------------------------------
 *
 * checked.c
 *	  64-bit arithmetic on stored values that refuses to wrap: day and
 *	  time sums (22008) and sums of minor units (22003).  Shared by the
 *	  read path, the posting core and the decisions.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/int.h"
#include "utils/timestamp.h"

#include "checked.h"

/* a timestamp as text (ISO, session time zone), in memory of its own */
static char *
ts_text(TimestampTz ts)
{
	return pstrdup(timestamptz_to_str(ts));
}

/* ts + days, or 22008 naming what (and key, if any) when out of range */
TimestampTz
ca_add_days(TimestampTz ts, int64 days, const char *what, const char *key)
{
	int64		usecs;
	TimestampTz r;

	if (TIMESTAMP_NOT_FINITE(ts) || pg_mul_s64_overflow(days, USECS_PER_DAY, &usecs)
		|| pg_add_s64_overflow(ts, usecs, &r) || !IS_VALID_TIMESTAMP(r))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 key ? errmsg("%s \"%s\" out of range: %s plus " INT64_FORMAT " days", what, key, ts_text(ts), days)
				 : errmsg("%s out of range: %s plus " INT64_FORMAT " days", what, ts_text(ts), days)));
	return r;
}

/* whole days from earlier to later (truncated toward zero), or 22008 */
int32
ca_days_between(TimestampTz later, TimestampTz earlier, const char *what)
{
	int64		diff;

	if (TIMESTAMP_NOT_FINITE(later) || TIMESTAMP_NOT_FINITE(earlier)
		|| pg_sub_s64_overflow(later, earlier, &diff))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("%s out of range: from %s to %s", what, ts_text(earlier), ts_text(later))));
	/* |diff| < 2^63 microseconds is less than 2^27 days: fits */
	return (int32) (diff / USECS_PER_DAY);
}

/* *sum += v, or 22003 naming what was summed */
void
ca_add_units(int64 *sum, int64 v, const char *what)
{
	if (unlikely(pg_add_s64_overflow(*sum, v, sum)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s out of range", what),
				 errdetail("The sum does not fit in 64-bit minor units.")));
}
