/*
 * test_typing.c: typing appended to the item on the left (text.c
 * pos_append) must look exactly like Yjs's separate items until the
 * transaction's cleanup merges them, and like the merged item after it.
 * Expected bytes recorded from yjs 13.6.33 (client 1):
 *
 *   t.insert(0, 'hello')
 *   doc.transact(() => {
 *     t.insert(5, 'X'); t.insert(6, 'Y'); t.insert(0, 'Z'); t.insert(1, 'W')
 *     encodeStateAsUpdate(doc)   // MID
 *   })
 *   encodeStateAsUpdate(doc)     // END, text "ZWhelloXY"
 *
 * Each case runs on a plain document (appends) and on one with an
 * afterTransaction subscriber (appends are off while someone observes), and
 * both must give the same bytes, updates and text.
 *
 * Backspaces and forward deletes next to deleted text (text.c pos_backspace,
 * pos_delete_front) likewise, against these yjs 13.6.33 bytes (client 1):
 *
 *   'hello world' typed one character per transaction
 *   doc.transact(() => { t.delete(10, 1); encodeStateAsUpdate(doc) }) // DMID[0]
 *   t.delete(9, 1)
 *   doc.transact(() => {
 *     t.delete(8, 1); t.delete(7, 1); encodeStateAsUpdate(doc)        // DMID[1]
 *   })
 *   'abcd' typed at 7, one character per transaction
 *   t.delete(7, 1); t.delete(7, 1)
 *   doc.transact(() => { t.delete(7, 1); encodeStateAsUpdate(doc) })  // DMID[2]
 *   encodeStateAsUpdate(doc)                                           // DMID[3]
 *
 * with the update events after the typing in DLOG (it goes on below), text
 * "hello wd". Then
 * an observer subscribed inside a transaction after a backspace and a
 * forward delete sees Yjs's items (DDELTA), and the end state is DEND:
 *
 *   'xyz' typed at the end, one character per transaction
 *   doc.transact(() => { t.delete(10, 1); t.delete(7, 1); t.observe(...) })
 *   encodeStateAsUpdate(doc)                                           // DEND
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

static const char MID[] =
    "01050100040104746578740568656c6c6f84010401588401050159"
    "440100015ac401070100015700";
static const char END[] =
    "01020100040104746578740768656c6c6f5859440100025a5700";

static char *to_hex(const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    assert_non_null(h);
    for (size_t i = 0; i < n; i++)
        snprintf(h + 2 * i, 3, "%02x", p[i]);
    h[2 * n] = 0;
    return h;
}

static void expect_state(const loom_doc *d, const char *want)
{
    loom_buf b = {0};
    assert_int_equal(loom_doc_encode_state_as_update(d, NULL, 0, &b, NULL),
                     LOOM_OK);
    char *h = to_hex(b.data, b.len);
    if (strcmp(h, want))
        fprintf(stderr, "   got  %s\n   want %s\n", h, want);
    assert_string_equal(h, want);
    free(h);
    loom_buf_free(&b);
}

static void expect_text(loom_type *t, const char *want)
{
    loom_buf b = {0};
    assert_int_equal(loom_text_to_string(t, &b), LOOM_OK);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    loom_buf_free(&b);
}

typedef struct updates {
    char log[4096];
} updates;

static void on_update(void *ud,
                      loom_doc *doc,
                      const uint8_t *update,
                      size_t len,
                      const loom_txn *txn)
{
    (void)doc;
    (void)txn;
    updates *u = ud;
    char *h = to_hex(update, len);
    size_t at = strlen(u->log);
    snprintf(u->log + at, sizeof(u->log) - at, "%s;", h);
    free(h);
}

static void on_txn(void *ud, loom_doc *doc, const loom_txn *txn)
{
    (void)doc;
    (void)txn;
    (*(int *)ud)++;
}

static loom_doc *new_doc(bool observed, int *calls, updates *u)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 1;
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(&o, &d), LOOM_OK);
    if (observed)
        assert_int_equal(loom_doc_on_after_transaction(d, on_txn, calls, NULL),
                         LOOM_OK);
    assert_int_equal(loom_doc_on_update(d, on_update, u, NULL), LOOM_OK);
    return d;
}

static void ins(loom_type *t, size_t at, const char *s)
{
    assert_int_equal(loom_text_insert(t, at, s, strlen(s), NULL), LOOM_OK);
}

static void run(bool observed, updates *u)
{
    int calls = 0;
    loom_doc *d = new_doc(observed, &calls, u);
    loom_type *t;
    assert_int_equal(loom_doc_get(d, "text", 4, LOOM_TYPE_TEXT, &t), LOOM_OK);
    ins(t, 0, "hello");
    assert_int_equal(loom_doc_transact_begin(d, NULL), LOOM_OK);
    ins(t, 5, "X");
    ins(t, 6, "Y");
    ins(t, 0, "Z");
    ins(t, 1, "W");
    expect_state(d, MID);
    expect_state(d, MID); /* the split parts stay until the cleanup */
    expect_text(t, "ZWhelloXY");
    assert_int_equal(loom_doc_transact_end(d), LOOM_OK);
    expect_state(d, END);
    expect_text(t, "ZWhelloXY");
    /* without a look inside: the same end */
    assert_int_equal(loom_doc_transact_begin(d, NULL), LOOM_OK);
    ins(t, 9, "1");
    ins(t, 10, "2");
    assert_int_equal(loom_doc_transact_end(d), LOOM_OK);
    ins(t, 11, "3");
    expect_text(t, "ZWhelloXY123");
    if (observed)
        assert_int_equal(calls, 4);
    loom_doc_free(d);
}

static void test_appends_look_like_items(void **state)
{
    (void)state;
    updates plain, observed;
    memset(&plain, 0, sizeof(plain));
    memset(&observed, 0, sizeof(observed));
    run(false, &plain);
    run(true, &observed);
    assert_string_equal(plain.log, observed.log);
}

static const char *const DMID[] = {
    "01020100040104746578740a68656c6c6f20776f726c84010901640101010a01",
    "01040100040104746578740768656c6c6f2077840106016f8401070172810108020101"
    "010704",
    "01040100040104746578740768656c6c6f20778101060684010c016384010d01640101"
    "010707",
    "01030100040104746578740768656c6c6f20778101060784010d01640101010707",
};
static const char DLOG[] =
    "000101010a01;000101010901;000101010702;0101010b84010a016100;"
    "0101010c84010b016200;0101010d84010c016300;0101010e84010d016400;"
    "000101010b01;000101010c01;000101010d01;0101010f84010e017800;"
    "0101011084010f017900;01010111840110017a00;000101020e011101;";

static const char DDELTA[] =
    "[{\"retain\":7},{\"delete\":1},{\"retain\":2},{\"delete\":1}]";
static const char DEND[] =
    "01040100040104746578740768656c6c6f20778101060884010e0278798101"
    "100101010207081101";

static void on_observe(void *ud, const loom_event *ev, const loom_txn *txn)
{
    (void)txn;
    const loom_any *delta;
    assert_int_equal(loom_event_delta(ev, &delta), LOOM_OK);
    loom_buf *b = ud;
    assert_int_equal(loom_any_to_json(delta, b), LOOM_OK);
}

static void del(loom_type *t, size_t at, size_t n)
{
    assert_int_equal(loom_text_delete(t, at, n), LOOM_OK);
}

static void type_at(loom_type *t, size_t at, const char *s)
{
    for (size_t i = 0; s[i]; i++)
        assert_int_equal(loom_text_insert(t, at + i, s + i, 1, NULL), LOOM_OK);
}

static void run_deletes(bool observed, updates *u)
{
    int calls = 0;
    loom_doc *d = new_doc(observed, &calls, u);
    loom_type *t;
    assert_int_equal(loom_doc_get(d, "text", 4, LOOM_TYPE_TEXT, &t), LOOM_OK);
    type_at(t, 0, "hello world");
    memset(u->log, 0, sizeof(u->log)); /* the typing's updates: not here */
    assert_int_equal(loom_doc_transact_begin(d, NULL), LOOM_OK);
    del(t, 10, 1);
    expect_state(d, DMID[0]);
    assert_int_equal(loom_doc_transact_end(d), LOOM_OK);
    del(t, 9, 1);
    assert_int_equal(loom_doc_transact_begin(d, NULL), LOOM_OK);
    del(t, 8, 1);
    del(t, 7, 1);
    expect_state(d, DMID[1]);
    expect_state(d, DMID[1]);
    assert_int_equal(loom_doc_transact_end(d), LOOM_OK);
    type_at(t, 7, "abcd");
    del(t, 7, 1);
    del(t, 7, 1);
    assert_int_equal(loom_doc_transact_begin(d, NULL), LOOM_OK);
    del(t, 7, 1);
    expect_state(d, DMID[2]);
    assert_int_equal(loom_doc_transact_end(d), LOOM_OK);
    expect_state(d, DMID[3]);
    expect_text(t, "hello wd");
    /* an observer that comes inside the transaction */
    type_at(t, 8, "xyz");
    assert_int_equal(loom_doc_transact_begin(d, NULL), LOOM_OK);
    del(t, 10, 1);
    del(t, 7, 1);
    loom_buf delta = {0};
    assert_int_equal(loom_type_observe(t, on_observe, &delta, NULL), LOOM_OK);
    assert_int_equal(loom_doc_transact_end(d), LOOM_OK);
    assert_int_equal(delta.len, strlen(DDELTA));
    assert_memory_equal(delta.data, DDELTA, delta.len);
    loom_buf_free(&delta);
    expect_state(d, DEND);
    expect_text(t, "hello wxy");
    if (strcmp(u->log, DLOG))
        fprintf(stderr, "   got  %s\n   want %s\n", u->log, DLOG);
    assert_string_equal(u->log, DLOG);
    if (observed)
        assert_int_equal(calls, 11 + 10 + 4);
    loom_doc_free(d);
}

static void test_deletes_look_like_items(void **state)
{
    (void)state;
    updates plain, observed;
    memset(&plain, 0, sizeof(plain));
    memset(&observed, 0, sizeof(observed));
    run_deletes(false, &plain);
    run_deletes(true, &observed);
}

/* An allocator that fails once `left` reaches 0 (-1: never fails). */
typedef struct failing {
    long left;
} failing;

static void *f_malloc(void *ud, size_t size)
{
    failing *f = ud;
    if (f->left == 0)
        return NULL;
    if (f->left > 0)
        f->left--;
    return malloc(size);
}

static void *f_realloc(void *ud, void *p, size_t old, size_t size)
{
    (void)old;
    failing *f = ud;
    if (f->left == 0)
        return NULL;
    if (f->left > 0)
        f->left--;
    return realloc(p, size);
}

static void f_free(void *ud, void *p, size_t size)
{
    (void)ud;
    (void)size;
    free(p);
}

/* Backspaces and a forward delete, and an encoding inside their
 * transaction that restores Yjs's items, with every allocation failing in
 * turn: an error or success, never a crash or a leak, and the document
 * stays usable. */
static void test_deletes_out_of_memory(void **state)
{
    (void)state;
    bool done = false;
    for (long n = 0; !done && n < 200; n++) {
        failing f = {-1};
        loom_allocator a = {f_malloc, f_realloc, f_free, &f};
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id = 1;
        o.alloc = &a;
        loom_doc *d = NULL;
        assert_int_equal(loom_doc_new(&o, &d), LOOM_OK);
        loom_type *t;
        assert_int_equal(loom_doc_get(d, "text", 4, LOOM_TYPE_TEXT, &t),
                         LOOM_OK);
        type_at(t, 0, "hello world");
        f.left = n;
        int rc = loom_doc_transact_begin(d, NULL);
        if (!rc) {
            int r1 = loom_text_delete(t, 10, 1);
            int r2 = loom_text_delete(t, 9, 1);
            int r3 = loom_text_delete(t, 8, 1);
            if (!r1 && !r2 && !r3) {
                /* forward deletes on a fresh item (typed in this
                 * transaction, so the slow path: appended typing is
                 * recorded) */
                static const char abc[] = "abc";
                for (size_t i = 0; i < 3 && !r3; i++)
                    r3 = loom_text_insert(t, 8 + i, &abc[i], 1, NULL);
                if (!r3)
                    r3 = loom_text_delete(t, 8, 1);
                if (!r3)
                    r3 = loom_text_delete(t, 8, 1);
            }
            loom_buf b = {0};
            int r4 = loom_doc_encode_state_as_update(d, NULL, 0, &b, NULL);
            loom_buf_free(&b);
            rc = loom_doc_transact_end(d);
            done = !rc && !r1 && !r2 && !r3 && !r4;
        }
        f.left = -1;
        if (done)
            expect_text(t, "hello woc");
        /* usable afterwards */
        type_at(t, 0, "ok");
        loom_buf b = {0};
        assert_int_equal(loom_doc_encode_state_as_update(d, NULL, 0, &b, NULL),
                         LOOM_OK);
        loom_buf_free(&b);
        loom_doc_free(d);
    }
    assert_true(done);
}

/* An editor's session: typing, backspaces and runs of forward deletes at a
 * cursor that jumps now and then, one transaction each or a few in one,
 * against a plain string. The search markers' lazy shifts (forward deletes
 * at one index join the pending one) must keep every position right; the
 * encoded state must load to the same text. */
static void test_cursor_session(void **state)
{
    (void)state;
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 1;
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(&o, &d), LOOM_OK);
    loom_type *t;
    assert_int_equal(loom_doc_get(d, "text", 4, LOOM_TYPE_TEXT, &t), LOOM_OK);
    enum { CAP = 4096 };
    char ref[CAP + 1];
    size_t n = 0, cur = 0;
    uint64_t rnd = 12345;
    for (int op = 0; op < 20000; op++) {
        rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned r = (unsigned)(rnd >> 33);
        bool group = r % 7 == 0;
        if (group)
            assert_int_equal(loom_doc_transact_begin(d, NULL), LOOM_OK);
        for (unsigned k = 0; k < (group ? 1 + r % 4 : 1); k++) {
            unsigned what = (r >> (3 + 4 * k)) % 16;
            if (what == 0 && n) {
                cur = (r >> 11) % (n + 1); /* a jump */
            } else if (what <= 3 && cur) { /* backspace */
                assert_int_equal(loom_text_delete(t, cur - 1, 1), LOOM_OK);
                memmove(ref + cur - 1, ref + cur, n - cur);
                n--;
                cur--;
            } else if (what <= 6 && cur < n) { /* forward deletes */
                size_t len = 1 + (what == 6 && cur + 1 < n);
                assert_int_equal(loom_text_delete(t, cur, len), LOOM_OK);
                memmove(ref + cur, ref + cur + len, n - cur - len);
                n -= len;
            } else if (n < CAP) {
                char c = (char)('a' + (r >> 20) % 26);
                assert_int_equal(loom_text_insert(t, cur, &c, 1, NULL),
                                 LOOM_OK);
                memmove(ref + cur + 1, ref + cur, n - cur);
                ref[cur++] = c;
                n++;
            }
        }
        if (group)
            assert_int_equal(loom_doc_transact_end(d), LOOM_OK);
        if (op % 97 == 0 || op == 19999) {
            ref[n] = 0;
            expect_text(t, ref);
        }
    }
    loom_buf b = {0};
    assert_int_equal(loom_doc_encode_state_as_update(d, NULL, 0, &b, NULL),
                     LOOM_OK);
    loom_doc *e = NULL;
    assert_int_equal(loom_doc_new(NULL, &e), LOOM_OK);
    assert_int_equal(loom_doc_apply_update(e, b.data, b.len, NULL, NULL),
                     LOOM_OK);
    loom_type *te;
    assert_int_equal(loom_doc_get(e, "text", 4, LOOM_TYPE_TEXT, &te), LOOM_OK);
    expect_text(te, ref);
    loom_buf_free(&b);
    loom_doc_free(e);
    loom_doc_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_look_like_items),
        cmocka_unit_test(test_deletes_look_like_items),
        cmocka_unit_test(test_deletes_out_of_memory),
        cmocka_unit_test(test_cursor_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
