/*-------------------------------------------------------------------------
 *
 * customer_account.c
 *	  Module entry: PG_MODULE_MAGIC and the settings of the extension.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* no settings yet; reserve the prefix so that typos are reported */
	MarkGUCPrefixReserved("customer_account");
}
