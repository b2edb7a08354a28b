/*-------------------------------------------------------------------------
 *
 * verify.c
 *	  verify_balances_rebuild(): the work of verify_balances() (its SQL
 *	  wrapper sorts the answer).  Every figure the account state and the
 *	  monthly counters cache, rebuilt from the books in one sequential pass
 *	  over each table, in this order:
 *
 *	    customer        the customer facts and the merge chains (each
 *	                    merged-away customer under the survivor at the top
 *	                    of its chain)
 *	    account_period  the monthly counters as stored, and so the ring
 *	                    each state row must carry
 *	    ledger          per account: what its own rows add up to; per
 *	                    surviving account: its history and its monthly
 *	                    figures, over the rows of everyone merged into it
 *	    open_item       the unsettled receivables (and which orders have one)
 *	    orders          the paid orders
 *	    dunning_notice  the highest level per account and cycle
 *	    account_state   each row compared with all of the above
 *
 *	  The result is that of the SQL definition it replaces (see the comment
 *	  in the extension script): the same figures, compared in the same
 *	  types with the same NULL handling, each difference also as text in
 *	  the type's output format.  One difference: a running sum that leaves
 *	  bigint is an error here even if later rows would bring it back (SQL
 *	  summed in numeric and failed only on the final cast).  The tables are
 *	  read with the snapshot of the calling statement, like a SQL query.
 *
 *	  Customers are reached through an array indexed by customer_id -
 *	  min(customer_id) when the ids are dense (they come from an identity
 *	  column), else through a hash table; no per-row function call, no
 *	  sort.  Memory: about 0.6 kB per account (60 MB at 100 000 customers),
 *	  freed at the end.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "currency.h"
#include "money.h"
#include "table_scan.h"

/* the money type's functions this file answers with (money.c) */
extern Datum currency_amount_from_units(PG_FUNCTION_ARGS);
extern Datum currency_amount_out(PG_FUNCTION_ARGS);
extern Datum currency_amount_eq(PG_FUNCTION_ARGS);

/* ------------------------------------------------------------------------
 * accumulators
 * ------------------------------------------------------------------------
 */

/* one month of an account: the ledger's figures and account_period's */
#define CELL_LED	0x01		/* the ledger has rows for the month */
#define CELL_AP		0x02		/* account_period has a row for it */
typedef struct VCell
{
	DateADT		period;
	uint32		flags;
	int64		led[4];			/* revenue, purchased, returned, orders */
	int64		ap[4];
} VCell;

/* history figures, per surviving account (NULL = not seen) */
enum
{
	H_FIRST_ORDER,				/* min */
	H_LAST_PURCHASE,			/* the others: max */
	H_WEBSHOP,
	H_STORE,
	H_MARKETPLACE,
	H_CALLCENTER,
	H_APP,
	H_LAST_EVENT,
	H_N
};
static const char *const hist_figure[H_N] = {
	"first_order_at", "last_purchase_at", "last_webshop", "last_store", "last_marketplace",
	"last_callcenter", "last_app", "last_event_at"
};
static const char *const hist_column[H_N] = {
	"first_order_at", "last_purchase_at", "last_webshop", "last_store", "last_marketplace",
	"last_callcenter", "last_app", "last_event_at"
};

/* a dunning cycle's highest level */
typedef struct VNotice
{
	struct VNotice *next;
	int32		cycle;
	int32		level;
} VNotice;

#define A_MONEY		0x01		/* the account has ledger rows of its own */
#define A_STATE		0x02		/* the account has a state row */
#define A_ITEMS		0x04		/* unsettled items */
#define A_NEXT_DUE	0x08		/* an unsettled item other than a prepayment */

/* the periods of an account's first months, kept beside its header to find a month without reading them */
#define CELL_HINTS 4

/* one (customer, currency): an account, or only the root of merged rows; 192 bytes, 3 cache lines */
typedef struct VAcct
{
	/* what the ledger touches: the first two lines, fetched ahead */
	int32		next;			/* the customer's next account, -1 at the end */
	int32		slot;			/* the customer */
	int16		cur;			/* the currency (interned) */
	uint16		flags;
	uint16		hist_set;		/* bit per H_*: seen */
	uint16		ncells;
	DateADT		cell_period[CELL_HINTS];	/* cells[i].period, i < CELL_HINTS */
	int64		money[6];		/* balance, open, credit, revenue, returned, orders */
	TimestampTz hist[H_N];
	VCell	   *cells;
	uint32		capcells;
	int32		pad;
	int64		items_open;
	TimestampTz next_due;
	int64		paid;
	VNotice    *notices;
} VAcct;

/* a customer id: the customer table's facts */
typedef struct VCust
{
	int64		id;
	int64		merged_into;
	TimestampTz since;
	CurrencyAmount credit_limit;
	char	   *language;
	char	   *group;
	bool		exists;			/* a customer row */
	bool		since_null;
	bool		has_merged_into;
	bool		blocked;
	bool		has_credit_limit;
} VCust;

/* customer_id -> slot, for ids outside the dense range */
typedef struct IdEnt
{
	int64		key;
	int32		slot;
	char		status;
} IdEnt;

static inline uint32
id_hash(int64 k)
{
	uint64		h = (uint64) k;

	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

#define SH_PREFIX idmap
#define SH_ELEMENT_TYPE IdEnt
#define SH_KEY_TYPE int64
#define SH_KEY key
#define SH_HASH_KEY(tb, key) id_hash(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* the order numbers of unsettled items: an open-addressing set of strings */
typedef struct StrEnt
{
	uint32		hash;
	int32		len;			/* -1: empty */
	const char *s;
} StrEnt;

typedef struct StrSet
{
	StrEnt	   *ents;
	uint32		mask;
	uint32		n;
	/* a Bloom filter in front (two bits per string): most lookups miss, and miss here */
	uint64	   *bloom;
	uint32		bloom_mask;		/* bits - 1 */
} StrSet;

/* a ring holds 12 months; more cells than this are looked at from the heap */
#define RING_CELLS_MAX 64
#define ACCT_CHUNK_BITS 12
#define ACCT_CHUNK (1 << ACCT_CHUNK_BITS)
#define MAX_CURRENCIES 32000

/*
 * Rows are read in batches: the first pass over a batch takes each row's
 * columns and asks the CPU for the account it will touch, the next passes
 * find the account (and ask for its months), the last one adds.  The
 * accounts are scattered over far more memory than the caches hold; asked
 * for ahead, their cache misses overlap instead of following one another.
 */
#define BATCH 32
/* (as asm: gcc -O2 drops a __builtin_prefetch whose line is loaded later anyway) */
#if defined(__GNUC__) && defined(__x86_64__)
#define vprefetch(p) __asm__ volatile("prefetcht0 (%0)" : : "r" (p))
#elif defined(__GNUC__) && defined(__aarch64__)
#define vprefetch(p) __asm__ volatile("prfm pldl1keep, [%0]" : : "r" (p))
#elif defined(__GNUC__)
#define vprefetch(p) __builtin_prefetch(p)
#else
#define vprefetch(p) ((void) 0)
#endif

typedef struct VState
{
	MemoryContext cxt;
	/* bump allocator for the small pieces */
	char	   *arena;
	Size		arena_left;
	/* customers: slot = id - min_id in the dense range, the others after it */
	VCust	   *cust;
	int32	   *first_acct;		/* per slot */
	int32	   *root;			/* per slot: the survivor's slot; NULL without merges */
	int32		nslot;
	int32		capslot;
	bool		dense;
	int64		min_id;
	int64		max_id;
	idmap_hash *ids;
	/* accounts, in chunks (pointers stay valid) */
	VAcct	  **acct_chunks;
	int32		nacct;
	int32		capchunks;
	/* currencies */
	char	  **cur_text;
	int		   *cur_len;
	int			ncur;
	int			capcur;
	int			last_cur;
	/* unsettled items' orders */
	StrSet		orders_open;
	/* channel_day rebuilt: per UTC day, channel and currency (DayEnt) */
	HTAB	   *days;
	HTAB	   *chans;			/* channel name -> index into chan_text */
	char	  **chan_text;
	int			nchan;
	int			capchan;
	/* the answer */
	ReturnSetInfo *rsinfo;
} VState;

static void *
arena_alloc(VState *vs, Size size)
{
	void	   *p;

	size = MAXALIGN(size);
	if (size > vs->arena_left)
	{
		Size		block = Max(size, (Size) 1024 * 1024);

		vs->arena = MemoryContextAllocHuge(vs->cxt, block);
		vs->arena_left = block;
	}
	p = vs->arena;
	vs->arena += size;
	vs->arena_left -= size;
	return p;
}

static char *
arena_strdup(VState *vs, const char *s, int len)
{
	char	   *p = arena_alloc(vs, len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static inline VAcct *
acct_at(VState *vs, int32 i)
{
	return &vs->acct_chunks[i >> ACCT_CHUNK_BITS][i & (ACCT_CHUNK - 1)];
}

/* ------------------------------------------------------------------------
 * customers and accounts
 * ------------------------------------------------------------------------
 */

/* a slot after the dense range (an id of no customer row, or ids not dense) */
static int32
slot_new(VState *vs, int64 id)
{
	if (vs->nslot == vs->capslot)
	{
		vs->capslot *= 2;
		vs->cust = repalloc_huge(vs->cust, sizeof(VCust) * vs->capslot);
		vs->first_acct = repalloc_huge(vs->first_acct, sizeof(int32) * vs->capslot);
		if (vs->root)
			vs->root = repalloc_huge(vs->root, sizeof(int32) * vs->capslot);
	}
	memset(&vs->cust[vs->nslot], 0, sizeof(VCust));
	vs->cust[vs->nslot].id = id;
	vs->first_acct[vs->nslot] = -1;
	if (vs->root)
		vs->root[vs->nslot] = vs->nslot;
	return vs->nslot++;
}

/* the slot of a customer id; -1 when unknown and not to be created */
static inline int32
cust_slot(VState *vs, int64 id, bool create)
{
	IdEnt	   *e;
	bool		found;

	if (vs->dense && id >= vs->min_id && id <= vs->max_id)
		return (int32) (id - vs->min_id);
	if (!create)
	{
		e = idmap_lookup(vs->ids, id);
		return e ? e->slot : -1;
	}
	e = idmap_insert(vs->ids, id, &found);
	if (!found)
		e->slot = slot_new(vs, id);
	return e->slot;
}

static inline int32
root_of(VState *vs, int32 slot)
{
	return vs->root ? vs->root[slot] : slot;
}

/* ask for the account a row of (slot, ...) will touch */
static inline void
acct_prefetch(VState *vs, int32 slot)
{
	int32		i = vs->first_acct[slot];

	if (i >= 0)
	{
		char	   *p = (char *) acct_at(vs, i);

		vprefetch(p);
		vprefetch(p + 64);
		vprefetch(p + 128);
	}
}

/* ask for all of an account's months (the ring) */
static inline void
cells_prefetch(VAcct *a)
{
	char	   *p = (char *) a->cells;
	int			bytes = Min(a->ncells * (int) sizeof(VCell), 512);

	for (int off = 0; off < bytes; off += 64)
		vprefetch(p + off);
}

/* the index of an account's month, or -1 when it has none yet */
static inline int
cell_index(VAcct *a, DateADT period)
{
	int			n = Min(a->ncells, CELL_HINTS);

	for (int i = 0; i < n; i++)
		if (a->cell_period[i] == period)
			return i;
	for (int i = CELL_HINTS; i < a->ncells; i++)
		if (a->cells[i].period == period)
			return i;
	return -1;
}

/* ask for one month of an account (a cell spans at most two lines) */
static inline void
cell_prefetch(VAcct *a, int i)
{
	if (i >= 0)
	{
		vprefetch(&a->cells[i]);
		vprefetch((char *) &a->cells[i] + sizeof(VCell) - 1);
	}
}

/* the account (slot, currency); NULL when it does not exist and create is false */
static inline VAcct *
acct_get(VState *vs, int32 slot, int cur, bool create)
{
	int32		i;
	VAcct	   *a;

	for (i = vs->first_acct[slot]; i >= 0; i = a->next)
	{
		a = acct_at(vs, i);
		if (a->cur == cur)
			return a;
	}
	if (!create)
		return NULL;
	if ((vs->nacct >> ACCT_CHUNK_BITS) >= vs->capchunks)
	{
		vs->capchunks *= 2;
		vs->acct_chunks = repalloc(vs->acct_chunks, sizeof(VAcct *) * vs->capchunks);
	}
	if ((vs->nacct & (ACCT_CHUNK - 1)) == 0)
	{
		/* on a cache line boundary: an account is three whole lines */
		char	   *chunk = MemoryContextAllocHuge(vs->cxt, sizeof(VAcct) * ACCT_CHUNK + PG_CACHE_LINE_SIZE);

		vs->acct_chunks[vs->nacct >> ACCT_CHUNK_BITS] = (VAcct *) TYPEALIGN(PG_CACHE_LINE_SIZE, chunk);
	}
	i = vs->nacct++;
	a = acct_at(vs, i);
	memset(a, 0, sizeof(VAcct));
	a->slot = slot;
	a->cur = (int16) cur;
	a->next = vs->first_acct[slot];
	vs->first_acct[slot] = i;
	return a;
}

/* the month of an account, added when new */
static inline VCell *
cell_get(VState *vs, VAcct *a, DateADT period)
{
	VCell	   *c;
	int			i = cell_index(a, period);

	if (i >= 0)
		return &a->cells[i];
	if (a->ncells == a->capcells)
	{
		uint32		cap = a->capcells == 0 ? 4 : a->capcells * 2;
		VCell	   *cells;

		if (a->ncells == PG_UINT16_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("verify_balances: more than %d months of one account", PG_UINT16_MAX)));
		cells = arena_alloc(vs, sizeof(VCell) * cap);
		if (a->ncells > 0)
			memcpy(cells, a->cells, sizeof(VCell) * a->ncells);
		a->cells = cells;
		a->capcells = cap;
	}
	if (a->ncells < CELL_HINTS)
		a->cell_period[a->ncells] = period;
	c = &a->cells[a->ncells++];
	memset(c, 0, sizeof(VCell));
	c->period = period;
	return c;
}

/* a currency as a small number (bytewise: the columns are COLLATE "C") */
static inline int
cur_intern(VState *vs, const char *s, int len)
{
	int			i = vs->last_cur;

	if (i >= 0 && vs->cur_len[i] == len && memcmp(vs->cur_text[i], s, len) == 0)
		return i;
	for (i = 0; i < vs->ncur; i++)
		if (vs->cur_len[i] == len && memcmp(vs->cur_text[i], s, len) == 0)
			return vs->last_cur = i;
	if (vs->ncur == MAX_CURRENCIES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("verify_balances: more than %d currencies", MAX_CURRENCIES)));
	if (vs->ncur == vs->capcur)
	{
		vs->capcur *= 2;
		vs->cur_text = repalloc(vs->cur_text, sizeof(char *) * vs->capcur);
		vs->cur_len = repalloc(vs->cur_len, sizeof(int) * vs->capcur);
	}
	vs->cur_text[vs->ncur] = arena_strdup(vs, s, len);
	vs->cur_len[vs->ncur] = len;
	return vs->last_cur = vs->ncur++;
}

/* a text datum's varlena, detoasted only when compressed or out of line (never, for short keys) */
static inline struct varlena *
vtext(Datum d)
{
	struct varlena *v = (struct varlena *) DatumGetPointer(d);

	if (unlikely(VARATT_IS_COMPRESSED(v) || VARATT_IS_EXTERNAL(v)))
		v = pg_detoast_datum_packed(v);
	return v;
}

/* the currency of a text datum */
static inline int
cur_of_datum(VState *vs, Datum d)
{
	struct varlena *t = vtext(d);

	return cur_intern(vs, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/* ------------------------------------------------------------------------
 * the set of order numbers
 * ------------------------------------------------------------------------
 */
static void
strset_init(StrSet *set, uint32 size)
{
	uint32		cap = 64;

	while (cap < size * 2)
		cap *= 2;
	set->ents = palloc_extended(sizeof(StrEnt) * cap, MCXT_ALLOC_HUGE);
	for (uint32 i = 0; i < cap; i++)
		set->ents[i].len = -1;
	set->mask = cap - 1;
	set->n = 0;
}

static bool
strset_find(StrSet *set, const char *s, int len, uint32 h, StrEnt **where)
{
	uint32		i = h & set->mask;

	for (;;)
	{
		StrEnt	   *e = &set->ents[i];

		if (e->len < 0)
		{
			*where = e;
			return false;
		}
		if (e->hash == h && e->len == len && memcmp(e->s, s, len) == 0)
		{
			*where = e;
			return true;
		}
		i = (i + 1) & set->mask;
	}
}

static void
strset_add(VState *vs, StrSet *set, const char *s, int len)
{
	uint32		h = hash_bytes((const unsigned char *) s, len);
	StrEnt	   *e;

	if (strset_find(set, s, len, h, &e))
		return;
	if ((set->n + 1) * 2 > set->mask + 1)
	{
		StrSet		bigger;

		strset_init(&bigger, (set->mask + 1));
		for (uint32 i = 0; i <= set->mask; i++)
			if (set->ents[i].len >= 0)
			{
				StrEnt	   *to;

				strset_find(&bigger, set->ents[i].s, set->ents[i].len, set->ents[i].hash, &to);
				*to = set->ents[i];
			}
		bigger.n = set->n;
		pfree(set->ents);
		*set = bigger;
		strset_find(set, s, len, h, &e);
	}
	e->hash = h;
	e->len = len;
	e->s = arena_strdup(vs, s, len);
	set->n++;
}

/* the second bit of a string in the filter */
static inline uint32
bloom_second(uint32 h)
{
	return (h * 0x9E3779B1U) >> 7;
}

/* the set is complete: build its filter (16 bits per string) */
static void
strset_seal(StrSet *set)
{
	uint32		bits = 1 << 16;

	while (bits < set->n * 16 && bits < (1U << 30))
		bits *= 2;
	set->bloom = palloc_extended(bits / 8, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	set->bloom_mask = bits - 1;
	for (uint32 i = 0; i <= set->mask; i++)
		if (set->ents[i].len >= 0)
		{
			uint32		h = set->ents[i].hash;
			uint32		b1 = h & set->bloom_mask;
			uint32		b2 = bloom_second(h) & set->bloom_mask;

			set->bloom[b1 >> 6] |= UINT64CONST(1) << (b1 & 63);
			set->bloom[b2 >> 6] |= UINT64CONST(1) << (b2 & 63);
		}
}

static inline bool
strset_has(StrSet *set, const char *s, int len)
{
	StrEnt	   *e;
	uint32		h;
	uint32		b1;
	uint32		b2;

	if (set->n == 0)
		return false;
	h = hash_bytes((const unsigned char *) s, len);
	b1 = h & set->bloom_mask;
	b2 = bloom_second(h) & set->bloom_mask;
	if (!(set->bloom[b1 >> 6] & (UINT64CONST(1) << (b1 & 63)))
		|| !(set->bloom[b2 >> 6] & (UINT64CONST(1) << (b2 & 63))))
		return false;
	return strset_find(set, s, len, h, &e);
}

/* ------------------------------------------------------------------------
 * reading the tables
 * ------------------------------------------------------------------------
 */
/* a table of the extension's schema, read with the statement's snapshot and the caller's SELECT right */
static inline void
table_start(CaTableScan *t, Oid nsp, const char *name)
{
	ca_scan_begin(t, nsp, name, GetActiveSnapshot(), true);
}

static Oid
table_col_type(CaTableScan *t, AttrNumber col)
{
	return TupleDescAttr(RelationGetDescr(t->rel), col - 1)->atttypid;
}

/* a currency_amount column */
static AttrNumber
table_col_money(CaTableScan *t, const char *name)
{
	AttrNumber	col = ca_scan_col(t, name, InvalidOid);

	if (get_typlen(table_col_type(t, col)) != sizeof(CurrencyAmount))
		elog(ERROR, "verify_balances: column %s.%s is not a currency_amount", RelationGetRelationName(t->rel), name);
	return col;
}


static inline void
add_checked(int64 *sum, int64 v)
{
	if (unlikely(pg_add_s64_overflow(*sum, v, sum)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
}

/* a short text datum equal to a C string */
static inline bool
text_is(Datum d, const char *s, int len)
{
	struct varlena *t = vtext(d);

	return (int) VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

static char *
text_copy(VState *vs, Datum d)
{
	struct varlena *t = vtext(d);

	return arena_strdup(vs, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

/* ------------------------------------------------------------------------
 * channel_day: per UTC day, channel and currency
 * ------------------------------------------------------------------------
 */
typedef struct ChanKey
{
	uint32		hash;
	int32		len;
	const char *name;
} ChanKey;

typedef struct ChanEnt
{
	ChanKey		key;
	int32		idx;
} ChanEnt;

typedef struct DayKey
{
	DateADT		day;
	int32		cur;
	int32		chan;
} DayKey;

/* what the books say (led) and what channel_day keeps (kept): orders, purchased, returned */
typedef struct DayEnt
{
	DayKey		key;
	int64		led[3];
	int64		kept[3];
} DayEnt;

/* dynahash callbacks for channel names of any length */
static uint32
chan_hash(const void *key, Size keysize)
{
	return ((const ChanKey *) key)->hash;
}

static int
chan_match(const void *a, const void *b, Size keysize)
{
	const ChanKey *x = a;
	const ChanKey *y = b;

	return !(x->len == y->len && memcmp(x->name, y->name, x->len) == 0);
}

/* the index of a channel name, interned on first sight */
static int32
chan_intern(VState *vs, const char *name, int len)
{
	ChanKey		k;
	ChanEnt    *e;
	bool		found;

	if (vs->chans == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(ChanKey);
		ctl.entrysize = sizeof(ChanEnt);
		ctl.hash = chan_hash;
		ctl.match = chan_match;
		ctl.hcxt = vs->cxt;
		vs->chans = hash_create("verify channels", 64, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	k.hash = hash_bytes((const unsigned char *) name, len);
	k.len = len;
	k.name = name;
	e = hash_search(vs->chans, &k, HASH_ENTER, &found);
	if (!found)
	{
		e->key.name = arena_strdup(vs, name, len);
		if (vs->nchan == vs->capchan)
		{
			vs->capchan = Max(16, vs->capchan * 2);
			vs->chan_text = vs->chan_text ? repalloc(vs->chan_text, sizeof(char *) * vs->capchan)
				: palloc(sizeof(char *) * vs->capchan);
		}
		vs->chan_text[vs->nchan] = (char *) e->key.name;
		e->idx = vs->nchan++;
	}
	return e->idx;
}

/* the UTC day of a time (DateADT and TimestampTz count from the same midnight) */
static inline DateADT
utc_day(TimestampTz ts)
{
	return (DateADT) (ts >= 0 ? ts / USECS_PER_DAY : -((-ts - 1) / USECS_PER_DAY) - 1);
}

/* the figures of a day, channel (text column) and currency */
static DayEnt *
day_get(VState *vs, DateADT day, int cur, Datum channel)
{
	struct varlena *c = vtext(channel);
	DayKey		k;
	DayEnt	   *e;
	bool		found;

	if (vs->days == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(DayKey);
		ctl.entrysize = sizeof(DayEnt);
		ctl.hcxt = vs->cxt;
		vs->days = hash_create("verify channel days", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&k, 0, sizeof(k));
	k.day = day;
	k.cur = cur;
	k.chan = chan_intern(vs, VARDATA_ANY(c), VARSIZE_ANY_EXHDR(c));
	e = hash_search(vs->days, &k, HASH_ENTER, &found);
	if (!found)
	{
		memset(e->led, 0, sizeof(e->led));
		memset(e->kept, 0, sizeof(e->kept));
	}
	return e;
}

/* ------------------------------------------------------------------------
 * the answer
 * ------------------------------------------------------------------------
 */
static Datum
amount_datum(VState *vs, int cur, int64 units)
{
	return DirectFunctionCall2(currency_amount_from_units, Int64GetDatum(units),
							   PointerGetDatum(cstring_to_text_with_len(vs->cur_text[cur], vs->cur_len[cur])));
}

/* a difference in money: both amounts, and both as text */
static void
emit_money(VState *vs, int64 customer_id, int cur, const char *figure, int64 stored, int64 recomputed)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, false, false, false, false, false};

	values[0] = Int64GetDatum(customer_id);
	values[1] = PointerGetDatum(cstring_to_text_with_len(vs->cur_text[cur], vs->cur_len[cur]));
	values[2] = amount_datum(vs, cur, stored);
	values[3] = amount_datum(vs, cur, recomputed);
	values[4] = CStringGetTextDatum(figure);
	values[5] = CStringGetTextDatum(DatumGetCString(DirectFunctionCall1(currency_amount_out, values[2])));
	values[6] = CStringGetTextDatum(DatumGetCString(DirectFunctionCall1(currency_amount_out, values[3])));
	tuplestore_putvalues(vs->rsinfo->setResult, vs->rsinfo->setDesc, values, nulls);
}

/* any other difference: both values as text (NULL for NULL) */
static void
emit_text(VState *vs, int64 customer_id, int cur, const char *figure, const char *stored, const char *recomputed)
{
	Datum		values[7];
	bool		nulls[7] = {false, false, true, true, false, stored == NULL, recomputed == NULL};

	values[0] = Int64GetDatum(customer_id);
	values[1] = PointerGetDatum(cstring_to_text_with_len(vs->cur_text[cur], vs->cur_len[cur]));
	values[2] = values[3] = (Datum) 0;
	values[4] = CStringGetTextDatum(figure);
	values[5] = stored ? CStringGetTextDatum(stored) : (Datum) 0;
	values[6] = recomputed ? CStringGetTextDatum(recomputed) : (Datum) 0;
	tuplestore_putvalues(vs->rsinfo->setResult, vs->rsinfo->setDesc, values, nulls);
}

static char *
int8_text(int64 v)
{
	return psprintf(INT64_FORMAT, v);
}

static char *
ts_text(bool isnull, TimestampTz t)
{
	return isnull ? NULL : DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(t)));
}

static inline void
check_money(VState *vs, int64 id, int cur, const char *figure, int64 stored, int64 recomputed)
{
	if (stored != recomputed)
		emit_money(vs, id, cur, figure, stored, recomputed);
}

static inline void
check_int8(VState *vs, int64 id, int cur, const char *figure, int64 stored, int64 recomputed)
{
	if (stored != recomputed)
		emit_text(vs, id, cur, figure, int8_text(stored), int8_text(recomputed));
}

static inline void
check_ts(VState *vs, int64 id, int cur, const char *figure, bool s_null, TimestampTz s, bool r_null,
		 TimestampTz r)
{
	if (s_null != r_null || (!s_null && s != r))
		emit_text(vs, id, cur, figure, ts_text(s_null, s), ts_text(r_null, r));
}

/* ------------------------------------------------------------------------
 * the month ring a state row must carry: account_period's latest twelve
 * months, as month_ring_of() and the posting core keep it
 * ------------------------------------------------------------------------
 */

/* year * 12 + month - 1, the year as extract(year FROM date) gives it */
static int64
month_number(DateADT d)
{
	int			y,
				m,
				day;

	j2date(d + POSTGRES_EPOCH_JDATE, &y, &m, &day);
	if (y <= 0)
		y = y - 1;				/* 1 BC is year -1 for extract() */
	return (int64) y * 12 + m - 1;
}

/* head - interval '12 months' (the day clamped to the month's end), as a date */
static DateADT
twelve_months_before(DateADT head)
{
	int			y,
				m,
				d;

	j2date(head + POSTGRES_EPOCH_JDATE, &y, &m, &d);
	y -= 1;
	if (d > day_tab[isleap(y)][m - 1])
		d = day_tab[isleap(y)][m - 1];
	return date2j(y, m, d) - POSTGRES_EPOCH_JDATE;
}

static int
cell_period_cmp(const void *a, const void *b)
{
	DateADT		x = (*(VCell *const *) a)->period;
	DateADT		y = (*(VCell *const *) b)->period;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* the ring's cells, oldest first; returns their number */
static int
ring_cells(VAcct *a, VCell **out)
{
	DateADT		head = 0;
	bool		any = false;
	DateADT		from;
	int			n = 0;

	if (a == NULL)
		return 0;
	for (int i = 0; i < a->ncells; i++)
		if ((a->cells[i].flags & CELL_AP) && (!any || a->cells[i].period > head))
		{
			head = a->cells[i].period;
			any = true;
		}
	if (!any || DATE_NOT_FINITE(head))
		return 0;				/* nothing after +-infinity minus 12 months */
	from = twelve_months_before(head);
	for (int i = 0; i < a->ncells; i++)
		if ((a->cells[i].flags & CELL_AP) && !DATE_NOT_FINITE(a->cells[i].period) && a->cells[i].period > from)
			out[n++] = &a->cells[i];
	if (n > 1)
		qsort(out, n, sizeof(VCell *), cell_period_cmp);
	return n;
}

/* the stored ring equal to the cells (as bigint[n][5] with lower bounds 1, or empty)? */
static bool
ring_equal(ArrayType *stored, VCell **cells, int n)
{
	const int64 *e;

	if (ARR_NDIM(stored) == 0)
		return n == 0;
	if (n == 0 || ARR_NDIM(stored) != 2 || ARR_HASNULL(stored) || ARR_ELEMTYPE(stored) != INT8OID
		|| ARR_DIMS(stored)[0] != n || ARR_DIMS(stored)[1] != 5
		|| ARR_LBOUND(stored)[0] != 1 || ARR_LBOUND(stored)[1] != 1)
		return false;
	/* no NULLs: the data follows the fixed header (ARR_DATA_PTR trips -Wsign-compare) */
	e = (const int64 *) ((char *) stored + ARR_OVERHEAD_NONULLS(2));
	for (int i = 0; i < n; i++, e += 5)
		if (e[0] != month_number(cells[i]->period) || e[1] != cells[i]->ap[0] || e[2] != cells[i]->ap[1]
			|| e[3] != cells[i]->ap[2] || e[4] != cells[i]->ap[3])
			return false;
	return true;
}

static char *
ring_text(VCell **cells, int n)
{
	Datum	   *elems;
	int			dims[2] = {n, 5};
	int			lbs[2] = {1, 1};
	ArrayType  *a;

	if (n == 0)
		a = construct_empty_array(INT8OID);
	else
	{
		elems = palloc(sizeof(Datum) * n * 5);
		for (int i = 0; i < n; i++)
		{
			elems[i * 5] = Int64GetDatum(month_number(cells[i]->period));
			for (int f = 0; f < 4; f++)
				elems[i * 5 + 1 + f] = Int64GetDatum(cells[i]->ap[f]);
		}
		a = construct_md_array(elems, NULL, 2, dims, lbs, INT8OID, sizeof(int64), FLOAT8PASSBYVAL,
							   TYPALIGN_DOUBLE);
	}
	return OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(a));
}

/* ------------------------------------------------------------------------
 * the passes
 * ------------------------------------------------------------------------
 */
static void
read_customers(VState *vs, Oid nsp)
{
	CaTableScan		t;
	AttrNumber	c_id,
				c_lang,
				c_since,
				c_group,
				c_limit,
				c_blocked,
				c_merged;
	VCust	   *read;
	int32		nread = 0;
	int32		capread = 1024;
	bool		merges = false;

	table_start(&t, nsp, "customer");
	c_id = ca_scan_col(&t, "customer_id", INT8OID);
	c_lang = ca_scan_col(&t, "language", TEXTOID);
	c_since = ca_scan_col(&t, "customer_since", TIMESTAMPTZOID);
	c_group = ca_scan_col(&t, "customer_group", TEXTOID);
	c_limit = table_col_money(&t, "credit_limit");
	c_blocked = ca_scan_col(&t, "blocked", BOOLOID);
	c_merged = ca_scan_col(&t, "merged_into", INT8OID);
	read = palloc(sizeof(VCust) * capread);
	while (ca_scan_next(&t))
	{
		VCust	   *c;

		if (nread == capread)
		{
			capread *= 2;
			read = repalloc_huge(read, sizeof(VCust) * capread);
		}
		c = &read[nread++];
		memset(c, 0, sizeof(VCust));
		c->id = DatumGetInt64(CA_COL(&t, c_id));
		c->exists = true;
		if (!CA_NUL(&t, c_lang))
			c->language = text_copy(vs, CA_COL(&t, c_lang));
		c->since_null = CA_NUL(&t, c_since);
		c->since = c->since_null ? 0 : DatumGetTimestampTz(CA_COL(&t, c_since));
		if (!CA_NUL(&t, c_group))
			c->group = text_copy(vs, CA_COL(&t, c_group));
		if (!CA_NUL(&t, c_limit))
		{
			c->credit_limit = *DatumGetCurrencyAmountP(CA_COL(&t, c_limit));
			c->has_credit_limit = true;
		}
		c->blocked = CA_NUL(&t, c_blocked) ? false : DatumGetBool(CA_COL(&t, c_blocked));
		if (!CA_NUL(&t, c_merged))
		{
			c->merged_into = DatumGetInt64(CA_COL(&t, c_merged));
			c->has_merged_into = true;
			merges = true;
		}
	}
	ca_scan_end(&t);

	/* slot = id - min_id when the ids are dense (an identity column), else by hash */
	if (nread > 0)
	{
		vs->min_id = vs->max_id = read[0].id;
		for (int32 i = 1; i < nread; i++)
		{
			vs->min_id = Min(vs->min_id, read[i].id);
			vs->max_id = Max(vs->max_id, read[i].id);
		}
		vs->dense = (uint64) vs->max_id - (uint64) vs->min_id < (uint64) nread * 4 + 4096;
	}
	vs->capslot = vs->dense ? (int32) (vs->max_id - vs->min_id + 1) + 1024 : nread + 1024;
	vs->cust = palloc_extended(sizeof(VCust) * vs->capslot, MCXT_ALLOC_HUGE);
	vs->first_acct = palloc_extended(sizeof(int32) * vs->capslot, MCXT_ALLOC_HUGE);
	if (merges)
		vs->root = palloc_extended(sizeof(int32) * vs->capslot, MCXT_ALLOC_HUGE);
	if (vs->dense)
	{
		vs->nslot = (int32) (vs->max_id - vs->min_id + 1);
		for (int32 i = 0; i < vs->nslot; i++)
		{
			memset(&vs->cust[i], 0, sizeof(VCust));
			vs->cust[i].id = vs->min_id + i;
			vs->first_acct[i] = -1;
			if (vs->root)
				vs->root[i] = i;
		}
		for (int32 i = 0; i < nread; i++)
			vs->cust[read[i].id - vs->min_id] = read[i];
	}
	else
		for (int32 i = 0; i < nread; i++)
		{
			int32		s = cust_slot(vs, read[i].id, true);

			vs->cust[s] = read[i];
		}
	pfree(read);

	/*
	 * The survivor of each merged-away customer: the top of its chain.  A
	 * chain that reaches an unknown customer or goes round in a circle has
	 * no top; its rows stay under the customer itself.
	 */
	if (vs->root)
		for (int32 i = 0; i < vs->nslot; i++)
		{
			int32		at = i;
			int32		steps = 0;

			if (!vs->cust[i].exists || !vs->cust[i].has_merged_into)
				continue;
			while (vs->cust[at].has_merged_into && steps <= vs->nslot)
			{
				at = cust_slot(vs, vs->cust[at].merged_into, false);
				if (at < 0 || !vs->cust[at].exists)
					break;
				steps++;
			}
			vs->root[i] = (at >= 0 && vs->cust[at].exists && !vs->cust[at].has_merged_into) ? at : i;
		}
}

typedef struct PeriodRow
{
	int32		slot;
	int32		cur;
	DateADT		period;
	int64		v[4];
	VAcct	   *a;
	int			cell;			/* the month's index, -1: new */
} PeriodRow;

static void
read_periods(VState *vs, Oid nsp)
{
	CaTableScan		t;
	AttrNumber	c_id,
				c_cur,
				c_period,
				c_rev,
				c_pur,
				c_ret,
				c_ord;
	PeriodRow	rows[BATCH];
	int			n;

	table_start(&t, nsp, "account_period");
	c_id = ca_scan_col(&t, "customer_id", INT8OID);
	c_cur = ca_scan_col(&t, "currency", TEXTOID);
	c_period = ca_scan_col(&t, "period", DATEOID);
	c_rev = ca_scan_col(&t, "revenue", INT8OID);
	c_pur = ca_scan_col(&t, "purchased", INT8OID);
	c_ret = ca_scan_col(&t, "returned", INT8OID);
	c_ord = ca_scan_col(&t, "orders", INT4OID);
	do
	{
		for (n = 0; n < BATCH && ca_scan_next(&t); n++)
		{
			PeriodRow  *r = &rows[n];

			r->slot = cust_slot(vs, DatumGetInt64(CA_COL(&t, c_id)), true);
			r->cur = cur_of_datum(vs, CA_COL(&t, c_cur));
			r->period = DatumGetDateADT(CA_COL(&t, c_period));
			r->v[0] = DatumGetInt64(CA_COL(&t, c_rev));
			r->v[1] = DatumGetInt64(CA_COL(&t, c_pur));
			r->v[2] = DatumGetInt64(CA_COL(&t, c_ret));
			r->v[3] = DatumGetInt32(CA_COL(&t, c_ord));
			acct_prefetch(vs, r->slot);
		}
		for (int i = 0; i < n; i++)
		{
			rows[i].a = acct_get(vs, rows[i].slot, rows[i].cur, true);
			rows[i].cell = cell_index(rows[i].a, rows[i].period);
			cell_prefetch(rows[i].a, rows[i].cell);
		}
		for (int i = 0; i < n; i++)
		{
			VCell	   *cell = rows[i].cell >= 0 ? &rows[i].a->cells[rows[i].cell]
				: cell_get(vs, rows[i].a, rows[i].period);

			cell->flags |= CELL_AP;
			memcpy(cell->ap, rows[i].v, sizeof(cell->ap));
		}
	} while (n == BATCH);
	ca_scan_end(&t);
}

#define L_ORDER		0x01		/* entry_type 'order' */
#define L_PURCHASE	0x02		/* 'order' or 'cancel' */
#define L_EVENT		0x04		/* not 'merge_in' or 'merge_out' */
#define L_PERIOD	0x08		/* revenue_period is set */

typedef struct LedgerRow
{
	int32		slot;
	int16		cur;
	uint8		what;			/* L_* */
	int8		kind;			/* H_WEBSHOP.. of an order, or -1 */
	DateADT		period;
	TimestampTz at;
	int64		v[6];			/* amount, open, credit, revenue, returned, orders */
	VAcct	   *r;
	int			cell;			/* the month's index in r, -1: new */
} LedgerRow;

static void
read_ledger(VState *vs, Oid nsp)
{
	CaTableScan		t;
	AttrNumber	c_id,
				c_cur,
				c_type,
				c_amount,
				c_open,
				c_credit,
				c_rev,
				c_ret,
				c_ord,
				c_period,
				c_at,
				c_kind,
				c_chan;
	Oid			kinds[5];
	static const char *const kind_names[5] = {"webshop", "store", "marketplace", "callcenter", "app"};
	LedgerRow	rows[BATCH];
	int			n;

	table_start(&t, nsp, "ledger");
	c_id = ca_scan_col(&t, "customer_id", INT8OID);
	c_cur = ca_scan_col(&t, "currency", TEXTOID);
	c_type = ca_scan_col(&t, "entry_type", TEXTOID);
	c_amount = table_col_money(&t, "amount");
	c_open = ca_scan_col(&t, "open_delta", INT8OID);
	c_credit = ca_scan_col(&t, "credit_delta", INT8OID);
	c_rev = ca_scan_col(&t, "revenue_delta", INT8OID);
	c_ret = ca_scan_col(&t, "returned_delta", INT8OID);
	c_ord = ca_scan_col(&t, "order_delta", INT4OID);
	c_period = ca_scan_col(&t, "revenue_period", DATEOID);
	c_at = ca_scan_col(&t, "event_at", TIMESTAMPTZOID);
	c_kind = ca_scan_col(&t, "channel_kind", InvalidOid);
	c_chan = ca_scan_col(&t, "channel", TEXTOID);
	for (int k = 0; k < 5; k++)
		kinds[k] = DatumGetObjectId(DirectFunctionCall2(enum_in, CStringGetDatum(kind_names[k]),
														ObjectIdGetDatum(table_col_type(&t, c_kind))));
	do
	{
		for (n = 0; n < BATCH && ca_scan_next(&t); n++)
		{
			LedgerRow  *r = &rows[n];
			struct varlena *type = vtext(CA_COL(&t, c_type));
			const char *tp = VARDATA_ANY(type);
			int			tlen = VARSIZE_ANY_EXHDR(type);

			r->slot = cust_slot(vs, DatumGetInt64(CA_COL(&t, c_id)), true);
			r->cur = (int16) cur_of_datum(vs, CA_COL(&t, c_cur));
			r->what = 0;
			r->kind = -1;
			if (tlen == 5 && memcmp(tp, "order", 5) == 0)
			{
				r->what |= L_ORDER | L_PURCHASE;
				if (!CA_NUL(&t, c_kind))
				{
					Oid			kind = DatumGetObjectId(CA_COL(&t, c_kind));

					for (int k = 0; k < 5; k++)
						if (kind == kinds[k])
							r->kind = (int8) (H_WEBSHOP + k);
				}
			}
			else if (tlen == 6 && memcmp(tp, "cancel", 6) == 0)
				r->what |= L_PURCHASE;
			else if (tlen == 6 && memcmp(tp, "return", 6) == 0 && !CA_NUL(&t, c_chan))
			{
				/* channel_day: a return on its day, under the channel that sold the goods */
				DayEnt	   *d = day_get(vs, utc_day(DatumGetTimestampTz(CA_COL(&t, c_at))), r->cur, CA_COL(&t, c_chan));

				add_checked(&d->led[2], DatumGetInt64(CA_COL(&t, c_ret)));
			}
			if (!((tlen == 8 && memcmp(tp, "merge_in", 8) == 0) || (tlen == 9 && memcmp(tp, "merge_out", 9) == 0)))
				r->what |= L_EVENT;
			if (!CA_NUL(&t, c_period))
			{
				r->what |= L_PERIOD;
				r->period = DatumGetDateADT(CA_COL(&t, c_period));
			}
			r->at = DatumGetTimestampTz(CA_COL(&t, c_at));
			r->v[0] = DatumGetCurrencyAmountP(CA_COL(&t, c_amount))->units;
			r->v[1] = DatumGetInt64(CA_COL(&t, c_open));
			r->v[2] = DatumGetInt64(CA_COL(&t, c_credit));
			r->v[3] = DatumGetInt64(CA_COL(&t, c_rev));
			r->v[4] = DatumGetInt64(CA_COL(&t, c_ret));
			r->v[5] = DatumGetInt32(CA_COL(&t, c_ord));
			acct_prefetch(vs, r->slot);
		}
		/* the accounts (asked for above): money and history; ask for the months */
		for (int i = 0; i < n; i++)
		{
			LedgerRow  *row = &rows[i];
			int32		root = root_of(vs, row->slot);
			VAcct	   *a = acct_get(vs, row->slot, row->cur, true);
			VAcct	   *r;
			TimestampTz at = row->at;

			/* history and months under the surviving customer */
			r = root == row->slot ? a : acct_get(vs, root, row->cur, true);
			row->r = r;
			if (row->what & L_PERIOD)
			{
				row->cell = cell_index(r, row->period);
				cell_prefetch(r, row->cell);
			}
			a->flags |= A_MONEY;
			for (int f = 0; f < 6; f++)
				add_checked(&a->money[f], row->v[f]);
			if (row->what & L_ORDER)
			{
				if (!(r->hist_set & (1 << H_FIRST_ORDER)) || at < r->hist[H_FIRST_ORDER])
					r->hist[H_FIRST_ORDER] = at;
				if (!(r->hist_set & (1 << H_LAST_PURCHASE)) || at > r->hist[H_LAST_PURCHASE])
					r->hist[H_LAST_PURCHASE] = at;
				r->hist_set |= (1 << H_FIRST_ORDER) | (1 << H_LAST_PURCHASE);
				if (row->kind >= 0)
				{
					if (!(r->hist_set & (1 << row->kind)) || at > r->hist[row->kind])
						r->hist[row->kind] = at;
					r->hist_set |= (1 << row->kind);
				}
			}
			if (row->what & L_EVENT)
			{
				if (!(r->hist_set & (1 << H_LAST_EVENT)) || at > r->hist[H_LAST_EVENT])
					r->hist[H_LAST_EVENT] = at;
				r->hist_set |= (1 << H_LAST_EVENT);
			}
		}
		/* the months */
		for (int i = 0; i < n; i++)
		{
			LedgerRow  *row = &rows[i];
			VCell	   *cell;

			if (!(row->what & L_PERIOD))
				continue;
			cell = row->cell >= 0 ? &row->r->cells[row->cell] : cell_get(vs, row->r, row->period);
			cell->flags |= CELL_LED;
			add_checked(&cell->led[0], row->v[3]);
			if (row->what & L_PURCHASE)
				add_checked(&cell->led[1], row->v[3]);
			add_checked(&cell->led[2], row->v[4]);
			add_checked(&cell->led[3], row->v[5]);
		}
	} while (n == BATCH);
	ca_scan_end(&t);
}

typedef struct ItemRow
{
	int32		slot;
	int32		cur;
	bool		due;			/* not a prepayment */
	int64		open;
	TimestampTz due_at;
} ItemRow;

static void
read_items(VState *vs, Oid nsp)
{
	CaTableScan		t;
	AttrNumber	c_id,
				c_cur,
				c_kind,
				c_order,
				c_open,
				c_due,
				c_settled;
	ItemRow		rows[BATCH];
	int			n;
	bool		more = true;

	table_start(&t, nsp, "open_item");
	c_id = ca_scan_col(&t, "customer_id", INT8OID);
	c_cur = ca_scan_col(&t, "currency", TEXTOID);
	c_kind = ca_scan_col(&t, "kind", TEXTOID);
	c_order = ca_scan_col(&t, "order_no", TEXTOID);
	c_open = ca_scan_col(&t, "open", INT8OID);
	c_due = ca_scan_col(&t, "due_at", TIMESTAMPTZOID);
	c_settled = ca_scan_col(&t, "settled_at", TIMESTAMPTZOID);
	strset_init(&vs->orders_open, 1024);
	while (more)
	{
		for (n = 0; n < BATCH && (more = ca_scan_next(&t));)
		{
			ItemRow    *r = &rows[n];

			if (!CA_NUL(&t, c_settled))
				continue;
			if (!CA_NUL(&t, c_order))
			{
				struct varlena *o = vtext(CA_COL(&t, c_order));

				strset_add(vs, &vs->orders_open, VARDATA_ANY(o), VARSIZE_ANY_EXHDR(o));
			}
			r->slot = cust_slot(vs, DatumGetInt64(CA_COL(&t, c_id)), true);
			r->cur = cur_of_datum(vs, CA_COL(&t, c_cur));
			r->open = DatumGetInt64(CA_COL(&t, c_open));
			r->due = !text_is(CA_COL(&t, c_kind), "prepayment", 10);
			r->due_at = DatumGetTimestampTz(CA_COL(&t, c_due));
			acct_prefetch(vs, r->slot);
			n++;
		}
		for (int i = 0; i < n; i++)
		{
			VAcct	   *a = acct_get(vs, rows[i].slot, rows[i].cur, true);

			a->flags |= A_ITEMS;
			add_checked(&a->items_open, rows[i].open);
			if (rows[i].due)
			{
				if (!(a->flags & A_NEXT_DUE) || rows[i].due_at < a->next_due)
					a->next_due = rows[i].due_at;
				a->flags |= A_NEXT_DUE;
			}
		}
	}
	ca_scan_end(&t);
	strset_seal(&vs->orders_open);
}

typedef struct OrderRow
{
	int32		slot;
	int32		cur;
} OrderRow;

static void
read_orders(VState *vs, Oid nsp)
{
	CaTableScan		t;
	AttrNumber	c_no,
				c_id,
				c_total,
				c_cancelled,
				c_placed,
				c_chan;
	int32		last_code = -1;
	int			last_cur = -1;
	OrderRow	rows[BATCH];
	int			n;
	bool		more = true;

	table_start(&t, nsp, "orders");
	c_no = ca_scan_col(&t, "order_no", TEXTOID);
	c_id = ca_scan_col(&t, "customer_id", INT8OID);
	c_total = table_col_money(&t, "total");
	c_cancelled = ca_scan_col(&t, "cancelled_at", TIMESTAMPTZOID);
	c_placed = ca_scan_col(&t, "placed_at", TIMESTAMPTZOID);
	c_chan = ca_scan_col(&t, "channel", TEXTOID);
	while (more)
	{
		for (n = 0; n < BATCH && (more = ca_scan_next(&t));)
		{
			int32		code;
			CurrencyAmount *total;
			DayEnt	   *d;

			if (!CA_NUL(&t, c_cancelled))
				continue;
			/* by customer_id and currency_of(total) */
			total = DatumGetCurrencyAmountP(CA_COL(&t, c_total));
			code = total->code;
			if (code != last_code)
			{
				char		iso[4];

				ca_currency_unpack(code, iso);
				last_cur = cur_intern(vs, iso, 3);
				last_code = code;
			}
			/* channel_day: an order not cancelled, on the day it was placed */
			d = day_get(vs, utc_day(DatumGetTimestampTz(CA_COL(&t, c_placed))), last_cur, CA_COL(&t, c_chan));
			d->led[0]++;
			add_checked(&d->led[1], total->units);
			if (vs->orders_open.n > 0)
			{
				struct varlena *o = vtext(CA_COL(&t, c_no));

				if (strset_has(&vs->orders_open, VARDATA_ANY(o), VARSIZE_ANY_EXHDR(o)))
					continue;
			}
			rows[n].slot = cust_slot(vs, DatumGetInt64(CA_COL(&t, c_id)), true);
			rows[n].cur = last_cur;
			acct_prefetch(vs, rows[n].slot);
			n++;
		}
		for (int i = 0; i < n; i++)
			acct_get(vs, rows[i].slot, rows[i].cur, true)->paid++;
	}
	ca_scan_end(&t);
}

/* what channel_day keeps, the slots added up */
static void
read_channel_days(VState *vs, Oid nsp)
{
	CaTableScan		t;
	AttrNumber	c_day,
				c_chan,
				c_cur,
				c_f[3];

	table_start(&t, nsp, "channel_day");
	c_day = ca_scan_col(&t, "day", DATEOID);
	c_chan = ca_scan_col(&t, "channel", TEXTOID);
	c_cur = ca_scan_col(&t, "currency", TEXTOID);
	c_f[0] = ca_scan_col(&t, "orders", INT8OID);
	c_f[1] = ca_scan_col(&t, "purchased", INT8OID);
	c_f[2] = ca_scan_col(&t, "returned", INT8OID);
	while (ca_scan_next(&t))
	{
		DayEnt	   *d = day_get(vs, DatumGetDateADT(CA_COL(&t, c_day)), cur_of_datum(vs, CA_COL(&t, c_cur)),
								CA_COL(&t, c_chan));

		for (int f = 0; f < 3; f++)
			add_checked(&d->kept[f], DatumGetInt64(CA_COL(&t, c_f[f])));
	}
	ca_scan_end(&t);
}

/* a channel_day figure as text: "2026-11-21 till: 6" */
static char *
day_text(VState *vs, const DayEnt *d, int f, int64 v)
{
	int			y,
				m,
				dd;
	char	   *value;

	j2date(d->key.day + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
	value = f == 0 ? int8_text(v)
		: DatumGetCString(DirectFunctionCall1(currency_amount_out, amount_datum(vs, d->key.cur, v)));
	return psprintf("%04d-%02d-%02d %s: %s", y, m, dd, vs->chan_text[d->key.chan], value);
}

/* every channel_day figure that differs from the books (customer_id NULL) */
static void
check_channel_days(VState *vs)
{
	static const char *const figures[3] = {"channel_day orders", "channel_day purchased", "channel_day returned"};
	HASH_SEQ_STATUS seq;
	DayEnt	   *d;

	if (vs->days == NULL)
		return;
	hash_seq_init(&seq, vs->days);
	while ((d = hash_seq_search(&seq)) != NULL)
		for (int f = 0; f < 3; f++)
			if (d->led[f] != d->kept[f])
			{
				Datum		values[7];
				bool		nulls[7] = {true, false, true, true, false, false, false};

				values[1] = PointerGetDatum(cstring_to_text_with_len(vs->cur_text[d->key.cur], vs->cur_len[d->key.cur]));
				values[4] = CStringGetTextDatum(figures[f]);
				values[5] = CStringGetTextDatum(day_text(vs, d, f, d->kept[f]));
				values[6] = CStringGetTextDatum(day_text(vs, d, f, d->led[f]));
				tuplestore_putvalues(vs->rsinfo->setResult, vs->rsinfo->setDesc, values, nulls);
			}
}

static void
read_notices(VState *vs, Oid nsp)
{
	CaTableScan		t;
	AttrNumber	c_id,
				c_cur,
				c_level,
				c_cycle;

	table_start(&t, nsp, "dunning_notice");
	c_id = ca_scan_col(&t, "customer_id", INT8OID);
	c_cur = ca_scan_col(&t, "currency", TEXTOID);
	c_level = ca_scan_col(&t, "level", INT4OID);
	c_cycle = ca_scan_col(&t, "cycle", INT4OID);
	while (ca_scan_next(&t))
	{
		int32		s = cust_slot(vs, DatumGetInt64(CA_COL(&t, c_id)), true);
		VAcct	   *a = acct_get(vs, s, cur_of_datum(vs, CA_COL(&t, c_cur)), true);
		int32		cycle = DatumGetInt32(CA_COL(&t, c_cycle));
		int32		level = DatumGetInt32(CA_COL(&t, c_level));
		VNotice    *n;

		for (n = a->notices; n != NULL && n->cycle != cycle; n = n->next)
			;
		if (n == NULL)
		{
			n = arena_alloc(vs, sizeof(VNotice));
			n->cycle = cycle;
			n->level = level;
			n->next = a->notices;
			a->notices = n;
		}
		else if (level > n->level)
			n->level = level;
	}
	ca_scan_end(&t);
}

/* the state of an account as the figures compare it (NULL state: zeros and NULLs) */
typedef struct StateVals
{
	bool		present;
	int64		balance,
				open,
				credit,
				revenue,
				returned,
				orders,
				paid;
	int32		level,
				cycle;
	bool		hist_null[H_N];
	TimestampTz hist[H_N];
	bool		next_due_null;
	TimestampTz next_due;
} StateVals;

/* a state row's copy of the customer facts, and its ring */
typedef struct StateRow
{
	int32		slot;
	int32		cur;
	StateVals	st;
	ArrayType  *ring;
	bool		merged_null;
	bool		blocked_null;
	bool		since_null;
	bool		blocked;
	int64		merged;
	TimestampTz since;
	char	   *language;		/* NULL for NULL */
	char	   *group;
	CurrencyAmount limit;
	bool		limit_null;
	VAcct	   *a;
} StateRow;

/* the figures of the first two groups: everything but the ring and the customer facts */
static void
check_account(VState *vs, VAcct *a, const StateVals *st)
{
	VCust	   *c = &vs->cust[a->slot];
	int64		id = c->id;
	int			cur = a->cur;
	bool		merged_away = c->exists && c->has_merged_into;
	int64		paid;
	int32		level = 0;
	int64		diff;

	check_money(vs, id, cur, "balance", st->balance, a->money[0]);
	check_money(vs, id, cur, "open_amount", st->open, a->money[1]);
	check_money(vs, id, cur, "store_credit", st->credit, a->money[2]);
	check_money(vs, id, cur, "lifetime_revenue", st->revenue, a->money[3]);
	check_money(vs, id, cur, "lifetime_returned", st->returned, a->money[4]);
	check_int8(vs, id, cur, "orders_count", st->orders, a->money[5]);
	check_money(vs, id, cur, "open_items", st->open, a->items_open);
	if (pg_sub_s64_overflow(st->open, st->credit, &diff))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("bigint out of range")));
	check_money(vs, id, cur, "balance = open - credit", st->balance, diff);
	check_ts(vs, id, cur, "next_due_at", st->next_due_null, st->next_due,
			 !(a->flags & A_NEXT_DUE), a->next_due);
	paid = merged_away ? 0 : a->paid;
	check_int8(vs, id, cur, "paid_orders", st->paid, paid);
	if (!merged_away && st->present)
		for (VNotice *n = a->notices; n != NULL; n = n->next)
			if (n->cycle == st->cycle)
				level = n->level;
	if (st->level != level)
		emit_text(vs, id, cur, "dunning_level", psprintf("%d", st->level), psprintf("%d", level));

	/* history figures, on the surviving accounts only */
	if (!merged_away)
		for (int h = 0; h < H_N; h++)
			check_ts(vs, id, cur, hist_figure[h], st->hist_null[h], st->hist[h],
					 !(a->hist_set & (1 << h)), a->hist[h]);
}

/* the customer facts copied onto a state row */
static void
check_facts(VState *vs, const StateRow *r)
{
	VCust	   *c = &vs->cust[r->slot];
	int64		id = c->id;
	int			cur = r->cur;
	bool		cx = c->exists;
	bool		rn;

	/* merged_into */
	rn = !cx || !c->has_merged_into;
	if (r->merged_null != rn || (!rn && r->merged != c->merged_into))
		emit_text(vs, id, cur, "merged_into", r->merged_null ? NULL : int8_text(r->merged),
				  rn ? NULL : int8_text(c->merged_into));
	/* customer_blocked (bool::text is true/false) */
	if (r->blocked_null != !cx || (cx && !r->blocked_null && r->blocked != c->blocked))
		emit_text(vs, id, cur, "customer_blocked", r->blocked_null ? NULL : (r->blocked ? "true" : "false"),
				  !cx ? NULL : (c->blocked ? "true" : "false"));
	/* customer_since */
	check_ts(vs, id, cur, "customer_since", r->since_null, r->since, !cx || c->since_null, c->since);
	/* customer_language, customer_group: text, equal when bytewise equal */
	for (int f = 0; f < 2; f++)
	{
		const char *sv = f == 0 ? r->language : r->group;
		const char *rv = cx ? (f == 0 ? c->language : c->group) : NULL;

		if ((sv == NULL) != (rv == NULL) || (sv != NULL && strcmp(sv, rv) != 0))
			emit_text(vs, id, cur, f == 0 ? "customer_language" : "customer_group", sv, rv);
	}
	/* customer_credit_limit: the money type's equality */
	{
		bool		differs;

		rn = !cx || !c->has_credit_limit;
		if (r->limit_null || rn)
			differs = r->limit_null != rn;
		else
			differs = !DatumGetBool(DirectFunctionCall2(currency_amount_eq, PointerGetDatum(&r->limit),
														PointerGetDatum(&c->credit_limit)));
		if (differs)
			emit_text(vs, id, cur, "customer_credit_limit",
					  r->limit_null ? NULL : DatumGetCString(DirectFunctionCall1(currency_amount_out,
																			   PointerGetDatum(&r->limit))),
					  rn ? NULL : DatumGetCString(DirectFunctionCall1(currency_amount_out,
																	   PointerGetDatum(&c->credit_limit))));
	}
}

/* a text column without its NUL check: NULL for NULL */
static char *
text_or_null(CaTableScan *t, AttrNumber col)
{
	return CA_NUL(t, col) ? NULL : text_to_cstring((text *) DatumGetPointer(CA_COL(t, col)));
}

static void
read_states(VState *vs, Oid nsp)
{
	CaTableScan		t;
	AttrNumber	c_id,
				c_cur,
				c_balance,
				c_open,
				c_credit,
				c_revenue,
				c_returned,
				c_orders,
				c_paid,
				c_hist[H_N],
				c_next_due,
				c_level,
				c_cycle,
				c_ring,
				c_merged,
				c_blocked,
				c_since,
				c_language,
				c_limit,
				c_group;
	MemoryContext batchcxt = AllocSetContextCreate(CurrentMemoryContext, "verify_balances batch",
												   ALLOCSET_DEFAULT_SIZES);
	StateRow	rows[BATCH];
	int			n;

	table_start(&t, nsp, "account_state");
	c_id = ca_scan_col(&t, "customer_id", INT8OID);
	c_cur = ca_scan_col(&t, "currency", TEXTOID);
	c_balance = ca_scan_col(&t, "balance", INT8OID);
	c_open = ca_scan_col(&t, "open_amount", INT8OID);
	c_credit = ca_scan_col(&t, "store_credit", INT8OID);
	c_revenue = ca_scan_col(&t, "lifetime_revenue", INT8OID);
	c_returned = ca_scan_col(&t, "lifetime_returned", INT8OID);
	c_orders = ca_scan_col(&t, "orders_count", INT4OID);
	c_paid = ca_scan_col(&t, "paid_orders", INT4OID);
	for (int h = 0; h < H_N; h++)
		c_hist[h] = ca_scan_col(&t, hist_column[h], TIMESTAMPTZOID);
	c_next_due = ca_scan_col(&t, "next_due_at", TIMESTAMPTZOID);
	c_level = ca_scan_col(&t, "dunning_level", INT4OID);
	c_cycle = ca_scan_col(&t, "dunning_cycle", INT4OID);
	c_ring = ca_scan_col(&t, "month_ring", INT8ARRAYOID);
	c_merged = ca_scan_col(&t, "merged_into", INT8OID);
	c_blocked = ca_scan_col(&t, "customer_blocked", BOOLOID);
	c_since = ca_scan_col(&t, "customer_since", TIMESTAMPTZOID);
	c_language = ca_scan_col(&t, "customer_language", TEXTOID);
	c_limit = table_col_money(&t, "customer_credit_limit");
	c_group = ca_scan_col(&t, "customer_group", TEXTOID);

	do
	{
		MemoryContext old = MemoryContextSwitchTo(batchcxt);

		for (n = 0; n < BATCH && ca_scan_next(&t); n++)
		{
			StateRow   *r = &rows[n];
			StateVals  *st = &r->st;

#define I8(c) (CA_NUL(&t, c) ? 0 : DatumGetInt64(CA_COL(&t, c)))
#define I4(c) (CA_NUL(&t, c) ? 0 : DatumGetInt32(CA_COL(&t, c)))
			r->slot = cust_slot(vs, DatumGetInt64(CA_COL(&t, c_id)), true);
			r->cur = cur_of_datum(vs, CA_COL(&t, c_cur));
			st->present = true;
			st->balance = I8(c_balance);
			st->open = I8(c_open);
			st->credit = I8(c_credit);
			st->revenue = I8(c_revenue);
			st->returned = I8(c_returned);
			st->orders = I4(c_orders);
			st->paid = I4(c_paid);
			st->level = I4(c_level);
			st->cycle = I4(c_cycle);
			for (int h = 0; h < H_N; h++)
			{
				st->hist_null[h] = CA_NUL(&t, c_hist[h]);
				st->hist[h] = st->hist_null[h] ? 0 : DatumGetTimestampTz(CA_COL(&t, c_hist[h]));
			}
			st->next_due_null = CA_NUL(&t, c_next_due);
			st->next_due = st->next_due_null ? 0 : DatumGetTimestampTz(CA_COL(&t, c_next_due));
			r->merged_null = CA_NUL(&t, c_merged);
			r->merged = I8(c_merged);
			r->blocked_null = CA_NUL(&t, c_blocked);
			r->blocked = r->blocked_null ? false : DatumGetBool(CA_COL(&t, c_blocked));
			r->since_null = CA_NUL(&t, c_since);
			r->since = r->since_null ? 0 : DatumGetTimestampTz(CA_COL(&t, c_since));
			r->language = text_or_null(&t, c_language);
			r->group = text_or_null(&t, c_group);
			r->limit_null = CA_NUL(&t, c_limit);
			if (!r->limit_null)
				r->limit = *DatumGetCurrencyAmountP(CA_COL(&t, c_limit));
			/* the ring outlives the row: copied (coalesce(month_ring, '{}')) */
			r->ring = CA_NUL(&t, c_ring) ? construct_empty_array(INT8OID) : DatumGetArrayTypePCopy(CA_COL(&t, c_ring));
#undef I8
#undef I4
			acct_prefetch(vs, r->slot);
			vprefetch(&vs->cust[r->slot]);
		}
		for (int i = 0; i < n; i++)
		{
			rows[i].a = acct_get(vs, rows[i].slot, rows[i].cur, true);
			cells_prefetch(rows[i].a);
		}
		for (int i = 0; i < n; i++)
		{
			StateRow   *r = &rows[i];
			VAcct	   *a = r->a;
			VCell	   *few[RING_CELLS_MAX];
			VCell	  **cells = a->ncells <= RING_CELLS_MAX ? few : palloc(sizeof(VCell *) * a->ncells);
			int			nring;

			a->flags |= A_STATE;
			check_account(vs, a, &r->st);
			/* the month ring, against account_period */
			nring = ring_cells(a, cells);
			if (!ring_equal(r->ring, cells, nring))
				emit_text(vs, vs->cust[r->slot].id, a->cur, "month_ring",
						  OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(r->ring)), ring_text(cells, nring));
			check_facts(vs, r);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batchcxt);
	} while (n == BATCH);
	ca_scan_end(&t);
	MemoryContextDelete(batchcxt);
}

/* accounts with ledger rows and no state row, and every month */
static void
check_rest(VState *vs)
{
	StateVals	none;

	memset(&none, 0, sizeof(none));
	for (int h = 0; h < H_N; h++)
		none.hist_null[h] = true;
	none.next_due_null = true;
	for (int32 i = 0; i < vs->nacct; i++)
	{
		VAcct	   *a = acct_at(vs, i);
		int64		id = vs->cust[a->slot].id;

		if (i + 8 < vs->nacct)
			cells_prefetch(acct_at(vs, i + 8));
		if ((a->flags & A_MONEY) && !(a->flags & A_STATE))
			check_account(vs, a, &none);
		/* the monthly counters (a month missing on one side counts as zeros) */
		for (int m = 0; m < a->ncells; m++)
		{
			VCell	   *c = &a->cells[m];

			check_money(vs, id, a->cur, "period revenue", c->ap[0], c->led[0]);
			check_money(vs, id, a->cur, "period purchased", c->ap[1], c->led[1]);
			check_money(vs, id, a->cur, "period returned", c->ap[2], c->led[2]);
			check_int8(vs, id, a->cur, "period orders", c->ap[3], c->led[3]);
		}
	}
}

PG_FUNCTION_INFO_V1(verify_balances_rebuild);
Datum
verify_balances_rebuild(PG_FUNCTION_ARGS)
{
	VState		vs;
	Oid			nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
	MemoryContext old;

	InitMaterializedSRF(fcinfo, 0);
	memset(&vs, 0, sizeof(vs));
	vs.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	vs.cxt = AllocSetContextCreate(CurrentMemoryContext, "verify_balances", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(vs.cxt);
	vs.ids = idmap_create(vs.cxt, 1024, NULL);
	vs.capchunks = 64;
	vs.acct_chunks = palloc(sizeof(VAcct *) * vs.capchunks);
	vs.capcur = 8;
	vs.cur_text = palloc(sizeof(char *) * vs.capcur);
	vs.cur_len = palloc(sizeof(int) * vs.capcur);
	vs.last_cur = -1;

#ifdef VERIFY_TIMING
	/* build with EXTRA_CFLAGS=-DVERIFY_TIMING to see where the time goes (DEBUG1) */
#define PASS(x) do { instr_time t0, t1; INSTR_TIME_SET_CURRENT(t0); x; INSTR_TIME_SET_CURRENT(t1); \
		INSTR_TIME_SUBTRACT(t1, t0); elog(DEBUG1, "%s: %.1f ms", #x, INSTR_TIME_GET_MILLISEC(t1)); } while (0)
#else
#define PASS(x) x
#endif
	PASS(read_customers(&vs, nsp));
	PASS(read_periods(&vs, nsp));
	PASS(read_ledger(&vs, nsp));
	PASS(read_items(&vs, nsp));
	PASS(read_orders(&vs, nsp));
	PASS(read_notices(&vs, nsp));
	PASS(read_states(&vs, nsp));
	PASS(read_channel_days(&vs, nsp));
	PASS(check_rest(&vs));
	PASS(check_channel_days(&vs));

	MemoryContextSwitchTo(old);
	MemoryContextDelete(vs.cxt);
	return (Datum) 0;
}
