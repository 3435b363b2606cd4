/*
 * scale.c: the store at size (ctest store-scale).
 *
 *  - a large document: N small updates (each sets its own key of one map),
 *    appended 1000 per transaction with automatic compaction off, then
 *    compacted and loaded; the loaded map must have N keys and the
 *    compacted log one row;
 *  - many documents: D documents of one update each, then the store is
 *    reopened and listed (D names, in order) and a sample of documents is
 *    loaded.
 * Defaults: N = 100000, D = 10000 (a fifth of that under AddressSanitizer);
 * LOOM_STORE_SCALE=full runs N = 1000000 and D = 10000, and
 * LOOM_STORE_N / LOOM_STORE_DOCS set them directly. Timings are printed.
 * The store lives in /dev/shm when it is writable (LOOM_STORE_SCALE_DIR
 * overrides): the figures are about reading, not about the disk's fsync.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loom/loom.h"
#include "storegen.h"

#if defined(__SANITIZE_ADDRESS__)
#    define SANITIZED 1
#elif defined(__has_feature)
#    if __has_feature(address_sanitizer)
#        define SANITIZED 1
#    endif
#endif
#ifndef SANITIZED
#    define SANITIZED 0
#endif

static int die(const char *what, int rc, const loom_error *e)
{
    (void)fprintf(stderr, "store_scale: %s: %s (%s)\n", what, loom_strerror(rc),
                  e && e->message[0] ? e->message : "-");
    return 1;
}

static int large_doc(const char *dir, long n)
{
    char *db = sg_path(dir, "large.db");
    sg_updates u = {0};
    loom_doc *d = sg_doc_new(77, &u);
    double t0 = sg_now();
    for (long i = 0; i < n; i++) {
        char key[32];
        (void)snprintf(key, sizeof(key), "k%ld", i);
        if (sg_set(d, key, (double)i) != LOOM_OK) {
            return 1;
        }
    }
    double t_gen = sg_now() - t0;
    size_t bytes = 0;
    for (size_t i = 0; i < u.n; i++) {
        bytes += u.lens[i];
    }

    loom_store_options o;
    loom_store_options_init(&o);
    o.compact_max_updates = 0;
    o.compact_max_bytes = 0;
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(db, &o, &s, &e);
    if (rc) {
        return die("open", rc, &e);
    }
    t0 = sg_now();
    for (size_t i = 0; i < u.n; i += 1000) {
        size_t k = u.n - i < 1000 ? u.n - i : 1000;
        rc = loom_store_append_many(
            s, "big", (const uint8_t *const *)u.data + i, u.lens + i, k, &e);
        if (rc) {
            return die("append", rc, &e);
        }
    }
    double t_append = sg_now() - t0;
    loom_store_doc_info info = {0};
    rc = loom_store_info(s, "big", &info, &e);
    if (rc || info.updates != u.n) {
        (void)fprintf(stderr, "store_scale: log has %llu rows, expected %zu\n",
                      (unsigned long long)info.updates, u.n);
        return 1;
    }
    t0 = sg_now();
    rc = loom_store_compact(s, "big", &e);
    double t_compact = sg_now() - t0;
    if (rc) {
        return die("compact", rc, &e);
    }
    rc = loom_store_info(s, "big", &info, &e);
    if (rc || info.updates != 1) {
        (void)fprintf(stderr, "store_scale: %llu rows after compaction\n",
                      (unsigned long long)info.updates);
        return 1;
    }
    loom_store_close(s);

    /* Load from a freshly opened store, as a server starting up would. */
    t0 = sg_now();
    rc = loom_store_open(db, &o, &s, &e);
    loom_doc *back = sg_doc_new(1, NULL);
    if (!rc) {
        rc = loom_store_load(s, "big", back, &e);
    }
    double t_load = sg_now() - t0;
    if (rc) {
        return die("load", rc, &e);
    }
    loom_type *m = NULL;
    loom_any *last = NULL;
    char key[32];
    (void)snprintf(key, sizeof(key), "k%ld", n - 1);
    if (loom_doc_get(back, "m", 1, LOOM_TYPE_MAP, &m) != LOOM_OK ||
        loom_map_size(m) != (size_t)n ||
        loom_map_get(m, key, strlen(key), &last, NULL) != LOOM_OK ||
        loom_any_number(last) != (double)(n - 1)) {
        (void)fprintf(stderr, "store_scale: the loaded document differs\n");
        return 1;
    }
    loom_any_free(last);
    printf("large document: %ld updates (%zu bytes): generate %.2f s, "
           "append (1000/txn) %.2f s, compact %.2f s to %llu bytes, "
           "open+load %.3f s\n",
           n, bytes, t_gen, t_append, t_compact, (unsigned long long)info.bytes,
           t_load);
    loom_doc_free(back);
    loom_store_close(s);
    loom_doc_free(d);
    sg_updates_free(&u);
    free(db);
    return 0;
}

typedef struct list_state {
    long n;
    char last[32];
    int unordered;
} list_state;

static int count_name(void *ud, const char *name, size_t len)
{
    list_state *ls = ud;
    if (ls->n > 0 && strcmp(ls->last, name) >= 0) {
        ls->unordered = 1;
    }
    if (len < sizeof(ls->last)) {
        memcpy(ls->last, name, len + 1);
    }
    ls->n++;
    return 0;
}

static int many_docs(const char *dir, long ndocs)
{
    char *db = sg_path(dir, "many.db");
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(db, NULL, &s, &e);
    if (rc) {
        return die("open", rc, &e);
    }
    double t0 = sg_now();
    for (long i = 0; i < ndocs; i++) {
        sg_updates u = {0};
        loom_doc *d = sg_doc_new(1000 + (uint64_t)i, &u);
        char name[32];
        (void)snprintf(name, sizeof(name), "doc-%06ld", i);
        if (d == NULL || sg_set(d, "title", (double)i) != 0) {
            return 1;
        }
        rc = loom_store_append(s, name, u.data[0], u.lens[0], &e);
        loom_doc_free(d);
        sg_updates_free(&u);
        if (rc) {
            return die("append", rc, &e);
        }
    }
    double t_create = sg_now() - t0;
    loom_store_close(s);

    t0 = sg_now();
    rc = loom_store_open(db, NULL, &s, &e);
    if (rc) {
        return die("reopen", rc, &e);
    }
    double t_open = sg_now() - t0;
    list_state ls;
    memset(&ls, 0, sizeof(ls));
    t0 = sg_now();
    rc = loom_store_list(s, count_name, &ls, &e);
    double t_list = sg_now() - t0;
    if (rc || ls.n != ndocs || ls.unordered) {
        (void)fprintf(stderr, "store_scale: listed %ld of %ld (%s)\n", ls.n,
                      ndocs, ls.unordered ? "out of order" : "in order");
        return 1;
    }
    uint64_t rng = 12345;
    long sample = ndocs < 1000 ? ndocs : 1000;
    t0 = sg_now();
    for (long k = 0; k < sample; k++) {
        long i = (long)(sg_rand(&rng) % (uint64_t)ndocs);
        char name[32];
        (void)snprintf(name, sizeof(name), "doc-%06ld", i);
        loom_doc *d = sg_doc_new(1, NULL);
        rc = loom_store_load(s, name, d, &e);
        loom_type *m = NULL;
        loom_any *v = NULL;
        if (!rc) {
            rc = loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m);
        }
        if (!rc) {
            rc = loom_map_get(m, "title", 5, &v, NULL);
        }
        if (rc || loom_any_number(v) != (double)i) {
            loom_any_free(v);
            loom_doc_free(d);
            return die("load a document", rc ? rc : LOOM_ECORRUPT, &e);
        }
        loom_any_free(v);
        loom_doc_free(d);
    }
    double t_load = sg_now() - t0;
    printf("many documents: %ld documents: create (1 append each) %.2f s, "
           "open %.4f s, list %.4f s, load %ld random ones %.3f s "
           "(%.1f us each)\n",
           ndocs, t_create, t_open, t_list, sample, t_load,
           t_load / (double)sample * 1e6);
    loom_store_close(s);
    free(db);
    return 0;
}

int main(void)
{
    const char *scale = getenv("LOOM_STORE_SCALE");
    int full = scale != NULL && strcmp(scale, "full") == 0;
    long n = full ? 1000000 : (SANITIZED ? 20000 : 100000);
    long ndocs = full ? 10000 : (SANITIZED ? 2000 : 10000);
    n = sg_env_long("LOOM_STORE_N", n);
    ndocs = sg_env_long("LOOM_STORE_DOCS", ndocs);
    /* Memory-backed when possible: this test is about reading a large
     * store, and 10000 fsync'd appends to create it take from 4 s to over
     * 30 s on a shared disk. LOOM_STORE_SCALE_DIR picks another place. */
    const char *base = getenv("LOOM_STORE_SCALE_DIR");
    if (base == NULL && access("/dev/shm", W_OK) == 0) {
        base = "/dev/shm";
    }
    char *dir = sg_tmpdir(base);
    if (dir == NULL) {
        perror("mkdtemp");
        return 1;
    }
    int rc = large_doc(dir, n);
    if (rc == 0) {
        rc = many_docs(dir, ndocs);
    }
    sg_rmdir(dir);
    free(dir);
    return rc;
}
