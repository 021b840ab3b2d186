/* main.c -- order-consumer: when expiry-bridge reports that an order's
 * payment timer expired, cancel the order if it is still unpaid and return
 * its stock, in PostgreSQL. The template for services that act on
 * expiry-bridge events; README.md explains the guarantees.
 *
 * One message, start to end:
 *   kafka.c  oc_kafka_poll()          the next message of our partitions
 *   event.c  oc_event_parse()         a checked event, or why it is malformed
 *   db.c     oc_db_apply()            one transaction: dedup, cancel, return stock
 *     or     oc_kafka_dead_letter()   malformed: a copy to <topic>.dlq, acknowledged
 *   kafka.c  oc_kafka_done()          only now may its offset be committed
 *
 * What can heal (the database is down, Kafka is down for the dead letter)
 * is retried for the same message with capped exponential backoff until it
 * works; a message is never skipped. A SIGTERM during those retries ends the
 * process without storing that message's offset: it is read again later.
 *
 * Signals: librdkafka starts threads, so SIGTERM, SIGINT and SIGHUP are
 * blocked before the first one exists and taken here with sigtimedwait(): no
 * handler ever runs, on any thread. This file only wires; it owns no SQL and
 * no Kafka calls.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "db.h"
#include "event.h"
#include "fault.h"
#include "kafka.h"
#include "log.h"
#include "options.h"

/* How long one poll waits for a message, which is also how late a SIGTERM
 * may be noticed while idle. */
#define POLL_TIMEOUT_MS 100
/* Retry delays: 100 ms doubling to 5 s. Short enough that a database back
 * after a restart is used within seconds, long enough that a consumer
 * group hammering a recovering database backs off. */
#define RETRY_FIRST_MS 100
#define RETRY_MAX_MS   5000

struct stats {
    long events, cancelled, not_pending, unknown_order, duplicates, dead_letters, retries;
};

struct app {
    oc_kafka_t *kafka;
    oc_db_t *db;
    sigset_t signals; /* blocked in every thread; taken by keep_running() */
    bool stop;
    struct stats stats;
};

/* Take any pending signal, waiting up to timeout_ms for one. Returns false
 * once SIGTERM or SIGINT was received. */
static bool keep_running(struct app *app, int timeout_ms) {
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    int sig = sigtimedwait(&app->signals, NULL, &ts);
    if ((sig == SIGTERM || sig == SIGINT) && !app->stop) {
        oc_log(OC_LOG_INFO, "stopping", "{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        app->stop = true;
    } else if (sig == SIGHUP) {
        oc_log(OC_LOG_INFO, "SIGHUP ignored: nothing to reload", NULL);
    }
    return !app->stop;
}

/* The n-th retry's delay: exponential, capped, with jitter in [d/2, d] so
 * that consumers retrying together drift apart. */
static int retry_delay_ms(int attempt) {
    int d = RETRY_FIRST_MS;
    while (--attempt > 0 && d < RETRY_MAX_MS)
        d *= 2;
    if (d > RETRY_MAX_MS)
        d = RETRY_MAX_MS;
    return d / 2 + (int)(random() % (d / 2 + 1));
}

static void count(struct stats *s, enum oc_outcome outcome) {
    s->events++;
    switch (outcome) {
    case OC_CANCELLED:
        s->cancelled++;
        break;
    case OC_NOT_PENDING:
        s->not_pending++;
        break;
    case OC_UNKNOWN_ORDER:
        s->unknown_order++;
        break;
    case OC_DUPLICATE:
        s->duplicates++;
        break;
    }
}

/* Apply a well-formed event, retrying until the transaction commits.
 * Returns false if a stop request came first (nothing was applied). */
static bool apply_event(struct app *app, const rd_kafka_message_t *m, const struct oc_event *ev) {
    struct oc_origin origin = {rd_kafka_topic_name(m->rkt), m->partition, m->offset};
    enum oc_outcome outcome;
    int lines;
    char err[512];

    for (int attempt = 1;
         oc_db_apply(app->db, ev, &origin, &outcome, &lines, err, sizeof(err)) != 0; attempt++) {
        int delay = retry_delay_ms(attempt);
        app->stats.retries++;
        oc_log(OC_LOG_WARN, "database error, will retry", "{s:s, s:s, s:i, s:i}", "error", err,
               "event_id", ev->id, "attempt", attempt, "retry_in_ms", delay);
        if (!keep_running(app, delay))
            return false;
    }
    oc_fault_after_db_commit(); /* test-only; a no-op unless EB_CONSUMER_FAULT is set */

    count(&app->stats, outcome);
    oc_log(outcome == OC_UNKNOWN_ORDER ? OC_LOG_WARN : OC_LOG_DEBUG, "event applied",
           "{s:s, s:I, s:s, s:s, s:i}", "event_id", ev->id, "order_id", (json_int_t)ev->order_id,
           "delivery", ev->delivery, "outcome", oc_outcome_name(outcome), "lines_returned", lines);
    return true;
}

/* Send a malformed message to the dead-letter topic, retrying until Kafka
 * acknowledges it. Returns false if a stop request came first. */
static bool dead_letter(struct app *app, const rd_kafka_message_t *m, const char *reason) {
    char err[512];
    oc_log(OC_LOG_WARN, "malformed event: sending it to the dead-letter topic",
           "{s:s, s:s, s:i, s:I}", "error", reason, "topic", rd_kafka_topic_name(m->rkt),
           "partition", (int)m->partition, "offset", (json_int_t)m->offset);
    for (int attempt = 1; oc_kafka_dead_letter(app->kafka, m, reason, err, sizeof(err)) != 0;
         attempt++) {
        int delay = retry_delay_ms(attempt);
        app->stats.retries++;
        oc_log(OC_LOG_WARN, "dead letter not delivered, will retry", "{s:s, s:i, s:i}", "error",
               err, "attempt", attempt, "retry_in_ms", delay);
        if (!keep_running(app, delay))
            return false;
    }
    app->stats.dead_letters++;
    return true;
}

/* Handle one message to the end, then let its offset be committed. Returns
 * false if a stop request interrupted it: its offset stays uncommitted. */
static bool handle(struct app *app, const rd_kafka_message_t *m) {
    struct oc_event ev;
    char why[512];
    bool done = oc_event_parse(m->payload, m->len, &ev, why, sizeof(why)) == 0
                    ? apply_event(app, m, &ev)
                    : dead_letter(app, m, why);
    if (done)
        oc_kafka_done(app->kafka, m);
    return done;
}

static void run(struct app *app) {
    while (keep_running(app, 0) && !oc_kafka_fatal(app->kafka)) {
        rd_kafka_message_t *m = oc_kafka_poll(app->kafka, POLL_TIMEOUT_MS);
        if (!m)
            continue;
        if (!handle(app, m)) {
            oc_log(OC_LOG_INFO,
                   "left unprocessed: its offset is not committed, it will be read again",
                   "{s:s, s:i, s:I}", "topic", rd_kafka_topic_name(m->rkt), "partition",
                   (int)m->partition, "offset", (json_int_t)m->offset);
            rd_kafka_message_destroy(m);
            break;
        }
        rd_kafka_message_destroy(m);
    }
}

static int migrate(struct app *app) {
    char err[512];
    if (oc_db_migrate(app->db, err, sizeof(err)) != 0) {
        oc_log(OC_LOG_ERROR, "migration failed", "{s:s}", "error", err);
        return OC_EXIT_FAILURE;
    }
    oc_log(OC_LOG_INFO, "schema is up to date", NULL);
    return OC_EXIT_OK;
}

static json_t *topics_json(const struct oc_options *opts) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < opts->ntopics; i++)
        json_array_append_new(a, json_string(opts->topics[i]));
    return a;
}

static int consume(struct app *app, const struct oc_options *opts) {
    char err[512];
    if (!(app->kafka = oc_kafka_new(opts, err, sizeof(err)))) {
        oc_log(OC_LOG_ERROR, "cannot create the Kafka clients", "{s:s}", "error", err);
        return OC_EXIT_FAILURE;
    }
    oc_log(OC_LOG_INFO, "started", "{s:s, s:s, s:o}", "brokers", opts->brokers, "group",
           opts->group, "topics", topics_json(opts));
    if (oc_db_connect(app->db, err, sizeof(err)) != 0)
        oc_log(OC_LOG_WARN, "database not ready yet; every event will retry until it is", "{s:s}",
               "error", err);

    run(app);

    int rc = oc_kafka_fatal(app->kafka) ? OC_EXIT_FAILURE : OC_EXIT_OK;
    oc_kafka_destroy(app->kafka); /* commits what is done, leaves the group */
    app->kafka = NULL;
    const struct stats *s = &app->stats;
    oc_log(OC_LOG_INFO, "stopped", "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "events",
           (json_int_t)s->events, "cancelled", (json_int_t)s->cancelled, "not_pending",
           (json_int_t)s->not_pending, "unknown_order", (json_int_t)s->unknown_order, "duplicates",
           (json_int_t)s->duplicates, "dead_letters", (json_int_t)s->dead_letters, "retries",
           (json_int_t)s->retries);
    return rc;
}

int main(int argc, char **argv) {
    struct oc_options opts;
    struct app app = {0};
    int rc = oc_options_parse(argc, argv, &opts);
    if (rc != 0) {
        oc_options_free(&opts);
        return rc > 0 ? OC_EXIT_OK : OC_EXIT_USAGE;
    }
    if (oc_fault_init() != 0) {
        oc_options_free(&opts);
        return OC_EXIT_USAGE;
    }
    if (opts.verbose)
        oc_log_set_level(OC_LOG_DEBUG);
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());

    /* Before any librdkafka thread exists, so every thread inherits the
     * mask and the signals wait for keep_running(). SIGPIPE: a peer closing
     * a socket is an error return, not a reason to die. */
    sigemptyset(&app.signals);
    sigaddset(&app.signals, SIGTERM);
    sigaddset(&app.signals, SIGINT);
    sigaddset(&app.signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &app.signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (!(app.db = oc_db_new(opts.conninfo))) {
        oc_log(OC_LOG_ERROR, "out of memory", NULL);
        rc = OC_EXIT_FAILURE;
    } else if (opts.migrate) {
        rc = migrate(&app);
    } else {
        rc = consume(&app, &opts);
    }
    oc_db_destroy(app.db);
    oc_options_free(&opts);
    return rc;
}
