/*
 * base.h: the internal foundation every other layer builds on: allocation
 * through per-object hooks, growable byte buffers, the lib0 primitives
 * (varUint, varInt, varString, fixed-width big-endian numbers) for writing
 * and for bounded reading of untrusted bytes, UTF-8/UTF-16 helpers, and two
 * hash maps. libc only; no I/O.
 */
#ifndef LOOM_BASE_H
#define LOOM_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "loom/common.h"

/* LOOM__NOINLINE keeps a rarely taken path out of a hot caller, so the
 * caller stays a leaf that saves no registers; LOOM__INLINE puts a small
 * hot helper into each of its callers. */
#if defined(__GNUC__)
#    define LOOM__NOINLINE __attribute__((noinline))
#    define LOOM__INLINE   inline __attribute__((always_inline))
#else
#    define LOOM__NOINLINE
#    define LOOM__INLINE inline
#endif

/* Largest integer lib0 reads from a varUint (JS Number.MAX_SAFE_INTEGER). */
#define LOOM__MAX_SAFE_INT 9007199254740991ULL
/* Nesting limit for recursive decoders (Any values, JSON text). */
#define LOOM__MAX_DEPTH 256

/* ---- allocation ------------------------------------------------------- */

/* `a` NULL means libc. All return NULL on failure (never abort). */
void *loom__malloc(const loom_allocator *a, size_t n);
void *loom__calloc(const loom_allocator *a, size_t n); /* zeroed */
void *
loom__realloc(const loom_allocator *a, void *p, size_t old_n, size_t new_n);
void loom__free(const loom_allocator *a, void *p, size_t n);
/* Copies n bytes and a NUL; free with loom__free(a, p, n + 1). */
char *loom__strndup(const loom_allocator *a, const char *s, size_t n);
void *loom__memdup(const loom_allocator *a, const void *p, size_t n);

/* A pool of small blocks (up to LOOM__POOL_MAX bytes, in classes of 8
 * bytes) for one owner, a document: blocks are carved from chunks taken
 * from the owner's allocator (so a counting allocator sees them) and go
 * back to their class's free list when freed; chunks are returned only by
 * loom__pool_destroy. Larger blocks go to the allocator. A document makes
 * an item and its value's bytes per map set, and a malloc/free pair each
 * was a large part of the cost.
 *
 * Under AddressSanitizer every block is its own allocation, so that a use
 * after free is still caught after the block's memory is reused, unless
 * the process starts with LOOM_ASAN_POOL=1 in its environment: then the
 * pool is on as in a normal build and keeps every byte it has not handed
 * out poisoned (free blocks, the unused end of a chunk), so ASan also
 * checks the code that only runs with the pool (a map entry and its value
 * in one block, a block given back in parts). The tests run both ways. */
#define LOOM__POOL_GRAIN 8
#define LOOM__POOL_MAX   256
#if defined(__SANITIZE_ADDRESS__)
#    define LOOM__ASAN 1
#elif defined(__has_feature)
#    if __has_feature(address_sanitizer)
#        define LOOM__ASAN 1
#    endif
#endif
#ifdef LOOM__ASAN
#    include <sanitizer/asan_interface.h>
/* Read once, when the library is loaded (alloc.c), so that a pool never
 * changes its mind about where its blocks came from. */
extern int loom__pool_asan;
#    define LOOM__POOL_ON        loom__pool_asan
#    define LOOM__POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#    define LOOM__UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#    define LOOM__POOL_ON        1
#    define LOOM__POISON(p, n)   ((void)(p), (void)(n))
#    define LOOM__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

typedef struct loom__pool {
    const loom_allocator *a;
    void *free[LOOM__POOL_MAX / LOOM__POOL_GRAIN]; /* class k: (k+1)*8 bytes */
    struct loom__pool_chunk *chunks;               /* the newest first */
    char *cur; /* the newest chunk's unused bytes */
    size_t left;
} loom__pool;

void loom__pool_init(loom__pool *p, const loom_allocator *a);
/* Frees every chunk (every block of the pool at once). */
void loom__pool_destroy(loom__pool *p);
/* A block of class k carved from a new chunk. */
void *loom__pool_carve(loom__pool *p, size_t k);

/* Under ASan, makes exactly n bytes of block b (of class size `size`)
 * addressable, as malloc(n) would: a read past n is caught even where the
 * class's rounding leaves room. */
static inline void *loom__pool_fit(void *b, size_t size, size_t n)
{
#ifdef LOOM__ASAN
    if (b) {
        LOOM__POISON(b, size);
        LOOM__UNPOISON(b, n);
    }
#else
    (void)size;
    (void)n;
#endif
    return b;
}

/* Frees block b to the free list of class k. The link lives in the free
 * block's first word, poisoned with the rest of it under ASan (the two
 * takers, loom__pool_alloc and loom__pool_commit, unpoison it to read it). */
static inline void loom__pool_push(loom__pool *p, size_t k, void *b)
{
    LOOM__UNPOISON(b, sizeof(void *));
    *(void **)b = p->free[k];
    p->free[k] = b;
    LOOM__POISON(b, (k + 1) * LOOM__POOL_GRAIN);
}

/* n bytes (n >= 1), or NULL. */
static inline void *loom__pool_alloc(loom__pool *p, size_t n)
{
    if (LOOM__POOL_ON && n - 1 < LOOM__POOL_MAX) {
        size_t k = (n - 1) / LOOM__POOL_GRAIN;
        void *b = p->free[k];
        if (b) {
            LOOM__UNPOISON(b, sizeof(void *));
            p->free[k] = *(void **)b;
            return loom__pool_fit(b, (k + 1) * LOOM__POOL_GRAIN, n);
        }
        size_t size = (k + 1) * LOOM__POOL_GRAIN;
        if (p->left >= size) {
            b = p->cur;
            p->cur += size;
            p->left -= size;
            return loom__pool_fit(b, size, n);
        }
        return loom__pool_fit(loom__pool_carve(p, k), size, n);
    }
    return loom__malloc(p->a, n);
}
/* Frees a block of n bytes (the size it was allocated or resized with). */
static inline void loom__pool_free(loom__pool *p, void *b, size_t n)
{
    if (!b)
        return;
    if (LOOM__POOL_ON && n - 1 < LOOM__POOL_MAX) {
        loom__pool_push(p, (n - 1) / LOOM__POOL_GRAIN, b);
        return;
    }
    loom__free(p->a, b, n);
}
/* Is there a freed block that loom__pool_alloc(p, n) would hand out? */
static inline bool loom__pool_has_free(const loom__pool *p, size_t n)
{
    return LOOM__POOL_ON && n - 1 < LOOM__POOL_MAX &&
           p->free[(n - 1) / LOOM__POOL_GRAIN] != NULL;
}
/* The pool's unused end, *max bytes of it (at most LOOM__POOL_MAX), to be
 * written and then taken with loom__pool_commit before any other pool
 * call; NULL when the pool is off. A value is encoded there and taken at
 * its size, without a buffer to copy it from. */
static inline uint8_t *loom__pool_peek(const loom__pool *p, size_t *max)
{
    if (!LOOM__POOL_ON || !p->cur)
        return NULL;
    *max = p->left < LOOM__POOL_MAX ? p->left : LOOM__POOL_MAX;
    LOOM__UNPOISON(p->cur, *max);
    return (uint8_t *)p->cur;
}
/* Takes the n bytes (1 <= n <= *max of the peek) written at the peeked
 * position as a block of n bytes: moved to a free block of their class
 * when there is one, as loom__pool_alloc would have used it. (The class's
 * size fits in what was left: chunks and blocks are whole grains.) */
static inline void *loom__pool_commit(loom__pool *p, size_t n)
{
    size_t k = (n - 1) / LOOM__POOL_GRAIN;
    void *b = p->free[k];
    if (b) {
        LOOM__UNPOISON(b, sizeof(void *));
        p->free[k] = *(void **)b;
        LOOM__UNPOISON(b, n);
        memcpy(b, p->cur, n);
        LOOM__POISON(p->cur,
                     p->left < LOOM__POOL_MAX ? p->left : LOOM__POOL_MAX);
        return loom__pool_fit(b, (k + 1) * LOOM__POOL_GRAIN, n);
    }
    size_t size = (k + 1) * LOOM__POOL_GRAIN;
    b = p->cur;
    p->cur += size;
    p->left -= size;
    LOOM__POISON(p->cur, p->left < LOOM__POOL_MAX ? p->left : LOOM__POOL_MAX);
    return loom__pool_fit(b, size, n);
}
/* realloc for pool blocks: the old block stays on failure. */
void *loom__pool_realloc(loom__pool *p, void *b, size_t old_n, size_t new_n);

/* Grows a typed vector: ensures room for `need` elements of `elem` bytes in
 * *pv with capacity *pcap (doubling). Returns LOOM_OK or LOOM_ENOMEM. */
int loom__vec_grow(
    const loom_allocator *a, void **pv, size_t *pcap, size_t need, size_t elem);
/* The same, to exactly `need` elements: for a caller that knows the final
 * size (a loaded map's keys, a loaded client's structs), where doubling
 * would leave up to half the vector unused for the document's life. */
int loom__vec_grow_exact(
    const loom_allocator *a, void **pv, size_t *pcap, size_t need, size_t elem);
static inline int loom__vec_reserve(
    const loom_allocator *a, void **pv, size_t *pcap, size_t need, size_t elem)
{
    if (need <= *pcap)
        return LOOM_OK; /* the common case, inline */
    return loom__vec_grow(a, pv, pcap, need, elem);
}

/* ---- short byte runs ---------------------------------------------------- */

/* Keys, short strings and small payloads are mostly a few bytes: these
 * handle up to 16 with two overlapping loads instead of a byte loop or a
 * libc call. */

/* Are the len bytes at s (len <= 16) all ASCII? */
static inline bool loom__ascii_short(const void *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    if (len >= 8) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        memcpy(&y, p + len - 8, 8);
        return ((x | y) & 0x8080808080808080ULL) == 0;
    }
    if (len >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + len - 4, 4);
        return ((x | y) & 0x80808080U) == 0;
    }
    if (len == 0)
        return true;
    /* 1..3 bytes: the first, middle and last cover them all */
    return ((p[0] | p[len / 2] | p[len - 1]) & 0x80) == 0;
}

/* Copies the len bytes at s (len <= 16) to d when they are all ASCII and
 * returns true; else returns false, d untouched. One load of each byte
 * for both the check and the copy. */
static inline bool loom__copy_ascii_short(void *d, const void *s, size_t len)
{
    uint8_t *q = (uint8_t *)d;
    const uint8_t *p = (const uint8_t *)s;
    if (len >= 8) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        memcpy(&y, p + len - 8, 8);
        if ((x | y) & 0x8080808080808080ULL)
            return false;
        memcpy(q, &x, 8);
        memcpy(q + len - 8, &y, 8);
        return true;
    }
    if (len >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + len - 4, 4);
        if ((x | y) & 0x80808080U)
            return false;
        memcpy(q, &x, 4);
        memcpy(q + len - 4, &y, 4);
        return true;
    }
    if (len == 0)
        return true;
    uint8_t a = p[0], b = p[len / 2], c = p[len - 1];
    if ((a | b | c) & 0x80)
        return false;
    q[0] = a;
    q[len / 2] = b;
    q[len - 1] = c;
    return true;
}

/* memcpy for n <= 16 with two overlapping fixed-size moves. */
static inline void loom__copy16(uint8_t *q, const uint8_t *p, size_t n)
{
    if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, p, 8);
        memcpy(&y, p + n - 8, 8);
        memcpy(q, &x, 8);
        memcpy(q + n - 8, &y, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + n - 4, 4);
        memcpy(q, &x, 4);
        memcpy(q + n - 4, &y, 4);
    } else if (n) {
        uint8_t a = p[0], b = p[n / 2], c = p[n - 1];
        q[0] = a;
        q[n / 2] = b;
        q[n - 1] = c;
    }
}

/* memcpy for any n, inline for n <= 64 (map keys and small values are a
 * few dozen bytes: overlapping fixed-size moves instead of a call). */
static inline void loom__copy(void *d, const void *s, size_t n)
{
    uint8_t *q = (uint8_t *)d;
    const uint8_t *p = (const uint8_t *)s;
    if (n > 64) {
        memcpy(q, p, n);
    } else if (n > 32) {
        memcpy(q, p, 32);
        memcpy(q + n - 32, p + n - 32, 32);
    } else if (n > 16) {
        memcpy(q, p, 16);
        memcpy(q + n - 16, p + n - 16, 16);
    } else {
        loom__copy16(q, p, n);
    }
}

/* loom__copy for data mostly 16 bytes or shorter (map keys, short
 * strings): those lengths are tested first, where loom__copy tests from
 * the long end. Returns the end of the copy. */
static inline uint8_t *loom__copy_short(void *d, const void *s, size_t n)
{
    uint8_t *q = (uint8_t *)d;
    if (n > 16) {
        loom__copy(q, s, n);
    } else {
        loom__copy16(q, (const uint8_t *)s, n);
    }
    return q + n;
}

/* ---- byte buffers (loom_buf) ----------------------------------------- */

/* A loom_buf with alloc NULL gets `a` on first growth. */
void loom__buf_init(loom_buf *b, const loom_allocator *a);
int loom__buf_reserve(loom_buf *b, size_t extra);
int loom__buf_append(loom_buf *b, const void *p, size_t n);
int loom__buf_push(loom_buf *b, uint8_t byte);

/* ---- lib0 writing (append to a loom_buf) ------------------------------ */

int loom__write_u8(loom_buf *b, uint8_t v);
int loom__write_varuint(loom_buf *b, uint64_t v);
/* Writes v as a varUint at p, into room reserved before (at most 10
 * bytes); returns the end. For encoders that reserve a stretch once and
 * write several fields into it. */
static inline uint8_t *loom__put_varuint(uint8_t *p, uint64_t v)
{
    while (v > 0x7f) {
        *p++ = (uint8_t)(0x80 | (v & 0x7f));
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}
/* lib0 varInt: sign-magnitude, sign in bit 6 of the first byte. `negative`
 * with magnitude 0 writes -0 (0x40). */
int loom__write_varint(loom_buf *b, bool negative, uint64_t magnitude);
int loom__write_varint_i64(loom_buf *b, int64_t v);
int loom__write_varstring(loom_buf *b, const char *s, size_t len);
int loom__write_varbytes(loom_buf *b, const uint8_t *p, size_t len);
int loom__write_f32(loom_buf *b, float v);   /* big endian */
int loom__write_f64(loom_buf *b, double v);  /* big endian */
int loom__write_i64(loom_buf *b, int64_t v); /* big endian two's complement */

/* ---- lib0 reading (bounded) ------------------------------------------ */

/*
 * A reader over untrusted bytes. Every read checks bounds; on failure it
 * records the error (code, the offset where the failing value started, a
 * static message) and returns it; later reads fail with the same error, so a
 * caller may check once at the end of a sequence.
 */
typedef struct loom__reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err; /* 0 or the first error */
    size_t err_pos;
    const char *err_msg;
} loom__reader;

/* Inline: readers are set up once per struct or value when loading. */
static inline void
loom__reader_init(loom__reader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->pos = 0;
    r->err = 0;
    r->err_pos = 0;
    r->err_msg = NULL;
}
/* Records an error at `pos` (if none yet) and returns `code`. */
int loom__reader_fail(loom__reader *r, int code, size_t pos, const char *msg);
static inline size_t loom__reader_left(const loom__reader *r)
{
    return r->len - r->pos;
}

/* The out-of-line readers behind the inline ones below (every case). */
int loom__read_u8_any(loom__reader *r, uint8_t *out);
int loom__read_varuint_any(loom__reader *r, uint64_t *out);
int loom__read_varstring_any(loom__reader *r, const char **s, size_t *len);

/* The readers of single bytes, small varUints and short ASCII strings
 * (most of what an update holds) are inline: a call per field was a large
 * part of parsing. Everything else takes the out-of-line path. */
static inline int loom__read_u8(loom__reader *r, uint8_t *out)
{
    if (!r->err && r->pos < r->len) {
        *out = r->p[r->pos++];
        return LOOM_OK;
    }
    return loom__read_u8_any(r, out);
}
/* Fails past 2^53-1 ("integer out of range") or at the end of input. */
static inline int loom__read_varuint(loom__reader *r, uint64_t *out)
{
    if (!r->err && r->pos < r->len && r->p[r->pos] < 0x80) {
        *out = r->p[r->pos++];
        return LOOM_OK;
    }
    return loom__read_varuint_any(r, out);
}
int loom__read_varint(loom__reader *r, bool *negative, uint64_t *magnitude);
/* A varString; validates UTF-8 strictly (no surrogates, no overlong forms).
 * *s points into the input. */
static inline int
loom__read_varstring(loom__reader *r, const char **s, size_t *len)
{
    if (!r->err && r->pos < r->len) {
        size_t n = r->p[r->pos];
        if (n <= 16 && n < r->len - r->pos) {
            const uint8_t *q = r->p + r->pos + 1;
            if (loom__ascii_short(q, n)) { /* ASCII: valid UTF-8 */
                *s = (const char *)q;
                *len = n;
                r->pos += 1 + n;
                return LOOM_OK;
            }
        }
    }
    return loom__read_varstring_any(r, s, len);
}
int loom__read_varbytes(loom__reader *r, const uint8_t **p, size_t *len);
/* loom__utf8_check that also counts the UTF-16 code units of the valid
 * text (*units, written when the whole is valid). */
size_t loom__utf8_check16(const char *s, size_t len, size_t *units);
int loom__read_varstring16_any(loom__reader *r,
                               const char **s,
                               size_t *len,
                               size_t *units);
/* loom__read_varstring that also gives the string's UTF-16 length; a
 * string of up to 127 bytes inline (the text of most String structs). */
static inline int loom__read_varstring16(loom__reader *r,
                                         const char **s,
                                         size_t *len,
                                         size_t *units)
{
    if (!r->err && r->pos < r->len) {
        size_t n = r->p[r->pos];
        if (n < 0x80 && n < r->len - r->pos) {
            const char *q = (const char *)r->p + r->pos + 1;
            size_t u;
            if (loom__utf8_check16(q, n, &u) == n) {
                *s = q;
                *len = n;
                *units = u;
                r->pos += 1 + n;
                return LOOM_OK;
            }
        }
    }
    return loom__read_varstring16_any(r, s, len, units);
}
int loom__read_f32(loom__reader *r, float *out);
int loom__read_f64(loom__reader *r, double *out);
int loom__read_i64(loom__reader *r, int64_t *out);
/* Fills a public loom_error from the reader's error (err may be NULL). */
void loom__reader_error(const loom__reader *r, loom_error *err, size_t input);
void loom__error_set(
    loom_error *err, int code, size_t offset, size_t input, const char *msg);

/* ---- UTF-8 / UTF-16 ---------------------------------------------------- */

/* Strict UTF-8 validity as a fatal TextDecoder sees it. */
bool loom__utf8_valid(const char *s, size_t len);
/* Offset of the first byte that starts an invalid sequence, or len. */
size_t loom__utf8_check(const char *s, size_t len);
/* Number of UTF-16 code units of valid UTF-8 text. */
size_t loom__utf16_len(const char *s, size_t len);
/* Byte offset in valid UTF-8 `s` after `units` UTF-16 units. If the cut falls
 * inside a surrogate pair (a 4-byte sequence), returns the offset of that
 * sequence's start and sets *mid_pair (else clears it). units past the end
 * give len. */
size_t
loom__utf8_offset16(const char *s, size_t len, size_t units, bool *mid_pair);
/* The same, for text whose length in UTF-16 units is known to be `total`:
 * scans from the nearer end, so a cut near the end of a long run (typing
 * appended to it, then encoded or split there) costs what follows the cut,
 * not what precedes it. */
size_t loom__utf8_offset16_of(
    const char *s, size_t len, size_t total, size_t units, bool *mid_pair);
/* Number of code points (used by tools reading traces). */
size_t loom__utf8_codepoints(const char *s, size_t len);

/* ---- hash maps --------------------------------------------------------- */

/* uint64 -> pointer, open addressing. Key 0 is allowed. No removal. */
typedef struct loom__u64map {
    uint64_t *keys;
    void **vals;
    uint8_t *used;
    size_t cap; /* power of two or 0 */
    size_t count;
    const loom_allocator *a;
} loom__u64map;

void loom__u64map_init(loom__u64map *m, const loom_allocator *a);
void loom__u64map_free(loom__u64map *m);
void *loom__u64map_get(const loom__u64map *m, uint64_t key);
/* Inserts or replaces. */
int loom__u64map_put(loom__u64map *m, uint64_t key, void *val);
/* Iteration over slots: for (i = 0; i < m->cap; i++) if (m->used[i]) ... */

/* Byte-string -> pointer that keeps insertion order; entries are never
 * removed (a value may be set to NULL). Keys are copied. */
typedef struct loom__strmap_entry {
    char *key; /* NUL-terminated copy in the map's key blocks; never moves */
    uint32_t klen; /* keys are shorter than 4 GiB (LOOM_ELIMIT) */
    /* The high 32 bits of the key's hash: the index moves entries by it
     * when it grows (its slots keep only some of these bits). */
    uint32_t hash;
    void *val;
} loom__strmap_entry;

/* A block of key copies (map.c). */
struct loom__keyblock {
    struct loom__keyblock *next;
    size_t size; /* bytes in data */
    char data[];
};

typedef struct loom__strmap {
    loom__strmap_entry *e; /* in insertion order */
    size_t n, ecap;
    /* Open-addressing table, at most half full, of 4-byte slots (0 =
     * empty): with icap slots, entry index + 1 in the low log2(icap) bits
     * (it is at most icap / 2) and the bits of the key's hash above
     * those that give its position (its tag) in the rest. A probe that
     * passes other keys does not read their entries (with 100,000 keys
     * each such read was a cache miss) unless their tags are equal, and
     * the table is half the size of one of 8-byte slots with whole tags
     * (each MB of fresh pages costs about half a millisecond). */
    uint32_t *idx;
    size_t icap; /* power of two (at most 2^32) or 0 */
    const loom_allocator *a;
    /* Key copies are carved from blocks (entries are never removed, so
     * keys are never freed one by one): a new key costs no malloc. */
    struct loom__keyblock *kb; /* the newest block, linked to older ones */
    size_t kused;              /* bytes used in kb */
    /* New keys of at most LOOM__STRMAP_SHORT bytes that can be added
     * before the index, the entries or the key block must grow: one test
     * per insert on the inline path instead of one for each (refreshed
     * whenever any of them changes, by map.c). */
    size_t room;
} loom__strmap;
#define LOOM__STRMAP_SHORT 16

void loom__strmap_init(loom__strmap *m, const loom_allocator *a);
void loom__strmap_free(loom__strmap *m);
/* The entry for key, or NULL. */
loom__strmap_entry *
loom__strmap_find(const loom__strmap *m, const char *key, size_t klen);
/* The entry for key, created with val NULL if missing. Entry pointers stay
 * valid only until the next upsert (entries live in a growable vector); keep
 * indices (entry - m->e) across insertions. */
int loom__strmap_upsert(loom__strmap *m,
                        const char *key,
                        size_t klen,
                        loom__strmap_entry **out);
/* The entry whose key copy is `key`: key must be an entry's key pointer
 * (e->key) of this map, which is preceded by its entry's index. No
 * hashing: items keep their map's key pointers. */
static inline loom__strmap_entry *loom__strmap_key_entry(const loom__strmap *m,
                                                         const char *key)
{
    uint32_t i;
    memcpy(&i, key - sizeof(i), sizeof(i));
    return &m->e[i];
}
/* Makes room for n entries in all (index and entries), so that inserting
 * up to n - m->n keys allocates nothing but key copies. */
int loom__strmap_reserve(loom__strmap *m, size_t n);
/* The same, telling whether the entry was created. */
int loom__strmap_intern(loom__strmap *m,
                        const char *key,
                        size_t klen,
                        loom__strmap_entry **out,
                        bool *created);
uint64_t loom__hash_bytes(const void *p, size_t n);
/* splitmix64's finaliser. */
static inline uint64_t loom__mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}
/* loom__hash_bytes for callers that take it inline (a map set). Keys come
 * from untrusted updates, so it mixes every input bit; there is no
 * per-process seed, which keeps runs reproducible. */
static LOOM__INLINE uint64_t loom__hash_inline(const void *p, size_t n)
{
    const uint8_t *s = (const uint8_t *)p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL);
    /* the last 1..8 bytes go to the final mix (a key of exactly one word
     * costs one mix, not two) */
    size_t k = n;
    while (k > 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = loom__mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
        s += 8;
        k -= 8;
    }
    /* the tail as a little-endian word, from two overlapping loads (the
     * bytes both hold sit at the same place in each, so or-ing is exact) */
    uint64_t w;
    if (k == 8) {
        memcpy(&w, s, 8);
    } else if (k >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, s, 4);
        memcpy(&hi, s + k - 4, 4);
        w = (uint64_t)lo | (uint64_t)hi << (8 * (k - 4));
    } else if (k) {
        w = (uint64_t)s[0] | (uint64_t)s[k / 2] << (8 * (k / 2)) |
            (uint64_t)s[k - 1] << (8 * (k - 1));
    } else {
        w = 0;
    }
    return loom__mix64(h ^ w ^ ((uint64_t)n << 56));
}
/* loom__strmap_intern with the key's hash (loom__hash_bytes) known, giving
 * the entry's index. */
int loom__strmap_intern_hashed(loom__strmap *m,
                               const char *key,
                               size_t klen,
                               uint64_t h,
                               size_t *index,
                               bool *created);
/* The slot where a key of hash h is looked for first. */
static inline size_t loom__strmap_slot(uint64_t h, size_t mask)
{
    return (size_t)(h >> 32) & mask;
}
/* loom__strmap_intern_hashed for every case. */
int loom__strmap_intern_slow(loom__strmap *m,
                             const char *key,
                             size_t klen,
                             uint64_t h,
                             size_t *index,
                             bool *created);
/* Are the n <= 16 bytes at p and q equal? Without a call, as loom__copy
 * copies them. */
static inline bool loom__eq_short(const char *p, const char *q, size_t n)
{
    if (n >= 8) {
        uint64_t a, b, c, d;
        memcpy(&a, p, 8);
        memcpy(&b, q, 8);
        memcpy(&c, p + n - 8, 8);
        memcpy(&d, q + n - 8, 8);
        return ((a ^ b) | (c ^ d)) == 0;
    }
    if (n >= 4) {
        uint32_t a, b, c, d;
        memcpy(&a, p, 4);
        memcpy(&b, q, 4);
        memcpy(&c, p + n - 4, 4);
        memcpy(&d, q + n - 4, 4);
        return ((a ^ b) | (c ^ d)) == 0;
    }
    return n == 0 ||
           (p[0] == q[0] && p[n / 2] == q[n / 2] && p[n - 1] == q[n - 1]);
}
/* The index slot value of entry i for a key whose hash's high word is h32,
 * in a table of mask + 1 slots: its tag above, i + 1 below. */
static inline uint32_t
loom__strmap_slotval(uint32_t h32, uint32_t mask, size_t i)
{
    return (h32 & ~mask) | (uint32_t)(i + 1);
}
/* Writes entry i's key copy at p: the index, then the key and a NUL (see
 * loom__strmap_key_entry). Returns the copy. */
static inline char *
loom__strmap_key_put(char *p, uint32_t i, const char *key, size_t klen)
{
    memcpy(p, &i, sizeof(i));
    p += sizeof(i);
    loom__copy(p, key, klen); /* keys are short: inline */
    p[klen] = 0;
    return p;
}
/* The index + 1 of key's entry (hash's high word h32) in m (icap > 0),
 * with *slot its slot; or 0 with *slot the empty slot where it would go. A slot's tag is equal to
 * the key's when only the low bits differ, which are then the entry index
 * + 1. */
static LOOM__INLINE uint32_t loom__strmap_probe(const loom__strmap *m,
                                                const char *key,
                                                size_t klen,
                                                uint32_t h32,
                                                size_t *slot)
{
    uint32_t mask = (uint32_t)(m->icap - 1);
    uint32_t tag = h32 & ~mask;
    size_t s = h32 & mask;
    for (uint32_t v; (v = m->idx[s]) != 0; s = (s + 1) & mask) {
        uint32_t x = v ^ tag;
        if (x <= mask) {
            const loom__strmap_entry *f = &m->e[x - 1];
            if (f->klen == klen &&
                (klen <= 16 ? loom__eq_short(f->key, key, klen)
                            : memcmp(f->key, key, klen) == 0)) {
                *slot = s;
                return x;
            }
        }
    }
    *slot = s;
    return 0;
}
/* loom__strmap_intern_hashed for a caller that takes the usual case inline
 * (a map set): a short key that is there, or new with room everywhere: no
 * call, so the caller saves no registers for one. Anything else goes to
 * loom__strmap_intern_slow. */
static LOOM__INLINE int loom__strmap_intern_inline(loom__strmap *m,
                                                   const char *key,
                                                   size_t klen,
                                                   uint64_t h,
                                                   size_t *index,
                                                   bool *created)
{
    if (m->icap == 0 || klen > LOOM__STRMAP_SHORT) {
        return loom__strmap_intern_slow(m, key, klen, h, index, created);
    }
    uint32_t h32 = (uint32_t)(h >> 32);
    size_t slot;
    uint32_t x = loom__strmap_probe(m, key, klen, h32, &slot);
    if (x) {
        *index = x - 1;
        *created = false;
        return LOOM_OK;
    }
    /* new (a key set again, the usual overwrite, checks no room) */
    if (m->room == 0) {
        return loom__strmap_intern_slow(m, key, klen, h, index, created);
    }
    m->room--;
    size_t n = m->n;
    char *p =
        loom__strmap_key_put(m->kb->data + m->kused, (uint32_t)n, key, klen);
    m->kused += sizeof(uint32_t) + klen + 1;
    loom__strmap_entry *e = &m->e[n];
    e->key = p;
    e->klen = (uint32_t)klen;
    e->hash = h32;
    e->val = NULL;
    m->n = n + 1;
    m->idx[slot] = loom__strmap_slotval(h32, (uint32_t)(m->icap - 1), n);
    *index = n;
    *created = true;
    return LOOM_OK;
}
/* Starts loading the index slot where a key of hash h is looked for: in a
 * large map that slot is a cache miss, which work done meanwhile hides. */
static inline void loom__strmap_prefetch(const loom__strmap *m, uint64_t h)
{
#if defined(__GNUC__) || defined(__clang__)
    if (m->icap)
        __builtin_prefetch(&m->idx[loom__strmap_slot(h, m->icap - 1)]);
#else
    (void)m;
    (void)h;
#endif
}

/* ---- misc -------------------------------------------------------------- */

/* 32 random bits from the OS when available, else a mixed fallback. */
uint32_t loom__random_u32(void);

#endif
