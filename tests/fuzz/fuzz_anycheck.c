/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_anycheck.c: libFuzzer target for the two checkers of Any
 * content the update parser uses. loom__any_check_n takes flat objects of
 * scalars (what a loaded map is made of) by a fast loop and hands anything
 * else to loom__any_check; both must agree on every input: the same result,
 * the same position after the values, the same error offset and message,
 * and the same verdict on whether the bytes are canonical. The first byte
 * gives the number of values (1 to 4), the rest is their bytes.
 */
#include <stdbool.h>

#include "fuzz.h"

#include "any/any_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    uint64_t n = 1 + data[0] % 4;
    const uint8_t *p = size > 1 ? data + 1 : NULL;
    size_t len = size - 1;

    loom__reader slow, fast;
    loom__reader_init(&slow, p, len);
    loom__reader_init(&fast, p, len);
    bool slow_canon = true, fast_canon = true;
    int slow_rc = LOOM_OK;
    for (uint64_t i = 0; i < n && slow_rc == LOOM_OK; i++) {
        slow_rc = loom__any_check(&slow, 0, &slow_canon);
    }
    int fast_rc = loom__any_check_n(&fast, n, &fast_canon);

    FUZZ_CHECK(slow_rc == fast_rc);
    FUZZ_CHECK(slow.err == fast.err);
    if (slow_rc == LOOM_OK) {
        FUZZ_CHECK(slow.pos == fast.pos);
        FUZZ_CHECK(slow_canon == fast_canon);
    } else {
        FUZZ_CHECK(slow.err_pos == fast.err_pos);
        FUZZ_CHECK(slow.err_msg == fast.err_msg ||
                   (slow.err_msg && fast.err_msg &&
                    strcmp(slow.err_msg, fast.err_msg) == 0));
    }
    return 0;
}
