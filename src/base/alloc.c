/*
 * alloc.c: the only place in src/ that calls the libc allocator. Every
 * allocation of the library goes through loom__malloc and friends with the
 * loom_allocator of the object being built (NULL meaning libc), so an
 * embedder can count or cap memory per document.
 *
 * Zero-byte requests are turned into one-byte requests, both when allocating
 * and when freeing, so that NULL always means failure and a size-tracking
 * allocator sees matching sizes.
 *
 * Also the pool of small blocks (loom__pool) that documents take items and
 * value bytes from.
 */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void *libc_malloc(void *ud, size_t size)
{
    (void)ud;
    return malloc(size);
}

static void *libc_realloc(void *ud, void *ptr, size_t old_size, size_t new_size)
{
    (void)ud;
    (void)old_size;
    return realloc(ptr, new_size);
}

static void libc_free(void *ud, void *ptr, size_t size)
{
    (void)ud;
    (void)size;
    free(ptr);
}

static const loom_allocator libc_allocator = {libc_malloc, libc_realloc,
                                              libc_free, NULL};

const loom_allocator *loom_allocator_default(void)
{
    return &libc_allocator;
}

static size_t norm(size_t n)
{
    return n ? n : 1;
}

void *loom__malloc(const loom_allocator *a, size_t n)
{
    if (!a) {
        a = &libc_allocator;
    }
    return a->malloc_fn(a->ud, norm(n));
}

void *loom__calloc(const loom_allocator *a, size_t n)
{
    void *p = loom__malloc(a, n);
    if (p) {
        memset(p, 0, norm(n));
    }
    return p;
}

void *
loom__realloc(const loom_allocator *a, void *p, size_t old_n, size_t new_n)
{
    if (!p) {
        return loom__malloc(a, new_n);
    }
    if (!a) {
        a = &libc_allocator;
    }
    if (a->realloc_fn) {
        return a->realloc_fn(a->ud, p, norm(old_n), norm(new_n));
    }
    /* An embedder may leave realloc out; emulate it (the old block is kept
     * on failure, as realloc does). */
    void *q = a->malloc_fn(a->ud, norm(new_n));
    if (!q) {
        return NULL;
    }
    memcpy(q, p, old_n < new_n ? old_n : new_n);
    a->free_fn(a->ud, p, norm(old_n));
    return q;
}

void loom__free(const loom_allocator *a, void *p, size_t n)
{
    if (!p) {
        return;
    }
    if (!a) {
        a = &libc_allocator;
    }
    a->free_fn(a->ud, p, norm(n));
}

char *loom__strndup(const loom_allocator *a, const char *s, size_t n)
{
    if (n == SIZE_MAX) {
        return NULL;
    }
    char *p = loom__malloc(a, n + 1);
    if (!p) {
        return NULL;
    }
    if (n) {
        memcpy(p, s, n);
    }
    p[n] = '\0';
    return p;
}

void *loom__memdup(const loom_allocator *a, const void *p, size_t n)
{
    void *q = loom__malloc(a, n);
    if (q && n) {
        memcpy(q, p, n);
    }
    return q;
}

int loom__vec_grow(
    const loom_allocator *a, void **pv, size_t *pcap, size_t need, size_t elem)
{
    if (need <= *pcap) {
        return LOOM_OK;
    }
    size_t cap = *pcap ? *pcap : 4;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    return loom__vec_grow_exact(a, pv, pcap, cap, elem);
}

int loom__vec_grow_exact(
    const loom_allocator *a, void **pv, size_t *pcap, size_t need, size_t elem)
{
    if (need <= *pcap) {
        return LOOM_OK;
    }
    if (elem == 0) {
        return LOOM_EINVAL;
    }
    if (need > SIZE_MAX / elem) {
        return LOOM_ENOMEM;
    }
    void *v = loom__realloc(a, *pv, *pcap * elem, need * elem);
    if (!v) {
        return LOOM_ENOMEM;
    }
    *pv = v;
    *pcap = need;
    return LOOM_OK;
}

/* ---- pool of small blocks ---------------------------------------------- */

/* Chunks grow from 4 KiB to 64 KiB: a small document stays small. */
#define POOL_CHUNK_MIN 4096
#define POOL_CHUNK_MAX 65536

struct loom__pool_chunk {
    struct loom__pool_chunk *next;
    size_t size; /* bytes in data */
    /* data, 8-byte aligned, follows (the header is two words) */
};

static char *chunk_data(struct loom__pool_chunk *c)
{
    return (char *)(c + 1);
}

#ifdef LOOM__ASAN
int loom__pool_asan;

/* Before main and before any pool exists, so the choice holds for every
 * pool of the process. */
__attribute__((constructor)) static void pool_asan_mode(void)
{
    const char *v = getenv("LOOM_ASAN_POOL");
    loom__pool_asan = v && v[0] == '1' && v[1] == 0;
}
#endif

void loom__pool_init(loom__pool *p, const loom_allocator *a)
{
    memset(p, 0, sizeof(*p));
    p->a = a;
}

void loom__pool_destroy(loom__pool *p)
{
    while (p->chunks) {
        struct loom__pool_chunk *next = p->chunks->next;
        LOOM__UNPOISON(chunk_data(p->chunks), p->chunks->size);
        loom__free(p->a, p->chunks, sizeof(*p->chunks) + p->chunks->size);
        p->chunks = next;
    }
    loom__pool_init(p, p->a);
}

void *loom__pool_carve(loom__pool *p, size_t k)
{
    size_t n = (k + 1) * LOOM__POOL_GRAIN;
    struct loom__pool_chunk *c = p->chunks;
    if (!c || p->left < n) {
        size_t size = c ? c->size * 2 : POOL_CHUNK_MIN;
        if (size > POOL_CHUNK_MAX) {
            size = POOL_CHUNK_MAX;
        }
        struct loom__pool_chunk *nc = loom__malloc(p->a, sizeof(*nc) + size);
        if (!nc) {
            return NULL;
        }
        /* the old chunk's tail goes to the free list of its size class */
        size_t rest = p->left / LOOM__POOL_GRAIN;
        if (rest) {
            loom__pool_push(p, rest - 1, p->cur);
        }
        LOOM__POISON(chunk_data(nc), size);
        nc->size = size;
        nc->next = c;
        p->chunks = nc;
        p->cur = chunk_data(nc);
        p->left = size;
    }
    void *b = p->cur;
    p->cur += n;
    p->left -= n;
    return b;
}

void *loom__pool_realloc(loom__pool *p, void *b, size_t old_n, size_t new_n)
{
    if (!b) {
        return loom__pool_alloc(p, new_n);
    }
    bool old_small = LOOM__POOL_ON && old_n - 1 < LOOM__POOL_MAX;
    bool new_small = LOOM__POOL_ON && new_n - 1 < LOOM__POOL_MAX;
    if (old_small && new_small &&
        (old_n - 1) / LOOM__POOL_GRAIN == (new_n - 1) / LOOM__POOL_GRAIN) {
        return loom__pool_fit(
            b, ((new_n - 1) / LOOM__POOL_GRAIN + 1) * LOOM__POOL_GRAIN, new_n);
    }
    if (!old_small && !new_small) {
        return loom__realloc(p->a, b, old_n, new_n);
    }
    void *q = loom__pool_alloc(p, new_n);
    if (!q) {
        return NULL;
    }
    memcpy(q, b, old_n < new_n ? old_n : new_n);
    loom__pool_free(p, b, old_n);
    return q;
}
