/* retire.h -- connections a reload replaced, kept until they are done
 * with: a Redis source reads on for a grace period (what Redis had already
 * written to it is read, not dropped), a Kafka producer until Kafka has
 * acknowledged every event it holds (its delivery reports still reach the
 * pipeline). Then each is closed from a timer, never inside one of its
 * own callbacks, and a producer's librdkafka handle is destroyed on the
 * reaper's thread (kafka/kafka_reaper.h): rd_kafka_destroy() joins
 * librdkafka's threads and can block for seconds, which the loop must not.
 *
 * @locality loop thread.
 */
#ifndef EB_RETIRE_H
#define EB_RETIRE_H

#include <stddef.h>

#include "core/log.h"
#include "core/metrics.h"
#include "kafka/kafka_sink.h"
#include "redis/redis_topology.h"

struct event_base;
typedef struct eb_retire eb_retire_t;

/* log and metrics are borrowed and must outlive it. Registers the gauge
 * eb_kafka_retired_queue_events. NULL + errstr when out of memory. Free
 * with eb_retire_destroy(). */
eb_retire_t *eb_retire_new(struct event_base *base, eb_log_t *log, eb_metrics_t *metrics,
                           char *errstr, size_t errstr_size);

/* Take src, and ctx: what src's callbacks point to, free()d after src is
 * destroyed (may be NULL). src keeps reading for grace_ms (0: it stops
 * reading now), then is stopped and destroyed from the timer, so this may
 * be called from inside one of src's callbacks. */
void eb_retire_source(eb_retire_t *rt, eb_redis_topology_t *src, void *ctx, int grace_ms);

/* Take k: it stays until eb_kafka_sink_inflight(k) is 0 (logged now and
 * every 10 s while it waits), then is closed: "previous Kafka producer
 * drained; closed", and its librdkafka handle goes to the reaper. NULL is a
 * no-op. */
void eb_retire_sink(eb_retire_t *rt, eb_kafka_sink_t *k);

/* Close a producer that never carried an event -- built for a file that
 * was rejected, or replaced by a newer one before it took over -- at once
 * and without a log line; its librdkafka handle goes to the reaper. NULL
 * is a no-op. */
void eb_retire_unused_sink(eb_retire_t *rt, eb_kafka_sink_t *k);

/* Events the retired producers still hold. */
size_t eb_retire_inflight(const eb_retire_t *rt);

/* Shutting down: the retiring sources stop reading now. The producers go
 * on draining. */
void eb_retire_stop(eb_retire_t *rt);

/* The sources are destroyed, then the producers: one that still holds
 * events has them purged and reported as failed here (the pipeline they
 * report to must still exist). Then waits until the reaper has destroyed
 * every handle it took. Blocks: call after the loop has stopped. NULL is a
 * no-op. Leaves nothing registered on the base. */
void eb_retire_destroy(eb_retire_t *rt);

#endif
