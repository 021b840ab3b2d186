/* reload.h -- the bridge's event path -- routes, Kafka producer, Redis
 * source, deadline ledger -- and its replacement when the configuration
 * file is reloaded (SIGHUP, or config_watch seeing new content):
 *
 *   1. Load and validate the file. An invalid one is rejected: logged,
 *      counted (eb_config_reloads_total{result="failed"}), nothing changes.
 *   2. Build the connections whose settings changed, the one most likely to
 *      fail first: a new Kafka producer (librdkafka may refuse it, e.g. a
 *      missing ssl.ca.location), then a new Redis source. A failure rejects
 *      the file as in 1.
 *   3. Apply the process settings at once (the apply callback: log level,
 *      stats interval, HTTP address).
 *   4. Switch the event path -- routes, producer, source -- in one step
 *      between two notifications (one thread: no event sees half of it).
 *      At once when the Redis settings did not change; when they did, at
 *      the moment the new Redis connection is subscribed or delivers its
 *      first notification, so until then the old connection's events keep
 *      the configuration they were read under.
 *
 * Redis handover is an OVERLAP, never a gap: the old connection keeps
 * reading until the new one is subscribed, and 500 ms longer (retire.h
 * closes it then), so what Redis had already sent it is read too. When both point at the
 * same server, an event published during that grace reaches both
 * connections and is forwarded twice (consumers are idempotent:
 * at-least-once). A new connection not subscribed within 30 s takes over
 * anyway: the file names it.
 *
 * Kafka switch: new events go to the new producer at once; the old one is
 * retired (retire.h): kept until Kafka acknowledged what it holds (its
 * delivery reports reach the same pipeline, whose per-route counters
 * persist), then closed off the loop. At SIGTERM it drains with the rest.
 *
 * @locality loop thread only; librdkafka's threads never call in here.
 */
#ifndef EB_RELOAD_H
#define EB_RELOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "bridge/backlog.h"
#include "bridge/pipeline.h"
#include "config/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/strpool.h"
#include "daemon/http.h"
#include "daemon/retire.h"

struct event_base;
typedef struct eb_reload eb_reload_t;

/* The process settings of an accepted file (log level, stats interval,
 * http.listen), applied before its event path switches. cfg is borrowed
 * for the call. */
typedef void(eb_reload_apply_cb)(const struct eb_config *cfg, void *opaque);

struct eb_reload_conf {
    const char *path;                      /* the file reloads read; borrowed */
    const struct eb_config_checks *checks; /* handed to eb_config_load(); borrowed */
    eb_log_t *log;                         /* borrowed; must outlive it */
    eb_metrics_t *metrics;                 /* borrowed; must outlive it */
    eb_pipeline_t *pipeline;               /* every producer reports to it; borrowed */
    eb_backlog_t *backlog;                 /* every source's notifications go to it; borrowed */
    eb_retire_t *retire;                   /* takes what a reload replaces; borrowed */
    eb_strpool_t *names;                   /* Redis node names (strpool.h); borrowed */
    eb_reload_apply_cb *apply;             /* required */
    void (*handed_over)(void *opaque);     /* after eb_reload_leave(); may be NULL */
    void *opaque;                          /* passed to both; borrowed */
};

/* Build cfg's event path: the producer, the deadline ledger (when a route
 * needs one), the Redis source (not started), in that order, and register
 * the reload metrics. cfg is taken on success. NULL + errstr (naming what
 * failed) otherwise. Free with eb_reload_destroy(). */
eb_reload_t *eb_reload_new(struct event_base *base, const struct eb_reload_conf *conf,
                           struct eb_config *cfg, char *errstr, size_t errstr_size);

/* Start reading Redis, and the ledger's sweeps. 0 or an EB_E* code. */
int eb_reload_start(eb_reload_t *r);

/* Reload the file now; trigger ("SIGHUP", "inotify: ...", borrowed for the
 * call) is logged with the outcome. Ignored after eb_reload_stop(). */
void eb_reload_file(eb_reload_t *r, const char *trigger);

/* The configuration the event path runs with; owned by r, valid until the
 * next switch. */
const struct eb_config *eb_reload_config(const eb_reload_t *r);

/* /readyz: the source in use (during a handover the old one, which still
 * delivers) and the producer new events go to. Fills every field but
 * `draining`. */
void eb_reload_readiness(const eb_reload_t *r, struct eb_http_readiness *out);

/* Events handed to the producer in use and not yet acknowledged. */
size_t eb_reload_inflight(const eb_reload_t *r);

/* True while the ledger still owes Redis an acknowledgement. */
bool eb_reload_ledger_busy(const eb_reload_t *r);

/* The ledger's stats log line, when there is a ledger. */
void eb_reload_log_stats(const eb_reload_t *r);

/* Shutting down: stop reading Redis (the source in use and one a reload
 * waits for), stop the ledger's sweeps (its acknowledgements go on), and
 * ignore reloads from now on. */
void eb_reload_stop(eb_reload_t *r);

/* Coordination. SIGTERM: leave the group now, so the others take this
 * replica's units, and give every unit up: each is read on until the next
 * owner's handover marker comes through (handover.h), then conf.handed_over
 * runs once none is left. Returns the longest that may take
 * (coordination.handover_grace; 0 without coordination: stop now). */
int eb_reload_leave(eb_reload_t *r);
/* No unit is being read any more (true without coordination once stopped,
 * and at once for a replica that owned nothing). */
bool eb_reload_handed_over(const eb_reload_t *r);
/* The group has been left (or there is none): its consumer can go. */
bool eb_reload_left(const eb_reload_t *r);

/* Sources first, then producers (one still holding events purges them and
 * reports them to the pipeline, which must still exist), then the ledger.
 * Blocks while librdkafka stops: call after the loop has stopped. NULL is
 * a no-op. Leaves nothing registered on the base. */
void eb_reload_destroy(eb_reload_t *r);

#endif
