/*
 * net.h: what the files of the server (src/net) share: the server, room and
 * connection records, the reference-counted send buffers that one broadcast
 * shares between every queue, and the functions of each file. Internal:
 * the API is loom/server.h.
 *
 * Ownership: the server owns rooms and connections; a room lists its
 * connections; a connection points to its room (NULL before it joins).
 * libwebsockets owns the wsi and a small per-session record (net_pss) that
 * points to our connection.
 */
#ifndef LOOM_NET_H
#define LOOM_NET_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>

#include <libwebsockets.h>

#include "base/base.h"
#include "loom/proto.h"
#include "loom/server.h"
#include "loom/store.h"

#define NET_ROOM_BUCKETS 1024
#define NET_URI_MAX      2048

/* Bytes to send, shared by every queue holding them; LWS_PRE bytes of
 * headroom precede the payload, as lws_write needs. */
typedef struct net_sbuf {
    size_t refs;
    size_t len; /* payload bytes */
    uint8_t data[];
} net_sbuf;

typedef struct net_qnode {
    struct net_qnode *next;
    net_sbuf *b;
} net_qnode;

typedef struct net_room net_room;
typedef struct net_conn net_conn;

/* An accepted update waiting for the next group commit (room.c). */
typedef struct net_pending {
    struct net_pending *next;
    net_conn *sender; /* NULL once that connection closed */
    size_t len;
    uint8_t data[];
} net_pending;

struct net_conn {
    loom_server *srv;
    struct lws *wsi;
    net_room *room;
    net_conn *prev, *next;         /* in the room */
    net_conn *all_prev, *all_next; /* in the server */
    bool readonly;
    uint8_t peer_family; /* 4, 6, or 0: unknown (note_peer) */
    uint16_t peer_port;
    uint8_t peer_addr[16];
    bool dead;    /* being closed: nothing more is queued or read */
    bool closing; /* shutdown: close once the queue is sent */
    loom_buf rx;  /* the message being assembled from fragments */
    net_qnode *qh, *qt;
    size_t q_bytes;
    uint64_t *ids; /* awareness clients this connection announced */
    size_t n_ids, cap_ids;
};

struct net_room {
    loom_server *srv;
    char *name; /* NUL-terminated */
    size_t name_len;
    loom_doc *doc;
    loom_awareness *aw;
    net_conn *conns;
    size_t n_conns;
    uint64_t empty_since_ms;
    net_room *hnext;                    /* bucket chain */
    net_room *prev, *next;              /* every room */
    net_pending *pend_head, *pend_tail; /* waiting for the next batch */
    net_room *next_dirty; /* in the server's list of rooms with pending */
    /* The room's part of the batch being stored (writer.c): its updates,
     * and what the store said of them. */
    net_pending *fly_head;
    size_t fly_n;
    size_t fly_rows; /* rows they became */
    net_room *next_fly;
    int flush_rc;
    /* Rows appended since the compactor last looked at the log; starts
     * past the bound, since a loaded log may already be long. */
    uint64_t rows_unchecked;
    loom_error flush_err;
    /* The HTTP callback (callback.c): when the room's unsent change was
     * first seen and when it is due; 0: nothing to send. */
    uint64_t cb_first_ms, cb_due_ms;
};

/* HTTP responses built in memory (healthz, metrics, errors). */
typedef struct net_pss {
    net_conn *c;
    uint8_t *body; /* LWS_PRE + body_len bytes */
    size_t body_len;
} net_pss;

#define NET_HIST_BUCKETS 10

/* Compaction off the event loop (compactor.c). */
typedef struct net_compactor net_compactor;
/* Opens its own connection to the store at `path` and starts the thread,
 * which compacts a noted room once its log holds more than `rows` rows. */
int loom__net_compactor_start(const char *path,
                              unsigned rows,
                              net_compactor **out,
                              loom_error *err);
/* The loop appended to room `name`: compact it if its log has grown. */
void loom__net_compactor_note(net_compactor *c, const char *name);
/* Compactions done and failed so far. */
void loom__net_compactor_counts(net_compactor *c,
                                uint64_t *compactions,
                                uint64_t *failures);
/* Lets a compaction under way finish, stops the thread, closes. NULL: no-op. */
void loom__net_compactor_stop(net_compactor *c);

/* Group commits off the event loop (writer.c). */
typedef struct net_writer net_writer;
/* Opens its own connection to the store at `path`, starts the thread. */
int loom__net_writer_start(const char *path, net_writer **out, loom_error *err);
/* Hands a batch to the thread, which must have none: the rooms of `list`,
 * linked by next_fly, each with its fly_* updates. The thread wakes `ctx`
 * when the batch is stored. */
void loom__net_writer_submit(net_writer *w,
                             struct lws_context *ctx,
                             net_room *list);
/* The batch handed over, once stored (each room's flush_rc, flush_err and
 * fly_rows set), with the seconds it took; NULL if it is still under way
 * or there is none. With `wait`, waits for one under way. */
net_room *loom__net_writer_take(net_writer *w, bool wait, double *seconds);
/* Lets a batch under way finish (the caller takes it back or frees it),
 * stops the thread, closes. NULL: no-op. */
void loom__net_writer_stop(net_writer *w);

/* Host names resolved on a thread of their own (resolve.c). */
typedef struct net_resolve net_resolve;
/* An IPv4 or IPv6 address in text: nothing to resolve. */
bool loom__net_is_numeric_host(const char *host);
/* Starts resolving `host`; `ctx` is woken (lws_cancel_service) when the
 * answer is there. Free with loom__net_resolve_free, done or not. */
int loom__net_resolve_start(const char *host,
                            struct lws_context *ctx,
                            net_resolve **out);
/* Bytes of a lookup's answer: addresses in text, each NUL-terminated, the
 * list ended by an empty one (as many as fit), or the error text. */
#define NET_RESOLVE_MAX 512
/* True once resolved: *ok and, in `out`, the addresses or (not ok) the
 * error text. */
bool loom__net_resolve_done(net_resolve *r,
                            bool *ok,
                            char out[NET_RESOLVE_MAX]);
/* The same lookup, here and now (getaddrinfo: it may block): the
 * addresses of `host` in the resolver's order, as many as fit in `cap`,
 * each as numeric text followed by a NUL, the list ended by an empty one,
 * with *ok; or (not ok) the error text. */
void loom__net_lookup(const char *host, bool *ok, char *out, size_t cap);
/* Lets go of a lookup; one under way finishes on its own. NULL: no-op. */
void loom__net_resolve_free(net_resolve *r);

struct loom_server {
    const loom_allocator *a;
    char *host, *data_dir, *web_dir;
    uint8_t *secret;
    size_t secret_len;
    size_t max_message, max_queue;
    unsigned max_conns, ping_secs, hangup_secs, unload_secs, compact_rows;
    unsigned awareness_timeout_ms;
    bool gc; /* the rooms' documents garbage-collect */
    loom_log_fn log;
    void *log_ud;
    loom_log_level log_level;

    struct lws_context *ctx;
    net_compactor *compactor; /* with a store */
    net_writer *writer;       /* with a store */
    struct lws_vhost *vh;
    struct lws_protocols protocols[3];
    lws_retry_bo_t retry;
    lws_sorted_usec_list_t sul;
    int port;

    /* the HTTP callback (callback.c) */
    char *cb_host, *cb_hosthdr, *cb_path; /* cb_host: NULL when off */
    int cb_port;
    unsigned cb_debounce_ms, cb_max_wait_ms, cb_timeout_ms;
    loom_any *cb_objects; /* {"name": "Type"} */
    lws_sorted_usec_list_t cb_sul;
    uint64_t cb_sul_at;         /* when it fires; 0: not scheduled */
    struct net_cb_req *cb_reqs; /* POSTs on their way */

    loom_store *store;
    net_room *dirty;  /* rooms with updates waiting for the next batch */
    net_room *flying; /* the batch the writer has (next_fly) */
    size_t pend_bytes;
    size_t rx_round; /* messages read in the current poll round */
    net_room *buckets[NET_ROOM_BUCKETS];
    net_room *rooms;
    size_t n_rooms;
    net_conn *conns;
    size_t n_conns;

    volatile sig_atomic_t stop_requested;
    bool stopping;
    bool done;
    bool destroying; /* the context is going: send nothing */
    uint64_t stop_deadline_ms;
    uint64_t last_expire_ms;

    /* metrics */
    uint64_t m_conns_total, m_conns_rejected, m_conns_dropped;
    uint64_t m_msgs_in, m_msgs_out, m_bytes_in, m_bytes_out;
    uint64_t m_updates_applied, m_updates_refused, m_awareness_applied;
    uint64_t m_rooms_loaded, m_rooms_unloaded;
    uint64_t m_store_appends, m_store_updates, m_store_errors;
    double m_store_seconds;
    uint64_t m_store_hist[NET_HIST_BUCKETS]; /* cumulative at render */
    uint64_t m_callbacks, m_callback_errors;
};

/* server.c */
uint64_t loom__net_now_ms(void);
/* The peer's address, for log lines; computed when needed rather than kept
 * in every connection. NET_PEER(c) gives it a buffer living as long as the
 * enclosing block (a compound literal). */
const char *loom__net_peer(const net_conn *c, char *buf, size_t cap);
#define NET_PEER(c) loom__net_peer((c), (char[64]){0}, 64)
/* One log line through `fn` when `level` is at most `max` (the server's
 * and the provider's logging). */
void loom__net_vlog(loom_log_fn fn,
                    void *ud,
                    loom_log_level max,
                    loom_log_level level,
                    const char *fmt,
                    va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 0)))
#endif
    ;
void loom__net_log(loom_server *s, loom_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* room.c: rooms and the protocol on top of connections */
int loom__net_room_join(loom_server *s, net_conn *c, const char *name);
void loom__net_room_leave(net_conn *c);
/* Handles one whole message; returns 0, or a close status with `why` set
 * (a static string) when the connection must be closed. */
int loom__net_room_message(net_conn *c,
                           const uint8_t *p,
                           size_t n,
                           const char **why);
void loom__net_rooms_tick(loom_server *s, uint64_t now_ms);
/* Group commit, at the end of each turn of the loop: applies and relays
 * the batch the writer has stored, if it is done, and hands it the updates
 * waiting since, if any. Without a store: applies and relays them now. */
void loom__net_flush(loom_server *s);
/* The same, until every accepted update is stored, applied and relayed. */
void loom__net_flush_all(loom_server *s);
/* Frees waiting updates without storing them (the server is being freed
 * without having run, or after it ran and flushed; the writer stopped). */
void loom__net_pending_free(loom_server *s);
void loom__net_rooms_free(loom_server *s);
/* Queues a copy of bytes / a shared buffer on a connection; false when the
 * connection went over its queue bound (it is then being dropped). */
bool loom__net_send(net_conn *c, net_sbuf *b);
net_sbuf *loom__net_sbuf(loom_server *s, const uint8_t *p, size_t n);
void loom__net_sbuf_unref(loom_server *s, net_sbuf *b);
/* Marks a connection dead, frees its queue and has lws close it soon. */
void loom__net_drop(net_conn *c, enum lws_close_status status, const char *why);

/* callback.c: the reference server's HTTP callback on room changes */
int loom__net_callback_init(loom_server *s,
                            const loom_server_options *o,
                            loom_error *err);
/* A batch was applied to room r: (re)arms its callback. */
void loom__net_callback_note(loom_server *s, net_room *r);
/* Sends r's pending callback now (the room is about to unload). */
void loom__net_callback_flush_room(loom_server *s, net_room *r);
/* Cancels the timer (the loop is stopping). */
void loom__net_callback_stop(loom_server *s);
void loom__net_callback_free(loom_server *s);
int loom__net_callback_protocol(struct lws *wsi,
                                enum lws_callback_reasons reason,
                                void *user,
                                void *in,
                                size_t len);

/* http.c */
int loom__net_http(loom_server *s,
                   struct lws *wsi,
                   net_pss *pss,
                   const char *uri);
int loom__net_http_writeable(loom_server *s, struct lws *wsi, net_pss *pss);
void loom__net_http_done(loom_server *s, net_pss *pss);
/* Builds a response with a body in pss and asks for a writable callback. */
int loom__net_http_reply(loom_server *s,
                         struct lws *wsi,
                         net_pss *pss,
                         unsigned status,
                         const char *type,
                         const uint8_t *body,
                         size_t len);

#endif
