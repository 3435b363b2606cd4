/*
 * ds.c: delete sets (client -> clock ranges) and their v1 encoding.
 *
 * Clients are kept sorted by descending id, the order every yjs writer uses,
 * so writing needs no sort and lookups are binary searches. Ranges of a
 * client stay in the order they were added until loom__ds_normalize sorts and
 * merges them, because diffUpdate re-encodes a delete set exactly as read.
 *
 * Reading follows yjs readDeleteSet: a client listed with no ranges is
 * skipped, a client listed twice gets the ranges of both entries in order,
 * and zero-length ranges are kept (yjs keeps and re-encodes them, and applying
 * one can split an item).
 */
#include <stdlib.h>
#include <string.h>

#include "codec/codec_int.h"


void loom__stable_sort(
    void *base, size_t n, size_t size, loom__cmp_fn cmp, void *tmp)
{
    /* Bottom-up merge sort between base and tmp; stable, O(n log n). */
    uint8_t *src = base, *dst = tmp;
    if (n < 2) {
        return;
    }
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (cmp(src + j * size, src + i * size) < 0) {
                    memcpy(dst + k++ * size, src + j++ * size, size);
                } else {
                    memcpy(dst + k++ * size, src + i++ * size, size);
                }
            }
            if (i < mid) {
                memcpy(dst + k * size, src + i * size, (mid - i) * size);
                k += mid - i;
            }
            if (j < hi) {
                memcpy(dst + k * size, src + j * size, (hi - j) * size);
            }
        }
        uint8_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != base) {
        memcpy(base, src, n * size);
    }
}

void loom__ds_init(loom__ds *ds, const loom_allocator *a)
{
    ds->c = NULL;
    ds->n = 0;
    ds->cap = 0;
    ds->a = a;
    ds->spare = NULL;
    ds->spare_cap = 0;
}

static void client_free(const loom_allocator *a, loom__ds_client *c)
{
    loom__free(a, c->r, c->cap * sizeof(*c->r));
    c->r = NULL;
    c->n = 0;
    c->cap = 0;
}

void loom__ds_free(loom__ds *ds)
{
    if (!ds) {
        return;
    }
    for (size_t i = 0; i < ds->n; i++) {
        client_free(ds->a, &ds->c[i]);
    }
    loom__free(ds->a, ds->c, ds->cap * sizeof(*ds->c));
    ds->c = NULL;
    ds->n = 0;
    ds->cap = 0;
    loom__free(ds->a, ds->spare, ds->spare_cap * sizeof(*ds->spare));
    ds->spare = NULL;
    ds->spare_cap = 0;
}

void loom__ds_clear(loom__ds *ds)
{
    for (size_t i = 0; i < ds->n; i++) {
        /* the largest ranges vector is kept for the next client added (a
         * transaction that deletes, one client: no free, no allocation) */
        loom__ds_client *c = &ds->c[i];
        if (c->cap > ds->spare_cap) {
            if (ds->spare) {
                loom__free(ds->a, ds->spare,
                           ds->spare_cap * sizeof(*ds->spare));
            }
            ds->spare = c->r;
            ds->spare_cap = c->cap;
        } else if (c->r) {
            loom__free(ds->a, c->r, c->cap * sizeof(*c->r));
        }
        c->r = NULL;
        c->n = 0;
        c->cap = 0;
    }
    ds->n = 0;
}

/* Index of the first client whose id is <= client (clients descend). */
static size_t client_lower(const loom__ds *ds, uint64_t client)
{
    size_t lo = 0, hi = ds->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ds->c[mid].client > client) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

const loom__ds_client *loom__ds_find(const loom__ds *ds, uint64_t client)
{
    size_t i = client_lower(ds, client);
    return i < ds->n && ds->c[i].client == client ? &ds->c[i] : NULL;
}

static int range_push(const loom_allocator *a,
                      loom__ds_client *c,
                      uint64_t clock,
                      uint64_t len)
{
    int rc =
        loom__vec_reserve(a, (void **)&c->r, &c->cap, c->n + 1, sizeof(*c->r));
    if (rc) {
        return rc;
    }
    c->r[c->n].clock = clock;
    c->r[c->n].len = len;
    c->n++;
    return LOOM_OK;
}

int loom__ds_add(loom__ds *ds, uint64_t client, uint64_t clock, uint64_t len)
{
    if (len == 0) {
        return LOOM_OK;
    }
    if (!ds->n && ds->spare && ds->cap) {
        /* a transaction's first delete, the vectors kept from the last */
        loom__ds_client *c = &ds->c[0];
        c->client = client;
        c->r = ds->spare;
        c->n = 1;
        c->cap = ds->spare_cap;
        c->r[0].clock = clock;
        c->r[0].len = len;
        ds->spare = NULL;
        ds->spare_cap = 0;
        ds->n = 1;
        return LOOM_OK;
    }
    size_t i = client_lower(ds, client);
    if (i < ds->n && ds->c[i].client == client) {
        return range_push(ds->a, &ds->c[i], clock, len);
    }
    /* A new client: make room first so a failure changes nothing. */
    loom__ds_client nc = {client, ds->spare, 0, ds->spare_cap};
    ds->spare = NULL;
    ds->spare_cap = 0;
    int rc = range_push(ds->a, &nc, clock, len);
    if (rc) {
        return rc;
    }
    rc = loom__vec_reserve(ds->a, (void **)&ds->c, &ds->cap, ds->n + 1,
                           sizeof(*ds->c));
    if (rc) {
        client_free(ds->a, &nc);
        return rc;
    }
    if (i < ds->n) {
        memmove(&ds->c[i + 1], &ds->c[i], (ds->n - i) * sizeof(*ds->c));
    }
    ds->c[i] = nc;
    ds->n++;
    return LOOM_OK;
}

int loom__ds_add_joined(loom__ds *ds,
                        uint64_t client,
                        uint64_t clock,
                        uint64_t len)
{
    size_t i = client_lower(ds, client);
    if (len == 0 || i == ds->n || ds->c[i].client != client) {
        return loom__ds_add(ds, client, clock, len);
    }
    loom__ds_client *c = &ds->c[i];
    if (c->n && c->r[c->n - 1].clock + c->r[c->n - 1].len == clock) {
        c->r[c->n - 1].len += len;
        return LOOM_OK;
    }
    return range_push(ds->a, c, clock, len);
}

static int range_cmp(const void *pa, const void *pb)
{
    const loom__ds_range *x = pa, *y = pb;
    return x->clock < y->clock ? -1 : x->clock > y->clock;
}

void loom__ds_normalize(loom__ds *ds)
{
    if (!ds->n)
        return;
    size_t out = 0;
    for (size_t i = 0; i < ds->n; i++) {
        loom__ds_client *c = &ds->c[i];
        if (c->n > 1) {
            /* The merged result does not depend on the order of equal
             * clocks, so an unstable sort is fine here. Ranges already in
             * order (a transaction's overwrites of map values when a map is
             * loaded: 100,000 of them) skip the sort. */
            size_t in_order = 1;
            while (in_order < c->n &&
                   c->r[in_order - 1].clock <= c->r[in_order].clock) {
                in_order++;
            }
            if (in_order < c->n) {
                qsort(c->r, c->n, sizeof(*c->r), range_cmp);
            }
            size_t j = 1;
            for (size_t k = 1; k < c->n; k++) {
                loom__ds_range *left = &c->r[j - 1];
                const loom__ds_range *right = &c->r[k];
                if (left->clock + left->len >= right->clock) {
                    uint64_t end = right->clock + right->len;
                    if (end - left->clock > left->len) {
                        left->len = end - left->clock;
                    }
                } else {
                    c->r[j++] = *right;
                }
            }
            c->n = j;
        }
        if (c->n == 0) {
            client_free(ds->a, c);
            continue;
        }
        ds->c[out++] = *c;
    }
    ds->n = out;
}

/* First step of merge_into: grows the range arrays of the clients dst and
 * src share and counts the clients only src has. */
static int reserve_shared(loom__ds *dst, const loom__ds *src, size_t *fresh)
{
    size_t i = 0;
    *fresh = 0;
    for (size_t j = 0; j < src->n; j++) {
        const loom__ds_client *sc = &src->c[j];
        while (i < dst->n && dst->c[i].client > sc->client) {
            i++;
        }
        if (i < dst->n && dst->c[i].client == sc->client) {
            loom__ds_client *dc = &dst->c[i];
            int rc = loom__vec_reserve(dst->a, (void **)&dc->r, &dc->cap,
                                       dc->n + sc->n, sizeof(*dc->r));
            if (rc) {
                return rc;
            }
        } else if (sc->n > 0) {
            (*fresh)++;
        }
    }
    return LOOM_OK;
}

/* Copies the clients only src has (descending) to the front of a new client
 * array with room for dst's clients as well. */
static int copy_fresh(const loom__ds *dst,
                      const loom__ds *src,
                      size_t fresh,
                      loom__ds_client **out)
{
    size_t cap = dst->n + fresh;
    loom__ds_client *m = loom__calloc(dst->a, cap * sizeof(*m));
    if (!m) {
        return LOOM_ENOMEM;
    }
    size_t k = 0;
    for (size_t j = 0; j < src->n; j++) {
        const loom__ds_client *sc = &src->c[j];
        if (sc->n == 0 || loom__ds_find(dst, sc->client)) {
            continue;
        }
        loom__ds_range *r = loom__memdup(dst->a, sc->r, sc->n * sizeof(*r));
        if (!r) {
            for (size_t q = 0; q < k; q++) {
                client_free(dst->a, &m[q]);
            }
            loom__free(dst->a, m, cap * sizeof(*m));
            return LOOM_ENOMEM;
        }
        m[k].client = sc->client;
        m[k].r = r;
        m[k].n = sc->n;
        m[k].cap = sc->n;
        k++;
    }
    *out = m;
    return LOOM_OK;
}

/* Appends the ranges of the clients dst and src share (room reserved). */
static void append_shared(loom__ds *dst, const loom__ds *src)
{
    size_t i = 0;
    for (size_t j = 0; j < src->n; j++) {
        const loom__ds_client *sc = &src->c[j];
        while (i < dst->n && dst->c[i].client > sc->client) {
            i++;
        }
        if (i < dst->n && dst->c[i].client == sc->client && sc->n > 0) {
            loom__ds_client *dc = &dst->c[i];
            memcpy(dc->r + dc->n, sc->r, sc->n * sizeof(*dc->r));
            dc->n += sc->n;
        }
    }
}

/*
 * Adds the ranges of `src` (clients descending) to dst. Everything that can
 * fail is allocated before dst changes, so on LOOM_ENOMEM dst holds what it
 * held (possibly with more capacity).
 */
int loom__ds_merge_into(loom__ds *dst, const loom__ds *src)
{
    size_t fresh;
    int rc = reserve_shared(dst, src, &fresh);
    if (rc) {
        return rc;
    }
    loom__ds_client *merged = NULL;
    if (fresh > 0) {
        rc = copy_fresh(dst, src, fresh, &merged);
        if (rc) {
            return rc;
        }
    }
    append_shared(dst, src);
    if (fresh == 0) {
        return LOOM_OK;
    }
    /* Interleave dst's clients with the new ones (merged[0..fresh)), from
     * the back so that merged can be filled in place. */
    size_t a = dst->n, b = fresh, out = dst->n + fresh;
    while (b > 0) {
        if (a > 0 && dst->c[a - 1].client < merged[b - 1].client) {
            merged[--out] = dst->c[--a];
        } else {
            merged[--out] = merged[--b];
        }
    }
    while (a > 0) {
        merged[--out] = dst->c[--a];
    }
    loom__free(dst->a, dst->c, dst->cap * sizeof(*dst->c));
    dst->c = merged;
    dst->n += fresh;
    dst->cap = dst->n;
    return LOOM_OK;
}

bool loom__ds_contains(const loom__ds *ds, uint64_t client, uint64_t clock)
{
    const loom__ds_client *c = loom__ds_find(ds, client);
    if (!c) {
        return false;
    }
    /* The last range starting at or before clock. */
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->r[mid].clock <= clock) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo > 0 && clock - c->r[lo - 1].clock < c->r[lo - 1].len;
}

bool loom__ds_equal(const loom__ds *a, const loom__ds *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        const loom__ds_client *x = &a->c[i], *y = &b->c[i];
        if (x->client != y->client || x->n != y->n) {
            return false;
        }
        for (size_t k = 0; k < x->n; k++) {
            if (x->r[k].clock != y->r[k].clock || x->r[k].len != y->r[k].len) {
                return false;
            }
        }
    }
    return true;
}

bool loom__ds_empty(const loom__ds *ds)
{
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->c[i].n > 0) {
            return false;
        }
    }
    return true;
}

int loom__ds_write(loom_buf *b, const loom__ds *ds)
{
    /* room for every varuint first (an update per keystroke writes one
     * client's one range), then written in place */
    size_t n = 0, ranges = 0;
    for (size_t i = 0; i < ds->n; i++) {
        n += ds->c[i].n > 0;
        ranges += ds->c[i].n;
    }
    if (ranges > (SIZE_MAX / 10 - 1 - 2 * n) / 2) {
        return LOOM_ENOMEM;
    }
    int rc = loom__buf_reserve(b, 10 * (1 + 2 * n + 2 * ranges));
    if (rc) {
        return rc;
    }
    uint8_t *p = loom__put_varuint(b->data + b->len, n);
    for (size_t i = 0; i < ds->n; i++) {
        const loom__ds_client *c = &ds->c[i];
        if (c->n == 0) {
            continue;
        }
        p = loom__put_varuint(p, c->client);
        p = loom__put_varuint(p, c->n);
        for (size_t k = 0; k < c->n; k++) {
            p = loom__put_varuint(p, c->r[k].clock);
            p = loom__put_varuint(p, c->r[k].len);
        }
    }
    b->len = (size_t)(p - b->data);
    return LOOM_OK;
}

static int client_cmp_desc(const void *pa, const void *pb)
{
    const loom__ds_client *x = pa, *y = pb;
    return x->client > y->client ? -1 : x->client < y->client;
}

/*
 * Puts clients read in wire order into descending order, joining the ranges
 * of a client listed twice (first entry first, as yjs's Map does). The sort
 * is stable so that order is kept; an already sorted array (what yjs writes)
 * costs one pass.
 */
static int sort_clients(const loom_allocator *a, loom__ds_client *c, size_t *pn)
{
    size_t n = *pn;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++) {
        sorted = c[i - 1].client > c[i].client;
    }
    if (sorted) {
        return LOOM_OK;
    }
    loom__ds_client *tmp = loom__malloc(a, n * sizeof(*tmp));
    if (!tmp) {
        return LOOM_ENOMEM;
    }
    loom__stable_sort(c, n, sizeof(*c), client_cmp_desc, tmp);
    loom__free(a, tmp, n * sizeof(*tmp));
    /* Join duplicates: grow first, then move ranges, so ENOMEM loses nothing. */
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (out > 0 && c[out - 1].client == c[i].client) {
            loom__ds_client *d = &c[out - 1];
            int rc = loom__vec_reserve(a, (void **)&d->r, &d->cap,
                                       d->n + c[i].n, sizeof(*d->r));
            if (rc) {
                /* Keep the array consistent for the caller's cleanup. */
                memmove(&c[out], &c[i], (n - i) * sizeof(*c));
                *pn = out + (n - i);
                return rc;
            }
            memcpy(d->r + d->n, c[i].r, c[i].n * sizeof(*d->r));
            d->n += c[i].n;
            client_free(a, &c[i]);
        } else {
            c[out++] = c[i];
        }
    }
    *pn = out;
    return LOOM_OK;
}

/* Reads one client entry and appends it, unsorted, to `into` (entries
 * without ranges are dropped, as yjs does). */
static int read_entry(loom__reader *r, loom__ds *into)
{
    uint64_t client, nranges;
    if (loom__read_varuint7(r, &client)) {
        return r->err;
    }
    size_t at = r->pos;
    if (loom__read_varuint7(r, &nranges)) {
        return r->err;
    }
    if (nranges == 0) {
        return LOOM_OK;
    }
    /* Each range takes at least two bytes; checked before allocating. */
    if (nranges > loom__reader_left(r) / 2) {
        return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                 "delete set range count too large");
    }
    int rc = loom__vec_reserve(into->a, (void **)&into->c, &into->cap,
                               into->n + 1, sizeof(*into->c));
    if (rc) {
        return rc;
    }
    loom__ds_client *dc = &into->c[into->n];
    dc->r = loom__malloc(into->a, (size_t)nranges * sizeof(*dc->r));
    if (!dc->r) {
        return LOOM_ENOMEM;
    }
    dc->client = client;
    dc->n = 0;
    dc->cap = (size_t)nranges;
    into->n++;
    for (uint64_t k = 0; k < nranges; k++) {
        uint64_t clock, len;
        at = r->pos;
        if (loom__read_varuint7(r, &clock) || loom__read_varuint7(r, &len)) {
            return r->err;
        }
        if (clock + len > LOOM__CLOCK_END_MAX) {
            return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                     "delete set range past 2^53-1");
        }
        dc->r[dc->n].clock = clock;
        dc->r[dc->n].len = len;
        dc->n++;
    }
    return LOOM_OK;
}

int loom__ds_read(loom__reader *r, loom__ds *ds)
{
    loom__ds tmp;
    loom__ds_init(&tmp, ds->a);
    uint64_t nclients;
    size_t at = r->pos;
    int rc = loom__read_varuint7(r, &nclients);
    if (rc) {
        return rc;
    }
    /* Each client entry takes at least two bytes (id and range count). */
    if (nclients > loom__reader_left(r) / 2) {
        return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                 "delete set client count too large");
    }
    for (uint64_t i = 0; i < nclients && !rc; i++) {
        rc = read_entry(r, &tmp);
    }
    if (!rc) {
        rc = sort_clients(tmp.a, tmp.c, &tmp.n);
    }
    if (!rc && ds->n == 0) {
        loom__ds_free(ds);
        *ds = tmp;
        return LOOM_OK;
    }
    if (!rc) {
        rc = loom__ds_merge_into(ds, &tmp);
    }
    loom__ds_free(&tmp);
    return rc;
}
