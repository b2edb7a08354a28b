/*-------------------------------------------------------------------------
 *
 * profile.c
 *	  Role profiles and the audit of who booked.
 *
 *	  grant_profile(role, 'pos' | 'shop', channel) restricts a role's
 *	  writes to one channel.  The write paths (place_order, record_payment,
 *	  capture triggers, plain INSERTs) all end in an INSERT into orders or
 *	  payment, most of them inside SECURITY DEFINER functions, where
 *	  current_user is the extension's owner.  So the check runs in a BEFORE
 *	  trigger on those tables and judges GetOuterUserId(): the role of the
 *	  session or the one SET ROLE chose, which SECURITY DEFINER does not
 *	  change.  A role is restricted when it has the privileges of a role
 *	  holding a channel-bound pos or shop profile and of none holding an
 *	  unbound one; superusers are never restricted.
 *
 *	  The grants are read from profile_grant once per backend and kept
 *	  until a relcache invalidation of that table (its config_changed
 *	  trigger sends one with every write); role membership is asked of
 *	  has_privs_of_role(), which keeps its own cache.
 *
 *	  audit_role() is the default of ledger.booked_by, for the same reason:
 *	  a column default of current_user would name the owner.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "profile.h"
#include "relcache_watch.h"

typedef struct ChannelGrant
{
	char		role[NAMEDATALEN];
	char		channel[64];	/* empty: every channel */
} ChannelGrant;

static MemoryContext grant_cxt = NULL;
static ChannelGrant *grants = NULL;
static int	ngrants = 0;
static bool grants_valid = false;
static bool any_bound = false;	/* no channel-bound grant at all: nobody is restricted */
static Oid	grant_relid = InvalidOid;
static bool callback_registered = false;

/* a relcache invalidation of profile_grant drops the cached grants */
static void
grants_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == grant_relid)
		grants_valid = false;
}

/* the pos and shop grants, read straight from the table (no SQL, no rights needed) */
static void
load_grants(void)
{
	Oid			nsp = get_namespace_oid("customer_account", false);
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	int			cap = 16;
	AttrNumber	a_role,
				a_profile,
				a_channel;
	TupleDesc	td;

	grant_relid = get_relname_relid("profile_grant", nsp);
	if (!callback_registered)
	{
		ca_watch_relcache(grants_invalidate);
		callback_registered = true;
	}
	if (grant_cxt == NULL)
		grant_cxt = AllocSetContextCreate(CacheMemoryContext, "customer_account profile grants", ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(grant_cxt);
	grants = MemoryContextAlloc(grant_cxt, sizeof(ChannelGrant) * cap);
	ngrants = 0;
	any_bound = false;
	/* valid from here: an invalidation arriving while we read clears it again */
	grants_valid = true;
	if (!OidIsValid(grant_relid))
		return;

	rel = table_open(grant_relid, AccessShareLock);
	td = RelationGetDescr(rel);
	a_role = get_attnum(grant_relid, "role_name");
	a_profile = get_attnum(grant_relid, "profile");
	a_channel = get_attnum(grant_relid, "channel");
	scan = table_beginscan(rel, GetLatestSnapshot(), 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d;
		char	   *profile;

		d = heap_getattr(tup, a_profile, td, &isnull);
		profile = TextDatumGetCString(d);
		if (strcmp(profile, "pos") != 0 && strcmp(profile, "shop") != 0)
			continue;
		if (ngrants == cap)
		{
			cap *= 2;
			grants = repalloc(grants, sizeof(ChannelGrant) * cap);
		}
		d = heap_getattr(tup, a_role, td, &isnull);
		strlcpy(grants[ngrants].role, NameStr(*DatumGetName(d)), NAMEDATALEN);
		d = heap_getattr(tup, a_channel, td, &isnull);
		if (isnull)
			grants[ngrants].channel[0] = '\0';
		else
		{
			strlcpy(grants[ngrants].channel, TextDatumGetCString(d), sizeof(grants[ngrants].channel));
			any_bound = true;
		}
		ngrants++;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* the channels the role in effect is bound to; NULL when it is not bound */
static char *
bound_channels(Oid role, const char *channel, bool *allowed)
{
	StringInfoData list;
	bool		bound = false;
	bool		unbound = false;

	*allowed = false;
	initStringInfo(&list);
	for (int i = 0; i < ngrants; i++)
	{
		Oid			granted = get_role_oid(grants[i].role, true);

		if (!OidIsValid(granted) || !has_privs_of_role(role, granted))
			continue;
		if (grants[i].channel[0] == '\0')
			unbound = true;
		else
		{
			bound = true;
			appendStringInfo(&list, "%s\"%s\"", list.len ? ", " : "", grants[i].channel);
			if (channel && strcmp(grants[i].channel, channel) == 0)
				*allowed = true;
		}
	}
	if (!bound || unbound)
	{
		*allowed = true;
		return NULL;
	}
	return list.data;
}

/* may the role in effect write for this channel? */
bool
ca_channel_write_allowed(const char *channel)
{
	Oid			role = GetOuterUserId();
	bool		allowed;

	AcceptInvalidationMessages();
	if (!grants_valid)
		load_grants();
	if (!any_bound || superuser_arg(role))
		return true;
	(void) bound_channels(role, channel, &allowed);
	return allowed;
}

/* 42501 unless the role in effect may write for this channel */
void
ca_check_channel_write(const char *channel)
{
	Oid			role = GetOuterUserId();
	bool		allowed;
	char	   *list;

	AcceptInvalidationMessages();
	if (!grants_valid)
		load_grants();
	if (!any_bound || superuser_arg(role))
		return;
	list = bound_channels(role, channel, &allowed);
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("role \"%s\" may not write for channel \"%s\"", GetUserNameFromId(role, false),
						channel ? channel : "(none)"),
				 errdetail("Its profile restricts its writes to channel %s.", list),
				 errhint("grant_profile(role, profile, channel) decides which channel a pos or shop role writes for.")));
}

/*
 * channel_guard: BEFORE INSERT OR UPDATE OF delivered_at, cancelled_at ON
 * orders, BEFORE INSERT ON payment.  The channel of the row must be one the
 * role in effect may write for.
 */
PG_FUNCTION_INFO_V1(channel_guard);
Datum
channel_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trig;
	TupleDesc	td;
	HeapTuple	tup;
	int			attno;
	bool		isnull;
	Datum		d;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("channel_guard: not called by trigger manager")));
	trig = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_BEFORE(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event))
		elog(ERROR, "channel_guard must be fired BEFORE ... FOR EACH ROW");
	td = RelationGetDescr(trig->tg_relation);
	tup = TRIGGER_FIRED_BY_UPDATE(trig->tg_event) ? trig->tg_newtuple : trig->tg_trigtuple;
	attno = SPI_fnumber(td, "channel");
	if (attno <= 0)
		elog(ERROR, "channel_guard: table %s has no column channel", RelationGetRelationName(trig->tg_relation));
	d = heap_getattr(tup, attno, td, &isnull);
	ca_check_channel_write(isnull ? NULL : TextDatumGetCString(d));
	return PointerGetDatum(tup);
}

/* may_write_channel(channel): the same check as a boolean, for SQL write paths */
PG_FUNCTION_INFO_V1(may_write_channel);
Datum
may_write_channel(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ca_channel_write_allowed(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/*
 * audit_role(): the role in effect, also inside SECURITY DEFINER functions
 * (the default of ledger.booked_by)
 */
PG_FUNCTION_INFO_V1(audit_role);
Datum
audit_role(PG_FUNCTION_ARGS)
{
	char	   *name = GetUserNameFromId(GetOuterUserId(), true);

	if (name == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(name));
}
