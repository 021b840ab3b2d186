/* test_config.c -- the configuration contract (src/config.h): every valid
 * example loads, every invalid one fails with exactly its expected first
 * error line, values and defaults, ${VAR} expansion, secrets, limits, and
 * that docs/config.md and config/config.schema.json match the key table.
 *
 * Regenerate the two generated files: EB_UPDATE_DOCS=1 build/tests/unit/test_config
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/config_schema.h"
#include "core/error.h"
#include "core/notify.h"
#include "core/router.h"
#include "kafka/kafka_props.h"
#include "kafka/kafka_sink.h"
#include "plugin/plugin_host.h"
#include "redis/redis_conn.h"

#define EXPIRED (UINT64_C(1) << EB_EVENT_EXPIRED_ID)

static char errbuf[16384];

/* What the daemon checks with librdkafka (kafka_props.h), so the example
 * files are held to the same rules as `expiry-bridge check`. */
static struct eb_config_checks daemon_checks = {
    .client_props = eb_kafka_props_check,
    .plugins = eb_plugin_loader_check_config, /* opaque: a loader, made in main() */
};

/* The repository root, from this file's path (CMake compiles it by its
 * absolute path). */
static const char *src_dir(void) {
    static char dir[4096];
    const char *suffix = "/tests/unit/test_config.c";
    size_t n = strlen(__FILE__), s = strlen(suffix);
    if (!dir[0]) {
        assert_true(n > s && strcmp(__FILE__ + n - s, suffix) == 0);
        snprintf(dir, sizeof(dir), "%.*s", (int)(n - s), __FILE__);
    }
    return dir;
}

static struct eb_config *load_ok(const char *yaml) {
    struct eb_config *cfg = NULL;
    int rc = eb_config_load_string(yaml, strlen(yaml), "t.yaml", NULL, &cfg, errbuf, sizeof(errbuf));
    if (rc != 0)
        fail_msg("expected the config to load, got:\n%s", errbuf);
    assert_non_null(cfg);
    return cfg;
}

/* Load yaml expecting failure; returns the error text (static). */
static const char *load_err(const char *yaml) {
    struct eb_config *cfg = (struct eb_config *)0x1;
    int rc = eb_config_load_string(yaml, strlen(yaml), "t.yaml", NULL, &cfg, errbuf, sizeof(errbuf));
    if (rc == 0) {
        eb_config_free(cfg);
        fail_msg("expected an error for:\n%s", yaml);
    }
    assert_int_equal(rc, EB_ECONFIG);
    assert_null(cfg);
    return errbuf;
}

static void assert_contains(const char *hay, const char *needle) {
    if (!strstr(hay, needle))
        fail_msg("'%s'\ndoes not contain\n'%s'", hay, needle);
}

/* First line of s into out. */
static void first_line(const char *s, char *out, size_t size) {
    size_t n = strcspn(s, "\n");
    snprintf(out, size, "%.*s", (int)n, s);
}

#define HEAD               "redis:\n  url: redis://localhost\nkafka:\n  brokers: localhost:9092\n"
#define ROUTE(name, match) "  - name: " name "\n    match: \"" match "\"\n    topic: t." name "\n"

/* Sorted *.yaml names of dir (at most 128). Returns the count. */
static size_t list_yaml(const char *dir, char names[][256], size_t max) {
    DIR *d = opendir(dir);
    size_t n = 0;
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".yaml") == 0)
            snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(d);
    qsort(names, n, 256, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* ---- data sets -------------------------------------------------------- */

static void test_config_valid_examples_load(void **state) {
    static char names[128][256];
    const char *dirs[] = {"tests/data/configs/valid", "config"};
    size_t total = 0;
    for (size_t d = 0; d < 2; d++) {
        char dir[4200];
        snprintf(dir, sizeof(dir), "%s/%s", src_dir(), dirs[d]);
        size_t n = list_yaml(dir, names, 128);
        for (size_t i = 0; i < n; i++) {
            char path[4500];
            struct eb_config *cfg = NULL;
            snprintf(path, sizeof(path), "%s/%.255s", dir, names[i]); /* names are char[256] */
            int rc = eb_config_load(path, &daemon_checks, &cfg, errbuf, sizeof(errbuf));
            if (rc != 0)
                fail_msg("%s should load:\n%s", path, errbuf);
            assert_non_null(cfg->router);
            assert_int_equal(eb_router_rule_count(cfg->router), cfg->nroutes);
            eb_config_free(cfg);
            total++;
        }
    }
    assert_true(total >= 8);
}

static void test_config_invalid_examples_give_expected_first_error(void **state) {
    static char names[128][256];
    char dir[4200], cwd[4096];
    snprintf(dir, sizeof(dir), "%s/tests/data/configs/invalid", src_dir());
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    unsetenv("EB_TEST_SURELY_UNSET_PASSWORD");
    size_t n = list_yaml(dir, names, 128);
    assert_true(n >= 40);
    /* Load by base name, so messages match the .expected files anywhere. */
    assert_int_equal(chdir(dir), 0);
    for (size_t i = 0; i < n; i++) {
        char expfile[300], expected[2048] = "", got[2048];
        struct eb_config *cfg = NULL;
        snprintf(expfile, sizeof(expfile), "%.*s.expected", (int)(strlen(names[i]) - 5), names[i]);
        FILE *f = fopen(expfile, "r");
        if (!f)
            fail_msg("%s has no %s", names[i], expfile);
        if (!fgets(expected, sizeof(expected), f))
            expected[0] = '\0';
        fclose(f);
        expected[strcspn(expected, "\n")] = '\0';
        int rc = eb_config_load(names[i], &daemon_checks, &cfg, errbuf, sizeof(errbuf));
        if (rc == 0) {
            eb_config_free(cfg);
            fail_msg("%s loaded; expected: %s", names[i], expected);
        }
        first_line(errbuf, got, sizeof(got));
        if (strcmp(got, expected) != 0)
            fail_msg("%s:\n  got      %s\n  expected %s", names[i], got, expected);
    }
    assert_int_equal(chdir(cwd), 0);
}

/* ---- values and defaults ---------------------------------------------- */

static void test_config_minimal_gets_every_default(void **state) {
    struct eb_config *cfg = load_ok(HEAD "routes:\n" ROUTE("orders", "order:{id}"));
    assert_string_equal(cfg->path, "t.yaml");
    assert_string_equal(cfg->redis.url, "redis://localhost");
    assert_string_equal(cfg->redis.host, "localhost");
    assert_int_equal(cfg->redis.port, 6379);
    assert_null(cfg->redis.username);
    assert_null(cfg->redis.password);
    assert_true(cfg->redis.all_databases);
    assert_int_equal(cfg->redis.ndatabases, 0);
    assert_true(cfg->redis.configure_notifications);
    assert_string_equal(cfg->redis.source, "redis://localhost:6379");
    assert_int_equal(cfg->redis.connect_timeout_ms, 5000);
    assert_int_equal(cfg->redis.heartbeat_interval_ms, 1000);
    assert_int_equal(cfg->redis.heartbeat_timeout_ms, 5000);
    assert_int_equal(cfg->redis.reconnect_min_ms, 100);
    assert_int_equal(cfg->redis.reconnect_max_ms, 10000);
    assert_string_equal(cfg->kafka.brokers, "localhost:9092");
    assert_int_equal(cfg->kafka.nclient, 0);
    assert_int_equal(cfg->kafka.queue_max_events, 100000);
    assert_int_equal(cfg->kafka.queue_max_bytes, 256u << 20);
    assert_int_equal(cfg->kafka.drain_timeout_ms, 20000);
    assert_int_equal(cfg->nroutes, 1);
    const struct eb_config_route *r = &cfg->routes[0];
    assert_string_equal(r->name, "orders");
    assert_string_equal(r->match, "order:{id}");
    assert_int_equal(r->events, EXPIRED);
    assert_string_equal(r->topic, "t.orders");
    assert_null(r->key);
    assert_int_equal(r->format, EB_FORMAT_CLOUDEVENTS);
    assert_int_equal(r->nheaders, 0);
    assert_int_equal(r->ledger, EB_LEDGER_OFF);
    assert_null(r->payload);
    assert_int_equal(r->pos.line, 6);
    assert_int_equal(r->pos.col, 5);
    assert_true(cfg->unrouted_drop);
    assert_null(cfg->unrouted_topic);
    assert_true(cfg->http_listen == NULL || cfg->http_listen[0] == '\0');
    assert_int_equal(cfg->log_level, EB_LOG_INFO);
    assert_int_equal(cfg->stats_interval_ms, 60000);
    assert_int_equal(cfg->events, EXPIRED);
    assert_int_equal(cfg->route_events, EXPIRED);
    assert_int_equal(cfg->ledger_events, 0);
    assert_string_equal(cfg->ledger.key_prefix, "expiry-bridge:ledger:");
    assert_int_equal(cfg->ledger.sweep_interval_ms, 1000);
    assert_int_equal(cfg->ledger.sweep_grace_ms, 250);
    assert_int_equal(cfg->ledger.sweep_batch, 500);
    assert_int_equal(cfg->ledger.claim_ttl_ms, 10000);
    assert_int_equal(cfg->ledger.remember_delivered_ms, 30000);
    eb_config_free(cfg);
}

static void test_config_full_example_values(void **state) {
    char path[4200];
    struct eb_config *cfg = NULL;
    unsetenv("EB_TEST_REDIS_PASSWORD");
    snprintf(path, sizeof(path), "%s/tests/data/configs/valid/full.yaml", src_dir());
    assert_int_equal(eb_config_load(path, NULL, &cfg, errbuf, sizeof(errbuf)), 0);
    assert_string_equal(cfg->redis.username, "bridge"); /* key beats URL user */
    assert_string_equal(cfg->redis.password, "s3cret-from-default");
    assert_int_equal(cfg->redis.port, 6380);
    assert_false(cfg->redis.all_databases);
    assert_int_equal(cfg->redis.ndatabases, 3);
    assert_int_equal(cfg->redis.databases[2], 15);
    assert_false(cfg->redis.configure_notifications);
    assert_string_equal(cfg->redis.source, "redis://cache-0.prod:6380");
    assert_int_equal(cfg->redis.heartbeat_interval_ms, 500);
    assert_int_equal(cfg->redis.reconnect_max_ms, 60000);
    assert_int_equal(cfg->kafka.nclient, 3);
    assert_string_equal(cfg->kafka.client[1].key, "linger.ms");
    assert_string_equal(cfg->kafka.client[1].value, "10");
    assert_int_equal(cfg->kafka.client[1].pos.line, 16);
    assert_int_equal(cfg->kafka.queue_max_events, 5000);
    assert_int_equal(cfg->kafka.queue_max_bytes, 64u << 20);
    assert_int_equal(cfg->kafka.drain_timeout_ms, 15000);
    const struct eb_config_route *r = &cfg->routes[0];
    assert_int_equal(r->events, EXPIRED | (UINT64_C(1) << eb_notify_event_id("evicted", 7)));
    assert_string_equal(r->key, "{order_id}");
    assert_int_equal(r->format, EB_FORMAT_CLOUDEVENTS_BINARY);
    assert_int_equal(r->nheaders, 2);
    assert_string_equal(r->headers[1].key, "x-priority");
    assert_string_equal(r->headers[1].value, "1");
    assert_int_equal(r->ledger, EB_LEDGER_OBSERVED);
    assert_string_equal(r->payload, "{key}:payload");
    assert_int_equal(cfg->routes[1].format, EB_FORMAT_JSON);
    assert_false(cfg->unrouted_drop);
    assert_string_equal(cfg->unrouted_topic, "redis.unrouted");
    assert_int_equal(cfg->unrouted_format, EB_FORMAT_JSON);
    assert_string_equal(cfg->http_listen, "[::]:9464");
    assert_int_equal(cfg->log_level, EB_LOG_DEBUG);
    assert_int_equal(cfg->stats_interval_ms, 0);
    assert_string_equal(cfg->ledger.key_prefix, "shop:timers:");
    assert_int_equal(cfg->ledger.sweep_interval_ms, 2000);
    assert_int_equal(cfg->ledger.sweep_grace_ms, 500);
    assert_int_equal(cfg->ledger.sweep_batch, 200);
    assert_int_equal(cfg->ledger.claim_ttl_ms, 20000);
    assert_int_equal(cfg->ledger.remember_delivered_ms, 60000);
    eb_config_free(cfg);
}

static void test_config_url_user_and_password_apply_without_keys(void **state) {
    struct eb_config *cfg = load_ok("redis:\n  url: redis://app:p%40ss%3Aword@h:7000\nkafka:\n"
                                    "  brokers: k:9092\nroutes:\n" ROUTE("a", "a:*"));
    assert_string_equal(cfg->redis.username, "app");
    assert_string_equal(cfg->redis.password, "p@ss:word");
    assert_string_equal(cfg->redis.host, "h");
    assert_int_equal(cfg->redis.port, 7000);
    eb_config_free(cfg);
}

static void test_config_password_key_overrides_url_password(void **state) {
    struct eb_config *cfg = load_ok("redis:\n  password: other\n  url: redis://:urlpass@h\n"
                                    "kafka:\n  brokers: k:9092\nroutes:\n" ROUTE("a", "a:*"));
    assert_string_equal(cfg->redis.password, "other");
    assert_null(cfg->redis.username);
    eb_config_free(cfg);
}

static void test_config_url_database_means_only_that_database(void **state) {
    struct eb_config *cfg = load_ok(
        "redis:\n  url: redis://h/7\nkafka:\n  brokers: k:9092\nroutes:\n" ROUTE("a", "a:*"));
    assert_false(cfg->redis.all_databases);
    assert_int_equal(cfg->redis.ndatabases, 1);
    assert_int_equal(cfg->redis.databases[0], 7);
    eb_config_free(cfg);
}

static void test_config_source_default_brackets_ipv6_host(void **state) {
    struct eb_config *cfg =
        load_ok("redis:\n  url: redis://[::1]:6390\nkafka:\n  brokers: k:9092\nroutes:\n" ROUTE(
            "a", "a:*"));
    assert_string_equal(cfg->redis.host, "::1");
    assert_string_equal(cfg->redis.source, "redis://[::1]:6390");
    eb_config_free(cfg);
}

static void test_config_router_is_compiled_with_route_opaques(void **state) {
    struct eb_config *cfg = load_ok(HEAD "routes:\n" ROUTE("orders", "order:{id}")
                                        ROUTE("confirm", "order:confirm:{id}"));
    struct eb_match m;
    assert_true(eb_router_match(cfg->router, "order:confirm:7", 15, EB_EVENT_EXPIRED_ID, &m));
    assert_ptr_equal(m.opaque, &cfg->routes[1]);
    assert_true(eb_router_match(cfg->router, "order:7", 7, EB_EVENT_EXPIRED_ID, &m));
    assert_ptr_equal(m.opaque, &cfg->routes[0]);
    eb_config_free(cfg);
}

static void test_config_events_are_the_union_of_route_events(void **state) {
    struct eb_config *cfg = load_ok(HEAD "routes:\n" ROUTE("a", "a:*")
                                        ROUTE("b", "b:*") "    events: [evicted, del]\n");
    uint64_t want = EXPIRED | (UINT64_C(1) << eb_notify_event_id("evicted", 7)) |
                    (UINT64_C(1) << eb_notify_event_id("del", 3));
    assert_int_equal(cfg->events, want);
    eb_config_free(cfg);
}

static uint64_t event_bit(const char *name) {
    return UINT64_C(1) << eb_notify_event_id(name, strlen(name));
}

static void test_config_observed_routes_subscribe_expire_del_persist_for_the_ledger(void **state) {
    struct eb_config *cfg = load_ok(HEAD "routes:\n" ROUTE(
        "a", "a:*") "    ledger: observed\n" ROUTE("b", "b:*") "    events: [expired, del]\n");
    uint64_t bookkeeping = event_bit("expire") | event_bit("del") | event_bit("persist");
    assert_int_equal(cfg->route_events, EXPIRED | event_bit("del"));
    assert_int_equal(cfg->ledger_events, bookkeeping);
    assert_int_equal(cfg->events, EXPIRED | bookkeeping);
    eb_config_free(cfg);
}

static void test_config_armed_routes_subscribe_nothing_extra(void **state) {
    struct eb_config *cfg =
        load_ok(HEAD "routes:\n" ROUTE("a", "a:*") "    ledger: armed\n"
                                                   "    payload: \"{key}:payload\"\n");
    assert_int_equal(cfg->ledger_events, 0);
    assert_int_equal(cfg->events, EXPIRED);
    assert_int_equal(cfg->routes[0].ledger, EB_LEDGER_ARMED);
    eb_config_free(cfg);
}

static void test_config_ledger_section_is_checked_with_positions(void **state) {
    const char *e =
        load_err(HEAD "routes:\n" ROUTE("a", "a:*") "ledger:\n"
                                                    "  sweep_interval: 1s\n  sweep_grace: 2s\n");
    assert_contains(e, "t.yaml:11:16: invalid ledger.sweep_grace: 2000 ms is not less than "
                       "ledger.sweep_interval (1000 ms)");
    e = load_err(HEAD "routes:\n" ROUTE("a", "a:*") "ledger:\n  claim_ttl: 999ms\n");
    assert_contains(e, "t.yaml:10:14: invalid ledger.claim_ttl: 999 ms is less than 1000 ms");
    e = load_err(HEAD "routes:\n" ROUTE("a", "a:*") "ledger:\n  remember_delivered: 0s\n");
    assert_contains(e, "t.yaml:10:23: invalid ledger.remember_delivered '0s': zero is not allowed");
    e = load_err(HEAD "routes:\n" ROUTE("a", "a:*") "ledger:\n  sweep_batch: 0\n");
    assert_contains(e, "t.yaml:10:16: invalid ledger.sweep_batch");
    e = load_err(HEAD "routes:\n" ROUTE("a", "a:*") "ledger:\n  sweep_batch: 10001\n");
    assert_contains(e, "t.yaml:10:16: invalid ledger.sweep_batch: 10001 is more than 10000");
}

static void test_config_ledger_key_prefix_may_be_empty_or_tagged(void **state) {
    struct eb_config *cfg =
        load_ok(HEAD "routes:\n" ROUTE("a", "a:*") "ledger:\n  key_prefix: \"{shop}:\"\n");
    assert_string_equal(cfg->ledger.key_prefix, "{shop}:");
    eb_config_free(cfg);
    cfg = load_ok(HEAD "routes:\n" ROUTE("a", "a:*") "ledger:\n  key_prefix: \"\"\n");
    assert_true(cfg->ledger.key_prefix == NULL || cfg->ledger.key_prefix[0] == '\0');
    eb_config_free(cfg);
}

static void test_config_ledgered_route_must_take_expired(void **state) {
    const char *e = load_err(HEAD "routes:\n" ROUTE("a", "a:*") "    events: [evicted]\n"
                                                                "    ledger: armed\n");
    assert_contains(e, "t.yaml:10:13: invalid routes[0].ledger: a ledgered route delivers "
                       "expiries, but its events do not include expired");
}

static void test_config_unrouted_topic_alone_is_enough(void **state) {
    struct eb_config *cfg = load_ok(HEAD "unrouted: { topic: all.expiries }\n");
    assert_int_equal(cfg->nroutes, 0);
    assert_false(cfg->unrouted_drop);
    assert_string_equal(cfg->unrouted_topic, "all.expiries");
    assert_int_equal(cfg->unrouted_format, EB_FORMAT_CLOUDEVENTS);
    assert_int_equal(cfg->events, EXPIRED);
    eb_config_free(cfg);
}

static void test_config_durations_and_sizes_take_every_unit(void **state) {
    int ms;
    size_t sz;
    const char *why;
    assert_true(eb_config_schema_parse_duration("250ms", &ms, &why) && ms == 250);
    assert_true(eb_config_schema_parse_duration("3s", &ms, &why) && ms == 3000);
    assert_true(eb_config_schema_parse_duration("2m", &ms, &why) && ms == 120000);
    assert_true(eb_config_schema_parse_duration("1h", &ms, &why) && ms == 3600000);
    assert_false(eb_config_schema_parse_duration("5", &ms, &why));
    assert_string_equal(why, "a number alone has no unit");
    assert_false(eb_config_schema_parse_duration("5sec", &ms, &why));
    assert_false(eb_config_schema_parse_duration("-5s", &ms, &why));
    assert_false(eb_config_schema_parse_duration("1000h", &ms, &why)); /* > INT_MAX ms */
    assert_true(eb_config_schema_parse_size("512B", &sz, &why) && sz == 512);
    assert_true(eb_config_schema_parse_size("64KiB", &sz, &why) && sz == 65536);
    assert_true(eb_config_schema_parse_size("3MiB", &sz, &why) && sz == 3u << 20);
    assert_true(eb_config_schema_parse_size("1GiB", &sz, &why) && sz == 1u << 30);
    assert_true(eb_config_schema_parse_size("2KB", &sz, &why) && sz == 2000);
    assert_true(eb_config_schema_parse_size("5MB", &sz, &why) && sz == 5000000);
    assert_true(eb_config_schema_parse_size("1GB", &sz, &why) && sz == 1000000000);
    assert_false(eb_config_schema_parse_size("1024", &sz, &why));
    assert_false(eb_config_schema_parse_size("99999999999999999999GiB", &sz, &why));
}

/* ---- environment ------------------------------------------------------ */

static void test_config_env_variables_expand(void **state) {
    setenv("EB_TEST_HOST", "cache-9", 1);
    setenv("EB_TEST_TOPIC", "shop.orders", 1);
    struct eb_config *cfg =
        load_ok("redis:\n  url: redis://${EB_TEST_HOST}:6400\nkafka:\n  brokers: k:9092\n"
                "routes:\n  - name: a\n    match: \"a:*\"\n    topic: ${EB_TEST_TOPIC}\n");
    assert_string_equal(cfg->redis.host, "cache-9");
    assert_string_equal(cfg->routes[0].topic, "shop.orders");
    eb_config_free(cfg);
    unsetenv("EB_TEST_HOST");
    unsetenv("EB_TEST_TOPIC");
}

static void test_config_env_default_applies_when_unset_or_empty(void **state) {
    unsetenv("EB_TEST_UNSET");
    setenv("EB_TEST_EMPTY", "", 1);
    struct eb_config *cfg =
        load_ok("redis:\n  url: redis://${EB_TEST_UNSET:-h1}:${EB_TEST_EMPTY:-6500}\nkafka:\n"
                "  brokers: k:9092\nroutes:\n" ROUTE("a", "a:*"));
    assert_string_equal(cfg->redis.host, "h1");
    assert_int_equal(cfg->redis.port, 6500);
    eb_config_free(cfg);
    unsetenv("EB_TEST_EMPTY");
}

static void test_config_env_dollar_dollar_is_a_literal_dollar(void **state) {
    struct eb_config *cfg =
        load_ok(HEAD "routes:\n" ROUTE("a", "a:*") "    headers: { x-cost: \"$$5 and $HOME\" }\n");
    assert_string_equal(cfg->routes[0].headers[0].value, "$5 and $HOME");
    eb_config_free(cfg);
}

static void test_config_env_missing_variable_is_an_error_naming_it(void **state) {
    unsetenv("EB_TEST_MISSING");
    const char *err = load_err(HEAD "routes:\n  - name: a\n    match: \"a:*\"\n"
                                    "    topic: pre.${EB_TEST_MISSING}\n");
    char line[1024];
    first_line(err, line, sizeof(line));
    assert_string_equal(line, "t.yaml:8:16: invalid routes[0].topic: environment variable "
                              "EB_TEST_MISSING is not set; expected it set, or a default such as "
                              "${EB_TEST_MISSING:-value}");
}

static void test_config_env_empty_expansion_means_not_given(void **state) {
    unsetenv("EB_TEST_NO_PASSWORD");
    struct eb_config *cfg = load_ok("redis:\n  url: redis://h\n  password: ${EB_TEST_NO_PASSWORD:-}"
                                    "\nkafka:\n  brokers: k:9092\nroutes:\n" ROUTE("a", "a:*"));
    assert_null(cfg->redis.password);
    eb_config_free(cfg);
}

static void test_config_secrets_never_appear_in_errors(void **state) {
    const char *secret = "hunter2-very-secret";
    setenv("EB_TEST_REDIS_PASSWORD", secret, 1);
    setenv("EB_TEST_SASL_PASSWORD", "sasl-secret-value", 1);
    const char *err = load_err(
        "redis:\n"
        "  url: redis://app:${EB_TEST_REDIS_PASSWORD}@h:99999\n" /* bad port */
        "  password: ${EB_TEST_REDIS_PASSWORD}\n"
        "  connect_timeout: ${EB_TEST_REDIS_PASSWORD}\n" /* bad duration */
        "kafka:\n  brokers: k:9092\n"
        "  client: { sasl.password: \"${EB_TEST_SASL_PASSWORD}\", linger.ms: x }\n"
        "routes:\n  - name: a\n    match: \"a:*\"\n    topic: ${EB_TEST_REDIS_PASSWORD}!\n");
    assert_null(strstr(err, secret));
    assert_null(strstr(err, "sasl-secret-value"));
    assert_contains(err, "invalid redis.url: the port");
    assert_contains(err, "invalid redis.connect_timeout '${EB_TEST_REDIS_PASSWORD}'");
    unsetenv("EB_TEST_REDIS_PASSWORD");
    unsetenv("EB_TEST_SASL_PASSWORD");
}

static void test_config_url_password_is_never_echoed(void **state) {
    const char *err = load_err("redis:\n  url: redis://u:plain-pw-123@h:0\nkafka:\n"
                               "  brokers: k:9092\nroutes:\n" ROUTE("a", "a:*"));
    assert_null(strstr(err, "plain-pw-123"));
    assert_contains(err, "t.yaml:2:33: invalid redis.url: the port of 'h:0' is not a number");
}

/* ---- errors ----------------------------------------------------------- */

static void test_config_unknown_key_suggests_nearest(void **state) {
    const char *err = load_err("redis:\n  url: redis://h\n  pasword: x\nkafka:\n  brokers: k\n"
                               "routes:\n" ROUTE("a", "a:*"));
    assert_contains(err, "t.yaml:3:3: unknown key 'pasword' in redis; expected one of url, ");
    assert_contains(err, "; did you mean 'password'?");
}

static void test_config_suggestion_counts_a_transposition_as_one_edit(void **state) {
    assert_int_equal(eb_config_schema_edit_distance("tpoic", "topic"), 1);
    assert_int_equal(eb_config_schema_edit_distance("", "abc"), 3);
    const char *names[] = {"match", "topic", "name"};
    assert_string_equal(eb_config_schema_nearest("tpoic", names, 3), "topic");
    assert_null(eb_config_schema_nearest("zzzzzzz", names, 3));
}

static void test_config_duplicate_keys_are_rejected(void **state) {
    const char *err = load_err("redis:\n  url: redis://h\nkafka:\n  brokers: k\n  brokers: j\n"
                               "routes:\n" ROUTE("a", "a:*"));
    assert_contains(err, "t.yaml:5:3: duplicate key 'brokers' in kafka (first at line 4)");
}

static void test_config_duplicate_keys_in_passthrough_maps_are_rejected(void **state) {
    const char *err =
        load_err(HEAD "routes:\n" ROUTE("a", "a:*") "    headers: { x-a: 1, x-a: 2 }\n");
    assert_contains(err, "duplicate key 'x-a' in routes[0].headers (first at line 9)");
}

static void test_config_duplicate_route_names_are_rejected_at_the_second(void **state) {
    const char *err = load_err(HEAD "routes:\n" ROUTE("same", "a:*") ROUTE("same", "b:*"));
    assert_contains(err, "t.yaml:9:11: duplicate route name 'same' (first at line 6)");
}

static void test_config_ambiguous_prefixes_are_rejected_at_the_later_route(void **state) {
    const char *err = load_err(HEAD "routes:\n" ROUTE("one", "s:{id}") ROUTE("two", "s:*"));
    char line[1024];
    first_line(err, line, sizeof(line));
    assert_string_equal(line, "t.yaml:9:5: routes 'one' and 'two' have the same literal prefix "
                              "\"s:\" and both take event 'expired'; make one prefix longer or "
                              "split their events");
}

static void test_config_invalid_topic_names_are_rejected(void **state) {
    const char *bad[] = {".", "..", "a b", "a/b", "t\\u00e9", "x:y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 HEAD "routes:\n  - name: a\n    match: \"a:*\"\n    topic: \"%s\"\n", bad[i]);
        assert_contains(load_err(yaml), "invalid routes[0].topic");
    }
    char reason[128];
    assert_true(eb_config_schema_topic_valid("shop.order_payment-timeout.v1", reason, sizeof(reason)));
}

static void test_config_unknown_event_suggests_nearest(void **state) {
    const char *err =
        load_err(HEAD "routes:\n" ROUTE("a", "a:*") "    events: [expired, evictd]\n");
    assert_contains(err, "t.yaml:9:23: unknown event 'evictd' in routes[0].events");
    assert_contains(err, "did you mean 'evicted'?");
}

static void test_config_malformed_yaml_reports_libyaml_problem_and_position(void **state) {
    const char *err = load_err("redis:\n  url: \"redis://h\n");
    assert_contains(err, "t.yaml:");
    assert_contains(err, "malformed YAML: found unexpected end of stream");
}

static void test_config_wrong_types_say_what_was_expected(void **state) {
    assert_contains(load_err("redis: x\nkafka: {brokers: k}\nunrouted: {topic: t}\n"),
                    "t.yaml:1:8: invalid redis: found a scalar; expected a mapping");
    assert_contains(load_err(HEAD "routes: x\n"),
                    "t.yaml:5:9: invalid routes: found a scalar; expected a list of route");
    assert_contains(load_err(HEAD "routes:\n" ROUTE("a", "a:*") "    events: expired\n"),
                    "invalid routes[0].events: found a scalar; expected a list of Redis keyevent");
    assert_contains(load_err(HEAD "routes:\n" ROUTE("a", "a:*") "    headers: [a]\n"),
                    "invalid routes[0].headers: found a list; expected a mapping");
}

static void test_config_pattern_error_column_points_inside_the_scalar(void **state) {
    /* plain: column of the '{' itself; quoted: one more for the quote */
    assert_contains(load_err(HEAD "routes:\n  - name: a\n    match: ab:{x}{y}\n    topic: t\n"),
                    "t.yaml:7:18: invalid routes[0].match: captures");
    assert_contains(load_err(HEAD "routes:\n  - name: a\n    match: 'ab:{x}{y}'\n    topic: t\n"),
                    "t.yaml:7:19: invalid routes[0].match: captures");
}

static void test_config_template_error_column_points_inside_the_scalar(void **state) {
    assert_contains(load_err(HEAD "routes:\n" ROUTE("a", "a:{id}") "    payload: \"x-{ib}\"\n"),
                    "t.yaml:9:17: invalid routes[0].payload: unknown variable '{ib}'");
}

static void test_config_all_errors_are_reported_one_per_line(void **state) {
    const char *err = load_err("redis:\n  url: redis://h\n  connect_timeout: 1\n"
                               "kafka:\n  brokers: k\n  drain_timeout: 2\n"
                               "routes:\n" ROUTE("a", "a:*") "log: { level: loud }\n");
    size_t lines = 1;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    assert_contains(err, "t.yaml:3:20: invalid redis.connect_timeout '1'");
    assert_contains(err, "\nt.yaml:6:18: invalid kafka.drain_timeout '2'");
    assert_contains(err, "\nt.yaml:11:15: invalid log.level 'loud'");
}

static void test_config_stops_after_20_errors(void **state) {
    char yaml[8192] = HEAD "routes:\n";
    for (int i = 0; i < 30; i++) {
        char r[128];
        snprintf(r, sizeof(r), "  - { name: r%d, match: \"r%d:*\", topic: \"bad topic\" }\n", i, i);
        strcat(yaml, r);
    }
    const char *err = load_err(yaml);
    size_t lines = 1;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 21);
    assert_contains(err, "t.yaml: stopped after 20 errors");
}

static void test_config_alias_bomb_is_rejected_quickly(void **state) {
    const char *bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
                       "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                       "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                       "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                       "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                       "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                       "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
                       "routes: [*i,*i,*i,*i,*i,*i,*i,*i,*i,*i]\n";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const char *err = load_err(bomb);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_contains(err, "once aliases are expanded");
    assert_true(secs < 1.0);
}

static void test_config_alias_to_an_enclosing_node_is_rejected(void **state) {
    assert_contains(load_err("a: &a [1, *a]\n"), "refers to a node that contains it");
}

static void test_config_deep_nesting_is_rejected(void **state) {
    char yaml[512] = "redis: ";
    for (int i = 0; i < 100; i++)
        strcat(yaml, "[");
    assert_contains(load_err(yaml), "nesting deeper than 64 levels");
}

static void test_config_huge_input_is_rejected_before_parsing(void **state) {
    size_t n = (16u << 20) + 1;
    char *big = malloc(n);
    struct eb_config *cfg = NULL;
    assert_non_null(big);
    memset(big, '#', n);
    assert_int_equal(eb_config_load_string(big, n, "big.yaml", NULL, &cfg, errbuf, sizeof(errbuf)),
                     EB_ECONFIG);
    assert_contains(errbuf, "big.yaml: the file is 16777217 bytes; expected at most");
    free(big);
}

static void test_config_missing_file_is_an_io_error(void **state) {
    struct eb_config *cfg = NULL;
    assert_int_equal(eb_config_load("/nonexistent/eb.yaml", NULL, &cfg, errbuf, sizeof(errbuf)), EB_EIO);
    assert_null(cfg);
    assert_contains(errbuf, "/nonexistent/eb.yaml: cannot open: ");
}

static void test_config_nul_byte_in_a_value_is_rejected(void **state) {
    assert_contains(
        load_err(HEAD "routes:\n  - name: a\n    match: \"a:*\"\n    topic: \"a\\0b\"\n"),
        "contains a NUL character");
}

static void test_config_too_many_headers_are_rejected(void **state) {
    char yaml[4096] = HEAD "routes:\n" ROUTE("a", "a:*") "    headers: {";
    for (int i = 0; i < 26; i++) {
        char h[32];
        snprintf(h, sizeof(h), "%sx-%d: v", i ? ", " : "", i);
        strcat(yaml, h);
    }
    strcat(yaml, "}\n");
    assert_contains(load_err(yaml), "invalid routes[0].headers: 26 entries; expected at most 25");
}

static void test_config_client_property_error_is_at_its_key(void **state) {
    const char *yaml = HEAD "  client:\n    linger.ms: 5\n    acks: 1\n"
                            "routes:\n" ROUTE("a", "a:*");
    struct eb_config *cfg = NULL;
    assert_int_equal(eb_config_load_string(yaml, strlen(yaml), "t.yaml", &daemon_checks, &cfg,
                                           errbuf, sizeof(errbuf)),
                     EB_ECONFIG);
    assert_contains(errbuf, "t.yaml:7:5: invalid kafka.client: ");
    assert_contains(errbuf, "'acks'");
}

static void test_config_without_checks_leaves_client_properties_to_the_daemon(void **state) {
    struct eb_config *cfg = load_ok(HEAD "  client:\n    acks: 1\n" "routes:\n" ROUTE("a", "a:*"));
    assert_int_equal(cfg->kafka.nclient, 1);
    eb_config_free(cfg);
}

static void test_config_error_text_fits_a_small_buffer(void **state) {
    char small[32];
    struct eb_config *cfg = NULL;
    const char *yaml = "redis: x\n";
    assert_int_equal(
        eb_config_load_string(yaml, strlen(yaml), "t.yaml", NULL, &cfg, small, sizeof(small)),
        EB_ECONFIG);
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* ---- reload ----------------------------------------------------------- */

static bool reconnect_between(const char *a, const char *b) {
    struct eb_config *x = load_ok(a), *y = load_ok(b);
    bool r = eb_config_needs_reconnect(x, y);
    eb_config_free(x);
    eb_config_free(y);
    return r;
}

static void test_config_route_changes_do_not_need_reconnect(void **state) {
    assert_false(reconnect_between(HEAD "routes:\n" ROUTE("a", "a:*"),
                                   HEAD "routes:\n" ROUTE("b", "b:{id}")
                                       ROUTE("c", "c:*") "log: { level: debug }\n"));
}

static void test_config_connection_changes_need_reconnect(void **state) {
    const char *base = HEAD "routes:\n" ROUTE("a", "a:*");
    assert_true(reconnect_between(base, "redis:\n  url: redis://other\nkafka:\n  brokers: "
                                        "localhost:9092\nroutes:\n" ROUTE("a", "a:*")));
    assert_true(
        reconnect_between(base, "redis:\n  url: redis://localhost\n  password: p\n"
                                "kafka:\n  brokers: localhost:9092\nroutes:\n" ROUTE("a", "a:*")));
    assert_true(
        reconnect_between(base, "redis:\n  url: redis://localhost\n  databases: [1]\n"
                                "kafka:\n  brokers: localhost:9092\nroutes:\n" ROUTE("a", "a:*")));
    assert_true(reconnect_between(base, "redis:\n  url: redis://localhost\nkafka:\n  brokers: "
                                        "k2:9092\nroutes:\n" ROUTE("a", "a:*")));
    assert_true(
        reconnect_between(base, HEAD "  client: { linger.ms: 7 }\nroutes:\n" ROUTE("a", "a:*")));
    /* A new event type needs new notification flags and channels. */
    assert_true(reconnect_between(base, HEAD "routes:\n" ROUTE("a", "a:*") "    events: [del]\n"));
}

/* ---- generated files -------------------------------------------------- */

/* Compare generated text with the file at rel; with EB_UPDATE_DOCS=1,
 * rewrite the file instead. */
static void check_generated(const char *rel, void (*gen)(FILE *)) {
    char path[4500], *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    gen(mem);
    fclose(mem);
    snprintf(path, sizeof(path), "%s/%s", src_dir(), rel);
    const char *update = getenv("EB_UPDATE_DOCS");
    if (update && strcmp(update, "1") == 0) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fwrite(text, 1, len, f);
        fclose(f);
        free(text);
        return;
    }
    FILE *f = fopen(path, "r");
    char *cur = calloc(1, len + 2);
    size_t got = f && cur ? fread(cur, 1, len + 1, f) : 0;
    if (f)
        fclose(f);
    bool same = got == len && memcmp(cur, text, len) == 0;
    if (!same) {
        char tmp[] = "/tmp/eb_generated_XXXXXX", cmd[9000];
        int fd = mkstemp(tmp);
        if (fd >= 0) {
            if (write(fd, text, len) != (ssize_t)len)
                fprintf(stderr, "cannot write %s\n", tmp);
            close(fd);
            snprintf(cmd, sizeof(cmd), "diff -u '%s' '%s' | head -40 >&2", path, tmp);
            if (system(cmd) == -1)
                fprintf(stderr, "cannot run diff\n");
            unlink(tmp);
        }
    }
    free(cur);
    free(text);
    if (!same)
        fail_msg("%s is stale (it is generated from src/config_schema.c); regenerate it with: "
                 "EB_UPDATE_DOCS=1 build/tests/unit/test_config",
                 rel);
}

static void test_config_docs_config_md_matches_the_schema_table(void **state) {
    check_generated("docs/config.md", eb_config_schema_markdown);
}

static void test_config_json_schema_matches_the_schema_table(void **state) {
    check_generated("config/config.schema.json", eb_config_schema_json);
}

static void test_config_every_table_row_is_documented(void **state) {
    const struct eb_config_key *stack[16];
    size_t n = 0;
    stack[n++] = eb_config_schema;
    while (n) {
        const struct eb_config_key *t = stack[--n];
        for (; t->key; t++) {
            assert_non_null(t->description);
            assert_true(strlen(t->description) > 10);
            if (t->sub)
                stack[n++] = t->sub;
        }
    }
}

/* rediss:// is refused with the hiredis build's own reason where it has no
 * TLS (0.14: none at all; 1.x without hiredis_ssl: that), naming the
 * version, and accepted where it has (the certificate files are read when
 * connecting, not by the loader). Not a data file: the outcome depends on
 * the hiredis this build links (cmake/EbHiredis.cmake). */
static void test_config_rediss_url_is_refused_naming_hiredis_only_without_tls(void **state) {
    const char *yaml = "redis:\n  url: rediss://cache.example.com:6380\n  tls:\n"
                       "    ca_file: /run/secrets/absent/ca.pem\nkafka:\n"
                       "  brokers: localhost:9092\nroutes:\n"
                       "  - { name: a, match: \"a:*\", topic: a }\n";
    struct eb_config *cfg = NULL;
    int rc = eb_config_load_string(yaml, strlen(yaml), "t.yaml", &daemon_checks, &cfg, errbuf,
                                   sizeof(errbuf));
    const char *why = eb_redis_conn_tls_unavailable();
    if (!why) {
        assert_int_equal(rc, 0);
        assert_true(cfg->redis.target.tls);
        assert_string_equal(cfg->redis.tls_ca_file, "/run/secrets/absent/ca.pem");
        eb_config_free(cfg);
        return;
    }
    assert_int_equal(rc, EB_ECONFIG);
    assert_contains(errbuf, "t.yaml:2:8: invalid redis.url: ");
    assert_contains(errbuf, why);
    assert_contains(errbuf, eb_redis_conn_version());
}

static void test_config_free_null_is_noop(void **state) {
    eb_config_free(NULL);
}

/* ---- plugins ------------------------------------------------------------ */

#define PLUGINS                                                                                    \
    "plugins:\n  - name: pii\n    path: ./mask.so\n    settings:\n      fields:\n        - email\n"      \
    "        - ${EB_TEST_F:-phone}\n      mode: redact\n"

static void test_config_plugin_settings_are_kept_as_a_tree_with_positions(void **state) {
    struct eb_config *cfg = load_ok(HEAD PLUGINS "routes:\n" ROUTE("a", "a:*") "    plugins: [pii]\n");
    assert_int_equal(cfg->nplugins, 1);
    const struct eb_config_plugin *pl = &cfg->plugins[0];
    assert_string_equal(pl->name, "pii");
    assert_string_equal(pl->path, "./mask.so");
    assert_int_equal(pl->path_pos.line, 7);
    assert_int_equal(pl->path_pos.col, 11);
    const struct eb_config_node *st = pl->settings;
    assert_int_equal(st->type, EB_NODE_MAP);
    assert_int_equal(st->nkids, 2);
    assert_string_equal(st->keys[0], "fields");
    assert_int_equal(st->kids[0]->type, EB_NODE_LIST);
    assert_string_equal(st->kids[0]->kids[1]->str, "phone"); /* ${VAR:-default} expanded */
    assert_string_equal(st->kids[0]->kids[1]->path, "plugins[0].settings.fields[1]");
    assert_int_equal(st->kids[1]->pos.line, 12);
    assert_int_equal(st->kids[1]->pos.col, 13);
    assert_int_equal(cfg->routes[0].nplugins, 1);
    assert_int_equal(cfg->routes[0].plugin_idx[0], 0);
    assert_string_equal(cfg->dir, ".");
    eb_config_free(cfg);
}

static void test_config_route_plugin_listed_twice_is_rejected(void **state) {
    const char *e = load_err(HEAD PLUGINS "routes:\n" ROUTE("a", "a:*") "    plugins: [pii, pii]\n");
    assert_contains(e, "t.yaml:17:20: invalid routes[0].plugins: plugin 'pii' is listed twice");
}

static void test_config_route_dead_letter_is_a_topic(void **state) {
    const char *e = load_err(HEAD "routes:\n" ROUTE("a", "a:*") "    dead_letter: \"a b\"\n");
    assert_contains(e, "t.yaml:9:18: invalid routes[0].dead_letter 'a b': it contains a space");
}

static void test_config_plugin_settings_must_be_a_mapping(void **state) {
    const char *e = load_err(HEAD "plugins:\n  - name: p\n    path: filter\n    settings: [1]\n"
                                  "routes:\n" ROUTE("a", "a:*"));
    assert_contains(e, "t.yaml:8:15: invalid plugins[0].settings: found a list; expected a mapping");
}

int main(void) {
    daemon_checks.redis_tls_unavailable = eb_redis_conn_tls_unavailable();
    eb_plugin_loader_t *loader = eb_plugin_loader_new(NULL, NULL, NULL);
    daemon_checks.plugins_opaque = loader;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_valid_examples_load),
        cmocka_unit_test(test_config_invalid_examples_give_expected_first_error),
        cmocka_unit_test(test_config_minimal_gets_every_default),
        cmocka_unit_test(test_config_full_example_values),
        cmocka_unit_test(test_config_url_user_and_password_apply_without_keys),
        cmocka_unit_test(test_config_password_key_overrides_url_password),
        cmocka_unit_test(test_config_url_database_means_only_that_database),
        cmocka_unit_test(test_config_source_default_brackets_ipv6_host),
        cmocka_unit_test(test_config_router_is_compiled_with_route_opaques),
        cmocka_unit_test(test_config_events_are_the_union_of_route_events),
        cmocka_unit_test(test_config_observed_routes_subscribe_expire_del_persist_for_the_ledger),
        cmocka_unit_test(test_config_armed_routes_subscribe_nothing_extra),
        cmocka_unit_test(test_config_ledger_section_is_checked_with_positions),
        cmocka_unit_test(test_config_ledger_key_prefix_may_be_empty_or_tagged),
        cmocka_unit_test(test_config_ledgered_route_must_take_expired),
        cmocka_unit_test(test_config_unrouted_topic_alone_is_enough),
        cmocka_unit_test(test_config_durations_and_sizes_take_every_unit),
        cmocka_unit_test(test_config_env_variables_expand),
        cmocka_unit_test(test_config_env_default_applies_when_unset_or_empty),
        cmocka_unit_test(test_config_env_dollar_dollar_is_a_literal_dollar),
        cmocka_unit_test(test_config_env_missing_variable_is_an_error_naming_it),
        cmocka_unit_test(test_config_env_empty_expansion_means_not_given),
        cmocka_unit_test(test_config_secrets_never_appear_in_errors),
        cmocka_unit_test(test_config_url_password_is_never_echoed),
        cmocka_unit_test(test_config_unknown_key_suggests_nearest),
        cmocka_unit_test(test_config_suggestion_counts_a_transposition_as_one_edit),
        cmocka_unit_test(test_config_duplicate_keys_are_rejected),
        cmocka_unit_test(test_config_duplicate_keys_in_passthrough_maps_are_rejected),
        cmocka_unit_test(test_config_duplicate_route_names_are_rejected_at_the_second),
        cmocka_unit_test(test_config_ambiguous_prefixes_are_rejected_at_the_later_route),
        cmocka_unit_test(test_config_invalid_topic_names_are_rejected),
        cmocka_unit_test(test_config_unknown_event_suggests_nearest),
        cmocka_unit_test(test_config_malformed_yaml_reports_libyaml_problem_and_position),
        cmocka_unit_test(test_config_wrong_types_say_what_was_expected),
        cmocka_unit_test(test_config_pattern_error_column_points_inside_the_scalar),
        cmocka_unit_test(test_config_template_error_column_points_inside_the_scalar),
        cmocka_unit_test(test_config_all_errors_are_reported_one_per_line),
        cmocka_unit_test(test_config_stops_after_20_errors),
        cmocka_unit_test(test_config_alias_bomb_is_rejected_quickly),
        cmocka_unit_test(test_config_alias_to_an_enclosing_node_is_rejected),
        cmocka_unit_test(test_config_deep_nesting_is_rejected),
        cmocka_unit_test(test_config_huge_input_is_rejected_before_parsing),
        cmocka_unit_test(test_config_missing_file_is_an_io_error),
        cmocka_unit_test(test_config_nul_byte_in_a_value_is_rejected),
        cmocka_unit_test(test_config_too_many_headers_are_rejected),
        cmocka_unit_test(test_config_client_property_error_is_at_its_key),
        cmocka_unit_test(test_config_without_checks_leaves_client_properties_to_the_daemon),
        cmocka_unit_test(test_config_error_text_fits_a_small_buffer),
        cmocka_unit_test(test_config_route_changes_do_not_need_reconnect),
        cmocka_unit_test(test_config_connection_changes_need_reconnect),
        cmocka_unit_test(test_config_docs_config_md_matches_the_schema_table),
        cmocka_unit_test(test_config_json_schema_matches_the_schema_table),
        cmocka_unit_test(test_config_every_table_row_is_documented),
        cmocka_unit_test(test_config_rediss_url_is_refused_naming_hiredis_only_without_tls),
        cmocka_unit_test(test_config_free_null_is_noop),
        cmocka_unit_test(test_config_plugin_settings_are_kept_as_a_tree_with_positions),
        cmocka_unit_test(test_config_route_plugin_listed_twice_is_rejected),
        cmocka_unit_test(test_config_route_dead_letter_is_a_topic),
        cmocka_unit_test(test_config_plugin_settings_must_be_a_mapping),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    eb_plugin_loader_destroy(loader);
    return rc;
}
