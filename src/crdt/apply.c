/*
 * apply.c: applying a v1 update to a document (Yjs applyUpdate). The update
 * is parsed and validated whole before anything changes, so a malformed
 * update leaves the document as it was. Then structs are integrated in
 * descending client order, chasing missing dependencies depth first; what
 * cannot be integrated yet is kept as a pending update (with the clocks
 * whose arrival makes it worth retrying), deletes of unknown clocks as a
 * pending delete set, both retried when later updates arrive. Map entries
 * of the shape a loaded map is made of (integrate_rootkey) are integrated
 * without decoding the whole struct; runs of them, which the parser keeps
 * as one record (LOOM__RS_RUN), are taken as they are when the update is
 * integrated in order (in_order), else made structs again first. Items
 * with origins (typed text, arrays: LOOM__RS_ORIGINS) are integrated from
 * their ids and content alone when nothing they need is missing
 * (integrate_linked).
 */
#include <stdlib.h>
#include <string.h>

#include "crdt/crdt.h"

/* The structs of one client still to integrate (Yjs clientsStructRefs):
 * structs i..n-1 of block b. */
typedef struct refs {
    uint64_t client;
    const loom__rblock *b;
    size_t n, i;
    bool live; /* found by refs_of (not replaced, not moved to the rest) */
} refs;

/* A struct of the parsed update: struct k of block b. Structs are decoded
 * when they are reached (loom__rstruct_get), not kept decoded. */
typedef struct sref {
    const loom__rblock *b;
    size_t k;
} sref;

/* Structs that could not be integrated, per client. */
typedef struct rest_client {
    uint64_t client;
    sref *s;
    size_t n, cap;
} rest_client;

typedef struct integ {
    loom_txn *t;
    loom_doc *d;
    const loom__rupdate *u;
    refs *r; /* one per client of the update */
    size_t nr;
    /* client -> refs*, for updates of more than FEW_BLOCKS blocks (smaller
     * ones are searched: most updates have one block) */
    loom__u64map by_client;
    uint64_t *ids; /* clients still to process, ascending (popped at the end) */
    size_t nids;
    sref *stack;
    size_t nstack, scap;
    rest_client *rest;
    size_t nrest, rcap;
    loom__sv missing;
    /* The struct being handled is decoded in dec[hslot]; the one after it
     * (see prefetch_next) in the other slot when next_valid, whose key was
     * hashed ahead when next_hashed; cur_hashed: the head's key was. */
    loom__rstruct dec[2];
    int hslot;
    bool next_valid, next_hashed, cur_hashed;
    sref next;
    uint64_t cur_hash, next_hash;
    /* The key hash of a LOOM__RS_ROOTKEY struct computed ahead (rk_valid),
     * for struct rk of the update. */
    bool rk_valid;
    sref rk;
    uint64_t rk_hash;
    /* The last struct integrate_rootkey took and its parent (b NULL: none):
     * the next one of its block with LOOM__RS_SAMEROOT has that parent. */
    sref rk_prev;
    loom_type *rk_parent;
    /* where the last origin and right origin were found */
    loom__finger fo, fro;
} integ;

/* What the record of a struct says when integrate_rootkey can take it. */
#define RS_FAST (LOOM__RS_ROOTKEY | LOOM__RS_CANON)

#define FEW_BLOCKS 8

static refs *refs_of(integ *g, uint64_t client)
{
    if (g->nr > FEW_BLOCKS)
        return (refs *)loom__u64map_get(&g->by_client, client);
    for (size_t i = 0; i < g->nr; i++) {
        if (g->r[i].live && g->r[i].client == client)
            return &g->r[i];
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static refs *next_target(integ *g)
{
    while (g->nids) {
        refs *r = refs_of(g, g->ids[g->nids - 1]);
        if (r && r->i < r->n)
            return r;
        g->nids--;
    }
    return NULL;
}

static void update_missing(integ *g, uint64_t client, uint64_t clock, int *rc)
{
    for (size_t i = 0; i < g->missing.n; i++) {
        if (g->missing.e[i].client == client) {
            if (g->missing.e[i].clock > clock)
                g->missing.e[i].clock = clock;
            return;
        }
    }
    if (loom__sv_set(&g->missing, client, clock))
        *rc = LOOM_ENOMEM;
}

static rest_client *rest_get(integ *g, uint64_t client, int *rc)
{
    for (size_t i = 0; i < g->nrest; i++) {
        if (g->rest[i].client == client) {
            g->rest[i].n = 0; /* restStructs.clients.set replaces */
            return &g->rest[i];
        }
    }
    if (loom__vec_reserve(g->d->a, (void **)&g->rest, &g->rcap, g->nrest + 1,
                          sizeof(*g->rest))) {
        *rc = LOOM_ENOMEM;
        return NULL;
    }
    rest_client *rc2 = &g->rest[g->nrest++];
    memset(rc2, 0, sizeof(*rc2));
    rc2->client = client;
    return rc2;
}

static int rest_push(integ *g, rest_client *rc, sref s)
{
    if (loom__vec_reserve(g->d->a, (void **)&rc->s, &rc->cap, rc->n + 1,
                          sizeof(*rc->s)))
        return LOOM_ENOMEM;
    rc->s[rc->n++] = s;
    return LOOM_OK;
}

/* addStackToRestSS: the stack and the remaining structs of its clients
 * become rest. */
static int stack_to_rest(integ *g)
{
    int rc = LOOM_OK;
    for (size_t k = 0; k < g->nstack && !rc; k++) {
        sref s = g->stack[k];
        uint64_t client = s.b->client;
        refs *r = refs_of(g, client);
        rest_client *rcl = rest_get(g, client, &rc);
        if (!rcl)
            break;
        if (r && r->n) {
            r->i--;
            for (size_t j = r->i; j < r->n && !rc; j++)
                rc = rest_push(g, rcl, (sref){r->b, j});
            r->i = 0;
            r->n = 0;
            r->live = false;
            if (g->nr > FEW_BLOCKS)
                loom__u64map_put(&g->by_client, client,
                                 NULL); /* cannot fail: key exists */
        } else {
            rc = rest_push(g, rcl, s);
        }
        size_t w = 0;
        for (size_t j = 0; j < g->nids; j++) {
            if (g->ids[j] != client)
                g->ids[w++] = g->ids[j];
        }
        g->nids = w;
    }
    g->nstack = 0;
    return rc;
}

/* The client a struct waits for, or -1 when everything it needs is here. */
static int64_t get_missing(loom_doc *d, const loom__rstruct *s)
{
    if (s->has_origin && s->origin.client != s->client &&
        s->origin.clock >= loom__state(d, s->origin.client))
        return (int64_t)s->origin.client;
    if (s->has_right_origin && s->right_origin.client != s->client &&
        s->right_origin.clock >= loom__state(d, s->right_origin.client))
        return (int64_t)s->right_origin.client;
    if (s->parent_kind == LOOM__PARENT_ID && s->parent_id.client != s->client &&
        s->parent_id.clock >= loom__state(d, s->parent_id.client))
        return (int64_t)s->parent_id.client;
    return -1;
}

/* The String content of an item from validated raw bytes (len at
 * content): after the text's length, the text is the rest of them. */
static LOOM__INLINE int
read_string(loom_doc *d, const uint8_t *content, size_t len, loom__item *it)
{
    const uint8_t *p = content;
    while (*p++ >= 0x80) {
    }
    size_t n = len - (size_t)(p - content);
    if (!loom__bytes_fit(n))
        return LOOM_ELIMIT;
    char *q = loom__str_bytes_alloc(d, n + 1);
    if (!q)
        return LOOM_ENOMEM;
    /* mostly a few characters: no call */
    loom__copy(q, p, n);
    q[n] = 0;
    it->ref = LOOM__REF_STRING;
    it->c.str.p = q;
    it->c.str.bytes = (uint32_t)n;
    it->c.str.cap = (uint32_t)n + 1;
    return LOOM_OK;
}

/* Builds the content of ref `ref` of an item from validated raw bytes
 * (len at content; any_canon: as loom__rstruct has it). */
static int read_content(loom_doc *d,
                        uint8_t ref,
                        const uint8_t *content,
                        size_t content_len,
                        bool any_canon,
                        loom__item *it)
{
    const loom_allocator *a = d->a;
    loom__reader r;
    loom__reader_init(&r, content, content_len);
    int rc = LOOM_OK;
    it->ref = ref;
    switch (ref) {
    case LOOM__REF_DELETED:
        return LOOM_OK;
    case LOOM__REF_STRING:
        return read_string(d, content, content_len, it);
    case LOOM__REF_ANY: {
        /* yjs decodes the values and writes them again, which normalises
         * what other writers may encode differently (number widths, key
         * order, repeated keys); do the same so re-encoding is identical. */
        uint64_t n;
        if ((rc = loom__read_varuint(&r, &n)))
            return rc;
        if (any_canon) {
            /* the parser found the bytes canonical: one copy */
            size_t bytes = content_len - r.pos;
            if (!loom__bytes_fit(bytes))
                return LOOM_ELIMIT;
            it->c.any.p = loom__any_bytes_alloc(d, bytes ? bytes : 1);
            if (!it->c.any.p)
                return LOOM_ENOMEM;
            if (bytes)
                memcpy(it->c.any.p, content + r.pos, bytes);
            it->c.any.bytes = (uint32_t)bytes;
            it->c.any.cap = bytes ? (uint32_t)bytes : 1;
            return LOOM_OK;
        }
        loom_buf b = {0};
        loom__buf_init(&b, a);
        for (uint64_t i = 0; i < n && !rc; i++)
            rc = loom__any_canon(&r, a, 0, &b);
        if (!rc)
            rc = loom__any_content_take(d, it, &b);
        loom_buf_free(&b);
        return rc;
    }
    case LOOM__REF_JSON: {
        uint64_t n;
        if ((rc = loom__read_varuint(&r, &n)))
            return rc;
        it->c.json.v = loom__calloc(a, (size_t)n * sizeof(loom_any *));
        if (!it->c.json.v)
            return LOOM_ENOMEM;
        it->c.json.cap = (size_t)n;
        for (uint64_t i = 0; i < n && !rc; i++) {
            const char *p;
            size_t len, off;
            if (!(rc = loom__read_varstring(&r, &p, &len)))
                rc = loom__json_read(a, p, len, true, &it->c.json.v[i], &off);
        }
        return rc;
    }
    case LOOM__REF_BINARY: {
        const uint8_t *p;
        size_t n;
        if ((rc = loom__read_varbytes(&r, &p, &n)))
            return rc;
        it->c.bin.p = loom__memdup(a, p, n ? n : 1);
        if (!it->c.bin.p)
            return LOOM_ENOMEM;
        it->c.bin.n = n;
        return LOOM_OK;
    }
    case LOOM__REF_EMBED: {
        const char *p;
        size_t n, off;
        if ((rc = loom__read_varstring(&r, &p, &n)))
            return rc;
        return loom__json_read(a, p, n, false, &it->c.embed, &off);
    }
    case LOOM__REF_FORMAT: {
        const char *k, *p;
        size_t kn, n, off;
        if ((rc = loom__read_varstring(&r, &k, &kn)) ||
            (rc = loom__read_varstring(&r, &p, &n)))
            return rc;
        it->c.fmt.key = loom__keystr_new(a, k, kn);
        if (!it->c.fmt.key)
            return LOOM_ENOMEM;
        return loom__json_read(a, p, n, false, &it->c.fmt.val, &off);
    }
    case LOOM__REF_TYPE: {
        uint64_t tr;
        const char *name = NULL;
        size_t nlen = 0;
        if ((rc = loom__read_varuint(&r, &tr)))
            return rc;
        if ((tr == LOOM_TYPE_XML_ELEMENT || tr == LOOM_TYPE_XML_HOOK) &&
            (rc = loom__read_varstring(&r, &name, &nlen)))
            return rc;
        return loom__type_new(d, (int)tr, name, nlen, &it->c.type);
    }
    case LOOM__REF_DOC: {
        const char *g;
        size_t gn;
        if ((rc = loom__read_varstring(&r, &g, &gn)))
            return rc;
        it->c.doc.guid = loom__keystr_new(a, g, gn);
        if (!it->c.doc.guid)
            return LOOM_ENOMEM;
        return loom__any_read(&r, a, 0, &it->c.doc.opts);
    }
    default:
        return LOOM_EMALFORMED;
    }
}

/* Integrates a GC struct (or an item that lost its parent) as GC. */
static int
integrate_gc(loom_doc *d, uint64_t client, uint64_t clock, uint64_t len)
{
    loom__item *it = loom__item_alloc_room(d, LOOM__F_ROOM);
    if (!it)
        return LOOM_ENOMEM;
    it->id.client = client;
    it->id.clock = clock;
    it->len = len;
    it->ref = LOOM__REF_GC;
    it->flags |= LOOM__F_DELETED;
    int rc = loom__store_push(d, it);
    if (rc)
        loom__item_release(d, it);
    return rc;
}

/* Equal byte strings of length n; a loop, not a call: root names are short
 * and compared once per struct. */
static inline bool bytes_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i])
            return false;
    }
    return true;
}

/* The root type named name, or NULL; the root found last is checked first,
 * since the structs of an update mostly name the same root over and over
 * (every map entry of a loaded map names it). */
static loom_type *root_of(loom_doc *d, const char *name, size_t len)
{
    loom_type *t = d->last_root;
    if (t && t->root_name_len == len && bytes_eq(t->root_name, name, len))
        return t;
    t = loom__type_root(d, name, len);
    if (t)
        d->last_root = t;
    return t;
}

/* Loading a large map, the slot of each key in the map's index is a cache
 * miss: the next struct's key (a root map's, usually the root found last)
 * starts loading while this one, s, is integrated, and its hash is kept for
 * its own lookup. A prefetch in the wrong map costs nothing but itself. */
static void prefetch_next(integ *g, const refs *cur)
{
    g->next_valid = false;
    if (!cur || cur->i >= cur->n)
        return;
    /* an item with an origin or a right origin (typed text) takes its
     * parent and key from a neighbour: nothing to hash */
    if ((g->u->p[cur->b->s[cur->i].offset] & 0xc0) ||
        (cur->b->s[cur->i].bits & LOOM__RS_RUN))
        return;
    loom__rstruct *next = &g->dec[1 - g->hslot];
    g->next.b = cur->b;
    g->next.k = cur->i;
    loom__rstruct_get(g->u, cur->b, cur->i, next);
    g->next_valid = true;
    g->next_hashed = false;
    const loom_type *root = g->d->last_root;
    if (!next->parent_sub || next->parent_kind != LOOM__PARENT_ROOT || !root)
        return;
    g->next_hashed = true;
    g->next_hash = loom__hash_bytes(next->parent_sub, next->parent_sub_len);
    loom__strmap_prefetch(&root->map, g->next_hash);
}

/* Decodes struct h as the head, taking the struct decoded ahead when it is
 * the one. */
static const loom__rstruct *load_head(integ *g, sref h)
{
    if (g->next_valid && g->next.b == h.b && g->next.k == h.k) {
        g->hslot = 1 - g->hslot;
        g->next_valid = false;
        g->cur_hashed = g->next_hashed;
        g->cur_hash = g->next_hash;
    } else {
        loom__rstruct_get(g->u, h.b, h.k, &g->dec[g->hslot]);
        g->cur_hashed = false;
    }
    return &g->dec[g->hslot];
}

/* The left and right neighbours of an item with these origins (has_o,
 * has_ro: whether it has them; NULL for one it has not), which are known
 * to exist (get_missing): the item ending at o, the one starting at ro. */
static LOOM__INLINE int neighbours(integ *g,
                                   bool has_o,
                                   loom__id o,
                                   bool has_ro,
                                   loom__id ro,
                                   loom__item **l,
                                   loom__item **r)
{
    loom_txn *t = g->t;
    loom__item *left = NULL, *right = NULL;
    int rc;
    if (has_o) {
        /* most often the end of its client's last struct: the struct
         * integrated just before, loading in clock order */
        loom__item *last = loom__cs_last(loom__client_get(g->d, o.client));
        if (o.clock == last->id.clock + last->len - 1)
            left = last;
        else if ((rc = loom__get_clean_end_near(t, o, &g->fo, &left)))
            return rc;
    }
    if (has_ro) {
        /* Nothing integrated before a struct can stand between its origin
         * and its right origin unless it was concurrent, so the struct after
         * the origin mostly starts at the right origin; being in the list,
         * it is then the struct containing it, which needs no split. */
        loom__item *next = left ? left->right : NULL;
        if (next && next->id.clock == ro.clock && next->id.client == ro.client)
            right = next;
        else if ((rc = loom__get_clean_start_near(t, ro, &g->fro, &right)))
            return rc;
    }
    *l = left;
    *r = right;
    return LOOM_OK;
}

/* Resolves neighbours and parent, then integrates from `offset`. */
static int integrate_struct(integ *g, const loom__rstruct *s, uint64_t offset)
{
    loom_txn *t = g->t;
    loom_doc *d = t->doc;
    int rc;
    if (s->ref == LOOM__REF_GC)
        return integrate_gc(d, s->client, s->clock + offset,
                            s->length - offset);
    loom__item *left, *right;
    if ((rc = neighbours(g, s->has_origin, s->origin, s->has_right_origin,
                         s->right_origin, &left, &right)))
        return rc;
    loom__id origin = left ? loom__item_last_id(left) : s->origin;
    loom__id right_origin = right ? right->id : s->right_origin;
    loom_type *parent = NULL;
    const char *psub = s->parent_sub;
    size_t psub_len = s->parent_sub_len;
    bool parent_gone = false;
    if ((left && loom__item_is_gc(left)) ||
        (right && loom__item_is_gc(right))) {
        parent_gone = true;
    } else if (s->parent_kind == LOOM__PARENT_NONE) {
        loom__item *from = left ? left : right;
        if (from && !loom__item_is_gc(from)) {
            parent = from->parent;
            psub = from->parent_sub;
            psub_len = from->parent_sub_len;
        }
    } else if (s->parent_kind == LOOM__PARENT_ID) {
        loom__item *p = loom__find(d, s->parent_id);
        if (!p || loom__item_is_gc(p) || p->ref != LOOM__REF_TYPE)
            parent_gone = true;
        else
            parent = p->c.type;
    } else {
        parent = root_of(d, s->parent_name, s->parent_name_len);
    }
    uint64_t clock = s->clock, len = s->length;
    if (offset > 0) {
        clock += offset;
        len -= offset;
        loom__id l = {s->client, clock - 1};
        if ((rc = loom__get_clean_end(t, l, &left)))
            return rc;
        origin = loom__item_last_id(left);
    }
    if (parent_gone || !parent)
        return integrate_gc(d, s->client, clock, len);

    bool has_origin = s->has_origin || offset > 0;
    loom__item *it = loom__item_alloc_room(
        d, loom__item_room(has_origin, s->has_right_origin));
    if (!it)
        return LOOM_ENOMEM;
    it->id.client = s->client;
    it->id.clock = s->clock;
    it->len = s->length;
    if ((rc = read_content(d, s->ref, s->content, s->content_len, s->any_canon,
                           it)))
        goto fail;
    if (offset > 0) {
        /* Keep only the tail, as content.splice(offset) does. */
        loom__item *tail = loom__item_alloc(d);
        if (!tail) {
            rc = LOOM_ENOMEM;
            goto fail;
        }
        tail->ref = it->ref;
        tail->len = len;
        if ((rc = loom__content_split(d, it, offset, tail))) {
            loom__item_release(d, tail);
            goto fail;
        }
        it->len = offset;
        loom__content_free(d, it);
        it->c = tail->c;
        loom__item_release(d, tail);
        it->id.clock = clock;
        it->len = len;
    }
    it->has_origin = has_origin;
    if (has_origin)
        it->origin = origin;
    it->has_right_origin = s->has_right_origin;
    if (s->has_right_origin)
        it->right_origin = right_origin;
    it->left = left;
    it->right = right;
    it->parent = parent;
    if (psub) {
        /* a neighbour's key is already the parent map's copy */
        if (psub == s->parent_sub &&
            (rc = loom__type_key_hashed(
                 parent, psub, psub_len,
                 g->cur_hashed ? g->cur_hash : loom__hash_bytes(psub, psub_len),
                 &psub)))
            goto fail;
        it->parent_sub = psub;
        it->parent_sub_len = (uint32_t)psub_len; /* checked by type_key */
    }
    return loom__item_integrate(t, it);
fail:
    it->parent = NULL;
    loom__item_free(d, it);
    return rc;
}

/* An item for loom__item_init_any without a left and, apart, *v for its
 * bytes (more than loom__item_any_carve takes), or NULL. */
static LOOM__NOINLINE loom__item *
rootkey_apart(loom_doc *d, size_t bytes, uint8_t **v)
{
    uint8_t *p = loom__any_bytes_alloc(d, bytes);
    if (!p)
        return NULL;
    loom__item *it = loom__item_any_alloc(d, NULL);
    if (!it) {
        loom__pool_free(&d->pool, p, bytes);
        return NULL;
    }
    *v = p;
    return it;
}

/*
 * integrate_struct for a struct of `client` at `clock` whose record has
 * RS_FAST when the document's state of its client is its clock: an Item
 * with canonical Any content, a root parent and a key, and no origins, so
 * nothing is missing and nothing is cut off. Only the key (klen bytes at
 * key, its hash given) and the values' bytes (`bytes` at p, after their
 * count) are read from the input; the item is what integrate_struct makes
 * of it, in parent (NULL: the root is gone). *direct: a new key's item may
 * be pushed without loom__item_integrate_new_key's checks (can_push said
 * so); cleared when the key is not new. small: 1 <= bytes <= 255 (a
 * struct of a run).
 */
static LOOM__INLINE int integrate_rootkey(integ *g,
                                          uint64_t client,
                                          uint64_t clock,
                                          uint64_t len,
                                          loom_type *parent,
                                          const char *key,
                                          size_t klen,
                                          const uint8_t *p,
                                          size_t bytes,
                                          uint64_t hash,
                                          bool *direct,
                                          bool small)
{
    loom_doc *d = g->d;
    if (!parent)
        return integrate_gc(d, client, clock, len);
    if (!small && !loom__bytes_fit(bytes))
        return LOOM_ELIMIT;
    uint8_t *v;
    loom__item *it;
    unsigned front = LOOM__F_FRONT | LOOM__F_FRONT_VAL;
    if (small || bytes <= LOOM__FRONT_MAX) {
        /* one block, the value in front of the item */
        it = loom__item_any_carve(d, NULL, bytes, &v);
    } else {
        it = rootkey_apart(d, bytes, &v);
        front = 0;
    }
    if (!it)
        return LOOM_ENOMEM;
    loom__copy(v, p, bytes);
    loom__id id = {client, clock};
    /* written once by loom__item_init_any */
    loom__item_init_any(it, id, len, NULL, parent, NULL, 0, v, bytes, front);
    const char *psub;
    int rc = loom__type_key_inline(parent, key, klen, hash, &psub);
    if (rc) {
        it->parent = NULL;
        loom__item_free(d, it);
        return rc;
    }
    it->parent_sub = psub;
    it->parent_sub_len = (uint32_t)klen; /* checked by type_key */
    if (!parent->key_new) {
        *direct = false; /* integrating may look up other clients */
        return loom__item_integrate(g->t, it);
    }
    /* A key new to the map (most of a loaded map) has nothing to resolve
     * (the client's array was sized for its block: reserve_rest). */
    if (!*direct)
        return loom__item_integrate_new_key(g->t, it);
    loom__cs_push_inline(d->last_client, it);
    parent->key_new = false; /* the entry has an item now */
    parent->map.e[parent->key_hint].val = it;
    return LOOM_OK;
}

/* Can the next n items of client, new keys of parent, be pushed as
 * loom__item_integrate_new_key pushes them when nothing stops it, with its
 * checks made once: the client is the last one looked up, touched in this
 * transaction, with room for n more, and the parent a root whose changes
 * need no record. Pushing them keeps all of it so. */
static bool
can_push(integ *g, const loom_type *parent, uint64_t client, size_t n)
{
    const loom__client *own = g->d->last_client;
    return parent && own && own->client == client &&
           own->txn_seq == g->t->seq && own->cap - own->n - own->hole >= n &&
           !parent->item && loom__txn_records_nothing(g->t, parent);
}

/* Makes room in the client's array for the rest of its block after the
 * first struct (which may have made the client): a loaded document's
 * client comes in one block, and its array would otherwise grow and be
 * copied a dozen times. Only a hint: without the memory the pushes grow it. */
static void reserve_n(loom_doc *d, uint64_t client, size_t n)
{
    loom__client *c = loom__client_get(d, client);
    if (c && n <= SIZE_MAX / 2 - c->n - c->hole)
        (void)loom__vec_grow_exact(d->a, (void **)&c->v, &c->cap,
                                   c->n + c->hole + n, sizeof(*c->v));
}
/* The same after struct 0 of cur's block (the block's records are its
 * structs then, or the structs of runs fewer, so this is a bound). */
static void reserve_rest(loom_doc *d, const refs *cur)
{
    reserve_n(d, cur->client, cur->b->cap - cur->i);
}

/* The value count (a varUint) of the content at p, stepped over. */
static inline const uint8_t *skip_count(const uint8_t *p)
{
    while (*p++ >= 0x80) {
    }
    return p;
}

/*
 * integrate_rootkey for every struct of the LOOM__RS_RUN record h of cur
 * (reached in order: the update is integrated in order, see in_order), each
 * decoded from the bytes as it comes: the name's length of the first (all
 * name the same root), then per struct its key, its value count (its
 * length) and its values, which end at its length from its start. The next
 * one's key is hashed and its slot in the map prefetched while one is
 * integrated.
 */
static LOOM__NOINLINE int integrate_run(integ *g, refs *cur, sref h)
{
    loom_doc *d = g->d;
    const loom__rblock *b = h.b;
    const loom__rpos *rec = &b->s[h.k];
    uint64_t count = loom__rs_run_count(b, h.k);
    const uint8_t *lens = loom__rs_run_lens(b, h.k);
    const uint8_t *e = g->u->p + rec->offset;
    size_t nlen = e[2];
    g->rk_valid = false;
    g->next_valid = false;
    loom_type *parent;
    if ((rec->bits & LOOM__RS_SAMEROOT) && g->rk_prev.b == b &&
        g->rk_prev.k + 1 == h.k) {
        parent = g->rk_parent;
    } else {
        parent = root_of(d, (const char *)e + 3, nlen);
        g->rk_parent = parent;
    }
    uint64_t client = b->client, clock = rec->bits & LOOM__RS_CLOCK_MASK;
    /* the lengths of the structs still to integrate */
    const uint8_t *lp = lens, *lend = lens + count;
    if (!parent) {
        /* the root is gone: GC, each struct's length its value count */
        for (; lp < lend; e += *lp++) {
            uint64_t n = loom__rs_run_values(e);
            int rc = integrate_gc(d, client, clock, n);
            if (rc)
                return rc;
            clock += n;
        }
        goto done;
    }
    const uint8_t *kp = e + 3 + nlen; /* the key's length, the key */
    uint64_t hash = loom__hash_inline(kp + 1, kp[0]);
    bool direct = false;
    for (;;) {
        size_t klen = kp[0];
        const uint8_t *v = kp + 2 + klen;
        uint64_t n = v[-1]; /* one byte: a run's structs have no more */
        e += *lp++;         /* the next struct */
        bool more = lp < lend;
        const uint8_t *nkp = e + 3 + nlen;
        uint64_t next_hash = 0;
        if (more) {
            next_hash = loom__hash_inline(nkp + 1, nkp[0]);
            loom__strmap_prefetch(&parent->map, next_hash);
        }
        int rc =
            integrate_rootkey(g, client, clock, n, parent, (const char *)kp + 1,
                              klen, v, (size_t)(e - v), hash, &direct, true);
        if (rc)
            return rc;
        if (!more)
            break;
        if (!direct) {
            /* the first struct of the block made the client */
            if (h.k == 0 && lp == lens + 1)
                reserve_n(d, client, b->cap - 1);
            direct = can_push(g, parent, client, (size_t)(lend - lp));
        }
        clock += n;
        kp = nkp;
        hash = next_hash;
    }
done:
    /* the records after h's hold the count and the lengths; the struct
     * after the run is the one after the last of them */
    cur->i = h.k + 1 + loom__rs_run_span(count);
    g->rk_prev.b = b;
    g->rk_prev.k = cur->i - 1;
    return LOOM_OK;
}

/*
 * integrate_rootkey for struct h (taken from cur, or from elsewhere: the
 * stack) and then for the structs after it in cur as long as they are
 * RS_FAST entries of the same root and nothing waits on the stack: what
 * integrate_structs would do with them one by one, without its dispatch.
 * The struct after h in its block needs no state check: integrating h made
 * the state its clock. Each struct is decoded once, and the next one's key
 * hashed and its slot in the map prefetched while this one is integrated.
 */
static LOOM__NOINLINE int integrate_rootkeys(integ *g, refs *cur, sref h)
{
    if (h.b->s[h.k].bits & LOOM__RS_RUN)
        return integrate_run(g, cur, h);
    loom_doc *d = g->d;
    loom__rootkey rk;
    loom__rs_rootkey(g->u, h.b, h.k, &rk);
    uint64_t hash = g->rk_valid && g->rk.b == h.b && g->rk.k == h.k
                        ? g->rk_hash
                        : loom__hash_bytes(rk.key, rk.key_len);
    g->rk_valid = false;
    /* a struct decoded ahead by prefetch_next is not the next one now */
    g->next_valid = false;
    loom_type *parent;
    if ((h.b->s[h.k].bits & LOOM__RS_SAMEROOT) && g->rk_prev.b == h.b &&
        g->rk_prev.k + 1 == h.k) {
        parent = g->rk_parent;
    } else {
        parent = root_of(d, rk.name, rk.name_len);
        g->rk_parent = parent;
    }
    /* the run goes on past h when h is the struct before cur's next and
     * nothing waits on the stack (integrating pushes nothing there) */
    const loom__rblock *b = cur->b;
    bool run = !g->nstack && b == h.b && cur->i == h.k + 1;
    /* in locals: integrating writes through pointers the compiler cannot
     * tell from these */
    const loom__rpos *rs = b->s;
    size_t n = cur->n;
    uint64_t clock = loom__rs_clock(h.b, h.k), len = loom__rs_length(h.b, h.k);
    for (;;) {
        /* the next struct of cur, when it comes here too */
        size_t i = cur->i;
        loom__rootkey next;
        uint64_t next_hash = 0;
        bool ahead = i < n && parent &&
                     (rs[i].bits & (RS_FAST | LOOM__RS_RUN)) == RS_FAST;
        if (ahead) {
            loom__rs_rootkey(g->u, b, i, &next);
            next_hash = loom__hash_inline(next.key, next.key_len);
            loom__strmap_prefetch(&parent->map, next_hash);
        }
        const uint8_t *v = skip_count(rk.content);
        bool direct = false;
        int rc = integrate_rootkey(
            g, h.b->client, clock, len, parent, rk.key, rk.key_len, v,
            (size_t)(rk.content + rk.content_len - v), hash, &direct, false);
        if (rc)
            return rc;
        if (!ahead || !run || !(rs[i].bits & LOOM__RS_SAMEROOT)) {
            g->rk_prev = h;
            if (ahead) {
                g->rk_valid = true;
                g->rk.b = b;
                g->rk.k = i;
                g->rk_hash = next_hash;
            }
            return LOOM_OK;
        }
        if (i == 1)
            reserve_rest(d, cur);
        /* struct i follows h: its clock is where h ends */
        clock += len;
        len =
            (i + 1 < n ? rs[i + 1].bits & LOOM__RS_CLOCK_MASK : b->end_clock) -
            clock;
        h.k = i;
        cur->i = i + 1;
        rk = next;
        hash = next_hash;
    }
}

/* The header of a LOOM__RS_ORIGINS struct: its info byte, its ids (those
 * it has) and where its content starts. */
typedef struct linked {
    uint8_t info;
    loom__id o, ro;
    const uint8_t *content;
} linked;

/* One id of a LOOM__RS_ORIGINS struct of `client` at p, into *id; NULL
 * when it is longer than 7 bytes or names a clock of another client that
 * is not here yet (linked_head). */
static LOOM__INLINE const uint8_t *
linked_id(const integ *g, const uint8_t *p, uint64_t client, loom__id *id)
{
    if (!(p = loom__varuint7_at(p, &id->client)) ||
        !(p = loom__varuint7_at(p, &id->clock)))
        return NULL;
    if (id->client != client && id->clock >= loom__state(g->d, id->client))
        return NULL;
    return p;
}

/* Reads the header of struct k of b, a LOOM__RS_ORIGINS one, into *h.
 * False when integrate_struct is to take it: it waits for a struct of
 * another client (get_missing would find it), or an id is a varUint of
 * more than 7 bytes. Its own client's ids are before it (the parser
 * refused others), so they are there when its clock is the state. */
static LOOM__INLINE bool
linked_head(const integ *g, const loom__rblock *b, size_t k, linked *h)
{
    const uint8_t *p = g->u->p + b->s[k].offset;
    uint8_t info = *p++;
    h->info = info;
    if ((info & 0x80) && !(p = linked_id(g, p, b->client, &h->o)))
        return false;
    if ((info & 0x40) && !(p = linked_id(g, p, b->client, &h->ro)))
        return false;
    h->content = p;
    return true;
}

/* integrate_struct at offset 0 for struct k of b, whose header linked_head
 * read into h: the parent and the key are the neighbour's. */
static LOOM__INLINE int
integrate_linked_one(integ *g, const loom__rblock *b, size_t k, linked h)
{
    loom_doc *d = g->d;
    bool has_o = h.info & 0x80, has_ro = h.info & 0x40;
    uint64_t clock = loom__rs_clock(b, k), len = loom__rs_length(b, k);
    loom__item *left, *right;
    int rc = neighbours(g, has_o, h.o, has_ro, h.ro, &left, &right);
    if (rc)
        return rc;
    const loom__item *from = left ? left : right;
    if ((left && loom__item_is_gc(left)) ||
        (right && loom__item_is_gc(right)) || !from->parent)
        return integrate_gc(d, b->client, clock, len);
    loom__item *it = loom__item_alloc_room(d, loom__item_room(has_o, has_ro));
    if (!it)
        return LOOM_ENOMEM;
    it->id.client = b->client;
    it->id.clock = clock;
    it->len = len;
    size_t clen = (size_t)(g->u->p + loom__rs_end(b, k) - h.content);
    uint8_t ref = loom__rs_ref(b, k);
    if (ref == LOOM__REF_DELETED)
        it->ref = ref;
    else if (ref == LOOM__REF_STRING)
        rc = read_string(d, h.content, clen, it);
    else
        rc = read_content(d, ref, h.content, clen,
                          (b->s[k].bits & LOOM__RS_CANON) != 0, it);
    if (rc) {
        loom__item_free(d, it);
        return rc;
    }
    it->has_origin = has_o;
    if (has_o)
        it->origin = loom__item_last_id(left);
    it->has_right_origin = has_ro;
    if (has_ro)
        it->right_origin = right->id;
    it->left = left;
    it->right = right;
    it->parent = from->parent;
    it->parent_sub = from->parent_sub;
    it->parent_sub_len = from->parent_sub_len;
    return loom__item_integrate(g->t, it);
}

/*
 * integrate_struct for struct h (taken from cur, or from the stack), a
 * LOOM__RS_ORIGINS one at its client's state whose header linked_head read
 * into *lh, and then for the structs after it in cur as long as they are
 * such structs that linked_head takes and nothing waits on the stack: what
 * integrate_structs would do with them one by one, without decoding them
 * whole. The struct after h in its block needs no state check: integrating
 * h made the state its clock.
 */
static LOOM__NOINLINE int
integrate_linked(integ *g, refs *cur, sref h, linked *lh)
{
    const loom__rblock *b = h.b;
    bool run = !g->nstack && b == cur->b && cur->i == h.k + 1;
    /* in locals: integrating writes through pointers the compiler cannot
     * tell from these */
    size_t n = cur->n, k = h.k;
    linked head = *lh;
    for (;;) {
        int rc = integrate_linked_one(g, b, k, head);
        if (rc || !run)
            return rc;
        /* cur's next struct is the one after k */
        size_t i = k + 1;
        if (i >= n || !(b->s[i].bits & LOOM__RS_ORIGINS) ||
            !linked_head(g, b, i, &head))
            return LOOM_OK;
        if (i == 1)
            reserve_rest(g->d, cur);
        k = i;
        cur->i = i + 1;
    }
}

static int integrate_structs(integ *g)
{
    loom_doc *d = g->d;
    int rc = LOOM_OK;
    if (g->nids > 1)
        qsort(g->ids, g->nids, sizeof(*g->ids), cmp_u64);
    refs *cur = next_target(g);
    if (!cur)
        return LOOM_OK;
    sref h = {cur->b, cur->i++};
    linked lh;
    for (;;) {
        if ((h.b->s[h.k].bits & RS_FAST) == RS_FAST &&
            loom__state(d, h.b->client) == loom__rs_clock(h.b, h.k)) {
            if ((rc = integrate_rootkeys(g, cur, h)))
                return rc;
        } else if ((h.b->s[h.k].bits & LOOM__RS_ORIGINS) &&
                   loom__state(d, h.b->client) == loom__rs_clock(h.b, h.k) &&
                   linked_head(g, h.b, h.k, &lh)) {
            if ((rc = integrate_linked(g, cur, h, &lh)))
                return rc;
        } else if (loom__rs_ref(h.b, h.k) != LOOM__REF_SKIP) {
            const loom__rstruct *head = load_head(g, h);
            uint64_t local = loom__state(d, head->client);
            if (local < head->clock) {
                if (loom__vec_reserve(d->a, (void **)&g->stack, &g->scap,
                                      g->nstack + 1, sizeof(*g->stack)))
                    return LOOM_ENOMEM;
                g->stack[g->nstack++] = h;
                update_missing(g, head->client, head->clock - 1, &rc);
                if (rc || (rc = stack_to_rest(g)))
                    return rc;
            } else {
                int64_t m =
                    head->ref == LOOM__REF_GC ? -1 : get_missing(d, head);
                if (m >= 0) {
                    if (loom__vec_reserve(d->a, (void **)&g->stack, &g->scap,
                                          g->nstack + 1, sizeof(*g->stack)))
                        return LOOM_ENOMEM;
                    g->stack[g->nstack++] = h;
                    refs *mr = refs_of(g, (uint64_t)m);
                    if (!mr || mr->i == mr->n) {
                        update_missing(g, (uint64_t)m,
                                       loom__state(d, (uint64_t)m), &rc);
                        if (rc || (rc = stack_to_rest(g)))
                            return rc;
                    } else {
                        h.b = mr->b;
                        h.k = mr->i++;
                        continue;
                    }
                } else {
                    uint64_t offset = local - head->clock;
                    if (offset == 0 || offset < head->length) {
                        prefetch_next(g, cur);
                        if ((rc = integrate_struct(g, head, offset)))
                            return rc;
                    }
                }
            }
        }
        if (g->nstack) {
            h = g->stack[--g->nstack];
        } else if (cur && cur->i < cur->n) {
            if (cur->i == 1)
                reserve_rest(d, cur);
            h.b = cur->b;
            h.k = cur->i++;
        } else {
            cur = next_target(g);
            if (!cur)
                break;
            h.b = cur->b;
            h.k = cur->i++;
        }
    }
    return LOOM_OK;
}

/* Is a reference of a struct of `client` to id (when has) one that
 * get_missing never finds missing: to the client's own past (the parser
 * refused its future) or to a clock the document had before? */
static bool ref_known(const loom_doc *d, uint64_t client, bool has, loom__id id)
{
    return !has || id.client == client || id.clock < loom__state(d, id.client);
}

/* ref_known for the references of item k of b: its origins, or its ID
 * parent, read from its header (typed text in an update with runs is
 * mostly such items); the decoder reads a varUint of more than 7 bytes. */
static bool item_refs_known(const integ *g, const loom__rblock *b, size_t k)
{
    const uint8_t *p = g->u->p + b->s[k].offset;
    uint8_t info = *p++;
    int ids = !!(info & 0x80) + !!(info & 0x40);
    if (!ids) {
        uint64_t parent_info;
        if (!(p = loom__varuint7_at(p, &parent_info)))
            goto decode;
        if (parent_info == 1)
            return true; /* a root */
        ids = 1;
    }
    for (; ids > 0; ids--) {
        loom__id id;
        if (!(p = loom__varuint7_at(p, &id.client)) ||
            !(p = loom__varuint7_at(p, &id.clock)))
            goto decode;
        if (!ref_known(g->d, b->client, true, id))
            return false;
    }
    return true;
decode:;
    loom__rstruct s;
    loom__rstruct_get(g->u, b, k, &s);
    return ref_known(g->d, b->client, s.has_origin, s.origin) &&
           ref_known(g->d, b->client, s.has_right_origin, s.right_origin) &&
           ref_known(g->d, b->client, s.parent_kind == LOOM__PARENT_ID,
                     s.parent_id);
}

/*
 * Will integrate_structs take the structs of the update in order, block by
 * block, each at its client's state, and never stack or leave one? So when
 * every block is its client's only one and starts at its state, and no
 * struct is a Skip (the struct after it would start past the state) or
 * refers to another client's clock that the document does not have yet.
 * Then LOOM__RS_RUN records can stay: each is reached from its block, at
 * the state of its first struct.
 */
static bool in_order(integ *g)
{
    const loom__rupdate *u = g->u;
    for (size_t i = 0; i < u->nblocks; i++) {
        const loom__rblock *b = &u->blocks[i];
        if (refs_of(g, b->client)->b != b ||
            loom__state(g->d, b->client) != b->first_clock)
            return false;
        for (size_t k = 0; k < b->n; k++) {
            uint64_t bits = b->s[k].bits;
            if (bits & LOOM__RS_RUN) {
                k += loom__rs_run_span(loom__rs_run_count(b, k));
                continue;
            }
            if ((bits & RS_FAST) == RS_FAST)
                continue; /* no origins, a root parent */
            uint8_t ref = loom__rs_ref(b, k);
            if (ref == LOOM__REF_SKIP)
                return false;
            if (ref != LOOM__REF_GC && !item_refs_known(g, b, k))
                return false;
        }
    }
    return true;
}

static int cmp_rest_desc(const void *a, const void *b)
{
    uint64_t x = ((const rest_client *)a)->client,
             y = ((const rest_client *)b)->client;
    return x > y ? -1 : x < y;
}

/* Encodes the rest as a v1 update with structs only. */
static int write_rest(integ *g, loom_buf *out)
{
    int rc;
    size_t nonempty = 0;
    for (size_t i = 0; i < g->nrest; i++)
        nonempty += g->rest[i].n > 0;
    if (g->nrest)
        qsort(g->rest, g->nrest, sizeof(*g->rest), cmp_rest_desc);
    if ((rc = loom__write_varuint(out, nonempty)))
        return rc;
    for (size_t i = 0; i < g->nrest; i++) {
        rest_client *r = &g->rest[i];
        if (!r->n)
            continue;
        if ((rc = loom__write_varuint(out, r->n)) ||
            (rc = loom__write_varuint(out, r->client)) ||
            (rc = loom__write_varuint(out,
                                      loom__rs_clock(r->s[0].b, r->s[0].k))))
            return rc;
        for (size_t k = 0; k < r->n; k++) {
            loom__rstruct s;
            loom__rstruct_get(g->u, r->s[k].b, r->s[k].k, &s);
            if ((rc = loom__rstruct_write(out, &s, 0)))
                return rc;
        }
    }
    return loom__write_varuint(out, 0);
}

/* readAndApplyDeleteSet: deletes what is known, returns the rest in `left`. */
static int apply_ds(loom_txn *t, const loom__ds *ds, loom__ds *left)
{
    loom_doc *d = t->doc;
    int rc;
    for (size_t ci = 0; ci < ds->n; ci++) {
        const loom__ds_client *dc = &ds->c[ci];
        uint64_t client = dc->client;
        /* the ranges are sorted: each is searched from where the last
         * one ended */
        size_t hint = SIZE_MAX;
        for (size_t k = 0; k < dc->n; k++) {
            uint64_t clock = dc->r[k].clock, end = clock + dc->r[k].len;
            uint64_t state = loom__state(d, client);
            if (clock >= state) {
                if ((rc = loom__ds_add(left, client, clock, end - clock)))
                    return rc;
                continue;
            }
            if (state < end &&
                (rc = loom__ds_add(left, client, state, end - state)))
                return rc;
            loom__client *c = loom__client_get(d, client);
            size_t idx = loom__find_index_near(c, clock, hint);
            loom__item *s = loom__cs(c, idx);
            if (!loom__item_deleted(s) && s->id.clock < clock) {
                loom__item *r;
                if ((rc = loom__item_split_at(t, c, idx, s, clock - s->id.clock,
                                              &r)))
                    return rc;
                idx++;
            }
            while (idx < c->n) {
                s = loom__cs(c, idx++);
                if (s->id.clock >= end)
                    break;
                if (!loom__item_deleted(s)) {
                    if (end < s->id.clock + s->len) {
                        loom__item *r;
                        if ((rc = loom__item_split_at(t, c, idx - 1, s,
                                                      end - s->id.clock, &r)))
                            return rc;
                    }
                    if ((rc = loom__item_delete(t, s)))
                        return rc;
                }
            }
            hint = idx - 1;
        }
    }
    return LOOM_OK;
}

static void integ_free(integ *g)
{
    const loom_allocator *a = g->d->a;
    loom__free(a, g->r, g->nr * sizeof(*g->r));
    loom__u64map_free(&g->by_client);
    loom__free(a, g->ids, g->nr * sizeof(*g->ids));
    loom__free(a, g->stack, g->scap * sizeof(*g->stack));
    for (size_t i = 0; i < g->nrest; i++)
        loom__free(a, g->rest[i].s, g->rest[i].cap * sizeof(*g->rest[i].s));
    loom__free(a, g->rest, g->rcap * sizeof(*g->rest));
    loom__sv_free(&g->missing);
}

/* One pass of applyUpdate over a parsed update; sets *retry when pending
 * structs became worth retrying. */
static int apply_parsed(loom_txn *t, loom__rupdate *u, bool *retry)
{
    loom_doc *d = t->doc;
    int rc = LOOM_OK;
    integ g;
    memset(&g, 0, sizeof(g));
    g.t = t;
    g.d = d;
    g.u = u;
    g.fo.i = g.fro.i = SIZE_MAX;
    loom__u64map_init(&g.by_client, d->a);
    loom__sv_init(&g.missing, d->a);
    /* Roots named by the update exist from now on, in order of appearance
     * (a name repeated from the struct before is there already). */
    for (size_t i = 0; i < u->nroots && !rc; i++) {
        loom_type *root;
        rc = loom__type_root_get_or_add(d, u->roots[i].p, u->roots[i].len,
                                        &root);
        /* A large update of keys (a loaded map) sizes the map once rather
         * than growing and rehashing it a dozen times. Only a hint: keys
         * already there make it an overestimate, and failing to make the
         * room just leaves the growing to the inserts. */
        if (!rc && u->roots[i].keyed >= 1024 &&
            u->roots[i].keyed <= SIZE_MAX - root->map.n)
            (void)loom__strmap_reserve(&root->map,
                                       root->map.n + u->roots[i].keyed);
    }
    if (!rc && u->nblocks) {
        g.r = loom__calloc(d->a, u->nblocks * sizeof(*g.r));
        g.ids = loom__malloc(d->a, u->nblocks * sizeof(*g.ids));
        g.nr = u->nblocks;
        if (!g.r || !g.ids)
            rc = LOOM_ENOMEM;
    }
    for (size_t b = 0; b < u->nblocks && !rc; b++) {
        const loom__rblock *bl = &u->blocks[b];
        refs *r = refs_of(&g, bl->client);
        if (!r) {
            r = &g.r[b];
            g.ids[g.nids++] = bl->client;
        }
        /* a later block of the same client replaces the earlier one */
        r->client = bl->client;
        r->b = bl;
        r->n = bl->n;
        r->i = 0;
        r->live = true;
        if (g.nr > FEW_BLOCKS)
            rc = loom__u64map_put(&g.by_client, bl->client, r);
    }
    /* runs of map entries are integrated as they are when the update is
     * taken in order, else made structs again */
    if (!rc && u->runs && !in_order(&g)) {
        rc = loom__rupdate_expand(u);
        for (size_t i = 0; i < g.nr && !rc; i++) {
            if (g.r[i].b)
                g.r[i].n = g.r[i].b->n;
        }
    }
    if (!rc)
        rc = integrate_structs(&g);

    loom_buf rest = {0};
    loom__buf_init(&rest, d->a);
    bool have_rest = false;
    for (size_t i = 0; i < g.nrest; i++)
        have_rest |= g.rest[i].n > 0;
    if (!rc && have_rest)
        rc = write_rest(&g, &rest);
    if (!rc && d->pending.len) {
        for (size_t i = 0; i < d->pending_missing.n; i++) {
            if (d->pending_missing.e[i].clock <
                loom__state(d, d->pending_missing.e[i].client)) {
                *retry = true;
                break;
            }
        }
        if (have_rest) {
            for (size_t i = 0; i < g.missing.n && !rc; i++) {
                uint64_t c = g.missing.e[i].client, k = g.missing.e[i].clock;
                bool found = false;
                for (size_t j = 0; j < d->pending_missing.n; j++) {
                    if (d->pending_missing.e[j].client == c) {
                        found = true;
                        if (d->pending_missing.e[j].clock > k)
                            d->pending_missing.e[j].clock = k;
                    }
                }
                if (!found)
                    rc = loom__sv_set(&d->pending_missing, c, k);
            }
            loom__rupdate a, b;
            loom_buf merged = {0};
            loom__buf_init(&merged, d->a);
            if (!rc)
                rc = loom__update_parse(d->a, d->pending.data, d->pending.len,
                                        0, &a, NULL);
            if (!rc) {
                rc = loom__update_parse(d->a, rest.data, rest.len, 1, &b, NULL);
                if (!rc) {
                    const loom__rupdate *ups[2] = {&a, &b};
                    rc = loom__merge_parsed(ups, 2, &merged);
                    loom__rupdate_free(&b);
                }
                loom__rupdate_free(&a);
            }
            if (!rc) {
                loom_buf_free(&d->pending);
                d->pending = merged;
            } else {
                loom_buf_free(&merged);
            }
        }
    } else if (!rc && have_rest) {
        loom_buf_free(&d->pending);
        d->pending = rest;
        rest.data = NULL;
        rest.len = rest.cap = 0;
        loom__sv_free(&d->pending_missing);
        loom__sv_init(&d->pending_missing, d->a);
        for (size_t i = 0; i < g.missing.n && !rc; i++)
            rc = loom__sv_set(&d->pending_missing, g.missing.e[i].client,
                              g.missing.e[i].clock);
    }
    loom_buf_free(&rest);

    /* The update's delete set, then the pending one again. */
    loom__ds left1, left2;
    loom__ds_init(&left1, d->a);
    loom__ds_init(&left2, d->a);
    if (!rc)
        rc = apply_ds(t, &u->ds, &left1);
    if (!rc && !loom__ds_empty(&d->pending_ds)) {
        loom__ds old = d->pending_ds;
        loom__ds_init(&d->pending_ds, d->a);
        rc = apply_ds(t, &old, &left2);
        loom__ds_free(&old);
    }
    if (!rc)
        rc = loom__ds_merge_into(&left1, &left2);
    if (!rc) {
        loom__ds_normalize(&left1);
        loom__ds_free(&d->pending_ds);
        d->pending_ds = left1;
    } else {
        loom__ds_free(&left1);
    }
    loom__ds_free(&left2);
    integ_free(&g);
    return rc;
}

int loom__apply_update(loom_txn *t,
                       const uint8_t *p,
                       size_t len,
                       loom_error *err)
{
    loom_doc *d = t->doc;
    loom__rupdate u;
    int rc = loom__update_parse_load(d->a, p, len, &u, err);
    if (rc)
        return rc;
    if (u.self_ref != SIZE_MAX) {
        /* Rejects references that no valid writer produces and that would
         * make integration look up clocks that cannot exist. */
        loom__error_set(err, LOOM_EMALFORMED, u.self_ref, 0,
                        "struct refers to a clock of its own client "
                        "that is not before it");
        loom__rupdate_free(&u);
        return LOOM_EMALFORMED;
    }
    bool retry = false;
    rc = apply_parsed(t, &u, &retry);
    loom__rupdate_free(&u);
    while (!rc && retry) {
        /* Integrate the pending structs again: something they waited for came. */
        loom_buf pend = d->pending;
        memset(&d->pending, 0, sizeof(d->pending));
        loom__buf_init(&d->pending, d->a);
        loom__sv_free(&d->pending_missing);
        loom__sv_init(&d->pending_missing, d->a);
        rc = loom__update_parse(d->a, pend.data, pend.len, 0, &u, NULL);
        if (!rc) {
            retry = false;
            rc = apply_parsed(t, &u, &retry);
            loom__rupdate_free(&u);
        }
        loom_buf_free(&pend);
    }
    return rc;
}
