/* app.c -- the daemon's lifecycle (contract in app.h): load the
 * configuration, build the modules and wire them, run the loop, hand
 * signals to the module whose job they start. No per-event logic and no
 * state machine lives here:
 *
 *   reload.c   the event path (producer, Redis source, ledger) and its
 *              replacement by a reloaded file
 *   retire.c   what a reload replaced, kept until done with, then closed
 *              (librdkafka handles off the loop, on the reaper's thread)
 *   drain.c    SIGTERM: the loop turns until everything is acknowledged
 *   http.c, config_watch.c   /metrics and probes; file changes
 *
 * plus the pipeline and the read-ahead backlog (bridge/), which live as
 * long as the process. The process settings of a file (log level, stats
 * interval, HTTP address) are applied here, at start and on every
 * accepted reload.
 *
 * @locality loop thread only; librdkafka's threads never call in here.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "bridge/backlog.h"
#include "bridge/pipeline.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/notify.h"
#include "core/version.h"
#include "daemon/app.h"
#include "daemon/cli.h"
#include "daemon/config_watch.h"
#include "daemon/drain.h"
#include "daemon/http.h"
#include "daemon/reload.h"
#include "daemon/retire.h"
#include "kafka/kafka_props.h"
#include "ledger/ledger.h"
#include "plugin/plugin_host.h"
#include "redis/redis_conn.h"

/* libevent priorities: 0 unused, 1 for every event (reads, delivery
 * reports, timers, HTTP), 2 for handing the read-ahead backlog to the
 * pipeline, so a burst waits in our bounded memory, not in Redis's output
 * buffer, where overflowing it costs the subscription. */
#define EB_APP_PRIORITIES       3
#define EB_APP_PRIORITY_BACKLOG 2

struct app {
    eb_log_t *log;
    eb_metrics_t *metrics;
    struct event_base *base;
    const char *path; /* borrowed from argv */
    struct eb_config_checks checks;
    eb_plugin_loader_t *plugins; /* the plugins loaded (plugin_host.h) */
    eb_strpool_t *names;         /* Redis node names: outlives every notification */

    eb_pipeline_t *pipeline;
    eb_backlog_t *backlog; /* read-ahead: sources push, the pipeline drains */
    eb_retire_t *retire;
    eb_reload_t *reload; /* the event path in use */
    eb_drain_t *drain;   /* after SIGTERM */

    eb_http_t *http;          /* NULL when http.listen is empty */
    eb_config_watch_t *watch; /* NULL when inotify is unavailable */

    struct event *sig_term, *sig_int, *sig_hup, *stats_ev;
    int stats_interval_ms; /* what stats_ev is armed with; 0: off */
    struct event *leave_ev; /* SIGTERM with coordination: the handover grace */
    bool stopping;
};

/* ------------------------------------------------------------------ check */

/* What config/ cannot judge alone: librdkafka judges kafka.client, the
 * hiredis build says whether rediss:// can work, and plugins (loaded by
 * plugins, when not NULL) judge their own settings. */
static struct eb_config_checks config_checks(eb_plugin_loader_t *plugins) {
    struct eb_config_checks checks = {
        .client_props = eb_kafka_props_check,
        .redis_tls_unavailable = eb_redis_conn_tls_unavailable(),
        .plugins = plugins ? eb_plugin_loader_check_config : NULL,
        .plugins_opaque = plugins,
    };
    return checks;
}

/* eb_config_load() with those checks. */
static int load_config(eb_plugin_loader_t *plugins, const char *path, struct eb_config **out,
                       char *errstr, size_t errstr_size) {
    const struct eb_config_checks checks = config_checks(plugins);
    return eb_config_load(path, &checks, out, errstr, errstr_size);
}

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
    eb_plugin_loader_t *plugins = eb_plugin_loader_new(NULL, NULL, NULL);
    int rc = load_config(plugins, path, &cfg, errstr, sizeof(errstr));
    eb_plugin_loader_destroy(plugins);
    if (rc != 0) {
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

int eb_app_functions_load(const char *path) {
    char errstr[8192];
    struct eb_config *cfg = NULL;
    if (load_config(NULL, path, &cfg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "%s\n%s: configuration is invalid\n", errstr, path);
        return EB_EXIT_CONFIG;
    }
    char url[512];
    size_t len;
    eb_log_redact_url(cfg->redis.url, url, sizeof(url));
    eb_ledger_library(&len);
    size_t nodes = 0;
    int rc = eb_ledger_install(cfg, &nodes, errstr, sizeof(errstr));
    if (rc == 0 && cfg->redis.target.topology == EB_REDIS_CLUSTER)
        printf("%s: loaded eb_timers_v1 on %zu masters (%zu bytes; FCALL eb1_arm, eb1_disarm, "
               "eb1_rearm)\n",
               url, nodes, len);
    else if (rc == 0)
        printf("%s: loaded eb_timers_v1 (%zu bytes; FCALL eb1_arm, eb1_disarm, eb1_rearm)\n", url,
               len);
    else
        fprintf(stderr, "%s: %s\n", url, errstr);
    eb_config_free(cfg);
    /* A TLS certificate file that does not load is the configuration's
     * fault, not Redis's: nothing was connected. */
    return rc == 0 ? EB_EXIT_OK : rc == EB_ECONFIG ? EB_EXIT_CONFIG : EB_EXIT_UNAVAILABLE;
}

/* ----------------------------------------------------- process settings */

static void on_ready(struct eb_http_readiness *out, void *opaque);

static eb_http_t *make_http(struct app *a, const char *listen, char *errstr, size_t errstr_size) {
    struct eb_http_conf hc = {
        .listen = listen,
        .metrics = a->metrics,
        .log = a->log,
        .ready = on_ready,
        .opaque = a,
    };
    return eb_http_new(a->base, &hc, errstr, errstr_size);
}

static void set_stats_interval(struct app *a, int ms) {
    if (ms == a->stats_interval_ms)
        return;
    event_del(a->stats_ev);
    a->stats_interval_ms = ms;
    if (ms > 0) {
        struct timeval tv = eb_ms_tv(ms);
        event_add(a->stats_ev, &tv);
    }
}

/* Move the HTTP server to `listen` ("" or NULL: stop it). Best effort: when
 * the new address cannot be bound the old server stays. Freeing the old
 * one first is tried too, since 127.0.0.1:P -> 0.0.0.0:P collides with our
 * own socket. */
static void move_http(struct app *a, const char *listen) {
    char err[512], err2[512];
    const char *want = listen ? listen : "";
    const char *cur = a->http ? eb_http_listen(a->http) : "";
    if (strcmp(cur, want) == 0)
        return;
    if (!*want) {
        eb_http_destroy(a->http);
        a->http = NULL;
        eb_log(a->log, EB_LOG_INFO, "http server stopped: http.listen is empty now");
        return;
    }
    eb_http_t *h = make_http(a, want, err, sizeof(err));
    if (!h && a->http) {
        char *old = strdup(cur);
        eb_http_destroy(a->http);
        a->http = NULL;
        h = make_http(a, want, err, sizeof(err));
        if (!h && old)
            a->http = make_http(a, old, err2, sizeof(err2));
        free(old);
    }
    if (!h) {
        eb_log(
            a->log, EB_LOG_ERROR, "http.listen change not applied; the server stays where it was",
            eb_lf_str("error", err), eb_lf_str("listen", a->http ? eb_http_listen(a->http) : ""));
        return;
    }
    eb_http_destroy(a->http);
    a->http = h;
}

/* eb_reload_apply_cb: a reloaded file's process settings. */
static void apply_process_settings(const struct eb_config *cfg, void *opaque) {
    struct app *a = opaque;
    eb_log_set_level(a->log, cfg->log_level);
    set_stats_interval(a, cfg->stats_interval_ms);
    move_http(a, cfg->http_listen);
}

/* eb_config_watch_cb. @locality loop thread. */
static void on_file_changed(const char *trigger, void *opaque) {
    eb_reload_file(((struct app *)opaque)->reload, trigger);
}

/* eb_notification_cb of the backlog: notifications leave it, in order, when
 * no Redis read is ready.
 * @locality loop thread (lowest-priority event). */
static void on_backlog(const struct eb_notification *n, void *opaque) {
    /* With coordination, what reaches here was read in this replica's turn
     * (handover.h): it is produced even if the unit has moved on since --
     * the next owner produces from its own marker only. */
    eb_pipeline_on_notification(n, ((struct app *)opaque)->pipeline);
}

/* ------------------------------------------------------ health, metrics */

/* eb_http_ready_cb. */
static void on_ready(struct eb_http_readiness *out, void *opaque) {
    struct app *a = opaque;
    eb_reload_readiness(a->reload, out);
    out->draining = a->stopping;
}

static int register_app_metrics(struct app *a) {
    eb_metric_t *info = eb_metrics_register(a->metrics, EB_METRIC_GAUGE, "eb_build_info",
                                            "Build information; the value is always 1.",
                                            "version,librdkafka,libevent", NULL, 0);
    if (!info)
        return EB_ENOMEM;
    const char *version[] = {EB_VERSION_STR, rd_kafka_version_str(), event_get_version()};
    eb_metrics_set(eb_metrics_series(info, version), 1);
    return 0;
}

/* @locality loop thread (timer). */
static void on_stats(evutil_socket_t fd, short what, void *arg) {
    struct app *a = arg;
    (void)fd;
    (void)what;
    eb_pipeline_log_stats(a->pipeline);
    eb_reload_log_stats(a->reload);
}

/* ------------------------------------------------------------- shutdown */

/* Events read and not yet acknowledged: in the backlog or in a producer. */
static size_t total_inflight(const struct app *a) {
    return (a->backlog ? eb_backlog_len(a->backlog) : 0) +
           (a->reload ? eb_reload_inflight(a->reload) : 0) +
           (a->retire ? eb_retire_inflight(a->retire) : 0);
}

/* eb_drain_done_cb. The ledger acknowledges in Redis what Kafka
 * confirmed: an exit before that would deliver those timers once more
 * after a restart. */
static bool drained(void *opaque) {
    struct app *a = opaque;
    return total_inflight(a) == 0 && !eb_reload_ledger_busy(a->reload) &&
           eb_reload_left(a->reload);
}

/* Stop reading Redis, then keep the loop turning (delivery reports, /metrics)
 * until Kafka acknowledged everything or the drain budget is spent. */
static void stop_and_drain(struct app *a, const char *why) {
    int timeout_ms = eb_reload_config(a->reload)->kafka.drain_timeout_ms;
    eb_log(a->log, EB_LOG_INFO, "shutting down: no longer reading Redis, draining in-flight events",
           eb_lf_str("signal", why), eb_lf_int("inflight", (int64_t)total_inflight(a)),
           eb_lf_int("drain_timeout_ms", timeout_ms));
    eb_reload_stop(a->reload);
    eb_retire_stop(a->retire);
    a->drain = eb_drain_start(a->base, timeout_ms, drained, a);
}

/* @locality loop thread (timer): the handover grace is over; units not
 * taken over by then stopped producing at its end (handover.h). */
static void on_leave_grace(evutil_socket_t fd, short what, void *arg) {
    struct app *a = arg;
    (void)fd;
    (void)what;
    if (!a->drain)
        stop_and_drain(a, "handover grace over");
}

/* eb_reload_conf.handed_over: the last unit given up was taken over.
 * @locality loop thread. */
static void on_handed_over(void *opaque) {
    struct app *a = opaque;
    if (!a->stopping || a->drain)
        return;
    event_del(a->leave_ev);
    stop_and_drain(a, "every unit handed over");
}

/* With coordination, leave the group first -- the other replicas take
 * this one's units at once -- and read each unit on until its next owner's
 * handover marker (at most coordination.handover_grace), so the stream
 * passes from one to the other with neither gap nor copy (a rolling
 * update); then stop and drain. */
static void begin_shutdown(struct app *a, const char *why) {
    if (a->stopping)
        return;
    a->stopping = true;
    int grace_ms = eb_reload_leave(a->reload);
    if (grace_ms > 0 && a->leave_ev && !eb_reload_handed_over(a->reload)) {
        eb_log(a->log, EB_LOG_INFO,
               "shutting down: left the coordination group; reading on until the others "
               "have taken over, then draining",
               eb_lf_str("signal", why), eb_lf_int("handover_grace_ms", grace_ms));
        struct timeval tv = eb_ms_tv(grace_ms);
        evtimer_add(a->leave_ev, &tv);
        return;
    }
    stop_and_drain(a, why);
}

/* @locality loop thread (libevent signal event). */
static void on_signal(evutil_socket_t sig, short what, void *arg) {
    struct app *a = arg;
    (void)what;
    if (sig == SIGHUP) {
        eb_reload_file(a->reload, "SIGHUP");
        return;
    }
    begin_shutdown(a, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int finish(struct app *a) {
    size_t left = total_inflight(a);
    eb_pipeline_log_stats(a->pipeline);
    eb_reload_log_stats(a->reload);
    if (left)
        eb_log(a->log, EB_LOG_ERROR,
               "stopped with events still undelivered: Kafka did not acknowledge them within "
               "kafka.drain_timeout",
               eb_lf_int("undelivered", (int64_t)left));
    else
        eb_log(a->log, EB_LOG_INFO, "stopped; every event handed over was acknowledged by Kafka");
    return left ? EB_EXIT_UNDELIVERED : EB_EXIT_OK;
}

/* -------------------------------------------------------------------- run */

static int add_loop_events(struct app *a) {
    a->sig_term = evsignal_new(a->base, SIGTERM, on_signal, a);
    a->sig_int = evsignal_new(a->base, SIGINT, on_signal, a);
    a->sig_hup = evsignal_new(a->base, SIGHUP, on_signal, a);
    a->stats_ev = event_new(a->base, -1, EV_PERSIST, on_stats, a);
    a->leave_ev = evtimer_new(a->base, on_leave_grace, a);
    if (!a->sig_term || !a->sig_int || !a->sig_hup || !a->stats_ev || !a->leave_ev ||
        evsignal_add(a->sig_term, NULL) || evsignal_add(a->sig_int, NULL) ||
        evsignal_add(a->sig_hup, NULL))
        return EB_ENOMEM;
    set_stats_interval(a, eb_reload_config(a->reload)->stats_interval_ms);
    return 0;
}

static void free_loop_events(struct app *a) {
    struct event *evs[] = {a->sig_term, a->sig_int, a->sig_hup, a->stats_ev, a->leave_ev};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (evs[i])
            event_free(evs[i]);
    }
}

/* Without inotify (limits reached) the bridge still runs; SIGHUP reloads. */
static void start_watch(struct app *a) {
    char err[512];
    struct eb_config_watch_conf wc = {
        .path = a->path,
        .log = a->log,
        .on_change = on_file_changed,
        .opaque = a,
    };
    a->watch = eb_config_watch_new(a->base, &wc, err, sizeof(err));
    if (!a->watch)
        eb_log(a->log, EB_LOG_WARN, "cannot watch the config file; changes reload only on SIGHUP",
               eb_lf_str("path", a->path), eb_lf_str("error", err));
}

/* Everything that connects or listens, in the order least likely to leave
 * half a start behind: the HTTP port (a clash is the commonest startup
 * error), then the event path (reload.c: the producer, the ledger, the
 * Redis source). cfg is taken. */
static int build(struct app *a, struct eb_config *cfg, char *errstr, size_t errstr_size) {
    struct eb_pipeline_conf pc = {.log = a->log, .metrics = a->metrics, .plugins = a->plugins};
    if (register_app_metrics(a) != 0)
        goto err_nomem;
    if (!(a->pipeline = eb_pipeline_new(&pc, cfg, errstr, errstr_size)))
        goto err_free_cfg;
    struct eb_backlog_conf bc = {
        .max_events = cfg->redis.read_ahead_max_events,
        .max_bytes = cfg->redis.read_ahead_max_bytes,
        .priority = EB_APP_PRIORITY_BACKLOG,
        .deliver = on_backlog,
        .opaque = a,
        .log = a->log,
        .metrics = a->metrics,
    };
    if (!(a->backlog = eb_backlog_new(a->base, &bc, errstr, errstr_size)))
        goto err_free_cfg;
    if (cfg->http_listen && *cfg->http_listen &&
        !(a->http = make_http(a, cfg->http_listen, errstr, errstr_size)))
        goto err_free_cfg;
    if (!(a->retire = eb_retire_new(a->base, a->log, a->metrics, errstr, errstr_size)))
        goto err_free_cfg;
    struct eb_reload_conf rc = {
        .path = a->path,
        .checks = &a->checks,
        .log = a->log,
        .metrics = a->metrics,
        .pipeline = a->pipeline,
        .backlog = a->backlog,
        .retire = a->retire,
        .names = a->names,
        .apply = apply_process_settings,
        .handed_over = on_handed_over,
        .opaque = a,
    };
    if (!(a->reload = eb_reload_new(a->base, &rc, cfg, errstr, errstr_size)))
        goto err_free_cfg;
    if (add_loop_events(a) != 0)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot register loop events");
    return 0;

err_nomem:
    eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
err_free_cfg:
    /* The pipeline's routes point into cfg: it goes first. */
    eb_pipeline_destroy(a->pipeline);
    a->pipeline = NULL;
    eb_config_free(cfg);
    return EB_EIO;
}

static void teardown(struct app *a) {
    /* What a reload replaced, then the event path in use: sources first
     * (nothing more is read), then producers (a purge reports leftovers
     * to the pipeline), then the ledger; then the pipeline. The current
     * producer's librdkafka handle is destroyed here, on the main thread:
     * the loop has stopped, nothing waits on it any more. */
    eb_retire_destroy(a->retire);
    eb_reload_destroy(a->reload);
    eb_backlog_destroy(a->backlog); /* only a timed-out drain leaves anything */
    eb_pipeline_destroy(a->pipeline);
    eb_plugin_loader_destroy(a->plugins); /* after the pipeline: it holds the instances */
    eb_drain_destroy(a->drain);
    eb_http_destroy(a->http);
    eb_config_watch_destroy(a->watch);
    free_loop_events(a);
    eb_metrics_destroy(a->metrics);
    eb_strpool_destroy(a->names); /* last: anything left may still point into it */
    if (a->base)
        event_base_free(a->base);
}

int eb_app_run(const char *path) {
    struct app a = {0};
    char errstr[8192];
    struct eb_config *cfg = NULL;
    int exit_code = EB_EXIT_FAILURE;
    a.path = path;
    a.log = eb_log_new(2, EB_LOG_INFO);
    if (!a.log)
        return EB_EXIT_FAILURE;

    /* Until the loop handles them, a SIGHUP or SIGTERM must wait, not kill
     * the process (a ConfigMap edit can arrive during start-up). */
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    signal(SIGPIPE, SIG_IGN); /* a scraper that hangs up must not kill us */
    pthread_sigmask(SIG_BLOCK, &sigs, &old);

    a.base = event_base_new();
    a.metrics = eb_metrics_new();
    /* Before any event exists: every event gets the middle priority, and
     * the backlog's delivery the lowest, so Redis is read first. */
    if (a.base)
        event_base_priority_init(a.base, EB_APP_PRIORITIES);
    a.plugins = eb_plugin_loader_new(a.log, a.metrics, NULL);
    a.checks = config_checks(a.plugins);
    a.names = eb_strpool_new();
    if (!a.base || !a.metrics || !a.plugins || !a.names) {
        eb_log(a.log, EB_LOG_ERROR, "cannot start", eb_lf_str("error", "out of memory"));
        goto out_teardown;
    }
    /* Before the load: a change between the two is then seen as one. */
    start_watch(&a);
    if (eb_config_load(path, &a.checks, &cfg, errstr, sizeof(errstr)) != 0) {
        eb_log(a.log, EB_LOG_ERROR, "configuration is invalid; not starting",
               eb_lf_str("path", path), eb_lf_str("error", errstr));
        exit_code = EB_EXIT_CONFIG;
        goto out_teardown;
    }
    eb_log_set_level(a.log, cfg->log_level);
    if (build(&a, cfg, errstr, sizeof(errstr)) != 0) {
        eb_log(a.log, EB_LOG_ERROR, "cannot start", eb_lf_str("error", errstr));
        goto out_teardown;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    const struct eb_config *c = eb_reload_config(a.reload);
    char url[512];
    eb_log_redact_url(c->redis.url, url, sizeof(url));
    eb_log(a.log, EB_LOG_INFO, "expiry-bridge starting", eb_lf_str("version", EB_VERSION_STR),
           eb_lf_str("config", path), eb_lf_str("redis", url), eb_lf_str("kafka", c->kafka.brokers),
           eb_lf_int("routes", (int64_t)c->nroutes),
           eb_lf_str("http", a.http ? eb_http_listen(a.http) : ""));
    if (eb_reload_start(a.reload) != 0)
        goto out_teardown;
    event_base_dispatch(a.base);
    exit_code = finish(&a);

out_teardown:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    teardown(&a);
    eb_log_destroy(a.log);
    return exit_code;
}
