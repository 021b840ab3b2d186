/* kafka_sink.c -- librdkafka producer with ack-after-delivery, a bounded
 * queue, and delivery reports served on the libevent loop.
 *
 * Threads: librdkafka runs its own broker threads. Everything that calls back
 * into our code (delivery reports, errors, statistics) is enqueued on the
 * main queue and served by rd_kafka_poll() from the loop thread, woken by a
 * pipe that librdkafka writes when that queue goes from empty to non-empty.
 * Only the log callback runs on librdkafka's threads, and it reads nothing
 * but the logger, which is thread-safe and set before they start. Destroying
 * the handle joins those threads; eb_kafka_sink_destroy_async() does that on
 * the reaper's thread (kafka_reaper.h), which then owns the sink's memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/signals.h"
#include "kafka/kafka_props.h"
#include "kafka/kafka_sink.h"
#include "kafka/kafka_stats.h"

/* Broker state arrives with librdkafka's statistics; once a second keeps
 * /readyz fresh. The document grows with the partitions (6.8 MB at
 * 10 000), but only its "brokers" part is read (kafka_stats.h). */
#define EB_SINK_STATS_INTERVAL_MS "1000"

/* The same kind of librdkafka error (a broker unreachable, all of them
 * down, TLS, authentication) is logged at most this often; the next line
 * says how many were held back. librdkafka itself repeats a broker's
 * identical failure only every 30 s after the second, but several brokers
 * and the all-down event still add up to a line a second in an outage. */
#define EB_SINK_ERROR_LOG_MS 10000

/* While the queue is full, say so at most once per second. */
#define EB_SINK_FULL_LOG_MS 1000

/* What an operator can do about an error event, by kind (error_cb). */
enum error_kind { EK_UNREACHABLE, EK_ALL_DOWN, EK_TLS, EK_AUTH, EK_OTHER, EK_COUNT };

struct eb_kafka_topic {
    struct eb_kafka_topic *next;
    rd_kafka_topic_t *rkt;
    char *name;
};

struct eb_kafka_sink {
    rd_kafka_t *rk;
    rd_kafka_queue_t *mainq;
    int wake[2]; /* librdkafka writes wake[1]; the loop reads wake[0] */
    struct event *wake_ev;
    struct event *tick_ev; /* 1 s housekeeping: full-queue log, safety poll */
    int64_t serve_now_ns;  /* clock of the poll being served; 0 outside one */
    eb_log_t *log;
    eb_metrics_t *metrics; /* borrowed; our gauge callbacks are unbound at destroy */
    eb_delivery_cb *on_delivery;
    void *opaque;
    size_t max_events;
    size_t max_bytes;
    size_t inflight;
    size_t inflight_bytes;
    struct eb_kafka_topic *topics;
    int brokers_up; /* from the last statistics, or 0 after ALL_BROKERS_DOWN */
    bool fatal;     /* the idempotent producer hit a fatal error */
    struct eb_log_limit error_limits[EK_COUNT];
    /* Full-queue episode, for loud but bounded logging. */
    bool full;
    int64_t full_since_ms;
    uint64_t full_drops; /* drops in the current episode */
    uint64_t full_drops_logged;
    eb_series_t *m_errors; /* eb_kafka_errors_total */
    eb_series_t *m_full_episodes;
};

static bool user_sets(const struct eb_kafka_sink_conf *c, const char *name) {
    for (size_t i = 0; i < c->nclient; i++) {
        if (strcmp(c->client[i].key, name) == 0)
            return true;
    }
    return false;
}

/* librdkafka logs every broker failure (facility FAIL) and every fatal
 * error (FATAL) and also raises it as an error event, which error_cb()
 * logs with the setting to fix: the log line would say it twice.
 * @locality librdkafka internal threads: only the thread-safe logger. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    eb_kafka_sink_t *k = rd_kafka_opaque(rk);
    if (strcmp(fac, "FAIL") == 0 || strcmp(fac, "FATAL") == 0)
        return;
    enum eb_log_level l = level <= 3   ? EB_LOG_ERROR
                          : level <= 4 ? EB_LOG_WARN
                          : level <= 6 ? EB_LOG_INFO
                                       : EB_LOG_DEBUG;
    eb_log(k->log, l, "librdkafka", eb_lf_str("facility", fac), eb_lf_str("detail", buf));
}

/* How each kind of error event is logged, and the setting that fixes it. */
static const struct {
    enum eb_log_level level;
    const char *msg;
    const char *setting; /* NULL: nothing to fix in the configuration */
} error_kinds[EK_COUNT] = {
    [EK_UNREACHABLE] = {EB_LOG_WARN, "cannot reach a Kafka broker; check kafka.brokers",
                        "kafka.brokers"},
    [EK_ALL_DOWN] = {EB_LOG_ERROR, "cannot reach any Kafka broker; check kafka.brokers",
                     "kafka.brokers"},
    [EK_TLS] = {EB_LOG_WARN,
                "TLS with a Kafka broker failed; check the ssl.* properties in kafka.client",
                "kafka.client"},
    [EK_AUTH] = {EB_LOG_WARN,
                 "Kafka authentication failed; check the sasl.* properties in kafka.client",
                 "kafka.client"},
    [EK_OTHER] = {EB_LOG_WARN, "kafka error", NULL},
};

/* A transport error while connecting (refused, unresolvable, timed out)
 * names a wrong or unreachable address; one on an established connection
 * is a broker going away, not a setting to fix. */
static enum error_kind classify(int err, const char *reason) {
    switch (err) {
    case RD_KAFKA_RESP_ERR__RESOLVE:
        return EK_UNREACHABLE;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        return strstr(reason, "Connect to ") || strstr(reason, "in state CONNECT")
                   ? EK_UNREACHABLE
                   : EK_OTHER;
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
        return EK_ALL_DOWN;
    case RD_KAFKA_RESP_ERR__SSL:
        return EK_TLS;
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
        return EK_AUTH;
    default:
        return EK_OTHER;
    }
}

/* A broker's failure reads "<broker>: <cause>", the broker as librdkafka
 * names it ("kafka-0:9092/1", "127.0.0.1:9092/bootstrap"); the operator
 * wrote "kafka-0:9092", so the "/<id>" is dropped. Anything else (e.g.
 * "3/3 brokers are down") is all cause. */
static void split_reason(const char *reason, char *broker, size_t size, const char **cause) {
    const char *sep = strstr(reason, ": ");
    const char *slash = sep ? memrchr(reason, '/', (size_t)(sep - reason)) : NULL;
    *broker = '\0';
    *cause = reason;
    if (!slash || slash == reason || strchr(reason, ' ') < sep)
        return;
    snprintf(broker, size, "%.*s", (int)(slash - reason), reason);
    *cause = sep + 2;
}

/* @locality loop thread (served by rd_kafka_poll). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    eb_kafka_sink_t *k = opaque;
    char fatal_reason[512], broker[256];
    const char *cause;
    uint64_t held_back = 0;
    eb_metrics_inc(k->m_errors);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        k->brokers_up = 0;
    if (err == RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(rk, fatal_reason, sizeof(fatal_reason))) {
        k->fatal = true; /* once per producer: never rate-limited */
        eb_log(k->log, EB_LOG_ERROR, "kafka producer fatal error; restart the bridge",
               eb_lf_str("reason", fatal_reason));
        return;
    }
    enum error_kind kind = classify(err, reason);
    if (!eb_log_limit_allow(&k->error_limits[kind], EB_SINK_ERROR_LOG_MS, &held_back))
        return;
    split_reason(reason, broker, sizeof(broker), &cause);
    const char *setting = error_kinds[kind].setting;
    const struct eb_log_field fields[] = {
        eb_lf_str("broker", broker),
        eb_lf_str("cause", cause),
        eb_lf_str("error", rd_kafka_err2name(err)),
        eb_lf_int("repeated", (int64_t)held_back),
        eb_lf_str("setting", setting), /* last: left out when there is none */
    };
    eb_log_write(k->log, error_kinds[kind].level, error_kinds[kind].msg, fields,
                 sizeof(fields) / sizeof(fields[0]) - (setting ? 0 : 1));
}

/* The brokers that are up, from librdkafka's statistics: only the
 * document's "brokers" part is read (kafka_stats.h), so its size, which
 * grows with the partitions, costs the loop little.
 * @locality loop thread (served by rd_kafka_poll). */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque) {
    eb_kafka_sink_t *k = opaque;
    (void)rk;
    int up = eb_kafka_stats_brokers_up(json, json_len);
    if (up >= 0)
        k->brokers_up = up;
    return 0; /* librdkafka frees json */
}

/* @locality loop thread (served by rd_kafka_poll). */
static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    eb_kafka_sink_t *k = opaque;
    size_t bytes = m->len + m->key_len;
    k->inflight--;
    k->inflight_bytes -= bytes <= k->inflight_bytes ? bytes : k->inflight_bytes;
    int err = 0;
    const char *reason = NULL;
    if (m->err) {
        err = m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? EB_ETOOBIG : EB_EKAFKA;
        reason = rd_kafka_err2str(m->err);
    } else {
        k->brokers_up = k->brokers_up ? k->brokers_up : 1;
    }
    k->on_delivery(m->_private, err, reason, k->serve_now_ns ? k->serve_now_ns : eb_mono_ns(),
                   k->opaque);
}

/* One rd_kafka_poll() per wakeup. It takes everything on the main queue
 * at once (librdkafka moves the whole queue out under its lock, then runs
 * the callbacks), so the queue is empty when the callbacks start, and
 * whatever arrives meanwhile makes it non-empty again, which writes the
 * wakeup pipe: the next loop iteration serves it, after any Redis read
 * that is ready. A second poll "in case more came" finds nothing nearly
 * always at a steady rate and costs a lock round and a clock read per
 * wakeup (it was one of the per-wakeup costs measured in
 * docs/performance.md); a flood is served in bounded pieces all the same,
 * each the size of what queued up during the previous one. */
static void serve(eb_kafka_sink_t *k) {
    k->serve_now_ns = eb_mono_ns();
    rd_kafka_poll(k->rk, 0);
    k->serve_now_ns = 0;
}

/* The pipe carries one byte per empty->non-empty transition of the main
 * queue, and each transition needs a poll of ours in between: one read
 * drains it (and if not, the level-triggered event fires again).
 * @locality loop thread. */
static void on_wake(evutil_socket_t fd, short what, void *arg) {
    eb_kafka_sink_t *k = arg;
    char drain[256];
    (void)!read(fd, drain, sizeof(drain));
    serve(k);
}

static void log_full_episode(eb_kafka_sink_t *k, bool ended) {
    uint64_t new_drops = k->full_drops - k->full_drops_logged;
    k->full_drops_logged = k->full_drops;
    eb_log(k->log, EB_LOG_ERROR,
           ended ? "kafka queue accepting events again" : "kafka queue still full: dropping events",
           eb_lf_int("dropped", (int64_t)new_drops),
           eb_lf_int("dropped_episode", (int64_t)k->full_drops),
           eb_lf_int("full_for_ms", eb_mono_ms() - k->full_since_ms),
           eb_lf_int("queue_events", (int64_t)k->inflight),
           eb_lf_int("queue_max_events", (int64_t)k->max_events),
           eb_lf_bool("brokers_reachable", k->brokers_up > 0));
}

/* A drop at the bound: the first one of an episode is logged at once, the
 * rest once per second from the tick, so the log says it loudly without
 * writing a line per event. */
static void note_full(eb_kafka_sink_t *k) {
    k->full_drops++;
    if (k->full)
        return;
    k->full = true;
    k->full_since_ms = eb_mono_ms();
    k->full_drops_logged = 1;
    eb_metrics_inc(k->m_full_episodes);
    eb_log(k->log, EB_LOG_ERROR,
           "kafka queue full: dropping events until Kafka takes them again (Redis is still "
           "being read)",
           eb_lf_int("queue_events", (int64_t)k->inflight),
           eb_lf_int("queue_max_events", (int64_t)k->max_events),
           eb_lf_int("queue_bytes", (int64_t)k->inflight_bytes),
           eb_lf_int("queue_max_bytes", (int64_t)k->max_bytes),
           eb_lf_bool("brokers_reachable", k->brokers_up > 0));
}

static bool has_room(const eb_kafka_sink_t *k, size_t bytes) {
    return k->inflight < k->max_events && k->inflight_bytes + bytes <= k->max_bytes;
}

/* @locality loop thread, once a second. */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    eb_kafka_sink_t *k = arg;
    serve(k); /* belt and braces: never rely on the wakeup pipe alone */
    if (!k->full)
        return;
    /* The episode ends when the queue has drained well below the bound. */
    if (k->inflight <= k->max_events / 2 && k->inflight_bytes <= k->max_bytes / 2) {
        log_full_episode(k, true);
        k->full = false;
        k->full_drops = 0;
    } else if (k->full_drops > k->full_drops_logged) {
        log_full_episode(k, false);
    }
}

static double gauge_inflight(void *opaque) {
    return (double)((eb_kafka_sink_t *)opaque)->inflight;
}
static double gauge_inflight_bytes(void *opaque) {
    return (double)((eb_kafka_sink_t *)opaque)->inflight_bytes;
}
static double gauge_brokers_up(void *opaque) {
    return (double)((eb_kafka_sink_t *)opaque)->brokers_up;
}

static int register_metrics(eb_kafka_sink_t *k, eb_metrics_t *m) {
    eb_metric_t *errors = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_kafka_errors_total",
                                         "Errors reported by librdkafka (broker connections, "
                                         "all brokers down, fatal).",
                                         NULL, NULL, 0);
    eb_metric_t *full = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_kafka_queue_full_episodes_total",
                                       "Times the bounded queue filled up and events began to "
                                       "be dropped.",
                                       NULL, NULL, 0);
    eb_metric_t *cap = eb_metrics_register(m, EB_METRIC_GAUGE, "eb_kafka_queue_capacity_events",
                                      "The queue bound (kafka.queue.max_events).", NULL, NULL, 0);
    if (!errors || !full || !cap ||
        !eb_metrics_register_gauge_fn(m, "eb_kafka_queue_events",
                                 "Events handed to Kafka and not yet acknowledged.", gauge_inflight,
                                 k) ||
        !eb_metrics_register_gauge_fn(m, "eb_kafka_queue_bytes", "Bytes of those events.",
                                 gauge_inflight_bytes, k) ||
        !eb_metrics_register_gauge_fn(m, "eb_kafka_brokers_up",
                                 "Kafka brokers with an open connection (librdkafka "
                                 "statistics).",
                                 gauge_brokers_up, k))
        return EB_ENOMEM;
    k->m_errors = eb_metrics_series0(errors);
    k->m_full_episodes = eb_metrics_series0(full);
    eb_metrics_set(eb_metrics_series0(cap), (double)k->max_events);
    return 0;
}

static int set_prop(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errstr_size) {
    char rkerr[512];
    if (rd_kafka_conf_set(conf, name, value, rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK)
        return eb_error_set(errstr, errstr_size, EB_ECONFIG, "librdkafka property '%s': %s", name,
                         rkerr);
    return 0;
}

/* The producer configuration: the bridge's own settings first, then the
 * user's passthrough, so a user may tune anything not reserved. */
static rd_kafka_conf_t *build_conf(eb_kafka_sink_t *k, const struct eb_kafka_sink_conf *c,
                                   char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    if (!conf) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    /* librdkafka keeps its own limit too; ours is checked first, so its is
     * set to the same bound (kbytes: rounded up). */
    snprintf(num, sizeof(num), "%zu", c->queue_max_events);
    if (set_prop(conf, "bootstrap.servers", c->brokers, errstr, errstr_size) ||
        set_prop(conf, "enable.idempotence", "true", errstr, errstr_size) ||
        set_prop(conf, "acks", "all", errstr, errstr_size) ||
        set_prop(conf, "queue.buffering.max.messages", num, errstr, errstr_size))
        goto err_destroy_conf;
    snprintf(num, sizeof(num), "%zu", (c->queue_max_bytes + 1023) / 1024);
    if (set_prop(conf, "queue.buffering.max.kbytes", num, errstr, errstr_size))
        goto err_destroy_conf;
    /* Events wait out a Kafka outage instead of expiring after librdkafka's
     * default 5 minutes; the queue bound limits what waiting costs. */
    if (!user_sets(c, "message.timeout.ms") &&
        set_prop(conf, "message.timeout.ms", "0", errstr, errstr_size))
        goto err_destroy_conf;
    if (!user_sets(c, "statistics.interval.ms") &&
        set_prop(conf, "statistics.interval.ms", EB_SINK_STATS_INTERVAL_MS, errstr, errstr_size))
        goto err_destroy_conf;
    /* Expiry events are about time: wait at most 1 ms to fill a batch
     * (librdkafka's default is 5). Measured at 10k events/s
     * (docs/performance.md, "linger.ms"): p99 from the notification to the
     * acknowledgement 4.9 ms at 1, 6.6 at 2, 9.6 at 3, 9.9 at 5, where the
     * target is 10; only 5 costs clearly less CPU (~20 %). Bursts still
     * fill batches by size. */
    if (!user_sets(c, "linger.ms") && !user_sets(c, "queue.buffering.max.ms") &&
        set_prop(conf, "linger.ms", "1", errstr, errstr_size))
        goto err_destroy_conf;
    /* Reconnect within a second of a broker returning (default backs off to 10 s). */
    if (!user_sets(c, "reconnect.backoff.max.ms") &&
        set_prop(conf, "reconnect.backoff.max.ms", "1000", errstr, errstr_size))
        goto err_destroy_conf;
    if (eb_kafka_props_apply(conf, c->client, c->nclient, NULL, errstr, errstr_size))
        goto err_destroy_conf;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;

err_destroy_conf:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int setup_wakeup(eb_kafka_sink_t *k, struct event_base *base, char *errstr,
                        size_t errstr_size) {
    if (pipe2(k->wake, O_NONBLOCK | O_CLOEXEC) != 0)
        return eb_error_set(errstr, errstr_size, EB_EIO, "pipe: %s", strerror(errno));
    k->wake_ev = event_new(base, k->wake[0], EV_READ | EV_PERSIST, on_wake, k);
    k->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, k);
    struct timeval second = {1, 0};
    if (!k->wake_ev || !k->tick_ev || event_add(k->wake_ev, NULL) ||
        event_add(k->tick_ev, &second))
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot register loop events");
    k->mainq = rd_kafka_queue_get_main(k->rk);
    rd_kafka_queue_io_event_enable(k->mainq, k->wake[1], "1", 1);
    return 0;
}

/* librdkafka's threads inherit the creating thread's signal mask: create
 * them with the asynchronous signals blocked, so a SIGTERM or SIGHUP is
 * always delivered to the loop thread, whatever mask the caller runs with
 * (a reload creates producers from inside the loop, where signals are not
 * blocked). */
static rd_kafka_t *new_handle(rd_kafka_conf_t *conf, char *rkerr, size_t rkerr_size) {
    sigset_t old;
    eb_signals_block_async(&old);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerr, rkerr_size);
    eb_signals_restore(&old);
    return rk;
}

eb_kafka_sink_t *eb_kafka_sink_new(struct event_base *base, const struct eb_kafka_sink_conf *c,
                                   char *errstr, size_t errstr_size) {
    if (!c->brokers || !*c->brokers || !c->on_delivery || !c->queue_max_events ||
        !c->queue_max_bytes) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                  "kafka sink needs brokers, a delivery callback and queue bounds");
        return NULL;
    }
    eb_kafka_sink_t *k = calloc(1, sizeof(*k));
    if (!k) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    k->wake[0] = k->wake[1] = -1;
    k->log = c->log;
    k->metrics = c->metrics;
    k->on_delivery = c->on_delivery;
    k->opaque = c->opaque;
    k->max_events = c->queue_max_events;
    k->max_bytes = c->queue_max_bytes;
    rd_kafka_conf_t *conf = build_conf(k, c, errstr, errstr_size);
    if (!conf)
        goto err_free_sink;
    char rkerr[512];
    k->rk = new_handle(conf, rkerr, sizeof(rkerr));
    if (!k->rk) {
        rd_kafka_conf_destroy(conf);
        eb_error_set(errstr, errstr_size, EB_EKAFKA, "cannot create the Kafka producer: %s", rkerr);
        goto err_free_sink;
    }
    if (setup_wakeup(k, base, errstr, errstr_size))
        goto err_free_sink;
    /* Last: a producer that cannot be created (a reload naming a missing
     * ssl.ca.location) must not take the queue gauges from the sink that
     * keeps running. Nothing reads the series before we return. */
    if (register_metrics(k, c->metrics)) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "cannot register kafka metrics");
        goto err_free_sink;
    }
    return k;

err_free_sink:
    eb_kafka_sink_destroy(k);
    return NULL;
}

eb_kafka_topic_t *eb_kafka_sink_topic(eb_kafka_sink_t *k, const char *name) {
    for (struct eb_kafka_topic *t = k->topics; t; t = t->next) {
        if (strcmp(t->name, name) == 0)
            return t;
    }
    struct eb_kafka_topic *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->name = strdup(name);
    t->rkt = t->name ? rd_kafka_topic_new(k->rk, name, NULL) : NULL;
    if (!t->rkt) {
        free(t->name);
        free(t);
        return NULL;
    }
    t->next = k->topics;
    k->topics = t;
    return t;
}

int eb_kafka_sink_produce(eb_kafka_sink_t *k, eb_kafka_topic_t *topic, const void *key,
                          size_t key_len, const void *value, size_t value_len,
                          const struct eb_header *headers, size_t nheaders, void *msg_opaque,
                          const char **reason) {
    size_t bytes = key_len + value_len;
    *reason = NULL;
    if (!has_room(k, bytes)) {
        note_full(k);
        *reason = "queue full";
        return EB_EFULL;
    }
    rd_kafka_headers_t *hdrs = NULL;
    if (nheaders) {
        hdrs = rd_kafka_headers_new(nheaders);
        for (size_t i = 0; i < nheaders; i++)
            rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                                (ssize_t)headers[i].value_len);
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        k->rk, RD_KAFKA_V_RKT(topic->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(hdrs); /* ownership passes only on success */
        *reason = rd_kafka_err2str(err);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            note_full(k);
            return EB_EFULL;
        }
        return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ? EB_ETOOBIG : EB_EKAFKA;
    }
    k->inflight++;
    k->inflight_bytes += bytes;
    return 0;
}

size_t eb_kafka_sink_inflight(const eb_kafka_sink_t *k) {
    return k->inflight;
}

bool eb_kafka_sink_reachable(const eb_kafka_sink_t *k) {
    return k->brokers_up > 0 && !k->fatal;
}

/* Release what is ours and registered on the loop; leaves k->rk. Nothing
 * of librdkafka's writes to the pipe once its io event is off. */
static void detach(eb_kafka_sink_t *k) {
    if (k->mainq) {
        rd_kafka_queue_io_event_enable(k->mainq, -1, NULL, 0);
        rd_kafka_queue_destroy(k->mainq);
        k->mainq = NULL;
    }
    while (k->topics) {
        struct eb_kafka_topic *t = k->topics;
        k->topics = t->next;
        rd_kafka_topic_destroy(t->rkt);
        free(t->name);
        free(t);
    }
    if (k->metrics)
        eb_metrics_unbind(k->metrics, k);
    if (k->wake_ev)
        event_free(k->wake_ev);
    if (k->tick_ev)
        event_free(k->tick_ev);
    k->wake_ev = k->tick_ev = NULL;
    for (int i = 0; i < 2; i++) {
        if (k->wake[i] >= 0)
            close(k->wake[i]);
        k->wake[i] = -1;
    }
}

void eb_kafka_sink_destroy(eb_kafka_sink_t *k) {
    if (!k)
        return;
    if (k->rk && k->inflight > 0) {
        /* Report what never made it, so its owner can count it. */
        rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(k->rk, 1000);
    }
    detach(k);
    if (k->rk)
        rd_kafka_destroy(k->rk);
    free(k);
}

void eb_kafka_sink_destroy_async(eb_kafka_sink_t *k, eb_kafka_reaper_t *r) {
    if (!k)
        return;
    if (!k->rk || k->inflight > 0 || !r) {
        eb_kafka_sink_destroy(k);
        return;
    }
    detach(k);
    /* From here the reaper's thread owns k; librdkafka's log callback,
     * the only one left, reads k->log until the handle is gone. */
    eb_kafka_reaper_take(r, k->rk, k);
}
