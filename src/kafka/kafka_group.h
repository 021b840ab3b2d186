/* kafka_group.h -- which units of work this replica owns, decided by Kafka's
 * consumer group protocol, as Kafka Connect assigns tasks to workers.
 *
 * A unit is one Redis master's notifications plus the ledgers it holds
 * (DESIGN §5). Every replica of the bridge joins one consumer group on a
 * small control topic whose partition i stands for unit i; the group's
 * coordinator gives each partition to exactly one live member, and
 * librdkafka's rebalance callbacks say what this replica gained and lost.
 * Nothing is ever produced to or consumed from the control topic: only its
 * partitions and the membership matter. The assignor is cooperative-sticky,
 * so a member joining or leaving moves only the partitions that must move.
 *
 * Failure model. The coordinator gives a member's partitions away when it
 * has not heard a heartbeat for session_timeout (a crash, a partition from
 * Kafka, a paused process), or at once when the member leaves (SIGTERM).
 * A member cut off from Kafka may not know yet; so it holds a lease: it
 * commits (offset 0) to the partitions it owns every heartbeat interval,
 * and a commit the coordinator accepted proves membership when it was
 * sent. The lease runs from the send of the last accepted commit for
 * session_timeout - 2 x heartbeat_interval: before the coordinator can have
 * given the partitions away (it waits session_timeout after the last
 * heartbeat, and heartbeats go out every heartbeat_interval). A replica
 * takes a master's stream over (publishes its handover marker, handover.h)
 * only while eb_kafka_group_leased() is true; a commit refused because the
 * coordinator no longer knows the member ends ownership at once, as a lost
 * assignment does. Where one replica's turn on a master ends and the next
 * one's begins is decided by the markers in the master's own stream, not
 * by the group's clock: the lease only keeps a replica that may have been
 * replaced from cutting its successor's turn.
 *
 * The control topic is created when missing (CreateTopics) and grown when
 * there are more units than partitions (CreatePartitions); both are
 * requests whose refusals ("already exists", "already has N") are the
 * normal answer. Where the brokers forbid it, create the topic with enough
 * partitions beforehand.
 *
 * Ownership: the handle is owned by its creator (eb_kafka_group_destroy());
 * conf strings are copied; log, metrics, handlers and opaque are borrowed
 * for the handle's life.
 *
 * @locality every function and every callback runs on the loop thread
 * (librdkafka's events are served there through a wakeup pipe).
 */
#ifndef EB_KAFKA_GROUP_H
#define EB_KAFKA_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/metrics.h"

struct event_base;
struct eb_kv;
struct rd_kafka_s;
typedef struct eb_kafka_group eb_kafka_group_t;

/* Most units (partitions of the control topic) one group handles: a
 * cluster of more masters than this is split over several deployments. */
#define EB_KAFKA_GROUP_MAX_UNITS 1024

struct eb_kafka_group_handlers {
    /* Units gained (ascending), once per assignment -- n may be 0: the
     * first assignment makes this replica a member even when it gains
     * nothing (a standby). The owner subscribes to them and sweeps their
     * ledgers. */
    void (*on_assigned)(const int32_t *units, size_t n, void *opaque);
    /* Units lost (ascending): revoked in a rebalance (lost == false: this
     * replica may finish what it has in flight) or taken away without
     * asking (lost == true: the group moved on, or a commit was refused;
     * stop producing for them now). */
    void (*on_revoked)(const int32_t *units, size_t n, bool lost, void *opaque);
};

struct eb_kafka_group_conf {
    const char *brokers;        /* bootstrap.servers; copied */
    const struct eb_kv *client; /* extra librdkafka properties (kafka.client); copied */
    size_t nclient;
    const char *group_id; /* the consumer group every replica joins; copied */
    const char *topic;    /* the control topic; copied */
    int units;            /* partitions wanted (>= 1): the current number of units */
    int session_timeout_ms;
    int heartbeat_interval_ms;
    int replication_factor; /* of a control topic the bridge creates; -1: the brokers' default */
    eb_log_t *log;
    eb_metrics_t *metrics;
    const struct eb_kafka_group_handlers *handlers;
    void *opaque;
};

/* Build the consumer (does not join yet). NULL + errstr on an invalid
 * property or when out of memory. */
eb_kafka_group_t *eb_kafka_group_new(struct event_base *base,
                                     const struct eb_kafka_group_conf *conf, char *errstr,
                                     size_t errstr_size);

/* Join the group: create the control topic if missing, subscribe. 0 or an
 * EB_E* code with the reason in errstr. */
int eb_kafka_group_start(eb_kafka_group_t *g, char *errstr, size_t errstr_size);

/* There are now `units` units: grow the control topic when it has fewer
 * partitions. */
void eb_kafka_group_set_units(eb_kafka_group_t *g, int units);

/* True while unit u is assigned to this replica (whatever the lease says):
 * what it should be subscribed to. */
bool eb_kafka_group_assigned(const eb_kafka_group_t *g, int32_t u);

/* True while this replica owns unit u and its lease holds (see above): what
 * it may produce for. */
bool eb_kafka_group_owns(const eb_kafka_group_t *g, int32_t u);

/* True while the lease holds: the last accepted commit was sent less than
 * session_timeout - 2 x heartbeat_interval ago (also true before the first
 * assignment, when there is nothing to own). */
bool eb_kafka_group_leased(const eb_kafka_group_t *g);

/* Leave the group now (SIGTERM): the coordinator gives this replica's
 * units to the others at once; on_revoked runs for them. Asynchronous:
 * eb_kafka_group_left() turns true when done. Safe to call twice. */
void eb_kafka_group_leave(eb_kafka_group_t *g);
bool eb_kafka_group_left(const eb_kafka_group_t *g);

/* "joining", "member", "leaving", "left": for logs and /readyz. */
const char *eb_kafka_group_state_name(const eb_kafka_group_t *g);

/* Destroy. The librdkafka handle is given to destroy_rk with the memory
 * its callbacks still reach (mem: free it after destroying rk), e.g. for a
 * reaper thread, since rd_kafka_destroy can block; with destroy_rk NULL it
 * is destroyed here. NULL is a no-op. No handler runs during or after it. */
void eb_kafka_group_destroy(eb_kafka_group_t *g,
                            void (*destroy_rk)(struct rd_kafka_s *rk, void *mem, void *arg),
                            void *arg);

#endif
