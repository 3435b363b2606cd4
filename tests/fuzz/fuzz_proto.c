/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_proto.c: libFuzzer target for y-websocket frames as a
 * server receives them: loom_msg_parse, then what the server does with the
 * message: sync messages against the pre-filled document of base.h, and
 * awareness updates against an awareness holding a few states. Checks: a
 * parsed payload lies inside the input; a message written back from the
 * parsed fields is the input byte for byte; a failed apply changes neither
 * the document nor the awareness; an accepted awareness update re-encodes
 * to one that a fresh awareness accepts.
 */
#include "fuzz.h"

static int same_awareness(const loom_awareness *a, const loom_buf *before)
{
    loom_buf now = {0};
    int rc = loom_awareness_encode_all(a, &now);
    int eq =
        rc == LOOM_ENOTFOUND ? before->len == 0 : fuzz_buf_eq(&now, before);
    loom_buf_free(&now);
    return eq;
}

static void awareness_case(const uint8_t *p, size_t n)
{
    loom_awareness *aw = NULL;
    if (loom_awareness_new(NULL, 1, 0, &aw)) {
        return;
    }
    static const uint8_t seed[] = {0x02, 0x05, 0x01, 0x02, '{', '}',
                                   0x06, 0x03, 0x02, '[',  ']'};
    FUZZ_CHECK(loom_awareness_apply(aw, seed, sizeof seed, 0, NULL, NULL,
                                    NULL) == LOOM_OK);
    loom_buf before = {0};
    FUZZ_CHECK(loom_awareness_encode_all(aw, &before) == LOOM_OK);
    loom_error err;
    int rc = loom_awareness_apply(aw, p, n, 1, NULL, NULL, &err);
    if (rc) {
        FUZZ_CHECK(rc == LOOM_EMALFORMED || rc == LOOM_ENOMEM);
        FUZZ_CHECK(err.offset <= n);
        FUZZ_CHECK(same_awareness(aw, &before));
    } else {
        loom_buf all = {0};
        rc = loom_awareness_encode_all(aw, &all);
        if (rc == LOOM_OK) {
            loom_awareness *other = NULL;
            if (!loom_awareness_new(NULL, 2, 0, &other)) {
                FUZZ_CHECK(loom_awareness_apply(other, all.data, all.len, 0,
                                                NULL, NULL, NULL) == LOOM_OK);
                loom_awareness_free(other);
            }
        } else {
            FUZZ_CHECK(rc == LOOM_ENOTFOUND);
        }
        loom_buf_free(&all);
    }
    loom_buf_free(&before);
    loom_awareness_free(aw);
}

static void sync_case(const loom_msg *m)
{
    loom_doc *d = fuzz_base_doc(1);
    if (!d) {
        return;
    }
    loom_buf before = {0}, after = {0}, reply = {0};
    FUZZ_CHECK(loom_doc_encode_state_as_update(d, NULL, 0, &before, NULL) ==
               LOOM_OK);
    int rc = loom_sync_handle(d, m, NULL, &reply, NULL);
    if (rc) {
        FUZZ_CHECK(reply.len == 0);
        FUZZ_CHECK(loom_doc_encode_state_as_update(d, NULL, 0, &after, NULL) ==
                   LOOM_OK);
        FUZZ_CHECK(fuzz_buf_eq(&before, &after));
    } else if (m->sync_type == LOOM_SYNC_STEP1) {
        loom_msg r;
        FUZZ_CHECK(loom_msg_parse(reply.data, reply.len, &r, NULL) == LOOM_OK);
        FUZZ_CHECK(r.type == LOOM_MSG_SYNC && r.sync_type == LOOM_SYNC_STEP2);
        FUZZ_CHECK(loom_update_validate(r.payload, r.payload_len, NULL) ==
                   LOOM_OK);
    } else {
        fuzz_read_all(d);
    }
    loom_buf_free(&before);
    loom_buf_free(&after);
    loom_buf_free(&reply);
    loom_doc_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_msg m;
    loom_error err;
    int rc = loom_msg_parse(data, size, &m, &err);
    if (rc) {
        FUZZ_CHECK(rc == LOOM_EMALFORMED || rc == LOOM_EUNSUPPORTED);
        FUZZ_CHECK(err.offset <= size);
        /* the awareness decoder also sees raw bytes */
        if (size && data[0] == 0xff) {
            awareness_case(data + 1, size - 1);
        }
        return 0;
    }
    FUZZ_CHECK(m.payload_len == 0 ||
               (m.payload >= data && m.payload + m.payload_len <= data + size));
    loom_buf back = {0};
    switch (m.type) {
    case LOOM_MSG_SYNC:
        rc = loom_msg_write_sync(&back, m.sync_type, m.payload, m.payload_len);
        break;
    case LOOM_MSG_AWARENESS:
        rc = loom_msg_write_awareness(&back, m.payload, m.payload_len);
        break;
    case LOOM_MSG_AUTH:
        rc = loom_msg_write_auth_denied(&back, (const char *)m.payload,
                                        m.payload_len);
        break;
    default:
        rc = loom_msg_write_query_awareness(&back);
        break;
    }
    if (rc == LOOM_OK) {
        /* varints are minimal in what we write; the input may use longer
         * forms, so compare only when the lengths agree */
        FUZZ_CHECK(back.len > size ||
                   (back.len == size ? memcmp(back.data, data, size) == 0 : 1));
    }
    loom_buf_free(&back);
    if (m.type == LOOM_MSG_SYNC) {
        sync_case(&m);
    } else if (m.type == LOOM_MSG_AWARENESS) {
        awareness_case(m.payload, m.payload_len);
    }
    return 0;
}
