/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/cmd_serve.c: `loom serve`, the y-websocket-compatible sync
 * server. Parses options (and HOST / PORT from the environment), reads the
 * auth secret, installs SIGTERM/SIGINT handlers that ask the server to stop,
 * and runs the library's server (loom/server.h). Log lines go to stderr with
 * a UTC timestamp; the one line on stdout, "listening on HOST:PORT", tells
 * scripts which port was bound (useful with --port 0); with TLS it says
 * "listening on HOST:PORT (TLS)".
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <loom/loom.h>

void cli_serve_help(void)
{
    (void)printf(
        "usage: loom serve [OPTIONS]\n"
        "\n"
        "A y-websocket-compatible sync server: the room is the URL path\n"
        "(ws://HOST:PORT/ROOM). See docs/server.md.\n"
        "\n"
        "  --host ADDR          address to bind (default $HOST or 127.0.0.1)\n"
        "  --port N             port (default $PORT or 1234; 0: any free "
        "port)\n"
        "  --data DIR           keep rooms in the store DIR/loom.db "
        "(default: memory)\n"
        "  --web DIR            serve static files from DIR for other GET "
        "paths\n"
        "  --tls-cert FILE      speak wss:// and https:// with this PEM "
        "certificate\n"
        "                       (chain); needs --tls-key\n"
        "  --tls-key FILE       the certificate's private key (PEM)\n"
        "  --auth-secret FILE   require HS256 tokens (?token=) signed with "
        "FILE's bytes\n"
        "                       (one trailing newline trimmed); see `loom "
        "token`\n"
        "  --max-message BYTES  largest message accepted (default 16777216)\n"
        "  --max-conns N        WebSocket connections at once (default "
        "10000)\n"
        "  --max-queue BYTES    unsent bytes per connection before it is "
        "dropped\n"
        "                       (default 8388608)\n"
        "  --unload-after SECS  unload a room empty for SECS (default 30; "
        "--data only)\n"
        "  --compact-rows N     compact a room's log past N rows once it grew "
        "by\n"
        "                       half its last compacted size, off the event "
        "loop\n"
        "                       (default 1000; --data only)\n"
        "  --ping SECS          ping a connection idle for SECS (default 30);"
        "\n"
        "                       hang up after twice that without a pong\n"
        "  --gc on|off          garbage-collect deleted content in the rooms\n"
        "                       (default on; $GC=false or 0 turns it off, as\n"
        "                       for the reference server)\n"
        "  --log LEVEL          error, warn, info (default) or debug\n"
        "\n"
        "HTTP callback (as the reference server's; also $CALLBACK_URL,\n"
        "$CALLBACK_OBJECTS, $CALLBACK_DEBOUNCE_WAIT, "
        "$CALLBACK_DEBOUNCE_MAXWAIT,\n"
        "$CALLBACK_TIMEOUT):\n"
        "  --callback-url URL   POST a changed room as JSON to URL "
        "(http://)\n"
        "  --callback-objects JSON  the roots to send, e.g. "
        "'{\"text\":\"Text\"}'\n"
        "  --callback-debounce MS   after the last change (default 2000)\n"
        "  --callback-max-wait MS   at most after the first unsent change\n"
        "                       (default 10000; 0: no bound)\n"
        "  --callback-timeout MS    per POST (default 5000)\n"
        "\n"
        "SIGTERM or SIGINT: stop accepting, send what is queued, close every\n"
        "connection with a close frame, close the store, exit 0.\n");
}

static loom_server *running;

static void on_signal(int sig)
{
    (void)sig;
    loom_server_stop(running);
}

static void log_line(void *ud, loom_log_level level, const char *line)
{
    (void)ud;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) ||
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        ts[0] = '\0';
    }
    (void)fprintf(stderr, "%s loom serve %s: %s\n", ts, names[level], line);
}

/* A number option; prints a usage error and returns -1 when it is not. */
static int parse_size(const char *opt,
                      const char *v,
                      unsigned long long max,
                      unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || !end || *end || v[0] == '\0' || v[0] == '-' || n > max) {
        cli_error("%s: not a number up to %llu: '%s'", opt, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

/* Reads a key file: its bytes, one trailing newline trimmed. */
static int read_secret(const char *path, cli_input *in)
{
    if (cli_read_input(path, in) != CLI_OK) {
        return -1;
    }
    if (in->len && in->data[in->len - 1] == '\n') {
        in->len--;
    }
    if (in->len == 0) {
        cli_error("%s: the secret is empty", in->name);
        cli_input_free(in);
        return -1;
    }
    return 0;
}

/* One option and its value; CLI_OK, or CLI_USAGE after a message. */
static int serve_option(loom_server_options *o,
                        const char **secret_path,
                        const char *a,
                        const char *v)
{
    unsigned long long n;
    if (strcmp(a, "--host") == 0) {
        o->host = v;
    } else if (strcmp(a, "--port") == 0) {
        if (parse_size(a, v, 65535, &n)) {
            return CLI_USAGE;
        }
        o->port = (int)n;
    } else if (strcmp(a, "--data") == 0) {
        o->data_dir = v;
    } else if (strcmp(a, "--web") == 0) {
        o->web_dir = v;
    } else if (strcmp(a, "--tls-cert") == 0) {
        o->tls_cert_file = v;
    } else if (strcmp(a, "--tls-key") == 0) {
        o->tls_key_file = v;
    } else if (strcmp(a, "--auth-secret") == 0) {
        *secret_path = v;
    } else if (strcmp(a, "--max-message") == 0) {
        if (parse_size(a, v, 1ull << 31, &n) || n == 0) {
            return CLI_USAGE;
        }
        o->max_message = (size_t)n;
    } else if (strcmp(a, "--max-conns") == 0) {
        if (parse_size(a, v, 1000000, &n) || n == 0) {
            return CLI_USAGE;
        }
        o->max_conns = (unsigned)n;
    } else if (strcmp(a, "--max-queue") == 0) {
        if (parse_size(a, v, 1ull << 34, &n) || n == 0) {
            return CLI_USAGE;
        }
        o->max_queue = (size_t)n;
    } else if (strcmp(a, "--unload-after") == 0) {
        if (parse_size(a, v, 86400, &n)) {
            return CLI_USAGE;
        }
        o->unload_secs = (unsigned)n;
    } else if (strcmp(a, "--compact-rows") == 0) {
        if (parse_size(a, v, 1u << 30, &n) || n == 0) {
            return CLI_USAGE;
        }
        o->compact_rows = (unsigned)n;
    } else if (strcmp(a, "--ping") == 0) {
        if (parse_size(a, v, 3600, &n) || n == 0) {
            return CLI_USAGE;
        }
        o->ping_secs = (unsigned)n;
        o->hangup_secs = (unsigned)(2 * n);
    } else if (strcmp(a, "--gc") == 0) {
        if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
            cli_error("--gc: on or off, not '%s'", v);
            return CLI_USAGE;
        }
        o->gc = strcmp(v, "on") == 0;
    } else if (strcmp(a, "--callback-url") == 0) {
        o->callback_url = v;
    } else if (strcmp(a, "--callback-objects") == 0) {
        o->callback_objects = v;
    } else if (strcmp(a, "--callback-debounce") == 0) {
        if (parse_size(a, v, 86400000, &n)) {
            return CLI_USAGE;
        }
        o->callback_debounce_ms = (unsigned)n;
    } else if (strcmp(a, "--callback-max-wait") == 0) {
        if (parse_size(a, v, 86400000, &n)) {
            return CLI_USAGE;
        }
        o->callback_max_wait_ms = (unsigned)n;
    } else if (strcmp(a, "--callback-timeout") == 0) {
        if (parse_size(a, v, 3600000, &n) || n == 0) {
            return CLI_USAGE;
        }
        o->callback_timeout_ms = (unsigned)n;
    } else if (strcmp(a, "--log") == 0) {
        static const char *const lv[] = {"error", "warn", "info", "debug"};
        size_t k = 0;
        while (k < 4 && strcmp(lv[k], v) != 0) {
            k++;
        }
        if (k == 4) {
            cli_error("--log: error, warn, info or debug, not '%s'", v);
            return CLI_USAGE;
        }
        o->log_level = (loom_log_level)k;
    } else {
        cli_error("serve: unknown option '%s' (see `loom help serve`)", a);
        return CLI_USAGE;
    }
    return CLI_OK;
}

int cli_serve_main(int argc, char **argv)
{
    loom_server_options o;
    loom_server_options_init(&o);
    const char *env_host = getenv("HOST");
    const char *env_port = getenv("PORT");
    const char *secret_path = NULL;
    unsigned long long n;
    if (env_host && env_host[0]) {
        o.host = env_host;
    }
    if (env_port && env_port[0]) {
        if (parse_size("PORT", env_port, 65535, &n)) {
            return CLI_USAGE;
        }
        o.port = (int)n;
    }
    const char *env_gc = getenv("GC");
    if (env_gc && (strcmp(env_gc, "false") == 0 || strcmp(env_gc, "0") == 0)) {
        o.gc = 0;
    }
    /* the reference server's variables, overridden by the options */
    static const char *const cb_env[][2] = {
        {"CALLBACK_URL", "--callback-url"},
        {"CALLBACK_OBJECTS", "--callback-objects"},
        {"CALLBACK_DEBOUNCE_WAIT", "--callback-debounce"},
        {"CALLBACK_DEBOUNCE_MAXWAIT", "--callback-max-wait"},
        {"CALLBACK_TIMEOUT", "--callback-timeout"},
    };
    for (size_t k = 0; k < sizeof(cb_env) / sizeof(cb_env[0]); k++) {
        const char *v = getenv(cb_env[k][0]);
        if (v && v[0]) {
            int rc = serve_option(&o, &secret_path, cb_env[k][1], v);
            if (rc != CLI_OK) {
                return rc;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_serve_help();
            return CLI_OK;
        }
        if (i + 1 >= argc) {
            cli_error("serve: unknown option or missing value: '%s' (see "
                      "`loom help serve`)",
                      a);
            return CLI_USAGE;
        }
        int rc = serve_option(&o, &secret_path, a, argv[++i]);
        if (rc != CLI_OK) {
            return rc;
        }
    }
    if (!o.tls_cert_file != !o.tls_key_file) {
        cli_error("serve: --tls-cert and --tls-key go together");
        return CLI_USAGE;
    }
    cli_input secret = {0};
    if (secret_path) {
        if (read_secret(secret_path, &secret)) {
            return CLI_FAIL;
        }
        o.auth_secret = secret.data;
        o.auth_secret_len = secret.len;
    }
    o.log = log_line;

    loom_server *s = NULL;
    loom_error err;
    memset(&err, 0, sizeof(err));
    int rc = loom_server_new(&o, &s, &err);
    cli_input_free(&secret);
    if (rc) {
        cli_error("serve: %s (%s)", err.message[0] ? err.message : "",
                  loom_strerror(rc));
        return CLI_FAIL;
    }
    running = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    (void)sigaction(SIGPIPE, &sa, NULL);

    (void)printf("listening on %s:%d%s\n", o.host, loom_server_port(s),
                 o.tls_cert_file ? " (TLS)" : "");
    (void)fflush(stdout);
    rc = loom_server_run(s);
    running = NULL;
    loom_server_free(s);
    return rc ? CLI_FAIL : CLI_OK;
}
