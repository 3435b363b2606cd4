/*
 * http.c: the plain HTTP side of the server: GET /healthz ("ok"), GET
 * /metrics (Prometheus text format, version 0.0.4) and, with a web
 * directory, static files for every other GET path. Static files: "/" and
 * paths ending in '/' mean index.html; a path with a ".." segment is
 * refused (libwebsockets also collapses them before we see the path);
 * symbolic links inside the directory are followed wherever they point,
 * because a page may link to node_modules elsewhere on the machine.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "net.h"

static const char *content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".cjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".wasm", "application/wasm"},
    };
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t e = strlen(types[i].ext);
        if (n >= e && strcmp(path + n - e, types[i].ext) == 0) {
            return types[i].type;
        }
    }
    return "application/octet-stream";
}

int loom__net_http_reply(loom_server *s,
                         struct lws *wsi,
                         net_pss *pss,
                         unsigned status,
                         const char *type,
                         const uint8_t *body,
                         size_t len)
{
    uint8_t hdr[LWS_PRE + 1024];
    uint8_t *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, status, type, len, &p, end) ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                     (const unsigned char *)"no-store", 8, &p,
                                     end) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        return -1;
    }
    loom__net_http_done(s, pss);
    pss->body = loom__malloc(s->a, LWS_PRE + len + 1);
    if (!pss->body) {
        return -1;
    }
    if (len) {
        memcpy(pss->body + LWS_PRE, body, len);
    }
    pss->body_len = len;
    lws_callback_on_writable(wsi);
    return 0;
}

int loom__net_http_writeable(loom_server *s, struct lws *wsi, net_pss *pss)
{
    if (!pss || !pss->body) {
        return 0;
    }
    size_t len = pss->body_len;
    int n = lws_write(wsi, pss->body + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
    loom__net_http_done(s, pss);
    if (n < 0 || (size_t)n < len) {
        return -1;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void loom__net_http_done(loom_server *s, net_pss *pss)
{
    if (pss->body) {
        loom__free(s->a, pss->body, LWS_PRE + pss->body_len + 1);
        pss->body = NULL;
        pss->body_len = 0;
    }
}

static int text_reply(loom_server *s,
                      struct lws *wsi,
                      net_pss *pss,
                      unsigned status,
                      const char *text)
{
    return loom__net_http_reply(s, wsi, pss, status,
                                "text/plain; charset=utf-8",
                                (const uint8_t *)text, strlen(text));
}

static void appendf(loom_buf *b, bool *oom, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void appendf(loom_buf *b, bool *oom, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    /* ap is started just above; clang-tidy 14 reports it uninitialised */
    int n = vsnprintf( // NOLINT(clang-analyzer-valist.Uninitialized)
        line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) ||
        loom__buf_append(b, line, (size_t)n)) {
        *oom = true;
    }
}

static void metric(loom_buf *b,
                   bool *oom,
                   const char *name,
                   const char *type,
                   const char *help,
                   unsigned long long v)
{
    appendf(b, oom, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name,
            type, name, v);
}

static int metrics(loom_server *s, struct lws *wsi, net_pss *pss)
{
    loom_buf b = {0};
    loom__buf_init(&b, s->a);
    bool oom = false;
    metric(&b, &oom, "loom_connections", "gauge", "Open WebSocket connections.",
           s->n_conns);
    metric(&b, &oom, "loom_rooms", "gauge", "Rooms loaded in memory.",
           s->n_rooms);
    metric(&b, &oom, "loom_connections_total", "counter",
           "WebSocket connections accepted.", s->m_conns_total);
    metric(&b, &oom, "loom_connections_rejected_total", "counter",
           "Upgrades refused (auth, limits, shutdown).", s->m_conns_rejected);
    metric(&b, &oom, "loom_connections_dropped_total", "counter",
           "Connections closed by the server for a full send queue.",
           s->m_conns_dropped);
    metric(&b, &oom, "loom_messages_received_total", "counter",
           "WebSocket messages received.", s->m_msgs_in);
    metric(&b, &oom, "loom_messages_sent_total", "counter",
           "WebSocket messages sent.", s->m_msgs_out);
    metric(&b, &oom, "loom_bytes_received_total", "counter",
           "Payload bytes received.", s->m_bytes_in);
    metric(&b, &oom, "loom_bytes_sent_total", "counter", "Payload bytes sent.",
           s->m_bytes_out);
    metric(&b, &oom, "loom_updates_applied_total", "counter",
           "Document updates accepted and applied.", s->m_updates_applied);
    metric(&b, &oom, "loom_updates_refused_total", "counter",
           "Updates refused from read-only connections.", s->m_updates_refused);
    metric(&b, &oom, "loom_awareness_updates_total", "counter",
           "Awareness updates applied.", s->m_awareness_applied);
    metric(&b, &oom, "loom_rooms_loaded_total", "counter",
           "Rooms loaded (from the store or new).", s->m_rooms_loaded);
    metric(&b, &oom, "loom_rooms_unloaded_total", "counter",
           "Idle rooms unloaded from memory.", s->m_rooms_unloaded);
    metric(&b, &oom, "loom_store_updates_total", "counter",
           "Updates appended to the store.", s->m_store_updates);
    metric(&b, &oom, "loom_store_errors_total", "counter",
           "Store appends (group commits) that failed.", s->m_store_errors);
    metric(&b, &oom, "loom_callbacks_total", "counter",
           "HTTP callbacks answered with 2xx.", s->m_callbacks);
    metric(&b, &oom, "loom_callback_errors_total", "counter",
           "HTTP callbacks that failed (no connection, no answer, not 2xx).",
           s->m_callback_errors);
    uint64_t compactions = 0;
    uint64_t compaction_failures = 0;
    loom__net_compactor_counts(s->compactor, &compactions,
                               &compaction_failures);
    metric(&b, &oom, "loom_store_compactions_total", "counter",
           "Room logs compacted (off the event loop).", compactions);
    metric(&b, &oom, "loom_store_compaction_errors_total", "counter",
           "Compactions that failed (tried again after later appends).",
           compaction_failures);
    static const char *const le[NET_HIST_BUCKETS] = {
        "0.0005", "0.001", "0.0025", "0.005", "0.01",
        "0.025",  "0.05",  "0.1",    "0.25",  "1"};
    appendf(&b, &oom,
            "# HELP loom_store_append_seconds Time of one durable append (a "
            "group commit of one room's waiting updates).\n# TYPE "
            "loom_store_append_seconds "
            "histogram\n");
    unsigned long long cum = 0;
    for (size_t i = 0; i < NET_HIST_BUCKETS; i++) {
        cum += s->m_store_hist[i];
        appendf(&b, &oom, "loom_store_append_seconds_bucket{le=\"%s\"} %llu\n",
                le[i], cum);
    }
    appendf(&b, &oom,
            "loom_store_append_seconds_bucket{le=\"+Inf\"} %llu\n"
            "loom_store_append_seconds_sum %.6f\n"
            "loom_store_append_seconds_count %llu\n",
            (unsigned long long)s->m_store_appends, s->m_store_seconds,
            (unsigned long long)s->m_store_appends);
    int rc =
        oom ? -1
            : loom__net_http_reply(s, wsi, pss, HTTP_STATUS_OK,
                                   "text/plain; version=0.0.4", b.data, b.len);
    loom_buf_free(&b);
    return rc;
}

static bool has_dotdot(const char *p)
{
    for (const char *q = p; (q = strstr(q, "..")) != NULL; q += 2) {
        bool start = q == p || q[-1] == '/';
        bool stop = q[2] == '\0' || q[2] == '/';
        if (start && stop) {
            return true;
        }
    }
    return false;
}

static int
static_file(loom_server *s, struct lws *wsi, net_pss *pss, const char *uri)
{
    char path[4096];
    size_t ul = strlen(uri);
    const char *index = ul == 0 || uri[ul - 1] == '/' ? "index.html" : "";
    if (uri[0] != '/' || has_dotdot(uri) || strchr(uri, '\\')) {
        return text_reply(s, wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n");
    }
    int n = snprintf(path, sizeof(path), "%s%s%s", s->web_dir, uri, index);
    struct stat st;
    if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) != 0 ||
        !S_ISREG(st.st_mode)) {
        return text_reply(s, wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n");
    }
    n = lws_serve_http_file(wsi, path, content_type(path), NULL, 0);
    if (n < 0 || (n > 0 && lws_http_transaction_completed(wsi))) {
        return -1;
    }
    return 0;
}

int loom__net_http(loom_server *s,
                   struct lws *wsi,
                   net_pss *pss,
                   const char *uri)
{
    if (!pss) {
        return -1;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
        return text_reply(s, wsi, pss, HTTP_STATUS_METHOD_NOT_ALLOWED,
                          "only GET\n");
    }
    if (!uri) {
        uri = "/";
    }
    if (strcmp(uri, "/healthz") == 0) {
        return text_reply(s, wsi, pss, HTTP_STATUS_OK, "ok\n");
    }
    if (strcmp(uri, "/metrics") == 0) {
        return metrics(s, wsi, pss);
    }
    if (s->web_dir) {
        return static_file(s, wsi, pss, uri);
    }
    return text_reply(s, wsi, pss, HTTP_STATUS_NOT_FOUND, "not found\n");
}
