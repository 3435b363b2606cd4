/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/cmd_store.c: `loom store ...`, the command line face of the
 * durable document store (loom/store.h, docs/store.md).
 *
 *   loom store --data DIR [--passphrase-file FILE] VERB ARGS...
 *
 *   list                  document names, one a line, in byte order
 *   append DOC [FILE]     append one v1 update (FILE "-" or absent: stdin)
 *   dump DOC              the document as JSON (as `loom update dump`)
 *   encode DOC            the document as one v1 update (binary, stdout)
 *   sv DOC                its state vector (binary v1, stdout)
 *   compact DOC           merge its log into one update
 *   delete DOC            delete it with its metadata
 *   meta DOC              all metadata as one JSON object
 *   meta DOC KEY          the raw value of KEY (stdout, no newline)
 *   meta DOC KEY VALUE    set KEY to the bytes of VALUE
 *
 * The database is DIR/loom.db; DIR is created when missing. The passphrase
 * is the content of FILE (one trailing newline removed), else the
 * environment variable LOOM_PASSPHRASE; a store created with one is
 * encrypted. Exit status: 0 success, 1 failure (one line on stderr), 2
 * usage error.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <loom/loom.h>

/* What every verb gets: the open store and its arguments after the verb. */
typedef struct store_ctx {
    loom_store *store;
    const char *db; /* DIR/loom.db, for messages */
    int argc;       /* arguments after the verb */
    char **argv;
} store_ctx;

static void error_init(loom_error *err)
{
    memset(err, 0, sizeof(*err));
}

/* Reports a failed store call about document `doc` (or the store when
 * NULL). Returns CLI_FAIL. */
static int
report(const store_ctx *c, const char *doc, int rc, const loom_error *err)
{
    const char *why = err->message[0] ? err->message : loom_strerror(rc);
    if (rc == LOOM_ENOTFOUND && doc != NULL &&
        strcmp(why, "no such document") == 0) {
        cli_error("store: %s: no such document", doc);
    } else if (doc != NULL) {
        cli_error("store: %s: %s", doc, why);
    } else {
        cli_error("store: %s: %s", c->db, why);
    }
    return CLI_FAIL;
}

static int usage_error(const char *msg)
{
    cli_error("store: %s (see `loom help store`)", msg);
    return CLI_USAGE;
}

static int want_args(const store_ctx *c, int lo, int hi, const char *verb)
{
    if (c->argc < lo || c->argc > hi) {
        char msg[128];
        (void)snprintf(msg, sizeof(msg), "%s: wrong number of arguments", verb);
        return usage_error(msg);
    }
    return CLI_OK;
}

/* ---- verbs ---------------------------------------------------------------- */

static int print_name(void *ud, const char *name, size_t len)
{
    (void)ud;
    if (fwrite(name, 1, len, stdout) != len || putchar('\n') == EOF) {
        return 1;
    }
    return 0;
}

static int verb_list(store_ctx *c)
{
    int rc = want_args(c, 0, 0, "list");
    if (rc != CLI_OK) {
        return rc;
    }
    loom_error err;
    error_init(&err);
    int lrc = loom_store_list(c->store, print_name, NULL, &err);
    if (lrc == 1) {
        cli_error("write error: %s", strerror(errno));
        return CLI_FAIL;
    }
    if (lrc != LOOM_OK) {
        return report(c, NULL, lrc, &err);
    }
    return cli_write_stdout(NULL, 0);
}

static int verb_append(store_ctx *c)
{
    int rc = want_args(c, 1, 2, "append");
    if (rc != CLI_OK) {
        return rc;
    }
    const char *doc = c->argv[0];
    cli_input in;
    rc = cli_read_input(c->argc > 1 ? c->argv[1] : "-", &in);
    if (rc != CLI_OK) {
        return rc;
    }
    if (in.len == 0) {
        cli_error("%s: empty update", in.name);
        return CLI_FAIL;
    }
    loom_error err;
    error_init(&err);
    int lrc = loom_store_append(c->store, doc, in.data, in.len, &err);
    if (lrc == LOOM_EMALFORMED) {
        cli_error("%s: malformed update at byte %zu: %s", in.name, err.offset,
                  err.message[0] ? err.message : loom_strerror(lrc));
        rc = CLI_FAIL;
    } else if (lrc != LOOM_OK) {
        rc = report(c, doc, lrc, &err);
    }
    cli_input_free(&in);
    return rc;
}

static int verb_dump(store_ctx *c)
{
    int rc = want_args(c, 1, 1, "dump");
    if (rc != CLI_OK) {
        return rc;
    }
    loom_doc_options opts;
    loom_doc_options_init(&opts);
    opts.gc = 1;
    loom_doc *doc = NULL;
    int lrc = loom_doc_new(&opts, &doc);
    if (lrc != LOOM_OK) {
        cli_error("cannot create a document: %s", loom_strerror(lrc));
        return CLI_FAIL;
    }
    loom_error err;
    error_init(&err);
    lrc = loom_store_load(c->store, c->argv[0], doc, &err);
    if (lrc != LOOM_OK) {
        rc = report(c, c->argv[0], lrc, &err);
    } else {
        rc = cli_print_doc_json(doc);
    }
    loom_doc_free(doc);
    return rc;
}

static int write_buf(loom_buf *b)
{
    int rc = cli_write_stdout(b->data, b->len);
    loom_buf_free(b);
    return rc;
}

static int verb_encode(store_ctx *c)
{
    int rc = want_args(c, 1, 1, "encode");
    if (rc != CLI_OK) {
        return rc;
    }
    loom_buf out = {0};
    loom_error err;
    error_init(&err);
    int lrc = loom_store_encode(c->store, c->argv[0], &out, &err);
    if (lrc != LOOM_OK) {
        return report(c, c->argv[0], lrc, &err);
    }
    return write_buf(&out);
}

static int verb_sv(store_ctx *c)
{
    int rc = want_args(c, 1, 1, "sv");
    if (rc != CLI_OK) {
        return rc;
    }
    loom_buf out = {0};
    loom_error err;
    error_init(&err);
    int lrc = loom_store_state_vector(c->store, c->argv[0], &out, &err);
    if (lrc != LOOM_OK) {
        return report(c, c->argv[0], lrc, &err);
    }
    return write_buf(&out);
}

static int verb_compact(store_ctx *c)
{
    int rc = want_args(c, 1, 1, "compact");
    if (rc != CLI_OK) {
        return rc;
    }
    loom_error err;
    error_init(&err);
    int lrc = loom_store_compact(c->store, c->argv[0], &err);
    return lrc == LOOM_OK ? CLI_OK : report(c, c->argv[0], lrc, &err);
}

static int verb_delete(store_ctx *c)
{
    int rc = want_args(c, 1, 1, "delete");
    if (rc != CLI_OK) {
        return rc;
    }
    loom_error err;
    error_init(&err);
    int lrc = loom_store_delete(c->store, c->argv[0], &err);
    return lrc == LOOM_OK ? CLI_OK : report(c, c->argv[0], lrc, &err);
}

/* A metadata value as JSON: the string when it is valid UTF-8 without NUL
 * bytes, else {"hex": "<lowercase hex>"}. */
static json_t *meta_value_json(const uint8_t *v, size_t len)
{
    json_t *s = memchr(v, 0, len) ? NULL : json_stringn((const char *)v, len);
    if (s != NULL) {
        return s;
    }
    char *hex = malloc(len * 2 + 1);
    if (hex == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        (void)snprintf(hex + 2 * i, 3, "%02x", v[i]);
    }
    hex[len * 2] = '\0';
    json_t *o = json_pack("{s:s}", "hex", hex);
    free(hex);
    return o;
}

static int add_meta(void *ud, const char *key, const uint8_t *value, size_t len)
{
    json_t *obj = ud;
    json_t *v = meta_value_json(value, len);
    if (v == NULL) {
        return 1;
    }
    /* json_object_set_new checks that the key is UTF-8. */
    return json_object_set_new(obj, key, v) == 0 ? 0 : 2;
}

static int verb_meta(store_ctx *c)
{
    int rc = want_args(c, 1, 3, "meta");
    if (rc != CLI_OK) {
        return rc;
    }
    const char *doc = c->argv[0];
    loom_error err;
    error_init(&err);
    if (c->argc == 1) {
        json_t *obj = json_object();
        if (obj == NULL) {
            cli_error("out of memory");
            return CLI_FAIL;
        }
        int lrc = loom_store_meta_list(c->store, doc, add_meta, obj, &err);
        if (lrc == 1 || lrc == 2) {
            cli_error("store: %s: %s", doc,
                      lrc == 1 ? "out of memory"
                               : "a metadata key is not valid UTF-8");
            json_decref(obj);
            return CLI_FAIL;
        }
        if (lrc != LOOM_OK) {
            json_decref(obj);
            return report(c, doc, lrc, &err);
        }
        char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(obj);
        if (text == NULL) {
            cli_error("cannot write JSON: out of memory");
            return CLI_FAIL;
        }
        rc = cli_write_stdout(text, strlen(text));
        free(text);
        return rc == CLI_OK ? cli_write_stdout("\n", 1) : rc;
    }
    const char *key = c->argv[1];
    if (c->argc == 2) {
        loom_buf v = {0};
        int lrc = loom_store_meta_get(c->store, doc, key, &v, &err);
        if (lrc == LOOM_ENOTFOUND && strcmp(err.message, "no such document")) {
            cli_error("store: %s: no metadata key '%s'", doc, key);
            return CLI_FAIL;
        }
        if (lrc != LOOM_OK) {
            return report(c, doc, lrc, &err);
        }
        return write_buf(&v);
    }
    const char *value = c->argv[2];
    int lrc = loom_store_meta_set(c->store, doc, key, (const uint8_t *)value,
                                  strlen(value), &err);
    return lrc == LOOM_OK ? CLI_OK : report(c, doc, lrc, &err);
}

/* ---- options, passphrase, dispatch ---------------------------------------- */

static const struct {
    const char *name;
    int (*run)(store_ctx *c);
} verbs[] = {
    {"list", verb_list},     {"append", verb_append}, {"dump", verb_dump},
    {"encode", verb_encode}, {"sv", verb_sv},         {"compact", verb_compact},
    {"delete", verb_delete}, {"meta", verb_meta},
};
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

void cli_store_help(void)
{
    (void)printf(
        "usage: loom store --data DIR [--passphrase-file FILE] VERB ARGS...\n"
        "\n"
        "The durable document store in DIR/loom.db (SQLite; DIR is created\n"
        "when missing): many documents by name, each a log of Yjs v1 updates\n"
        "(docs/store.md).\n"
        "\n"
        "  list                 document names, one a line, in byte order\n"
        "  append DOC [FILE]    append one v1 update (FILE - or none: stdin)\n"
        "  dump DOC             the document as JSON (as `loom update dump`)\n"
        "  encode DOC           the document as one v1 update (binary)\n"
        "  sv DOC               its state vector (binary v1)\n"
        "  compact DOC          merge its log into one update\n"
        "  delete DOC           delete the document and its metadata\n"
        "  meta DOC             all metadata as one JSON object: a value\n"
        "                       that is UTF-8 (no NUL) as a string, any\n"
        "                       other as {\"hex\": \"...\"}\n"
        "  meta DOC KEY         the raw value of KEY\n"
        "  meta DOC KEY VALUE   set KEY to the bytes of VALUE\n"
        "\n"
        "Encryption at rest: --passphrase-file FILE (its bytes, one trailing\n"
        "newline removed) or the environment variable LOOM_PASSPHRASE. A "
        "store\n"
        "created with a passphrase is encrypted and opens only with it.\n"
        "\n"
        "Exit status: 0 success, 1 failure (a missing document, an empty or\n"
        "malformed update, a wrong passphrase, a damaged file ...), 2 usage\n"
        "error.\n");
}

/* Creates `dir` and its missing parents. */
static int make_dirs(const char *dir)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (p == NULL) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char saved = p[i];
            p[i] = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST) {
                cli_error("store: %s: %s", p, strerror(errno));
                free(p);
                return CLI_FAIL;
            }
            p[i] = saved;
        }
    }
    free(p);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cli_error("store: %s: not a directory", dir);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Takes the value of option `name` at argv[*i] ("--name V" or
 * "--name=V"); NULL when argv[*i] is not that option. */
static const char *
option_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) {
        return NULL;
    }
    if (a[n] == '=') {
        return a + n + 1;
    }
    if (a[n] != '\0') {
        return NULL;
    }
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int cli_store_main(int argc, char **argv)
{
    const char *data = NULL;
    const char *pass_file = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        int missing = 0;
        const char *v = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cli_store_help();
            return CLI_OK;
        }
        if ((v = option_value(argc, argv, &i, "--data", &missing)) != NULL) {
            data = v;
        } else if ((v = option_value(argc, argv, &i, "--passphrase-file",
                                     &missing)) != NULL) {
            pass_file = v;
        } else if (missing) {
            char msg[128];
            (void)snprintf(msg, sizeof(msg), "%s needs a value", a);
            return usage_error(msg);
        } else {
            char msg[256];
            (void)snprintf(msg, sizeof(msg), "unknown option '%s'", a);
            return usage_error(msg);
        }
    }
    if (i >= argc) {
        return usage_error("missing verb");
    }
    const char *verb = argv[i];
    if (strcmp(verb, "help") == 0) {
        cli_store_help();
        return CLI_OK;
    }
    int (*run)(store_ctx *) = NULL;
    for (size_t k = 0; k < N_VERBS; k++) {
        if (strcmp(verbs[k].name, verb) == 0) {
            run = verbs[k].run;
        }
    }
    if (run == NULL) {
        char msg[256];
        (void)snprintf(msg, sizeof(msg), "unknown verb '%s'", verb);
        return usage_error(msg);
    }
    if (data == NULL || *data == '\0') {
        return usage_error("--data DIR is required");
    }
    store_ctx c = {NULL, NULL, argc - i - 1, argv + i + 1};
    /* Check the argument count before touching the disk. */
    static const int lo[] = {0, 1, 1, 1, 1, 1, 1, 1};
    static const int hi[] = {0, 2, 1, 1, 1, 1, 1, 3};
    for (size_t k = 0; k < N_VERBS; k++) {
        if (verbs[k].run == run) {
            int rc = want_args(&c, lo[k], hi[k], verb);
            if (rc != CLI_OK) {
                return rc;
            }
        }
    }
    if (make_dirs(data) != CLI_OK) {
        return CLI_FAIL;
    }
    cli_input pass;
    int have_pass = 0;
    if (cli_read_passphrase(pass_file, &pass, &have_pass) != CLI_OK) {
        return CLI_FAIL;
    }
    size_t dn = strlen(data);
    char *db = malloc(dn + sizeof("/loom.db"));
    if (db == NULL) {
        cli_input_free(&pass);
        cli_error("out of memory");
        return CLI_FAIL;
    }
    memcpy(db, data, dn);
    memcpy(db + dn, "/loom.db", sizeof("/loom.db"));
    c.db = db;

    loom_store_options o;
    loom_store_options_init(&o);
    if (have_pass) {
        o.passphrase = pass.data;
        o.passphrase_len = pass.len;
    }
    loom_error err;
    error_init(&err);
    int lrc = loom_store_open(db, &o, &c.store, &err);
    if (pass.data != NULL) {
        memset(pass.data, 0, pass.len);
    }
    cli_input_free(&pass);
    int rc;
    if (lrc != LOOM_OK) {
        rc = report(&c, NULL, lrc, &err);
    } else {
        rc = run(&c);
    }
    loom_store_close(c.store);
    free(db);
    return rc;
}
