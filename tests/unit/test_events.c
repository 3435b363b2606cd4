/*
 * test_events.c: observer events against the test vectors. Every case of
 * tests/vectors/cases is replayed in op mode with an observeDeep subscriber
 * on every root of every doc, as the generator's observed run did, and the
 * events received during each op (path, target kind, delta, keys) must equal
 * the trace record's `events`, in the order the deep observers got them.
 * Only events are compared here: bytes are test_vectors.c's job (and the
 * observed run's bytes may differ, see `observedRun` in the vectors README).
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

/* Mismatching records printed per case; the rest are only counted. */
#define MAX_REPORTS 3

/* The events of the op being run, as TJSON, shared by every observer, and
 * the updates emitted meanwhile. */
typedef struct recorder {
    json_t *events;
    int errors; /* an accessor failed */
    json_t *emitted;
} recorder;

/* One observeDeep subscription: a root of a doc. */
typedef struct root_obs {
    recorder *rec;
    long long doc;
    const char *root;
} root_obs;

static const char *kind_name(loom_type_kind k)
{
    switch (k) {
    case LOOM_TYPE_MAP:
        return "map";
    case LOOM_TYPE_ARRAY:
        return "array";
    case LOOM_TYPE_TEXT:
        return "text";
    case LOOM_TYPE_XML_FRAGMENT:
        return "xmlfragment";
    case LOOM_TYPE_XML_ELEMENT:
        return "xmlelement";
    case LOOM_TYPE_XML_TEXT:
        return "xmltext";
    case LOOM_TYPE_XML_HOOK:
        return "xmlhook";
    default:
        return "untyped";
    }
}

/* An event in the generator's shape (describeEvent in gen.mjs): delta for
 * texts (YTextEvent) and for arrays and XML fragments/elements; keys when
 * some key changed, and always for maps (XmlHook is a Y.Map). */
static json_t *event_json(const root_obs *o, const loom_event *ev)
{
    loom_type_kind k = loom_type_kind_of(loom_event_target(ev));
    json_t *j = json_object();
    json_object_set_new(j, "doc", json_integer(o->doc));
    const loom_any *v;
    json_t *path = json_array();
    json_array_append_new(path, json_string(o->root));
    if (loom_event_path(ev, &v) == LOOM_OK) {
        for (size_t i = 0; i < loom_any_count(v); i++)
            json_array_append_new(path,
                                  tjson_from_any(loom_any_array_get(v, i)));
    } else {
        o->rec->errors++;
    }
    json_object_set_new(j, "path", path);
    json_object_set_new(j, "target", json_string(kind_name(k)));
    if (k == LOOM_TYPE_TEXT || k == LOOM_TYPE_XML_TEXT ||
        k == LOOM_TYPE_ARRAY || k == LOOM_TYPE_XML_FRAGMENT ||
        k == LOOM_TYPE_XML_ELEMENT) {
        if (loom_event_delta(ev, &v) == LOOM_OK)
            json_object_set_new(j, "delta", tjson_from_any(v));
        else
            o->rec->errors++;
    }
    if (loom_event_keys(ev, &v) == LOOM_OK) {
        if (loom_any_count(v) > 0 || k == LOOM_TYPE_MAP ||
            k == LOOM_TYPE_XML_HOOK)
            json_object_set_new(j, "keys", tjson_from_any(v));
    } else {
        o->rec->errors++;
    }
    return j;
}

static void on_deep(void *ud,
                    const loom_event *const *events,
                    size_t n,
                    const loom_txn *txn)
{
    (void)txn;
    root_obs *o = ud;
    if (!o->rec->events)
        return; /* not inside an op */
    for (size_t i = 0; i < n; i++)
        json_array_append_new(o->rec->events, event_json(o, events[i]));
}

static void on_update(
    void *ud, loom_doc *d, const uint8_t *u, size_t len, const loom_txn *txn)
{
    (void)d;
    (void)txn;
    recorder *rec = ud;
    char *h = hex_encode(u, len);
    if (rec->emitted)
        json_array_append_new(rec->emitted, json_string(h ? h : "?"));
    free(h);
}

/* Observing must not change the bytes: the updates of the observed run must
 * be the canonical (unobserved) ones, `emitted`, not `emittedWhenObserved`,
 * since loom's text delta has no side effect. */
static bool same_updates(const json_t *got, const json_t *want)
{
    if (json_array_size(got) != json_array_size(want))
        return false;
    for (size_t i = 0; i < json_array_size(got); i++) {
        const char *w = json_string_value(
            json_object_get(json_array_get(want, i), "update"));
        if (!w || strcmp(w, json_string_value(json_array_get(got, i))))
            return false;
    }
    return true;
}

typedef enum { CASE_OK, CASE_UNSUPPORTED, CASE_FAIL } case_result;

/* Events of the observed JS run that loom does not produce by design: Yjs's
 * YTextEvent.delta getter deletes redundant format items in a transaction
 * of its own, whose event the observers then receive (spec 7.4; the vectors
 * README lists observedRun as a JS-only artifact). loom computes the same
 * delta without that side effect, so there is no second transaction. */
static const struct {
    const char *file;
    size_t trace, event; /* want[event] of trace[trace] is dropped */
} artifacts[] = {
    {"text-format-concurrent.json", 5, 1},
};

/* The record's events without the artifacts (a new reference). */
static json_t *wanted_events(const char *file, size_t ti, const json_t *want)
{
    json_t *w = json_deep_copy(want);
    for (size_t i = sizeof(artifacts) / sizeof(artifacts[0]); i-- > 0;) {
        if (!strcmp(artifacts[i].file, file) && artifacts[i].trace == ti)
            json_array_remove(w, artifacts[i].event);
    }
    return w;
}

static void print_mismatch(const char *file,
                           size_t ti,
                           const json_t *op,
                           const json_t *got,
                           const json_t *want)
{
    char *g = tjson_dumps_sorted(got), *w = tjson_dumps_sorted(want);
    fprintf(stderr,
            "FAIL %s: trace[%zu] (%s) events:\n   got  %s\n   want %s\n", file,
            ti, json_string_value(json_object_get(op, "op")), g ? g : "?",
            w ? w : "?");
    free(g);
    free(w);
}

static case_result run_case(const char *file, const json_t *c)
{
    vec_env env;
    recorder rec = {0};
    root_obs *obs = NULL;
    case_result res = CASE_OK;
    if (vec_env_init(&env, c)) {
        fprintf(stderr, "FAIL %s: cannot create docs\n", file);
        vec_env_free(&env);
        return CASE_FAIL;
    }
    const json_t *roots = json_object_get(c, "roots");
    obs = calloc(env.n * json_object_size(roots) + 1, sizeof(*obs));
    assert_non_null(obs);
    size_t nobs = 0;
    for (size_t i = 0; i < env.n; i++) {
        const char *name;
        json_t *kind;
        json_object_foreach((json_t *)roots, name, kind)
        {
            loom_type *t;
            assert_int_equal(loom_doc_get(env.docs[i], name, strlen(name),
                                          vec_kind(json_string_value(kind)),
                                          &t),
                             0);
            root_obs *o = &obs[nobs++];
            o->rec = &rec;
            o->doc = env.ids[i];
            o->root = name;
            assert_int_equal(loom_type_observe_deep(t, on_deep, o, NULL), 0);
        }
        assert_int_equal(loom_doc_on_update(env.docs[i], on_update, &rec, NULL),
                         0);
    }
    int reports = 0;
    size_t ti;
    json_t *r;
    json_array_foreach(json_object_get(c, "trace"), ti, r)
    {
        const json_t *op = json_object_get(r, "op");
        char err[200] = "";
        rec.events = json_array();
        rec.emitted = json_array();
        rec.errors = 0;
        int rc = vec_run_op(&env, op, NULL, err, sizeof err);
        json_t *got = rec.events, *updates = rec.emitted;
        rec.events = rec.emitted = NULL;
        if (!rc && !same_updates(updates, json_object_get(r, "emitted"))) {
            fprintf(
                stderr,
                "FAIL %s: trace[%zu]: observing changed the emitted updates\n",
                file, ti);
            res = CASE_FAIL;
        }
        json_decref(updates);
        if (rc) {
            res = rc == LOOM_EUNSUPPORTED ? CASE_UNSUPPORTED : CASE_FAIL;
            fprintf(stderr, "%s %s: trace[%zu] (%s): %s %s\n",
                    res == CASE_UNSUPPORTED ? "SKIP" : "FAIL", file, ti,
                    json_string_value(json_object_get(op, "op")),
                    loom_strerror(rc), err);
            json_decref(got);
            break;
        }
        json_t *want = json_object_get(r, "events");
        want = want ? wanted_events(file, ti, want) : NULL;
        if (rec.errors) {
            fprintf(stderr,
                    "FAIL %s: trace[%zu]: %d event accessor(s) failed\n", file,
                    ti, rec.errors);
            res = CASE_FAIL;
        } else if (want && !tjson_equal(got, want)) {
            if (reports++ < MAX_REPORTS)
                print_mismatch(file, ti, op, got, want);
            res = CASE_FAIL;
        }
        json_decref(want);
        json_decref(got);
    }
    vec_env_free(&env);
    free(obs);
    return res;
}

static void test_case_events(void **state)
{
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/cases", LOOM_VECTORS_DIR);
    DIR *dp = opendir(dir);
    assert_non_null(dp);
    const char *only = getenv("LOOM_VECTOR");
    int n = 0, ok = 0, unsupported = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json"))
            continue;
        if (only && !strstr(de->d_name, only))
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        json_error_t je;
        json_t *c = tjson_load_file(path, 0, &je);
        if (!c) {
            fprintf(stderr, "FAIL %s: cannot load: %s\n", de->d_name, je.text);
            n++;
            continue;
        }
        case_result res = run_case(de->d_name, c);
        json_decref(c);
        n++;
        if (res == CASE_OK)
            ok++;
        if (res == CASE_UNSUPPORTED)
            unsupported++;
        if (getenv("LOOM_VECTORS_VERBOSE") && res == CASE_OK)
            fprintf(stderr, "ok   %s\n", de->d_name);
    }
    closedir(dp);
    fprintf(stderr,
            "events: %d of %d cases match (%d stopped at an unsupported op)\n",
            ok, n, unsupported);
    assert_int_equal(ok, n);
}

/* ---- scenarios beyond the vectors -----------------------------------------
 * Plain and deep observers on nested types, paths relative to each deep
 * observer, sorting by path length, deleted types, an observer that edits
 * the doc (a queued transaction) and one that unsubscribes itself. The
 * expected logs were produced by yjs 13.6.33 running the same steps (listed
 * above each test). */

static const char *const scenario_expected =
    "["
    "[\"step\",1],"
    "[1,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"x\":{\"action\":\"add\"},\"y\":{"
    "\"action\":\"add\"}}}],"
    "[1,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"x\":{\"action\":\"add\"},\"y\":"
    "{\"action\":\"add\"}}}]],"
    "[1,\"deep "
    "a\",[{\"path\":[],\"delta\":[{\"insert\":[{\"$ytype\":\"map\"},{\"$"
    "ytype\":\"array\"}]}],\"keys\":{}}]],"
    "[2,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"x\":{\"action\":\"add\"},\"y\":{"
    "\"action\":\"add\"}}}],"
    "[2,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"x\":{\"action\":\"add\"},\"y\":"
    "{\"action\":\"add\"}}}]],"
    "[2,\"deep "
    "a\",[{\"path\":[],\"delta\":[{\"insert\":[{\"$ytype\":\"map\"},{\"$"
    "ytype\":\"array\"}]}],\"keys\":{}}]],"
    "[\"step\",2],"
    "[1,\"observe "
    "y\",{\"path\":[],\"delta\":[],\"keys\":{\"k\":{\"action\":\"add\"}}}],"
    "[1,\"deep "
    "x\",[{\"path\":[],\"delta\":[{\"insert\":[1,2,3]}],\"keys\":{}}]],"
    "[1,\"deep "
    "m\",[{\"path\":[\"x\"],\"delta\":[{\"insert\":[1,2,3]}],\"keys\":{}},{"
    "\"path\":[\"y\"],\"delta\":[],\"keys\":{\"k\":{\"action\":\"add\"}}}]],"
    "[1,\"deep "
    "a\",[{\"path\":[1],\"delta\":[{\"insert\":[\"in\"]}],\"keys\":{}},{"
    "\"path\":[0],\"delta\":[],\"keys\":{\"q\":{\"action\":\"add\"}}}]],"
    "[2,\"deep "
    "m\",[{\"path\":[\"x\"],\"delta\":[{\"insert\":[1,2,3]}],\"keys\":{}},{"
    "\"path\":[\"y\"],\"delta\":[],\"keys\":{\"k\":{\"action\":\"add\"}}}]],"
    "[2,\"deep "
    "a\",[{\"path\":[1],\"delta\":[{\"insert\":[\"in\"]}],\"keys\":{}},{"
    "\"path\":[0],\"delta\":[],\"keys\":{\"q\":{\"action\":\"add\"}}}]],"
    "[\"step\",3],"
    "[1,\"observe "
    "y\",{\"path\":[],\"delta\":[],\"keys\":{\"k\":{\"action\":\"update\","
    "\"oldValue\":1}}}],"
    "[1,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"z\":{\"action\":\"add\"},\"x\":{"
    "\"action\":\"delete\",\"oldValue\":{\"$ytype\":\"array\"}}}}],"
    "[1,\"deep "
    "a\",[{\"path\":[],\"delta\":[{\"insert\":[\"pre\"]}],\"keys\":{}},{"
    "\"path\":[2],\"delta\":[{\"delete\":1},{\"insert\":[{\"$ytype\":\"map\"}]}"
    "],\"keys\":{}},{\"path\":[1],\"delta\":[],\"keys\":{\"q\":{\"action\":"
    "\"update\",\"oldValue\":true}}}]],"
    "[1,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"z\":{\"action\":\"add\"},\"x\":"
    "{\"action\":\"delete\",\"oldValue\":{\"$ytype\":\"array\"}}}},{\"path\":["
    "\"y\"],\"delta\":[],\"keys\":{\"k\":{\"action\":\"update\",\"oldValue\":1}"
    "}}]],"
    "[2,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"z\":{\"action\":\"add\"},\"x\":{"
    "\"action\":\"delete\",\"oldValue\":{\"$ytype\":\"array\"}}}}],"
    "[2,\"deep "
    "a\",[{\"path\":[],\"delta\":[{\"insert\":[\"pre\"]}],\"keys\":{}},{"
    "\"path\":[2],\"delta\":[{\"delete\":1},{\"insert\":[{\"$ytype\":\"map\"}]}"
    "],\"keys\":{}},{\"path\":[1],\"delta\":[],\"keys\":{\"q\":{\"action\":"
    "\"update\",\"oldValue\":true}}}]],"
    "[2,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"z\":{\"action\":\"add\"},\"x\":"
    "{\"action\":\"delete\",\"oldValue\":{\"$ytype\":\"array\"}}}},{\"path\":["
    "\"y\"],\"delta\":[],\"keys\":{\"k\":{\"action\":\"update\",\"oldValue\":1}"
    "}}]],"
    "[\"step\",4],"
    "[1,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"y\":{\"action\":\"update\","
    "\"oldValue\":{\"$ytype\":\"map\"}}}}],"
    "[1,\"deep "
    "a\",[{\"path\":[],\"delta\":[{\"delete\":1}],\"keys\":{}},{\"path\":[1,0],"
    "\"delta\":[],\"keys\":{\"deep\":{\"action\":\"add\"}}}]],"
    "[1,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"y\":{\"action\":\"update\","
    "\"oldValue\":{\"$ytype\":\"map\"}}}}]],"
    "[2,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"y\":{\"action\":\"update\","
    "\"oldValue\":{\"$ytype\":\"map\"}}}}],"
    "[2,\"deep "
    "a\",[{\"path\":[],\"delta\":[{\"delete\":1}],\"keys\":{}},{\"path\":[1,0],"
    "\"delta\":[],\"keys\":{\"deep\":{\"action\":\"add\"}}}]],"
    "[2,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"y\":{\"action\":\"update\","
    "\"oldValue\":{\"$ytype\":\"map\"}}}}]]"
    "]";

static const char *const edits_expected =
    "["
    "[1,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"trigger\":{\"action\":\"add\"}}}"
    "],"
    "[1,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"trigger\":{\"action\":\"add\"}}"
    "}]],"
    "[1,\"deep a\",[{\"path\":[],\"delta\":[{\"insert\":[7]}],\"keys\":{}}]],"
    "[1,\"deep a "
    "once\",[{\"path\":[],\"delta\":[{\"insert\":[7]}],\"keys\":{}}]],"
    "[1,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"reaction\":{\"action\":\"add\"}}"
    "}],"
    "[1,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"reaction\":{\"action\":\"add\"}"
    "}}]],"
    "[1,\"deep a\",[{\"path\":[],\"delta\":[{\"insert\":[8]}],\"keys\":{}}]],"
    "[2,\"observe "
    "m\",{\"path\":[],\"delta\":[],\"keys\":{\"trigger\":{\"action\":\"add\"},"
    "\"reaction\":{\"action\":\"add\"}}}],"
    "[2,\"deep "
    "m\",[{\"path\":[],\"delta\":[],\"keys\":{\"trigger\":{\"action\":\"add\"},"
    "\"reaction\":{\"action\":\"add\"}}}]],"
    "[2,\"deep a\",[{\"path\":[],\"delta\":[{\"insert\":[8,7]}],\"keys\":{}}]]"
    "]";

typedef struct sc_obs {
    json_t *log;
    int tag;
    const char *label;
    loom_doc *doc;
    uint32_t id;
    loom_type *react; /* set "reaction" on this map when "trigger" changed */
    bool once;        /* unsubscribe after the first call */
} sc_obs;

static json_t *sc_desc(const loom_event *ev)
{
    const loom_any *path, *delta, *keys;
    assert_int_equal(loom_event_path(ev, &path), 0);
    assert_int_equal(loom_event_delta(ev, &delta), 0);
    assert_int_equal(loom_event_keys(ev, &keys), 0);
    json_t *j = json_object();
    json_object_set_new(j, "path", tjson_from_any(path));
    json_object_set_new(j, "delta", tjson_from_any(delta));
    json_object_set_new(j, "keys", tjson_from_any(keys));
    return j;
}

static json_t *sc_entry(const sc_obs *o, json_t *what)
{
    json_t *e = json_array();
    json_array_append_new(e, json_integer(o->tag));
    json_array_append_new(e, json_string(o->label));
    json_array_append_new(e, what);
    return e;
}

static void sc_observe(void *ud, const loom_event *ev, const loom_txn *txn)
{
    (void)txn;
    sc_obs *o = ud;
    if (o->react) {
        const loom_any *keys;
        assert_int_equal(loom_event_keys(ev, &keys), 0);
        if (loom_any_object_get(keys, "trigger", 7)) {
            loom_any *one;
            assert_int_equal(loom_any_new_number(NULL, 1, &one), 0);
            assert_int_equal(loom_map_set(o->react, "reaction", 8, one), 0);
            loom_any_free(one);
        }
        return;
    }
    json_array_append_new(o->log, sc_entry(o, sc_desc(ev)));
}

static void sc_deep(void *ud,
                    const loom_event *const *events,
                    size_t n,
                    const loom_txn *txn)
{
    (void)txn;
    sc_obs *o = ud;
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, sc_desc(events[i]));
    json_array_append_new(o->log, sc_entry(o, list));
    if (o->once)
        assert_int_equal(loom_doc_unsubscribe(o->doc, o->id), 0);
}

static loom_any *num(double v)
{
    loom_any *a;
    assert_int_equal(loom_any_new_number(NULL, v, &a), 0);
    return a;
}

static loom_any *str(const char *s)
{
    loom_any *a;
    assert_int_equal(loom_any_new_string(NULL, s, strlen(s), &a), 0);
    return a;
}

static loom_any *boolean(int v)
{
    loom_any *a;
    assert_int_equal(loom_any_new_bool(NULL, v, &a), 0);
    return a;
}

/* Consumes v. */
static void map_set(loom_type *m, const char *k, loom_any *v)
{
    assert_int_equal(loom_map_set(m, k, strlen(k), v), 0);
    loom_any_free(v);
}

/* Consumes v. */
static void arr_insert(loom_type *arr, size_t index, loom_any *v)
{
    const loom_any *vals[1] = {v};
    assert_int_equal(loom_array_insert(arr, index, vals, 1), 0);
    loom_any_free(v);
}

static loom_type *child(loom_type *t, size_t i)
{
    loom_any *v = NULL;
    loom_type *c = NULL;
    assert_int_equal(loom_array_get(t, i, &v, &c), 0);
    assert_null(v);
    assert_non_null(c);
    return c;
}

static loom_type *entry(loom_type *t, const char *k)
{
    loom_any *v = NULL;
    loom_type *c = NULL;
    assert_int_equal(loom_map_get(t, k, strlen(k), &v, &c), 0);
    assert_null(v);
    assert_non_null(c);
    return c;
}

static void sync12(loom_doc *from, loom_doc *to)
{
    loom_buf sv = {0}, u = {0};
    assert_int_equal(loom_doc_encode_state_vector(to, &sv), 0);
    assert_int_equal(
        loom_doc_encode_state_as_update(from, sv.data, sv.len, &u, NULL), 0);
    assert_int_equal(loom_doc_apply_update(to, u.data, u.len, NULL, NULL), 0);
    loom_buf_free(&sv);
    loom_buf_free(&u);
}

static void step(json_t *log, int n)
{
    json_t *e = json_array();
    json_array_append_new(e, json_string("step"));
    json_array_append_new(e, json_integer(n));
    json_array_append_new(log, e);
}

/* Two docs (client ids 1 and 2) with roots m (map) and a (array), each with
 * m.observe, m.observeDeep and a.observeDeep logging to one log. */
typedef struct sc_env {
    json_t *log;
    loom_doc *d[2];
    loom_type *m[2], *a[2];
    sc_obs obs[2][3];
} sc_env;

static void sc_env_init(sc_env *e)
{
    static const char *const labels[3] = {"observe m", "deep m", "deep a"};
    memset(e, 0, sizeof(*e));
    e->log = json_array();
    for (int i = 0; i < 2; i++) {
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id = (uint64_t)i + 1;
        assert_int_equal(loom_doc_new(&o, &e->d[i]), 0);
        assert_int_equal(loom_doc_get(e->d[i], "m", 1, LOOM_TYPE_MAP, &e->m[i]),
                         0);
        assert_int_equal(
            loom_doc_get(e->d[i], "a", 1, LOOM_TYPE_ARRAY, &e->a[i]), 0);
        for (int k = 0; k < 3; k++)
            e->obs[i][k] = (sc_obs){.log = e->log,
                                    .tag = i + 1,
                                    .label = labels[k],
                                    .doc = e->d[i]};
        assert_int_equal(
            loom_type_observe(e->m[i], sc_observe, &e->obs[i][0], NULL), 0);
        assert_int_equal(
            loom_type_observe_deep(e->m[i], sc_deep, &e->obs[i][1], NULL), 0);
        assert_int_equal(
            loom_type_observe_deep(e->a[i], sc_deep, &e->obs[i][2], NULL), 0);
    }
}

/* Compares the log with the expected one, frees everything, fails on a
 * difference. */
static void sc_env_finish(sc_env *e, const char *expected)
{
    json_error_t je;
    json_t *want = json_loads(expected, 0, &je);
    assert_non_null(want);
    size_t ng = json_array_size(e->log), nw = json_array_size(want);
    int bad = 0;
    for (size_t i = 0; i < (ng > nw ? ng : nw); i++) {
        const json_t *g = json_array_get(e->log, i),
                     *w = json_array_get(want, i);
        if (g && w && tjson_equal(g, w))
            continue;
        char *gs = g ? tjson_dumps_sorted(g) : NULL,
             *ws = w ? tjson_dumps_sorted(w) : NULL;
        fprintf(stderr, "log entry %zu:\n   got  %s\n   want %s\n", i,
                gs ? gs : "-", ws ? ws : "-");
        free(gs);
        free(ws);
        bad++;
    }
    json_decref(want);
    json_decref(e->log);
    loom_doc_free(e->d[0]);
    loom_doc_free(e->d[1]);
    assert_int_equal(bad, 0);
}

/*
 * yjs (sync = apply the diff of doc 1 to doc 2, after each step):
 *   1: transact{m.set('x', Array); m.set('y', Map); a.insert(0, [Map, Array])}
 *   2: x.observeDeep, y.observe on doc 1;
 *      transact{x.insert(0,[1,2,3]); y.set('k',1); a[1].insert(0,['in']);
 *      a[0].set('q',true)}
 *   3: transact{a[1].push([Map]); y.set('k',2); x.delete(0,1); m.set('z',3);
 *      a[0].set('q',false); a.insert(0,['pre']); a[2].delete(0,1);
 *      y.set('gone',1); y.delete('gone'); m.delete('x')}
 *   4: transact{a[2][0].set('deep',1); a.delete(0,1); m.set('y','replaced')}
 */
static void test_nested(void **state)
{
    (void)state;
    sc_env e;
    sc_env_init(&e);
    loom_type *t, *m = e.m[0], *a = e.a[0];

    step(e.log, 1);
    assert_int_equal(loom_doc_transact_begin(e.d[0], NULL), 0);
    assert_int_equal(loom_map_set_type(m, "x", 1, LOOM_TYPE_ARRAY, NULL, 0, &t),
                     0);
    assert_int_equal(loom_map_set_type(m, "y", 1, LOOM_TYPE_MAP, NULL, 0, &t),
                     0);
    assert_int_equal(loom_array_insert_type(a, 0, LOOM_TYPE_MAP, NULL, 0, &t),
                     0);
    assert_int_equal(loom_array_insert_type(a, 1, LOOM_TYPE_ARRAY, NULL, 0, &t),
                     0);
    assert_int_equal(loom_doc_transact_end(e.d[0]), 0);
    sync12(e.d[0], e.d[1]);

    step(e.log, 2);
    loom_type *x = entry(m, "x"), *y = entry(m, "y");
    sc_obs ox = {.log = e.log, .tag = 1, .label = "deep x"};
    sc_obs oy = {.log = e.log, .tag = 1, .label = "observe y"};
    assert_int_equal(loom_type_observe_deep(x, sc_deep, &ox, NULL), 0);
    assert_int_equal(loom_type_observe(y, sc_observe, &oy, NULL), 0);
    assert_int_equal(loom_doc_transact_begin(e.d[0], NULL), 0);
    loom_any *v[3] = {num(1), num(2), num(3)};
    assert_int_equal(loom_array_insert(x, 0, (const loom_any *const *)v, 3), 0);
    for (int i = 0; i < 3; i++)
        loom_any_free(v[i]);
    map_set(y, "k", num(1));
    arr_insert(child(a, 1), 0, str("in"));
    map_set(child(a, 0), "q", boolean(1));
    assert_int_equal(loom_doc_transact_end(e.d[0]), 0);
    sync12(e.d[0], e.d[1]);

    step(e.log, 3);
    assert_int_equal(loom_doc_transact_begin(e.d[0], NULL), 0);
    assert_int_equal(loom_array_insert_type(child(a, 1), SIZE_MAX,
                                            LOOM_TYPE_MAP, NULL, 0, &t),
                     0);
    map_set(y, "k", num(2));
    assert_int_equal(loom_array_delete(x, 0, 1), 0);
    map_set(m, "z", num(3));
    map_set(child(a, 0), "q", boolean(0));
    arr_insert(a, 0, str("pre"));
    assert_int_equal(loom_array_delete(child(a, 2), 0, 1), 0);
    map_set(y, "gone", num(1));
    assert_int_equal(loom_map_delete(y, "gone", 4), 0);
    assert_int_equal(loom_map_delete(m, "x", 1), 0);
    assert_int_equal(loom_doc_transact_end(e.d[0]), 0);
    sync12(e.d[0], e.d[1]);

    step(e.log, 4);
    assert_int_equal(loom_doc_transact_begin(e.d[0], NULL), 0);
    map_set(child(child(a, 2), 0), "deep", num(1));
    assert_int_equal(loom_array_delete(a, 0, 1), 0);
    map_set(m, "y", str("replaced"));
    assert_int_equal(loom_doc_transact_end(e.d[0]), 0);
    sync12(e.d[0], e.d[1]);

    sc_env_finish(&e, scenario_expected);
}

/*
 * yjs, on doc 1: a.observeDeep(h) where h unobserves itself;
 * m.observe(e => if 'trigger' changed: m.set('reaction', 1));
 * transact{m.set('trigger',1); a.insert(0,[7])}; a.insert(0,[8]); sync.
 * The reaction runs in its own transaction, cleaned up after the first; the
 * first's events still see their own items as added.
 */
static void test_observer_edits(void **state)
{
    (void)state;
    /* doc 1's update events in yjs: the first transaction's update holds
     * everything from its before state to the end, the reaction included */
    static const char *const updates[] = {
        ("010301002801016d0774726967676572017d0108010161017d072801016d"
         "087265616374696f6e017d0100"),
        "010101022801016d087265616374696f6e017d0100",
        "01010103480101017d0800",
    };
    sc_env e;
    sc_env_init(&e);
    recorder rec = {.emitted = json_array()};
    assert_int_equal(loom_doc_on_update(e.d[0], on_update, &rec, NULL), 0);
    sc_obs once = {.log = e.log,
                   .tag = 1,
                   .label = "deep a once",
                   .doc = e.d[0],
                   .once = true};
    sc_obs react = {.react = e.m[0]};
    assert_int_equal(loom_type_observe_deep(e.a[0], sc_deep, &once, &once.id),
                     0);
    assert_int_equal(loom_type_observe(e.m[0], sc_observe, &react, NULL), 0);
    assert_int_equal(loom_doc_transact_begin(e.d[0], NULL), 0);
    map_set(e.m[0], "trigger", num(1));
    arr_insert(e.a[0], 0, num(7));
    assert_int_equal(loom_doc_transact_end(e.d[0]), 0);
    arr_insert(e.a[0], 0, num(8));
    sync12(e.d[0], e.d[1]);
    json_t *got = rec.emitted;
    rec.emitted = NULL;
    bool same = json_array_size(got) == 3;
    for (size_t i = 0; same && i < 3; i++)
        same = !strcmp(json_string_value(json_array_get(got, i)), updates[i]);
    if (!same) {
        char *g = tjson_dumps_sorted(got);
        fprintf(stderr,
                "doc 1 updates:\n   got  %s\n   want [\"%s\",\"%s\",\"%s\"]\n",
                g ? g : "?", updates[0], updates[1], updates[2]);
        free(g);
    }
    json_decref(got);
    sc_env_finish(&e, edits_expected);
    assert_true(same);
}

/* Map key changes of an observed map as "key:action[=old]" words. */
typedef struct key_log {
    char buf[4096];
    size_t len;
} key_log;

static void key_observe(void *ud, const loom_event *ev, const loom_txn *txn)
{
    (void)txn;
    key_log *l = ud;
    const loom_any *keys;
    assert_int_equal(loom_event_keys(ev, &keys), 0);
    for (size_t i = 0; i < loom_any_count(keys); i++) {
        size_t kl, al;
        const char *k = loom_any_object_key(keys, i, &kl);
        const loom_any *c = loom_any_object_value(keys, i);
        const char *act =
            loom_any_string(loom_any_object_get(c, "action", 6), &al);
        const loom_any *old = loom_any_object_get(c, "oldValue", 8);
        int n = old ? snprintf(l->buf + l->len, sizeof l->buf - l->len,
                               "%s%.*s:%.*s=%g", l->len ? " " : "", (int)kl, k,
                               (int)al, act, loom_any_number(old))
                    : snprintf(l->buf + l->len, sizeof l->buf - l->len,
                               "%s%.*s:%.*s", l->len ? " " : "", (int)kl, k,
                               (int)al, act);
        assert_true(n > 0 && (size_t)n < sizeof l->buf - l->len);
        l->len += (size_t)n;
    }
}

/*
 * More changed keys in one transaction than fit the linear key list, local
 * and remote, with keys set twice and deleted (expected: yjs 13, the same
 * steps with m.observe on both docs):
 *   1: transact{k0..k19 = i; k3 = 100; k15 = 115; gone = 1; delete gone}
 *   2: transact{k0..k11 = 200 + i; delete k12, k13, k14}
 */
static void test_many_keys(void **state)
{
    (void)state;
    static const char *const want[2] = {
        "k0:add k1:add k2:add k3:add k4:add k5:add k6:add k7:add k8:add "
        "k9:add k10:add k11:add k12:add k13:add k14:add k15:add k16:add "
        "k17:add k18:add k19:add",
        "k0:update=0 k1:update=1 k2:update=2 k3:update=100 k4:update=4 "
        "k5:update=5 k6:update=6 k7:update=7 k8:update=8 k9:update=9 "
        "k10:update=10 k11:update=11 k12:delete=12 k13:delete=13 "
        "k14:delete=14",
    };
    loom_doc *d[2];
    loom_type *m[2];
    key_log logs[2];
    for (int i = 0; i < 2; i++) {
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id = (uint64_t)i + 1;
        assert_int_equal(loom_doc_new(&o, &d[i]), 0);
        assert_int_equal(loom_doc_get(d[i], "m", 1, LOOM_TYPE_MAP, &m[i]), 0);
        assert_int_equal(loom_type_observe(m[i], key_observe, &logs[i], NULL),
                         0);
    }
    for (int step = 0; step < 2; step++) {
        memset(logs, 0, sizeof logs);
        char k[8];
        assert_int_equal(loom_doc_transact_begin(d[0], NULL), 0);
        if (step == 0) {
            for (int i = 0; i < 20; i++) {
                snprintf(k, sizeof k, "k%d", i);
                map_set(m[0], k, num(i));
            }
            map_set(m[0], "k3", num(100));
            map_set(m[0], "k15", num(115));
            map_set(m[0], "gone", num(1));
            assert_int_equal(loom_map_delete(m[0], "gone", 4), 0);
        } else {
            for (int i = 0; i < 12; i++) {
                snprintf(k, sizeof k, "k%d", i);
                map_set(m[0], k, num(200 + i));
            }
            for (int i = 12; i < 15; i++) {
                snprintf(k, sizeof k, "k%d", i);
                assert_int_equal(loom_map_delete(m[0], k, strlen(k)), 0);
            }
        }
        assert_int_equal(loom_doc_transact_end(d[0]), 0);
        sync12(d[0], d[1]);
        for (int i = 0; i < 2; i++) {
            if (strcmp(logs[i].buf, want[step]) != 0)
                fprintf(stderr, "step %d doc %d:\n   got  %s\n   want %s\n",
                        step + 1, i + 1, logs[i].buf, want[step]);
            assert_string_equal(logs[i].buf, want[step]);
        }
    }
    loom_doc_free(d[0]);
    loom_doc_free(d[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_case_events),
        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_observer_edits),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
