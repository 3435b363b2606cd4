/*
 * write.c: writes a parsed struct back as update v1, whole or from a clock
 * offset, byte for byte as yjs writes the same struct after decoding it.
 *
 * yjs never copies raw bytes: it decodes content into JS values and encodes
 * them again. For input that yjs itself produced this is the identity, but a
 * hand-made update may hold non-minimal varUints, Any numbers with a wider
 * tag than needed, JSON text with blanks, or odd subdocument options, and
 * those come out normalised. So every field is re-encoded here: Any values
 * go through loom_any, JSON text through JSON.parse/JSON.stringify.
 */
#include <string.h>

#include "any/any_internal.h"
#include "codec/codec_int.h"

static int write_id(loom_buf *b, uint64_t client, uint64_t clock)
{
    int rc = loom__write_varuint(b, client);
    return rc ? rc : loom__write_varuint(b, clock);
}

/* Writes JSON text as JSON.stringify(JSON.parse(text)). */
static int write_json(loom_buf *b, const char *text, size_t len)
{
    loom_any *v = NULL;
    size_t off;
    int rc = loom__json_read(b->alloc, text, len, false, &v, &off);
    if (rc) {
        return rc;
    }
    loom_buf tmp;
    loom__buf_init(&tmp, b->alloc);
    rc = loom__json_write(&tmp, v);
    if (!rc) {
        rc = loom__write_varstring(b, (const char *)tmp.data, tmp.len);
    }
    loom_buf_free(&tmp);
    loom_any_free(v);
    return rc;
}

/* The tail of a string from `units` UTF-16 units on; a cut inside a pair
 * leaves a lone low surrogate, which TextEncoder writes as U+FFFD. */
static int
write_string_tail(loom_buf *b, const char *s, size_t len, uint64_t units)
{
    bool mid = false;
    size_t at = loom__utf8_offset16(s, len, (size_t)units, &mid);
    if (!mid) {
        return loom__write_varstring(b, s + at, len - at);
    }
    static const uint8_t replacement[3] = {0xef, 0xbf, 0xbd};
    size_t rest = len - at - 4;
    int rc = loom__write_varuint(b, rest + 3);
    if (!rc) {
        rc = loom__buf_append(b, replacement, 3);
    }
    if (!rc) {
        rc = loom__buf_append(b, s + at + 4, rest);
    }
    return rc;
}

/* ContentDoc: guid, then the options object yjs rebuilds. */
static int write_doc(loom_buf *b, const loom__rstruct *s)
{
    loom__doc_opts o;
    memset(&o, 0, sizeof(o));
    int rc = loom__doc_opts_read(b->alloc, s->content, s->content_len, &o);
    if (rc) {
        return rc;
    }
    uint64_t n =
        (uint64_t)!o.gc + (uint64_t)o.auto_load + (uint64_t)(o.meta != NULL);
    rc = loom__write_varstring(b, o.guid, o.guid_len);
    if (!rc) {
        rc = loom__write_u8(b, 118); /* Any object */
    }
    if (!rc) {
        rc = loom__write_varuint(b, n);
    }
    if (!rc && !o.gc) {
        rc = loom__write_varstring(b, "gc", 2);
        if (!rc) {
            rc = loom__write_u8(b, 121); /* false */
        }
    }
    if (!rc && o.auto_load) {
        rc = loom__write_varstring(b, "autoLoad", 8);
        if (!rc) {
            rc = loom__write_u8(b, 120); /* true */
        }
    }
    if (!rc && o.meta) {
        rc = loom__write_varstring(b, "meta", 4);
        if (!rc) {
            rc = loom__any_write(b, o.meta);
        }
    }
    loom__doc_opts_free(&o);
    return rc;
}

/* Item content from `offset` elements / units on. The content was validated
 * by the parser, so read errors here mean a caller-built struct is wrong. */
static int write_content(loom_buf *b, const loom__rstruct *s, uint64_t offset)
{
    loom__reader r;
    loom__reader_init(&r, s->content, s->content_len);
    uint64_t n = 0;
    const char *str;
    size_t len;
    int rc;
    switch (s->ref) {
    case LOOM__REF_DELETED:
        return loom__write_varuint(b, s->length - offset);
    case LOOM__REF_JSON:
        rc = loom__read_varuint(&r, &n);
        if (!rc) {
            rc = loom__write_varuint(b, n - offset);
        }
        for (uint64_t i = 0; i < n && !rc; i++) {
            rc = loom__read_varstring(&r, &str, &len);
            if (rc || i < offset) {
                continue;
            }
            if (len == 9 && memcmp(str, "undefined", 9) == 0) {
                rc = loom__write_varstring(b, str, len);
            } else {
                rc = write_json(b, str, len);
            }
        }
        return rc;
    case LOOM__REF_BINARY: {
        const uint8_t *p;
        rc = loom__read_varbytes(&r, &p, &len);
        return rc ? rc : loom__write_varbytes(b, p, len);
    }
    case LOOM__REF_STRING:
        rc = loom__read_varstring(&r, &str, &len);
        return rc ? rc : write_string_tail(b, str, len, offset);
    case LOOM__REF_EMBED:
        rc = loom__read_varstring(&r, &str, &len);
        return rc ? rc : write_json(b, str, len);
    case LOOM__REF_FORMAT:
        rc = loom__read_varstring(&r, &str, &len);
        if (!rc) {
            rc = loom__write_varstring(b, str, len);
        }
        if (!rc) {
            rc = loom__read_varstring(&r, &str, &len);
        }
        return rc ? rc : write_json(b, str, len);
    case LOOM__REF_TYPE:
        rc = loom__read_varuint(&r, &n);
        if (!rc) {
            rc = loom__write_varuint(b, n);
        }
        if (!rc && (n == 3 || n == 5)) {
            rc = loom__read_varstring(&r, &str, &len);
            if (!rc) {
                rc = loom__write_varstring(b, str, len);
            }
        }
        return rc;
    case LOOM__REF_ANY:
        rc = loom__read_varuint(&r, &n);
        if (!rc) {
            rc = loom__write_varuint(b, n - offset);
        }
        for (uint64_t i = 0; i < n && !rc; i++) {
            if (i < offset) {
                rc = loom__any_skip(&r, 0);
                continue;
            }
            loom_any *v = NULL;
            rc = loom__any_read(&r, b->alloc, 0, &v);
            if (!rc) {
                rc = loom__any_write(b, v);
                loom_any_free(v);
            }
        }
        return rc;
    case LOOM__REF_DOC:
        return write_doc(b, s);
    default:
        return LOOM_EINVAL;
    }
}

static int write_struct(loom_buf *b, const loom__rstruct *s, uint64_t offset)
{
    if (s->ref == LOOM__REF_GC || s->ref == LOOM__REF_SKIP) {
        int rc = loom__write_u8(b, s->ref);
        return rc ? rc : loom__write_varuint(b, s->length - offset);
    }
    bool has_origin = offset > 0 || s->has_origin;
    uint8_t info = (uint8_t)(s->ref & 0x1f);
    if (has_origin) {
        info |= 0x80;
    }
    if (s->has_right_origin) {
        info |= 0x40;
    }
    if (s->parent_sub) {
        info |= 0x20;
    }
    int rc = loom__write_u8(b, info);
    if (!rc && offset > 0) {
        rc = write_id(b, s->client, s->clock + offset - 1);
    } else if (!rc && s->has_origin) {
        rc = write_id(b, s->origin.client, s->origin.clock);
    }
    if (!rc && s->has_right_origin) {
        rc = write_id(b, s->right_origin.client, s->right_origin.clock);
    }
    if (!rc && !has_origin && !s->has_right_origin) {
        if (s->parent_kind == LOOM__PARENT_ROOT) {
            rc = loom__write_varuint(b, 1);
            if (!rc) {
                rc = loom__write_varstring(b, s->parent_name,
                                           s->parent_name_len);
            }
        } else if (s->parent_kind == LOOM__PARENT_ID) {
            rc = loom__write_varuint(b, 0);
            if (!rc) {
                rc = write_id(b, s->parent_id.client, s->parent_id.clock);
            }
        } else {
            /* Nothing to take the parent from: yjs throws here too. */
            return LOOM_EINVAL;
        }
        if (!rc && s->parent_sub) {
            rc = loom__write_varstring(b, s->parent_sub, s->parent_sub_len);
        }
    }
    return rc ? rc : write_content(b, s, offset);
}

int loom__rstruct_write(loom_buf *b, const loom__rstruct *s, uint64_t offset)
{
    if (offset >= s->length) {
        return LOOM_EINVAL;
    }
    size_t mark = b->len;
    int rc = write_struct(b, s, offset);
    if (rc) {
        b->len = mark;
    }
    return rc;
}
