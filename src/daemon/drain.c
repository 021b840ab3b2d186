/* drain.c -- keep the loop turning until everything in flight is
 * acknowledged or the drain time is spent (contract in drain.h).
 */
#include <stdlib.h>

#include <event2/event.h>

#include "core/clock.h"
#include "daemon/drain.h"

/* How often the drain checks whether everything was acknowledged: short
 * next to a drain time of seconds, long next to one loop turn. */
#define EB_DRAIN_POLL_MS 20

struct eb_drain {
    struct event_base *base;
    struct event *tick;
    int64_t deadline_ms;
    eb_drain_done_cb *done;
    void *opaque;
};

/* @locality loop thread (timer). */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    eb_drain_t *d = arg;
    (void)fd;
    (void)what;
    if (d->done(d->opaque) || eb_mono_ms() >= d->deadline_ms)
        event_base_loopexit(d->base, NULL);
}

eb_drain_t *eb_drain_start(struct event_base *base, int timeout_ms, eb_drain_done_cb *done,
                           void *opaque) {
    eb_drain_t *d = calloc(1, sizeof(*d));
    struct timeval tv = eb_ms_tv(EB_DRAIN_POLL_MS);
    if (d) {
        d->base = base;
        d->deadline_ms = eb_mono_ms() + timeout_ms;
        d->done = done;
        d->opaque = opaque;
        d->tick = event_new(base, -1, EV_PERSIST, on_tick, d);
    }
    if (!d || !d->tick || event_add(d->tick, &tv) != 0) {
        eb_drain_destroy(d);
        event_base_loopexit(base, NULL);
        return NULL;
    }
    return d;
}

void eb_drain_destroy(eb_drain_t *d) {
    if (!d)
        return;
    if (d->tick)
        event_free(d->tick);
    free(d);
}
