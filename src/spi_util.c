/*-------------------------------------------------------------------------
 *
 * spi_util.c
 *	  Saved SPI plans and readers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"

#include "spi_util.h"

SPIPlanPtr
ca_prepare(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes)
{
	if (*slot == NULL)
	{
		/*
		 * Always a generic plan: the statements are small index lookups and
		 * single-row writes, and re-planning them per call (the plan cache's
		 * first five custom plans, and any later ones it chooses) would cost
		 * more than executing them.
		 */
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed (%s) for: %s", SPI_result_code_string(SPI_result), sql);
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		*slot = plan;
	}
	return *slot;
}

int
ca_execute(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only, long count)
{
	int			rc = SPI_execute_plan(plan, values, nulls, read_only, count);

	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return rc;
}

Datum
ca_get_datum(int row, int col, bool *isnull)
{
	bool		n;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &n);

	if (isnull)
		*isnull = n;
	return d;
}

int64
ca_get_int64(int row, int col, bool *isnull)
{
	bool		n;
	Datum		d = ca_get_datum(row, col, &n);

	if (isnull)
		*isnull = n;
	return n ? 0 : DatumGetInt64(d);
}

int32
ca_get_int32(int row, int col, bool *isnull)
{
	bool		n;
	Datum		d = ca_get_datum(row, col, &n);

	if (isnull)
		*isnull = n;
	return n ? 0 : DatumGetInt32(d);
}

bool
ca_get_bool(int row, int col, bool *isnull)
{
	bool		n;
	Datum		d = ca_get_datum(row, col, &n);

	if (isnull)
		*isnull = n;
	return n ? false : DatumGetBool(d);
}

TimestampTz
ca_get_timestamptz(int row, int col, bool *isnull)
{
	bool		n;
	Datum		d = ca_get_datum(row, col, &n);

	if (isnull)
		*isnull = n;
	return n ? 0 : DatumGetTimestampTz(d);
}

char *
ca_get_text(int row, int col)
{
	bool		n;
	Datum		d = ca_get_datum(row, col, &n);

	return n ? NULL : TextDatumGetCString(d);
}

void
ca_connect(void)
{
	int			rc = SPI_connect();

	if (rc != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed: %s", SPI_result_code_string(rc));
}

void
ca_finish(void)
{
	int			rc = SPI_finish();

	if (rc != SPI_OK_FINISH)
		elog(ERROR, "SPI_finish failed: %s", SPI_result_code_string(rc));
}
