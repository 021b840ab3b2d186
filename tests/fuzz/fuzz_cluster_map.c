/* fuzz_cluster_map.c -- the cluster map from arbitrary bytes, read both as
 * the text of CLUSTER NODES and, through hiredis's reader, as a CLUSTER
 * SHARDS reply: a map either comes out consistent (every served slot
 * names a master of the map, and counts add up) or the input is refused
 * with a reason; nothing leaks or reads out of bounds. The same bytes as
 * the text of an error reply go through the redirection parser, which
 * reads only the length it is given (a copy of exactly that size here, so
 * ASan sees any read past it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/error.h"
#include "redis/cluster_map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, struct eb_cluster_map *m, const char *err) {
    if (rc != 0) {
        if (m || (rc != EB_ENOMEM && !err[0]))
            abort();
        return;
    }
    size_t served = 0;
    for (size_t i = 0; i < m->nmasters; i++) {
        served += m->masters[i].nslots;
        if (!m->masters[i].host || m->masters[i].port < 0 || m->masters[i].port > 65535)
            abort();
    }
    if (served + eb_cluster_map_unserved(m) != EB_KEYSLOT_COUNT)
        abort();
    for (unsigned s = 0; s < EB_KEYSLOT_COUNT; s++) {
        if (m->owner[s] > m->nmasters)
            abort();
    }
    eb_cluster_map_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const struct eb_cluster_source src = {"seed", 7000, false};
    char err[256] = "";
    struct eb_cluster_map *m = NULL;
    int rc = eb_cluster_map_from_nodes((const char *)data, size, &src, &m, err, sizeof(err));
    check(rc, m, err);

    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    if (rd && redisReaderFeed(rd, (const char *)data, size) == REDIS_OK &&
        redisReaderGetReply(rd, &reply) == REDIS_OK && reply) {
        m = NULL;
        err[0] = '\0';
        rc = eb_cluster_map_from_shards(reply, &src, &m, err, sizeof(err));
        check(rc, m, err);
        freeReplyObject(reply);
    }
    redisReaderFree(rd);

    char *copy = malloc(size ? size : 1);
    if (copy) {
        struct eb_cluster_redirect r;
        memcpy(copy, data, size);
        enum eb_cluster_redirect_kind k = eb_cluster_redirect_parse(copy, size, &r);
        if (k != r.kind || ((k == EB_CLUSTER_REDIRECT_MOVED || k == EB_CLUSTER_REDIRECT_ASK) &&
                            (r.slot >= EB_KEYSLOT_COUNT || r.port < 1 || r.port > 65535 ||
                             strlen(r.host) > EB_CLUSTER_REDIRECT_HOST_MAX)))
            abort();
        free(copy);
    }
    return 0;
}
