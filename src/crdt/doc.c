/*
 * doc.c: the document object: creation and destruction, client id and
 * options, root types by name, explicit transactions, subscriptions, and the
 * public entry points for applying updates.
 */
#include <string.h>

#include "crdt/crdt.h"

void loom_doc_options_init(loom_doc_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->client_id = LOOM_CLIENT_ID_RANDOM;
    o->gc = 1;
}

static int make_guid(loom_doc *d, const char *guid)
{
    char tmp[37];
    if (!guid) {
        /* a random UUID v4, as Yjs's uuidv4() */
        static const char hex[] = "0123456789abcdef";
        uint32_t r = 0;
        for (int i = 0, k = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                tmp[i] = '-';
                continue;
            }
            if (k % 8 == 0)
                r = loom__random_u32();
            unsigned v = r & 15;
            r >>= 4;
            k++;
            if (i == 14)
                v = 4;
            if (i == 19)
                v = (v & 3) | 8;
            tmp[i] = hex[v];
        }
        tmp[36] = 0;
        guid = tmp;
    }
    size_t n = strlen(guid);
    d->guid = loom__strndup(d->a, guid, n);
    if (!d->guid)
        return LOOM_ENOMEM;
    d->guid_len = n;
    return LOOM_OK;
}

int loom_doc_new(const loom_doc_options *opts, loom_doc **out)
{
    loom_doc_options def;
    if (!out)
        return LOOM_EINVAL;
    if (!opts) {
        loom_doc_options_init(&def);
        opts = &def;
    }
    if (opts->client_id > LOOM__MAX_SAFE_INT &&
        opts->client_id != LOOM_CLIENT_ID_RANDOM)
        return LOOM_EINVAL;
    const loom_allocator *a = opts->alloc;
    loom_doc *d = loom__calloc(a, sizeof(*d));
    if (!d)
        return LOOM_ENOMEM;
    d->a = a;
    loom__pool_init(&d->pool, a);
    d->client_id = opts->client_id == LOOM_CLIENT_ID_RANDOM ? loom__random_u32()
                                                            : opts->client_id;
    d->gc = opts->gc != 0;
    loom__u64map_init(&d->clients, a);
    loom__u64map_init(&d->any_hints, a);
    loom__strmap_init(&d->roots, a);
    loom__buf_init(&d->pending, a);
    loom__sv_init(&d->pending_missing, a);
    loom__ds_init(&d->pending_ds, a);
    d->next_sub = 1;
    if (make_guid(d, opts->guid)) {
        loom_doc_free(d);
        return LOOM_ENOMEM;
    }
    *out = d;
    return LOOM_OK;
}

static void type_free(loom_doc *d, loom_type *t)
{
    loom__strmap_free(&t->map);
    if (t->root_name)
        loom__free(d->a, t->root_name, t->root_name_len + 1);
    if (t->name)
        loom__free(d->a, t->name, t->name_len + 1);
    loom__free(d->a, t, sizeof(*t));
}

void loom_doc_free(loom_doc *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nclients; i++) {
        loom__client *c = d->clist[i];
        for (size_t k = 0; k < c->n; k++) {
            loom__item *it = loom__cs(c, k);
            it->parent = NULL;
            loom__item_free(d, it);
        }
        loom__free(d->a, c->v, c->cap * sizeof(*c->v));
        loom__free(d->a, c, sizeof(*c));
    }
    loom__free(d->a, d->clist, d->ccap * sizeof(*d->clist));
    loom__pool_destroy(&d->pool); /* every item and Any content at once */
    loom__u64map_free(&d->clients);
    loom__u64map_free(&d->any_hints);
    loom_type *t = d->types_all;
    while (t) {
        loom_type *next = t->next_all;
        type_free(d, t);
        t = next;
    }
    loom__strmap_free(&d->roots);
    loom_buf_free(&d->pending);
    loom__sv_free(&d->pending_missing);
    loom__ds_free(&d->pending_ds);
    loom__free(d->a, d->subs, d->scap * sizeof(*d->subs));
    loom__free(d->a, d->queue.v, d->queue.cap * sizeof(*d->queue.v));
    loom__txn_spare_free(d);
    loom_buf_free(&d->upd);
    loom_buf_free(&d->scratch);
    if (d->guid)
        loom__free(d->a, d->guid, d->guid_len + 1);
    loom__free(d->a, d, sizeof(*d));
}

uint64_t loom_doc_client_id(const loom_doc *d)
{
    return d ? d->client_id : 0;
}

int loom_doc_set_client_id(loom_doc *d, uint64_t client_id)
{
    if (!d || client_id > LOOM__MAX_SAFE_INT)
        return LOOM_EINVAL;
    if (d->txn)
        return LOOM_ESTATE;
    d->client_id = client_id;
    return LOOM_OK;
}

int loom_doc_gc_enabled(const loom_doc *d)
{
    return d && d->gc;
}
const char *loom_doc_guid(const loom_doc *d)
{
    return d ? d->guid : NULL;
}

int loom_doc_get(loom_doc *d,
                 const char *name,
                 size_t len,
                 loom_type_kind kind,
                 loom_type **out)
{
    if (!d || (!name && len) || !out)
        return LOOM_EINVAL;
    if (kind < LOOM_TYPE_UNDEFINED || kind > LOOM_TYPE_XML_TEXT)
        return LOOM_EINVAL;
    if (!loom__utf8_valid(name, len))
        return LOOM_EINVAL;
    loom_type *t;
    int rc = loom__type_root_get_or_add(d, name ? name : "", len, &t);
    if (rc)
        return rc;
    if (kind != LOOM_TYPE_UNDEFINED && t->kind != kind) {
        if (t->kind != LOOM_TYPE_UNDEFINED)
            return LOOM_ETYPE;
        t->kind = kind;
    }
    *out = t;
    return LOOM_OK;
}

size_t loom_doc_root_count(const loom_doc *d)
{
    return d ? d->roots.n : 0;
}

loom_type *
loom_doc_root_at(const loom_doc *d, size_t i, const char **name, size_t *len)
{
    if (!d || i >= d->roots.n)
        return NULL;
    if (name)
        *name = d->roots.e[i].key;
    if (len)
        *len = d->roots.e[i].klen;
    return d->roots.e[i].val;
}

int loom_doc_transact_begin(loom_doc *d, void *origin)
{
    if (!d)
        return LOOM_EINVAL;
    loom_txn *t;
    int rc = loom__txn_begin(d, origin, true, &t);
    if (!rc)
        t->unobserved = false; /* observers may subscribe before its end */
    return rc;
}

int loom_doc_transact_end(loom_doc *d)
{
    if (!d)
        return LOOM_EINVAL;
    return loom__txn_end(d);
}

void *loom_txn_origin(const loom_txn *t)
{
    return t ? t->origin : NULL;
}
int loom_txn_local(const loom_txn *t)
{
    return t && t->local;
}

int loom_doc_apply_update(loom_doc *d,
                          const uint8_t *update,
                          size_t len,
                          void *origin,
                          loom_error *err)
{
    if (!d || (!update && len))
        return LOOM_EINVAL;
    /* loom__apply_update parses and validates the whole update before it
     * changes anything, so a bad update leaves an empty transaction. */
    loom_txn *t;
    int rc = loom__txn_begin(d, origin, false, &t);
    if (rc)
        return rc;
    bool nested = d->txn_depth > 1;
    bool was_local = t->local;
    if (!nested)
        t->local = false;
    rc = loom__apply_update(t, update, len, err);
    if (nested)
        t->local = was_local;
    int rc2 = loom__txn_end(d);
    return rc ? rc : rc2;
}

int loom_doc_pending(const loom_doc *d)
{
    if (!d)
        return 0;
    return (d->pending.len ? 1 : 0) | (!loom__ds_empty(&d->pending_ds) ? 2 : 0);
}

static int add_sub(
    loom_doc *d, int kind, loom_type *type, void *fn, void *ud, uint32_t *id)
{
    if (!d || !fn)
        return LOOM_EINVAL;
    if (loom__vec_reserve(d->a, (void **)&d->subs, &d->scap, d->nsubs + 1,
                          sizeof(*d->subs)))
        return LOOM_ENOMEM;
    if (kind != LOOM__SUB_UPDATE)
        d->nobserving++;
    loom__sub *s = &d->subs[d->nsubs++];
    s->id = d->next_sub++;
    s->kind = kind;
    s->type = type;
    s->fn = fn;
    s->ud = ud;
    if (id)
        *id = s->id;
    return LOOM_OK;
}

int loom_doc_on_update(loom_doc *d, loom_update_fn fn, void *ud, uint32_t *id)
{
    return add_sub(d, LOOM__SUB_UPDATE, NULL, (void *)fn, ud, id);
}

int loom_doc_on_after_transaction(loom_doc *d,
                                  loom_txn_fn fn,
                                  void *ud,
                                  uint32_t *id)
{
    return add_sub(d, LOOM__SUB_AFTER_TXN, NULL, (void *)fn, ud, id);
}

int loom_type_observe(loom_type *t, loom_observe_fn fn, void *ud, uint32_t *id)
{
    if (!t)
        return LOOM_EINVAL;
    return add_sub(t->doc, LOOM__SUB_OBSERVE, t, (void *)fn, ud, id);
}

int loom_type_observe_deep(loom_type *t,
                           loom_observe_deep_fn fn,
                           void *ud,
                           uint32_t *id)
{
    if (!t)
        return LOOM_EINVAL;
    return add_sub(t->doc, LOOM__SUB_OBSERVE_DEEP, t, (void *)fn, ud, id);
}

int loom_doc_unsubscribe(loom_doc *d, uint32_t id)
{
    if (!d)
        return LOOM_EINVAL;
    for (size_t i = 0; i < d->nsubs; i++) {
        if (d->subs[i].id == id) {
            if (d->subs[i].kind != LOOM__SUB_UPDATE)
                d->nobserving--;
            memmove(d->subs + i, d->subs + i + 1,
                    (d->nsubs - i - 1) * sizeof(*d->subs));
            d->nsubs--;
            return LOOM_OK;
        }
    }
    return LOOM_ENOTFOUND;
}
