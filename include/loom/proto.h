/*
 * loom/proto.h: the y-protocols messages as y-websocket frames them, as pure
 * functions over bytes: parsing one message (sync step 1 / step 2 / update,
 * awareness, auth, query-awareness), writing every message, answering sync
 * messages against a loom_doc, and the awareness CRDT (who is online and
 * their cursor/presence state) with the exact acceptance rules of
 * y-protocols 1.0.7. The server (loom/server.h) and native peers build on
 * these; nothing here does I/O or reads a clock (times are passed in).
 *
 * Wire format (one WebSocket binary frame = one message):
 *   varUint(outer) payload
 *   outer 0 sync:            varUint(step) varUint8Array(bytes)
 *                            step 0: state vector, 1: update (step 2),
 *                            2: update
 *   outer 1 awareness:       varUint8Array(awareness update)
 *   outer 2 auth:            varUint(0 = permission denied) varString(reason)
 *   outer 3 query awareness: nothing
 *
 * Threads: a loom_awareness is used by one thread at a time.
 */
#ifndef LOOM_PROTO_H
#define LOOM_PROTO_H

#include "common.h"
#include "doc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Outer message types of y-websocket. */
typedef enum loom_msg_type {
    LOOM_MSG_SYNC = 0,
    LOOM_MSG_AWARENESS = 1,
    LOOM_MSG_AUTH = 2,
    LOOM_MSG_QUERY_AWARENESS = 3
} loom_msg_type;

/* Sync message types (y-protocols/sync). */
typedef enum loom_sync_type {
    LOOM_SYNC_STEP1 = 0,
    LOOM_SYNC_STEP2 = 1,
    LOOM_SYNC_UPDATE = 2
} loom_sync_type;

/* The only auth message y-protocols defines. */
#define LOOM_AUTH_PERMISSION_DENIED 0

/*
 * One parsed message. `payload` points into the parsed input and is valid as
 * long as that input is:
 *  - LOOM_MSG_SYNC: the state vector (step 1) or the update (step 2,
 *    update), not yet validated as such;
 *  - LOOM_MSG_AWARENESS: the awareness update, not yet validated;
 *  - LOOM_MSG_AUTH: the reason text (valid UTF-8, not NUL-terminated);
 *  - LOOM_MSG_QUERY_AWARENESS: empty.
 */
typedef struct loom_msg {
    loom_msg_type type;
    loom_sync_type sync_type; /* LOOM_MSG_SYNC only */
    unsigned auth_type;       /* LOOM_MSG_AUTH only */
    const uint8_t *payload;
    size_t payload_len;
} loom_msg;

/*
 * Parses one whole message. Fails with LOOM_EMALFORMED (truncated input, a
 * varint out of range, invalid UTF-8 in an auth reason, bytes after the
 * message) or LOOM_EUNSUPPORTED (an unknown outer, sync or auth type); `err`
 * gets the byte offset and a message. `out` is written only on success.
 */
int loom_msg_parse(const uint8_t *data,
                   size_t len,
                   loom_msg *out,
                   loom_error *err);

/* ---- writers: each appends one whole message to `out` ----------------- */
/* `out` may hold bytes already (the message is appended); a zeroed loom_buf
 * uses the libc allocator. On failure (LOOM_ENOMEM) `out` keeps its old
 * length. */

int loom_msg_write_sync(loom_buf *out,
                        loom_sync_type type,
                        const uint8_t *payload,
                        size_t len);
/* [0, step 1, state vector of `doc`]. */
int loom_msg_write_sync_step1(loom_buf *out, const loom_doc *doc);
/* [0, step 2, what a peer with state vector `sv` lacks]; LOOM_EMALFORMED if
 * `sv` is not a state vector. */
int loom_msg_write_sync_step2(loom_buf *out,
                              const loom_doc *doc,
                              const uint8_t *sv,
                              size_t sv_len,
                              loom_error *err);
int loom_msg_write_awareness(loom_buf *out, const uint8_t *update, size_t len);
/* [2, 0, reason]; `reason` must be UTF-8 (LOOM_EINVAL otherwise). */
int loom_msg_write_auth_denied(loom_buf *out, const char *reason, size_t len);
int loom_msg_write_query_awareness(loom_buf *out);

/*
 * Handles a parsed sync message against `doc`, as y-protocols readSyncMessage
 * does: step 1 appends the step 2 reply to `reply` (a whole message); step 2
 * and update apply the payload in one transaction with `origin`, all or
 * nothing (LOOM_EMALFORMED and the document unchanged if the update is bad),
 * and append nothing. LOOM_EINVAL if `msg` is not a sync message.
 */
int loom_sync_handle(loom_doc *doc,
                     const loom_msg *msg,
                     void *origin,
                     loom_buf *reply,
                     loom_error *err);

/* ---- awareness --------------------------------------------------------- */

typedef struct loom_awareness loom_awareness;

/* What an applied change did to one client (the y-protocols events). */
typedef enum loom_awareness_change {
    LOOM_AWARENESS_ADDED = 0,   /* a first state for a client never seen */
    LOOM_AWARENESS_UPDATED = 1, /* a new clock, the same state text */
    LOOM_AWARENESS_CHANGED = 2, /* a new clock and a different state */
    LOOM_AWARENESS_REMOVED = 3  /* a null state (or a local removal) */
} loom_awareness_change;

/* Called once per accepted entry, after the whole update was applied, in
 * input order. ADDED, CHANGED and REMOVED are y-protocols' "change" event;
 * all four together its "update" event (what a server relays). */
typedef void (*loom_awareness_fn)(void *ud,
                                  uint64_t client,
                                  loom_awareness_change what);

/*
 * A new awareness for local client `client_id` (usually the document's
 * client id). As in y-protocols the local state starts as {} at clock 0;
 * a server sets it to null at once (loom_awareness_set_local with NULL).
 * Free with loom_awareness_free.
 */
int loom_awareness_new(const loom_allocator *a,
                       uint64_t client_id,
                       uint64_t now_ms,
                       loom_awareness **out);
void loom_awareness_free(loom_awareness *aw);

/* Sets the local state to JSON text `json` (NULL: null, i.e. offline) and
 * increments the local clock. LOOM_EMALFORMED if the text is not JSON. */
int loom_awareness_set_local(loom_awareness *aw,
                             const char *json,
                             size_t len,
                             uint64_t now_ms);

/*
 * Applies an awareness update from a peer. Every entry is decoded and its
 * state parsed as JSON first; a malformed update changes nothing
 * (LOOM_EMALFORMED with the offset in `err`). Then each entry is accepted
 * when its clock is newer than the known one, or equal with a null state
 * while a state is known; a null state removes the client's state, except
 * our own non-null local state, which is kept with the clock bumped past the
 * peer's (so that we re-announce ourselves). States are stored as
 * JSON.stringify would write them. `fn` (may be NULL) reports each accepted
 * entry.
 */
int loom_awareness_apply(loom_awareness *aw,
                         const uint8_t *update,
                         size_t len,
                         uint64_t now_ms,
                         loom_awareness_fn fn,
                         void *ud,
                         loom_error *err);

/* Encodes an awareness update for `clients` (their clock and state, null for
 * clients without a state; clients never seen are skipped). */
int loom_awareness_encode(const loom_awareness *aw,
                          const uint64_t *clients,
                          size_t n,
                          loom_buf *out);
/* An update with every client that has a state, in the order the states
 * were set; LOOM_ENOTFOUND (and nothing written) when there is none. */
int loom_awareness_encode_all(const loom_awareness *aw, loom_buf *out);

/* Removes the states of `clients` (y-protocols removeAwarenessStates): a
 * removed peer keeps its clock, so the encoded removal (client, same clock,
 * null) is accepted by others through the equal-clock rule; our own clock is
 * incremented. Reports REMOVED for each client that had a state. */
int loom_awareness_remove(loom_awareness *aw,
                          const uint64_t *clients,
                          size_t n,
                          uint64_t now_ms,
                          loom_awareness_fn fn,
                          void *ud);

/* Removes remote states not renewed for `timeout_ms` (y-protocols: 30000)
 * and reports them as REMOVED. */
int loom_awareness_expire(loom_awareness *aw,
                          uint64_t now_ms,
                          uint64_t timeout_ms,
                          loom_awareness_fn fn,
                          void *ud);

/* Number of clients with a state. */
size_t loom_awareness_count(const loom_awareness *aw);
/* A client's state (JSON text, borrowed until the next change) and clock.
 * LOOM_ENOTFOUND when it has no state. */
int loom_awareness_get(const loom_awareness *aw,
                       uint64_t client,
                       const char **json,
                       size_t *len,
                       uint64_t *clock);

#ifdef __cplusplus
}
#endif
#endif
