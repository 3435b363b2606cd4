/*
 * crdt.h: the document engine's internal model. Items (Yjs structs) with
 * their content, the per-client struct store, shared types, transactions and
 * subscriptions, and the operations the files of crdt/ share: store lookup
 * and splitting (store.c), YATA integration, deletion, GC and merging
 * (item.c), transactions and their cleanup (txn.c), applying updates
 * (apply.c), encoding (encode.c), type operations (types.c, text.c), events
 * (event.c).
 *
 * Ownership: the doc owns every item (through the client arrays), every type
 * (through types_all) and all content. Items are freed when merged into their
 * left neighbour or when the doc is freed; types only with the doc, so that
 * loom_type handles stay valid.
 */
#ifndef LOOM_CRDT_H
#define LOOM_CRDT_H

#include "any/any_internal.h"
#include "base/base.h"
#include "codec/codec.h"
#include "loom/doc.h"

typedef struct loom__item loom__item;

/* Item flags. */
#define LOOM__F_DELETED 0x01u
#define LOOM__F_KEEP    0x02u
#define LOOM__F_MARKER  0x04u
/* How much of struct loom__item was allocated (loom__item_alloc_room): an
 * item that never has a right origin, or neither origin, is allocated
 * without their fields, which come last. Set once at allocation and kept
 * by every later write of `flags`; no flag means all of it. */
#define LOOM__F_NO_RO 0x08u /* no right_origin field */
#define LOOM__F_NO_O  0x10u /* no origin field either (with NO_RO) */
#define LOOM__F_ROOM  (LOOM__F_NO_RO | LOOM__F_NO_O)
/* An Any item that grew by merges, with a hint in its doc's any_hints. */
#define LOOM__F_HINT 0x20u
/* An item carved in one block with its value's bytes in front of it
 * (loom__item_any_carve): a map entry's two pool carves, and their two
 * frees, were a tenth of a loaded entry's work. The byte just before the
 * item says how many grains are in front; the item is freed with them.
 * Set at allocation and kept by every later write of `flags`, like
 * LOOM__F_ROOM, until the content leaves the bytes: then the pool takes
 * them back on their own where it can (item.c front_release), clearing
 * it. */
#define LOOM__F_FRONT 0x40u
/* The Any content's bytes are those in front of the item (LOOM__F_FRONT),
 * not a block of their own: content_free returns them to the pool with
 * front_release, and a merge that grows the content moves it to a block of
 * its own (clearing the flag). */
#define LOOM__F_FRONT_VAL 0x80u
/* The flags that say how an item's memory was allocated. */
#define LOOM__F_BLOCK (LOOM__F_ROOM | LOOM__F_FRONT)

struct loom__item {
    loom__id id;
    uint64_t len;
    /* Whether the origin fields (the last two) are set: read a field only
     * when its flag is (the item may have been allocated without it:
     * LOOM__F_ROOM). */
    bool has_origin, has_right_origin;
    uint8_t ref;   /* LOOM__REF_*; LOOM__REF_GC for GC structs */
    uint8_t flags; /* LOOM__F_* */
    /* parent_sub's length: map keys are shorter than 4 GiB
     * (loom__type_key), which keeps this row at 8 bytes */
    uint32_t parent_sub_len;
    loom__item *left, *right;
    loom_type *parent; /* NULL for GC structs */
    /* The map key or NULL: the parent map's own copy (its strmap entry's
     * key, NUL-terminated), shared by every item of that key and never
     * freed through the item. Map keys are kept until the doc is freed,
     * even when the parent's content is collected (type_gc), so the
     * pointer stays valid as long as the item. */
    const char *parent_sub;
    /* The content, 16 bytes (each byte of an item is 100 KB for a map of
     * 100,000 entries, and fresh memory is slow): byte counts are 32-bit,
     * lengths of strings live in front of their copies. */
    union {
        struct {
            char *p; /* UTF-8, NUL-terminated */
            /* shorter than 4 GiB: loom__bytes_fit where they are set or
             * grown */
            uint32_t bytes, cap;
        } str;
        struct {
            uint8_t *p; /* lib0 Any encodings of `len` values, back to back */
            /* shorter than 4 GiB: loom__bytes_fit where they are set or
             * grown. An item that grew by merges (LOOM__F_HINT) has where
             * the last merge joined in the doc's any_hints. */
            uint32_t bytes, cap;
        } any;
        struct {
            loom_any **v; /* `len` values (legacy ContentJSON) */
            size_t cap;
        } json;
        struct {
            uint8_t *p;
            size_t n;
        } bin;
        loom_any *embed;
        struct {
            /* a loom__keystr: its length, and the JS object identity of
             * val shared with other Format values (0: its own), in front */
            char *key;
            loom_any *val;
        } fmt;
        loom_type *type;
        struct {
            char *guid; /* a loom__keystr */
            loom_any *opts;
        } doc;
    } c;
    /* Last, so that an item without them is allocated without them: a
     * loaded or first-set map entry has neither (80 bytes, not 112), an
     * overwrite only an origin (96). A split's right part, which always
     * has an origin, and every local text insert get all 112. */
    loom__id origin, right_origin;
};

static inline bool loom__item_deleted(const loom__item *it)
{
    return it->flags & LOOM__F_DELETED;
}
static inline bool loom__item_is_gc(const loom__item *it)
{
    return it->ref == LOOM__REF_GC;
}
static inline bool loom__ref_countable(uint8_t ref)
{
    return ref != LOOM__REF_DELETED && ref != LOOM__REF_FORMAT &&
           ref != LOOM__REF_GC;
}
static inline bool loom__item_countable(const loom__item *it)
{
    return loom__ref_countable(it->ref);
}
static inline loom__id loom__item_last_id(const loom__item *it)
{
    loom__id id = {it->id.client, it->id.clock + it->len - 1};
    return id;
}
/* The LOOM__F_ROOM flags of an item that has (or may be given) an origin,
 * a right origin. */
static inline unsigned loom__item_room(bool origin, bool right_origin)
{
    return right_origin ? 0u : origin ? LOOM__F_NO_RO : LOOM__F_ROOM;
}
/* The bytes allocated for an item of those LOOM__F_ROOM flags. */
static inline size_t loom__item_room_size(unsigned room)
{
    return room & LOOM__F_NO_O    ? offsetof(loom__item, origin)
           : room & LOOM__F_NO_RO ? offsetof(loom__item, right_origin)
                                  : sizeof(loom__item);
}
static inline size_t loom__item_size(const loom__item *it)
{
    return loom__item_room_size(it->flags);
}
/* Writes every field of a new item of Any content, once (a set or loaded
 * map entry is most of a map's work; zeroing first wrote it twice): len
 * values whose encodings are the `bytes` bytes at p, left (NULL: none) its
 * left neighbour and origin, under parent's key (NULL: none yet). `it` is
 * uninitialised memory of loom__item_any_alloc's size for this left, front
 * 0, or from loom__item_any_carve, front LOOM__F_FRONT | LOOM__F_FRONT_VAL
 * (p its front). */
static inline void loom__item_init_any(loom__item *it,
                                       loom__id id,
                                       uint64_t len,
                                       loom__item *left,
                                       loom_type *parent,
                                       const char *key,
                                       size_t klen,
                                       uint8_t *p,
                                       size_t bytes,
                                       unsigned front)
{
    _Static_assert(sizeof(it->c) == sizeof(it->c.any),
                   "an Any item's content is all of its union");
    it->id = id;
    it->len = len;
    if (left)
        it->origin = loom__item_last_id(left);
    it->has_origin = left != NULL;
    it->has_right_origin = false;
    it->ref = LOOM__REF_ANY;
    it->flags = (uint8_t)(loom__item_room(left != NULL, false) | front);
    it->parent_sub_len = (uint32_t)klen; /* checked by type_key */
    it->left = left;
    it->right = NULL;
    it->parent = parent;
    it->parent_sub = key;
    it->c.any.p = p;
    it->c.any.bytes = (uint32_t)bytes; /* checked: loom__bytes_fit */
    it->c.any.cap = bytes ? (uint32_t)bytes : 1;
}
static inline bool loom__id_eq(loom__id a, loom__id b)
{
    return a.client == b.client && a.clock == b.clock;
}

/* The structs of one client, sorted by clock, covering [0, state). They
 * are kept in a gap buffer: logical index i is v[i] below `gap` and
 * v[i + hole] from there on, so splitting and merging structs in the middle
 * (typing and deleting inside old text) moves only the entries between the
 * last edit and this one instead of the whole tail. Read them with
 * loom__cs(); change them only through the loom__cs_* functions. */
typedef struct loom__client {
    uint64_t client;
    loom__item **v; /* cap slots: [0, gap) hole [gap + hole, n + hole) */
    size_t n, cap;
    size_t gap, hole;
    uint64_t txn_seq; /* transaction that recorded `before` */
    uint64_t before;  /* state at the start of that transaction */
} loom__client;

/* A changed map key: the parent map's own copy (loom__item.parent_sub), so
 * within one type two keys are equal exactly when their pointers are. */
typedef struct loom__ckey {
    const char *p;
    size_t len;
} loom__ckey;

/* Per-type bookkeeping for the current transaction. A transaction's
 * entries keep their vectors for the next transaction (typing and map sets
 * open one per change). */
typedef struct loom__changed {
    loom_type *type;
    bool seq;         /* the sequence changed (key null) */
    loom__ckey *keys; /* changed map keys, in order of change */
    size_t nkeys, kcap;
    /* Past a few keys, a hash set (of key index + 1, by key pointer) of
     * the first kset_n keys, brought up to date when it is asked: keys
     * known to be new are only appended (loading a map adds every key
     * once, and nothing asks). */
    uint32_t *kset;
    size_t kscap, kset_n;
} loom__changed;

/* Search markers: cached (item, visible index) pairs of a sequence, so
 * position lookups start near where the last ones ended (Yjs keeps up to 80
 * per type). They never change a result, only where a walk starts. */
#define LOOM__NMARK 32
typedef struct loom__marker {
    loom__item *item; /* a visible, countable item of the sequence */
    uint64_t index;   /* the visible index where it starts */
    uint64_t used;    /* for evicting the least recently used */
} loom__marker;

struct loom_type {
    loom_doc *doc;
    int kind;         /* loom_type_kind */
    loom__item *item; /* the item holding this type; NULL for roots */
    char *root_name;  /* roots */
    size_t root_name_len;
    char *name; /* XML element nodeName / hook name */
    size_t name_len;
    loom__item *start;
    loom__strmap map; /* key -> current loom__item* */
    /* The entry of map last looked up by loom__type_key: integrating the
     * item that just got its key finds the entry without hashing again
     * (checked by key pointer, so a stale hint costs only the lookup). */
    size_t key_hint;
    /* That entry was created by the lookup and has had no item since: its
     * key cannot be among the keys a transaction recorded as changed. */
    bool key_new;
    uint64_t length;
    bool has_formatting;
    bool freed_content; /* GC'd: start/map cleared */
    loom_type *next_all;
    /* transaction bookkeeping */
    uint64_t txn_seq;
    size_t changed_idx; /* index into txn->changed when txn_seq matches */
    /* position cache for sequential access (a search marker) */
    loom__marker mk[LOOM__NMARK];
    uint8_t nmk;
    uint8_t mk_hot; /* the marker last noted or used; >= nmk: none */
    /* A shift not yet applied (marker.c): markers stored at >= mk_pfrom
     * are at stored + mk_pdelta (>= mk_shi), the others below mk_slo. */
    uint64_t mk_pfrom, mk_slo, mk_shi;
    int64_t mk_pdelta;
    uint64_t mk_clock;
};

typedef struct loom__sub {
    uint32_t id;
    int kind; /* LOOM__SUB_* */
    loom_type *type;
    void *fn;
    void *ud;
} loom__sub;

enum {
    LOOM__SUB_UPDATE = 1,
    LOOM__SUB_AFTER_TXN,
    LOOM__SUB_OBSERVE,
    LOOM__SUB_OBSERVE_DEEP
};

/* One backspace of a transaction: Yjs's deleted String item [at, at + n)
 * and where its text is in the transaction's bbuf. */
typedef struct loom__back {
    loom__id at;
    uint64_t n;
    size_t off;
} loom__back;

struct loom_txn {
    loom_doc *doc;
    void *origin;
    bool local;
    /* Opened by an operation (not loom_doc_transact_begin) while nobody
     * observed the document and no cleanup ran: no observer can be added
     * before its events would be dispatched, so nothing reads its changed
     * keys, and when local nothing reads its changed types either (a remote
     * one's ask for the formatting cleanup). They are not recorded. */
    bool unobserved;
    uint64_t seq;
    loom__client **touched; /* clients whose structs changed */
    uint64_t *tbefore; /* touched[i]'s state at its first change in this txn */
    size_t ntouched, tcap, tbcap;
    loom__ds ds;            /* deleted in this transaction */
    loom__changed *changed; /* types changed, in order of first change */
    size_t nchanged, chcap;
    loom_type **deep; /* changedParentTypes: types with changed descendants */
    size_t ndeep, dcap;
    loom__id *merge; /* split parts to merge back at cleanup */
    size_t nmerge, mcap;
    bool format_cleanup; /* a remote txn touched formatted text */
    /* The type whose local operation is running: its markers are kept up
     * to date by that operation; every other change clears a type's. */
    loom_type *mk_type;
    /* clients of ds in the order of their first delete (Yjs Map order),
     * for a remote transaction's formatting cleanup (not kept when local) */
    uint64_t *ds_order;
    size_t nds_order, ds_order_cap;
    /* Typing appended to the left String item instead of linking a new
     * one (text.c): the ids where Yjs has item boundaries until the
     * cleanup merges them. loom__txn_unjoin() splits there when the
     * boundaries can be seen before the cleanup (encoding, observers). */
    loom__id *joins;
    size_t njoins, jcap;
    uint64_t join_client, join_units; /* whose, and how many units appended */
    /* Backspace at the end of a String item (text.c pos_backspace): the
     * deleted units were moved into a Deleted item at once, where Yjs has
     * a deleted String item until the cleanup. loom__txn_unjoin restores
     * those items (their text is in bbuf) when they can be seen. */
    loom__back *backs;
    size_t nbacks, bkcap;
    char *bbuf;
    size_t bblen, bbcap;
    uint64_t back_units; /* units deleted by those backspaces */
    uint64_t ds_units;   /* units added to ds by anything */
    size_t ds_last;      /* where in ds.c a remote delete went last (a hint) */
    /* The item deleted last and the doc's item_frees then: when ds holds
     * exactly its range and no item was freed since (so the pointer is
     * still that item), the cleanup collects and merges it without
     * searching its client's structs (overwriting a map value). */
    loom__item *del_item;
    uint64_t del_frees;
    /* a changed entry's keys or key set grew past what is kept for reuse */
    bool keys_grown;
};

/* Transactions waiting for cleanup, in order (Yjs _transactionCleanups). */
typedef struct loom__txn_queue {
    loom_txn **v;
    size_t n, cap, head;
} loom__txn_queue;

struct loom_doc {
    const loom_allocator *a;
    uint64_t client_id;
    bool gc;
    char *guid;
    size_t guid_len;
    loom__u64map clients; /* client -> loom__client* */
    loom__client **clist; /* every client, in creation order */
    size_t nclients, ccap;
    loom__strmap roots;   /* name -> loom_type* */
    loom_type *last_root; /* the root apply found last (a cache, apply.c) */
    loom_type *types_all;
    /* pending structs: a v1 update and the clocks whose arrival retries it */
    loom_buf pending;
    loom__sv pending_missing;
    loom__ds pending_ds;
    /* transactions */
    loom_txn *txn;
    int txn_depth;
    loom__txn_queue queue;
    loom_txn *spare_txn; /* a finished transaction kept for reuse */
    uint64_t txn_seq;
    bool in_cleanup;
    /* subscriptions */
    loom__sub *subs;
    size_t nsubs, scap;
    size_t nobserving; /* subs that are not update listeners */
    uint32_t next_sub;
    /* where items and the bytes of Any content come from (see
     * loom__any_bytes_alloc) */
    loom__pool pool;
    uint64_t item_frees; /* items released so far (see loom_txn.del_item) */
    /* a sticky error for OOM in void paths (observers, cleanup) */
    int oom;
    uint64_t fmt_ident_seq; /* last Format value identity handed out (text.c) */
    /* item address -> where its last merge joined (item.c, LOOM__F_HINT) */
    loom__u64map any_hints;
    loom__client *last_client; /* the client last looked up (a cache) */
    loom_buf upd;              /* the update event's buffer, kept for reuse */
    loom_buf
        scratch; /* where a value is encoded before its exact copy (types.c) */
    bool format_items; /* a Format item was ever integrated into this doc */
};

/* ---- store.c ---------------------------------------------------------- */

/* The i-th struct of c by clock (i < c->n). */
static inline loom__item *loom__cs(const loom__client *c, size_t i)
{
    return c->v[i < c->gap ? i : i + c->hole];
}
static inline loom__item *loom__cs_last(const loom__client *c)
{
    return loom__cs(c, c->n - 1);
}
/* Room for one more struct (push or insert) without allocating. */
static inline int loom__cs_reserve(const loom_allocator *a, loom__client *c)
{
    return loom__vec_reserve(a, (void **)&c->v, &c->cap, c->n + c->hole + 1,
                             sizeof(*c->v));
}
/* Appends (after loom__cs_reserve). */
void loom__cs_push(loom__client *c, loom__item *it);
/* The same inline (a map set). */
static inline void loom__cs_push_inline(loom__client *c, loom__item *it)
{
    if (c->gap >= c->n)
        c->hole = 0; /* a hole at the end is just spare room */
    c->v[c->n + c->hole] = it;
    c->n++;
}
/* Inserts at index i <= n (after loom__cs_reserve). */
void loom__cs_insert(loom__client *c, size_t i, loom__item *it);
/* Removes the k entries from index i (the items are not freed). */
void loom__cs_remove(loom__client *c, size_t i, size_t k);

loom__client *loom__client_lookup(const loom_doc *d, uint64_t client);
/* The client's structs, or NULL (the last one looked up is cached). */
static inline loom__client *loom__client_get(const loom_doc *d, uint64_t client)
{
    loom__client *c = d->last_client;
    if (c && c->client == client)
        return c;
    return loom__client_lookup(d, client);
}
int loom__client_get_or_add(loom_doc *d, uint64_t client, loom__client **out);
/* The client's next clock. */
static inline uint64_t loom__state(const loom_doc *d, uint64_t client)
{
    const loom__client *c = loom__client_get(d, client);
    if (!c || c->n == 0)
        return 0;
    const loom__item *last = loom__cs_last(c);
    return last->id.clock + last->len;
}
/* Index of the struct containing clock in c (must exist). */
size_t loom__find_index(const loom__client *c, uint64_t clock);
/* The same, searching outwards from index hint (any index: a walk over
 * sorted ranges passes where it stopped last; SIZE_MAX: no hint, the
 * plain search). */
size_t
loom__find_index_near(const loom__client *c, uint64_t clock, size_t hint);
/* The struct containing id, or NULL. */
loom__item *loom__find(const loom_doc *d, loom__id id);
/* Appends a struct at the end of its client's array (clock must be state). */
int loom__store_push(loom_doc *d, loom__item *it);
/* Splits `it` at diff (0 < diff < len): returns the new right part, inserted
 * after `it` in the store and the list. */
int loom__item_split(loom_txn *t,
                     loom__item *it,
                     uint64_t diff,
                     loom__item **right);
/* loom__item_split for `it` at index i of its client c. */
int loom__item_split_at(loom_txn *t,
                        loom__client *c,
                        size_t i,
                        loom__item *it,
                        uint64_t diff,
                        loom__item **right);
/* getItemCleanStart: the item starting exactly at id (splitting). */
int loom__get_clean_start(loom_txn *t, loom__id id, loom__item **out);
/* getItemCleanEnd: the item ending exactly at id (splitting). */
int loom__get_clean_end(loom_txn *t, loom__id id, loom__item **out);
/* Where the last lookup of a series found its struct (i SIZE_MAX: none):
 * the next one is searched from there (the origins of the structs of an
 * update point near each other). */
typedef struct loom__finger {
    uint64_t client;
    size_t i;
} loom__finger;
/* loom__get_clean_start and _end searching from the finger f (moved). */
int loom__get_clean_start_near(loom_txn *t,
                               loom__id id,
                               loom__finger *f,
                               loom__item **out);
int loom__get_clean_end_near(loom_txn *t,
                             loom__id id,
                             loom__finger *f,
                             loom__item **out);

/* ---- item.c ----------------------------------------------------------- */

/* A zeroed item with room for both origins; free with loom__item_free or
 * loom__item_release. */
loom__item *loom__item_alloc(loom_doc *d);
/* A zeroed item with the room of LOOM__F_ROOM flags `room` (its flags are
 * set to them); freed the same way. */
loom__item *loom__item_alloc_room(loom_doc *d, unsigned room);
/* Uninitialised memory for loom__item_init_any with this left; freed the
 * same way once initialised. */
static inline loom__item *loom__item_any_alloc(loom_doc *d,
                                               const loom__item *left)
{
    return (loom__item *)loom__pool_alloc(
        &d->pool, loom__item_room_size(loom__item_room(left != NULL, false)));
}
/* The bytes in front of an item carved with n value bytes: whole grains,
 * with room after the value for the byte that counts them. */
static inline size_t loom__item_front(size_t n)
{
    return (n + LOOM__POOL_GRAIN) & ~(size_t)(LOOM__POOL_GRAIN - 1);
}
/* The most value bytes loom__item_any_carve takes (the grains in front
 * are counted in one byte). */
#define LOOM__FRONT_MAX (255 * LOOM__POOL_GRAIN - 1)
/* The item of a block b whose first f bytes (loom__item_front) are in
 * front of it: the last of them counts them. */
static inline loom__item *loom__item_at_front(uint8_t *b, size_t f)
{
    b[f - 1] = (uint8_t)(f / LOOM__POOL_GRAIN);
    return (loom__item *)(void *)(b + f);
}
/* The bytes in front of an item with LOOM__F_FRONT. */
static inline size_t loom__item_front_size(const loom__item *it)
{
    return (size_t)((const uint8_t *)it)[-1] * LOOM__POOL_GRAIN;
}
/* One block for an Any item of this left and its n value bytes (n <=
 * LOOM__FRONT_MAX), or NULL: the item (uninitialised, for
 * loom__item_init_any with front LOOM__F_FRONT | LOOM__F_FRONT_VAL) is
 * returned and the bytes' room, in front of it, is *p. Freed with
 * loom__item_free or loom__item_release once initialised. */
static inline loom__item *
loom__item_any_carve(loom_doc *d, const loom__item *left, size_t n, uint8_t **p)
{
    size_t f = loom__item_front(n);
    uint8_t *b = loom__pool_alloc(
        &d->pool,
        f + loom__item_room_size(loom__item_room(left != NULL, false)));
    if (!b)
        return NULL;
    *p = b;
    return loom__item_at_front(b, f);
}
/* A key string (a Format item's key, a Doc item's guid): a NUL-terminated
 * copy of the n bytes at k with, in front, its length and an 8-byte tag
 * (0 at first; a Format item's value identity), or NULL. Free with
 * loom__keystr_free. */
char *loom__keystr_new(const loom_allocator *a, const char *k, size_t n);
void loom__keystr_free(const loom_allocator *a, char *s);
static inline size_t loom__keystr_len(const char *s)
{
    size_t n;
    memcpy(&n, s - sizeof(n), sizeof(n));
    return n;
}
static inline uint64_t loom__keystr_tag(const char *s)
{
    uint64_t t;
    memcpy(&t, s - sizeof(size_t) - sizeof(t), sizeof(t));
    return t;
}
static inline void loom__keystr_set_tag(char *s, uint64_t t)
{
    memcpy(s - sizeof(size_t) - sizeof(t), &t, sizeof(t));
}
static inline size_t loom__fmt_klen(const loom__item *it)
{
    return loom__keystr_len(it->c.fmt.key);
}
/* Can String or Any content of n bytes be kept (c.str.bytes, c.any.bytes,
 * and their capacities)? */
static inline bool loom__bytes_fit(uint64_t n)
{
    return n < UINT32_MAX;
}

/* Returns an item's memory to the document's pool (content not touched). */
void loom__item_release(loom_doc *d, loom__item *it);
/* The bytes of Any content (c.any.p, c.any.cap = n) come from the doc's
 * pool and go back with loom__pool_free(&d->pool, p, cap). */
static inline uint8_t *loom__any_bytes_alloc(loom_doc *d, size_t n)
{
    return loom__pool_alloc(&d->pool, n);
}
/* The bytes of String content (c.str.p, c.str.cap = n, the text and a NUL)
 * come from the doc's pool too and go back with loom__pool_free; they are
 * resized with loom__pool_realloc. */
static inline char *loom__str_bytes_alloc(loom_doc *d, size_t n)
{
    return (char *)loom__pool_alloc(&d->pool, n);
}
/* Makes the bytes of b (allocated with d->a) an Any item's content: a
 * buffer too large for the pool is taken over (b is left empty), a small
 * one is copied. */
int loom__any_content_take(loom_doc *d, loom__item *it, loom_buf *b);
/* Frees an item's content and the item (not types: those live in types_all). */
void loom__item_free(loom_doc *d, loom__item *it);
void loom__content_free(loom_doc *d, loom__item *it);
/* Splits the content: `it` keeps [0, diff), `right` gets the rest. */
int loom__content_split(loom_doc *d,
                        loom__item *it,
                        uint64_t diff,
                        loom__item *right);
/* Item.integrate (YATA), with the offset already applied. On failure before
 * the item is linked (out of memory) the item is freed; afterwards it belongs
 * to the document either way. Callers never free it after this call. */
int loom__item_integrate(loom_txn *t, loom__item *it);
/* Item.delete. */
int loom__item_delete(loom_txn *t, loom__item *it);
/* Turns a deleted item's content into Deleted(len) (and its type's children
 * into GC structs). */
void loom__item_gc(loom_doc *d, loom__item *it, bool parent_gcd);
/* Appends UTF-8 to a String item's content (not its length). */
int loom__str_append(loom_doc *d, loom__item *l, const char *s, size_t bytes);
/* Tries to merge right into left; frees right on success. */
bool loom__item_try_merge(loom_doc *d, loom__item *left, loom__item *right);
/* Writes one in-memory struct (item or GC) from offset, as encoders do. */
int loom__item_write(loom_buf *b, const loom__item *it, uint64_t offset);
/* The last value of a map item's content: exactly one of value or type. */
int loom__item_value(const loom__item *it,
                     const loom_allocator *a,
                     loom_any **value,
                     loom_type **type);
/* Appends the item's countable content values to an array value (types as
 * JSON when `types_as_json`, else as LOOM_ANY_TYPE refs). */
int loom__item_values(const loom__item *it,
                      loom_any *array,
                      bool types_as_json);

/* ---- types.c ---------------------------------------------------------- */

int loom__type_new(
    loom_doc *d, int kind, const char *name, size_t nlen, loom_type **out);
loom_type *loom__type_root(const loom_doc *d, const char *name, size_t len);
int loom__type_root_get_or_add(loom_doc *d,
                               const char *name,
                               size_t len,
                               loom_type **out);
/* Marks a type changed for the current transaction (key NULL: sequence).
 * A key is the parent map's copy (an item's parent_sub). */
int loom__txn_record_change(loom_txn *t,
                            loom_type *type,
                            const char *key,
                            size_t klen);
/* The same for a key whose map entry has had no item before (key_new):
 * it cannot have been recorded, so it is appended without a lookup. */
int loom__txn_record_new_key(loom_txn *t,
                             loom_type *type,
                             const char *key,
                             size_t klen);
/* Nothing to record (see loom_txn.unobserved): an unobserved local
 * transaction records nothing, a remote one each type once. */
static inline bool loom__txn_records_nothing(const loom_txn *t,
                                             const loom_type *type)
{
    return t->unobserved && (t->local || type->txn_seq == t->seq);
}
static inline int loom__txn_add_changed(loom_txn *t,
                                        loom_type *type,
                                        const char *key,
                                        size_t klen)
{
    if (loom__txn_records_nothing(t, type))
        return LOOM_OK;
    return loom__txn_record_change(t, type, key, klen);
}
static inline int loom__txn_add_new_key(loom_txn *t,
                                        loom_type *type,
                                        const char *key,
                                        size_t klen)
{
    if (loom__txn_records_nothing(t, type))
        return LOOM_OK;
    return loom__txn_record_new_key(t, type, key, klen);
}
/* The parent map's own copy of key (created with no item if missing), what
 * an item's parent_sub points to; *out is NUL-terminated. Leaves the
 * entry's index in type->key_hint and whether it was created in
 * type->key_new. */
int loom__type_key_lookup(loom_type *type,
                          const char *key,
                          size_t klen,
                          const char **out);
static inline int
loom__type_key(loom_type *type, const char *key, size_t klen, const char **out)
{
    if (type->key_hint < type->map.n &&
        type->map.e[type->key_hint].key == key) {
        *out = key; /* already the map's copy */
        return LOOM_OK;
    }
    return loom__type_key_lookup(type, key, klen, out);
}
/* The same with the key's hash (loom__hash_bytes) known, and no check of
 * key_hint. */
int loom__type_key_hashed(loom_type *type,
                          const char *key,
                          size_t klen,
                          uint64_t h,
                          const char **out);
/* loom__type_key_hashed for a caller that takes it inline (a map set, a
 * loaded map entry): no call for a key that is there or new with room. */
static LOOM__INLINE int loom__type_key_inline(
    loom_type *type, const char *key, size_t klen, uint64_t h, const char **out)
{
    if ((uint64_t)klen > UINT32_MAX)
        return LOOM_ELIMIT; /* loom__item.parent_sub_len */
    size_t i;
    bool created;
    int rc = loom__strmap_intern_inline(&type->map, key, klen, h, &i, &created);
    if (rc)
        return rc;
    type->key_hint = i;
    type->key_new = created;
    *out = type->map.e[i].key;
    return LOOM_OK;
}
/* The current map item of key, or NULL. */
loom__item *
loom__type_map_item(const loom_type *type, const char *key, size_t klen);
int loom__type_to_any(const loom_type *type,
                      const loom_allocator *a,
                      loom_any **out);
/* Inserts content items after `left` (NULL: at the start) with `right` as
 * right neighbour (used by arrays, text and XML). */
int loom__insert_after(loom_txn *t,
                       loom_type *parent,
                       loom__item *left,
                       loom__item *right,
                       loom__item *it);
/* Creates a local item with the doc's next clock, content already set. */
int loom__local_item(loom_txn *t,
                     loom_type *parent,
                     loom__item *left,
                     loom__item *right,
                     const char *key,
                     size_t klen,
                     loom__item *it);
/* Position lookup: the item containing sequence index (counting countable,
 * non-deleted units), splitting so that `index` is at an item boundary.
 * Returns the left neighbour (NULL at 0) via *left and right via *right. */
int loom__seq_find(loom_txn *t,
                   loom_type *type,
                   uint64_t index,
                   loom__item **left,
                   loom__item **right);
/* ---- marker.c --------------------------------------------------------- */

void loom__markers_clear(loom_type *t);
/* Drops the markers on an item (deleted, freed or collected). */
void loom__markers_forget(loom_type *t, const loom__item *it);
/* right was merged into left. */
void loom__markers_merged(loom_type *t,
                          const loom__item *right,
                          loom__item *left);
/* Markers at visible index >= from move by delta (a local insert or
 * delete at a known index). */
void loom__markers_shift(loom_type *t, uint64_t from, int64_t delta);
/* A visible countable item starting at *start < target to walk from, or
 * false (walk from the beginning). */
bool loom__markers_find(loom_type *t,
                        uint64_t target,
                        loom__item **item,
                        uint64_t *start);
/* Typing: the item of the last used marker when `target` is exactly where
 * it ends, else NULL. */
loom__item *loom__markers_ending_at(loom_type *t, uint64_t target);
/* Forward deletes: the item of the last used marker when it starts exactly
 * at `target`, else NULL. */
loom__item *loom__markers_starting_at(loom_type *t, uint64_t target);
/* The item of the last used marker now starts at visible index (its units
 * before index were deleted: the shift of those is done). */
void loom__markers_hot_moved(loom_type *t, uint64_t index);
/* Remembers that `it` (visible, countable) starts at visible index. */
void loom__markers_note(loom_type *t, loom__item *it, uint64_t index);
/* Keeps or clears t's markers for an item integrated or deleted in txn. */
void loom__markers_changed(loom_txn *txn,
                           loom_type *t,
                           const loom__item *it,
                           bool deleting);

/* ---- txn.c ------------------------------------------------------------ */

/* Opens (or joins) a transaction; loom__txn_end closes the outermost. */
int loom__txn_open(loom_doc *d, void *origin, bool local, loom_txn **out);
int loom__txn_close(loom_doc *d);
/* Joining and leaving an open transaction are inline: every edit inside a
 * caller's transaction does both. */
static inline int
loom__txn_begin(loom_doc *d, void *origin, bool local, loom_txn **out)
{
    if (d->txn) {
        d->txn_depth++;
        *out = d->txn;
        return LOOM_OK;
    }
    return loom__txn_open(d, origin, local, out);
}
static inline int loom__txn_end(loom_doc *d)
{
    if (d->txn && d->txn_depth > 1) {
        d->txn_depth--;
        return LOOM_OK;
    }
    return loom__txn_close(d);
}
void loom__txn_spare_free(loom_doc *d);
/* State of client at the start of the transaction. */
uint64_t loom__txn_before(const loom_txn *t, uint64_t client);
/* Records that a client's structs are about to change. */
int loom__txn_touch_first(loom_txn *t, loom__client *c);
static inline int loom__txn_touch(loom_txn *t, loom__client *c)
{
    return c->txn_seq == t->seq ? LOOM_OK : loom__txn_touch_first(t, c);
}
/* loom__item_integrate for an item with no left, no right and nothing to
 * resolve: Any content under a map key just created (parent->key_new, its
 * entry parent->key_hint, which has no item), as a loaded map's entries
 * mostly are. Inline when nothing can fail: the client is the last one,
 * touched, with room, the change is recorded already and the parent is a
 * root (not deleted); else the general integration does the same. */
static LOOM__INLINE int loom__item_integrate_new_key(loom_txn *t,
                                                     loom__item *it)
{
    loom_type *parent = it->parent;
    loom__client *own = t->doc->last_client;
    if (!own || own->client != it->id.client || own->txn_seq != t->seq ||
        own->n + own->hole >= own->cap || parent->item ||
        !loom__txn_records_nothing(t, parent))
        return loom__item_integrate(t, it);
    loom__cs_push_inline(own, it);
    parent->key_new = false; /* the entry has an item now */
    parent->map.e[parent->key_hint].val = it;
    return LOOM_OK;
}
int loom__txn_add_merge(loom_txn *t, loom__id id);
/* Splits the items at the transaction's recorded joins and restores its
 * backspaces (see joins, backs): Yjs's items before the cleanup. */
int loom__txn_unjoin(loom_txn *t);
/* Does the transaction hold joins or backspaces that loom__txn_unjoin would
 * undo? */
static inline bool loom__txn_joined(const loom_txn *t)
{
    return t->njoins || t->nbacks;
}
/* Is anyone subscribed to observer events or afterTransaction? (Typing
 * asks it per keystroke: a count the subscriptions keep, not a loop.) */
static inline bool loom__doc_observed(const loom_doc *d)
{
    return d->nobserving != 0;
}
bool loom__txn_added(const loom_txn *t, const loom__item *it);
bool loom__txn_deleted(const loom_txn *t, const loom__item *it);
/* Adds a deleted range to t->ds, remembering the order clients first appear.
 * In a remote transaction a range continuing the client's last one extends
 * it: the cleanup reads t->ds normalised, which joins them anyway
 * (single_deleted, which reads it before, wants one item's range, which a
 * joined range never is). */
int loom__txn_ds_add(loom_txn *t,
                     uint64_t client,
                     uint64_t clock,
                     uint64_t len);

/* ---- apply.c / encode.c ---------------------------------------------- */

int loom__apply_update(loom_txn *t,
                       const uint8_t *p,
                       size_t len,
                       loom_error *err);
/* The delete set of the store (every deleted item and GC). */
int loom__store_ds(const loom_doc *d, loom__ds *out);
/* encodeStateAsUpdate without pending data. */
int loom__encode_state(const loom_doc *d,
                       const loom__sv *target,
                       loom_buf *out);
/* Writes the structs of every client from the given n (client, clock)
 * pairs, which it sorts in place (descending client order), as the update
 * event and encodeStateAsUpdate do. */
int loom__write_structs(const loom_doc *d,
                        loom__sv_entry *e,
                        size_t n,
                        loom_buf *out);
int loom__doc_sv(const loom_doc *d, loom__sv *out);

/* ---- text.c ----------------------------------------------------------- */

/* Formatting cleanup after a remote transaction (spec 6.3.6); runs in a
 * new (queued) transaction. */
int loom__text_cleanup_after(loom_doc *d, loom_txn *t);
/* XmlText.toString(): the delta with attributes as nested tags. */
int loom__xml_text_string(const loom_type *t, loom_buf *b);
/* YTextEvent.delta of a text (or XmlText) changed in transaction t, as a
 * loom_any array (spec 7.4). Embeds as values, types as LOOM_ANY_TYPE. */
int loom__text_event_delta(loom_txn *t,
                           loom_type *type,
                           const loom_allocator *a,
                           loom_any **out);

/* ---- event.c ---------------------------------------------------------- */

int loom__dispatch_events(loom_doc *d, loom_txn *t);

#endif
