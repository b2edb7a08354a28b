/*-------------------------------------------------------------------------
 *
 * capture.h
 *	  Capture triggers: a shop's own order, line, payment and return tables
 *	  feeding the central account.  capture_map.c reads a trigger's
 *	  arguments into a CaptureMap (cached per trigger); capture.c books
 *	  what the mapped rows say.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CUSTOMER_ACCOUNT_CAPTURE_H
#define CUSTOMER_ACCOUNT_CAPTURE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "commands/trigger.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/relcache.h"

#include "money.h"

typedef enum CaptureKind
{
	CAPTURE_ORDER,
	CAPTURE_LINE,
	CAPTURE_PAYMENT,
	CAPTURE_RETURN,
	CAPTURE_KINDS
} CaptureKind;

extern const char *const ca_capture_function_names[CAPTURE_KINDS];
extern const char *const ca_capture_kind_names[CAPTURE_KINDS];

/* the settings a trigger argument may name (key=value) */
typedef enum CaptureSetting
{
	CS_ORDER_NO,
	CS_PAYMENT_REF,
	CS_RETURN_NO,
	CS_CUSTOMER,
	CS_CHANNEL,
	CS_TOTAL,
	CS_AMOUNT,
	CS_CURRENCY,
	CS_METHOD,
	CS_METHOD_MAP,
	CS_STATUS,
	CS_STATUS_MAP,
	CS_PLACED_AT,
	CS_DELIVERED_AT,
	CS_CANCELLED_AT,
	CS_RECEIVED_AT,
	CS_LINES,
	CS_SKU,
	CS_QTY,
	CS_UNIT_PRICE,
	CS_LINE_TOTAL,
	CS_LINE_KEY,
	CS_RETURNABLE,
	CS_CATEGORY,
	CS_PREFIX,
	CS_ORDER_PREFIX,
	CS_IDENTITY_PREFIX,
	CS_CREATE_CUSTOMER,
	CS_ADJUST_SKU,
	CS_ON_ERROR,
	CS_COUNT
} CaptureSetting;

/* where a value comes from: a column of the row or a constant */
typedef enum SourceKind
{
	SRC_NONE = 0,
	SRC_COLUMN,
	SRC_CONST
} SourceKind;

typedef struct CaptureSource
{
	SourceKind	kind;
	int			argno;			/* 1-based trigger argument, 0 when defaulted */
	const char *arg;			/* the argument as written, for messages */
	const char *colname;
	AttrNumber	attno;
	Oid			typid;			/* base type of the column */
	bool		minor;			/* an amount in minor units (minor:column) */
	const char *value;			/* the constant */
} CaptureSource;

/* shop value -> our value, from 'a:b,c:d' ('*' matches any other value) */
typedef struct CaptureValueMap
{
	int			n;
	char	  **from;
	char	  **to;
	const char *other;			/* the '*' entry, or NULL */
} CaptureValueMap;

/* how the customer is recognised */
typedef enum CustomerKind
{
	CUSTOMER_ID,
	CUSTOMER_EMAIL,
	CUSTOMER_PHONE,
	CUSTOMER_LOYALTY_CARD,
	CUSTOMER_MARKETPLACE,
	CUSTOMER_EXTERNAL
} CustomerKind;

extern const char *const ca_capture_customer_kinds[];

/* create_customer=name:col,email:col,phone:col,language:col|const:xx */
typedef struct CreateCustomer
{
	bool		allowed;
	CaptureSource name;
	CaptureSource email;
	CaptureSource phone;
	CaptureSource language;
} CreateCustomer;

typedef struct CaptureMap
{
	Oid			tgoid;
	Oid			relid;
	char	   *tgname;
	char	   *relname;		/* schema-qualified, for messages and SQL */
	Oid			reltype;		/* the table's row type */
	Oid			money_type;		/* customer_account.currency_amount */
	CaptureKind kind;
	bool		quarantine;		/* on_error=quarantine */
	CaptureSource src[CS_COUNT];
	CaptureValueMap method_map;
	CaptureValueMap status_map;
	CustomerKind customer_kind;
	CreateCustomer create;
	const char *prefix;
	const char *order_prefix;
	const char *identity_prefix;
	const char *adjust_sku;
	Oid			lines_relid;	/* capture_order: lines=table, or InvalidOid (none) */
	/* capture_order_line: the capture_order trigger that names this table */
	Oid			link_tgoid;
	Oid			link_relid;
} CaptureMap;

/* the settings' names, for messages */
extern const char *ca_capture_setting_name(CaptureSetting s);

/* parse a trigger's arguments; errors name the trigger, argument and column */
extern CaptureMap *ca_capture_parse(Relation rel, const Trigger *trigger, CaptureKind kind, MemoryContext cxt);
/* the cached map of a trigger (parsed once, dropped on a relcache change of its table) */
extern CaptureMap *ca_capture_map_get(Relation rel, const Trigger *trigger, CaptureKind kind);
/* which capture function a trigger calls, or -1 */
extern int	ca_capture_kind_of_function(Oid funcoid);
/* the trigger of rel with this OID or name, or NULL */
extern const Trigger *ca_capture_find_trigger(Relation rel, Oid tgoid, const char *tgname);
/* the capture_order trigger whose lines= names lines_relid (InvalidOid when none) */
extern Oid	ca_capture_find_order_trigger(Oid lines_relid, Oid *order_relid);

/* ------------------------------------------------------------------------
 * reading mapped values from a row; the error context names the argument
 * ------------------------------------------------------------------------
 */
typedef struct CaptureErrorContext
{
	const CaptureMap *map;
	int			setting;		/* the setting being read, or -1 */
	const char *key;			/* the shop's key of the row, when known */
	const char *doing;			/* e.g. "booking order" */
} CaptureErrorContext;

extern void ca_capture_push_context(CaptureErrorContext *ec, ErrorContextCallback *cb, const CaptureMap *map);
extern void ca_capture_pop_context(ErrorContextCallback *cb);
extern CaptureErrorContext *ca_capture_current_context(void);

/* a source's value as text (a column's output or the constant); NULL when null */
extern char *ca_capture_source_text(const CaptureSource *src, HeapTuple tup, TupleDesc td);
/* the value as text (a column's output or the constant); NULL when null or unmapped */
extern char *ca_capture_text(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td);
/* the same, but NULL is an error naming the argument */
extern char *ca_capture_text_required(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td);
/* an amount; currency is used when the value carries none */
extern bool ca_capture_amount(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td,
						   const char *currency, CurrencyAmount *out);
extern bool ca_capture_time(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td, TimestampTz *out);
extern bool ca_capture_int64(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td, int64 *out);
extern bool ca_capture_bool(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td, bool *out);
/* map a value through a value map; NULL when unmapped and no '*' */
extern const char *ca_capture_lookup(const CaptureValueMap *vm, const char *value);
/* raise the error for a value the map does not cover */
extern void ca_capture_unmapped(const CaptureMap *m, CaptureSetting map_setting, CaptureSetting column_setting,
							 const char *value) pg_attribute_noreturn();

/* point the error context at a setting while other code reads it; restore with the result */
extern int	ca_capture_enter_setting(const CaptureMap *m, int setting);
extern void ca_capture_leave_setting(const CaptureMap *m, int prev);

/* ------------------------------------------------------------------------
 * shared by the capture files (capture.c, capture_book.c,
 * capture_customer.c, capture_admin.c)
 * ------------------------------------------------------------------------
 */

/* what reconciling one key did */
typedef enum CaptureOutcome
{
	OUT_BOOKED,					/* newly booked */
	OUT_CHANGED,				/* a delivery or cancellation booked */
	OUT_UNCHANGED,				/* the account already agrees */
	OUT_NOT_BOOKED,				/* on hold, or cancelled before it was booked */
	OUT_WAITING,				/* a payment waiting for its order */
	OUT_QUARANTINED,
	OUT_COUNT
} CaptureOutcome;

extern const char *const ca_capture_outcome_names[OUT_COUNT];
extern const char *const ca_capture_order_events[];	/* place, hold, deliver, cancel */
extern const char *const ca_capture_book_events[];	/* book, hold */

/* one unit of work: reconcile the key of a map (and the row when at hand) */
typedef struct CaptureJob
{
	CaptureMap *map;
	Relation	rel;
	const char *key;
	HeapTuple	tup;			/* NULL: read the row by key */
	bool		check_lines;	/* compare the lines of a booked order */
	bool		validate_only;	/* row time: check the row, book nothing */
} CaptureJob;

/* run a job in its own SPI connection, in a subtransaction when failures
 * go to the quarantine (quarantine) or back to the caller (edata) */
extern CaptureOutcome ca_capture_run(CaptureJob *j, bool quarantine, ErrorData **edata);
/* the message of a failure, with the context line naming the argument */
extern char *ca_capture_error_reason(ErrorData *edata);

/* capture_book.c: reconciling the account with the shop's rows */
extern CaptureOutcome ca_capture_reconcile_order(CaptureMap *om, Relation rel, const char *key, HeapTuple tup,
												 bool check_lines, bool validate_only);
extern CaptureOutcome ca_capture_reconcile_payment(CaptureMap *pm, Relation rel, const char *key, HeapTuple tup,
												   bool validate_only);
extern CaptureOutcome ca_capture_reconcile_return(CaptureMap *rm, Relation rel, const char *key, HeapTuple tup,
												  bool validate_only);
extern void ca_capture_validate_line(const CaptureMap *lm, HeapTuple tup, TupleDesc td);
extern Oid	ca_capture_accept_return_oid(void);

/* capture_book.c: statements over the shop's tables */
extern SPIPlanPtr ca_capture_plan(const char *sql, int nargs, Oid *types);
extern Datum ca_capture_key_datum(Relation rel, AttrNumber attno, const char *key, Oid *type);
extern HeapTuple ca_capture_row_tuple(Datum d, Oid relid);
extern Datum ca_capture_row_image(const CaptureMap *m, Relation rel, HeapTuple tup, const char *key, bool *isnull);
extern CaptureSetting ca_capture_key_setting(CaptureKind kind);
extern char *ca_capture_upper_trim(const char *s);

/* capture_customer.c */
extern int64 ca_capture_resolve_customer(const CaptureMap *m, HeapTuple tup, TupleDesc td, bool create,
										 TimestampTz since, bool *found);
extern void ca_capture_unknown_customer(const CaptureMap *m, HeapTuple tup, TupleDesc td) pg_attribute_noreturn();

/* a text Datum, or the null flag */
static inline Datum
ca_capture_text_or_null(const char *s, char *null_flag)
{
	*null_flag = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

#endif
