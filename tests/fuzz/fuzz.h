/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz.h: what the fuzz targets (tests/fuzz/fuzz_*.c) share: the
 * libFuzzer entry point's prototype, a check that traps (a crash is what
 * libFuzzer and the corpus replay report), and helpers that build the
 * pre-filled document of base.h and compare encodings.
 *
 * Each target is built twice: with libFuzzer (LOOM_FUZZ=ON, clang) and with
 * tests/fuzz/replay.c, which feeds it every file of its corpus under ctest.
 */
#ifndef LOOM_FUZZ_H
#define LOOM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "loom/loom.h"

#include "base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: stop here, with a stack trace under the sanitizers. */
#define FUZZ_CHECK(cond)      \
    do {                      \
        if (!(cond)) {        \
            __builtin_trap(); \
        }                     \
    } while (0)

/* Two byte buffers hold the same bytes. */
static inline int fuzz_buf_eq(const loom_buf *a, const loom_buf *b)
{
    return a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* A new document (fixed client id) holding base.h's update; NULL only when
 * out of memory. */
static inline loom_doc *fuzz_base_doc(int gc)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 0x7fff0001;
    o.gc = gc;
    o.guid = "fuzz";
    loom_doc *d = NULL;
    if (loom_doc_new(&o, &d)) {
        return NULL;
    }
    int rc = loom_doc_apply_update(d, fuzz_base_update,
                                   sizeof(fuzz_base_update), NULL, NULL);
    FUZZ_CHECK(rc == LOOM_OK);
    return d;
}

/* Reads every root of a document the way an application would: guesses
 * untyped roots' kinds, then toJSON, text and XML strings and deltas. The
 * results are thrown away; this only has to not crash. */
static inline void fuzz_read_all(loom_doc *d)
{
    loom_any *v = NULL;
    if (!loom_doc_to_any(d, &v)) {
        loom_any_free(v);
    }
    size_t n = loom_doc_root_count(d);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        size_t len;
        loom_type *t = loom_doc_root_at(d, i, &name, &len);
        if (!t) {
            continue;
        }
        loom_type_kind k = loom_type_kind_of(t);
        if (k == LOOM_TYPE_UNDEFINED) {
            k = loom_type_guess_kind(t);
            if (loom_doc_get(d, name, len, k, &t)) {
                continue;
            }
        }
        v = NULL;
        if (!loom_type_to_any(t, &v)) {
            loom_any_free(v);
        }
        loom_buf b = {0};
        if (k == LOOM_TYPE_TEXT || k == LOOM_TYPE_XML_TEXT) {
            v = NULL;
            if (!loom_text_to_delta(t, &v)) {
                loom_any_free(v);
            }
            (void)loom_text_to_string(t, &b);
        } else if (k == LOOM_TYPE_XML_FRAGMENT || k == LOOM_TYPE_XML_ELEMENT) {
            (void)loom_xml_to_string(t, &b);
        }
        loom_buf_free(&b);
    }
}

#endif
