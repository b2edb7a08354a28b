/*-------------------------------------------------------------------------
 *
 * dunning_rules.c
 *	  Which reminder a customer gets today.  Pure: no SPI, no catalog.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "dunning_rules.h"

int32
ca_dunning_next_level(int32 current_level, int32 last_notice_day, bool has_last_notice,
				   int32 run_day, int32 oldest_overdue_days, int64 overdue,
				   int64 tolerance, const DunningStep *steps, int nsteps)
{
	const DunningStep *next = NULL;

	/* small overdue amounts below the tolerance are not dunned */
	if (overdue <= tolerance)
		return 0;
	for (int i = 0; i < nsteps; i++)
		if (steps[i].level == current_level + 1)
			next = &steps[i];
	if (next == NULL)
		return 0;				/* at the top of the ladder */
	if (oldest_overdue_days < next->days_overdue)
		return 0;
	if (current_level > 0 && has_last_notice && run_day - last_notice_day < next->delay_days)
		return 0;
	return next->level;
}
