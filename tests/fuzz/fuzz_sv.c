/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_sv.c: libFuzzer target for untrusted state vectors, as a
 * peer sends them in sync step 1: encodeStateAsUpdate(doc, sv) on a document
 * pre-filled with base.h's update, and diffUpdate(base, sv). Checks:
 * loom_state_vector_validate agrees with both (a state vector it refuses
 * fails them, one it accepts succeeds), their outputs are valid updates
 * that apply to a copy of the document without changing its state vector,
 * and a failure leaves the document unchanged.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_error err;
    int valid = loom_state_vector_validate(data, size, &err) == LOOM_OK;
    loom_doc *d = fuzz_base_doc(1);
    if (!d) {
        return 0;
    }
    loom_buf before = {0}, sv = {0}, u = {0}, diff = {0}, full = {0};
    FUZZ_CHECK(loom_doc_encode_state_vector(d, &before) == LOOM_OK);
    int rc = loom_doc_encode_state_as_update(d, data, size, &u, &err);
    FUZZ_CHECK(valid == (rc == LOOM_OK));
    int rc2 = loom_update_diff(NULL, fuzz_base_update, sizeof(fuzz_base_update),
                               data, size, &diff, &err);
    FUZZ_CHECK(valid == (rc2 == LOOM_OK));
    if (valid) {
        FUZZ_CHECK(loom_update_validate(u.data, u.len, NULL) == LOOM_OK);
        FUZZ_CHECK(loom_update_validate(diff.data, diff.len, NULL) == LOOM_OK);
        /* the base already holds all of it */
        loom_doc *d2 = fuzz_base_doc(1);
        if (d2) {
            FUZZ_CHECK(loom_doc_apply_update(d2, u.data, u.len, NULL, NULL) ==
                       LOOM_OK);
            FUZZ_CHECK(loom_doc_apply_update(d2, diff.data, diff.len, NULL,
                                             NULL) == LOOM_OK);
            FUZZ_CHECK(loom_doc_encode_state_vector(d2, &sv) == LOOM_OK);
            FUZZ_CHECK(fuzz_buf_eq(&before, &sv));
            loom_buf_free(&sv);
            loom_doc_free(d2);
        }
    }
    FUZZ_CHECK(loom_doc_encode_state_vector(d, &sv) == LOOM_OK);
    FUZZ_CHECK(fuzz_buf_eq(&before, &sv));
    FUZZ_CHECK(loom_doc_encode_state_as_update(d, NULL, 0, &full, NULL) ==
               LOOM_OK);
    FUZZ_CHECK(full.len == sizeof(fuzz_base_update) &&
               memcmp(full.data, fuzz_base_update, full.len) == 0);
    loom_buf_free(&before);
    loom_buf_free(&sv);
    loom_buf_free(&u);
    loom_buf_free(&diff);
    loom_buf_free(&full);
    loom_doc_free(d);
    return 0;
}
