/* handover.h -- the exact cut between two replicas' turns on one master.
 *
 * With coordination (kafka_group.h) one replica owns a unit at a time, but
 * "at a time" on the group's clock is not a point in the master's stream
 * of notifications: the replica giving a unit up and the one taking it
 * over would each produce some notifications twice, or neither produce
 * some. Redis itself supplies the cut. A node sends its pub/sub messages
 * to every subscriber in one order -- keyevents and PUBLISHed messages
 * alike -- so a replica that takes a unit over PUBLISHes a *marker* (a
 * token of its own and the node's name) on the deployment's handover
 * channel on that node once it is subscribed there, and the rule is:
 *
 *     a source produces the notifications that follow its own marker in
 *     its stream, up to the next marker of anybody else.
 *
 * The replica giving the unit up reads on until it meets the taker's
 * marker, the taker produces from its own: every notification in the
 * stream is produced by exactly one of them -- no gap, no copy -- however
 * the two are timed, paused or slowed. Two replicas that both believe they
 * own a unit (one of them stale) take turns instead of producing twice.
 * What is lost is only what no subscribed replica was producing: after a
 * crash, the notifications between the crash and the taker's marker.
 *
 * A (re)subscription starts a new stream: nothing is produced on it until
 * this replica's own marker comes back through it. Markers of other nodes
 * (a Cluster forwards every PUBLISH to every node) are ignored.
 *
 * This module is the state machine only; redis_source.c subscribes to the
 * channel, publishes markers and asks it whether to produce.
 *
 * Ownership: the handle is owned by its creator (eb_handover_destroy()).
 *
 * @locality any thread, one handle per thread (the loop thread in use).
 */
#ifndef EB_REDIS_HANDOVER_H
#define EB_REDIS_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct eb_handover eb_handover_t;

/* The handover channel of a coordination group (one per deployment, so
 * two deployments on one Redis do not cut each other's turns): written to
 * buf, NUL-terminated. Returns its length, or 0 when it does not fit. */
size_t eb_handover_channel(const char *group, char *buf, size_t size);

/* Longest marker eb_handover_claim() writes, for a node name of node_len. */
#define EB_HANDOVER_MARKER_MAX(node_len) (17 + (node_len) + 1)

/* Parse a marker "<16 hex digits> <node>": the token in *token and the
 * node name as a pointer into payload (*node, *node_len). false for
 * anything else (a foreign publisher on the channel). */
bool eb_handover_marker_parse(const char *payload, size_t len, uint64_t *token,
                              const char **node, size_t *node_len);

/* A handle for one source on node `node` (copied); token identifies this
 * source's markers (random, never 0). NULL when out of memory. */
eb_handover_t *eb_handover_new(const char *node, uint64_t token);

/* NULL is a no-op. */
void eb_handover_destroy(eb_handover_t *h);

/* A new subscription: its stream has no marker of ours yet, so nothing is
 * produced, and a claim may be made on it. */
void eb_handover_subscribed(eb_handover_t *h);

/* The connection was lost: nothing is produced until the next
 * subscription's own marker. */
void eb_handover_unsubscribed(eb_handover_t *h);

/* The marker to PUBLISH now, written to buf (NUL-terminated), or 0 when
 * none is due: not subscribed, releasing, or claimed on this subscription
 * already and not cut off since by another replica's marker. Writing one
 * marks the claim as made. */
size_t eb_handover_claim(eb_handover_t *h, char *buf, size_t size);

/* A message read on the handover channel (any payload). Returns true when
 * it changed whether this source produces. */
bool eb_handover_on_marker(eb_handover_t *h, const char *payload, size_t len);

/* Whether the notification read now is this source's to produce. */
bool eb_handover_producing(const eb_handover_t *h);

/* The unit was given up: produce on until another replica's marker, or
 * until deadline_ns (CLOCK_MONOTONIC) when none comes; claim no more. */
void eb_handover_release(eb_handover_t *h, int64_t deadline_ns);

/* The unit is this replica's again (before the release ended): it may
 * claim once more. */
void eb_handover_reclaim(eb_handover_t *h);

/* A release that is over: the taker's marker was read, the deadline
 * passed (then production stops here), or nothing was being produced. */
bool eb_handover_released(eb_handover_t *h, int64_t now_ns);

#endif
