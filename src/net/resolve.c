/* SPDX-License-Identifier: MIT */
/*
 * src/net/resolve.c: host names resolved off the caller's thread, for the
 * provider. libwebsockets resolves a client's address with getaddrinfo on
 * the thread that connects (its asynchronous resolver is not built into
 * Debian's 4.1.6), so a slow DNS server stopped the embedder's loop for
 * as long as it took. Here a short-lived thread resolves the name and
 * wakes the provider's context; the provider then dials the numeric
 * address, still sending the name as Host (and, with TLS, checking the
 * certificate against it).
 *
 * The record is shared by the provider and the thread; whichever lets go
 * last frees it. The provider may go first (freed while a lookup hangs):
 * it clears `ctx` under the mutex, so the thread never wakes a destroyed
 * context. Allocation uses the libc allocator: an embedder's hooks need
 * not be thread-safe.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

struct net_resolve {
    pthread_mutex_t mu;
    int refs;
    bool done;
    bool ok;
    struct lws_context *ctx; /* NULL once the provider let go */
    /* the addresses, NUL-separated, or the error text */
    char result[NET_RESOLVE_MAX];
    size_t host_len;
    char host[];
};

static void release(net_resolve *r)
{
    pthread_mutex_lock(&r->mu);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_mutex_destroy(&r->mu);
        loom__free(NULL, r, sizeof(*r) + r->host_len + 1);
    }
}

void loom__net_lookup(const char *host, bool *ok, char *out, size_t cap)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    size_t used = 0;
    for (const struct addrinfo *ai = rc ? NULL : res; ai; ai = ai->ai_next) {
        char a[INET6_ADDRSTRLEN];
        const void *src = NULL;
        if (ai->ai_family == AF_INET) {
            src = &((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
        } else if (ai->ai_family == AF_INET6) {
            src = &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        }
        if (src && inet_ntop(ai->ai_family, src, a, sizeof(a))) {
            size_t n = strlen(a) + 1;
            if (used + n + 1 > cap) {
                break;
            }
            memcpy(out + used, a, n);
            used += n;
        }
    }
    out[used] = '\0'; /* the list ends with an empty entry */
    *ok = used > 0;
    if (!*ok) {
        (void)snprintf(out, cap, "cannot resolve %s: %s", host,
                       rc ? gai_strerror(rc) : "no usable address");
    }
    if (res) {
        freeaddrinfo(res);
    }
}

static void *run(void *arg)
{
    net_resolve *r = arg;
    bool ok;
    char out[sizeof(r->result)];
    loom__net_lookup(r->host, &ok, out, sizeof(out));
    pthread_mutex_lock(&r->mu);
    memcpy(r->result, out, sizeof(out));
    r->ok = ok;
    r->done = true;
    if (r->ctx) {
        lws_cancel_service(r->ctx);
    }
    pthread_mutex_unlock(&r->mu);
    release(r);
    return NULL;
}

bool loom__net_is_numeric_host(const char *host)
{
    uint8_t buf[16];
    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

int loom__net_resolve_start(const char *host,
                            struct lws_context *ctx,
                            net_resolve **out)
{
    size_t n = strlen(host);
    net_resolve *r = loom__calloc(NULL, sizeof(*r) + n + 1);
    if (!r) {
        return LOOM_ENOMEM;
    }
    pthread_mutex_init(&r->mu, NULL);
    r->refs = 2;
    r->ctx = ctx;
    r->host_len = n;
    memcpy(r->host, host, n + 1);
    pthread_attr_t attr;
    pthread_t t;
    bool started = pthread_attr_init(&attr) == 0;
    if (started) {
        (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, run, r) == 0;
        (void)pthread_attr_destroy(&attr);
    }
    if (!started) {
        /* no thread: resolve here, as libwebsockets would have */
        loom__net_lookup(r->host, &r->ok, r->result, sizeof(r->result));
        r->done = true;
        r->refs = 1;
    }
    *out = r;
    return LOOM_OK;
}

bool loom__net_resolve_done(net_resolve *r, bool *ok, char out[NET_RESOLVE_MAX])
{
    pthread_mutex_lock(&r->mu);
    bool done = r->done;
    if (done) {
        *ok = r->ok;
        memcpy(out, r->result, NET_RESOLVE_MAX);
    }
    pthread_mutex_unlock(&r->mu);
    return done;
}

void loom__net_resolve_free(net_resolve *r)
{
    if (!r) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    r->ctx = NULL;
    pthread_mutex_unlock(&r->mu);
    release(r);
}
