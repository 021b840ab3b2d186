/* test_notify_flags.c -- keyevent names and ids, the notify-keyspace-events
 * flags they need, and flag arithmetic against what CONFIG GET returns
 * (any order, 'A' as an alias, merge never removes a flag). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/notify.h"

static uint64_t bit(const char *name) {
    int id = eb_notify_event_id(name, strlen(name));
    assert_true(id >= 0);
    return UINT64_C(1) << id;
}

/* Same characters, any order, no duplicates. */
static void assert_same_flags(const char *got, const char *want) {
    if (strlen(got) != strlen(want))
        fail_msg("flags '%s', want '%s'", got, want);
    for (const char *c = want; *c; c++) {
        if (!strchr(got, *c) || strchr(got, *c) != strrchr(got, *c))
            fail_msg("flags '%s', want '%s'", got, want);
    }
}

/* ------------------------------------------------------------------------ */
/* Names and ids                                                             */
/* ------------------------------------------------------------------------ */

static void test_notify_expired_has_id_zero(void **state) {
    assert_int_equal(eb_notify_event_id("expired", 7), EB_EVENT_EXPIRED_ID);
    assert_string_equal(eb_notify_event_name(EB_EVENT_EXPIRED_ID), "expired");
}

static void test_notify_every_id_round_trips_through_its_name(void **state) {
    int n = eb_notify_event_count();
    assert_true(n > 10 && n <= 64);
    for (int id = 0; id < n; id++) {
        const char *name = eb_notify_event_name(id);
        assert_non_null(name);
        assert_int_equal(eb_notify_event_id(name, strlen(name)), id);
    }
}

static void test_notify_known_redis_events_have_ids(void **state) {
    static const char *const names[] = {"expired",     "evicted", "del",     "expire", "set",
                                        "rename_from", "new",     "keymiss", "hset",   "xadd"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        assert_true(eb_notify_event_id(names[i], strlen(names[i])) >= 0);
}

static void test_notify_unknown_event_is_minus_one(void **state) {
    assert_int_equal(eb_notify_event_id("expird", 6), -1);
    assert_int_equal(eb_notify_event_id("", 0), -1);
    assert_int_equal(eb_notify_event_id("EXPIRED", 7), -1);
}

static void test_notify_id_matches_exactly_len_bytes(void **state) {
    /* A channel suffix is not NUL-terminated: only len bytes count. */
    assert_int_equal(eb_notify_event_id("expiredXYZ", 7), EB_EVENT_EXPIRED_ID);
    assert_int_equal(eb_notify_event_id("expired", 5), -1);
    assert_int_equal(eb_notify_event_id("expired", 6), eb_notify_event_id("expire", 6));
    assert_int_equal(eb_notify_event_id("expire", 6), eb_notify_event_id("expire\0", 6));
    assert_true(eb_notify_event_id("expire", 6) != EB_EVENT_EXPIRED_ID);
}

static void test_notify_name_out_of_range_is_null(void **state) {
    assert_null(eb_notify_event_name(-1));
    assert_null(eb_notify_event_name(eb_notify_event_count()));
    assert_null(eb_notify_event_name(64));
}

static void test_notify_suggest_finds_close_names_only(void **state) {
    assert_string_equal(eb_notify_event_suggest("expird"), "expired");
    assert_string_equal(eb_notify_event_suggest("Expired"), "expired");
    assert_string_equal(eb_notify_event_suggest("evict"), "evicted");
    assert_null(eb_notify_event_suggest("timeout"));
    assert_null(eb_notify_event_suggest("a-very-long-name-that-matches-nothing-at-all"));
}

/* ------------------------------------------------------------------------ */
/* Required flags                                                            */
/* ------------------------------------------------------------------------ */

static void test_notify_required_flags_for_expired_is_Ex(void **state) {
    char out[32];
    eb_notify_required_flags(bit("expired"), out, sizeof(out));
    assert_string_equal(out, "Ex");
}

static void test_notify_required_flags_one_class_per_event_no_duplicates(void **state) {
    char out[32];
    eb_notify_required_flags(bit("expired") | bit("evicted") | bit("del") | bit("expire") |
                                 bit("set"),
                             out, sizeof(out));
    assert_same_flags(out, "Exeg$");
    assert_int_equal(out[0], 'E');
}

static void test_notify_required_flags_for_no_event_is_E(void **state) {
    char out[32];
    eb_notify_required_flags(0, out, sizeof(out));
    assert_string_equal(out, "E");
}

static void test_notify_required_flags_for_every_event_fit_32(void **state) {
    char out[32];
    eb_notify_required_flags(UINT64_MAX, out, sizeof(out));
    assert_same_flags(out, "Exeg$lshzntm");
}

/* ------------------------------------------------------------------------ */
/* Missing flags                                                             */
/* ------------------------------------------------------------------------ */

static void test_notify_nothing_missing_in_any_order(void **state) {
    char missing[32];
    assert_false(eb_notify_flags_missing("xE", "Ex", missing, sizeof(missing)));
    assert_string_equal(missing, "");
    assert_false(eb_notify_flags_missing("KExg", "Ex", missing, sizeof(missing)));
}

static void test_notify_missing_flags_are_listed(void **state) {
    char missing[32];
    assert_true(eb_notify_flags_missing("", "Ex", missing, sizeof(missing)));
    assert_string_equal(missing, "Ex");
    assert_true(eb_notify_flags_missing("Kx", "Ex", missing, sizeof(missing)));
    assert_string_equal(missing, "E");
    assert_true(eb_notify_flags_missing("E", "Exe", missing, sizeof(missing)));
    assert_string_equal(missing, "xe");
}

static void test_notify_A_alias_covers_its_classes(void **state) {
    char missing[32];
    assert_false(eb_notify_flags_missing("AE", "Exeg$lshztd", missing, sizeof(missing)));
    /* 'A' is a class alias only: it does not enable keyevent channels. */
    assert_true(eb_notify_flags_missing("A", "Ex", missing, sizeof(missing)));
    assert_string_equal(missing, "E");
}

static void test_notify_A_alias_excludes_keymiss_and_new(void **state) {
    char missing[32];
    assert_true(eb_notify_flags_missing("AKE", "Emn", missing, sizeof(missing)));
    assert_string_equal(missing, "mn");
}

/* ------------------------------------------------------------------------ */
/* Merge                                                                     */
/* ------------------------------------------------------------------------ */

static void test_notify_merge_adds_required_flags(void **state) {
    char out[32];
    eb_notify_flags_merge("", "Ex", out, sizeof(out));
    assert_string_equal(out, "Ex");
    eb_notify_flags_merge("Kg", "Ex", out, sizeof(out));
    assert_string_equal(out, "KgEx");
}

static void test_notify_merge_keeps_A_without_expanding_it(void **state) {
    char out[32];
    eb_notify_flags_merge("AK", "Ex", out, sizeof(out));
    assert_string_equal(out, "AKE");
    eb_notify_flags_merge("AE", "Exm", out, sizeof(out));
    assert_string_equal(out, "AEm");
}

static void test_notify_merge_is_idempotent(void **state) {
    char once[32], twice[32];
    eb_notify_flags_merge("xK", "Exe", once, sizeof(once));
    eb_notify_flags_merge(once, "Exe", twice, sizeof(twice));
    assert_string_equal(once, twice);
    char missing[32];
    assert_false(eb_notify_flags_missing(once, "Exe", missing, sizeof(missing)));
}

static void test_notify_merge_never_removes_a_flag(void **state) {
    static const char *const currents[] = {"", "K", "A", "KEA", "xE", "g$lshzxetdKEmn", "Kd"};
    static const char *const requireds[] = {"E", "Ex", "Exe", "Em", "Eg$", "Exeg$lshzntm"};
    for (size_t i = 0; i < sizeof(currents) / sizeof(currents[0]); i++) {
        for (size_t j = 0; j < sizeof(requireds) / sizeof(requireds[0]); j++) {
            char out[32], missing[32];
            eb_notify_flags_merge(currents[i], requireds[j], out, sizeof(out));
            for (const char *c = currents[i]; *c; c++) {
                if (!strchr(out, *c))
                    fail_msg("merge('%s','%s') = '%s' lost '%c'", currents[i], requireds[j], out,
                             *c);
            }
            if (eb_notify_flags_missing(out, requireds[j], missing, sizeof(missing)))
                fail_msg("merge('%s','%s') = '%s' still misses '%s'", currents[i], requireds[j],
                         out, missing);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_expired_has_id_zero),
        cmocka_unit_test(test_notify_every_id_round_trips_through_its_name),
        cmocka_unit_test(test_notify_known_redis_events_have_ids),
        cmocka_unit_test(test_notify_unknown_event_is_minus_one),
        cmocka_unit_test(test_notify_id_matches_exactly_len_bytes),
        cmocka_unit_test(test_notify_name_out_of_range_is_null),
        cmocka_unit_test(test_notify_suggest_finds_close_names_only),
        cmocka_unit_test(test_notify_required_flags_for_expired_is_Ex),
        cmocka_unit_test(test_notify_required_flags_one_class_per_event_no_duplicates),
        cmocka_unit_test(test_notify_required_flags_for_no_event_is_E),
        cmocka_unit_test(test_notify_required_flags_for_every_event_fit_32),
        cmocka_unit_test(test_notify_nothing_missing_in_any_order),
        cmocka_unit_test(test_notify_missing_flags_are_listed),
        cmocka_unit_test(test_notify_A_alias_covers_its_classes),
        cmocka_unit_test(test_notify_A_alias_excludes_keymiss_and_new),
        cmocka_unit_test(test_notify_merge_adds_required_flags),
        cmocka_unit_test(test_notify_merge_keeps_A_without_expanding_it),
        cmocka_unit_test(test_notify_merge_is_idempotent),
        cmocka_unit_test(test_notify_merge_never_removes_a_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
