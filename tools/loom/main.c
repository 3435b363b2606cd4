/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/main.c: the `loom` program. Dispatches `loom COMMAND ARGS...`
 * through a table of subcommands, and holds the helpers they share (reading
 * inputs, writing output, error messages; see cli.h).
 *
 * Today: `loom update ...` (encoded Yjs v1 updates and state vectors),
 * `loom store ...` (the durable document store, cmd_store.c),
 * `loom bench ...` (performance workloads, cmd_bench.c), `loom serve` (the
 * sync server, cmd_serve.c), `loom token` (its access tokens,
 * cmd_token.c), and the native peers `loom sync` (cmd_sync.c) and
 * `loom watch` (cmd_watch.c). `loom db ...` joins the table when its
 * layer lands (DESIGN.md).
 */
#include "cli.h"

#include <errno.h>
#ifdef __GLIBC__
#    include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <loom/loom.h>

static int cmd_help(int argc, char **argv);
static void help_help(void);

static const cli_command commands[] = {
    {"update", cli_update_main, cli_update_help,
     "decode, merge and diff Yjs v1 updates and state vectors"},
    {"store", cli_store_main, cli_store_help,
     "keep documents durably in a SQLite store (DIR/loom.db)"},
    {"bench", cli_bench_main, cli_bench_help,
     "measure libloom on editing traces and synthetic workloads"},
    {"serve", cli_serve_main, cli_serve_help,
     "run the y-websocket-compatible sync server"},
    {"token", cli_token_main, cli_token_help,
     "issue an access token for `loom serve --auth-secret`"},
    {"sync", cli_sync_main, cli_sync_help,
     "keep a store document in sync with a y-websocket room"},
    {"watch", cli_watch_main, cli_watch_help,
     "print a room's document as JSON after every change"},
    {"help", cmd_help, help_help, "show help for loom or one of its commands"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static void usage(FILE *f)
{
    (void)fprintf(f, "usage: loom COMMAND [ARGS...]\n"
                     "       loom --version\n"
                     "\n"
                     "loom is a local-first replicated document database, byte-"
                     "compatible with Yjs.\n"
                     "\n"
                     "commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        (void)fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    }
    (void)fprintf(f,
                  "\nRun `loom help COMMAND` for the options of a command.\n");
}

static void help_help(void)
{
    (void)printf("usage: loom help [COMMAND]\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return CLI_OK;
    }
    const cli_command *c = find_command(argv[1]);
    if (c == NULL) {
        cli_error("unknown command '%s' (see `loom help`)", argv[1]);
        return CLI_USAGE;
    }
    c->help();
    return CLI_OK;
}

/*
 * A loom process frees and allocates documents again and again: a server's
 * rooms are loaded and evicted, a bench loads the same update many times.
 * glibc hands freed heap back to the kernel as soon as 128 KiB of it sit on
 * top, so the next document faults every page in again (about 2 us a page
 * on our VMs: more than half of a warm 100,000-key load). So the program
 * keeps up to 64 MiB of freed heap, as a server's allocator would. Blocks
 * of 128 KiB and more keep their own mappings: a growing vector or output
 * buffer is remapped, not copied (a larger mmap threshold cost the map sets
 * 4% and the map encode 8% in copies, for no faster reload).
 * This is the program's choice, not the library's (which never changes
 * process state). MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_ or
 * GLIBC_TUNABLES in the environment leave glibc's own policy in place.
 */
static void keep_freed_heap(void)
{
#ifdef __GLIBC__
    if (getenv("MALLOC_TRIM_THRESHOLD_") || getenv("MALLOC_MMAP_THRESHOLD_") ||
        getenv("GLIBC_TUNABLES")) {
        return;
    }
    (void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

int main(int argc, char **argv)
{
    keep_freed_heap();
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        (void)printf("loom %s\n", LOOM_VERSION_STRING);
        return CLI_OK;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    const cli_command *c = find_command(name);
    if (c == NULL) {
        cli_error("unknown command '%s' (see `loom help`)", name);
        return CLI_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}

/* ---- helpers shared by the subcommands (cli.h) ------------------------ */

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)fputs("loom: ", stderr);
    (void)vfprintf(stderr, fmt, ap);
    (void)fputc('\n', stderr);
    va_end(ap);
}

static int stdin_used;

int cli_read_input(const char *path, cli_input *in)
{
    int is_stdin = strcmp(path, "-") == 0;
    memset(in, 0, sizeof(*in));
    in->path = path;
    in->name = is_stdin ? "<stdin>" : path;
    if (is_stdin && stdin_used) {
        cli_error("-: standard input can be read only once");
        return CLI_FAIL;
    }
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        cli_error("%s: %s", path, strerror(errno));
        return CLI_FAIL;
    }
    stdin_used |= is_stdin;

    uint8_t *data = NULL;
    size_t len = 0;
    size_t cap = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : (size_t)64 * 1024;
            uint8_t *p = ncap > cap ? realloc(data, ncap) : NULL;
            if (p == NULL) {
                cli_error("%s: out of memory", in->name);
                free(data);
                if (!is_stdin) {
                    (void)fclose(f);
                }
                return CLI_FAIL;
            }
            data = p;
            cap = ncap;
        }
        size_t n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            break;
        }
    }
    int failed = ferror(f);
    int saved = errno;
    if (!is_stdin) {
        (void)fclose(f);
    }
    if (failed) {
        cli_error("%s: read error: %s", in->name, strerror(saved));
        free(data);
        return CLI_FAIL;
    }
    if (len == 0) {
        free(data);
        data = NULL;
    }
    in->data = data;
    in->len = len;
    return CLI_OK;
}

void cli_input_free(cli_input *in)
{
    free(in->data);
    in->data = NULL;
    in->len = 0;
}

/* The passphrase: FILE's bytes with one trailing newline removed, else
 * LOOM_PASSPHRASE, else none (*len 0, *out NULL). */
int cli_read_passphrase(const char *file, cli_input *in, int *have)
{
    *have = 0;
    memset(in, 0, sizeof(*in));
    if (file != NULL) {
        if (cli_read_input(file, in) != CLI_OK) {
            return CLI_FAIL;
        }
        if (in->len > 0 && in->data[in->len - 1] == '\n') {
            in->len--;
        }
        if (in->len == 0) {
            cli_error("%s: empty passphrase", in->name);
            cli_input_free(in);
            return CLI_FAIL;
        }
        *have = 1;
        return CLI_OK;
    }
    const char *env = getenv("LOOM_PASSPHRASE");
    if (env != NULL) {
        if (*env == '\0') {
            cli_error("LOOM_PASSPHRASE: empty passphrase");
            return CLI_FAIL;
        }
        size_t n = strlen(env);
        in->data = malloc(n);
        if (in->data == NULL) {
            cli_error("out of memory");
            return CLI_FAIL;
        }
        memcpy(in->data, env, n);
        in->len = n;
        in->name = "LOOM_PASSPHRASE";
        *have = 1;
    }
    return CLI_OK;
}

int cli_write_stdout(const void *data, size_t len)
{
    if (len > 0 && fwrite(data, 1, len, stdout) != len) {
        cli_error("write error: %s", strerror(errno));
        return CLI_FAIL;
    }
    if (fflush(stdout) != 0) {
        cli_error("write error: %s", strerror(errno));
        return CLI_FAIL;
    }
    return CLI_OK;
}
