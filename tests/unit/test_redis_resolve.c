/* test_redis_resolve.c -- host names to addresses off the loop thread
 * (redis_resolve.h): numbers answered without a lookup but never from
 * inside the call, names through a worker thread (/etc/hosts' localhost:
 * no DNS needed), failures with the C library's words, cancellation, and
 * no event left on the base once nothing is awaited. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/clock.h"
#include "redis/redis_resolve.h"

struct answer {
    int calls;
    bool ok;
    char ip[EB_REDIS_ADDR_MAX];
    char err[128];
};

static void on_answer(bool ok, const char *ip, const char *errstr, void *opaque) {
    struct answer *a = opaque;
    a->calls++;
    a->ok = ok;
    snprintf(a->ip, sizeof(a->ip), "%s", ok ? ip : "");
    snprintf(a->err, sizeof(a->err), "%s", ok ? "" : errstr);
}

/* Run the loop until *calls reaches n or 10 s pass. */
static bool run_until_calls(struct event_base *base, const int *calls, int n) {
    int64_t deadline = eb_mono_ms() + 10000;
    while (*calls < n && eb_mono_ms() < deadline) {
        struct timeval tv = {0, 5000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    return *calls >= n;
}

static int registered(struct event_base *base) {
    return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);
}

static void test_resolve_numeric_addresses_need_no_lookup_and_never_answer_inside_the_call(
    void **state) {
    struct event_base *base = event_base_new();
    char err[128];
    eb_redis_resolver_t *r = eb_redis_resolver_new(base, err, sizeof(err));
    assert_non_null(r);
    assert_int_equal(registered(base), 0);
    struct answer v4 = {0}, v6 = {0};
    assert_non_null(eb_redis_resolve(r, "10.1.2.3", on_answer, &v4, err, sizeof(err)));
    assert_non_null(eb_redis_resolve(r, "::1", on_answer, &v6, err, sizeof(err)));
    assert_int_equal(v4.calls + v6.calls, 0);
    assert_int_equal(eb_redis_resolver_in_flight(r), 0); /* no thread */
    assert_true(run_until_calls(base, &v6.calls, 1));
    assert_true(v4.ok && v6.ok);
    assert_string_equal(v4.ip, "10.1.2.3");
    assert_string_equal(v6.ip, "::1");
    assert_int_equal(v4.calls, 1);
    assert_int_equal(registered(base), 0);
    eb_redis_resolver_destroy(r);
    event_base_free(base);
}

static void test_resolve_name_through_a_worker_thread(void **state) {
    struct event_base *base = event_base_new();
    char err[128];
    eb_redis_resolver_t *r = eb_redis_resolver_new(base, err, sizeof(err));
    struct answer a = {0};
    assert_non_null(eb_redis_resolve(r, "localhost", on_answer, &a, err, sizeof(err)));
    assert_int_equal(a.calls, 0);
    assert_true(run_until_calls(base, &a.calls, 1));
    assert_true(a.ok);
    assert_string_equal(a.ip, "127.0.0.1"); /* IPv4 first, as hiredis prefers */
    assert_int_equal(registered(base), 0);
    eb_redis_resolver_destroy(r);
    event_base_free(base);
}

static void test_resolve_failure_says_why(void **state) {
    struct event_base *base = event_base_new();
    char err[128];
    eb_redis_resolver_t *r = eb_redis_resolver_new(base, err, sizeof(err));
    struct answer a = {0};
    /* A space: no name service accepts it. */
    assert_non_null(eb_redis_resolve(r, "no such host", on_answer, &a, err, sizeof(err)));
    assert_true(run_until_calls(base, &a.calls, 1));
    assert_false(a.ok);
    assert_true(strlen(a.err) > 0);
    eb_redis_resolver_destroy(r);
    event_base_free(base);
}

static void test_resolve_cancelled_lookup_never_answers(void **state) {
    struct event_base *base = event_base_new();
    char err[128];
    eb_redis_resolver_t *r = eb_redis_resolver_new(base, err, sizeof(err));
    struct answer gone = {0}, gone_num = {0}, kept = {0};
    eb_redis_lookup_t *a = eb_redis_resolve(r, "localhost", on_answer, &gone, err, sizeof(err));
    eb_redis_lookup_t *b = eb_redis_resolve(r, "127.0.0.1", on_answer, &gone_num, err,
                                            sizeof(err));
    eb_redis_resolve_cancel(a);
    eb_redis_resolve_cancel(b);
    assert_int_equal(registered(base), 0); /* nothing awaited */
    assert_non_null(eb_redis_resolve(r, "localhost", on_answer, &kept, err, sizeof(err)));
    assert_true(run_until_calls(base, &kept.calls, 1));
    assert_int_equal(gone.calls + gone_num.calls, 0);
    eb_redis_resolve_cancel(NULL);
    eb_redis_resolver_destroy(r);
    event_base_free(base);
}

/* Destroyed with lookups unanswered: their workers finish on their own,
 * and nothing calls back. */
static void test_resolve_destroy_with_lookups_in_flight(void **state) {
    struct event_base *base = event_base_new();
    char err[128];
    struct answer a[4] = {{0}};
    eb_redis_resolver_t *r = eb_redis_resolver_new(base, err, sizeof(err));
    for (int i = 0; i < 4; i++)
        assert_non_null(eb_redis_resolve(r, i % 2 ? "localhost" : "127.0.0.1", on_answer, &a[i],
                                         err, sizeof(err)));
    eb_redis_resolver_destroy(r);
    assert_int_equal(registered(base), 0);
    struct timeval tv = {0, 50000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    for (int i = 0; i < 4; i++)
        assert_int_equal(a[i].calls, 0);
    event_base_free(base);
}

static void test_resolve_is_numeric(void **state) {
    assert_true(eb_redis_resolve_is_numeric("127.0.0.1"));
    assert_true(eb_redis_resolve_is_numeric("fe80::1"));
    assert_false(eb_redis_resolve_is_numeric("localhost"));
    assert_false(eb_redis_resolve_is_numeric("redis-master.shop.svc"));
    assert_false(eb_redis_resolve_is_numeric("1.2.3"));
    assert_false(eb_redis_resolve_is_numeric(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_resolve_numeric_addresses_need_no_lookup_and_never_answer_inside_the_call),
        cmocka_unit_test(test_resolve_name_through_a_worker_thread),
        cmocka_unit_test(test_resolve_failure_says_why),
        cmocka_unit_test(test_resolve_cancelled_lookup_never_answers),
        cmocka_unit_test(test_resolve_destroy_with_lookups_in_flight),
        cmocka_unit_test(test_resolve_is_numeric),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
