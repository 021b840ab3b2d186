/* noop.c -- the plugin template: a transform that passes every event on
 * unchanged, with every entry point a real plugin has. Copy this folder,
 * rename the plugin, and fill in transform(). It includes nothing of the
 * bridge but the installed <expiry_bridge/plugin.h> (README.md: the
 * contract -- threading, ownership, what a plugin may and may not do).
 *
 *   settings: { tag: TEXT }   optional; when given, added to data.ext as "tag"
 */
#include <stdlib.h>
#include <string.h>

#include <expiry_bridge/plugin.h>

struct noop {
    const struct eb_plugin_host *host; /* valid for the life of the process */
    const eb_plugin_ctx_t *ctx;        /* for host->log, any thread, until destroy() returns */
    char *tag_json;                    /* "\"TEXT\"", or NULL */
};

/* Validate settings, without side effects: runs at `expiry-bridge check`
 * and before every init(). Report problems at their file:line:col: a bad
 * key with settings_key_error(), a bad value with settings_error(). */
static int noop_check(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                      const eb_plugin_settings_t *settings) {
    (void)ctx;
    for (size_t i = 0; i < h->settings_count(settings); i++) {
        if (strcmp(h->settings_key(settings, i), "tag") != 0) {
            h->settings_key_error(settings, i, "unknown key; expected tag");
            return -1;
        }
    }
    const eb_plugin_settings_t *tag = h->settings_get(settings, "tag");
    if (tag && (!h->settings_string(tag) || strpbrk(h->settings_string(tag), "\"\\"))) {
        h->settings_error(tag, "expected text without quotes or backslashes");
        return -1;
    }
    return 0;
}

/* One instance. Copy what you keep from settings: they are borrowed. */
static int noop_init(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                     const eb_plugin_settings_t *settings, void **state, char *errstr,
                     size_t errstr_size) {
    (void)errstr;
    (void)errstr_size;
    struct noop *n = calloc(1, sizeof(*n));
    if (!n)
        return -1;
    n->host = h;
    n->ctx = ctx;
    const char *tag = h->settings_string(h->settings_get(settings, "tag"));
    if (tag) {
        size_t len = strlen(tag);
        if (!(n->tag_json = malloc(len + 3))) {
            free(n);
            return -1;
        }
        n->tag_json[0] = '"';
        memcpy(n->tag_json + 1, tag, len);
        memcpy(n->tag_json + 1 + len, "\"", 2);
    }
    /* One line in the bridge's log, naming this instance. */
    h->log(ctx, EB_PLUGIN_LOG_DEBUG, tag ? "started; adds a tag to every event" : "started");
    *state = n;
    return 0;
}

/* Per event, on the bridge's loop thread: never block here. */
static int noop_transform(void *state, eb_plugin_event_t *ev) {
    struct noop *n = state;
    if (n->tag_json && n->host->add_field(ev, "tag", n->tag_json, strlen(n->tag_json)) != 0) {
        n->host->fail(ev, "cannot add the tag");
        return EB_PLUGIN_ERROR;
    }
    return EB_PLUGIN_CONTINUE;
}

static void noop_destroy(void *state) {
    struct noop *n = state;
    free(n->tag_json);
    free(n);
}

EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "noop", "1.0.0", "passes events on unchanged (the template)",
                 noop_check, noop_init, noop_transform, NULL, noop_destroy);
