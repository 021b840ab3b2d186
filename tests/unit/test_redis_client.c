/* test_redis_client.c -- what of redis_client.h needs no server: one set of
 * connection defaults, the same as the configuration's, and the arguments
 * a client refuses. Its behaviour against real servers is
 * tests/integration/test_redis_client.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include "config/config.h"
#include "core/error.h"
#include "redis/redis_client.h"
#include "redis/redis_source.h"

static void on_state(eb_redis_client_t *c, enum eb_redis_client_state st,
                     const struct eb_redis_client_down *d, void *opaque) {
}

static const struct eb_redis_client_handlers handlers = {.on_state = on_state};

/* A client built by hand (0 = default) behaves like the daemon's: the
 * config's defaults are the client's and the source's. */
static void test_client_defaults_are_the_config_defaults(void **state) {
    static const char yaml[] = "redis:\n  url: redis://127.0.0.1:6379\n"
                               "kafka:\n  brokers: 127.0.0.1:9092\n"
                               "routes:\n  - name: r\n    match: \"k:{id}\"\n    topic: t\n";
    struct eb_config *cfg = NULL;
    char err[1024];
    assert_int_equal(eb_config_load_string(yaml, strlen(yaml), "t.yaml", NULL, &cfg, err,
                                           sizeof(err)),
                     0);
    assert_int_equal(cfg->redis.connect_timeout_ms, EB_REDIS_DEFAULT_CONNECT_TIMEOUT_MS);
    assert_int_equal(cfg->redis.heartbeat_timeout_ms, EB_REDIS_DEFAULT_REPLY_TIMEOUT_MS);
    assert_int_equal(cfg->redis.heartbeat_interval_ms, EB_REDIS_DEFAULT_HEARTBEAT_INTERVAL_MS);
    assert_int_equal(cfg->redis.reconnect_min_ms, EB_REDIS_DEFAULT_RECONNECT_MIN_MS);
    assert_int_equal(cfg->redis.reconnect_max_ms, EB_REDIS_DEFAULT_RECONNECT_MAX_MS);
    eb_config_free(cfg);
}

static void test_client_refuses_bad_arguments_with_a_reason(void **state) {
    struct event_base *base = event_base_new();
    char err[256];
    struct eb_redis_client_conf conf = {.host = "127.0.0.1", .port = 6379, .handlers = &handlers};
    eb_redis_client_t *c = eb_redis_client_new(base, &conf, err, sizeof(err));
    assert_non_null(c);
    eb_redis_client_destroy(c);
    conf.port = 70000;
    assert_null(eb_redis_client_new(base, &conf, err, sizeof(err)));
    assert_non_null(strstr(err, "70000"));
    conf.port = 6379;
    conf.host = "";
    assert_null(eb_redis_client_new(base, &conf, err, sizeof(err)));
    conf.host = "127.0.0.1";
    conf.kind = EB_REDIS_CLIENT_SUBSCRIBER; /* without on_message */
    assert_null(eb_redis_client_new(base, &conf, err, sizeof(err)));
    conf.kind = EB_REDIS_CLIENT_COMMANDS;
    conf.reply_timeout_ms = -1;
    assert_null(eb_redis_client_new(base, &conf, err, sizeof(err)));
    assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0);
    event_base_free(base);
}

static void test_client_state_names(void **state) {
    assert_string_equal(eb_redis_client_state_name(EB_REDIS_CLIENT_IDLE), "idle");
    assert_string_equal(eb_redis_client_state_name(EB_REDIS_CLIENT_CONNECTING), "connecting");
    assert_string_equal(eb_redis_client_state_name(EB_REDIS_CLIENT_READY), "ready");
    assert_string_equal(eb_redis_client_state_name(EB_REDIS_CLIENT_WAITING), "waiting");
    assert_string_equal(eb_redis_client_state_name(EB_REDIS_CLIENT_STOPPED), "stopped");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_defaults_are_the_config_defaults),
        cmocka_unit_test(test_client_refuses_bad_arguments_with_a_reason),
        cmocka_unit_test(test_client_state_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
