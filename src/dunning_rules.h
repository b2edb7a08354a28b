/*-------------------------------------------------------------------------
 *
 * dunning_rules.h
 *	  The dunning ladder as a pure function.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_DUNNING_RULES_H
#define CUSTOMER_ACCOUNT_DUNNING_RULES_H

#include "postgres.h"

typedef struct DunningStep
{
	int32		level;
	int32		days_overdue;	/* oldest undisputed item at least this late */
	int32		delay_days;		/* and this long after the previous notice */
	int64		fee;			/* minor units */
} DunningStep;

/*
 * The level to notify at on run_day, or 0 for none.  One level per run:
 * level N only after N-1 and its delay.  Days are day numbers.
 */
extern int32 ca_dunning_next_level(int32 current_level, int32 last_notice_day, bool has_last_notice,
								int32 run_day, int32 oldest_overdue_days, int64 overdue,
								int64 tolerance, const DunningStep *steps, int nsteps);

#endif
