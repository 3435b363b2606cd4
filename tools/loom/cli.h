/* SPDX-License-Identifier: MIT */
/*
 * tools/loom/cli.h: what the subcommands of the `loom` program share: the
 * command table entry, reading input files, writing output and reporting
 * errors. The CLI is thin (DESIGN.md): every subcommand parses its
 * arguments, calls the public API of libloom (include/loom/loom.h) and
 * prints the result.
 *
 * Exit codes of every subcommand: 0 success, 1 failure (bad input, I/O),
 * 2 usage error.
 */
#ifndef LOOM_CLI_H
#define LOOM_CLI_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <loom/server.h>

#define CLI_OK    0
#define CLI_FAIL  1
#define CLI_USAGE 2

/* One subcommand: `loom NAME ARGS...` calls run(argc, argv) with argv[0]
 * being NAME. */
typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    void (*help)(void);  /* prints the subcommand's usage to stdout */
    const char *summary; /* one line for `loom help` */
} cli_command;

/* The `loom update` family (cmd_update.c). */
int cli_update_main(int argc, char **argv);
void cli_update_help(void);

/* The `loom bench` workloads (cmd_bench.c). */
int cli_bench_main(int argc, char **argv);
void cli_bench_help(void);

/* `loom serve` (cmd_serve.c) and `loom token` (cmd_token.c). */
int cli_serve_main(int argc, char **argv);
void cli_serve_help(void);
int cli_token_main(int argc, char **argv);
void cli_token_help(void);

/* `loom sync` (cmd_sync.c) and `loom watch` (cmd_watch.c), native peers of
 * a room, and what they share (cmd_sync.c): a signal flag set by SIGINT and
 * SIGTERM (cli_peer_signals installs the handlers, without SA_RESTART), a
 * log callback printing "TS loom <ud> LEVEL: line" to stderr (ud: the
 * command name), and parsing --log LEVEL. */
int cli_sync_main(int argc, char **argv);
void cli_sync_help(void);
int cli_watch_main(int argc, char **argv);
void cli_watch_help(void);
extern volatile sig_atomic_t cli_peer_stop;
void cli_peer_signals(void);
void cli_peer_log(void *ud, loom_log_level level, const char *line);
int cli_peer_log_level(const char *v, loom_log_level *out);

/* The `loom store` family (cmd_store.c). */
int cli_store_main(int argc, char **argv);
void cli_store_help(void);

/* `loom bench store` (bench_store.c), dispatched by cmd_bench.c. */
int cli_bench_store(int argc, char **argv);

/* Prints {root name: toJSON()} of `doc` and a newline to stdout: compact,
 * keys sorted, untyped roots given the kind their content suggests (so it
 * may type roots of `doc`). Prints a message and returns CLI_FAIL on error
 * (docjson.c; `loom update dump` and `loom store dump`). */
typedef struct loom_doc loom_doc;
int cli_print_doc_json(loom_doc *doc);

/* A whole input file in memory. */
typedef struct cli_input {
    const char *path; /* as given on the command line ("-" is stdin) */
    const char *name; /* for messages: path, or "<stdin>" */
    uint8_t *data;    /* malloc'd; NULL when len is 0 */
    size_t len;
} cli_input;

/* Reads `path` ("-": standard input, at most once per process) into `in`.
 * Prints a message and returns CLI_FAIL on error. */
int cli_read_input(const char *path, cli_input *in);
void cli_input_free(cli_input *in);
/* The store passphrase: FILE's bytes with one trailing newline removed
 * (FILE given), else $LOOM_PASSPHRASE, else none (*have 0). Prints a
 * message and returns CLI_FAIL when it cannot be read or is empty. */
int cli_read_passphrase(const char *file, cli_input *in, int *have);

/* Writes bytes to standard output and flushes; prints a message and returns
 * CLI_FAIL on a write error. */
int cli_write_stdout(const void *data, size_t len);

/* Prints "loom: " + the formatted message + "\n" to stderr. */
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif
