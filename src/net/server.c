/*
 * server.c: the server's life on libwebsockets (loom/server.h): options,
 * the context and its one vhost, the protocol callback that turns
 * libwebsockets events into connection events (upgrade checks with auth
 * and limits, frames assembled into messages, the send queue drained on
 * writable callbacks, closes), a once-a-second timer for rooms, and a
 * shutdown that drains queues and sends close frames before returning.
 * What messages mean is room.c's business; HTTP endpoints are http.c's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

#define NET_SHUTDOWN_MS 5000
/* Bounds of one turn's gathering (loom_server_run): extra polls, and bytes
 * of updates waiting for the store. */
#define NET_DRAIN_ROUNDS 16
#define NET_DRAIN_BYTES  (1u << 20)
/* Most bytes handed to one send(); a longer frame goes out in pieces of
 * this size, lws keeping the rest. */
#define NET_TX_PACKET (64u << 10)

uint64_t loom__net_now_ms(void)
{
    struct timespec t;
    (void)clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* Keeps the peer's address and port in the connection (20 bytes), read
 * once at the upgrade: by the time a close is logged, getpeername fails. */
static void note_peer(net_conn *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = lws_get_socket_fd(c->wsi);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) != 0) {
        return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        memcpy(c->peer_addr, &in->sin_addr, 4);
        c->peer_port = ntohs(in->sin_port);
        c->peer_family = 4;
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        c->peer_port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            memcpy(c->peer_addr, in6->sin6_addr.s6_addr + 12, 4);
            c->peer_family = 4;
        } else {
            memcpy(c->peer_addr, &in6->sin6_addr, 16);
            c->peer_family = 6;
        }
    }
}

/* ADDR:PORT of the peer ([ADDR]:PORT for IPv6; the port tells apart the
 * clients of one host), for log lines. */
const char *loom__net_peer(const net_conn *c, char *buf, size_t cap)
{
    char addr[INET6_ADDRSTRLEN];
    bool v6 = c->peer_family == 6;
    if (c->peer_family == 0 ||
        !inet_ntop(v6 ? AF_INET6 : AF_INET, c->peer_addr, addr, sizeof(addr))) {
        return "?";
    }
    (void)snprintf(buf, cap, v6 ? "[%s]:%u" : "%s:%u", addr,
                   (unsigned)c->peer_port);
    return buf;
}

void loom__net_vlog(loom_log_fn fn,
                    void *ud,
                    loom_log_level max,
                    loom_log_level level,
                    const char *fmt,
                    va_list ap)
{
    if (!fn || level > max) {
        return;
    }
    char line[1024];
    /* ap is started by the caller; clang-tidy 14 reports it uninitialised */
    int n = vsnprintf( // NOLINT(clang-analyzer-valist.Uninitialized)
        line, sizeof(line), fmt, ap);
    if (n >= 0) {
        fn(ud, level, line);
    }
}

void loom__net_log(loom_server *s, loom_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loom__net_vlog(s->log, s->log_ud, s->log_level, level, fmt, ap);
    va_end(ap);
}

void loom_server_options_init(loom_server_options *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->port = 1234;
    o->max_message = 16u << 20;
    o->max_conns = 10000;
    o->max_queue = 8u << 20;
    o->ping_secs = 30;
    o->hangup_secs = 60;
    o->unload_secs = 30;
    o->compact_rows = 1000;
    o->awareness_timeout_ms = 30000;
    o->gc = 1;
    o->callback_debounce_ms = 2000;
    o->callback_max_wait_ms = 10000;
    o->callback_timeout_ms = 5000;
    o->log_level = LOOM_LOG_INFO;
}

/* ---- upgrade: room, token, limits --------------------------------------- */

/*
 * The room of a request: the path without its leading '/', as the reference
 * server takes it from the raw URL, not percent-decoded. libwebsockets hands
 * us the path already decoded (and with "//" and "/../" collapsed), so the
 * raw form is rebuilt by encoding what a WHATWG URL serializer (browsers,
 * Node's ws) encodes in a path: controls, space, " # < > ? ` { }, '%'
 * itself and every non-ASCII byte, as %XX with upper-case hex. A client
 * that escapes other characters by hand, or uses lower-case hex, gets
 * another room name than with the reference server (docs/server.md).
 */
static int request_room(struct lws *wsi, char *buf, size_t cap)
{
    char path[NET_URI_MAX];
    int n = lws_hdr_copy(wsi, path, (int)sizeof(path), WSI_TOKEN_GET_URI);
    if (n <= 0 || path[0] != '/') {
        return -1;
    }
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (int i = 1; i < n; i++) {
        unsigned char ch = (unsigned char)path[i];
        bool enc = ch <= 0x20 || ch >= 0x7f || strchr("\"#<>?`{}%", ch);
        if (o + (enc ? 3 : 1) >= cap) {
            return -1;
        }
        if (enc) {
            buf[o++] = '%';
            buf[o++] = hex[ch >> 4];
            buf[o++] = hex[ch & 15];
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o] = '\0';
    return 0;
}

/* 0 and the mode when the request may join `room`; else an HTTP status. */
static unsigned check_access(loom_server *s,
                             struct lws *wsi,
                             const char *room,
                             bool *readonly,
                             const char **why,
                             loom_error *err)
{
    *readonly = false;
    if (!s->secret) {
        return 0;
    }
    char buf[LOOM_TOKEN_MAX + 16];
    const char *tok = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf));
    if (!tok) {
        *why = "no token";
        return HTTP_STATUS_UNAUTHORIZED;
    }
    loom_token_mode mode;
    memset(err, 0, sizeof(*err));
    if (loom_token_verify(s->secret, s->secret_len, tok, strlen(tok), room,
                          (int64_t)time(NULL), &mode, err)) {
        *why = err->message;
        return HTTP_STATUS_UNAUTHORIZED;
    }
    *readonly = mode == LOOM_TOKEN_READ;
    return 0;
}

static int confirm_upgrade(loom_server *s, struct lws *wsi, const char *proto)
{
    char room[3 * NET_URI_MAX], peer[64] = "?";
    (void)lws_get_peer_simple(wsi, peer, sizeof(peer));
    if (!proto || strcmp(proto, "websocket") != 0) {
        return -1;
    }
    unsigned status = 0;
    const char *why = "";
    bool ro;
    loom_error err;
    if (s->stopping) {
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
        why = "shutting down";
    } else if (s->n_conns >= s->max_conns) {
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
        why = "too many connections";
    } else if (request_room(wsi, room, sizeof(room))) {
        status = HTTP_STATUS_BAD_REQUEST;
        why = "no path";
    } else {
        status = check_access(s, wsi, room, &ro, &why, &err);
    }
    if (!status) {
        return 0;
    }
    s->m_conns_rejected++;
    loom__net_log(s, LOOM_LOG_WARN, "%s: upgrade refused with %u: %s", peer,
                  status, why);
    if (lws_return_http_status(wsi, status, NULL)) {
        return -1;
    }
    return 1;
}

/* ---- connections ---------------------------------------------------------- */

static void conn_unlink(loom_server *s, net_conn *c)
{
    if (c->all_prev) {
        c->all_prev->all_next = c->all_next;
    } else {
        s->conns = c->all_next;
    }
    if (c->all_next) {
        c->all_next->all_prev = c->all_prev;
    }
    s->n_conns--;
}

static void conn_free(loom_server *s, net_conn *c)
{
    loom__net_room_leave(c);
    net_qnode *q = c->qh;
    while (q) {
        net_qnode *next = q->next;
        loom__net_sbuf_unref(s, q->b);
        loom__free(s->a, q, sizeof(*q));
        q = next;
    }
    loom_buf_free(&c->rx);
    conn_unlink(s, c);
    loom__free(s->a, c, sizeof(*c));
}

static int on_established(loom_server *s, struct lws *wsi, net_pss *pss)
{
    char room[3 * NET_URI_MAX];
    const char *why = "";
    bool ro = false;
    loom_error err;
    /* checked at the upgrade already; the headers are the same */
    if (request_room(wsi, room, sizeof(room)) ||
        check_access(s, wsi, room, &ro, &why, &err)) {
        return -1;
    }
    net_conn *c = loom__calloc(s->a, sizeof(*c));
    if (!c) {
        return -1;
    }
    c->srv = s;
    c->wsi = wsi;
    c->readonly = ro;
    note_peer(c);
    loom__buf_init(&c->rx, s->a);
    c->all_next = s->conns;
    if (s->conns) {
        s->conns->all_prev = c;
    }
    s->conns = c;
    s->n_conns++;
    int rc = loom__net_room_join(s, c, room);
    if (rc) {
        loom__net_log(s, LOOM_LOG_ERROR, "room %s: %s: cannot open room: %s",
                      room, NET_PEER(c), loom_strerror(rc));
        /* whether or not lws reports this wsi closed, it is freed here */
        conn_free(s, c);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                         (unsigned char *)"cannot open room", 16);
        return -1;
    }
    pss->c = c;
    s->m_conns_total++;
    /* the request headers (a few KiB) are not needed any more */
    (void)lws_http_headers_detach(wsi);
    loom__net_log(s, LOOM_LOG_INFO, "room %s: %s: connected%s", room,
                  NET_PEER(c), ro ? " (read-only)" : "");
    return 0;
}

static int close_with(struct lws *wsi, int status, const char *why)
{
    lws_close_reason(wsi, (enum lws_close_status)status, (unsigned char *)why,
                     strlen(why));
    return -1;
}

static int on_receive(
    loom_server *s, struct lws *wsi, net_conn *c, const uint8_t *in, size_t len)
{
    if (!c || c->dead || !c->room) {
        return -1;
    }
    if (!lws_frame_is_binary(wsi)) {
        loom__net_log(s, LOOM_LOG_WARN,
                      "room %s: %s: text frame (only binary frames carry "
                      "messages): closing",
                      c->room->name, NET_PEER(c));
        return close_with(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                          "text frames are not accepted");
    }
    s->m_bytes_in += len;
    if (len > s->max_message || c->rx.len > s->max_message - len) {
        loom__net_log(s, LOOM_LOG_WARN,
                      "room %s: %s: message over %zu bytes: closing",
                      c->room->name, NET_PEER(c), s->max_message);
        return close_with(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                          "message too large");
    }
    bool whole =
        lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    const uint8_t *msg = in;
    size_t n = len;
    if (c->rx.len || !whole) {
        /* a message in several pieces: assemble it */
        if (loom__buf_append(&c->rx, in, len)) {
            return close_with(wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                              "out of memory");
        }
        if (!whole) {
            return 0;
        }
        msg = c->rx.data;
        n = c->rx.len;
    }
    s->m_msgs_in++;
    s->rx_round++;
    const char *why = "";
    int status = loom__net_room_message(c, msg, n, &why);
    loom_buf_free(&c->rx); /* an idle connection keeps no assembly buffer */
    if (status) {
        return close_with(wsi, status, why);
    }
    return c->dead ? -1 : 0;
}

/* Sends queued messages while the socket takes them (a few per callback,
 * so one slow poll cycle does not cost one message), then asks for another
 * callback if some are left. */
static int on_writeable(loom_server *s, struct lws *wsi, net_conn *c)
{
    if (!c || c->dead) {
        return -1;
    }
    for (int burst = 0; c->qh && burst < 32; burst++) {
        net_qnode *q = c->qh;
        c->qh = q->next;
        if (!c->qh) {
            c->qt = NULL;
        }
        net_sbuf *b = q->b;
        c->q_bytes -= b->len;
        loom__free(s->a, q, sizeof(*q));
        size_t len = b->len;
        int n = lws_write(wsi, b->data + LWS_PRE, len, LWS_WRITE_BINARY);
        loom__net_sbuf_unref(s, b);
        if (n < 0 || (size_t)n < len) {
            return -1;
        }
        s->m_msgs_out++;
        s->m_bytes_out += len;
        if (lws_send_pipe_choked(wsi)) {
            break;
        }
    }
    if (c->qh) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (c->closing) {
        return close_with(wsi, LWS_CLOSE_STATUS_GOINGAWAY,
                          "server shutting down");
    }
    return 0;
}

static void begin_stop(loom_server *s)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    s->stop_deadline_ms = loom__net_now_ms() + NET_SHUTDOWN_MS;
    loom__net_log(s, LOOM_LOG_INFO,
                  "stopping: %zu connection(s) to close, %zu room(s)",
                  s->n_conns, s->n_rooms);
    for (net_conn *c = s->conns; c; c = c->all_next) {
        c->closing = true;
        lws_callback_on_writable(c->wsi);
    }
    /* the callbacks still waiting for their debounce go now */
    loom__net_callback_stop(s);
    for (net_room *r = s->rooms; r; r = r->next) {
        loom__net_callback_flush_room(s, r);
    }
}

static void tick(lws_sorted_usec_list_t *sul);

static int callback(struct lws *wsi,
                    enum lws_callback_reasons reason,
                    void *user,
                    void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    loom_server *s = ctx ? lws_context_user(ctx) : NULL;
    net_pss *pss = user;
    if (!s) {
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return s->stopping ? 1 : 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(s, wsi, in);
    case LWS_CALLBACK_HTTP:
        return loom__net_http(s, wsi, pss, in);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return loom__net_http_writeable(s, wsi, pss);
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (pss) {
            loom__net_http_done(s, pss);
        }
        break;
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(s, wsi, pss);
    case LWS_CALLBACK_RECEIVE:
        return on_receive(s, wsi, pss ? pss->c : NULL, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(s, wsi, pss ? pss->c : NULL);
    case LWS_CALLBACK_CLOSED:
        if (pss && pss->c) {
            net_conn *c = pss->c;
            pss->c = NULL;
            loom__net_log(s, LOOM_LOG_INFO, "room %s: %s: disconnected",
                          c->room ? c->room->name : "-", NET_PEER(c));
            conn_free(s, c);
        }
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s->stop_requested && !s->stopping) {
            begin_stop(s);
            /* check progress soon rather than at the next 1 s tick */
            lws_sul_schedule(s->ctx, 0, &s->sul, tick, 10 * LWS_US_PER_MS);
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static void tick(lws_sorted_usec_list_t *sul)
{
    loom_server *s = lws_container_of(sul, loom_server, sul);
    uint64_t now = loom__net_now_ms();
    if (s->stop_requested && !s->stopping) {
        begin_stop(s);
    }
    if (s->stopping) {
        if ((s->n_conns == 0 && !s->cb_reqs) || now >= s->stop_deadline_ms) {
            s->done = true;
            /* timers run before the poll of the same service call: wake
             * that poll, or it waits for an event that never comes */
            lws_cancel_service(s->ctx);
            return;
        }
        lws_sul_schedule(s->ctx, 0, &s->sul, tick, 50 * LWS_US_PER_MS);
        return;
    }
    loom__net_rooms_tick(s, now);
    lws_sul_schedule(s->ctx, 0, &s->sul, tick, 1 * LWS_US_PER_SEC);
}

/* ---- life cycle ------------------------------------------------------------ */

static char *dup_opt(const loom_allocator *a, const char *s)
{
    return s ? loom__strndup(a, s, strlen(s)) : NULL;
}

static void free_opt(const loom_allocator *a, char *s)
{
    if (s) {
        loom__free(a, s, strlen(s) + 1);
    }
}

static int open_store(loom_server *s, loom_error *err)
{
    if (mkdir(s->data_dir, 0777) != 0 && errno != EEXIST) {
        loom__error_set(err, LOOM_EIO, 0, 0,
                        "cannot create the data directory");
        return LOOM_EIO;
    }
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/loom.db", s->data_dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        loom__error_set(err, LOOM_EINVAL, 0, 0, "data directory path too long");
        return LOOM_EINVAL;
    }
    loom_store_options so;
    loom_store_options_init(&so);
    so.alloc = s->a;
    /* Compaction never runs on the event loop (compactor.c). */
    so.compact_max_updates = 0;
    so.compact_max_bytes = 0;
    int rc = loom_store_open(path, &so, &s->store, err);
    if (!rc) {
        rc = loom__net_compactor_start(path, s->compact_rows, &s->compactor,
                                       err);
    }
    if (!rc) {
        rc = loom__net_writer_start(path, &s->writer, err);
    }
    return rc;
}

int loom_server_new(const loom_server_options *opts,
                    loom_server **out,
                    loom_error *err)
{
    loom_server_options def;
    if (!opts) {
        loom_server_options_init(&def);
        opts = &def;
    }
    if (!out || opts->port < 0 || opts->port > 65535 || !opts->max_message ||
        !opts->max_conns || !opts->max_queue ||
        (opts->auth_secret && !opts->auth_secret_len) ||
        !opts->tls_cert_file != !opts->tls_key_file) {
        loom__error_set(err, LOOM_EINVAL, 0, 0, "bad server options");
        return LOOM_EINVAL;
    }
    const loom_allocator *a = opts->alloc;
    loom_server *s = loom__calloc(a, sizeof(*s));
    if (!s) {
        return LOOM_ENOMEM;
    }
    s->a = a;
    s->host = dup_opt(a, opts->host ? opts->host : "127.0.0.1");
    s->data_dir = dup_opt(a, opts->data_dir);
    s->web_dir = dup_opt(a, opts->web_dir);
    if (opts->auth_secret) {
        s->secret = loom__memdup(a, opts->auth_secret, opts->auth_secret_len);
        s->secret_len = opts->auth_secret_len;
    }
    s->max_message = opts->max_message;
    s->max_queue = opts->max_queue;
    s->max_conns = opts->max_conns;
    s->ping_secs = opts->ping_secs;
    s->hangup_secs = opts->hangup_secs;
    s->unload_secs = opts->unload_secs;
    s->compact_rows = opts->compact_rows ? opts->compact_rows : 1000;
    s->awareness_timeout_ms = opts->awareness_timeout_ms;
    s->gc = opts->gc != 0;
    s->log = opts->log;
    s->log_ud = opts->log_ud;
    s->log_level = opts->log_level;
    if (!s->host || (opts->data_dir && !s->data_dir) ||
        (opts->web_dir && !s->web_dir) || (opts->auth_secret && !s->secret)) {
        loom_server_free(s);
        return LOOM_ENOMEM;
    }
    int crc = loom__net_callback_init(s, opts, err);
    if (crc) {
        loom_server_free(s);
        return crc;
    }
    if (s->data_dir) {
        int rc = open_store(s, err);
        if (rc) {
            loom_server_free(s);
            return rc;
        }
    }

    /* libwebsockets logs to stderr by default; a library must not print */
    lws_set_log_level(0, NULL);
    s->protocols[0].name = "loom";
    s->protocols[0].callback = callback;
    s->protocols[0].per_session_data_size = sizeof(net_pss);
    /* libwebsockets keeps a receive buffer of this size for the whole life
     * of every connection: small, so that idle connections cost little
     * (about 1.6 KiB each, most of it libwebsockets' own). Longer messages
     * arrive in pieces and are assembled in c->rx, which lives only until
     * the message is handled. */
    s->protocols[0].rx_buffer_size = 64;
    /* Without this, libwebsockets sends at most rx_buffer_size + 20 bytes
     * per send() and copies the rest of the frame aside for later polls:
     * a 1 KiB relay went out in 84-byte pieces over a dozen poll cycles.
     * Nothing is allocated per connection for it. */
    s->protocols[0].tx_packet_size = NET_TX_PACKET;
    /* the HTTP callback's POSTs (callback.c), client connections whose
     * user data is their request */
    s->protocols[1].name = "loom-callback";
    s->protocols[1].callback = loom__net_callback_protocol;
    s->retry.secs_since_valid_ping = (uint16_t)s->ping_secs;
    s->retry.secs_since_valid_hangup = (uint16_t)s->hangup_secs;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = opts->port;
    info.iface = s->host;
    info.protocols = s->protocols;
    info.user = s;
    info.fd_limit_per_thread = s->max_conns + 256;
    info.count_threads = 1;
    if (s->ping_secs) {
        info.retry_and_idle_policy = &s->retry;
    }
    info.timeout_secs = 30;
    const char *unreadable =
        !opts->tls_cert_file                     ? NULL
        : access(opts->tls_cert_file, R_OK) != 0 ? "cannot read the TLS "
                                                   "certificate file"
        : access(opts->tls_key_file, R_OK) != 0 ? "cannot read the TLS key file"
                                                : NULL;
    if (unreadable) {
        loom__error_set(err, LOOM_EIO, 0, 0, unreadable);
        loom_server_free(s);
        return LOOM_EIO;
    }
    if (opts->tls_cert_file) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = opts->tls_cert_file;
        info.ssl_private_key_filepath = opts->tls_key_file;
    }
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        loom__error_set(err, LOOM_EIO, 0, 0,
                        opts->tls_cert_file
                            ? "cannot listen on that address and port, or "
                              "the TLS certificate and key are not usable"
                            : "cannot listen on that address and port");
        loom_server_free(s);
        return LOOM_EIO;
    }
    s->vh = lws_get_vhost_by_name(s->ctx, "default");
    s->port = s->vh ? lws_get_vhost_listen_port(s->vh) : opts->port;
    if (s->port <= 0) {
        loom__error_set(err, LOOM_EIO, 0, 0,
                        "cannot listen on that address and port");
        loom_server_free(s);
        return LOOM_EIO;
    }
    *out = s;
    return LOOM_OK;
}

int loom_server_port(const loom_server *s)
{
    return s ? s->port : -1;
}

int loom_server_run(loom_server *s)
{
    if (!s || !s->ctx) {
        return LOOM_EINVAL;
    }
    loom__net_log(s, LOOM_LOG_INFO, "listening on %s:%d%s%s", s->host, s->port,
                  s->store ? ", data in " : " (in memory)",
                  s->store ? s->data_dir : "");
    s->last_expire_ms = loom__net_now_ms();
    lws_sul_schedule(s->ctx, 0, &s->sul, tick, 1 * LWS_US_PER_SEC);
    while (!s->done) {
        if (lws_service(s->ctx, 0) < 0) {
            break;
        }
        /* libwebsockets reads at most a receive buffer (64 bytes: about
         * one small message) per socket per poll, so one poll leaves most
         * of a busy socket's messages in the kernel. Polling again without
         * waiting while the last round brought messages gathers them into
         * this turn's batch: one store commit and one relayed message per
         * connection then carry many updates instead of one or two. */
        for (unsigned round = 0; s->rx_round && round < NET_DRAIN_ROUNDS &&
                                 !s->done && s->pend_bytes < NET_DRAIN_BYTES;
             round++) {
            s->rx_round = 0;
            if (lws_service(s->ctx, -1) < 0) {
                break;
            }
        }
        s->rx_round = 0;
        /* the batch the writer finished is applied and relayed (its
         * writes go out in the next poll), and the updates waiting since
         * go to the writer as the next one (room.c) */
        loom__net_flush(s);
    }
    lws_sul_cancel(&s->sul);
    /* updates accepted in the last turns: durable before we go */
    loom__net_flush_all(s);
    loom__net_callback_stop(s);
    s->destroying = true;
    /* the connections left (none, unless the deadline passed) and the
     * context go together; closing them calls back into conn_free */
    lws_context_destroy(s->ctx);
    s->ctx = NULL;
    loom__net_log(s, LOOM_LOG_INFO, "stopped");
    return LOOM_OK;
}

void loom_server_stop(loom_server *s)
{
    if (s) {
        s->stop_requested = 1;
        if (s->ctx) {
            lws_cancel_service(s->ctx);
        }
    }
}

void loom_server_free(loom_server *s)
{
    if (!s) {
        return;
    }
    s->destroying = true;
    /* a batch under way finishes before the context it wakes goes */
    loom__net_writer_stop(s->writer);
    s->writer = NULL;
    if (s->ctx) {
        lws_context_destroy(s->ctx);
        s->ctx = NULL;
    }
    while (s->conns) {
        conn_free(s, s->conns);
    }
    loom__net_pending_free(s);
    loom__net_rooms_free(s);
    loom__net_callback_free(s);
    loom__net_compactor_stop(s->compactor);
    loom_store_close(s->store);
    free_opt(s->a, s->host);
    free_opt(s->a, s->data_dir);
    free_opt(s->a, s->web_dir);
    if (s->secret) {
        loom__free(s->a, s->secret, s->secret_len);
    }
    loom__free(s->a, s, sizeof(*s));
}
