/*-------------------------------------------------------------------------
 *
 * relcache_watch.c
 *	  One relcache invalidation callback for the whole extension.
 *
 *	  A backend has room for ten relcache callbacks (MAX_RELCACHE_CALLBACKS)
 *	  for the server and every library it loads together, and running out
 *	  is FATAL for the session.  The extension's caches (relation OIDs,
 *	  configuration, loyalty, returns, capture maps, grants, restore) each
 *	  need to hear of their tables' changes, so they register here, and
 *	  this file takes the one slot and passes every invalidation on.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/inval.h"

#include "relcache_watch.h"

#define CA_MAX_WATCHERS 32

static RelcacheCallbackFunction watchers[CA_MAX_WATCHERS];
static int	n_watchers = 0;

/* the extension's one relcache callback: every watcher hears of relid */
static void
dispatch_relcache(Datum arg, Oid relid)
{
	for (int i = 0; i < n_watchers; i++)
		watchers[i] ((Datum) 0, relid);
}

/* call fn(0, relid) on every relcache invalidation in this backend (once per fn) */
void
ca_watch_relcache(RelcacheCallbackFunction fn)
{
	for (int i = 0; i < n_watchers; i++)
		if (watchers[i] == fn)
			return;
	if (n_watchers >= CA_MAX_WATCHERS)
		elog(ERROR, "customer_account: too many relcache watchers");
	if (n_watchers == 0)
		CacheRegisterRelcacheCallback(dispatch_relcache, (Datum) 0);
	watchers[n_watchers++] = fn;
}
