/* kafka_reaper.h -- a thread of the bridge's own that destroys librdkafka
 * handles, so rd_kafka_destroy() never runs on the event loop.
 *
 * rd_kafka_destroy() joins every thread of the handle, and a broker thread
 * cannot end while it waits in getaddrinfo(): with a slow or unreachable
 * resolver, destroying a producer whose brokers' names do not resolve
 * blocks for as long as the lookup does (seconds; measured with a resolver
 * held for 3 s: 2.5 s inside rd_kafka_destroy). On the loop that would
 * stall /healthz and every connection (DESIGN §5). A producer a reload
 * replaced is therefore handed here once it is drained, and destroyed on
 * this thread.
 *
 * The thread is started on the first handle handed over (most runs never
 * replace a producer) with the asynchronous signals blocked
 * (core/signals.h), and touches nothing but
 * what it is given: the handle, the memory to free after it, and the
 * thread-safe logger.
 *
 * @locality eb_kafka_reaper_*() on the loop thread; the destroys on the
 * reaper's thread.
 */
#ifndef EB_KAFKA_REAPER_H
#define EB_KAFKA_REAPER_H

#include <stddef.h>

#include "core/log.h"

struct rd_kafka_s;
typedef struct eb_kafka_reaper eb_kafka_reaper_t;

/* log is borrowed: it must outlive the reaper. Its thread logs each
 * destroy when it is done: "retired Kafka producer stopped" with took_ms
 * (a warning, "... stopped slowly ...", from 1 s). NULL + errstr when out of memory. Free with
 * eb_kafka_reaper_destroy(). */
eb_kafka_reaper_t *eb_kafka_reaper_new(eb_log_t *log, char *errstr, size_t errstr_size);

/* Destroy rk on the reaper's thread, then free(mem) (may be NULL), in the
 * order handed over. Both are taken: the caller must not touch them
 * again, and nothing of the caller's may be reachable from rk's callbacks
 * but the thread-safe logger (librdkafka calls only its log callback while
 * it is destroyed: its reply queue, with delivery reports, errors and
 * statistics, is purged without serving them). When the thread cannot be
 * started, rk is destroyed here, on the calling thread, and a warning
 * says so. */
void eb_kafka_reaper_take(eb_kafka_reaper_t *r, struct rd_kafka_s *rk, void *mem);

/* Waits until every handle taken is destroyed, then ends the thread. NULL
 * is a no-op. */
void eb_kafka_reaper_destroy(eb_kafka_reaper_t *r);

#endif
