/* kafka_sink.h -- the Kafka side: an idempotent librdkafka producer
 * (enable.idempotence=true, acks=all) with ack-after-delivery.
 *
 * An event counts as forwarded only when its delivery report says so: the
 * on_delivery callback runs exactly once for every message that
 * eb_kafka_sink_produce() accepted. While Kafka is unreachable, messages
 * wait in librdkafka's queue (message.timeout.ms is infinite by default, so
 * an outage does not expire them) up to the configured bound; past it,
 * produce returns EB_EFULL at once -- it never blocks the loop -- and the
 * sink logs loudly once per second while it is full.
 *
 * Delivery reports, errors and statistics are served on the loop thread:
 * librdkafka signals a pipe that libevent watches
 * (rd_kafka_queue_io_event_enable), and the sink polls its queue when the
 * pipe is readable. Statistics are read only as far as the brokers' states
 * (kafka_stats.h), never parsed whole. librdkafka's own threads start with
 * every signal blocked, so signals always reach the loop thread.
 *
 * Errors are logged once each: librdkafka reports a broker failure both as
 * a log line and as an error event; the sink drops the log line and logs
 * the event, naming the setting to fix (kafka.brokers when a broker cannot
 * be reached), at most once per kind every 10 s with the count of repeats.
 *
 * @locality every function and callback runs on the loop thread, except
 * where noted.
 */
#ifndef EB_KAFKA_SINK_H
#define EB_KAFKA_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/event.h"
#include "core/log.h"
#include "core/metrics.h"
#include "kafka/kafka_reaper.h"

struct event_base;
typedef struct eb_kafka_sink eb_kafka_sink_t;
typedef struct eb_kafka_topic eb_kafka_topic_t;

/* Final fate of one message. err is 0 when Kafka acknowledged it, else an
 * EB_E* code and `reason` (static or borrowed until return) says why.
 * msg_opaque is what was given to eb_kafka_sink_produce(). now_mono_ns is
 * CLOCK_MONOTONIC when this batch of reports was served: read once per
 * batch, not per message, because at hundreds of thousands of reports a
 * second the clock itself is a visible cost. */
typedef void(eb_delivery_cb)(void *msg_opaque, int err, const char *reason, int64_t now_mono_ns,
                             void *opaque);

struct eb_kafka_sink_conf {
    const char *brokers;        /* copied into the librdkafka conf */
    const struct eb_kv *client; /* extra librdkafka properties; copied */
    size_t nclient;
    size_t queue_max_events; /* the bound on undelivered messages */
    size_t queue_max_bytes;
    eb_log_t *log;         /* borrowed; must outlive the sink */
    eb_metrics_t *metrics; /* borrowed; must outlive the sink */
    eb_delivery_cb *on_delivery;
    void *opaque; /* passed to on_delivery; borrowed */
};

/* Build and check the librdkafka configuration, then create the producer.
 * Does not wait for brokers (a Kafka outage at start is not an error).
 * NULL + errstr on an invalid property or OOM. Free with
 * eb_kafka_sink_destroy() or eb_kafka_sink_destroy_async(). */
eb_kafka_sink_t *eb_kafka_sink_new(struct event_base *base, const struct eb_kafka_sink_conf *conf,
                                   char *errstr, size_t errstr_size);

/* The handle for a topic, created on first use and cached for the life of
 * the sink. Owned by the sink. NULL when out of memory. */
eb_kafka_topic_t *eb_kafka_sink_topic(eb_kafka_sink_t *k, const char *name);

/* Queue one message. key/value/headers are copied. Returns:
 *   0           queued; on_delivery will be called exactly once for it
 *   EB_EFULL    the queue bound is reached; not queued (the caller counts
 *               the drop)
 *   EB_ETOOBIG  larger than the producer's message.max.bytes; not queued
 *   EB_EKAFKA   any other refusal; not queued; *reason says why
 * On non-zero returns on_delivery is NOT called. */
int eb_kafka_sink_produce(eb_kafka_sink_t *k, eb_kafka_topic_t *topic, const void *key,
                          size_t key_len, const void *value, size_t value_len,
                          const struct eb_header *headers, size_t nheaders, void *msg_opaque,
                          const char **reason);

/* Messages accepted and not yet reported. */
size_t eb_kafka_sink_inflight(const eb_kafka_sink_t *k);

/* True when at least one broker connection is up (from librdkafka's
 * statistics, once a second, and from delivery reports and errors in
 * between) and the producer has not hit a fatal error; used by /readyz and
 * logs. */
bool eb_kafka_sink_reachable(const eb_kafka_sink_t *k);

/* Messages still queued are purged and reported as failed first, then
 * librdkafka's handle is destroyed here: this blocks while librdkafka
 * stops its threads (kafka_reaper.h says how long that can be), so call it
 * only where nothing else waits on this thread (start-up failures, tests,
 * the end of a run after the loop has stopped). NULL is a no-op. */
void eb_kafka_sink_destroy(eb_kafka_sink_t *k);

/* Destroy a producer without blocking the calling (loop) thread: what is
 * ours -- loop events, the wakeup pipe, topic handles, metrics -- is
 * released now; librdkafka's handle is handed to r and destroyed on its
 * thread, which frees the rest. Meant for a producer that holds nothing:
 * call it when eb_kafka_sink_inflight() is 0, after the last delivery
 * report was served here. One that still holds messages is destroyed with
 * eb_kafka_sink_destroy() instead (they are purged and reported on this
 * thread first). k is taken; NULL is a no-op. */
void eb_kafka_sink_destroy_async(eb_kafka_sink_t *k, eb_kafka_reaper_t *r);

#endif
