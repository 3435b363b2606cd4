/* SPDX-License-Identifier: MIT */
/*
 * src/net/callback.c: the reference server's HTTP callback. With a
 * callback URL, a room that changed is POSTed, as JSON, to that URL:
 *
 *   {"room": NAME, "data": {OBJ: {"type": TYPE, "content": toJSON()}, ...}}
 *
 * for every root OBJ of the configured objects ({"OBJ": "TYPE"}, TYPE one
 * of Array, Map, Text, XmlFragment, XmlElement), as @y/websocket-server
 * does with CALLBACK_URL, CALLBACK_OBJECTS, CALLBACK_DEBOUNCE_WAIT,
 * CALLBACK_DEBOUNCE_MAXWAIT and CALLBACK_TIMEOUT (the CLI reads the same
 * variables). A changed room is sent `debounce` ms after its last change,
 * and at most `max_wait` ms after the first one not yet sent, so a room
 * edited without pause is still sent that often. The reference debounces
 * every room with one timer, so a change in one room postpones (or drops)
 * the callback of another; here each room has its own.
 *
 * The POST is a libwebsockets client connection of the server's own loop
 * (protocol "loom-callback"): nothing blocks (a host name in the URL is
 * resolved once, at start), and a slow or dead receiver costs one
 * connection until the timeout. Only http:// URLs, as the
 * reference. A failure is logged and counted, not retried: the next
 * change sends the room again.
 */
#include <string.h>

#include "net.h"

/* A POST on its way. */
typedef struct net_cb_req {
    struct net_cb_req *prev, *next; /* in the server's list */
    loom_server *srv;
    char *room; /* for log lines */
    unsigned status;
    size_t len;
    uint8_t *body; /* LWS_PRE + len bytes */
} net_cb_req;

static void req_free(loom_server *s, net_cb_req *q)
{
    if (q->prev) {
        q->prev->next = q->next;
    } else {
        s->cb_reqs = q->next;
    }
    if (q->next) {
        q->next->prev = q->prev;
    }
    loom__free(s->a, q->room, strlen(q->room) + 1);
    loom__free(s->a, q->body, LWS_PRE + q->len);
    loom__free(s->a, q, sizeof(*q));
}

/* ---- configuration ------------------------------------------------------- */

static int bad(loom_error *err, const char *why)
{
    loom__error_set(err, LOOM_EINVAL, 0, 0, why);
    return LOOM_EINVAL;
}

/* http://HOST[:PORT][/PATH] into the address to dial (a name is resolved
 * now), the Host header, the port and the path ("/" when none). */
static int parse_url(loom_server *s, const char *url, loom_error *err)
{
    if (strncmp(url, "http://", 7) != 0) {
        return bad(err, "the callback URL must start with http://");
    }
    const char *h = url + 7;
    size_t hl = strcspn(h, ":/?#");
    if (hl == 0 || hl > 255) {
        return bad(err, "the callback URL names no host");
    }
    const char *p = h + hl;
    long port = 80;
    if (*p == ':') {
        port = 0;
        const char *d = ++p;
        while (*p >= '0' && *p <= '9' && port <= 65535) {
            port = port * 10 + (*p++ - '0');
        }
        if (p == d || port < 1 || port > 65535) {
            return bad(err, "bad port in the callback URL");
        }
    }
    if (*p != '\0' && *p != '/' && *p != '?') {
        return bad(err, "bad callback URL");
    }
    size_t pl = strcspn(p, "#");
    char hdr[300];
    (void)snprintf(hdr, sizeof(hdr), "%.*s:%ld", (int)hl, h, port);
    s->cb_host = loom__strndup(s->a, h, hl);
    if (s->cb_host && !loom__net_is_numeric_host(s->cb_host)) {
        /* resolved once, here: libwebsockets would resolve the name on
         * the event loop, for every POST */
        char addrs[NET_RESOLVE_MAX];
        bool ok = false;
        loom__net_lookup(s->cb_host, &ok, addrs, sizeof(addrs));
        if (!ok) {
            return bad(err, "the callback URL's host does not resolve");
        }
        loom__free(s->a, s->cb_host, hl + 1);
        s->cb_host = loom__strndup(s->a, addrs, strlen(addrs)); /* first */
    }
    s->cb_hosthdr = loom__strndup(s->a, hdr, strlen(hdr));
    s->cb_path = pl && *p == '/' ? loom__strndup(s->a, p, pl)
                                 : loom__strndup(s->a, "/", 1);
    s->cb_port = (int)port;
    if (!s->cb_host || !s->cb_hosthdr || !s->cb_path) {
        return LOOM_ENOMEM;
    }
    return LOOM_OK;
}

static loom_type_kind kind_named(const char *name, size_t len)
{
    static const struct {
        const char *name;
        loom_type_kind kind;
    } kinds[] = {
        {"Array", LOOM_TYPE_ARRAY},
        {"Map", LOOM_TYPE_MAP},
        {"Text", LOOM_TYPE_TEXT},
        {"XmlFragment", LOOM_TYPE_XML_FRAGMENT},
        {"XmlElement", LOOM_TYPE_XML_ELEMENT},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strlen(kinds[i].name) == len &&
            memcmp(kinds[i].name, name, len) == 0) {
            return kinds[i].kind;
        }
    }
    return LOOM_TYPE_UNDEFINED;
}

int loom__net_callback_init(loom_server *s,
                            const loom_server_options *o,
                            loom_error *err)
{
    if (!o->callback_url) {
        return LOOM_OK;
    }
    int rc = parse_url(s, o->callback_url, err);
    if (rc) {
        return rc;
    }
    const char *objs = o->callback_objects ? o->callback_objects : "{}";
    rc = loom_any_from_json(s->a, objs, strlen(objs), &s->cb_objects, err);
    if (rc) {
        return bad(err, "the callback objects are not JSON");
    }
    if (loom_any_kind_of(s->cb_objects) != LOOM_ANY_OBJECT) {
        return bad(err, "the callback objects must be a JSON object "
                        "{\"name\": \"Type\"}");
    }
    for (size_t i = 0; i < loom_any_count(s->cb_objects); i++) {
        const loom_any *v = loom_any_object_value(s->cb_objects, i);
        size_t len = 0;
        const char *t = loom_any_kind_of(v) == LOOM_ANY_STRING
                            ? loom_any_string(v, &len)
                            : NULL;
        if (!t || kind_named(t, len) == LOOM_TYPE_UNDEFINED) {
            return bad(err, "a callback object's type must be Array, Map, "
                            "Text, XmlFragment or XmlElement");
        }
    }
    s->cb_debounce_ms = o->callback_debounce_ms;
    s->cb_max_wait_ms = o->callback_max_wait_ms;
    s->cb_timeout_ms = o->callback_timeout_ms ? o->callback_timeout_ms : 5000;
    return LOOM_OK;
}

void loom__net_callback_free(loom_server *s)
{
    while (s->cb_reqs) {
        req_free(s, s->cb_reqs);
    }
    loom_any_free(s->cb_objects);
    s->cb_objects = NULL;
    char **strs[] = {&s->cb_host, &s->cb_hosthdr, &s->cb_path};
    for (size_t i = 0; i < 3; i++) {
        if (*strs[i]) {
            loom__free(s->a, *strs[i], strlen(*strs[i]) + 1);
            *strs[i] = NULL;
        }
    }
}

/* ---- the body -------------------------------------------------------------- */

static int set_string(const loom_allocator *a,
                      loom_any *obj,
                      const char *key,
                      const char *v,
                      size_t n)
{
    loom_any *x = NULL;
    int rc = loom_any_new_string(a, v, n, &x);
    if (!rc) {
        rc = loom_any_object_set(obj, key, strlen(key), x);
        if (rc) {
            loom_any_free(x);
        }
    }
    return rc;
}

/* The room's JSON, as the reference builds it. */
static int build_body(loom_server *s, net_room *r, loom_buf *out)
{
    loom_any *root = NULL, *data = NULL;
    int rc = loom_any_new_object(s->a, &root);
    if (!rc) {
        rc = set_string(s->a, root, "room", r->name, r->name_len);
    }
    if (!rc) {
        rc = loom_any_new_object(s->a, &data);
    }
    for (size_t i = 0; !rc && i < loom_any_count(s->cb_objects); i++) {
        size_t klen = 0, tlen = 0;
        const char *key = loom_any_object_key(s->cb_objects, i, &klen);
        const loom_any *tv = loom_any_object_value(s->cb_objects, i);
        const char *tname = loom_any_string(tv, &tlen);
        loom_any *entry = NULL, *content = NULL;
        loom_type *t = NULL;
        rc = loom_any_new_object(s->a, &entry);
        if (!rc) {
            rc = set_string(s->a, entry, "type", tname, tlen);
        }
        if (!rc) {
            /* a root of another kind has no content of this kind: null */
            int grc =
                loom_doc_get(r->doc, key, klen, kind_named(tname, tlen), &t);
            rc = grc == LOOM_OK      ? loom_type_to_any(t, &content)
                 : grc == LOOM_ETYPE ? loom_any_new_null(s->a, &content)
                                     : grc;
        }
        if (!rc) {
            rc = loom_any_object_set(entry, "content", 7, content);
            if (rc) {
                loom_any_free(content);
            }
        }
        if (!rc) {
            rc = loom_any_object_set(data, key, klen, entry);
        }
        if (rc) {
            loom_any_free(entry);
        }
    }
    if (!rc) {
        rc = loom_any_object_set(root, "data", 4, data);
        if (!rc) {
            data = NULL;
        }
    }
    if (!rc) {
        rc = loom_any_to_json(root, out);
    }
    loom_any_free(data);
    loom_any_free(root);
    return rc;
}

/* ---- sending -------------------------------------------------------------- */

/* A request for `body`, in the server's list; NULL without memory. */
static net_cb_req *
new_req(loom_server *s, const net_room *r, const loom_buf *body)
{
    net_cb_req *q = loom__calloc(s->a, sizeof(*q));
    char *room = loom__strndup(s->a, r->name, r->name_len);
    uint8_t *bytes = loom__malloc(s->a, LWS_PRE + body->len);
    if (!q || !room || !bytes) {
        loom__free(s->a, q, sizeof(*q));
        if (room) {
            loom__free(s->a, room, r->name_len + 1);
        }
        loom__free(s->a, bytes, LWS_PRE + body->len);
        return NULL;
    }
    q->srv = s;
    q->room = room;
    q->len = body->len;
    q->body = bytes;
    memcpy(bytes + LWS_PRE, body->data, body->len);
    q->next = s->cb_reqs;
    if (s->cb_reqs) {
        s->cb_reqs->prev = q;
    }
    s->cb_reqs = q;
    return q;
}

static void send_room(loom_server *s, net_room *r)
{
    loom_buf body;
    loom__buf_init(&body, s->a);
    int rc = build_body(s, r, &body);
    net_cb_req *q = rc ? NULL : new_req(s, r, &body);
    loom_buf_free(&body);
    if (!q) {
        s->m_callback_errors++;
        loom__net_log(s, LOOM_LOG_ERROR, "room %s: callback not sent (%s)",
                      r->name, loom_strerror(rc ? rc : LOOM_ENOMEM));
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = s->ctx;
    ci.vhost = s->vh;
    ci.address = s->cb_host;
    ci.port = s->cb_port;
    ci.path = s->cb_path;
    ci.host = s->cb_hosthdr;
    ci.method = "POST";
    ci.local_protocol_name = "loom-callback";
    ci.userdata = q;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    if (!wsi) {
        /* lws may have reported (and freed) it already */
        for (net_cb_req *x = s->cb_reqs; x; x = x->next) {
            if (x == q) {
                s->m_callback_errors++;
                loom__net_log(s, LOOM_LOG_WARN,
                              "room %s: callback to %s failed: cannot connect",
                              q->room, s->cb_hosthdr);
                req_free(s, q);
                break;
            }
        }
        return;
    }
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK,
                    (int)((s->cb_timeout_ms + 999) / 1000));
}

static void schedule(loom_server *s);

static void fire(lws_sorted_usec_list_t *sul)
{
    loom_server *s = lws_container_of(sul, loom_server, cb_sul);
    s->cb_sul_at = 0;
    uint64_t now = loom__net_now_ms();
    for (net_room *r = s->rooms; r; r = r->next) {
        if (r->cb_due_ms && r->cb_due_ms <= now) {
            r->cb_due_ms = r->cb_first_ms = 0;
            send_room(s, r);
        }
    }
    schedule(s);
}

/* The timer at the earliest due room, if any. */
static void schedule(loom_server *s)
{
    uint64_t next = 0;
    for (net_room *r = s->rooms; r; r = r->next) {
        if (r->cb_due_ms && (!next || r->cb_due_ms < next)) {
            next = r->cb_due_ms;
        }
    }
    if (!next || s->destroying || !s->ctx) {
        return;
    }
    uint64_t now = loom__net_now_ms();
    s->cb_sul_at = next;
    lws_sul_schedule(s->ctx, 0, &s->cb_sul, fire,
                     (lws_usec_t)(next > now ? next - now : 0) * LWS_US_PER_MS);
}

void loom__net_callback_note(loom_server *s, net_room *r)
{
    if (!s->cb_host) {
        return;
    }
    uint64_t now = loom__net_now_ms();
    if (!r->cb_first_ms) {
        r->cb_first_ms = now;
    }
    uint64_t due = now + s->cb_debounce_ms;
    if (s->cb_max_wait_ms && due > r->cb_first_ms + s->cb_max_wait_ms) {
        due = r->cb_first_ms + s->cb_max_wait_ms;
    }
    r->cb_due_ms = due ? due : 1;
    if (!s->cb_sul_at || r->cb_due_ms < s->cb_sul_at) {
        schedule(s);
    }
}

void loom__net_callback_flush_room(loom_server *s, net_room *r)
{
    if (s->cb_host && r->cb_due_ms) {
        r->cb_due_ms = r->cb_first_ms = 0;
        send_room(s, r);
    }
}

void loom__net_callback_stop(loom_server *s)
{
    if (s->ctx) {
        lws_sul_cancel(&s->cb_sul);
    }
    s->cb_sul_at = 0;
}

/* ---- the client connection -------------------------------------------------- */

int loom__net_callback_protocol(struct lws *wsi,
                                enum lws_callback_reasons reason,
                                void *user,
                                void *in,
                                size_t len)
{
    net_cb_req *q = user;
    loom_server *s = q ? q->srv : NULL;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        if (!q) {
            return -1;
        }
        unsigned char **p = (unsigned char **)in, *end = (*p) + len;
        if (lws_add_http_header_by_token(
                wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                (const unsigned char *)"application/json", 16, p, end) ||
            lws_add_http_header_content_length(wsi, q->len, p, end)) {
            return -1;
        }
        lws_client_http_body_pending(wsi, 1);
        lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
        if (!q) {
            return -1;
        }
        lws_client_http_body_pending(wsi, 0);
        if (lws_write(wsi, q->body + LWS_PRE, q->len, LWS_WRITE_HTTP_FINAL) !=
            (int)q->len) {
            return -1;
        }
        break;
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        if (q) {
            q->status = lws_http_client_http_response(wsi);
        }
        break;
    case LWS_CALLBACK_RECEIVE_CLIENT_HTTP: {
        /* the answer's body is read and dropped */
        char buf[LWS_PRE + 1024];
        char *px = buf + LWS_PRE;
        int n = (int)sizeof(buf) - LWS_PRE;
        if (lws_http_client_read(wsi, &px, &n) < 0) {
            return -1;
        }
        return 0;
    }
    case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
        if (q && s) {
            bool ok = q->status >= 200 && q->status < 300;
            if (ok) {
                s->m_callbacks++;
            } else {
                s->m_callback_errors++;
            }
            loom__net_log(s, ok ? LOOM_LOG_DEBUG : LOOM_LOG_WARN,
                          "room %s: callback to %s: HTTP %u", q->room,
                          s->cb_hosthdr, q->status);
            /* done: freed now, as lws may keep the connection a while */
            req_free(s, q);
            lws_set_wsi_user(wsi, NULL);
        }
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (q && s) {
            s->m_callback_errors++;
            loom__net_log(
                s, LOOM_LOG_WARN, "room %s: callback to %s failed: %s", q->room,
                s->cb_hosthdr, in ? (const char *)in : "connection error");
        }
        if (q && s) {
            /* lws does not always destroy a failed client through this
             * protocol: the request ends here */
            req_free(s, q);
            lws_set_wsi_user(wsi, NULL);
        }
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (q && s) {
            if (!s->destroying) {
                /* closed without an answer: the timeout, or the peer */
                s->m_callback_errors++;
                loom__net_log(s, LOOM_LOG_WARN,
                              "room %s: callback to %s failed: no answer",
                              q->room, s->cb_hosthdr);
            }
            req_free(s, q);
            lws_set_wsi_user(wsi, NULL);
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
