/*
 * encode.c: writing a document out: its state vector, the delete set that
 * the struct store implies, and encodeStateAsUpdate (structs past a target
 * state vector, the whole delete set, and pending data merged in as Yjs
 * does).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "crdt/crdt.h"

int loom__doc_sv(const loom_doc *d, loom__sv *out)
{
    for (size_t i = 0; i < d->nclients; i++) {
        const loom__client *c = d->clist[i];
        if (!c->n)
            continue;
        int rc = loom__sv_set(out, c->client, loom__state(d, c->client));
        if (rc)
            return rc;
    }
    return LOOM_OK;
}

/* The deleted run being collected for one client while its structs are
 * visited in clock order: open while len > 0. `ds` NULL: not collecting. */
typedef struct ds_run {
    loom__ds *ds;
    uint64_t client, clock, len;
} ds_run;

/* Adds s to the run, or closes the run into the delete set. */
static inline int ds_step(ds_run *r, const loom__item *s)
{
    if (loom__item_deleted(s)) {
        if (!r->len)
            r->clock = s->id.clock;
        r->len += s->len;
    } else if (r->len) {
        int rc = loom__ds_add(r->ds, r->client, r->clock, r->len);
        r->len = 0;
        if (rc)
            return rc;
    }
    return LOOM_OK;
}

/* Closes the run at the end of its client. */
static int ds_end(ds_run *r)
{
    int rc = r->len ? loom__ds_add(r->ds, r->client, r->clock, r->len) : 0;
    r->len = 0;
    return rc;
}

/* Adds the deleted runs among v[0, n) (a stretch of the gap buffer). */
static int ds_stretch(ds_run *r, loom__item *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = ds_step(r, v[i]);
        if (rc)
            return rc;
    }
    return LOOM_OK;
}

/* The deleted runs of c's structs [0, end). */
static int ds_prefix(ds_run *r, const loom__client *c, size_t end)
{
    size_t a = c->gap < end ? c->gap : end;
    int rc = ds_stretch(r, c->v, a);
    if (!rc && a < end)
        rc = ds_stretch(r, c->v + c->gap + c->hole, end - a);
    return rc;
}

int loom__store_ds(const loom_doc *d, loom__ds *out)
{
    for (size_t ci = 0; ci < d->nclients; ci++) {
        const loom__client *c = d->clist[ci];
        ds_run r = {out, c->client, 0, 0};
        int rc = ds_prefix(&r, c, c->n);
        if (!rc)
            rc = ds_end(&r);
        if (rc)
            return rc;
    }
    return LOOM_OK;
}

static int cmp_sv_desc(const void *a, const void *b)
{
    uint64_t x = ((const loom__sv_entry *)a)->client,
             y = ((const loom__sv_entry *)b)->client;
    return x > y ? -1 : x < y;
}

/* Writes a GC struct or an item of Any or Deleted content that has an
 * origin (an overwritten map entry, before or after GC) at the end of
 * out. */
static int write_linked(loom_buf *out, const loom__item *it)
{
    uint8_t ref = it->ref;
    size_t bytes = ref == LOOM__REF_ANY ? it->c.any.bytes : 0;
    size_t need = 1 + 40 + 10 + bytes;
    if (need > out->cap - out->len) {
        int rc = loom__buf_reserve(out, need);
        if (rc)
            return rc;
    }
    uint8_t *q = out->data + out->len;
    if (ref == LOOM__REF_GC) {
        *q++ = 0;
    } else {
        *q++ = (uint8_t)(ref | (unsigned)it->has_origin << 7 |
                         (unsigned)it->has_right_origin << 6 |
                         (it->parent_sub ? 0x20u : 0u));
        if (it->has_origin) {
            q = loom__put_varuint(q, it->origin.client);
            q = loom__put_varuint(q, it->origin.clock);
        }
        if (it->has_right_origin) {
            q = loom__put_varuint(q, it->right_origin.client);
            q = loom__put_varuint(q, it->right_origin.clock);
        }
    }
    q = loom__put_varuint(q, it->len);
    if (bytes)
        loom__copy(q, it->c.any.p, bytes);
    out->len = (size_t)(q - out->data) + bytes;
    return LOOM_OK;
}

/* The bytes every plain entry of one root map starts with (the info byte:
 * Any content and a key, no origins; parentInfo 1; the root's name as a
 * varString), kept while a run of its entries is written. They go out as
 * one move of all of b (room is reserved for it) and the output advances
 * by len: the same header for every entry, built once. */
typedef struct root_head {
    const loom_type *parent; /* the root it was built for; NULL: none */
    size_t len;
    uint8_t b[32];
} root_head;

/* An item's has_origin, has_right_origin, ref and flags, four bytes in a
 * row, and parent_sub_len right after them, read as one 64-bit word: the
 * test for a plain entry below is one load, one mask and one compare
 * instead of five loads and branches. */
_Static_assert(offsetof(loom__item, has_right_origin) ==
                       offsetof(loom__item, has_origin) + 1 &&
                   offsetof(loom__item, ref) ==
                       offsetof(loom__item, has_origin) + 2 &&
                   offsetof(loom__item, flags) ==
                       offsetof(loom__item, has_origin) + 3 &&
                   offsetof(loom__item, parent_sub_len) ==
                       offsetof(loom__item, has_origin) + 4 &&
                   sizeof(((loom__item *)NULL)->parent_sub_len) == 4,
               "the item's flag bytes and key length are in a row");

/* Is `it` written on the fast path (given the header of its parent): Any
 * content holding one value (a map entry), no origins, not deleted (a
 * deleted item goes through ds_step on the ordinary path), and a key whose
 * length is one varuint byte? Its parent is checked by the callers. */
static inline bool plain_entry(const loom__item *it)
{
    /* the wanted bytes and the mask in memory order, so that the words
     * compared do not depend on the byte order: the flag bytes, then the
     * key length (below 0x80: its other bits clear) */
    uint8_t want_b[8] = {0, 0, LOOM__REF_ANY, 0};
    uint8_t mask_b[8] = {0xff, 0xff, 0xff, LOOM__F_DELETED};
    const uint32_t klen_mask = ~(uint32_t)0x7f;
    memcpy(mask_b + 4, &klen_mask, 4);
    uint64_t want, mask, w;
    memcpy(&want, want_b, 8);
    memcpy(&mask, mask_b, 8);
    memcpy(&w, (const uint8_t *)it + offsetof(loom__item, has_origin), 8);
    return (w & mask) == want && it->len == 1 && it->parent_sub;
}

/* Sets h up for the entries of root p; false when p is not a root or its
 * name does not fit in h->b (those entries take the ordinary path). */
static bool root_head_set(root_head *h, const loom_type *p)
{
    if (p->item || p->root_name_len > sizeof(h->b) - 3)
        return false;
    h->b[0] = (uint8_t)(LOOM__REF_ANY | 0x20);
    h->b[1] = 1;
    h->b[2] = (uint8_t)p->root_name_len; /* < 0x80: one byte */
    memcpy(h->b + 3, p->root_name, p->root_name_len);
    h->len = 3 + p->root_name_len;
    h->parent = p;
    return true;
}

/* The room write_root_run needs for a plain entry: the whole header
 * block (moved whole), the key and the value with their length bytes.
 * Lengths of objects in memory: the sum cannot overflow. */
static inline size_t root_entry_room(const loom__item *it)
{
    return sizeof(((const root_head *)NULL)->b) + 2 + it->parent_sub_len +
           it->c.any.bytes;
}

/* Values up to this long are small (a few fields: most map values), and
 * the room for any plain entry with a small value is ROOT_SMALL_ROOM: one
 * test of the output position covers the entry, instead of adding up its
 * lengths. */
#define ROOT_SMALL_VALUE 64
#define ROOT_SMALL_ROOM \
    (sizeof(((const root_head *)NULL)->b) + 2 + 0x7f + ROOT_SMALL_VALUE)

/* Writes the plain entries of h->parent at the start of v[0, n), as many
 * as there is room for in out, and returns how many: at least one when
 * the caller checked v[0] and made room for ROOT_SMALL_ROOM and for
 * root_entry_room(v[0]). The bulk of a map's document: one test of the
 * item's flag bytes, one room test, the header as one block, the key and
 * the value as short inline copies, and the output position kept in a
 * register. Growing the buffer is left to the caller, so that nothing
 * here lives across a call: the loop's values all stay in registers. */
static LOOM__NOINLINE size_t write_root_run(loom_buf *out,
                                            loom__item *const *v,
                                            size_t n,
                                            const root_head *h)
{
    /* copied out: stores through q may alias anything reached through a
     * pointer, so h's fields would be read again for every entry */
    uint8_t head[sizeof(h->b)];
    memcpy(head, h->b, sizeof(head));
    size_t hlen = h->len;
    const loom_type *parent = h->parent;
    uint8_t *q = out->data + out->len;
    const uint8_t *end = out->data + out->cap;
    /* past `small_end` an entry with a small value may not fit (the
     * caller made room for one: it is not before q) */
    const uint8_t *small_end = end - ROOT_SMALL_ROOM;
    loom__item *const *pv = v, *const *pe = v + n;
    for (; pv < pe; pv++) {
        const loom__item *it = *pv;
        if (!plain_entry(it) || it->parent != parent)
            break;
        size_t klen = it->parent_sub_len, bytes = it->c.any.bytes;
        if (q > small_end || (bytes > ROOT_SMALL_VALUE &&
                              root_entry_room(it) > (size_t)(end - q)))
            break;
        memcpy(q, head, sizeof(head));
        q += hlen;
        *q++ = (uint8_t)klen;
        q = loom__copy_short(q, it->parent_sub, klen);
        *q++ = 1; /* the value count */
        loom__copy(q, it->c.any.p, bytes);
        q += bytes;
    }
    out->len = (size_t)(q - out->data);
    return (size_t)(pv - v);
}

/* Writes every struct of v[0, n) (a stretch of a client's gap buffer),
 * whole, collecting deleted runs into dr. Plain entries of a root map,
 * the bulk of a map's document, go to write_root_run a run at a time;
 * overwritten entries (GC structs, Any or Deleted content with origins)
 * to write_linked; every other struct (an entry of a nested type, of a
 * root whose name is too long for the header, or deleted) to
 * loom__item_write. The bytes are the same. */
static int write_stretch(
    loom_buf *out, loom__item *const *v, size_t n, ds_run *dr, root_head *h)
{
    size_t i = 0;
    while (i < n) {
        const loom__item *it = v[i];
        int rc = LOOM_OK;
        /* a deleted item (to collect) or the end of a deleted run (to
         * close): after that the fast path has no delete set to keep */
        if (dr->ds && (rc = ds_step(dr, it)))
            return rc;
        if (plain_entry(it) &&
            (it->parent == h->parent || root_head_set(h, it->parent))) {
            /* doubles the buffer when short: reserving for one entry at
             * a time grows it as often as appending bytes does */
            size_t room = root_entry_room(it);
            if ((rc = loom__buf_reserve(
                     out, room > ROOT_SMALL_ROOM ? room : ROOT_SMALL_ROOM)))
                return rc;
            i += write_root_run(out, v + i, n - i, h);
            continue;
        }
        if (loom__item_is_gc(it) ||
            ((it->ref == LOOM__REF_ANY || it->ref == LOOM__REF_DELETED) &&
             (it->has_origin || it->has_right_origin)))
            rc = write_linked(out, it);
        else
            rc = loom__item_write(out, it, 0);
        if (rc)
            return rc;
        i++;
    }
    return LOOM_OK;
}

/* The structs of c from index i on, whole: the two stretches of its gap
 * buffer read as plain arrays. */
static int
write_items(loom_buf *out, const loom__client *c, size_t i, ds_run *dr)
{
    root_head h = {0};
    int rc = LOOM_OK;
    if (i < c->gap)
        rc = write_stretch(out, c->v + i, c->gap - i, dr, &h);
    size_t from = i > c->gap ? i : c->gap;
    if (!rc && from < c->n)
        rc = write_stretch(out, c->v + from + c->hole, c->n - from, dr, &h);
    return rc;
}

/* loom__write_structs, also collecting the delete set of every client
 * written into ds unless it is NULL: the items are in hand anyway, and a
 * second pass over a large document's items for its delete set was a third
 * of encoding it (each item's cache line read from memory again). */
static int write_structs(
    const loom_doc *d, loom__sv_entry *e, size_t n, loom_buf *out, loom__ds *ds)
{
    /* Inside a transaction Yjs has not merged typed items yet: neither may
     * what we write. */
    if (d->txn && loom__txn_joined(d->txn)) {
        int urc = loom__txn_unjoin(d->txn);
        if (urc)
            return urc;
    }
    if (n == 2 && e[0].client < e[1].client) {
        loom__sv_entry x = e[0];
        e[0] = e[1];
        e[1] = x;
    } else if (n > 2) {
        qsort(e, n, sizeof(*e), cmp_sv_desc);
    }
    int rc = loom__write_varuint(out, n);
    for (size_t k = 0; k < n && !rc; k++) {
        const loom__client *c = loom__client_get(d, e[k].client);
        uint64_t clock = e[k].clock;
        if (clock < loom__cs(c, 0)->id.clock)
            clock = loom__cs(c, 0)->id.clock;
        size_t idx = loom__find_index(c, clock);
        if ((rc = loom__write_varuint(out, c->n - idx)) ||
            (rc = loom__write_varuint(out, c->client)) ||
            (rc = loom__write_varuint(out, clock)))
            break;
        ds_run dr = {ds, c->client, 0, 0};
        const loom__item *first = loom__cs(c, idx);
        if (ds && ((rc = ds_prefix(&dr, c, idx)) || (rc = ds_step(&dr, first))))
            break;
        rc = loom__item_write(out, first, clock - first->id.clock);
        if (!rc)
            rc = write_items(out, c, idx + 1, &dr);
        if (!rc && ds)
            rc = ds_end(&dr);
    }
    return rc;
}

int loom__write_structs(const loom_doc *d,
                        loom__sv_entry *e,
                        size_t n,
                        loom_buf *out)
{
    return write_structs(d, e, n, out, NULL);
}

/* Does encodeStateAsUpdate against `target` write structs of c, and from
 * which clock (*from)? */
static bool client_written(const loom_doc *d,
                           const loom__client *c,
                           const loom__sv *target,
                           uint64_t *from)
{
    bool has = false;
    uint64_t tclock = 0;
    for (size_t k = 0; k < target->n; k++) {
        if (target->e[k].client == c->client) {
            has = true;
            tclock = target->e[k].clock;
        }
    }
    *from = has ? tclock : 0;
    return c->n && (!has || loom__state(d, c->client) > tclock);
}

int loom__encode_state(const loom_doc *d, const loom__sv *target, loom_buf *out)
{
    loom__sv sm;
    loom__sv_init(&sm, d->a);
    int rc = LOOM_OK;
    uint64_t from;
    for (size_t i = 0; i < d->nclients && !rc; i++) {
        if (client_written(d, d->clist[i], target, &from))
            rc = loom__sv_set(&sm, d->clist[i]->client, from);
    }
    loom__ds ds;
    loom__ds_init(&ds, d->a);
    loom__sv_entry *e = NULL;
    size_t ne = sm.n ? sm.n : 1;
    if (!rc && !(e = loom__malloc(d->a, ne * sizeof(*e))))
        rc = LOOM_ENOMEM;
    if (!rc) {
        if (sm.n)
            memcpy(e, sm.e, sm.n * sizeof(*e));
        rc = write_structs(d, e, sm.n, out, &ds);
    }
    /* the delete sets of the clients with no struct written */
    for (size_t i = 0; i < d->nclients && !rc; i++) {
        const loom__client *c = d->clist[i];
        if (!c->n || client_written(d, c, target, &from))
            continue;
        ds_run dr = {&ds, c->client, 0, 0};
        if (!(rc = ds_prefix(&dr, c, c->n)))
            rc = ds_end(&dr);
    }
    if (e)
        loom__free(d->a, e, ne * sizeof(*e));
    loom__sv_free(&sm);
    if (!rc)
        rc = loom__ds_write(out, &ds);
    loom__ds_free(&ds);
    return rc;
}

int loom_doc_encode_state_vector(const loom_doc *d, loom_buf *out)
{
    if (!d || !out)
        return LOOM_EINVAL;
    loom__sv sv;
    loom__sv_init(&sv, d->a);
    loom_buf b = {0};
    loom__buf_init(&b, d->a);
    int rc = loom__doc_sv(d, &sv);
    if (!rc)
        rc = loom__sv_write(&b, &sv);
    loom__sv_free(&sv);
    if (rc) {
        loom_buf_free(&b);
        return rc;
    }
    *out = b;
    return LOOM_OK;
}

/*
 * Room for a whole-document update up front: growing from 64 bytes by
 * doubling took a score of reallocations for a large document, each
 * touching fresh pages. A struct takes a few bytes of header plus its
 * content; ENC_GUESS bytes each is a guess that growth corrects either way.
 * Only for the whole document (an empty target state vector): a diff may
 * be a small part of it. The bytes written do not depend on this.
 */
#define ENC_GUESS 32

static void reserve_estimate(const loom_doc *d, loom_buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nclients; i++)
        n += d->clist[i]->n;
    /* on failure the encoders grow the buffer as before (and fail there
     * if memory is really short) */
    if (n >= 1024 && n <= SIZE_MAX / ENC_GUESS)
        (void)loom__buf_reserve(b, n * ENC_GUESS);
}

int loom_doc_encode_state_as_update(const loom_doc *d,
                                    const uint8_t *sv,
                                    size_t sv_len,
                                    loom_buf *out,
                                    loom_error *err)
{
    if (!d || !out || (!sv && sv_len))
        return LOOM_EINVAL;
    static const uint8_t empty_sv[1] = {0};
    if (!sv) {
        sv = empty_sv;
        sv_len = 1;
    }
    loom__sv target;
    loom__sv_init(&target, d->a);
    loom__reader r;
    loom__reader_init(&r, sv, sv_len);
    int rc = loom__sv_read(&r, &target);
    if (!rc && loom__reader_left(&r))
        rc = loom__reader_fail(&r, LOOM_EMALFORMED, r.pos,
                               "trailing bytes after the state vector");
    if (rc) {
        loom__reader_error(&r, err, 0);
        loom__sv_free(&target);
        return rc;
    }
    loom_buf b = {0};
    loom__buf_init(&b, d->a);
    if (target.n == 0)
        reserve_estimate(d, &b);
    rc = loom__encode_state(d, &target, &b);
    bool pds = !loom__ds_empty(&d->pending_ds);
    if (!rc && (pds || d->pending.len)) {
        /* mergeUpdates([state, pendingDs, diffUpdate(pending, sv)]) */
        loom_buf pd = {0}, diff = {0};
        loom__buf_init(&pd, d->a);
        loom__buf_init(&diff, d->a);
        loom__rupdate ups[3];
        const loom__rupdate *pu[3];
        size_t n = 0;
        rc = loom__update_parse(d->a, b.data, b.len, 0, &ups[n], NULL);
        if (!rc)
            pu[n] = &ups[n], n++;
        if (!rc && pds) {
            if (!(rc = loom__write_varuint(&pd, 0)) &&
                !(rc = loom__ds_write(&pd, &d->pending_ds)))
                rc =
                    loom__update_parse(d->a, pd.data, pd.len, 1, &ups[n], NULL);
            if (!rc)
                pu[n] = &ups[n], n++;
        }
        if (!rc && d->pending.len) {
            loom__rupdate pend;
            rc = loom__update_parse(d->a, d->pending.data, d->pending.len, 2,
                                    &pend, NULL);
            if (!rc) {
                rc = loom__diff_parsed(&pend, &target, &diff);
                loom__rupdate_free(&pend);
            }
            if (!rc)
                rc = loom__update_parse(d->a, diff.data, diff.len, 2, &ups[n],
                                        NULL);
            if (!rc)
                pu[n] = &ups[n], n++;
        }
        loom_buf merged = {0};
        loom__buf_init(&merged, d->a);
        if (!rc)
            rc = loom__merge_parsed(pu, n, &merged);
        for (size_t i = 0; i < n; i++)
            loom__rupdate_free(&ups[i]);
        loom_buf_free(&pd);
        loom_buf_free(&diff);
        loom_buf_free(&b);
        b = merged;
    }
    loom__sv_free(&target);
    if (rc) {
        loom_buf_free(&b);
        return rc;
    }
    if (b.cap > 65536 && b.cap / 2 > b.len) {
        /* the guess was far too large: give the rest back (a shrinking
         * realloc moves nothing; on failure the buffer stays as it is) */
        uint8_t *p = loom__realloc(b.alloc, b.data, b.cap, b.len);
        if (p) {
            b.data = p;
            b.cap = b.len;
        }
    }
    *out = b;
    return LOOM_OK;
}
