/* app.c -- the daemon's lifecycle (contract in app.h): build the modules
 * from a configuration, run the loop, reload on SIGHUP, drain on SIGTERM.
 * No per-event logic lives here: config -> redis_source -> pipeline
 * (router, event) -> kafka_sink.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "app.h"
#include "cli.h"
#include "config.h"
#include "error.h"
#include "kafka_sink.h"
#include "log.h"
#include "metrics.h"
#include "notify_flags.h"
#include "pipeline.h"
#include "redis_source.h"
#include "router.h"
#include "version.h"

/* How often the drain checks whether everything in flight was acknowledged. */
#define EB_DRAIN_POLL_MS 20

struct app {
    eb_log_t *log;
    eb_metrics_t *metrics;
    struct event_base *base;
    struct eb_config *cfg;
    eb_pipeline_t *pipeline;
    eb_kafka_sink_t *sink;
    eb_redis_source_t *source;
    struct event *sig_term, *sig_int, *sig_hup, *stats_ev, *drain_ev;
    int64_t drain_deadline_ms;
    bool stopping;
    eb_series_t *reload_ok, *reload_failed;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ check */

static void print_events(FILE *out, uint64_t mask) {
    const char *sep = "";
    for (int i = 0; i < eb_notify_event_count(); i++) {
        if (mask & (UINT64_C(1) << i)) {
            fprintf(out, "%s%s", sep, eb_notify_event_name(i));
            sep = ",";
        }
    }
}

int eb_app_check(const char *path) {
    char errstr[8192];
    struct eb_config *cfg = NULL;
    if (eb_config_load(path, &cfg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "%s\n", errstr);
        fprintf(stderr, "%s: configuration is invalid\n", path);
        return EB_EXIT_CONFIG;
    }
    char url[512];
    eb_log_redact_url(cfg->redis.url, url, sizeof(url));
    printf("%s: OK\n  redis: %s\n  kafka: %s\n  routes: %zu\n", path, url, cfg->kafka.brokers,
           cfg->nroutes);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct eb_config_route *r = &cfg->routes[i];
        printf("    %-28s %-44s -> %s  [", r->name, r->match, r->topic);
        print_events(stdout, r->events);
        printf("] key=%s format=%s\n", r->key ? r->key : "{key}", eb_event_format_name(r->format));
    }
    printf("  unrouted: %s\n", cfg->unrouted_drop ? "drop" : cfg->unrouted_topic);
    eb_config_free(cfg);
    return EB_EXIT_OK;
}

/* -------------------------------------------------------------- lifecycle */

static void on_drain_tick(evutil_socket_t fd, short what, void *arg) {
    struct app *a = arg;
    if (eb_kafka_sink_inflight(a->sink) == 0 || now_ms() >= a->drain_deadline_ms)
        event_base_loopexit(a->base, NULL);
}

/* Stop reading Redis, then keep the loop turning (delivery reports, /metrics)
 * until Kafka acknowledged everything or the drain budget is spent. */
static void begin_shutdown(struct app *a, const char *why) {
    if (a->stopping)
        return;
    a->stopping = true;
    eb_log(a->log, EB_LOG_INFO, "shutting down: no longer reading Redis, draining in-flight events",
           eb_lf_str("signal", why),
           eb_lf_int("inflight", (int64_t)eb_kafka_sink_inflight(a->sink)),
           eb_lf_int("drain_timeout_ms", a->cfg->kafka.drain_timeout_ms));
    eb_redis_source_stop(a->source);
    a->drain_deadline_ms = now_ms() + a->cfg->kafka.drain_timeout_ms;
    struct timeval tv = {0, EB_DRAIN_POLL_MS * 1000};
    a->drain_ev = event_new(a->base, -1, EV_PERSIST, on_drain_tick, a);
    if (!a->drain_ev || event_add(a->drain_ev, &tv) != 0)
        event_base_loopexit(a->base, NULL);
}

/* SIGHUP: load the file again; a valid one replaces the routes between two
 * notifications (the loop is single-threaded, so no event sees half a
 * swap); an invalid one is logged and counted, and the old routes stay. */
static void reload(struct app *a) {
    char errstr[8192];
    struct eb_config *next = NULL;
    if (eb_config_load(a->cfg->path, &next, errstr, sizeof(errstr)) != 0) {
        eb_series_inc(a->reload_failed);
        eb_log(a->log, EB_LOG_ERROR, "config reload rejected; keeping the current routes",
               eb_lf_str("path", a->cfg->path), eb_lf_str("error", errstr));
        return;
    }
    if (eb_config_needs_reconnect(a->cfg, next))
        eb_log(a->log, EB_LOG_WARN,
               "config reload: connection settings changed; they apply after a restart, routes "
               "apply now",
               eb_lf_str("path", next->path));
    if (eb_pipeline_set_config(a->pipeline, next) != 0 ||
        eb_redis_source_set_events(a->source, next->events) != 0) {
        eb_series_inc(a->reload_failed);
        eb_log(a->log, EB_LOG_ERROR,
               "config reload failed (out of memory); keeping the current routes");
        eb_pipeline_set_config(a->pipeline, a->cfg);
        eb_config_free(next);
        return;
    }
    eb_config_free(a->cfg);
    a->cfg = next;
    eb_log_set_level(a->log, next->log_level);
    eb_series_inc(a->reload_ok);
    eb_log(a->log, EB_LOG_INFO, "config reloaded", eb_lf_str("path", next->path),
           eb_lf_int("routes", (int64_t)next->nroutes));
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    struct app *a = arg;
    if (sig == SIGHUP) {
        if (!a->stopping)
            reload(a);
        return;
    }
    begin_shutdown(a, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_stats(evutil_socket_t fd, short what, void *arg) {
    eb_pipeline_log_stats(((struct app *)arg)->pipeline);
}

static void on_redis_state(enum eb_redis_state state, void *opaque) {
    (void)state;
    (void)opaque; /* the source logs its own transitions; /readyz reads the state */
}

/* -------------------------------------------------------------------- run */

static int register_app_metrics(struct app *a) {
    eb_metric_t *info =
        eb_metrics_add(a->metrics, EB_METRIC_GAUGE, "eb_build_info",
                       "Build information; the value is always 1.", "version", NULL, 0);
    eb_metric_t *reloads =
        eb_metrics_add(a->metrics, EB_METRIC_COUNTER, "eb_config_reloads_total",
                       "Configuration reloads by result (ok, failed).", "result", NULL, 0);
    if (!info || !reloads)
        return EB_ENOMEM;
    const char *version[] = {EB_VERSION_STR};
    const char *ok[] = {"ok"}, *failed[] = {"failed"};
    eb_series_set(eb_metric_series(info, version), 1);
    a->reload_ok = eb_metric_series(reloads, ok);
    a->reload_failed = eb_metric_series(reloads, failed);
    return 0;
}

static int make_sink(struct app *a, char *errstr, size_t errstr_size) {
    struct eb_kafka_sink_conf kc = {
        .brokers = a->cfg->kafka.brokers,
        .client = a->cfg->kafka.client,
        .nclient = a->cfg->kafka.nclient,
        .queue_max_events = a->cfg->kafka.queue_max_events,
        .queue_max_bytes = a->cfg->kafka.queue_max_bytes,
        .log = a->log,
        .metrics = a->metrics,
        .on_delivery = eb_pipeline_on_delivery,
        .opaque = a->pipeline,
    };
    a->sink = eb_kafka_sink_new(a->base, &kc, errstr, errstr_size);
    if (!a->sink)
        return EB_EKAFKA;
    eb_pipeline_set_sink(a->pipeline, a->sink);
    return 0;
}

static int make_source(struct app *a, char *errstr, size_t errstr_size) {
    const struct eb_config_redis *r = &a->cfg->redis;
    struct eb_redis_source_conf rc = {
        .host = r->host,
        .port = r->port,
        .username = r->username,
        .password = r->password,
        .all_databases = r->all_databases,
        .databases = r->databases,
        .ndatabases = r->ndatabases,
        .events = a->cfg->events,
        .configure_notifications = r->configure_notifications,
        .connect_timeout_ms = r->connect_timeout_ms,
        .heartbeat_interval_ms = r->heartbeat_interval_ms,
        .heartbeat_timeout_ms = r->heartbeat_timeout_ms,
        .reconnect_min_ms = r->reconnect_min_ms,
        .reconnect_max_ms = r->reconnect_max_ms,
        .log = a->log,
        .metrics = a->metrics,
        .on_notification = eb_pipeline_on_notification,
        .on_state = on_redis_state,
        .opaque = a->pipeline,
    };
    a->source = eb_redis_source_new(a->base, &rc, errstr, errstr_size);
    return a->source ? 0 : EB_EREDIS;
}

static int add_loop_events(struct app *a) {
    a->sig_term = evsignal_new(a->base, SIGTERM, on_signal, a);
    a->sig_int = evsignal_new(a->base, SIGINT, on_signal, a);
    a->sig_hup = evsignal_new(a->base, SIGHUP, on_signal, a);
    if (!a->sig_term || !a->sig_int || !a->sig_hup || evsignal_add(a->sig_term, NULL) ||
        evsignal_add(a->sig_int, NULL) || evsignal_add(a->sig_hup, NULL))
        return EB_ENOMEM;
    if (a->cfg->stats_interval_ms > 0) {
        struct timeval tv = {a->cfg->stats_interval_ms / 1000,
                             (a->cfg->stats_interval_ms % 1000) * 1000};
        a->stats_ev = event_new(a->base, -1, EV_PERSIST, on_stats, a);
        if (!a->stats_ev || event_add(a->stats_ev, &tv))
            return EB_ENOMEM;
    }
    return 0;
}

/* The deadline ledger (ledger: armed/observed) arrives in a later version;
 * until then a route that asks for it must not silently run without it. */
static bool refuse_unsupported(struct app *a) {
    for (size_t i = 0; i < a->cfg->nroutes; i++) {
        const struct eb_config_route *r = &a->cfg->routes[i];
        if (r->ledger != EB_LEDGER_OFF || r->payload) {
            eb_log(a->log, EB_LOG_ERROR,
                   "route asks for the deadline ledger or a companion payload, which this "
                   "version does not provide; set ledger: off and remove payload",
                   eb_lf_str("route", r->name), eb_lf_str("path", a->cfg->path));
            return true;
        }
    }
    return false;
}

static void free_loop_events(struct app *a) {
    struct event *evs[] = {a->sig_term, a->sig_int, a->sig_hup, a->stats_ev, a->drain_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (evs[i])
            event_free(evs[i]);
    }
}

static int finish(struct app *a) {
    size_t left = a->sink ? eb_kafka_sink_inflight(a->sink) : 0;
    if (a->pipeline)
        eb_pipeline_log_stats(a->pipeline);
    if (left)
        eb_log(a->log, EB_LOG_ERROR,
               "stopped with events still undelivered: Kafka did not acknowledge them within "
               "kafka.drain_timeout",
               eb_lf_int("undelivered", (int64_t)left));
    else
        eb_log(a->log, EB_LOG_INFO, "stopped; every event handed over was acknowledged by Kafka");
    return left ? EB_EXIT_UNDELIVERED : EB_EXIT_OK;
}

int eb_app_run(const char *path) {
    struct app a = {0};
    char errstr[8192];
    int exit_code = EB_EXIT_FAILURE;
    a.log = eb_log_new(2, EB_LOG_INFO);
    if (!a.log)
        return EB_EXIT_FAILURE;
    if (eb_config_load(path, &a.cfg, errstr, sizeof(errstr)) != 0) {
        eb_log(a.log, EB_LOG_ERROR, "configuration is invalid; not starting",
               eb_lf_str("path", path), eb_lf_str("error", errstr));
        exit_code = EB_EXIT_CONFIG;
        goto out_free_log;
    }
    eb_log_set_level(a.log, a.cfg->log_level);
    if (refuse_unsupported(&a)) {
        exit_code = EB_EXIT_CONFIG;
        goto out_free_config;
    }

    /* librdkafka starts threads that inherit the signal mask: block the
     * signals we handle before creating it, unblock them afterwards on this
     * thread only, so they are always delivered to the loop. */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);

    a.base = event_base_new();
    a.metrics = eb_metrics_new();
    struct eb_pipeline_conf pc = {.log = a.log, .metrics = a.metrics};
    if (!a.base || !a.metrics || register_app_metrics(&a) ||
        !(a.pipeline = eb_pipeline_new(&pc, a.cfg, errstr, sizeof(errstr))) ||
        make_sink(&a, errstr, sizeof(errstr)) || make_source(&a, errstr, sizeof(errstr)) ||
        add_loop_events(&a)) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        eb_log(a.log, EB_LOG_ERROR, "cannot start", eb_lf_str("error", errstr));
        goto out_destroy;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    char url[512];
    eb_log_redact_url(a.cfg->redis.url, url, sizeof(url));
    eb_log(a.log, EB_LOG_INFO, "expiry-bridge starting", eb_lf_str("version", EB_VERSION_STR),
           eb_lf_str("config", path), eb_lf_str("redis", url),
           eb_lf_str("kafka", a.cfg->kafka.brokers), eb_lf_int("routes", (int64_t)a.cfg->nroutes));
    if (eb_redis_source_start(a.source) != 0)
        goto out_destroy;
    event_base_dispatch(a.base);
    exit_code = finish(&a);

out_destroy:
    eb_redis_source_destroy(a.source);
    eb_kafka_sink_destroy(a.sink); /* reports leftovers to the pipeline: before it */
    eb_pipeline_destroy(a.pipeline);
    free_loop_events(&a);
    eb_metrics_destroy(a.metrics);
    if (a.base)
        event_base_free(a.base);
out_free_config:
    eb_config_free(a.cfg);
out_free_log:
    eb_log_destroy(a.log);
    return exit_code;
}
