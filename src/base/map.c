/*
 * map.c: the two hash maps of the library. loom__u64map maps client ids (and
 * other integers) to pointers; loom__strmap maps byte strings (map keys, root
 * names) to pointers and remembers insertion order, which Yjs exposes (map
 * key order, root order). Both use open addressing with linear probing, a
 * power-of-two table at most 3/4 full (the strmap's index of 4-byte slots
 * at most half full: a map set looks up a key that is usually missing, and
 * a miss probes a 3/4 full table 8 slots on average), and never remove
 * entries.
 *
 * Keys come from untrusted updates, so the hashes mix every input bit; there
 * is no per-process seed, which keeps runs reproducible.
 */
#include <string.h>

#include "base/base.h"

uint64_t loom__hash_bytes(const void *p, size_t n)
{
    return loom__hash_inline(p, n);
}

/* ---- u64map ------------------------------------------------------------ */

void loom__u64map_init(loom__u64map *m, const loom_allocator *a)
{
    memset(m, 0, sizeof(*m));
    m->a = a;
}

void loom__u64map_free(loom__u64map *m)
{
    loom__free(m->a, m->keys, m->cap * sizeof(*m->keys));
    loom__free(m->a, m->vals, m->cap * sizeof(*m->vals));
    loom__free(m->a, m->used, m->cap);
    m->keys = NULL;
    m->vals = NULL;
    m->used = NULL;
    m->cap = 0;
    m->count = 0;
}

void *loom__u64map_get(const loom__u64map *m, uint64_t key)
{
    if (m->cap == 0) {
        return NULL;
    }
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)loom__mix64(key) & mask;; i = (i + 1) & mask) {
        if (!m->used[i]) {
            return NULL;
        }
        if (m->keys[i] == key) {
            return m->vals[i];
        }
    }
}

static void u64_place(uint64_t *keys,
                      void **vals,
                      uint8_t *used,
                      size_t cap,
                      uint64_t key,
                      void *val)
{
    size_t mask = cap - 1;
    size_t i = (size_t)loom__mix64(key) & mask;
    while (used[i]) {
        i = (i + 1) & mask;
    }
    used[i] = 1;
    keys[i] = key;
    vals[i] = val;
}

static int u64_grow(loom__u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    if (cap > SIZE_MAX / sizeof(uint64_t)) {
        return LOOM_ENOMEM;
    }
    uint64_t *keys = loom__malloc(m->a, cap * sizeof(*keys));
    void **vals = loom__malloc(m->a, cap * sizeof(*vals));
    uint8_t *used = loom__calloc(m->a, cap);
    if (!keys || !vals || !used) {
        loom__free(m->a, keys, cap * sizeof(*keys));
        loom__free(m->a, vals, cap * sizeof(*vals));
        loom__free(m->a, used, cap);
        return LOOM_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->used[i]) {
            u64_place(keys, vals, used, cap, m->keys[i], m->vals[i]);
        }
    }
    size_t count = m->count;
    loom__u64map_free(m);
    m->keys = keys;
    m->vals = vals;
    m->used = used;
    m->cap = cap;
    m->count = count;
    return LOOM_OK;
}

int loom__u64map_put(loom__u64map *m, uint64_t key, void *val)
{
    if (m->cap) {
        size_t mask = m->cap - 1;
        for (size_t i = (size_t)loom__mix64(key) & mask; m->used[i];
             i = (i + 1) & mask) {
            if (m->keys[i] == key) {
                m->vals[i] = val;
                return LOOM_OK;
            }
        }
    }
    if ((m->count + 1) * 4 > m->cap * 3) {
        int rc = u64_grow(m);
        if (rc) {
            return rc;
        }
    }
    u64_place(m->keys, m->vals, m->used, m->cap, key, val);
    m->count++;
    return LOOM_OK;
}

/* ---- strmap ------------------------------------------------------------ */

/* A block of key copies. Keys of up to KEY_BLOCK / 4 bytes share blocks of
 * KEY_BLOCK bytes; a longer key gets a block of its own. */
#define KEY_BLOCK 4096


/* A NUL-terminated copy of key in m's blocks, after the index of its
 * entry (4 bytes, see loom__strmap_key_entry), or NULL. */
static char *key_copy(loom__strmap *m, const char *key, size_t klen, uint32_t i)
{
    if (klen > SIZE_MAX - sizeof(struct loom__keyblock) - 1 - sizeof(i)) {
        return NULL;
    }
    size_t need = sizeof(i) + klen + 1;
    char *p;
    if (!m->kb || m->kb->size - m->kused < need) {
        size_t size = need > KEY_BLOCK / 4 ? need : KEY_BLOCK;
        struct loom__keyblock *b = loom__malloc(m->a, sizeof(*b) + size);
        if (!b) {
            return NULL;
        }
        b->size = size;
        if (m->kb && size != KEY_BLOCK) {
            /* a long key's own block goes behind the current one, which
             * keeps its room for short keys */
            b->next = m->kb->next;
            m->kb->next = b;
            p = b->data;
            goto fill;
        }
        b->next = m->kb;
        m->kb = b;
        m->kused = 0;
    }
    p = m->kb->data + m->kused;
    m->kused += need;
fill:
    return loom__strmap_key_put(p, i, key, klen);
}

/* Brings m->room up to date: the fewest new short keys that the index (at
 * most half full), the entries and the key block still take. */
static void room_refresh(loom__strmap *m)
{
    size_t r = m->icap / 2 - m->n;
    size_t e = m->ecap - m->n;
    size_t k = m->kb ? (m->kb->size - m->kused) /
                           (sizeof(uint32_t) + LOOM__STRMAP_SHORT + 1)
                     : 0;
    r = r < e ? r : e;
    m->room = r < k ? r : k;
}

void loom__strmap_init(loom__strmap *m, const loom_allocator *a)
{
    memset(m, 0, sizeof(*m));
    m->a = a;
}

void loom__strmap_free(loom__strmap *m)
{
    while (m->kb) {
        struct loom__keyblock *next = m->kb->next;
        loom__free(m->a, m->kb, sizeof(*m->kb) + m->kb->size);
        m->kb = next;
    }
    m->kused = 0;
    loom__free(m->a, m->e, m->ecap * sizeof(*m->e));
    loom__free(m->a, m->idx, m->icap * sizeof(*m->idx));
    m->e = NULL;
    m->idx = NULL;
    m->n = m->ecap = m->icap = 0;
    m->room = 0;
}

/* The entry for key (hash h), or NULL with *slot set to the empty slot of
 * idx where it would go. */
static inline loom__strmap_entry *find_hashed(const loom__strmap *m,
                                              const char *key,
                                              size_t klen,
                                              uint64_t h,
                                              size_t *slot)
{
    if (m->icap == 0) {
        *slot = 0;
        return NULL;
    }
    uint32_t x = loom__strmap_probe(m, key, klen, (uint32_t)(h >> 32), slot);
    return x ? &m->e[x - 1] : NULL;
}

loom__strmap_entry *
loom__strmap_find(const loom__strmap *m, const char *key, size_t klen)
{
    size_t slot;
    return find_hashed(m, key, klen, loom__hash_bytes(key, klen), &slot);
}

/* Puts entry i (of hash h32) in the first free slot of idx (mask + 1
 * slots) from its position. */
static void idx_place(uint32_t *idx, uint32_t mask, uint32_t h32, size_t i)
{
    size_t s = h32 & mask;
    while (idx[s]) {
        s = (s + 1) & mask;
    }
    idx[s] = loom__strmap_slotval(h32, mask, i);
}

/* Rebuilds the index with icap slots (a power of two, above m->icap and
 * at least 2 * m->n) from the entries' hashes: the old slots hold too few
 * of the hash bits to be moved by themselves. The table is resized in
 * place and cleared rather than replaced: a new one would be new pages
 * while the old one's go back, twice the memory touched by the time the
 * index has its final size. */
static int idx_resize(loom__strmap *m, size_t icap)
{
    if ((uint64_t)icap - 1 > UINT32_MAX || icap > SIZE_MAX / sizeof(uint32_t)) {
        return LOOM_ENOMEM;
    }
    uint32_t *idx;
    if (m->idx) {
        idx = loom__realloc(m->a, m->idx, m->icap * sizeof(*idx),
                            icap * sizeof(*idx));
        if (!idx) {
            return LOOM_ENOMEM; /* the old table is still there */
        }
        memset(idx, 0, icap * sizeof(*idx));
    } else {
        idx = loom__calloc(m->a, icap * sizeof(*idx));
        if (!idx) {
            return LOOM_ENOMEM;
        }
    }
    /* the slots written are random: start loading a few ahead */
    enum { AHEAD = 8 };
    uint32_t mask = (uint32_t)(icap - 1);
    const loom__strmap_entry *e = m->e;
    size_t n = m->n, i = 0;
#if defined(__GNUC__) || defined(__clang__)
    for (; i + AHEAD < n; i++) {
        __builtin_prefetch(&idx[e[i + AHEAD].hash & mask], 1);
        idx_place(idx, mask, e[i].hash, i);
    }
#endif
    for (; i < n; i++) {
        idx_place(idx, mask, e[i].hash, i);
    }
    m->idx = idx;
    m->icap = icap;
    return LOOM_OK;
}

static int idx_grow(loom__strmap *m)
{
    return idx_resize(m, m->icap ? m->icap * 2 : 16);
}

int loom__strmap_reserve(loom__strmap *m, size_t n)
{
    if (n >= UINT32_MAX / 2) {
        return LOOM_ELIMIT;
    }
    size_t icap = m->icap ? m->icap : 16;
    while (n * 2 > icap) {
        icap *= 2;
    }
    int rc = LOOM_OK;
    if (icap > m->icap) {
        rc = idx_resize(m, icap);
    }
    if (!rc && n > m->ecap) {
        void *ev = m->e;
        rc = loom__vec_grow_exact(m->a, &ev, &m->ecap, n, sizeof(*m->e));
        m->e = ev;
    }
    room_refresh(m);
    return rc;
}

int loom__strmap_intern(loom__strmap *m,
                        const char *key,
                        size_t klen,
                        loom__strmap_entry **out,
                        bool *created)
{
    size_t i;
    int rc = loom__strmap_intern_hashed(
        m, key, klen, loom__hash_bytes(key, klen), &i, created);
    if (rc) {
        return rc;
    }
    *out = &m->e[i];
    return LOOM_OK;
}

/* loom__strmap_intern_hashed for every case: a key that may be there, or
 * a new one for which something must grow first (the index, the entries,
 * the key blocks). */
LOOM__NOINLINE int loom__strmap_intern_slow(loom__strmap *m,
                                            const char *key,
                                            size_t klen,
                                            uint64_t h,
                                            size_t *index,
                                            bool *created)
{
    size_t slot;
    loom__strmap_entry *e = find_hashed(m, key, klen, h, &slot);
    if (e) {
        *index = (size_t)(e - m->e);
        *created = false;
        return LOOM_OK;
    }
    if (m->n >= UINT32_MAX / 2 || (uint64_t)klen > UINT32_MAX) {
        return LOOM_ELIMIT; /* the index has at most 2^32 slots */
    }
    int rc;
    bool grown = false;
    if ((m->n + 1) * 2 > m->icap) {
        rc = idx_grow(m);
        if (rc) {
            return rc;
        }
        grown = true;
    }
    void *ev = m->e;
    rc = loom__vec_reserve(m->a, &ev, &m->ecap, m->n + 1, sizeof(*m->e));
    m->e = ev;
    if (rc) {
        return rc;
    }
    char *copy = key_copy(m, key, klen, (uint32_t)m->n);
    if (!copy) {
        return LOOM_ENOMEM;
    }
    e = &m->e[m->n];
    e->key = copy;
    e->klen = (uint32_t)klen;
    e->hash = (uint32_t)(h >> 32);
    e->val = NULL;
    uint32_t mask = (uint32_t)(m->icap - 1);
    if (grown) {
        idx_place(m->idx, mask, e->hash, m->n);
    } else {
        m->idx[slot] = loom__strmap_slotval(e->hash, mask, m->n);
    }
    *index = m->n++;
    *created = true;
    room_refresh(m);
    return LOOM_OK;
}

int loom__strmap_intern_hashed(loom__strmap *m,
                               const char *key,
                               size_t klen,
                               uint64_t h,
                               size_t *index,
                               bool *created)
{
    return loom__strmap_intern_inline(m, key, klen, h, index, created);
}

int loom__strmap_upsert(loom__strmap *m,
                        const char *key,
                        size_t klen,
                        loom__strmap_entry **out)
{
    bool created;
    return loom__strmap_intern(m, key, klen, out, &created);
}
