/*
 * loom/update.h: operations on encoded Yjs v1 updates and state vectors that
 * need no document: merge, diff, the state vector an update reaches, and a
 * validity check. Byte for byte what yjs 13.6 writes (mergeUpdates,
 * diffUpdate, encodeStateVectorFromUpdate).
 *
 * Inputs are untrusted: a malformed input fails with LOOM_EMALFORMED and
 * `err` (optional) names the input and byte offset. Outputs are loom_buf
 * values allocated with `a` (NULL: libc), freed with loom_buf_free().
 */
#ifndef LOOM_UPDATE_H
#define LOOM_UPDATE_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mergeUpdates: one update holding everything the inputs hold. With one
 * input, a copy of it unchanged; with none, the empty update 00 00. */
int loom_update_merge(const loom_allocator *a,
                      const uint8_t *const *updates,
                      const size_t *lens,
                      size_t n,
                      loom_buf *out,
                      loom_error *err);

/* diffUpdate: the part of `update` that a peer with state vector `sv` lacks
 * (the delete set is always kept whole). */
int loom_update_diff(const loom_allocator *a,
                     const uint8_t *update,
                     size_t update_len,
                     const uint8_t *sv,
                     size_t sv_len,
                     loom_buf *out,
                     loom_error *err);

/* encodeStateVectorFromUpdate. */
int loom_update_state_vector(const loom_allocator *a,
                             const uint8_t *update,
                             size_t len,
                             loom_buf *out,
                             loom_error *err);

/* Checks that `update` is a well-formed v1 update (all structs, contents,
 * UTF-8 and the delete set) without applying it. */
int loom_update_validate(const uint8_t *update, size_t len, loom_error *err);

/* Checks a state vector. */
int loom_state_vector_validate(const uint8_t *sv, size_t len, loom_error *err);

#ifdef __cplusplus
}
#endif
#endif
