/*-------------------------------------------------------------------------
 *
 * relcache_watch.h
 *	  One relcache invalidation callback for the whole extension.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_RELCACHE_WATCH_H
#define CUSTOMER_ACCOUNT_RELCACHE_WATCH_H

#include "postgres.h"
#include "utils/inval.h"

/* call fn(0, relid) on every relcache invalidation in this backend (once per fn) */
extern void ca_watch_relcache(RelcacheCallbackFunction fn);

#endif
