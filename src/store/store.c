/*
 * store.c: the durable document store of loom/store.h on SQLite, the only
 * file of the library that includes sqlite3.h and sodium.h. Each document
 * is a row of `docs` and a log of updates in `updates`; appends are one
 * short write transaction each, compaction merges the log outside the write
 * lock and swaps it in with one short transaction, and an encrypted store
 * seals every update and metadata value with a key derived from a
 * passphrase. docs/store.md describes the file format, the durability
 * argument and the encryption design; this comment only maps the code.
 *
 *   open/close, schema, pragmas, migrations      "opening"
 *   key derivation, sealing, the verifier        "encryption"
 *   the per-document state vector                "state vectors"
 *   reading and merging a log                    "reading the log"
 *   append, encode, load, diff, compact, meta    the public functions
 *
 * Invariants. docs.n_updates/n_bytes count the rows of the log and their
 * update bytes before sealing. docs.next_seq is larger than every seq of the
 * log. docs.sv_dirty says how far docs.sv can be trusted:
 *   0  sv is exact and every client's structs in the log form one run from
 *      clock 0 (so an append that extends a run keeps it exact);
 *   2  sv is exact, but the log has gaps (structs past a missing range), so
 *      the next append cannot be folded in by itself;
 *   1  sv is stale: recomputed from the merged log when asked.
 */
#include <limits.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <sqlite3.h>

#include "base/base.h"
#include "codec/codec.h"
#include "loom/store.h"
#include "loom/update.h"

/* "loom" in ASCII: PRAGMA application_id of every loom store. */
#define STORE_APP_ID 0x6c6f6f6d
/* The schema this code writes. Files at a lower version are upgraded in
 * place at open by the steps of `migrations`; files at a higher one are
 * refused. */
#define STORE_SCHEMA 2

#define KEY_LEN   crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN   crypto_aead_xchacha20poly1305_ietf_ABYTES
#define SALT_LEN  crypto_pwhash_SALTBYTES

/* The plaintext sealed as the verifier of an encrypted store. */
static const char verifier_text[] = "loom store verifier v1";

/* Rows merged at a time when a log is read: bounds the memory a huge log
 * needs (the merge holds a chunk of parsed rows, not the whole log). */
#define MERGE_CHUNK 4096

/* Cached prepared statements. */
enum {
    ST_BEGIN_READ,
    ST_BEGIN_WRITE,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_DOC_GET,
    ST_DOC_INSERT,
    ST_DOC_UPDATE,
    ST_DOC_SET_SV,
    ST_UPD_INSERT,
    ST_UPD_SCAN,
    ST_UPD_SUM,
    ST_UPD_DELETE_UPTO,
    ST_LIST,
    ST_META_GET,
    ST_META_PUT,
    ST_META_DEL,
    ST_META_LIST,
    ST_COUNT
};

static const char *const st_sql[ST_COUNT] = {
    [ST_BEGIN_READ] = "BEGIN",
    [ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT loom_op",
    [ST_RELEASE] = "RELEASE loom_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO loom_op",
    [ST_DOC_GET] = "SELECT id, sv, sv_dirty, n_updates, n_bytes, next_seq, "
                   "base_bytes FROM docs WHERE name = ?1",
    [ST_DOC_INSERT] = "INSERT INTO docs(name, sv, sv_dirty, n_updates, "
                      "n_bytes, next_seq, base_bytes) "
                      "VALUES (?1, X'00', 0, 0, 0, 1, 0)",
    [ST_DOC_UPDATE] = "UPDATE docs SET sv = ?2, sv_dirty = ?3, "
                      "n_updates = ?4, n_bytes = ?5, next_seq = ?6, "
                      "base_bytes = ?7 WHERE id = ?1",
    [ST_DOC_SET_SV] = "UPDATE docs SET sv = ?2, sv_dirty = ?3 "
                      "WHERE id = ?1 AND next_seq = ?4",
    [ST_UPD_INSERT] = "INSERT INTO updates(doc_id, seq, data) "
                      "VALUES (?1, ?2, ?3)",
    [ST_UPD_SCAN] = "SELECT seq, data FROM updates "
                    "WHERE doc_id = ?1 AND seq <= ?2 ORDER BY seq",
    [ST_UPD_SUM] = "SELECT count(*), coalesce(sum(length(data)), 0) "
                   "FROM updates WHERE doc_id = ?1 AND seq <= ?2",
    [ST_UPD_DELETE_UPTO] = "DELETE FROM updates "
                           "WHERE doc_id = ?1 AND seq <= ?2",
    [ST_LIST] = "SELECT name FROM docs ORDER BY name",
    [ST_META_GET] = "SELECT value FROM meta WHERE doc_id = ?1 AND key = ?2",
    [ST_META_PUT] = "INSERT OR REPLACE INTO meta(doc_id, key, value) "
                    "VALUES (?1, ?2, ?3)",
    [ST_META_DEL] = "DELETE FROM meta WHERE doc_id = ?1 AND key = ?2",
    [ST_META_LIST] = "SELECT key, value FROM meta WHERE doc_id = ?1 "
                     "ORDER BY key",
};

struct loom_store {
    const loom_allocator *alloc; /* NULL: libc */
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT]; /* prepared on first use */
    int encrypted;
    uint8_t key[KEY_LEN]; /* meaningful when encrypted; wiped at close */
    uint64_t compact_max_updates;
    uint64_t compact_max_bytes;
    /* Inside loom_store_batch_begin/commit: each operation is a savepoint
     * of the batch's transaction, and the documents that grew past the
     * compaction bounds are compacted after the commit. */
    int batch;
    char **later; /* names to compact after the batch, malloc'd */
    size_t nlater, later_cap;
    int busy_timeout_ms;
    struct timespec busy_since; /* the current wait for a lock (busy()) */
};

/* One row of `docs`, sv copied with the store's allocator. */
typedef struct doc_row {
    sqlite3_int64 id;
    uint8_t *sv;
    size_t sv_len;
    int sv_dirty;
    uint64_t n_updates;
    uint64_t n_bytes;
    sqlite3_int64 next_seq;
    uint64_t base_bytes; /* bytes of the row the last compaction wrote */
} doc_row;

/* ---- errors ----------------------------------------------------------- */

static int fail(loom_error *err, int code, const char *msg)
{
    loom__error_set(err, code, 0, 0, msg);
    return code;
}

/* The loom code for an SQLite result code. */
static int map_sqlite(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return LOOM_OK;
    case SQLITE_NOMEM:
        return LOOM_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return LOOM_EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
        return LOOM_ECORRUPT;
    case SQLITE_IOERR:
        /* A page past the end of the file: the file was truncated. */
        return rc == SQLITE_IOERR_SHORT_READ ? LOOM_ECORRUPT : LOOM_EIO;
    default:
        return LOOM_EIO;
    }
}

/* Reports SQLite result `rc` with the connection's message. */
static int db_fail(loom_store *s, int rc, loom_error *err)
{
    int code = map_sqlite(rc);
    if (code == LOOM_OK) {
        code = LOOM_EIO; /* an unexpected row or done */
    }
    char msg[sizeof(((loom_error *)0)->message)];
    const char *why = s && s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    (void)snprintf(msg, sizeof(msg), "sqlite: %s", why);
    return fail(err, code, msg);
}

/* ---- statements and transactions --------------------------------------- */

/* The cached statement `id`, reset and unbound, or an error. */
static int stmt(loom_store *s, int id, sqlite3_stmt **out, loom_error *err)
{
    if (s->st[id] == NULL) {
        int rc = sqlite3_prepare_v3(
            s->db, st_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->st[id], NULL);
        if (rc != SQLITE_OK) {
            return db_fail(s, rc, err);
        }
    }
    *out = s->st[id];
    return LOOM_OK;
}

/* Resets a statement after use, so it holds no read lock. */
static void done(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/* Runs a statement without results (BEGIN, COMMIT, an INSERT ...). */
static int run(loom_store *s, sqlite3_stmt *st, loom_error *err)
{
    int rc = sqlite3_step(st);
    int lrc = rc == SQLITE_DONE ? LOOM_OK : db_fail(s, rc, err);
    done(st);
    return lrc;
}

static int run_id(loom_store *s, int id, loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, id, &st, err);
    return rc ? rc : run(s, st, err);
}

static int begin_read(loom_store *s, loom_error *err)
{
    return run_id(s, s->batch ? ST_SAVEPOINT : ST_BEGIN_READ, err);
}

static int begin_write(loom_store *s, loom_error *err)
{
    return run_id(s, s->batch ? ST_SAVEPOINT : ST_BEGIN_WRITE, err);
}

/* Ends a transaction that failed; keeps the first error. Inside a batch
 * only the operation's savepoint is undone. */
static void rollback(loom_store *s)
{
    if (s->batch) {
        (void)run_id(s, ST_ROLLBACK_TO, NULL);
        (void)run_id(s, ST_RELEASE, NULL);
    } else if (!sqlite3_get_autocommit(s->db)) {
        (void)run_id(s, ST_ROLLBACK, NULL);
    }
}

static int commit(loom_store *s, loom_error *err)
{
    int rc = run_id(s, s->batch ? ST_RELEASE : ST_COMMIT, err);
    if (rc != LOOM_OK) {
        rollback(s);
    }
    return rc;
}

static int bind_name(sqlite3_stmt *st, int i, const char *name)
{
    return sqlite3_bind_blob(st, i, name, (int)strlen(name), SQLITE_STATIC);
}

/* Names and keys are C strings of at most 64 KiB (they are keys of SQLite
 * indexes, not payloads). */
static int check_name(const char *name, const char *what, loom_error *err)
{
    if (name == NULL || name[0] == '\0') {
        return fail(err, LOOM_EINVAL, what);
    }
    if (strlen(name) > 65535) {
        return fail(err, LOOM_ELIMIT, "name or key longer than 64 KiB");
    }
    return LOOM_OK;
}

static void doc_row_free(loom_store *s, doc_row *d)
{
    loom__free(s->alloc, d->sv, d->sv_len);
    memset(d, 0, sizeof(*d));
}

/* Reads the row of document `name`: LOOM_OK, LOOM_ENOTFOUND or an error. */
static int
doc_get(loom_store *s, const char *name, doc_row *out, loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, ST_DOC_GET, &st, err);
    if (rc) {
        return rc;
    }
    bind_name(st, 1, name);
    int sr = sqlite3_step(st);
    if (sr == SQLITE_DONE) {
        done(st);
        return fail(err, LOOM_ENOTFOUND, "no such document");
    }
    if (sr != SQLITE_ROW) {
        rc = db_fail(s, sr, err);
        done(st);
        return rc;
    }
    doc_row d;
    memset(&d, 0, sizeof(d));
    d.id = sqlite3_column_int64(st, 0);
    const void *sv = sqlite3_column_blob(st, 1);
    int sv_len = sqlite3_column_bytes(st, 1);
    d.sv_dirty = sqlite3_column_int(st, 2);
    sqlite3_int64 nu = sqlite3_column_int64(st, 3);
    sqlite3_int64 nb = sqlite3_column_int64(st, 4);
    d.next_seq = sqlite3_column_int64(st, 5);
    sqlite3_int64 bb = sqlite3_column_int64(st, 6);
    if (nu < 0 || nb < 0 || bb < 0 || d.next_seq < 1 || d.sv_dirty < 0 ||
        d.sv_dirty > 2) {
        done(st);
        return fail(err, LOOM_ECORRUPT, "document row out of range");
    }
    d.n_updates = (uint64_t)nu;
    d.n_bytes = (uint64_t)nb;
    d.base_bytes = (uint64_t)bb;
    if (sv_len > 0) {
        d.sv = loom__memdup(s->alloc, sv, (size_t)sv_len);
        if (d.sv == NULL) {
            done(st);
            return fail(err, LOOM_ENOMEM, NULL);
        }
        d.sv_len = (size_t)sv_len;
    }
    done(st);
    *out = d;
    return LOOM_OK;
}

/* ---- encryption -------------------------------------------------------- */

/* Associated data binding a sealed value to its place: a domain byte ('u'
 * update, 'm' metadata, 'v' verifier), the document name and, for
 * metadata, a NUL and the key. A row copied to another document, or a value
 * to another key, fails authentication. */
static int make_ad(loom_buf *ad, char domain, const char *name, const char *key)
{
    int rc = loom__buf_push(ad, (uint8_t)domain);
    if (!rc && name) {
        rc = loom__buf_append(ad, name, strlen(name));
    }
    if (!rc && key) {
        rc = loom__buf_push(ad, 0);
        if (!rc) {
            rc = loom__buf_append(ad, key, strlen(key));
        }
    }
    return rc;
}

/* Seals `p` into a new buffer: nonce, then ciphertext and tag. */
static int seal(loom_store *s,
                char domain,
                const char *name,
                const char *key,
                const uint8_t *p,
                size_t n,
                loom_buf *out)
{
    if (n > SIZE_MAX - NONCE_LEN - TAG_LEN) {
        return LOOM_ELIMIT;
    }
    loom_buf ad;
    loom__buf_init(&ad, s->alloc);
    loom_buf c;
    loom__buf_init(&c, s->alloc);
    int rc = make_ad(&ad, domain, name, key);
    if (!rc) {
        rc = loom__buf_reserve(&c, NONCE_LEN + n + TAG_LEN);
    }
    if (!rc) {
        randombytes_buf(c.data, NONCE_LEN);
        unsigned long long clen = 0;
        crypto_aead_xchacha20poly1305_ietf_encrypt(c.data + NONCE_LEN, &clen, p,
                                                   n, ad.data, ad.len, NULL,
                                                   c.data, s->key);
        c.len = NONCE_LEN + (size_t)clen;
        *out = c;
    } else {
        loom_buf_free(&c);
    }
    loom_buf_free(&ad);
    return rc;
}

/* Opens a sealed value into a new buffer; LOOM_EAUTH when it was not
 * sealed with this key for this place. */
static int unseal(loom_store *s,
                  char domain,
                  const char *name,
                  const char *key,
                  const uint8_t *c,
                  size_t n,
                  loom_buf *out)
{
    if (n < NONCE_LEN + TAG_LEN) {
        return LOOM_EAUTH;
    }
    loom_buf ad;
    loom__buf_init(&ad, s->alloc);
    loom_buf p;
    loom__buf_init(&p, s->alloc);
    size_t plen = n - NONCE_LEN - TAG_LEN;
    int rc = make_ad(&ad, domain, name, key);
    if (!rc) {
        rc = loom__buf_reserve(&p, plen ? plen : 1);
    }
    if (!rc) {
        unsigned long long got = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                p.data, &got, NULL, c + NONCE_LEN, n - NONCE_LEN, ad.data,
                ad.len, c, s->key) != 0) {
            rc = LOOM_EAUTH;
        } else {
            p.len = (size_t)got;
        }
    }
    if (!rc) {
        *out = p;
    } else {
        loom_buf_free(&p);
    }
    loom_buf_free(&ad);
    return rc;
}

/* A value as stored: sealed in an encrypted store, else a copy. */
static int to_disk(loom_store *s,
                   char domain,
                   const char *name,
                   const char *key,
                   const uint8_t *p,
                   size_t n,
                   loom_buf *out)
{
    if (s->encrypted) {
        return seal(s, domain, name, key, p, n, out);
    }
    loom_buf b;
    loom__buf_init(&b, s->alloc);
    int rc = loom__buf_append(&b, p, n);
    if (rc) {
        loom_buf_free(&b);
        return rc;
    }
    *out = b;
    return LOOM_OK;
}

static int from_disk(loom_store *s,
                     char domain,
                     const char *name,
                     const char *key,
                     const uint8_t *c,
                     size_t n,
                     loom_buf *out)
{
    if (s->encrypted) {
        return unseal(s, domain, name, key, c, n, out);
    }
    return to_disk(s, domain, name, key, c, n, out);
}

/* ---- store settings (the `store` table) -------------------------------- */

static int setting_put(loom_store *s,
                       const char *key,
                       const void *value,
                       size_t len,
                       loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->db, "INSERT OR REPLACE INTO store(key, value) VALUES (?1, ?2)", -1,
        &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, value, (int)len, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    int lrc = rc == SQLITE_DONE ? LOOM_OK : db_fail(s, rc, err);
    sqlite3_finalize(st);
    return lrc;
}

/* Reads a setting into `out` (at most `cap` bytes: a longer value is
 * LOOM_ECORRUPT) and its length into *len. An absent setting is
 * LOOM_ENOTFOUND, without a message: callers decide what absence means. */
static int setting_get(loom_store *s,
                       const char *key,
                       void *out,
                       size_t cap,
                       size_t *len,
                       loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM store WHERE key = ?1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(s, rc, err);
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int lrc = LOOM_OK;
    if (rc == SQLITE_DONE) {
        lrc = LOOM_ENOTFOUND;
    } else if (rc != SQLITE_ROW) {
        lrc = db_fail(s, rc, err);
    } else {
        int n = sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        if (n < 0 || (size_t)n > cap) {
            lrc = fail(err, LOOM_ECORRUPT, "store setting too long");
        } else {
            if (n > 0) {
                memcpy(out, p, (size_t)n);
            }
            *len = (size_t)n;
        }
    }
    sqlite3_finalize(st);
    return lrc;
}

static void put_u64(uint8_t b[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t b[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | b[i];
    }
    return v;
}

/* Upper bound on the Argon2id memory a file may ask for: a damaged or
 * hostile file must not make open allocate without limit. */
#define KDF_MEMLIMIT_CAP ((uint64_t)4 << 30)

static int derive_key(loom_store *s,
                      const uint8_t *pass,
                      size_t pass_len,
                      const uint8_t *salt,
                      uint64_t ops,
                      uint64_t mem,
                      loom_error *err)
{
    if (crypto_pwhash(s->key, sizeof(s->key), (const char *)pass,
                      (unsigned long long)pass_len, salt,
                      (unsigned long long)ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        return fail(err, LOOM_ENOMEM, "key derivation ran out of memory");
    }
    s->encrypted = 1;
    return LOOM_OK;
}

/* Makes a new store encrypted: salt, limits, key, verifier. Runs inside
 * the creating transaction. */
static int
encrypt_new(loom_store *s, const loom_store_options *o, loom_error *err)
{
    uint64_t ops =
        o->kdf_opslimit ? o->kdf_opslimit : crypto_pwhash_OPSLIMIT_MODERATE;
    uint64_t mem =
        o->kdf_memlimit ? o->kdf_memlimit : crypto_pwhash_MEMLIMIT_MODERATE;
    if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_MAX ||
        mem < crypto_pwhash_MEMLIMIT_MIN || mem > KDF_MEMLIMIT_CAP) {
        return fail(err, LOOM_EINVAL, "key derivation limits out of range");
    }
    uint8_t salt[SALT_LEN];
    randombytes_buf(salt, sizeof(salt));
    int rc =
        derive_key(s, o->passphrase, o->passphrase_len, salt, ops, mem, err);
    uint8_t ops_b[8];
    uint8_t mem_b[8];
    put_u64(ops_b, ops);
    put_u64(mem_b, mem);
    if (!rc) {
        rc = setting_put(s, "kdf", "argon2id13", 10, err);
    }
    if (!rc) {
        rc = setting_put(s, "kdf_salt", salt, sizeof(salt), err);
    }
    if (!rc) {
        rc = setting_put(s, "kdf_opslimit", ops_b, 8, err);
    }
    if (!rc) {
        rc = setting_put(s, "kdf_memlimit", mem_b, 8, err);
    }
    if (!rc) {
        rc = setting_put(s, "cipher", "xchacha20poly1305", 17, err);
    }
    loom_buf v;
    loom__buf_init(&v, s->alloc);
    if (!rc) {
        rc = seal(s, 'v', NULL, NULL, (const uint8_t *)verifier_text,
                  sizeof(verifier_text) - 1, &v);
        if (rc) {
            fail(err, rc, NULL);
        }
    }
    if (!rc) {
        rc = setting_put(s, "verifier", v.data, v.len, err);
    }
    loom_buf_free(&v);
    return rc;
}

/* Opens an existing store's key from the passphrase, or explains why not. */
static int unlock(loom_store *s, const loom_store_options *o, loom_error *err)
{
    char cipher[32];
    size_t cipher_len = 0;
    int rc = setting_get(s, "cipher", cipher, sizeof(cipher), &cipher_len, err);
    if (rc == LOOM_ENOTFOUND) {
        if (o->passphrase != NULL) {
            return fail(err, LOOM_EINVAL,
                        "store is not encrypted but a passphrase was given");
        }
        return LOOM_OK;
    }
    if (rc) {
        return rc;
    }
    if (cipher_len != 17 || memcmp(cipher, "xchacha20poly1305", 17) != 0) {
        return fail(err, LOOM_EUNSUPPORTED, "unknown store cipher");
    }
    if (o->passphrase == NULL) {
        return fail(err, LOOM_EAUTH, "store is encrypted: passphrase required");
    }
    uint8_t salt[SALT_LEN];
    uint8_t ops_b[8];
    uint8_t mem_b[8];
    char kdf[16];
    size_t n1 = 0;
    size_t n2 = 0;
    size_t n3 = 0;
    size_t n4 = 0;
    rc = setting_get(s, "kdf", kdf, sizeof(kdf), &n4, err);
    if (!rc) {
        rc = setting_get(s, "kdf_salt", salt, sizeof(salt), &n1, err);
    }
    if (!rc) {
        rc = setting_get(s, "kdf_opslimit", ops_b, 8, &n2, err);
    }
    if (!rc) {
        rc = setting_get(s, "kdf_memlimit", mem_b, 8, &n3, err);
    }
    if (rc == LOOM_ENOTFOUND ||
        (!rc && (n1 != SALT_LEN || n2 != 8 || n3 != 8 || n4 != 10 ||
                 memcmp(kdf, "argon2id13", 10) != 0))) {
        return fail(err, LOOM_ECORRUPT, "key derivation settings damaged");
    }
    if (rc) {
        return rc;
    }
    uint64_t ops = get_u64(ops_b);
    uint64_t mem = get_u64(mem_b);
    if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > crypto_pwhash_OPSLIMIT_MAX ||
        mem < crypto_pwhash_MEMLIMIT_MIN || mem > KDF_MEMLIMIT_CAP) {
        return fail(err, LOOM_ECORRUPT, "key derivation limits out of range");
    }
    rc = derive_key(s, o->passphrase, o->passphrase_len, salt, ops, mem, err);
    if (rc) {
        return rc;
    }
    uint8_t v[NONCE_LEN + sizeof(verifier_text) - 1 + TAG_LEN];
    size_t vlen = 0;
    rc = setting_get(s, "verifier", v, sizeof(v), &vlen, err);
    if (rc == LOOM_ENOTFOUND) {
        return fail(err, LOOM_ECORRUPT, "store verifier missing");
    }
    if (rc) {
        return rc;
    }
    loom_buf plain;
    loom__buf_init(&plain, s->alloc);
    rc = unseal(s, 'v', NULL, NULL, v, vlen, &plain);
    if (rc == LOOM_EAUTH) {
        return fail(err, LOOM_EAUTH, "wrong passphrase");
    }
    if (rc) {
        return fail(err, rc, NULL);
    }
    int same = plain.len == sizeof(verifier_text) - 1 &&
               memcmp(plain.data, verifier_text, plain.len) == 0;
    loom_buf_free(&plain);
    return same ? LOOM_OK : fail(err, LOOM_EAUTH, "wrong passphrase");
}

/* ---- opening ----------------------------------------------------------- */

/*
 * The current schema (version 2). `updates` is a rowid table with an index
 * on (doc_id, seq): its rows hold whole updates, up to a compacted
 * document, and in a WITHOUT ROWID table (version 1) such rows sit in the
 * key b-tree itself, so every insert's seek read the overflow pages of the
 * large rows it passed. Here the index holds only keys, and rows are
 * appended at the end of the table's b-tree.
 */
static const char schema_now[] =
    "CREATE TABLE store(key TEXT PRIMARY KEY, value BLOB NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE docs(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name BLOB NOT NULL UNIQUE, sv BLOB NOT NULL,"
    " sv_dirty INTEGER NOT NULL, n_updates INTEGER NOT NULL,"
    " n_bytes INTEGER NOT NULL, next_seq INTEGER NOT NULL,"
    " base_bytes INTEGER NOT NULL);"
    "CREATE TABLE updates(doc_id INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " data BLOB NOT NULL);"
    "CREATE UNIQUE INDEX updates_by_seq ON updates(doc_id, seq);"
    "CREATE TABLE meta(doc_id INTEGER NOT NULL, key BLOB NOT NULL,"
    " value BLOB NOT NULL, PRIMARY KEY(doc_id, key)) WITHOUT ROWID;";

static int exec(loom_store *s, const char *sql, loom_error *err);

/* Version 1 -> 2: `updates` becomes a rowid table with an index (see
 * schema_now); rows are copied in log order, sealed bytes as they are
 * (the associated data does not involve the table). */
static int migrate_1_to_2(loom_store *s, loom_error *err)
{
    return exec(s,
                "ALTER TABLE updates RENAME TO updates_v1;"
                "CREATE TABLE updates(doc_id INTEGER NOT NULL,"
                " seq INTEGER NOT NULL, data BLOB NOT NULL);"
                "INSERT INTO updates(doc_id, seq, data)"
                " SELECT doc_id, seq, data FROM updates_v1"
                " ORDER BY doc_id, seq;"
                "DROP TABLE updates_v1;"
                "CREATE UNIQUE INDEX updates_by_seq ON updates(doc_id, seq);",
                err);
}

/*
 * In-place upgrades: migrations[i] takes a file from schema version
 * migrations[i].from to from + 1, inside the transaction that opens it.
 */
typedef struct migration {
    int from;
    int (*run)(loom_store *s, loom_error *err);
} migration;
static const migration migrations[] = {{1, migrate_1_to_2}};

static int exec(loom_store *s, const char *sql, loom_error *err)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? LOOM_OK : db_fail(s, rc, err);
}

static int pragma_int(loom_store *s, const char *sql, int *out, loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
    }
    int lrc = LOOM_OK;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(st, 0);
    } else {
        lrc = db_fail(s, rc, err);
    }
    sqlite3_finalize(st);
    return lrc;
}

/* Checks the schema of an existing file in a read transaction; creates
 * it in an empty file, or upgrades an older one, in a write transaction
 * (`write`). Without `write`, a file that needs either sets *need_write
 * and changes nothing: the caller comes back with `write`, and two
 * processes creating the same file serialise there, the second seeing
 * the first's schema. Opening a current store so writes nothing. */
static int prepare_schema(loom_store *s,
                          const loom_store_options *o,
                          bool write,
                          bool *need_write,
                          loom_error *err)
{
    *need_write = false;
    int rc = exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
    if (rc) {
        return rc;
    }
    int app = 0;
    int ver = 0;
    int ntables = 0;
    rc = pragma_int(s, "PRAGMA application_id", &app, err);
    if (!rc) {
        rc = pragma_int(s, "PRAGMA user_version", &ver, err);
    }
    if (!rc) {
        rc = pragma_int(s, "SELECT count(*) FROM sqlite_master", &ntables, err);
    }
    bool fresh = app == 0 && ver == 0 && ntables == 0;
    if (!rc && !write &&
        (fresh || (app == STORE_APP_ID && ver >= 1 && ver < STORE_SCHEMA))) {
        *need_write = true;
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return LOOM_OK;
    }
    if (!rc && fresh) {
        rc = exec(s, schema_now, err);
        if (!rc) {
            char sql[96];
            (void)snprintf(sql, sizeof(sql),
                           "PRAGMA application_id = %d; "
                           "PRAGMA user_version = %d",
                           STORE_APP_ID, STORE_SCHEMA);
            rc = exec(s, sql, err);
        }
        if (!rc && o->passphrase != NULL) {
            rc = encrypt_new(s, o, err);
        }
    } else if (!rc && app != STORE_APP_ID) {
        rc = fail(err, LOOM_ECORRUPT, "not a loom store (application_id)");
    } else if (!rc && ver > STORE_SCHEMA) {
        char msg[120];
        (void)snprintf(msg, sizeof(msg),
                       "store schema version %d is newer than this loom's "
                       "(%d): upgrade loom",
                       ver, STORE_SCHEMA);
        rc = fail(err, LOOM_EUNSUPPORTED, msg);
    } else if (!rc && ver < 1) {
        rc = fail(err, LOOM_ECORRUPT, "store schema version missing");
    } else if (!rc) {
        for (size_t i = 0; !rc && ver < STORE_SCHEMA &&
                           i < sizeof(migrations) / sizeof(migrations[0]);
             i++) {
            if (migrations[i].run != NULL && migrations[i].from == ver) {
                rc = migrations[i].run(s, err);
                ver++;
            }
        }
        if (!rc && ver != STORE_SCHEMA) {
            rc = fail(err, LOOM_EUNSUPPORTED, "no upgrade path for schema");
        }
        if (!rc && write) {
            char sql[64];
            (void)snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
                           STORE_SCHEMA);
            rc = exec(s, sql, err);
        }
        if (!rc) {
            rc = unlock(s, o, err);
        }
    }
    if (rc) {
        (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return exec(s, "COMMIT", err);
}

void loom_store_options_init(loom_store_options *o)
{
    if (o == NULL) {
        return;
    }
    memset(o, 0, sizeof(*o));
    o->create = 1;
    o->busy_timeout_ms = 5000;
    o->compact_max_updates = 1000;
    o->compact_max_bytes = (uint64_t)4 << 20;
}

void loom_store_close(loom_store *s)
{
    if (s == NULL) {
        return;
    }
    loom_store_batch_rollback(s); /* a batch left open is not committed */
    for (int i = 0; i < ST_COUNT; i++) {
        sqlite3_finalize(s->st[i]);
    }
    sqlite3_close(s->db);
    sodium_memzero(s->key, sizeof(s->key));
    loom__free(s->alloc, s, sizeof(*s));
}

/* Milliseconds since `t0` (CLOCK_MONOTONIC). */
static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t;
    (void)clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)(t.tv_sec - t0->tv_sec) * 1000 +
           (long)(t.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Waiting for a lock another connection holds (SQLite's busy handler; `n`
 * counts the calls of this wait). sqlite3_busy_timeout sleeps 1, 2, 5,
 * 10, 15, 20, 25... ms between tries, so a writer that met a 12 ms
 * transaction (a compaction's swap) waited 18 ms, and a server relaying
 * only after its commits showed it in every latency tail. Here: tries every
 * 0.1 ms for the first 5 ms, every 1 ms up to 50 ms, then every 5 ms,
 * until the busy timeout. Locks are held for milliseconds here; the short
 * naps cost little CPU for that long.
 */
static int busy(void *ud, int n)
{
    loom_store *s = ud;
    if (n == 0) {
        (void)clock_gettime(CLOCK_MONOTONIC, &s->busy_since);
    }
    long waited = elapsed_ms(&s->busy_since);
    if (waited >= s->busy_timeout_ms) {
        return 0;
    }
    long us = waited < 5 ? 100 : waited < 50 ? 1000 : 5000;
    struct timespec nap = {0, us * 1000};
    (void)nanosleep(&nap, NULL);
    return 1;
}

/* What opening does after sqlite3_open_v2: recognise the file, switch to
 * WAL, create or check the schema. Safe to run again after LOOM_EBUSY. */
static int
open_setup(loom_store *s, const loom_store_options *o, loom_error *err)
{
    int lrc = LOOM_OK;
    s->encrypted = 0; /* set again by this attempt if it is */
    /* Checked before anything writes: WAL mode must not be forced on a
     * foreign file. Reading the header also catches a non-database. Both
     * reads in one transaction: another process creating the store
     * between them would show its tables without its application id. */
    int app = 0;
    int tables = 0;
    lrc = exec(s, "BEGIN", err);
    if (!lrc) {
        lrc = pragma_int(s, "PRAGMA application_id", &app, err);
    }
    if (!lrc) {
        lrc = pragma_int(s, "SELECT count(*) FROM sqlite_master", &tables, err);
    }
    if (!lrc) {
        lrc = exec(s, "COMMIT", err);
    }
    if (!lrc && app != 0 && app != STORE_APP_ID) {
        lrc = fail(err, LOOM_ECORRUPT, "not a loom store (application_id)");
    }
    if (!lrc && app == 0 && tables > 0) {
        lrc = fail(err, LOOM_ECORRUPT, "not a loom store (foreign tables)");
    }
    /* WAL: readers never block the writer. synchronous=FULL: in WAL mode
     * NORMAL skips the fsync of each commit, FULL makes every committed
     * append durable before it returns. */
    if (!lrc) {
        lrc = exec(s, "PRAGMA journal_mode = WAL", err);
    }
    if (!lrc) {
        lrc = exec(s, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF",
                   err);
    }
    if (!lrc) {
        bool need_write = false;
        lrc = prepare_schema(s, o, false, &need_write, err);
        if (!lrc && need_write) {
            lrc = prepare_schema(s, o, true, &need_write, err);
        }
    }
    return lrc;
}

int loom_store_open(const char *path,
                    const loom_store_options *opts,
                    loom_store **out,
                    loom_error *err)
{
    loom_store_options defaults;
    loom_store_options_init(&defaults);
    const loom_store_options *o = opts ? opts : &defaults;
    if (path == NULL || out == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    if (o->passphrase != NULL && o->passphrase_len == 0) {
        return fail(err, LOOM_EINVAL, "empty passphrase");
    }
    if (sodium_init() < 0) {
        return fail(err, LOOM_EIO, "libsodium failed to initialise");
    }
    loom_store *s = loom__calloc(o->alloc, sizeof(*s));
    if (s == NULL) {
        return fail(err, LOOM_ENOMEM, NULL);
    }
    s->alloc = o->alloc;
    s->compact_max_updates = o->compact_max_updates;
    s->compact_max_bytes = o->compact_max_bytes;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                (o->create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    int lrc = LOOM_OK;
    if (rc != SQLITE_OK) {
        if (s->db == NULL) {
            lrc = fail(err, LOOM_ENOMEM, NULL);
        } else {
            char msg[120];
            (void)snprintf(msg, sizeof(msg), "sqlite: %s",
                           sqlite3_errmsg(s->db));
            lrc = fail(err, map_sqlite(rc), msg);
        }
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 1);
    s->busy_timeout_ms = o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 0;
    sqlite3_busy_handler(s->db, s->busy_timeout_ms ? busy : NULL, s);
    /* The busy handler does not cover every lock of opening: a connection
     * that meets another one running WAL recovery, or the last one
     * closing and checkpointing, is told SQLITE_BUSY at once. Opening is
     * read-only or one transaction, so it is simply tried again until the
     * busy timeout has passed. */
    struct timespec t0;
    (void)clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        lrc = open_setup(s, o, err);
        if (lrc && !sqlite3_get_autocommit(s->db)) {
            (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        }
        if (lrc != LOOM_EBUSY || elapsed_ms(&t0) >= o->busy_timeout_ms) {
            break;
        }
        struct timespec nap = {0, 2 * 1000 * 1000};
        (void)nanosleep(&nap, NULL);
    }
out:
    if (lrc) {
        loom_store_close(s);
        return lrc;
    }
    *out = s;
    return LOOM_OK;
}

int loom_store_is_encrypted(const loom_store *s)
{
    return s != NULL && s->encrypted;
}

/* ---- state vectors ------------------------------------------------------ */

/*
 * Folds update `u` into state vector `sv` when it can be done exactly: each
 * client of u appears in one block, without Skip structs, starting at or
 * below the clock sv has for it (so the document's run from 0 extends to
 * the block's end). Sets *ok to false when it cannot, leaving sv partly
 * updated (the caller then marks the state vector stale and drops sv).
 * Returns LOOM_OK or LOOM_ENOMEM.
 */
static int fold_update(const loom__rupdate *u, loom__sv *sv, bool *ok)
{
    loom__sv seen;
    loom__sv_init(&seen, sv->a);
    int rc = LOOM_OK;
    *ok = true;
    for (size_t i = 0; i < u->nblocks && *ok && !rc; i++) {
        const loom__rblock *b = &u->blocks[i];
        /* A client in two blocks: only possible with several blocks. */
        if (u->nblocks > 1) {
            if (loom__sv_get(&seen, b->client) != 0) {
                *ok = false;
                break;
            }
            rc = loom__sv_set(&seen, b->client, 1);
        }
        uint64_t end = b->n ? b->end_clock : b->first_clock;
        for (size_t k = 0; k < b->n; k++) {
            if (loom__rs_ref(b, k) == LOOM__REF_SKIP) {
                *ok = false;
            }
        }
        uint64_t have = loom__sv_get(sv, b->client);
        if (b->first_clock > have) {
            *ok = false;
        } else if (!rc && *ok && end > have) {
            rc = loom__sv_set(sv, b->client, end);
        }
    }
    loom__sv_free(&seen);
    return rc;
}

/* Whether a merged log leaves gaps: a client whose structs do not start at
 * clock 0 or contain a Skip. */
static int log_has_gaps(loom_store *s, const loom_buf *merged, bool *gaps)
{
    loom__rupdate u;
    int rc =
        loom__update_parse(s->alloc, merged->data, merged->len, 0, &u, NULL);
    if (rc) {
        return rc;
    }
    *gaps = false;
    for (size_t i = 0; i < u.nblocks; i++) {
        const loom__rblock *b = &u.blocks[i];
        if (b->first_clock != 0) {
            *gaps = true;
        }
        for (size_t k = 0; k < b->n; k++) {
            if (loom__rs_ref(b, k) == LOOM__REF_SKIP) {
                *gaps = true;
            }
        }
    }
    loom__rupdate_free(&u);
    return LOOM_OK;
}

/* ---- reading the log ---------------------------------------------------- */

/* A chunk of rows being merged: owned copies of the plaintext updates. */
typedef struct chunk {
    const uint8_t **data;
    size_t *lens;
    sqlite3_int64 *seqs;
    size_t n;
} chunk;

static void chunk_clear(loom_store *s, chunk *c)
{
    for (size_t i = 0; i < c->n; i++) {
        loom__free(s->alloc, (void *)c->data[i], c->lens[i] ? c->lens[i] : 1);
    }
    c->n = 0;
}

/* Merges the rows of a chunk and appends the result to `parts`. */
static int merge_chunk(loom_store *s,
                       const char *name,
                       chunk *c,
                       loom_buf **parts,
                       size_t *nparts,
                       size_t *cap,
                       loom_error *err)
{
    int rc = loom__vec_reserve(s->alloc, (void **)parts, cap, *nparts + 1,
                               sizeof(loom_buf));
    if (rc) {
        return fail(err, rc, NULL);
    }
    loom_buf m;
    memset(&m, 0, sizeof(m));
    loom_error e;
    memset(&e, 0, sizeof(e));
    rc = loom_update_merge(s->alloc, c->data, c->lens, c->n, &m, &e);
    if (rc == LOOM_EMALFORMED) {
        char msg[256];
        sqlite3_int64 seq = e.input < c->n ? c->seqs[e.input] : 0;
        (void)snprintf(msg, sizeof(msg),
                       "document '%.40s': stored update %lld is damaged: %.40s",
                       name, (long long)seq, e.message);
        return fail(err, LOOM_ECORRUPT, msg);
    }
    if (rc) {
        return fail(err, rc, e.message[0] ? e.message : NULL);
    }
    (*parts)[(*nparts)++] = m;
    chunk_clear(s, c);
    return LOOM_OK;
}

/* What a log scan found besides the merged update. */
typedef struct scan_info {
    uint64_t rows;      /* rows read */
    uint64_t plain;     /* their update bytes */
    uint64_t disk;      /* their stored bytes (sealed or not) */
    sqlite3_int64 upto; /* the largest seq read */
} scan_info;

/*
 * Reads the log of document `d` up to seq `upto` (inclusive) and merges it
 * into one update in `out` (store allocator), MERGE_CHUNK rows at a time,
 * then the chunk results (repeated while they are many). The caller holds
 * a read or write transaction so the rows are one snapshot.
 */
static int merge_log(loom_store *s,
                     const char *name,
                     const doc_row *d,
                     sqlite3_int64 upto,
                     loom_buf *out,
                     scan_info *info,
                     loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, ST_UPD_SCAN, &st, err);
    if (rc) {
        return rc;
    }
    chunk c;
    memset(&c, 0, sizeof(c));
    loom_buf *parts = NULL;
    size_t nparts = 0;
    size_t pcap = 0;
    scan_info si;
    memset(&si, 0, sizeof(si));
    c.data = loom__malloc(s->alloc, MERGE_CHUNK * sizeof(*c.data));
    c.lens = loom__malloc(s->alloc, MERGE_CHUNK * sizeof(*c.lens));
    c.seqs = loom__malloc(s->alloc, MERGE_CHUNK * sizeof(*c.seqs));
    if (c.data == NULL || c.lens == NULL || c.seqs == NULL) {
        rc = fail(err, LOOM_ENOMEM, NULL);
        goto cleanup;
    }
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_int64(st, 2, upto);
    for (;;) {
        int sr = sqlite3_step(st);
        if (sr == SQLITE_DONE) {
            break;
        }
        if (sr != SQLITE_ROW) {
            rc = db_fail(s, sr, err);
            goto cleanup;
        }
        sqlite3_int64 seq = sqlite3_column_int64(st, 0);
        const uint8_t *p = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        if (p == NULL && n > 0) {
            rc = fail(err, LOOM_ENOMEM, NULL);
            goto cleanup;
        }
        loom_buf plain;
        memset(&plain, 0, sizeof(plain));
        rc = from_disk(s, 'u', name, NULL, p, (size_t)n, &plain);
        if (rc == LOOM_EAUTH) {
            char msg[120];
            (void)snprintf(msg, sizeof(msg),
                           "document '%.40s': update %lld failed "
                           "authentication",
                           name, (long long)seq);
            rc = fail(err, LOOM_EAUTH, msg);
            goto cleanup;
        }
        if (rc) {
            rc = fail(err, rc, NULL);
            goto cleanup;
        }
        if (plain.data == NULL) {
            /* An empty row: keep a one-byte block so free sizes match. */
            plain.data = loom__malloc(s->alloc, 1);
            if (plain.data == NULL) {
                rc = fail(err, LOOM_ENOMEM, NULL);
                goto cleanup;
            }
            plain.cap = 1;
        }
        /* Shrink the block to its length so chunk_clear can free it by
         * length alone. */
        if (plain.cap != (plain.len ? plain.len : 1)) {
            size_t want = plain.len ? plain.len : 1;
            uint8_t *q = loom__realloc(s->alloc, plain.data, plain.cap, want);
            if (q == NULL) {
                loom_buf_free(&plain);
                rc = fail(err, LOOM_ENOMEM, NULL);
                goto cleanup;
            }
            plain.data = q;
        }
        c.data[c.n] = plain.data;
        c.lens[c.n] = plain.len;
        c.seqs[c.n] = seq;
        c.n++;
        si.rows++;
        si.plain += plain.len;
        si.disk += (uint64_t)n;
        si.upto = seq;
        if (c.n == MERGE_CHUNK) {
            rc = merge_chunk(s, name, &c, &parts, &nparts, &pcap, err);
            if (rc) {
                goto cleanup;
            }
        }
    }
    done(st);
    st = NULL;
    if (c.n > 0 || nparts == 0) {
        rc = merge_chunk(s, name, &c, &parts, &nparts, &pcap, err);
        if (rc) {
            goto cleanup;
        }
    }
    /* Merge the chunk results until one is left. */
    while (nparts > 1) {
        size_t k = nparts < MERGE_CHUNK ? nparts : MERGE_CHUNK;
        for (size_t i = 0; i < k; i++) {
            c.data[i] = parts[i].data;
            c.lens[i] = parts[i].len;
            c.seqs[i] = 0;
        }
        loom_buf m;
        memset(&m, 0, sizeof(m));
        loom_error e;
        memset(&e, 0, sizeof(e));
        rc = loom_update_merge(s->alloc, c.data, c.lens, k, &m, &e);
        if (rc) {
            rc = fail(err, rc == LOOM_EMALFORMED ? LOOM_ECORRUPT : rc,
                      e.message[0] ? e.message : NULL);
            goto cleanup;
        }
        for (size_t i = 0; i < k; i++) {
            loom_buf_free(&parts[i]);
        }
        memmove(parts + 1, parts + k, (nparts - k) * sizeof(*parts));
        parts[0] = m;
        nparts -= k - 1;
    }
    *out = parts[0];
    nparts = 0;
    if (info) {
        *info = si;
    }
cleanup:
    if (st != NULL) {
        done(st);
    }
    if (c.data != NULL) {
        chunk_clear(s, &c);
    }
    for (size_t i = 0; i < nparts; i++) {
        loom_buf_free(&parts[i]);
    }
    loom__free(s->alloc, parts, pcap * sizeof(*parts));
    loom__free(s->alloc, c.data, MERGE_CHUNK * sizeof(*c.data));
    loom__free(s->alloc, c.lens, MERGE_CHUNK * sizeof(*c.lens));
    loom__free(s->alloc, c.seqs, MERGE_CHUNK * sizeof(*c.seqs));
    return rc;
}

/* ---- listing ------------------------------------------------------------ */

int loom_store_list(loom_store *s,
                    int (*fn)(void *ud, const char *name, size_t len),
                    void *ud,
                    loom_error *err)
{
    if (s == NULL || fn == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, ST_LIST, &st, err);
    if (rc) {
        return rc;
    }
    for (;;) {
        int sr = sqlite3_step(st);
        if (sr == SQLITE_DONE) {
            break;
        }
        if (sr != SQLITE_ROW) {
            rc = db_fail(s, sr, err);
            break;
        }
        /* column_text of a BLOB gives its bytes with a NUL after them. */
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int len = sqlite3_column_bytes(st, 0);
        if (name == NULL) {
            rc = fail(err, LOOM_ENOMEM, NULL);
            break;
        }
        rc = fn(ud, name, (size_t)len);
        if (rc != 0) {
            break;
        }
    }
    done(st);
    return rc;
}

int loom_store_exists(loom_store *s, const char *name, loom_error *err)
{
    if (s == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    int rc = check_name(name, "missing document name", err);
    if (rc) {
        return rc;
    }
    doc_row d;
    rc = doc_get(s, name, &d, err);
    if (rc == LOOM_ENOTFOUND) {
        return 0;
    }
    if (rc) {
        return rc;
    }
    doc_row_free(s, &d);
    return 1;
}

int loom_store_info(loom_store *s,
                    const char *name,
                    loom_store_doc_info *out,
                    loom_error *err)
{
    if (s == NULL || out == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    int rc = check_name(name, "missing document name", err);
    if (rc) {
        return rc;
    }
    doc_row d;
    rc = doc_get(s, name, &d, err);
    if (rc) {
        return rc;
    }
    out->updates = d.n_updates;
    out->bytes = d.n_bytes;
    out->base_bytes = d.base_bytes < d.n_bytes ? d.base_bytes : d.n_bytes;
    doc_row_free(s, &d);
    return LOOM_OK;
}

/* ---- appending ---------------------------------------------------------- */

static int compact_doc(loom_store *s, const char *name, loom_error *err);

/* Writes the new counters, state vector and next seq of a document. */
static int doc_update(loom_store *s,
                      const doc_row *d,
                      const uint8_t *sv,
                      size_t sv_len,
                      loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, ST_DOC_UPDATE, &st, err);
    if (rc) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, d->id);
    sqlite3_bind_blob(st, 2, sv, (int)sv_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, d->sv_dirty);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)d->n_updates);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)d->n_bytes);
    sqlite3_bind_int64(st, 6, d->next_seq);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)d->base_bytes);
    return run(s, st, err);
}

/* The row of `name`, created empty when missing. In a write transaction. */
static int
doc_get_or_create(loom_store *s, const char *name, doc_row *d, loom_error *err)
{
    int rc = doc_get(s, name, d, err);
    if (rc != LOOM_ENOTFOUND) {
        return rc;
    }
    sqlite3_stmt *st = NULL;
    rc = stmt(s, ST_DOC_INSERT, &st, err);
    if (rc) {
        return rc;
    }
    bind_name(st, 1, name);
    rc = run(s, st, err);
    return rc ? rc : doc_get(s, name, d, err);
}

static int insert_row(loom_store *s,
                      sqlite3_int64 id,
                      sqlite3_int64 seq,
                      const loom_buf *data,
                      loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, ST_UPD_INSERT, &st, err);
    if (rc) {
        return rc;
    }
    if (data->len > INT_MAX) {
        done(st);
        return fail(err, LOOM_ELIMIT, "update larger than 2 GiB");
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, seq);
    /* A zero-length blob must still be a blob, not NULL. */
    static const uint8_t none = 0;
    sqlite3_bind_blob(st, 3, data->data ? data->data : &none, (int)data->len,
                      SQLITE_STATIC);
    return run(s, st, err);
}

/* Whether the log has grown past a bound since it was last compacted. */
static bool over_bounds(const loom_store *s, const doc_row *d)
{
    if (d->n_updates < 2) {
        return false;
    }
    if (s->compact_max_updates && d->n_updates > s->compact_max_updates) {
        return true;
    }
    return s->compact_max_bytes &&
           d->n_bytes - (d->base_bytes < d->n_bytes ? d->base_bytes : 0) >
               s->compact_max_bytes;
}

/* The append of loom_store_append and loom_store_append_many: validate
 * every update, seal them, then one write transaction for the rows, the
 * counters and the state vector. */
/* Notes a document to compact after the batch. Best effort: without
 * memory it is compacted after a later append instead. */
static void remember_for_later(loom_store *s, const char *name)
{
    for (size_t i = 0; i < s->nlater; i++) {
        if (strcmp(s->later[i], name) == 0) {
            return;
        }
    }
    if (s->nlater == s->later_cap) {
        size_t cap = s->later_cap ? s->later_cap * 2 : 8;
        char **p = loom__realloc(s->alloc, s->later, s->later_cap * sizeof(*p),
                                 cap * sizeof(*p));
        if (p == NULL) {
            return;
        }
        s->later = p;
        s->later_cap = cap;
    }
    size_t n = strlen(name) + 1;
    char *copy = loom__malloc(s->alloc, n);
    if (copy != NULL) {
        memcpy(copy, name, n);
        s->later[s->nlater++] = copy;
    }
}

/* Compacts (when `run`) and forgets the documents noted during a batch. */
static void run_later(loom_store *s, bool run)
{
    for (size_t i = 0; i < s->nlater; i++) {
        if (run) {
            (void)compact_doc(s, s->later[i], NULL);
        }
        loom__free(s->alloc, s->later[i], strlen(s->later[i]) + 1);
    }
    loom__free(s->alloc, s->later, s->later_cap * sizeof(*s->later));
    s->later = NULL;
    s->nlater = s->later_cap = 0;
}

int loom_store_batch_begin(loom_store *s, loom_error *err)
{
    if (s == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    if (s->batch) {
        return fail(err, LOOM_ESTATE, "a batch is already open");
    }
    int rc = run_id(s, ST_BEGIN_WRITE, err);
    if (!rc) {
        s->batch = 1;
    }
    return rc;
}

int loom_store_batch_commit(loom_store *s, loom_error *err)
{
    if (s == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    if (!s->batch) {
        return fail(err, LOOM_ESTATE, "no batch is open");
    }
    s->batch = 0;
    int rc = run_id(s, ST_COMMIT, err);
    if (rc != LOOM_OK && !sqlite3_get_autocommit(s->db)) {
        (void)run_id(s, ST_ROLLBACK, NULL);
    }
    run_later(s, rc == LOOM_OK);
    return rc;
}

void loom_store_batch_rollback(loom_store *s)
{
    if (s == NULL || !s->batch) {
        return;
    }
    s->batch = 0;
    if (!sqlite3_get_autocommit(s->db)) {
        (void)run_id(s, ST_ROLLBACK, NULL);
    }
    run_later(s, false);
}

static int append_rows(loom_store *s,
                       const char *name,
                       const uint8_t *const *updates,
                       const size_t *lens,
                       size_t n,
                       loom_error *err)
{
    if (s == NULL || (n > 0 && (updates == NULL || lens == NULL))) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    int rc = check_name(name, "missing document name", err);
    if (rc) {
        return rc;
    }
    if (n == 0) {
        return fail(err, LOOM_EINVAL, "no updates to append");
    }
    if (n > SIZE_MAX / sizeof(loom__rupdate)) {
        return fail(err, LOOM_ELIMIT, "too many updates");
    }
    loom__rupdate *parsed = loom__calloc(s->alloc, n * sizeof(*parsed));
    loom_buf *disk = loom__calloc(s->alloc, n * sizeof(*disk));
    size_t nparsed = 0;
    size_t ndisk = 0;
    doc_row d;
    memset(&d, 0, sizeof(d));
    loom__sv sv;
    loom__sv_init(&sv, s->alloc);
    loom_buf svb;
    loom__buf_init(&svb, s->alloc);
    bool in_txn = false;
    if (parsed == NULL || disk == NULL) {
        rc = fail(err, LOOM_ENOMEM, NULL);
        goto out;
    }
    for (; nparsed < n; nparsed++) {
        if (lens[nparsed] == 0 || updates[nparsed] == NULL) {
            loom__error_set(err, LOOM_EMALFORMED, 0, nparsed, "empty update");
            rc = LOOM_EMALFORMED;
            goto out;
        }
        rc = loom__update_parse(s->alloc, updates[nparsed], lens[nparsed],
                                nparsed, &parsed[nparsed], err);
        if (rc) {
            goto out;
        }
    }
    /* Sealed copies in an encrypted store; a plain store binds the
     * caller's bytes as they are (disk[] then owns nothing). */
    for (; s->encrypted && ndisk < n; ndisk++) {
        rc =
            seal(s, 'u', name, NULL, updates[ndisk], lens[ndisk], &disk[ndisk]);
        if (rc) {
            rc = fail(err, rc, NULL);
            goto out;
        }
    }
    for (size_t i = 0; !s->encrypted && i < n; i++) {
        disk[i].data = (uint8_t *)(uintptr_t)updates[i];
        disk[i].len = lens[i];
    }
    rc = begin_write(s, err);
    if (rc) {
        goto out;
    }
    in_txn = true;
    rc = doc_get_or_create(s, name, &d, err);
    if (rc) {
        goto out;
    }
    if (d.sv_dirty == 0) {
        loom__reader r;
        loom__reader_init(&r, d.sv, d.sv_len);
        int src = loom__sv_read(&r, &sv);
        if (src != LOOM_OK || loom__reader_left(&r) != 0) {
            rc = src == LOOM_ENOMEM
                     ? fail(err, LOOM_ENOMEM, NULL)
                     : fail(err, LOOM_ECORRUPT, "stored state vector damaged");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        rc = insert_row(s, d.id, d.next_seq, &disk[i], err);
        if (rc) {
            goto out;
        }
        d.next_seq++;
        d.n_updates++;
        d.n_bytes += lens[i];
        if (d.sv_dirty == 0) {
            bool ok = false;
            rc = fold_update(&parsed[i], &sv, &ok);
            if (rc) {
                rc = fail(err, rc, NULL);
                goto out;
            }
            if (!ok) {
                d.sv_dirty = 1;
            }
        } else {
            d.sv_dirty = 1;
        }
    }
    if (d.sv_dirty == 0) {
        rc = loom__sv_write(&svb, &sv);
        if (rc) {
            rc = fail(err, rc, NULL);
            goto out;
        }
        rc = doc_update(s, &d, svb.data, svb.len, err);
    } else {
        rc = doc_update(s, &d, d.sv, d.sv_len, err);
    }
    if (!rc) {
        rc = commit(s, err);
        in_txn = false;
    }
out:
    if (in_txn && rc) {
        rollback(s);
    }
    bool compact = rc == LOOM_OK && over_bounds(s, &d);
    for (size_t i = 0; i < nparsed; i++) {
        loom__rupdate_free(&parsed[i]);
    }
    for (size_t i = 0; i < ndisk; i++) {
        loom_buf_free(&disk[i]);
    }
    loom__free(s->alloc, parsed, n * sizeof(*parsed));
    loom__free(s->alloc, disk, n * sizeof(*disk));
    loom__sv_free(&sv);
    loom_buf_free(&svb);
    doc_row_free(s, &d);
    if (compact && s->batch) {
        remember_for_later(s, name);
    } else if (compact) {
        /* The append is durable already; a compaction that fails (another
         * process busy, memory) is tried again after the next append. */
        (void)compact_doc(s, name, NULL);
    }
    return rc;
}

int loom_store_append(loom_store *s,
                      const char *name,
                      const uint8_t *update,
                      size_t len,
                      loom_error *err)
{
    return append_rows(s, name, &update, &len, 1, err);
}

int loom_store_append_many(loom_store *s,
                           const char *name,
                           const uint8_t *const *updates,
                           const size_t *lens,
                           size_t n,
                           loom_error *err)
{
    return append_rows(s, name, updates, lens, n, err);
}

/* ---- reading ------------------------------------------------------------ */

/* The merged log of `name`, read in one read transaction. */
static int encode_doc(loom_store *s,
                      const char *name,
                      loom_buf *out,
                      doc_row *row,
                      loom_error *err)
{
    int rc = begin_read(s, err);
    if (rc) {
        return rc;
    }
    doc_row d;
    memset(&d, 0, sizeof(d));
    rc = doc_get(s, name, &d, err);
    if (!rc) {
        rc = merge_log(s, name, &d, INT64_MAX, out, NULL, err);
    }
    if (!rc) {
        rc = commit(s, err);
        if (rc) {
            loom_buf_free(out);
        }
    } else {
        rollback(s);
    }
    if (!rc && row != NULL) {
        *row = d;
    } else {
        doc_row_free(s, &d);
    }
    return rc;
}

static int
check_args(loom_store *s, const char *name, const void *out, loom_error *err)
{
    if (s == NULL || out == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    return check_name(name, "missing document name", err);
}

int loom_store_encode(loom_store *s,
                      const char *name,
                      loom_buf *out,
                      loom_error *err)
{
    int rc = check_args(s, name, out, err);
    if (rc) {
        return rc;
    }
    loom_buf m;
    memset(&m, 0, sizeof(m));
    rc = encode_doc(s, name, &m, NULL, err);
    if (!rc) {
        *out = m;
    }
    return rc;
}

int loom_store_load(loom_store *s,
                    const char *name,
                    loom_doc *doc,
                    loom_error *err)
{
    int rc = check_args(s, name, doc, err);
    if (rc) {
        return rc;
    }
    loom_buf m;
    memset(&m, 0, sizeof(m));
    rc = encode_doc(s, name, &m, NULL, err);
    if (rc) {
        return rc;
    }
    loom_error e;
    memset(&e, 0, sizeof(e));
    rc = loom_doc_apply_update(doc, m.data, m.len, NULL, &e);
    loom_buf_free(&m);
    if (rc) {
        return fail(err, rc == LOOM_EMALFORMED ? LOOM_ECORRUPT : rc,
                    e.message[0] ? e.message : NULL);
    }
    return LOOM_OK;
}

int loom_store_state_vector(loom_store *s,
                            const char *name,
                            loom_buf *out,
                            loom_error *err)
{
    int rc = check_args(s, name, out, err);
    if (rc) {
        return rc;
    }
    doc_row d;
    memset(&d, 0, sizeof(d));
    rc = doc_get(s, name, &d, err);
    if (rc) {
        return rc;
    }
    loom_buf b;
    loom__buf_init(&b, s->alloc);
    if (d.sv_dirty != 1) {
        rc = loom__buf_append(&b, d.sv, d.sv_len);
        doc_row_free(s, &d);
        if (rc) {
            loom_buf_free(&b);
            return fail(err, rc, NULL);
        }
        *out = b;
        return LOOM_OK;
    }
    doc_row_free(s, &d);
    /* Stale: recompute from the merged log, then keep the result for the
     * next call unless an append came in between (next_seq moved). */
    loom_buf m;
    memset(&m, 0, sizeof(m));
    rc = encode_doc(s, name, &m, &d, err);
    if (rc) {
        return rc;
    }
    loom_error e;
    memset(&e, 0, sizeof(e));
    rc = loom_update_state_vector(s->alloc, m.data, m.len, &b, &e);
    bool gaps = true;
    if (!rc) {
        rc = log_has_gaps(s, &m, &gaps);
    }
    loom_buf_free(&m);
    if (rc) {
        doc_row_free(s, &d);
        loom_buf_free(&b);
        return fail(err, rc, NULL);
    }
    /* Best effort: a failure here leaves the cache stale, not wrong. */
    sqlite3_stmt *st = NULL;
    if (begin_write(s, NULL) == LOOM_OK) {
        int wrc = stmt(s, ST_DOC_SET_SV, &st, NULL);
        if (!wrc) {
            sqlite3_bind_int64(st, 1, d.id);
            sqlite3_bind_blob(st, 2, b.data, (int)b.len, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, gaps ? 2 : 0);
            sqlite3_bind_int64(st, 4, d.next_seq);
            wrc = run(s, st, NULL);
        }
        if (!wrc) {
            wrc = commit(s, NULL);
        }
        if (wrc) {
            rollback(s);
        }
    }
    doc_row_free(s, &d);
    *out = b;
    return LOOM_OK;
}

int loom_store_diff(loom_store *s,
                    const char *name,
                    const uint8_t *sv,
                    size_t sv_len,
                    loom_buf *out,
                    loom_error *err)
{
    int rc = check_args(s, name, out, err);
    if (rc) {
        return rc;
    }
    rc = loom_state_vector_validate(sv, sv_len, err);
    if (rc) {
        return rc;
    }
    loom_buf m;
    memset(&m, 0, sizeof(m));
    rc = encode_doc(s, name, &m, NULL, err);
    if (rc) {
        return rc;
    }
    loom_buf d;
    memset(&d, 0, sizeof(d));
    loom_error e;
    memset(&e, 0, sizeof(e));
    rc = loom_update_diff(s->alloc, m.data, m.len, sv, sv_len, &d, &e);
    loom_buf_free(&m);
    if (rc) {
        return fail(err, rc, e.message[0] ? e.message : NULL);
    }
    *out = d;
    return LOOM_OK;
}

/* ---- compaction --------------------------------------------------------- */

/* Rows <= upto of document `id`: their number and stored bytes. */
static int sum_rows(loom_store *s,
                    sqlite3_int64 id,
                    sqlite3_int64 upto,
                    uint64_t *rows,
                    uint64_t *bytes,
                    loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = stmt(s, ST_UPD_SUM, &st, err);
    if (rc) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, upto);
    int sr = sqlite3_step(st);
    if (sr != SQLITE_ROW) {
        rc = db_fail(s, sr, err);
    } else {
        *rows = (uint64_t)sqlite3_column_int64(st, 0);
        *bytes = (uint64_t)sqlite3_column_int64(st, 1);
    }
    done(st);
    return rc;
}

/*
 * Rewrites a merged log as a document would encode it. mergeUpdates keeps
 * one struct per original edit (it never joins items), so a log of typed
 * characters merges into one struct per keystroke; a document joins them
 * into runs, which makes the row several times smaller and loads it
 * without integrating every keystroke again. The document keeps deleted
 * content (gc off) and encodes pending structs and deletes, so nothing the
 * log held is dropped. `m` is replaced only when the rewrite is smaller;
 * any failure leaves it as it is (the merge alone is a correct result).
 */
static void densify(loom_store *s, loom_buf *m)
{
    loom_doc_options o;
    loom_doc_options_init(&o);
    o.client_id = 0; /* never used: no local edits */
    o.gc = 0;
    o.guid = "";
    o.alloc = s->alloc;
    loom_doc *doc = NULL;
    if (loom_doc_new(&o, &doc) != LOOM_OK) {
        return;
    }
    loom_buf out;
    memset(&out, 0, sizeof(out));
    if (loom_doc_apply_update(doc, m->data, m->len, NULL, NULL) == LOOM_OK &&
        loom_doc_encode_state_as_update(doc, NULL, 0, &out, NULL) == LOOM_OK &&
        out.len < m->len) {
        loom_buf_free(m);
        *m = out;
        memset(&out, 0, sizeof(out));
    }
    loom_buf_free(&out);
    loom_doc_free(doc);
}

/* Compacts the log of `name` up to its last row at the time of reading. */
static int compact_doc(loom_store *s, const char *name, loom_error *err)
{
    doc_row d;
    doc_row d2;
    memset(&d, 0, sizeof(d));
    memset(&d2, 0, sizeof(d2));
    loom_buf m;
    loom_buf sealed;
    loom_buf sv;
    memset(&m, 0, sizeof(m));
    memset(&sealed, 0, sizeof(sealed));
    loom__buf_init(&sv, s->alloc);
    scan_info info;
    memset(&info, 0, sizeof(info));
    bool gaps = true;
    bool in_txn = false;

    /* 1. Read and merge the log in a read transaction: appends by other
     *    connections go on meanwhile (WAL readers do not block writers). */
    int rc = begin_read(s, err);
    if (rc) {
        goto out;
    }
    in_txn = true;
    rc = doc_get(s, name, &d, err);
    if (rc || d.n_updates < 2) {
        goto out;
    }
    rc = merge_log(s, name, &d, d.next_seq - 1, &m, &info, err);
    if (rc) {
        goto out;
    }
    rc = commit(s, err);
    in_txn = false;
    if (rc) {
        goto out;
    }
    if (info.rows < 2) {
        goto out;
    }
    densify(s, &m);
    if (d.sv_dirty != 0) {
        loom_error e;
        memset(&e, 0, sizeof(e));
        rc = loom_update_state_vector(s->alloc, m.data, m.len, &sv, &e);
        if (!rc) {
            rc = log_has_gaps(s, &m, &gaps);
        }
        if (rc) {
            rc = fail(err, rc, NULL);
            goto out;
        }
    }
    rc = to_disk(s, 'u', name, NULL, m.data, m.len, &sealed);
    if (rc) {
        rc = fail(err, rc, NULL);
        goto out;
    }

    /* 2. Swap in one short write transaction: the rows read are replaced
     *    by their merge at the seq of the last of them; rows appended
     *    since (larger seqs) stay. A crash before COMMIT leaves the old
     *    log, after it the new one. */
    rc = begin_write(s, err);
    if (rc) {
        goto out;
    }
    in_txn = true;
    rc = doc_get(s, name, &d2, err);
    if (rc == LOOM_ENOTFOUND) {
        rc = LOOM_OK; /* deleted meanwhile: nothing to compact */
        goto out;
    }
    if (rc) {
        goto out;
    }
    if (d2.id != d.id) {
        goto out; /* deleted and created again meanwhile */
    }
    /* Another process may have compacted part of these rows meanwhile.
     * That is harmless: the rows <= upto can only have lost content to
     * rows at larger seqs since our read (appends land above next_seq, a
     * compaction moves rows into one at its own upto), so our merge holds
     * all they hold. Only the counters must use the rows as they are now. */
    uint64_t rows = 0;
    uint64_t bytes = 0;
    rc = sum_rows(s, d.id, info.upto, &rows, &bytes, err);
    if (rc || rows < 2) {
        goto out;
    }
    uint64_t plain =
        s->encrypted ? bytes - rows * (NONCE_LEN + TAG_LEN) : bytes;
    if (d2.n_updates < rows || d2.n_bytes < plain ||
        (s->encrypted && bytes < rows * (NONCE_LEN + TAG_LEN))) {
        rc = fail(err, LOOM_ECORRUPT, "document counters out of step");
        goto out;
    }
    sqlite3_stmt *st = NULL;
    rc = stmt(s, ST_UPD_DELETE_UPTO, &st, err);
    if (rc) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, d.id);
    sqlite3_bind_int64(st, 2, info.upto);
    rc = run(s, st, err);
    if (!rc) {
        rc = insert_row(s, d.id, info.upto, &sealed, err);
    }
    if (rc) {
        goto out;
    }
    d2.n_updates = d2.n_updates - rows + 1;
    d2.n_bytes = d2.n_bytes - plain + m.len;
    d2.base_bytes = m.len;
    if (d.sv_dirty != 0 && d2.next_seq == d.next_seq) {
        /* Nothing appended since the read: the merge is the whole log. */
        d2.sv_dirty = gaps ? 2 : 0;
        rc = doc_update(s, &d2, sv.data, sv.len, err);
    } else {
        rc = doc_update(s, &d2, d2.sv, d2.sv_len, err);
    }
    if (!rc) {
        rc = commit(s, err);
        in_txn = false;
    }
out:
    if (in_txn) {
        rollback(s);
    }
    doc_row_free(s, &d);
    doc_row_free(s, &d2);
    loom_buf_free(&m);
    loom_buf_free(&sealed);
    loom_buf_free(&sv);
    return rc;
}

int loom_store_compact(loom_store *s, const char *name, loom_error *err)
{
    if (s == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    int rc = check_name(name, "missing document name", err);
    return rc ? rc : compact_doc(s, name, err);
}

/* ---- deleting ----------------------------------------------------------- */

static int
exec_id(loom_store *s, const char *sql, sqlite3_int64 id, loom_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return db_fail(s, rc, err);
    }
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    int lrc = rc == SQLITE_DONE ? LOOM_OK : db_fail(s, rc, err);
    sqlite3_finalize(st);
    return lrc;
}

int loom_store_delete(loom_store *s, const char *name, loom_error *err)
{
    if (s == NULL) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    int rc = check_name(name, "missing document name", err);
    if (rc) {
        return rc;
    }
    rc = begin_write(s, err);
    if (rc) {
        return rc;
    }
    doc_row d;
    memset(&d, 0, sizeof(d));
    rc = doc_get(s, name, &d, err);
    if (!rc) {
        rc = exec_id(s, "DELETE FROM updates WHERE doc_id = ?1", d.id, err);
    }
    if (!rc) {
        rc = exec_id(s, "DELETE FROM meta WHERE doc_id = ?1", d.id, err);
    }
    if (!rc) {
        rc = exec_id(s, "DELETE FROM docs WHERE id = ?1", d.id, err);
    }
    if (!rc) {
        rc = commit(s, err);
    } else {
        rollback(s);
    }
    doc_row_free(s, &d);
    return rc;
}

/* ---- metadata ----------------------------------------------------------- */

int loom_store_meta_get(loom_store *s,
                        const char *name,
                        const char *key,
                        loom_buf *out,
                        loom_error *err)
{
    int rc = check_args(s, name, out, err);
    if (!rc) {
        rc = check_name(key, "missing metadata key", err);
    }
    if (rc) {
        return rc;
    }
    rc = begin_read(s, err);
    if (rc) {
        return rc;
    }
    doc_row d;
    memset(&d, 0, sizeof(d));
    loom_buf v;
    memset(&v, 0, sizeof(v));
    sqlite3_stmt *st = NULL;
    rc = doc_get(s, name, &d, err);
    if (!rc) {
        rc = stmt(s, ST_META_GET, &st, err);
    }
    if (!rc) {
        sqlite3_bind_int64(st, 1, d.id);
        bind_name(st, 2, key);
        int sr = sqlite3_step(st);
        if (sr == SQLITE_DONE) {
            rc = fail(err, LOOM_ENOTFOUND, "no such metadata key");
        } else if (sr != SQLITE_ROW) {
            rc = db_fail(s, sr, err);
        } else {
            const uint8_t *p = sqlite3_column_blob(st, 0);
            int n = sqlite3_column_bytes(st, 0);
            rc = from_disk(s, 'm', name, key, p, (size_t)n, &v);
            if (rc) {
                rc = fail(err, rc,
                          rc == LOOM_EAUTH ? "metadata value failed "
                                             "authentication"
                                           : NULL);
            }
        }
        done(st);
    }
    if (!rc) {
        rc = commit(s, err);
    } else {
        rollback(s);
    }
    doc_row_free(s, &d);
    if (rc) {
        loom_buf_free(&v);
        return rc;
    }
    if (v.alloc == NULL) {
        v.alloc = s->alloc;
    }
    *out = v;
    return LOOM_OK;
}

int loom_store_meta_set(loom_store *s,
                        const char *name,
                        const char *key,
                        const uint8_t *value,
                        size_t len,
                        loom_error *err)
{
    if (s == NULL || (value == NULL && len > 0)) {
        return fail(err, LOOM_EINVAL, "missing argument");
    }
    int rc = check_name(name, "missing document name", err);
    if (!rc) {
        rc = check_name(key, "missing metadata key", err);
    }
    if (rc) {
        return rc;
    }
    if (len > INT_MAX - NONCE_LEN - TAG_LEN) {
        return fail(err, LOOM_ELIMIT, "metadata value too large");
    }
    bool del = value == NULL;
    loom_buf v;
    memset(&v, 0, sizeof(v));
    static const uint8_t none = 0;
    if (!del) {
        rc = to_disk(s, 'm', name, key, value, len, &v);
        if (rc) {
            return fail(err, rc, NULL);
        }
    }
    rc = begin_write(s, err);
    if (rc) {
        loom_buf_free(&v);
        return rc;
    }
    doc_row d;
    memset(&d, 0, sizeof(d));
    sqlite3_stmt *st = NULL;
    rc = doc_get(s, name, &d, err);
    if (!rc) {
        rc = stmt(s, del ? ST_META_DEL : ST_META_PUT, &st, err);
    }
    if (!rc) {
        sqlite3_bind_int64(st, 1, d.id);
        bind_name(st, 2, key);
        if (!del) {
            sqlite3_bind_blob(st, 3, v.data ? v.data : &none, (int)v.len,
                              SQLITE_STATIC);
        }
        rc = run(s, st, err);
    }
    if (!rc) {
        rc = commit(s, err);
    } else {
        rollback(s);
    }
    doc_row_free(s, &d);
    loom_buf_free(&v);
    return rc;
}

int loom_store_meta_list(
    loom_store *s,
    const char *name,
    int (*fn)(void *ud, const char *key, const uint8_t *value, size_t len),
    void *ud,
    loom_error *err)
{
    int rc = check_args(s, name, fn, err);
    if (rc) {
        return rc;
    }
    rc = begin_read(s, err);
    if (rc) {
        return rc;
    }
    doc_row d;
    memset(&d, 0, sizeof(d));
    sqlite3_stmt *st = NULL;
    int ret = 0;
    rc = doc_get(s, name, &d, err);
    if (!rc) {
        rc = stmt(s, ST_META_LIST, &st, err);
    }
    if (!rc) {
        sqlite3_bind_int64(st, 1, d.id);
        for (;;) {
            int sr = sqlite3_step(st);
            if (sr == SQLITE_DONE) {
                break;
            }
            if (sr != SQLITE_ROW) {
                rc = db_fail(s, sr, err);
                break;
            }
            const char *key = (const char *)sqlite3_column_text(st, 0);
            const uint8_t *p = sqlite3_column_blob(st, 1);
            int n = sqlite3_column_bytes(st, 1);
            if (key == NULL) {
                rc = fail(err, LOOM_ENOMEM, NULL);
                break;
            }
            loom_buf v;
            memset(&v, 0, sizeof(v));
            rc = from_disk(s, 'm', name, key, p, (size_t)n, &v);
            if (rc) {
                rc = fail(err, rc,
                          rc == LOOM_EAUTH ? "metadata value failed "
                                             "authentication"
                                           : NULL);
                break;
            }
            ret = fn(ud, key, v.data ? v.data : &(const uint8_t){0}, v.len);
            loom_buf_free(&v);
            if (ret != 0) {
                break;
            }
        }
        done(st);
    }
    if (!rc) {
        rc = commit(s, err);
    } else {
        rollback(s);
    }
    doc_row_free(s, &d);
    return rc ? rc : ret;
}
