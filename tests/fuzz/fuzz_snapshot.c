/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_snapshot.c: libFuzzer target for encoded snapshots
 * (loom_snapshot_decode). A decoded snapshot re-encodes to bytes that decode
 * to an equal snapshot and encode the same again; it can be asked whether
 * it contains the base update, and a document can be rebuilt from it out of
 * a gc-off document holding base.h's update (any result but a crash).
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_error err;
    loom_snapshot *s = NULL;
    if (loom_snapshot_decode(NULL, data, size, &s, &err) != LOOM_OK) {
        return 0;
    }
    loom_buf e1 = {0}, e2 = {0};
    FUZZ_CHECK(loom_snapshot_encode(s, &e1) == LOOM_OK);
    loom_snapshot *s2 = NULL;
    FUZZ_CHECK(loom_snapshot_decode(NULL, e1.data, e1.len, &s2, NULL) ==
               LOOM_OK);
    FUZZ_CHECK(loom_snapshot_equal(s, s2));
    FUZZ_CHECK(loom_snapshot_encode(s2, &e2) == LOOM_OK);
    FUZZ_CHECK(fuzz_buf_eq(&e1, &e2));
    int in = loom_snapshot_contains_update(s, fuzz_base_update,
                                           sizeof(fuzz_base_update), NULL);
    FUZZ_CHECK(in == 0 || in == 1 || in < 0);

    loom_doc *origin = fuzz_base_doc(0);
    if (origin) {
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id = 0x7fff0003;
        loom_doc *r = NULL;
        if (loom_doc_from_snapshot(origin, s, &o, &r) == LOOM_OK) {
            loom_buf u = {0};
            FUZZ_CHECK(loom_doc_encode_state_as_update(r, NULL, 0, &u, NULL) ==
                       LOOM_OK);
            FUZZ_CHECK(loom_update_validate(u.data, u.len, NULL) == LOOM_OK);
            fuzz_read_all(r);
            loom_buf_free(&u);
            loom_doc_free(r);
        }
        loom_doc_free(origin);
    }
    loom_snapshot_free(s);
    loom_snapshot_free(s2);
    loom_buf_free(&e1);
    loom_buf_free(&e2);
    return 0;
}
