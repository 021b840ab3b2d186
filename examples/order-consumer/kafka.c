/* kafka.c -- consumer-group member with manual offsets, and the dead-letter
 * producer (see kafka.h). */
#include "kafka.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "log.h"

/* A dead-letter message is given this long to be acknowledged before its
 * delivery report says it failed; the caller then retries. Bounded so that a
 * SIGTERM during a Kafka outage is noticed within seconds. */
#define DLQ_MESSAGE_TIMEOUT_MS "5000"
/* Longer than the message timeout, so the report arrives within the wait. */
#define DLQ_FLUSH_TIMEOUT_MS 10000

struct oc_kafka {
    rd_kafka_t *consumer;
    rd_kafka_t *producer; /* dead letters */
    int commit_interval_ms;
    int64_t last_commit_ms;
    bool uncommitted; /* offsets stored since the last commit */
    bool fatal;
    /* The dead letter being waited for: its delivery report sets dlq_err if
     * the message's opaque is dlq_seq. A report of an older, abandoned
     * attempt is ignored (a pointer to the waiter's stack frame could
     * outlive it). */
    uintptr_t dlq_seq;
    bool dlq_reported;
    rd_kafka_resp_err_t dlq_err;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "topic[partition]" for each entry, as a JSON array for a log field. */
static json_t *partitions_json(const rd_kafka_topic_partition_list_t *parts) {
    json_t *a = json_array();
    for (int i = 0; a && i < parts->cnt; i++) {
        char buf[300];
        snprintf(buf, sizeof(buf), "%s[%" PRId32 "]", parts->elems[i].topic,
                 parts->elems[i].partition);
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

/* ---- Callbacks (served on the main thread, see kafka.h) ----------------- */

/* librdkafka's own log lines become ours. @locality any librdkafka thread:
 * touches no state, and oc_log() is safe from any thread. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    enum oc_log_level l = level <= 3 ? OC_LOG_ERROR : level == 4 ? OC_LOG_WARN : OC_LOG_DEBUG;
    /* -X properties go to both clients; that a consumer property means
     * nothing to the producer is expected, not a warning. */
    if (strcmp(fac, "CONFWARN") == 0 && rd_kafka_type(rk) == RD_KAFKA_PRODUCER)
        l = OC_LOG_DEBUG;
    oc_log(l, "librdkafka", "{s:s, s:s, s:s}", "client", rd_kafka_name(rk), "facility", fac,
           "detail", buf);
}

/* Commit the stored offsets of the current assignment (offsets NULL). An
 * asynchronous commit reports through on_commit(); a synchronous one on a
 * temporary queue (rkqu NULL), so that on_commit() does not report it twice. */
static void commit(oc_kafka_t *k, bool async) {
    rd_kafka_resp_err_t err = async ? rd_kafka_commit(k->consumer, NULL, 1)
                                    : rd_kafka_commit_queue(k->consumer, NULL, NULL, NULL, NULL);
    k->uncommitted = false;
    k->last_commit_ms = now_ms();
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        oc_log(OC_LOG_WARN, "offset commit failed", "{s:s}", "error", rd_kafka_err2str(err));
}

/* Result of an asynchronous commit. A failed commit is tried again at the
 * next interval (the offsets are still stored); the usual failure is a
 * rebalance in progress, after which the next owner re-reads what was not
 * committed. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    oc_kafka_t *k = opaque;
    if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    k->uncommitted = true;
    oc_log(OC_LOG_WARN, "offset commit failed", "{s:s}", "error", rd_kafka_err2str(err));
}

/* Assignments and revocations. Messages are handled one at a time on this
 * same thread, so when this runs nothing is half-processed: everything
 * handled so far has its offset stored, and a revoke commits it before the
 * partitions go to another member. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    oc_kafka_t *k = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        oc_log(OC_LOG_INFO, "partitions assigned", "{s:o}", "partitions", partitions_json(parts));
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            assign_err = rd_kafka_assign(rk, parts);
        break;
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        oc_log(OC_LOG_INFO, "partitions revoked", "{s:o}", "partitions", partitions_json(parts));
        /* A lost assignment (session timed out) already belongs to another
         * member: committing would fail, and must not be tried. */
        if (!rd_kafka_assignment_lost(rk))
            commit(k, false);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            assign_err = rd_kafka_assign(rk, NULL);
        break;
    default:
        oc_log(OC_LOG_ERROR, "rebalance failed", "{s:s}", "error", rd_kafka_err2str(err));
        assign_err = rd_kafka_assign(rk, NULL);
        break;
    }
    if (error) {
        oc_log(OC_LOG_ERROR, "assign failed", "{s:s}", "error", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (assign_err) {
        oc_log(OC_LOG_ERROR, "assign failed", "{s:s}", "error", rd_kafka_err2str(assign_err));
    }
}

/* Delivery report of a dead letter, served by rd_kafka_flush(). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    oc_kafka_t *k = opaque;
    if ((uintptr_t)m->_private != k->dlq_seq)
        return;
    k->dlq_reported = true;
    k->dlq_err = m->err;
}

/* ---- Construction -------------------------------------------------------- */

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                    size_t errstr_size) {
    if (rd_kafka_conf_set(conf, key, value, errstr, errstr_size) == RD_KAFKA_CONF_OK)
        return 0;
    return -1;
}

/* The user's -X properties, "key=value" each. */
static int conf_set_props(rd_kafka_conf_t *conf, const struct oc_options *opts, char *errstr,
                          size_t errstr_size) {
    for (size_t i = 0; i < opts->nkafka_props; i++) {
        const char *kv = opts->kafka_props[i], *eq = strchr(kv, '=');
        char key[256], why[256];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        if (conf_set(conf, key, eq + 1, why, sizeof(why)) != 0) {
            snprintf(errstr, errstr_size, "-X %s: %s", kv, why);
            return -1;
        }
    }
    return 0;
}

static rd_kafka_t *new_consumer(oc_kafka_t *k, const struct oc_options *opts, char *errstr,
                                size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* A new group starts at the oldest event: timers that expired before the
     * first consumer ran must still cancel their orders. -X may change it. */
    if (conf_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size) != 0 ||
        conf_set_props(conf, opts, errstr, errstr_size) != 0)
        goto err_destroy_conf;
    /* Set after -X: the delivery guarantee depends on these. */
    if (conf_set(conf, "bootstrap.servers", opts->brokers, errstr, errstr_size) != 0 ||
        conf_set(conf, "group.id", opts->group, errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) != 0)
        goto err_destroy_conf;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);

    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!rk)
        goto err_destroy_conf;
    /* Serve everything (errors, commit results) from rd_kafka_consumer_poll(). */
    rd_kafka_poll_set_consumer(rk);
    return rk;

err_destroy_conf:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static rd_kafka_t *new_producer(oc_kafka_t *k, const struct oc_options *opts, char *errstr,
                                size_t errstr_size) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set_props(conf, opts, errstr, errstr_size) != 0)
        goto err_destroy_conf;
    /* Idempotence implies acks=all: "acknowledged" means every in-sync
     * replica has the dead letter, so committing past the original is safe. */
    if (conf_set(conf, "bootstrap.servers", opts->brokers, errstr, errstr_size) != 0 ||
        conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) != 0 ||
        conf_set(conf, "message.timeout.ms", DLQ_MESSAGE_TIMEOUT_MS, errstr, errstr_size) != 0)
        goto err_destroy_conf;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);

    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!rk)
        goto err_destroy_conf;
    return rk;

err_destroy_conf:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int subscribe(oc_kafka_t *k, const struct oc_options *opts, char *errstr,
                     size_t errstr_size) {
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)opts->ntopics);
    for (size_t i = 0; i < opts->ntopics; i++)
        rd_kafka_topic_partition_list_add(topics, opts->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(k->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err) {
        snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

oc_kafka_t *oc_kafka_new(const struct oc_options *opts, char *errstr, size_t errstr_size) {
    oc_kafka_t *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    k->commit_interval_ms = opts->commit_interval_ms;
    k->last_commit_ms = now_ms();
    if (!(k->producer = new_producer(k, opts, errstr, errstr_size)))
        goto err_free;
    if (!(k->consumer = new_consumer(k, opts, errstr, errstr_size)))
        goto err_destroy_producer;
    if (subscribe(k, opts, errstr, errstr_size) != 0)
        goto err_destroy_consumer;
    return k;

err_destroy_consumer:
    rd_kafka_destroy(k->consumer);
err_destroy_producer:
    rd_kafka_destroy(k->producer);
err_free:
    free(k);
    return NULL;
}

void oc_kafka_destroy(oc_kafka_t *k) {
    if (!k)
        return;
    /* What is done is committed before leaving; what is not stays
     * uncommitted and is read again by the next owner. */
    commit(k, false);
    rd_kafka_consumer_close(k->consumer); /* serves the final revoke */
    rd_kafka_destroy(k->consumer);
    rd_kafka_flush(k->producer, DLQ_FLUSH_TIMEOUT_MS);
    rd_kafka_destroy(k->producer);
    free(k);
}

/* ---- Consuming ------------------------------------------------------------ */

static void maybe_commit(oc_kafka_t *k) {
    if (k->uncommitted && now_ms() - k->last_commit_ms >= k->commit_interval_ms)
        commit(k, true);
}

rd_kafka_message_t *oc_kafka_poll(oc_kafka_t *k, int timeout_ms) {
    rd_kafka_message_t *m = rd_kafka_consumer_poll(k->consumer, timeout_ms);
    maybe_commit(k);
    if (!m || !m->err)
        return m;

    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(k->consumer, why, sizeof(why));
        oc_log(OC_LOG_ERROR, "kafka fatal error", "{s:s}", "error", why);
        k->fatal = true;
    } else {
        /* Transient (broker down, topic not created yet): librdkafka
         * recovers by itself. */
        oc_log(OC_LOG_WARN, "kafka error", "{s:s, s:s}", "error", rd_kafka_message_errstr(m),
               "topic", m->rkt ? rd_kafka_topic_name(m->rkt) : "");
    }
    rd_kafka_message_destroy(m);
    return NULL;
}

bool oc_kafka_fatal(const oc_kafka_t *k) {
    return k->fatal;
}

void oc_kafka_done(oc_kafka_t *k, const rd_kafka_message_t *m) {
    rd_kafka_resp_err_t err = rd_kafka_offset_store(m->rkt, m->partition, m->offset);
    if (err) /* the partition was taken away meanwhile: its new owner re-reads it */
        oc_log(OC_LOG_WARN, "offset not stored", "{s:s, s:s, s:i, s:I}", "error",
               rd_kafka_err2str(err), "topic", rd_kafka_topic_name(m->rkt), "partition",
               (int)m->partition, "offset", (json_int_t)m->offset);
    else
        k->uncommitted = true;
    maybe_commit(k);
}

/* ---- Dead letters --------------------------------------------------------- */

static rd_kafka_headers_t *dead_letter_headers(const rd_kafka_message_t *m, const char *reason) {
    rd_kafka_headers_t *orig = NULL, *h;
    /* The original headers first, unchanged, so a replay tool can restore
     * the message exactly; ours after them. */
    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
        h = rd_kafka_headers_copy(orig);
    else
        h = rd_kafka_headers_new(4);
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%" PRId32, m->partition);
    snprintf(offset, sizeof(offset), "%" PRId64, m->offset);
    rd_kafka_header_add(h, "error", -1, reason, -1);
    rd_kafka_header_add(h, "original.topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "original.partition", -1, partition, -1);
    rd_kafka_header_add(h, "original.offset", -1, offset, -1);
    return h;
}

int oc_kafka_dead_letter(oc_kafka_t *k, const rd_kafka_message_t *m, const char *reason,
                         char *errstr, size_t errstr_size) {
    char topic[512];
    snprintf(topic, sizeof(topic), "%s.dlq", rd_kafka_topic_name(m->rkt));
    rd_kafka_headers_t *headers = dead_letter_headers(m, reason);

    k->dlq_seq++;
    k->dlq_reported = false;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        k->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m->key, m->key_len),
        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE((void *)k->dlq_seq), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(headers); /* owned by librdkafka on success only */
        snprintf(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_flush(k->producer, DLQ_FLUSH_TIMEOUT_MS); /* serves on_delivery */
    if (!k->dlq_reported) {
        snprintf(errstr, errstr_size, "produce to %s: not acknowledged within %d ms", topic,
                 DLQ_FLUSH_TIMEOUT_MS);
        return -1;
    }
    if (k->dlq_err) {
        snprintf(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(k->dlq_err));
        return -1;
    }
    return 0;
}
