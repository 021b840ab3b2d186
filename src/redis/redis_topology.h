/* redis_topology.h -- every master's keyevent notifications, whatever the
 * topology `redis.url` names: one standalone master, the master a group of
 * sentinels names, or every master of a Cluster (docs/topology.md).
 *
 * Per master it keeps one keyevent source (redis_source.h) -- a *unit* --
 * and follows who the masters are:
 *
 *   standalone  one unit for the server in the URL; a Cluster node there is
 *               refused (it would be heard for its own slots only), and a
 *               master demoted by a failover is reported, not followed.
 *   Sentinel    asks the sentinels, each in turn, for the master's address
 *               (SENTINEL get-master-addr-by-name) every topology_interval,
 *               at once after a `+switch-master` on their pub/sub, and
 *               whenever the unit is not subscribed; the unit's connection
 *               confirms with ROLE that the node is a master.
 *   Cluster     reads CLUSTER SHARDS (CLUSTER NODES on servers without it)
 *               from a seed or a known master every topology_interval and
 *               whenever a unit is not subscribed; a master that appears
 *               gets a unit, one that is gone loses it, the others are left
 *               alone. Units are numbered by the lowest slot they serve.
 *
 * Every unit asks its node for ROLE every topology_interval: a master
 * demoted by a failover keeps its subscribers connected and goes silent.
 * A gap (redis_source.h) follows a unit's slots across a failover: the
 * replacement's first subscription closes the predecessor's gap.
 *
 * The aggregate state is SUBSCRIBED when every unit this replica owns is
 * (with coordination: and produces, its handover marker having come back;
 * owning none -- a standby -- counts as ready);
 * eb_redis_connected says the same, eb_redis_masters how many units there
 * are.
 *
 * Ownership: the handle is owned by its creator (eb_redis_topology_destroy());
 * everything of the conf is copied except log, metrics, names, handlers
 * and opaque, borrowed for the handle's life.
 *
 * @locality every function and every callback runs on the loop thread.
 */
#ifndef EB_REDIS_TOPOLOGY_H
#define EB_REDIS_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/notification.h"
#include "core/strpool.h"
#include "redis/redis_source.h"

struct event_base;
typedef struct eb_redis_topology eb_redis_topology_t;

/* A unit, as handlers see it. Borrowed until the handler returns. */
struct eb_redis_unit {
    int32_t id;       /* 0 for standalone and Sentinel; Cluster: rank by lowest slot */
    const char *node; /* "host:port", interned in the conf's names pool */
    const char *host;
    int port;
    bool subscribed; /* its keyevent subscription is up now */
};

struct eb_redis_topology_handlers {
    /* Once per notification read, from any unit, in each unit's order. */
    eb_notification_cb *on_notification;
    /* The aggregate state changed. May be NULL. */
    eb_redis_state_cb *on_state;
    /* A unit's subscription was (re)established: what it announced while
     * it was not subscribed is lost, so its ledgers may be swept now. May
     * be NULL. */
    void (*on_unit_subscribed)(const struct eb_redis_unit *u, void *opaque);
    /* The set of units changed (a master found, replaced, added or
     * removed), or, on Cluster, which master serves which slot: read them
     * again (eb_redis_topology_unit(), eb_redis_topology_node_for_slot()).
     * Not called for the standalone unit, which exists from _new() on. May
     * be NULL. It may run inside a connection's callback: it must not
     * destroy connections there (redis_client.h). */
    void (*on_units_changed)(void *opaque);
    /* Does this replica own unit `unit` (coordination, kafka_group.h)? Asked
     * whenever a unit appears and after eb_redis_topology_ownership_changed();
     * only owned units are subscribed to. NULL: every unit is owned. */
    bool (*owns)(int32_t unit, void *opaque);
    /* May this replica take an owned unit's stream over now (publish its
     * handover marker)? Asked before every claim. NULL: when owned. */
    bool (*may_claim)(int32_t unit, void *opaque);
    /* The number of units changed (Cluster: masters added or removed), for
     * the coordination's control topic. May be NULL. */
    void (*on_units)(size_t nunits, void *opaque);
    /* A unit given up (owns() turned false) was handed over: the next
     * owner's handover marker came through, or the conf's handover grace
     * passed. Its source is gone. May be NULL. */
    void (*on_unit_released)(const struct eb_redis_unit *u, void *opaque);
};

struct eb_redis_topology_conf {
    const struct eb_config_redis *redis; /* read during the call: what is needed is copied */
    uint64_t events;                     /* event-id mask to subscribe to */
    eb_strpool_t *names;                 /* node names, interned: notifications carry them */
    eb_log_t *log;
    eb_metrics_t *metrics;
    const struct eb_redis_topology_handlers *handlers;
    /* Coordination (handover.h): the deployment's handover channel (copied),
     * or NULL when this replica is the only reader. With it, a unit's source
     * produces from its own marker on; a unit given up is read on until the
     * next owner's marker, at most handover_grace_ms. */
    const char *handover_channel;
    int handover_grace_ms;
    void *opaque;
};

/* Create (does not connect yet). NULL + errstr on bad arguments or when out
 * of memory. */
eb_redis_topology_t *eb_redis_topology_new(struct event_base *base,
                                           const struct eb_redis_topology_conf *conf,
                                           char *errstr, size_t errstr_size);

/* Begin: connect the standalone unit, or start asking sentinels or seeds.
 * 0, or EB_ESTATE when started already. */
int eb_redis_topology_start(eb_redis_topology_t *t);

/* Stop reading: no notification callback runs after this returns. Safe
 * inside a callback. */
void eb_redis_topology_stop(eb_redis_topology_t *t);

/* Change the subscribed events on every unit (as
 * eb_redis_source_set_events()). */
int eb_redis_topology_set_events(eb_redis_topology_t *t, uint64_t events);

/* SUBSCRIBED when every unit is (and there is at least one); WAITING when
 * some unit waits for a reconnect or the masters are not known; else
 * CONNECTING; STOPPED after stop. */
enum eb_redis_state eb_redis_topology_state(const eb_redis_topology_t *t);

/* Units known now; how many of them this replica owns (a source exists
 * that is not being handed over) and how many of those are subscribed and,
 * with coordination, producing (each may be NULL). */
size_t eb_redis_topology_units(const eb_redis_topology_t *t, size_t *owned, size_t *subscribed);

/* What to fix when the sentinels do not know redis.url's master name. */
#define EB_REDIS_SENTINEL_NAME_HINT                                                                \
    "the name after the sentinels in redis.url must be the one in `sentinel monitor NAME ...`"

/* Does this replica own unit `unit` now (the handlers' owns(); without
 * one, every unit is owned)? */
bool eb_redis_topology_owns(const eb_redis_topology_t *t, int32_t unit);

/* Units that still have a source: owned, or being handed over. */
size_t eb_redis_topology_sources(const eb_redis_topology_t *t);

/* Ownership changed (the coordination assigned or revoked units): units now
 * owned are subscribed to (and claimed, handover.h); units no longer owned
 * are read on until the next owner's marker (on_unit_released), or stop at
 * once when nothing of theirs is being produced; a unit owned again before
 * its release ended is claimed again. */
void eb_redis_topology_ownership_changed(eb_redis_topology_t *t);

/* Unit i (< eb_redis_topology_units()), in no particular order, or NULL. Borrowed
 * until the next on_units_changed or the topology's destruction. */
const struct eb_redis_unit *eb_redis_topology_unit(const eb_redis_topology_t *t, size_t i);

/* The unit of the master serving `slot` (0..16383) as far as the topology
 * knows: on Cluster the owner in the last map read (NULL when no master
 * serves it, or before the first map), elsewhere the one unit whatever the
 * slot (NULL before the sentinels named a master). Borrowed like
 * eb_redis_topology_unit(). */
const struct eb_redis_unit *eb_redis_topology_node_for_slot(const eb_redis_topology_t *t,
                                                            unsigned slot);

/* True for a redis-cluster:// URL: keys live on the master of their slot. */
bool eb_redis_topology_is_cluster(const eb_redis_topology_t *t);

/* Ask the sentinels or the cluster now rather than at the next interval:
 * a MOVED, ASK, CLUSTERDOWN or READONLY reply on another connection says
 * the map it has is stale. on_units_changed follows if anything changed.
 * A no-op for standalone and once stopped. */
void eb_redis_topology_poll_now(eb_redis_topology_t *t);

/* NULL is a no-op. Must not be called from inside one of its callbacks.
 * Leaves no event registered on the base. */
void eb_redis_topology_destroy(eb_redis_topology_t *t);

#endif
