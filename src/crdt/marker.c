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
 *
 * Shifts are applied lazily: typing shifts every marker after the cursor
 * by one unit per keystroke, and consecutive shifts at the cursor add up to
 * one pending (from, delta) that the markers' readers take into account;
 * it is applied to the stored indices only when a shift elsewhere comes.
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
    t->mk_pdelta = 0;
}

/* The index of marker i (with the pending shift). */
static uint64_t mk_index(const loom_type *t, uint8_t i)
{
    uint64_t x = t->mk[i].index;
    return x >= t->mk_pfrom ? x + (uint64_t)t->mk_pdelta : x;
}

/* Applies the pending shift to the stored indices. */
static void settle(loom_type *t)
{
    if (!t->mk_pdelta)
        return;
    for (uint8_t i = 0; i < t->nmk; i++)
        t->mk[i].index = mk_index(t, i);
    t->mk_pdelta = 0;
}

/* Sets marker i's index. */
static void mk_set_index(loom_type *t, uint8_t i, uint64_t index)
{
    if (t->mk_pdelta) {
        if (index >= t->mk_shi)
            index -= (uint64_t)t->mk_pdelta; /* with the moved markers */
        else if (index >= t->mk_slo)
            settle(t); /* between the two sets: no stored value says it */
    }
    t->mk[i].index = index;
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
    settle(t);
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

/*
 * A shift from anywhere in [mk_slo, mk_shi] moves exactly the markers the
 * pending one moves, so the two add up. A delete's shift comes after the
 * markers on the deleted units were forgotten, so no marker remains in
 * [from - d, from): that is where the two sets may meet.
 */
void loom__markers_shift(loom_type *t, uint64_t from, int64_t delta)
{
    if (!t->nmk || !delta)
        return;
    uint64_t d = delta < 0 ? (uint64_t)-delta : 0;
    if (from < d) {
        /* markers may fall below 0: applied at once, dropping those */
        settle(t);
        for (uint8_t i = t->nmk; i-- > 0;) {
            loom__marker *m = &t->mk[i];
            if (m->index < from)
                continue;
            if (m->index < d) {
                drop(t, i);
                continue;
            }
            m->index -= d;
        }
        return;
    }
    /* A delete just past the moved markers' bound (forward deletes at one
     * index: each shifts from one unit after the last one's bound): no
     * marker lies in [from - d, from), so none in [mk_shi, from) either,
     * and the pending shift moves exactly the markers at >= from. */
    if (t->mk_pdelta && from > t->mk_shi && from - d <= t->mk_shi)
        t->mk_shi = from;
    if (!t->mk_pdelta || from < t->mk_slo || from > t->mk_shi) {
        settle(t);
        t->mk_pfrom = from;
        t->mk_slo = from;
        t->mk_shi = from;
        t->mk_pdelta = 0;
    }
    t->mk_pdelta += delta;
    t->mk_shi += (uint64_t)delta; /* the moved markers' lower bound */
    if (d && from - d < t->mk_slo)
        t->mk_slo = from - d; /* the others: below the deleted units */
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
        uint64_t hi = mk_index(t, t->mk_hot);
        if (hi < target && usable(h->item) && target - hi <= h->item->len &&
            h->item->parent == t) {
            *item = h->item;
            *start = hi;
            return true;
        }
    }
    for (;;) {
        /* the nearest by index; only that one is checked */
        best = -1;
        uint64_t bestd = target; /* walking from the start costs `target` */
        for (uint8_t i = 0; i < t->nmk; i++) {
            uint64_t mi = mk_index(t, i);
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
    uint64_t idx = mk_index(t, (uint8_t)best);
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

loom__item *loom__markers_ending_at(loom_type *t, uint64_t target)
{
    if (t->mk_hot >= t->nmk)
        return NULL;
    loom__item *it = t->mk[t->mk_hot].item;
    if (!usable(it) || it->parent != t ||
        mk_index(t, t->mk_hot) + it->len != target)
        return NULL;
    return it;
}

loom__item *loom__markers_starting_at(loom_type *t, uint64_t target)
{
    if (t->mk_hot >= t->nmk)
        return NULL;
    loom__item *it = t->mk[t->mk_hot].item;
    if (!usable(it) || it->parent != t || mk_index(t, t->mk_hot) != target)
        return NULL;
    return it;
}

void loom__markers_hot_moved(loom_type *t, uint64_t index)
{
    if (t->mk_hot < t->nmk)
        mk_set_index(t, t->mk_hot, index);
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
                mk_set_index(t, i, index);
                t->mk[i].used = ++t->mk_clock;
                t->mk_hot = i;
                return;
            }
        }
    }
    /* replace a marker near index, else the least recently used one when
     * all are taken, else add one */
    /* near: 1/32 of the text, but never more than a few lines, so a long
     * text keeps markers at every place being edited (else walks grow with
     * the length: friendsforever x10 cost 1.14x x1 per edit) */
    uint64_t near = t->length / LOOM__NMARK;
    if (near > 256)
        near = 256;
    int victim = -1;
    uint64_t oldest = UINT64_MAX;
    bool close = false;
    for (uint8_t i = 0; i < t->nmk; i++) {
        loom__marker *m = &t->mk[i];
        uint64_t mi = mk_index(t, i);
        uint64_t d = mi > index ? mi - index : index - mi;
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
    mk_set_index(t, (uint8_t)victim, index);
    t->mk[victim].used = ++t->mk_clock;
    t->mk_hot = (uint8_t)victim;
    it->flags |= LOOM__F_MARKER;
}
