/*
 * codec.h: the Yjs update v1 format without a document. Parsing an update
 * into structs whose content stays as raw (validated) bytes, writing such
 * structs back (whole or sliced at an offset), delete sets, state vectors,
 * and the doc-free algebra built on them (merge, diff, state vector from an
 * update). The document layer (crdt/) reuses the parser to apply updates and
 * the writer to keep pending structs.
 */
#ifndef LOOM_CODEC_H
#define LOOM_CODEC_H

#include "base/base.h"
#include "loom/any.h"
#include "loom/common.h"

/* The varUint at p when it takes at most 7 bytes (below 2^49: clocks,
 * client ids, lengths): the byte after it, or NULL for a longer one (then
 * *out is not written). Reads up to 7 bytes, none past the first byte
 * below 0x80: p must have 7 bytes readable or hold a checked varUint. */
static inline const uint8_t *loom__varuint7_at(const uint8_t *p, uint64_t *out)
{
    uint64_t v = p[0];
    if (v < 0x80) {
        *out = v;
        return p + 1;
    }
    v &= 0x7f;
    for (unsigned i = 1; i < 7; i++) {
        uint64_t c = p[i];
        v |= (c & 0x7f) << (7 * i);
        if (c < 0x80) {
            *out = v;
            return p + i + 1;
        }
    }
    return NULL;
}

/* loom__varuint8_at for a varUint of 4 to 7 bytes (x: its first 8),
 * put together without a loop; NULL for a longer one. */
const uint8_t *loom__varuint8_long(const uint8_t *p, uint64_t x, uint64_t *out);

/* loom__varuint7_at for a p with 8 bytes readable: the varUint's bytes
 * come from one load, and one of more than a byte is put together without
 * a loop (the ids of typed text are mostly three-byte clocks, which the
 * loop read byte by byte). The word is little-endian, as in the word
 * compares of any_internal.h. */
static inline const uint8_t *loom__varuint8_at(const uint8_t *p, uint64_t *out)
{
    uint64_t x;
    memcpy(&x, p, sizeof(x));
    if (!(x & 0x80)) {
        *out = x & 0x7f;
        return p + 1;
    }
    if (!(x & 0x8000)) {
        *out = (x & 0x7f) | (x >> 1 & 0x3f80);
        return p + 2;
    }
    if (!(x & 0x800000)) {
        *out = (x & 0x7f) | (x >> 1 & 0x3f80) | (x >> 2 & 0x1fc000);
        return p + 3;
    }
    return loom__varuint8_long(p, x, out);
}

/* loom__read_varuint with varUints of up to 7 bytes read inline: an
 * update's clocks and ids are mostly two to five bytes, which the inline
 * reader leaves to a call. */
static inline int loom__read_varuint7(loom__reader *r, uint64_t *out)
{
    /* with 7 bytes left, only the length of the number is checked */
    if (!r->err && r->pos + 7 <= r->len) {
        const uint8_t *q = loom__varuint7_at(r->p + r->pos, out);
        if (q) {
            r->pos = (size_t)(q - r->p);
            return LOOM_OK;
        }
    }
    return loom__read_varuint(r, out);
}

typedef struct loom__id {
    uint64_t client;
    uint64_t clock;
} loom__id;

/* Struct kinds / content refs (the low 5 bits of the info byte). */
enum {
    LOOM__REF_GC = 0,
    LOOM__REF_DELETED = 1,
    LOOM__REF_JSON = 2,
    LOOM__REF_BINARY = 3,
    LOOM__REF_STRING = 4,
    LOOM__REF_EMBED = 5,
    LOOM__REF_FORMAT = 6,
    LOOM__REF_TYPE = 7,
    LOOM__REF_ANY = 8,
    LOOM__REF_DOC = 9,
    LOOM__REF_SKIP = 10
};

/* Parent encodings of an item header. */
enum {
    LOOM__PARENT_NONE = 0, /* not encoded: taken from the origin's neighbour */
    LOOM__PARENT_ROOT = 1, /* a root type name */
    LOOM__PARENT_ID = 2    /* the ID of the item holding the parent type */
};

/*
 * One struct of an update, decoded (loom__rstruct_get). Pointers point into
 * the input bytes, which must outlive the struct. `content` is the raw
 * content payload (everything after the item header), already validated:
 * strings are valid UTF-8, Any values well formed, JSON text parses, type
 * refs are 0..6.
 */
typedef struct loom__rstruct {
    uint8_t info;        /* the info byte as read */
    uint8_t ref;         /* info & 0x1f, with GC = 0 and Skip = 10 */
    uint8_t parent_kind; /* LOOM__PARENT_* */
    bool has_origin, has_right_origin;
    bool has_parent_sub; /* info bit 5 */
    /* Any content (ref 8): the values after the count are already what
     * loom__any_canon writes, so they can be copied as they are. */
    bool any_canon;
    uint64_t client, clock;
    uint64_t
        length; /* clock units: UTF-16 units for strings, elements for Any/JSON */
    loom__id origin, right_origin;
    const char *parent_name; /* ROOT */
    size_t parent_name_len;
    loom__id parent_id; /* ID */
    const char
        *parent_sub; /* the key when encoded (parent_kind != NONE), else NULL */
    size_t parent_sub_len;
    const uint8_t *content; /* raw content payload */
    size_t content_len;
    size_t offset; /* byte offset of the struct's info byte in the input */
} loom__rstruct;

/*
 * What the parser keeps of one struct: 16 bytes instead of a decoded
 * loom__rstruct, because loading a large update would otherwise write (and
 * page-fault in) 136 bytes per struct. `bits` holds the clock (bits 0..52;
 * the parser refuses clocks past 2^53), the ref (bits 56..60), whether Any
 * content is canonical (bit 63), whether the struct has the shape of a
 * loaded map entry (bit 62, LOOM__RS_ROOTKEY) and whether it has origins
 * (bit 54, LOOM__RS_ORIGINS); the length is the distance to
 * the next struct's clock. Read it with the loom__rs_* helpers or decode it
 * with loom__rstruct_get.
 */
typedef struct loom__rpos {
    uint64_t bits;
    size_t offset; /* of the info byte in the input */
} loom__rpos;

#define LOOM__RS_CLOCK_MASK ((1ULL << 53) - 1)
#define LOOM__RS_REF_SHIFT  56
#define LOOM__RS_CANON      (1ULL << 63)
/* An Item with no origin and no rightOrigin whose parent info is the single
 * byte 01 (a root name) and which has a parent_sub, the name and the key
 * each with a one-byte length: what every entry of a map that was loaded or
 * set key by key looks like. Such a struct is decoded by loom__rs_rootkey,
 * which only has to step over three lengths. */
#define LOOM__RS_ROOTKEY (1ULL << 62)
/* A LOOM__RS_ROOTKEY struct naming the root that the struct before it in
 * its block names. */
#define LOOM__RS_SAMEROOT (1ULL << 61)
/*
 * Only in an update parsed by loom__update_parse_load: a run of two or more
 * LOOM__RS_ROOTKEY structs with canonical Any content and a one-byte value
 * count, each of at most 255 bytes, in one record and the ones after it.
 * The record is the first struct's (its clock, offset and SAMEROOT; the
 * others name the same root); the next ceil((8 + count) / 16) records hold
 * the count (8 bytes) and each struct's length in bytes (one byte each),
 * so that loading a map writes one byte per entry instead of a record.
 * Struct k + 1 starts where struct k ends, at the clock after its values.
 */
#define LOOM__RS_RUN (1ULL << 55)
/* An Item with an origin or a right origin (so without parent info), of
 * any content: what typed text and arrays are made of. Applying takes
 * such a struct without decoding it whole (its ids and content are all
 * it has). */
#define LOOM__RS_ORIGINS_SHIFT 54
#define LOOM__RS_ORIGINS       (1ULL << LOOM__RS_ORIGINS_SHIFT)

/* A client block: consecutive structs of one client, as they appear. */
typedef struct loom__rblock {
    uint64_t client;
    uint64_t first_clock;
    loom__rpos *s;
    size_t n;           /* records: structs, unless the update has runs */
    size_t cap;         /* records allocated (the block's struct count) */
    uint64_t end_clock; /* the clock after the last struct */
    size_t end;         /* the byte offset after the last struct */
} loom__rblock;

/* The struct count of the LOOM__RS_RUN record k of b, its structs' lengths
 * in bytes (one byte each), and how many records after k hold the two. */
static inline uint64_t loom__rs_run_count(const loom__rblock *b, size_t k)
{
    uint64_t count;
    memcpy(&count, &b->s[k + 1], sizeof(count));
    return count;
}
static inline const uint8_t *loom__rs_run_lens(const loom__rblock *b, size_t k)
{
    return (const uint8_t *)&b->s[k + 1] + sizeof(uint64_t);
}
static inline size_t loom__rs_run_span(uint64_t count)
{
    return (size_t)(sizeof(uint64_t) + count + sizeof(loom__rpos) - 1) /
           sizeof(loom__rpos);
}
/* The value count of a run's struct at e (its info byte): one byte after
 * its parent info, its root name and its key, each with a one-byte length. */
static inline uint64_t loom__rs_run_values(const uint8_t *e)
{
    return e[4 + e[2] + e[3 + e[2]]];
}

static inline uint64_t loom__rs_clock(const loom__rblock *b, size_t k)
{
    return b->s[k].bits & LOOM__RS_CLOCK_MASK;
}

static inline uint8_t loom__rs_ref(const loom__rblock *b, size_t k)
{
    return (uint8_t)((b->s[k].bits >> LOOM__RS_REF_SHIFT) & 0x1f);
}

static inline uint64_t loom__rs_length(const loom__rblock *b, size_t k)
{
    uint64_t end = k + 1 < b->n ? loom__rs_clock(b, k + 1) : b->end_clock;
    return end - loom__rs_clock(b, k);
}

/* The parts of a LOOM__RS_ROOTKEY struct. */
typedef struct loom__rootkey {
    const char *name, *key;
    size_t name_len, key_len;
    const uint8_t *content; /* the content payload, as in loom__rstruct */
    size_t content_len;
} loom__rootkey;

/* Delete set: per client, ranges sorted by clock after normalising.
 * Clients are always kept in descending id order (the order yjs writes), so
 * lookups are binary searches. */
typedef struct loom__ds_range {
    uint64_t clock, len;
} loom__ds_range;

typedef struct loom__ds_client {
    uint64_t client;
    loom__ds_range *r;
    size_t n, cap;
} loom__ds_client;

typedef struct loom__ds {
    loom__ds_client *c;
    size_t n, cap;
    const loom_allocator *a;
    loom__ds_range *spare; /* ranges kept by loom__ds_clear for reuse */
    size_t spare_cap;
} loom__ds;

void loom__ds_init(loom__ds *ds, const loom_allocator *a);
void loom__ds_free(loom__ds *ds);
/* Empties the set, keeping memory for the next use (a transaction's). */
void loom__ds_clear(loom__ds *ds);
/* Appends a range (no sorting). len 0 is ignored. */
int loom__ds_add(loom__ds *ds, uint64_t client, uint64_t clock, uint64_t len);
/* loom__ds_add, but a range starting where the client's last range ends
 * extends that one, as loom__ds_normalize would join them: deleting items
 * one by one in clock order (a transaction) adds one range per run. */
int loom__ds_add_joined(loom__ds *ds,
                        uint64_t client,
                        uint64_t clock,
                        uint64_t len);
/* Sorts each client's ranges by clock and merges overlapping or touching
 * ones (a.clock + a.len >= b.clock); drops clients without ranges. */
void loom__ds_normalize(loom__ds *ds);
/* Adds every range of src to dst (no normalising). */
int loom__ds_merge_into(loom__ds *dst, const loom__ds *src);
/* Is (client, clock) inside a range? ds must be normalised. */
bool loom__ds_contains(const loom__ds *ds, uint64_t client, uint64_t clock);
/* The ranges of one client, or NULL. */
const loom__ds_client *loom__ds_find(const loom__ds *ds, uint64_t client);
bool loom__ds_equal(const loom__ds *a, const loom__ds *b); /* both normalised */
bool loom__ds_empty(const loom__ds *ds);
/* Writes the v1 delete set, clients in descending id order (ranges as
 * stored). */
int loom__ds_write(loom_buf *b, const loom__ds *ds);
/* Reads a v1 delete set (clients with 0 ranges skipped; a client listed
 * twice gets both lists of ranges, in order). Unlike loom__ds_add, ranges of
 * length 0 are kept: yjs keeps them too, re-encodes them in diffUpdate, and
 * applying one can split an item. A range ending past 2^53-1 is malformed.
 * On failure ds is unchanged. */
int loom__ds_read(loom__reader *r, loom__ds *ds);

/* A root type name as an update names it. */
typedef struct loom__rname {
    const char *p;
    size_t len;
    /* How many structs naming it (this entry and the struct runs folded
     * into it) carry a key: at most the keys the update adds to that map,
     * so the map can make room for them at once. */
    size_t keyed;
} loom__rname;

/* A parsed update. Owns its arrays, not the input bytes, which it points
 * into: the caller keeps them alive while it uses the parsed update. */
typedef struct loom__rupdate {
    const uint8_t *p;     /* the input */
    loom__rblock *blocks; /* in input order */
    size_t nblocks;
    loom__ds ds;
    /* The root names of the structs, in order of appearance, without a name
     * repeated from the struct naming a root before (the document creates
     * them before integrating). */
    loom__rname *roots;
    size_t nroots, roots_cap;
    /* The offset of the first item referring to a clock of its own client
     * that is not before it (no valid writer makes one), or SIZE_MAX. */
    size_t self_ref;
    const loom_allocator *a;
    bool runs; /* some block has LOOM__RS_RUN records */
} loom__rupdate;

/* Parses and validates a whole v1 update (trailing bytes after the delete set
 * are an error). On failure nothing is left allocated and err (optional) is
 * filled with the offset; `input` is copied into err->input. */
int loom__update_parse(const loom_allocator *a,
                       const uint8_t *p,
                       size_t len,
                       size_t input,
                       loom__rupdate *out,
                       loom_error *err);
/* loom__update_parse for applying: runs of map entries may be kept as
 * LOOM__RS_RUN records (u->runs says whether any was), which only
 * apply.c reads, or expands first with loom__rupdate_expand. */
int loom__update_parse_load(const loom_allocator *a,
                            const uint8_t *p,
                            size_t len,
                            loom__rupdate *out,
                            loom_error *err);
/* Makes every struct of a loom__update_parse_load update one record again,
 * as loom__update_parse gives them. */
int loom__rupdate_expand(loom__rupdate *u);
void loom__rupdate_free(loom__rupdate *u);
/* Decodes struct k of block b of a parsed update (whose input is alive). */
void loom__rstruct_get(const loom__rupdate *u,
                       const loom__rblock *b,
                       size_t k,
                       loom__rstruct *out);

/* The byte offset after struct k of block b. */
static inline size_t loom__rs_end(const loom__rblock *b, size_t k)
{
    return k + 1 < b->n ? b->s[k + 1].offset : b->end;
}

/* Decodes struct k of block b, which has LOOM__RS_ROOTKEY: info byte, 01,
 * the name and the key, each after its one-byte length, then content. */
static inline void loom__rs_rootkey(const loom__rupdate *u,
                                    const loom__rblock *b,
                                    size_t k,
                                    loom__rootkey *out)
{
    const uint8_t *p = u->p + b->s[k].offset + 2;
    out->name_len = p[0];
    out->name = (const char *)p + 1;
    p += 1 + p[0];
    out->key_len = p[0];
    out->key = (const char *)p + 1;
    p += 1 + p[0];
    out->content = p;
    out->content_len = (size_t)(u->p + loom__rs_end(b, k) - p);
}

/*
 * What yjs makes of a ContentDoc payload (createDocFromOpts + ContentDoc):
 * an own "guid" member of the options replaces the written guid; gc is false
 * only for a falsy, non-undefined gc member; autoLoad is its truthiness;
 * shouldLoad = shouldLoad || autoLoad; meta is kept unless null/undefined.
 * This is also exactly what yjs writes back ({gc:false}, {autoLoad:true},
 * {meta}, in that order). The parser refuses null/undefined options (JS
 * throws) and a non-string "guid" member.
 */
typedef struct loom__doc_opts {
    const char *guid; /* borrowed: from the content bytes or from `opts` */
    size_t guid_len;
    bool gc, auto_load, should_load;
    const loom_any *meta; /* borrowed from `opts`; NULL when absent */
    loom_any *opts;       /* the decoded options value, owned */
} loom__doc_opts;

/* Reads a validated ContentDoc payload (rstruct content of ref 9). Free with
 * loom__doc_opts_free. */
int loom__doc_opts_read(const loom_allocator *a,
                        const uint8_t *content,
                        size_t len,
                        loom__doc_opts *out);
void loom__doc_opts_free(loom__doc_opts *o);

/* Writes one struct starting `offset` clock units into it (0: whole).
 * With offset > 0 an item is written with origin (client, clock+offset-1)
 * and the tail of its content (a cut inside a surrogate pair writes U+FFFD),
 * GC/Skip/Deleted with length - offset. Parent info is written only when the
 * written struct has no origin and no rightOrigin; a root parent as its
 * name, an ID parent as the ID.
 *
 * As yjs's Item.write: the info byte is rebuilt as ref | 0x80 (origin
 * written) | 0x40 (rightOrigin) | 0x20 (parent_sub != NULL). An item read
 * with an origin has no parent_sub, so its 0x20 flag is NOT written back
 * (yjs drops it too: mergeUpdates turns a8 into 88). Content is re-encoded
 * the way yjs re-encodes decoded content: Any values canonically, JSON text
 * as JSON.stringify(JSON.parse(text)), Doc options normalised, varUints
 * minimal; GC as exactly 00 and Skip as 0a. offset >= length is LOOM_EINVAL.
 * On failure b keeps its previous length. */
int loom__rstruct_write(loom_buf *b, const loom__rstruct *s, uint64_t offset);

/* State vectors: client -> clock. Entries are kept in descending client
 * order. */
typedef struct loom__sv_entry {
    uint64_t client, clock;
} loom__sv_entry;

typedef struct loom__sv {
    loom__sv_entry *e;
    size_t n, cap;
    const loom_allocator *a;
} loom__sv;

void loom__sv_init(loom__sv *sv, const loom_allocator *a);
void loom__sv_free(loom__sv *sv);
/* Sets client -> clock (the last write wins). */
int loom__sv_set(loom__sv *sv, uint64_t client, uint64_t clock);
/* The clock of a client, 0 if absent. */
uint64_t loom__sv_get(const loom__sv *sv, uint64_t client);
/* Reads a v1 state vector (duplicates: the last wins). */
int loom__sv_read(loom__reader *r, loom__sv *sv);
/* Writes a state vector with clients in descending id order, skipping
 * clock 0 entries. */
int loom__sv_write(loom_buf *b, const loom__sv *sv);

/* Doc-free algebra on parsed updates (the public functions in update.h wrap
 * these). Output and temporaries use out->alloc. loom__merge_parsed always
 * re-encodes, even a single input (the "one input is returned unchanged"
 * rule of mergeUpdates is in loom_update_merge). loom__diff_parsed writes
 * u->ds as it was read. */
int loom__merge_parsed(const loom__rupdate *const *ups,
                       size_t n,
                       loom_buf *out);
int loom__diff_parsed(const loom__rupdate *u,
                      const loom__sv *sv,
                      loom_buf *out);

/* Writes the empty update (00 00). */
int loom__write_empty_update(loom_buf *b);

#endif
