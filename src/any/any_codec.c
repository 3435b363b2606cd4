/*
 * any_codec.c: the lib0 "Any" binary encoding (lib0 encoding.writeAny /
 * decoding.readAny), used by ContentAny, update v2 payloads and awareness.
 *
 * Writing must match JS byte for byte: the number rule of spec §2.6 (small
 * integers as varInt including -0, float32 when exact, else float64) and
 * Object.keys order for objects. Reading accepts anything lib0 accepts, with
 * bounds checked before allocating and nesting capped at LOOM__MAX_DEPTH
 * (JS would overflow its stack instead).
 */
#include <float.h>
#include <math.h>

#include <string.h>

#include "any/any_internal.h"

/* ---- writing ------------------------------------------------------------ */

/* Makes room for `need` more bytes so the writers below can store without
 * checks. */
static inline int room(loom_buf *b, size_t need)
{
    if (b->cap - b->len >= need) {
        return LOOM_OK;
    }
    return loom__buf_reserve(b, need);
}

static inline uint8_t *put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
    return p + n;
}

/* The Any number rule at p (room for 9 bytes): integers of up to 31 bits
 * (and -0) as a varInt, else float32 when exact, else float64. */
static inline uint8_t *put_number(uint8_t *p, double v)
{
    /* the range test first: it is false for NaN, so the cast is defined;
     * on the magnitude, one test covers both signs */
    double av = fabs(v);
    if (av <= 2147483647.0) {
        int64_t i = (int64_t)av;
        if ((double)i == av) {
            uint64_t mag = (uint64_t)i;
            *p++ = LOOM__ANY_INT;
            uint8_t first = (uint8_t)((mag & 0x3f) | (signbit(v) ? 0x40 : 0));
            mag >>= 6;
            if (!mag) {
                *p++ = first;
                return p;
            }
            *p++ = (uint8_t)(first | 0x80);
            return loom__put_varuint(p, mag);
        }
    }
    if (!isnan(v) && (isinf(v) || fabs(v) <= FLT_MAX) &&
        (double)(float)v == v) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, sizeof(u));
        *p++ = LOOM__ANY_F32;
        return put_be(p, u, 4);
    }
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    *p++ = LOOM__ANY_F64;
    return put_be(p, u, 8);
}

int loom__any_write_number(loom_buf *b, double v)
{
    /* tag + at most 8 payload bytes, reserved so failure writes nothing */
    int rc = room(b, 9);
    if (rc) {
        return rc;
    }
    b->len = (size_t)(put_number(b->data + b->len, v) - b->data);
    return LOOM_OK;
}

/* A length-prefixed byte run (tag first when tag != 0). */
static inline int put_bytes(loom_buf *b, uint8_t tag, const void *s, size_t len)
{
    if (len > SIZE_MAX - 11) {
        return LOOM_ENOMEM;
    }
    int rc = room(b, len + 11);
    if (rc) {
        return rc;
    }
    uint8_t *p = b->data + b->len;
    if (tag) {
        *p++ = tag;
    }
    p = loom__put_varuint(p, len);
    loom__copy(p, s, len);
    b->len = (size_t)(p + len - b->data);
    return LOOM_OK;
}

/* A value without length or children (kinds UNDEFINED..BIGINT) at p, with
 * room for 9 bytes. */
static inline uint8_t *put_scalar(uint8_t *p, const loom_any *v)
{
    switch ((loom_any_kind)v->kind) {
    case LOOM_ANY_UNDEFINED:
        *p++ = LOOM__ANY_UNDEFINED;
        return p;
    case LOOM_ANY_NULL:
        *p++ = LOOM__ANY_NULL;
        return p;
    case LOOM_ANY_BOOL:
        *p++ = v->u.b ? LOOM__ANY_TRUE : LOOM__ANY_FALSE;
        return p;
    case LOOM_ANY_NUMBER:
        return put_number(p, v->u.num);
    default: /* BIGINT */
        *p++ = LOOM__ANY_BIGINT;
        return put_be(p, (uint64_t)v->u.big, 8);
    }
}

static int write_rec(loom_buf *b, const loom_any *v, int depth);

/* A value that is not an array or object. */
static inline int write_leaf(loom_buf *b, const loom_any *v)
{
    if (v->kind <= LOOM_ANY_BIGINT) {
        int rc = room(b, 9);
        if (rc) {
            return rc;
        }
        b->len = (size_t)(put_scalar(b->data + b->len, v) - b->data);
        return LOOM_OK;
    }
    if (v->kind == LOOM_ANY_STRING) {
        return put_bytes(b, LOOM__ANY_STRING, v->u.str.p, v->u.str.len);
    }
    if (v->kind == LOOM_ANY_BINARY) {
        return put_bytes(b, LOOM__ANY_BINARY, v->u.bin.p, v->u.bin.len);
    }
    return LOOM_EINVAL; /* SUBDOC and TYPE are no Any values */
}

/* An object entry: the key, then the value. */
// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int put_entry(
    loom_buf *b, const char *key, size_t klen, const loom_any *c, int depth)
{
    int rc = put_bytes(b, 0, key, klen);
    if (rc) {
        return rc;
    }
    return c->kind == LOOM_ANY_ARRAY || c->kind == LOOM_ANY_OBJECT
               ? write_rec(b, c, depth)
               : write_leaf(b, c);
}

/* Bytes an object takes at most when all its values are scalars or
 * strings (the common case: one room check, then stores), or 0 when not.
 * The sum cannot wrap in 64 bits: every length counted is of bytes in
 * memory, and each entry also takes more memory than the 21 added. */
static inline uint64_t flat_size(const loom_any *v)
{
    uint64_t need = 11;
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const loom_any *c = v->u.obj.v[i];
        if (c->kind > LOOM_ANY_STRING) {
            return 0;
        }
        need += v->u.obj.klens[i] + 21;
        if (c->kind == LOOM_ANY_STRING) {
            need += c->u.str.len;
        }
    }
    return need;
}

/* Writes a flat object (see flat_size) in insertion order, with room
 * made. */
static inline uint8_t *put_flat_at(uint8_t *p, const loom_any *v)
{
    size_t n = v->u.obj.n;
    char *const *keys = v->u.obj.keys;
    const size_t *klens = v->u.obj.klens;
    loom_any *const *vals = v->u.obj.v;
    *p++ = LOOM__ANY_OBJECT;
    p = loom__put_varuint(p, n);
    for (size_t i = 0; i < n; i++) {
        size_t klen = klens[i];
        const loom_any *c = vals[i];
        p = loom__put_varuint(p, klen);
        loom__copy(p, keys[i], klen);
        p += klen;
        if (c->kind == LOOM_ANY_STRING) {
            size_t len = c->u.str.len;
            *p++ = LOOM__ANY_STRING;
            p = loom__put_varuint(p, len);
            loom__copy(p, c->u.str.p, len);
            p += len;
        } else {
            p = put_scalar(p, c);
        }
    }
    return p;
}

static inline void put_flat(loom_buf *b, const loom_any *v)
{
    b->len = (size_t)(put_flat_at(b->data + b->len, v) - b->data);
}

_Static_assert(LOOM__ANY_KEY_PAD >= 16, "put_flat moves keys 16 bytes");

/* A key of a flat object at p (room checked for its 16-byte move). */
static inline uint8_t *put_flat_key(uint8_t *p, const char *key, size_t klen)
{
    if (klen < 16) {
        /* one length byte, and the key storage's padding makes the key's
         * first 16 bytes readable */
        *p = (uint8_t)klen;
        memcpy(p + 1, key, 16);
        return p + klen + 1;
    }
    p = loom__put_varuint(p, klen);
    loom__copy(p, key, klen);
    return p + klen;
}

/* Writes member (key, c) of a flat object at p, before end, and returns
 * its end; NULL when it does not fit or c is not a flat object's value.
 * Each kind checks its own room (lengths of bytes in memory: the sums
 * cannot wrap; the room also covers the 16-byte move of a short key). */
static LOOM__INLINE uint8_t *put_member(uint8_t *p,
                                        const uint8_t *end,
                                        const char *key,
                                        size_t klen,
                                        const loom_any *c)
{
    size_t room = (size_t)(end - p);
    switch ((loom_any_kind)c->kind) {
    case LOOM_ANY_NUMBER:
        if (klen + 21 > room) {
            return NULL;
        }
        p = put_flat_key(p, key, klen);
        return put_number(p, c->u.num);
    case LOOM_ANY_STRING: {
        size_t len = c->u.str.len;
        if (klen + len + 21 > room) {
            return NULL;
        }
        p = put_flat_key(p, key, klen);
        *p++ = LOOM__ANY_STRING;
        p = loom__put_varuint(p, len);
        return loom__copy_short(p, c->u.str.p, len);
    }
    case LOOM_ANY_BOOL:
        if (klen + 21 > room) {
            return NULL;
        }
        p = put_flat_key(p, key, klen);
        *p++ = c->u.b ? LOOM__ANY_TRUE : LOOM__ANY_FALSE;
        return p;
    case LOOM_ANY_UNDEFINED:
    case LOOM_ANY_NULL:
    case LOOM_ANY_BIGINT:
        if (klen + 21 > room) {
            return NULL;
        }
        p = put_flat_key(p, key, klen);
        return put_scalar(p, c);
    default:
        return NULL;
    }
}

/* loom__any_put_flat for any lengths (its caller checked the object). */
static LOOM__NOINLINE size_t put_flat_any(uint8_t *p,
                                          size_t max,
                                          const loom_any *v)
{
    /* put_flat_at with flat_size's test and bound folded in: one pass */
    size_t n = v->u.obj.n;
    char *const *keys = v->u.obj.keys;
    const size_t *klens = v->u.obj.klens;
    loom_any *const *vals = v->u.obj.v;
    uint8_t *start = p, *end = p + max;
    *p++ = LOOM__ANY_OBJECT;
    p = loom__put_varuint(p, n);
    for (size_t i = 0; i < n; i++) {
        if (!(p = put_member(p, end, keys[i], klens[i], vals[i]))) {
            return 0;
        }
    }
    return (size_t)(p - start);
}

/*
 * loom__any_put_flat for what a map's value mostly is: fewer than 128
 * members, keys shorter than 16 bytes and strings of at most 16, which
 * put_member copies with fixed moves: no call, so it saves no registers.
 * Anything else goes to put_flat_any, which starts over.
 */
size_t loom__any_put_flat(uint8_t *p, size_t max, const loom_any *v)
{
    if (v->kind != LOOM_ANY_OBJECT || (v->flags & LOOM__ANY_DIGIT_KEY) ||
        max < 11) {
        return 0;
    }
    size_t n = v->u.obj.n;
    if (n > 127) {
        return put_flat_any(p, max, v);
    }
    char *const *keys = v->u.obj.keys;
    const size_t *klens = v->u.obj.klens;
    loom_any *const *vals = v->u.obj.v;
    uint8_t *q = p + 2, *end = p + max;
    p[0] = LOOM__ANY_OBJECT;
    p[1] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        size_t klen = klens[i];
        const loom_any *c = vals[i];
        if (klen >= 16 || (c->kind == LOOM_ANY_STRING && c->u.str.len > 16)) {
            return put_flat_any(p, max, v);
        }
        if (!(q = put_member(q, end, keys[i], klen, c))) {
            return 0;
        }
    }
    return (size_t)(q - p);
}

/*
 * Strings and keys are already valid UTF-8 (checked when the value was
 * built or read), so they are copied as they are. Each writer makes room
 * for what it writes and then stores without checks; scalars in containers
 * are written without recursing.
 */
// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int write_rec(loom_buf *b, const loom_any *v, int depth)
{
    int rc;
    uint8_t *p;
    if (v->kind == LOOM_ANY_ARRAY) {
        if (depth >= LOOM__MAX_DEPTH) {
            return LOOM_ELIMIT;
        }
        if ((rc = room(b, 11))) {
            return rc;
        }
        p = b->data + b->len;
        *p++ = LOOM__ANY_ARRAY;
        b->len = (size_t)(loom__put_varuint(p, v->u.arr.n) - b->data);
        for (size_t i = 0; !rc && i < v->u.arr.n; i++) {
            const loom_any *c = v->u.arr.v[i];
            rc = c->kind == LOOM_ANY_ARRAY || c->kind == LOOM_ANY_OBJECT
                     ? write_rec(b, c, depth + 1)
                     : write_leaf(b, c);
        }
        return rc;
    }
    if (v->kind != LOOM_ANY_OBJECT) {
        return write_leaf(b, v);
    }
    if (depth >= LOOM__MAX_DEPTH) {
        return LOOM_ELIMIT;
    }
    if (!(v->flags & LOOM__ANY_DIGIT_KEY)) {
        /* insertion order is the JS order */
        uint64_t need = flat_size(v);
        if (need && need <= SIZE_MAX) {
            if ((rc = room(b, (size_t)need))) {
                return rc;
            }
            put_flat(b, v);
            return LOOM_OK;
        }
    }
    size_t *order = NULL;
    if ((rc = loom__any_js_order(v, &order))) {
        return rc;
    }
    rc = room(b, 11);
    if (!rc) {
        p = b->data + b->len;
        *p++ = LOOM__ANY_OBJECT;
        b->len = (size_t)(loom__put_varuint(p, v->u.obj.n) - b->data);
    }
    for (size_t k = 0; !rc && k < v->u.obj.n; k++) {
        size_t i = order ? order[k] : k;
        rc = put_entry(b, v->u.obj.keys[i], v->u.obj.klens[i], v->u.obj.v[i],
                       depth + 1);
    }
    if (order) {
        loom__free(v->a, order, v->u.obj.n * sizeof(*order));
    }
    return rc;
}

int loom__any_write(loom_buf *b, const loom_any *v)
{
    /* a flat object (what maps mostly hold) without the recursion */
    if (v->kind == LOOM_ANY_OBJECT && !(v->flags & LOOM__ANY_DIGIT_KEY)) {
        uint64_t need = flat_size(v);
        if (need && need <= SIZE_MAX) {
            int rc = room(b, (size_t)need);
            if (!rc) {
                put_flat(b, v);
            }
            return rc;
        }
    }
    size_t start = b->len;
    int rc = write_rec(b, v, 0);
    if (rc) {
        b->len = start;
    }
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

static int oom(loom__reader *r, size_t pos)
{
    return loom__reader_fail(r, LOOM_ENOMEM, pos, "out of memory");
}

static int too_deep(loom__reader *r, size_t pos)
{
    return loom__reader_fail(r, LOOM_ELIMIT, pos,
                             "Any value nested too deeply");
}

static int bad_tag(loom__reader *r, size_t pos)
{
    return loom__reader_fail(r, LOOM_EMALFORMED, pos, "unknown Any tag");
}

static int bad_count(loom__reader *r, size_t pos)
{
    return loom__reader_fail(r, LOOM_EMALFORMED, pos,
                             "Any length past the end of input");
}

static int read_number(loom__reader *r, uint8_t tag, double *out)
{
    int rc;
    if (tag == LOOM__ANY_INT) {
        bool neg;
        uint64_t mag;
        rc = loom__read_varint(r, &neg, &mag);
        if (!rc) {
            *out = neg ? -(double)mag : (double)mag;
        }
    } else if (tag == LOOM__ANY_F32) {
        float f;
        rc = loom__read_f32(r, &f);
        if (!rc) {
            *out = (double)f;
        }
    } else {
        rc = loom__read_f64(r, out);
    }
    return rc;
}

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int read_array(loom__reader *r,
                      const loom_allocator *a,
                      int depth,
                      size_t start,
                      loom_any **out)
{
    uint64_t n;
    int rc = loom__read_varuint(r, &n);
    if (rc) {
        return rc;
    }
    if (n > loom__reader_left(r)) { /* every element takes at least a byte */
        return bad_count(r, start);
    }
    loom_any *arr = NULL;
    if (loom_any_new_array(a, &arr) ||
        loom__any_array_reserve(arr, (size_t)n)) {
        loom_any_free(arr);
        return oom(r, start);
    }
    for (uint64_t i = 0; i < n; i++) {
        rc = loom__any_read(r, a, depth + 1, &arr->u.arr.v[i]);
        if (rc) {
            loom_any_free(arr);
            return rc;
        }
        arr->u.arr.n++;
    }
    *out = arr;
    return LOOM_OK;
}

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int read_object(loom__reader *r,
                       const loom_allocator *a,
                       int depth,
                       size_t start,
                       loom_any **out)
{
    uint64_t n;
    int rc = loom__read_varuint(r, &n);
    if (rc) {
        return rc;
    }
    if (n > loom__reader_left(r) / 2) { /* a key length byte and a tag each */
        return bad_count(r, start);
    }
    loom_any *obj = NULL;
    if (loom_any_new_object(a, &obj) ||
        loom__any_object_reserve(obj, (size_t)n)) {
        loom_any_free(obj);
        return oom(r, start);
    }
    for (uint64_t i = 0; i < n; i++) {
        const char *key;
        size_t klen;
        loom_any *child = NULL;
        rc = loom__read_varstring(r, &key, &klen);
        if (!rc) {
            rc = loom__any_read(r, a, depth + 1, &child);
        }
        if (rc) {
            loom_any_free(obj);
            return rc;
        }
        if (klen == 9 && memcmp(key, "__proto__", 9) == 0) {
            /* lib0 assigns obj[key] = value, which for "__proto__" sets the
             * prototype instead of a key: the member disappears. */
            loom_any_free(child);
            continue;
        }
        if (loom__any_object_append(obj, key, klen, child)) {
            loom_any_free(child);
            loom_any_free(obj);
            return oom(r, start);
        }
    }
    /* lib0 assigns obj[key] = value: a repeated key keeps its first
     * position and takes the last value. */
    if (loom__any_object_dedupe(obj)) {
        loom_any_free(obj);
        return oom(r, start);
    }
    *out = obj;
    return LOOM_OK;
}

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
int loom__any_read(loom__reader *r,
                   const loom_allocator *a,
                   int depth,
                   loom_any **out)
{
    if (r->err) {
        return r->err;
    }
    size_t start = r->pos;
    uint8_t tag;
    int rc = loom__read_u8(r, &tag);
    if (rc) {
        return rc;
    }
    loom_any *v = NULL;
    switch (tag) {
    case LOOM__ANY_UNDEFINED:
        rc = loom_any_new_undefined(a, &v);
        break;
    case LOOM__ANY_NULL:
        rc = loom_any_new_null(a, &v);
        break;
    case LOOM__ANY_TRUE:
    case LOOM__ANY_FALSE:
        rc = loom_any_new_bool(a, tag == LOOM__ANY_TRUE, &v);
        break;
    case LOOM__ANY_INT:
    case LOOM__ANY_F32:
    case LOOM__ANY_F64: {
        double d;
        rc = read_number(r, tag, &d);
        if (rc) {
            return rc;
        }
        rc = loom_any_new_number(a, d, &v);
        break;
    }
    case LOOM__ANY_BIGINT: {
        int64_t big;
        rc = loom__read_i64(r, &big);
        if (rc) {
            return rc;
        }
        rc = loom_any_new_bigint(a, big, &v);
        break;
    }
    case LOOM__ANY_STRING: {
        const char *s;
        size_t len;
        rc = loom__read_varstring(r, &s, &len);
        if (rc) {
            return rc;
        }
        rc = loom__any_new_string_valid(a, LOOM_ANY_STRING, s, len, &v);
        break;
    }
    case LOOM__ANY_BINARY: {
        const uint8_t *p;
        size_t len;
        rc = loom__read_varbytes(r, &p, &len);
        if (rc) {
            return rc;
        }
        rc = loom_any_new_binary(a, p, len, &v);
        break;
    }
    case LOOM__ANY_ARRAY:
    case LOOM__ANY_OBJECT:
        if (depth >= LOOM__MAX_DEPTH) {
            return too_deep(r, start);
        }
        if (tag == LOOM__ANY_ARRAY) {
            rc = read_array(r, a, depth, start, &v);
        } else {
            rc = read_object(r, a, depth, start, &v);
        }
        if (rc) {
            return rc;
        }
        break;
    default:
        return bad_tag(r, start);
    }
    if (rc) {
        return oom(r, start);
    }
    *out = v;
    return LOOM_OK;
}

/* Bytes of the minimal varUint encoding of n. */
static size_t varuint_size(uint64_t n)
{
    size_t k = 1;
    while (n >= 0x80) {
        n >>= 7;
        k++;
    }
    return k;
}

/* Is the number at [start, r->pos) (tag included) written as
 * loom__any_write_number writes v? */
static bool number_canon(const loom__reader *r, size_t start, double v)
{
    uint8_t tmp[16];
    loom_buf b = {0};
    b.data = tmp;
    b.cap = sizeof(tmp); /* 9 bytes at most: never grows */
    if (loom__any_write_number(&b, v))
        return false;
    return b.len == r->pos - start && memcmp(tmp, r->p + start, b.len) == 0;
}

/*
 * loom__any_skip, and when canon is not NULL also whether the value's bytes
 * are already what loom__any_canon would write (cleared when not; never
 * set). That holds for what lib0 writes, so a decoder can keep the bytes
 * instead of re-encoding: numbers as the JS number rule picks them,
 * minimal lengths and counts, and objects that loom__any_canon streams (at
 * most 16 keys, none integer-like, repeated or "__proto__").
 */
// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static LOOM__NOINLINE int check_slow(loom__reader *r, int depth, bool *canon)
{
    if (r->err) {
        return r->err;
    }
    size_t start = r->pos;
    uint8_t tag;
    int rc = loom__read_u8(r, &tag);
    if (rc) {
        return rc;
    }
    switch (tag) {
    case LOOM__ANY_UNDEFINED:
    case LOOM__ANY_NULL:
    case LOOM__ANY_TRUE:
    case LOOM__ANY_FALSE:
        return LOOM_OK;
    case LOOM__ANY_INT:
    case LOOM__ANY_F32:
    case LOOM__ANY_F64: {
        double d;
        rc = read_number(r, tag, &d);
        if (rc || !canon || !*canon) {
            return rc;
        }
        /* an int of up to 31 bits in its shortest form is what
         * loom__any_write_number writes; anything else is compared */
        double m = fabs(d);
        if (tag == LOOM__ANY_INT && m <= 2147483647.0 &&
            r->pos - start - 1 ==
                (m < 64 ? 1 : 1 + varuint_size((uint64_t)m >> 6))) {
            return LOOM_OK;
        }
        if (!number_canon(r, start, d)) {
            *canon = false;
        }
        return rc;
    }
    case LOOM__ANY_BIGINT: {
        int64_t big;
        return loom__read_i64(r, &big);
    }
    case LOOM__ANY_STRING:
    case LOOM__ANY_BINARY: {
        const char *s;
        const uint8_t *p;
        size_t len;
        if (tag == LOOM__ANY_STRING) {
            rc = loom__read_varstring(r, &s, &len);
        } else {
            rc = loom__read_varbytes(r, &p, &len);
        }
        if (!rc && canon && r->pos - start - 1 - len != varuint_size(len)) {
            *canon = false;
        }
        return rc;
    }
    case LOOM__ANY_ARRAY:
    case LOOM__ANY_OBJECT: {
        if (depth >= LOOM__MAX_DEPTH) {
            return too_deep(r, start);
        }
        uint64_t n;
        rc = loom__read_varuint(r, &n);
        if (rc) {
            return rc;
        }
        if (n > loom__reader_left(r) / (tag == LOOM__ANY_ARRAY ? 1 : 2)) {
            return bad_count(r, start);
        }
        if (canon && r->pos - start - 1 != varuint_size(n)) {
            *canon = false;
        }
        if (canon && tag == LOOM__ANY_OBJECT && n > 16) {
            *canon = false;
        }
        const char *keys[16];
        size_t lens[16];
        for (uint64_t i = 0; !rc && i < n; i++) {
            if (tag == LOOM__ANY_OBJECT) {
                size_t at = r->pos;
                const char *key;
                size_t klen;
                rc = loom__read_varstring(r, &key, &klen);
                if (!rc && canon && *canon) {
                    uint32_t idx;
                    if (r->pos - at - klen != varuint_size(klen) ||
                        loom__js_index_key(key, klen, &idx) ||
                        (klen == 9 && memcmp(key, "__proto__", 9) == 0)) {
                        *canon = false;
                    }
                    for (uint64_t j = 0; j < i && *canon; j++) {
                        if (lens[j] == klen && memcmp(keys[j], key, klen) == 0)
                            *canon = false;
                    }
                    keys[i] = key; /* i < 16 while *canon */
                    lens[i] = klen;
                }
            }
            if (!rc) {
                rc = loom__any_check(r, depth + 1, canon);
            }
        }
        return rc;
    }
    default:
        return bad_tag(r, start);
    }
}


/*
 * The fast path of loom__any_check, for what yjs writes for small values:
 * single-byte lengths and counts, ASCII keys (1 to 16 bytes) and strings,
 * small ints, objects of up to 16 keys none of which could be an index,
 * "__proto__" or a repeat. It reads through a local pointer and stores the
 * position once. Anything else makes it give up (returning 1) with the
 * reader where the value starts, and check_slow reads the value again with
 * every rule and error; the only side effect before giving up is what
 * nested values (checked by loom__any_check itself) did to *canon and the
 * reader, which check_slow repeats identically.
 */
static LOOM__INLINE const uint8_t *fast_scalar(const uint8_t *p,
                                               const uint8_t *end)
{
    /* p < end */
    switch (*p) {
    case LOOM__ANY_UNDEFINED:
    case LOOM__ANY_NULL:
    case LOOM__ANY_TRUE:
    case LOOM__ANY_FALSE:
        return p + 1;
    case LOOM__ANY_INT: {
        /* a varInt of up to 31 bits in its minimal form (no zero last
         * byte), as loom__any_write_number writes it */
        if (end - p >= 2 && p[1] < 0x80) {
            return p + 2;
        }
        /* two or three bytes (up to 20 bits): counters and ids; p[1] has
         * its continuation bit here, the last byte must not be zero */
        if (end - p >= 3 && (uint8_t)(p[2] - 1) < 0x7f) {
            return p + 3;
        }
        if (end - p >= 4 && p[2] >= 0x80 && (uint8_t)(p[3] - 1) < 0x7f) {
            return p + 4;
        }
        uint64_t mag = 0; /* up to 34 bits before the range test */
        unsigned shift = 6;
        const uint8_t *q = p + 2;
        uint8_t b;
        do {
            if (q >= end || shift > 27) {
                return NULL;
            }
            b = *q++;
            mag |= (uint64_t)(b & 0x7f) << shift;
            shift += 7;
        } while (b & 0x80);
        return b != 0 && mag <= 0x7fffffffu ? q : NULL;
    }
    case LOOM__ANY_STRING: {
        if (end - p < 2) {
            return NULL;
        }
        size_t len = p[1];
        if (len >= 0x80 || len > (size_t)(end - p - 2)) {
            return NULL;
        }
        const char *str = (const char *)p + 2;
        if (!(len <= 16 && loom__ascii_short(str, len)) &&
            !loom__utf8_valid(str, len)) {
            return NULL;
        }
        return p + 2 + len;
    }
    default:
        return NULL;
    }
}

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
int loom__any_check(loom__reader *r, int depth, bool *canon)
{
    if (r->err) {
        return r->err;
    }
    /* no pointer is formed into an empty input (which may be NULL) */
    if (r->pos >= r->len) {
        return check_slow(r, depth, canon);
    }
    const uint8_t *start = r->p + r->pos, *end = r->p + r->len;
    const uint8_t *p = start;
    if (*p != LOOM__ANY_OBJECT) {
        const uint8_t *q = fast_scalar(p, end);
        if (!q) {
            return check_slow(r, depth, canon);
        }
        r->pos = (size_t)(q - r->p);
        return LOOM_OK;
    }
    /* the count: one byte, at most 16, and room for a key length and a tag
     * per entry (the slow path reports a count that does not fit) */
    if (depth >= LOOM__MAX_DEPTH || end - p < 2 || p[1] > 16 ||
        p[1] > (end - p - 2) / 2) {
        return check_slow(r, depth, canon);
    }
    size_t n = p[1];
    p += 2;
    const uint8_t *keys[16];
    uint8_t lens[16];
    uint32_t seen = 0; /* key lengths seen, mod 32: most keys differ */
    for (size_t i = 0; i < n; i++) {
        if (p >= end) {
            goto slow;
        }
        /* keys of 1 to 16 ASCII bytes, not starting with a digit; an empty,
         * longer or non-ASCII key goes the slow way */
        size_t klen = *p++;
        if (klen - 1 >= 16 || klen >= (size_t)(end - p) ||
            (unsigned)(p[0] - '0') <= 9 || !loom__ascii_short(p, klen) ||
            (klen == 9 && memcmp(p, "__proto__", 9) == 0)) {
            goto slow;
        }
        uint32_t bit = (uint32_t)1 << klen;
        for (size_t j = 0; (seen & bit) && j < i; j++) {
            if (lens[j] == klen && memcmp(keys[j], p, klen) == 0) {
                goto slow;
            }
        }
        seen |= bit;
        keys[i] = p;
        lens[i] = (uint8_t)klen;
        p += klen; /* < end: klen < end - p above */
        const uint8_t *q = fast_scalar(p, end);
        if (q) {
            p = q;
            continue;
        }
        /* a nested or unusual value: the full check, from here */
        r->pos = (size_t)(p - r->p);
        int rc = loom__any_check(r, depth + 1, canon);
        if (rc) {
            return rc;
        }
        p = r->p + r->pos;
    }
    r->pos = (size_t)(p - r->p);
    return LOOM_OK;
slow:
    r->pos = (size_t)(start - r->p);
    return check_slow(r, depth, canon);
}

/* The end of a member value that loom__any_check_flat has taken. */
static const uint8_t *flat_value_end(const uint8_t *p)
{
    switch (p[0]) {
    case LOOM__ANY_INT: {
        const uint8_t *q = p + 1;
        while (*q++ >= 0x80) {
        }
        return q;
    }
    case LOOM__ANY_STRING:
        return p + 2 + p[1];
    default:
        return p + 1;
    }
}

/* Only asked when a member has the key's length: the members before are
 * known to be flat. */
LOOM__NOINLINE bool
loom__any_flat_repeat(const uint8_t *first, const uint8_t *key, size_t klen)
{
    for (const uint8_t *p = first; p < key - 1;) {
        size_t l = p[0];
        if (l == klen && memcmp(p + 1, key, klen) == 0) {
            return true;
        }
        p = flat_value_end(p + 1 + l);
    }
    return false;
}

int loom__any_check_n(loom__reader *r, uint64_t n, bool *canon)
{
    if (r->err) {
        return r->err;
    }
    uint64_t i = 0;
    if (r->len - r->pos >= 2) {
        const uint8_t *p = r->p + r->pos, *end = r->p + r->len;
        loom__flat_shape shape;
        loom__flat_shape_init(&shape);
        for (; i < n && end - p >= 2; i++) {
            const uint8_t *q = *p == LOOM__ANY_OBJECT
                                   ? loom__any_check_flat(p, end, &shape)
                                   : fast_scalar(p, end);
            if (!q) {
                break;
            }
            p = q;
        }
        r->pos = (size_t)(p - r->p);
    }
    /* the rest (usually nothing) value by value, from the first value the
     * loop above did not take */
    for (; i < n; i++) {
        int rc = loom__any_check(r, 0, canon);
        if (rc) {
            return rc;
        }
    }
    return LOOM_OK;
}

int loom__any_skip(loom__reader *r, int depth)
{
    return loom__any_check(r, depth, NULL);
}

/* ---- canonical re-encoding ---------------------------------------------- */

/* Can an object's members be copied in wire order? Yes unless a key is
 * integer-like (JS lists those first), repeated (the last value wins at the
 * first position) or "__proto__" (lib0 drops it): then the object goes
 * through a tree. Large objects take the tree too, to keep this linear. */
/*
 * Streams an object's n entries from r to out, checking as it goes that
 * streaming gives what decode + encode would: no more than 16 keys, none an
 * array index or __proto__, no key twice. False on any problem (r and out
 * are then to be thrown away).
 */
static bool object_stream(loom__reader *r,
                          const loom_allocator *a,
                          uint64_t n,
                          int depth,
                          loom_buf *out)
{
    const char *keys[16];
    size_t lens[16];
    if (n > 16)
        return false;
    for (uint64_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        uint32_t idx;
        if (loom__read_varstring(r, &k, &kl))
            return false;
        if (loom__js_index_key(k, kl, &idx) ||
            (kl == 9 && memcmp(k, "__proto__", 9) == 0))
            return false;
        for (uint64_t j = 0; j < i; j++) {
            if (lens[j] == kl && memcmp(keys[j], k, kl) == 0)
                return false;
        }
        keys[i] = k;
        lens[i] = kl;
        if (loom__write_varstring(out, k, kl) ||
            loom__any_canon(r, a, depth + 1, out))
            return false;
    }
    return true;
}

int loom__any_canon(loom__reader *r,
                    const loom_allocator *a,
                    int depth,
                    loom_buf *out)
{
    if (r->err)
        return r->err;
    size_t start = r->pos;
    uint8_t tag;
    int rc = loom__read_u8(r, &tag);
    if (rc)
        return rc;
    switch (tag) {
    case LOOM__ANY_UNDEFINED:
    case LOOM__ANY_NULL:
    case LOOM__ANY_TRUE:
    case LOOM__ANY_FALSE:
        return loom__buf_push(out, tag);
    case LOOM__ANY_INT:
    case LOOM__ANY_F32:
    case LOOM__ANY_F64: {
        double v;
        if ((rc = read_number(r, tag, &v)))
            return rc;
        return loom__any_write_number(out, v);
    }
    case LOOM__ANY_BIGINT: {
        int64_t big;
        if ((rc = loom__read_i64(r, &big)))
            return rc;
        return loom__buf_append(out, r->p + start, r->pos - start);
    }
    case LOOM__ANY_STRING: {
        /* rewritten, not copied: the length prefix becomes minimal */
        const char *str;
        size_t len;
        if ((rc = loom__read_varstring(r, &str, &len)) ||
            (rc = loom__buf_push(out, tag)))
            return rc;
        return loom__write_varstring(out, str, len);
    }
    case LOOM__ANY_BINARY: {
        const uint8_t *bin;
        size_t len;
        if ((rc = loom__read_varbytes(r, &bin, &len)) ||
            (rc = loom__buf_push(out, tag)))
            return rc;
        return loom__write_varbytes(out, bin, len);
    }
    case LOOM__ANY_ARRAY:
    case LOOM__ANY_OBJECT: {
        if (depth >= LOOM__MAX_DEPTH)
            return too_deep(r, start);
        uint64_t n;
        if ((rc = loom__read_varuint(r, &n)))
            return rc;
        if (tag == LOOM__ANY_OBJECT) {
            /* one pass over a copy of the reader; decode and re-encode when
             * streaming would differ (or the input is bad: then the decoder
             * reports it as it would) */
            loom__reader rr = *r;
            size_t mark = out->len;
            if (!loom__buf_push(out, tag) && !loom__write_varuint(out, n) &&
                object_stream(&rr, a, n, depth, out)) {
                *r = rr;
                return LOOM_OK;
            }
            out->len = mark;
            loom_any *v;
            r->pos = start;
            if ((rc = loom__any_read(r, a, depth, &v)))
                return rc;
            rc = loom__any_write(out, v);
            loom_any_free(v);
            return rc;
        }
        if ((rc = loom__buf_push(out, tag)) ||
            (rc = loom__write_varuint(out, n)))
            return rc;
        for (uint64_t i = 0; i < n; i++) {
            if ((rc = loom__any_canon(r, a, depth + 1, out)))
                return rc;
        }
        return LOOM_OK;
    }
    default:
        return bad_tag(r, start);
    }
}
