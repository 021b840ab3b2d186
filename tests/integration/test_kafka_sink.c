/* test_kafka_sink.c -- the Kafka sink against librdkafka's mock cluster (a
 * separate process, tests/support/mock_kafka.c): ack-after-delivery, the
 * queue bound, outages, oversize messages, reserved properties, teardown,
 * and destroying a producer while librdkafka is slow to stop (a broker
 * thread held in a DNS lookup) without blocking the loop. */
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/error.h"
#include "fixture.h"
#include "kafka/kafka_props.h"
#include "kafka/kafka_reaper.h"
#include "kafka/kafka_sink.h"

/* ------------------------------------------------------------------------
 * ThreadSanitizer builds (EB_SANITIZE=thread)
 *
 * Debian's librdkafka starts its threads and takes its locks through C11
 * <threads.h>, which glibc implements without the pthread calls TSan
 * intercepts: TSan would not know those threads (our log callback running
 * on one of them crashes inside TSan's runtime) nor see their locks. The
 * definitions below come first in symbol lookup, for librdkafka too, and
 * route C11 threads through pthreads, which TSan sees, so a race in our
 * code -- the loop thread, librdkafka's threads calling back, the reaper's
 * thread -- is reported.
 * --------------------------------------------------------------------- */
#if defined(__SANITIZE_THREAD__)
#include <errno.h>
#include <threads.h>

/* One race remains, inside librdkafka: a broker's rwlock destroyed once
 * its reference count (an atomic TSan cannot see) reaches zero. We use no
 * rwlock, so suppressing rwlock-destroy races hides none of ours. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) {
    return "race:pthread_rwlock_destroy\n";
}

struct c11_start {
    thrd_start_t fn;
    void *arg;
};

static void *c11_trampoline(void *p) {
    struct c11_start s = *(struct c11_start *)p;
    free(p);
    return (void *)(intptr_t)s.fn(s.arg);
}

static int c11_result(int rc) {
    return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : rc == EBUSY ? thrd_busy
                                                                                  : thrd_error;
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg) {
    struct c11_start *s = malloc(sizeof(*s));
    if (!s)
        return thrd_nomem;
    s->fn = fn;
    s->arg = arg;
    int rc = pthread_create(thr, NULL, c11_trampoline, s);
    if (rc != 0)
        free(s);
    return c11_result(rc);
}

int thrd_join(thrd_t thr, int *res) {
    void *ret;
    int rc = pthread_join(thr, &ret);
    if (rc == 0 && res)
        *res = (int)(intptr_t)ret;
    return c11_result(rc);
}

int thrd_detach(thrd_t thr) {
    return c11_result(pthread_detach(thr));
}

int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return c11_result(rc);
}

int mtx_lock(mtx_t *m) {
    return c11_result(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m) {
    return c11_result(pthread_mutex_trylock((pthread_mutex_t *)m));
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts) {
    return c11_result(pthread_mutex_timedlock((pthread_mutex_t *)m, ts));
}

int mtx_unlock(mtx_t *m) {
    return c11_result(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m) {
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c) {
    return c11_result(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c) {
    return c11_result(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c) {
    return c11_result(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m) {
    return c11_result(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts) {
    return c11_result(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts));
}

void cnd_destroy(cnd_t *c) {
    pthread_cond_destroy((pthread_cond_t *)c);
}
#endif

/* ------------------------------------------------------------------------
 * A resolver held on purpose
 *
 * librdkafka resolves broker names with getaddrinfo() on its broker
 * threads. This program defines getaddrinfo() itself, so those calls land
 * here (the executable comes first in symbol lookup): a name ending in
 * ".slow.test" waits while the test holds the resolver, then fails as a
 * resolver timeout would; every other name goes to the C library.
 * --------------------------------------------------------------------- */

#define SLOW_BROKER "kafka.slow.test:9092"

static pthread_mutex_t dns_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dns_cv = PTHREAD_COND_INITIALIZER;
static bool dns_held;   /* guarded by dns_mu */
static int dns_waiting; /* lookups held right now; guarded by dns_mu */

typedef int(getaddrinfo_fn)(const char *, const char *, const struct addrinfo *,
                            struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
    size_t n = node ? strlen(node) : 0;
    if (n < 10 || strcmp(node + n - 10, ".slow.test") != 0) {
        getaddrinfo_fn *real = (getaddrinfo_fn *)dlsym(RTLD_NEXT, "getaddrinfo");
        return real(node, service, hints, res);
    }
    struct timespec give_up;
    clock_gettime(CLOCK_REALTIME, &give_up);
    give_up.tv_sec += 30; /* a test that forgets to let go still ends */
    pthread_mutex_lock(&dns_mu);
    dns_waiting++;
    pthread_cond_broadcast(&dns_cv);
    while (dns_held && pthread_cond_timedwait(&dns_cv, &dns_mu, &give_up) == 0)
        ;
    dns_waiting--;
    pthread_mutex_unlock(&dns_mu);
    return EAI_AGAIN;
}

static void hold_dns(void) {
    pthread_mutex_lock(&dns_mu);
    dns_held = true;
    pthread_mutex_unlock(&dns_mu);
}

static void release_dns(void) {
    pthread_mutex_lock(&dns_mu);
    dns_held = false;
    pthread_cond_broadcast(&dns_cv);
    pthread_mutex_unlock(&dns_mu);
}

static bool dns_lookup_held(void *arg) {
    (void)arg;
    pthread_mutex_lock(&dns_mu);
    bool held = dns_waiting > 0;
    pthread_mutex_unlock(&dns_mu);
    return held;
}

/* The slow resolver answers after ms: a thread of the test lets go. */
static void *release_dns_after(void *arg) {
    struct timespec ts = {0, (long)(intptr_t)arg * 1000000L};
    nanosleep(&ts, NULL);
    release_dns();
    return NULL;
}

struct ctx {
    struct eb_fix_kafka kafka;
    struct event_base *base;
    eb_log_t *log;
    eb_log_t *reaper_log; /* the reaper's, written to reaper_pipe */
    int reaper_pipe[2];
    int reaper_stops;     /* "retired Kafka producer stopped" lines read */
    eb_metrics_t *metrics;
    eb_kafka_sink_t *sink;
    int delivered;
    int failed;
    int last_err;
    int64_t last_now_ns;
};

static void on_delivery(void *msg_opaque, int err, const char *reason, int64_t now_mono_ns,
                        void *opaque) {
    struct ctx *c = opaque;
    (void)reason;
    (*(int *)msg_opaque)++; /* each message carries a counter: called exactly once */
    if (err == 0)
        c->delivered++;
    else
        c->failed++;
    c->last_err = err;
    c->last_now_ns = now_mono_ns;
}

static eb_kafka_sink_t *make_sink_to(struct ctx *c, const char *brokers, size_t max_events,
                                     const struct eb_kv *client, size_t nclient) {
    char errstr[512];
    struct eb_kafka_sink_conf kc = {
        .brokers = brokers,
        .client = client,
        .nclient = nclient,
        .queue_max_events = max_events,
        .queue_max_bytes = 64 << 20,
        .log = c->log,
        .metrics = c->metrics,
        .on_delivery = on_delivery,
        .opaque = c,
    };
    eb_kafka_sink_t *k = eb_kafka_sink_new(c->base, &kc, errstr, sizeof(errstr));
    if (!k)
        fail_msg("eb_kafka_sink_new: %s", errstr);
    return k;
}

static eb_kafka_sink_t *make_sink(struct ctx *c, size_t max_events, const struct eb_kv *client,
                                  size_t nclient) {
    return make_sink_to(c, c->kafka.bootstrap, max_events, client, nclient);
}

static int setup(void **state) {
    struct ctx *c = calloc(1, sizeof(*c));
    eb_fix_kafka_start(&c->kafka, 3);
    c->base = event_base_new();
    c->log = eb_log_new(2, EB_LOG_ERROR);
    c->metrics = eb_metrics_new();
    if (pipe2(c->reaper_pipe, O_NONBLOCK | O_CLOEXEC) != 0)
        return -1;
    c->reaper_log = eb_log_new(c->reaper_pipe[1], EB_LOG_INFO);
    *state = c;
    return 0;
}

static int teardown(void **state) {
    struct ctx *c = *state;
    release_dns();
    eb_kafka_sink_destroy(c->sink);
    /* Nothing of the sink may stay registered on the loop. */
    assert_int_equal(event_base_get_num_events(c->base, EVENT_BASE_COUNT_ADDED), 0);
    eb_metrics_destroy(c->metrics);
    eb_log_destroy(c->log);
    eb_log_destroy(c->reaper_log);
    close(c->reaper_pipe[0]);
    close(c->reaper_pipe[1]);
    event_base_free(c->base);
    eb_fix_kafka_stop(&c->kafka);
    free(c);
    return 0;
}

struct loop_until {
    struct ctx *c;
    int want;
};

static bool delivered_enough(void *arg) {
    struct loop_until *u = arg;
    event_base_loop(u->c->base, EVLOOP_NONBLOCK);
    return u->c->delivered + u->c->failed >= u->want;
}

static void run_loop_until(struct ctx *c, int reports, int timeout_ms) {
    struct loop_until u = {c, reports};
    assert_true(eb_fix_wait_until(delivered_enough, &u, timeout_ms));
}

static int produce(struct ctx *c, eb_kafka_topic_t *t, const char *value, int *counter) {
    const char *reason;
    struct eb_header h = {"content-type", "application/cloudevents+json", 28};
    return eb_kafka_sink_produce(c->sink, t, "k", 1, value, strlen(value), &h, 1, counter, &reason);
}

static void test_sink_reports_each_message_exactly_once_after_kafka_acknowledged_it(void **state) {
    struct ctx *c = *state;
    c->sink = make_sink(c, 1000, NULL, 0);
    eb_kafka_topic_t *t = eb_kafka_sink_topic(c->sink, "sink.ack");
    int counters[50] = {0};
    for (int i = 0; i < 50; i++)
        assert_int_equal(produce(c, t, "{\"n\":1}", &counters[i]), 0);
    assert_int_equal(eb_kafka_sink_inflight(c->sink), 50);
    run_loop_until(c, 50, 20000);
    assert_int_equal(c->delivered, 50);
    assert_int_equal(c->failed, 0);
    assert_int_equal(eb_kafka_sink_inflight(c->sink), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(counters[i], 1);
    /* the batch's clock is a recent CLOCK_MONOTONIC reading */
    assert_true(c->last_now_ns > (eb_fix_now_ms() - 20000) * 1000000);
}

static void test_sink_refuses_at_the_queue_bound_without_blocking(void **state) {
    struct ctx *c = *state;
    c->sink = make_sink(c, 10, NULL, 0);
    eb_kafka_topic_t *t = eb_kafka_sink_topic(c->sink, "sink.bound");
    assert_true(eb_fix_kafka_cmd(&c->kafka, "down"));
    int counters[15] = {0};
    int64_t start = eb_fix_now_ms();
    for (int i = 0; i < 10; i++)
        assert_int_equal(produce(c, t, "x", &counters[i]), 0);
    for (int i = 10; i < 15; i++)
        assert_int_equal(produce(c, t, "x", &counters[i]), EB_EFULL);
    assert_true(eb_fix_now_ms() - start < 1000);
    assert_int_equal(eb_kafka_sink_inflight(c->sink), 10);
    assert_true(eb_fix_kafka_cmd(&c->kafka, "up"));
    run_loop_until(c, 10, 30000);
    assert_int_equal(c->delivered, 10);
    for (int i = 10; i < 15; i++)
        assert_int_equal(counters[i], 0); /* refused messages get no report */
}

static void test_sink_holds_messages_through_an_outage_and_delivers_them(void **state) {
    struct ctx *c = *state;
    c->sink = make_sink(c, 1000, NULL, 0);
    eb_kafka_topic_t *t = eb_kafka_sink_topic(c->sink, "sink.outage");
    int counters[100] = {0};
    assert_int_equal(produce(c, t, "warm", &counters[0]), 0);
    run_loop_until(c, 1, 20000);
    assert_true(eb_fix_kafka_cmd(&c->kafka, "down"));
    for (int i = 1; i < 100; i++)
        assert_int_equal(produce(c, t, "held", &counters[i]), 0);
    /* Turn the loop for a while with every broker down: nothing may fail. */
    struct loop_until none = {c, 1000};
    assert_false(eb_fix_wait_until(delivered_enough, &none, 2000));
    assert_int_equal(c->failed, 0);
    assert_true(eb_fix_kafka_cmd(&c->kafka, "up"));
    run_loop_until(c, 100, 30000);
    assert_int_equal(c->delivered, 100);
    assert_int_equal(c->failed, 0);
}

static void test_sink_refuses_a_message_over_message_max_bytes(void **state) {
    struct ctx *c = *state;
    struct eb_kv props[] = {{"message.max.bytes", "10000", {0, 0}}};
    c->sink = make_sink(c, 1000, props, 1);
    eb_kafka_topic_t *t = eb_kafka_sink_topic(c->sink, "sink.big");
    char *big = malloc(20001);
    memset(big, 'x', 20000);
    big[20000] = '\0';
    int counter = 0;
    assert_int_equal(produce(c, t, big, &counter), EB_ETOOBIG);
    assert_int_equal(eb_kafka_sink_inflight(c->sink), 0);
    free(big);
}

static void test_sink_reports_reachable_once_a_broker_is_up(void **state) {
    struct ctx *c = *state;
    c->sink = make_sink(c, 1000, NULL, 0);
    eb_kafka_topic_t *t = eb_kafka_sink_topic(c->sink, "sink.reach");
    int counter = 0;
    assert_int_equal(produce(c, t, "x", &counter), 0);
    run_loop_until(c, 1, 20000);
    assert_true(eb_kafka_sink_reachable(c->sink));
}

static void test_sink_destroy_reports_undeliverable_messages_as_failed(void **state) {
    struct ctx *c = *state;
    c->sink = make_sink(c, 1000, NULL, 0);
    eb_kafka_topic_t *t = eb_kafka_sink_topic(c->sink, "sink.purge");
    assert_true(eb_fix_kafka_cmd(&c->kafka, "down"));
    int counters[5] = {0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(produce(c, t, "x", &counters[i]), 0);
    eb_kafka_sink_destroy(c->sink);
    c->sink = NULL;
    assert_int_equal(c->failed, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(counters[i], 1);
}


/* ------------------------------------------------------------------------
 * Stopping librdkafka off the loop
 * --------------------------------------------------------------------- */

static eb_kafka_reaper_t *make_reaper(struct ctx *c) {
    char errstr[256];
    eb_kafka_reaper_t *r = eb_kafka_reaper_new(c->reaper_log, errstr, sizeof(errstr));
    if (!r)
        fail_msg("eb_kafka_reaper_new: %s", errstr);
    return r;
}

/* Handles the reaper has finished destroying: it logs each one (lines are
 * short, so one read never cuts the text counted here). */
static int reaper_stops(struct ctx *c) {
    char buf[4096];
    ssize_t n;
    while ((n = read(c->reaper_pipe[0], buf, sizeof(buf) - 1)) > 0) {
        buf[n] = '\0';
        for (char *p = buf; (p = strstr(p, "retired Kafka producer stopped")); p++)
            c->reaper_stops++;
    }
    return c->reaper_stops;
}

/* A producer whose broker thread is inside getaddrinfo(), as with a slow
 * or unreachable resolver. */
static void make_sink_stuck_in_dns(struct ctx *c) {
    hold_dns();
    c->sink = make_sink_to(c, SLOW_BROKER, 1000, NULL, 0);
    assert_true(eb_fix_wait_until(dns_lookup_held, NULL, 10000));
}

/* What blocks: rd_kafka_destroy() joins librdkafka's threads, and a broker
 * thread waiting in a DNS lookup ends only when the lookup does. The
 * daemon used to destroy retired producers this way, on the loop. */
static void test_sink_destroy_waits_for_a_broker_thread_in_a_dns_lookup(void **state) {
    struct ctx *c = *state;
    pthread_t releaser;
    make_sink_stuck_in_dns(c);
    assert_int_equal(pthread_create(&releaser, NULL, release_dns_after, (void *)(intptr_t)600), 0);
    int64_t start = eb_fix_now_ms();
    eb_kafka_sink_destroy(c->sink);
    c->sink = NULL;
    int64_t took = eb_fix_now_ms() - start;
    pthread_join(releaser, NULL);
    assert_true(took >= 500);
}

struct ticks {
    struct event_base *base;
    int fired;
    int64_t worst_late_ms;
    int64_t due_ms;
};

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    struct ticks *t = arg;
    int64_t late = eb_fix_now_ms() - t->due_ms;
    (void)fd;
    (void)what;
    t->fired++;
    t->worst_late_ms = late > t->worst_late_ms ? late : t->worst_late_ms;
}

/* The loop keeps its timers while the reaper's thread waits on librdkafka:
 * twenty 10 ms timers in a row each fire within 50 ms of their time. */
static void assert_loop_turns_on_time(struct ctx *c) {
    struct ticks t = {c->base, 0, 0, 0};
    struct event *ev = evtimer_new(c->base, on_tick, &t);
    for (int i = 0; i < 20; i++) {
        struct timeval tv = {0, 10000};
        t.due_ms = eb_fix_now_ms() + 10;
        evtimer_add(ev, &tv);
        event_base_loop(c->base, EVLOOP_ONCE);
        assert_int_equal(reaper_stops(c), 0); /* librdkafka is still stopping */
    }
    event_free(ev);
    assert_int_equal(t.fired, 20);
    assert_true(t.worst_late_ms < 50);
}

static bool reaper_stopped_one(void *arg) {
    return reaper_stops(arg) == 1;
}

static void test_sink_destroy_async_returns_at_once_and_the_loop_keeps_turning(void **state) {
    struct ctx *c = *state;
    eb_kafka_reaper_t *r = make_reaper(c);
    make_sink_stuck_in_dns(c);
    int64_t start = eb_fix_now_ms();
    eb_kafka_sink_destroy_async(c->sink, r);
    c->sink = NULL;
    assert_true(eb_fix_now_ms() - start < 100);
    /* Nothing of the producer is left on the loop. */
    assert_int_equal(event_base_get_num_events(c->base, EVENT_BASE_COUNT_ADDED), 0);
    assert_loop_turns_on_time(c);
    release_dns();
    assert_true(eb_fix_wait_until(reaper_stopped_one, c, 10000));
    eb_kafka_reaper_destroy(r);
}

/* At exit the reaper is joined: every handle it took is destroyed first
 * (the logger it writes to is freed after it). */
static void test_reaper_destroy_waits_for_every_handle_it_took(void **state) {
    struct ctx *c = *state;
    pthread_t releaser;
    eb_kafka_reaper_t *r = make_reaper(c);
    make_sink_stuck_in_dns(c);
    eb_kafka_sink_destroy_async(c->sink, r);
    c->sink = NULL;
    assert_int_equal(pthread_create(&releaser, NULL, release_dns_after, (void *)(intptr_t)400), 0);
    int64_t start = eb_fix_now_ms();
    eb_kafka_reaper_destroy(r);
    int64_t took = eb_fix_now_ms() - start;
    pthread_join(releaser, NULL);
    assert_true(took >= 300);
    assert_int_equal(reaper_stops(c), 1);
}

/* A producer that still holds messages is not handed over: they are purged
 * and reported as failed on the calling thread first. */
static void test_sink_destroy_async_reports_held_messages_on_the_calling_thread(void **state) {
    struct ctx *c = *state;
    eb_kafka_reaper_t *r = make_reaper(c);
    c->sink = make_sink(c, 1000, NULL, 0);
    eb_kafka_topic_t *t = eb_kafka_sink_topic(c->sink, "sink.async");
    assert_true(eb_fix_kafka_cmd(&c->kafka, "down"));
    int counters[5] = {0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(produce(c, t, "x", &counters[i]), 0);
    eb_kafka_sink_destroy_async(c->sink, r);
    c->sink = NULL;
    assert_int_equal(c->failed, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(counters[i], 1);
    eb_kafka_reaper_destroy(r);
    assert_int_equal(reaper_stops(c), 0); /* the reaper never had it */
}

static void test_check_props_refuses_properties_the_bridge_owns(void **state) {
    (void)state;
    char errstr[512];
    size_t bad = 99;
    struct eb_kv props[] = {{"linger.ms", "2", {0, 0}}, {"acks", "1", {0, 0}}};
    assert_int_equal(eb_kafka_props_check(props, 2, &bad, errstr, sizeof(errstr)), EB_ECONFIG);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(errstr, "acks"));
}

static void test_check_props_names_an_unknown_property(void **state) {
    (void)state;
    char errstr[512];
    size_t bad = 99;
    struct eb_kv props[] = {{"compresion.type", "lz4", {0, 0}}};
    assert_int_equal(eb_kafka_props_check(props, 1, &bad, errstr, sizeof(errstr)), EB_ECONFIG);
    assert_int_equal(bad, 0);
    assert_non_null(strstr(errstr, "compresion.type"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_sink_reports_each_message_exactly_once_after_kafka_acknowledged_it, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_sink_refuses_at_the_queue_bound_without_blocking,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sink_holds_messages_through_an_outage_and_delivers_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sink_refuses_a_message_over_message_max_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sink_reports_reachable_once_a_broker_is_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sink_destroy_reports_undeliverable_messages_as_failed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sink_destroy_waits_for_a_broker_thread_in_a_dns_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sink_destroy_async_returns_at_once_and_the_loop_keeps_turning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reaper_destroy_waits_for_every_handle_it_took, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_sink_destroy_async_reports_held_messages_on_the_calling_thread, setup, teardown),
        cmocka_unit_test(test_check_props_refuses_properties_the_bridge_owns),
        cmocka_unit_test(test_check_props_names_an_unknown_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
