/* test_strpool.c -- interned node names: one pointer per text, stable for
 * the pool's life. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/strpool.h"

static void test_strpool_same_text_gives_the_same_pointer(void **state) {
    eb_strpool_t *p = eb_strpool_new();
    char a[] = "10.0.0.5:6379", b[] = "10.0.0.5:6379";
    const char *x = eb_strpool_intern(p, a), *y = eb_strpool_intern(p, b);
    assert_ptr_equal(x, y);
    assert_ptr_not_equal(x, a); /* a copy: the caller's buffer may go */
    assert_int_equal(eb_strpool_count(p), 1);
    eb_strpool_destroy(p);
}

static void test_strpool_pointers_stay_valid_as_the_pool_grows(void **state) {
    eb_strpool_t *p = eb_strpool_new();
    const char *first = eb_strpool_intern(p, "n0:1");
    for (int i = 1; i < 1000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "n%d:1", i);
        assert_non_null(eb_strpool_intern(p, name));
    }
    assert_string_equal(first, "n0:1");
    assert_ptr_equal(eb_strpool_intern(p, "n0:1"), first);
    assert_int_equal(eb_strpool_count(p), 1000);
    eb_strpool_destroy(p);
}

static void test_strpool_destroy_null_is_noop(void **state) {
    eb_strpool_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strpool_same_text_gives_the_same_pointer),
        cmocka_unit_test(test_strpool_pointers_stay_valid_as_the_pool_grows),
        cmocka_unit_test(test_strpool_destroy_null_is_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
