/*-------------------------------------------------------------------------
 *
 * channel_kind.h
 *	  The channel kinds of the contract, in the order of the enum
 *	  customer_account.channel_kind (names in config.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_CHANNEL_KIND_H
#define CUSTOMER_ACCOUNT_CHANNEL_KIND_H

#define CHANNEL_KINDS 5
extern const char *const ca_channel_kind_names[CHANNEL_KINDS];

#endif
