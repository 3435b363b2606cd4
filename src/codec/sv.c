/*
 * sv.c: state vectors (client -> next clock) and their v1 encoding.
 *
 * Entries are kept sorted by descending client id, the order yjs writes, so
 * lookups are binary searches and writing needs no sort. Reading keeps the
 * last entry of a client listed twice (yjs fills a Map) and keeps clock 0
 * entries, which only writing drops.
 */
#include <string.h>

#include "codec/codec_int.h"

void loom__sv_init(loom__sv *sv, const loom_allocator *a)
{
    sv->e = NULL;
    sv->n = 0;
    sv->cap = 0;
    sv->a = a;
}

void loom__sv_free(loom__sv *sv)
{
    if (!sv) {
        return;
    }
    loom__free(sv->a, sv->e, sv->cap * sizeof(*sv->e));
    sv->e = NULL;
    sv->n = 0;
    sv->cap = 0;
}

/* Index of the first entry whose client is <= client. */
static size_t lower(const loom__sv *sv, uint64_t client)
{
    size_t lo = 0, hi = sv->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sv->e[mid].client > client) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

int loom__sv_set(loom__sv *sv, uint64_t client, uint64_t clock)
{
    size_t i = lower(sv, client);
    if (i < sv->n && sv->e[i].client == client) {
        sv->e[i].clock = clock;
        return LOOM_OK;
    }
    int rc = loom__vec_reserve(sv->a, (void **)&sv->e, &sv->cap, sv->n + 1,
                               sizeof(*sv->e));
    if (rc) {
        return rc;
    }
    memmove(&sv->e[i + 1], &sv->e[i], (sv->n - i) * sizeof(*sv->e));
    sv->e[i].client = client;
    sv->e[i].clock = clock;
    sv->n++;
    return LOOM_OK;
}

uint64_t loom__sv_get(const loom__sv *sv, uint64_t client)
{
    size_t i = lower(sv, client);
    return i < sv->n && sv->e[i].client == client ? sv->e[i].clock : 0;
}

static int entry_cmp_desc(const void *pa, const void *pb)
{
    const loom__sv_entry *x = pa, *y = pb;
    return x->client > y->client ? -1 : x->client < y->client;
}

int loom__sv_read(loom__reader *r, loom__sv *sv)
{
    uint64_t n;
    size_t at = r->pos;
    int rc = loom__read_varuint(r, &n);
    if (rc) {
        return rc;
    }
    /* Each entry takes at least two bytes; checked before allocating. */
    if (n > loom__reader_left(r) / 2) {
        return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                 "state vector entry count too large");
    }
    size_t cnt = (size_t)n;
    loom__sv_entry *e = loom__malloc(sv->a, cnt * sizeof(*e));
    if (!e) {
        return LOOM_ENOMEM;
    }
    bool sorted = true;
    for (size_t i = 0; i < cnt; i++) {
        if (loom__read_varuint(r, &e[i].client) ||
            loom__read_varuint(r, &e[i].clock)) {
            loom__free(sv->a, e, cnt * sizeof(*e));
            return r->err;
        }
        if (i > 0 && e[i - 1].client <= e[i].client) {
            sorted = false;
        }
    }
    if (!sorted) {
        loom__sv_entry *tmp = loom__malloc(sv->a, cnt * sizeof(*tmp));
        if (!tmp) {
            loom__free(sv->a, e, cnt * sizeof(*e));
            return LOOM_ENOMEM;
        }
        loom__stable_sort(e, cnt, sizeof(*e), entry_cmp_desc, tmp);
        loom__free(sv->a, tmp, cnt * sizeof(*tmp));
        /* Duplicates are adjacent and in wire order: keep the last. */
        size_t out = 0;
        for (size_t i = 0; i < cnt; i++) {
            if (out > 0 && e[out - 1].client == e[i].client) {
                e[out - 1].clock = e[i].clock;
            } else {
                e[out++] = e[i];
            }
        }
        memset(&e[out], 0, (cnt - out) * sizeof(*e));
        n = out;
    }
    if (sv->n == 0) {
        loom__free(sv->a, sv->e, sv->cap * sizeof(*sv->e));
        sv->e = e;
        sv->n = (size_t)n;
        sv->cap = cnt;
        return LOOM_OK;
    }
    /* Merging into a non-empty vector: reserve first, then set (cannot fail). */
    rc = loom__vec_reserve(sv->a, (void **)&sv->e, &sv->cap, sv->n + (size_t)n,
                           sizeof(*sv->e));
    for (size_t i = 0; i < (size_t)n && !rc; i++) {
        rc = loom__sv_set(sv, e[i].client, e[i].clock);
    }
    loom__free(sv->a, e, cnt * sizeof(*e));
    return rc;
}

int loom__sv_write(loom_buf *b, const loom__sv *sv)
{
    size_t n = 0;
    for (size_t i = 0; i < sv->n; i++) {
        n += sv->e[i].clock > 0;
    }
    int rc = loom__write_varuint(b, n);
    for (size_t i = 0; i < sv->n && !rc; i++) {
        if (sv->e[i].clock == 0) {
            continue;
        }
        rc = loom__write_varuint(b, sv->e[i].client);
        if (!rc) {
            rc = loom__write_varuint(b, sv->e[i].clock);
        }
    }
    return rc;
}
