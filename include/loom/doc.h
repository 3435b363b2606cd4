/*
 * loom/doc.h: the replicated document (Y.Doc) and its shared types: Map,
 * Array, Text and the XML types, nested to any depth; transactions with an
 * origin; observers with Yjs-shaped events; the update hook providers use;
 * applying and encoding v1 updates and state vectors; snapshots and relative
 * positions.
 *
 * Handles. A loom_doc is owned by the caller (loom_doc_free). A loom_type is
 * borrowed from its document and stays valid until the document is freed,
 * even after the type is deleted from the document (its operations then fail
 * with LOOM_ESTATE). Events are valid only during the callback.
 *
 * Indices and lengths of Text count UTF-16 code units, as Yjs does; text
 * passed in and out is UTF-8. Array and XML indices count elements.
 *
 * Transactions. Every change runs in a transaction. Operations open and close
 * one implicitly; loom_doc_transact_begin/end group several into one (they
 * nest; the outermost end runs observers and emits one update).
 *
 * Threads: a document and everything reached from it must be used by one
 * thread at a time. Distinct documents are independent.
 */
#ifndef LOOM_DOC_H
#define LOOM_DOC_H

#include "any.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct loom_doc loom_doc;
typedef struct loom_type loom_type;
typedef struct loom_event loom_event;
typedef struct loom_txn loom_txn;
typedef struct loom_snapshot loom_snapshot;
typedef struct loom_relpos loom_relpos;

typedef enum loom_type_kind {
    LOOM_TYPE_UNDEFINED =
        -1,              /* a root named by an update but not yet asked for */
    LOOM_TYPE_ARRAY = 0, /* the numbers are the Yjs type refs */
    LOOM_TYPE_MAP = 1,
    LOOM_TYPE_TEXT = 2,
    LOOM_TYPE_XML_ELEMENT = 3,
    LOOM_TYPE_XML_FRAGMENT = 4,
    LOOM_TYPE_XML_HOOK = 5,
    LOOM_TYPE_XML_TEXT = 6
} loom_type_kind;

/* ---- documents -------------------------------------------------------- */

/* loom_doc_options.client_id value asking for a random 32-bit id. */
#define LOOM_CLIENT_ID_RANDOM UINT64_MAX

/* Options of a new document. Start from loom_doc_options_init(). */
typedef struct loom_doc_options {
    uint64_t client_id; /* LOOM_CLIENT_ID_RANDOM (the default) or 0..2^53-1 */
    int gc;             /* 1: garbage-collect deleted content (Yjs default) */
    const char *guid;   /* NUL-terminated; NULL: a random one */
    const loom_allocator *alloc; /* NULL: libc */
} loom_doc_options;

/* Fills `o` with the defaults (random client id, gc on). */
void loom_doc_options_init(loom_doc_options *o);
/* Creates a document; `opts` NULL means the defaults. Free with loom_doc_free. */
int loom_doc_new(const loom_doc_options *opts, loom_doc **out);
void loom_doc_free(loom_doc *doc);

uint64_t loom_doc_client_id(const loom_doc *doc);
/* Changes the client id (only allowed outside transactions). */
int loom_doc_set_client_id(loom_doc *doc, uint64_t client_id);
int loom_doc_gc_enabled(const loom_doc *doc);
const char *loom_doc_guid(const loom_doc *doc);

/* A root type by name, created on first use. An untyped root (named by an
 * update) becomes `kind`, keeping its content; a root of another kind fails
 * with LOOM_ETYPE. */
int loom_doc_get(loom_doc *doc,
                 const char *name,
                 size_t len,
                 loom_type_kind kind,
                 loom_type **out);
/* Roots in creation order. */
size_t loom_doc_root_count(const loom_doc *doc);
loom_type *
loom_doc_root_at(const loom_doc *doc, size_t i, const char **name, size_t *len);

/* ---- transactions ----------------------------------------------------- */

int loom_doc_transact_begin(loom_doc *doc, void *origin);
int loom_doc_transact_end(loom_doc *doc);
void *loom_txn_origin(const loom_txn *txn);
int loom_txn_local(const loom_txn *txn);

/* ---- updates ---------------------------------------------------------- */

/* Applies a v1 update in one remote transaction. A malformed update changes
 * nothing (LOOM_EMALFORMED, with the offset in `err`). Structs whose
 * dependencies are missing are kept pending and integrated when they arrive. */
int loom_doc_apply_update(loom_doc *doc,
                          const uint8_t *update,
                          size_t len,
                          void *origin,
                          loom_error *err);
/* encodeStateAsUpdate against a target state vector (NULL/0: everything).
 * Includes pending structs and deletes, as Yjs does. */
int loom_doc_encode_state_as_update(const loom_doc *doc,
                                    const uint8_t *sv,
                                    size_t sv_len,
                                    loom_buf *out,
                                    loom_error *err);
int loom_doc_encode_state_vector(const loom_doc *doc, loom_buf *out);
/* Bit 1: pending structs, bit 2: a pending delete set. */
int loom_doc_pending(const loom_doc *doc);

/* ---- subscriptions ---------------------------------------------------- */

typedef void (*loom_update_fn)(void *ud,
                               loom_doc *doc,
                               const uint8_t *update,
                               size_t len,
                               const loom_txn *txn);
typedef void (*loom_txn_fn)(void *ud, loom_doc *doc, const loom_txn *txn);
typedef void (*loom_observe_fn)(void *ud,
                                const loom_event *event,
                                const loom_txn *txn);
typedef void (*loom_observe_deep_fn)(void *ud,
                                     const loom_event *const *events,
                                     size_t n,
                                     const loom_txn *txn);

/* The v1 update of every transaction that changed something. */
int loom_doc_on_update(loom_doc *doc,
                       loom_update_fn fn,
                       void *ud,
                       uint32_t *id);
int loom_doc_on_after_transaction(loom_doc *doc,
                                  loom_txn_fn fn,
                                  void *ud,
                                  uint32_t *id);
int loom_type_observe(loom_type *type,
                      loom_observe_fn fn,
                      void *ud,
                      uint32_t *id);
int loom_type_observe_deep(loom_type *type,
                           loom_observe_deep_fn fn,
                           void *ud,
                           uint32_t *id);
/* Removes any subscription by id. LOOM_ENOTFOUND if unknown. */
int loom_doc_unsubscribe(loom_doc *doc, uint32_t id);

/* Events (valid during the callback). Results are borrowed from the event. */
loom_type *loom_event_target(const loom_event *ev);
/* Path from the observing type to the target: map keys (strings) and
 * indices (numbers). */
int loom_event_path(const loom_event *ev, const loom_any **out);
/* Array/XML/Text delta, as in Yjs: [{insert: [...]|"text"|embed, attributes?},
 * {retain: n, attributes?}, {delete: n}]; shared types inserted appear as
 * LOOM_ANY_TYPE values (see loom_any_type). */
int loom_event_delta(const loom_event *ev, const loom_any **out);
/* Changed keys: {key: {action: "add"|"update"|"delete", oldValue?}}. */
int loom_event_keys(const loom_event *ev, const loom_any **out);

/* ---- shared types, in general ----------------------------------------- */

loom_type_kind loom_type_kind_of(const loom_type *t);
/**
 * @brief Guesses the kind of a type from its content, for roots that are
 * still LOOM_TYPE_UNDEFINED (named by an update but never asked for).
 *
 * The rule, in order: map entries and no sequence content -> LOOM_TYPE_MAP;
 * a sequence whose items are only strings, formats and embeds ->
 * LOOM_TYPE_TEXT; a sequence of XML types (elements, texts, hooks) ->
 * LOOM_TYPE_XML_FRAGMENT; any other sequence -> LOOM_TYPE_ARRAY. An empty
 * type guesses LOOM_TYPE_MAP. A type whose kind is already known returns
 * that kind. Pass the guess to loom_doc_get() to give the root that kind.
 *
 * @param[in] t a type of a document (not NULL).
 * @return the guessed kind; never LOOM_TYPE_UNDEFINED.
 * @note Ownership: reads `t` only. Thread-safety: as the document.
 */
loom_type_kind loom_type_guess_kind(const loom_type *t);
loom_doc *loom_type_doc(const loom_type *t);
/* Length of a sequence: array elements, text UTF-16 units, XML children. */
size_t loom_type_length(const loom_type *t);
/* nodeName of an XML element, hook name of an XML hook; NULL otherwise. */
const char *loom_type_name(const loom_type *t, size_t *len);
/* 1 if the type (or an ancestor) was deleted from the document. */
int loom_type_deleted(const loom_type *t);
/* toJSON(): map -> object, array -> array, text -> string, XML -> string.
 * Free with loom_any_free. */
int loom_type_to_any(const loom_type *t, loom_any **out);
/* {root name: toJSON} for every root (untyped roots as undefined). */
int loom_doc_to_any(const loom_doc *doc, loom_any **out);

/* ---- Map (also the attributes of Text, XmlElement and XmlHook) -------- */

/* Sets a value. A top-level LOOM_ANY_BINARY is stored as binary content, as
 * a Uint8Array is in Yjs. The value is copied. */
int loom_map_set(loom_type *map,
                 const char *key,
                 size_t klen,
                 const loom_any *value);
/* Sets a new empty shared type and returns it (`name` for XML element/hook). */
int loom_map_set_type(loom_type *map,
                      const char *key,
                      size_t klen,
                      loom_type_kind kind,
                      const char *name,
                      size_t nlen,
                      loom_type **out);
/* Sets a sub-document reference (ContentDoc) with its guid and options. */
int loom_map_set_subdoc(loom_type *map,
                        const char *key,
                        size_t klen,
                        const char *guid,
                        size_t glen,
                        const loom_any *opts);
/* Deleting a missing key is a no-op returning LOOM_OK. */
int loom_map_delete(loom_type *map, const char *key, size_t klen);
/* The value of a key: exactly one of *value (a copy, free with loom_any_free)
 * or *type (borrowed) is written. LOOM_ENOTFOUND when absent. */
int loom_map_get(const loom_type *map,
                 const char *key,
                 size_t klen,
                 loom_any **value,
                 loom_type **type);
int loom_map_has(const loom_type *map, const char *key, size_t klen);
size_t loom_map_size(const loom_type *map);
/* Iterates present keys in insertion order: start with *cursor = 0; returns 1
 * and the key (borrowed) while there is one, then 0. */
int loom_map_next(const loom_type *map,
                  size_t *cursor,
                  const char **key,
                  size_t *klen);

/* ---- Array (also the children of XmlFragment and XmlElement) ---------- */

/* Inserts values at index. Consecutive plain values become one item, as in
 * Yjs; binary values and sub-documents get their own items. Undefined and
 * bigint values are refused at the top level (LOOM_EINVAL), as in Yjs. */
int loom_array_insert(loom_type *arr,
                      size_t index,
                      const loom_any *const *values,
                      size_t n);
/* Appends after the last item, deleted or not (Yjs push). */
int loom_array_push(loom_type *arr, const loom_any *const *values, size_t n);
int loom_array_unshift(loom_type *arr, const loom_any *const *values, size_t n);
/* Inserts a new empty shared type; index SIZE_MAX pushes. */
int loom_array_insert_type(loom_type *arr,
                           size_t index,
                           loom_type_kind kind,
                           const char *name,
                           size_t nlen,
                           loom_type **out);
/* Inserts a sub-document reference (ContentDoc); index SIZE_MAX pushes. */
int loom_array_insert_subdoc(loom_type *arr,
                             size_t index,
                             const char *guid,
                             size_t glen,
                             const loom_any *opts);
int loom_array_delete(loom_type *arr, size_t index, size_t len);
/* Element at index: exactly one of *value (a copy) or *type is written. */
int loom_array_get(const loom_type *arr,
                   size_t index,
                   loom_any **value,
                   loom_type **type);
/* Elements [start, end) as an array value (nested types as their JSON). */
int loom_array_slice(const loom_type *arr,
                     size_t start,
                     size_t end,
                     loom_any **out);

/* ---- Text (also XmlText) ---------------------------------------------- */

/* Inserts UTF-8 text. `attributes` NULL: inherit the formatting at index;
 * an object: exactly these attributes (null values remove). */
int loom_text_insert(loom_type *text,
                     size_t index,
                     const char *s,
                     size_t len,
                     const loom_any *attributes);
/* Inserts an embed (an object or any value); `attributes` NULL means none. */
int loom_text_insert_embed(loom_type *text,
                           size_t index,
                           const loom_any *embed,
                           const loom_any *attributes);
int loom_text_insert_type(loom_type *text,
                          size_t index,
                          loom_type_kind kind,
                          const char *name,
                          size_t nlen,
                          const loom_any *attributes,
                          loom_type **out);
int loom_text_format(loom_type *text,
                     size_t index,
                     size_t len,
                     const loom_any *attributes);
int loom_text_delete(loom_type *text, size_t index, size_t len);
/* The text (strings only, as toString), appended to `out` as UTF-8. */
int loom_text_to_string(const loom_type *text, loom_buf *out);
/* Quill delta [{insert, attributes?}]. Free with loom_any_free. */
int loom_text_to_delta(const loom_type *text, loom_any **out);
/* Applies a Quill delta ([{insert|retain|delete, attributes?}]). */
int loom_text_apply_delta(loom_type *text, const loom_any *delta);

/* ---- XML -------------------------------------------------------------- */

/* toString() of a fragment, element or XML text, appended to `out`. */
int loom_xml_to_string(const loom_type *t, loom_buf *out);

/* ---- snapshots -------------------------------------------------------- */

int loom_doc_snapshot(const loom_doc *doc, loom_snapshot **out);
void loom_snapshot_free(loom_snapshot *s);
int loom_snapshot_encode(const loom_snapshot *s, loom_buf *out);
int loom_snapshot_decode(const loom_allocator *a,
                         const uint8_t *p,
                         size_t len,
                         loom_snapshot **out,
                         loom_error *err);
int loom_snapshot_equal(const loom_snapshot *a, const loom_snapshot *b);
/* 1 if the update's structs and deletes are all within the snapshot. */
int loom_snapshot_contains_update(const loom_snapshot *s,
                                  const uint8_t *update,
                                  size_t len,
                                  loom_error *err);
/* A new document holding `origin` as it was at the snapshot. The origin must
 * have gc off (LOOM_ESTATE otherwise) and must contain the snapshot (a clock
 * past its state or an unknown client: LOOM_EINVAL). `origin` is not changed.
 * `opts` as for loom_doc_new. */
int loom_doc_from_snapshot(const loom_doc *origin,
                           const loom_snapshot *s,
                           const loom_doc_options *opts,
                           loom_doc **out);

/* ---- relative positions ----------------------------------------------- */

/* A position in a sequence type that survives concurrent edits. assoc >= 0
 * sticks to the element at index, assoc < 0 to the one before. */
int loom_relpos_from_index(const loom_type *t,
                           size_t index,
                           int assoc,
                           loom_relpos **out);
void loom_relpos_free(loom_relpos *rp);
int loom_relpos_encode(const loom_relpos *rp, loom_buf *out);
int loom_relpos_decode(const loom_allocator *a,
                       const uint8_t *p,
                       size_t len,
                       loom_relpos **out,
                       loom_error *err);
/* {type?:{client,clock}, tname?, item?:{client,clock}, assoc}. */
int loom_relpos_to_any(const loom_relpos *rp, loom_any **out);
/* The type and absolute index the position points at now; LOOM_ENOTFOUND if
 * its anchor is not (yet) in the document. */
int loom_relpos_resolve(const loom_relpos *rp,
                        loom_doc *doc,
                        loom_type **type,
                        size_t *index);

#ifdef __cplusplus
}
#endif
#endif
