/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/trace.c: loads a josephg/editing-traces sequential trace for
 * `loom bench trace` (see trace.h and bench/README.md).
 *
 * The file is read through zlib's gzread, which inflates gzip and passes
 * plain JSON through unchanged, then parsed with jansson. Positions and
 * lengths in the trace count Unicode code points; loom counts UTF-16 units.
 * The conversion replays the trace once on a "shadow" document that holds
 * only the UTF-16 width (1 or 2) of every code point, in a gap buffer: the
 * gap follows the edit position, so the work is the distance between
 * consecutive edits (small in real traces) and the UTF-16 offset of the gap
 * is kept up to date as it moves. This is exact for traces with characters
 * outside the BMP too, not only for the BMP-only ones shipped in bench/.
 */
#include "trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "cli.h"

/* ---- reading the file -------------------------------------------------- */

/* The whole file, inflated if it is gzip. malloc'd into *data. */
static int read_maybe_gz(const char *path, char **data, size_t *len)
{
    gzFile f = gzopen(path, "rb");
    if (f == NULL) {
        cli_error("%s: cannot open", path);
        return CLI_FAIL;
    }
    (void)gzbuffer(f, 256u * 1024u);
    size_t cap = (size_t)4 << 20;
    size_t n = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        (void)gzclose(f);
        cli_error("%s: out of memory", path);
        return CLI_FAIL;
    }
    for (;;) {
        if (cap - n < (size_t)1 << 20) {
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                free(buf);
                (void)gzclose(f);
                cli_error("%s: out of memory", path);
                return CLI_FAIL;
            }
            buf = p;
            cap *= 2;
        }
        int got = gzread(f, buf + n, (unsigned)((size_t)1 << 20));
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(f, &zerr);
            cli_error("%s: read error: %s", path, msg ? msg : "zlib error");
            free(buf);
            (void)gzclose(f);
            return CLI_FAIL;
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
    }
    (void)gzclose(f);
    *data = buf;
    *len = n;
    return CLI_OK;
}

/* ---- the shadow document (UTF-16 widths in a gap buffer) --------------- */

typedef struct shadow {
    uint8_t *w;   /* width in UTF-16 units of each code point */
    size_t cap;   /* of w */
    size_t gs;    /* gap start = code points before the gap */
    size_t ge;    /* gap end: w[ge..cap) is the rest of the document */
    size_t units; /* UTF-16 units in w[0..gs) */
} shadow;

static size_t shadow_len(const shadow *s)
{
    return s->gs + (s->cap - s->ge);
}

static void shadow_move(shadow *s, size_t cp)
{
    while (s->gs > cp) {
        s->gs--;
        s->ge--;
        s->w[s->ge] = s->w[s->gs];
        s->units -= s->w[s->ge];
    }
    while (s->gs < cp) {
        s->w[s->gs] = s->w[s->ge];
        s->units += s->w[s->gs];
        s->gs++;
        s->ge++;
    }
}

/* Makes room for `n` more code points in the gap. */
static int shadow_reserve(shadow *s, size_t n)
{
    if (s->ge - s->gs >= n) {
        return 0;
    }
    size_t tail = s->cap - s->ge;
    size_t want = shadow_len(s) + n + 4096;
    size_t ncap = s->cap * 2 > want ? s->cap * 2 : want;
    uint8_t *p = realloc(s->w, ncap);
    if (p == NULL) {
        return -1;
    }
    memmove(p + ncap - tail, p + s->ge, tail);
    s->w = p;
    s->ge = ncap - tail;
    s->cap = ncap;
    return 0;
}

/* Number of code points in UTF-8 `s` (valid, as jansson guarantees) and
 * their UTF-16 units. */
static void utf8_count(const char *s, size_t len, size_t *cps, size_t *units)
{
    size_t c = 0;
    size_t u = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        if ((b & 0xC0) != 0x80) {
            c++;
            u += b >= 0xF0 ? 2 : 1;
        }
    }
    *cps = c;
    *units = u;
}

/* ---- building the patch list ------------------------------------------- */

typedef struct builder {
    const char *path;
    trace *t;
    size_t cap_patches;
    size_t cap_text;
    shadow sh;
} builder;

static int oom(const builder *b)
{
    cli_error("%s: out of memory", b->path);
    return CLI_FAIL;
}

static int push_text(builder *b, const char *s, size_t len)
{
    trace *t = b->t;
    if (t->text_len + len > b->cap_text) {
        size_t ncap = b->cap_text ? b->cap_text * 2 : (size_t)64 * 1024;
        while (ncap < t->text_len + len) {
            ncap *= 2;
        }
        char *p = realloc(t->text, ncap);
        if (p == NULL) {
            return oom(b);
        }
        t->text = p;
        b->cap_text = ncap;
    }
    if (len > 0) {
        memcpy(t->text + t->text_len, s, len);
    }
    t->text_len += len;
    return CLI_OK;
}

static int bad_patch(const builder *b, size_t txn, size_t k, const char *why)
{
    cli_error("%s: txns[%zu].patches[%zu]: %s", b->path, txn, k, why);
    return CLI_FAIL;
}

/* Reads a non-negative integer that fits in a size_t. */
static int get_count(const json_t *v, size_t *out)
{
    if (!json_is_integer(v)) {
        return -1;
    }
    json_int_t i = json_integer_value(v);
    if (i < 0 || (unsigned long long)i > (unsigned long long)SIZE_MAX) {
        return -1;
    }
    *out = (size_t)i;
    return 0;
}

/* Converts patch [pos, del, text] (code points) of txns[txn].patches[k]. */
static int add_patch(builder *b, const json_t *p, size_t txn, size_t k)
{
    size_t pos = 0;
    size_t del = 0;
    if (!json_is_array(p) || json_array_size(p) != 3 ||
        get_count(json_array_get(p, 0), &pos) != 0 ||
        get_count(json_array_get(p, 1), &del) != 0 ||
        !json_is_string(json_array_get(p, 2))) {
        return bad_patch(b, txn, k, "not [pos, numDeleted, insertedText]");
    }
    const json_t *js = json_array_get(p, 2);
    const char *ins = json_string_value(js);
    size_t ins_len = json_string_length(js);
    shadow *sh = &b->sh;
    size_t len = shadow_len(sh);
    if (pos > len || del > len - pos) {
        char why[128];
        (void)snprintf(why, sizeof(why),
                       "position %zu + %zu deleted is past the end (%zu)", pos,
                       del, len);
        return bad_patch(b, txn, k, why);
    }

    shadow_move(sh, pos);
    size_t pos16 = sh->units;
    size_t del16 = 0;
    for (size_t i = 0; i < del; i++) {
        del16 += sh->w[sh->ge + i];
    }
    sh->ge += del;

    size_t cps = 0;
    size_t units = 0;
    utf8_count(ins, ins_len, &cps, &units);
    if (shadow_reserve(sh, cps) != 0) {
        return oom(b);
    }
    for (size_t i = 0; i < ins_len; i++) {
        unsigned char c = (unsigned char)ins[i];
        if ((c & 0xC0) != 0x80) {
            sh->w[sh->gs++] = c >= 0xF0 ? 2 : 1;
        }
    }
    sh->units += units;

    trace *t = b->t;
    if (pos16 > UINT32_MAX || del16 > UINT32_MAX ||
        t->text_len + ins_len > UINT32_MAX) {
        return bad_patch(b, txn, k, "trace too large (4 GiB limit)");
    }
    if (t->n_patches == b->cap_patches) {
        size_t ncap = b->cap_patches ? b->cap_patches * 2 : 4096;
        trace_patch *np = realloc(t->patches, ncap * sizeof(*np));
        if (np == NULL) {
            return oom(b);
        }
        t->patches = np;
        b->cap_patches = ncap;
    }
    trace_patch *tp = &t->patches[t->n_patches++];
    tp->pos = (uint32_t)pos16;
    tp->del = (uint32_t)del16;
    tp->ins_off = (uint32_t)t->text_len;
    tp->ins_len = (uint32_t)ins_len;
    return push_text(b, ins, ins_len);
}

static int build(builder *b, const json_t *root)
{
    const char *path = b->path;
    if (!json_is_object(root)) {
        cli_error("%s: not an editing trace (expected a JSON object)", path);
        return CLI_FAIL;
    }
    const json_t *kind = json_object_get(root, "kind");
    if (kind != NULL && !(json_is_string(kind) &&
                          strcmp(json_string_value(kind), "sequential") == 0)) {
        cli_error("%s: only sequential traces can be replayed (this one is "
                  "kind \"%s\")",
                  path, json_is_string(kind) ? json_string_value(kind) : "?");
        return CLI_FAIL;
    }
    const json_t *start = json_object_get(root, "startContent");
    if (start != NULL &&
        !(json_is_string(start) && json_string_length(start) == 0)) {
        cli_error("%s: startContent must be empty", path);
        return CLI_FAIL;
    }
    const json_t *end = json_object_get(root, "endContent");
    const json_t *txns = json_object_get(root, "txns");
    if (!json_is_string(end) || !json_is_array(txns)) {
        cli_error("%s: not an editing trace (no endContent string or txns "
                  "array)",
                  path);
        return CLI_FAIL;
    }
    trace *t = b->t;
    t->n_txns = json_array_size(txns);
    for (size_t i = 0; i < t->n_txns; i++) {
        const json_t *txn = json_array_get(txns, i);
        const json_t *patches = json_object_get(txn, "patches");
        if (!json_is_array(patches)) {
            cli_error("%s: txns[%zu]: no patches array", path, i);
            return CLI_FAIL;
        }
        if (json_object_get(txn, "parents") != NULL) {
            cli_error("%s: txns[%zu] has parents: a concurrent trace", path, i);
            return CLI_FAIL;
        }
        for (size_t k = 0; k < json_array_size(patches); k++) {
            int rc = add_patch(b, json_array_get(patches, k), i, k);
            if (rc != CLI_OK) {
                return rc;
            }
        }
    }

    t->end_len = json_string_length(end);
    t->end = malloc(t->end_len + 1);
    if (t->end == NULL) {
        return oom(b);
    }
    memcpy(t->end, json_string_value(end), t->end_len);
    t->end[t->end_len] = '\0';
    size_t end_cps = 0;
    utf8_count(t->end, t->end_len, &end_cps, &t->end_units);
    shadow_move(&b->sh, shadow_len(&b->sh));
    if (end_cps != shadow_len(&b->sh) || t->end_units != b->sh.units) {
        cli_error("%s: the patches make %zu code points (%zu UTF-16 units), "
                  "endContent has %zu (%zu)",
                  path, shadow_len(&b->sh), b->sh.units, end_cps, t->end_units);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ---- API --------------------------------------------------------------- */

void trace_free(trace *t)
{
    free(t->patches);
    free(t->text);
    free(t->end);
    memset(t, 0, sizeof(*t));
}

int trace_load(const char *path, trace *out)
{
    memset(out, 0, sizeof(*out));
    char *data = NULL;
    size_t len = 0;
    int rc = read_maybe_gz(path, &data, &len);
    if (rc != CLI_OK) {
        return rc;
    }
    json_error_t jerr;
    json_t *root = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
    free(data);
    if (root == NULL) {
        cli_error("%s: bad JSON at line %d column %d: %s", path, jerr.line,
                  jerr.column, jerr.text);
        return CLI_FAIL;
    }
    builder b;
    memset(&b, 0, sizeof(b));
    b.path = path;
    b.t = out;
    b.sh.cap = (size_t)64 * 1024;
    b.sh.w = malloc(b.sh.cap);
    b.sh.ge = b.sh.cap;
    rc = b.sh.w != NULL ? build(&b, root) : oom(&b);
    json_decref(root);
    free(b.sh.w);
    if (rc != CLI_OK) {
        trace_free(out);
    }
    return rc;
}
