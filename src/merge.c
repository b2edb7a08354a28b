/*-------------------------------------------------------------------------
 *
 * merge.c
 *	  merge_customers(survivor, duplicate): the duplicate's books, open
 *	  items, orders, payments, identities and loyalty move to the survivor,
 *	  by a merge_out/merge_in pair of ledger entries per currency.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "config.h"
#include "direct.h"
#include "loyalty.h"
#include "posting_int.h"
#include "spi_util.h"

/* set while merge_customers() moves rows, so the order and payment guards let it */
bool		ca_merging = false;

/* ------------------------------------------------------------------------
 * merge_customers(survivor, duplicate)
 * ------------------------------------------------------------------------
 */
static void
exec_sql(const char *sql, int64 a, int64 b)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(a), Int64GetDatum(b)};

	if (SPI_execute_with_args(sql, 2, types, values, NULL, false, 0) < 0)
		elog(ERROR, "merge statement failed: %s", sql);
}

/*
 * Lock the two customer rows of a merge in id order and check them under
 * the lock.  FOR NO KEY UPDATE does not block the FOR KEY SHARE locks that
 * foreign-key checks of concurrent orders and payments take.  In READ
 * COMMITTED a locking read returns the newest version of a row it had to
 * wait for, so a merge that committed meanwhile is seen here.
 */
static void
lock_merge_customers(int64 survivor, int64 duplicate)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(survivor), Int64GetDatum(duplicate)};
	bool		seen_survivor = false;
	bool		seen_duplicate = false;

	if (SPI_execute_with_args("SELECT customer_id, merged_into FROM customer_account.customer"
							  " WHERE customer_id IN ($1, $2) ORDER BY customer_id FOR NO KEY UPDATE",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock customers");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = ca_get_int64(i, 1, NULL);
		int64		into = ca_get_int64(i, 2, &isnull);

		if (!isnull)
			ca_merged_error(id, into);
		seen_survivor |= (id == survivor);
		seen_duplicate |= (id == duplicate);
	}
	if (!seen_survivor || !seen_duplicate)
		ereport(ERROR,
				(errcode(ERRCODE_CA_UNKNOWN),
				 errmsg("unknown customer " INT64_FORMAT, seen_survivor ? duplicate : survivor)));
}

/* the duplicate's account rows, as locked */
typedef struct MergeRow
{
	char	   *currency;
	StateRow	st;
} MergeRow;

/*
 * Lock the account rows of one customer of a merge, by currency; when it
 * is the duplicate, its orders first (cancel_order locks an order before
 * the account row) and its rows are returned.
 */
static MergeRow *
lock_merge_accounts(int64 customer_id, int64 duplicate, int *n)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2] = {Int64GetDatum(customer_id), Int64GetDatum(duplicate)};
	MergeRow   *rows;

	if (customer_id == duplicate
		&& SPI_execute_with_args("SELECT 1 FROM customer_account.orders WHERE customer_id = $1"
								 " ORDER BY order_no FOR NO KEY UPDATE", 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the orders of customer " INT64_FORMAT, customer_id);
	/* the survivor's rows of the duplicate's currencies exist already (see merge_customers) */
	if (SPI_execute_with_args("SELECT currency, balance, open_amount, store_credit, lifetime_revenue,"
							  " lifetime_returned, orders_count, paid_orders, last_event_at"
							  " FROM customer_account.account_state WHERE customer_id = $1"
							  " AND currency IN (SELECT currency FROM customer_account.account_state WHERE customer_id = $2)"
							  " ORDER BY currency FOR UPDATE",
							  2, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock the accounts of customer " INT64_FORMAT, customer_id);
	*n = (int) SPI_processed;
	rows = palloc0(sizeof(MergeRow) * Max(*n, 1));
	for (int i = 0; i < *n; i++)
	{
		bool		isnull;

		rows[i].currency = ca_get_text(i, 1);
		rows[i].st.balance = ca_get_int64(i, 2, NULL);
		rows[i].st.open_amount = ca_get_int64(i, 3, NULL);
		rows[i].st.store_credit = ca_get_int64(i, 4, NULL);
		rows[i].st.lifetime_revenue = ca_get_int64(i, 5, NULL);
		rows[i].st.lifetime_returned = ca_get_int64(i, 6, NULL);
		rows[i].st.orders_count = ca_get_int32(i, 7, NULL);
		rows[i].st.paid_orders = ca_get_int32(i, 8, NULL);
		rows[i].st.last_event = ca_get_timestamptz(i, 9, &isnull);
		rows[i].st.has_last_event = !isnull;
	}
	SPI_freetuptable(SPI_tuptable);
	return rows;
}

/*
 * merge_customers(survivor, duplicate): the duplicate's books, items,
 * orders, payments and identities move to the survivor.
 *
 * Lock order, the same as every other writer's: the two customer rows by
 * id; then per customer by id, the duplicate's orders and the account rows
 * by currency.  Everything is decided after the locks.
 */
PG_FUNCTION_INFO_V1(merge_customers);
Datum
merge_customers(PG_FUNCTION_ARGS)
{
	int64		survivor = PG_GETARG_INT64(0);
	int64		duplicate = PG_GETARG_INT64(1);
	MergeRow   *dup_rows = NULL;
	int			ndup = 0;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (survivor == duplicate)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot merge customer " INT64_FORMAT " with itself", survivor)));
	ca_connect();
	/* early answers without locks; the binding check is made under the locks */
	ca_check_customer(survivor);
	ca_check_customer(duplicate);
	lock_merge_customers(survivor, duplicate);

	/*
	 * The survivor gets a row for each currency of the duplicate.  Nobody
	 * else can be creating one: a first booking in a currency holds the
	 * customer row FOR SHARE (ca_lock_account), which our lock excludes.
	 */
	exec_sql("INSERT INTO customer_account.account_state (customer_id, currency)"
			 " SELECT $1, currency FROM customer_account.account_state WHERE customer_id = $2"
			 " ON CONFLICT (customer_id, currency) DO NOTHING", survivor, duplicate);
	for (int pass = 0; pass < 2; pass++)
	{
		int64		id = (pass == 0) ? Min(survivor, duplicate) : Max(survivor, duplicate);
		int			n;
		MergeRow   *rows = lock_merge_accounts(id, duplicate, &n);

		if (id == duplicate)
		{
			dup_rows = rows;
			ndup = n;
		}
	}

	for (int i = 0; i < ndup; i++)
	{
		StateRow   *b = &dup_rows[i].st;
		LedgerEntry e = {0};
		AccountDelta d = {0};

		/* the duplicate's books move by a transfer pair, keeping both ledgers whole */
		e.currency = dup_rows[i].currency;
		e.event_at = now;
		e.note = psprintf("merge of customer " INT64_FORMAT " into " INT64_FORMAT, duplicate, survivor);
		e.customer_id = duplicate;
		e.entry_type = "merge_out";
		e.amount = -b->balance;
		e.open_delta = -b->open_amount;
		e.credit_delta = -b->store_credit;
		e.revenue_delta = -b->lifetime_revenue;
		e.returned_delta = -b->lifetime_returned;
		e.order_delta = -b->orders_count;
		ca_book_entry(&e);
		e.customer_id = survivor;
		e.entry_type = "merge_in";
		e.amount = b->balance;
		e.open_delta = b->open_amount;
		e.credit_delta = b->store_credit;
		e.revenue_delta = b->lifetime_revenue;
		e.returned_delta = b->lifetime_returned;
		e.order_delta = b->orders_count;
		ca_book_entry(&e);

		d.balance = b->balance;
		d.open = b->open_amount;
		d.credit = b->store_credit;
		d.revenue = b->lifetime_revenue;
		d.returned = b->lifetime_returned;
		d.orders = b->orders_count;
		d.paid_orders = b->paid_orders;
		d.event_at = b->has_last_event ? b->last_event : now;
		/* next_due_at is recomputed below, once the items have moved */
		d.recompute_due = false;
		ca_apply_delta(survivor, dup_rows[i].currency, &d);
	}

	/* survivor takes the duplicate's timestamps, counters by month, items */
	exec_sql("UPDATE customer_account.account_state s SET"
			 " first_order_at = LEAST(s.first_order_at, x.first_order_at),"
			 " last_purchase_at = GREATEST(s.last_purchase_at, x.last_purchase_at),"
			 " last_webshop = GREATEST(s.last_webshop, x.last_webshop),"
			 " last_store = GREATEST(s.last_store, x.last_store),"
			 " last_marketplace = GREATEST(s.last_marketplace, x.last_marketplace),"
			 " last_callcenter = GREATEST(s.last_callcenter, x.last_callcenter),"
			 " last_app = GREATEST(s.last_app, x.last_app),"
			 " last_event_at = GREATEST(s.last_event_at, x.last_event_at),"
			 " dunning_level = GREATEST(s.dunning_level, x.dunning_level),"
			 " dunned_at = GREATEST(s.dunned_at, x.dunned_at)"
			 " FROM customer_account.account_state x"
			 " WHERE s.customer_id = $1 AND x.customer_id = $2 AND x.currency = s.currency", survivor, duplicate);
	/*
	 * The duplicate's notices of its current dunning cycle become the
	 * survivor's (marked merged_from, so a replayed run does not show them
	 * again): the survivor's level stays what its notices say.
	 */
	exec_sql("INSERT INTO customer_account.dunning_notice AS n"
			 " (customer_id, currency, level, cycle, run_date, overdue_amount, fee, action, merged_from)"
			 " SELECT $1, d.currency, d.level, s.dunning_cycle, d.run_date, d.overdue_amount, d.fee, d.action, $2"
			 " FROM customer_account.dunning_notice d"
			 " JOIN customer_account.account_state x ON x.customer_id = d.customer_id AND x.currency = d.currency"
			 "   AND x.dunning_cycle = d.cycle AND x.dunning_level > 0"
			 " JOIN customer_account.account_state s ON s.customer_id = $1 AND s.currency = d.currency"
			 " WHERE d.customer_id = $2"
			 " ON CONFLICT (customer_id, currency, level, cycle) DO NOTHING", survivor, duplicate);
	exec_sql("UPDATE customer_account.account_state SET balance = 0, open_amount = 0, store_credit = 0,"
			 " lifetime_revenue = 0, lifetime_returned = 0, orders_count = 0, paid_orders = 0,"
			 " next_due_at = NULL, dunning_level = 0, updated_at = now() WHERE customer_id = $2 AND $1 IS NOT NULL",
			 survivor, duplicate);
	exec_sql("INSERT INTO customer_account.account_period AS p (customer_id, currency, period, revenue, purchased, returned, orders)"
			 " SELECT $1, currency, period, revenue, purchased, returned, orders"
			 " FROM customer_account.account_period WHERE customer_id = $2"
			 " ON CONFLICT (customer_id, currency, period) DO UPDATE SET"
			 " revenue = p.revenue + EXCLUDED.revenue, purchased = p.purchased + EXCLUDED.purchased,"
			 " returned = p.returned + EXCLUDED.returned, orders = p.orders + EXCLUDED.orders", survivor, duplicate);
	exec_sql("DELETE FROM customer_account.account_period WHERE customer_id = $2 AND $1 IS NOT NULL", survivor, duplicate);
	if (ca_state_has_ring())
		exec_sql("UPDATE customer_account.account_state SET month_ring = customer_account.month_ring_of(customer_id, currency)"
				 " WHERE customer_id = $2 OR (customer_id = $1 AND currency IN"
				 "   (SELECT x.currency FROM customer_account.account_state x WHERE x.customer_id = $2))",
				 survivor, duplicate);	/* only the accounts the merge changes (and holds) */
	exec_sql("UPDATE customer_account.open_item SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
	exec_sql("UPDATE customer_account.item_application SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);

	/*
	 * Now that the duplicate's items are the survivor's: the earliest due
	 * date over all of them (balance() looks for overdue items only when
	 * it is past), and dunning ends where nothing is overdue any more.
	 */
	exec_sql("UPDATE customer_account.account_state s SET"
			 " next_due_at = (SELECT min(i.due_at) FROM customer_account.open_item i"
			 "     WHERE i.customer_id = s.customer_id AND i.currency = s.currency"
			 "       AND i.settled_at IS NULL AND i.kind <> 'prepayment'),"
			 " dunning_level = CASE WHEN" CA_NOTHING_OVERDUE("now()") " THEN 0 ELSE s.dunning_level END,"
			 " dunning_cycle = s.dunning_cycle + CASE WHEN" CA_NOTHING_OVERDUE("now()") " THEN 1 ELSE 0 END"
			 " WHERE s.customer_id = $1"
			 "   AND s.currency IN (SELECT x.currency FROM customer_account.account_state x WHERE x.customer_id = $2)",
			 survivor, duplicate);

	ca_merging = true;
	PG_TRY();
	{
		exec_sql("UPDATE customer_account.orders SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
		exec_sql("UPDATE customer_account.payment SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
		exec_sql("UPDATE customer_account.order_line SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
	}
	PG_FINALLY();
	{
		ca_merging = false;
	}
	PG_END_TRY();
	exec_sql("UPDATE customer_account.customer_identity SET customer_id = $1 WHERE customer_id = $2", survivor, duplicate);
	exec_sql("UPDATE customer_account.customer SET merged_into = $1, email = NULL, phone = NULL WHERE customer_id = $2",
			 survivor, duplicate);
	exec_sql("UPDATE customer_account.customer s SET"
			 " customer_since = LEAST(s.customer_since, d.customer_since),"
			 " email = coalesce(s.email, (SELECT value FROM customer_account.customer_identity"
			 "                           WHERE customer_id = $1 AND kind = 'email' ORDER BY linked_at LIMIT 1)),"
			 " blocked = s.blocked OR d.blocked"
			 " FROM customer_account.customer d WHERE s.customer_id = $1 AND d.customer_id = $2", survivor, duplicate);
	/* loyalty: lots, history and totals move to the survivor with their dates */
	ca_loyalty_merge(survivor, duplicate);
	ca_finish();
	PG_RETURN_VOID();
}
