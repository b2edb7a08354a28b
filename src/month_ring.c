/*-------------------------------------------------------------------------
 *
 * month_ring.c
 *	  The ring of monthly buckets on the account state row.
 *
 *	  account_state.month_ring is a bigint[n][5] array, n <= 12, one row per
 *	  month with an event, oldest first: {month number, revenue, purchased,
 *	  returned, orders}, the month number being year * 12 + month - 1 (UTC
 *	  calendar months, as account_period).  It holds exactly the
 *	  account_period rows of the twelve months up to the latest month booked
 *	  (its head); an event for a later month moves the head and drops the
 *	  months that fall out, an event older than the ring's twelve months is
 *	  only counted in account_period.  Any twelve-month window that ends in
 *	  or after the head is therefore answered from the ring alone; a window
 *	  ending before the head (a future-dated event was booked) is read from
 *	  account_period.  month_ring_of() rebuilds the ring from account_period.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/int.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/datetime.h"

#include "month_ring.h"

/* year * 12 + month - 1 of the month d falls in */
int64
ca_month_number(DateADT d)
{
	int			y,
				m,
				day;

	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	return (int64) y * 12 + m - 1;
}

/* the first day of a month number */
DateADT
ca_month_date(int64 month)
{
	return date2j((int) (month / 12), (int) (month % 12) + 1, 1) - POSTGRES_EPOCH_JDATE;
}

/* the buckets of a ring array; NULL and '{}' are the empty ring */
void
ca_ring_read(ArrayType *a, MonthRing *ring)
{
	int			nitems;

	ring->n = 0;
	if (a == NULL || ARR_NDIM(a) == 0)
		return;
	nitems = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (ARR_ELEMTYPE(a) != INT8OID || ARR_HASNULL(a) || nitems % RING_FIELDS != 0
		|| nitems / RING_FIELDS > RING_MONTHS)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed month ring: expected bigint[n][%d] without NULLs, n <= %d",
						RING_FIELDS, RING_MONTHS),
				 errhint("Rebuild it with customer_account.month_ring_of(customer_id, currency).")));
	ring->n = nitems / RING_FIELDS;
	/* no NULLs: the data follows the fixed header (ARR_DATA_PTR trips -Wsign-compare) */
	memcpy(ring->b, (char *) a + ARR_OVERHEAD_NONULLS(ARR_NDIM(a)), sizeof(int64) * nitems);
}

/* the array of a ring: bigint[n][5], or '{}' when empty */
ArrayType *
ca_ring_build(const MonthRing *ring)
{
	int			dims[2] = {ring->n, RING_FIELDS};
	int			lbs[2] = {1, 1};
	Datum		elems[RING_MONTHS * RING_FIELDS];

	if (ring->n == 0)
		return construct_empty_array(INT8OID);
	for (int i = 0; i < ring->n; i++)
		for (int f = 0; f < RING_FIELDS; f++)
			elems[i * RING_FIELDS + f] = Int64GetDatum(ring->b[i][f]);
	return construct_md_array(elems, NULL, 2, dims, lbs, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* add to a bucket, refusing overflow */
static inline void
bucket_add(int64 *field, int64 delta)
{
	if (pg_add_s64_overflow(*field, delta, field))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("monthly figure out of range")));
}

/* one event's effect on the month of period */
void
ca_ring_add(MonthRing *ring, DateADT period, int64 revenue, int64 purchased, int64 returned, int64 orders)
{
	int64		month = ca_month_number(period);
	int64		head = ring->n > 0 ? ring->b[ring->n - 1][0] : PG_INT64_MIN;
	int			i;

	if (ring->n > 0 && month <= head - RING_MONTHS)
		return;					/* older than the ring: account_period only */
	if (month > head)
	{
		/* a new head: drop the months that fall out of its twelve */
		int			keep = 0;

		for (i = 0; i < ring->n; i++)
			if (ring->b[i][0] > month - RING_MONTHS)
				memmove(ring->b[keep++], ring->b[i], sizeof(ring->b[i]));
		ring->n = keep;
	}
	for (i = 0; i < ring->n && ring->b[i][0] < month; i++)
		;
	if (i == ring->n || ring->b[i][0] != month)
	{
		/* a month not booked yet: insert it in order */
		memmove(ring->b[i + 1], ring->b[i], sizeof(ring->b[i]) * (ring->n - i));
		memset(ring->b[i], 0, sizeof(ring->b[i]));
		ring->b[i][0] = month;
		ring->n++;
	}
	bucket_add(&ring->b[i][1], revenue);
	bucket_add(&ring->b[i][2], purchased);
	bucket_add(&ring->b[i][3], returned);
	bucket_add(&ring->b[i][4], orders);
}

/* sums over the twelve months up to to_month; false when the ring cannot say */
bool
ca_ring_sum(const MonthRing *ring, DateADT to_month, int64 *revenue, int64 *purchased, int64 *returned,
			int32 *orders)
{
	int64		to = ca_month_number(to_month);

	*revenue = *purchased = *returned = 0;
	*orders = 0;
	if (ring->n > 0 && ring->b[ring->n - 1][0] > to)
		return false;
	for (int i = 0; i < ring->n; i++)
	{
		if (ring->b[i][0] <= to - RING_MONTHS)
			continue;
		*revenue += ring->b[i][1];
		*purchased += ring->b[i][2];
		*returned += ring->b[i][3];
		*orders += (int32) ring->b[i][4];
	}
	return true;
}

/*
 * month_ring_add(ring bigint[], period date, revenue bigint, purchased
 * bigint, returned bigint, orders integer) -> bigint[]: the ring after one
 * event; the posting core calls it next to the account_period upsert.
 */
PG_FUNCTION_INFO_V1(month_ring_add);
Datum
month_ring_add(PG_FUNCTION_ARGS)
{
	MonthRing	ring;

	for (int i = 1; i < 6; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("month_ring_add: only the ring may be NULL")));
	ca_ring_read(PG_ARGISNULL(0) ? NULL : PG_GETARG_ARRAYTYPE_P(0), &ring);
	ca_ring_add(&ring, PG_GETARG_DATEADT(1), PG_GETARG_INT64(2), PG_GETARG_INT64(3), PG_GETARG_INT64(4),
				PG_GETARG_INT32(5));
	PG_RETURN_ARRAYTYPE_P(ca_ring_build(&ring));
}
