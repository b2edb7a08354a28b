/*-------------------------------------------------------------------------
 *
 * restore.h
 *	  Rows whose postings already exist: pg_restore loads the ledger, the
 *	  open items and the account state before the orders and payments that
 *	  produced them, and the posting triggers must not book those again.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_RESTORE_H
#define CUSTOMER_ACCOUNT_RESTORE_H

#include "postgres.h"
#include "access/htup.h"
#include "access/tupdesc.h"

struct CurrencyAmount;

/*
 * An inserted order whose 'order' entry is already in the ledger: true
 * when the entry describes this very order (it is not booked again), an
 * error when it describes another one; false when the order is new.
 */
extern bool ca_order_already_posted(HeapTuple tup, TupleDesc td);

/* the same for an inserted payment and its 'payment' entry */
extern bool ca_payment_already_posted(HeapTuple tup, TupleDesc td);

/* the order's 'order' entry was booked by an earlier transaction */
extern bool ca_order_posted_earlier(const char *order_no);

/*
 * Was the order booked (its 'order' entry written) by this transaction?
 * Its row's xmin does not say: delivering, cancelling or merging rewrites
 * the row.  (A database still at 1.0.0 has only the row's xmin.)
 */
extern bool ca_order_booked_in_this_transaction(const char *order_no, TransactionId order_xmin);

/*
 * A line for an order of an earlier transaction is accepted only while
 * that order is restored: booked, with no line but those of this
 * transaction, and the lines not beyond the order's total.
 */
extern bool ca_restored_order_takes_line(const char *order_no, const struct CurrencyAmount *total,
										 const struct CurrencyAmount *price, int32 qty);

#endif
