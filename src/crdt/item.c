/*
 * item.c: what happens to one item: its content (split, merge, free,
 * encode), YATA integration into its parent's list, deletion (with the
 * recursive deletion of a type's children done iteratively, so hostile
 * nesting cannot exhaust the stack), garbage collection and the merge of
 * neighbours at transaction cleanup.
 */
#include <string.h>

#include "crdt/crdt.h"

/* 112 bytes on 64-bit targets (80 for a map entry: LOOM__F_ROOM): keep it
 * there. */
_Static_assert(sizeof(void *) != 8 || sizeof(loom__item) == 112,
               "loom__item grew past 112 bytes");

/* Zeroes the first n bytes of an item, n a constant of 64 or more: in
 * memsets of at most 64 bytes, which compilers write as vector stores of a
 * zeroed register, where one of 112 bytes becomes a string store (every
 * struct of a loaded text is zeroed here). */
_Static_assert(offsetof(loom__item, origin) >= 64, "zero_item's sizes");
static LOOM__INLINE void zero_item(loom__item *it, size_t n)
{
    memset(it, 0, 64);
    memset((char *)it + 64, 0, n - 64);
}

/* Items come from the document's pool: a keystroke allocates an item and
 * a merge frees one, and malloc per item was the largest cost of typing. */
loom__item *loom__item_alloc_room(loom_doc *d, unsigned room)
{
    /* each size a constant: the pool's size class and the zeroing are
     * worked out at compile time */
    loom__item *it;
    if (!(room & LOOM__F_ROOM)) {
        if (!(it = loom__pool_alloc(&d->pool, sizeof(loom__item))))
            return NULL;
        zero_item(it, sizeof(loom__item));
    } else if (!(room & LOOM__F_NO_O)) {
        size_t n = offsetof(loom__item, right_origin);
        if (!(it = loom__pool_alloc(&d->pool, n)))
            return NULL;
        zero_item(it, n);
    } else {
        size_t n = offsetof(loom__item, origin);
        if (!(it = loom__pool_alloc(&d->pool, n)))
            return NULL;
        zero_item(it, n);
    }
    it->flags = (uint8_t)room;
    return it;
}

loom__item *loom__item_alloc(loom_doc *d)
{
    return loom__item_alloc_room(d, 0);
}

void loom__item_release(loom_doc *d, loom__item *it)
{
    d->item_frees++;
    uint8_t *b = (uint8_t *)it;
    size_t n = loom__item_size(it);
    if (it->flags & LOOM__F_FRONT) {
        size_t f = loom__item_front_size(it);
        b -= f;
        n += f;
    }
    loom__pool_free(&d->pool, b, n);
}

/* In front of a key string: its tag, then its length. */
#define KEYSTR_HEAD (sizeof(uint64_t) + sizeof(size_t))

char *loom__keystr_new(const loom_allocator *a, const char *k, size_t n)
{
    if (n > SIZE_MAX - KEYSTR_HEAD - 1)
        return NULL;
    char *p = loom__malloc(a, KEYSTR_HEAD + n + 1);
    if (!p)
        return NULL;
    memset(p, 0, sizeof(uint64_t));
    memcpy(p + sizeof(uint64_t), &n, sizeof(n));
    p += KEYSTR_HEAD;
    if (n)
        memcpy(p, k, n);
    p[n] = 0;
    return p;
}

void loom__keystr_free(const loom_allocator *a, char *s)
{
    if (s)
        loom__free(a, s - KEYSTR_HEAD, KEYSTR_HEAD + loom__keystr_len(s) + 1);
}

int loom__any_content_take(loom_doc *d, loom__item *it, loom_buf *b)
{
    if (!loom__bytes_fit(b->len))
        return LOOM_ELIMIT;
    if (b->data && (!LOOM__POOL_ON || b->cap > LOOM__POOL_MAX) &&
        loom__bytes_fit(b->cap)) {
        /* loom__pool_free gives blocks of this size to the allocator */
        it->c.any.p = b->data;
        it->c.any.bytes = (uint32_t)b->len;
        it->c.any.cap = (uint32_t)b->cap;
        memset(b, 0, sizeof(*b));
        return LOOM_OK;
    }
    size_t n = b->len;
    uint8_t *p = loom__any_bytes_alloc(d, n ? n : 1);
    if (!p)
        return LOOM_ENOMEM;
    if (n)
        memcpy(p, b->data, n);
    it->c.any.p = p;
    it->c.any.bytes = (uint32_t)n;
    it->c.any.cap = n ? (uint32_t)n : 1;
    return LOOM_OK;
}

/* The bytes in front of an item whose content left them (a deleted or
 * overwritten map entry, a merge that outgrew them) go back to the pool on
 * their own, or every overwrite of a key would leave its old value's bytes
 * behind for the doc's life. The pool keeps no headers, so a block it
 * carved from a chunk can come back in parts; a block past LOOM__POOL_MAX
 * (or any block without the pool) is one allocation and goes back whole,
 * with the item. */
static void front_release(loom_doc *d, loom__item *it)
{
    size_t f = loom__item_front_size(it);
    if (LOOM__POOL_ON && f + loom__item_size(it) <= LOOM__POOL_MAX) {
        loom__pool_free(&d->pool, (uint8_t *)it - f, f);
        it->flags &= (uint8_t)~LOOM__F_FRONT;
    }
}

void loom__content_free(loom_doc *d, loom__item *it)
{
    const loom_allocator *a = d->a;
    switch (it->ref) {
    case LOOM__REF_STRING:
        loom__pool_free(&d->pool, it->c.str.p, it->c.str.cap);
        break;
    case LOOM__REF_ANY:
        if (!(it->flags & LOOM__F_FRONT_VAL))
            loom__pool_free(&d->pool, it->c.any.p, it->c.any.cap);
        else
            front_release(d, it);
        break;
    case LOOM__REF_JSON:
        for (uint64_t i = 0; i < it->len; i++)
            loom_any_free(it->c.json.v[i]);
        loom__free(a, it->c.json.v, it->c.json.cap * sizeof(loom_any *));
        break;
    case LOOM__REF_BINARY:
        loom__free(a, it->c.bin.p, it->c.bin.n);
        break;
    case LOOM__REF_EMBED:
        loom_any_free(it->c.embed);
        break;
    case LOOM__REF_FORMAT:
        loom__keystr_free(a, it->c.fmt.key);
        loom_any_free(it->c.fmt.val);
        break;
    case LOOM__REF_DOC:
        loom__keystr_free(a, it->c.doc.guid);
        loom_any_free(it->c.doc.opts);
        break;
    default: /* Type content: the type lives in types_all. Deleted, GC: none. */
        break;
    }
    memset(&it->c, 0, sizeof(it->c));
    it->flags &= (uint8_t) ~(LOOM__F_HINT | LOOM__F_FRONT_VAL);
}

void loom__item_free(loom_doc *d, loom__item *it)
{
    if (!it)
        return;
    loom__content_free(d, it);
    if (it->parent)
        loom__markers_forget(it->parent, it);
    loom__item_release(d, it);
}

/*
 * Where the last merge into an Any item joined: the values before it in the
 * high 32 bits, their bytes in the low 32 (0: none). Encoding the tail of
 * an item that grew by merges then skips from there rather than over every
 * value before it (a client pushing to an array re-encoded its whole run
 * on every update). Few items grow by merges, so the hints are kept in the
 * doc's any_hints, by item address, for the items flagged LOOM__F_HINT,
 * rather than in a field that would make every item 8 bytes larger. A
 * stale entry (its item freed) is never read: a new item at that address
 * has no flag until its own merge writes the entry again.
 */
static uint64_t any_hint(const loom__item *it)
{
    if (!(it->flags & LOOM__F_HINT) || !it->parent)
        return 0;
    return (uint64_t)(uintptr_t)loom__u64map_get(&it->parent->doc->any_hints,
                                                 (uint64_t)(uintptr_t)it);
}

/* Sets it's hint (0: none); without memory for it, it has none. */
static void any_set_hint(loom_doc *d, loom__item *it, uint64_t hint)
{
    it->flags &= (uint8_t)~LOOM__F_HINT;
    if (hint && sizeof(void *) >= sizeof(hint) &&
        loom__u64map_put(&d->any_hints, (uint64_t)(uintptr_t)it,
                         (void *)(uintptr_t)hint) == LOOM_OK)
        it->flags |= LOOM__F_HINT;
}

/* Byte offset after `n` Any values of an Any item's content; from its
 * merge hint when that lies at or before value n. */
static size_t any_offset(const loom__item *it, uint64_t n)
{
    const uint8_t *p = it->c.any.p;
    size_t bytes = it->c.any.bytes;
    uint64_t i = 0;
    size_t start = 0;
    uint64_t hint = any_hint(it);
    uint64_t hn = hint >> 32;
    size_t hoff = (size_t)(hint & 0xffffffffu);
    if (hn && hn <= n && hoff <= bytes) {
        i = hn;
        start = hoff;
    }
    loom__reader r;
    loom__reader_init(&r, p + start, bytes - start);
    for (; i < n; i++) {
        if (loom__any_skip(&r, 0))
            break;
    }
    return start + r.pos;
}

int loom__content_split(loom_doc *d,
                        loom__item *it,
                        uint64_t diff,
                        loom__item *right)
{
    const loom_allocator *a = d->a;
    switch (it->ref) {
    case LOOM__REF_STRING: {
        bool mid;
        const char *s = it->c.str.p;
        size_t bytes = it->c.str.bytes;
        size_t off = (size_t)diff;
        if (bytes == it->len) /* as many bytes as UTF-16 units: ASCII */
            mid = false;
        else
            off = loom__utf8_offset16_of(s, bytes, it->len, diff, &mid);
        /* A cut inside a surrogate pair turns both halves into U+FFFD. */
        static const char repl[3] = {(char)0xef, (char)0xbf, (char)0xbd};
        size_t rstart = mid ? off + 4 : off;
        size_t rlen = bytes - rstart + (mid ? 3 : 0);
        char *rp = loom__str_bytes_alloc(d, rlen + 1);
        if (!rp)
            return LOOM_ENOMEM;
        size_t k = 0;
        if (mid) {
            memcpy(rp, repl, 3);
            k = 3;
        }
        memcpy(rp + k, s + rstart, bytes - rstart);
        rp[rlen] = 0;
        right->c.str.p = rp;
        right->c.str.bytes = (uint32_t)rlen; /* a part of it */
        right->c.str.cap = (uint32_t)rlen + 1;
        if (mid) {
            /* left keeps [0, off) + U+FFFD; off + 3 <= off + 4 fits in place */
            memcpy(it->c.str.p + off, repl, 3);
            it->c.str.bytes = (uint32_t)off + 3;
        } else {
            it->c.str.bytes = (uint32_t)off;
        }
        it->c.str.p[it->c.str.bytes] = 0;
        return LOOM_OK;
    }
    case LOOM__REF_ANY: {
        size_t off = any_offset(it, diff);
        size_t rb = it->c.any.bytes - off;
        uint8_t *rp = loom__pool_alloc(&d->pool, rb ? rb : 1);
        if (!rp)
            return LOOM_ENOMEM;
        memcpy(rp, it->c.any.p + off, rb);
        right->c.any.p = rp;
        right->c.any.bytes = (uint32_t)rb;
        right->c.any.cap = rb ? (uint32_t)rb : 1;
        it->c.any.bytes = (uint32_t)off;
        /* the left part keeps values [0, diff): a hint past them is gone */
        if ((any_hint(it) >> 32) > diff)
            it->flags &= (uint8_t)~LOOM__F_HINT;
        return LOOM_OK;
    }
    case LOOM__REF_JSON: {
        uint64_t rn = it->len - diff;
        loom_any **rv = loom__malloc(a, rn * sizeof(*rv));
        if (!rv)
            return LOOM_ENOMEM;
        memcpy(rv, it->c.json.v + diff, rn * sizeof(*rv));
        right->c.json.v = rv;
        right->c.json.cap = rn;
        return LOOM_OK;
    }
    case LOOM__REF_DELETED:
    case LOOM__REF_GC:
        return LOOM_OK;
    default:
        return LOOM_EINVAL; /* length-1 contents never split */
    }
}

/* ---- integration --------------------------------------------------------- */

/* A small pointer set with O(1) clear, for the YATA conflict scan. */
typedef struct ptrset {
    const void **k;
    uint32_t *gen;
    size_t cap, count;
    uint32_t g;
    const loom_allocator *a;
} ptrset;

static uint64_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int ptrset_add(ptrset *s, const void *p)
{
    if ((s->count + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        const void **nk = loom__calloc(s->a, ncap * sizeof(*nk));
        uint32_t *ng = loom__calloc(s->a, ncap * sizeof(*ng));
        if (!nk || !ng) {
            loom__free(s->a, nk, ncap * sizeof(*nk));
            loom__free(s->a, ng, ncap * sizeof(*ng));
            return LOOM_ENOMEM;
        }
        size_t cnt = 0;
        for (size_t i = 0; i < s->cap; i++) {
            if (s->gen[i] != s->g)
                continue;
            size_t j = ptr_hash(s->k[i]) & (ncap - 1);
            while (ng[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = s->k[i];
            ng[j] = 1;
            cnt++;
        }
        loom__free(s->a, s->k, s->cap * sizeof(*s->k));
        loom__free(s->a, s->gen, s->cap * sizeof(*s->gen));
        s->k = nk;
        s->gen = ng;
        s->cap = ncap;
        s->count = cnt;
        s->g = 1;
    }
    size_t j = ptr_hash(p) & (s->cap - 1);
    while (s->gen[j] == s->g) {
        if (s->k[j] == p)
            return LOOM_OK;
        j = (j + 1) & (s->cap - 1);
    }
    s->k[j] = p;
    s->gen[j] = s->g;
    s->count++;
    return LOOM_OK;
}

static bool ptrset_has(const ptrset *s, const void *p)
{
    if (!s->cap || !p)
        return false;
    size_t j = ptr_hash(p) & (s->cap - 1);
    while (s->gen[j] == s->g) {
        if (s->k[j] == p)
            return true;
        j = (j + 1) & (s->cap - 1);
    }
    return false;
}

static void ptrset_clear(ptrset *s)
{
    /* Stale generations read as empty; a wrap would alias, so reset then. */
    if (s->g == UINT32_MAX) {
        memset(s->gen, 0, s->cap * sizeof(*s->gen));
        s->g = 0;
    }
    s->g++;
    s->count = 0;
}

static void ptrset_free(ptrset *s)
{
    loom__free(s->a, s->k, s->cap * sizeof(*s->k));
    loom__free(s->a, s->gen, s->cap * sizeof(*s->gen));
}

/* Equal origins (both none, or the same id), right origins. A field is
 * read only when set: the item may have been allocated without it. */
static bool origin_eq(const loom__item *a, const loom__item *b)
{
    if (a->has_origin != b->has_origin)
        return false;
    return !a->has_origin || loom__id_eq(a->origin, b->origin);
}

static bool right_origin_eq(const loom__item *a, const loom__item *b)
{
    if (a->has_right_origin != b->has_right_origin)
        return false;
    return !a->has_right_origin ||
           loom__id_eq(a->right_origin, b->right_origin);
}

/* First item of a key's chain, from its current item. */
static loom__item *chain_first(loom__item *o)
{
    while (o && o->left)
        o = o->left;
    return o;
}

static int content_integrate(loom_txn *t, loom__item *it)
{
    switch (it->ref) {
    case LOOM__REF_DELETED:
        it->flags |= LOOM__F_DELETED;
        return loom__txn_ds_add(t, it->id.client, it->id.clock, it->len);
    case LOOM__REF_FORMAT:
        it->parent->has_formatting = true;
        t->doc->format_items = true;
        return LOOM_OK;
    case LOOM__REF_TYPE:
        it->c.type->item = it;
        return LOOM_OK;
    default:
        return LOOM_OK;
    }
}

/* Frees an item that failed before it was linked anywhere. */
static int drop_unlinked(loom_doc *d, loom__item *it, int rc)
{
    it->parent = NULL;
    loom__item_free(d, it);
    return rc;
}

/* The YATA conflict scan: from o, the first item between it's left and
 * right, to it's right, finds where it goes; the result is it's new left.
 * Fails only for lack of memory (the ptrsets). */
static LOOM__NOINLINE int
resolve_left(loom_doc *d, loom__item *it, loom__item *o)
{
    loom__item *left = it->left;
    ptrset conflicting = {0}, before = {0};
    conflicting.a = before.a = d->a;
    conflicting.g = before.g = 1;
    int rc = LOOM_OK;
    while (o && o != it->right) {
        if ((rc = ptrset_add(&before, o)) || (rc = ptrset_add(&conflicting, o)))
            break;
        if (origin_eq(it, o)) {
            if (o->id.client < it->id.client) {
                left = o;
                ptrset_clear(&conflicting);
            } else if (right_origin_eq(it, o)) {
                break;
            }
        } else if (o->has_origin &&
                   ptrset_has(&before, loom__find(d, o->origin))) {
            if (!ptrset_has(&conflicting, loom__find(d, o->origin))) {
                left = o;
                ptrset_clear(&conflicting);
            }
        } else {
            break;
        }
        o = o->right;
    }
    ptrset_free(&conflicting);
    ptrset_free(&before);
    if (!rc)
        it->left = left;
    return rc;
}

/* loom__item_integrate, every case. */
static LOOM__NOINLINE int integrate_general(loom_txn *t, loom__item *it)
{
    loom_doc *d = t->doc;
    loom_type *parent = it->parent;
    int rc;
    /* Everything that can fail for lack of memory happens before the item is
     * linked, so a failure leaves the document unchanged and the item freed;
     * afterwards, the item belongs to the document. */
    loom__client *own = d->last_client;
    if ((!own || own->client != it->id.client) &&
        (rc = loom__client_get_or_add(d, it->id.client, &own)))
        return drop_unlinked(d, it, rc);
    if ((rc = loom__cs_reserve(d->a, own)) || (rc = loom__txn_touch(t, own)))
        return drop_unlinked(d, it, rc);
    size_t ei = 0; /* the key's entry in parent->map */
    bool key_new = false;
    loom__item *first = NULL; /* a key's first item (its chain's start) */
    if (it->parent_sub) {
        /* parent_sub is parent's copy of the key (loom__type_key) */
        ei = (size_t)(loom__strmap_key_entry(&parent->map, it->parent_sub) -
                      parent->map.e);
        key_new = parent->key_new && parent->key_hint == ei;
        /* (walked only without a left: a key's chain grows by a value per
         * set) */
        if (!it->left)
            first = chain_first(parent->map.e[ei].val);
    }
    if ((!it->left && (!it->right || it->right->left)) ||
        (it->left && it->left->right != it->right)) {
        loom__item *o;
        if (it->left)
            o = it->left->right;
        else if (it->parent_sub)
            o = first;
        else
            o = parent->start;
        /* nothing between left and right (a new map key, the end of a
         * key's chain): no conflict to resolve */
        if (o != it->right && (rc = resolve_left(d, it, o)))
            return drop_unlinked(d, it, rc);
    }
    /* A map value that will end its key's chain deletes the one before it
     * (Yjs does that after linking; nothing between depends on it). Done
     * first, a failure to record the delete leaves the document as it
     * was. */
    if (it->parent_sub && it->left && !it->left->right &&
        (rc = loom__item_delete(t, it->left)))
        return drop_unlinked(d, it, rc);
    if (it->left) {
        it->right = it->left->right;
        it->left->right = it;
    } else if (it->parent_sub) {
        it->right = first;
    } else {
        it->right = parent->start;
        parent->start = it;
    }
    /* Into the store at once: from here on the document owns the item
     * (capacity was reserved and the client touched above). */
    loom__cs_push_inline(own, it);
    if (key_new)
        parent->key_new = false; /* the entry has an item now */
    if (it->right) {
        it->right->left = it;
    } else if (it->parent_sub) {
        parent->map.e[ei].val = it; /* its left was deleted above */
    }
    if (!it->parent_sub) {
        if (loom__item_countable(it) && !loom__item_deleted(it))
            parent->length += it->len;
        if (parent->nmk) /* (a loaded text has no markers yet) */
            loom__markers_changed(t, parent, it, false);
    }
    rc = content_integrate(t, it);
    if (rc)
        return rc;
    rc = key_new ? loom__txn_add_new_key(t, parent, it->parent_sub,
                                         it->parent_sub_len)
                 : loom__txn_add_changed(t, parent, it->parent_sub,
                                         it->parent_sub_len);
    if (rc)
        return rc;
    if ((parent->item && loom__item_deleted(parent->item)) ||
        (it->parent_sub && it->right))
        return loom__item_delete(t, it);
    return LOOM_OK;
}

/* Most integrations (every struct of a loaded text) are of a list item
 * whose left is still next to its right, so there is no conflict to
 * resolve, into a client that has room in its store and was touched by the
 * transaction already, in a parent with no markers, nothing to record and
 * no deleted item: that is done here without a call that has to keep
 * anything (the Deleted content's delete set entry is the last thing to
 * do), the rest in integrate_general. */
int loom__item_integrate(loom_txn *t, loom__item *it)
{
    /* (the client test first: a local transaction's first item, as every
     * keystroke is, goes to the general case for its touch) */
    const loom__client *own = t->doc->last_client;
    if (!own || own->txn_seq != t->seq)
        return integrate_general(t, it);
    loom__item *l = it->left;
    loom_type *parent = it->parent;
    if (!l || l->right != it->right || it->parent_sub ||
        own->client != it->id.client || own->n + own->hole >= own->cap ||
        parent->nmk || (parent->item && loom__item_deleted(parent->item)) ||
        !loom__txn_records_nothing(t, parent) || it->ref == LOOM__REF_FORMAT ||
        it->ref == LOOM__REF_TYPE)
        return integrate_general(t, it);
    l->right = it; /* it->right is l's right already */
    if (it->right)
        it->right->left = it;
    loom__cs_push_inline(t->doc->last_client, it);
    if (it->ref == LOOM__REF_DELETED) {
        it->flags |= LOOM__F_DELETED;
        return loom__txn_ds_add(t, it->id.client, it->id.clock, it->len);
    }
    if (loom__item_countable(it) && !loom__item_deleted(it))
        parent->length += it->len;
    return LOOM_OK;
}

/* ---- deletion ------------------------------------------------------------ */

/* The non-recursive part of Item.delete. */
static int mark_deleted(loom_txn *t, loom__item *it)
{
    /* the delete set first: when it cannot grow, nothing has changed */
    int rc = loom__txn_ds_add(t, it->id.client, it->id.clock, it->len);
    if (rc)
        return rc;
    loom_type *parent = it->parent;
    if (loom__item_countable(it) && !it->parent_sub)
        parent->length -= it->len;
    it->flags |= LOOM__F_DELETED;
    if (!it->parent_sub)
        loom__markers_changed(t, parent, it, true);
    t->del_item = it;
    t->del_frees = t->doc->item_frees;
    return loom__txn_add_changed(t, parent, it->parent_sub, it->parent_sub_len);
}

typedef struct type_stack {
    loom_type **v;
    size_t n, cap;
} type_stack;

static void txn_unchange(loom_txn *t, loom_type *type)
{
    if (type->txn_seq != t->seq)
        return;
    loom__changed *ch = &t->changed[type->changed_idx];
    ch->seq = false;
    ch->nkeys = ch->kset_n = 0;
    loom__free(t->doc->a, ch->kset, ch->kscap * sizeof(*ch->kset));
    ch->kset = NULL;
    ch->kscap = 0;
    ch->type = NULL; /* an entry without a type is skipped by event dispatch */
    type->txn_seq = 0;
}

/* One level of the (emulated) recursion of ContentType.delete: a type and
 * where its walk over children stands. */
typedef struct del_frame {
    loom_type *type;
    loom__item *next; /* next sequence child, while in the sequence */
    size_t map_i;     /* next map entry, once the sequence is done */
    bool in_map;
} del_frame;

/*
 * Item.delete. Deleting a type deletes its children, depth first and in
 * order, exactly as the recursion in Yjs does: the order decides which
 * split items are queued for merging (and so the bytes after cleanup) and
 * the order of events. The recursion is kept on an explicit stack so that
 * nesting depth cannot exhaust the C stack.
 */
int loom__item_delete(loom_txn *t, loom__item *it)
{
    if (loom__item_deleted(it))
        return LOOM_OK;
    int rc = mark_deleted(t, it);
    if (rc || it->ref != LOOM__REF_TYPE)
        return rc;
    const loom_allocator *a = t->doc->a;
    del_frame *st = NULL;
    size_t n = 0, cap = 0;
    if (loom__vec_reserve(a, (void **)&st, &cap, 1, sizeof(*st)))
        return LOOM_ENOMEM;
    st[n++] = (del_frame){it->c.type, it->c.type->start, 0, false};
    while (n && !rc) {
        del_frame *f = &st[n - 1];
        loom__item *c = NULL;
        if (!f->in_map) {
            if (f->next) {
                c = f->next;
                f->next = c->right;
            } else {
                f->in_map = true;
            }
        }
        if (!c && f->in_map) {
            while (f->map_i < f->type->map.n && !c)
                c = f->type->map.e[f->map_i++].val;
            if (!c) {
                /* the type's own earlier changes no longer matter */
                txn_unchange(t, f->type);
                n--;
                continue;
            }
        }
        if (!loom__item_deleted(c)) {
            if ((rc = mark_deleted(t, c)))
                break;
            if (c->ref == LOOM__REF_TYPE) {
                if (loom__vec_reserve(a, (void **)&st, &cap, n + 1,
                                      sizeof(*st))) {
                    rc = LOOM_ENOMEM;
                    break;
                }
                loom_type *ct = c->c.type;
                st[n++] = (del_frame){ct, ct->start, 0, false};
            }
        } else if (c->id.clock < loom__txn_before(t, c->id.client)) {
            rc = loom__txn_add_merge(t, c->id);
        }
    }
    loom__free(a, st, cap * sizeof(*st));
    return rc;
}

/* ---- garbage collection ---------------------------------------------- */

/* Turns an item into a GC struct in place (same id and length). */
static void item_to_gc(loom_doc *d, loom__item *it)
{
    /* A hostile update can leave a map's current entry in another type's
     * list; that map must not keep pointing at what becomes a GC struct
     * (GC structs merge, and merged structs are freed). */
    if (it->parent && it->parent_sub) {
        loom__strmap_entry *e =
            loom__strmap_key_entry(&it->parent->map, it->parent_sub);
        if (e->val == it)
            e->val = NULL;
    }
    loom__content_free(d, it);
    if (it->parent)
        loom__markers_forget(it->parent, it);
    it->parent_sub = NULL;
    it->parent_sub_len = 0;
    it->ref = LOOM__REF_GC;
    it->flags = LOOM__F_DELETED | (it->flags & LOOM__F_BLOCK);
    it->parent = NULL;
    it->left = it->right = NULL;
    it->has_origin = it->has_right_origin = false;
}

/* Collects a type's subtree: every child item becomes a GC struct. */
static void type_gc(loom_doc *d, loom_type *root)
{
    type_stack st = {0};
    if (loom__vec_reserve(d->a, (void **)&st.v, &st.cap, 1, sizeof(*st.v))) {
        d->oom =
            LOOM_ENOMEM; /* leaving content in place is safe, only wasteful */
        return;
    }
    st.v[st.n++] = root;
    while (st.n) {
        loom_type *type = st.v[--st.n];
        loom__item *c = type->start;
        while (c) {
            loom__item *next = c->right;
            if (c->ref == LOOM__REF_TYPE &&
                !loom__vec_reserve(d->a, (void **)&st.v, &st.cap, st.n + 1,
                                   sizeof(*st.v)))
                st.v[st.n++] = c->c.type;
            item_to_gc(d, c);
            c = next;
        }
        type->start = NULL;
        for (size_t i = 0; i < type->map.n; i++) {
            loom__item *k = type->map.e[i].val;
            while (k) {
                loom__item *prev = k->left;
                if (k->ref == LOOM__REF_TYPE &&
                    !loom__vec_reserve(d->a, (void **)&st.v, &st.cap, st.n + 1,
                                       sizeof(*st.v)))
                    st.v[st.n++] = k->c.type;
                item_to_gc(d, k);
                k = prev;
            }
        }
        /* The keys stay (items point at them, see loom__item.parent_sub);
         * the entries lose their items. */
        for (size_t i = 0; i < type->map.n; i++)
            type->map.e[i].val = NULL;
        type->freed_content = true;
        type->length = 0;
        loom__markers_clear(type);
    }
    loom__free(d->a, st.v, st.cap * sizeof(*st.v));
}

void loom__item_gc(loom_doc *d, loom__item *it, bool parent_gcd)
{
    if (it->ref == LOOM__REF_TYPE)
        type_gc(d, it->c.type);
    if (parent_gcd) {
        item_to_gc(d, it);
    } else {
        loom__content_free(d, it);
        it->ref = LOOM__REF_DELETED;
    }
}

/* ---- merging ----------------------------------------------------------- */

int loom__str_append(loom_doc *d, loom__item *l, const char *s, size_t bytes)
{
    size_t need = l->c.str.bytes + bytes + 1;
    if (!loom__bytes_fit(need - 1))
        return LOOM_ELIMIT;
    if (need > l->c.str.cap) {
        size_t ncap = (size_t)l->c.str.cap * 2;
        if (ncap < need || !loom__bytes_fit(ncap))
            ncap = need;
        char *np = loom__pool_realloc(&d->pool, l->c.str.p, l->c.str.cap, ncap);
        if (!np)
            return LOOM_ENOMEM;
        l->c.str.p = np;
        l->c.str.cap = (uint32_t)ncap;
    }
    if (bytes == 1)
        l->c.str.p[l->c.str.bytes] = s[0]; /* a keystroke: no call */
    else
        memcpy(l->c.str.p + l->c.str.bytes, s, bytes);
    l->c.str.bytes = (uint32_t)(need - 1);
    l->c.str.p[l->c.str.bytes] = 0;
    return LOOM_OK;
}

static int any_append(loom_doc *d, loom__item *l, const loom__item *r)
{
    size_t need = (size_t)l->c.any.bytes + r->c.any.bytes;
    if (!loom__bytes_fit(need))
        return LOOM_ELIMIT;
    if (need > l->c.any.cap) {
        size_t ncap = (size_t)l->c.any.cap * 2;
        if (ncap < need || !loom__bytes_fit(ncap))
            ncap = need;
        uint8_t *np;
        if (l->flags & LOOM__F_FRONT_VAL) {
            /* out of the item's block, whose front goes back to the pool */
            if (!(np = loom__pool_alloc(&d->pool, ncap)))
                return LOOM_ENOMEM;
            memcpy(np, l->c.any.p, l->c.any.bytes);
            front_release(d, l);
            l->flags &= (uint8_t)~LOOM__F_FRONT_VAL;
        } else if (!(np = loom__pool_realloc(&d->pool, l->c.any.p, l->c.any.cap,
                                             ncap))) {
            return LOOM_ENOMEM;
        }
        l->c.any.p = np;
        l->c.any.cap = (uint32_t)ncap;
    }
    memcpy(l->c.any.p + l->c.any.bytes, r->c.any.p, r->c.any.bytes);
    /* l->len is still the count before the merge */
    any_set_hint(d, l,
                 l->len <= 0xffffffffu ? l->len << 32 | (uint64_t)l->c.any.bytes
                                       : 0);
    l->c.any.bytes = (uint32_t)need;
    return LOOM_OK;
}

static int json_append(loom_doc *d, loom__item *l, loom__item *r)
{
    size_t need = (size_t)(l->len + r->len);
    if (need > l->c.json.cap) {
        size_t ncap = l->c.json.cap * 2 > need ? l->c.json.cap * 2 : need;
        loom_any **nv = loom__realloc(
            d->a, l->c.json.v, l->c.json.cap * sizeof(*nv), ncap * sizeof(*nv));
        if (!nv)
            return LOOM_ENOMEM;
        l->c.json.v = nv;
        l->c.json.cap = ncap;
    }
    memcpy(l->c.json.v + l->len, r->c.json.v,
           (size_t)r->len * sizeof(loom_any *));
    /* the values moved to the left item; the right one must not free them */
    loom__free(d->a, r->c.json.v, r->c.json.cap * sizeof(loom_any *));
    r->c.json.v = NULL;
    r->c.json.cap = 0;
    r->len = 0;
    return LOOM_OK;
}

bool loom__item_try_merge(loom_doc *d, loom__item *left, loom__item *right)
{
    if (loom__item_deleted(left) != loom__item_deleted(right))
        return false;
    bool lgc = loom__item_is_gc(left), rgc = loom__item_is_gc(right);
    if (lgc || rgc) {
        if (!(lgc && rgc))
            return false;
        left->len += right->len;
        loom__item_release(d, right);
        return true;
    }
    if (!right->has_origin ||
        !loom__id_eq(right->origin, loom__item_last_id(left)))
        return false;
    if (left->right != right)
        return false;
    if (!right_origin_eq(left, right))
        return false;
    if (left->id.client != right->id.client ||
        left->id.clock + left->len != right->id.clock)
        return false;
    if (left->ref != right->ref)
        return false;
    /* Neighbours of a consistent document share parent and key. A hostile
     * update can link items of different parents (an item integrated at an
     * offset keeps the parent its origin gave it); Yjs would merge them and
     * keep map entries pointing at items of another type. We do not merge
     * those, so no map entry can outlive the item it names. */
    if (left->parent != right->parent ||
        (left->parent_sub == NULL) != (right->parent_sub == NULL) ||
        (left->parent_sub && (left->parent_sub_len != right->parent_sub_len ||
                              memcmp(left->parent_sub, right->parent_sub,
                                     left->parent_sub_len) != 0)))
        return false;
    int rc;
    switch (left->ref) {
    case LOOM__REF_STRING:
        rc = loom__str_append(d, left, right->c.str.p, right->c.str.bytes);
        break;
    case LOOM__REF_ANY:
        rc = any_append(d, left, right);
        break;
    case LOOM__REF_JSON: {
        uint64_t rl = right->len;
        rc = json_append(d, left, right);
        right->len = rl;
        break;
    }
    case LOOM__REF_DELETED:
        rc = LOOM_OK;
        break;
    default:
        return false;
    }
    if (rc) {
        /* content too large for one item (LOOM_ELIMIT, refused before
         * anything changed) stays in two; only a failed allocation is an
         * error */
        if (rc != LOOM_ELIMIT)
            d->oom = rc;
        return false;
    }
    loom_type *p = left->parent;
    if (p)
        loom__markers_merged(p, right, left);
    if (right->flags & LOOM__F_KEEP)
        left->flags |= LOOM__F_KEEP;
    left->right = right->right;
    if (left->right)
        left->right->left = left;
    left->len += right->len;
    /* right's own parent, as Yjs does: hostile updates can link items of
     * different parents next to each other (an item integrated at an offset
     * keeps the parent its origin gave it). */
    loom_type *rp = right->parent;
    if (right->parent_sub && rp) {
        loom__strmap_entry *e =
            loom__strmap_key_entry(&rp->map, right->parent_sub);
        if (e->val == right)
            e->val = left;
    }
    if (left->ref == LOOM__REF_JSON)
        right->len = 0;
    if (rp && rp != p)
        loom__markers_forget(rp, right);
    right->parent = NULL;
    loom__item_free(d, right);
    return true;
}

/* ---- encoding ------------------------------------------------------------ */

static int write_content(loom_buf *b, const loom__item *it, uint64_t offset)
{
    int rc = LOOM_OK;
    switch (it->ref) {
    case LOOM__REF_DELETED:
        return loom__write_varuint(b, it->len - offset);
    case LOOM__REF_STRING: {
        if (!offset)
            return loom__write_varstring(b, it->c.str.p, it->c.str.bytes);
        bool mid = false;
        size_t off = (size_t)offset;
        if (it->c.str.bytes != it->len) /* else ASCII: bytes are units */
            off = loom__utf8_offset16_of(it->c.str.p, it->c.str.bytes, it->len,
                                         offset, &mid);
        if (!mid)
            return loom__write_varstring(b, it->c.str.p + off,
                                         it->c.str.bytes - off);
        /* the tail starts with a lone low surrogate: TextEncoder writes U+FFFD */
        size_t rest = it->c.str.bytes - off - 4;
        if ((rc = loom__write_varuint(b, rest + 3)))
            return rc;
        if ((rc = loom__buf_append(b, "\xef\xbf\xbd", 3)))
            return rc;
        return loom__buf_append(b, it->c.str.p + off + 4, rest);
    }
    case LOOM__REF_ANY: {
        size_t off = offset ? any_offset(it, offset) : 0;
        if ((rc = loom__write_varuint(b, it->len - offset)))
            return rc;
        return loom__buf_append(b, it->c.any.p + off, it->c.any.bytes - off);
    }
    case LOOM__REF_JSON: {
        if ((rc = loom__write_varuint(b, it->len - offset)))
            return rc;
        for (uint64_t i = offset; i < it->len && !rc; i++) {
            loom_buf tmp = {0};
            loom__buf_init(&tmp, b->alloc);
            rc = loom__json_write(&tmp, it->c.json.v[i]);
            if (!rc)
                rc = loom__write_varstring(b, (const char *)tmp.data, tmp.len);
            loom_buf_free(&tmp);
        }
        return rc;
    }
    case LOOM__REF_BINARY:
        return loom__write_varbytes(b, it->c.bin.p, it->c.bin.n);
    case LOOM__REF_EMBED:
    case LOOM__REF_FORMAT: {
        if (it->ref == LOOM__REF_FORMAT &&
            (rc = loom__write_varstring(b, it->c.fmt.key, loom__fmt_klen(it))))
            return rc;
        loom_buf tmp = {0};
        loom__buf_init(&tmp, b->alloc);
        rc = loom__json_write(&tmp, it->ref == LOOM__REF_EMBED ? it->c.embed
                                                               : it->c.fmt.val);
        if (!rc)
            rc = loom__write_varstring(b, (const char *)tmp.data, tmp.len);
        loom_buf_free(&tmp);
        return rc;
    }
    case LOOM__REF_TYPE: {
        const loom_type *ty = it->c.type;
        if ((rc = loom__write_varuint(b, (uint64_t)ty->kind)))
            return rc;
        if (ty->kind == LOOM_TYPE_XML_ELEMENT || ty->kind == LOOM_TYPE_XML_HOOK)
            rc = loom__write_varstring(b, ty->name, ty->name_len);
        return rc;
    }
    case LOOM__REF_DOC:
        if ((rc = loom__write_varstring(b, it->c.doc.guid,
                                        loom__keystr_len(it->c.doc.guid))))
            return rc;
        return loom__any_write(b, it->c.doc.opts);
    default:
        return LOOM_EINVAL;
    }
}

/* Appends a varString at *p (room was reserved). */
static void put_varstring(uint8_t **p, const char *s, size_t len)
{
    *p = loom__put_varuint(*p, len);
    if (len)
        memcpy(*p, s, len);
    *p += len;
}

/* A map entry under a root map (an Any item naming its root parent, the
 * bulk of encoding a map) in one reserved stretch, header and content:
 * it was a call per field. Other items take the general path, so that
 * write_content keeps its single call site. */
static int write_root_any(loom_buf *b, const loom__item *it, uint8_t info)
{
    const loom_type *p = it->parent;
    size_t klen = it->parent_sub ? it->parent_sub_len : 0;
    /* lengths of objects in memory: their sum cannot overflow */
    int rc = loom__buf_reserve(b, 1 + 1 + 10 + p->root_name_len + 10 + klen +
                                      10 + it->c.any.bytes);
    if (rc)
        return rc;
    uint8_t *q = b->data + b->len;
    *q++ = info;
    *q++ = 1; /* parentInfo: a root name */
    put_varstring(&q, p->root_name, p->root_name_len);
    if (it->parent_sub)
        put_varstring(&q, it->parent_sub, it->parent_sub_len);
    q = loom__put_varuint(q, it->len);
    memcpy(q, it->c.any.p, it->c.any.bytes);
    b->len = (size_t)(q - b->data) + it->c.any.bytes;
    return LOOM_OK;
}

int loom__item_write(loom_buf *b, const loom__item *it, uint64_t offset)
{
    int rc;
    if (loom__item_is_gc(it)) {
        if ((rc = loom__write_u8(b, 0)))
            return rc;
        return loom__write_varuint(b, it->len - offset);
    }
    bool has_origin = offset > 0 || it->has_origin;
    loom__id origin = {0, 0};
    if (offset > 0) {
        origin.client = it->id.client;
        origin.clock = it->id.clock + offset - 1;
    } else if (it->has_origin) {
        origin = it->origin;
    }
    uint8_t info = (uint8_t)((it->ref & 0x1f) | (has_origin ? 0x80 : 0) |
                             (it->has_right_origin ? 0x40 : 0) |
                             (it->parent_sub ? 0x20 : 0));
    if (!has_origin && !it->has_right_origin && !it->parent->item &&
        it->ref == LOOM__REF_ANY)
        return write_root_any(b, it, info);
    if ((rc = loom__write_u8(b, info)))
        return rc;
    if (has_origin) {
        if ((rc = loom__write_varuint(b, origin.client)) ||
            (rc = loom__write_varuint(b, origin.clock)))
            return rc;
    }
    if (it->has_right_origin) {
        if ((rc = loom__write_varuint(b, it->right_origin.client)) ||
            (rc = loom__write_varuint(b, it->right_origin.clock)))
            return rc;
    }
    if (!has_origin && !it->has_right_origin) {
        const loom_type *p = it->parent;
        if (!p->item) {
            if ((rc = loom__write_varuint(b, 1)) ||
                (rc = loom__write_varstring(b, p->root_name, p->root_name_len)))
                return rc;
        } else {
            if ((rc = loom__write_varuint(b, 0)) ||
                (rc = loom__write_varuint(b, p->item->id.client)) ||
                (rc = loom__write_varuint(b, p->item->id.clock)))
                return rc;
        }
        if (it->parent_sub &&
            (rc = loom__write_varstring(b, it->parent_sub, it->parent_sub_len)))
            return rc;
    }
    return write_content(b, it, offset);
}

/* ---- reading values ------------------------------------------------------ */

static int
subdoc_any(const loom__item *it, const loom_allocator *a, loom_any **out)
{
    return loom_any_new_subdoc(a, it->c.doc.guid,
                               loom__keystr_len(it->c.doc.guid), out);
}

int loom__item_value(const loom__item *it,
                     const loom_allocator *a,
                     loom_any **value,
                     loom_type **type)
{
    switch (it->ref) {
    case LOOM__REF_ANY: {
        loom__reader r;
        size_t off = any_offset(it, it->len - 1);
        loom__reader_init(&r, it->c.any.p + off, it->c.any.bytes - off);
        return loom__any_read(&r, a, 0, value);
    }
    case LOOM__REF_JSON:
        return loom_any_clone(it->c.json.v[it->len - 1], a, value);
    case LOOM__REF_BINARY:
        return loom_any_new_binary(a, it->c.bin.p, it->c.bin.n, value);
    case LOOM__REF_EMBED:
        return loom_any_clone(it->c.embed, a, value);
    case LOOM__REF_STRING: {
        /* a string in a map slot is not written by Yjs; read its last unit */
        return loom_any_new_string(a, it->c.str.p, it->c.str.bytes, value);
    }
    case LOOM__REF_TYPE:
        *type = it->c.type;
        return LOOM_OK;
    case LOOM__REF_DOC:
        return subdoc_any(it, a, value);
    default:
        return LOOM_ENOTFOUND;
    }
}

int loom__item_values(const loom__item *it, loom_any *array, bool types_as_json)
{
    const loom_allocator *a = array->a;
    loom_any *v = NULL;
    int rc = LOOM_OK;
    switch (it->ref) {
    case LOOM__REF_ANY: {
        loom__reader r;
        loom__reader_init(&r, it->c.any.p, it->c.any.bytes);
        for (uint64_t i = 0; i < it->len && !rc; i++) {
            rc = loom__any_read(&r, a, 0, &v);
            if (!rc && (rc = loom_any_array_push(array, v)))
                loom_any_free(v);
        }
        return rc;
    }
    case LOOM__REF_JSON:
        for (uint64_t i = 0; i < it->len && !rc; i++) {
            rc = loom_any_clone(it->c.json.v[i], a, &v);
            if (!rc && (rc = loom_any_array_push(array, v)))
                loom_any_free(v);
        }
        return rc;
    case LOOM__REF_STRING:
        rc = loom_any_new_string(a, it->c.str.p, it->c.str.bytes, &v);
        break;
    case LOOM__REF_BINARY:
        rc = loom_any_new_binary(a, it->c.bin.p, it->c.bin.n, &v);
        break;
    case LOOM__REF_EMBED:
        rc = loom_any_clone(it->c.embed, a, &v);
        break;
    case LOOM__REF_TYPE:
        rc = types_as_json ? loom__type_to_any(it->c.type, a, &v)
                           : loom_any_new_type_ref(a, it->c.type, &v);
        break;
    case LOOM__REF_DOC:
        rc = subdoc_any(it, a, &v);
        break;
    default:
        return LOOM_OK;
    }
    if (!rc && (rc = loom_any_array_push(array, v)))
        loom_any_free(v);
    return rc;
}
