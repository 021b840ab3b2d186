/* faulty.c -- a transform that fails events on purpose, for the tests of
 * what a plugin's failure costs: keys containing "fail" get an error
 * return (with a reason), keys containing "crash" a SIGSEGV (only ever run
 * in a forked child), keys containing "drop" are dropped; the rest pass.
 * settings: { reason: TEXT } (optional). */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <expiry_bridge/plugin.h>

struct faulty {
    const struct eb_plugin_host *h;
    char reason[128];
};

static bool has(const void *key, size_t n, const char *word) {
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++) {
        if (memcmp((const char *)key + i, word, w) == 0)
            return true;
    }
    return false;
}

static int init(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                const eb_plugin_settings_t *settings, void **state, char *errstr,
                size_t errstr_size) {
    (void)ctx;
    (void)errstr;
    (void)errstr_size;
    struct faulty *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->h = h;
    const char *r = h->settings_string(h->settings_get(settings, "reason"));
    strncpy(f->reason, r ? r : "faulty plugin says no", sizeof(f->reason) - 1);
    *state = f;
    return 0;
}

static int transform(void *state, eb_plugin_event_t *ev) {
    struct faulty *f = state;
    size_t n;
    const void *key = f->h->key(ev, &n);
    if (has(key, n, "crash"))
        raise(SIGSEGV);
    if (has(key, n, "drop"))
        return EB_PLUGIN_DROP;
    if (has(key, n, "fail")) {
        f->h->fail(ev, f->reason);
        return EB_PLUGIN_ERROR;
    }
    return EB_PLUGIN_CONTINUE;
}

static void destroy(void *state) {
    free(state);
}

EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "faulty", "0", "fails, drops or crashes on key words", NULL,
                 init, transform, NULL, destroy);
