/*
 * snapshot.c: snapshots of a document (Yjs utils/Snapshot.js, spec §9).
 *
 * A snapshot is a delete set plus a state vector: "every struct below these
 * clocks, minus these deleted ranges". It is taken from a document
 * (loom_doc_snapshot), encoded as v1 bytes (delete set first, then the state
 * vector), decoded from untrusted bytes, compared, tested against an update,
 * and used to rebuild the document as it was (loom_doc_from_snapshot, Yjs
 * createDocFromSnapshot).
 *
 * A decoded snapshot keeps what was on the wire the way yjs's Maps do: delete
 * set ranges in wire order (not sorted or merged; duplicate clients joined)
 * and state vector entries with clock 0. Encoding writes them back as yjs
 * does, so decode + encode of yjs output is the identity, and equality and
 * containment give yjs's answers even for unnormalised input.
 */
#include <string.h>

#include "crdt/crdt.h"

struct loom_snapshot {
    const loom_allocator *a; /* every allocation of the snapshot */
    loom__ds ds;             /* deleted ranges, clients descending */
    loom__sv sv;             /* client -> clock, clients descending, 0 kept */
};

static int snapshot_new(const loom_allocator *a, loom_snapshot **out)
{
    loom_snapshot *s = loom__calloc(a, sizeof(*s));
    if (!s) {
        return LOOM_ENOMEM;
    }
    s->a = a;
    loom__ds_init(&s->ds, a);
    loom__sv_init(&s->sv, a);
    *out = s;
    return LOOM_OK;
}

void loom_snapshot_free(loom_snapshot *s)
{
    if (!s) {
        return;
    }
    loom__ds_free(&s->ds);
    loom__sv_free(&s->sv);
    loom__free(s->a, s, sizeof(*s));
}

int loom_doc_snapshot(const loom_doc *doc, loom_snapshot **out)
{
    if (!doc || !out) {
        return LOOM_EINVAL;
    }
    loom_snapshot *s;
    int rc = snapshot_new(doc->a, &s);
    if (rc) {
        return rc;
    }
    /* Yjs: createDeleteSetFromStructStore + getStateVector. Pending structs
     * and the pending delete set are not part of a snapshot. */
    rc = loom__store_ds(doc, &s->ds);
    if (!rc) {
        rc = loom__doc_sv(doc, &s->sv);
    }
    if (rc) {
        loom_snapshot_free(s);
        return rc;
    }
    *out = s;
    return LOOM_OK;
}

/*
 * Writes a state vector with every entry, clock 0 included. yjs's
 * writeStateVector writes `sv.size` entries; only a decoded snapshot can hold
 * a 0 clock (a document's state vector never does), and writing it back keeps
 * decode + encode the identity. loom__sv_write drops such entries, as the
 * encodeStateVector of a document needs.
 */
static int sv_write_all(loom_buf *b, const loom__sv *sv)
{
    int rc = loom__write_varuint(b, sv->n);
    for (size_t i = 0; i < sv->n && !rc; i++) {
        rc = loom__write_varuint(b, sv->e[i].client);
        if (!rc) {
            rc = loom__write_varuint(b, sv->e[i].clock);
        }
    }
    return rc;
}

int loom_snapshot_encode(const loom_snapshot *s, loom_buf *out)
{
    if (!s || !out) {
        return LOOM_EINVAL;
    }
    loom_buf b = {0};
    loom__buf_init(&b, s->a);
    int rc = loom__ds_write(&b, &s->ds);
    if (!rc) {
        rc = sv_write_all(&b, &s->sv);
    }
    if (rc) {
        loom_buf_free(&b);
        return rc;
    }
    *out = b;
    return LOOM_OK;
}

int loom_snapshot_decode(const loom_allocator *a,
                         const uint8_t *p,
                         size_t len,
                         loom_snapshot **out,
                         loom_error *err)
{
    if ((!p && len) || !out) {
        return LOOM_EINVAL;
    }
    loom_snapshot *s;
    int rc = snapshot_new(a, &s);
    if (rc) {
        loom__error_set(err, rc, 0, 0, NULL);
        return rc;
    }
    loom__reader r;
    loom__reader_init(&r, p, len);
    rc = loom__ds_read(&r, &s->ds);
    if (!rc) {
        rc = loom__sv_read(&r, &s->sv);
    }
    /* yjs ignores bytes after the state vector; a snapshot is always stored
     * on its own, so extra bytes mean the input is not what it claims. */
    if (!rc && loom__reader_left(&r)) {
        rc = loom__reader_fail(&r, LOOM_EMALFORMED, r.pos,
                               "trailing bytes after the snapshot");
    }
    if (rc) {
        if (r.err) {
            loom__reader_error(&r, err, 0);
        } else {
            loom__error_set(err, rc, r.pos, 0, NULL); /* out of memory */
        }
        loom_snapshot_free(s);
        return rc;
    }
    *out = s;
    return LOOM_OK;
}

int loom_snapshot_equal(const loom_snapshot *a, const loom_snapshot *b)
{
    if (!a || !b) {
        return a == b;
    }
    if (a == b) {
        return 1;
    }
    /* equalSnapshots: the same state vector map (0 clocks count, as in
     * yjs's `sv.size`) and per client the same ranges in the same order. */
    if (a->sv.n != b->sv.n) {
        return 0;
    }
    for (size_t i = 0; i < a->sv.n; i++) {
        if (a->sv.e[i].client != b->sv.e[i].client ||
            a->sv.e[i].clock != b->sv.e[i].clock) {
            return 0;
        }
    }
    return loom__ds_equal(&a->ds, &b->ds) ? 1 : 0;
}

int loom_snapshot_contains_update(const loom_snapshot *s,
                                  const uint8_t *update,
                                  size_t len,
                                  loom_error *err)
{
    if (!s || (!update && len)) {
        return LOOM_EINVAL;
    }
    /* The whole update is validated first (yjs reads lazily and may answer
     * "false" before it reaches a malformed tail; we report the error). */
    loom__rupdate u;
    int rc = loom__update_parse(s->a, update, len, 0, &u, err);
    if (rc) {
        return rc;
    }
    /* Every struct, Skip structs included (yjs's LazyStructReader runs with
     * filterSkips = false), must end within the state vector. */
    int result = 1;
    for (size_t i = 0; i < u.nblocks && result; i++) {
        const loom__rblock *blk = &u.blocks[i];
        for (size_t k = 0; k < blk->n; k++) {
            if (loom__sv_get(&s->sv, blk->client) <
                loom__rs_clock(blk, k) + loom__rs_length(blk, k)) {
                result = 0;
                break;
            }
        }
    }
    if (result) {
        /* equalDeleteSets(ds, mergeDeleteSets([ds, update.ds])): the merge is
         * sorted and merged, `ds` is compared as stored. */
        loom__ds merged;
        loom__ds_init(&merged, s->a);
        rc = loom__ds_merge_into(&merged, &s->ds);
        if (!rc) {
            rc = loom__ds_merge_into(&merged, &u.ds);
        }
        if (!rc) {
            loom__ds_normalize(&merged);
            result = loom__ds_equal(&s->ds, &merged) ? 1 : 0;
        }
        loom__ds_free(&merged);
    }
    loom__rupdate_free(&u);
    if (rc) {
        loom__error_set(err, rc, 0, 0, NULL);
        return rc;
    }
    return result;
}

/*
 * Writes the first `n` clock units of item `it` (0 < n < it->len) as yjs
 * writes the left half after splitItem(it, n): the same header (origins,
 * parent, parentSub are those of `it`) and the content cut at n. yjs gets
 * there by splitting the item in the origin document inside a transaction
 * and merging it back at cleanup; writing the cut from a shallow copy leaves
 * the origin untouched. loom__item_write only reads the fields adjusted here.
 *
 * A string cut inside a surrogate pair ends with U+FFFD, as the left half of
 * a split does (spec §3.7). (yjs also rewrites the origin's pair as
 * U+FFFD U+FFFD for good; we do not reproduce that damage.)
 */
static int write_item_prefix(loom_buf *b,
                             const loom__item *it,
                             uint64_t n,
                             const loom_allocator *a)
{
    loom__item tmp;
    memcpy(&tmp, it, loom__item_size(it)); /* it may not have all of it */
    char *str = NULL;
    size_t str_size = 0;
    tmp.len = n;
    switch (it->ref) {
    case LOOM__REF_STRING: {
        bool mid;
        size_t off =
            loom__utf8_offset16(it->c.str.p, it->c.str.bytes, (size_t)n, &mid);
        if (mid) {
            str_size = off + 4;
            str = loom__malloc(a, str_size);
            if (!str) {
                return LOOM_ENOMEM;
            }
            memcpy(str, it->c.str.p, off);
            memcpy(str + off, "\xef\xbf\xbd", 4); /* U+FFFD and the NUL */
            tmp.c.str.p = str;
            tmp.c.str.bytes = off + 3;
        } else {
            tmp.c.str.bytes = off;
        }
        break;
    }
    case LOOM__REF_ANY: {
        /* Any values are stored back to back; keep the bytes of the first n. */
        loom__reader r;
        loom__reader_init(&r, it->c.any.p, it->c.any.bytes);
        for (uint64_t i = 0; i < n; i++) {
            if (loom__any_skip(&r, 0)) {
                return r.err; /* stored content was validated: cannot happen */
            }
        }
        tmp.c.any.bytes = (uint32_t)r.pos; /* at most it->c.any.bytes */
        break;
    }
    case LOOM__REF_JSON:    /* the writer loops over the first `len` values */
    case LOOM__REF_DELETED: /* only a length */
        break;
    default:
        /* Binary, Embed, Format, Type and Doc have length 1 and are never
         * cut; GC structs are not split by getItemCleanStart. */
        return LOOM_EINVAL;
    }
    int rc = loom__item_write(b, &tmp, 0);
    if (str) {
        loom__free(a, str, str_size);
    }
    return rc;
}

/*
 * Builds the v1 update createDocFromSnapshot builds: for every client with a
 * snapshot clock > 0 (descending ids; yjs uses the Map's order, which only
 * changes the block order, not the resulting document), the structs from
 * clock 0 through the one containing clock-1, the last one cut at the
 * snapshot clock; then the snapshot's delete set as stored.
 */
static int build_restore_update(const loom_doc *origin,
                                const loom_snapshot *s,
                                loom_buf *b)
{
    size_t count = 0;
    for (size_t i = 0; i < s->sv.n; i++) {
        count += s->sv.e[i].clock > 0;
    }
    int rc = loom__write_varuint(b, count);
    for (size_t i = 0; i < s->sv.n && !rc; i++) {
        uint64_t client = s->sv.e[i].client, clock = s->sv.e[i].clock;
        if (clock == 0) {
            continue;
        }
        const loom__client *c = loom__client_get(origin, client);
        /* yjs throws (findIndexSS) when the snapshot reaches past what the
         * origin holds: the snapshot is not of this document. */
        if (!c || c->n == 0 || loom__state(origin, client) < clock ||
            loom__cs(c, 0)->id.clock != 0) {
            return LOOM_EINVAL;
        }
        size_t last = loom__find_index(c, clock - 1);
        if ((rc = loom__write_varuint(b, (uint64_t)last + 1)) ||
            (rc = loom__write_varuint(b, client)) ||
            (rc = loom__write_varuint(b, 0))) {
            break;
        }
        for (size_t k = 0; k < last && !rc; k++) {
            rc = loom__item_write(b, loom__cs(c, k), 0);
        }
        if (rc) {
            break;
        }
        const loom__item *it = loom__cs(c, last);
        uint64_t keep = clock - it->id.clock;
        if (keep < it->len && !loom__item_is_gc(it)) {
            rc = write_item_prefix(b, it, keep, origin->a);
        } else {
            rc = loom__item_write(b, it,
                                  0); /* whole (a GC struct is never cut) */
        }
    }
    if (!rc) {
        rc = loom__ds_write(b, &s->ds);
    }
    return rc;
}

int loom_doc_from_snapshot(const loom_doc *origin,
                           const loom_snapshot *s,
                           const loom_doc_options *opts,
                           loom_doc **out)
{
    if (!origin || !s || !out) {
        return LOOM_EINVAL;
    }
    /* With gc on, deleted content is gone and cannot be restored. */
    if (origin->gc) {
        return LOOM_ESTATE;
    }
    if (origin->txn && loom__txn_joined(origin->txn)) {
        int urc = loom__txn_unjoin(origin->txn); /* see write_structs_from */
        if (urc)
            return urc;
    }
    loom_buf b = {0};
    loom__buf_init(&b, origin->a);
    int rc = build_restore_update(origin, s, &b);
    loom_doc *nd = NULL;
    if (!rc) {
        rc = loom_doc_new(opts, &nd);
    }
    if (!rc) {
        rc = loom_doc_apply_update(nd, b.data, b.len, NULL, NULL);
    }
    loom_buf_free(&b);
    if (rc) {
        loom_doc_free(nd);
        return rc;
    }
    *out = nd;
    return LOOM_OK;
}
