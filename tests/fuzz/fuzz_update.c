/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_update.c: libFuzzer target for untrusted v1 updates.
 *
 * The input is checked with loom_update_validate, then applied to a
 * document pre-filled with base.h's update. Checks:
 *  - an update that fails validation also fails to apply;
 *  - a failed apply leaves the document unchanged (same encodeStateAsUpdate);
 *  - after a successful apply, the document encodes to a valid update that
 *    applies to a fresh document (byte equality of the rebuilt encoding is
 *    not checked: yjs itself breaks it when the input reuses the base's ids
 *    with other content); reading every root and a few local edits work on
 *    whatever arrived;
 *  - the parser's verdict that Any content is canonical (which lets apply
 *    copy it as it is; its map fast path compares an object's keys with
 *    those of an object before it) is what loom__any_check says of the
 *    content's values one by one;
 *  - mergeUpdates / diffUpdate / encodeStateVectorFromUpdate on the input,
 *    on the input split in two, and next to the base update: never crash,
 *    agree with validation (a valid update merges, diffs and yields a state
 *    vector; a one-input merge returns its input unchanged), and their
 *    outputs are valid.
 */
#include "fuzz.h"

#include "any/any_internal.h"
#include "codec/codec.h"

static const uint8_t *const base = fuzz_base_update;
#define BASE_LEN sizeof(fuzz_base_update)

/* The output of an update function is itself a valid update. */
static void check_output(int rc, loom_buf *out)
{
    if (rc == LOOM_OK) {
        FUZZ_CHECK(loom_update_validate(out->data, out->len, NULL) == LOOM_OK);
    }
    loom_buf_free(out);
}

static void update_algebra(const uint8_t *data, size_t size, int valid)
{
    loom_buf out = {0};
    loom_error err;

    const uint8_t *one[1] = {data};
    size_t one_len[1] = {size};
    int rc = loom_update_merge(NULL, one, one_len, 1, &out, &err);
    if (valid) {
        FUZZ_CHECK(rc == LOOM_OK);
        FUZZ_CHECK(out.len == size &&
                   (size == 0 || memcmp(out.data, data, size) == 0));
    }
    loom_buf_free(&out);

    const uint8_t *two[2] = {data, base};
    size_t two_len[2] = {size, BASE_LEN};
    rc = loom_update_merge(NULL, two, two_len, 2, &out, &err);
    FUZZ_CHECK(!valid || rc == LOOM_OK);
    check_output(rc, &out);

    /* the input split in two (neither half is usually valid) */
    size_t cut = size ? data[0] % (size + 1) : 0;
    const uint8_t *halves[3] = {data, data + cut, base};
    size_t halves_len[3] = {cut, size - cut, BASE_LEN};
    rc = loom_update_merge(NULL, halves, halves_len, 3, &out, &err);
    check_output(rc, &out);
    rc = loom_update_diff(NULL, data, cut, data + cut, size - cut, &out, &err);
    check_output(rc, &out);

    rc = loom_update_state_vector(NULL, data, size, &out, &err);
    FUZZ_CHECK(!valid || rc == LOOM_OK);
    if (rc == LOOM_OK) {
        FUZZ_CHECK(loom_state_vector_validate(out.data, out.len, NULL) ==
                   LOOM_OK);
        /* diff against its own state vector, and the base against it */
        loom_buf d = {0};
        int rc2 =
            loom_update_diff(NULL, data, size, out.data, out.len, &d, &err);
        FUZZ_CHECK(!valid || rc2 == LOOM_OK);
        check_output(rc2, &d);
        rc2 =
            loom_update_diff(NULL, base, BASE_LEN, out.data, out.len, &d, &err);
        FUZZ_CHECK(rc2 == LOOM_OK);
        check_output(rc2, &d);
    }
    loom_buf_free(&out);

    static const uint8_t empty_sv[1] = {0};
    rc = loom_update_diff(NULL, data, size, empty_sv, 1, &out, &err);
    FUZZ_CHECK(!valid || rc == LOOM_OK);
    check_output(rc, &out);
}

/* Each Any struct's canonical flag from the parser against loom__any_check
 * of its values. */
static void canon_flags(const uint8_t *data, size_t size)
{
    loom__rupdate u;
    if (loom__update_parse(NULL, data, size, 0, &u, NULL) != LOOM_OK) {
        return;
    }
    for (size_t i = 0; i < u.nblocks; i++) {
        const loom__rblock *b = &u.blocks[i];
        for (size_t k = 0; k < b->n; k++) {
            if (loom__rs_ref(b, k) != LOOM__REF_ANY) {
                continue;
            }
            loom__rstruct s;
            loom__rstruct_get(&u, b, k, &s);
            loom__reader r;
            loom__reader_init(&r, s.content, s.content_len);
            uint64_t n = 0;
            bool canon = true;
            FUZZ_CHECK(loom__read_varuint(&r, &n) == LOOM_OK);
            for (uint64_t j = 0; j < n; j++) {
                FUZZ_CHECK(loom__any_check(&r, 0, &canon) == LOOM_OK);
            }
            FUZZ_CHECK(canon == s.any_canon);
        }
    }
    loom__rupdate_free(&u);
}

/* Local edits on every root, by its kind: they may fail (a deleted or odd
 * type), but must not crash, and the document must still encode validly. */
static void local_edits(loom_doc *d)
{
    loom_any *num = NULL, *str = NULL;
    if (loom_any_new_number(NULL, 7, &num) ||
        loom_any_new_string(NULL, "z", 1, &str)) {
        loom_any_free(num);
        loom_any_free(str);
        return;
    }
    const loom_any *vals[1] = {num};
    size_t n = loom_doc_root_count(d);
    for (size_t i = 0; i < n; i++) {
        const char *name;
        size_t len;
        loom_type *t = loom_doc_root_at(d, i, &name, &len);
        if (!t) {
            continue;
        }
        size_t l = loom_type_length(t);
        switch (loom_type_kind_of(t)) {
        case LOOM_TYPE_MAP:
            (void)loom_map_set(t, "k", 1, str);
            (void)loom_map_delete(t, "n", 1);
            break;
        case LOOM_TYPE_ARRAY:
            (void)loom_array_insert(t, l / 2, vals, 1);
            (void)loom_array_push(t, vals, 1);
            if (l) {
                (void)loom_array_delete(t, 0, 1);
            }
            break;
        case LOOM_TYPE_TEXT:
        case LOOM_TYPE_XML_TEXT:
            (void)loom_text_insert(t, l / 2, "ab", 2, NULL);
            if (l > 1) {
                (void)loom_text_format(t, 0, l - 1, NULL);
                (void)loom_text_delete(t, 0, 1);
            }
            break;
        case LOOM_TYPE_XML_FRAGMENT:
        case LOOM_TYPE_XML_ELEMENT:
            (void)loom_array_insert_type(t, l, LOOM_TYPE_XML_TEXT, NULL, 0,
                                         NULL);
            break;
        default:
            break;
        }
    }
    loom_any_free(num);
    loom_any_free(str);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    loom_error err;
    int valid = loom_update_validate(data, size, &err) == LOOM_OK;
    canon_flags(data, size);

    loom_doc *d = fuzz_base_doc(1);
    if (!d) {
        return 0;
    }
    loom_buf before = {0}, after = {0};
    FUZZ_CHECK(loom_doc_encode_state_as_update(d, NULL, 0, &before, NULL) ==
               LOOM_OK);
    int rc = loom_doc_apply_update(d, data, size, NULL, &err);
    if (!valid) {
        FUZZ_CHECK(rc != LOOM_OK);
    }
    FUZZ_CHECK(loom_doc_encode_state_as_update(d, NULL, 0, &after, NULL) ==
               LOOM_OK);
    if (rc != LOOM_OK) {
        FUZZ_CHECK(fuzz_buf_eq(&before, &after));
    } else {
        /* the state rebuilds a document */
        FUZZ_CHECK(loom_update_validate(after.data, after.len, NULL) ==
                   LOOM_OK);
        loom_doc_options o;
        loom_doc_options_init(&o);
        o.client_id = 0x7fff0002;
        loom_doc *d2 = NULL;
        if (!loom_doc_new(&o, &d2)) {
            FUZZ_CHECK(loom_doc_apply_update(d2, after.data, after.len, NULL,
                                             NULL) == LOOM_OK);
            loom_buf again = {0};
            FUZZ_CHECK(loom_doc_encode_state_as_update(d2, NULL, 0, &again,
                                                       NULL) == LOOM_OK);
            FUZZ_CHECK(loom_update_validate(again.data, again.len, NULL) ==
                       LOOM_OK);
            loom_buf_free(&again);
            loom_doc_free(d2);
        }
        fuzz_read_all(d);
        local_edits(d);
        loom_buf edited = {0};
        FUZZ_CHECK(loom_doc_encode_state_as_update(d, NULL, 0, &edited, NULL) ==
                   LOOM_OK);
        FUZZ_CHECK(loom_update_validate(edited.data, edited.len, NULL) ==
                   LOOM_OK);
        loom_buf_free(&edited);
    }
    loom_buf_free(&before);
    loom_buf_free(&after);
    loom_doc_free(d);

    update_algebra(data, size, valid);
    return 0;
}
