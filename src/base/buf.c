/*
 * buf.c: growable byte buffers (loom_buf), the output type of every encoder.
 * Capacity doubles so appending byte by byte stays amortised O(1).
 */
#include <string.h>

#include "base/base.h"

void loom__buf_init(loom_buf *b, const loom_allocator *a)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->alloc = a;
}

void loom_buf_free(loom_buf *b)
{
    if (!b) {
        return;
    }
    loom__free(b->alloc, b->data, b->cap);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int loom__buf_reserve(loom_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len) {
        return LOOM_OK;
    }
    if (extra > SIZE_MAX - b->len) {
        return LOOM_ENOMEM;
    }
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    uint8_t *p = loom__realloc(b->alloc, b->data, b->cap, cap);
    if (!p) {
        return LOOM_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return LOOM_OK;
}

int loom__buf_append(loom_buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return LOOM_OK;
    }
    if (n <= b->cap - b->len) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return LOOM_OK;
    }
    int rc = loom__buf_reserve(b, n);
    if (rc) {
        return rc;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return LOOM_OK;
}

int loom__buf_push(loom_buf *b, uint8_t byte)
{
    if (b->len == b->cap) {
        int rc = loom__buf_reserve(b, 1);
        if (rc) {
            return rc;
        }
    }
    b->data[b->len++] = byte;
    return LOOM_OK;
}
