/*
 * test_provider.c: the native peer (loom/provider.h) against an in-process
 * loom_server (loom/server.h) running in a second thread on a free
 * loopback port: URL checks; two providers syncing two documents and each
 * other's awareness state through the server; offline edits on both sides
 * while the server is down, merged after it restarts on the same port
 * with the same data directory; a provider keeping a store (received
 * edits appended, edits appended by "another process" noticed by the
 * store poll and sent); HTTP 401 and a read-only token's permission
 * denied ending in DENIED with no more attempts.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "loom/loom.h"

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

/* ---- an in-process server ------------------------------------------------ */

typedef struct srv {
    loom_server *s;
    pthread_t t;
    int port;
} srv;

static void *srv_run(void *s)
{
    (void)loom_server_run(s);
    return NULL;
}

static void srv_start(srv *v, int port, const char *dir, const char *secret)
{
    loom_server_options o;
    loom_server_options_init(&o);
    o.port = port;
    o.data_dir = dir;
    o.unload_secs = 1;
    if (secret) {
        o.auth_secret = (const uint8_t *)secret;
        o.auth_secret_len = strlen(secret);
    }
    loom_error err;
    memset(&err, 0, sizeof(err));
    /* a just-freed port may take a moment to be bindable again */
    int rc = LOOM_EIO;
    for (int i = 0; i < 50 && rc == LOOM_EIO; i++) {
        rc = loom_server_new(&o, &v->s, &err);
        if (rc == LOOM_EIO) {
            sleep_ms(100);
        }
    }
    assert_int_equal(rc, 0);
    v->port = loom_server_port(v->s);
    assert_int_equal(pthread_create(&v->t, NULL, srv_run, v->s), 0);
}

static void srv_stop(srv *v)
{
    loom_server_stop(v->s);
    assert_int_equal(pthread_join(v->t, NULL), 0);
    loom_server_free(v->s);
    v->s = NULL;
}

/* ---- peers ------------------------------------------------------------------ */

typedef struct peer {
    loom_doc *doc;
    loom_provider *p;
    int statuses[5];  /* how often each status was reported */
    int last;         /* the last status reported */
    char detail[256]; /* its detail */
    int aw_events;
} peer;

static void on_status(void *ud, loom_provider_status st, const char *detail)
{
    peer *x = ud;
    x->statuses[st]++;
    x->last = (int)st;
    (void)snprintf(x->detail, sizeof(x->detail), "%s", detail);
}

static void on_aw(void *ud, uint64_t client, loom_awareness_change what)
{
    peer *x = ud;
    (void)client;
    (void)what;
    x->aw_events++;
}

static void peer_open(peer *x,
                      const char *url,
                      uint64_t client,
                      const char *aw,
                      loom_store *store,
                      const char *name)
{
    memset(x, 0, sizeof(*x));
    x->last = -1;
    loom_doc_options d;
    loom_doc_options_init(&d);
    d.client_id = client;
    assert_int_equal(loom_doc_new(&d, &x->doc), 0);
    loom_provider_options o;
    loom_provider_options_init(&o);
    o.url = url;
    o.doc = x->doc;
    o.awareness = aw;
    o.store = store;
    o.store_name = name;
    o.store_poll_ms = store ? 50 : 0;
    o.on_status = on_status;
    o.status_ud = x;
    o.on_awareness = on_aw;
    o.awareness_ud = x;
    o.backoff_max_ms = 400;
    loom_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(loom_provider_new(&o, &x->p, &err), 0);
}

static void peer_close(peer *x)
{
    loom_provider_free(x->p);
    loom_doc_free(x->doc);
}

/* Services every peer until cond(ud) holds or `ms` pass; returns whether
 * it holds. */
static bool pump(peer **v, size_t n, bool (*cond)(void *), void *ud, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (cond(ud)) {
            return true;
        }
        for (size_t i = 0; i < n; i++) {
            (void)loom_provider_service(v[i]->p, 5);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        long el =
            (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (el > ms) {
            return cond(ud);
        }
    }
}

static void text_insert(peer *x, size_t at, const char *s)
{
    loom_type *t = NULL;
    assert_int_equal(loom_doc_get(x->doc, "t", 1, LOOM_TYPE_TEXT, &t), 0);
    assert_int_equal(loom_text_insert(t, at, s, strlen(s), NULL), 0);
}

/* The text "t" of a document (static buffer per call site use). */
static void text_of(loom_doc *doc, char *out, size_t cap)
{
    loom_type *t = NULL;
    out[0] = '\0';
    if (loom_doc_get(doc, "t", 1, LOOM_TYPE_TEXT, &t) != 0) {
        return;
    }
    loom_buf b = {0};
    assert_int_equal(loom_text_to_string(t, &b), 0);
    (void)snprintf(out, cap, "%.*s", (int)b.len, b.data ? (char *)b.data : "");
    loom_buf_free(&b);
}

typedef struct two {
    peer *a, *b;
    const char *want; /* NULL: equal texts */
} two;

static bool both_synced(void *ud)
{
    two *w = ud;
    return loom_provider_synced(w->a->p) && loom_provider_synced(w->b->p);
}

static bool texts_are(void *ud)
{
    two *w = ud;
    char x[256], y[256];
    text_of(w->a->doc, x, sizeof(x));
    text_of(w->b->doc, y, sizeof(y));
    return strcmp(x, y) == 0 && (!w->want || strcmp(x, w->want) == 0);
}

static bool both_disconnected(void *ud)
{
    two *w = ud;
    return loom_provider_status_get(w->a->p) == LOOM_PROVIDER_DISCONNECTED &&
           loom_provider_status_get(w->b->p) == LOOM_PROVIDER_DISCONNECTED;
}

static bool b_sees_a(void *ud)
{
    two *w = ud;
    const char *json;
    size_t len;
    uint64_t clock;
    return loom_awareness_get(loom_provider_awareness(w->b->p), 1001, &json,
                              &len, &clock) == 0 &&
           len == 16 && memcmp(json, "{\"user\":\"alice\"}", 16) == 0;
}

static bool b_lost_a(void *ud)
{
    two *w = ud;
    return loom_awareness_count(loom_provider_awareness(w->b->p)) == 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_options(void **state)
{
    (void)state;
    loom_doc *doc = NULL;
    assert_int_equal(loom_doc_new(NULL, &doc), 0);
    loom_provider_options o;
    loom_provider_options_init(&o);
    assert_int_equal(o.backoff_min_ms, 100);
    assert_int_equal(o.backoff_max_ms, 2500);
    o.doc = doc;
    loom_provider *p = NULL;
    loom_error err;
    const char *bad[] = {"http://h/r", "ws://",       "ws://h",
                         "ws://h/",    "ws://h:0/r",  "ws://h:70000/r",
                         "ws://h:x/r", "ws://[::1/r", "ws://h/?token=x",
                         "ws://:80/r"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.url = bad[i];
        memset(&err, 0, sizeof(err));
        assert_int_equal(loom_provider_new(&o, &p, &err), LOOM_EINVAL);
        assert_null(p);
    }
    o.url = "wss://";
    assert_int_equal(loom_provider_new(&o, &p, &err), LOOM_EINVAL);
    /* wss:// parses (TLS; the connection is only tried at service) */
    o.url = "wss://h/r";
    assert_int_equal(loom_provider_new(&o, &p, &err), 0);
    loom_provider_free(p);
    p = NULL;
    o.url = "ws://h/r";
    o.awareness = "{not json";
    assert_int_equal(loom_provider_new(&o, &p, &err), LOOM_EINVAL);
    o.awareness = NULL;
    o.backoff_min_ms = 3000;
    assert_int_equal(loom_provider_new(&o, &p, &err), LOOM_EINVAL);
    o.backoff_min_ms = 100;
    o.doc = NULL;
    assert_int_equal(loom_provider_new(&o, &p, &err), LOOM_EINVAL);
    assert_null(p);
    /* a good one: ws://[::1]:9/room?token=x parses and is freed */
    o.doc = doc;
    o.url = "ws://[::1]:9/room?token=x";
    assert_int_equal(loom_provider_new(&o, &p, &err), 0);
    assert_non_null(p);
    assert_int_equal(loom_provider_status_get(p), LOOM_PROVIDER_DISCONNECTED);
    loom_provider_free(p);
    loom_provider_free(NULL);
    loom_doc_free(doc);
}

static void make_tmpdir(char *dir, size_t cap)
{
    (void)snprintf(dir, cap, "/tmp/loom-provider-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void rm_tmpdir(const char *dir)
{
    char cmd[512];
    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_two_peers_and_restart(void **state)
{
    (void)state;
    char dir[64];
    make_tmpdir(dir, sizeof(dir));
    srv s;
    srv_start(&s, 0, dir, NULL);
    char url[128];
    (void)snprintf(url, sizeof(url), "ws://127.0.0.1:%d/room-1", s.port);
    peer a, b;
    peer_open(&a, url, 1001, "{\"user\":\"alice\"}", NULL, NULL);
    peer_open(&b, url, 2002, NULL, NULL, NULL);
    peer *v[] = {&a, &b};
    two w = {&a, &b, NULL};
    assert_true(pump(v, 2, both_synced, &w, 5000));
    assert_true(a.statuses[LOOM_PROVIDER_CONNECTING] >= 1);
    assert_true(a.statuses[LOOM_PROVIDER_CONNECTED] >= 1);
    assert_int_equal(a.last, LOOM_PROVIDER_SYNCED);

    /* edits both ways */
    text_insert(&a, 0, "hello");
    w.want = "hello";
    assert_true(pump(v, 2, texts_are, &w, 5000));
    text_insert(&b, 5, " world");
    w.want = "hello world";
    assert_true(pump(v, 2, texts_are, &w, 5000));
    /* presence: b sees alice's state */
    assert_true(pump(v, 2, b_sees_a, &w, 5000));
    assert_true(b.aw_events >= 1);

    /* the server goes away: both disconnect, b drops alice's state */
    srv_stop(&s);
    assert_true(pump(v, 2, both_disconnected, &w, 5000));
    assert_non_null(strstr(a.detail, "retry in"));
    assert_true(b_lost_a(&w));
    /* offline edits on both sides; they cannot meet yet */
    text_insert(&a, 0, "A:");
    text_insert(&b, 11, ":B");
    w.want = NULL;
    assert_false(pump(v, 2, texts_are, &w, 600));
    /* attempts go on while the server is down, with growing delays */
    int before = a.statuses[LOOM_PROVIDER_CONNECTING];
    (void)pump(v, 2, texts_are, &w, 800);
    assert_true(a.statuses[LOOM_PROVIDER_CONNECTING] > before);

    /* the server is back on the same port with the same data */
    srv_start(&s, s.port, dir, NULL);
    w.want = "A:hello world:B";
    assert_true(pump(v, 2, texts_are, &w, 8000));
    assert_true(pump(v, 2, both_synced, &w, 5000));
    assert_true(pump(v, 2, b_sees_a, &w, 5000));

    /* a late joiner with an empty document gets everything */
    peer c;
    peer_open(&c, url, 3003, NULL, NULL, NULL);
    peer *v3[] = {&a, &b, &c};
    two w3 = {&a, &c, "A:hello world:B"};
    assert_true(pump(v3, 3, texts_are, &w3, 5000));
    peer_close(&c);

    peer_close(&a);
    peer_close(&b);
    srv_stop(&s);
    rm_tmpdir(dir);
}

typedef struct store_w {
    loom_store *st;
    const char *want;
    peer *x;
} store_w;

static bool store_has(void *ud)
{
    store_w *w = ud;
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(NULL, &d), 0);
    loom_error err;
    bool ok = loom_store_load(w->st, "mine", d, &err) == 0;
    char t[256];
    text_of(d, t, sizeof(t));
    loom_doc_free(d);
    return ok && strcmp(t, w->want) == 0;
}

static bool peer_has(void *ud)
{
    store_w *w = ud;
    char t[256];
    text_of(w->x->doc, t, sizeof(t));
    return strcmp(t, w->want) == 0;
}

static void test_store(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_tmpdir(dir, sizeof(dir));
    (void)snprintf(path, sizeof(path), "%s/replica.db", dir);
    loom_store *st = NULL;
    loom_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(loom_store_open(path, NULL, &st, &err), 0);

    /* the store holds an offline edit before the provider starts */
    loom_doc *off = NULL;
    loom_doc_options d;
    loom_doc_options_init(&d);
    d.client_id = 77;
    assert_int_equal(loom_doc_new(&d, &off), 0);
    loom_type *t = NULL;
    assert_int_equal(loom_doc_get(off, "t", 1, LOOM_TYPE_TEXT, &t), 0);
    assert_int_equal(loom_text_insert(t, 0, "x", 1, NULL), 0);
    loom_buf up = {0};
    assert_int_equal(loom_doc_encode_state_as_update(off, NULL, 0, &up, &err),
                     0);
    assert_int_equal(loom_store_append(st, "mine", up.data, up.len, &err), 0);
    loom_buf_free(&up);

    srv s;
    srv_start(&s, 0, NULL, NULL);
    char url[128];
    (void)snprintf(url, sizeof(url), "ws://127.0.0.1:%d/shared", s.port);
    peer a, b;
    peer_open(&a, url, 1001, NULL, st, "mine");
    /* loaded from the store at once */
    char txt[64];
    text_of(a.doc, txt, sizeof(txt));
    assert_string_equal(txt, "x");
    peer_open(&b, url, 2002, NULL, NULL, NULL);
    peer *v[] = {&a, &b};
    /* the store's edit reaches b through the server */
    store_w w = {st, "x", &b};
    assert_true(pump(v, 2, peer_has, &w, 5000));

    /* b's edit arrives in the store */
    text_insert(&b, 1, "yz");
    w.want = "xyz";
    assert_true(pump(v, 2, store_has, &w, 5000));

    /* another writer appends to the store: the poll notices and sends */
    assert_int_equal(loom_text_insert(t, 0, "<", 1, NULL), 0);
    loom_buf sv = {0};
    assert_int_equal(loom_store_state_vector(st, "mine", &sv, &err), 0);
    assert_int_equal(
        loom_doc_encode_state_as_update(off, sv.data, sv.len, &up, &err), 0);
    loom_buf_free(&sv);
    assert_int_equal(loom_store_append(st, "mine", up.data, up.len, &err), 0);
    loom_buf_free(&up);
    w.want = "<xyz";
    assert_true(pump(v, 2, peer_has, &w, 5000));

    /* a delete-only append (the state vector does not change) too */
    assert_int_equal(loom_text_delete(t, 0, 1), 0);
    assert_int_equal(loom_doc_encode_state_as_update(off, NULL, 0, &up, &err),
                     0);
    assert_int_equal(loom_store_append(st, "mine", up.data, up.len, &err), 0);
    loom_buf_free(&up);
    w.want = "xyz";
    assert_true(pump(v, 2, peer_has, &w, 5000));

    peer_close(&a);
    peer_close(&b);
    srv_stop(&s);
    loom_doc_free(off);
    /* everything a saw is in the store after it is gone */
    w.want = "xyz";
    assert_true(store_has(&w));
    loom_store_close(st);
    rm_tmpdir(dir);
}

static bool denied(void *ud)
{
    peer *x = ud;
    return loom_provider_status_get(x->p) == LOOM_PROVIDER_DENIED;
}

static bool synced(void *ud)
{
    peer *x = ud;
    return loom_provider_synced(x->p);
}

static void test_denied(void **state)
{
    (void)state;
    srv s;
    srv_start(&s, 0, NULL, "sekrit");
    char url[512];
    /* no token: HTTP 401 */
    (void)snprintf(url, sizeof(url), "ws://127.0.0.1:%d/room", s.port);
    peer a;
    peer_open(&a, url, 1001, NULL, NULL, NULL);
    peer *v[] = {&a};
    assert_true(pump(v, 1, denied, &a, 5000));
    assert_non_null(strstr(a.detail, "401"));
    assert_int_equal(a.statuses[LOOM_PROVIDER_CONNECTED], 0);
    assert_int_equal(loom_provider_service(a.p, 0), LOOM_ESTATE);
    int tries = a.statuses[LOOM_PROVIDER_CONNECTING];
    (void)pump(v, 1, denied, &a, 0);
    sleep_ms(300);
    (void)loom_provider_service(a.p, 0);
    assert_int_equal(a.statuses[LOOM_PROVIDER_CONNECTING], tries);
    peer_close(&a);

    /* a read-only token: connects and syncs; its edit is refused */
    loom_buf tok = {0};
    assert_int_equal(loom_token_issue((const uint8_t *)"sekrit", 6, "room",
                                      LOOM_TOKEN_READ, time(NULL) + 600, &tok),
                     0);
    (void)snprintf(url, sizeof(url), "ws://127.0.0.1:%d/room?token=%.*s",
                   s.port, (int)tok.len, (const char *)tok.data);
    loom_buf_free(&tok);
    peer_open(&a, url, 1001, NULL, NULL, NULL);
    assert_true(pump(v, 1, synced, &a, 5000));
    text_insert(&a, 0, "nope");
    assert_true(pump(v, 1, denied, &a, 5000));
    assert_non_null(strstr(a.detail, "permission denied"));
    peer_close(&a);
    srv_stop(&s);
}

static bool one_synced(void *ud)
{
    return loom_provider_synced(((peer *)ud)->p);
}

static bool was_dropped(void *ud)
{
    return ((peer *)ud)->statuses[LOOM_PROVIDER_DISCONNECTED] > 0;
}

static bool has_text(void *ud)
{
    two *w = ud;
    char x[64];
    text_of(w->b->doc, x, sizeof(x));
    return strcmp(x, w->want) == 0;
}

/* The store refuses a batch (another process holds its write lock past the
 * busy timeout): nothing of it is applied or relayed, its sender is
 * closed, and the edit, still in the sender's document, is stored and
 * reaches the others when that sender reconnects. While the writer thread
 * waits for the lock, the event loop goes on serving other rooms. */
static void test_store_refuses(void **state)
{
    (void)state;
    char dir[64], db[128];
    make_tmpdir(dir, sizeof(dir));
    srv s;
    srv_start(&s, 0, dir, NULL);
    char url[128], other[128];
    (void)snprintf(url, sizeof(url), "ws://127.0.0.1:%d/locked", s.port);
    (void)snprintf(other, sizeof(other), "ws://127.0.0.1:%d/other", s.port);
    peer a, b, c;
    peer_open(&a, url, 3001, NULL, NULL, NULL);
    peer_open(&b, url, 3002, NULL, NULL, NULL);
    peer *v[3] = {&a, &b, &c};
    two ab = {&a, &b, "one"};
    assert_true(pump(v, 2, both_synced, &ab, 5000));
    text_insert(&a, 0, "one");
    assert_true(pump(v, 2, has_text, &ab, 5000));

    /* another process takes the store's write lock and keeps it */
    (void)snprintf(db, sizeof(db), "%s/loom.db", dir);
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    int drops_before = a.statuses[LOOM_PROVIDER_DISCONNECTED];
    text_insert(&a, 3, " two");

    /* the writer waits for the lock (5 s); a new peer in another room is
     * served meanwhile */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    peer_open(&c, other, 3003, NULL, NULL, NULL);
    assert_true(pump(v, 3, one_synced, &c, 3000));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    /* nobody saw the edit the store has not taken */
    char txt[64];
    text_of(b.doc, txt, sizeof(txt));
    assert_string_equal(txt, "one");

    /* refused: the sender is closed, b never gets the edit */
    assert_true(pump(v, 3, was_dropped, &a, 15000));
    assert_true(a.statuses[LOOM_PROVIDER_DISCONNECTED] > drops_before);
    text_of(b.doc, txt, sizeof(txt));
    assert_string_equal(txt, "one");

    /* the lock goes; a reconnects and its sync exchange carries the edit */
    assert_int_equal(sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(h), SQLITE_OK);
    ab.want = "one two";
    assert_true(pump(v, 3, has_text, &ab, 10000));
    peer_close(&a);
    peer_close(&b);
    peer_close(&c);
    srv_stop(&s);

    /* and it is in the store */
    loom_store *st = NULL;
    loom_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(loom_store_open(db, NULL, &st, &err), 0);
    loom_doc *d = NULL;
    assert_int_equal(loom_doc_new(NULL, &d), 0);
    assert_int_equal(loom_store_load(st, "locked", d, &err), 0);
    text_of(d, txt, sizeof(txt));
    assert_string_equal(txt, "one two");
    loom_doc_free(d);
    loom_store_close(st);
    rm_tmpdir(dir);
}

static bool gave_up_resolving(void *ud)
{
    peer *x = ud;
    return x->statuses[LOOM_PROVIDER_DISCONNECTED] > 0 &&
           strstr(x->detail, "cannot resolve") != NULL;
}

/* A host name is resolved on a thread of its own and dialled by address:
 * localhost syncs; a name that does not resolve is a failed attempt
 * (retried with backoff), and no service call waits for the lookup. */
static void test_host_names(void **state)
{
    (void)state;
    srv s;
    srv_start(&s, 0, NULL, NULL);
    char url[128];
    (void)snprintf(url, sizeof(url), "ws://localhost:%d/named", s.port);
    peer a;
    peer_open(&a, url, 1101, NULL, NULL, NULL);
    peer *v[1] = {&a};
    assert_true(pump(v, 1, one_synced, &a, 5000));
    peer_close(&a);

    peer b;
    peer_open(&b, "ws://no-such-host.invalid:9/named", 1102, NULL, NULL, NULL);
    v[0] = &b;
    struct timespec t0, t1, start;
    long worst = 0;
    /* a machine without a reachable DNS server takes a while to say no */
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long el = 0; el < 30000 && !gave_up_resolving(&b);
         el = (t1.tv_sec - start.tv_sec) * 1000 +
              (t1.tv_nsec - start.tv_nsec) / 1000000) {
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(loom_provider_service(b.p, 5), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 +
                  (t1.tv_nsec - t0.tv_nsec) / 1000000;
        worst = ms > worst ? ms : worst;
    }
    assert_true(gave_up_resolving(&b));
    /* a service call asked to wait 5 ms never waited for DNS */
    assert_true(worst < 1000);
    peer_close(&b);
    srv_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_two_peers_and_restart),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_denied),
        cmocka_unit_test(test_host_names),
        cmocka_unit_test(test_store_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
