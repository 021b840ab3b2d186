/* test_redis_client.c -- one Redis connection that keeps itself connected
 * (redis_client.h), against real redis-servers on loopback, driven by a
 * real libevent loop: the handshake (AUTH with and without a password,
 * CLIENT SETNAME, ROLE), name lookup, databases, liveness, the causes it
 * reports and the one line it logs per failed attempt, stop and destroy.
 *
 * Every test starts its own redis-server(s) on free loopback ports and the
 * teardown stops them by PID, whatever happened. Nothing sleeps to
 * synchronise: the loop runs until a condition holds or a deadline passes.
 * Every test ends by destroying the client and checking that nothing is
 * left registered on the event base.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/log.h"
#include "fixture.h"
#include "redis/redis_client.h"
#include "loop_fixture.h"
#include "redis_client_fixture.h"
#include "redis_fixture.h"

#define WAIT_MS 10000

struct t {
    struct eb_fix_loop loop; /* base, dir, log */
    struct eb_fix_redis redis, replica;
    eb_redis_client_t *c;
    struct eb_redis_client_conf conf;

    struct eb_fix_client_seen seen; /* what the client reported */
    bool stop_when_ready;
};

/* ------------------------------------------------------------------------
 * Callbacks and loop helpers
 * --------------------------------------------------------------------- */

static void on_state(eb_redis_client_t *c, enum eb_redis_client_state st,
                     const struct eb_redis_client_down *d, void *opaque) {
    struct t *t = opaque;
    eb_fix_client_saw_state(&t->seen, c, st, d);
    if (st == EB_REDIS_CLIENT_READY && t->stop_when_ready)
        eb_redis_client_stop(c);
}

static const struct eb_redis_client_handlers handlers = {.on_state = on_state};

/* Run the loop until cond(t, arg) holds or timeout_ms passes (loop_fixture.h). */
static bool run_until(struct t *t, eb_fix_cond_fn cond, const void *arg, int timeout_ms) {
    return eb_fix_loop_until_arg(t->loop.base, cond, t, arg, timeout_ms);
}

static bool is_state(void *ctx, const void *arg) {
    struct t *t = ctx;
    return eb_redis_client_state(t->c) == *(const enum eb_redis_client_state *)arg;
}

static bool seen_state(void *ctx, const void *arg) {
    struct t *t = ctx;
    return t->seen.states[*(const enum eb_redis_client_state *)arg] > 0;
}

static bool replies_at_least(void *ctx, const void *arg) {
    struct t *t = ctx;
    return t->seen.replies >= *(const int *)arg;
}

static bool base_idle(void *ctx, const void *arg) {
    struct t *t = ctx;
    return event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ADDED) == 0;
}

static const enum eb_redis_client_state READY = EB_REDIS_CLIENT_READY;
static const enum eb_redis_client_state WAITING = EB_REDIS_CLIENT_WAITING;
static const enum eb_redis_client_state STOPPED = EB_REDIS_CLIENT_STOPPED;

static void wait_ready(struct t *t) {
    assert_true(run_until(t, is_state, &READY, WAIT_MS));
}

/* Send a command and wait for its reply (into t->seen.reply). */
static void command(struct t *t, int db, int argc, const char **argv) {
    int want = t->seen.replies + 1;
    assert_int_equal(
        eb_redis_client_command(t->c, db, eb_fix_client_on_reply, &t->seen, argc, argv, NULL), 0);
    assert_true(run_until(t, replies_at_least, &want, WAIT_MS));
}

static bool log_line(const struct t *t, const char *needle, char *out, size_t out_size) {
    return eb_fix_log_line(t->loop.log_path, needle, out, out_size);
}

static int log_count(const struct t *t, const char *needle) {
    return eb_fix_log_count(t->loop.log_path, needle);
}

/* ------------------------------------------------------------------------
 * Setup and teardown
 * --------------------------------------------------------------------- */

static int setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    int rc = eb_fix_loop_open(&t->loop, "eb-rc-test", "client.log", EB_LOG_INFO);
    t->conf = eb_fix_client_conf(t->loop.log, &handlers, t);
    *state = t;
    return rc;
}

static int teardown(void **state) {
    struct t *t = *state;
    eb_redis_client_destroy(t->c);
    eb_fix_redis_stop(&t->replica);
    eb_fix_redis_stop(&t->redis);
    eb_fix_loop_close(&t->loop);
    free(t);
    return 0;
}

static void start_client(struct t *t, int port) {
    char err[256] = "";
    t->conf.port = port;
    t->c = eb_redis_client_new(t->loop.base, &t->conf, err, sizeof(err));
    assert_non_null(t->c);
    assert_int_equal(eb_redis_client_start(t->c), 0);
    assert_int_equal(eb_redis_client_start(t->c), EB_ESTATE);
}

/* Destroy the client and check that it left nothing on the base. */
static void finish(struct t *t) {
    eb_redis_client_destroy(t->c);
    t->c = NULL;
    assert_int_equal(event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ADDED), 0);
    assert_int_equal(event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ACTIVE), 0);
}

/* ------------------------------------------------------------------------
 * Handshake
 * --------------------------------------------------------------------- */

static void test_ready_after_name_and_role_and_commands_flow(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    t->conf.require_master = true;
    start_client(t, t->redis.port);
    assert_int_equal(eb_redis_client_state(t->c), EB_REDIS_CLIENT_CONNECTING);
    wait_ready(t);
    const char *name[] = {"CLIENT", "GETNAME"};
    command(t, -1, 2, name);
    assert_string_equal(t->seen.reply, "expiry-bridge:test");
    assert_string_equal(eb_redis_client_address(t->c), "127.0.0.1");
    finish(t);
}

/* `user ... on nopass`: no password, and still a user to log in as. */
static void test_acl_user_without_password_authenticates_as_that_user(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "ACL SETUSER bot on nopass ~* &* +@all");
    freeReplyObject(rep);
    rep = eb_fix_redis_cmd(&t->redis, "ACL SETUSER default off");
    freeReplyObject(rep);
    t->conf.username = "bot";
    t->conf.password = "";
    t->conf.require_master = true;
    start_client(t, t->redis.port);
    wait_ready(t);
    const char *who[] = {"ACL", "WHOAMI"};
    command(t, -1, 2, who);
    assert_string_equal(t->seen.reply, "bot");
    finish(t);
}

static void test_host_name_is_resolved_and_the_address_connected(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    t->conf.host = "localhost"; /* /etc/hosts */
    start_client(t, t->redis.port);
    wait_ready(t);
    assert_string_equal(eb_redis_client_host(t->c), "localhost");
    assert_string_equal(eb_redis_client_address(t->c), "127.0.0.1");
    finish(t);
}

static void test_unresolvable_host_fails_naming_redis_url(void **state) {
    struct t *t = *state;
    t->conf.host = "eb-no-such-host.invalid";
    t->conf.connect_timeout_ms = 8000;
    start_client(t, 6379);
    assert_true(run_until(t, seen_state, &WAITING, WAIT_MS + 5000));
    assert_int_equal(t->seen.last_down.cause, EB_REDIS_DOWN_RESOLVE);
    char line[4096];
    assert_true(log_line(t, "\"msg\":\"redis connect failed\"", line, sizeof(line)));
    assert_non_null(strstr(line, "\"cause\":\"host name not resolved\""));
    assert_non_null(strstr(line, "\"setting\":\"redis.url\""));
    assert_non_null(strstr(line, "eb-no-such-host.invalid"));
    finish(t);
}

static void test_replica_is_refused_when_a_master_is_required(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    eb_fix_redis_start_replica(&t->replica, &t->redis, NULL);
    t->conf.require_master = true;
    start_client(t, t->replica.port);
    assert_true(run_until(t, seen_state, &WAITING, WAIT_MS));
    assert_int_equal(t->seen.last_down.cause, EB_REDIS_DOWN_ROLE);
    assert_string_equal(t->seen.last_detail, "role slave");
    assert_int_equal(t->seen.states[EB_REDIS_CLIENT_READY], 0);
    char line[4096];
    assert_true(log_line(t, "is a replica", line, sizeof(line)));
    assert_non_null(strstr(line, "\"level\":\"error\""));
    finish(t);
}

/* A plaintext client at a TLS port: reset after its first bytes, no reply
 * ever. The line says TLS, not "the server dropped a slow subscriber". */
static void test_tls_port_is_reported_as_probably_tls(void **state) {
    struct t *t = *state;
    eb_fix_redis_start_tls(&t->redis);
    start_client(t, t->redis.port);
    assert_true(run_until(t, seen_state, &WAITING, WAIT_MS));
    assert_int_equal(t->seen.last_down.cause, EB_REDIS_DOWN_NOT_REDIS);
    char line[4096];
    assert_true(log_line(t, "\"msg\":\"redis connect failed\"", line, sizeof(line)));
    assert_non_null(strstr(line, "may expect TLS"));
    assert_non_null(strstr(line, "rediss://"));
    assert_non_null(strstr(line, "\"setting\":\"redis.url\""));
    assert_null(strstr(line, "client-output-buffer-limit"));
    finish(t);
}

/* ------------------------------------------------------------------------
 * Commands and liveness
 * --------------------------------------------------------------------- */

static void test_command_runs_in_the_database_it_names(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    start_client(t, t->redis.port);
    wait_ready(t);
    const char *set[] = {"SET", "in-five", "v"};
    command(t, 5, 3, set);
    const char *get[] = {"GET", "in-five"};
    command(t, 0, 2, get);
    assert_string_equal(t->seen.reply, "");
    command(t, 5, 2, get);
    assert_string_equal(t->seen.reply, "v");
    finish(t);
}

static void test_overdue_reply_fails_the_connection_and_it_comes_back(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    start_client(t, t->redis.port);
    wait_ready(t);
    eb_fix_redis_signal(&t->redis, SIGSTOP);
    const char *ping[] = {"PING"};
    int64_t frozen_at = eb_fix_now_ms();
    assert_int_equal(
        eb_redis_client_command(t->c, -1, eb_fix_client_on_reply, &t->seen, 1, ping, NULL), 0);
    bool lost = run_until(t, seen_state, &WAITING, WAIT_MS);
    int64_t detect_ms = eb_fix_now_ms() - frozen_at;
    eb_fix_redis_signal(&t->redis, SIGCONT);
    assert_true(lost);
    assert_int_equal(t->seen.last_down.cause, EB_REDIS_DOWN_DEAD);
    assert_string_equal(t->seen.last_detail, "PING reply overdue by more than 600 ms");
    assert_true(t->seen.last_down.was_ready);
    assert_int_equal(t->seen.nulls, 1); /* the pending command saw NULL */
    assert_true(detect_ms >= 600 && detect_ms < 600 + 2000);
    assert_int_equal(log_count(t, "\"msg\":\"redis connection lost\""), 1);
    wait_ready(t);
    command(t, -1, 1, ping);
    assert_string_equal(t->seen.reply, "PONG");
    finish(t);
}

static bool pinged(void *ctx, const void *arg) {
    struct t *t = ctx;
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "CLIENT LIST");
    bool ok = rep && rep->type == REDIS_REPLY_STRING &&
              strstr(rep->str, "name=expiry-bridge:test") &&
              strstr(strstr(rep->str, "name=expiry-bridge:test"), "cmd=ping");
    if (rep)
        freeReplyObject(rep);
    return ok;
}

static void test_idle_connection_is_pinged(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    t->conf.idle_ping_ms = 100;
    start_client(t, t->redis.port);
    wait_ready(t);
    assert_true(run_until(t, pinged, NULL, WAIT_MS));
    finish(t);
}

/* ------------------------------------------------------------------------
 * Failures, logs, stop, destroy
 * --------------------------------------------------------------------- */

static bool waited_at_least(void *ctx, const void *arg) {
    struct t *t = ctx;
    return t->seen.states[EB_REDIS_CLIENT_WAITING] >= *(const int *)arg;
}

/* Four lines per failed attempt once (state, failure, schedule, state):
 * now one, and the same cause again is held back. */
static void test_failed_attempts_are_one_line_naming_the_setting(void **state) {
    struct t *t = *state;
    start_client(t, eb_fix_free_port());
    int five = 5;
    assert_true(run_until(t, waited_at_least, &five, WAIT_MS));
    assert_int_equal(t->seen.last_down.cause, EB_REDIS_DOWN_CONNECT);
    assert_int_equal(log_count(t, "\"level\":\"warn\""), 1);
    assert_int_equal(log_count(t, "\"level\":\"info\""), 0);
    char line[4096];
    assert_true(log_line(t, "\"msg\":\"redis connect failed\"", line, sizeof(line)));
    assert_non_null(strstr(line, "\"detail\":\"Connection refused\""));
    assert_non_null(strstr(line, "\"setting\":\"redis.url\""));
    assert_non_null(strstr(line, "\"retry_in_ms\":"));
    assert_non_null(strstr(line, "\"connection\":\"test\""));
    finish(t);
}

static void test_quiet_client_logs_failed_attempts_at_debug(void **state) {
    struct t *t = *state;
    t->conf.quiet_attempts = true;
    start_client(t, eb_fix_free_port());
    int two = 2;
    assert_true(run_until(t, waited_at_least, &two, WAIT_MS));
    assert_int_equal(log_count(t, "redis connect failed"), 0); /* the log is at info */
    finish(t);
}

static void test_reset_reconnects_without_a_failure(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    start_client(t, t->redis.port);
    wait_ready(t);
    eb_redis_client_reset(t->c);
    assert_true(run_until(t, seen_state, &WAITING, WAIT_MS));
    assert_int_equal(t->seen.last_down.cause, EB_REDIS_DOWN_RESET);
    wait_ready(t);
    assert_int_equal(t->seen.states[EB_REDIS_CLIENT_READY], 2);
    assert_int_equal(log_count(t, "redis conn"), 0);
    finish(t);
}

static void test_stop_inside_a_callback_closes_once_control_returns(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    t->stop_when_ready = true;
    start_client(t, t->redis.port);
    assert_true(run_until(t, seen_state, &STOPPED, WAIT_MS));
    assert_true(run_until(t, base_idle, NULL, WAIT_MS));
    const char *ping[] = {"PING"};
    assert_int_equal(
        eb_redis_client_command(t->c, -1, eb_fix_client_on_reply, &t->seen, 1, ping, NULL),
        EB_ESTATE);
    eb_redis_client_stop(t->c); /* twice is harmless */
    finish(t);
}

static void test_destroy_leaves_no_registered_events_in_every_state(void **state) {
    struct t *t = *state;
    char err[256];
    /* Idle: created, never started. */
    t->conf.port = 6379;
    t->c = eb_redis_client_new(t->loop.base, &t->conf, err, sizeof(err));
    assert_non_null(t->c);
    finish(t);

    /* Waiting: nothing listens. */
    start_client(t, eb_fix_free_port());
    assert_true(run_until(t, is_state, &WAITING, WAIT_MS));
    finish(t);

    /* Connecting: the server is frozen, so the handshake hangs. */
    eb_fix_redis_start(&t->redis, NULL);
    eb_fix_redis_signal(&t->redis, SIGSTOP);
    start_client(t, t->redis.port);
    struct timeval tv = {0, 50000};
    event_base_loopexit(t->loop.base, &tv);
    event_base_dispatch(t->loop.base);
    assert_int_equal(eb_redis_client_state(t->c), EB_REDIS_CLIENT_CONNECTING);
    finish(t);
    eb_fix_redis_signal(&t->redis, SIGCONT);

    /* Ready, with a command in flight: it sees NULL. */
    start_client(t, t->redis.port);
    wait_ready(t);
    const char *ping[] = {"PING"};
    assert_int_equal(
        eb_redis_client_command(t->c, -1, eb_fix_client_on_reply, &t->seen, 1, ping, NULL), 0);
    int before = t->seen.nulls;
    finish(t);
    assert_int_equal(t->seen.nulls, before + 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_ready_after_name_and_role_and_commands_flow),
        T(test_acl_user_without_password_authenticates_as_that_user),
        T(test_host_name_is_resolved_and_the_address_connected),
        T(test_unresolvable_host_fails_naming_redis_url),
        T(test_replica_is_refused_when_a_master_is_required),
        T(test_tls_port_is_reported_as_probably_tls),
        T(test_command_runs_in_the_database_it_names),
        T(test_overdue_reply_fails_the_connection_and_it_comes_back),
        T(test_idle_connection_is_pinged),
        T(test_failed_attempts_are_one_line_naming_the_setting),
        T(test_quiet_client_logs_failed_attempts_at_debug),
        T(test_reset_reconnects_without_a_failure),
        T(test_stop_inside_a_callback_closes_once_control_returns),
        T(test_destroy_leaves_no_registered_events_in_every_state),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
