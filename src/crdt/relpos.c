/*
 * relpos.c: relative positions (Yjs utils/RelativePosition.js, spec §10).
 *
 * A relative position names a place in a sequence type by the item unit
 * next to it instead of by an index, so it stays put while others edit. It
 * is made from (type, index, assoc), encoded and decoded (v1:
 * tag 0 + item ID | tag 1 + root name | tag 2 + type item ID, then a varInt
 * assoc), shown as yjs's JSON form, and resolved back to (type, index) in a
 * document.
 *
 * assoc is kept as lib0 reads it (sign and magnitude), so that -0 from the
 * wire is written back as -0 (0x40); JS compares -0 >= 0 as true, and so
 * does is_left() below.
 */
#include <string.h>

#include "crdt/crdt.h"

struct loom_relpos {
    const loom_allocator *a;
    bool has_type; /* the ID of the item holding a nested type */
    loom__id type;
    char *tname; /* a root type's name (NUL-terminated copy) or NULL */
    size_t tname_len;
    bool has_item; /* the item unit the position sticks to */
    loom__id item;
    bool assoc_neg; /* assoc = (neg ? -1 : 1) * assoc_mag */
    uint64_t assoc_mag;
};

/* assoc < 0: the position sticks to the unit on its left. */
static bool is_left(const loom_relpos *rp)
{
    return rp->assoc_neg && rp->assoc_mag > 0;
}

void loom_relpos_free(loom_relpos *rp)
{
    if (!rp) {
        return;
    }
    if (rp->tname) {
        loom__free(rp->a, rp->tname, rp->tname_len + 1);
    }
    loom__free(rp->a, rp, sizeof(*rp));
}

/*
 * createRelativePosition(type, item, assoc): a root type is named by its key
 * in the document, a nested one by the ID of the item holding it. `item` may
 * be NULL (the start or the end of the type).
 */
static int relpos_new(const loom_type *t,
                      const loom__id *item,
                      int assoc,
                      loom_relpos **out)
{
    const loom_allocator *a = t->doc->a;
    loom_relpos *rp = loom__calloc(a, sizeof(*rp));
    if (!rp) {
        return LOOM_ENOMEM;
    }
    rp->a = a;
    if (!t->item) {
        rp->tname = loom__strndup(a, t->root_name ? t->root_name : "",
                                  t->root_name_len);
        if (!rp->tname) {
            loom__free(a, rp, sizeof(*rp));
            return LOOM_ENOMEM;
        }
        rp->tname_len = t->root_name_len;
    } else {
        rp->has_type = true;
        rp->type = t->item->id;
    }
    if (item) {
        rp->has_item = true;
        rp->item = *item;
    }
    rp->assoc_neg = assoc < 0;
    rp->assoc_mag = assoc < 0 ? (uint64_t)(-(int64_t)assoc) : (uint64_t)assoc;
    *out = rp;
    return LOOM_OK;
}

int loom_relpos_from_index(const loom_type *t,
                           size_t index,
                           int assoc,
                           loom_relpos **out)
{
    if (!t || !out) {
        return LOOM_EINVAL;
    }
    /* createRelativePositionFromTypeIndex. Like yjs, an index past the end is
     * not an error: it gives the end of the type. */
    uint64_t idx = index;
    if (assoc < 0) {
        /* Stick to the unit before the index; at 0 there is none, and the
         * position is the start of the type. */
        if (idx == 0) {
            return relpos_new(t, NULL, assoc, out);
        }
        idx--;
    }
    for (const loom__item *it = t->start; it; it = it->right) {
        if (!loom__item_deleted(it) && loom__item_countable(it)) {
            if (it->len > idx) {
                loom__id id = {it->id.client, it->id.clock + idx};
                return relpos_new(t, &id, assoc, out);
            }
            idx -= it->len;
        }
        if (!it->right && assoc < 0) {
            /* Left-associated past the end: the last unit of the list,
             * deleted or not. */
            loom__id id = loom__item_last_id(it);
            return relpos_new(t, &id, assoc, out);
        }
    }
    return relpos_new(t, NULL, assoc, out);
}

int loom_relpos_encode(const loom_relpos *rp, loom_buf *out)
{
    if (!rp || !out) {
        return LOOM_EINVAL;
    }
    loom_buf b = {0};
    loom__buf_init(&b, rp->a);
    int rc;
    /* writeRelativePosition: the item wins over the type; a root name wins
     * over a type ID. */
    if (rp->has_item) {
        if (!(rc = loom__write_varuint(&b, 0)) &&
            !(rc = loom__write_varuint(&b, rp->item.client))) {
            rc = loom__write_varuint(&b, rp->item.clock);
        }
    } else if (rp->tname) {
        if (!(rc = loom__write_u8(&b, 1))) {
            rc = loom__write_varstring(&b, rp->tname, rp->tname_len);
        }
    } else if (rp->has_type) {
        if (!(rc = loom__write_u8(&b, 2)) &&
            !(rc = loom__write_varuint(&b, rp->type.client))) {
            rc = loom__write_varuint(&b, rp->type.clock);
        }
    } else {
        rc =
            LOOM_EINVAL; /* unreachable: decode and from_index always set one */
    }
    if (!rc) {
        rc = loom__write_varint(&b, rp->assoc_neg, rp->assoc_mag);
    }
    if (rc) {
        loom_buf_free(&b);
        return rc;
    }
    *out = b;
    return LOOM_OK;
}

static int read_id(loom__reader *r, loom__id *id)
{
    int rc = loom__read_varuint(r, &id->client);
    return rc ? rc : loom__read_varuint(r, &id->clock);
}

/*
 * readRelativePosition over untrusted bytes, with two deliberate
 * differences: yjs accepts an unknown tag (giving a position with neither
 * item nor type, which it can neither encode nor resolve) and ignores bytes
 * after assoc; both are errors here. A missing assoc means 0, as in yjs.
 */
int loom_relpos_decode(const loom_allocator *a,
                       const uint8_t *p,
                       size_t len,
                       loom_relpos **out,
                       loom_error *err)
{
    if ((!p && len) || !out) {
        return LOOM_EINVAL;
    }
    loom_relpos *rp = loom__calloc(a, sizeof(*rp));
    if (!rp) {
        loom__error_set(err, LOOM_ENOMEM, 0, 0, NULL);
        return LOOM_ENOMEM;
    }
    rp->a = a;
    loom__reader r;
    loom__reader_init(&r, p, len);
    uint64_t tag;
    int rc = loom__read_varuint(&r, &tag);
    if (!rc) {
        if (tag == 0) {
            rc = read_id(&r, &rp->item);
            rp->has_item = true;
        } else if (tag == 1) {
            const char *s;
            size_t n;
            rc = loom__read_varstring(&r, &s, &n);
            if (!rc) {
                rp->tname = loom__strndup(a, s, n);
                if (!rp->tname) {
                    rc = LOOM_ENOMEM;
                } else {
                    rp->tname_len = n;
                }
            }
        } else if (tag == 2) {
            rc = read_id(&r, &rp->type);
            rp->has_type = true;
        } else {
            rc = loom__reader_fail(&r, LOOM_EMALFORMED, 0,
                                   "unknown relative position kind");
        }
    }
    if (!rc && loom__reader_left(&r)) {
        rc = loom__read_varint(&r, &rp->assoc_neg, &rp->assoc_mag);
    }
    if (!rc && loom__reader_left(&r)) {
        rc = loom__reader_fail(&r, LOOM_EMALFORMED, r.pos,
                               "trailing bytes after the relative position");
    }
    if (rc) {
        if (r.err) {
            loom__reader_error(&r, err, 0);
        } else {
            loom__error_set(err, rc, r.pos, 0, NULL); /* out of memory */
        }
        loom_relpos_free(rp);
        return rc;
    }
    *out = rp;
    return LOOM_OK;
}

/* {client, clock} as JSON numbers (clocks and ids are at most 2^53). */
static int id_any(const loom_allocator *a, loom__id id, loom_any **out)
{
    loom_any *o = NULL, *c = NULL, *k = NULL;
    int rc = loom_any_new_object(a, &o);
    if (!rc) {
        rc = loom_any_new_number(a, (double)id.client, &c);
    }
    if (!rc && !(rc = loom_any_object_set(o, "client", 6, c))) {
        c = NULL;
    }
    if (!rc) {
        rc = loom_any_new_number(a, (double)id.clock, &k);
    }
    if (!rc && !(rc = loom_any_object_set(o, "clock", 5, k))) {
        k = NULL;
    }
    loom_any_free(c);
    loom_any_free(k);
    if (rc) {
        loom_any_free(o);
        return rc;
    }
    *out = o;
    return LOOM_OK;
}

/* Moves `v` into `o` under key; frees `v` on failure. */
static int set_take(loom_any *o, const char *key, size_t klen, loom_any *v)
{
    int rc = loom_any_object_set(o, key, klen, v);
    if (rc) {
        loom_any_free(v);
    }
    return rc;
}

int loom_relpos_to_any(const loom_relpos *rp, loom_any **out)
{
    if (!rp || !out) {
        return LOOM_EINVAL;
    }
    /* relativePositionToJSON: members in the order type, tname, item, assoc;
     * tname only when truthy (an empty root name is left out, as in JS). */
    loom_any *o, *v;
    int rc = loom_any_new_object(rp->a, &o);
    if (rc) {
        return rc;
    }
    if (rp->has_type && !(rc = id_any(rp->a, rp->type, &v))) {
        rc = set_take(o, "type", 4, v);
    }
    if (!rc && rp->tname && rp->tname_len &&
        !(rc = loom_any_new_string(rp->a, rp->tname, rp->tname_len, &v))) {
        rc = set_take(o, "tname", 5, v);
    }
    if (!rc && rp->has_item && !(rc = id_any(rp->a, rp->item, &v))) {
        rc = set_take(o, "item", 4, v);
    }
    if (!rc) {
        double mag = (double)rp->assoc_mag;
        if (!(rc =
                  loom_any_new_number(rp->a, rp->assoc_neg ? -mag : mag, &v))) {
            rc = set_take(o, "assoc", 5, v);
        }
    }
    if (rc) {
        loom_any_free(o);
        return rc;
    }
    *out = o;
    return LOOM_OK;
}

/*
 * createAbsolutePositionFromRelativePosition(rpos, doc, false).
 *
 * yjs follows `redone` links by default (followUndoneDeletions = true) so
 * that the user who undid a deletion gets the recreated content. loom has no
 * undo manager yet, so no item has a redone link and the two modes agree;
 * when undo lands, follow item->redone here (for the item and for the type
 * ID) as yjs's followRedone does.
 */
int loom_relpos_resolve(const loom_relpos *rp,
                        loom_doc *doc,
                        loom_type **type,
                        size_t *index)
{
    if (!rp || !doc || !type || !index) {
        return LOOM_EINVAL;
    }
    loom_type *t;
    uint64_t idx = 0;
    if (rp->has_item) {
        if (loom__state(doc, rp->item.client) <= rp->item.clock) {
            return LOOM_ENOTFOUND; /* the anchor has not arrived yet */
        }
        const loom__item *right = loom__find(doc, rp->item);
        if (!right || loom__item_is_gc(right) || !right->parent) {
            return LOOM_ENOTFOUND; /* garbage collected */
        }
        t = right->parent;
        /* Inside a deleted type everything is at 0. */
        if (!t->item || !loom__item_deleted(t->item)) {
            if (!loom__item_deleted(right) && loom__item_countable(right)) {
                idx = rp->item.clock - right->id.clock + (is_left(rp) ? 1 : 0);
            }
            for (const loom__item *n = right->left; n; n = n->left) {
                if (!loom__item_deleted(n) && loom__item_countable(n)) {
                    idx += n->len;
                }
            }
        }
    } else {
        if (rp->tname) {
            /* doc.get(tname): an unknown root is created, as in yjs. */
            int rc =
                loom__type_root_get_or_add(doc, rp->tname, rp->tname_len, &t);
            if (rc) {
                return rc;
            }
        } else if (rp->has_type) {
            if (loom__state(doc, rp->type.client) <= rp->type.clock) {
                return LOOM_ENOTFOUND; /* the type does not exist yet */
            }
            const loom__item *it = loom__find(doc, rp->type);
            if (!it || it->ref != LOOM__REF_TYPE) {
                return LOOM_ENOTFOUND; /* garbage collected (or not a type) */
            }
            t = it->c.type;
        } else {
            return LOOM_EINVAL;
        }
        idx = is_left(rp) ? 0 : t->length;
    }
    if (idx > SIZE_MAX) {
        return LOOM_ERANGE;
    }
    *type = t;
    *index = (size_t)idx;
    return LOOM_OK;
}
