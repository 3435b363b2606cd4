/*
 * tjson.h: TJSON, the JSON dialect of the test vectors (tests/vectors/
 * README.md), mapped to and from loom_any with jansson. Wrappers:
 * {"$undefined":true}, {"$bigint":"123"}, {"$binary":"00ff"},
 * {"$number":"-0"|"NaN"|"Infinity"|"-Infinity"}, and on output
 * {"$ydoc":{"guid":..}} for LOOM_ANY_SUBDOC and {"$ytype":"<kind>"} (+"name"
 * for xmlelement/xmlhook) for LOOM_ANY_TYPE. Also hex helpers and a
 * deterministic writer (sorted keys, JS number formatting).
 *
 * Tools code: allocates with malloc and may print.
 */
#ifndef LOOM_TOOLS_TJSON_H
#define LOOM_TOOLS_TJSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "loom/any.h"
#include "loom/doc.h"

/*
 * Loads JSON text like json_loadb / json_load_file, after replacing every
 * lone-surrogate escape (\ud800 not followed by a low surrogate escape, or a
 * lone \udc00) by \ufffd. jansson rejects lone surrogates, which the
 * vectors contain (primitives.json); U+FFFD is what TextEncoder, and thus
 * Yjs on the wire, turns them into. `flags` are jansson decoding flags.
 */
json_t *
tjson_loadb(const char *text, size_t len, size_t flags, json_error_t *error);
json_t *tjson_load_file(const char *path, size_t flags, json_error_t *error);

/*
 * TJSON -> loom_any (allocator `a`, NULL = libc). Plain JSON numbers become
 * doubles. {"$ydoc":{"guid":..}} becomes LOOM_ANY_SUBDOC. {"$ytype":..}
 * cannot be represented without a document: LOOM_EUNSUPPORTED (callers that
 * create types handle it first). A malformed wrapper: LOOM_EINVAL. *out is
 * written only on success.
 */
int tjson_to_any(const json_t *j, const loom_allocator *a, loom_any **out);

/* loom_any -> TJSON (new reference), NULL on failure. Integral numbers with
 * |v| <= 2^53 become JSON integers, other finite numbers reals. */
json_t *tjson_from_any(const loom_any *v);

/* Structural equality of TJSON values: numbers compare by value whether
 * jansson holds them as integer or real; object key order is ignored.
 * Returns 1 or 0. */
int tjson_equal(const json_t *a, const json_t *b);

/* Compact JSON text with object keys sorted (JS default sort: UTF-16 code
 * units), strings escaped and numbers formatted as JSON.stringify does.
 * malloc'd, NUL-terminated; NULL on failure (or a non-finite real). */
char *tjson_dumps_sorted(const json_t *j);

/* Hex (either case, no separators) -> malloc'd bytes. 0, or LOOM_EINVAL on
 * odd length / bad digit, LOOM_ENOMEM. *out is written only on success and
 * is never NULL then (free it with free()). */
int hex_decode(const char *hex, uint8_t **out, size_t *len);
/* Bytes -> malloc'd lowercase hex, NULL on failure. */
char *hex_encode(const uint8_t *p, size_t len);

/* The name of a shared type kind as the vectors and the CLI write it
 * ("array", "map", "text", "xmlfragment", ...; "undefined"). */
const char *tjson_kind_name(loom_type_kind k);

#endif
