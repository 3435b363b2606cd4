/*
 * test_server.c: the server library (loom/server.h) in-process: option
 * checks, a free port with --port 0, a busy port refused with LOOM_EIO,
 * the log callback, GET /healthz, /metrics and a 404 over a plain TCP
 * socket, an upgrade without a token refused with 401 when auth is on, and
 * loom_server_stop from another thread ending loom_server_run with 0.
 * (Real WebSocket clients are in tests/net.)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "loom/loom.h"

typedef struct logbuf {
    char text[8192];
    size_t len;
} logbuf;

static void on_log(void *ud, loom_log_level level, const char *line)
{
    logbuf *b = ud;
    (void)level;
    int n = snprintf(b->text + b->len, sizeof(b->text) - b->len, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof(b->text) - b->len) {
        b->len += (size_t)n;
    }
}

static void *run(void *s)
{
    static int rc;
    rc = loom_server_run(s);
    return &rc;
}

/* One HTTP request; returns the whole response (malloc'd). */
static char *http(int port, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    size_t cap = 65536, len = 0;
    char *out = calloc(1, cap);
    ssize_t n;
    while (len < cap - 1 && (n = read(fd, out + len, cap - 1 - len)) > 0) {
        len += (size_t)n;
    }
    close(fd);
    return out;
}

static void test_options(void **state)
{
    (void)state;
    loom_server_options o;
    loom_server_options_init(&o);
    assert_string_equal(o.host, "127.0.0.1");
    assert_int_equal(o.port, 1234);
    assert_int_equal(o.max_message, 16u << 20);
    loom_server *s = NULL;
    loom_error err;
    o.port = 70000;
    assert_int_equal(loom_server_new(&o, &s, &err), LOOM_EINVAL);
    o.port = 0;
    o.max_message = 0;
    assert_int_equal(loom_server_new(&o, &s, &err), LOOM_EINVAL);
    o.max_message = 1024;
    o.auth_secret = (const uint8_t *)"k";
    o.auth_secret_len = 0;
    assert_int_equal(loom_server_new(&o, &s, &err), LOOM_EINVAL);
    assert_null(s);
    loom_server_free(NULL);
}

static void test_serve_and_stop(void **state)
{
    (void)state;
    logbuf lb = {{0}, 0};
    loom_server_options o;
    loom_server_options_init(&o);
    o.port = 0;
    o.log = on_log;
    o.log_ud = &lb;
    o.log_level = LOOM_LOG_DEBUG;
    o.auth_secret = (const uint8_t *)"secret";
    o.auth_secret_len = 6;
    loom_server *s = NULL;
    loom_error err;
    assert_int_equal(loom_server_new(&o, &s, &err), 0);
    int port = loom_server_port(s);
    assert_true(port > 0 && port < 65536);

    /* the same port again: refused */
    loom_server_options o2 = o;
    o2.port = port;
    o2.log = NULL;
    loom_server *s2 = NULL;
    assert_int_equal(loom_server_new(&o2, &s2, &err), LOOM_EIO);
    assert_null(s2);

    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run, s), 0);
    char *r = http(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: "
                         "close\r\n\r\n");
    assert_non_null(strstr(r, "200 OK"));
    assert_non_null(strstr(r, "\r\n\r\nok\n"));
    free(r);
    r = http(port,
             "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(r, "\nloom_connections 0\n"));
    assert_non_null(strstr(r, "# TYPE loom_store_append_seconds histogram"));
    free(r);
    r = http(port,
             "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_non_null(strstr(r, "404"));
    free(r);
    r = http(port, "GET /room HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                   "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    assert_non_null(strstr(r, "401"));
    free(r);

    loom_server_stop(s);
    void *ret;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_int_equal(*(int *)ret, 0);
    loom_server_free(s);
    assert_non_null(strstr(lb.text, "listening on 127.0.0.1:"));
    assert_non_null(strstr(lb.text, "upgrade refused with 401: no token"));
    assert_non_null(strstr(lb.text, "stopped"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_serve_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
