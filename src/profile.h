/*-------------------------------------------------------------------------
 *
 * profile.h
 *	  Role profiles: the channel a pos or shop role may write for, judged
 *	  by the role in effect (SET ROLE counts, SECURITY DEFINER does not).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_PROFILE_H
#define CUSTOMER_ACCOUNT_PROFILE_H

#include "postgres.h"

/* may the role in effect write for this channel? */
extern bool ca_channel_write_allowed(const char *channel);
/* 42501 unless it may; every write path that names a channel calls this */
extern void ca_check_channel_write(const char *channel);

#endif
