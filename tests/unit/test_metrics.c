/* test_metrics.c -- registry and Prometheus text exposition (format 0.0.4):
 * HELP/TYPE lines, label escaping, histogram buckets, quantiles, gauge
 * callbacks, and what registration refuses. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/metrics.h"

static int setup(void **state) {
    *state = eb_metrics_new();
    return *state ? 0 : -1;
}

static int teardown(void **state) {
    eb_metrics_destroy(*state);
    return 0;
}

/* Render into a NUL-terminated heap string; the caller frees it. */
static char *render(const eb_metrics_t *m) {
    struct eb_buf b = EB_BUF_INIT;
    eb_metrics_render(m, &b);
    eb_buf_cstr(&b);
    assert_true(eb_buf_ok(&b));
    return b.data ? b.data : strdup("");
}

static void assert_render(const eb_metrics_t *m, const char *expect) {
    char *got = render(m);
    if (strcmp(got, expect) != 0)
        fail_msg("rendered:\n%s\nexpected:\n%s", got, expect);
    free(got);
}

/* ------------------------------------------------------------------------ */
/* Exposition                                                                */
/* ------------------------------------------------------------------------ */

static void test_metrics_counter_renders_help_type_and_value(void **state) {
    eb_metrics_t *m = *state;
    eb_metric_t *f = eb_metrics_register(m, EB_METRIC_COUNTER, "eb_events_received_total",
                                    "Notifications read.", NULL, NULL, 0);
    eb_series_t *s = eb_metrics_series0(f);
    eb_metrics_inc(s);
    eb_metrics_add(s, 2);
    assert_render(m, "# HELP eb_events_received_total Notifications read.\n"
                     "# TYPE eb_events_received_total counter\n"
                     "eb_events_received_total 3\n");
}

static void test_metrics_families_render_in_registration_order(void **state) {
    eb_metrics_t *m = *state;
    eb_metrics_set(
        eb_metrics_series0(eb_metrics_register(m, EB_METRIC_GAUGE, "b_gauge", "B", NULL, NULL, 0)), -2);
    eb_metrics_inc(
        eb_metrics_series0(eb_metrics_register(m, EB_METRIC_COUNTER, "a_total", "A", NULL, NULL, 0)));
    assert_render(m, "# HELP b_gauge B\n# TYPE b_gauge gauge\nb_gauge -2\n"
                     "# HELP a_total A\n# TYPE a_total counter\na_total 1\n");
}

static void test_metrics_family_without_series_renders_only_help_and_type(void **state) {
    eb_metrics_t *m = *state;
    assert_non_null(eb_metrics_register(m, EB_METRIC_COUNTER, "x_total", "X", "route", NULL, 0));
    assert_render(m, "# HELP x_total X\n# TYPE x_total counter\n");
}

static void test_metrics_labels_render_in_declared_order(void **state) {
    eb_metrics_t *m = *state;
    eb_metric_t *f =
        eb_metrics_register(m, EB_METRIC_COUNTER, "routed_total", "R", "route,topic", NULL, 0);
    const char *v1[] = {"orders", "shop.order"};
    const char *v2[] = {"carts", "shop.cart"};
    eb_metrics_inc(eb_metrics_series(f, v1));
    eb_metrics_add(eb_metrics_series(f, v2), 5);
    assert_render(m, "# HELP routed_total R\n# TYPE routed_total counter\n"
                     "routed_total{route=\"orders\",topic=\"shop.order\"} 1\n"
                     "routed_total{route=\"carts\",topic=\"shop.cart\"} 5\n");
}

static void test_metrics_label_values_escape_backslash_quote_newline(void **state) {
    eb_metrics_t *m = *state;
    eb_metric_t *f = eb_metrics_register(m, EB_METRIC_GAUGE, "g", "G", "v", NULL, 0);
    const char *v[] = {"a\\b\"c\nd"};
    eb_metrics_set(eb_metrics_series(f, v), 1);
    char *out = render(m);
    assert_non_null(strstr(out, "g{v=\"a\\\\b\\\"c\\nd\"} 1\n"));
    free(out);
}

static void test_metrics_help_escapes_backslash_and_newline_only(void **state) {
    eb_metrics_t *m = *state;
    assert_non_null(
        eb_metrics_register(m, EB_METRIC_GAUGE, "g", "line1\nline2 \\ \"quoted\"", NULL, NULL, 0));
    char *out = render(m);
    assert_non_null(strstr(out, "# HELP g line1\\nline2 \\\\ \"quoted\"\n"));
    free(out);
}

static void test_metrics_values_use_shortest_exact_text(void **state) {
    eb_metrics_t *m = *state;
    eb_metric_t *f = eb_metrics_register(m, EB_METRIC_GAUGE, "g", "G", "v", NULL, 0);
    const char *a[] = {"a"}, *b[] = {"b"}, *c[] = {"c"}, *d[] = {"d"}, *e[] = {"e"};
    eb_metrics_set(eb_metrics_series(f, a), 0.1);
    eb_metrics_set(eb_metrics_series(f, b), 1e300);
    eb_metrics_set(eb_metrics_series(f, c), NAN);
    eb_metrics_set(eb_metrics_series(f, d), -INFINITY);
    eb_metrics_set(eb_metrics_series(f, e), 9007199254740993.0);
    char *out = render(m);
    assert_non_null(strstr(out, "g{v=\"a\"} 0.1\n"));
    assert_non_null(strstr(out, "g{v=\"b\"} 1e+300\n"));
    assert_non_null(strstr(out, "g{v=\"c\"} NaN\n"));
    assert_non_null(strstr(out, "g{v=\"d\"} -Inf\n"));
    assert_non_null(strstr(out, "g{v=\"e\"} 9007199254740992\n"));
    free(out);
}

/* ------------------------------------------------------------------------ */
/* Histograms                                                                */
/* ------------------------------------------------------------------------ */

static void test_metrics_histogram_renders_cumulative_buckets_inf_sum_count(void **state) {
    eb_metrics_t *m = *state;
    static const double bounds[] = {0.005, 0.5, 1};
    eb_metric_t *f =
        eb_metrics_register(m, EB_METRIC_HISTOGRAM, "lat_seconds", "Latency.", "route", bounds, 3);
    const char *r[] = {"orders"};
    eb_series_t *s = eb_metrics_series(f, r);
    eb_metrics_observe(s, 0.001);
    eb_metrics_observe(s, 0.005); /* on the bound: le is inclusive */
    eb_metrics_observe(s, 0.75);
    eb_metrics_observe(s, 7);
    assert_render(m, "# HELP lat_seconds Latency.\n"
                     "# TYPE lat_seconds histogram\n"
                     "lat_seconds_bucket{route=\"orders\",le=\"0.005\"} 2\n"
                     "lat_seconds_bucket{route=\"orders\",le=\"0.5\"} 2\n"
                     "lat_seconds_bucket{route=\"orders\",le=\"1\"} 3\n"
                     "lat_seconds_bucket{route=\"orders\",le=\"+Inf\"} 4\n"
                     "lat_seconds_sum{route=\"orders\"} 7.756\n"
                     "lat_seconds_count{route=\"orders\"} 4\n");
    assert_int_equal(eb_metrics_count(s), 4);
    assert_true(fabs(eb_metrics_value(s) - 7.756) < 1e-12);
}

static void test_metrics_histogram_without_labels_has_only_le(void **state) {
    eb_metrics_t *m = *state;
    static const double bounds[] = {1};
    eb_metrics_observe(
        eb_metrics_series0(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, bounds, 1)), 2);
    assert_render(m, "# HELP h H\n# TYPE h histogram\n"
                     "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n");
}

static void test_metrics_bucket_bounds_keep_full_precision(void **state) {
    eb_metrics_t *m = *state;
    static const double bounds[] = {0.0005, 1234567, 2.5e-7};
    assert_null(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, bounds, 3)); /* unsorted */
    static const double sorted[] = {2.5e-7, 0.0005, 1234567};
    eb_metrics_observe(
        eb_metrics_series0(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, sorted, 3)), 1);
    char *out = render(m);
    assert_non_null(strstr(out, "h_bucket{le=\"2.5e-07\"} 0\n"));
    assert_non_null(strstr(out, "h_bucket{le=\"0.0005\"} 0\n"));
    assert_non_null(strstr(out, "h_bucket{le=\"1234567\"} 1\n"));
    free(out);
}

static void test_metrics_shared_latency_buckets_are_ascending(void **state) {
    eb_metrics_t *m = *state;
    assert_true(eb_metrics_latency_nbuckets > 10);
    assert_true(eb_metrics_latency_buckets[0] <= 0.001);
    assert_true(eb_metrics_latency_buckets[eb_metrics_latency_nbuckets - 1] >= 600);
    assert_non_null(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "lat", "L", NULL,
                                   eb_metrics_latency_buckets, eb_metrics_latency_nbuckets));
}

static eb_series_t *quantile_fixture(eb_metrics_t *m) {
    static const double bounds[] = {1, 2, 4};
    eb_series_t *s =
        eb_metrics_series0(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "q", "Q", NULL, bounds, 3));
    /* buckets: (0,1]:1  (1,2]:2  (2,4]:1  (4,+Inf):0 */
    eb_metrics_observe(s, 0.5);
    eb_metrics_observe(s, 1.5);
    eb_metrics_observe(s, 1.5);
    eb_metrics_observe(s, 3);
    return s;
}

static void test_metrics_quantile_interpolates_inside_the_bucket(void **state) {
    eb_series_t *s = quantile_fixture(*state);
    assert_true(fabs(eb_metrics_quantile(s, 0.25) - 1.0) < 1e-12); /* rank 1: top of (0,1] */
    assert_true(fabs(eb_metrics_quantile(s, 0.5) - 1.5) < 1e-12);  /* rank 2: mid of (1,2] */
    assert_true(fabs(eb_metrics_quantile(s, 0.75) - 2.0) < 1e-12); /* rank 3: top of (1,2] */
    assert_true(fabs(eb_metrics_quantile(s, 1.0) - 4.0) < 1e-12);  /* rank 4: top of (2,4] */
    assert_true(fabs(eb_metrics_quantile(s, 0.125) - 0.5) < 1e-12);
}

static void test_metrics_quantile_in_inf_bucket_is_highest_bound(void **state) {
    eb_series_t *s = quantile_fixture(*state);
    for (int i = 0; i < 10; i++)
        eb_metrics_observe(s, 100);
    assert_true(fabs(eb_metrics_quantile(s, 0.99) - 4.0) < 1e-12);
}

static void test_metrics_quantile_outside_0_1_is_clamped(void **state) {
    eb_series_t *s = quantile_fixture(*state);
    assert_true(fabs(eb_metrics_quantile(s, 2) - 4.0) < 1e-12);
    double lo = eb_metrics_quantile(s, -1);
    assert_true(lo >= 0 && lo <= 1);
    assert_false(isnan(eb_metrics_quantile(s, NAN)));
}

static void test_metrics_quantile_of_empty_or_non_histogram_is_zero(void **state) {
    eb_metrics_t *m = *state;
    static const double bounds[] = {1};
    eb_series_t *h =
        eb_metrics_series0(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, bounds, 1));
    assert_true(eb_metrics_quantile(h, 0.5) == 0);
    eb_series_t *c =
        eb_metrics_series0(eb_metrics_register(m, EB_METRIC_COUNTER, "c_total", "C", NULL, NULL, 0));
    eb_metrics_inc(c);
    assert_true(eb_metrics_quantile(c, 0.5) == 0);
    assert_int_equal(eb_metrics_count(c), 0);
}

/* ------------------------------------------------------------------------ */
/* Gauge callbacks, series, totals                                           */
/* ------------------------------------------------------------------------ */

static double read_depth(void *opaque) {
    int *calls = opaque;
    return ++*calls * 10;
}

static void test_metrics_gauge_callback_is_read_at_each_render(void **state) {
    eb_metrics_t *m = *state;
    int calls = 0;
    assert_non_null(
        eb_metrics_register_gauge_fn(m, "queue_depth", "Queued events.", read_depth, &calls));
    assert_render(m, "# HELP queue_depth Queued events.\n# TYPE queue_depth gauge\n"
                     "queue_depth 10\n");
    char *out = render(m);
    assert_non_null(strstr(out, "queue_depth 20\n"));
    free(out);
    assert_int_equal(calls, 2);
}

static void test_metrics_same_label_values_give_same_series(void **state) {
    eb_metrics_t *m = *state;
    eb_metric_t *f = eb_metrics_register(m, EB_METRIC_COUNTER, "c_total", "C", "a,b", NULL, 0);
    char a1[] = "x", b1[] = "y";
    const char *v1[] = {a1, b1};
    const char *v2[] = {"x", "y"};
    const char *v3[] = {"x", "z"};
    eb_series_t *s1 = eb_metrics_series(f, v1);
    a1[0] = 'Q'; /* values are copied */
    assert_ptr_equal(eb_metrics_series(f, v2), s1);
    assert_ptr_not_equal(eb_metrics_series(f, v3), s1);
    eb_metrics_add(s1, 2);
    eb_metrics_add(eb_metrics_series(f, v3), 3);
    assert_true(eb_metrics_total(f) == 5);
    assert_true(eb_metrics_value(s1) == 2);
}

static void test_metrics_null_label_value_is_empty_string(void **state) {
    eb_metrics_t *m = *state;
    eb_metric_t *f = eb_metrics_register(m, EB_METRIC_COUNTER, "c_total", "C", "route", NULL, 0);
    const char *v[] = {NULL};
    eb_metrics_inc(eb_metrics_series(f, v));
    char *out = render(m);
    assert_non_null(strstr(out, "c_total{route=\"\"} 1\n"));
    free(out);
}

static void test_metrics_gauge_set_overwrites(void **state) {
    eb_metrics_t *m = *state;
    eb_series_t *s = eb_metrics_series0(eb_metrics_register(m, EB_METRIC_GAUGE, "g", "G", NULL, NULL, 0));
    eb_metrics_set(s, 5);
    eb_metrics_set(s, 3);
    assert_true(eb_metrics_value(s) == 3);
}

/* ------------------------------------------------------------------------ */
/* Refusals                                                                  */
/* ------------------------------------------------------------------------ */

static void test_metrics_family_name_reused_with_another_shape_is_refused(void **state) {
    eb_metrics_t *m = *state;
    assert_non_null(eb_metrics_register(m, EB_METRIC_COUNTER, "dup_total", "A", NULL, NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_GAUGE, "dup_total", "B", NULL, NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_COUNTER, "dup_total", "B", "route", NULL, 0));
    assert_null(eb_metrics_register_gauge_fn(m, "dup_total", "C", read_depth, NULL));
    assert_render(m, "# HELP dup_total A\n# TYPE dup_total counter\n");
}

static void test_metrics_family_registered_again_with_same_shape_keeps_its_series(void **state) {
    eb_metrics_t *m = *state;
    const char *route[] = {"r"};
    eb_metric_t *f = eb_metrics_register(m, EB_METRIC_COUNTER, "again_total", "A", "route", NULL, 0);
    eb_metrics_inc(eb_metrics_series(f, route));
    eb_metric_t *g = eb_metrics_register(m, EB_METRIC_COUNTER, "again_total", "A", "route", NULL, 0);
    assert_ptr_equal(f, g);
    eb_metrics_inc(eb_metrics_series(g, route));
    assert_true(eb_metrics_value(eb_metrics_series(f, route)) == 2);
}

static double read_double(void *opaque) {
    return *(double *)opaque;
}

static void test_metrics_gauge_callback_follows_its_newest_owner(void **state) {
    eb_metrics_t *m = *state;
    double a = 1, b = 2;
    assert_non_null(eb_metrics_register_gauge_fn(m, "depth", "D", read_double, &a));
    assert_non_null(eb_metrics_register_gauge_fn(m, "depth", "D", read_double, &b));
    assert_render(m, "# HELP depth D\n# TYPE depth gauge\ndepth 2\n");
}

static void test_metrics_unbound_gauge_callback_renders_no_sample(void **state) {
    eb_metrics_t *m = *state;
    double a = 1;
    assert_non_null(eb_metrics_register_gauge_fn(m, "depth", "D", read_double, &a));
    eb_metrics_unbind(m, &a);
    assert_render(m, "# HELP depth D\n# TYPE depth gauge\n");
    assert_non_null(eb_metrics_register_gauge_fn(m, "depth", "D", read_double, &a));
    assert_render(m, "# HELP depth D\n# TYPE depth gauge\ndepth 1\n");
}

static void test_metrics_invalid_names_are_refused(void **state) {
    eb_metrics_t *m = *state;
    static const double b[] = {1};
    assert_null(eb_metrics_register(m, EB_METRIC_COUNTER, "", "x", NULL, NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_COUNTER, "9lives", "x", NULL, NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_COUNTER, "has-dash", "x", NULL, NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_COUNTER, "ok_total", "x", "bad-label", NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_COUNTER, "ok_total", "x", "a,a", NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_COUNTER, "ok_total", "x", "__reserved", NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_COUNTER, "ok_total", "x", "a:b", NULL, 0));
    assert_null(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "ok_h", "x", "le", b, 1));
    assert_non_null(eb_metrics_register(m, EB_METRIC_COUNTER, "ns:ok_total", "x", "a,_b2", NULL, 0));
}

static void test_metrics_bad_histogram_bounds_are_refused(void **state) {
    eb_metrics_t *m = *state;
    static const double dup[] = {1, 1}, desc[] = {2, 1}, inf[] = {1, INFINITY};
    static double many[64];
    for (int i = 0; i < 64; i++)
        many[i] = i;
    assert_null(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, dup, 2));
    assert_null(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, desc, 2));
    assert_null(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, inf, 2));
    assert_null(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, many, 64));
    assert_non_null(eb_metrics_register(m, EB_METRIC_HISTOGRAM, "h", "H", NULL, many, 63));
}

static void test_metrics_destroy_null_is_noop(void **state) {
    eb_metrics_destroy(NULL);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_metrics_counter_renders_help_type_and_value),
        T(test_metrics_families_render_in_registration_order),
        T(test_metrics_family_without_series_renders_only_help_and_type),
        T(test_metrics_labels_render_in_declared_order),
        T(test_metrics_label_values_escape_backslash_quote_newline),
        T(test_metrics_help_escapes_backslash_and_newline_only),
        T(test_metrics_values_use_shortest_exact_text),
        T(test_metrics_histogram_renders_cumulative_buckets_inf_sum_count),
        T(test_metrics_histogram_without_labels_has_only_le),
        T(test_metrics_bucket_bounds_keep_full_precision),
        T(test_metrics_shared_latency_buckets_are_ascending),
        T(test_metrics_quantile_interpolates_inside_the_bucket),
        T(test_metrics_quantile_in_inf_bucket_is_highest_bound),
        T(test_metrics_quantile_outside_0_1_is_clamped),
        T(test_metrics_quantile_of_empty_or_non_histogram_is_zero),
        T(test_metrics_gauge_callback_is_read_at_each_render),
        T(test_metrics_same_label_values_give_same_series),
        T(test_metrics_null_label_value_is_empty_string),
        T(test_metrics_gauge_set_overwrites),
        T(test_metrics_family_name_reused_with_another_shape_is_refused),
        T(test_metrics_family_registered_again_with_same_shape_keeps_its_series),
        T(test_metrics_gauge_callback_follows_its_newest_owner),
        T(test_metrics_unbound_gauge_callback_renders_no_sample),
        T(test_metrics_invalid_names_are_refused),
        T(test_metrics_bad_histogram_bounds_are_refused),
        T(test_metrics_destroy_null_is_noop),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
