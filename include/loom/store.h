/*
 * loom/store.h: the durable document store. Many documents, by name, in one
 * SQLite database file: each document is a log of Yjs v1 updates, appended
 * durably (an append that returned is on disk), merged into one update by
 * compaction, with small per-document metadata and optional encryption at
 * rest. What y-indexeddb and y-leveldb are to Yjs.
 *
 * A store is used by one thread at a time; several processes may open the
 * same file at once (SQLite WAL mode; writers wait up to the busy timeout).
 * Updates are untrusted bytes: they are validated whole before anything is
 * written, and a bad one fails with LOOM_EMALFORMED and nothing stored.
 *
 * Names (documents, metadata keys) are non-empty C strings of at most 64 KiB
 * (LOOM_EINVAL, LOOM_ELIMIT); they are stored and sorted as bytes, and stay
 * in clear in an encrypted store. Callbacks (list, meta_list) run inside a
 * read of the store and must not call the store. docs/store.md has the file
 * format, the durability argument and the encryption design.
 *
 * Errors beyond the common ones: LOOM_EIO (the file system or SQLite failed),
 * LOOM_ECORRUPT (the database file is damaged or not a loom store),
 * LOOM_EAUTH (wrong or missing passphrase, or a sealed record failed its
 * authentication), LOOM_EBUSY (another process held the lock past the busy
 * timeout), LOOM_EUNSUPPORTED (a file written by a newer schema). `err`
 * (optional) receives the code and a message naming the cause.
 */
#ifndef LOOM_STORE_H
#define LOOM_STORE_H

#include "common.h"
#include "doc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct loom_store loom_store;

/* Options of loom_store_open(). Start from loom_store_options_init(). */
typedef struct loom_store_options {
    const loom_allocator *alloc; /* NULL: libc */
    /* Create the file when it does not exist (default 1). */
    int create;
    /* Encryption at rest. When the file is new and `passphrase` is not
     * NULL, the store is created encrypted; an encrypted store must be
     * opened with the same passphrase (LOOM_EAUTH otherwise), and a plain
     * store refuses a passphrase (LOOM_EINVAL). Bytes, not a C string;
     * passphrase_len 0 with a passphrase is LOOM_EINVAL. */
    const uint8_t *passphrase;
    size_t passphrase_len;
    /* Argon2id cost for a new encrypted store (recorded in the file; an
     * existing store uses its own). 0: libsodium's "moderate" limits.
     * Outside crypto_pwhash_OPSLIMIT_MIN..MAX or MEMLIMIT_MIN..4 GiB:
     * LOOM_EINVAL. */
    unsigned long long kdf_opslimit;
    size_t kdf_memlimit;
    /* Milliseconds to wait for another process's lock (default 5000). */
    int busy_timeout_ms;
    /* Automatic compaction after an append, when a document's log holds
     * more than this many updates, or more than this many update bytes
     * beyond its last compacted row (defaults 1000 and 4 MiB; 0 disables
     * that bound). A failed automatic compaction does not fail the append
     * (which is durable already); it is tried again after the next one. */
    uint64_t compact_max_updates;
    uint64_t compact_max_bytes;
} loom_store_options;

void loom_store_options_init(loom_store_options *o);

/* Opens (or creates) the store in file `path`; `opts` NULL means the
 * defaults. A missing file with create 0 is LOOM_EIO; a SQLite file of
 * another application, garbage or a truncated file is LOOM_ECORRUPT (and
 * is not modified). Free with loom_store_close. */
int loom_store_open(const char *path,
                    const loom_store_options *opts,
                    loom_store **out,
                    loom_error *err);
/* Closes the store; NULL is a no-op. */
void loom_store_close(loom_store *s);

/* Whether the store is encrypted at rest. */
int loom_store_is_encrypted(const loom_store *s);

/* Calls `fn` once per document name, in byte order, until it returns
 * non-zero (that value is returned; return positive values to tell them
 * from errors). Names are NUL-terminated and valid during the call. */
int loom_store_list(loom_store *s,
                    int (*fn)(void *ud, const char *name, size_t len),
                    void *ud,
                    loom_error *err);

/* Whether document `name` exists: 1 yes, 0 no, or a negative error. */
int loom_store_exists(loom_store *s, const char *name, loom_error *err);

/* Appends one update to document `name` (created on its first append),
 * durably: when it returns, the update is on disk. The update is validated
 * first: a malformed or empty one is LOOM_EMALFORMED (err->offset) and
 * nothing is written. May compact (see options). */
int loom_store_append(loom_store *s,
                      const char *name,
                      const uint8_t *update,
                      size_t len,
                      loom_error *err);

/* Appends n updates (n >= 1) in one durable transaction: all or none. A
 * malformed one names its index in err->input. */
int loom_store_append_many(loom_store *s,
                           const char *name,
                           const uint8_t *const *updates,
                           const size_t *lens,
                           size_t n,
                           loom_error *err);

/*
 * Batches: everything between loom_store_batch_begin() and
 * loom_store_batch_commit(), on any number of documents, is one durable
 * SQLite transaction: one disk sync for the lot, which is how a server
 * keeps many busy rooms durable. Each operation inside stays all or
 * nothing on its own (a failed append leaves the batch as it was before
 * it); nothing of the batch is durable, or visible to other processes,
 * before the commit returns 0. A failed commit, loom_store_batch_rollback()
 * or loom_store_close() drops the whole batch. Automatic compaction waits
 * for the commit. The write lock is held from begin to commit: keep
 * batches short. A second begin is LOOM_ESTATE.
 */
int loom_store_batch_begin(loom_store *s, loom_error *err);
int loom_store_batch_commit(loom_store *s, loom_error *err);
void loom_store_batch_rollback(loom_store *s);

/* The whole document as one v1 update (the merge of its log), allocated
 * with the store's allocator. LOOM_ENOTFOUND when there is no such
 * document. */
int loom_store_encode(loom_store *s,
                      const char *name,
                      loom_buf *out,
                      loom_error *err);

/* Applies the whole document to `doc` (usually a new, empty one). */
int loom_store_load(loom_store *s,
                    const char *name,
                    loom_doc *doc,
                    loom_error *err);

/* The document's state vector (encodeStateVectorFromUpdate of
 * loom_store_encode), kept beside the log so that no update is read or
 * merged for it. After out-of-order appends it is recomputed once from the
 * log (and kept again, which writes to the file). */
int loom_store_state_vector(loom_store *s,
                            const char *name,
                            loom_buf *out,
                            loom_error *err);

/* What a peer with state vector `sv` lacks (diffUpdate of the document).
 * A malformed `sv` is LOOM_EMALFORMED. */
int loom_store_diff(loom_store *s,
                    const char *name,
                    const uint8_t *sv,
                    size_t sv_len,
                    loom_buf *out,
                    loom_error *err);

/* Statistics of one document's log. */
typedef struct loom_store_doc_info {
    uint64_t updates;    /* rows in the log */
    uint64_t bytes;      /* update bytes in the log (before sealing) */
    uint64_t base_bytes; /* of the row the last compaction wrote (0: none);
                            bytes - base_bytes were appended since */
} loom_store_doc_info;

int loom_store_info(loom_store *s,
                    const char *name,
                    loom_store_doc_info *out,
                    loom_error *err);

/* Merges the document's log into one update, in one SQLite transaction:
 * a crash leaves the old log or the new one. The merge runs outside the
 * write lock, so appends wait only for the final swap. */
int loom_store_compact(loom_store *s, const char *name, loom_error *err);

/* Deletes the document, its log and its metadata. */
int loom_store_delete(loom_store *s, const char *name, loom_error *err);

/* Per-document metadata: small values by key (sealed in an encrypted
 * store; the keys are not). Setting a key on a missing document is
 * LOOM_ENOTFOUND, and so is getting a missing key. `value` NULL with len 0
 * in meta_set deletes the key; a non-NULL value of length 0 is an empty
 * value. meta_get's buffer uses the store's allocator. */
int loom_store_meta_get(loom_store *s,
                        const char *name,
                        const char *key,
                        loom_buf *out,
                        loom_error *err);
int loom_store_meta_set(loom_store *s,
                        const char *name,
                        const char *key,
                        const uint8_t *value,
                        size_t len,
                        loom_error *err);
/* Calls `fn` per key of the document, in byte order, until it returns
 * non-zero (that value is returned). Key and value are valid during the
 * call. */
int loom_store_meta_list(
    loom_store *s,
    const char *name,
    int (*fn)(void *ud, const char *key, const uint8_t *value, size_t len),
    void *ud,
    loom_error *err);

#ifdef __cplusplus
}
#endif
#endif
