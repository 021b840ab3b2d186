/* dup_name.c -- a second plugin named "filter": two plugins of one name
 * in one configuration are refused. */
#include <expiry_bridge/plugin.h>

static int transform(void *state, eb_plugin_event_t *ev) {
    (void)state;
    (void)ev;
    return EB_PLUGIN_CONTINUE;
}

EB_PLUGIN_DEFINE(EB_PLUGIN_TRANSFORM, "filter", "0", "a namesake of the shipped filter", NULL,
                 NULL, transform, NULL, NULL);
