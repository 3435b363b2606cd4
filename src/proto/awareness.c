/*
 * awareness.c: the awareness CRDT of y-protocols (loom/proto.h): per client
 * a clock, the time of the last renewal and a JSON state (or none), with
 * the acceptance rules of y-protocols 1.0.7 applyAwarenessUpdate, and the
 * removal and timeout rules a server needs.
 *
 * Unlike the reference, which parses and applies entry by entry (a bad
 * entry in the middle leaves the first ones applied), an update is decoded
 * and every state parsed before anything changes, and everything that can
 * fail to allocate is allocated before the first change: all or nothing.
 *
 * A client's record (its "meta") outlives its state, as in y-protocols: the
 * clock must survive a removal so that an old state replayed later is
 * refused. Records are freed with the awareness.
 */
#include <string.h>

#include "any/any_internal.h"
#include "base/base.h"
#include "loom/proto.h"

typedef struct aw_entry {
    uint64_t client;
    uint64_t clock;
    uint64_t last_ms;
    uint64_t seq; /* when the current state was set after none: order */
    char *state;  /* canonical JSON, NUL-terminated; NULL: no state */
    size_t state_len;
    bool known; /* false: allocated ahead of an apply, not yet a record */
} aw_entry;

struct loom_awareness {
    const loom_allocator *a;
    uint64_t self;
    loom__u64map idx; /* client -> aw_entry * */
    aw_entry **v;     /* every entry, for freeing and ordered walks */
    size_t n, cap;
    uint64_t seq;
    size_t count; /* entries with a state */
};

/* One decoded entry of an incoming update. */
typedef struct aw_in {
    uint64_t client;
    uint64_t clock;
    loom_buf json; /* canonical text; len 0 never happens (null is "null") */
    bool null_state;
    aw_entry *e;
} aw_in;

static void set_state(loom_awareness *aw, aw_entry *e, char *s, size_t len)
{
    if (e->state) {
        loom__free(aw->a, e->state, e->state_len + 1);
        aw->count--;
    } else if (s) {
        e->seq = ++aw->seq;
    }
    e->state = s;
    e->state_len = len;
    if (s) {
        aw->count++;
    }
}

/* The record of `client`, created (unknown) if missing. */
static int entry_for(loom_awareness *aw, uint64_t client, aw_entry **out)
{
    aw_entry *e = loom__u64map_get(&aw->idx, client);
    if (e) {
        *out = e;
        return LOOM_OK;
    }
    if (loom__vec_reserve(aw->a, (void **)&aw->v, &aw->cap, aw->n + 1,
                          sizeof(aw_entry *))) {
        return LOOM_ENOMEM;
    }
    e = loom__calloc(aw->a, sizeof(*e));
    if (!e) {
        return LOOM_ENOMEM;
    }
    e->client = client;
    if (loom__u64map_put(&aw->idx, client, e)) {
        loom__free(aw->a, e, sizeof(*e));
        return LOOM_ENOMEM;
    }
    aw->v[aw->n++] = e;
    *out = e;
    return LOOM_OK;
}

/* Parses JSON text and writes it back as JSON.stringify would, so that what
 * we relay is what a JavaScript peer would have relayed. */
static int canonical_json(const loom_allocator *a,
                          const char *text,
                          size_t len,
                          loom_buf *out,
                          bool *is_null,
                          size_t *err_off)
{
    loom_any *v = NULL;
    int rc = loom__json_read(a, text, len, false, &v, err_off);
    if (rc) {
        return rc;
    }
    *is_null = loom_any_kind_of(v) == LOOM_ANY_NULL;
    loom__buf_init(out, a);
    rc = loom__json_write(out, v);
    loom_any_free(v);
    if (!rc) {
        rc = loom__buf_push(out, '\0');
    }
    if (rc) {
        loom_buf_free(out);
        return rc == LOOM_EINVAL ? LOOM_EMALFORMED : rc;
    }
    out->len--; /* keep the NUL outside the length */
    return LOOM_OK;
}

int loom_awareness_new(const loom_allocator *a,
                       uint64_t client_id,
                       uint64_t now_ms,
                       loom_awareness **out)
{
    if (!out || client_id > LOOM__MAX_SAFE_INT) {
        return LOOM_EINVAL;
    }
    loom_awareness *aw = loom__calloc(a, sizeof(*aw));
    if (!aw) {
        return LOOM_ENOMEM;
    }
    aw->a = a;
    aw->self = client_id;
    loom__u64map_init(&aw->idx, a);
    aw_entry *e;
    char *s = loom__strndup(a, "{}", 2);
    if (!s || entry_for(aw, client_id, &e)) {
        if (s) {
            loom__free(a, s, 3);
        }
        loom_awareness_free(aw);
        return LOOM_ENOMEM;
    }
    e->known = true;
    e->clock = 0;
    e->last_ms = now_ms;
    set_state(aw, e, s, 2);
    *out = aw;
    return LOOM_OK;
}

void loom_awareness_free(loom_awareness *aw)
{
    if (!aw) {
        return;
    }
    for (size_t i = 0; i < aw->n; i++) {
        aw_entry *e = aw->v[i];
        if (e->state) {
            loom__free(aw->a, e->state, e->state_len + 1);
        }
        loom__free(aw->a, e, sizeof(*e));
    }
    loom__free(aw->a, aw->v, aw->cap * sizeof(aw_entry *));
    loom__u64map_free(&aw->idx);
    loom__free(aw->a, aw, sizeof(*aw));
}

int loom_awareness_set_local(loom_awareness *aw,
                             const char *json,
                             size_t len,
                             uint64_t now_ms)
{
    if (!aw || (!json && len)) {
        return LOOM_EINVAL;
    }
    loom_buf canon = {0};
    bool is_null = true;
    if (json) {
        size_t off = 0;
        int rc = canonical_json(aw->a, json, len, &canon, &is_null, &off);
        if (rc) {
            return rc;
        }
    }
    aw_entry *e = loom__u64map_get(&aw->idx, aw->self);
    if (!e) { /* created by loom_awareness_new; never removed */
        loom_buf_free(&canon);
        return LOOM_ESTATE;
    }
    e->clock = e->known ? e->clock + 1 : 0;
    e->known = true;
    e->last_ms = now_ms;
    if (is_null) {
        loom_buf_free(&canon);
        set_state(aw, e, NULL, 0);
    } else {
        /* the buffer's bytes become the state; its capacity may exceed
         * len + 1, so copy to an exact allocation */
        char *s = loom__strndup(aw->a, (const char *)canon.data, canon.len);
        size_t n = canon.len;
        loom_buf_free(&canon);
        if (!s) {
            return LOOM_ENOMEM;
        }
        set_state(aw, e, s, n);
    }
    return LOOM_OK;
}

static void free_ins(const loom_allocator *a, aw_in *ins, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        loom_buf_free(&ins[i].json);
    }
    loom__free(a, ins, n * sizeof(*ins));
}

/* Decodes every entry of an update; states become canonical JSON. */
static int decode_update(loom_awareness *aw,
                         const uint8_t *update,
                         size_t len,
                         aw_in **out,
                         size_t *out_n,
                         loom_error *err)
{
    loom__reader r;
    loom__reader_init(&r, update, len);
    uint64_t n;
    if (loom__read_varuint(&r, &n)) {
        loom__reader_error(&r, err, 0);
        return r.err;
    }
    /* each entry takes at least 3 bytes: bounds the allocation below */
    if (n > loom__reader_left(&r) / 3) {
        loom__error_set(err, LOOM_EMALFORMED, 0, 0,
                        "more awareness entries than bytes");
        return LOOM_EMALFORMED;
    }
    aw_in *ins = NULL;
    if (n) {
        ins = loom__calloc(aw->a, (size_t)n * sizeof(*ins));
        if (!ins) {
            return LOOM_ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *s;
        size_t slen;
        (void)loom__read_varuint(&r, &ins[i].client);
        (void)loom__read_varuint(&r, &ins[i].clock);
        size_t at = r.pos;
        if (loom__read_varstring(&r, &s, &slen)) {
            loom__reader_error(&r, err, 0);
            free_ins(aw->a, ins, (size_t)n);
            return r.err;
        }
        size_t off = 0;
        int rc = canonical_json(aw->a, s, slen, &ins[i].json,
                                &ins[i].null_state, &off);
        if (rc) {
            if (rc == LOOM_EMALFORMED) {
                loom__error_set(err, rc, at + (r.pos - at - slen) + off, 0,
                                "awareness state is not JSON");
            } else {
                loom__error_set(err, rc, at, 0, NULL);
            }
            free_ins(aw->a, ins, (size_t)n);
            return rc;
        }
    }
    if (r.pos != r.len) {
        loom__error_set(err, LOOM_EMALFORMED, r.pos, 0,
                        "bytes after the awareness update");
        free_ins(aw->a, ins, (size_t)n);
        return LOOM_EMALFORMED;
    }
    *out = ins;
    *out_n = (size_t)n;
    return LOOM_OK;
}

typedef struct aw_event {
    uint64_t client;
    loom_awareness_change what;
} aw_event;

/* Applies one decoded entry; never fails (everything is allocated). */
static bool
apply_one(loom_awareness *aw, aw_in *in, uint64_t now_ms, aw_event *ev)
{
    aw_entry *e = in->e;
    if (!e) {
        return false;
    }
    uint64_t cur = e->known ? e->clock : 0;
    bool accept =
        cur < in->clock || (cur == in->clock && in->null_state && e->state);
    if (!accept) {
        return false;
    }
    bool was_known = e->known;
    uint64_t clock = in->clock;
    bool differs = true;
    if (in->null_state) {
        if (in->client == aw->self && e->state) {
            /* never let a peer remove our own state: announce a newer
             * clock instead */
            clock++;
        } else {
            set_state(aw, e, NULL, 0);
        }
    } else {
        differs = !e->state || e->state_len != in->json.len ||
                  memcmp(e->state, in->json.data, e->state_len) != 0;
        /* hand the canonical text over: loom_awareness_apply made its
         * block exactly len + 1 bytes, ending with a NUL */
        char *s = (char *)in->json.data;
        size_t slen = in->json.len;
        memset(&in->json, 0, sizeof(in->json));
        set_state(aw, e, s, slen);
    }
    e->known = true;
    e->clock = clock;
    e->last_ms = now_ms;
    ev->client = in->client;
    if (!was_known && !in->null_state) {
        ev->what = LOOM_AWARENESS_ADDED;
    } else if (was_known && in->null_state) {
        ev->what = LOOM_AWARENESS_REMOVED;
    } else if (!in->null_state) {
        ev->what = differs ? LOOM_AWARENESS_CHANGED : LOOM_AWARENESS_UPDATED;
    } else {
        return false; /* a first record without a state: no event */
    }
    return true;
}

int loom_awareness_apply(loom_awareness *aw,
                         const uint8_t *update,
                         size_t len,
                         uint64_t now_ms,
                         loom_awareness_fn fn,
                         void *ud,
                         loom_error *err)
{
    if (!aw || (!update && len)) {
        return LOOM_EINVAL;
    }
    aw_in *ins = NULL;
    size_t n = 0;
    int rc = decode_update(aw, update, len, &ins, &n, err);
    if (rc) {
        return rc;
    }
    aw_event *evs = NULL;
    if (n) {
        evs = loom__malloc(aw->a, n * sizeof(*evs));
        rc = evs ? LOOM_OK : LOOM_ENOMEM;
    }
    /* records (unknown until accepted) and exact-size state blocks first,
     * so that applying cannot fail half way */
    for (size_t i = 0; i < n && !rc; i++) {
        /* an unknown client at clock 0 is never accepted (0 is not newer
         * than "none"): no record for it, so such entries cannot grow the
         * awareness */
        if (ins[i].clock == 0 && !loom__u64map_get(&aw->idx, ins[i].client)) {
            continue;
        }
        rc = entry_for(aw, ins[i].client, &ins[i].e);
        if (!rc && ins[i].json.cap != ins[i].json.len + 1) {
            char *t = loom__realloc(aw->a, ins[i].json.data, ins[i].json.cap,
                                    ins[i].json.len + 1);
            if (t) {
                ins[i].json.data = (uint8_t *)t;
                ins[i].json.cap = ins[i].json.len + 1;
            } else {
                rc = LOOM_ENOMEM;
            }
        }
    }
    if (rc) {
        loom__error_set(err, rc, 0, 0, NULL);
        loom__free(aw->a, evs, n * sizeof(*evs));
        free_ins(aw->a, ins, n);
        return rc;
    }
    size_t n_ev = 0;
    for (size_t i = 0; i < n; i++) {
        if (apply_one(aw, &ins[i], now_ms, &evs[n_ev])) {
            n_ev++;
        }
    }
    free_ins(aw->a, ins, n);
    for (size_t i = 0; fn && i < n_ev; i++) {
        fn(ud, evs[i].client, evs[i].what);
    }
    loom__free(aw->a, evs, n * sizeof(*evs));
    return LOOM_OK;
}

static int write_entry(loom_buf *out, const aw_entry *e)
{
    int rc = loom__write_varuint(out, e->client);
    if (!rc) {
        rc = loom__write_varuint(out, e->clock);
    }
    if (!rc) {
        rc = e->state ? loom__write_varstring(out, e->state, e->state_len)
                      : loom__write_varstring(out, "null", 4);
    }
    return rc;
}

int loom_awareness_encode(const loom_awareness *aw,
                          const uint64_t *clients,
                          size_t n,
                          loom_buf *out)
{
    if (!aw || !out || (!clients && n)) {
        return LOOM_EINVAL;
    }
    size_t old = out->len, count = 0;
    for (size_t i = 0; i < n; i++) {
        const aw_entry *e = loom__u64map_get(&aw->idx, clients[i]);
        count += e && e->known;
    }
    int rc = loom__write_varuint(out, count);
    for (size_t i = 0; i < n && !rc; i++) {
        const aw_entry *e = loom__u64map_get(&aw->idx, clients[i]);
        if (e && e->known) {
            rc = write_entry(out, e);
        }
    }
    if (rc) {
        out->len = old;
    }
    return rc;
}

int loom_awareness_encode_all(const loom_awareness *aw, loom_buf *out)
{
    if (!aw || !out) {
        return LOOM_EINVAL;
    }
    if (aw->count == 0) {
        return LOOM_ENOTFOUND;
    }
    size_t old = out->len;
    int rc = loom__write_varuint(out, aw->count);
    /* in the order the states were set (a JS Map's insertion order):
     * repeatedly pick the smallest sequence number above the last one.
     * Awareness sets are small (one entry per open tab). */
    uint64_t last = 0;
    for (size_t k = 0; k < aw->count && !rc; k++) {
        const aw_entry *best = NULL;
        for (size_t i = 0; i < aw->n; i++) {
            const aw_entry *e = aw->v[i];
            if (e->state && e->seq > last && (!best || e->seq < best->seq)) {
                best = e;
            }
        }
        if (!best) {
            break;
        }
        last = best->seq;
        rc = write_entry(out, best);
    }
    if (rc) {
        out->len = old;
    }
    return rc;
}

int loom_awareness_remove(loom_awareness *aw,
                          const uint64_t *clients,
                          size_t n,
                          uint64_t now_ms,
                          loom_awareness_fn fn,
                          void *ud)
{
    if (!aw || (!clients && n)) {
        return LOOM_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        aw_entry *e = loom__u64map_get(&aw->idx, clients[i]);
        if (!e || !e->state) {
            continue;
        }
        set_state(aw, e, NULL, 0);
        if (e->client == aw->self) {
            e->clock++;
            e->last_ms = now_ms;
        }
        if (fn) {
            fn(ud, e->client, LOOM_AWARENESS_REMOVED);
        }
    }
    return LOOM_OK;
}

int loom_awareness_expire(loom_awareness *aw,
                          uint64_t now_ms,
                          uint64_t timeout_ms,
                          loom_awareness_fn fn,
                          void *ud)
{
    if (!aw) {
        return LOOM_EINVAL;
    }
    for (size_t i = 0; i < aw->n; i++) {
        aw_entry *e = aw->v[i];
        if (e->client != aw->self && e->state && now_ms >= e->last_ms &&
            now_ms - e->last_ms >= timeout_ms) {
            set_state(aw, e, NULL, 0);
            if (fn) {
                fn(ud, e->client, LOOM_AWARENESS_REMOVED);
            }
        }
    }
    return LOOM_OK;
}

size_t loom_awareness_count(const loom_awareness *aw)
{
    return aw ? aw->count : 0;
}

int loom_awareness_get(const loom_awareness *aw,
                       uint64_t client,
                       const char **json,
                       size_t *len,
                       uint64_t *clock)
{
    if (!aw) {
        return LOOM_EINVAL;
    }
    const aw_entry *e = loom__u64map_get(&aw->idx, client);
    if (!e || !e->state) {
        return LOOM_ENOTFOUND;
    }
    if (json) {
        *json = e->state;
    }
    if (len) {
        *len = e->state_len;
    }
    if (clock) {
        *clock = e->clock;
    }
    return LOOM_OK;
}
