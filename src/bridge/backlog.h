/* backlog.h -- a bounded read-ahead buffer between the Redis source and the
 * pipeline.
 *
 * Why: Redis disconnects a subscriber whose output buffer passes
 * `client-output-buffer-limit pubsub` (32 MB by default, ~400k events), and
 * everything in that buffer is lost with the subscription. If the loop read
 * Redis only as fast as it routes, encodes and produces, a burst faster than
 * that (a mass expiry, a pipelined flood) would pile up on Redis's side of
 * the socket, where overflowing costs the whole subscription silently. So
 * the source pushes each notification here -- a copy of the key and its
 * metadata, a few hundred nanoseconds -- as fast as Redis sends, and a
 * low-priority libevent event hands them to the pipeline in slices, only
 * when no read is ready. A burst then waits in our memory, bounded; past
 * the bound a notification is dropped, counted and logged loudly, and the
 * subscription survives.
 *
 * The bound is events and bytes (keys plus a small per-event overhead).
 *
 * @locality loop thread only.
 */
#ifndef EB_BACKLOG_H
#define EB_BACKLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/notification.h"

struct event_base;
typedef struct eb_backlog eb_backlog_t;

struct eb_backlog_conf {
    size_t max_events;           /* bound on notifications held */
    size_t max_bytes;            /* bound on their bytes */
    int priority;                /* libevent priority of the delivery event: the
                                    lowest the base has, so reads come first */
    eb_notification_cb *deliver; /* called once per notification, in order */
    void *opaque;                /* passed to deliver; borrowed */
    eb_log_t *log;               /* borrowed; outlives the backlog */
    eb_metrics_t *metrics;       /* borrowed; outlives the backlog */
};

/* NULL + errstr on bad arguments or OOM. The base must have been given at
 * least priority+1 priorities (event_base_priority_init) before any event
 * was added to it. Free with eb_backlog_destroy(). */
eb_backlog_t *eb_backlog_new(struct event_base *base, const struct eb_backlog_conf *conf,
                             char *errstr, size_t errstr_size);

/* eb_notification_cb: copy n (key included) in, or drop it at the bound.
 * opaque is the backlog. */
void eb_backlog_push(const struct eb_notification *n, void *opaque);

/* New bounds (a reload). What is held already stays, even above them. */
void eb_backlog_set_bounds(eb_backlog_t *b, size_t max_events, size_t max_bytes);

/* Notifications held, not yet delivered. */
size_t eb_backlog_len(const eb_backlog_t *b);

/* Deliver everything held now, in order (tests; shutdown does not need it:
 * the loop keeps draining while it runs). */
void eb_backlog_flush(eb_backlog_t *b);

/* Notifications held are discarded (counted as dropped). NULL is a no-op. */
void eb_backlog_destroy(eb_backlog_t *b);

#endif
