/* test_backoff.c -- capped exponential backoff with full jitter: bounds,
 * growth of the ceiling, the cap, reset, and the spread of the jitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/backoff.h"

/* The delay of attempt `n` (0-based) from a fresh backoff seeded `seed`. */
static uint32_t nth_delay(uint32_t min, uint32_t max, uint64_t seed, int n) {
    struct eb_backoff b;
    eb_backoff_init(&b, min, max, seed);
    uint32_t d = 0;
    for (int i = 0; i <= n; i++)
        d = eb_backoff_next(&b);
    return d;
}

static void test_backoff_first_delay_is_min(void **state) {
    for (uint64_t seed = 1; seed < 100; seed++)
        assert_int_equal(nth_delay(100, 30000, seed, 0), 100);
}

static void test_backoff_delays_stay_within_min_and_max(void **state) {
    for (uint64_t seed = 1; seed < 200; seed++) {
        struct eb_backoff b;
        eb_backoff_init(&b, 50, 5000, seed);
        for (int i = 0; i < 100; i++) {
            uint32_t d = eb_backoff_next(&b);
            assert_true(d >= 50 && d <= 5000);
        }
    }
}

static void test_backoff_ceiling_doubles_per_attempt(void **state) {
    /* Attempt n draws from [min, min*2^n]: over many seeds the largest draw
     * sits just under the ceiling and never above it. */
    for (int n = 1; n <= 6; n++) {
        uint32_t ceiling = 100u << n, hi = 0;
        for (uint64_t seed = 1; seed <= 2000; seed++) {
            uint32_t d = nth_delay(100, 1000000, seed, n);
            assert_true(d >= 100 && d <= ceiling);
            hi = d > hi ? d : hi;
        }
        assert_true(hi > ceiling - ceiling / 20);
    }
}

static void test_backoff_is_capped_at_max(void **state) {
    uint32_t hi = 0;
    for (uint64_t seed = 1; seed <= 2000; seed++) {
        uint32_t d = nth_delay(100, 3000, seed, 20);
        assert_true(d <= 3000);
        hi = d > hi ? d : hi;
    }
    assert_true(hi > 2900);
}

static void test_backoff_many_attempts_do_not_overflow(void **state) {
    struct eb_backoff b;
    eb_backoff_init(&b, 1, UINT32_MAX, 7);
    for (int i = 0; i < 1000; i++) {
        uint32_t d = eb_backoff_next(&b);
        assert_true(d >= 1);
    }
    assert_true(b.attempt <= 64);
}

static void test_backoff_reset_starts_again_from_min(void **state) {
    struct eb_backoff b;
    eb_backoff_init(&b, 100, 30000, 42);
    for (int i = 0; i < 10; i++)
        eb_backoff_next(&b);
    eb_backoff_reset(&b);
    assert_int_equal(eb_backoff_next(&b), 100);
}

static void test_backoff_jitter_spreads_uniformly(void **state) {
    /* 10000 bridges at attempt 5 (ceiling 3200): draws cover the range, the
     * mean sits mid-range, and each tenth of it gets its share. */
    enum { N = 10000 };
    uint32_t lo = UINT32_MAX, hi = 0;
    double sum = 0;
    unsigned deciles[10] = {0};
    for (uint64_t seed = 1; seed <= N; seed++) {
        uint32_t d = nth_delay(100, 100000, seed * 0x9E3779B97F4A7C15u, 5);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += d;
        deciles[(d - 100) * 10 / 3101]++;
    }
    double mean = sum / N;
    assert_true(lo < 100 + 50 && hi > 3200 - 50);
    assert_true(mean > 1650 * 0.95 && mean < 1650 * 1.05);
    for (int i = 0; i < 10; i++)
        assert_true(deciles[i] > N / 10 * 0.8 && deciles[i] < N / 10 * 1.2);
}

static void test_backoff_same_seed_same_sequence(void **state) {
    struct eb_backoff a, b;
    eb_backoff_init(&a, 10, 10000, 99);
    eb_backoff_init(&b, 10, 10000, 99);
    for (int i = 0; i < 20; i++)
        assert_int_equal(eb_backoff_next(&a), eb_backoff_next(&b));
}

static void test_backoff_zero_seed_gives_distinct_sequences(void **state) {
    /* Two bridges started together must not reconnect in lockstep. */
    struct eb_backoff a, b;
    eb_backoff_init(&a, 1, 1000000, 0);
    eb_backoff_init(&b, 1, 1000000, 0);
    assert_true(a.rng != 0 && b.rng != 0);
    int same = 0;
    for (int i = 0; i < 20; i++)
        same += eb_backoff_next(&a) == eb_backoff_next(&b);
    assert_true(same < 5);
}

static void test_backoff_zero_min_and_inverted_max_are_fixed_up(void **state) {
    struct eb_backoff b;
    eb_backoff_init(&b, 0, 0, 3);
    assert_int_equal(b.min_ms, 1);
    assert_int_equal(b.max_ms, 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(eb_backoff_next(&b), 1);
    eb_backoff_init(&b, 500, 100, 3);
    for (int i = 0; i < 10; i++)
        assert_int_equal(eb_backoff_next(&b), 500);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_first_delay_is_min),
        cmocka_unit_test(test_backoff_delays_stay_within_min_and_max),
        cmocka_unit_test(test_backoff_ceiling_doubles_per_attempt),
        cmocka_unit_test(test_backoff_is_capped_at_max),
        cmocka_unit_test(test_backoff_many_attempts_do_not_overflow),
        cmocka_unit_test(test_backoff_reset_starts_again_from_min),
        cmocka_unit_test(test_backoff_jitter_spreads_uniformly),
        cmocka_unit_test(test_backoff_same_seed_same_sequence),
        cmocka_unit_test(test_backoff_zero_seed_gives_distinct_sequences),
        cmocka_unit_test(test_backoff_zero_min_and_inverted_max_are_fixed_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
