/*
 * test_relpos.c: relative positions (src/crdt/relpos.c) against the vectors
 * made by yjs 13.6.33 and facts taken from yjs by hand.
 *
 *  - every encodeRelativePosition check: the doc is rebuilt from its final
 *    update, createRelativePositionFromTypeIndex must give the recorded JSON
 *    and bytes, and both the created and the decoded position must resolve
 *    to absoluteIndex in that type;
 *  - positions surviving remote inserts and deletes, deleted anchors, a
 *    deleted nested type, -0 assoc, unknown roots and anchors that have not
 *    arrived;
 *  - hostile input for loom_relpos_decode (truncations, random bytes,
 *    unknown kinds, trailing bytes): an error with an offset, no crash, no
 *    leak, out-param untouched; allocation failures.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loom/loom.h"
#include "testalloc.h"
#include "tjson.h"

#ifndef LOOM_VECTORS_DIR
#    error "LOOM_VECTORS_DIR must be defined by the build"
#endif

/* ---- helpers ------------------------------------------------------------ */


static uint8_t *unhex(const char *h, size_t *len)
{
    uint8_t *p = NULL;
    *len = 0;
    assert_int_equal(hex_decode(h, &p, len), 0);
    return p;
}

static int bytes_equal_hex(const loom_buf *b, const char *want)
{
    char *g = hex_encode(b->data, b->len);
    int eq = g && !strcmp(g, want);
    if (!eq)
        fprintf(stderr, "   got  %s\n   want %s\n", g ? g : "(null)", want);
    free(g);
    return eq;
}

static void apply_hex(loom_doc *d, const char *update_hex)
{
    size_t n;
    uint8_t *p = unhex(update_hex, &n);
    loom_error err;
    int rc = loom_doc_apply_update(d, p, n, NULL, &err);
    if (rc)
        fprintf(stderr, "apply failed: %s at %zu (%s)\n", loom_strerror(rc),
                err.offset, err.message);
    assert_int_equal(rc, 0);
    free(p);
}

static loom_doc *doc_from_hex(const char *update_hex, int gc)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 0x7ffffff7;
    o.gc = gc;
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(&o, &d), 0);
    apply_hex(d, update_hex);
    return d;
}

static loom_type_kind kind_of(const char *k)
{
    if (!strcmp(k, "map"))
        return LOOM_TYPE_MAP;
    if (!strcmp(k, "array"))
        return LOOM_TYPE_ARRAY;
    if (!strcmp(k, "text"))
        return LOOM_TYPE_TEXT;
    if (!strcmp(k, "xmlfragment"))
        return LOOM_TYPE_XML_FRAGMENT;
    return LOOM_TYPE_UNDEFINED;
}

/* "root" or "root.key.key": the root with its declared kind, then map keys
 * holding shared types. */
static loom_type *type_at(loom_doc *d, const json_t *roots, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    char *part = strtok_r(buf, ".", &save);
    const json_t *k = json_object_get(roots, part);
    loom_type *t = NULL;
    assert_non_null(k);
    assert_int_equal(
        loom_doc_get(d, part, strlen(part), kind_of(json_string_value(k)), &t),
        0);
    while ((part = strtok_r(NULL, ".", &save))) {
        loom_any *v = NULL;
        loom_type *child = NULL;
        assert_int_equal(loom_map_get(t, part, strlen(part), &v, &child), 0);
        assert_null(v);
        assert_non_null(child);
        t = child;
    }
    return t;
}

static int json_matches(const loom_relpos *rp, const json_t *want)
{
    loom_any *v = NULL;
    assert_int_equal(loom_relpos_to_any(rp, &v), 0);
    json_t *g = tjson_from_any(v);
    loom_any_free(v);
    int eq = tjson_equal(g, want);
    if (!eq) {
        char *gs = tjson_dumps_sorted(g), *ws = tjson_dumps_sorted(want);
        fprintf(stderr, "   json got %s\n   want     %s\n", gs, ws);
        free(gs);
        free(ws);
    }
    json_decref(g);
    return eq;
}

/* ---- vectors --------------------------------------------------------------- */

typedef struct rp_stats {
    int total, ok;
} rp_stats;

static void relpos_checks_file(const char *path, const json_t *c, rp_stats *st)
{
    size_t i;
    json_t *chk;
    loom_doc *d = NULL;
    json_array_foreach(json_object_get(c, "checks"), i, chk)
    {
        if (strcmp(json_string_value(json_object_get(chk, "fn")),
                   "encodeRelativePosition"))
            continue;
        st->total++;
        if (!d) {
            /* the positions were taken on the case's only doc, in its final state */
            const json_t *fin = json_array_get(json_object_get(c, "final"), 0);
            d = doc_from_hex(json_string_value(json_object_get(fin, "update")),
                             json_is_true(json_object_get(fin, "gc")));
        }
        loom_type *t = type_at(d, json_object_get(c, "roots"),
                               json_string_value(json_object_get(chk, "type")));
        size_t index =
            (size_t)json_integer_value(json_object_get(chk, "index"));
        int assoc = (int)json_integer_value(json_object_get(chk, "assoc"));
        size_t want_abs =
            (size_t)json_integer_value(json_object_get(chk, "absoluteIndex"));
        const char *want_hex =
            json_string_value(json_object_get(chk, "output"));
        loom_relpos *rp = NULL, *rp2 = NULL;
        loom_buf b = {0}, b2 = {0};
        int ok = loom_relpos_from_index(t, index, assoc, &rp) == 0;
        ok = ok && json_matches(rp, json_object_get(chk, "json"));
        ok = ok && loom_relpos_encode(rp, &b) == 0 &&
             bytes_equal_hex(&b, want_hex);
        if (ok) {
            loom_type *rt = NULL;
            size_t ri = SIZE_MAX;
            ok = loom_relpos_resolve(rp, d, &rt, &ri) == 0 && rt == t &&
                 ri == want_abs;
            /* the decoded bytes resolve the same and re-encode to themselves */
            size_t n;
            uint8_t *p = unhex(want_hex, &n);
            ok = ok && loom_relpos_decode(NULL, p, n, &rp2, NULL) == 0;
            rt = NULL;
            ri = SIZE_MAX;
            ok = ok && loom_relpos_resolve(rp2, d, &rt, &ri) == 0 && rt == t &&
                 ri == want_abs;
            ok = ok && loom_relpos_encode(rp2, &b2) == 0 &&
                 bytes_equal_hex(&b2, want_hex);
            free(p);
        }
        if (ok)
            st->ok++;
        else
            fprintf(stderr, "FAIL %s check %zu (type %s index %zu assoc %d)\n",
                    path, i, json_string_value(json_object_get(chk, "type")),
                    index, assoc);
        loom_buf_free(&b);
        loom_buf_free(&b2);
        loom_relpos_free(rp);
        loom_relpos_free(rp2);
    }
    loom_doc_free(d);
}

static void test_vectors(void **state)
{
    (void)state;
    static const char *const dirs[] = {LOOM_VECTORS_DIR "/cases",
                                       LOOM_VECTORS_DIR "/fuzz"};
    rp_stats st = {0, 0};
    for (size_t k = 0; k < 2; k++) {
        DIR *dir = opendir(dirs[k]);
        assert_non_null(dir);
        struct dirent *e;
        while ((e = readdir(dir))) {
            size_t n = strlen(e->d_name);
            if (n < 6 || strcmp(e->d_name + n - 5, ".json"))
                continue;
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", dirs[k], e->d_name);
            json_error_t jerr;
            json_t *c = tjson_load_file(path, 0, &jerr);
            if (!c)
                fail_msg("%s: %s", path, jerr.text);
            relpos_checks_file(path, c, &st);
            json_decref(c);
        }
        closedir(dir);
    }
    fprintf(stderr, "encodeRelativePosition checks: %d/%d pass\n", st.ok,
            st.total);
    assert_true(st.total > 0);
    assert_int_equal(st.ok, st.total);
}

/* ---- positions across edits (facts from yjs 13.6.33) ------------------------ */

/*
 * Doc (client 1, gc on): text t = "abcdef", array a = [1,2,3], map m with
 * inner = Y.Array ["x","y"]. Positions, then three states applied as
 * updates: U1 client 2 inserts "XY" at t[0] and 0 at a[0]; U2 client 1
 * deletes t[3..6) and a[1..3); U3 client 1 deletes m.inner. Resolved with
 * createAbsolutePositionFromRelativePosition(rp, doc, false); -1 is null.
 */
static const char *const U0 =
    "01040100040101740661626364656608010161037d017d027d032701016d05696e6e657200"
    "080001090277017877017900";
static const char *const U1 = "02020200440100025859480106017d000401000401017406"
                              "61626364656608010161037d017d027d032701016d05696e"
                              "6e657200080001090277017877017900";
static const char *const U2 =
    "02020200440100025859480106017d00070100040101740161810100038401030265660101"
    "016102880107017d03270101"
    "6d05696e6e657200080001090277017877017901010201030602";
static const char *const U3 =
    "02020200440100025859480106017d00070100040101740161810100038401030265660101"
    "016102880107017d03210101"
    "6d05696e6e6572010002010103010306020903";

typedef struct pos_fact {
    const char *type;
    size_t index;
    int assoc;
    const char *enc;
    int r[4]; /* resolved at U0..U3 */
} pos_fact;

static const pos_fact pos_facts[] = {
    {"t", 3, 0, "00010300", {3, 5, 3, 3}},
    {"t", 3, -1, "00010241", {3, 5, 3, 3}},
    {"t", 6, 0, "01017400", {6, 8, 5, 5}},
    {"t", 6, -1, "00010541", {6, 8, 5, 5}},
    {"t", 0, -1, "01017441", {0, 0, 0, 0}},
    {"a", 1, 0, "00010700", {1, 2, 1, 1}},
    {"a", 3, -1, "00010841", {3, 4, 2, 2}},
    {"m.inner", 1, 0, "00010b00", {1, 1, 1, -1}},
    {"m.inner", 2, 0, "02010900", {2, 2, 2, -1}},
    {"m.inner", 0, -1, "02010941", {0, 0, 0, -1}},
};

static void test_across_edits(void **state)
{
    (void)state;
    json_t *roots =
        json_pack("{s:s,s:s,s:s}", "t", "text", "a", "array", "m", "map");
    loom_doc *d = doc_from_hex(U0, 1);
    const size_t nf = sizeof(pos_facts) / sizeof(pos_facts[0]);
    loom_relpos *rp[10] = {0};
    for (size_t i = 0; i < nf; i++) {
        loom_type *t = type_at(d, roots, pos_facts[i].type);
        assert_int_equal(loom_relpos_from_index(t, pos_facts[i].index,
                                                pos_facts[i].assoc, &rp[i]),
                         0);
        loom_buf b = {0};
        assert_int_equal(loom_relpos_encode(rp[i], &b), 0);
        if (!bytes_equal_hex(&b, pos_facts[i].enc))
            fail_msg("position %zu", i);
        loom_buf_free(&b);
    }
    const char *const states[4] = {U0, U1, U2, U3};
    for (int s = 0; s < 4; s++) {
        if (s)
            apply_hex(d, states[s]);
        for (size_t i = 0; i < nf; i++) {
            loom_type *t = (loom_type *)&t;
            size_t idx = 12345;
            int rc = loom_relpos_resolve(rp[i], d, &t, &idx);
            if (pos_facts[i].r[s] < 0) {
                assert_int_equal(rc, LOOM_ENOTFOUND);
                assert_int_equal(idx, 12345); /* untouched */
            } else {
                if (rc || idx != (size_t)pos_facts[i].r[s])
                    fail_msg("state U%d position %zu: rc %d index %zu want %d",
                             s, i, rc, idx, pos_facts[i].r[s]);
            }
        }
    }
    for (size_t i = 0; i < nf; i++)
        loom_relpos_free(rp[i]);
    loom_doc_free(d);
    json_decref(roots);
}

static void test_special_values(void **state)
{
    (void)state;
    loom_doc *d = doc_from_hex(U1, 1);
    /* -0 assoc from the wire: kept (written back as 40), counts as >= 0. */
    {
        size_t n;
        uint8_t *p = unhex("01017440", &n);
        loom_relpos *rp = NULL;
        assert_int_equal(loom_relpos_decode(NULL, p, n, &rp, NULL), 0);
        loom_buf b = {0};
        assert_int_equal(loom_relpos_encode(rp, &b), 0);
        assert_true(bytes_equal_hex(&b, "01017440"));
        loom_buf_free(&b);
        loom_any *v = NULL;
        assert_int_equal(loom_relpos_to_any(rp, &v), 0);
        const loom_any *a = loom_any_object_get(v, "assoc", 5);
        assert_non_null(a);
        assert_true(loom_any_number(a) == 0 && signbit(loom_any_number(a)));
        assert_null(loom_any_object_get(v, "item", 4));
        loom_any_free(v);
        loom_type *t = NULL;
        size_t idx = 0;
        assert_int_equal(loom_relpos_resolve(rp, d, &t, &idx), 0);
        assert_int_equal(idx, 8); /* "XYabcdef": the end */
        loom_relpos_free(rp);
        free(p);
    }
    /* Missing assoc means 0. */
    {
        size_t n;
        uint8_t *p = unhex("000103", &n);
        loom_relpos *rp = NULL;
        assert_int_equal(loom_relpos_decode(NULL, p, n, &rp, NULL), 0);
        loom_buf b = {0};
        assert_int_equal(loom_relpos_encode(rp, &b), 0);
        assert_true(bytes_equal_hex(&b, "00010300"));
        loom_buf_free(&b);
        loom_relpos_free(rp);
        free(p);
    }
    /* An unknown root: yjs's doc.get creates it; index 0. */
    {
        size_t n;
        uint8_t *p = unhex("01036e6577", &n);
        loom_relpos *rp = NULL;
        assert_int_equal(loom_relpos_decode(NULL, p, n, &rp, NULL), 0);
        loom_any *v = NULL;
        assert_int_equal(loom_relpos_to_any(rp, &v), 0);
        json_t *g = tjson_from_any(v),
               *w = json_pack("{s:s,s:i}", "tname", "new", "assoc", 0);
        assert_true(tjson_equal(g, w));
        json_decref(g);
        json_decref(w);
        loom_any_free(v);
        loom_type *t = NULL;
        size_t idx = 7;
        assert_int_equal(loom_relpos_resolve(rp, d, &t, &idx), 0);
        assert_int_equal(idx, 0);
        assert_non_null(t);
        loom_relpos_free(rp);
        free(p);
    }
    /* Anchors that have not arrived: null in yjs. */
    static const char *const future[] = {"000900", "00010f00", "02016300",
                                         "02090000"};
    for (size_t i = 0; i < 4; i++) {
        size_t n;
        uint8_t *p = unhex(future[i], &n);
        loom_relpos *rp = NULL;
        assert_int_equal(loom_relpos_decode(NULL, p, n, &rp, NULL), 0);
        loom_type *t = NULL;
        size_t idx = 0;
        assert_int_equal(loom_relpos_resolve(rp, d, &t, &idx), LOOM_ENOTFOUND);
        loom_relpos_free(rp);
        free(p);
    }
    /* A type ID that is not a type (the item (1,0) is the string "abcdef"). */
    {
        size_t n;
        uint8_t *p = unhex("02010000", &n);
        loom_relpos *rp = NULL;
        assert_int_equal(loom_relpos_decode(NULL, p, n, &rp, NULL), 0);
        loom_type *t = NULL;
        size_t idx = 0;
        assert_int_equal(loom_relpos_resolve(rp, d, &t, &idx), LOOM_ENOTFOUND);
        loom_relpos_free(rp);
        free(p);
    }
    /* Index past the end: the end of the type, as in yjs. */
    {
        loom_type *t = NULL;
        assert_int_equal(loom_doc_get(d, "t", 1, LOOM_TYPE_TEXT, &t), 0);
        loom_relpos *rp = NULL;
        assert_int_equal(loom_relpos_from_index(t, 1000, 0, &rp), 0);
        loom_buf b = {0};
        assert_int_equal(loom_relpos_encode(rp, &b), 0);
        assert_true(bytes_equal_hex(&b, "01017400"));
        loom_buf_free(&b);
        loom_relpos_free(rp);
    }
    loom_doc_free(d);
}

static void test_bad_args(void **state)
{
    (void)state;
    loom_relpos *rp = (loom_relpos *)&rp;
    loom_relpos *const sentinel = rp;
    assert_int_equal(loom_relpos_from_index(NULL, 0, 0, &rp), LOOM_EINVAL);
    assert_int_equal(loom_relpos_decode(NULL, NULL, 1, &rp, NULL), LOOM_EINVAL);
    assert_ptr_equal(rp, sentinel);
    loom_buf b = {0};
    assert_int_equal(loom_relpos_encode(NULL, &b), LOOM_EINVAL);
    loom_any *v = NULL;
    assert_int_equal(loom_relpos_to_any(NULL, &v), LOOM_EINVAL);
    loom_relpos_free(NULL);
}

/* ---- hostile input --------------------------------------------------------- */

static int decode_checked(const uint8_t *p, size_t n)
{
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    loom_relpos *rp = (loom_relpos *)&c;
    loom_relpos *const sentinel = rp;
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc = loom_relpos_decode(&a, p, n, &rp, &err);
    if (rc) {
        assert_true(rc == LOOM_EMALFORMED || rc == LOOM_ENOMEM);
        assert_int_equal(err.code, rc);
        assert_true(err.offset <= n);
        assert_true(err.message[0] != 0);
        assert_ptr_equal(rp, sentinel);
    } else {
        loom_buf b = {0}, b2 = {0};
        assert_int_equal(loom_relpos_encode(rp, &b), 0);
        /* Re-encoding normalises (minimal varUints, an explicit assoc);
         * the normal form is a fixpoint. */
        loom_relpos *rp2 = NULL;
        assert_int_equal(loom_relpos_decode(&a, b.data, b.len, &rp2, NULL), 0);
        assert_int_equal(loom_relpos_encode(rp2, &b2), 0);
        assert_int_equal(b.len, b2.len);
        assert_memory_equal(b.data, b2.data, b.len);
        loom_relpos_free(rp2);
        loom_buf_free(&b2);
        loom_any *v = NULL;
        assert_int_equal(loom_relpos_to_any(rp, &v), 0);
        loom_any_free(v);
        loom_buf_free(&b);
        loom_relpos_free(rp);
    }
    assert_int_equal(c.live_blocks, 0);
    assert_int_equal(c.live_bytes, 0);
    assert_int_equal(c.size_mismatches, 0);
    return rc;
}

static void test_decode_hostile(void **state)
{
    (void)state;
    static const char *const good[] = {"00010300",           "01017441",
                                       "02010941",           "0001ffffffff0f0a",
                                       "0106e697a5e69cac40", "000103"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t n;
        uint8_t *p = unhex(good[i], &n);
        assert_int_equal(decode_checked(p, n), 0);
        free(p);
    }
    static const char *const bad[] = {
        "",                           /* no kind */
        "03",                         /* unknown kind */
        "8001",                       /* kind 128 */
        "00",                         /* item ID missing */
        "0001",                       /* clock missing */
        "0101",                       /* name truncated */
        "0102ff61",                   /* invalid UTF-8 name */
        "01ffffffff0f",               /* name longer than the input */
        "02",                         /* type ID missing */
        "0001030000",                 /* trailing byte */
        "000103ff",                   /* assoc truncated */
        "00018080808080808080800100", /* clock past 2^53 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        uint8_t *p = unhex(bad[i], &n);
        if (decode_checked(p, n) != LOOM_EMALFORMED)
            fail_msg("accepted %s", bad[i]);
        free(p);
    }
    /* Unknown kind: the offset is that of the kind byte. */
    {
        loom_error err;
        loom_relpos *rp = NULL;
        assert_int_equal(
            loom_relpos_decode(NULL, (const uint8_t *)"\x05\x00", 2, &rp, &err),
            LOOM_EMALFORMED);
        assert_int_equal(err.offset, 0);
        assert_int_equal(
            loom_relpos_decode(NULL, (const uint8_t *)"\x00\x01\x03\x00\x00", 5,
                               &rp, &err),
            LOOM_EMALFORMED);
        assert_int_equal(err.offset, 4);
    }
    /* Every truncation of valid encodings. */
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        size_t n;
        uint8_t *p = unhex(good[i], &n);
        for (size_t k = 0; k < n; k++)
            decode_checked(p, k);
        free(p);
    }
    /* Random bytes. */
    uint64_t x = 0x2545f4914f6cdd1dULL;
    uint8_t buf[24];
    int ok = 0, rej = 0;
    for (int iter = 0; iter < 20000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = (size_t)(x % sizeof(buf));
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            uint8_t r = (uint8_t)(x >> 24);
            buf[k] = (x & 3) ? (uint8_t)(r % 4) : r;
        }
        if (decode_checked(buf, n))
            rej++;
        else
            ok++;
    }
    fprintf(stderr, "relpos random input: %d decoded, %d rejected\n", ok, rej);
    assert_true(ok > 0 && rej > 0);
}

static void test_oom(void **state)
{
    (void)state;
    static const char *const inputs[] = {"01036e657741", "00010300",
                                         "02010941"};
    for (size_t i = 0; i < 3; i++) {
        size_t n;
        uint8_t *p = unhex(inputs[i], &n);
        for (long k = 1;; k++) {
            test_alloc c;
            loom_allocator a = test_alloc_init(&c);
            c.fail_at = k;
            loom_relpos *rp = NULL;
            loom_buf b = {0};
            loom_any *v = NULL;
            loom_error err;
            int rc = loom_relpos_decode(&a, p, n, &rp, &err);
            if (!rc)
                rc = loom_relpos_encode(rp, &b);
            if (!rc)
                rc = loom_relpos_to_any(rp, &v);
            bool done = c.calls < c.fail_at;
            if (rc)
                assert_int_equal(rc, LOOM_ENOMEM);
            else
                assert_true(done);
            loom_any_free(v);
            loom_buf_free(&b);
            loom_relpos_free(rp);
            assert_int_equal(c.live_blocks, 0);
            assert_int_equal(c.live_bytes, 0);
            assert_int_equal(c.size_mismatches, 0);
            if (done)
                break;
        }
        free(p);
    }
    /* from_index with the doc's allocator failing */
    for (long k = 1;; k++) {
        test_alloc c;
        loom_allocator a = test_alloc_init(&c);
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.alloc = &a;
        o.client_id = 3;
        loom_doc *d = NULL;
        assert_int_equal(loom_doc_new(&o, &d), 0);
        apply_hex(d, U0);
        loom_type *t = NULL;
        assert_int_equal(loom_doc_get(d, "t", 1, LOOM_TYPE_TEXT, &t), 0);
        c.fail_at = c.calls + k;
        loom_relpos *rp = NULL;
        int rc = loom_relpos_from_index(t, 6, 0, &rp); /* root name copy */
        bool done = c.calls < c.fail_at;
        if (rc)
            assert_int_equal(rc, LOOM_ENOMEM);
        loom_relpos_free(rp);
        loom_doc_free(d);
        assert_int_equal(c.live_blocks, 0);
        if (done)
            break;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_across_edits),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_decode_hostile),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
