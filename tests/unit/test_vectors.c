/*
 * test_vectors.c: replays every vector of tests/vectors (made by the real
 * yjs 13.6.33) through the library. Bytes mode: each doc is rebuilt from the
 * bytes it received (its own emitted updates, sync transfers and applied
 * updates) and must reach the same encodeStateAsUpdate bytes, state vector
 * and JSON. Checks: encodeStateAsUpdate against a state vector, pending
 * updates, snapshots. Op mode: the ops are run through the API and every
 * emitted update must match byte for byte.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loom/loom.h"
#include "tjson.h"
#include "vecops.h"

static int failures;

static void vfail(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s: ", file);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

static uint8_t *hex(const json_t *j, size_t *len)
{
    uint8_t *p = NULL;
    *len = 0;
    if (!json_is_string(j) || hex_decode(json_string_value(j), &p, len))
        return NULL;
    return p;
}

static int
apply_hex(loom_doc *d, const json_t *h, const char *file, const char *what)
{
    size_t n;
    uint8_t *p = hex(h, &n);
    if (!p && n)
        return -1;
    loom_error err;
    int rc = loom_doc_apply_update(d, p, n, NULL, &err);
    if (rc)
        vfail(file, "%s: apply failed: %s at %zu (%s)", what, loom_strerror(rc),
              err.offset, err.message);
    free(p);
    return rc;
}

static void expect_bytes(const char *file,
                         const char *what,
                         const loom_buf *got,
                         const json_t *want)
{
    size_t n;
    uint8_t *p = hex(want, &n);
    if (got->len != n || (n && memcmp(got->data, p, n))) {
        char *g = hex_encode(got->data, got->len);
        vfail(file, "%s:\n   got  %s\n   want %s", what, g,
              json_string_value(want));
        free(g);
    }
    free(p);
}

static void compare_json(const char *file,
                         const char *what,
                         loom_doc *d,
                         const json_t *roots,
                         const json_t *want)
{
    const char *name;
    json_t *kind;
    json_object_foreach((json_t *)roots, name, kind)
    {
        loom_type *t;
        if (loom_doc_get(d, name, strlen(name),
                         vec_kind(json_string_value(kind)), &t)) {
            vfail(file, "%s: root %s", what, name);
            continue;
        }
        const json_t *w = json_object_get(want, name);
        if (json_is_string(w) &&
            !strcmp(json_string_value(w), "[object Object]"))
            continue;
        loom_any *v;
        if (loom_type_to_any(t, &v)) {
            vfail(file, "%s: toJSON of %s failed", what, name);
            continue;
        }
        json_t *g = tjson_from_any(v);
        loom_any_free(v);
        if (!w || !tjson_equal(g, w)) {
            char *gs = tjson_dumps_sorted(g),
                 *ws = w ? tjson_dumps_sorted(w) : NULL;
            vfail(file, "%s: json of %s:\n   got  %s\n   want %s", what, name,
                  gs, ws ? ws : "(none)");
            free(gs);
            free(ws);
        }
        json_decref(g);
    }
}

static void check_final(const char *file,
                        const char *what,
                        loom_doc *d,
                        const json_t *c,
                        const json_t *fin)
{
    loom_buf b = {0};
    if (loom_doc_encode_state_as_update(d, NULL, 0, &b, NULL))
        vfail(file, "%s: encode failed", what);
    else
        expect_bytes(file, what, &b, json_object_get(fin, "update"));
    loom_buf_free(&b);
    if (loom_doc_encode_state_vector(d, &b))
        vfail(file, "%s: sv failed", what);
    else
        expect_bytes(file, "state vector", &b,
                     json_object_get(fin, "stateVector"));
    loom_buf_free(&b);
    int pend = loom_doc_pending(d);
    if ((pend != 0) != json_is_true(json_object_get(fin, "hasPending")))
        vfail(file, "%s: pending flag %d", what, pend);
    compare_json(file, what, d, json_object_get(c, "roots"),
                 json_object_get(fin, "json"));
}

static void bytes_mode(const char *file, const json_t *c)
{
    size_t fi;
    json_t *fin;
    json_array_foreach(json_object_get(c, "final"), fi, fin)
    {
        json_int_t x = json_integer_value(json_object_get(fin, "doc"));
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id = 0x7ffffff7;
        o.gc = json_is_true(json_object_get(fin, "gc"));
        loom_doc *d;
        assert_int_equal(loom_doc_new(&o, &d), 0);
        size_t ti;
        json_t *rec;
        char what[64];
        snprintf(what, sizeof what, "bytes mode doc %d", (int)x);
        json_array_foreach(json_object_get(c, "trace"), ti, rec)
        {
            const json_t *op = json_object_get(rec, "op");
            const char *kind = json_string_value(json_object_get(op, "op"));
            if (!strcmp(kind, "sync")) {
                if (json_integer_value(json_object_get(op, "to")) == x)
                    apply_hex(d, json_object_get(rec, "transfer"), file,
                              "transfer");
            } else if (!strcmp(kind, "apply")) {
                if (json_integer_value(json_object_get(op, "doc")) == x)
                    apply_hex(d, json_object_get(op, "update"), file, "apply");
            } else if (json_integer_value(json_object_get(op, "doc")) == x) {
                size_t ei;
                json_t *em;
                json_array_foreach(json_object_get(rec, "emitted"), ei, em)
                {
                    if (json_integer_value(json_object_get(em, "doc")) == x)
                        apply_hex(d, json_object_get(em, "update"), file,
                                  "emitted");
                }
            }
        }
        check_final(file, what, d, c, fin);
        loom_doc_free(d);
    }
}

/* Updates emitted during one op, in order. */
typedef struct emitted {
    long long doc[64];
    char *hex[64];
    size_t n;
    const vec_env *env;
} emitted;

static void on_update(
    void *ud, loom_doc *d, const uint8_t *u, size_t len, const loom_txn *t)
{
    (void)t;
    emitted *em = ud;
    if (em->n == 64)
        return;
    em->doc[em->n] = vec_doc_id(em->env, d);
    em->hex[em->n++] = hex_encode(u, len);
}

static void emitted_clear(emitted *em)
{
    for (size_t i = 0; i < em->n; i++)
        free(em->hex[i]);
    em->n = 0;
}

static void op_mode(const char *file, const json_t *c)
{
    vec_env env;
    emitted em;
    memset(&em, 0, sizeof(em));
    em.env = &env;
    if (vec_env_init(&env, c)) {
        vfail(file, "op mode: cannot create docs");
        vec_env_free(&env);
        return;
    }
    for (size_t i = 0; i < env.n; i++)
        loom_doc_on_update(env.docs[i], on_update, &em, NULL);
    size_t ti;
    json_t *rec;
    json_array_foreach(json_object_get(c, "trace"), ti, rec)
    {
        const json_t *op = json_object_get(rec, "op");
        char err[200] = "";
        loom_buf transfer = {0};
        int rc = vec_run_op(&env, op, &transfer, err, sizeof err);
        if (rc) {
            vfail(file, "op mode: trace[%zu]: %s", ti, err);
            loom_buf_free(&transfer);
            emitted_clear(&em);
            break;
        }
        const json_t *want_tr = json_object_get(rec, "transfer");
        if (want_tr) {
            char what[64];
            snprintf(what, sizeof what, "op mode: trace[%zu] transfer", ti);
            expect_bytes(file, what, &transfer, want_tr);
        }
        loom_buf_free(&transfer);
        const json_t *want = json_object_get(rec, "emitted");
        size_t wn = json_array_size(want);
        bool ok = wn == em.n;
        for (size_t k = 0; ok && k < wn; k++) {
            const json_t *w = json_array_get(want, k);
            ok = json_integer_value(json_object_get(w, "doc")) == em.doc[k] &&
                 !strcmp(json_string_value(json_object_get(w, "update")),
                         em.hex[k]);
        }
        if (!ok) {
            vfail(file,
                  "op mode: trace[%zu] (%s) emitted %zu updates, want %zu", ti,
                  json_string_value(json_object_get(op, "op")), em.n, wn);
            for (size_t k = 0; k < em.n; k++)
                fprintf(stderr, "   got  doc %lld %s\n", em.doc[k], em.hex[k]);
            for (size_t k = 0; k < wn; k++)
                fprintf(stderr, "   want doc %lld %s\n",
                        (long long)json_integer_value(
                            json_object_get(json_array_get(want, k), "doc")),
                        json_string_value(json_object_get(
                            json_array_get(want, k), "update")));
        }
        emitted_clear(&em);
    }
    size_t fi;
    json_t *fin;
    json_array_foreach(json_object_get(c, "final"), fi, fin)
    {
        loom_doc *d =
            vec_doc(&env, json_integer_value(json_object_get(fin, "doc")));
        char what[64];
        snprintf(what, sizeof what, "op mode doc %d",
                 (int)json_integer_value(json_object_get(fin, "doc")));
        if (d)
            check_final(file, what, d, c, fin);
    }
    vec_env_free(&env);
}

static void run_file(const char *dir, const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t je;
    json_t *c = tjson_load_file(path, 0, &je);
    if (!c) {
        vfail(name, "cannot load: %s", je.text);
        return;
    }
    int before = failures;
    bytes_mode(name, c);
    if (!getenv("LOOM_VECTORS_BYTES_ONLY"))
        op_mode(name, c);
    if (getenv("LOOM_VECTORS_VERBOSE") || failures != before)
        fprintf(stderr, "%s %s\n", failures == before ? "ok  " : "FAIL", name);
    json_decref(c);
}

static void run_dir(const char *sub)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", LOOM_VECTORS_DIR, sub);
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    struct dirent *de;
    const char *only = getenv("LOOM_VECTOR");
    while ((de = readdir(dp))) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
            continue;
        if (only && !strstr(de->d_name, only))
            continue;
        run_file(dir, de->d_name);
    }
    closedir(dp);
}

static void test_cases(void **state)
{
    (void)state;
    failures = 0;
    run_dir("cases");
    assert_int_equal(failures, 0);
}

static void test_fuzz(void **state)
{
    (void)state;
    failures = 0;
    run_dir("fuzz");
    assert_int_equal(failures, 0);
}

/* A y-protocols sync message: messageSync(0), type, varUint8Array(p). */
static char *sync_message(int type, const loom_buf *payload)
{
    uint8_t *m = malloc(payload->len + 16);
    size_t n = 0;
    m[n++] = 0;
    m[n++] = (uint8_t)type;
    size_t len = payload->len;
    do {
        m[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
        len >>= 7;
    } while (len);
    if (payload->len)
        memcpy(m + n, payload->data, payload->len);
    char *h = hex_encode(m, n + payload->len);
    free(m);
    return h;
}

static loom_doc *doc_from(const char *const *hexes, size_t n)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 0x7ffffff7;
    loom_doc *d;
    assert_int_equal(loom_doc_new(&o, &d), 0);
    for (size_t i = 0; i < n; i++) {
        uint8_t *p;
        size_t len;
        assert_int_equal(hex_decode(hexes[i], &p, &len), 0);
        assert_int_equal(loom_doc_apply_update(d, p, len, NULL, NULL), 0);
        free(p);
    }
    return d;
}

static const char *
proto_field(const json_t *pv, const char *name, const char *field)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(pv, "vectors"), i, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "name")), name))
            return json_string_value(json_object_get(v, field));
    }
    return NULL;
}

/* protocol.json where it touches the core: the state vectors and updates
 * carried by sync step 1 / step 2 messages, and the documents of the
 * y-websocket handshake transcript. */
static void test_protocol(void **state)
{
    (void)state;
    char path[2048];
    snprintf(path, sizeof path, "%s/protocol.json", LOOM_VECTORS_DIR);
    json_error_t je;
    json_t *pv = tjson_load_file(path, 0, &je);
    assert_non_null(pv);

    const char *server_update = proto_field(pv, "sync-step1", "docUpdate");
    loom_doc *server = doc_from(&server_update, 1);
    loom_buf sv = {0}, u = {0};
    assert_int_equal(loom_doc_encode_state_vector(server, &sv), 0);
    char *m = sync_message(0, &sv);
    assert_string_equal(m, proto_field(pv, "sync-step1", "message"));
    free(m);
    loom_buf_free(&sv);

    uint8_t *csv;
    size_t csv_len;
    assert_int_equal(
        hex_decode(proto_field(pv, "sync-step2", "clientStateVector"), &csv,
                   &csv_len),
        0);
    assert_int_equal(
        loom_doc_encode_state_as_update(server, csv, csv_len, &u, NULL), 0);
    m = sync_message(1, &u);
    assert_string_equal(m, proto_field(pv, "sync-step2", "message"));
    free(m);
    free(csv);
    loom_buf_free(&u);
    loom_doc_free(server);

    /* the handshake: each side's step 1 and step 2 from its own doc */
    const char *s0 =
        proto_field(pv, "websocket-handshake", "serverDocInitialUpdate");
    const char *c0 =
        proto_field(pv, "websocket-handshake", "clientDocInitialUpdate");
    loom_doc *sd = doc_from(&s0, 1), *cd = doc_from(&c0, 1);
    size_t i;
    json_t *v, *hs = NULL;
    json_array_foreach(json_object_get(pv, "vectors"), i, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "name")),
                    "websocket-handshake"))
            hs = v;
    }
    const json_t *tr = json_object_get(hs, "transcript");
    loom_buf csv_b = {0}, ssv_b = {0};
    assert_int_equal(loom_doc_encode_state_vector(cd, &csv_b), 0);
    assert_int_equal(loom_doc_encode_state_vector(sd, &ssv_b), 0);
    m = sync_message(0, &csv_b);
    assert_string_equal(m, json_string_value(json_object_get(
                               json_array_get(tr, 0), "message")));
    free(m);
    m = sync_message(0, &ssv_b);
    assert_string_equal(m, json_string_value(json_object_get(
                               json_array_get(tr, 2), "message")));
    free(m);
    assert_int_equal(
        loom_doc_encode_state_as_update(sd, csv_b.data, csv_b.len, &u, NULL),
        0);
    m = sync_message(1, &u);
    assert_string_equal(m, json_string_value(json_object_get(
                               json_array_get(tr, 3), "message")));
    free(m);
    assert_int_equal(loom_doc_apply_update(cd, u.data, u.len, NULL, NULL), 0);
    loom_buf_free(&u);
    assert_int_equal(
        loom_doc_encode_state_as_update(cd, ssv_b.data, ssv_b.len, &u, NULL),
        0);
    m = sync_message(1, &u);
    assert_string_equal(m, json_string_value(json_object_get(
                               json_array_get(tr, 5), "message")));
    free(m);
    assert_int_equal(loom_doc_apply_update(sd, u.data, u.len, NULL, NULL), 0);
    loom_buf_free(&u);
    assert_int_equal(loom_doc_encode_state_as_update(sd, NULL, 0, &u, NULL), 0);
    char *fh = hex_encode(u.data, u.len);
    assert_string_equal(fh,
                        json_string_value(json_object_get(hs, "finalUpdate")));
    free(fh);
    loom_buf_free(&u);
    loom_buf_free(&csv_b);
    loom_buf_free(&ssv_b);
    loom_doc_free(sd);
    loom_doc_free(cd);
    json_decref(pv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_protocol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
