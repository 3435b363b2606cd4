/*
 * merge.c: mergeUpdates without a document (spec §4.4), following the
 * structure of yjs's mergeUpdatesV2 step by step, because its output depends
 * on that structure and not only on the set of structs.
 *
 * One cursor per input (Skips dropped). On every step the cursors are sorted
 * by their current struct: higher client first, then lower clock, then a
 * non-Skip before a Skip. The first cursor's struct is then skipped (already
 * written), sliced (overlapping what was written), preceded by a Skip (gap),
 * merged into the pending struct (GC+GC) or written.
 *
 * The sort is the delicate part. yjs calls Array.prototype.sort with a
 * comparator that is not consistent when a GC and an Item start at the same
 * ID in two inputs (it answers "first" both ways round), so the order V8's
 * TimSort leaves them in depends on the exact comparisons it makes, and that
 * order decides which copy is written. While such a tie exists anywhere among
 * the cursors we therefore keep yjs's array and run a transcription of V8's
 * sort on it every step (CountAndMakeRun + BinaryInsertionSort, merges with
 * galloping above 64 elements), as yjs does. Otherwise the comparator is a
 * consistent total preorder, the result is the unique stable order, and
 * since only the first cursor moves between steps a heap gives the same
 * order in O(log n) per step. This matches Node/Chrome; engines whose sort
 * is a different algorithm (SpiderMonkey, JavaScriptCore) give other bytes
 * for such ties in yjs itself.
 */
#include <stdlib.h>
#include <string.h>

#include "codec/codec_int.h"

/*
 * A cursor of mergeUpdates plus what keeping the order needs: a tag that
 * orders cursors with equal keys in heap mode, and the (key, kind) under
 * which the cursor is counted in the tie table.
 */
typedef struct mcur {
    loom__cursor c;
    int64_t tag;
    bool counted;
    uint8_t kind;
    uint64_t client, clock;
} mcur;

typedef mcur *elem;

/* The comparator yjs passes to sort(): negative means a before b. */
static int js_cmp(const mcur *a, const mcur *b)
{
    const loom__view *x = &a->c.curr, *y = &b->c.curr;
    if (x->client == y->client) {
        if (x->clock == y->clock) {
            if (x->kind == y->kind) {
                return 0;
            }
            return x->kind == LOOM__KIND_SKIP ? 1 : -1;
        }
        return x->clock < y->clock ? -1 : 1;
    }
    return y->client < x->client ? -1 : 1;
}

/* The order the comparator means when it is consistent: by key only. */
static bool key_less(const loom__view *x, const loom__view *y)
{
    return x->client > y->client ||
           (x->client == y->client && x->clock < y->clock);
}

static bool key_eq(const loom__view *x, const loom__view *y)
{
    return x->client == y->client && x->clock == y->clock;
}

/* Heap order: by key, then by tag. */
static bool heap_less(const mcur *a, const mcur *b)
{
    if (key_eq(&a->c.curr, &b->c.curr)) {
        return a->tag < b->tag;
    }
    return key_less(&a->c.curr, &b->c.curr);
}

static int heap_cmp(const void *pa, const void *pb)
{
    const mcur *a = *(const elem *)pa, *b = *(const elem *)pb;
    return heap_less(a, b) ? -1 : heap_less(b, a);
}

static int key_cmp(const void *pa, const void *pb)
{
    const loom__view *a = &(*(const elem *)pa)->c.curr;
    const loom__view *b = &(*(const elem *)pb)->c.curr;
    return key_less(a, b) ? -1 : key_less(b, a);
}

/* ---- V8 TimSort (third_party/v8/builtins/array-sort.tq) ---------------- */

/*
 * A transcription of V8's Array.prototype.sort for arrays of objects, so that
 * an inconsistent comparator leads to the same permutation. Scratch space for
 * merges is `tmp` (n elements).
 */
typedef struct tsort {
    elem *a;
    elem *tmp;
    size_t min_gallop;
    size_t run_base[85], run_len[85];
    size_t nruns;
} tsort;

static size_t count_and_make_run(elem *a, size_t low_arg, size_t high)
{
    size_t low = low_arg + 1;
    if (low == high) {
        return 1;
    }
    size_t run = 2;
    bool descending = js_cmp(a[low], a[low - 1]) < 0;
    elem prev = a[low];
    for (size_t idx = low + 1; idx < high; idx++) {
        int order = js_cmp(a[idx], prev);
        if (descending ? order >= 0 : order < 0) {
            break;
        }
        prev = a[idx];
        run++;
    }
    if (descending) {
        for (size_t i = low_arg, j = low_arg + run - 1; i < j; i++, j--) {
            elem t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
    return run;
}

static void
binary_insertion_sort(elem *a, size_t low, size_t start, size_t high)
{
    if (low == start) {
        start++;
    }
    for (; start < high; start++) {
        size_t left = low, right = start;
        elem pivot = a[start];
        while (left < right) {
            size_t mid = left + ((right - left) >> 1);
            if (js_cmp(pivot, a[mid]) < 0) {
                right = mid;
            } else {
                left = mid + 1;
            }
        }
        for (size_t p = start; p > left; p--) {
            a[p] = a[p - 1];
        }
        a[left] = pivot;
    }
}

static size_t min_run_length(size_t n)
{
    size_t r = 0;
    while (n >= 64) {
        r |= n & 1;
        n >>= 1;
    }
    return n + r;
}

/*
 * GallopLeft: the position k in [base, base+len) where key belongs, with
 * a[k-1] < key <= a[k], starting the search at base+hint.
 */
static size_t
gallop_left(elem *a, elem key, size_t base, size_t len, size_t hint)
{
    size_t last_ofs = 0, ofs = 1;
    if (js_cmp(a[base + hint], key) < 0) {
        /* a[hint] < key: gallop right until a[hint+last_ofs] < key <= a[hint+ofs]. */
        size_t max_ofs = len - hint;
        while (ofs < max_ofs) {
            if (js_cmp(a[base + hint + ofs], key) >= 0) {
                break;
            }
            last_ofs = ofs;
            ofs = (ofs << 1) + 1;
        }
        if (ofs > max_ofs) {
            ofs = max_ofs;
        }
        last_ofs += hint;
        ofs += hint;
    } else {
        /* key <= a[hint]: gallop left until a[hint-ofs] < key <= a[hint-last_ofs]. */
        size_t max_ofs = hint + 1;
        while (ofs < max_ofs) {
            if (js_cmp(a[base + hint - ofs], key) < 0) {
                break;
            }
            last_ofs = ofs;
            ofs = (ofs << 1) + 1;
        }
        if (ofs > max_ofs) {
            ofs = max_ofs;
        }
        /* JS: last_ofs = hint - ofs (may be -1), then ++ before the search. */
        size_t lo = hint + 1 - ofs, hi = hint - last_ofs;
        while (lo < hi) {
            size_t m = lo + ((hi - lo) >> 1);
            if (js_cmp(a[base + m], key) < 0) {
                lo = m + 1;
            } else {
                hi = m;
            }
        }
        return hi;
    }
    /* a[last_ofs] < key <= a[ofs]: binary search in (last_ofs, ofs]. */
    last_ofs++;
    while (last_ofs < ofs) {
        size_t m = last_ofs + ((ofs - last_ofs) >> 1);
        if (js_cmp(a[base + m], key) < 0) {
            last_ofs = m + 1;
        } else {
            ofs = m;
        }
    }
    return ofs;
}

/*
 * GallopRight: like gallop_left, but the position after all elements equal
 * to key: a[k-1] <= key < a[k].
 */
static size_t
gallop_right(elem *a, elem key, size_t base, size_t len, size_t hint)
{
    size_t last_ofs = 0, ofs = 1;
    if (js_cmp(key, a[base + hint]) < 0) {
        /* key < a[hint]: gallop left until a[hint-ofs] <= key < a[hint-last_ofs]. */
        size_t max_ofs = hint + 1;
        while (ofs < max_ofs) {
            if (js_cmp(key, a[base + hint - ofs]) >= 0) {
                break;
            }
            last_ofs = ofs;
            ofs = (ofs << 1) + 1;
        }
        if (ofs > max_ofs) {
            ofs = max_ofs;
        }
        size_t lo = hint + 1 - ofs,
               hi = hint - last_ofs; /* search (lo-1, hi] */
        while (lo < hi) {
            size_t m = lo + ((hi - lo) >> 1);
            if (js_cmp(key, a[base + m]) < 0) {
                hi = m;
            } else {
                lo = m + 1;
            }
        }
        return hi;
    }
    /* a[hint] <= key: gallop right until a[hint+last_ofs] <= key < a[hint+ofs]. */
    size_t max_ofs = len - hint;
    while (ofs < max_ofs) {
        if (js_cmp(key, a[base + hint + ofs]) < 0) {
            break;
        }
        last_ofs = ofs;
        ofs = (ofs << 1) + 1;
    }
    if (ofs > max_ofs) {
        ofs = max_ofs;
    }
    last_ofs += hint + 1;
    ofs += hint;
    while (last_ofs < ofs) {
        size_t m = last_ofs + ((ofs - last_ofs) >> 1);
        if (js_cmp(key, a[base + m]) < 0) {
            ofs = m;
        } else {
            last_ofs = m + 1;
        }
    }
    return ofs;
}

#define MIN_GALLOP 7

/* MergeLow and MergeHigh are long; they are kept in one piece each so that
 * they can be compared with array-sort.tq line by line. */
// NOLINTBEGIN(readability-function-size)

/* MergeLow: merges [base_a, +len_a) and [base_b, +len_b) with len_a <= len_b,
 * copying run A to tmp. */
static void
merge_low(tsort *ts, size_t base_a, size_t len_a, size_t base_b, size_t len_b)
{
    elem *a = ts->a, *t = ts->tmp;
    memcpy(t, a + base_a, len_a * sizeof(elem));
    size_t dest = base_a, cursor_temp = 0, cursor_b = base_b;
    a[dest++] = a[cursor_b++];
    if (--len_b == 0) {
        goto succeed;
    }
    if (len_a == 1) {
        goto copy_b;
    }
    size_t min_gallop = ts->min_gallop;
    for (;;) {
        size_t nof_wins_a = 0, nof_wins_b = 0;
        /* Straightforward merge until one run wins consistently. */
        for (;;) {
            if (js_cmp(a[cursor_b], t[cursor_temp]) < 0) {
                a[dest++] = a[cursor_b++];
                nof_wins_b++;
                len_b--;
                nof_wins_a = 0;
                if (len_b == 0) {
                    goto succeed;
                }
                if (nof_wins_b >= min_gallop) {
                    break;
                }
            } else {
                a[dest++] = t[cursor_temp++];
                nof_wins_a++;
                len_a--;
                nof_wins_b = 0;
                if (len_a == 1) {
                    goto copy_b;
                }
                if (nof_wins_a >= min_gallop) {
                    break;
                }
            }
        }
        /* Galloping. */
        min_gallop++;
        bool first_iteration = true;
        while (nof_wins_a >= MIN_GALLOP || nof_wins_b >= MIN_GALLOP ||
               first_iteration) {
            first_iteration = false;
            min_gallop = min_gallop > 2 ? min_gallop - 1 : 1;
            ts->min_gallop = min_gallop;
            nof_wins_a = gallop_right(t, a[cursor_b], cursor_temp, len_a, 0);
            if (nof_wins_a > 0) {
                memmove(a + dest, t + cursor_temp, nof_wins_a * sizeof(elem));
                dest += nof_wins_a;
                cursor_temp += nof_wins_a;
                len_a -= nof_wins_a;
                if (len_a == 1) {
                    goto copy_b;
                }
                if (len_a == 0) {
                    goto succeed;
                }
            }
            a[dest++] = a[cursor_b++];
            if (--len_b == 0) {
                goto succeed;
            }
            nof_wins_b = gallop_left(a, t[cursor_temp], cursor_b, len_b, 0);
            if (nof_wins_b > 0) {
                memmove(a + dest, a + cursor_b, nof_wins_b * sizeof(elem));
                dest += nof_wins_b;
                cursor_b += nof_wins_b;
                len_b -= nof_wins_b;
                if (len_b == 0) {
                    goto succeed;
                }
            }
            a[dest++] = t[cursor_temp++];
            if (--len_a == 1) {
                goto copy_b;
            }
        }
        min_gallop++;
        ts->min_gallop = min_gallop;
    }
succeed:
    if (len_a > 0) {
        memcpy(a + dest, t + cursor_temp, len_a * sizeof(elem));
    }
    return;
copy_b:
    memmove(a + dest, a + cursor_b, len_b * sizeof(elem));
    a[dest + len_b] = t[cursor_temp];
}

/* MergeHigh: the same with len_a >= len_b, copying run B to tmp and merging
 * from the right. */
static void
merge_high(tsort *ts, size_t base_a, size_t len_a, size_t base_b, size_t len_b)
{
    elem *a = ts->a, *t = ts->tmp;
    memcpy(t, a + base_b, len_b * sizeof(elem));
    /* Indices are kept one past the element ("+1") to stay unsigned. */
    size_t dest = base_b + len_b;     /* one past the next slot */
    size_t cursor_temp = len_b;       /* one past */
    size_t cursor_a = base_a + len_a; /* one past */
    a[--dest] = a[--cursor_a];
    if (--len_a == 0) {
        goto succeed;
    }
    if (len_b == 1) {
        goto copy_a;
    }
    size_t min_gallop = ts->min_gallop;
    for (;;) {
        size_t nof_wins_a = 0, nof_wins_b = 0;
        for (;;) {
            if (js_cmp(t[cursor_temp - 1], a[cursor_a - 1]) < 0) {
                a[--dest] = a[--cursor_a];
                nof_wins_a++;
                len_a--;
                nof_wins_b = 0;
                if (len_a == 0) {
                    goto succeed;
                }
                if (nof_wins_a >= min_gallop) {
                    break;
                }
            } else {
                a[--dest] = t[--cursor_temp];
                nof_wins_b++;
                len_b--;
                nof_wins_a = 0;
                if (len_b == 1) {
                    goto copy_a;
                }
                if (nof_wins_b >= min_gallop) {
                    break;
                }
            }
        }
        min_gallop++;
        bool first_iteration = true;
        while (nof_wins_a >= MIN_GALLOP || nof_wins_b >= MIN_GALLOP ||
               first_iteration) {
            first_iteration = false;
            min_gallop = min_gallop > 2 ? min_gallop - 1 : 1;
            ts->min_gallop = min_gallop;
            size_t k =
                gallop_right(a, t[cursor_temp - 1], base_a, len_a, len_a - 1);
            nof_wins_a = len_a - k;
            if (nof_wins_a > 0) {
                dest -= nof_wins_a;
                cursor_a -= nof_wins_a;
                memmove(a + dest, a + cursor_a, nof_wins_a * sizeof(elem));
                len_a -= nof_wins_a;
                if (len_a == 0) {
                    goto succeed;
                }
            }
            a[--dest] = t[--cursor_temp];
            if (--len_b == 1) {
                goto copy_a;
            }
            k = gallop_left(t, a[cursor_a - 1], 0, len_b, len_b - 1);
            nof_wins_b = len_b - k;
            if (nof_wins_b > 0) {
                dest -= nof_wins_b;
                cursor_temp -= nof_wins_b;
                memmove(a + dest, t + cursor_temp, nof_wins_b * sizeof(elem));
                len_b -= nof_wins_b;
                if (len_b == 1) {
                    goto copy_a;
                }
                if (len_b == 0) {
                    goto succeed;
                }
            }
            a[--dest] = a[--cursor_a];
            if (--len_a == 0) {
                goto succeed;
            }
        }
        min_gallop++;
        ts->min_gallop = min_gallop;
    }
succeed:
    if (len_b > 0) {
        memcpy(a + dest - len_b, t, len_b * sizeof(elem));
    }
    return;
copy_a:
    dest -= len_a;
    cursor_a -= len_a;
    memmove(a + dest, a + cursor_a, len_a * sizeof(elem));
    a[dest - 1] = t[cursor_temp - 1];
}

// NOLINTEND(readability-function-size)

/* MergeAt: merges runs i and i+1 of the stack. */
static void merge_at(tsort *ts, size_t i)
{
    size_t base_a = ts->run_base[i], len_a = ts->run_len[i];
    size_t base_b = ts->run_base[i + 1], len_b = ts->run_len[i + 1];
    ts->run_len[i] = len_a + len_b;
    if (i + 3 == ts->nruns) {
        ts->run_base[i + 1] = ts->run_base[i + 2];
        ts->run_len[i + 1] = ts->run_len[i + 2];
    }
    ts->nruns--;
    /* Where does b's first element go in a? Elements before it are in place. */
    size_t k = gallop_right(ts->a, ts->a[base_b], base_a, len_a, 0);
    base_a += k;
    len_a -= k;
    if (len_a == 0) {
        return;
    }
    /* Where does a's last element go in b? Elements after it are in place. */
    len_b =
        gallop_left(ts->a, ts->a[base_a + len_a - 1], base_b, len_b, len_b - 1);
    if (len_b == 0) {
        return;
    }
    if (len_a <= len_b) {
        merge_low(ts, base_a, len_a, base_b, len_b);
    } else {
        merge_high(ts, base_a, len_a, base_b, len_b);
    }
}

static void merge_collapse(tsort *ts)
{
    while (ts->nruns > 1) {
        size_t n = ts->nruns - 2;
        size_t *len = ts->run_len;
        if ((n >= 1 && len[n - 1] <= len[n] + len[n + 1]) ||
            (n >= 2 && len[n - 2] <= len[n] + len[n - 1])) {
            if (len[n - 1] < len[n + 1]) {
                n--;
            }
        } else if (len[n] > len[n + 1]) {
            break;
        }
        merge_at(ts, n);
    }
}

static void merge_force_collapse(tsort *ts)
{
    while (ts->nruns > 1) {
        size_t n = ts->nruns - 2;
        if (n > 0 && ts->run_len[n - 1] < ts->run_len[n + 1]) {
            n--;
        }
        merge_at(ts, n);
    }
}

/* Array.prototype.sort(js_cmp) on v[0..n); tmp holds n elements. */
static void js_sort(elem *v, size_t n, elem *tmp)
{
    if (n < 2) {
        return;
    }
    tsort ts;
    ts.a = v;
    ts.tmp = tmp;
    ts.min_gallop = MIN_GALLOP;
    ts.nruns = 0;
    size_t low = 0, remaining = n;
    size_t min_run = min_run_length(n);
    while (remaining != 0) {
        size_t run = count_and_make_run(v, low, low + remaining);
        if (run < min_run) {
            size_t forced = min_run < remaining ? min_run : remaining;
            binary_insertion_sort(v, low, low + run, low + forced);
            run = forced;
        }
        ts.run_base[ts.nruns] = low;
        ts.run_len[ts.nruns] = run;
        ts.nruns++;
        merge_collapse(&ts);
        low += run;
        remaining -= run;
    }
    merge_force_collapse(&ts);
}

/* ---- keeping the cursors in yjs's order --------------------------------- */

/*
 * Tie table: for every (client, clock) that some cursor is at, how many
 * cursors are at a GC and how many at an Item there. `mixed` counts the keys
 * with both, i.e. whether yjs's comparator is inconsistent on the current
 * set. Open addressing with linear probing and backward-shift deletion; the
 * capacity is at least twice the number of cursors, so it never fills.
 */
typedef struct tie_entry {
    uint64_t client, clock;
    uint32_t gc, item;
    bool used;
} tie_entry;

typedef struct ties {
    tie_entry *t;
    size_t cap; /* power of two */
    size_t mixed;
} ties;

static size_t tie_slot(const ties *t, uint64_t client, uint64_t clock)
{
    uint64_t h = client * 0x9e3779b97f4a7c15ULL ^ clock * 0xc2b2ae3d27d4eb4fULL;
    h ^= h >> 29;
    return (size_t)h & (t->cap - 1);
}

static void
tie_change(ties *t, uint64_t client, uint64_t clock, uint8_t kind, bool add)
{
    size_t i = tie_slot(t, client, clock);
    while (t->t[i].used &&
           (t->t[i].client != client || t->t[i].clock != clock)) {
        i = (i + 1) & (t->cap - 1);
    }
    tie_entry *e = &t->t[i];
    if (!e->used) {
        e->used = true;
        e->client = client;
        e->clock = clock;
        e->gc = 0;
        e->item = 0;
    }
    bool was = e->gc > 0 && e->item > 0;
    uint32_t *cnt = kind == LOOM__KIND_GC ? &e->gc : &e->item;
    *cnt = add ? *cnt + 1 : *cnt - 1;
    bool now = e->gc > 0 && e->item > 0;
    t->mixed = t->mixed + now - was;
    if (e->gc > 0 || e->item > 0) {
        return;
    }
    /* Backward-shift deletion keeps every probe sequence unbroken. */
    size_t hole = i;
    e->used = false;
    for (size_t j = (hole + 1) & (t->cap - 1); t->t[j].used;
         j = (j + 1) & (t->cap - 1)) {
        size_t home = tie_slot(t, t->t[j].client, t->t[j].clock);
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays =
            hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            t->t[hole] = t->t[j];
            t->t[j].used = false;
            hole = j;
        }
    }
}

/* Re-registers a cursor under its current struct (or none at the end). */
static void track(ties *t, mcur *x)
{
    if (x->counted) {
        tie_change(t, x->client, x->clock, x->kind, false);
        x->counted = false;
    }
    if (x->c.has) {
        x->client = x->c.curr.client;
        x->clock = x->c.curr.clock;
        x->kind = x->c.curr.kind;
        tie_change(t, x->client, x->clock, x->kind, true);
        x->counted = true;
    }
}

typedef struct order {
    elem *v; /* the cursors with a current struct */
    size_t n;
    elem *tmp;
    ties ties;
    bool heap; /* v is a binary heap by (key, tag), else yjs's array */
    bool started;
    int64_t next_tag; /* decreasing: a moved cursor goes before its equals */
} order;

static void sift_down(elem *v, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && heap_less(v[l], v[m])) {
            m = l;
        }
        if (l + 1 < n && heap_less(v[l + 1], v[m])) {
            m = l + 1;
        }
        if (m == i) {
            return;
        }
        elem t = v[i];
        v[i] = v[m];
        v[m] = t;
        i = m;
    }
}

/*
 * The filter + sort at the top of yjs's loop; afterwards v[0] is the cursor
 * yjs would take. Between two calls only v[0] moves (it is the only cursor
 * advanced), so while the comparator is consistent, yjs's stable sort of
 * [v0, rest...] only puts v0 in front of the cursors with its key: a heap by
 * (key, tag) where a moved cursor gets a tag below all others does the same
 * in O(log n). While GC/Item ties exist, v holds yjs's array order and V8's
 * sort is run on it every step, as yjs does.
 */
static void reorder(order *o)
{
    if (!o->started) {
        size_t k = 0;
        for (size_t i = 0; i < o->n; i++) {
            track(&o->ties, o->v[i]);
            if (o->v[i]->c.has) {
                o->v[k++] = o->v[i];
            }
        }
        o->n = k;
        o->started = true;
        o->next_tag = -1;
        if (o->ties.mixed > 0) {
            o->heap = false;
            js_sort(o->v, o->n, o->tmp);
            return;
        }
        /* A sorted array is a heap. */
        loom__stable_sort(o->v, o->n, sizeof(elem), key_cmp, o->tmp);
        for (size_t i = 0; i < o->n; i++) {
            o->v[i]->tag = (int64_t)i;
        }
        o->heap = true;
        return;
    }
    if (o->n == 0) {
        return;
    }
    elem x = o->v[0];
    track(&o->ties, x);
    if (o->ties.mixed == 0) {
        if (!o->heap) {
            /* v[1..n) is sorted: number it, and it is a heap below v[0]. */
            for (size_t i = 1; i < o->n; i++) {
                o->v[i]->tag = (int64_t)i;
            }
            o->heap = true;
        }
        if (!x->c.has) {
            o->v[0] = o->v[--o->n];
        } else {
            x->tag = o->next_tag--;
        }
        sift_down(o->v, o->n, 0);
        return;
    }
    if (o->heap) {
        /* yjs's array is [x, the others in order]. */
        qsort(o->v + 1, o->n - 1, sizeof(elem), heap_cmp);
        o->heap = false;
    }
    if (!x->c.has) {
        memmove(o->v, o->v + 1, (o->n - 1) * sizeof(elem));
        o->n--;
    }
    js_sort(o->v, o->n, o->tmp);
}

/* ---- the merge ---------------------------------------------------------- */

static bool merge_with(loom__view *w, const loom__view *v)
{
    /* GC.mergeWith / Skip.mergeWith; Item.mergeWith needs list neighbours
     * that decoded items do not have, so items never merge. */
    if (w->kind == v->kind && w->kind != LOOM__KIND_ITEM) {
        w->len += v->len;
        return true;
    }
    return false;
}

static void slice(loom__view *v, uint64_t diff)
{
    v->clock += diff;
    v->len -= diff;
    if (v->kind == LOOM__KIND_ITEM) {
        v->off += diff;
    }
}

static int merge_structs(order *o, loom__lazy_writer *lw)
{
    loom__view w;
    bool have_w = false;
    int rc = LOOM_OK;
    for (;;) {
        reorder(o);
        if (o->n == 0) {
            break;
        }
        loom__cursor *d = &o->v[0]->c;
        uint64_t first_client = d->curr.client;
        if (have_w) {
            bool iterated = false;
            /* Skip what was written already (from higher clients as well:
             * yjs compares the client with >=). */
            while (d->has && d->curr.clock + d->curr.len <= w.clock + w.len &&
                   d->curr.client >= w.client) {
                loom__cursor_next(d);
                iterated = true;
            }
            if (!d->has || d->curr.client != first_client ||
                (iterated && d->curr.clock > w.clock + w.len)) {
                continue;
            }
            loom__view curr = d->curr;
            if (first_client != w.client) {
                rc = loom__lazy_write(lw, &w, 0);
                w = curr;
                loom__cursor_next(d);
            } else if (w.clock + w.len < curr.clock) {
                if (w.kind == LOOM__KIND_SKIP) {
                    /* yjs extends the Skip over curr as well. */
                    w.len = curr.clock + curr.len - w.clock;
                } else {
                    rc = loom__lazy_write(lw, &w, 0);
                    uint64_t end = w.clock + w.len;
                    w.kind = LOOM__KIND_SKIP;
                    w.clock = end;
                    w.len = curr.clock - end;
                    w.src = NULL;
                    w.off = 0;
                }
            } else {
                uint64_t diff = w.clock + w.len - curr.clock;
                if (diff > 0) {
                    if (w.kind == LOOM__KIND_SKIP) {
                        w.len -= diff;
                    } else {
                        slice(&curr, diff);
                    }
                }
                if (!merge_with(&w, &curr)) {
                    rc = loom__lazy_write(lw, &w, 0);
                    w = curr;
                    loom__cursor_next(d);
                }
            }
        } else {
            w = d->curr;
            have_w = true;
            loom__cursor_next(d);
        }
        while (!rc && d->has && d->curr.client == first_client &&
               d->curr.clock == w.clock + w.len &&
               d->curr.kind != LOOM__KIND_SKIP) {
            rc = loom__lazy_write(lw, &w, 0);
            w = d->curr;
            loom__cursor_next(d);
        }
        if (rc) {
            return rc;
        }
    }
    return have_w ? loom__lazy_write(lw, &w, 0) : LOOM_OK;
}

int loom__merge_parsed(const loom__rupdate *const *ups, size_t n, loom_buf *out)
{
    const loom_allocator *a = out->alloc;
    mcur *cur = NULL;
    elem *v = NULL, *tmp = NULL;
    loom__lazy_writer lw;
    loom__ds ds;
    loom__lazy_init(&lw, a);
    loom__ds_init(&ds, a);
    order o;
    memset(&o, 0, sizeof(o));
    int rc = LOOM_OK;
    if (n > SIZE_MAX / (4 * sizeof(tie_entry))) {
        return LOOM_ENOMEM;
    }
    if (n > 0) {
        o.ties.cap = 4;
        while (o.ties.cap < 2 * n) {
            o.ties.cap *= 2;
        }
        cur = loom__calloc(a, n * sizeof(*cur));
        v = loom__malloc(a, n * sizeof(elem));
        tmp = loom__malloc(a, n * sizeof(elem));
        o.ties.t = loom__calloc(a, o.ties.cap * sizeof(*o.ties.t));
        if (!cur || !v || !tmp || !o.ties.t) {
            rc = LOOM_ENOMEM;
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        loom__cursor_init(&cur[i].c, ups[i], true);
        v[i] = &cur[i];
    }
    o.v = v;
    o.n = n;
    o.tmp = tmp;
    rc = merge_structs(&o, &lw);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = loom__ds_merge_into(&ds, &ups[i]->ds);
    }
    if (!rc) {
        loom__ds_normalize(&ds);
        rc = loom__lazy_finish(&lw, &ds, out);
    }
done:
    loom__free(a, cur, n * sizeof(*cur));
    loom__free(a, v, n * sizeof(elem));
    loom__free(a, tmp, n * sizeof(elem));
    loom__free(a, o.ties.t, o.ties.cap * sizeof(*o.ties.t));
    loom__lazy_free(&lw);
    loom__ds_free(&ds);
    return rc;
}
