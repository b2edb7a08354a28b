/*-------------------------------------------------------------------------
 *
 * return_policy.c
 *	  The return policy as data: each channel's return window and cash
 *	  refund limit, and the rules of customer_account.return_policy (per
 *	  channel, channel kind, category or SKU pattern).  Read once per
 *	  backend as the tables' owner and kept until a relcache invalidation
 *	  of either table: the config_changed trigger on both sends one with
 *	  every write, so the next decision everywhere sees an UPDATE.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "config.h"
#include "direct.h"
#include "returns.h"
#include "spi_util.h"
#include "relcache_watch.h"

typedef struct ReturnRuleConf
{
	bool		has_channel;
	char		channel[64];
	int			kind;			/* -1: any */
	char	   *category;		/* NULL: any */
	char	   *sku_pattern;	/* NULL: any */
	bool		has_window;
	int32		window_days;
	bool		returnable;
	bool		exchange_only;
} ReturnRuleConf;

static MemoryContext policy_cxt = NULL;
static bool policy_valid = false;
static bool callback_registered = false;
static Oid	channel_rel = InvalidOid;
static Oid	policy_rel = InvalidOid;
static ReturnChannelConf *channels;
static int	nchannels;
static ReturnRuleConf *rules;
static int	nrules;

/* forget the cache when the channels or the rules change */
static void
policy_callback(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == channel_rel || relid == policy_rel)
		policy_valid = false;
}

/* a text column copied into the cache's context (NULL stays NULL) */
static char *
conf_strdup(int row, int col)
{
	char	   *s = ca_get_text(row, col);

	return s ? MemoryContextStrdup(policy_cxt, s) : NULL;
}

/* every channel's return window and cash refund limit (inside SPI) */
static void
load_channels(MemoryContext cxt)
{
	if (SPI_execute("SELECT code, return_window_days,"
					" customer_account.minor_units(cash_refund_limit)"
					" FROM customer_account.channel", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read customer_account.channel");
	nchannels = (int) SPI_processed;
	channels = MemoryContextAllocZero(cxt, sizeof(ReturnChannelConf) * Max(nchannels, 1));
	for (int i = 0; i < nchannels; i++)
	{
		char	   *code = ca_get_text(i, 1);
		bool		n;

		strlcpy(channels[i].code, code, sizeof(channels[i].code));
		channels[i].window_days = ca_get_int32(i, 2, NULL);
		channels[i].cash_limit = ca_get_int64(i, 3, &n);
		channels[i].has_cash_limit = !n;
	}
}

/* the rules of return_policy, most specific first (inside SPI) */
static void
load_rules(MemoryContext cxt)
{
	/* most specific first: the first rule that matches a line wins */
	if (SPI_execute("SELECT channel, channel_kind::text, category, sku_pattern, return_window_days,"
					" returnable, exchange_only FROM customer_account.return_policy"
					" ORDER BY sku_pattern IS NULL, category IS NULL, channel IS NULL,"
					" channel_kind IS NULL, rule_id", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read customer_account.return_policy");
	nrules = (int) SPI_processed;
	rules = MemoryContextAllocZero(cxt, sizeof(ReturnRuleConf) * Max(nrules, 1));
	for (int i = 0; i < nrules; i++)
	{
		ReturnRuleConf *r = &rules[i];
		char	   *channel = ca_get_text(i, 1);
		char	   *kind = ca_get_text(i, 2);
		bool		n;

		r->has_channel = channel != NULL;
		if (channel)
			strlcpy(r->channel, channel, sizeof(r->channel));
		r->kind = -1;
		for (int k = 0; kind && k < CHANNEL_KINDS; k++)
			if (strcmp(kind, ca_channel_kind_names[k]) == 0)
				r->kind = k;
		r->category = conf_strdup(i, 3);
		r->sku_pattern = conf_strdup(i, 4);
		r->window_days = ca_get_int32(i, 5, &n);
		r->has_window = !n;
		r->returnable = ca_get_bool(i, 6, NULL);
		r->exchange_only = ca_get_bool(i, 7, NULL);
	}
}

/* read both tables into a fresh context; the old cache goes only on success */
static void
load_policy(void)
{
	OwnerContext oc;
	MemoryContext cxt;
	MemoryContext old_cxt = policy_cxt;
	Oid			nsp;

	if (!callback_registered)
	{
		ca_watch_relcache(policy_callback);
		callback_registered = true;
	}
	cxt = AllocSetContextCreate(CacheMemoryContext, "customer_account return policy", ALLOCSET_SMALL_SIZES);
	/* mark valid first: an invalidation arriving while we read clears it again */
	policy_valid = true;
	PG_TRY();
	{
		nsp = get_namespace_oid("customer_account", false);
		channel_rel = get_relname_relid("channel", nsp);
		policy_rel = get_relname_relid("return_policy", nsp);
		policy_cxt = cxt;

		ca_become_owner(&oc);
		ca_connect();
		load_channels(cxt);
		load_rules(cxt);
		ca_finish();
		ca_restore_user(&oc);
	}
	PG_CATCH();
	{
		policy_valid = false;
		policy_cxt = old_cxt;
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (old_cxt != NULL)
		MemoryContextDelete(old_cxt);
}

/* the cache, loaded again after a change to either table */
static void
ensure_policy(void)
{
	/* process pending invalidations, so a committed UPDATE is seen now */
	AcceptInvalidationMessages();
	if (!policy_valid)
		load_policy();
}

/* a channel's return window and cash refund limit; RA002 when unknown */
const ReturnChannelConf *
ca_return_channel(const char *code)
{
	ensure_policy();
	for (int i = 0; i < nchannels; i++)
		if (strcmp(channels[i].code, code) == 0)
			return &channels[i];
	ereport(ERROR,
			(errcode(ERRCODE_CA_UNKNOWN),
			 errmsg("unknown channel \"%s\"", code),
			 errhint("Channels are added with customer_account.add_channel().")));
	return NULL;
}

/* the most specific rule that matches a line; none: the channel's window */
void
ca_return_rule(const char *sold_channel, int sold_kind, const char *category, const char *sku,
			   int32 channel_window, int32 *window, bool *returnable, bool *exchange_only)
{
	ensure_policy();
	*window = channel_window;
	*returnable = true;
	*exchange_only = false;
	for (int i = 0; i < nrules; i++)
	{
		const ReturnRuleConf *r = &rules[i];

		if (r->has_channel && strcmp(r->channel, sold_channel) != 0)
			continue;
		if (r->kind >= 0 && r->kind != sold_kind)
			continue;
		if (r->category && (category == NULL || strcmp(r->category, category) != 0))
			continue;
		if (r->sku_pattern && !ca_return_like(sku, r->sku_pattern))
			continue;
		if (r->has_window)
			*window = r->window_days;
		*returnable = r->returnable;
		*exchange_only = r->exchange_only;
		return;
	}
}
