/*
 * store.c: the struct store. Per client, an array of structs sorted by clock
 * that covers [0, state) without gaps; lookups by binary search, and the
 * splits that give operations clean item boundaries (Yjs getItemCleanStart /
 * getItemCleanEnd / splitItem).
 */
#include <string.h>

#include "crdt/crdt.h"

loom__client *loom__client_lookup(const loom_doc *d, uint64_t client)
{
    return (loom__client *)loom__u64map_get(&d->clients, client);
}

int loom__client_get_or_add(loom_doc *d, uint64_t client, loom__client **out)
{
    loom__client *c = loom__client_get(d, client);
    if (c) {
        d->last_client = c;
        *out = c;
        return LOOM_OK;
    }
    if (loom__vec_reserve(d->a, (void **)&d->clist, &d->ccap, d->nclients + 1,
                          sizeof(*d->clist)))
        return LOOM_ENOMEM;
    c = loom__calloc(d->a, sizeof(*c));
    if (!c)
        return LOOM_ENOMEM;
    c->client = client;
    if (loom__u64map_put(&d->clients, client, c)) {
        loom__free(d->a, c, sizeof(*c));
        return LOOM_ENOMEM;
    }
    d->clist[d->nclients++] = c;
    *out = c;
    return LOOM_OK;
}

/* ---- the gap buffer of a client's structs ------------------------------ */

void loom__cs_push(loom__client *c, loom__item *it)
{
    loom__cs_push_inline(c, it);
}

/* Moves the hole so that it starts at logical index i. */
static void cs_move_gap(loom__client *c, size_t i)
{
    if (!c->hole) {
        c->gap = i;
        return;
    }
    if (i < c->gap)
        memmove(c->v + i + c->hole, c->v + i, (c->gap - i) * sizeof(*c->v));
    else if (i > c->gap)
        memmove(c->v + c->gap, c->v + c->gap + c->hole,
                (i - c->gap) * sizeof(*c->v));
    c->gap = i;
}

void loom__cs_insert(loom__client *c, size_t i, loom__item *it)
{
    if (i >= c->n) {
        loom__cs_push(c, it);
        return;
    }
    if (!c->hole) {
        /* open a hole of half the spare room (reserved: at least 1) */
        size_t spare = c->cap - c->n;
        size_t h = spare > 1 ? spare / 2 : 1;
        memmove(c->v + i + h, c->v + i, (c->n - i) * sizeof(*c->v));
        c->gap = i;
        c->hole = h;
    } else {
        cs_move_gap(c, i);
    }
    c->v[c->gap++] = it;
    c->hole--;
    c->n++;
}

void loom__cs_remove(loom__client *c, size_t i, size_t k)
{
    if (!k)
        return;
    if (i + k < c->n || c->gap < c->n) {
        cs_move_gap(c, i);
        c->hole += k;
    }
    c->n -= k;
    if (c->gap >= c->n) {
        c->gap = c->n; /* nothing after the hole: it is spare room */
        c->hole = 0;
    }
}

/* In v[0..n) (sorted by clock, v[0] at or before clock), the index of the
 * last struct starting at or before clock: the one containing it, since
 * structs are contiguous. Without branches on the comparisons, which are
 * as good as random to a predictor. */
static LOOM__INLINE size_t last_at_or_before(loom__item *const *v,
                                             size_t n,
                                             uint64_t clock)
{
    /* the largest power of two below n first, from the end so that the
     * halving steps after it cover the rest exactly */
    if (n < 2)
        return 0;
    size_t step = (size_t)1
                  << (63 - __builtin_clzll((unsigned long long)n - 1));
    size_t i = v[n - step]->id.clock <= clock ? n - step : 0;
    for (step /= 2; step; step /= 2)
        i = v[i + step]->id.clock <= clock ? i + step : i;
    return i;
}

/* The index of the struct containing clock, known to be in [lo, hi]. */
static LOOM__NOINLINE size_t search_range(const loom__client *c,
                                          size_t lo,
                                          size_t hi,
                                          uint64_t clock)
{
    if (lo >= hi)
        return lo;
    /* search the part of the range on one side of the hole, where the
     * entries are contiguous */
    if (c->hole && lo < c->gap && hi >= c->gap) {
        if (loom__cs(c, c->gap)->id.clock <= clock)
            lo = c->gap;
        else
            hi = c->gap - 1;
    }
    return lo + last_at_or_before(c->v + (lo < c->gap ? lo : lo + c->hole),
                                  hi - lo + 1, clock);
}

size_t loom__find_index(const loom__client *c, uint64_t clock)
{
    size_t lo = 0, hi = c->n - 1;
    /* Interpolated first guess: typing and appends hit the end. */
    const loom__item *last = loom__cs(c, hi);
    if (clock >= last->id.clock)
        return hi;
    /* Then around the gap, where the last split or merge happened: edits
     * cluster. */
    if (c->gap < hi) {
        const loom__item *g = loom__cs(c, c->gap);
        if (clock >= g->id.clock) {
            if (clock < g->id.clock + g->len)
                return c->gap;
            lo = c->gap + 1;
        } else if (c->gap > 0) {
            const loom__item *p = loom__cs(c, c->gap - 1);
            if (clock >= p->id.clock || c->gap < 2)
                return c->gap - 1; /* structs are contiguous */
            hi = c->gap - 2;
        }
    }
    /* Structs of one length each (map entries) put a clock at its index
     * exactly, when the range looks like that; text items of all lengths
     * go to the search. */
    if (lo < hi) {
        const loom__item *a = loom__cs(c, lo), *b = loom__cs(c, hi);
        uint64_t l = a->len;
        if (b->len == l && b->id.clock - a->id.clock == (hi - lo) * l) {
            size_t mid = lo + (size_t)((clock - a->id.clock) / l);
            const loom__item *s = loom__cs(c, mid);
            if (clock >= s->id.clock && clock < s->id.clock + s->len)
                return mid;
        }
    }
    return search_range(c, lo, hi, clock);
}

/* loom__find_index_near for a hint that is an index. */
static LOOM__INLINE size_t index_near(const loom__client *c,
                                      uint64_t clock,
                                      size_t hint)
{
    /* Searched in the side of the hole that holds clock, where the entries
     * are contiguous: v[0, m) are the structs base.. in order. */
    loom__item *const *v = c->v;
    size_t base = 0, m = c->n;
    if (c->hole && c->gap < m) {
        if (v[c->gap + c->hole]->id.clock <= clock) {
            base = c->gap;
            v += c->gap + c->hole;
            m -= c->gap;
        } else {
            m = c->gap;
        }
    }
    size_t h = hint < base ? 0 : hint - base < m ? hint - base : m - 1;
    const loom__item *s = v[h];
    size_t lo, hi;
    if (clock >= s->id.clock) {
        if (clock < s->id.clock + s->len)
            return base + h;
        /* forward: the struct after h starts at or before clock (the
         * structs are contiguous, and the side's last one holds its last
         * clock), so the answer is from there on */
        lo = h + 1;
        size_t step = 1;
        while (step < m - lo && v[lo + step]->id.clock <= clock) {
            lo += step;
            step *= 2;
        }
        hi = step < m - lo ? lo + step - 1 : m - 1;
    } else {
        /* backward: h starts after clock (so h > 0) */
        hi = h - 1;
        size_t step = 1;
        while (step <= hi && v[hi - step]->id.clock > clock) {
            hi -= step + 1;
            step *= 2;
        }
        lo = step <= hi ? hi - step : 0;
    }
    return base + lo + last_at_or_before(v + lo, hi - lo + 1, clock);
}

size_t loom__find_index_near(const loom__client *c, uint64_t clock, size_t hint)
{
    return hint == SIZE_MAX ? loom__find_index(c, clock)
                            : index_near(c, clock, hint);
}

loom__item *loom__find(const loom_doc *d, loom__id id)
{
    const loom__client *c = loom__client_get(d, id.client);
    if (!c || c->n == 0)
        return NULL;
    const loom__item *last = loom__cs_last(c);
    if (id.clock >= last->id.clock + last->len)
        return NULL;
    return loom__cs(c, loom__find_index(c, id.clock));
}

int loom__store_push(loom_doc *d, loom__item *it)
{
    loom__client *c;
    int rc = loom__client_get_or_add(d, it->id.client, &c);
    if (rc)
        return rc;
    if (d->txn && (rc = loom__txn_touch(d->txn, c)))
        return rc;
    if (loom__cs_reserve(d->a, c))
        return LOOM_ENOMEM;
    loom__cs_push(c, it);
    return LOOM_OK;
}

/* splitItem without the store insertion. */
static int
split_item(loom_txn *t, loom__item *left, uint64_t diff, loom__item **out)
{
    loom_doc *d = t->doc;
    loom__item *r = loom__item_alloc(d);
    if (!r)
        return LOOM_ENOMEM;
    r->id.client = left->id.client;
    r->id.clock = left->id.clock + diff;
    r->len = left->len - diff;
    r->has_origin = true;
    r->origin.client = left->id.client;
    r->origin.clock = left->id.clock + diff - 1;
    r->has_right_origin = left->has_right_origin;
    if (left->has_right_origin)
        r->right_origin = left->right_origin;
    r->parent = left->parent;
    r->ref = left->ref;
    r->flags = left->flags & (LOOM__F_DELETED | LOOM__F_KEEP);
    r->parent_sub = left->parent_sub; /* the map's copy, shared */
    r->parent_sub_len = left->parent_sub_len;
    int rc = loom__content_split(d, left, diff, r);
    if (rc) {
        loom__item_release(d, r);
        return rc;
    }
    rc = loom__txn_add_merge(t, r->id);
    if (rc)
        return rc; /* the split content is consistent; only merging back is lost */
    left->len = diff;
    r->left = left;
    r->right = left->right;
    left->right = r;
    if (r->right)
        r->right->left = r;
    if (r->parent_sub && !r->right && r->parent) {
        loom__strmap_key_entry(&r->parent->map, r->parent_sub)->val = r;
    }
    *out = r;
    return LOOM_OK;
}

int loom__item_split(loom_txn *t,
                     loom__item *it,
                     uint64_t diff,
                     loom__item **right)
{
    loom__client *c = loom__client_get(t->doc, it->id.client);
    return loom__item_split_at(t, c, loom__find_index(c, it->id.clock), it,
                               diff, right);
}

int loom__item_split_at(loom_txn *t,
                        loom__client *c,
                        size_t i,
                        loom__item *it,
                        uint64_t diff,
                        loom__item **right)
{
    /* Reserve first: once the item is cut, nothing may fail. */
    if (loom__cs_reserve(t->doc->a, c) ||
        loom__vec_reserve(t->doc->a, (void **)&t->merge, &t->mcap,
                          t->nmerge + 1, sizeof(*t->merge)))
        return LOOM_ENOMEM;
    loom__item *r;
    int rc = split_item(t, it, diff, &r);
    if (rc)
        return rc;
    loom__cs_insert(c, i + 1, r);
    *right = r;
    return LOOM_OK;
}

/* The index of id's struct, searched from the finger when it is on id's
 * client, which it is then left on. The client's last struct is checked
 * first: integrating an update in clock order, an origin is most often the
 * struct integrated just before, or one not long before it. */
static LOOM__INLINE size_t find_fingered(const loom__client *c,
                                         loom__id id,
                                         loom__finger *f)
{
    if (!f)
        return loom__find_index(c, id.clock);
    size_t i = c->n - 1;
    if (id.clock < loom__cs_last(c)->id.clock)
        i = index_near(c, id.clock, f->client == id.client ? f->i : i);
    f->client = id.client;
    f->i = i;
    return i;
}

int loom__get_clean_start(loom_txn *t, loom__id id, loom__item **out)
{
    return loom__get_clean_start_near(t, id, NULL, out);
}

int loom__get_clean_end(loom_txn *t, loom__id id, loom__item **out)
{
    return loom__get_clean_end_near(t, id, NULL, out);
}

int loom__get_clean_start_near(loom_txn *t,
                               loom__id id,
                               loom__finger *f,
                               loom__item **out)
{
    loom__client *c = loom__client_get(t->doc, id.client);
    size_t i = find_fingered(c, id, f);
    loom__item *s = loom__cs(c, i);
    if (s->id.clock < id.clock && !loom__item_is_gc(s)) {
        loom__item *r;
        int rc = loom__item_split_at(t, c, i, s, id.clock - s->id.clock, &r);
        if (rc)
            return rc;
        s = r;
    }
    *out = s;
    return LOOM_OK;
}

/* The split of loom__get_clean_end_near, out of its way. */
static LOOM__NOINLINE int
clean_end_split(loom_txn *t, loom__client *c, size_t i, loom__id id)
{
    loom__item *r;
    loom__item *s = loom__cs(c, i);
    return loom__item_split_at(t, c, i, s, id.clock - s->id.clock + 1, &r);
}

int loom__get_clean_end_near(loom_txn *t,
                             loom__id id,
                             loom__finger *f,
                             loom__item **out)
{
    loom__client *c = loom__client_get(t->doc, id.client);
    size_t i = find_fingered(c, id, f);
    loom__item *s = loom__cs(c, i);
    if (id.clock != s->id.clock + s->len - 1 && !loom__item_is_gc(s)) {
        int rc = clean_end_split(t, c, i, id);
        if (rc)
            return rc;
    }
    *out = s;
    return LOOM_OK;
}
