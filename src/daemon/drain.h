/* drain.h -- the second half of a graceful stop (SIGTERM/SIGINT): once
 * nothing more is read from Redis, keep the loop turning -- delivery
 * reports, the ledger's acknowledgements in Redis, /metrics -- until
 * nothing is left in flight or the drain time (kafka.drain_timeout) is
 * spent, then end the loop.
 *
 * @locality loop thread.
 */
#ifndef EB_DRAIN_H
#define EB_DRAIN_H

#include <stdbool.h>

struct event_base;
typedef struct eb_drain eb_drain_t;

/* True when every event read was acknowledged (and nothing else is owed,
 * e.g. a ledger acknowledgement). Called every 20 ms while draining. */
typedef bool(eb_drain_done_cb)(void *opaque);

/* Start draining: the loop ends (event_base_loopexit) once done(opaque)
 * says so or timeout_ms has passed. opaque is borrowed. When out of
 * memory the loop is ended at once and NULL is returned. Free with
 * eb_drain_destroy(). */
eb_drain_t *eb_drain_start(struct event_base *base, int timeout_ms, eb_drain_done_cb *done,
                           void *opaque);

/* NULL is a no-op. Leaves nothing registered on the base. */
void eb_drain_destroy(eb_drain_t *d);

#endif
