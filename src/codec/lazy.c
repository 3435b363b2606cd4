/*
 * lazy.c: the two helpers yjs's doc-free update functions are built on,
 * LazyStructReader (a cursor over the structs of an update, in input order,
 * optionally without Skips) and LazyStructWriter (which writes structs
 * client block by client block without knowing the counts in advance).
 *
 * The writer starts a new block whenever the client changes, and only then:
 * two runs of one client that are not contiguous in clock still end up in
 * one block when nothing of another client comes between them. yjs does the
 * same, so it is kept.
 */
#include "codec/codec_int.h"

void loom__cursor_init(loom__cursor *c,
                       const loom__rupdate *u,
                       bool filter_skips)
{
    c->u = u;
    c->bi = 0;
    c->si = 0;
    c->filter_skips = filter_skips;
    c->has = false;
    loom__cursor_next(c);
}

void loom__cursor_next(loom__cursor *c)
{
    for (;;) {
        while (c->bi < c->u->nblocks && c->si >= c->u->blocks[c->bi].n) {
            c->bi++;
            c->si = 0;
        }
        if (c->bi >= c->u->nblocks) {
            c->has = false;
            return;
        }
        const loom__rblock *b = &c->u->blocks[c->bi];
        size_t k = c->si++;
        uint8_t ref = loom__rs_ref(b, k);
        uint8_t kind = ref == LOOM__REF_GC     ? LOOM__KIND_GC
                       : ref == LOOM__REF_SKIP ? LOOM__KIND_SKIP
                                               : LOOM__KIND_ITEM;
        if (kind == LOOM__KIND_SKIP && c->filter_skips) {
            continue;
        }
        c->curr.kind = kind;
        c->curr.client = b->client;
        c->curr.clock = loom__rs_clock(b, k);
        c->curr.len = loom__rs_length(b, k);
        c->curr.u = c->u;
        c->curr.src = b;
        c->curr.si = k;
        c->curr.off = 0;
        c->has = true;
        return;
    }
}

void loom__lazy_init(loom__lazy_writer *w, const loom_allocator *a)
{
    loom__buf_init(&w->body, a);
    w->blocks = NULL;
    w->nblocks = 0;
    w->cap = 0;
    w->client = 0;
    w->written = 0;
    w->start = 0;
    w->a = a;
}

void loom__lazy_free(loom__lazy_writer *w)
{
    loom_buf_free(&w->body);
    loom__free(w->a, w->blocks, w->cap * sizeof(*w->blocks));
    w->blocks = NULL;
    w->nblocks = 0;
    w->cap = 0;
}

static int flush(loom__lazy_writer *w)
{
    if (w->written == 0) {
        return LOOM_OK;
    }
    int rc = loom__vec_reserve(w->a, (void **)&w->blocks, &w->cap,
                               w->nblocks + 1, sizeof(*w->blocks));
    if (rc) {
        return rc;
    }
    w->blocks[w->nblocks].start = w->start;
    w->blocks[w->nblocks].end = w->body.len;
    w->blocks[w->nblocks].n = w->written;
    w->nblocks++;
    w->written = 0;
    return LOOM_OK;
}

int loom__lazy_write(loom__lazy_writer *w, const loom__view *v, uint64_t offset)
{
    int rc;
    if (w->written > 0 && w->client != v->client) {
        rc = flush(w);
        if (rc) {
            return rc;
        }
    }
    if (w->written == 0) {
        w->client = v->client;
        w->start = w->body.len;
        rc = loom__write_varuint(&w->body, v->client);
        if (!rc) {
            rc = loom__write_varuint(&w->body, v->clock + offset);
        }
        if (rc) {
            return rc;
        }
    }
    if (v->kind == LOOM__KIND_ITEM) {
        loom__rstruct s;
        loom__rstruct_get(v->u, v->src, v->si, &s);
        rc = loom__rstruct_write(&w->body, &s, v->off + offset);
    } else {
        rc = loom__write_u8(
            &w->body, v->kind == LOOM__KIND_GC ? LOOM__REF_GC : LOOM__REF_SKIP);
        if (!rc) {
            rc = loom__write_varuint(&w->body, v->len - offset);
        }
    }
    if (rc) {
        return rc;
    }
    w->written++;
    return LOOM_OK;
}

int loom__lazy_finish(loom__lazy_writer *w, const loom__ds *ds, loom_buf *out)
{
    int rc = flush(w);
    if (!rc) {
        rc = loom__buf_reserve(out, w->body.len + 10 * (w->nblocks + 1));
    }
    if (!rc) {
        rc = loom__write_varuint(out, w->nblocks);
    }
    for (size_t i = 0; i < w->nblocks && !rc; i++) {
        const loom__lazy_block *b = &w->blocks[i];
        rc = loom__write_varuint(out, b->n);
        if (!rc) {
            rc = loom__buf_append(out, w->body.data + b->start,
                                  b->end - b->start);
        }
    }
    return rc ? rc : loom__ds_write(out, ds);
}
