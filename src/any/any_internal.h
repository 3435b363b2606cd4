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
     * those can be integer-like, which JS lists first); never cleared.
     * LOOM__ANY_STATIC on the shared constant nodes. */
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
/* UNDEFINED, NULL and BOOL: one of the shared constant nodes that their
 * constructors return (a value needs no allocation); loom_any_free leaves
 * them alone and nothing writes to them. */
#define LOOM__ANY_STATIC 2

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

/* The tags of lib0's Any encoding. */
enum {
    LOOM__ANY_UNDEFINED = 127,
    LOOM__ANY_NULL = 126,
    LOOM__ANY_INT = 125,
    LOOM__ANY_F32 = 124,
    LOOM__ANY_F64 = 123,
    LOOM__ANY_BIGINT = 122,
    LOOM__ANY_FALSE = 121,
    LOOM__ANY_TRUE = 120,
    LOOM__ANY_STRING = 119,
    LOOM__ANY_OBJECT = 118,
    LOOM__ANY_ARRAY = 117,
    LOOM__ANY_BINARY = 116
};

/* The largest member loom__any_check_flat takes: a key of 16 bytes after
 * its length, a tag, a string of 16 bytes after its length. */
#define LOOM__FLAT_MARGIN 35

/*
 * The keys of the last flat object loom__any_check_flat took that did not
 * have the keys kept here before. The values of a map are mostly objects
 * with the same keys, so the next object's keys are compared with these
 * first, a word each, and a key found equal needs none of the key checks.
 * Entries 0..n-1 are the keys of one object that passed them all (so they
 * are distinct), each as its length byte and up to 7 key bytes in a
 * little-endian word, with mask[i] covering those bytes (0 for a longer
 * key, whose word 1 then never matches); seen[i] has bit l set for each
 * length l of entries 0..i-1. n = 0: nothing kept (loom__flat_shape_init).
 */
typedef struct loom__flat_shape {
    size_t n;
    uint64_t key[16], mask[16];
    uint32_t seen[17];
} loom__flat_shape;

static inline void loom__flat_shape_init(loom__flat_shape *s)
{
    s->n = 0;
    s->seen[0] = 0;
}

/* Does a member before `key` in the flat object whose members start at
 * `first` have the key (klen bytes at key)? */
bool loom__any_flat_repeat(const uint8_t *first,
                           const uint8_t *key,
                           size_t klen);

/* The end of a member value of a flat object at p (room checked), or NULL
 * when it is not one loom__any_check_flat takes. */
static LOOM__INLINE const uint8_t *loom__any_flat_value(const uint8_t *p)
{
    uint8_t tag = p[0];
    if (tag == LOOM__ANY_INT) {
        /* a varInt of up to 20 bits, minimal: no zero last byte after the
         * first */
        if (p[1] < 0x80) {
            return p + 2;
        }
        if ((uint8_t)(p[2] - 1) < 0x7f) {
            return p + 3;
        }
        if (p[2] >= 0x80 && (uint8_t)(p[3] - 1) < 0x7f) {
            return p + 4;
        }
        return NULL;
    }
    if (tag == LOOM__ANY_STRING) {
        size_t sl = p[1];
        if (sl > 16 || !loom__ascii_short(p + 2, sl)) {
            return NULL;
        }
        return p + 2 + sl;
    }
    if (tag == LOOM__ANY_TRUE || tag == LOOM__ANY_FALSE ||
        tag == LOOM__ANY_NULL || tag == LOOM__ANY_UNDEFINED) {
        return p + 1;
    }
    return NULL;
}

/*
 * loom__any_check_n's first step for one value at p (input ending at end)
 * that is a flat object, the usual value of a map entry: its end, canonical
 * and valid, or NULL for any other value (which loom__any_check_n then
 * reads, errors included). Flat: its members are all that the fast path of
 * loom__any_check reads without a call (keys of 1 to 16 ASCII bytes not
 * starting with a digit, none "__proto__" or repeated; undefined, null,
 * booleans, ints of up to 20 bits and ASCII strings of up to 16 bytes, all
 * in minimal form), and the input has room for all of them at their
 * largest (LOOM__FLAT_MARGIN bytes each), so that no read needs a bounds
 * check. Keys equal to those in *shape are taken without their checks;
 * *shape is updated to this object's keys when they differ.
 */
static LOOM__INLINE const uint8_t *loom__any_check_flat(const uint8_t *p,
                                                        const uint8_t *end,
                                                        loom__flat_shape *shape)
{
    size_t room = (size_t)(end - p);
    if (room < 2 || p[0] != LOOM__ANY_OBJECT) {
        return NULL;
    }
    size_t n = p[1];
    /* room for every member at its largest, checked once (mostly there is
     * room for 16) */
    if (n > 16 || (room < 2 + 16 * LOOM__FLAT_MARGIN &&
                   room < 2 + n * LOOM__FLAT_MARGIN)) {
        return NULL;
    }
    p += 2;
    const uint8_t *first = p;
    size_t i = 0;
    /* the keys kept, while they are this object's */
    size_t kept = shape->n < n ? shape->n : n;
    for (; i < kept; i++) {
        uint64_t x;
        memcpy(&x, p, 8);
        if ((x & shape->mask[i]) != shape->key[i]) {
            break;
        }
        p = loom__any_flat_value(p + 1 + (size_t)(x & 0xff));
        if (!p) {
            return NULL;
        }
    }
    if (i == n) {
        return p;
    }
    /* the rest with every check, kept for the next object (the keys before
     * i are kept already) */
    uint32_t seen = shape->seen[i]; /* key lengths seen: a repeat needs one */
    shape->n = 0;
    for (; i < n; i++) {
        size_t klen = p[0];
        const uint8_t *k = p + 1;
        if (klen - 1 >= 16 || (unsigned)(k[0] - '0') <= 9 ||
            !loom__ascii_short(k, klen) ||
            (klen == 9 && memcmp(k, "__proto__", 9) == 0)) {
            return NULL;
        }
        uint32_t bit = (uint32_t)1 << klen;
        if ((seen & bit) && loom__any_flat_repeat(first, k, klen)) {
            return NULL;
        }
        seen |= bit;
        if (klen <= 7) {
            uint64_t x;
            memcpy(&x, p, 8);
            shape->mask[i] = ~0ULL >> (8 * (7 - klen));
            shape->key[i] = x & shape->mask[i];
        } else {
            shape->mask[i] = 0;
            shape->key[i] = 1;
        }
        shape->seen[i + 1] = seen;
        p = loom__any_flat_value(k + klen);
        if (!p) {
            return NULL;
        }
    }
    shape->n = n;
    return p;
}
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
