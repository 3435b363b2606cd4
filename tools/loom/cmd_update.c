/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/cmd_update.c: `loom update ...`, the command line face of
 * encoded Yjs v1 updates and state vectors.
 *
 *   dump [--root NAME=KIND]... FILE...  the JSON of the doc the updates make
 *   encode FILE...                      encodeStateAsUpdate of that doc
 *   sv FILE...                          its state vector, as JSON
 *   merge FILE...                       mergeUpdates (no doc involved)
 *   diff FILE SVFILE                    diffUpdate(update, state vector)
 *
 * FILE "-" is standard input. dump, encode and sv apply the files in order
 * to one new document (gc on, as Yjs defaults), exactly as a Yjs peer
 * applying them would; merge and diff work on the bytes alone.
 *
 * Errors: a malformed input exits 1 with "loom: FILE: malformed update at
 * byte N: why" on stderr (the offset comes from loom_error). Usage errors
 * exit 2.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <loom/loom.h>

#include "tjson.h"

/* ---- errors ------------------------------------------------------------ */

/* Reports a failed library call on input `name`; `what` is "update" or
 * "state vector". Returns CLI_FAIL. */
static int
report(const char *name, const char *what, int rc, const loom_error *err)
{
    const char *why = err->message[0] ? err->message : loom_strerror(rc);
    if (rc == LOOM_EMALFORMED) {
        cli_error("%s: malformed %s at byte %zu: %s", name, what, err->offset,
                  why);
    } else {
        cli_error("%s: %s: %s", name, what, why);
    }
    return CLI_FAIL;
}

static void error_init(loom_error *err)
{
    memset(err, 0, sizeof(*err));
}

/* ---- inputs ------------------------------------------------------------ */

typedef struct inputs {
    cli_input *in;
    const uint8_t **data; /* in[i].data, for the array APIs */
    size_t *lens;
    size_t n;
} inputs;

static void inputs_free(inputs *ins)
{
    for (size_t i = 0; i < ins->n; i++) {
        cli_input_free(&ins->in[i]);
    }
    free(ins->in);
    free(ins->data);
    free(ins->lens);
    memset(ins, 0, sizeof(*ins));
}

/* Reads every path into `ins` (all of them, or none on failure). */
static int inputs_read(char **paths, size_t n, inputs *ins)
{
    memset(ins, 0, sizeof(*ins));
    size_t m = n ? n : 1;
    ins->in = calloc(m, sizeof(*ins->in));
    ins->data = calloc(m, sizeof(*ins->data));
    ins->lens = calloc(m, sizeof(*ins->lens));
    if (ins->in == NULL || ins->data == NULL || ins->lens == NULL) {
        cli_error("out of memory");
        inputs_free(ins);
        return CLI_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        if (cli_read_input(paths[i], &ins->in[i]) != CLI_OK) {
            inputs_free(ins);
            return CLI_FAIL;
        }
        ins->n = i + 1;
        ins->data[i] = ins->in[i].data;
        ins->lens[i] = ins->in[i].len;
    }
    return CLI_OK;
}

/* A new document (gc on) with every file in `paths` applied in order. */
static int load_doc(char **paths, size_t n, loom_doc **out)
{
    loom_doc_options opts;
    loom_doc_options_init(&opts);
    opts.gc = 1;
    loom_doc *doc = NULL;
    int rc = loom_doc_new(&opts, &doc);
    if (rc != LOOM_OK) {
        cli_error("cannot create a document: %s", loom_strerror(rc));
        return CLI_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        cli_input in;
        if (cli_read_input(paths[i], &in) != CLI_OK) {
            loom_doc_free(doc);
            return CLI_FAIL;
        }
        loom_error err;
        error_init(&err);
        rc = loom_doc_apply_update(doc, in.data, in.len, NULL, &err);
        if (rc != LOOM_OK) {
            report(in.name, "update", rc, &err);
            cli_input_free(&in);
            loom_doc_free(doc);
            return CLI_FAIL;
        }
        cli_input_free(&in);
    }
    *out = doc;
    return CLI_OK;
}

/* Says on stderr when part of what was applied is still waiting for missing
 * updates: Yjs keeps such structs pending, outside the document's content
 * and state vector (encode still writes them). */
static void warn_pending(const loom_doc *doc)
{
    int p = loom_doc_pending(doc);
    if (p != 0) {
        cli_error("warning: the updates depend on missing ones; pending %s%s%s"
                  " are not in the content",
                  (p & 1) ? "structs" : "", (p & 3) == 3 ? " and " : "",
                  (p & 2) ? "deletes" : "");
    }
}

/* ---- output ------------------------------------------------------------ */

static int write_buf(loom_buf *b)
{
    int rc = cli_write_stdout(b->data, b->len);
    loom_buf_free(b);
    return rc;
}

/* ---- argument helpers -------------------------------------------------- */

static int is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static int usage_error(const char *sub, const char *msg)
{
    cli_error("update %s: %s (see `loom help update`)", sub, msg);
    return CLI_USAGE;
}

/* Checks that the arguments after argv[0] are files ("-" or not starting
 * with '-'; "--" ends options). Moves them to the front of argv + 1 and
 * returns their number in *n. */
static int collect_files(const char *sub, int argc, char **argv, size_t *n)
{
    size_t k = 0;
    int only_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_files && strcmp(a, "--") == 0) {
            only_files = 1;
            continue;
        }
        if (!only_files && a[0] == '-' && a[1] != '\0') {
            char msg[256];
            (void)snprintf(msg, sizeof(msg), "unknown option '%s'", a);
            return usage_error(sub, msg);
        }
        argv[1 + k++] = argv[i];
    }
    *n = k;
    return CLI_OK;
}

/* ---- dump -------------------------------------------------------------- */

typedef struct root_hint {
    const char *name; /* points into argv */
    size_t len;
    loom_type_kind kind;
} root_hint;

static const struct {
    const char *name;
    loom_type_kind kind;
} root_kinds[] = {
    {"map", LOOM_TYPE_MAP},
    {"array", LOOM_TYPE_ARRAY},
    {"text", LOOM_TYPE_TEXT},
    {"xmlfragment", LOOM_TYPE_XML_FRAGMENT},
};
#define N_ROOT_KINDS (sizeof(root_kinds) / sizeof(root_kinds[0]))

/* Parses NAME=KIND (split at the last '='; NAME may be empty). */
static int parse_hint(const char *arg, root_hint *h)
{
    const char *eq = strrchr(arg, '=');
    if (eq == NULL) {
        return -1;
    }
    for (size_t i = 0; i < N_ROOT_KINDS; i++) {
        if (strcmp(eq + 1, root_kinds[i].name) == 0) {
            h->name = arg;
            h->len = (size_t)(eq - arg);
            h->kind = root_kinds[i].kind;
            return 0;
        }
    }
    return -1;
}

static const char *kind_name(loom_type_kind k)
{
    return k == LOOM_TYPE_UNDEFINED ? "untyped root" : tjson_kind_name(k);
}

/* The kind of root `name`, or LOOM_TYPE_UNDEFINED when there is none. */
static loom_type_kind
root_kind(const loom_doc *doc, const char *name, size_t len)
{
    size_t n = loom_doc_root_count(doc);
    for (size_t i = 0; i < n; i++) {
        const char *rn = NULL;
        size_t rl = 0;
        const loom_type *t = loom_doc_root_at(doc, i, &rn, &rl);
        if (t != NULL && rl == len &&
            (len == 0 || memcmp(rn, name, len) == 0)) {
            return loom_type_kind_of(t);
        }
    }
    return LOOM_TYPE_UNDEFINED;
}

/* Gives each hinted root its kind (creating it empty when no update names
 * it, as getMap() & co do in Yjs). */
static int apply_hints(loom_doc *doc, const root_hint *hints, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const root_hint *h = &hints[i];
        loom_type *t = NULL;
        int rc = loom_doc_get(doc, h->name, h->len, h->kind, &t);
        if (rc == LOOM_ETYPE) {
            cli_error("--root %s: the root is already a %s", h->name,
                      kind_name(root_kind(doc, h->name, h->len)));
            return CLI_FAIL;
        }
        if (rc != LOOM_OK) {
            cli_error("--root %s: %s", h->name, loom_strerror(rc));
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}


static int update_dump(int argc, char **argv)
{
    root_hint *hints = calloc((size_t)argc, sizeof(*hints));
    char **files = calloc((size_t)argc, sizeof(*files));
    size_t nh = 0;
    size_t nf = 0;
    int rc = CLI_OK;
    int only_files = 0;
    if (hints == NULL || files == NULL) {
        cli_error("out of memory");
        rc = CLI_FAIL;
        goto done;
    }
    for (int i = 1; i < argc && rc == CLI_OK; i++) {
        const char *a = argv[i];
        const char *spec = NULL;
        if (only_files || strcmp(a, "-") == 0 || a[0] != '-') {
            files[nf++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            only_files = 1;
        } else if (strcmp(a, "--root") == 0) {
            if (i + 1 >= argc) {
                rc = usage_error("dump", "--root needs NAME=KIND");
            } else {
                spec = argv[++i];
            }
        } else if (strncmp(a, "--root=", 7) == 0) {
            spec = a + 7;
        } else {
            char msg[256];
            (void)snprintf(msg, sizeof(msg), "unknown option '%s'", a);
            rc = usage_error("dump", msg);
        }
        if (spec != NULL && parse_hint(spec, &hints[nh++]) != 0) {
            char msg[256];
            (void)snprintf(msg, sizeof(msg),
                           "--root %s: expected NAME=KIND, KIND one of "
                           "map|array|text|xmlfragment",
                           spec);
            rc = usage_error("dump", msg);
        }
    }
    if (rc == CLI_OK && nf == 0) {
        rc = usage_error("dump", "no update files given");
    }

    loom_doc *doc = NULL;
    if (rc == CLI_OK) {
        rc = load_doc(files, nf, &doc);
    }
    if (rc == CLI_OK) {
        warn_pending(doc);
        rc = apply_hints(doc, hints, nh);
    }
    if (rc == CLI_OK) {
        rc = cli_print_doc_json(doc);
    }
    loom_doc_free(doc);
done:
    free(hints);
    free(files);
    return rc;
}

/* ---- encode, sv -------------------------------------------------------- */

static int update_encode(int argc, char **argv)
{
    size_t n = 0;
    int rc = collect_files("encode", argc, argv, &n);
    if (rc != CLI_OK) {
        return rc;
    }
    if (n == 0) {
        return usage_error("encode", "no update files given");
    }
    loom_doc *doc = NULL;
    rc = load_doc(argv + 1, n, &doc);
    if (rc != CLI_OK) {
        return rc;
    }
    loom_buf out = {0};
    loom_error err;
    error_init(&err);
    int lrc = loom_doc_encode_state_as_update(doc, NULL, 0, &out, &err);
    loom_doc_free(doc);
    if (lrc != LOOM_OK) {
        cli_error("encode: %s", loom_strerror(lrc));
        return CLI_FAIL;
    }
    return write_buf(&out);
}

/* Reads one lib0 varUint (at most 64 bits) at *pos. */
static int read_var_uint(const loom_buf *b, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= b->len) {
            return -1;
        }
        uint8_t byte = b->data[(*pos)++];
        v |= (uint64_t)(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* A state vector (varUint count, then count pairs of varUint client and
 * clock) as the JSON text {"client":clock,...} plus a newline, in the order
 * of the bytes (yjs writes higher client ids first). malloc'd. */
static int sv_text(const loom_buf *sv, char **out)
{
    size_t pos = 0;
    uint64_t count = 0;
    /* Every entry takes at least 2 bytes and prints as at most
     * "20 digits":20 digits, plus the separators. */
    size_t cap = (sv->len / 2 + 1) * 48 + 4;
    char *text = malloc(cap);
    size_t len = 0;
    if (text == NULL || read_var_uint(sv, &pos, &count) != 0 ||
        count > sv->len / 2) {
        goto bad;
    }
    text[len++] = '{';
    for (uint64_t i = 0; i < count; i++) {
        uint64_t client = 0;
        uint64_t clock = 0;
        if (read_var_uint(sv, &pos, &client) != 0 ||
            read_var_uint(sv, &pos, &clock) != 0) {
            goto bad;
        }
        int n = snprintf(text + len, cap - len, "%s\"%" PRIu64 "\":%" PRIu64,
                         i ? "," : "", client, clock);
        if (n < 0 || (size_t)n >= cap - len) {
            goto bad;
        }
        len += (size_t)n;
    }
    if (pos != sv->len || cap - len < 3) {
        goto bad;
    }
    text[len++] = '}';
    text[len++] = '\n';
    text[len] = '\0';
    *out = text;
    return CLI_OK;
bad:
    free(text);
    cli_error("sv: cannot read the state vector");
    return CLI_FAIL;
}


static int update_sv(int argc, char **argv)
{
    size_t n = 0;
    int rc = collect_files("sv", argc, argv, &n);
    if (rc != CLI_OK) {
        return rc;
    }
    if (n == 0) {
        return usage_error("sv", "no update files given");
    }
    loom_doc *doc = NULL;
    rc = load_doc(argv + 1, n, &doc);
    if (rc != CLI_OK) {
        return rc;
    }
    warn_pending(doc);
    loom_buf sv = {0};
    int lrc = loom_doc_encode_state_vector(doc, &sv);
    loom_doc_free(doc);
    if (lrc != LOOM_OK) {
        cli_error("sv: %s", loom_strerror(lrc));
        return CLI_FAIL;
    }
    char *text = NULL;
    rc = sv_text(&sv, &text);
    loom_buf_free(&sv);
    if (rc != CLI_OK) {
        return rc;
    }
    rc = cli_write_stdout(text, strlen(text));
    free(text);
    return rc;
}

/* ---- merge, diff ------------------------------------------------------- */

static int update_merge(int argc, char **argv)
{
    size_t n = 0;
    int rc = collect_files("merge", argc, argv, &n);
    if (rc != CLI_OK) {
        return rc;
    }
    if (n == 0) {
        return usage_error("merge", "no update files given");
    }
    inputs ins;
    rc = inputs_read(argv + 1, n, &ins);
    if (rc != CLI_OK) {
        return rc;
    }
    loom_buf out = {0};
    loom_error err;
    error_init(&err);
    int lrc = loom_update_merge(NULL, ins.data, ins.lens, ins.n, &out, &err);
    if (lrc != LOOM_OK) {
        const char *name = err.input < ins.n ? ins.in[err.input].name : "merge";
        rc = report(name, "update", lrc, &err);
        inputs_free(&ins);
        return rc;
    }
    inputs_free(&ins);
    return write_buf(&out);
}

static int update_diff(int argc, char **argv)
{
    size_t n = 0;
    int rc = collect_files("diff", argc, argv, &n);
    if (rc != CLI_OK) {
        return rc;
    }
    if (n != 2) {
        return usage_error("diff", "expected FILE SVFILE");
    }
    inputs ins;
    rc = inputs_read(argv + 1, n, &ins);
    if (rc != CLI_OK) {
        return rc;
    }
    const cli_input *u = &ins.in[0];
    const cli_input *sv = &ins.in[1];
    loom_error err;
    error_init(&err);
    int lrc = loom_state_vector_validate(sv->data, sv->len, &err);
    if (lrc != LOOM_OK) {
        rc = report(sv->name, "state vector", lrc, &err);
        inputs_free(&ins);
        return rc;
    }
    loom_buf out = {0};
    error_init(&err);
    lrc =
        loom_update_diff(NULL, u->data, u->len, sv->data, sv->len, &out, &err);
    if (lrc != LOOM_OK) {
        if (err.input == 1) {
            rc = report(sv->name, "state vector", lrc, &err);
        } else {
            rc = report(u->name, "update", lrc, &err);
        }
        inputs_free(&ins);
        return rc;
    }
    inputs_free(&ins);
    return write_buf(&out);
}

/* ---- dispatch ---------------------------------------------------------- */

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} update_commands[] = {
    {"dump", update_dump},   {"encode", update_encode}, {"sv", update_sv},
    {"merge", update_merge}, {"diff", update_diff},
};
#define N_UPDATE_COMMANDS (sizeof(update_commands) / sizeof(update_commands[0]))

void cli_update_help(void)
{
    (void)printf(
        "usage: loom update COMMAND ARGS...\n"
        "\n"
        "Work with Yjs v1 updates (the bytes Y.encodeStateAsUpdate and\n"
        "doc.on('update') produce) and state vectors. FILE - reads stdin.\n"
        "\n"
        "  dump [--root NAME=KIND]... FILE...\n"
        "      apply the update files in order to a new doc and print one\n"
        "      JSON object: each root name -> its toJSON() (map -> object,\n"
        "      array -> array, text -> string, xmlfragment -> XML string).\n"
        "      KIND: map|array|text|xmlfragment; without a hint the kind is\n"
        "      inferred from the content. Values JSON cannot express use\n"
        "      the TJSON escapes ({\"$undefined\":true}, {\"$bigint\":\"1\"},\n"
        "      {\"$binary\":\"00ff\"}, {\"$number\":\"NaN\"}, ...).\n"
        "  encode FILE...\n"
        "      write encodeStateAsUpdate of that doc (binary v1) to stdout\n"
        "  sv FILE...\n"
        "      print its state vector as JSON {\"<client>\": clock, ...}\n"
        "  merge FILE...\n"
        "      write mergeUpdates of the files (no doc involved) to stdout\n"
        "  diff FILE SVFILE\n"
        "      write diffUpdate(update, state vector in SVFILE) to stdout\n"
        "\n"
        "Exit status: 0 success, 1 bad input (a malformed update is reported\n"
        "with its file and byte offset), 2 usage error.\n");
}

int cli_update_main(int argc, char **argv)
{
    if (argc < 2) {
        cli_error("update: missing command (see `loom help update`)");
        return CLI_USAGE;
    }
    const char *sub = argv[1];
    if (is_help(sub) || strcmp(sub, "help") == 0) {
        cli_update_help();
        return CLI_OK;
    }
    for (size_t i = 0; i < N_UPDATE_COMMANDS; i++) {
        if (strcmp(update_commands[i].name, sub) == 0) {
            for (int j = 2; j < argc; j++) {
                if (strcmp(argv[j], "--") == 0) {
                    break;
                }
                if (is_help(argv[j])) {
                    cli_update_help();
                    return CLI_OK;
                }
            }
            return update_commands[i].run(argc - 1, argv + 1);
        }
    }
    cli_error("update: unknown command '%s' (see `loom help update`)", sub);
    return CLI_USAGE;
}
