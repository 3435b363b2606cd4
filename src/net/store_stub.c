/*
 * store_stub.c: stand-ins for the store API (loom/store.h) until the store
 * lands in this branch: weak definitions that refuse to open a store, so
 * that the server links and runs in memory. The real functions, when
 * linked, replace these. Remove this file once src/store is merged.
 */
#include "loom/store.h"

#include <string.h>

#include "base/base.h"

__attribute__((weak)) void loom_store_options_init(loom_store_options *o)
{
    memset(o, 0, sizeof(*o));
}

__attribute__((weak)) int loom_store_open(const char *path,
                                          const loom_store_options *opts,
                                          loom_store **out,
                                          loom_error *err)
{
    (void)path;
    (void)opts;
    (void)out;
    loom__error_set(err, LOOM_EUNSUPPORTED, 0, 0,
                    "this build has no store (src/store)");
    return LOOM_EUNSUPPORTED;
}

__attribute__((weak)) void loom_store_close(loom_store *s)
{
    (void)s;
}

__attribute__((weak)) int loom_store_append(loom_store *s,
                                            const char *name,
                                            const uint8_t *update,
                                            size_t len,
                                            loom_error *err)
{
    (void)s;
    (void)name;
    (void)update;
    (void)len;
    loom__error_set(err, LOOM_EUNSUPPORTED, 0, 0, "no store");
    return LOOM_EUNSUPPORTED;
}

__attribute__((weak)) int
loom_store_load(loom_store *s, const char *name, loom_doc *doc, loom_error *err)
{
    (void)s;
    (void)name;
    (void)doc;
    loom__error_set(err, LOOM_EUNSUPPORTED, 0, 0, "no store");
    return LOOM_EUNSUPPORTED;
}

__attribute__((weak)) int loom_store_append_many(loom_store *s,
                                                 const char *name,
                                                 const uint8_t *const *updates,
                                                 const size_t *lens,
                                                 size_t n,
                                                 loom_error *err)
{
    (void)s;
    (void)name;
    (void)updates;
    (void)lens;
    (void)n;
    loom__error_set(err, LOOM_EUNSUPPORTED, 0, 0, "no store");
    return LOOM_EUNSUPPORTED;
}
