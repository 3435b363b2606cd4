/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/trace.h: editing traces for `loom bench trace`. Loads a
 * josephg/editing-traces sequential trace (JSON, gzip'ed or not) into a
 * compact list of patches whose positions and lengths are already in UTF-16
 * code units (the trace counts code points; loom and Yjs count UTF-16
 * units), so replaying it costs only the edits themselves.
 */
#ifndef LOOM_TRACE_H
#define LOOM_TRACE_H

#include <stddef.h>
#include <stdint.h>

/* One patch: delete `del` units at `pos`, then insert the UTF-8 bytes
 * text[ins_off .. ins_off + ins_len) at `pos`. */
typedef struct trace_patch {
    uint32_t pos;     /* UTF-16 units from the start of the document */
    uint32_t del;     /* UTF-16 units */
    uint32_t ins_off; /* into trace.text */
    uint32_t ins_len; /* UTF-8 bytes */
} trace_patch;

typedef struct trace {
    trace_patch *patches; /* in replay order */
    size_t n_patches;
    size_t n_txns;
    char *text; /* every inserted string, concatenated (UTF-8) */
    size_t text_len;
    char *end; /* endContent (UTF-8), NUL-terminated */
    size_t end_len;
    size_t end_units; /* its length in UTF-16 units */
} trace;

/* Reads the trace at `path` (.json or .json.gz: gzip is detected, not
 * guessed from the name). Checks every patch against the document length as
 * it replays the positions, and that the replayed length matches
 * endContent. Prints a message and returns CLI_FAIL on error. */
int trace_load(const char *path, trace *out);
void trace_free(trace *t);

#endif
