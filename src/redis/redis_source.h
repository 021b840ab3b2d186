/* redis_source.h -- keyevent notifications from one Redis master.
 *
 * Holds two Redis clients (redis_client.h) on the caller's libevent base: a
 * subscriber (SUBSCRIBE __keyevent@<db>__:<event> for each configured db and
 * event, or PSUBSCRIBE __keyevent@*__:<event> for `databases: all`) and a
 * command client (CONFIG, heartbeats), on one name resolver. The clients
 * connect, authenticate (AUTH whenever a user or password is set), name
 * themselves, and the command client refuses a replica (replicas never
 * announce `expired`); each failure is one log line naming its cause and
 * the setting to fix. The two fail together: when one goes, the other is
 * reset, and the session is rebuilt whole.
 *
 * On every (re)connect the source checks notify-keyspace-events and, when
 * allowed, adds the missing flags with CONFIG SET (merging, never
 * removing); where CONFIG is forbidden it logs which flags an operator must
 * set and goes on.
 *
 * Liveness: hiredis 0.14 swallows PING replies on a subscribed connection,
 * so the source PUBLISHes a heartbeat on a private channel from the command
 * connection and expects to read it back on the subscriber; a missing
 * heartbeat means the subscriber is dead and both connections are rebuilt.
 *
 * Any loss of the subscription is a gap: from the moment it was lost to the
 * moment every channel is subscribed again. A gap shows while it lasts
 * (eb_redis_gap_open, eb_redis_gap_open_seconds), is logged with its
 * duration when it ends and counted then (eb_redis_gaps_total,
 * eb_redis_gap_seconds_total). eb_redis_connected and the open-gap gauges
 * are callback gauges: the newest source built on a registry answers them
 * (a reload's replacement), and destroy unbinds them. Reconnects use capped
 * exponential backoff with full jitter (backoff.h).
 *
 * @locality every function and every callback runs on the loop thread.
 */
#ifndef EB_REDIS_SOURCE_H
#define EB_REDIS_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/notification.h"
#include "redis/redis_tls.h"

struct event_base;
struct redisReply; /* <hiredis/hiredis.h>; only eb_redis_source_command() uses it */
typedef struct eb_redis_source eb_redis_source_t;


enum eb_redis_state {
    EB_REDIS_CONNECTING = 0, /* connecting, authenticating, subscribing */
    EB_REDIS_SUBSCRIBED,     /* every channel subscribed: notifications flow */
    EB_REDIS_WAITING,        /* lost or refused; a reconnect is scheduled */
    EB_REDIS_STOPPED,        /* not started yet, or eb_redis_source_stop() was called */
};

/* Called on every state change (not repeated for the same state). */
typedef void(eb_redis_state_cb)(enum eb_redis_state state, void *opaque);

/* An open gap: how long it has lasted (0 when none). */
int64_t eb_redis_source_gap_open_ns(const eb_redis_source_t *s);

/* The source's own default (redis.heartbeat_interval); the connection
 * defaults are redis_client.h's EB_REDIS_DEFAULT_*. */
#define EB_REDIS_DEFAULT_HEARTBEAT_INTERVAL_MS 1000

struct eb_redis_source_conf {
    const char *host; /* copied */
    int port;
    /* The node's name in notifications and metric labels ("host:port"),
     * borrowed for as long as any notification may carry it (interned:
     * strpool.h); NULL: made from host and port, for metrics only. */
    const char *node;
    int32_t unit; /* stamped on every notification (docs/topology.md) */
    /* Ask ROLE every this many ms: a master demoted by a failover keeps its
     * subscribers and goes silent, and only ROLE tells. 0: never. */
    int role_interval_ms;
    /* Standalone: refuse a node with cluster_enabled:1 (it announces only
     * its own slots' keys), saying to use redis-cluster://. */
    bool refuse_cluster;
    /* A gap already open (CLOCK_MONOTONIC ns of its start; 0: none) that
     * this source's first subscription closes: it replaces a source whose
     * master was failed over (eb_redis_source_stop_handover()). gap_cause
     * says why it opened; copied. */
    int64_t gap_since_ns;
    const char *gap_cause;
    const char *username; /* ACL user or NULL; copied */
    const char *password; /* or NULL; copied, never logged */
    eb_redis_tls_t *tls;  /* rediss: TLS for both connections, borrowed; or NULL */
    bool all_databases;
    const int *databases; /* when !all_databases; copied */
    size_t ndatabases;
    uint64_t events; /* event-id mask to subscribe to */
    bool configure_notifications;
    /* Timings; 0 takes the defaults (EB_REDIS_DEFAULT_*: the config's).
     * heartbeat_timeout_ms also bounds how long any reply may be overdue. */
    int connect_timeout_ms;
    int heartbeat_interval_ms;
    int heartbeat_timeout_ms;
    int reconnect_min_ms;
    int reconnect_max_ms;
    eb_log_t *log;         /* borrowed; must outlive the source */
    eb_metrics_t *metrics; /* borrowed; must outlive the source */
    /* Coordination (handover.h): the deployment's handover channel
     * (eb_handover_channel(); copied), or NULL to produce everything read.
     * With it, the source produces what follows its own marker, which it
     * publishes once per subscription when may_claim() says the master is
     * this replica's (NULL: always). */
    const char *handover_channel;
    bool (*may_claim)(void *opaque);
    /* Its turn began (producing) or ended (another replica's marker). May
     * be NULL. */
    void (*on_turn)(bool producing, void *opaque);
    /* A release (eb_redis_source_release()) that did not end at once has
     * ended: stop and retire the source. May be NULL. */
    void (*on_released)(void *opaque);
    eb_notification_cb *on_notification;
    eb_redis_state_cb *on_state; /* may be NULL */
    void *opaque;                /* passed to every callback; borrowed */
};

/* Create (does not connect yet). NULL + errstr on bad arguments or OOM.
 * Free with eb_redis_source_destroy(). */
eb_redis_source_t *eb_redis_source_new(struct event_base *base,
                                       const struct eb_redis_source_conf *conf, char *errstr,
                                       size_t errstr_size);

/* Begin connecting; from here the source keeps itself connected until
 * stopped. Returns 0 or EB_ESTATE if already started. */
int eb_redis_source_start(eb_redis_source_t *s);

/* Stop reading: no notification callback runs after this returns. Safe to
 * call from inside a callback. */
void eb_redis_source_stop(eb_redis_source_t *s);

/* Stop, handing any gap to a successor instead of counting it: returns the
 * start of the gap the successor's first subscription should close (the
 * open gap's start; now when the source was subscribed, as a demoted
 * master is; 0 when it never subscribed). Then as eb_redis_source_stop(). */
int64_t eb_redis_source_stop_handover(eb_redis_source_t *s);

/* Change the subscribed events (a reload named new ones or dropped some):
 * subscribes first, then unsubscribes, so an event kept by both configs is
 * never unsubscribed; notifications of a dropped event stop at once, and
 * notify-keyspace-events is checked again. Returns 0, EB_EINVAL for an
 * unknown event id, or EB_ENOMEM. */
int eb_redis_source_set_events(eb_redis_source_t *s, uint64_t events);

enum eb_redis_state eb_redis_source_state(const eb_redis_source_t *s);

/* Subscribed, and (with coordination) in its turn: what it reads now is
 * produced. */
bool eb_redis_source_producing(const eb_redis_source_t *s);

/* Coordination: the master was given to another replica. Produce on until
 * that replica's handover marker comes through (the exact cut, handover.h)
 * or grace_ms pass, claiming no more. true when that is already so (nothing
 * was being produced, or no coordination): retire it now; else on_released
 * says when. */
bool eb_redis_source_release(eb_redis_source_t *s, int grace_ms);

/* Coordination: the master is this replica's again before the release
 * ended: claim it once more. */
void eb_redis_source_reclaim(eb_redis_source_t *s);

/* "connecting", "subscribed", "waiting", "stopped": for logs and /readyz.
 * Static storage, never NULL. */
const char *eb_redis_source_state_name(enum eb_redis_state st);

/* Reply to eb_redis_source_command(): called exactly once per accepted
 * command, with the reply (borrowed until the callback returns; the hiredis
 * type, see <hiredis/hiredis.h>) or NULL when the connection was lost, the
 * source stopped, or it is being destroyed before the reply came. It may
 * call eb_redis_source_command() and eb_redis_source_stop(), never
 * eb_redis_source_destroy(). */
typedef void(eb_redis_reply_cb)(const struct redisReply *reply, void *opaque);

/* Run a command on the command connection (for the deadline ledger, leases,
 * Functions). argv is binary-safe and copied; argvlen may be NULL for C
 * strings. Accepted only while the command connection is authenticated and
 * known to talk to a master (from the role check on, possibly before every
 * channel is subscribed; on_state(EB_REDIS_SUBSCRIBED) is a safe cue): 0,
 * or EB_ESTATE when it is not (cb is then never called), EB_EINVAL on bad
 * arguments, EB_ENOMEM. Replies come in the order commands were accepted.
 * A reply overdue by more than heartbeat_timeout_ms counts the connection
 * as dead, so long-blocking commands (BLPOP, ...) do not belong here. */
int eb_redis_source_command(eb_redis_source_t *s, eb_redis_reply_cb *cb, void *opaque, int argc,
                            const char **argv, const size_t *argvlen);

/* NULL is a no-op. Must not be called from inside one of its callbacks:
 * stop there, destroy after the loop returns. Pending command callbacks run
 * with NULL during it; no other callback does. Leaves no event registered
 * on the base. */
void eb_redis_source_destroy(eb_redis_source_t *s);

#endif
