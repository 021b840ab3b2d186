/* test_redis_session.c -- the Redis session lifecycle on a real libevent
 * loop, without Redis: the connect timeout and its detail, a condemned
 * session closed on a later turn of the loop and then reopened after the
 * backoff delay, stop, the backoff restarting from its minimum once a
 * session is established. Each test ends with nothing left on the base.
 *
 * Waiting is turning the loop until a counter moves; "nothing pending" is
 * read from the base's event count, never slept for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "redis/redis_session.h"

#define MIN_MS 5
#define MAX_MS 1000

struct t {
    struct event_base *base;
    eb_redis_session_t *ss;
    int opens, closes, timeouts, retries;
    uint32_t delay;
    char detail[64];
    char trace[64]; /* one letter per callback, in order: o c t r */
};

static void trace(struct t *t, char c) {
    size_t n = strlen(t->trace);
    if (n + 1 < sizeof(t->trace))
        t->trace[n] = c, t->trace[n + 1] = '\0';
}

static void h_open(void *opaque) {
    struct t *t = opaque;
    t->opens++;
    trace(t, 'o');
}

static void h_close(void *opaque) {
    struct t *t = opaque;
    t->closes++;
    trace(t, 'c');
}

static void h_timed_out(const char *detail, void *opaque) {
    struct t *t = opaque;
    t->timeouts++;
    snprintf(t->detail, sizeof(t->detail), "%s", detail);
    trace(t, 't');
}

static void h_retrying(uint32_t delay_ms, void *opaque) {
    struct t *t = opaque;
    t->retries++;
    t->delay = delay_ms;
    trace(t, 'r');
}

static const struct eb_redis_session_handlers handlers = {
    .open = h_open,
    .close = h_close,
    .timed_out = h_timed_out,
    .retrying = h_retrying,
};

static int pending(const struct t *t) {
    return event_base_get_num_events(t->base, EVENT_BASE_COUNT_ADDED);
}

/* Turn the loop until *counter reaches want. Every event here is one of
 * the session's timers (the longest pending one a test waits for is the
 * largest backoff delay, MAX_MS), so each turn ends when the next fires;
 * with nothing left to fire, the wait has failed. */
static bool run_until(struct t *t, const int *counter, int want) {
    while (*counter < want) {
        if (pending(t) == 0)
            return false;
        event_base_loop(t->base, EVLOOP_ONCE);
    }
    return true;
}

static int setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    char err[128];
    if (!t || !(t->base = event_base_new()))
        return -1;
    t->ss = eb_redis_session_new(t->base, MIN_MS, MAX_MS, &handlers, t, err, sizeof(err));
    if (!t->ss)
        return -1;
    *state = t;
    return 0;
}

/* Every test ends here, and fails unless the session left nothing
 * registered on the base. */
static int teardown(void **state) {
    struct t *t = *state;
    eb_redis_session_destroy(t->ss);
    bool clean = pending(t) == 0;
    event_base_free(t->base);
    free(t);
    return clean ? 0 : -1;
}

static void test_redis_session_connect_timeout_reports_its_limit(void **state) {
    struct t *t = *state;
    eb_redis_session_opening(t->ss, 20);
    assert_true(run_until(t, &t->timeouts, 1));
    assert_string_equal(t->detail, "no connection within 20 ms");
    assert_string_equal(t->trace, "t"); /* the owner decides to condemn */
    assert_int_equal(pending(t), 0);
}

static void test_redis_session_connected_stops_the_timeout(void **state) {
    struct t *t = *state;
    eb_redis_session_opening(t->ss, 20);
    assert_int_equal(pending(t), 1);
    eb_redis_session_connected(t->ss);
    assert_int_equal(pending(t), 0);
}

static void test_redis_session_condemned_closes_later_then_reopens(void **state) {
    struct t *t = *state;
    eb_redis_session_condemn(t->ss);
    assert_int_equal(t->closes, 0); /* never inside the caller (a hiredis callback) */
    assert_true(run_until(t, &t->opens, 1));
    assert_string_equal(t->trace, "cro");
    assert_int_equal(t->delay, MIN_MS); /* the first delay is the minimum */
    assert_int_equal(pending(t), 0);
}

static void test_redis_session_condemned_twice_closes_once(void **state) {
    struct t *t = *state;
    eb_redis_session_condemn(t->ss);
    eb_redis_session_condemn(t->ss);
    assert_true(run_until(t, &t->opens, 1));
    assert_int_equal(t->closes, 1);
    assert_int_equal(t->retries, 1);
}

static void test_redis_session_close_stops_the_connect_timeout(void **state) {
    struct t *t = *state;
    eb_redis_session_opening(t->ss, 60000);
    eb_redis_session_condemn(t->ss);
    assert_true(run_until(t, &t->opens, 1));
    assert_int_equal(pending(t), 0); /* the 60 s timeout went with the session */
}

static void test_redis_session_stopped_closes_but_never_reopens(void **state) {
    struct t *t = *state;
    eb_redis_session_opening(t->ss, 60000);
    eb_redis_session_condemn(t->ss);
    eb_redis_session_stop(t->ss);
    assert_true(run_until(t, &t->closes, 1));
    assert_int_equal(pending(t), 0);
    eb_redis_session_retry(t->ss);
    assert_int_equal(pending(t), 0);
    assert_string_equal(t->trace, "c");
}

static void test_redis_session_retry_opens_after_the_delay(void **state) {
    struct t *t = *state;
    eb_redis_session_retry(t->ss); /* an owner that could not even connect */
    assert_int_equal(t->retries, 1);
    assert_int_equal(t->delay, MIN_MS);
    assert_true(run_until(t, &t->opens, 1));
    assert_string_equal(t->trace, "ro");
}

static void test_redis_session_established_restarts_the_backoff(void **state) {
    struct t *t = *state;
    uint32_t longest = 0;
    for (int i = 0; i < 5; i++) {
        eb_redis_session_retry(t->ss);
        longest = t->delay > longest ? t->delay : longest;
        assert_true(t->delay >= MIN_MS && t->delay <= MAX_MS);
        assert_true(run_until(t, &t->opens, i + 1));
    }
    assert_true(longest > MIN_MS); /* grew: five draws at the minimum: p < 1e-5 */
    eb_redis_session_established(t->ss);
    eb_redis_session_retry(t->ss);
    assert_int_equal(t->delay, MIN_MS);
    assert_true(run_until(t, &t->opens, 6));
}

static void test_redis_session_destroy_leaves_nothing_registered(void **state) {
    struct t *t = *state;
    eb_redis_session_opening(t->ss, 60000);
    eb_redis_session_condemn(t->ss);
    eb_redis_session_retry(t->ss);
    assert_int_equal(pending(t), 3);
    eb_redis_session_destroy(t->ss);
    t->ss = NULL;
    assert_int_equal(pending(t), 0);
    assert_string_equal(t->trace, "r");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_session_connect_timeout_reports_its_limit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_session_connected_stops_the_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_session_condemned_closes_later_then_reopens,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_session_condemned_twice_closes_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_session_close_stops_the_connect_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_session_stopped_closes_but_never_reopens, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_session_retry_opens_after_the_delay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_session_established_restarts_the_backoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_session_destroy_leaves_nothing_registered, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
