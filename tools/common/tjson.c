/*
 * tjson.c: TJSON <-> loom_any conversion, the vector loader that works
 * around jansson's refusal of lone surrogates, hex helpers and a
 * deterministic JSON writer, shared by the test programs and the CLI.
 * Uses only the public loom API.
 */
#include "tjson.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loom/doc.h"

/* ---- loading ------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static long esc_unit(const char *s, size_t i, size_t len)
{
    if (len - i < 6 || s[i] != '\\' || s[i + 1] != 'u') {
        return -1;
    }
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int d = hexval(s[i + k]);
        if (d < 0) {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

json_t *
tjson_loadb(const char *text, size_t len, size_t flags, json_error_t *error)
{
    char *t = malloc(len ? len : 1);
    if (!t) {
        return NULL;
    }
    if (len) {
        memcpy(t, text, len);
    }
    /* Both forms are 6 bytes, so the rewrite happens in place. */
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_str) {
            in_str = t[i] == '"';
            continue;
        }
        if (t[i] == '"') {
            in_str = false;
        } else if (t[i] == '\\' && i + 1 < len) {
            long u = esc_unit(t, i, len);
            if (u >= 0xd800 && u <= 0xdbff) {
                long lo = esc_unit(t, i + 6, len);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    i += 11;
                    continue;
                }
            }
            if (u >= 0xd800 && u <= 0xdfff) {
                static const char fffd[6] = {'\\', 'u', 'f', 'f', 'f', 'd'};
                memcpy(t + i, fffd, sizeof(fffd));
                i += 5;
            } else {
                i++; /* skip the escaped character */
            }
        }
    }
    json_t *j = json_loadb(t, len, flags, error);
    free(t);
    return j;
}

json_t *tjson_load_file(const char *path, size_t flags, json_error_t *error)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (error) {
            memset(error, 0, sizeof(*error));
            (void)snprintf(error->text, sizeof(error->text), "cannot open %s",
                           path);
        }
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len < cap) {
            break;
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int bad = ferror(f);
    (void)fclose(f);
    if (!buf || bad) {
        free(buf);
        if (error) {
            memset(error, 0, sizeof(*error));
            (void)snprintf(error->text, sizeof(error->text), "cannot read %s",
                           path);
        }
        return NULL;
    }
    json_t *j = tjson_loadb(buf, len, flags, error);
    free(buf);
    return j;
}

/* ---- hex ---------------------------------------------------------------- */

int hex_decode(const char *hex, uint8_t **out, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2) {
        return LOOM_EINVAL;
    }
    uint8_t *p = malloc(n / 2 ? n / 2 : 1);
    if (!p) {
        return LOOM_ENOMEM;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(p);
            return LOOM_EINVAL;
        }
        p[i] = (uint8_t)(hi * 16 + lo);
    }
    *out = p;
    *len = n / 2;
    return LOOM_OK;
}

char *hex_encode(const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *s = malloc(2 * len + 1);
    if (!s) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    s[2 * len] = '\0';
    return s;
}

/* ---- TJSON -> loom_any -------------------------------------------------- */

static int wrapper_to_any(const char *key,
                          const json_t *val,
                          const json_t *obj,
                          const loom_allocator *a,
                          loom_any **out)
{
    if (strcmp(key, "$undefined") == 0) {
        return loom_any_new_undefined(a, out);
    }
    if (strcmp(key, "$ytype") == 0) {
        return LOOM_EUNSUPPORTED;
    }
    if (strcmp(key, "$ydoc") == 0) {
        const json_t *guid =
            json_is_object(val) ? json_object_get(val, "guid") : NULL;
        if (!json_is_string(guid)) {
            return LOOM_EINVAL;
        }
        return loom_any_new_subdoc(a, json_string_value(guid),
                                   json_string_length(guid), out);
    }
    if (json_object_size(obj) != 1 || !json_is_string(val)) {
        return LOOM_EINVAL;
    }
    const char *s = json_string_value(val);
    if (strcmp(key, "$bigint") == 0) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end) {
            return LOOM_EINVAL;
        }
        return loom_any_new_bigint(a, (int64_t)v, out);
    }
    if (strcmp(key, "$binary") == 0) {
        uint8_t *p;
        size_t n;
        int rc = hex_decode(s, &p, &n);
        if (rc) {
            return rc;
        }
        rc = loom_any_new_binary(a, p, n, out);
        free(p);
        return rc;
    }
    if (strcmp(key, "$number") == 0) {
        double d;
        if (strcmp(s, "-0") == 0) {
            d = -0.0;
        } else if (strcmp(s, "NaN") == 0) {
            d = NAN;
        } else if (strcmp(s, "Infinity") == 0) {
            d = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0) {
            d = -INFINITY;
        } else {
            return LOOM_EINVAL;
        }
        return loom_any_new_number(a, d, out);
    }
    return LOOM_EINVAL;
}

static bool is_wrapper_key(const char *k)
{
    return strcmp(k, "$undefined") == 0 || strcmp(k, "$bigint") == 0 ||
           strcmp(k, "$binary") == 0 || strcmp(k, "$number") == 0 ||
           strcmp(k, "$ytype") == 0 || strcmp(k, "$ydoc") == 0;
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by the depth of the value
int tjson_to_any(const json_t *j, const loom_allocator *a, loom_any **out)
{
    if (!j || !out) {
        return LOOM_EINVAL;
    }
    loom_any *v = NULL;
    int rc;
    switch (json_typeof(j)) {
    case JSON_NULL:
        return loom_any_new_null(a, out);
    case JSON_TRUE:
        return loom_any_new_bool(a, 1, out);
    case JSON_FALSE:
        return loom_any_new_bool(a, 0, out);
    case JSON_INTEGER:
        return loom_any_new_number(a, (double)json_integer_value(j), out);
    case JSON_REAL:
        return loom_any_new_number(a, json_real_value(j), out);
    case JSON_STRING:
        return loom_any_new_string(a, json_string_value(j),
                                   json_string_length(j), out);
    case JSON_ARRAY:
        rc = loom_any_new_array(a, &v);
        for (size_t i = 0; !rc && i < json_array_size(j); i++) {
            loom_any *child;
            rc = tjson_to_any(json_array_get(j, i), a, &child);
            if (!rc) {
                rc = loom_any_array_push(v, child);
                if (rc) {
                    loom_any_free(child);
                }
            }
        }
        break;
    case JSON_OBJECT: {
        /* A wrapper is recognised by its first key ($ytype may carry a
         * "name" as well). */
        void *it = json_object_iter((json_t *)j);
        if (it && is_wrapper_key(json_object_iter_key(it))) {
            return wrapper_to_any(json_object_iter_key(it),
                                  json_object_iter_value(it), j, a, out);
        }
        rc = loom_any_new_object(a, &v);
        for (; !rc && it; it = json_object_iter_next((json_t *)j, it)) {
            loom_any *child;
            rc = tjson_to_any(json_object_iter_value(it), a, &child);
            if (!rc) {
                const char *k = json_object_iter_key(it);
#if JANSSON_VERSION_HEX >= 0x020e00
                size_t klen = json_object_iter_key_len(it);
#else
                size_t klen = strlen(k);
#endif
                rc = loom_any_object_set(v, k, klen, child);
                if (rc) {
                    loom_any_free(child);
                }
            }
        }
        break;
    }
    default:
        return LOOM_EINVAL;
    }
    if (rc) {
        loom_any_free(v);
        return rc;
    }
    *out = v;
    return LOOM_OK;
}

/* ---- loom_any -> TJSON -------------------------------------------------- */

static json_t *wrap(const char *key, json_t *val)
{
    json_t *o = json_object();
    if (!o || !val || json_object_set_new(o, key, val)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

const char *tjson_kind_name(loom_type_kind k)
{
    switch (k) {
    case LOOM_TYPE_ARRAY:
        return "array";
    case LOOM_TYPE_MAP:
        return "map";
    case LOOM_TYPE_TEXT:
        return "text";
    case LOOM_TYPE_XML_ELEMENT:
        return "xmlelement";
    case LOOM_TYPE_XML_FRAGMENT:
        return "xmlfragment";
    case LOOM_TYPE_XML_HOOK:
        return "xmlhook";
    case LOOM_TYPE_XML_TEXT:
        return "xmltext";
    default:
        return "undefined";
    }
}

static json_t *number_to_json(double d)
{
    if (isnan(d)) {
        return wrap("$number", json_string("NaN"));
    }
    if (isinf(d)) {
        return wrap("$number", json_string(d > 0 ? "Infinity" : "-Infinity"));
    }
    if (d == 0 && signbit(d)) {
        return wrap("$number", json_string("-0"));
    }
    if (d == trunc(d) && fabs(d) <= 9007199254740992.0) {
        return json_integer((json_int_t)d);
    }
    return json_real(d);
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by the depth of the value
static json_t *container_to_json(const loom_any *v)
{
    bool is_obj = loom_any_kind_of(v) == LOOM_ANY_OBJECT;
    json_t *r = is_obj ? json_object() : json_array();
    for (size_t i = 0; r && i < loom_any_count(v); i++) {
        if (!is_obj) {
            json_t *c = tjson_from_any(loom_any_array_get(v, i));
            if (!c || json_array_append_new(r, c)) {
                json_decref(r);
                r = NULL;
            }
            continue;
        }
        size_t klen;
        const char *k = loom_any_object_key(v, i, &klen);
        json_t *c = tjson_from_any(loom_any_object_value(v, i));
#if JANSSON_VERSION_HEX >= 0x020e00
        int bad = !c || json_object_setn_new(r, k, klen, c);
#else
        int bad = !c || json_object_set_new(r, k, c);
#endif
        if (bad) {
            json_decref(r);
            r = NULL;
        }
    }
    return r;
}

static json_t *type_to_json(const loom_type *t)
{
    loom_type_kind k = loom_type_kind_of(t);
    json_t *o = wrap("$ytype", json_string(tjson_kind_name(k)));
    if (o && (k == LOOM_TYPE_XML_ELEMENT || k == LOOM_TYPE_XML_HOOK)) {
        size_t nlen = 0;
        const char *name = loom_type_name(t, &nlen);
        if (json_object_set_new(o, "name",
                                json_stringn(name ? name : "", nlen))) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by the depth of the value
json_t *tjson_from_any(const loom_any *v)
{
    size_t len;
    if (!v) {
        return NULL;
    }
    switch (loom_any_kind_of(v)) {
    case LOOM_ANY_UNDEFINED:
        return wrap("$undefined", json_true());
    case LOOM_ANY_NULL:
        return json_null();
    case LOOM_ANY_BOOL:
        return json_boolean(loom_any_bool(v));
    case LOOM_ANY_NUMBER:
        return number_to_json(loom_any_number(v));
    case LOOM_ANY_BIGINT: {
        char tmp[32];
        (void)snprintf(tmp, sizeof(tmp), "%" PRId64, loom_any_bigint(v));
        return wrap("$bigint", json_string(tmp));
    }
    case LOOM_ANY_STRING: {
        const char *s = loom_any_string(v, &len);
        return json_stringn(s, len);
    }
    case LOOM_ANY_BINARY: {
        const uint8_t *p = loom_any_binary(v, &len);
        char *h = hex_encode(p, len);
        json_t *r = h ? wrap("$binary", json_string(h)) : NULL;
        free(h);
        return r;
    }
    case LOOM_ANY_ARRAY:
    case LOOM_ANY_OBJECT:
        return container_to_json(v);
    case LOOM_ANY_SUBDOC: {
        const char *g = loom_any_string(v, &len);
        json_t *inner = json_object();
        if (!inner ||
            json_object_set_new(inner, "guid", json_stringn(g, len))) {
            json_decref(inner);
            return NULL;
        }
        return wrap("$ydoc", inner);
    }
    case LOOM_ANY_TYPE:
        return type_to_json(loom_any_type(v));
    }
    return NULL;
}

/* ---- equality ----------------------------------------------------------- */

// NOLINTNEXTLINE(misc-no-recursion): bounded by the depth of the values
int tjson_equal(const json_t *a, const json_t *b)
{
    if (a == b) {
        return 1;
    }
    if (!a || !b) {
        return 0;
    }
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b)) {
            return json_integer_value(a) == json_integer_value(b);
        }
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }
    switch (json_typeof(a)) {
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        for (size_t i = 0; i < json_array_size(a); i++) {
            if (!tjson_equal(json_array_get(a, i), json_array_get(b, i))) {
                return 0;
            }
        }
        return 1;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b)) {
            return 0;
        }
        const char *k;
        json_t *va;
        json_object_foreach((json_t *)a, k, va)
        {
            if (!tjson_equal(va, json_object_get(b, k))) {
                return 0;
            }
        }
        return 1;
    }
    default:
        return json_equal((json_t *)a, (json_t *)b);
    }
}

/* ---- sorted writer ------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int err;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->err) {
        return;
    }
    if (!b->p || b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->err = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* JSON.stringify of a string or a number, via the library's writer. */
static void sb_any_json(sbuf *b, loom_any *v)
{
    loom_buf out = {0};
    if (!v || loom_any_to_json(v, &out)) {
        b->err = 1;
    } else {
        sb_put(b, (const char *)out.data, out.len);
    }
    loom_buf_free(&out);
    loom_any_free(v);
}

/* Next UTF-16 code unit of valid UTF-8 s (pending holds a low surrogate). */
static unsigned
next_unit(const unsigned char **s, const unsigned char *end, unsigned *pending)
{
    if (*pending) {
        unsigned u = *pending;
        *pending = 0;
        return u;
    }
    const unsigned char *p = *s;
    unsigned cp;
    if (p[0] < 0x80) {
        cp = p[0];
        p += 1;
    } else if (p[0] < 0xe0 && end - p >= 2) {
        cp = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu);
        p += 2;
    } else if (p[0] < 0xf0 && end - p >= 3) {
        cp = ((p[0] & 0x0fu) << 12) | ((p[1] & 0x3fu) << 6) | (p[2] & 0x3fu);
        p += 3;
    } else if (end - p >= 4) {
        cp = ((p[0] & 0x07u) << 18) | ((p[1] & 0x3fu) << 12) |
             ((p[2] & 0x3fu) << 6) | (p[3] & 0x3fu);
        p += 4;
    } else {
        cp = p[0];
        p = end;
    }
    *s = p;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *pending = 0xdc00 + (cp & 0x3ff);
        return 0xd800 + (cp >> 10);
    }
    return cp;
}

typedef struct skey {
    const char *k;
    size_t len;
    json_t *v;
} skey;

static int cmp_utf16(const void *pa, const void *pb)
{
    const skey *x = pa, *y = pb;
    const unsigned char *a = (const unsigned char *)x->k, *ae = a + x->len;
    const unsigned char *b = (const unsigned char *)y->k, *be = b + y->len;
    unsigned pa_ = 0, pb_ = 0;
    while ((a < ae || pa_) && (b < be || pb_)) {
        unsigned ua = next_unit(&a, ae, &pa_), ub = next_unit(&b, be, &pb_);
        if (ua != ub) {
            return ua < ub ? -1 : 1;
        }
    }
    bool a_more = a < ae || pa_, b_more = b < be || pb_;
    return a_more - b_more;
}

// NOLINTNEXTLINE(misc-no-recursion): bounded by the depth of the value
static void dump_rec(sbuf *b, const json_t *j)
{
    char tmp[40];
    switch (json_typeof(j)) {
    case JSON_NULL:
        sb_put(b, "null", 4);
        break;
    case JSON_TRUE:
        sb_put(b, "true", 4);
        break;
    case JSON_FALSE:
        sb_put(b, "false", 5);
        break;
    case JSON_INTEGER: {
        int n = snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(j));
        sb_put(b, tmp, (size_t)n);
        break;
    }
    case JSON_REAL: {
        loom_any *v = NULL;
        if (!isfinite(json_real_value(j)) ||
            loom_any_new_number(NULL, json_real_value(j), &v)) {
            b->err = 1;
            break;
        }
        sb_any_json(b, v);
        break;
    }
    case JSON_STRING: {
        loom_any *v = NULL;
        if (loom_any_new_string(NULL, json_string_value(j),
                                json_string_length(j), &v)) {
            b->err = 1;
            break;
        }
        sb_any_json(b, v);
        break;
    }
    case JSON_ARRAY:
        sb_put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(j); i++) {
            if (i) {
                sb_put(b, ",", 1);
            }
            dump_rec(b, json_array_get(j, i));
        }
        sb_put(b, "]", 1);
        break;
    case JSON_OBJECT: {
        size_t n = json_object_size(j);
        skey *keys = malloc((n ? n : 1) * sizeof(*keys));
        if (!keys) {
            b->err = 1;
            break;
        }
        size_t i = 0;
        for (void *it = json_object_iter((json_t *)j); it;
             it = json_object_iter_next((json_t *)j, it)) {
            keys[i].k = json_object_iter_key(it);
#if JANSSON_VERSION_HEX >= 0x020e00
            keys[i].len = json_object_iter_key_len(it);
#else
            keys[i].len = strlen(keys[i].k);
#endif
            keys[i].v = json_object_iter_value(it);
            i++;
        }
        qsort(keys, n, sizeof(*keys), cmp_utf16);
        sb_put(b, "{", 1);
        for (i = 0; i < n; i++) {
            loom_any *k = NULL;
            if (i) {
                sb_put(b, ",", 1);
            }
            if (loom_any_new_string(NULL, keys[i].k, keys[i].len, &k)) {
                b->err = 1;
                break;
            }
            sb_any_json(b, k);
            sb_put(b, ":", 1);
            dump_rec(b, keys[i].v);
        }
        sb_put(b, "}", 1);
        free(keys);
        break;
    }
    default:
        b->err = 1;
        break;
    }
}

char *tjson_dumps_sorted(const json_t *j)
{
    sbuf b = {NULL, 0, 0, 0};
    if (!j) {
        return NULL;
    }
    dump_rec(&b, j);
    if (b.err) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
