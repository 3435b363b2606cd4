/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/cmd_sync.c: `loom sync URL --data DIR [--doc NAME]`, a native
 * peer that keeps one document of the store DIR/loom.db in sync with one
 * room of a y-websocket server, until SIGINT or SIGTERM. It is a thin loop
 * around the library's provider (loom/provider.h) with the store attached
 * and the store poll on, so that edits another process appends to the
 * same store (`loom store append`) while sync runs reach the room, and
 * edits made while sync was not running go out when it starts. Also here:
 * what `loom sync` and `loom watch` (cmd_watch.c) share: the stderr log
 * line, the signal flag, the common options.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <loom/loom.h>

/* How often the store is checked for updates appended by others. */
#define SYNC_POLL_MS 200

void cli_sync_help(void)
{
    (void)printf(
        "usage: loom sync URL --data DIR [--doc NAME] [OPTIONS]\n"
        "\n"
        "Keeps document NAME (default: the room) of the store DIR/loom.db in\n"
        "sync with the room at URL (ws[s]://HOST:PORT/ROOM[?token=T]), until\n"
        "SIGINT or SIGTERM (exit 0). Edits appended to the store by another\n"
        "process (`loom store append`) are noticed within 200 ms and sent;\n"
        "edits made while no sync ran go out on start. The server down:\n"
        "retries with backoff (0.1 s doubling up to 2.5 s). See "
        "docs/peers.md.\n"
        "\n"
        "  --data DIR        the store directory (created when missing)\n"
        "  --doc NAME        the store document (default: the room name)\n"
        "  --awareness JSON  presence state to announce, e.g. "
        "'{\"user\":\"ann\"}'\n"
        "  --ca FILE         wss://: trust the CA certificates in FILE (PEM)\n"
        "                    instead of the system's\n"
        "  --passphrase-file FILE  the store's passphrase (default: "
        "$LOOM_PASSPHRASE)\n"
        "  --log LEVEL       error, warn, info (default) or debug\n"
        "\n"
        "Log lines go to stderr. Exit status: 0 after a signal, 1 when the\n"
        "server denies access (HTTP 401, permission denied) or the store\n"
        "fails, 2 usage error.\n");
}

/* ---- shared with cmd_watch.c (cli.h) -------------------------------------- */

volatile sig_atomic_t cli_peer_stop;

static void on_signal(int sig)
{
    (void)sig;
    cli_peer_stop = 1;
}

void cli_peer_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    /* no SA_RESTART: the signal ends the provider's poll at once */
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);
}

void cli_peer_log(void *ud, loom_log_level level, const char *line)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) ||
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        ts[0] = '\0';
    }
    (void)fprintf(stderr, "%s loom %s %s: %s\n", ts, (const char *)ud,
                  names[level], line);
}

int cli_peer_log_level(const char *v, loom_log_level *out)
{
    static const char *const lv[] = {"error", "warn", "info", "debug"};
    for (int k = 0; k < 4; k++) {
        if (strcmp(lv[k], v) == 0) {
            *out = (loom_log_level)k;
            return CLI_OK;
        }
    }
    cli_error("--log: error, warn, info or debug, not '%s'", v);
    return CLI_USAGE;
}

/* ---- loom sync ------------------------------------------------------------ */

typedef struct sync_args {
    const char *url, *data, *doc, *awareness, *ca, *pass_file;
    loom_log_level level;
} sync_args;

static int parse_args(int argc, char **argv, sync_args *a)
{
    memset(a, 0, sizeof(*a));
    a->level = LOOM_LOG_INFO;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            cli_sync_help();
            return -1;
        }
        if (s[0] != '-') {
            if (a->url) {
                cli_error("sync: one URL only (see `loom help sync`)");
                return CLI_USAGE;
            }
            a->url = s;
            continue;
        }
        if (i + 1 >= argc) {
            cli_error("sync: unknown option or missing value: '%s' (see "
                      "`loom help sync`)",
                      s);
            return CLI_USAGE;
        }
        const char *v = argv[++i];
        if (strcmp(s, "--data") == 0) {
            a->data = v;
        } else if (strcmp(s, "--doc") == 0) {
            a->doc = v;
        } else if (strcmp(s, "--awareness") == 0) {
            a->awareness = v;
        } else if (strcmp(s, "--ca") == 0) {
            a->ca = v;
        } else if (strcmp(s, "--passphrase-file") == 0) {
            a->pass_file = v;
        } else if (strcmp(s, "--log") == 0) {
            if (cli_peer_log_level(v, &a->level) != CLI_OK) {
                return CLI_USAGE;
            }
        } else {
            cli_error("sync: unknown option '%s' (see `loom help sync`)", s);
            return CLI_USAGE;
        }
    }
    if (!a->url || !a->data) {
        cli_error("sync: URL and --data DIR are required (see `loom help "
                  "sync`)");
        return CLI_USAGE;
    }
    if (a->doc && a->doc[0] == '\0') {
        cli_error("sync: --doc: empty name");
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int open_store(const char *dir, const char *pass_file, loom_store **out)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        cli_error("sync: %s: %s", dir, strerror(errno));
        return CLI_FAIL;
    }
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/loom.db", dir);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        cli_error("sync: %s: path too long", dir);
        return CLI_FAIL;
    }
    loom_store_options so;
    loom_store_options_init(&so);
    cli_input pass;
    int have = 0;
    if (cli_read_passphrase(pass_file, &pass, &have) != CLI_OK) {
        return CLI_FAIL;
    }
    if (have) {
        so.passphrase = pass.data;
        so.passphrase_len = pass.len;
    }
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc = loom_store_open(path, &so, out, &err);
    if (have) {
        /* the store keeps its derived key, not the passphrase */
        memset(pass.data, 0, pass.len);
        cli_input_free(&pass);
    }
    if (rc) {
        cli_error("sync: %s: %s", path,
                  err.message[0] ? err.message : loom_strerror(rc));
        return CLI_FAIL;
    }
    return CLI_OK;
}

int cli_sync_main(int argc, char **argv)
{
    sync_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        return rc < 0 ? CLI_OK : rc;
    }
    loom_store *store = NULL;
    if (open_store(a.data, a.pass_file, &store) != CLI_OK) {
        return CLI_FAIL;
    }
    loom_doc *doc = NULL;
    if (loom_doc_new(NULL, &doc) != LOOM_OK) {
        cli_error("sync: out of memory");
        loom_store_close(store);
        return CLI_FAIL;
    }
    loom_provider_options o;
    loom_provider_options_init(&o);
    o.url = a.url;
    o.tls_ca_file = a.ca;
    o.doc = doc;
    o.store = store;
    o.store_name = a.doc;
    o.store_poll_ms = SYNC_POLL_MS;
    o.awareness = a.awareness;
    o.log = cli_peer_log;
    o.log_ud = "sync";
    o.log_level = a.level;
    loom_provider *p = NULL;
    loom_error err;
    memset(&err, 0, sizeof(err));
    rc = loom_provider_new(&o, &p, &err);
    if (rc) {
        cli_error("sync: %s (%s)", err.message[0] ? err.message : "",
                  loom_strerror(rc));
        loom_doc_free(doc);
        loom_store_close(store);
        return rc == LOOM_EINVAL || rc == LOOM_EUNSUPPORTED ? CLI_USAGE
                                                            : CLI_FAIL;
    }
    cli_peer_signals();
    int status = CLI_OK;
    while (!cli_peer_stop) {
        rc = loom_provider_service(p, 100);
        if (rc == LOOM_ESTATE) {
            cli_error("sync: access denied; stopping");
            status = CLI_FAIL;
            break;
        }
        if (rc) {
            cli_error("sync: %s", loom_strerror(rc));
            status = CLI_FAIL;
            break;
        }
    }
    /* every update the document saw is in the store already (appended as
     * its transaction ended), so stopping here loses nothing */
    loom_provider_free(p);
    loom_doc_free(doc);
    loom_store_close(store);
    if (status == CLI_OK) {
        cli_peer_log("sync", LOOM_LOG_INFO, "stopped");
    }
    return status;
}
