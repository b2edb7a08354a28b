/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *	  Saved SPI plans and small readers shared by the C parts that query
 *	  the extension's tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_SPI_UTIL_H
#define CUSTOMER_ACCOUNT_SPI_UTIL_H

#include "postgres.h"
#include "executor/spi.h"
#include "utils/timestamp.h"

/* RA001: business refusal; RA002: unknown customer, order, channel, method */
#define ERRCODE_CA_REFUSED		MAKE_SQLSTATE('R','A','0','0','1')
#define ERRCODE_CA_UNKNOWN		MAKE_SQLSTATE('R','A','0','0','2')

/* prepare sql once per backend and keep it (SPI_keepplan) */
extern SPIPlanPtr ca_prepare(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes);
/* execute a saved plan; raises on an unexpected SPI result */
extern int	ca_execute(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only, long count);

/* readers for SPI_tuptable->vals[row] column col (1-based) */
extern int64 ca_get_int64(int row, int col, bool *isnull);
extern int32 ca_get_int32(int row, int col, bool *isnull);
extern bool ca_get_bool(int row, int col, bool *isnull);
extern TimestampTz ca_get_timestamptz(int row, int col, bool *isnull);
extern char *ca_get_text(int row, int col);		/* NULL when null */
extern Datum ca_get_datum(int row, int col, bool *isnull);

extern void ca_connect(void);
extern void ca_finish(void);

#endif
