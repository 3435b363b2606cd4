/*
 * text.c: Y.Text and Y.XmlText. Rich text is one sequence of String, Embed,
 * Type and Format items; a Format item (key, value) starts or ends a run of
 * formatting at its place in the sequence. This file holds the local edits
 * (insert, insertEmbed, format, delete, applyDelta) with the exact choice and
 * order of Format items Yjs makes, because update bytes depend on it; the
 * readers (toString, toDelta, XmlText.toString); the YTextEvent delta; and
 * the formatting cleanup Yjs runs after remote transactions (spec 6.3,
 * 7.4, 8).
 *
 * Attribute identity. Yjs compares attribute values with `===` and with the
 * shallow equalAttrs, so for object values it matters which values are the
 * same JS object. Attribute maps therefore remember, for each value, the
 * Format item it is the value of (inherited and current attributes are those
 * very objects in JS), or that it is a caller's value. A Format item made
 * from a caller's value stores a clone and the working map then refers to
 * the item, since in JS the item stores the caller's object itself. A
 * negating Format item stores the object of the item it negates; it gets a
 * clone too, and fmt_share_identity() is where the two are to be recorded as
 * one object (not yet possible: see there). Until then object-valued
 * attributes can differ from Yjs after a negation; primitive values cannot.
 */
#include <stdlib.h>
#include <string.h>

#include "crdt/crdt.h"

/* JS null, for "absent or null" lookups (`map.get(key) ?? null`). */
static const loom_any js_null = {.kind = LOOM_ANY_NULL};

/* V8's maximum string length: formatting past the end creates a string of
 * newlines, and JS throws a RangeError beyond this. */
#define MAX_NEWLINES 536870888u

/* Nesting limit for XmlText strings that contain XML types. */
#define MAX_XML_DEPTH 512

static bool is_null(const loom_any *v)
{
    return v->kind == LOOM_ANY_NULL;
}

static bool deleted(const loom__item *it)
{
    return loom__item_deleted(it);
}

static bool is_format(const loom__item *it)
{
    return it->ref == LOOM__REF_FORMAT;
}

/* ---- attribute values and identity ------------------------------------- */

/*
 * An attribute value as JS sees it: the value, and the Format item whose
 * value it is (NULL for a caller's value and for null), which carries its
 * JS object identity.
 */
typedef struct attr {
    const char *key;
    size_t klen;
    const loom_any *val; /* never NULL; JS null is &js_null */
    loom__item *src;     /* the Format item holding val, or NULL */
} attr;

static attr item_attr(loom__item *f)
{
    attr e = {f->c.fmt.key, loom__fmt_klen(f), f->c.fmt.val, f};
    return e;
}

/*
 * The JS object identity of a Format item's value beyond the item itself: 0
 * means the value is a distinct object. The item struct has no field for it
 * yet, so only values that are the same item compare as one object; see
 * fmt_share_identity().
 */
static uint64_t fmt_identity(const loom__item *f)
{
    return loom__keystr_tag(f->c.fmt.key);
}

/* Records that new Format item `nf` stores the same JS object as `src` (a
 * negation restores the very object it negates). */
static void fmt_share_identity(loom_doc *d, loom__item *nf, loom__item *src)
{
    if (!loom__keystr_tag(src->c.fmt.key))
        loom__keystr_set_tag(src->c.fmt.key, ++d->fmt_ident_seq);
    loom__keystr_set_tag(nf->c.fmt.key, loom__keystr_tag(src->c.fmt.key));
}

static bool object_like(const loom_any *v)
{
    return v->kind == LOOM_ANY_OBJECT || v->kind == LOOM_ANY_ARRAY ||
           v->kind == LOOM_ANY_BINARY;
}

/* JS `a === b`. */
static bool same_value(const attr *a, const attr *b)
{
    if (!object_like(a->val) || !object_like(b->val))
        return loom__any_strict_eq(a->val, b->val);
    if (a->val == b->val)
        return true;
    uint64_t ia = a->src ? fmt_identity(a->src) : 0,
             ib = b->src ? fmt_identity(b->src) : 0;
    return ia && ia == ib;
}

/* equalAttrs: ===, or shallow equality of two objects / arrays. */
static bool equal_attrs(const attr *a, const attr *b)
{
    return same_value(a, b) || loom__any_equal_attrs(a->val, b->val);
}

/* A keystroke is mostly one ASCII byte: these answer it without a call. */
static inline bool utf8_valid(const char *s, size_t len)
{
    if (len == 1 && (unsigned char)s[0] < 0x80)
        return true;
    return loom__utf8_valid(s, len);
}
static inline size_t utf16_len(const char *s, size_t len)
{
    if (len == 1 && (unsigned char)s[0] < 0x80)
        return 1;
    return loom__utf16_len(s, len);
}

/* ---- attribute maps ------------------------------------------------------ */

/*
 * An ordered string -> attr map with JS Map semantics: setting an existing
 * key keeps its place, deleting removes it. Keys and values are borrowed
 * (Format items, the caller's objects). Attribute sets are small, so lookups
 * are linear.
 */
typedef struct attr_map {
    attr *v;
    size_t n, cap;
    const loom_allocator *a;
} attr_map;

static void am_init(attr_map *m, const loom_allocator *a)
{
    memset(m, 0, sizeof(*m));
    m->a = a;
}

static void am_free(attr_map *m)
{
    if (m->v) /* most maps stay empty (plain text) */
        loom__free(m->a, m->v, m->cap * sizeof(*m->v));
    m->v = NULL;
    m->n = m->cap = 0;
}

/* The entry of key, or NULL (JS undefined) when absent. */
static attr *am_slot(const attr_map *m, const char *key, size_t klen)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->v[i].klen == klen && memcmp(m->v[i].key, key, klen) == 0)
            return &m->v[i];
    }
    return NULL;
}

static const attr *am_get(const attr_map *m, const char *key, size_t klen)
{
    return am_slot(m, key, klen);
}

static bool am_has(const attr_map *m, const char *key, size_t klen)
{
    return am_slot(m, key, klen) != NULL;
}

/* `m.get(key) ?? null` */
static attr am_get_or_null(const attr_map *m, const char *key, size_t klen)
{
    const attr *e = am_get(m, key, klen);
    if (e)
        return *e;
    attr n = {key, klen, &js_null, NULL};
    return n;
}

/* Sets e->key to e's value. */
static int am_set(attr_map *m, const attr *e)
{
    attr *slot = am_slot(m, e->key, e->klen);
    if (slot) {
        slot->val = e->val;
        slot->src = e->src;
        return LOOM_OK;
    }
    if (loom__vec_reserve(m->a, (void **)&m->v, &m->cap, m->n + 1,
                          sizeof(attr)))
        return LOOM_ENOMEM;
    m->v[m->n++] = *e;
    return LOOM_OK;
}

static void am_del(attr_map *m, const char *key, size_t klen)
{
    attr *slot = am_slot(m, key, klen);
    if (!slot)
        return;
    size_t i = (size_t)(slot - m->v);
    memmove(slot, slot + 1, (m->n - i - 1) * sizeof(attr));
    m->n--;
}

static int am_copy(attr_map *dst, const attr_map *src)
{
    am_init(dst, src->a);
    if (!src->n)
        return LOOM_OK;
    if (loom__vec_reserve(dst->a, (void **)&dst->v, &dst->cap, src->n,
                          sizeof(*dst->v)))
        return LOOM_ENOMEM;
    memcpy(dst->v, src->v, src->n * sizeof(*src->v));
    dst->n = src->n;
    return LOOM_OK;
}

/* updateCurrentAttributes: a null value removes the key. */
static int am_apply_format(attr_map *m, loom__item *f)
{
    if (is_null(f->c.fmt.val)) {
        am_del(m, f->c.fmt.key, loom__fmt_klen(f));
        return LOOM_OK;
    }
    attr e = item_attr(f);
    return am_set(m, &e);
}

typedef struct idx_attr {
    uint32_t idx;
    attr at;
} idx_attr;

static int cmp_idx_attr(const void *pa, const void *pb)
{
    const idx_attr *x = pa, *y = pb;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Reorders the map into JS object key order (integer-like keys ascending,
 * then the others in insertion order): the order in which `for (key in
 * attributes)` visits an object built from the map.
 */
static int am_js_order(attr_map *m)
{
    size_t nint = 0;
    for (size_t i = 0; i < m->n; i++)
        nint += loom__js_index_key(m->v[i].key, m->v[i].klen, NULL);
    if (!nint)
        return LOOM_OK;
    idx_attr *ix = loom__malloc(m->a, nint * sizeof(*ix));
    if (!ix)
        return LOOM_ENOMEM;
    size_t k = 0, w = 0;
    for (size_t i = 0; i < m->n; i++) {
        uint32_t v;
        if (loom__js_index_key(m->v[i].key, m->v[i].klen, &v)) {
            ix[k].idx = v;
            ix[k++].at = m->v[i];
        } else {
            m->v[w++] = m->v[i]; /* w <= i: compacts the other keys in order */
        }
    }
    qsort(ix, nint, sizeof(*ix), cmp_idx_attr);
    memmove(m->v + nint, m->v, w * sizeof(*m->v));
    for (size_t i = 0; i < nint; i++)
        m->v[i] = ix[i].at;
    loom__free(m->a, ix, nint * sizeof(*ix));
    return LOOM_OK;
}

/* The entries of a caller's attribute object, in JS key order. */
static int am_from_object(attr_map *m, const loom_any *obj)
{
    size_t *order = NULL;
    size_t n = obj->u.obj.n;
    int rc = loom__any_js_order(obj, &order);
    for (size_t k = 0; k < n && !rc; k++) {
        size_t i = order ? order[k] : k;
        attr e = {obj->u.obj.keys[i], obj->u.obj.klens[i], obj->u.obj.v[i],
                  NULL};
        rc = am_set(m, &e);
    }
    if (order)
        loom__free(obj->a, order, n * sizeof(*order));
    return rc;
}

/* A new object value from the map in JS key order (values cloned); null
 * values are left out when skip_null. */
static int am_to_object(const attr_map *m,
                        bool skip_null,
                        const loom_allocator *a,
                        loom_any **out)
{
    attr_map tmp;
    int rc = am_copy(&tmp, m);
    if (!rc)
        rc = am_js_order(&tmp);
    loom_any *obj = NULL;
    if (!rc)
        rc = loom_any_new_object(a, &obj);
    for (size_t i = 0; i < tmp.n && !rc; i++) {
        if (skip_null && is_null(tmp.v[i].val))
            continue;
        loom_any *v;
        if ((rc = loom_any_clone(tmp.v[i].val, a, &v)))
            break;
        if ((rc = loom__any_object_append(obj, tmp.v[i].key, tmp.v[i].klen, v)))
            loom_any_free(v);
    }
    am_free(&tmp);
    if (rc) {
        loom_any_free(obj);
        return rc;
    }
    *out = obj;
    return LOOM_OK;
}

/* ---- argument checks ----------------------------------------------------- */

/* Can the value be written as JSON (Format values and embeds are JSON in
 * v1)? BigInt makes JSON.stringify throw; subdocs and types are not data. */
// NOLINTNEXTLINE(misc-no-recursion): as deep as the value, capped
static int json_ok(const loom_any *v, int depth)
{
    if (depth > LOOM__MAX_DEPTH)
        return LOOM_ELIMIT;
    int rc = LOOM_OK;
    switch (v->kind) {
    case LOOM_ANY_BIGINT:
    case LOOM_ANY_SUBDOC:
    case LOOM_ANY_TYPE:
        return LOOM_EINVAL;
    case LOOM_ANY_ARRAY:
        for (size_t i = 0; i < v->u.arr.n && !rc; i++)
            rc = json_ok(v->u.arr.v[i], depth + 1);
        return rc;
    case LOOM_ANY_OBJECT:
        for (size_t i = 0; i < v->u.obj.n && !rc; i++)
            rc = json_ok(v->u.obj.v[i], depth + 1);
        return rc;
    default:
        return LOOM_OK;
    }
}

/* An attribute object: NULL or an object whose values are JSON data (an
 * undefined value would make Yjs write a Format item it cannot encode). */
static int check_attrs(const loom_any *attrs)
{
    if (!attrs)
        return LOOM_OK;
    if (attrs->kind != LOOM_ANY_OBJECT)
        return LOOM_EINVAL;
    for (size_t i = 0; i < attrs->u.obj.n; i++) {
        const loom_any *v = attrs->u.obj.v[i];
        if (v->kind == LOOM_ANY_UNDEFINED)
            return LOOM_EINVAL;
        int rc = json_ok(v, 0);
        if (rc)
            return rc;
    }
    return LOOM_OK;
}

/* An embed: JS throws on null and undefined (`embed.constructor`). */
static int check_embed(const loom_any *e)
{
    if (!e || e->kind == LOOM_ANY_NULL || e->kind == LOOM_ANY_UNDEFINED)
        return LOOM_EINVAL;
    return json_ok(e, 0);
}

static LOOM__INLINE int check_text(const loom_type *t)
{
    if (!t)
        return LOOM_EINVAL;
    if (t->kind != LOOM_TYPE_TEXT && t->kind != LOOM_TYPE_XML_TEXT &&
        t->kind != LOOM_TYPE_UNDEFINED)
        return LOOM_ETYPE;
    return LOOM_OK;
}

static LOOM__INLINE int check_writable(const loom_type *t)
{
    int rc = check_text(t);
    if (rc)
        return rc;
    if (t->item && (loom__item_deleted(t->item) || !t->item->parent))
        return LOOM_ESTATE;
    return LOOM_OK;
}

/* ---- new items ----------------------------------------------------------- */

static int
new_string(loom_doc *d, const char *s, size_t bytes, loom__item **out)
{
    if (!loom__bytes_fit(bytes))
        return LOOM_ELIMIT;
    loom__item *it = loom__item_alloc(d);
    if (!it)
        return LOOM_ENOMEM;
    it->ref = LOOM__REF_STRING;
    it->c.str.p = loom__str_bytes_alloc(d, bytes + 1);
    if (!it->c.str.p) {
        loom__item_free(d, it);
        return LOOM_ENOMEM;
    }
    memcpy(it->c.str.p, s, bytes);
    it->c.str.p[bytes] = 0;
    it->c.str.bytes = (uint32_t)bytes;
    it->c.str.cap = (uint32_t)bytes + 1;
    it->len = utf16_len(s, bytes);
    *out = it;
    return LOOM_OK;
}

static int new_newlines(loom_doc *d, uint64_t n, loom__item **out)
{
    if (!loom__bytes_fit(n))
        return LOOM_ELIMIT;
    loom__item *it = loom__item_alloc(d);
    if (!it)
        return LOOM_ENOMEM;
    it->ref = LOOM__REF_STRING;
    it->c.str.p = loom__str_bytes_alloc(d, (size_t)n + 1);
    if (!it->c.str.p) {
        loom__item_free(d, it);
        return LOOM_ENOMEM;
    }
    memset(it->c.str.p, '\n', (size_t)n);
    it->c.str.p[n] = 0;
    it->c.str.bytes = (uint32_t)n;
    it->c.str.cap = (uint32_t)n + 1;
    it->len = n;
    *out = it;
    return LOOM_OK;
}

/* Content for insertText: a string becomes String content (also when it
 * comes in as an embed, as in JS), anything else an Embed. */
static int new_embed(loom_doc *d, const loom_any *e, loom__item **out)
{
    if (e->kind == LOOM_ANY_STRING)
        return new_string(d, e->u.str.p, e->u.str.len, out);
    loom__item *it = loom__item_alloc(d);
    if (!it)
        return LOOM_ENOMEM;
    it->ref = LOOM__REF_EMBED;
    it->len = 1;
    int rc = loom_any_clone(e, d->a, &it->c.embed);
    if (rc) {
        loom__item_release(d, it);
        return rc;
    }
    *out = it;
    return LOOM_OK;
}

static int new_format(loom_doc *d,
                      const char *key,
                      size_t klen,
                      const loom_any *val,
                      loom__item **out)
{
    loom__item *it = loom__item_alloc(d);
    if (!it)
        return LOOM_ENOMEM;
    it->ref = LOOM__REF_FORMAT;
    it->len = 1;
    it->c.fmt.key = loom__keystr_new(d->a, key, klen);
    int rc =
        it->c.fmt.key ? loom_any_clone(val, d->a, &it->c.fmt.val) : LOOM_ENOMEM;
    if (rc) {
        loom__item_free(d, it);
        return rc;
    }
    *out = it;
    return LOOM_OK;
}

/* ---- positions ----------------------------------------------------------- */

/* ItemTextListPosition: between left and right, at visible index, with the
 * formatting in effect there. */
typedef struct tpos {
    loom__item *left, *right;
    uint64_t index;
    attr_map cur;
} tpos;

static void pos_init(tpos *p, loom_type *type)
{
    p->left = NULL;
    p->right = type->start;
    p->index = 0;
    am_init(&p->cur, type->doc->a);
}

/* Steps over p->right (which must exist). */
static int pos_forward(tpos *p)
{
    loom__item *r = p->right;
    int rc = LOOM_OK;
    if (is_format(r)) {
        if (!deleted(r))
            rc = am_apply_format(&p->cur, r);
    } else if (!deleted(r)) {
        p->index += r->len;
    }
    p->left = r;
    p->right = r->right;
    return rc;
}

/*
 * findNextPosition: moves `count` visible units right, splitting the item
 * the target falls into. It stops as soon as count reaches 0, so Format
 * items just after the target are not applied yet.
 */
static int pos_advance(loom_txn *t, tpos *p, uint64_t count)
{
    int rc = LOOM_OK;
    while (p->right && count > 0 && !rc) {
        loom__item *r = p->right;
        if (is_format(r)) {
            if (!deleted(r))
                rc = am_apply_format(&p->cur, r);
        } else if (!deleted(r)) {
            if (count < r->len) {
                loom__item *tail;
                if ((rc = loom__item_split(t, r, count, &tail)))
                    break;
            }
            p->index += r->len;
            count -= r->len;
        }
        p->left = r;
        p->right = r->right;
    }
    return rc;
}

/*
 * findPosition: pos_init + pos_advance, starting from the type's cached
 * position when that gives the same answer. Yjs uses search markers only
 * while a text has never held a Format item (with formats, attributes must
 * be collected from the start), and so do we. Afterwards the cache holds the
 * visible item that ends at `index`, so the next keystroke starts there.
 */
static int pos_seek(loom_txn *t, loom_type *type, tpos *p, uint64_t index)
{
    pos_init(p, type);
    t->mk_type = type; /* this operation keeps type's markers current */
    loom__item *m;
    uint64_t start;
    if (!type->has_formatting && index &&
        (m = loom__markers_ending_at(type, index))) {
        /* typing on: right after the item the last operation noted (what
         * the walk below finds and notes again) */
        p->left = m;
        p->right = m->right;
        p->index = index;
        return LOOM_OK;
    }
    if (!type->has_formatting && loom__markers_find(type, index, &m, &start)) {
        p->left = m->left;
        p->right = m;
        p->index = start;
        index -= start;
    }
    int rc = pos_advance(t, p, index);
    if (!rc && !type->has_formatting && p->left && !deleted(p->left) &&
        loom__item_countable(p->left) && p->index >= p->left->len)
        loom__markers_note(type, p->left, p->index - p->left->len);
    return rc;
}

/* Links a new item at the position and steps over it. Takes `it`. */
static int pos_insert(loom_txn *t, loom_type *type, tpos *p, loom__item *it)
{
    int rc = loom__local_item(t, type, p->left, p->right, NULL, 0, it);
    if (rc)
        return rc;
    if (loom__item_countable(it) && !deleted(it))
        loom__markers_shift(type, p->index, (int64_t)it->len);
    p->right = it;
    return pos_forward(p);
}

/*
 * Typing: a String inserted right after the own client's last struct, a
 * String item with the same right origin, is what the transaction's
 * cleanup would merge into that item. Appending it there at once spares the
 * item, its integration and the merge. Until the cleanup Yjs has a separate
 * item there, which can be seen only by encoding inside the transaction and
 * by observers: the join is recorded, and loom__txn_unjoin splits it when
 * either happens (not done at all while someone observes). Sets *done when
 * appended.
 */
static int pos_append(loom_txn *t,
                      loom_type *type,
                      tpos *p,
                      const char *s,
                      size_t bytes,
                      bool *done)
{
    loom_doc *d = t->doc;
    loom__item *l = p->left, *r = p->right;
    *done = false;
    if (!l || l->ref != LOOM__REF_STRING || deleted(l) || l->parent != type ||
        l->parent_sub || l->id.client != d->client_id)
        return LOOM_OK;
    if (r ? !l->has_right_origin || !loom__id_eq(l->right_origin, r->id)
          : l->has_right_origin)
        return LOOM_OK;
    loom__client *own = loom__client_get(d, d->client_id);
    if (!own || !own->n || loom__cs_last(own) != l || loom__doc_observed(d) ||
        !loom__bytes_fit((uint64_t)l->c.str.bytes + bytes))
        return LOOM_OK;
    loom__id at = {l->id.client, l->id.clock + l->len};
    uint64_t units = utf16_len(s, bytes);
    int rc;
    if ((rc = loom__vec_reserve(d->a, (void **)&t->joins, &t->jcap,
                                t->njoins + 1, sizeof(*t->joins))) ||
        (rc = loom__txn_touch(t, own)) ||
        (rc = loom__str_append(d, l, s, bytes)))
        return rc;
    t->joins[t->njoins++] = at;
    t->join_client = at.client;
    t->join_units += units;
    l->len += units;
    type->length += units;
    loom__markers_shift(type, p->index, (int64_t)units);
    p->index += units;
    *done = true;
    return loom__txn_add_changed(t, type, NULL, 0);
}

/*
 * Inserts Format(e->key, e->val) at the position and steps over it. The new
 * item stores e's object: a clone of a caller's value, after which `e`
 * refers to the item as JS would, or the object of the item e comes from.
 */
static int insert_format(loom_txn *t, loom_type *type, tpos *p, attr *e)
{
    loom__item *it;
    int rc = new_format(t->doc, e->key, e->klen, e->val, &it);
    if (rc)
        return rc;
    if ((rc = pos_insert(t, type, p, it)))
        return rc;
    if (e->src) {
        fmt_share_identity(t->doc, it, e->src);
    } else if (!is_null(e->val)) {
        *e = item_attr(it);
    }
    return LOOM_OK;
}

/* ---- the Yjs text algorithms (spec 6.3) ---------------------------------- */

/* minimizeAttributeChanges: skip tombstones and Format items that already
 * say what `attrs` wants. */
static int minimize_changes(tpos *p, const attr_map *attrs)
{
    int rc = LOOM_OK;
    while (p->right && !rc) {
        loom__item *r = p->right;
        if (!deleted(r)) {
            if (!is_format(r))
                break;
            attr want = am_get_or_null(attrs, r->c.fmt.key, loom__fmt_klen(r));
            attr have = item_attr(r);
            if (!equal_attrs(&want, &have))
                break;
        }
        rc = pos_forward(p);
    }
    return rc;
}

/*
 * insertAttributes: a Format item for every attribute that differs from the
 * current formatting, in the map's order; `neg` receives what each changed
 * key was before (null when unset).
 */
static int insert_attributes(
    loom_txn *t, loom_type *type, tpos *p, attr_map *attrs, attr_map *neg)
{
    int rc = LOOM_OK;
    for (size_t i = 0; i < attrs->n && !rc; i++) {
        attr *e = &attrs->v[i];
        attr cur = am_get_or_null(&p->cur, e->key, e->klen);
        if (equal_attrs(&cur, e))
            continue;
        if (!(rc = am_set(neg, &cur)))
            rc = insert_format(t, type, p, e);
    }
    return rc;
}

/* insertNegatedAttributes: skip what already restores the formatting, then
 * close the remaining changed keys, in the order they were changed. */
static int insert_negated(loom_txn *t, loom_type *type, tpos *p, attr_map *neg)
{
    int rc = LOOM_OK;
    while (p->right && !rc) {
        loom__item *r = p->right;
        if (!deleted(r)) {
            if (!is_format(r))
                break;
            const attr *nv = am_get(neg, r->c.fmt.key, loom__fmt_klen(r));
            attr have = item_attr(r);
            if (!nv || !equal_attrs(nv, &have))
                break;
            am_del(neg, r->c.fmt.key, loom__fmt_klen(r));
        }
        rc = pos_forward(p);
    }
    for (attr *e = neg->v; e && e < neg->v + neg->n && !rc; e++)
        rc = insert_format(t, type, p, e);
    return rc;
}

/* A string at the position: appended to the item on the left when that is
 * what the cleanup would do (pos_append), else a new String item. */
static int pos_insert_string(
    loom_txn *t, loom_type *type, tpos *p, const char *s, size_t bytes)
{
    bool done;
    int rc = pos_append(t, type, p, s, bytes, &done);
    if (rc || done)
        return rc;
    loom__item *it;
    if ((rc = new_string(t->doc, s, bytes, &it)))
        return rc;
    return pos_insert(t, type, p, it);
}

/*
 * insertText: inserts `it` (String, Embed or Type content; taken), or when
 * `it` is NULL the string s, at the position with exactly the attributes
 * `attrs` (modified: keys active at the position but missing from attrs are
 * added as null, which is how `{}` clears formatting).
 */
static int insert_text(loom_txn *t,
                       loom_type *type,
                       tpos *p,
                       loom__item *it,
                       const char *s,
                       size_t bytes,
                       attr_map *attrs)
{
    attr_map neg;
    am_init(&neg, t->doc->a);
    int rc = LOOM_OK;
    for (size_t i = 0; i < p->cur.n && !rc; i++) {
        if (!am_has(attrs, p->cur.v[i].key, p->cur.v[i].klen)) {
            attr n = {p->cur.v[i].key, p->cur.v[i].klen, &js_null, NULL};
            rc = am_set(attrs, &n);
        }
    }
    if (!rc)
        rc = am_js_order(attrs);
    if (!rc)
        rc = minimize_changes(p, attrs);
    if (!rc)
        rc = insert_attributes(t, type, p, attrs, &neg);
    if (rc) {
        loom__item_free(t->doc, it);
    } else {
        rc = it ? pos_insert(t, type, p, it)
                : pos_insert_string(t, type, p, s, bytes);
        if (!rc)
            rc = insert_negated(t, type, p, &neg);
    }
    am_free(&neg);
    return rc;
}

/*
 * formatText: applies `attrs` to `length` visible units from the position.
 * Format items inside the range that set one of the keys are deleted (their
 * values become what has to be restored at the end). Past the end of the
 * text it appends newlines, as Yjs does for Quill.
 */
static int format_text(
    loom_txn *t, loom_type *type, tpos *p, uint64_t length, attr_map *attrs)
{
    attr_map neg;
    am_init(&neg, t->doc->a);
    int rc = minimize_changes(p, attrs);
    if (!rc)
        rc = insert_attributes(t, type, p, attrs, &neg);
    while (!rc && p->right &&
           (length > 0 ||
            (neg.n > 0 && (deleted(p->right) || is_format(p->right))))) {
        loom__item *r = p->right;
        if (!deleted(r)) {
            if (is_format(r)) {
                attr have = item_attr(r);
                const attr *want = am_get(attrs, have.key, have.klen);
                if (want) {
                    if (equal_attrs(want, &have)) {
                        am_del(&neg, have.key, have.klen);
                    } else {
                        if (length == 0)
                            break; /* no need to extend neg further */
                        if ((rc = am_set(&neg, &have)))
                            break;
                    }
                    if ((rc = loom__item_delete(t, r)))
                        break;
                } else if ((rc = am_set(&p->cur, &have))) {
                    break;
                }
            } else {
                if (length < r->len) {
                    loom__item *tail;
                    if ((rc = loom__item_split(t, r, length, &tail)))
                        break;
                }
                length -= r->len;
            }
        }
        rc = pos_forward(p);
    }
    if (!rc && length > 0) {
        loom__item *nl;
        if (!(rc = new_newlines(t->doc, length, &nl)))
            rc = pos_insert(t, type, p, nl);
    }
    if (!rc)
        rc = insert_negated(t, type, p, &neg);
    am_free(&neg);
    return rc;
}

/*
 * cleanupFormattingGap: after a deletion, removes Format items between
 * `start` and the next visible content that are overridden later in the gap
 * or repeat what was already in effect (`===`, not equalAttrs). Adjusts
 * currAttrs for the removed items before `curr`.
 */
static int cleanup_gap(loom_txn *t,
                       loom__item *start,
                       const loom__item *curr,
                       const attr_map *start_attrs,
                       attr_map *curr_attrs)
{
    attr_map end_formats; /* key -> the last live Format item of the gap */
    am_init(&end_formats, t->doc->a);
    int rc = LOOM_OK;
    loom__item *end = start;
    while (end && (!loom__item_countable(end) || deleted(end)) && !rc) {
        if (!deleted(end) && is_format(end)) {
            attr e = item_attr(end);
            rc = am_set(&end_formats, &e);
        }
        end = end->right;
    }
    bool reached_curr = false;
    for (loom__item *s = start; s != end && !rc; s = s->right) {
        if (s == curr)
            reached_curr = true;
        if (deleted(s) || !is_format(s))
            continue;
        attr v = item_attr(s);
        attr sv = am_get_or_null(start_attrs, v.key, v.klen);
        const attr *last = am_get(&end_formats, v.key, v.klen);
        if (!last || last->src != s || same_value(&sv, &v)) {
            if ((rc = loom__item_delete(t, s)))
                break;
            attr cv = am_get_or_null(curr_attrs, v.key, v.klen);
            if (!reached_curr && same_value(&cv, &v) && !same_value(&sv, &v)) {
                if (is_null(sv.val))
                    am_del(curr_attrs, v.key, v.klen);
                else
                    rc = am_set(curr_attrs, &sv);
            }
        }
        if (!rc && !reached_curr && !deleted(s))
            rc = am_apply_format(curr_attrs, s);
    }
    am_free(&end_formats);
    return rc;
}

/* deleteText: deletes `length` visible units of String, Embed and Type
 * content from the position, then cleans up the Format items around. */
static int delete_text(loom_txn *t, tpos *p, uint64_t length)
{
    attr_map start_attrs;
    int rc = am_copy(&start_attrs, &p->cur);
    if (rc)
        return rc;
    loom__item *start = p->right;
    while (length > 0 && p->right && !rc) {
        loom__item *r = p->right;
        if (!deleted(r) &&
            (r->ref == LOOM__REF_STRING || r->ref == LOOM__REF_EMBED ||
             r->ref == LOOM__REF_TYPE)) {
            if (length < r->len) {
                loom__item *tail;
                if ((rc = loom__item_split(t, r, length, &tail)))
                    break;
            }
            length -= r->len;
            if ((rc = loom__item_delete(t, r)))
                break;
            loom__markers_shift(r->parent, p->index + r->len, -(int64_t)r->len);
        }
        rc = pos_forward(p);
    }
    /* Only Format items are cleaned up: a document that never had one can
     * skip the walk over the tombstones after the deleted range. */
    if (!rc && start && t->doc->format_items)
        rc = cleanup_gap(t, start, p->right, &start_attrs, &p->cur);
    am_free(&start_attrs);
    return rc;
}

/* Room for recording one backspace or forward delete of len units: its
 * loom__back, its text in bbuf, and a merge entry (the fast paths reserve
 * everything before they change anything). */
static inline int reserve_back(loom_txn *t, uint64_t len)
{
    const loom_allocator *a = t->doc->a;
    int rc;
    if ((rc = loom__vec_reserve(a, (void **)&t->backs, &t->bkcap, t->nbacks + 1,
                                sizeof(*t->backs))) ||
        (rc = loom__vec_reserve(a, (void **)&t->bbuf, &t->bbcap,
                                t->bblen + (size_t)len, 1)))
        return rc;
    return loom__vec_reserve(a, (void **)&t->merge, &t->mcap, t->nmerge + 1,
                             sizeof(*t->merge));
}

/*
 * Backspace: deleting the last `len` units of the visible String item X
 * that ends at index + len, without walking or splitting. Yjs splits X, so
 * that a new item B holds those units, and deletes B; the cleanup turns B
 * into Deleted content and merges it into the item R after X when R is
 * Deleted content continuing X (same client, the next clock, origin X's
 * last unit, the same right origin): a run of backspaces leaves one Deleted
 * item. Here the boundary between X and R moves left at once, or without
 * such an R, B is linked with Deleted content at once (no copy of the
 * text). Either is the state after Yjs's cleanup, provided the cleanup
 * merges nothing else there: the item after R (or after X) must not be a
 * deleted continuation too, and X must be ASCII (B's text is kept by byte
 * count), not kept (a kept B would stay String), and gc on.
 * Until the cleanup Yjs has B as a deleted String item, which can be seen
 * by encoding inside the transaction and by observers: the backspace is
 * recorded with B's text, and loom__txn_unjoin restores B when either
 * happens (not done at all while someone observes). Sets *done when done.
 */
static int pos_backspace(
    loom_txn *t, loom_type *type, uint64_t index, uint64_t len, bool *done)
{
    loom_doc *d = t->doc;
    *done = false;
    if (!d->gc || d->format_items || type->has_formatting || t->njoins)
        return LOOM_OK;
    loom__item *x = loom__markers_ending_at(type, index + len);
    if (!x || x->ref != LOOM__REF_STRING || x->len <= len ||
        x->c.str.bytes != x->len || x->parent_sub || (x->flags & LOOM__F_KEEP))
        return LOOM_OK;
    uint64_t client = x->id.client, end = x->id.clock + x->len;
    loom__item *r = x->right;
    bool extend = false; /* into R; else a new item B */
    if (r && r->id.client == client && r->id.clock == end && deleted(r)) {
        const loom__item *n = r->right;
        if (r->ref != LOOM__REF_DELETED || !r->has_origin ||
            r->origin.client != client || r->origin.clock != end - 1 ||
            r->has_right_origin != x->has_right_origin ||
            (x->has_right_origin &&
             !loom__id_eq(r->right_origin, x->right_origin)) ||
            r->parent != type || r->parent_sub)
            return LOOM_OK;
        if (n && n->id.client == client &&
            n->id.clock == r->id.clock + r->len && deleted(n))
            return LOOM_OK;
        extend = true;
    }
    if (loom__doc_observed(d))
        return LOOM_OK;
    /* everything that can fail first */
    loom__client *c = loom__client_get(d, client);
    loom__item *b = NULL;
    int rc;
    if ((rc = reserve_back(t, len)))
        return rc;
    if (!extend) {
        if (!c || loom__cs_reserve(d->a, c) || !(b = loom__item_alloc(d)))
            return LOOM_ENOMEM;
    }
    uint64_t at = end - len;
    /* the delete set last: once the range is in, nothing else fails */
    if ((rc = loom__txn_add_changed(t, type, NULL, 0)) ||
        (rc = loom__txn_ds_add(t, client, at, len))) {
        if (b)
            loom__item_release(d, b);
        return rc;
    }
    loom__back *bk = &t->backs[t->nbacks++];
    bk->at.client = client;
    bk->at.clock = at;
    bk->n = len;
    bk->off = t->bblen;
    size_t keep = x->c.str.bytes - (size_t)len;
    memcpy(t->bbuf + t->bblen, x->c.str.p + keep, (size_t)len);
    t->bblen += (size_t)len;
    x->c.str.bytes = keep;
    x->c.str.p[keep] = 0;
    x->len -= len;
    if (extend) {
        r->id.clock = at;
        r->len += len;
        r->origin.clock = at - 1;
    } else {
        b->id.client = client;
        b->id.clock = at;
        b->len = len;
        b->has_origin = true;
        b->origin.client = client;
        b->origin.clock = at - 1;
        b->has_right_origin = x->has_right_origin;
        if (x->has_right_origin)
            b->right_origin = x->right_origin;
        b->parent = type;
        b->ref = LOOM__REF_DELETED;
        b->flags = LOOM__F_DELETED;
        b->left = x;
        b->right = r;
        x->right = b;
        if (r)
            r->left = b;
        loom__cs_insert(c, loom__find_index(c, x->id.clock) + 1, b);
    }
    t->merge[t->nmerge].client = client; /* Yjs queues B for merging */
    t->merge[t->nmerge++].clock = at;
    t->back_units += len;
    type->length -= len;
    loom__markers_shift(type, index + len, -(int64_t)len);
    *done = true;
    return LOOM_OK;
}

/*
 * Forward delete: deleting the first `len` units of the visible String item
 * X that starts at index, when the item L on its left is Deleted content
 * that X continues (same client, the next clock, X's origin L's last unit,
 * the same right origin). Yjs splits X, deletes its front part F and queues
 * the rest for merging; the cleanup turns F into Deleted content and merges
 * it into L. Here F's units move from X to L at once. As in pos_backspace,
 * that is the state after Yjs's cleanup only if it merges nothing else
 * there: the struct before L must not be a deleted continuation of L, nor
 * the one after X a visible continuation of X (a deleted one cannot merge
 * with X's visible rest); and F is recorded for
 * loom__txn_unjoin. X is the hot marker's item, noted by the forward delete
 * before, or the first visible item after the hot marker's item when that
 * ends at index (the cursor stays left of the deleted units).
 */
static int pos_delete_front(
    loom_txn *t, loom_type *type, uint64_t index, uint64_t len, bool *done)
{
    loom_doc *d = t->doc;
    *done = false;
    if (!index || !d->gc || d->format_items || type->has_formatting ||
        t->njoins)
        return LOOM_OK;
    loom__item *x = loom__markers_starting_at(type, index);
    bool hot = x != NULL;
    if (!x) {
        /* the first forward delete here: X is past the item ending at
         * index and the tombstones after it (delete_text would walk them
         * too; a long way is left to it) */
        loom__item *v = loom__markers_ending_at(type, index);
        if (!v)
            return LOOM_OK;
        x = v->right;
        for (int k = 0; x && deleted(x) && k < 1024; k++)
            x = x->right;
    }
    if (!x || deleted(x) || x->ref != LOOM__REF_STRING || x->len <= len ||
        x->c.str.bytes != x->len || x->parent != type || x->parent_sub ||
        (x->flags & LOOM__F_KEEP))
        return LOOM_OK;
    uint64_t client = x->id.client;
    loom__item *l = x->left, *n = x->right;
    if (!deleted(l) || l->ref != LOOM__REF_DELETED || l->id.client != client ||
        l->id.clock + l->len != x->id.clock || !x->has_origin ||
        x->origin.client != client || x->origin.clock != x->id.clock - 1 ||
        l->has_right_origin != x->has_right_origin ||
        (x->has_right_origin &&
         !loom__id_eq(l->right_origin, x->right_origin)) ||
        l->parent != type || l->parent_sub)
        return LOOM_OK;
    const loom__item *ll = l->left;
    if (ll && ll->id.client == client &&
        ll->id.clock + ll->len == l->id.clock && deleted(ll))
        return LOOM_OK;
    if (n && n->id.client == client && n->id.clock == x->id.clock + x->len &&
        !deleted(n))
        return LOOM_OK;
    if (loom__doc_observed(d))
        return LOOM_OK;
    int rc;
    if ((rc = reserve_back(t, len)))
        return rc;
    uint64_t at = x->id.clock;
    if ((rc = loom__txn_add_changed(t, type, NULL, 0)) ||
        (rc = loom__txn_ds_add(t, client, at, len)))
        return rc;
    loom__back *bk = &t->backs[t->nbacks++];
    bk->at.client = client;
    bk->at.clock = at;
    bk->n = len;
    bk->off = t->bblen;
    size_t cut = (size_t)len;
    memcpy(t->bbuf + t->bblen, x->c.str.p, cut);
    t->bblen += cut;
    memmove(x->c.str.p, x->c.str.p + cut, x->c.str.bytes - cut + 1);
    x->c.str.bytes -= cut;
    /* X still starts at index: a marker on it would sit inside the shifted
     * range, which markers_shift does not allow; it is set again below */
    if (!hot)
        loom__markers_forget(type, x);
    x->id.clock += len;
    x->len -= len;
    x->origin.clock = x->id.clock - 1;
    l->len += len;
    t->merge[t->nmerge].client = client; /* Yjs queues X's rest */
    t->merge[t->nmerge++].clock = x->id.clock;
    t->back_units += len;
    type->length -= len;
    loom__markers_shift(type, index + len, -(int64_t)len);
    if (hot)
        loom__markers_hot_moved(type, index);
    else
        loom__markers_note(type, x, index); /* for the next forward delete */
    *done = true;
    return LOOM_OK;
}

/* cleanupContextlessFormattingGap: around a deleted item, keep only the
 * right-most Format item per key of the gap it lies in. */
static int cleanup_contextless(loom_txn *t, loom__item *it)
{
    while (it->right &&
           (deleted(it->right) || !loom__item_countable(it->right)))
        it = it->right;
    attr_map seen;
    am_init(&seen, t->doc->a);
    int rc = LOOM_OK;
    for (; it && (deleted(it) || !loom__item_countable(it)) && !rc;
         it = it->left) {
        if (deleted(it) || !is_format(it))
            continue;
        if (am_has(&seen, it->c.fmt.key, loom__fmt_klen(it))) {
            rc = loom__item_delete(t, it);
        } else {
            attr e = item_attr(it);
            rc = am_set(&seen, &e);
        }
    }
    am_free(&seen);
    return rc;
}

/*
 * cleanupYTextFormatting: cleans the gap before every visible content item.
 * Each gap after the first starts at a visible content item, where
 * cleanup_gap stops at once, so only Format items before the first content
 * are ever removed. Yjs behaves so; the bytes depend on it (spec 6.3.6).
 */
static int cleanup_full(loom_txn *t, loom_type *type)
{
    attr_map start_attrs, cur;
    am_init(&start_attrs, t->doc->a);
    am_init(&cur, t->doc->a);
    loom__item *start = type->start;
    int rc = LOOM_OK;
    for (loom__item *end = type->start; end && !rc; end = end->right) {
        if (deleted(end))
            continue;
        if (is_format(end)) {
            rc = am_apply_format(&cur, end);
            continue;
        }
        if ((rc = cleanup_gap(t, start, end, &start_attrs, &cur)))
            break;
        am_free(&start_attrs);
        rc = am_copy(&start_attrs, &cur);
        start = end;
    }
    am_free(&start_attrs);
    am_free(&cur);
    return rc;
}

/* ---- public edits -------------------------------------------------------- */

static int close_txn(loom_doc *d, int rc)
{
    if (d->txn)
        d->txn->mk_type = NULL;
    int rc2 = loom__txn_end(d);
    return rc ? rc : rc2;
}

/* Shared by insert, insertEmbed and insert_type: `it` is taken (NULL: the
 * string s); `inherit` means "attributes absent", which only Y.Text.insert
 * treats as "keep the formatting at index" (insertEmbed treats it as {}). */
static int insert_item(loom_type *text,
                       size_t index,
                       loom__item *it,
                       const char *s,
                       size_t bytes,
                       const loom_any *attributes,
                       bool inherit)
{
    loom_doc *d = text->doc;
    loom_txn *t;
    int rc = loom__txn_begin(d, NULL, true, &t);
    if (rc) {
        loom__item_free(d, it);
        return rc;
    }
    tpos p;
    attr_map attrs;
    am_init(&attrs, d->a);
    rc = pos_seek(t, text, &p, index);
    if (!rc && !it && !attributes && !d->format_items) {
        /* Plain text (no Format item ever): no attributes to compare, set
         * or close; what remains of insertText is stepping over the
         * tombstones at the position (minimizeAttributeChanges). */
        if (p.right && (deleted(p.right) || is_format(p.right)))
            rc = minimize_changes(&p, &attrs); /* else it stops at once */
        if (!rc)
            rc = pos_insert_string(t, text, &p, s, bytes);
        am_free(&p.cur);
        return close_txn(d, rc);
    }
    if (!rc) {
        if (attributes)
            rc = am_from_object(&attrs, attributes);
        else if (inherit)
            rc = am_copy(&attrs, &p.cur) ? LOOM_ENOMEM : am_js_order(&attrs);
    }
    if (rc)
        loom__item_free(d, it);
    else
        rc = insert_text(t, text, &p, it, s, bytes, &attrs);
    am_free(&attrs);
    am_free(&p.cur);
    return close_txn(d, rc);
}

int loom_text_insert(loom_type *text,
                     size_t index,
                     const char *s,
                     size_t len,
                     const loom_any *attributes)
{
    int rc = check_writable(text);
    if (rc)
        return rc;
    if ((!s && len) || !utf8_valid(s ? s : "", len))
        return LOOM_EINVAL;
    if ((rc = check_attrs(attributes)))
        return rc;
    if (index > text->length)
        return LOOM_ERANGE;
    if (!len)
        return LOOM_OK;
    return insert_item(text, index, NULL, s, len, attributes, true);
}

int loom_text_insert_embed(loom_type *text,
                           size_t index,
                           const loom_any *embed,
                           const loom_any *attributes)
{
    int rc = check_writable(text);
    if (rc)
        return rc;
    if ((rc = check_embed(embed)) || (rc = check_attrs(attributes)))
        return rc;
    if (index > text->length)
        return LOOM_ERANGE;
    /* JS would make a zero-length String item of an empty string embed */
    if (embed->kind == LOOM_ANY_STRING && embed->u.str.len == 0)
        return LOOM_OK;
    loom__item *it;
    if ((rc = new_embed(text->doc, embed, &it)))
        return rc;
    return insert_item(text, index, it, NULL, 0, attributes, false);
}

int loom_text_insert_type(loom_type *text,
                          size_t index,
                          loom_type_kind kind,
                          const char *name,
                          size_t nlen,
                          const loom_any *attributes,
                          loom_type **out)
{
    int rc = check_writable(text);
    if (rc)
        return rc;
    if (kind < LOOM_TYPE_ARRAY || kind > LOOM_TYPE_XML_TEXT)
        return LOOM_EINVAL;
    if (name && !loom__utf8_valid(name, nlen))
        return LOOM_EINVAL;
    if ((rc = check_attrs(attributes)))
        return rc;
    if (index > text->length)
        return LOOM_ERANGE;
    loom_doc *d = text->doc;
    loom__item *it = loom__item_alloc(d);
    if (!it)
        return LOOM_ENOMEM;
    it->ref = LOOM__REF_TYPE;
    it->len = 1;
    if ((rc = loom__type_new(d, kind, name, name ? nlen : 0, &it->c.type))) {
        loom__item_release(d, it);
        return rc;
    }
    loom_type *nt = it->c.type;
    rc = insert_item(text, index, it, NULL, 0, attributes, false);
    if (!rc && out)
        *out = nt;
    return rc;
}

int loom_text_format(loom_type *text,
                     size_t index,
                     size_t len,
                     const loom_any *attributes)
{
    int rc = check_writable(text);
    if (rc)
        return rc;
    if (!attributes)
        return LOOM_EINVAL;
    if ((rc = check_attrs(attributes)))
        return rc;
    if (index > text->length)
        return LOOM_ERANGE;
    uint64_t avail = text->length - index;
    if (len > avail && len - avail > MAX_NEWLINES)
        return LOOM_ELIMIT;
    if (!len)
        return LOOM_OK;
    loom_doc *d = text->doc;
    loom_txn *t;
    if ((rc = loom__txn_begin(d, NULL, true, &t)))
        return rc;
    tpos p;
    pos_init(&p, text);
    attr_map attrs;
    am_init(&attrs, d->a);
    rc = pos_advance(t, &p, index);
    if (!rc && p.right) {
        rc = am_from_object(&attrs, attributes);
        if (!rc)
            rc = format_text(t, text, &p, len, &attrs);
    }
    am_free(&attrs);
    am_free(&p.cur);
    return close_txn(d, rc);
}

int loom_text_delete(loom_type *text, size_t index, size_t len)
{
    int rc = check_writable(text);
    if (rc)
        return rc;
    if (index > text->length || len > text->length - index)
        return LOOM_ERANGE;
    if (!len)
        return LOOM_OK;
    loom_doc *d = text->doc;
    loom_txn *t;
    if ((rc = loom__txn_begin(d, NULL, true, &t)))
        return rc;
    bool done;
    if ((rc = pos_backspace(t, text, index, len, &done)) || done ||
        (rc = pos_delete_front(t, text, index, len, &done)) || done)
        return close_txn(d, rc);
    tpos p;
    rc = pos_seek(t, text, &p, index);
    if (!rc)
        rc = delete_text(t, &p, len);
    am_free(&p.cur);
    return close_txn(d, rc);
}

/* ---- applyDelta ---------------------------------------------------------- */

/* A delta count (retain/delete): a non-negative integer JS number. */
static bool delta_count(const loom_any *v, uint64_t *out)
{
    if (!v || v->kind != LOOM_ANY_NUMBER)
        return false;
    double x = v->u.num;
    if (!(x >= 0 && x <= (double)LOOM__MAX_SAFE_INT) ||
        x != (double)(uint64_t)x)
        return false;
    *out = (uint64_t)x;
    return true;
}

/* `op.attributes || {}`: absent and null mean none. */
static const loom_any *delta_attrs(const loom_any *op)
{
    const loom_any *a = loom_any_object_get(op, "attributes", 10);
    return a && a->kind != LOOM_ANY_NULL && a->kind != LOOM_ANY_UNDEFINED
               ? a
               : NULL;
}

/*
 * Checks a whole delta before anything changes, following the visible
 * length as the ops would change it so that the newlines a retain past the
 * end appends can be bounded as well.
 */
static int check_delta(const loom_type *text, const loom_any *delta)
{
    if (!delta || delta->kind != LOOM_ANY_ARRAY)
        return LOOM_EINVAL;
    uint64_t len = text->length, pos = 0;
    for (size_t i = 0; i < delta->u.arr.n; i++) {
        const loom_any *op = delta->u.arr.v[i];
        if (op->kind != LOOM_ANY_OBJECT)
            return LOOM_EINVAL;
        const loom_any *a = loom_any_object_get(op, "attributes", 10);
        if (a && a->kind != LOOM_ANY_NULL && a->kind != LOOM_ANY_UNDEFINED) {
            int rc = check_attrs(a);
            if (rc)
                return rc;
        }
        const loom_any *ins = loom_any_object_get(op, "insert", 6);
        uint64_t n;
        if (ins && ins->kind != LOOM_ANY_UNDEFINED) {
            int rc = check_embed(ins);
            if (rc)
                return rc;
            n = ins->kind == LOOM_ANY_STRING
                    ? loom__utf16_len(ins->u.str.p, ins->u.str.len)
                    : 1;
            len += n;
            pos += n;
        } else if ((ins = loom_any_object_get(op, "retain", 6)) &&
                   ins->kind != LOOM_ANY_UNDEFINED) {
            if (!delta_count(ins, &n))
                return LOOM_EINVAL;
            if (n > len - pos) {
                if (n - (len - pos) > MAX_NEWLINES)
                    return LOOM_ELIMIT;
                len = pos + n;
            }
            pos += n;
        } else if ((ins = loom_any_object_get(op, "delete", 6)) &&
                   ins->kind != LOOM_ANY_UNDEFINED) {
            if (!delta_count(ins, &n))
                return LOOM_EINVAL;
            len -= n < len - pos ? n : len - pos;
        }
    }
    return LOOM_OK;
}

int loom_text_apply_delta(loom_type *text, const loom_any *delta)
{
    int rc = check_writable(text);
    if (rc)
        return rc;
    if ((rc = check_delta(text, delta)))
        return rc;
    loom_doc *d = text->doc;
    loom_txn *t;
    if ((rc = loom__txn_begin(d, NULL, true, &t)))
        return rc;
    /* applyDelta walks from the start with its own position (no lookup). */
    tpos p;
    pos_init(&p, text);
    for (size_t i = 0; i < delta->u.arr.n && !rc; i++) {
        const loom_any *op = delta->u.arr.v[i];
        const loom_any *v;
        attr_map attrs;
        am_init(&attrs, d->a);
        const loom_any *oa = delta_attrs(op);
        if (oa)
            rc = am_from_object(&attrs, oa);
        uint64_t n = 0;
        if (rc) {
            /* nothing */
        } else if ((v = loom_any_object_get(op, "insert", 6)) &&
                   v->kind != LOOM_ANY_UNDEFINED) {
            if (v->kind == LOOM_ANY_STRING) {
                if (v->u.str.len > 0)
                    rc = insert_text(t, text, &p, NULL, v->u.str.p,
                                     v->u.str.len, &attrs);
            } else {
                loom__item *it;
                if (!(rc = new_embed(d, v, &it)))
                    rc = insert_text(t, text, &p, it, NULL, 0, &attrs);
            }
        } else if ((v = loom_any_object_get(op, "retain", 6)) &&
                   v->kind != LOOM_ANY_UNDEFINED) {
            delta_count(v, &n);
            rc = format_text(t, text, &p, n, &attrs);
        } else if ((v = loom_any_object_get(op, "delete", 6)) &&
                   v->kind != LOOM_ANY_UNDEFINED) {
            delta_count(v, &n);
            rc = delete_text(t, &p, n);
        }
        am_free(&attrs);
    }
    am_free(&p.cur);
    return close_txn(d, rc);
}

/* ---- formatting cleanup after remote transactions (spec 6.3.6) ----------- */

/* A set of types in insertion order (the order Yjs's Set iterates). */
typedef struct type_set {
    loom_type **v;
    size_t n, cap;
    loom__u64map idx;
} type_set;

static bool ts_has(const type_set *s, const loom_type *ty)
{
    return loom__u64map_get(&s->idx, (uint64_t)(uintptr_t)ty) != NULL;
}

static int ts_add(type_set *s, const loom_allocator *a, loom_type *ty)
{
    if (ts_has(s, ty))
        return LOOM_OK;
    if (loom__vec_reserve(a, (void **)&s->v, &s->cap, s->n + 1,
                          sizeof(loom_type *)))
        return LOOM_ENOMEM;
    if (loom__u64map_put(&s->idx, (uint64_t)(uintptr_t)ty, ty))
        return LOOM_ENOMEM;
    s->v[s->n++] = ty;
    return LOOM_OK;
}

/* The callback of iterateDeletedStructs in cleanupYTextAfterTransaction. */
static int cleanup_deleted(loom_txn *t2, type_set *need, loom__item *it)
{
    loom_type *parent = it->parent;
    if (loom__item_is_gc(it) || !parent || !parent->has_formatting ||
        ts_has(need, parent))
        return LOOM_OK;
    if (is_format(it))
        return ts_add(need, t2->doc->a, parent);
    return cleanup_contextless(t2, it);
}

/*
 * iterateStructs over [clock, clock + len) of one client: splits at both
 * ends (in the transaction being cleaned up, whose merge pass joins the
 * parts again) and visits each struct.
 */
static int cleanup_range(loom_txn *t,
                         loom_txn *t2,
                         type_set *need,
                         loom__client *c,
                         uint64_t clock,
                         uint64_t len)
{
    uint64_t end = clock + len;
    size_t i = loom__find_index(c, clock);
    int rc;
    loom__item *s = loom__cs(c, i);
    if (s->id.clock < clock && !loom__item_is_gc(s)) {
        loom__item *r;
        if ((rc = loom__item_split(t, s, clock - s->id.clock, &r)))
            return rc;
        i++;
    }
    do {
        s = loom__cs(c, i++);
        if (end < s->id.clock + s->len && !loom__item_is_gc(s)) {
            loom__item *r;
            if ((rc = loom__item_split(t, s, end - s->id.clock, &r)))
                return rc;
        }
        if ((rc = cleanup_deleted(t2, need, s)))
            return rc;
    } while (i < c->n && loom__cs(c, i)->id.clock < end);
    return LOOM_OK;
}

/*
 * Yjs visits the delete set's clients in the order they were first deleted
 * from in the transaction; loom's delete set keeps clients in descending
 * order, which is that order for the deletes an update carries.
 */
int loom__text_cleanup_after(loom_doc *d, loom_txn *t)
{
    type_set need;
    memset(&need, 0, sizeof(need));
    loom__u64map_init(&need.idx, d->a);
    int rc = LOOM_OK;
    /* Texts that received a live Format item need the full cleanup. */
    for (size_t i = 0; i < t->ntouched && !rc; i++) {
        loom__client *c = t->touched[i];
        uint64_t before = t->tbefore[i];
        if (!c->n || before >= loom__state(d, c->client))
            continue;
        for (size_t si = loom__find_index(c, before); si < c->n && !rc; si++) {
            loom__item *s = loom__cs(c, si);
            if (!loom__item_is_gc(s) && !deleted(s) && is_format(s) &&
                s->parent)
                rc = ts_add(&need, d->a, s->parent);
        }
    }
    loom_txn *t2 = NULL;
    if (!rc)
        rc = loom__txn_begin(d, NULL, true, &t2);
    if (rc) {
        loom__u64map_free(&need.idx);
        loom__free(d->a, need.v, need.cap * sizeof(loom_type *));
        return rc;
    }
    for (size_t ci = 0; ci < t->nds_order && !rc; ci++) {
        const loom__ds_client *dc = loom__ds_find(&t->ds, t->ds_order[ci]);
        if (!dc)
            continue;
        loom__client *c = loom__client_get(d, dc->client);
        if (!c || !c->n)
            continue;
        uint64_t state = loom__state(d, dc->client);
        for (size_t ri = 0; ri < dc->n && dc->r[ri].clock < state && !rc; ri++)
            rc = cleanup_range(t, t2, &need, c, dc->r[ri].clock, dc->r[ri].len);
    }
    for (size_t i = 0; i < need.n && !rc; i++)
        rc = cleanup_full(t2, need.v[i]);
    loom__u64map_free(&need.idx);
    loom__free(d->a, need.v, need.cap * sizeof(loom_type *));
    return close_txn(d, rc);
}

/* ---- YTextEvent.delta (spec 7.4) ----------------------------------------- */

enum { ACT_NONE, ACT_INSERT, ACT_RETAIN, ACT_DELETE };

typedef struct ev_state {
    const loom_allocator *a;
    loom_any *delta;
    int action;
    loom_buf ins;               /* pending String insert */
    const loom__item *ins_item; /* pending Embed/Type insert */
    uint64_t retain, del;
    attr_map cur;   /* currentAttributes */
    attr_map attrs; /* pending attribute changes for retains */
} ev_state;

/* An op object {key: number} or {insert: value}, with attributes. */
static int ev_push(
    ev_state *e, const char *key, size_t klen, loom_any *val, loom_any *attrs)
{
    loom_any *op = NULL;
    int rc = loom_any_new_object(e->a, &op);
    if (!rc && !(rc = loom__any_object_append(op, key, klen, val)))
        val = NULL;
    if (!rc && attrs &&
        !(rc = loom__any_object_append(op, "attributes", 10, attrs)))
        attrs = NULL;
    if (!rc && !(rc = loom_any_array_push(e->delta, op)))
        op = NULL;
    loom_any_free(val);
    loom_any_free(attrs);
    loom_any_free(op);
    return rc;
}

/* Yjs writes an insert op when `typeof insert === 'object' ||
 * insert.length > 0`: embeds that are numbers or booleans vanish. */
static bool ev_insert_shows(const loom__item *it)
{
    if (it->ref == LOOM__REF_TYPE)
        return true;
    switch (it->c.embed->kind) {
    case LOOM_ANY_OBJECT:
    case LOOM_ANY_ARRAY:
    case LOOM_ANY_NULL:
    case LOOM_ANY_BINARY:
        return true;
    case LOOM_ANY_STRING:
        return it->c.embed->u.str.len > 0;
    default:
        return false;
    }
}

/* addOp: flushes the running op. */
static int ev_flush(ev_state *e)
{
    int rc = LOOM_OK;
    loom_any *v = NULL, *at = NULL;
    switch (e->action) {
    case ACT_DELETE:
        if (e->del > 0 && !(rc = loom_any_new_number(e->a, (double)e->del, &v)))
            rc = ev_push(e, "delete", 6, v, NULL);
        e->del = 0;
        break;
    case ACT_INSERT:
        if (e->ins_item ? ev_insert_shows(e->ins_item) : e->ins.len > 0) {
            if (e->ins_item && e->ins_item->ref == LOOM__REF_TYPE)
                rc = loom_any_new_type_ref(e->a, e->ins_item->c.type, &v);
            else if (e->ins_item)
                rc = loom_any_clone(e->ins_item->c.embed, e->a, &v);
            else
                rc = loom_any_new_string(e->a, (const char *)e->ins.data,
                                         e->ins.len, &v);
            if (!rc && e->cur.n > 0 &&
                (rc = am_to_object(&e->cur, true, e->a, &at))) {
                loom_any_free(v);
                v = NULL;
            }
            if (!rc)
                rc = ev_push(e, "insert", 6, v, at);
        }
        e->ins_item = NULL;
        e->ins.len = 0;
        break;
    case ACT_RETAIN:
        if (e->retain > 0 &&
            !(rc = loom_any_new_number(e->a, (double)e->retain, &v))) {
            if (e->attrs.n > 0 &&
                (rc = am_to_object(&e->attrs, false, e->a, &at)))
                loom_any_free(v);
            else
                rc = ev_push(e, "retain", 6, v, at);
        }
        e->retain = 0;
        break;
    default:
        break;
    }
    e->action = ACT_NONE;
    return rc;
}

static int ev_switch(ev_state *e, int action)
{
    if (e->action == action)
        return LOOM_OK;
    int rc = ev_flush(e);
    e->action = action;
    return rc;
}

/* A Format item in the event walk. Yjs deletes Format items it finds
 * redundant here; loom does not (the canonical bytes are those of an
 * unobserved run), but the rest of the walk sees them as Yjs does, as if
 * deleted, so the delta is the one Yjs reports. */
static int ev_format(ev_state *e, loom_txn *t, attr_map *old, loom__item *it)
{
    attr v = item_attr(it);
    bool gone = deleted(it);
    int rc = LOOM_OK;
    if (loom__txn_added(t, it)) {
        if (!loom__txn_deleted(t, it)) {
            attr cur = am_get_or_null(&e->cur, v.key, v.klen);
            if (!equal_attrs(&cur, &v)) {
                if (e->action == ACT_RETAIN)
                    rc = ev_flush(e);
                attr was = am_get_or_null(old, v.key, v.klen);
                if (equal_attrs(&v, &was))
                    am_del(&e->attrs, v.key, v.klen);
                else if (!rc)
                    rc = am_set(&e->attrs, &v);
            } else if (!is_null(v.val)) {
                gone = true;
            }
        }
    } else if (loom__txn_deleted(t, it)) {
        rc = am_set(old, &v);
        attr cur = am_get_or_null(&e->cur, v.key, v.klen);
        if (!rc && !equal_attrs(&cur, &v)) {
            if (e->action == ACT_RETAIN)
                rc = ev_flush(e);
            if (!rc)
                rc = am_set(&e->attrs, &cur);
        }
    } else if (!gone) {
        rc = am_set(old, &v);
        const attr *at = am_get(&e->attrs, v.key, v.klen);
        if (!rc && at) {
            if (!equal_attrs(at, &v)) {
                if (e->action == ACT_RETAIN)
                    rc = ev_flush(e);
                if (is_null(v.val))
                    am_del(&e->attrs, v.key, v.klen);
                else if (!rc)
                    rc = am_set(&e->attrs, &v);
            } else if (!is_null(at->val)) {
                gone = true;
            }
        }
    }
    if (!rc && !gone) {
        if (e->action == ACT_INSERT)
            rc = ev_flush(e);
        if (!rc)
            rc = am_apply_format(&e->cur, it);
    }
    return rc;
}

int loom__text_event_delta(loom_txn *t,
                           loom_type *type,
                           const loom_allocator *a,
                           loom_any **out)
{
    ev_state e;
    memset(&e, 0, sizeof(e));
    e.a = a;
    loom__buf_init(&e.ins, a);
    am_init(&e.cur, a);
    am_init(&e.attrs, a);
    attr_map old;
    am_init(&old, a);
    int rc = loom_any_new_array(a, &e.delta);
    for (loom__item *it = type->start; it && !rc; it = it->right) {
        bool added = loom__txn_added(t, it);
        switch (it->ref) {
        case LOOM__REF_TYPE:
        case LOOM__REF_EMBED:
            if (added) {
                if (!loom__txn_deleted(t, it) && !(rc = ev_flush(&e))) {
                    e.action = ACT_INSERT;
                    e.ins_item = it;
                    rc = ev_flush(&e);
                }
            } else if (loom__txn_deleted(t, it)) {
                if (!(rc = ev_switch(&e, ACT_DELETE)))
                    e.del += 1;
            } else if (!deleted(it)) {
                if (!(rc = ev_switch(&e, ACT_RETAIN)))
                    e.retain += 1;
            }
            break;
        case LOOM__REF_STRING:
            if (added) {
                if (!loom__txn_deleted(t, it) &&
                    !(rc = ev_switch(&e, ACT_INSERT)))
                    rc = loom__buf_append(&e.ins, it->c.str.p, it->c.str.bytes);
            } else if (loom__txn_deleted(t, it)) {
                if (!(rc = ev_switch(&e, ACT_DELETE)))
                    e.del += it->len;
            } else if (!deleted(it)) {
                if (!(rc = ev_switch(&e, ACT_RETAIN)))
                    e.retain += it->len;
            }
            break;
        case LOOM__REF_FORMAT:
            rc = ev_format(&e, t, &old, it);
            break;
        default:
            break; /* other content is not part of a text delta */
        }
    }
    if (!rc)
        rc = ev_flush(&e);
    /* a trailing retain that sets no attributes says nothing */
    while (!rc && e.delta->u.arr.n > 0) {
        loom_any *last = e.delta->u.arr.v[e.delta->u.arr.n - 1];
        if (!loom_any_object_get(last, "retain", 6) ||
            loom_any_object_get(last, "attributes", 10))
            break;
        loom_any_free(last);
        e.delta->u.arr.n--;
    }
    loom_buf_free(&e.ins);
    am_free(&e.cur);
    am_free(&e.attrs);
    am_free(&old);
    if (rc) {
        loom_any_free(e.delta);
        return rc;
    }
    *out = e.delta;
    return LOOM_OK;
}

/* ---- readers: toString, toDelta, XmlText.toString ------------------------ */

int loom_text_to_string(const loom_type *text, loom_buf *out)
{
    int rc = check_text(text);
    if (rc)
        return rc;
    if (!out)
        return LOOM_EINVAL;
    if (!out->alloc)
        out->alloc = text->doc->a;
    size_t mark = out->len;
    for (const loom__item *n = text->start; n && !rc; n = n->right) {
        if (!deleted(n) && n->ref == LOOM__REF_STRING)
            rc = loom__buf_append(out, n->c.str.p, n->c.str.bytes);
    }
    if (rc)
        out->len = mark;
    return rc;
}

/*
 * The toDelta walk: calls `op` once per delta op with the text of a run of
 * strings (item NULL) or an Embed/Type item, and the formatting in effect.
 * Without snapshots, a String item still drops a current "ychange"
 * attribute (and ends the run), as Yjs does.
 */
typedef int (*delta_op_fn)(void *ctx,
                           const char *s,
                           size_t n,
                           const loom__item *it,
                           const attr_map *cur);

static int delta_walk(const loom_type *text, delta_op_fn op, void *ctx)
{
    const loom_allocator *a = text->doc->a;
    attr_map cur;
    am_init(&cur, a);
    loom_buf str;
    memset(&str, 0, sizeof(str));
    loom__buf_init(&str, a);
    int rc = LOOM_OK;
    for (loom__item *n = text->start; n && !rc; n = n->right) {
        if (deleted(n))
            continue;
        switch (n->ref) {
        case LOOM__REF_STRING:
            if (am_has(&cur, "ychange", 7)) {
                if (str.len)
                    rc = op(ctx, (const char *)str.data, str.len, NULL, &cur);
                str.len = 0;
                am_del(&cur, "ychange", 7);
            }
            if (!rc)
                rc = loom__buf_append(&str, n->c.str.p, n->c.str.bytes);
            break;
        case LOOM__REF_TYPE:
        case LOOM__REF_EMBED:
        case LOOM__REF_FORMAT:
            if (str.len)
                rc = op(ctx, (const char *)str.data, str.len, NULL, &cur);
            str.len = 0;
            if (rc)
                break;
            if (is_format(n))
                rc = am_apply_format(&cur, n);
            else
                rc = op(ctx, NULL, 0, n, &cur);
            break;
        default:
            break;
        }
    }
    if (!rc && str.len)
        rc = op(ctx, (const char *)str.data, str.len, NULL, &cur);
    loom_buf_free(&str);
    am_free(&cur);
    return rc;
}

static int to_delta_op(void *ctx,
                       const char *s,
                       size_t n,
                       const loom__item *it,
                       const attr_map *cur)
{
    loom_any *arr = ctx;
    const loom_allocator *a = arr->a;
    loom_any *op = NULL, *v = NULL, *at = NULL;
    int rc;
    if (!it)
        rc = loom_any_new_string(a, s, n, &v);
    else if (it->ref == LOOM__REF_TYPE)
        rc = loom_any_new_type_ref(a, it->c.type, &v);
    else
        rc = loom_any_clone(it->c.embed, a, &v);
    if (!rc && cur->n)
        rc = am_to_object(cur, false, a, &at);
    if (!rc)
        rc = loom_any_new_object(a, &op);
    if (!rc && !(rc = loom__any_object_append(op, "insert", 6, v)))
        v = NULL;
    if (!rc && at && !(rc = loom__any_object_append(op, "attributes", 10, at)))
        at = NULL;
    if (!rc && !(rc = loom_any_array_push(arr, op)))
        op = NULL;
    loom_any_free(v);
    loom_any_free(at);
    loom_any_free(op);
    return rc;
}

int loom_text_to_delta(const loom_type *text, loom_any **out)
{
    int rc = check_text(text);
    if (rc)
        return rc;
    if (!out)
        return LOOM_EINVAL;
    loom_any *arr;
    if ((rc = loom_any_new_array(text->doc->a, &arr)))
        return rc;
    if ((rc = delta_walk(text, to_delta_op, arr))) {
        loom_any_free(arr);
        return rc;
    }
    *out = arr;
    return LOOM_OK;
}

/* -- JS string conversions for XmlText.toString -- */

/* Next UTF-16 unit of valid UTF-8 text; *pend holds a pending low
 * surrogate between calls. Returns false at the end. */
static bool next_unit(
    const char *s, size_t len, size_t *pos, uint32_t *pend, uint32_t *unit)
{
    if (*pend) {
        *unit = *pend;
        *pend = 0;
        return true;
    }
    if (*pos >= len)
        return false;
    const uint8_t *p = (const uint8_t *)s + *pos;
    uint32_t cp;
    size_t n;
    if (p[0] < 0x80) {
        cp = p[0];
        n = 1;
    } else if (p[0] < 0xe0) {
        cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
        n = 2;
    } else if (p[0] < 0xf0) {
        cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 |
             (p[2] & 0x3f);
        n = 3;
    } else {
        cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
             (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
        n = 4;
    }
    *pos += n;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *unit = 0xd800 + (cp >> 10);
        *pend = 0xdc00 + (cp & 0x3ff);
    } else {
        *unit = cp;
    }
    return true;
}

/* JS `a < b` on strings: UTF-16 code unit order. */
static int cmp_utf16(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t pa = 0, pb = 0;
    uint32_t qa = 0, qb = 0;
    for (;;) {
        uint32_t ua, ub;
        bool ha = next_unit(a, alen, &pa, &qa, &ua);
        bool hb = next_unit(b, blen, &pb, &qb, &ub);
        if (!ha || !hb)
            return ha ? 1 : hb ? -1 : 0;
        if (ua != ub)
            return ua < ub ? -1 : 1;
    }
}

static int put_u64(loom_buf *b, uint64_t v)
{
    char tmp[24];
    size_t p = sizeof(tmp);
    do {
        tmp[--p] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return loom__buf_append(b, tmp + p, sizeof(tmp) - p);
}

static int type_string(const loom_type *ty, loom_buf *b);

/* String(v) (template literals); arrays join their elements. */
// NOLINTNEXTLINE(misc-no-recursion): arrays nest as deep as the value, capped
static int js_string(loom_buf *b, const loom_any *v, int depth)
{
    char num[32];
    int rc = LOOM_OK;
    if (depth > LOOM__MAX_DEPTH)
        return LOOM_ELIMIT;
    switch (v->kind) {
    case LOOM_ANY_UNDEFINED:
        return loom__buf_append(b, "undefined", 9);
    case LOOM_ANY_NULL:
        return loom__buf_append(b, "null", 4);
    case LOOM_ANY_BOOL:
        return v->u.b ? loom__buf_append(b, "true", 4)
                      : loom__buf_append(b, "false", 5);
    case LOOM_ANY_NUMBER:
        return loom__buf_append(b, num, loom__js_number_str(v->u.num, num));
    case LOOM_ANY_BIGINT:
        if (v->u.big < 0 && (rc = loom__buf_push(b, '-')))
            return rc;
        return put_u64(b, v->u.big < 0 ? 0 - (uint64_t)v->u.big
                                       : (uint64_t)v->u.big);
    case LOOM_ANY_STRING:
        return loom__buf_append(b, v->u.str.p, v->u.str.len);
    case LOOM_ANY_BINARY:
        for (size_t i = 0; i < v->u.bin.len && !rc; i++) {
            if (i)
                rc = loom__buf_push(b, ',');
            if (!rc)
                rc = put_u64(b, v->u.bin.p[i]);
        }
        return rc;
    case LOOM_ANY_ARRAY:
        for (size_t i = 0; i < v->u.arr.n && !rc; i++) {
            const loom_any *x = v->u.arr.v[i];
            if (i)
                rc = loom__buf_push(b, ',');
            if (!rc && x->kind != LOOM_ANY_NULL &&
                x->kind != LOOM_ANY_UNDEFINED)
                rc = js_string(b, x, depth + 1);
        }
        return rc;
    case LOOM_ANY_TYPE:
        return type_string(v->u.type, b);
    default:
        return loom__buf_append(b, "[object Object]", 15);
    }
}

/* One `key="value"` of a nested tag: what `for (key in value)` yields. */
typedef struct tag_attr {
    const char *k; /* NULL: index key `idx` */
    size_t klen;
    uint64_t idx;
    const loom_any *v; /* object / array member */
    uint32_t unit;     /* string member (a UTF-16 unit) */
    uint8_t byte;      /* Uint8Array member */
} tag_attr;

static int cmp_tag_attr(const void *pa, const void *pb)
{
    const tag_attr *x = pa, *y = pb;
    if (x->k && y->k)
        return cmp_utf16(x->k, x->klen, y->k, y->klen);
    /* index keys compare as their decimal strings */
    char bx[24], by[24];
    size_t px = sizeof(bx), py = sizeof(by);
    uint64_t a = x->idx, b = y->idx;
    do {
        bx[--px] = (char)('0' + a % 10);
        a /= 10;
    } while (a);
    do {
        by[--py] = (char)('0' + b % 10);
        b /= 10;
    } while (b);
    size_t lx = sizeof(bx) - px, ly = sizeof(by) - py;
    int c = memcmp(bx + px, by + py, lx < ly ? lx : ly);
    return c ? c : (lx < ly ? -1 : lx > ly);
}

/* The members `for (key in v)` visits, for the tag of one attribute. */
static int tag_attrs(const loom_allocator *a,
                     const loom_any *v,
                     tag_attr **out,
                     size_t *nout)
{
    size_t n = 0;
    switch (v->kind) {
    case LOOM_ANY_OBJECT:
        n = v->u.obj.n;
        break;
    case LOOM_ANY_ARRAY:
        n = v->u.arr.n;
        break;
    case LOOM_ANY_BINARY:
        n = v->u.bin.len;
        break;
    case LOOM_ANY_STRING:
        n = loom__utf16_len(v->u.str.p, v->u.str.len);
        break;
    default:
        break;
    }
    *out = NULL;
    *nout = 0;
    if (!n)
        return LOOM_OK;
    tag_attr *ta = loom__calloc(a, n * sizeof(*ta));
    if (!ta)
        return LOOM_ENOMEM;
    size_t pos = 0;
    uint32_t pend = 0;
    for (size_t i = 0; i < n; i++) {
        ta[i].idx = i;
        switch (v->kind) {
        case LOOM_ANY_OBJECT:
            ta[i].k = v->u.obj.keys[i];
            ta[i].klen = v->u.obj.klens[i];
            ta[i].v = v->u.obj.v[i];
            break;
        case LOOM_ANY_ARRAY:
            ta[i].v = v->u.arr.v[i];
            break;
        case LOOM_ANY_BINARY:
            ta[i].byte = v->u.bin.p[i];
            break;
        default:
            next_unit(v->u.str.p, v->u.str.len, &pos, &pend, &ta[i].unit);
            break;
        }
    }
    qsort(ta, n, sizeof(*ta), cmp_tag_attr);
    *out = ta;
    *nout = n;
    return LOOM_OK;
}

static int put_unit(loom_buf *b, uint32_t u)
{
    uint8_t tmp[3];
    if (u >= 0xd800 && u <= 0xdfff)
        u = 0xfffd; /* a lone surrogate encodes as U+FFFD */
    if (u < 0x80)
        return loom__buf_push(b, (uint8_t)u);
    if (u < 0x800) {
        tmp[0] = (uint8_t)(0xc0 | u >> 6);
        tmp[1] = (uint8_t)(0x80 | (u & 0x3f));
        return loom__buf_append(b, tmp, 2);
    }
    tmp[0] = (uint8_t)(0xe0 | u >> 12);
    tmp[1] = (uint8_t)(0x80 | ((u >> 6) & 0x3f));
    tmp[2] = (uint8_t)(0x80 | (u & 0x3f));
    return loom__buf_append(b, tmp, 3);
}

/* `<name k="v" ...>` for one attribute of a delta op. */
static int open_tag(loom_buf *b, const loom_allocator *a, const attr *at)
{
    tag_attr *ta;
    size_t n;
    int rc = tag_attrs(a, at->val, &ta, &n);
    if (rc)
        return rc;
    rc = loom__buf_push(b, '<');
    if (!rc)
        rc = loom__buf_append(b, at->key, at->klen);
    for (size_t i = 0; i < n && !rc; i++) {
        if ((rc = loom__buf_push(b, ' ')))
            break;
        if (ta[i].k)
            rc = loom__buf_append(b, ta[i].k, ta[i].klen);
        else
            rc = put_u64(b, ta[i].idx);
        if (!rc)
            rc = loom__buf_append(b, "=\"", 2);
        if (rc)
            break;
        switch (at->val->kind) {
        case LOOM_ANY_OBJECT:
        case LOOM_ANY_ARRAY:
            /* `${value}` of a member: null and undefined are written out */
            rc = js_string(b, ta[i].v, 0);
            break;
        case LOOM_ANY_BINARY:
            rc = put_u64(b, ta[i].byte);
            break;
        default:
            rc = put_unit(b, ta[i].unit);
            break;
        }
        if (!rc)
            rc = loom__buf_push(b, '"');
    }
    if (!rc)
        rc = loom__buf_push(b, '>');
    loom__free(a, ta, n * sizeof(*ta));
    return rc;
}

static int cmp_attr_key(const void *pa, const void *pb)
{
    const attr *x = pa, *y = pb;
    return cmp_utf16(x->key, x->klen, y->key, y->klen);
}

typedef struct xml_ctx {
    loom_buf *b;
    const loom_allocator *a;
} xml_ctx;

/* One delta op as XmlText.toString writes it: the attributes as nested tags
 * sorted by name, each tag's own attributes sorted by key. */
static int xml_op(void *ctx,
                  const char *s,
                  size_t n,
                  const loom__item *it,
                  const attr_map *cur)
{
    xml_ctx *x = ctx;
    attr_map tags;
    int rc = am_copy(&tags, cur);
    if (rc)
        return rc;
    if (tags.n > 1)
        qsort(tags.v, tags.n, sizeof(*tags.v), cmp_attr_key);
    for (size_t i = 0; i < tags.n && !rc; i++)
        rc = open_tag(x->b, x->a, &tags.v[i]);
    if (!rc) {
        if (!it)
            rc = loom__buf_append(x->b, s, n);
        else if (it->ref == LOOM__REF_TYPE)
            rc = type_string(it->c.type, x->b);
        else
            rc = js_string(x->b, it->c.embed, 0);
    }
    for (size_t i = tags.n; i-- > 0 && !rc;) {
        if (!(rc = loom__buf_append(x->b, "</", 2)) &&
            !(rc = loom__buf_append(x->b, tags.v[i].key, tags.v[i].klen)))
            rc = loom__buf_push(x->b, '>');
    }
    am_free(&tags);
    return rc;
}

/* String(type) for a type inside an XmlText: the XML types and texts have a
 * toString; Y.Map, Y.Array and hooks print as plain objects. */
static int type_string(const loom_type *ty, loom_buf *b)
{
    switch (ty->kind) {
    case LOOM_TYPE_XML_ELEMENT:
    case LOOM_TYPE_XML_FRAGMENT:
    case LOOM_TYPE_XML_TEXT:
    case LOOM_TYPE_TEXT: {
        /* Each XmlText restarts the XML writer's depth count, so bound the
         * absolute nesting here. */
        int depth = 0;
        for (const loom_type *p = ty; p->item && p->item->parent;
             p = p->item->parent) {
            if (++depth > MAX_XML_DEPTH)
                return LOOM_ELIMIT;
        }
        return loom_xml_to_string(ty, b);
    }
    default:
        return loom__buf_append(b, "[object Object]", 15);
    }
}

int loom__xml_text_string(const loom_type *t, loom_buf *b)
{
    if (!b->alloc)
        b->alloc = t->doc->a;
    size_t mark = b->len;
    xml_ctx x = {b, t->doc->a};
    int rc = delta_walk(t, xml_op, &x);
    if (rc)
        b->len = mark;
    return rc;
}
