/* kafka.h -- the Kafka side (librdkafka): a consumer-group member that
 * commits only what the caller says is done, and a dead-letter producer.
 *
 * Offsets: enable.auto.commit=false and enable.auto.offset.store=false, so
 * librdkafka never commits on its own. The caller calls oc_kafka_done() for
 * a message only after its database transaction committed (or its
 * dead-letter copy was acknowledged); that stores the offset, and stored
 * offsets are committed
 *   - asynchronously, at most every commit_interval_ms (from oc_kafka_poll(),
 *     so an idle consumer commits too),
 *   - synchronously when partitions are revoked (rebalance callback),
 *   - synchronously in oc_kafka_destroy(), before leaving the group.
 * A message that was never passed to oc_kafka_done() is never committed: the
 * next owner of its partition reads it again. A crash loses at most
 * commit_interval_ms of commits, i.e. some messages are read twice; the
 * database's dedup table makes that harmless. Commits fail while the group
 * rebalances ("rebalance in progress"): that is logged, and the same holds.
 *
 * @locality main thread only. The rebalance, offset-commit and
 * delivery-report callbacks are served there, from oc_kafka_poll(),
 * oc_kafka_dead_letter() and oc_kafka_destroy(); librdkafka's own threads
 * run only the log callback, which touches no state.
 */
#ifndef OC_KAFKA_H
#define OC_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "options.h"

typedef struct oc_kafka oc_kafka_t;

/* Build and check both configurations, create the consumer and the
 * dead-letter producer, and subscribe to opts->topics. Does not wait for the
 * brokers. Returns NULL with a message in errstr on a bad option (e.g. an
 * unknown -X property). `opts` is read during the call only. Free with
 * oc_kafka_destroy(). */
oc_kafka_t *oc_kafka_new(const struct oc_options *opts, char *errstr, size_t errstr_size);

/* Commit stored offsets synchronously, leave the group (revoking
 * partitions), flush the dead-letter producer and free everything. NULL is a
 * no-op. */
void oc_kafka_destroy(oc_kafka_t *k);

/* Wait up to timeout_ms for the next message. Returns it (owned by the
 * caller: free with rd_kafka_message_destroy()) or NULL on timeout.
 * Consumer errors are logged here and not returned; a fatal one makes
 * oc_kafka_fatal() true. Also serves rebalances and the periodic commit. */
rd_kafka_message_t *oc_kafka_poll(oc_kafka_t *k, int timeout_ms);

/* True once librdkafka raised a fatal error: the consumer must stop. */
bool oc_kafka_fatal(const oc_kafka_t *k);

/* The message is fully handled: store its offset for the next commit.
 * `m` is borrowed. */
void oc_kafka_done(oc_kafka_t *k, const rd_kafka_message_t *m);

/* Copy `m` to "<its topic>.dlq" -- same key, value and headers, plus
 * `error` (the reason) and `original.topic`, `original.partition`,
 * `original.offset` headers -- and wait for Kafka's acknowledgement.
 * Returns 0 when acknowledged, -1 with a message in errstr when not (the
 * caller retries). `m` and `reason` are borrowed for the call. */
int oc_kafka_dead_letter(oc_kafka_t *k, const rd_kafka_message_t *m, const char *reason,
                         char *errstr, size_t errstr_size);

#endif
