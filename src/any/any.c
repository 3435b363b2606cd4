/*
 * any.c: the loom_any value tree: constructors, containers, accessors, deep
 * copy and the three equalities the engine needs (deep equality for tests
 * and callers, JS `===`, and yjs's shallow equalAttrs used by text
 * formatting). Also the public encode/decode/JSON entry points, which wrap
 * the codecs of any_codec.c and json.c.
 *
 * Objects keep their keys in insertion order; the JS Object.keys order
 * (integer-like keys first) is applied only when writing (see
 * loom__any_js_order).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "any/any_internal.h"

/* ---- construction ------------------------------------------------------- */

/*
 * An object node is allocated with a tail (obj_tail) holding room for its
 * first OBJ_INLINE entries and OBJ_INLINE_KEYS bytes of key copies, so a
 * small object is one allocation however many times it is set. Key copies
 * never move: when the inline bytes are used up, more come from chunks
 * linked to the tail, freed with the object. Both end LOOM__ANY_KEY_PAD
 * bytes past the room they give keys (see any_internal.h). Entries that
 * outgrow the inline arrays move to a block of their own (keys, lengths and
 * values in one allocation, freed through keys).
 */
#define OBJ_INLINE      4
#define OBJ_INLINE_KEYS 48

typedef struct key_chunk {
    struct key_chunk *next;
    size_t size; /* bytes after the header */
} key_chunk;

typedef struct obj_tail {
    key_chunk *chunks; /* newest first */
    char *kfree;       /* next free byte for a key copy */
    char *kend;        /* the end of the storage kfree points into */
    char *keys[OBJ_INLINE];
    size_t klens[OBJ_INLINE];
    loom_any *v[OBJ_INLINE];
    /* bit l set when an entry may have a key of length l (l <= 16): a key
     * of a length not set is new, with no comparison */
    uint32_t klens_seen;
    char kbytes[OBJ_INLINE_KEYS + LOOM__ANY_KEY_PAD];
} obj_tail;

#define OBJ_NODE (sizeof(loom_any) + sizeof(obj_tail))

static obj_tail *tail_of(const loom_any *o)
{
    return (obj_tail *)(void *)((char *)(uintptr_t)o + sizeof(loom_any));
}

/* Bytes of one object slot in an entries block: key, key length, value. */
#define OBJ_SLOT (sizeof(char *) + sizeof(size_t) + sizeof(loom_any *))

/* A node of a kind without payload to copy; the union is left for the
 * caller to fill (every constructor writes what its kind reads). */
static inline loom_any *
alloc_node(const loom_allocator *a, loom_any_kind kind, size_t extra)
{
    /* the embedder's hook directly when there is one (a node is never 0
     * bytes, which is all loom__malloc adds): a value is several nodes */
    size_t size = sizeof(loom_any) + extra;
    loom_any *v = a ? a->malloc_fn(a->ud, size) : loom__malloc(a, size);
    if (v) {
        v->kind = (uint8_t)kind;
        v->flags = 0;
        v->a = a;
    }
    return v;
}

static int new_node(const loom_allocator *a, loom_any_kind kind, loom_any **out)
{
    loom_any *v = alloc_node(a, kind, 0);
    if (!v) {
        return LOOM_ENOMEM;
    }
    memset(&v->u, 0, sizeof(v->u));
    *out = v;
    return LOOM_OK;
}

/*
 * undefined, null, false and true are shared constant nodes, as they are
 * immediate values in JS: building or freeing one costs no allocation (an
 * object of a few fields mostly has one), and none can fail. The nodes
 * have no allocator; nothing writes to them (they are read-only data), and
 * loom_any_free and loom_any_clone know them by LOOM__ANY_STATIC.
 */
static const loom_any static_nodes[4] = {
    {.kind = LOOM_ANY_UNDEFINED, .flags = LOOM__ANY_STATIC},
    {.kind = LOOM_ANY_NULL, .flags = LOOM__ANY_STATIC},
    {.kind = LOOM_ANY_BOOL, .flags = LOOM__ANY_STATIC, .u.b = 0},
    {.kind = LOOM_ANY_BOOL, .flags = LOOM__ANY_STATIC, .u.b = 1},
};

static loom_any *static_node(size_t i)
{
    /* const in memory; the API's pointers are not const */
    return (loom_any *)(uintptr_t)&static_nodes[i];
}

int loom_any_new_undefined(const loom_allocator *a, loom_any **out)
{
    (void)a;
    *out = static_node(0);
    return LOOM_OK;
}

int loom_any_new_null(const loom_allocator *a, loom_any **out)
{
    (void)a;
    *out = static_node(1);
    return LOOM_OK;
}

int loom_any_new_bool(const loom_allocator *a, int value, loom_any **out)
{
    (void)a;
    *out = static_node(value ? 3 : 2);
    return LOOM_OK;
}

int loom_any_new_number(const loom_allocator *a, double value, loom_any **out)
{
    loom_any *v = alloc_node(a, LOOM_ANY_NUMBER, 0);
    if (!v) {
        return LOOM_ENOMEM;
    }
    v->u.num = value;
    *out = v;
    return LOOM_OK;
}

int loom_any_new_bigint(const loom_allocator *a, int64_t value, loom_any **out)
{
    loom_any *v = alloc_node(a, LOOM_ANY_BIGINT, 0);
    if (!v) {
        return LOOM_ENOMEM;
    }
    v->u.big = value;
    *out = v;
    return LOOM_OK;
}

/* Finishes string node v (from alloc_node with len + 1 extra bytes) whose
 * len bytes are already copied after it. */
static inline int string_done(loom_any *v, size_t len, loom_any **out)
{
    char *p = (char *)(v + 1);
    p[len] = '\0';
    v->u.str.p = p;
    v->u.str.len = len;
    *out = v;
    return LOOM_OK;
}

/* A string or guid node from bytes already known to be valid UTF-8. The
 * copy lives right after the node, in the same allocation (loom_any_free
 * tells it from a taken string by its address). Inline for
 * loom_any_new_string, whose short strings (most values) take no call. */
static inline int string_node(const loom_allocator *a,
                              loom_any_kind kind,
                              const char *s,
                              size_t len,
                              loom_any **out)
{
    if (len > SIZE_MAX - sizeof(loom_any) - 1) {
        return LOOM_ENOMEM;
    }
    loom_any *v = alloc_node(a, kind, len + 1);
    if (!v) {
        return LOOM_ENOMEM;
    }
    loom__copy(v + 1, s, len);
    return string_done(v, len, out);
}

int loom__any_new_string_valid(const loom_allocator *a,
                               loom_any_kind kind,
                               const char *s,
                               size_t len,
                               loom_any **out)
{
    return string_node(a, kind, s, len, out);
}

/* A string node that takes `s` (allocated with `a`, len + 1 bytes, NUL
 * terminated); on failure s is left to the caller. */
int loom__any_new_string_take(const loom_allocator *a,
                              char *s,
                              size_t len,
                              loom_any **out)
{
    loom_any *v;
    int rc = new_node(a, LOOM_ANY_STRING, &v);
    if (rc) {
        return rc;
    }
    v->u.str.p = s;
    v->u.str.len = len;
    *out = v;
    return LOOM_OK;
}

/* loom_any_new_string past its short ASCII case: any other text, checked
 * first (out of line, so the short case saves fewer registers). */
static LOOM__NOINLINE int new_string_any(const loom_allocator *a,
                                         const char *s,
                                         size_t len,
                                         loom_any **out)
{
    if (!s) {
        if (len) {
            return LOOM_EINVAL;
        }
        s = "";
    }
    if (!loom__utf8_valid(s, len)) {
        return LOOM_EINVAL;
    }
    return string_node(a, LOOM_ANY_STRING, s, len, out);
}

/* A short string node v whose bytes are not all ASCII: valid text is
 * copied in, an invalid one frees v. */
static LOOM__NOINLINE int
new_string_finish(loom_any *v, const char *s, size_t len, loom_any **out)
{
    if (!loom__utf8_valid(s, len)) {
        loom__free(v->a, v, sizeof(*v) + len + 1);
        return LOOM_EINVAL;
    }
    loom__copy(v + 1, s, len);
    return string_done(v, len, out);
}

int loom_any_new_string(const loom_allocator *a,
                        const char *s,
                        size_t len,
                        loom_any **out)
{
    if (len > 16 || !s) {
        return new_string_any(a, s, len, out);
    }
    /* A short string (most values) is allocated first, so one load of its
     * bytes both checks them for ASCII and copies them. */
    loom_any *v = alloc_node(a, LOOM_ANY_STRING, len + 1);
    if (!v) {
        return loom__utf8_valid(s, len) ? LOOM_ENOMEM : LOOM_EINVAL;
    }
    if (!loom__copy_ascii_short(v + 1, s, len)) {
        return new_string_finish(v, s, len, out);
    }
    return string_done(v, len, out);
}

int loom_any_new_subdoc(const loom_allocator *a,
                        const char *guid,
                        size_t len,
                        loom_any **out)
{
    if ((!guid && len) || !loom__utf8_valid(guid, len)) {
        return LOOM_EINVAL;
    }
    return loom__any_new_string_valid(a, LOOM_ANY_SUBDOC, guid ? guid : "", len,
                                      out);
}

int loom_any_new_binary(const loom_allocator *a,
                        const uint8_t *p,
                        size_t len,
                        loom_any **out)
{
    if (!p && len) {
        return LOOM_EINVAL;
    }
    if (len > SIZE_MAX - sizeof(loom_any)) {
        return LOOM_ENOMEM;
    }
    /* the bytes follow the node, as a string's do; at least one byte, as
     * loom__memdup(len 0) gave (some callers copy max(len, 1) bytes) */
    loom_any *v = alloc_node(a, LOOM_ANY_BINARY, len ? len : 1);
    if (!v) {
        return LOOM_ENOMEM;
    }
    v->u.bin.p = (uint8_t *)(v + 1);
    if (len) {
        memcpy(v->u.bin.p, p, len);
    }
    v->u.bin.len = len;
    *out = v;
    return LOOM_OK;
}

int loom_any_new_array(const loom_allocator *a, loom_any **out)
{
    return new_node(a, LOOM_ANY_ARRAY, out);
}

int loom_any_new_object(const loom_allocator *a, loom_any **out)
{
    loom_any *o = alloc_node(a, LOOM_ANY_OBJECT, sizeof(obj_tail));
    if (!o) {
        return LOOM_ENOMEM;
    }
    obj_tail *t = tail_of(o);
    t->chunks = NULL;
    t->kfree = t->kbytes;
    t->kend = t->kbytes + OBJ_INLINE_KEYS;
    t->klens_seen = 0;
    o->u.obj.keys = t->keys;
    o->u.obj.klens = t->klens;
    o->u.obj.v = t->v;
    o->u.obj.n = 0;
    o->u.obj.cap = OBJ_INLINE;
    *out = o;
    return LOOM_OK;
}

int loom_any_new_type_ref(const loom_allocator *a,
                          loom_type *type,
                          loom_any **out)
{
    if (!type) {
        return LOOM_EINVAL;
    }
    loom_any *v = alloc_node(a, LOOM_ANY_TYPE, 0);
    if (!v) {
        return LOOM_ENOMEM;
    }
    v->u.type = type;
    *out = v;
    return LOOM_OK;
}

/* ---- containers --------------------------------------------------------- */

int loom__any_array_reserve(loom_any *arr, size_t need)
{
    void *p = arr->u.arr.v;
    int rc = loom__vec_reserve(arr->a, &p, &arr->u.arr.cap, need,
                               sizeof(loom_any *));
    arr->u.arr.v = p;
    return rc;
}

int loom_any_array_push(loom_any *array, loom_any *child)
{
    if (!array || !child || array == child) {
        return LOOM_EINVAL;
    }
    if (array->kind != LOOM_ANY_ARRAY) {
        return LOOM_ETYPE;
    }
    int rc = loom__any_array_reserve(array, array->u.arr.n + 1);
    if (rc) {
        return rc;
    }
    array->u.arr.v[array->u.arr.n++] = child;
    return LOOM_OK;
}

/* The three parallel arrays of an object grow together, in one block; the
 * new block is allocated before the old one is released so a failure
 * changes nothing. */
int loom__any_object_reserve(loom_any *o, size_t need)
{
    size_t cap = o->u.obj.cap;
    if (need <= cap) {
        return LOOM_OK;
    }
    size_t ncap = cap * 2;
    while (ncap < need) {
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    }
    if (ncap > SIZE_MAX / OBJ_SLOT) {
        return LOOM_ENOMEM;
    }
    const loom_allocator *a = o->a;
    char **keys = loom__malloc(a, ncap * OBJ_SLOT);
    if (!keys) {
        return LOOM_ENOMEM;
    }
    size_t *klens = (size_t *)(void *)(keys + ncap);
    loom_any **v = (loom_any **)(void *)(klens + ncap);
    size_t n = o->u.obj.n;
    if (n) {
        memcpy(keys, o->u.obj.keys, n * sizeof(*keys));
        memcpy(klens, o->u.obj.klens, n * sizeof(*klens));
        memcpy(v, o->u.obj.v, n * sizeof(loom_any *));
    }
    if (o->u.obj.keys != tail_of(o)->keys) {
        loom__free(a, o->u.obj.keys, cap * OBJ_SLOT);
    }
    o->u.obj.keys = keys;
    o->u.obj.klens = klens;
    o->u.obj.v = v;
    o->u.obj.cap = ncap;
    return LOOM_OK;
}

/* A new key chunk with room for klen + 1 bytes, when the current storage
 * is full (nothing changes on failure). */
static char *key_chunk_new(loom_any *o, size_t klen)
{
    obj_tail *t = tail_of(o);
    size_t last = t->chunks ? t->chunks->size : OBJ_INLINE_KEYS;
    size_t size = last > SIZE_MAX / 4 ? last : last * 2;
    if (size <= klen) {
        size = klen + 1;
    }
    if (size > SIZE_MAX - sizeof(key_chunk) - LOOM__ANY_KEY_PAD) {
        return NULL;
    }
    key_chunk *c =
        loom__malloc(o->a, sizeof(key_chunk) + size + LOOM__ANY_KEY_PAD);
    if (!c) {
        return NULL;
    }
    c->next = t->chunks;
    c->size = size;
    t->chunks = c;
    t->kfree = (char *)(c + 1);
    t->kend = t->kfree + size;
    return t->kfree;
}

/* Appends key -> child with room already reserved for the entry. */
static int
append_entry(loom_any *o, const char *key, size_t klen, loom_any *child)
{
    obj_tail *t = tail_of(o);
    char *k = t->kfree;
    if (klen >= (size_t)(t->kend - k) && !(k = key_chunk_new(o, klen))) {
        return LOOM_ENOMEM;
    }
    loom__copy(k, key, klen);
    k[klen] = '\0';
    t->kfree = k + klen + 1;
    if ((unsigned)(k[0] - '0') <= 9) {
        o->flags |= LOOM__ANY_DIGIT_KEY;
    }
    if (klen <= 16) {
        t->klens_seen |= (uint32_t)1 << klen;
    }
    size_t i = o->u.obj.n++;
    o->u.obj.keys[i] = k;
    o->u.obj.klens[i] = klen;
    o->u.obj.v[i] = child;
    return LOOM_OK;
}

int loom__any_object_append_take(loom_any *o,
                                 char *key,
                                 size_t klen,
                                 loom_any *child)
{
    int rc = loom__any_object_append(o, key, klen, child);
    if (!rc) {
        loom__free(o->a, key, klen + 1);
    }
    return rc;
}

int loom__any_object_append(loom_any *o,
                            const char *key,
                            size_t klen,
                            loom_any *child)
{
    int rc = loom__any_object_reserve(o, o->u.obj.n + 1);
    if (rc) {
        return rc;
    }
    return append_entry(o, key, klen, child);
}

static bool key_eq(const loom_any *o, size_t i, const char *key, size_t klen)
{
    return o->u.obj.klens[i] == klen &&
           memcmp(o->u.obj.keys[i], key, klen) == 0;
}

/* Merges the entry at `from` into the earlier entry `to` with the same key:
 * JS keeps the first position and the last value. */
static void merge_dup(loom_any *o, size_t to, size_t from)
{
    loom_any_free(o->u.obj.v[to]);
    o->u.obj.v[to] = o->u.obj.v[from];
    /* the key copy of `from` stays in the object's key storage */
}

static void move_entry(loom_any *o, size_t to, size_t from)
{
    o->u.obj.keys[to] = o->u.obj.keys[from];
    o->u.obj.klens[to] = o->u.obj.klens[from];
    o->u.obj.v[to] = o->u.obj.v[from];
}

int loom__any_object_dedupe(loom_any *o)
{
    size_t n = o->u.obj.n;
    if (n < 2) {
        return LOOM_OK;
    }
    size_t w = 1; /* entries [0, w) are kept and distinct */
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            size_t j = 0;
            while (j < w &&
                   !key_eq(o, j, o->u.obj.keys[i], o->u.obj.klens[i])) {
                j++;
            }
            if (j < w) {
                merge_dup(o, j, i);
            } else {
                move_entry(o, w++, i);
            }
        }
        o->u.obj.n = w;
        return LOOM_OK;
    }
    /* Large objects come from untrusted input: index them so hostile input
     * cannot make this quadratic. */
    loom__strmap m;
    loom__strmap_init(&m, o->a);
    int rc = LOOM_OK;
    size_t i;
    w = 0;
    for (i = 0; i < n; i++) {
        loom__strmap_entry *e;
        rc = loom__strmap_upsert(&m, o->u.obj.keys[i], o->u.obj.klens[i], &e);
        if (rc) {
            break;
        }
        if (e->val) {
            merge_dup(o, (size_t)(uintptr_t)e->val - 1, i);
        } else {
            e->val = (void *)(uintptr_t)(w + 1);
            move_entry(o, w++, i);
        }
    }
    /* On failure keep the unprocessed tail so the object stays whole. */
    for (; i < n; i++) {
        move_entry(o, w++, i);
    }
    o->u.obj.n = w;
    loom__strmap_free(&m);
    return rc;
}

/* loom_any_object_set past the argument checks, for every case: any key
 * text, a key that may be there already, a full object. */
static LOOM__NOINLINE int
set_any(loom_any *o, const char *key, size_t klen, loom_any *child)
{
    if (!loom__utf8_valid(key, klen)) {
        return LOOM_EINVAL;
    }
    for (size_t i = 0; i < o->u.obj.n; i++) {
        if (key_eq(o, i, key, klen)) {
            if (o->u.obj.v[i] != child) {
                loom_any_free(o->u.obj.v[i]);
                o->u.obj.v[i] = child;
            }
            return LOOM_OK;
        }
    }
    return loom__any_object_append(o, key, klen, child);
}

/* loom__copy_ascii_short for a key (len <= 16), with pairs of overlapping
 * two-byte moves for two or three bytes: fewer registers than its
 * first-middle-last bytes, so the caller saves none. */
static inline bool copy_ascii_key(char *d, const char *s, size_t len)
{
    if (len >= 4) {
        return loom__copy_ascii_short(d, s, len);
    }
    if (len >= 2) {
        uint16_t x, y;
        memcpy(&x, s, 2);
        memcpy(&y, s + len - 2, 2);
        if ((x | y) & 0x8080u) {
            return false;
        }
        memcpy(d, &x, 2);
        memcpy(d + len - 2, &y, 2);
        return true;
    }
    if (len) {
        if ((unsigned char)s[0] & 0x80u) {
            return false;
        }
        d[0] = s[0];
    }
    return true;
}

int loom_any_object_set(loom_any *object,
                        const char *key,
                        size_t key_len,
                        loom_any *child)
{
    if (!object || !child || object == child) {
        return LOOM_EINVAL;
    }
    if (!key) {
        if (key_len) {
            return LOOM_EINVAL;
        }
        key = "";
    }
    if (object->kind != LOOM_ANY_OBJECT) {
        return LOOM_ETYPE;
    }
    /* The common case inline: a short ASCII key whose length no entry has
     * (so it is new), with room for it. */
    size_t n = object->u.obj.n;
    obj_tail *t = tail_of(object);
    uint32_t seen = t->klens_seen;
    if (key_len > 16 || ((seen >> key_len) & 1) || n == object->u.obj.cap ||
        key_len >= (size_t)(t->kend - t->kfree)) {
        return set_any(object, key, key_len, child);
    }
    char *k = t->kfree;
    if (!copy_ascii_key(k, key, key_len)) {
        return set_any(object, key, key_len, child);
    }
    k[key_len] = '\0';
    t->kfree = k + key_len + 1;
    if ((unsigned)(k[0] - '0') <= 9) {
        object->flags |= LOOM__ANY_DIGIT_KEY;
    }
    t->klens_seen = seen | (uint32_t)1 << key_len;
    object->u.obj.n = n + 1;
    object->u.obj.keys[n] = k;
    object->u.obj.klens[n] = key_len;
    object->u.obj.v[n] = child;
    return LOOM_OK;
}

/* ---- JS key order ------------------------------------------------------- */

bool loom__js_index_key(const char *k, size_t len, uint32_t *value)
{
    if (len == 0 || len > 10) {
        return false;
    }
    if (k[0] == '0' && len > 1) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (k[i] < '0' || k[i] > '9') {
            return false;
        }
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v > 4294967294u) {
        return false;
    }
    if (value) {
        *value = (uint32_t)v;
    }
    return true;
}

typedef struct idx_key {
    uint32_t value;
    size_t index;
} idx_key;

static int cmp_idx_key(const void *pa, const void *pb)
{
    const idx_key *x = pa, *y = pb;
    return x->value < y->value ? -1 : x->value > y->value;
}

int loom__any_js_order(const loom_any *o, size_t **order)
{
    if (!(o->flags & LOOM__ANY_DIGIT_KEY)) {
        *order = NULL; /* no key starts with a digit: none is an index */
        return LOOM_OK;
    }
    size_t n = o->u.obj.n;
    size_t nint = 0;
    bool sorted = true; /* integer keys already first and ascending */
    bool seen_other = false;
    uint32_t last = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        if (loom__js_index_key(o->u.obj.keys[i], o->u.obj.klens[i], &v)) {
            if (seen_other || (nint && v <= last)) {
                sorted = false;
            }
            last = v;
            nint++;
        } else {
            seen_other = true;
        }
    }
    if (sorted) {
        *order = NULL;
        return LOOM_OK;
    }
    size_t *ord = loom__malloc(o->a, n * sizeof(*ord));
    idx_key *ik = loom__malloc(o->a, nint * sizeof(*ik));
    if (!ord || !ik) {
        loom__free(o->a, ord, n * sizeof(*ord));
        loom__free(o->a, ik, nint * sizeof(*ik));
        return LOOM_ENOMEM;
    }
    size_t k = 0, w = nint;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        if (loom__js_index_key(o->u.obj.keys[i], o->u.obj.klens[i], &v)) {
            ik[k].value = v;
            ik[k].index = i;
            k++;
        } else {
            ord[w++] = i;
        }
    }
    qsort(ik, nint, sizeof(*ik), cmp_idx_key);
    for (size_t i = 0; i < nint; i++) {
        ord[i] = ik[i].index;
    }
    loom__free(o->a, ik, nint * sizeof(*ik));
    *order = ord;
    return LOOM_OK;
}

/* ---- free and clone ----------------------------------------------------- */

/* Frees v when it is one allocation (a scalar, or a string or binary whose
 * bytes follow the node), the embedder's hook called directly; returns
 * false, freeing nothing, for any other node. The values of an object are
 * mostly such nodes: a recursive call and loom__free each were most of
 * freeing one. */
static inline bool free_single(loom_any *v)
{
    size_t size = sizeof(*v);
    if (v->kind > LOOM_ANY_BIGINT && v->kind != LOOM_ANY_TYPE) {
        if (v->kind == LOOM_ANY_STRING || v->kind == LOOM_ANY_SUBDOC) {
            if (v->u.str.p != (char *)(v + 1)) {
                return false;
            }
            size += v->u.str.len + 1;
        } else if (v->kind == LOOM_ANY_BINARY) {
            size += v->u.bin.len ? v->u.bin.len : 1;
        } else {
            return false;
        }
    } else if (v->flags & LOOM__ANY_STATIC) {
        return true;
    }
    const loom_allocator *a = v->a;
    if (a) {
        a->free_fn(a->ud, v, size); /* size > 0: what loom__free passes */
    } else {
        loom__free(a, v, size);
    }
    return true;
}

// NOLINTNEXTLINE(misc-no-recursion): as deep as the value (decoders cap it)
void loom_any_free(loom_any *v)
{
    /* objects first: a value is mostly one */
    if (v && v->kind != LOOM_ANY_OBJECT && free_single(v)) {
        return;
    }
    if (!v) {
        return;
    }
    const loom_allocator *a = v->a;
    switch ((loom_any_kind)v->kind) {
    case LOOM_ANY_STRING:
    case LOOM_ANY_SUBDOC:
        /* a taken string (free_single took the inline ones) */
        loom__free(a, v->u.str.p, v->u.str.len + 1);
        break;
    case LOOM_ANY_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++) {
            loom_any_free(v->u.arr.v[i]);
        }
        loom__free(a, v->u.arr.v, v->u.arr.cap * sizeof(loom_any *));
        break;
    case LOOM_ANY_OBJECT: {
        for (size_t i = 0; i < v->u.obj.n; i++) {
            loom_any *c = v->u.obj.v[i];
            if (c && !free_single(c)) {
                loom_any_free(c);
            }
        }
        obj_tail *t = tail_of(v);
        if (v->u.obj.keys != t->keys) {
            loom__free(a, v->u.obj.keys, v->u.obj.cap * OBJ_SLOT);
        }
        for (key_chunk *c = t->chunks; c;) {
            key_chunk *next = c->next;
            loom__free(a, c, sizeof(*c) + c->size + LOOM__ANY_KEY_PAD);
            c = next;
        }
        if (a) {
            a->free_fn(a->ud, v, OBJ_NODE); /* what loom__free passes */
        } else {
            loom__free(a, v, OBJ_NODE);
        }
        return;
    }
    default:
        break;
    }
    loom__free(a, v, sizeof(*v));
}

// NOLINTNEXTLINE(misc-no-recursion): as deep as the value (decoders cap it)
int loom_any_clone(const loom_any *v, const loom_allocator *a, loom_any **out)
{
    if (!v || !out) {
        return LOOM_EINVAL;
    }
    if (v->flags & LOOM__ANY_STATIC) {
        *out = (loom_any *)(uintptr_t)v;
        return LOOM_OK;
    }
    if (!a) {
        a = v->a;
    }
    loom_any *c = NULL;
    int rc;
    switch ((loom_any_kind)v->kind) {
    case LOOM_ANY_STRING:
    case LOOM_ANY_SUBDOC:
        return loom__any_new_string_valid(a, (loom_any_kind)v->kind, v->u.str.p,
                                          v->u.str.len, out);
    case LOOM_ANY_BINARY:
        return loom_any_new_binary(a, v->u.bin.p, v->u.bin.len, out);
    case LOOM_ANY_ARRAY:
        rc = new_node(a, LOOM_ANY_ARRAY, &c);
        if (!rc) {
            rc = loom__any_array_reserve(c, v->u.arr.n);
        }
        for (size_t i = 0; !rc && i < v->u.arr.n; i++) {
            rc = loom_any_clone(v->u.arr.v[i], a, &c->u.arr.v[i]);
            if (!rc) {
                c->u.arr.n++;
            }
        }
        break;
    case LOOM_ANY_OBJECT:
        rc = loom_any_new_object(a, &c);
        if (!rc) {
            rc = loom__any_object_reserve(c, v->u.obj.n);
        }
        for (size_t i = 0; !rc && i < v->u.obj.n; i++) {
            loom_any *child;
            rc = loom_any_clone(v->u.obj.v[i], a, &child);
            if (rc) {
                break;
            }
            rc = loom__any_object_append(c, v->u.obj.keys[i], v->u.obj.klens[i],
                                         child);
            if (rc) {
                loom_any_free(child);
            }
        }
        break;
    default:
        rc = new_node(a, (loom_any_kind)v->kind, &c);
        if (!rc) {
            c->u = v->u;
        }
        break;
    }
    if (rc) {
        loom_any_free(c);
        return rc;
    }
    *out = c;
    return LOOM_OK;
}

/* ---- accessors ---------------------------------------------------------- */

loom_any_kind loom_any_kind_of(const loom_any *v)
{
    return v ? (loom_any_kind)v->kind : LOOM_ANY_UNDEFINED;
}

int loom_any_bool(const loom_any *v)
{
    return v && v->kind == LOOM_ANY_BOOL ? v->u.b : 0;
}

double loom_any_number(const loom_any *v)
{
    return v && v->kind == LOOM_ANY_NUMBER ? v->u.num : 0.0;
}

int64_t loom_any_bigint(const loom_any *v)
{
    return v && v->kind == LOOM_ANY_BIGINT ? v->u.big : 0;
}

const char *loom_any_string(const loom_any *v, size_t *len)
{
    if (!v || (v->kind != LOOM_ANY_STRING && v->kind != LOOM_ANY_SUBDOC)) {
        if (len) {
            *len = 0;
        }
        return NULL;
    }
    if (len) {
        *len = v->u.str.len;
    }
    return v->u.str.p;
}

const uint8_t *loom_any_binary(const loom_any *v, size_t *len)
{
    if (!v || v->kind != LOOM_ANY_BINARY) {
        if (len) {
            *len = 0;
        }
        return NULL;
    }
    if (len) {
        *len = v->u.bin.len;
    }
    return v->u.bin.p;
}

size_t loom_any_count(const loom_any *v)
{
    if (!v) {
        return 0;
    }
    if (v->kind == LOOM_ANY_ARRAY) {
        return v->u.arr.n;
    }
    if (v->kind == LOOM_ANY_OBJECT) {
        return v->u.obj.n;
    }
    return 0;
}

const loom_any *loom_any_array_get(const loom_any *v, size_t i)
{
    if (!v || v->kind != LOOM_ANY_ARRAY || i >= v->u.arr.n) {
        return NULL;
    }
    return v->u.arr.v[i];
}

const char *loom_any_object_key(const loom_any *v, size_t i, size_t *len)
{
    if (!v || v->kind != LOOM_ANY_OBJECT || i >= v->u.obj.n) {
        if (len) {
            *len = 0;
        }
        return NULL;
    }
    if (len) {
        *len = v->u.obj.klens[i];
    }
    return v->u.obj.keys[i];
}

const loom_any *loom_any_object_value(const loom_any *v, size_t i)
{
    if (!v || v->kind != LOOM_ANY_OBJECT || i >= v->u.obj.n) {
        return NULL;
    }
    return v->u.obj.v[i];
}

const loom_any *
loom_any_object_get(const loom_any *v, const char *key, size_t len)
{
    if (!v || v->kind != LOOM_ANY_OBJECT || (!key && len)) {
        return NULL;
    }
    for (size_t i = 0; i < v->u.obj.n; i++) {
        if (key_eq(v, i, key ? key : "", len)) {
            return v->u.obj.v[i];
        }
    }
    return NULL;
}

loom_type *loom_any_type(const loom_any *v)
{
    return v && v->kind == LOOM_ANY_TYPE ? v->u.type : NULL;
}

/* ---- equality ----------------------------------------------------------- */

static bool num_same(double x, double y)
{
    if (isnan(x) || isnan(y)) {
        return isnan(x) && isnan(y);
    }
    return x == y && signbit(x) == signbit(y);
}

// NOLINTNEXTLINE(misc-no-recursion): as deep as the value (decoders cap it)
int loom_any_equal(const loom_any *a, const loom_any *b)
{
    if (a == b) {
        return 1;
    }
    if (!a || !b || a->kind != b->kind) {
        return 0;
    }
    switch ((loom_any_kind)a->kind) {
    case LOOM_ANY_UNDEFINED:
    case LOOM_ANY_NULL:
        return 1;
    case LOOM_ANY_BOOL:
        return a->u.b == b->u.b;
    case LOOM_ANY_NUMBER:
        return num_same(a->u.num, b->u.num);
    case LOOM_ANY_BIGINT:
        return a->u.big == b->u.big;
    case LOOM_ANY_STRING:
    case LOOM_ANY_SUBDOC:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.p, b->u.str.p, a->u.str.len) == 0;
    case LOOM_ANY_BINARY:
        return a->u.bin.len == b->u.bin.len &&
               (a->u.bin.len == 0 ||
                memcmp(a->u.bin.p, b->u.bin.p, a->u.bin.len) == 0);
    case LOOM_ANY_ARRAY:
        if (a->u.arr.n != b->u.arr.n) {
            return 0;
        }
        for (size_t i = 0; i < a->u.arr.n; i++) {
            if (!loom_any_equal(a->u.arr.v[i], b->u.arr.v[i])) {
                return 0;
            }
        }
        return 1;
    case LOOM_ANY_OBJECT:
        if (a->u.obj.n != b->u.obj.n) {
            return 0;
        }
        for (size_t i = 0; i < a->u.obj.n; i++) {
            /* Same position first: the common case of equal key order. */
            const loom_any *bv;
            if (key_eq(b, i, a->u.obj.keys[i], a->u.obj.klens[i])) {
                bv = b->u.obj.v[i];
            } else {
                bv =
                    loom_any_object_get(b, a->u.obj.keys[i], a->u.obj.klens[i]);
            }
            if (!bv || !loom_any_equal(a->u.obj.v[i], bv)) {
                return 0;
            }
        }
        return 1;
    case LOOM_ANY_TYPE:
        return a->u.type == b->u.type;
    }
    return 0;
}

bool loom__any_strict_eq(const loom_any *a, const loom_any *b)
{
    loom_any_kind ka = loom_any_kind_of(a), kb = loom_any_kind_of(b);
    if (ka != kb) {
        return false;
    }
    switch (ka) {
    case LOOM_ANY_UNDEFINED:
    case LOOM_ANY_NULL:
        return true;
    case LOOM_ANY_BOOL:
        return a->u.b == b->u.b;
    case LOOM_ANY_NUMBER:
        return a->u.num == b->u.num; /* NaN !== NaN, 0 === -0 */
    case LOOM_ANY_BIGINT:
        return a->u.big == b->u.big;
    case LOOM_ANY_STRING:
        return a->u.str.len == b->u.str.len &&
               memcmp(a->u.str.p, b->u.str.p, a->u.str.len) == 0;
    case LOOM_ANY_TYPE:
        /* two views of one shared type are the same JS object */
        return a->u.type == b->u.type;
    default:
        return a == b;
    }
}

/*
 * lib0 equalFlat works on anything JS calls an object: it compares
 * Object.keys counts and then `b[key] === a[key]` for a's keys, so arrays,
 * Uint8Arrays and plain objects are all "flat maps" keyed by strings. A flat
 * value is either a loom_any (possibly NULL = undefined) or a byte of a
 * Uint8Array (a JS number).
 */
typedef struct flat_val {
    const loom_any *v;
    bool is_byte;
    uint8_t byte;
} flat_val;

static bool flat_like(const loom_any *v)
{
    return v && (v->kind == LOOM_ANY_OBJECT || v->kind == LOOM_ANY_ARRAY ||
                 v->kind == LOOM_ANY_BINARY);
}

static size_t flat_size(const loom_any *v)
{
    return v->kind == LOOM_ANY_BINARY ? v->u.bin.len : loom_any_count(v);
}

/* b[key]; *present tells whether b has the key as an own property. */
static flat_val
flat_get(const loom_any *b, const char *key, size_t klen, bool *present)
{
    flat_val r = {NULL, false, 0};
    *present = false;
    if (b->kind == LOOM_ANY_OBJECT) {
        for (size_t i = 0; i < b->u.obj.n; i++) {
            if (key_eq(b, i, key, klen)) {
                *present = true;
                r.v = b->u.obj.v[i];
                break;
            }
        }
        return r;
    }
    uint32_t idx;
    if (!loom__js_index_key(key, klen, &idx)) {
        return r;
    }
    if (b->kind == LOOM_ANY_ARRAY && idx < b->u.arr.n) {
        *present = true;
        r.v = b->u.arr.v[idx];
    } else if (b->kind == LOOM_ANY_BINARY && idx < b->u.bin.len) {
        *present = true;
        r.is_byte = true;
        r.byte = b->u.bin.p[idx];
    }
    return r;
}

static bool flat_strict_eq(flat_val x, flat_val y)
{
    if (x.is_byte || y.is_byte) {
        double dx = x.is_byte ? x.byte : loom_any_number(x.v);
        double dy = y.is_byte ? y.byte : loom_any_number(y.v);
        bool nx = x.is_byte || loom_any_kind_of(x.v) == LOOM_ANY_NUMBER;
        bool ny = y.is_byte || loom_any_kind_of(y.v) == LOOM_ANY_NUMBER;
        return nx && ny && dx == dy;
    }
    return loom__any_strict_eq(x.v, y.v);
}

bool loom__any_equal_attrs(const loom_any *a, const loom_any *b)
{
    if (loom__any_strict_eq(a, b)) {
        return true;
    }
    if (!flat_like(a) || !flat_like(b) || flat_size(a) != flat_size(b)) {
        return false;
    }
    size_t n = flat_size(a);
    char ibuf[16];
    for (size_t i = 0; i < n; i++) {
        const char *key;
        size_t klen;
        flat_val av = {NULL, false, 0};
        if (a->kind == LOOM_ANY_OBJECT) {
            key = a->u.obj.keys[i];
            klen = a->u.obj.klens[i];
            av.v = a->u.obj.v[i];
        } else {
            /* index keys of arrays and Uint8Arrays */
            size_t x = i, p = sizeof(ibuf);
            do {
                ibuf[--p] = (char)('0' + x % 10);
                x /= 10;
            } while (x);
            key = ibuf + p;
            klen = sizeof(ibuf) - p;
            if (a->kind == LOOM_ANY_ARRAY) {
                av.v = a->u.arr.v[i];
            } else {
                av.is_byte = true;
                av.byte = a->u.bin.p[i];
            }
        }
        bool present;
        flat_val bv = flat_get(b, key, klen, &present);
        bool a_undef =
            !av.is_byte && loom_any_kind_of(av.v) == LOOM_ANY_UNDEFINED;
        if (a_undef && !present) {
            return false;
        }
        if (!flat_strict_eq(av, bv)) {
            return false;
        }
    }
    return true;
}

/* ---- codec entry points ------------------------------------------------- */

int loom_any_encode(const loom_any *v, loom_buf *out)
{
    if (!v || !out) {
        return LOOM_EINVAL;
    }
    if (!out->alloc && out->cap == 0) {
        out->alloc = v->a;
    }
    return loom__any_write(out, v);
}

int loom_any_decode(const loom_allocator *a,
                    const uint8_t *p,
                    size_t len,
                    loom_any **out,
                    loom_error *err)
{
    if ((!p && len) || !out) {
        loom__error_set(err, LOOM_EINVAL, 0, 0, NULL);
        return LOOM_EINVAL;
    }
    loom__reader r;
    loom__reader_init(&r, p, len);
    loom_any *v = NULL;
    int rc = loom__any_read(&r, a, 0, &v);
    if (!rc && loom__reader_left(&r) != 0) {
        loom_any_free(v);
        rc = loom__reader_fail(&r, LOOM_EMALFORMED, r.pos,
                               "trailing bytes after the value");
    }
    if (rc) {
        loom__reader_error(&r, err, 0);
        return rc;
    }
    *out = v;
    return LOOM_OK;
}

int loom_any_to_json(const loom_any *v, loom_buf *out)
{
    if (!v || !out) {
        return LOOM_EINVAL;
    }
    if (!out->alloc && out->cap == 0) {
        out->alloc = v->a;
    }
    return loom__json_write(out, v);
}

int loom_any_from_json(const loom_allocator *a,
                       const char *text,
                       size_t len,
                       loom_any **out,
                       loom_error *err)
{
    if ((!text && len) || !out) {
        loom__error_set(err, LOOM_EINVAL, 0, 0, NULL);
        return LOOM_EINVAL;
    }
    size_t off = 0;
    const char *msg = NULL;
    loom_any *v = NULL;
    int rc =
        loom__json_read_msg(a, text ? text : "", len, false, &v, &off, &msg);
    if (rc) {
        loom__error_set(err, rc, off, 0, msg);
        return rc;
    }
    *out = v;
    return LOOM_OK;
}
