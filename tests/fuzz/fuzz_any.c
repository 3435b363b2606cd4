/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_any.c: libFuzzer target for the two readers of Any
 * values. The first byte picks the reader, the rest is its input:
 *   even: loom_any_decode (lib0 binary Any). A decoded value re-encodes,
 *         decodes to an equal value, and re-encodes to the same bytes; its
 *         JSON text (when it has one) is read back by loom_any_from_json.
 *   odd:  loom_any_from_json (JSON text). A parsed value prints as JSON, and
 *         that text parses and prints to the same text again; its binary
 *         encoding decodes to an equal value.
 * A decoded value is also set in a map (which encodes a flat object its own
 * way, straight into the document's pool memory) and read back: it encodes
 * to the same bytes. (Sanitizer builds have no pool: that way is checked
 * by the corpus replay of an ordinary build.)
 */
#include <stdbool.h>

#include "fuzz.h"

/* encode(v) decodes to a value equal to v that encodes to the same bytes.
 * A value read from JSON may hold a "__proto__" member (JSON.parse keeps it
 * as an own property), which decoding drops as lib0's reader does (its
 * assignment sets the prototype instead): for such values (exact false)
 * the decoded value is checked to be a fixed point of the round trip. */
static void check_binary_round_trip(const loom_any *v, bool exact)
{
    loom_buf e1 = {0}, e2 = {0};
    loom_any *first = NULL; /* decode(encode(v)), when not exact */
    if (loom_any_encode(v, &e1) != LOOM_OK) {
        return; /* out of memory */
    }
    if (!exact) {
        FUZZ_CHECK(loom_any_decode(NULL, e1.data, e1.len, &first, NULL) ==
                   LOOM_OK);
        loom_buf_free(&e1);
        if (loom_any_encode(first, &e1) != LOOM_OK) {
            loom_any_free(first);
            return;
        }
        v = first;
    }
    loom_any *w = NULL;
    FUZZ_CHECK(loom_any_decode(NULL, e1.data, e1.len, &w, NULL) == LOOM_OK);
    FUZZ_CHECK(loom_any_equal(v, w));
    FUZZ_CHECK(loom_any_encode(w, &e2) == LOOM_OK);
    FUZZ_CHECK(fuzz_buf_eq(&e1, &e2));
    loom_any_free(w);
    loom_any_free(first);
    loom_buf_free(&e1);
    loom_buf_free(&e2);
}

/* JSON.stringify(v) parses back, and prints to the same text. A value
 * without JSON text (a bigint, as in JS) is skipped, and so is a top-level
 * undefined (written as `undefined`, the ContentJSON convention, which JSON
 * text cannot read). */
static void check_json_round_trip(const loom_any *v)
{
    loom_buf t1 = {0}, t2 = {0};
    if (loom_any_kind_of(v) == LOOM_ANY_UNDEFINED) {
        return;
    }
    if (loom_any_to_json(v, &t1) != LOOM_OK) {
        loom_buf_free(&t1);
        return;
    }
    loom_any *w = NULL;
    FUZZ_CHECK(loom_any_from_json(NULL, (const char *)t1.data, t1.len, &w,
                                  NULL) == LOOM_OK);
    FUZZ_CHECK(loom_any_to_json(w, &t2) == LOOM_OK);
    FUZZ_CHECK(fuzz_buf_eq(&t1, &t2));
    loom_any_free(w);
    loom_buf_free(&t1);
    loom_buf_free(&t2);
}

/* v set as a map entry reads back as a value that encodes as v does. */
static void check_map_set(const loom_any *v)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 1;
    o.guid = "fuzz";
    loom_doc *d = NULL;
    loom_type *m = NULL;
    if (loom_doc_new(&o, &d) != LOOM_OK) {
        return;
    }
    loom_any *got = NULL;
    loom_type *sub = NULL;
    loom_any *first = NULL;
    int rc = loom_any_new_null(NULL, &first);
    if (rc == LOOM_OK) {
        rc = loom_doc_get(d, "m", 1, LOOM_TYPE_MAP, &m);
    }
    /* a first entry, so the document has pool memory to encode into */
    if (rc == LOOM_OK) {
        rc = loom_map_set(m, "a", 1, first);
    }
    loom_any_free(first);
    if (rc == LOOM_OK && loom_map_set(m, "k", 1, v) == LOOM_OK &&
        loom_map_get(m, "k", 1, &got, &sub) == LOOM_OK) {
        loom_buf e1 = {0}, e2 = {0};
        FUZZ_CHECK(got != NULL);
        if (loom_any_encode(v, &e1) == LOOM_OK &&
            loom_any_encode(got, &e2) == LOOM_OK) {
            FUZZ_CHECK(fuzz_buf_eq(&e1, &e2));
        }
        loom_buf_free(&e1);
        loom_buf_free(&e2);
    }
    loom_any_free(got);
    loom_doc_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    loom_error err;
    loom_any *v = NULL;
    if ((data[0] & 1) == 0) {
        if (loom_any_decode(NULL, p, n, &v, &err) != LOOM_OK) {
            return 0;
        }
        check_binary_round_trip(v, true);
        check_json_round_trip(v);
        check_map_set(v);
        loom_any *c = NULL;
        if (loom_any_clone(v, NULL, &c) == LOOM_OK) {
            FUZZ_CHECK(loom_any_equal(v, c));
            loom_any_free(c);
        }
    } else {
        if (loom_any_from_json(NULL, (const char *)p, n, &v, &err) != LOOM_OK) {
            return 0;
        }
        check_json_round_trip(v);
        check_binary_round_trip(v, false);
    }
    loom_any_free(v);
    return 0;
}
