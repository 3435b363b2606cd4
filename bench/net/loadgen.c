/* SPDX-License-Identifier: MIT */
/*
 * bench/net/loadgen.c: the edit load of bench/net/load.mjs (phase 2 and
 * 3), in C, for servers fast enough that the Node clients would be the
 * bottleneck: on this 2-core machine the generator and the server share
 * the cores, and a Node client spends several microseconds per message.
 * load.mjs starts this program with --gen PATH, measures the server around
 * it, and prints the same figures either way.
 *
 *   loom_loadgen --port N [--host 127.0.0.1] [--rooms R] [--clients K]
 *                [--window W] [--id-base B]
 *
 * It opens R x K WebSocket connections to rooms load-0 .. load-(R-1), does
 * the y-websocket handshake (sync step 1 with an empty state vector, step 2
 * with an empty update) and prints {"ready":...} on stdout. Then it reads
 * commands on stdin, one per line:
 *
 *   run SEND_MS WARMUP_MS RATE   send for SEND_MS (RATE edits/s per client,
 *                                or 0: as fast as delivered, at most W not
 *                                yet seen by the next client of the room),
 *                                count what was sent after WARMUP_MS, wait
 *                                up to 10 s for its deliveries, print one
 *                                JSON line of figures;
 *   quit (or end of input)       close everything, exit 0.
 *
 * An edit is a v1 update, written here byte by byte, pushing one string to
 * the client's own root array c<id> (an Item with ContentAny: one clock per
 * edit, origin = the client's previous edit). The string is
 * LOOMTS:<sender>:<seq>:<ms>; with the send time (CLOCK_MONOTONIC); a
 * receiver finds it verbatim in the update it gets, whatever the server
 * batches, exactly as load.mjs's Node clients do. The WebSocket side is the
 * least RFC 6455 needs: the upgrade (status 101 checked), unmasked server
 * frames, pings answered, client frames masked with a zero key (servers
 * unmask whatever the key; an unpredictable key protects proxies, and there
 * is none here). Exit status 1 on any protocol or socket error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_HANDSHAKE, ST_OPEN, ST_SYNCED, ST_CLOSED };

typedef struct client {
    int fd;
    int id; /* global index: room * clients + k */
    int room;
    int k; /* index in the room */
    int state;
    uint32_t ydoc;  /* the Yjs client id of this client's edits */
    uint64_t seq;   /* edits sent */
    uint64_t acked; /* highest seq of ours the next client has seen */
    double next_at; /* rate mode: when the next edit is due (ms) */
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_cap;
    uint64_t *seen; /* per sender of the room: highest seq received */
} client;

static const char *host = "127.0.0.1";
static int port;
static int nrooms = 10, nclients = 10, window_size = 4;
static uint32_t id_base = 0x40000000u;
static client *cl;
static int ncl;
static int ep;

/* The phase being run. */
static int sending;
static double t_start, t_end; /* counted window [t_start, t_end) */
/* The same window in thousandths of a millisecond (the precision of the
 * timestamp an edit carries): sender and receiver decide on the same
 * integer, so an edit sent at the edge cannot count as sent but not as
 * delivered (its printed time rounded past t_end: 9 lost deliveries). */
static long long k_start, k_end;
static double rate;
static uint64_t sent, delivered;
static double *lat;
static size_t nlat, caplat;
static int stdin_ready; /* a command is waiting (seen by poll_once) */

static void die(const char *what)
{
    fprintf(stderr, "loadgen: %s%s%s\n", what, errno ? ": " : "",
            errno ? strerror(errno) : "");
    exit(1);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (q == NULL) {
        die("out of memory");
    }
    return q;
}

static void reserve(uint8_t **buf, size_t *cap, size_t need)
{
    if (need > *cap) {
        size_t n = *cap ? *cap : 4096;
        while (n < need) {
            n *= 2;
        }
        *buf = xrealloc(*buf, n);
        *cap = n;
    }
}

/* ---- writing ----------------------------------------------------------- */

static void want_out(client *c, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.u32 = (uint32_t)c->id};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        die("epoll_ctl");
    }
}

static void flush_out(client *c)
{
    while (c->out_len > 0) {
        ssize_t n = write(c->fd, c->out, c->out_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            die("write");
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    want_out(c, 0);
}

/* Queues bytes after what is still unsent, and writes what it can now. */
static void send_raw(client *c, const uint8_t *p, size_t n)
{
    if (c->state == ST_CLOSED) {
        return;
    }
    if (c->out_len == 0) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                die("write");
            }
            w = 0;
        }
        if ((size_t)w == n) {
            return;
        }
        p += w;
        n -= (size_t)w;
        want_out(c, 1);
    }
    reserve(&c->out, &c->out_cap, c->out_len + n);
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* One final client frame with a zero mask key (the payload as it is). */
static void send_frame(client *c, int opcode, const uint8_t *p, size_t n)
{
    uint8_t buf[16 + 256];
    size_t h = 0;
    if (n > 256) {
        errno = 0;
        die("frame too large for this generator");
    }
    buf[h++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        buf[h++] = (uint8_t)(0x80 | n);
    } else {
        buf[h++] = 0x80 | 126;
        buf[h++] = (uint8_t)(n >> 8);
        buf[h++] = (uint8_t)n;
    }
    memset(buf + h, 0, 4);
    h += 4;
    memcpy(buf + h, p, n);
    send_raw(c, buf, h + n);
}

static size_t put_uint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(0x80 | (v & 0x7f));
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t put_str(uint8_t *p, const char *s, size_t len)
{
    size_t n = put_uint(p, len);
    memcpy(p + n, s, len);
    return n + len;
}

/* One edit: [messageSync, update, varUint8Array(v1 update)]. */
static void send_edit(client *c, double at)
{
    uint8_t upd[160], msg[200];
    char mark[96];
    uint64_t clock = c->seq++;
    long long k = (long long)(at * 1000.0 + 0.5);
    int ml = snprintf(mark, sizeof mark, "LOOMTS:%d:%llu:%lld.%03lld;", c->id,
                      (unsigned long long)c->seq, k / 1000, k % 1000);
    size_t u = 0, m = 0;
    u += put_uint(upd + u, 1); /* clients */
    u += put_uint(upd + u, 1); /* structs of this client */
    u += put_uint(upd + u, c->ydoc);
    u += put_uint(upd + u, clock);
    if (clock == 0) {
        /* No origin: the parent is the root type named by its key. */
        char key[16];
        int kl = snprintf(key, sizeof key, "c%d", c->id);
        upd[u++] = 8; /* ContentAny */
        u += put_uint(upd + u, 1);
        u += put_str(upd + u, key, (size_t)kl);
    } else {
        upd[u++] = 0x80 | 8; /* origin: our previous edit */
        u += put_uint(upd + u, c->ydoc);
        u += put_uint(upd + u, clock - 1);
    }
    u += put_uint(upd + u, 1); /* one Any value */
    upd[u++] = 119;            /* Any string */
    u += put_str(upd + u, mark, (size_t)ml);
    u += put_uint(upd + u, 0); /* empty delete set */
    msg[m++] = 0;              /* messageSync */
    msg[m++] = 2;              /* update */
    m += put_uint(msg + m, u);
    memcpy(msg + m, upd, u);
    send_frame(c, 2, msg, m + u);
    if (k >= k_start && k < k_end) {
        sent++;
    }
}

/* Closed loop: send while fewer than the window are unseen. */
static void pump(client *c)
{
    if (!sending || rate > 0 || c->state != ST_SYNCED) {
        return;
    }
    while (c->seq - c->acked < (uint64_t)window_size) {
        double t = now_ms();
        if (t >= t_end) {
            return;
        }
        send_edit(c, t);
    }
}

/* ---- reading ----------------------------------------------------------- */

static uint64_t parse_num(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        v = v * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    return v;
}

/* Every LOOMTS marker of an update received by c. */
static void scan(client *c, const uint8_t *p, const uint8_t *end)
{
    static const char mark[] = "LOOMTS:";
    const size_t ml = sizeof mark - 1;
    double t = now_ms();
    while ((size_t)(end - p) > ml) {
        const uint8_t *hit = memmem(p, (size_t)(end - p), mark, ml);
        if (hit == NULL) {
            return;
        }
        const uint8_t *q = hit + ml;
        uint64_t sender = parse_num(&q, end);
        if (q >= end || *q != ':') {
            return;
        }
        q++;
        uint64_t seq = parse_num(&q, end);
        if (q >= end || *q != ':') {
            return;
        }
        q++;
        long long k = (long long)parse_num(&q, end) * 1000;
        if (q < end && *q == '.') {
            long long scale = 100;
            for (q++; q < end && *q >= '0' && *q <= '9'; q++) {
                k += (*q - '0') * scale;
                scale /= 10;
            }
        }
        double ms = (double)k / 1000.0;
        if (q >= end || *q != ';') {
            return;
        }
        p = q + 1;
        if (sender >= (uint64_t)ncl || (int)sender == c->id) {
            continue; /* the reference echoes to the sender */
        }
        client *s = &cl[sender];
        if (s->room != c->room || seq <= c->seen[s->k]) {
            continue; /* not a new edit of this room */
        }
        c->seen[s->k] = seq;
        if ((s->k + 1) % nclients == c->k && seq > s->acked) {
            s->acked = seq;
            pump(s);
        }
        if (k >= k_start && k < k_end) {
            delivered++;
            if (nlat == caplat) {
                caplat = caplat ? caplat * 2 : 65536;
                lat = xrealloc(lat, caplat * sizeof *lat);
            }
            lat[nlat++] = t - ms;
        }
    }
}

static void on_message(client *c, int opcode, const uint8_t *p, size_t n)
{
    static const uint8_t step2[] = {0, 1, 2, 0, 0}; /* empty update */
    if (opcode == 9) {
        send_frame(c, 10, p, n);
        return;
    }
    if (opcode == 8) {
        errno = 0;
        die("the server closed a connection");
    }
    if (opcode != 2 || n < 2 || p[0] != 0) {
        return; /* awareness, auth, text frames */
    }
    if (p[1] == 2) {
        if (c->state == ST_SYNCED) {
            scan(c, p + 2, p + n);
        }
    } else if (p[1] == 0) {
        send_frame(c, 2, step2, sizeof step2);
    } else if (p[1] == 1 && c->state == ST_OPEN) {
        c->state = ST_SYNCED;
    }
}

static void on_readable(client *c)
{
    for (;;) {
        reserve(&c->in, &c->in_cap, c->in_len + 65536);
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                break;
            }
            die("read");
        }
        if (n == 0) {
            errno = 0;
            die("a connection closed");
        }
        c->in_len += (size_t)n;
    }
    size_t at = 0;
    if (c->state == ST_HANDSHAKE) {
        uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (end == NULL) {
            return;
        }
        if (c->in_len < 13 || memcmp(c->in, "HTTP/1.1 101 ", 13) != 0) {
            errno = 0;
            die("the upgrade was refused");
        }
        /* Sync step 1 with an empty state vector. */
        static const uint8_t step1[] = {0, 0, 1, 0};
        at = (size_t)(end - c->in) + 4;
        c->state = ST_OPEN;
        send_frame(c, 2, step1, sizeof step1);
    }
    while (c->in_len - at >= 2) {
        const uint8_t *f = c->in + at;
        size_t len = f[1] & 0x7f, h = 2;
        if ((f[1] & 0x80) || !(f[0] & 0x80) || (f[0] & 0x0f) == 0) {
            errno = 0;
            die("a masked or fragmented server frame (not handled here)");
        }
        if (len == 126) {
            if (c->in_len - at < 4) {
                break;
            }
            len = ((size_t)f[2] << 8) | f[3];
            h = 4;
        } else if (len == 127) {
            if (c->in_len - at < 10) {
                break;
            }
            len = 0;
            for (int i = 2; i < 10; i++) {
                len = (len << 8) | f[i];
            }
            h = 10;
        }
        if (c->in_len - at < h + len) {
            break;
        }
        on_message(c, f[0] & 0x0f, f + h, len);
        at += h + len;
    }
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
}

/* ---- the program ------------------------------------------------------- */

static void open_all(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        errno = 0;
        die("--host must be an IPv4 address");
    }
    ncl = nrooms * nclients;
    cl = calloc((size_t)ncl, sizeof *cl);
    if (cl == NULL) {
        die("out of memory");
    }
    for (int i = 0; i < ncl; i++) {
        client *c = &cl[i];
        c->id = i;
        c->room = i / nclients;
        c->k = i % nclients;
        c->ydoc = id_base + (uint32_t)i;
        c->seen = calloc((size_t)nclients, sizeof *c->seen);
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->seen == NULL || c->fd < 0) {
            die("socket");
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            die("connect");
        }
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
            die("epoll_ctl");
        }
        char req[512];
        int n = snprintf(req, sizeof req,
                         "GET /load-%d HTTP/1.1\r\nHost: %s:%d\r\n"
                         "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: bG9vbS1sb2FkZ2VuLWtleQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n",
                         c->room, host, port);
        send_raw(c, (const uint8_t *)req, (size_t)n);
    }
}

static void poll_once(int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    if (n < 0 && errno != EINTR) {
        die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u32 == UINT32_MAX) {
            stdin_ready = 1; /* read between phases, by main */
            continue;
        }
        client *c = &cl[evs[i].data.u32];
        if (evs[i].events & EPOLLOUT) {
            flush_out(c);
        }
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            on_readable(c);
        }
    }
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void run_phase(double send_ms, double warmup_ms, double r)
{
    double t0 = now_ms(), cpu0 = cpu_s();
    t_start = t0 + warmup_ms;
    t_end = t0 + send_ms;
    k_start = (long long)(t_start * 1000.0 + 0.5);
    k_end = (long long)(t_end * 1000.0 + 0.5);
    rate = r;
    sent = delivered = 0;
    nlat = 0;
    sending = 1;
    for (int i = 0; i < ncl; i++) {
        /* Rate mode: first edits spread over one period. */
        cl[i].next_at = t0 + (r > 0 ? (1000.0 / r) * i / ncl : 0);
        pump(&cl[i]);
    }
    while (now_ms() < t_end) {
        poll_once(1);
        if (r > 0) {
            double t = now_ms();
            for (int i = 0; i < ncl && t < t_end; i++) {
                client *c = &cl[i];
                if (t >= c->next_at &&
                    c->seq - c->acked < (uint64_t)window_size) {
                    send_edit(c, t);
                    c->next_at += 1000.0 / r;
                }
            }
        }
    }
    sending = 0;
    double cpu = cpu_s() - cpu0;
    uint64_t expected = sent * (uint64_t)(nclients - 1);
    double drain_end = now_ms() + 10000;
    while (delivered < expected && now_ms() < drain_end) {
        poll_once(10);
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    double p50 = nlat ? lat[(size_t)(0.50 * (double)nlat)] : -1;
    double p99 = nlat ? lat[(size_t)(0.99 * (double)nlat)] : -1;
    double mx = nlat ? lat[nlat - 1] : -1;
    printf("{\"sent\":%llu,\"delivered\":%llu,\"expected\":%llu,"
           "\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f,\"cpu_s\":%.4f}\n",
           (unsigned long long)sent, (unsigned long long)delivered,
           (unsigned long long)expected, p50, p99, mx, cpu);
    fflush(stdout);
}

static int arg_int(const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 0 || n > 1000000) {
        errno = 0;
        die("bad number in the arguments");
    }
    return (int)n;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0) {
            host = argv[i + 1];
        } else if (strcmp(argv[i], "--port") == 0) {
            port = arg_int(argv[i + 1]);
        } else if (strcmp(argv[i], "--rooms") == 0) {
            nrooms = arg_int(argv[i + 1]);
        } else if (strcmp(argv[i], "--clients") == 0) {
            nclients = arg_int(argv[i + 1]);
        } else if (strcmp(argv[i], "--window") == 0) {
            window_size = arg_int(argv[i + 1]);
        } else if (strcmp(argv[i], "--id-base") == 0) {
            id_base = (uint32_t)arg_int(argv[i + 1]);
        } else {
            errno = 0;
            die("usage: loom_loadgen --port N [--host H] [--rooms R] "
                "[--clients K] [--window W] [--id-base B]");
        }
    }
    if (port <= 0 || nrooms < 1 || nclients < 2 || window_size < 1) {
        errno = 0;
        die("need --port, --rooms >= 1, --clients >= 2, --window >= 1");
    }
    ep = epoll_create1(0);
    if (ep < 0) {
        die("epoll_create1");
    }
    open_all();
    double deadline = now_ms() + 30000;
    for (;;) {
        int ready = 0;
        for (int i = 0; i < ncl; i++) {
            ready += cl[i].state == ST_SYNCED;
        }
        if (ready == ncl) {
            break;
        }
        if (now_ms() > deadline) {
            errno = 0;
            die("not every connection synced within 30 s");
        }
        poll_once(10);
    }
    printf("{\"ready\":true,\"clients\":%d}\n", ncl);
    fflush(stdout);

    /* Commands arrive between phases; the sockets are served meanwhile
     * (pings) by polling stdin with them. */
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0) {
        die("epoll_ctl stdin");
    }
    char line[256];
    size_t ll = 0;
    for (;;) {
        stdin_ready = 0;
        poll_once(100);
        if (!stdin_ready) {
            continue;
        }
        ssize_t r = read(0, line + ll, sizeof line - 1 - ll);
        if (r <= 0) {
            return 0;
        }
        ll += (size_t)r;
        line[ll] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            double s, w, rt;
            if (sscanf(line, "run %lf %lf %lf", &s, &w, &rt) == 3) {
                run_phase(s, w, rt);
            } else if (strcmp(line, "quit") == 0) {
                return 0;
            }
            ll -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, ll + 1);
        }
        if (ll == sizeof line - 1) {
            errno = 0;
            die("a command line too long");
        }
    }
}
