/*
 * loom/any.h: values, as Yjs stores them in maps, arrays, embeds and
 * formatting attributes (the lib0 "Any" model): undefined, null, booleans,
 * numbers (IEEE doubles, as in JavaScript), bigints (int64), UTF-8 strings,
 * binary, arrays and objects with ordered keys.
 *
 * A loom_any is an immutable-after-build tree owned by whoever created it;
 * free the root with loom_any_free(). Containers own their children: adding a
 * child moves it into the container. Strings are UTF-8 with explicit lengths
 * (they may contain NUL); the library validates UTF-8 on every entry point.
 *
 * Views produced from a document (loom_type_to_any and friends) may contain
 * two extra kinds that are not Any values on the wire: LOOM_ANY_SUBDOC (a
 * sub-document reference, with its guid) and LOOM_ANY_TYPE (a borrowed
 * reference to a shared type, in event deltas). Encoding a tree that contains
 * them fails with LOOM_EINVAL.
 */
#ifndef LOOM_ANY_H
#define LOOM_ANY_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum loom_any_kind {
    LOOM_ANY_UNDEFINED = 0,
    LOOM_ANY_NULL,
    LOOM_ANY_BOOL,
    LOOM_ANY_NUMBER,
    LOOM_ANY_BIGINT,
    LOOM_ANY_STRING,
    LOOM_ANY_BINARY,
    LOOM_ANY_ARRAY,
    LOOM_ANY_OBJECT,
    LOOM_ANY_SUBDOC,
    LOOM_ANY_TYPE
} loom_any_kind;

typedef struct loom_any loom_any;
typedef struct loom_type loom_type;

/* Constructors. Each returns LOOM_ENOMEM or, for strings, LOOM_EINVAL on
 * invalid UTF-8; *out is written only on success. Free with loom_any_free. */
int loom_any_new_undefined(const loom_allocator *a, loom_any **out);
int loom_any_new_null(const loom_allocator *a, loom_any **out);
int loom_any_new_bool(const loom_allocator *a, int value, loom_any **out);
int loom_any_new_number(const loom_allocator *a, double value, loom_any **out);
int loom_any_new_bigint(const loom_allocator *a, int64_t value, loom_any **out);
int loom_any_new_string(const loom_allocator *a,
                        const char *s,
                        size_t len,
                        loom_any **out);
int loom_any_new_binary(const loom_allocator *a,
                        const uint8_t *p,
                        size_t len,
                        loom_any **out);
int loom_any_new_array(const loom_allocator *a, loom_any **out);
int loom_any_new_object(const loom_allocator *a, loom_any **out);
int loom_any_new_subdoc(const loom_allocator *a,
                        const char *guid,
                        size_t len,
                        loom_any **out);
int loom_any_new_type_ref(const loom_allocator *a,
                          loom_type *type,
                          loom_any **out);

/* Appends `child` to an array; on success the array owns it. */
int loom_any_array_push(loom_any *array, loom_any *child);
/* Sets key -> child on an object (replacing an existing key in place, keeping
 * its position); on success the object owns `child`. */
int loom_any_object_set(loom_any *object,
                        const char *key,
                        size_t key_len,
                        loom_any *child);

/* Deep copy, with allocator `a` (NULL: the source's allocator). */
int loom_any_clone(const loom_any *v, const loom_allocator *a, loom_any **out);
/* Frees a value and its children. NULL is a no-op. */
void loom_any_free(loom_any *v);

/* Accessors. Pointers returned are borrowed from `v` and live as long as it. */
loom_any_kind loom_any_kind_of(const loom_any *v);
int loom_any_bool(const loom_any *v);
double loom_any_number(const loom_any *v);
int64_t loom_any_bigint(const loom_any *v);
const char *loom_any_string(const loom_any *v,
                            size_t *len); /* STRING and SUBDOC (guid) */
const uint8_t *loom_any_binary(const loom_any *v, size_t *len);
size_t loom_any_count(const loom_any *v); /* array elements or object entries */
const loom_any *loom_any_array_get(const loom_any *v, size_t i);
const char *loom_any_object_key(const loom_any *v, size_t i, size_t *len);
const loom_any *loom_any_object_value(const loom_any *v, size_t i);
const loom_any *
loom_any_object_get(const loom_any *v, const char *key, size_t len);
loom_type *
loom_any_type(const loom_any *v); /* LOOM_ANY_TYPE: the type; else NULL */

/* Deep equality by value (numbers compare as doubles, NaN equals NaN, -0 and
 * 0 differ; object key order does not matter). Returns 1 or 0. */
int loom_any_equal(const loom_any *a, const loom_any *b);

/* lib0 binary encoding of one Any value, appended to `out` (which may be
 * empty or hold bytes; its allocator is used, or `v`'s when it has none). */
int loom_any_encode(const loom_any *v, loom_buf *out);
/* Decodes exactly one Any value from bytes; trailing bytes are an error. */
int loom_any_decode(const loom_allocator *a,
                    const uint8_t *p,
                    size_t len,
                    loom_any **out,
                    loom_error *err);

/* JSON text as JavaScript's JSON.stringify writes it (undefined members
 * dropped, undefined/NaN/Infinity elements as null, binary as an object of
 * indices, bigints are an error as in JS). Appended to `out`. */
int loom_any_to_json(const loom_any *v, loom_buf *out);
/* JSON text as JSON.parse reads it. */
int loom_any_from_json(const loom_allocator *a,
                       const char *text,
                       size_t len,
                       loom_any **out,
                       loom_error *err);

#ifdef __cplusplus
}
#endif
#endif
