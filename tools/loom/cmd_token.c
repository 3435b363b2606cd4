/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/cmd_token.c: `loom token`, which issues the access tokens that
 * `loom serve --auth-secret` checks: an HS256 JWT for a room glob, a mode
 * and an expiry (loom_token_issue in loom/server.h), printed on stdout.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <loom/loom.h>

void cli_token_help(void)
{
    (void)printf(
        "usage: loom token --secret FILE --room PATTERN --mode rw|r "
        "[--ttl SECONDS]\n"
        "\n"
        "Prints a token for `loom serve --auth-secret FILE`; clients pass it\n"
        "as ?token=... in the WebSocket URL.\n"
        "\n"
        "  --secret FILE    the key: FILE's bytes, one trailing newline "
        "trimmed\n"
        "  --room PATTERN   rooms the token opens, a shell glob (fnmatch; "
        "'*' also\n"
        "                   matches '/')\n"
        "  --mode rw|r      read-write, or read-only (updates refused)\n"
        "  --ttl SECONDS    lifetime (default 3600)\n");
}

int cli_token_main(int argc, char **argv)
{
    const char *secret = NULL, *room = NULL, *mode = NULL;
    long long ttl = 3600;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli_token_help();
            return CLI_OK;
        }
        if (i + 1 >= argc) {
            cli_error("token: unknown option or missing value: '%s'", a);
            return CLI_USAGE;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--secret") == 0) {
            secret = v;
        } else if (strcmp(a, "--room") == 0) {
            room = v;
        } else if (strcmp(a, "--mode") == 0) {
            mode = v;
        } else if (strcmp(a, "--ttl") == 0) {
            char *end = NULL;
            errno = 0;
            ttl = strtoll(v, &end, 10);
            if (errno || !end || *end || v[0] == '\0' || ttl <= 0 ||
                ttl > 100LL * 365 * 86400) {
                cli_error("--ttl: a positive number of seconds, not '%s'", v);
                return CLI_USAGE;
            }
        } else {
            cli_error("token: unknown option '%s' (see `loom help token`)", a);
            return CLI_USAGE;
        }
    }
    if (!secret || !room || !mode) {
        cli_error("token: --secret, --room and --mode are required");
        return CLI_USAGE;
    }
    loom_token_mode m;
    if (strcmp(mode, "rw") == 0) {
        m = LOOM_TOKEN_READ_WRITE;
    } else if (strcmp(mode, "r") == 0) {
        m = LOOM_TOKEN_READ;
    } else {
        cli_error("--mode: rw or r, not '%s'", mode);
        return CLI_USAGE;
    }
    cli_input key;
    if (cli_read_input(secret, &key) != CLI_OK) {
        return CLI_FAIL;
    }
    if (key.len && key.data[key.len - 1] == '\n') {
        key.len--;
    }
    if (key.len == 0) {
        cli_error("%s: the secret is empty", key.name);
        cli_input_free(&key);
        return CLI_FAIL;
    }
    loom_buf tok = {0};
    int rc = loom_token_issue(key.data, key.len, room, m,
                              (int64_t)time(NULL) + ttl, &tok);
    cli_input_free(&key);
    if (rc) {
        cli_error("token: %s", loom_strerror(rc));
        return CLI_FAIL;
    }
    (void)printf("%s\n", (const char *)tok.data);
    loom_buf_free(&tok);
    return CLI_OK;
}
