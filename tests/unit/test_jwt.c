/*
 * test_jwt.c: the server's access tokens (src/net/jwt.c): issue and verify
 * round trips for both modes, globs, expiry; a token from RFC 7515 A.1
 * (another HS256 implementation) passes the signature check; a signature
 * changed in any one byte, a token signed with another key, claims edited
 * after signing, "alg": "none", every truncation, bad base64 and bad JSON
 * are refused with the right code and nothing written to the out-param.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loom/loom.h"

static const uint8_t key[] = "correct horse battery staple";
#define KEYLEN (sizeof(key) - 1)
#define NOW    1800000000LL

static char *issue(const char *room, loom_token_mode m, int64_t exp)
{
    loom_buf b = {0};
    assert_int_equal(loom_token_issue(key, KEYLEN, room, m, exp, &b), 0);
    assert_int_equal(strlen((const char *)b.data), b.len);
    char *s = strdup((const char *)b.data);
    loom_buf_free(&b);
    return s;
}

static int verify(const char *tok, const char *room, loom_token_mode *m)
{
    loom_error err;
    memset(&err, 0, sizeof(err));
    loom_token_mode before = *m;
    int rc =
        loom_token_verify(key, KEYLEN, tok, strlen(tok), room, NOW, m, &err);
    if (rc) {
        assert_int_equal(err.code, rc);
        assert_true(err.message[0] != '\0');
        assert_int_equal(*m, before);
    }
    return rc;
}

static void test_round_trip(void **state)
{
    (void)state;
    loom_token_mode m = 0;
    char *rw = issue("doc*", LOOM_TOKEN_READ_WRITE, NOW + 10);
    assert_int_equal(verify(rw, "doc1", &m), 0);
    assert_int_equal(m, LOOM_TOKEN_READ_WRITE);
    assert_int_equal(verify(rw, "doc/with/slash", &m), 0);
    assert_int_equal(verify(rw, "other", &m), LOOM_EAUTH);
    char *r = issue("team-[ab]/\"q\"", LOOM_TOKEN_READ, NOW + 1);
    m = 0;
    assert_int_equal(verify(r, "team-a/\"q\"", &m), 0);
    assert_int_equal(m, LOOM_TOKEN_READ);
    assert_int_equal(verify(r, "team-c/\"q\"", &m), LOOM_EAUTH);
    char *old = issue("*", LOOM_TOKEN_READ_WRITE, NOW);
    assert_int_equal(verify(old, "x", &m), LOOM_EAUTH); /* exp == now */
    /* another key */
    loom_error err;
    assert_int_equal(loom_token_verify((const uint8_t *)"k", 1, rw, strlen(rw),
                                       "doc1", NOW, &m, &err),
                     LOOM_EAUTH);
    assert_non_null(strstr(err.message, "signature"));
    assert_int_equal(loom_token_issue(key, KEYLEN, "x", 7, NOW, &(loom_buf){0}),
                     LOOM_EINVAL);
    free(rw);
    free(r);
    free(old);
}

/* RFC 7515 A.1: an HS256 JWS made by another implementation. Its claims
 * are not ours, so verification passes the signature and stops at the
 * claims; with one signature byte changed it stops at the signature. */
static void test_rfc7515(void **state)
{
    (void)state;
    static const char k64[] = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
                              "1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    static const char tok[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
        "LmNvbS9pc19yb290Ijp0cnVlfQ."
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    /* base64url-decode the key by hand (no padding) */
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t k[64];
    size_t kn = 0;
    unsigned acc = 0, bits = 0;
    for (const char *p = k64; *p; p++) {
        acc = (acc << 6) | (unsigned)(strchr(alpha, *p) - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            k[kn++] = (uint8_t)(acc >> bits);
        }
    }
    assert_int_equal(kn, 64);
    loom_error err;
    loom_token_mode m = 0;
    assert_int_equal(
        loom_token_verify(k, kn, tok, strlen(tok), "x", 0, &m, &err),
        LOOM_EMALFORMED);
    assert_non_null(strstr(err.message, "claims"));
    char *bad = strdup(tok);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'X' ? 'Y' : 'X';
    assert_int_equal(
        loom_token_verify(k, kn, bad, strlen(bad), "x", 0, &m, &err),
        LOOM_EAUTH);
    free(bad);
}

static void test_forged(void **state)
{
    (void)state;
    loom_token_mode m = 0;
    char *t = issue("doc", LOOM_TOKEN_READ, NOW + 100);
    size_t n = strlen(t);
    const char *sig = strrchr(t, '.') + 1;
    /* every signature character changed, one at a time: refused whether
     * the difference is early or late (the comparison is sodium_memcmp,
     * which does not stop at the first difference) */
    for (size_t i = (size_t)(sig - t); i < n; i++) {
        char c = t[i];
        t[i] = c == 'A' ? 'B' : 'A';
        int rc = verify(t, "doc", &m);
        assert_true(rc == LOOM_EAUTH || rc == LOOM_EMALFORMED);
        t[i] = c;
    }
    assert_int_equal(verify(t, "doc", &m), 0);
    /* every truncation */
    for (size_t k = 0; k < n; k++) {
        char *p = strndup(t, k);
        m = 0;
        int rc = verify(p, "doc", &m);
        assert_true(rc == LOOM_EAUTH || rc == LOOM_EMALFORMED);
        free(p);
    }
    /* claims swapped for another token's (signed for another room) */
    char *u = issue("*", LOOM_TOKEN_READ_WRITE, NOW + 100);
    char mixed[1024];
    const char *t1 = strchr(t, '.'), *u1 = strchr(u, '.');
    const char *u2 = strchr(u1 + 1, '.');
    snprintf(mixed, sizeof mixed, "%.*s%.*s%s", (int)(t1 - t), t,
             (int)(u2 - u1), u1, strrchr(t, '.'));
    assert_int_equal(verify(mixed, "doc", &m), LOOM_EAUTH);
    /* alg none, with an empty signature */
    assert_int_equal(
        verify("eyJhbGciOiJub25lIn0.eyJyb29tIjoiKiIsIm1vZGUiOiJydyIsImV4cCI6"
               "OTk5OTk5OTk5OTl9.",
               "doc", &m),
        LOOM_EAUTH);
    /* shapes that are not tokens */
    static const char *const junk[] = {
        "", "a", "a.b", "a.b.c.d", "...", "!!.??.##", "eyJ9.eyJ9.AAAA"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        m = 0;
        int rc = verify(junk[i], "doc", &m);
        assert_true(rc == LOOM_EAUTH || rc == LOOM_EMALFORMED);
    }
    char *huge = malloc(LOOM_TOKEN_MAX + 2);
    memset(huge, 'a', LOOM_TOKEN_MAX + 1);
    huge[LOOM_TOKEN_MAX + 1] = '\0';
    assert_int_equal(verify(huge, "doc", &m), LOOM_EMALFORMED);
    free(huge);
    free(t);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_rfc7515),
        cmocka_unit_test(test_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
