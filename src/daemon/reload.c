/* reload.c -- the event path in use and its replacement by a reloaded
 * file (the state machine is described in reload.h).
 *
 * State: the configuration, producer and Redis source in use, the ledger
 * (built when the first file needs it, kept from then on: timers in flight
 * hold its tickets), and at most one pending switch: a valid file whose
 * new Redis connection is not subscribed yet. Whatever a switch replaces
 * goes to retire.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/error.h"
#include "daemon/reload.h"
#include "kafka/kafka_group.h"
#include "redis/handover.h"
#include "ledger/ledger.h"

/* After the new Redis connection is subscribed, the old one keeps reading
 * this long: notifications Redis had already written to it are read, not
 * dropped. Long enough for a backlog of a few hundred thousand events at
 * the ~1M/s one subscriber reads; short enough that duplicates (same
 * server on both) stay few. */
#define EB_HANDOVER_GRACE_MS 500
/* A new Redis connection not subscribed by then takes over anyway: several
 * connect attempts at the default 5 s timeout. */
#define EB_HANDOVER_TIMEOUT_MS 30000

/* A Redis source and the reload it reports to. Each source gets its own,
 * so a callback knows which connection it came from (the one in use, the
 * one a reload waits for, or one being retired). */
struct source {
    eb_reload_t *r;
    eb_redis_topology_t *src;
};

/* A valid file whose event path waits for its new Redis connection. */
struct pending {
    struct eb_config *cfg; /* NULL: nothing pending */
    struct source *source; /* connecting with the new settings */
    eb_kafka_sink_t *sink; /* NULL: the producer in use stays */
    int64_t since_ms;
    char trigger[256]; /* what made the reload, for the log line at the switch */
};

struct eb_reload {
    struct eb_reload_conf c;
    struct event_base *base;

    struct eb_config *cfg; /* the pipeline's routes point into it */
    eb_kafka_sink_t *sink;
    struct source *source;
    eb_ledger_t *ledger; /* NULL until a file needs it */
    /* Several replicas (coordination.enabled): which units are ours. Built
     * from the first file; its settings apply at the next restart. */
    eb_kafka_group_t *group;
    char handover_channel[256]; /* the group's (handover.h) */
    bool leaving; /* SIGTERM: giving every unit up */
    struct pending next;
    struct event *handover_ev;
    bool stopped;

    eb_series_t *reload_ok, *reload_failed, *last_reload_ok, *last_reload_ts;
    eb_series_t *reconnect_redis, *reconnect_kafka;
};

/* ------------------------------------------------------- config compares */

/* eb_config_needs_reconnect() knows every connection setting; ask it about
 * one side alone by giving `b` the other side of `a`. Event types are not
 * a reconnect: the source subscribes to new ones in place. */
static bool redis_changed(const struct eb_config *a, const struct eb_config *b) {
    struct eb_config t = *b;
    t.kafka = a->kafka;
    t.events = a->events;
    return eb_config_needs_reconnect(a, &t);
}

static bool kafka_changed(const struct eb_config *a, const struct eb_config *b) {
    struct eb_config t = *b;
    t.redis = a->redis;
    t.events = a->events;
    return eb_config_needs_reconnect(a, &t);
}

/* ------------------------------------------------------------- building */

static eb_kafka_sink_t *make_sink(eb_reload_t *r, const struct eb_config *cfg, char *errstr,
                                  size_t errstr_size) {
    struct eb_kafka_sink_conf kc = {
        .brokers = cfg->kafka.brokers,
        .client = cfg->kafka.client,
        .nclient = cfg->kafka.nclient,
        .queue_max_events = cfg->kafka.queue_max_events,
        .queue_max_bytes = cfg->kafka.queue_max_bytes,
        .log = r->c.log,
        .metrics = r->c.metrics,
        .on_delivery = eb_pipeline_on_delivery,
        .opaque = r->c.pipeline, /* old and new producers report to one pipeline */
    };
    return eb_kafka_sink_new(r->base, &kc, errstr, errstr_size);
}

static void handover(eb_reload_t *r, const char *why);

/* eb_notification_cb: every source's notifications go to the one backlog.
 * The first one from the connection a reload waits for switches the event
 * path before it is handled, so it is routed by the new file.
 * @locality loop thread (hiredis callback). */
static void on_notification(const struct eb_notification *n, void *opaque) {
    struct source *s = opaque;
    eb_reload_t *r = s->r;
    if (s == r->next.source)
        handover(r, "first notification on the new Redis connection");
    eb_backlog_push(n, r->c.backlog);
}

/* eb_redis_state_cb. The source logs its own transitions; /readyz reads
 * the state; here only the connection a reload waits for, and the ledger's
 * view of the one in use, matter.
 * @locality loop thread (hiredis or timer callback). */
static void on_redis_state(enum eb_redis_state state, void *opaque) {
    struct source *s = opaque;
    eb_reload_t *r = s->r;
    if (s == r->next.source && state == EB_REDIS_SUBSCRIBED)
        handover(r, "new Redis connection subscribed");
    else if (s == r->source && r->ledger)
        eb_ledger_on_source_state(r->ledger, state); /* sweeps at once after a gap */
}

/* A unit (re)subscribed after a gap: its expiries meanwhile may have been
 * lost, so the ledger sweeps that master's ledgers at once.
 * @locality loop thread. */
static void on_unit_subscribed(const struct eb_redis_unit *u, void *opaque) {
    struct source *s = opaque;
    if (s == s->r->source)
        eb_ledger_on_unit_subscribed(s->r->ledger, u);
}

/* Masters came or went, or slots moved: the ledger's connections follow.
 * @locality loop thread. */
static void on_units_changed(void *opaque) {
    struct source *s = opaque;
    if (s == s->r->source && s->r->ledger)
        eb_ledger_on_units_changed(s->r->ledger);
}

/* The topology asks which units this replica owns: with coordination, the
 * ones the group assigned, none once leaving; without, every one.
 * @locality loop thread. */
static bool owns_unit(int32_t unit, void *opaque) {
    const struct source *s = opaque;
    return !s->r->group || (!s->r->leaving && eb_kafka_group_assigned(s->r->group, unit));
}

/* May a unit's source publish its handover marker (take the master's
 * stream over)? Only while the group's lease confirms the assignment: a
 * replica cut off from Kafka, which may have been replaced already, does
 * not cut the new owner's turn. @locality loop thread. */
static bool may_claim_unit(int32_t unit, void *opaque) {
    const struct source *s = opaque;
    const eb_reload_t *r = s->r;
    /* A reload's old connection never claims again once a new one exists:
     * the new one's marker ends its turn for good (reload.h). */
    bool newest = s == r->next.source || (s == r->source && !r->next.source);
    return !r->group || (newest && !r->leaving && eb_kafka_group_owns(r->group, unit));
}

/* A unit given up was handed over. Leaving, the last one ends the wait.
 * @locality loop thread. */
static void on_unit_released(const struct eb_redis_unit *u, void *opaque) {
    struct source *s = opaque;
    (void)u;
    if (s->r->leaving && eb_reload_handed_over(s->r) && s->r->c.handed_over)
        s->r->c.handed_over(s->r->c.opaque);
}

static void on_units(size_t n, void *opaque) {
    struct source *s = opaque;
    if (s->r->group && s == s->r->source)
        eb_kafka_group_set_units(s->r->group, (int)n);
}

static const struct eb_redis_topology_handlers topology_handlers = {
    .on_notification = on_notification,
    .on_state = on_redis_state,
    .on_unit_subscribed = on_unit_subscribed,
    .on_units_changed = on_units_changed,
    .owns = owns_unit,
    .may_claim = may_claim_unit,
    .on_units = on_units,
    .on_unit_released = on_unit_released,
};

/* The group assigned or took units, or this replica leaves: every topology
 * in use follows (a unit given up is read on until the next owner's
 * handover marker, handover.h). */
static void ownership_changed(eb_reload_t *r) {
    if (r->source)
        eb_redis_topology_ownership_changed(r->source->src);
    if (r->next.source)
        eb_redis_topology_ownership_changed(r->next.source->src);
}

/* @locality loop thread (the group's events, served on the loop). */
static void on_assigned(const int32_t *units, size_t n, void *opaque) {
    (void)units;
    (void)n;
    ownership_changed(opaque);
}

static void on_revoked(const int32_t *units, size_t n, bool lost, void *opaque) {
    (void)units;
    (void)n;
    (void)lost; /* the topology stops reading them at once either way */
    ownership_changed(opaque);
}

static const struct eb_kafka_group_handlers group_handlers = {on_assigned, on_revoked};

static int make_group(eb_reload_t *r, const struct eb_config *cfg, char *errstr,
                      size_t errstr_size) {
    const struct eb_config_coordination *co = &cfg->coordination;
    if (!co->enabled)
        return 0;
    struct eb_kafka_group_conf gc = {
        .brokers = cfg->kafka.brokers,
        .client = cfg->kafka.client,
        .nclient = cfg->kafka.nclient,
        .group_id = co->group,
        .topic = co->topic,
        .units = 1,
        .session_timeout_ms = co->session_timeout_ms,
        .heartbeat_interval_ms = co->heartbeat_interval_ms,
        .replication_factor = -1,
        .log = r->c.log,
        .metrics = r->c.metrics,
        .handlers = &group_handlers,
        .opaque = r,
    };
    if (!eb_handover_channel(co->group, r->handover_channel, sizeof(r->handover_channel))) {
        eb_error_set(errstr, errstr_size, EB_EINVAL, "coordination.group is too long");
        return EB_EINVAL;
    }
    r->group = eb_kafka_group_new(r->base, &gc, errstr, errstr_size);
    return r->group ? 0 : EB_EKAFKA;
}

/* The deadline ledger, built when the first configuration needs it (a
 * ledgered route, or a payload) and kept from then on: timers in flight
 * hold tickets of it. */
static int ensure_ledger(eb_reload_t *r, const struct eb_config *cfg, char *errstr,
                         size_t errstr_size) {
    if (r->ledger)
        return eb_ledger_set_config(r->ledger, cfg, errstr, errstr_size);
    if (!eb_ledger_needed(cfg))
        return 0;
    struct eb_ledger_conf lc = {
        .log = r->c.log,
        .metrics = r->c.metrics,
        .emit = eb_pipeline_emit_timer,
        .opaque = r->c.pipeline,
    };
    r->ledger = eb_ledger_new(r->base, &lc, cfg, errstr, errstr_size);
    if (!r->ledger)
        return EB_ECONFIG;
    eb_pipeline_set_ledger(r->c.pipeline, r->ledger);
    return 0;
}

static struct source *make_source(eb_reload_t *r, const struct eb_config *cfg, char *errstr,
                                  size_t errstr_size) {
    struct source *s = calloc(1, sizeof(*s));
    if (!s) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    s->r = r;
    struct eb_redis_topology_conf tc = {
        .redis = &cfg->redis,
        .events = cfg->events,
        .names = r->c.names,
        .log = r->c.log,
        .metrics = r->c.metrics,
        .handlers = &topology_handlers,
        .handover_channel = r->group ? r->handover_channel : NULL,
        .handover_grace_ms = cfg->coordination.handover_grace_ms,
        .opaque = s,
    };
    s->src = eb_redis_topology_new(r->base, &tc, errstr, errstr_size);
    if (!s->src) {
        free(s);
        return NULL;
    }
    return s;
}

/* NULL is a no-op. Not from inside one of its callbacks. */
static void free_source(struct source *s) {
    if (!s)
        return;
    eb_redis_topology_destroy(s->src);
    free(s);
}

/* Replaced connections go to retire.c: a source after grace_ms (0: it
 * stops reading now), a producer once Kafka acknowledged what it holds. */
static void retire_source(eb_reload_t *r, struct source *s, int grace_ms) {
    if (s)
        eb_retire_source(r->c.retire, s->src, s, grace_ms);
}

static int register_metrics(eb_reload_t *r) {
    eb_metrics_t *m = r->c.metrics;
    eb_metric_t *reloads =
        eb_metrics_register(m, EB_METRIC_COUNTER, "eb_config_reloads_total",
                            "Configuration reloads by result (ok, failed).", "result", NULL, 0);
    eb_metric_t *last_ok =
        eb_metrics_register(m, EB_METRIC_GAUGE, "eb_config_last_reload_successful",
                            "1 when the last reload was accepted (or none was tried), 0 when it "
                            "was rejected.",
                            NULL, NULL, 0);
    eb_metric_t *last_ts = eb_metrics_register(
        m, EB_METRIC_GAUGE, "eb_config_last_reload_success_timestamp_seconds",
        "Unix time the configuration in use was loaded (at start or by a reload).", NULL, NULL, 0);
    eb_metric_t *reconnects = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_config_reconnects_total",
        "Connections rebuilt because a reload changed their settings (redis: overlapping "
        "handover; kafka: new producer, the old one drained).",
        "target", NULL, 0);
    if (!reloads || !last_ok || !last_ts || !reconnects)
        return EB_ENOMEM;
    const char *ok[] = {"ok"}, *failed[] = {"failed"};
    const char *redis[] = {"redis"}, *kafka[] = {"kafka"};
    r->reload_ok = eb_metrics_series(reloads, ok);
    r->reload_failed = eb_metrics_series(reloads, failed);
    r->last_reload_ok = eb_metrics_series0(last_ok);
    r->last_reload_ts = eb_metrics_series0(last_ts);
    r->reconnect_redis = eb_metrics_series(reconnects, redis);
    r->reconnect_kafka = eb_metrics_series(reconnects, kafka);
    eb_metrics_set(r->last_reload_ok, 1);
    eb_metrics_set(r->last_reload_ts, eb_real_s());
    return 0;
}

/* ------------------------------------------------------------ switching */

static void reject(eb_reload_t *r, const char *trigger, const char *error) {
    eb_metrics_inc(r->reload_failed);
    eb_metrics_set(r->last_reload_ok, 0);
    eb_log(r->c.log, EB_LOG_ERROR, "config reload rejected; keeping the current routes",
           eb_lf_str("path", r->c.path), eb_lf_str("trigger", trigger),
           eb_lf_str("error", error));
}

static void accepted(eb_reload_t *r) {
    eb_metrics_inc(r->reload_ok);
    eb_metrics_set(r->last_reload_ok, 1);
    eb_metrics_set(r->last_reload_ts, eb_real_s());
}

/* Switch the event path to cfg (taken), with a new producer and/or a new
 * Redis source when given (taken), between two notifications. On failure
 * (out of memory) nothing changed and nothing was taken. */
static int commit(eb_reload_t *r, struct eb_config *cfg, eb_kafka_sink_t *sink,
                  struct source *source) {
    /* Notifications already read were read under the current file: route
     * them by it before the switch, so a reload misroutes nothing. */
    eb_backlog_flush(r->c.backlog);
    eb_backlog_set_bounds(r->c.backlog, cfg->redis.read_ahead_max_events,
                          cfg->redis.read_ahead_max_bytes);
    /* A kept source subscribes to new event types before the routes that
     * need them exist, and drops old ones after: nothing is missed. */
    if (!source && eb_redis_topology_set_events(r->source->src, cfg->events) != 0)
        return EB_ENOMEM;
    char lerr[256];
    bool new_ledger = !r->ledger;
    if (eb_pipeline_set_config(r->c.pipeline, cfg) != 0 ||
        ensure_ledger(r, cfg, lerr, sizeof(lerr)) != 0) {
        eb_pipeline_set_config(r->c.pipeline, r->cfg);
        if (!source)
            eb_redis_topology_set_events(r->source->src, r->cfg->events);
        return EB_ENOMEM;
    }
    if (new_ledger && r->ledger) {
        eb_ledger_set_topology(r->ledger, r->source->src);
        eb_ledger_start(r->ledger);
        eb_ledger_on_source_state(r->ledger, eb_redis_topology_state(r->source->src));
    }
    if (sink) {
        eb_pipeline_set_sink(r->c.pipeline, sink);
        eb_retire_sink(r->c.retire, r->sink);
        r->sink = sink;
        eb_metrics_inc(r->reconnect_kafka);
    }
    if (source) {
        retire_source(r, r->source, EB_HANDOVER_GRACE_MS);
        r->source = source;
        eb_metrics_inc(r->reconnect_redis);
        if (r->ledger) {
            /* Another server: its subscription counts as a new one. */
            eb_ledger_set_topology(r->ledger, source->src);
            eb_ledger_on_source_state(r->ledger, EB_REDIS_CONNECTING);
            eb_ledger_on_source_state(r->ledger, eb_redis_topology_state(source->src));
        }
    }
    eb_config_free(r->cfg);
    r->cfg = cfg;
    return 0;
}

/* The connection a reload waits for is ready (or the wait is over): switch
 * the event path to it and its file. */
static void handover(eb_reload_t *r, const char *why) {
    struct pending n = r->next;
    memset(&r->next, 0, sizeof(r->next));
    event_del(r->handover_ev);
    enum eb_redis_state st = eb_redis_topology_state(n.source->src);
    if (commit(r, n.cfg, n.sink, n.source) != 0) {
        eb_metrics_inc(r->reload_failed);
        eb_metrics_set(r->last_reload_ok, 0);
        eb_log(r->c.log, EB_LOG_ERROR,
               "config reload failed while switching to the new Redis connection (out of "
               "memory); keeping the current configuration");
        retire_source(r, n.source, 0);
        eb_retire_unused_sink(r->c.retire, n.sink);
        eb_config_free(n.cfg);
        return;
    }
    eb_log(r->c.log, EB_LOG_INFO, "config reloaded", eb_lf_str("path", r->c.path),
           eb_lf_int("routes", (int64_t)r->cfg->nroutes), eb_lf_str("trigger", n.trigger),
           eb_lf_str("switched_on", why), eb_lf_bool("redis_reconnected", true),
           eb_lf_bool("kafka_reconnected", n.sink != NULL),
           eb_lf_str("new_redis_state", eb_redis_source_state_name(st)),
           eb_lf_int("handover_wait_ms", eb_mono_ms() - n.since_ms),
           eb_lf_int("old_connection_grace_ms", EB_HANDOVER_GRACE_MS));
}

/* @locality loop thread (timer). */
static void on_handover_timeout(evutil_socket_t fd, short what, void *arg) {
    eb_reload_t *r = arg;
    (void)fd;
    (void)what;
    if (!r->next.source)
        return;
    eb_log(r->c.log, EB_LOG_ERROR,
           "the new Redis connection is not subscribed yet; switching to it anyway (the file "
           "names it): the old server is no longer read",
           eb_lf_int("waited_ms", eb_mono_ms() - r->next.since_ms),
           eb_lf_str("state",
                     eb_redis_source_state_name(eb_redis_topology_state(r->next.source->src))));
    handover(r, "handover deadline passed");
}

/* Park a valid file until its Redis connection is ready. A file that
 * arrives while another waits replaces it: its connections were built
 * against the waiting file, so what the waiting file built and this one
 * does not need is retired unused. */
static void defer(eb_reload_t *r, struct eb_config *cfg, eb_kafka_sink_t *sink,
                  struct source *source, const char *trigger) {
    if (source) {
        retire_source(r, r->next.source, 0);
        r->next.source = source;
        r->next.since_ms = eb_mono_ms();
        struct timeval tv = eb_ms_tv(EB_HANDOVER_TIMEOUT_MS);
        event_add(r->handover_ev, &tv);
        eb_redis_topology_start(source->src);
    } else {
        eb_redis_topology_set_events(r->next.source->src, cfg->events);
    }
    if (sink) {
        eb_retire_unused_sink(r->c.retire, r->next.sink);
        r->next.sink = sink;
    }
    eb_config_free(r->next.cfg);
    r->next.cfg = cfg;
    snprintf(r->next.trigger, sizeof(r->next.trigger), "%s", trigger);
    char url[512];
    eb_log_redact_url(cfg->redis.url, url, sizeof(url));
    eb_log(r->c.log, EB_LOG_INFO,
           "config accepted; connecting to Redis with the new settings: routes and Kafka switch "
           "when the new connection is subscribed, the old one reads until then",
           eb_lf_str("path", r->c.path), eb_lf_str("trigger", trigger), eb_lf_str("redis", url),
           eb_lf_bool("kafka_reconnect", r->next.sink != NULL));
}

void eb_reload_file(eb_reload_t *r, const char *trigger) {
    char errstr[8192];
    struct eb_config *next = NULL;
    if (r->stopped)
        return;
    if (eb_config_load(r->c.path, r->c.checks, &next, errstr, sizeof(errstr)) != 0) {
        reject(r, trigger, errstr);
        return;
    }
    const struct eb_config *target = r->next.cfg ? r->next.cfg : r->cfg;
    eb_kafka_sink_t *sink = NULL;
    struct source *source = NULL;
    if (kafka_changed(target, next) && !(sink = make_sink(r, next, errstr, sizeof(errstr))))
        goto err_reject;
    if (redis_changed(target, next) && !(source = make_source(r, next, errstr, sizeof(errstr)))) {
        eb_retire_unused_sink(r->c.retire, sink);
        goto err_reject;
    }

    r->c.apply(next, r->c.opaque);
    if (source || r->next.source) {
        accepted(r);
        defer(r, next, sink, source, trigger);
        return;
    }
    if (commit(r, next, sink, NULL) != 0) {
        eb_retire_unused_sink(r->c.retire, sink);
        snprintf(errstr, sizeof(errstr), "cannot apply the new routes: %s",
                 eb_pipeline_error(r->c.pipeline));
        goto err_reject;
    }
    accepted(r);
    eb_log(r->c.log, EB_LOG_INFO, "config reloaded", eb_lf_str("path", r->c.path),
           eb_lf_int("routes", (int64_t)r->cfg->nroutes), eb_lf_str("trigger", trigger),
           eb_lf_bool("redis_reconnected", false), eb_lf_bool("kafka_reconnected", sink != NULL));
    return;

err_reject:
    reject(r, trigger, errstr);
    eb_config_free(next);
}

/* ------------------------------------------------------------ lifecycle */

eb_reload_t *eb_reload_new(struct event_base *base, const struct eb_reload_conf *conf,
                           struct eb_config *cfg, char *errstr, size_t errstr_size) {
    eb_reload_t *r = calloc(1, sizeof(*r));
    if (!r) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    r->c = *conf;
    r->base = base;
    r->handover_ev = evtimer_new(base, on_handover_timeout, r);
    if (!r->handover_ev || register_metrics(r) != 0) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_destroy;
    }
    if (!(r->sink = make_sink(r, cfg, errstr, errstr_size)))
        goto err_destroy;
    eb_pipeline_set_sink(r->c.pipeline, r->sink);
    if (ensure_ledger(r, cfg, errstr, errstr_size) != 0)
        goto err_destroy;
    if (make_group(r, cfg, errstr, errstr_size) != 0)
        goto err_destroy;
    if (!(r->source = make_source(r, cfg, errstr, errstr_size)))
        goto err_destroy;
    if (r->ledger)
        eb_ledger_set_topology(r->ledger, r->source->src);
    r->cfg = cfg;
    return r;

err_destroy:
    eb_reload_destroy(r);
    return NULL;
}

int eb_reload_start(eb_reload_t *r) {
    int rc = eb_redis_topology_start(r->source->src);
    if (rc == 0 && r->ledger)
        eb_ledger_start(r->ledger);
    if (rc == 0 && r->group) {
        char err[512];
        size_t units = eb_redis_topology_units(r->source->src, NULL, NULL);
        eb_kafka_group_set_units(r->group, units ? (int)units : 1);
        rc = eb_kafka_group_start(r->group, err, sizeof(err));
        if (rc)
            eb_log(r->c.log, EB_LOG_ERROR, "coordination cannot start", eb_lf_str("error", err));
    }
    return rc;
}

int eb_reload_leave(eb_reload_t *r) {
    if (!r->group || r->leaving)
        return 0;
    r->leaving = true;
    eb_kafka_group_leave(r->group);
    ownership_changed(r);
    return r->cfg->coordination.handover_grace_ms;
}

bool eb_reload_handed_over(const eb_reload_t *r) {
    return (!r->source || eb_redis_topology_sources(r->source->src) == 0) &&
           (!r->next.source || eb_redis_topology_sources(r->next.source->src) == 0);
}

bool eb_reload_left(const eb_reload_t *r) {
    return eb_kafka_group_left(r->group);
}

const struct eb_config *eb_reload_config(const eb_reload_t *r) {
    return r->cfg;
}

void eb_reload_readiness(const eb_reload_t *r, struct eb_http_readiness *out) {
    enum eb_redis_state st = r->source ? eb_redis_topology_state(r->source->src) : EB_REDIS_STOPPED;
    size_t owned = 0;
    if (r->source)
        eb_redis_topology_units(r->source->src, &owned, NULL);
    out->redis_ok = st == EB_REDIS_SUBSCRIBED;
    /* A replica that owns nothing (the others own every unit) is ready: a
     * standby, counted by a PodDisruptionBudget, taking over on demand. */
    out->redis = r->group && owned == 0 && st == EB_REDIS_SUBSCRIBED
                     ? "standby"
                     : eb_redis_source_state_name(st);
    out->kafka_ok = r->sink && eb_kafka_sink_reachable(r->sink);
}

size_t eb_reload_inflight(const eb_reload_t *r) {
    return r->sink ? eb_kafka_sink_inflight(r->sink) : 0;
}

bool eb_reload_ledger_busy(const eb_reload_t *r) {
    return eb_ledger_busy(r->ledger);
}

void eb_reload_log_stats(const eb_reload_t *r) {
    if (r->ledger)
        eb_ledger_log_stats(r->ledger);
}

void eb_reload_stop(eb_reload_t *r) {
    r->stopped = true;
    eb_redis_topology_stop(r->source->src);
    eb_ledger_stop(r->ledger); /* no new sweep; acknowledgements go on */
    if (r->next.source)
        eb_redis_topology_stop(r->next.source->src);
    event_del(r->handover_ev);
}

void eb_reload_destroy(eb_reload_t *r) {
    if (!r)
        return;
    if (r->ledger)
        eb_ledger_set_topology(r->ledger, NULL); /* it borrows the source's topology */
    free_source(r->source);
    free_source(r->next.source);
    eb_kafka_sink_destroy(r->next.sink);
    eb_kafka_sink_destroy(r->sink);
    if (r->ledger)
        eb_pipeline_set_ledger(r->c.pipeline, NULL);
    eb_ledger_destroy(r->ledger); /* after the producers: their leftovers hand tickets back */
    eb_kafka_group_destroy(r->group, NULL, NULL);
    if (r->handover_ev)
        event_free(r->handover_ev);
    eb_config_free(r->next.cfg);
    /* On a failed eb_reload_new() the caller still owns cfg: r->cfg is
     * only set on success. */
    eb_config_free(r->cfg);
    free(r);
}
