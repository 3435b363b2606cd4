/*
 * alloc.c: the only place in src/ that calls the libc allocator. Every
 * allocation of the library goes through loom__malloc and friends with the
 * loom_allocator of the object being built (NULL meaning libc), so an
 * embedder can count or cap memory per document.
 *
 * Zero-byte requests are turned into one-byte requests, both when allocating
 * and when freeing, so that NULL always means failure and a size-tracking
 * allocator sees matching sizes.
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
    if (elem == 0) {
        return LOOM_EINVAL;
    }
    size_t cap = *pcap ? *pcap : 4;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    if (cap > SIZE_MAX / elem) {
        return LOOM_ENOMEM;
    }
    void *v = loom__realloc(a, *pv, *pcap * elem, cap * elem);
    if (!v) {
        return LOOM_ENOMEM;
    }
    *pv = v;
    *pcap = cap;
    return LOOM_OK;
}
