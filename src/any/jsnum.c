/*
 * jsnum.c: JavaScript's Number.prototype.toString() (ECMAScript
 * Number::toString with radix 10), which JSON.stringify uses for numbers.
 * JSON text stored in updates (embeds, formats, ContentJSON) must match JS
 * byte for byte, so the digit choice and the layout follow the spec exactly:
 * the shortest digit string that reads back as the same double (closest to
 * the value among those of that length), then plain or exponent notation
 * depending on the decimal exponent.
 *
 * Digits come from the C library's correctly rounded "%.*e" at increasing
 * precision. At a power of two the rounding interval is lopsided, so the
 * nearest p-digit string can fail to read back while its neighbour on the
 * wide side succeeds; both neighbours are tried. Candidates are re-read as
 * integer mantissa + exponent, which keeps the locale's decimal point out of
 * the round trip.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "any/any_internal.h"

/* Does digits[0..k) x 10^(exp10 - k + 1) read back as x? */
static bool reads_back(const char *digits, int k, int exp10, double x)
{
    char tmp[48];
    int n = snprintf(tmp, sizeof(tmp), "%.*se%d", k, digits, exp10 - k + 1);
    if (n <= 0 || (size_t)n >= sizeof(tmp)) {
        return false;
    }
    return strtod(tmp, NULL) == x;
}

/* Adds delta (+1 or -1) to the last of k digits. Returns false when the
 * result would change the digit count (those cases are covered by other
 * precisions). */
static bool bump(char *digits, int k, int delta)
{
    int i = k - 1;
    if (delta > 0) {
        while (i >= 0 && digits[i] == '9') {
            digits[i--] = '0';
        }
        if (i < 0) {
            return false;
        }
        digits[i]++;
    } else {
        while (i >= 0 && digits[i] == '0') {
            digits[i--] = '9';
        }
        if (i < 0 || (i == 0 && digits[0] == '1' && k > 1)) {
            return false;
        }
        digits[i]--;
    }
    return true;
}

/* Shortest round-trip digits of finite x > 0: digits (no trailing zeros),
 * count, and the decimal exponent of the first digit. */
static int shortest(double x, char *digits, int *exp10)
{
    char tmp[48];
    for (int p = 1; p <= 17; p++) {
        (void)snprintf(tmp, sizeof(tmp), "%.*e", p - 1, x);
        int k = 0;
        const char *s = tmp;
        for (; *s && *s != 'e'; s++) {
            if (*s >= '0' && *s <= '9') {
                digits[k++] = *s;
            }
        }
        int e = 0;
        if (*s == 'e') {
            bool neg = s[1] == '-';
            for (s += 2; *s >= '0' && *s <= '9'; s++) {
                e = e * 10 + (*s - '0');
            }
            e = neg ? -e : e;
        }
        digits[k] = '\0';
        bool ok = reads_back(digits, k, e, x);
        if (!ok && p < 17) {
            char alt[24];
            for (int delta = -1; delta <= 1 && !ok; delta += 2) {
                memcpy(alt, digits, (size_t)k + 1);
                if (bump(alt, k, delta) && reads_back(alt, k, e, x)) {
                    memcpy(digits, alt, (size_t)k + 1);
                    ok = true;
                }
            }
        }
        if (ok || p == 17) {
            while (k > 1 && digits[k - 1] == '0') {
                k--;
            }
            digits[k] = '\0';
            *exp10 = e;
            return k;
        }
    }
    return 0; /* unreachable: 17 digits always round-trip */
}

static size_t put_int(char *buf, int v)
{
    char tmp[12];
    size_t n = 0;
    unsigned u = (unsigned)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    for (size_t i = 0; i < n; i++) {
        buf[i] = tmp[n - 1 - i];
    }
    return n;
}

size_t loom__js_number_str(double v, char *buf)
{
    size_t o = 0;
    if (isnan(v)) {
        memcpy(buf, "NaN", 4);
        return 3;
    }
    if (v == 0) {
        memcpy(buf, "0", 2); /* -0 too */
        return 1;
    }
    if (v < 0) {
        buf[o++] = '-';
        v = -v;
    }
    if (isinf(v)) {
        memcpy(buf + o, "Infinity", 9);
        return o + 8;
    }
    char d[24];
    int e = 0;
    int k = shortest(v, d, &e);
    int n = e + 1; /* ECMAScript's n: the value is 0.d1..dk x 10^n */
    if (k <= n && n <= 21) {
        memcpy(buf + o, d, (size_t)k);
        o += (size_t)k;
        for (int i = k; i < n; i++) {
            buf[o++] = '0';
        }
    } else if (0 < n && n <= 21) {
        memcpy(buf + o, d, (size_t)n);
        o += (size_t)n;
        buf[o++] = '.';
        memcpy(buf + o, d + n, (size_t)(k - n));
        o += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -n; i++) {
            buf[o++] = '0';
        }
        memcpy(buf + o, d, (size_t)k);
        o += (size_t)k;
    } else {
        buf[o++] = d[0];
        if (k > 1) {
            buf[o++] = '.';
            memcpy(buf + o, d + 1, (size_t)(k - 1));
            o += (size_t)(k - 1);
        }
        buf[o++] = 'e';
        buf[o++] = n - 1 < 0 ? '-' : '+';
        o += put_int(buf + o, abs(n - 1));
    }
    buf[o] = '\0';
    return o;
}
