/* fuzz_config.c -- the config loader on arbitrary bytes: libyaml events into
 * our node tree, the schema walk, value parsers, ${VAR} expansion, the URL
 * parser and the router build must never crash, leak or read out of bounds,
 * and must either load or explain why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[4096];
    struct eb_config *cfg = NULL;
    int rc = eb_config_load_string((const char *)data, size, "fuzz.yaml", NULL, &cfg, err, sizeof(err));
    if (rc == 0) {
        /* A loaded config is complete: its router answers and it compares
         * with itself. */
        if (!cfg || !cfg->router || eb_config_needs_reconnect(cfg, cfg))
            abort();
        struct eb_match m;
        eb_router_match(cfg->router, data, size, 0, &m);
    } else if (cfg || strncmp(err, "fuzz.yaml:", 10) != 0) {
        /* Every failure leaves *out NULL and names the file. */
        if (rc != EB_ENOMEM)
            abort();
    }
    eb_config_free(cfg);
    return 0;
}
