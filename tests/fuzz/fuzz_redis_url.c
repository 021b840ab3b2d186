/* fuzz_redis_url.c -- redis.url parsing on arbitrary bytes: every input
 * either parses into at least one node with a port in range, or fails with
 * a reason and an offset inside the input; nothing leaks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/redis_url.h"
#include "core/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *url = malloc(size + 1);
    if (!url)
        return 0;
    memcpy(url, data, size);
    url[size] = '\0'; /* the loader hands the parser a C string */
    struct eb_redis_url u;
    char err[256];
    size_t off = 0;
    int rc = eb_redis_url_parse(url, &u, &off, err, sizeof(err));
    if (rc == 0) {
        if (u.nnodes < 1 || u.nnodes > EB_REDIS_URL_MAX_NODES)
            abort();
        for (size_t i = 0; i < u.nnodes; i++) {
            if (!u.nodes[i].host || !u.nodes[i].host[0] || u.nodes[i].port < 1 ||
                u.nodes[i].port > 65535)
                abort();
        }
        if ((u.topology == EB_REDIS_SENTINEL) != (u.master_name != NULL))
            abort();
        if (u.password && u.password_off + u.password_len > strlen(url))
            abort();
    } else if (rc != EB_ENOMEM && (off > strlen(url) || !err[0])) {
        abort();
    }
    eb_redis_url_free(&u);
    free(url);
    return 0;
}
