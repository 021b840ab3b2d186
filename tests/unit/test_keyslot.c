/* test_keyslot.c -- key slots as Redis Cluster computes them: the CRC's
 * check value, hash tags, and slots read from a real cluster (CLUSTER
 * KEYSLOT on Redis 7.0.15). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/keyslot.h"

static unsigned slot(const char *k) {
    return eb_keyslot_of(k, strlen(k));
}

static void test_keyslot_crc16_matches_the_xmodem_check_value(void **state) {
    /* The standard check input of every CRC catalogue. */
    assert_int_equal(eb_keyslot_crc16("123456789", 9), 0x31C3);
    assert_int_equal(eb_keyslot_crc16("", 0), 0);
}

static void test_keyslot_matches_cluster_keyslot(void **state) {
    /* Answers of CLUSTER KEYSLOT on a real Redis 7.0.15 cluster. */
    assert_int_equal(slot("foox"), 11674);
    assert_int_equal(slot("{a}x"), 15495);
}

static void test_keyslot_keys_sharing_a_hash_tag_share_a_slot(void **state) {
    assert_int_equal(slot("order:{order-payment-timeout:3}:7"),
                     slot("expiry-bridge:ledger:{order-payment-timeout:3}"));
    assert_int_equal(slot("{a}x"), slot("a"));
}

static void test_keyslot_empty_tag_hashes_the_whole_key(void **state) {
    size_t len;
    const char *k = "a{}b";
    assert_ptr_equal(eb_keyslot_hashed_part(k, 4, &len), k);
    assert_int_equal(len, 4);
}

static void test_keyslot_only_the_first_tag_counts(void **state) {
    size_t len;
    const char *k = "x{ab}{cd}";
    const char *p = eb_keyslot_hashed_part(k, strlen(k), &len);
    assert_int_equal(len, 2);
    assert_memory_equal(p, "ab", 2);
}

static void test_keyslot_unclosed_brace_hashes_the_whole_key(void **state) {
    size_t len;
    eb_keyslot_hashed_part("a{bc", 4, &len);
    assert_int_equal(len, 4);
}

static void test_keyslot_tag_ends_at_the_first_closing_brace(void **state) {
    size_t len;
    const char *p = eb_keyslot_hashed_part("{a}}", 4, &len);
    assert_int_equal(len, 1);
    assert_int_equal(p[0], 'a');
}

static void test_keyslot_handles_binary_keys(void **state) {
    const char k[] = {'\0', '{', '\xff', '}', '\0'};
    assert_int_equal(eb_keyslot_of(k, sizeof(k)), eb_keyslot_crc16("\xff", 1) & 16383);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyslot_crc16_matches_the_xmodem_check_value),
        cmocka_unit_test(test_keyslot_matches_cluster_keyslot),
        cmocka_unit_test(test_keyslot_keys_sharing_a_hash_tag_share_a_slot),
        cmocka_unit_test(test_keyslot_empty_tag_hashes_the_whole_key),
        cmocka_unit_test(test_keyslot_only_the_first_tag_counts),
        cmocka_unit_test(test_keyslot_unclosed_brace_hashes_the_whole_key),
        cmocka_unit_test(test_keyslot_tag_ends_at_the_first_closing_brace),
        cmocka_unit_test(test_keyslot_handles_binary_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
