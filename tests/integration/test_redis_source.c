/* test_redis_source.c -- the Redis source against a real redis-server,
 * driven by a real libevent loop: subscriptions, flags, auth, replicas,
 * reconnects and gaps, heartbeat liveness, reloads, stop and destroy.
 *
 * Every test starts its own redis-server(s) on free loopback ports and the
 * teardown stops them by PID, whatever happened. Nothing sleeps to
 * synchronise: the loop runs until a condition holds or a deadline passes.
 * Every test ends by destroying the source and checking that nothing is
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
#include <time.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/notify.h"
#include "fixture.h"
#include "redis/redis_source.h"
#include "loop_fixture.h"
#include "redis_fixture.h"

/* Fast expiry and short liveness limits keep the whole file well under a
 * minute. hz 100 makes Redis's expiry sampler run every 10 ms. */
#define HB_INTERVAL_MS 100
#define HB_TIMEOUT_MS  600
#define WAIT_MS        10000

static const char *const fast_expiry[] = {"--hz", "100", NULL};

struct rec {
    int db;
    int event_id;
    char *key;
    size_t key_len;
};

struct t {
    struct eb_fix_loop loop; /* base, dir, log */
    struct eb_fix_redis redis;
    struct eb_fix_redis replica;
    eb_metrics_t *metrics;
    eb_redis_source_t *src;
    struct eb_redis_source_conf conf;
    int dbs[8];

    struct rec *recs;
    size_t nrecs, cap;
    enum eb_redis_state last_state;
    int states_seen[4];
    bool stop_in_callback;
    bool stop_when_subscribed;
    size_t after_stop;
    bool stopped_by_callback;

    int replies;
    bool reply_was_null;
    char reply_str[64];
};

/* ------------------------------------------------------------------------
 * Callbacks and loop helpers
 * --------------------------------------------------------------------- */

static void on_note(const struct eb_notification *n, void *opaque) {
    struct t *t = opaque;
    if (t->stopped_by_callback)
        t->after_stop++;
    if (t->nrecs == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->recs = realloc(t->recs, t->cap * sizeof(*t->recs));
        assert_non_null(t->recs);
    }
    struct rec *r = &t->recs[t->nrecs++];
    r->db = n->db;
    r->event_id = n->event_id;
    r->key = malloc(n->key_len ? n->key_len : 1);
    memcpy(r->key, n->key, n->key_len);
    r->key_len = n->key_len;
    assert_string_equal(n->event, eb_notify_event_name(n->event_id));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    assert_true(n->recv_mono_ns > 0);
    assert_true(n->recv_real_us <= now_us + 1000 && n->recv_real_us > now_us - 1000000);
    if (t->stop_in_callback && !t->stopped_by_callback) {
        t->stopped_by_callback = true;
        eb_redis_source_stop(t->src);
    }
}

static void on_state(enum eb_redis_state st, void *opaque) {
    struct t *t = opaque;
    assert_int_not_equal(st, t->last_state);
    t->last_state = st;
    t->states_seen[st]++;
    if (st == EB_REDIS_SUBSCRIBED && t->stop_when_subscribed)
        eb_redis_source_stop(t->src);
}

/* Run the loop until cond(t, arg) holds or timeout_ms passes (loop_fixture.h). */
static bool run_until(struct t *t, eb_fix_cond_fn cond, const void *arg, int timeout_ms) {
    return eb_fix_loop_until_arg(t->loop.base, cond, t, arg, timeout_ms);
}

static bool is_state(void *ctx, const void *arg) {
    struct t *t = ctx;
    return eb_redis_source_state(t->src) == *(const enum eb_redis_state *)arg;
}

static bool is_not_state(void *ctx, const void *arg) {
    struct t *t = ctx;
    return eb_redis_source_state(t->src) != *(const enum eb_redis_state *)arg;
}

static const enum eb_redis_state SUBSCRIBED = EB_REDIS_SUBSCRIBED;
static const enum eb_redis_state STOPPED = EB_REDIS_STOPPED;

static void wait_subscribed(struct t *t) {
    assert_true(run_until(t, is_state, &SUBSCRIBED, WAIT_MS));
}

static bool have_recs(void *ctx, const void *arg) {
    struct t *t = ctx;
    return t->nrecs >= *(const size_t *)arg;
}

static void wait_recs(struct t *t, size_t n) {
    assert_true(run_until(t, have_recs, &n, WAIT_MS));
}

static const struct rec *find_rec(const struct t *t, int db, const char *event, const void *key,
                                  size_t key_len) {
    int id = eb_notify_event_id(event, strlen(event));
    for (size_t i = 0; i < t->nrecs; i++) {
        const struct rec *r = &t->recs[i];
        if (r->db == db && r->event_id == id && r->key_len == key_len &&
            memcmp(r->key, key, key_len) == 0)
            return r;
    }
    return NULL;
}

static bool rec_arrived(void *ctx, const void *arg) {
    struct t *t = ctx;
    const char *key = arg;
    return find_rec(t, 0, "expired", key, strlen(key)) != NULL;
}

static void wait_expired(struct t *t, const char *key) {
    assert_true(run_until(t, rec_arrived, key, WAIT_MS));
}

/* ------------------------------------------------------------------------
 * Observation helpers
 * --------------------------------------------------------------------- */

/* A metric's value, summed over its series (the source's families are
 * labelled with the node); -1 when it has none. */
static double metric(const struct t *t, const char *name) {
    struct eb_buf b = EB_BUF_INIT;
    eb_metrics_render(t->metrics, &b);
    eb_buf_cstr(&b);
    double v = -1;
    size_t n = strlen(name);
    for (const char *p = b.data; p && *p;) {
        if (strncmp(p, name, n) == 0 && (p[n] == ' ' || p[n] == '{')) {
            const char *val = p[n] == ' ' ? p + n + 1 : strstr(p + n, "} ");
            if (val) {
                v = (v < 0 ? 0 : v) + strtod(val + (p[n] == ' ' ? 0 : 2), NULL);
            }
        }
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    eb_buf_free(&b);
    return v;
}

struct metric_min {
    const char *name;
    double v;
};

static bool metric_at_least(void *ctx, const void *arg) {
    struct t *t = ctx;
    const struct metric_min *m = arg;
    return metric(t, m->name) >= m->v;
}

static void expire_soon(struct eb_fix_redis *r, int db, const void *key, size_t len) {
    redisReply *rep = eb_fix_redis_cmd(r, "SELECT %d", db);
    assert_non_null(rep);
    freeReplyObject(rep);
    rep = eb_fix_redis_cmd(r, "SET %b v PX 1", key, len);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    rep = eb_fix_redis_cmd(r, "SELECT 0");
    freeReplyObject(rep);
}

static void expire_key(struct t *t, const char *key) {
    expire_soon(&t->redis, 0, key, strlen(key));
}

/* notify-keyspace-events as a set of class flags, 'A' expanded. */
static unsigned flag_set(const char *flags) {
    static const char all[] = "g$lshzxetd";
    static const char order[] = "KEg$lshzxetdmn";
    unsigned set = 0;
    for (const char *f = flags; *f; f++) {
        const char *src = *f == 'A' ? all : (const char[]){*f, 0};
        for (const char *c = src; *c; c++) {
            const char *p = strchr(order, *c);
            assert_non_null(p);
            set |= 1u << (p - order);
        }
    }
    return set;
}

static void assert_no_events(struct t *t) {
    assert_int_equal(event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ADDED), 0);
    assert_int_equal(event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ACTIVE), 0);
}

static bool log_contains(const struct t *t, const char *needle) {
    return eb_fix_log_contains(t->loop.log_path, needle);
}

static bool log_line(const struct t *t, const char *needle, char *out, size_t out_size) {
    return eb_fix_log_line(t->loop.log_path, needle, out, out_size);
}

/* ------------------------------------------------------------------------
 * Setup and teardown
 * --------------------------------------------------------------------- */

static int setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    int rc = eb_fix_loop_open(&t->loop, "eb-rs-test", "bridge.log", EB_LOG_DEBUG);
    t->metrics = eb_metrics_new();
    t->last_state = EB_REDIS_STOPPED;
    t->dbs[0] = 0;
    t->conf = (struct eb_redis_source_conf){
        .host = "127.0.0.1",
        .databases = t->dbs,
        .ndatabases = 1,
        .events = UINT64_C(1) << EB_EVENT_EXPIRED_ID,
        .configure_notifications = true,
        .connect_timeout_ms = 1000,
        .heartbeat_interval_ms = HB_INTERVAL_MS,
        .heartbeat_timeout_ms = HB_TIMEOUT_MS,
        .reconnect_min_ms = 20,
        .reconnect_max_ms = 200,
        .log = t->loop.log,
        .metrics = t->metrics,
        .on_notification = on_note,
        .on_state = on_state,
        .opaque = t,
    };
    *state = t;
    return rc == 0 && t->metrics ? 0 : -1;
}

static int teardown(void **state) {
    struct t *t = *state;
    eb_redis_source_destroy(t->src);
    eb_fix_redis_stop(&t->replica);
    eb_fix_redis_stop(&t->redis);
    for (size_t i = 0; i < t->nrecs; i++)
        free(t->recs[i].key);
    free(t->recs);
    eb_metrics_destroy(t->metrics);
    eb_fix_loop_close(&t->loop);
    free(t);
    return 0;
}

/* Create and start the source against t->redis with t->conf. */
static void start_source(struct t *t) {
    char err[256] = "";
    t->conf.port = t->redis.port;
    t->last_state = EB_REDIS_STOPPED;
    t->src = eb_redis_source_new(t->loop.base, &t->conf, err, sizeof(err));
    assert_non_null(t->src);
    assert_int_equal(eb_redis_source_start(t->src), 0);
    assert_int_equal(eb_redis_source_start(t->src), EB_ESTATE);
}

/* Destroy the source and check that it left nothing on the base. A fresh
 * registry follows: a source registers its metric families once per
 * registry. */
static void finish(struct t *t) {
    eb_redis_source_destroy(t->src);
    t->src = NULL;
    assert_no_events(t);
    eb_metrics_destroy(t->metrics);
    t->metrics = t->conf.metrics = eb_metrics_new();
    assert_non_null(t->metrics);
}

/* ------------------------------------------------------------------------
 * Notifications
 * --------------------------------------------------------------------- */

static void test_expired_events_arrive_from_each_listed_database(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    t->dbs[1] = 3;
    t->conf.ndatabases = 2;
    start_source(t);
    wait_subscribed(t);

    expire_soon(&t->redis, 0, "order:0", 7);
    expire_soon(&t->redis, 3, "order:3", 7);
    wait_recs(t, 2);
    assert_non_null(find_rec(t, 0, "expired", "order:0", 7));
    assert_non_null(find_rec(t, 3, "expired", "order:3", 7));
    /* Only the listed databases are subscribed. */
    assert_int_equal(eb_fix_redis_int(&t->redis, "PUBSUB NUMPAT"), 0);
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "PUBSUB NUMSUB __keyevent@0__:expired "
                                                  "__keyevent@3__:expired __keyevent@5__:expired");
    assert_non_null(rep);
    assert_int_equal(rep->elements, 6);
    assert_int_equal(rep->element[1]->integer, 1);
    assert_int_equal(rep->element[3]->integer, 1);
    assert_int_equal(rep->element[5]->integer, 0);
    freeReplyObject(rep);
    assert_int_equal(metric(t, "eb_redis_node_subscribed"), 1);
    finish(t);
}

static void test_all_databases_psubscribes_and_reports_each_db(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    t->conf.all_databases = true;
    t->conf.databases = NULL;
    t->conf.ndatabases = 0;
    start_source(t);
    wait_subscribed(t);
    assert_int_equal(eb_fix_redis_int(&t->redis, "PUBSUB NUMPAT"), 1);

    expire_soon(&t->redis, 0, "a", 1);
    expire_soon(&t->redis, 7, "b", 1);
    expire_soon(&t->redis, 15, "c", 1);
    wait_recs(t, 3);
    assert_non_null(find_rec(t, 0, "expired", "a", 1));
    assert_non_null(find_rec(t, 7, "expired", "b", 1));
    assert_non_null(find_rec(t, 15, "expired", "c", 1));
    finish(t);
}

static void test_binary_key_with_nul_and_1mb_key_arrive_intact(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    start_source(t);
    wait_subscribed(t);

    static const char bin[] = {'k', '\0', 'e', (char)0xff, '\n', 'y'};
    size_t big_len = 1024 * 1024;
    char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + i % 26);
    big[big_len / 2] = '\0';
    expire_soon(&t->redis, 0, bin, sizeof(bin));
    expire_soon(&t->redis, 0, big, big_len);
    wait_recs(t, 2);
    assert_non_null(find_rec(t, 0, "expired", bin, sizeof(bin)));
    assert_non_null(find_rec(t, 0, "expired", big, big_len));
    free(big);
    finish(t);
}

/* ------------------------------------------------------------------------
 * notify-keyspace-events
 * --------------------------------------------------------------------- */

static void test_configure_notifications_adds_missing_flags_and_keeps_existing(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    /* expired + evicted need E, x and e. */
    t->conf.events =
        (UINT64_C(1) << EB_EVENT_EXPIRED_ID) | (UINT64_C(1) << eb_notify_event_id("evicted", 7));
    static const struct {
        const char *initial;
        bool changes;
    } cases[] = {{"KA", true}, {"Eg", true}, {"", true}, {"Kx", true}, {"AKE", false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        redisReply *rep =
            eb_fix_redis_cmd(&t->redis, "CONFIG SET notify-keyspace-events %s", cases[i].initial);
        assert_int_equal(rep->type, REDIS_REPLY_STATUS);
        freeReplyObject(rep);
        char before[64], after[64];
        eb_fix_redis_config_get(&t->redis, "notify-keyspace-events", before, sizeof(before));

        start_source(t);
        wait_subscribed(t);
        eb_fix_redis_config_get(&t->redis, "notify-keyspace-events", after, sizeof(after));
        /* Compared as sets: Redis reorders flags and folds classes into A. */
        unsigned want = flag_set(before) | flag_set("Exe");
        if (flag_set(after) != want)
            fail_msg("initial '%s': got '%s'", cases[i].initial, after);
        assert_int_equal(metric(t, "eb_redis_notify_config_changes_total"), cases[i].changes);
        finish(t);
    }
    assert_true(log_contains(t, "\"msg\":\"redis notify-keyspace-events changed\""));
}

static void test_config_renamed_away_warns_naming_flags_and_still_subscribes(void **state) {
    struct t *t = *state;
    const char *args[] = {
        "--hz", "100", "--rename-command", "CONFIG", "", "--notify-keyspace-events", "Ex", NULL};
    eb_fix_redis_start(&t->redis, args);
    start_source(t);
    wait_subscribed(t);

    char line[4096];
    assert_true(log_line(t, "cannot read notify-keyspace-events", line, sizeof(line)));
    assert_non_null(strstr(line, "\"level\":\"warn\""));
    assert_non_null(strstr(line, "\"required\":\"Ex\""));
    assert_int_equal(metric(t, "eb_redis_notify_config_changes_total"), 0);
    /* The operator set the flags at startup: events flow. */
    expire_key(t, "renamed");
    wait_expired(t, "renamed");
    finish(t);
}

static void test_acl_user_without_config_warns_naming_missing_flags(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "ACL SETUSER bridge on >bpw ~* &* +@all -config");
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    t->conf.username = "bridge";
    t->conf.password = "bpw";
    start_source(t);
    wait_subscribed(t);

    char line[4096];
    assert_true(log_line(t, "cannot read notify-keyspace-events", line, sizeof(line)));
    assert_non_null(strstr(line, "\"required\":\"Ex\""));
    assert_non_null(strstr(line, "NOPERM"));
    assert_int_equal(metric(t, "eb_redis_notify_config_changes_total"), 0);
    /* An operator follows the advice; events flow on the same session. */
    rep = eb_fix_redis_cmd(&t->redis, "CONFIG SET notify-keyspace-events Ex");
    freeReplyObject(rep);
    expire_key(t, "acl");
    wait_expired(t, "acl");
    finish(t);
}

static void test_acl_user_without_channel_access_is_told_which(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "ACL SETUSER nochan on >npw ~* +@all");
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    t->conf.username = "nochan";
    t->conf.password = "npw";
    start_source(t);
    const struct metric_min retried = {"eb_redis_reconnects_total", 1};
    assert_true(run_until(t, metric_at_least, &retried, WAIT_MS));
    char line[4096];
    assert_true(log_line(t, "\"cause\":\"permission denied\"", line, sizeof(line)));
    assert_non_null(strstr(line, "\"level\":\"error\""));
    assert_non_null(strstr(line, "\"connection\":\"subscriber\""));
    assert_non_null(strstr(line, "&__keyevent@*"));
    assert_int_equal(t->states_seen[EB_REDIS_SUBSCRIBED], 0);
    finish(t);
}

static void test_configure_disabled_warns_naming_exactly_the_missing_flags(void **state) {
    struct t *t = *state;
    const char *args[] = {"--hz", "100", "--notify-keyspace-events", "Kx", NULL};
    eb_fix_redis_start(&t->redis, args);
    t->conf.configure_notifications = false;
    start_source(t);
    wait_subscribed(t);

    char line[4096], flags[64];
    assert_true(log_line(t, "lacks flags the bridge needs", line, sizeof(line)));
    assert_non_null(strstr(line, "\"missing\":\"E\""));
    eb_fix_redis_config_get(&t->redis, "notify-keyspace-events", flags, sizeof(flags));
    assert_int_equal(flag_set(flags), flag_set("Kx"));
    finish(t);
}

/* ------------------------------------------------------------------------
 * Authentication and role
 * --------------------------------------------------------------------- */

static void test_role_forbidden_falls_back_to_info_replication(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "ACL SETUSER norole on >rpw ~* &* +@all -role");
    assert_int_equal(rep->type, REDIS_REPLY_STATUS);
    freeReplyObject(rep);
    t->conf.username = "norole";
    t->conf.password = "rpw";
    start_source(t);
    wait_subscribed(t);
    assert_true(log_contains(t, "reading the role from INFO replication"));
    assert_int_equal(metric(t, "eb_redis_replica_refusals_total"), 0);
    expire_key(t, "no-role");
    wait_expired(t, "no-role");
    finish(t);
}

static void test_auth_with_requirepass_subscribes(void **state) {
    struct t *t = *state;
    const char *args[] = {"--hz", "100", "--requirepass", "s3cret-pw", NULL};
    eb_fix_redis_start(&t->redis, args);
    t->conf.password = "s3cret-pw";
    start_source(t);
    wait_subscribed(t);
    expire_key(t, "authed");
    wait_expired(t, "authed");
    assert_false(log_contains(t, "s3cret-pw"));
    finish(t);
}

/* A server whose only user is `bridge` with password rule pw_rule (">pw"
 * or "nopass"); the fixture's client logs in with fixture_pw. */
static void acl_user_only(struct t *t, const char *pw_rule, const char *fixture_pw) {
    eb_fix_redis_start(&t->redis, fast_expiry);
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "ACL SETUSER bridge on %s ~* &* +@all", pw_rule);
    assert_non_null(rep);
    freeReplyObject(rep);
    rep = eb_fix_redis_cmd(&t->redis, "ACL SETUSER default off");
    freeReplyObject(rep);
    eb_fix_redis_client_auth(&t->redis, "bridge", fixture_pw);
}

static void test_auth_with_acl_user_subscribes(void **state) {
    struct t *t = *state;
    acl_user_only(t, ">acl-pw", "acl-pw");
    t->conf.username = "bridge";
    t->conf.password = "acl-pw";
    start_source(t);
    wait_subscribed(t);
    expire_key(t, "acl-user");
    wait_expired(t, "acl-user");
    assert_int_equal(metric(t, "eb_redis_notify_config_changes_total"), 1);
    assert_false(log_contains(t, "acl-pw"));
    finish(t);
}

/* An ACL user with nopass (the example config's username with an empty
 * ${REDIS_PASSWORD:-}): AUTH must still name the user. */
static void test_acl_user_without_password_subscribes(void **state) {
    struct t *t = *state;
    acl_user_only(t, "nopass", "any");
    t->conf.username = "bridge";
    t->conf.password = "";
    start_source(t);
    wait_subscribed(t);
    expire_key(t, "nopass-user");
    wait_expired(t, "nopass-user");
    char line[4096];
    assert_true(log_line(t, "\"msg\":\"redis source starting\"", line, sizeof(line)));
    assert_non_null(strstr(line, "\"auth\":true"));
    assert_non_null(strstr(line, "\"user\":\"bridge\""));
    finish(t);
}

static void test_wrong_password_is_retried_and_never_logged(void **state) {
    struct t *t = *state;
    const char *args[] = {"--requirepass", "right-pw", NULL};
    eb_fix_redis_start(&t->redis, args);
    t->conf.password = "wrong-pw";
    start_source(t);
    const struct metric_min two_retries = {"eb_redis_reconnects_total", 2};
    assert_true(run_until(t, metric_at_least, &two_retries, WAIT_MS));
    assert_int_equal(t->states_seen[EB_REDIS_SUBSCRIBED], 0);
    char line[4096];
    assert_true(log_line(t, "\"cause\":\"authentication refused\"", line, sizeof(line)));
    assert_non_null(strstr(line, "\"setting\":\"redis.username, redis.password\""));
    assert_non_null(strstr(line, "WRONGPASS"));
    assert_false(log_contains(t, "wrong-pw"));
    finish(t);
}

static void test_replica_is_refused_counted_and_retried(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, NULL);
    eb_fix_redis_start_replica(&t->replica, &t->redis, NULL);
    t->conf.port = t->replica.port;
    char err[256];
    t->src = eb_redis_source_new(t->loop.base, &t->conf, err, sizeof(err));
    assert_non_null(t->src);
    assert_int_equal(eb_redis_source_start(t->src), 0);

    const struct metric_min two_refusals = {"eb_redis_replica_refusals_total", 2};
    assert_true(run_until(t, metric_at_least, &two_refusals, WAIT_MS));
    assert_int_equal(t->states_seen[EB_REDIS_SUBSCRIBED], 0);
    char msg[256], line[4096];
    snprintf(msg, sizeof(msg),
             "redis at 127.0.0.1:%d is a replica; replicas never publish expired events (they "
             "see del); point redis.url at the master",
             t->replica.port);
    assert_true(log_line(t, msg, line, sizeof(line)));
    assert_non_null(strstr(line, "\"level\":\"error\""));
    /* Refused before any subscription or CONFIG SET on the replica. */
    redisReply *rep = eb_fix_redis_cmd(&t->replica, "PUBSUB NUMSUB __keyevent@0__:expired");
    assert_non_null(rep);
    assert_int_equal(rep->element[1]->integer, 0);
    freeReplyObject(rep);
    assert_int_equal(metric(t, "eb_redis_notify_config_changes_total"), 0);
    finish(t);
}

/* ------------------------------------------------------------------------
 * Loss, reconnect, gaps, liveness
 * --------------------------------------------------------------------- */

static void test_server_killed_and_restarted_resubscribes_and_counts_gap(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    start_source(t);
    wait_subscribed(t);
    expire_key(t, "before");
    wait_expired(t, "before");
    assert_int_equal(metric(t, "eb_redis_notify_config_changes_total"), 1);

    eb_fix_redis_kill9(&t->redis);
    assert_true(run_until(t, is_not_state, &SUBSCRIBED, WAIT_MS));
    eb_fix_redis_restart(&t->redis);
    /* The restarted server forgot CONFIG SET: the source sets it again. */
    const struct metric_min one_gap = {"eb_redis_gaps_total", 1};
    assert_true(run_until(t, metric_at_least, &one_gap, WAIT_MS));
    assert_int_equal(eb_redis_source_state(t->src), EB_REDIS_SUBSCRIBED);
    assert_int_equal(metric(t, "eb_redis_notify_config_changes_total"), 2);
    assert_true(metric(t, "eb_redis_gap_seconds_total") > 0);
    assert_true(metric(t, "eb_redis_reconnects_total") >= 1);
    assert_int_equal(metric(t, "eb_redis_gaps_total"), 1);

    char line[4096];
    assert_true(log_line(t, "\"msg\":\"redis subscription gap\"", line, sizeof(line)));
    assert_non_null(strstr(line, "\"gap_ms\":"));
    assert_non_null(strstr(line, "\"level\":\"warn\""));

    expire_key(t, "after");
    wait_expired(t, "after");
    finish(t);
}

struct metric_is {
    const char *name;
    double v;
};

static bool metric_equals(void *ctx, const void *arg) {
    struct t *t = ctx;
    const struct metric_is *m = arg;
    return metric(t, m->name) == m->v;
}

/* The gap counters only move when a gap ends: while Redis stays down, the
 * open gap must show all the same, and grow. */
static void test_open_gap_is_visible_while_it_lasts(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    start_source(t);
    wait_subscribed(t);
    assert_int_equal(metric(t, "eb_redis_node_gap_open"), 0);
    assert_int_equal(metric(t, "eb_redis_node_gap_open_seconds"), 0);

    eb_fix_redis_kill9(&t->redis);
    const struct metric_is open = {"eb_redis_node_gap_open", 1};
    assert_true(run_until(t, metric_equals, &open, WAIT_MS));
    const struct metric_min grown = {"eb_redis_node_gap_open_seconds", 1.0};
    assert_true(run_until(t, metric_at_least, &grown, WAIT_MS));
    assert_int_equal(metric(t, "eb_redis_gaps_total"), 0); /* not ended yet */

    eb_fix_redis_restart(&t->redis);
    const struct metric_min ended = {"eb_redis_gaps_total", 1};
    assert_true(run_until(t, metric_at_least, &ended, WAIT_MS));
    assert_int_equal(metric(t, "eb_redis_node_gap_open"), 0);
    assert_int_equal(metric(t, "eb_redis_node_gap_open_seconds"), 0);
    assert_true(metric(t, "eb_redis_gap_seconds_total") >= 1.0);
    finish(t);
}

/* redis:// pointed at a TLS port: the hint is TLS, not the pub/sub output
 * buffer of a slow subscriber. */
static void test_tls_port_is_named_as_the_likely_cause(void **state) {
    struct t *t = *state;
    eb_fix_redis_start_tls(&t->redis);
    start_source(t);
    const struct metric_min retried = {"eb_redis_reconnects_total", 2};
    assert_true(run_until(t, metric_at_least, &retried, WAIT_MS));
    char line[4096];
    assert_true(log_line(t, "\"msg\":\"redis connect failed\"", line, sizeof(line)));
    assert_non_null(strstr(line, "may expect TLS"));
    assert_non_null(strstr(line, "\"setting\":\"redis.url\""));
    assert_false(log_contains(t, "client-output-buffer-limit"));
    assert_int_equal(t->states_seen[EB_REDIS_SUBSCRIBED], 0);
    finish(t);
}

/* Lines at info or above that contain needle. */
static int loud_lines(const struct t *t, const char *needle) {
    FILE *f = fopen(t->loop.log_path, "r");
    if (!f)
        return 0;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) && !strstr(line, "\"level\":\"debug\"");
    fclose(f);
    return n;
}

/* A failed connect once wrote four lines per attempt whose wording
 * depended on the cause (state, failure, schedule, state), and none named
 * the setting to fix. Now: one line, naming cause and redis.url, and the
 * same cause repeated is held back. */
static void test_failed_connect_is_one_line_naming_the_setting(void **state) {
    struct t *t = *state;
    t->redis.port = eb_fix_free_port();
    start_source(t);
    const struct metric_min retried = {"eb_redis_reconnects_total", 4};
    assert_true(run_until(t, metric_at_least, &retried, WAIT_MS));
    char line[4096];
    assert_true(log_line(t, "\"msg\":\"redis connect failed\"", line, sizeof(line)));
    assert_non_null(strstr(line, "\"detail\":\"Connection refused\""));
    assert_non_null(strstr(line, "\"setting\":\"redis.url\""));
    assert_non_null(strstr(line, "\"retry_in_ms\":"));
    /* Five attempts, both connections refused each time: one line. */
    assert_int_equal(loud_lines(t, "redis connect failed"), 1);
    assert_int_equal(loud_lines(t, "redis reconnect scheduled"), 0);
    assert_int_equal(loud_lines(t, "\"to\":\"waiting\""), 0);
    finish(t);
}

static void test_host_name_is_resolved_without_blocking(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    t->conf.host = "localhost";
    start_source(t);
    wait_subscribed(t);
    expire_key(t, "by-name");
    wait_expired(t, "by-name");
    finish(t);
}

static void test_subscriber_killed_by_server_reconnects(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    start_source(t);
    wait_subscribed(t);

    /* Both connections carry names an operator can find in CLIENT LIST. */
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "CLIENT LIST");
    assert_non_null(strstr(rep->str, "name=expiry-bridge:sub"));
    assert_non_null(strstr(rep->str, "name=expiry-bridge:cmd"));
    freeReplyObject(rep);
    assert_int_equal(eb_fix_redis_int(&t->redis, "CLIENT KILL TYPE pubsub"), 1);
    const struct metric_min one_gap = {"eb_redis_gaps_total", 1};
    assert_true(run_until(t, metric_at_least, &one_gap, WAIT_MS));
    assert_true(log_contains(t, "\"msg\":\"redis connection lost\",\"connection\":\"subscriber\""));
    expire_key(t, "after-kill");
    wait_expired(t, "after-kill");
    finish(t);
}

static void test_heartbeat_detects_frozen_server_and_reconnects(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    start_source(t);
    wait_subscribed(t);

    /* A frozen server keeps the TCP connections open: only the heartbeat
     * (or an overdue reply) can tell. */
    eb_fix_redis_signal(&t->redis, SIGSTOP);
    int64_t frozen_at = eb_fix_now_ms();
    bool lost = run_until(t, is_not_state, &SUBSCRIBED, WAIT_MS);
    int64_t detect_ms = eb_fix_now_ms() - frozen_at;
    eb_fix_redis_signal(&t->redis, SIGCONT);
    assert_true(lost);
    assert_true(detect_ms >= HB_TIMEOUT_MS - HB_INTERVAL_MS);
    /* Far below anything TCP keepalive could detect (15 s and more). */
    assert_true(detect_ms < HB_TIMEOUT_MS + 3000);
    assert_true(log_contains(t, "no heartbeat read for more than"));

    wait_subscribed(t);
    assert_int_equal(metric(t, "eb_redis_gaps_total"), 1);
    expire_key(t, "thawed");
    wait_expired(t, "thawed");
    finish(t);
}

/* A listening socket whose accept queue is full: the kernel drops further
 * SYNs, so a connect to it neither succeeds nor fails -- it hangs. */
static int hanging_listener(int *port, int fds[3]) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 0), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    for (int i = 0; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fds[i] >= 0);
        (void)connect(fds[i], (struct sockaddr *)&a, sizeof(a));
    }
    return l;
}

static void test_connect_timeout_fires_on_a_hanging_connect(void **state) {
    struct t *t = *state;
    int fds[3];
    int l = hanging_listener(&t->redis.port, fds);
    t->conf.connect_timeout_ms = 150;
    start_source(t);
    const struct metric_min retried = {"eb_redis_reconnects_total", 1};
    bool ok = run_until(t, metric_at_least, &retried, WAIT_MS);
    bool timed_out = log_contains(t, "\"cause\":\"connect timed out\"");
    finish(t);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    close(l);
    assert_true(ok);
    assert_true(timed_out);
}

static void test_startup_against_absent_server_is_not_a_gap(void **state) {
    struct t *t = *state;
    t->redis.port = eb_fix_free_port();
    start_source(t);
    const struct metric_min retried = {"eb_redis_reconnects_total", 2};
    assert_true(run_until(t, metric_at_least, &retried, WAIT_MS));
    assert_true(log_contains(t, "Connection refused"));

    eb_fix_redis_start(&t->redis, fast_expiry);
    wait_subscribed(t);
    assert_int_equal(metric(t, "eb_redis_gaps_total"), 0);
    char line[4096];
    assert_true(log_line(t, "\"msg\":\"redis subscribed\"", line, sizeof(line)));
    assert_non_null(strstr(line, "\"startup_ms\":"));
    finish(t);
}

/* ------------------------------------------------------------------------
 * Reload, commands, stop, destroy
 * --------------------------------------------------------------------- */

struct numsub {
    const char *channel;
    long long n;
};

static bool numsub_is(void *ctx, const void *arg) {
    struct t *t = ctx;
    const struct numsub *a = arg;
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "PUBSUB NUMSUB %s", a->channel);
    bool ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
              rep->element[1]->integer == a->n;
    if (rep)
        freeReplyObject(rep);
    return ok;
}

static bool del_arrived(void *ctx, const void *arg) {
    struct t *t = ctx;
    const char *key = arg;
    return find_rec(t, 0, "del", key, strlen(key)) != NULL;
}

static bool base_idle(void *ctx, const void *arg) {
    struct t *t = ctx;
    return event_base_get_num_events(t->loop.base, EVENT_BASE_COUNT_ADDED) == 0;
}

static size_t count_event(const struct t *t, const char *event) {
    int id = eb_notify_event_id(event, strlen(event));
    size_t n = 0;
    for (size_t i = 0; i < t->nrecs; i++)
        n += t->recs[i].event_id == id;
    return n;
}

/* Active expiry samples keys at random, so the last key armed is not the
 * last to expire: wait for the count, not for one key. */
static bool expired_count_reached(void *ctx, const void *arg) {
    const struct t *t = ctx;
    return count_event(t, "expired") >= *(const size_t *)arg;
}

static void test_set_events_adds_and_removes_without_losing_expired(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    start_source(t);
    wait_subscribed(t);
    const uint64_t expired = UINT64_C(1) << EB_EVENT_EXPIRED_ID;
    const uint64_t del = UINT64_C(1) << eb_notify_event_id("del", 3);
    const uint64_t evicted = UINT64_C(1) << eb_notify_event_id("evicted", 7);
    char key[32];
    int sent = 0;

    /* Add del and evicted while expirations keep coming. */
    for (; sent < 20; sent++) {
        snprintf(key, sizeof(key), "e%d", sent);
        expire_key(t, key);
    }
    assert_int_equal(eb_redis_source_set_events(t->src, expired | del | evicted), 0);
    const struct numsub del_on = {"__keyevent@0__:del", 1},
                        evicted_on = {"__keyevent@0__:evicted", 1},
                        del_off = {"__keyevent@0__:del", 0},
                        expired_on = {"__keyevent@0__:expired", 1};
    assert_true(run_until(t, numsub_is, &del_on, WAIT_MS));
    assert_true(run_until(t, numsub_is, &evicted_on, WAIT_MS));
    char flags[64];
    eb_fix_redis_config_get(&t->redis, "notify-keyspace-events", flags, sizeof(flags));
    assert_true((flag_set(flags) & flag_set("Exge")) == flag_set("Exge"));
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "SET gone v");
    freeReplyObject(rep);
    assert_int_equal(eb_fix_redis_int(&t->redis, "DEL gone"), 1);
    assert_true(run_until(t, del_arrived, "gone", WAIT_MS));
    for (; sent < 40; sent++) {
        snprintf(key, sizeof(key), "e%d", sent);
        expire_key(t, key);
    }

    /* Drop del and evicted again; expired stays subscribed throughout. */
    assert_int_equal(eb_redis_source_set_events(t->src, expired), 0);
    assert_true(run_until(t, numsub_is, &del_off, WAIT_MS));
    assert_true(numsub_is(t, &expired_on));
    rep = eb_fix_redis_cmd(&t->redis, "SET gone2 v");
    freeReplyObject(rep);
    assert_int_equal(eb_fix_redis_int(&t->redis, "DEL gone2"), 1);
    for (; sent < 60; sent++) {
        snprintf(key, sizeof(key), "e%d", sent);
        expire_key(t, key);
    }
    const size_t all = (size_t)sent;
    run_until(t, expired_count_reached, &all, WAIT_MS);
    for (int i = 0; i < sent; i++) {
        snprintf(key, sizeof(key), "e%d", i);
        if (!find_rec(t, 0, "expired", key, strlen(key)))
            fail_msg("lost expired %s", key);
    }
    assert_non_null(find_rec(t, 0, "del", "gone", 4));
    assert_null(find_rec(t, 0, "del", "gone2", 5));
    assert_int_equal(count_event(t, "del"), 1);
    assert_int_equal(count_event(t, "expired"), (size_t)sent);
    assert_int_equal(eb_redis_source_set_events(t->src, UINT64_C(1) << 63), EB_EINVAL);
    finish(t);
}

static void on_reply(const struct redisReply *r, void *opaque) {
    struct t *t = opaque;
    t->replies++;
    t->reply_was_null = r == NULL;
    t->reply_str[0] = '\0';
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS))
        snprintf(t->reply_str, sizeof(t->reply_str), "%s", r->str);
}

static bool replies_at_least(void *ctx, const void *arg) {
    struct t *t = ctx;
    return t->replies >= *(const int *)arg;
}

static void test_command_runs_on_command_connection_and_sees_null_on_loss(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    char err[256];
    t->conf.port = t->redis.port;
    t->src = eb_redis_source_new(t->loop.base, &t->conf, err, sizeof(err));
    const char *set[] = {"SET", "ledger:k", "v1"};
    assert_int_equal(eb_redis_source_command(t->src, on_reply, t, 3, set, NULL), EB_ESTATE);
    assert_int_equal(eb_redis_source_start(t->src), 0);
    wait_subscribed(t);

    assert_int_equal(eb_redis_source_command(t->src, on_reply, t, 3, set, NULL), 0);
    const char *get[] = {"GET", "ledger:k"};
    assert_int_equal(eb_redis_source_command(t->src, on_reply, t, 2, get, NULL), 0);
    int two = 2;
    assert_true(run_until(t, replies_at_least, &two, WAIT_MS));
    assert_string_equal(t->reply_str, "v1");

    /* A command pending when the connection dies gets NULL. */
    eb_fix_redis_signal(&t->redis, SIGSTOP);
    assert_int_equal(eb_redis_source_command(t->src, on_reply, t, 2, get, NULL), 0);
    int three = 3;
    bool got = run_until(t, replies_at_least, &three, WAIT_MS);
    eb_fix_redis_signal(&t->redis, SIGCONT);
    assert_true(got);
    assert_true(t->reply_was_null);
    wait_subscribed(t);
    finish(t);
}

static void test_stop_inside_notification_callback_ends_delivery(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    start_source(t);
    wait_subscribed(t);
    t->stop_in_callback = true;

    /* Many keys expire in one sampler pass: their notifications share one
     * read, so the ones after the stopping one are already in hiredis's
     * buffer when stop is called. */
    redisReply *rep = eb_fix_redis_cmd(&t->redis, "MULTI");
    freeReplyObject(rep);
    for (int i = 0; i < 200; i++) {
        rep = eb_fix_redis_cmd(&t->redis, "SET burst:%d v PX 5", i);
        freeReplyObject(rep);
    }
    rep = eb_fix_redis_cmd(&t->redis, "EXEC");
    freeReplyObject(rep);

    assert_true(run_until(t, is_state, &STOPPED, WAIT_MS));
    assert_int_equal(t->states_seen[EB_REDIS_STOPPED], 1);
    /* Once the deferred close ran, nothing is registered while the source
     * still exists: no callback can ever come again, and none came after
     * stop. */
    assert_true(run_until(t, base_idle, NULL, WAIT_MS));
    assert_no_events(t);
    assert_int_equal(t->nrecs, 1);
    assert_int_equal(t->after_stop, 0);
    eb_redis_source_stop(t->src); /* twice is harmless */
    finish(t);
}

/* A reload that changes Redis settings builds a second source for the same
 * node on the same registry before it destroys the first: both count into
 * the node's series, each its own share, so neither's stop erases the
 * other's subscription. */
static void test_second_source_of_one_node_counts_beside_the_first(void **state) {
    struct t *t = *state;
    char err[256] = "";
    eb_fix_redis_start(&t->redis, fast_expiry);
    start_source(t);
    wait_subscribed(t);
    assert_int_equal(metric(t, "eb_redis_node_subscribed"), 1);
    eb_redis_source_t *old = t->src;
    t->src = eb_redis_source_new(t->loop.base, &t->conf, err, sizeof(err));
    assert_non_null(t->src);
    assert_int_equal(metric(t, "eb_redis_node_subscribed"), 1); /* the new one: not started */
    assert_int_equal(eb_redis_source_start(t->src), 0);
    wait_subscribed(t);
    assert_int_equal(metric(t, "eb_redis_node_subscribed"), 2); /* the overlap */
    eb_redis_source_stop(old);
    eb_redis_source_destroy(old);
    assert_int_equal(metric(t, "eb_redis_node_subscribed"), 1);
    assert_int_equal(metric(t, "eb_redis_gaps_total"), 0);
    finish(t);
}

static void test_stop_inside_state_callback_closes_once_control_returns(void **state) {
    struct t *t = *state;
    eb_fix_redis_start(&t->redis, fast_expiry);
    t->stop_when_subscribed = true;
    start_source(t);
    /* Stopped from inside hiredis's subscribe confirmation: the close is
     * deferred, then nothing is left registered, so nothing can run. */
    assert_true(run_until(t, is_state, &STOPPED, WAIT_MS));
    assert_int_equal(t->states_seen[EB_REDIS_SUBSCRIBED], 1);
    assert_true(run_until(t, base_idle, NULL, WAIT_MS));
    const struct numsub gone = {"__keyevent@0__:expired", 0};
    assert_true(run_until(t, numsub_is, &gone, WAIT_MS));
    finish(t);
}

static void test_destroy_leaves_no_registered_events_in_every_state(void **state) {
    struct t *t = *state;
    /* Waiting: nothing listens on the port. */
    t->redis.port = eb_fix_free_port();
    start_source(t);
    const enum eb_redis_state waiting = EB_REDIS_WAITING;
    assert_true(run_until(t, is_state, &waiting, WAIT_MS));
    finish(t);

    /* Connecting: the server is frozen, so the handshake hangs. */
    eb_fix_redis_start(&t->redis, NULL);
    eb_fix_redis_signal(&t->redis, SIGSTOP);
    start_source(t);
    assert_int_equal(eb_redis_source_state(t->src), EB_REDIS_CONNECTING);
    struct timeval tv = {0, 50000};
    event_base_loopexit(t->loop.base, &tv);
    event_base_dispatch(t->loop.base);
    finish(t);
    eb_fix_redis_signal(&t->redis, SIGCONT);

    /* Subscribed, with a command in flight. */
    start_source(t);
    wait_subscribed(t);
    const char *ping[] = {"PING"};
    assert_int_equal(eb_redis_source_command(t->src, on_reply, t, 1, ping, NULL), 0);
    finish(t);
    assert_int_equal(t->replies, 1);
    assert_true(t->reply_was_null);

    /* Stopped, not yet run. */
    start_source(t);
    wait_subscribed(t);
    eb_redis_source_stop(t->src);
    assert_int_equal(eb_redis_source_state(t->src), EB_REDIS_STOPPED);
    finish(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_expired_events_arrive_from_each_listed_database),
        T(test_all_databases_psubscribes_and_reports_each_db),
        T(test_binary_key_with_nul_and_1mb_key_arrive_intact),
        T(test_configure_notifications_adds_missing_flags_and_keeps_existing),
        T(test_config_renamed_away_warns_naming_flags_and_still_subscribes),
        T(test_acl_user_without_config_warns_naming_missing_flags),
        T(test_acl_user_without_channel_access_is_told_which),
        T(test_configure_disabled_warns_naming_exactly_the_missing_flags),
        T(test_role_forbidden_falls_back_to_info_replication),
        T(test_auth_with_requirepass_subscribes),
        T(test_auth_with_acl_user_subscribes),
        T(test_acl_user_without_password_subscribes),
        T(test_wrong_password_is_retried_and_never_logged),
        T(test_replica_is_refused_counted_and_retried),
        T(test_server_killed_and_restarted_resubscribes_and_counts_gap),
        T(test_open_gap_is_visible_while_it_lasts),
        T(test_tls_port_is_named_as_the_likely_cause),
        T(test_failed_connect_is_one_line_naming_the_setting),
        T(test_host_name_is_resolved_without_blocking),
        T(test_subscriber_killed_by_server_reconnects),
        T(test_heartbeat_detects_frozen_server_and_reconnects),
        T(test_connect_timeout_fires_on_a_hanging_connect),
        T(test_startup_against_absent_server_is_not_a_gap),
        T(test_set_events_adds_and_removes_without_losing_expired),
        T(test_command_runs_on_command_connection_and_sees_null_on_loss),
        T(test_stop_inside_notification_callback_ends_delivery),
        T(test_second_source_of_one_node_counts_beside_the_first),
        T(test_stop_inside_state_callback_closes_once_control_returns),
        T(test_destroy_leaves_no_registered_events_in_every_state),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
