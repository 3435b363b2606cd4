/*
 * loom/server.h: `loom serve` as a library: a y-websocket-compatible sync
 * server on libwebsockets (one event loop; with a store, a writer thread
 * for the group commits and one for compaction), with rooms backed by the
 * durable store, awareness relay, limits, HS256 tokens, TLS, /healthz and
 * /metrics, and static files. The CLI (tools/loom/cmd_serve.c) only parses
 * options and installs signal handlers. Protocol behaviour and the places it
 * differs from the reference server: docs/server.md.
 *
 * Also here: the access tokens the server checks (HS256 JWTs naming a room
 * glob, a mode and an expiry), so that `loom token` and embedders issue the
 * same tokens the server verifies.
 *
 * Threads: a server runs on the thread that calls loom_server_run; only
 * loom_server_stop may be called from elsewhere (also from a signal
 * handler). The library never prints: log lines go to the log callback.
 */
#ifndef LOOM_SERVER_H
#define LOOM_SERVER_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct loom_server loom_server;

typedef enum loom_log_level {
    LOOM_LOG_ERROR = 0,
    LOOM_LOG_WARN = 1,
    LOOM_LOG_INFO = 2,
    LOOM_LOG_DEBUG = 3
} loom_log_level;

/* One log line (no trailing newline), valid during the call. */
typedef void (*loom_log_fn)(void *ud, loom_log_level level, const char *line);

/* Options of loom_server_new. Start from loom_server_options_init(). */
typedef struct loom_server_options {
    const char *host; /* address to bind (default "127.0.0.1") */
    int port;         /* default 1234; 0: a free port (loom_server_port) */
    /* Directory of the durable store (DIR/loom.db, created if missing);
     * NULL: rooms live in memory only and are never unloaded. */
    const char *data_dir;
    /* Directory of static files for other GET paths; NULL: 404. */
    const char *web_dir;
    /* TLS: a PEM certificate (chain) and its private key, both or neither;
     * with them the server speaks only wss:// and https://. Read at
     * loom_server_new. NULL: plain ws:// and http://. */
    const char *tls_cert_file;
    const char *tls_key_file;
    /* HS256 key; NULL: no authentication. Copied. */
    const uint8_t *auth_secret;
    size_t auth_secret_len;
    size_t max_message;   /* bytes (default 16 MiB) */
    unsigned max_conns;   /* WebSocket connections (default 10000) */
    size_t max_queue;     /* queued bytes per connection (default 8 MiB) */
    unsigned ping_secs;   /* idle before a ping (default 30) */
    unsigned hangup_secs; /* idle before hanging up (default 60) */
    unsigned unload_secs; /* an empty room unloads after (default 30) */
    /* A room's log is compacted, by a thread of its own, once it holds
     * more rows than this (default 1000; with a store only). */
    unsigned compact_rows;
    unsigned awareness_timeout_ms; /* default 30000, as y-protocols */
    /* 1 (default): the rooms' documents garbage-collect deleted content,
     * as the reference server's (GC=false there to keep it); 0: keep
     * it, so that clients can restore snapshots. */
    int gc;
    /* The reference server's HTTP callback (CALLBACK_URL and friends in
     * @y/websocket-server): when set (http://HOST[:PORT]/PATH), a room that
     * changed is POSTed as {"room": NAME, "data": {OBJ: {"type": TYPE,
     * "content": toJSON}}} for the roots named in `callback_objects`
     * (JSON text {"OBJ": "TYPE"}, TYPE Array, Map, Text, XmlFragment or
     * XmlElement), `callback_debounce_ms` after its last change (default
     * 2000) and at most `callback_max_wait_ms` after the first unsent one
     * (default 10000; 0: no bound). `callback_timeout_ms` (default 5000)
     * bounds each POST. Copied at loom_server_new. */
    const char *callback_url;
    const char *callback_objects;
    unsigned callback_debounce_ms;
    unsigned callback_max_wait_ms;
    unsigned callback_timeout_ms;
    loom_log_fn log; /* NULL: no logging */
    void *log_ud;
    loom_log_level log_level;    /* lines above this level are dropped
                                 (default LOOM_LOG_INFO) */
    const loom_allocator *alloc; /* NULL: libc */
} loom_server_options;

void loom_server_options_init(loom_server_options *o);

/*
 * Creates a server: opens the store and binds the listening socket (so the
 * port is known before loom_server_run). LOOM_EIO when the address cannot
 * be bound or the store cannot be opened (message in `err`). Free with
 * loom_server_free. libwebsockets' own logging (process-wide) is turned
 * off: everything worth saying goes through `log`.
 */
int loom_server_new(const loom_server_options *opts,
                    loom_server **out,
                    loom_error *err);
/* The bound TCP port. */
int loom_server_port(const loom_server *s);
/* Serves until loom_server_stop; then stops accepting, sends what is
 * queued, closes every connection with a close frame (1001), flushes the
 * rooms and returns 0. */
int loom_server_run(loom_server *s);
/* Asks a running server to stop. Async-signal-safe. */
void loom_server_stop(loom_server *s);
/* Closes the store and frees everything; NULL is a no-op. */
void loom_server_free(loom_server *s);

/* ---- access tokens (HS256 JWT) ---------------------------------------- */

typedef enum loom_token_mode {
    LOOM_TOKEN_READ = 1,      /* claim "mode": "r" */
    LOOM_TOKEN_READ_WRITE = 2 /* claim "mode": "rw" */
} loom_token_mode;

/* Longest token accepted, in bytes. */
#define LOOM_TOKEN_MAX 4096

/*
 * Issues a token: header {"alg":"HS256","typ":"JWT"}, claims
 * {"room": room_glob, "mode": "r"|"rw", "exp": exp (Unix seconds)}, signed
 * with HMAC-SHA-256 under `key`. The token (text, NUL-terminated, len
 * without the NUL) goes to `out`.
 */
int loom_token_issue(const uint8_t *key,
                     size_t key_len,
                     const char *room_glob,
                     loom_token_mode mode,
                     int64_t exp,
                     loom_buf *out);

/*
 * Verifies `token` for `room` at time `now` (Unix seconds): the signature
 * (compared in constant time), alg HS256, an "exp" after now, a "room" glob
 * matching the room (fnmatch, no flags: '*' also matches '/'), a known
 * mode. LOOM_EMALFORMED for a token that is not a JWT of this shape,
 * LOOM_EAUTH for a forged, expired or wrong-room token; `err` says which.
 */
int loom_token_verify(const uint8_t *key,
                      size_t key_len,
                      const char *token,
                      size_t token_len,
                      const char *room,
                      int64_t now,
                      loom_token_mode *mode,
                      loom_error *err);

#ifdef __cplusplus
}
#endif
#endif
