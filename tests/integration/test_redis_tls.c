/* test_redis_tls.c -- TLS to Redis (redis_tls.h) through the one
 * connection every part of the bridge uses (redis_client.h), against a
 * real redis-server's --tls-port on loopback, with a throwaway PKI made by
 * openssl for each test (tests/support/make_certs.sh): a verified
 * connection, the host name verified (not the address), each way a
 * handshake fails -- said in the log with the setting to fix, as the
 * client's cause and in eb_redis_tls_failures_total -- client
 * certificates, reconnecting, certificate files that change or do not
 * load, and `functions load`'s blocking connection.
 *
 * A build whose hiredis has no TLS (0.14, Debian 12) skips every test but
 * the one that checks it says so, naming the version.
 *
 * Every server is stopped by PID in the teardown, whatever happened.
 * Nothing sleeps to synchronise: the loop runs until a condition holds or
 * a deadline passes. Every test that made a client ends by destroying it
 * and checking that nothing is left registered on the event base.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <hiredis/hiredis.h>

#include "core/error.h"
#include "core/log.h"
#include "core/metrics.h"
#include "fixture.h"
#include "loop_fixture.h"
#include "redis/redis_argv.h"
#include "redis/redis_client.h"
#include "redis/redis_conn.h"
#include "redis/redis_tls.h"
#include "redis_client_fixture.h"
#include "redis_fixture.h"
#include "tls_fixture.h"

#define WAIT_MS 10000

struct t {
    struct eb_fix_loop loop; /* base, dir, log */
    struct eb_fix_redis redis;
    struct eb_fix_tls pki;
    eb_metrics_t *metrics;
    eb_redis_tls_t *tls;
    eb_redis_client_t *c;
    struct eb_redis_client_conf conf;
    char ca[4200], cert[4200], key[4200]; /* the client's files */

    struct eb_fix_client_seen seen; /* what the client reported */
    char line[4096]; /* the log line of the last failure asserted */

    /* fake servers */
    struct evconnlistener *plain; /* answers anything with a RESP error */
    int silent_fd;                /* listens, never answers */
};

/* ------------------------------------------------------------------------
 * Callbacks and loop helpers
 * --------------------------------------------------------------------- */

static void on_state(eb_redis_client_t *c, enum eb_redis_client_state st,
                     const struct eb_redis_client_down *d, void *opaque) {
    struct t *t = opaque;
    eb_fix_client_saw_state(&t->seen, c, st, d);
}

static const struct eb_redis_client_handlers handlers = {.on_state = on_state};

/* Run the loop until cond(t, arg) holds or timeout_ms passes (loop_fixture.h). */
static bool run_until(struct t *t, eb_fix_cond_fn cond, const void *arg, int timeout_ms) {
    return eb_fix_loop_until_arg(t->loop.base, cond, t, arg, timeout_ms);
}

static bool seen_state(void *ctx, const void *arg) {
    struct t *t = ctx;
    return t->seen.states[*(const enum eb_redis_client_state *)arg] >= 1;
}

static bool ready_twice(void *ctx, const void *arg) {
    struct t *t = ctx;
    return t->seen.states[EB_REDIS_CLIENT_READY] >= 2;
}

static bool replies_at_least(void *ctx, const void *arg) {
    struct t *t = ctx;
    return t->seen.replies >= *(const int *)arg;
}

static const enum eb_redis_client_state READY = EB_REDIS_CLIENT_READY;
static const enum eb_redis_client_state WAITING = EB_REDIS_CLIENT_WAITING;

static void ping(struct t *t) {
    const char *argv[] = {"PING"};
    int want = t->seen.replies + 1;
    assert_int_equal(
        eb_redis_client_command(t->c, -1, eb_fix_client_on_reply, &t->seen, 1, argv, NULL), 0);
    assert_true(run_until(t, replies_at_least, &want, WAIT_MS));
    assert_string_equal(t->seen.reply, "PONG");
}

/* eb_redis_tls_failures_total{reason=...} */
static double failures(struct t *t, const char *reason) {
    eb_metric_t *f = eb_metrics_register(t->metrics, EB_METRIC_COUNTER,
                                         "eb_redis_tls_failures_total", "", "reason", NULL, 0);
    assert_non_null(f);
    return eb_metrics_value(eb_metrics_series(f, (const char *const[]){reason}));
}

static void assert_log(struct t *t, const char *needle, char *line, size_t n) {
    if (!eb_fix_log_line(t->loop.log_path, needle, line, n))
        fail_msg("no log line with %s", needle);
}

/* ------------------------------------------------------------------------
 * Setup and teardown
 * --------------------------------------------------------------------- */

static int setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->silent_fd = -1;
    int rc = eb_fix_loop_open(&t->loop, "eb-tls-test", "client.log", EB_LOG_INFO);
    t->metrics = eb_metrics_new();
    t->conf = eb_fix_client_conf(t->loop.log, &handlers, t);
    *state = t;
    if (rc != 0 || !t->metrics)
        return -1;
    if (eb_redis_conn_tls_unavailable())
        return 0; /* the tests skip; no certificates needed */
    eb_fix_tls_make(&t->pki);
    snprintf(t->ca, sizeof(t->ca), "%s", eb_fix_tls_path(&t->pki, "ca", "pem"));
    return 0;
}

static int teardown(void **state) {
    struct t *t = *state;
    eb_redis_client_destroy(t->c);
    eb_redis_tls_destroy(t->tls);
    if (t->plain)
        evconnlistener_free(t->plain);
    if (t->silent_fd >= 0)
        close(t->silent_fd);
    eb_fix_redis_stop(&t->redis);
    eb_fix_tls_remove(&t->pki);
    eb_metrics_destroy(t->metrics);
    eb_fix_loop_close(&t->loop);
    free(t);
    return 0;
}

static void skip_without_tls(void) {
    if (eb_redis_conn_tls_unavailable()) {
        print_message("skipped: %s\n", eb_redis_conn_tls_unavailable());
        skip();
    }
}

/* A redis-server whose TLS port serves the PKI's certificate `name`,
 * verifying clients against the CA when auth_clients says so. */
static void start_server(struct t *t, const char *name, const char *auth_clients) {
    char cert[4200], key[4200], ca[4200];
    snprintf(cert, sizeof(cert), "%s", eb_fix_tls_path(&t->pki, name, "pem"));
    snprintf(key, sizeof(key), "%s", eb_fix_tls_path(&t->pki, name, "key"));
    snprintf(ca, sizeof(ca), "%s", eb_fix_tls_path(&t->pki, "ca", "pem"));
    eb_fix_redis_start_with_tls(&t->redis, cert, key, ca, auth_clients, NULL);
}

/* The client's TLS settings; server_name may be NULL. */
static struct eb_redis_tls_conf tls_conf(struct t *t, const char *server_name) {
    return (struct eb_redis_tls_conf){
        .ca_file = t->ca,
        .cert_file = t->cert[0] ? t->cert : NULL,
        .key_file = t->key[0] ? t->key : NULL,
        .server_name = server_name,
        .log = t->loop.log,
        .metrics = t->metrics,
    };
}

static void use_client_cert(struct t *t, const char *name) {
    snprintf(t->cert, sizeof(t->cert), "%s", eb_fix_tls_path(&t->pki, name, "pem"));
    snprintf(t->key, sizeof(t->key), "%s", eb_fix_tls_path(&t->pki, name, "key"));
}

/* What one connection attempt is made of. */
struct attempt {
    const char *server_cert;  /* the server's certificate; NULL: no server (port given) */
    const char *auth_clients; /* tls-auth-clients; NULL: "no" */
    const char *client_cert;  /* the client's certificate; NULL: none */
    const char *server_name;  /* redis.tls.server_name; NULL: the host is verified */
    bool insecure;            /* redis.tls.insecure_skip_verify */
    int port;                 /* where the client connects; 0: the server's TLS port */
};

/* Start the server and the client an attempt names (skipped without TLS). */
static void attempt(struct t *t, const struct attempt *a) {
    skip_without_tls();
    if (a->server_cert)
        start_server(t, a->server_cert, a->auth_clients ? a->auth_clients : "no");
    if (a->client_cert)
        use_client_cert(t, a->client_cert);
    struct eb_redis_tls_conf tc = tls_conf(t, a->server_name);
    tc.insecure_skip_verify = a->insecure;
    char err[512] = "";
    t->tls = eb_redis_tls_new(&tc, err, sizeof(err));
    if (!t->tls)
        fail_msg("eb_redis_tls_new: %s", err);
    t->conf.tls = t->tls;
    t->conf.port = a->port ? a->port : t->redis.tls_port;
    t->c = eb_redis_client_new(t->loop.base, &t->conf, err, sizeof(err));
    assert_non_null(t->c);
    assert_int_equal(eb_redis_client_start(t->c), 0);
}

/* The attempt is verified: the client becomes ready and PING answers. */
static void assert_connects(struct t *t, struct attempt a) {
    attempt(t, &a);
    assert_true(run_until(t, seen_state, &READY, WAIT_MS));
    ping(t);
}

/* The attempt failed over TLS for reason: the cause, the counter and one
 * error line naming the setting (left in t->line). */
static void assert_tls_failure(struct t *t, enum eb_redis_tls_reason reason) {
    assert_true(run_until(t, seen_state, &WAITING, WAIT_MS));
    assert_int_equal(t->seen.last_down.cause, EB_REDIS_DOWN_TLS);
    assert_string_equal(eb_redis_tls_reason_name(t->seen.last_down.tls),
                        eb_redis_tls_reason_name(reason));
    assert_int_equal(t->seen.states[EB_REDIS_CLIENT_READY], 0);
    assert_true(failures(t, eb_redis_tls_reason_name(reason)) >= 1);
    assert_log(t, "\"msg\":\"redis connect failed\"", t->line, sizeof(t->line));
    char want[128];
    snprintf(want, sizeof(want), "\"tls_reason\":\"%s\"", eb_redis_tls_reason_name(reason));
    assert_non_null(strstr(t->line, want));
    snprintf(want, sizeof(want), "\"setting\":\"%s\"", eb_redis_tls_reason_setting(reason));
    assert_non_null(strstr(t->line, want));
    assert_non_null(strstr(t->line, "\"cause\":\"TLS failed\""));
}

/* The attempt is refused for reason (assert_tls_failure), the cause's
 * detail containing detail (unless NULL). */
static void assert_refused(struct t *t, struct attempt a, enum eb_redis_tls_reason reason,
                           const char *detail) {
    attempt(t, &a);
    assert_tls_failure(t, reason);
    if (detail && !strstr(t->seen.last_detail, detail))
        fail_msg("detail '%s' lacks '%s'", t->seen.last_detail, detail);
}

static bool base_idle(void *ctx, const void *arg) {
    struct t *t = ctx;
    return event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ADDED) == 0;
}

/* Destroy the client and check that it left nothing on the base (once a
 * fake server of the test itself has seen its connections close). */
static void finish(struct t *t) {
    eb_redis_client_destroy(t->c);
    t->c = NULL;
    if (t->plain) {
        evconnlistener_free(t->plain);
        t->plain = NULL;
        assert_true(run_until(t, base_idle, NULL, WAIT_MS));
    }
    assert_int_equal(event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ADDED), 0);
    assert_int_equal(event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ACTIVE), 0);
}

/* ------------------------------------------------------------------------
 * Verified connections
 * --------------------------------------------------------------------- */

static void test_verified_server_is_ready_and_commands_flow(void **state) {
    struct t *t = *state;
    assert_connects(t, (struct attempt){.server_cert = "server"});
    const char *name[] = {"CLIENT", "GETNAME"};
    int want = t->seen.replies + 1;
    assert_int_equal(
        eb_redis_client_command(t->c, -1, eb_fix_client_on_reply, &t->seen, 2, name, NULL), 0);
    assert_true(run_until(t, replies_at_least, &want, WAIT_MS));
    assert_string_equal(t->seen.reply, "expiry-bridge:test");
    assert_int_equal(failures(t, "handshake"), 0);
    finish(t);
}

/* The certificate names only DNS:localhost: verified against the host as
 * configured, it passes; against the address it resolved to, it would not. */
static void test_the_host_name_is_verified_not_the_address(void **state) {
    struct t *t = *state;
    t->conf.host = "localhost";
    assert_connects(t, (struct attempt){.server_cert = "localhost"});
    assert_string_equal(eb_redis_client_address(t->c), "127.0.0.1");
    finish(t);
}

/* A certificate for DNS:redis.test only, reached at 127.0.0.1. */
static void test_server_name_is_verified_instead_of_the_host(void **state) {
    struct t *t = *state;
    assert_connects(t, (struct attempt){.server_cert = "named", .server_name = "redis.test"});
    finish(t);
}

/* ------------------------------------------------------------------------
 * Refused servers
 * --------------------------------------------------------------------- */

static void test_unknown_ca_is_refused_naming_ca_file(void **state) {
    struct t *t = *state;
    assert_refused(t, (struct attempt){.server_cert = "untrusted"}, EB_REDIS_TLS_UNKNOWN_CA,
                   "unknown CA");
    assert_non_null(strstr(t->line, "\"level\":\"error\""));
    finish(t);
}

static void test_name_mismatch_is_refused_naming_the_name(void **state) {
    struct t *t = *state;
    assert_refused(t, (struct attempt){.server_cert = "wrongname", .server_name = "redis.test"},
                   EB_REDIS_TLS_NAME_MISMATCH, "not for 'redis.test'");
    finish(t);
}

/* Without server_name the address itself is checked against the
 * certificate's IP entries (it has none for 127.0.0.1). */
static void test_an_address_not_in_the_certificate_is_a_name_mismatch(void **state) {
    struct t *t = *state;
    assert_refused(t, (struct attempt){.server_cert = "wrongname"}, EB_REDIS_TLS_NAME_MISMATCH,
                   NULL);
    finish(t);
}

static void test_expired_certificate_is_refused_saying_until_when(void **state) {
    struct t *t = *state;
    assert_refused(t, (struct attempt){.server_cert = "expired"}, EB_REDIS_TLS_EXPIRED,
                   "certificate has expired: 'expired' valid from ");
    assert_non_null(strstr(t->seen.last_detail, " until "));
    finish(t);
}

/* A server that answers TLS's first bytes in plaintext (what a Redis
 * plaintext port does when the ClientHello holds a newline). */
static void on_plain_read(struct bufferevent *bev, void *arg) {
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
    bufferevent_write(bev, "-ERR unknown command\r\n", 22);
}

static void on_plain_event(struct bufferevent *bev, short what, void *arg) {
    (void)what;
    (void)arg;
    bufferevent_free(bev);
}

static void on_plain_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int len, void *arg) {
    (void)sa;
    (void)len;
    (void)arg;
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, on_plain_read, NULL, on_plain_event, NULL);
    bufferevent_enable(bev, EV_READ);
}

static int listen_loopback(struct t *t, bool answer) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    if (answer) {
        t->plain = evconnlistener_new_bind(t->loop.base, on_plain_accept, t,
                                           LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 8,
                                           (struct sockaddr *)&a, sizeof(a));
        assert_non_null(t->plain);
        getsockname(evconnlistener_get_fd(t->plain), (struct sockaddr *)&a, &alen);
    } else {
        /* The kernel completes the TCP handshake; nothing ever reads. */
        t->silent_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(t->silent_fd >= 0);
        assert_int_equal(bind(t->silent_fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(t->silent_fd, 8), 0);
        getsockname(t->silent_fd, (struct sockaddr *)&a, &alen);
    }
    return ntohs(a.sin_port);
}

static void test_plaintext_answer_is_named_not_tls(void **state) {
    struct t *t = *state;
    assert_refused(t, (struct attempt){.port = listen_loopback(t, true)}, EB_REDIS_TLS_NOT_TLS,
                   NULL);
    assert_non_null(strstr(t->line, "plaintext"));
    finish(t);
}

static void test_silent_server_is_a_handshake_timeout(void **state) {
    struct t *t = *state;
    assert_refused(t, (struct attempt){.port = listen_loopback(t, false)},
                   EB_REDIS_TLS_HANDSHAKE_TIMEOUT, "no handshake answer within 600 ms");
    /* Possibly a stalled server: a warning, not an error. */
    assert_non_null(strstr(t->line, "\"level\":\"warn\""));
    finish(t);
}

/* A real Redis plaintext port answers a ClientHello with an error when
 * its random bytes hold a newline, and else waits for more: either way
 * the line says TLS, never "connection lost". */
static void test_redis_plaintext_port_is_named_as_a_tls_failure(void **state) {
    struct t *t = *state;
    skip_without_tls();
    start_server(t, "server", "no");
    attempt(t, &(struct attempt){.port = t->redis.port}); /* its plaintext port */
    assert_true(run_until(t, seen_state, &WAITING, WAIT_MS));
    assert_int_equal(t->seen.last_down.cause, EB_REDIS_DOWN_TLS);
    assert_true(t->seen.last_down.tls == EB_REDIS_TLS_NOT_TLS ||
                t->seen.last_down.tls == EB_REDIS_TLS_HANDSHAKE_TIMEOUT);
    assert_log(t, "\"msg\":\"redis connect failed\"", t->line, sizeof(t->line));
    assert_non_null(strstr(t->line, "plaintext"));
    finish(t);
}

/* ------------------------------------------------------------------------
 * Client certificates (tls-auth-clients yes)
 * --------------------------------------------------------------------- */

/* A server that asks for a client certificate; the client's is
 * client_cert (NULL: none). */
static struct attempt mutual(const char *client_cert) {
    return (struct attempt){
        .server_cert = "server", .auth_clients = "yes", .client_cert = client_cert};
}

static void test_client_certificate_is_accepted(void **state) {
    struct t *t = *state;
    assert_connects(t, mutual("client"));
    finish(t);
}

static void test_missing_client_certificate_is_refused_naming_cert_file(void **state) {
    struct t *t = *state;
    assert_refused(t, mutual(NULL), EB_REDIS_TLS_CLIENT_CERTIFICATE,
                   "without a client certificate");
    finish(t);
}

static void test_client_certificate_of_another_ca_is_refused(void **state) {
    struct t *t = *state;
    assert_refused(t, mutual("client-other"), EB_REDIS_TLS_CLIENT_CERTIFICATE,
                   "refused the client certificate");
    finish(t);
}

/* ------------------------------------------------------------------------
 * Reconnecting, insecure, files
 * --------------------------------------------------------------------- */

static void test_reconnects_over_tls_after_the_server_restarts(void **state) {
    struct t *t = *state;
    assert_connects(t, mutual("client"));
    eb_fix_redis_kill9(&t->redis);
    assert_true(run_until(t, seen_state, &WAITING, WAIT_MS));
    assert_true(t->seen.last_down.was_ready);
    assert_int_not_equal(t->seen.last_down.cause, EB_REDIS_DOWN_TLS);
    eb_fix_redis_restart(&t->redis);
    assert_true(run_until(t, ready_twice, NULL, WAIT_MS));
    ping(t);
    finish(t);
}

static void test_insecure_skip_verify_accepts_an_unknown_ca(void **state) {
    struct t *t = *state;
    assert_connects(t, (struct attempt){.server_cert = "untrusted", .insecure = true});
    finish(t);
}

static void copy_file(const char *from, const char *to) {
    char cmd[9000];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", from, to, to, to);
    assert_int_equal(system(cmd), 0);
}

/* A renewed CA bundle (a Secret updated in place) is read by the next
 * attempt, without a restart. */
static void test_a_changed_ca_file_is_used_by_the_next_attempt(void **state) {
    struct t *t = *state;
    skip_without_tls();
    snprintf(t->ca, sizeof(t->ca), "%s/bundle.pem", t->loop.dir);
    copy_file(eb_fix_tls_path(&t->pki, "other-ca", "pem"), t->ca);
    attempt(t, &(struct attempt){.server_cert = "server"});
    assert_true(run_until(t, seen_state, &WAITING, WAIT_MS));
    assert_int_equal(t->seen.last_down.tls, EB_REDIS_TLS_UNKNOWN_CA);
    copy_file(eb_fix_tls_path(&t->pki, "ca", "pem"), t->ca);
    assert_true(run_until(t, seen_state, &READY, WAIT_MS));
    assert_true(eb_fix_log_contains(t->loop.log_path, "redis TLS certificates reloaded"));
    finish(t);
}

static void assert_new_fails(struct t *t, const struct eb_redis_tls_conf *tc, const char *want1,
                             const char *want2) {
    char err[512] = "";
    assert_null(eb_redis_tls_new(tc, err, sizeof(err)));
    if (!strstr(err, want1) || !strstr(err, want2))
        fail_msg("'%s' lacks '%s' or '%s'", err, want1, want2);
}

static void test_files_that_do_not_load_are_named_with_their_setting(void **state) {
    struct t *t = *state;
    skip_without_tls();
    char missing[4200], notpem[4200];
    snprintf(missing, sizeof(missing), "%s/nope.pem", t->loop.dir);
    snprintf(notpem, sizeof(notpem), "%s/notpem.pem", t->loop.dir);
    FILE *f = fopen(notpem, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);

    struct eb_redis_tls_conf tc = tls_conf(t, NULL);
    tc.ca_file = missing;
    assert_new_fails(t, &tc, "redis.tls.ca_file", "No such file");
    tc.ca_file = notpem;
    assert_new_fails(t, &tc, "redis.tls.ca_file", notpem);

    use_client_cert(t, "client");
    tc = tls_conf(t, NULL);
    tc.key_file = eb_fix_tls_path(&t->pki, "server", "key");
    assert_new_fails(t, &tc, "redis.tls.key_file", "is not the key of redis.tls.cert_file");
    tc = tls_conf(t, NULL);
    tc.cert_file = notpem;
    assert_new_fails(t, &tc, "redis.tls.cert_file", notpem);
}

/* Run one command (NULL-terminated words) on a blocking connection to
 * host at a server with certificate server_cert, verified with the
 * client's settings, as `expiry-bridge functions load` does: its return
 * code, and its error in err. */
static int run_blocking(struct t *t, const char *server_cert, const char *host,
                        const char *const *words, char *err, size_t err_size) {
    skip_without_tls();
    start_server(t, server_cert, "no");
    struct eb_redis_tls_conf tc = tls_conf(t, NULL);
    t->tls = eb_redis_tls_new(&tc, err, err_size);
    if (!t->tls)
        fail_msg("eb_redis_tls_new: %s", err);
    struct eb_redis_argv cmd;
    eb_redis_argv_init(&cmd);
    for (; *words; words++)
        eb_redis_argv_add_str(&cmd, *words);
    size_t failed_at = 0;
    int rc = eb_redis_conn_run_blocking(host, t->redis.tls_port, t->tls, 2000, &cmd, 1, &failed_at,
                                        err, err_size);
    eb_redis_argv_free(&cmd);
    return rc;
}

/* `expiry-bridge functions load` connects with a blocking hiredis context:
 * verified the same way. */
static void test_blocking_connection_is_verified_too(void **state) {
    struct t *t = *state;
    char err[512] = "";
    int rc =
        run_blocking(t, "untrusted", "127.0.0.1", (const char *[]){"PING", NULL}, err, sizeof(err));
    assert_int_equal(rc, EB_EIO);
    assert_non_null(strstr(err, "unknown CA"));
    assert_int_equal(failures(t, "unknown_ca"), 1);
}

static void test_blocking_connection_runs_commands_over_tls(void **state) {
    struct t *t = *state;
    char err[512] = "";
    if (run_blocking(t, "server", "localhost", (const char *[]){"SET", "over-tls", "1", NULL}, err,
                     sizeof(err)) != 0)
        fail_msg("run_blocking: %s", err);
    redisReply *r = eb_fix_redis_cmd(&t->redis, "GET over-tls");
    assert_non_null(r);
    assert_string_equal(r->str, "1");
    freeReplyObject(r);
}

/* ------------------------------------------------------------------------
 * A build without TLS
 * --------------------------------------------------------------------- */

static void test_a_build_without_tls_says_so_naming_hiredis(void **state) {
    struct t *t = *state;
    const char *why = eb_redis_conn_tls_unavailable();
    if (!why) {
        print_message("skipped: this build has TLS (hiredis %s)\n", eb_redis_conn_version());
        skip();
    }
    struct eb_redis_tls_conf tc = {.ca_file = "/nonexistent"};
    char err[512] = "";
    assert_null(eb_redis_tls_new(&tc, err, sizeof(err)));
    assert_non_null(strstr(err, eb_redis_conn_version()));
    assert_non_null(strstr(err, "hiredis >= 1.0 with hiredis_ssl"));
    (void)t;
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_verified_server_is_ready_and_commands_flow),
        T(test_the_host_name_is_verified_not_the_address),
        T(test_server_name_is_verified_instead_of_the_host),
        T(test_unknown_ca_is_refused_naming_ca_file),
        T(test_name_mismatch_is_refused_naming_the_name),
        T(test_an_address_not_in_the_certificate_is_a_name_mismatch),
        T(test_expired_certificate_is_refused_saying_until_when),
        T(test_plaintext_answer_is_named_not_tls),
        T(test_silent_server_is_a_handshake_timeout),
        T(test_redis_plaintext_port_is_named_as_a_tls_failure),
        T(test_client_certificate_is_accepted),
        T(test_missing_client_certificate_is_refused_naming_cert_file),
        T(test_client_certificate_of_another_ca_is_refused),
        T(test_reconnects_over_tls_after_the_server_restarts),
        T(test_insecure_skip_verify_accepts_an_unknown_ca),
        T(test_a_changed_ca_file_is_used_by_the_next_attempt),
        T(test_files_that_do_not_load_are_named_with_their_setting),
        T(test_blocking_connection_is_verified_too),
        T(test_blocking_connection_runs_commands_over_tls),
        T(test_a_build_without_tls_says_so_naming_hiredis),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
