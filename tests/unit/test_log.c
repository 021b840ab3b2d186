/* test_log.c -- JSON-lines logger: one object per line, field types, secret
 * redaction, URL redaction, truncation of long byte fields, level filter.
 * Output is captured through a pipe. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"

/* ------------------------------------------------------------------------ */
/* A minimal strict JSON validator for one line                              */
/* ------------------------------------------------------------------------ */

static const char *jv_value(const char *p, int depth);

static const char *jv_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *jv_string(const char *p) {
    if (*p++ != '"')
        return NULL;
    while (*p && *p != '"') {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
                        return NULL;
                }
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

static const char *jv_value(const char *p, int depth) {
    p = jv_ws(p);
    if (depth > 64)
        return NULL;
    if (*p == '"')
        return jv_string(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = jv_ws(p + 1);
        if (*p == close)
            return p + 1;
        for (;;) {
            if (close == '}') {
                if (!(p = jv_string(jv_ws(p))))
                    return NULL;
                p = jv_ws(p);
                if (*p++ != ':')
                    return NULL;
            }
            if (!(p = jv_value(p, depth + 1)))
                return NULL;
            p = jv_ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (!strncmp(p, "true", 4) || !strncmp(p, "null", 4))
        return p + 4;
    if (!strncmp(p, "false", 5))
        return p + 5;
    const char *s = p;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else
        while (*p >= '0' && *p <= '9')
            p++;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return p > s && p[-1] >= '0' && p[-1] <= '9' ? p : NULL;
}

static bool is_json_object(const char *line) {
    const char *p = jv_ws(line);
    if (*p != '{')
        return false;
    p = jv_value(p, 0);
    return p && *jv_ws(p) == '\0';
}

/* ------------------------------------------------------------------------ */
/* Capture                                                                   */
/* ------------------------------------------------------------------------ */

struct cap {
    int fds[2];
    eb_log_t *lg;
    char out[65536];
};

static int setup(void **state) {
    struct cap *c = calloc(1, sizeof(*c));
    if (pipe(c->fds) != 0)
        return -1;
    fcntl(c->fds[0], F_SETFL, O_NONBLOCK);
    c->lg = eb_log_new(c->fds[1], EB_LOG_DEBUG);
    *state = c;
    return c->lg ? 0 : -1;
}

static int teardown(void **state) {
    struct cap *c = *state;
    eb_log_destroy(c->lg);
    close(c->fds[0]);
    close(c->fds[1]);
    free(c);
    return 0;
}

/* Everything logged so far (and not yet read), NUL-terminated. */
static const char *drain(struct cap *c) {
    size_t n = 0;
    ssize_t r;
    while (n + 1 < sizeof(c->out) && (r = read(c->fds[0], c->out + n, sizeof(c->out) - 1 - n)) > 0)
        n += (size_t)r;
    c->out[n] = '\0';
    return c->out;
}

/* The single line logged since the last drain, without its newline. */
static char *one_line(struct cap *c) {
    char *s = (char *)drain(c);
    size_t n = strlen(s);
    assert_true(n > 0);
    assert_int_equal(s[n - 1], '\n');
    s[n - 1] = '\0';
    assert_null(strchr(s, '\n'));
    if (!is_json_object(s))
        fail_msg("not a JSON object: %s", s);
    return s;
}

/* ------------------------------------------------------------------------ */
/* Lines                                                                     */
/* ------------------------------------------------------------------------ */

static void test_log_writes_one_json_object_per_line(void **state) {
    struct cap *c = *state;
    eb_log(c->lg, EB_LOG_INFO, "started");
    eb_log(c->lg, EB_LOG_WARN, "redis gap", eb_lf_int("gap_ms", 1520));
    eb_log(c->lg, EB_LOG_ERROR, "multi\nline \"msg\"", eb_lf_str("why", "a\nb"));
    char *s = (char *)drain(c);
    int lines = 0;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        if (!is_json_object(line))
            fail_msg("not a JSON object: %s", line);
        lines++;
    }
    assert_int_equal(lines, 3);
}

static void test_log_line_starts_with_ts_level_msg(void **state) {
    struct cap *c = *state;
    eb_log(c->lg, EB_LOG_WARN, "redis gap", eb_lf_int("gap_ms", 1520));
    char *line = one_line(c);
    /* {"ts":"2026-11-24T03:40:00.123Z","level":"warn",... */
    assert_int_equal(strncmp(line, "{\"ts\":\"", 7), 0);
    const char *ts = line + 7;
    assert_int_equal(strlen(ts) > 24, true);
    assert_int_equal(ts[4], '-');
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[23], 'Z');
    assert_string_equal(ts + 24, "\",\"level\":\"warn\",\"msg\":\"redis gap\",\"gap_ms\":1520}");
}

static void test_log_field_types_are_rendered_as_json(void **state) {
    struct cap *c = *state;
    eb_log(c->lg, EB_LOG_INFO, "m", eb_lf_str("s", "x\"y"), eb_lf_str("nul", NULL),
           eb_lf_bytes("b", "k\0\xff", 3), eb_lf_int("i", INT64_MIN), eb_lf_dbl("d", 0.25),
           eb_lf_bool("t", true), eb_lf_bool("f", false));
    char *line = one_line(c);
    assert_non_null(strstr(line, ",\"s\":\"x\\\"y\",\"nul\":null,\"b\":\"k\\u0000\xEF\xBF\xBD\","
                                 "\"i\":-9223372036854775808,\"d\":0.25,\"t\":true,\"f\":false}"));
}

static void test_log_non_finite_double_is_null(void **state) {
    struct cap *c = *state;
    eb_log(c->lg, EB_LOG_INFO, "m", eb_lf_dbl("nan", NAN), eb_lf_dbl("inf", INFINITY),
           eb_lf_dbl("ninf", -INFINITY));
    char *line = one_line(c);
    assert_non_null(strstr(line, "\"nan\":null,\"inf\":null,\"ninf\":null}"));
}

static void test_log_message_and_field_names_are_escaped(void **state) {
    struct cap *c = *state;
    eb_log(c->lg, EB_LOG_INFO, "tab\there", eb_lf_int("we\"ird", 1));
    char *line = one_line(c);
    assert_non_null(strstr(line, "\"msg\":\"tab\\there\",\"we\\\"ird\":1}"));
}

/* ------------------------------------------------------------------------ */
/* Secrets                                                                   */
/* ------------------------------------------------------------------------ */

static void test_log_secret_field_names_are_redacted(void **state) {
    struct cap *c = *state;
    eb_log(c->lg, EB_LOG_INFO, "conf", eb_lf_str("password", "hunter2"),
           eb_lf_str("REDIS_PASSWORD", "hunter3"), eb_lf_str("sasl.password", "hunter4"),
           eb_lf_bytes("api_token", "hunter5", 7), eb_lf_str("client_secret", "hunter6"),
           eb_lf_str("sasl.jaas.config", "hunter7"), eb_lf_str("ssl.private.key.pem", "hunter8"),
           eb_lf_int("credential_id", 987654321), eb_lf_str("topic", "orders"));
    char *line = one_line(c);
    assert_null(strstr(line, "hunter"));
    assert_null(strstr(line, "987654321"));
    assert_non_null(strstr(line, "\"password\":\"[redacted]\""));
    assert_non_null(strstr(line, "\"credential_id\":\"[redacted]\""));
    assert_non_null(strstr(line, "\"topic\":\"orders\""));
}

static void test_log_is_secret_name_matches_case_insensitively(void **state) {
    static const char *const secret[] = {"password",       "Passwd",      "x_SECRET",
                                         "bearerToken",    "credentials", "sasl.jaas.config",
                                         "ssl.private.key"};
    static const char *const plain[] = {"key", "topic", "route", "db", "pass", "sec", "private"};
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
        if (!eb_log_is_secret_name(secret[i]))
            fail_msg("%s not treated as secret", secret[i]);
    }
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        if (eb_log_is_secret_name(plain[i]))
            fail_msg("%s treated as secret", plain[i]);
    }
}

static void assert_redacted(const char *url, const char *expect) {
    char out[256];
    eb_log_redact_url(url, out, sizeof(out));
    if (strcmp(out, expect) != 0)
        fail_msg("%s: got %s, want %s", url, out, expect);
}

static void test_log_redact_url_hides_password(void **state) {
    assert_redacted("redis://app:s3cret@h:6379", "redis://app:***@h:6379");
    assert_redacted("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0");
    assert_redacted("rediss://default:pw@cache.example.com:6380/2",
                    "rediss://default:***@cache.example.com:6380/2");
    assert_redacted("sentinel://:pw@s1:26379,s2:26379/mymaster",
                    "sentinel://:***@s1:26379,s2:26379/mymaster");
}

static void test_log_redact_url_without_colon_hides_whole_userinfo(void **state) {
    assert_redacted("redis://s3cret@h:6379", "redis://***@h:6379");
}

static void test_log_redact_url_without_credentials_is_unchanged(void **state) {
    assert_redacted("redis://h:6379/0", "redis://h:6379/0");
    assert_redacted("kafka1:9092,kafka2:9092", "kafka1:9092,kafka2:9092");
    assert_redacted("", "");
}

static void test_log_redact_url_password_with_slash_or_at_is_hidden(void **state) {
    /* base64-generated passwords contain '/', '+', '='. */
    assert_redacted("redis://:ab/c+d=@h:6379/0", "redis://:***@h:6379/0");
    assert_redacted("redis://u:p@ss@h:6379", "redis://u:***@h:6379");
    assert_redacted("redis://u:a/b?c#d@h", "redis://u:***@h");
}

static void test_log_redact_url_without_scheme(void **state) {
    assert_redacted("user:pw@host:6379", "user:***@host:6379");
}

static void test_log_redact_url_truncates_and_terminates(void **state) {
    char out[12];
    memset(out, 'X', sizeof(out));
    eb_log_redact_url("redis://app:s3cret@h:6379", out, sizeof(out));
    assert_int_equal(strlen(out), sizeof(out) - 1);
    assert_string_equal(out, "redis://app");
    eb_log_redact_url("redis://h", out, 0); /* must not write */
    char one[1] = {'X'};
    eb_log_redact_url("redis://h", one, 1);
    assert_int_equal(one[0], '\0');
}

/* ------------------------------------------------------------------------ */
/* Truncation                                                                */
/* ------------------------------------------------------------------------ */

static void test_log_long_bytes_are_cut_at_256_with_full_length(void **state) {
    struct cap *c = *state;
    char key[1000];
    memset(key, 'k', sizeof(key));
    eb_log(c->lg, EB_LOG_INFO, "big", eb_lf_bytes("key", key, sizeof(key)));
    char *line = one_line(c);
    char expect[400];
    snprintf(expect, sizeof(expect), "\"key\":\"%.*s...(1000 bytes)\"}", 256, key);
    assert_non_null(strstr(line, expect));
}

static void test_log_bytes_of_exactly_256_are_not_cut(void **state) {
    struct cap *c = *state;
    char key[256];
    memset(key, 'k', sizeof(key));
    eb_log(c->lg, EB_LOG_INFO, "m", eb_lf_bytes("key", key, sizeof(key)));
    char *line = one_line(c);
    assert_null(strstr(line, "bytes)"));
}

static void test_log_cut_does_not_split_a_utf8_character(void **state) {
    struct cap *c = *state;
    char key[300];
    memset(key, 'a', sizeof(key));
    memcpy(key + 254, "\xE2\x82\xAC", 3); /* '€' straddles byte 256 */
    eb_log(c->lg, EB_LOG_INFO, "m", eb_lf_bytes("key", key, sizeof(key)));
    char *line = one_line(c);
    assert_null(strstr(line, "\xEF\xBF\xBD"));
    assert_non_null(strstr(line, "aa...(300 bytes)\""));
}

/* ------------------------------------------------------------------------ */
/* Levels                                                                    */
/* ------------------------------------------------------------------------ */

static void test_log_lines_below_level_are_dropped(void **state) {
    struct cap *c = *state;
    eb_log_set_level(c->lg, EB_LOG_WARN);
    eb_log(c->lg, EB_LOG_DEBUG, "d");
    eb_log(c->lg, EB_LOG_INFO, "i");
    assert_string_equal(drain(c), "");
    eb_log(c->lg, EB_LOG_WARN, "w");
    eb_log(c->lg, EB_LOG_ERROR, "e");
    const char *s = drain(c);
    assert_non_null(strstr(s, "\"level\":\"warn\",\"msg\":\"w\""));
    assert_non_null(strstr(s, "\"level\":\"error\",\"msg\":\"e\""));
    assert_false(eb_log_enabled(c->lg, EB_LOG_INFO));
    assert_true(eb_log_enabled(c->lg, EB_LOG_ERROR));
    eb_log_set_level(c->lg, EB_LOG_DEBUG);
    assert_true(eb_log_enabled(c->lg, EB_LOG_DEBUG));
}

static void test_log_null_logger_writes_nothing(void **state) {
    assert_false(eb_log_enabled(NULL, EB_LOG_ERROR));
    eb_log(NULL, EB_LOG_ERROR, "nowhere", eb_lf_int("x", 1));
    eb_log_destroy(NULL);
}

static void test_log_level_names_parse(void **state) {
    enum eb_log_level l;
    assert_true(eb_log_level_parse("debug", &l));
    assert_int_equal(l, EB_LOG_DEBUG);
    assert_true(eb_log_level_parse("info", &l));
    assert_int_equal(l, EB_LOG_INFO);
    assert_true(eb_log_level_parse("warn", &l));
    assert_int_equal(l, EB_LOG_WARN);
    assert_true(eb_log_level_parse("warning", &l));
    assert_int_equal(l, EB_LOG_WARN);
    assert_true(eb_log_level_parse("error", &l));
    assert_int_equal(l, EB_LOG_ERROR);
    assert_false(eb_log_level_parse("verbose", &l));
    assert_false(eb_log_level_parse("", &l));
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_log_writes_one_json_object_per_line),
        T(test_log_line_starts_with_ts_level_msg),
        T(test_log_field_types_are_rendered_as_json),
        T(test_log_non_finite_double_is_null),
        T(test_log_message_and_field_names_are_escaped),
        T(test_log_secret_field_names_are_redacted),
        T(test_log_is_secret_name_matches_case_insensitively),
        T(test_log_redact_url_hides_password),
        T(test_log_redact_url_without_colon_hides_whole_userinfo),
        T(test_log_redact_url_without_credentials_is_unchanged),
        T(test_log_redact_url_password_with_slash_or_at_is_hidden),
        T(test_log_redact_url_without_scheme),
        T(test_log_redact_url_truncates_and_terminates),
        T(test_log_long_bytes_are_cut_at_256_with_full_length),
        T(test_log_bytes_of_exactly_256_are_not_cut),
        T(test_log_cut_does_not_split_a_utf8_character),
        T(test_log_lines_below_level_are_dropped),
        T(test_log_null_logger_writes_nothing),
        T(test_log_level_names_parse),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
