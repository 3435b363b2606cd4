/*
 * json.c: JSON text as JavaScript's JSON.stringify writes it and JSON.parse
 * reads it. Yjs update v1 stores embeds, format values and legacy ContentJSON
 * elements as JSON text, so our output must equal JS output byte for byte:
 * no whitespace, JS number formatting, Object.keys order, only the escapes
 * JSON.stringify uses, undefined members dropped. Text is parsed strictly
 * (RFC 8259 as JSON.parse implements it); because values hold valid UTF-8, a
 * lone surrogate escape becomes U+FFFD, as TextEncoder would later make it.
 */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "any/any_internal.h"

/* ---- writing ------------------------------------------------------------ */

static int put(loom_buf *b, const char *s, size_t n)
{
    return loom__buf_append(b, s, n);
}

static int write_string(loom_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    int rc = loom__buf_push(b, '"');
    size_t run = 0; /* start of the pending run of literal bytes */
    for (size_t i = 0; !rc && i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        rc = put(b, s + run, i - run);
        run = i + 1;
        if (rc) {
            break;
        }
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
            break;
        }
        rc = put(b, esc, n);
    }
    if (!rc) {
        rc = put(b, s + run, len - run);
    }
    return rc ? rc : loom__buf_push(b, '"');
}

static int write_number(loom_buf *b, double v)
{
    if (!isfinite(v)) {
        return put(b, "null", 4);
    }
    char tmp[40];
    size_t n = loom__js_number_str(v, tmp);
    return put(b, tmp, n);
}

static int write_rec(loom_buf *b, const loom_any *v, int depth);

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int write_object(loom_buf *b, const loom_any *v, int depth)
{
    size_t *order;
    int rc = loom__any_js_order(v, &order);
    if (rc) {
        return rc;
    }
    rc = loom__buf_push(b, '{');
    bool first = true;
    for (size_t k = 0; !rc && k < v->u.obj.n; k++) {
        size_t i = order ? order[k] : k;
        const loom_any *child = v->u.obj.v[i];
        if (child->kind == LOOM_ANY_UNDEFINED) {
            continue;
        }
        if (!first) {
            rc = loom__buf_push(b, ',');
        }
        first = false;
        if (!rc) {
            rc = write_string(b, v->u.obj.keys[i], v->u.obj.klens[i]);
        }
        if (!rc) {
            rc = loom__buf_push(b, ':');
        }
        if (!rc) {
            rc = write_rec(b, child, depth + 1);
        }
    }
    loom__free(v->a, order, v->u.obj.n * sizeof(*order));
    return rc ? rc : loom__buf_push(b, '}');
}

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int write_rec(loom_buf *b, const loom_any *v, int depth)
{
    int rc;
    switch ((loom_any_kind)v->kind) {
    case LOOM_ANY_UNDEFINED: /* in arrays; members are skipped by the caller */
    case LOOM_ANY_NULL:
        return put(b, "null", 4);
    case LOOM_ANY_BOOL:
        return v->u.b ? put(b, "true", 4) : put(b, "false", 5);
    case LOOM_ANY_NUMBER:
        return write_number(b, v->u.num);
    case LOOM_ANY_STRING:
        return write_string(b, v->u.str.p, v->u.str.len);
    case LOOM_ANY_BINARY:
        /* A Uint8Array stringifies as an object of its indices. */
        rc = loom__buf_push(b, '{');
        for (size_t i = 0; !rc && i < v->u.bin.len; i++) {
            char tmp[48];
            size_t n = 0;
            if (i) {
                tmp[n++] = ',';
            }
            tmp[n++] = '"';
            n += loom__js_number_str((double)i, tmp + n);
            tmp[n++] = '"';
            tmp[n++] = ':';
            n += loom__js_number_str((double)v->u.bin.p[i], tmp + n);
            rc = put(b, tmp, n);
        }
        return rc ? rc : loom__buf_push(b, '}');
    case LOOM_ANY_ARRAY:
        if (depth >= LOOM__MAX_DEPTH) {
            return LOOM_ELIMIT;
        }
        rc = loom__buf_push(b, '[');
        for (size_t i = 0; !rc && i < v->u.arr.n; i++) {
            if (i) {
                rc = loom__buf_push(b, ',');
            }
            if (!rc) {
                rc = write_rec(b, v->u.arr.v[i], depth + 1);
            }
        }
        return rc ? rc : loom__buf_push(b, ']');
    case LOOM_ANY_OBJECT:
        if (depth >= LOOM__MAX_DEPTH) {
            return LOOM_ELIMIT;
        }
        return write_object(b, v, depth);
    case LOOM_ANY_BIGINT: /* JSON.stringify throws on BigInt */
    case LOOM_ANY_SUBDOC:
    case LOOM_ANY_TYPE:
        return LOOM_EINVAL;
    }
    return LOOM_EINVAL;
}

int loom__json_write(loom_buf *b, const loom_any *v)
{
    size_t start = b->len;
    int rc;
    if (v->kind == LOOM_ANY_UNDEFINED) {
        rc = put(b, "undefined", 9);
    } else {
        rc = write_rec(b, v, 0);
    }
    if (rc) {
        b->len = start;
    }
    return rc;
}

/* ---- parsing ------------------------------------------------------------ */

typedef struct jparser {
    const char *s;
    size_t len;
    size_t pos;
    const loom_allocator *a;
    bool build; /* false: only validate */
    int err;
    size_t err_off;
    const char *err_msg;
} jparser;

static int fail(jparser *p, int code, size_t off, const char *msg)
{
    if (!p->err) {
        p->err = code;
        p->err_off = off;
        p->err_msg = msg;
    }
    return p->err;
}

static int syntax(jparser *p, const char *msg)
{
    return fail(p, LOOM_EMALFORMED, p->pos, msg);
}

static int nomem(jparser *p)
{
    return fail(p, LOOM_ENOMEM, p->pos, "out of memory");
}

static void skip_ws(jparser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        p->pos++;
    }
}

static int hex4(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9') {
            d = (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            d = (uint32_t)(c - 'A' + 10);
        } else {
            return -1;
        }
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Decodes one escape at s[i] (just after the backslash) into o (when not
 * NULL). Returns the number of input bytes consumed after the backslash and
 * the number of bytes produced in *olen, or 0 on a bad escape.
 */
static size_t
unescape(const char *s, size_t i, size_t len, char *o, size_t *olen)
{
    char tmp[4];
    if (!o) {
        o = tmp;
    }
    *olen = 1;
    switch (s[i]) {
    case '"':
    case '\\':
    case '/':
        o[0] = s[i];
        return 1;
    case 'b':
        o[0] = '\b';
        return 1;
    case 'f':
        o[0] = '\f';
        return 1;
    case 'n':
        o[0] = '\n';
        return 1;
    case 'r':
        o[0] = '\r';
        return 1;
    case 't':
        o[0] = '\t';
        return 1;
    case 'u':
        break;
    default:
        return 0;
    }
    uint32_t cp;
    if (len - i < 5 || hex4(s + i + 1, &cp)) {
        return 0;
    }
    size_t used = 5;
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (len - i >= 11 && s[i + 5] == '\\' && s[i + 6] == 'u' &&
            !hex4(s + i + 7, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            used = 11;
        } else {
            cp = 0xfffd;
        }
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        cp = 0xfffd;
    }
    *olen = put_utf8(o, cp);
    return used;
}

/* Parses a string at p->pos (the opening quote). When building, *out gets a
 * NUL-terminated copy (len + 1 bytes, allocator p->a). */
static int parse_string(jparser *p, char **out, size_t *out_len)
{
    size_t start = ++p->pos;
    size_t dlen = 0;
    bool escapes = false;
    size_t i = start;
    for (;;) {
        if (i >= p->len) {
            p->pos = i;
            return syntax(p, "unterminated string");
        }
        uint8_t c = (uint8_t)p->s[i];
        if (c == '"') {
            break;
        }
        if (c < 0x20) {
            p->pos = i;
            return syntax(p, "control character in string");
        }
        if (c == '\\') {
            size_t olen;
            size_t used =
                i + 1 < p->len ? unescape(p->s, i + 1, p->len, NULL, &olen) : 0;
            if (!used) {
                p->pos = i;
                return syntax(p, "bad escape in string");
            }
            escapes = true;
            dlen += olen;
            i += 1 + used;
        } else {
            dlen++;
            i++;
        }
    }
    size_t end = i;
    p->pos = end + 1;
    if (!p->build) {
        return LOOM_OK;
    }
    char *d = loom__malloc(p->a, dlen + 1);
    if (!d) {
        return nomem(p);
    }
    if (!escapes) {
        memcpy(d, p->s + start, dlen);
    } else {
        size_t o = 0;
        for (i = start; i < end;) {
            if (p->s[i] == '\\') {
                size_t olen;
                i += 1 + unescape(p->s, i + 1, p->len, d + o, &olen);
                o += olen;
            } else {
                d[o++] = p->s[i++];
            }
        }
    }
    d[dlen] = '\0';
    *out = d;
    *out_len = dlen;
    return LOOM_OK;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int parse_number(jparser *p, loom_any **out)
{
    size_t start = p->pos, i = p->pos;
    const char *s = p->s;
    if (i < p->len && s[i] == '-') {
        i++;
    }
    if (i >= p->len || !is_digit(s[i])) {
        p->pos = i;
        return syntax(p, "bad number");
    }
    if (s[i] == '0') {
        i++;
    } else {
        while (i < p->len && is_digit(s[i])) {
            i++;
        }
    }
    size_t dot = SIZE_MAX;
    if (i < p->len && s[i] == '.') {
        dot = i++;
        if (i >= p->len || !is_digit(s[i])) {
            p->pos = i;
            return syntax(p, "bad number");
        }
        while (i < p->len && is_digit(s[i])) {
            i++;
        }
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        if (i >= p->len || !is_digit(s[i])) {
            p->pos = i;
            return syntax(p, "bad number");
        }
        while (i < p->len && is_digit(s[i])) {
            i++;
        }
    }
    p->pos = i;
    if (!p->build) {
        return LOOM_OK;
    }
    /* strtod needs a NUL-terminated copy and the locale's decimal point. */
    size_t n = i - start;
    char small[64];
    char *tmp = n < sizeof(small) ? small : loom__malloc(p->a, n + 1);
    if (!tmp) {
        return nomem(p);
    }
    memcpy(tmp, s + start, n);
    tmp[n] = '\0';
    if (dot != SIZE_MAX) {
        const char *lp = localeconv()->decimal_point;
        if (lp && lp[0] && !lp[1]) {
            tmp[dot - start] = lp[0];
        }
    }
    double v = strtod(tmp, NULL);
    if (tmp != small) {
        loom__free(p->a, tmp, n + 1);
    }
    if (loom_any_new_number(p->a, v, out)) {
        return nomem(p);
    }
    return LOOM_OK;
}

static int parse_value(jparser *p, int depth, loom_any **out);

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int parse_array(jparser *p, int depth, loom_any **out)
{
    loom_any *arr = NULL;
    if (p->build && loom_any_new_array(p->a, &arr)) {
        return nomem(p);
    }
    p->pos++; /* [ */
    skip_ws(p);
    int rc = LOOM_OK;
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            loom_any *child = NULL;
            rc = parse_value(p, depth + 1, &child);
            if (rc) {
                break;
            }
            if (arr && loom_any_array_push(arr, child)) {
                loom_any_free(child);
                rc = nomem(p);
                break;
            }
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == ']') {
                p->pos++;
                break;
            }
            rc = syntax(p, "expected ',' or ']'");
            break;
        }
    }
    if (rc) {
        loom_any_free(arr);
        return rc;
    }
    *out = arr;
    return LOOM_OK;
}

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int parse_object(jparser *p, int depth, loom_any **out)
{
    loom_any *obj = NULL;
    if (p->build && loom_any_new_object(p->a, &obj)) {
        return nomem(p);
    }
    p->pos++; /* { */
    skip_ws(p);
    int rc = LOOM_OK;
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                rc = syntax(p, "expected a string key");
                break;
            }
            char *key = NULL;
            size_t klen = 0;
            rc = parse_string(p, &key, &klen);
            if (rc) {
                break;
            }
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                loom__free(p->a, key, klen + 1);
                rc = syntax(p, "expected ':'");
                break;
            }
            p->pos++;
            loom_any *child = NULL;
            rc = parse_value(p, depth + 1, &child);
            if (rc) {
                loom__free(p->a, key, klen + 1);
                break;
            }
            if (obj && loom__any_object_append_take(obj, key, klen, child)) {
                loom__free(p->a, key, klen + 1);
                loom_any_free(child);
                rc = nomem(p);
                break;
            }
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->len && p->s[p->pos] == '}') {
                p->pos++;
                break;
            }
            rc = syntax(p, "expected ',' or '}'");
            break;
        }
    }
    /* JSON.parse: a repeated key keeps its first position, last value. */
    if (!rc && obj && loom__any_object_dedupe(obj)) {
        rc = nomem(p);
    }
    if (rc) {
        loom_any_free(obj);
        return rc;
    }
    *out = obj;
    return LOOM_OK;
}

static int literal(jparser *p, const char *word, size_t n)
{
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        return syntax(p, "unexpected character");
    }
    p->pos += n;
    return LOOM_OK;
}

// NOLINTNEXTLINE(misc-no-recursion): depth bounded by LOOM__MAX_DEPTH
static int parse_value(jparser *p, int depth, loom_any **out)
{
    skip_ws(p);
    if (p->pos >= p->len) {
        return syntax(p, "unexpected end of JSON text");
    }
    char c = p->s[p->pos];
    int rc;
    switch (c) {
    case '{':
    case '[':
        if (depth >= LOOM__MAX_DEPTH) {
            return fail(p, LOOM_ELIMIT, p->pos, "JSON nested too deeply");
        }
        return c == '{' ? parse_object(p, depth, out)
                        : parse_array(p, depth, out);
    case '"': {
        char *s = NULL;
        size_t len = 0;
        rc = parse_string(p, &s, &len);
        if (rc || !p->build) {
            return rc;
        }
        if (loom__any_new_string_take(p->a, s, len, out)) {
            loom__free(p->a, s, len + 1);
            return nomem(p);
        }
        return LOOM_OK;
    }
    case 't':
    case 'f':
        rc = literal(p, c == 't' ? "true" : "false", c == 't' ? 4 : 5);
        if (!rc && p->build && loom_any_new_bool(p->a, c == 't', out)) {
            rc = nomem(p);
        }
        return rc;
    case 'n':
        rc = literal(p, "null", 4);
        if (!rc && p->build && loom_any_new_null(p->a, out)) {
            rc = nomem(p);
        }
        return rc;
    default:
        if (c == '-' || is_digit(c)) {
            return parse_number(p, out);
        }
        return syntax(p, "unexpected character");
    }
}

static int json_parse(const loom_allocator *a,
                      const char *text,
                      size_t len,
                      bool allow_undefined,
                      bool build,
                      loom_any **out,
                      size_t *err_off,
                      const char **err_msg)
{
    jparser p = {text, len, 0, a, build, 0, 0, NULL};
    loom_any *v = NULL;
    int rc;
    /* yjs ContentJSON compares the whole string with 'undefined' before
     * calling JSON.parse, so no whitespace is allowed around it. */
    if (allow_undefined && len == 9 && memcmp(text, "undefined", 9) == 0) {
        if (build && loom_any_new_undefined(a, &v)) {
            rc = nomem(&p);
        } else {
            rc = LOOM_OK;
        }
    } else {
        size_t bad = loom__utf8_check(text, len);
        if (bad != len) {
            rc = fail(&p, LOOM_EMALFORMED, bad, "invalid UTF-8 in JSON text");
        } else {
            rc = parse_value(&p, 0, &v);
            if (!rc) {
                skip_ws(&p);
                if (p.pos != len) {
                    loom_any_free(v);
                    v = NULL;
                    rc = syntax(&p, "unexpected text after the JSON value");
                }
            }
        }
    }
    if (rc) {
        if (err_off) {
            *err_off = p.err_off;
        }
        if (err_msg) {
            *err_msg = p.err_msg;
        }
        return rc;
    }
    if (build) {
        *out = v;
    }
    return LOOM_OK;
}

int loom__json_read_msg(const loom_allocator *a,
                        const char *text,
                        size_t len,
                        bool allow_undefined,
                        loom_any **out,
                        size_t *err_off,
                        const char **err_msg)
{
    return json_parse(a, text, len, allow_undefined, true, out, err_off,
                      err_msg);
}

int loom__json_read(const loom_allocator *a,
                    const char *text,
                    size_t len,
                    bool allow_undefined,
                    loom_any **out,
                    size_t *err_off)
{
    return json_parse(a, text, len, allow_undefined, true, out, err_off, NULL);
}

int loom__json_check(const char *text,
                     size_t len,
                     bool allow_undefined,
                     size_t *err_off)
{
    return json_parse(NULL, text, len, allow_undefined, false, NULL, err_off,
                      NULL);
}
