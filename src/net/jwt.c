/*
 * jwt.c: the server's access tokens (loom/server.h): compact HS256 JSON Web
 * Tokens whose claims name a room glob, a mode and an expiry. Only what the
 * server needs: one algorithm, chosen by us and not by the token (a token
 * saying "none" or "RS256" is refused), base64url without padding, and a
 * signature compared in constant time. HMAC and base64 come from libsodium.
 */
#include <fnmatch.h>
#include <string.h>

#include <sodium.h>

#include "base/base.h"
#include "loom/any.h"
#include "loom/server.h"

static int fail(loom_error *err, int code, const char *msg)
{
    loom__error_set(err, code, 0, 0, msg);
    return code;
}

static int hmac(const uint8_t *key,
                size_t key_len,
                const char *msg,
                size_t len,
                uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
    crypto_auth_hmacsha256_state st;
    if (crypto_auth_hmacsha256_init(&st, key, key_len) ||
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len) ||
        crypto_auth_hmacsha256_final(&st, mac)) {
        sodium_memzero(&st, sizeof(st));
        return LOOM_EINVAL;
    }
    sodium_memzero(&st, sizeof(st));
    return LOOM_OK;
}

static int append_b64(loom_buf *out, const uint8_t *p, size_t n)
{
    const int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    size_t need = sodium_base64_ENCODED_LEN(n, v);
    int rc = loom__buf_reserve(out, need);
    if (rc) {
        return rc;
    }
    sodium_bin2base64((char *)out->data + out->len, need, p, n, v);
    out->len += need - 1; /* without the NUL */
    return LOOM_OK;
}

int loom_token_issue(const uint8_t *key,
                     size_t key_len,
                     const char *room_glob,
                     loom_token_mode mode,
                     int64_t exp,
                     loom_buf *out)
{
    if (!key || !room_glob || !out ||
        (mode != LOOM_TOKEN_READ && mode != LOOM_TOKEN_READ_WRITE) || exp < 0 ||
        (uint64_t)exp > LOOM__MAX_SAFE_INT) {
        return LOOM_EINVAL;
    }
    if (sodium_init() < 0) {
        return LOOM_EUNSUPPORTED;
    }
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    loom_any *claims = NULL, *v = NULL;
    loom_buf json = {0};
    loom_buf tok = {0};
    loom__buf_init(&tok, out->alloc);
    int rc = loom_any_new_object(NULL, &claims);
    if (!rc) {
        rc = loom_any_new_string(NULL, room_glob, strlen(room_glob), &v);
    }
    if (!rc) {
        rc = loom_any_object_set(claims, "room", 4, v);
        if (!rc) {
            v = NULL;
        }
    }
    if (!rc) {
        rc = loom_any_new_string(NULL, mode == LOOM_TOKEN_READ ? "r" : "rw",
                                 mode == LOOM_TOKEN_READ ? 1 : 2, &v);
    }
    if (!rc) {
        rc = loom_any_object_set(claims, "mode", 4, v);
        if (!rc) {
            v = NULL;
        }
    }
    if (!rc) {
        rc = loom_any_new_number(NULL, (double)exp, &v);
    }
    if (!rc) {
        rc = loom_any_object_set(claims, "exp", 3, v);
        if (!rc) {
            v = NULL;
        }
    }
    if (!rc) {
        rc = loom_any_to_json(claims, &json);
    }
    if (!rc) {
        rc = append_b64(&tok, (const uint8_t *)header, sizeof(header) - 1);
    }
    if (!rc) {
        rc = loom__buf_push(&tok, '.');
    }
    if (!rc) {
        rc = append_b64(&tok, json.data, json.len);
    }
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    if (!rc) {
        rc = hmac(key, key_len, (const char *)tok.data, tok.len, mac);
    }
    if (!rc) {
        rc = loom__buf_push(&tok, '.');
    }
    if (!rc) {
        rc = append_b64(&tok, mac, sizeof(mac));
    }
    if (!rc) {
        rc = loom__buf_push(&tok, '\0');
    }
    loom_any_free(v);
    loom_any_free(claims);
    loom_buf_free(&json);
    if (rc) {
        loom_buf_free(&tok);
        return rc;
    }
    tok.len--;
    loom_buf_free(out);
    *out = tok;
    return LOOM_OK;
}

/* Decodes one base64url part into `dst` (capacity cap). */
static int unb64(const char *s, size_t n, uint8_t *dst, size_t cap, size_t *len)
{
    const char *end = NULL;
    if (sodium_base642bin(dst, cap, s, n, NULL, len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != s + n) {
        return LOOM_EMALFORMED;
    }
    return LOOM_OK;
}

static int parse_json(const uint8_t *p, size_t n, loom_any **out)
{
    loom_any *v = NULL;
    if (loom_any_from_json(NULL, (const char *)p, n, &v, NULL)) {
        return LOOM_EMALFORMED;
    }
    if (loom_any_kind_of(v) != LOOM_ANY_OBJECT) {
        loom_any_free(v);
        return LOOM_EMALFORMED;
    }
    *out = v;
    return LOOM_OK;
}

static int str_is(const loom_any *v, const char *s)
{
    size_t n;
    const char *t = v && loom_any_kind_of(v) == LOOM_ANY_STRING
                        ? loom_any_string(v, &n)
                        : NULL;
    return t && n == strlen(s) && memcmp(t, s, n) == 0;
}

/* Checks the claims; the signature was already verified. */
static int check_claims(const loom_any *claims,
                        const char *room,
                        int64_t now,
                        loom_token_mode *mode,
                        loom_error *err)
{
    const loom_any *r = loom_any_object_get(claims, "room", 4);
    const loom_any *m = loom_any_object_get(claims, "mode", 4);
    const loom_any *e = loom_any_object_get(claims, "exp", 3);
    if (!r || loom_any_kind_of(r) != LOOM_ANY_STRING || !m || !e ||
        loom_any_kind_of(e) != LOOM_ANY_NUMBER) {
        return fail(err, LOOM_EMALFORMED, "token claims lack room/mode/exp");
    }
    loom_token_mode md;
    if (str_is(m, "rw")) {
        md = LOOM_TOKEN_READ_WRITE;
    } else if (str_is(m, "r")) {
        md = LOOM_TOKEN_READ;
    } else {
        return fail(err, LOOM_EMALFORMED, "token mode is not \"r\" or \"rw\"");
    }
    double exp = loom_any_number(e);
    if (!(exp > (double)now)) { /* also refuses NaN */
        return fail(err, LOOM_EAUTH, "token expired");
    }
    size_t glen;
    const char *glob = loom_any_string(r, &glen);
    /* the glob is a JSON string: it may hold a NUL, which fnmatch would
     * read as the end; refuse such a pattern */
    if (memchr(glob, '\0', glen) || fnmatch(glob, room, 0) != 0) {
        return fail(err, LOOM_EAUTH, "token is not valid for this room");
    }
    *mode = md;
    return LOOM_OK;
}

int loom_token_verify(const uint8_t *key,
                      size_t key_len,
                      const char *token,
                      size_t token_len,
                      const char *room,
                      int64_t now,
                      loom_token_mode *mode,
                      loom_error *err)
{
    if (!key || !room || !mode || (!token && token_len)) {
        return fail(err, LOOM_EINVAL, "bad arguments");
    }
    if (token_len == 0) {
        return fail(err, LOOM_EAUTH, "no token");
    }
    if (token_len > LOOM_TOKEN_MAX) {
        return fail(err, LOOM_EMALFORMED, "token too long");
    }
    if (sodium_init() < 0) {
        return fail(err, LOOM_EUNSUPPORTED, "libsodium failed to start");
    }
    const char *dot1 = memchr(token, '.', token_len);
    const char *dot2 =
        dot1 ? memchr(dot1 + 1, '.', token_len - (size_t)(dot1 + 1 - token))
             : NULL;
    if (!dot2 ||
        memchr(dot2 + 1, '.', token_len - (size_t)(dot2 + 1 - token))) {
        return fail(err, LOOM_EMALFORMED,
                    "token is not three dot-separated "
                    "parts");
    }
    uint8_t hdr[LOOM_TOKEN_MAX], body[LOOM_TOKEN_MAX], sig[64];
    size_t hlen, blen, slen;
    const char *sig_txt = dot2 + 1;
    size_t sig_txt_len = token_len - (size_t)(sig_txt - token);
    if (unb64(token, (size_t)(dot1 - token), hdr, sizeof(hdr), &hlen) ||
        unb64(dot1 + 1, (size_t)(dot2 - dot1 - 1), body, sizeof(body), &blen) ||
        unb64(sig_txt, sig_txt_len, sig, sizeof(sig), &slen)) {
        return fail(err, LOOM_EMALFORMED, "token part is not base64url");
    }
    loom_any *h = NULL;
    if (parse_json(hdr, hlen, &h)) {
        return fail(err, LOOM_EMALFORMED, "token header is not a JSON object");
    }
    int hs256 = str_is(loom_any_object_get(h, "alg", 3), "HS256");
    loom_any_free(h);
    if (!hs256) {
        return fail(err, LOOM_EAUTH, "token algorithm is not HS256");
    }
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    if (hmac(key, key_len, token, (size_t)(dot2 - token), mac)) {
        return fail(err, LOOM_EINVAL, "bad key");
    }
    /* constant time: the comparison does not stop at the first difference */
    if (slen != sizeof(mac) || sodium_memcmp(mac, sig, sizeof(mac)) != 0) {
        return fail(err, LOOM_EAUTH, "token signature does not match");
    }
    loom_any *claims = NULL;
    if (parse_json(body, blen, &claims)) {
        return fail(err, LOOM_EMALFORMED, "token claims are not a JSON object");
    }
    int rc = check_claims(claims, room, now, mode, err);
    loom_any_free(claims);
    return rc;
}
