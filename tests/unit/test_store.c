/*
 * test_store.c: the durable store (src/store/store.c, loom/store.h) through
 * its public API, on real SQLite files in a scratch directory.
 *
 *  - every function on a fresh store, and persistence across reopening;
 *  - the state vector kept beside the log equals the one of the merged log
 *    (loom_update_state_vector of loom_store_encode) after every append,
 *    with updates of several clients appended out of order (so the log has
 *    gaps that later appends fill), with compactions in between; the loaded
 *    document equals one that applied every update;
 *  - compaction: encode before == encode after, same JSON, one row left,
 *    automatic compaction past the bounds (count and bytes);
 *  - metadata, delete, list order (bytes), the out-param rule;
 *  - encryption: right, wrong and missing passphrase, a plain store given
 *    one, no plaintext in the file (and plaintext in a plain store's file,
 *    so the check can fail), a tampered row and a row moved to another
 *    document fail authentication;
 *  - bad input: malformed and empty updates leave the document byte for
 *    byte as it was; a damaged stored row is LOOM_ECORRUPT;
 *  - files: a non-loom SQLite file (left untouched), garbage, a truncated
 *    store, a store from a newer schema;
 *  - another connection holding the write lock: open and reads work,
 *    writes fail with LOOM_EBUSY after the busy timeout;
 *  - the store files of earlier versions in tests/compat open, read and
 *    write (plain and encrypted);
 *  - allocation failures at every library allocation of a scenario, on a
 *    plain and on an encrypted store: a clean LOOM_ENOMEM, nothing leaked,
 *    and the stored document is either as before the failing call or as
 *    after it.
 * LOOM_STORE_ROUNDS raises the number of random rounds (default 6);
 * LOOM_SEED replays a seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "loom/loom.h"
#include "storegen.h"
#include "testalloc.h"

#ifndef LOOM_COMPAT_DIR
#    error "LOOM_COMPAT_DIR must be defined by the build"
#endif

/* ---- fixture ------------------------------------------------------------ */

static char *dir;
static char *db;

static int setup(void **state)
{
    (void)state;
    dir = sg_tmpdir(NULL);
    db = dir ? sg_path(dir, "loom.db") : NULL;
    return db == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    sg_rmdir(dir);
    free(dir);
    free(db);
    dir = db = NULL;
    return 0;
}

/* Small Argon2id limits: the tests are about the format, not the cost. */
static void opts_enc(loom_store_options *o, const char *pass)
{
    loom_store_options_init(o);
    o->passphrase = (const uint8_t *)pass;
    o->passphrase_len = strlen(pass);
    o->kdf_opslimit = 1;
    o->kdf_memlimit = 8192;
}

static loom_store *open_plain(void)
{
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(db, NULL, &s, &e);
    if (rc != 0) {
        fail_msg("open: %d %s", rc, e.message);
    }
    return s;
}

static void
append_ok(loom_store *s, const char *name, const uint8_t *u, size_t n)
{
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_append(s, name, u, n, &e);
    if (rc != 0) {
        fail_msg("append %s: %d %s", name, rc, e.message);
    }
}

static loom_buf encode_ok(loom_store *s, const char *name)
{
    loom_buf b = {0};
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_encode(s, name, &b, &e);
    if (rc != 0) {
        fail_msg("encode %s: %d %s", name, rc, e.message);
    }
    return b;
}

static bool buf_eq(const loom_buf *a, const loom_buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* The stored document equals `want` (applying everything it was sent). */
static void assert_loads_as(loom_store *s, const char *name, loom_doc *want)
{
    loom_doc *d = sg_doc_new(1, NULL);
    assert_non_null(d);
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_load(s, name, d, &e);
    if (rc != 0) {
        fail_msg("load %s: %d %s", name, rc, e.message);
    }
    assert_true(sg_docs_equal(d, want));
    loom_doc_free(d);
}

/* The kept state vector equals the state vector of the merged log. */
static void assert_sv_consistent(loom_store *s, const char *name)
{
    loom_buf sv = {0};
    loom_buf want = {0};
    loom_buf m = encode_ok(s, name);
    assert_int_equal(loom_store_state_vector(s, name, &sv, NULL), 0);
    assert_int_equal(loom_update_state_vector(NULL, m.data, m.len, &want, NULL),
                     0);
    if (!buf_eq(&sv, &want)) {
        fail_msg("state vector differs (%zu vs %zu bytes)", sv.len, want.len);
    }
    loom_buf_free(&sv);
    loom_buf_free(&want);
    loom_buf_free(&m);
}

/* A few updates of one client: m[k0..k(n-1)] set. */
static void make_updates(uint64_t client, int n, sg_updates *u, loom_doc **doc)
{
    loom_doc *d = sg_doc_new(client, u);
    assert_non_null(d);
    for (int i = 0; i < n; i++) {
        char key[32];
        (void)snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(sg_set(d, key, i), 0);
    }
    if (doc) {
        *doc = d;
    } else {
        loom_doc_free(d);
    }
}

static int collect_names(void *ud, const char *name, size_t len)
{
    char *out = ud;
    assert_int_equal(strlen(name), len);
    strcat(out, name);
    strcat(out, ",");
    return 0;
}

static int stop_at_second(void *ud, const char *name, size_t len)
{
    (void)name;
    (void)len;
    int *n = ud;
    return ++*n == 2 ? 42 : 0;
}

/* ---- every function ----------------------------------------------------- */

static void test_basic(void **state)
{
    (void)state;
    sg_updates u = {0};
    loom_doc *src = NULL;
    make_updates(7, 5, &u, &src);

    loom_store *s = open_plain();
    assert_false(loom_store_is_encrypted(s));
    assert_int_equal(loom_store_exists(s, "a", NULL), 0);
    loom_buf b = {0};
    loom_error e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_encode(s, "a", &b, &e), LOOM_ENOTFOUND);
    assert_null(b.data);
    assert_int_equal(e.code, LOOM_ENOTFOUND);

    for (size_t i = 0; i < 3; i++) {
        append_ok(s, "a", u.data[i], u.lens[i]);
    }
    const uint8_t *rest[2] = {u.data[3], u.data[4]};
    size_t rlens[2] = {u.lens[3], u.lens[4]};
    assert_int_equal(loom_store_append_many(s, "a", rest, rlens, 2, NULL), 0);
    assert_int_equal(loom_store_exists(s, "a", NULL), 1);
    loom_store_doc_info info = {0};
    assert_int_equal(loom_store_info(s, "a", &info, NULL), 0);
    assert_int_equal(info.updates, 5);
    size_t total = 0;
    for (size_t i = 0; i < 5; i++) {
        total += u.lens[i];
    }
    assert_int_equal(info.bytes, total);
    assert_loads_as(s, "a", src);
    assert_sv_consistent(s, "a");

    /* The kept state vector is the source doc's. */
    loom_buf sv = {0};
    loom_buf want = {0};
    assert_int_equal(loom_store_state_vector(s, "a", &sv, NULL), 0);
    assert_int_equal(loom_doc_encode_state_vector(src, &want), 0);
    assert_true(buf_eq(&sv, &want));

    /* diff: against the full state vector nothing new is left; against
     * the empty one everything. */
    loom_buf d = {0};
    assert_int_equal(loom_store_diff(s, "a", sv.data, sv.len, &d, NULL), 0);
    loom_doc *peer = sg_doc_new(9, NULL);
    assert_int_equal(loom_doc_apply_update(peer, d.data, d.len, NULL, NULL), 0);
    loom_buf_free(&d);
    static const uint8_t empty_sv[1] = {0};
    assert_int_equal(loom_store_diff(s, "a", empty_sv, 1, &d, NULL), 0);
    assert_int_equal(loom_doc_apply_update(peer, d.data, d.len, NULL, NULL), 0);
    assert_true(sg_docs_equal(peer, src));
    loom_buf_free(&d);
    static const uint8_t bad_sv[2] = {5, 1};
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_diff(s, "a", bad_sv, 2, &d, &e),
                     LOOM_EMALFORMED);
    assert_null(d.data);
    loom_doc_free(peer);
    loom_buf_free(&sv);
    loom_buf_free(&want);

    /* Persistence. */
    loom_buf before = encode_ok(s, "a");
    loom_store_close(s);
    s = open_plain();
    loom_buf after = encode_ok(s, "a");
    assert_true(buf_eq(&before, &after));
    assert_loads_as(s, "a", src);
    loom_buf_free(&before);
    loom_buf_free(&after);

    /* delete */
    assert_int_equal(
        loom_store_meta_set(s, "a", "k", (const uint8_t *)"v", 1, NULL), 0);
    assert_int_equal(loom_store_delete(s, "a", NULL), 0);
    assert_int_equal(loom_store_exists(s, "a", NULL), 0);
    assert_int_equal(loom_store_delete(s, "a", NULL), LOOM_ENOTFOUND);
    assert_int_equal(loom_store_info(s, "a", &info, NULL), LOOM_ENOTFOUND);
    assert_int_equal(loom_store_state_vector(s, "a", &sv, NULL),
                     LOOM_ENOTFOUND);
    assert_int_equal(loom_store_meta_get(s, "a", "k", &b, NULL),
                     LOOM_ENOTFOUND);
    assert_int_equal(loom_store_compact(s, "a", NULL), LOOM_ENOTFOUND);
    /* A new document of the same name starts empty. */
    append_ok(s, "a", u.data[0], u.lens[0]);
    assert_int_equal(loom_store_info(s, "a", &info, NULL), 0);
    assert_int_equal(info.updates, 1);
    assert_int_equal(loom_store_meta_get(s, "a", "k", &b, NULL),
                     LOOM_ENOTFOUND);

    /* Bad arguments. */
    assert_int_equal(loom_store_append(s, "", u.data[0], u.lens[0], NULL),
                     LOOM_EINVAL);
    assert_int_equal(loom_store_append(s, NULL, u.data[0], u.lens[0], NULL),
                     LOOM_EINVAL);
    assert_int_equal(loom_store_append_many(s, "a", NULL, NULL, 0, NULL),
                     LOOM_EINVAL);
    assert_int_equal(loom_store_encode(NULL, "a", &b, NULL), LOOM_EINVAL);
    loom_store_close(NULL);
    loom_store_close(s);
    loom_doc_free(src);
    sg_updates_free(&u);
}

static void test_list_order(void **state)
{
    (void)state;
    sg_updates u = {0};
    make_updates(3, 1, &u, NULL);
    loom_store *s = open_plain();
    const char *names[] = {"b", "a", "ab", "B", "\xc3\xa9", "a b", "aa"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        append_ok(s, names[i], u.data[0], u.lens[0]);
    }
    char out[256] = "";
    assert_int_equal(loom_store_list(s, collect_names, out, NULL), 0);
    assert_string_equal(out, "B,a,a b,aa,ab,b,\xc3\xa9,");
    int n = 0;
    assert_int_equal(loom_store_list(s, stop_at_second, &n, NULL), 42);
    assert_int_equal(n, 2);
    loom_store_close(s);
    /* An empty store lists nothing. */
    sg_rmdir(dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    s = open_plain();
    out[0] = '\0';
    assert_int_equal(loom_store_list(s, collect_names, out, NULL), 0);
    assert_string_equal(out, "");
    loom_store_close(s);
    sg_updates_free(&u);
}

/* ---- metadata ----------------------------------------------------------- */

static int
collect_meta(void *ud, const char *key, const uint8_t *value, size_t len)
{
    char *out = ud;
    size_t n = strlen(out);
    (void)snprintf(out + n, 512 - n, "%s=%.*s;", key, (int)len,
                   (const char *)value);
    return 0;
}

static void check_meta(loom_store *s)
{
    loom_buf v = {0};
    assert_int_equal(
        loom_store_meta_set(s, "d", "k", (const uint8_t *)"v", 1, NULL),
        LOOM_ENOTFOUND);
    sg_updates u = {0};
    make_updates(3, 1, &u, NULL);
    append_ok(s, "d", u.data[0], u.lens[0]);
    assert_int_equal(loom_store_meta_get(s, "d", "title", &v, NULL),
                     LOOM_ENOTFOUND);
    assert_int_equal(
        loom_store_meta_set(s, "d", "title", (const uint8_t *)"Hello", 5, NULL),
        0);
    assert_int_equal(
        loom_store_meta_set(s, "d", "b", (const uint8_t *)"\x00\xff", 2, NULL),
        0);
    assert_int_equal(
        loom_store_meta_set(s, "d", "empty", (const uint8_t *)"", 0, NULL), 0);
    assert_int_equal(loom_store_meta_get(s, "d", "title", &v, NULL), 0);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.data, "Hello", 5);
    loom_buf_free(&v);
    assert_int_equal(
        loom_store_meta_set(s, "d", "title", (const uint8_t *)"Bye", 3, NULL),
        0);
    assert_int_equal(loom_store_meta_get(s, "d", "title", &v, NULL), 0);
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.data, "Bye", 3);
    loom_buf_free(&v);
    assert_int_equal(loom_store_meta_get(s, "d", "empty", &v, NULL), 0);
    assert_int_equal(v.len, 0);
    loom_buf_free(&v);
    char out[512] = "";
    assert_int_equal(loom_store_meta_list(s, "d", collect_meta, out, NULL), 0);
    assert_int_equal(strncmp(out, "b=", 2), 0);
    assert_non_null(strstr(out, ";empty=;title=Bye;"));
    /* Delete a key. */
    assert_int_equal(loom_store_meta_set(s, "d", "b", NULL, 0, NULL), 0);
    assert_int_equal(loom_store_meta_get(s, "d", "b", &v, NULL),
                     LOOM_ENOTFOUND);
    out[0] = '\0';
    assert_int_equal(loom_store_meta_list(s, "d", collect_meta, out, NULL), 0);
    assert_string_equal(out, "empty=;title=Bye;");
    assert_int_equal(loom_store_meta_list(s, "nope", collect_meta, out, NULL),
                     LOOM_ENOTFOUND);
    assert_int_equal(
        loom_store_meta_set(s, "d", "", (const uint8_t *)"v", 1, NULL),
        LOOM_EINVAL);
    sg_updates_free(&u);
}

static void test_meta(void **state)
{
    (void)state;
    loom_store *s = open_plain();
    check_meta(s);
    loom_store_close(s);
    s = open_plain();
    loom_buf v = {0};
    assert_int_equal(loom_store_meta_get(s, "d", "title", &v, NULL), 0);
    assert_memory_equal(v.data, "Bye", 3);
    loom_buf_free(&v);
    loom_store_close(s);
}

/* ---- state vectors and compaction --------------------------------------- */

/*
 * Several clients edit in turn, each seeing the others' updates, so later
 * updates depend on earlier ones; the store receives them shuffled. The
 * kept state vector must match the merged log's after every append, with
 * compactions at random points; at the end the store loads as a doc that
 * applied everything.
 */
static void test_sv_property(void **state)
{
    (void)state;
    uint64_t seed = sg_seed();
    long rounds = sg_env_long("LOOM_STORE_ROUNDS", 6);
    print_message("sv property: seed %llu, %ld rounds\n",
                  (unsigned long long)seed, rounds);
    uint64_t rng = seed;
    for (long round = 0; round < rounds; round++) {
        enum { NC = 3 };
        sg_updates u = {0};
        loom_doc *docs[NC];
        for (int c = 0; c < NC; c++) {
            docs[c] = sg_doc_new(100 + (uint64_t)c, &u);
            assert_non_null(docs[c]);
        }
        int nops = 20 + (int)(sg_rand(&rng) % 30);
        for (int i = 0; i < nops; i++) {
            int c = (int)(sg_rand(&rng) % NC);
            size_t before = u.n;
            char key[32];
            (void)snprintf(key, sizeof(key), "r%ld-%d", round, i);
            if (sg_rand(&rng) % 3 == 0) {
                assert_int_equal(
                    sg_text_insert(docs[c], sg_rand(&rng) % 8, "xy"), 0);
            } else {
                assert_int_equal(sg_set(docs[c], key, i), 0);
            }
            /* Others see the new update (so clients interleave). */
            for (size_t k = before; k < u.n; k++) {
                for (int o = 0; o < NC; o++) {
                    if (o != c && sg_rand(&rng) % 2) {
                        assert_int_equal(
                            loom_doc_apply_update(docs[o], u.data[k], u.lens[k],
                                                  NULL, NULL),
                            0);
                    }
                }
            }
        }
        /* A reference doc applying all of it. */
        loom_doc *all = sg_doc_new(999, NULL);
        for (size_t k = 0; k < u.n; k++) {
            assert_int_equal(
                loom_doc_apply_update(all, u.data[k], u.lens[k], NULL, NULL),
                0);
        }
        /* Shuffle (Fisher-Yates) and append, one at a time or in pairs. */
        size_t *order = malloc(u.n * sizeof(*order));
        assert_non_null(order);
        for (size_t k = 0; k < u.n; k++) {
            order[k] = k;
        }
        for (size_t k = u.n; k > 1; k--) {
            size_t j = sg_rand(&rng) % k;
            size_t t = order[k - 1];
            order[k - 1] = order[j];
            order[j] = t;
        }
        loom_store_options o;
        loom_store_options_init(&o);
        o.compact_max_updates = 0; /* compactions only where we say */
        o.compact_max_bytes = 0;
        loom_store *s = NULL;
        assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
        char name[32];
        (void)snprintf(name, sizeof(name), "doc%ld", round);
        for (size_t k = 0; k < u.n;) {
            if (k + 1 < u.n && sg_rand(&rng) % 4 == 0) {
                const uint8_t *two[2] = {u.data[order[k]],
                                         u.data[order[k + 1]]};
                size_t lens[2] = {u.lens[order[k]], u.lens[order[k + 1]]};
                assert_int_equal(
                    loom_store_append_many(s, name, two, lens, 2, NULL), 0);
                k += 2;
            } else {
                append_ok(s, name, u.data[order[k]], u.lens[order[k]]);
                k++;
            }
            /* Ask for the state vector only sometimes, so stale ones
             * accumulate appends before they are recomputed. */
            if (sg_rand(&rng) % 3 == 0) {
                assert_sv_consistent(s, name);
            }
            if (sg_rand(&rng) % 10 == 0) {
                assert_int_equal(loom_store_compact(s, name, NULL), 0);
                assert_sv_consistent(s, name);
            }
        }
        assert_sv_consistent(s, name);
        assert_loads_as(s, name, all);
        /* The sv of everything is the reference doc's. */
        loom_buf sv = {0};
        loom_buf want = {0};
        assert_int_equal(loom_store_state_vector(s, name, &sv, NULL), 0);
        assert_int_equal(loom_doc_encode_state_vector(all, &want), 0);
        assert_true(buf_eq(&sv, &want));
        loom_buf_free(&sv);
        loom_buf_free(&want);
        loom_store_close(s);
        free(order);
        loom_doc_free(all);
        for (int c = 0; c < NC; c++) {
            loom_doc_free(docs[c]);
        }
        sg_updates_free(&u);
    }
}

static void test_compact(void **state)
{
    (void)state;
    sg_updates u = {0};
    loom_doc *src = NULL;
    make_updates(11, 40, &u, &src);
    assert_int_equal(sg_text_insert(src, 0, "hello"), 0);
    loom_store_options o;
    loom_store_options_init(&o);
    o.compact_max_updates = 0;
    o.compact_max_bytes = 0;
    loom_store *s = NULL;
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    for (size_t i = 0; i < u.n; i++) {
        append_ok(s, "c", u.data[i], u.lens[i]);
    }
    loom_buf before = encode_ok(s, "c");
    loom_store_doc_info info = {0};
    assert_int_equal(loom_store_info(s, "c", &info, NULL), 0);
    assert_int_equal(info.updates, u.n);
    assert_int_equal(info.base_bytes, 0); /* never compacted */
    assert_int_equal(loom_store_compact(s, "c", NULL), 0);
    assert_int_equal(loom_store_info(s, "c", &info, NULL), 0);
    assert_int_equal(info.updates, 1);
    assert_int_equal(info.bytes, before.len);
    assert_int_equal(info.base_bytes, before.len);
    loom_buf after = encode_ok(s, "c");
    assert_true(buf_eq(&before, &after));
    assert_loads_as(s, "c", src);
    assert_sv_consistent(s, "c");
    /* Compacting a compacted log changes nothing. */
    assert_int_equal(loom_store_compact(s, "c", NULL), 0);
    loom_buf again = encode_ok(s, "c");
    assert_true(buf_eq(&before, &again));
    loom_buf_free(&again);
    /* Appends after a compaction go on top of the merged row. */
    assert_int_equal(sg_set(src, "late", 1), 0);
    append_ok(s, "c", u.data[u.n - 1], u.lens[u.n - 1]);
    assert_loads_as(s, "c", src);
    assert_int_equal(loom_store_info(s, "c", &info, NULL), 0);
    assert_int_equal(info.updates, 2);
    /* what was appended since the compaction */
    assert_int_equal(info.bytes - info.base_bytes, u.lens[u.n - 1]);
    loom_store_close(s);
    loom_buf_free(&before);
    loom_buf_free(&after);

    /* A log of keystrokes compacts into runs, as a document encodes it:
     * much smaller than their merge, and the same document. */
    sg_updates keys = {0};
    loom_doc *typist = sg_doc_new(12, &keys);
    assert_non_null(typist);
    for (size_t i = 0; i < 500; i++) {
        assert_int_equal(sg_text_insert(typist, i, i % 7 ? "x" : "\xc3\xa9"),
                         0);
    }
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    for (size_t i = 0; i < keys.n; i++) {
        append_ok(s, "typed", keys.data[i], keys.lens[i]);
    }
    loom_buf merged = encode_ok(s, "typed");
    assert_int_equal(loom_store_compact(s, "typed", NULL), 0);
    assert_int_equal(loom_store_info(s, "typed", &info, NULL), 0);
    assert_int_equal(info.updates, 1);
    assert_true(info.bytes * 4 < merged.len);
    assert_loads_as(s, "typed", typist);
    assert_sv_consistent(s, "typed");
    loom_store_close(s);
    loom_buf_free(&merged);
    loom_doc_free(typist);
    sg_updates_free(&keys);

    /* Automatic compaction past the count bound, then the byte bound. */
    loom_store_options_init(&o);
    o.compact_max_updates = 10;
    o.compact_max_bytes = 0;
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    for (size_t i = 0; i < 25; i++) {
        append_ok(s, "auto", u.data[i], u.lens[i]);
        assert_int_equal(loom_store_info(s, "auto", &info, NULL), 0);
        assert_true(info.updates <= 10);
    }
    assert_int_equal(loom_store_info(s, "auto", &info, NULL), 0);
    assert_int_equal(info.updates, 5); /* compacted at 11 and 21 */
    loom_store_close(s);
    loom_store_options_init(&o);
    o.compact_max_updates = 0;
    o.compact_max_bytes = 64;
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    uint64_t bytes = 0;
    for (size_t i = 0; i < 30; i++) {
        append_ok(s, "bytes", u.data[i], u.lens[i]);
        bytes += u.lens[i];
    }
    assert_int_equal(loom_store_info(s, "bytes", &info, NULL), 0);
    assert_true(info.updates < 30);
    assert_true(info.bytes < bytes);
    loom_store_close(s);
    loom_doc_free(src);
    sg_updates_free(&u);
}

/* ---- batches ------------------------------------------------------------ */

static void test_batch(void **state)
{
    (void)state;
    sg_updates u = {0};
    loom_doc *src = NULL;
    make_updates(21, 6, &u, &src);
    loom_store_options o;
    loom_store_options_init(&o);
    o.compact_max_updates = 4;
    o.compact_max_bytes = 0;
    loom_store *s = NULL;
    loom_store *other = NULL;
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    assert_int_equal(loom_store_open(db, &o, &other, NULL), 0);
    assert_int_equal(loom_store_batch_commit(s, NULL), LOOM_ESTATE);

    /* Appends to several documents, one of them malformed: the bad one
     * alone is refused; nothing is visible elsewhere before the commit. */
    assert_int_equal(loom_store_batch_begin(s, NULL), 0);
    assert_int_equal(loom_store_batch_begin(s, NULL), LOOM_ESTATE);
    for (size_t i = 0; i < u.n; i++) {
        append_ok(s, "a", u.data[i], u.lens[i]);
    }
    append_ok(s, "b", u.data[0], u.lens[0]);
    static const uint8_t bad[] = {0x01, 0x01, 0x05};
    assert_int_equal(loom_store_append(s, "b", bad, sizeof(bad), NULL),
                     LOOM_EMALFORMED);
    assert_int_equal(loom_store_exists(s, "a", NULL), 1);
    assert_int_equal(loom_store_exists(other, "a", NULL), 0);
    loom_store_doc_info info = {0};
    assert_int_equal(loom_store_info(s, "a", &info, NULL), 0);
    assert_int_equal(info.updates, u.n); /* compaction waits */
    assert_int_equal(loom_store_batch_commit(s, NULL), 0);
    assert_int_equal(loom_store_exists(other, "a", NULL), 1);
    assert_int_equal(loom_store_exists(other, "b", NULL), 1);
    assert_int_equal(loom_store_info(other, "a", &info, NULL), 0);
    assert_int_equal(info.updates, 1); /* compacted after the commit */
    assert_loads_as(other, "a", src);
    assert_int_equal(loom_store_info(other, "b", &info, NULL), 0);
    assert_int_equal(info.updates, 1);
    assert_sv_consistent(other, "a");

    /* A rolled-back batch and a batch left open at close leave nothing. */
    assert_int_equal(loom_store_batch_begin(s, NULL), 0);
    append_ok(s, "c", u.data[0], u.lens[0]);
    append_ok(s, "b", u.data[1], u.lens[1]);
    loom_store_batch_rollback(s);
    assert_int_equal(loom_store_exists(s, "c", NULL), 0);
    assert_int_equal(loom_store_info(s, "b", &info, NULL), 0);
    assert_int_equal(info.updates, 1);
    assert_int_equal(loom_store_batch_begin(s, NULL), 0);
    append_ok(s, "d", u.data[0], u.lens[0]);
    loom_store_close(s);
    assert_int_equal(loom_store_exists(other, "d", NULL), 0);
    loom_store_close(other);
    loom_doc_free(src);
    sg_updates_free(&u);
}

/* ---- bad input ---------------------------------------------------------- */

static void test_bad_updates(void **state)
{
    (void)state;
    sg_updates u = {0};
    make_updates(5, 3, &u, NULL);
    loom_store *s = open_plain();
    append_ok(s, "d", u.data[0], u.lens[0]);
    loom_buf before = encode_ok(s, "d");
    loom_error e;

    /* Truncations of a real update, and junk. */
    for (size_t cut = 1; cut < u.lens[1]; cut++) {
        memset(&e, 0, sizeof(e));
        assert_int_equal(loom_store_append(s, "d", u.data[1], cut, &e),
                         LOOM_EMALFORMED);
        assert_int_equal(e.code, LOOM_EMALFORMED);
        assert_true(e.offset <= cut);
    }
    static const uint8_t junk[] = {0x01, 0x05, 0xff, 0xff, 0xff, 0x01};
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_append(s, "d", junk, sizeof(junk), &e),
                     LOOM_EMALFORMED);
    assert_true(e.message[0] != '\0');
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_append(s, "d", junk, 0, &e), LOOM_EMALFORMED);
    assert_string_equal(e.message, "empty update");
    /* A batch with one bad update writes none. */
    const uint8_t *batch[3] = {u.data[1], junk, u.data[2]};
    size_t lens[3] = {u.lens[1], sizeof(junk), u.lens[2]};
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_append_many(s, "d", batch, lens, 3, &e),
                     LOOM_EMALFORMED);
    assert_int_equal(e.input, 1);
    /* Nothing written: not to "d", and no new document either. */
    assert_int_equal(loom_store_append(s, "new", junk, sizeof(junk), NULL),
                     LOOM_EMALFORMED);
    assert_int_equal(loom_store_exists(s, "new", NULL), 0);
    loom_store_close(s);
    s = open_plain();
    loom_buf after = encode_ok(s, "d");
    assert_true(buf_eq(&before, &after));
    loom_store_doc_info info = {0};
    assert_int_equal(loom_store_info(s, "d", &info, NULL), 0);
    assert_int_equal(info.updates, 1);
    loom_store_close(s);
    loom_buf_free(&before);
    loom_buf_free(&after);
    sg_updates_free(&u);
}

/* Runs SQL on the store file directly, as damage from outside would. */
static void raw_sql(const char *path, const char *sql)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fail_msg("sql: %s", msg ? msg : "?");
    }
    sqlite3_close(h);
}

static void test_corrupt_row(void **state)
{
    (void)state;
    sg_updates u = {0};
    loom_doc *src = NULL;
    make_updates(5, 3, &u, &src);
    loom_store *s = open_plain();
    for (size_t i = 0; i < 3; i++) {
        append_ok(s, "d", u.data[i], u.lens[i]);
    }
    append_ok(s, "other", u.data[0], u.lens[0]);
    loom_store_close(s);
    raw_sql(db,
            "UPDATE updates SET data = X'0105FFFFFF01' WHERE seq = 2 AND "
            "doc_id = (SELECT id FROM docs WHERE name = CAST('d' AS BLOB))");
    s = open_plain();
    loom_buf b = {0};
    loom_error e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_encode(s, "d", &b, &e), LOOM_ECORRUPT);
    assert_non_null(strstr(e.message, "update 2"));
    assert_null(b.data);
    loom_doc *d = sg_doc_new(1, NULL);
    assert_int_equal(loom_store_load(s, "d", d, NULL), LOOM_ECORRUPT);
    assert_int_equal(loom_store_compact(s, "d", NULL), LOOM_ECORRUPT);
    loom_doc_free(d);
    /* The state vector is kept beside the log: it does not read the
     * damaged row (in-order appends keep it exact). */
    loom_buf sv = {0};
    loom_buf want = {0};
    assert_int_equal(loom_store_state_vector(s, "d", &sv, NULL), 0);
    assert_int_equal(loom_doc_encode_state_vector(src, &want), 0);
    assert_true(buf_eq(&sv, &want));
    loom_buf_free(&sv);
    loom_buf_free(&want);
    loom_doc_free(src);
    /* The other document is fine, and "d" still has its three rows. */
    loom_buf ok = encode_ok(s, "other");
    loom_buf_free(&ok);
    loom_store_doc_info info = {0};
    assert_int_equal(loom_store_info(s, "d", &info, NULL), 0);
    assert_int_equal(info.updates, 3);
    loom_store_close(s);
    sg_updates_free(&u);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *n = 0;
        return NULL;
    }
    size_t cap = 1 << 16;
    size_t len = 0;
    uint8_t *p = malloc(cap);
    assert_non_null(p);
    size_t got;
    while ((got = fread(p + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            cap *= 2;
            uint8_t *q = realloc(p, cap);
            assert_non_null(q);
            p = q;
        }
    }
    (void)fclose(f);
    *n = len;
    return p;
}

static int open_rc(loom_error *e)
{
    loom_store *s = NULL;
    memset(e, 0, sizeof(*e));
    int rc = loom_store_open(db, NULL, &s, e);
    if (rc == 0) {
        assert_non_null(s);
        loom_store_close(s);
    } else {
        assert_null(s);
    }
    return rc;
}

static void test_bad_files(void **state)
{
    (void)state;
    loom_error e;
    /* A SQLite file of another application: refused and left as it was
     * (not switched to WAL). */
    raw_sql(db, "CREATE TABLE notes(x); INSERT INTO notes VALUES (1)");
    size_t n0 = 0;
    uint8_t *orig = read_file(db, &n0);
    assert_int_equal(open_rc(&e), LOOM_ECORRUPT);
    assert_non_null(strstr(e.message, "not a loom store"));
    size_t n1 = 0;
    uint8_t *now = read_file(db, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(orig, now, n0);
    free(orig);
    free(now);
    /* Another application id. */
    raw_sql(db, "PRAGMA application_id = 1234");
    assert_int_equal(open_rc(&e), LOOM_ECORRUPT);
    unlink(db);

    /* Garbage. */
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(i * 131 + 7);
    }
    write_file(db, junk, sizeof(junk));
    assert_int_equal(open_rc(&e), LOOM_ECORRUPT);
    assert_non_null(strstr(e.message, "sqlite"));
    unlink(db);

    /* A store cut short: every cut is an error, never a silent loss. */
    sg_updates u = {0};
    make_updates(5, 200, &u, NULL);
    loom_store_options o;
    loom_store_options_init(&o);
    o.compact_max_updates = 0;
    o.compact_max_bytes = 0;
    loom_store *s = NULL;
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    for (int d = 0; d < 20; d++) {
        char name[16];
        (void)snprintf(name, sizeof(name), "d%02d", d);
        assert_int_equal(loom_store_append_many(
                             s, name, (const uint8_t *const *)u.data + d * 10,
                             u.lens + d * 10, 10, NULL),
                         0);
    }
    loom_store_close(s);
    size_t full_len = 0;
    uint8_t *full = read_file(db, &full_len);
    assert_true(full_len > 4 * 4096);
    size_t cuts[] = {full_len / 2, full_len - 4096, 4096, 100};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        write_file(db, full, cuts[i]);
        int rc = open_rc(&e);
        if (rc == 0) {
            /* The header may survive; reading what is gone must fail. */
            assert_int_equal(loom_store_open(db, NULL, &s, NULL), 0);
            int bad = 0;
            for (int d = 0; d < 20; d++) {
                char name[16];
                (void)snprintf(name, sizeof(name), "d%02d", d);
                loom_buf b = {0};
                int erc = loom_store_encode(s, name, &b, &e);
                if (erc != 0) {
                    assert_true(erc == LOOM_ECORRUPT);
                    bad++;
                }
                loom_buf_free(&b);
            }
            char names[512] = "";
            int lrc = loom_store_list(s, collect_names, names, NULL);
            assert_true(bad > 0 || lrc == LOOM_ECORRUPT);
            loom_store_close(s);
        } else {
            assert_int_equal(rc, LOOM_ECORRUPT);
        }
    }
    /* The whole file again: all there. */
    write_file(db, full, full_len);
    assert_int_equal(open_rc(&e), 0);
    free(full);

    /* A newer schema. */
    raw_sql(db, "PRAGMA user_version = 99");
    assert_int_equal(open_rc(&e), LOOM_EUNSUPPORTED);
    assert_non_null(strstr(e.message, "newer"));
    /* ... and the file still says 99 (nothing was downgraded). */
    assert_int_equal(open_rc(&e), LOOM_EUNSUPPORTED);
    raw_sql(db, "PRAGMA user_version = 2");
    assert_int_equal(open_rc(&e), 0);
    /* create = 0 on a missing file. */
    unlink(db);
    loom_store_options_init(&o);
    o.create = 0;
    s = NULL;
    assert_int_equal(loom_store_open(db, &o, &s, &e), LOOM_EIO);
    assert_null(s);
    sg_updates_free(&u);
}

/* Another connection holds the write lock: opening still works (it only
 * reads), a write waits for the busy timeout and fails with LOOM_EBUSY, and
 * reads go on (WAL). */
static void test_busy(void **state)
{
    (void)state;
    sg_updates u = {0};
    make_updates(4, 2, &u, NULL);
    loom_store *s = open_plain();
    append_ok(s, "d", u.data[0], u.lens[0]);
    loom_store_close(s);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    loom_store_options o;
    loom_store_options_init(&o);
    o.busy_timeout_ms = 50;
    loom_error e;
    memset(&e, 0, sizeof(e));
    s = NULL;
    assert_int_equal(loom_store_open(db, &o, &s, &e), 0);
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_append(s, "d", u.data[1], u.lens[1], &e),
                     LOOM_EBUSY);
    assert_non_null(strstr(e.message, "sqlite"));
    loom_buf b = encode_ok(s, "d");
    loom_buf_free(&b);
    assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    append_ok(s, "d", u.data[1], u.lens[1]);
    loom_store_doc_info info = {0};
    assert_int_equal(loom_store_info(s, "d", &info, NULL), 0);
    assert_int_equal(info.updates, 2);
    loom_store_close(s);
    sg_updates_free(&u);
}

/* ---- encryption --------------------------------------------------------- */

static bool file_contains(const char *path, const char *needle)
{
    size_t n = 0;
    uint8_t *p = read_file(path, &n);
    size_t k = strlen(needle);
    bool found = false;
    for (size_t i = 0; p && i + k <= n && !found; i++) {
        found = memcmp(p + i, needle, k) == 0;
    }
    free(p);
    return found;
}

static bool store_files_contain(const char *needle)
{
    char *wal = sg_path(dir, "loom.db-wal");
    bool found = file_contains(db, needle) || file_contains(wal, needle);
    free(wal);
    return found;
}

/* SQL for `data` with its 31st byte changed. */
#define FLIP31                                                           \
    "substr(data, 1, 30) || CASE WHEN substr(data, 31, 1) = X'00' THEN " \
    "X'01' ELSE X'00' END || substr(data, 32)"

static void test_encryption(void **state)
{
    (void)state;
    static const char marker[] = "SECRET-MARKER-7f3a";
    sg_updates u = {0};
    loom_doc *src = sg_doc_new(21, &u);
    assert_int_equal(sg_text_insert(src, 0, marker), 0);
    assert_int_equal(sg_set(src, "x", 1), 0);

    /* Plain store first: the marker is readable in its file, so the check
     * below can tell. */
    loom_store *s = open_plain();
    append_ok(s, "doc", u.data[0], u.lens[0]);
    assert_true(store_files_contain(marker));
    loom_store_close(s);
    loom_store_options o;
    opts_enc(&o, "pw");
    loom_error e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_open(db, &o, &s, &e), LOOM_EINVAL);
    assert_non_null(strstr(e.message, "not encrypted"));
    unlink(db);

    /* An encrypted store. */
    opts_enc(&o, "correct horse");
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    assert_true(loom_store_is_encrypted(s));
    for (size_t i = 0; i < u.n; i++) {
        append_ok(s, "doc", u.data[i], u.lens[i]);
    }
    append_ok(s, "other", u.data[0], u.lens[0]);
    assert_int_equal(loom_store_meta_set(s, "doc", "title",
                                         (const uint8_t *)marker,
                                         strlen(marker), NULL),
                     0);
    assert_false(store_files_contain(marker));
    assert_loads_as(s, "doc", src);
    assert_int_equal(loom_store_compact(s, "doc", NULL), 0);
    assert_false(store_files_contain(marker));
    assert_loads_as(s, "doc", src);
    loom_store_close(s);
    assert_false(store_files_contain(marker));

    /* Right passphrase: everything back. */
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    assert_loads_as(s, "doc", src);
    loom_buf v = {0};
    assert_int_equal(loom_store_meta_get(s, "doc", "title", &v, NULL), 0);
    assert_int_equal(v.len, strlen(marker));
    assert_memory_equal(v.data, marker, v.len);
    loom_buf_free(&v);
    check_meta(s);
    loom_store_close(s);

    /* Wrong and missing passphrases. */
    loom_store_options w;
    opts_enc(&w, "correct horsf");
    s = NULL;
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_open(db, &w, &s, &e), LOOM_EAUTH);
    assert_string_equal(e.message, "wrong passphrase");
    assert_null(s);
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_open(db, NULL, &s, &e), LOOM_EAUTH);
    assert_non_null(strstr(e.message, "passphrase required"));
    assert_null(s);
    w.passphrase_len = 0;
    assert_int_equal(loom_store_open(db, &w, &s, &e), LOOM_EINVAL);

    /* A tampered row, then a row moved to another document. */
    raw_sql(db, "UPDATE updates SET data = " FLIP31 " WHERE doc_id = "
                "(SELECT id FROM docs WHERE name = CAST('doc' AS BLOB))");
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    loom_buf b = {0};
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_encode(s, "doc", &b, &e), LOOM_EAUTH);
    assert_null(b.data);
    loom_store_close(s);
    raw_sql(
        db,
        "UPDATE updates SET data = (SELECT data FROM updates WHERE "
        "doc_id = (SELECT id FROM docs WHERE name = CAST('other' AS BLOB))) "
        "WHERE doc_id = (SELECT id FROM docs WHERE name = CAST('doc' AS "
        "BLOB))");
    raw_sql(db, "UPDATE updates SET data = " FLIP31 " WHERE doc_id = "
                "(SELECT id FROM docs WHERE name = CAST('other' AS BLOB))");
    assert_int_equal(loom_store_open(db, &o, &s, NULL), 0);
    memset(&e, 0, sizeof(e));
    assert_int_equal(loom_store_encode(s, "doc", &b, &e), LOOM_EAUTH);
    assert_non_null(strstr(e.message, "authentication"));
    assert_int_equal(loom_store_encode(s, "other", &b, &e), LOOM_EAUTH);
    /* Metadata moved from one key to another. */
    raw_sql(db, "INSERT INTO meta(doc_id, key, value) SELECT doc_id, "
                "CAST('copy' AS BLOB), value FROM meta WHERE key = "
                "CAST('title' AS BLOB)");
    assert_int_equal(loom_store_meta_get(s, "doc", "copy", &v, &e), LOOM_EAUTH);
    assert_null(v.data);
    loom_store_close(s);
    loom_doc_free(src);
    sg_updates_free(&u);
}

/* ---- files of earlier versions (tests/compat) ---------------------------- */

static void copy_file(const char *from, const char *to)
{
    size_t n = 0;
    uint8_t *p = read_file(from, &n);
    assert_non_null(p);
    write_file(to, p, n);
    free(p);
}

static void check_compat(const char *file, const char *pass)
{
    char *src = sg_path(LOOM_COMPAT_DIR, file);
    /* A copy: opening creates -wal and -shm files beside the database. */
    copy_file(src, db);
    free(src);
    loom_store_options o;
    loom_store_options_init(&o);
    if (pass != NULL) {
        o.passphrase = (const uint8_t *)pass;
        o.passphrase_len = strlen(pass);
    }
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(db, &o, &s, &e);
    if (rc != 0) {
        fail_msg("%s: %d %s", file, rc, e.message);
    }
    assert_int_equal(loom_store_is_encrypted(s), pass != NULL);
    /* Opening upgraded the file to schema 2: `updates` has its index. */
    {
        sqlite3 *h = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
        assert_int_equal(
            sqlite3_prepare_v2(h,
                               "SELECT (SELECT user_version FROM "
                               "pragma_user_version), (SELECT count(*) FROM "
                               "sqlite_master WHERE name = 'updates_by_seq')",
                               -1, &st, NULL),
            SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), 2);
        assert_int_equal(sqlite3_column_int(st, 1), 1);
        sqlite3_finalize(st);
        sqlite3_close(h);
    }
    char names[64] = "";
    assert_int_equal(loom_store_list(s, collect_names, names, NULL), 0);
    assert_string_equal(names, "notes,other,");
    loom_doc *d = sg_doc_new(1, NULL);
    assert_int_equal(loom_store_load(s, "notes", d, NULL), 0);
    loom_type *m = NULL;
    loom_any *v = NULL;
    assert_int_equal(loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m), 0);
    assert_int_equal(loom_map_get(m, "k", 1, &v, NULL), 0);
    size_t len = 0;
    const char *str = loom_any_string(v, &len);
    assert_non_null(str);
    assert_int_equal(len, 7);
    assert_memory_equal(str, "from-20", 7);
    loom_any_free(v);
    loom_doc_free(d);
    loom_buf b = {0};
    assert_int_equal(loom_store_meta_get(s, "notes", "title", &b, NULL), 0);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "v1", 2);
    loom_buf_free(&b);
    assert_sv_consistent(s, "notes");
    /* Still writable: an append and a compaction. */
    sg_updates u = {0};
    make_updates(30, 2, &u, NULL);
    append_ok(s, "notes", u.data[0], u.lens[0]);
    assert_int_equal(loom_store_compact(s, "notes", NULL), 0);
    assert_sv_consistent(s, "notes");
    loom_store_close(s);
    sg_updates_free(&u);
}

static void test_compat_files(void **state)
{
    (void)state;
    check_compat("store-v1-plain.db", NULL);
    unlink(db);
    check_compat("store-v2-plain.db", NULL);
    unlink(db);
    check_compat("store-v1-sealed.db", "compat");
    /* ... which opens with that passphrase only. */
    char *src = sg_path(LOOM_COMPAT_DIR, "store-v1-sealed.db");
    copy_file(src, db);
    free(src);
    loom_store_options o;
    loom_store_options_init(&o);
    o.passphrase = (const uint8_t *)"compaT";
    o.passphrase_len = 6;
    loom_store *s = NULL;
    assert_int_equal(loom_store_open(db, &o, &s, NULL), LOOM_EAUTH);
    assert_null(s);
}

/* ---- allocation failures ------------------------------------------------ */

/* One scenario with every library allocation counted: open, append, append
 * many, encode, state vector, meta set/get, compact, load, close. */
static int
scenario(const loom_allocator *a, const sg_updates *u, int *step, bool enc)
{
    loom_store_options o;
    if (enc) {
        opts_enc(&o, "pass");
    } else {
        loom_store_options_init(&o);
    }
    o.alloc = a;
    o.compact_max_updates = 4;
    loom_store *s = NULL;
    int rc = loom_store_open(db, &o, &s, NULL);
    *step = 0;
    if (rc) {
        return rc;
    }
    (*step)++;
    rc = loom_store_append(s, "d", u->data[0], u->lens[0], NULL);
    if (!rc) {
        (*step)++;
        rc = loom_store_append_many(s, "d", (const uint8_t *const *)u->data + 1,
                                    u->lens + 1, u->n - 1, NULL);
    }
    loom_buf b = {0};
    if (!rc) {
        (*step)++;
        rc = loom_store_encode(s, "d", &b, NULL);
        loom_buf_free(&b);
    }
    if (!rc) {
        rc = loom_store_state_vector(s, "d", &b, NULL);
        loom_buf_free(&b);
    }
    if (!rc) {
        rc = loom_store_meta_set(s, "d", "k", (const uint8_t *)"v", 1, NULL);
    }
    if (!rc) {
        rc = loom_store_meta_get(s, "d", "k", &b, NULL);
        loom_buf_free(&b);
    }
    if (!rc) {
        rc = loom_store_compact(s, "d", NULL);
    }
    if (!rc) {
        rc = loom_store_diff(s, "d", (const uint8_t *)"\x00", 1, &b, NULL);
        loom_buf_free(&b);
    }
    loom_store_close(s);
    return rc;
}

static void check_oom(bool enc)
{
    sg_updates u = {0};
    loom_doc *src = NULL;
    make_updates(8, 6, &u, &src);
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    int step = 0;
    unlink(db);
    assert_int_equal(scenario(&a, &u, &step, enc), 0);
    long total = c.calls;
    assert_true(total > 10);
    assert_int_equal(c.live_blocks, 0);
    for (long k = 1; k <= total; k++) {
        unlink(db);
        a = test_alloc_init(&c);
        c.fail_at = k;
        int rc = scenario(&a, &u, &step, enc);
        if (rc != 0 && rc != LOOM_ENOMEM) {
            fail_msg("fail_at %ld: rc %d step %d", k, rc, step);
        }
        assert_int_equal(c.live_blocks, 0);
        assert_int_equal(c.size_mismatches, 0);
        /* What was stored is whole: nothing, the first update, or all. */
        if (step >= 1) {
            loom_store_options o;
            opts_enc(&o, "pass");
            loom_store *s = NULL;
            assert_int_equal(loom_store_open(db, enc ? &o : NULL, &s, NULL), 0);
            loom_store_doc_info info = {0};
            int irc = loom_store_info(s, "d", &info, NULL);
            if (step == 1) {
                assert_int_equal(irc, LOOM_ENOTFOUND);
            } else {
                assert_int_equal(irc, 0);
                loom_buf m = encode_ok(s, "d");
                loom_doc *d = sg_doc_new(1, NULL);
                assert_int_equal(
                    loom_doc_apply_update(d, m.data, m.len, NULL, NULL), 0);
                int n = 0;
                for (int i = 0; i < 6; i++) {
                    char key[8];
                    (void)snprintf(key, sizeof(key), "k%d", i);
                    n += sg_has(d, key);
                }
                assert_int_equal(n, step == 2 ? 1 : 6);
                loom_doc_free(d);
                loom_buf_free(&m);
                assert_sv_consistent(s, "d");
            }
            loom_store_close(s);
        }
    }
    loom_doc_free(src);
    sg_updates_free(&u);
}

static void test_oom(void **state)
{
    (void)state;
    check_oom(false);
    check_oom(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sv_property, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encryption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oom, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
