/*
 * loom/provider.h: a native peer of a y-websocket room, as the y-websocket
 * WebsocketProvider is in JavaScript. A provider keeps one loom_doc in
 * sync with one room of `loom serve` (or the reference server): on connect
 * it sends sync step 1 and its awareness state, answers step 1 with step 2,
 * applies what the server sends with itself as the transaction origin (so
 * it is not sent back), sends every other update of the document while
 * connected, and reconnects with exponential backoff. Edits made while
 * disconnected stay in the document; the step 1 / step 2 exchange of the
 * next connection carries them both ways.
 *
 * Optionally the document is kept in a loom_store as well (a durable local
 * replica, what y-indexeddb is to a browser): see loom_provider_options.
 * The offline model and the order of writes: docs/peers.md.
 *
 * Driving it. A provider has its own libwebsockets client context and does
 * nothing on its own: the embedder calls loom_provider_service() from its
 * loop; each call runs one turn (timers, connecting, reading, writing) and
 * returns within about `timeout_ms`. Callbacks (status, log, awareness, and
 * the document's own observers for received updates) run inside that call.
 *
 * Threads: a provider, its document and its store are used by one thread
 * at a time. The library never prints: log lines go to the log callback.
 */
#ifndef LOOM_PROVIDER_H
#define LOOM_PROVIDER_H

#include "common.h"
#include "doc.h"
#include "proto.h"
#include "server.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct loom_provider loom_provider;

/* Where a provider is. */
typedef enum loom_provider_status {
    LOOM_PROVIDER_CONNECTING = 0,   /* dialling (first time or again) */
    LOOM_PROVIDER_CONNECTED = 1,    /* the WebSocket is open */
    LOOM_PROVIDER_SYNCED = 2,       /* the first step 2 of this connection
                                       arrived: the document has what the
                                       server had when it answered */
    LOOM_PROVIDER_DISCONNECTED = 3, /* closed; a retry is scheduled */
    LOOM_PROVIDER_DENIED = 4        /* refused for good (HTTP 401 or 403 on
                                       the upgrade, an auth permission-denied
                                       message, or a close code 4400-4499):
                                       no more retries */
} loom_provider_status;

/* A status change. `detail` is a short English text (the retry delay, the
 * denial reason...), valid during the call; never NULL. */
typedef void (*loom_provider_status_fn)(void *ud,
                                        loom_provider_status status,
                                        const char *detail);

/* Options of loom_provider_new. Start from loom_provider_options_init(). */
typedef struct loom_provider_options {
    /* ws[s]://HOST[:PORT]/ROOM[?QUERY], e.g.
     * ws://127.0.0.1:1234/notes?token=T. The room is the raw path after the
     * first '/', up to '?', sent as it is (y-websocket does not escape it
     * either). HOST may be a name, an IPv4 address or [IPv6]. wss:// dials
     * with TLS (default port 443): the server's certificate must chain to a
     * trusted CA and name HOST. Copied. */
    const char *url;
    /* wss:// only: a PEM file of the CA certificates to trust instead of
     * the system's (e.g. a self-signed server certificate). NULL: the
     * system's CAs. Read when the provider is created. */
    const char *tls_ca_file;
    /* The document to sync (required); borrowed: it must outlive the
     * provider, which subscribes to its updates. */
    loom_doc *doc;
    /* A durable replica (optional; borrowed, must outlive the provider):
     * at loom_provider_new the document `store_name` (default: the room) is
     * applied to `doc` from the store, and what `doc` held that the store
     * lacked is appended; afterwards every update of `doc`, received or
     * local, is appended when its transaction ends. */
    loom_store *store;
    const char *store_name; /* copied */
    /* Another process may append to the same store document (loom store
     * append, a second program): every `store_poll_ms` (0: never, the
     * default) the provider checks the document's log and state vector and
     * applies what the store has and `doc` lacks, which then goes to the
     * server like a local edit. */
    unsigned store_poll_ms;
    /* The local awareness state as JSON text (NUL-terminated), e.g.
     * {"user":{"name":"Ann"}}; NULL: no presence (state null). Copied. */
    const char *awareness;
    /* Reconnect delay: min(backoff_min_ms * 2^n, backoff_max_ms) after n
     * attempts in a row that did not reach SYNCED (y-websocket: 100 and
     * 2500, the defaults; it counts attempts that did not open). */
    unsigned backoff_min_ms;
    unsigned backoff_max_ms;
    /* Largest message accepted from the server (default 16 MiB); a larger
     * one closes the connection. */
    size_t max_message;
    /* Unsent bytes before the connection is dropped (default 8 MiB); the
     * next connection's sync exchange sends what was queued. */
    size_t max_queue;
    loom_log_fn log; /* NULL: no logging */
    void *log_ud;
    loom_log_level log_level;          /* default LOOM_LOG_INFO */
    loom_provider_status_fn on_status; /* NULL: none */
    void *status_ud;
    /* Remote awareness changes (ADDED, UPDATED, CHANGED, REMOVED), also the
     * removals of every remote state when the connection closes. */
    loom_awareness_fn on_awareness;
    void *awareness_ud;
    const loom_allocator *alloc; /* NULL: libc */
} loom_provider_options;

void loom_provider_options_init(loom_provider_options *o);

/*
 * Creates a provider for `opts->doc` and starts connecting (the first
 * attempt is made by the first loom_provider_service call).
 *
 * @return LOOM_OK; LOOM_EINVAL (no URL or document, a URL that is not
 * ws://HOST[:PORT]/ROOM, backoff_min_ms 0 or above backoff_max_ms, an
 * awareness state that is not JSON); LOOM_EUNSUPPORTED (wss://);
 * LOOM_EIO (libwebsockets could not create its context); a store error
 * while loading; LOOM_ENOMEM. `err` (optional) says which. `*out` is
 * written only on success.
 * @note Ownership: free with loom_provider_free. Thread-safety: see above.
 */
int loom_provider_new(const loom_provider_options *opts,
                      loom_provider **out,
                      loom_error *err);

/*
 * One turn: connects when a retry is due, polls the socket for at most
 * `timeout_ms` (0: do not wait), handles what arrived, sends what is
 * queued, polls the store when due, renews the local awareness state
 * every 15 s and expires remote ones after 30 s (as y-protocols does).
 * Returns LOOM_OK, LOOM_ESTATE once the provider is DENIED (it stays so),
 * or LOOM_EIO if libwebsockets failed.
 */
int loom_provider_service(loom_provider *p, int timeout_ms);

/* The current status. */
loom_provider_status loom_provider_status_get(const loom_provider *p);

/* 1 when the current connection has received its first step 2. */
int loom_provider_synced(const loom_provider *p);

/* The awareness (borrowed, valid until loom_provider_free): read remote
 * states with loom_awareness_get / loom_awareness_count; change the local
 * state with loom_provider_set_awareness, not directly. */
const loom_awareness *loom_provider_awareness(const loom_provider *p);

/* Sets the local awareness state (JSON text, NULL: null) and sends it when
 * connected. LOOM_EMALFORMED if the text is not JSON. */
int loom_provider_set_awareness(loom_provider *p, const char *json, size_t len);

/* Closes the connection (if any) and frees the provider; the document and
 * the store are left as they are (everything the store was given is in it
 * already). NULL is a no-op. */
void loom_provider_free(loom_provider *p);

#ifdef __cplusplus
}
#endif
#endif
