/* test_backlog.c -- the read-ahead backlog: order, exact bytes, bounds,
 * slices at low priority, teardown. Drives a real libevent loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "bridge/backlog.h"

#define NPRIO 3
#define LOW   (NPRIO - 1)

struct seen {
    int count;
    char keys[64][64];
    size_t lens[64];
    int dbs[64];
    int order_mark; /* value of `high_runs` when the first delivery happened */
    int *high_runs;
};

struct fix {
    struct event_base *base;
    eb_metrics_t *metrics;
    eb_log_t *log;
    eb_backlog_t *b;
    struct seen seen;
    int high_runs;
};

static void record(const struct eb_notification *n, void *opaque) {
    struct seen *s = opaque;
    if (s->count == 0)
        s->order_mark = *s->high_runs;
    if (s->count < 64) {
        memcpy(s->keys[s->count], n->key, n->key_len < 64 ? n->key_len : 64);
        s->lens[s->count] = n->key_len;
        s->dbs[s->count] = n->db;
    }
    s->count++;
}

static eb_backlog_t *make(struct fix *f, size_t max_events, size_t max_bytes) {
    char errstr[256];
    struct eb_backlog_conf c = {max_events, max_bytes, LOW, record, &f->seen, f->log, f->metrics};
    eb_backlog_t *b = eb_backlog_new(f->base, &c, errstr, sizeof(errstr));
    assert_non_null(b);
    return b;
}

static int setup(void **state) {
    struct fix *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    event_base_priority_init(f->base, NPRIO);
    f->metrics = eb_metrics_new();
    f->log = eb_log_new(2, EB_LOG_ERROR + 1); /* quiet: drops are expected here */
    f->seen.high_runs = &f->high_runs;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fix *f = *state;
    eb_backlog_destroy(f->b);
    assert_int_equal(event_base_get_num_events(f->base, EVENT_BASE_COUNT_ADDED), 0);
    eb_metrics_destroy(f->metrics);
    eb_log_destroy(f->log);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void push(eb_backlog_t *b, const char *key, size_t len, int db) {
    struct eb_notification n = {"expired", 0, db, key, len, 1, 2, NULL, 0};
    eb_backlog_push(&n, b);
}

static void test_backlog_delivers_in_order_with_the_exact_key_bytes(void **state) {
    struct fix *f = *state;
    f->b = make(f, 100, 1 << 20);
    push(f->b, "a:1", 3, 0);
    push(f->b, "b\0\xff", 3, 7);
    push(f->b, "", 0, 2);
    assert_int_equal(f->seen.count, 0); /* nothing runs inside push */
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(f->seen.count, 3);
    assert_memory_equal(f->seen.keys[0], "a:1", 3);
    assert_memory_equal(f->seen.keys[1], "b\0\xff", 3);
    assert_int_equal(f->seen.lens[2], 0);
    assert_int_equal(f->seen.dbs[1], 7);
    assert_int_equal(eb_backlog_len(f->b), 0);
}

static void test_backlog_drops_and_counts_past_the_event_bound(void **state) {
    struct fix *f = *state;
    f->b = make(f, 2, 1 << 20);
    push(f->b, "k1", 2, 0);
    push(f->b, "k2", 2, 0);
    push(f->b, "k3", 2, 0);
    assert_int_equal(eb_backlog_len(f->b), 2);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(f->seen.count, 2);
    eb_metric_t *m = eb_metrics_register(f->metrics, EB_METRIC_COUNTER, "eb_backlog_dropped_total", "",
                                    NULL, NULL, 0);
    assert_true(eb_metrics_value(eb_metrics_series0(m)) == 1);
    push(f->b, "k4", 2, 0); /* room again once drained */
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(f->seen.count, 3);
}

static void test_backlog_drops_past_the_byte_bound(void **state) {
    struct fix *f = *state;
    f->b = make(f, 1000, 200);
    char key[150];
    memset(key, 'k', sizeof(key));
    push(f->b, key, sizeof(key), 0);
    push(f->b, key, sizeof(key), 0);
    assert_int_equal(eb_backlog_len(f->b), 1);
}

static void test_backlog_holds_a_key_larger_than_a_block(void **state) {
    struct fix *f = *state;
    f->b = make(f, 10, 64 << 20);
    size_t n = 1 << 20;
    char *big = malloc(n);
    memset(big, 'x', n);
    big[n - 1] = 'z';
    push(f->b, "small", 5, 0);
    push(f->b, big, n, 0);
    push(f->b, "after", 5, 0);
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(f->seen.count, 3);
    assert_int_equal(f->seen.lens[1], n);
    assert_memory_equal(f->seen.keys[2], "after", 5);
    free(big);
}

static void test_backlog_delivers_in_slices_so_reads_are_not_starved(void **state) {
    struct fix *f = *state;
    f->b = make(f, 100000, 64 << 20);
    for (int i = 0; i < 1000; i++)
        push(f->b, "key", 3, 0);
    event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_true(f->seen.count > 0);
    assert_true(f->seen.count < 1000);
    while (eb_backlog_len(f->b))
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(f->seen.count, 1000);
}

static void on_high(evutil_socket_t fd, short what, void *arg) {
    struct fix *f = arg;
    f->high_runs++;
}

static void test_backlog_runs_after_higher_priority_events(void **state) {
    struct fix *f = *state;
    f->b = make(f, 100, 1 << 20);
    struct event *high = event_new(f->base, -1, 0, on_high, f);
    event_priority_set(high, 0);
    push(f->b, "k", 1, 0);
    event_active(high, EV_TIMEOUT, 0); /* a read became ready after the push */
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    assert_int_equal(f->seen.count, 1);
    assert_int_equal(f->seen.order_mark, 1); /* the high-priority event ran first */
    event_free(high);
}

static void test_backlog_flush_delivers_everything_now(void **state) {
    struct fix *f = *state;
    f->b = make(f, 100000, 64 << 20);
    for (int i = 0; i < 5000; i++)
        push(f->b, "key", 3, 0);
    eb_backlog_flush(f->b);
    assert_int_equal(f->seen.count, 5000);
    assert_int_equal(eb_backlog_len(f->b), 0);
}

static void test_backlog_destroy_counts_what_it_discards(void **state) {
    struct fix *f = *state;
    f->b = make(f, 100, 1 << 20);
    push(f->b, "k1", 2, 0);
    push(f->b, "k2", 2, 0);
    eb_backlog_destroy(f->b);
    f->b = NULL;
    eb_metric_t *m = eb_metrics_register(f->metrics, EB_METRIC_COUNTER, "eb_backlog_dropped_total", "",
                                    NULL, NULL, 0);
    assert_true(eb_metrics_value(eb_metrics_series0(m)) == 2);
    assert_int_equal(f->seen.count, 0);
}

static void test_backlog_reuses_blocks_across_bursts(void **state) {
    struct fix *f = *state;
    f->b = make(f, 1000000, 256 << 20);
    char key[100];
    memset(key, 'q', sizeof(key));
    for (int burst = 0; burst < 20; burst++) {
        for (int i = 0; i < 20000; i++)
            push(f->b, key, sizeof(key), 0);
        eb_backlog_flush(f->b);
    }
    assert_int_equal(f->seen.count, 400000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_backlog_delivers_in_order_with_the_exact_key_bytes),
        T(test_backlog_drops_and_counts_past_the_event_bound),
        T(test_backlog_drops_past_the_byte_bound),
        T(test_backlog_holds_a_key_larger_than_a_block),
        T(test_backlog_delivers_in_slices_so_reads_are_not_starved),
        T(test_backlog_runs_after_higher_priority_events),
        T(test_backlog_flush_delivers_everything_now),
        T(test_backlog_destroy_counts_what_it_discards),
        T(test_backlog_reuses_blocks_across_bursts),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
