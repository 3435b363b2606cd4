/*
 * test_canon.c: loom__any_canon (the streaming re-encoder used when an
 * update is applied) must give exactly the bytes of decoding to a tree and
 * writing it back, which is what yjs does. Checked on every Any of
 * primitives.json, on hand-made non-canonical inputs, and on seeded random
 * values with integer-like, repeated and "__proto__" keys. On the same
 * inputs, loom__any_check may call bytes canonical only when they are
 * exactly what loom__any_canon writes (the parser's flag that lets apply
 * copy Any content as it is), and loom__any_check_n must agree with
 * loom__any_check in every result, error and flag.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "any/any_internal.h"
#include "tjson.h"

static size_t n_canon; /* inputs loom__any_check called canonical */

/* loom__any_check_n on one value agrees with loom__any_check in everything:
 * result, error offset and message, end position and canonical flag. */
static void same_n(const uint8_t *p, size_t n)
{
    loom__reader r1, r2;
    loom__reader_init(&r1, p, n);
    loom__reader_init(&r2, p, n);
    bool c1 = true, c2 = true;
    int rc1 = loom__any_check(&r1, 0, &c1);
    int rc2 = loom__any_check_n(&r2, 1, &c2);
    assert_int_equal(rc1, rc2);
    assert_int_equal(r1.err_pos, r2.err_pos);
    if (rc1)
        assert_string_equal(r1.err_msg, r2.err_msg);
    assert_int_equal(r1.pos, r2.pos);
    assert_int_equal(c1, c2);
}

/* same_n on p as it is, and with bytes after it: the flat-object path of
 * loom__any_check_n only reads members that have room after them. */
static void same_n_padded(const uint8_t *p, size_t n)
{
    same_n(p, n);
    uint8_t *q = malloc(n + 48);
    assert_non_null(q);
    if (n)
        memcpy(q, p, n);
    memset(q + n, 0x7f, 48);
    same_n(q, n + 48);
    free(q);
}

/* Both paths on one input: equal bytes, or both fail; and the canonical
 * flag of loom__any_check only on bytes that canon leaves unchanged. */
static void same(const uint8_t *p, size_t n)
{
    loom__reader r3;
    loom__reader_init(&r3, p, n);
    bool canon = true;
    int rc3 = loom__any_check(&r3, 0, &canon);
    same_n_padded(p, n);
    loom__reader r1, r2;
    loom__reader_init(&r1, p, n);
    loom__reader_init(&r2, p, n);
    loom_buf a = {0}, b = {0};
    loom_any *v = NULL;
    int rc1 = loom__any_read(&r1, NULL, 0, &v);
    if (!rc1)
        rc1 = loom__any_write(&a, v);
    loom_any_free(v);
    int rc2 = loom__any_canon(&r2, NULL, 0, &b);
    assert_int_equal(rc1 != 0, rc2 != 0);
    assert_int_equal(rc1 != 0, rc3 != 0);
    if (rc1 && rc3) {
        /* the checker's fast path gives the decoder's error, at the same
         * byte */
        assert_int_equal(rc1, rc3);
        assert_int_equal(r1.err_pos, r3.err_pos);
        assert_string_equal(r1.err_msg, r3.err_msg);
    }
    if (!rc1) {
        assert_int_equal(r1.pos, r3.pos);
        if (canon) {
            n_canon++;
            assert_int_equal(b.len, r2.pos);
            assert_memory_equal(b.data, p, b.len);
        }
        assert_int_equal(r1.pos, r2.pos);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
    }
    loom_buf_free(&a);
    loom_buf_free(&b);
}

static void test_primitives(void **state)
{
    (void)state;
    char path[2048];
    snprintf(path, sizeof path, "%s/primitives.json", LOOM_VECTORS_DIR);
    json_error_t je;
    json_t *pv = tjson_load_file(path, 0, &je);
    assert_non_null(pv);
    size_t i, count = 0;
    json_t *v;
    json_array_foreach(json_object_get(pv, "any"), i, v)
    {
        uint8_t *p;
        size_t n;
        const char *h = json_string_value(json_object_get(v, "hex"));
        if (!h || hex_decode(h, &p, &n))
            continue;
        same(p, n);
        free(p);
        count++;
    }
    assert_true(count > 10);
    json_decref(pv);
}

static void test_non_canonical(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
    } cases[] = {
        {"7b3ff8000000000000"},           /* 1.5 as float64 -> float32 */
        {"7b4000000000000000"},           /* 2.0 as float64 -> varInt */
        {"7c40000000"},                   /* 2.0 as float32 -> varInt */
        {"7d8000"},                       /* non-minimal varInt 0 */
        {"7dbfffffff0f"},                 /* 2^31-1: canonical varInt */
        {"7dffffffff0f"},                 /* -(2^31-1): canonical */
        {"7d8080808010"},                 /* 2^31 as varInt -> float32 */
        {"7dbfffffff1f"},                 /* 2^32-1 as varInt -> float64 */
        {"7dbfffffff7f"},                 /* 2^34-1 as varInt -> float64 */
        {"7d8080808020"},                 /* 2^32 as varInt -> float32 */
        {"7d8180808020"},                 /* 2^32+1 as varInt -> float64 */
        {"7d80808080808001"},             /* long varInt */
        {"7d81808000"},                   /* 1 with zero tail bytes */
        {"778100"},                       /* string with non-minimal length */
        {"77026869"},                     /* canonical string */
        {"760201617d0101627d05"},         /* {a: 1, b: 5}: canonical */
        {"76018161007f"},                 /* key with non-minimal length */
        {"758100"},                       /* array with non-minimal count */
        {"7c3fc00000"},                   /* 1.5 as float32: canonical */
        {"7402ff00"},                     /* binary */
        {"7602016278016178"},             /* {b:true, a:true}: order kept */
        {"7602016278013178"},             /* {b, "1"}: "1" first */
        {"7602016178016179"},             /* {a, a}: repeated key */
        {"7601095f5f70726f746f5f5f7d01"}, /* {__proto__: 1}: dropped */
        {"750276010131780174"},           /* nested */
        {"7a0000000000000001"},           /* bigint */
        {"76"},                           /* truncated */
        {"7601"},                         /* truncated member */
        {"10"},                           /* bad tag */
    };
    size_t before = n_canon;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *p;
        size_t n;
        assert_int_equal(hex_decode(cases[i].hex, &p, &n), 0);
        same(p, n);
        free(p);
    }
    /* the canonical ones are recognised: the string, the object, 1.5,
     * {b:true, a:true}, the bigint, the nested one */
    assert_true(n_canon - before >= 6);
}

static uint32_t rng(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A random encoded Any, deliberately non-canonical in places. */
static void gen(loom_buf *b, uint32_t *s, int depth)
{
    static const char *const keys[] = {
        "a",  "b",         "0", "1",          "10",
        "01", "__proto__", "k", "4294967294", "4294967295"};
    uint32_t t = rng(s) % (depth > 3 ? 8 : 10);
    switch (t) {
    case 0:
        loom__buf_push(b, 127);
        break;
    case 1:
        loom__buf_push(b, 126);
        break;
    case 2:
        loom__buf_push(b, (uint8_t)(120 + rng(s) % 2));
        break;
    case 3:
        loom__buf_push(b, 125);
        if (rng(s) % 4 == 0) /* past 31 bits too */
            loom__write_varint(b, rng(s) & 1,
                               ((uint64_t)rng(s) << (rng(s) % 22)));
        else
            loom__write_varint(b, rng(s) & 1, rng(s) % 100000);
        break;
    case 4:
        loom__buf_push(b, 123);
        loom__write_f64(b, (double)(int32_t)rng(s) / 4.0);
        break;
    case 5:
        loom__buf_push(b, 124);
        loom__write_f32(b, (float)(int32_t)rng(s) / 8.0f);
        break;
    case 6:
        loom__buf_push(b, 119);
        loom__write_varstring(b, "hello", rng(s) % 6);
        break;
    case 7:
        loom__buf_push(b, 116);
        loom__write_varbytes(b, (const uint8_t *)"\x01\x02\x03", rng(s) % 4);
        break;
    case 8: {
        uint32_t n = rng(s) % 5;
        loom__buf_push(b, 117);
        loom__write_varuint(b, n);
        for (uint32_t i = 0; i < n; i++)
            gen(b, s, depth + 1);
        break;
    }
    default: {
        uint32_t n = rng(s) % 6;
        loom__buf_push(b, 118);
        loom__write_varuint(b, n);
        for (uint32_t i = 0; i < n; i++) {
            const char *k = keys[rng(s) % 10];
            loom__write_varstring(b, k, strlen(k));
            gen(b, s, depth + 1);
        }
        break;
    }
    }
}

/* A random object of the shape a loaded map holds ({id, title, done}),
 * with now and then what the fast paths must leave to the slow ones: more
 * than 16 keys, long, empty, non-ASCII, integer-like, repeated and
 * "__proto__" keys, long or non-ASCII strings, wide or non-minimal ints,
 * floats and nested values. */
static void gen_flat(loom_buf *b, uint32_t *s)
{
    static const char *const keys[] = {"id",
                                       "title",
                                       "done",
                                       "a",
                                       "x1",
                                       "__proto__",
                                       "9",
                                       "",
                                       "\xc3\xa9t\xc3\xa9",
                                       "abcdefghijklmnop",
                                       "abcdefghijklmnopq"};
    static const char text[] = "task 12345678901234567\xc3\xa9";
    uint32_t n = rng(s) % 8 ? rng(s) % 5 : rng(s) % 20;
    loom__buf_push(b, 118);
    loom__write_varuint(b, n);
    for (uint32_t i = 0; i < n; i++) {
        const char *k = keys[rng(s) % 8 ? rng(s) % 5 : rng(s) % 11];
        loom__write_varstring(b, k, strlen(k));
        switch (rng(s) % 12) {
        case 0:
        case 1:
        case 2:
        case 3: {
            /* 1 to 5 bytes */
            static const uint64_t top[] = {63, 8191, 1048575, 134217727,
                                           2147483647};
            loom__buf_push(b, 125);
            loom__write_varint(b, rng(s) & 1, rng(s) % (top[rng(s) % 5] + 1));
            break;
        }
        case 4:
            loom__buf_push(b, 125);
            loom__buf_append(b, (const uint8_t *)"\x81\x80\x00", 3);
            break;
        case 5:
        case 6:
        case 7:
            loom__buf_push(b, 119);
            loom__write_varstring(b, text, rng(s) % (sizeof(text) - 1));
            break;
        case 8:
            loom__buf_push(b, (uint8_t)(120 + rng(s) % 2));
            break;
        case 9:
            loom__buf_push(b, (uint8_t)(126 + rng(s) % 2));
            break;
        case 10:
            loom__buf_push(b, 123);
            loom__write_f64(b, 0.5);
            break;
        default:
            gen(b, s, 3);
            break;
        }
    }
}

/* same() on the value in b, on every truncation of it (when truncations),
 * and on a few copies with one byte changed; frees b. */
static void same_variants(loom_buf *b, uint32_t *s, bool truncations)
{
    same(b->data, b->len);
    for (size_t k = 0; k < b->len && truncations; k++)
        same(b->data, k);
    for (int m = 0; m < 4 && b->len; m++) {
        size_t at = rng(s) % b->len;
        uint8_t old = b->data[at];
        b->data[at] = (uint8_t)rng(s);
        same(b->data, b->len);
        b->data[at] = old;
    }
    loom_buf_free(b);
}

static void test_random(void **state)
{
    (void)state;
    uint32_t s = 12345;
    for (int i = 0; i < 20000; i++) {
        loom_buf b = {0};
        gen(&b, &s, 0);
        same_variants(&b, &s, i < 2000);
    }
    for (int i = 0; i < 20000; i++) {
        loom_buf b = {0};
        gen_flat(&b, &s);
        same_variants(&b, &s, i < 1000);
    }
    assert_true(n_canon > 1000);
}

/* loom__any_check_n on the n values at p (len bytes) agrees with n calls of
 * loom__any_check, with the input as it is and with room after it (the
 * flat path compares each object's keys with those of one before it). */
static void same_seq(const uint8_t *p, size_t len, uint64_t n)
{
    uint8_t *q = malloc(len + 600);
    assert_non_null(q);
    if (len)
        memcpy(q, p, len);
    memset(q + len, 0x7f, 600);
    for (int pad = 0; pad < 2; pad++) {
        size_t l = pad ? len + 600 : len;
        loom__reader r1, r2;
        loom__reader_init(&r1, q, l);
        loom__reader_init(&r2, q, l);
        bool c1 = true, c2 = true;
        int rc1 = LOOM_OK;
        for (uint64_t i = 0; i < n && !rc1; i++)
            rc1 = loom__any_check(&r1, 0, &c1);
        int rc2 = loom__any_check_n(&r2, n, &c2);
        assert_int_equal(rc1, rc2);
        if (rc1) {
            assert_int_equal(r1.err_pos, r2.err_pos);
            assert_string_equal(r1.err_msg, r2.err_msg);
        } else {
            assert_int_equal(r1.pos, r2.pos);
            assert_int_equal(c1, c2);
        }
    }
    free(q);
}

/* The bytes of hex text with spaces between groups (malloc'd, in *p). */
static void spaced_hex(const char *text, uint8_t **p, size_t *n)
{
    char hex[1024];
    size_t o = 0;
    for (const char *c = text; *c; c++) {
        if (*c != ' ') {
            assert_true(o + 1 < sizeof(hex));
            hex[o++] = *c;
        }
    }
    hex[o] = 0;
    assert_int_equal(hex_decode(hex, p, n), 0);
}

/* Objects after one with other keys: the keys compared with the earlier
 * object's must still be checked as keys of this one (a repeat among them,
 * an earlier object that was refused halfway). */
static void test_flat_shapes(void **state)
{
    (void)state;
    static const struct {
        int n;
        const char *hex;
    } cases[] = {
        /* {a: 1, b: 2} twice */
        {2, "760201617d0101627d02"
            "760201617d0101627d02"},
        /* then {a: 1, a: 2}: the second a is not the kept b */
        {2, "760201617d0101627d02"
            "760201617d0101617d02"},
        /* {a, b}, {b: 0.5, c: 1} (not flat, after its first key was
         * looked at), {b, b} */
        {3, "760201617d0101627d02"
            "760201627b3fe000000000000001637d01"
            "760201627d0101627d02"},
        /* {a, b}, {b: "\xff", c: 1} (invalid), {b, b} */
        {3, "760201617d0101627d02"
            "76020162 7701ff 01637d01"
            "760201627d0101627d02"},
        /* {a, b, c}, {a, b}, {a, b, c}, {a, b, b} */
        {4, "760301617d0101627d0201637d03"
            "760201617d0101627d02"
            "760301617d0101627d0201637d03"
            "760301617d0101627d0201627d03"},
        /* {a}, {a, a} */
        {2, "7601016178"
            "76020161780161 79"},
        /* keys of 7, 8 and 16 bytes, twice, then one repeated */
        {3, "76030761626364656667780861626364656667687910616263646566676869"
            "6a6b6c6d6e6f707e"
            "76030761626364656667780861626364656667687910616263646566676869"
            "6a6b6c6d6e6f707e"
            "76030761626364656667780861626364656667687907616263646566677e"},
        /* {a, b}, then __proto__ and an integer-like key where a was */
        {2, "76020161780162 79"
            "7602095f5f70726f746f5f5f780162 79"},
        {2, "76020161780162 79"
            "76020131780162 79"},
        /* {a, b}, {a: 1} with a value that is not flat, {a, b} */
        {3, "76020161780162 79"
            "7601016176 00"
            "76020161780162 79"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *p;
        size_t n;
        spaced_hex(cases[i].hex, &p, &n);
        for (size_t len = 0; len <= n; len++)
            same_seq(p, len, (uint64_t)cases[i].n);
        free(p);
    }
    /* random runs of the objects a loaded map holds */
    uint32_t s = 777;
    for (int i = 0; i < 20000; i++) {
        loom_buf b = {0};
        uint64_t n = 1 + rng(&s) % 6;
        for (uint64_t k = 0; k < n; k++)
            gen_flat(&b, &s);
        same_seq(b.data, b.len, n);
        if (b.len) {
            b.data[rng(&s) % b.len] = (uint8_t)rng(&s);
            same_seq(b.data, b.len, n);
        }
        loom_buf_free(&b);
    }
}

/* Objects like one before them but for one value or key, each after
 * {a: 1, b: "x", c: true}, so that the kept members are compared first
 * and the difference is met there: what the flat path leaves to the slow
 * one (-0, NaN payloads, floats that are integers, invalid UTF-8, lone
 * surrogates, nested values, repeated keys, big or non-minimal counts), at
 * every truncation. */
static void test_flat_after_shape(void **state)
{
    (void)state;
    static const char shape[] = "760301617d010162770178016378";
    static const char *const bvals[] = {
        "7d40",                                 /* -0: canonical */
        "7d8100",                               /* 1 with a zero tail byte */
        "7d81808001",                           /* 4 bytes, canonical */
        "7d818080808001",                       /* past 31 bits: a float */
        "7b7ff8000000000001",                   /* a NaN with a payload */
        "7b7ff8000000000000",                   /* NaN as float64 */
        "7c7fc00000",                           /* NaN as float32 */
        "7b3ff0000000000000",                   /* 1.0 as float64 */
        "7c3f800000",                           /* 1.0 as float32 */
        "7c3fc00000",                           /* 1.5 as float32: canonical */
        "7b8000000000000000",                   /* -0 as float64 */
        "7702c328",                             /* invalid UTF-8 */
        "7703eda080",                           /* a lone surrogate */
        "7704f09f9880",                         /* 4-byte UTF-8: canonical */
        "771161616161616161616161616161616161", /* 17 bytes */
        "778100",                               /* non-minimal string length */
        "7601016178",                           /* a nested object */
        "75017d01",                             /* an array */
        "7a0000000000000001",                   /* a bigint */
        "74016a",                               /* binary */
        "79", /* false where the kept value is a string */
        "7f", /* undefined */
    };
    static const char *const others[] = {
        /* {a, b, a} and {a, b, b}: a key repeated after kept ones */
        "760301617d010162770178016178",
        "760301617d010162770178016278",
        /* c as __proto__ or integer-like */
        "760301617d0101627701780 95f5f70726f746f5f5f78",
        "760301617d010162770178013178",
        /* a count that is not minimal, a big one, one more member */
        "76830001617d010162770178016378",
        "769001617d010162770178016378",
        "760401617d010162770178016378016478",
        /* true and false, null and undefined where c was */
        "760301617d010162770178016379",
        "76030161 7d0101627701780163 7e",
        "76030161 7d0101627701780163 7f",
        "76030161 7d0101627701780163 7d00",
    };
    size_t nb = sizeof(bvals) / sizeof(bvals[0]);
    size_t no = sizeof(others) / sizeof(others[0]);
    for (size_t i = 0; i < nb + no; i++) {
        char text[512];
        if (i < nb)
            snprintf(text, sizeof text, "%s760301617d010162%s016378", shape,
                     bvals[i]);
        else
            snprintf(text, sizeof text, "%s%s", shape, others[i - nb]);
        uint8_t *p;
        size_t n;
        spaced_hex(text, &p, &n);
        for (size_t len = 0; len <= n; len++)
            same_seq(p, len, 2);
        /* the variant first, then the shape object */
        uint8_t *q = malloc(n);
        assert_non_null(q);
        size_t sl = (sizeof(shape) - 1) / 2;
        memcpy(q, p + sl, n - sl);
        memcpy(q + n - sl, p, sl);
        for (size_t len = 0; len <= n; len++)
            same_seq(q, len, 2);
        free(q);
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_primitives),
        cmocka_unit_test(test_non_canonical),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_flat_shapes),
        cmocka_unit_test(test_flat_after_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
