/*-------------------------------------------------------------------------
 *
 * loyalty_cache.c
 *	  Policy as data: the loyalty tables a DBA edits, read once per backend
 *	  and kept until one of them changes.  The config_changed trigger on
 *	  every one of them sends a relcache invalidation with each write; the
 *	  callback registered here marks the cache stale, and the next call
 *	  loads it anew.
 *
 *	  A load reads with a fresh snapshot (never the caller's, which may be
 *	  old in a repeatable-read transaction while the cache outlives it),
 *	  builds the new cache in a fresh memory context and swaps it in only
 *	  when every table was read: an error leaves the old cache in place.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "loyalty_cache.h"
#include "spi_util.h"
#include "relcache_watch.h"

/* the tables whose changes invalidate the cache */
static const char *const watched_names[] = {
	"loyalty_terms", "loyalty_earn_rule", "loyalty_multiplier", "loyalty_tier",
	"loyalty_reactivation_rule", "channel"
};

#define NWATCHED lengthof(watched_names)

typedef struct LoyaltyCache
{
	MemoryContext cxt;
	LoyaltyPolicy policy;
	LoyaltyChannel *channels;
	int			nchannels;
} LoyaltyCache;

static LoyaltyCache cache;
static bool cache_valid = false;
static uint64 inval_count = 0;
static Oid	watched[NWATCHED];
static bool callback_registered = false;

/* relcache callback: a watched table (or everything) changed */
static void
loyalty_relcache_callback(Datum arg, Oid relid)
{
	if (OidIsValid(relid))
	{
		bool		ours = false;

		for (int i = 0; i < (int) NWATCHED; i++)
			if (watched[i] == relid)
				ours = true;
		if (!ours)
			return;
	}
	cache_valid = false;
	inval_count++;
}

/* a channel kind name to its index (NULL: any kind) */
int
ca_loyalty_kind_index(const char *kind)
{
	if (kind == NULL)
		return LR_ANY_KIND;
	for (int k = 0; k < CHANNEL_KINDS; k++)
		if (strcmp(ca_channel_kind_names[k], kind) == 0)
			return k;
	return -1;
}

/* run sql under a fresh snapshot; the rows are in SPI_tuptable */
static int
read_fresh(const char *sql)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);
	int			rc;

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
	rc = SPI_execute_snapshot(plan, NULL, NULL, GetLatestSnapshot(), InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the loyalty configuration: %s", SPI_result_code_string(rc));
	SPI_freeplan(plan);
	return (int) SPI_processed;
}

/* column col of row as a copy in cxt: a string, a text, a numeric; NULL when null */
static char *
copy_cstring(MemoryContext cxt, int row, int col)
{
	char	   *s = ca_get_text(row, col);

	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

/* a text column as a text in cxt, NULL when null (a LIKE pattern) */
static text *
copy_textp(MemoryContext cxt, int row, int col)
{
	char	   *s = ca_get_text(row, col);
	MemoryContext old;
	text	   *t;

	if (s == NULL)
		return NULL;
	old = MemoryContextSwitchTo(cxt);
	t = cstring_to_text(s);
	MemoryContextSwitchTo(old);
	return t;
}

/* a numeric column as a plain copy in cxt, NULL when null */
static Numeric
copy_numeric(MemoryContext cxt, int row, int col)
{
	bool		n;
	Datum		d = ca_get_datum(row, col, &n);
	MemoryContext old;
	Datum		c;

	if (n)
		return NULL;
	/* a plain 4-byte-header copy: DatumGetNumeric() must not detoast it again elsewhere */
	old = MemoryContextSwitchTo(cxt);
	c = PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
	MemoryContextSwitchTo(old);
	return DatumGetNumeric(c);
}

/* valid_from and valid_to from columns col and col + 1 */
static void
copy_validity(int row, int col, bool *has_from, TimestampTz *from, bool *has_to, TimestampTz *to)
{
	bool		n;

	*from = ca_get_timestamptz(row, col, &n);
	*has_from = !n;
	*to = ca_get_timestamptz(row, col + 1, &n);
	*has_to = !n;
}

/* loyalty_terms: one row per currency */
static void
load_terms(MemoryContext cxt, LoyaltyPolicy *p)
{
	p->nterms = read_fresh("SELECT currency, point_value, expiry_days, pending_days"
						   " FROM customer_account.loyalty_terms ORDER BY currency");
	p->terms = MemoryContextAllocZero(cxt, sizeof(LoyaltyTerms) * Max(p->nterms, 1));
	for (int i = 0; i < p->nterms; i++)
	{
		LoyaltyTerms *t = &p->terms[i];
		bool		n;

		strlcpy(t->currency, ca_get_text(i, 1), sizeof(t->currency));
		t->minor = ca_currency_minor_units(ca_currency_pack(t->currency, 3));
		t->point_value = copy_numeric(cxt, i, 2);
		t->expiry_days = ca_get_int32(i, 3, NULL);
		t->pending_days = ca_get_int32(i, 4, &n);
		t->has_pending_days = !n;
	}
}

/* the earn rules and the multipliers */
static void
load_rules(MemoryContext cxt, LoyaltyPolicy *p)
{
	p->nrules = read_fresh("SELECT code, points_per_unit, channel_kind::text, sku_pattern, valid_from, valid_to"
						   " FROM customer_account.loyalty_earn_rule ORDER BY code");
	p->rules = MemoryContextAllocZero(cxt, sizeof(LoyaltyEarnRule) * Max(p->nrules, 1));
	for (int i = 0; i < p->nrules; i++)
	{
		LoyaltyEarnRule *r = &p->rules[i];

		r->code = copy_cstring(cxt, i, 1);
		r->points_per_unit = copy_numeric(cxt, i, 2);
		r->kind = ca_loyalty_kind_index(ca_get_text(i, 3));
		r->sku_pattern = copy_textp(cxt, i, 4);
		copy_validity(i, 5, &r->has_from, &r->valid_from, &r->has_to, &r->valid_to);
	}

	p->nmults = read_fresh("SELECT code, factor, tier, channel_kind::text, sku_pattern, valid_from, valid_to"
						   " FROM customer_account.loyalty_multiplier ORDER BY code");
	p->mults = MemoryContextAllocZero(cxt, sizeof(LoyaltyMultiplier) * Max(p->nmults, 1));
	p->tier_multipliers = false;
	for (int i = 0; i < p->nmults; i++)
	{
		LoyaltyMultiplier *m = &p->mults[i];

		m->code = copy_cstring(cxt, i, 1);
		m->factor = copy_numeric(cxt, i, 2);
		m->tier = copy_cstring(cxt, i, 3);
		m->kind = ca_loyalty_kind_index(ca_get_text(i, 4));
		m->sku_pattern = copy_textp(cxt, i, 5);
		copy_validity(i, 6, &m->has_from, &m->valid_from, &m->has_to, &m->valid_to);
		if (m->tier != NULL)
			p->tier_multipliers = true;
	}
}

/* the tiers, thresholds in minor units */
static void
load_tiers(MemoryContext cxt, LoyaltyPolicy *p)
{
	p->ntiers = read_fresh("SELECT tier, currency, customer_account.minor_units(min_revenue_12m)"
						   " FROM customer_account.loyalty_tier ORDER BY currency, min_revenue_12m");
	p->tiers = MemoryContextAllocZero(cxt, sizeof(LoyaltyTier) * Max(p->ntiers, 1));
	for (int i = 0; i < p->ntiers; i++)
	{
		LoyaltyTier *t = &p->tiers[i];

		t->tier = copy_cstring(cxt, i, 1);
		strlcpy(t->currency, ca_get_text(i, 2), sizeof(t->currency));
		t->min_units = ca_get_int64(i, 3, NULL);
	}
}

/* the reactivation rules */
static void
load_reactivation(MemoryContext cxt, LoyaltyPolicy *p)
{
	p->nreact = read_fresh("SELECT code, target_kind::text, absent_days, source_kind::text, min_purchases,"
						   " within_days, customer_account.minor_units(credit), customer_account.currency_of(credit),"
						   " credit_percent, customer_account.minor_units(max_credit),"
						   " customer_account.currency_of(max_credit), once_per_days"
						   " FROM customer_account.loyalty_reactivation_rule ORDER BY code");
	p->react = MemoryContextAllocZero(cxt, sizeof(LoyaltyReactivationRule) * Max(p->nreact, 1));
	for (int i = 0; i < p->nreact; i++)
	{
		LoyaltyReactivationRule *r = &p->react[i];
		bool		n;
		char	   *cur;

		r->code = copy_cstring(cxt, i, 1);
		r->target_kind = ca_loyalty_kind_index(ca_get_text(i, 2));
		r->absent_days = ca_get_int32(i, 3, NULL);
		r->source_kind = ca_loyalty_kind_index(ca_get_text(i, 4));
		r->min_purchases = ca_get_int32(i, 5, NULL);
		r->within_days = ca_get_int32(i, 6, NULL);
		r->credit_units = ca_get_int64(i, 7, &n);
		r->has_credit = !n;
		cur = ca_get_text(i, 8);
		r->credit_code = cur ? ca_currency_pack(cur, 3) : -1;
		r->credit_percent = copy_numeric(cxt, i, 9);
		r->has_percent = r->credit_percent != NULL;
		r->max_units = ca_get_int64(i, 10, &n);
		r->has_max = !n;
		cur = ca_get_text(i, 11);
		r->max_code = cur ? ca_currency_pack(cur, 3) : -1;
		r->once_per_days = ca_get_int32(i, 12, NULL);
	}
}

/* the channels' kinds, currencies and return windows */
static void
load_channels(MemoryContext cxt, LoyaltyCache *c)
{
	c->nchannels = read_fresh("SELECT code, kind::text, currency, return_window_days FROM customer_account.channel");
	c->channels = MemoryContextAllocZero(cxt, sizeof(LoyaltyChannel) * Max(c->nchannels, 1));
	for (int i = 0; i < c->nchannels; i++)
	{
		LoyaltyChannel *ch = &c->channels[i];

		ch->code = copy_cstring(cxt, i, 1);
		ch->kind = ca_loyalty_kind_index(ca_get_text(i, 2));
		strlcpy(ch->currency, ca_get_text(i, 3), sizeof(ch->currency));
		ch->return_window_days = ca_get_int32(i, 4, NULL);
	}
}

/* read every table into a new context; swap it in only when all went well */
static void
load_cache(void)
{
	LoyaltyCache fresh;
	uint64		seen = inval_count;
	OwnerContext oc;
	Oid			nsp;

	memset(&fresh, 0, sizeof(fresh));
	fresh.cxt = AllocSetContextCreate(CacheMemoryContext, "customer_account loyalty cache",
									  ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		nsp = get_namespace_oid("customer_account", false);
		for (int i = 0; i < (int) NWATCHED; i++)
			watched[i] = get_relname_relid(watched_names[i], nsp);
		/* new binaries on a 1.0.0 schema, before ALTER EXTENSION UPDATE: loyalty is off */
		fresh.policy.installed = OidIsValid(watched[0]);
		if (fresh.policy.installed)
		{
			ca_become_owner(&oc);
			ca_connect();
			load_terms(fresh.cxt, &fresh.policy);
			load_rules(fresh.cxt, &fresh.policy);
			load_tiers(fresh.cxt, &fresh.policy);
			load_reactivation(fresh.cxt, &fresh.policy);
			load_channels(fresh.cxt, &fresh);
			ca_finish();
			ca_restore_user(&oc);
		}
	}
	PG_CATCH();
	{
		MemoryContextDelete(fresh.cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (cache.cxt != NULL)
		MemoryContextDelete(cache.cxt);
	cache = fresh;
	/*
	 * An invalidation that arrived while we read makes the next call load
	 * again; so does a schema without the loyalty tables, which an update
	 * creates without telling this backend.
	 */
	cache_valid = (seen == inval_count) && cache.policy.installed;
}

/* process pending invalidations, then load when stale */
static void
ensure_cache(void)
{
	if (!callback_registered)
	{
		ca_watch_relcache(loyalty_relcache_callback);
		callback_registered = true;
	}
	AcceptInvalidationMessages();
	if (!cache_valid || cache.cxt == NULL)
		load_cache();
}

/* the programme as configured now (see loyalty_cache.h) */
const LoyaltyPolicy *
ca_loyalty_policy(void)
{
	ensure_cache();
	return &cache.policy;
}

/*
 * Does not reload a loaded cache: callers take ca_loyalty_policy() first
 * and keep using it, and a reload would free what they hold.
 */
const LoyaltyChannel *
ca_loyalty_channel(const char *code)
{
	if (cache.cxt == NULL)
		ensure_cache();
	for (int i = 0; i < cache.nchannels; i++)
		if (strcmp(cache.channels[i].code, code) == 0)
			return &cache.channels[i];
	ereport(ERROR,
			(errcode(ERRCODE_CA_UNKNOWN),
			 errmsg("unknown channel \"%s\"", code),
			 errhint("Channels are added with customer_account.add_channel().")));
	return NULL;
}
