/*-------------------------------------------------------------------------
 *
 * loyalty.h
 *	  Loyalty crediting inside the posting path: the hooks the posting core
 *	  and the returns booking call, and the tier for balance().
 *
 *	  Every hook runs inside an SPI connection, after the account state
 *	  row of the order's customer and currency is locked (lock order:
 *	  account state, then the customer's loyalty account, then lots).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_LOYALTY_H
#define CUSTOMER_ACCOUNT_LOYALTY_H

#include "postgres.h"
#include "datatype/timestamp.h"

/*
 * End of post_order: the reactivation credit, when the order earns it; the
 * order's facts are kept for crediting its lines, which arrive next.
 */
extern void ca_loyalty_order_posted(int64 customer_id, const char *order_no, const char *channel,
									const char *method, const char *currency, int64 total,
									TimestampTz placed_at, bool delivered, TimestampTz delivered_at);

/* delivered_at set: pending points get their available and expiry dates */
extern void ca_loyalty_order_delivered(const char *order_no, TimestampTz delivered_at);

/* end of post_cancel: take back everything the order earned and its reactivation credit */
extern void ca_loyalty_order_cancelled(int64 customer_id, const char *order_no, const char *currency,
									   TimestampTz cancelled_at);

/*
 * qty_returned more units of an order line came back: take back
 * floor(line points x k / n), the last units whatever the line still holds,
 * pending points of the line first.  Returns the points taken back.
 */
extern int64 ca_loyalty_reverse_return(int64 customer_id, const char *order_no, int32 line_no,
									   int32 qty_returned, TimestampTz at);

/*
 * The same by SKU, as accept_return() sees a return: the units go to the
 * order's lines of that SKU in line order, each line's units not yet
 * returned first.  Returns the points taken back.
 */
extern int64 ca_loyalty_reverse_return_sku(int64 customer_id, const char *order_no, const char *sku,
										   int32 qty_returned, TimestampTz at);

/* merge_customers: lots, history and totals move to the survivor */
extern void ca_loyalty_merge(int64 survivor, int64 duplicate);

/* the tier for a rolling 12-month revenue in a currency; NULL when none */
extern const char *ca_loyalty_tier(const char *currency, int64 revenue_12m);

#endif
