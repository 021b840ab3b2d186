/* kafka_props.h -- the librdkafka producer properties a configuration may
 * pass through (kafka.client), and the ones the bridge owns.
 *
 * The bridge sets some properties itself because its guarantees rest on
 * them (idempotence, acks=all, the queue bounds, the brokers): a user value
 * for one of those is refused with the reason. Every other property is
 * handed to librdkafka's own rd_kafka_conf_set(), so what librdkafka
 * refuses (an unknown name, a bad value) is refused with its own words,
 * at `check` time, before anything connects.
 *
 * @locality any thread: no state.
 */
#ifndef EB_KAFKA_PROPS_H
#define EB_KAFKA_PROPS_H

#include <stddef.h>

struct eb_kv;
struct rd_kafka_conf_s;

/* Check client[0..nclient) against librdkafka without creating anything.
 * Returns 0, EB_ECONFIG with the failing index in *bad (may be NULL) and
 * the reason in errstr, or EB_ENOMEM. client is borrowed for the call. */
int eb_kafka_props_check(const struct eb_kv *client, size_t nclient, size_t *bad, char *errstr,
                         size_t errstr_size);

/* Apply client[0..nclient) to conf (borrowed; the caller still owns it).
 * Returns as eb_kafka_props_check(); on failure conf holds the properties
 * before the failing one. */
int eb_kafka_props_apply(struct rd_kafka_conf_s *conf, const struct eb_kv *client, size_t nclient,
                         size_t *bad, char *errstr, size_t errstr_size);

#endif
