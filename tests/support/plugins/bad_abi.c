/* bad_abi.c -- a plugin built for another ABI version: refused with
 * "expected 1, found 99". */
#include <expiry_bridge/plugin.h>

static int transform(void *state, eb_plugin_event_t *ev) {
    (void)state;
    (void)ev;
    return EB_PLUGIN_CONTINUE;
}

EB_PLUGIN_EXPORT const uint32_t eb_plugin_abi_version = 99;
EB_PLUGIN_EXPORT const struct eb_plugin_descriptor eb_plugin_descriptor = {
    sizeof(struct eb_plugin_descriptor), EB_PLUGIN_TRANSFORM, "bad_abi", "0", "", NULL, NULL,
    transform, NULL, NULL, {0}};
