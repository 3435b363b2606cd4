/*
 * test_snapshot.c: snapshots (src/crdt/snapshot.c) against the vectors made
 * by yjs 13.6.33 and against facts taken from yjs by hand.
 *
 *  - every final[].snapshot of tests/vectors/cases and fuzz: the final doc is
 *    rebuilt from final.update (a fresh doc with the final's gc flag), and
 *    loom_doc_snapshot + loom_snapshot_encode must give the same bytes; the
 *    recorded bytes must also decode, re-encode to themselves and compare
 *    equal to the taken snapshot;
 *  - every encodeSnapshot+createDocFromSnapshot check: restoredUpdate byte for
 *    byte and restoredJSON;
 *  - createDocFromSnapshot cuts inside an item (string, surrogate pair, Any,
 *    deleted content, several clients), snapshotContainsUpdate and
 *    equalSnapshots, with expected bytes recorded from yjs;
 *  - hostile input for loom_snapshot_decode (every truncation, random bytes,
 *    huge counts): an error with an offset inside the input, no crash, no
 *    leak (a test_alloc allocator checks every byte comes back), and the
 *    out-param untouched on failure; allocation failures everywhere.
 */
#include <dirent.h>
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

static loom_doc *doc_from_hex(const char *update_hex, int gc)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 0x7ffffff7; /* not used by any vector */
    o.gc = gc;
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(&o, &d), 0);
    size_t n;
    uint8_t *p = unhex(update_hex, &n);
    loom_error err;
    int rc = loom_doc_apply_update(d, p, n, NULL, &err);
    if (rc)
        fprintf(stderr, "apply failed: %s at %zu (%s)\n", loom_strerror(rc),
                err.offset, err.message);
    assert_int_equal(rc, 0);
    free(p);
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

/* Compares the JSON of every root named in `roots` with want[root]. */
static int
roots_json_equal(loom_doc *d, const json_t *roots, const json_t *want)
{
    const char *name;
    json_t *kind;
    int ok = 1;
    json_object_foreach((json_t *)roots, name, kind)
    {
        loom_type *t;
        loom_any *v;
        if (loom_doc_get(d, name, strlen(name),
                         kind_of(json_string_value(kind)), &t) ||
            loom_type_to_any(t, &v)) {
            ok = 0;
            continue;
        }
        json_t *g = tjson_from_any(v);
        loom_any_free(v);
        const json_t *w = json_object_get(want, name);
        if (!w || !tjson_equal(g, w)) {
            char *gs = tjson_dumps_sorted(g);
            fprintf(stderr, "   json of %s: got %s\n", name, gs ? gs : "?");
            free(gs);
            ok = 0;
        }
        json_decref(g);
    }
    return ok;
}

/* Calls fn(path, json) for every vector file of cases/ and fuzz/. */
typedef void (*file_fn)(const char *path, const json_t *c, void *ud);

static void each_vector_file(file_fn fn, void *ud)
{
    static const char *const dirs[] = {LOOM_VECTORS_DIR "/cases",
                                       LOOM_VECTORS_DIR "/fuzz"};
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
            fn(path, c, ud);
            json_decref(c);
        }
        closedir(dir);
    }
}

/* ---- final[].snapshot ---------------------------------------------------- */

typedef struct final_stats {
    int total, taken_ok, roundtrip_ok, skipped_pending;
    int failures;
} final_stats;

/*
 * The doc is rebuilt from final.update, which includes the original's
 * pending structs and pending deletes (merged in by encodeStateAsUpdate).
 * They are pending again in the rebuilt doc, as in the original, so the
 * store (and thus the snapshot, which ignores pending data) is the same in
 * every vector; a doc whose rebuild leaves different pending state would be
 * reported separately (skipped_pending) rather than as a failure.
 */
static void final_snapshots_file(const char *path, const json_t *c, void *ud)
{
    final_stats *st = ud;
    size_t i;
    json_t *fin;
    json_array_foreach(json_object_get(c, "final"), i, fin)
    {
        const char *want = json_string_value(json_object_get(fin, "snapshot"));
        if (!want)
            continue;
        st->total++;
        loom_doc *d =
            doc_from_hex(json_string_value(json_object_get(fin, "update")),
                         json_is_true(json_object_get(fin, "gc")));
        loom_snapshot *s = NULL, *ds = NULL;
        loom_buf b = {0}, b2 = {0};
        assert_int_equal(loom_doc_snapshot(d, &s), 0);
        assert_int_equal(loom_snapshot_encode(s, &b), 0);
        int pending_differs = (loom_doc_pending(d) != 0) !=
                              json_is_true(json_object_get(fin, "hasPending"));
        if (bytes_equal_hex(&b, want)) {
            st->taken_ok++;
        } else if (pending_differs) {
            st->skipped_pending++;
            fprintf(stderr,
                    "  (pending state differs after rebuild) %s final %zu\n",
                    path, i);
        } else {
            st->failures++;
            fprintf(stderr, "FAIL %s final %zu: snapshot of the rebuilt doc\n",
                    path, i);
        }
        /* decode -> encode is the identity on yjs output, and the decoded
         * snapshot equals the one taken. */
        size_t n;
        uint8_t *p = unhex(want, &n);
        loom_error err;
        int rc = loom_snapshot_decode(NULL, p, n, &ds, &err);
        if (rc) {
            st->failures++;
            fprintf(stderr, "FAIL %s final %zu: decode: %s at %zu\n", path, i,
                    err.message, err.offset);
        } else {
            assert_int_equal(loom_snapshot_encode(ds, &b2), 0);
            if (b2.len == n && !memcmp(b2.data, p, n) &&
                loom_snapshot_equal(ds, s) ==
                    (b.len == n && !memcmp(b.data, p, n))) {
                st->roundtrip_ok++;
            } else {
                st->failures++;
                fprintf(stderr, "FAIL %s final %zu: decode/encode/equal\n",
                        path, i);
            }
        }
        free(p);
        loom_buf_free(&b);
        loom_buf_free(&b2);
        loom_snapshot_free(s);
        loom_snapshot_free(ds);
        loom_doc_free(d);
    }
}

static void test_final_snapshots(void **state)
{
    (void)state;
    final_stats st;
    memset(&st, 0, sizeof(st));
    each_vector_file(final_snapshots_file, &st);
    fprintf(stderr,
            "final snapshots: %d records, %d taken snapshots match, %d "
            "decode/encode/equal ok, "
            "%d skipped (pending differs), %d failures\n",
            st.total, st.taken_ok, st.roundtrip_ok, st.skipped_pending,
            st.failures);
    assert_true(st.total > 0);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.roundtrip_ok, st.total);
}

/* ---- encodeSnapshot+createDocFromSnapshot checks ---------------------------- */

typedef struct restore_stats {
    int total, ok;
} restore_stats;

static void restore_checks_file(const char *path, const json_t *c, void *ud)
{
    restore_stats *st = ud;
    size_t i;
    json_t *chk;
    json_array_foreach(json_object_get(c, "checks"), i, chk)
    {
        if (strcmp(json_string_value(json_object_get(chk, "fn")),
                   "encodeSnapshot+createDocFromSnapshot"))
            continue;
        st->total++;
        /* The checks are made on the case's only doc, in its final state. */
        const json_t *fin = json_array_get(json_object_get(c, "final"), 0);
        assert_false(json_is_true(json_object_get(fin, "gc")));
        loom_doc *origin =
            doc_from_hex(json_string_value(json_object_get(fin, "update")), 0);
        size_t n;
        uint8_t *p =
            unhex(json_string_value(json_object_get(chk, "snapshot")), &n);
        loom_snapshot *s = NULL;
        assert_int_equal(loom_snapshot_decode(NULL, p, n, &s, NULL), 0);
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id = 0x7ffffff5;
        loom_doc *r = NULL;
        int ok = loom_doc_from_snapshot(origin, s, &o, &r) == 0;
        if (ok) {
            loom_buf b = {0};
            ok = loom_doc_encode_state_as_update(r, NULL, 0, &b, NULL) == 0 &&
                 bytes_equal_hex(&b, json_string_value(json_object_get(
                                         chk, "restoredUpdate")));
            loom_buf_free(&b);
            ok = ok && roots_json_equal(r, json_object_get(c, "roots"),
                                        json_object_get(chk, "restoredJSON"));
        }
        /* The origin is not changed by restoring. */
        loom_buf ob = {0};
        assert_int_equal(
            loom_doc_encode_state_as_update(origin, NULL, 0, &ob, NULL), 0);
        ok = ok && bytes_equal_hex(
                       &ob, json_string_value(json_object_get(fin, "update")));
        loom_buf_free(&ob);
        if (ok)
            st->ok++;
        else
            fprintf(stderr, "FAIL %s check %zu (%s)\n", path, i,
                    json_string_value(json_object_get(chk, "label")));
        loom_doc_free(r);
        loom_doc_free(origin);
        loom_snapshot_free(s);
        free(p);
    }
}

static void test_restore_checks(void **state)
{
    (void)state;
    restore_stats st = {0, 0};
    each_vector_file(restore_checks_file, &st);
    fprintf(stderr, "createDocFromSnapshot checks: %d/%d pass\n", st.ok,
            st.total);
    assert_true(st.total > 0);
    assert_int_equal(st.ok, st.total);
}

/* ---- createDocFromSnapshot cutting inside items (facts from yjs) ----------- */

typedef struct restore_fact {
    const char *label, *origin, *snapshot, *restored;
} restore_fact;

/* Recorded with yjs 13.6.33: origin = encodeStateAsUpdate(gc-off doc),
 * restored = encodeStateAsUpdate(createDocFromSnapshot(doc, decodeSnapshot)).
 * "origin" of surrogate-cut is what yjs leaves behind (it splits the pair in
 * the origin for good); the cut itself is the same either way. */
static const restore_fact restore_facts[] = {
    {"string-cut", "01010100040101740b68656c6c6f20776f726c6400", "00010105",
     "01010100040101740568656c6c6f00"},
    {"surrogate-cut", "01010100040101740861efbfbdefbfbd6200", "00010102",
     "01010100040101740461efbfbd00"},
    {"any-cut", "0101010008010161057d017d027d037701787601016b7800", "00010103",
     "0101010008010161037d017d027d0300"},
    {"deleted-cut", "01030100040101740161840100036263648401030265660101010103",
     "0101010103010103", "01020100040101740161810100020101010103"},
    {"two-clients",
     "020409008405010242438409010144a80500017d01440501027a7a0205002801016d01610"
     "1770378797a04010174"
     "0141020901000205010002",
     "01050100010209040502",
     "0202090084050103424344a80500017d010205002101016d0161010401017401410105010"
     "001"},
    {"two-clients-cut",
     "020409008405010242438409010144a80500017d01440501027a7a0205002801016d01610"
     "1770378797a04010174"
     "0141020901000205010002",
     "000209020501", "020109008405010242430105002801016d016101770378797a00"},
};

static void test_restore_cuts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(restore_facts) / sizeof(restore_facts[0]);
         i++) {
        const restore_fact *f = &restore_facts[i];
        loom_doc *origin = doc_from_hex(f->origin, 0);
        size_t n;
        uint8_t *p = unhex(f->snapshot, &n);
        loom_snapshot *s = NULL;
        assert_int_equal(loom_snapshot_decode(NULL, p, n, &s, NULL), 0);
        loom_doc *r = NULL;
        assert_int_equal(loom_doc_from_snapshot(origin, s, NULL, &r), 0);
        loom_buf b = {0};
        assert_int_equal(loom_doc_encode_state_as_update(r, NULL, 0, &b, NULL),
                         0);
        if (!bytes_equal_hex(&b, f->restored))
            fail_msg("restore %s", f->label);
        loom_buf_free(&b);
        /* the origin is untouched */
        assert_int_equal(
            loom_doc_encode_state_as_update(origin, NULL, 0, &b, NULL), 0);
        if (!bytes_equal_hex(&b, f->origin))
            fail_msg("origin changed by %s", f->label);
        loom_buf_free(&b);
        loom_doc_free(r);
        loom_snapshot_free(s);
        free(p);
        loom_doc_free(origin);
    }
}

static void test_restore_errors(void **state)
{
    (void)state;
    loom_doc *gc_doc = doc_from_hex("01010100040101740568656c6c6f00", 1);
    loom_doc *origin = doc_from_hex("01010100040101740568656c6c6f00", 0);
    loom_snapshot *s = NULL;
    assert_int_equal(loom_doc_snapshot(origin, &s), 0);
    loom_doc *r = (loom_doc *)&r; /* sentinel: must stay unwritten */
    loom_doc *const sentinel = r;
    assert_int_equal(loom_doc_from_snapshot(gc_doc, s, NULL, &r), LOOM_ESTATE);
    assert_ptr_equal(r, sentinel);
    assert_int_equal(loom_doc_from_snapshot(NULL, s, NULL, &r), LOOM_EINVAL);
    assert_int_equal(loom_doc_from_snapshot(origin, NULL, NULL, &r),
                     LOOM_EINVAL);
    /* A snapshot reaching past the origin's state, or naming a client the
     * origin does not know: yjs throws; we refuse. */
    static const char *const foreign[] = {"00010106", "00010901"};
    for (size_t i = 0; i < 2; i++) {
        size_t n;
        uint8_t *p = unhex(foreign[i], &n);
        loom_snapshot *f = NULL;
        assert_int_equal(loom_snapshot_decode(NULL, p, n, &f, NULL), 0);
        assert_int_equal(loom_doc_from_snapshot(origin, f, NULL, &r),
                         LOOM_EINVAL);
        assert_ptr_equal(r, sentinel);
        loom_snapshot_free(f);
        free(p);
    }
    /* A 0 clock is skipped (yjs counts only clocks > 0), an empty snapshot
     * restores an empty doc. */
    {
        size_t n;
        uint8_t *p = unhex("000201000900", &n);
        loom_snapshot *f = NULL;
        assert_int_equal(loom_snapshot_decode(NULL, p, n, &f, NULL), 0);
        assert_int_equal(loom_doc_from_snapshot(origin, f, NULL, &r), 0);
        loom_buf b = {0};
        assert_int_equal(loom_doc_encode_state_as_update(r, NULL, 0, &b, NULL),
                         0);
        assert_true(bytes_equal_hex(&b, "0000"));
        loom_buf_free(&b);
        loom_doc_free(r);
        loom_snapshot_free(f);
        free(p);
    }
    loom_snapshot_free(s);
    loom_doc_free(origin);
    loom_doc_free(gc_doc);
}

/*
 * Allocation failures in snapshot + restore: a clean LOOM_ENOMEM, nothing
 * leaked, out-params untouched. The origin (allocator A) carries everything
 * snapshot.c allocates: the snapshot, its encoding, the decoded copy and the
 * restore update. The restored doc (allocator B) is loom_doc_new +
 * loom_doc_apply_update, so failing B's allocations also checks that
 * applying an update leaks nothing when any allocation fails.
 */
static void restore_oom_run(bool fail_restored_doc)
{
    const restore_fact *f = &restore_facts[4];
    for (long k = 1;; k++) {
        test_alloc ca, cb;
        loom_allocator a = test_alloc_init(&ca), b = test_alloc_init(&cb);
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.gc = 0;
        o.alloc = &a;
        o.client_id = 77;
        loom_doc *origin = NULL;
        assert_int_equal(loom_doc_new(&o, &origin), 0);
        size_t n;
        uint8_t *p = unhex(f->origin, &n);
        assert_int_equal(loom_doc_apply_update(origin, p, n, NULL, NULL), 0);
        free(p);
        test_alloc *c = fail_restored_doc ? &cb : &ca;
        c->fail_at = c->calls + k;
        o.alloc = &b;
        loom_snapshot *s = NULL, *s2 = NULL;
        loom_doc *r = NULL;
        loom_buf buf = {0};
        int rc = loom_doc_snapshot(origin, &s);
        if (!rc)
            rc = loom_snapshot_encode(s, &buf);
        if (!rc)
            rc = loom_snapshot_decode(&a, buf.data, buf.len, &s2, NULL);
        if (!rc)
            rc = loom_doc_from_snapshot(origin, s2, &o, &r);
        bool done = c->calls < c->fail_at;
        c->fail_at = 0; /* checking the result must not fail */
        if (rc) {
            assert_int_equal(rc, LOOM_ENOMEM);
            assert_null(r);
        } else {
            assert_true(done);
            loom_buf rb = {0};
            assert_int_equal(
                loom_doc_encode_state_as_update(r, NULL, 0, &rb, NULL), 0);
            /* a snapshot of the whole doc restores the whole doc */
            assert_true(bytes_equal_hex(&rb, f->origin));
            loom_buf_free(&rb);
        }
        loom_doc_free(r);
        loom_buf_free(&buf);
        loom_snapshot_free(s);
        loom_snapshot_free(s2);
        loom_doc_free(origin);
        assert_int_equal(ca.live_blocks, 0);
        assert_int_equal(ca.live_bytes, 0);
        assert_int_equal(ca.size_mismatches, 0);
        assert_int_equal(cb.live_blocks, 0);
        assert_int_equal(cb.live_bytes, 0);
        assert_int_equal(cb.size_mismatches, 0);
        if (done)
            break;
    }
}

static void test_restore_oom(void **state)
{
    (void)state;
    restore_oom_run(false);
    restore_oom_run(true); /* every allocation of applying the restore */
}

/* ---- contains / equal ---------------------------------------------------- */

typedef struct contains_fact {
    const char *snapshot, *update;
    int result;
} contains_fact;

/* Y.snapshotContainsUpdate, recorded with yjs 13.6.33. The last one has an
 * unsorted-but-touching delete set, which yjs compares as stored against the
 * merged set, so even the empty update is "not contained". */
static const contains_fact contains_facts[] = {
    {"00010103", "01010100040101740361626300", 1},
    {"00010103", "010201000401017401618401000262630101010001", 0},
    {"00010103", "01030100040101740161840100026263c40100010101510101010001", 0},
    {"0101010001010104", "01010100040101740361626300", 1},
    {"0101010001010104", "010201000401017401618401000262630101010001", 1},
    {"0101010001010104",
     "01030100040101740161840100026263c40100010101510101010001", 1},
    {"01010200010101010105", "0000", 0},
};

static void test_contains_update(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(contains_facts) / sizeof(contains_facts[0]);
         i++) {
        size_t n, un;
        uint8_t *p = unhex(contains_facts[i].snapshot, &n);
        uint8_t *u = unhex(contains_facts[i].update, &un);
        loom_snapshot *s = NULL;
        assert_int_equal(loom_snapshot_decode(NULL, p, n, &s, NULL), 0);
        assert_int_equal(loom_snapshot_contains_update(s, u, un, NULL),
                         contains_facts[i].result);
        /* a malformed update is an error with its offset */
        loom_error err;
        memset(&err, 0, sizeof(err));
        assert_int_equal(loom_snapshot_contains_update(s, u, un - 1, &err),
                         LOOM_EMALFORMED);
        assert_true(err.offset <= un - 1);
        loom_snapshot_free(s);
        free(p);
        free(u);
    }
}

static void test_equal(void **state)
{
    (void)state;
    static const char *const hexes[] = {
        "0000",
        "00010105",
        "0002020a0105",
        "00020105020a",             /* the same map in another wire order */
        "0001010500",               /* trailing byte: refused below */
        "000209000105",             /* a 0 clock counts in yjs's sv.size */
        "0101010001010105",         /* ds {1:[(0,1)]} */
        "01010200010101010105",     /* ds {1:[(0,1),(1,1)]} unmerged: differs */
        "020201000201010001010105", /* two clients with ranges */
    };
    loom_snapshot *s[9] = {0};
    for (size_t i = 0; i < 9; i++) {
        size_t n;
        uint8_t *p = unhex(hexes[i], &n);
        loom_error err;
        int rc = loom_snapshot_decode(NULL, p, n, &s[i], &err);
        if (i == 4) {
            assert_int_equal(rc, LOOM_EMALFORMED);
            assert_int_equal(err.offset, 4);
        } else {
            assert_int_equal(rc, 0);
            /* decode -> encode writes the sv in descending order */
            loom_buf b = {0};
            assert_int_equal(loom_snapshot_encode(s[i], &b), 0);
            assert_true(bytes_equal_hex(&b, i == 3 ? hexes[2] : hexes[i]));
            loom_buf_free(&b);
        }
        free(p);
    }
    for (size_t i = 0; i < 9; i++) {
        for (size_t j = 0; j < 9; j++) {
            if (i == 4 || j == 4)
                continue;
            int want = i == j || (i == 2 && j == 3) || (i == 3 && j == 2);
            assert_int_equal(loom_snapshot_equal(s[i], s[j]), want);
        }
    }
    assert_int_equal(loom_snapshot_equal(NULL, s[0]), 0);
    assert_int_equal(loom_snapshot_equal(NULL, NULL), 1);
    for (size_t i = 0; i < 9; i++)
        loom_snapshot_free(s[i]);
}

/* ---- hostile input --------------------------------------------------------- */

/* Decodes with a test_alloc allocator; checks the error contract. Returns rc. */
static int decode_checked(const uint8_t *p, size_t n)
{
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    loom_snapshot *s = (loom_snapshot *)&c; /* sentinel */
    loom_snapshot *const sentinel = s;
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc = loom_snapshot_decode(&a, p, n, &s, &err);
    if (rc) {
        assert_true(rc == LOOM_EMALFORMED || rc == LOOM_ENOMEM);
        assert_int_equal(err.code, rc);
        assert_true(err.offset <= n);
        assert_true(err.message[0] != 0);
        assert_ptr_equal(s, sentinel);
    } else {
        loom_buf b = {0};
        assert_int_equal(loom_snapshot_encode(s, &b), 0);
        loom_snapshot *s2 = NULL;
        assert_int_equal(loom_snapshot_decode(&a, b.data, b.len, &s2, NULL), 0);
        assert_int_equal(loom_snapshot_equal(s, s2), 1);
        loom_snapshot_free(s2);
        loom_buf_free(&b);
        loom_snapshot_free(s);
    }
    assert_int_equal(c.live_blocks, 0);
    assert_int_equal(c.live_bytes, 0);
    assert_int_equal(c.size_mismatches, 0);
    return rc;
}

static void truncations_file(const char *path, const json_t *c, void *ud)
{
    (void)path;
    int *count = ud;
    size_t i;
    json_t *fin;
    json_array_foreach(json_object_get(c, "final"), i, fin)
    {
        size_t n;
        uint8_t *p =
            unhex(json_string_value(json_object_get(fin, "snapshot")), &n);
        assert_int_equal(decode_checked(p, n), 0);
        /* Every proper prefix ends inside a count or a varUint: an error. */
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(decode_checked(p, k), LOOM_EMALFORMED);
            (*count)++;
        }
        free(p);
    }
}

static void test_decode_truncations(void **state)
{
    (void)state;
    int count = 0;
    each_vector_file(truncations_file, &count);
    fprintf(stderr, "snapshot truncations: %d rejected\n", count);
    assert_true(count > 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void test_decode_random(void **state)
{
    (void)state;
    uint8_t buf[64];
    int ok = 0, bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = rnd() % sizeof(buf);
        for (size_t k = 0; k < n; k++) {
            /* small values make well-formed prefixes likely */
            buf[k] = (uint8_t)(rnd() % 4 == 0 ? rnd() : rnd() % 4);
        }
        if (decode_checked(buf, n))
            bad++;
        else
            ok++;
    }
    fprintf(stderr, "snapshot random input: %d decoded, %d rejected\n", ok,
            bad);
    assert_true(ok > 0 && bad > 0);
}

static void test_decode_limits(void **state)
{
    (void)state;
    /* Huge counts must be refused before allocating. */
    static const char *const bad[] = {
        "ffffffffffffff0f",       /* 2^56-1 clients: out of range */
        "ffffffff0f00",           /* 2^32-1 delete-set clients in 2 bytes */
        "0001ffffffff0f",         /* client 2^32-1 with a huge range count */
        "00ffffffff0f",           /* huge sv count */
        "0001808080808080808001", /* varUint past 2^53 */
        "01010200010101",         /* missing the sv */
        "0001",                   /* sv entry missing */
        "000101",                 /* sv clock missing */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n;
        uint8_t *p = unhex(bad[i], &n);
        assert_int_equal(decode_checked(p, n), LOOM_EMALFORMED);
        free(p);
    }
    loom_snapshot *s = NULL;
    assert_int_equal(loom_snapshot_decode(NULL, NULL, 1, &s, NULL),
                     LOOM_EINVAL);
    assert_int_equal(
        loom_snapshot_decode(NULL, (const uint8_t *)"", 0, NULL, NULL),
        LOOM_EINVAL);
    /* allocation failures while decoding */
    size_t n;
    uint8_t *p = unhex("020201000201010001010105", &n);
    for (long k = 1; k < 100; k++) {
        test_alloc c;
        loom_allocator a = test_alloc_init(&c);
        c.fail_at = k;
        loom_error err;
        int rc = loom_snapshot_decode(&a, p, n, &s, &err);
        if (!rc) {
            loom_snapshot_free(s);
            s = NULL;
        } else {
            assert_int_equal(rc, LOOM_ENOMEM);
            assert_int_equal(err.code, LOOM_ENOMEM);
        }
        assert_int_equal(c.live_blocks, 0);
        if (!rc)
            break;
    }
    free(p);
    loom_snapshot_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_final_snapshots),
        cmocka_unit_test(test_restore_checks),
        cmocka_unit_test(test_restore_cuts),
        cmocka_unit_test(test_restore_errors),
        cmocka_unit_test(test_restore_oom),
        cmocka_unit_test(test_contains_update),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_decode_truncations),
        cmocka_unit_test(test_decode_random),
        cmocka_unit_test(test_decode_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
