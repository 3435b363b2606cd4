/*
 * testalloc.c: the counting, failing allocator of testalloc.h.
 */
#include "testalloc.h"

#include <stdlib.h>
#include <string.h>

/* A header in front of each block keeps the size it was allocated with. */
typedef union hdr {
    size_t size;
    max_align_t align;
} hdr;

static void *ta_malloc(void *ud, size_t n)
{
    test_alloc *c = ud;
    c->calls++;
    if (c->fail_at && c->calls == c->fail_at)
        return NULL;
    hdr *h = malloc(sizeof(hdr) + (n ? n : 1));
    if (!h)
        return NULL;
    h->size = n;
    c->live_blocks++;
    c->live_bytes += (long long)n;
    return h + 1;
}

static void *ta_realloc(void *ud, void *p, size_t old_n, size_t new_n)
{
    test_alloc *c = ud;
    if (!p)
        return ta_malloc(ud, new_n);
    c->calls++;
    if (c->fail_at && c->calls == c->fail_at)
        return NULL;
    hdr *h = (hdr *)p - 1;
    if (h->size != old_n)
        c->size_mismatches++;
    hdr *q = realloc(h, sizeof(hdr) + (new_n ? new_n : 1));
    if (!q)
        return NULL;
    q->size = new_n;
    c->live_bytes += (long long)new_n - (long long)old_n;
    return q + 1;
}

static void ta_free(void *ud, void *p, size_t n)
{
    test_alloc *c = ud;
    if (!p)
        return;
    hdr *h = (hdr *)p - 1;
    if (h->size != n)
        c->size_mismatches++;
    c->live_blocks--;
    c->live_bytes -= (long long)n;
    free(h);
}

loom_allocator test_alloc_init(test_alloc *c)
{
    memset(c, 0, sizeof(*c));
    loom_allocator a = {ta_malloc, ta_realloc, ta_free, c};
    return a;
}
