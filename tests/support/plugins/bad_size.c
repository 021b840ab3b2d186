/* bad_size.c -- a descriptor whose struct_size is not this ABI's: refused
 * with "descriptor size: expected N, found M". */
#include <expiry_bridge/plugin.h>

static int transform(void *state, eb_plugin_event_t *ev) {
    (void)state;
    (void)ev;
    return EB_PLUGIN_CONTINUE;
}

EB_PLUGIN_EXPORT const uint32_t eb_plugin_abi_version = EB_PLUGIN_ABI_VERSION;
EB_PLUGIN_EXPORT const struct eb_plugin_descriptor eb_plugin_descriptor = {
    64, EB_PLUGIN_TRANSFORM, "bad_size", "0", "", NULL, NULL, transform, NULL, NULL, {0}};
