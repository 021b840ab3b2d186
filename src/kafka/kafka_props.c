/* kafka_props.c -- which librdkafka properties a user may set, checked by
 * librdkafka itself (contract in kafka_props.h). */
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "core/error.h"
#include "kafka/kafka_props.h"

/* Properties the bridge owns: overriding them would break its guarantees. */
static const struct {
    const char *name;
    const char *why;
} reserved_props[] = {
    {"bootstrap.servers", "set kafka.brokers instead"},
    {"metadata.broker.list", "set kafka.brokers instead"},
    {"enable.idempotence", "the bridge relies on the idempotent producer (no duplicates or "
                           "reordering from retries)"},
    {"acks", "the bridge acknowledges an event only when all in-sync replicas have it"},
    {"request.required.acks", "the bridge acknowledges an event only when all in-sync replicas "
                              "have it"},
    {"queue.buffering.max.messages", "set kafka.queue.max_events instead"},
    {"queue.buffering.max.kbytes", "set kafka.queue.max_bytes instead"},
    {"enable.gapless.guarantee", "not meaningful for this producer"},
    {"transactional.id", "the bridge does not use transactions"},
};

static const char *reserved_reason(const char *name) {
    for (size_t i = 0; i < sizeof(reserved_props) / sizeof(reserved_props[0]); i++) {
        if (strcmp(reserved_props[i].name, name) == 0)
            return reserved_props[i].why;
    }
    return NULL;
}

int eb_kafka_props_apply(rd_kafka_conf_t *conf, const struct eb_kv *client, size_t nclient,
                       size_t *bad, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < nclient; i++) {
        const char *why = reserved_reason(client[i].key);
        char rkerr[512];
        if (bad)
            *bad = i;
        if (why)
            return eb_error_set(errstr, errstr_size, EB_ECONFIG,
                             "librdkafka property '%s' cannot be overridden: %s", client[i].key,
                             why);
        if (rd_kafka_conf_set(conf, client[i].key, client[i].value, rkerr, sizeof(rkerr)) !=
            RD_KAFKA_CONF_OK)
            return eb_error_set(errstr, errstr_size, EB_ECONFIG, "librdkafka property '%s': %s",
                             client[i].key, rkerr);
    }
    return 0;
}

int eb_kafka_props_check(const struct eb_kv *client, size_t nclient, size_t *bad, char *errstr,
                              size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    int rc = eb_kafka_props_apply(conf, client, nclient, bad, errstr, errstr_size);
    rd_kafka_conf_destroy(conf);
    return rc;
}

