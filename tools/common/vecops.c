/*
 * vecops.c: the op runner behind vecops.h. Each vector op maps to one call
 * of the public API, inside one transaction, as the JS generator made one
 * call per op.
 */
#include "vecops.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tjson.h"

loom_type_kind vec_kind(const char *k)
{
    if (!k)
        return LOOM_TYPE_UNDEFINED;
    if (!strcmp(k, "map"))
        return LOOM_TYPE_MAP;
    if (!strcmp(k, "array"))
        return LOOM_TYPE_ARRAY;
    if (!strcmp(k, "text"))
        return LOOM_TYPE_TEXT;
    if (!strcmp(k, "xmlfragment"))
        return LOOM_TYPE_XML_FRAGMENT;
    if (!strcmp(k, "xmlelement"))
        return LOOM_TYPE_XML_ELEMENT;
    if (!strcmp(k, "xmltext"))
        return LOOM_TYPE_XML_TEXT;
    if (!strcmp(k, "xmlhook"))
        return LOOM_TYPE_XML_HOOK;
    return LOOM_TYPE_UNDEFINED;
}

int vec_env_init(vec_env *e, const json_t *c)
{
    memset(e, 0, sizeof(*e));
    e->roots = json_object_get(c, "roots");
    size_t i;
    json_t *dd;
    json_array_foreach(json_object_get(c, "docs"), i, dd)
    {
        if (e->n == VEC_MAX_DOCS)
            return LOOM_ELIMIT;
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id =
            (uint64_t)json_integer_value(json_object_get(dd, "clientID"));
        o.gc = !json_is_false(json_object_get(dd, "gc"));
        int rc = loom_doc_new(&o, &e->docs[e->n]);
        if (rc)
            return rc;
        e->ids[e->n++] = json_integer_value(json_object_get(dd, "id"));
        const char *name;
        json_t *kind;
        json_object_foreach((json_t *)e->roots, name, kind)
        {
            loom_type *t;
            rc = loom_doc_get(e->docs[e->n - 1], name, strlen(name),
                              vec_kind(json_string_value(kind)), &t);
            if (rc)
                return rc;
        }
    }
    return 0;
}

void vec_env_free(vec_env *e)
{
    for (size_t i = 0; i < e->n; i++)
        loom_doc_free(e->docs[i]);
    e->n = 0;
}

loom_doc *vec_doc(const vec_env *e, long long id)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->ids[i] == id)
            return e->docs[i];
    return NULL;
}

long long vec_doc_id(const vec_env *e, const loom_doc *d)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->docs[i] == d)
            return e->ids[i];
    return -1;
}

int vec_resolve(vec_env *e, loom_doc *d, const json_t *path, loom_type **out)
{
    const char *root = json_string_value(json_array_get(path, 0));
    if (!root)
        return LOOM_EINVAL;
    loom_type *t;
    loom_type_kind k =
        vec_kind(json_string_value(json_object_get(e->roots, root)));
    int rc = loom_doc_get(d, root, strlen(root), k, &t);
    if (rc)
        return rc;
    for (size_t i = 1; i < json_array_size(path); i++) {
        const json_t *p = json_array_get(path, i);
        loom_any *v = NULL;
        loom_type *child = NULL;
        if (json_is_string(p)) {
            rc = loom_map_get(t, json_string_value(p), json_string_length(p),
                              &v, &child);
        } else {
            rc = loom_array_get(t, (size_t)json_integer_value(p), &v, &child);
        }
        loom_any_free(v);
        if (rc)
            return rc;
        if (!child)
            return LOOM_ETYPE;
        t = child;
    }
    *out = t;
    return 0;
}

static void errf(char *err, size_t n, const char *fmt, ...)
{
    if (!err || !n)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
}

/* A {"$ytype": kind, "name"?} wrapper: its kind and name. */
static int ytype_of(const json_t *v, loom_type_kind *k, const char **name)
{
    const json_t *yt = json_is_object(v) ? json_object_get(v, "$ytype") : NULL;
    if (!yt)
        return 0;
    *k = vec_kind(json_string_value(yt));
    *name = json_string_value(json_object_get(v, "name"));
    return 1;
}

static const json_t *ydoc_of(const json_t *v)
{
    return json_is_object(v) ? json_object_get(v, "$ydoc") : NULL;
}

/* ContentDoc options: only the non-default ones, in JS order. */
static int ydoc_opts(const json_t *yd, loom_any **out)
{
    loom_any *o, *x;
    int rc = loom_any_new_object(NULL, &o);
    if (rc)
        return rc;
    if (json_is_false(json_object_get(yd, "gc"))) {
        if (!(rc = loom_any_new_bool(NULL, 0, &x)))
            rc = loom_any_object_set(o, "gc", 2, x);
    }
    if (!rc && json_is_true(json_object_get(yd, "autoLoad"))) {
        if (!(rc = loom_any_new_bool(NULL, 1, &x)))
            rc = loom_any_object_set(o, "autoLoad", 8, x);
    }
    const json_t *meta = json_object_get(yd, "meta");
    if (!rc && meta && !json_is_null(meta)) {
        if (!(rc = tjson_to_any(meta, NULL, &x)))
            rc = loom_any_object_set(o, "meta", 4, x);
    }
    if (rc) {
        loom_any_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* Inserts a list of values at index (push when index is SIZE_MAX): runs of
 * plain values in one call, types and sub-documents one by one, all in the
 * caller's transaction (this builds the same items as one JS insert). */
static int insert_values(loom_type *t, size_t index, const json_t *values)
{
    size_t n = json_array_size(values), i = 0;
    bool push = index == SIZE_MAX;
    int rc = 0;
    while (i < n && !rc) {
        const json_t *v = json_array_get(values, i);
        loom_type_kind k;
        const char *name;
        const json_t *yd;
        if (ytype_of(v, &k, &name)) {
            rc = loom_array_insert_type(t, push ? SIZE_MAX : index, k, name,
                                        name ? strlen(name) : 0, NULL);
            index++;
            i++;
        } else if ((yd = ydoc_of(v))) {
            loom_any *opts;
            const char *guid = json_string_value(json_object_get(yd, "guid"));
            if (!(rc = ydoc_opts(yd, &opts))) {
                rc = loom_array_insert_subdoc(t, push ? SIZE_MAX : index, guid,
                                              strlen(guid), opts);
                loom_any_free(opts);
            }
            index++;
            i++;
        } else {
            size_t j = i;
            const char *nm;
            while (j < n && !ytype_of(json_array_get(values, j), &k, &nm) &&
                   !ydoc_of(json_array_get(values, j)))
                j++;
            loom_any **vals = calloc(j - i, sizeof(*vals));
            if (!vals)
                return LOOM_ENOMEM;
            for (size_t q = i; q < j && !rc; q++)
                rc =
                    tjson_to_any(json_array_get(values, q), NULL, &vals[q - i]);
            if (!rc) {
                rc = push ? loom_array_push(t, (const loom_any *const *)vals,
                                            j - i)
                          : loom_array_insert(
                                t, index, (const loom_any *const *)vals, j - i);
            }
            for (size_t q = 0; q < j - i; q++)
                loom_any_free(vals[q]);
            free(vals);
            index += j - i;
            i = j;
        }
    }
    return rc;
}

static int any_of(const json_t *j, loom_any **out)
{
    if (!j)
        return loom_any_new_undefined(NULL, out);
    return tjson_to_any(j, NULL, out);
}

static int
run_one(vec_env *e, loom_doc *d, const json_t *op, char *err, size_t errlen)
{
    const char *kind = json_string_value(json_object_get(op, "op"));
    loom_type *t = NULL;
    int rc = vec_resolve(e, d, json_object_get(op, "path"), &t);
    if (rc) {
        errf(err, errlen, "cannot resolve path: %s", loom_strerror(rc));
        return rc;
    }
    const json_t *jkey = json_object_get(op, "key");
    const char *key = json_string_value(jkey);
    size_t klen = jkey ? json_string_length(jkey) : 0;
    size_t index = (size_t)json_integer_value(json_object_get(op, "index"));
    size_t length = (size_t)json_integer_value(json_object_get(op, "length"));
    loom_any *v = NULL, *attrs = NULL;
    if (!strcmp(kind, "map.set") || !strcmp(kind, "xml.setAttribute") ||
        !strcmp(kind, "text.setAttribute")) {
        const json_t *jv = json_object_get(op, "value");
        loom_type_kind k;
        const char *name;
        const json_t *yd;
        if (ytype_of(jv, &k, &name)) {
            rc = loom_map_set_type(t, key, klen, k, name,
                                   name ? strlen(name) : 0, NULL);
        } else if ((yd = ydoc_of(jv))) {
            const char *guid = json_string_value(json_object_get(yd, "guid"));
            if (!(rc = ydoc_opts(yd, &v)))
                rc = loom_map_set_subdoc(t, key, klen, guid, strlen(guid), v);
        } else if (!(rc = any_of(jv, &v))) {
            rc = loom_map_set(t, key, klen, v);
        }
    } else if (!strcmp(kind, "map.delete") ||
               !strcmp(kind, "xml.removeAttribute")) {
        rc = loom_map_delete(t, key, klen);
    } else if (!strcmp(kind, "array.insert") || !strcmp(kind, "xml.insert")) {
        rc = insert_values(t, index, json_object_get(op, "values"));
    } else if (!strcmp(kind, "array.push")) {
        rc = insert_values(t, SIZE_MAX, json_object_get(op, "values"));
    } else if (!strcmp(kind, "array.delete")) {
        rc = loom_array_delete(t, index, length);
    } else if (!strcmp(kind, "text.insert")) {
        const json_t *ja = json_object_get(op, "attributes");
        const json_t *txt = json_object_get(op, "text");
        if (!ja || !(rc = tjson_to_any(ja, NULL, &attrs)))
            rc = loom_text_insert(t, index, json_string_value(txt),
                                  json_string_length(txt), attrs);
    } else if (!strcmp(kind, "text.insertEmbed")) {
        const json_t *ja = json_object_get(op, "attributes");
        if (!(rc = any_of(json_object_get(op, "embed"), &v)) &&
            (!ja || !(rc = tjson_to_any(ja, NULL, &attrs))))
            rc = loom_text_insert_embed(t, index, v, attrs);
    } else if (!strcmp(kind, "text.delete")) {
        rc = loom_text_delete(t, index, length);
    } else if (!strcmp(kind, "text.format")) {
        if (!(rc = tjson_to_any(json_object_get(op, "attributes"), NULL,
                                &attrs)))
            rc = loom_text_format(t, index, length, attrs);
    } else if (!strcmp(kind, "text.applyDelta")) {
        if (!(rc = tjson_to_any(json_object_get(op, "delta"), NULL, &v)))
            rc = loom_text_apply_delta(t, v);
    } else {
        errf(err, errlen, "unknown op %s", kind);
        return -100;
    }
    loom_any_free(v);
    loom_any_free(attrs);
    if (rc)
        errf(err, errlen, "%s failed: %s", kind, loom_strerror(rc));
    return rc;
}

int vec_run_op(
    vec_env *e, const json_t *op, loom_buf *transfer, char *err, size_t errlen)
{
    const char *kind = json_string_value(json_object_get(op, "op"));
    if (!kind)
        return LOOM_EINVAL;
    int rc;
    if (!strcmp(kind, "sync")) {
        loom_doc *from =
            vec_doc(e, json_integer_value(json_object_get(op, "from")));
        loom_doc *to =
            vec_doc(e, json_integer_value(json_object_get(op, "to")));
        if (!from || !to)
            return LOOM_EINVAL;
        loom_buf sv = {0}, u = {0};
        loom_error le;
        if ((rc = loom_doc_encode_state_vector(to, &sv)))
            return rc;
        rc = loom_doc_encode_state_as_update(from, sv.data, sv.len, &u, &le);
        loom_buf_free(&sv);
        if (!rc)
            rc = loom_doc_apply_update(to, u.data, u.len, NULL, &le);
        if (rc)
            errf(err, errlen, "sync failed: %s", loom_strerror(rc));
        if (transfer)
            *transfer = u;
        else
            loom_buf_free(&u);
        return rc;
    }
    loom_doc *d = vec_doc(e, json_integer_value(json_object_get(op, "doc")));
    if (!d)
        return LOOM_EINVAL;
    if (!strcmp(kind, "apply")) {
        uint8_t *p;
        size_t n;
        if (hex_decode(json_string_value(json_object_get(op, "update")), &p,
                       &n))
            return LOOM_EINVAL;
        loom_error le;
        rc = loom_doc_apply_update(d, p, n, NULL, &le);
        free(p);
        if (rc)
            errf(err, errlen, "apply failed: %s at %zu", loom_strerror(rc),
                 le.offset);
        return rc;
    }
    if ((rc = loom_doc_transact_begin(d, NULL)))
        return rc;
    if (!strcmp(kind, "transact")) {
        size_t i;
        json_t *sub;
        json_array_foreach(json_object_get(op, "ops"), i, sub)
        {
            if ((rc = run_one(e, d, sub, err, errlen)))
                break;
        }
    } else {
        rc = run_one(e, d, op, err, errlen);
    }
    int rc2 = loom_doc_transact_end(d);
    return rc ? rc : rc2;
}
