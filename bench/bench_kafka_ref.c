/* bench_kafka_ref.c -- the Kafka reference: what librdkafka alone costs per
 * message with the bridge's producer settings and message format.
 *
 *   bench_kafka_ref -b BROKERS -t TOPIC -n N [--source URL] [--route NAME]
 *                   [--prefix P] [--rate R] [--window W] [-X NAME=VALUE]...
 *
 * Produces N pre-encoded messages and waits for every delivery report. The
 * value is one structured CloudEvent made by the bridge's own encoder
 * (event.h) for a key of the bench's shape, so it has the bridge's exact
 * size; the Kafka key is the order id (the bench route's key template
 * "{order_id}"), different per message so the partitioner spreads them as it
 * does for the bridge; one header, content-type, as in structured mode.
 * Producer settings are kafka_sink.c's: idempotence, acks=all,
 * message.timeout.ms=0, statistics every second, reconnect backoff capped at
 * 1 s, the bench config's queue bounds, RD_KAFKA_MSG_F_COPY, a header set
 * allocated per message. Everything the bridge does besides (reading Redis,
 * routing, encoding, counting) is what the comparison measures.
 *
 * By default it produces as fast as librdkafka takes them, which is the
 * reference issue 3 asks for. --rate paces production (1 ms grid) so the
 * producer sees the pace the bridge produced at, and --window caps messages
 * awaiting a report; both change librdkafka's cost per message (batch sizes,
 * wakeups), which is why bench.py reports the paced reference beside it.
 *
 * --latency 1 records each message's produce -> delivery report time (the
 * send time rides in the message's opaque) and prints its p50/p99: the
 * reference for the bridge's notification -> delivery latency at a steady
 * rate. Off by default: the clock read per message is not the bridge's cost.
 *
 * -X adds librdkafka properties (the bench's --client, given to the bridge
 * too, to evaluate a setting on both sides).
 *
 * --hold 1 (for counting instructions under callgrind, bench.py's callgrind
 * scenario): after the warm-up it prints "READY" and waits for a line on
 * stdin before producing, and once every report is in it prints "DONE" and
 * waits for another line before reporting and destroying the producer, so
 * the driver can zero and dump the counters around exactly the N messages.
 *
 * One warm-up message is delivered first (metadata, connections, producer
 * id), as the bridge has them before a burst arrives. Prints one JSON line
 * with wall time, msgs/s and CPU per message (getrusage RUSAGE_SELF: user +
 * sys of every thread, librdkafka's included); exit 1 unless every message
 * was delivered without error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "core/event.h"

#include "bench_args.h"

struct opts {
    const char *brokers;
    const char *topic;
    long long n;
    const char *source;
    const char *route;
    const char *prefix;
    long long window;      /* most messages awaiting a delivery report; 0: no limit */
    double rate;           /* messages/s, paced from a 1 ms tick; 0: as fast as possible */
    const char *extra[16]; /* -X name=value: more librdkafka properties */
    int nextra;
    int latency; /* --latency 1: record produce -> delivery report per message */
    int hold;    /* --hold 1: READY/DONE handshakes on stdin around the timed part */
};

struct counts {
    long long delivered;
    long long failed;
    const char *first_error;
    int64_t *lat_us; /* --latency: one entry per delivered message */
    long long nlat;
    long long lat_cap;
};

static int64_t now_us(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct cpu {
    int64_t user_us, sys_us;
    long minflt;
    long csw; /* context switches, voluntary + involuntary, every thread: wakeups */
};

static struct cpu cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (struct cpu){(int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
                        (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, ru.ru_minflt,
                        ru.ru_nvcsw + ru.ru_nivcsw};
}

static void usage(void) {
    fprintf(stderr, "usage: bench_kafka_ref -b BROKERS -t TOPIC -n N [--source URL] "
                    "[--route NAME] [--prefix P] [--rate R] [--window W] [--latency 1] "
                    "[--hold 1] [-X NAME=VALUE]...\n");
    exit(2);
}

/* -X NAME=VALUE, repeatable: one more librdkafka property. */
static bool extra_property(const char *flag, const char *value, void *opaque) {
    struct opts *o = opaque;
    if (strcmp(flag, "-X") != 0 || o->nextra >= 16 || !strchr(value, '='))
        return false;
    o->extra[o->nextra++] = value;
    return true;
}

static void parse(int argc, char **argv, struct opts *o) {
    *o = (struct opts){.source = "redis://127.0.0.1:6379/0",
                       .route = "order-confirm",
                       .prefix = "laravel_cache:ORDER_CONFIRM:"};
    const struct bench_arg args[] = {
        {"-b", BA_STR, &o->brokers},
        {"-t", BA_STR, &o->topic},
        {"-n", BA_LL, &o->n},
        {"--source", BA_STR, &o->source},
        {"--route", BA_STR, &o->route},
        {"--prefix", BA_STR, &o->prefix},
        {"--window", BA_LL, &o->window},
        {"--rate", BA_DBL, &o->rate},
        {"--latency", BA_INT, &o->latency},
        {"--hold", BA_INT, &o->hold},
    };
    bench_args_parse(argc, argv, 1, args, sizeof(args) / sizeof(args[0]), extra_property, o, usage);
    if (!o->brokers || !o->topic || o->n <= 0)
        usage();
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    struct counts *c = opaque;
    if (m->err) {
        c->failed++;
        if (!c->first_error)
            c->first_error = rd_kafka_err2str(m->err);
    } else {
        c->delivered++;
        if (c->lat_us && m->_private && c->nlat < c->lat_cap)
            c->lat_us[c->nlat++] = now_us(CLOCK_MONOTONIC) - (int64_t)(intptr_t)m->_private;
    }
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double quantile_ms(int64_t *v, long long n, double q) {
    if (n == 0)
        return 0;
    long long i = (long long)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

/* The bridge parses these for broker state; the reference only receives
 * them, so their librdkafka-side cost is in both. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    (void)rk, (void)json, (void)len, (void)opaque;
    return 0;
}

static rd_kafka_t *make_producer(const struct opts *o, struct counts *c) {
    static const char *props[][2] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"queue.buffering.max.messages", "1000000"}, /* the bench config's bounds */
        {"queue.buffering.max.kbytes", "1048576"},
        {"message.timeout.ms", "0"},
        {"statistics.interval.ms", "1000"},
        {"reconnect.backoff.max.ms", "1000"},
    };
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", o->brokers, err, sizeof(err)))
        goto fail;
    for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
        if (rd_kafka_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)))
            goto fail;
    }
    for (int i = 0; i < o->nextra; i++) {
        char name[128];
        const char *eq = strchr(o->extra[i], '=');
        snprintf(name, sizeof(name), "%.*s", (int)(eq - o->extra[i]), o->extra[i]);
        if (rd_kafka_conf_set(conf, name, eq + 1, err, sizeof(err)))
            goto fail;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk)
        return rk;
fail:
    fprintf(stderr, "bench_kafka_ref: %s\n", err);
    exit(1);
}

/* One structured CloudEvent of the bench's shape, from the bridge's encoder. */
static void encode_value(const struct opts *o, struct eb_encoded *enc) {
    char key[128], id[] = "123456";
    int klen = snprintf(key, sizeof(key), "%s%s", o->prefix, id);
    struct eb_capture cap = {"order_id", id, strlen(id)};
    struct eb_event ev = {
        .event = "expired",
        .key = key,
        .key_len = (size_t)klen,
        .db = 0,
        .source = o->source,
        .route = o->route,
        .params = &cap,
        .nparams = 1,
        .delivery = EB_DELIVERY_LIVE,
        .time_us = now_us(CLOCK_REALTIME),
        .deadline_ms = -1,
    };
    eb_event_encoded_init(enc);
    if (eb_event_encode(&ev, EB_FORMAT_CLOUDEVENTS, NULL, 0, enc) != 0 || enc->nheaders != 1) {
        fprintf(stderr, "bench_kafka_ref: cannot encode the reference event\n");
        exit(1);
    }
}

static void produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const struct eb_encoded *enc,
                    const char *key, size_t key_len, bool stamp) {
    void *sent = stamp ? (void *)(intptr_t)now_us(CLOCK_MONOTONIC) : NULL;
    for (;;) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, enc->headers[0].name, -1, enc->headers[0].value,
                            (ssize_t)enc->headers[0].value_len);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(enc->value.data, enc->value.len),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(sent), RD_KAFKA_V_END);
        if (!err)
            return;
        rd_kafka_headers_destroy(h);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "bench_kafka_ref: produce: %s\n", rd_kafka_err2str(err));
            exit(1);
        }
        rd_kafka_poll(rk, 10); /* cannot happen with the bench's bounds; be safe */
    }
}

/* Paced mode: before message i, wait (serving delivery reports) until its
 * slot on a 1 ms grid, so the producer sees the bridge's pace instead of one
 * giant queue. */
static void pace(rd_kafka_t *rk, int64_t t0, long long i, double rate) {
    int64_t due = t0 + (int64_t)((double)i * 1e6 / rate);
    due -= due % 1000;
    while (now_us(CLOCK_MONOTONIC) < due)
        rd_kafka_poll(rk, 1);
}

/* --hold: say where we are, then wait for the driver's go-ahead line. */
static void hold(const struct opts *o, const char *word) {
    char line[16];
    if (!o->hold)
        return;
    printf("%s\n", word);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        exit(1);
}

static bool wait_delivered(rd_kafka_t *rk, const struct counts *c, long long want, int timeout_s) {
    int64_t deadline = now_us(CLOCK_MONOTONIC) + (int64_t)timeout_s * 1000000;
    while (c->delivered + c->failed < want && now_us(CLOCK_MONOTONIC) < deadline)
        rd_kafka_poll(rk, 50);
    return c->delivered + c->failed >= want;
}

int main(int argc, char **argv) {
    struct opts o;
    struct counts c = {0};
    struct eb_encoded enc;
    parse(argc, argv, &o);
    encode_value(&o, &enc);

    /* Keys made before timing: the bridge renders its key per event, which
     * is part of the overhead being measured, not of the reference. */
    char(*keys)[24] = malloc((size_t)o.n * sizeof(*keys));
    size_t *klens = malloc((size_t)o.n * sizeof(*klens));
    if (!keys || !klens)
        return 1;
    for (long long i = 0; i < o.n; i++)
        klens[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "%lld", i);

    rd_kafka_t *rk = make_producer(&o, &c);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o.topic, NULL);
    produce(rk, rkt, &enc, "warmup", 6, false);
    if (!wait_delivered(rk, &c, 1, 30) || c.failed) {
        fprintf(stderr, "bench_kafka_ref: warm-up message not delivered: %s\n",
                c.first_error ? c.first_error : "timeout");
        return 1;
    }
    c.delivered = 0;
    if (o.latency) {
        c.lat_cap = o.n;
        c.lat_us = malloc((size_t)o.n * sizeof(*c.lat_us));
        if (!c.lat_us)
            return 1;
    }

    hold(&o, "READY");
    struct cpu cpu0 = cpu_now();
    int64_t t0 = now_us(CLOCK_MONOTONIC);
    for (long long i = 0; i < o.n; i++) {
        if (o.rate > 0)
            pace(rk, t0, i, o.rate);
        produce(rk, rkt, &enc, keys[i], klens[i], o.latency != 0);
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0); /* serve delivery reports as the bridge's loop does */
        while (o.window > 0 && i + 1 - c.delivered - c.failed >= o.window)
            rd_kafka_poll(rk, 1);
    }
    bool done = wait_delivered(rk, &c, o.n, 120);
    int64_t t1 = now_us(CLOCK_MONOTONIC);
    struct cpu cpu1 = cpu_now();
    hold(&o, "DONE");
    int64_t used = cpu1.user_us + cpu1.sys_us - cpu0.user_us - cpu0.sys_us;

    double secs = (double)(t1 - t0) / 1e6;
    if (c.lat_us)
        qsort(c.lat_us, (size_t)c.nlat, sizeof(*c.lat_us), cmp_i64);
    printf("{\"tool\":\"kafka_ref\",\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f,",
           quantile_ms(c.lat_us, c.nlat, 0.5), quantile_ms(c.lat_us, c.nlat, 0.99));
    printf("\"n\":%lld,\"delivered\":%lld,\"failed\":%lld,"
           "\"seconds\":%.6f,\"msgs_per_s\":%.1f,\"cpu_us\":%lld,\"cpu_us_per_msg\":%.4f,"
           "\"user_us\":%lld,\"sys_us\":%lld,\"minor_faults\":%ld,\"window\":%lld,\"rate\":%.0f,"
           "\"value_bytes\":%zu,\"headers\":%zu,\"csw\":%ld}\n",
           o.n, c.delivered, c.failed, secs, (double)c.delivered / secs, (long long)used,
           (double)used / (double)o.n, (long long)(cpu1.user_us - cpu0.user_us),
           (long long)(cpu1.sys_us - cpu0.sys_us), cpu1.minflt - cpu0.minflt, o.window, o.rate,
           enc.value.len, enc.nheaders, cpu1.csw - cpu0.csw);
    fflush(stdout);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    eb_event_encoded_free(&enc);
    free(keys);
    free(klens);
    free(c.lat_us);
    if (!done || c.failed || c.delivered != o.n) {
        fprintf(stderr, "bench_kafka_ref: delivered %lld of %lld (%lld failed: %s)\n", c.delivered,
                o.n, c.failed, c.first_error ? c.first_error : "timeout");
        return 1;
    }
    return 0;
}
