/*
 * provider.c: the native y-websocket peer (loom/provider.h): a
 * libwebsockets client context of its own, one connection at a time to
 * one room, driven by the embedder through loom_provider_service. It
 * follows y-websocket's WebsocketProvider (spec §13.2):
 *
 *  - on open: [0, step 1], then [1, own awareness] when it is not null;
 *  - sync messages go through loom_sync_handle with the provider as the
 *    origin; a step 1 is answered with step 2; the first step 2 of a
 *    connection makes it SYNCED;
 *  - the document's update hook sends every update whose origin is not
 *    the provider, while the socket is open; while it is not, nothing is
 *    queued: the updates stay in the document and the next connection's
 *    step 1 / step 2 exchange carries them (and a queue that overflows is
 *    handled the same way: the connection is dropped and redone);
 *  - reconnect after min(min * 2^n, max) with n the attempts in a row
 *    that did not sync (y-websocket counts those that did not open);
 *    permission denied, HTTP 401/403 and close codes 4400-4499 stop;
 *  - awareness: remote states are tracked, renewed own state every 15 s,
 *    remote states expire after 30 s and are all removed on disconnect.
 *
 * With a store the same update hook appends every update of the document
 * (received ones right after they were applied, in the transaction's
 * update event, before the next message is read) except those that came
 * from the store itself (applied with &p->store_origin). docs/peers.md
 * explains why that order is safe.
 *
 * Malformed bytes from the server never reach the document (the proto
 * layer validates whole messages first): they are logged and close the
 * connection, which is then retried like any other.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "loom/provider.h"
#include "net.h"

#define PROV_AWARENESS_RENEW_MS   15000 /* y-protocols outdatedTimeout / 2 */
#define PROV_AWARENESS_TIMEOUT_MS 30000 /* y-protocols outdatedTimeout */
#define PROV_AWARENESS_CHECK_MS   3000  /* y-protocols: timeout / 10 */
#define PROV_HOST_MAX             256

/* One queued message with LWS_PRE bytes of headroom for lws_write. */
typedef struct prov_msg {
    struct prov_msg *next;
    size_t len;
    uint8_t data[];
} prov_msg;

struct loom_provider {
    const loom_allocator *a;
    loom_doc *doc;
    loom_store *store;
    char *store_name;
    char *host; /* without brackets for IPv6 */
    char *host_hdr;
    char *path; /* "/" ROOM ["?" QUERY], sent as it is */
    char *room; /* ROOM, for log lines */
    int port;
    bool tls; /* wss:// */
    unsigned poll_ms, bo_min, bo_max;
    size_t max_message, max_queue;
    loom_log_fn log;
    void *log_ud;
    loom_log_level log_level;
    loom_provider_status_fn on_status;
    void *status_ud;
    loom_awareness_fn on_awareness;
    void *awareness_ud;

    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    lws_retry_bo_t retry;
    lws_sorted_usec_list_t wake;
    struct lws *wsi;  /* the connection, NULL between attempts */
    net_resolve *dns; /* the host name being resolved for an attempt */
    /* The attempt's addresses (resolve.c's list) and the one dialled: a
     * connection that fails before any HTTP answer tries the next one at
     * once, as libwebsockets does with the addresses it resolves. */
    char addrs[NET_RESOLVE_MAX];
    size_t addr_at;  /* offset of the address being dialled */
    bool dial_next;  /* dial the address at addr_at in the next service */
    bool open;       /* the WebSocket is established */
    bool denied;     /* no more attempts */
    bool destroying; /* being freed: callbacks do nothing */
    bool drop;       /* close the connection at the next writable */
    char why[160];   /* why the connection closed, for the log */
    unsigned fails;  /* attempts in a row that did not sync */
    uint64_t retry_at_ms;
    loom_provider_status status;
    bool synced;
    uint32_t sub_id;

    prov_msg *qh, *qt;
    size_t q_bytes;
    loom_buf rx; /* the message being assembled from fragments */

    loom_awareness *aw;
    uint64_t self;
    char *local; /* own awareness state (JSON), NULL: null */
    size_t local_len;
    uint64_t aw_renewed_ms, aw_checked_ms;
    bool aw_resend;   /* a peer removed our state: announce it again */
    uint64_t *remote; /* remote clients with a state */
    size_t n_remote, cap_remote;

    uint64_t next_poll_ms;
    loom_store_doc_info seen_info;
    loom_buf seen_sv;
    char store_origin; /* its address tags updates applied from the store */
};

/* ---- small helpers -------------------------------------------------------- */

static void plog(loom_provider *p, loom_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void plog(loom_provider *p, loom_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loom__net_vlog(p->log, p->log_ud, p->log_level, level, fmt, ap);
    va_end(ap);
}

static void
set_status(loom_provider *p, loom_provider_status st, const char *detail)
{
    p->status = st;
    if (p->on_status && !p->destroying) {
        p->on_status(p->status_ud, st, detail ? detail : "");
    }
}

static char *dup_str(const loom_allocator *a, const char *s, size_t n)
{
    return loom__strndup(a, s, n);
}

static void free_str(const loom_allocator *a, char *s)
{
    if (s) {
        loom__free(a, s, strlen(s) + 1);
    }
}

/* ---- the URL -------------------------------------------------------------- */

/*
 * Splits ws[s]://HOST[:PORT]/ROOM[?QUERY] into the provider's scheme, host,
 * port, path and room. Only what is needed to dial is checked: a host of
 * at most 255 bytes without spaces, a port 1-65535, a non-empty room.
 */
static int parse_url(loom_provider *p, const char *url, loom_error *err)
{
    const char *s = url;
    if (strncmp(s, "wss://", 6) == 0) {
        p->tls = true;
        s += 6;
    } else if (strncmp(s, "ws://", 5) == 0) {
        s += 5;
    } else {
        loom__error_set(err, LOOM_EINVAL, 0, 0,
                        "the URL must start with ws:// or wss://");
        return LOOM_EINVAL;
    }
    const char *host_at = s;
    const char *hb = s, *he;
    if (*s == '[') {
        hb = s + 1;
        he = strchr(hb, ']');
        if (!he) {
            loom__error_set(err, LOOM_EINVAL, 0, 0, "unclosed [ in the URL");
            return LOOM_EINVAL;
        }
        s = he + 1;
    } else {
        he = s + strcspn(s, ":/?#");
        s = he;
    }
    size_t hlen = (size_t)(he - hb);
    if (hlen == 0 || hlen >= PROV_HOST_MAX || memchr(hb, ' ', hlen)) {
        loom__error_set(err, LOOM_EINVAL, 0, 0, "no usable host in the URL");
        return LOOM_EINVAL;
    }
    long port = p->tls ? 443 : 80;
    if (*s == ':') {
        s++;
        port = 0;
        const char *d = s;
        while (*s >= '0' && *s <= '9' && port <= 65535) {
            port = port * 10 + (*s - '0');
            s++;
        }
        if (s == d || port < 1 || port > 65535) {
            loom__error_set(err, LOOM_EINVAL, 0, 0, "bad port in the URL");
            return LOOM_EINVAL;
        }
    }
    if (*s != '/' || s[1] == '\0' || s[1] == '?' || s[1] == '#') {
        loom__error_set(err, LOOM_EINVAL, 0, 0,
                        "the URL names no room (ws://HOST:PORT/ROOM)");
        return LOOM_EINVAL;
    }
    size_t plen = strcspn(s, "#");
    size_t rlen = strcspn(s + 1, "?#");
    p->port = (int)port;
    p->host = dup_str(p->a, hb, hlen);
    p->path = dup_str(p->a, s, plen);
    p->room = dup_str(p->a, s + 1, rlen);
    char hdr[PROV_HOST_MAX + 16];
    bool v6 = hb != host_at;
    (void)snprintf(hdr, sizeof(hdr), "%s%.*s%s:%ld", v6 ? "[" : "", (int)hlen,
                   hb, v6 ? "]" : "", port);
    p->host_hdr = dup_str(p->a, hdr, strlen(hdr));
    if (!p->host || !p->path || !p->room || !p->host_hdr) {
        return LOOM_ENOMEM;
    }
    return LOOM_OK;
}

/* ---- sending ---------------------------------------------------------------- */

static void free_queue(loom_provider *p)
{
    prov_msg *m = p->qh;
    while (m) {
        prov_msg *next = m->next;
        loom__free(p->a, m, sizeof(*m) + LWS_PRE + m->len);
        m = next;
    }
    p->qh = p->qt = NULL;
    p->q_bytes = 0;
}

/* Has the connection closed at the next writable callback, e.g. after a
 * queue overflow or a malformed message. */
static void drop_conn(loom_provider *p, const char *why)
{
    if (!p->wsi || p->drop) {
        return;
    }
    p->drop = true;
    (void)snprintf(p->why, sizeof(p->why), "%s", why);
    free_queue(p);
    lws_callback_on_writable(p->wsi);
}

/* Queues one whole message; only while the socket is open. */
static void send_msg(loom_provider *p, const uint8_t *data, size_t len)
{
    if (!p->open || p->drop || p->destroying) {
        return;
    }
    if (p->q_bytes && p->q_bytes + len > p->max_queue) {
        plog(p, LOOM_LOG_WARN,
             "%s: send queue over %zu bytes (the server does not read): "
             "reconnecting",
             p->room, p->max_queue);
        drop_conn(p, "send queue full");
        return;
    }
    prov_msg *m = loom__malloc(p->a, sizeof(*m) + LWS_PRE + len);
    if (!m) {
        drop_conn(p, "out of memory");
        return;
    }
    m->next = NULL;
    m->len = len;
    memcpy(m->data + LWS_PRE, data, len);
    if (p->qt) {
        p->qt->next = m;
    } else {
        p->qh = m;
    }
    p->qt = m;
    p->q_bytes += len;
    lws_callback_on_writable(p->wsi);
}

static void send_buf(loom_provider *p, loom_buf *b, int rc)
{
    if (rc == LOOM_OK) {
        send_msg(p, b->data, b->len);
    } else {
        drop_conn(p, "cannot build a message");
    }
    loom_buf_free(b);
}

static void send_own_awareness(loom_provider *p)
{
    if (!p->local) {
        return;
    }
    loom_buf u = {0}, m = {0};
    loom__buf_init(&u, p->a);
    loom__buf_init(&m, p->a);
    int rc = loom_awareness_encode(p->aw, &p->self, 1, &u);
    if (rc == LOOM_OK) {
        rc = loom_msg_write_awareness(&m, u.data, u.len);
    }
    loom_buf_free(&u);
    send_buf(p, &m, rc);
}

/* A close frame giving p->why (a close reason holds at most 123 bytes). */
static void close_why(loom_provider *p, struct lws *wsi)
{
    size_t n = strlen(p->why);
    lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)p->why,
                     n > 120 ? 120 : n);
}

static int on_writeable(loom_provider *p, struct lws *wsi)
{
    if (p->drop) {
        close_why(p, wsi);
        return -1;
    }
    for (int burst = 0; p->qh && burst < 32; burst++) {
        prov_msg *m = p->qh;
        p->qh = m->next;
        if (!p->qh) {
            p->qt = NULL;
        }
        p->q_bytes -= m->len;
        size_t len = m->len;
        int n = lws_write(wsi, m->data + LWS_PRE, len, LWS_WRITE_BINARY);
        loom__free(p->a, m, sizeof(*m) + LWS_PRE + len);
        if (n < 0 || (size_t)n < len) {
            (void)snprintf(p->why, sizeof(p->why), "write failed");
            return -1;
        }
        if (lws_send_pipe_choked(wsi)) {
            break;
        }
    }
    if (p->qh) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

/* ---- the document and the store ------------------------------------------- */

static void on_doc_update(void *ud,
                          loom_doc *doc,
                          const uint8_t *update,
                          size_t len,
                          const loom_txn *txn)
{
    loom_provider *p = ud;
    (void)doc;
    void *origin = loom_txn_origin(txn);
    if (p->store && origin != &p->store_origin) {
        loom_error err;
        memset(&err, 0, sizeof(err));
        int rc = loom_store_append(p->store, p->store_name, update, len, &err);
        if (rc) {
            /* the document has it; the next store poll that finds the
             * store behind does not repair this, so say it loudly */
            plog(p, LOOM_LOG_ERROR,
                 "%s: cannot append an update to the "
                 "store: %s (%s)",
                 p->room, err.message, loom_strerror(rc));
        }
    }
    if (origin != p && p->open) {
        loom_buf m = {0};
        loom__buf_init(&m, p->a);
        int rc = loom_msg_write_sync(&m, LOOM_SYNC_UPDATE, update, len);
        send_buf(p, &m, rc);
    }
}

static bool info_equal(const loom_store_doc_info *x,
                       const loom_store_doc_info *y)
{
    return x->updates == y->updates && x->bytes == y->bytes;
}

/*
 * Applies to the document what the store has and the document lacks, when
 * the store document changed since the last look (its log counters or its
 * state vector). Comparing counters too catches appends that only delete,
 * which leave the state vector as it was.
 */
static void poll_store(loom_provider *p)
{
    loom_error err;
    memset(&err, 0, sizeof(err));
    loom_store_doc_info info;
    int rc = loom_store_info(p->store, p->store_name, &info, &err);
    if (rc == LOOM_ENOTFOUND) {
        return;
    }
    loom_buf sv = {0}, dsv = {0}, diff = {0};
    if (rc == LOOM_OK) {
        rc = loom_store_state_vector(p->store, p->store_name, &sv, &err);
    }
    if (rc) {
        plog(p, LOOM_LOG_WARN, "%s: cannot read the store: %s", p->room,
             err.message[0] ? err.message : loom_strerror(rc));
        loom_buf_free(&sv);
        return;
    }
    if (info_equal(&info, &p->seen_info) && sv.len == p->seen_sv.len &&
        memcmp(sv.data, p->seen_sv.data, sv.len) == 0) {
        loom_buf_free(&sv);
        return;
    }
    loom__buf_init(&dsv, p->a);
    rc = loom_doc_encode_state_vector(p->doc, &dsv);
    if (rc == LOOM_OK) {
        rc = loom_store_diff(p->store, p->store_name, dsv.data, dsv.len, &diff,
                             &err);
    }
    if (rc == LOOM_OK) {
        rc = loom_doc_apply_update(p->doc, diff.data, diff.len,
                                   &p->store_origin, &err);
    }
    if (rc) {
        plog(p, LOOM_LOG_WARN, "%s: cannot apply the store's new updates: %s",
             p->room, err.message[0] ? err.message : loom_strerror(rc));
    } else {
        p->seen_info = info;
        loom_buf_free(&p->seen_sv);
        p->seen_sv = sv;
        sv = (loom_buf){0};
    }
    loom_buf_free(&sv);
    loom_buf_free(&dsv);
    loom_buf_free(&diff);
}

/*
 * At start: the store's document into `doc`, and what `doc` held that the
 * store lacks into the store, so that both hold the union.
 */
static int load_store(loom_provider *p, loom_error *err)
{
    loom_buf before = {0}, ssv = {0}, up = {0};
    loom__buf_init(&before, p->a);
    int rc = loom_doc_encode_state_vector(p->doc, &before);
    int exists = rc ? rc : loom_store_exists(p->store, p->store_name, err);
    if (exists < 0) {
        loom_buf_free(&before);
        return exists;
    }
    if (exists) {
        rc = loom_store_load(p->store, p->store_name, p->doc, err);
        if (rc == LOOM_OK) {
            rc = loom_store_state_vector(p->store, p->store_name, &ssv, err);
        }
    }
    /* a state vector of an empty document is the one byte 0 */
    if (rc == LOOM_OK && before.len > 1) {
        loom__buf_init(&up, p->a);
        rc = loom_doc_encode_state_as_update(p->doc, ssv.data, ssv.len, &up,
                                             err);
        if (rc == LOOM_OK) {
            rc = loom_store_append(p->store, p->store_name, up.data, up.len,
                                   err);
        }
    }
    if (rc == LOOM_OK && (exists || before.len > 1)) {
        loom_buf_free(&ssv);
        rc = loom_store_info(p->store, p->store_name, &p->seen_info, err);
        if (rc == LOOM_OK) {
            rc = loom_store_state_vector(p->store, p->store_name, &p->seen_sv,
                                         err);
        }
    }
    loom_buf_free(&before);
    loom_buf_free(&ssv);
    loom_buf_free(&up);
    return rc;
}

/* ---- awareness ------------------------------------------------------------ */

static void remote_add(loom_provider *p, uint64_t client)
{
    for (size_t i = 0; i < p->n_remote; i++) {
        if (p->remote[i] == client) {
            return;
        }
    }
    if (p->n_remote == p->cap_remote) {
        size_t cap = p->cap_remote ? p->cap_remote * 2 : 8;
        uint64_t *v = loom__realloc(p->a, p->remote, p->cap_remote * sizeof(*v),
                                    cap * sizeof(*v));
        if (!v) {
            return; /* only the removal on disconnect misses it */
        }
        p->remote = v;
        p->cap_remote = cap;
    }
    p->remote[p->n_remote++] = client;
}

static void remote_del(loom_provider *p, uint64_t client)
{
    for (size_t i = 0; i < p->n_remote; i++) {
        if (p->remote[i] == client) {
            p->remote[i] = p->remote[--p->n_remote];
            return;
        }
    }
}

static void on_aw_change(void *ud, uint64_t client, loom_awareness_change what)
{
    loom_provider *p = ud;
    if (client == p->self) {
        /* only a peer removing our state reaches here: y-protocols keeps
         * it with a newer clock, and we say so */
        p->aw_resend = true;
        return;
    }
    if (what == LOOM_AWARENESS_REMOVED) {
        remote_del(p, client);
    } else {
        remote_add(p, client);
    }
    if (p->on_awareness && !p->destroying) {
        p->on_awareness(p->awareness_ud, client, what);
    }
}

static void remove_remote_states(loom_provider *p)
{
    if (!p->n_remote) {
        return;
    }
    size_t n = p->n_remote;
    uint64_t *ids = loom__memdup(p->a, p->remote, n * sizeof(*ids));
    if (!ids) {
        return;
    }
    (void)loom_awareness_remove(p->aw, ids, n, loom__net_now_ms(), on_aw_change,
                                p);
    loom__free(p->a, ids, n * sizeof(*ids));
}

static void awareness_timers(loom_provider *p, uint64_t now)
{
    if (now - p->aw_checked_ms < PROV_AWARENESS_CHECK_MS) {
        return;
    }
    p->aw_checked_ms = now;
    (void)loom_awareness_expire(p->aw, now, PROV_AWARENESS_TIMEOUT_MS,
                                on_aw_change, p);
    if (p->local && p->open &&
        now - p->aw_renewed_ms >= PROV_AWARENESS_RENEW_MS) {
        if (loom_awareness_set_local(p->aw, p->local, p->local_len, now) ==
            LOOM_OK) {
            p->aw_renewed_ms = now;
            send_own_awareness(p);
        }
    }
}

/* ---- messages from the server --------------------------------------------- */

/* Handles one whole message; 0, or -1 with p->why set to close. */
static int on_message(loom_provider *p, const uint8_t *data, size_t len)
{
    loom_msg m;
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc = loom_msg_parse(data, len, &m, &err);
    if (rc) {
        plog(p, LOOM_LOG_WARN,
             "%s: bad message from the server (%s at byte "
             "%zu): reconnecting",
             p->room, err.message, err.offset);
        (void)snprintf(p->why, sizeof(p->why), "bad message");
        return -1;
    }
    switch (m.type) {
    case LOOM_MSG_SYNC: {
        loom_buf reply = {0};
        loom__buf_init(&reply, p->a);
        rc = loom_sync_handle(p->doc, &m, p, &reply, &err);
        if (rc) {
            loom_buf_free(&reply);
            plog(p, LOOM_LOG_WARN,
                 "%s: bad sync message from the server (%s "
                 "at byte %zu): reconnecting",
                 p->room, err.message, err.offset);
            (void)snprintf(p->why, sizeof(p->why), "bad sync message");
            return -1;
        }
        if (reply.len) {
            send_msg(p, reply.data, reply.len);
        }
        loom_buf_free(&reply);
        if (m.sync_type == LOOM_SYNC_STEP2 && !p->synced) {
            p->synced = true;
            p->fails = 0;
            plog(p, LOOM_LOG_INFO, "%s: synced", p->room);
            set_status(p, LOOM_PROVIDER_SYNCED, "");
        }
        return 0;
    }
    case LOOM_MSG_AWARENESS:
        p->aw_resend = false;
        rc = loom_awareness_apply(p->aw, m.payload, m.payload_len,
                                  loom__net_now_ms(), on_aw_change, p, &err);
        if (rc) {
            plog(p, LOOM_LOG_WARN,
                 "%s: bad awareness update from the server "
                 "(%s at byte %zu): reconnecting",
                 p->room, err.message, err.offset);
            (void)snprintf(p->why, sizeof(p->why), "bad awareness update");
            return -1;
        }
        if (p->aw_resend) {
            p->aw_resend = false;
            send_own_awareness(p);
        }
        return 0;
    case LOOM_MSG_AUTH: {
        char reason[96];
        int n = m.payload_len < sizeof(reason) - 1 ? (int)m.payload_len
                                                   : (int)sizeof(reason) - 1;
        (void)snprintf(reason, sizeof(reason), "%.*s", n,
                       (const char *)m.payload);
        plog(p, LOOM_LOG_ERROR, "%s: permission denied: %s", p->room, reason);
        p->denied = true;
        (void)snprintf(p->why, sizeof(p->why), "permission denied: %s", reason);
        return -1;
    }
    case LOOM_MSG_QUERY_AWARENESS: {
        loom_buf u = {0}, out = {0};
        loom__buf_init(&u, p->a);
        loom__buf_init(&out, p->a);
        rc = loom_awareness_encode_all(p->aw, &u);
        if (rc == LOOM_OK) {
            rc = loom_msg_write_awareness(&out, u.data, u.len);
            send_buf(p, &out, rc);
        }
        loom_buf_free(&u);
        loom_buf_free(&out);
        return 0;
    }
    }
    return 0;
}

static int
on_receive(loom_provider *p, struct lws *wsi, const uint8_t *in, size_t len)
{
    if (!lws_frame_is_binary(wsi)) {
        plog(p, LOOM_LOG_WARN, "%s: text frame from the server: reconnecting",
             p->room);
        (void)snprintf(p->why, sizeof(p->why), "text frame");
        return -1;
    }
    if (len > p->max_message || p->rx.len > p->max_message - len) {
        plog(p, LOOM_LOG_WARN, "%s: message over %zu bytes: reconnecting",
             p->room, p->max_message);
        (void)snprintf(p->why, sizeof(p->why), "message too large");
        return -1;
    }
    bool whole =
        lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    const uint8_t *msg = in;
    size_t n = len;
    if (p->rx.len || !whole) {
        if (loom__buf_append(&p->rx, in, len)) {
            (void)snprintf(p->why, sizeof(p->why), "out of memory");
            return -1;
        }
        if (!whole) {
            return 0;
        }
        msg = p->rx.data;
        n = p->rx.len;
    }
    int rc = on_message(p, msg, n);
    loom_buf_free(&p->rx);
    return rc;
}

/* ---- connection life ------------------------------------------------------ */

static unsigned backoff_ms(const loom_provider *p)
{
    uint64_t d = p->bo_min;
    for (unsigned i = 0; i < p->fails && d < p->bo_max; i++) {
        d *= 2;
    }
    return d > p->bo_max ? p->bo_max : (unsigned)d;
}

static void on_established(loom_provider *p, struct lws *wsi)
{
    p->wsi = wsi;
    p->open = true;
    p->synced = false;
    p->drop = false;
    p->why[0] = '\0';
    plog(p, LOOM_LOG_INFO, "%s: connected to %s", p->room, p->host_hdr);
    set_status(p, LOOM_PROVIDER_CONNECTED, "");
    loom_buf m = {0};
    loom__buf_init(&m, p->a);
    send_buf(p, &m, loom_msg_write_sync_step1(&m, p->doc));
    /* A renewal (new clock) rather than the last state as it was:
     * y-websocket resends the same clock, which peers that dropped our
     * state when we went away refuse until the 15 s renewal. */
    uint64_t now = loom__net_now_ms();
    if (p->local && loom_awareness_set_local(p->aw, p->local, p->local_len,
                                             now) == LOOM_OK) {
        p->aw_renewed_ms = now;
    }
    send_own_awareness(p);
}

/* The attempt or the connection is over: clean up, then schedule the next
 * attempt or stop for good. */
static void on_gone(loom_provider *p, const char *what)
{
    bool synced = p->synced;
    p->wsi = NULL;
    p->open = p->synced = p->drop = false;
    free_queue(p);
    loom_buf_free(&p->rx);
    if (p->destroying) {
        return;
    }
    remove_remote_states(p);
    if (p->denied) {
        plog(p, LOOM_LOG_ERROR, "%s: %s%s%s; not retrying", p->room, what,
             p->why[0] ? ": " : "", p->why);
        set_status(p, LOOM_PROVIDER_DENIED, p->why);
        return;
    }
    /* An attempt counts as a success once it synced, not when it opened
     * (y-websocket): a server that accepts and then closes at once, or
     * sends garbage, is retried with growing delays too. */
    if (!synced) {
        p->fails++;
    }
    unsigned d = backoff_ms(p);
    p->retry_at_ms = loom__net_now_ms() + d;
    char detail[200];
    (void)snprintf(detail, sizeof(detail), "%s%s%s; retry in %u ms", what,
                   p->why[0] ? ": " : "", p->why, d);
    plog(p, LOOM_LOG_INFO, "%s: %s", p->room, detail);
    set_status(p, LOOM_PROVIDER_DISCONNECTED, detail);
}

/* Dials `addr` (numeric, or the host itself), sending the host as Host. */
static void dial(loom_provider *p, const char *addr)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = p->ctx;
    ci.address = addr;
    ci.port = p->port;
    ci.path = p->path;
    ci.host = p->host_hdr;
    /* no Origin header: we are not a web page (Node's ws sends none) */
    ci.ietf_version_or_minus_one = -1;
    ci.local_protocol_name = p->protocols[0].name;
    ci.pwsi = &p->wsi;
    ci.retry_and_idle_policy = &p->retry;
    if (p->tls) {
        /* the certificate must chain to a trusted CA and name the host */
        ci.ssl_connection = LCCSCF_USE_SSL;
    }
    plog(p, LOOM_LOG_DEBUG, "%s: connecting to %s (%s)", p->room, p->host_hdr,
         addr);
    /* on failure lws may already have called back with a connection error
     * (and cleared p->wsi); a NULL return without it is handled here */
    struct lws *w = lws_client_connect_via_info(&ci);
    if (!w && p->status == LOOM_PROVIDER_CONNECTING) {
        (void)snprintf(p->why, sizeof(p->why), "cannot start a connection");
        on_gone(p, "connection failed");
    }
}

/* An attempt: a numeric host is dialled at once; a name is resolved on a
 * thread first (resolve.c), and dialled by the service call that finds
 * the answer, so the embedder's loop never waits for DNS. */
static void connect_now(loom_provider *p)
{
    p->why[0] = '\0';
    p->addrs[0] = '\0';
    set_status(p, LOOM_PROVIDER_CONNECTING, p->host_hdr);
    if (loom__net_is_numeric_host(p->host)) {
        dial(p, p->host);
        return;
    }
    if (loom__net_resolve_start(p->host, p->ctx, &p->dns) != LOOM_OK) {
        (void)snprintf(p->why, sizeof(p->why), "out of memory");
        on_gone(p, "connection failed");
        return;
    }
    plog(p, LOOM_LOG_DEBUG, "%s: resolving %s", p->room, p->host);
}

/* The service call that finds the host resolved dials it. */
static void resolved(loom_provider *p)
{
    bool ok = false;
    if (!loom__net_resolve_done(p->dns, &ok, p->addrs)) {
        return;
    }
    loom__net_resolve_free(p->dns);
    p->dns = NULL;
    if (!ok) {
        (void)snprintf(p->why, sizeof(p->why), "%.*s", (int)sizeof(p->why) - 1,
                       p->addrs);
        p->addrs[0] = '\0';
        on_gone(p, "connection failed");
        return;
    }
    p->addr_at = 0;
    dial(p, p->addrs);
}

/* The HTTP status of a refused upgrade, from the error text lws gives and
 * the status it kept, when it still has it. */
static void connection_error(loom_provider *p, struct lws *wsi, const char *in)
{
    unsigned st = wsi ? lws_http_client_http_response(wsi) : 0;
    size_t next =
        p->addrs[0] ? p->addr_at + strlen(p->addrs + p->addr_at) + 1 : 0;
    if (!st && next && next < sizeof(p->addrs) && p->addrs[next]) {
        /* the host has another address: try it now, as one attempt */
        plog(p, LOOM_LOG_DEBUG, "%s: %s unreachable (%s); trying %s", p->room,
             p->addrs + p->addr_at, in ? in : "error", p->addrs + next);
        p->wsi = NULL;
        p->addr_at = next;
        p->dial_next = true;
        return;
    }
    (void)snprintf(p->why, sizeof(p->why), "%s", in ? in : "unknown error");
    if (st) {
        size_t l = strlen(p->why);
        (void)snprintf(p->why + l, sizeof(p->why) - l, " (HTTP %u)", st);
    }
    if (st == 401 || st == 403) {
        p->denied = true;
    }
    on_gone(p, "connection failed");
}

static int callback(struct lws *wsi,
                    enum lws_callback_reasons reason,
                    void *user,
                    void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    loom_provider *p = ctx ? lws_context_user(ctx) : NULL;
    if (!p || p->destroying) {
        if (p && (reason == LWS_CALLBACK_CLIENT_CLOSED ||
                  reason == LWS_CALLBACK_CLIENT_CONNECTION_ERROR)) {
            p->wsi = NULL;
        }
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        on_established(p, wsi);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        connection_error(p, wsi, in);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (on_receive(p, wsi, in, len)) {
            close_why(p, wsi);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(p, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (in && len >= 2) {
            const uint8_t *b = in;
            unsigned code = (unsigned)b[0] << 8 | b[1];
            int rl = len - 2 < 80 ? (int)(len - 2) : 80;
            (void)snprintf(p->why, sizeof(p->why),
                           "closed by the server with "
                           "%u %.*s",
                           code, rl, (const char *)b + 2);
            /* y-websocket: 4400-4499 mean "do not come back" */
            if (code >= 4400 && code <= 4499) {
                p->denied = true;
            }
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        on_gone(p, "disconnected");
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- life cycle ----------------------------------------------------------- */

void loom_provider_options_init(loom_provider_options *o)
{
    memset(o, 0, sizeof(*o));
    o->backoff_min_ms = 100;
    o->backoff_max_ms = 2500;
    o->max_message = 16u << 20;
    o->max_queue = 8u << 20;
    o->log_level = LOOM_LOG_INFO;
}

static void on_wake(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only there to end the poll in time */
}

/* The awareness, with our state from the options (or null). */
static int init_awareness(loom_provider *p,
                          const char *json,
                          uint64_t now,
                          loom_error *err)
{
    int rc = loom_awareness_new(p->a, p->self, now, &p->aw);
    if (rc || !json) {
        return rc ? rc : loom_awareness_set_local(p->aw, NULL, 0, now);
    }
    p->local_len = strlen(json);
    p->local = dup_str(p->a, json, p->local_len);
    if (!p->local) {
        return LOOM_ENOMEM;
    }
    rc = loom_awareness_set_local(p->aw, p->local, p->local_len, now);
    if (rc == LOOM_EMALFORMED) {
        loom__error_set(err, LOOM_EINVAL, 0, 0,
                        "the awareness state is not JSON");
        rc = LOOM_EINVAL;
    }
    return rc;
}

static int
create_context(loom_provider *p, const char *ca_file, loom_error *err)
{
    /* libwebsockets logs to stderr by default; a library must not print */
    lws_set_log_level(0, NULL);
    p->protocols[0].name = "loom-provider";
    p->protocols[0].callback = callback;
    p->protocols[0].rx_buffer_size = 4096;
    /* lws pings a quiet server and hangs up when nothing came back: what
     * y-websocket's 30 s message timeout is for */
    p->retry.secs_since_valid_ping = 10;
    p->retry.secs_since_valid_hangup = 30;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = p->protocols;
    info.user = p;
    info.count_threads = 1;
    info.fd_limit_per_thread = 16;
    info.retry_and_idle_policy = &p->retry;
    info.timeout_secs = 10;
    if (p->tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = ca_file;
    }
    p->ctx = lws_create_context(&info);
    if (!p->ctx) {
        loom__error_set(err, LOOM_EIO, 0, 0,
                        "cannot create the libwebsockets context");
        return LOOM_EIO;
    }
    return LOOM_OK;
}

int loom_provider_new(const loom_provider_options *opts,
                      loom_provider **out,
                      loom_error *err)
{
    if (!opts || !out || !opts->url || !opts->doc || !opts->backoff_min_ms ||
        opts->backoff_min_ms > opts->backoff_max_ms || !opts->max_message ||
        !opts->max_queue) {
        loom__error_set(err, LOOM_EINVAL, 0, 0, "bad provider options");
        return LOOM_EINVAL;
    }
    const loom_allocator *a = opts->alloc;
    loom_provider *p = loom__calloc(a, sizeof(*p));
    if (!p) {
        return LOOM_ENOMEM;
    }
    p->a = a;
    loom__buf_init(&p->rx, a);
    p->doc = opts->doc;
    p->poll_ms = opts->store_poll_ms;
    p->bo_min = opts->backoff_min_ms;
    p->bo_max = opts->backoff_max_ms;
    p->max_message = opts->max_message;
    p->max_queue = opts->max_queue;
    p->log = opts->log;
    p->log_ud = opts->log_ud;
    p->log_level = opts->log_level;
    p->on_status = opts->on_status;
    p->status_ud = opts->status_ud;
    p->on_awareness = opts->on_awareness;
    p->awareness_ud = opts->awareness_ud;
    p->status = LOOM_PROVIDER_DISCONNECTED;
    p->self = loom_doc_client_id(p->doc);
    loom__buf_init(&p->seen_sv, a);
    uint64_t now = loom__net_now_ms();
    int rc = parse_url(p, opts->url, err);
    if (rc == LOOM_OK) {
        rc = init_awareness(p, opts->awareness, now, err);
    }
    if (rc == LOOM_OK && opts->store) {
        p->store = opts->store;
        const char *name = opts->store_name ? opts->store_name : p->room;
        p->store_name = dup_str(a, name, strlen(name));
        rc = p->store_name ? load_store(p, err) : LOOM_ENOMEM;
    }
    if (rc == LOOM_OK) {
        rc = loom_doc_on_update(p->doc, on_doc_update, p, &p->sub_id);
    }
    if (rc == LOOM_OK) {
        rc = create_context(p, opts->tls_ca_file, err);
    }
    if (rc) {
        loom_provider_free(p);
        return rc;
    }
    p->retry_at_ms = now;
    p->next_poll_ms = now + p->poll_ms;
    *out = p;
    return LOOM_OK;
}

int loom_provider_service(loom_provider *p, int timeout_ms)
{
    if (!p || !p->ctx) {
        return LOOM_EINVAL;
    }
    uint64_t now = loom__net_now_ms();
    if (p->dial_next) {
        p->dial_next = false;
        dial(p, p->addrs + p->addr_at);
    } else if (p->dns) {
        resolved(p);
    } else if (!p->wsi && !p->denied && now >= p->retry_at_ms) {
        connect_now(p);
    }
    if (p->denied && !p->wsi) {
        return LOOM_ESTATE;
    }
    awareness_timers(p, now);
    int wait = timeout_ms > 0 ? timeout_ms : 0;
    /* (while resolving, the resolver's thread wakes the poll) */
    if (p->dial_next) {
        wait = 0;
    } else if (!p->wsi && !p->dns && !p->denied &&
               p->retry_at_ms - now < (uint64_t)wait) {
        wait = (int)(p->retry_at_ms - now);
    }
    if (p->store && p->poll_ms) {
        uint64_t left = p->next_poll_ms > now ? p->next_poll_ms - now : 0;
        if (left < (uint64_t)wait) {
            wait = (int)left;
        }
    }
    if (wait > 0) {
        lws_sul_schedule(p->ctx, 0, &p->wake, on_wake,
                         (lws_usec_t)wait * LWS_US_PER_MS);
    } else {
        /* makes the poll below return at once */
        lws_cancel_service(p->ctx);
    }
    if (lws_service(p->ctx, 0) < 0) {
        return LOOM_EIO;
    }
    now = loom__net_now_ms();
    if (p->store && p->poll_ms && now >= p->next_poll_ms) {
        p->next_poll_ms = now + p->poll_ms;
        poll_store(p);
    }
    return LOOM_OK;
}

loom_provider_status loom_provider_status_get(const loom_provider *p)
{
    return p ? p->status : LOOM_PROVIDER_DISCONNECTED;
}

int loom_provider_synced(const loom_provider *p)
{
    return p && p->synced;
}

const loom_awareness *loom_provider_awareness(const loom_provider *p)
{
    return p ? p->aw : NULL;
}

int loom_provider_set_awareness(loom_provider *p, const char *json, size_t len)
{
    if (!p) {
        return LOOM_EINVAL;
    }
    char *copy = NULL;
    if (json) {
        copy = dup_str(p->a, json, len);
        if (!copy) {
            return LOOM_ENOMEM;
        }
    }
    uint64_t now = loom__net_now_ms();
    int rc = loom_awareness_set_local(p->aw, json, len, now);
    if (rc) {
        if (copy) {
            loom__free(p->a, copy, len + 1);
        }
        return rc;
    }
    bool had = p->local != NULL;
    if (p->local) {
        loom__free(p->a, p->local, p->local_len + 1);
    }
    p->local = copy;
    p->local_len = copy ? len : 0;
    p->aw_renewed_ms = now;
    if (copy || had) {
        /* a null state is announced once, as a removal */
        loom_buf u = {0}, m = {0};
        loom__buf_init(&u, p->a);
        loom__buf_init(&m, p->a);
        rc = loom_awareness_encode(p->aw, &p->self, 1, &u);
        if (rc == LOOM_OK) {
            rc = loom_msg_write_awareness(&m, u.data, u.len);
        }
        loom_buf_free(&u);
        if (rc == LOOM_OK) {
            send_msg(p, m.data, m.len);
        }
        loom_buf_free(&m);
    }
    return rc;
}

void loom_provider_free(loom_provider *p)
{
    if (!p) {
        return;
    }
    p->destroying = true;
    /* before the context goes: a lookup under way must not wake it */
    loom__net_resolve_free(p->dns);
    p->dns = NULL;
    if (p->ctx) {
        lws_sul_cancel(&p->wake);
        lws_context_destroy(p->ctx);
        p->ctx = NULL;
    }
    if (p->sub_id) {
        (void)loom_doc_unsubscribe(p->doc, p->sub_id);
    }
    free_queue(p);
    loom_buf_free(&p->rx);
    loom__free(p->a, p->remote, p->cap_remote * sizeof(*p->remote));
    loom_awareness_free(p->aw);
    loom_buf_free(&p->seen_sv);
    if (p->local) {
        loom__free(p->a, p->local, p->local_len + 1);
    }
    free_str(p->a, p->store_name);
    free_str(p->a, p->host);
    free_str(p->a, p->host_hdr);
    free_str(p->a, p->path);
    free_str(p->a, p->room);
    loom__free(p->a, p, sizeof(*p));
}
