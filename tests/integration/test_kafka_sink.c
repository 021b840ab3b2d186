/* test_kafka_sink.c -- the Kafka sink against librdkafka's mock cluster (a
 * separate process, tests/support/mock_kafka.c): ack-after-delivery, the
 * queue bound, outages, oversize messages, reserved properties, teardown. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/error.h"
#include "fixture.h"
#include "kafka/kafka_props.h"
#include "kafka/kafka_sink.h"

struct ctx {
    struct eb_fix_kafka kafka;
    struct event_base *base;
    eb_log_t *log;
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

static eb_kafka_sink_t *make_sink(struct ctx *c, size_t max_events, const struct eb_kv *client,
                                  size_t nclient) {
    char errstr[512];
    struct eb_kafka_sink_conf kc = {
        .brokers = c->kafka.bootstrap,
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

static int setup(void **state) {
    struct ctx *c = calloc(1, sizeof(*c));
    eb_fix_kafka_start(&c->kafka, 3);
    c->base = event_base_new();
    c->log = eb_log_new(2, EB_LOG_ERROR);
    c->metrics = eb_metrics_new();
    *state = c;
    return 0;
}

static int teardown(void **state) {
    struct ctx *c = *state;
    eb_kafka_sink_destroy(c->sink);
    /* Nothing of the sink may stay registered on the loop. */
    assert_int_equal(event_base_get_num_events(c->base, EVENT_BASE_COUNT_ADDED), 0);
    eb_metrics_destroy(c->metrics);
    eb_log_destroy(c->log);
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
        cmocka_unit_test(test_check_props_refuses_properties_the_bridge_owns),
        cmocka_unit_test(test_check_props_names_an_unknown_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
