/*
 * diff.c: diffUpdate without a document (spec §4.3), as yjs's diffUpdateV2
 * does it: walk the structs in input order, drop each client's prefix that
 * the state vector already covers, write the first struct that reaches past
 * it from the right offset, and then every later struct of that run of the
 * client unchanged (Skips included). The delete set is copied whole, in the
 * form it was read (ranges neither sorted nor merged).
 */
#include "codec/codec_int.h"

int loom__diff_parsed(const loom__rupdate *u, const loom__sv *sv, loom_buf *out)
{
    loom__lazy_writer lw;
    loom__lazy_init(&lw, out->alloc);
    loom__cursor c;
    loom__cursor_init(&c, u, false);
    int rc = LOOM_OK;
    while (c.has && !rc) {
        const loom__view curr = c.curr;
        if (curr.kind == LOOM__KIND_SKIP) {
            /* The first struct written for a client is never a Skip. */
            loom__cursor_next(&c);
            continue;
        }
        uint64_t client = curr.client;
        uint64_t known = loom__sv_get(sv, client);
        if (curr.clock + curr.len > known) {
            rc = loom__lazy_write(&lw, &curr,
                                  known > curr.clock ? known - curr.clock : 0);
            loom__cursor_next(&c);
            while (!rc && c.has && c.curr.client == client) {
                rc = loom__lazy_write(&lw, &c.curr, 0);
                loom__cursor_next(&c);
            }
        } else {
            while (c.has && c.curr.client == client &&
                   c.curr.clock + c.curr.len <= known) {
                loom__cursor_next(&c);
            }
        }
    }
    if (!rc) {
        rc = loom__lazy_finish(&lw, &u->ds, out);
    }
    loom__lazy_free(&lw);
    return rc;
}
