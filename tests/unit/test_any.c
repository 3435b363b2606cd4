/*
 * test_any.c: unit tests of src/any: replay of every lib0 primitive vector
 * (tests/vectors/primitives.json) through jansson + TJSON, the Any codec on
 * hostile input (truncation, bad tags, absurd lengths, invalid UTF-8, deep
 * nesting), JSON.stringify / JSON.parse compatibility, JS number
 * formatting, the three equalities, and allocation failure on every path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <math.h>

#include "any/any_internal.h"
#include "loom/doc.h"
#include "tjson.h"

#ifndef LOOM_VECTORS_DIR
#    error "LOOM_VECTORS_DIR must name tests/vectors"
#endif

/* ---- a checking allocator ----------------------------------------------- */

typedef struct track {
    size_t live_blocks;
    size_t max_request;
    long fail_after; /* -1: never; else allocations that still succeed */
} track;

typedef struct hdr {
    size_t size;
    size_t pad;
} hdr;

static void *t_malloc(void *ud, size_t size)
{
    track *t = ud;
    if (t->fail_after == 0) {
        return NULL;
    }
    if (t->fail_after > 0) {
        t->fail_after--;
    }
    if (size > t->max_request) {
        t->max_request = size;
    }
    hdr *h = malloc(sizeof(hdr) + size);
    if (!h) {
        return NULL;
    }
    h->size = size;
    t->live_blocks++;
    return h + 1;
}

static void t_free(void *ud, void *p, size_t size)
{
    track *t = ud;
    hdr *h = (hdr *)p - 1;
    assert_int_equal(h->size, size);
    t->live_blocks--;
    free(h);
}

static void *t_realloc(void *ud, void *p, size_t old, size_t size)
{
    track *t = ud;
    if (!p) {
        return t_malloc(ud, size);
    }
    hdr *h = (hdr *)p - 1;
    assert_int_equal(h->size, old);
    if (t->fail_after == 0) {
        return NULL;
    }
    if (t->fail_after > 0) {
        t->fail_after--;
    }
    if (size > t->max_request) {
        t->max_request = size;
    }
    hdr *n = realloc(h, sizeof(hdr) + size);
    if (!n) {
        return NULL;
    }
    n->size = size;
    return n + 1;
}

static loom_allocator track_alloc(track *t)
{
    loom_allocator a = {t_malloc, t_realloc, t_free, t};
    memset(t, 0, sizeof(*t));
    t->fail_after = -1;
    return a;
}

/* ---- helpers ------------------------------------------------------------ */

static json_t *vectors;

static int load_vectors(void **state)
{
    (void)state;
    json_error_t err;
    vectors = tjson_load_file(LOOM_VECTORS_DIR "/primitives.json", 0, &err);
    if (!vectors) {
        fprintf(stderr, "primitives.json: %s (line %d)\n", err.text, err.line);
        return -1;
    }
    return 0;
}

static int free_vectors(void **state)
{
    (void)state;
    json_decref(vectors);
    return 0;
}

static json_t *section(const char *name)
{
    json_t *s = json_object_get(vectors, name);
    assert_true(json_is_array(s));
    assert_true(json_array_size(s) > 0);
    return s;
}

static void assert_hex(const loom_buf *b, const char *hex)
{
    char *got = hex_encode(b->data, b->len);
    assert_non_null(got);
    assert_string_equal(got, hex);
    free(got);
}

static uint8_t *unhex(const char *hex, size_t *len)
{
    uint8_t *p = NULL;
    assert_int_equal(hex_decode(hex, &p, len), 0);
    return p;
}

static loom_any *from_tjson_text(const char *text)
{
    json_error_t err;
    json_t *j =
        tjson_loadb(text, strlen(text), JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    assert_non_null(j);
    loom_any *v = NULL;
    assert_int_equal(tjson_to_any(j, NULL, &v), 0);
    json_decref(j);
    return v;
}

/* decode(hex) must fail with `code`; returns the error offset */
static size_t decode_fails(const char *hex, int code)
{
    size_t n;
    uint8_t *p = unhex(hex, &n);
    loom_any *v = (loom_any *)(uintptr_t)1;
    loom_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(loom_any_decode(NULL, p, n, &v, &err), code);
    assert_ptr_equal(v, (loom_any *)(uintptr_t)1); /* untouched */
    assert_int_equal(err.code, code);
    assert_true(err.message[0] != '\0');
    loom__reader r;
    loom__reader_init(&r, p, n);
    int rc = loom__any_skip(&r, 0);
    if (code == LOOM_EMALFORMED && rc == LOOM_OK) {
        /* trailing bytes: skip reads one value and stops */
        assert_true(loom__reader_left(&r) > 0);
    } else if (code != LOOM_ENOMEM) {
        assert_int_equal(rc, code);
    }
    free(p);
    return err.offset;
}

static loom_any *decode_ok(const char *hex)
{
    size_t n;
    uint8_t *p = unhex(hex, &n);
    loom_any *v = NULL;
    assert_int_equal(loom_any_decode(NULL, p, n, &v, NULL), 0);
    assert_non_null(v);
    loom__reader r;
    loom__reader_init(&r, p, n);
    assert_int_equal(loom__any_skip(&r, 0), 0);
    assert_int_equal(loom__reader_left(&r), 0);
    free(p);
    return v;
}

static char *to_json(const loom_any *v, int *rc_out)
{
    loom_buf b = {0};
    int rc = loom_any_to_json(v, &b);
    *rc_out = rc;
    if (rc) {
        assert_int_equal(b.len, 0);
        loom_buf_free(&b);
        return NULL;
    }
    char *s = malloc(b.len + 1);
    memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    loom_buf_free(&b);
    return s;
}

static void assert_json_out(const loom_any *v, const char *expect)
{
    int rc;
    char *s = to_json(v, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(s, expect);
    free(s);
}

/* ---- primitive vectors -------------------------------------------------- */

static double tjson_number(const json_t *j)
{
    if (json_is_number(j)) {
        return json_number_value(j);
    }
    loom_any *v = NULL;
    assert_int_equal(tjson_to_any(j, NULL, &v), 0);
    assert_int_equal(loom_any_kind_of(v), LOOM_ANY_NUMBER);
    double d = loom_any_number(v);
    loom_any_free(v);
    return d;
}

static void same_number(double a, double b)
{
    if (isnan(a)) {
        assert_true(isnan(b));
    } else {
        assert_true(a == b);
        assert_int_equal(signbit(a) != 0, signbit(b) != 0);
    }
}

static void test_vectors_varuint(void **state)
{
    (void)state;
    json_t *s = section("varUint");
    size_t i;
    json_t *e;
    json_array_foreach(s, i, e)
    {
        uint64_t v = (uint64_t)json_integer_value(json_object_get(e, "value"));
        const char *hex = json_string_value(json_object_get(e, "hex"));
        loom_buf b = {0};
        assert_int_equal(loom__write_varuint(&b, v), 0);
        assert_hex(&b, hex);
        loom__reader r;
        loom__reader_init(&r, b.data, b.len);
        uint64_t got;
        assert_int_equal(loom__read_varuint(&r, &got), 0);
        assert_int_equal(got, v);
        assert_int_equal(loom__reader_left(&r), 0);
        loom_buf_free(&b);
    }
}

static void test_vectors_varint(void **state)
{
    (void)state;
    json_t *s = section("varInt");
    size_t i;
    json_t *e;
    json_array_foreach(s, i, e)
    {
        double d = tjson_number(json_object_get(e, "value"));
        const char *hex = json_string_value(json_object_get(e, "hex"));
        loom_buf b = {0};
        assert_int_equal(
            loom__write_varint(&b, signbit(d) != 0, (uint64_t)fabs(d)), 0);
        assert_hex(&b, hex);
        if (fabs(d) <= 9.2e18) {
            loom_buf b2 = {0};
            if (!(d == 0 && signbit(d))) {
                assert_int_equal(loom__write_varint_i64(&b2, (int64_t)d), 0);
                assert_hex(&b2, hex);
            }
            loom_buf_free(&b2);
        }
        loom__reader r;
        loom__reader_init(&r, b.data, b.len);
        bool neg;
        uint64_t mag;
        assert_int_equal(loom__read_varint(&r, &neg, &mag), 0);
        same_number(neg ? -(double)mag : (double)mag, d);
        loom_buf_free(&b);
    }
}

static void test_vectors_varstring(void **state)
{
    (void)state;
    json_t *s = section("varString");
    size_t i;
    json_t *e;
    json_array_foreach(s, i, e)
    {
        json_t *jv = json_object_get(e, "value");
        const char *str = json_string_value(jv);
        size_t len = json_string_length(jv);
        const char *hex = json_string_value(json_object_get(e, "hex"));
        loom_buf b = {0};
        assert_int_equal(loom__write_varstring(&b, str, len), 0);
        assert_hex(&b, hex);
        assert_int_equal(loom__utf16_len(str, len),
                         json_integer_value(json_object_get(e, "utf16Length")));
        loom__reader r;
        loom__reader_init(&r, b.data, b.len);
        const char *got;
        size_t glen;
        assert_int_equal(loom__read_varstring(&r, &got, &glen), 0);
        assert_int_equal(glen, len);
        assert_memory_equal(got, str, len);
        loom_buf_free(&b);
    }
}

static void test_vectors_fixed(void **state)
{
    (void)state;
    static const char *const names[] = {"float32BigEndian", "float64BigEndian",
                                        "bigInt64BigEndian"};
    for (int k = 0; k < 3; k++) {
        json_t *s = section(names[k]);
        size_t i;
        json_t *e;
        json_array_foreach(s, i, e)
        {
            json_t *jv = json_object_get(e, "value");
            const char *hex = json_string_value(json_object_get(e, "hex"));
            loom_buf b = {0};
            loom__reader r;
            if (k == 2) {
                loom_any *v = NULL;
                assert_int_equal(tjson_to_any(jv, NULL, &v), 0);
                assert_int_equal(loom__write_i64(&b, loom_any_bigint(v)), 0);
                assert_hex(&b, hex);
                loom__reader_init(&r, b.data, b.len);
                int64_t got;
                assert_int_equal(loom__read_i64(&r, &got), 0);
                assert_int_equal(got, loom_any_bigint(v));
                loom_any_free(v);
            } else if (k == 0) {
                double d = tjson_number(jv);
                assert_int_equal(loom__write_f32(&b, (float)d), 0);
                assert_hex(&b, hex);
                loom__reader_init(&r, b.data, b.len);
                float got;
                assert_int_equal(loom__read_f32(&r, &got), 0);
                same_number((double)got, (double)(float)d);
            } else {
                double d = tjson_number(jv);
                assert_int_equal(loom__write_f64(&b, d), 0);
                assert_hex(&b, hex);
                loom__reader_init(&r, b.data, b.len);
                double got;
                assert_int_equal(loom__read_f64(&r, &got), 0);
                same_number(got, d);
            }
            loom_buf_free(&b);
        }
    }
}

static void test_vectors_any(void **state)
{
    (void)state;
    json_t *s = section("any");
    size_t i;
    json_t *e;
    json_array_foreach(s, i, e)
    {
        json_t *jv = json_object_get(e, "value");
        const char *hex = json_string_value(json_object_get(e, "hex"));
        loom_any *v = NULL;
        assert_int_equal(tjson_to_any(jv, NULL, &v), 0);
        /* encode -> exact bytes */
        loom_buf b = {0};
        assert_int_equal(loom_any_encode(v, &b), 0);
        assert_hex(&b, hex);
        /* decode -> equal value, and back to the same TJSON */
        loom_any *d = decode_ok(hex);
        assert_true(loom_any_equal(v, d));
        assert_true(loom_any_equal(d, v));
        json_t *back = tjson_from_any(d);
        assert_non_null(back);
        assert_true(tjson_equal(back, jv));
        json_decref(back);
        /* a clone re-encodes to the same bytes */
        loom_any *c = NULL;
        assert_int_equal(loom_any_clone(d, NULL, &c), 0);
        loom_buf b2 = {0};
        assert_int_equal(loom_any_encode(c, &b2), 0);
        assert_int_equal(b2.len, b.len);
        assert_memory_equal(b2.data, b.data, b.len);
        /* every strict prefix is truncated input */
        for (size_t cut = 0; cut < b.len; cut++) {
            loom_any *t = (loom_any *)(uintptr_t)1;
            loom_error err;
            assert_int_equal(loom_any_decode(NULL, b.data, cut, &t, &err),
                             LOOM_EMALFORMED);
            assert_ptr_equal(t, (loom_any *)(uintptr_t)1);
            assert_true(err.offset <= cut);
            loom__reader r;
            loom__reader_init(&r, b.data, cut);
            assert_int_equal(loom__any_skip(&r, 0), LOOM_EMALFORMED);
        }
        loom_buf_free(&b);
        loom_buf_free(&b2);
        loom_any_free(v);
        loom_any_free(d);
        loom_any_free(c);
    }
}

/* ---- the number rule beyond the vectors --------------------------------- */

static void number_hex(double d, const char *hex)
{
    loom_buf b = {0};
    assert_int_equal(loom__any_write_number(&b, d), 0);
    assert_hex(&b, hex);
    loom_any *v = decode_ok(hex);
    same_number(loom_any_number(v), d);
    loom_any_free(v);
    loom_buf_free(&b);
}

static void test_number_rule(void **state)
{
    (void)state;
    number_hex(-2147483647.0, "7dffffffff0f");
    number_hex(-2147483648.0, "7ccf000000");
    number_hex(0.5, "7c3f000000");
    number_hex(1e-45, "7b3696d601ad376ab9");         /* not float32-exact */
    number_hex(1.401298464324817e-45, "7c00000001"); /* the float32 denormal */
    number_hex(3.4028234663852886e38, "7c7f7fffff");
    number_hex(3.4028235677973366e38, "7b47effffff0000000"); /* above FLT_MAX */
    number_hex(1e300, "7b7e37e43c8800759c");
    number_hex(-INFINITY, "7cff800000");
    /* a tag-125 varInt may carry up to 53 bits */
    loom_any *v = decode_ok("7dbfffffffffffff1f");
    assert_true(loom_any_number(v) == 9007199254740991.0);
    loom_any_free(v);
    v = decode_ok("7dffffffffffffff1f");
    assert_true(loom_any_number(v) == -9007199254740991.0);
    loom_any_free(v);
    decode_fails("7dbfffffffffffff3f", LOOM_EMALFORMED);
    v = decode_ok("7d8000"); /* non-minimal */
    assert_true(loom_any_number(v) == 0.0);
    loom_any_free(v);
}

static void test_object_key_order(void **state)
{
    (void)state;
    loom_any *o = NULL;
    assert_int_equal(loom_any_new_object(NULL, &o), 0);
    const char *keys[] = {"b",          "2",          "a",  "1",  "01",
                          "4294967295", "4294967294", "10", "-1", ""};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        loom_any *n = NULL;
        assert_int_equal(loom_any_new_number(NULL, (double)i, &n), 0);
        assert_int_equal(loom_any_object_set(o, keys[i], strlen(keys[i]), n),
                         0);
    }
    /* JS Object.keys: 1, 2, 10, 4294967294, then b, a, 01, 4294967295, -1, "" */
    assert_json_out(
        o,
        "{\"1\":3,\"2\":1,\"10\":7,\"4294967294\":6,\"b\":0,\"a\":2,\"01\":4,"
        "\"4294967295\":5,\"-1\":8,\"\":9}");
    loom_buf b = {0};
    assert_int_equal(loom_any_encode(o, &b), 0);
    loom_any *d = NULL;
    assert_int_equal(loom_any_decode(NULL, b.data, b.len, &d, NULL), 0);
    assert_true(loom_any_equal(o, d));
    size_t kl;
    assert_string_equal(loom_any_object_key(d, 0, &kl), "1");
    assert_string_equal(loom_any_object_key(d, 3, &kl), "4294967294");
    assert_string_equal(loom_any_object_key(d, 4, &kl), "b");
    /* insertion order kept in memory; set replaces in place */
    assert_string_equal(loom_any_object_key(o, 0, &kl), "b");
    loom_any *n = NULL;
    assert_int_equal(loom_any_new_string(NULL, "x", 1, &n), 0);
    assert_int_equal(loom_any_object_set(o, "a", 1, n), 0);
    assert_int_equal(loom_any_count(o), 10);
    assert_ptr_equal(loom_any_object_value(o, 2), n);
    assert_ptr_equal(loom_any_object_get(o, "a", 1), n);
    assert_null(loom_any_object_get(o, "zz", 2));
    uint32_t idx;
    assert_true(loom__js_index_key("0", 1, &idx));
    assert_int_equal(idx, 0);
    assert_false(loom__js_index_key("00", 2, &idx));
    assert_false(loom__js_index_key("", 0, &idx));
    assert_false(loom__js_index_key("12345678901", 11, &idx));
    assert_false(loom__js_index_key("1a", 2, &idx));
    loom_buf_free(&b);
    loom_any_free(o);
    loom_any_free(d);
}

/* ---- hostile Any input -------------------------------------------------- */

static void test_any_hostile(void **state)
{
    (void)state;
    /* bad tags */
    assert_int_equal(decode_fails("00", LOOM_EMALFORMED), 0);
    decode_fails("73", LOOM_EMALFORMED);
    decode_fails("80", LOOM_EMALFORMED);
    decode_fails("ff", LOOM_EMALFORMED);
    assert_int_equal(decode_fails("75027e73", LOOM_EMALFORMED),
                     3); /* offset of the bad tag */
    assert_int_equal(decode_fails("750273", LOOM_EMALFORMED),
                     0); /* count past the end */
    decode_fails("", LOOM_EMALFORMED);
    /* trailing bytes */
    assert_int_equal(decode_fails("7e7e", LOOM_EMALFORMED), 1);
    /* invalid UTF-8 in strings and keys */
    decode_fails("7703eda080", LOOM_EMALFORMED);
    decode_fails("7702c080", LOOM_EMALFORMED);
    decode_fails("7704f4908080", LOOM_EMALFORMED);
    decode_fails("760102c0807e", LOOM_EMALFORMED);
    decode_fails("760103eda0807e", LOOM_EMALFORMED);
    loom_any *v = decode_ok("7703efbbbf"); /* BOM kept */
    size_t len;
    assert_int_equal(loom_any_string(v, &len)[0], (char)0xef);
    assert_int_equal(len, 3);
    loom_any_free(v);
    /* varUint lengths past 2^53-1 */
    decode_fails("758080808080808010", LOOM_EMALFORMED);
    decode_fails("77ffffffffffffff7f", LOOM_EMALFORMED);
    /* absurd lengths fail before allocating them */
    track t;
    loom_allocator a = track_alloc(&t);
    static const char *const absurd[] = {
        "77ffffffff0f61",     "74ffffffff0f00",       "75ffffffff0f7e7e",
        "76ffffffff0f01617e", "75ffffffffffffff0f7e", "7603017e7e"};
    for (size_t i = 0; i < sizeof(absurd) / sizeof(absurd[0]); i++) {
        size_t n;
        uint8_t *p = unhex(absurd[i], &n);
        loom_any *out = NULL;
        assert_int_equal(loom_any_decode(&a, p, n, &out, NULL),
                         LOOM_EMALFORMED);
        assert_null(out);
        assert_true(t.max_request < 1024);
        assert_int_equal(t.live_blocks, 0);
        free(p);
    }
    /* duplicate keys: first position, last value (JS assignment) */
    v = decode_ok("7603016d7d0101617d0101617d02");
    assert_int_equal(loom_any_count(v), 2);
    assert_string_equal(loom_any_object_key(v, 1, &len), "a");
    assert_true(loom_any_number(loom_any_object_get(v, "a", 1)) == 2.0);
    loom_any_free(v);
    /* the same with a large object (indexed dedupe) */
    loom_buf b = {0};
    loom__buf_push(&b, 0x76);
    loom__write_varuint(&b, 100);
    for (int i = 0; i < 100; i++) {
        char k[8];
        int kn = snprintf(k, sizeof(k), "k%d", i % 40);
        loom__write_varstring(&b, k, (size_t)kn);
        loom__any_write_number(&b, i);
    }
    assert_int_equal(loom_any_decode(&a, b.data, b.len, &v, NULL), 0);
    assert_int_equal(loom_any_count(v), 40);
    for (int i = 0; i < 40; i++) {
        char k[8];
        int kn = snprintf(k, sizeof(k), "k%d", i);
        size_t kl;
        const char *key = loom_any_object_key(v, (size_t)i, &kl);
        assert_int_equal(kl, (size_t)kn);
        assert_memory_equal(key, k, kl);
        assert_true(loom_any_number(loom_any_object_value(v, (size_t)i)) ==
                    (i < 20 ? 80 + i : 40 + i));
    }
    loom_any_free(v);
    assert_int_equal(t.live_blocks, 0);
    loom_buf_free(&b);
}

static void nested_hex(loom_buf *b, int depth, uint8_t tag)
{
    b->len = 0;
    for (int i = 0; i < depth; i++) {
        loom__buf_push(b, tag);
        loom__buf_push(b, 1);
        if (tag == 0x76) {
            loom__buf_push(b, 0); /* key "" */
        }
    }
    loom__buf_push(b, 0x7e);
}

static void test_any_depth(void **state)
{
    (void)state;
    loom_buf b = {0};
    for (int k = 0; k < 2; k++) {
        uint8_t tag = k ? 0x76 : 0x75;
        nested_hex(&b, LOOM__MAX_DEPTH, tag);
        loom_any *v = NULL;
        assert_int_equal(loom_any_decode(NULL, b.data, b.len, &v, NULL), 0);
        loom_buf out = {0};
        assert_int_equal(loom_any_encode(v, &out), 0);
        assert_int_equal(out.len, b.len);
        /* the same value one level deeper cannot be written */
        loom_any *outer = NULL;
        if (k) {
            assert_int_equal(loom_any_new_object(NULL, &outer), 0);
            assert_int_equal(loom_any_object_set(outer, "", 0, v), 0);
        } else {
            assert_int_equal(loom_any_new_array(NULL, &outer), 0);
            assert_int_equal(loom_any_array_push(outer, v), 0);
        }
        out.len = 0;
        assert_int_equal(loom_any_encode(outer, &out), LOOM_ELIMIT);
        assert_int_equal(out.len, 0);
        assert_int_equal(loom_any_to_json(outer, &out), LOOM_ELIMIT);
        assert_int_equal(out.len, 0);
        loom_buf_free(&out);
        loom_any_free(outer);

        nested_hex(&b, LOOM__MAX_DEPTH + 1, tag);
        loom_error err;
        v = NULL;
        assert_int_equal(loom_any_decode(NULL, b.data, b.len, &v, &err),
                         LOOM_ELIMIT);
        assert_null(v);
        assert_int_equal(err.code, LOOM_ELIMIT);
        loom__reader r;
        loom__reader_init(&r, b.data, b.len);
        assert_int_equal(loom__any_skip(&r, 0), LOOM_ELIMIT);
        nested_hex(&b, 100000, tag);
        assert_int_equal(loom_any_decode(NULL, b.data, b.len, &v, NULL),
                         LOOM_ELIMIT);
    }
    loom_buf_free(&b);
}

/* ---- public API --------------------------------------------------------- */

static void test_api(void **state)
{
    (void)state;
    loom_any *v = (loom_any *)(uintptr_t)1;
    assert_int_equal(loom_any_new_string(NULL, "\xed\xa0\x80", 3, &v),
                     LOOM_EINVAL);
    assert_int_equal(loom_any_new_string(NULL, "\xc0\x80", 2, &v), LOOM_EINVAL);
    assert_int_equal(loom_any_new_subdoc(NULL, "\xff", 1, &v), LOOM_EINVAL);
    assert_int_equal(loom_any_new_string(NULL, NULL, 1, &v), LOOM_EINVAL);
    assert_int_equal(loom_any_new_type_ref(NULL, NULL, &v), LOOM_EINVAL);
    assert_ptr_equal(v, (loom_any *)(uintptr_t)1);

    loom_any *arr, *obj, *s, *n;
    assert_int_equal(loom_any_new_array(NULL, &arr), 0);
    assert_int_equal(loom_any_new_object(NULL, &obj), 0);
    assert_int_equal(loom_any_new_string(NULL, "a\0b", 3, &s), 0);
    assert_int_equal(loom_any_new_number(NULL, 1.5, &n), 0);
    assert_int_equal(loom_any_array_push(obj, n), LOOM_ETYPE);
    assert_int_equal(loom_any_object_set(arr, "k", 1, n), LOOM_ETYPE);
    assert_int_equal(loom_any_object_set(obj, "\xff", 1, n), LOOM_EINVAL);
    assert_int_equal(loom_any_array_push(arr, arr), LOOM_EINVAL);
    assert_int_equal(loom_any_array_push(arr, n), 0);
    assert_int_equal(loom_any_object_set(obj, "s", 1, s), 0);
    assert_int_equal(loom_any_array_push(arr, obj), 0);
    assert_int_equal(loom_any_count(arr), 2);
    assert_ptr_equal(loom_any_array_get(arr, 1), obj);
    assert_null(loom_any_array_get(arr, 2));
    size_t len;
    assert_memory_equal(loom_any_string(s, &len), "a\0b", 3);
    assert_int_equal(len, 3);
    assert_null(loom_any_string(n, &len));
    assert_int_equal(len, 0);
    assert_null(loom_any_binary(n, &len));
    assert_true(loom_any_number(s) == 0.0);
    assert_int_equal(loom_any_bool(s), 0);
    assert_int_equal(loom_any_bigint(s), 0);
    assert_null(loom_any_type(s));
    assert_int_equal(loom_any_kind_of(NULL), LOOM_ANY_UNDEFINED);
    assert_int_equal(loom_any_count(s), 0);
    assert_null(loom_any_object_key(arr, 0, &len));
    assert_null(loom_any_object_value(obj, 5));
    assert_json_out(arr, "[1.5,{\"s\":\"a\\u0000b\"}]");

    /* clone with another allocator, then deep equality */
    track t;
    loom_allocator a = track_alloc(&t);
    loom_any *c = NULL;
    assert_int_equal(loom_any_clone(arr, &a, &c), 0);
    assert_true(loom_any_equal(arr, c));
    assert_true(t.live_blocks > 0);
    loom_any_free(c);
    assert_int_equal(t.live_blocks, 0);

    loom_any *sd, *ty, *bi;
    static int fake_type;
    assert_int_equal(loom_any_new_subdoc(NULL, "guid-1", 6, &sd), 0);
    assert_int_equal(
        loom_any_new_type_ref(NULL, (loom_type *)(void *)&fake_type, &ty), 0);
    assert_int_equal(loom_any_new_bigint(NULL, -5, &bi), 0);
    assert_string_equal(loom_any_string(sd, &len), "guid-1");
    assert_ptr_equal(loom_any_type(ty), &fake_type);
    loom_buf b = {0};
    assert_int_equal(loom_any_array_push(arr, sd), 0);
    assert_int_equal(loom_any_encode(arr, &b), LOOM_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(loom_any_to_json(arr, &b), LOOM_EINVAL);
    assert_int_equal(loom_any_encode(ty, &b), LOOM_EINVAL);
    assert_int_equal(loom_any_to_json(bi, &b), LOOM_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(loom_any_clone(ty, NULL, &c), 0);
    assert_true(loom_any_equal(ty, c));
    assert_true(loom__any_strict_eq(ty, c));
    loom_any_free(c);
    /* encode appends to existing bytes */
    loom__buf_push(&b, 0xaa);
    assert_int_equal(loom_any_encode(bi, &b), 0);
    assert_hex(&b, "aa7afffffffffffffffb");
    loom_buf_free(&b);
    loom_any_free(arr);
    loom_any_free(ty);
    loom_any_free(bi);
    loom_any_free(NULL);
}

/* ---- equality ----------------------------------------------------------- */

static void test_equality(void **state)
{
    (void)state;
    loom_any *x =
        from_tjson_text("{\"a\":1,\"b\":[null,{\"$number\":\"NaN\"}]}");
    loom_any *y =
        from_tjson_text("{\"b\":[null,{\"$number\":\"NaN\"}],\"a\":1}");
    loom_any *z =
        from_tjson_text("{\"b\":[null,{\"$number\":\"NaN\"}],\"a\":2}");
    loom_any *p0 = from_tjson_text("0");
    loom_any *m0 = from_tjson_text("{\"$number\":\"-0\"}");
    assert_true(loom_any_equal(x, y));
    assert_false(loom_any_equal(x, z));
    assert_false(loom_any_equal(p0, m0));
    assert_false(loom_any_equal(x, NULL));
    /* JS === */
    assert_true(loom__any_strict_eq(p0, m0));
    assert_false(loom__any_strict_eq(x, y));
    assert_true(loom__any_strict_eq(x, x));
    loom_any *nan = from_tjson_text("{\"$number\":\"NaN\"}");
    assert_false(loom__any_strict_eq(nan, nan));
    assert_true(loom_any_equal(nan, nan));
    loom_any *undef = from_tjson_text("{\"$undefined\":true}");
    loom_any *nul = from_tjson_text("null");
    assert_true(loom__any_strict_eq(NULL, undef));
    assert_true(loom__any_strict_eq(NULL, NULL));
    assert_false(loom__any_strict_eq(NULL, nul));
    loom_any *s1 = from_tjson_text("\"ab\""), *s2 = from_tjson_text("\"ab\"");
    assert_true(loom__any_strict_eq(s1, s2));
    loom_any *b1 = from_tjson_text("{\"$bigint\":\"5\"}"),
             *b2 = from_tjson_text("{\"$bigint\":\"5\"}");
    assert_true(loom__any_strict_eq(b1, b2));
    loom_any *five = from_tjson_text("5");
    assert_false(loom__any_strict_eq(b1, five)); /* 5n !== 5 */
    loom_any_free(five);

    /* yjs equalAttrs: === or flat equality of objects */
    struct {
        const char *a, *b;
        bool eq;
    } cases[] = {
        {"{\"bold\":true}", "{\"bold\":true}", true},
        {"{\"bold\":true}", "{\"bold\":false}", false},
        {"{\"a\":1,\"b\":2}", "{\"b\":2,\"a\":1}", true},
        {"{\"a\":{}}", "{\"a\":{}}", false}, /* nested objects are not === */
        {"{\"a\":\"x\"}", "{\"a\":\"x\"}", true},
        {"{}", "{}", true},
        {"null", "null", true},
        {"null", "{}", false},
        {"{}", "null", false},
        {"{\"a\":{\"$undefined\":true}}", "{\"b\":1}", false},
        {"{\"a\":{\"$undefined\":true}}", "{\"a\":{\"$undefined\":true}}",
         true},
        {"{\"a\":1}", "{\"a\":1,\"b\":2}", false},
        {"{\"a\":{\"$number\":\"NaN\"}}", "{\"a\":{\"$number\":\"NaN\"}}",
         false},
        {"{\"a\":0}", "{\"a\":{\"$number\":\"-0\"}}", true},
        {"[1,2]", "{\"0\":1,\"1\":2}", true},
        {"{\"0\":1,\"1\":2}", "[1,2]", true},
        {"[1,2]", "[1,3]", false},
        {"{\"$binary\":\"0102\"}", "[1,2]", true},
        {"{\"$binary\":\"0102\"}", "{\"$binary\":\"0102\"}", true},
        {"{\"$binary\":\"0102\"}", "{\"$binary\":\"0103\"}", false},
        {"1", "1", true},
        {"1", "\"1\"", false},
        {"\"a\"", "\"a\"", true},
        {"{\"$ydoc\":{\"guid\":\"g\"}}", "{\"$ydoc\":{\"guid\":\"g\"}}", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        loom_any *a = from_tjson_text(cases[i].a),
                 *b = from_tjson_text(cases[i].b);
        if (loom__any_equal_attrs(a, b) != cases[i].eq) {
            fail_msg("equalAttrs(%s, %s) != %d", cases[i].a, cases[i].b,
                     cases[i].eq);
        }
        loom_any_free(a);
        loom_any_free(b);
    }
    assert_true(loom__any_equal_attrs(NULL, NULL));
    assert_true(loom__any_equal_attrs(x, x));
    loom_any *list[] = {x, y, z, p0, m0, nan, undef, nul, s1, s2, b1, b2};
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
        loom_any_free(list[i]);
    }
}

/* ---- JS numbers and JSON.stringify -------------------------------------- */

static void test_js_number_str(void **state)
{
    (void)state;
    struct {
        double v;
        const char *s;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-1.5, "-1.5"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {100, "100"},
        {123.456, "123.456"},
        {1e20, "100000000000000000000"},
        {1e21, "1e+21"},
        {1.2e21, "1.2e+21"},
        {123456789012345680000.0, "123456789012345680000"},
        {0.000001, "0.000001"},
        {1e-7, "1e-7"},
        {1.5e-7, "1.5e-7"},
        {0.00001234, "0.00001234"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {9007199254740992.0, "9007199254740992"},
        {9007199254740993.0, "9007199254740992"},
        {5.684341886080802e-14, "5.684341886080802e-14"},
        {4.35, "4.35"},
        {1e300, "1e+300"},
        {-1e-300, "-1e-300"},
        {NAN, "NaN"},
        {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"},
    };
    char buf[40];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = loom__js_number_str(cases[i].v, buf);
        assert_int_equal(n, strlen(cases[i].s));
        assert_string_equal(buf, cases[i].s);
    }
    /* round trip and shortest digits over many bit patterns */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof(d));
        if (!isfinite(d)) {
            continue;
        }
        size_t n = loom__js_number_str(d, buf);
        assert_true(n < 32);
        assert_true(strtod(buf, NULL) == d);
    }
}

static void test_json_write(void **state)
{
    (void)state;
    struct {
        const char *tjson, *json;
    } cases[] = {
        {"null", "null"},
        {"true", "true"},
        {"false", "false"},
        {"{\"$undefined\":true}", "undefined"},
        {"[{\"$undefined\":true},1]", "[null,1]"},
        {"{\"a\":{\"$undefined\":true},\"b\":1}", "{\"b\":1}"},
        {"{\"a\":{\"$undefined\":true}}", "{}"},
        {"[{\"$number\":\"NaN\"},{\"$number\":\"Infinity\"},{\"$number\":\"-"
         "0\"}]",
         "[null,null,0]"},
        {"{\"$binary\":\"01ff\"}", "{\"0\":1,\"1\":255}"},
        {"{\"$binary\":\"\"}", "{}"},
        {"[]", "[]"},
        {"{}", "{}"},
        {"\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f/\"",
         "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f/\""},
        {"\"\\u00e9\\ud83d\\ude00\\u2028\\ufeff\"",
         "\"\xc3\xa9\xf0\x9f\x98\x80\xe2\x80\xa8\xef\xbb\xbf\""},
        {"{\"b\":1,\"2\":2,\"a\":3,\"1\":4}",
         "{\"1\":4,\"2\":2,\"b\":1,\"a\":3}"},
        {"{\"k\\n\":[1.5,-2,1e+21]}", "{\"k\\n\":[1.5,-2,1e+21]}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        loom_any *v = from_tjson_text(cases[i].tjson);
        assert_json_out(v, cases[i].json);
        loom_any_free(v);
    }
}

/* ---- JSON.parse ---------------------------------------------------------- */

static void parse_ok(const char *text, const char *tjson)
{
    loom_any *v = NULL;
    loom_error err;
    int rc = loom_any_from_json(NULL, text, strlen(text), &v, &err);
    if (rc) {
        fail_msg("JSON.parse(%s) failed: %s at %zu", text, err.message,
                 err.offset);
    }
    loom_any *expect = from_tjson_text(tjson);
    if (!loom_any_equal(v, expect)) {
        fail_msg("JSON.parse(%s) != %s", text, tjson);
    }
    size_t off = 99;
    assert_int_equal(loom__json_check(text, strlen(text), false, &off), 0);
    assert_int_equal(off, 99);
    loom_any_free(v);
    loom_any_free(expect);
}

static void parse_fails(const char *text, size_t len, int code, size_t offset)
{
    loom_any *v = (loom_any *)(uintptr_t)1;
    loom_error err;
    int rc = loom_any_from_json(NULL, text, len, &v, &err);
    if (rc != code || err.offset != offset) {
        fail_msg("JSON.parse(%s): rc %d offset %zu, expected %d at %zu", text,
                 rc, err.offset, code, offset);
    }
    assert_ptr_equal(v, (loom_any *)(uintptr_t)1);
    assert_int_equal(err.code, code);
    size_t off = 0;
    assert_int_equal(loom__json_check(text, len, false, &off), code);
    assert_int_equal(off, offset);
}

static void test_json_parse(void **state)
{
    (void)state;
    parse_ok("0", "0");
    parse_ok("-0", "{\"$number\":\"-0\"}");
    parse_ok(" \t\r\n[1, -2.5e3 ,1E-2,true,false,null] ",
             "[1,-2500,0.01,true,false,null]");
    parse_ok("1e400", "{\"$number\":\"Infinity\"}");
    parse_ok("-1e400", "{\"$number\":\"-Infinity\"}");
    parse_ok("123456789012345678901234567890", "1.2345678901234568e+29");
    parse_ok("\"\\u0000\"", "\"\\u0000\"");
    /* a number token longer than the on-stack copy */
    parse_ok(
        "1000000000000000000000000000000000000000000000000000000000000000000"
        "00.0e-1",
        "1e+67");
    parse_ok("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");
    parse_ok("\"\\ud800\"", "\"\xef\xbf\xbd\"");
    parse_ok("\"\\udc00\\ud800\"", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    parse_ok("\"\\ud800\\u0041\"", "\"\xef\xbf\xbd"
                                   "A\"");
    parse_ok("\"\\ud800\\n\"", "\"\xef\xbf\xbd\\n\"");
    parse_ok("\"\\/\\\"\\\\\\b\\f\\n\\r\\t\\u00E9\"",
             "\"/\\\"\\\\\\b\\f\\n\\r\\t\xc3\xa9\"");
    parse_ok("\"\xef\xbb\xbf\"", "\"\xef\xbb\xbf\"");
    parse_ok("{\"a\":1,\"b\":2,\"a\":3}", "{\"a\":3,\"b\":2}");
    parse_ok("{\"\":{\"\":[]}}", "{\"\":{\"\":[]}}");

    loom_any *v = NULL;
    const char *dup = "{\"a\":1,\"b\":2,\"a\":3}";
    assert_int_equal(loom_any_from_json(NULL, dup, strlen(dup), &v, NULL), 0);
    size_t kl;
    assert_string_equal(loom_any_object_key(v, 0, &kl), "a");
    assert_int_equal(loom_any_count(v), 2);
    loom_any_free(v);

    parse_fails("", 0, LOOM_EMALFORMED, 0);
    parse_fails("  ", 2, LOOM_EMALFORMED, 2);
    parse_fails("01", 2, LOOM_EMALFORMED, 1);
    parse_fails("1.", 2, LOOM_EMALFORMED, 2);
    parse_fails(".5", 2, LOOM_EMALFORMED, 0);
    parse_fails("+1", 2, LOOM_EMALFORMED, 0);
    parse_fails("-", 1, LOOM_EMALFORMED, 1);
    parse_fails("1e", 2, LOOM_EMALFORMED, 2);
    parse_fails("1e+", 3, LOOM_EMALFORMED, 3);
    parse_fails("[1,]", 4, LOOM_EMALFORMED, 3);
    parse_fails("[1 2]", 5, LOOM_EMALFORMED, 3);
    parse_fails("{\"a\":1,}", 8, LOOM_EMALFORMED, 7);
    parse_fails("{a:1}", 5, LOOM_EMALFORMED, 1);
    parse_fails("{\"a\" 1}", 7, LOOM_EMALFORMED, 5);
    parse_fails("'x'", 3, LOOM_EMALFORMED, 0);
    parse_fails("\"a\x01\"", 4, LOOM_EMALFORMED, 2);
    parse_fails("\"\\x\"", 4, LOOM_EMALFORMED, 1);
    parse_fails("\"\\u12\"", 6, LOOM_EMALFORMED, 1);
    parse_fails("\"abc", 4, LOOM_EMALFORMED, 4);
    parse_fails("tru", 3, LOOM_EMALFORMED, 0);
    parse_fails("nul", 3, LOOM_EMALFORMED, 0);
    parse_fails("1 2", 3, LOOM_EMALFORMED, 2);
    parse_fails("NaN", 3, LOOM_EMALFORMED, 0);
    parse_fails("Infinity", 8, LOOM_EMALFORMED, 0);
    parse_fails("undefined", 9, LOOM_EMALFORMED, 0);
    parse_fails("\xef\xbb\xbf"
                "1",
                4, LOOM_EMALFORMED, 0);
    parse_fails("[\"\xed\xa0\x80\"]", 7, LOOM_EMALFORMED, 2);
    parse_fails("\"\xc0\x80\"", 4, LOOM_EMALFORMED, 1);
    parse_fails("[1]\0", 4, LOOM_EMALFORMED, 3);

    /* ContentJSON's literal undefined: exactly that text */
    size_t off;
    assert_int_equal(loom__json_read(NULL, "undefined", 9, true, &v, &off), 0);
    assert_int_equal(loom_any_kind_of(v), LOOM_ANY_UNDEFINED);
    loom_any_free(v);
    assert_int_equal(loom__json_check("undefined", 9, true, &off), 0);
    assert_int_equal(loom__json_read(NULL, " undefined", 10, true, &v, &off),
                     LOOM_EMALFORMED);
    assert_int_equal(loom__json_read(NULL, "[undefined]", 11, true, &v, &off),
                     LOOM_EMALFORMED);
    assert_int_equal(off, 1);

    /* depth */
    char *deep = malloc(2 * LOOM__MAX_DEPTH + 8);
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        for (int i = 0; i < LOOM__MAX_DEPTH + k; i++) {
            deep[n++] = '[';
        }
        for (int i = 0; i < LOOM__MAX_DEPTH + k; i++) {
            deep[n++] = ']';
        }
        int rc = loom_any_from_json(NULL, deep, n, &v, NULL);
        if (k == 0) {
            assert_int_equal(rc, 0);
            loom_any_free(v);
        } else {
            assert_int_equal(rc, LOOM_ELIMIT);
            assert_int_equal(loom__json_check(deep, n, false, &off),
                             LOOM_ELIMIT);
            assert_int_equal(off, LOOM__MAX_DEPTH);
        }
    }
    free(deep);

    /* parse(stringify(v)) for the Any vectors that JSON can express */
    json_t *s = section("any");
    size_t i;
    json_t *e;
    json_array_foreach(s, i, e)
    {
        loom_any *x = NULL;
        assert_int_equal(tjson_to_any(json_object_get(e, "value"), NULL, &x),
                         0);
        int rc;
        char *text = to_json(x, &rc);
        if (rc == 0 && strcmp(text, "undefined") != 0) {
            loom_any *y = NULL;
            assert_int_equal(
                loom_any_from_json(NULL, text, strlen(text), &y, NULL), 0);
            int rc2;
            char *text2 = to_json(y, &rc2);
            assert_string_equal(text, text2);
            free(text2);
            loom_any_free(y);
        }
        free(text);
        loom_any_free(x);
    }
}

/* ---- allocation failure on every path ----------------------------------- */

static void test_alloc_failures(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    const char *json =
        "{\"k\":[1,\"two\",{\"x\":null,\"y\":[true]}],\"b\":{\"c\":\"d\"},"
        "\"1\":2,\"k\":\"again\",\"e\":\"\\u00e9\\n\"}";
    size_t jlen = strlen(json);
    loom_any *ref = NULL;
    assert_int_equal(loom_any_from_json(NULL, json, jlen, &ref, NULL), 0);
    loom_any *bin = NULL;
    assert_int_equal(loom_any_new_binary(NULL, (const uint8_t *)"xy", 2, &bin),
                     0);
    assert_int_equal(loom_any_object_set(ref, "bin", 3, bin), 0);
    loom_buf enc = {0};
    assert_int_equal(loom_any_encode(ref, &enc), 0);

    bool done_parse = false, done_decode = false, done_clone = false,
         done_enc = false;
    for (long fail = 0; fail < 200; fail++) {
        loom_any *v = (loom_any *)(uintptr_t)1;
        int rc;

        t.fail_after = fail;
        rc = loom_any_from_json(&a, json, jlen, &v, NULL);
        t.fail_after = -1;
        if (rc == 0) {
            done_parse = true;
            loom_any_free(v);
        } else {
            assert_int_equal(rc, LOOM_ENOMEM);
            assert_ptr_equal(v, (loom_any *)(uintptr_t)1);
        }
        assert_int_equal(t.live_blocks, 0);

        t.fail_after = fail;
        rc = loom_any_decode(&a, enc.data, enc.len, &v, NULL);
        t.fail_after = -1;
        if (rc == 0) {
            done_decode = true;
            assert_true(loom_any_equal(v, ref));
            loom_any_free(v);
        } else {
            assert_int_equal(rc, LOOM_ENOMEM);
            assert_ptr_equal(v, (loom_any *)(uintptr_t)1);
        }
        assert_int_equal(t.live_blocks, 0);

        t.fail_after = fail;
        rc = loom_any_clone(ref, &a, &v);
        t.fail_after = -1;
        if (rc == 0) {
            done_clone = true;
            loom_any_free(v);
        } else {
            assert_int_equal(rc, LOOM_ENOMEM);
            assert_ptr_equal(v, (loom_any *)(uintptr_t)1);
        }
        assert_int_equal(t.live_blocks, 0);

        /* writers into a buffer using the failing allocator */
        loom_any *c = NULL;
        assert_int_equal(loom_any_clone(ref, &a, &c), 0);
        loom_buf out;
        loom__buf_init(&out, &a);
        t.fail_after = fail;
        rc = loom_any_encode(c, &out);
        if (rc == 0) {
            rc = loom_any_to_json(c, &out);
        }
        t.fail_after = -1;
        if (rc == 0) {
            done_enc = true;
        } else {
            assert_int_equal(rc, LOOM_ENOMEM);
        }
        loom_buf_free(&out);
        loom_any_free(c);
        assert_int_equal(t.live_blocks, 0);
    }
    assert_true(done_parse && done_decode && done_clone && done_enc);

    /* large-object dedupe under allocation failure: never leaks */
    loom_buf big = {0};
    loom__buf_push(&big, '{');
    for (int i = 0; i < 60; i++) {
        char tmp[32];
        int n =
            snprintf(tmp, sizeof(tmp), "%s\"k%d\":%d", i ? "," : "", i % 25, i);
        loom__buf_append(&big, tmp, (size_t)n);
    }
    loom__buf_push(&big, '}');
    for (long fail = 0; fail < 400; fail++) {
        loom_any *v = NULL;
        t.fail_after = fail;
        int rc =
            loom_any_from_json(&a, (const char *)big.data, big.len, &v, NULL);
        t.fail_after = -1;
        if (rc == 0) {
            assert_int_equal(loom_any_count(v), 25);
            loom_any_free(v);
            break;
        }
        assert_int_equal(t.live_blocks, 0);
    }
    assert_int_equal(t.live_blocks, 0);
    loom_buf_free(&big);
    loom_buf_free(&enc);
    loom_any_free(ref);
}

/* Objects past their inline room: many keys, long keys, keys whose copies
 * must not move while the object grows, replacement in place, and every
 * allocation of loom_any_object_set failing once. */
static void test_object_growth(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    loom_any *o = NULL;
    assert_int_equal(loom_any_new_object(&a, &o), 0);
    char longkey[300];
    memset(longkey, 'q', sizeof(longkey));
    const char *first = NULL;
    for (int i = 0; i < 200; i++) {
        char k[40];
        int n = snprintf(k, sizeof(k), "key-%d", i);
        const char *kp = k;
        size_t kl = (size_t)n;
        if (i % 37 == 5) { /* now and then a long one */
            kp = longkey;
            kl = 100 + (size_t)i;
        }
        loom_any *num = NULL;
        assert_int_equal(loom_any_new_number(&a, i, &num), 0);
        assert_int_equal(loom_any_object_set(o, kp, kl, num), 0);
        if (i == 0) {
            first = loom_any_object_key(o, 0, NULL);
        }
        /* the first key copy stays where it was */
        assert_ptr_equal(loom_any_object_key(o, 0, NULL), first);
        assert_string_equal(first, "key-0");
    }
    assert_int_equal(loom_any_count(o), 200);
    for (int i = 0; i < 200; i++) {
        size_t kl;
        const char *k = loom_any_object_key(o, (size_t)i, &kl);
        assert_int_equal(k[kl], '\0');
        if (i % 37 == 5) {
            assert_int_equal(kl, 100 + (size_t)i);
            assert_memory_equal(k, longkey, kl);
        } else {
            char e[40];
            snprintf(e, sizeof(e), "key-%d", i);
            assert_string_equal(k, e);
        }
        assert_true(loom_any_number(loom_any_object_value(o, (size_t)i)) == i);
    }
    /* a repeated set replaces in place, at any position */
    loom_any *s = NULL;
    assert_int_equal(loom_any_new_string(&a, "x", 1, &s), 0);
    assert_int_equal(loom_any_object_set(o, "key-150", 7, s), 0);
    assert_int_equal(loom_any_count(o), 200);
    assert_ptr_equal(loom_any_object_value(o, 150), s);
    /* non-ASCII and empty keys, and strings of every short length */
    loom_any *e = NULL;
    assert_int_equal(loom_any_new_bool(&a, 1, &e), 0);
    assert_int_equal(loom_any_object_set(o, "\xc3\xa9", 2, e), 0);
    assert_int_equal(loom_any_new_bool(&a, 0, &e), 0);
    assert_int_equal(loom_any_object_set(o, "", 0, e), 0);
    assert_int_equal(loom_any_new_bool(&a, 0, &e), 0);
    assert_int_equal(loom_any_object_set(o, "\xc3", 1, e), LOOM_EINVAL);
    loom_any_free(e);
    assert_int_equal(loom_any_count(o), 202);
    for (size_t n = 0; n <= 40; n++) {
        char txt[41];
        for (size_t i = 0; i < n; i++) {
            txt[i] = (char)('a' + i % 26);
        }
        loom_any *str = NULL;
        assert_int_equal(loom_any_new_string(&a, txt, n, &str), 0);
        size_t got;
        const char *p = loom_any_string(str, &got);
        assert_int_equal(got, n);
        assert_memory_equal(p, txt, n);
        assert_int_equal(p[n], '\0');
        if (n >= 1) {
            txt[n - 1] = (char)0xff;
            loom_any *bad = NULL;
            assert_int_equal(loom_any_new_string(&a, txt, n, &bad),
                             LOOM_EINVAL);
            assert_int_equal(loom_any_object_set(o, txt, n, str), LOOM_EINVAL);
        }
        loom_any_free(str);
    }
    loom_any_free(o);
    assert_int_equal(t.live_blocks, 0);

    /* every allocation failing in turn while a small object grows */
    for (long fail = 0; fail < 40; fail++) {
        loom_any *obj = NULL;
        assert_int_equal(loom_any_new_object(&a, &obj), 0);
        t.fail_after = fail;
        int rc = 0;
        int i;
        for (i = 0; i < 12 && !rc; i++) {
            char k[64];
            int n = snprintf(k, sizeof(k), "a-rather-long-key-number-%d", i);
            loom_any *b = NULL;
            rc = loom_any_new_bool(NULL, i & 1, &b);
            assert_int_equal(rc, 0);
            rc = loom_any_object_set(obj, k, (size_t)n, b);
            if (rc) {
                assert_int_equal(rc, LOOM_ENOMEM);
                assert_int_equal(loom_any_count(obj), (size_t)i);
                loom_any_free(b);
            }
        }
        t.fail_after = -1;
        if (!rc) {
            assert_int_equal(loom_any_count(obj), 12);
        }
        loom_any_free(obj);
        assert_int_equal(t.live_blocks, 0);
    }
}

/* ---- loom__any_put_flat ------------------------------------------------ */

/* Value number i of put_flat's test: every kind a flat object holds, numbers
 * at the edges of the number rule, strings of lengths around the moves and
 * the one-byte length. */
static loom_any *flat_value(const loom_allocator *a, unsigned i)
{
    static const double nums[] = {
        0.0,          -0.0,   1.0,   -1.0, 63.0,         64.0,
        8191.0,       8192.0, 1e5,   -1e5, 2147483647.0, -2147483647.0,
        2147483648.0, 0.5,    1e300, -2.5};
    loom_any *v = NULL;
    char txt[400];
    switch (i % 7) {
    case 0:
        assert_int_equal(loom_any_new_undefined(a, &v), 0);
        break;
    case 1:
        assert_int_equal(loom_any_new_null(a, &v), 0);
        break;
    case 2:
        assert_int_equal(loom_any_new_bool(a, (int)(i & 8), &v), 0);
        break;
    case 3:
        assert_int_equal(
            loom_any_new_number(a, nums[(i / 7) % (sizeof nums / sizeof *nums)],
                                &v),
            0);
        break;
    case 4:
        assert_int_equal(loom_any_new_bigint(a, -(int64_t)i * 977, &v), 0);
        break;
    default: {
        size_t n = (i * 13) % 40;
        if (i % 11 == 0) {
            n = 120 + i % 200; /* a two-byte length */
        }
        for (size_t k = 0; k < n; k++) {
            txt[k] = (char)('A' + (k + i) % 50);
        }
        assert_int_equal(loom_any_new_string(a, txt, n, &v), 0);
        break;
    }
    }
    return v;
}

/* The bytes loom__any_put_flat writes are the bytes loom_any_encode writes,
 * for keys short and long (in the inline key bytes and in key chunks), more
 * entries than the inline arrays hold, and every room it may be given; it
 * never writes past that room. */
static void test_put_flat(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    /* 130 members: a count of two bytes, written by its general path */
    loom_any *big = NULL;
    assert_int_equal(loom_any_new_object(&a, &big), 0);
    for (unsigned e = 0; e < 130; e++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "k%u", e);
        loom_any *num = NULL;
        assert_int_equal(loom_any_new_number(&a, e, &num), 0);
        assert_int_equal(loom_any_object_set(big, k, (size_t)kl, num), 0);
    }
    loom_buf bw = {0};
    assert_int_equal(loom_any_encode(big, &bw), 0);
    uint8_t bout[4096];
    assert_int_equal(loom__any_put_flat(bout, sizeof bout, big), bw.len);
    assert_memory_equal(bout, bw.data, bw.len);
    loom_buf_free(&bw);
    loom_any_free(big);
    /* keys shorter than 16 bytes and strings of at most 16 (its inline
     * path), every kind, against loom_any_encode at every room */
    for (unsigned shape = 0; shape < 600; shape++) {
        loom_any *o = NULL;
        assert_int_equal(loom_any_new_object(&a, &o), 0);
        unsigned n = shape % 9;
        for (unsigned e = 0; e < n; e++) {
            char k[16];
            size_t kl = 1 + (shape + e * 3) % 15;
            for (size_t c = 0; c < kl; c++) {
                k[c] = (char)('a' + (c + shape) % 26);
            }
            k[kl - 1] = (char)('A' + e); /* distinct keys */
            loom_any *v = NULL;
            unsigned w = shape * 3 + e;
            if (w % 3 == 0) {
                char txt[17];
                size_t sl = (shape + e * 5) % 17;
                for (size_t c = 0; c < sl; c++) {
                    txt[c] = (char)('0' + (c * 7 + w) % 60);
                }
                assert_int_equal(loom_any_new_string(&a, txt, sl, &v), 0);
            } else {
                v = flat_value(&a, w % 7 == 5 || w % 7 == 6 ? w + 3 : w);
            }
            assert_int_equal(loom_any_object_set(o, k, kl, v), 0);
        }
        loom_buf want = {0};
        assert_int_equal(loom_any_encode(o, &want), 0);
        uint8_t out[512];
        for (size_t max = 0; max <= want.len + 40; max++) {
            memset(out, 0xa5, sizeof out);
            size_t got = loom__any_put_flat(out, max, o);
            if (got) {
                assert_int_equal(got, want.len);
                assert_memory_equal(out, want.data, want.len);
            }
            for (size_t b = max; b < max + 64 && b < sizeof out; b++) {
                assert_int_equal(out[b], 0xa5);
            }
        }
        assert_int_equal(loom__any_put_flat(out, sizeof out, o), want.len);
        loom_buf_free(&want);
        loom_any_free(o);
    }
    unsigned vi = 0;
    for (unsigned shape = 0; shape < 400; shape++) {
        loom_any *o = NULL;
        assert_int_equal(loom_any_new_object(&a, &o), 0);
        unsigned n = shape % 12;
        for (unsigned e = 0; e < n; e++) {
            char k[64];
            size_t kl = (shape * 7 + e * 5) % 41;
            for (size_t c = 0; c < kl; c++) {
                k[c] = (char)('a' + (c + e) % 26);
            }
            if (kl) {
                k[kl - 1] = (char)('A' + e); /* distinct keys */
            }
            loom_any *v = flat_value(&a, vi++);
            int rc = loom_any_object_set(o, k, kl, v);
            assert_int_equal(rc, 0);
        }
        loom_buf want = {0};
        assert_int_equal(loom_any_encode(o, &want), 0);
        uint8_t out[4096];
        for (size_t max = 0; max <= want.len + 40 && max < 3000; max++) {
            memset(out, 0xa5, sizeof out);
            size_t got = loom__any_put_flat(out, max, o);
            if (got) {
                assert_int_equal(got, want.len);
                assert_memory_equal(out, want.data, want.len);
            }
            for (size_t b = max; b < max + 64; b++) {
                assert_int_equal(out[b], 0xa5);
            }
        }
        /* with room for the worst case it always writes */
        assert_int_equal(loom__any_put_flat(out, sizeof out, o), want.len);
        /* a member that is not a scalar or string (at any position) makes
         * it decline */
        if (shape % 5 == 0) {
            loom_any *c = NULL;
            switch (shape % 4) {
            case 0:
                assert_int_equal(loom_any_new_array(&a, &c), 0);
                break;
            case 1:
                assert_int_equal(loom_any_new_object(&a, &c), 0);
                break;
            case 2:
                assert_int_equal(
                    loom_any_new_binary(&a, (const uint8_t *)"b", 1, &c), 0);
                break;
            default:
                assert_int_equal(loom_any_new_subdoc(&a, "g", 1, &c), 0);
                break;
            }
            assert_int_equal(loom_any_object_set(o, "zzz-last", 8, c), 0);
            assert_int_equal(loom__any_put_flat(out, sizeof out, o), 0);
        }
        loom_buf_free(&want);
        loom_any_free(o);
        assert_int_equal(t.live_blocks, 0);
    }
}

/* loom_any_object_set against a model (keys in first-set order, the last
 * value): keys of the same lengths, repeated, empty, of 16 and 17 bytes,
 * non-ASCII, on objects built by sets, by JSON parse (appends, then merged
 * repeats), by decode and by clone, so that the inline path's test for a
 * new key (no entry has its length) meets every way entries get in. */
static void test_object_set_model(void **state)
{
    (void)state;
    static const char *const pool[] = {"",
                                       "a",
                                       "b",
                                       "ab",
                                       "ba",
                                       "id",
                                       "title",
                                       "titel",
                                       "done",
                                       "dona",
                                       "0",
                                       "1",
                                       "\xc3\xa9",
                                       "abcdefghijklmnop",
                                       "abcdefghijklmnoq",
                                       "abcdefghijklmnopq",
                                       "abcdefghijklmnopr",
                                       "key-with-18-bytes!"};
    enum { NPOOL = sizeof(pool) / sizeof(pool[0]) };
    track t;
    loom_allocator a = track_alloc(&t);
    uint32_t seed = 12345;
    for (int round = 0; round < 400; round++) {
        /* the model: for each pool key its position (or -1) and value */
        int pos[NPOOL];
        int val[NPOOL];
        int order[NPOOL];
        int n = 0;
        for (int i = 0; i < NPOOL; i++) {
            pos[i] = -1;
        }
        loom_any *o = NULL;
        int how = round % 4;
        if (how == 0) {
            assert_int_equal(loom_any_new_object(&a, &o), 0);
        } else {
            /* a start of up to three keys (possibly repeated) via JSON */
            char json[256];
            size_t jl = 0;
            json[jl++] = '{';
            int m = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 4;
            for (int j = 0; j < m; j++) {
                seed = seed * 1103515245u + 12345u;
                int k = (int)((seed >> 16) % NPOOL);
                int v = (int)((seed >> 8) % 100);
                jl += (size_t)snprintf(json + jl, sizeof(json) - jl,
                                       "%s\"%s\":%d", j ? "," : "", pool[k], v);
                if (pos[k] < 0) {
                    pos[k] = n;
                    order[n++] = k;
                }
                val[k] = v;
            }
            json[jl++] = '}';
            loom_any *p = NULL;
            assert_int_equal(loom_any_from_json(&a, json, jl, &p, NULL), 0);
            if (how == 1) {
                o = p;
            } else if (how == 2) {
                loom_buf b = {0};
                assert_int_equal(loom_any_encode(p, &b), 0);
                assert_int_equal(loom_any_decode(&a, b.data, b.len, &o, NULL),
                                 0);
                loom_buf_free(&b);
                loom_any_free(p);
            } else {
                assert_int_equal(loom_any_clone(p, &a, &o), 0);
                loom_any_free(p);
            }
            /* JSON lists integer-like keys first: the model's order is
             * checked by key below, not by position, for these */
        }
        int sets = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 12;
        for (int j = 0; j < sets; j++) {
            seed = seed * 1103515245u + 12345u;
            int k = (int)((seed >> 16) % NPOOL);
            int v = (int)((seed >> 4) % 1000);
            loom_any *num = NULL;
            assert_int_equal(loom_any_new_number(&a, v, &num), 0);
            assert_int_equal(
                loom_any_object_set(o, pool[k], strlen(pool[k]), num), 0);
            if (pos[k] < 0) {
                pos[k] = n;
                order[n++] = k;
            }
            val[k] = v;
        }
        assert_int_equal(loom_any_count(o), (size_t)n);
        for (int i = 0; i < NPOOL; i++) {
            const loom_any *got =
                loom_any_object_get(o, pool[i], strlen(pool[i]));
            if (pos[i] < 0) {
                assert_null(got);
            } else {
                assert_non_null(got);
                assert_true(loom_any_number(got) == val[i]);
            }
        }
        /* each key once; on an object built only by sets, in set order */
        for (int i = 0; i < n; i++) {
            size_t kl;
            const char *k = loom_any_object_key(o, (size_t)i, &kl);
            for (int j = 0; j < i; j++) {
                size_t jl2;
                const char *kj = loom_any_object_key(o, (size_t)j, &jl2);
                assert_false(jl2 == kl && memcmp(kj, k, kl) == 0);
            }
            if (how == 0) {
                assert_int_equal(kl, strlen(pool[order[i]]));
                assert_memory_equal(k, pool[order[i]], kl);
            }
        }
        loom_any_free(o);
        assert_int_equal(t.live_blocks, 0);
    }
}

/* undefined, null and the booleans are shared constant nodes: no
 * allocation (so no failure), one node per value, freeing them is a no-op
 * wherever they are (also in several containers at once), a clone is the
 * node itself, and they read and write as any other node. */
static void test_static_nodes(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    t.fail_after = 0; /* every allocation fails */
    loom_any *u = NULL, *nu = NULL, *f = NULL, *tr = NULL, *tr2 = NULL;
    assert_int_equal(loom_any_new_undefined(&a, &u), 0);
    assert_int_equal(loom_any_new_null(&a, &nu), 0);
    assert_int_equal(loom_any_new_bool(&a, 0, &f), 0);
    assert_int_equal(loom_any_new_bool(&a, 1, &tr), 0);
    assert_int_equal(loom_any_new_bool(NULL, 42, &tr2), 0);
    assert_int_equal(t.live_blocks, 0);
    assert_int_equal(loom_any_kind_of(u), LOOM_ANY_UNDEFINED);
    assert_int_equal(loom_any_kind_of(nu), LOOM_ANY_NULL);
    assert_int_equal(loom_any_kind_of(f), LOOM_ANY_BOOL);
    assert_int_equal(loom_any_bool(f), 0);
    assert_int_equal(loom_any_bool(tr), 1);
    assert_ptr_equal(tr, tr2);
    assert_true(f != tr && u != nu && nu != f);
    assert_true(loom_any_equal(tr, tr2) && !loom_any_equal(tr, f));
    loom_any *c = NULL;
    assert_int_equal(loom_any_clone(tr, &a, &c), 0);
    assert_ptr_equal(c, tr);
    loom_any_free(c);
    t.fail_after = -1;

    /* the same node in an object twice and in an array, all freed */
    loom_any *o = NULL, *arr = NULL;
    assert_int_equal(loom_any_new_object(&a, &o), 0);
    assert_int_equal(loom_any_new_array(&a, &arr), 0);
    assert_int_equal(loom_any_object_set(o, "a", 1, tr), 0);
    assert_int_equal(loom_any_object_set(o, "b", 1, tr), 0);
    assert_int_equal(loom_any_object_set(o, "c", 1, u), 0);
    assert_int_equal(loom_any_object_set(o, "a", 1, f), 0); /* replaces */
    assert_int_equal(loom_any_array_push(arr, tr), 0);
    assert_int_equal(loom_any_array_push(arr, nu), 0);
    assert_int_equal(loom_any_array_push(arr, nu), 0);
    assert_int_equal(loom_any_object_set(o, "d", 1, arr), 0);
    loom_buf b = {0};
    assert_int_equal(loom_any_encode(o, &b), 0);
    /* {a: false, b: true, c: undefined, d: [true, null, null]} */
    assert_hex(&b, "7604"
                   "016179"
                   "016278"
                   "01637f"
                   "01647503787e7e");
    loom_buf_free(&b);
    loom_any *cl = NULL;
    assert_int_equal(loom_any_clone(o, &a, &cl), 0);
    assert_true(loom_any_equal(cl, o));
    assert_ptr_equal(loom_any_object_get(cl, "b", 1), tr);
    loom_any_free(cl);
    loom_any_free(o);
    assert_int_equal(t.live_blocks, 0);
    /* still intact after all that freeing */
    assert_int_equal(loom_any_kind_of(tr), LOOM_ANY_BOOL);
    assert_int_equal(loom_any_bool(tr), 1);

    /* decoded and parsed values use them: only the array allocates */
    static const uint8_t enc[] = {0x75, 0x04, 0x78, 0x79, 0x7e, 0x7f};
    loom_any *d = NULL;
    assert_int_equal(loom_any_decode(&a, enc, sizeof enc, &d, NULL), 0);
    assert_ptr_equal(loom_any_array_get(d, 0), tr);
    assert_ptr_equal(loom_any_array_get(d, 1), f);
    assert_ptr_equal(loom_any_array_get(d, 2), nu);
    assert_ptr_equal(loom_any_array_get(d, 3), u);
    assert_int_equal(t.live_blocks, 2); /* the node and its elements */
    loom_any_free(d);
    assert_int_equal(loom_any_from_json(&a, "[true,null]", 11, &d, NULL), 0);
    assert_ptr_equal(loom_any_array_get(d, 0), tr);
    assert_ptr_equal(loom_any_array_get(d, 1), nu);
    loom_any_free(d);
    assert_int_equal(t.live_blocks, 0);
    /* a top-level one, freed as a root */
    loom_any_free(tr);
    loom_any_free(u);
    assert_int_equal(loom_any_bool(tr), 1);
}

/* ---- tjson -------------------------------------------------------------- */

static void test_tjson(void **state)
{
    (void)state;
    uint8_t *p = NULL;
    size_t n = 0;
    assert_int_equal(hex_decode("00fFa0", &p, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(p[1], 0xff);
    char *h = hex_encode(p, n);
    assert_string_equal(h, "00ffa0");
    free(h);
    free(p);
    p = NULL;
    assert_int_equal(hex_decode("abc", &p, &n), LOOM_EINVAL);
    assert_int_equal(hex_decode("zz", &p, &n), LOOM_EINVAL);
    assert_null(p);
    assert_int_equal(hex_decode("", &p, &n), 0);
    assert_int_equal(n, 0);
    free(p);

    loom_any *v = NULL;
    json_error_t err;
    json_t *bad = json_loads("{\"$number\":\"7\"}", 0, &err);
    assert_int_equal(tjson_to_any(bad, NULL, &v), LOOM_EINVAL);
    json_decref(bad);
    bad = json_loads("{\"$ytype\":\"map\"}", 0, &err);
    assert_int_equal(tjson_to_any(bad, NULL, &v), LOOM_EUNSUPPORTED);
    json_decref(bad);
    bad = json_loads("{\"$bigint\":\"99999999999999999999\"}", 0, &err);
    assert_int_equal(tjson_to_any(bad, NULL, &v), LOOM_EINVAL);
    json_decref(bad);
    assert_null(v);

    /* lone surrogates are loaded as U+FFFD; escaped backslashes are kept */
    const char *text =
        "[\"\\ud83d\", \"\\\\ud83d\", \"\\ud83d\\ude00\", \"\\udc00x\"]";
    json_t *j = tjson_loadb(text, strlen(text), 0, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_array_get(j, 0)),
                        "\xef\xbf\xbd");
    assert_string_equal(json_string_value(json_array_get(j, 1)), "\\ud83d");
    assert_string_equal(json_string_value(json_array_get(j, 2)),
                        "\xf0\x9f\x98\x80");
    assert_string_equal(json_string_value(json_array_get(j, 3)),
                        "\xef\xbf\xbdx");
    json_decref(j);

    /* subdocs and type references on output (types from a real doc) */
    loom_doc *doc = NULL;
    loom_type *map = NULL, *el = NULL;
    assert_int_equal(loom_doc_new(NULL, &doc), 0);
    assert_int_equal(loom_doc_get(doc, "m", 1, LOOM_TYPE_MAP, &map), 0);
    assert_int_equal(
        loom_map_set_type(map, "e", 1, LOOM_TYPE_XML_ELEMENT, "p", 1, &el), 0);
    loom_any *arr = NULL, *sd = NULL, *t1 = NULL, *t2 = NULL;
    assert_int_equal(loom_any_new_array(NULL, &arr), 0);
    assert_int_equal(loom_any_new_subdoc(NULL, "g1", 2, &sd), 0);
    assert_int_equal(loom_any_new_type_ref(NULL, map, &t1), 0);
    assert_int_equal(loom_any_new_type_ref(NULL, el, &t2), 0);
    assert_int_equal(loom_any_array_push(arr, sd), 0);
    assert_int_equal(loom_any_array_push(arr, t1), 0);
    assert_int_equal(loom_any_array_push(arr, t2), 0);
    j = tjson_from_any(arr);
    char *s = tjson_dumps_sorted(j);
    json_decref(j);
    loom_any_free(arr);
    loom_doc_free(doc);
    assert_string_equal(s,
                        "[{\"$ydoc\":{\"guid\":\"g1\"}},{\"$ytype\":\"map\"},"
                        "{\"$ytype\":\"xmlelement\",\"name\":\"p\"}]");
    free(s);

    /* sorted writer: UTF-16 key order, JS numbers, JSON.stringify escapes */
    text = "{\"\xef\xbd\xa1\":1,\"\xf0\x9f\x98\x80\":2,\"b\":0.1,\"a\":[1e21,-"
           "5,\"\\n\\u0001\"],"
           "\"10\":true,\"9\":null}";
    j = json_loads(text, 0, &err);
    assert_non_null(j);
    s = tjson_dumps_sorted(j);
    assert_string_equal(
        s, "{\"10\":true,\"9\":null,\"a\":[1e+21,-5,\"\\n\\u0001\"],\"b\":0.1,"
           "\"\xf0\x9f\x98\x80\":2,\"\xef\xbd\xa1\":1}");
    free(s);
    json_decref(j);
    assert_null(tjson_dumps_sorted(NULL));

    /* tjson_equal: numbers by value, objects unordered */
    json_t *x = json_loads("{\"a\":[1,2.0],\"b\":\"s\"}", 0, &err);
    json_t *y = json_loads("{\"b\":\"s\",\"a\":[1.0,2]}", 0, &err);
    json_t *z = json_loads("{\"b\":\"s\",\"a\":[1.0,3]}", 0, &err);
    assert_true(tjson_equal(x, y));
    assert_false(tjson_equal(x, z));
    json_decref(x);
    json_decref(y);
    json_decref(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_varuint),
        cmocka_unit_test(test_vectors_varint),
        cmocka_unit_test(test_vectors_varstring),
        cmocka_unit_test(test_vectors_fixed),
        cmocka_unit_test(test_vectors_any),
        cmocka_unit_test(test_number_rule),
        cmocka_unit_test(test_object_key_order),
        cmocka_unit_test(test_any_hostile),
        cmocka_unit_test(test_any_depth),
        cmocka_unit_test(test_api),
        cmocka_unit_test(test_equality),
        cmocka_unit_test(test_js_number_str),
        cmocka_unit_test(test_json_write),
        cmocka_unit_test(test_json_parse),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_object_growth),
        cmocka_unit_test(test_put_flat),
        cmocka_unit_test(test_object_set_model),
        cmocka_unit_test(test_static_nodes),
        cmocka_unit_test(test_tjson),
    };
    return cmocka_run_group_tests(tests, load_vectors, free_vectors);
}
