/* fuzz_handover_marker.c -- whatever is published on the handover channel
 * (any client may PUBLISH there): a parsed marker has a token other than 0
 * and a node name inside the payload; the state machine fed arbitrary
 * messages never produces on a foreign marker and never reads out of
 * bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis/handover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy, so a read past the payload is caught. */
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    uint64_t token;
    const char *node;
    size_t node_len;
    if (eb_handover_marker_parse(p, size, &token, &node, &node_len)) {
        if (token == 0 || node < p || node + node_len != p + size)
            abort();
    }
    eb_handover_t *h = eb_handover_new("127.0.0.1:6379", 0x5eed);
    if (h) {
        char m[EB_HANDOVER_MARKER_MAX(14)];
        eb_handover_subscribed(h);
        eb_handover_claim(h, m, sizeof(m));
        eb_handover_on_marker(h, p, size);
        /* Only our own marker (token 0x5eed) starts a turn. */
        if (eb_handover_producing(h) && (size < 16 || strncmp(p, "0000000000005eed", 16) != 0))
            abort();
        eb_handover_destroy(h);
    }
    free(p);
    return 0;
}
