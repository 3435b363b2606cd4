/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_relpos.c: libFuzzer target for encoded relative positions
 * (loom_relpos_decode). A decoded position re-encodes to bytes that decode
 * and encode the same again, has a JSON form, and resolves against a
 * document holding base.h's update (found or not, never a crash; a found
 * type belongs to that document).
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_error err;
    loom_relpos *rp = NULL;
    if (loom_relpos_decode(NULL, data, size, &rp, &err) != LOOM_OK) {
        return 0;
    }
    loom_buf e1 = {0}, e2 = {0};
    FUZZ_CHECK(loom_relpos_encode(rp, &e1) == LOOM_OK);
    loom_relpos *rp2 = NULL;
    FUZZ_CHECK(loom_relpos_decode(NULL, e1.data, e1.len, &rp2, NULL) ==
               LOOM_OK);
    FUZZ_CHECK(loom_relpos_encode(rp2, &e2) == LOOM_OK);
    FUZZ_CHECK(fuzz_buf_eq(&e1, &e2));
    loom_any *j = NULL;
    FUZZ_CHECK(loom_relpos_to_any(rp, &j) == LOOM_OK);
    loom_any_free(j);

    loom_doc *d = fuzz_base_doc(1);
    if (d) {
        loom_type *t = NULL;
        size_t index = 0;
        /* The index is not bounded by the type's length: for an item of a
         * map entry yjs counts the key's older values, and so does loom. */
        if (loom_relpos_resolve(rp, d, &t, &index) == LOOM_OK) {
            FUZZ_CHECK(t != NULL);
            FUZZ_CHECK(loom_type_doc(t) == d);
        }
        loom_doc_free(d);
    }
    loom_relpos_free(rp);
    loom_relpos_free(rp2);
    loom_buf_free(&e1);
    loom_buf_free(&e2);
    return 0;
}
