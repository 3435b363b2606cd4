/* SPDX-License-Identifier: MIT */
/*
 * tests/diff/driver.c: the loom side of the differential test against the
 * real yjs (tests/diff/diff.mjs). A line protocol on stdin/stdout: each
 * input line is one JSON command, each answered by exactly one JSON line.
 * Ops are the vector ops (tests/vectors/README.md), run by tools/common
 * vecops; every update a document emits while a command runs
 * (loom_doc_on_update) is returned with the answer, so the script can
 * compare it byte for byte with what yjs emitted.
 *
 * Commands ("cmd"), all answering {"ok":true,...} or {"ok":false,"error"}:
 *   init   {docs:[{id,clientID,gc}], roots:{name:kind}}  replaces all docs
 *   op     {op:<vector op>}        -> {emitted:[{doc,update}], transfer?}
 *   apply  {doc, update}           -> {emitted}
 *   encode {doc, sv?}              -> {update}   encodeStateAsUpdate
 *   sv     {doc}                   -> {sv}
 *   json   {doc}                   -> {json:{root: TJSON}}
 *   delta  {doc, path}             -> {delta}    Text.toDelta()
 *   state  {doc}                   -> {update, sv, json, pending}
 *   merge  {updates:[hex]}         -> {update}   mergeUpdates
 *   diff   {update, sv}            -> {update}   diffUpdate
 *   svu    {update}                -> {sv}       encodeStateVectorFromUpdate
 *   quit
 * Binary data travels as lowercase hex. A failing library call answers
 * ok:false with the error and code, and the emitted updates so far.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "loom/loom.h"
#include "tjson.h"
#include "vecops.h"

/* The documents of the current session and what they emitted. */
struct driver {
    vec_env env;
    bool has_env;
    json_t *case_json; /* keeps env.roots alive */
    json_t *emitted;   /* [{doc, update}] of the running command */
};

static void on_update(void *ud,
                      loom_doc *doc,
                      const uint8_t *update,
                      size_t len,
                      const loom_txn *txn)
{
    (void)txn;
    struct driver *d = ud;
    char *h = hex_encode(update, len);
    json_t *rec = json_object();
    json_object_set_new(rec, "doc", json_integer(vec_doc_id(&d->env, doc)));
    json_object_set_new(rec, "update", json_string(h ? h : ""));
    json_array_append_new(d->emitted, rec);
    free(h);
}

static void driver_reset(struct driver *d)
{
    if (d->has_env) {
        vec_env_free(&d->env);
    }
    d->has_env = false;
    json_decref(d->case_json);
    d->case_json = NULL;
}

static json_t *fail(const char *msg, int code)
{
    json_t *r = json_object();
    json_object_set_new(r, "ok", json_false());
    json_object_set_new(r, "error", json_string(msg));
    json_object_set_new(r, "code", json_integer(code));
    return r;
}

static json_t *ok(void)
{
    json_t *r = json_object();
    json_object_set_new(r, "ok", json_true());
    return r;
}

static json_t *hex_json(const loom_buf *b)
{
    char *h = hex_encode(b->data, b->len);
    json_t *s = json_string(h ? h : "");
    free(h);
    return s;
}

/* Decodes an optional hex member; *p is NULL (and *n 0) when absent. */
static int
hex_member(const json_t *cmd, const char *key, uint8_t **p, size_t *n)
{
    const json_t *j = json_object_get(cmd, key);
    *p = NULL;
    *n = 0;
    if (!j || json_is_null(j)) {
        return 0;
    }
    if (!json_is_string(j)) {
        return LOOM_EINVAL;
    }
    return hex_decode(json_string_value(j), p, n);
}

static loom_doc *doc_of(struct driver *d, const json_t *cmd)
{
    if (!d->has_env) {
        return NULL;
    }
    return vec_doc(&d->env, json_integer_value(json_object_get(cmd, "doc")));
}

static json_t *cmd_init(struct driver *d, const json_t *cmd)
{
    driver_reset(d);
    d->case_json = json_deep_copy(cmd);
    int rc = vec_env_init(&d->env, d->case_json);
    d->has_env = true;
    if (rc) {
        driver_reset(d);
        return fail("cannot create the docs", rc);
    }
    for (size_t i = 0; i < d->env.n; i++) {
        rc = loom_doc_on_update(d->env.docs[i], on_update, d, NULL);
        if (rc) {
            driver_reset(d);
            return fail("loom_doc_on_update failed", rc);
        }
    }
    return ok();
}

static json_t *cmd_op(struct driver *d, const json_t *op)
{
    if (!d->has_env) {
        return fail("no docs (init first)", LOOM_ESTATE);
    }
    char err[256] = "";
    loom_buf transfer = {0};
    int rc = vec_run_op(&d->env, op, &transfer, err, sizeof(err));
    json_t *r = rc ? fail(err[0] ? err : loom_strerror(rc), rc) : ok();
    const char *kind = json_string_value(json_object_get(op, "op"));
    if (!rc && kind && !strcmp(kind, "sync")) {
        json_object_set_new(r, "transfer", hex_json(&transfer));
    }
    loom_buf_free(&transfer);
    return r;
}

static json_t *cmd_encode(struct driver *d, const json_t *cmd)
{
    loom_doc *doc = doc_of(d, cmd);
    if (!doc) {
        return fail("unknown doc", LOOM_EINVAL);
    }
    uint8_t *sv;
    size_t n;
    if (hex_member(cmd, "sv", &sv, &n)) {
        return fail("bad sv hex", LOOM_EINVAL);
    }
    loom_buf b = {0};
    loom_error le;
    int rc = loom_doc_encode_state_as_update(doc, sv, n, &b, &le);
    free(sv);
    if (rc) {
        return fail(loom_strerror(rc), rc);
    }
    json_t *r = ok();
    json_object_set_new(r, "update", hex_json(&b));
    loom_buf_free(&b);
    return r;
}

static json_t *cmd_sv(struct driver *d, const json_t *cmd)
{
    loom_doc *doc = doc_of(d, cmd);
    if (!doc) {
        return fail("unknown doc", LOOM_EINVAL);
    }
    loom_buf b = {0};
    int rc = loom_doc_encode_state_vector(doc, &b);
    if (rc) {
        return fail(loom_strerror(rc), rc);
    }
    json_t *r = ok();
    json_object_set_new(r, "sv", hex_json(&b));
    loom_buf_free(&b);
    return r;
}

/* {root: toJSON()} for the roots of the session, as TJSON. */
static int doc_json(struct driver *d, loom_doc *doc, json_t **out)
{
    json_t *o = json_object();
    const char *name;
    json_t *kind;
    json_object_foreach((json_t *)d->env.roots, name, kind)
    {
        loom_type *t;
        loom_any *v;
        int rc = loom_doc_get(doc, name, strlen(name),
                              vec_kind(json_string_value(kind)), &t);
        if (!rc) {
            rc = loom_type_to_any(t, &v);
        }
        if (rc) {
            json_decref(o);
            return rc;
        }
        json_t *j = tjson_from_any(v);
        loom_any_free(v);
        if (!j) {
            json_decref(o);
            return LOOM_ENOMEM;
        }
        json_object_set_new(o, name, j);
    }
    *out = o;
    return 0;
}

static json_t *cmd_json(struct driver *d, const json_t *cmd)
{
    loom_doc *doc = doc_of(d, cmd);
    if (!doc) {
        return fail("unknown doc", LOOM_EINVAL);
    }
    json_t *j;
    int rc = doc_json(d, doc, &j);
    if (rc) {
        return fail("toJSON failed", rc);
    }
    json_t *r = ok();
    json_object_set_new(r, "json", j);
    return r;
}

static json_t *cmd_delta(struct driver *d, const json_t *cmd)
{
    loom_doc *doc = doc_of(d, cmd);
    if (!doc) {
        return fail("unknown doc", LOOM_EINVAL);
    }
    loom_type *t;
    int rc = vec_resolve(&d->env, doc, json_object_get(cmd, "path"), &t);
    if (rc) {
        return fail("cannot resolve path", rc);
    }
    loom_any *v;
    rc = loom_text_to_delta(t, &v);
    if (rc) {
        return fail("toDelta failed", rc);
    }
    json_t *j = tjson_from_any(v);
    loom_any_free(v);
    if (!j) {
        return fail("toDelta: cannot convert", LOOM_ENOMEM);
    }
    json_t *r = ok();
    json_object_set_new(r, "delta", j);
    return r;
}

static json_t *cmd_state(struct driver *d, const json_t *cmd)
{
    loom_doc *doc = doc_of(d, cmd);
    if (!doc) {
        return fail("unknown doc", LOOM_EINVAL);
    }
    loom_buf u = {0}, sv = {0};
    json_t *j = NULL;
    int rc = loom_doc_encode_state_as_update(doc, NULL, 0, &u, NULL);
    if (!rc) {
        rc = loom_doc_encode_state_vector(doc, &sv);
    }
    if (!rc) {
        rc = doc_json(d, doc, &j);
    }
    json_t *r = rc ? fail("state failed", rc) : ok();
    if (!rc) {
        json_object_set_new(r, "update", hex_json(&u));
        json_object_set_new(r, "sv", hex_json(&sv));
        json_object_set_new(r, "json", j);
        json_object_set_new(r, "pending", json_integer(loom_doc_pending(doc)));
    }
    loom_buf_free(&u);
    loom_buf_free(&sv);
    return r;
}

static json_t *cmd_merge(const json_t *cmd)
{
    const json_t *list = json_object_get(cmd, "updates");
    size_t n = json_array_size(list);
    uint8_t **ups = calloc(n ? n : 1, sizeof(*ups));
    size_t *lens = calloc(n ? n : 1, sizeof(*lens));
    json_t *r = NULL;
    if (!ups || !lens) {
        r = fail("out of memory", LOOM_ENOMEM);
    }
    for (size_t i = 0; !r && i < n; i++) {
        const json_t *h = json_array_get(list, i);
        if (!json_is_string(h) ||
            hex_decode(json_string_value(h), &ups[i], &lens[i])) {
            r = fail("bad update hex", LOOM_EINVAL);
        }
    }
    if (!r) {
        loom_buf b = {0};
        loom_error le;
        int rc = loom_update_merge(NULL, (const uint8_t *const *)ups, lens, n,
                                   &b, &le);
        r = rc ? fail(loom_strerror(rc), rc) : ok();
        if (!rc) {
            json_object_set_new(r, "update", hex_json(&b));
        }
        loom_buf_free(&b);
    }
    for (size_t i = 0; ups && i < n; i++) {
        free(ups[i]);
    }
    free(ups);
    free(lens);
    return r;
}

static json_t *cmd_diff(const json_t *cmd)
{
    uint8_t *u, *sv;
    size_t un, svn;
    if (hex_member(cmd, "update", &u, &un)) {
        return fail("bad update hex", LOOM_EINVAL);
    }
    if (hex_member(cmd, "sv", &sv, &svn)) {
        free(u);
        return fail("bad sv hex", LOOM_EINVAL);
    }
    loom_buf b = {0};
    loom_error le;
    int rc = loom_update_diff(NULL, u, un, sv, svn, &b, &le);
    json_t *r = rc ? fail(loom_strerror(rc), rc) : ok();
    if (!rc) {
        json_object_set_new(r, "update", hex_json(&b));
    }
    loom_buf_free(&b);
    free(u);
    free(sv);
    return r;
}

static json_t *cmd_svu(const json_t *cmd)
{
    uint8_t *u;
    size_t un;
    if (hex_member(cmd, "update", &u, &un)) {
        return fail("bad update hex", LOOM_EINVAL);
    }
    loom_buf b = {0};
    loom_error le;
    int rc = loom_update_state_vector(NULL, u, un, &b, &le);
    json_t *r = rc ? fail(loom_strerror(rc), rc) : ok();
    if (!rc) {
        json_object_set_new(r, "sv", hex_json(&b));
    }
    loom_buf_free(&b);
    free(u);
    return r;
}

/* Runs one command; *quit is set by "quit". Returns a new answer object. */
static json_t *dispatch(struct driver *d, const json_t *cmd, bool *quit)
{
    const char *c = json_string_value(json_object_get(cmd, "cmd"));
    if (!c) {
        return fail("missing cmd", LOOM_EINVAL);
    }
    if (!strcmp(c, "init")) {
        return cmd_init(d, cmd);
    }
    if (!strcmp(c, "op")) {
        return cmd_op(d, json_object_get(cmd, "op"));
    }
    if (!strcmp(c, "apply")) {
        json_t *op = json_pack("{s:s, s:O, s:O}", "op", "apply", "doc",
                               json_object_get(cmd, "doc"), "update",
                               json_object_get(cmd, "update"));
        json_t *r = op ? cmd_op(d, op) : fail("bad apply command", LOOM_EINVAL);
        json_decref(op);
        return r;
    }
    if (!strcmp(c, "encode")) {
        return cmd_encode(d, cmd);
    }
    if (!strcmp(c, "sv")) {
        return cmd_sv(d, cmd);
    }
    if (!strcmp(c, "json")) {
        return cmd_json(d, cmd);
    }
    if (!strcmp(c, "delta")) {
        return cmd_delta(d, cmd);
    }
    if (!strcmp(c, "state")) {
        return cmd_state(d, cmd);
    }
    if (!strcmp(c, "merge")) {
        return cmd_merge(cmd);
    }
    if (!strcmp(c, "diff")) {
        return cmd_diff(cmd);
    }
    if (!strcmp(c, "svu")) {
        return cmd_svu(cmd);
    }
    if (!strcmp(c, "quit")) {
        *quit = true;
        return ok();
    }
    return fail("unknown cmd", LOOM_EINVAL);
}

int main(void)
{
    struct driver d;
    memset(&d, 0, sizeof(d));
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool quit = false;
    while (!quit && (n = getline(&line, &cap, stdin)) > 0) {
        json_error_t je;
        json_t *cmd = tjson_loadb(line, (size_t)n, 0, &je);
        json_t *r;
        d.emitted = json_array();
        if (!cmd) {
            char msg[300];
            snprintf(msg, sizeof(msg), "bad JSON: %s", je.text);
            r = fail(msg, LOOM_EINVAL);
        } else {
            r = dispatch(&d, cmd, &quit);
        }
        if (r) {
            json_object_set(r, "emitted", d.emitted);
        }
        json_decref(d.emitted);
        d.emitted = NULL;
        json_decref(cmd);
        char *out = r ? json_dumps(r, JSON_COMPACT) : NULL;
        json_decref(r);
        if (!out) {
            fputs("{\"ok\":false,\"error\":\"cannot write the "
                  "answer\",\"code\":-1}\n",
                  stdout);
        } else {
            fputs(out, stdout);
            fputc('\n', stdout);
            free(out);
        }
        fflush(stdout);
    }
    free(line);
    driver_reset(&d);
    return 0;
}
