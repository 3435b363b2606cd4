/*
 * procs.c: the store with real processes (ctest store-crash and
 * store-concurrent).
 *
 *   store_procs crash [ROUNDS]
 *     Each round forks a child that opens the store with tiny compaction
 *     bounds and appends updates to one document as fast as it can (one at
 *     a time or two per append_many, an explicit compaction every few
 *     appends), writing each update's number to a pipe only after the
 *     append returned. The parent kills it with SIGKILL after a random
 *     delay, reads what was reported, reopens the store and checks that
 *     every reported update is in the loaded document (each one sets its
 *     own map key), that the document decodes and that the kept state
 *     vector is the merged log's. Rounds alternate between a plain and an
 *     encrypted store and accumulate, so every earlier round of a store is
 *     checked again. The child also reports when it
 *     enters and leaves a compaction, so the parent counts the kills that
 *     landed inside one.
 *
 *   store_procs concurrent [N]
 *     Two children use one store at once: both append to "shared" and each
 *     to its own document; one compacts "shared" often, the other relies on
 *     automatic compaction. Afterwards every update of both is there.
 *
 * LOOM_STORE_ROUNDS overrides ROUNDS / N; LOOM_SEED replays a seed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loom/loom.h"
#include "storegen.h"

#define DOC "crash"

static int die(const char *what, int rc, const loom_error *e)
{
    (void)fprintf(stderr, "store_procs: %s: %s (%s)\n", what, loom_strerror(rc),
                  e && e->message[0] ? e->message : "-");
    return 1;
}

static void put_line(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(3);
        }
        s += w;
        n -= (size_t)w;
    }
}

/* ---- crash ---------------------------------------------------------------- */

/* The child of round `round`: appends until killed. Never returns. */
/* Odd rounds use a second, encrypted store (tiny Argon2id cost). */
static void store_opts(loom_store_options *o, long round)
{
    loom_store_options_init(o);
    if (round % 2 == 1) {
        o->passphrase = (const uint8_t *)"crash test";
        o->passphrase_len = 10;
        o->kdf_opslimit = 1;
        o->kdf_memlimit = 8192;
    }
}

static void crash_child(const char *db, long round, uint64_t seed, int fd)
{
    loom_store_options o;
    store_opts(&o, round);
    o.compact_max_updates = 4 + (uint64_t)(round % 12);
    o.compact_max_bytes = 2048;
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(db, &o, &s, &e);
    if (rc) {
        _exit(die("child open", rc, &e));
    }
    sg_updates u = {0};
    loom_doc *d = sg_doc_new(1000 + (uint64_t)round, &u);
    if (d == NULL) {
        _exit(2);
    }
    uint64_t rng = seed ^ (uint64_t)(round + 1) * 0x9E3779B97F4A7C15ULL;
    char line[64];
    for (long i = 0;; i++) {
        char key[48];
        (void)snprintf(key, sizeof(key), "r%ld-%ld", round, i);
        size_t first = u.n;
        if (sg_set(d, key, (double)i) != 0) {
            _exit(2);
        }
        int two = sg_rand(&rng) % 4 == 0;
        if (two) {
            (void)snprintf(key, sizeof(key), "r%ld-%ld", round, i + 1);
            if (sg_set(d, key, (double)i + 1) != 0) {
                _exit(2);
            }
        }
        memset(&e, 0, sizeof(e));
        rc = loom_store_append_many(s, DOC,
                                    (const uint8_t *const *)u.data + first,
                                    u.lens + first, u.n - first, &e);
        if (rc) {
            _exit(die("child append", rc, &e));
        }
        (void)snprintf(line, sizeof(line), "%ld\n", i);
        put_line(fd, line);
        if (two) {
            i++;
            (void)snprintf(line, sizeof(line), "%ld\n", i);
            put_line(fd, line);
        }
        if (sg_rand(&rng) % 6 == 0) {
            put_line(fd, "c\n");
            rc = loom_store_compact(s, DOC, &e);
            if (rc) {
                _exit(die("child compact", rc, &e));
            }
            put_line(fd, "C\n");
        }
    }
}

/* Everything the child wrote to the pipe, as a string (malloc'd). */
static char *read_all(int fd)
{
    size_t cap = 4096;
    size_t len = 0;
    char *p = malloc(cap);
    if (p == NULL) {
        return NULL;
    }
    for (;;) {
        if (len + 1 == cap) {
            char *q = realloc(p, cap * 2);
            if (q == NULL) {
                free(p);
                return NULL;
            }
            p = q;
            cap *= 2;
        }
        ssize_t r = read(fd, p + len, cap - len - 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        len += (size_t)r;
    }
    p[len] = '\0';
    return p;
}

/* Opens the store and checks it: the document loads and its kept state
 * vector is the merged log's. *out gets the loaded document. */
static int check_store(const char *db,
                       const loom_store_options *o,
                       const char *name,
                       loom_doc **out)
{
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(db, o, &s, &e);
    if (rc) {
        return die("reopen", rc, &e);
    }
    loom_doc *d = sg_doc_new(1, NULL);
    loom_buf m = {0};
    loom_buf sv = {0};
    loom_buf want = {0};
    rc = loom_store_load(s, name, d, &e);
    if (!rc) {
        rc = loom_store_encode(s, name, &m, &e);
    }
    if (!rc) {
        rc = loom_store_state_vector(s, name, &sv, &e);
    }
    if (!rc) {
        rc = loom_update_state_vector(NULL, m.data, m.len, &want, &e);
    }
    int bad = 0;
    if (rc) {
        bad = die("load", rc, &e);
    } else if (sv.len != want.len || memcmp(sv.data, want.data, sv.len)) {
        (void)fprintf(stderr, "store_procs: %s: state vector differs\n", name);
        bad = 1;
    }
    loom_buf_free(&m);
    loom_buf_free(&sv);
    loom_buf_free(&want);
    loom_store_close(s);
    if (bad) {
        loom_doc_free(d);
        return 1;
    }
    *out = d;
    return 0;
}

static int crash(const char *dir, long rounds, uint64_t seed)
{
    char *dbs[2] = {sg_path(dir, "loom.db"), sg_path(dir, "sealed.db")};
    long *reported = calloc((size_t)rounds, sizeof(*reported));
    if (dbs[0] == NULL || dbs[1] == NULL || reported == NULL) {
        return 1;
    }
    long totals[2] = {0, 0};
    uint64_t rng = seed;
    long in_compaction = 0;
    long total = 0;
    int bad = 0;
    for (long round = 0; round < rounds && !bad; round++) {
        int fds[2];
        if (pipe(fds) != 0) {
            perror("pipe");
            return 1;
        }
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            close(fds[0]);
            crash_child(dbs[round % 2], round, seed, fds[1]);
        }
        close(fds[1]);
        /* From 0 to 60 ms: sometimes before the store is even open. */
        long us = (long)(sg_rand(&rng) % 60000);
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        char *text = read_all(fds[0]);
        close(fds[0]);
        if (text == NULL) {
            return 1;
        }
        if (!WIFSIGNALED(status)) {
            (void)fprintf(stderr, "store_procs: round %ld: child exited %d\n",
                          round, WEXITSTATUS(status));
            free(text);
            bad = 1;
            break;
        }
        long n = 0;
        char last = 0;
        for (char *p = text; *p; p++) {
            if (*p == '\n') {
                continue;
            }
            if (*p == 'c' || *p == 'C') {
                last = *p;
                continue;
            }
            n++;
            last = 'n';
            while (p[1] && p[1] != '\n') {
                p++;
            }
        }
        in_compaction += last == 'c';
        reported[round] = n;
        total += n;
        totals[round % 2] += n;
        free(text);

        loom_doc *d = NULL;
        if (totals[round % 2] == 0) {
            continue; /* nothing reported yet, maybe no document */
        }
        loom_store_options o;
        store_opts(&o, round);
        if (check_store(dbs[round % 2], &o, DOC, &d)) {
            bad = 1;
            break;
        }
        for (long r = round % 2; r <= round && !bad; r += 2) {
            for (long i = 0; i < reported[r]; i++) {
                char key[48];
                (void)snprintf(key, sizeof(key), "r%ld-%ld", r, i);
                if (!sg_has(d, key)) {
                    (void)fprintf(stderr,
                                  "store_procs: round %ld: reported update "
                                  "%s is missing\n",
                                  round, key);
                    bad = 1;
                    break;
                }
            }
        }
        loom_doc_free(d);
    }
    printf("crash: %ld rounds, %ld reported updates checked, %ld kills "
           "inside a compaction%s\n",
           rounds, total, in_compaction, bad ? ": FAILED" : "");
    free(reported);
    free(dbs[0]);
    free(dbs[1]);
    return bad;
}

/* ---- concurrent ---------------------------------------------------------- */

static int concurrent_child(const char *db, int who, long n)
{
    loom_store_options o;
    loom_store_options_init(&o);
    o.busy_timeout_ms = 20000;
    o.compact_max_updates = who == 0 ? 16 : 0;
    loom_store *s = NULL;
    loom_error e;
    memset(&e, 0, sizeof(e));
    int rc = loom_store_open(db, &o, &s, &e);
    if (rc) {
        return die("open", rc, &e);
    }
    sg_updates us = {0};
    sg_updates uo = {0};
    loom_doc *shared = sg_doc_new(10 + (uint64_t)who, &us);
    loom_doc *own = sg_doc_new(20 + (uint64_t)who, &uo);
    const char *own_name = who == 0 ? "a" : "b";
    for (long i = 0; i < n && !rc; i++) {
        char key[32];
        (void)snprintf(key, sizeof(key), "p%d-%ld", who, i);
        if (sg_set(shared, key, (double)i) || sg_set(own, key, (double)i)) {
            return 2;
        }
        rc = loom_store_append(s, "shared", us.data[us.n - 1],
                               us.lens[us.n - 1], &e);
        if (!rc) {
            rc = loom_store_append(s, own_name, uo.data[uo.n - 1],
                                   uo.lens[uo.n - 1], &e);
        }
        if (!rc && who == 1 && i % 10 == 9) {
            rc = loom_store_compact(s, "shared", &e);
        }
        if (!rc && i % 25 == 0) {
            /* A reader's view in the middle of it all. */
            loom_doc *d = sg_doc_new(99, NULL);
            rc = loom_store_load(s, "shared", d, &e);
            loom_doc_free(d);
        }
    }
    if (rc) {
        die("child", rc, &e);
    }
    loom_doc_free(shared);
    loom_doc_free(own);
    sg_updates_free(&us);
    sg_updates_free(&uo);
    loom_store_close(s);
    return rc ? 1 : 0;
}

static char *scratch; /* the scratch directory (main) */

static int concurrent(const char *dir, long n)
{
    char *db = sg_path(dir, "loom.db");
    pid_t pids[2];
    for (int who = 0; who < 2; who++) {
        pids[who] = fork();
        if (pids[who] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[who] == 0) {
            int crc = concurrent_child(db, who, n);
            free(db); /* the child's copies */
            free(scratch);
            _exit(crc);
        }
    }
    int bad = 0;
    for (int who = 0; who < 2; who++) {
        int status = 0;
        waitpid(pids[who], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            (void)fprintf(stderr, "store_procs: child %d failed\n", who);
            bad = 1;
        }
    }
    const char *names[] = {"shared", "a", "b"};
    for (int k = 0; k < 3 && !bad; k++) {
        loom_doc *d = NULL;
        if (check_store(db, NULL, names[k], &d)) {
            bad = 1;
            break;
        }
        for (int who = 0; who < 2; who++) {
            if ((k == 1 && who == 1) || (k == 2 && who == 0)) {
                continue;
            }
            for (long i = 0; i < n; i++) {
                char key[32];
                (void)snprintf(key, sizeof(key), "p%d-%ld", who, i);
                if (!sg_has(d, key)) {
                    (void)fprintf(stderr, "store_procs: %s lacks %s\n",
                                  names[k], key);
                    bad = 1;
                    break;
                }
            }
        }
        loom_doc_free(d);
    }
    printf("concurrent: 2 processes x %ld updates x 2 documents%s\n", n,
           bad ? ": FAILED" : "");
    free(db);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 2 ||
        (strcmp(argv[1], "crash") != 0 && strcmp(argv[1], "concurrent") != 0)) {
        (void)fprintf(stderr, "usage: store_procs crash|concurrent [N]\n");
        return 2;
    }
    int is_crash = strcmp(argv[1], "crash") == 0;
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : (is_crash ? 30 : 300);
    n = sg_env_long("LOOM_STORE_ROUNDS", n > 0 ? n : 1);
    uint64_t seed = sg_seed();
    printf("store_procs %s: seed %llu (LOOM_SEED replays it)\n", argv[1],
           (unsigned long long)seed);
    (void)fflush(stdout);
    /* In a file-scope variable: forked children free their copy. */
    scratch = sg_tmpdir(NULL);
    char *dir = scratch;
    if (dir == NULL) {
        perror("mkdtemp");
        return 1;
    }
    int rc = is_crash ? crash(dir, n, seed) : concurrent(dir, n);
    if (rc == 0) {
        sg_rmdir(dir);
    } else {
        (void)fprintf(stderr, "store_procs: store kept in %s\n", dir);
    }
    free(dir);
    return rc;
}
