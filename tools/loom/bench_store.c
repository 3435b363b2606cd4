/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/bench_store.c: `loom bench store`, the durable store measured
 * against its floor, raw SQLite, in one run (bench/README.md).
 *
 * Input: real v1 updates, one per edit: N one-character typing edits of a
 * Text (default), or the patches of an editing trace (--trace FILE). Then:
 *
 *  - durable appends, one per transaction (loom_store_append on the first
 *    --durable K updates), and batched (loom_store_append_many, --batch B
 *    per call, all updates);
 *  - the floor: the same bytes inserted into a plain SQLite table
 *    (INTEGER PRIMARY KEY, BLOB) with the store's pragmas (WAL,
 *    synchronous=FULL), one per transaction and B per transaction;
 *  - the large document: every update appended (batched, no automatic
 *    compaction), compacted, and loaded from a freshly opened store.
 *
 * The append figures are medians of --runs R (default 3) runs, store and
 * floor alternating.
 *
 * This file includes sqlite3.h for the floor only: the figures are about
 * what the store adds to SQLite, so SQLite itself must be measured beside
 * it. The library keeps SQLite to src/store.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <loom/loom.h>
#include <sqlite3.h>

#include "trace.h"

typedef struct upd_list {
    uint8_t **data;
    size_t *lens;
    size_t n, cap;
    size_t bytes;
    int oom;
} upd_list;

static void upd_free(upd_list *u)
{
    for (size_t i = 0; i < u->n; i++) {
        free(u->data[i]);
    }
    free(u->data);
    free(u->lens);
    memset(u, 0, sizeof(*u));
}

static void collect(void *ud,
                    loom_doc *doc,
                    const uint8_t *update,
                    size_t len,
                    const loom_txn *txn)
{
    (void)doc;
    (void)txn;
    upd_list *u = ud;
    if (u->oom) {
        return;
    }
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 1024;
        uint8_t **d = realloc(u->data, cap * sizeof(*d));
        size_t *l = d ? realloc(u->lens, cap * sizeof(*l)) : NULL;
        if (d != NULL) {
            u->data = d;
        }
        if (l == NULL) {
            u->oom = 1;
            return;
        }
        u->lens = l;
        u->cap = cap;
    }
    uint8_t *c = malloc(len ? len : 1);
    if (c == NULL) {
        u->oom = 1;
        return;
    }
    memcpy(c, update, len);
    u->data[u->n] = c;
    u->lens[u->n] = len;
    u->n++;
    u->bytes += len;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A document (client 1, gc on) recording its updates into `u`; the text
 * it ends with is written to *units (UTF-16 length). */
static int
make_updates(const char *trace_path, size_t n, upd_list *u, size_t *units)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 1;
    loom_doc *doc = NULL;
    loom_type *t = NULL;
    uint32_t sub = 0;
    int rc = loom_doc_new(&o, &doc);
    if (rc == LOOM_OK) {
        rc = loom_doc_get(doc, "text", 4, LOOM_TYPE_TEXT, &t);
    }
    if (rc == LOOM_OK) {
        rc = loom_doc_on_update(doc, collect, u, &sub);
    }
    if (rc != LOOM_OK) {
        cli_error("bench store: cannot create a document: %s",
                  loom_strerror(rc));
        loom_doc_free(doc);
        return CLI_FAIL;
    }
    if (trace_path != NULL) {
        trace tr;
        if (trace_load(trace_path, &tr) != CLI_OK) {
            loom_doc_free(doc);
            return CLI_FAIL;
        }
        for (size_t i = 0; i < tr.n_patches && rc == LOOM_OK; i++) {
            const trace_patch *p = &tr.patches[i];
            rc = loom_doc_transact_begin(doc, NULL);
            if (rc == LOOM_OK && p->del > 0) {
                rc = loom_text_delete(t, p->pos, p->del);
            }
            if (rc == LOOM_OK && p->ins_len > 0) {
                rc = loom_text_insert(t, p->pos, tr.text + p->ins_off,
                                      p->ins_len, NULL);
            }
            if (rc == LOOM_OK) {
                rc = loom_doc_transact_end(doc);
            }
        }
        trace_free(&tr);
    } else {
        for (size_t i = 0; i < n && rc == LOOM_OK; i++) {
            char c = (char)('a' + i % 26);
            rc = loom_text_insert(t, i, &c, 1, NULL);
        }
    }
    *units = loom_type_length(t);
    loom_doc_free(doc);
    if (rc != LOOM_OK || u->oom) {
        cli_error("bench store: making the updates failed: %s",
                  u->oom ? "out of memory" : loom_strerror(rc));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Removes a database and its WAL and shared-memory files. */
static void remove_db(const char *path)
{
    char side[4096];
    (void)unlink(path);
    (void)snprintf(side, sizeof(side), "%s-wal", path);
    (void)unlink(side);
    (void)snprintf(side, sizeof(side), "%s-shm", path);
    (void)unlink(side);
}

/* ---- the floor: raw SQLite ------------------------------------------------ */

static int raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        cli_error("bench store: sqlite: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Inserts updates [0, k) into a plain table, `batch` per transaction, with
 * the store's pragmas; *ms is the time of the inserts. */
static int raw_inserts(
    const char *path, const upd_list *u, size_t k, size_t batch, double *ms)
{
    remove_db(path);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = CLI_FAIL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        cli_error("bench store: %s: cannot open", path);
        sqlite3_close(db);
        return CLI_FAIL;
    }
    if (raw_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                     "CREATE TABLE t(id INTEGER PRIMARY KEY, data BLOB)") !=
            CLI_OK ||
        sqlite3_prepare_v2(db, "INSERT INTO t(data) VALUES (?1)", -1, &st,
                           NULL) != SQLITE_OK) {
        goto out;
    }
    double t0 = now_ms();
    for (size_t i = 0; i < k; i += batch) {
        size_t end = i + batch < k ? i + batch : k;
        if (raw_exec(db, "BEGIN IMMEDIATE") != CLI_OK) {
            goto out;
        }
        for (size_t j = i; j < end; j++) {
            sqlite3_bind_blob(st, 1, u->data[j], (int)u->lens[j],
                              SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) {
                cli_error("bench store: sqlite: %s", sqlite3_errmsg(db));
                goto out;
            }
            sqlite3_reset(st);
        }
        if (raw_exec(db, "COMMIT") != CLI_OK) {
            goto out;
        }
    }
    *ms = now_ms() - t0;
    rc = CLI_OK;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    remove_db(path);
    return rc;
}

/* ---- the store ------------------------------------------------------------ */

static int fail_store(const char *what, int rc, const loom_error *e)
{
    cli_error("bench store: %s: %s", what,
              e->message[0] ? e->message : loom_strerror(rc));
    return CLI_FAIL;
}

/* Appends updates [0, k) to one document, `batch` per call. */
static int store_appends(
    const char *path, const upd_list *u, size_t k, size_t batch, double *ms)
{
    remove_db(path);
    loom_store_options o;
    loom_store_options_init(&o);
    o.compact_max_updates = 0; /* the appends alone */
    o.compact_max_bytes = 0;
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(path, &o, &s, &e);
    if (rc != LOOM_OK) {
        return fail_store("open", rc, &e);
    }
    double t0 = now_ms();
    for (size_t i = 0; i < k && rc == LOOM_OK; i += batch) {
        size_t m = i + batch < k ? batch : k - i;
        rc = batch == 1
                 ? loom_store_append(s, "doc", u->data[i], u->lens[i], &e)
                 : loom_store_append_many(s, "doc",
                                          (const uint8_t *const *)u->data + i,
                                          u->lens + i, m, &e);
    }
    *ms = now_ms() - t0;
    loom_store_close(s);
    remove_db(path);
    return rc == LOOM_OK ? CLI_OK : fail_store("append", rc, &e);
}

/* The large document: append everything, compact, reopen and load. */
static int large_doc(const char *path,
                     const upd_list *u,
                     size_t units,
                     double *compact_ms,
                     double *load_ms,
                     size_t *compacted)
{
    remove_db(path);
    loom_store_options o;
    loom_store_options_init(&o);
    o.compact_max_updates = 0;
    o.compact_max_bytes = 0;
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(path, &o, &s, &e);
    for (size_t i = 0; i < u->n && rc == LOOM_OK; i += 1000) {
        size_t m = i + 1000 < u->n ? 1000 : u->n - i;
        rc = loom_store_append_many(
            s, "doc", (const uint8_t *const *)u->data + i, u->lens + i, m, &e);
    }
    double t0 = now_ms();
    if (rc == LOOM_OK) {
        rc = loom_store_compact(s, "doc", &e);
    }
    *compact_ms = now_ms() - t0;
    loom_store_doc_info info = {0};
    if (rc == LOOM_OK) {
        rc = loom_store_info(s, "doc", &info, &e);
    }
    loom_store_close(s);
    s = NULL;
    if (rc != LOOM_OK) {
        remove_db(path);
        return fail_store("large document", rc, &e);
    }
    *compacted = (size_t)info.bytes;

    loom_doc *doc = NULL;
    loom_type *t = NULL;
    t0 = now_ms();
    rc = loom_store_open(path, &o, &s, &e);
    if (rc == LOOM_OK) {
        rc = loom_doc_new(NULL, &doc);
    }
    if (rc == LOOM_OK) {
        rc = loom_store_load(s, "doc", doc, &e);
    }
    *load_ms = now_ms() - t0;
    if (rc == LOOM_OK) {
        rc = loom_doc_get(doc, "text", 4, LOOM_TYPE_TEXT, &t);
    }
    int ok = rc == LOOM_OK && loom_type_length(t) == units;
    loom_doc_free(doc);
    loom_store_close(s);
    remove_db(path);
    if (rc != LOOM_OK) {
        return fail_store("load", rc, &e);
    }
    if (!ok) {
        cli_error("bench store: the loaded document differs");
        return CLI_FAIL;
    }
    return CLI_OK;
}

#define MAX_RUNS 15

static double median(double *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    }
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_size(const char *what, const char *s, size_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || v == 0 || v > 100000000ULL) {
        cli_error("bench store: %s: expected a positive count, got '%s'", what,
                  s);
        return CLI_USAGE;
    }
    *out = (size_t)v;
    return CLI_OK;
}

int cli_bench_store(int argc, char **argv)
{
    size_t n = 100000;
    size_t durable = 2000;
    size_t batch = 100;
    size_t runs = 3;
    const char *trace_path = NULL;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int rc = CLI_OK;
        if (i + 1 >= argc) {
            cli_error("bench store: '%s' needs a value (see `loom help "
                      "bench`)",
                      a);
            return CLI_USAGE;
        }
        if (strcmp(a, "--n") == 0) {
            rc = parse_size("--n", argv[++i], &n);
        } else if (strcmp(a, "--durable") == 0) {
            rc = parse_size("--durable", argv[++i], &durable);
        } else if (strcmp(a, "--batch") == 0) {
            rc = parse_size("--batch", argv[++i], &batch);
        } else if (strcmp(a, "--runs") == 0) {
            rc = parse_size("--runs", argv[++i], &runs);
            if (rc == CLI_OK && runs > MAX_RUNS) {
                cli_error("bench store: --runs: at most %d", MAX_RUNS);
                rc = CLI_USAGE;
            }
        } else if (strcmp(a, "--trace") == 0) {
            trace_path = argv[++i];
        } else if (strcmp(a, "--dir") == 0) {
            dir = argv[++i];
        } else {
            cli_error("bench store: unknown option '%s' (see `loom help "
                      "bench`)",
                      a);
            return CLI_USAGE;
        }
        if (rc != CLI_OK) {
            return rc;
        }
    }
    char tmpl[4096];
    const char *base = getenv("TMPDIR");
    (void)snprintf(tmpl, sizeof(tmpl), "%s/loom-bench-store.XXXXXX",
                   base && *base ? base : "/tmp");
    char *made = NULL;
    if (dir == NULL) {
        made = mkdtemp(tmpl);
        if (made == NULL) {
            cli_error("bench store: cannot make a scratch directory");
            return CLI_FAIL;
        }
        dir = made;
    }
    char path[4200];
    (void)snprintf(path, sizeof(path), "%s/bench.db", dir);

    upd_list u;
    memset(&u, 0, sizeof(u));
    size_t units = 0;
    int rc = make_updates(trace_path, n, &u, &units);
    if (rc == CLI_OK && u.n == 0) {
        cli_error("bench store: no updates");
        rc = CLI_FAIL;
    }
    size_t k = durable < u.n ? durable : u.n;
    double store1 = 0;
    double raw1 = 0;
    double storeb = 0;
    double rawb = 0;
    double compact_ms = 0;
    double load_ms = 0;
    size_t compacted = 0;
    /* Store and floor alternate, `runs` times each; medians are kept, so
     * a disk or a neighbour's burst weighs on both sides alike. */
    double t[4][MAX_RUNS];
    for (size_t r = 0; r < runs && rc == CLI_OK; r++) {
        rc = store_appends(path, &u, k, 1, &t[0][r]);
        if (rc == CLI_OK) {
            rc = raw_inserts(path, &u, k, 1, &t[1][r]);
        }
        if (rc == CLI_OK) {
            rc = store_appends(path, &u, u.n, batch, &t[2][r]);
        }
        if (rc == CLI_OK) {
            rc = raw_inserts(path, &u, u.n, batch, &t[3][r]);
        }
    }
    if (rc == CLI_OK) {
        store1 = median(t[0], runs);
        raw1 = median(t[1], runs);
        storeb = median(t[2], runs);
        rawb = median(t[3], runs);
    }
    if (rc == CLI_OK) {
        rc = large_doc(path, &u, units, &compact_ms, &load_ms, &compacted);
    }
    if (rc == CLI_OK) {
        double s1 = (double)k / (store1 / 1e3);
        double r1 = (double)k / (raw1 / 1e3);
        double sb = (double)u.n / (storeb / 1e3);
        double rb = (double)u.n / (rawb / 1e3);
        (void)printf(
            "{\"workload\":\"store\",\"input\":\"%s\",\"updates\":%zu,"
            "\"update_bytes\":%zu,\"durable_n\":%zu,\"batch\":%zu,\"runs\":%zu,"
            "\"append_1_per_txn_per_s\":%.0f,\"raw_1_per_txn_per_s\":%.0f,"
            "\"ratio_1_per_txn\":%.3f,"
            "\"append_batched_per_s\":%.0f,\"raw_batched_per_s\":%.0f,"
            "\"ratio_batched\":%.3f,"
            "\"compact_ms\":%.1f,\"compacted_bytes\":%zu,"
            "\"open_load_ms\":%.1f}\n",
            trace_path ? "trace" : "typing", u.n, u.bytes, k, batch, runs, s1,
            r1, s1 / r1, sb, rb, sb / rb, compact_ms, compacted, load_ms);
        rc = cli_write_stdout(NULL, 0);
    }
    upd_free(&u);
    if (made != NULL) {
        (void)rmdir(made);
    }
    return rc;
}
