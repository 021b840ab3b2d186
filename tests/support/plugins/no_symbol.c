/* no_symbol.c -- a shared object without eb_plugin_descriptor. */
#include <expiry_bridge/plugin.h>

EB_PLUGIN_EXPORT const uint32_t eb_plugin_abi_version = EB_PLUGIN_ABI_VERSION;
