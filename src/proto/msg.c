/*
 * msg.c: y-websocket messages (loom/proto.h): parsing one frame into a
 * loom_msg that points into the input, writing every message, and answering
 * sync messages against a document. The parser is strict where the
 * reference is lax: y-protocols ignores bytes after a message and throws on
 * unknown types at run time; a server that relays what it accepts must know
 * a frame is exactly one well-formed message before acting on it.
 */
#include <string.h>

#include "base/base.h"
#include "loom/proto.h"
#include "loom/update.h"

static int parse_fail(loom_error *err, int code, size_t off, const char *msg)
{
    loom__error_set(err, code, off, 0, msg);
    return code;
}

int loom_msg_parse(const uint8_t *data,
                   size_t len,
                   loom_msg *out,
                   loom_error *err)
{
    if (!out || (!data && len)) {
        return parse_fail(err, LOOM_EINVAL, 0, "no message");
    }
    loom__reader r;
    loom__reader_init(&r, data, len);
    loom_msg m;
    memset(&m, 0, sizeof(m));
    uint64_t outer;
    if (loom__read_varuint(&r, &outer)) {
        loom__reader_error(&r, err, 0);
        return r.err;
    }
    switch (outer) {
    case LOOM_MSG_SYNC: {
        size_t at = r.pos;
        uint64_t step;
        if (loom__read_varuint(&r, &step)) {
            break;
        }
        if (step > LOOM_SYNC_UPDATE) {
            return parse_fail(err, LOOM_EUNSUPPORTED, at,
                              "unknown sync message type");
        }
        m.sync_type = (loom_sync_type)step;
        (void)loom__read_varbytes(&r, &m.payload, &m.payload_len);
        break;
    }
    case LOOM_MSG_AWARENESS:
        (void)loom__read_varbytes(&r, &m.payload, &m.payload_len);
        break;
    case LOOM_MSG_AUTH: {
        size_t at = r.pos;
        uint64_t t;
        if (loom__read_varuint(&r, &t)) {
            break;
        }
        if (t != LOOM_AUTH_PERMISSION_DENIED) {
            return parse_fail(err, LOOM_EUNSUPPORTED, at,
                              "unknown auth message type");
        }
        m.auth_type = (unsigned)t;
        const char *s;
        if (!loom__read_varstring(&r, &s, &m.payload_len)) {
            m.payload = (const uint8_t *)s;
        }
        break;
    }
    case LOOM_MSG_QUERY_AWARENESS:
        break;
    default:
        return parse_fail(err, LOOM_EUNSUPPORTED, 0, "unknown message type");
    }
    if (r.err) {
        loom__reader_error(&r, err, 0);
        return r.err;
    }
    if (r.pos != r.len) {
        return parse_fail(err, LOOM_EMALFORMED, r.pos,
                          "bytes after the end of the message");
    }
    m.type = (loom_msg_type)outer;
    if (!m.payload) {
        m.payload = (const uint8_t *)"";
    }
    *out = m;
    return LOOM_OK;
}

/* Appends, restoring the old length when any part fails. */
static int finish(loom_buf *out, size_t old_len, int rc)
{
    if (rc) {
        out->len = old_len;
    }
    return rc;
}

int loom_msg_write_sync(loom_buf *out,
                        loom_sync_type type,
                        const uint8_t *payload,
                        size_t len)
{
    if (!out || (unsigned)type > LOOM_SYNC_UPDATE || (!payload && len)) {
        return LOOM_EINVAL;
    }
    size_t old = out->len;
    int rc = loom__buf_reserve(out, len + 12);
    if (!rc) {
        rc = loom__write_u8(out, LOOM_MSG_SYNC);
    }
    if (!rc) {
        rc = loom__write_u8(out, (uint8_t)type);
    }
    if (!rc) {
        rc = loom__write_varbytes(out, payload, len);
    }
    return finish(out, old, rc);
}

int loom_msg_write_sync_step1(loom_buf *out, const loom_doc *doc)
{
    if (!out || !doc) {
        return LOOM_EINVAL;
    }
    loom_buf sv = {0};
    int rc = loom_doc_encode_state_vector(doc, &sv);
    if (!rc) {
        rc = loom_msg_write_sync(out, LOOM_SYNC_STEP1, sv.data, sv.len);
    }
    loom_buf_free(&sv);
    return rc;
}

int loom_msg_write_sync_step2(loom_buf *out,
                              const loom_doc *doc,
                              const uint8_t *sv,
                              size_t sv_len,
                              loom_error *err)
{
    if (!out || !doc || (!sv && sv_len)) {
        return LOOM_EINVAL;
    }
    /* An empty payload is not a state vector: y-protocols would throw on
     * it, and encodeStateAsUpdate(doc, NULL) would mean "everything". */
    if (sv_len == 0) {
        loom__error_set(err, LOOM_EMALFORMED, 0, 0,
                        "empty state vector in sync step 1");
        return LOOM_EMALFORMED;
    }
    loom_buf u = {0};
    int rc = loom_doc_encode_state_as_update(doc, sv, sv_len, &u, err);
    if (!rc) {
        rc = loom_msg_write_sync(out, LOOM_SYNC_STEP2, u.data, u.len);
    }
    loom_buf_free(&u);
    return rc;
}

int loom_msg_write_awareness(loom_buf *out, const uint8_t *update, size_t len)
{
    if (!out || (!update && len)) {
        return LOOM_EINVAL;
    }
    size_t old = out->len;
    int rc = loom__write_u8(out, LOOM_MSG_AWARENESS);
    if (!rc) {
        rc = loom__write_varbytes(out, update, len);
    }
    return finish(out, old, rc);
}

int loom_msg_write_auth_denied(loom_buf *out, const char *reason, size_t len)
{
    if (!out || (!reason && len) || (len && !loom__utf8_valid(reason, len))) {
        return LOOM_EINVAL;
    }
    size_t old = out->len;
    int rc = loom__write_u8(out, LOOM_MSG_AUTH);
    if (!rc) {
        rc = loom__write_u8(out, LOOM_AUTH_PERMISSION_DENIED);
    }
    if (!rc) {
        rc = loom__write_varstring(out, len ? reason : "", len);
    }
    return finish(out, old, rc);
}

int loom_msg_write_query_awareness(loom_buf *out)
{
    if (!out) {
        return LOOM_EINVAL;
    }
    return loom__write_u8(out, LOOM_MSG_QUERY_AWARENESS);
}

int loom_sync_handle(loom_doc *doc,
                     const loom_msg *msg,
                     void *origin,
                     loom_buf *reply,
                     loom_error *err)
{
    if (!doc || !msg || msg->type != LOOM_MSG_SYNC) {
        return LOOM_EINVAL;
    }
    switch (msg->sync_type) {
    case LOOM_SYNC_STEP1:
        if (!reply) {
            return LOOM_EINVAL;
        }
        return loom_msg_write_sync_step2(reply, doc, msg->payload,
                                         msg->payload_len, err);
    case LOOM_SYNC_STEP2:
    case LOOM_SYNC_UPDATE:
        /* loom_doc_apply_update validates the whole update before it
         * touches the document: all or nothing. */
        return loom_doc_apply_update(doc, msg->payload, msg->payload_len,
                                     origin, err);
    default:
        return LOOM_EINVAL;
    }
}
