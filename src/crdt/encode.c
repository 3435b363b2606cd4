/*
 * encode.c: writing a document out: its state vector, the delete set that
 * the struct store implies, and encodeStateAsUpdate (structs past a target
 * state vector, the whole delete set, and pending data merged in as Yjs
 * does).
 */
#include <stdlib.h>
#include <string.h>

#include "crdt/crdt.h"

int loom__doc_sv(const loom_doc *d, loom__sv *out)
{
    for (size_t i = 0; i < d->nclients; i++) {
        const loom__client *c = d->clist[i];
        if (!c->n)
            continue;
        int rc = loom__sv_set(out, c->client, loom__state(d, c->client));
        if (rc)
            return rc;
    }
    return LOOM_OK;
}

int loom__store_ds(const loom_doc *d, loom__ds *out)
{
    for (size_t ci = 0; ci < d->nclients; ci++) {
        const loom__client *c = d->clist[ci];
        for (size_t i = 0; i < c->n; i++) {
            const loom__item *s = loom__cs(c, i);
            if (!loom__item_deleted(s))
                continue;
            uint64_t clock = s->id.clock, len = s->len;
            while (i + 1 < c->n && loom__item_deleted(loom__cs(c, i + 1)))
                len += loom__cs(c, ++i)->len;
            int rc = loom__ds_add(out, c->client, clock, len);
            if (rc)
                return rc;
        }
    }
    return LOOM_OK;
}

static int cmp_sv_desc(const void *a, const void *b)
{
    uint64_t x = ((const loom__sv_entry *)a)->client,
             y = ((const loom__sv_entry *)b)->client;
    return x > y ? -1 : x < y;
}

int loom__write_structs_from(const loom_doc *d,
                             const loom__sv *from,
                             loom_buf *out)
{
    loom__sv_entry *e =
        loom__malloc(d->a, (from->n ? from->n : 1) * sizeof(*e));
    if (!e)
        return LOOM_ENOMEM;
    if (from->n)
        memcpy(e, from->e, from->n * sizeof(*e));
    int rc = loom__write_structs(d, e, from->n, out);
    loom__free(d->a, e, (from->n ? from->n : 1) * sizeof(*e));
    return rc;
}

int loom__write_structs(const loom_doc *d,
                        loom__sv_entry *e,
                        size_t n,
                        loom_buf *out)
{
    /* Inside a transaction Yjs has not merged typed items yet: neither may
     * what we write. */
    if (d->txn && loom__txn_joined(d->txn)) {
        int urc = loom__txn_unjoin(d->txn);
        if (urc)
            return urc;
    }
    if (n == 2 && e[0].client < e[1].client) {
        loom__sv_entry x = e[0];
        e[0] = e[1];
        e[1] = x;
    } else if (n > 2) {
        qsort(e, n, sizeof(*e), cmp_sv_desc);
    }
    int rc = loom__write_varuint(out, n);
    for (size_t k = 0; k < n && !rc; k++) {
        const loom__client *c = loom__client_get(d, e[k].client);
        uint64_t clock = e[k].clock;
        if (clock < loom__cs(c, 0)->id.clock)
            clock = loom__cs(c, 0)->id.clock;
        size_t idx = loom__find_index(c, clock);
        if ((rc = loom__write_varuint(out, c->n - idx)) ||
            (rc = loom__write_varuint(out, c->client)) ||
            (rc = loom__write_varuint(out, clock)))
            break;
        const loom__item *first = loom__cs(c, idx);
        rc = loom__item_write(out, first, clock - first->id.clock);
        for (size_t i = idx + 1; i < c->n && !rc; i++)
            rc = loom__item_write(out, loom__cs(c, i), 0);
    }
    return rc;
}

int loom__encode_state(const loom_doc *d, const loom__sv *target, loom_buf *out)
{
    loom__sv sm;
    loom__sv_init(&sm, d->a);
    int rc = LOOM_OK;
    for (size_t i = 0; i < d->nclients && !rc; i++) {
        const loom__client *c = d->clist[i];
        if (!c->n)
            continue;
        uint64_t state = loom__state(d, c->client);
        bool has = false;
        uint64_t tclock = 0;
        for (size_t k = 0; k < target->n; k++) {
            if (target->e[k].client == c->client) {
                has = true;
                tclock = target->e[k].clock;
            }
        }
        if (!has)
            rc = loom__sv_set(&sm, c->client, 0);
        else if (state > tclock)
            rc = loom__sv_set(&sm, c->client, tclock);
    }
    if (!rc)
        rc = loom__write_structs_from(d, &sm, out);
    loom__sv_free(&sm);
    if (rc)
        return rc;
    loom__ds ds;
    loom__ds_init(&ds, d->a);
    rc = loom__store_ds(d, &ds);
    if (!rc)
        rc = loom__ds_write(out, &ds);
    loom__ds_free(&ds);
    return rc;
}

int loom_doc_encode_state_vector(const loom_doc *d, loom_buf *out)
{
    if (!d || !out)
        return LOOM_EINVAL;
    loom__sv sv;
    loom__sv_init(&sv, d->a);
    loom_buf b = {0};
    loom__buf_init(&b, d->a);
    int rc = loom__doc_sv(d, &sv);
    if (!rc)
        rc = loom__sv_write(&b, &sv);
    loom__sv_free(&sv);
    if (rc) {
        loom_buf_free(&b);
        return rc;
    }
    *out = b;
    return LOOM_OK;
}

/*
 * Room for a whole-document update up front: growing from 64 bytes by
 * doubling took a score of reallocations for a large document, each
 * touching fresh pages. A struct takes a few bytes of header plus its
 * content; ENC_GUESS bytes each is a guess that growth corrects either way.
 * Only for the whole document (an empty target state vector): a diff may
 * be a small part of it. The bytes written do not depend on this.
 */
#define ENC_GUESS 32

static void reserve_estimate(const loom_doc *d, loom_buf *b)
{
    size_t n = 0;
    for (size_t i = 0; i < d->nclients; i++)
        n += d->clist[i]->n;
    /* on failure the encoders grow the buffer as before (and fail there
     * if memory is really short) */
    if (n >= 1024 && n <= SIZE_MAX / ENC_GUESS)
        (void)loom__buf_reserve(b, n * ENC_GUESS);
}

int loom_doc_encode_state_as_update(const loom_doc *d,
                                    const uint8_t *sv,
                                    size_t sv_len,
                                    loom_buf *out,
                                    loom_error *err)
{
    if (!d || !out || (!sv && sv_len))
        return LOOM_EINVAL;
    static const uint8_t empty_sv[1] = {0};
    if (!sv) {
        sv = empty_sv;
        sv_len = 1;
    }
    loom__sv target;
    loom__sv_init(&target, d->a);
    loom__reader r;
    loom__reader_init(&r, sv, sv_len);
    int rc = loom__sv_read(&r, &target);
    if (!rc && loom__reader_left(&r))
        rc = loom__reader_fail(&r, LOOM_EMALFORMED, r.pos,
                               "trailing bytes after the state vector");
    if (rc) {
        loom__reader_error(&r, err, 0);
        loom__sv_free(&target);
        return rc;
    }
    loom_buf b = {0};
    loom__buf_init(&b, d->a);
    if (target.n == 0)
        reserve_estimate(d, &b);
    rc = loom__encode_state(d, &target, &b);
    bool pds = !loom__ds_empty(&d->pending_ds);
    if (!rc && (pds || d->pending.len)) {
        /* mergeUpdates([state, pendingDs, diffUpdate(pending, sv)]) */
        loom_buf pd = {0}, diff = {0};
        loom__buf_init(&pd, d->a);
        loom__buf_init(&diff, d->a);
        loom__rupdate ups[3];
        const loom__rupdate *pu[3];
        size_t n = 0;
        rc = loom__update_parse(d->a, b.data, b.len, 0, &ups[n], NULL);
        if (!rc)
            pu[n] = &ups[n], n++;
        if (!rc && pds) {
            if (!(rc = loom__write_varuint(&pd, 0)) &&
                !(rc = loom__ds_write(&pd, &d->pending_ds)))
                rc =
                    loom__update_parse(d->a, pd.data, pd.len, 1, &ups[n], NULL);
            if (!rc)
                pu[n] = &ups[n], n++;
        }
        if (!rc && d->pending.len) {
            loom__rupdate pend;
            rc = loom__update_parse(d->a, d->pending.data, d->pending.len, 2,
                                    &pend, NULL);
            if (!rc) {
                rc = loom__diff_parsed(&pend, &target, &diff);
                loom__rupdate_free(&pend);
            }
            if (!rc)
                rc = loom__update_parse(d->a, diff.data, diff.len, 2, &ups[n],
                                        NULL);
            if (!rc)
                pu[n] = &ups[n], n++;
        }
        loom_buf merged = {0};
        loom__buf_init(&merged, d->a);
        if (!rc)
            rc = loom__merge_parsed(pu, n, &merged);
        for (size_t i = 0; i < n; i++)
            loom__rupdate_free(&ups[i]);
        loom_buf_free(&pd);
        loom_buf_free(&diff);
        loom_buf_free(&b);
        b = merged;
    }
    loom__sv_free(&target);
    if (rc) {
        loom_buf_free(&b);
        return rc;
    }
    if (b.cap > 65536 && b.cap / 2 > b.len) {
        /* the guess was far too large: give the rest back (a shrinking
         * realloc moves nothing; on failure the buffer stays as it is) */
        uint8_t *p = loom__realloc(b.alloc, b.data, b.cap, b.len);
        if (p) {
            b.data = p;
            b.cap = b.len;
        }
    }
    *out = b;
    return LOOM_OK;
}
