/*
 * utf.c: UTF-8 validation and UTF-8 <-> UTF-16 position arithmetic. Yjs
 * measures text in UTF-16 code units (JS string indices) while loom stores
 * UTF-8, so lengths, clocks and offsets are converted here.
 *
 * Validation is what a fatal TextDecoder accepts: no overlong forms, no
 * encoded surrogates, nothing above U+10FFFF, no truncated sequences. A BOM
 * is ordinary text.
 */
#include <string.h>

#include "base/base.h"

size_t loom__utf8_check16(const char *str, size_t len, size_t *units)
{
    const uint8_t *s = (const uint8_t *)str;
    if (len < 8) {
        /* short ASCII (keys, small values): one pass; longer strings take
         * the word loop below */
        uint8_t acc = 0;
        for (size_t k = 0; k < len; k++)
            acc |= s[k];
        if (acc < 0x80) {
            *units = len;
            return len;
        }
    }
    size_t i = 0;
    /* UTF-16 units: one per byte, less the bytes after the first of a
     * sequence, plus one for a 4-byte sequence (a surrogate pair) */
    size_t extra = 0;
    while (i < len) {
        /* ASCII eight bytes at a time */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (len - i < 8 && len >= 8) {
            /* the tail: the last eight bytes, overlapping what is done */
            uint64_t w;
            memcpy(&w, s + len - 8, 8);
            if (!(w & 0x8080808080808080ULL))
                break;
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0) {
                lo = 0xa0; /* overlong */
            } else if (c == 0xed) {
                hi = 0x9f; /* surrogates */
            }
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0) {
                lo = 0x90; /* overlong */
            } else if (c == 0xf4) {
                hi = 0x8f; /* above U+10FFFF */
            }
        } else {
            return i;
        }
        if (len - i < n) {
            return i;
        }
        if (s[i + 1] < lo || s[i + 1] > hi) {
            return i;
        }
        for (size_t k = 2; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return i;
            }
        }
        extra += n == 4 ? 2 : n - 1;
        i += n;
    }
    *units = len - extra;
    return len;
}

size_t loom__utf8_check(const char *s, size_t len)
{
    size_t units;
    return loom__utf8_check16(s, len, &units);
}

bool loom__utf8_valid(const char *s, size_t len)
{
    return loom__utf8_check(s, len) == len;
}

size_t loom__utf16_len(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t units = 0;
    size_t i = 0;
    /* ASCII eight bytes at a time */
    for (; len - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL)
            break;
        units += 8;
    }
    for (; i < len; i++) {
        uint8_t c = s[i];
        if ((c & 0xc0) != 0x80) {
            units += c >= 0xf0 ? 2 : 1;
        }
    }
    return units;
}

static size_t seq_len(uint8_t c)
{
    if (c < 0x80) {
        return 1;
    }
    if (c < 0xe0) {
        return 2;
    }
    if (c < 0xf0) {
        return 3;
    }
    return 4;
}

size_t
loom__utf8_offset16(const char *str, size_t len, size_t units, bool *mid_pair)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    if (mid_pair) {
        *mid_pair = false;
    }
    while (units > 0 && i < len) {
        size_t n = seq_len(s[i]);
        if (n == 4) {
            if (units == 1) {
                if (mid_pair) {
                    *mid_pair = true;
                }
                return i;
            }
            units -= 2;
        } else {
            units -= 1;
        }
        i += n;
    }
    return i < len ? i : len;
}

size_t loom__utf8_offset16_of(
    const char *str, size_t len, size_t total, size_t units, bool *mid_pair)
{
    if (units <= total / 2 || units > total) {
        return loom__utf8_offset16(str, len, units, mid_pair);
    }
    const uint8_t *s = (const uint8_t *)str;
    size_t rest = total - units; /* units after the cut */
    size_t j = len;
    if (mid_pair) {
        *mid_pair = false;
    }
    while (rest > 0 && j > 0) {
        size_t k = j - 1;
        while (k > 0 && (s[k] & 0xc0) == 0x80) {
            k--;
        }
        size_t cu = j - k == 4 ? 2 : 1;
        if (cu == 2 && rest == 1) {
            if (mid_pair) {
                *mid_pair = true;
            }
            return k;
        }
        rest -= cu;
        j = k;
    }
    return j;
}

size_t loom__utf8_codepoints(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            n++;
        }
    }
    return n;
}
