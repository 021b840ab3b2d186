/* test_json.c -- the byte buffer, JSON string escaping, UTF-8 validation,
 * base64 (RFC 4648 §10 vectors) and RFC 3339 timestamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/json.h"
#include "core/utf8.h"

static void assert_buf(const struct eb_buf *b, const char *expect, size_t n) {
    assert_true(eb_buf_ok(b));
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, expect, n);
}
#define ASSERT_BUF(b, lit) assert_buf((b), (lit), sizeof(lit) - 1)

/* eb_json_string of p[0..n) into a fresh buffer; returns its validity. */
static bool escape(const void *p, size_t n, struct eb_buf *b) {
    eb_buf_reset(b);
    return eb_json_string(b, p, n);
}

/* ------------------------------------------------------------------------ */
/* Buffer                                                                    */
/* ------------------------------------------------------------------------ */

static void test_json_buf_appends_and_grows(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        eb_buf_puts(&b, "abc");
    eb_buf_putc(&b, '!');
    assert_true(eb_buf_ok(&b));
    assert_int_equal(b.len, 3001);
    assert_true(b.cap >= b.len);
    assert_memory_equal(b.data + 2997, "abc!", 4);
    eb_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

static void test_json_buf_reset_keeps_storage(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, "hello");
    char *data = b.data;
    size_t cap = b.cap;
    eb_buf_reset(&b);
    assert_int_equal(b.len, 0);
    eb_buf_puts(&b, "world");
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    ASSERT_BUF(&b, "world");
    eb_buf_free(&b);
}

static void test_json_buf_cstr_terminates_without_counting(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, "xyz");
    eb_buf_cstr(&b);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "xyz");
    eb_buf_free(&b);
}

static void test_json_buf_integers_cover_the_full_range(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    eb_buf_put_i64(&b, 0);
    eb_buf_putc(&b, ' ');
    eb_buf_put_i64(&b, -1);
    eb_buf_putc(&b, ' ');
    eb_buf_put_i64(&b, INT64_MIN);
    eb_buf_putc(&b, ' ');
    eb_buf_put_i64(&b, INT64_MAX);
    eb_buf_putc(&b, ' ');
    eb_buf_put_u64(&b, UINT64_MAX);
    eb_buf_putc(&b, ' ');
    eb_buf_put_u64(&b, 10);
    ASSERT_BUF(&b, "0 -1 -9223372036854775808 9223372036854775807 18446744073709551615 10");
    eb_buf_free(&b);
}

static void test_json_buf_failure_at_max_is_sticky(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    b.max = 8;
    eb_buf_puts(&b, "12345");
    assert_true(eb_buf_ok(&b));
    eb_buf_puts(&b, "6789"); /* 9 > max */
    assert_false(eb_buf_ok(&b));
    assert_int_equal(b.len, 5);
    eb_buf_puts(&b, "a"); /* would fit, but the buffer has failed */
    eb_json_string(&b, "b", 1);
    eb_buf_put_base64(&b, "c", 1);
    eb_buf_put_rfc3339(&b, 0, 0);
    eb_buf_put_i64(&b, 1);
    eb_buf_putc(&b, 'd'); /* the inline fast path must honour the failure too */
    assert_false(eb_buf_ok(&b));
    assert_int_equal(b.len, 5);
    assert_false(eb_buf_reserve(&b, 1));
    eb_buf_reset(&b); /* forgets the failure */
    assert_true(eb_buf_ok(&b));
    eb_buf_puts(&b, "12345678");
    ASSERT_BUF(&b, "12345678");
    assert_true(b.cap <= 8);
    eb_buf_free(&b);
}

static void test_json_buf_reserve_within_max_is_exact(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    b.max = 300;
    assert_true(eb_buf_reserve(&b, 300));
    assert_int_equal(b.cap, 300);
    assert_false(eb_buf_reserve(&b, 301));
    eb_buf_free(&b);
}

static void test_json_buf_reserve_overflow_fails(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, "x");
    assert_false(eb_buf_reserve(&b, SIZE_MAX));
    assert_false(eb_buf_ok(&b));
    eb_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* Escaping                                                                  */
/* ------------------------------------------------------------------------ */

static void test_json_escape_table_for_every_ascii_byte(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    for (int c = 0; c < 0x80; c++) {
        char in = (char)c, expect[16];
        switch (c) {
        case '"':
            strcpy(expect, "\"\\\"\"");
            break;
        case '\\':
            strcpy(expect, "\"\\\\\"");
            break;
        case '\b':
            strcpy(expect, "\"\\b\"");
            break;
        case '\f':
            strcpy(expect, "\"\\f\"");
            break;
        case '\n':
            strcpy(expect, "\"\\n\"");
            break;
        case '\r':
            strcpy(expect, "\"\\r\"");
            break;
        case '\t':
            strcpy(expect, "\"\\t\"");
            break;
        default:
            if (c < 0x20)
                snprintf(expect, sizeof(expect), "\"\\u%04x\"", c);
            else
                snprintf(expect, sizeof(expect), "\"%c\"", c); /* '/' and DEL stay */
        }
        assert_true(escape(&in, 1, &b));
        if (b.len != strlen(expect) || memcmp(b.data, expect, b.len) != 0)
            fail_msg("byte 0x%02x: got %.*s, want %s", c, (int)b.len, b.data, expect);
    }
    eb_buf_free(&b);
}

static void test_json_escape_keeps_runs_between_escapes(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    static const char in[] = "ab\"cd\\ef\ngh";
    assert_true(escape(in, sizeof(in) - 1, &b));
    ASSERT_BUF(&b, "\"ab\\\"cd\\\\ef\\ngh\"");
    assert_true(escape("", 0, &b));
    ASSERT_BUF(&b, "\"\"");
    assert_true(escape("\0", 1, &b));
    ASSERT_BUF(&b, "\"\\u0000\"");
    eb_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */
/* ------------------------------------------------------------------------ */

struct utf8_case {
    const char *name;
    const char *in;
    size_t n;
    const char *escaped; /* body of eb_json_string's output, without quotes */
};
#define U(name, in, out)                                                                           \
    { name, in, sizeof(in) - 1, out }
#define FFFD "\xEF\xBF\xBD"

static const struct utf8_case valid_cases[] = {
    U("ascii", "abc", "abc"),
    U("2-byte lowest U+0080", "\xC2\x80", "\xC2\x80"),
    U("2-byte highest U+07FF", "\xDF\xBF", "\xDF\xBF"),
    U("3-byte lowest U+0800", "\xE0\xA0\x80", "\xE0\xA0\x80"),
    U("last before surrogates U+D7FF", "\xED\x9F\xBF", "\xED\x9F\xBF"),
    U("first after surrogates U+E000", "\xEE\x80\x80", "\xEE\x80\x80"),
    U("U+FFFD itself", FFFD, FFFD),
    U("U+FFFF", "\xEF\xBF\xBF", "\xEF\xBF\xBF"),
    U("4-byte lowest U+10000", "\xF0\x90\x80\x80", "\xF0\x90\x80\x80"),
    U("highest U+10FFFF", "\xF4\x8F\xBF\xBF", "\xF4\x8F\xBF\xBF"),
    U("emoji", "\xF0\x9F\x9B\x92", "\xF0\x9F\x9B\x92"),
    U("U+2028 is legal in JSON", "\xE2\x80\xA8", "\xE2\x80\xA8"),
};

static const struct utf8_case invalid_cases[] = {
    U("overlong 2-byte C0 80", "\xC0\x80", FFFD FFFD),
    U("overlong 2-byte C1 BF", "\xC1\xBF", FFFD FFFD),
    U("overlong 3-byte E0 80 80", "\xE0\x80\x80", FFFD FFFD FFFD),
    U("overlong 3-byte E0 9F BF", "\xE0\x9F\xBF", FFFD FFFD FFFD),
    U("overlong 4-byte F0 80 80 80", "\xF0\x80\x80\x80", FFFD FFFD FFFD FFFD),
    U("overlong 4-byte F0 8F BF BF", "\xF0\x8F\xBF\xBF", FFFD FFFD FFFD FFFD),
    U("high surrogate D800", "\xED\xA0\x80", FFFD FFFD FFFD),
    U("low surrogate DFFF", "\xED\xBF\xBF", FFFD FFFD FFFD),
    U("above U+10FFFF: F4 90", "\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD),
    U("F5 lead byte", "\xF5\x80\x80\x80", FFFD FFFD FFFD FFFD),
    U("FF byte",
      "a\xFF"
      "b",
      "a" FFFD "b"),
    U("FE byte", "\xFE", FFFD),
    U("lone continuation", "\x80", FFFD),
    U("truncated 2-byte at end", "ab\xC3", "ab" FFFD),
    U("truncated 3-byte at end", "\xE2\x82", FFFD FFFD),
    U("truncated 4-byte at end", "\xF0\x9F\x98", FFFD FFFD FFFD),
    U("interrupted 3-byte", "\xE2(\xA1", FFFD "(" FFFD),
    U("lead then ASCII",
      "\xC3"
      "A",
      FFFD "A"),
    U("valid after invalid", "\xFF\xC3\xA9", FFFD "\xC3\xA9"),
    U("control inside invalid run", "\xFF\n", FFFD "\\n"),
};

static void test_json_utf8_valid_classes_are_accepted_and_copied(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct utf8_case *c = &valid_cases[i];
        if (!eb_utf8_valid(c->in, c->n))
            fail_msg("%s: rejected", c->name);
        if (!escape(c->in, c->n, &b))
            fail_msg("%s: escaper replaced bytes", c->name);
        assert_int_equal(b.len, strlen(c->escaped) + 2);
        assert_memory_equal(b.data + 1, c->escaped, b.len - 2);
    }
    eb_buf_free(&b);
}

static void test_json_utf8_invalid_classes_become_fffd_per_byte(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    for (size_t i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
        const struct utf8_case *c = &invalid_cases[i];
        if (eb_utf8_valid(c->in, c->n))
            fail_msg("%s: accepted", c->name);
        if (escape(c->in, c->n, &b))
            fail_msg("%s: escaper reported valid", c->name);
        if (b.len != strlen(c->escaped) + 2 || memcmp(b.data + 1, c->escaped, b.len - 2) != 0)
            fail_msg("%s: got %.*s", c->name, (int)b.len, b.data);
        assert_true(eb_utf8_valid(b.data, b.len));
    }
    eb_buf_free(&b);
}

static void test_json_utf8_nul_and_empty_are_valid(void **state) {
    assert_true(eb_utf8_valid("", 0));
    assert_true(eb_utf8_valid("a\0b", 3));
}

static void test_json_utf8_truncation_is_checked_against_length_not_nul(void **state) {
    /* The bytes after n must not be read as part of the sequence. */
    static const char s[] = "\xE2\x82\xAC";
    assert_true(eb_utf8_valid(s, 3));
    assert_false(eb_utf8_valid(s, 2));
    assert_false(eb_utf8_valid(s, 1));
}

static void test_json_escaped_output_is_always_valid_utf8(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    unsigned char in[3];
    for (unsigned v = 0; v < (1u << 24); v += 97) { /* a stride through 3-byte inputs */
        in[0] = (unsigned char)v, in[1] = (unsigned char)(v >> 8), in[2] = (unsigned char)(v >> 16);
        bool valid = escape(in, 3, &b);
        assert_int_equal(valid, eb_utf8_valid(in, 3));
        if (!eb_utf8_valid(b.data, b.len))
            fail_msg("output not UTF-8 for %02x %02x %02x", in[0], in[1], in[2]);
    }
    eb_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* base64                                                                    */
/* ------------------------------------------------------------------------ */

static void test_json_base64_rfc4648_section10_vectors(void **state) {
    static const char *const vec[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    struct eb_buf b = EB_BUF_INIT;
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        eb_buf_reset(&b);
        eb_buf_put_base64(&b, vec[i][0], strlen(vec[i][0]));
        assert_true(eb_buf_ok(&b));
        assert_int_equal(b.len, strlen(vec[i][1]));
        if (b.len)
            assert_memory_equal(b.data, vec[i][1], b.len);
    }
    eb_buf_free(&b);
}

static void test_json_base64_uses_standard_alphabet_for_high_bytes(void **state) {
    static const unsigned char in[] = {0xFB, 0xFF, 0xBF, 0x00, 0xFF};
    struct eb_buf b = EB_BUF_INIT;
    eb_buf_put_base64(&b, in, sizeof(in));
    ASSERT_BUF(&b, "+/+/AP8=");
    eb_buf_free(&b);
}

static void test_json_base64_appends_after_existing_content(void **state) {
    struct eb_buf b = EB_BUF_INIT;
    eb_buf_puts(&b, "k=");
    eb_buf_put_base64(&b, "foo", 3);
    ASSERT_BUF(&b, "k=Zm9v");
    eb_buf_free(&b);
}

/* ------------------------------------------------------------------------ */
/* RFC 3339                                                                  */
/* ------------------------------------------------------------------------ */

static void assert_time(int64_t us, int digits, const char *expect) {
    struct eb_buf b = EB_BUF_INIT;
    eb_buf_put_rfc3339(&b, us, digits);
    assert_true(eb_buf_ok(&b));
    if (b.len != strlen(expect) || memcmp(b.data, expect, b.len) != 0)
        fail_msg("%lld/%d: got %.*s, want %s", (long long)us, digits, (int)b.len, b.data, expect);
    eb_buf_free(&b);
}

static void test_json_rfc3339_epoch_with_0_3_6_digits(void **state) {
    assert_time(0, 0, "1970-01-01T00:00:00Z");
    assert_time(0, 3, "1970-01-01T00:00:00.000Z");
    assert_time(0, 6, "1970-01-01T00:00:00.000000Z");
}

static void test_json_rfc3339_contract_example(void **state) {
    assert_time(1795491600123456LL, 6, "2026-11-24T03:40:00.123456Z");
    assert_time(1795491599998000LL, 3, "2026-11-24T03:39:59.998Z");
}

static void test_json_rfc3339_three_digits_truncate(void **state) {
    assert_time(999999, 3, "1970-01-01T00:00:00.999Z");
    assert_time(1999, 3, "1970-01-01T00:00:00.001Z");
}

static void test_json_rfc3339_negative_times_floor_to_earlier_second(void **state) {
    assert_time(-1, 6, "1969-12-31T23:59:59.999999Z");
    assert_time(-1000000, 6, "1969-12-31T23:59:59.000000Z");
    assert_time(-1000001, 3, "1969-12-31T23:59:58.999Z");
    assert_time(-86400LL * 1000000, 0, "1969-12-31T00:00:00Z");
}

static void test_json_rfc3339_leap_days(void **state) {
    assert_time(951782400LL * 1000000, 0, "2000-02-29T00:00:00Z");  /* 400-year leap */
    assert_time(4107542400LL * 1000000, 0, "2100-03-01T00:00:00Z"); /* 2100 is not leap */
    assert_time(1709164800LL * 1000000, 0, "2024-02-29T00:00:00Z");
    assert_time(1735689599LL * 1000000, 0, "2024-12-31T23:59:59Z");
}

static void test_json_rfc3339_out_of_range_is_clamped_to_four_digit_years(void **state) {
    assert_time(INT64_MIN, 6, "0000-01-01T00:00:00.000000Z");
    assert_time(INT64_MAX, 6, "9999-12-31T23:59:59.999999Z");
    assert_time(INT64_MAX, 3, "9999-12-31T23:59:59.999Z");
    assert_time(-62167219200LL * 1000000, 0, "0000-01-01T00:00:00Z");
    assert_time(253402300799LL * 1000000, 0, "9999-12-31T23:59:59Z");
    assert_time(253402300800LL * 1000000, 0, "9999-12-31T23:59:59Z");
}

static void test_json_rfc3339_other_digit_counts_mean_none(void **state) {
    assert_time(123456, 2, "1970-01-01T00:00:00Z");
}

static void test_json_rfc3339_agrees_with_gmtime_across_centuries(void **state) {
    uint64_t rng = 88172645463325252u;
    struct eb_buf b = EB_BUF_INIT;
    for (int i = 0; i < 200000; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        /* 1600 .. 2400 */
        int64_t secs = (int64_t)(rng % 25246080000ull) - 11676096000LL;
        time_t t = (time_t)secs;
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        char expect[40];
        strftime(expect, sizeof(expect), "%Y-%m-%dT%H:%M:%SZ", &tm);
        eb_buf_reset(&b);
        eb_buf_put_rfc3339(&b, secs * 1000000, 0);
        if (b.len != strlen(expect) || memcmp(b.data, expect, b.len) != 0)
            fail_msg("%lld: got %.*s, want %s", (long long)secs, (int)b.len, b.data, expect);
    }
    eb_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_buf_appends_and_grows),
        cmocka_unit_test(test_json_buf_reset_keeps_storage),
        cmocka_unit_test(test_json_buf_cstr_terminates_without_counting),
        cmocka_unit_test(test_json_buf_integers_cover_the_full_range),
        cmocka_unit_test(test_json_buf_failure_at_max_is_sticky),
        cmocka_unit_test(test_json_buf_reserve_within_max_is_exact),
        cmocka_unit_test(test_json_buf_reserve_overflow_fails),
        cmocka_unit_test(test_json_escape_table_for_every_ascii_byte),
        cmocka_unit_test(test_json_escape_keeps_runs_between_escapes),
        cmocka_unit_test(test_json_utf8_valid_classes_are_accepted_and_copied),
        cmocka_unit_test(test_json_utf8_invalid_classes_become_fffd_per_byte),
        cmocka_unit_test(test_json_utf8_nul_and_empty_are_valid),
        cmocka_unit_test(test_json_utf8_truncation_is_checked_against_length_not_nul),
        cmocka_unit_test(test_json_escaped_output_is_always_valid_utf8),
        cmocka_unit_test(test_json_base64_rfc4648_section10_vectors),
        cmocka_unit_test(test_json_base64_uses_standard_alphabet_for_high_bytes),
        cmocka_unit_test(test_json_base64_appends_after_existing_content),
        cmocka_unit_test(test_json_rfc3339_epoch_with_0_3_6_digits),
        cmocka_unit_test(test_json_rfc3339_contract_example),
        cmocka_unit_test(test_json_rfc3339_three_digits_truncate),
        cmocka_unit_test(test_json_rfc3339_negative_times_floor_to_earlier_second),
        cmocka_unit_test(test_json_rfc3339_leap_days),
        cmocka_unit_test(test_json_rfc3339_out_of_range_is_clamped_to_four_digit_years),
        cmocka_unit_test(test_json_rfc3339_other_digit_counts_mean_none),
        cmocka_unit_test(test_json_rfc3339_agrees_with_gmtime_across_centuries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
