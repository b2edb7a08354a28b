/*-------------------------------------------------------------------------
 *
 * dunning.c
 *	  dunning_run(as_of date): one notice per customer and currency (not
 *	  per invoice), one level per run, each level's fee booked once per
 *	  dunning cycle, every notice written to the outbox and announced with
 *	  NOTIFY.  A run is idempotent for its date (a second call returns the
 *	  first call's notices) and cannot run for a date before the last run.
 *
 *	  The run never waits for a till.  It decides first, reading without
 *	  locks; then, in one short phase at the end, it locks only the account
 *	  rows it is going to change, in (customer_id, currency) order and with
 *	  SKIP LOCKED, decides those again from what is committed now, and
 *	  writes.  An account a till holds at that moment is skipped (a NOTICE
 *	  names it) and picked up by the next run; a till selling to a customer
 *	  the run does not change never waits for the run.
 *
 *	  Dates are UTC days: an item is overdue on as_of when it fell due
 *	  before as_of 00:00 UTC, and its days overdue count from there, so the
 *	  answer for a date does not depend on the session's TimeZone.
 *
 *	  The steps, each one set-wise over every account concerned:
 *	    1. one read of the books (a sequential scan each of open_item,
 *	       account_state and customer, in C; the query it answers is
 *	       written out below): who gets a notice, who leaves dunning; the
 *	       row versions (ctid) are kept
 *	    2. the lock, by those row versions; an account whose row changed
 *	       since 1 is looked up again by key
 *	    3. only when something committed between 1 and 2 (the snapshots
 *	       differ): the locked accounts read again and decided again
 *	    4. the writes: levels reset, notices, new levels (by ctid: the rows
 *	       are ours), the outbox from the notices just written, the fees
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "dunning_rules.h"
#include "input.h"
#include "money.h"
#include "posting.h"
#include "table_scan.h"
#include "spi_util.h"

#define MAX_STEPS 16
/* skipped accounts named in the NOTICE's detail */
#define MAX_NAMED_SKIPS 10
/* minor-unit digits the fee cache keeps (ISO 4217 has 0 to 4) */
#define MAX_MINOR 18
/* up to this many accounts to read again, one index lookup each; more: one scan */
#define REREAD_BY_INDEX 1000

/* the ladder, as read at the start of the run */
typedef struct Ladder
{
	DunningStep steps[MAX_STEPS];
	char	   *actions[MAX_STEPS];
	char	   *fee_major[MAX_STEPS];
	int			nsteps;
	/* each step's fee in minor units of a currency, computed once */
	int64		fee[MAX_STEPS][MAX_MINOR + 1];
	bool		fee_known[MAX_STEPS][MAX_MINOR + 1];
} Ladder;

/* an account as a read of the books found it */
typedef struct Cand
{
	int64		customer_id;
	char	   *currency;
	bool		has_overdue;	/* undisputed receivables due before as_of */
	int64		overdue;
	TimestampTz oldest;
	int32		level;
	bool		has_last;
	int32		last_day;
	int32		cycle;
	bool		has_customer;
	char	   *group;
	ItemPointerData tid;		/* the account_state row version read */
} Cand;

/* one notice the run decided to send */
typedef struct Decision
{
	int64		customer_id;
	char	   *currency;
	int32		level;
	int32		cycle;
	int64		overdue;
	int64		fee;
	char	   *action;
	ItemPointerData tid;		/* the locked account_state row */
} Decision;

/* (customer_id, currency) pairs, as arrays for unnest(), with their row versions */
typedef struct KeyList
{
	int			n;
	int			cap;
	int64	   *customer_id;
	char	  **currency;
	ItemPointerData *tid;
	int32	   *level;			/* dunning_level of the locked row */
} KeyList;

/* what a snapshot sees: equal signatures see the same committed transactions */
typedef struct SnapSig
{
	TransactionId xmin;
	TransactionId xmax;
	uint32		xcnt;
	int32		subxcnt;
	bool		suboverflowed;
	TransactionId *xip;
	TransactionId *subxip;
} SnapSig;

/*
 * Every account with something overdue (the undisputed receivables due
 * before as_of 00:00 UTC, $1, summed per customer and currency) and every
 * account in dunning, with its state and customer group, in key order.
 * Read without locks.  read_accounts_to_decide() computes exactly this,
 * with a sequential scan of each table:
 *
 *   SELECT x.customer_id, x.currency, x.overdue, x.oldest, x.dunning_level, x.dunned_at,
 *          x.dunning_cycle, c.customer_group, c.customer_id IS NOT NULL, x.ctid
 *   FROM (SELECT s.customer_id, s.currency, i.overdue, i.oldest, s.dunning_level, s.dunned_at,
 *                s.dunning_cycle, s.ctid
 *         FROM customer_account.account_state s
 *         LEFT JOIN (SELECT customer_id, currency, sum(open)::bigint AS overdue, min(due_at) AS oldest
 *                    FROM customer_account.open_item
 *                    WHERE settled_at IS NULL AND NOT disputed AND kind <> 'prepayment'
 *                      AND due_at < $1 GROUP BY customer_id, currency) i
 *           ON i.customer_id = s.customer_id AND i.currency = s.currency
 *         WHERE i.overdue IS NOT NULL OR s.dunning_level > 0) x
 *   LEFT JOIN customer_account.customer c ON c.customer_id = x.customer_id
 *   ORDER BY x.customer_id, x.currency
 *
 * An account with something overdue and a customer row is a candidate for
 * a notice; one in dunning with nothing overdue leaves dunning.
 */

/* the same for the accounts named in $2, $3 (read again after locking them), few of them */
#define CANDIDATES_OF_KEYS \
	"SELECT k.c, k.cur, i.overdue, i.oldest, s.dunning_level," \
	"  s.dunned_at, s.dunning_cycle, c.customer_group, true, s.ctid" \
	" FROM unnest($2::bigint[], $3::text[]) AS k(c, cur)" \
	" JOIN customer_account.account_state s ON s.customer_id = k.c AND s.currency = k.cur" \
	" JOIN customer_account.customer c ON c.customer_id = k.c" \
	" CROSS JOIN LATERAL (SELECT sum(o.open)::bigint AS overdue, min(o.due_at) AS oldest" \
	"       FROM customer_account.open_item o" \
	"       WHERE o.customer_id = k.c AND o.currency = k.cur AND o.settled_at IS NULL" \
	"         AND NOT o.disputed AND o.kind <> 'prepayment' AND o.due_at < $1) i" \
	" WHERE i.overdue IS NOT NULL" \
	" ORDER BY k.c, k.cur"

/* ... and many of them: the overdue sums of one scan, joined */
#define CANDIDATES_OF_MANY_KEYS \
	"SELECT k.c, k.cur, i.overdue, i.oldest, s.dunning_level," \
	"  s.dunned_at, s.dunning_cycle, c.customer_group, true, s.ctid" \
	" FROM unnest($2::bigint[], $3::text[]) AS k(c, cur)" \
	" JOIN customer_account.account_state s ON s.customer_id = k.c AND s.currency = k.cur" \
	" JOIN customer_account.customer c ON c.customer_id = k.c" \
	" JOIN (SELECT customer_id, currency, sum(open)::bigint AS overdue, min(due_at) AS oldest" \
	"       FROM customer_account.open_item" \
	"       WHERE settled_at IS NULL AND NOT disputed AND kind <> 'prepayment'" \
	"         AND due_at < $1 GROUP BY customer_id, currency) i" \
	"   ON i.customer_id = k.c AND i.currency = k.cur" \
	" ORDER BY k.c, k.cur"

/* nothing overdue any more (as of $1): the account leaves dunning */
/* the end of a dunning cycle: CA_NOTHING_OVERDUE (posting.h), at the run date */

/* a tid datum (pass by reference) and back */
static inline ItemPointer
tid_of_datum(Datum d)
{
	return (ItemPointer) DatumGetPointer(d);
}

static inline Datum
datum_of_tid(ItemPointer tid)
{
	return PointerGetDatum(tid);
}

static void
put_notice_row(ReturnSetInfo *rsinfo, int64 customer_id, const char *currency, int32 level,
			   int64 overdue, int64 fee, const char *action)
{
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	int32		code = ca_currency_pack(currency, 3);

	values[0] = Int64GetDatum(customer_id);
	values[1] = CStringGetTextDatum(currency);
	values[2] = Int32GetDatum(level);
	values[3] = CurrencyAmountPGetDatum(ca_make_currency_amount(overdue, code));
	values[4] = CurrencyAmountPGetDatum(ca_make_currency_amount(fee, code));
	values[5] = CStringGetTextDatum(action);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* the notices of an earlier run of the same date, unchanged */
static void
replay_run(ReturnSetInfo *rsinfo, DateADT as_of)
{
	Oid			types[1] = {DATEOID};
	Datum		values[1] = {DateADTGetDatum(as_of)};

	if (SPI_execute_with_args("SELECT customer_id, currency, level, overdue_amount, fee, action"
							  " FROM customer_account.dunning_notice WHERE run_date = $1 AND merged_from IS NULL"
							  " ORDER BY customer_id, currency", 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read dunning notices");
	for (uint64 i = 0; i < SPI_processed; i++)
		put_notice_row(rsinfo, ca_get_int64(i, 1, NULL), ca_get_text(i, 2), ca_get_int32(i, 3, NULL),
					   ca_get_int64(i, 4, NULL), ca_get_int64(i, 5, NULL), ca_get_text(i, 6));
}

static char *
date_text(DateADT d)
{
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
}

static void
keys_add(KeyList *k, int64 customer_id, char *currency, ItemPointer tid, int32 level)
{
	if (k->n == k->cap)
	{
		k->cap = Max(16, k->cap * 2);
		k->customer_id = k->customer_id ? repalloc(k->customer_id, sizeof(int64) * k->cap)
			: palloc(sizeof(int64) * k->cap);
		k->currency = k->currency ? repalloc(k->currency, sizeof(char *) * k->cap)
			: palloc(sizeof(char *) * k->cap);
		k->tid = k->tid ? repalloc(k->tid, sizeof(ItemPointerData) * k->cap)
			: palloc(sizeof(ItemPointerData) * k->cap);
		k->level = k->level ? repalloc(k->level, sizeof(int32) * k->cap)
			: palloc(sizeof(int32) * k->cap);
	}
	k->customer_id[k->n] = customer_id;
	k->currency[k->n] = currency;
	if (tid)
		ItemPointerCopy(tid, &k->tid[k->n]);
	else
		ItemPointerSetInvalid(&k->tid[k->n]);
	k->level[k->n] = level;
	k->n++;
}

/* the keys as a bigint[] and a text[] argument */
static void
keys_args(const KeyList *k, Datum *ids, Datum *currencies)
{
	Datum	   *a = palloc(sizeof(Datum) * Max(k->n, 1));
	Datum	   *b = palloc(sizeof(Datum) * Max(k->n, 1));

	for (int i = 0; i < k->n; i++)
	{
		a[i] = Int64GetDatum(k->customer_id[i]);
		b[i] = CStringGetTextDatum(k->currency[i]);
	}
	*ids = PointerGetDatum(construct_array(a, k->n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	*currencies = PointerGetDatum(construct_array(b, k->n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* (customer_id, currency) order, the currency compared bytewise (COLLATE "C") */
static int
key_cmp(int64 ca, const char *ra, int64 cb, const char *rb)
{
	if (ca != cb)
		return ca < cb ? -1 : 1;
	return strcmp(ra, rb);
}

static int
key_index_cmp(const void *a, const void *b, void *arg)
{
	const KeyList *k = (const KeyList *) arg;
	int			i = *(const int *) a;
	int			j = *(const int *) b;

	return key_cmp(k->customer_id[i], k->currency[i], k->customer_id[j], k->currency[j]);
}

/* the position of a key in a list sorted by key, or -1 */
static int
keys_find(const KeyList *k, int64 customer_id, const char *currency)
{
	int			lo = 0,
				hi = k->n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = key_cmp(k->customer_id[mid], k->currency[mid], customer_id, currency);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/* a dunning fee of the ladder in minor units of a currency, half to even like every amount */
static int64
fee_units(const char *fee_major, int32 minor)
{
	Datum		fee = DirectFunctionCall3(numeric_in, CStringGetDatum(fee_major),
										  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	Datum		scaled = DirectFunctionCall2(numeric_mul, fee,
											 NumericGetDatum(int64_to_numeric(ca_pow10_int64(minor))));

	return ca_numeric_round_half_even(DatumGetNumeric(scaled), "dunning fee");
}

static int64
step_fee(Ladder *ladder, int st, int32 minor)
{
	if (minor < 0 || minor > MAX_MINOR)
		return fee_units(ladder->fee_major[st], minor);
	if (!ladder->fee_known[st][minor])
	{
		ladder->fee[st][minor] = fee_units(ladder->fee_major[st], minor);
		ladder->fee_known[st][minor] = true;
	}
	return ladder->fee[st][minor];
}

/* the rows of SPI_tuptable (the columns of CANDIDATES_OF_KEYS) */
static Cand *
read_cands(int *ncand)
{
	int			n = (int) SPI_processed;
	Cand	   *c = palloc(sizeof(Cand) * Max(n, 1));

	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d;

		c[i].customer_id = ca_get_int64(i, 1, NULL);
		c[i].currency = ca_get_text(i, 2);
		c[i].overdue = ca_get_int64(i, 3, &isnull);
		c[i].has_overdue = !isnull;
		c[i].oldest = ca_get_timestamptz(i, 4, NULL);
		c[i].level = ca_get_int32(i, 5, NULL);
		d = ca_get_datum(i, 6, &isnull);
		c[i].has_last = !isnull;
		c[i].last_day = isnull ? 0 : (int32) DatumGetDateADT(d);
		c[i].cycle = ca_get_int32(i, 7, NULL);
		c[i].group = ca_get_text(i, 8);
		c[i].has_customer = ca_get_bool(i, 9, NULL);
		d = ca_get_datum(i, 10, &isnull);
		if (isnull)
			ItemPointerSetInvalid(&c[i].tid);
		else
			ItemPointerCopy(tid_of_datum(d), &c[i].tid);
	}
	*ncand = n;
	return c;
}

/*
 * The ladder decides, in C, for every account with something overdue and
 * a customer row; returns the notices to send, in the candidates' order.
 */
static Decision *
decide(Ladder *ladder, const Cand *cands, int ncand, DateADT as_of, TimestampTz as_of_ts, int *ndecided)
{
	Decision   *out = palloc(sizeof(Decision) * Max(ncand, 1));
	int			n = 0;

	for (int i = 0; i < ncand; i++)
	{
		const Cand *c = &cands[i];
		int32		level;
		int32		minor;
		int64		tolerance;
		const CreditPolicyConf *pol;

		if (!c->has_overdue || !c->has_customer)
			continue;
		minor = ca_currency_minor_units(ca_currency_pack(c->currency, 3));
		pol = ca_credit_policy(-1, c->group, c->currency);
		tolerance = ca_conf_to_units(pol->overdue_tolerance, minor);
		level = ca_dunning_next_level(c->level, c->last_day, c->has_last, (int32) as_of,
								   ca_days_between(as_of_ts, c->oldest, "days overdue"), c->overdue, tolerance,
								   ladder->steps, ladder->nsteps);
		if (level <= 0)
			continue;
		out[n].fee = 0;
		out[n].action = NULL;
		for (int st = 0; st < ladder->nsteps; st++)
			if (ladder->steps[st].level == level)
			{
				out[n].fee = step_fee(ladder, st, minor);
				out[n].action = ladder->actions[st];
			}
		out[n].customer_id = c->customer_id;
		out[n].currency = c->currency;
		out[n].level = level;
		out[n].cycle = c->cycle;
		out[n].overdue = c->overdue;
		out[n].tid = c->tid;
		n++;
	}
	*ndecided = n;
	return out;
}

/* the locked rows of SPI_tuptable (customer_id, currency, dunning_level, ctid) added to a list */
static void
add_locked(KeyList *locked)
{
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Datum		d = ca_get_datum(i, 4, &isnull);

		keys_add(locked, ca_get_int64(i, 1, NULL), ca_get_text(i, 2), tid_of_datum(d),
				 ca_get_int32(i, 3, NULL));
	}
}

/* a key list sorted by key */
static void
keys_sort(KeyList *k)
{
	int		   *order;
	KeyList		sorted = {0};

	if (k->n < 2)
		return;
	order = palloc(sizeof(int) * k->n);
	for (int i = 0; i < k->n; i++)
		order[i] = i;
	qsort_arg(order, k->n, sizeof(int), key_index_cmp, k);
	for (int i = 0; i < k->n; i++)
		keys_add(&sorted, k->customer_id[order[i]], k->currency[order[i]], &k->tid[order[i]], k->level[order[i]]);
	*k = sorted;
}

/*
 * Lock the wanted account rows in (customer_id, currency) order, skipping
 * those another transaction holds; returns the locked ones, sorted by key,
 * with their dunning levels and row versions, and raises a NOTICE naming
 * the skipped ones.  The rows are found by the versions the run read (a
 * TID scan); a row whose version is gone (updated and committed since) is
 * looked for again by key.
 */
static KeyList
lock_accounts(KeyList *wanted, DateADT as_of)
{
	KeyList		locked = {0};
	KeyList		again = {0};
	int		   *order;
	int			skipped = 0;
	StringInfoData names;
	int			j = 0;

	if (wanted->n == 0)
		return locked;
	{
		Oid			types[1] = {TIDARRAYOID};
		Datum		args[1];
		Datum	   *tids = palloc(sizeof(Datum) * wanted->n);

		for (int i = 0; i < wanted->n; i++)
			tids[i] = datum_of_tid(&wanted->tid[i]);
		args[0] = PointerGetDatum(construct_array(tids, wanted->n, TIDOID, sizeof(ItemPointerData), false,
												  TYPALIGN_SHORT));
		if (SPI_execute_with_args("SELECT s.customer_id, s.currency, s.dunning_level, s.ctid"
								  " FROM customer_account.account_state s WHERE s.ctid = ANY ($1)"
								  " ORDER BY s.customer_id, s.currency FOR UPDATE OF s SKIP LOCKED",
								  1, types, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the accounts to dun");
		add_locked(&locked);
	}

	/* the wanted ones in key order, beside the locked ones */
	order = palloc(sizeof(int) * wanted->n);
	for (int i = 0; i < wanted->n; i++)
		order[i] = i;
	qsort_arg(order, wanted->n, sizeof(int), key_index_cmp, wanted);
	for (int i = 0; i < wanted->n; i++)
	{
		int64		id = wanted->customer_id[order[i]];
		const char *cur = wanted->currency[order[i]];

		if (i > 0 && key_cmp(wanted->customer_id[order[i - 1]], wanted->currency[order[i - 1]], id, cur) == 0)
			continue;			/* named twice */
		while (j < locked.n && key_cmp(locked.customer_id[j], locked.currency[j], id, cur) < 0)
			j++;
		if (j < locked.n && key_cmp(locked.customer_id[j], locked.currency[j], id, cur) == 0)
			continue;
		keys_add(&again, id, (char *) cur, NULL, 0);
	}
	if (again.n > 0)
	{
		Oid			types[2] = {INT8ARRAYOID, TEXTARRAYOID};
		Datum		args[2];

		keys_args(&again, &args[0], &args[1]);
		if (SPI_execute_with_args("SELECT s.customer_id, s.currency, s.dunning_level, s.ctid"
								  " FROM customer_account.account_state s"
								  " JOIN unnest($1, $2) AS k(c, cur) ON s.customer_id = k.c AND s.currency = k.cur"
								  " ORDER BY s.customer_id, s.currency FOR UPDATE OF s SKIP LOCKED",
								  2, types, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock the accounts to dun");
		if (SPI_processed > 0)
		{
			add_locked(&locked);
			keys_sort(&locked);
		}
	}

	/* which were skipped: both lists in key order, compared side by side */
	initStringInfo(&names);
	j = 0;
	for (int i = 0; i < again.n; i++)
	{
		int64		id = again.customer_id[i];
		const char *cur = again.currency[i];

		while (j < locked.n && key_cmp(locked.customer_id[j], locked.currency[j], id, cur) < 0)
			j++;
		if (j < locked.n && key_cmp(locked.customer_id[j], locked.currency[j], id, cur) == 0)
			continue;
		if (skipped < MAX_NAMED_SKIPS)
			appendStringInfo(&names, "%scustomer " INT64_FORMAT " in %s", skipped > 0 ? ", " : "", id, cur);
		else if (skipped == MAX_NAMED_SKIPS)
			appendStringInfoString(&names, ", ...");
		skipped++;
	}
	if (skipped > 0)
		ereport(NOTICE,
				(errmsg("dunning run for %s skipped %d account(s) held by another transaction", date_text(as_of),
						skipped),
				 errdetail("Skipped: %s.", names.data),
				 errhint("The next run picks them up.")));
	return locked;
}

static int
xid_cmp(const void *a, const void *b)
{
	TransactionId x = *(const TransactionId *) a;
	TransactionId y = *(const TransactionId *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* the transactions a snapshot sees as completed, in a form to compare */
static void
snap_sig(Snapshot snap, SnapSig *sig)
{
	sig->xmin = snap->xmin;
	sig->xmax = snap->xmax;
	sig->xcnt = snap->xcnt;
	sig->subxcnt = snap->subxcnt;
	sig->suboverflowed = snap->suboverflowed;
	sig->xip = palloc(sizeof(TransactionId) * Max(snap->xcnt, 1));
	sig->subxip = palloc(sizeof(TransactionId) * Max(snap->subxcnt, 1));
	memcpy(sig->xip, snap->xip, sizeof(TransactionId) * snap->xcnt);
	memcpy(sig->subxip, snap->subxip, sizeof(TransactionId) * Max(snap->subxcnt, 0));
	qsort(sig->xip, sig->xcnt, sizeof(TransactionId), xid_cmp);
	if (sig->subxcnt > 0)
		qsort(sig->subxip, sig->subxcnt, sizeof(TransactionId), xid_cmp);
}

/*
 * Did anything commit (or end) between the two snapshots?  Snapshots taken
 * at two moments see the same data when no transaction ended in between;
 * then neither did any between them.
 */
static bool
snap_sig_equal(const SnapSig *a, const SnapSig *b)
{
	return a->xmin == b->xmin && a->xmax == b->xmax && a->xcnt == b->xcnt && a->subxcnt == b->subxcnt
		&& a->suboverflowed == b->suboverflowed
		&& memcmp(a->xip, b->xip, sizeof(TransactionId) * a->xcnt) == 0
		&& (a->subxcnt <= 0 || memcmp(a->subxip, b->subxip, sizeof(TransactionId) * a->subxcnt) == 0);
}

/* text of an amount in minor units, as currency_amount_from_minor_units(units, currency)::text */
static Datum
amount_text(int64 units, const char *currency)
{
	return CStringGetTextDatum(ca_currency_amount_to_cstring(ca_make_currency_amount(units,
																			   ca_currency_lookup_or_error(currency, strlen(currency)))));
}

/* ------------------------------------------------------------------------
 * Phase 1 in C: the accounts to decide (the query above), read with one
 * sequential scan of open_item, account_state and customer each.
 * ------------------------------------------------------------------------
 */

/* the overdue sum of one (customer, currency) */
typedef struct OverdueKey
{
	int64		customer_id;
	int32		cur;			/* interned currency */
} OverdueKey;

typedef struct OverdueEnt
{
	OverdueKey	key;
	int64		overdue;
	TimestampTz oldest;
	char		status;
} OverdueEnt;

static inline uint32
overdue_key_hash(OverdueKey k)
{
	uint64		h = (uint64) k.customer_id * UINT64CONST(0x9E3779B97F4A7C15) + (uint64) k.cur;

	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	return (uint32) h;
}

#define SH_PREFIX overdue
#define SH_ELEMENT_TYPE OverdueEnt
#define SH_KEY_TYPE OverdueKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) overdue_key_hash(k)
#define SH_EQUAL(tb, a, b) ((a).customer_id == (b).customer_id && (a).cur == (b).cur)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* currencies seen, bytewise */
typedef struct CurTable
{
	char	  **text;
	int		   *len;
	int			n;
	int			cap;
	int			last;
} CurTable;

static int
cur_intern(CurTable *t, const char *s, int len)
{
	if (t->last >= 0 && t->len[t->last] == len && memcmp(t->text[t->last], s, len) == 0)
		return t->last;
	for (int i = 0; i < t->n; i++)
		if (t->len[i] == len && memcmp(t->text[i], s, len) == 0)
			return t->last = i;
	if (t->n == t->cap)
	{
		t->cap = Max(8, t->cap * 2);
		t->text = t->text ? repalloc(t->text, sizeof(char *) * t->cap) : palloc(sizeof(char *) * t->cap);
		t->len = t->len ? repalloc(t->len, sizeof(int) * t->cap) : palloc(sizeof(int) * t->cap);
	}
	t->text[t->n] = pnstrdup(s, len);
	t->len[t->n] = len;
	return t->last = t->n++;
}

static int
cur_of_datum(CurTable *t, Datum d)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

	return cur_intern(t, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
}

static bool
text_datum_is(Datum d, const char *s)
{
	struct varlena *v = pg_detoast_datum_packed((struct varlena *) DatumGetPointer(d));

	return VARSIZE_ANY_EXHDR(v) == strlen(s) && memcmp(VARDATA_ANY(v), s, strlen(s)) == 0;
}

/* a table of the extension's schema for a scan under snap */
static inline void
scan_open(CaTableScan *t, const char *name, Snapshot snap)
{
	ca_scan_begin(t, get_namespace_oid("customer_account", false), name, snap, false);
}

static int
cand_cmp(const void *a, const void *b)
{
	const Cand *x = (const Cand *) a;
	const Cand *y = (const Cand *) b;

	return key_cmp(x->customer_id, x->currency, y->customer_id, y->currency);
}

/*
 * Every account with something overdue and every account in dunning, as
 * the query above returns them, read with the snapshot given.
 */
static Cand *
read_accounts_to_decide(Snapshot snap, TimestampTz as_of_ts, int *ncand)
{
	CaTableScan	t;
	CurTable	curs = {NULL, NULL, 0, 0, -1};
	overdue_hash *overdue = overdue_create(CurrentMemoryContext, 1024, NULL);
	Cand	   *c;
	int			n = 0;
	int			cap = 1024;

	/* the undisputed receivables due before as_of, summed per account */
	{
		AttrNumber	c_id,
					c_cur,
					c_kind,
					c_open,
					c_due,
					c_settled,
					c_disputed;

		scan_open(&t, "open_item", snap);
		c_id = ca_scan_col(&t, "customer_id", INT8OID);
		c_cur = ca_scan_col(&t, "currency", TEXTOID);
		c_kind = ca_scan_col(&t, "kind", TEXTOID);
		c_open = ca_scan_col(&t, "open", INT8OID);
		c_due = ca_scan_col(&t, "due_at", TIMESTAMPTZOID);
		c_settled = ca_scan_col(&t, "settled_at", TIMESTAMPTZOID);
		c_disputed = ca_scan_col(&t, "disputed", BOOLOID);
		while (ca_scan_next(&t))
		{
			OverdueKey	key;
			OverdueEnt *e;
			bool		found;
			TimestampTz due;

			if (!CA_NUL(&t, c_settled) || CA_NUL(&t, c_disputed) || DatumGetBool(CA_COL(&t, c_disputed))
				|| text_datum_is(CA_COL(&t, c_kind), "prepayment"))
				continue;
			due = DatumGetTimestampTz(CA_COL(&t, c_due));
			if (!(due < as_of_ts))
				continue;
			key.customer_id = DatumGetInt64(CA_COL(&t, c_id));
			key.cur = cur_of_datum(&curs, CA_COL(&t, c_cur));
			e = overdue_insert(overdue, key, &found);
			if (!found)
			{
				e->overdue = 0;
				e->oldest = due;
			}
			if (pg_add_s64_overflow(e->overdue, DatumGetInt64(CA_COL(&t, c_open)), &e->overdue))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("bigint out of range")));
			if (due < e->oldest)
				e->oldest = due;
		}
		ca_scan_end(&t);
	}

	/* the account states with something overdue or in dunning */
	c = palloc(sizeof(Cand) * cap);
	{
		AttrNumber	c_id,
					c_cur,
					c_level,
					c_dunned,
					c_cycle;

		scan_open(&t, "account_state", snap);
		c_id = ca_scan_col(&t, "customer_id", INT8OID);
		c_cur = ca_scan_col(&t, "currency", TEXTOID);
		c_level = ca_scan_col(&t, "dunning_level", INT4OID);
		c_dunned = ca_scan_col(&t, "dunned_at", DATEOID);
		c_cycle = ca_scan_col(&t, "dunning_cycle", INT4OID);
		while (ca_scan_next(&t))
		{
			OverdueKey	key;
			OverdueEnt *e;
			int32		level = CA_NUL(&t, c_level) ? 0 : DatumGetInt32(CA_COL(&t, c_level));
			Cand	   *x;

			key.customer_id = DatumGetInt64(CA_COL(&t, c_id));
			key.cur = cur_of_datum(&curs, CA_COL(&t, c_cur));
			e = overdue_lookup(overdue, key);
			if (e == NULL && !(level > 0))
				continue;
			if (n == cap)
			{
				cap *= 2;
				c = repalloc_huge(c, sizeof(Cand) * cap);
			}
			x = &c[n++];
			x->customer_id = key.customer_id;
			x->currency = curs.text[key.cur];
			x->has_overdue = e != NULL;
			x->overdue = e ? e->overdue : 0;
			x->oldest = e ? e->oldest : 0;
			x->level = level;
			x->has_last = !CA_NUL(&t, c_dunned);
			x->last_day = x->has_last ? (int32) DatumGetDateADT(CA_COL(&t, c_dunned)) : 0;
			x->cycle = CA_NUL(&t, c_cycle) ? 0 : DatumGetInt32(CA_COL(&t, c_cycle));
			x->has_customer = false;
			x->group = NULL;
			ItemPointerCopy(&t.slot->tts_tid, &x->tid);
		}
		ca_scan_end(&t);
	}
	qsort(c, n, sizeof(Cand), cand_cmp);

	/* their customers' groups (the list is in customer_id order) */
	if (n > 0)
	{
		AttrNumber	c_id,
					c_group;

		scan_open(&t, "customer", snap);
		c_id = ca_scan_col(&t, "customer_id", INT8OID);
		c_group = ca_scan_col(&t, "customer_group", TEXTOID);
		while (ca_scan_next(&t))
		{
			int64		id = DatumGetInt64(CA_COL(&t, c_id));
			int			lo = 0,
						hi = n;

			/* the first account of the customer */
			while (lo < hi)
			{
				int			mid = lo + (hi - lo) / 2;

				if (c[mid].customer_id < id)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (; lo < n && c[lo].customer_id == id; lo++)
			{
				c[lo].has_customer = true;
				c[lo].group = CA_NUL(&t, c_group) ? NULL : TextDatumGetCString(CA_COL(&t, c_group));
			}
		}
		ca_scan_end(&t);
	}
	overdue_destroy(overdue);
	*ncand = n;
	return c;
}

PG_FUNCTION_INFO_V1(dunning_run);
Datum
dunning_run(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DateADT		as_of = PG_GETARG_DATEADT(0);
	TimestampTz as_of_ts;
	Oid			dtype[1] = {DATEOID};
	Datum		dval[1];
	bool		isnull;
	Ladder	   *ladder;
	KeyList		wanted = {0};
	KeyList		locked;
	KeyList		leaving = {0};
	Cand	   *cands;
	int			ncand;
	Decision   *dec;
	int			ndec;
	Snapshot	snap;
	SnapSig		before;
	SnapSig		after;
	MemoryContext loopcxt;
	MemoryContext oldcxt;
	int			notices = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (DATE_NOT_FINITE(as_of))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dunning needs a finite date")));
	/* as_of 00:00 UTC, whatever the session's TimeZone */
	{
		int			overflow = 0;

		as_of_ts = date2timestamp_opt_overflow(as_of, &overflow);
		if (overflow != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
					 errmsg("dunning date out of range")));
	}
	dval[0] = DateADTGetDatum(as_of);

	ca_connect();
	/* one dunning run at a time */
	if (SPI_execute("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('customer_account.dunning_run'))",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not take the dunning lock");
	/* a fresh snapshot (read_only = false): a run that committed while we waited is seen */
	if (SPI_execute("SELECT max(run_date) FROM customer_account.dunning_run_log", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the dunning log");
	{
		Datum		last = ca_get_datum(0, 1, &isnull);

		if (!isnull && DatumGetDateADT(last) > as_of)
			ereport(ERROR,
					(errcode(ERRCODE_CA_REFUSED),
					 errmsg("cannot run dunning for %s: the last run was for %s",
							date_text(as_of), date_text(DatumGetDateADT(last))),
					 errhint("Dunning runs move forward in time; run it for today.")));
		if (!isnull && DatumGetDateADT(last) == as_of)
		{
			replay_run(rsinfo, as_of);
			ca_finish();
			return (Datum) 0;
		}
	}
	if (SPI_execute_with_args("INSERT INTO customer_account.dunning_run_log (run_date) VALUES ($1)",
							  1, dtype, dval, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not log the dunning run");

	/* the ladder */
	if (SPI_execute("SELECT level, days_overdue, delay_days, fee::text, action FROM customer_account.dunning_level"
					" ORDER BY level", true, MAX_STEPS) != SPI_OK_SELECT)
		elog(ERROR, "could not read the dunning levels");
	ladder = palloc0(sizeof(Ladder));
	ladder->nsteps = (int) SPI_processed;
	for (int i = 0; i < ladder->nsteps; i++)
	{
		ladder->steps[i].level = ca_get_int32(i, 1, NULL);
		ladder->steps[i].days_overdue = ca_get_int32(i, 2, NULL);
		ladder->steps[i].delay_days = ca_get_int32(i, 3, NULL);
		ladder->steps[i].fee = 0;
		ladder->fee_major[i] = ca_get_text(i, 4);
		ladder->actions[i] = ca_get_text(i, 5);
	}

	/*
	 * Phase 1, no locks: who leaves dunning (paid or disputed, nothing
	 * overdue any more) and who gets a notice.  What committed transactions
	 * the read saw is noted (a snapshot taken just before it).
	 */
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetTransactionSnapshot());
	snap_sig(snap, &before);
	cands = read_accounts_to_decide(snap, as_of_ts, &ncand);
	UnregisterSnapshot(snap);
	for (int i = 0; i < ncand; i++)
		if (!cands[i].has_overdue && cands[i].level > 0)
		{
			keys_add(&wanted, cands[i].customer_id, cands[i].currency, &cands[i].tid, cands[i].level);
			keys_add(&leaving, cands[i].customer_id, cands[i].currency, &cands[i].tid, cands[i].level);
		}
	dec = decide(ladder, cands, ncand, as_of, as_of_ts, &ndec);
	for (int i = 0; i < ndec; i++)
		keys_add(&wanted, dec[i].customer_id, dec[i].currency, &dec[i].tid, 0);

	/*
	 * Phase 2, the writes: lock exactly those rows (SKIP LOCKED: a till
	 * holding one now is not waited for), then decide them again from what
	 * is committed now, since a payment may have come in meanwhile: unless
	 * nothing committed since the read (the snapshots see the same), when
	 * reading again would find what the first read found.
	 */
	locked = lock_accounts(&wanted, as_of);
	snap_sig(GetLatestSnapshot(), &after);
	if (locked.n == 0)
		ndec = 0;
	else if (snap_sig_equal(&before, &after))
	{
		/* the decisions and the accounts leaving dunning, of the locked accounts */
		KeyList		reset = {0};
		int			n = 0;

		for (int i = 0; i < leaving.n; i++)
			if (keys_find(&locked, leaving.customer_id[i], leaving.currency[i]) >= 0)
				keys_add(&reset, leaving.customer_id[i], leaving.currency[i], NULL, 0);
		leaving = reset;
		for (int i = 0; i < ndec; i++)
		{
			int			at = keys_find(&locked, dec[i].customer_id, dec[i].currency);

			if (at < 0)
				continue;
			dec[n] = dec[i];
			dec[n].tid = locked.tid[at];
			n++;
		}
		ndec = n;
	}
	else
	{
		/* read again: every locked account in dunning may leave it, every locked one be dunned */
		KeyList		reset = {0};

		for (int i = 0; i < locked.n; i++)
			if (locked.level[i] > 0)
				keys_add(&reset, locked.customer_id[i], locked.currency[i], NULL, 0);
		leaving = reset;
		ndec = -1;
	}
	if (leaving.n > 0)
	{
		Datum		custs;
		Datum		curs;

		keys_args(&leaving, &custs, &curs);
		ca_end_dunning(as_of_ts, custs, curs);
	}
	if (ndec < 0)
	{
		Oid			ktypes[3] = {TIMESTAMPTZOID, INT8ARRAYOID, TEXTARRAYOID};
		Datum		kargs[3];

		kargs[0] = TimestampTzGetDatum(as_of_ts);
		keys_args(&locked, &kargs[1], &kargs[2]);
		if (SPI_execute_with_args(locked.n <= REREAD_BY_INDEX ? CANDIDATES_OF_KEYS : CANDIDATES_OF_MANY_KEYS,
								  3, ktypes, kargs, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read overdue items");
		cands = read_cands(&ncand);
		SPI_freetuptable(SPI_tuptable);
		dec = decide(ladder, cands, ncand, as_of, as_of_ts, &ndec);
	}

	if (ndec > 0)
	{
		Datum	   *n_cust = palloc(sizeof(Datum) * ndec);
		Datum	   *n_cur = palloc(sizeof(Datum) * ndec);
		Datum	   *n_level = palloc(sizeof(Datum) * ndec);
		Datum	   *n_cycle = palloc(sizeof(Datum) * ndec);
		Datum	   *n_overdue = palloc(sizeof(Datum) * ndec);
		Datum	   *n_fee = palloc(sizeof(Datum) * ndec);
		Datum	   *n_action = palloc(sizeof(Datum) * ndec);
		Datum		args[8];
		Oid			argtypes[8] = {INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID,
		INT8ARRAYOID, TEXTARRAYOID, DATEOID};
		uint64		inserted;
		KeyList		decided = {0};

		for (int i = 0; i < ndec; i++)
		{
			n_cust[i] = Int64GetDatum(dec[i].customer_id);
			n_cur[i] = CStringGetTextDatum(dec[i].currency);
			n_level[i] = Int32GetDatum(dec[i].level);
			n_cycle[i] = Int32GetDatum(dec[i].cycle);
			n_overdue[i] = Int64GetDatum(dec[i].overdue);
			n_fee[i] = Int64GetDatum(dec[i].fee);
			n_action[i] = CStringGetTextDatum(dec[i].action ? dec[i].action : "");
			keys_add(&decided, dec[i].customer_id, dec[i].currency, &dec[i].tid, dec[i].level);
		}
		keys_sort(&decided);
		/* notices, once per customer, currency, level and cycle: the new ones come back */
		args[0] = PointerGetDatum(construct_array(n_cust, ndec, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[1] = PointerGetDatum(construct_array(n_cur, ndec, TEXTOID, -1, false, TYPALIGN_INT));
		args[2] = PointerGetDatum(construct_array(n_level, ndec, INT4OID, 4, true, TYPALIGN_INT));
		args[3] = PointerGetDatum(construct_array(n_cycle, ndec, INT4OID, 4, true, TYPALIGN_INT));
		args[4] = PointerGetDatum(construct_array(n_overdue, ndec, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[5] = PointerGetDatum(construct_array(n_fee, ndec, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[6] = PointerGetDatum(construct_array(n_action, ndec, TEXTOID, -1, false, TYPALIGN_INT));
		args[7] = DateADTGetDatum(as_of);
		if (SPI_execute_with_args("INSERT INTO customer_account.dunning_notice"
								  " (customer_id, currency, level, cycle, run_date, overdue_amount, fee, action)"
								  " SELECT u.c, u.cur, u.l, u.cy, $8, u.o, u.f, u.a"
								  " FROM unnest($1, $2, $3, $4, $5, $6, $7) AS u(c, cur, l, cy, o, f, a)"
								  " ON CONFLICT (customer_id, currency, level, cycle) DO NOTHING"
								  " RETURNING customer_id, currency, level, overdue_amount, fee, action",
								  8, argtypes, args, NULL, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "could not write dunning notices");
		inserted = SPI_processed;
		if (inserted > 0)
		{
			SPITupleTable *notices_tt = SPI_tuptable;
			KeyList		written = {0};
			Datum	   *w_tid = palloc(sizeof(Datum) * inserted);
			Datum	   *w_level = palloc(sizeof(Datum) * inserted);
			Datum	   *o_cust = palloc(sizeof(Datum) * inserted);
			Datum	   *o_cur = palloc(sizeof(Datum) * inserted);
			Datum	   *o_level = palloc(sizeof(Datum) * inserted);
			Datum	   *o_overdue = palloc(sizeof(Datum) * inserted);
			Datum	   *o_fee = palloc(sizeof(Datum) * inserted);
			Datum	   *o_action = palloc(sizeof(Datum) * inserted);
			int		   *order = palloc(sizeof(int) * inserted);

			/* the notices written now, in key order, with their account rows */
			for (uint64 r = 0; r < inserted; r++)
			{
				int64		customer_id = ca_get_int64(r, 1, NULL);
				char	   *currency = ca_get_text(r, 2);
				int			at = keys_find(&decided, customer_id, currency);

				if (at < 0)
					elog(ERROR, "dunning notice for customer " INT64_FORMAT " in %s was not decided",
						 customer_id, currency);
				keys_add(&written, customer_id, currency, &decided.tid[at], ca_get_int32(r, 3, NULL));
				order[r] = (int) r;
			}
			qsort_arg(order, inserted, sizeof(int), key_index_cmp, &written);
			for (uint64 r = 0; r < inserted; r++)
			{
				int			w = order[r];

				w_tid[r] = datum_of_tid(&written.tid[w]);
				w_level[r] = Int32GetDatum(written.level[w]);
				o_cust[r] = Int64GetDatum(written.customer_id[w]);
				o_cur[r] = CStringGetTextDatum(written.currency[w]);
				o_level[r] = Int32GetDatum(written.level[w]);
				o_overdue[r] = amount_text(ca_get_int64(w, 4, NULL), written.currency[w]);
				o_fee[r] = amount_text(ca_get_int64(w, 5, NULL), written.currency[w]);
				o_action[r] = CStringGetTextDatum(ca_get_text(w, 6));
			}

			/* the new levels: the rows are ours (locked), found by their versions */
			{
				uint64		updated;

				updated = ca_set_dunning_levels(as_of,
												PointerGetDatum(construct_array(w_tid, inserted, TIDOID,
																				sizeof(ItemPointerData), false,
																				TYPALIGN_SHORT)),
												PointerGetDatum(construct_array(w_level, inserted, INT4OID, 4, true,
																				TYPALIGN_INT)));
				if (updated != inserted)
					elog(ERROR, "dunning levels: %d of %d account rows updated", (int) updated, (int) inserted);
			}
			/* the outbox, in key order, from the notices just written */
			{
				Oid			types[6] = {INT8ARRAYOID, TEXTARRAYOID, INT4ARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
				TEXTARRAYOID};
				Datum		oargs[6];

				oargs[0] = PointerGetDatum(construct_array(o_cust, inserted, INT8OID, 8, FLOAT8PASSBYVAL,
														   TYPALIGN_DOUBLE));
				oargs[1] = PointerGetDatum(construct_array(o_cur, inserted, TEXTOID, -1, false, TYPALIGN_INT));
				oargs[2] = PointerGetDatum(construct_array(o_level, inserted, INT4OID, 4, true, TYPALIGN_INT));
				oargs[3] = PointerGetDatum(construct_array(o_overdue, inserted, TEXTOID, -1, false, TYPALIGN_INT));
				oargs[4] = PointerGetDatum(construct_array(o_fee, inserted, TEXTOID, -1, false, TYPALIGN_INT));
				oargs[5] = PointerGetDatum(construct_array(o_action, inserted, TEXTOID, -1, false, TYPALIGN_INT));
				if (SPI_execute_with_args("INSERT INTO customer_account.outbox (customer_id, topic, payload)"
										  " SELECT u.c, 'dunning', jsonb_build_object('currency', u.cur,"
										  "   'level', u.l, 'overdue_amount', u.o, 'fee', u.f,"
										  "   'action', u.a, 'language', c.language)"
										  " FROM unnest($1, $2, $3, $4, $5, $6) WITH ORDINALITY AS u(c, cur, l, o, f, a, n)"
										  " JOIN customer_account.customer c ON c.customer_id = u.c"
										  " ORDER BY u.n",
										  6, types, oargs, NULL, false, 0) != SPI_OK_INSERT)
					elog(ERROR, "could not write the outbox");
			}
			/* fees go through the posting core; the answer is the new notices */
			loopcxt = AllocSetContextCreate(CurrentMemoryContext, "dunning fees", ALLOCSET_DEFAULT_SIZES);
			for (uint64 r = 0; r < inserted; r++)
			{
				int64		customer_id;
				char	   *currency;
				int32		level;
				int64		overdue;
				int64		fee;
				char	   *action;

				SPI_tuptable = notices_tt;
				customer_id = ca_get_int64(r, 1, NULL);
				currency = ca_get_text(r, 2);
				level = ca_get_int32(r, 3, NULL);
				overdue = ca_get_int64(r, 4, NULL);
				fee = ca_get_int64(r, 5, NULL);
				action = ca_get_text(r, 6);
				put_notice_row(rsinfo, customer_id, currency, level, overdue, fee, action);
				notices++;
				if (fee > 0)
				{
					oldcxt = MemoryContextSwitchTo(loopcxt);
					ca_post_fee(customer_id, currency, fee, as_of_ts,
							 psprintf("dunning fee, level %d (%s)", level, action));
					MemoryContextSwitchTo(oldcxt);
					MemoryContextReset(loopcxt);
				}
			}
			MemoryContextDelete(loopcxt);
		}
	}
	if (notices > 0
		&& SPI_execute("SELECT pg_catalog.pg_notify('customer_account_outbox', 'dunning')", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not notify");
	ca_finish();
	return (Datum) 0;
}
