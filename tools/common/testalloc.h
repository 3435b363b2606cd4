/*
 * testalloc.h: the allocator the tests pass to the library to count and to
 * fail allocations. It counts live blocks and bytes, fails the Nth call
 * (malloc or realloc) when asked, and keeps each block's size in a header so
 * that a free or realloc naming another size than the block has is caught
 * (size_mismatches), which plain counting would average away.
 */
#ifndef LOOM_TOOLS_TESTALLOC_H
#define LOOM_TOOLS_TESTALLOC_H

#include "loom/common.h"

typedef struct test_alloc {
    long calls;           /* malloc + realloc calls so far */
    long fail_at;         /* fail this call (1-based); 0: never */
    long live_blocks;     /* blocks not yet freed */
    long long live_bytes; /* bytes not yet freed, as the library says */
    long size_mismatches; /* frees/reallocs naming the wrong size */
} test_alloc;

/* Resets the counters and returns hooks bound to `c`. */
loom_allocator test_alloc_init(test_alloc *c);

#endif
