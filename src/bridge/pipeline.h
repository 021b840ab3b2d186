/* pipeline.h -- the bridge's one job, per notification: route the key,
 * build the event, encode it, hand it to the Kafka sink; per delivery
 * report: count it as forwarded (or failed).
 *
 * Per-route counters and histograms are created when a route is first seen
 * and kept for the life of the pipeline, so messages in flight across a
 * reload still find their route's counters.
 *
 * @locality loop thread.
 */
#ifndef EB_PIPELINE_H
#define EB_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "kafka/kafka_sink.h"
#include "ledger/ledger.h"
#include "plugin/plugin_held.h"
#include "plugin/plugin_host.h"
#include "redis/redis_source.h"

typedef struct eb_pipeline eb_pipeline_t;

struct eb_pipeline_conf {
    eb_log_t *log;         /* borrowed; outlives the pipeline */
    eb_metrics_t *metrics; /* borrowed; outlives the pipeline */
    /* Loads the plugins routes name (plugin_host.h); borrowed, outlives the
     * pipeline. NULL: a config with plugin instances is refused. */
    eb_plugin_loader_t *plugins;
};

/* cfg is borrowed: it must stay alive until replaced by
 * eb_pipeline_set_config() or the pipeline is destroyed. The sink is set
 * with eb_pipeline_set_sink() before the first notification (the sink's
 * delivery callback needs the pipeline, so neither can be built first).
 * NULL + errstr when out of memory. */
eb_pipeline_t *eb_pipeline_new(const struct eb_pipeline_conf *conf, const struct eb_config *cfg,
                               char *errstr, size_t errstr_size);

/* sink is borrowed; it must outlive the pipeline's use of it. */
void eb_pipeline_set_sink(eb_pipeline_t *p, eb_kafka_sink_t *sink);

/* Swap in new routes (a reload), with their plugin instances: instances
 * whose plugin and settings did not change are kept (not re-initialised),
 * new ones are created, dropped ones destroyed after the swap. Takes effect
 * for the next notification; nothing in flight is affected. cfg is borrowed
 * as in eb_pipeline_new(): the caller frees the old one after this returns.
 * Returns 0, or EB_ENOMEM / EB_ECONFIG (a plugin did not start; see
 * eb_pipeline_error()) and the old routes and plugins stay. */
int eb_pipeline_set_config(eb_pipeline_t *p, const struct eb_config *cfg);

/* Why the last eb_pipeline_set_config() failed ("" if it did not). */
const char *eb_pipeline_error(const eb_pipeline_t *p);

/* The deadline ledger that ledgered routes (ledger: armed/observed, or a
 * payload) hand their expiries to; borrowed, it must outlive the
 * pipeline's use of it (the sink reports leftovers to it on destroy). NULL
 * (the default): those routes forward like plain ones. */
void eb_pipeline_set_ledger(eb_pipeline_t *p, eb_ledger_t *ledger);

/* eb_notification_cb: opaque is the pipeline. */
void eb_pipeline_on_notification(const struct eb_notification *n, void *opaque);

/* eb_ledger_emit_cb: opaque is the pipeline. Produces a timer the ledger
 * claimed, with its deadline, payload and delivery (live or recovered), and
 * reports its fate to the ledger: at once when it is not handed to Kafka,
 * else from the delivery report. */
void eb_pipeline_emit_timer(const struct eb_ledger_timer *t, void *opaque);

/* eb_delivery_cb: opaque is the pipeline. */
void eb_pipeline_on_delivery(void *msg_opaque, int err, const char *reason, int64_t now_mono_ns,
                             void *opaque);

/* Totals since start, for the stats log line and tests. */
struct eb_pipeline_stats {
    uint64_t received;
    uint64_t routed;
    uint64_t unrouted;
    uint64_t produced; /* acknowledged by Kafka */
    uint64_t failed;   /* final delivery failures */
    uint64_t dropped;  /* refused at the queue bound, too big, unencodable, or a plugin failed
                          it without a dead_letter topic (not a ledgered timer: plugin_held) */
    uint64_t filtered;      /* dropped on purpose by a plugin (a filter) */
    uint64_t plugin_errors; /* failed by a plugin (dropped, or dead-lettered) */
    uint64_t dead_lettered; /* of those, handed to the route's dead_letter topic */
    uint64_t plugin_held;   /* ledgered timers a plugin failed, waiting in the ledger
                               (now; docs/plugins.md) */
    uint64_t inflight;
};
void eb_pipeline_stats(const eb_pipeline_t *p, struct eb_pipeline_stats *out);

/* Write a one-line summary with the stats and latency quantiles (and
 * forget held timers that stopped failing, so their gauge is fresh). */
void eb_pipeline_log_stats(eb_pipeline_t *p);

/* NULL is a no-op. */
void eb_pipeline_destroy(eb_pipeline_t *p);

#endif
