/* logger.c -- a transform that logs through the host from a thread of its
 * own, for the tests of the host's context handle: init() starts a thread
 * that logs settings.message at warn level; destroy() joins it. Its check()
 * reports an error on settings.message from another thread when
 * settings.fail_in_thread is given (the error must still reach `check`).
 * settings: { message: TEXT, fail_in_thread: TEXT } (both optional). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <expiry_bridge/plugin.h>

struct logger {
    const struct eb_plugin_host *h;
    const eb_plugin_ctx_t *ctx; /* valid until destroy() returns: the thread logs with it */
    char message[128];
    pthread_t thread;
};

struct report {
    const struct eb_plugin_host *h;
    const eb_plugin_settings_t *node;
    const char *msg;
};

static void *report_run(void *arg) {
    struct report *r = arg;
    r->h->settings_error(r->node, r->msg);
    return NULL;
}

static int check(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                 const eb_plugin_settings_t *settings) {
    (void)ctx;
    const char *why = h->settings_string(h->settings_get(settings, "fail_in_thread"));
    if (!why)
        return 0;
    struct report r = {h, h->settings_get(settings, "message"), why};
    pthread_t t;
    if (pthread_create(&t, NULL, report_run, &r) != 0)
        return -1;
    pthread_join(t, NULL);
    return -1;
}

static void *run(void *arg) {
    struct logger *l = arg;
    l->h->log(l->ctx, EB_PLUGIN_LOG_WARN, l->message);
    return NULL;
}

static int init(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                const eb_plugin_settings_t *settings, void **state, char *errstr,
                size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    struct logger *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    l->h = h;
    l->ctx = ctx;
    const char *m = h->settings_string(h->settings_get(settings, "message"));
    strncpy(l->message, m ? m : "logged from a plugin thread", sizeof(l->message) - 1);
    if (pthread_create(&l->thread, NULL, run, l) != 0) {
        free(l);
        return -1;
    }
    *state = l;
    return 0;
}

static int transform(void *state, eb_plugin_event_t *ev) {
    (void)state;
    (void)ev;
    return EB_PLUGIN_CONTINUE;
}

static void destroy(void *state) {
    struct logger *l = state;
    pthread_join(l->thread, NULL);
    free(l);
}

EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "logger", "0", "logs from a thread of its own", check, init,
                 transform, NULL, destroy);
