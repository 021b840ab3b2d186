/* retire.c -- replaced connections, kept until done with, then closed
 * (contract in retire.h).
 *
 * One timer serves both lists while either holds something: a source
 * whose grace has passed is stopped and destroyed; a producer that holds
 * nothing more is unregistered from the loop and handed to the reaper.
 * The reaper's thread is the only other thread involved, and it touches
 * only the librdkafka handle and sink memory it was given.
 */
#include <stdlib.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/error.h"
#include "daemon/retire.h"
#include "kafka/kafka_reaper.h"

/* How often the lists are looked at: a drained producer closes, and a
 * source's grace ends, at most this late. */
#define EB_RETIRE_POLL_MS 100
/* While a retired producer still holds events, say so this often. */
#define EB_RETIRE_LOG_MS 10000

struct retiring_source {
    struct retiring_source *next;
    eb_redis_topology_t *src;
    void *ctx;
    int64_t stop_at_ms; /* stopped and destroyed from then on */
};

struct retired_sink {
    struct retired_sink *next;
    eb_kafka_sink_t *sink;
    int64_t since_ms;
    int64_t next_log_ms;
};

struct eb_retire {
    eb_log_t *log;
    eb_metrics_t *metrics;
    eb_kafka_reaper_t *reaper;
    struct event *tick;
    struct retiring_source *sources;
    struct retired_sink *sinks;
};

static void arm(eb_retire_t *rt) {
    if (!event_pending(rt->tick, EV_TIMEOUT, NULL)) {
        struct timeval tv = eb_ms_tv(EB_RETIRE_POLL_MS);
        event_add(rt->tick, &tv);
    }
}

static void free_source(struct retiring_source *s) {
    eb_redis_topology_destroy(s->src);
    free(s->ctx);
    free(s);
}

static void close_sources(eb_retire_t *rt, int64_t now) {
    for (struct retiring_source **pp = &rt->sources; *pp;) {
        struct retiring_source *s = *pp;
        if (now < s->stop_at_ms) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        eb_redis_topology_stop(s->src);
        free_source(s);
    }
}

static void close_sinks(eb_retire_t *rt, int64_t now) {
    for (struct retired_sink **pp = &rt->sinks; *pp;) {
        struct retired_sink *r = *pp;
        size_t left = eb_kafka_sink_inflight(r->sink);
        if (left == 0) {
            *pp = r->next;
            eb_log(rt->log, EB_LOG_INFO, "previous Kafka producer drained; closed",
                   eb_lf_int("drained_in_ms", now - r->since_ms));
            eb_kafka_sink_destroy_async(r->sink, rt->reaper);
            free(r);
            continue;
        }
        if (now >= r->next_log_ms) {
            r->next_log_ms = now + EB_RETIRE_LOG_MS;
            eb_log(rt->log, EB_LOG_WARN,
                   "previous Kafka producer still holds events Kafka has not acknowledged; "
                   "keeping it",
                   eb_lf_int("inflight", (int64_t)left), eb_lf_int("waiting_ms", now - r->since_ms),
                   eb_lf_bool("brokers_reachable", eb_kafka_sink_reachable(r->sink)));
        }
        pp = &r->next;
    }
}

/* @locality loop thread (timer). */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    eb_retire_t *rt = arg;
    int64_t now = eb_mono_ms();
    (void)fd;
    (void)what;
    close_sources(rt, now);
    close_sinks(rt, now);
    if (rt->sources || rt->sinks)
        arm(rt);
}

size_t eb_retire_inflight(const eb_retire_t *rt) {
    size_t n = 0;
    for (const struct retired_sink *r = rt->sinks; r; r = r->next)
        n += eb_kafka_sink_inflight(r->sink);
    return n;
}

static double gauge_inflight(void *opaque) {
    return (double)eb_retire_inflight(opaque);
}

eb_retire_t *eb_retire_new(struct event_base *base, eb_log_t *log, eb_metrics_t *metrics,
                           char *errstr, size_t errstr_size) {
    eb_retire_t *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    rt->log = log;
    rt->metrics = metrics;
    rt->tick = evtimer_new(base, on_tick, rt);
    rt->reaper = eb_kafka_reaper_new(log, errstr, errstr_size);
    if (!rt->tick || !rt->reaper ||
        !eb_metrics_register_gauge_fn(metrics, "eb_kafka_retired_queue_events",
                                      "Events still awaiting Kafka's acknowledgement on producers "
                                      "a reload replaced (they drain, then close).",
                                      gauge_inflight, rt)) {
        eb_retire_destroy(rt);
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    return rt;
}

void eb_retire_source(eb_retire_t *rt, eb_redis_topology_t *src, void *ctx, int grace_ms) {
    if (!src)
        return;
    struct retiring_source *s = calloc(1, sizeof(*s));
    if (grace_ms == 0 || !s)
        eb_redis_topology_stop(src);
    if (!s) {
        /* Stopped, so harmless; not destroyed, since we may be inside one
         * of its callbacks. */
        eb_log(rt->log, EB_LOG_ERROR,
               "out of memory retiring a Redis connection; it is stopped and left open");
        return;
    }
    s->src = src;
    s->ctx = ctx;
    s->stop_at_ms = eb_mono_ms() + grace_ms;
    s->next = rt->sources;
    rt->sources = s;
    arm(rt);
}

void eb_retire_sink(eb_retire_t *rt, eb_kafka_sink_t *k) {
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
    r->next = rt->sinks;
    rt->sinks = r;
    if (eb_kafka_sink_inflight(k))
        eb_log(rt->log, EB_LOG_INFO,
               "previous Kafka producer keeps running until Kafka acknowledges its events",
               eb_lf_int("inflight", (int64_t)eb_kafka_sink_inflight(k)));
    arm(rt);
}

void eb_retire_unused_sink(eb_retire_t *rt, eb_kafka_sink_t *k) {
    eb_kafka_sink_destroy_async(k, rt->reaper);
}

void eb_retire_stop(eb_retire_t *rt) {
    for (struct retiring_source *s = rt->sources; s; s = s->next)
        eb_redis_topology_stop(s->src);
}

void eb_retire_destroy(eb_retire_t *rt) {
    if (!rt)
        return;
    while (rt->sources) {
        struct retiring_source *s = rt->sources;
        rt->sources = s->next;
        free_source(s);
    }
    while (rt->sinks) {
        struct retired_sink *r = rt->sinks;
        rt->sinks = r->next;
        eb_kafka_sink_destroy(r->sink);
        free(r);
    }
    eb_kafka_reaper_destroy(rt->reaper);
    if (rt->metrics)
        eb_metrics_unbind(rt->metrics, rt);
    if (rt->tick)
        event_free(rt->tick);
    free(rt);
}
