/*
 * test_maps.c: map operations with every allocation failing in turn. Map
 * sets, overwrites and deletes run in their own transactions (the short
 * transaction end, the pool of items and value bytes, the collection of an
 * overwritten value); one that fails must leave the document as it was
 * (same encoding), and nothing may leak. Loading the result into another
 * document with its allocations failing must fail cleanly and leak nothing.
 * Loaded map entries of several roots and clients give the same document.
 * A set that is its own transaction while nobody observes the document
 * takes a shorter path than one inside a transaction or with a
 * subscriber; the three must leave the same bytes. A map entry set or
 * loaded is carved in one block with its value's bytes; overwritten,
 * deleted, collected, merged with the entry after it (gc off), split by a
 * snapshot or loaded again, it frees exactly what was allocated.
 */
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

#define NOPS 40

/* {id: i, title: "task i"} */
static loom_any *value(int i)
{
    loom_any *o, *id, *title;
    char s[32];
    int n = snprintf(s, sizeof s, "task %d", i);
    assert_int_equal(loom_any_new_object(NULL, &o), 0);
    assert_int_equal(loom_any_new_number(NULL, i, &id), 0);
    assert_int_equal(loom_any_new_string(NULL, s, (size_t)n, &title), 0);
    assert_int_equal(loom_any_object_set(o, "id", 2, id), 0);
    assert_int_equal(loom_any_object_set(o, "title", 5, title), 0);
    return o;
}

/* Op i: sets of new keys, overwrites of earlier ones, and deletes. */
static int run_op(loom_type *m, int i)
{
    char k[16];
    if (i % 7 == 6) {
        snprintf(k, sizeof k, "k%d", i / 2);
        return loom_map_delete(m, k, strlen(k));
    }
    snprintf(k, sizeof k, "k%d", i % 3 == 2 ? i / 3 : i);
    loom_any *v = value(i);
    int rc = loom_map_set(m, k, strlen(k), v);
    loom_any_free(v);
    return rc;
}

/* The document's state as an update, in memory of the default allocator
 * (the library encodes with the document's). */
static void encode(loom_doc *d, loom_buf *out)
{
    loom_buf b = {0};
    assert_int_equal(loom_doc_encode_state_as_update(d, NULL, 0, &b, NULL), 0);
    memset(out, 0, sizeof(*out));
    out->alloc = loom_allocator_default();
    out->data = malloc(b.len ? b.len : 1);
    assert_non_null(out->data);
    memcpy(out->data, b.data, b.len);
    out->cap = b.len ? b.len : 1;
    out->len = b.len;
    loom_buf_free(&b);
}

/* d encodes to exactly the bytes of want. */
static void assert_encodes_to(loom_doc *d, const loom_buf *want)
{
    loom_buf now;
    encode(d, &now);
    assert_int_equal(now.len, want->len);
    assert_memory_equal(now.data, want->data, want->len);
    loom_buf_free(&now);
}

/* A new document of client `client` with allocator a (NULL: libc) and gc
 * on or off. */
static loom_doc *new_doc(uint64_t client, const loom_allocator *a, int gc)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = client;
    o.alloc = a;
    o.gc = gc;
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(&o, &d), 0);
    return d;
}

/* Runs the ops with allocation `fail` (counted over the ops only) failing;
 * returns whether every op succeeded. The update of the result goes to
 * `update` when given. */
static bool run_ops(long fail, loom_buf *update)
{
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    loom_doc *d = new_doc(1, &a, 1);
    loom_type *m;
    assert_int_equal(loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m), 0);
    long left = fail; /* allocations of the ops still to succeed first */
    bool all = true;
    for (int i = 0; i < NOPS; i++) {
        loom_buf before;
        encode(d, &before);
        long calls = c.calls;
        c.fail_at = left > 0 ? c.calls + left : 0;
        int rc = run_op(m, i);
        c.fail_at = 0;
        left -= c.calls - calls;
        if (rc) {
            assert_int_equal(rc, LOOM_ENOMEM);
            all = false;
            loom_buf now;
            encode(d, &now);
            assert_int_equal(now.len, before.len);
            assert_memory_equal(now.data, before.data, now.len);
            loom_buf_free(&now);
        }
        loom_buf_free(&before);
    }
    if (update)
        encode(d, update);
    loom_doc_free(d);
    assert_int_equal(c.live_blocks, 0);
    assert_int_equal(c.size_mismatches, 0);
    return all;
}

static void test_ops_out_of_memory(void **state)
{
    (void)state;
    long fail = 1;
    while (!run_ops(fail, NULL))
        fail++;
    assert_true(fail > 5); /* the ops do allocate */
}

static void test_load_out_of_memory(void **state)
{
    (void)state;
    loom_buf u;
    assert_true(run_ops(0, &u));
    bool done = false;
    for (long k = 1; !done; k++) {
        test_alloc c;
        loom_allocator a = test_alloc_init(&c);
        loom_doc *d = new_doc(2, &a, 1);
        c.fail_at = c.calls + k;
        int rc = loom_doc_apply_update(d, u.data, u.len, NULL, NULL);
        done = c.calls < c.fail_at;
        c.fail_at = 0;
        if (rc) {
            assert_int_equal(rc, LOOM_ENOMEM);
        } else {
            loom_buf now;
            encode(d, &now);
            if (done) {
                assert_int_equal(now.len, u.len);
                assert_memory_equal(now.data, u.data, u.len);
            }
            loom_buf_free(&now);
        }
        /* usable afterwards */
        loom_type *m;
        assert_int_equal(loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m), 0);
        assert_int_equal(run_op(m, 1), 0);
        loom_doc_free(d);
        assert_int_equal(c.live_blocks, 0);
        assert_int_equal(c.size_mismatches, 0);
    }
    loom_buf_free(&u);
}

/* Sets key i of map m to value(i), or to {id: [i]} (an object that is not
 * flat) when i % 5 == 4. */
static void set(loom_type *m, int i)
{
    char k[16];
    snprintf(k, sizeof k, "k%d", i);
    loom_any *v;
    if (i % 5 == 4) {
        loom_any *arr, *n;
        assert_int_equal(loom_any_new_object(NULL, &v), 0);
        assert_int_equal(loom_any_new_array(NULL, &arr), 0);
        assert_int_equal(loom_any_new_number(NULL, i, &n), 0);
        assert_int_equal(loom_any_array_push(arr, n), 0);
        assert_int_equal(loom_any_object_set(v, "id", 2, arr), 0);
    } else {
        v = value(i);
    }
    assert_int_equal(loom_map_set(m, k, strlen(k), v), 0);
    loom_any_free(v);
}

/*
 * Loading maps the way a loaded map entry is integrated (a root parent, a
 * key, no origins): entries of two roots in turns and in runs, of two
 * clients, values that are flat objects and values that are not, applied
 * whole and client by client in either order. The loaded document encodes
 * to the same update.
 */
static void test_load_entries(void **state)
{
    (void)state;
    loom_doc *a = new_doc(1, NULL, 1), *b = new_doc(2, NULL, 1);
    loom_type *am, *an, *bm;
    assert_int_equal(loom_doc_get(a, "m", 1, LOOM_TYPE_MAP, &am), 0);
    assert_int_equal(loom_doc_get(a, "n", 1, LOOM_TYPE_MAP, &an), 0);
    assert_int_equal(loom_doc_get(b, "m", 1, LOOM_TYPE_MAP, &bm), 0);
    for (int i = 0; i < 60; i++) {
        /* runs of "m", then turns */
        set(i < 20 || i % 2 ? am : an, i);
        set(bm, 1000 + i);
    }
    loom_buf ua, ub;
    encode(a, &ua);
    encode(b, &ub);
    assert_int_equal(loom_doc_apply_update(a, ub.data, ub.len, NULL, NULL), 0);
    loom_buf all;
    encode(a, &all);
    for (int order = 0; order < 3; order++) {
        loom_doc *d = new_doc(3, NULL, 1);
        if (order == 0) {
            assert_int_equal(
                loom_doc_apply_update(d, all.data, all.len, NULL, NULL), 0);
        } else {
            const loom_buf *first = order == 1 ? &ua : &ub;
            const loom_buf *second = order == 1 ? &ub : &ua;
            assert_int_equal(
                loom_doc_apply_update(d, first->data, first->len, NULL, NULL),
                0);
            assert_int_equal(
                loom_doc_apply_update(d, second->data, second->len, NULL, NULL),
                0);
        }
        assert_encodes_to(d, &all);
        loom_doc_free(d);
    }
    loom_buf_free(&ua);
    loom_buf_free(&ub);
    loom_buf_free(&all);
    loom_doc_free(a);
    loom_doc_free(b);
}

/* ---- a set alone, in a transaction, observed ------------------------- */

static void count_update(
    void *ud, loom_doc *d, const uint8_t *update, size_t len, const loom_txn *t)
{
    (void)d;
    (void)update;
    (void)len;
    (void)t;
    (*(int *)ud)++;
}

/* Op r (a pseudo-random number) on map m: values of every kind set on a
 * few keys (a key set again and again, overwritten types and subdocs,
 * deleted keys set again), in a transaction of its own when `wrap`. */
static void mixed_op(loom_doc *d, loom_type *m, uint32_t r, bool wrap)
{
    char k[8];
    snprintf(k, sizeof k, "k%u", (unsigned)(r % 5));
    size_t kl = strlen(k);
    if (wrap)
        assert_int_equal(loom_doc_transact_begin(d, NULL), 0);
    loom_any *v = NULL;
    switch ((r >> 8) % 8) {
    case 0:
    case 1:
    case 2:
        v = value((int)(r >> 12));
        break;
    case 3:
        assert_int_equal(loom_any_new_string(NULL, "text", 4, &v), 0);
        break;
    case 4:
        assert_int_equal(
            loom_any_new_binary(NULL, (const uint8_t *)"\1\2", 2, &v), 0);
        break;
    case 5: {
        loom_type *sub;
        assert_int_equal(
            loom_map_set_type(m, k, kl, LOOM_TYPE_MAP, NULL, 0, &sub), 0);
        loom_any *x = value(7);
        assert_int_equal(loom_map_set(sub, "x", 1, x), 0);
        loom_any_free(x);
        break;
    }
    case 6:
        assert_int_equal(loom_map_set_subdoc(m, k, kl, "guid", 4, NULL), 0);
        break;
    default:
        assert_int_equal(loom_map_delete(m, k, kl), 0);
        break;
    }
    if (v) {
        assert_int_equal(loom_map_set(m, k, kl, v), 0);
        loom_any_free(v);
    }
    if (wrap)
        assert_int_equal(loom_doc_transact_end(d), 0);
}

static loom_doc *mixed_doc(int gc, loom_type **m)
{
    loom_doc *d = new_doc(1, NULL, gc);
    assert_int_equal(loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, m), 0);
    return d;
}

static void test_set_alone_same_bytes(void **state)
{
    (void)state;
    for (int gc = 0; gc <= 1; gc++) {
        loom_type *ma, *mt, *mo;
        loom_doc *alone = mixed_doc(gc, &ma);
        loom_doc *txn = mixed_doc(gc, &mt);
        loom_doc *obs = mixed_doc(gc, &mo);
        int updates = 0;
        assert_int_equal(loom_doc_on_update(obs, count_update, &updates, NULL),
                         0);
        uint32_t r = 12345;
        for (int i = 0; i < 400; i++) {
            r = r * 1103515245u + 12345u;
            mixed_op(alone, ma, r, false);
            mixed_op(txn, mt, r, true);
            mixed_op(obs, mo, r, false);
            loom_buf a, t, o;
            encode(alone, &a);
            encode(txn, &t);
            encode(obs, &o);
            assert_int_equal(a.len, t.len);
            assert_memory_equal(a.data, t.data, a.len);
            assert_int_equal(a.len, o.len);
            assert_memory_equal(a.data, o.data, a.len);
            loom_buf_free(&a);
            loom_buf_free(&t);
            loom_buf_free(&o);
        }
        assert_true(updates > 0);
        loom_doc_free(alone);
        loom_doc_free(txn);
        loom_doc_free(obs);
    }
}

/* ---- entries carved with their values ---------------------------------- */

/* The value of key k is value(i). */
static void assert_value(loom_type *m, const char *k, int i)
{
    loom_any *got = NULL, *want = value(i);
    assert_int_equal(loom_map_get(m, k, strlen(k), &got, NULL), 0);
    assert_true(loom_any_equal(got, want));
    loom_any_free(got);
    loom_any_free(want);
}

/* Sets, overwrites and deletes on a few keys of m, alone and in
 * transactions (where entries of one key merge when gc is off), with
 * values that fit an entry's block and values that do not. */
static void front_ops(loom_doc *d, loom_type *m, int base)
{
    char k[16];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof k, "k%d", i % 4);
        bool wrap = i % 8 >= 6;
        if (wrap)
            assert_int_equal(loom_doc_transact_begin(d, NULL), 0);
        if (i % 5 == 4) {
            assert_int_equal(loom_map_delete(m, k, strlen(k)), 0);
        } else if (i % 11 == 10) {
            /* past a pool block: not carved with its item */
            char big[400];
            memset(big, 'x', sizeof big);
            loom_any *v;
            assert_int_equal(loom_any_new_string(NULL, big, sizeof big, &v), 0);
            assert_int_equal(loom_map_set(m, k, strlen(k), v), 0);
            loom_any_free(v);
        } else {
            loom_any *v = value(base + i);
            assert_int_equal(loom_map_set(m, k, strlen(k), v), 0);
            loom_any_free(v);
            assert_value(m, k, base + i);
        }
        if (wrap)
            assert_int_equal(loom_doc_transact_end(d), 0);
    }
}

/* Keys set again and again in turn keep one deleted entry per set (entries
 * of different keys do not merge), but not its old value: the bytes in
 * front of an overwritten entry go back to the pool and the next value
 * takes them. An entry with its origin is 96 bytes and its slot in the
 * client's array 8 to 16; a value kept as well would add 40 or more. */
static void test_overwrite_keeps_no_values(void **state)
{
    (void)state;
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    loom_doc *d = new_doc(1, &a, 1);
    loom_type *m;
    assert_int_equal(loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m), 0);
    enum { KEYS = 64, ROUNDS = 200 };
    long long at_half = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (r == ROUNDS / 2)
            at_half = c.live_bytes;
        for (int k = 0; k < KEYS; k++) {
            char key[16];
            snprintf(key, sizeof key, "key%d", k);
            loom_any *v = value(r * KEYS + k);
            assert_int_equal(loom_map_set(m, key, strlen(key), v), 0);
            loom_any_free(v);
        }
    }
    assert_value(m, "key7", (ROUNDS - 1) * KEYS + 7);
    long long per_set =
        (c.live_bytes - at_half) / ((long long)(ROUNDS / 2) * KEYS);
    assert_true(per_set >= 96);
    assert_true(per_set < 132);
    loom_doc_free(d);
    assert_int_equal(c.live_blocks, 0);
    assert_int_equal(c.size_mismatches, 0);
}

static void test_front_values(void **state)
{
    (void)state;
    for (int gc = 0; gc <= 1; gc++) {
        test_alloc c;
        loom_allocator a = test_alloc_init(&c);
        loom_doc *d = new_doc(1, &a, gc);
        loom_type *m;
        assert_int_equal(loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m), 0);
        /* one key set again and again: with gc off its deleted entries
         * merge, out of the first one's block (after a first set: a new
         * pool has no block to encode a value in) */
        for (int i = -1; i < 6; i++) {
            loom_any *v = value(500 + i);
            assert_int_equal(loom_map_set(m, i < 0 ? "w" : "r", 1, v), 0);
            loom_any_free(v);
        }
        front_ops(d, m, 0);
        loom_snapshot *snap = NULL;
        assert_int_equal(loom_doc_snapshot(d, &snap), 0);
        loom_buf u;
        encode(d, &u);

        /* loaded entries come in one block with their values too */
        loom_doc *e = new_doc(2, &a, gc);
        assert_int_equal(loom_doc_apply_update(e, u.data, u.len, NULL, NULL),
                         0);
        assert_encodes_to(e, &u);
        loom_type *em;
        assert_int_equal(loom_doc_get(e, "m", 1, LOOM_TYPE_MAP, &em), 0);
        assert_value(em, "r", 505);
        front_ops(e, em, 100);
        front_ops(d, m, 200);
        if (!gc) {
            loom_doc *s = NULL;
            loom_doc_options o;
            loom_doc_options_init(&o);
            o.alloc = &a;
            o.gc = 0;
            assert_int_equal(loom_doc_from_snapshot(d, snap, &o, &s), 0);
            loom_type *sm;
            assert_int_equal(loom_doc_get(s, "m", 1, LOOM_TYPE_MAP, &sm), 0);
            assert_value(sm, "r", 505);
            loom_doc_free(s);
        }
        loom_snapshot_free(snap);
        /* each document's changes into the other */
        loom_buf ue, ud;
        encode(e, &ue);
        encode(d, &ud);
        assert_int_equal(loom_doc_apply_update(d, ue.data, ue.len, NULL, NULL),
                         0);
        assert_int_equal(loom_doc_apply_update(e, ud.data, ud.len, NULL, NULL),
                         0);
        loom_buf_free(&ue);
        loom_buf_free(&ud);
        loom_buf_free(&u);
        loom_doc_free(e);
        loom_doc_free(d);
        assert_int_equal(c.live_blocks, 0);
        assert_int_equal(c.size_mismatches, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_out_of_memory),
        cmocka_unit_test(test_load_out_of_memory),
        cmocka_unit_test(test_load_entries),
        cmocka_unit_test(test_set_alone_same_bytes),
        cmocka_unit_test(test_front_values),
        cmocka_unit_test(test_overwrite_keeps_no_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
