/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/docjson.c: printing a whole document as the JSON object
 * {root name: toJSON()}, shared by `loom update dump` and `loom store dump`
 * so both print a document the same way. Roots that no update typed get the
 * kind their content suggests (loom_type_guess_kind), as a Yjs reader asking
 * for them would.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <loom/loom.h>

#include "tjson.h"

/* Prints a JSON value and a newline to stdout, and frees it: compact, object
 * keys sorted, numbers written as JavaScript writes them
 * (tjson_dumps_sorted), so the output reads like the vectors' JSON. */
static int print_json(json_t *v)
{
    char *text = tjson_dumps_sorted(v);
    json_decref(v);
    if (text == NULL) {
        cli_error("cannot write JSON: out of memory");
        return CLI_FAIL;
    }
    size_t len = strlen(text);
    int rc = cli_write_stdout(text, len);
    free(text);
    if (rc == CLI_OK) {
        rc = cli_write_stdout("\n", 1);
    }
    return rc;
}

/* Gives every root that no hint named and that is still untyped the kind
 * its content suggests (loom_type_guess_kind). */
static int infer_roots(loom_doc *doc)
{
    size_t n = loom_doc_root_count(doc);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        size_t len = 0;
        loom_type *t = loom_doc_root_at(doc, i, &name, &len);
        if (t == NULL || loom_type_kind_of(t) != LOOM_TYPE_UNDEFINED) {
            continue;
        }
        loom_type_kind kind = loom_type_guess_kind(t);
        char *copy = malloc(len + 1);
        if (copy == NULL) {
            cli_error("out of memory");
            return CLI_FAIL;
        }
        if (len > 0) {
            memcpy(copy, name, len);
        }
        copy[len] = '\0';
        int rc = loom_doc_get(doc, copy, len, kind, &t);
        free(copy);
        if (rc != LOOM_OK) {
            cli_error("root %zu: cannot infer its kind: %s", i,
                      loom_strerror(rc));
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

/* {root name: toJSON()} for every root, in the document's root order. */
static int doc_json(const loom_doc *doc, json_t **out)
{
    json_t *obj = json_object();
    if (obj == NULL) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    size_t n = loom_doc_root_count(doc);
    for (size_t i = 0; i < n; i++) {
        const char *name = NULL;
        size_t len = 0;
        const loom_type *t = loom_doc_root_at(doc, i, &name, &len);
        loom_any *v = NULL;
        int rc = t ? loom_type_to_any(t, &v) : LOOM_ENOTFOUND;
        if (rc != LOOM_OK) {
            cli_error("root %zu: %s", i, loom_strerror(rc));
            json_decref(obj);
            return CLI_FAIL;
        }
        json_t *j = tjson_from_any(v);
        loom_any_free(v);
        if (j == NULL || json_object_setn_new(obj, name, len, j) != 0) {
            cli_error("root %zu: cannot convert to JSON", i);
            json_decref(obj);
            return CLI_FAIL;
        }
    }
    *out = obj;
    return CLI_OK;
}

int cli_print_doc_json(loom_doc *doc)
{
    json_t *obj = NULL;
    int rc = infer_roots(doc);
    if (rc == CLI_OK) {
        rc = doc_json(doc, &obj);
    }
    if (rc == CLI_OK) {
        rc = print_json(obj);
    }
    return rc;
}
