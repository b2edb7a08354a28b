/*-------------------------------------------------------------------------
 *
 * capture_map.c
 *	  The arguments of a capture trigger, read once per trigger.
 *
 *	  A DBA attaches capture_order(), capture_order_line(),
 *	  capture_payment() or capture_return() to a shop's own table and maps
 *	  its columns with key=value arguments ('order_no=id',
 *	  'customer=email:customer_email', 'channel=const:web-de', ...).  This
 *	  file parses them into a CaptureMap (columns resolved to attribute
 *	  numbers, types checked, value maps split), keeps it per trigger OID in
 *	  a backend-local cache that a relcache invalidation of the table drops
 *	  (ALTER TABLE, CREATE/DROP TRIGGER, ...), and reads mapped values out
 *	  of a row.  Every error names the trigger, the argument and the column.
 *
 *	  Like contrib/spi/refint.c and moddatetime.c: check how we were
 *	  called, read tgargs, validate, act; unlike them, the parse is cached.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "capture.h"
#include "currency.h"
#include "money.h"
#include "relcache_watch.h"

/* the money type's constructors (money.c) */
extern PGDLLEXPORT Datum currency_amount_in(PG_FUNCTION_ARGS);
extern PGDLLEXPORT Datum currency_amount_from_numeric(PG_FUNCTION_ARGS);

const char *const ca_capture_function_names[CAPTURE_KINDS] =
{"capture_order", "capture_order_line", "capture_payment", "capture_return"};
const char *const ca_capture_kind_names[CAPTURE_KINDS] = {"order", "line", "payment", "return"};
const char *const ca_capture_customer_kinds[] =
{"id", "email", "phone", "loyalty_card", "marketplace", "external", NULL};

/* ------------------------------------------------------------------------
 * the settings
 * ------------------------------------------------------------------------
 */
#define K_O (1 << CAPTURE_ORDER)
#define K_L (1 << CAPTURE_LINE)
#define K_P (1 << CAPTURE_PAYMENT)
#define K_R (1 << CAPTURE_RETURN)
#define K_ALL (K_O | K_L | K_P | K_R)

/*
 * form: 's' a column or const:value; 'a' the same plus minor:column (an
 * amount); 'c' customer kind:column; 'm' a value map; 't' a text constant;
 * 'n' create_customer; 'l' lines=table|none; 'e' on_error.
 * vclass (for column types): 'x' any, 'a' amount, 't' time, 'i' whole
 * number, 'b' boolean.
 */
typedef struct SettingDef
{
	const char *name;
	char		form;
	char		vclass;
	uint8		allowed;
	uint8		required;
} SettingDef;

static const SettingDef settings[CS_COUNT] = {
	[CS_ORDER_NO] = {"order_no", 's', 'x', K_ALL, K_O | K_L | K_R},
	[CS_PAYMENT_REF] = {"payment_ref", 's', 'x', K_P, K_P},
	[CS_RETURN_NO] = {"return_no", 's', 'x', K_R, K_R},
	[CS_CUSTOMER] = {"customer", 'c', 'x', K_O | K_P, K_O},
	[CS_CHANNEL] = {"channel", 's', 'x', K_O | K_P | K_R, K_O | K_P | K_R},
	[CS_TOTAL] = {"total", 'a', 'a', K_O, 0},
	[CS_AMOUNT] = {"amount", 'a', 'a', K_P, K_P},
	[CS_CURRENCY] = {"currency", 's', 'x', K_O | K_L | K_P, 0},
	[CS_METHOD] = {"method", 's', 'x', K_O | K_P, K_O | K_P},
	[CS_METHOD_MAP] = {"method_map", 'm', 'x', K_O | K_P, 0},
	[CS_STATUS] = {"status", 's', 'x', K_O | K_P | K_R, 0},
	[CS_STATUS_MAP] = {"status_map", 'm', 'x', K_O | K_P | K_R, 0},
	[CS_PLACED_AT] = {"placed_at", 's', 't', K_O, 0},
	[CS_DELIVERED_AT] = {"delivered_at", 's', 't', K_O, 0},
	[CS_CANCELLED_AT] = {"cancelled_at", 's', 't', K_O, 0},
	[CS_RECEIVED_AT] = {"received_at", 's', 't', K_P, 0},
	[CS_LINES] = {"lines", 'l', 'x', K_O, 0},
	[CS_SKU] = {"sku", 's', 'x', K_O | K_L | K_R, K_L | K_R},
	[CS_QTY] = {"qty", 's', 'i', K_L | K_R, K_L | K_R},
	[CS_UNIT_PRICE] = {"unit_price", 'a', 'a', K_L, 0},
	[CS_LINE_TOTAL] = {"line_total", 'a', 'a', K_L, 0},
	[CS_LINE_KEY] = {"line_key", 's', 'x', K_L, 0},
	[CS_RETURNABLE] = {"returnable", 's', 'b', K_O | K_L, 0},
	[CS_CATEGORY] = {"category", 's', 'x', K_L, 0},
	[CS_PREFIX] = {"prefix", 't', 'x', K_O | K_P | K_R, 0},
	[CS_ORDER_PREFIX] = {"order_prefix", 't', 'x', K_P | K_R, 0},
	[CS_IDENTITY_PREFIX] = {"identity_prefix", 't', 'x', K_O | K_P, 0},
	[CS_CREATE_CUSTOMER] = {"create_customer", 'n', 'x', K_O, 0},
	[CS_ADJUST_SKU] = {"adjust_sku", 't', 'x', K_O, 0},
	[CS_ON_ERROR] = {"on_error", 'e', 'x', K_ALL, 0},
};

static const char *const order_events[] = {"place", "hold", "deliver", "cancel", NULL};
static const char *const book_events[] = {"book", "hold", NULL};

/* the name a trigger argument uses for a setting */
const char *
ca_capture_setting_name(CaptureSetting s)
{
	return settings[s].name;
}

/* the state of one parse, for messages */
typedef struct ArgParse
{
	Relation	rel;
	const Trigger *trigger;
	CaptureMap *map;
	int			argno;
	const char *arg;
	Oid			money_type;
} ArgParse;

#define TRIGGER_PREFIX_FMT "capture trigger \"%s\" on %s: "

/* the columns of the table, for a hint */
static char *
column_list(Relation rel)
{
	StringInfoData buf;
	TupleDesc	td = RelationGetDescr(rel);
	int			shown = 0;

	initStringInfo(&buf);
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		if (att->attisdropped)
			continue;
		if (shown == 20)
		{
			appendStringInfoString(&buf, ", ...");
			break;
		}
		appendStringInfo(&buf, "%s%s", shown ? ", " : "", quote_identifier(NameStr(att->attname)));
		shown++;
	}
	return buf.data;
}

/* a value class in words, for messages */
static const char *
vclass_name(char vclass)
{
	switch (vclass)
	{
		case 'a':
			return "an amount";
		case 't':
			return "a time";
		case 'i':
			return "a whole number";
		case 'b':
			return "a boolean";
	}
	return "a value";
}

/* may a column of base type typid hold a value of this class? */
static bool
type_fits(Oid typid, char vclass, bool minor, Oid money_type)
{
	bool		textual = (typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID);
	bool		integral = (typid == INT2OID || typid == INT4OID || typid == INT8OID);

	switch (vclass)
	{
		case 'a':
			if (minor)
				return integral || typid == NUMERICOID || textual;
			return integral || textual || typid == NUMERICOID || typid == FLOAT4OID
				|| typid == FLOAT8OID || typid == money_type;
		case 't':
			return textual || typid == TIMESTAMPTZOID || typid == TIMESTAMPOID || typid == DATEOID;
		case 'i':
			return integral || textual || typid == NUMERICOID;
		case 'b':
			return textual || typid == BOOLOID;
	}
	return true;
}

/* which column types a value class takes, for hints */
static const char *
type_hint(char vclass)
{
	switch (vclass)
	{
		case 'a':
			return "An amount column is numeric, an integer, a float, text such as '19.99 EUR', or customer_account.currency_amount; minor:column takes whole minor units (cents).";
		case 't':
			return "A time column is timestamptz, timestamp, date or text.";
		case 'i':
			return "A whole number column is an integer, a numeric without fraction, or text.";
		case 'b':
			return "A boolean column is boolean or text (true/false, yes/no, 1/0).";
	}
	return NULL;
}

/* resolve a column or constant source */
static void
parse_source(ArgParse *ps, CaptureSetting s, const char *value, CaptureSource *src, char vclass)
{
	const SettingDef *def = &settings[s];
	TupleDesc	td = RelationGetDescr(ps->rel);
	const char *col = value;
	int			attno;

	src->argno = ps->argno;
	src->arg = ps->arg;
	if (strncmp(value, "const:", 6) == 0)
	{
		src->kind = SRC_CONST;
		src->value = value + 6;
		if (src->value[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" has an empty constant",
							ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg)));
		return;
	}
	if (def->form == 'a' && strncmp(value, "minor:", 6) == 0)
	{
		src->minor = true;
		col = value + 6;
	}
	if (col[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" names no column",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg),
				 errhint("Write %s=column or %s=const:value.", def->name, def->name)));
	attno = SPI_fnumber(td, col);
	if (attno <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" names column \"%s\", which does not exist",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, col),
				 errhint("Columns of %s: %s.", ps->map->relname, column_list(ps->rel))));
	src->kind = SRC_COLUMN;
	src->colname = pstrdup(NameStr(TupleDescAttr(td, attno - 1)->attname));
	src->attno = attno;
	src->typid = getBaseType(TupleDescAttr(td, attno - 1)->atttypid);
	if (!type_fits(src->typid, vclass, src->minor, ps->money_type))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" names column \"%s\" of type %s, which is not %s",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, col,
						format_type_be(TupleDescAttr(td, attno - 1)->atttypid), vclass_name(vclass)),
				 errhint("%s", type_hint(vclass))));
}

/* is v one of the NULL-terminated list? */
static bool
in_list(const char *v, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(list[i], v) == 0)
			return true;
	return false;
}

/* 'from:to,from:to' (the last colon splits, so shop values may hold colons) */
static void
parse_value_map(ArgParse *ps, const char *value, CaptureValueMap *vm, const char *const *targets)
{
	char	   *copy = pstrdup(value);
	char	   *item;
	char	   *save = NULL;
	int			cap = 8;

	vm->from = palloc(sizeof(char *) * cap);
	vm->to = palloc(sizeof(char *) * cap);
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save))
	{
		char	   *colon = strrchr(item, ':');
		char	   *from;
		char	   *to;

		if (colon == NULL || colon == item || colon[1] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" is not shop_value:our_value",
							ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, item),
					 errhint("Write a map like cancelled:cancel,completed:deliver; * stands for every other value.")));
		*colon = '\0';
		from = item;
		to = colon + 1;
		if (targets && !in_list(to, targets))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" maps \"%s\" to \"%s\", which is not an event",
							ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, from, to),
					 errhint("%s", targets == order_events ? "Order events are place, hold, deliver and cancel."
							 : "Events are book and hold.")));
		if (strcmp(from, "*") == 0)
		{
			vm->other = to;
			continue;
		}
		for (int i = 0; i < vm->n; i++)
			if (strcmp(vm->from[i], from) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" maps \"%s\" twice",
								ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, from)));
		if (vm->n == cap)
		{
			cap *= 2;
			vm->from = repalloc(vm->from, sizeof(char *) * cap);
			vm->to = repalloc(vm->to, sizeof(char *) * cap);
		}
		vm->from[vm->n] = from;
		vm->to[vm->n] = to;
		vm->n++;
	}
	if (vm->n == 0 && vm->other == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" maps nothing",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg)));
}

/* customer=kind:column (or kind:const:value) */
static void
parse_customer(ArgParse *ps, const char *value)
{
	const char *colon = strchr(value, ':');
	char	   *kind;
	int			k;

	if (colon == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" names no identity kind",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg),
				 errhint("Write customer=id:column (the account's customer id) or customer=email:column; kinds are id, email, phone, loyalty_card, marketplace and external.")));
	kind = pnstrdup(value, colon - value);
	for (k = 0; ca_capture_customer_kinds[k]; k++)
		if (strcmp(ca_capture_customer_kinds[k], kind) == 0)
			break;
	if (ca_capture_customer_kinds[k] == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" is not an identity kind",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, kind),
				 errhint("Kinds are id, email, phone, loyalty_card, marketplace and external.")));
	ps->map->customer_kind = (CustomerKind) k;
	parse_source(ps, CS_CUSTOMER, colon + 1, &ps->map->src[CS_CUSTOMER], k == CUSTOMER_ID ? 'i' : 'x');
}

/* create_customer=name:column[,email:column][,phone:column][,language:column|const:xx] */
static void
parse_create(ArgParse *ps, const char *value)
{
	char	   *copy = pstrdup(value);
	char	   *item;
	char	   *save = NULL;
	CreateCustomer *cc = &ps->map->create;

	cc->allowed = true;
	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save))
	{
		char	   *colon = strchr(item, ':');
		CaptureSource *dst;

		if (colon == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" is not field:column",
							ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, item),
					 errhint("Write create_customer=name:billing_name,email:customer_email (fields name, email, phone, language).")));
		*colon = '\0';
		if (strcmp(item, "name") == 0)
			dst = &cc->name;
		else if (strcmp(item, "email") == 0)
			dst = &cc->email;
		else if (strcmp(item, "phone") == 0)
			dst = &cc->phone;
		else if (strcmp(item, "language") == 0)
			dst = &cc->language;
		else
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" is not a customer field",
							ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, item),
					 errhint("Fields are name, email, phone and language.")));
		parse_source(ps, CS_CREATE_CUSTOMER, colon + 1, dst, 'x');
	}
	if (cc->name.kind == SRC_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" needs name:column",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg),
				 errhint("A new account needs a name, e.g. create_customer=name:billing_name.")));
}

/* a table name; unqualified names are looked up in the schema of the trigger's table */
static Oid
resolve_table(const char *name, Oid default_nsp, bool missing_ok)
{
	if (strchr(name, '.') != NULL || strchr(name, '"') != NULL)
	{
		List	   *names = stringToQualifiedNameList(name);

		if (list_length(names) > 1)
			return RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, missing_ok);
		return get_relname_relid(strVal(linitial(names)), default_nsp);
	}
	return get_relname_relid(name, default_nsp);
}

/* lines=schema.table (the capture_order_line table) or lines=none */
static void
parse_lines(ArgParse *ps, const char *value)
{
	Oid			relid;

	if (strcmp(value, "none") == 0)
		return;
	relid = resolve_table(value, RelationGetNamespace(ps->rel), true);
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" names table \"%s\", which does not exist",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, value),
				 errhint("Write lines=schema.table for the table of order lines (it carries a capture_order_line trigger), or lines=none.")));
	if (relid == RelationGetRelid(ps->rel))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" names the order table itself",
						ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg)));
	ps->map->lines_relid = relid;
}

/* the whole-argument rules that no single argument can check */
static void
check_combinations(ArgParse *ps)
{
	CaptureMap *m = ps->map;
	const char *tg = ps->trigger->tgname;

	for (int s = 0; s < CS_COUNT; s++)
		if ((settings[s].required & (1 << m->kind)) && m->src[s].argno == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "%s() needs the argument %s=",
							tg, m->relname, ca_capture_function_names[m->kind], settings[s].name),
					 errhint("See \"Capture triggers\" in the README for every setting.")));
	{
		int			key = m->kind == CAPTURE_PAYMENT ? CS_PAYMENT_REF : m->kind == CAPTURE_RETURN ? CS_RETURN_NO : CS_ORDER_NO;

		if (m->src[key].kind == SRC_CONST)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": the key is a column, not a constant",
							tg, m->relname, m->src[key].argno, m->src[key].arg)));
	}
	if (m->kind == CAPTURE_LINE && m->src[CS_UNIT_PRICE].kind == SRC_NONE && m->src[CS_LINE_TOTAL].kind == SRC_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "capture_order_line() needs unit_price= or line_total=", tg, m->relname)));
	if (m->kind == CAPTURE_LINE && m->src[CS_UNIT_PRICE].kind != SRC_NONE && m->src[CS_LINE_TOTAL].kind != SRC_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "capture_order_line() takes unit_price= or line_total=, not both", tg, m->relname)));
	if (m->kind == CAPTURE_PAYMENT && m->src[CS_CUSTOMER].kind == SRC_NONE && m->src[CS_ORDER_NO].kind == SRC_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "capture_payment() needs customer= or order_no= (the customer is then the order's)",
						tg, m->relname)));
	if (m->kind == CAPTURE_ORDER && OidIsValid(m->lines_relid) && m->src[CS_SKU].kind != SRC_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": sku= belongs to the capture_order_line trigger when lines= names a table",
						tg, m->relname, m->src[CS_SKU].argno, m->src[CS_SKU].arg)));
	if (m->kind == CAPTURE_ORDER && !OidIsValid(m->lines_relid))
	{
		if (m->src[CS_TOTAL].kind == SRC_NONE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "capture_order() without lines= needs total= (the order is booked as one line)",
							tg, m->relname),
					 errhint("Name the table of order lines with lines=schema.table, or map total=.")));
		if (m->adjust_sku)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "adjust_sku= needs lines=schema.table", tg, m->relname)));
		if (m->src[CS_SKU].kind == SRC_NONE)
		{
			m->src[CS_SKU].kind = SRC_CONST;
			m->src[CS_SKU].value = "ORDER";
			m->src[CS_SKU].arg = "sku=const:ORDER";
		}
	}
	if (m->create.allowed && m->customer_kind == CUSTOMER_ID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "create_customer= needs an identity kind other than id",
						tg, m->relname),
				 errhint("customer=id: names the account's own customer id, which only register_customer() creates; use customer=external:column for the shop's customer numbers.")));
	if (m->status_map.n + (m->status_map.other ? 1 : 0) > 0 && m->src[CS_STATUS].kind == SRC_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "status_map= needs status=column", tg, m->relname)));
	if (m->src[CS_CURRENCY].kind == SRC_CONST)
	{
		const char *c = m->src[CS_CURRENCY].value;
		int32		code = ca_currency_pack(c, strlen(c));

		if (code < 0 || ca_currency_minor_units(code) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" is not an ISO 4217 currency",
							tg, m->relname, m->src[CS_CURRENCY].argno, m->src[CS_CURRENCY].arg, c)));
	}
}

/* the setting an argument's key names; an unknown one lists the settings */
static int
setting_of(ArgParse *ps, const char *key)
{
	CaptureKind kind = ps->map->kind;
	int			s;
	StringInfoData known;

	for (s = 0; s < CS_COUNT; s++)
		if (strcmp(settings[s].name, key) == 0 && (settings[s].allowed & (1 << kind)))
			return s;
	initStringInfo(&known);
	for (int k = 0; k < CS_COUNT; k++)
		if (settings[k].allowed & (1 << kind))
			appendStringInfo(&known, "%s%s", known.len ? ", " : "", settings[k].name);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" is not a setting of %s()",
					ps->trigger->tgname, ps->map->relname, ps->argno, ps->arg, key,
					ca_capture_function_names[kind]),
			 errhint("Settings of %s(): %s.", ca_capture_function_names[kind], known.data)));
	return -1;					/* not reached */
}

/* the value of one setting, by the setting's form */
static void
parse_value(ArgParse *ps, int s, const char *value)
{
	CaptureMap *m = ps->map;

	switch (settings[s].form)
	{
		case 's':
		case 'a':
			parse_source(ps, (CaptureSetting) s, value, &m->src[s], settings[s].vclass);
			break;
		case 'c':
			parse_customer(ps, value);
			break;
		case 'm':
			parse_value_map(ps, value, s == CS_METHOD_MAP ? &m->method_map : &m->status_map,
							s == CS_METHOD_MAP ? NULL : (m->kind == CAPTURE_ORDER ? order_events : book_events));
			break;
		case 't':
			if (s == CS_PREFIX)
				m->prefix = value;
			else if (s == CS_ORDER_PREFIX)
				m->order_prefix = value;
			else if (s == CS_IDENTITY_PREFIX)
				m->identity_prefix = value;
			else
				m->adjust_sku = value;
			break;
		case 'n':
			parse_create(ps, value);
			break;
		case 'l':
			parse_lines(ps, value);
			break;
		case 'e':
			if (strcmp(value, "fail") != 0 && strcmp(value, "quarantine") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": on_error is fail or quarantine",
								ps->trigger->tgname, m->relname, ps->argno, ps->arg)));
			m->quarantine = (strcmp(value, "quarantine") == 0);
			break;
	}
}

/* one argument, key=value */
static void
parse_argument(ArgParse *ps, int i)
{
	const Trigger *trigger = ps->trigger;
	CaptureMap *m = ps->map;
	char	   *arg = pstrdup(trigger->tgargs[i]);
	char	   *eq = strchr(arg, '=');
	int			s;

	ps->argno = i + 1;
	ps->arg = pstrdup(trigger->tgargs[i]);
	if (eq == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" is not key=value",
						trigger->tgname, m->relname, ps->argno, ps->arg),
				 errhint("Write each argument as a string such as 'order_no=id' or 'channel=const:web-de'.")));
	*eq = '\0';
	s = setting_of(ps, arg);
	if (m->src[s].argno != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" sets %s a second time",
						trigger->tgname, m->relname, ps->argno, ps->arg, arg)));
	if (eq[1] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\" has no value",
						trigger->tgname, m->relname, ps->argno, ps->arg)));
	m->src[s].argno = ps->argno;
	m->src[s].arg = ps->arg;
	parse_value(ps, s, eq + 1);
}

/* the OID of the extension's schema */
static Oid
extension_namespace(void)
{
	return get_namespace_oid("customer_account", false);
}

/*
 * Parse the arguments of trigger on rel into a map allocated in cxt.
 * Structural checks only (syntax, columns, types); whether a channel or
 * method exists is checked when a row arrives and by check_capture().
 */
CaptureMap *
ca_capture_parse(Relation rel, const Trigger *trigger, CaptureKind kind, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	ArgParse	ps;
	CaptureMap *m = palloc0(sizeof(CaptureMap));

	m->tgoid = trigger->tgoid;
	m->relid = RelationGetRelid(rel);
	m->tgname = pstrdup(trigger->tgname);
	m->relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
											RelationGetRelationName(rel));
	m->reltype = rel->rd_rel->reltype;
	m->kind = kind;
	m->quarantine = (kind == CAPTURE_RETURN);	/* a refused return is reviewed, not lost */
	m->prefix = "";
	m->order_prefix = "";
	m->identity_prefix = "";
	m->money_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("currency_amount"),
									ObjectIdGetDatum(extension_namespace()));

	memset(&ps, 0, sizeof(ps));
	ps.rel = rel;
	ps.trigger = trigger;
	ps.map = m;
	ps.money_type = m->money_type;

	if (trigger->tgnargs == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "%s() needs arguments that map the table's columns",
						trigger->tgname, m->relname, ca_capture_function_names[kind]),
				 errhint("For example EXECUTE FUNCTION customer_account.capture_order('order_no=id', 'customer=email:email', 'channel=const:web-de', 'method=const:invoice', 'total=grand_total').")));

	for (int i = 0; i < trigger->tgnargs; i++)
		parse_argument(&ps, i);
	check_combinations(&ps);
	MemoryContextSwitchTo(old);
	return m;
}

/* ------------------------------------------------------------------------
 * which capture function a trigger calls; finding triggers
 * ------------------------------------------------------------------------
 */
int
ca_capture_kind_of_function(Oid funcoid)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcoid));
	Form_pg_proc proc;
	int			kind = -1;
	Oid			nsp;

	if (!HeapTupleIsValid(tup))
		return -1;
	proc = (Form_pg_proc) GETSTRUCT(tup);
	nsp = get_namespace_oid("customer_account", true);
	if (proc->pronamespace == nsp)
		for (int k = 0; k < CAPTURE_KINDS; k++)
			if (strcmp(NameStr(proc->proname), ca_capture_function_names[k]) == 0)
				kind = k;
	ReleaseSysCache(tup);
	return kind;
}

/* the trigger of rel with this OID or name, or NULL */
const Trigger *
ca_capture_find_trigger(Relation rel, Oid tgoid, const char *tgname)
{
	TriggerDesc *td = rel->trigdesc;

	if (td == NULL)
		return NULL;
	for (int i = 0; i < td->numtriggers; i++)
	{
		const Trigger *t = &td->triggers[i];

		if ((OidIsValid(tgoid) && t->tgoid == tgoid) || (tgname && strcmp(t->tgname, tgname) == 0))
			return t;
	}
	return NULL;
}

/*
 * The capture_order trigger whose lines= argument names lines_relid.  A
 * scan of pg_trigger (small), done once per line trigger and cached.
 */
Oid
ca_capture_find_order_trigger(Oid lines_relid, Oid *order_relid)
{
	Relation	tgrel = table_open(TriggerRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(tgrel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tup;
	Oid			found = InvalidOid;
	Oid			capture_order_oid;

	capture_order_oid = LookupFuncName(list_make2(makeString("customer_account"), makeString("capture_order")),
									   0, NULL, true);
	*order_relid = InvalidOid;
	while ((tup = systable_getnext(scan)) != NULL)
	{
		Form_pg_trigger t = (Form_pg_trigger) GETSTRUCT(tup);
		bool		isnull;
		Datum		d;
		bytea	   *args;
		char	   *p;
		char	   *end;

		if (t->tgfoid != capture_order_oid || t->tgnargs == 0)
			continue;
		d = heap_getattr(tup, Anum_pg_trigger_tgargs, RelationGetDescr(tgrel), &isnull);
		if (isnull)
			continue;
		args = DatumGetByteaPP(d);
		p = VARDATA_ANY(args);
		end = p + VARSIZE_ANY_EXHDR(args);
		for (int i = 0; i < t->tgnargs && p < end; i++)
		{
			if (strncmp(p, "lines=", 6) == 0 && strcmp(p + 6, "none") != 0)
			{
				Oid			relid = resolve_table(p + 6, get_rel_namespace(t->tgrelid), true);

				if (relid == lines_relid)
				{
					if (OidIsValid(found))
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
								 errmsg("two capture_order triggers name %s in lines=", get_rel_name(lines_relid)),
								 errhint("One order table owns a table of lines.")));
					found = t->oid;
					*order_relid = t->tgrelid;
				}
			}
			p += strlen(p) + 1;
		}
	}
	systable_endscan(scan);
	table_close(tgrel, AccessShareLock);
	return found;
}

/* ------------------------------------------------------------------------
 * the cache: one parsed map per trigger OID
 * ------------------------------------------------------------------------
 */
typedef struct MapEntry
{
	Oid			tgoid;			/* hash key */
	bool		valid;
	CaptureMap *map;
	MemoryContext cxt;
} MapEntry;

static HTAB *map_cache = NULL;
/* contexts of replaced maps: someone up the stack may still read them */
static List *dead_contexts = NIL;

/* a relcache invalidation of a table drops the maps of its triggers */
static void
map_cache_invalidate(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	MapEntry   *e;

	if (map_cache == NULL)
		return;
	hash_seq_init(&status, map_cache);
	while ((e = (MapEntry *) hash_seq_search(&status)) != NULL)
		if (!OidIsValid(relid) || e->map == NULL || e->map->relid == relid
			|| e->map->lines_relid == relid || e->map->link_relid == relid)
			e->valid = false;
}

/* free replaced maps at the end of the transaction */
static void
map_cache_xact(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (dead_contexts == NIL)
		return;
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	foreach(lc, dead_contexts)
		MemoryContextDelete((MemoryContext) lfirst(lc));
	list_free(dead_contexts);
	dead_contexts = NIL;
}

/* the cached map of a trigger, parsed anew after a relcache change of its table */
CaptureMap *
ca_capture_map_get(Relation rel, const Trigger *trigger, CaptureKind kind)
{
	MapEntry   *e;
	bool		found;
	MemoryContext cxt;
	CaptureMap *map;

	if (map_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(MapEntry);
		ctl.hcxt = CacheMemoryContext;
		map_cache = hash_create("customer_account capture maps", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		ca_watch_relcache(map_cache_invalidate);
		RegisterXactCallback(map_cache_xact, NULL);
	}
	e = hash_search(map_cache, &trigger->tgoid, HASH_ENTER, &found);
	if (!found)
	{
		e->valid = false;
		e->map = NULL;
		e->cxt = NULL;
	}
	if (e->valid && e->map->kind == kind)
		return e->map;

	/* build the new map in a fresh context; swap only on success */
	cxt = AllocSetContextCreate(CacheMemoryContext, "customer_account capture map", ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		map = ca_capture_parse(rel, trigger, kind, cxt);
	}
	PG_CATCH();
	{
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	/* the entry may have moved while parsing: look it up again */
	e = hash_search(map_cache, &trigger->tgoid, HASH_ENTER, &found);
	if (found && e->cxt != NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(CacheMemoryContext);

		dead_contexts = lappend(dead_contexts, e->cxt);
		MemoryContextSwitchTo(oldcxt);
	}
	e->map = map;
	e->cxt = cxt;
	e->valid = true;
	return map;
}

/* ------------------------------------------------------------------------
 * the error context: every value read names its argument
 * ------------------------------------------------------------------------
 */
static void capture_error_callback(void *arg);

/*
 * The innermost capture context is found on error_context_stack itself, so
 * that nothing dangles when an error unwinds past a pop.
 */
CaptureErrorContext *
ca_capture_current_context(void)
{
	for (ErrorContextCallback *c = error_context_stack; c; c = c->previous)
		if (c->callback == capture_error_callback)
			return (CaptureErrorContext *) c->arg;
	return NULL;
}

/* the CONTEXT line: trigger, table, argument and column, the row's key */
static void
capture_error_callback(void *arg)
{
	CaptureErrorContext *ec = (CaptureErrorContext *) arg;
	const CaptureMap *m = ec->map;
	const char *keypart = ec->key ? psprintf(", %s %s", ec->doing ? ec->doing : "row", quote_literal_cstr(ec->key)) : "";

	if (ec->setting >= 0)
	{
		const CaptureSource *src = &m->src[ec->setting];

		if (src->kind == SRC_COLUMN)
			errcontext("capture trigger \"%s\" on %s, argument %d \"%s\" (column \"%s\")%s",
					   m->tgname, m->relname, src->argno, src->arg, src->colname, keypart);
		else
			errcontext("capture trigger \"%s\" on %s, argument \"%s\"%s",
					   m->tgname, m->relname, src->arg ? src->arg : ca_capture_setting_name(ec->setting), keypart);
	}
	else
		errcontext("capture trigger \"%s\" on %s%s", m->tgname, m->relname, keypart);
}

/* name this map in the context of every error until the pop */
void
ca_capture_push_context(CaptureErrorContext *ec, ErrorContextCallback *cb, const CaptureMap *map)
{
	memset(ec, 0, sizeof(*ec));
	ec->map = map;
	ec->setting = -1;
	cb->callback = capture_error_callback;
	cb->arg = ec;
	cb->previous = error_context_stack;
	error_context_stack = cb;
}

/* end the context pushed last */
void
ca_capture_pop_context(ErrorContextCallback *cb)
{
	error_context_stack = cb->previous;
}

/* ------------------------------------------------------------------------
 * reading values
 * ------------------------------------------------------------------------
 */
int
ca_capture_enter_setting(const CaptureMap *m, int s)
{
	CaptureErrorContext *ec = ca_capture_current_context();
	int			prev = -1;

	if (ec && ec->map == m)
	{
		prev = ec->setting;
		ec->setting = s;
	}
	return prev;
}

/* restore the setting the context named before */
void
ca_capture_leave_setting(const CaptureMap *m, int prev)
{
	CaptureErrorContext *ec = ca_capture_current_context();

	if (ec && ec->map == m)
		ec->setting = prev;
}

/* a source's value as text (the column's output, or the constant) */
char *
ca_capture_source_text(const CaptureSource *src, HeapTuple tup, TupleDesc td)
{
	bool		isnull;
	Datum		d;
	Oid			out;
	bool		varlena;

	if (src->kind == SRC_NONE)
		return NULL;
	if (src->kind == SRC_CONST)
		return pstrdup(src->value);
	d = heap_getattr(tup, src->attno, td, &isnull);
	if (isnull)
		return NULL;
	getTypeOutputInfo(TupleDescAttr(td, src->attno - 1)->atttypid, &out, &varlena);
	return OidOutputFunctionCall(out, d);
}

/* a setting's value as text; NULL when null or unmapped */
char *
ca_capture_text(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td)
{
	return ca_capture_source_text(&m->src[s], tup, td);
}

/* a setting's value as text; NULL or empty is an error naming the argument */
char *
ca_capture_text_required(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td)
{
	char	   *v = ca_capture_source_text(&m->src[s], tup, td);

	if (v == NULL || v[0] == '\0')
	{
		const CaptureSource *src = &m->src[s];

		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": column \"%s\" is %s",
						m->tgname, m->relname, src->argno, src->arg, src->colname ? src->colname : "?",
						v == NULL ? "NULL" : "empty"),
				 errdetail("The account needs %s for every row.", ca_capture_setting_name(s))));
	}
	return v;
}

/* does the text hold a letter (an amount with its currency)? */
static bool
has_letter(const char *s)
{
	for (; *s; s++)
		if (isalpha((unsigned char) *s))
			return true;
	return false;
}

/* text to numeric (22P02 on garbage) */
static Numeric
text_numeric(const char *s)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/* a numeric that must be a whole number, as int64 */
static int64
whole_number(const CaptureMap *m, CaptureSetting s, Numeric n, const char *text)
{
	Numeric		t = DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(n), Int32GetDatum(0)));

	if (numeric_is_nan(n) || numeric_is_inf(n)
		|| DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n), NumericGetDatum(t))) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" in column \"%s\" is not a whole number",
						m->tgname, m->relname, m->src[s].argno, m->src[s].arg, text,
						m->src[s].colname ? m->src[s].colname : "(constant)")));
	return DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(n)));
}

/* an amount, in the currency the value carries or the one given */
bool
ca_capture_amount(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td,
			   const char *currency, CurrencyAmount *out)
{
	const CaptureSource *src = &m->src[s];
	int			prev;
	char	   *text;
	CurrencyAmount *ca;

	if (src->kind == SRC_NONE)
		return false;
	prev = ca_capture_enter_setting(m, s);
	if (src->kind == SRC_COLUMN && !src->minor && src->typid == m->money_type)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, src->attno, td, &isnull);

		ca_capture_leave_setting(m, prev);
		if (isnull)
			return false;
		memcpy(out, DatumGetPointer(d), sizeof(CurrencyAmount));
		return true;
	}
	text = ca_capture_source_text(src, tup, td);
	if (text == NULL)
	{
		ca_capture_leave_setting(m, prev);
		return false;
	}
	if (src->minor)
	{
		int64		units = whole_number(m, s, text_numeric(text), text);

		if (currency == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": minor units need a currency",
							m->tgname, m->relname, src->argno, src->arg)));
		ca = ca_make_currency_amount(units, ca_currency_lookup_or_error(currency, strlen(currency)));
	}
	else if (has_letter(text) && strcmp(text, "NaN") != 0 && strstr(text, "nfinity") == NULL)
	{
		ca = DatumGetCurrencyAmountP(DirectFunctionCall1(currency_amount_in, CStringGetDatum(text)));
		if (currency != NULL && ca_currency_pack(currency, strlen(currency)) != ca->code)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" in column \"%s\" is not in %s",
							m->tgname, m->relname, src->argno, src->arg, text,
							src->colname ? src->colname : "(constant)", currency)));
	}
	else
	{
		if (currency == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg(TRIGGER_PREFIX_FMT "argument %d \"%s\": \"%s\" carries no currency",
							m->tgname, m->relname, src->argno, src->arg, text),
					 errhint("Map currency=column or currency=const:EUR, or let the channel's currency apply.")));
		ca = DatumGetCurrencyAmountP(DirectFunctionCall2(currency_amount_from_numeric,
														 NumericGetDatum(text_numeric(text)),
														 CStringGetTextDatum(currency)));
	}
	*out = *ca;
	ca_capture_leave_setting(m, prev);
	return true;
}

/* a time from timestamptz, timestamp, date or text (session time zone) */
bool
ca_capture_time(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td, TimestampTz *out)
{
	const CaptureSource *src = &m->src[s];
	int			prev;
	bool		isnull;
	Datum		d;
	char	   *text;

	if (src->kind == SRC_NONE)
		return false;
	prev = ca_capture_enter_setting(m, s);
	if (src->kind == SRC_COLUMN && (src->typid == TIMESTAMPTZOID || src->typid == TIMESTAMPOID || src->typid == DATEOID))
	{
		d = heap_getattr(tup, src->attno, td, &isnull);
		ca_capture_leave_setting(m, prev);
		if (isnull)
			return false;
		if (src->typid == TIMESTAMPTZOID)
			*out = DatumGetTimestampTz(d);
		else if (src->typid == TIMESTAMPOID)
			*out = DatumGetTimestampTz(DirectFunctionCall1(timestamp_timestamptz, d));
		else
			*out = DatumGetTimestampTz(DirectFunctionCall1(date_timestamptz, d));
		return true;
	}
	text = ca_capture_source_text(src, tup, td);
	if (text == NULL || text[0] == '\0')
	{
		ca_capture_leave_setting(m, prev);
		return false;
	}
	*out = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	ca_capture_leave_setting(m, prev);
	return true;
}

/* a whole number from an integer, numeric or text column */
bool
ca_capture_int64(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td, int64 *out)
{
	const CaptureSource *src = &m->src[s];
	int			prev;
	bool		isnull;
	Datum		d;
	char	   *text;

	if (src->kind == SRC_NONE)
		return false;
	prev = ca_capture_enter_setting(m, s);
	if (src->kind == SRC_COLUMN && (src->typid == INT2OID || src->typid == INT4OID || src->typid == INT8OID))
	{
		d = heap_getattr(tup, src->attno, td, &isnull);
		ca_capture_leave_setting(m, prev);
		if (isnull)
			return false;
		*out = src->typid == INT2OID ? DatumGetInt16(d) : src->typid == INT4OID ? DatumGetInt32(d) : DatumGetInt64(d);
		return true;
	}
	text = ca_capture_source_text(src, tup, td);
	if (text == NULL)
	{
		ca_capture_leave_setting(m, prev);
		return false;
	}
	*out = whole_number(m, s, text_numeric(text), text);
	ca_capture_leave_setting(m, prev);
	return true;
}

/* a boolean from a boolean or text column */
bool
ca_capture_bool(const CaptureMap *m, CaptureSetting s, HeapTuple tup, TupleDesc td, bool *out)
{
	const CaptureSource *src = &m->src[s];
	int			prev;
	char	   *text;

	if (src->kind == SRC_NONE)
		return false;
	prev = ca_capture_enter_setting(m, s);
	text = ca_capture_source_text(src, tup, td);
	if (text == NULL)
	{
		ca_capture_leave_setting(m, prev);
		return false;
	}
	*out = DatumGetBool(DirectFunctionCall1(boolin, CStringGetDatum(text)));
	ca_capture_leave_setting(m, prev);
	return true;
}

/* our value for a shop value (the * entry when unlisted); NULL when unmapped */
const char *
ca_capture_lookup(const CaptureValueMap *vm, const char *value)
{
	for (int i = 0; i < vm->n; i++)
		if (strcmp(vm->from[i], value) == 0)
			return vm->to[i];
	return vm->other;
}

/* the error for a value no map takes: trigger, argument, column, value */
void
ca_capture_unmapped(const CaptureMap *m, CaptureSetting map_setting, CaptureSetting column_setting, const char *value)
{
	const CaptureSource *col = &m->src[column_setting];
	const CaptureSource *map = &m->src[map_setting];

	if (map->argno > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg(TRIGGER_PREFIX_FMT "value \"%s\" of column \"%s\" is not in argument %d \"%s\"",
						m->tgname, m->relname, value, col->colname ? col->colname : "(constant)",
						map->argno, map->arg),
				 errhint("Add \"%s:...\" to %s (or \"*:...\" for every other value) and recreate the trigger.",
						 value, ca_capture_setting_name(map_setting))));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg(TRIGGER_PREFIX_FMT "value \"%s\" of column \"%s\" (argument %d \"%s\") is not one of ours and no %s= maps it",
					m->tgname, m->relname, value, col->colname ? col->colname : "(constant)",
					col->argno, col->arg, ca_capture_setting_name(map_setting)),
			 errhint("Map the shop's values with %s=shop_value:our_value,...", ca_capture_setting_name(map_setting))));
}
