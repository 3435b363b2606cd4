/*
 * misc.c: error strings and records, and random client ids.
 */
#include <string.h>
#include <time.h>
#if defined(__GLIBC__) || defined(__APPLE__)
#    include <sys/random.h> /* getentropy without feature macros */
#    define LOOM_HAVE_GETENTROPY 1
#elif defined(__OpenBSD__) || defined(__FreeBSD__)
#    include <unistd.h>
#    define LOOM_HAVE_GETENTROPY 1
#endif

#include "base/base.h"

const char *loom_strerror(int code)
{
    switch (code) {
    case LOOM_OK:
        return "success";
    case LOOM_ENOMEM:
        return "out of memory";
    case LOOM_EINVAL:
        return "invalid argument";
    case LOOM_EMALFORMED:
        return "malformed input";
    case LOOM_ERANGE:
        return "index or length out of range";
    case LOOM_ETYPE:
        return "wrong type";
    case LOOM_ELIMIT:
        return "size or depth limit exceeded";
    case LOOM_ESTATE:
        return "not allowed in the current state";
    case LOOM_ENOTFOUND:
        return "not found";
    case LOOM_EUNSUPPORTED:
        return "unsupported";
    case LOOM_EIO:
        return "I/O error";
    case LOOM_ECORRUPT:
        return "stored data is corrupt";
    case LOOM_EAUTH:
        return "authentication failed";
    case LOOM_EBUSY:
        return "busy";
    default:
        return "unknown error";
    }
}

void loom__error_set(
    loom_error *err, int code, size_t offset, size_t input, const char *msg)
{
    if (!err) {
        return;
    }
    err->code = code;
    err->offset = offset;
    err->input = input;
    if (!msg) {
        msg = loom_strerror(code);
    }
    size_t n = strlen(msg);
    if (n >= sizeof(err->message)) {
        n = sizeof(err->message) - 1;
    }
    memcpy(err->message, msg, n);
    err->message[n] = '\0';
}

void loom__reader_error(const loom__reader *r, loom_error *err, size_t input)
{
    loom__error_set(err, r->err, r->err_pos, input, r->err_msg);
}

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint32_t loom__random_u32(void)
{
#ifdef LOOM_HAVE_GETENTROPY
    uint32_t v;
    if (getentropy(&v, sizeof(v)) == 0) {
        return v;
    }
#endif
    /* Fallback: not cryptographic, only meant to make collisions between
     * independent processes unlikely. The counter keeps calls within one
     * clock tick distinct. */
    static _Atomic uint64_t counter;
    uint64_t state = counter++;
    struct timespec ts;
    if (timespec_get(&ts, TIME_UTC) == TIME_UTC) {
        state ^= (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
    }
    state ^= (uint64_t)(uintptr_t)&state;
    state ^= (uint64_t)clock();
    return (uint32_t)(splitmix(&state) >> 32);
}
