/* test_kafka_group.c -- unit ownership through a consumer group on
 * librdkafka's mock cluster (tests/support/mock_kafka.c): members split the
 * units, a member that leaves hands its units over, a member that stops
 * (SIGSTOP: paused, as a partitioned pod is) loses its lease, then its
 * units, and owns nothing it did not get back. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "core/error.h"
#include "fixture.h"
#include "kafka/kafka_group.h"

#define UNITS      4
#define SESSION_MS 6000
#define HB_MS      500

struct member {
    eb_kafka_group_t *g;
    int owned[UNITS]; /* by the handlers' account */
    int assigned_calls, revoked_calls, lost_calls;
};

struct ctx {
    struct eb_fix_kafka kafka;
    struct event_base *base;
    eb_log_t *log;
    eb_metrics_t *metrics;
    struct member m[2];
    char topic[64];
    pid_t child;    /* a paused member's process, stopped by teardown */
    bool in_child;  /* this process is that child: never return into cmocka */
};

static void on_assigned(const int32_t *units, size_t n, void *opaque) {
    struct member *m = opaque;
    m->assigned_calls++;
    for (size_t i = 0; i < n; i++) {
        assert_true(units[i] >= 0 && units[i] < UNITS);
        assert_int_equal(m->owned[units[i]], 0); /* never given twice */
        m->owned[units[i]] = 1;
    }
}

static void on_revoked(const int32_t *units, size_t n, bool lost, void *opaque) {
    struct member *m = opaque;
    m->revoked_calls++;
    m->lost_calls += lost;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m->owned[units[i]], 1); /* only what it had */
        m->owned[units[i]] = 0;
    }
}

static const struct eb_kafka_group_handlers handlers = {on_assigned, on_revoked};

static eb_kafka_group_t *join(struct ctx *c, struct member *m) {
    char err[512];
    struct eb_kafka_group_conf conf = {
        .brokers = c->kafka.bootstrap,
        .group_id = "eb-test-group",
        .topic = c->topic,
        .units = UNITS,
        .session_timeout_ms = SESSION_MS,
        .heartbeat_interval_ms = HB_MS,
        .replication_factor = -1,
        .log = c->log,
        .metrics = c->metrics,
        .handlers = &handlers,
        .opaque = m,
    };
    eb_kafka_group_t *g = eb_kafka_group_new(c->base, &conf, err, sizeof(err));
    int rc = g ? eb_kafka_group_start(g, err, sizeof(err)) : EB_EINVAL;
    if (rc != 0 && c->in_child)
        _exit(2); /* the parent sees the pipe close */
    if (rc != 0)
        fail_msg("eb_kafka_group_new/start: %s", err);
    return g;
}

static int owned(const struct member *m) {
    int n = 0;
    for (int u = 0; u < UNITS; u++)
        n += m->owned[u];
    return n;
}

struct until {
    struct ctx *c;
    bool (*cond)(struct ctx *c);
};

static bool step(void *arg) {
    struct until *u = arg;
    event_base_loop(u->c->base, EVLOOP_NONBLOCK);
    return u->cond(u->c);
}

static void loop_until(struct ctx *c, bool (*cond)(struct ctx *c), int timeout_ms) {
    struct until u = {c, cond};
    if (!eb_fix_wait_until(step, &u, timeout_ms))
        fail_msg("condition not met within %d ms (owned %d + %d)", timeout_ms, owned(&c->m[0]),
                 owned(&c->m[1]));
}

static bool split_between_two(struct ctx *c) {
    if (owned(&c->m[0]) + owned(&c->m[1]) != UNITS || !owned(&c->m[0]) || !owned(&c->m[1]))
        return false;
    for (int u = 0; u < UNITS; u++) {
        if (c->m[0].owned[u] == c->m[1].owned[u])
            return false;
    }
    return true;
}

static bool first_owns_all(struct ctx *c) {
    return owned(&c->m[0]) == UNITS;
}

static bool first_owns_half(struct ctx *c) {
    return owned(&c->m[0]) == UNITS / 2;
}

static int setup(void **state) {
    struct ctx *c = calloc(1, sizeof(*c));
    eb_fix_kafka_start(&c->kafka, 3);
    snprintf(c->topic, sizeof(c->topic), "eb.units.%d", (int)getpid());
    char cmd[128];
    /* The mock serves no CreateTopics: the topic is made through its API. */
    snprintf(cmd, sizeof(cmd), "topic %s %d", c->topic, UNITS);
    assert_true(eb_fix_kafka_cmd(&c->kafka, cmd));
    c->base = event_base_new();
    c->log = eb_log_new(2, EB_LOG_WARN);
    c->metrics = eb_metrics_new();
    *state = c;
    return 0;
}

static int teardown(void **state) {
    struct ctx *c = *state;
    if (c->child > 0) { /* a failed test left it running, or stopped */
        kill(c->child, SIGKILL);
        waitpid(c->child, NULL, 0);
    }
    for (int i = 0; i < 2; i++)
        eb_kafka_group_destroy(c->m[i].g, NULL, NULL);
    assert_int_equal(event_base_get_num_events(c->base, EVENT_BASE_COUNT_ADDED), 0);
    eb_metrics_destroy(c->metrics);
    eb_log_destroy(c->log);
    event_base_free(c->base);
    eb_fix_kafka_stop(&c->kafka);
    free(c);
    return 0;
}

static void test_group_two_members_split_the_units(void **state) {
    struct ctx *c = *state;
    c->m[0].g = join(c, &c->m[0]);
    loop_until(c, first_owns_all, 30000);
    c->m[1].g = join(c, &c->m[1]);
    loop_until(c, split_between_two, 30000);
    for (int u = 0; u < UNITS; u++)
        assert_true(eb_kafka_group_owns(c->m[0].g, u) != eb_kafka_group_owns(c->m[1].g, u));
    /* Balanced. (Cooperative-sticky would move only what must move; the
     * mock's coordinator instead makes the first member rejoin, which
     * librdkafka reports as a lost assignment: stickiness is tested on the
     * real Kafka cluster, tests/kafka.) */
    assert_int_equal(owned(&c->m[0]), 2);
}

static void test_group_member_that_leaves_hands_its_units_over(void **state) {
    struct ctx *c = *state;
    c->m[0].g = join(c, &c->m[0]);
    c->m[1].g = join(c, &c->m[1]);
    loop_until(c, split_between_two, 40000);
    /* The mock's rejoin while the two split the units may already have
     * been reported as a loss (see above): only the leave counts here. */
    int lost_before_leave = c->m[1].lost_calls;
    int64_t t0 = eb_fix_now_ms();
    eb_kafka_group_leave(c->m[1].g);
    loop_until(c, first_owns_all, 30000);
    int64_t took = eb_fix_now_ms() - t0;
    assert_int_equal(owned(&c->m[1]), 0);
    assert_int_equal(c->m[1].lost_calls, lost_before_leave); /* given up, not taken */
    /* Within the takeover target of two session timeouts (the mock holds
     * every rebalance round ~3 s, as a real group's first join is held). */
    if (took >= 2 * SESSION_MS)
        fail_msg("handover after leave took %lld ms", (long long)took);
}

static void test_group_lease_holds_while_commits_are_accepted(void **state) {
    struct ctx *c = *state;
    c->m[0].g = join(c, &c->m[0]);
    loop_until(c, first_owns_all, 30000);
    /* several lease lengths later the member still owns everything */
    int64_t until = eb_fix_now_ms() + 2 * SESSION_MS;
    while (eb_fix_now_ms() < until) {
        event_base_loop(c->base, EVLOOP_NONBLOCK);
        for (int u = 0; u < UNITS; u++)
            assert_true(eb_kafka_group_owns(c->m[0].g, u));
        usleep(20000); /* the loop is polled; this is the poll interval */
    }
}

/* ---- a paused member (child process) --------------------------------- */

/* The child: one member whose ownership it reports on a pipe whenever it
 * changes, as "<units owned> <leased> <assignments so far>" lines. */
static void child_member(struct ctx *c, int out) {
    struct member m = {0};
    c->base = event_base_new();
    m.g = join(c, &m);
    char last[32] = "";
    for (;;) {
        event_base_loop(c->base, EVLOOP_NONBLOCK);
        int own = 0;
        for (int u = 0; u < UNITS; u++)
            own += eb_kafka_group_owns(m.g, u);
        char line[32];
        snprintf(line, sizeof(line), "%d %d %d\n", own, (int)eb_kafka_group_leased(m.g),
                 m.assigned_calls);
        if (strcmp(line, last) != 0) {
            if (write(out, line, strlen(line)) < 0)
                _exit(1);
            snprintf(last, sizeof(last), "%s", line);
        }
        usleep(10000);
    }
}

static void test_group_paused_member_loses_its_lease_then_its_units(void **state) {
    struct ctx *c = *state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        c->in_child = true;
        close(p[0]);
        child_member(c, p[1]);
    }
    c->child = pid;
    close(p[1]);
    struct eb_fix_proc child = {.pid = pid, .stdin_fd = -1, .stdout_fd = p[0]};
    char line[64];
    int own = 0, leased = 0, assigned = 0;
    /* the child alone owns everything */
    do {
        assert_true(eb_fix_read_line(&child, line, sizeof(line), 30000));
        assert_int_equal(sscanf(line, "%d %d %d", &own, &leased, &assigned), 3);
    } while (own != UNITS);
    c->m[0].g = join(c, &c->m[0]);
    loop_until(c, first_owns_half, 40000);
    /* the child's report of giving half away */
    do {
        assert_true(eb_fix_read_line(&child, line, sizeof(line), 10000));
        assert_int_equal(sscanf(line, "%d %d %d", &own, &leased, &assigned), 3);
    } while (own != UNITS / 2);
    int assigned_before_pause = assigned;
    kill(pid, SIGSTOP);
    /* the coordinator gives the paused member's units away */
    loop_until(c, first_owns_all, 3 * SESSION_MS);
    kill(pid, SIGCONT);
    /* Resumed, the child claims no unit it lost: its lease lapsed while it
     * was paused, so it owns nothing until the group gives it units again
     * (a later assignment, counted, is its own). */
    bool saw_zero = false;
    int64_t deadline = eb_fix_now_ms() + 4 * SESSION_MS;
    while (eb_fix_now_ms() < deadline) {
        /* This process's member must answer the rebalance the child's
         * return starts: its loop runs between reads. (Blocked on the pipe
         * alone, the group never settled and the child's changing reports
         * kept the wait going until ctest's timeout.) */
        event_base_loop(c->base, EVLOOP_NONBLOCK);
        if (!eb_fix_read_line(&child, line, sizeof(line), 20))
            continue;
        assert_int_equal(sscanf(line, "%d %d %d", &own, &leased, &assigned), 3);
        if (own > 0 && assigned == assigned_before_pause)
            fail_msg("the resumed member claims units it lost: %s", line);
        if (own == 0)
            saw_zero = true;
        if (assigned > assigned_before_pause)
            break;
    }
    assert_true(saw_zero);
    eb_fix_stop(&child, SIGKILL, 1000);
    c->child = 0;
    close(p[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_two_members_split_the_units, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_member_that_leaves_hands_its_units_over,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_lease_holds_while_commits_are_accepted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_group_paused_member_loses_its_lease_then_its_units,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
