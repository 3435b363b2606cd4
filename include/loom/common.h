/*
 * loom/common.h: what every part of the public API shares: error codes,
 * the allocator hooks passed per object, the byte buffer handed out by every
 * function that produces bytes, and the error record filled by decoders.
 *
 * Conventions (see docs/api.md):
 *  - every fallible function returns an int: 0 (LOOM_OK) or a negative
 *    LOOM_E* code; results go through out-params, written only on success;
 *  - a function that allocates for the caller names the function that frees;
 *  - the library never prints, exits or aborts on input.
 */
#ifndef LOOM_COMMON_H
#define LOOM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOOM_VERSION_MAJOR  0
#define LOOM_VERSION_MINOR  1
#define LOOM_VERSION_PATCH  0
#define LOOM_VERSION_STRING "0.1.0"

/* Error codes. Append only; never renumber. */
#define LOOM_OK           0
#define LOOM_ENOMEM       (-1) /* an allocation failed */
#define LOOM_EINVAL       (-2) /* a bad argument from the caller */
#define LOOM_EMALFORMED   (-3) /* malformed input bytes (see loom_error.offset) */
#define LOOM_ERANGE       (-4) /* an index or length out of range */
#define LOOM_ETYPE        (-5) /* a shared type or value of the wrong kind */
#define LOOM_ELIMIT       (-6) /* a size or depth limit was exceeded */
#define LOOM_ESTATE       (-7) /* not allowed in the object's current state */
#define LOOM_ENOTFOUND    (-8) /* no such key, root, client or item */
#define LOOM_EUNSUPPORTED (-9) /* valid input that this version cannot handle */
#define LOOM_EIO          (-10) /* the file system, the network or SQLite failed */
#define LOOM_ECORRUPT     (-11) /* stored data is damaged or not loom's */
#define LOOM_EAUTH        (-12) /* wrong key or passphrase, or forged data */
#define LOOM_EBUSY        (-13) /* a lock was held past the timeout */

/* A static English description of an error code; never NULL. */
const char *loom_strerror(int code);

/*
 * Allocator hooks, passed per object (a doc, a value, a buffer). Every
 * allocation of an object goes through the hooks it was created with, so an
 * embedder can count or cap memory per document. `size`/`old_size` are the
 * sizes the library asked for, which lets a hook count bytes without headers.
 * `realloc` with ptr NULL allocates. A NULL loom_allocator pointer anywhere in
 * the API means the libc allocator. The allocator must outlive every object
 * created with it.
 */
typedef struct loom_allocator {
    void *(*malloc_fn)(void *ud, size_t size);
    void *(*realloc_fn)(void *ud, void *ptr, size_t old_size, size_t new_size);
    void (*free_fn)(void *ud, void *ptr, size_t size);
    void *ud;
} loom_allocator;

/* The libc allocator, as a loom_allocator. */
const loom_allocator *loom_allocator_default(void);

/*
 * Bytes produced by the library. Owned by the caller after a successful call;
 * release with loom_buf_free(), which uses the allocator recorded in the
 * buffer. A zero-initialised loom_buf is empty and may be freed.
 */
typedef struct loom_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    const loom_allocator *alloc;
} loom_buf;

/* Frees the bytes of `b` and resets it to empty. NULL is a no-op. */
void loom_buf_free(loom_buf *b);

/*
 * Details of a failed decode. Every function that reads untrusted bytes takes
 * an optional `loom_error *` (NULL to ignore); on failure it is filled with
 * the code, the byte offset in the input where decoding failed, which input
 * (for functions taking several) and a short message.
 */
typedef struct loom_error {
    int code;
    size_t offset;
    size_t input;
    char message[120];
} loom_error;

#ifdef __cplusplus
}
#endif
#endif
