/*
 * vecops.h: runs the ops of the test vectors (tests/vectors, TJSON) against
 * loom documents through the public API: the op-mode replay used by the
 * vector, event and differential tests.
 */
#ifndef LOOM_TOOLS_VECOPS_H
#define LOOM_TOOLS_VECOPS_H

#include <jansson.h>

#include "loom/loom.h"

#define VEC_MAX_DOCS 16

typedef struct vec_env {
    loom_doc *docs[VEC_MAX_DOCS];
    long long ids[VEC_MAX_DOCS];
    size_t n;
    const json_t *roots; /* {name: kind} */
} vec_env;

/* Creates the docs of a case ({docs:[{id, clientID, gc}], roots}) and
 * fetches its roots on each. Returns 0 or a LOOM_E* code. */
int vec_env_init(vec_env *e, const json_t *case_json);
void vec_env_free(vec_env *e);
loom_doc *vec_doc(const vec_env *e, long long id);
long long vec_doc_id(const vec_env *e, const loom_doc *d);
loom_type_kind vec_kind(const char *kind);

/* Runs one op record (`op` of a trace record). For a sync op, *transfer (if
 * not NULL) receives the bytes sent. On failure returns a LOOM_E* code (or
 * -100 for an op the runner does not know) and writes a message to err. */
int vec_run_op(
    vec_env *e, const json_t *op, loom_buf *transfer, char *err, size_t errlen);

/* Resolves a path ([root, key|index, ...]) on a doc. */
int vec_resolve(vec_env *e, loom_doc *d, const json_t *path, loom_type **out);

#endif
