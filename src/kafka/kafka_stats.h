/* kafka_stats.h -- how many Kafka brokers are up, read from librdkafka's
 * statistics JSON without parsing the whole document.
 *
 * librdkafka emits its statistics (statistics.interval.ms) as one JSON
 * object whose "brokers" member maps each broker to an object with a
 * "state" ("UP", "DOWN", "CONNECT", ...). Readiness needs nothing else, but
 * most of the document is the "topics" member, one object per partition:
 * 690 KB for 1 000 partitions, 6.8 MB for 10 000 (librdkafka 2.0.2), which
 * a full parse on the loop thread turned into a 100 ms-1 s stall every
 * second. This reader walks the top-level members up to "brokers", reads
 * each broker's "state", skips every other value without decoding it, and
 * stops at the end of "brokers": "topics" (emitted after it) is never read.
 *
 * Pure: bytes in, a count out; a bounded cursor, no allocation, no
 * recursion (nesting is tracked by a counter).
 *
 * @locality any thread: no state.
 */
#ifndef EB_KAFKA_STATS_H
#define EB_KAFKA_STATS_H

#include <stddef.h>

/* The number of brokers whose "state" is "UP" in the statistics document
 * json[0..len) (borrowed for the call; need not be NUL-terminated), or -1
 * when it holds no readable top-level "brokers" object (not JSON, cut
 * short, or another shape): the caller keeps what it knew before. */
int eb_kafka_stats_brokers_up(const char *json, size_t len);

#endif
