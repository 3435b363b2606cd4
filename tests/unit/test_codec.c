/*
 * test_codec.c: the doc-free update codec (src/codec) against the vectors
 * made by yjs 13.6.33, plus hostile input.
 *
 *  - every mergeUpdates / diffUpdate / encodeStateVectorFromUpdate check of
 *    the case files under tests/vectors/cases, byte for byte (merge outputs
 *    also through encodeStateVectorFromUpdate);
 *  - extra cases computed with the real yjs (node_cases), covering what the
 *    vectors do not: GC and Item starting at the same ID in several inputs
 *    (V8's sort order matters then), many inputs, non-canonical input that
 *    yjs normalises, slicing inside surrogate pairs;
 *  - parse + rewrite of every final update of cases/ and fuzz/;
 *  - every truncation of every final update, seeded byte flips (LOOM_SEED),
 *    huge counts, unknown refs, zero lengths, clock overflow, trailing bytes;
 *  - the parser's fast paths (map entries, runs of typed text) against
 *    its general struct reader: the same results, errors and records;
 *  - allocation failure at every allocation of merges and diffs;
 *  - LOOM_CODEC_EXTRA=file.json replays more checks in the vector format.
 *
 * All library allocations go through a counting allocator, so a leak or a
 * size mismatch on free fails the test under any build.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "any/any_internal.h"
#include "codec/codec.h"
#include "loom/doc.h"
#include "loom/update.h"
#include "parse_general.h"
#include "testalloc.h"
#include "tjson.h"

#ifndef LOOM_VECTORS_DIR
#    error "LOOM_VECTORS_DIR must be defined"
#endif

/* ---- counting allocator (tools/common/testalloc.h) ----------------------- */

#define ASSERT_NO_LEAK(c)                         \
    do {                                          \
        assert_int_equal((c).live_blocks, 0);     \
        assert_int_equal((c).live_bytes, 0);      \
        assert_int_equal((c).size_mismatches, 0); \
    } while (0)

/* ---- helpers ------------------------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t len;
} bytes;

static bytes unhex(const char *hex)
{
    bytes b = {NULL, 0};
    assert_int_equal(hex_decode(hex, &b.p, &b.len), 0);
    return b;
}

static void assert_buf_hex(const loom_buf *b, const char *hex, const char *what)
{
    char *got = hex_encode(b->data, b->len);
    assert_non_null(got);
    if (strcmp(got, hex) != 0) {
        fprintf(stderr, "%s\n  expected %s\n  got      %s\n", what, hex, got);
    }
    assert_string_equal(got, hex);
    free(got);
}

/* The vector files in a directory, sorted by name. */
typedef struct file_list {
    char **names;
    size_t n;
} file_list;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static file_list list_json(const char *sub)
{
    file_list l = {NULL, 0};
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/%s", LOOM_VECTORS_DIR, sub);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0) {
            continue;
        }
        l.names = realloc(l.names, (l.n + 1) * sizeof(*l.names));
        assert_non_null(l.names);
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        l.names[l.n] = strdup(path);
        assert_non_null(l.names[l.n]);
        l.n++;
    }
    closedir(d);
    qsort(l.names, l.n, sizeof(*l.names), name_cmp);
    return l;
}

static void free_list(file_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->names[i]);
    }
    free(l->names);
}

static json_t *load(const char *path)
{
    json_error_t je;
    json_t *j = tjson_load_file(path, 0, &je);
    if (!j) {
        fprintf(stderr, "%s: %s (line %d)\n", path, je.text, je.line);
    }
    assert_non_null(j);
    return j;
}

/* Every final[].update of cases/ and fuzz/, decoded. */
typedef struct corpus {
    bytes *u;
    char **label;
    size_t n;
} corpus;

static corpus load_finals(void)
{
    corpus c = {NULL, NULL, 0};
    const char *subs[2] = {"cases", "fuzz"};
    for (int s = 0; s < 2; s++) {
        file_list l = list_json(subs[s]);
        for (size_t i = 0; i < l.n; i++) {
            json_t *j = load(l.names[i]);
            json_t *finals = json_object_get(j, "final");
            size_t k;
            json_t *f;
            json_array_foreach(finals, k, f)
            {
                const char *hex =
                    json_string_value(json_object_get(f, "update"));
                assert_non_null(hex);
                c.u = realloc(c.u, (c.n + 1) * sizeof(*c.u));
                c.label = realloc(c.label, (c.n + 1) * sizeof(*c.label));
                assert_non_null(c.u);
                assert_non_null(c.label);
                c.u[c.n] = unhex(hex);
                char lbl[2100];
                snprintf(lbl, sizeof(lbl), "%s final[%zu]", l.names[i], k);
                c.label[c.n] = strdup(lbl);
                c.n++;
            }
            json_decref(j);
        }
        free_list(&l);
    }
    assert_true(c.n > 70);
    return c;
}

static void free_corpus(corpus *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->u[i].p);
        free(c->label[i]);
    }
    free(c->u);
    free(c->label);
}

/* Calls loom_update_merge on hex inputs. */
static int merge_hex(const loom_allocator *a,
                     const char *const *hex,
                     size_t n,
                     loom_buf *out,
                     loom_error *err)
{
    bytes *in = calloc(n ? n : 1, sizeof(*in));
    const uint8_t **p = calloc(n ? n : 1, sizeof(*p));
    size_t *lens = calloc(n ? n : 1, sizeof(*lens));
    assert_true(in && p && lens);
    for (size_t i = 0; i < n; i++) {
        in[i] = unhex(hex[i]);
        p[i] = in[i].p;
        lens[i] = in[i].len;
    }
    int rc = loom_update_merge(a, p, lens, n, out, err);
    for (size_t i = 0; i < n; i++) {
        free(in[i].p);
    }
    free(in);
    free(p);
    free(lens);
    return rc;
}

static void check_merge(const char *const *inputs,
                        size_t n,
                        const char *expect,
                        const char *sv_expect,
                        const char *what)
{
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    loom_buf out = {0};
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc = merge_hex(&a, inputs, n, &out, &err);
    if (rc) {
        fprintf(stderr, "%s: merge failed: %s at %zu of input %zu\n", what,
                err.message, err.offset, err.input);
    }
    assert_int_equal(rc, 0);
    assert_buf_hex(&out, expect, what);
    if (sv_expect) {
        loom_buf sv = {0};
        assert_int_equal(
            loom_update_state_vector(&a, out.data, out.len, &sv, NULL), 0);
        assert_buf_hex(&sv, sv_expect, what);
        loom_buf_free(&sv);
    }
    loom_buf_free(&out);
    ASSERT_NO_LEAK(c);
}

static void check_diff(const char *update,
                       const char *sv,
                       const char *expect,
                       const char *what)
{
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    bytes u = unhex(update), s = unhex(sv);
    loom_buf out = {0};
    loom_error err;
    int rc = loom_update_diff(&a, u.p, u.len, s.p, s.len, &out, &err);
    if (rc) {
        fprintf(stderr, "%s: diff failed: %s at %zu of input %zu\n", what,
                err.message, err.offset, err.input);
    }
    assert_int_equal(rc, 0);
    assert_buf_hex(&out, expect, what);
    loom_buf_free(&out);
    free(u.p);
    free(s.p);
    ASSERT_NO_LEAK(c);
}

static void check_sv(const char *update, const char *expect, const char *what)
{
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    bytes u = unhex(update);
    loom_buf out = {0};
    assert_int_equal(loom_update_state_vector(&a, u.p, u.len, &out, NULL), 0);
    assert_buf_hex(&out, expect, what);
    loom_buf_free(&out);
    free(u.p);
    ASSERT_NO_LEAK(c);
}

/* ---- vector checks ----------------------------------------------------- */

static void test_vector_checks(void **state)
{
    (void)state;
    file_list l = list_json("cases");
    size_t merges = 0, diffs = 0, svs = 0;
    for (size_t i = 0; i < l.n; i++) {
        json_t *j = load(l.names[i]);
        size_t k;
        json_t *ch;
        json_array_foreach(json_object_get(j, "checks"), k, ch)
        {
            const char *fn = json_string_value(json_object_get(ch, "fn"));
            char what[2200];
            snprintf(what, sizeof(what), "%s checks[%zu] %s", l.names[i], k,
                     fn);
            if (strcmp(fn, "mergeUpdates") == 0) {
                json_t *inputs = json_object_get(ch, "inputs");
                size_t n = json_array_size(inputs);
                const char **hex = calloc(n ? n : 1, sizeof(*hex));
                for (size_t q = 0; q < n; q++) {
                    hex[q] = json_string_value(json_array_get(inputs, q));
                }
                check_merge(hex, n,
                            json_string_value(json_object_get(ch, "output")),
                            json_string_value(
                                json_object_get(ch, "stateVectorFromOutput")),
                            what);
                free(hex);
                merges++;
            } else if (strcmp(fn, "diffUpdate") == 0) {
                check_diff(
                    json_string_value(json_object_get(ch, "update")),
                    json_string_value(json_object_get(ch, "stateVector")),
                    json_string_value(json_object_get(ch, "output")), what);
                diffs++;
            } else if (strcmp(fn, "encodeStateVectorFromUpdate") == 0) {
                check_sv(json_string_value(json_object_get(ch, "update")),
                         json_string_value(json_object_get(ch, "output")),
                         what);
                svs++;
            }
        }
        json_decref(j);
    }
    free_list(&l);
    print_message("vector checks passed: %zu mergeUpdates, %zu diffUpdate, "
                  "%zu encodeStateVectorFromUpdate\n",
                  merges, diffs, svs);
    assert_true(merges >= 14 && diffs >= 6 && svs >= 5);
}

/*
 * LOOM_CODEC_EXTRA=file.json replays more checks in the same format (what
 * a node script computed with the real yjs), reporting every mismatch.
 */
static int replay_one(json_t *ch, size_t idx)
{
    const char *fn = json_string_value(json_object_get(ch, "fn"));
    const char *expect = json_string_value(json_object_get(ch, "output"));
    loom_buf out = {0};
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc;
    if (strcmp(fn, "mergeUpdates") == 0) {
        json_t *inputs = json_object_get(ch, "inputs");
        size_t n = json_array_size(inputs);
        const char **hex = calloc(n ? n : 1, sizeof(*hex));
        for (size_t q = 0; q < n; q++) {
            hex[q] = json_string_value(json_array_get(inputs, q));
        }
        rc = merge_hex(NULL, hex, n, &out, &err);
        free(hex);
    } else if (strcmp(fn, "diffUpdate") == 0) {
        bytes u = unhex(json_string_value(json_object_get(ch, "update")));
        bytes s = unhex(json_string_value(json_object_get(ch, "stateVector")));
        rc = loom_update_diff(NULL, u.p, u.len, s.p, s.len, &out, &err);
        free(u.p);
        free(s.p);
    } else {
        bytes u = unhex(json_string_value(json_object_get(ch, "update")));
        rc = loom_update_state_vector(NULL, u.p, u.len, &out, &err);
        free(u.p);
    }
    int bad = 0;
    if (rc) {
        fprintf(stderr, "extra[%zu] %s: error %d %s at %zu of input %zu\n", idx,
                fn, rc, err.message, err.offset, err.input);
        bad = 1;
    } else {
        char *got = hex_encode(out.data, out.len);
        if (strcmp(got, expect) != 0) {
            fprintf(stderr,
                    "extra[%zu] %s mismatch\n  expected %s\n  got      %s\n",
                    idx, fn, expect, got);
            bad = 1;
        }
        free(got);
    }
    loom_buf_free(&out);
    return bad;
}

static void test_extra_cases(void **state)
{
    (void)state;
    const char *path = getenv("LOOM_CODEC_EXTRA");
    if (!path) {
        return;
    }
    json_t *j = load(path);
    size_t k, bad = 0, n = 0;
    json_t *ch;
    json_array_foreach(json_object_get(j, "checks"), k, ch)
    {
        bad += (size_t)replay_one(ch, k);
        n++;
    }
    json_decref(j);
    print_message("extra cases: %zu of %zu passed\n", n - bad, n);
    assert_int_equal(bad, 0);
}

/* ---- cases computed with yjs ------------------------------------------------ */

/*
 * Outputs of yjs 13.6.33 (mergeUpdates, diffUpdate, encodeStateVectorFromUpdate)
 * for inputs the vectors do not cover, made with a node script against the
 * npm package. `args` holds space-separated hex: M = the updates to merge,
 * D = update and state vector, S = the update.
 *
 * - GC/Item ties: a GC (children of a deleted type) and an Item starting at
 *   the same ID in two inputs. yjs's comparator answers "first" both ways,
 *   so the result follows V8's sort step by step; a stable sort gets the
 *   first two wrong, insertion sort alone the 72-input one.
 * - Non-canonical input that yjs decodes and re-encodes: Any numbers with a
 *   wider tag, object key order and repeats, JSON text with blanks, subdoc
 *   options, GC info bits, parentInfo other than 0/1, non-minimal varUints,
 *   delete sets with repeated clients or zero-length ranges, the parentSub
 *   flag of an item with an origin (dropped), Skips.
 */
typedef struct node_case {
    char fn;
    const char *note;
    const char *args;
    const char *output;
} node_case;

static const node_case node_cases[] = {
    {'M', "GC/Item tie, V8 insertion sort order",
     "01014d070012014d010019 01014d0727004d0301740200",
     "01024d0727004d030174020011014d010019"},
    {'M', "GC/Item tie, V8 insertion sort order",
     "0103050300012101016d026e310100010105010006 "
     "0101050328000500026b32017d0200",
     "0103050328000500026b32017d022101016d026e310100010105010006"},
    {'M', "GC/Item ties among 72 inputs, V8 TimSort merges",
     "000180d0acf30e011504 "
     "010580d0acf30e1100042101016d026e320100032101016d026e330100020180d0a"
     "cf30e01001c "
     "010580d0acf30e0300122101016d026e320100032101016d026e330100020180d0acf30e0"
     "100"
     "1c "
     "010780d0acf30e0100012101016d026e310100122101016d026e320100032101016d026e3"
     "30100020180d"
     "0acf30e01001c 010380d0acf30e1800012101016d026e330100020180d0acf30e01001c "
     "010180d0acf30e0"
     "8040080d0acf30e070d6162632064656678f09f98807900 "
     "010580d0acf30e1400012101016d026e32010003"
     "2101016d026e330100020180d0acf30e01001c "
     "010180d0acf30e01280080d0acf30e00026b30017d0000 01"
     "0580d0acf30e1400012101016d026e320100032101016d026e330100020180d0acf30e010"
     "01c 010180d0acf"
     "30e1a00020180d0acf30e01001c "
     "010580d0acf30e1000052101016d026e320100032101016d026e33010002"
     "0180d0acf30e01001c "
     "010180d0acf30e08040080d0acf30e070d6162632064656678f09f98807900 010580"
     "d0acf30e08000d2101016d026e320100032101016d026e330100020180d0acf30e01001c "
     "010480d0acf30e1"
     "52101016d026e320100032101016d026e330100020180d0acf30e01001c "
     "010180d0acf30e1b280080d0acf3"
     "0e19026b31017d0100 "
     "010780d0acf30e0100012101016d026e310100122101016d026e320100032101016d0"
     "26e330100020180d0acf30e01001c "
     "010580d0acf30e06000f2101016d026e320100032101016d026e330100"
     "020180d0acf30e01001c 010180d0acf30e192701016d026e330100 "
     "010180d0acf30e134480d0acf30e0802"
     "626300 010180d0acf30e17280080d0acf30e15026b31017d0100 "
     "010580d0acf30e0c00092101016d026e32"
     "0100032101016d026e330100020180d0acf30e01001c "
     "010580d0acf30e0e00072101016d026e32010003210"
     "1016d026e330100020180d0acf30e01001c "
     "010580d0acf30e1400012101016d026e320100032101016d026e"
     "330100020180d0acf30e01001c "
     "010180d0acf30e18280080d0acf30e15026b3201770362636100 010180d0"
     "acf30e01280080d0acf30e00026b30017d0000 "
     "010380d0acf30e1600032101016d026e330100020180d0acf"
     "30e01001c 010180d0acf30e022701016d026e310100 "
     "010180d0acf30e01280080d0acf30e00026b30017d0"
     "000 "
     "010580d0acf30e08000d2101016d026e320100032101016d026e330100020180d0acf30e0"
     "1001c 01058"
     "0d0acf30e1300022101016d026e320100032101016d026e330100020180d0acf30e01001c"
     " 010580d0acf30e"
     "0c00092101016d026e320100032101016d026e330100020180d0acf30e01001c "
     "010380d0acf30e180001210"
     "1016d026e330100020180d0acf30e01001c "
     "010380d0acf30e1600032101016d026e330100020180d0acf30e"
     "01001c "
     "010580d0acf30e0b000a2101016d026e320100032101016d026e330100020180d0acf30e0"
     "1001c 01"
     "0580d0acf30e09000c2101016d026e320100032101016d026e330100020180d0acf30e010"
     "01c 010580d0acf"
     "30e08000d2101016d026e320100032101016d026e330100020180d0acf30e01001c "
     "010580d0acf30e0c0009"
     "2101016d026e320100032101016d026e330100020180d0acf30e01001c "
     "010180d0acf30e17280080d0acf30"
     "e15026b31017d0100 010180d0acf30e1b280080d0acf30e19026b31017d0100 "
     "010280d0acf30e192101016"
     "d026e330100020180d0acf30e01001c "
     "010580d0acf30e1300022101016d026e320100032101016d026e3301"
     "00020180d0acf30e01001c "
     "010580d0acf30e08000d2101016d026e320100032101016d026e330100020180d"
     "0acf30e01001c 000180d0acf30e011903 "
     "010580d0acf30e0f00062101016d026e320100032101016d026e3"
     "30100020180d0acf30e01001c 010180d0acf30e07270080d0acf30e0201740200 "
     "010180d0acf30e1927010"
     "16d026e330100 010380d0acf30e1800012101016d026e330100020180d0acf30e01001c "
     "010180d0acf30e1"
     "b00010180d0acf30e01001c 010180d0acf30e17280080d0acf30e15026b31017d0100 "
     "010580d0acf30e090"
     "00c2101016d026e320100032101016d026e330100020180d0acf30e01001c "
     "010180d0acf30e1b00010180d0"
     "acf30e01001c "
     "010580d0acf30e1000052101016d026e320100032101016d026e330100020180d0acf30e0"
     "10"
     "01c 000180d0acf30e010002 "
     "010580d0acf30e0c00092101016d026e320100032101016d026e33010002018"
     "0d0acf30e01001c "
     "010580d0acf30e0a000b2101016d026e320100032101016d026e330100020180d0acf30e"
     "01001c "
     "010580d0acf30e0b000a2101016d026e320100032101016d026e330100020180d0acf30e0"
     "1001c 01"
     "0180d0acf30e134480d0acf30e0802626300 000180d0acf30e011903 "
     "010180d0acf30e134480d0acf30e08"
     "02626300 010380d0acf30e1800012101016d026e330100020180d0acf30e01001c "
     "010180d0acf30e134480"
     "d0acf30e0802626300 "
     "010380d0acf30e1700022101016d026e330100020180d0acf30e01001c 010580d0ac"
     "f30e06000f2101016d026e320100032101016d026e330100020180d0acf30e01001c "
     "010580d0acf30e0a000"
     "b2101016d026e320100032101016d026e330100020180d0acf30e01001c "
     "010180d0acf30e1a280080d0acf3"
     "0e19026b3001771068c3a96c6c6fe697a5e69cacf09f988000 "
     "010180d0acf30e1a00020180d0acf30e01001"
     "c "
     "010580d0acf30e0d00082101016d026e320100032101016d026e330100020180d0acf30e0"
     "1001c 010180d"
     "0acf30e1b280080d0acf30e19026b31017d0100 "
     "010180d0acf30e08040080d0acf30e070d61626320646566"
     "78f09f98807900 "
     "010580d0acf30e0f00062101016d026e320100032101016d026e330100020180d0acf30e0"
     "1001c 000180d0acf30e010213 010180d0acf30e07270080d0acf30e0201740200",
     "010780d0acf30e01280080d0acf30e00026b30017d002101016d026e310100122101016d0"
     "26e320100032101"
     "016d026e330100020180d0acf30e01001c"},
    {'M', "item a8 (parentSub flag with origin)", "01010500a80509017d0100 0000",
     "01010500880509017d0100"},
    {'D', "item a8 (parentSub flag with origin)", "01010500a80509017d0100 00",
     "01010500880509017d0100"},
    {'D', "item a8 (parentSub flag with origin)",
     "01010500a80509017d0100 010501", "0000"},
    {'D', "item a8 (parentSub flag with origin)",
     "01010500a80509017d0100 010502", "0000"},
    {'S', "item a8 (parentSub flag with origin)", "01010500a80509017d0100",
     "010501"},
    {'M', "item 68", "01010500680509017d0100 0000", "01010500480509017d0100"},
    {'D', "item 68", "01010500680509017d0100 00", "01010500480509017d0100"},
    {'D', "item 68", "01010500680509017d0100 010501", "0000"},
    {'D', "item 68", "01010500680509017d0100 010502", "0000"},
    {'S', "item 68", "01010500680509017d0100", "010501"},
    {'M', "any f64one",
     "0101050028010172026b30037b3ff00000000000007d017b3ff000000000000000 0000",
     "0101050028010172026b30037d017d017d0100"},
    {'D', "any f64one",
     "0101050028010172026b30037b3ff00000000000007d017b3ff000000000000000 00",
     "0101050028010172026b30037d017d017d0100"},
    {'D', "any f64one",
     "0101050028010172026b30037b3ff00000000000007d017b3ff000000000000000 "
     "010501",
     "01010501a80500027d017d0100"},
    {'D', "any f64one",
     "0101050028010172026b30037b3ff00000000000007d017b3ff000000000000000 "
     "010502",
     "01010502a80501017d0100"},
    {'S', "any f64one",
     "0101050028010172026b30037b3ff00000000000007d017b3ff000000000000000",
     "010503"},
    {'M', "any f32nan",
     "0101050028010172026b36037c7fc000007d017c7fc0000000 0000",
     "0101050028010172026b36037b7ff80000000000007d017b7ff800000000000000"},
    {'D', "any f32nan", "0101050028010172026b36037c7fc000007d017c7fc0000000 00",
     "0101050028010172026b36037b7ff80000000000007d017b7ff800000000000000"},
    {'D', "any f32nan",
     "0101050028010172026b36037c7fc000007d017c7fc0000000 010501",
     "01010501a80500027d017b7ff800000000000000"},
    {'D', "any f32nan",
     "0101050028010172026b36037c7fc000007d017c7fc0000000 010502",
     "01010502a80501017b7ff800000000000000"},
    {'S', "any f32nan", "0101050028010172026b36037c7fc000007d017c7fc0000000",
     "010503"},
    {'M', "any f64half",
     "0101050028010172026b31037b3fe00000000000007d017b3fe000000000000000 0000",
     "0101050028010172026b31037c3f0000007d017c3f00000000"},
    {'D', "any f64half",
     "0101050028010172026b31037b3fe00000000000007d017b3fe000000000000000 00",
     "0101050028010172026b31037c3f0000007d017c3f00000000"},
    {'D', "any f64half",
     "0101050028010172026b31037b3fe00000000000007d017b3fe000000000000000 "
     "010501",
     "01010501a80500027d017c3f00000000"},
    {'D', "any f64half",
     "0101050028010172026b31037b3fe00000000000007d017b3fe000000000000000 "
     "010502",
     "01010502a80501017c3f00000000"},
    {'S', "any f64half",
     "0101050028010172026b31037b3fe00000000000007d017b3fe000000000000000",
     "010503"},
    {'M', "any bigvarint",
     "0101050028010172036b3131037dffffffffff0f7d017dffffffffff0f00 0000",
     "0101050028010172036b3131037bc24fffffffff80007d017bc24fffffffff800000"},
    {'D', "any bigvarint",
     "0101050028010172036b3131037dffffffffff0f7d017dffffffffff0f00 00",
     "0101050028010172036b3131037bc24fffffffff80007d017bc24fffffffff800000"},
    {'D', "any bigvarint",
     "0101050028010172036b3131037dffffffffff0f7d017dffffffffff0f00 010501",
     "01010501a80500027d017bc24fffffffff800000"},
    {'D', "any bigvarint",
     "0101050028010172036b3131037dffffffffff0f7d017dffffffffff0f00 010502",
     "01010502a80501017bc24fffffffff800000"},
    {'S', "any bigvarint",
     "0101050028010172036b3131037dffffffffff0f7d017dffffffffff0f00", "010503"},
    {'M', "any objorder",
     "0101050028010172036b313603760301627d0101317d0201617d037d01760301627d01013"
     "17d0201617d0300"
     " 0000",
     "0101050028010172036b313603760301317d0201627d0101617d037d01760301317d02016"
     "27d0101617d0300"},
    {'D', "any objorder",
     "0101050028010172036b313603760301627d0101317d0201617d037d01760301627d01013"
     "17d0201617d0300"
     " 00",
     "0101050028010172036b313603760301317d0201627d0101617d037d01760301317d02016"
     "27d0101617d0300"},
    {'D', "any objorder",
     "0101050028010172036b313603760301627d0101317d0201617d037d01760301627d01013"
     "17d0201617d0300"
     " 010501",
     "01010501a80500027d01760301317d0201627d0101617d0300"},
    {'D', "any objorder",
     "0101050028010172036b313603760301627d0101317d0201617d037d01760301627d01013"
     "17d0201617d0300"
     " 010502",
     "01010502a8050101760301317d0201627d0101617d0300"},
    {'S', "any objorder",
     "0101050028010172036b313603760301627d0101317d0201617d037d01760301627d01013"
     "17d0201617d0300",
     "010503"},
    {'M', "any objdup",
     "0101050028010172036b313703760201617d0101617d027d01760201617d0101617d0200 "
     "0000",
     "0101050028010172036b313703760101617d027d01760101617d0200"},
    {'D', "any objdup",
     "0101050028010172036b313703760201617d0101617d027d01760201617d0101617d0200 "
     "00",
     "0101050028010172036b313703760101617d027d01760101617d0200"},
    {'D', "any objdup",
     "0101050028010172036b313703760201617d0101617d027d01760201617d0101617d0200 "
     "010501",
     "01010501a80500027d01760101617d0200"},
    {'D', "any objdup",
     "0101050028010172036b313703760201617d0101617d027d01760201617d0101617d0200 "
     "010502",
     "01010502a8050101760101617d0200"},
    {'S', "any objdup",
     "0101050028010172036b313703760201617d0101617d027d01760201617d0101617d0200",
     "010503"},
    {'M', "any negzero", "0101050028010172026b39037d407d017d4000 0000",
     "0101050028010172026b39037d407d017d4000"},
    {'D', "any negzero", "0101050028010172026b39037d407d017d4000 00",
     "0101050028010172026b39037d407d017d4000"},
    {'D', "any negzero", "0101050028010172026b39037d407d017d4000 010501",
     "01010501a80500027d017d4000"},
    {'D', "any negzero", "0101050028010172026b39037d407d017d4000 010502",
     "01010502a80501017d4000"},
    {'S', "any negzero", "0101050028010172026b39037d407d017d4000", "010503"},
    {'M', "any f64negzero",
     "0101050028010172036b3130037b80000000000000007d017b800000000000000000 "
     "0000",
     "0101050028010172036b3130037d407d017d4000"},
    {'D', "any f64negzero",
     "0101050028010172036b3130037b80000000000000007d017b800000000000000000 00",
     "0101050028010172036b3130037d407d017d4000"},
    {'D', "any f64negzero",
     "0101050028010172036b3130037b80000000000000007d017b800000000000000000 "
     "010501",
     "01010501a80500027d017d4000"},
    {'D', "any f64negzero",
     "0101050028010172036b3130037b80000000000000007d017b800000000000000000 "
     "010502",
     "01010502a80501017d4000"},
    {'S', "any f64negzero",
     "0101050028010172036b3130037b80000000000000007d017b800000000000000000",
     "010503"},
    {'M', "json {\"b\":1,\"a\":[1, 2]}",
     "010105000201017203127b2262223a312c2261223a5b312c20325d7d0131127b2262223a3"
     "12c2261223a5b31"
     "2c20325d7d00 0000",
     "010105000201017203117b2262223a312c2261223a5b312c325d7d0131117b2262223a312"
     "c2261223a5b312c"
     "325d7d00"},
    {'D', "json {\"b\":1,\"a\":[1, 2]}",
     "010105000201017203127b2262223a312c2261223a5b312c20325d7d0131127b2262223a3"
     "12c2261223a5b31"
     "2c20325d7d00 00",
     "010105000201017203117b2262223a312c2261223a5b312c325d7d0131117b2262223a312"
     "c2261223a5b312c"
     "325d7d00"},
    {'D', "json {\"b\":1,\"a\":[1, 2]}",
     "010105000201017203127b2262223a312c2261223a5b312c20325d7d0131127b2262223a3"
     "12c2261223a5b31"
     "2c20325d7d00 010501",
     "01010501820500020131117b2262223a312c2261223a5b312c325d7d00"},
    {'D', "json {\"b\":1,\"a\":[1, 2]}",
     "010105000201017203127b2262223a312c2261223a5b312c20325d7d0131127b2262223a3"
     "12c2261223a5b31"
     "2c20325d7d00 010502",
     "0101050282050101117b2262223a312c2261223a5b312c325d7d00"},
    {'S', "json {\"b\":1,\"a\":[1, 2]}",
     "010105000201017203127b2262223a312c2261223a5b312c20325d7d0131127b2262223a3"
     "12c2261223a5b31"
     "2c20325d7d00",
     "010503"},
    {'M', "json  1.0 ", "0101050002010172030520312e302001310520312e302000 0000",
     "01010500020101720301310131013100"},
    {'D', "json  1.0 ", "0101050002010172030520312e302001310520312e302000 00",
     "01010500020101720301310131013100"},
    {'D', "json  1.0 ",
     "0101050002010172030520312e302001310520312e302000 010501",
     "01010501820500020131013100"},
    {'D', "json  1.0 ",
     "0101050002010172030520312e302001310520312e302000 010502",
     "0101050282050101013100"},
    {'S', "json  1.0 ", "0101050002010172030520312e302001310520312e302000",
     "010503"},
    {'M', "json undefined",
     "01010500020101720309756e646566696e6564013109756e646566696e656400 0000",
     "01010500020101720309756e646566696e6564013109756e646566696e656400"},
    {'D', "json undefined",
     "01010500020101720309756e646566696e6564013109756e646566696e656400 00",
     "01010500020101720309756e646566696e6564013109756e646566696e656400"},
    {'D', "json undefined",
     "01010500020101720309756e646566696e6564013109756e646566696e656400 010501",
     "0101050182050002013109756e646566696e656400"},
    {'D', "json undefined",
     "01010500020101720309756e646566696e6564013109756e646566696e656400 010502",
     "010105028205010109756e646566696e656400"},
    {'S', "json undefined",
     "01010500020101720309756e646566696e6564013109756e646566696e656400",
     "010503"},
    {'M', "json \"\\ud83d\\ude00\"",
     "0101050002010172030e225c75643833645c75646530302201310e225c75643833645c756"
     "46530302200 000"
     "0",
     "0101050002010172030622f09f98802201310622f09f98802200"},
    {'D', "json \"\\ud83d\\ude00\"",
     "0101050002010172030e225c75643833645c75646530302201310e225c75643833645c756"
     "46530302200 00",
     "0101050002010172030622f09f98802201310622f09f98802200"},
    {'D', "json \"\\ud83d\\ude00\"",
     "0101050002010172030e225c75643833645c75646530302201310e225c75643833645c756"
     "46530302200 010"
     "501",
     "010105018205000201310622f09f98802200"},
    {'D', "json \"\\ud83d\\ude00\"",
     "0101050002010172030e225c75643833645c75646530302201310e225c75643833645c756"
     "46530302200 010"
     "502",
     "01010502820501010622f09f98802200"},
    {'S', "json \"\\ud83d\\ude00\"",
     "0101050002010172030e225c75643833645c75646530302201310e225c75643833645c756"
     "46530302200",
     "010503"},
    {'M', "embed 1E400", "010105000501017205314534303000 0000",
     "0101050005010172046e756c6c00"},
    {'D', "embed 1E400", "010105000501017205314534303000 00",
     "0101050005010172046e756c6c00"},
    {'D', "embed 1E400", "010105000501017205314534303000 010501", "0000"},
    {'D', "embed 1E400", "010105000501017205314534303000 010502", "0000"},
    {'S', "embed 1E400", "010105000501017205314534303000", "010501"},
    {'M', "format {\"2\":1,\"1\":2,\"b\":3,\"a\":4}",
     "010105000601017204626f6c64197b2232223a312c2231223a322c2262223a332c2261223"
     "a347d00 0000",
     "010105000601017204626f6c64197b2231223a322c2232223a312c2262223a332c2261223"
     "a347d00"},
    {'D', "format {\"2\":1,\"1\":2,\"b\":3,\"a\":4}",
     "010105000601017204626f6c64197b2232223a312c2231223a322c2262223a332c2261223"
     "a347d00 00",
     "010105000601017204626f6c64197b2231223a322c2232223a312c2262223a332c2261223"
     "a347d00"},
    {'D', "format {\"2\":1,\"1\":2,\"b\":3,\"a\":4}",
     "010105000601017204626f6c64197b2232223a312c2231223a322c2262223a332c2261223"
     "a347d00 010501",
     "0000"},
    {'D', "format {\"2\":1,\"1\":2,\"b\":3,\"a\":4}",
     "010105000601017204626f6c64197b2232223a312c2231223a322c2262223a332c2261223"
     "a347d00 010502",
     "0000"},
    {'S', "format {\"2\":1,\"1\":2,\"b\":3,\"a\":4}",
     "010105000601017204626f6c64197b2232223a312c2231223a322c2262223a332c2261223"
     "a347d00",
     "010501"},
    {'M', "doc all",
     "0101050009010172087468652d677569647604046d6574617d07086175746f4c6f6164780"
     "267637901787e00"
     " 0000",
     "0101050009010172087468652d67756964760302676379086175746f4c6f616478046d657"
     "4617d0700"},
    {'D', "doc all",
     "0101050009010172087468652d677569647604046d6574617d07086175746f4c6f6164780"
     "267637901787e00"
     " 00",
     "0101050009010172087468652d67756964760302676379086175746f4c6f616478046d657"
     "4617d0700"},
    {'D', "doc all",
     "0101050009010172087468652d677569647604046d6574617d07086175746f4c6f6164780"
     "267637901787e00"
     " 010501",
     "0000"},
    {'D', "doc all",
     "0101050009010172087468652d677569647604046d6574617d07086175746f4c6f6164780"
     "267637901787e00"
     " 010502",
     "0000"},
    {'S', "doc all",
     "0101050009010172087468652d677569647604046d6574617d07086175746f4c6f6164780"
     "267637901787e00",
     "010501"},
    {'M', "doc guid",
     "0101050009010172087468652d677569647601046775696477056f7468657200 0000",
     "0101050009010172056f74686572760000"},
    {'D', "doc guid",
     "0101050009010172087468652d677569647601046775696477056f7468657200 00",
     "0101050009010172056f74686572760000"},
    {'D', "doc guid",
     "0101050009010172087468652d677569647601046775696477056f7468657200 010501",
     "0000"},
    {'D', "doc guid",
     "0101050009010172087468652d677569647601046775696477056f7468657200 010502",
     "0000"},
    {'S', "doc guid",
     "0101050009010172087468652d677569647601046775696477056f7468657200",
     "010501"},
    {'M', "doc gc0", "0101050009010172087468652d6775696476010267637d0000 0000",
     "0101050009010172087468652d6775696476010267637900"},
    {'D', "doc gc0", "0101050009010172087468652d6775696476010267637d0000 00",
     "0101050009010172087468652d6775696476010267637900"},
    {'D', "doc gc0",
     "0101050009010172087468652d6775696476010267637d0000 010501", "0000"},
    {'D', "doc gc0",
     "0101050009010172087468652d6775696476010267637d0000 010502", "0000"},
    {'S', "doc gc0", "0101050009010172087468652d6775696476010267637d0000",
     "010501"},
    {'M', "doc gcundef",
     "0101050009010172087468652d6775696476010267637f00 0000",
     "0101050009010172087468652d67756964760000"},
    {'D', "doc gcundef", "0101050009010172087468652d6775696476010267637f00 00",
     "0101050009010172087468652d67756964760000"},
    {'D', "doc gcundef",
     "0101050009010172087468652d6775696476010267637f00 010501", "0000"},
    {'D', "doc gcundef",
     "0101050009010172087468652d6775696476010267637f00 010502", "0000"},
    {'S', "doc gcundef", "0101050009010172087468652d6775696476010267637f00",
     "010501"},
    {'M', "doc num", "0101050009010172087468652d677569647d0500 0000",
     "0101050009010172087468652d67756964760000"},
    {'D', "doc num", "0101050009010172087468652d677569647d0500 00",
     "0101050009010172087468652d67756964760000"},
    {'D', "doc num", "0101050009010172087468652d677569647d0500 010501", "0000"},
    {'D', "doc num", "0101050009010172087468652d677569647d0500 010502", "0000"},
    {'S', "doc num", "0101050009010172087468652d677569647d0500", "010501"},
    {'M', "doc metanull",
     "0101050009010172087468652d677569647601046d6574617e00 0000",
     "0101050009010172087468652d67756964760000"},
    {'D', "doc metanull",
     "0101050009010172087468652d677569647601046d6574617e00 00",
     "0101050009010172087468652d67756964760000"},
    {'D', "doc metanull",
     "0101050009010172087468652d677569647601046d6574617e00 010501", "0000"},
    {'D', "doc metanull",
     "0101050009010172087468652d677569647601046d6574617e00 010502", "0000"},
    {'S', "doc metanull",
     "0101050009010172087468652d677569647601046d6574617e00", "010501"},
    {'M', "doc shouldload",
     "0101050009010172087468652d6775696476010a73686f756c644c6f61647800 0000",
     "0101050009010172087468652d67756964760000"},
    {'D', "doc shouldload",
     "0101050009010172087468652d6775696476010a73686f756c644c6f61647800 00",
     "0101050009010172087468652d67756964760000"},
    {'D', "doc shouldload",
     "0101050009010172087468652d6775696476010a73686f756c644c6f61647800 010501",
     "0000"},
    {'D', "doc shouldload",
     "0101050009010172087468652d6775696476010a73686f756c644c6f61647800 010502",
     "0000"},
    {'S', "doc shouldload",
     "0101050009010172087468652d6775696476010a73686f756c644c6f61647800",
     "010501"},
    {'M', "type 3", "010105000701017203046e616d6500 0000",
     "010105000701017203046e616d6500"},
    {'D', "type 3", "010105000701017203046e616d6500 00",
     "010105000701017203046e616d6500"},
    {'D', "type 3", "010105000701017203046e616d6500 010501", "0000"},
    {'D', "type 3", "010105000701017203046e616d6500 010502", "0000"},
    {'S', "type 3", "010105000701017203046e616d6500", "010501"},
    {'M', "type 5", "010105000701017205046e616d6500 0000",
     "010105000701017205046e616d6500"},
    {'D', "type 5", "010105000701017205046e616d6500 00",
     "010105000701017205046e616d6500"},
    {'D', "type 5", "010105000701017205046e616d6500 010501", "0000"},
    {'D', "type 5", "010105000701017205046e616d6500 010502", "0000"},
    {'S', "type 5", "010105000701017205046e616d6500", "010501"},
    {'M', "GC info 0x80", "010205008003880502017d0100 0000",
     "010205000003880502017d0100"},
    {'D', "GC info 0x80", "010205008003880502017d0100 00",
     "010205000003880502017d0100"},
    {'D', "GC info 0x80", "010205008003880502017d0100 010501",
     "010205010002880502017d0100"},
    {'D', "GC info 0x80", "010205008003880502017d0100 010502",
     "010205020001880502017d0100"},
    {'S', "GC info 0x80", "010205008003880502017d0100", "010504"},
    {'M', "GC info 0x20, overlong len", "0101050020830000 0000",
     "01010500000300"},
    {'D', "GC info 0x20, overlong len", "0101050020830000 00",
     "01010500000300"},
    {'D', "GC info 0x20, overlong len", "0101050020830000 010501",
     "01010501000200"},
    {'D', "GC info 0x20, overlong len", "0101050020830000 010502",
     "01010502000100"},
    {'S', "GC info 0x20, overlong len", "0101050020830000", "010503"},
    {'M', "parentInfo 7", "0101050008070903027d017d0200 0000",
     "0101050008000903027d017d0200"},
    {'D', "parentInfo 7", "0101050008070903027d017d0200 00",
     "0101050008000903027d017d0200"},
    {'D', "parentInfo 7", "0101050008070903027d017d0200 010501",
     "01010501880500017d0200"},
    {'D', "parentInfo 7", "0101050008070903027d017d0200 010502", "0000"},
    {'S', "parentInfo 7", "0101050008070903027d017d0200", "010502"},
    {'M', "id parent with sub", "0101050028000903036b6579027d017d0200 0000",
     "0101050028000903036b6579027d017d0200"},
    {'D', "id parent with sub", "0101050028000903036b6579027d017d0200 00",
     "0101050028000903036b6579027d017d0200"},
    {'D', "id parent with sub", "0101050028000903036b6579027d017d0200 010501",
     "01010501a80500017d0200"},
    {'D', "id parent with sub", "0101050028000903036b6579027d017d0200 010502",
     "0000"},
    {'S', "id parent with sub", "0101050028000903036b6579027d017d0200",
     "010502"},
    {'M', "overlong origin and count", "01010500888500830082007d017d0200 0000",
     "01010500880503027d017d0200"},
    {'D', "overlong origin and count", "01010500888500830082007d017d0200 00",
     "01010500880503027d017d0200"},
    {'D', "overlong origin and count",
     "01010500888500830082007d017d0200 010501", "01010501880500017d0200"},
    {'D', "overlong origin and count",
     "01010500888500830082007d017d0200 010502", "0000"},
    {'S', "overlong origin and count", "01010500888500830082007d017d0200",
     "010502"},
    {'M', "Skip inside", "01030500040101720261620a0284050102636400 0000",
     "01030500040101720261620a0284050102636400"},
    {'D', "Skip inside", "01030500040101720261620a0284050102636400 00",
     "01030500040101720261620a0284050102636400"},
    {'D', "Skip inside", "01030500040101720261620a0284050102636400 010501",
     "0103050184050001620a0284050102636400"},
    {'D', "Skip inside", "01030500040101720261620a0284050102636400 010502",
     "0101050484050102636400"},
    {'S', "Skip inside", "01030500040101720261620a0284050102636400", "010502"},
    {'M', "Skip first", "010205000a0284050102636400 0000",
     "0101050284050102636400"},
    {'D', "Skip first", "010205000a0284050102636400 00",
     "0101050284050102636400"},
    {'D', "Skip first", "010205000a0284050102636400 010501",
     "0101050284050102636400"},
    {'D', "Skip first", "010205000a0284050102636400 010502",
     "0101050284050102636400"},
    {'S', "Skip first", "010205000a0284050102636400", "010502"},
    {'M', "ds with zero range and unsorted",
     "0101050004010172026162010103030200000101 0000",
     "0101050004010172026162010103000001010302"},
    {'D', "ds with zero range and unsorted",
     "0101050004010172026162010103030200000101 00",
     "0101050004010172026162010103030200000101"},
    {'D', "ds with zero range and unsorted",
     "0101050004010172026162010103030200000101 010501",
     "010105018405000162010103030200000101"},
    {'D', "ds with zero range and unsorted",
     "0101050004010172026162010103030200000101 010502", "00010103030200000101"},
    {'S', "ds with zero range and unsorted",
     "0101050004010172026162010103030200000101", "010502"},
    {'M', "ds duplicate clients",
     "0101050004010172026162020101010101010301 0000",
     "010105000401017202616201010201010301"},
    {'D', "ds duplicate clients", "0101050004010172026162020101010101010301 00",
     "010105000401017202616201010201010301"},
    {'D', "ds duplicate clients",
     "0101050004010172026162020101010101010301 010501",
     "01010501840500016201010201010301"},
    {'D', "ds duplicate clients",
     "0101050004010172026162020101010101010301 010502", "0001010201010301"},
    {'S', "ds duplicate clients", "0101050004010172026162020101010101010301",
     "010502"},
    {'M', "ds client with zero ranges",
     "010105000401017202616202010002010101 0000",
     "01010500040101720261620102010101"},
    {'D', "ds client with zero ranges",
     "010105000401017202616202010002010101 00",
     "01010500040101720261620102010101"},
    {'D', "ds client with zero ranges",
     "010105000401017202616202010002010101 010501",
     "0101050184050001620102010101"},
    {'D', "ds client with zero ranges",
     "010105000401017202616202010002010101 010502", "000102010101"},
    {'S', "ds client with zero ranges", "010105000401017202616202010002010101",
     "010502"},
    {'M', "ds overlong", "01010500040101720261620183008100820001 0000",
     "01010500040101720261620103010201"},
    {'D', "ds overlong", "01010500040101720261620183008100820001 00",
     "01010500040101720261620103010201"},
    {'D', "ds overlong", "01010500040101720261620183008100820001 010501",
     "0101050184050001620103010201"},
    {'D', "ds overlong", "01010500040101720261620183008100820001 010502",
     "000103010201"},
    {'S', "ds overlong", "01010500040101720261620183008100820001", "010502"},
    {'M', "string BOM + emoji",
     "01010500040101720defbbbf61f09f988062f09f988000 0000",
     "01010500040101720defbbbf61f09f988062f09f988000"},
    {'D', "string BOM + emoji",
     "01010500040101720defbbbf61f09f988062f09f988000 00",
     "01010500040101720defbbbf61f09f988062f09f988000"},
    {'D', "string BOM + emoji",
     "01010500040101720defbbbf61f09f988062f09f988000 010501",
     "010105018405000a61f09f988062f09f988000"},
    {'D', "string BOM + emoji",
     "01010500040101720defbbbf61f09f988062f09f988000 010502",
     "0101050284050109f09f988062f09f988000"},
    {'S', "string BOM + emoji",
     "01010500040101720defbbbf61f09f988062f09f988000", "010507"},
    {'M', "emoji string", "010205000401017208f09f9880f09f9880840503017800 0000",
     "010205000401017208f09f9880f09f9880840503017800"},
    {'D', "emoji string", "010205000401017208f09f9880f09f9880840503017800 00",
     "010205000401017208f09f9880f09f9880840503017800"},
    {'D', "emoji string",
     "010205000401017208f09f9880f09f9880840503017800 010501",
     "0102050184050007efbfbdf09f9880840503017800"},
    {'D', "emoji string",
     "010205000401017208f09f9880f09f9880840503017800 010502",
     "0102050284050104f09f9880840503017800"},
    {'S', "emoji string", "010205000401017208f09f9880f09f9880840503017800",
     "010505"},
    {'M', "Binary overlong len", "01010500030101728300aabbcc00 0000",
     "010105000301017203aabbcc00"},
    {'D', "Binary overlong len", "01010500030101728300aabbcc00 00",
     "010105000301017203aabbcc00"},
    {'D', "Binary overlong len", "01010500030101728300aabbcc00 010501", "0000"},
    {'D', "Binary overlong len", "01010500030101728300aabbcc00 010502", "0000"},
    {'S', "Binary overlong len", "01010500030101728300aabbcc00", "010501"},
    {'M', "Deleted overlong len", "0101050001010172840000 0000",
     "01010500010101720400"},
    {'D', "Deleted overlong len", "0101050001010172840000 00",
     "01010500010101720400"},
    {'D', "Deleted overlong len", "0101050001010172840000 010501",
     "010105018105000300"},
    {'D', "Deleted overlong len", "0101050001010172840000 010502",
     "010105028105010200"},
    {'S', "Deleted overlong len", "0101050001010172840000", "010504"},
};

static void test_node_cases(void **state)
{
    (void)state;
    size_t n = sizeof(node_cases) / sizeof(node_cases[0]);
    for (size_t i = 0; i < n; i++) {
        const node_case *nc = &node_cases[i];
        char *args = strdup(nc->args);
        const char *hex[256];
        size_t k = 0;
        for (char *p = args; *p && k < 256;) {
            hex[k++] = p;
            char *sp = strchr(p, ' ');
            if (!sp) {
                break;
            }
            *sp = '\0';
            p = sp + 1;
        }
        char what[200];
        snprintf(what, sizeof(what), "node case %zu (%s)", i, nc->note);
        if (nc->fn == 'M') {
            check_merge(hex, k, nc->output, NULL, what);
        } else if (nc->fn == 'D') {
            assert_int_equal(k, 2);
            check_diff(hex[0], hex[1], nc->output, what);
        } else {
            assert_int_equal(k, 1);
            check_sv(hex[0], nc->output, what);
        }
        free(args);
    }
    print_message("yjs-computed cases passed: %zu\n", n);
}

/* ---- round trip -------------------------------------------------------- */

/* Rewrites a parsed update struct by struct, whole. */
static void rewrite(const loom__rupdate *u, loom_buf *out)
{
    assert_int_equal(loom__write_varuint(out, u->nblocks), 0);
    for (size_t i = 0; i < u->nblocks; i++) {
        const loom__rblock *b = &u->blocks[i];
        assert_int_equal(loom__write_varuint(out, b->n), 0);
        assert_int_equal(loom__write_varuint(out, b->client), 0);
        assert_int_equal(loom__write_varuint(out, b->first_clock), 0);
        for (size_t k = 0; k < b->n; k++) {
            loom__rstruct s;
            loom__rstruct_get(u, b, k, &s);
            assert_int_equal(loom__rstruct_write(out, &s, 0), 0);
        }
    }
    assert_int_equal(loom__ds_write(out, &u->ds), 0);
}

/* An item whose origin, rightOrigin or parent is a clock of its own client
 * that is not before it is refused by apply with the offset of the first
 * such item, but only once the whole update has parsed: a parse error
 * later in the update wins. */
static void
apply_err(const uint8_t *p, size_t n, int rc, size_t off, const char *msg)
{
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(NULL, &d), 0);
    loom_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(loom_doc_apply_update(d, p, n, NULL, &err), rc);
    assert_int_equal(err.offset, off);
    assert_non_null(strstr(err.message, msg));
    loom_buf b = {0};
    assert_int_equal(loom_doc_encode_state_as_update(d, NULL, 0, &b, NULL), 0);
    assert_int_equal(b.len, 2); /* still empty */
    loom_buf_free(&b);
    loom_doc_free(d);
}

static void test_apply_self_ref(void **state)
{
    (void)state;
    /* origin (5, 0) on the struct (5, 0) itself */
    static const uint8_t self[] = {1, 1, 5, 0, 0x84, 5, 0, 1, 'a', 0};
    apply_err(self, sizeof(self), LOOM_EMALFORMED, 4, "not before it");
    /* the same, then a trailing byte: the parse error comes first */
    static const uint8_t trail[] = {1, 1, 5, 0, 0x84, 5, 0, 1, 'a', 0, 0};
    apply_err(trail, sizeof(trail), LOOM_EMALFORMED, 10, "trailing bytes");
    /* a valid struct, then one whose origin (5, 1) is itself, then one
     * whose rightOrigin (5, 5) is past it: the first bad one is reported */
    static const uint8_t second[] = {1,   3,    5,   0,    4, 1,   1,
                                     't', 1,    'a', 0x84, 5, 1,   1,
                                     'b', 0x44, 5,   5,    1, 'c', 0};
    apply_err(second, sizeof(second), LOOM_EMALFORMED, 10, "not before it");
}

static void test_roundtrip_finals(void **state)
{
    (void)state;
    corpus cs = load_finals();
    for (size_t i = 0; i < cs.n; i++) {
        test_alloc c;
        loom_allocator a = test_alloc_init(&c);
        loom__rupdate u;
        loom_error err;
        int rc = loom__update_parse(&a, cs.u[i].p, cs.u[i].len, 0, &u, &err);
        if (rc) {
            fprintf(stderr, "%s: %s at %zu\n", cs.label[i], err.message,
                    err.offset);
        }
        assert_int_equal(rc, 0);
        /* yjs writes the parentSub flag of a decoded item only when it read
         * the key, i.e. when the item has no origins (Item.write tests
         * parentSub !== null); everything else must come back unchanged. */
        uint8_t *expect = malloc(cs.u[i].len);
        memcpy(expect, cs.u[i].p, cs.u[i].len);
        for (size_t b = 0; b < u.nblocks; b++) {
            for (size_t k = 0; k < u.blocks[b].n; k++) {
                loom__rstruct s;
                loom__rstruct_get(&u, &u.blocks[b], k, &s);
                if (s.has_parent_sub && !s.parent_sub) {
                    expect[s.offset] &= (uint8_t)~0x20;
                }
            }
        }
        loom_buf out = {0};
        loom__buf_init(&out, &a);
        rewrite(&u, &out);
        char *want = hex_encode(expect, cs.u[i].len);
        assert_buf_hex(&out, want, cs.label[i]);
        free(want);
        free(expect);
        loom_buf_free(&out);
        loom__rupdate_free(&u);
        ASSERT_NO_LEAK(c);
        assert_int_equal(loom_update_validate(cs.u[i].p, cs.u[i].len, NULL), 0);
    }
    free_corpus(&cs);
}

/* ---- hostile input ----------------------------------------------------- */

static void test_truncations(void **state)
{
    (void)state;
    corpus cs = load_finals();
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    for (size_t i = 0; i < cs.n; i++) {
        for (size_t len = 0; len < cs.u[i].len; len++) {
            uint8_t *p = malloc(len ? len : 1);
            memcpy(p, cs.u[i].p, len);
            loom__rupdate u;
            loom_error err;
            memset(&err, 0, sizeof(err));
            int rc = loom__update_parse(&a, p, len, 7, &u, &err);
            if (rc == 0) {
                fprintf(stderr, "%s: prefix of %zu bytes parsed\n", cs.label[i],
                        len);
            }
            assert_int_equal(rc, LOOM_EMALFORMED);
            assert_int_equal(err.code, LOOM_EMALFORMED);
            assert_int_equal(err.input, 7);
            assert_true(err.offset <= len);
            assert_true(err.message[0] != '\0');
            ASSERT_NO_LEAK(c);
            free(p);
        }
    }
    free_corpus(&cs);
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Runs every entry point on (possibly broken) bytes; only checks that
 * nothing crashes or leaks and that errors are sane. */
static void exercise(const loom_allocator *a,
                     test_alloc *c,
                     const uint8_t *p,
                     size_t len,
                     const uint8_t *other,
                     size_t other_len)
{
    loom_error err;
    int rc = loom_update_validate(p, len, &err);
    assert_true(rc == 0 || rc == LOOM_EMALFORMED || rc == LOOM_ELIMIT);
    if (rc) {
        assert_true(err.offset <= len);
    }
    loom_buf out = {0};
    const uint8_t *ins[2] = {p, other};
    size_t lens[2] = {len, other_len};
    int rc2 = loom_update_merge(a, ins, lens, 2, &out, &err);
    assert_int_equal(rc2 == 0, rc == 0);
    if (rc2 == 0) {
        /* What we write must parse again. */
        assert_int_equal(loom_update_validate(out.data, out.len, NULL), 0);
        loom_buf_free(&out);
    }
    static const uint8_t sv[3] = {1, 1, 2};
    rc2 = loom_update_diff(a, p, len, sv, sizeof(sv), &out, &err);
    assert_int_equal(rc2 == 0, rc == 0);
    if (rc2 == 0) {
        assert_int_equal(loom_update_validate(out.data, out.len, NULL), 0);
        loom_buf_free(&out);
    }
    rc2 = loom_update_state_vector(a, p, len, &out, &err);
    assert_int_equal(rc2 == 0, rc == 0);
    if (rc2 == 0) {
        assert_int_equal(loom_state_vector_validate(out.data, out.len, NULL),
                         0);
        loom_buf_free(&out);
    }
    ASSERT_NO_LEAK(*c);
}

static void test_byte_flips(void **state)
{
    (void)state;
    corpus cs = load_finals();
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    uint64_t seed = 0x10adc0de5eedULL;
    const char *env = getenv("LOOM_SEED");
    if (env) {
        seed = strtoull(env, NULL, 0);
    }
    print_message("byte flips: seed %llu (LOOM_SEED)\n",
                  (unsigned long long)seed);
    uint64_t s = seed ? seed : 1;
    size_t ok = 0, bad = 0;
    for (size_t i = 0; i < cs.n; i++) {
        const bytes *u = &cs.u[i];
        const bytes *o = &cs.u[(i + 1) % cs.n];
        for (int round = 0; round < 40; round++) {
            uint8_t *p = malloc(u->len);
            memcpy(p, u->p, u->len);
            int flips = 1 + (int)(rng_next(&s) % 3);
            for (int f = 0; f < flips; f++) {
                size_t at = (size_t)(rng_next(&s) % u->len);
                uint64_t r = rng_next(&s);
                if (r & 1) {
                    p[at] ^= (uint8_t)(1u << ((r >> 1) % 8));
                } else {
                    p[at] = (uint8_t)(r >> 8);
                }
            }
            if (loom_update_validate(p, u->len, NULL) == 0) {
                ok++;
            } else {
                bad++;
            }
            exercise(&a, &c, p, u->len, o->p, o->len);
            free(p);
        }
    }
    print_message("byte flips: %zu still valid, %zu rejected\n", ok, bad);
    free_corpus(&cs);
}

typedef struct bad_case {
    const char *hex;
    const char *why;
    size_t offset; /* expected error offset, or SIZE_MAX to skip */
} bad_case;

static void test_malformed(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"", "empty input", 0},
        {"00", "no delete set", 1},
        {"000000", "trailing byte", 2},
        {"0000ff", "trailing byte", 2},
        /* counts larger than the input could hold */
        {"ffffffffffffff0f00", "2^53-1 client blocks", 0},
        {"8080808080808010", "varuint past 2^53", 0},
        {"01ffffffff0f010000", "struct count", 1},
        {"00ffffffff0f", "delete set clients", 1},
        {"000101ffffffff0f", "delete set ranges", 3},
        {"0101010008010161ffffffff0f00", "Any element count", 8},
        {"0101010002010161ffffff7f00", "JSON element count", 8},
        /* unknown content refs and type refs */
        {"010101000b0101610100", "content ref 11", 4},
        {"010101001f0101610100", "content ref 31", 4},
        {"010101008a0a0000", "info 0x8a (Skip ref with flags)", 4},
        {"01010100070101610700", "type ref 7", 8},
        /* zero lengths */
        {"0101010000000000", "GC of length 0", 4},
        {"010101000a0000", "Skip of length 0", 4},
        {"0101010001010161000000", "Deleted of length 0", 4},
        {"010101000401016100000000", "empty string", 4},
        {"0101010008010161000000", "Any with no element", 4},
        /* clock overflow */
        {"010101ffffffffffffff0f000200", "GC ending past 2^53", 11},
        {"00010101ffffffffffffff0f02", "delete range past 2^53", 4},
        /* content */
        {"010101000401016102c3280000", "invalid UTF-8 string", 8},
        {"01010100050101610274720000", "invalid JSON embed", SIZE_MAX},
        {"010101000201016101"
         "0a20756e646566696e6564"
         "00",
         "JSON ' undefined'", SIZE_MAX},
        {"010101000801016101ff0000", "Any tag 255", 9},
        {"0101010009010161016e7e00", "Doc with null options", 10},
        {"0101010009010161016e7f00", "Doc with undefined options", 10},
        {"01010100090101610167760104677569647d0100",
         "Doc guid option not a string", 8},
        {"0101010004040101610162000000", "parent info then nothing", SIZE_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bytes b = unhex(cases[i].hex);
        test_alloc c;
        loom_allocator a = test_alloc_init(&c);
        loom_error err;
        memset(&err, 0, sizeof(err));
        loom__rupdate u;
        int rc = loom__update_parse(&a, b.p, b.len, 3, &u, &err);
        if (rc == 0) {
            fprintf(stderr, "accepted: %s (%s)\n", cases[i].why, cases[i].hex);
            loom__rupdate_free(&u);
        }
        assert_int_not_equal(rc, 0);
        assert_true(rc == LOOM_EMALFORMED || rc == LOOM_ELIMIT);
        assert_int_equal(err.code, rc);
        assert_int_equal(err.input, 3);
        assert_true(err.offset <= b.len);
        if (cases[i].offset != SIZE_MAX && err.offset != cases[i].offset) {
            fprintf(stderr, "%s: offset %zu (%s), expected %zu\n", cases[i].why,
                    err.offset, err.message, cases[i].offset);
            assert_int_equal(err.offset, cases[i].offset);
        }
        ASSERT_NO_LEAK(c);
        free(b.p);
    }
}

/* Parses p (len bytes) and returns the result; *u is set on success. */
static int parse_into(const loom_allocator *a,
                      const uint8_t *p,
                      size_t len,
                      loom__rupdate *u,
                      loom_error *err)
{
    memset(err, 0, sizeof(*err));
    return loom__update_parse(a, p, len, 0, u, err);
}

/*
 * The parser's fast path for map entries (an entry naming the root the
 * entry before it named) against its slow path: the same update with the
 * first entry naming another root takes the slow path for the second
 * entry. Both must agree in every result, error offset and message and
 * in what they keep of each struct (but the LOOM__RS_SAMEROOT flag, which
 * only the fast path sets), on each case and on every truncation of it.
 */
#define LONGC            \
    "2801016d0163017710" \
    "61616161616161616161616161616161"
#define LONGC5                   \
    "2801056d6d6d6d6d0163017710" \
    "61616161616161616161616161616161"
#define LONGC6                     \
    "2801066d6d6d6d6d6d0163017710" \
    "61616161616161616161616161616161"
static void test_fast_struct(void **state)
{
    (void)state;
    static const struct {
        const char *name; /* the root name of the entries, hex */
        int n;            /* structs in the block */
        const char *rest; /* the entries after the first, then the rest */
    } cases[] = {
        {"6d", 2, "2801016d0162017d0500"},
        /* {id: 5, title: "task 1", done: true} twice: the first has room
         * after it for the flat-object path */
        {"6d", 3,
         "2801016d01620176030269647d05057469746c657706"
         "7461736b20310464"
         "6f6e6578"
         "2801016d01630176030269647d05057469746c657706"
         "7461736b20310464"
         "6f6e657800"},
        {"6d6d6d6d6d6d6d6d6d", 2, "2801096d6d6d6d6d6d6d6d6d0162017d0500"},
        {"6d6d6d6d6d6d6d6d", 2, "2801086d6d6d6d6d6d6d6d0162017d0500"},
        {"", 2, "2801000162017d0500"},
        {"6d", 2, "2801016d016201ff00"},         /* Any tag 255 */
        {"6d", 2, "2801016d01620000"},           /* no value */
        {"6d", 2, "2801016d016281017d05000000"}, /* two-byte count */
        {"6d", 2, "2801016d016209000000"},       /* count too large */
        {"6d", 2, "2801016d02c3a9017d0500"},     /* a non-ASCII key */
        {"6d", 2, "2801016d02c328017d0500"},     /* invalid UTF-8 key */
        {"6d", 2,
         "2801016d11616161616161616161616161616161616101"
         "7d0500"}, /* a key of 17 bytes */
        {"6d", 2, "2801016d016201760201617d01016178000000"}, /* {a, a} */
        {"6d", 2, "2801016d0162017702c32800"},     /* invalid UTF-8 text */
        {"6d", 2, "2801016d0162017bff00"},         /* truncated float */
        {"6d", 2, "2801026d6d0162017d0500"},       /* another root */
        {"6d", 2, "2801016e0162017d0500"},         /* another root */
        {"6d", 2, "0801016d017d0500"},             /* no key */
        {"6d", 2, "2802016d0162017d0500"},         /* an ID parent */
        {"6d", 2, "2881016d0162017d0500"},         /* a long parent info */
        {"6d", 2, "a8010000017d0500"},             /* an origin */
        {"6d", 2, "2801016d0162037d017d027d0300"}, /* three values */
        /* with room after them (the header read as one word): another
         * root, an ID parent, a longer name, no key, then names of 5 and 6
         * bytes, the same and one byte off; each is followed by an entry
         * c: "aaaaaaaaaaaaaaaa" */
        {"6d", 3, "2801016e0162017d05" LONGC "00"},
        {"6d", 3, "2802016d0162017d05" LONGC "00"},
        {"6d", 3, "2801026d6d0162017d05" LONGC "00"},
        {"6d", 3, "0801016d017d05" LONGC "00"},
        {"6d6d6d6d6d", 3, "2801056d6d6d6d6d0162017d05" LONGC5 "00"},
        {"6d6d6d6d6d", 3, "2801056d6d6d6d6e0162017d05" LONGC5 "00"},
        {"6d6d6d6d6d", 3, "2801056e6d6d6d6d0162017d05" LONGC5 "00"},
        {"6d6d6d6d6d6d", 3, "2801066d6d6d6d6d6d0162017d05" LONGC6 "00"},
    };
    size_t fast_taken = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t nl = strlen(cases[i].name) / 2;
        char hex[2][512];
        for (int v = 0; v < 2; v++) {
            /* v = 1: the first entry names another root */
            char name[64];
            snprintf(name, sizeof(name), "%s%s", cases[i].name, v ? "78" : "");
            snprintf(hex[v], sizeof(hex[v]),
                     "01%02x01002801%02zx%s0161017d01%s", cases[i].n,
                     nl + (size_t)v, name, cases[i].rest);
        }
        bytes fast = unhex(hex[0]), slow = unhex(hex[1]);
        assert_int_equal(fast.len + 1, slow.len);
        /* truncations after the first entry (a cut inside it is a cut at
         * another place of the two) */
        for (size_t len = fast.len + 1; len-- > 12 + nl;) {
            test_alloc c;
            loom_allocator a = test_alloc_init(&c);
            loom__rupdate uf, us;
            loom_error ef, es;
            int rf = parse_into(&a, fast.p, len, &uf, &ef);
            int rs = parse_into(&a, slow.p, len + 1, &us, &es);
            if (rf != rs || (rf && strcmp(ef.message, es.message) != 0)) {
                fprintf(
                    stderr,
                    "case %zu, %zu bytes: %d at %zu (%s) vs %d at %zu (%s)\n",
                    i, len, rf, ef.offset, ef.message, rs, es.offset,
                    es.message);
            }
            assert_int_equal(rf, rs);
            if (rf) {
                /* the first entry is a byte longer in the slow one; an
                 * error in the block header is at the same place */
                assert_true(ef.offset + 1 == es.offset ||
                            (ef.offset < 4 && ef.offset == es.offset));
                assert_string_equal(ef.message, es.message);
                ASSERT_NO_LEAK(c);
                continue;
            }
            assert_int_equal(uf.nblocks, us.nblocks);
            const loom__rblock *bf = &uf.blocks[0], *bs = &us.blocks[0];
            assert_int_equal(bf->n, bs->n);
            assert_int_equal(bf->end_clock, bs->end_clock);
            assert_int_equal(bf->end + 1, bs->end);
            for (size_t k = 0; k < bf->n; k++) {
                fast_taken += (bf->s[k].bits & LOOM__RS_SAMEROOT) != 0;
                assert_int_equal(bf->s[k].bits & ~LOOM__RS_SAMEROOT,
                                 bs->s[k].bits & ~LOOM__RS_SAMEROOT);
                assert_int_equal(bf->s[k].offset + (k > 0), bs->s[k].offset);
            }
            loom__rupdate_free(&uf);
            loom__rupdate_free(&us);
            ASSERT_NO_LEAK(c);
        }
        free(fast.p);
        free(slow.p);
    }
    /* the entries after the first of the valid cases but those with
     * another root, no key, an ID parent, a long parent info or an origin
     * took the fast path; of the cases with room, the two entries of the
     * 5- and 6-byte names and the entry after the one with no key */
    assert_int_equal(fast_taken, 13);
}

/*
 * Map entries whose values are objects with the same keys, other keys,
 * repeated keys and values that are not flat, one after the other: the
 * fast path compares an object's keys with those of an object before it,
 * and each entry's canonical flag must still be what loom__any_check says
 * of its value alone (and an invalid value fails the parse as it would).
 */
static void test_fast_shapes(void **state)
{
    (void)state;
    static const char *const seqs[][4] = {
        /* {a, b}, {a, b} */
        {"760201617d0101627d02", "760201617d0101627d02"},
        /* {a, b}, {a, a} */
        {"760201617d0101627d02", "760201617d0101617d02"},
        /* {a, b}, {b: 0.5, c: 1} (not flat after its first key), {b, b} */
        {"760201617d0101627d02", "760201627b3fe000000000000001637d01",
         "760201627d0101627d02"},
        /* {a, b, c}, {a, b}, {a, b, c}, {a, b, b} */
        {"760301617d0101627d0201637d03", "760201617d0101627d02",
         "760301617d0101627d0201637d03", "760301617d0101627d0201627d03"},
        /* {a}, {a, a} */
        {"7601016178", "760201617801617 9"},
        /* {a, b}, {a: {}}, {a, b}, {b, b} */
        {"76020161780162 79", "7601016176 00", "76020161780162 79",
         "76020162780162 79"},
        /* keys of 7 and 8 bytes twice, then the 7 repeated */
        {"7602076162636465666778086162636465666768 79",
         "7602076162636465666778086162636465666768 79",
         "7602076162636465666778076162636465666779"},
        /* {a, b}, {__proto__, b}, {1, b} */
        {"76020161780162 79", "7602095f5f70726f746f5f5f780162 79",
         "76020131780162 79"},
        /* {a, b}, {b: "\xff", c: 1}: invalid */
        {"760201617d0101627d02", "76020162 7701ff 01637d01"},
    };
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        /* the values as entries b, c, ... of root "m" after an entry a
         * (the fast path takes the entries after the first), then 20
         * entries {a: true} (room after the values for the flat-object
         * path) */
        char hex[4096];
        size_t o = 0, nv = 0;
        const char *vals[24];
        vals[nv++] = "7601016178";
        for (size_t k = 0; k < 4 && seqs[i][k]; k++)
            vals[nv++] = seqs[i][k];
        size_t n = nv + 20;
        o += (size_t)snprintf(hex + o, sizeof(hex) - o, "01%02zx0100", n);
        for (size_t k = 0; k < n; k++) {
            o += (size_t)snprintf(hex + o, sizeof(hex) - o,
                                  "2801016d01%02zx01%s", 0x61 + k,
                                  k < nv ? vals[k] : "7601016178");
        }
        o += (size_t)snprintf(hex + o, sizeof(hex) - o, "00");
        size_t w = 0;
        for (size_t k = 0; k < o; k++) {
            if (hex[k] != ' ')
                hex[w++] = hex[k];
        }
        hex[w] = 0;
        bytes b = unhex(hex);
        test_alloc c;
        loom_allocator a = test_alloc_init(&c);
        loom__rupdate u;
        loom_error e;
        int rc = parse_into(&a, b.p, b.len, &u, &e);
        /* what loom__any_check says of each value */
        int want = LOOM_OK;
        bool canon[24];
        for (size_t k = 0; k < nv && !want; k++) {
            char vh[512];
            size_t vw = 0;
            for (const char *q = vals[k]; *q; q++) {
                if (*q != ' ')
                    vh[vw++] = *q;
            }
            vh[vw] = 0;
            bytes v = unhex(vh);
            loom__reader r;
            loom__reader_init(&r, v.p, v.len);
            canon[k] = true;
            want = loom__any_check(&r, 0, &canon[k]);
            if (!want && r.pos != v.len)
                want = -1000;
            free(v.p);
        }
        if (rc != want)
            fprintf(stderr, "sequence %zu: %d (%s at %zu), expected %d\n", i,
                    rc, e.message, e.offset, want);
        assert_int_equal(rc, want);
        if (!rc) {
            assert_int_equal(u.nblocks, 1);
            assert_int_equal(u.blocks[0].n, n);
            for (size_t k = 0; k < nv; k++) {
                bool got = (u.blocks[0].s[k].bits & LOOM__RS_CANON) != 0;
                if (got != canon[k])
                    fprintf(stderr, "sequence %zu, value %zu: canonical %d\n",
                            i, k, got);
                assert_int_equal(got, canon[k]);
            }
            loom__rupdate_free(&u);
        }
        ASSERT_NO_LEAK(c);
        free(b.p);
    }
}

/* ---- the text fast path ---------------------------------------------------- */

/* general_update_parse & co: parse_general.h */

typedef struct text_tally {
    size_t inputs; /* compared */
    size_t valid;  /* of them accepted */
    size_t fast;   /* structs of accepted ones that the fast path took */
} text_tally;

static void text_fail(const uint8_t *p, size_t len, const char *what)
{
    char *h = hex_encode(p, len);
    fprintf(stderr, "text fast path: %s on %s\n", what, h ? h : "?");
    free(h);
    fail();
}

/* Are the parses of the same bytes by both builds the same: blocks, every
 * struct's record, roots, the first self reference, the delete set? Adds
 * to *plain the structs that the map entries' fast path did not take (it
 * stays on in both builds, and marks what it takes). */
static bool
text_records_same(const loom__rupdate *f, const loom__rupdate *g, size_t *plain)
{
    if (f->nblocks != g->nblocks || f->self_ref != g->self_ref ||
        f->nroots != g->nroots || f->ds.n != g->ds.n) {
        return false;
    }
    for (size_t i = 0; i < f->nblocks; i++) {
        const loom__rblock *bf = &f->blocks[i], *bg = &g->blocks[i];
        if (bf->client != bg->client || bf->first_clock != bg->first_clock ||
            bf->n != bg->n || bf->end_clock != bg->end_clock ||
            bf->end != bg->end) {
            return false;
        }
        for (size_t k = 0; k < bf->n; k++) {
            if (bf->s[k].bits != bg->s[k].bits ||
                bf->s[k].offset != bg->s[k].offset) {
                return false;
            }
            *plain += !(bf->s[k].bits & LOOM__RS_SAMEROOT);
        }
    }
    for (size_t i = 0; i < f->nroots; i++) {
        if (f->roots[i].p != g->roots[i].p ||
            f->roots[i].len != g->roots[i].len ||
            f->roots[i].keyed != g->roots[i].keyed) {
            return false;
        }
    }
    for (size_t i = 0; i < f->ds.n; i++) {
        const loom__ds_client *cf = &f->ds.c[i], *cg = &g->ds.c[i];
        if (cf->client != cg->client || cf->n != cg->n ||
            (cf->n && memcmp(cf->r, cg->r, cf->n * sizeof(*cf->r)) != 0)) {
            return false;
        }
    }
    return true;
}

/*
 * The library's parser and the general build agree on the first len bytes
 * of p: the same result, the same error (code, offset, input, message) or
 * the same records. The bytes are copied to a block of exactly len bytes,
 * so that ASan sees a read past the end.
 */
static void text_same(const uint8_t *p, size_t len, text_tally *t)
{
    uint8_t *q = malloc(len ? len : 1);
    assert_non_null(q);
    memcpy(q, p, len);
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    loom__rupdate uf, ug;
    loom_error ef, eg;
    memset(&ef, 0, sizeof(ef));
    memset(&eg, 0, sizeof(eg));
    int rf = loom__update_parse(&a, q, len, 5, &uf, &ef);
    parse_general_fast = false;
    parse_general_reads = 0;
    int rg = general_update_parse(&a, q, len, 5, &ug, &eg);
    size_t reads = parse_general_reads;
    t->inputs++;
    if (rf != rg || ef.code != eg.code || ef.offset != eg.offset ||
        ef.input != eg.input || strcmp(ef.message, eg.message) != 0) {
        fprintf(stderr, "fast: %d at %zu (%s), general: %d at %zu (%s)\n", rf,
                ef.offset, ef.message, rg, eg.offset, eg.message);
        text_fail(q, len, "another result");
    }
    if (rf) {
        ASSERT_NO_LEAK(c);
        free(q);
        return;
    }
    size_t plain = 0;
    if (!text_records_same(&uf, &ug, &plain)) {
        text_fail(q, len, "other records");
    }
    /* the general build read every struct with read_struct (were the
     * text fast path still on there, both would be the same code) */
    if (reads != plain) {
        text_fail(q, len, "the general build did not read every struct");
    }
    /* the same build with the text fast path on: how many it took */
    loom__rupdate un;
    loom_error en;
    parse_general_fast = true;
    parse_general_reads = 0;
    assert_int_equal(general_update_parse(&a, q, len, 5, &un, &en), 0);
    parse_general_fast = false;
    assert_true(parse_general_reads <= plain);
    t->fast += plain - parse_general_reads;
    t->valid++;
    loom__rupdate_free(&uf);
    loom__rupdate_free(&ug);
    loom__rupdate_free(&un);
    ASSERT_NO_LEAK(c);
    free(q);
}

/* text_same on p (len bytes) and on every truncation of it. */
static void text_cuts(const uint8_t *p, size_t len, text_tally *t)
{
    for (size_t n = 0; n <= len; n++) {
        text_same(p, n, t);
    }
}

typedef struct tbuf {
    uint8_t p[1024];
    size_t n;
} tbuf;

static void tb_put(tbuf *b, const void *s, size_t n)
{
    assert_true(n <= sizeof(b->p) - b->n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void tb_u8(tbuf *b, uint8_t v)
{
    tb_put(b, &v, 1);
}

/* v as a varUint of w bytes, with zero groups that lib0 reads, or as short
 * as it goes (w = 0 or too small) */
static void tb_var(tbuf *b, uint64_t v, int w)
{
    for (int i = 1;; i++) {
        uint8_t low = (uint8_t)(v & 0x7f);
        v >>= 7;
        bool more = v != 0 || i < w;
        tb_u8(b, (uint8_t)(low | (more ? 0x80 : 0)));
        if (!more) {
            return;
        }
    }
}

/* An Item of client 7 with String (ref 4: text) or Deleted (ref 1) content
 * and the origin and right origin that info names; the ids' varUints take
 * w bytes, the length's lw (0: the shortest). */
typedef struct titem {
    uint8_t info;
    uint64_t o[2], ro[2];
    const char *text; /* String: len bytes */
    uint64_t len;     /* String: bytes; Deleted: the length */
    int w, lw;
} titem;

static void tb_item(tbuf *b, const titem *it)
{
    tb_u8(b, it->info);
    if (it->info & 0x80) {
        tb_var(b, it->o[0], it->w);
        tb_var(b, it->o[1], it->w);
    }
    if (it->info & 0x40) {
        tb_var(b, it->ro[0], it->w);
        tb_var(b, it->ro[1], it->w);
    }
    tb_var(b, it->len, it->lw);
    if (it->text) {
        tb_put(b, it->text, (size_t)it->len);
    }
}

/* A delete set of 1 + extra bytes. */
static void tb_ds(tbuf *b, size_t extra)
{
    if (extra == 0) {
        tb_u8(b, 0);
    } else if (extra == 1) {
        tb_var(b, 0, 2);
    } else {
        /* one client (of one or two bytes), ranges (0, 0) of two bytes */
        tb_u8(b, 1);
        tb_var(b, 3, 1 + (int)(extra % 2));
        tb_u8(b, (uint8_t)((extra - 2 - extra % 2) / 2));
        for (size_t i = 0; i < (extra - 2 - extra % 2) / 2; i++) {
            tb_u8(b, 0);
            tb_u8(b, 0);
        }
    }
}

/* An update of one block of client 7 from clock: items, a delete set of
 * 1 + extra bytes. */
static void
tb_update(tbuf *b, uint64_t clock, const titem *it, size_t n, size_t extra)
{
    b->n = 0;
    tb_u8(b, 1);
    tb_var(b, n, 0);
    tb_u8(b, 7);
    tb_var(b, clock, 0);
    for (size_t i = 0; i < n; i++) {
        tb_item(b, &it[i]);
    }
    tb_ds(b, extra);
}

#define T_TEXT(s) s, sizeof(s) - 1

static const char t_ascii30[] = "0123456789abcdefghijklmnopqrst";
static const char t_ascii40[] = "The quick brown fox jumps over the dog. ";

/* case, a String item before it and two after (30 and more bytes left
 * after it), every truncation; the case's clock is 5 */
static void text_case(const titem *it, text_tally *t)
{
    titem run[4] = {
        {0x84, {9, 1}, {0, 0}, T_TEXT("hello"), 0, 0},
        *it,
        {0x44, {0, 0}, {9, 2}, T_TEXT(t_ascii30), 0, 0},
        {0x81, {9, 3}, {0, 0}, NULL, 2, 0, 0},
    };
    tbuf b;
    tb_update(&b, 0, run, 4, 0);
    text_cuts(b.p, b.n, t);
}

/* Makes two documents of the given client ids edit a text "t" (inserts
 * of ASCII, 2-, 3- and 4-byte characters, deletes) and sync now and then;
 * writes the first's state as an update to out. */
static void text_edits(uint64_t c1, uint64_t c2, uint64_t *seed, loom_buf *out)
{
    static const char *const bits[] = {
        "a",
        "hello ",
        "\xc3\xa9",
        "\xe6\x97\xa5\xe6\x9c\xac",
        "\xf0\x9f\x98\x80",
        "a\xf0\x9f\x98\x80z",
        "The quick brown fox jumps over the lazy dog. ",
    };
    loom_doc *d[2];
    loom_type *t[2];
    for (int i = 0; i < 2; i++) {
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id = i ? c2 : c1;
        assert_int_equal(loom_doc_new(&o, &d[i]), 0);
        assert_int_equal(loom_doc_get(d[i], "t", 1, LOOM_TYPE_TEXT, &t[i]), 0);
    }
    for (int op = 0; op < 120; op++) {
        uint64_t r = rng_next(seed);
        int w = (int)(r & 1);
        size_t len = loom_type_length(t[w]);
        r >>= 1;
        if (len > 0 && r % 3 == 0) {
            size_t at = (size_t)((r >> 2) % len);
            size_t n = 1 + (size_t)((r >> 20) % 6);
            n = n < len - at ? n : len - at;
            assert_int_equal(loom_text_delete(t[w], at, n), 0);
        } else {
            const char *s = bits[(r >> 2) % (sizeof(bits) / sizeof(bits[0]))];
            size_t at = (size_t)((r >> 20) % (len + 1));
            assert_int_equal(loom_text_insert(t[w], at, s, strlen(s), NULL), 0);
        }
        if (op % 10 == 9 || op == 119) {
            for (int i = 0; i < 2; i++) {
                loom_buf u = {0};
                assert_int_equal(
                    loom_doc_encode_state_as_update(d[i], NULL, 0, &u, NULL),
                    0);
                assert_int_equal(
                    loom_doc_apply_update(d[1 - i], u.data, u.len, NULL, NULL),
                    0);
                loom_buf_free(&u);
            }
        }
    }
    assert_int_equal(loom_doc_encode_state_as_update(d[0], NULL, 0, out, NULL),
                     0);
    loom_doc_free(d[0]);
    loom_doc_free(d[1]);
}

/* text_same on `rounds` copies of p with one to three mutations each:
 * a byte set (at random or to a byte that matters here), a bit flipped,
 * a byte one up or down, a byte inserted or removed. */
static void text_mutations(
    const uint8_t *p, size_t len, uint64_t *seed, int rounds, text_tally *t)
{
    static const uint8_t odd[] = {0x00, 0x01, 0x04, 0x7f, 0x80, 0xff,
                                  0x84, 0x44, 0xc4, 0x81, 0xc0, 0xed,
                                  0xf0, 0xf4, 0x1e, 0x1d};
    uint8_t *q = malloc(len + 4);
    assert_non_null(q);
    for (int round = 0; round < rounds; round++) {
        memcpy(q, p, len);
        size_t n = len;
        int k = 1 + (int)(rng_next(seed) % 3);
        for (int i = 0; i < k; i++) {
            uint64_t r = rng_next(seed);
            size_t at = (size_t)((r >> 8) % n);
            uint8_t v = (uint8_t)(r >> 40);
            switch (r % 7) {
            case 0:
                q[at] = v;
                break;
            case 1:
                q[at] = odd[v % sizeof(odd)];
                break;
            case 2:
                q[at] ^= (uint8_t)(1u << (v % 8));
                break;
            case 3:
                q[at] = (uint8_t)(q[at] + 1);
                break;
            case 4:
                q[at] = (uint8_t)(q[at] - 1);
                break;
            case 5:
                memmove(q + at + 1, q + at, n - at);
                q[at] = v;
                n++;
                break;
            default:
                if (n > 1) {
                    memmove(q + at, q + at + 1, n - at - 1);
                    n--;
                }
                break;
            }
        }
        text_same(q, n, t);
    }
    free(q);
}

/*
 * The parser's fast path for runs of typed text (text_run: String or
 * Deleted items with an origin or a right origin) against the general
 * reader, on crafted runs and their truncations and on byte mutations of
 * updates that loom made from a text two clients edited: the same result,
 * error (code, offset, message) and record of every struct. The general
 * reader is parse.c itself, built again in parse_general.c with the fast
 * path unable to take a struct.
 */
static void test_text_run(void **state)
{
    (void)state;
    text_tally t = {0, 0, 0};
    static const uint8_t infos[] = {0x84, 0x44, 0xc4, 0xa4, 0x64, 0xe4,
                                    0x81, 0x41, 0xc1, 0xa1, 0x61, 0xe1};
    const size_t ninfos = sizeof(infos);
    /* ids: every width of 1..8 bytes, zero groups up to 10 bytes, 2^53-1,
     * and out of range */
    static const struct {
        uint64_t v;
        int w;
    } ids[] = {
        {3, 0},
        {200, 0},
        {(1ULL << 14) + 3, 0},
        {(1ULL << 21) + 3, 0},
        {(1ULL << 28) + 3, 0},
        {(1ULL << 35) + 3, 0},
        {(1ULL << 42) + 3, 0},
        {(1ULL << 49) - 1, 0},
        {(1ULL << 49) + 3, 0},
        {3, 2},
        {3, 7},
        {3, 8},
        {3, 10},
        {200, 7},
        {LOOM__MAX_SAFE_INT, 0},
        {LOOM__MAX_SAFE_INT + 1, 0},
        {UINT64_MAX, 0},
    };
    /* each id in each place, in a String and a Deleted item, the info
     * bytes that have the place taking turns */
    static const uint8_t with_o[] = {0x84, 0xc4, 0xa4, 0xe4};
    static const uint8_t with_ro[] = {0x44, 0xc4, 0x64, 0xe4};
    size_t turn = 0;
    for (size_t j = 0; j < sizeof(ids) / sizeof(ids[0]); j++) {
        for (int at = 0; at < 4; at++) {
            for (int del = 0; del < 2; del++) {
                uint8_t info = (at < 2 ? with_o : with_ro)[turn++ % 4];
                titem it = {info, {9, 1}, {9, 2}, "abc", 3, 0, 0};
                if (del) {
                    it.info ^= 0x04 ^ 0x01; /* Deleted */
                    it.text = NULL;
                    it.len = 5;
                }
                uint64_t *f = at < 2 ? &it.o[at] : &it.ro[at - 2];
                *f = ids[j].v;
                /* the zero groups in every varUint of the ids */
                it.w = ids[j].w;
                text_case(&it, &t);
            }
        }
    }
    print_message("text fast path, ids: %zu inputs, %zu valid, %zu fast\n",
                  t.inputs, t.valid, t.fast);
    /* String content: ASCII, 2-, 3- and 4-byte characters (a 4-byte one is
     * two UTF-16 units), lengths of one and two bytes, with zero groups;
     * invalid UTF-8, cut characters, nothing */
    static const struct {
        const char *s;
        size_t len;
    } texts[] = {
        {T_TEXT("a")},
        {T_TEXT("\xc3\xa9")},
        {T_TEXT("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e")},
        {T_TEXT("\xf0\x9f\x98\x80")},
        {T_TEXT("a\xf0\x9f\x98\x80"
                "b\xc3\x9f\xe2\x88\x91\xf4\x8f\xbf\xbf")},
        {T_TEXT("0123456789abcdefghijklmnopqrs")},
        {T_TEXT(t_ascii30)},
        {T_TEXT("0123456789abcdefghijklmnopqrstu")},
        {T_TEXT("0123456789abcdefghijklmnopqrstuvwxyz.,;:!?()[]{}<>+-*/="
                "0123456789abcdefghijklmnopqrstuvwxyz.,;:!?()[]{}<>+-*/="
                "0123456789abcdefgh")}, /* 128 bytes */
        {T_TEXT("0123456789abcdefghijklmnopqrstuvwxyz\xf0\x9f\x98\x80")},
        {T_TEXT("")},
        {T_TEXT("\xc3\x28")},
        {T_TEXT("\xc0\x80")},
        {T_TEXT("\xe0\x80\x80")},
        {T_TEXT("\xed\xa0\x80")},
        {T_TEXT("\xf4\x90\x80\x80")},
        {T_TEXT("\xf5\x80\x80\x80")},
        {T_TEXT("\xff")},
        {T_TEXT("\x80")},
        {T_TEXT("ab\xe6\x97")},
        {T_TEXT("\xf0\x9f\x98")},
        {T_TEXT("0123456789abcdefghijklmnopqrstuvwxyz\xf0\x9f\x98")},
        {T_TEXT("0123456789abcdefghijklmnopqrstuvwxyz\xed\xbf\xbf")},
    };
    static const int lws[] = {0, 2, 7, 8};
    /* each in two of the String info bytes, taking turns */
    for (size_t j = 0; j < sizeof(texts) / sizeof(texts[0]); j++) {
        for (size_t l = 0; l < sizeof(lws) / sizeof(lws[0]); l++) {
            for (size_t h = 0; h < 2; h++) {
                titem it = {infos[(j + l + 3 * h) % 6],
                            {9, 1},
                            {9, 2},
                            texts[j].s,
                            texts[j].len,
                            0,
                            lws[l]};
                text_case(&it, &t);
            }
        }
    }
    /* the longest header text_run takes, four ids of 7 bytes, with a
     * length of two bytes and a padded one of 7, cut anywhere (text_run
     * once read a length past the end of such an input) */
    for (size_t l = 1; l < 3; l++) {
        const uint64_t big = (1ULL << 49) - 1;
        titem it = {0xc4,         {big, big}, {big, big}, texts[8].s,
                    texts[8].len, 0,          lws[l]};
        text_case(&it, &t);
    }
    /* a String length past the end of the input */
    for (size_t i = 0; i < 3; i++) {
        titem it = {infos[i], {9, 1}, {9, 2}, NULL, 70, 0, 0};
        tbuf b;
        tb_update(&b, 0, &it, 1, 0);
        tb_put(&b, t_ascii40, 40);
        text_cuts(b.p, b.n, &t);
    }
    /* Deleted lengths: every width, zero groups, nothing, past 2^53-1 */
    static const uint64_t dlens[] = {0,
                                     1,
                                     127,
                                     128,
                                     (1ULL << 21) + 1,
                                     (1ULL << 42) + 1,
                                     (1ULL << 49) - 1,
                                     (1ULL << 49),
                                     LOOM__MAX_SAFE_INT - 5,
                                     LOOM__MAX_SAFE_INT - 4,
                                     LOOM__MAX_SAFE_INT,
                                     LOOM__MAX_SAFE_INT + 1};
    for (size_t j = 0; j < sizeof(dlens) / sizeof(dlens[0]); j++) {
        for (size_t l = 0; l < sizeof(lws) / sizeof(lws[0]); l++) {
            for (size_t h = 0; h < 2; h++) {
                titem it = {infos[6 + (j + l + 3 * h) % 6],
                            {9, 1},
                            {9, 2},
                            NULL,
                            dlens[j],
                            0,
                            lws[l]};
                text_case(&it, &t);
            }
        }
    }
    /* references to the struct's own client: before it (no self
     * reference), at it and after it, as origin and right origin */
    for (uint64_t ck = 3; ck < 8; ck++) {
        for (size_t i = 0; i < ninfos; i++) {
            titem it = {infos[i], {7, ck}, {7, ck + 1}, NULL, 2, 0, 0};
            if ((infos[i] & 0x1f) == 4) {
                it.text = "xy";
            }
            text_case(&it, &t);
        }
    }
    print_message("text fast path, contents: %zu inputs, %zu valid, %zu "
                  "fast\n",
                  t.inputs, t.valid, t.fast);

    /* A run of 80 units from clock 2^53-1 - 81 + d: up to d = 1 it ends
     * at 2^53-1 at most, then each struct in turn goes past (the last
     * first); at d = 82 the block's clock is out of range. With a delete
     * set of 1 and of 41 bytes: the last struct is left to read_struct or
     * not. */
    titem high[] = {
        {0x84, {9, 1}, {0, 0}, T_TEXT(t_ascii30), 0, 0},
        {0x81, {9, 2}, {0, 0}, NULL, 4, 0, 0},
        {0x44, {0, 0}, {9, 3}, T_TEXT("\xf0\x9f\x98\x80"), 0, 0},
        {0xc4, {9, 4}, {9, 5}, T_TEXT("a\xf0\x9f\x98\x80"), 0, 0},
        {0x84, {9, 6}, {0, 0}, T_TEXT(t_ascii40), 0, 0},
        {0x81, {7, 3}, {0, 0}, NULL, 1, 0, 0},
    };
    for (size_t extra = 0; extra <= 40; extra += 40) {
        for (uint64_t d = 0; d <= 82; d++) {
            tbuf b;
            tb_update(&b, LOOM__MAX_SAFE_INT - 81 + d, high, 6, extra);
            size_t fast = t.fast;
            text_same(b.p, b.n, &t);
            if (d == 1 && extra) {
                /* the last struct, 45 bytes before the end, ends at
                 * 2^53-1: the fast path takes every one (giving up at
                 * the limit would pass the comparison, and only cost
                 * time) */
                assert_int_equal(t.fast - fast, 6);
                /* and the lengths: a 4-byte character is two units */
                static const uint64_t units[] = {30, 4, 2, 3, 40, 1};
                test_alloc c;
                loom_allocator a = test_alloc_init(&c);
                loom__rupdate u;
                loom_error e;
                assert_int_equal(parse_into(&a, b.p, b.n, &u, &e), 0);
                assert_int_equal(u.blocks[0].end_clock, LOOM__MAX_SAFE_INT);
                for (size_t k = 0; k < 6; k++) {
                    assert_int_equal(loom__rs_length(&u.blocks[0], k),
                                     units[k]);
                }
                loom__rupdate_free(&u);
                ASSERT_NO_LEAK(c);
            }
            if (d % 8 == 0 || d < 4 || d > 78) {
                text_cuts(b.p, b.n - 1, &t);
            }
        }
    }
    /* Each struct at each distance from the end around 30 bytes: a run
     * of short ones, then delete sets of 1 to 46 bytes */
    titem shortrun[] = {
        {0x84, {9, 1}, {0, 0}, T_TEXT("a"), 0, 0},
        {0x44, {0, 0}, {200, 2}, T_TEXT("\xf0\x9f\x98\x80"), 0, 0},
        {0xc1, {9, 3}, {300, 300}, NULL, 3, 0, 0},
        {0xc4, {9, 4}, {9, 5}, T_TEXT("\xc3\xa9\xe6\x97\xa5"), 0, 0},
        {0x41, {0, 0}, {9, 6}, NULL, 200, 0, 0},
        {0x84, {7, 0}, {0, 0}, T_TEXT("ab"), 0, 0},
        {0xe4, {9, 7}, {7, 211}, T_TEXT("z"), 3, 0},
        {0x81, {9, 8}, {0, 0}, NULL, 1, 0, 8},
    };
    for (size_t extra = 0; extra <= 45; extra++) {
        tbuf b;
        tb_update(&b, 0, shortrun, 8, extra);
        text_cuts(b.p, b.n, &t);
    }
    print_message("text fast path, clocks and ends: %zu inputs, %zu valid, "
                  "%zu fast\n",
                  t.inputs, t.valid, t.fast);

    /* Runs between other structs, in two blocks: GC, Skip, a String item
     * with a parent (no origin), Any, type and binary items with an
     * origin, a self reference by a right origin */
    tbuf mix;
    mix.n = 0;
    tb_put(&mix, "\x02\x0a\x07\x00", 4); /* two blocks; 10 structs of 7 */
    titem m1 = {0x84, {9, 1}, {0, 0}, T_TEXT("hello world, a text run"), 0, 0};
    tb_item(&mix, &m1);
    tb_put(&mix, "\x00\x03", 2); /* GC */
    titem m3 = {0x84, {7, 3}, {0, 0}, T_TEXT("abc"), 0, 0};
    tb_item(&mix, &m3);
    tb_put(&mix, "\x0a\x02", 2);                       /* Skip */
    tb_put(&mix, "\x04\x01\x01t\x03xyz", 8);           /* root "t" */
    tb_put(&mix, "\x88\x09\x01\x01\x7d\x05", 6);       /* Any [5] */
    tb_put(&mix, "\x87\x09\x01\x02", 4);               /* a YText */
    tb_put(&mix, "\x83\x09\x01\x02hi", 6);             /* binary */
    titem m9 = {0x41, {0, 0}, {7, 40}, NULL, 4, 0, 0}; /* itself */
    tb_item(&mix, &m9);
    titem m10 = {0xc4, {9, 2}, {9, 3}, T_TEXT(t_ascii30), 0, 0};
    tb_item(&mix, &m10);
    tb_put(&mix, "\x03\xac\x02\x05", 4); /* 3 structs of 300 from 5 */
    titem n1 = {0x84, {7, 0}, {0, 0}, T_TEXT("\xf0\x9f\x98\x80x"), 0, 0};
    titem n2 = {0x81, {300, 2}, {0, 0}, NULL, 2, 0, 0};
    titem n3 = {0xc4, {7, 1}, {7, 2}, T_TEXT(t_ascii40), 0, 0};
    tb_item(&mix, &n1);
    tb_item(&mix, &n2);
    tb_item(&mix, &n3);
    tb_put(&mix, "\x01\x07\x01\x00\x02", 5); /* delete (7, 0..2) */
    size_t before = t.valid;
    text_same(mix.p, mix.n, &t);
    assert_int_equal(t.valid, before + 1);
    text_cuts(mix.p, mix.n, &t);
    /* text after map entries of a root "m", the second one taken by the
     * map entries' fast path */
    tbuf maps;
    maps.n = 0;
    tb_put(&maps, "\x01\x03\x07\x00", 4);
    tb_put(&maps,
           "\x28\x01\x01m\x01"
           "a\x01\x7d\x01",
           9);
    tb_put(&maps,
           "\x28\x01\x01m\x01"
           "b\x01\x7d\x05",
           9);
    titem k3 = {0x84, {7, 0}, {0, 0}, T_TEXT(t_ascii40), 0, 0};
    tb_item(&maps, &k3);
    tb_u8(&maps, 0);
    before = t.valid;
    text_same(maps.p, maps.n, &t);
    assert_int_equal(t.valid, before + 1);
    text_cuts(maps.p, maps.n, &t);
    print_message("text fast path, crafted: %zu inputs, %zu valid, %zu "
                  "fast\n",
                  t.inputs, t.valid, t.fast);

    /* Byte mutations of updates of a text edited by two clients, and of
     * the one above */
    uint64_t seed = 0x7e47c0de;
    static const uint64_t clients[][2] = {
        {42, 300},
        {(1ULL << 45) + 5, 3},
        {(1ULL << 50) + 7, 11}, /* ids of 8 bytes, left to read_struct */
    };
    text_tally m = {0, 0, 0};
    for (size_t i = 0; i < 4; i++) {
        loom_buf u = {0};
        const uint8_t *p = mix.p;
        size_t n = mix.n;
        if (i < 3) {
            text_edits(clients[i][0], clients[i][1], &seed, &u);
            p = u.data;
            n = u.len;
            text_tally one = {0, 0, 0};
            text_same(p, n, &one);
            assert_int_equal(one.valid, 1);
            if (i < 2) {
                assert_true(one.fast > 0);
            }
        }
        text_mutations(p, n, &seed, 900, &m);
        loom_buf_free(&u);
    }
    print_message("text fast path, mutations: %zu inputs, %zu valid, %zu "
                  "fast\n",
                  m.inputs, m.valid, m.fast);
}

/* Things that look odd but are valid v1, as yjs reads them. */
static void test_accepted_oddities(void **state)
{
    (void)state;
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    static const char *const good[] = {
        "0000",
        "00010500",                 /* a delete-set client with no ranges */
        "000101010500",             /* a zero-length delete range */
        "0100010000",               /* a block with no structs */
        "01010100800300",           /* info 0x80: any ref-0 info is a GC */
        "0101010008020001017d0100", /* parentInfo 2 is an ID parent (yjs: !== 1) */
        "010101000800810000017d0100", /* non-minimal varUint */
        "010101000401016103efbbbf00", /* a BOM is text */
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        bytes b = unhex(good[i]);
        loom_error err;
        int rc = loom_update_validate(b.p, b.len, &err);
        if (rc) {
            fprintf(stderr, "rejected %s: %s at %zu\n", good[i], err.message,
                    err.offset);
        }
        assert_int_equal(rc, 0);
        loom__rupdate u;
        assert_int_equal(loom__update_parse(&a, b.p, b.len, 0, &u, NULL), 0);
        loom__rupdate_free(&u);
        ASSERT_NO_LEAK(c);
        free(b.p);
    }
}

static void test_state_vectors(void **state)
{
    (void)state;
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    /* Duplicates: the last wins; clock 0 is kept on read, dropped on write;
     * output is in descending client order. */
    bytes b = unhex("040105020703000104");
    loom__reader r;
    loom__reader_init(&r, b.p, b.len);
    loom__sv sv;
    loom__sv_init(&sv, &a);
    assert_int_equal(loom__sv_read(&r, &sv), 0);
    assert_int_equal(loom__reader_left(&r), 0);
    assert_int_equal(loom__sv_get(&sv, 1), 4);
    assert_int_equal(loom__sv_get(&sv, 2), 7);
    assert_int_equal(loom__sv_get(&sv, 3), 0);
    assert_int_equal(loom__sv_get(&sv, 9), 0);
    loom_buf out = {0};
    loom__buf_init(&out, &a);
    assert_int_equal(loom__sv_write(&out, &sv), 0);
    assert_buf_hex(&out, "0202070104", "sv write");
    loom_buf_free(&out);
    assert_int_equal(loom__sv_set(&sv, 100, 5), 0);
    assert_int_equal(loom__sv_set(&sv, 0, 5), 0);
    assert_int_equal(loom__sv_get(&sv, 100), 5);
    loom__sv_free(&sv);
    free(b.p);
    ASSERT_NO_LEAK(c);

    assert_int_equal(
        loom_state_vector_validate((const uint8_t *)"\x00", 1, NULL), 0);
    loom_error err;
    assert_int_equal(
        loom_state_vector_validate((const uint8_t *)"\x01\x01", 2, &err),
        LOOM_EMALFORMED);
    assert_int_equal(
        loom_state_vector_validate((const uint8_t *)"\x00\x00", 2, &err),
        LOOM_EMALFORMED);
    assert_int_equal(err.offset, 1);
    assert_int_equal(
        loom_state_vector_validate((const uint8_t *)"\xff\x7f\x01", 3, &err),
        LOOM_EMALFORMED);
    assert_int_equal(err.offset, 0);
}

static void test_delete_sets(void **state)
{
    (void)state;
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    loom__ds ds, other;
    loom__ds_init(&ds, &a);
    loom__ds_init(&other, &a);
    assert_int_equal(loom__ds_add(&ds, 5, 10, 2), 0);
    assert_int_equal(loom__ds_add(&ds, 9, 0, 1), 0);
    assert_int_equal(loom__ds_add(&ds, 5, 0, 3), 0);
    assert_int_equal(loom__ds_add(&ds, 5, 3, 2), 0);
    assert_int_equal(loom__ds_add(&ds, 5, 100, 0), 0); /* ignored */
    assert_int_equal(loom__ds_add(&ds, 1, 4, 4), 0);
    assert_int_equal(loom__ds_add(&other, 7, 1, 1), 0);
    assert_int_equal(loom__ds_add(&other, 5, 12, 3), 0);
    assert_int_equal(loom__ds_add(&other, 0, 1, 1), 0);
    assert_int_equal(loom__ds_merge_into(&ds, &other), 0);
    loom__ds_normalize(&ds);
    loom_buf out = {0};
    loom__buf_init(&out, &a);
    assert_int_equal(loom__ds_write(&out, &ds), 0);
    /* 9:[0,1) 7:[1,2) 5:[0,5)+[10,15) 1:[4,8) 0:[1,2) */
    assert_buf_hex(&out, "050901000107010101050200050a050101040400010101",
                   "ds");
    assert_true(loom__ds_contains(&ds, 5, 4));
    assert_false(loom__ds_contains(&ds, 5, 5));
    assert_true(loom__ds_contains(&ds, 5, 14));
    assert_false(loom__ds_contains(&ds, 5, 15));
    assert_false(loom__ds_contains(&ds, 6, 0));
    assert_false(loom__ds_empty(&ds));
    assert_non_null(loom__ds_find(&ds, 7));
    assert_null(loom__ds_find(&ds, 8));

    /* Reading: a client listed twice gets both entries' ranges, in order;
     * clients come out descending; zero-length ranges stay. */
    bytes b = unhex("03"
                    "01"
                    "01"
                    "0502"
                    "03"
                    "01"
                    "0000"
                    "01"
                    "01"
                    "0101");
    loom__reader r;
    loom__reader_init(&r, b.p, b.len);
    loom__ds rd;
    loom__ds_init(&rd, &a);
    assert_int_equal(loom__ds_read(&r, &rd), 0);
    loom_buf o2 = {0};
    loom__buf_init(&o2, &a);
    assert_int_equal(loom__ds_write(&o2, &rd), 0);
    assert_buf_hex(&o2, "0203010000010205020101", "ds read");
    loom_buf_free(&o2);
    loom__ds_free(&rd);
    free(b.p);
    loom_buf_free(&out);
    loom__ds_free(&ds);
    loom__ds_free(&other);
    ASSERT_NO_LEAK(c);
}

/* ---- allocation failures ------------------------------------------------ */

/* final[0].update of a case file. */
static bytes final_of(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/cases/%s.json", LOOM_VECTORS_DIR, name);
    json_t *j = load(path);
    json_t *f = json_array_get(json_object_get(j, "final"), 0);
    bytes b = unhex(json_string_value(json_object_get(f, "update")));
    json_decref(j);
    return b;
}

typedef struct op_ctx {
    bytes in[8];
    size_t n;
    bytes sv;
} op_ctx;

static int op_merge(const loom_allocator *a, loom_buf *out, const op_ctx *ctx)
{
    const uint8_t *p[8];
    size_t lens[8];
    for (size_t i = 0; i < ctx->n; i++) {
        p[i] = ctx->in[i].p;
        lens[i] = ctx->in[i].len;
    }
    return loom_update_merge(a, p, lens, ctx->n, out, NULL);
}

static int op_diff(const loom_allocator *a, loom_buf *out, const op_ctx *ctx)
{
    return loom_update_diff(a, ctx->in[0].p, ctx->in[0].len, ctx->sv.p,
                            ctx->sv.len, out, NULL);
}

static int op_sv(const loom_allocator *a, loom_buf *out, const op_ctx *ctx)
{
    return loom_update_state_vector(a, ctx->in[0].p, ctx->in[0].len, out, NULL);
}

/* Fails every allocation of `op` in turn: each run must fail with
 * LOOM_ENOMEM, leave `out` alone and free everything. */
static void fail_each_allocation(int (*op)(const loom_allocator *,
                                           loom_buf *,
                                           const op_ctx *),
                                 const op_ctx *ctx)
{
    test_alloc c;
    loom_allocator a = test_alloc_init(&c);
    loom_buf ref = {0};
    assert_int_equal(op(&a, &ref, ctx), 0);
    size_t total = c.calls;
    loom_buf_free(&ref);
    ASSERT_NO_LEAK(c);
    assert_true(total > 0);
    for (size_t k = 1; k <= total; k++) {
        test_alloc f;
        loom_allocator fa = test_alloc_init(&f);
        f.fail_at = k;
        loom_buf out = {(uint8_t *)&f, 77, 88, NULL}; /* must stay as it is */
        int rc = op(&fa, &out, ctx);
        assert_int_equal(rc, LOOM_ENOMEM);
        assert_ptr_equal(out.data, (uint8_t *)&f);
        assert_int_equal(out.len, 77);
        ASSERT_NO_LEAK(f);
    }
}

static void test_alloc_failures(void **state)
{
    (void)state;
    static const char *const names[] = {
        "subdoc",    "legacy-content-json", "text-format-bold",
        "xml-types", "map-any-all-tags",    "gc-delete-nested-type"};
    op_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.n = sizeof(names) / sizeof(names[0]);
    for (size_t i = 0; i < ctx.n; i++) {
        ctx.in[i] = final_of(names[i]);
    }
    fail_each_allocation(op_merge, &ctx);
    ctx.sv = unhex("0201020301");
    for (size_t i = 0; i < ctx.n; i++) {
        op_ctx one = ctx;
        one.in[0] = ctx.in[i];
        one.n = 1;
        fail_each_allocation(op_diff, &one);
        fail_each_allocation(op_sv, &one);
        fail_each_allocation(op_merge, &one);
    }
    for (size_t i = 0; i < ctx.n; i++) {
        free(ctx.in[i].p);
    }
    free(ctx.sv.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_checks),
        cmocka_unit_test(test_node_cases),
        cmocka_unit_test(test_extra_cases),
        cmocka_unit_test(test_roundtrip_finals),
        cmocka_unit_test(test_apply_self_ref),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_fast_struct),
        cmocka_unit_test(test_text_run),
        cmocka_unit_test(test_fast_shapes),
        cmocka_unit_test(test_accepted_oddities),
        cmocka_unit_test(test_state_vectors),
        cmocka_unit_test(test_delete_sets),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
