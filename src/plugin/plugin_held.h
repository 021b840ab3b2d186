/* plugin_held.h -- the ledgered timers that a plugin failed and that wait
 * in the ledger for another attempt: which they are, and how many per
 * route, as the gauge eb_plugin_held_timers{route} (docs/plugins.md, "A
 * failing plugin on a ledgered route").
 *
 * A ledgered timer (ledger: armed/observed, deadline known) that a plugin
 * fails, on a route without a dead_letter topic, is neither produced nor
 * acknowledged: it stays in the ledger, and the sweep hands it over again
 * each time its claim runs out. That keeps the route's at-least-once
 * promise (a fixed plugin, or a dead_letter topic added by a reload,
 * delivers it), but a timer failing forever would look like nothing at
 * all. So the pipeline reports each such failure here and each timer the
 * plugins let through (produced, dead-lettered, dropped on purpose); a
 * timer is known by its identity (route, db, key, deadline), so one
 * retried ten times counts once. One that is not failed again within
 * forget_after (disarmed by the application, delivered by another replica,
 * re-armed with another deadline) is forgotten.
 *
 * At most EB_PLUGIN_HELD_MAX timers are tracked (a 24-byte slot each, the
 * table at most half full); past that, new ones are counted in no gauge
 * and eb_plugin_held_fail() says so.
 *
 * Nothing here runs for routes without a ledger or without plugins.
 *
 * @locality loop thread.
 */
#ifndef EB_PLUGIN_HELD_H
#define EB_PLUGIN_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/metrics.h"

/* Far more timers than a route fails in one claim_ttl unless its plugin
 * fails everything (then the log and the gauge say so at once), and a
 * table (768 KiB at most) that never matters. */
#define EB_PLUGIN_HELD_MAX 16384

typedef struct eb_plugin_held eb_plugin_held_t;

/* One timer: every pointer borrowed for the call. */
struct eb_plugin_timer {
    const char *route;
    int db;
    const void *key;
    size_t key_len;
    int64_t deadline_ms;
};

/* metrics (borrowed, outlives the set; may be NULL) gets the gauge family
 * eb_plugin_held_timers{route}. NULL when out of memory. */
eb_plugin_held_t *eb_plugin_held_new(eb_metrics_t *metrics);

/* NULL is a no-op. */
void eb_plugin_held_destroy(eb_plugin_held_t *h);

/* A plugin failed t now (CLOCK_MONOTONIC ns) and it stays in the ledger.
 * Returns how many timers t's route holds, t included; *untracked (may be
 * NULL) is set when t could not be tracked (EB_PLUGIN_HELD_MAX reached, or
 * out of memory): the count is then a lower bound. */
size_t eb_plugin_held_fail(eb_plugin_held_t *h, const struct eb_plugin_timer *t, int64_t now_ns,
                           bool *untracked);

/* The plugins let t through: forget it. Cheap when nothing is held. */
void eb_plugin_held_release(eb_plugin_held_t *h, const struct eb_plugin_timer *t);

/* Forget the timers not failed again for forget_after_ns. Does the work
 * at most once a second, and never when nothing is held: call it freely. */
void eb_plugin_held_expire(eb_plugin_held_t *h, int64_t now_ns, int64_t forget_after_ns);

/* Timers held, over every route. */
size_t eb_plugin_held_count(const eb_plugin_held_t *h);

#endif
