/* reference.c -- the reference plugin of the ABI check (plugins/abi/README
 * in docs/plugins.md, "Versioning"): it exports the descriptor with every
 * entry point set, so its debug info describes struct eb_plugin_descriptor
 * and, through the entry points' parameters, struct eb_plugin_host whole.
 * abidiff compares it with plugin-abi-1.xml, the ABI of release 1. */
#include <expiry_bridge/plugin.h>

static int check(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                 const eb_plugin_settings_t *s) {
    (void)ctx;
    return h->settings_kind(s) == EB_PLUGIN_SETTING_MAP ? 0 : -1;
}

static int init(const struct eb_plugin_host *h, const eb_plugin_ctx_t *ctx,
                const eb_plugin_settings_t *s, void **state, char *errstr, size_t errstr_size) {
    (void)h;
    (void)ctx;
    (void)s;
    (void)errstr;
    (void)errstr_size;
    *state = 0;
    return 0;
}

static int transform(void *state, eb_plugin_event_t *ev) {
    (void)state;
    (void)ev;
    return EB_PLUGIN_CONTINUE;
}

static int encode(void *state, eb_plugin_event_t *ev, eb_plugin_output_t *out) {
    (void)state;
    (void)ev;
    (void)out;
    return 0;
}

static void destroy(void *state) {
    (void)state;
}

EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "abi_reference", "1", "the ABI check's reference", check,
                 init, transform, encode, destroy);
