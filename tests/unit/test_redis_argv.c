/* test_redis_argv.c -- a Redis command's argument list: order, lengths,
 * borrowed versus owned arguments, number formatting, growth past the
 * inline slots with owned text that never moves, sticky failure, reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "redis/redis_argv.h"

/* Argument i equals the C string want (same length, same bytes). */
static void assert_arg(const struct eb_redis_argv *a, int i, const char *want) {
    assert_true(i < a->argc);
    assert_int_equal(a->argvlen[i], strlen(want));
    assert_memory_equal(a->argv[i], want, strlen(want));
}

static void test_redis_argv_collects_arguments_in_order(void **state) {
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    assert_int_equal(a.argc, 0);
    eb_redis_argv_add_str(&a, "FCALL");
    eb_redis_argv_add_str(&a, "eb1_due");
    eb_redis_argv_add_size(&a, 1);
    eb_redis_argv_add_bytes(&a, "ledger{r}xyz", 9);
    eb_redis_argv_add_i64(&a, 500);
    assert_true(eb_redis_argv_ok(&a));
    assert_int_equal(a.argc, 5);
    assert_arg(&a, 0, "FCALL");
    assert_arg(&a, 1, "eb1_due");
    assert_arg(&a, 2, "1");
    assert_arg(&a, 3, "ledger{r}");
    assert_arg(&a, 4, "500");
    eb_redis_argv_free(&a);
}

static void test_redis_argv_borrows_strings_and_bytes(void **state) {
    static const char key[] = "k\0ey"; /* binary: the NUL is part of it */
    const char *name = "expiry-bridge:ledger";
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    eb_redis_argv_add_str(&a, name);
    eb_redis_argv_add_bytes(&a, key, sizeof(key) - 1);
    assert_ptr_equal(a.argv[0], name);
    assert_ptr_equal(a.argv[1], key);
    assert_int_equal(a.argvlen[1], 4);
    eb_redis_argv_free(&a);
}

static void test_redis_argv_copies_are_owned(void **state) {
    char buf[16] = "__keyevent@0__";
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    eb_redis_argv_add_copy(&a, buf, strlen(buf));
    eb_redis_argv_add_copy(&a, "", 0);
    memset(buf, 'x', sizeof(buf) - 1); /* the caller reuses its buffer */
    assert_ptr_not_equal(a.argv[0], buf);
    assert_arg(&a, 0, "__keyevent@0__");
    assert_int_equal(a.argvlen[1], 0);
    eb_redis_argv_free(&a);
}

static void test_redis_argv_formats_numbers_in_decimal(void **state) {
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    eb_redis_argv_add_i64(&a, 0);
    eb_redis_argv_add_i64(&a, -1);
    eb_redis_argv_add_i64(&a, INT64_MIN);
    eb_redis_argv_add_i64(&a, INT64_MAX);
    eb_redis_argv_add_size(&a, 0);
    eb_redis_argv_add_size(&a, SIZE_MAX);
    assert_true(eb_redis_argv_ok(&a));
    assert_arg(&a, 0, "0");
    assert_arg(&a, 1, "-1");
    assert_arg(&a, 2, "-9223372036854775808");
    assert_arg(&a, 3, "9223372036854775807");
    assert_arg(&a, 4, "0");
    char max[24];
    snprintf(max, sizeof(max), "%zu", (size_t)SIZE_MAX);
    assert_arg(&a, 5, max);
    eb_redis_argv_free(&a);
}

/* A batch far past the inline slots and store: every argument, numbers
 * formatted early included, still reads back intact at the end. */
static void test_redis_argv_grows_and_owned_text_never_moves(void **state) {
    enum { N = 5000 };
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    for (int i = 0; i < N; i++) {
        if (i % 2)
            eb_redis_argv_add_i64(&a, (int64_t)i * 1000003);
        else
            eb_redis_argv_add_str(&a, "member");
    }
    assert_true(eb_redis_argv_ok(&a));
    assert_int_equal(a.argc, N);
    for (int i = 0; i < N; i++) {
        char want[24];
        snprintf(want, sizeof(want), "%lld", (long long)i * 1000003);
        assert_arg(&a, i, i % 2 ? want : "member");
    }
    eb_redis_argv_free(&a);
}

static void test_redis_argv_failure_is_sticky(void **state) {
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    eb_redis_argv_add_str(&a, "DEL");
    a.failed = true; /* as after an allocation failure */
    eb_redis_argv_add_str(&a, "k");
    eb_redis_argv_add_i64(&a, 7);
    eb_redis_argv_add_copy(&a, "x", 1);
    assert_false(eb_redis_argv_ok(&a));
    assert_int_equal(a.argc, 1);
    eb_redis_argv_free(&a);
    assert_true(eb_redis_argv_ok(&a));
}

static void test_redis_argv_free_leaves_an_empty_reusable_list(void **state) {
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    for (int i = 0; i < 100; i++)
        eb_redis_argv_add_size(&a, (size_t)i);
    eb_redis_argv_free(&a);
    assert_int_equal(a.argc, 0);
    eb_redis_argv_add_str(&a, "PING");
    assert_int_equal(a.argc, 1);
    assert_arg(&a, 0, "PING");
    eb_redis_argv_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_argv_collects_arguments_in_order),
        cmocka_unit_test(test_redis_argv_borrows_strings_and_bytes),
        cmocka_unit_test(test_redis_argv_copies_are_owned),
        cmocka_unit_test(test_redis_argv_formats_numbers_in_decimal),
        cmocka_unit_test(test_redis_argv_grows_and_owned_text_never_moves),
        cmocka_unit_test(test_redis_argv_failure_is_sticky),
        cmocka_unit_test(test_redis_argv_free_leaves_an_empty_reusable_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
