/*-------------------------------------------------------------------------
 *
 * loyalty_rules.c
 *	  The loyalty rules, pure: plain structs in, a decision out.  Points
 *	  arithmetic is exact (numeric), floored once per order line; money is
 *	  rounded down to the minor unit.  Days are 24-hour days.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "common/int.h"
#include "utils/fmgrprotos.h"
#include "utils/numeric.h"

#include "currency.h"
#include "loyalty_rules.h"

/* ------------------------------------------------------------------------
 * numeric helpers
 * ------------------------------------------------------------------------
 */
/* floor(x) as int64; 22003 when it does not fit */
static int64
numeric_floor_int64(Numeric x)
{
	Datum		f = DirectFunctionCall1(numeric_floor, NumericGetDatum(x));

	return DatumGetInt64(DirectFunctionCall1(numeric_int8, f));
}

/* a x b, exactly */
static Numeric
num_mul(Numeric a, Numeric b)
{
	return numeric_mul_opt_error(a, b, NULL);
}

/* ------------------------------------------------------------------------
 * matching
 * ------------------------------------------------------------------------
 */
/* the terms of a currency, or NULL: without terms nothing is earned */
const LoyaltyTerms *
ca_lr_terms(const LoyaltyPolicy *p, const char *currency)
{
	for (int i = 0; i < p->nterms; i++)
		if (strcmp(p->terms[i].currency, currency) == 0)
			return &p->terms[i];
	return NULL;
}

/* sku LIKE pattern, bytewise (C collation: no locale, no catalog) */
bool
ca_lr_sku_matches(text *pattern, text *sku)
{
	return DatumGetBool(DirectFunctionCall2Coll(textlike, C_COLLATION_OID,
												PointerGetDatum(sku), PointerGetDatum(pattern)));
}

/* from <= at < to, open ends allowed */
static inline bool
valid_at(bool has_from, TimestampTz from, bool has_to, TimestampTz to, TimestampTz at)
{
	return (!has_from || from <= at) && (!has_to || at < to);
}

/* 2 for a matching SKU pattern, +1 for a matching channel kind; -1: no match */
static int
rule_score(const LoyaltyEarnRule *r, int kind, text *sku, TimestampTz at)
{
	int			score = 0;

	if (!valid_at(r->has_from, r->valid_from, r->has_to, r->valid_to, at))
		return -1;
	if (r->kind != LR_ANY_KIND)
	{
		if (r->kind != kind)
			return -1;
		score += 1;
	}
	if (r->sku_pattern != NULL)
	{
		if (!ca_lr_sku_matches(r->sku_pattern, sku))
			return -1;
		score += 2;
	}
	return score;
}

/*
 * The most specific earn rule valid at `at`: a matching SKU pattern beats a
 * channel kind alone, which beats the rule with neither.  Among equally
 * specific rules the one valid from the latest date wins (a campaign over
 * the standing rate), then the lowest code.
 */
const LoyaltyEarnRule *
ca_lr_earn_rule(const LoyaltyPolicy *p, int kind, text *sku, TimestampTz at)
{
	const LoyaltyEarnRule *best = NULL;
	int			best_score = -1;

	for (int i = 0; i < p->nrules; i++)
	{
		const LoyaltyEarnRule *r = &p->rules[i];
		int			s = rule_score(r, kind, sku, at);

		if (s < 0)
			continue;
		if (best != NULL)
		{
			if (s < best_score)
				continue;
			if (s == best_score)
			{
				if (best->has_from && (!r->has_from || r->valid_from < best->valid_from))
					continue;
				if (best->has_from == r->has_from && (!r->has_from || r->valid_from == best->valid_from)
					&& strcmp(r->code, best->code) > 0)
					continue;
			}
		}
		best = r;
		best_score = s;
	}
	return best;
}

/* every condition of the multiplier matches the line and the order */
static bool
multiplier_applies(const LoyaltyMultiplier *m, const LoyaltyOrderFacts *o, text *sku)
{
	if (!valid_at(m->has_from, m->valid_from, m->has_to, m->valid_to, o->placed_at))
		return false;
	if (m->kind != LR_ANY_KIND && m->kind != o->kind)
		return false;
	if (m->tier != NULL && (o->tier == NULL || strcmp(m->tier, o->tier) != 0))
		return false;
	if (m->sku_pattern != NULL && !ca_lr_sku_matches(m->sku_pattern, sku))
		return false;
	return true;
}

/*
 * What one order line earns: floor(eligible value in whole currency units
 * x points_per_unit x the product of every matching multiplier).  The part
 * of the order paid with store credit earns nothing; it is taken off each
 * line in proportion to its value.  Returns false when no rule applies.
 */
bool
ca_lr_line_earning(const LoyaltyPolicy *p, const LoyaltyOrderFacts *o, const LoyaltyLineFacts *l,
				LoyaltyLineEarning *out)
{
	Numeric		value;

	memset(out, 0, sizeof(*out));
	out->rule = ca_lr_earn_rule(p, o->kind, l->sku, o->placed_at);
	if (out->rule == NULL)
		return false;

	out->factor = int64_to_numeric(1);
	for (int i = 0; i < p->nmults && out->nmults < LR_MAX_MULTIPLIERS; i++)
	{
		const LoyaltyMultiplier *m = &p->mults[i];

		if (!multiplier_applies(m, o, l->sku))
			continue;
		out->mults[out->nmults++] = m;
		out->factor = num_mul(out->factor, m->factor);
	}

	out->eligible = l->value;
	if (o->paid_by_credit > 0 && o->total > 0)
	{
		if (o->paid_by_credit >= o->total)
			out->eligible = 0;
		else
		{
			/* value - floor(value * credit / total), exactly */
			Numeric		share = numeric_div_opt_error(num_mul(int64_to_numeric(l->value),
															  int64_to_numeric(o->paid_by_credit)),
													  int64_to_numeric(o->total), NULL);

			out->eligible = l->value - numeric_floor_int64(share);
		}
	}
	if (out->eligible <= 0)
	{
		out->points = 0;
		return true;
	}
	value = int64_div_fast_to_numeric(out->eligible, o->minor);
	out->points = numeric_floor_int64(num_mul(num_mul(value, out->rule->points_per_unit), out->factor));
	if (out->points < 0)
		out->points = 0;
	return true;
}

/*
 * The tier in a currency: the one with the highest threshold not above the
 * rolling 12-month revenue; NULL when none is reached or none configured.
 */
const char *
ca_lr_tier(const LoyaltyPolicy *p, const char *currency, int64 revenue_12m)
{
	const LoyaltyTier *best = NULL;

	for (int i = 0; i < p->ntiers; i++)
	{
		const LoyaltyTier *t = &p->tiers[i];

		if (strcmp(t->currency, currency) != 0 || t->min_units > revenue_12m)
			continue;
		if (best == NULL || t->min_units > best->min_units
			|| (t->min_units == best->min_units && strcmp(t->tier, best->tier) < 0))
			best = t;
	}
	return best ? best->tier : NULL;
}

/*
 * What returning k more of a line's qty units takes back: floor(points x
 * k / qty) of the line's original points and units; the return of the last
 * units takes whatever the line still holds, so that returning everything,
 * in one go or in parts, takes back exactly what the line earned.
 */
int64
ca_lr_return_points(int64 points, int32 qty, int32 returned_qty, int64 reversed, int32 k)
{
	int64		left = Max(points - reversed, 0);
	int64		product;
	int64		take;

	if (k <= 0 || qty <= 0 || left == 0)
		return 0;
	if ((int64) returned_qty + k >= qty)
		return left;
	if (!pg_mul_s64_overflow(points, (int64) k, &product))
		take = product / qty;
	else
		take = numeric_floor_int64(numeric_div_opt_error(num_mul(int64_to_numeric(points), int64_to_numeric(k)),
														 int64_to_numeric(qty), NULL));
	return Min(take, left);
}

/* days from delivery until points are available: the terms' pending_days when set */
int32
ca_lr_window_days(const LoyaltyTerms *t, int32 channel_window_days)
{
	if (t != NULL && t->has_pending_days)
		return t->pending_days;
	return channel_window_days;
}

/* available after the window from delivery, expired expiry_days later */
void
ca_lr_lot_dates(TimestampTz delivered_at, int32 window_days, int32 expiry_days,
			 TimestampTz *available_at, TimestampTz *expires_at)
{
	*available_at = delivered_at + (TimestampTz) window_days * USECS_PER_DAY;
	*expires_at = *available_at + (TimestampTz) expiry_days * USECS_PER_DAY;
}

/* ------------------------------------------------------------------------
 * readings and debits
 * ------------------------------------------------------------------------
 */
/* not yet available at `at` (undelivered, or inside the return window) */
static inline bool
lot_pending(const LoyaltyLotState *l, TimestampTz at)
{
	return !l->has_available || l->available_at > at;
}

/* past its expiry at `at` */
static inline bool
lot_expired(const LoyaltyLotState *l, TimestampTz at)
{
	return l->has_available && l->expires_at <= at;
}

/*
 * The points at as_of, from the dates alone: a lot earned by as_of is
 * pending until its available date, then available until it expires.
 */
void
ca_lr_reading(const LoyaltyLotState *lots, int n, TimestampTz as_of, LoyaltyReading *r)
{
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < n; i++)
	{
		const LoyaltyLotState *l = &lots[i];

		if (l->remaining <= 0 || l->earned_at > as_of)
			continue;
		if (lot_pending(l, as_of))
			r->pending += l->remaining;
		else if (!lot_expired(l, as_of))
		{
			r->available += l->remaining;
			if (!r->has_expiring || l->expires_at < r->expiring_at)
			{
				r->has_expiring = true;
				r->expiring_at = l->expires_at;
				r->expiring_next = 0;
			}
			if (l->expires_at == r->expiring_at)
				r->expiring_next += l->remaining;
		}
	}
}

typedef struct DebitOrder
{
	int			idx;
	int			klass;			/* 0 pending, 1 available */
	TimestampTz expires_at;
	int64		lot_id;
} DebitOrder;

/* pending before available, then soonest expiry, then lot id */
static int
debit_cmp(const void *a, const void *b)
{
	const DebitOrder *x = a;
	const DebitOrder *y = b;

	if (x->klass != y->klass)
		return x->klass < y->klass ? -1 : 1;
	if (x->expires_at != y->expires_at)
		return x->expires_at < y->expires_at ? -1 : 1;
	if (x->lot_id != y->lot_id)
		return x->lot_id < y->lot_id ? -1 : 1;
	return 0;
}

/*
 * Which lots a debit of `points` at `at` consumes: available lots that
 * expire soonest first; with pending_too, pending lots before them (a
 * reversal cancels what has not yet become available first).  Expired lots
 * are never taken.  take[i] is what lot i gives; returns the total, which
 * is less than points when the lots do not hold enough.
 */
int64
ca_lr_plan_debit(const LoyaltyLotState *lots, int n, int64 points, TimestampTz at, bool pending_too, int64 *take)
{
	DebitOrder *order = palloc(sizeof(DebitOrder) * Max(n, 1));
	int			m = 0;
	int64		taken = 0;

	for (int i = 0; i < n; i++)
	{
		const LoyaltyLotState *l = &lots[i];

		take[i] = 0;
		if (l->remaining <= 0 || l->earned_at > at || lot_expired(l, at))
			continue;
		if (lot_pending(l, at) && !pending_too)
			continue;
		order[m].idx = i;
		order[m].klass = lot_pending(l, at) ? 0 : 1;
		order[m].expires_at = l->has_available ? l->expires_at : DT_NOEND;
		order[m].lot_id = l->lot_id;
		m++;
	}
	qsort(order, m, sizeof(DebitOrder), debit_cmp);
	for (int j = 0; j < m && taken < points; j++)
	{
		int			i = order[j].idx;
		int64		t = Min(lots[i].remaining, points - taken);

		take[i] = t;
		taken += t;
	}
	pfree(order);
	return taken;
}

/* points x point value, rounded down to the minor unit */
int64
ca_lr_points_value(int64 points, Numeric point_value, int minor)
{
	Numeric		v = num_mul(int64_to_numeric(points), point_value);

	v = num_mul(v, int64_to_numeric(ca_pow10_int64(minor)));
	return numeric_floor_int64(v);
}

/*
 * The reactivation credit.  Returns "reactivation_credit" and the credit in
 * minor units when the order earns it, else the code of the condition that
 * failed.
 */
const char *
ca_lr_reactivation(const LoyaltyReactivationRule *r, const ReactivationFacts *f, int64 *credit)
{
	*credit = 0;
	if ((r->has_credit && r->credit_code != f->currency_code) || (r->has_max && r->max_code != f->currency_code))
		return "other_currency";
	if (!f->has_previous)
		return "never_ordered_on_target";
	if (f->placed_at - f->previous_at < (TimestampTz) r->absent_days * USECS_PER_DAY)
		return "absent_too_short";
	if (f->source_purchases < r->min_purchases)
		return "too_few_source_purchases";
	if (f->granted_recently)
		return "already_granted";
	if (r->has_credit)
		*credit = r->credit_units;
	else
	{
		Numeric		v = num_mul(int64_to_numeric(f->total), r->credit_percent);

		*credit = numeric_floor_int64(numeric_div_opt_error(v, int64_to_numeric(100), NULL));
		if (r->has_max && *credit > r->max_units)
			*credit = r->max_units;
	}
	if (*credit <= 0)
		return "no_credit";
	return "reactivation_credit";
}
