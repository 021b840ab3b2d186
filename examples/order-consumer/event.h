/* event.h -- what the consumer needs from one expiry-bridge event, checked.
 *
 * Input: the Kafka message value, a structured CloudEvent (JSON) as the
 * bridge writes it (docs/event.schema.json, DESIGN §3):
 *   {"specversion":"1.0", "type":"redis.key.expired", "id":"…",
 *    "data":{"params":{"order_id":"7"}, "delivery":"live", …}, …}
 *
 * Pure: bytes in, struct out, no I/O. Every check that PostgreSQL would
 * otherwise make is made here first (order id fits a bigint, event id is
 * short enough for an index key): a message that passes can never make the
 * database transaction fail by itself, so a database error is always worth
 * retrying, and a message that fails goes to the dead-letter topic.
 */
#ifndef OC_EVENT_H
#define OC_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Longest accepted event id, in bytes. The bridge's ids are ~40 bytes; 200
 * leaves room for other producers and stays far below PostgreSQL's btree
 * key limit (~2700 bytes), past which the insert would fail on every retry. */
#define OC_EVENT_ID_MAX 200
/* Longest accepted data.delivery value ("live", "recovered", future ones). */
#define OC_DELIVERY_MAX 32

/* The only CloudEvents type this consumer acts on. An eviction of a timer
 * key, say, is not a timeout and must not cancel an order. */
#define OC_EVENT_TYPE "redis.key.expired"

struct oc_event {
    char id[OC_EVENT_ID_MAX + 1];       /* CloudEvents id: the dedup key */
    int64_t order_id;                   /* data.params.order_id, > 0 */
    char delivery[OC_DELIVERY_MAX + 1]; /* data.delivery: live | recovered */
};

/* Parse and check one message value (len bytes at buf, need not be
 * NUL-terminated). Returns 0 and fills *ev, or -1 with a one-line reason in
 * why (e.g. "data.params.order_id: expected a string of digits, got 7"),
 * which the consumer puts in the dead-letter message's `error` header. */
int oc_event_parse(const void *buf, size_t len, struct oc_event *ev, char *why, size_t why_size);

#endif
