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

static void drop(loom_type *t, uint8_t i)
{
    t->mk[i] = t->mk[--t->nmk];
}

void loom__markers_clear(loom_type *t)
{
    t->nmk = 0;
}

void loom__markers_forget(loom_type *t, const loom__item *it)
{
    for (uint8_t i = t->nmk; i-- > 0;) {
        if (t->mk[i].item == it)
            drop(t, i);
    }
}

void loom__markers_merged(loom_type *t,
                          const loom__item *right,
                          loom__item *left)
{
    for (uint8_t i = 0; i < t->nmk; i++) {
        if (t->mk[i].item != right)
            continue;
        if (!usable(left) || t->mk[i].index < left->len) {
            drop(t, i);
            return;
        }
        t->mk[i].item = left;
        t->mk[i].index -= left->len;
        /* left may carry a marker already: keep one */
        for (uint8_t k = 0; k < t->nmk; k++) {
            if (k != i && t->mk[k].item == left) {
                drop(t, i);
                break;
            }
        }
        return;
    }
}

void loom__markers_shift(loom_type *t, uint64_t from, int64_t delta)
{
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
    if (!target || !t->nmk)
        return false;
    int best = -1;
    uint64_t bestd = target; /* walking from the start costs `target` */
    for (uint8_t i = t->nmk; i-- > 0;) {
        loom__marker *m = &t->mk[i];
        if (!usable(m->item) || m->item->parent != t) {
            drop(t, i);
            best = -1; /* indices moved: rescan */
            bestd = target;
            i = t->nmk;
            continue;
        }
        uint64_t d = m->index > target ? m->index - target : target - m->index;
        if (d < bestd) {
            bestd = d;
            best = i;
        }
    }
    if (best < 0)
        return false;
    loom__marker *m = &t->mk[best];
    m->used = ++t->mk_clock;
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
    uint64_t near = t->length / LOOM__NMARK;
    int victim = -1;
    uint64_t oldest = UINT64_MAX;
    for (uint8_t i = 0; i < t->nmk; i++) {
        loom__marker *m = &t->mk[i];
        uint64_t d = m->index > index ? m->index - index : index - m->index;
        if (m->item == it || d <= near) {
            victim = i;
            break;
        }
        if (m->used < oldest) {
            oldest = m->used;
            victim = i;
        }
    }
    if (victim < 0 ||
        (t->nmk < LOOM__NMARK && t->mk[victim].item != it &&
         (t->mk[victim].index > index ? t->mk[victim].index - index
                                      : index - t->mk[victim].index) > near))
        victim = t->nmk++;
    t->mk[victim].item = it;
    t->mk[victim].index = index;
    t->mk[victim].used = ++t->mk_clock;
}
