/*-------------------------------------------------------------------------
 *
 * config.c
 *	  The configuration cache.  The configuration tables (policy, credit
 *	  policy, payment methods, channels, segment averages) are read once per
 *	  backend and kept until a relcache invalidation says they changed: the
 *	  config_changed trigger on those tables sends one with every write, so
 *	  the next call sees an UPDATE.  The cache registers its own relcache
 *	  callback for its tables.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/visibilitymap.h"
#include "storage/bufmgr.h"
#include "catalog/namespace.h"
#include "common/int.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "config.h"
#include "direct.h"
#include "money.h"
#include "spi_util.h"
#include "relcache_watch.h"

const char *const ca_channel_kind_names[CHANNEL_KINDS] = {"webshop", "store", "marketplace", "callcenter", "app"};

/* the configuration cache: valid until a change is announced */
static bool conf_valid = false;
static uint64 conf_invals = 0;	/* announcements seen, to notice one during a load */

/* the configuration tables, as resolved at the last load */
#define CONF_TABLES 5
static const char *const conf_table_names[CONF_TABLES] =
{"policy", "segment_stats", "credit_policy", "payment_method", "channel"};
static Oid	conf_oids[CONF_TABLES];
static bool conf_callback_registered = false;

/* a change was announced (or everything was reset): reload on next use */
static void
ca_conf_invalidate(void)
{
	conf_valid = false;
	conf_invals++;
}

/*
 * Relcache invalidation of a configuration table (or of everything).  Every
 * message of a batch reaches this callback, so one for another table (an
 * ANALYZE of customer, say) cannot hide a configuration change.
 */
static void
conf_relcache_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid))
	{
		ca_conf_invalidate();
		return;
	}
	for (int i = 0; i < CONF_TABLES; i++)
		if (relid == conf_oids[i])
			ca_conf_invalidate();
}

/* listen for changes of the configuration tables; a recreated extension has new ones */
static void
watch_conf_tables(void)
{
	Oid			nsp = get_namespace_oid("customer_account", false);
	Oid			oids[CONF_TABLES];

	if (!conf_callback_registered)
	{
		ca_watch_relcache(conf_relcache_callback);
		conf_callback_registered = true;
	}
	for (int i = 0; i < CONF_TABLES; i++)
	{
		oids[i] = get_relname_relid(conf_table_names[i], nsp);
		if (!OidIsValid(oids[i]))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation customer_account.%s does not exist", conf_table_names[i]),
					 errhint("Is the extension installed? CREATE EXTENSION customer_account CASCADE.")));
	}
	if (memcmp(oids, conf_oids, sizeof(oids)) != 0)
	{
		memcpy(conf_oids, oids, sizeof(oids));
		ca_conf_invalidate();
	}
}

/* ------------------------------------------------------------------------
 * the configuration cache
 *
 * One generation of the configuration lives in one memory context.  A
 * reload builds a complete new generation in a fresh context that hangs
 * below the current transaction, so that an error anywhere (a lock
 * timeout, a value out of range, a cancel) frees it with the transaction
 * and leaves the installed generation untouched and still marked invalid.
 * Only a complete generation moves below CacheMemoryContext and is
 * installed; the one it replaces is handed to the transaction, because a
 * caller of this statement may still hold a channel or method it returned
 * (as partdesc.c does with partition descriptors).
 *
 * The tables are read with one fresh snapshot (GetLatestSnapshot), never
 * the caller's transaction snapshot: a reload inside a REPEATABLE READ
 * transaction must not cache a policy that was already replaced, as the
 * cache outlives the transaction.  Own uncommitted changes are seen (the
 * snapshot's command id is current) and a ROLLBACK invalidates them again.
 *
 * Names (codes, groups, currencies) are palloc'd strings of any length.
 * ------------------------------------------------------------------------
 */
typedef struct SegmentAvg
{
	char	   *currency;
	double		avg;
} SegmentAvg;

typedef struct ConfCache
{
	MemoryContext cxt;			/* holds this struct and everything below */
	PolicyConf	policy;
	SegmentAvg *segments;
	int			nsegments;
	CreditPolicyConf *credit_policies;
	int			ncredit_policies;
	MethodConf *methods;
	int			nmethods;
	ChannelConf *channels;
	int			nchannels;
} ConfCache;

/* the installed generation (NULL before the first load) */
static ConfCache *conf = NULL;

/* kind name -> index into ca_channel_kind_names, -1 when unknown */
static int
kind_index(const char *kind)
{
	for (int k = 0; k < CHANNEL_KINDS; k++)
		if (strcmp(ca_channel_kind_names[k], kind) == 0)
			return k;
	return -1;
}

/* a text column of the current SPI row copied into cxt, NULL when null */
static char *
conf_text(MemoryContext cxt, int row, int col)
{
	char	   *s = ca_get_text(row, col);

	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

/*
 * An amount column (numeric, major units) as int64 in millionths of a major
 * unit.  The tables bound every amount to [0, CA_CONF_AMOUNT_MAX] (CHECK
 * constraints); a value outside (NaN, infinity, a row written while a bound
 * was dropped) is refused with 22003 naming the row, before any arithmetic
 * that could overflow.
 *
 * The value is truncated to millionths, and when digits were cut off, a
 * last digit 0 becomes 1: the cached value then lies on the same side of
 * every multiple of 1/100000 as the exact one, and is never one itself, so
 * rounding it to the minor unit (at most 4 digits, ca_conf_to_units) gives
 * what rounding the exact value would (a sticky digit: no double rounding).
 */
static int64
conf_amount(int row, int col, const char *table, const char *key, bool *isnull)
{
	bool		n;
	Datum		d = ca_get_datum(row, col, &n);
	Datum		lo = NumericGetDatum(int64_to_numeric(0));
	Datum		hi = NumericGetDatum(int64_to_numeric(CA_CONF_AMOUNT_MAX));
	Datum		scaled;
	Datum		cut;
	int64		v;

	if (isnull)
		*isnull = n;
	if (n)
		return 0;
	/* NaN sorts above every number, so it fails the upper bound */
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, d, lo)) < 0
		|| DatumGetInt32(DirectFunctionCall2(numeric_cmp, d, hi)) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("%s of customer_account.%s is out of range: %s",
						SPI_fname(SPI_tuptable->tupdesc, col), table,
						DatumGetCString(DirectFunctionCall1(numeric_out, d))),
				 errdetail("Row %s.", key),
				 errhint("Amounts in the configuration tables must lie between 0 and " INT64_FORMAT " major units.",
						 CA_CONF_AMOUNT_MAX)));
	/* at most 1e12 * 1e6 = 1e18: the cast cannot overflow */
	scaled = DirectFunctionCall2(numeric_mul, d, NumericGetDatum(int64_to_numeric(ca_pow10_int64(CA_CONF_SCALE_DIGITS))));
	cut = DirectFunctionCall2(numeric_trunc, scaled, Int32GetDatum(0));
	v = DatumGetInt64(DirectFunctionCall1(numeric_int8, cut));
	if (v % 10 == 0 && !DatumGetBool(DirectFunctionCall2(numeric_eq, scaled, cut)))
		v += 1;					/* amounts are not negative */
	return v;
}

/* run one read-only query of the configuration under snap */
static void
conf_query(const char *sql, Snapshot snap, const char *table)
{
	SPIPlanPtr	plan = SPI_prepare(sql, 0, NULL);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
	if (SPI_execute_snapshot(plan, NULL, NULL, snap, InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read customer_account.%s", table);
}

/* read the configuration tables into a new generation allocated in cxt */
static void
read_conf(ConfCache *c, Snapshot snap)
{
	MemoryContext cxt = c->cxt;

	conf_query("SELECT coalesce(max(new_customer_days), 90), coalesce(max(segment_band), 0.25)::float8,"
			   " coalesce(max(incentive_after_days), 180) FROM customer_account.policy", snap, "policy");
	c->policy.new_customer_days = ca_get_int32(0, 1, NULL);
	c->policy.segment_band = DatumGetFloat8(ca_get_datum(0, 2, NULL));
	c->policy.incentive_after_days = ca_get_int32(0, 3, NULL);

	conf_query("SELECT currency, avg_revenue_12m::float8 FROM customer_account.segment_stats", snap, "segment_stats");
	c->nsegments = (int) SPI_processed;
	c->segments = MemoryContextAllocZero(cxt, sizeof(SegmentAvg) * Max(c->nsegments, 1));
	for (int i = 0; i < c->nsegments; i++)
	{
		c->segments[i].currency = conf_text(cxt, i, 1);
		c->segments[i].avg = DatumGetFloat8(ca_get_datum(i, 2, NULL));
	}

	conf_query("SELECT channel_kind::text, customer_group, currency, credit_limit, first_order_limit,"
			   " new_customer_days, new_customer_paid_orders, overdue_tolerance, overdue_grace_days,"
			   " max_return_rate::float8, return_rate_min_orders, dunning_block_level, 'policy_id ' || policy_id"
			   " FROM customer_account.credit_policy"
			   " ORDER BY customer_group IS NULL, channel_kind IS NULL, currency IS NULL, policy_id", snap, "credit_policy");
	c->ncredit_policies = (int) SPI_processed;
	c->credit_policies = MemoryContextAllocZero(cxt, sizeof(CreditPolicyConf) * Max(c->ncredit_policies, 1));
	for (int i = 0; i < c->ncredit_policies; i++)
	{
		CreditPolicyConf *p = &c->credit_policies[i];
		char	   *kind = ca_get_text(i, 1);
		char	   *key = ca_get_text(i, 13);

		p->any_kind = (kind == NULL);
		p->kind = kind ? kind_index(kind) : -1;
		p->group = conf_text(cxt, i, 2);
		p->any_group = (p->group == NULL);
		p->currency = conf_text(cxt, i, 3);
		p->any_currency = (p->currency == NULL);
		p->credit_limit = conf_amount(i, 4, "credit_policy", key, NULL);
		p->first_order_limit = conf_amount(i, 5, "credit_policy", key, NULL);
		p->new_customer_days = ca_get_int32(i, 6, NULL);
		p->new_customer_paid_orders = ca_get_int32(i, 7, NULL);
		p->overdue_tolerance = conf_amount(i, 8, "credit_policy", key, NULL);
		p->overdue_grace_days = ca_get_int32(i, 9, NULL);
		p->max_return_rate = DatumGetFloat8(ca_get_datum(i, 10, NULL));
		p->return_rate_min_orders = ca_get_int32(i, 11, NULL);
		p->dunning_block_level = ca_get_int32(i, 12, NULL);
	}

	conf_query("SELECT code, settlement, channel_kinds::text[], min_amount, max_amount, format('code %L', code)"
			   " FROM customer_account.payment_method ORDER BY sort_order, code", snap, "payment_method");
	c->nmethods = (int) SPI_processed;
	c->methods = MemoryContextAllocZero(cxt, sizeof(MethodConf) * Max(c->nmethods, 1));
	for (int i = 0; i < c->nmethods; i++)
	{
		MethodConf *m = &c->methods[i];
		char	   *settlement = ca_get_text(i, 2);
		char	   *key = ca_get_text(i, 6);
		bool		n;
		Datum		kinds = ca_get_datum(i, 3, &n);

		m->code = conf_text(cxt, i, 1);
		m->settlement = settlement[0] == 'c' ? 'c' : settlement[0] == 'p' ? 'p' : 'i';
		m->all_kinds = n;
		if (!n)
		{
			ArrayType  *arr = DatumGetArrayTypeP(kinds);
			Datum	   *elems;
			bool	   *enulls;
			int			nelems;

			deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &nelems);
			for (int e = 0; e < nelems; e++)
			{
				int			k;

				if (enulls[e])
					continue;
				k = kind_index(TextDatumGetCString(elems[e]));
				if (k >= 0)
					m->kinds[k] = true;
			}
		}
		m->min_amount = conf_amount(i, 4, "payment_method", key, &n);
		m->has_min = !n;
		m->max_amount = conf_amount(i, 5, "payment_method", key, &n);
		m->has_max = !n;
	}

	conf_query("SELECT code, kind::text, currency, payment_term_days FROM customer_account.channel", snap, "channel");
	c->nchannels = (int) SPI_processed;
	c->channels = MemoryContextAllocZero(cxt, sizeof(ChannelConf) * Max(c->nchannels, 1));
	for (int i = 0; i < c->nchannels; i++)
	{
		ChannelConf *ch = &c->channels[i];

		ch->code = conf_text(cxt, i, 1);
		ch->kind = kind_index(ca_get_text(i, 2));
		ch->currency = conf_text(cxt, i, 3);
		ch->payment_term_days = ca_get_int32(i, 4, NULL);
	}
}

/* build a complete new generation and install it; on error nothing changes */
static void
load_conf(void)
{
	uint64		invals_before = conf_invals;
	MemoryContext cxt;
	ConfCache  *c;
	Snapshot	snap;
	OwnerContext oc;

	ca_ensure_rels();

	/*
	 * Below the current transaction until complete: an error frees it with
	 * the (sub)transaction, and the installed generation stays invalid.
	 */
	cxt = AllocSetContextCreate(CurTransactionContext, "customer_account config cache",
								ALLOCSET_SMALL_SIZES);
	c = MemoryContextAllocZero(cxt, sizeof(ConfCache));
	c->cxt = cxt;

	snap = RegisterSnapshot(GetLatestSnapshot());
	ca_become_owner(&oc);
	ca_connect();
	read_conf(c, snap);
	ca_finish();
	ca_restore_user(&oc);
	UnregisterSnapshot(snap);

	/* complete: install it, and let the transaction free the old one */
	MemoryContextSetParent(cxt, CacheMemoryContext);
	if (conf != NULL)
		MemoryContextSetParent(conf->cxt, TopTransactionContext);
	conf = c;

	/*
	 * A change that committed while we read may be missing from our
	 * snapshot: if one was announced meanwhile, read again next time.
	 */
	conf_valid = (conf_invals == invals_before);
}

/* the installed generation, reloaded first when a change was announced */
static const ConfCache *
ensure_conf(void)
{
	ca_ensure_rels();
	if (!conf_valid || conf == NULL || !conf_callback_registered)
		watch_conf_tables();
	/* process pending invalidations, so a committed UPDATE is seen now */
	AcceptInvalidationMessages();
	if (!conf_valid || conf == NULL)
		load_conf();
	return conf;
}

/* the policy row (defaults when the table is empty) */
const PolicyConf *
ca_policy(void)
{
	return &ensure_conf()->policy;
}

/* the average 12-month revenue of a currency's segment; false when unknown */
bool
ca_segment_avg(const char *currency, double *avg)
{
	const ConfCache *c = ensure_conf();

	for (int i = 0; i < c->nsegments; i++)
		if (c->segments[i].currency != NULL && strcmp(c->segments[i].currency, currency) == 0)
		{
			*avg = c->segments[i].avg;
			return true;
		}
	return false;
}

/* the most specific credit policy for a channel kind, group and currency */
const CreditPolicyConf *
ca_credit_policy(int kind, const char *group, const char *currency)
{
	const ConfCache *c = ensure_conf();

	/* rows are ordered most specific first: the first match wins */
	for (int i = 0; i < c->ncredit_policies; i++)
	{
		const CreditPolicyConf *p = &c->credit_policies[i];

		if (!p->any_kind && (kind < 0 || p->kind != kind))
			continue;
		if (!p->any_group && (group == NULL || strcmp(p->group, group) != 0))
			continue;
		if (!p->any_currency && strcmp(p->currency, currency) != 0)
			continue;
		return p;
	}
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("no credit policy applies to channel kind %s in %s",
					kind >= 0 ? ca_channel_kind_names[kind] : "?", currency),
			 errhint("Keep a default row in customer_account.credit_policy with channel_kind, customer_group and currency NULL.")));
	return NULL;
}

/* every payment method, in sort order */
const MethodConf *
ca_methods(int *n)
{
	const ConfCache *c = ensure_conf();

	*n = c->nmethods;
	return c->methods;
}

/* a channel by code; RA002 when unknown */
const ChannelConf *
ca_channel(const char *code)
{
	const ConfCache *c = ensure_conf();

	for (int i = 0; i < c->nchannels; i++)
		if (strcmp(c->channels[i].code, code) == 0)
		{
			const ChannelConf *ch = &c->channels[i];

			if (ch->kind < 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("channel \"%s\" has a kind this version of customer_account does not know", code)));
			return ch;
		}
	ereport(ERROR,
			(errcode(ERRCODE_CA_UNKNOWN),
			 errmsg("unknown channel \"%s\"", code),
			 errhint("Channels are added with customer_account.add_channel().")));
	return NULL;
}

/* a cached configuration amount in minor units, half to even (as the money type rounds) */
int64
ca_conf_to_units(int64 conf_amount, int minor)
{
	int64		div;
	int64		q;
	int64		r;

	/* ISO 4217 knows 0 to 4 minor digits; amounts are bounded at load */
	if (minor < 0 || minor > 4 || conf_amount < -CA_CONF_AMOUNT_MAX * ca_pow10_int64(CA_CONF_SCALE_DIGITS)
		|| conf_amount > CA_CONF_AMOUNT_MAX * ca_pow10_int64(CA_CONF_SCALE_DIGITS))
		elog(ERROR, "configuration amount " INT64_FORMAT " with %d minor digits out of range", conf_amount, minor);
	/* round half to even to the minor unit */
	div = ca_pow10_int64(CA_CONF_SCALE_DIGITS - minor);
	q = conf_amount / div;
	r = conf_amount % div;
	r = r < 0 ? -r : r;
	if (2 * r > div || (2 * r == div && q % 2 != 0))
		q += conf_amount < 0 ? -1 : 1;
	return q;
}

/*
 * config_changed: AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE FOR EACH
 * STATEMENT on the configuration tables.  Sends a relcache invalidation for
 * the table, so that every backend reloads its cache before the next call.
 */
PG_FUNCTION_INFO_V1(config_changed);
Datum
config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trig;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("config_changed: not called by trigger manager")));
	trig = (TriggerData *) fcinfo->context;
	CacheInvalidateRelcache(trig->tg_relation);
	return PointerGetDatum(NULL);
}
