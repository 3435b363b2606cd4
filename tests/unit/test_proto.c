/*
 * test_proto.c: the y-protocols layer (src/proto) against the protocol
 * vectors made by the real y-protocols 1.0.7 (tests/vectors/protocol.json)
 * and the rules of its awareness code.
 *
 *  - every vector: the messages parse to the recorded fields and are
 *    written back byte for byte, from loom documents and awareness objects;
 *    the y-websocket handshake transcript is replayed through a loom
 *    document acting as the server;
 *  - hostile frames: every truncation of every vector message, trailing
 *    bytes, unknown outer/sync/auth types, bad UTF-8 reasons: an error with
 *    an offset, out-param untouched;
 *  - awareness acceptance: newer clocks, the equal-clock-null rule, stale
 *    replays after a removal, our own state defended, all-or-nothing on a
 *    bad entry, removal and timeout encodings, allocation failures;
 *  - sync handling: a malformed update leaves the document unchanged;
 *  - 300 random awareness steps recorded from the real y-protocols
 *    (tests/vectors/awareness-random.json, made by
 *    tests/net/awareness-vectors.mjs): the same events, and the same bytes
 *    when the receiver is encoded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loom/loom.h"
#include "testalloc.h"
#include "tjson.h"

static json_t *vectors;

static const json_t *vec(const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(vectors, "vectors"), i, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "name")), name)) {
            return v;
        }
    }
    fail_msg("no vector %s", name);
    return NULL;
}

/* A field of a vector, hex-decoded (caller frees). */
static uint8_t *vhex(const char *name, const char *field, size_t *len)
{
    const char *h = json_string_value(json_object_get(vec(name), field));
    assert_non_null(h);
    uint8_t *p;
    assert_int_equal(hex_decode(h, &p, len), 0);
    return p;
}

static void assert_hex(const loom_buf *b, const char *hex)
{
    char *h = hex_encode(b->data, b->len);
    assert_string_equal(h, hex);
    free(h);
}

static void assert_vhex(const loom_buf *b, const char *name, const char *field)
{
    assert_hex(b, json_string_value(json_object_get(vec(name), field)));
}

static loom_doc *doc_with(uint64_t client, const uint8_t *u, size_t n)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = client;
    loom_doc *d;
    assert_int_equal(loom_doc_new(&o, &d), 0);
    if (u) {
        assert_int_equal(loom_doc_apply_update(d, u, n, NULL, NULL), 0);
    }
    return d;
}

static int setup(void **state)
{
    (void)state;
    char path[2048];
    snprintf(path, sizeof path, "%s/protocol.json", LOOM_VECTORS_DIR);
    json_error_t je;
    vectors = tjson_load_file(path, 0, &je);
    return vectors ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(vectors);
    return 0;
}

/* ---- sync messages ------------------------------------------------------ */

static void test_sync_vectors(void **state)
{
    (void)state;
    loom_buf b = {0};
    loom_doc *empty = doc_with(1, NULL, 0);
    assert_int_equal(loom_msg_write_sync_step1(&b, empty), 0);
    assert_vhex(&b, "sync-step1-empty-doc", "message");
    loom_buf_free(&b);
    loom_doc_free(empty);

    size_t ulen, svlen, mlen;
    uint8_t *u = vhex("sync-step1", "docUpdate", &ulen);
    loom_doc *server = doc_with(77, u, ulen);
    assert_int_equal(loom_msg_write_sync_step1(&b, server), 0);
    assert_vhex(&b, "sync-step1", "message");
    loom_buf_free(&b);

    /* a step 1 carrying the client's state vector gets the step 2 */
    uint8_t *sv = vhex("sync-step2", "clientStateVector", &svlen);
    loom_buf step1 = {0};
    assert_int_equal(loom_msg_write_sync(&step1, LOOM_SYNC_STEP1, sv, svlen),
                     0);
    loom_msg m;
    assert_int_equal(loom_msg_parse(step1.data, step1.len, &m, NULL), 0);
    assert_int_equal(m.type, LOOM_MSG_SYNC);
    assert_int_equal(m.sync_type, LOOM_SYNC_STEP1);
    assert_int_equal(m.payload_len, svlen);
    assert_memory_equal(m.payload, sv, svlen);
    assert_int_equal(loom_sync_handle(server, &m, NULL, &b, NULL), 0);
    assert_vhex(&b, "sync-step2", "message");
    /* and that reply parses back to the whole update */
    assert_int_equal(loom_msg_parse(b.data, b.len, &m, NULL), 0);
    assert_int_equal(m.sync_type, LOOM_SYNC_STEP2);
    loom_doc *client = doc_with(2000, NULL, 0);
    loom_buf none = {0};
    assert_int_equal(loom_sync_handle(client, &m, NULL, &none, NULL), 0);
    assert_int_equal(none.len, 0);
    loom_buf s1 = {0}, s2 = {0};
    assert_int_equal(loom_doc_encode_state_vector(client, &s1), 0);
    assert_int_equal(loom_doc_encode_state_vector(server, &s2), 0);
    assert_int_equal(s1.len, s2.len);
    assert_memory_equal(s1.data, s2.data, s1.len);
    loom_buf_free(&s1);
    loom_buf_free(&s2);
    loom_buf_free(&b);
    loom_buf_free(&step1);
    loom_doc_free(client);
    free(sv);
    free(u);
    loom_doc_free(server);

    u = vhex("sync-update", "update", &ulen);
    assert_int_equal(loom_msg_write_sync(&b, LOOM_SYNC_UPDATE, u, ulen), 0);
    assert_vhex(&b, "sync-update", "message");
    uint8_t *msg = vhex("sync-update", "message", &mlen);
    assert_int_equal(loom_msg_parse(msg, mlen, &m, NULL), 0);
    assert_int_equal(m.sync_type, LOOM_SYNC_UPDATE);
    assert_int_equal(m.payload_len, ulen);
    assert_memory_equal(m.payload, u, ulen);
    loom_buf_free(&b);
    free(msg);
    free(u);
}

static void test_other_vectors(void **state)
{
    (void)state;
    loom_buf b = {0};
    loom_msg m;
    assert_int_equal(loom_msg_write_query_awareness(&b), 0);
    assert_vhex(&b, "query-awareness", "message");
    assert_int_equal(loom_msg_parse(b.data, b.len, &m, NULL), 0);
    assert_int_equal(m.type, LOOM_MSG_QUERY_AWARENESS);
    assert_int_equal(m.payload_len, 0);
    loom_buf_free(&b);

    assert_int_equal(loom_msg_write_auth_denied(&b, "no access to room", 17),
                     0);
    assert_vhex(&b, "auth-permission-denied", "message");
    assert_int_equal(loom_msg_parse(b.data, b.len, &m, NULL), 0);
    assert_int_equal(m.type, LOOM_MSG_AUTH);
    assert_int_equal(m.auth_type, LOOM_AUTH_PERMISSION_DENIED);
    assert_int_equal(m.payload_len, 17);
    assert_memory_equal(m.payload, "no access to room", 17);
    loom_buf_free(&b);
    assert_int_equal(loom_msg_write_auth_denied(&b, "\xff", 1), LOOM_EINVAL);
    assert_int_equal(b.len, 0);
}

/* ---- awareness vectors -------------------------------------------------- */

static void test_awareness_vectors(void **state)
{
    (void)state;
    const uint64_t alice = 2000, server_id = 1000;
    loom_awareness *aw;
    assert_int_equal(loom_awareness_new(NULL, alice, 1, &aw), 0);
    loom_buf b = {0};
    assert_int_equal(loom_awareness_encode(aw, &alice, 1, &b), 0);
    assert_vhex(&b, "awareness-initial-empty-state", "awarenessUpdate");
    loom_buf_free(&b);

    const char *st = "{\"user\":{\"name\":\"Alice\",\"color\":\"#ff0000\"},"
                     "\"cursor\":null}";
    assert_int_equal(loom_awareness_set_local(aw, st, strlen(st), 2), 0);
    assert_int_equal(loom_awareness_encode(aw, &alice, 1, &b), 0);
    assert_vhex(&b, "awareness-update", "awarenessUpdate");
    loom_buf msg = {0};
    assert_int_equal(loom_msg_write_awareness(&msg, b.data, b.len), 0);
    assert_vhex(&msg, "awareness-update", "message");
    loom_msg m;
    assert_int_equal(loom_msg_parse(msg.data, msg.len, &m, NULL), 0);
    assert_int_equal(m.type, LOOM_MSG_AWARENESS);
    assert_int_equal(m.payload_len, b.len);
    loom_buf_free(&msg);

    /* the server side: its own state {} at clock 0, then Alice's entry */
    loom_awareness *srv;
    assert_int_equal(loom_awareness_new(NULL, server_id, 1, &srv), 0);
    assert_int_equal(
        loom_awareness_apply(srv, b.data, b.len, 3, NULL, NULL, NULL), 0);
    loom_buf_free(&b);
    assert_int_equal(loom_awareness_encode_all(srv, &b), 0);
    assert_vhex(&b, "awareness-multi-client", "awarenessUpdate");
    loom_buf_free(&b);

    /* setLocalStateField: clock 2, written with JSON.stringify's spacing
     * even when the text we are given has other spacing */
    const char *st2 = "{ \"user\": {\"name\":\"Alice\",\"color\":\"#ff0000\"},"
                      " \"cursor\": {\"anchor\": 3, \"head\": 5.0} }";
    assert_int_equal(loom_awareness_set_local(aw, st2, strlen(st2), 4), 0);
    assert_int_equal(loom_awareness_encode(aw, &alice, 1, &b), 0);
    assert_vhex(&b, "awareness-update-field", "awarenessUpdate");
    assert_int_equal(
        loom_awareness_apply(srv, b.data, b.len, 5, NULL, NULL, NULL), 0);
    loom_buf_free(&b);

    /* setLocalState(null): the removal the receiver applies */
    assert_int_equal(loom_awareness_set_local(aw, NULL, 0, 6), 0);
    assert_int_equal(loom_awareness_encode(aw, &alice, 1, &b), 0);
    assert_vhex(&b, "awareness-removal", "awarenessUpdate");
    assert_int_equal(loom_msg_write_awareness(&msg, b.data, b.len), 0);
    assert_vhex(&msg, "awareness-removal", "message");
    loom_buf_free(&msg);
    assert_int_equal(
        loom_awareness_apply(srv, b.data, b.len, 7, NULL, NULL, NULL), 0);
    loom_buf_free(&b);
    const json_t *after = vec("awareness-after-removal");
    const json_t *rem = json_object_get(after, "remainingClients");
    assert_int_equal(loom_awareness_count(srv), json_array_size(rem));
    assert_int_equal(
        loom_awareness_get(srv,
                           (uint64_t)json_integer_value(json_array_get(rem, 0)),
                           NULL, NULL, NULL),
        0);
    assert_int_equal(loom_awareness_get(srv, alice, NULL, NULL, NULL),
                     LOOM_ENOTFOUND);
    /* the removed client's clock survives: encoding it gives clock 3 */
    assert_int_equal(loom_awareness_encode(srv, &alice, 1, &b), 0);
    assert_vhex(&b, "awareness-removal", "awarenessUpdate");
    assert_int_equal(
        json_integer_value(json_object_get(after, "metaClockOfRemoved")), 3);
    loom_buf_free(&b);
    loom_awareness_free(srv);
    loom_awareness_free(aw);
}

/* The y-websocket handshake transcript, with a loom document and awareness
 * as the server (doc client 5000, awareness state null). */
typedef struct hs_server {
    loom_doc *doc;
    loom_awareness *aw;
    loom_buf out[8];
    size_t n_out;
    uint64_t changed[8];
    size_t n_changed;
} hs_server;

static void hs_on_update(
    void *ud, loom_doc *d, const uint8_t *u, size_t n, const loom_txn *t)
{
    (void)d;
    (void)t;
    hs_server *s = ud;
    assert_int_equal(
        loom_msg_write_sync(&s->out[s->n_out++], LOOM_SYNC_UPDATE, u, n), 0);
}

static void hs_on_aw(void *ud, uint64_t client, loom_awareness_change what)
{
    (void)what;
    hs_server *s = ud;
    s->changed[s->n_changed++] = client;
}

static void hs_receive(hs_server *s, const char *hex)
{
    uint8_t *p;
    size_t n;
    assert_int_equal(hex_decode(hex, &p, &n), 0);
    loom_msg m;
    assert_int_equal(loom_msg_parse(p, n, &m, NULL), 0);
    if (m.type == LOOM_MSG_SYNC) {
        assert_int_equal(
            loom_sync_handle(s->doc, &m, NULL, &s->out[s->n_out], NULL), 0);
        if (s->out[s->n_out].len) {
            s->n_out++;
        }
    } else {
        assert_int_equal(m.type, LOOM_MSG_AWARENESS);
        s->n_changed = 0;
        assert_int_equal(loom_awareness_apply(s->aw, m.payload, m.payload_len,
                                              10, hs_on_aw, s, NULL),
                         0);
        loom_buf u = {0};
        assert_int_equal(
            loom_awareness_encode(s->aw, s->changed, s->n_changed, &u), 0);
        assert_int_equal(
            loom_msg_write_awareness(&s->out[s->n_out++], u.data, u.len), 0);
        loom_buf_free(&u);
    }
    free(p);
}

static void test_handshake(void **state)
{
    (void)state;
    const json_t *hs = vec("websocket-handshake");
    size_t n;
    uint8_t *u = vhex("websocket-handshake", "serverDocInitialUpdate", &n);
    hs_server s;
    memset(&s, 0, sizeof(s));
    s.doc = doc_with(5000, u, n);
    free(u);
    assert_int_equal(loom_awareness_new(NULL, 5000, 0, &s.aw), 0);
    assert_int_equal(loom_awareness_set_local(s.aw, NULL, 0, 0), 0);
    uint32_t sub;
    assert_int_equal(loom_doc_on_update(s.doc, hs_on_update, &s, &sub), 0);

    const json_t *tr = json_object_get(hs, "transcript");
    /* on connect: step 1, and no awareness (none known) */
    assert_int_equal(loom_msg_write_sync_step1(&s.out[s.n_out++], s.doc), 0);
    loom_buf none = {0};
    assert_int_equal(loom_awareness_encode_all(s.aw, &none), LOOM_ENOTFOUND);
    /* deliveries in the recorded order */
    size_t sent = 0;
    const char *expect[8];
    size_t n_expect = 0;
    for (size_t i = 0; i < json_array_size(tr); i++) {
        const json_t *e = json_array_get(tr, i);
        const char *dir = json_string_value(json_object_get(e, "dir"));
        const char *hex = json_string_value(json_object_get(e, "message"));
        if (!strcmp(dir, "client->server")) {
            hs_receive(&s, hex);
        } else {
            expect[n_expect++] = hex;
        }
    }
    assert_int_equal(s.n_out, n_expect);
    for (sent = 0; sent < s.n_out; sent++) {
        assert_hex(&s.out[sent], expect[sent]);
        loom_buf_free(&s.out[sent]);
    }
    loom_buf fin = {0};
    assert_int_equal(
        loom_doc_encode_state_as_update(s.doc, NULL, 0, &fin, NULL), 0);
    assert_hex(&fin, json_string_value(json_object_get(hs, "finalUpdate")));
    loom_buf_free(&fin);
    loom_awareness_free(s.aw);
    loom_doc_free(s.doc);
}

/* ---- hostile frames ----------------------------------------------------- */

static void expect_bad(const uint8_t *p, size_t n, int code)
{
    loom_msg m;
    memset(&m, 0xa5, sizeof(m));
    loom_msg before = m;
    loom_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(loom_msg_parse(p, n, &m, &err), code);
    assert_int_equal(err.code, code);
    assert_true(err.offset <= n);
    assert_true(err.message[0] != '\0');
    assert_memory_equal(&m, &before, sizeof(m));
}

static void test_truncations(void **state)
{
    (void)state;
    size_t i;
    json_t *v;
    int checked = 0;
    json_array_foreach(json_object_get(vectors, "vectors"), i, v)
    {
        const char *hex = json_string_value(json_object_get(v, "message"));
        if (!hex) {
            continue;
        }
        uint8_t *p;
        size_t n;
        assert_int_equal(hex_decode(hex, &p, &n), 0);
        loom_msg m;
        assert_int_equal(loom_msg_parse(p, n, &m, NULL), 0);
        for (size_t k = 0; k < n; k++) {
            expect_bad(p, k, LOOM_EMALFORMED);
            checked++;
        }
        /* one byte too many */
        uint8_t *q = malloc(n + 1);
        memcpy(q, p, n);
        q[n] = 0;
        expect_bad(q, n + 1, LOOM_EMALFORMED);
        free(q);
        free(p);
    }
    assert_true(checked > 40);
    /* the handshake's messages too */
    const json_t *tr =
        json_object_get(vec("websocket-handshake"), "transcript");
    json_array_foreach(tr, i, v)
    {
        uint8_t *p;
        size_t n;
        assert_int_equal(
            hex_decode(json_string_value(json_object_get(v, "message")), &p,
                       &n),
            0);
        for (size_t k = 0; k < n; k++) {
            expect_bad(p, k, LOOM_EMALFORMED);
        }
        free(p);
    }
}

static void test_unknown_types(void **state)
{
    (void)state;
    static const uint8_t outer4[] = {0x04};
    static const uint8_t outer_big[] = {0x80, 0x01};
    static const uint8_t sync3[] = {0x00, 0x03, 0x00};
    static const uint8_t auth1[] = {0x02, 0x01, 0x00};
    static const uint8_t bad_utf8[] = {0x02, 0x00, 0x01, 0xff};
    static const uint8_t huge_len[] = {0x00, 0x02, 0xff, 0xff, 0xff, 0x0f};
    static const uint8_t overlong[] = {0x00, 0x02, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0x7f};
    expect_bad(outer4, sizeof outer4, LOOM_EUNSUPPORTED);
    expect_bad(outer_big, sizeof outer_big, LOOM_EUNSUPPORTED);
    expect_bad(sync3, sizeof sync3, LOOM_EUNSUPPORTED);
    expect_bad(auth1, sizeof auth1, LOOM_EUNSUPPORTED);
    expect_bad(bad_utf8, sizeof bad_utf8, LOOM_EMALFORMED);
    expect_bad(huge_len, sizeof huge_len, LOOM_EMALFORMED);
    expect_bad(overlong, sizeof overlong, LOOM_EMALFORMED);
    loom_error err;
    loom_msg m;
    assert_int_equal(loom_msg_parse(sync3, sizeof sync3, &m, &err),
                     LOOM_EUNSUPPORTED);
    assert_int_equal(err.offset, 1);
    /* garbage: random bytes never crash and either parse or fail */
    srand(7);
    uint8_t buf[16];
    for (int t = 0; t < 20000; t++) {
        size_t n = (size_t)(rand() % 16);
        for (size_t k = 0; k < n; k++) {
            buf[k] = (uint8_t)(rand() % 6 == 0 ? rand() : rand() % 5);
        }
        int rc = loom_msg_parse(buf, n, &m, NULL);
        assert_true(rc == 0 || rc == LOOM_EMALFORMED ||
                    rc == LOOM_EUNSUPPORTED);
        if (rc == 0) {
            assert_true(m.payload + m.payload_len <= buf + n ||
                        m.payload_len == 0);
        }
    }
}

static void test_sync_handle_bad(void **state)
{
    (void)state;
    size_t ulen;
    uint8_t *u = vhex("sync-step1", "docUpdate", &ulen);
    loom_doc *d = doc_with(9, u, ulen);
    loom_buf before = {0}, after = {0}, reply = {0};
    assert_int_equal(loom_doc_encode_state_as_update(d, NULL, 0, &before, NULL),
                     0);
    /* an update cut short, and one with a byte flipped near its end */
    for (size_t cut = 1; cut < ulen; cut++) {
        loom_buf msg = {0};
        assert_int_equal(loom_msg_write_sync(&msg, LOOM_SYNC_UPDATE, u, cut),
                         0);
        loom_msg m;
        assert_int_equal(loom_msg_parse(msg.data, msg.len, &m, NULL), 0);
        loom_error err;
        int rc = loom_sync_handle(d, &m, NULL, &reply, &err);
        if (rc) {
            assert_int_equal(rc, LOOM_EMALFORMED);
        }
        loom_buf_free(&msg);
    }
    /* a step 1 whose state vector is bad gets no reply */
    static const uint8_t bad_sv[] = {0x00, 0x00, 0x02, 0x05, 0x01};
    static const uint8_t empty_sv[] = {0x00, 0x00, 0x00};
    loom_msg m;
    assert_int_equal(loom_msg_parse(bad_sv, sizeof bad_sv, &m, NULL), 0);
    assert_int_equal(loom_sync_handle(d, &m, NULL, &reply, NULL),
                     LOOM_EMALFORMED);
    assert_int_equal(loom_msg_parse(empty_sv, sizeof empty_sv, &m, NULL), 0);
    assert_int_equal(loom_sync_handle(d, &m, NULL, &reply, NULL),
                     LOOM_EMALFORMED);
    assert_int_equal(reply.len, 0);
    assert_int_equal(loom_doc_encode_state_as_update(d, NULL, 0, &after, NULL),
                     0);
    assert_int_equal(before.len, after.len);
    assert_memory_equal(before.data, after.data, before.len);
    /* not a sync message */
    static const uint8_t q[] = {0x03};
    assert_int_equal(loom_msg_parse(q, 1, &m, NULL), 0);
    assert_int_equal(loom_sync_handle(d, &m, NULL, &reply, NULL), LOOM_EINVAL);
    loom_buf_free(&before);
    loom_buf_free(&after);
    loom_doc_free(d);
    free(u);
}

/* ---- awareness rules ---------------------------------------------------- */

/* An awareness update of one entry (bytes in b->data, which must hold
 * 160 bytes; b is not a library buffer). */
typedef struct raw {
    uint8_t data[160];
    size_t len;
} raw;

static void put_varuint(raw *b, uint64_t x)
{
    do {
        b->data[b->len++] = (uint8_t)((x & 0x7f) | (x > 0x7f ? 0x80 : 0));
        x >>= 7;
    } while (x);
}

static void one(raw *b, uint64_t client, uint64_t clock, const char *js)
{
    b->len = 0;
    put_varuint(b, 1);
    put_varuint(b, client);
    put_varuint(b, clock);
    size_t n = strlen(js);
    assert_true(n < 128);
    put_varuint(b, n);
    memcpy(b->data + b->len, js, n);
    b->len += n;
}

typedef struct events {
    uint64_t client[16];
    loom_awareness_change what[16];
    size_t n;
} events;

static void record(void *ud, uint64_t client, loom_awareness_change what)
{
    events *e = ud;
    assert_true(e->n < 16);
    e->client[e->n] = client;
    e->what[e->n++] = what;
}

static size_t
apply_bytes(loom_awareness *aw, const uint8_t *p, size_t n, events *ev)
{
    ev->n = 0;
    assert_int_equal(loom_awareness_apply(aw, p, n, 100, record, ev, NULL), 0);
    return ev->n;
}

static size_t apply(loom_awareness *aw, const raw *b, events *ev)
{
    return apply_bytes(aw, b->data, b->len, ev);
}

static void test_awareness_rules(void **state)
{
    (void)state;
    loom_awareness *aw;
    assert_int_equal(loom_awareness_new(NULL, 1, 0, &aw), 0);
    assert_int_equal(loom_awareness_set_local(aw, NULL, 0, 0), 0);
    assert_int_equal(loom_awareness_count(aw), 0);
    raw b;
    events ev;
    uint64_t clock;
    const char *js;
    size_t jl;

    /* clock 0 from an unknown client is not newer than "none" (0) */
    one(&b, 7, 0, "{}");
    assert_int_equal(apply(aw, &b, &ev), 0);
    assert_int_equal(loom_awareness_count(aw), 0);
    one(&b, 7, 1, "{\"a\":1}");
    assert_int_equal(apply(aw, &b, &ev), 1);
    assert_int_equal(ev.what[0], LOOM_AWARENESS_ADDED);
    /* same clock, a state: refused; older: refused */
    one(&b, 7, 1, "{\"a\":2}");
    assert_int_equal(apply(aw, &b, &ev), 0);
    one(&b, 7, 2, "{\"a\":1}");
    assert_int_equal(apply(aw, &b, &ev), 1);
    assert_int_equal(ev.what[0], LOOM_AWARENESS_UPDATED);
    one(&b, 7, 3, "{\"a\": 2}");
    assert_int_equal(apply(aw, &b, &ev), 1);
    assert_int_equal(ev.what[0], LOOM_AWARENESS_CHANGED);
    assert_int_equal(loom_awareness_get(aw, 7, &js, &jl, &clock), 0);
    assert_string_equal(js, "{\"a\":2}");
    assert_int_equal(clock, 3);
    /* equal clock with null removes (a server's removal of a timed-out
     * or disconnected peer) */
    one(&b, 7, 3, "null");
    assert_int_equal(apply(aw, &b, &ev), 1);
    assert_int_equal(ev.what[0], LOOM_AWARENESS_REMOVED);
    assert_int_equal(loom_awareness_count(aw), 0);
    /* ... but not twice, and a stale state replay stays refused */
    one(&b, 7, 3, "null");
    assert_int_equal(apply(aw, &b, &ev), 0);
    one(&b, 7, 3, "{\"a\":2}");
    assert_int_equal(apply(aw, &b, &ev), 0);
    /* a newer null for a client without a state is still a removal event
     * (y-protocols reports it since the client has a record) */
    one(&b, 7, 4, "null");
    assert_int_equal(apply(aw, &b, &ev), 1);
    assert_int_equal(ev.what[0], LOOM_AWARENESS_REMOVED);
    /* a state after a removal: a known client, so "updated", not "added" */
    one(&b, 7, 5, "{}");
    assert_int_equal(apply(aw, &b, &ev), 1);
    assert_int_equal(ev.what[0], LOOM_AWARENESS_CHANGED);
    /* a first null from an unknown client: recorded, no event */
    one(&b, 8, 4, "null");
    assert_int_equal(apply(aw, &b, &ev), 0);
    one(&b, 8, 4, "{}");
    assert_int_equal(apply(aw, &b, &ev), 0);

    /* removal by the server: same clock, null, accepted by a peer */
    events rm = {0};
    uint64_t who[2] = {7, 99};
    assert_int_equal(loom_awareness_remove(aw, who, 2, 200, record, &rm), 0);
    assert_int_equal(rm.n, 1);
    assert_int_equal(rm.client[0], 7);
    loom_buf enc = {0};
    assert_int_equal(loom_awareness_encode(aw, who, 2, &enc), 0);
    char *h = hex_encode(enc.data, enc.len);
    assert_string_equal(h, "010705046e756c6c"); /* 1 entry: 7, clock 5 */
    free(h);
    loom_awareness *peer;
    assert_int_equal(loom_awareness_new(NULL, 50, 0, &peer), 0);
    one(&b, 7, 5, "{\"x\":true}");
    assert_int_equal(apply(peer, &b, &ev), 1);
    assert_int_equal(apply_bytes(peer, enc.data, enc.len, &ev), 1);
    assert_int_equal(ev.what[0], LOOM_AWARENESS_REMOVED);
    assert_int_equal(loom_awareness_get(peer, 7, NULL, NULL, NULL),
                     LOOM_ENOTFOUND);
    loom_buf_free(&enc);

    /* our own state is defended: a peer's null bumps our clock */
    one(&b, 50, 0, "null");
    assert_int_equal(apply(peer, &b, &ev), 1);
    assert_int_equal(loom_awareness_get(peer, 50, &js, &jl, &clock), 0);
    assert_string_equal(js, "{}");
    assert_int_equal(clock, 1);
    loom_awareness_free(peer);

    /* timeouts: remote states not renewed for 30 s go */
    one(&b, 9, 1, "[1,2]");
    ev.n = 0;
    assert_int_equal(
        loom_awareness_apply(aw, b.data, b.len, 1000, record, &ev, NULL), 0);
    ev.n = 0;
    assert_int_equal(loom_awareness_expire(aw, 30999, 30000, record, &ev), 0);
    assert_int_equal(ev.n, 0);
    assert_int_equal(loom_awareness_expire(aw, 31000, 30000, record, &ev), 0);
    assert_int_equal(ev.n, 1);
    assert_int_equal(ev.client[0], 9);
    assert_int_equal(loom_awareness_count(aw), 0);
    loom_awareness_free(aw);
}

static void test_awareness_bad(void **state)
{
    (void)state;
    loom_awareness *aw;
    assert_int_equal(loom_awareness_new(NULL, 1, 0, &aw), 0);
    /* two entries, the second not JSON: nothing applied */
    static const uint8_t two[] = {0x02, 0x05, 0x01, 0x02, '{', '}',
                                  0x06, 0x01, 0x02, '{',  ','};
    loom_error err;
    events ev = {0};
    assert_int_equal(
        loom_awareness_apply(aw, two, sizeof two, 1, record, &ev, &err),
        LOOM_EMALFORMED);
    assert_int_equal(err.offset, 10);
    assert_int_equal(ev.n, 0);
    assert_int_equal(loom_awareness_count(aw), 1);
    assert_int_equal(loom_awareness_get(aw, 5, NULL, NULL, NULL),
                     LOOM_ENOTFOUND);
    /* every truncation of a valid update fails and changes nothing */
    static const uint8_t ok[] = {0x02, 0x05, 0x01, 0x02, '{', '}', 0x06,
                                 0x01, 0x04, 'n',  'u',  'l', 'l'};
    for (size_t k = 0; k < sizeof ok; k++) {
        assert_int_equal(loom_awareness_apply(aw, ok, k, 1, record, &ev, &err),
                         LOOM_EMALFORMED);
        assert_true(err.offset <= k);
    }
    assert_int_equal(ev.n, 0);
    /* trailing bytes; an entry count larger than the input can hold */
    static const uint8_t trailing[] = {0x00, 0x00};
    static const uint8_t many[] = {0xff, 0xff, 0x03, 0x01};
    assert_int_equal(loom_awareness_apply(aw, trailing, 2, 1, NULL, NULL, NULL),
                     LOOM_EMALFORMED);
    assert_int_equal(loom_awareness_apply(aw, many, 4, 1, NULL, NULL, NULL),
                     LOOM_EMALFORMED);
    /* bad local states */
    assert_int_equal(loom_awareness_set_local(aw, "{", 1, 1), LOOM_EMALFORMED);
    assert_int_equal(
        loom_awareness_apply(aw, ok, sizeof ok, 1, record, &ev, NULL), 0);
    assert_int_equal(ev.n, 1);
    loom_awareness_free(aw);
}

/* Every allocation failure during new/apply/encode: an error, no leak, no
 * change; then success. */
static void test_awareness_oom(void **state)
{
    (void)state;
    static const uint8_t ok[] = {0x02, 0x05, 0x01, 0x07, '{',  '"',  'a', '"',
                                 ':',  '1',  '}',  0x06, 0x01, 0x02, '[', ']'};
    int successes = 0;
    for (long fail = 1; fail < 200 && successes < 3; fail++) {
        test_alloc c;
        loom_allocator a = test_alloc_init(&c);
        c.fail_at = fail;
        loom_awareness *aw = NULL;
        int rc = loom_awareness_new(&a, 1, 0, &aw);
        if (rc == 0) {
            loom_buf before = {0};
            before.alloc = loom_allocator_default();
            int brc = loom_awareness_encode_all(aw, &before);
            rc = loom_awareness_apply(aw, ok, sizeof ok, 1, NULL, NULL, NULL);
            if (rc) {
                assert_int_equal(rc, LOOM_ENOMEM);
                loom_buf now = {0};
                now.alloc = loom_allocator_default();
                if (brc == 0) {
                    assert_int_equal(loom_awareness_encode_all(aw, &now), 0);
                    assert_int_equal(now.len, before.len);
                    assert_memory_equal(now.data, before.data, now.len);
                }
                loom_buf_free(&now);
            } else {
                assert_int_equal(loom_awareness_count(aw), 3);
                successes++;
            }
            loom_buf_free(&before);
            loom_awareness_free(aw);
        } else {
            assert_int_equal(rc, LOOM_ENOMEM);
        }
        assert_int_equal(c.live_blocks, 0);
        assert_int_equal(c.size_mismatches, 0);
    }
    assert_true(successes >= 1);
}

/* tests/vectors/awareness-random.json (real y-protocols): every step's
 * events and the receiver's encodings, byte for byte. */
typedef struct yp_events {
    json_t *added, *updated, *removed, *changed;
} yp_events;

static void yp_record(void *ud, uint64_t client, loom_awareness_change what)
{
    yp_events *e = ud;
    json_t *id = json_integer((json_int_t)client);
    switch (what) {
    case LOOM_AWARENESS_ADDED:
        json_array_append(e->added, id);
        break;
    case LOOM_AWARENESS_CHANGED:
        json_array_append(e->changed, id);
        json_array_append(e->updated, id);
        break;
    case LOOM_AWARENESS_UPDATED:
        json_array_append(e->updated, id);
        break;
    default:
        json_array_append(e->removed, id);
        break;
    }
    json_decref(id);
}

static void test_awareness_yprotocols(void **state)
{
    (void)state;
    char path[2048];
    snprintf(path, sizeof path, "%s/awareness-random.json", LOOM_VECTORS_DIR);
    json_error_t je;
    json_t *v = tjson_load_file(path, 0, &je);
    assert_non_null(v);
    loom_awareness *aw;
    assert_int_equal(
        loom_awareness_new(
            NULL,
            (uint64_t)json_integer_value(json_object_get(v, "receiverClient")),
            0, &aw),
        0);
    size_t i;
    json_t *step;
    size_t steps = 0;
    json_array_foreach(json_object_get(v, "steps"), i, step)
    {
        uint8_t *u;
        size_t n;
        assert_int_equal(
            hex_decode(json_string_value(json_object_get(step, "update")), &u,
                       &n),
            0);
        yp_events e = {json_array(), json_array(), json_array(), json_array()};
        assert_int_equal(loom_awareness_apply(aw, u, n, i, yp_record, &e, NULL),
                         0);
        free(u);
        const json_t *ue =
            json_object_get(json_object_get(step, "events"), "update");
        const json_t *ce =
            json_object_get(json_object_get(step, "events"), "change");
        if (!json_equal(e.added, json_object_get(ue, "added")) ||
            !json_equal(e.updated, json_object_get(ue, "updated")) ||
            !json_equal(e.removed, json_object_get(ue, "removed")) ||
            !json_equal(e.changed, json_object_get(ce, "updated"))) {
            fail_msg("step %zu: events differ from y-protocols", i);
        }
        json_decref(e.added);
        json_decref(e.updated);
        json_decref(e.removed);
        json_decref(e.changed);
        /* every client with a record, in y-protocols' meta order */
        const json_t *mc = json_object_get(step, "metaClients");
        uint64_t ids[64];
        assert_true(json_array_size(mc) <= 64);
        for (size_t k = 0; k < json_array_size(mc); k++) {
            ids[k] = (uint64_t)json_integer_value(json_array_get(mc, k));
        }
        loom_buf b = {0};
        assert_int_equal(
            loom_awareness_encode(aw, ids, json_array_size(mc), &b), 0);
        assert_hex(&b, json_string_value(json_object_get(step, "known")));
        loom_buf_free(&b);
        /* every state, in the order y-protocols' Map holds them */
        const char *st = json_string_value(json_object_get(step, "states"));
        int rc = loom_awareness_encode_all(aw, &b);
        if (st[0]) {
            assert_int_equal(rc, 0);
            assert_hex(&b, st);
        } else {
            assert_int_equal(rc, LOOM_ENOTFOUND);
        }
        loom_buf_free(&b);
        steps++;
    }
    assert_true(steps >= 300);
    loom_awareness_free(aw);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_vectors),
        cmocka_unit_test(test_other_vectors),
        cmocka_unit_test(test_awareness_vectors),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_sync_handle_bad),
        cmocka_unit_test(test_awareness_rules),
        cmocka_unit_test(test_awareness_bad),
        cmocka_unit_test(test_awareness_oom),
        cmocka_unit_test(test_awareness_yprotocols),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
