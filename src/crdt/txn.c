/*
 * txn.c: transactions. Opening and nesting them, remembering what changed
 * (clients' before-clocks, the delete set, changed types and keys, split
 * items to merge back) and the cleanup at the end of the outermost one, in
 * the order Yjs uses because the bytes depend on it: observers, the
 * formatting cleanup, GC, merging around deletes, merging new structs,
 * merging split parts, the client-id collision rule, then the update event.
 * Transactions opened while another is being cleaned up (by observers or the
 * formatting cleanup) are queued and cleaned up after it.
 */
#include <string.h>

#include "crdt/crdt.h"

static LOOM__NOINLINE int touch_more(loom_txn *t, loom__client *c)
{
    for (size_t i = 0; i < t->ntouched; i++) {
        if (t->touched[i] == c)
            return LOOM_OK; /* recorded, then overwritten by a queued txn */
    }
    if (loom__vec_reserve(t->doc->a, (void **)&t->touched, &t->tcap,
                          t->ntouched + 1, sizeof(*t->touched)) ||
        loom__vec_reserve(t->doc->a, (void **)&t->tbefore, &t->tbcap,
                          t->ntouched + 1, sizeof(*t->tbefore)))
        return LOOM_ENOMEM;
    c->txn_seq = t->seq;
    const loom__item *last = c->n ? loom__cs_last(c) : NULL;
    c->before = last ? last->id.clock + last->len : 0;
    /* kept per transaction too: a queued transaction (opened by an observer)
     * that touches the client overwrites c->before */
    t->tbefore[t->ntouched] = c->before;
    t->touched[t->ntouched++] = c;
    return LOOM_OK;
}

int loom__txn_touch_first(loom_txn *t, loom__client *c)
{
    /* the transaction's first client (typing), its vectors kept */
    if (t->ntouched || !t->tcap || !t->tbcap)
        return touch_more(t, c);
    c->txn_seq = t->seq;
    const loom__item *last = c->n ? loom__cs_last(c) : NULL;
    c->before = last ? last->id.clock + last->len : 0;
    t->tbefore[0] = c->before;
    t->touched[0] = c;
    t->ntouched = 1;
    return LOOM_OK;
}

uint64_t loom__txn_before(const loom_txn *t, uint64_t client)
{
    const loom__client *c = loom__client_get(t->doc, client);
    if (!c)
        return 0;
    if (c->txn_seq == t->seq)
        return c->before;
    for (size_t i = 0; i < t->ntouched; i++) {
        if (t->touched[i] == c)
            return t->tbefore[i];
    }
    return loom__state(t->doc, client);
}

bool loom__txn_added(const loom_txn *t, const loom__item *it)
{
    return it->id.clock >= loom__txn_before(t, it->id.client);
}

bool loom__txn_deleted(const loom_txn *t, const loom__item *it)
{
    return loom__ds_contains(&t->ds, it->id.client, it->id.clock);
}

/* loom__txn_ds_add in a local transaction: it mostly deletes one range
 * (typing), nothing to join. */
static LOOM__NOINLINE int
ds_add_local(loom_txn *t, uint64_t client, uint64_t clock, uint64_t len)
{
    int rc = loom__ds_add(&t->ds, client, clock, len);
    if (!rc)
        t->ds_units += len;
    return rc;
}

/* loom__txn_ds_add in a remote transaction, the client searched. */
static LOOM__NOINLINE int
ds_add_searched(loom_txn *t, uint64_t client, uint64_t clock, uint64_t len)
{
    loom__ds *ds = &t->ds;
    if (!len)
        return LOOM_OK;
    /* only the formatting cleanup of a remote transaction reads ds_order;
     * the client added last is in it (the common case: no search) */
    if ((!t->nds_order || t->ds_order[t->nds_order - 1] != client) &&
        !loom__ds_find(ds, client)) {
        if (loom__vec_reserve(t->doc->a, (void **)&t->ds_order,
                              &t->ds_order_cap, t->nds_order + 1,
                              sizeof(*t->ds_order)))
            return LOOM_ENOMEM;
        t->ds_order[t->nds_order++] = client;
    }
    /* joining pays for a remote transaction (a loaded document's deleted
     * runs) */
    int rc = loom__ds_add_joined(ds, client, clock, len);
    if (rc)
        return rc;
    t->ds_units += len;
    t->ds_last = (size_t)(loom__ds_find(ds, client) - ds->c);
    return LOOM_OK;
}

int loom__txn_ds_add(loom_txn *t, uint64_t client, uint64_t clock, uint64_t len)
{
    if (t->local)
        return ds_add_local(t, client, clock, len);
    /* Deletes of a remote transaction come in runs on one client (a loaded
     * document's deleted structs, in clock order): the client deleted from
     * last, which is in ds_order already, takes the range without a
     * search, joined to its last one when it continues it. */
    loom__ds *ds = &t->ds;
    size_t k = t->ds_last;
    if (!len || k >= ds->n || ds->c[k].client != client || !ds->c[k].n)
        return ds_add_searched(t, client, clock, len);
    loom__ds_client *c = &ds->c[k];
    loom__ds_range *r = &c->r[c->n - 1];
    if (r->clock + r->len == clock) {
        r->len += len;
    } else {
        if (loom__vec_reserve(t->doc->a, (void **)&c->r, &c->cap, c->n + 1,
                              sizeof(*c->r)))
            return LOOM_ENOMEM;
        c->r[c->n].clock = clock;
        c->r[c->n].len = len;
        c->n++;
    }
    t->ds_units += len;
    return LOOM_OK;
}

int loom__txn_add_merge(loom_txn *t, loom__id id)
{
    if (loom__vec_reserve(t->doc->a, (void **)&t->merge, &t->mcap,
                          t->nmerge + 1, sizeof(*t->merge)))
        return LOOM_ENOMEM;
    t->merge[t->nmerge++] = id;
    return LOOM_OK;
}

/* Key sets of changed entries stay linear up to this many keys. */
#define KSET_MIN 8

/* Keys are compared by pointer (loom__ckey), so they are hashed by it. */
static size_t key_slot(const char *key, size_t mask)
{
    uint64_t x = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ULL;
    return (size_t)(x >> 32) & mask;
}

/* Brings ch's hash set up to date with its nkeys keys (at most half
 * full), rebuilding it when it is empty or too small. */
static int kset_update(loom_txn *t, loom__changed *ch)
{
    size_t from = ch->kset_n;
    if (ch->kset_n == 0 || ch->nkeys * 2 > ch->kscap) {
        size_t cap = 32;
        while (cap < ch->nkeys * 2)
            cap *= 2;
        uint32_t *ks = ch->kset;
        if (cap != ch->kscap) {
            ks = loom__calloc(t->doc->a, cap * sizeof(*ks));
            if (!ks)
                return LOOM_ENOMEM;
            loom__free(t->doc->a, ch->kset, ch->kscap * sizeof(*ch->kset));
            ch->kset = ks;
            ch->kscap = cap;
            if (cap > 256)
                t->keys_grown = true;
        } else {
            memset(ks, 0, cap * sizeof(*ks));
        }
        from = 0;
    }
    size_t mask = ch->kscap - 1;
    for (size_t k = from; k < ch->nkeys; k++) {
        size_t j = key_slot(ch->keys[k].p, mask);
        while (ch->kset[j])
            j = (j + 1) & mask;
        ch->kset[j] = (uint32_t)(k + 1);
    }
    ch->kset_n = ch->nkeys;
    return LOOM_OK;
}

/* Is key among ch's keys? */
static int changed_has(loom_txn *t, loom__changed *ch, const char *key)
{
    if (ch->nkeys <= KSET_MIN) {
        for (size_t k = 0; k < ch->nkeys; k++) {
            if (ch->keys[k].p == key)
                return 1;
        }
        return 0;
    }
    if (ch->kset_n != ch->nkeys) {
        int rc = kset_update(t, ch);
        if (rc)
            return rc;
    }
    size_t mask = ch->kscap - 1;
    for (size_t j = key_slot(key, mask); ch->kset[j]; j = (j + 1) & mask) {
        if (ch->keys[ch->kset[j] - 1].p == key)
            return 1;
    }
    return 0;
}

/* The entry of type in t->changed (added if missing), or NULL when the
 * type's changes are not recorded: it was added in this transaction or is
 * deleted (*rc stays LOOM_OK), or out of memory. */
static inline loom__changed *
changed_entry(loom_txn *t, loom_type *type, int *rc)
{
    const loom__item *item = type->item;
    if (item && !(item->id.clock < loom__txn_before(t, item->id.client) &&
                  !loom__item_deleted(item)))
        return NULL;
    if (type->txn_seq == t->seq)
        return &t->changed[type->changed_idx];
    size_t old = t->chcap;
    if (loom__vec_reserve(t->doc->a, (void **)&t->changed, &t->chcap,
                          t->nchanged + 1, sizeof(*t->changed))) {
        *rc = LOOM_ENOMEM;
        return NULL;
    }
    if (t->chcap > old) /* new entries own no vectors yet */
        memset(t->changed + old, 0, (t->chcap - old) * sizeof(*t->changed));
    loom__changed *ch = &t->changed[t->nchanged];
    ch->type = type;
    ch->seq = false;
    ch->nkeys = 0; /* keys and kset are kept from last use */
    ch->kset_n = 0;
    type->txn_seq = t->seq;
    type->changed_idx = t->nchanged++;
    return ch;
}

static inline int
key_push(loom_txn *t, loom__changed *ch, const char *key, size_t klen)
{
    if (loom__vec_reserve(t->doc->a, (void **)&ch->keys, &ch->kcap,
                          ch->nkeys + 1, sizeof(*ch->keys)))
        return LOOM_ENOMEM;
    if (ch->kcap > 64)
        t->keys_grown = true;
    ch->keys[ch->nkeys].p = key;
    ch->keys[ch->nkeys++].len = klen;
    return LOOM_OK;
}

static LOOM__NOINLINE int
record_change_slow(loom_txn *t, loom_type *type, const char *key, size_t klen)
{
    int rc = LOOM_OK;
    loom__changed *ch = changed_entry(t, type, &rc);
    if (!ch)
        return rc;
    if (!key) {
        ch->seq = true;
        return LOOM_OK;
    }
    if (t->unobserved)
        return LOOM_OK;
    rc = changed_has(t, ch, key);
    if (rc)
        return rc < 0 ? rc : LOOM_OK;
    return key_push(t, ch, key, klen);
}

int loom__txn_record_change(loom_txn *t,
                            loom_type *type,
                            const char *key,
                            size_t klen)
{
    if (t->unobserved && t->local)
        return LOOM_OK;
    /* a root sequence changed (typing into a root text): changed_entry
     * without its calls, which keep registers */
    if (key || type->item)
        return record_change_slow(t, type, key, klen);
    if (type->txn_seq == t->seq) {
        t->changed[type->changed_idx].seq = true;
        return LOOM_OK;
    }
    if (t->nchanged >= t->chcap)
        return record_change_slow(t, type, key, klen);
    loom__changed *ch = &t->changed[t->nchanged];
    ch->type = type;
    ch->seq = true;
    ch->nkeys = 0;
    ch->kset_n = 0;
    type->txn_seq = t->seq;
    type->changed_idx = t->nchanged++;
    return LOOM_OK;
}

int loom__txn_record_new_key(loom_txn *t,
                             loom_type *type,
                             const char *key,
                             size_t klen)
{
    if (t->unobserved && t->local)
        return LOOM_OK;
    int rc = LOOM_OK;
    loom__changed *ch = changed_entry(t, type, &rc);
    if (!ch || t->unobserved)
        return rc;
    return key_push(t, ch, key, klen);
}

/*
 * Gives the units [at, at + n) of a backspace or forward delete back the
 * String content Yjs's item has until the cleanup: splits where that item
 * began and ended and restores its text. The splits are not queued for
 * merging (Yjs never split there; it queued what it split, recorded then).
 * They are undone newest first: a later one next to the same units moved
 * the boundary further, so the units of each are in one Deleted item.
 */
static int unback(loom_txn *t, const loom__back *b)
{
    uint64_t done = 0;
    while (done < b->n) {
        loom__id at = {b->at.client, b->at.clock + done};
        loom__item *s;
        size_t nmerge = t->nmerge;
        int rc = loom__get_clean_start(t, at, &s);
        if (rc)
            return rc;
        uint64_t want = b->n - done;
        if (s->len > want) {
            loom__item *r;
            if ((rc = loom__item_split(t, s, want, &r)))
                return rc;
        }
        t->nmerge = nmerge; /* the entries the splits just queued */
        if (s->ref == LOOM__REF_DELETED) {
            size_t n = (size_t)s->len; /* ASCII: one byte per unit */
            char *p = loom__str_bytes_alloc(t->doc, n + 1);
            if (!p)
                return LOOM_ENOMEM;
            memcpy(p, t->bbuf + b->off + done, n);
            p[n] = 0;
            s->c.str.p = p;
            s->c.str.bytes = (uint32_t)n; /* a piece of a string item */
            s->c.str.cap = (uint32_t)n + 1;
            s->ref = LOOM__REF_STRING;
        }
        done += s->len;
    }
    return LOOM_OK;
}

int loom__txn_unjoin(loom_txn *t)
{
    int rc = LOOM_OK;
    for (size_t i = 0; i < t->njoins && !rc; i++) {
        loom__item *it;
        rc = loom__get_clean_start(t, t->joins[i], &it);
    }
    if (!rc)
        t->njoins = 0;
    for (size_t i = t->nbacks; i-- > 0 && !rc;) {
        rc = unback(t, &t->backs[i]);
        if (!rc)
            t->nbacks = i;
    }
    if (!rc) {
        /* the cleanup finds Yjs's items now and does all its work */
        t->back_units = 0;
        t->bblen = 0;
    }
    return rc;
}

/* What txn_reset releases only after some transactions: big vectors, the
 * delete set's ranges. */
static LOOM__NOINLINE void txn_release(loom_doc *d, loom_txn *t)
{
    const loom_allocator *a = d->a;
    /* vectors stay for the next use, unless a big transaction grew them
     * (changed_entry resets an entry's counts when it takes it) */
    for (size_t i = 0; t->keys_grown && i < t->nchanged; i++) {
        loom__changed *ch = &t->changed[i];
        if (ch->kcap > 64) {
            loom__free(a, ch->keys, ch->kcap * sizeof(*ch->keys));
            ch->keys = NULL;
            ch->kcap = 0;
        }
        if (ch->kscap > 256) {
            loom__free(a, ch->kset, ch->kscap * sizeof(*ch->kset));
            ch->kset = NULL;
            ch->kscap = 0;
        }
    }
    t->keys_grown = false;
    if (t->ds.n)
        loom__ds_clear(&t->ds);
    if (t->bbcap > 65536) {
        loom__free(a, t->bbuf, t->bbcap);
        t->bbuf = NULL;
        t->bbcap = 0;
    }
}

/* Releases what a finished transaction recorded; its vectors are kept.
 * (origin, local and unobserved are set again when it is opened.) */
static inline void txn_reset(loom_doc *d, loom_txn *t)
{
    if (t->keys_grown || t->ds.n || t->bbcap > 65536)
        txn_release(d, t);
    /* The types' and clients' txn_seq stay: no later transaction has this
     * seq. */
    t->nchanged = t->ndeep = t->nmerge = t->ntouched = t->nds_order = 0;
    t->njoins = 0;
    t->join_units = 0;
    t->nbacks = t->bblen = 0;
    t->back_units = t->ds_units = 0;
    t->del_item = NULL;
    t->origin = NULL;
    t->format_cleanup = false;
    t->mk_type = NULL;
}

static LOOM__NOINLINE void txn_destroy(loom_doc *d, loom_txn *t)
{
    const loom_allocator *a = d->a;
    for (size_t i = 0; i < t->chcap; i++) {
        loom__changed *ch = &t->changed[i];
        loom__free(a, ch->keys, ch->kcap * sizeof(*ch->keys));
        loom__free(a, ch->kset, ch->kscap * sizeof(*ch->kset));
    }
    loom__free(a, t->changed, t->chcap * sizeof(*t->changed));
    loom__free(a, t->deep, t->dcap * sizeof(*t->deep));
    loom__free(a, t->merge, t->mcap * sizeof(*t->merge));
    loom__free(a, t->touched, t->tcap * sizeof(*t->touched));
    loom__free(a, t->tbefore, t->tbcap * sizeof(*t->tbefore));
    loom__ds_free(&t->ds);
    loom__free(a, t->ds_order, t->ds_order_cap * sizeof(*t->ds_order));
    loom__free(a, t->joins, t->jcap * sizeof(*t->joins));
    loom__free(a, t->backs, t->bkcap * sizeof(*t->backs));
    loom__free(a, t->bbuf, t->bbcap);
    loom__free(a, t, sizeof(*t));
}

/* A finished transaction is kept as the document's spare: typing opens one
 * per keystroke, and reusing its vectors saves their allocations. */
static inline void txn_free(loom_doc *d, loom_txn *t)
{
    txn_reset(d, t);
    if (d->spare_txn) {
        txn_destroy(d, t);
        return;
    }
    d->spare_txn = t;
}

void loom__txn_spare_free(loom_doc *d)
{
    if (d->spare_txn)
        txn_destroy(d, d->spare_txn);
    d->spare_txn = NULL;
}

/* loom__txn_open but for its fast path. */
static LOOM__NOINLINE int
txn_open_slow(loom_doc *d, void *origin, bool local, loom_txn **out)
{
    if (d->txn) {
        d->txn_depth++;
        *out = d->txn;
        return LOOM_OK;
    }
    loom_txn *t = d->spare_txn;
    if (t) {
        d->spare_txn = NULL;
    } else {
        t = loom__calloc(d->a, sizeof(*t));
        if (!t)
            return LOOM_ENOMEM;
        loom__ds_init(&t->ds, d->a);
    }
    loom__txn_queue *q = &d->queue;
    if (loom__vec_reserve(d->a, (void **)&q->v, &q->cap, q->n + 1,
                          sizeof(*q->v))) {
        txn_free(d, t);
        return LOOM_ENOMEM;
    }
    q->v[q->n++] = t;
    t->doc = d;
    t->origin = origin;
    t->local = local;
    t->unobserved = !d->in_cleanup && !loom__doc_observed(d);
    t->seq = ++d->txn_seq;
    d->txn = t;
    d->txn_depth = 1;
    *out = t;
    return LOOM_OK;
}

int loom__txn_open(loom_doc *d, void *origin, bool local, loom_txn **out)
{
    /* typing: one transaction after another, the last one's kept, nobody
     * observing (update listeners may be); without calls, so without
     * registers to keep */
    loom_txn *t = d->spare_txn;
    loom__txn_queue *q = &d->queue;
    if (d->txn || !t || q->n >= q->cap || d->nobserving || d->in_cleanup)
        return txn_open_slow(d, origin, local, out);
    d->spare_txn = NULL;
    q->v[q->n++] = t;
    t->doc = d;
    t->origin = origin;
    t->local = local;
    t->unobserved = true;
    t->seq = ++d->txn_seq;
    d->txn = t;
    d->txn_depth = 1;
    *out = t;
    return LOOM_OK;
}

/* Can loom__item_try_merge(l, r) succeed? A necessary condition, checked
 * before the call: almost every pair of neighbours by clock fails it (a
 * map entry's origin is the key's previous value, not the struct before
 * it). */
static inline bool may_merge(const loom__item *l, const loom__item *r)
{
    /* r first: most new structs (a loaded map's entries) have no origin
     * and are no GC, which settles it without a look at l */
    if (!r->has_origin && !loom__item_is_gc(r))
        return false;
    if (loom__item_is_gc(l) || loom__item_is_gc(r))
        return loom__item_is_gc(l) && loom__item_is_gc(r);
    return r->has_origin && l->right == r &&
           r->origin.clock == l->id.clock + l->len - 1 &&
           r->origin.client == l->id.client;
}

static size_t merge_run(loom_doc *d, loom__client *c, size_t pos)
{
    size_t i = pos;
    loom__item *right = loom__cs(c, i);
    for (; i > 0; i--) {
        loom__item *left = loom__cs(c, i - 1);
        if (!may_merge(left, right) || !loom__item_try_merge(d, left, right))
            break;
        right = left;
    }
    size_t merged = pos - i;
    loom__cs_remove(c, i + 1, merged);
    return merged;
}

/* tryToMergeWithLefts: merges structs[pos] into its lefts as far as
 * possible; returns how many merged. */
static inline size_t merge_with_lefts(loom_doc *d, loom__client *c, size_t pos)
{
    if (pos == 0 || !may_merge(loom__cs(c, pos - 1), loom__cs(c, pos)))
        return 0;
    return merge_run(d, c, pos);
}

static void gc_delete_set(loom_doc *d, const loom__ds *ds)
{
    for (size_t ci = 0; ci < ds->n; ci++) {
        const loom__ds_client *dc = &ds->c[ci];
        loom__client *c = loom__client_get(d, dc->client);
        if (!c || !c->n)
            continue;
        /* the ranges are sorted (normalized): each one's first struct is
         * searched from the last one's */
        size_t hint = SIZE_MAX;
        for (size_t di = dc->n; di-- > 0;) {
            uint64_t end = dc->r[di].clock + dc->r[di].len;
            size_t first = loom__find_index_near(c, dc->r[di].clock, hint);
            hint = first;
            for (size_t si = first;
                 si < c->n && loom__cs(c, si)->id.clock < end; si++) {
                /* Deleted content is what collecting makes of it already
                 * (and its item's content is zero): left alone, without
                 * touching the half of the item that holds the content */
                loom__item *s = loom__cs(c, si);
                if (!loom__item_is_gc(s) && s->ref != LOOM__REF_DELETED &&
                    loom__item_deleted(s) && !(s->flags & LOOM__F_KEEP))
                    loom__item_gc(d, s, false);
            }
        }
    }
}

/* tryMergeDeleteSet. A client that had no structs before the transaction
 * is left to merge_new_structs, which tries every pair of its neighbours
 * (merging is the same whatever the order: a run of structs that can
 * merge pairwise merges into one): loading a document, that is every
 * client, and the deleted ranges would be merged twice. Not so when
 * typing joined items (t->njoins), which merge_new_structs may skip. */
static void merge_delete_set(loom_doc *d, const loom_txn *t)
{
    const loom__ds *ds = &t->ds;
    for (size_t ci = 0; ci < ds->n; ci++) {
        const loom__ds_client *dc = &ds->c[ci];
        loom__client *c = loom__client_get(d, dc->client);
        /* (c->before is its state before t when t touched it last) */
        if (!c || !c->n ||
            (!t->njoins && c->txn_seq == t->seq && c->before == 0))
            continue;
        size_t hint = SIZE_MAX; /* as in gc_delete_set */
        for (size_t di = dc->n; di-- > 0;) {
            const loom__ds_range *r = &dc->r[di];
            uint64_t last = r->clock + r->len - 1;
            size_t si = loom__find_index_near(c, last, hint) + 1;
            if (si > c->n - 1)
                si = c->n - 1;
            while (si > 0 && loom__cs(c, si)->id.clock >= r->clock) {
                size_t m = merge_with_lefts(d, c, si);
                if (1 + m > si)
                    break;
                si -= 1 + m;
            }
            hint = si;
        }
    }
}

static void emit_update(loom_doc *d, loom_txn *t)
{
    bool listeners = false; /* first: the cheaper question */
    for (size_t i = 0; i < d->nsubs; i++)
        listeners |= d->subs[i].kind == LOOM__SUB_UPDATE;
    if (!listeners)
        return;
    bool any = t->ds.n && !loom__ds_empty(&t->ds);
    for (size_t i = 0; i < t->ntouched && !any; i++) {
        if (loom__state(d, t->touched[i]->client) != t->tbefore[i])
            any = true;
    }
    if (!any)
        return;
    /* the clients that got new structs, from their state before (touched
     * clients are distinct) */
    loom__sv_entry small[8], *from = small;
    if (t->ntouched > 8 &&
        !(from = loom__malloc(d->a, t->ntouched * sizeof(*from)))) {
        d->oom = LOOM_ENOMEM;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < t->ntouched; i++) {
        loom__client *c = t->touched[i];
        if (loom__state(d, c->client) > t->tbefore[i]) {
            from[n].client = c->client;
            from[n++].clock = t->tbefore[i];
        }
    }
    /* the document's buffer, taken while in use */
    loom_buf out = d->upd;
    memset(&d->upd, 0, sizeof(d->upd));
    if (!out.data)
        loom__buf_init(&out, d->a);
    out.len = 0;
    int rc = loom__write_structs(d, from, n, &out);
    if (!rc)
        rc = loom__ds_write(&out, &t->ds);
    if (from != small)
        loom__free(d->a, from, t->ntouched * sizeof(*from));
    if (rc) {
        d->oom = rc;
    } else {
        for (size_t i = 0; i < d->nsubs; i++) {
            loom__sub s = d->subs[i];
            if (s.kind == LOOM__SUB_UPDATE)
                ((loom_update_fn)s.fn)(s.ud, d, out.data, out.len, t);
        }
    }
    if (out.cap <= 65536 && !d->upd.data)
        d->upd = out; /* small enough to keep */
    else
        loom_buf_free(&out);
}

/* The item whose range is all of t's delete set, if the transaction
 * remembers it (del_item), else NULL. */
static loom__item *single_deleted(const loom_doc *d, const loom_txn *t)
{
    const loom__item *it = t->del_item;
    if (!it || t->ds.n != 1 || t->ds.c[0].n != 1 ||
        t->del_frees != d->item_frees)
        return NULL;
    const loom__ds_range *r = &t->ds.c[0].r[0];
    if (t->ds.c[0].client != it->id.client || r->clock != it->id.clock ||
        r->len != it->len)
        return NULL;
    return t->del_item;
}

/* gc_delete_set and merge_delete_set for a delete set that is one item's
 * range. Merging there can only join the item with the struct after it by
 * clock, its right neighbour then, or with the one before it, its left:
 * when neither neighbour is that struct nothing merges, and its index is
 * not needed. */
static void collect_one(loom_doc *d, loom_txn *t, loom__item *it)
{
    if (d->gc && !loom__item_is_gc(it) && loom__item_deleted(it) &&
        !(it->flags & LOOM__F_KEEP))
        loom__item_gc(d, it, false);
    const loom__item *l = it->left, *r = it->right;
    uint64_t c = it->id.client;
    if (loom__item_is_gc(it) ||
        (r && r->id.client == c && r->id.clock == it->id.clock + it->len) ||
        (l && l->right == it && l->id.client == c &&
         l->id.clock + l->len == it->id.clock))
        merge_delete_set(d, t);
}

/* Did the transaction only append typing to one item (joins intact)?
 * merge_new_structs merges nothing then (see there). */
static inline bool only_joins(const loom_txn *t)
{
    if (!t->njoins || t->ntouched != 1)
        return false;
    const loom__client *c = t->touched[0];
    if (!c->n || c->client != t->join_client)
        return false;
    const loom__item *last = loom__cs_last(c);
    return last->id.clock + last->len - t->tbefore[0] == t->join_units;
}

/* Merges the structs the transaction added with their lefts. */
static void merge_new_structs(loom_doc *d, const loom_txn *t)
{
    for (size_t i = 0; i < t->ntouched; i++) {
        loom__client *c = t->touched[i];
        if (!c->n)
            continue;
        uint64_t before = t->tbefore[i];
        const loom__item *last = loom__cs_last(c);
        uint64_t grown = last->id.clock + last->len - before;
        if (!grown)
            continue;
        /* Only typing appended to an item (joins intact): Yjs would merge
         * those items into it, then try that item with its left, which
         * failed when they became neighbours (else that cleanup had merged
         * them) and appending changes nothing of it. */
        if (t->njoins && c->client == t->join_client && grown == t->join_units)
            continue;
        if (last->id.clock <= before) {
            /* one new struct (or an append to the last) */
            merge_with_lefts(d, c, c->n - 1);
            continue;
        }
        size_t first = before ? loom__find_index(c, before) : 0;
        if (first < 1)
            first = 1;
        size_t si = c->n - 1;
        while (si >= first) {
            /* Most neighbours cannot merge (a loaded map's values): skip
             * them reading the array directly while the structs from
             * first on are past the gap buffer's hole (or it has none). */
            if (c->gap <= first - 1 || !c->hole) {
                loom__item **v = c->v + (c->gap <= first - 1 ? c->hole : 0);
                while (si >= first && !may_merge(v[si - 1], v[si]))
                    si--;
                if (si < first)
                    break;
            }
            size_t m = merge_with_lefts(d, c, si);
            if (1 + m > si)
                break;
            si -= 1 + m;
        }
    }
}

static void cleanup(loom_doc *d, loom_txn *t)
{
    /* A local transaction that deleted and split nothing, with nobody
     * subscribed (a map set or a keystroke): only its new structs can
     * merge. */
    if (t->local && !d->nsubs && !t->nmerge) {
        if (t->ds.n) {
            loom__item *del = single_deleted(d, t);
            if (!del)
                goto general;
            collect_one(d, t, del);
        }
        merge_new_structs(d, t);
        return;
    }
general:
    /* observers subscribed after typing was appended see Yjs's items */
    if (loom__txn_joined(t) && loom__doc_observed(d)) {
        int urc = loom__txn_unjoin(t);
        if (urc)
            d->oom = urc;
    }
    if (t->ds.n > 1 || (t->ds.n == 1 && t->ds.c[0].n > 1))
        loom__ds_normalize(&t->ds); /* (one range is normalized) */
    /* Observers and deep observers, afterTransaction, the formatting cleanup
     * (a local transaction without subscribers has none of them). */
    int rc = d->nsubs || !t->local ? loom__dispatch_events(d, t) : LOOM_OK;
    if (rc)
        d->oom = rc;
    for (size_t i = 0; i < d->nsubs; i++) {
        loom__sub s = d->subs[i];
        if (s.kind == LOOM__SUB_AFTER_TXN)
            ((loom_txn_fn)s.fn)(s.ud, d, t);
    }
    if (t->format_cleanup) {
        rc = loom__text_cleanup_after(d, t);
        if (rc)
            d->oom = rc;
    }
    /* Nothing but backspaces deleted and split (pos_backspace): their
     * units are Deleted content already, merged where Yjs's cleanup merges
     * them, and every other merge it would try fails (checked there). */
    bool only_backs =
        t->nbacks && t->ds_units == t->back_units && t->nmerge == t->nbacks;
    loom__item *del = only_backs ? NULL : single_deleted(d, t);
    if (del) {
        collect_one(d, t, del);
    } else if (!only_backs && t->ds.n) {
        if (d->gc)
            gc_delete_set(d, &t->ds);
        merge_delete_set(d, t);
    }
    if (t->ntouched && !only_joins(t))
        merge_new_structs(d, t);
    for (size_t i = only_backs ? 0 : t->nmerge; i-- > 0;) {
        loom__client *c = loom__client_get(d, t->merge[i].client);
        if (!c || !c->n)
            continue;
        size_t pos = loom__find_index(c, t->merge[i].clock);
        if (pos + 1 < c->n && merge_with_lefts(d, c, pos + 1) > 1)
            continue;
        if (pos > 0)
            merge_with_lefts(d, c, pos);
    }
    if (!t->local) {
        loom__client *own = loom__client_get(d, d->client_id);
        if (own &&
            loom__txn_before(t, d->client_id) != loom__state(d, d->client_id))
            d->client_id = loom__random_u32();
    }
    emit_update(d, t);
}

/* loom__txn_close of the outermost transaction t but for its fast path. */
static LOOM__NOINLINE int txn_close_slow(loom_doc *d, loom_txn *t)
{
    d->txn = NULL;
    if (d->in_cleanup)
        return LOOM_OK; /* the running cleanup loop takes it */
    loom__txn_queue *q = &d->queue;
    loom__item *del = NULL;
    if (q->n == 1 && t->local && !d->nsubs && !t->nmerge &&
        (!t->ds.n || (del = single_deleted(d, t)))) {
        /* alone, and cleanup() would only collect the one item deleted
         * and merge its new structs (a map set, a keystroke) */
        if (del)
            collect_one(d, t, del);
        loom__client *c = NULL;
        if (!t->njoins && t->ntouched == 1 && (c = t->touched[0])->n &&
            loom__cs_last(c)->id.clock <= t->tbefore[0]) {
            /* merge_new_structs for one client with at most one new
             * struct (a map set), without its loop */
            merge_with_lefts(d, c, c->n - 1);
        } else if (!only_joins(t)) {
            merge_new_structs(d, t);
        }
        q->n = 0;
        txn_free(d, t);
        int rc = d->oom;
        d->oom = 0;
        return rc;
    }
    d->in_cleanup = true;
    while (q->head < q->n) {
        t = q->v[q->head];
        cleanup(d, t);
        q->head++;
        txn_free(d, t);
    }
    q->n = q->head = 0;
    d->in_cleanup = false;
    int rc = d->oom;
    d->oom = 0;
    return rc;
}

/* The end of a lone local transaction whose cleanup would do nothing but
 * release it (loom__txn_close's fast paths): it becomes the spare. */
static inline int txn_close_quiet(loom_doc *d, loom_txn *t)
{
    d->txn = NULL;
    d->queue.n = 0;
    txn_reset(d, t);
    d->spare_txn = t;
    return LOOM_OK;
}

/* loom__txn_close of a lone transaction that only deleted by backspace or
 * forward delete (text.c pos_backspace, pos_delete_front) and created no
 * struct, nobody subscribed: cleanup() would only release it (its units are
 * Deleted content already, merged where Yjs merges them; nobody reads its
 * delete set). */
static LOOM__NOINLINE int txn_close_backs(loom_doc *d, loom_txn *t)
{
    return txn_close_quiet(d, t);
}

int loom__txn_close(loom_doc *d)
{
    loom_txn *t = d->txn;
    if (!t)
        return LOOM_ESTATE;
    if (--d->txn_depth > 0)
        return LOOM_OK;
    /* Alone, nobody subscribed, nothing to release but a delete set, and
     * it becomes the spare. */
    if (!t->local || d->in_cleanup || d->queue.n != 1 || d->nsubs ||
        t->keys_grown || t->bbcap > 65536 || d->spare_txn || d->oom)
        return txn_close_slow(d, t);
    /* A keystroke appended to an item: its cleanup merges nothing
     * (only_joins). No calls, so no registers to keep. */
    if (!t->nmerge && !t->ds.n && only_joins(t))
        return txn_close_quiet(d, t);
    if (t->nbacks && !t->ntouched && t->ds_units == t->back_units &&
        t->nmerge == t->nbacks && !t->format_cleanup)
        return txn_close_backs(d, t);
    return txn_close_slow(d, t);
}
