/*
 * marker.c: search markers, the position cache of sequences. A marker is a
 * visible, countable item and the visible index where it starts. Lookups
 * start from the nearest marker instead of the first item, so editing at
 * one or a few cursors costs the distance from the last lookup, not the
 * length of the document. Local operations shift markers by the units they
 * insert or delete (their index is known); any other change to a sequence
 * (remote updates, cascades into nested types) clears that sequence's
 * markers, as Yjs does. Markers only decide where a walk starts, never its
 * result.
 */
#include "crdt/crdt.h"

static bool usable(const loom__item *it)
{
    return it && !loom__item_deleted(it) && loom__item_countable(it);
}

/* An item carries LOOM__F_MARKER exactly while one marker names it (never
 * two), so that forgetting or merging an unmarked item costs nothing. */
static void drop(loom_type *t, uint8_t i)
{
    t->mk[i].item->flags &= (uint8_t)~LOOM__F_MARKER;
    t->mk[i] = t->mk[--t->nmk];
    if (t->mk_hot == i)
        t->mk_hot = LOOM__NMARK;
    else if (t->mk_hot == t->nmk)
        t->mk_hot = i;
}

void loom__markers_clear(loom_type *t)
{
    for (uint8_t i = 0; i < t->nmk; i++)
        t->mk[i].item->flags &= (uint8_t)~LOOM__F_MARKER;
    t->nmk = 0;
    t->mk_hot = LOOM__NMARK;
}

void loom__markers_forget(loom_type *t, const loom__item *it)
{
    if (!(it->flags & LOOM__F_MARKER))
        return;
    for (uint8_t i = t->nmk; i-- > 0;) {
        if (t->mk[i].item == it) {
            drop(t, i);
            return;
        }
    }
}

void loom__markers_merged(loom_type *t,
                          const loom__item *right,
                          loom__item *left)
{
    if (!(right->flags & LOOM__F_MARKER))
        return;
    for (uint8_t i = 0; i < t->nmk; i++) {
        if (t->mk[i].item != right)
            continue;
        /* left may carry a marker already: keep one */
        if (!usable(left) || t->mk[i].index < left->len ||
            (left->flags & LOOM__F_MARKER)) {
            drop(t, i);
            return;
        }
        t->mk[i].item->flags &= (uint8_t)~LOOM__F_MARKER;
        t->mk[i].item = left;
        t->mk[i].index -= left->len;
        left->flags |= LOOM__F_MARKER;
        return;
    }
}

void loom__markers_shift(loom_type *t, uint64_t from, int64_t delta)
{
    if (delta >= 0 || from >= (uint64_t)-delta) {
        /* no marker can fall below 0: branch-free */
        for (uint8_t i = 0; i < t->nmk; i++) {
            uint64_t x = t->mk[i].index;
            t->mk[i].index = x >= from ? x + (uint64_t)delta : x;
        }
        return;
    }
    for (uint8_t i = t->nmk; i-- > 0;) {
        loom__marker *m = &t->mk[i];
        if (m->index < from)
            continue;
        if (delta < 0 && m->index < (uint64_t)-delta) {
            drop(t, i);
            continue;
        }
        m->index = (uint64_t)((int64_t)m->index + delta);
    }
}

void loom__markers_changed(loom_txn *txn,
                           loom_type *t,
                           const loom__item *it,
                           bool deleting)
{
    if (!t->nmk)
        return;
    if (txn->local && txn->mk_type == t) {
        /* the running operation shifts the others */
        if (deleting)
            loom__markers_forget(t, it);
        return;
    }
    loom__markers_clear(t);
}

bool loom__markers_find(loom_type *t,
                        uint64_t target,
                        loom__item **item,
                        uint64_t *start)
{
    if (!target)
        return false;
    int best;
    if (t->mk_hot < t->nmk) {
        /* typing: the target is usually inside or at the end of the item
         * the last operation noted */
        const loom__marker *h = &t->mk[t->mk_hot];
        if (h->index < target && usable(h->item) &&
            target - h->index <= h->item->len && h->item->parent == t) {
            *item = h->item;
            *start = h->index;
            return true;
        }
    }
    for (;;) {
        /* the nearest by index; only that one is checked */
        best = -1;
        uint64_t bestd = target; /* walking from the start costs `target` */
        for (uint8_t i = 0; i < t->nmk; i++) {
            uint64_t mi = t->mk[i].index;
            uint64_t d = mi > target ? mi - target : target - mi;
            if (d < bestd) {
                bestd = d;
                best = i;
            }
        }
        if (best < 0)
            return false;
        const loom__item *bi = t->mk[best].item;
        if (usable(bi) && bi->parent == t)
            break;
        drop(t, (uint8_t)best);
    }
    loom__marker *m = &t->mk[best];
    m->used = ++t->mk_clock;
    t->mk_hot = (uint8_t)best;
    loom__item *p = m->item;
    uint64_t idx = m->index;
    /* the walk needs an item starting strictly before the target */
    while (idx >= target) {
        p = p->left;
        if (!p)
            return false;
        if (usable(p))
            idx -= p->len;
    }
    *item = p;
    *start = idx;
    return true;
}

void loom__markers_note(loom_type *t, loom__item *it, uint64_t index)
{
    if (!usable(it))
        return;
    if (it->flags & LOOM__F_MARKER) {
        uint8_t h = t->mk_hot;
        for (uint8_t k = 0; k <= t->nmk; k++) {
            uint8_t i = k ? k - 1 : h; /* the hot one first */
            if (i < t->nmk && t->mk[i].item == it) {
                t->mk[i].index = index;
                t->mk[i].used = ++t->mk_clock;
                t->mk_hot = i;
                return;
            }
        }
    }
    /* replace a marker near index, else the least recently used one when
     * all are taken, else add one */
    uint64_t near = t->length / LOOM__NMARK;
    int victim = -1;
    uint64_t oldest = UINT64_MAX;
    bool close = false;
    for (uint8_t i = 0; i < t->nmk; i++) {
        loom__marker *m = &t->mk[i];
        uint64_t d = m->index > index ? m->index - index : index - m->index;
        if (d <= near) {
            victim = i;
            close = true;
            break;
        }
        if (m->used < oldest) {
            oldest = m->used;
            victim = i;
        }
    }
    if (victim < 0 || (!close && t->nmk < LOOM__NMARK))
        victim = t->nmk++;
    else
        t->mk[victim].item->flags &= (uint8_t)~LOOM__F_MARKER;
    t->mk[victim].item = it;
    t->mk[victim].index = index;
    t->mk[victim].used = ++t->mk_clock;
    t->mk_hot = (uint8_t)victim;
    it->flags |= LOOM__F_MARKER;
}
