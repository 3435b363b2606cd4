/*
 * types.c: shared types in general and the Map, Array and XML operations:
 * creating types and roots, local item creation, position lookup in a
 * sequence (with a cached position for sequential access), toJSON, and the
 * XML string forms.
 */
#include <stdlib.h>
#include <string.h>

#include "crdt/crdt.h"

/* Nesting limit for recursive readers of the type tree (toJSON, XML). */
#define LOOM__MAX_TYPE_DEPTH 512

int loom__type_new(
    loom_doc *d, int kind, const char *name, size_t nlen, loom_type **out)
{
    if (kind < LOOM_TYPE_UNDEFINED || kind > LOOM_TYPE_XML_TEXT)
        return LOOM_EINVAL;
    loom_type *t = loom__calloc(d->a, sizeof(*t));
    if (!t)
        return LOOM_ENOMEM;
    t->doc = d;
    t->kind = kind;
    loom__strmap_init(&t->map, d->a);
    if (name) {
        t->name = loom__strndup(d->a, name, nlen);
        if (!t->name) {
            loom__free(d->a, t, sizeof(*t));
            return LOOM_ENOMEM;
        }
        t->name_len = nlen;
    }
    t->next_all = d->types_all;
    d->types_all = t;
    *out = t;
    return LOOM_OK;
}

loom_type *loom__type_root(const loom_doc *d, const char *name, size_t len)
{
    loom__strmap_entry *e = loom__strmap_find(&d->roots, name, len);
    return e ? e->val : NULL;
}

int loom__type_root_get_or_add(loom_doc *d,
                               const char *name,
                               size_t len,
                               loom_type **out)
{
    loom__strmap_entry *e;
    int rc = loom__strmap_upsert(&d->roots, name, len, &e);
    if (rc)
        return rc;
    if (!e->val) {
        loom_type *t;
        if ((rc = loom__type_new(d, LOOM_TYPE_UNDEFINED, NULL, 0, &t)))
            return rc;
        t->root_name = loom__strndup(d->a, name, len);
        if (!t->root_name)
            return LOOM_ENOMEM;
        t->root_name_len = len;
        e->val = t;
    }
    *out = e->val;
    return LOOM_OK;
}

int loom__type_key_lookup(loom_type *type,
                          const char *key,
                          size_t klen,
                          const char **out)
{
    return loom__type_key_hashed(type, key, klen, loom__hash_bytes(key, klen),
                                 out);
}

static LOOM__INLINE int type_key_hashed(
    loom_type *type, const char *key, size_t klen, uint64_t h, const char **out)
{
    return loom__type_key_inline(type, key, klen, h, out);
}

int loom__type_key_hashed(
    loom_type *type, const char *key, size_t klen, uint64_t h, const char **out)
{
    return type_key_hashed(type, key, klen, h, out);
}

loom__item *
loom__type_map_item(const loom_type *type, const char *key, size_t klen)
{
    loom__strmap_entry *e = loom__strmap_find(&type->map, key, klen);
    return e ? e->val : NULL;
}

/* ---- generic accessors ------------------------------------------------- */

loom_type_kind loom_type_kind_of(const loom_type *t)
{
    return t ? (loom_type_kind)t->kind : LOOM_TYPE_UNDEFINED;
}
loom_doc *loom_type_doc(const loom_type *t)
{
    return t ? t->doc : NULL;
}
size_t loom_type_length(const loom_type *t)
{
    return t ? (size_t)t->length : 0;
}

const char *loom_type_name(const loom_type *t, size_t *len)
{
    if (!t || !t->name)
        return NULL;
    if (len)
        *len = t->name_len;
    return t->name;
}

int loom_type_deleted(const loom_type *t)
{
    for (; t; t = t->item ? t->item->parent : NULL) {
        if (t->item &&
            (loom__item_deleted(t->item) || loom__item_is_gc(t->item)))
            return 1;
        if (t->item && !t->item->parent)
            return 1;
    }
    return 0;
}

/* ---- local items --------------------------------------------------------- */

int loom__local_item(loom_txn *t,
                     loom_type *parent,
                     loom__item *left,
                     loom__item *right,
                     const char *key,
                     size_t klen,
                     loom__item *it)
{
    loom_doc *d = t->doc;
    it->id.client = d->client_id;
    it->id.clock = loom__state(d, d->client_id);
    if (left) {
        it->has_origin = true;
        it->origin = loom__item_last_id(left);
    }
    if (right) {
        it->has_right_origin = true;
        it->right_origin = right->id;
    }
    it->left = left;
    it->right = right;
    it->parent = parent;
    if (key) {
        int rc = loom__type_key(parent, key, klen, &it->parent_sub);
        if (rc) {
            it->parent = NULL;
            loom__item_free(d, it);
            return rc;
        }
        it->parent_sub_len = (uint32_t)klen; /* checked by type_key */
    }
    return loom__item_integrate(t, it);
}

int loom__insert_after(loom_txn *t,
                       loom_type *parent,
                       loom__item *left,
                       loom__item *right,
                       loom__item *it)
{
    return loom__local_item(t, parent, left, right, NULL, 0, it);
}

/* Can a type be written to? */
static int writable(const loom_type *t)
{
    if (!t)
        return LOOM_EINVAL;
    if (t->item && (loom__item_deleted(t->item) || !t->item->parent))
        return LOOM_ESTATE;
    return LOOM_OK;
}

/* ---- sequence positions ------------------------------------------------ */

int loom__seq_find(loom_txn *t,
                   loom_type *type,
                   uint64_t index,
                   loom__item **left,
                   loom__item **right)
{
    if (index == 0) {
        *left = NULL;
        *right = type->start;
        return LOOM_OK;
    }
    loom__item *n = type->start;
    uint64_t base = 0;
    t->mk_type = type; /* this operation keeps type's markers current */
    if (loom__markers_find(type, index, &n, &base))
        index -= base;
    for (; n; n = n->right) {
        if (!loom__item_deleted(n) && loom__item_countable(n)) {
            if (index <= n->len) {
                if (index < n->len) {
                    loom__item *r;
                    int rc = loom__item_split(t, n, index, &r);
                    if (rc)
                        return rc;
                }
                break;
            }
            index -= n->len;
            base += n->len;
        }
    }
    *left = n;
    *right = n ? n->right : NULL;
    if (n)
        loom__markers_note(type, n, base);
    return LOOM_OK;
}

/* ---- building content from values ------------------------------------- */

static bool json_kind(loom_any_kind k)
{
    return k == LOOM_ANY_NULL || k == LOOM_ANY_BOOL || k == LOOM_ANY_NUMBER ||
           k == LOOM_ANY_STRING || k == LOOM_ANY_ARRAY || k == LOOM_ANY_OBJECT;
}

/* A prepared content item (not yet integrated). */
static loom__item *new_item(loom_doc *d, uint8_t ref)
{
    loom__item *it = loom__item_alloc(d);
    if (it)
        it->ref = ref;
    return it;
}

static LOOM__NOINLINE int item_from_value_any(loom_doc *d,
                                              const loom_any *v,
                                              loom__item *it,
                                              loom__item **out);

/* The item holding value v. */
static LOOM__INLINE int
item_from_value(loom_doc *d, const loom_any *v, loom__item **out)
{
    /* the item first: it may come from where the pool's next block is */
    loom__item *it = new_item(d, LOOM__REF_ANY);
    if (!it)
        return LOOM_ENOMEM;
    /* A flat object (what maps mostly hold) is encoded where the pool
     * hands out its next block and taken at its size there. */
    size_t max = 0;
    uint8_t *w = loom__pool_peek(&d->pool, &max);
    size_t fn = w ? loom__any_put_flat(w, max, v) : 0;
    if (!fn)
        return item_from_value_any(d, v, it, out);
    it->c.any.p = loom__pool_commit(&d->pool, fn);
    it->c.any.bytes = (uint32_t)fn; /* at most LOOM__POOL_MAX */
    it->c.any.cap = (uint32_t)fn;
    it->len = 1;
    *out = it;
    return LOOM_OK;
}

/* item_from_value for the other values, into `it` (a new Any item, freed
 * on failure). */
static LOOM__NOINLINE int item_from_value_any(loom_doc *d,
                                              const loom_any *v,
                                              loom__item *it,
                                              loom__item **out)
{
    if (v->kind == LOOM_ANY_BINARY) {
        it->ref = LOOM__REF_BINARY;
        it->c.bin.p =
            loom__memdup(d->a, v->u.bin.p, v->u.bin.len ? v->u.bin.len : 1);
        if (!it->c.bin.p) {
            loom__item_release(d, it);
            return LOOM_ENOMEM;
        }
        it->c.bin.n = v->u.bin.len;
        it->len = 1;
        *out = it;
        return LOOM_OK;
    }
    /* Else encoded in the doc's scratch buffer, then copied at its exact size:
     * a growing buffer of its own left most of its capacity unused, for
     * the life of the item. */
    loom_buf *b = &d->scratch;
    b->alloc = d->a;
    b->len = 0;
    int rc = loom__any_write(b, v);
    size_t n = b->len;
    if (!rc && !loom__bytes_fit(n))
        rc = LOOM_ELIMIT;
    uint8_t *p = rc ? NULL : loom__any_bytes_alloc(d, n ? n : 1);
    if (p)
        memcpy(p, b->data, n);
    if (b->cap > 65536) /* one huge value does not stay */
        loom_buf_free(b);
    if (!p) {
        loom__item_release(d, it);
        return rc ? rc : LOOM_ENOMEM;
    }
    it->c.any.p = p;
    it->c.any.bytes = (uint32_t)n;
    it->c.any.cap = n ? (uint32_t)n : 1;
    it->len = 1;
    *out = it;
    return LOOM_OK;
}

/* Builds the items for an array insert: runs of JSON values in one Any item,
 * binary values in their own. Nothing is integrated, so a bad value changes
 * nothing. */
static int items_from_values(loom_doc *d,
                             const loom_any *const *values,
                             size_t n,
                             loom__item ***out,
                             size_t *nout)
{
    loom__item **v = loom__calloc(d->a, (n ? n : 1) * sizeof(*v));
    if (!v)
        return LOOM_ENOMEM;
    size_t k = 0;
    int rc = LOOM_OK;
    loom__item *run = NULL; /* its values are encoded in b until it ends */
    loom_buf b = {0};
    b.alloc = d->a;
    for (size_t i = 0; i < n && !rc; i++) {
        const loom_any *x = values[i];
        if (!x) {
            rc = LOOM_EINVAL;
            break;
        }
        if (json_kind((loom_any_kind)x->kind)) {
            if (!run) {
                if (!(run = new_item(d, LOOM__REF_ANY))) {
                    rc = LOOM_ENOMEM;
                    break;
                }
                v[k++] = run;
                b.len = 0;
            }
            rc = loom__any_write(&b, x);
            run->len++;
        } else if (x->kind == LOOM_ANY_BINARY) {
            if (run && (rc = loom__any_content_take(d, run, &b)))
                break;
            run = NULL;
            rc = item_from_value(d, x, &v[k]);
            if (!rc)
                k++;
        } else {
            rc = LOOM_EINVAL; /* undefined, bigint, subdoc refs, type refs */
        }
    }
    if (!rc && run)
        rc = loom__any_content_take(d, run, &b);
    loom_buf_free(&b);
    if (rc) {
        for (size_t i = 0; i < k; i++) {
            v[i]->parent = NULL;
            loom__item_free(d, v[i]);
        }
        loom__free(d->a, v, (n ? n : 1) * sizeof(*v));
        return rc;
    }
    *out = v;
    *nout = k;
    return LOOM_OK;
}

static int open_txn(loom_type *type, loom_txn **t)
{
    int rc = writable(type);
    if (rc)
        return rc;
    return loom__txn_begin(type->doc, NULL, true, t);
}

static int close_txn(loom_doc *d, int rc)
{
    if (d->txn)
        d->txn->mk_type = NULL;
    int rc2 = loom__txn_end(d);
    return rc ? rc : rc2;
}

/* Inserts prepared items after left, each after the previous. */
static int insert_items(loom_txn *t,
                        loom_type *type,
                        loom__item *left,
                        loom__item *right,
                        loom__item **items,
                        size_t n)
{
    int rc = LOOM_OK;
    size_t i = 0;
    for (; i < n && !rc; i++) {
        rc = loom__insert_after(t, type, left, right, items[i]);
        left = items[i];
    }
    for (; i < n; i++) {
        items[i]->parent = NULL;
        loom__item_free(t->doc, items[i]);
    }
    return rc;
}

/* ---- Map --------------------------------------------------------------- */

static bool has_map(const loom_type *t)
{
    return t->kind == LOOM_TYPE_MAP || t->kind == LOOM_TYPE_XML_HOOK ||
           t->kind == LOOM_TYPE_TEXT || t->kind == LOOM_TYPE_XML_TEXT ||
           t->kind == LOOM_TYPE_XML_ELEMENT || t->kind == LOOM_TYPE_UNDEFINED;
}

/*
 * A map set that is a transaction of its own while nobody observes the
 * document (no transaction open, no subscription) links its item as the
 * key's value and deletes and collects the value it overwrites with no
 * transaction object, as loom__item_integrate and the cleanup of that
 * transaction would. Not when that transaction could do more: a type
 * overwritten (its children are deleted too) or a collected value that
 * merges with its left (they are neighbours by clock too when one key is
 * set again and again). The new value never merges: it is not deleted,
 * the values before it are.
 */
static LOOM__INLINE bool alone_ok(const loom_doc *d, const loom__item *left)
{
    if (d->txn || d->nsubs || d->in_cleanup)
        return false;
    if (!left || loom__item_deleted(left))
        return true;
    const loom__item *l = left->left;
    return left->ref != LOOM__REF_TYPE && !loom__item_is_gc(left) &&
           !(l && l->right == left && l->id.client == left->id.client &&
             l->id.clock + l->len == left->id.clock);
}

/* The doc's own client with room for one more struct. */
static LOOM__INLINE int alone_client(loom_doc *d, loom__client **own)
{
    loom__client *c = d->last_client;
    int rc;
    if ((!c || c->client != d->client_id) &&
        (rc = loom__client_get_or_add(d, d->client_id, &c)))
        return rc;
    if ((rc = loom__cs_reserve(d->a, c)))
        return rc;
    *own = c;
    return LOOM_OK;
}

/* The next clock of own. */
static inline uint64_t alone_clock(const loom__client *own)
{
    if (!own->n)
        return 0;
    const loom__item *last = loom__cs_last(own);
    return last->id.clock + last->len;
}

/* Links it (complete, id and origin set) as the value of its key, whose
 * entry in map is ei, in own's structs (room reserved). */
static LOOM__INLINE int
alone_link(loom_doc *d, loom__client *own, size_t ei, loom__item *it)
{
    d->txn_seq++; /* as the transaction would have */
    loom__item *left = it->left;
    if (left) {
        left->right = it;
        if (!loom__item_deleted(left)) {
            left->flags |= LOOM__F_DELETED;
            if (d->gc && !(left->flags & LOOM__F_KEEP))
                loom__item_gc(d, left, false);
        }
    }
    loom__cs_push_inline(own, it);
    loom_type *map = it->parent;
    if (map->key_hint == ei)
        map->key_new = false; /* the entry has an item now */
    map->map.e[ei].val = it;
    int rc = d->oom;
    d->oom = 0;
    return rc;
}

/* The set of a prepared item (parent, parent_sub and left set) when
 * alone_ok: true with the result in *rc (on failure `it` is freed and the
 * document unchanged); false, changing nothing, when it must take a
 * transaction. */
static LOOM__INLINE bool map_set_alone(loom_doc *d, loom__item *it, int *rc)
{
    if ((it->ref != LOOM__REF_ANY && it->ref != LOOM__REF_BINARY) ||
        !alone_ok(d, it->left))
        return false;
    loom__client *own;
    if ((*rc = alone_client(d, &own))) {
        it->parent = NULL;
        loom__item_free(d, it);
        return true;
    }
    it->id.client = own->client;
    it->id.clock = alone_clock(own);
    if (it->left) {
        it->has_origin = true;
        it->origin = loom__item_last_id(it->left);
    }
    loom_type *map = it->parent;
    size_t ei = map->key_hint;
    if (map->map.e[ei].key != it->parent_sub)
        ei = (size_t)(loom__strmap_key_entry(&map->map, it->parent_sub) -
                      map->map.e);
    *rc = alone_link(d, own, ei, it);
    return true;
}

/* Sets key (of hash h, see loom__hash_bytes) to the prepared item. */
static LOOM__INLINE int map_set_item(
    loom_type *map, const char *key, size_t klen, uint64_t h, loom__item *it)
{
    loom_doc *d = map->doc;
    int rc = writable(map);
    /* one lookup: the entry gives the left neighbour and the key copy
     * (integration finds the entry again by key_hint) */
    if (rc || (rc = type_key_hashed(map, key, klen, h, &it->parent_sub))) {
        loom__item_free(d, it);
        return rc;
    }
    it->parent_sub_len = (uint32_t)klen; /* checked by type_key */
    loom__item *left = map->map.e[map->key_hint].val;
    it->left = left;
    it->parent = map;
    if (map_set_alone(d, it, &rc))
        return rc;
    loom_txn *t;
    if ((rc = loom__txn_begin(d, NULL, true, &t))) {
        it->parent = NULL;
        loom__item_free(d, it);
        return rc;
    }
    it->id.client = d->client_id;
    it->id.clock = loom__state(d, d->client_id);
    if (left) {
        it->has_origin = true;
        it->origin = loom__item_last_id(left);
    }
    rc = loom__item_integrate(t, it);
    return close_txn(d, rc);
}

static LOOM__INLINE int
check_key(const loom_type *map, const char *key, size_t klen)
{
    if (!map || (!key && klen))
        return LOOM_EINVAL;
    if (!has_map(map))
        return LOOM_ETYPE;
    /* short ASCII keys (most) without the validator's call */
    if ((klen > 16 || !loom__ascii_short(key, klen)) &&
        !loom__utf8_valid(key, klen))
        return LOOM_EINVAL;
    return LOOM_OK;
}

int loom_map_set(loom_type *map,
                 const char *key,
                 size_t klen,
                 const loom_any *value)
{
    int rc = check_key(map, key, klen);
    if (rc)
        return rc;
    if (!value || value->kind == LOOM_ANY_SUBDOC ||
        value->kind == LOOM_ANY_TYPE)
        return LOOM_EINVAL;
    if (!key)
        key = "";
    /* The key's slot in a large map is a cache miss: it loads while the
     * value is encoded. */
    uint64_t h = loom__hash_inline(key, klen);
    loom__strmap_prefetch(&map->map, h);
    /* A flat object (what maps mostly hold) is encoded where the pool
     * hands out its next block, which nothing else takes before the item
     * does (the key table and the client's structs use the allocator). */
    loom_doc *d = map->doc;
    size_t max = 0;
    uint8_t *w = loom__pool_peek(&d->pool, &max);
    size_t fn = w ? loom__any_put_flat(w, max, value) : 0;
    loom__item *it;
    const char *pk;
    if (fn && !(rc = writable(map)) &&
        !(rc = type_key_hashed(map, key, klen, h, &pk)) &&
        alone_ok(d, map->map.e[map->key_hint].val)) {
        size_t ei = map->key_hint;
        loom__item *left = map->map.e[ei].val;
        loom__client *own;
        if ((rc = alone_client(d, &own)))
            return rc;
        /* The value is already where the block of it and the item starts
         * (when there is room for both). The bytes of a value overwritten
         * before (front_release) are taken first instead, apart from the
         * item, or an overwrite-heavy map would grow by every old value:
         * the commit moves the value to that free block. */
        size_t f = loom__item_front(fn);
        size_t n =
            f + loom__item_room_size(loom__item_room(left != NULL, false));
        bool reuse = f <= max && loom__pool_has_free(&d->pool, f);
        size_t vn = reuse ? f : fn; /* the value's block alone */
        uint8_t *p;
        unsigned front = 0;
        if (!reuse && n <= max) {
            p = loom__pool_commit(&d->pool, n);
            it = loom__item_at_front(p, f);
            front = LOOM__F_FRONT | LOOM__F_FRONT_VAL;
        } else {
            p = loom__pool_commit(&d->pool, vn);
            if (!(it = loom__item_any_alloc(d, left))) {
                loom__pool_free(&d->pool, p, vn);
                return LOOM_ENOMEM;
            }
        }
        loom__id id = {own->client, alone_clock(own)};
        /* fn is at most LOOM__POOL_MAX */
        loom__item_init_any(it, id, 1, left, map, pk, klen, p, fn, front);
        it->c.any.cap = (uint32_t)vn; /* the block's size */
        return alone_link(d, own, ei, it);
    }
    if (rc)
        return rc;
    if ((rc = item_from_value(d, value, &it)))
        return rc;
    return map_set_item(map, key, klen, h, it);
}

int loom_map_set_type(loom_type *map,
                      const char *key,
                      size_t klen,
                      loom_type_kind kind,
                      const char *name,
                      size_t nlen,
                      loom_type **out)
{
    int rc = check_key(map, key, klen);
    if (rc)
        return rc;
    if (kind < LOOM_TYPE_ARRAY || kind > LOOM_TYPE_XML_TEXT)
        return LOOM_EINVAL;
    loom__item *it = new_item(map->doc, LOOM__REF_TYPE);
    if (!it)
        return LOOM_ENOMEM;
    it->len = 1;
    if ((rc = loom__type_new(map->doc, kind, name, name ? nlen : 0,
                             &it->c.type))) {
        loom__item_release(map->doc, it);
        return rc;
    }
    loom_type *nt = it->c.type;
    if (!key)
        key = "";
    rc = map_set_item(map, key, klen, loom__hash_bytes(key, klen), it);
    if (!rc && out)
        *out = nt;
    return rc;
}

/* A ContentDoc item: a sub-document reference with its options (an empty
 * object when none are given). */
static int subdoc_item(loom_doc *d,
                       const char *guid,
                       size_t glen,
                       const loom_any *opts,
                       loom__item **out)
{
    loom__item *it = new_item(d, LOOM__REF_DOC);
    if (!it)
        return LOOM_ENOMEM;
    it->len = 1;
    it->c.doc.guid = loom__keystr_new(d->a, guid, glen);
    int rc = opts ? loom_any_clone(opts, d->a, &it->c.doc.opts)
                  : loom_any_new_object(d->a, &it->c.doc.opts);
    if (rc || !it->c.doc.guid) {
        loom__item_free(d, it);
        return rc ? rc : LOOM_ENOMEM;
    }
    *out = it;
    return LOOM_OK;
}

int loom_map_set_subdoc(loom_type *map,
                        const char *key,
                        size_t klen,
                        const char *guid,
                        size_t glen,
                        const loom_any *opts)
{
    int rc = check_key(map, key, klen);
    if (rc)
        return rc;
    if (!guid || !loom__utf8_valid(guid, glen))
        return LOOM_EINVAL;
    loom_doc *d = map->doc;
    loom__item *it;
    if ((rc = subdoc_item(d, guid, glen, opts, &it)))
        return rc;
    if (!key)
        key = "";
    return map_set_item(map, key, klen, loom__hash_bytes(key, klen), it);
}

int loom_map_delete(loom_type *map, const char *key, size_t klen)
{
    int rc = check_key(map, key, klen);
    if (rc)
        return rc;
    loom__item *it = loom__type_map_item(map, key ? key : "", klen);
    if (!it || loom__item_deleted(it))
        return LOOM_OK;
    loom_txn *t;
    if ((rc = open_txn(map, &t)))
        return rc;
    rc = loom__item_delete(t, it);
    return close_txn(map->doc, rc);
}

int loom_map_get(const loom_type *map,
                 const char *key,
                 size_t klen,
                 loom_any **value,
                 loom_type **type)
{
    int rc = check_key(map, key, klen);
    if (rc)
        return rc;
    const loom__item *it = loom__type_map_item(map, key ? key : "", klen);
    if (!it || loom__item_deleted(it))
        return LOOM_ENOTFOUND;
    loom_any *v = NULL;
    loom_type *ty = NULL;
    rc = loom__item_value(it, map->doc->a, &v, &ty);
    if (rc)
        return rc;
    if (ty && !type)
        return LOOM_EINVAL;
    if (v && !value) {
        loom_any_free(v);
        return LOOM_EINVAL;
    }
    if (ty)
        *type = ty;
    else
        *value = v;
    return LOOM_OK;
}

int loom_map_has(const loom_type *map, const char *key, size_t klen)
{
    if (check_key(map, key, klen))
        return 0;
    const loom__item *it = loom__type_map_item(map, key ? key : "", klen);
    return it && !loom__item_deleted(it);
}

size_t loom_map_size(const loom_type *map)
{
    if (!map)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < map->map.n; i++) {
        const loom__item *it = map->map.e[i].val;
        n += it && !loom__item_deleted(it);
    }
    return n;
}

int loom_map_next(const loom_type *map,
                  size_t *cursor,
                  const char **key,
                  size_t *klen)
{
    if (!map || !cursor)
        return 0;
    while (*cursor < map->map.n) {
        const loom__strmap_entry *e = &map->map.e[(*cursor)++];
        const loom__item *it = e->val;
        if (it && !loom__item_deleted(it)) {
            if (key)
                *key = e->key;
            if (klen)
                *klen = e->klen;
            return 1;
        }
    }
    return 0;
}

/* ---- Array ------------------------------------------------------------- */

static bool has_seq(const loom_type *t)
{
    return t->kind == LOOM_TYPE_ARRAY || t->kind == LOOM_TYPE_XML_FRAGMENT ||
           t->kind == LOOM_TYPE_XML_ELEMENT || t->kind == LOOM_TYPE_UNDEFINED;
}

static int array_insert_items(
    loom_type *arr, size_t index, bool push, loom__item **items, size_t n)
{
    loom_txn *t;
    int rc = open_txn(arr, &t);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            loom__item_free(arr->doc, items[i]);
        return rc;
    }
    loom__item *left = NULL, *right = NULL;
    uint64_t at = push ? arr->length : index, total = 0;
    if (push) {
        /* push goes after the last item, deleted or not */
        uint64_t base;
        t->mk_type = arr;
        if (!loom__markers_find(arr, arr->length, &left, &base))
            left = arr->start;
        if (left)
            while (left->right)
                left = left->right;
    } else {
        rc = loom__seq_find(t, arr, index, &left, &right);
    }
    for (size_t i = 0; i < n; i++)
        total += items[i]->len;
    if (!rc) {
        right = left ? left->right : arr->start;
        loom__item *last = n ? items[n - 1] : NULL;
        rc = insert_items(t, arr, left, right, items, n);
        if (!rc) {
            loom__markers_shift(arr, at, (int64_t)total);
            if (last)
                loom__markers_note(arr, last, at + total - last->len);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            loom__item_free(arr->doc, items[i]);
    }
    return close_txn(arr->doc, rc);
}

static int array_insert_values(loom_type *arr,
                               size_t index,
                               bool push,
                               const loom_any *const *values,
                               size_t n)
{
    if (!arr || (!values && n))
        return LOOM_EINVAL;
    if (!has_seq(arr))
        return LOOM_ETYPE;
    int rc = writable(arr);
    if (rc)
        return rc;
    if (!push && index > arr->length)
        return LOOM_ERANGE;
    if (!n)
        return LOOM_OK;
    loom__item **items;
    size_t k;
    if ((rc = items_from_values(arr->doc, values, n, &items, &k)))
        return rc;
    rc = array_insert_items(arr, index, push, items, k);
    loom__free(arr->doc->a, items, n * sizeof(*items));
    return rc;
}

int loom_array_insert(loom_type *arr,
                      size_t index,
                      const loom_any *const *values,
                      size_t n)
{
    return array_insert_values(arr, index, false, values, n);
}

int loom_array_push(loom_type *arr, const loom_any *const *values, size_t n)
{
    return array_insert_values(arr, 0, true, values, n);
}

int loom_array_unshift(loom_type *arr, const loom_any *const *values, size_t n)
{
    return array_insert_values(arr, 0, false, values, n);
}

int loom_array_insert_type(loom_type *arr,
                           size_t index,
                           loom_type_kind kind,
                           const char *name,
                           size_t nlen,
                           loom_type **out)
{
    if (!arr)
        return LOOM_EINVAL;
    if (!has_seq(arr))
        return LOOM_ETYPE;
    if (kind < LOOM_TYPE_ARRAY || kind > LOOM_TYPE_XML_TEXT)
        return LOOM_EINVAL;
    int rc = writable(arr);
    if (rc)
        return rc;
    bool push = index == SIZE_MAX;
    if (!push && index > arr->length)
        return LOOM_ERANGE;
    loom__item *it = new_item(arr->doc, LOOM__REF_TYPE);
    if (!it)
        return LOOM_ENOMEM;
    it->len = 1;
    if ((rc = loom__type_new(arr->doc, kind, name, name ? nlen : 0,
                             &it->c.type))) {
        loom__item_release(arr->doc, it);
        return rc;
    }
    loom_type *nt = it->c.type;
    rc = array_insert_items(arr, push ? 0 : index, push, &it, 1);
    if (!rc && out)
        *out = nt;
    return rc;
}

int loom_array_insert_subdoc(loom_type *arr,
                             size_t index,
                             const char *guid,
                             size_t glen,
                             const loom_any *opts)
{
    if (!arr || !guid || !loom__utf8_valid(guid, glen))
        return LOOM_EINVAL;
    if (!has_seq(arr))
        return LOOM_ETYPE;
    int rc = writable(arr);
    if (rc)
        return rc;
    bool push = index == SIZE_MAX;
    if (!push && index > arr->length)
        return LOOM_ERANGE;
    loom_doc *d = arr->doc;
    loom__item *it;
    if ((rc = subdoc_item(d, guid, glen, opts, &it)))
        return rc;
    return array_insert_items(arr, push ? 0 : index, push, &it, 1);
}

/* typeListDelete (also used by XML children). */
static int
seq_delete(loom_txn *t, loom_type *type, uint64_t index, uint64_t len)
{
    /* the first item to delete is the one right after position `index` */
    loom__item *left, *n;
    int rc = loom__seq_find(t, type, index, &left, &n);
    if (rc)
        return rc;
    while (len > 0 && n) {
        if (!loom__item_deleted(n)) {
            if (len < n->len) {
                loom__item *r;
                if ((rc = loom__item_split(t, n, len, &r)))
                    return rc;
            }
            if ((rc = loom__item_delete(t, n)))
                return rc;
            if (loom__item_countable(n))
                loom__markers_shift(type, index + n->len, -(int64_t)n->len);
            len -= len < n->len ? len : n->len;
        }
        n = n->right;
    }
    return LOOM_OK;
}

int loom_array_delete(loom_type *arr, size_t index, size_t len)
{
    if (!arr)
        return LOOM_EINVAL;
    if (!has_seq(arr))
        return LOOM_ETYPE;
    int rc = writable(arr);
    if (rc)
        return rc;
    if (index > arr->length || len > arr->length - index)
        return LOOM_ERANGE;
    if (!len)
        return LOOM_OK;
    loom_txn *t;
    if ((rc = loom__txn_begin(arr->doc, NULL, true, &t)))
        return rc;
    rc = seq_delete(t, arr, index, len);
    return close_txn(arr->doc, rc);
}

/* The item holding visible index, and the offset inside it. */
static const loom__item *
seq_at(const loom_type *type, uint64_t index, uint64_t *off)
{
    for (const loom__item *n = type->start; n; n = n->right) {
        if (loom__item_deleted(n) || !loom__item_countable(n))
            continue;
        if (index < n->len) {
            *off = index;
            return n;
        }
        index -= n->len;
    }
    return NULL;
}

int loom_array_get(const loom_type *arr,
                   size_t index,
                   loom_any **value,
                   loom_type **type)
{
    if (!arr || !value || !type)
        return LOOM_EINVAL;
    if (!has_seq(arr))
        return LOOM_ETYPE;
    uint64_t off;
    const loom__item *it = seq_at(arr, index, &off);
    if (!it)
        return LOOM_ERANGE;
    if (it->ref == LOOM__REF_TYPE) {
        *type = it->c.type;
        return LOOM_OK;
    }
    loom_any *all;
    int rc = loom_any_new_array(arr->doc->a, &all);
    if (rc)
        return rc;
    if ((rc = loom__item_values(it, all, true))) {
        loom_any_free(all);
        return rc;
    }
    /* take the element out; freeing skips the hole */
    *value = all->u.arr.v[off];
    all->u.arr.v[off] = NULL;
    loom_any_free(all);
    return LOOM_OK;
}

static int seq_values(const loom_type *type,
                      const loom_allocator *a,
                      int depth,
                      loom_any *arr);

int loom_array_slice(const loom_type *arr,
                     size_t start,
                     size_t end,
                     loom_any **out)
{
    if (!arr || !out || start > end)
        return LOOM_EINVAL;
    if (!has_seq(arr))
        return LOOM_ETYPE;
    if (end > arr->length)
        end = (size_t)arr->length;
    loom_any *all, *res;
    int rc = loom_any_new_array(arr->doc->a, &all);
    if (rc)
        return rc;
    if ((rc = seq_values(arr, arr->doc->a, 0, all)) ||
        (rc = loom_any_new_array(arr->doc->a, &res))) {
        loom_any_free(all);
        return rc;
    }
    /* move the elements over; freeing `all` skips the holes they leave */
    for (size_t i = start; i < end && i < all->u.arr.n && !rc; i++) {
        rc = loom_any_array_push(res, all->u.arr.v[i]);
        if (!rc)
            all->u.arr.v[i] = NULL;
    }
    loom_any_free(all);
    if (rc) {
        loom_any_free(res);
        return rc;
    }
    *out = res;
    return LOOM_OK;
}

/* ---- toJSON ------------------------------------------------------------ */

static int to_any(const loom_type *type,
                  const loom_allocator *a,
                  int depth,
                  loom_any **out);

static int seq_values(const loom_type *type,
                      const loom_allocator *a,
                      int depth,
                      loom_any *arr)
{
    int rc = LOOM_OK;
    for (const loom__item *n = type->start; n && !rc; n = n->right) {
        if (loom__item_deleted(n) || !loom__item_countable(n))
            continue;
        if (n->ref == LOOM__REF_TYPE) {
            loom_any *v;
            if (!(rc = to_any(n->c.type, a, depth + 1, &v)) &&
                (rc = loom_any_array_push(arr, v)))
                loom_any_free(v);
        } else {
            rc = loom__item_values(n, arr, true);
        }
    }
    return rc;
}

static int map_object(const loom_type *type,
                      const loom_allocator *a,
                      int depth,
                      loom_any **out)
{
    loom_any *obj;
    int rc = loom_any_new_object(a, &obj);
    for (size_t i = 0; i < type->map.n && !rc; i++) {
        const loom__strmap_entry *e = &type->map.e[i];
        const loom__item *it = e->val;
        if (!it || loom__item_deleted(it))
            continue;
        loom_any *v = NULL;
        loom_type *ty = NULL;
        rc = loom__item_value(it, a, &v, &ty);
        if (!rc && ty)
            rc = to_any(ty, a, depth + 1, &v);
        if (!rc && (rc = loom_any_object_set(obj, e->key, e->klen, v)))
            loom_any_free(v);
    }
    if (rc) {
        loom_any_free(obj);
        return rc;
    }
    *out = obj;
    return LOOM_OK;
}

static int text_string(const loom_type *type, loom_buf *b)
{
    int rc = LOOM_OK;
    for (const loom__item *n = type->start; n && !rc; n = n->right) {
        if (!loom__item_deleted(n) && n->ref == LOOM__REF_STRING)
            rc = loom__buf_append(b, n->c.str.p, n->c.str.bytes);
    }
    return rc;
}

static int xml_string(const loom_type *t, int depth, loom_buf *b);

static int to_any(const loom_type *type,
                  const loom_allocator *a,
                  int depth,
                  loom_any **out)
{
    if (depth > LOOM__MAX_TYPE_DEPTH)
        return LOOM_ELIMIT;
    int rc;
    switch (type->kind) {
    case LOOM_TYPE_MAP:
    case LOOM_TYPE_XML_HOOK:
        return map_object(type, a, depth, out);
    case LOOM_TYPE_ARRAY: {
        loom_any *arr;
        if ((rc = loom_any_new_array(a, &arr)))
            return rc;
        if ((rc = seq_values(type, a, depth, arr))) {
            loom_any_free(arr);
            return rc;
        }
        *out = arr;
        return LOOM_OK;
    }
    case LOOM_TYPE_TEXT:
    case LOOM_TYPE_XML_TEXT:
    case LOOM_TYPE_XML_ELEMENT:
    case LOOM_TYPE_XML_FRAGMENT: {
        loom_buf b = {0};
        loom__buf_init(&b, a);
        rc = type->kind == LOOM_TYPE_TEXT ? text_string(type, &b)
                                          : xml_string(type, depth, &b);
        if (!rc)
            rc = loom_any_new_string(a, b.data ? (const char *)b.data : "",
                                     b.len, out);
        loom_buf_free(&b);
        return rc;
    }
    default:
        return loom_any_new_undefined(a, out);
    }
}

int loom__type_to_any(const loom_type *type,
                      const loom_allocator *a,
                      loom_any **out)
{
    return to_any(type, a, 0, out);
}

int loom_type_to_any(const loom_type *t, loom_any **out)
{
    if (!t || !out)
        return LOOM_EINVAL;
    return to_any(t, t->doc->a, 0, out);
}

int loom_doc_to_any(const loom_doc *d, loom_any **out)
{
    if (!d || !out)
        return LOOM_EINVAL;
    loom_any *obj;
    int rc = loom_any_new_object(d->a, &obj);
    for (size_t i = 0; i < d->roots.n && !rc; i++) {
        loom_any *v;
        if (!(rc = to_any(d->roots.e[i].val, d->a, 0, &v)) &&
            (rc = loom_any_object_set(obj, d->roots.e[i].key,
                                      d->roots.e[i].klen, v)))
            loom_any_free(v);
    }
    if (rc) {
        loom_any_free(obj);
        return rc;
    }
    *out = obj;
    return LOOM_OK;
}

/* ---- XML strings ------------------------------------------------------- */

/* JS String(value) for attribute values. */
static int js_string(loom_buf *b, const loom_any *v)
{
    char num[32];
    switch (v->kind) {
    case LOOM_ANY_UNDEFINED:
        return loom__buf_append(b, "undefined", 9);
    case LOOM_ANY_NULL:
        return loom__buf_append(b, "null", 4);
    case LOOM_ANY_BOOL:
        return v->u.b ? loom__buf_append(b, "true", 4)
                      : loom__buf_append(b, "false", 5);
    case LOOM_ANY_NUMBER:
        return loom__buf_append(b, num, loom__js_number_str(v->u.num, num));
    case LOOM_ANY_STRING:
        return loom__buf_append(b, v->u.str.p, v->u.str.len);
    case LOOM_ANY_ARRAY: {
        int rc = LOOM_OK;
        for (size_t i = 0; i < v->u.arr.n && !rc; i++) {
            if (i)
                rc = loom__buf_push(b, ',');
            const loom_any *e = v->u.arr.v[i];
            if (!rc && e->kind != LOOM_ANY_NULL &&
                e->kind != LOOM_ANY_UNDEFINED)
                rc = js_string(b, e);
        }
        return rc;
    }
    default:
        return loom__buf_append(b, "[object Object]", 15);
    }
}

typedef struct kv {
    const char *k;
    size_t klen;
    const loom_any *v;
} kv;

static int cmp_kv(const void *a, const void *b)
{
    const kv *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->k, y->k, n);
    if (c)
        return c;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

static int element_string(const loom_type *t, int depth, loom_buf *b)
{
    const loom_allocator *a = t->doc->a;
    loom_any *attrs;
    int rc = map_object(t, a, depth, &attrs);
    if (rc)
        return rc;
    size_t n = attrs->u.obj.n;
    kv *v = loom__malloc(a, (n ? n : 1) * sizeof(*v));
    if (!v) {
        loom_any_free(attrs);
        return LOOM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        v[i].k = attrs->u.obj.keys[i];
        v[i].klen = attrs->u.obj.klens[i];
        v[i].v = attrs->u.obj.v[i];
    }
    qsort(v, n, sizeof(*v), cmp_kv);
    /* nodeName.toLocaleLowerCase(): ASCII folding covers the XML names used */
    rc = loom__buf_push(b, '<');
    size_t mark = b->len;
    if (!rc)
        rc = loom__buf_append(b, t->name ? t->name : "", t->name_len);
    for (size_t i = mark; !rc && i < b->len; i++) {
        if (b->data[i] >= 'A' && b->data[i] <= 'Z')
            b->data[i] = (uint8_t)(b->data[i] + 32);
    }
    size_t name_end = b->len;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!(rc = loom__buf_push(b, ' ')) &&
            !(rc = loom__buf_append(b, v[i].k, v[i].klen)) &&
            !(rc = loom__buf_append(b, "=\"", 2)) &&
            !(rc = js_string(b, v[i].v)))
            rc = loom__buf_push(b, '"');
    }
    if (!rc)
        rc = loom__buf_push(b, '>');
    if (!rc) {
        for (const loom__item *c = t->start; c && !rc; c = c->right) {
            if (!loom__item_deleted(c) && c->ref == LOOM__REF_TYPE)
                rc = xml_string(c->c.type, depth + 1, b);
        }
    }
    if (!rc)
        rc = loom__buf_append(b, "</", 2);
    if (!rc) {
        size_t nl = name_end - mark;
        if (!(rc = loom__buf_reserve(b, nl + 1))) {
            memcpy(b->data + b->len, b->data + mark, nl);
            b->len += nl;
            rc = loom__buf_push(b, '>');
        }
    }
    loom__free(a, v, (n ? n : 1) * sizeof(*v));
    loom_any_free(attrs);
    return rc;
}

static int xml_string(const loom_type *t, int depth, loom_buf *b)
{
    if (depth > LOOM__MAX_TYPE_DEPTH)
        return LOOM_ELIMIT;
    int rc = LOOM_OK;
    switch (t->kind) {
    case LOOM_TYPE_XML_FRAGMENT:
    case LOOM_TYPE_UNDEFINED:
        for (const loom__item *c = t->start; c && !rc; c = c->right) {
            if (!loom__item_deleted(c) && c->ref == LOOM__REF_TYPE)
                rc = xml_string(c->c.type, depth + 1, b);
        }
        return rc;
    case LOOM_TYPE_XML_ELEMENT:
        return element_string(t, depth, b);
    case LOOM_TYPE_XML_TEXT:
        return loom__xml_text_string(t, b);
    case LOOM_TYPE_TEXT:
        return text_string(t, b);
    default:
        /* An XmlHook (or a map or array) has no toString in yjs, so JS
         * prints Object.prototype.toString's text; write the same, so XML
         * strings compare equal across engines. */
        return loom__buf_append(b, "[object Object]", 15);
    }
}

int loom_xml_to_string(const loom_type *t, loom_buf *out)
{
    if (!t || !out)
        return LOOM_EINVAL;
    if (!out->alloc)
        out->alloc = t->doc->a;
    return xml_string(t, 0, out);
}

loom_type_kind loom_type_guess_kind(const loom_type *t)
{
    if (!t)
        return LOOM_TYPE_MAP;
    if (t->kind != LOOM_TYPE_UNDEFINED)
        return (loom_type_kind)t->kind;
    bool any_seq = false, only_text = true, only_xml = true;
    for (const loom__item *n = t->start; n; n = n->right) {
        if (loom__item_is_gc(n))
            continue;
        any_seq = true;
        if (n->ref == LOOM__REF_TYPE) {
            int k = n->c.type->kind;
            if (k != LOOM_TYPE_XML_ELEMENT && k != LOOM_TYPE_XML_TEXT &&
                k != LOOM_TYPE_XML_HOOK)
                only_xml = false;
            only_text = false;
        } else if (n->ref == LOOM__REF_DELETED) {
            continue;
        } else {
            only_xml = false;
            if (n->ref != LOOM__REF_STRING && n->ref != LOOM__REF_FORMAT &&
                n->ref != LOOM__REF_EMBED)
                only_text = false;
        }
    }
    if (!any_seq)
        return LOOM_TYPE_MAP;
    if (only_text)
        return LOOM_TYPE_TEXT;
    if (only_xml)
        return LOOM_TYPE_XML_FRAGMENT;
    return LOOM_TYPE_ARRAY;
}
