/*-------------------------------------------------------------------------
 *
 * loyalty_debit.c
 *	  Debits of the points ledger: redemption into store credit, and the
 *	  reversal of what cancelled orders and returned units earned.  Every
 *	  debit locks the customer's loyalty account (after the account state
 *	  of the currency concerned), picks its lots with the pure rules of
 *	  loyalty_rules.c and writes the lots, the entry, its lot uses and the
 *	  totals in one statement.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "loyalty.h"
#include "loyalty_cache.h"
#include "loyalty_int.h"
#include "money.h"
#include "posting.h"
#include "reason.h"
#include "spi_util.h"

static SPIPlanPtr plan_lock_loyalty;
static SPIPlanPtr plan_order_lots;
static SPIPlanPtr plan_other_lots;
static SPIPlanPtr plan_available_lots;
static SPIPlanPtr plan_debit;
static SPIPlanPtr plan_order_credits;
static SPIPlanPtr plan_credit_back;
static SPIPlanPtr plan_sku_lines;

/* ------------------------------------------------------------------------
 * small helpers
 * ------------------------------------------------------------------------
 */
/* a text parameter, or SQL NULL for a NULL string */
static Datum
text_param(const char *s, char *null_flag)
{
	if (s == NULL)
	{
		*null_flag = 'n';
		return (Datum) 0;
	}
	*null_flag = ' ';
	return CStringGetTextDatum(s);
}

/* ------------------------------------------------------------------------
 * debits: redemption, return and cancellation reversal
 * ------------------------------------------------------------------------
 */
typedef struct Debit
{
	const char *kind;			/* redeem, reverse */
	int64		customer_id;
	int			n;				/* lots touched */
	int64	   *lot_id;
	int64	   *take;
	int32	   *add_qty;		/* returned units recorded on the lot */
	int64	   *add_reversed;	/* points the return or cancellation claims from the lot */
	int64		total;
	int64		unrecovered;
	const char *order_no;
	int32		line_no;		/* 0: none */
	bool		has_amount;
	int64		amount;
	const char *currency;
	const char *channel;
	TimestampTz at;
	const char *reason_code;
	const char *note;
} Debit;

/* an empty debit with room for max lots */
static void
debit_init(Debit *d, const char *kind, int64 customer_id, int max)
{
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	d->customer_id = customer_id;
	d->lot_id = palloc0(sizeof(int64) * Max(max, 1));
	d->take = palloc0(sizeof(int64) * Max(max, 1));
	d->add_qty = palloc0(sizeof(int32) * Max(max, 1));
	d->add_reversed = palloc0(sizeof(int64) * Max(max, 1));
}

/* the debit's slot for a lot, added when new */
static int
debit_slot(Debit *d, int64 lot_id)
{
	for (int i = 0; i < d->n; i++)
		if (d->lot_id[i] == lot_id)
			return i;
	d->lot_id[d->n] = lot_id;
	return d->n++;
}

static Datum
int8_array(const int64 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
int4_array(const int32 *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Int32GetDatum(v[i]);
	return PointerGetDatum(construct_array(d, n, INT4OID, 4, true, TYPALIGN_INT));
}

/* the lots, the entry and its uses, the totals: one statement */
static void
write_debit(const Debit *d)
{
	Oid			types[16] = {INT8OID, TEXTOID, INT8ARRAYOID, INT8ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT8OID,
		INT8OID, TEXTOID, INT4OID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[16];
	char		nulls[16];

	ca_prepare(&plan_debit,
			   "WITH t AS (SELECT * FROM unnest($3, $4, $5, $6) AS t(lot_id, take, add_qty, add_rev)),"
			   " upd AS (UPDATE customer_account.loyalty_lot l SET remaining = l.remaining - t.take,"
			   "   returned_qty = l.returned_qty + t.add_qty, reversed = l.reversed + t.add_rev"
			   "   FROM t WHERE l.lot_id = t.lot_id RETURNING l.lot_id),"
			   " ent AS (INSERT INTO customer_account.loyalty_entry (customer_id, kind, points, amount, order_no,"
			   "   line_no, channel, at, reason_code, unrecovered, note)"
			   "   SELECT $1, $2, -$7, CASE WHEN $11 IS NOT NULL THEN customer_account.currency_amount_from_minor_units($11, $12) END,"
			   "     $9, $10, $13, $14, $15, $8, $16 WHERE $7 > 0 OR $8 > 0 RETURNING entry_id),"
			   " uses AS (INSERT INTO customer_account.loyalty_lot_use (customer_id, entry_id, lot_id, kind, at, points)"
			   "   SELECT $1, ent.entry_id, t.lot_id, $2, $14, -t.take FROM ent, t WHERE t.take > 0)"
			   " UPDATE customer_account.loyalty_account SET points = points - $7,"
			   "   redeemed = redeemed + CASE WHEN $2 = 'redeem' THEN $7 ELSE 0 END,"
			   "   reversed = reversed + CASE WHEN $2 = 'reverse' THEN $7 ELSE 0 END,"
			   "   last_at = CASE WHEN $7 > 0 THEN GREATEST(last_at, $14) ELSE last_at END, updated_at = now()"
			   " WHERE customer_id = $1",
			   16, types);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(d->customer_id);
	values[1] = CStringGetTextDatum(d->kind);
	values[2] = int8_array(d->lot_id, d->n);
	values[3] = int8_array(d->take, d->n);
	values[4] = int4_array(d->add_qty, d->n);
	values[5] = int8_array(d->add_reversed, d->n);
	values[6] = Int64GetDatum(d->total);
	values[7] = Int64GetDatum(d->unrecovered);
	values[8] = text_param(d->order_no, &nulls[8]);
	values[9] = Int32GetDatum(d->line_no);
	nulls[9] = d->line_no > 0 ? ' ' : 'n';
	values[10] = Int64GetDatum(d->amount);
	nulls[10] = d->has_amount ? ' ' : 'n';
	values[11] = text_param(d->currency, &nulls[11]);
	values[12] = text_param(d->channel, &nulls[12]);
	values[13] = TimestampTzGetDatum(d->at);
	values[14] = CStringGetTextDatum(d->reason_code);
	values[15] = text_param(d->note, &nulls[15]);
	ca_execute(plan_debit, values, nulls, false, 0);
}

/* lock the customer's loyalty account; false when the customer never earned */
static bool
lock_loyalty(int64 customer_id)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(customer_id)};
	bool		found;

	ca_prepare(&plan_lock_loyalty,
			   "SELECT 1 FROM customer_account.loyalty_account WHERE customer_id = $1 FOR UPDATE",
			   1, types);
	ca_execute(plan_lock_loyalty, values, NULL, false, 1);
	found = SPI_processed > 0;
	SPI_freetuptable(SPI_tuptable);
	return found;
}

typedef struct OwnLot
{
	LoyaltyLotState st;
	int64		points;
	int32		qty;
	int32		returned_qty;
	int64		reversed;
} OwnLot;

/* the lots of an order (line_no 0: every line), locked */
static OwnLot *
order_lots(const char *order_no, int32 line_no, int *n)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(order_no), Int32GetDatum(line_no)};
	OwnLot	   *lots;

	ca_prepare(&plan_order_lots,
			   "SELECT lot_id, remaining, earned_at, available_at, expires_at, points, qty, returned_qty, reversed"
			   " FROM customer_account.loyalty_lot WHERE order_no = $1 AND ($2 = 0 OR line_no = $2)"
			   " ORDER BY lot_id FOR UPDATE",
			   2, types);
	ca_execute(plan_order_lots, values, NULL, false, 0);
	*n = (int) SPI_processed;
	lots = palloc0(sizeof(OwnLot) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		ca_loyalty_lot_from_spi(i, 1, &lots[i].st);
		lots[i].points = ca_get_int64(i, 6, NULL);
		lots[i].qty = ca_get_int32(i, 7, NULL);
		lots[i].returned_qty = ca_get_int32(i, 8, NULL);
		lots[i].reversed = ca_get_int64(i, 9, NULL);
	}
	SPI_freetuptable(SPI_tuptable);
	return lots;
}

/* the customer's lots holding points other than those given (the ones being reversed), locked */
static LoyaltyLotState *
other_lots(int64 customer_id, const int64 *except, int nexcept, int *n)
{
	Oid			types[2] = {INT8OID, INT8ARRAYOID};
	Datum		values[2] = {Int64GetDatum(customer_id), int8_array(except, nexcept)};
	LoyaltyLotState *lots;

	ca_prepare(&plan_other_lots,
			   "SELECT lot_id, remaining, earned_at, available_at, expires_at FROM customer_account.loyalty_lot"
			   " WHERE customer_id = $1 AND remaining > 0 AND lot_id <> ALL ($2) ORDER BY lot_id FOR UPDATE",
			   2, types);
	ca_execute(plan_other_lots, values, NULL, false, 0);
	*n = (int) SPI_processed;
	lots = palloc0(sizeof(LoyaltyLotState) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		ca_loyalty_lot_from_spi(i, 1, &lots[i]);
	SPI_freetuptable(SPI_tuptable);
	return lots;
}

/*
 * Take back what an order's lines earned: k returned units of one line, or
 * (k = 0) the whole order on cancellation.  Each lot gives what it still
 * holds up to its claim; what its points were already spent on is taken
 * from the customer's other lots, pending first, then the soonest to
 * expire; what even they do not hold is recorded as unrecovered.
 */
static int64
reverse_points(int64 customer_id, const char *order_no, int32 line_no, int32 k, TimestampTz at,
			   const char *reason_code)
{
	OwnLot	   *own;
	int			nown;
	int64		claim = 0;
	int64		taken = 0;
	Debit		d;

	if (!lock_loyalty(customer_id))
		return 0;				/* never earned anything */
	own = order_lots(order_no, line_no, &nown);
	if (nown == 0)
		return 0;
	debit_init(&d, "reverse", customer_id, nown);
	for (int i = 0; i < nown; i++)
	{
		OwnLot	   *l = &own[i];
		int32		units = k > 0 ? Min(k, l->qty - l->returned_qty) : 0;
		int64		want = k > 0 ? ca_lr_return_points(l->points, l->qty, l->returned_qty, l->reversed, units)
			: Max(l->points - l->reversed, 0);
		int64		t = 0;
		int			s;

		if (l->st.remaining > 0 && !(l->st.has_available && l->st.expires_at <= at))
			t = Min(want, l->st.remaining);
		s = debit_slot(&d, l->st.lot_id);
		d.take[s] = t;
		d.add_qty[s] = units;
		d.add_reversed[s] = want;
		claim += want;
		taken += t;
	}
	if (claim > taken)
	{
		int			nother;
		LoyaltyLotState *other = other_lots(customer_id, d.lot_id, d.n, &nother);
		int64	   *take = palloc0(sizeof(int64) * Max(nother, 1));
		int64		more = ca_lr_plan_debit(other, nother, claim - taken, at, true, take);
		Debit		wider;

		/* room for the other lots too */
		debit_init(&wider, "reverse", customer_id, d.n + nother);
		for (int i = 0; i < d.n; i++)
		{
			int			s = debit_slot(&wider, d.lot_id[i]);

			wider.take[s] = d.take[i];
			wider.add_qty[s] = d.add_qty[i];
			wider.add_reversed[s] = d.add_reversed[i];
		}
		for (int i = 0; i < nother; i++)
			if (take[i] > 0)
				wider.take[debit_slot(&wider, other[i].lot_id)] += take[i];
		d = wider;
		taken += more;
	}
	d.total = taken;
	d.unrecovered = claim - taken;
	d.order_no = order_no;
	d.line_no = line_no;
	d.at = at;
	d.reason_code = reason_code;
	write_debit(&d);
	return taken;
}

/* the returns booking: k more units of a line came back (see loyalty.h) */
int64
ca_loyalty_reverse_return(int64 customer_id, const char *order_no, int32 line_no, int32 qty_returned,
						  TimestampTz at)
{
	if (qty_returned <= 0 || line_no <= 0 || !ca_loyalty_policy()->installed)
		return 0;
	return reverse_points(customer_id, order_no, line_no, qty_returned, at, "points_returned");
}

/* the returns booking by SKU: the units spread over the order's lines of that SKU */
int64
ca_loyalty_reverse_return_sku(int64 customer_id, const char *order_no, const char *sku, int32 qty_returned,
							  TimestampTz at)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	int			n;
	int32	   *lines;
	int32	   *left;
	int64		taken = 0;

	if (qty_returned <= 0 || !ca_loyalty_policy()->installed || !lock_loyalty(customer_id))
		return 0;
	ca_prepare(&plan_sku_lines,
			   "SELECT l.line_no, min(l.qty - l.returned_qty)::int FROM customer_account.loyalty_lot l"
			   " JOIN customer_account.order_line o ON o.order_no = l.order_no AND o.line_no = l.line_no"
			   " WHERE l.order_no = $1 AND o.sku = $2 GROUP BY l.line_no ORDER BY l.line_no",
			   2, types);
	values[0] = CStringGetTextDatum(order_no);
	values[1] = CStringGetTextDatum(sku);
	ca_execute(plan_sku_lines, values, NULL, false, 0);
	n = (int) SPI_processed;
	lines = palloc(sizeof(int32) * Max(n, 1));
	left = palloc(sizeof(int32) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		lines[i] = ca_get_int32(i, 1, NULL);
		left[i] = ca_get_int32(i, 2, NULL);
	}
	SPI_freetuptable(SPI_tuptable);
	for (int i = 0; i < n && qty_returned > 0; i++)
	{
		int32		k = Min(left[i], qty_returned);

		if (k <= 0)
			continue;
		taken += reverse_points(customer_id, order_no, lines[i], k, at, "points_returned");
		qty_returned -= k;
	}
	return taken;
}

/* the order's reactivation credits go back, as far as the store credit still holds them */
static void
take_back_credits(int64 customer_id, const char *order_no, const char *currency, TimestampTz at)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(order_no)};
	int			n;
	char	  **rules;
	int64	   *credits;
	char	  **channels;

	ca_prepare(&plan_order_credits,
			   "SELECT rule_code, sum(customer_account.minor_units(amount))::bigint, min(channel)"
			   " FROM customer_account.loyalty_entry WHERE order_no = $1 AND kind = 'credit'"
			   " GROUP BY rule_code HAVING sum(customer_account.minor_units(amount)) > 0 ORDER BY rule_code",
			   1, types);
	ca_execute(plan_order_credits, values, NULL, false, 0);
	n = (int) SPI_processed;
	rules = palloc(sizeof(char *) * Max(n, 1));
	credits = palloc(sizeof(int64) * Max(n, 1));
	channels = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		rules[i] = ca_get_text(i, 1);
		credits[i] = ca_get_int64(i, 2, NULL);
		channels[i] = ca_get_text(i, 3);
	}
	SPI_freetuptable(SPI_tuptable);

	for (int i = 0; i < n; i++)
	{
		StateRow	st;
		int64		back;
		Oid			btypes[8] = {INT8OID, INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, INT8OID};
		Datum		bvalues[8];
		char		bnulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		ca_lock_account(customer_id, currency, &st);
		back = Min(credits[i], Max(st.store_credit, 0));
		if (back > 0)
		{
			LedgerEntry e = {0};

			e.customer_id = customer_id;
			e.currency = currency;
			e.entry_type = "credit";
			e.amount = back;
			e.credit_delta = -back;
			e.event_at = at;
			e.channel = channels[i];
			e.order_no = order_no;
			e.note = psprintf("loyalty: reactivation credit (rule %s) taken back, order cancelled", rules[i]);
			ca_post_entries(&e, 1, NULL);
		}
		ca_prepare(&plan_credit_back,
				   "INSERT INTO customer_account.loyalty_entry (customer_id, kind, points, amount, order_no, rule_code,"
				   "  channel, at, reason_code, unrecovered)"
				   " VALUES ($1, 'credit', 0, customer_account.currency_amount_from_minor_units(-$2, $3), $4, $5, $6, $7,"
				   "  'reactivation_credit_cancelled', $8)",
				   8, btypes);
		bvalues[0] = Int64GetDatum(customer_id);
		bvalues[1] = Int64GetDatum(back);
		bvalues[2] = CStringGetTextDatum(currency);
		bvalues[3] = CStringGetTextDatum(order_no);
		bvalues[4] = CStringGetTextDatum(rules[i]);
		bvalues[5] = text_param(channels[i], &bnulls[5]);
		bvalues[6] = TimestampTzGetDatum(at);
		bvalues[7] = Int64GetDatum(credits[i] - back);
		ca_execute(plan_credit_back, bvalues, bnulls, false, 0);
	}
}

/* end of post_cancel: the points the order earned and its reactivation credit go back */
void
ca_loyalty_order_cancelled(int64 customer_id, const char *order_no, const char *currency,
						   TimestampTz cancelled_at)
{
	if (!ca_loyalty_policy()->installed)
		return;
	ca_loyalty_note_cancelled(order_no);
	reverse_points(customer_id, order_no, 0, 0, cancelled_at, "points_cancelled");
	take_back_credits(customer_id, order_no, currency, cancelled_at);
}

/* ------------------------------------------------------------------------
 * redeem_points(customer_id, points, channel) -> currency_amount
 * ------------------------------------------------------------------------
 */
static LoyaltyLotState *
available_lots(int64 customer_id, TimestampTz at, int *n)
{
	Oid			types[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[2] = {Int64GetDatum(customer_id), TimestampTzGetDatum(at)};
	LoyaltyLotState *lots;

	ca_prepare(&plan_available_lots,
			   "SELECT lot_id, remaining, earned_at, available_at, expires_at FROM customer_account.loyalty_lot"
			   " WHERE customer_id = $1 AND remaining > 0 AND available_at <= $2 AND expires_at > $2"
			   "   AND earned_at <= $2 ORDER BY expires_at, lot_id FOR UPDATE",
			   2, types);
	ca_execute(plan_available_lots, values, NULL, false, 0);
	*n = (int) SPI_processed;
	lots = palloc0(sizeof(LoyaltyLotState) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
		ca_loyalty_lot_from_spi(i, 1, &lots[i]);
	SPI_freetuptable(SPI_tuptable);
	return lots;
}

/* store credit through the posting core */
static void
book_store_credit(int64 customer_id, const char *currency, const LoyaltyChannel *ch, int64 credit,
				  TimestampTz at, const char *note)
{
	LedgerEntry e = {0};

	e.customer_id = customer_id;
	e.currency = currency;
	e.entry_type = "credit";
	e.amount = -credit;
	e.credit_delta = credit;
	e.event_at = at;
	e.channel = ch->code;
	e.channel_kind = ca_channel_kind_names[ch->kind];
	e.note = note;
	ca_post_entries(&e, 1, NULL);
}

/*
 * redeem_points(customer_id bigint, points bigint, channel text) -> currency_amount:
 * available points, soonest expiry first, into store credit in the channel's
 * currency, rounded down; refusals change nothing.
 */
PG_FUNCTION_INFO_V1(redeem_points);
Datum
redeem_points(PG_FUNCTION_ARGS)
{
	int64		customer_id = PG_GETARG_INT64(0);
	int64		points = PG_GETARG_INT64(1);
	char	   *channel = text_to_cstring(PG_GETARG_TEXT_PP(2));
	TimestampTz at = GetCurrentTransactionStartTimestamp();
	const LoyaltyPolicy *p;
	const LoyaltyChannel *ch;
	const LoyaltyTerms *t;
	char	   *language;
	StateRow	st;
	LoyaltyLotState *lots;
	int			n;
	int64	   *take;
	int64		have;
	int64		credit;
	Debit		d;
	CurrencyAmount *result;

	if (points <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot redeem " INT64_FORMAT " points; redeem a positive number of points", points)));
	p = ca_loyalty_policy();
	ca_connect();
	language = ca_loyalty_known_customer(customer_id, GetLatestSnapshot());
	ch = ca_loyalty_channel(channel);
	t = ca_lr_terms(p, ch->currency);
	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CA_REFUSED),
				 errmsg("points cannot be redeemed on channel \"%s\": %s has no loyalty terms: no_loyalty_terms",
						channel, ch->currency),
				 errdetail("%s", ca_reason_text("no_loyalty_terms", language)),
				 errhint("Set them with customer_account.set_loyalty_terms().")));

	/* the account state of the currency first, then the loyalty account: no overspending */
	ca_lock_account(customer_id, ch->currency, &st);
	(void) lock_loyalty(customer_id);
	lots = available_lots(customer_id, at, &n);
	take = palloc0(sizeof(int64) * Max(n, 1));
	have = ca_lr_plan_debit(lots, n, PG_INT64_MAX, at, false, take);
	if (have < points)
		ereport(ERROR,
				(errcode(ERRCODE_CA_REFUSED),
				 errmsg("customer " INT64_FORMAT " has " INT64_FORMAT " points available, cannot redeem " INT64_FORMAT
						": insufficient_points", customer_id, have, points),
				 errdetail("%s", ca_reason_text("insufficient_points", language))));
	credit = ca_lr_points_value(points, t->point_value, t->minor);
	if (credit <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(INT64_FORMAT " points are worth less than the smallest amount in %s", points, ch->currency),
				 errhint("Redeem more points at once.")));

	(void) ca_lr_plan_debit(lots, n, points, at, false, take);
	debit_init(&d, "redeem", customer_id, n);
	for (int i = 0; i < n; i++)
		if (take[i] > 0)
			d.take[debit_slot(&d, lots[i].lot_id)] = take[i];
	d.total = points;
	d.has_amount = true;
	d.amount = credit;
	d.currency = ch->currency;
	d.channel = ch->code;
	d.at = at;
	d.reason_code = "points_redeemed";
	write_debit(&d);
	book_store_credit(customer_id, ch->currency, ch, credit, at,
					  psprintf("loyalty: " INT64_FORMAT " points redeemed", points));
	ca_finish();

	result = ca_make_currency_amount(credit, ca_currency_pack(ch->currency, 3));
	PG_RETURN_CURRENCY_AMOUNT_P(result);
}

/* the returns hook as SQL: the order checked, its account locked, then the hook */
static int64
reverse_return_sql(int64 customer_id, const char *order_no, int32 line_no, const char *sku, int32 qty,
				   TimestampTz at)
{
	int64		taken;
	int64		order_customer;
	CurrencyAmount total;
	TransactionId xmin;
	StateRow	st;
	char		currency[4];

	ca_connect();
	if (!ca_read_order(order_no, GetLatestSnapshot(), &order_customer, &total, &xmin))
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown order \"%s\"", order_no)));
	if (order_customer != customer_id)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("order \"%s\" belongs to customer " INT64_FORMAT, order_no, order_customer)));
	if (qty <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("returned quantity %d must be positive", qty)));
	ca_currency_unpack(total.code, currency);
	ca_lock_account(customer_id, currency, &st);
	if (sku != NULL)
		taken = ca_loyalty_reverse_return_sku(customer_id, order_no, sku, qty, at);
	else
		taken = ca_loyalty_reverse_return(customer_id, order_no, line_no, qty, at);
	ca_finish();
	return taken;
}

/*
 * loyalty_reverse_return(customer_id, order_no, line_no, qty, at) and
 * loyalty_reverse_return_sku(customer_id, order_no, sku, qty, at): the
 * returns booking's hooks as SQL, for tests; not granted to anyone.
 */
PG_FUNCTION_INFO_V1(loyalty_reverse_return_sql);
Datum
loyalty_reverse_return_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(reverse_return_sql(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
									   PG_GETARG_INT32(2), NULL, PG_GETARG_INT32(3), PG_GETARG_TIMESTAMPTZ(4)));
}

PG_FUNCTION_INFO_V1(loyalty_reverse_return_sku_sql);
Datum
loyalty_reverse_return_sku_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(reverse_return_sql(PG_GETARG_INT64(0), text_to_cstring(PG_GETARG_TEXT_PP(1)), 0,
									   text_to_cstring(PG_GETARG_TEXT_PP(2)), PG_GETARG_INT32(3),
									   PG_GETARG_TIMESTAMPTZ(4)));
}
