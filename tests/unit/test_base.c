/*
 * test_base.c: unit tests of src/base: allocation hooks, byte buffers, the
 * lib0 primitives (including hostile input: truncation, out-of-range
 * integers, invalid UTF-8), UTF-16 arithmetic and the two hash maps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/base.h"

/* ---- a checking allocator: records sizes and fails on request ---------- */

typedef struct track {
    size_t live_blocks;
    size_t live_bytes;
    long fail_after; /* -1: never; else number of allocations that succeed */
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
    hdr *h = malloc(sizeof(hdr) + size);
    if (!h) {
        return NULL;
    }
    h->size = size;
    t->live_blocks++;
    t->live_bytes += size;
    return h + 1;
}

static void t_free(void *ud, void *p, size_t size)
{
    track *t = ud;
    hdr *h = (hdr *)p - 1;
    assert_int_equal(h->size, size);
    t->live_blocks--;
    t->live_bytes -= size;
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
    hdr *n = realloc(h, sizeof(hdr) + size);
    if (!n) {
        return NULL;
    }
    n->size = size;
    t->live_bytes = t->live_bytes - old + size;
    return n + 1;
}

static loom_allocator track_alloc(track *t)
{
    loom_allocator a = {t_malloc, t_realloc, t_free, t};
    t->live_blocks = 0;
    t->live_bytes = 0;
    t->fail_after = -1;
    return a;
}

/* ---- helpers ------------------------------------------------------------ */

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

static void assert_buf_hex(const loom_buf *b, const char *hex)
{
    uint8_t tmp[64];
    size_t n = unhex(hex, tmp);
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, tmp, n);
}

/* ---- allocation --------------------------------------------------------- */

static void test_alloc_sizes(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    char *s = loom__strndup(&a, "hello", 5);
    assert_non_null(s);
    assert_string_equal(s, "hello");
    void *z = loom__calloc(&a, 0); /* zero-sized: still a distinct block */
    assert_non_null(z);
    uint8_t *m = loom__memdup(&a, "abc", 3);
    assert_memory_equal(m, "abc", 3);
    m = loom__realloc(&a, m, 3, 100);
    assert_non_null(m);
    assert_memory_equal(m, "abc", 3);
    loom__free(&a, m, 100);
    loom__free(&a, z, 0);
    loom__free(&a, s, 6);
    loom__free(&a, NULL, 3);
    assert_int_equal(t.live_blocks, 0);

    t.fail_after = 0;
    assert_null(loom__malloc(&a, 10));
    assert_null(loom__strndup(&a, "x", 1));

    /* libc default and a NULL allocator */
    void *p = loom__malloc(NULL, 8);
    assert_non_null(p);
    loom__free(NULL, p, 8);
    const loom_allocator *d = loom_allocator_default();
    p = loom__malloc(d, 8);
    loom__free(d, p, 8);
}

static void test_alloc_no_realloc_hook(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    a.realloc_fn = NULL;
    char *p = loom__memdup(&a, "abcdef", 6);
    p = loom__realloc(&a, p, 6, 3);
    assert_memory_equal(p, "abc", 3);
    loom__free(&a, p, 3);
    assert_int_equal(t.live_blocks, 0);
}

static void test_vec_reserve(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    void *v = NULL;
    size_t cap = 0;
    size_t prev_cap = 0;
    int grows = 0;
    for (size_t i = 1; i <= 1000; i++) {
        assert_int_equal(loom__vec_reserve(&a, &v, &cap, i, sizeof(uint32_t)),
                         LOOM_OK);
        ((uint32_t *)v)[i - 1] = (uint32_t)i;
        if (cap != prev_cap) {
            grows++;
            prev_cap = cap;
        }
    }
    assert_true(grows <= 10); /* doubling */
    for (size_t i = 0; i < 1000; i++) {
        assert_int_equal(((uint32_t *)v)[i], i + 1);
    }
    t.fail_after = 0;
    size_t old_cap = cap;
    assert_int_equal(loom__vec_reserve(&a, &v, &cap, cap + 1, 4), LOOM_ENOMEM);
    assert_int_equal(cap, old_cap);
    assert_int_equal(loom__vec_reserve(&a, &v, &cap, SIZE_MAX, 8), LOOM_ENOMEM);
    loom__free(&a, v, cap * 4);
    assert_int_equal(t.live_blocks, 0);
}

/* The exact variant makes the capacity what was asked, keeps the elements,
 * and leaves the vector alone when it cannot grow. */
static void test_vec_grow_exact(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    void *v = NULL;
    size_t cap = 0;
    assert_int_equal(loom__vec_grow_exact(&a, &v, &cap, 1000, 8), LOOM_OK);
    assert_int_equal(cap, 1000);
    for (uint64_t i = 0; i < 1000; i++) {
        ((uint64_t *)v)[i] = i * 3;
    }
    assert_int_equal(loom__vec_grow_exact(&a, &v, &cap, 10, 8), LOOM_OK);
    assert_int_equal(cap, 1000); /* never shrinks */
    assert_int_equal(loom__vec_grow_exact(&a, &v, &cap, 1001, 8), LOOM_OK);
    assert_int_equal(cap, 1001);
    assert_int_equal(((uint64_t *)v)[999], 999 * 3);
    t.fail_after = 0;
    void *before = v;
    assert_int_equal(loom__vec_grow_exact(&a, &v, &cap, 5000, 8), LOOM_ENOMEM);
    assert_int_equal(cap, 1001);
    assert_ptr_equal(v, before);
    assert_int_equal(loom__vec_grow_exact(&a, &v, &cap, SIZE_MAX, 8),
                     LOOM_ENOMEM);
    assert_int_equal(loom__vec_grow_exact(&a, &v, &cap, 2, 0), LOOM_OK);
    assert_int_equal(loom__vec_grow_exact(&a, &v, &cap, 2000, 0), LOOM_EINVAL);
    loom__free(&a, v, cap * 8);
    assert_int_equal(t.live_blocks, 0);
}

/* ---- buffers ------------------------------------------------------------ */

static void test_buf(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    loom_buf b;
    loom__buf_init(&b, &a);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(loom__buf_push(&b, (uint8_t)i), LOOM_OK);
    }
    assert_int_equal(loom__buf_append(&b, "xyz", 3), LOOM_OK);
    assert_int_equal(loom__buf_append(&b, NULL, 0), LOOM_OK);
    assert_int_equal(b.len, 1003);
    assert_int_equal(b.data[999], (uint8_t)999);
    assert_memory_equal(b.data + 1000, "xyz", 3);
    t.fail_after = 0;
    size_t len = b.len;
    assert_int_equal(loom__buf_reserve(&b, b.cap), LOOM_ENOMEM);
    assert_int_equal(loom__buf_reserve(&b, SIZE_MAX), LOOM_ENOMEM);
    assert_int_equal(b.len, len);
    loom_buf_free(&b);
    assert_int_equal(b.len, 0);
    assert_null(b.data);
    assert_int_equal(t.live_blocks, 0);
    loom_buf_free(NULL);
    loom_buf z = {0};
    assert_int_equal(loom__buf_push(&z, 1),
                     LOOM_OK); /* zero-initialised: libc */
    loom_buf_free(&z);
}

/* ---- lib0 writing ------------------------------------------------------- */

static void check_varuint(uint64_t v, const char *hex)
{
    loom_buf b = {0};
    assert_int_equal(loom__write_varuint(&b, v), LOOM_OK);
    assert_buf_hex(&b, hex);
    loom__reader r;
    loom__reader_init(&r, b.data, b.len);
    uint64_t got = 0;
    assert_int_equal(loom__read_varuint(&r, &got), LOOM_OK);
    assert_int_equal(got, v);
    assert_int_equal(r.pos, b.len);
    loom_buf_free(&b);
}

static void check_varint(bool neg, uint64_t mag, const char *hex)
{
    loom_buf b = {0};
    assert_int_equal(loom__write_varint(&b, neg, mag), LOOM_OK);
    assert_buf_hex(&b, hex);
    loom__reader r;
    loom__reader_init(&r, b.data, b.len);
    bool gneg = !neg;
    uint64_t gmag = mag + 1;
    assert_int_equal(loom__read_varint(&r, &gneg, &gmag), LOOM_OK);
    assert_int_equal(gneg, neg);
    assert_int_equal(gmag, mag);
    loom_buf_free(&b);
}

static void test_varuint(void **state)
{
    (void)state;
    check_varuint(0, "00");
    check_varuint(127, "7f");
    check_varuint(128, "8001");
    check_varuint(300, "ac02");
    check_varuint(16384, "808001");
    check_varuint(4294967295u, "ffffffff0f");
    check_varuint(LOOM__MAX_SAFE_INT, "ffffffffffffff0f");
}

static void test_varint(void **state)
{
    (void)state;
    check_varint(false, 0, "00");
    check_varint(true, 0, "40");
    check_varint(true, 1, "41");
    check_varint(false, 63, "3f");
    check_varint(true, 63, "7f");
    check_varint(false, 64, "8001");
    check_varint(true, 64, "c001");
    check_varint(false, 8191, "bf7f");
    check_varint(true, 8192, "c08001");
    check_varint(false, 2147483647, "bfffffff0f");
    check_varint(false, LOOM__MAX_SAFE_INT, "bfffffffffffff1f");
    check_varint(true, LOOM__MAX_SAFE_INT, "ffffffffffffff1f");

    loom_buf b = {0};
    assert_int_equal(loom__write_varint_i64(&b, -8192), LOOM_OK);
    assert_int_equal(loom__write_varint_i64(&b, INT64_MIN), LOOM_OK);
    assert_int_equal(b.data[0], 0xc0);
    loom_buf_free(&b);
}

static void test_fixed(void **state)
{
    (void)state;
    loom_buf b = {0};
    assert_int_equal(loom__write_f32(&b, 1.5f), LOOM_OK);
    assert_int_equal(loom__write_f64(&b, 0.1), LOOM_OK);
    assert_int_equal(loom__write_i64(&b, -1), LOOM_OK);
    assert_int_equal(loom__write_u8(&b, 7), LOOM_OK);
    assert_buf_hex(&b, "3fc000003fb999999999999affffffffffffffff07");
    loom__reader r;
    loom__reader_init(&r, b.data, b.len);
    float f;
    double d;
    int64_t i;
    uint8_t u;
    assert_int_equal(loom__read_f32(&r, &f), 0);
    assert_int_equal(loom__read_f64(&r, &d), 0);
    assert_int_equal(loom__read_i64(&r, &i), 0);
    assert_int_equal(loom__read_u8(&r, &u), 0);
    assert_true(f == 1.5f);
    assert_true(d == 0.1);
    assert_int_equal(i, -1);
    assert_int_equal(u, 7);
    assert_int_equal(loom__reader_left(&r), 0);
    assert_int_equal(loom__read_u8(&r, &u), LOOM_EMALFORMED);
    assert_int_equal(r.err_pos, b.len);
    loom_buf_free(&b);
}

static void test_varstring_write(void **state)
{
    (void)state;
    loom_buf b = {0};
    assert_int_equal(loom__write_varstring(&b, "\xc3\xa9", 2), LOOM_OK);
    assert_int_equal(loom__write_varbytes(&b, (const uint8_t *)"", 0), LOOM_OK);
    assert_buf_hex(&b, "02c3a900");
    loom_buf_free(&b);
}

/* ---- lib0 reading of hostile input -------------------------------------- */

static int read_uint_hex(const char *hex, uint64_t *v, loom__reader *r)
{
    static uint8_t tmp[64];
    size_t n = unhex(hex, tmp);
    loom__reader_init(r, tmp, n);
    return loom__read_varuint(r, v);
}

static void test_varuint_hostile(void **state)
{
    (void)state;
    loom__reader r;
    uint64_t v = 42;
    /* 2^53 is out of range, like lib0's "Integer out of Range". */
    assert_int_equal(read_uint_hex("8080808080808010", &v, &r),
                     LOOM_EMALFORMED);
    assert_int_equal(v, 42);
    assert_int_equal(r.err_pos, 0);
    assert_non_null(r.err_msg);
    assert_int_equal(read_uint_hex("ffffffffffffff1f", &v, &r),
                     LOOM_EMALFORMED);
    assert_int_equal(read_uint_hex("ffffffffffffffffffff01", &v, &r),
                     LOOM_EMALFORMED);
    /* non-minimal encodings are accepted */
    assert_int_equal(read_uint_hex("8000", &v, &r), LOOM_OK);
    assert_int_equal(v, 0);
    assert_int_equal(read_uint_hex("81808080808080808080808000", &v, &r),
                     LOOM_OK);
    assert_int_equal(v, 1);
    assert_int_equal(read_uint_hex("ffffffffffffff8f808000", &v, &r), LOOM_OK);
    assert_int_equal(v, LOOM__MAX_SAFE_INT);
    /* truncation */
    assert_int_equal(read_uint_hex("", &v, &r), LOOM_EMALFORMED);
    assert_int_equal(read_uint_hex("8080", &v, &r), LOOM_EMALFORMED);
    assert_int_equal(r.err_pos, 0);
    /* errors are sticky */
    assert_int_equal(loom__read_varuint(&r, &v), LOOM_EMALFORMED);

    /* varInt: 53 bits of magnitude at most */
    static const uint8_t big[] = {0xbf, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0x3f};
    bool neg;
    loom__reader_init(&r, big, sizeof(big));
    assert_int_equal(loom__read_varint(&r, &neg, &v), LOOM_EMALFORMED);
    static const uint8_t trunc[] = {0xc0};
    loom__reader_init(&r, trunc, sizeof(trunc));
    assert_int_equal(loom__read_varint(&r, &neg, &v), LOOM_EMALFORMED);
    loom__reader_init(&r, NULL, 0);
    assert_int_equal(loom__read_varint(&r, &neg, &v), LOOM_EMALFORMED);
}

static void test_truncation_everywhere(void **state)
{
    (void)state;
    loom_buf b = {0};
    assert_int_equal(loom__write_varuint(&b, 123456789), 0);
    assert_int_equal(loom__write_varint(&b, true, 987654321), 0);
    assert_int_equal(loom__write_varstring(&b, "h\xc3\xa9llo", 6), 0);
    assert_int_equal(loom__write_f32(&b, 2.5f), 0);
    assert_int_equal(loom__write_f64(&b, 2.5), 0);
    assert_int_equal(loom__write_i64(&b, 5), 0);
    for (size_t cut = 0; cut <= b.len; cut++) {
        loom__reader r;
        loom__reader_init(&r, b.data, cut);
        uint64_t u;
        bool neg;
        const char *s;
        size_t sl;
        float f;
        double d;
        int64_t i;
        loom__read_varuint(&r, &u);
        loom__read_varint(&r, &neg, &u);
        loom__read_varstring(&r, &s, &sl);
        loom__read_f32(&r, &f);
        loom__read_f64(&r, &d);
        loom__read_i64(&r, &i);
        if (cut == b.len) {
            assert_int_equal(r.err, 0);
            assert_int_equal(i, 5);
        } else {
            assert_int_equal(r.err, LOOM_EMALFORMED);
            assert_true(r.err_pos <= cut);
        }
    }
    loom_buf_free(&b);
}

static int read_str_hex(const char *hex)
{
    static uint8_t tmp[64];
    size_t n = unhex(hex, tmp);
    loom__reader r;
    loom__reader_init(&r, tmp, n);
    const char *s = NULL;
    size_t len = 0;
    return loom__read_varstring(&r, &s, &len);
}

static void test_varstring_hostile(void **state)
{
    (void)state;
    assert_int_equal(read_str_hex("00"), LOOM_OK);
    assert_int_equal(read_str_hex("03efbbbf"), LOOM_OK);         /* BOM kept */
    assert_int_equal(read_str_hex("04f09f9880"), LOOM_OK);       /* emoji */
    assert_int_equal(read_str_hex("04f48fbfbf"), LOOM_OK);       /* U+10FFFF */
    assert_int_equal(read_str_hex("03eda080"), LOOM_EMALFORMED); /* U+D800 */
    assert_int_equal(read_str_hex("03edbfbf"), LOOM_EMALFORMED); /* U+DFFF */
    assert_int_equal(read_str_hex("03ed9fbf"), LOOM_OK);         /* U+D7FF */
    assert_int_equal(read_str_hex("02c080"),
                     LOOM_EMALFORMED); /* overlong NUL */
    assert_int_equal(read_str_hex("02c1bf"), LOOM_EMALFORMED);
    assert_int_equal(read_str_hex("03e08080"),
                     LOOM_EMALFORMED); /* overlong 3 */
    assert_int_equal(read_str_hex("04f0808080"), LOOM_EMALFORMED);
    assert_int_equal(read_str_hex("04f4908080"),
                     LOOM_EMALFORMED); /* > U+10FFFF */
    assert_int_equal(read_str_hex("04f5808080"), LOOM_EMALFORMED);
    assert_int_equal(read_str_hex("0180"),
                     LOOM_EMALFORMED); /* lone continuation */
    assert_int_equal(read_str_hex("01ff"), LOOM_EMALFORMED);
    assert_int_equal(read_str_hex("02e282"),
                     LOOM_EMALFORMED); /* truncated sequence */
    assert_int_equal(read_str_hex("03e28261"), LOOM_EMALFORMED);
    assert_int_equal(read_str_hex("0100"), LOOM_OK); /* NUL is text */
    /* a length past the input fails before anything is allocated or read */
    assert_int_equal(read_str_hex("05616263"), LOOM_EMALFORMED);
    assert_int_equal(read_str_hex("ffffffffffffff0f61"), LOOM_EMALFORMED);
    assert_int_equal(read_str_hex("8080808080808010"), LOOM_EMALFORMED);
}

/* ---- UTF-8 / UTF-16 ----------------------------------------------------- */

static void test_utf16(void **state)
{
    (void)state;
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* a é € 😀 z */
    size_t len = strlen(s);
    assert_true(loom__utf8_valid(s, len));
    assert_int_equal(loom__utf8_check(s, len), len);
    assert_int_equal(loom__utf8_check("ab\xed\xa0\x80", 5), 2);
    assert_int_equal(loom__utf16_len(s, len), 6);
    assert_int_equal(loom__utf8_codepoints(s, len), 5);
    bool mid = true;
    assert_int_equal(loom__utf8_offset16(s, len, 0, &mid), 0);
    assert_false(mid);
    assert_int_equal(loom__utf8_offset16(s, len, 1, &mid), 1);
    assert_int_equal(loom__utf8_offset16(s, len, 2, &mid), 3);
    assert_int_equal(loom__utf8_offset16(s, len, 3, &mid), 6);
    assert_false(mid);
    assert_int_equal(loom__utf8_offset16(s, len, 4, &mid), 6);
    assert_true(mid);
    assert_int_equal(loom__utf8_offset16(s, len, 5, &mid), 10);
    assert_false(mid);
    assert_int_equal(loom__utf8_offset16(s, len, 6, &mid), 11);
    assert_int_equal(loom__utf8_offset16(s, len, 100, &mid), 11);
    assert_int_equal(loom__utf8_offset16(s, len, 4, NULL), 6);
    assert_int_equal(loom__utf16_len("", 0), 0);

    /* Scanning from the nearer end gives what scanning from the start
     * gives, on random texts of 1- to 4-byte sequences. */
    static const char *const pieces[] = {"a", "\xc3\xa9", "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80"};
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char text[200];
    for (int round = 0; round < 200; round++) {
        size_t n = 0;
        while (n < sizeof(text) - 4) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if (seed % 23 == 0) {
                break;
            }
            const char *p = pieces[seed % 4];
            memcpy(text + n, p, strlen(p));
            n += strlen(p);
        }
        size_t total = loom__utf16_len(text, n);
        for (size_t u = 0; u <= total + 1; u++) {
            bool m1 = false;
            bool m2 = true;
            size_t a = loom__utf8_offset16(text, n, u, &m1);
            size_t b = loom__utf8_offset16_of(text, n, total, u, &m2);
            assert_int_equal(a, b);
            assert_int_equal(m1, m2);
        }
    }
}

/* ---- maps --------------------------------------------------------------- */

static void test_u64map(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    loom__u64map m;
    loom__u64map_init(&m, &a);
    assert_null(loom__u64map_get(&m, 0));
    static int vals[3];
    for (uint64_t k = 0; k < 5000; k++) {
        assert_int_equal(loom__u64map_put(&m, k * 0x100000001ULL, &vals[k % 3]),
                         LOOM_OK);
    }
    assert_int_equal(loom__u64map_put(&m, 0, &vals[2]),
                     LOOM_OK); /* replace key 0 */
    assert_int_equal(m.count, 5000);
    assert_ptr_equal(loom__u64map_get(&m, 0), &vals[2]);
    for (uint64_t k = 1; k < 5000; k++) {
        assert_ptr_equal(loom__u64map_get(&m, k * 0x100000001ULL),
                         &vals[k % 3]);
    }
    assert_null(loom__u64map_get(&m, 7));
    size_t seen = 0;
    for (size_t i = 0; i < m.cap; i++) {
        seen += m.used[i] ? 1 : 0;
    }
    assert_int_equal(seen, 5000);
    loom__u64map_free(&m);
    assert_int_equal(t.live_blocks, 0);

    /* allocation failure leaves the map usable */
    loom__u64map_init(&m, &a);
    t.fail_after = 1;
    assert_int_equal(loom__u64map_put(&m, 1, &vals[0]), LOOM_ENOMEM);
    t.fail_after = -1;
    assert_int_equal(loom__u64map_put(&m, 1, &vals[0]), LOOM_OK);
    assert_ptr_equal(loom__u64map_get(&m, 1), &vals[0]);
    loom__u64map_free(&m);
    assert_int_equal(t.live_blocks, 0);
}

static void test_strmap(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    loom__strmap m;
    loom__strmap_init(&m, &a);
    assert_null(loom__strmap_find(&m, "x", 1));
    char key[32];
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(key, sizeof(key), "key%d", i);
        loom__strmap_entry *e = NULL;
        assert_int_equal(loom__strmap_upsert(&m, key, (size_t)n, &e), LOOM_OK);
        assert_null(e->val);
        e->val = (void *)(intptr_t)(i + 1);
    }
    loom__strmap_entry *e = NULL;
    assert_int_equal(loom__strmap_upsert(&m, "key7", 4, &e), LOOM_OK);
    assert_int_equal((intptr_t)e->val, 8);
    assert_int_equal(m.n, 3000);
    for (int i = 0; i < 3000; i++) { /* insertion order kept */
        int n = snprintf(key, sizeof(key), "key%d", i);
        assert_int_equal(m.e[i].klen, (size_t)n);
        assert_string_equal(m.e[i].key, key);
        assert_ptr_equal(loom__strmap_find(&m, key, (size_t)n), &m.e[i]);
    }
    /* keys with NUL bytes and the empty key */
    assert_int_equal(loom__strmap_upsert(&m, "a\0b", 3, &e), LOOM_OK);
    assert_int_equal(loom__strmap_upsert(&m, "", 0, &e), LOOM_OK);
    assert_null(loom__strmap_find(&m, "a", 1));
    assert_non_null(loom__strmap_find(&m, "a\0b", 3));
    assert_non_null(loom__strmap_find(&m, "", 0));
    loom__strmap_free(&m);
    assert_int_equal(t.live_blocks, 0);

    /* every allocation failing in turn: no leak, no half-inserted entry */
    for (long fail = 0; fail < 8; fail++) {
        loom__strmap_init(&m, &a);
        t.fail_after = fail;
        int rc = LOOM_OK;
        for (int i = 0; i < 20 && rc == LOOM_OK; i++) {
            int n = snprintf(key, sizeof(key), "k%d", i);
            rc = loom__strmap_upsert(&m, key, (size_t)n, &e);
        }
        t.fail_after = -1;
        for (size_t i = 0; i < m.n; i++) {
            assert_ptr_equal(loom__strmap_find(&m, m.e[i].key, m.e[i].klen),
                             &m.e[i]);
        }
        loom__strmap_free(&m);
        assert_int_equal(t.live_blocks, 0);
    }
    assert_int_not_equal(loom__hash_bytes("ab", 2), loom__hash_bytes("ba", 2));
    assert_int_not_equal(loom__hash_bytes("", 0), loom__hash_bytes("\0", 1));
}

/* m->room never promises more than the index, the entries and the key
 * block hold. */
static void assert_strmap_room(const loom__strmap *m)
{
    assert_true(m->room <= m->icap / 2 - m->n);
    assert_true(m->room <= m->ecap - m->n);
    if (m->room) {
        assert_non_null(m->kb);
        assert_true(m->room * (4 + LOOM__STRMAP_SHORT + 1) <=
                    m->kb->size - m->kused);
    }
}

/* Keys of every length around the short limit, with reserves between
 * them and allocations failing: the inline path's one room count (see
 * loom__strmap.room) stays a lower bound, and every key is found. */
static void test_strmap_room(void **state)
{
    (void)state;
    track t;
    loom_allocator a = track_alloc(&t);
    for (long fail = -1; fail < 12; fail++) {
        loom__strmap m;
        loom__strmap_init(&m, &a);
        assert_strmap_room(&m);
        t.fail_after = fail;
        char key[64];
        for (int i = 0; i < 2000; i++) {
            size_t klen = (size_t)(i * 7 % 40);
            for (size_t j = 0; j < klen; j++)
                key[j] = (char)('a' + (i + (int)j * 3) % 26);
            if (klen >= 4)
                memcpy(key, &i, sizeof(i)); /* distinct */
            if (i % 300 == 299)
                (void)loom__strmap_reserve(&m, m.n + (size_t)i / 3);
            assert_strmap_room(&m);
            size_t idx;
            bool created;
            uint64_t h = loom__hash_bytes(key, klen);
            int rc =
                loom__strmap_intern_hashed(&m, key, klen, h, &idx, &created);
            assert_strmap_room(&m);
            if (rc) {
                assert_int_equal(rc, LOOM_ENOMEM);
                continue;
            }
            assert_int_equal(m.e[idx].klen, klen);
            assert_memory_equal(m.e[idx].key, key, klen);
            assert_int_equal(m.e[idx].key[klen], 0);
            assert_ptr_equal(loom__strmap_key_entry(&m, m.e[idx].key),
                             &m.e[idx]);
        }
        t.fail_after = -1;
        for (size_t i = 0; i < m.n; i++)
            assert_ptr_equal(loom__strmap_find(&m, m.e[i].key, m.e[i].klen),
                             &m.e[i]);
        loom__strmap_free(&m);
        assert_int_equal(m.room, 0);
        assert_int_equal(t.live_blocks, 0);
    }
}

/* ---- misc --------------------------------------------------------------- */

static void test_misc(void **state)
{
    (void)state;
    for (int c = 1; c >= -20; c--) {
        assert_non_null(loom_strerror(c));
    }
    loom_error err;
    char longmsg[300];
    memset(longmsg, 'x', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    loom__error_set(&err, LOOM_EMALFORMED, 7, 1, longmsg);
    assert_int_equal(err.code, LOOM_EMALFORMED);
    assert_int_equal(err.offset, 7);
    assert_int_equal(err.input, 1);
    assert_int_equal(strlen(err.message), sizeof(err.message) - 1);
    loom__error_set(NULL, LOOM_EMALFORMED, 7, 1, "x");

    loom__reader r;
    static const uint8_t bytes[] = {0x05, 0x61};
    loom__reader_init(&r, bytes, sizeof(bytes));
    const char *s;
    size_t len;
    assert_int_equal(loom__read_varstring(&r, &s, &len), LOOM_EMALFORMED);
    loom__reader_error(&r, &err, 2);
    assert_int_equal(err.code, LOOM_EMALFORMED);
    assert_int_equal(err.offset, 0);
    assert_int_equal(err.input, 2);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(loom__reader_fail(&r, LOOM_ELIMIT, 1, "other"),
                     LOOM_ELIMIT);
    assert_int_equal(r.err, LOOM_EMALFORMED); /* the first error is kept */

    uint32_t x = loom__random_u32(), y = loom__random_u32(),
             z = loom__random_u32();
    assert_false(x == y && y == z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_sizes),
        cmocka_unit_test(test_alloc_no_realloc_hook),
        cmocka_unit_test(test_vec_reserve),
        cmocka_unit_test(test_vec_grow_exact),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_varuint),
        cmocka_unit_test(test_varint),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test(test_varstring_write),
        cmocka_unit_test(test_varuint_hostile),
        cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_varstring_hostile),
        cmocka_unit_test(test_utf16),
        cmocka_unit_test(test_u64map),
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_strmap_room),
        cmocka_unit_test(test_misc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
