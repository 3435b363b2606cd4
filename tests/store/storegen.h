/*
 * storegen.h: what the store tests share: documents that record every
 * update they emit (real Yjs v1 updates made by loom_doc edits, the bytes a
 * provider would hand to the store), a few edits that make one update each,
 * scratch directories, and a seeded PRNG so a failing run can be replayed.
 */
#ifndef LOOM_TESTS_STOREGEN_H
#define LOOM_TESTS_STOREGEN_H

#include <stddef.h>
#include <stdint.h>

#include "loom/loom.h"

/* Updates in the order the document emitted them (malloc'd copies). */
typedef struct sg_updates {
    uint8_t **data;
    size_t *lens;
    size_t n, cap;
} sg_updates;

void sg_updates_free(sg_updates *u);
/* Appends a copy; returns 0 or -1 (out of memory). */
int sg_updates_push(sg_updates *u, const uint8_t *p, size_t len);

/* A document with client id `client` (gc on) whose every update is copied
 * into `rec` (may be NULL). NULL on failure. */
loom_doc *sg_doc_new(uint64_t client, sg_updates *rec);
/* m[key] = value in root map "m": one transaction, one update. */
int sg_set(loom_doc *d, const char *key, double value);
/* Inserts `s` at `index` (clamped to the length) of root text "t". */
int sg_text_insert(loom_doc *d, size_t index, const char *s);
/* Whether root map "m" has `key`. */
int sg_has(loom_doc *d, const char *key);
/* Whether two documents have equal content ({root: toJSON}). */
int sg_docs_equal(loom_doc *a, loom_doc *b); /* types untyped roots */

/* xorshift64*. */
uint64_t sg_rand(uint64_t *state);
/* A seed from LOOM_SEED, else from the clock; printed by the caller. */
uint64_t sg_seed(void);
/* An integer environment variable, or `def`. */
long sg_env_long(const char *name, long def);

/* A new scratch directory under `base` (NULL: $TMPDIR or /tmp); malloc'd
 * path. sg_rmdir removes it and everything in it. */
char *sg_tmpdir(const char *base);
void sg_rmdir(const char *path);
/* dir + "/" + file, malloc'd. */
char *sg_path(const char *dir, const char *file);
/* Seconds from a monotonic clock. */
double sg_now(void);

#endif
