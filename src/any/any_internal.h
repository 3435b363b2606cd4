/*
 * any_internal.h: the representation of loom_any and the codecs the rest of
 * the library uses on it: the lib0 Any binary encoding (with the exact JS
 * number rule and JS object key order), a validating skipper that reads Any
 * bytes without allocating, and JSON text as JSON.stringify writes it and
 * JSON.parse reads it.
 */
#ifndef LOOM_ANY_INTERNAL_H
#define LOOM_ANY_INTERNAL_H

#include "base/base.h"
#include "loom/any.h"

struct loom_any {
    uint8_t kind; /* loom_any_kind */
    /* OBJECT: LOOM__ANY_DIGIT_KEY when some key starts with a digit (only
     * those can be integer-like, which JS lists first); never cleared. */
    uint8_t flags;
    const loom_allocator *a;
    union {
        int b;
        double num;
        int64_t big;
        struct {
            char *p; /* NUL-terminated copy; also SUBDOC guid */
            size_t len;
        } str;
        struct {
            uint8_t *p;
            size_t len;
        } bin;
        struct {
            loom_any **v;
            size_t n, cap;
        } arr;
        struct {
            char **keys; /* NUL-terminated copies */
            size_t *klens;
            loom_any **v;
            size_t n, cap;
        } obj;
        loom_type *type;
    } u;
};

#define LOOM__ANY_DIGIT_KEY 1

/* The key storage of an object (any.c) extends this many bytes past the
 * room keys are copied into: a key's first LOOM__ANY_KEY_PAD bytes can be
 * read however short it is, so a writer copies a short key with two fixed
 * moves. The bytes past the key's NUL are unspecified. */
#define LOOM__ANY_KEY_PAD 16

/* Reads one Any value (depth counts nesting; start with 0). Errors go to r. */
int loom__any_read(loom__reader *r,
                   const loom_allocator *a,
                   int depth,
                   loom_any **out);
/* Reads one Any value and appends its canonical encoding, what lib0 writes
 * after reading it (number widths by the JS rule, minimal lengths, objects
 * in JS key order without repeated or __proto__ keys): the bytes yjs writes
 * back. Allocates only for objects that must be reordered. */
int loom__any_canon(loom__reader *r,
                    const loom_allocator *a,
                    int depth,
                    loom_buf *out);
/* Validates and skips one Any value without allocating. */
int loom__any_skip(loom__reader *r, int depth);
/* loom__any_skip that also clears *canon (when not NULL) unless the bytes
 * are exactly what loom__any_canon writes for them, so they can be kept as
 * they are. */
int loom__any_check(loom__reader *r, int depth, bool *canon);
/* loom__any_check of n values in a row at depth 0 (the values of Any
 * content), the same checks, errors and *canon; faster for flat objects of
 * scalars, the values a loaded map is made of. */
int loom__any_check_n(loom__reader *r, uint64_t n, bool *canon);
/* loom__any_check_n's first step for one value at p (input ending at end)
 * that is a flat object, the usual value of a map entry: its end, canonical
 * and valid, or NULL for any other value (which loom__any_check_n then
 * reads, errors included). */
const uint8_t *loom__any_check_flat(const uint8_t *p, const uint8_t *end);
/* Writes the lib0 Any encoding of v. Objects are written in JS Object.keys
 * order: integer-like keys ("0".."4294967294") ascending first, then the
 * others in insertion order. */
int loom__any_write(loom_buf *b, const loom_any *v);
/* Writes at p, when it takes at most max bytes there, the encoding of an
 * object that loom__any_write writes in one pass (keys in insertion order,
 * values scalars or strings), what loom__any_write appends for it; returns
 * its length, or 0 (the bytes at p are then undefined) for any other value
 * or one that may not fit. The bytes between its end and p + max may be
 * written too. */
size_t loom__any_put_flat(uint8_t *p, size_t max, const loom_any *v);
/* Writes a JS number with the Any number rule (tag + payload). */
int loom__any_write_number(loom_buf *b, double v);

/* JSON.stringify(v) appended to b. Top-level undefined writes "undefined"
 * (what ContentJSON stores for undefined). Fails with LOOM_EINVAL on bigint
 * (JS throws) and on SUBDOC/TYPE. */
int loom__json_write(loom_buf *b, const loom_any *v);
/* JSON.parse. On error, *err_off is the offset in text. The literal text
 * "undefined" is accepted only when allow_undefined (ContentJSON). */
int loom__json_read(const loom_allocator *a,
                    const char *text,
                    size_t len,
                    bool allow_undefined,
                    loom_any **out,
                    size_t *err_off);
/* Validates JSON text without building a value. */
int loom__json_check(const char *text,
                     size_t len,
                     bool allow_undefined,
                     size_t *err_off);

/* JS Number.prototype.toString() of v into buf (at least 32 bytes); returns
 * the length. */
size_t loom__js_number_str(double v, char *buf);

/* Is the key integer-like in the JS sense (a canonical uint32 < 2^32-1)? */
bool loom__js_index_key(const char *k, size_t len, uint32_t *value);

/* JS `a === b`: primitives (undefined, null, bool, number, bigint, string)
 * by value with JS rules (NaN !== NaN, 0 === -0); objects, arrays and binary
 * only when they are the same pointer. NULL pointers stand for undefined. */
bool loom__any_strict_eq(const loom_any *a, const loom_any *b);
/* yjs equalAttrs: a === b, or both non-null objects/arrays with the same
 * number of entries whose values are pairwise === (lib0 equalFlat). */
bool loom__any_equal_attrs(const loom_any *a, const loom_any *b);

/* ---- building blocks shared by the codecs (any.c) ---------------------- */

/* A STRING or SUBDOC node copying `s`, which must already be valid UTF-8. */
int loom__any_new_string_valid(const loom_allocator *a,
                               loom_any_kind kind,
                               const char *s,
                               size_t len,
                               loom_any **out);
/* A STRING node taking ownership of `s` (len + 1 bytes from `a`, NUL
 * terminated, valid UTF-8) on success; on failure `s` stays the caller's. */
int loom__any_new_string_take(const loom_allocator *a,
                              char *s,
                              size_t len,
                              loom_any **out);
/* Capacity for `need` elements / entries (doubling; nothing changes on
 * failure). */
int loom__any_array_reserve(loom_any *arr, size_t need);
int loom__any_object_reserve(loom_any *obj, size_t need);
/* Appends an entry without looking for an existing key (call
 * loom__any_object_dedupe afterwards if keys may repeat). _append copies the
 * key (valid UTF-8); _append_take owns `key` (klen + 1 bytes from obj->a) on
 * success. On success the object owns `child`. */
int loom__any_object_append(loom_any *obj,
                            const char *key,
                            size_t klen,
                            loom_any *child);
int loom__any_object_append_take(loom_any *obj,
                                 char *key,
                                 size_t klen,
                                 loom_any *child);
/* Merges repeated keys as JS assignment does: the first position, the last
 * value. O(n) for large objects. On LOOM_ENOMEM the object is still valid
 * (possibly with repeated keys). */
int loom__any_object_dedupe(loom_any *obj);
/* JS Object.keys order of an object: *order is NULL when insertion order is
 * already that order, else an array of obj->u.obj.n entry indices to free
 * with loom__free(obj->a, *order, n * sizeof(size_t)). */
int loom__any_js_order(const loom_any *obj, size_t **order);
/* loom__json_read that also returns a static message on error. */
int loom__json_read_msg(const loom_allocator *a,
                        const char *text,
                        size_t len,
                        bool allow_undefined,
                        loom_any **out,
                        size_t *err_off,
                        const char **err_msg);

#endif
