/* test_redis_conn.c -- the contract of redis/redis_conn.h against a real
 * redis-server (or EB_REDIS_SERVER), whichever hiredis this build links
 * (0.14 on Debian 12, >= 1.0 on Debian 13: redis_conn.c compiles against
 * both). Both must pass the same file: who is told what, when, and that
 * nothing is left on the event base.
 *
 * The one that decides the hiredis 1.x option: a server killed under a
 * connection is reported through on_disconnect at once (and the pending
 * command's on_reply with NULL before it) -- which hiredis 1.x does not do
 * with REDIS_OPT_NOAUTOFREE (see redis_conn.c).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/error.h"
#include "fixture.h"
#include "redis/redis_argv.h"
#include "redis/redis_conn.h"
#include "redis/redis_reply.h"
#include "redis_fixture.h"

/* A loss must be seen well before the callers' heartbeat (seconds). */
#define PROMPT_MS 1000
#define WAIT_MS   5000

struct t {
    struct event_base *base;
    struct eb_fix_redis redis;
    eb_redis_conn_t *c;
    int connects, connect_ok, disconnects, replies, null_replies;
    int order_null_reply, order_disconnect, seq; /* when each happened */
    char connect_err[256], disconnect_err[256], last_reply[256];
};

static void on_connect(eb_redis_conn_t *c, bool ok, const char *errstr, void *opaque) {
    struct t *t = opaque;
    assert_ptr_equal(c, t->c);
    t->connects++;
    t->connect_ok += ok;
    snprintf(t->connect_err, sizeof(t->connect_err), "%s", errstr ? errstr : "(null)");
}

static void on_disconnect(eb_redis_conn_t *c, const char *errstr, void *opaque) {
    struct t *t = opaque;
    assert_ptr_equal(c, t->c);
    assert_false(eb_redis_conn_alive(c));
    t->disconnects++;
    t->order_disconnect = ++t->seq;
    snprintf(t->disconnect_err, sizeof(t->disconnect_err), "%s", errstr ? errstr : "(null)");
}

static void on_reply(eb_redis_conn_t *c, const redisReply *reply, void *privdata, void *opaque) {
    struct t *t = opaque;
    (void)c;
    assert_ptr_equal(privdata, t);
    t->replies++;
    if (!reply) {
        t->null_replies++;
        t->order_null_reply = ++t->seq;
        return;
    }
    snprintf(t->last_reply, sizeof(t->last_reply), "%s", eb_redis_reply_text(reply));
}

static const struct eb_redis_conn_handlers handlers = {on_connect, on_disconnect, on_reply};

typedef bool (*cond_fn)(struct t *t);

static bool run_until(struct t *t, cond_fn cond, int timeout_ms) {
    int64_t deadline = eb_fix_now_ms() + timeout_ms;
    while (!cond(t)) {
        if (eb_fix_now_ms() >= deadline)
            return false;
        struct timeval tv = {0, 5000};
        event_base_loopexit(t->base, &tv);
        event_base_dispatch(t->base);
    }
    return true;
}

static bool connected(struct t *t) {
    return t->connects > 0;
}
static bool replied(struct t *t) {
    return t->replies > 0;
}
static bool disconnected(struct t *t) {
    return t->disconnects > 0;
}

static int setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->base = event_base_new();
    assert_non_null(t->base);
    *state = t;
    return 0;
}

static int teardown(void **state) {
    struct t *t = *state;
    eb_redis_conn_destroy(t->c);
    t->c = NULL;
    /* Nothing of hiredis's is left registered on the loop. */
    int left = event_base_get_num_events(t->base, EVENT_BASE_COUNT_ADDED);
    eb_fix_redis_stop(&t->redis);
    event_base_free(t->base);
    free(t);
    assert_int_equal(left, 0);
    return 0;
}

static void open_conn(struct t *t, int port) {
    char err[256];
    t->c = eb_redis_conn_new(t->base, "127.0.0.1", port, &handlers, t, err, sizeof(err));
    assert_non_null(t->c);
}

static void connect_up(struct t *t, const char *const *args) {
    eb_fix_redis_start(&t->redis, args);
    open_conn(t, t->redis.port);
    assert_true(run_until(t, connected, WAIT_MS));
    assert_int_equal(t->connect_ok, 1);
    assert_true(eb_redis_conn_alive(t->c));
}

static int send_cmd(struct t *t, int argc, const char **argv) {
    size_t len[8];
    for (int i = 0; i < argc; i++)
        len[i] = strlen(argv[i]);
    return eb_redis_conn_command(t->c, t, argc, argv, len);
}

static void test_conn_connects_and_runs_a_command(void **state) {
    struct t *t = *state;
    connect_up(t, NULL);
    const char *ping[] = {"PING"};
    assert_int_equal(send_cmd(t, 1, ping), 0);
    assert_true(run_until(t, replied, WAIT_MS));
    assert_string_equal(t->last_reply, "PONG");
    assert_int_equal(t->connects, 1);
    assert_int_equal(t->disconnects, 0);
}

static void test_conn_commands_queued_before_the_connect_run(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    open_conn(t, t->redis.port);
    const char *echo[] = {"ECHO", "early"};
    assert_int_equal(send_cmd(t, 2, echo), 0);
    assert_true(run_until(t, replied, WAIT_MS));
    assert_int_equal(t->connect_ok, 1);
    assert_string_equal(t->last_reply, "early");
}

static void test_conn_refused_is_reported_once_through_on_connect(void **state) {
    struct t *t = *state;
    open_conn(t, eb_fix_free_port()); /* nothing listens there */
    const char *ping[] = {"PING"};
    assert_int_equal(send_cmd(t, 1, ping), 0); /* queued: comes back NULL */
    assert_true(run_until(t, connected, WAIT_MS));
    assert_int_equal(t->connect_ok, 0);
    assert_true(strlen(t->connect_err) > 0);
    assert_false(eb_redis_conn_alive(t->c));
    assert_int_equal(send_cmd(t, 1, ping), EB_ESTATE);
    assert_int_equal(t->null_replies, 1);
    assert_int_equal(t->disconnects, 0);
}

static void test_conn_a_killed_server_is_reported_at_once(void **state) {
    struct t *t = *state;
    connect_up(t, NULL);
    /* A command that stays pending until the server goes. */
    const char *blpop[] = {"BLPOP", "never", "0"};
    assert_int_equal(send_cmd(t, 3, blpop), 0);
    int64_t t0 = eb_fix_now_ms();
    eb_fix_redis_kill9(&t->redis);
    assert_true(run_until(t, disconnected, PROMPT_MS));
    fprintf(stderr, "# on_disconnect %lld ms after SIGKILL: %s\n",
            (long long)(eb_fix_now_ms() - t0), t->disconnect_err);
    assert_false(eb_redis_conn_alive(t->c));
    assert_int_equal(t->null_replies, 1);
    /* Pending replies first, then the disconnect. */
    assert_true(t->order_null_reply < t->order_disconnect);
    const char *ping[] = {"PING"};
    assert_int_equal(send_cmd(t, 1, ping), EB_ESTATE);
    assert_int_equal(t->disconnects, 1);
    assert_int_equal(t->connects, 1);
}

static void test_conn_destroy_runs_pending_replies_with_null_and_no_disconnect(void **state) {
    struct t *t = *state;
    connect_up(t, NULL);
    const char *blpop[] = {"BLPOP", "never", "0"};
    assert_int_equal(send_cmd(t, 3, blpop), 0);
    assert_int_equal(send_cmd(t, 3, blpop), 0);
    eb_redis_conn_destroy(t->c);
    t->c = NULL;
    assert_int_equal(t->null_replies, 2);
    assert_int_equal(t->disconnects, 0);
}

/* AUTH as the bridge sends it (redis_client.c): the argument list of
 * eb_redis_conn_auth_args() through eb_redis_conn_command(). */
static int auth(struct t *t, const char *user, const char *password) {
    struct eb_redis_argv a;
    eb_redis_conn_auth_args(&a, user, password);
    int rc = eb_redis_conn_command(t->c, t, a.argc, a.argv, a.argvlen);
    eb_redis_argv_free(&a);
    return rc;
}

static void test_conn_auth_with_a_password(void **state) {
    struct t *t = *state;
    const char *args[] = {"--requirepass", "s3cret", NULL};
    connect_up(t, args);
    assert_int_equal(auth(t, NULL, "s3cret"), 0);
    assert_true(run_until(t, replied, WAIT_MS));
    assert_string_equal(t->last_reply, "OK");
}

static void test_conn_auth_with_an_acl_user(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    redisReply *r = eb_fix_redis_cmd(&t->redis, "ACL SETUSER bridge on >pw ~* +@all");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    open_conn(t, t->redis.port);
    assert_int_equal(auth(t, "bridge", "pw"), 0);
    assert_true(run_until(t, replied, WAIT_MS));
    assert_string_equal(t->last_reply, "OK");
}

static void test_conn_version_names_the_linked_hiredis(void **state) {
    (void)state;
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    assert_string_equal(eb_redis_conn_version(), want);
    const char *why = eb_redis_conn_tls_unavailable();
    if (HIREDIS_MAJOR < 1) {
        /* 0.14 has no TLS at all: the reason names the version. */
        assert_non_null(why);
        assert_non_null(strstr(why, want));
    } else if (why) {
        /* 1.x without hiredis_ssl: the same. */
        assert_non_null(strstr(why, want));
    }
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conn_connects_and_runs_a_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_commands_queued_before_the_connect_run, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_conn_refused_is_reported_once_through_on_connect,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_a_killed_server_is_reported_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_conn_destroy_runs_pending_replies_with_null_and_no_disconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_auth_with_a_password, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_auth_with_an_acl_user, setup, teardown),
        cmocka_unit_test(test_conn_version_names_the_linked_hiredis),
    };
    return cmocka_run_group_tests_name("integration.redis_conn", tests, NULL, NULL);
}
