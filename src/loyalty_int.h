/*-------------------------------------------------------------------------
 *
 * loyalty_int.h
 *	  What the loyalty files share among themselves.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_LOYALTY_INT_H
#define CUSTOMER_ACCOUNT_LOYALTY_INT_H

#include "postgres.h"
#include "utils/snapshot.h"

#include "loyalty_rules.h"

/* a lot from SPI_tuptable: lot_id, remaining, earned_at, available_at, expires_at from column col on */
extern void ca_loyalty_lot_from_spi(int row, int col, LoyaltyLotState *l);

/* RA002 for an unknown or merged customer; returns the customer's language */
extern char *ca_loyalty_known_customer(int64 customer_id, Snapshot snap);

/* the owner of the extension's tables */
extern Oid	ca_loyalty_owner(void);

/* a cancellation of an order whose lines may still arrive in this transaction */
extern void ca_loyalty_note_cancelled(const char *order_no);

#endif
