/* test_redis_tls.c -- the table of TLS failure reasons (redis_tls.h) that
 * the log line, the counter and the docs share: every reason a distinct
 * Prometheus label value with a setting to fix and a hint, and every one
 * documented in docs/tls.md and docs/metrics.md. The handshakes themselves
 * are tested against real servers in tests/integration/test_redis_tls.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "redis/redis_tls.h"

#define NREASONS (EB_REDIS_TLS_HANDSHAKE + 1)

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_every_reason_is_a_distinct_label_with_a_setting_and_a_hint(void **state) {
    (void)state;
    assert_string_equal(eb_redis_tls_reason_name(EB_REDIS_TLS_OK), "ok");
    assert_null(eb_redis_tls_reason_hint(EB_REDIS_TLS_OK));
    for (int r = EB_REDIS_TLS_OK + 1; r < NREASONS; r++) {
        const char *name = eb_redis_tls_reason_name((enum eb_redis_tls_reason)r);
        assert_true(strlen(name) > 2);
        assert_int_equal(strspn(name, "abcdefghijklmnopqrstuvwxyz_"), strlen(name));
        assert_true(strlen(eb_redis_tls_reason_setting((enum eb_redis_tls_reason)r)) > 5);
        assert_true(strlen(eb_redis_tls_reason_hint((enum eb_redis_tls_reason)r)) > 20);
        for (int q = EB_REDIS_TLS_OK; q < r; q++)
            assert_string_not_equal(name, eb_redis_tls_reason_name((enum eb_redis_tls_reason)q));
    }
    assert_string_equal(eb_redis_tls_reason_name((enum eb_redis_tls_reason)NREASONS), "?");
}

/* docs/tls.md's table has a row per reason with its setting; docs/metrics.md
 * names each as a label value of eb_redis_tls_failures_total. */
static void test_every_reason_is_documented_with_its_setting(void **state) {
    (void)state;
    char *tls = strdup(slurp(EB_SOURCE_DIR "/docs/tls.md"));
    char *metrics = strdup(slurp(EB_SOURCE_DIR "/docs/metrics.md"));
    const char *row = strstr(metrics, "| `eb_redis_tls_failures_total` |");
    assert_non_null(row);
    for (int r = EB_REDIS_TLS_OK + 1; r < NREASONS; r++) {
        char want[256];
        const char *name = eb_redis_tls_reason_name((enum eb_redis_tls_reason)r);
        snprintf(want, sizeof(want), "| `%s` |", name);
        const char *line = strstr(tls, want);
        if (!line)
            fail_msg("docs/tls.md has no row for %s", name);
        const char *end = strchr(line, '\n');
        const char *setting = eb_redis_tls_reason_setting((enum eb_redis_tls_reason)r);
        /* The setting, as the log line says it, in the row (backquoted
         * piece by piece there: compare its first word). */
        char first[64];
        snprintf(first, sizeof(first), "%.*s", (int)strcspn(setting, " ,("), setting);
        const char *at = strstr(line, first);
        if (!at || at > end)
            fail_msg("docs/tls.md's row for %s does not name %s", name, first);
        snprintf(want, sizeof(want), "`%s`", name);
        const char *m = strstr(row, want);
        if (!m || m > strchr(row, '\n'))
            fail_msg("docs/metrics.md's eb_redis_tls_failures_total row lacks %s", name);
    }
    free(tls);
    free(metrics);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_reason_is_a_distinct_label_with_a_setting_and_a_hint),
        cmocka_unit_test(test_every_reason_is_documented_with_its_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
