/*-------------------------------------------------------------------------
 *
 * return_rules.h
 *	  What a till may do with a returned item: a pure function over plain
 *	  structs.  No SPI and no catalog access here; src/returns.c gathers
 *	  the facts, books the decision and formats the answer.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_RETURN_RULES_H
#define CUSTOMER_ACCOUNT_RETURN_RULES_H

#include "postgres.h"
#include "datatype/timestamp.h"

#define RETURN_MAX_LINES	256		/* order lines of one SKU */
#define RETURN_MAX_TENDERS	16		/* payments applied to one order */
#define RETURN_MAX_ROUTES	(3 * RETURN_MAX_TENDERS + 2)

/* the distance-sale right of withdrawal: 14 days from delivery */
#define RETURN_LEGAL_FLOOR_DAYS 14

/* in the order of the SQL enum return_action */
typedef enum ReturnAction
{
	RETURN_REFUND_CASH,
	RETURN_REFUND_ORIGINAL,
	RETURN_REDUCE_INVOICE,
	RETURN_STORE_CREDIT,
	RETURN_EXCHANGE_ONLY,
	RETURN_VIA_MARKETPLACE,
	RETURN_REJECT
} ReturnAction;

extern const char *const ca_return_action_names[];

/* the way money came in, and so the way it goes back */
typedef enum TenderRoute
{
	TENDER_ORIGINAL,			/* card, PayPal, bank transfer, direct debit */
	TENDER_CASH,
	TENDER_STORE_CREDIT,
	TENDER_MARKETPLACE
} TenderRoute;

/* one payment for the order, given in the order they were paid */
typedef struct ReturnTender
{
	TenderRoute route;
	int64		refundable;		/* paid by it and not yet refunded (minor units) */
} ReturnTender;

/* one order line of the returned SKU, in line order */
typedef struct ReturnLineFacts
{
	int32		qty;
	int64		unit_price;		/* minor units */
	bool		returnable;		/* the line's flag and the policy */
	int32		window_days;	/* the return window that applies to it */
	bool		exchange_only;
} ReturnLineFacts;

/*
 * The facts of one returned item.  Everything up to blocked decides
 * whether it may come back (ca_return_refusal); the rest, from the cash limit
 * on, decides where the money goes.
 */
typedef struct ReturnFacts
{
	int32		quantity;		/* units brought back */
	bool		sold;			/* order not cancelled, placed by now, SKU on it */
	int			nlines;
	ReturnLineFacts lines[RETURN_MAX_LINES];
	int32		returned;		/* units of the SKU accepted back before */
	int32		reserved;		/* units announced by other returns, not yet decided */
	bool		delivered;
	TimestampTz delivered_at;
	TimestampTz at;				/* when the till decides */
	TimestampTz declared_at;	/* when the customer declared the return (announced or now) */
	bool		distance_sale;	/* sold by webshop, app, call center or marketplace */
	bool		store_sale;
	bool		marketplace_sale;
	bool		at_till;		/* brought to a store: cash can be paid out */
	bool		blocked;
	bool		has_cash_limit;
	int64		cash_limit;		/* the returning channel's cash refund limit */
	int32		orders_12m;
	int64		purchased_12m;
	int64		returned_12m;
	double		max_return_rate;
	int32		return_rate_min_orders;
	int64		unpaid;			/* still open on the order's own items */
	int			ntenders;
	ReturnTender tenders[RETURN_MAX_TENDERS];
	int64		overdue_debt;	/* other undisputed overdue receivables */
} ReturnFacts;

/* one route of the refund; tender: index into tenders, -1 the unpaid rest */
typedef struct ReturnRoute
{
	ReturnAction action;
	int64		refund;
	const char *reason_code;
	int			tender;
} ReturnRoute;

#define RETURN_TENDER_UNPAID	(-1)
#define RETURN_TENDER_NONE		(-2)

typedef struct ReturnDecision
{
	bool		accepted;
	const char *reason_code;	/* "ok" or why it is refused */
	int64		value;			/* what the units cost */
	bool		legal_floor;	/* the distance-sale right of withdrawal applied */
	int			nroutes;
	ReturnRoute routes[RETURN_MAX_ROUTES];
} ReturnDecision;

/* the decision for one SKU of one order */
extern void ca_return_decide(const ReturnFacts *f, ReturnDecision *d);

/* why the item may not come back (NULL: it may); needs no money facts */
extern const char *ca_return_refusal(const ReturnFacts *f, int64 *value, bool *floor, bool *exchange_only);

/* SQL LIKE (% and _, backslash escapes), for the policy's SKU patterns */
extern bool ca_return_like(const char *s, const char *pattern);

#endif
