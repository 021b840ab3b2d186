/* pipeline.c -- notification -> route -> event -> Kafka, and delivery
 * reports -> counters. This is the per-event hot path: it allocates nothing
 * in steady state (encoder buffers and in-flight records are reused) and
 * looks every counter up once, when a route is set up.
 *
 * Routes with a deadline ledger or a companion payload take a detour for
 * `expired`: the ledger (ledger.h) claims the timer in Redis and hands it
 * back through eb_pipeline_emit_timer() with its deadline and payload; its
 * delivery report goes back to the ledger, which acknowledges it there.
 *
 * Routes with plugins (plugin_host.h) run them between routing and
 * producing: transforms may drop the event (counted as filtered), change
 * it, or fail it (counted; to the route's dead_letter topic as the plain
 * CloudEvent when it has one; a ledgered timer without one stays in the
 * ledger, tracked by plugin_held.h); an encoder writes the value. Routes
 * without plugins never touch the plugin host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/pipeline.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/notify.h"
#include "core/router.h"

/* Per-db CloudEvents sources and per-(event, db) counters are cached for
 * databases below this; higher ones (rare: Redis defaults to 16) are
 * formatted or looked up per event. */
#define EB_PIPE_CACHED_DBS 16
#define EB_PIPE_MAX_EVENTS 64

/* Counters of one (route, topic) pair. Kept for the life of the pipeline so
 * that messages in flight across a reload still find them. */
struct route_stats {
    struct route_stats *next;
    char *route;
    char *topic;
    eb_kafka_topic_t *kt;
    eb_series_t *routed;
    eb_series_t *produced;
    eb_series_t *failed;
    eb_series_t *dropped_full;
    eb_series_t *dropped_too_big;
    eb_series_t *dropped_error;
    eb_series_t *dropped_plugin; /* a plugin failed it and there is no dead_letter topic */
    eb_series_t *filtered;       /* a plugin dropped it on purpose */
    eb_series_t *dead_lettered;  /* a plugin failed it: sent to the dead_letter topic */
    eb_series_t *latency;
    /* eb_expiry_lateness_seconds: deadline -> read. Created only for
     * routes whose deadline is known (ledger: armed/observed), NULL
     * otherwise, so plain routes do not render empty histograms. */
    eb_series_t *lateness;
};

/* What a route needs per event, rebuilt on every config swap. */
struct route_rt {
    const struct eb_config_route *cfg;
    struct route_stats *stats;
    struct eb_header *headers;
    size_t nheaders;
    bool ledgered; /* expired goes through the ledger (ledger != off, or a payload) */
    const eb_plugin_chain_t *chain; /* NULL: no plugins */
    struct route_stats *dlq;        /* (route, dead_letter topic), or NULL */
};

/* One message in Kafka's hands; its address is librdkafka's msg opaque. */
struct inflight {
    struct inflight *next_free;
    struct route_stats *rs;
    int64_t recv_mono_ns;
    eb_ledger_ticket_t *ticket; /* a ledger timer: acknowledged on delivery */
    int64_t deadline_ms;        /* with ticket: the timer's deadline, < 0 unknown */
};

struct eb_pipeline {
    eb_log_t *log;
    eb_metrics_t *metrics;
    eb_kafka_sink_t *sink;
    eb_ledger_t *ledger; /* NULL: ledgered routes forward like the others */
    const struct eb_config *cfg;
    struct route_rt *routes;
    size_t nroutes;
    struct route_stats *unrouted_rs; /* NULL when unrouted events are dropped */
    struct route_stats *all_stats;
    char *sources[EB_PIPE_CACHED_DBS];
    char source_base[512];
    struct eb_encoded enc;
    struct eb_buf kbuf;
    struct inflight *free_list;
    /* metric families */
    eb_metric_t *f_received, *f_unrouted, *f_routed, *f_produced, *f_failed, *f_dropped, *f_latency,
        *f_lateness, *f_filtered, *f_dead;
    eb_series_t *received_cache[EB_PIPE_MAX_EVENTS][EB_PIPE_CACHED_DBS];
    eb_series_t *unrouted_cache[EB_PIPE_MAX_EVENTS][EB_PIPE_CACHED_DBS];
    struct eb_pipeline_stats totals;
    struct eb_log_limit limit_failed;
    struct eb_log_limit limit_too_big;
    struct eb_log_limit limit_error;
    struct eb_log_limit limit_plugin;
    /* plugins */
    eb_plugin_loader_t *loader;
    eb_plugin_set_t *plugins; /* the instances of cfg */
    struct eb_plugin_event pe;
    eb_plugin_held_t *held; /* ledgered timers a plugin failed, left in the ledger */
    char error[1024]; /* why the last set_config failed */
};

static int register_families(eb_pipeline_t *p) {
    eb_metrics_t *m = p->metrics;
    p->f_received = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_received_total",
                                   "Keyevent notifications read from Redis.", "event,db", NULL, 0);
    p->f_unrouted =
        eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_unrouted_total",
                       "Notifications whose key matched no route.", "event,db", NULL, 0);
    p->f_routed = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_routed_total",
                                 "Notifications matched to a route.", "route,topic", NULL, 0);
    p->f_produced =
        eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_produced_total",
                       "Events acknowledged by Kafka (acks=all).", "route,topic", NULL, 0);
    p->f_failed = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_delivery_failed_total",
                                 "Events Kafka finally refused (delivery report error).",
                                 "route,topic", NULL, 0);
    p->f_dropped = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_dropped_total",
                                  "Events not handed to Kafka: queue_full (the bound was hit), "
                                  "too_big (over message.max.bytes), error, plugin_error (a "
                                  "plugin failed it and the route has no dead_letter topic; a "
                                  "ledgered timer stays in the ledger instead: "
                                  "eb_plugin_held_timers).",
                                  "route,topic,reason", NULL, 0);
    p->f_filtered = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_filtered_total",
                                        "Events a plugin of the route dropped on purpose.",
                                        "route,topic", NULL, 0);
    p->f_dead = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_dead_lettered_total",
                                    "Events a plugin failed, sent to the route's dead_letter "
                                    "topic (topic: the route's own topic).",
                                    "route,topic", NULL, 0);
    p->f_latency =
        eb_metrics_register(m, EB_METRIC_HISTOGRAM, "eb_delivery_latency_seconds",
                       "From reading the notification to Kafka's acknowledgement.", "route,topic",
                       eb_metrics_latency_buckets, eb_metrics_latency_nbuckets);
    /* Registered before the ledger can observe it, so its name is stable
     * for dashboards; same buckets, since Redis's sampler can be minutes
     * late (DESIGN.md §1). */
    p->f_lateness =
        eb_metrics_register(m, EB_METRIC_HISTOGRAM, "eb_expiry_lateness_seconds",
                       "From a timer's deadline to Kafka's acknowledgement of its event "
                       "(routes whose deadline is known: ledger armed/observed).",
                       "route,topic", eb_metrics_latency_buckets, eb_metrics_latency_nbuckets);
    bool ok = p->f_received && p->f_unrouted && p->f_routed && p->f_produced && p->f_failed &&
              p->f_dropped && p->f_latency && p->f_lateness && p->f_filtered && p->f_dead;
    return ok ? 0 : EB_ENOMEM;
}

static struct route_stats *find_stats(eb_pipeline_t *p, const char *route, const char *topic) {
    for (struct route_stats *rs = p->all_stats; rs; rs = rs->next) {
        if (strcmp(rs->route, route) == 0 && strcmp(rs->topic, topic) == 0)
            return rs;
    }
    return NULL;
}

/* The counters of (route, topic), created on first use. The topic handle is
 * resolved when the sink is known. */
static struct route_stats *get_stats(eb_pipeline_t *p, const char *route, const char *topic) {
    struct route_stats *rs = find_stats(p, route, topic);
    if (rs)
        return rs;
    rs = calloc(1, sizeof(*rs));
    if (!rs)
        return NULL;
    rs->route = strdup(route);
    rs->topic = strdup(topic);
    if (!rs->route || !rs->topic) {
        free(rs->route);
        free(rs->topic);
        free(rs);
        return NULL;
    }
    const char *rt[] = {route, topic};
    const char *full[] = {route, topic, "queue_full"};
    const char *big[] = {route, topic, "too_big"};
    const char *err[] = {route, topic, "error"};
    const char *perr[] = {route, topic, "plugin_error"};
    rs->routed = eb_metrics_series(p->f_routed, rt);
    rs->produced = eb_metrics_series(p->f_produced, rt);
    rs->failed = eb_metrics_series(p->f_failed, rt);
    rs->latency = eb_metrics_series(p->f_latency, rt);
    rs->dropped_full = eb_metrics_series(p->f_dropped, full);
    rs->dropped_too_big = eb_metrics_series(p->f_dropped, big);
    rs->dropped_error = eb_metrics_series(p->f_dropped, err);
    rs->dropped_plugin = eb_metrics_series(p->f_dropped, perr);
    rs->filtered = eb_metrics_series(p->f_filtered, rt);
    rs->dead_lettered = eb_metrics_series(p->f_dead, rt);
    if (p->sink)
        rs->kt = eb_kafka_sink_topic(p->sink, topic);
    rs->next = p->all_stats;
    p->all_stats = rs;
    return rs;
}

static void free_routes(struct route_rt *routes, size_t n) {
    for (size_t i = 0; routes && i < n; i++)
        free(routes[i].headers);
    free(routes);
}

/* Build the per-route runtime table for cfg; NULL on OOM. */
static struct route_rt *build_routes(eb_pipeline_t *p, const struct eb_config *cfg,
                                     const eb_plugin_set_t *plugins) {
    struct route_rt *routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*routes));
    if (!routes)
        return NULL;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct eb_config_route *r = &cfg->routes[i];
        routes[i].cfg = r;
        routes[i].stats = get_stats(p, r->name, r->topic);
        if (!routes[i].stats)
            goto err_free_routes;
        routes[i].ledgered = r->ledger != EB_LEDGER_OFF || r->payload;
        routes[i].chain = eb_plugin_set_chain(plugins, i);
        if (r->dead_letter && !(routes[i].dlq = get_stats(p, r->name, r->dead_letter)))
            goto err_free_routes;
        if (r->ledger != EB_LEDGER_OFF && !routes[i].stats->lateness) {
            const char *rt[] = {r->name, r->topic};
            routes[i].stats->lateness = eb_metrics_series(p->f_lateness, rt);
        }
        if (r->nheaders) {
            routes[i].headers = calloc(r->nheaders, sizeof(struct eb_header));
            if (!routes[i].headers)
                goto err_free_routes;
            for (size_t h = 0; h < r->nheaders; h++) {
                routes[i].headers[h].name = r->headers[h].key;
                routes[i].headers[h].value = r->headers[h].value;
                routes[i].headers[h].value_len = strlen(r->headers[h].value);
            }
            routes[i].nheaders = r->nheaders;
        }
    }
    return routes;

err_free_routes:
    free_routes(routes, cfg->nroutes);
    return NULL;
}

static void free_sources(eb_pipeline_t *p) {
    for (int i = 0; i < EB_PIPE_CACHED_DBS; i++) {
        free(p->sources[i]);
        p->sources[i] = NULL;
    }
}

/* "redis://host:port/<db>" for the cached databases. */
static int build_sources(eb_pipeline_t *p, const struct eb_config *cfg) {
    free_sources(p);
    if (cfg->redis.source && *cfg->redis.source)
        snprintf(p->source_base, sizeof(p->source_base), "%s", cfg->redis.source);
    else
        snprintf(p->source_base, sizeof(p->source_base), "redis://%s:%d",
                 cfg->redis.host ? cfg->redis.host : "localhost", cfg->redis.port);
    size_t n = strlen(p->source_base);
    while (n > 0 && p->source_base[n - 1] == '/')
        p->source_base[--n] = '\0';
    for (int db = 0; db < EB_PIPE_CACHED_DBS; db++) {
        if (asprintf(&p->sources[db], "%s/%d", p->source_base, db) < 0) {
            p->sources[db] = NULL;
            return EB_ENOMEM;
        }
    }
    return 0;
}

/* The plugin instances of cfg (NULL when it has none), taking over the
 * current ones that did not change. */
static int build_plugins(eb_pipeline_t *p, const struct eb_config *cfg, eb_plugin_set_t **out) {
    *out = NULL;
    if (!cfg->nplugins)
        return 0;
    if (!p->loader)
        return eb_error_set(p->error, sizeof(p->error), EB_ECONFIG,
                            "this pipeline loads no plugins");
    *out = eb_plugin_set_new(p->loader, cfg, p->plugins, p->error, sizeof(p->error));
    return *out ? 0 : EB_ECONFIG;
}

int eb_pipeline_set_config(eb_pipeline_t *p, const struct eb_config *cfg) {
    eb_plugin_set_t *plugins = NULL;
    p->error[0] = '\0';
    int rc = build_plugins(p, cfg, &plugins);
    if (rc)
        return rc;
    struct route_rt *routes = build_routes(p, cfg, plugins);
    if (!routes)
        goto err_oom;
    struct route_stats *unrouted = NULL;
    if (!cfg->unrouted_drop && cfg->unrouted_topic) {
        unrouted = get_stats(p, "(unrouted)", cfg->unrouted_topic);
        if (!unrouted)
            goto err_free_routes;
    }
    if (build_sources(p, cfg))
        goto err_free_routes;
    free_routes(p->routes, p->nroutes);
    p->routes = routes;
    p->nroutes = cfg->nroutes;
    p->unrouted_rs = unrouted;
    p->cfg = cfg;
    /* Between two events: the old instances finish nothing in flight (an
     * event is produced before the next one starts), so dropping them now
     * loses nothing. */
    eb_plugin_set_destroy(p->plugins);
    p->plugins = plugins;
    return 0;

err_free_routes:
    free_routes(routes, cfg->nroutes);
err_oom:
    eb_plugin_set_destroy(plugins);
    return eb_error_set(p->error, sizeof(p->error), EB_ENOMEM, "out of memory");
}

const char *eb_pipeline_error(const eb_pipeline_t *p) {
    return p->error;
}

eb_pipeline_t *eb_pipeline_new(const struct eb_pipeline_conf *conf, const struct eb_config *cfg,
                               char *errstr, size_t errstr_size) {
    eb_pipeline_t *p = calloc(1, sizeof(*p));
    if (!p) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    p->log = conf->log;
    p->metrics = conf->metrics;
    p->loader = conf->plugins;
    eb_event_encoded_init(&p->enc);
    eb_plugin_event_init(&p->pe);
    if (register_families(p) || !(p->held = eb_plugin_held_new(p->metrics))) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory setting up the pipeline");
        eb_pipeline_destroy(p);
        return NULL;
    }
    int rc = eb_pipeline_set_config(p, cfg);
    if (rc) {
        eb_error_set(errstr, errstr_size, rc, "%s", p->error);
        eb_pipeline_destroy(p);
        return NULL;
    }
    return p;
}

void eb_pipeline_set_sink(eb_pipeline_t *p, eb_kafka_sink_t *sink) {
    p->sink = sink;
    for (struct route_stats *rs = p->all_stats; rs; rs = rs->next)
        rs->kt = eb_kafka_sink_topic(sink, rs->topic);
}

/* The counter of (event, db), cached for small dbs. */
static eb_series_t *event_db_series(eb_metric_t *f, eb_series_t *cache[][EB_PIPE_CACHED_DBS],
                                    const struct eb_notification *n) {
    bool cacheable = n->event_id >= 0 && n->event_id < EB_PIPE_MAX_EVENTS && n->db >= 0 &&
                     n->db < EB_PIPE_CACHED_DBS;
    if (cacheable && cache[n->event_id][n->db])
        return cache[n->event_id][n->db];
    char db[16];
    snprintf(db, sizeof(db), "%d", n->db);
    const char *labels[] = {n->event, db};
    eb_series_t *s = eb_metrics_series(f, labels);
    if (cacheable)
        cache[n->event_id][n->db] = s;
    return s;
}

static struct inflight *inflight_get(eb_pipeline_t *p) {
    struct inflight *r = p->free_list;
    if (r) {
        p->free_list = r->next_free;
        return r;
    }
    return malloc(sizeof(*r));
}

static void inflight_put(eb_pipeline_t *p, struct inflight *r) {
    r->next_free = p->free_list;
    p->free_list = r;
}

static void log_drop(eb_pipeline_t *p, struct eb_log_limit *limit, const char *msg,
                     const struct route_stats *rs, const struct eb_notification *n,
                     const char *reason, size_t size) {
    uint64_t suppressed = 0;
    if (!eb_log_limit_allow(limit, 1000, &suppressed))
        return;
    eb_log(p->log, EB_LOG_ERROR, msg, eb_lf_str("route", rs->route), eb_lf_str("topic", rs->topic),
           eb_lf_bytes("key", n->key, n->key_len), eb_lf_int("db", n->db),
           eb_lf_str("reason", reason), eb_lf_int("size", (int64_t)size),
           eb_lf_int("similar_suppressed", (int64_t)suppressed));
}

/* Hand one encoded event to the sink; counts every outcome. A ledger
 * ticket (NULL for plain events) rides along to the delivery report; when
 * the event is not handed over, the ledger hears so at once. */
static void produce(eb_pipeline_t *p, struct route_stats *rs, const void *key, size_t key_len,
                    const void *value, size_t value_len, const struct eb_header *headers,
                    size_t nheaders, const struct eb_event *ev, const struct eb_notification *n,
                    eb_ledger_ticket_t *ticket) {
    struct inflight *rec = inflight_get(p);
    const char *reason = NULL;
    int rc = rec && rs->kt && key
                 ? eb_kafka_sink_produce(p->sink, rs->kt, key, key_len, value, value_len, headers,
                                         nheaders, rec, &reason)
                 : EB_ENOMEM;
    if (rc == 0) {
        rec->rs = rs;
        rec->recv_mono_ns = n->recv_mono_ns;
        rec->ticket = ticket;
        rec->deadline_ms = ev->deadline_ms;
        return;
    }
    if (rec)
        inflight_put(p, rec);
    if (ticket)
        eb_ledger_done(p->ledger, ticket, false);
    p->totals.dropped++;
    if (rc == EB_EFULL) {
        eb_metrics_inc(rs->dropped_full); /* the sink logs the episode */
    } else if (rc == EB_ETOOBIG) {
        eb_metrics_inc(rs->dropped_too_big);
        log_drop(p, &p->limit_too_big,
                 "event larger than Kafka's message.max.bytes; dropped (raise message.max.bytes "
                 "in kafka.client and on the topic, or shorten the key)",
                 rs, n, reason, value_len + key_len);
    } else {
        eb_metrics_inc(rs->dropped_error);
        log_drop(p, &p->limit_error, "kafka refused event; dropped", rs, n,
                 reason ? reason : eb_error_str(rc), value_len);
    }
}

/* Encode ev into p->enc; false (the drop counted, the ledger told) when
 * it cannot be encoded. */
static bool encode(eb_pipeline_t *p, struct route_stats *rs, enum eb_event_format fmt,
                   const struct eb_header *headers, size_t nheaders, const struct eb_event *ev,
                   const struct eb_notification *n, eb_ledger_ticket_t *ticket) {
    if (eb_event_encode(ev, fmt, headers, nheaders, &p->enc) == 0)
        return true;
    eb_metrics_inc(rs->dropped_error);
    p->totals.dropped++;
    log_drop(p, &p->limit_error, "cannot encode event; dropped", rs, n, "encode", 0);
    if (ticket)
        eb_ledger_done(p->ledger, ticket, false);
    return false;
}

/* Encode ev in the route's format and produce it. */
static void forward(eb_pipeline_t *p, struct route_stats *rs, enum eb_event_format fmt,
                    const struct eb_header *headers, size_t nheaders, const struct eb_event *ev,
                    const struct eb_match *m, const struct eb_notification *n,
                    eb_ledger_ticket_t *ticket) {
    if (!encode(p, rs, fmt, headers, nheaders, ev, n, ticket))
        return;
    eb_buf_reset(&p->kbuf);
    if (m)
        eb_router_render_key(p->cfg->router, m, n->key, n->key_len, n->db, n->event, &p->kbuf);
    else
        eb_buf_append(&p->kbuf, n->key, n->key_len);
    produce(p, rs, eb_buf_ok(&p->kbuf) ? (p->kbuf.data ? p->kbuf.data : "") : NULL, p->kbuf.len,
            p->enc.value.data, p->enc.value.len, p->enc.headers, p->enc.nheaders, ev, n, ticket);
}

/* The identity of a ledgered timer for plugin_held.h. */
static struct eb_plugin_timer held_timer(const struct route_rt *rt, const struct eb_event *ev) {
    return (struct eb_plugin_timer){.route = rt->cfg->name, .db = ev->db, .key = ev->key,
                                    .key_len = ev->key_len, .deadline_ms = ev->deadline_ms};
}

/* Forget held timers not failed again for three retry periods (a claim
 * runs out after claim_ttl, then a sweep takes up to two intervals to hand
 * the timer back). Returns now. */
static int64_t held_expire(eb_pipeline_t *p) {
    const struct eb_config_ledger *lc = &p->cfg->ledger;
    int64_t now = eb_mono_ns(), period_ms = lc->claim_ttl_ms + 2 * (int64_t)lc->sweep_interval_ms;
    eb_plugin_held_expire(p->held, now, 3 * period_ms * 1000000);
    return now;
}

/* A ledgered timer (an entry with its deadline) that a plugin failed, on a
 * route without a dead_letter topic: at-least-once keeps it in the ledger,
 * unacknowledged and retried each time its claim runs out, and held in the
 * gauge meanwhile (docs/plugins.md). Not a drop. */
static void plugin_held(eb_pipeline_t *p, const struct route_rt *rt, const struct eb_event *ev,
                        const struct eb_notification *n, eb_ledger_ticket_t *ticket) {
    struct eb_plugin_event *pe = &p->pe;
    uint64_t suppressed = 0;
    bool untracked;
    struct eb_plugin_timer t = held_timer(rt, ev);
    size_t held = eb_plugin_held_fail(p->held, &t, held_expire(p), &untracked);
    if (eb_log_limit_allow(&p->limit_plugin, 1000, &suppressed))
        eb_log(p->log, EB_LOG_ERROR,
               "plugin failed a ledgered timer; it stays in the ledger and is retried each time "
               "its claim runs out (fix the plugin, or give the route a dead_letter topic)",
               eb_lf_str("route", rt->cfg->name), eb_lf_str("plugin", pe->failed),
               eb_lf_str("reason", pe->reason), eb_lf_bytes("key", n->key, n->key_len),
               eb_lf_int("route_timers_held", (int64_t)held),
               eb_lf_bool("held_at_least", untracked),
               eb_lf_int("similar_suppressed", (int64_t)suppressed));
    eb_ledger_done(p->ledger, ticket, false);
}

/* A plugin failed the event: to the dead_letter topic as the plain
 * CloudEvent (the event as it was before the plugins, in the route's
 * format) with an eb-plugin-error header, or held in the ledger
 * (plugin_held()), or counted and dropped. */
static void plugin_failed(eb_pipeline_t *p, const struct route_rt *rt, struct route_stats *rs,
                          const struct eb_event *ev, const struct eb_match *m,
                          const struct eb_notification *n, eb_ledger_ticket_t *ticket) {
    struct eb_plugin_event *pe = &p->pe;
    char why[300];
    uint64_t suppressed = 0;
    snprintf(why, sizeof(why), "%s: %s", pe->failed, pe->reason);
    p->totals.plugin_errors++;
    if (!rt->dlq && ticket && rt->cfg->ledger != EB_LEDGER_OFF && ev->deadline_ms >= 0) {
        plugin_held(p, rt, ev, n, ticket);
        return;
    }
    if (eb_log_limit_allow(&p->limit_plugin, 1000, &suppressed))
        eb_log(p->log, EB_LOG_ERROR,
               rt->dlq ? "plugin failed an event; sent to the dead_letter topic"
                       : "plugin failed an event; dropped (the route has no dead_letter topic)",
               eb_lf_str("route", rs->route), eb_lf_str("plugin", pe->failed),
               eb_lf_str("reason", pe->reason), eb_lf_bytes("key", n->key, n->key_len),
               eb_lf_int("similar_suppressed", (int64_t)suppressed));
    if (!rt->dlq) {
        eb_metrics_inc(rs->dropped_plugin);
        p->totals.dropped++;
        if (ticket)
            eb_ledger_done(p->ledger, ticket, false);
        return;
    }
    struct eb_header hs[EB_EVENT_MAX_HEADERS];
    size_t nh = rt->nheaders < EB_EVENT_MAX_HEADERS - 8 ? rt->nheaders : EB_EVENT_MAX_HEADERS - 8;
    if (nh)
        memcpy(hs, rt->headers, nh * sizeof(hs[0]));
    hs[nh++] = (struct eb_header){"eb-plugin-error", why, strlen(why)};
    eb_metrics_inc(rs->dead_lettered);
    p->totals.dead_lettered++;
    forward(p, rt->dlq, rt->cfg->format, hs, nh, ev, m, n, ticket);
}

/* A route with plugins: run them, then encode (unless an encoder did) and
 * produce to the topic they leave. */
static void forward_plugins(eb_pipeline_t *p, const struct route_rt *rt, const struct eb_event *ev,
                            const struct eb_match *m, const struct eb_notification *n,
                            eb_ledger_ticket_t *ticket) {
    struct eb_plugin_event *pe = &p->pe;
    struct route_stats *rs = rt->stats;
    eb_plugin_event_begin(pe, ev, rt->cfg->topic, p->cfg->router, m, rt->headers, rt->nheaders);
    int rc = eb_plugin_chain_run(rt->chain, pe);
    if (ticket && eb_plugin_held_count(p->held)) {
        /* A held timer the plugins let through now (or that goes to the
         * dead_letter topic) is no longer held; an old one is forgotten. */
        struct eb_plugin_timer t = held_timer(rt, ev);
        if (rc != EB_PLUGIN_RUN_ERROR || rt->dlq)
            eb_plugin_held_release(p->held, &t);
        held_expire(p);
    }
    if (rc == EB_PLUGIN_RUN_DROP) {
        eb_metrics_inc(rs->filtered);
        p->totals.filtered++;
        if (ticket) /* on purpose: the timer is done */
            eb_ledger_done(p->ledger, ticket, true);
        return;
    }
    if (rc != EB_PLUGIN_RUN_CONTINUE) {
        plugin_failed(p, rt, rs, ev, m, n, ticket);
        return;
    }
    if (pe->topic_changed && !(rs = get_stats(p, rt->cfg->name, pe->topic))) {
        snprintf(pe->reason, sizeof(pe->reason), "out of memory");
        plugin_failed(p, rt, rt->stats, ev, m, n, ticket);
        return;
    }
    size_t nh, klen;
    const struct eb_header *hs = eb_plugin_event_headers(pe, &nh);
    const void *key = eb_plugin_event_key(pe, &klen);
    if (pe->encoded) {
        produce(p, rs, key, klen, pe->out.data, pe->out.len, hs, nh, &pe->ev, n, ticket);
        return;
    }
    if (!encode(p, rs, rt->cfg->format, hs, nh, &pe->ev, n, ticket))
        return;
    produce(p, rs, key, klen, p->enc.value.data, p->enc.value.len, p->enc.headers,
            p->enc.nheaders, &pe->ev, n, ticket);
}

static const char *source_for(eb_pipeline_t *p, int db, char *buf, size_t size) {
    if (db >= 0 && db < EB_PIPE_CACHED_DBS && p->sources[db])
        return p->sources[db];
    snprintf(buf, size, "%s/%d", p->source_base, db);
    return buf;
}

/* Observed-mode bookkeeping (expire, del, persist): the route that would
 * deliver this key's expiry records or forgets its timer. */
static void ledger_bookkeeping(eb_pipeline_t *p, const struct eb_notification *n) {
    struct eb_match m;
    if (p->ledger && eb_router_match(p->cfg->router, n->key, n->key_len, EB_EVENT_EXPIRED_ID, &m))
        eb_ledger_on_bookkeeping(p->ledger, m.rule, n);
}

/* The announcing node for the event's `redisnode` attribute: with Sentinel
 * and Cluster `source` names the deployment (stable across failovers, so
 * copies keep one (source, id)), and this says which master spoke.
 * Standalone: `source` is the node already. */
static const char *node_for(const eb_pipeline_t *p, const struct eb_notification *n) {
    return p->cfg->redis.target.topology == EB_REDIS_STANDALONE ? NULL : n->node;
}

void eb_pipeline_on_notification(const struct eb_notification *n, void *opaque) {
    eb_pipeline_t *p = opaque;
    struct eb_match m;
    char srcbuf[600];
    /* 0 unless a route is observed: one test on the hot path. */
    if (p->cfg->ledger_events >> n->event_id & 1) {
        ledger_bookkeeping(p, n);
        /* Subscribed for the ledger only: not an event of any route, so not
         * counted as received (received = routed + unrouted). */
        if (!(p->cfg->route_events >> n->event_id & 1))
            return;
    }
    p->totals.received++;
    eb_metrics_inc(event_db_series(p->f_received, p->received_cache, n));
    struct eb_event ev = {
        .event = n->event,
        .key = n->key,
        .key_len = n->key_len,
        .db = n->db,
        .source = source_for(p, n->db, srcbuf, sizeof(srcbuf)),
        .node = node_for(p, n),
        .delivery = EB_DELIVERY_LIVE,
        .time_us = n->recv_real_us,
        .deadline_ms = -1,
    };
    if (!eb_router_match(p->cfg->router, n->key, n->key_len, n->event_id, &m)) {
        p->totals.unrouted++;
        eb_metrics_inc(event_db_series(p->f_unrouted, p->unrouted_cache, n));
        if (p->unrouted_rs)
            forward(p, p->unrouted_rs, p->cfg->unrouted_format, NULL, 0, &ev, NULL, n, NULL);
        return;
    }
    const struct route_rt *rt = &p->routes[m.rule];
    p->totals.routed++;
    eb_metrics_inc(rt->stats->routed);
    if (rt->ledgered && n->event_id == EB_EVENT_EXPIRED_ID && p->ledger) {
        eb_ledger_on_expired(p->ledger, m.rule, n); /* comes back in eb_pipeline_emit_timer() */
        return;
    }
    ev.route = rt->cfg->name;
    ev.params = m.caps;
    ev.nparams = m.ncaps;
    if (rt->chain)
        forward_plugins(p, rt, &ev, &m, n, NULL);
    else
        forward(p, rt->stats, rt->cfg->format, rt->headers, rt->nheaders, &ev, &m, n, NULL);
}

void eb_pipeline_emit_timer(const struct eb_ledger_timer *t, void *opaque) {
    eb_pipeline_t *p = opaque;
    struct eb_match m;
    char srcbuf[600];
    /* Matched again: the configuration may have changed while Redis
     * answered the claim, and the captures point into t->key. */
    if (!eb_router_match(p->cfg->router, t->key, t->key_len, EB_EVENT_EXPIRED_ID, &m)) {
        eb_ledger_done(p->ledger, t->ticket, false);
        return;
    }
    const struct route_rt *rt = &p->routes[m.rule];
    struct eb_notification n = {
        .event = "expired",
        .event_id = EB_EVENT_EXPIRED_ID,
        .db = t->db,
        .key = t->key,
        .key_len = t->key_len,
        .recv_mono_ns = t->recv_mono_ns,
        .recv_real_us = t->recv_real_us,
    };
    struct eb_event ev = {
        .event = n.event,
        .key = t->key,
        .key_len = t->key_len,
        .db = t->db,
        .source = source_for(p, t->db, srcbuf, sizeof(srcbuf)),
        .route = rt->cfg->name,
        .params = m.caps,
        .nparams = m.ncaps,
        .delivery = t->delivery,
        .time_us = t->recv_real_us,
        .deadline_ms = t->deadline_ms,
        .has_payload = t->has_payload,
        .payload_json = t->payload_json,
        .payload_len = t->payload_len,
        .node = p->cfg->redis.target.topology == EB_REDIS_STANDALONE ? NULL : t->node,
    };
    if (rt->chain)
        forward_plugins(p, rt, &ev, &m, &n, t->ticket);
    else
        forward(p, rt->stats, rt->cfg->format, rt->headers, rt->nheaders, &ev, &m, &n, t->ticket);
}

void eb_pipeline_set_ledger(eb_pipeline_t *p, eb_ledger_t *ledger) {
    p->ledger = ledger;
}

void eb_pipeline_on_delivery(void *msg_opaque, int err, const char *reason, int64_t now_mono_ns,
                             void *opaque) {
    eb_pipeline_t *p = opaque;
    struct inflight *rec = msg_opaque;
    struct route_stats *rs = rec->rs;
    if (rec->ticket) {
        if (err == 0 && rec->deadline_ms >= 0 && rs->lateness) {
            int64_t now_ms = eb_real_ms();
            eb_metrics_observe(rs->lateness, (double)(now_ms - rec->deadline_ms) / 1e3);
        }
        eb_ledger_done(p->ledger, rec->ticket, err == 0);
        rec->ticket = NULL;
    }
    if (err == 0) {
        p->totals.produced++;
        eb_metrics_inc(rs->produced);
        eb_metrics_observe(rs->latency, (double)(now_mono_ns - rec->recv_mono_ns) / 1e9);
    } else {
        uint64_t suppressed = 0;
        p->totals.failed++;
        eb_metrics_inc(rs->failed);
        if (eb_log_limit_allow(&p->limit_failed, 1000, &suppressed))
            eb_log(p->log, EB_LOG_ERROR, "kafka did not accept event",
                   eb_lf_str("route", rs->route), eb_lf_str("topic", rs->topic),
                   eb_lf_str("reason", reason),
                   eb_lf_int("similar_suppressed", (int64_t)suppressed));
    }
    inflight_put(p, rec);
}

void eb_pipeline_stats(const eb_pipeline_t *p, struct eb_pipeline_stats *out) {
    *out = p->totals;
    out->inflight = p->sink ? eb_kafka_sink_inflight(p->sink) : 0;
    out->plugin_held = eb_plugin_held_count(p->held);
}

/* Latency quantiles over every route, for the stats line. */
static void latency_quantiles(const eb_pipeline_t *p, double *p50, double *p99) {
    const struct route_stats *worst = NULL;
    uint64_t most = 0;
    for (const struct route_stats *rs = p->all_stats; rs; rs = rs->next) {
        if (eb_metrics_count(rs->latency) > most) {
            most = eb_metrics_count(rs->latency);
            worst = rs;
        }
    }
    *p50 = worst ? eb_metrics_quantile(worst->latency, 0.5) : 0;
    *p99 = worst ? eb_metrics_quantile(worst->latency, 0.99) : 0;
}

void eb_pipeline_log_stats(eb_pipeline_t *p) {
    struct eb_pipeline_stats s;
    double p50, p99;
    held_expire(p); /* the gauge, fresh even when nothing fails any more */
    eb_pipeline_stats(p, &s);
    latency_quantiles(p, &p50, &p99);
    eb_log(p->log, EB_LOG_INFO, "stats", eb_lf_int("received", (int64_t)s.received),
           eb_lf_int("routed", (int64_t)s.routed), eb_lf_int("unrouted", (int64_t)s.unrouted),
           eb_lf_int("produced", (int64_t)s.produced), eb_lf_int("failed", (int64_t)s.failed),
           eb_lf_int("dropped", (int64_t)s.dropped), eb_lf_int("inflight", (int64_t)s.inflight),
           eb_lf_int("filtered", (int64_t)s.filtered),
           eb_lf_int("plugin_errors", (int64_t)s.plugin_errors),
           eb_lf_int("plugin_held", (int64_t)s.plugin_held),
           eb_lf_int("dead_lettered", (int64_t)s.dead_lettered),
           eb_lf_dbl("latency_p50_busiest_route_s", p50),
           eb_lf_dbl("latency_p99_busiest_route_s", p99));
}

void eb_pipeline_destroy(eb_pipeline_t *p) {
    if (!p)
        return;
    free_routes(p->routes, p->nroutes);
    free_sources(p);
    while (p->all_stats) {
        struct route_stats *rs = p->all_stats;
        p->all_stats = rs->next;
        free(rs->route);
        free(rs->topic);
        free(rs);
    }
    while (p->free_list) {
        struct inflight *r = p->free_list;
        p->free_list = r->next_free;
        free(r);
    }
    eb_event_encoded_free(&p->enc);
    eb_buf_free(&p->kbuf);
    eb_plugin_event_free(&p->pe);
    eb_plugin_set_destroy(p->plugins);
    eb_plugin_held_destroy(p->held);
    free(p);
}
