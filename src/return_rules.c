/*-------------------------------------------------------------------------
 *
 * return_rules.c
 *	  The return rules.  First whether the item may come back at all (the
 *	  checks run in a fixed order and the first that fails names the
 *	  reason), then where the money goes: back the way it came, the unpaid
 *	  rest of an invoice first, then the payments in reverse order of
 *	  payment, each to its own route; finally overdue debt is set off
 *	  against what would be paid out.
 *
 *	  A legal floor no business rule undercuts: an order sold at a distance
 *	  (webshop, app, call center, marketplace) can be returned within 14
 *	  days of delivery with the money back by the original route, whatever
 *	  the shop's window, the return rate, a block or an exchange-only rule.
 *	  Items the shop marked as not returnable at the sale (sealed hygiene
 *	  goods, made to measure) are the law's own exceptions and stay refused.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "payment_rules.h"
#include "return_rules.h"

const char *const ca_return_action_names[] = {
	"refund_cash", "refund_original_payment", "reduce_open_invoice", "store_credit",
	"exchange_only", "refund_via_marketplace", "reject"
};

/* a decision that refuses the return */
static void
refuse(ReturnDecision *d, const char *code)
{
	d->accepted = false;
	d->reason_code = code;
	d->nroutes = 1;
	d->routes[0].action = RETURN_REJECT;
	d->routes[0].refund = 0;
	d->routes[0].reason_code = code;
	d->routes[0].tender = RETURN_TENDER_NONE;
}

/* one route of the refund; nothing for an empty share */
static void
add_route(ReturnDecision *d, ReturnAction action, int64 refund, const char *code, int tender)
{
	ReturnRoute *r;

	if (refund <= 0 || d->nroutes >= RETURN_MAX_ROUTES)
		return;
	r = &d->routes[d->nroutes++];
	r->action = action;
	r->refund = refund;
	r->reason_code = code;
	r->tender = tender;
}

/*
 * The units brought back are the next ones of the SKU's lines, in line
 * order: their value, and whether all of them may come back and until when.
 */
static void
span_lines(const ReturnFacts *f, int64 *value, bool *returnable, int32 *window, bool *exchange_only)
{
	int32		skip = f->returned;
	int32		want = f->quantity;

	*value = 0;
	*returnable = true;
	*window = 1000000;
	*exchange_only = false;
	for (int i = 0; i < f->nlines && want > 0; i++)
	{
		const ReturnLineFacts *l = &f->lines[i];
		int32		avail = l->qty;
		int32		take;

		if (skip >= avail)
		{
			skip -= avail;
			continue;
		}
		avail -= skip;
		skip = 0;
		take = Min(avail, want);
		want -= take;
		*value += l->unit_price * take;
		*returnable = *returnable && l->returnable;
		/* a window beyond a million days is forever (and keeps the sums in range) */
		*window = Min(*window, Min(l->window_days, 1000000));
		*exchange_only = *exchange_only || l->exchange_only;
	}
}

/* a store purchase of a customer who sends back more than the policy allows */
static bool
frequent_returner(const ReturnFacts *f)
{
	return f->store_sale && f->orders_12m >= f->return_rate_min_orders
		&& ca_return_rate(f->purchased_12m, f->returned_12m) > f->max_return_rate;
}

/* the route of one tender's share */
static void
route_tender(const ReturnFacts *f, ReturnDecision *d, int t, int64 take, bool exchange_only,
			 bool frequent, int64 *cash_left)
{
	TenderRoute route = f->tenders[t].route;
	bool		floor = d->legal_floor;

	if (route == TENDER_MARKETPLACE)
		add_route(d, RETURN_VIA_MARKETPLACE, take, "marketplace_order", t);
	else if (!floor && exchange_only)
		add_route(d, RETURN_EXCHANGE_ONLY, take, "exchange_only", t);
	else if (!floor && frequent && route != TENDER_STORE_CREDIT)
		add_route(d, RETURN_STORE_CREDIT, take, "frequent_returner", t);
	else if (route == TENDER_STORE_CREDIT)
		add_route(d, RETURN_STORE_CREDIT, take, "ok", t);
	else if (route == TENDER_CASH && f->at_till)
	{
		int64		cash = Min(take, *cash_left);

		*cash_left -= cash;
		add_route(d, RETURN_REFUND_CASH, cash, "ok", t);
		/* above the till's limit: a transfer by law, else store credit */
		add_route(d, floor ? RETURN_REFUND_ORIGINAL : RETURN_STORE_CREDIT, take - cash,
				  "cash_limit_exceeded", t);
	}
	else
		add_route(d, RETURN_REFUND_ORIGINAL, take, "ok", t);
}

/* overdue debt is set off against what would be paid out or credited */
static void
set_off_debt(ReturnDecision *d, int64 debt)
{
	for (int i = 0; i < d->nroutes && debt > 0; i++)
	{
		ReturnRoute *r = &d->routes[i];
		int64		off;

		if (r->action != RETURN_REFUND_CASH && r->action != RETURN_REFUND_ORIGINAL
			&& r->action != RETURN_STORE_CREDIT)
			continue;
		off = Min(r->refund, debt);
		debt -= off;
		if (off == r->refund)
		{
			r->action = RETURN_REDUCE_INVOICE;
			r->reason_code = "offset_against_debt";
			continue;
		}
		if (d->nroutes >= RETURN_MAX_ROUTES)
			return;
		/* split: what is set off follows the part still paid out */
		memmove(&d->routes[i + 2], &d->routes[i + 1], sizeof(ReturnRoute) * (d->nroutes - i - 1));
		d->nroutes++;
		r->refund -= off;
		d->routes[i + 1] = *r;
		d->routes[i + 1].action = RETURN_REDUCE_INVOICE;
		d->routes[i + 1].refund = off;
		d->routes[i + 1].reason_code = "offset_against_debt";
		i++;
	}
}

/*
 * Whether the item may come back at all: the reason code of the first
 * check that fails, or NULL.  These checks need only the facts of the
 * item, the order and the customer, never the money, so a gatherer can
 * stop early.  floor: whether the legal floor applies (when not refused
 * before it is known).
 */
const char *
ca_return_refusal(const ReturnFacts *f, int64 *value, bool *floor, bool *exchange_only)
{
	int32		bought = 0;
	bool		returnable;
	int32		window;

	*value = 0;
	*floor = false;
	*exchange_only = false;
	for (int i = 0; i < f->nlines; i++)
		bought += f->lines[i].qty;
	if (!f->sold || f->nlines == 0)
		return "not_sold_by_us";
	if (f->quantity > bought)
		return "quantity_exceeds_purchase";
	if (f->quantity > bought - f->returned - f->reserved)
		return "already_returned";
	if (!f->delivered || f->delivered_at > f->at)
		return "not_delivered";
	span_lines(f, value, &returnable, &window, exchange_only);
	if (!returnable)
		return "item_not_returnable";
	*floor = f->distance_sale
		&& f->declared_at <= f->delivered_at + (TimestampTz) RETURN_LEGAL_FLOOR_DAYS * USECS_PER_DAY;
	if (!*floor && f->declared_at > f->delivered_at + (TimestampTz) window * USECS_PER_DAY)
		return "return_window_expired";
	if (!*floor && f->blocked)
		return "customer_blocked";
	return NULL;
}

/* the decision for one SKU of one order: refused, or the routes of the refund */
void
ca_return_decide(const ReturnFacts *f, ReturnDecision *d)
{
	bool		exchange_only;
	int64		remaining;
	int64		cash_left;
	bool		frequent;
	const char *refused;

	memset(d, 0, sizeof(*d));
	refused = ca_return_refusal(f, &d->value, &d->legal_floor, &exchange_only);
	if (refused != NULL)
	{
		refuse(d, refused);
		return;
	}

	d->accepted = true;
	d->reason_code = "ok";
	remaining = d->value;

	/* what was never paid is not paid out: the open invoice shrinks first */
	if (f->unpaid > 0 && remaining > 0)
	{
		int64		take = Min(f->unpaid, remaining);

		add_route(d, RETURN_REDUCE_INVOICE, take, "unpaid_order", RETURN_TENDER_UNPAID);
		remaining -= take;
	}

	/* then the payments, the last paid first */
	frequent = frequent_returner(f);
	cash_left = f->has_cash_limit ? f->cash_limit : PG_INT64_MAX;
	for (int t = f->ntenders - 1; t >= 0 && remaining > 0; t--)
	{
		int64		take = Min(f->tenders[t].refundable, remaining);

		if (take <= 0)
			continue;
		remaining -= take;
		route_tender(f, d, t, take, exchange_only, frequent, &cash_left);
	}
	/* books that say less was paid than the order is worth: credit the rest */
	add_route(d, RETURN_STORE_CREDIT, remaining, "ok", RETURN_TENDER_NONE);

	set_off_debt(d, f->overdue_debt);

	/* a free item: accepted, nothing to pay back */
	if (d->nroutes == 0)
	{
		d->nroutes = 1;
		d->routes[0].action = f->ntenders > 0 && f->tenders[f->ntenders - 1].route == TENDER_MARKETPLACE ?
			RETURN_VIA_MARKETPLACE : RETURN_REFUND_ORIGINAL;
		d->routes[0].refund = 0;
		d->routes[0].reason_code = "ok";
		d->routes[0].tender = RETURN_TENDER_NONE;
	}
}

/* LIKE with % and _ and backslash as the escape, byte by byte */
bool
ca_return_like(const char *s, const char *p)
{
	while (*p)
	{
		if (*p == '%')
		{
			while (*p == '%')
				p++;
			if (*p == '\0')
				return true;
			for (; *s; s++)
				if (ca_return_like(s, p))
					return true;
			return false;
		}
		if (*s == '\0')
			return false;
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '_')
		{
			/* one character, also when it takes several bytes in UTF-8 */
			p++;
			s++;
			while ((*s & 0xC0) == 0x80)
				s++;
			continue;
		}
		if (*p != *s)
			return false;
		p++;
		s++;
	}
	return *s == '\0';
}
