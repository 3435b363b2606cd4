/*
 * lib0.c: the lib0 primitives Yjs is built on, written to a loom_buf and read
 * back from untrusted bytes with bounds checks.
 *
 * Reading follows lib0's decoding.js: varUint/varInt accept non-minimal
 * encodings and fail past 2^53-1 (JS numbers), varInt keeps the sign of a
 * zero magnitude (-0 is a flag in update v2), and strings go through a fatal
 * UTF-8 check. A reader remembers its first error, so a caller can read a
 * sequence of fields and check once.
 */
#include <string.h>

#include "base/base.h"

/* ---- writing ----------------------------------------------------------- */

int loom__write_u8(loom_buf *b, uint8_t v)
{
    return loom__buf_push(b, v);
}

int loom__write_varuint(loom_buf *b, uint64_t v)
{
    if (b->cap - b->len >= 10) {
        /* room for the longest: write in place */
        b->len = (size_t)(loom__put_varuint(b->data + b->len, v) - b->data);
        return LOOM_OK;
    }
    uint8_t tmp[10];
    return loom__buf_append(b, tmp, (size_t)(loom__put_varuint(tmp, v) - tmp));
}

int loom__write_varint(loom_buf *b, bool negative, uint64_t magnitude)
{
    uint8_t tmp[11];
    size_t n = 0;
    uint8_t first = (uint8_t)(magnitude & 0x3f);
    if (negative) {
        first |= 0x40;
    }
    magnitude >>= 6;
    if (magnitude) {
        first |= 0x80;
    }
    tmp[n++] = first;
    while (magnitude) {
        uint8_t byte = (uint8_t)(magnitude & 0x7f);
        magnitude >>= 7;
        if (magnitude) {
            byte |= 0x80;
        }
        tmp[n++] = byte;
    }
    return loom__buf_append(b, tmp, n);
}

int loom__write_varint_i64(loom_buf *b, int64_t v)
{
    bool neg = v < 0;
    uint64_t mag = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    return loom__write_varint(b, neg, mag);
}

int loom__write_varstring(loom_buf *b, const char *s, size_t len)
{
    return loom__write_varbytes(b, (const uint8_t *)s, len);
}

int loom__write_varbytes(loom_buf *b, const uint8_t *p, size_t len)
{
    /* Reserve once so a failure leaves nothing half-written; then length
     * and bytes go in place (strings and keys are most of what encoders
     * write, so this is one of the hottest writers). */
    if (len + 10 < len) {
        return LOOM_ENOMEM;
    }
    if (b->cap - b->len < len + 10) {
        int rc = loom__buf_reserve(b, len + 10);
        if (rc) {
            return rc;
        }
    }
    uint8_t *q = loom__put_varuint(b->data + b->len, len);
    if (len) {
        memcpy(q, p, len);
    }
    b->len = (size_t)(q - b->data) + len;
    return LOOM_OK;
}

static int write_be(loom_buf *b, uint64_t v, size_t n)
{
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) {
        tmp[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
    return loom__buf_append(b, tmp, n);
}

int loom__write_f32(loom_buf *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    return write_be(b, u, 4);
}

int loom__write_f64(loom_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return write_be(b, u, 8);
}

int loom__write_i64(loom_buf *b, int64_t v)
{
    return write_be(b, (uint64_t)v, 8);
}

/* ---- reading ----------------------------------------------------------- */

int loom__reader_fail(loom__reader *r, int code, size_t pos, const char *msg)
{
    if (!r->err) {
        r->err = code;
        r->err_pos = pos;
        r->err_msg = msg;
    }
    return code;
}

static int eof(loom__reader *r, size_t start)
{
    return loom__reader_fail(r, LOOM_EMALFORMED, start,
                             "unexpected end of input");
}

int loom__read_u8_any(loom__reader *r, uint8_t *out)
{
    if (r->err) {
        return r->err;
    }
    if (r->pos >= r->len) {
        return eof(r, r->pos);
    }
    *out = r->p[r->pos++];
    return LOOM_OK;
}

/*
 * Shared tail of varUint/varInt: continues with 7-bit groups starting at bit
 * `shift`. Zero groups past bit 53 are accepted (non-minimal encodings), any
 * set bit at or above bit 53 is out of range.
 */
static int read_groups(
    loom__reader *r, size_t start, uint64_t num, unsigned shift, uint64_t *out)
{
    for (;;) {
        if (r->pos >= r->len) {
            return eof(r, start);
        }
        uint8_t byte = r->p[r->pos++];
        uint64_t bits = byte & 0x7f;
        if (bits) {
            if (shift >= 53 || (bits >> (53 - shift)) != 0) {
                return loom__reader_fail(r, LOOM_EMALFORMED, start,
                                         "integer out of range");
            }
            num |= bits << shift;
        }
        if (!(byte & 0x80)) {
            *out = num;
            return LOOM_OK;
        }
        if (shift < 53) {
            shift += 7;
        }
    }
}

int loom__read_varuint_any(loom__reader *r, uint64_t *out)
{
    if (r->err) {
        return r->err;
    }
    if (r->pos < r->len && r->p[r->pos] < 0x80) {
        *out = r->p[r->pos++]; /* one byte: most lengths and clocks */
        return LOOM_OK;
    }
    uint64_t v;
    size_t start = r->pos;
    int rc = read_groups(r, start, 0, 0, &v);
    if (rc) {
        r->pos = start;
        return rc;
    }
    *out = v;
    return LOOM_OK;
}

int loom__read_varint(loom__reader *r, bool *negative, uint64_t *magnitude)
{
    if (r->err) {
        return r->err;
    }
    size_t start = r->pos;
    if (r->pos >= r->len) {
        return eof(r, start);
    }
    uint8_t first = r->p[r->pos++];
    uint64_t v = first & 0x3f;
    if (first & 0x80) {
        int rc = read_groups(r, start, v, 6, &v);
        if (rc) {
            r->pos = start;
            return rc;
        }
    }
    *negative = (first & 0x40) != 0;
    *magnitude = v;
    return LOOM_OK;
}

int loom__read_varbytes(loom__reader *r, const uint8_t **p, size_t *len)
{
    if (r->err) {
        return r->err;
    }
    size_t start = r->pos;
    uint64_t n;
    int rc = loom__read_varuint(r, &n);
    if (rc) {
        return rc;
    }
    if (n > loom__reader_left(r)) {
        r->pos = start;
        return loom__reader_fail(r, LOOM_EMALFORMED, start,
                                 "length past the end of input");
    }
    *p = r->p + r->pos;
    *len = (size_t)n;
    r->pos += (size_t)n;
    return LOOM_OK;
}

int loom__read_varstring16_any(loom__reader *r,
                               const char **s,
                               size_t *len,
                               size_t *units)
{
    if (r->err) {
        return r->err;
    }
    size_t start = r->pos;
    const uint8_t *p;
    size_t n, u;
    int rc = loom__read_varbytes(r, &p, &n);
    if (rc) {
        return rc;
    }
    if (loom__utf8_check16((const char *)p, n, &u) != n) {
        r->pos = start;
        return loom__reader_fail(r, LOOM_EMALFORMED, start,
                                 "invalid UTF-8 in string");
    }
    *s = (const char *)p;
    *len = n;
    *units = u;
    return LOOM_OK;
}

int loom__read_varstring_any(loom__reader *r, const char **s, size_t *len)
{
    size_t units;
    return loom__read_varstring16_any(r, s, len, &units);
}

static int read_be(loom__reader *r, size_t n, uint64_t *out)
{
    if (r->err) {
        return r->err;
    }
    if (loom__reader_left(r) < n) {
        return eof(r, r->pos);
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | r->p[r->pos + i];
    }
    r->pos += n;
    *out = v;
    return LOOM_OK;
}

int loom__read_f32(loom__reader *r, float *out)
{
    uint64_t v = 0;
    int rc = read_be(r, 4, &v);
    if (rc) {
        return rc;
    }
    uint32_t u = (uint32_t)v;
    memcpy(out, &u, sizeof(u));
    return LOOM_OK;
}

int loom__read_f64(loom__reader *r, double *out)
{
    uint64_t v = 0;
    int rc = read_be(r, 8, &v);
    if (rc) {
        return rc;
    }
    memcpy(out, &v, sizeof(v));
    return LOOM_OK;
}

int loom__read_i64(loom__reader *r, int64_t *out)
{
    uint64_t v = 0;
    int rc = read_be(r, 8, &v);
    if (rc) {
        return rc;
    }
    memcpy(out, &v, sizeof(v));
    return LOOM_OK;
}
