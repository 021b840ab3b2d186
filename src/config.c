/* config.c -- STUB: implemented by the config work item. */
#include <stdlib.h>

#include "config.h"
#include "error.h"

int eb_config_load(const char *path, struct eb_config **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    return eb_seterr(errstr, errstr_size, EB_ECONFIG, "%s: config loader not implemented", path);
}
int eb_config_load_string(const char *yaml, size_t len, const char *name,
                          struct eb_config **out, char *errstr, size_t errstr_size) {
    *out = NULL;
    return eb_seterr(errstr, errstr_size, EB_ECONFIG, "%s: config loader not implemented", name);
}
void eb_config_free(struct eb_config *cfg) {
    free(cfg);
}
bool eb_config_needs_reconnect(const struct eb_config *a, const struct eb_config *b) {
    return true;
}
