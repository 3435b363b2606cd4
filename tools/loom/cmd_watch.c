/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/cmd_watch.c: `loom watch URL`, a read-only look at a room:
 * a provider (loom/provider.h) with a document in memory, which prints
 * the document as one JSON line (as `loom update dump` prints it,
 * docjson.c) once the first sync is done and again after every turn of
 * the loop in which it changed. --once prints after the first sync and
 * exits, for scripts and tests.
 */
#include "cli.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <loom/loom.h>

void cli_watch_help(void)
{
    (void)printf(
        "usage: loom watch URL [--once] [--timeout SECS] [--ca FILE] [--log "
        "LEVEL]\n"
        "\n"
        "Connects to the room at URL (ws[s]://HOST:PORT/ROOM[?token=T]) with "
        "a\n"
        "document in memory and prints it as one JSON line ({root: toJSON()},\n"
        "as `loom update dump`) after the first sync and after every change,\n"
        "until SIGINT or SIGTERM (exit 0). Reconnects like `loom sync`.\n"
        "\n"
        "  --once          print after the first sync and exit 0\n"
        "  --timeout SECS  with --once: exit 1 when not synced within SECS\n"
        "  --ca FILE       wss://: trust the CA certificates in FILE (PEM)\n"
        "                  instead of the system's\n"
        "  --log LEVEL     error, warn (default), info or debug (stderr)\n"
        "\n"
        "Exit status: 0 after --once or a signal, 1 when access is denied or\n"
        "the timeout passed, 2 usage error.\n");
}

static void on_update(void *ud,
                      loom_doc *doc,
                      const uint8_t *update,
                      size_t len,
                      const loom_txn *txn)
{
    (void)doc;
    (void)update;
    (void)len;
    (void)txn;
    *(bool *)ud = true;
}

static uint64_t now_ms(void)
{
    struct timespec t;
    (void)clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

typedef struct watch_args {
    const char *url;
    const char *ca;
    bool once;
    unsigned long timeout_s;
    loom_log_level level;
} watch_args;

/* CLI_OK, CLI_USAGE after a message, or -1 after printing the help. */
static int parse_args(int argc, char **argv, watch_args *a)
{
    memset(a, 0, sizeof(*a));
    a->level = LOOM_LOG_WARN;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            cli_watch_help();
            return -1;
        } else if (strcmp(s, "--once") == 0) {
            a->once = true;
        } else if (s[0] != '-' && !a->url) {
            a->url = s;
        } else if (strcmp(s, "--ca") == 0 && i + 1 < argc) {
            a->ca = argv[++i];
        } else if (strcmp(s, "--log") == 0 && i + 1 < argc) {
            if (cli_peer_log_level(argv[++i], &a->level) != CLI_OK) {
                return CLI_USAGE;
            }
        } else if (strcmp(s, "--timeout") == 0 && i + 1 < argc) {
            char *end = NULL;
            const char *v = argv[++i];
            a->timeout_s = strtoul(v, &end, 10);
            if (!end || *end || v[0] == '\0' || v[0] == '-' ||
                a->timeout_s > 86400) {
                cli_error("--timeout: not a number of seconds: '%s'", v);
                return CLI_USAGE;
            }
        } else {
            cli_error("watch: unexpected argument '%s' (see `loom help "
                      "watch`)",
                      s);
            return CLI_USAGE;
        }
    }
    if (!a->url) {
        cli_error("watch: a URL is required (see `loom help watch`)");
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Services the provider until a signal, --once's print, a denial or the
 * timeout; returns the exit status. */
static int
watch_loop(loom_provider *p, loom_doc *doc, bool *changed, const watch_args *a)
{
    uint64_t deadline = a->timeout_s ? now_ms() + a->timeout_s * 1000u : 0;
    bool printed = false;
    while (!cli_peer_stop) {
        int rc = loom_provider_service(p, 100);
        if (rc == LOOM_ESTATE) {
            cli_error("watch: access denied");
            return CLI_FAIL;
        }
        if (rc) {
            cli_error("watch: %s", loom_strerror(rc));
            return CLI_FAIL;
        }
        /* the first print waits for the first sync, even of an empty room */
        bool first = !printed && loom_provider_synced(p);
        if (first || (printed && *changed)) {
            *changed = false;
            printed = true;
            if (cli_print_doc_json(doc) != CLI_OK) {
                return CLI_FAIL;
            }
            if (a->once) {
                return CLI_OK;
            }
        }
        if (a->once && deadline && now_ms() >= deadline) {
            cli_error("watch: not synced within %lu s", a->timeout_s);
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

int cli_watch_main(int argc, char **argv)
{
    watch_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        return rc < 0 ? CLI_OK : rc;
    }
    loom_doc *doc = NULL;
    if (loom_doc_new(NULL, &doc) != LOOM_OK) {
        cli_error("watch: out of memory");
        return CLI_FAIL;
    }
    bool changed = false;
    uint32_t sub = 0;
    loom_provider_options o;
    loom_provider_options_init(&o);
    o.url = a.url;
    o.tls_ca_file = a.ca;
    o.doc = doc;
    o.log = cli_peer_log;
    o.log_ud = "watch";
    o.log_level = a.level;
    loom_provider *p = NULL;
    loom_error err;
    memset(&err, 0, sizeof(err));
    rc = loom_doc_on_update(doc, on_update, &changed, &sub);
    if (rc == LOOM_OK) {
        rc = loom_provider_new(&o, &p, &err);
    }
    if (rc) {
        cli_error("watch: %s (%s)", err.message[0] ? err.message : "",
                  loom_strerror(rc));
        loom_doc_free(doc);
        return rc == LOOM_EINVAL || rc == LOOM_EUNSUPPORTED ? CLI_USAGE
                                                            : CLI_FAIL;
    }
    cli_peer_signals();
    int status = watch_loop(p, doc, &changed, &a);
    loom_provider_free(p);
    loom_doc_free(doc);
    return status;
}
