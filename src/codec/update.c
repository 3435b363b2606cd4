/*
 * update.c: the public doc-free update functions of loom/update.h, and
 * encodeStateVectorFromUpdate.
 *
 * Every input is parsed and validated completely before any output is made,
 * so a malformed input fails with its index and byte offset instead of a
 * half-made result. That includes the single input of a merge, which yjs
 * returns untouched without looking at it; we return it untouched too, but
 * only once it has been checked. Errors refer to input 0 for the update and
 * input 1 for the state vector of a diff.
 */
#include <string.h>

#include "codec/codec_int.h"
#include "loom/update.h"

int loom__write_empty_update(loom_buf *b)
{
    static const uint8_t empty[2] = {0, 0};
    return loom__buf_append(b, empty, 2);
}

/* Hands a finished local buffer to the caller, or frees it. */
static int finish(loom_buf *local, int rc, loom_buf *out)
{
    if (rc) {
        loom_buf_free(local);
        return rc;
    }
    *out = *local;
    return LOOM_OK;
}

static int bad_arg(loom_error *err, const char *msg)
{
    loom__error_set(err, LOOM_EINVAL, 0, 0, msg);
    return LOOM_EINVAL;
}

/* Parsed inputs are handed to loom__merge_parsed as an array of these. */
typedef const loom__rupdate *rupdate_ref;

int loom_update_merge(const loom_allocator *a,
                      const uint8_t *const *updates,
                      const size_t *lens,
                      size_t n,
                      loom_buf *out,
                      loom_error *err)
{
    if (!out || (n > 0 && (!updates || !lens))) {
        return bad_arg(err, "missing argument");
    }
    for (size_t i = 0; i < n; i++) {
        if (!updates[i] && lens[i] > 0) {
            return bad_arg(err, "missing input bytes");
        }
    }
    loom_buf local;
    loom__buf_init(&local, a);
    if (n == 0) {
        return finish(&local, loom__write_empty_update(&local), out);
    }
    if (SIZE_MAX / (sizeof(loom__rupdate) + sizeof(rupdate_ref)) < n) {
        return bad_arg(err, "too many inputs");
    }
    loom__rupdate *ups = loom__malloc(a, n * sizeof(*ups));
    rupdate_ref *ptrs = loom__malloc(a, n * sizeof(rupdate_ref));
    size_t parsed = 0;
    int rc = LOOM_OK;
    if (!ups || !ptrs) {
        rc = LOOM_ENOMEM;
        loom__error_set(err, rc, 0, 0, NULL);
        goto done;
    }
    for (; parsed < n; parsed++) {
        rc = loom__update_parse(a, updates[parsed], lens[parsed], parsed,
                                &ups[parsed], err);
        if (rc) {
            goto done;
        }
        ptrs[parsed] = &ups[parsed];
    }
    if (n == 1) {
        rc = loom__buf_append(&local, updates[0], lens[0]);
    } else {
        rc = loom__merge_parsed(ptrs, n, &local);
    }
    if (rc) {
        loom__error_set(err, rc, 0, 0, NULL);
    }
done:
    for (size_t i = 0; i < parsed; i++) {
        loom__rupdate_free(&ups[i]);
    }
    loom__free(a, ups, n * sizeof(*ups));
    loom__free(a, ptrs, n * sizeof(rupdate_ref));
    return finish(&local, rc, out);
}

/* Reads a whole state vector; trailing bytes are an error. */
static int parse_sv(
    const uint8_t *p, size_t len, size_t input, loom__sv *sv, loom_error *err)
{
    loom__reader r;
    loom__reader_init(&r, p, len);
    int rc = loom__sv_read(&r, sv);
    if (!rc && loom__reader_left(&r) != 0) {
        rc = loom__reader_fail(&r, LOOM_EMALFORMED, r.pos,
                               "trailing bytes after the state vector");
    }
    if (rc) {
        if (r.err) {
            loom__reader_error(&r, err, input);
        } else {
            loom__error_set(err, rc, r.pos, input, NULL);
        }
    }
    return rc;
}

int loom_update_diff(const loom_allocator *a,
                     const uint8_t *update,
                     size_t update_len,
                     const uint8_t *sv,
                     size_t sv_len,
                     loom_buf *out,
                     loom_error *err)
{
    if (!out || (!update && update_len > 0) || (!sv && sv_len > 0)) {
        return bad_arg(err, "missing argument");
    }
    loom__rupdate u;
    int rc = loom__update_parse(a, update, update_len, 0, &u, err);
    if (rc) {
        return rc;
    }
    loom__sv state;
    loom__sv_init(&state, a);
    loom_buf local;
    loom__buf_init(&local, a);
    rc = parse_sv(sv, sv_len, 1, &state, err);
    if (!rc) {
        rc = loom__diff_parsed(&u, &state, &local);
        if (rc) {
            loom__error_set(err, rc, 0, 0, NULL);
        }
    }
    loom__sv_free(&state);
    loom__rupdate_free(&u);
    return finish(&local, rc, out);
}

/*
 * encodeStateVectorFromUpdateV2: per run of a client in input order, the end
 * of the prefix that starts at clock 0 and has no Skip. Clients come out in
 * input order and a client with a later second run appears twice, as in yjs.
 */
static int state_vector_of(const loom__rupdate *u, loom_buf *out)
{
    loom_buf entries;
    loom__buf_init(&entries, out->alloc);
    loom__cursor c;
    loom__cursor_init(&c, u, false);
    uint64_t size = 0;
    int rc = LOOM_OK;
    if (c.has) {
        uint64_t client = c.curr.client;
        bool stop = c.curr.clock != 0;
        uint64_t clock = stop ? 0 : c.curr.clock + c.curr.len;
        for (; c.has && !rc; loom__cursor_next(&c)) {
            if (client != c.curr.client) {
                if (clock != 0) {
                    size++;
                    rc = loom__write_varuint(&entries, client);
                    if (!rc) {
                        rc = loom__write_varuint(&entries, clock);
                    }
                }
                client = c.curr.client;
                clock = 0;
                stop = c.curr.clock != 0;
            }
            if (c.curr.kind == LOOM__KIND_SKIP) {
                stop = true;
            }
            if (!stop) {
                clock = c.curr.clock + c.curr.len;
            }
        }
        if (!rc && clock != 0) {
            size++;
            rc = loom__write_varuint(&entries, client);
            if (!rc) {
                rc = loom__write_varuint(&entries, clock);
            }
        }
    }
    if (!rc) {
        rc = loom__write_varuint(out, size);
    }
    if (!rc) {
        rc = loom__buf_append(out, entries.data, entries.len);
    }
    loom_buf_free(&entries);
    return rc;
}

int loom_update_state_vector(const loom_allocator *a,
                             const uint8_t *update,
                             size_t len,
                             loom_buf *out,
                             loom_error *err)
{
    if (!out || (!update && len > 0)) {
        return bad_arg(err, "missing argument");
    }
    loom__rupdate u;
    int rc = loom__update_parse(a, update, len, 0, &u, err);
    if (rc) {
        return rc;
    }
    loom_buf local;
    loom__buf_init(&local, a);
    rc = state_vector_of(&u, &local);
    if (rc) {
        loom__error_set(err, rc, 0, 0, NULL);
    }
    loom__rupdate_free(&u);
    return finish(&local, rc, out);
}

int loom_update_validate(const uint8_t *update, size_t len, loom_error *err)
{
    if (!update && len > 0) {
        return bad_arg(err, "missing argument");
    }
    loom__rupdate u;
    int rc = loom__update_parse(NULL, update, len, 0, &u, err);
    if (!rc) {
        loom__rupdate_free(&u);
    }
    return rc;
}

int loom_state_vector_validate(const uint8_t *sv, size_t len, loom_error *err)
{
    if (!sv && len > 0) {
        return bad_arg(err, "missing argument");
    }
    loom__sv s;
    loom__sv_init(&s, NULL);
    int rc = parse_sv(sv, len, 0, &s, err);
    loom__sv_free(&s);
    return rc;
}
