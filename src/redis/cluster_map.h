/* cluster_map.h -- which masters a Redis Cluster has and which slots each
 * serves, read from `CLUSTER SHARDS` (Redis >= 7.0, Valkey) or, on older
 * servers, from the text of `CLUSTER NODES`.
 *
 * Keyspace notifications are node-local: every master announces only the
 * expiries of its own keys, so the bridge subscribes to every master this
 * map names -- also a master that serves no slot yet (keys migrate into it
 * before the slot does, and expire there). Replicas are kept only as a
 * count: they never announce `expired`.
 *
 * The address of a node is the one the cluster announces (`endpoint`, else
 * `ip`); where the cluster does not know it (a node that never learnt its
 * own address answers "" or "?"), the address the map was read from is
 * used. With TLS the node's `tls-port` is used when the cluster announces
 * one.
 *
 * Parsing is pure: a reply or a text in, a map out, no I/O; every bound is
 * checked before it is read. Ownership: a map is owned by its caller and
 * freed with eb_cluster_map_free().
 */
#ifndef EB_CLUSTER_MAP_H
#define EB_CLUSTER_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/keyslot.h"

struct redisReply;

#define EB_CLUSTER_ID_LEN 40 /* a node id: 40 hex digits */

struct eb_cluster_master {
    char id[EB_CLUSTER_ID_LEN + 1];
    char *host; /* owned */
    int port;
    bool failed;      /* the cluster marks it failing (fail, or health not online) */
    size_t nslots;    /* slots it serves */
    size_t nreplicas; /* replicas the map lists for it */
};

struct eb_cluster_map {
    struct eb_cluster_master *masters; /* ordered by their lowest slot; slotless ones last */
    size_t nmasters;
    /* owner[slot] = index into masters + 1, or 0 for a slot nobody serves. */
    uint16_t owner[EB_KEYSLOT_COUNT];
};

/* Where the map was read from, for nodes whose address the cluster does
 * not know, and whether TLS ports are wanted. host is borrowed. */
struct eb_cluster_source {
    const char *host;
    int port;
    bool tls;
};

/* From a CLUSTER SHARDS reply (RESP2: a list of shards, each a flat list of
 * field, value pairs). Returns 0 and *out (the caller's), or EB_EPROTO with
 * a reason when the reply is not shaped as Redis documents it, or
 * EB_ENOMEM. r and src are borrowed for the call. */
int eb_cluster_map_from_shards(const struct redisReply *r, const struct eb_cluster_source *src,
                               struct eb_cluster_map **out, char *errstr, size_t errstr_size);

/* From the text of CLUSTER NODES (one node per line:
 * `id ip:port@cport[,hostname] flags master ping pong epoch link slot...`).
 * Returns as eb_cluster_map_from_shards(). */
int eb_cluster_map_from_nodes(const char *text, size_t len, const struct eb_cluster_source *src,
                              struct eb_cluster_map **out, char *errstr, size_t errstr_size);

/* The master serving slot, or NULL. */
const struct eb_cluster_master *eb_cluster_map_owner(const struct eb_cluster_map *m,
                                                     unsigned slot);

/* Slots no master serves (0 on a healthy cluster). */
size_t eb_cluster_map_unserved(const struct eb_cluster_map *m);

/* Index of the master with this id, or -1. */
int eb_cluster_map_find(const struct eb_cluster_map *m, const char *id);

/* NULL is a no-op. */
void eb_cluster_map_free(struct eb_cluster_map *m);

/* What an error reply of a Cluster (or replicated) node says about where
 * to send the command instead. */
enum eb_cluster_redirect_kind {
    EB_CLUSTER_REDIRECT_NONE = 0, /* not a redirection: the command's own error */
    EB_CLUSTER_REDIRECT_MOVED,    /* `MOVED slot host:port`: the slot lives there now */
    EB_CLUSTER_REDIRECT_ASK,      /* `ASK slot host:port`: migrating; ASKING, then there */
    /* TRYAGAIN, CLUSTERDOWN, READONLY (a demoted master), MASTERDOWN,
     * LOADING: this node cannot serve it now; ask again later, after
     * reading who serves what. */
    EB_CLUSTER_REDIRECT_RETRY,
};

#define EB_CLUSTER_REDIRECT_HOST_MAX 255

struct eb_cluster_redirect {
    enum eb_cluster_redirect_kind kind;
    unsigned slot; /* MOVED, ASK */
    /* MOVED, ASK: the node; host is "" when the node does not know its
     * own address (`MOVED 3999 :6380`, or `?`): the one asked, then. */
    char host[EB_CLUSTER_REDIRECT_HOST_MAX + 1];
    int port;
};

/* Read the text of an error reply, err[0..len) (no NUL needed). Returns
 * out->kind; a MOVED or ASK whose slot or address is malformed is NONE.
 * Pure. */
enum eb_cluster_redirect_kind eb_cluster_redirect_parse(const char *err, size_t len,
                                                        struct eb_cluster_redirect *out);

#endif
