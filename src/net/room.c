/*
 * room.c: rooms of the server and the y-websocket protocol spoken in them.
 * A room is one document and one awareness, named by the URL path; it is
 * loaded from the store when its first connection arrives and unloaded
 * when it has been empty for a while (only with a store: without one the
 * memory is the only copy). This file decides what every message does:
 *
 *  - sync step 1: reply with step 2;
 *  - sync step 2 / update: validated at once (a bad one closes its
 *    connection), then kept until the current turn of the event loop has
 *    served every socket. Right after it (loom_server_run calls
 *    loom__net_flush) the updates of every room form a batch, which the
 *    writer thread appends to the store in one durable transaction
 *    (writer.c; one fsync for the whole burst) while the loop goes on
 *    serving. Once it is on disk (nobody sees an update before), each
 *    room's part is applied in one document transaction, and the one
 *    update that transaction emits is relayed to every connection of the
 *    room, senders included (Yjs ignores what it already has, and the
 *    reference server echoes too). Under load this is one message per
 *    connection per batch instead of one per update;
 *  - awareness: apply, remember which clients the connection speaks for,
 *    relay the accepted entries to everyone (the sender too, as the
 *    reference server does; a lone client's only traffic is that echo);
 *  - query awareness: answer with every known state;
 *  - auth: ignored (only servers send it).
 * A malformed message closes its connection and changes nothing.
 */
#include <string.h>
#include <time.h>

#include "loom/update.h"
#include "net.h"

/* Bytes of updates waiting for a group commit before one is forced. */
#define NET_PENDING_MAX (64u << 20)

static void forget_sender(net_conn *c);

/* ---- send buffers and queues ------------------------------------------ */

net_sbuf *loom__net_sbuf(loom_server *s, const uint8_t *p, size_t n)
{
    net_sbuf *b = loom__malloc(s->a, sizeof(*b) + LWS_PRE + n);
    if (!b) {
        return NULL;
    }
    b->refs = 1;
    b->len = n;
    memcpy(b->data + LWS_PRE, p, n);
    return b;
}

void loom__net_sbuf_unref(loom_server *s, net_sbuf *b)
{
    if (b && --b->refs == 0) {
        loom__free(s->a, b, sizeof(*b) + LWS_PRE + b->len);
    }
}

static void free_queue(net_conn *c)
{
    net_qnode *q = c->qh;
    while (q) {
        net_qnode *next = q->next;
        loom__net_sbuf_unref(c->srv, q->b);
        loom__free(c->srv->a, q, sizeof(*q));
        q = next;
    }
    c->qh = c->qt = NULL;
    c->q_bytes = 0;
}

void loom__net_drop(net_conn *c, enum lws_close_status status, const char *why)
{
    if (c->dead) {
        return;
    }
    c->dead = true;
    free_queue(c);
    c->srv->m_conns_dropped++;
    lws_close_reason(c->wsi, status, (unsigned char *)why, strlen(why));
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

bool loom__net_send(net_conn *c, net_sbuf *b)
{
    loom_server *s = c->srv;
    if (c->dead || s->destroying) {
        return false;
    }
    /* An empty queue takes any message (a large first sync step 2 must get
     * through); otherwise the bound holds. */
    if (c->q_bytes && c->q_bytes + b->len > s->max_queue) {
        loom__net_log(s, LOOM_LOG_WARN,
                      "room %s: %s: send queue over %zu bytes (a client that "
                      "does not read): closing",
                      c->room ? c->room->name : "-", NET_PEER(c), s->max_queue);
        loom__net_drop(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue full");
        return false;
    }
    net_qnode *q = loom__malloc(s->a, sizeof(*q));
    if (!q) {
        loom__net_drop(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                       "out of memory");
        return false;
    }
    q->next = NULL;
    q->b = b;
    b->refs++;
    if (c->qt) {
        c->qt->next = q;
    } else {
        c->qh = q;
    }
    c->qt = q;
    c->q_bytes += b->len;
    lws_callback_on_writable(c->wsi);
    return true;
}

static void send_bytes(net_conn *c, const uint8_t *p, size_t n)
{
    net_sbuf *b = loom__net_sbuf(c->srv, p, n);
    if (!b) {
        loom__net_drop(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                       "out of memory");
        return;
    }
    (void)loom__net_send(c, b);
    loom__net_sbuf_unref(c->srv, b);
}

/* Sends to every live connection of the room but `skip`. */
static void broadcast(net_room *r, const loom_buf *msg, net_conn *skip)
{
    net_sbuf *b = loom__net_sbuf(r->srv, msg->data, msg->len);
    if (!b) {
        loom__net_log(r->srv, LOOM_LOG_ERROR, "room %s: out of memory",
                      r->name);
        return;
    }
    for (net_conn *c = r->conns; c; c = c->next) {
        if (c != skip) {
            (void)loom__net_send(c, b);
        }
    }
    loom__net_sbuf_unref(r->srv, b);
}

/* ---- rooms ---------------------------------------------------------------- */

static size_t bucket_of(const char *name, size_t len)
{
    return (size_t)(loom__hash_bytes(name, len) % NET_ROOM_BUCKETS);
}

static void on_doc_update(void *ud,
                          loom_doc *doc,
                          const uint8_t *update,
                          size_t len,
                          const loom_txn *txn)
{
    (void)doc;
    (void)txn;
    net_room *r = ud;
    loom_buf msg = {0};
    loom__buf_init(&msg, r->srv->a);
    if (loom_msg_write_sync(&msg, LOOM_SYNC_UPDATE, update, len)) {
        loom__net_log(r->srv, LOOM_LOG_ERROR, "room %s: out of memory",
                      r->name);
        return;
    }
    broadcast(r, &msg, NULL);
    loom_buf_free(&msg);
}

static void room_free(loom_server *s, net_room *r)
{
    loom_awareness_free(r->aw);
    loom_doc_free(r->doc);
    loom__free(s->a, r->name, r->name_len + 1);
    loom__free(s->a, r, sizeof(*r));
}

static int room_load(loom_server *s, const char *name, net_room **out)
{
    net_room *r = loom__calloc(s->a, sizeof(*r));
    if (!r) {
        return LOOM_ENOMEM;
    }
    r->srv = s;
    r->rows_unchecked = (uint64_t)s->compact_rows + 1;
    r->name_len = strlen(name);
    r->name = loom__strndup(s->a, name, r->name_len);
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.alloc = s->a;
    o.gc = s->gc;
    int rc = r->name ? loom_doc_new(&o, &r->doc) : LOOM_ENOMEM;
    uint64_t now = loom__net_now_ms();
    if (!rc) {
        rc = loom_awareness_new(s->a, loom_doc_client_id(r->doc), now, &r->aw);
    }
    if (!rc) {
        /* as the reference server: its own awareness state is null */
        rc = loom_awareness_set_local(r->aw, NULL, 0, now);
    }
    if (!rc && s->store) {
        loom_error err;
        memset(&err, 0, sizeof(err));
        rc = loom_store_load(s->store, r->name, r->doc, &err);
        if (rc == LOOM_ENOTFOUND) {
            rc = LOOM_OK;
        } else if (rc) {
            loom__net_log(s, LOOM_LOG_ERROR, "room %s: loading failed: %s",
                          r->name, err.message);
        }
    }
    uint32_t sub;
    if (!rc) {
        rc = loom_doc_on_update(r->doc, on_doc_update, r, &sub);
    }
    if (rc) {
        if (r->name) {
            room_free(s, r);
        } else {
            loom__free(s->a, r, sizeof(*r));
        }
        return rc;
    }
    size_t bk = bucket_of(r->name, r->name_len);
    r->hnext = s->buckets[bk];
    s->buckets[bk] = r;
    r->next = s->rooms;
    if (s->rooms) {
        s->rooms->prev = r;
    }
    s->rooms = r;
    s->n_rooms++;
    s->m_rooms_loaded++;
    *out = r;
    return LOOM_OK;
}

static net_room *room_find(loom_server *s, const char *name)
{
    size_t len = strlen(name);
    for (net_room *r = s->buckets[bucket_of(name, len)]; r; r = r->hnext) {
        if (r->name_len == len && memcmp(r->name, name, len) == 0) {
            return r;
        }
    }
    return NULL;
}

static void room_unload(loom_server *s, net_room *r)
{
    net_room **pp = &s->buckets[bucket_of(r->name, r->name_len)];
    while (*pp != r) {
        pp = &(*pp)->hnext;
    }
    *pp = r->hnext;
    if (r->prev) {
        r->prev->next = r->next;
    } else {
        s->rooms = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    }
    s->n_rooms--;
    s->m_rooms_unloaded++;
    room_free(s, r);
}

int loom__net_room_join(loom_server *s, net_conn *c, const char *name)
{
    net_room *r = room_find(s, name);
    if (!r) {
        int rc = room_load(s, name, &r);
        if (rc) {
            return rc;
        }
        loom__net_log(s, LOOM_LOG_DEBUG, "room %s: loaded", r->name);
    }
    c->room = r;
    c->next = r->conns;
    c->prev = NULL;
    if (r->conns) {
        r->conns->prev = c;
    }
    r->conns = c;
    r->n_conns++;
    /* on connect: our sync step 1, then every known awareness state */
    loom_buf msg = {0}, aw = {0};
    loom__buf_init(&msg, s->a);
    loom__buf_init(&aw, s->a);
    int rc = loom_msg_write_sync_step1(&msg, r->doc);
    if (!rc) {
        send_bytes(c, msg.data, msg.len);
        msg.len = 0;
        rc = loom_awareness_encode_all(r->aw, &aw);
        if (rc == LOOM_ENOTFOUND) {
            rc = LOOM_OK;
        } else if (!rc) {
            rc = loom_msg_write_awareness(&msg, aw.data, aw.len);
            if (!rc) {
                send_bytes(c, msg.data, msg.len);
            }
        }
    }
    loom_buf_free(&msg);
    loom_buf_free(&aw);
    return rc;
}

/* Collects the clients an awareness change touched, and keeps the list of
 * clients a connection speaks for. */
typedef struct aw_ctx {
    loom_server *srv;
    net_conn *conn; /* NULL: not from a connection */
    uint64_t *ids;
    size_t n, cap;
    bool oom;
} aw_ctx;

static void conn_ids_remove(net_conn *c, uint64_t id)
{
    for (size_t i = 0; i < c->n_ids; i++) {
        if (c->ids[i] == id) {
            c->ids[i] = c->ids[--c->n_ids];
            return;
        }
    }
}

static void conn_ids_add(net_conn *c, uint64_t id, bool *oom)
{
    for (size_t i = 0; i < c->n_ids; i++) {
        if (c->ids[i] == id) {
            return;
        }
    }
    if (loom__vec_reserve(c->srv->a, (void **)&c->ids, &c->cap_ids,
                          c->n_ids + 1, sizeof(*c->ids))) {
        *oom = true;
        return;
    }
    c->ids[c->n_ids++] = id;
}

static void on_aw_change(void *ud, uint64_t client, loom_awareness_change what)
{
    aw_ctx *x = ud;
    if (loom__vec_reserve(x->srv->a, (void **)&x->ids, &x->cap, x->n + 1,
                          sizeof(*x->ids))) {
        x->oom = true;
    } else {
        x->ids[x->n++] = client;
    }
    if (x->conn) {
        if (what == LOOM_AWARENESS_REMOVED) {
            conn_ids_remove(x->conn, client);
        } else {
            conn_ids_add(x->conn, client, &x->oom);
        }
    }
}

/* Relays the entries of `x` to the room (everyone). */
static void relay_awareness(net_room *r, aw_ctx *x)
{
    if (x->oom) {
        loom__net_log(r->srv, LOOM_LOG_ERROR,
                      "room %s: out of memory relaying awareness", r->name);
    }
    if (x->n == 0) {
        return;
    }
    loom_buf u = {0}, msg = {0};
    loom__buf_init(&u, r->srv->a);
    loom__buf_init(&msg, r->srv->a);
    if (!loom_awareness_encode(r->aw, x->ids, x->n, &u) &&
        !loom_msg_write_awareness(&msg, u.data, u.len)) {
        broadcast(r, &msg, NULL);
    }
    loom_buf_free(&u);
    loom_buf_free(&msg);
}

static void aw_ctx_free(aw_ctx *x)
{
    loom__free(x->srv->a, x->ids, x->cap * sizeof(*x->ids));
}

void loom__net_room_leave(net_conn *c)
{
    net_room *r = c->room;
    if (!r) {
        return;
    }
    forget_sender(c);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        r->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->room = NULL;
    r->n_conns--;
    /* the states this connection announced go, and everyone hears it as
     * (client, same clock, null) */
    aw_ctx x = {c->srv, NULL, NULL, 0, 0, false};
    uint64_t now = loom__net_now_ms();
    (void)loom_awareness_remove(r->aw, c->ids, c->n_ids, now, on_aw_change, &x);
    relay_awareness(r, &x);
    aw_ctx_free(&x);
    loom__free(c->srv->a, c->ids, c->cap_ids * sizeof(*c->ids));
    c->ids = NULL;
    c->n_ids = c->cap_ids = 0;
    if (r->n_conns == 0) {
        r->empty_since_ms = now;
    }
}

/* An update with no structs and an empty delete set: what a client that
 * has nothing new sends as its sync step 2. */
static bool empty_update(const uint8_t *p, size_t n)
{
    return n == 2 && p[0] == 0 && p[1] == 0;
}

static const double hist_bounds[NET_HIST_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0};

/* Applies an update (inside the batch's transaction). */
static int apply_now(
    net_room *r, net_conn *sender, const uint8_t *p, size_t n, loom_error *err)
{
    int rc = loom_doc_apply_update(r->doc, p, n, sender, err);
    if (!rc) {
        r->srv->m_updates_applied++;
    }
    return rc;
}

/* Keeps an update for the next group commit. */
static int enqueue(net_conn *c, const uint8_t *p, size_t n)
{
    loom_server *s = c->srv;
    net_room *r = c->room;
    net_pending *e = loom__malloc(s->a, sizeof(*e) + n);
    if (!e) {
        return LOOM_ENOMEM;
    }
    e->next = NULL;
    e->sender = c;
    e->len = n;
    memcpy(e->data, p, n);
    if (!r->pend_head) {
        r->pend_head = e;
        r->next_dirty = s->dirty;
        s->dirty = r;
    } else {
        r->pend_tail->next = e;
    }
    r->pend_tail = e;
    s->pend_bytes += n;
    return LOOM_OK;
}

static void free_list(loom_server *s, net_pending *e)
{
    while (e) {
        net_pending *next = e->next;
        s->pend_bytes -= e->len;
        loom__free(s->a, e, sizeof(*e) + e->len);
        e = next;
    }
}

/* A batch that did not reach the disk: nothing of it is applied, and every
 * sender still connected learns it by being closed. */
static void refuse_room(loom_server *s, net_room *r, const loom_error *err)
{
    s->m_store_errors++;
    loom__net_log(s, LOOM_LOG_ERROR,
                  "room %s: store append of %zu update(s) failed (%s): "
                  "refused",
                  r->name, r->fly_n,
                  err->message[0] ? err->message : loom_strerror(err->code));
    for (net_pending *e = r->fly_head; e; e = e->next) {
        if (e->sender) {
            loom__net_drop(e->sender, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                           "storage failure");
        }
    }
}

/* A batch that is stored (or needs no store): applied in one transaction,
 * whose one update event relays everything to everyone. */
static void apply_room(loom_server *s, net_room *r)
{
    loom_error err;
    bool txn = loom_doc_transact_begin(r->doc, NULL) == LOOM_OK;
    for (net_pending *e = r->fly_head; e; e = e->next) {
        memset(&err, 0, sizeof(err));
        int rc = apply_now(r, e->sender, e->data, e->len, &err);
        if (rc) {
            /* validated before; only memory can fail here. With a store
             * the update is stored, so the next load has it. */
            loom__net_log(s, LOOM_LOG_ERROR,
                          "room %s: accepted update not applied (%s)", r->name,
                          loom_strerror(rc));
            if (e->sender) {
                loom__net_drop(e->sender, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
                               "update not applied");
            }
        }
    }
    if (txn) {
        (void)loom_doc_transact_end(r->doc);
    }
}

static void observe_store_latency(loom_server *s, double dt)
{
    s->m_store_appends++;
    s->m_store_seconds += dt;
    for (size_t k = 0; k < NET_HIST_BUCKETS; k++) {
        if (dt <= hist_bounds[k]) {
            s->m_store_hist[k]++;
            break;
        }
    }
}

/* The rooms with waiting updates become the next batch: their updates
 * move to the rooms' fly lists, and new ones start a new wait. */
static net_room *take_dirty(loom_server *s)
{
    net_room *list = NULL;
    while (s->dirty) {
        net_room *r = s->dirty;
        s->dirty = r->next_dirty;
        r->next_dirty = NULL;
        r->fly_head = r->pend_head;
        r->fly_n = 0;
        for (const net_pending *e = r->fly_head; e; e = e->next) {
            r->fly_n++;
        }
        r->pend_head = r->pend_tail = NULL;
        r->flush_rc = LOOM_OK;
        r->next_fly = list;
        list = r;
    }
    return list;
}

/* A batch that is done: stored (or refused) room by room, then applied and
 * relayed. Only now does anyone see it: nobody sees an update before it
 * is on disk. */
static void finish_batch(loom_server *s, net_room *list)
{
    while (list) {
        net_room *r = list;
        list = r->next_fly;
        r->next_fly = NULL;
        if (r->flush_rc) {
            refuse_room(s, r, &r->flush_err);
        } else {
            if (s->store) {
                s->m_store_updates += r->fly_n;
                r->rows_unchecked += r->fly_rows;
                /* the compactor looks at a room's log only once it may
                 * have grown past the bound: no lock or query per room per
                 * batch */
                if (r->rows_unchecked > s->compact_rows) {
                    loom__net_compactor_note(s->compactor, r->name);
                    r->rows_unchecked = 0;
                }
            }
            apply_room(s, r);
            loom__net_callback_note(s, r);
        }
        free_list(s, r->fly_head);
        r->fly_head = NULL;
        r->fly_n = 0;
    }
}

/* Takes back the writer's batch if it is done (or, with `wait`, once it
 * is) and finishes it. */
static void take_back(loom_server *s, bool wait)
{
    double dt = 0;
    net_room *list = loom__net_writer_take(s->writer, wait, &dt);
    if (list) {
        s->flying = NULL;
        observe_store_latency(s, dt);
        finish_batch(s, list);
    }
}

/* The waiting updates become the writer's batch (it has none). */
static void hand_over(loom_server *s)
{
    s->flying = take_dirty(s);
    loom__net_writer_submit(s->writer, s->ctx, s->flying);
}

void loom__net_flush(loom_server *s)
{
    if (!s->writer) {
        finish_batch(s, take_dirty(s));
        return;
    }
    if (s->flying) {
        take_back(s, false);
    }
    if (!s->flying && s->dirty) {
        hand_over(s);
    }
}

void loom__net_flush_all(loom_server *s)
{
    if (!s->writer) {
        finish_batch(s, take_dirty(s));
        return;
    }
    take_back(s, true);
    if (s->dirty) {
        hand_over(s);
        take_back(s, true);
    }
}

void loom__net_pending_free(loom_server *s)
{
    while (s->flying) {
        net_room *r = s->flying;
        s->flying = r->next_fly;
        r->next_fly = NULL;
        free_list(s, r->fly_head);
        r->fly_head = NULL;
    }
    while (s->dirty) {
        net_room *r = s->dirty;
        s->dirty = r->next_dirty;
        r->next_dirty = NULL;
        free_list(s, r->pend_head);
        r->pend_head = r->pend_tail = NULL;
    }
}

/* Waiting updates must not keep a pointer to a closed connection. */
static void forget_sender(net_conn *c)
{
    for (net_pending *e = c->room->pend_head; e; e = e->next) {
        if (e->sender == c) {
            e->sender = NULL;
        }
    }
    for (net_pending *e = c->room->fly_head; e; e = e->next) {
        if (e->sender == c) {
            e->sender = NULL;
        }
    }
}

static int malformed(net_conn *c, const loom_error *err, const char **why)
{
    loom__net_log(c->srv, LOOM_LOG_WARN,
                  "room %s: %s: malformed update (byte %zu: %s): closing",
                  c->room->name, NET_PEER(c), err->offset, err->message);
    *why = "malformed update";
    return LWS_CLOSE_STATUS_INVALID_PAYLOAD;
}

static int
apply_update(net_conn *c, const uint8_t *p, size_t n, const char **why)
{
    loom_server *s = c->srv;
    loom_error err;
    memset(&err, 0, sizeof(err));
    if (empty_update(p, n)) {
        return 0;
    }
    /* validated now, so that a bad update closes its own connection and
     * never spoils the batch it would have joined */
    if (loom_update_validate(p, n, &err)) {
        return malformed(c, &err, why);
    }
    /* a burst larger than this is handled at once */
    if (s->pend_bytes + n > NET_PENDING_MAX) {
        loom__net_flush_all(s);
    }
    if (enqueue(c, p, n)) {
        *why = "out of memory";
        return LWS_CLOSE_STATUS_UNEXPECTED_CONDITION;
    }
    return 0;
}

static void refuse_readonly(net_conn *c)
{
    static const char reason[] = "read-only token: updates are not accepted";
    loom_buf msg = {0};
    loom__buf_init(&msg, c->srv->a);
    c->srv->m_updates_refused++;
    loom__net_log(c->srv, LOOM_LOG_INFO,
                  "room %s: %s: update from a read-only connection refused",
                  c->room->name, NET_PEER(c));
    if (!loom_msg_write_auth_denied(&msg, reason, sizeof(reason) - 1)) {
        send_bytes(c, msg.data, msg.len);
    }
    loom_buf_free(&msg);
}

static int on_sync(net_conn *c, const loom_msg *m, const char **why)
{
    net_room *r = c->room;
    if (m->sync_type == LOOM_SYNC_STEP1) {
        loom_buf reply = {0};
        loom__buf_init(&reply, c->srv->a);
        loom_error err;
        memset(&err, 0, sizeof(err));
        int rc = loom_sync_handle(r->doc, m, c, &reply, &err);
        if (rc) {
            loom__net_log(c->srv, LOOM_LOG_WARN,
                          "room %s: %s: bad state vector in sync step 1 "
                          "(byte %zu: %s): closing",
                          r->name, NET_PEER(c), err.offset, err.message);
            loom_buf_free(&reply);
            *why = "malformed state vector";
            return LWS_CLOSE_STATUS_INVALID_PAYLOAD;
        }
        send_bytes(c, reply.data, reply.len);
        loom_buf_free(&reply);
        return 0;
    }
    if (c->readonly) {
        if (!empty_update(m->payload, m->payload_len)) {
            refuse_readonly(c);
        }
        return 0;
    }
    return apply_update(c, m->payload, m->payload_len, why);
}

static int on_awareness(net_conn *c, const loom_msg *m, const char **why)
{
    net_room *r = c->room;
    aw_ctx x = {c->srv, c, NULL, 0, 0, false};
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc = loom_awareness_apply(r->aw, m->payload, m->payload_len,
                                  loom__net_now_ms(), on_aw_change, &x, &err);
    if (rc) {
        aw_ctx_free(&x);
        loom__net_log(c->srv, LOOM_LOG_WARN,
                      "room %s: %s: malformed awareness update (byte %zu: "
                      "%s): closing",
                      r->name, NET_PEER(c), err.offset, err.message);
        *why = "malformed awareness update";
        return LWS_CLOSE_STATUS_INVALID_PAYLOAD;
    }
    c->srv->m_awareness_applied++;
    relay_awareness(r, &x);
    aw_ctx_free(&x);
    return 0;
}

int loom__net_room_message(net_conn *c,
                           const uint8_t *p,
                           size_t n,
                           const char **why)
{
    loom_msg m;
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc = loom_msg_parse(p, n, &m, &err);
    if (rc) {
        loom__net_log(c->srv, LOOM_LOG_WARN,
                      "room %s: %s: %s message (byte %zu: %s): closing",
                      c->room->name, NET_PEER(c),
                      rc == LOOM_EUNSUPPORTED ? "unsupported" : "malformed",
                      err.offset, err.message);
        *why = rc == LOOM_EUNSUPPORTED ? "unknown message type"
                                       : "malformed message";
        return rc == LOOM_EUNSUPPORTED ? LWS_CLOSE_STATUS_POLICY_VIOLATION
                                       : LWS_CLOSE_STATUS_INVALID_PAYLOAD;
    }
    switch (m.type) {
    case LOOM_MSG_SYNC:
        return on_sync(c, &m, why);
    case LOOM_MSG_AWARENESS:
        return on_awareness(c, &m, why);
    case LOOM_MSG_QUERY_AWARENESS: {
        loom_buf u = {0}, msg = {0};
        loom__buf_init(&u, c->srv->a);
        loom__buf_init(&msg, c->srv->a);
        if (!loom_awareness_encode_all(c->room->aw, &u) &&
            !loom_msg_write_awareness(&msg, u.data, u.len)) {
            send_bytes(c, msg.data, msg.len);
        }
        loom_buf_free(&u);
        loom_buf_free(&msg);
        return 0;
    }
    case LOOM_MSG_AUTH:
    default:
        return 0; /* only servers send auth messages; ignored */
    }
}

void loom__net_rooms_tick(loom_server *s, uint64_t now_ms)
{
    /* y-protocols checks awareness every outdatedTimeout / 10 */
    bool expire = now_ms - s->last_expire_ms >= s->awareness_timeout_ms / 10;
    if (expire) {
        s->last_expire_ms = now_ms;
    }
    net_room *r = s->rooms;
    while (r) {
        net_room *next = r->next;
        if (expire && r->n_conns) {
            aw_ctx x = {s, NULL, NULL, 0, 0, false};
            (void)loom_awareness_expire(r->aw, now_ms, s->awareness_timeout_ms,
                                        on_aw_change, &x);
            relay_awareness(r, &x);
            aw_ctx_free(&x);
        }
        /* every accepted update is already in the store: unloading only
         * frees memory. Without a store the room must stay. */
        if (s->store && r->n_conns == 0 && !r->pend_head && !r->fly_head &&
            now_ms - r->empty_since_ms >= (uint64_t)s->unload_secs * 1000) {
            loom__net_log(s, LOOM_LOG_DEBUG, "room %s: unloaded (idle)",
                          r->name);
            loom__net_callback_flush_room(s, r);
            room_unload(s, r);
        }
        r = next;
    }
}

void loom__net_rooms_free(loom_server *s)
{
    while (s->rooms) {
        room_unload(s, s->rooms);
    }
}
