/*-------------------------------------------------------------------------
 *
 * posting_int.h
 *	  What the files of the posting core (ledger.c, account_state.c,
 *	  open_items.c, orders.c, payments.c, merge.c) share among themselves:
 *	  small tuple and trigger helpers, and the few cross-file entry points.
 *	  Nothing outside the posting core includes this file.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_POSTING_INT_H
#define CUSTOMER_ACCOUNT_POSTING_INT_H

#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"

#include "currency.h"
#include "money.h"
#include "posting.h"

/* set while merge_customers() moves rows, so the order and payment guards let it (merge.c) */
extern bool ca_merging;

/* RA002: customer_id was merged into merged_into (account_state.c) */
extern void ca_merged_error(int64 customer_id, int64 merged_into);

/* open_items.c: a new open item */
extern void ca_insert_item(int64 customer_id, const char *currency, const char *kind, const char *order_no,
						   int64 amount, TimestampTz created_at, TimestampTz due_at);
/* open_items.c: money applied to the items of order_no first, then the oldest due */
extern int64 ca_apply_money(int64 customer_id, const char *currency, const char *order_no, int64 amount,
							TimestampTz at, const char *payment_ref, int32 *orders_paid);
/* open_items.c: close what is still open of an order; returns that amount */
extern int64 ca_close_order_items(const char *order_no, TimestampTz at);

/* a text Datum for an SPI parameter, or a null flag when s is NULL */
static inline Datum
text_or_null(const char *s, char *null_flag)
{
	if (s == NULL)
	{
		*null_flag = 'n';
		return (Datum) 0;
	}
	*null_flag = ' ';
	return CStringGetTextDatum(s);
}

/* a text column of a trigger tuple as a C string, NULL when null */
static inline char *
tuple_text(HeapTuple tup, TupleDesc td, const char *col)
{
	int			attno = SPI_fnumber(td, col);
	bool		isnull;
	Datum		d;

	if (attno <= 0)
		elog(ERROR, "column \"%s\" not found", col);
	d = SPI_getbinval(tup, td, attno, &isnull);
	return isnull ? NULL : TextDatumGetCString(d);
}

/* a column of a trigger tuple by name */
static inline Datum
tuple_datum(HeapTuple tup, TupleDesc td, const char *col, bool *isnull)
{
	int			attno = SPI_fnumber(td, col);

	if (attno <= 0)
		elog(ERROR, "column \"%s\" not found", col);
	return SPI_getbinval(tup, td, attno, isnull);
}

/* does column col differ between two versions of a row? */
static inline bool
column_changed(HeapTuple a, HeapTuple b, TupleDesc td, const char *col)
{
	bool		na,
				nb;
	int			attno = SPI_fnumber(td, col);
	Form_pg_attribute att = TupleDescAttr(td, attno - 1);
	Datum		da = SPI_getbinval(a, td, attno, &na);
	Datum		db = SPI_getbinval(b, td, attno, &nb);

	if (na || nb)
		return na != nb;
	return !datumIsEqual(da, db, att->attbyval, att->attlen);
}

/* the ISO code of an amount's currency (palloc'd) */
static inline char *
currency_text(const CurrencyAmount *ca)
{
	char	   *iso = palloc(4);

	ca_currency_unpack(ca->code, iso);
	return iso;
}

/* minor units of a currency as text, for messages */
static inline char *
format_amount(int64 units, const char *currency)
{
	CurrencyAmount ca;

	ca.units = units;
	ca.code = ca_currency_pack(currency, 3);
	ca.pad = 0;
	return ca_currency_amount_to_cstring(&ca);
}

/* the trigger data, or an error when not called as a trigger */
static inline TriggerData *
check_trigger(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s: not called by trigger manager", name)));
	return (TriggerData *) fcinfo->context;
}

/* refuse an UPDATE or DELETE of something the books keep (55000) */
static inline void
refuse_change(const char *what, const char *key, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s \"%s\" cannot be changed", what, key),
			 errhint("%s", hint)));
}

#endif
