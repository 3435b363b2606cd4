/*
 * test_loadruns.c: the runs of map entries that an update parsed for
 * applying keeps as one record each (LOOM__RS_RUN) against the general
 * path, on generated updates: map entries of several roots and clients with
 * keys of every length up to 20 (ASCII or not), values flat or not, long
 * (entries past 255 bytes end a run), not canonical, or several to a
 * struct, mixed with overwrites (origins of their own client, of an earlier
 * update's client, or of another client of the same update), text, GC and
 * Skip structs.
 *
 * The parser must give the same records once the runs are expanded, the
 * same roots, and the same error at the same offset; applying must reject
 * a broken update with that error and leave the document as it was. Each
 * update is applied to one document as it is (a fresh document takes it in
 * order, through the runs) and to another after the first struct of its
 * first block alone, which makes its block start before the document's
 * state: that one expands the runs and takes every struct the general way.
 * Both must end with the same bytes. Either way, an allocation failing at
 * any point gives LOOM_ENOMEM and leaks nothing (the parser's records and
 * their expansion are freed with the sizes they were allocated with).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec/codec.h"
#include "loom/loom.h"
#include "testalloc.h"

/* ---- bytes -------------------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_u8(bytes *b, uint8_t v)
{
    put(b, &v, 1);
}

static void put_uint(bytes *b, uint64_t v)
{
    while (v >= 0x80) {
        put_u8(b, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_u8(b, (uint8_t)v);
}

static void put_str(bytes *b, const char *s, size_t n)
{
    put_uint(b, n);
    put(b, s, n);
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng_state >> 33) % n);
}

/* ---- generated updates -------------------------------------------------- */

enum { NCLIENTS = 3 };

/* The clients and what the updates so far gave them. */
typedef struct world {
    uint64_t client[NCLIENTS];
    uint64_t clock[NCLIENTS];   /* state after the updates so far */
    uint64_t applied[NCLIENTS]; /* state before the update being made */
} world;

static const char *const roots[] = {"m", "map2", "a_longer_root", "\xc3\xa9"};

static void put_key(bytes *b)
{
    char k[24];
    size_t n = rnd(8) == 0 ? rnd(21) : 1 + rnd(6);
    for (size_t i = 0; i < n; i++)
        k[i] = (char)('a' + rnd(26));
    if (n >= 2 && rnd(10) == 0) {
        k[0] = (char)0xc3; /* not ASCII: the general reader's key */
        k[1] = (char)0xbc;
    }
    put_str(b, k, n);
}

/* One Any value: mostly the flat object of a todo, else others. */
static void put_value(bytes *b)
{
    char s[300];
    switch (rnd(12)) {
    case 0: /* an int */
        put_u8(b, 125);
        put_uint(b, rnd(1000000));
        return;
    case 1: { /* a string, long now and then (past 255 bytes) */
        size_t n = rnd(3) == 0 ? 200 + rnd(100) : rnd(20);
        memset(s, 'x', n);
        put_u8(b, 119);
        put_str(b, s, n);
        return;
    }
    case 2: /* 1.0 as a float64: not canonical (an int) */
        put_u8(b, 123);
        put(b, "\x3f\xf0\x00\x00\x00\x00\x00\x00", 8);
        return;
    case 3: /* an array of true, null */
        put(b, "\x75\x02\x78\x7e", 4);
        return;
    case 4: /* an object with a key twice: not canonical */
        put(b, "\x76\x02\x01\x61\x78\x01\x61\x79", 8);
        return;
    default: {
        /* {id, title, done} */
        int n = snprintf(s, sizeof s, "task %u", rnd(100000));
        put_u8(b, 118);
        put_u8(b, 3);
        put_str(b, "id", 2);
        put_u8(b, 125);
        put_uint(b, rnd(4) == 0 ? rnd(1u << 24) : rnd(100));
        put_str(b, "title", 5);
        put_u8(b, 119);
        put_str(b, s, (size_t)n);
        put_str(b, "done", 4);
        put_u8(b, rnd(2) ? 120 : 121);
        return;
    }
    }
}

/* Values for a struct of Any content: its length. */
static uint64_t put_values(bytes *b)
{
    uint64_t n = rnd(10) == 0 ? 2 + rnd(2) : 1;
    put_uint(b, n);
    for (uint64_t i = 0; i < n; i++)
        put_value(b);
    return n;
}

/*
 * The structs of client c from w->clock[c] on (n of them) into b; the
 * first one's bytes also into first (when given). `other` allows origins
 * in another client's structs of this update.
 */
static void
put_structs(bytes *b, world *w, int c, size_t n, bool other, bytes *first)
{
    const char *root = roots[rnd(4)];
    for (size_t i = 0; i < n; i++) {
        size_t at = b->n;
        uint64_t clock = w->clock[c], len;
        uint32_t kind = rnd(20);
        if (rnd(6) == 0)
            root = roots[rnd(4)];
        if (kind == 0 && clock > 0) {
            /* an overwrite: its origin in its own client's past */
            put_u8(b, 0x88);
            put_uint(b, w->client[c]);
            put_uint(b, rnd((uint32_t)clock));
            len = put_values(b);
        } else if (kind == 1) {
            /* an origin in another client: known before this update, or
             * (other) made by it */
            int o = (c + 1 + (int)rnd(NCLIENTS - 1)) % NCLIENTS;
            uint64_t known = other ? w->clock[o] : w->applied[o];
            if (known == 0) {
                i--;
                continue;
            }
            put_u8(b, 0x88);
            put_uint(b, w->client[o]);
            put_uint(b, rnd((uint32_t)known));
            len = put_values(b);
        } else if (kind == 2) {
            /* text under root "t" */
            put_u8(b, 0x04);
            put_uint(b, 1);
            put_str(b, "t", 1);
            len = 1 + rnd(5);
            put_str(b, "hello", (size_t)len);
        } else if (kind == 3 && rnd(2)) {
            put_u8(b, 0x00); /* GC */
            len = 1 + rnd(3);
            put_uint(b, len);
        } else if (kind == 4 && rnd(8) == 0) {
            put_u8(b, 0x0a); /* Skip */
            len = 1 + rnd(3);
            put_uint(b, len);
        } else {
            /* a map entry of the shape runs are made of */
            put_u8(b, 0x28);
            put_uint(b, 1);
            put_str(b, root, strlen(root));
            put_key(b);
            len = put_values(b);
        }
        w->clock[c] += len;
        if (i == 0 && first)
            put(first, b->p + at, b->n - at);
    }
}

/*
 * An update of a block for each of some clients, each from its client's
 * state; *prefix gets an update of the first struct of the first block
 * alone. dup: a client's block twice (the later one replaces the earlier).
 */
static void make_update(world *w, bytes *u, bytes *prefix, bool dup)
{
    memcpy(w->applied, w->clock, sizeof(w->clock));
    int order[NCLIENTS] = {0, 1, 2};
    int nb = 1 + (int)rnd(NCLIENTS);
    for (int i = NCLIENTS - 1; i > 0; i--) {
        int j = (int)rnd((uint32_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    bool other = rnd(4) == 0;
    put_uint(u, (uint64_t)nb + dup);
    bytes first = {0};
    for (int i = 0; i < nb + dup; i++) {
        int c = order[i < nb ? i : 0];
        size_t n = 1 + rnd(3) * rnd(40);
        put_uint(u, n);
        put_uint(u, w->client[c]);
        put_uint(u, w->clock[c]);
        if (i == 0) {
            put_uint(prefix, 1);
            put_uint(prefix, 1);
            put_uint(prefix, w->client[c]);
            put_uint(prefix, w->clock[c]);
        }
        put_structs(u, w, c, n, other, i == 0 ? &first : NULL);
    }
    put(prefix, first.p, first.n);
    put_uint(prefix, 0);
    free(first.p);
    /* the delete set: now and then a range of the first client */
    if (rnd(3) == 0 && w->clock[order[0]] > 0) {
        put(u, "\x01", 1);
        put_uint(u, w->client[order[0]]);
        put_uint(u, 1);
        put_uint(u, rnd((uint32_t)w->clock[order[0]]));
        put_uint(u, 1 + rnd(3));
    } else {
        put_uint(u, 0);
    }
}

static void world_init(world *w)
{
    /* the last one takes a varUint of 8 bytes */
    static const uint64_t ids[NCLIENTS] = {7, 300, (1ULL << 52) + 1};
    memset(w, 0, sizeof(*w));
    memcpy(w->client, ids, sizeof(ids));
}

/* ---- parsing ------------------------------------------------------------ */

/* loom__update_parse and loom__update_parse_load (expanded) agree on p;
 * returns whether the update had runs. */
static bool parse_same(const uint8_t *p, size_t n)
{
    loom__rupdate a, b;
    loom_error ea, eb;
    memset(&ea, 0, sizeof(ea));
    memset(&eb, 0, sizeof(eb));
    int ra = loom__update_parse(NULL, p, n, 0, &a, &ea);
    int rb = loom__update_parse_load(NULL, p, n, &b, &eb);
    assert_int_equal(ra, rb);
    if (ra) {
        assert_int_equal(ea.offset, eb.offset);
        assert_string_equal(ea.message, eb.message);
        return false;
    }
    bool runs = b.runs;
    assert_int_equal(loom__rupdate_expand(&b), 0);
    assert_false(b.runs);
    assert_int_equal(a.nblocks, b.nblocks);
    for (size_t i = 0; i < a.nblocks; i++) {
        const loom__rblock *x = &a.blocks[i], *y = &b.blocks[i];
        assert_int_equal(x->n, y->n);
        assert_int_equal(x->client, y->client);
        assert_int_equal(x->end_clock, y->end_clock);
        assert_int_equal(x->end, y->end);
        for (size_t k = 0; k < x->n; k++) {
            assert_int_equal(x->s[k].bits, y->s[k].bits);
            assert_int_equal(x->s[k].offset, y->s[k].offset);
        }
    }
    assert_int_equal(a.nroots, b.nroots);
    for (size_t i = 0; i < a.nroots; i++) {
        assert_int_equal(a.roots[i].len, b.roots[i].len);
        assert_memory_equal(a.roots[i].p, b.roots[i].p, a.roots[i].len);
        assert_int_equal(a.roots[i].keyed, b.roots[i].keyed);
    }
    assert_int_equal(a.self_ref, b.self_ref);
    loom__rupdate_free(&a);
    loom__rupdate_free(&b);
    return runs;
}

static void test_parse_same(void **state)
{
    (void)state;
    rng_state = 1;
    size_t with_runs = 0;
    for (int round = 0; round < 400; round++) {
        world w;
        world_init(&w);
        for (int k = 0; k < 3; k++) {
            bytes u = {0}, pre = {0};
            make_update(&w, &u, &pre, rnd(8) == 0);
            with_runs += parse_same(u.p, u.n);
            parse_same(pre.p, pre.n);
            free(u.p);
            free(pre.p);
        }
    }
    /* most updates have runs: the test is not the general path against
     * itself */
    assert_true(with_runs > 600);
}

/* ---- applying ----------------------------------------------------------- */

static loom_doc *new_doc_alloc(const loom_allocator *a)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 99;
    o.alloc = a;
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(&o, &d), 0);
    return d;
}

static loom_doc *new_doc(void)
{
    return new_doc_alloc(NULL);
}

static void assert_same_doc(loom_doc *a, loom_doc *b)
{
    loom_buf x = {0}, y = {0};
    assert_int_equal(loom_doc_encode_state_as_update(a, NULL, 0, &x, NULL), 0);
    assert_int_equal(loom_doc_encode_state_as_update(b, NULL, 0, &y, NULL), 0);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    loom_buf_free(&x);
    loom_buf_free(&y);
}

static void test_apply_same(void **state)
{
    (void)state;
    rng_state = 2;
    for (int round = 0; round < 300; round++) {
        world w;
        world_init(&w);
        loom_doc *runs = new_doc(), *general = new_doc();
        for (int k = 0; k < 4; k++) {
            bytes u = {0}, pre = {0};
            make_update(&w, &u, &pre, false);
            assert_int_equal(
                loom_doc_apply_update(general, pre.p, pre.n, NULL, NULL), 0);
            assert_int_equal(
                loom_doc_apply_update(general, u.p, u.n, NULL, NULL), 0);
            assert_int_equal(loom_doc_apply_update(runs, u.p, u.n, NULL, NULL),
                             0);
            assert_same_doc(runs, general);
            free(u.p);
            free(pre.p);
        }
        loom_doc_free(runs);
        loom_doc_free(general);
    }
}

/* An update broken at each of some offsets (a byte changed, or cut there)
 * is refused by applying with the general parser's error, and the
 * document stays as it was. */
static void test_apply_errors(void **state)
{
    (void)state;
    rng_state = 3;
    size_t refused = 0;
    for (int round = 0; round < 60; round++) {
        world w;
        world_init(&w);
        loom_doc *d = new_doc();
        bytes u = {0}, pre = {0};
        make_update(&w, &u, &pre, false);
        assert_int_equal(loom_doc_apply_update(d, u.p, u.n, NULL, NULL), 0);
        loom_buf before = {0};
        assert_int_equal(
            loom_doc_encode_state_as_update(d, NULL, 0, &before, NULL), 0);
        free(u.p);
        free(pre.p);
        memset(&u, 0, sizeof(u));
        memset(&pre, 0, sizeof(pre));
        make_update(&w, &u, &pre, false);
        uint8_t *bad = malloc(u.n);
        assert_non_null(bad);
        for (size_t at = 0; at < u.n; at += 1 + rnd(7)) {
            memcpy(bad, u.p, u.n);
            size_t n = u.n;
            if (rnd(4) == 0)
                n = at;
            else
                bad[at] = (uint8_t)(rnd(3) == 0 ? bad[at] ^ 0x80 : rnd(256));
            parse_same(bad, n);
            loom__rupdate x;
            loom_error e1, e2;
            memset(&e1, 0, sizeof(e1));
            memset(&e2, 0, sizeof(e2));
            int rc = loom__update_parse(NULL, bad, n, 0, &x, &e1);
            if (rc == 0) {
                loom__rupdate_free(&x);
                continue; /* still an update (maybe not one to apply) */
            }
            refused++;
            assert_int_equal(loom_doc_apply_update(d, bad, n, NULL, &e2), rc);
            assert_int_equal(e2.offset, e1.offset);
            assert_string_equal(e2.message, e1.message);
            loom_buf now = {0};
            assert_int_equal(
                loom_doc_encode_state_as_update(d, NULL, 0, &now, NULL), 0);
            assert_int_equal(now.len, before.len);
            assert_memory_equal(now.data, before.data, now.len);
            loom_buf_free(&now);
        }
        free(bad);
        free(u.p);
        free(pre.p);
        loom_buf_free(&before);
        loom_doc_free(d);
    }
    assert_true(refused > 500);
}

/* Applying with each allocation failing in turn, to a fresh document (the
 * runs as they are) and after the prefix (the runs expanded). */
static void test_apply_out_of_memory(void **state)
{
    (void)state;
    rng_state = 4;
    for (int round = 0; round < 6; round++) {
        world w;
        world_init(&w);
        bytes u = {0}, pre = {0};
        make_update(&w, &u, &pre, false);
        for (int prefix = 0; prefix < 2; prefix++) {
            bool done = false;
            for (long k = 1; !done; k++) {
                test_alloc c;
                loom_allocator a = test_alloc_init(&c);
                loom_doc *d = new_doc_alloc(&a);
                if (prefix)
                    assert_int_equal(
                        loom_doc_apply_update(d, pre.p, pre.n, NULL, NULL), 0);
                c.fail_at = c.calls + k;
                int rc = loom_doc_apply_update(d, u.p, u.n, NULL, NULL);
                done = c.calls < c.fail_at;
                c.fail_at = 0;
                assert_true(rc == LOOM_OK || rc == LOOM_ENOMEM);
                assert_true(!done || rc == LOOM_OK);
                loom_doc_free(d);
                assert_int_equal(c.live_blocks, 0);
                assert_int_equal(c.size_mismatches, 0);
            }
        }
        free(u.p);
        free(pre.p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_same),
        cmocka_unit_test(test_apply_same),
        cmocka_unit_test(test_apply_errors),
        cmocka_unit_test(test_apply_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
