/* SPDX-License-Identifier: MIT */
/*
 * src/net/compactor.c: compaction of room logs off the event loop. The
 * server's own store connection never compacts (its bounds are 0): merging
 * a grown log and passing it through a document takes long enough to stall
 * every connection of the server. Instead, after each commit the loop
 * notes the rooms it appended to, and this thread, with a store connection
 * of its own, compacts those whose log has grown past the bound. The store
 * is safe for that: a compaction reads in a read transaction (WAL readers
 * do not block the loop's commits) and swaps in one short write
 * transaction, and appends made meanwhile stay (docs/store.md).
 *
 * The thread's store uses the libc allocator: an embedder's allocator
 * hooks are not required to be thread-safe. It runs at a lower priority
 * (nice 10) than the rest of the server.
 */
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "net.h"

/* Names waiting; a name noted when the queue is full is noted again by a
 * later commit. */
#define QUEUE_MAX 1024

struct net_compactor {
    loom_store *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    unsigned rows;          /* compact past this many rows */
    char *queue[QUEUE_MAX]; /* malloc'd names */
    size_t n;
    uint64_t compactions, failures; /* read under mu */
};

static void *run(void *arg)
{
    net_compactor *c = arg;
    /* A compaction is seconds of CPU spread over a busy server's life; the
     * loop and the writer, which every relayed update waits for, go first
     * (Linux: a nice value is per thread). Best effort: no error. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->stop && c->n == 0) {
            pthread_cond_wait(&c->cv, &c->mu);
        }
        if (c->stop) {
            break;
        }
        char *name = c->queue[--c->n];
        pthread_mutex_unlock(&c->mu);
        loom_store_doc_info info;
        int rc = loom_store_info(c->store, name, &info, NULL);
        bool done = false;
        /* Past the row bound, and grown by half of what the last
         * compaction wrote: a large document is rewritten once per half
         * its size appended, not every `rows` rows (each swap holds the
         * write lock that every relayed update waits for). */
        if (rc == LOOM_OK && info.updates > c->rows &&
            info.bytes - info.base_bytes >= info.base_bytes / 2) {
            rc = loom_store_compact(c->store, name, NULL);
            done = true;
        }
        loom__free(NULL, name, strlen(name) + 1);
        pthread_mutex_lock(&c->mu);
        if (done) {
            c->compactions += rc == LOOM_OK;
            c->failures += rc != LOOM_OK;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int loom__net_compactor_start(const char *path,
                              unsigned rows,
                              net_compactor **out,
                              loom_error *err)
{
    net_compactor *c = loom__calloc(NULL, sizeof(*c));
    if (!c) {
        loom__error_set(err, LOOM_ENOMEM, 0, 0, NULL);
        return LOOM_ENOMEM;
    }
    c->rows = rows;
    loom_store_options so;
    loom_store_options_init(&so);
    so.compact_max_updates = 0; /* only where run() says */
    so.compact_max_bytes = 0;
    int rc = loom_store_open(path, &so, &c->store, err);
    if (rc) {
        loom__free(NULL, c, sizeof(*c));
        return rc;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, run, c) != 0) {
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        loom_store_close(c->store);
        loom__free(NULL, c, sizeof(*c));
        loom__error_set(err, LOOM_ENOMEM, 0, 0,
                        "cannot start the compaction thread");
        return LOOM_ENOMEM;
    }
    *out = c;
    return LOOM_OK;
}

void loom__net_compactor_note(net_compactor *c, const char *name)
{
    if (!c) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    bool queued = false;
    for (size_t i = 0; i < c->n && !queued; i++) {
        queued = strcmp(c->queue[i], name) == 0;
    }
    if (!queued && c->n < QUEUE_MAX) {
        size_t len = strlen(name) + 1;
        char *copy = loom__malloc(NULL, len);
        if (copy) {
            memcpy(copy, name, len);
            c->queue[c->n++] = copy;
            pthread_cond_signal(&c->cv);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

void loom__net_compactor_counts(net_compactor *c,
                                uint64_t *compactions,
                                uint64_t *failures)
{
    *compactions = *failures = 0;
    if (!c) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    *compactions = c->compactions;
    *failures = c->failures;
    pthread_mutex_unlock(&c->mu);
}

void loom__net_compactor_stop(net_compactor *c)
{
    if (!c) {
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    /* A compaction under way finishes first: it is one short swap. */
    pthread_join(c->thread, NULL);
    for (size_t i = 0; i < c->n; i++) {
        loom__free(NULL, c->queue[i], strlen(c->queue[i]) + 1);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    loom_store_close(c->store);
    loom__free(NULL, c, sizeof(*c));
}
