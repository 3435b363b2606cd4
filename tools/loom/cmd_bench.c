/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/cmd_bench.c: `loom bench ...`, the measuring tools of loom's
 * performance work. Each workload runs in one process and prints one JSON
 * line of figures (bench/README.md says what each figure means; bench/
 * yjs-bench.mjs runs the same workloads in the real Yjs and prints the same
 * keys, and bench/compare.sh puts the two side by side).
 *
 *   trace FILE [--updates] [--repeat K]   replay a josephg/editing-traces
 *                                         file into a Text (trace.c)
 *   map N [--keys K]                      N map sets of small objects
 *   b1 N                                  crdt-benchmarks B1.1
 *
 * Every workload checks its result (the final text against endContent, the
 * two peers of b1 against each other, the reloaded doc against the first)
 * and exits 1 when it is wrong: a fast wrong answer is not a figure.
 * Documents get fixed client ids (1, then 2 for a second peer), as
 * yjs-bench.mjs sets them, so the encoded sizes of the two are comparable
 * byte for byte. Input preparation (reading and parsing the trace, UTF-16
 * conversion) is outside every timing.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef __GLIBC__
#    include <malloc.h>
#endif

#include <loom/loom.h>

#include "trace.h"

/* ---- measuring --------------------------------------------------------- */

/* A loom_allocator that counts the bytes the library holds (the sizes it
 * asked for, without malloc's own headers), over loom's default allocator
 * as an embedder's counting allocator would be. */
typedef struct counter {
    size_t live;
    size_t peak;
} counter;

static void count_add(counter *c, size_t n)
{
    c->live += n;
    if (c->live > c->peak) {
        c->peak = c->live;
    }
}

static void *count_malloc(void *ud, size_t size)
{
    const loom_allocator *d = loom_allocator_default();
    void *p = d->malloc_fn(d->ud, size ? size : 1);
    if (p != NULL) {
        count_add(ud, size);
    }
    return p;
}

static void *count_realloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    const loom_allocator *d = loom_allocator_default();
    void *p = ptr != NULL ? d->realloc_fn(d->ud, ptr, old_size, size ? size : 1)
                          : d->malloc_fn(d->ud, size ? size : 1);
    if (p != NULL) {
        counter *c = ud;
        c->live -= ptr != NULL ? old_size : 0;
        count_add(c, size);
    }
    return p;
}

static void count_free(void *ud, void *ptr, size_t size)
{
    if (ptr != NULL) {
        counter *c = ud;
        const loom_allocator *d = loom_allocator_default();
        c->live -= size;
        d->free_fn(d->ud, ptr, size);
    }
}

static void counter_init(counter *c, loom_allocator *a)
{
    memset(c, 0, sizeof(*c));
    a->malloc_fn = count_malloc;
    a->realloc_fn = count_realloc;
    a->free_fn = count_free;
    a->ud = c;
}

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    (void)clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Wall-clock time, for every *_ms figure. */
static double now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

/* CPU time of the process, for apply_cpu_ms (less disturbed than wall time
 * on a busy machine). */
static double cpu_ms(void)
{
    return clock_ms(CLOCK_PROCESS_CPUTIME_ID);
}

/* Forgets the memory used so far (the parsed trace) in the peak RSS figure:
 * gives freed heap back to the system, then resets the kernel's high-water
 * mark (Linux >= 4.0, /proc/self/clear_refs "5"). Best effort: without it
 * the figure includes the parse. */
static void reset_peak_rss(void)
{
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f != NULL) {
        (void)fputs("5", f);
        (void)fclose(f);
    }
}

static unsigned long long peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    return (unsigned long long)ru.ru_maxrss * 1024ull;
}

/* What a workload prints. update_bytes: omitted (map), null (trace without
 * --updates) or a number. */
typedef enum update_key { UPD_OMIT, UPD_NULL, UPD_VALUE } update_key;

typedef struct figures {
    size_t ops;
    double apply_ms;
    double apply_cpu_ms;
    update_key upd;
    unsigned long long update_bytes;
    double encode_ms;
    size_t v1_bytes;
    double load_ms;
    double load_warm_ms;
    size_t doc_mem;
} figures;

/* Prints the JSON line, with the peak RSS as it is now. */
static int print_figures(const figures *f)
{
    char ub[48] = "";
    if (f->upd == UPD_NULL) {
        (void)snprintf(ub, sizeof(ub), "\"update_bytes\":null,");
    } else if (f->upd == UPD_VALUE) {
        (void)snprintf(ub, sizeof(ub), "\"update_bytes\":%llu,",
                       f->update_bytes);
    }
    (void)printf("{\"ops\":%zu,\"apply_ms\":%.3f,%s\"encode_ms\":%.3f,"
                 "\"v1_bytes\":%zu,\"load_ms\":%.3f,\"load_warm_ms\":%.3f,"
                 "\"doc_mem_bytes\":%zu,\"peak_rss_bytes\":%llu,"
                 "\"apply_cpu_ms\":%.3f}\n",
                 f->ops, f->apply_ms, ub, f->encode_ms, f->v1_bytes, f->load_ms,
                 f->load_warm_ms, f->doc_mem, peak_rss_bytes(),
                 f->apply_cpu_ms);
    if (fflush(stdout) != 0) {
        cli_error("write error: %s", strerror(errno));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Times the ops: start, then stop into f->apply_ms and f->apply_cpu_ms. */
typedef struct stopwatch {
    double wall;
    double cpu;
} stopwatch;

static void sw_start(stopwatch *sw)
{
    sw->cpu = cpu_ms();
    sw->wall = now_ms();
}

static void sw_stop(const stopwatch *sw, figures *f)
{
    f->apply_ms = now_ms() - sw->wall;
    f->apply_cpu_ms = cpu_ms() - sw->cpu;
}

/* ---- shared helpers ---------------------------------------------------- */

static int new_doc(uint64_t client, const loom_allocator *a, loom_doc **out)
{
    loom_doc_options opts;
    loom_doc_options_init(&opts);
    opts.client_id = client;
    opts.gc = 1;
    opts.alloc = a;
    int rc = loom_doc_new(&opts, out);
    if (rc != LOOM_OK) {
        cli_error("bench: cannot create a document: %s", loom_strerror(rc));
        return CLI_FAIL;
    }
    return CLI_OK;
}

static int lib_fail(const char *what, int rc)
{
    cli_error("bench: %s: %s", what, loom_strerror(rc));
    return CLI_FAIL;
}

static int
get_root(loom_doc *doc, const char *name, loom_type_kind kind, loom_type **out)
{
    int rc = loom_doc_get(doc, name, strlen(name), kind, out);
    return rc == LOOM_OK ? CLI_OK : lib_fail("get root", rc);
}

/* Loads after the first: the same update applied to WARM_LOADS more new
 * docs, each freed after, as a server loads documents again and again; the
 * median goes into load_warm_ms (bench/yjs-bench.mjs does the same). */
#define WARM_LOADS 5

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int load_warm(const loom_buf *v1, double *out)
{
    double ms[WARM_LOADS];
    for (int i = 0; i < WARM_LOADS; i++) {
        loom_doc *d = NULL;
        if (new_doc(3, NULL, &d) != CLI_OK) {
            return CLI_FAIL;
        }
        double t0 = now_ms();
        int rc = loom_doc_apply_update(d, v1->data, v1->len, NULL, NULL);
        ms[i] = now_ms() - t0;
        loom_doc_free(d);
        if (rc != LOOM_OK) {
            return lib_fail("load", rc);
        }
    }
    qsort(ms, WARM_LOADS, sizeof(ms[0]), cmp_double);
    *out = ms[WARM_LOADS / 2];
    return CLI_OK;
}

/* encodeStateAsUpdate of `doc` (timed into f->encode_ms), then that update
 * applied to a new doc *loaded (client 2; timed into f->load_ms), then the
 * warm loads. */
static int encode_and_load(const loom_doc *doc, figures *f, loom_doc **loaded)
{
    loom_error err;
    memset(&err, 0, sizeof(err));
    loom_buf v1 = {0};
    double t0 = now_ms();
    int rc = loom_doc_encode_state_as_update(doc, NULL, 0, &v1, &err);
    f->encode_ms = now_ms() - t0;
    f->v1_bytes = v1.len;
    if (rc != LOOM_OK) {
        return lib_fail("encode", rc);
    }
    if (new_doc(2, NULL, loaded) != CLI_OK) {
        loom_buf_free(&v1);
        return CLI_FAIL;
    }
    t0 = now_ms();
    rc = loom_doc_apply_update(*loaded, v1.data, v1.len, NULL, &err);
    f->load_ms = now_ms() - t0;
    if (rc != LOOM_OK) {
        loom_buf_free(&v1);
        cli_error("bench: load: %s (byte %zu)",
                  err.message[0] ? err.message : loom_strerror(rc), err.offset);
        return CLI_FAIL;
    }
    int cli = load_warm(&v1, &f->load_warm_ms);
    loom_buf_free(&v1);
    return cli;
}

/* The text of `t` as a malloc'd loom_buf. */
static int text_of(const loom_type *t, loom_buf *out)
{
    memset(out, 0, sizeof(*out));
    int rc = loom_text_to_string(t, out);
    return rc == LOOM_OK ? CLI_OK : lib_fail("text to string", rc);
}

/* Parses a count argument (decimal, > 0). */
static int parse_count(const char *what, const char *s, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v == 0 ||
        v > (unsigned long long)SIZE_MAX / 64) {
        cli_error("bench: %s: expected a positive count, got '%s'", what, s);
        return CLI_USAGE;
    }
    *out = (size_t)v;
    return CLI_OK;
}

/* ---- provider-style update sink ---------------------------------------- */

/* What a provider does with every update: copy it out (to a socket buffer,
 * say) and count the bytes. */
typedef struct update_sink {
    uint8_t *copy;
    size_t cap;
    unsigned long long bytes;
    unsigned long long count;
    loom_doc *peer; /* b1: the update is applied here too */
    int failed;
} update_sink;

static void on_update(void *ud,
                      loom_doc *doc,
                      const uint8_t *update,
                      size_t len,
                      const loom_txn *txn)
{
    (void)doc;
    (void)txn;
    update_sink *s = ud;
    s->bytes += len;
    s->count++;
    if (s->peer != NULL) {
        if (loom_doc_apply_update(s->peer, update, len, NULL, NULL) !=
            LOOM_OK) {
            s->failed = 1;
        }
        return;
    }
    if (len > s->cap) {
        size_t ncap = len > 4096 ? len : 4096;
        uint8_t *p = realloc(s->copy, ncap);
        if (p == NULL) {
            s->failed = 1;
            return;
        }
        s->copy = p;
        s->cap = ncap;
    }
    memcpy(s->copy, update, len);
}

/* ---- trace ------------------------------------------------------------- */

static int replay(loom_doc *doc, loom_type *text, const trace *t, size_t repeat)
{
    for (size_t r = 0; r < repeat; r++) {
        size_t base = r * t->end_units;
        for (size_t i = 0; i < t->n_patches; i++) {
            const trace_patch *p = &t->patches[i];
            int rc = loom_doc_transact_begin(doc, NULL);
            if (rc == LOOM_OK && p->del > 0) {
                rc = loom_text_delete(text, base + p->pos, p->del);
            }
            if (rc == LOOM_OK && p->ins_len > 0) {
                rc = loom_text_insert(text, base + p->pos, t->text + p->ins_off,
                                      p->ins_len, NULL);
            }
            int erc = loom_doc_transact_end(doc);
            if (rc == LOOM_OK) {
                rc = erc;
            }
            if (rc != LOOM_OK) {
                cli_error("bench: patch %zu (repeat %zu): %s", i, r,
                          loom_strerror(rc));
                return CLI_FAIL;
            }
        }
    }
    return CLI_OK;
}

/* Is `got` endContent repeated `repeat` times? */
static int text_matches(const loom_buf *got, const trace *t, size_t repeat)
{
    if (got->len != t->end_len * repeat) {
        return 0;
    }
    for (size_t r = 0; r < repeat; r++) {
        if (t->end_len > 0 &&
            memcmp(got->data + r * t->end_len, t->end, t->end_len) != 0) {
            return 0;
        }
    }
    return 1;
}

static int check_text(const char *what,
                      const loom_type *text,
                      const trace *t,
                      size_t repeat)
{
    loom_buf got;
    if (text_of(text, &got) != CLI_OK) {
        return CLI_FAIL;
    }
    int ok = text_matches(&got, t, repeat);
    if (!ok) {
        size_t at = 0;
        size_t want_len = t->end_len * repeat;
        while (at < got.len && at < want_len &&
               got.data[at] == (uint8_t)t->end[at % t->end_len]) {
            at++;
        }
        cli_error("bench: %s text differs from endContent%s at byte %zu "
                  "(length %zu, expected %zu)",
                  what, repeat > 1 ? " (repeated)" : "", at, got.len, want_len);
    }
    loom_buf_free(&got);
    return ok ? CLI_OK : CLI_FAIL;
}

static int trace_run(const trace *t, int updates, size_t repeat, figures *f)
{
    reset_peak_rss();
    counter cnt;
    loom_allocator alloc;
    counter_init(&cnt, &alloc);
    loom_doc *doc = NULL;
    loom_doc *loaded = NULL;
    loom_type *text = NULL;
    update_sink sink;
    memset(&sink, 0, sizeof(sink));
    int rc = new_doc(1, &alloc, &doc);
    if (rc == CLI_OK) {
        rc = get_root(doc, "text", LOOM_TYPE_TEXT, &text);
    }
    if (rc == CLI_OK && updates) {
        int lrc = loom_doc_on_update(doc, on_update, &sink, NULL);
        rc = lrc == LOOM_OK ? CLI_OK : lib_fail("on_update", lrc);
    }
    if (rc == CLI_OK) {
        stopwatch sw;
        sw_start(&sw);
        rc = replay(doc, text, t, repeat);
        sw_stop(&sw, f);
    }
    if (rc == CLI_OK && sink.failed) {
        cli_error("bench: out of memory copying an update");
        rc = CLI_FAIL;
    }
    f->ops = t->n_patches * repeat;
    f->doc_mem = cnt.live;
    f->upd = updates ? UPD_VALUE : UPD_NULL;
    f->update_bytes = sink.bytes;
    if (rc == CLI_OK) {
        rc = check_text("replayed", text, t, repeat);
    }
    if (rc == CLI_OK) {
        rc = encode_and_load(doc, f, &loaded);
    }
    loom_type *text2 = NULL;
    if (rc == CLI_OK) {
        rc = get_root(loaded, "text", LOOM_TYPE_TEXT, &text2);
    }
    if (rc == CLI_OK) {
        rc = check_text("reloaded", text2, t, repeat);
    }
    if (rc == CLI_OK) {
        rc = print_figures(f);
    }
    loom_doc_free(loaded);
    loom_doc_free(doc);
    free(sink.copy);
    return rc;
}

static int bench_trace(int argc, char **argv)
{
    const char *path = NULL;
    int updates = 0;
    size_t repeat = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--updates") == 0) {
            updates = 1;
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            int rc = parse_count("--repeat", argv[++i], &repeat);
            if (rc != CLI_OK) {
                return rc;
            }
        } else if (argv[i][0] != '-' && path == NULL) {
            path = argv[i];
        } else {
            cli_error("bench trace: unexpected argument '%s' (see `loom help "
                      "bench`)",
                      argv[i]);
            return CLI_USAGE;
        }
    }
    if (path == NULL) {
        cli_error("bench trace: no trace file given (see `loom help bench`)");
        return CLI_USAGE;
    }
    trace t;
    int rc = trace_load(path, &t);
    if (rc != CLI_OK) {
        return rc;
    }
    if (t.end_units > 0 && repeat > (SIZE_MAX / 4) / t.end_units) {
        trace_free(&t);
        cli_error("bench trace: --repeat too large");
        return CLI_USAGE;
    }
    figures f;
    memset(&f, 0, sizeof(f));
    rc = trace_run(&t, updates, repeat, &f);
    trace_free(&t);
    return rc;
}

/* ---- map --------------------------------------------------------------- */

/*
 * The values of the map workload are built in the timed loop, as
 * yjs-bench.mjs builds its objects there, but from a bump arena that is
 * rewound after every op: the loom_any nodes of one value live together in
 * a block that is reused, instead of four malloc/free pairs per op. The
 * value and the bytes it encodes to are the same. Nothing is freed
 * individually; a value larger than the block fails as out of memory (these
 * take a few hundred bytes).
 */
#define ARENA_BYTES 4096

typedef struct arena {
    unsigned char *base;
    size_t used;
} arena;

static void *arena_malloc(void *ud, size_t size)
{
    arena *ar = ud;
    size_t n = (size + 15u) & ~(size_t)15u;
    if (ar->base == NULL || n > ARENA_BYTES - ar->used) {
        return NULL;
    }
    void *p = ar->base + ar->used;
    ar->used += n;
    return p;
}

static void *arena_realloc(void *ud, void *ptr, size_t old_size, size_t size)
{
    void *p = arena_malloc(ud, size);
    if (p != NULL && ptr != NULL) {
        memcpy(p, ptr, old_size < size ? old_size : size);
    }
    return p;
}

static void arena_free(void *ud, void *ptr, size_t size)
{
    (void)ud;
    (void)ptr;
    (void)size;
}

/* Writes v in decimal at the end of buf (cap bytes, enough for a size_t);
 * returns the first digit. snprintf was a third of the value's cost. */
static char *utoa_end(size_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

/* {id: i, title: "task i", done: i % 3 == 0}, the value of op i, built
 * with allocator a. */
static int todo_value(const loom_allocator *a, size_t i, loom_any **out)
{
    char title[40];
    char *digits = utoa_end(i, title + sizeof(title));
    size_t dl = (size_t)(title + sizeof(title) - digits);
    memcpy(title, "task ", 5);
    memmove(title + 5, digits, dl);
    size_t tl = 5 + dl;
    loom_any *o = NULL;
    loom_any *id = NULL;
    loom_any *ti = NULL;
    loom_any *done = NULL;
    int rc = loom_any_new_object(a, &o);
    if (rc == LOOM_OK) {
        rc = loom_any_new_number(a, (double)i, &id);
    }
    if (rc == LOOM_OK) {
        rc = loom_any_object_set(o, "id", 2, id);
        id = rc == LOOM_OK ? NULL : id;
    }
    if (rc == LOOM_OK) {
        rc = loom_any_new_string(a, title, tl, &ti);
    }
    if (rc == LOOM_OK) {
        rc = loom_any_object_set(o, "title", 5, ti);
        ti = rc == LOOM_OK ? NULL : ti;
    }
    if (rc == LOOM_OK) {
        rc = loom_any_new_bool(a, i % 3 == 0, &done);
    }
    if (rc == LOOM_OK) {
        rc = loom_any_object_set(o, "done", 4, done);
        done = rc == LOOM_OK ? NULL : done;
    }
    loom_any_free(id);
    loom_any_free(ti);
    loom_any_free(done);
    if (rc != LOOM_OK) {
        loom_any_free(o);
        return lib_fail("build a value", rc);
    }
    *out = o;
    return CLI_OK;
}

/* "key<i>" (or i % keys) into buf (40 bytes); returns its length. */
static int map_key(size_t i, size_t keys, char *buf, size_t cap)
{
    char digits[24];
    char *d = utoa_end(keys ? i % keys : i, digits + sizeof(digits));
    size_t dl = (size_t)(digits + sizeof(digits) - d);
    if (3 + dl > cap) {
        return 0;
    }
    memcpy(buf, "key", 3);
    memcpy(buf + 3, d, dl);
    return (int)(3 + dl);
}

/* The doc's map holds `want` keys and the value of the last op. */
static int
check_map(const char *what, const loom_type *map, size_t n, size_t keys)
{
    size_t want = keys && keys < n ? keys : n;
    if (loom_map_size(map) != want) {
        cli_error("bench: %s map has %zu keys, expected %zu", what,
                  loom_map_size(map), want);
        return CLI_FAIL;
    }
    char key[40];
    int kl = map_key(n - 1, keys, key, sizeof(key));
    loom_any *got = NULL;
    loom_any *exp = NULL;
    loom_type *sub = NULL;
    int rc = loom_map_get(map, key, (size_t)kl, &got, &sub);
    if (rc != LOOM_OK) {
        return lib_fail("map get", rc);
    }
    rc = todo_value(NULL, n - 1, &exp);
    int ok = rc == CLI_OK && got != NULL && loom_any_equal(got, exp);
    loom_any_free(got);
    loom_any_free(exp);
    if (rc == CLI_OK && !ok) {
        cli_error("bench: %s map: wrong value at %s", what, key);
    }
    return ok ? CLI_OK : CLI_FAIL;
}

static int map_run(size_t n, size_t keys)
{
    reset_peak_rss();
    counter cnt;
    loom_allocator alloc;
    counter_init(&cnt, &alloc);
    loom_doc *doc = NULL;
    loom_doc *loaded = NULL;
    loom_type *map = NULL;
    figures f;
    memset(&f, 0, sizeof(f));
    int rc = new_doc(1, &alloc, &doc);
    if (rc == CLI_OK) {
        rc = get_root(doc, "map", LOOM_TYPE_MAP, &map);
    }
    arena ar = {malloc(ARENA_BYTES), 0};
    loom_allocator arena_alloc = {arena_malloc, arena_realloc, arena_free, &ar};
    if (rc == CLI_OK && ar.base == NULL) {
        cli_error("bench: out of memory");
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK) {
        stopwatch sw;
        sw_start(&sw);
        for (size_t i = 0; i < n && rc == CLI_OK; i++) {
            char key[40];
            int kl = map_key(i, keys, key, sizeof(key));
            loom_any *v = NULL;
            ar.used = 0;
            rc = todo_value(&arena_alloc, i, &v);
            if (rc == CLI_OK) {
                int lrc = loom_map_set(map, key, (size_t)kl, v);
                rc = lrc == LOOM_OK ? CLI_OK : lib_fail("map set", lrc);
            }
            loom_any_free(v);
        }
        sw_stop(&sw, &f);
    }
    free(ar.base);
    f.ops = n;
    f.doc_mem = cnt.live;
    f.upd = UPD_OMIT;
    if (rc == CLI_OK) {
        rc = check_map("first", map, n, keys);
    }
    if (rc == CLI_OK) {
        rc = encode_and_load(doc, &f, &loaded);
    }
    loom_type *map2 = NULL;
    if (rc == CLI_OK) {
        rc = get_root(loaded, "map", LOOM_TYPE_MAP, &map2);
    }
    if (rc == CLI_OK) {
        rc = check_map("reloaded", map2, n, keys);
    }
    if (rc == CLI_OK) {
        rc = print_figures(&f);
    }
    loom_doc_free(loaded);
    loom_doc_free(doc);
    return rc;
}

static int bench_map(int argc, char **argv)
{
    size_t n = 0;
    size_t keys = 0;
    int have_n = 0;
    for (int i = 1; i < argc; i++) {
        int rc = CLI_OK;
        if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc) {
            rc = parse_count("--keys", argv[++i], &keys);
        } else if (!have_n && argv[i][0] != '-') {
            rc = parse_count("N", argv[i], &n);
            have_n = 1;
        } else {
            cli_error("bench map: unexpected argument '%s' (see `loom help "
                      "bench`)",
                      argv[i]);
            rc = CLI_USAGE;
        }
        if (rc != CLI_OK) {
            return rc;
        }
    }
    if (!have_n) {
        cli_error("bench map: N is missing (see `loom help bench`)");
        return CLI_USAGE;
    }
    return map_run(n, keys);
}

/* ---- b1 ---------------------------------------------------------------- */

/* xorshift32; yjs-bench.mjs draws the same letters. */
static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* The peers hold the same n letters, and so does the reloaded doc. */
static int b1_check(const loom_type *t1,
                    const loom_type *t2,
                    const loom_type *t3,
                    size_t n)
{
    loom_buf a = {0};
    loom_buf b = {0};
    loom_buf c = {0};
    int rc = text_of(t1, &a);
    if (rc == CLI_OK) {
        rc = text_of(t2, &b);
    }
    if (rc == CLI_OK) {
        rc = text_of(t3, &c);
    }
    if (rc == CLI_OK &&
        (a.len != n || b.len != n || memcmp(a.data, b.data, n) != 0)) {
        cli_error("bench: b1: the two peers differ");
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK && (c.len != n || memcmp(a.data, c.data, n) != 0)) {
        cli_error("bench: b1: the reloaded doc differs");
        rc = CLI_FAIL;
    }
    loom_buf_free(&a);
    loom_buf_free(&b);
    loom_buf_free(&c);
    return rc;
}

static int b1_run(size_t n)
{
    reset_peak_rss();
    counter cnt;
    loom_allocator alloc;
    counter_init(&cnt, &alloc);
    loom_doc *doc = NULL;
    loom_doc *peer = NULL;
    loom_doc *loaded = NULL;
    loom_type *t1 = NULL;
    loom_type *t2 = NULL;
    update_sink sink;
    memset(&sink, 0, sizeof(sink));
    figures f;
    memset(&f, 0, sizeof(f));
    int rc = new_doc(1, &alloc, &doc);
    if (rc == CLI_OK) {
        rc = new_doc(2, &alloc, &peer); /* counted too, as in yjs-bench */
    }
    if (rc == CLI_OK) {
        rc = get_root(doc, "text", LOOM_TYPE_TEXT, &t1);
    }
    if (rc == CLI_OK) {
        rc = get_root(peer, "text", LOOM_TYPE_TEXT, &t2);
    }
    if (rc == CLI_OK) {
        sink.peer = peer;
        int lrc = loom_doc_on_update(doc, on_update, &sink, NULL);
        rc = lrc == LOOM_OK ? CLI_OK : lib_fail("on_update", lrc);
    }
    if (rc == CLI_OK) {
        uint32_t seed = 0x9E3779B9u;
        stopwatch sw;
        sw_start(&sw);
        for (size_t i = 0; i < n && rc == CLI_OK; i++) {
            char c = (char)('a' + next_rand(&seed) % 26);
            int lrc = loom_text_insert(t1, i, &c, 1, NULL);
            rc = lrc == LOOM_OK ? CLI_OK : lib_fail("text insert", lrc);
        }
        sw_stop(&sw, &f);
    }
    if (rc == CLI_OK && sink.failed) {
        cli_error("bench: b1: the peer refused an update");
        rc = CLI_FAIL;
    }
    f.ops = n;
    f.doc_mem = cnt.live;
    f.upd = UPD_VALUE;
    f.update_bytes = sink.bytes;
    if (rc == CLI_OK) {
        rc = encode_and_load(doc, &f, &loaded);
    }
    loom_type *t3 = NULL;
    if (rc == CLI_OK) {
        rc = get_root(loaded, "text", LOOM_TYPE_TEXT, &t3);
    }
    if (rc == CLI_OK) {
        rc = b1_check(t1, t2, t3, n);
    }
    if (rc == CLI_OK) {
        rc = print_figures(&f);
    }
    loom_doc_free(loaded);
    loom_doc_free(peer);
    loom_doc_free(doc);
    return rc;
}

static int bench_b1(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        cli_error("bench b1: expected N (see `loom help bench`)");
        return CLI_USAGE;
    }
    size_t n = 0;
    int rc = parse_count("N", argv[1], &n);
    return rc == CLI_OK ? b1_run(n) : rc;
}

/* ---- dispatch ---------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} bench_commands[] = {
    {"trace", bench_trace},
    {"map", bench_map},
    {"b1", bench_b1},
    {"store", cli_bench_store}, /* bench_store.c */
};
#define N_BENCH_COMMANDS (sizeof(bench_commands) / sizeof(bench_commands[0]))

void cli_bench_help(void)
{
    (void)printf(
        "usage: loom bench WORKLOAD ARGS...\n"
        "\n"
        "Run a workload against libloom and print one JSON line of figures.\n"
        "Docs use client ids 1 (and 2), gc on. Times are wall-clock ms.\n"
        "\n"
        "  trace FILE [--updates] [--repeat K]\n"
        "      replay a josephg/editing-traces sequential trace (.json or\n"
        "      .json.gz) into a Text, one transaction per patch; check the\n"
        "      text against endContent. --updates: also take every\n"
        "      transaction's v1 update (loom_doc_on_update) and copy it, as\n"
        "      a provider would. --repeat K: replay the edits K times, each\n"
        "      time appended after the previous copy (a K times larger doc).\n"
        "  map N [--keys K]\n"
        "      N map sets of {id, title, done}, one transaction each, on N\n"
        "      distinct keys (or K keys, overwriting)\n"
        "  b1 N\n"
        "      crdt-benchmarks B1.1: append N random letters, one\n"
        "      transaction each, applying every update to a second doc\n"
        "  store [--n N] [--trace FILE] [--durable K] [--batch B] [--runs R]\n"
        "        [--dir D]\n"
        "      the durable store against raw SQLite (bench_store.c; its own\n"
        "      keys, see bench/README.md)\n"
        "\n"
        "Then each encodes the doc (v1) and loads it into a new doc. Keys:\n"
        "ops, apply_ms, update_bytes (trace --updates, b1), encode_ms,\n"
        "v1_bytes, load_ms, load_warm_ms (median of 5 more loads into new\n"
        "docs), doc_mem_bytes (heap held by the doc after the\n"
        "ops, counted by its allocator; b1: both docs), peak_rss_bytes\n"
        "(ru_maxrss, reset after input preparation where Linux allows),\n"
        "apply_cpu_ms (process CPU time of the ops).\n"
        "\n"
        "Exit status: 0 success, 1 failure or a wrong result, 2 usage.\n");
}

int cli_bench_main(int argc, char **argv)
{
    if (argc < 2) {
        cli_error("bench: missing workload (see `loom help bench`)");
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 ||
        strcmp(sub, "help") == 0) {
        cli_bench_help();
        return CLI_OK;
    }
    for (size_t i = 0; i < N_BENCH_COMMANDS; i++) {
        if (strcmp(bench_commands[i].name, sub) == 0) {
            return bench_commands[i].run(argc - 1, argv + 1);
        }
    }
    cli_error("bench: unknown workload '%s' (see `loom help bench`)", sub);
    return CLI_USAGE;
}
