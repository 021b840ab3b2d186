/* kafka_group.c -- unit ownership through a Kafka consumer group (contract
 * and failure model in kafka_group.h).
 *
 * One librdkafka consumer whose events -- rebalances, commit results,
 * errors, admin results -- are served on the loop thread: librdkafka writes
 * a byte to a pipe when its queues become non-empty and libevent wakes us.
 * A timer every heartbeat interval serves them too (librdkafka wants a
 * consumer polled at least every max.poll.interval.ms) and sends the
 * commit that renews the lease.
 *
 * @locality loop thread only; librdkafka's own threads only log.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/error.h"
#include "kafka/kafka_group.h"
#include "kafka/kafka_props.h"

/* How long one admin request (create or grow the control topic) may take
 * before librdkafka gives up on it; the next set_units() asks again. */
#define ADMIN_TIMEOUT_MS 10000

enum gstate { G_IDLE, G_JOINING, G_MEMBER, G_LEAVING, G_LEFT };

static const char *const gstate_names[] = {"idle", "joining", "member", "leaving", "left"};

/* What librdkafka's callbacks see as their opaque. It outlives the group:
 * when the handle is destroyed after the group (on a reaper thread, say),
 * librdkafka may still log or, closing a consumer that was not closed, run
 * the rebalance callback -- with g NULL by then, they do the least that
 * librdkafka requires and touch nothing else. */
struct group_ref {
    eb_log_t *log; /* thread-safe */
    struct eb_kafka_group *g;
};

struct eb_kafka_group {
    struct event_base *base;
    struct group_ref *ref;
    rd_kafka_t *rk;
    rd_kafka_queue_t *cq;    /* the consumer queue: rebalances, commits, errors */
    rd_kafka_queue_t *admq;  /* admin results */
    int wake[2];             /* librdkafka -> loop */
    struct event *wake_ev;   /* wake[0] readable */
    struct event *tick_ev;   /* every heartbeat interval */
    char *topic;
    int units;               /* partitions wanted */
    int partitions_asked;    /* the largest count already requested */
    int rf;
    int session_ms, hb_ms;
    enum gstate state;
    bool owned[EB_KAFKA_GROUP_MAX_UNITS];
    size_t nowned;
    bool commit_inflight;
    int64_t commit_sent_ns;  /* of the commit in flight */
    int64_t lease_from_ns;   /* send time of the last accepted commit (or assignment) */
    bool lease_lapsed_logged;
    eb_log_t *log;
    const struct eb_kafka_group_handlers *h;
    void *opaque;
    eb_series_t *m_owned, *m_assigned, *m_revoked, *m_lost, *m_lapses;
};

/* ------------------------------------------------------------------------
 * Ownership bookkeeping
 * --------------------------------------------------------------------- */

static int64_t lease_ns(const eb_kafka_group_t *g) {
    return ((int64_t)g->session_ms - 2 * (int64_t)g->hb_ms) * 1000000;
}

bool eb_kafka_group_leased(const eb_kafka_group_t *g) {
    if (g->nowned == 0)
        return true;
    return eb_mono_ns() - g->lease_from_ns < lease_ns(g);
}

bool eb_kafka_group_assigned(const eb_kafka_group_t *g, int32_t u) {
    return u >= 0 && u < EB_KAFKA_GROUP_MAX_UNITS && g->owned[u];
}

bool eb_kafka_group_owns(const eb_kafka_group_t *g, int32_t u) {
    return u >= 0 && u < EB_KAFKA_GROUP_MAX_UNITS && g->owned[u] && eb_kafka_group_leased(g);
}

/* Units of a partition list of our topic, ascending, into out (n). */
static size_t units_of(const eb_kafka_group_t *g, const rd_kafka_topic_partition_list_t *parts,
                       int32_t *out) {
    size_t n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        int32_t p = parts->elems[i].partition;
        if (strcmp(parts->elems[i].topic, g->topic) == 0 && p >= 0 &&
            p < EB_KAFKA_GROUP_MAX_UNITS)
            out[n++] = p;
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: a handful of units */
        int32_t v = out[i];
        size_t j = i;
        while (j > 0 && out[j - 1] > v) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = v;
    }
    return n;
}

static void set_owned(eb_kafka_group_t *g, const int32_t *units, size_t n, bool owned) {
    for (size_t i = 0; i < n; i++) {
        if (g->owned[units[i]] != owned) {
            g->owned[units[i]] = owned;
            g->nowned += owned ? 1 : (size_t)-1;
        }
    }
    eb_metrics_set(g->m_owned, (double)g->nowned);
}

/* Every owned unit, lost at once (a refused commit, a lost assignment). */
static void lose_all(eb_kafka_group_t *g, const char *why) {
    int32_t units[EB_KAFKA_GROUP_MAX_UNITS];
    size_t n = 0;
    for (int32_t u = 0; u < EB_KAFKA_GROUP_MAX_UNITS; u++) {
        if (g->owned[u])
            units[n++] = u;
    }
    if (n == 0)
        return;
    eb_log(g->log, EB_LOG_WARN, "coordination: units lost; producing for them stops now",
           eb_lf_int("units", (int64_t)n), eb_lf_str("cause", why));
    set_owned(g, units, n, false);
    eb_metrics_add(g->m_lost, (double)n);
    g->h->on_revoked(units, n, true, g->opaque);
}

/* ------------------------------------------------------------------------
 * librdkafka callbacks (served by rd_kafka_consumer_poll on the loop)
 * --------------------------------------------------------------------- */

static void log_units(eb_kafka_group_t *g, const char *msg, const int32_t *units, size_t n) {
    char list[256];
    size_t w = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && w < sizeof(list) - 12; i++)
        w += (size_t)snprintf(list + w, sizeof(list) - w, "%s%" PRId32, i ? "," : "", units[i]);
    eb_log(g->log, EB_LOG_INFO, msg, eb_lf_str("units", list), eb_lf_int("owned", (int64_t)g->nowned),
           eb_lf_str("group_state", gstate_names[g->state]));
}

static void assign_units(eb_kafka_group_t *g, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk) ? rd_kafka_rebalance_protocol(rk) : "",
                       "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    if (coop)
        e = rd_kafka_incremental_assign(rk, parts);
    else
        rd_kafka_assign(rk, parts);
    if (e) {
        eb_log(g->log, EB_LOG_ERROR, "coordination: assignment failed",
               eb_lf_str("detail", rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
        return;
    }
    int32_t units[EB_KAFKA_GROUP_MAX_UNITS];
    size_t n = units_of(g, parts, units);
    bool joined = g->state == G_JOINING;
    if (joined)
        g->state = G_MEMBER;
    /* An assignment is the coordinator's word that we are a member now. */
    g->lease_from_ns = eb_mono_ns();
    set_owned(g, units, n, true);
    if (n > 0) {
        eb_metrics_add(g->m_assigned, (double)n);
        log_units(g, "coordination: units assigned", units, n);
    } else if (joined) {
        eb_log(g->log, EB_LOG_INFO,
               "coordination: joined as a standby (the other replicas own every unit; this one "
               "takes units over when one of them leaves)");
    }
    /* Even an empty one: the first says this replica is a member -- a
     * standby, ready -- when the others own every unit. */
    g->h->on_assigned(units, n, g->opaque);
}

static void revoke_units(eb_kafka_group_t *g, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts) {
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk) ? rd_kafka_rebalance_protocol(rk) : "",
                       "COOPERATIVE") == 0;
    bool lost = rd_kafka_assignment_lost(rk);
    int32_t units[EB_KAFKA_GROUP_MAX_UNITS];
    size_t n = units_of(g, parts, units);
    int32_t mine[EB_KAFKA_GROUP_MAX_UNITS];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (g->owned[units[i]])
            mine[m++] = units[i];
    }
    if (m) {
        set_owned(g, mine, m, false);
        eb_metrics_add(lost ? g->m_lost : g->m_revoked, (double)m);
        log_units(g, lost ? "coordination: units lost" : "coordination: units revoked", mine, m);
        g->h->on_revoked(mine, m, lost, g->opaque);
    }
    if (coop) {
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

/* @locality loop thread (rd_kafka_consumer_poll). */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    eb_kafka_group_t *g = ((struct group_ref *)opaque)->g;
    if (!g) {
        /* the group is gone: give everything back, as librdkafka needs */
        if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS &&
            strcmp(rd_kafka_rebalance_protocol(rk) ? rd_kafka_rebalance_protocol(rk) : "",
                   "COOPERATIVE") == 0) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e)
                rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign_units(g, rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        revoke_units(g, rk, parts);
    } else {
        eb_log(g->log, EB_LOG_ERROR, "coordination: rebalance failed",
               eb_lf_str("detail", rd_kafka_err2str(err)));
        lose_all(g, rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
    }
}

/* The coordinator no longer knows this member: its units belong to others.
 * (ILLEGAL_GENERATION is not that: a commit sent just before a rebalance
 * this member takes part in carries the old generation -- measured on the
 * mock when a second member joins; the rebalance callback says what moves.) */
static bool fenced(rd_kafka_resp_err_t err) {
    return err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
           err == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

/* @locality loop thread (rd_kafka_consumer_poll). */
static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    eb_kafka_group_t *g = ((struct group_ref *)opaque)->g;
    (void)rk;
    (void)offsets;
    if (!g)
        return;
    g->commit_inflight = false;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (!eb_kafka_group_leased(g))
            eb_log(g->log, EB_LOG_INFO, "coordination: lease renewed",
                   eb_lf_int("units", (int64_t)g->nowned));
        g->lease_from_ns = g->commit_sent_ns;
        g->lease_lapsed_logged = false;
    } else if (fenced(err)) {
        lose_all(g, rd_kafka_err2str(err));
    }
    /* Anything else (a rebalance in progress, the coordinator moving): the
     * lease is not renewed; the next tick tries again. */
}

/* @locality librdkafka's threads: only the thread-safe logger. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    const struct group_ref *ref = rd_kafka_opaque(rk);
    enum eb_log_level l = level <= 3 ? EB_LOG_ERROR : level <= 4 ? EB_LOG_WARN : EB_LOG_DEBUG;
    eb_log(ref->log, l, "coordination: librdkafka", eb_lf_str("facility", fac),
           eb_lf_str("detail", buf));
}

/* ------------------------------------------------------------------------
 * Serving librdkafka's queues
 * --------------------------------------------------------------------- */

static void admin_result(eb_kafka_group_t *g, rd_kafka_event_t *ev) {
    const char *what = rd_kafka_event_name(ev);
    const rd_kafka_topic_result_t **res = NULL;
    size_t n = 0;
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    else if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATEPARTITIONS_RESULT)
        res = rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev),
                                                      &n);
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    for (size_t i = 0; err == 0 && i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        /* "exists already" and "has that many already" are the usual answers */
        if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS ||
            e == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS || e == 0)
            continue;
        eb_log(g->log, EB_LOG_WARN,
               "coordination: the control topic could not be created or grown; create it "
               "with at least as many partitions as units",
               eb_lf_str("topic", g->topic), eb_lf_int("units", g->units),
               eb_lf_str("request", what), eb_lf_str("detail", rd_kafka_topic_result_error_string(res[i])));
    }
    if (err)
        eb_log(g->log, EB_LOG_WARN, "coordination: admin request failed",
               eb_lf_str("topic", g->topic), eb_lf_str("request", what),
               eb_lf_str("detail", rd_kafka_event_error_string(ev)));
}

static void serve(eb_kafka_group_t *g) {
    rd_kafka_message_t *m;
    while (g->rk && (m = rd_kafka_consumer_poll(g->rk, 0))) {
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eb_log(g->log, EB_LOG_DEBUG, "coordination: consumer event",
                   eb_lf_str("detail", rd_kafka_message_errstr(m)));
        rd_kafka_message_destroy(m);
    }
    rd_kafka_event_t *ev;
    while (g->admq && (ev = rd_kafka_queue_poll(g->admq, 0))) {
        admin_result(g, ev);
        rd_kafka_event_destroy(ev);
    }
    if (g->state == G_LEAVING && rd_kafka_consumer_closed(g->rk)) {
        g->state = G_LEFT;
        eb_log(g->log, EB_LOG_INFO, "coordination: left the group");
    }
}

/* @locality loop thread (libevent). */
static void on_wake(evutil_socket_t fd, short what, void *arg) {
    char buf[64];
    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    serve(arg);
}

static void send_commit(eb_kafka_group_t *g) {
    if (g->commit_inflight || g->nowned == 0 || g->state != G_MEMBER)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)g->nowned);
    for (int32_t u = 0; u < EB_KAFKA_GROUP_MAX_UNITS; u++) {
        if (g->owned[u])
            rd_kafka_topic_partition_list_add(l, g->topic, u)->offset = 0;
    }
    g->commit_sent_ns = eb_mono_ns();
    if (rd_kafka_commit(g->rk, l, 1) == RD_KAFKA_RESP_ERR_NO_ERROR)
        g->commit_inflight = true;
    rd_kafka_topic_partition_list_destroy(l);
}

/* @locality loop thread (libevent timer). */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    eb_kafka_group_t *g = arg;
    (void)fd;
    (void)what;
    serve(g);
    if (g->nowned && !eb_kafka_group_leased(g) && !g->lease_lapsed_logged) {
        g->lease_lapsed_logged = true;
        eb_metrics_inc(g->m_lapses);
        eb_log(g->log, EB_LOG_WARN,
               "coordination: lease lapsed (no commit accepted lately); this replica takes no "
               "master over until Kafka confirms it still owns its units (what it reads in its "
               "turn is still produced)",
               eb_lf_int("units", (int64_t)g->nowned),
               eb_lf_int("since_ms", (eb_mono_ns() - g->lease_from_ns) / 1000000));
    }
    /* A commit that never came back (a broker gone mid-request) must not
     * block every later one. */
    if (g->commit_inflight && eb_mono_ns() - g->commit_sent_ns > lease_ns(g))
        g->commit_inflight = false;
    send_commit(g);
}

/* ------------------------------------------------------------------------
 * Control topic
 * --------------------------------------------------------------------- */

static void ask_partitions(eb_kafka_group_t *g) {
    if (g->units <= g->partitions_asked)
        return;
    char err[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(g->topic, g->units, g->rf, err, sizeof(err));
    rd_kafka_NewPartitions_t *np = rd_kafka_NewPartitions_new(g->topic, (size_t)g->units, err,
                                                              sizeof(err));
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(g->rk, RD_KAFKA_ADMIN_OP_ANY);
    if (nt && np && o) {
        rd_kafka_AdminOptions_set_request_timeout(o, ADMIN_TIMEOUT_MS, err, sizeof(err));
        /* Both go out: creating a topic that exists and growing one to a
         * count it has are refused harmlessly, and neither answer needs the
         * topic's metadata first (which only a blocking call gives). */
        rd_kafka_CreateTopics(g->rk, &nt, 1, o, g->admq);
        rd_kafka_CreatePartitions(g->rk, &np, 1, o, g->admq);
        g->partitions_asked = g->units;
    }
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_NewPartitions_destroy(np);
    rd_kafka_AdminOptions_destroy(o);
}

void eb_kafka_group_set_units(eb_kafka_group_t *g, int units) {
    if (units < 1)
        units = 1;
    if (units > EB_KAFKA_GROUP_MAX_UNITS)
        units = EB_KAFKA_GROUP_MAX_UNITS;
    g->units = units;
    if (g->state == G_JOINING || g->state == G_MEMBER)
        ask_partitions(g);
}

/* ------------------------------------------------------------------------
 * Lifecycle
 * --------------------------------------------------------------------- */

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr,
               size_t errstr_size) {
    char rkerr[256];
    if (rd_kafka_conf_set(conf, k, v, rkerr, sizeof(rkerr)) != RD_KAFKA_CONF_OK)
        return eb_error_set(errstr, errstr_size, EB_ECONFIG, "coordination consumer: %s: %s", k,
                            rkerr);
    return 0;
}

/* Does a kafka.client property concern how to reach and talk to the
 * brokers (security, sockets, metadata), and so the group's consumer too?
 * The rest (linger.ms, acks, compression...) is the producer's: given to a
 * consumer, librdkafka would warn about each at every start. */
static bool connection_property(const char *key) {
    static const char *const prefixes[] = {
        "security.", "ssl.", "ssl_", "sasl.", "socket.", "broker.", "client.",
        "connections.", "reconnect.", "retry.backoff", "metadata.", "topic.metadata.",
        "api.version", "enable.ssl", "enable.sasl", "https.", "debug",
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++) {
        if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    }
    return false;
}

/* The user's connection properties (see above), as eb_kafka_props_apply(). */
static int apply_connection_props(rd_kafka_conf_t *conf, const struct eb_kafka_group_conf *c,
                                  char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < c->nclient; i++) {
        if (connection_property(c->client[i].key) &&
            eb_kafka_props_apply(conf, &c->client[i], 1, NULL, errstr, errstr_size) != 0)
            return EB_ECONFIG;
    }
    return 0;
}

static rd_kafka_conf_t *build_conf(eb_kafka_group_t *g, const struct eb_kafka_group_conf *c,
                                   char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char ms[32], hb[32];
    snprintf(ms, sizeof(ms), "%d", c->session_timeout_ms);
    snprintf(hb, sizeof(hb), "%d", c->heartbeat_interval_ms);
    if (!conf)
        return NULL;
    /* The user's connection properties first; the group's own settings
     * after, so they cannot be overridden by accident. */
    if (apply_connection_props(conf, c, errstr, errstr_size) != 0 ||
        set(conf, "bootstrap.servers", c->brokers, errstr, errstr_size) ||
        set(conf, "group.id", c->group_id, errstr, errstr_size) ||
        set(conf, "partition.assignment.strategy", "cooperative-sticky", errstr, errstr_size) ||
        set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
        set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
        set(conf, "allow.auto.create.topics", "false", errstr, errstr_size) ||
        set(conf, "session.timeout.ms", ms, errstr, errstr_size) ||
        /* Partitions added for new masters are seen (and assigned) within
         * a session timeout, not librdkafka's default five minutes. */
        set(conf, "topic.metadata.refresh.interval.ms", ms, errstr, errstr_size) ||
        set(conf, "heartbeat.interval.ms", hb, errstr, errstr_size) ||
        set(conf, "log.connection.close", "false", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_opaque(conf, g->ref);
    return conf;
}

static bool register_metrics(eb_kafka_group_t *g, eb_metrics_t *m) {
    eb_metric_t *owned = eb_metrics_register(
        m, EB_METRIC_GAUGE, "eb_coordination_units_owned",
        "Units (Redis masters with their ledgers) this replica owns in the coordination group",
        NULL, NULL, 0);
    eb_metric_t *changes = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_coordination_unit_changes_total",
        "Units this replica gained (assigned), gave up (revoked) or had taken away (lost)",
        "kind", NULL, 0);
    eb_metric_t *lapses = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_coordination_lease_lapses_total",
        "Times no commit was accepted for longer than the lease: until Kafka confirmed "
        "ownership again, this replica took no master over (docs/ha.md)",
        NULL, NULL, 0);
    if (!owned || !changes || !lapses)
        return false;
    g->m_owned = eb_metrics_series0(owned);
    g->m_assigned = eb_metrics_series(changes, (const char *const[]){"assigned"});
    g->m_revoked = eb_metrics_series(changes, (const char *const[]){"revoked"});
    g->m_lost = eb_metrics_series(changes, (const char *const[]){"lost"});
    g->m_lapses = eb_metrics_series0(lapses);
    return g->m_owned && g->m_assigned && g->m_revoked && g->m_lost && g->m_lapses;
}

eb_kafka_group_t *eb_kafka_group_new(struct event_base *base,
                                     const struct eb_kafka_group_conf *c, char *errstr,
                                     size_t errstr_size) {
    if (!base || !c || !c->brokers || !c->group_id || !c->topic || !c->handlers ||
        c->session_timeout_ms <= 2 * c->heartbeat_interval_ms || c->heartbeat_interval_ms <= 0) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                     "coordination needs brokers, a group, a topic, handlers, and a session "
                     "timeout longer than two heartbeat intervals");
        return NULL;
    }
    eb_kafka_group_t *g = calloc(1, sizeof(*g));
    if (!g) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    g->base = base;
    g->wake[0] = g->wake[1] = -1;
    g->ref = calloc(1, sizeof(*g->ref));
    if (!g->ref) {
        free(g);
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    g->ref->log = c->log;
    g->ref->g = g;
    g->topic = strdup(c->topic);
    g->units = c->units > 0 ? c->units : 1;
    g->rf = c->replication_factor;
    g->session_ms = c->session_timeout_ms;
    g->hb_ms = c->heartbeat_interval_ms;
    g->log = c->log;
    g->h = c->handlers;
    g->opaque = c->opaque;
    if (!g->topic || !register_metrics(g, c->metrics)) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free;
    }
    rd_kafka_conf_t *conf = build_conf(g, c, errstr, errstr_size);
    if (!conf)
        goto err_free;
    char rkerr[512];
    g->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rkerr, sizeof(rkerr));
    if (!g->rk) {
        rd_kafka_conf_destroy(conf);
        eb_error_set(errstr, errstr_size, EB_EKAFKA, "coordination consumer: %s", rkerr);
        goto err_free;
    }
    rd_kafka_poll_set_consumer(g->rk);
    g->cq = rd_kafka_queue_get_consumer(g->rk);
    g->admq = rd_kafka_queue_new(g->rk);
    if (pipe2(g->wake, O_NONBLOCK | O_CLOEXEC) != 0 || !g->cq || !g->admq) {
        eb_error_set(errstr, errstr_size, EB_EIO, "coordination: cannot make a wakeup pipe");
        goto err_free;
    }
    rd_kafka_queue_io_event_enable(g->cq, g->wake[1], "1", 1);
    rd_kafka_queue_io_event_enable(g->admq, g->wake[1], "1", 1);
    g->wake_ev = event_new(base, g->wake[0], EV_READ | EV_PERSIST, on_wake, g);
    g->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, g);
    if (!g->wake_ev || !g->tick_ev) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free;
    }
    return g;

err_free:
    eb_kafka_group_destroy(g, NULL, NULL);
    return NULL;
}

int eb_kafka_group_start(eb_kafka_group_t *g, char *errstr, size_t errstr_size) {
    if (g->state != G_IDLE)
        return eb_error_set(errstr, errstr_size, EB_ESTATE, "coordination already started");
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, g->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(g->rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (err)
        return eb_error_set(errstr, errstr_size, EB_EKAFKA, "coordination: subscribe to %s: %s",
                            g->topic, rd_kafka_err2str(err));
    g->state = G_JOINING;
    ask_partitions(g);
    struct timeval tv = eb_ms_tv(g->hb_ms);
    event_add(g->wake_ev, NULL);
    event_add(g->tick_ev, &tv);
    eb_log(g->log, EB_LOG_INFO, "coordination: joining the group", eb_lf_str("topic", g->topic),
           eb_lf_int("units", g->units), eb_lf_int("session_timeout_ms", g->session_ms));
    return 0;
}

void eb_kafka_group_leave(eb_kafka_group_t *g) {
    if (!g || g->state == G_LEAVING || g->state == G_LEFT)
        return;
    if (g->state == G_IDLE) {
        g->state = G_LEFT;
        return;
    }
    g->state = G_LEAVING;
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(g->rk, g->cq);
    if (e) {
        eb_log(g->log, EB_LOG_WARN, "coordination: leaving the group failed",
               eb_lf_str("detail", rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
        lose_all(g, "leaving");
        g->state = G_LEFT;
        return;
    }
    eb_log(g->log, EB_LOG_INFO, "coordination: leaving the group; the others take its units",
           eb_lf_int("units", (int64_t)g->nowned));
    serve(g);
}

bool eb_kafka_group_left(const eb_kafka_group_t *g) {
    return !g || g->state == G_LEFT;
}

const char *eb_kafka_group_state_name(const eb_kafka_group_t *g) {
    return gstate_names[g->state];
}

void eb_kafka_group_destroy(eb_kafka_group_t *g,
                            void (*destroy_rk)(rd_kafka_t *rk, void *mem, void *arg), void *arg) {
    if (!g)
        return;
    g->ref->g = NULL; /* from here librdkafka's callbacks find no group */
    if (g->wake_ev)
        event_free(g->wake_ev);
    if (g->tick_ev)
        event_free(g->tick_ev);
    if (g->cq) {
        rd_kafka_queue_io_event_enable(g->cq, -1, NULL, 0);
        rd_kafka_queue_destroy(g->cq);
    }
    if (g->admq) {
        rd_kafka_queue_io_event_enable(g->admq, -1, NULL, 0);
        rd_kafka_queue_destroy(g->admq);
    }
    if (g->rk && destroy_rk) {
        destroy_rk(g->rk, g->ref, arg); /* frees ref after the handle */
    } else {
        if (g->rk)
            rd_kafka_destroy(g->rk);
        free(g->ref);
    }
    if (g->wake[0] >= 0)
        close(g->wake[0]);
    if (g->wake[1] >= 0)
        close(g->wake[1]);
    free(g->topic);
    free(g);
}
