/*
 * parse.c: reads and validates a whole update v1 into loom__rupdate.
 *
 * Structs are read the way yjs's lazy struct reader does (the reader behind
 * mergeUpdates and diffUpdate): info 0x0a exactly is a Skip, any other info
 * with content ref 0 is a GC, the rest are Items; an Item with an origin or a
 * rightOrigin carries no parent info, and a parentInfo other than 1 means an
 * ID parent. Content stays as raw bytes, but everything yjs would reject is
 * rejected here, so later stages can trust it: UTF-8, Any values, JSON text,
 * type refs, subdocument options.
 *
 * On top of what yjs checks we refuse what would break clock arithmetic or
 * memory bounds: zero-length structs (yjs never writes one), ranges ending
 * past 2^53-1, counts that the remaining bytes cannot hold, and trailing bytes.
 *
 * The entries of a loaded map (most of a large update) are read by a fast
 * path (fast_run) that takes only their exact shape and leaves anything
 * else, errors included, to the full reader, so both give the same result.
 * Parsed for applying (loom__update_parse_load), a run of them is kept as
 * one record and a byte per entry (LOOM__RS_RUN) rather than a record
 * each, which is most of what the parser writes for a loaded map.
 */
#include <string.h>

#include "any/any_internal.h"
#include "codec/codec_int.h"

void loom__rupdate_free(loom__rupdate *u)
{
    if (!u) {
        return;
    }
    for (size_t i = 0; i < u->nblocks; i++) {
        loom__free(u->a, u->blocks[i].s,
                   u->blocks[i].cap * sizeof(*u->blocks[i].s));
    }
    loom__free(u->a, u->blocks, u->nblocks * sizeof(*u->blocks));
    loom__free(u->a, u->roots, u->roots_cap * sizeof(*u->roots));
    u->blocks = NULL;
    u->nblocks = 0;
    u->roots = NULL;
    u->nroots = u->roots_cap = 0;
    loom__ds_free(&u->ds);
}

/* ---- varUints ------------------------------------------------------------ */

const uint8_t *loom__varuint8_long(const uint8_t *p, uint64_t x, uint64_t *out)
{
    /* the top bits of the bytes that can end it: one of the first 7 */
    uint64_t m = ~x & 0x0080808080808080ULL;
    if (!m) {
        return NULL;
    }
    unsigned t = (unsigned)__builtin_ctzll(m); /* 7 + 8 * (bytes - 1) */
    x &= (2ULL << t) - 1;
    /* the 7-bit groups next to each other: pairs, fours, then all */
    x = (x & 0x007f007f007f007fULL) | (x >> 1 & 0x3f803f803f803f80ULL);
    x = (x & 0x00003fff00003fffULL) | (x >> 2 & 0x0fffc0000fffc000ULL);
    x = (x & 0x000000000fffffffULL) | (x >> 4 & 0x00fffffff0000000ULL);
    *out = x;
    return p + t / 8 + 1;
}

/* ---- decoding a validated struct --------------------------------------- */

/* The readers below trust their input: the parser has checked it. */
static inline uint64_t fast_varuint(const uint8_t **pp)
{
    /* up to 7 bytes (clocks, client ids) without the checks below */
    uint64_t v;
    const uint8_t *p = loom__varuint7_at(*pp, &v);
    if (p) {
        *pp = p;
        return v;
    }
    p = *pp;
    uint8_t c = *p++;
    v = c & 0x7f;
    unsigned shift = 7;
    while (c >= 0x80) {
        c = *p++;
        if (c & 0x7f) {
            /* the parser refused set bits at or above bit 53 */
            v |= (uint64_t)(c & 0x7f) << shift;
        }
        shift += shift < 56 ? 7 : 0;
    }
    *pp = p;
    return v;
}

static inline const char *fast_varstring(const uint8_t **pp, size_t *len)
{
    size_t n = (size_t)fast_varuint(pp);
    const char *s = (const char *)*pp;
    *pp += n;
    *len = n;
    return s;
}

static inline void fast_id(const uint8_t **pp, loom__id *id)
{
    id->client = fast_varuint(pp);
    id->clock = fast_varuint(pp);
}

/* Every field is written once: a memset of the struct compiles to `rep
 * stos`, which was half the cost of decoding a map entry. */
void loom__rstruct_get(const loom__rupdate *u,
                       const loom__rblock *b,
                       size_t k,
                       loom__rstruct *out)
{
    static const loom__id none = {0, 0};
    uint64_t bits = b->s[k].bits;
    size_t off = b->s[k].offset, end;
    uint64_t clock = bits & LOOM__RS_CLOCK_MASK, next;
    if (k + 1 < b->n) {
        next = b->s[k + 1].bits & LOOM__RS_CLOCK_MASK;
        end = b->s[k + 1].offset;
    } else {
        next = b->end_clock;
        end = b->end;
    }
    const uint8_t *p = u->p + off;
    uint8_t info = *p++;
    uint8_t ref = (uint8_t)((bits >> LOOM__RS_REF_SHIFT) & 0x1f);
    /* GC and Skip have no header flags, whatever their info byte says */
    uint8_t flags = ref == LOOM__REF_GC || ref == LOOM__REF_SKIP ? 0 : info;
    out->info = info;
    out->ref = ref;
    out->has_origin = (flags & 0x80) != 0;
    out->has_right_origin = (flags & 0x40) != 0;
    out->has_parent_sub = (flags & 0x20) != 0;
    out->any_canon = (bits & LOOM__RS_CANON) != 0;
    out->client = b->client;
    out->clock = clock;
    out->length = next - clock;
    out->offset = off;
    out->parent_kind = LOOM__PARENT_NONE;
    out->parent_name = NULL;
    out->parent_name_len = 0;
    out->parent_id = none;
    out->parent_sub = NULL;
    out->parent_sub_len = 0;
    if (flags & 0x80) {
        fast_id(&p, &out->origin);
    } else {
        out->origin = none;
    }
    if (flags & 0x40) {
        fast_id(&p, &out->right_origin);
    } else {
        out->right_origin = none;
    }
    if (flags == 0 && (ref == LOOM__REF_GC || ref == LOOM__REF_SKIP)) {
        out->content = NULL;
        out->content_len = 0;
        return;
    }
    if (!(flags & 0xc0)) {
        if (fast_varuint(&p) == 1) {
            out->parent_kind = LOOM__PARENT_ROOT;
            out->parent_name = fast_varstring(&p, &out->parent_name_len);
        } else {
            out->parent_kind = LOOM__PARENT_ID;
            fast_id(&p, &out->parent_id);
        }
        if (flags & 0x20) {
            out->parent_sub = fast_varstring(&p, &out->parent_sub_len);
        }
    }
    out->content = p;
    out->content_len = (size_t)(u->p + end - p);
}

/* ---- subdocument options ------------------------------------------------ */

/* JavaScript truthiness of a value. */
static bool truthy(const loom_any *v)
{
    switch (loom_any_kind_of(v)) {
    case LOOM_ANY_UNDEFINED:
    case LOOM_ANY_NULL:
        return false;
    case LOOM_ANY_BOOL:
        return loom_any_bool(v) != 0;
    case LOOM_ANY_NUMBER: {
        double d = loom_any_number(v);
        return d == d && d != 0;
    }
    case LOOM_ANY_BIGINT:
        return loom_any_bigint(v) != 0;
    case LOOM_ANY_STRING: {
        size_t len;
        loom_any_string(v, &len);
        return len > 0;
    }
    default:
        return true;
    }
}

/* An own property of an object value, or NULL (non-objects have none that
 * matter: spreading an array or a string only yields index keys). */
static const loom_any *own(const loom_any *opts, const char *key)
{
    if (loom_any_kind_of(opts) != LOOM_ANY_OBJECT) {
        return NULL;
    }
    return loom_any_object_get(opts, key, strlen(key));
}

/*
 * Reads ContentDoc (guid, opts) from r and derives what yjs's
 * createDocFromOpts + ContentDoc make of it. JS throws on null or undefined
 * opts; an own "guid" that is not a string would give a random or mangled
 * guid in JS, which no peer can reproduce, so it is refused as well.
 */
static int
doc_opts_read(loom__reader *r, const loom_allocator *a, loom__doc_opts *out)
{
    size_t start = r->pos;
    const char *guid;
    size_t guid_len;
    int rc = loom__read_varstring(r, &guid, &guid_len);
    if (rc) {
        return rc;
    }
    size_t at = r->pos;
    loom_any *opts = NULL;
    rc = loom__any_read(r, a, 0, &opts);
    if (rc) {
        return rc;
    }
    loom_any_kind k = loom_any_kind_of(opts);
    if (k == LOOM_ANY_NULL || k == LOOM_ANY_UNDEFINED) {
        loom_any_free(opts);
        return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                 "subdocument options are null");
    }
    const loom_any *g = own(opts, "guid");
    if (g) {
        if (loom_any_kind_of(g) != LOOM_ANY_STRING) {
            loom_any_free(opts);
            return loom__reader_fail(r, LOOM_EMALFORMED, start,
                                     "subdocument guid option is not a string");
        }
        guid = loom_any_string(g, &guid_len);
    }
    const loom_any *gc = own(opts, "gc");
    const loom_any *auto_load = own(opts, "autoLoad");
    const loom_any *should_load = own(opts, "shouldLoad");
    const loom_any *meta = own(opts, "meta");
    out->guid = guid;
    out->guid_len = guid_len;
    /* Doc's defaults apply when a member is missing or undefined. */
    out->gc = !gc || loom_any_kind_of(gc) == LOOM_ANY_UNDEFINED || truthy(gc);
    out->auto_load = auto_load && truthy(auto_load);
    out->should_load = (should_load && truthy(should_load)) || out->auto_load;
    if (meta && (loom_any_kind_of(meta) == LOOM_ANY_UNDEFINED ||
                 loom_any_kind_of(meta) == LOOM_ANY_NULL)) {
        meta = NULL;
    }
    out->meta = meta;
    out->opts = opts;
    return LOOM_OK;
}

int loom__doc_opts_read(const loom_allocator *a,
                        const uint8_t *content,
                        size_t len,
                        loom__doc_opts *out)
{
    loom__reader r;
    loom__reader_init(&r, content, len);
    loom__doc_opts o;
    memset(&o, 0, sizeof(o));
    int rc = doc_opts_read(&r, a, &o);
    if (rc) {
        return rc;
    }
    if (loom__reader_left(&r) != 0) {
        loom_any_free(o.opts);
        return LOOM_EMALFORMED;
    }
    *out = o;
    return LOOM_OK;
}

void loom__doc_opts_free(loom__doc_opts *o)
{
    if (!o) {
        return;
    }
    loom_any_free(o->opts);
    o->opts = NULL;
    o->meta = NULL;
    o->guid = NULL;
}

/* ---- content ------------------------------------------------------------ */

/* Checks JSON text read as a varString; the error points into the text. */
static int check_json(loom__reader *r, bool allow_undefined)
{
    const char *s;
    size_t len;
    int rc = loom__read_varstring(r, &s, &len);
    if (rc) {
        return rc;
    }
    /* ContentJSON compares with 'undefined' before calling JSON.parse. */
    if (allow_undefined && len == 9 && memcmp(s, "undefined", 9) == 0) {
        return LOOM_OK;
    }
    size_t off = 0;
    rc = loom__json_check(s, len, false, &off);
    if (rc) {
        size_t text = (size_t)((const uint8_t *)s - r->p);
        return loom__reader_fail(
            r, rc == LOOM_ELIMIT ? LOOM_ELIMIT : LOOM_EMALFORMED,
            text + (off < len ? off : len), "invalid JSON text");
    }
    return LOOM_OK;
}

/* Reads an element count that the remaining bytes can hold (one byte each
 * at least). */
static int read_count(loom__reader *r, uint64_t *n)
{
    size_t at = r->pos;
    int rc = loom__read_varuint7(r, n);
    if (rc) {
        return rc;
    }
    if (*n > loom__reader_left(r)) {
        return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                 "element count too large");
    }
    return LOOM_OK;
}

/* Validates the content of ref `ref` and returns its length in clock units
 * (and for Any content whether it is canonical already). */
static int read_content(loom__reader *r,
                        const loom_allocator *a,
                        uint8_t ref,
                        uint64_t *length,
                        bool *any_canon)
{
    int rc;
    uint64_t n = 0;
    const char *s;
    size_t len;
    switch (ref) {
    case LOOM__REF_DELETED:
        return loom__read_varuint7(r, length);
    case LOOM__REF_JSON:
        rc = read_count(r, &n);
        for (uint64_t i = 0; i < n && !rc; i++) {
            rc = check_json(r, true);
        }
        *length = n;
        return rc;
    case LOOM__REF_BINARY: {
        const uint8_t *p;
        *length = 1;
        return loom__read_varbytes(r, &p, &len);
    }
    case LOOM__REF_STRING: {
        size_t units = 0;
        rc = loom__read_varstring16(r, &s, &len, &units);
        *length = rc ? 0 : units;
        return rc;
    }
    case LOOM__REF_EMBED:
        *length = 1;
        return check_json(r, false);
    case LOOM__REF_FORMAT:
        *length = 1;
        rc = loom__read_varstring(r, &s, &len);
        return rc ? rc : check_json(r, false);
    case LOOM__REF_TYPE: {
        size_t at = r->pos;
        *length = 1;
        rc = loom__read_varuint7(r, &n);
        if (rc) {
            return rc;
        }
        if (n > 6) {
            return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                     "unknown shared type ref");
        }
        if (n == 3 || n == 5) {
            return loom__read_varstring(r, &s, &len);
        }
        return LOOM_OK;
    }
    case LOOM__REF_ANY:
        rc = read_count(r, &n);
        *any_canon = true;
        if (!rc) {
            rc = loom__any_check_n(r, n, any_canon);
        }
        *length = n;
        return rc;
    case LOOM__REF_DOC: {
        loom__doc_opts o;
        memset(&o, 0, sizeof(o));
        *length = 1;
        rc = doc_opts_read(r, a, &o);
        if (!rc) {
            loom__doc_opts_free(&o);
        }
        return rc;
    }
    default:
        return loom__reader_fail(r, LOOM_EMALFORMED, r->pos,
                                 "unknown content ref");
    }
}

static int read_id(loom__reader *r, loom__id *id)
{
    int rc = loom__read_varuint7(r, &id->client);
    return rc ? rc : loom__read_varuint7(r, &id->clock);
}

/* Reads one struct of `client` starting at *clock and advances *clock. */
static int read_struct(loom__reader *r,
                       const loom_allocator *a,
                       uint64_t client,
                       uint64_t *clock,
                       loom__rstruct *s)
{
    /* Only the fields read later are set up front (a memset of the whole
     * struct is a `rep stos`, slow for its size): the rest is written when
     * the info byte says it is present. */
    s->offset = r->pos;
    s->parent_kind = LOOM__PARENT_NONE;
    s->has_origin = s->has_right_origin = s->has_parent_sub = false;
    s->any_canon = false;
    s->length = 0;
    s->parent_sub = NULL;
    s->parent_sub_len = 0;
    s->content = NULL;
    s->content_len = 0;
    s->client = client;
    s->clock = *clock;
    int rc = loom__read_u8(r, &s->info);
    if (rc) {
        return rc;
    }
    uint8_t info = s->info;
    if (info == LOOM__REF_SKIP || (info & 0x1f) == 0) {
        s->ref = info == LOOM__REF_SKIP ? LOOM__REF_SKIP : LOOM__REF_GC;
        rc = loom__read_varuint7(r, &s->length);
    } else {
        s->ref = info & 0x1f;
        if (s->ref > LOOM__REF_DOC) {
            /* 10 with other bits set, and 11..31: no such content. */
            return loom__reader_fail(r, LOOM_EMALFORMED, s->offset,
                                     "unknown content ref");
        }
        s->has_origin = (info & 0x80) != 0;
        s->has_right_origin = (info & 0x40) != 0;
        s->has_parent_sub = (info & 0x20) != 0;
        if (s->has_origin) {
            rc = read_id(r, &s->origin);
        }
        if (!rc && s->has_right_origin) {
            rc = read_id(r, &s->right_origin);
        }
        if (!rc && !s->has_origin && !s->has_right_origin) {
            uint64_t parent_info;
            rc = loom__read_varuint7(r, &parent_info);
            if (!rc && parent_info == 1) {
                s->parent_kind = LOOM__PARENT_ROOT;
                rc = loom__read_varstring(r, &s->parent_name,
                                          &s->parent_name_len);
            } else if (!rc) {
                s->parent_kind = LOOM__PARENT_ID;
                rc = read_id(r, &s->parent_id);
            }
            if (!rc && s->has_parent_sub) {
                rc =
                    loom__read_varstring(r, &s->parent_sub, &s->parent_sub_len);
            }
        }
        if (rc) {
            return rc;
        }
        size_t content = r->pos;
        rc = read_content(r, a, s->ref, &s->length, &s->any_canon);
        s->content = r->p + content;
        s->content_len = r->pos - content;
    }
    if (rc) {
        return rc;
    }
    if (s->length == 0) {
        return loom__reader_fail(r, LOOM_EMALFORMED, s->offset,
                                 "zero-length struct");
    }
    if (s->clock + s->length > LOOM__CLOCK_END_MAX) {
        return loom__reader_fail(r, LOOM_EMALFORMED, s->offset,
                                 "struct clock past 2^53-1");
    }
    *clock = s->clock + s->length;
    return LOOM_OK;
}

/* Keeps what the document needs before integrating: the root names in
 * order, and the first item that refers to its own client's future. */
static int note_struct(loom__rupdate *u, const loom__rstruct *s)
{
    if (s->ref == LOOM__REF_GC || s->ref == LOOM__REF_SKIP) {
        return LOOM_OK;
    }
    if (u->self_ref == SIZE_MAX &&
        ((s->has_origin && s->origin.client == s->client &&
          s->origin.clock >= s->clock) ||
         (s->has_right_origin && s->right_origin.client == s->client &&
          s->right_origin.clock >= s->clock) ||
         (s->parent_kind == LOOM__PARENT_ID &&
          s->parent_id.client == s->client &&
          s->parent_id.clock >= s->clock))) {
        u->self_ref = s->offset;
    }
    if (s->parent_kind != LOOM__PARENT_ROOT) {
        return LOOM_OK;
    }
    if (u->nroots) {
        const loom__rname *last = &u->roots[u->nroots - 1];
        if (last->len == s->parent_name_len) {
            /* a loop, not a call: root names are short */
            size_t i = 0;
            while (i < last->len && last->p[i] == s->parent_name[i]) {
                i++;
            }
            if (i == last->len) {
                u->roots[u->nroots - 1].keyed += s->has_parent_sub;
                return LOOM_OK;
            }
        }
    }
    if (loom__vec_reserve(u->a, (void **)&u->roots, &u->roots_cap,
                          u->nroots + 1, sizeof(*u->roots))) {
        return LOOM_ENOMEM;
    }
    u->roots[u->nroots].p = s->parent_name;
    u->roots[u->nroots].len = s->parent_name_len;
    u->roots[u->nroots].keyed = s->has_parent_sub;
    u->nroots++;
    return LOOM_OK;
}

/* Ends the run whose record is rs[at - 1] and whose lengths were written
 * up to lp (NULL: no run open): a run of one struct is an ordinary record,
 * a longer one gets its count. Returns the record after the run. */
static size_t
run_close(loom__rupdate *u, loom__rpos *rs, size_t at, const uint8_t *lp)
{
    if (!lp) {
        return at;
    }
    uint64_t count = (uint64_t)(lp - ((const uint8_t *)&rs[at] + 8));
    if (count == 1) {
        rs[at - 1].bits &= ~LOOM__RS_RUN;
        return at;
    }
    memcpy(&rs[at], &count, sizeof(count));
    u->runs = true;
    return at + loom__rs_run_span(count);
}

/*
 * read_struct and note_struct at once for the structs a loaded map is made
 * of: LOOM__RS_ROOTKEY with Any content, naming the root that the struct
 * before it named, a short ASCII key and a one-byte value count that is not
 * zero. Takes the structs of blk from k on as long as they have that shape
 * (`same`: did the struct before k name a root?), reading the headers
 * through a pointer with the root's name and the input's end loaded once;
 * the values are checked by loom__any_check_n as read_content checks them
 * (a single flat object by loom__any_check_flat, its first step), so an
 * error in them is the one read_struct gives (then *rc is set). The
 * first struct of another shape is left where it starts, for read_struct.
 * The records are written from *w on (k structs of blk's nst were read
 * before), with `runs` as LOOM__RS_RUN runs where they can be; *w is
 * moved past them. Returns how many structs were taken.
 */
static size_t fast_run(loom__reader *r,
                       loom__rupdate *u,
                       loom__rblock *blk,
                       size_t k,
                       size_t nst,
                       size_t *w,
                       bool runs,
                       uint64_t *clock_io,
                       uint64_t same,
                       int *rc)
{
    /* the info byte first: most other structs stop there */
    if (r->err || r->pos >= r->len || r->p[r->pos] != (LOOM__REF_ANY | 0x20) ||
        u->nroots == 0) {
        return 0;
    }
    loom__rname *root = &u->roots[u->nroots - 1];
    const uint8_t *base = r->p, *end = r->p + r->len;
    const uint8_t *name = (const uint8_t *)root->p;
    size_t nlen = root->len;
    /* names of up to 8 bytes are compared as one masked word when 8 bytes
     * can be loaded on both sides */
    static const uint8_t ones[16] = {0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff};
    bool word = nlen <= 8 && end - name >= 8;
    uint64_t y = 0, mask = 0;
    if (word) {
        memcpy(&y, name, 8);
        memcpy(&mask, ones + 8 - nlen, 8); /* the first nlen bytes */
        y &= mask;
    }
    /* with a name of up to 5 bytes, the info byte, the parent info, the
     * name's length and the name are one masked word; a struct with room
     * after it for that word and a key of 16 bytes (FAST_ROOM) is checked
     * that way */
    enum { FAST_ROOM = 32 };
    bool hword = word && nlen <= 5;
    uint64_t hval =
        (LOOM__REF_ANY | 0x20) | 1u << 8 | (uint64_t)nlen << 16 | y << 24;
    uint64_t hmask = ~0ULL >> (8 * (5 - (hword ? nlen : 5)));
    uint64_t clock = *clock_io;
    loom__flat_shape shape;
    loom__flat_shape_init(&shape);
    const uint8_t *start = base + r->pos;
    /* the structs starting before it have FAST_ROOM bytes after them and a
     * header word to compare (none when it is the first) */
    const uint8_t *fast_end =
        hword && end - start >= FAST_ROOM ? end - (FAST_ROOM - 1) : start;
    size_t taken = 0;
    /* in locals: the stores to the records could alias them */
    loom__rpos *rs = blk->s;
    size_t at = *w;
    /* where the open run's next length goes (NULL: none open); its record
     * is rs[at - 1] */
    uint8_t *lp = NULL;
    uint64_t bits = (uint64_t)LOOM__REF_ANY << LOOM__RS_REF_SHIFT |
                    LOOM__RS_ROOTKEY | same | LOOM__RS_CANON;
    for (; k < nst; k++) {
        const uint8_t *p = start + 3;
        size_t klen;
        if (start < fast_end) {
            uint64_t x;
            memcpy(&x, start, 8);
            if ((x & hmask) != hval) {
                break;
            }
            /* a key of up to 16 bytes and its count byte end FAST_ROOM - 6
             * bytes after start at most */
            p += nlen;
            klen = *p++;
            if (klen > 16 || !loom__ascii_short(p, klen)) {
                break;
            }
        } else {
            if (end - start < 8 || start[0] != (LOOM__REF_ANY | 0x20) ||
                start[1] != 1 || start[2] != nlen) {
                break;
            }
            /* the name, its key length and at least one byte after are
             * there */
            if (nlen > (size_t)(end - p) - 2) {
                break;
            }
            if (word && end - p >= 8) {
                uint64_t x;
                memcpy(&x, p, 8);
                if ((x & mask) != y) {
                    break;
                }
            } else {
                size_t i = 0;
                while (i < nlen && p[i] == name[i]) {
                    i++;
                }
                if (i < nlen) {
                    break;
                }
            }
            p += nlen;
            klen = *p++;
            /* the key and the count byte */
            if (klen > 16 || klen >= (size_t)(end - p) ||
                !loom__ascii_short(p, klen)) {
                break;
            }
        }
        p += klen;
        uint64_t n = *p++;
        if (n - 1 >= 0x7f || n > (size_t)(end - p) ||
            clock + n > LOOM__CLOCK_END_MAX) {
            break;
        }
        /* one flat object (a map entry's value, mostly): checked without
         * loom__any_check_n's reader and loops */
        const uint8_t *q = n == 1 ? loom__any_check_flat(p, end, &shape) : NULL;
        uint64_t rec;
        if (q) {
            if (lp && (size_t)(q - start) <= 0xff) {
                /* one more of the open run: the bytes are those of the
                 * records the run's structs would have taken */
                *lp++ = (uint8_t)(q - start);
                goto taken;
            }
            rec = clock | bits;
        } else {
            bool canon = true;
            r->pos = (size_t)(p - base);
            if ((*rc = loom__any_check_n(r, n, &canon))) {
                return taken;
            }
            q = base + r->pos;
            rec = clock | (canon ? bits : bits & ~LOOM__RS_CANON);
            if (lp && canon && (size_t)(q - start) <= 0xff) {
                *lp++ = (uint8_t)(q - start);
                goto taken;
            }
        }
        at = run_close(u, rs, at, lp);
        lp = NULL;
        rs[at].bits = rec;
        rs[at].offset = (size_t)(start - base);
        at++;
        /* a run opens with a struct that can be in one and is not the
         * block's last (its length goes where the record after it would) */
        if (runs && k + 1 < nst && (size_t)(q - start) <= 0xff &&
            (rec & LOOM__RS_CANON)) {
            rs[at - 1].bits |= LOOM__RS_RUN;
            lp = (uint8_t *)&rs[at] + 8;
            *lp++ = (uint8_t)(q - start);
        }
    taken:
        clock += n;
        bits |= LOOM__RS_SAMEROOT;
        taken++;
        start = q;
    }
    r->pos = (size_t)(start - base);
    root->keyed += taken;
    *clock_io = clock;
    *w = run_close(u, rs, at, lp);
    return taken;
}

/*
 * read_struct and note_struct at once for the structs typed text is made
 * of: an Item with String or Deleted content and an origin or a right
 * origin (so no parent info), its varUints of up to 7 bytes. Takes the structs of blk
 * from k on as long as they have that shape and are valid, checking them
 * as read_struct does; the first struct that is not taken (another shape,
 * or anything read_struct would refuse) is left where it starts, for
 * read_struct, which then gives its error. Their records go from record
 * w on. Returns how many were taken.
 */
static size_t text_run(loom__reader *r,
                       loom__rupdate *u,
                       loom__rblock *blk,
                       size_t k,
                       size_t w,
                       uint64_t *clock_io)
{
    const uint8_t *base = r->p, *end = r->p + r->len;
    const uint8_t *start = base + r->pos;
    uint64_t client = blk->client, clock = *clock_io;
    size_t taken = 0;
    /* the info byte, four varUints of up to 7 bytes (loom__varuint8_at
     * loads 8 bytes at the last) and the text's length, a varUint of up to
     * 7 bytes, can be read without checks */
    for (; k < blk->cap && end - start >= 1 + 4 * 7 + 7; k++) {
        uint8_t info = start[0], ref = info & 0x1f;
        if ((ref != LOOM__REF_STRING && ref != LOOM__REF_DELETED) ||
            !(info & 0xc0)) {
            break;
        }
        const uint8_t *p = start + 1;
        loom__id o = {0, 0}, ro = {0, 0};
        if ((info & 0x80) && (!(p = loom__varuint8_at(p, &o.client)) ||
                              !(p = loom__varuint8_at(p, &o.clock)))) {
            break;
        }
        if ((info & 0x40) && (!(p = loom__varuint8_at(p, &ro.client)) ||
                              !(p = loom__varuint8_at(p, &ro.clock)))) {
            break;
        }
        uint64_t n, units;
        if (!(p = loom__varuint7_at(p, &n))) {
            break;
        }
        if (ref == LOOM__REF_DELETED) {
            units = n; /* the length; nothing follows */
            n = 0;
        } else {
            size_t u16;
            if (n > (uint64_t)(end - p) ||
                loom__utf8_check16((const char *)p, (size_t)n, &u16) != n) {
                break;
            }
            units = u16;
        }
        if (units == 0 || clock + units > LOOM__CLOCK_END_MAX) {
            break;
        }
        if (u->self_ref == SIZE_MAX &&
            (((info & 0x80) && o.client == client && o.clock >= clock) ||
             ((info & 0x40) && ro.client == client && ro.clock >= clock))) {
            u->self_ref = (size_t)(start - base);
        }
        blk->s[w + taken].bits =
            clock | (uint64_t)ref << LOOM__RS_REF_SHIFT | LOOM__RS_ORIGINS;
        blk->s[w + taken].offset = (size_t)(start - base);
        clock += units;
        start = p + n;
        taken++;
    }
    r->pos = (size_t)(start - base);
    *clock_io = clock;
    return taken;
}

/* Has s (read from p) the shape LOOM__RS_ROOTKEY names? */
static bool is_rootkey(const uint8_t *p, const loom__rstruct *s)
{
    if (s->parent_kind != LOOM__PARENT_ROOT || !s->has_parent_sub) {
        return false; /* GC, Skip, origins or an ID parent */
    }
    p += s->offset;
    return p[1] == 1 && p[2] < 0x80 && p[3 + p[2]] < 0x80;
}

/* runs: keep runs of map entries as LOOM__RS_RUN records */
static int parse(loom__reader *r, loom__rupdate *u, bool runs)
{
    uint64_t nblocks;
    size_t at = r->pos;
    int rc = loom__read_varuint7(r, &nblocks);
    if (rc) {
        return rc;
    }
    /* A block takes at least three bytes: struct count, client, clock. */
    if (nblocks > loom__reader_left(r) / 3) {
        return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                 "client block count too large");
    }
    if (nblocks > 0) {
        u->blocks = loom__calloc(u->a, (size_t)nblocks * sizeof(*u->blocks));
        if (!u->blocks) {
            return LOOM_ENOMEM;
        }
        u->nblocks = (size_t)nblocks;
    }
    for (size_t i = 0; i < u->nblocks; i++) {
        loom__rblock *blk = &u->blocks[i];
        uint64_t nstructs, clock;
        at = r->pos;
        if (loom__read_varuint7(r, &nstructs) ||
            loom__read_varuint7(r, &blk->client) ||
            loom__read_varuint7(r, &blk->first_clock)) {
            return r->err;
        }
        /* A struct takes at least two bytes (info and a length or content). */
        if (nstructs > loom__reader_left(r) / 2) {
            return loom__reader_fail(r, LOOM_EMALFORMED, at,
                                     "struct count too large");
        }
        if (nstructs == 0) {
            continue;
        }
        blk->s = loom__malloc(u->a, (size_t)nstructs * sizeof(*blk->s));
        if (!blk->s) {
            return LOOM_ENOMEM;
        }
        blk->cap = (size_t)nstructs;
        clock = blk->first_clock;
        /* LOOM__RS_SAMEROOT for a fast one when the struct before named a
         * root: the last root, which the fast one names too */
        uint64_t same = 0;
        /* struct k goes to record w (w < k after a run) */
        size_t w = 0, nst = blk->cap;
        for (size_t k = 0; k < nst; k++) {
            size_t taken =
                fast_run(r, u, blk, k, nst, &w, runs, &clock, same, &rc);
            if (rc) {
                return rc;
            }
            if (taken) {
                same = LOOM__RS_SAMEROOT;
                k += taken;
                if (k == nst) {
                    break;
                }
            }
            taken = text_run(r, u, blk, k, w, &clock);
            if (taken) {
                same = 0;
                k += taken;
                w += taken;
                if (k == nst) {
                    break;
                }
            }
            loom__rstruct s;
            rc = read_struct(r, u->a, blk->client, &clock, &s);
            if (!rc) {
                rc = note_struct(u, &s);
            }
            if (rc) {
                return rc;
            }
            blk->s[w].bits = s.clock | (uint64_t)s.ref << LOOM__RS_REF_SHIFT |
                             (s.any_canon ? LOOM__RS_CANON : 0) |
                             (is_rootkey(r->p, &s) ? LOOM__RS_ROOTKEY : 0) |
                             (uint64_t)(s.has_origin | s.has_right_origin)
                                 << LOOM__RS_ORIGINS_SHIFT;
            blk->s[w].offset = s.offset;
            w++;
            same = s.parent_kind == LOOM__PARENT_ROOT ? LOOM__RS_SAMEROOT : 0;
        }
        blk->n = w;
        blk->end_clock = clock;
        blk->end = r->pos;
    }
    rc = loom__ds_read(r, &u->ds);
    if (rc) {
        return rc;
    }
    if (loom__reader_left(r) != 0) {
        return loom__reader_fail(r, LOOM_EMALFORMED, r->pos,
                                 "trailing bytes after the delete set");
    }
    return LOOM_OK;
}

static int update_parse(const loom_allocator *a,
                        const uint8_t *p,
                        size_t len,
                        size_t input,
                        bool runs,
                        loom__rupdate *out,
                        loom_error *err)
{
    loom__reader r;
    loom__reader_init(&r, p, len);
    loom__rupdate u;
    memset(&u, 0, sizeof(u));
    u.a = a;
    u.p = p;
    u.self_ref = SIZE_MAX;
    loom__ds_init(&u.ds, a);
    int rc = parse(&r, &u, runs);
    if (rc) {
        if (r.err) {
            loom__reader_error(&r, err, input);
        } else {
            loom__error_set(err, rc, r.pos, input, NULL);
        }
        loom__rupdate_free(&u);
        return r.err ? r.err : rc;
    }
    *out = u;
    return LOOM_OK;
}

int loom__update_parse(const loom_allocator *a,
                       const uint8_t *p,
                       size_t len,
                       size_t input,
                       loom__rupdate *out,
                       loom_error *err)
{
    return update_parse(a, p, len, input, false, out, err);
}

int loom__update_parse_load(const loom_allocator *a,
                            const uint8_t *p,
                            size_t len,
                            loom__rupdate *out,
                            loom_error *err)
{
    return update_parse(a, p, len, 0, true, out, err);
}

int loom__rupdate_expand(loom__rupdate *u)
{
    for (size_t i = 0; i < u->nblocks && u->runs; i++) {
        loom__rblock *b = &u->blocks[i];
        if (b->cap == 0) {
            continue;
        }
        loom__rpos *s = loom__malloc(u->a, b->cap * sizeof(*s));
        if (!s) {
            return LOOM_ENOMEM;
        }
        size_t w = 0;
        for (size_t k = 0; k < b->n; k++) {
            s[w++] = b->s[k];
            if (!(b->s[k].bits & LOOM__RS_RUN)) {
                continue;
            }
            /* the structs after the run's first one, each one's clock after
             * the values of the one before, which name the same root */
            uint64_t count = loom__rs_run_count(b, k);
            const uint8_t *lens = loom__rs_run_lens(b, k);
            uint64_t bits = b->s[k].bits & ~LOOM__RS_RUN;
            size_t off = b->s[k].offset;
            s[w - 1].bits = bits;
            bits |= LOOM__RS_SAMEROOT;
            for (uint64_t j = 1; j < count; j++) {
                bits += loom__rs_run_values(u->p + off);
                off += lens[j - 1];
                s[w].bits = bits;
                s[w].offset = off;
                w++;
            }
            k += loom__rs_run_span(count);
        }
        loom__free(u->a, b->s, b->cap * sizeof(*b->s));
        b->s = s;
        b->n = w;
    }
    u->runs = false;
    return LOOM_OK;
}
