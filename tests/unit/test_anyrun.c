/*
 * test_anyrun.c: an array item that grew by merges (one push per
 * transaction, as every client of the server benchmark does) remembers
 * where the last merge joined, so that encoding its tail does not skip
 * over every value before it (item.c any_offset). These check that the
 * shortcut gives the same bytes as the long way: every transaction's
 * update, replayed into a second document, must rebuild the same
 * content, also after inserts that split the run, and a diff from any
 * state vector must bring a document that has only a prefix up to date.
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

#define N 40

typedef struct replay {
    loom_doc *peer;
} replay;

static void on_update(void *ud,
                      loom_doc *doc,
                      const uint8_t *update,
                      size_t len,
                      const loom_txn *txn)
{
    (void)doc;
    (void)txn;
    replay *r = ud;
    assert_int_equal(loom_doc_apply_update(r->peer, update, len, NULL, NULL),
                     LOOM_OK);
}

static loom_doc *new_doc(uint64_t client)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = client;
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(&o, &d), LOOM_OK);
    return d;
}

static loom_type *array_of(loom_doc *d)
{
    loom_type *t = NULL;
    assert_int_equal(loom_doc_get(d, "a", 1, LOOM_TYPE_ARRAY, &t), LOOM_OK);
    return t;
}

/* Values of different encoded sizes, so that a wrong byte offset shows. */
static loom_any *value(size_t i)
{
    loom_any *v = NULL;
    char s[64];
    int n = snprintf(s, sizeof(s), "v%zu-%.*s", i, (int)(i % 9), "xxxxxxxxx");
    if (i % 3 == 0)
        assert_int_equal(loom_any_new_number(NULL, (double)i + 0.5, &v),
                         LOOM_OK);
    else
        assert_int_equal(loom_any_new_string(NULL, s, (size_t)n, &v), LOOM_OK);
    return v;
}

static void push(loom_type *t, size_t i)
{
    loom_any *v = value(i);
    const loom_any *vs[1] = {v};
    assert_int_equal(loom_array_push(t, vs, 1), LOOM_OK);
    loom_any_free(v);
}

static void insert_at(loom_type *t, size_t at, size_t i)
{
    loom_any *v = value(i);
    const loom_any *vs[1] = {v};
    assert_int_equal(loom_array_insert(t, at, vs, 1), LOOM_OK);
    loom_any_free(v);
}

static void expect_same(loom_doc *a, loom_doc *b)
{
    loom_any *x = NULL, *y = NULL;
    loom_type *ta = array_of(a), *tb = array_of(b);
    size_t n = loom_type_length(ta);
    assert_int_equal(loom_type_length(tb), n);
    assert_int_equal(loom_array_slice(ta, 0, n, &x), LOOM_OK);
    assert_int_equal(loom_array_slice(tb, 0, n, &y), LOOM_OK);
    loom_buf jx = {0}, jy = {0};
    assert_int_equal(loom_any_to_json(x, &jx), LOOM_OK);
    assert_int_equal(loom_any_to_json(y, &jy), LOOM_OK);
    assert_int_equal(jx.len, jy.len);
    assert_memory_equal(jx.data, jy.data, jx.len);
    loom_buf_free(&jx);
    loom_buf_free(&jy);
    loom_any_free(x);
    loom_any_free(y);
}

static void test_pushes_replay(void **state)
{
    (void)state;
    loom_doc *d = new_doc(1);
    replay r = {new_doc(2)};
    assert_int_equal(loom_doc_on_update(d, on_update, &r, NULL), LOOM_OK);
    loom_type *t = array_of(d);
    for (size_t i = 0; i < N; i++) {
        push(t, i);
        /* now and then an insert inside the run splits it */
        if (i % 7 == 6)
            insert_at(t, loom_type_length(t) / 2, 1000 + i);
        expect_same(d, r.peer);
    }
    loom_doc_free(r.peer);
    loom_doc_free(d);
}

static void test_diff_from_every_prefix(void **state)
{
    (void)state;
    loom_doc *d = new_doc(1);
    loom_type *t = array_of(d);
    /* svs[k]: the state vector after k pushes; ups[k]: the whole state */
    loom_buf svs[N + 1];
    memset(svs, 0, sizeof(svs));
    assert_int_equal(loom_doc_encode_state_vector(d, &svs[0]), LOOM_OK);
    loom_buf states[N + 1];
    memset(states, 0, sizeof(states));
    assert_int_equal(
        loom_doc_encode_state_as_update(d, NULL, 0, &states[0], NULL), LOOM_OK);
    for (size_t i = 0; i < N; i++) {
        push(t, i);
        assert_int_equal(loom_doc_encode_state_vector(d, &svs[i + 1]), LOOM_OK);
        assert_int_equal(
            loom_doc_encode_state_as_update(d, NULL, 0, &states[i + 1], NULL),
            LOOM_OK);
    }
    for (size_t k = 0; k <= N; k++) {
        loom_doc *p = new_doc(2);
        assert_int_equal(
            loom_doc_apply_update(p, states[k].data, states[k].len, NULL, NULL),
            LOOM_OK);
        loom_buf diff = {0};
        assert_int_equal(loom_doc_encode_state_as_update(
                             d, svs[k].data, svs[k].len, &diff, NULL),
                         LOOM_OK);
        assert_int_equal(
            loom_doc_apply_update(p, diff.data, diff.len, NULL, NULL), LOOM_OK);
        expect_same(d, p);
        loom_buf_free(&diff);
        loom_doc_free(p);
    }
    for (size_t k = 0; k <= N; k++) {
        loom_buf_free(&svs[k]);
        loom_buf_free(&states[k]);
    }
    loom_doc_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pushes_replay),
        cmocka_unit_test(test_diff_from_every_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
