/*-------------------------------------------------------------------------
 *
 * returns.h
 *	  Returns: the return policy cache (return_policy.c), the facts of one
 *	  returned item (returns.c) and the booking (return_book.c).  The rules
 *	  themselves are in return_rules.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_RETURNS_H
#define CUSTOMER_ACCOUNT_RETURNS_H

#include "postgres.h"
#include "datatype/timestamp.h"
#include "utils/snapshot.h"

#include "return_rules.h"

/* ------------------------------------------------------------------------
 * policy: the channels' return settings and the return_policy rules,
 * cached per backend until a write to either table
 * ------------------------------------------------------------------------
 */
typedef struct ReturnChannelConf
{
	char		code[64];
	int32		window_days;
	bool		has_cash_limit;
	int64		cash_limit;		/* minor units of the channel's currency */
} ReturnChannelConf;

/* RA002 when the channel is unknown */
extern const ReturnChannelConf *ca_return_channel(const char *code);

/* the most specific rule for a line sold on a channel; no rule: the channel's window */
extern void ca_return_rule(const char *sold_channel, int sold_kind, const char *category, const char *sku,
						   int32 channel_window, int32 *window, bool *returnable, bool *exchange_only);

/* ------------------------------------------------------------------------
 * the facts of one returned item
 * ------------------------------------------------------------------------
 */
typedef enum TenderKind
{
	TENDER_KIND_ORDER,			/* the order's own immediate payment */
	TENDER_KIND_PAYMENT			/* a payment applied to the order's items */
} TenderKind;

typedef struct TenderInfo
{
	TenderKind	kind;
	char		payment_ref[128];
	char		method[64];
} TenderInfo;

typedef struct ReturnCase
{
	/* the return named by the first argument, or to be booked */
	bool		by_return;
	char		return_no[128];
	bool		announced;
	TimestampTz announced_at;
	/* the order */
	char		order_no[128];
	int64		customer_id;
	char		currency[4];
	int32		code;
	char		sold_channel[64];
	int			sold_kind;
	char		method[64];
	char		method_settlement;	/* 'c' credit, 'p' prepaid, 'i' immediate */
	int64		total;
	TimestampTz placed_at;
	bool		has_delivered;
	TimestampTz delivered_at;
	bool		cancelled;
	/* the customer */
	char		language[8];
	int32		overdue_grace_days;
	/* the tenders behind facts.tenders */
	TenderInfo	tenders[RETURN_MAX_TENDERS];
	/* a decision of this return for the SKU exists (a retry) */
	bool		decided_before;
	int32		decided_qty;
	int32		decided_line;
	/* units of the SKU this return announced (0: none announced) */
	int32		own_announced;
} ReturnCase;

/*
 * Find the order or return a till names: an order number first, then a
 * return number (RA002 when neither).  Fills the order part of rc.
 */
extern void ca_return_resolve(const char *order_or_return_no, Snapshot snap, ReturnCase *rc);

/* a return by number: its order and when it was announced; false when unknown */
extern bool ca_return_read(const char *return_no, Snapshot snap, char *order_no, int order_len,
								bool *announced, TimestampTz *announced_at);

/*
 * The facts for returning quantity units of sku at the channel at time at.
 * The channel must sell in the order's currency (22023 otherwise).
 */
extern void ca_return_gather(ReturnCase *rc, const char *sku, int32 quantity, const char *channel,
						   TimestampTz at, Snapshot snap, ReturnFacts *f);

/* the reason sentence of a route in the customer's language */
extern const char *ca_return_reason(const char *code, ReturnAction action, const char *language);

#endif
