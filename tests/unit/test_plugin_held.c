/* test_plugin_held.c -- the ledgered timers a plugin holds back
 * (src/plugin/plugin_held.h): one timer counts once however often it is
 * retried, per route, in the gauge; released when the plugins let it
 * through; forgotten when it stops failing; bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"
#include "plugin/plugin_held.h"

#define SEC 1000000000LL

static struct eb_plugin_timer timer(const char *route, const char *key, int64_t deadline_ms) {
    return (struct eb_plugin_timer){.route = route, .db = 0, .key = key,
                                    .key_len = strlen(key), .deadline_ms = deadline_ms};
}

/* The gauge eb_plugin_held_timers{route} as rendered on /metrics. */
static double gauge(eb_metrics_t *m, const char *route) {
    struct eb_buf b = EB_BUF_INIT;
    char line[256];
    double v = -1;
    eb_metrics_render(m, &b);
    eb_buf_cstr(&b);
    snprintf(line, sizeof(line), "eb_plugin_held_timers{route=\"%s\"} ", route);
    const char *at = b.data ? strstr(b.data, line) : NULL;
    if (at)
        sscanf(at + strlen(line), "%lf", &v);
    eb_buf_free(&b);
    return v;
}

static void test_plugin_held_a_retried_timer_counts_once_per_route(void **state) {
    eb_metrics_t *m = eb_metrics_new();
    eb_plugin_held_t *h = eb_plugin_held_new(m);
    struct eb_plugin_timer a = timer("orders", "order:1", 1000), b = timer("orders", "order:2", 1000),
                           c = timer("carts", "order:1", 1000);
    bool untracked = true;
    assert_int_equal(eb_plugin_held_fail(h, &a, 1 * SEC, &untracked), 1);
    assert_false(untracked);
    assert_int_equal(eb_plugin_held_fail(h, &a, 11 * SEC, NULL), 1); /* retried */
    assert_int_equal(eb_plugin_held_fail(h, &b, 11 * SEC, NULL), 2);
    assert_int_equal(eb_plugin_held_fail(h, &c, 11 * SEC, NULL), 1); /* another route */
    assert_int_equal(eb_plugin_held_count(h), 3);
    assert_true(gauge(m, "orders") == 2);
    assert_true(gauge(m, "carts") == 1);
    eb_plugin_held_destroy(h);
    eb_metrics_destroy(m);
}

static void test_plugin_held_another_deadline_is_another_timer(void **state) {
    eb_plugin_held_t *h = eb_plugin_held_new(NULL);
    struct eb_plugin_timer a = timer("orders", "order:1", 1000), re = timer("orders", "order:1", 2000);
    eb_plugin_held_fail(h, &a, SEC, NULL);
    assert_int_equal(eb_plugin_held_fail(h, &re, SEC, NULL), 2);
    eb_plugin_held_destroy(h);
}

static void test_plugin_held_release_forgets_the_timer(void **state) {
    eb_metrics_t *m = eb_metrics_new();
    eb_plugin_held_t *h = eb_plugin_held_new(m);
    struct eb_plugin_timer a = timer("orders", "order:1", 1000), b = timer("orders", "order:2", 1000);
    eb_plugin_held_fail(h, &a, SEC, NULL);
    eb_plugin_held_fail(h, &b, SEC, NULL);
    eb_plugin_held_release(h, &a);
    eb_plugin_held_release(h, &a); /* twice: nothing more */
    assert_int_equal(eb_plugin_held_count(h), 1);
    assert_true(gauge(m, "orders") == 1);
    /* b is still found past a's tombstone, and a can be held again. */
    assert_int_equal(eb_plugin_held_fail(h, &b, 2 * SEC, NULL), 1);
    assert_int_equal(eb_plugin_held_fail(h, &a, 2 * SEC, NULL), 2);
    eb_plugin_held_destroy(h);
    eb_metrics_destroy(m);
}

static void test_plugin_held_timers_that_stop_failing_are_forgotten(void **state) {
    eb_metrics_t *m = eb_metrics_new();
    eb_plugin_held_t *h = eb_plugin_held_new(m);
    struct eb_plugin_timer a = timer("orders", "order:1", 1000), b = timer("orders", "order:2", 1000);
    eb_plugin_held_fail(h, &a, 1 * SEC, NULL);
    eb_plugin_held_fail(h, &b, 20 * SEC, NULL);
    eb_plugin_held_expire(h, 30 * SEC, 15 * SEC); /* a: 29 s without failing */
    assert_int_equal(eb_plugin_held_count(h), 1);
    assert_true(gauge(m, "orders") == 1);
    eb_plugin_held_expire(h, 30 * SEC + SEC / 2, 0); /* at most once a second */
    assert_int_equal(eb_plugin_held_count(h), 1);
    eb_plugin_held_expire(h, 40 * SEC, 15 * SEC);
    assert_int_equal(eb_plugin_held_count(h), 0);
    assert_true(gauge(m, "orders") == 0);
    eb_plugin_held_destroy(h);
    eb_metrics_destroy(m);
}

static void test_plugin_held_tracks_at_most_its_bound(void **state) {
    eb_plugin_held_t *h = eb_plugin_held_new(NULL);
    char key[32];
    bool untracked = false;
    for (int i = 0; i < EB_PLUGIN_HELD_MAX; i++) {
        snprintf(key, sizeof(key), "order:%d", i);
        struct eb_plugin_timer t = timer("orders", key, 1000);
        assert_int_equal(eb_plugin_held_fail(h, &t, SEC, &untracked), (size_t)i + 1);
        assert_false(untracked);
    }
    struct eb_plugin_timer more = timer("orders", "order:more", 1000);
    assert_int_equal(eb_plugin_held_fail(h, &more, SEC, &untracked), EB_PLUGIN_HELD_MAX + 1);
    assert_true(untracked);
    assert_int_equal(eb_plugin_held_count(h), EB_PLUGIN_HELD_MAX);
    /* Every tracked one is still found (the table grew, probes intact). */
    for (int i = 0; i < EB_PLUGIN_HELD_MAX; i++) {
        snprintf(key, sizeof(key), "order:%d", i);
        struct eb_plugin_timer t = timer("orders", key, 1000);
        eb_plugin_held_release(h, &t);
    }
    assert_int_equal(eb_plugin_held_count(h), 0);
    eb_plugin_held_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plugin_held_a_retried_timer_counts_once_per_route),
        cmocka_unit_test(test_plugin_held_another_deadline_is_another_timer),
        cmocka_unit_test(test_plugin_held_release_forgets_the_timer),
        cmocka_unit_test(test_plugin_held_timers_that_stop_failing_are_forgotten),
        cmocka_unit_test(test_plugin_held_tracks_at_most_its_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
