/*
 * storegen.c: the helpers of storegen.h for the store tests.
 */
#include "storegen.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void sg_updates_free(sg_updates *u)
{
    for (size_t i = 0; i < u->n; i++) {
        free(u->data[i]);
    }
    free(u->data);
    free(u->lens);
    memset(u, 0, sizeof(*u));
}

int sg_updates_push(sg_updates *u, const uint8_t *p, size_t len)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 64;
        uint8_t **d = realloc(u->data, cap * sizeof(*d));
        if (d == NULL) {
            return -1;
        }
        u->data = d;
        size_t *l = realloc(u->lens, cap * sizeof(*l));
        if (l == NULL) {
            return -1;
        }
        u->lens = l;
        u->cap = cap;
    }
    uint8_t *c = malloc(len ? len : 1);
    if (c == NULL) {
        return -1;
    }
    if (len > 0) {
        memcpy(c, p, len);
    }
    u->data[u->n] = c;
    u->lens[u->n] = len;
    u->n++;
    return 0;
}

static void record(void *ud,
                   loom_doc *doc,
                   const uint8_t *update,
                   size_t len,
                   const loom_txn *txn)
{
    (void)doc;
    (void)txn;
    if (sg_updates_push(ud, update, len) != 0) {
        (void)fprintf(stderr, "storegen: out of memory\n");
        abort();
    }
}

loom_doc *sg_doc_new(uint64_t client, sg_updates *rec)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = client;
    loom_doc *d = NULL;
    if (loom_doc_new(&o, &d) != LOOM_OK) {
        return NULL;
    }
    uint32_t id = 0;
    if (rec != NULL && loom_doc_on_update(d, record, rec, &id) != LOOM_OK) {
        loom_doc_free(d);
        return NULL;
    }
    return d;
}

int sg_set(loom_doc *d, const char *key, double value)
{
    loom_type *m = NULL;
    int rc = loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m);
    if (rc) {
        return rc;
    }
    loom_any *v = NULL;
    rc = loom_any_new_number(NULL, value, &v);
    if (rc) {
        return rc;
    }
    rc = loom_map_set(m, key, strlen(key), v);
    loom_any_free(v);
    return rc;
}

int sg_text_insert(loom_doc *d, size_t index, const char *s)
{
    loom_type *t = NULL;
    int rc = loom_doc_get(d, "t", 1, LOOM_TYPE_TEXT, &t);
    if (rc) {
        return rc;
    }
    size_t n = loom_type_length(t);
    return loom_text_insert(t, index > n ? n : index, s, strlen(s), NULL);
}

int sg_has(loom_doc *d, const char *key)
{
    loom_type *m = NULL;
    if (loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m) != LOOM_OK) {
        return 0;
    }
    return loom_map_has(m, key, strlen(key)) == 1;
}

/* Gives every untyped root (named only by applied updates) the kind its
 * content suggests, so toJSON shows the content. */
static void type_roots(loom_doc *d)
{
    size_t n = loom_doc_root_count(d);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        size_t len = 0;
        loom_type *t = loom_doc_root_at(d, i, &name, &len);
        if (t != NULL && loom_type_kind_of(t) == LOOM_TYPE_UNDEFINED) {
            char buf[64];
            if (len < sizeof(buf)) {
                memcpy(buf, name, len);
                buf[len] = '\0';
                (void)loom_doc_get(d, buf, len, loom_type_guess_kind(t), &t);
            }
        }
    }
}

int sg_docs_equal(loom_doc *a, loom_doc *b)
{
    type_roots(a);
    type_roots(b);
    loom_any *x = NULL;
    loom_any *y = NULL;
    int eq = loom_doc_to_any(a, &x) == LOOM_OK &&
             loom_doc_to_any(b, &y) == LOOM_OK && loom_any_equal(x, y);
    loom_any_free(x);
    loom_any_free(y);
    return eq;
}

uint64_t sg_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint64_t sg_seed(void)
{
    const char *e = getenv("LOOM_SEED");
    if (e != NULL && *e) {
        return strtoull(e, NULL, 0) | 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000007ULL + (uint64_t)ts.tv_nsec) | 1;
}

long sg_env_long(const char *name, long def)
{
    const char *e = getenv(name);
    if (e == NULL || *e == '\0') {
        return def;
    }
    char *end = NULL;
    long v = strtol(e, &end, 10);
    return (end != e && *end == '\0' && v > 0) ? v : def;
}

char *sg_tmpdir(const char *base)
{
    if (base == NULL) {
        base = getenv("TMPDIR");
    }
    if (base == NULL || *base == '\0') {
        base = "/tmp";
    }
    size_t n = strlen(base) + 32;
    char *p = malloc(n);
    if (p == NULL) {
        return NULL;
    }
    (void)snprintf(p, n, "%s/loom-store.XXXXXX", base);
    if (mkdtemp(p) == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

void sg_rmdir(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char *f = sg_path(path, e->d_name);
            if (f != NULL) {
                struct stat st;
                if (lstat(f, &st) == 0 && S_ISDIR(st.st_mode)) {
                    sg_rmdir(f);
                } else {
                    (void)unlink(f);
                }
                free(f);
            }
        }
        closedir(d);
    }
    (void)rmdir(path);
}

char *sg_path(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p != NULL) {
        (void)snprintf(p, n, "%s/%s", dir, file);
    }
    return p;
}

double sg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
