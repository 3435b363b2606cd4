/*
 * event.c: observer events, as Yjs YEvent and its subclasses produce them
 * (spec section 7). At the end of a transaction, loom__dispatch_events runs
 * what Yjs's cleanupTransactions runs before afterTransaction: for each
 * changed type, in order of first change, its event goes to the type's
 * observers and is recorded on the type and every ancestor
 * (changedParentTypes); then each of those types that has deep observers
 * gets the events of its subtree, sorted by path length. It also raises the
 * formatting-cleanup request of YText._callObserver.
 *
 * An event is a small struct; its delta, keys and path are computed on first
 * request (as the Yjs getters are) and owned by the event until dispatch
 * ends. (In Yjs, computing a text delta also deletes redundant format items,
 * spec 7.4; text.c reports the same delta without that side effect.)
 *
 * Events are only built for types someone listens to: a plain observer on
 * the type, or a deep observer on it or an ancestor, as the subscriptions
 * stand when the type's turn comes. Callbacks may subscribe and unsubscribe;
 * a subscription removed during dispatch is not called afterwards (Yjs would
 * still call it for the running dispatch, but in C its user data may be gone).
 */
#include <string.h>

#include "crdt/crdt.h"

struct loom_event {
    loom_type *target;
    loom_txn *txn;
    size_t ch;          /* index of the target's entry in txn->changed */
    loom_type *current; /* Yjs currentTarget: paths are relative to it */
    loom_any *delta, *keys, *path; /* NULL until first asked for */
};

/* Bits of the per-type observer summary. */
#define OBS_PLAIN 1u
#define OBS_DEEP  2u

/* One entry of changedParentTypes: the event `ev` bubbles to t->deep[deep]. */
typedef struct ev_pair {
    size_t deep, ev;
} ev_pair;

/* An event with its path length relative to the deep-observed type. */
typedef struct ev_depth {
    size_t depth;
    loom_event *e;
} ev_depth;

typedef struct dispatch {
    loom_doc *d;
    loom_txn *t;
    loom_event
        *ev; /* fixed capacity t->nchanged: callers hold pointers into it */
    size_t nev;
    loom__u64map deep_idx; /* type pointer -> index + 1 into t->deep */
    ev_pair *pairs;
    size_t npairs, pcap;
    /* type pointer -> OBS_* bits, rebuilt whenever the subscriptions change
     * (callbacks may subscribe and unsubscribe) */
    loom__u64map obs;
    bool obs_valid;
    uint32_t obs_next_sub;
    size_t obs_nsubs;
    uint32_t *ids; /* snapshot of the subscription ids to call */
    size_t nids, icap;
    /* deep pass: the pairs grouped by deep type (group g is
     * order[gend[g-1] .. gend[g]), gend[-1] being 0), and scratch space for
     * one type's sorted events */
    size_t *gend, *order;
    ev_depth *sorted;
    loom_event **list;
    size_t *counts, ccap;
} dispatch;

static loom_type *parent_of(const loom_type *ty)
{
    return ty->item ? ty->item->parent : NULL;
}

/* Yjs tests `type._item.deleted`; a GC'd item counts as deleted too. */
static bool type_gone(const loom_type *ty)
{
    return ty->item &&
           (loom__item_deleted(ty->item) || loom__item_is_gc(ty->item));
}

/* ---- delta, keys, path --------------------------------------------------- */

enum { OP_NONE, OP_INSERT, OP_RETAIN, OP_DELETE };

/* Appends the running op ({insert: [...]}, {retain: n} or {delete: n}) to
 * the delta. Takes `ins` (the insert values) in every case: on failure it is
 * freed. */
static int flush_op(loom_any *delta, int kind, uint64_t count, loom_any *ins)
{
    const loom_allocator *a = delta->a;
    loom_any *op = NULL, *v = NULL;
    int rc = loom_any_new_object(a, &op);
    if (rc) {
        loom_any_free(ins);
        return rc;
    }
    if (kind == OP_INSERT) {
        v = ins;
        rc = loom_any_object_set(op, "insert", 6, v);
    } else {
        rc = loom_any_new_number(a, (double)count, &v);
        if (!rc)
            rc = loom_any_object_set(
                op, kind == OP_RETAIN ? "retain" : "delete", 6, v);
    }
    if (rc) {
        loom_any_free(v);
        loom_any_free(op);
        return rc;
    }
    if ((rc = loom_any_array_push(delta, op)))
        loom_any_free(op);
    return rc;
}

/* YEvent.changes.delta (spec 7.2): arrays, XML children, and the empty delta
 * of a type whose sequence did not change (maps, attribute-only changes). */
static int seq_delta(const loom_event *e, loom_any **out)
{
    const loom_txn *t = e->txn;
    loom_any *delta;
    int rc = loom_any_new_array(t->doc->a, &delta);
    if (rc)
        return rc;
    if (!t->changed[e->ch].seq) {
        *out = delta;
        return LOOM_OK;
    }
    int kind = OP_NONE;
    uint64_t count = 0;
    loom_any *ins = NULL;
    for (const loom__item *it = e->target->start; it && !rc; it = it->right) {
        int want;
        if (loom__item_deleted(it)) {
            /* items added and deleted in this txn, and old tombstones, are
             * invisible to the delta */
            if (!loom__txn_deleted(t, it) || loom__txn_added(t, it))
                continue;
            want = OP_DELETE;
        } else {
            want = loom__txn_added(t, it) ? OP_INSERT : OP_RETAIN;
        }
        if (want != kind) {
            if (kind != OP_NONE) {
                rc = flush_op(delta, kind, count, ins); /* consumes ins */
                ins = NULL;
                if (rc)
                    break;
            }
            kind = want;
            count = 0;
            ins = NULL;
            if (want == OP_INSERT && (rc = loom_any_new_array(t->doc->a, &ins)))
                break;
        }
        if (want == OP_INSERT)
            rc = loom__item_values(it, ins, false);
        else
            count += it->len;
    }
    /* a trailing retain is dropped */
    if (!rc && kind != OP_NONE && kind != OP_RETAIN) {
        rc = flush_op(delta, kind, count, ins);
        ins = NULL;
    }
    if (rc) {
        loom_any_free(ins);
        loom_any_free(delta);
        return rc;
    }
    *out = delta;
    return LOOM_OK;
}

/* `array.last(item.content.getContent())`: undefined for content without
 * values (Deleted, Format, GC). */
static int
last_value(const loom__item *it, const loom_allocator *a, loom_any **out)
{
    loom_any *v = NULL;
    loom_type *ty = NULL;
    int rc = loom__item_value(it, a, &v, &ty);
    if (rc == LOOM_ENOTFOUND)
        return loom_any_new_undefined(a, out);
    if (rc)
        return rc;
    if (ty)
        return loom_any_new_type_ref(a, ty, out);
    *out = v;
    return LOOM_OK;
}

/* {action, oldValue?} of one key. */
static int key_change(const loom_allocator *a,
                      const char *action,
                      const loom__item *old,
                      loom_any **out)
{
    loom_any *o, *v = NULL;
    int rc = loom_any_new_object(a, &o);
    if (rc)
        return rc;
    rc = loom_any_new_string(a, action, strlen(action), &v);
    if (!rc && (rc = loom_any_object_set(o, "action", 6, v)))
        loom_any_free(v);
    if (!rc && old) {
        v = NULL;
        rc = last_value(old, a, &v);
        if (!rc && (rc = loom_any_object_set(o, "oldValue", 8, v)))
            loom_any_free(v);
    }
    if (rc) {
        loom_any_free(o);
        return rc;
    }
    *out = o;
    return LOOM_OK;
}

/* YEvent.keys (spec 7.3), for maps and the attributes of texts and XML. */
static int event_keys(const loom_event *e, loom_any **out)
{
    const loom_txn *t = e->txn;
    const loom_allocator *a = t->doc->a;
    const loom__changed *ch = &t->changed[e->ch];
    loom_any *keys;
    int rc = loom_any_new_object(a, &keys);
    if (rc)
        return rc;
    for (size_t k = 0; k < ch->nkeys && !rc; k++) {
        /* the key is the target's own copy */
        const loom__item *it =
            loom__strmap_key_entry(&e->target->map, ch->keys[k].p)->val;
        if (!it)
            continue;
        const char *action;
        const loom__item *old = NULL;
        if (loom__txn_added(t, it)) {
            /* the value the key had before the transaction: the first entry
             * of the key's chain, going left, that this txn did not add */
            const loom__item *prev = it->left;
            while (prev && loom__txn_added(t, prev))
                prev = prev->left;
            bool prev_deleted = prev && loom__txn_deleted(t, prev);
            if (loom__txn_deleted(t, it)) {
                if (!prev_deleted)
                    continue;
                action = "delete";
            } else {
                action = prev_deleted ? "update" : "add";
            }
            if (prev_deleted)
                old = prev;
        } else {
            if (!loom__txn_deleted(t, it))
                continue;
            action = "delete";
            old = it;
        }
        loom_any *chg;
        if ((rc = key_change(a, action, old, &chg)))
            break;
        /* changed keys are distinct, so append without a lookup */
        if ((rc = loom__any_object_append(keys, ch->keys[k].p, ch->keys[k].len,
                                          chg)))
            loom_any_free(chg);
    }
    if (rc) {
        loom_any_free(keys);
        return rc;
    }
    *out = keys;
    return LOOM_OK;
}

/* Length of the path from `cur` down to `target` (getPathTo's step count). */
static size_t path_depth(const loom_type *target, const loom_type *cur)
{
    size_t n = 0;
    for (const loom_type *ty = target; ty != cur && parent_of(ty);
         ty = parent_of(ty))
        n++;
    return n;
}

/* getPathTo(currentTarget, target): map keys and visible sequence indices,
 * outermost first. */
static int event_path(const loom_event *e, loom_any **out)
{
    const loom_allocator *a = e->txn->doc->a;
    loom_any *path;
    int rc = loom_any_new_array(a, &path);
    if (rc)
        return rc;
    for (const loom_type *ty = e->target;
         ty != e->current && parent_of(ty) && !rc; ty = parent_of(ty)) {
        const loom__item *item = ty->item;
        loom_any *step = NULL;
        if (item->parent_sub) {
            rc = loom_any_new_string(a, item->parent_sub, item->parent_sub_len,
                                     &step);
        } else {
            uint64_t i = 0;
            for (const loom__item *c = item->parent->start; c && c != item;
                 c = c->right) {
                if (!loom__item_deleted(c) && loom__item_countable(c))
                    i += c->len;
            }
            rc = loom_any_new_number(a, (double)i, &step);
        }
        if (!rc && (rc = loom_any_array_push(path, step)))
            loom_any_free(step);
    }
    if (rc) {
        loom_any_free(path);
        return rc;
    }
    /* collected innermost first: reverse in place */
    for (size_t i = 0, j = path->u.arr.n; i + 1 < j; i++, j--) {
        loom_any *tmp = path->u.arr.v[i];
        path->u.arr.v[i] = path->u.arr.v[j - 1];
        path->u.arr.v[j - 1] = tmp;
    }
    *out = path;
    return LOOM_OK;
}

/* ---- public accessors ---------------------------------------------------- */

/* The accessors fill the event's caches. Events are created and owned by the
 * dispatcher, which hands them out as const so that callers cannot change
 * them; casting the const away for the caches is therefore safe. */

loom_type *loom_event_target(const loom_event *ev)
{
    return ev ? ev->target : NULL;
}

int loom_event_path(const loom_event *ev, const loom_any **out)
{
    if (!ev || !out)
        return LOOM_EINVAL;
    loom_event *e = (loom_event *)ev;
    if (!e->path) {
        int rc = event_path(e, &e->path);
        if (rc)
            return rc;
    }
    *out = e->path;
    return LOOM_OK;
}

int loom_event_delta(const loom_event *ev, const loom_any **out)
{
    if (!ev || !out)
        return LOOM_EINVAL;
    loom_event *e = (loom_event *)ev;
    if (!e->delta) {
        int kind = e->target->kind;
        int rc = kind == LOOM_TYPE_TEXT || kind == LOOM_TYPE_XML_TEXT
                     ? loom__text_event_delta(e->txn, e->target, e->txn->doc->a,
                                              &e->delta)
                     : seq_delta(e, &e->delta);
        if (rc)
            return rc;
    }
    *out = e->delta;
    return LOOM_OK;
}

int loom_event_keys(const loom_event *ev, const loom_any **out)
{
    if (!ev || !out)
        return LOOM_EINVAL;
    loom_event *e = (loom_event *)ev;
    if (!e->keys) {
        int rc = event_keys(e, &e->keys);
        if (rc)
            return rc;
    }
    *out = e->keys;
    return LOOM_OK;
}

/* ---- dispatch -------------------------------------------------------------- */

static uint64_t type_key(const loom_type *ty)
{
    return (uint64_t)(uintptr_t)ty;
}

/* Refreshes the per-type observer summary if the subscriptions changed: an
 * added subscription bumps next_sub, a removal lowers nsubs. */
static int obs_refresh(dispatch *st)
{
    const loom_doc *d = st->d;
    if (st->obs_valid && st->obs_next_sub == d->next_sub &&
        st->obs_nsubs == d->nsubs)
        return LOOM_OK;
    loom__u64map_free(&st->obs);
    loom__u64map_init(&st->obs, d->a);
    st->obs_valid = false;
    for (size_t i = 0; i < d->nsubs; i++) {
        const loom__sub *s = &d->subs[i];
        unsigned bit = s->kind == LOOM__SUB_OBSERVE        ? OBS_PLAIN
                       : s->kind == LOOM__SUB_OBSERVE_DEEP ? OBS_DEEP
                                                           : 0;
        if (!bit || !s->type)
            continue;
        uintptr_t cur =
            (uintptr_t)loom__u64map_get(&st->obs, type_key(s->type));
        int rc =
            loom__u64map_put(&st->obs, type_key(s->type), (void *)(cur | bit));
        if (rc)
            return rc;
    }
    st->obs_valid = true;
    st->obs_next_sub = d->next_sub;
    st->obs_nsubs = d->nsubs;
    return LOOM_OK;
}

static unsigned obs_of(const dispatch *st, const loom_type *ty)
{
    return (unsigned)(uintptr_t)loom__u64map_get(&st->obs, type_key(ty));
}

/* Snapshots the ids of the subscriptions of `kind` on `ty`: callbacks may
 * unsubscribe (themselves or others) and subscribe while we iterate. */
static int snapshot_ids(dispatch *st, int kind, const loom_type *ty)
{
    const loom_doc *d = st->d;
    st->nids = 0;
    for (size_t i = 0; i < d->nsubs; i++) {
        if (d->subs[i].kind != kind || d->subs[i].type != ty)
            continue;
        if (loom__vec_reserve(d->a, (void **)&st->ids, &st->icap, st->nids + 1,
                              sizeof(*st->ids)))
            return LOOM_ENOMEM;
        st->ids[st->nids++] = d->subs[i].id;
    }
    return LOOM_OK;
}

/* The subscription with this id if it still exists (copied: the array may
 * move while its callback runs). */
static bool find_sub(const loom_doc *d, uint32_t id, loom__sub *out)
{
    for (size_t i = 0; i < d->nsubs; i++) {
        if (d->subs[i].id == id) {
            *out = d->subs[i];
            return true;
        }
    }
    return false;
}

/* callTypeObservers: records the event on the type and every ancestor. */
static int record_parents(dispatch *st, size_t evi)
{
    loom_txn *t = st->t;
    const loom_allocator *a = st->d->a;
    for (loom_type *ty = st->ev[evi].target; ty; ty = parent_of(ty)) {
        size_t idx =
            (size_t)(uintptr_t)loom__u64map_get(&st->deep_idx, type_key(ty));
        if (!idx) {
            if (loom__vec_reserve(a, (void **)&t->deep, &t->dcap, t->ndeep + 1,
                                  sizeof(*t->deep)))
                return LOOM_ENOMEM;
            t->deep[t->ndeep++] = ty;
            idx = t->ndeep;
            if (loom__u64map_put(&st->deep_idx, type_key(ty),
                                 (void *)(uintptr_t)idx))
                return LOOM_ENOMEM;
        }
        if (loom__vec_reserve(a, (void **)&st->pairs, &st->pcap, st->npairs + 1,
                              sizeof(*st->pairs)))
            return LOOM_ENOMEM;
        st->pairs[st->npairs].deep = idx - 1;
        st->pairs[st->npairs++].ev = evi;
    }
    return LOOM_OK;
}

/* Does the type have observers, or deep observers on it or an ancestor? */
static bool needs_event(const dispatch *st, const loom_type *ty)
{
    if (obs_of(st, ty) & OBS_PLAIN)
        return true;
    for (; ty; ty = parent_of(ty)) {
        if (obs_of(st, ty) & OBS_DEEP)
            return true;
    }
    return false;
}

static void request_format_cleanup(loom_txn *t, const loom_type *ty)
{
    /* YText._callObserver: a remote change to formatted text may have left
     * duplicate format items behind */
    if (!t->local && ty->has_formatting &&
        (ty->kind == LOOM_TYPE_TEXT || ty->kind == LOOM_TYPE_XML_TEXT))
        t->format_cleanup = true;
}

static void request_all_format_cleanups(loom_txn *t)
{
    if (t->local)
        return; /* only remote changes ask (request_format_cleanup) */
    for (size_t i = 0; i < t->nchanged; i++) {
        const loom_type *ty = t->changed[i].type;
        if (ty && !type_gone(ty))
            request_format_cleanup(t, ty);
    }
}

/* The plain-observer pass, in order of first change. */
static int observe_pass(dispatch *st)
{
    loom_txn *t = st->t;
    int rc;
    for (size_t i = 0; i < t->nchanged; i++) {
        loom_type *ty = t->changed[i].type;
        /* deleted types fire nothing; untyped roots are plain AbstractTypes,
         * whose _callObserver creates no event */
        if (!ty || ty->kind == LOOM_TYPE_UNDEFINED || type_gone(ty))
            continue;
        if ((rc = obs_refresh(st)))
            return rc;
        if (needs_event(st, ty)) {
            size_t evi = st->nev++;
            loom_event *e = &st->ev[evi];
            memset(e, 0, sizeof(*e));
            e->target = ty;
            e->txn = t;
            e->ch = i;
            e->current = ty;
            if ((rc = record_parents(st, evi)))
                return rc;
            if ((rc = snapshot_ids(st, LOOM__SUB_OBSERVE, ty)))
                return rc;
            for (size_t k = 0; k < st->nids; k++) {
                loom__sub s;
                if (find_sub(st->d, st->ids[k], &s))
                    ((loom_observe_fn)s.fn)(s.ud, e, t);
            }
        }
        request_format_cleanup(t, ty);
    }
    return LOOM_OK;
}

/* Groups the changedParentTypes pairs by deep type, keeping event order
 * (a counting sort), and allocates the per-type scratch space. */
static int group_pairs(dispatch *st)
{
    const loom_allocator *a = st->d->a;
    size_t nd = st->t->ndeep, np = st->npairs;
    st->gend = loom__calloc(a, (nd + 1) * sizeof(*st->gend));
    st->order = loom__malloc(a, (np + 1) * sizeof(*st->order));
    st->sorted = loom__malloc(a, (np + 1) * sizeof(*st->sorted));
    st->list = loom__malloc(a, (np + 1) * sizeof(*st->list));
    if (!st->gend || !st->order || !st->sorted || !st->list)
        return LOOM_ENOMEM;
    size_t *next = st->gend; /* next[g] = where group g's next pair goes */
    for (size_t i = 0; i < np; i++)
        next[st->pairs[i].deep + 1]++;
    for (size_t g = 0; g < nd; g++)
        next[g + 1] += next[g];
    for (size_t i = 0; i < np; i++)
        st->order[next[st->pairs[i].deep]++] = st->pairs[i].ev;
    /* every next[g] advanced to the end of group g */
    return LOOM_OK;
}

/* The events recorded on deep type `di`, those whose target still exists,
 * with `ty` as current target, stably sorted by path length (a counting
 * sort: lengths are small integers) into st->list. */
static int sorted_events(dispatch *st, size_t di, loom_type *ty, size_t *out_n)
{
    size_t n = 0, maxdepth = 0;
    for (size_t k = di ? st->gend[di - 1] : 0; k < st->gend[di]; k++) {
        loom_event *e = &st->ev[st->order[k]];
        /* observers may have deleted the target since */
        if (type_gone(e->target))
            continue;
        e->current = ty;
        loom_any_free(e->path); /* relative to the previous current target */
        e->path = NULL;
        st->sorted[n].e = e;
        st->sorted[n].depth = path_depth(e->target, ty);
        if (st->sorted[n].depth > maxdepth)
            maxdepth = st->sorted[n].depth;
        n++;
    }
    if (loom__vec_reserve(st->d->a, (void **)&st->counts, &st->ccap,
                          maxdepth + 2, sizeof(*st->counts)))
        return LOOM_ENOMEM;
    size_t *pos = st->counts;
    memset(pos, 0, (maxdepth + 2) * sizeof(*pos));
    for (size_t k = 0; k < n; k++)
        pos[st->sorted[k].depth + 1]++;
    for (size_t k = 0; k <= maxdepth; k++)
        pos[k + 1] += pos[k];
    for (size_t k = 0; k < n; k++)
        st->list[pos[st->sorted[k].depth]++] = st->sorted[k].e;
    *out_n = n;
    return LOOM_OK;
}

/* The deep-observer pass, in changedParentTypes order. */
static int deep_pass(dispatch *st)
{
    loom_txn *t = st->t;
    int rc = group_pairs(st);
    for (size_t di = 0; di < t->ndeep && !rc; di++) {
        loom_type *ty = t->deep[di];
        if (type_gone(ty))
            continue;
        if ((rc = snapshot_ids(st, LOOM__SUB_OBSERVE_DEEP, ty)) || !st->nids)
            continue;
        size_t n;
        if ((rc = sorted_events(st, di, ty, &n)))
            break;
        /* Yjs calls the listeners even if every event was filtered out */
        for (size_t k = 0; k < st->nids; k++) {
            loom__sub s;
            if (find_sub(st->d, st->ids[k], &s))
                ((loom_observe_deep_fn)s.fn)(
                    s.ud, (const loom_event *const *)st->list, n, t);
        }
    }
    return rc;
}

static void dispatch_free(dispatch *st)
{
    const loom_allocator *a = st->d->a;
    size_t nd = st->t->ndeep, np = st->npairs;
    for (size_t i = 0; st->ev && i < st->nev; i++) {
        loom_any_free(st->ev[i].delta);
        loom_any_free(st->ev[i].keys);
        loom_any_free(st->ev[i].path);
    }
    loom__free(a, st->ev, st->t->nchanged * sizeof(*st->ev));
    loom__u64map_free(&st->deep_idx);
    loom__u64map_free(&st->obs);
    loom__free(a, st->pairs, st->pcap * sizeof(*st->pairs));
    loom__free(a, st->ids, st->icap * sizeof(*st->ids));
    loom__free(a, st->gend, (nd + 1) * sizeof(*st->gend));
    loom__free(a, st->order, (np + 1) * sizeof(*st->order));
    loom__free(a, st->sorted, (np + 1) * sizeof(*st->sorted));
    loom__free(a, st->list, (np + 1) * sizeof(*st->list));
    loom__free(a, st->counts, st->ccap * sizeof(*st->counts));
}

int loom__dispatch_events(loom_doc *d, loom_txn *t)
{
    if (!d->nsubs && t->local)
        return LOOM_OK; /* no observer, no format cleanup to request */
    bool observed = false;
    for (size_t i = 0; i < d->nsubs && !observed; i++)
        observed = d->subs[i].kind == LOOM__SUB_OBSERVE ||
                   d->subs[i].kind == LOOM__SUB_OBSERVE_DEEP;
    if (!observed || !t->nchanged) {
        /* nobody listens: only the formatting request, which is cheap */
        request_all_format_cleanups(t);
        return LOOM_OK;
    }
    dispatch st;
    memset(&st, 0, sizeof(st));
    st.d = d;
    st.t = t;
    loom__u64map_init(&st.deep_idx, d->a);
    loom__u64map_init(&st.obs, d->a);
    /* one slot per changed type, allocated once: callbacks hold pointers */
    st.ev = loom__malloc(d->a, t->nchanged * sizeof(*st.ev));
    int rc = st.ev ? observe_pass(&st) : LOOM_ENOMEM;
    if (!rc) {
        rc = deep_pass(&st);
    } else {
        /* the request must not depend on the observers' success */
        request_all_format_cleanups(t);
    }
    dispatch_free(&st);
    return rc;
}
