/* SPDX-License-Identifier: MIT */
/*
 * src/net/writer.c: the server's group commits, on a thread of their own.
 * An update is relayed only once it is on disk, and a commit waits for a
 * disk sync (a fraction of a millisecond, sometimes several). On the event
 * loop that wait stopped every connection of the server: no reads, no
 * awareness relays, no replies to sync step 1, no pings, for the length
 * of each sync. Here the loop hands the batch of a turn (every room with
 * updates waiting) to this thread and goes on serving; the thread appends
 * each room's updates in one store transaction, and wakes the loop
 * (lws_cancel_service, the one libwebsockets call allowed from another
 * thread), which then applies and relays them. Updates that arrive
 * meanwhile form the next batch, handed over as soon as this one is done,
 * so a room's updates are stored and relayed in the order they came.
 *
 * One batch is in flight at a time. While it is, the thread reads the
 * rooms' names and the payloads of their in-flight updates (`fly_*`), and
 * writes their results (`flush_rc`, `flush_err`, `fly_rows`); the loop
 * touches none of these until it has taken the batch back under the mutex
 * and never frees a room with a batch in flight. The thread's store is a
 * connection of its own (WAL: the loop's connection keeps loading rooms
 * meanwhile) and uses the libc allocator, as an embedder's allocator hooks
 * need not be thread-safe.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "loom/update.h"
#include "net.h"

/* Input bytes merged into one stored row at most (append_room): a row of
 * this size stays within its b-tree page (4 KiB pages: about 1,000 bytes
 * of record per cell before overflow). */
#define NET_ROW_BYTES 900

struct net_writer {
    loom_store *store;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    struct lws_context *ctx; /* woken when a batch is done */
    net_room *batch;         /* handed over, not yet taken back */
    bool done;               /* batch is stored (or failed) */
    double seconds;          /* how long it took */
};

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    (void)clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Appends a room's in-flight updates (inside the batch's transaction); 0 or
 * an error after which nothing of them is stored.
 *
 * Consecutive updates go in as one row, their merge, up to NET_ROW_BYTES
 * of input per row: every row costs a b-tree seek and counts towards the
 * compaction bound (a rewrite of the whole document), so a turn's hundreds
 * of small updates should not be hundreds of rows. Rows merged without
 * bound grew past their page, and every later insert next to one read its
 * overflow pages (an 80 ms p99 at a light rate after a heavy burst); rows
 * under about 1,000 bytes stay on their page. A merge holds exactly what
 * its updates hold; if merging fails (memory), those updates go in one by
 * one. */
static int append_room(loom_store *st, net_room *r, loom_error *err)
{
    size_t n = r->fly_n;
    const uint8_t **ptrs = loom__malloc(NULL, n * sizeof(*ptrs));
    size_t *lens = loom__malloc(NULL, n * sizeof(*lens));
    const uint8_t **rows = loom__malloc(NULL, n * sizeof(*rows));
    size_t *rlens = loom__malloc(NULL, n * sizeof(*rlens));
    loom_buf *merged = loom__calloc(NULL, n * sizeof(*merged));
    int rc = LOOM_ENOMEM;
    if (ptrs && lens && rows && rlens && merged) {
        size_t i = 0;
        for (const net_pending *e = r->fly_head; e && i < n; e = e->next) {
            ptrs[i] = e->data;
            lens[i++] = e->len;
        }
        size_t k = 0, nm = 0;
        for (i = 0; i < n;) {
            size_t j = i + 1, sum = lens[i];
            while (j < n && sum + lens[j] <= NET_ROW_BYTES) {
                sum += lens[j++];
            }
            loom_error merr;
            memset(&merr, 0, sizeof(merr));
            loom_buf *m = &merged[nm];
            loom__buf_init(m, NULL);
            if (j - i > 1 &&
                !loom_update_merge(NULL, ptrs + i, lens + i, j - i, m, &merr)) {
                rows[k] = m->data;
                rlens[k++] = m->len;
                nm++;
            } else {
                for (size_t x = i; x < j; x++) {
                    rows[k] = ptrs[x];
                    rlens[k++] = lens[x];
                }
            }
            i = j;
        }
        rc = loom_store_append_many(st, r->name, rows, rlens, k, err);
        if (!rc) {
            r->fly_rows = k;
        }
        for (size_t x = 0; x < nm; x++) {
            loom_buf_free(&merged[x]);
        }
    }
    loom__free(NULL, ptrs, n * sizeof(*ptrs));
    loom__free(NULL, lens, n * sizeof(*lens));
    loom__free(NULL, rows, n * sizeof(*rows));
    loom__free(NULL, rlens, n * sizeof(*rlens));
    loom__free(NULL, merged, n * sizeof(*merged));
    if (rc == LOOM_ENOMEM && !err->message[0]) {
        loom__error_set(err, LOOM_ENOMEM, 0, 0, NULL);
    }
    return rc;
}

/*
 * Every room of the batch in one store transaction, so a batch costs one
 * disk sync however many rooms are busy (a sync per room bounded
 * throughput by the disk). Each room's append stays all or nothing on its
 * own (a savepoint); a failed commit fails every room of the batch.
 */
static void store_batch(loom_store *st, net_room *list)
{
    loom_error err;
    memset(&err, 0, sizeof(err));
    /* A batch that cannot begin (another process held the write lock past
     * the busy timeout, the disk failed) is refused whole at once: each
     * room's append would only wait for the same lock again. */
    int rc = loom_store_batch_begin(st, &err);
    for (net_room *r = list; r; r = r->next_fly) {
        memset(&r->flush_err, 0, sizeof(r->flush_err));
        r->fly_rows = 0;
        r->flush_rc = rc ? rc : append_room(st, r, &r->flush_err);
        if (rc) {
            r->flush_err = err;
        }
    }
    if (!rc) {
        memset(&err, 0, sizeof(err));
        rc = loom_store_batch_commit(st, &err);
        for (net_room *r = list; rc && r; r = r->next_fly) {
            if (!r->flush_rc) {
                r->flush_rc = rc;
                r->flush_err = err;
            }
        }
    }
}

static void *run(void *arg)
{
    net_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && (w->batch == NULL || w->done)) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->stop) {
            break;
        }
        net_room *list = w->batch;
        pthread_mutex_unlock(&w->mu);

        struct timespec t0;
        (void)clock_gettime(CLOCK_MONOTONIC, &t0);
        store_batch(w->store, list);
        double dt = seconds_since(&t0);

        pthread_mutex_lock(&w->mu);
        w->seconds = dt;
        w->done = true;
        pthread_cond_broadcast(&w->cv);
        if (w->ctx) {
            lws_cancel_service(w->ctx);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int loom__net_writer_start(const char *path, net_writer **out, loom_error *err)
{
    net_writer *w = loom__calloc(NULL, sizeof(*w));
    if (!w) {
        loom__error_set(err, LOOM_ENOMEM, 0, 0, NULL);
        return LOOM_ENOMEM;
    }
    loom_store_options so;
    loom_store_options_init(&so);
    so.compact_max_updates = 0; /* the compactor's job */
    so.compact_max_bytes = 0;
    int rc = loom_store_open(path, &so, &w->store, err);
    if (rc) {
        loom__free(NULL, w, sizeof(*w));
        return rc;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        loom_store_close(w->store);
        loom__free(NULL, w, sizeof(*w));
        loom__error_set(err, LOOM_ENOMEM, 0, 0,
                        "cannot start the store writer thread");
        return LOOM_ENOMEM;
    }
    *out = w;
    return LOOM_OK;
}

void loom__net_writer_submit(net_writer *w,
                             struct lws_context *ctx,
                             net_room *list)
{
    pthread_mutex_lock(&w->mu);
    w->ctx = ctx;
    w->batch = list;
    w->done = false;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

net_room *loom__net_writer_take(net_writer *w, bool wait, double *seconds)
{
    pthread_mutex_lock(&w->mu);
    while (wait && w->batch && !w->done) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    net_room *list = NULL;
    if (w->batch && w->done) {
        list = w->batch;
        *seconds = w->seconds;
        w->batch = NULL;
        w->done = false;
    }
    pthread_mutex_unlock(&w->mu);
    return list;
}

void loom__net_writer_stop(net_writer *w)
{
    if (!w) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    /* a batch under way is finished first: the loop takes it back (or
     * frees it) after this returns */
    while (w->batch && !w->done) {
        pthread_cond_wait(&w->cv, &w->mu);
    }
    w->stop = true;
    w->ctx = NULL;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    loom_store_close(w->store);
    loom__free(NULL, w, sizeof(*w));
}
