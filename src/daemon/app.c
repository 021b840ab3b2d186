/* app.c -- the daemon's lifecycle (contract in app.h): build the modules
 * from a configuration, run the loop, reload, drain on SIGTERM. No
 * per-event logic lives here: config -> redis_source -> pipeline (router,
 * event) -> kafka_sink, plus http (/metrics, /healthz, /readyz) and
 * config_watch beside them.
 *
 * Reload (SIGHUP, or config_watch seeing new content):
 *   1. Load and validate the file. An invalid one is rejected: logged,
 *      counted (eb_config_reloads_total{result="failed"}), nothing changes.
 *   2. Build the connections whose settings changed, the one most likely to
 *      fail first: a new Kafka producer (librdkafka may refuse it, e.g. a
 *      missing ssl.ca.location), then a new Redis source. A failure rejects
 *      the file as in 1.
 *   3. Apply the process settings at once: log level, stats interval, HTTP
 *      address (best effort: if the new address cannot be bound, the server
 *      stays where it was and the error is logged).
 *   4. Apply the event path -- routes, Kafka producer, Redis source -- in one
 *      step between two notifications (one thread: no event sees half of
 *      it). At once when the Redis settings did not change; when they did,
 *      at the moment the new Redis connection is subscribed or delivers its
 *      first notification, so until then the old connection's events keep
 *      the configuration they were read under.
 *
 * Redis handover is an OVERLAP, never a gap: the old connection keeps
 * reading until the new one is subscribed, and EB_HANDOVER_GRACE_MS longer,
 * so what Redis had already sent it is read too. When both point at the
 * same server, an event published during that grace reaches both
 * connections and is forwarded twice (consumers are idempotent:
 * at-least-once). A new connection that is not subscribed within
 * EB_HANDOVER_TIMEOUT_MS takes over anyway: the file names it.
 *
 * Kafka switch: new events go to the new producer at once; the old one
 * stays on the loop until Kafka acknowledged everything it holds (its
 * delivery reports reach the same pipeline, whose per-route counters
 * persist), then it is destroyed. At SIGTERM it drains with the rest.
 *
 * @locality loop thread only; librdkafka's threads never call in here.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
#include "core/router.h"
#include "core/version.h"
#include "daemon/app.h"
#include "daemon/cli.h"
#include "daemon/config_watch.h"
#include "daemon/http.h"
#include "kafka/kafka_props.h"
#include "kafka/kafka_sink.h"
#include "ledger/ledger.h"
#include "plugin/plugin_host.h"
#include "redis/redis_conn.h"
#include "redis/redis_source.h"

/* ------------------------------------------------------------------------
 * Tunables
 * --------------------------------------------------------------------- */

/* libevent priorities: 0 unused, 1 for every event (reads, delivery
 * reports, timers, HTTP), 2 for handing the read-ahead backlog to the
 * pipeline, so a burst waits in our bounded memory, not in Redis's output
 * buffer, where overflowing it costs the subscription. */
#define EB_APP_PRIORITIES       3
#define EB_APP_PRIORITY_BACKLOG 2
/* How often the drain checks whether everything in flight was acknowledged. */
#define EB_DRAIN_POLL_MS 20
/* How often replaced connections are checked: a retired producer for being
 * drained, a replaced Redis source for the end of its grace. */
#define EB_RETIRE_POLL_MS 100
/* After the new Redis connection is subscribed, the old one keeps reading
 * this long: notifications Redis had already written to it are read, not
 * dropped. Long enough for a backlog of a few hundred thousand events at
 * the ~1M/s one subscriber reads; short enough that duplicates (same
 * server on both) stay few. */
#define EB_HANDOVER_GRACE_MS 500
/* A new Redis connection not subscribed by then takes over anyway: several
 * connect attempts at the default 5 s timeout. */
#define EB_HANDOVER_TIMEOUT_MS 30000
/* While a retired producer still holds events, say so this often. */
#define EB_RETIRE_LOG_MS 10000

/* ------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

struct app;

/* A Redis source and the app it reports to. Each source gets its own, so a
 * callback knows which connection it came from (the current one, the one
 * a reload is waiting for, or one being retired). */
struct app_source {
    struct app_source *next; /* in app.retiring */
    struct app *app;
    eb_redis_source_t *src;
    int64_t stop_at_ms; /* retiring: stopped and destroyed from then on */
};

/* A Kafka producer replaced by a reload, kept until it has drained. */
struct retired_sink {
    struct retired_sink *next;
    eb_kafka_sink_t *sink;
    int64_t since_ms;
    int64_t next_log_ms;
};

/* A reload whose event path waits for its new Redis connection. */
struct pending {
    struct eb_config *cfg;     /* NULL: nothing pending */
    struct app_source *source; /* connecting with the new settings */
    eb_kafka_sink_t *sink;     /* NULL: the current producer stays */
    int64_t since_ms;
    char trigger[256]; /* what made the reload, for the log line at the switch */
};

struct app {
    eb_log_t *log;
    eb_metrics_t *metrics;
    struct event_base *base;
    const char *path; /* borrowed from argv */

    /* the event path in use */
    struct eb_config *cfg; /* the pipeline's routes point into it */
    eb_pipeline_t *pipeline;
    eb_kafka_sink_t *sink;
    struct app_source *source;
    eb_backlog_t *backlog; /* read-ahead: sources push, the pipeline drains */
    eb_ledger_t *ledger;   /* NULL until a route needs it (ledger: armed/observed, payload) */

    eb_http_t *http;          /* NULL when http.listen is empty */
    eb_config_watch_t *watch; /* NULL when inotify is unavailable */
    struct pending next;
    struct app_source *retiring;
    struct retired_sink *retired;

    struct event *sig_term, *sig_int, *sig_hup, *stats_ev, *drain_ev, *retire_ev, *handover_ev;
    int stats_interval_ms; /* what stats_ev is armed with; 0: off */
    int64_t drain_deadline_ms;
    bool stopping;

    eb_series_t *reload_ok, *reload_failed, *last_reload_ok, *last_reload_ts;
    eb_series_t *reconnect_redis, *reconnect_kafka;
    eb_plugin_loader_t *plugins; /* the plugins loaded (plugin_host.h) */
};

/* ------------------------------------------------------------------ check */

/* Load path with the checks that need the layers above config/: librdkafka
 * judges kafka.client, and the hiredis build says whether rediss:// can
 * work. As eb_config_load(). */
static int load_config(eb_plugin_loader_t *plugins, const char *path, struct eb_config **out,
                       char *errstr, size_t errstr_size) {
    const struct eb_config_checks checks = {
        .client_props = eb_kafka_props_check,
        .redis_tls_unavailable = eb_redis_conn_tls_unavailable(),
        .plugins = plugins ? eb_plugin_loader_check_config : NULL,
        .plugins_opaque = plugins,
    };
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
    int rc = eb_ledger_install(cfg, errstr, sizeof(errstr));
    if (rc == 0)
        printf("%s: loaded eb_timers_v1 (%zu bytes; FCALL eb1_arm, eb1_disarm, eb1_rearm)\n", url,
               len);
    else
        fprintf(stderr, "%s: %s\n", url, errstr);
    eb_config_free(cfg);
    return rc == 0 ? EB_EXIT_OK : EB_EXIT_UNAVAILABLE;
}

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

/* librdkafka starts threads that inherit the signal mask: create producers
 * with our signals blocked, so they are always delivered to the loop
 * thread (a reload creates one from inside the loop, where they are not). */
static eb_kafka_sink_t *make_sink(struct app *a, const struct eb_config *cfg, char *errstr,
                                  size_t errstr_size) {
    struct eb_kafka_sink_conf kc = {
        .brokers = cfg->kafka.brokers,
        .client = cfg->kafka.client,
        .nclient = cfg->kafka.nclient,
        .queue_max_events = cfg->kafka.queue_max_events,
        .queue_max_bytes = cfg->kafka.queue_max_bytes,
        .log = a->log,
        .metrics = a->metrics,
        .on_delivery = eb_pipeline_on_delivery,
        .opaque = a->pipeline, /* old and new producers report to one pipeline */
    };
    sigset_t sigs, old;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, &old);
    eb_kafka_sink_t *k = eb_kafka_sink_new(a->base, &kc, errstr, errstr_size);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return k;
}

static void handover(struct app *a, const char *why);

/* eb_notification_cb: every source's notifications go to the one pipeline.
 * The first one from the connection a reload waits for switches the event
 * path before it is handled, so it is routed by the new file.
 * @locality loop thread (hiredis callback). */
static void on_notification(const struct eb_notification *n, void *opaque) {
    struct app_source *as = opaque;
    struct app *a = as->app;
    if (as == a->next.source)
        handover(a, "first notification on the new Redis connection");
    eb_backlog_push(n, a->backlog);
}

/* eb_notification_cb of the backlog: notifications leave it, in order, when
 * no Redis read is ready.
 * @locality loop thread (lowest-priority event). */
static void on_backlog(const struct eb_notification *n, void *opaque) {
    struct app *a = opaque;
    eb_pipeline_on_notification(n, a->pipeline);
}

/* eb_redis_state_cb. The source logs its own transitions; /readyz reads
 * the state; here only the connection a reload waits for matters.
 * @locality loop thread (hiredis or timer callback). */
static void on_redis_state(enum eb_redis_state state, void *opaque) {
    struct app_source *as = opaque;
    struct app *a = as->app;
    if (as == a->next.source && state == EB_REDIS_SUBSCRIBED)
        handover(a, "new Redis connection subscribed");
    else if (as == a->source && a->ledger)
        eb_ledger_on_source_state(a->ledger, state); /* sweeps at once after a gap */
}

/* The deadline ledger, built when the first configuration needs it (a
 * ledgered route, or a payload) and kept from then on: timers in flight
 * hold tickets of it. */
static int ensure_ledger(struct app *a, const struct eb_config *cfg, char *errstr,
                         size_t errstr_size) {
    if (a->ledger)
        return eb_ledger_set_config(a->ledger, cfg);
    if (!eb_ledger_needed(cfg))
        return 0;
    struct eb_ledger_conf lc = {
        .log = a->log,
        .metrics = a->metrics,
        .emit = eb_pipeline_emit_timer,
        .opaque = a->pipeline,
    };
    a->ledger = eb_ledger_new(a->base, &lc, cfg, errstr, errstr_size);
    if (!a->ledger)
        return EB_ENOMEM;
    eb_pipeline_set_ledger(a->pipeline, a->ledger);
    return 0;
}

static struct app_source *make_source(struct app *a, const struct eb_config *cfg, char *errstr,
                                      size_t errstr_size) {
    struct app_source *as = calloc(1, sizeof(*as));
    if (!as) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    as->app = a;
    const struct eb_config_redis *r = &cfg->redis;
    struct eb_redis_source_conf rc = {
        .host = r->host,
        .port = r->port,
        .username = r->username,
        .password = r->password,
        .all_databases = r->all_databases,
        .databases = r->databases,
        .ndatabases = r->ndatabases,
        .events = cfg->events,
        .configure_notifications = r->configure_notifications,
        .connect_timeout_ms = r->connect_timeout_ms,
        .heartbeat_interval_ms = r->heartbeat_interval_ms,
        .heartbeat_timeout_ms = r->heartbeat_timeout_ms,
        .reconnect_min_ms = r->reconnect_min_ms,
        .reconnect_max_ms = r->reconnect_max_ms,
        .log = a->log,
        .metrics = a->metrics,
        .on_notification = on_notification,
        .on_state = on_redis_state,
        .opaque = as,
    };
    as->src = eb_redis_source_new(a->base, &rc, errstr, errstr_size);
    if (!as->src) {
        free(as);
        return NULL;
    }
    return as;
}

/* NULL is a no-op. Not from inside one of its callbacks. */
static void free_source(struct app_source *as) {
    if (!as)
        return;
    eb_redis_source_destroy(as->src);
    free(as);
}

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

/* -------------------------------------------------- retired connections */

static void arm_retire_tick(struct app *a) {
    if (!event_pending(a->retire_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv = eb_ms_tv(EB_RETIRE_POLL_MS);
        event_add(a->retire_ev, &tv);
    }
}

/* A replaced Redis source keeps reading for grace_ms (0: stops now), then
 * is destroyed from the retire tick, never inside its own callbacks. */
static void retire_source(struct app *a, struct app_source *as, int grace_ms) {
    if (!as)
        return;
    as->stop_at_ms = eb_mono_ms() + grace_ms;
    if (grace_ms == 0)
        eb_redis_source_stop(as->src);
    as->next = a->retiring;
    a->retiring = as;
    arm_retire_tick(a);
}

/* A replaced producer stays until Kafka acknowledged what it holds. */
static void retire_sink(struct app *a, eb_kafka_sink_t *k) {
    if (!k)
        return;
    struct retired_sink *r = calloc(1, sizeof(*r));
    if (!r) {
        /* Out of memory: purge it now (its events count as failed) rather
         * than lose track of it. */
        eb_kafka_sink_destroy(k);
        return;
    }
    r->sink = k;
    r->since_ms = eb_mono_ms();
    r->next_log_ms = r->since_ms + EB_RETIRE_LOG_MS;
    r->next = a->retired;
    a->retired = r;
    if (eb_kafka_sink_inflight(k))
        eb_log(a->log, EB_LOG_INFO,
               "previous Kafka producer keeps running until Kafka acknowledges its events",
               eb_lf_int("inflight", (int64_t)eb_kafka_sink_inflight(k)));
    arm_retire_tick(a);
}

static size_t retired_inflight(const struct app *a) {
    size_t n = 0;
    for (const struct retired_sink *r = a->retired; r; r = r->next)
        n += eb_kafka_sink_inflight(r->sink);
    return n;
}

static double gauge_retired_inflight(void *opaque) {
    return (double)retired_inflight(opaque);
}

/* @locality loop thread (timer). */
static void on_retire_tick(evutil_socket_t fd, short what, void *arg) {
    struct app *a = arg;
    int64_t now = eb_mono_ms();
    (void)fd;
    (void)what;
    for (struct app_source **pp = &a->retiring; *pp;) {
        struct app_source *as = *pp;
        if (now < as->stop_at_ms) {
            pp = &as->next;
            continue;
        }
        *pp = as->next;
        eb_redis_source_stop(as->src);
        free_source(as);
    }
    for (struct retired_sink **pp = &a->retired; *pp;) {
        struct retired_sink *r = *pp;
        size_t left = eb_kafka_sink_inflight(r->sink);
        if (left == 0) {
            *pp = r->next;
            eb_log(a->log, EB_LOG_INFO, "previous Kafka producer drained; closed",
                   eb_lf_int("drained_in_ms", now - r->since_ms));
            eb_kafka_sink_destroy(r->sink);
            free(r);
            continue;
        }
        if (now >= r->next_log_ms) {
            r->next_log_ms = now + EB_RETIRE_LOG_MS;
            eb_log(a->log, EB_LOG_WARN,
                   "previous Kafka producer still holds events Kafka has not acknowledged; "
                   "keeping it",
                   eb_lf_int("inflight", (int64_t)left), eb_lf_int("waiting_ms", now - r->since_ms),
                   eb_lf_bool("brokers_reachable", eb_kafka_sink_reachable(r->sink)));
        }
        pp = &r->next;
    }
    if (!a->retiring && !a->retired)
        event_del(a->retire_ev);
}

/* --------------------------------------------------------------- reload */

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

static void apply_process_settings(struct app *a, const struct eb_config *cfg) {
    eb_log_set_level(a->log, cfg->log_level);
    set_stats_interval(a, cfg->stats_interval_ms);
    move_http(a, cfg->http_listen);
}

static void reject(struct app *a, const char *trigger, const char *error) {
    eb_metrics_inc(a->reload_failed);
    eb_metrics_set(a->last_reload_ok, 0);
    eb_log(a->log, EB_LOG_ERROR, "config reload rejected; keeping the current routes",
           eb_lf_str("path", a->path), eb_lf_str("trigger", trigger), eb_lf_str("error", error));
}

static void accepted(struct app *a) {
    eb_metrics_inc(a->reload_ok);
    eb_metrics_set(a->last_reload_ok, 1);
    eb_metrics_set(a->last_reload_ts, eb_real_s());
}

/* Switch the event path to cfg (taken), with a new producer and/or a new
 * Redis source when given (taken), between two notifications. On failure
 * (out of memory) nothing changed and nothing was taken. */
static int commit(struct app *a, struct eb_config *cfg, eb_kafka_sink_t *sink,
                  struct app_source *source) {
    /* Notifications already read were read under the current file: route
     * them by it before the switch, so a reload misroutes nothing. */
    eb_backlog_flush(a->backlog);
    eb_backlog_set_bounds(a->backlog, cfg->redis.read_ahead_max_events,
                          cfg->redis.read_ahead_max_bytes);
    /* A kept source subscribes to new event types before the routes that
     * need them exist, and drops old ones after: nothing is missed. */
    if (!source && eb_redis_source_set_events(a->source->src, cfg->events) != 0)
        return EB_ENOMEM;
    char lerr[256];
    bool new_ledger = !a->ledger;
    if (eb_pipeline_set_config(a->pipeline, cfg) != 0 ||
        ensure_ledger(a, cfg, lerr, sizeof(lerr)) != 0) {
        eb_pipeline_set_config(a->pipeline, a->cfg);
        if (!source)
            eb_redis_source_set_events(a->source->src, a->cfg->events);
        return EB_ENOMEM;
    }
    if (new_ledger && a->ledger) {
        eb_ledger_start(a->ledger);
        eb_ledger_on_source_state(a->ledger, eb_redis_source_state(a->source->src));
    }
    if (sink) {
        eb_pipeline_set_sink(a->pipeline, sink);
        retire_sink(a, a->sink);
        a->sink = sink;
        eb_metrics_inc(a->reconnect_kafka);
    }
    if (source) {
        retire_source(a, a->source, EB_HANDOVER_GRACE_MS);
        a->source = source;
        eb_metrics_inc(a->reconnect_redis);
        if (a->ledger) {
            /* Another server: its subscription counts as a new one. */
            eb_ledger_on_source_state(a->ledger, EB_REDIS_CONNECTING);
            eb_ledger_on_source_state(a->ledger, eb_redis_source_state(source->src));
        }
    }
    eb_config_free(a->cfg);
    a->cfg = cfg;
    return 0;
}

/* The connection a reload waits for is ready (or the wait is over): switch
 * the event path to it and its file. */
static void handover(struct app *a, const char *why) {
    struct pending n = a->next;
    memset(&a->next, 0, sizeof(a->next));
    event_del(a->handover_ev);
    enum eb_redis_state st = eb_redis_source_state(n.source->src);
    if (commit(a, n.cfg, n.sink, n.source) != 0) {
        eb_metrics_inc(a->reload_failed);
        eb_metrics_set(a->last_reload_ok, 0);
        eb_log(a->log, EB_LOG_ERROR,
               "config reload failed while switching to the new Redis connection (out of "
               "memory); keeping the current configuration");
        retire_source(a, n.source, 0);
        retire_sink(a, n.sink);
        eb_config_free(n.cfg);
        return;
    }
    eb_log(a->log, EB_LOG_INFO, "config reloaded", eb_lf_str("path", a->path),
           eb_lf_int("routes", (int64_t)a->cfg->nroutes), eb_lf_str("trigger", n.trigger),
           eb_lf_str("switched_on", why), eb_lf_bool("redis_reconnected", true),
           eb_lf_bool("kafka_reconnected", n.sink != NULL),
           eb_lf_str("new_redis_state", eb_redis_source_state_name(st)),
           eb_lf_int("handover_wait_ms", eb_mono_ms() - n.since_ms),
           eb_lf_int("old_connection_grace_ms", EB_HANDOVER_GRACE_MS));
}

/* @locality loop thread (timer). */
static void on_handover_timeout(evutil_socket_t fd, short what, void *arg) {
    struct app *a = arg;
    (void)fd;
    (void)what;
    if (!a->next.source)
        return;
    eb_log(a->log, EB_LOG_ERROR,
           "the new Redis connection is not subscribed yet; switching to it anyway (the file "
           "names it): the old server is no longer read",
           eb_lf_int("waited_ms", eb_mono_ms() - a->next.since_ms),
           eb_lf_str("state", eb_redis_source_state_name(eb_redis_source_state(a->next.source->src))));
    handover(a, "handover deadline passed");
}

/* Park a valid file until its Redis connection is ready. A file that
 * arrives while another waits replaces it: its connections were built
 * against the waiting file, so what the waiting file built and this one
 * does not need is retired unused. */
static void defer(struct app *a, struct eb_config *cfg, eb_kafka_sink_t *sink,
                  struct app_source *source, const char *trigger) {
    if (source) {
        retire_source(a, a->next.source, 0);
        a->next.source = source;
        a->next.since_ms = eb_mono_ms();
        struct timeval tv = eb_ms_tv(EB_HANDOVER_TIMEOUT_MS);
        event_add(a->handover_ev, &tv);
        eb_redis_source_start(source->src);
    } else {
        eb_redis_source_set_events(a->next.source->src, cfg->events);
    }
    if (sink) {
        retire_sink(a, a->next.sink);
        a->next.sink = sink;
    }
    eb_config_free(a->next.cfg);
    a->next.cfg = cfg;
    snprintf(a->next.trigger, sizeof(a->next.trigger), "%s", trigger);
    char url[512];
    eb_log_redact_url(cfg->redis.url, url, sizeof(url));
    eb_log(a->log, EB_LOG_INFO,
           "config accepted; connecting to Redis with the new settings: routes and Kafka switch "
           "when the new connection is subscribed, the old one reads until then",
           eb_lf_str("path", a->path), eb_lf_str("trigger", trigger), eb_lf_str("redis", url),
           eb_lf_bool("kafka_reconnect", a->next.sink != NULL));
}

/* SIGHUP or a changed file: see the top of this file. */
static void reload(struct app *a, const char *trigger) {
    char errstr[8192];
    struct eb_config *next = NULL;
    if (a->stopping)
        return;
    if (load_config(a->plugins, a->path, &next, errstr, sizeof(errstr)) != 0) {
        reject(a, trigger, errstr);
        return;
    }
    const struct eb_config *target = a->next.cfg ? a->next.cfg : a->cfg;
    eb_kafka_sink_t *sink = NULL;
    struct app_source *source = NULL;
    if (kafka_changed(target, next) && !(sink = make_sink(a, next, errstr, sizeof(errstr))))
        goto err_reject;
    if (redis_changed(target, next) && !(source = make_source(a, next, errstr, sizeof(errstr)))) {
        eb_kafka_sink_destroy(sink); /* unused: nothing in flight */
        goto err_reject;
    }

    apply_process_settings(a, next);
    if (source || a->next.source) {
        accepted(a);
        defer(a, next, sink, source, trigger);
        return;
    }
    if (commit(a, next, sink, NULL) != 0) {
        eb_kafka_sink_destroy(sink);
        snprintf(errstr, sizeof(errstr), "cannot apply the new routes: %s",
                 eb_pipeline_error(a->pipeline));
        goto err_reject;
    }
    accepted(a);
    eb_log(a->log, EB_LOG_INFO, "config reloaded", eb_lf_str("path", a->path),
           eb_lf_int("routes", (int64_t)a->cfg->nroutes), eb_lf_str("trigger", trigger),
           eb_lf_bool("redis_reconnected", false), eb_lf_bool("kafka_reconnected", sink != NULL));
    return;

err_reject:
    reject(a, trigger, errstr);
    eb_config_free(next);
}

/* eb_config_watch_cb. @locality loop thread. */
static void on_file_changed(const char *trigger, void *opaque) {
    reload(opaque, trigger);
}

/* ------------------------------------------------------ health, metrics */

/* eb_http_ready_cb: the source in use (during a handover, the old one, which
 * still delivers) and the producer new events go to. */
static void on_ready(struct eb_http_readiness *out, void *opaque) {
    struct app *a = opaque;
    enum eb_redis_state st = a->source ? eb_redis_source_state(a->source->src) : EB_REDIS_STOPPED;
    out->redis_ok = st == EB_REDIS_SUBSCRIBED;
    out->redis = eb_redis_source_state_name(st);
    out->kafka_ok = a->sink && eb_kafka_sink_reachable(a->sink);
    out->draining = a->stopping;
}

static int register_app_metrics(struct app *a) {
    eb_metrics_t *m = a->metrics;
    eb_metric_t *info = eb_metrics_register(m, EB_METRIC_GAUGE, "eb_build_info",
                                       "Build information; the value is always 1.",
                                       "version,librdkafka,libevent", NULL, 0);
    eb_metric_t *reloads =
        eb_metrics_register(m, EB_METRIC_COUNTER, "eb_config_reloads_total",
                       "Configuration reloads by result (ok, failed).", "result", NULL, 0);
    eb_metric_t *last_ok =
        eb_metrics_register(m, EB_METRIC_GAUGE, "eb_config_last_reload_successful",
                       "1 when the last reload was accepted (or none was tried), 0 when it was "
                       "rejected.",
                       NULL, NULL, 0);
    eb_metric_t *last_ts = eb_metrics_register(
        m, EB_METRIC_GAUGE, "eb_config_last_reload_success_timestamp_seconds",
        "Unix time the configuration in use was loaded (at start or by a reload).", NULL, NULL, 0);
    eb_metric_t *reconnects = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_config_reconnects_total",
        "Connections rebuilt because a reload changed their settings (redis: overlapping "
        "handover; kafka: new producer, the old one drained).",
        "target", NULL, 0);
    if (!info || !reloads || !last_ok || !last_ts || !reconnects ||
        !eb_metrics_register_gauge_fn(m, "eb_kafka_retired_queue_events",
                                 "Events still awaiting Kafka's acknowledgement on producers a "
                                 "reload replaced (they drain, then close).",
                                 gauge_retired_inflight, a))
        return EB_ENOMEM;
    const char *version[] = {EB_VERSION_STR, rd_kafka_version_str(), event_get_version()};
    const char *ok[] = {"ok"}, *failed[] = {"failed"};
    const char *redis[] = {"redis"}, *kafka[] = {"kafka"};
    eb_metrics_set(eb_metrics_series(info, version), 1);
    a->reload_ok = eb_metrics_series(reloads, ok);
    a->reload_failed = eb_metrics_series(reloads, failed);
    a->last_reload_ok = eb_metrics_series0(last_ok);
    a->last_reload_ts = eb_metrics_series0(last_ts);
    a->reconnect_redis = eb_metrics_series(reconnects, redis);
    a->reconnect_kafka = eb_metrics_series(reconnects, kafka);
    eb_metrics_set(a->last_reload_ok, 1);
    eb_metrics_set(a->last_reload_ts, eb_real_s());
    return 0;
}

/* ------------------------------------------------------------- shutdown */

/* Events read and not yet acknowledged: in the backlog or in a producer. */
static size_t total_inflight(const struct app *a) {
    return (a->backlog ? eb_backlog_len(a->backlog) : 0) +
           (a->sink ? eb_kafka_sink_inflight(a->sink) : 0) + retired_inflight(a);
}

/* @locality loop thread (timer). */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg) {
    struct app *a = arg;
    (void)fd;
    (void)what;
    /* The ledger acknowledges in Redis what Kafka confirmed: an exit
     * before that would deliver those timers once more after a restart. */
    if ((total_inflight(a) == 0 && !eb_ledger_busy(a->ledger)) ||
        eb_mono_ms() >= a->drain_deadline_ms)
        event_base_loopexit(a->base, NULL);
}

/* Stop reading Redis, then keep the loop turning (delivery reports, /metrics)
 * until Kafka acknowledged everything or the drain budget is spent. */
static void begin_shutdown(struct app *a, const char *why) {
    if (a->stopping)
        return;
    a->stopping = true;
    eb_log(a->log, EB_LOG_INFO, "shutting down: no longer reading Redis, draining in-flight events",
           eb_lf_str("signal", why), eb_lf_int("inflight", (int64_t)total_inflight(a)),
           eb_lf_int("drain_timeout_ms", a->cfg->kafka.drain_timeout_ms));
    eb_redis_source_stop(a->source->src);
    eb_ledger_stop(a->ledger); /* no new sweep; acknowledgements go on */
    if (a->next.source)
        eb_redis_source_stop(a->next.source->src);
    event_del(a->handover_ev);
    for (struct app_source *as = a->retiring; as; as = as->next)
        eb_redis_source_stop(as->src);
    a->drain_deadline_ms = eb_mono_ms() + a->cfg->kafka.drain_timeout_ms;
    struct timeval tv = eb_ms_tv(EB_DRAIN_POLL_MS);
    a->drain_ev = event_new(a->base, -1, EV_PERSIST, on_drain_tick, a);
    if (!a->drain_ev || event_add(a->drain_ev, &tv) != 0)
        event_base_loopexit(a->base, NULL);
}

/* @locality loop thread (libevent signal event). */
static void on_signal(evutil_socket_t sig, short what, void *arg) {
    struct app *a = arg;
    (void)what;
    if (sig == SIGHUP) {
        reload(a, "SIGHUP");
        return;
    }
    begin_shutdown(a, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* @locality loop thread (timer). */
static void on_stats(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    eb_pipeline_log_stats(((struct app *)arg)->pipeline);
    if (((struct app *)arg)->ledger)
        eb_ledger_log_stats(((struct app *)arg)->ledger);
}

static int finish(struct app *a) {
    size_t left = total_inflight(a);
    eb_pipeline_log_stats(a->pipeline);
    if (a->ledger)
        eb_ledger_log_stats(a->ledger);
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
    a->retire_ev = event_new(a->base, -1, EV_PERSIST, on_retire_tick, a);
    a->handover_ev = evtimer_new(a->base, on_handover_timeout, a);
    if (!a->sig_term || !a->sig_int || !a->sig_hup || !a->stats_ev || !a->retire_ev ||
        !a->handover_ev || evsignal_add(a->sig_term, NULL) || evsignal_add(a->sig_int, NULL) ||
        evsignal_add(a->sig_hup, NULL))
        return EB_ENOMEM;
    set_stats_interval(a, a->cfg->stats_interval_ms);
    return 0;
}

static void free_loop_events(struct app *a) {
    struct event *evs[] = {a->sig_term, a->sig_int,   a->sig_hup,    a->stats_ev,
                           a->drain_ev, a->retire_ev, a->handover_ev};
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
 * error), the producer, the Redis source. */
static int build(struct app *a, char *errstr, size_t errstr_size) {
    struct eb_pipeline_conf pc = {.log = a->log, .metrics = a->metrics, .plugins = a->plugins};
    if (register_app_metrics(a) != 0)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    a->pipeline = eb_pipeline_new(&pc, a->cfg, errstr, errstr_size);
    if (!a->pipeline)
        return EB_ENOMEM;
    struct eb_backlog_conf bc = {
        .max_events = a->cfg->redis.read_ahead_max_events,
        .max_bytes = a->cfg->redis.read_ahead_max_bytes,
        .priority = EB_APP_PRIORITY_BACKLOG,
        .deliver = on_backlog,
        .opaque = a,
        .log = a->log,
        .metrics = a->metrics,
    };
    if (!(a->backlog = eb_backlog_new(a->base, &bc, errstr, errstr_size)))
        return EB_ENOMEM;
    if (a->cfg->http_listen && *a->cfg->http_listen &&
        !(a->http = make_http(a, a->cfg->http_listen, errstr, errstr_size)))
        return EB_EIO;
    if (!(a->sink = make_sink(a, a->cfg, errstr, errstr_size)))
        return EB_EKAFKA;
    eb_pipeline_set_sink(a->pipeline, a->sink);
    if (ensure_ledger(a, a->cfg, errstr, errstr_size) != 0)
        return EB_ENOMEM;
    if (!(a->source = make_source(a, a->cfg, errstr, errstr_size)))
        return EB_EREDIS;
    if (add_loop_events(a) != 0)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot register loop events");
    return 0;
}

static void teardown(struct app *a) {
    /* Sources first (nothing more is read), then every producer (a purge
     * reports leftovers to the pipeline), then the pipeline. */
    free_source(a->source);
    free_source(a->next.source);
    while (a->retiring) {
        struct app_source *as = a->retiring;
        a->retiring = as->next;
        free_source(as);
    }
    eb_backlog_destroy(a->backlog); /* only a timed-out drain leaves anything */
    while (a->retired) {
        struct retired_sink *r = a->retired;
        a->retired = r->next;
        eb_kafka_sink_destroy(r->sink);
        free(r);
    }
    eb_kafka_sink_destroy(a->next.sink);
    eb_kafka_sink_destroy(a->sink);
    eb_pipeline_destroy(a->pipeline);
    eb_plugin_loader_destroy(a->plugins); /* after the pipeline: it holds the instances */
    eb_ledger_destroy(a->ledger); /* after the producers: their leftovers hand tickets back */
    eb_http_destroy(a->http);
    eb_config_watch_destroy(a->watch);
    free_loop_events(a);
    eb_metrics_destroy(a->metrics);
    if (a->base)
        event_base_free(a->base);
    eb_config_free(a->next.cfg);
    eb_config_free(a->cfg);
}

int eb_app_run(const char *path) {
    struct app a = {0};
    char errstr[8192];
    int exit_code = EB_EXIT_FAILURE;
    a.path = path;
    a.log = eb_log_new(2, EB_LOG_INFO);
    if (!a.log)
        return EB_EXIT_FAILURE;

    /* Until the loop handles them, a SIGHUP or SIGTERM must wait, not kill
     * the process (a ConfigMap edit can arrive during start-up); librdkafka's
     * threads, created meanwhile, inherit the mask and never see them. */
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
    if (!a.base || !a.metrics || !a.plugins) {
        eb_log(a.log, EB_LOG_ERROR, "cannot start", eb_lf_str("error", "out of memory"));
        goto out_teardown;
    }
    /* Before the load: a change between the two is then seen as one. */
    start_watch(&a);
    if (load_config(a.plugins, path, &a.cfg, errstr, sizeof(errstr)) != 0) {
        eb_log(a.log, EB_LOG_ERROR, "configuration is invalid; not starting",
               eb_lf_str("path", path), eb_lf_str("error", errstr));
        exit_code = EB_EXIT_CONFIG;
        goto out_teardown;
    }
    eb_log_set_level(a.log, a.cfg->log_level);
    if (build(&a, errstr, sizeof(errstr)) != 0) {
        eb_log(a.log, EB_LOG_ERROR, "cannot start", eb_lf_str("error", errstr));
        goto out_teardown;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    char url[512];
    eb_log_redact_url(a.cfg->redis.url, url, sizeof(url));
    eb_log(a.log, EB_LOG_INFO, "expiry-bridge starting", eb_lf_str("version", EB_VERSION_STR),
           eb_lf_str("config", path), eb_lf_str("redis", url),
           eb_lf_str("kafka", a.cfg->kafka.brokers), eb_lf_int("routes", (int64_t)a.cfg->nroutes),
           eb_lf_str("http", a.http ? eb_http_listen(a.http) : ""));
    if (eb_redis_source_start(a.source->src) != 0)
        goto out_teardown;
    if (a.ledger)
        eb_ledger_start(a.ledger);
    event_base_dispatch(a.base);
    exit_code = finish(&a);

out_teardown:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    teardown(&a);
    eb_log_destroy(a.log);
    return exit_code;
}
