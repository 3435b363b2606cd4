/*
 * codec_int.h: private to src/codec. The pieces that merge.c, diff.c and
 * update.c share: a view of a struct that may have been sliced or grown
 * (what yjs's lazy reader hands out and mergeUpdates mutates), cursors that
 * walk a parsed update struct by struct, and the lazy block writer (yjs
 * LazyStructWriter) that groups consecutive structs of one client into a
 * block and only knows the block counts at the end.
 */
#ifndef LOOM_CODEC_INT_H
#define LOOM_CODEC_INT_H

#include "codec/codec.h"

/* Where a clock range (a struct, a delete range) may end at most. Ends stay
 * readable varUints (2^53-1, lib0's largest), so no state, state vector
 * entry or range merged from them is ever one that loom or lib0 refuses:
 * a range (1, 2^53-1) merged with (0, 1) would otherwise write a length of
 * 2^53. */
#define LOOM__CLOCK_END_MAX LOOM__MAX_SAFE_INT

/* A stable merge sort; tmp holds n elements. */
typedef int (*loom__cmp_fn)(const void *, const void *);
void loom__stable_sort(
    void *base, size_t n, size_t size, loom__cmp_fn cmp, void *tmp);

/* What a struct is to the update algebra; the content kind does not matter. */
enum { LOOM__KIND_GC = 0, LOOM__KIND_ITEM = 1, LOOM__KIND_SKIP = 2 };

/*
 * A struct as the update algebra sees it. `src` is the block of the parsed
 * update `u` holding the struct it stands for, struct `si` of it (NULL for a
 * Skip made up to fill a gap); `off` is how many clock
 * units of src were cut off the front (an Item sliced by mergeUpdates). GC and
 * Skip views carry their own length because mergeUpdates grows them.
 */
typedef struct loom__view {
    uint8_t kind;
    uint64_t client, clock, len;
    const loom__rupdate *u;
    const loom__rblock *src;
    size_t si;
    uint64_t off;
} loom__view;

/* A position in a parsed update, read like yjs's LazyStructReader. */
typedef struct loom__cursor {
    const loom__rupdate *u;
    size_t bi, si;     /* the next struct to read */
    bool filter_skips; /* mergeUpdates drops Skips on input */
    bool has;          /* curr is valid */
    loom__view curr;
} loom__cursor;

void loom__cursor_init(loom__cursor *c,
                       const loom__rupdate *u,
                       bool filter_skips);
/* Moves to the next struct (has = false at the end). */
void loom__cursor_next(loom__cursor *c);

/* LazyStructWriter: struct bytes go to `body`; a block is closed when the
 * client changes, and the update is assembled at the end. */
typedef struct loom__lazy_block {
    size_t start, end; /* byte range in body: client, clock, structs */
    uint64_t n;        /* structs */
} loom__lazy_block;

typedef struct loom__lazy_writer {
    loom_buf body;
    loom__lazy_block *blocks;
    size_t nblocks, cap;
    uint64_t client;  /* client of the open block */
    uint64_t written; /* structs in the open block (0: none open) */
    size_t start;     /* where the open block starts in body */
    const loom_allocator *a;
} loom__lazy_writer;

void loom__lazy_init(loom__lazy_writer *w, const loom_allocator *a);
void loom__lazy_free(loom__lazy_writer *w);
/* writeStructToLazyStructWriter: writes v from `offset` clock units on. A new
 * block starts at clock v->clock + offset when the client changes. */
int loom__lazy_write(loom__lazy_writer *w,
                     const loom__view *v,
                     uint64_t offset);
/* Appends the struct section (block count, blocks) and then the delete set
 * to out. */
int loom__lazy_finish(loom__lazy_writer *w, const loom__ds *ds, loom_buf *out);

#endif
