/*-------------------------------------------------------------------------
 *
 * capture_customer.c
 *	  The customer of a captured row: the account's own id (following
 *	  merges), or an identity the shop knows (email, phone, loyalty card,
 *	  marketplace buyer, the shop's own customer number), found with
 *	  find_customer()'s normalisation and created when the trigger allows it.
 *	  Creators of one identity serialize on a transaction advisory lock, so
 *	  two shop sessions that meet a new customer at once make one account.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "capture.h"
#include "spi_util.h"

static SPIPlanPtr plan_find_customer;
static SPIPlanPtr plan_customer_row;
static SPIPlanPtr plan_register;
static SPIPlanPtr plan_link;
static SPIPlanPtr plan_identity_lock;
static SPIPlanPtr plan_normalize;

/* an identity as customer_identity stores it (find_customer's normalisation) */
static char *
normalize_identity(const char *kind, const char *value)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	ca_prepare(&plan_normalize, "SELECT customer_account.normalize_identity($1, $2)", 2, types);
	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(value);
	ca_execute(plan_normalize, values, NULL, false, 1);
	return ca_get_text(0, 1);
}

/* the customer with this (normalised) identity; found false when none */
static int64
find_identity(const char *kind, const char *value, bool *found)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		isnull;
	int64		id;

	ca_prepare(&plan_find_customer, "SELECT customer_account.find_customer($1, $2)", 2, types);
	values[0] = CStringGetTextDatum(kind);
	values[1] = CStringGetTextDatum(value);
	ca_execute(plan_find_customer, values, NULL, false, 1);
	id = ca_get_int64(0, 1, &isnull);
	*found = !isnull;
	return id;
}

/* the surviving account of a customer id, following merges; RA002 when unknown */
static int64
surviving_customer(const CaptureMap *m, int64 id)
{
	Oid			types[1] = {INT8OID};

	ca_prepare(&plan_customer_row,
			   "SELECT merged_into FROM customer_account.customer WHERE customer_id = $1", 1, types);
	for (int hops = 0; hops < 32; hops++)
	{
		Datum		v = Int64GetDatum(id);
		bool		isnull;
		int64		next;

		ca_execute(plan_customer_row, &v, NULL, false, 1);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_CA_UNKNOWN),
					 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": no customer has id " INT64_FORMAT,
							m->tgname, m->relname, m->src[CS_CUSTOMER].argno, m->src[CS_CUSTOMER].arg, id),
					 errhint("customer=id: names the account's customer id; the shop's own customer numbers are customer=external:column.")));
		next = ca_get_int64(0, 1, &isnull);
		if (isnull)
			return id;
		id = next;
	}
	return id;
}

/* take the transaction's lock on one identity (kind and normalised value) */
static void
lock_identity(const char *kind, const char *value)
{
	Oid			types[1] = {TEXTOID};
	Datum		v = CStringGetTextDatum(psprintf("customer_account capture %s %s", kind, value));

	ca_prepare(&plan_identity_lock, "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1))", 1, types);
	ca_execute(plan_identity_lock, &v, NULL, false, 1);
}

/*
 * A new account for an identity no customer has, from the create_customer
 * fields; a mapped email that belongs to a customer already links the
 * identity to that customer instead.  The caller holds the identity's lock.
 */
static int64
create_customer(const CaptureMap *m, HeapTuple tup, TupleDesc td, const char *kind, const char *value,
				TimestampTz since)
{
	const CreateCustomer *cc = &m->create;
	char	   *name = ca_capture_source_text(&cc->name, tup, td);
	char	   *email = ca_capture_source_text(&cc->email, tup, td);
	char	   *phone = ca_capture_source_text(&cc->phone, tup, td);
	char	   *language = ca_capture_source_text(&cc->language, tup, td);
	bool		by_email = false;
	int64		id = 0;

	if (m->customer_kind == CUSTOMER_EMAIL)
		email = (char *) value;
	if (name == NULL || name[0] == '\0')
		name = (char *) value;
	if (email != NULL && m->customer_kind != CUSTOMER_EMAIL)
	{
		/* the email's lock is always taken last: two creators never wait in a circle */
		email = normalize_identity("email", email);
		lock_identity("email", email);
		id = find_identity("email", email, &by_email);
	}
	if (!by_email)
	{
		Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
		Datum		values[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

		ca_prepare(&plan_register,
				   "SELECT customer_account.register_customer($1, $2, $3, coalesce($4, 'de'), $5)", 5, types);
		values[0] = CStringGetTextDatum(name);
		values[1] = ca_capture_text_or_null(email, &nulls[1]);
		values[2] = ca_capture_text_or_null(phone, &nulls[2]);
		values[3] = ca_capture_text_or_null(language, &nulls[3]);
		values[4] = TimestampTzGetDatum(since);
		ca_execute(plan_register, values, nulls, false, 1);
		id = ca_get_int64(0, 1, NULL);
	}
	if (m->customer_kind != CUSTOMER_EMAIL)
	{
		Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};
		Datum		values[3];

		ca_prepare(&plan_link, "SELECT customer_account.link_identity($1, $2, $3)", 3, types);
		values[0] = Int64GetDatum(id);
		values[1] = CStringGetTextDatum(kind);
		values[2] = CStringGetTextDatum(value);
		ca_execute(plan_link, values, NULL, false, 1);
	}
	return id;
}

/*
 * The customer of a row: by id, or by an identity (find_customer's
 * normalisation), created when the DBA allowed it.  found=false and 0 when
 * unknown and create is false.
 */
int64
ca_capture_resolve_customer(const CaptureMap *m, HeapTuple tup, TupleDesc td, bool create, TimestampTz since,
							bool *found)
{
	const char *kind = ca_capture_customer_kinds[m->customer_kind];
	char	   *raw;
	char	   *value;
	int64		id;
	int			prev;

	*found = false;
	if (m->customer_kind == CUSTOMER_ID)
	{
		if (!ca_capture_int64(m, CS_CUSTOMER, tup, td, &id))
			(void) ca_capture_text_required(m, CS_CUSTOMER, tup, td);
		*found = true;
		return surviving_customer(m, id);
	}
	raw = ca_capture_text_required(m, CS_CUSTOMER, tup, td);
	prev = ca_capture_enter_setting(m, CS_CUSTOMER);
	value = normalize_identity(kind, psprintf("%s%s", m->identity_prefix, raw));
	id = find_identity(kind, value, found);
	if (!*found && create && m->create.allowed)
	{
		/* one creator per identity at a time (however typed): a second waits, then finds it */
		lock_identity(kind, value);
		id = find_identity(kind, value, found);
		if (!*found)
		{
			ca_capture_leave_setting(m, prev);
			prev = ca_capture_enter_setting(m, CS_CREATE_CUSTOMER);
			id = create_customer(m, tup, td, kind, value, since);
			*found = true;
		}
	}
	ca_capture_leave_setting(m, prev);
	return id;
}

/* an unknown customer where the mapping may not create one */
void
ca_capture_unknown_customer(const CaptureMap *m, HeapTuple tup, TupleDesc td)
{
	char	   *raw = ca_capture_text(m, CS_CUSTOMER, tup, td);

	ereport(ERROR,
			(errcode(ERRCODE_CA_UNKNOWN),
			 errmsg("capture trigger \"%s\" on %s: argument %d \"%s\": no customer has %s \"%s%s\" (column \"%s\")",
					m->tgname, m->relname, m->src[CS_CUSTOMER].argno, m->src[CS_CUSTOMER].arg,
					ca_capture_customer_kinds[m->customer_kind], m->identity_prefix, raw ? raw : "",
					m->src[CS_CUSTOMER].colname ? m->src[CS_CUSTOMER].colname : "(constant)"),
			 errhint("Register the customer (register_customer, link_identity) or allow create_customer=name:column on the order trigger.")));
}
