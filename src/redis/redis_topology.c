/* redis_topology.c -- one keyevent source per master, following who the
 * masters are (contract in redis_topology.h, operations in
 * docs/topology.md).
 *
 * Discovery (Sentinel, Cluster) runs on a *probe*: a command connection to
 * one sentinel or cluster node at a time. When it fails, the next candidate
 * is tried (each sentinel in turn; the seeds, then the masters last seen),
 * so one dead seed or sentinel costs one connect timeout, not the bridge.
 * Its answers are applied as a difference against the units there are.
 *
 * A unit's source is never destroyed where it was decided: it is stopped
 * at once (no notification after that) and destroyed on the next turn of
 * the loop, because the decision may come from inside one of its own
 * callbacks (redis_client.h: no freeing inside hiredis).
 *
 * Ownership: the topology owns its units, their sources, the probe, the
 * sentinel hint subscriber, their resolver and, for a rediss URL, the TLS
 * context they all connect with (freed after them).
 *
 * @locality loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "config/redis_url.h"
#include "core/clock.h"
#include "core/error.h"
#include "redis/cluster_map.h"
#include "redis/redis_client.h"
#include "redis/redis_reply.h"
#include "redis/redis_resolve.h"
#include "redis/redis_tls.h"
#include "redis/redis_topology.h"

/* A discovery failure of the same kind is logged at most this often. */
#define LOG_EVERY_MS 30000

struct unit {
    struct eb_redis_topology *t;
    struct eb_redis_unit info; /* info.host points at host */
    char *host;
    int lowest_slot; /* Cluster: the slot it is ranked by; -1 otherwise */
    /* When the question was sent whose answer last named this node the
     * master (Sentinel, Cluster; 0 standalone): a failover that replaced it
     * happened after that, so a gap handed over starts no later. */
    int64_t confirmed_ns;
    eb_redis_source_t *src;
    enum eb_redis_state state;
    bool releasing; /* given up; src reads on until the next owner's marker */
};

/* A stopped unit's source, destroyed on the next turn of the loop. */
struct retired {
    struct retired *next;
    eb_redis_source_t *src;
};

/* A gap a removed unit leaves to whoever takes over its slots. */
struct handover {
    int lowest_slot;
    int64_t since_ns;
};

struct eb_redis_topology {
    struct event_base *base;

    /* conf, copied */
    struct eb_redis_url target;
    char *username, *password, *sentinel_username, *sentinel_password;
    bool all_databases;
    int *databases;
    size_t ndatabases;
    uint64_t events;
    bool configure_notifications;
    int connect_timeout_ms, heartbeat_interval_ms, heartbeat_timeout_ms;
    int reconnect_min_ms, reconnect_max_ms, interval_ms;
    char *handover_channel; /* NULL without coordination */
    int handover_grace_ms;
    eb_redis_tls_t *tls; /* rediss: every connection's TLS; else NULL */
    bool tls_insecure;
    eb_strpool_t *names;
    eb_log_t *log;
    eb_metrics_t *metrics;
    const struct eb_redis_topology_handlers *h;
    void *opaque;

    struct unit **units;
    size_t nunits, cap;
    struct eb_cluster_map *map; /* Cluster: the last map applied, for slot owners */
    struct retired *retired;
    struct event *ev_reap; /* destroys what was retired; rotates the probe */
    struct event *ev_poll; /* every topology_interval */

    /* discovery (Sentinel, Cluster) */
    eb_redis_resolver_t *resolver;
    eb_redis_client_t *probe, *hint, *old_probe, *old_hint;
    struct eb_redis_down_log probe_log;
    struct eb_redis_addr *candidates; /* sentinels, or seeds + masters seen */
    size_t ncandidates, next_candidate;
    bool probe_busy, poll_again, rotate, use_nodes;
    int64_t asked_ns; /* when the question in flight was sent */
    int64_t last_error_log_ms;
    char last_error[160];

    enum eb_redis_state state;
    bool started, stopped, destroying;
    eb_series_t *m_added, *m_removed, *m_errors;
};

static void poll_now(eb_redis_topology_t *t);
static void probe_query(eb_redis_topology_t *t);
static bool owned(const eb_redis_topology_t *t, const struct unit *u);
static int64_t unit_retire(eb_redis_topology_t *t, struct unit *u);
static void unit_released(eb_redis_topology_t *t, struct unit *u);
static bool unit_open(eb_redis_topology_t *t, struct unit *u, int64_t gap_since_ns,
                      const char *gap_cause);

/* Tell the owner the units (or, on Cluster, the slots' owners) changed. */
static void units_changed(eb_redis_topology_t *t) {
    if (t->h->on_units_changed && !t->destroying)
        t->h->on_units_changed(t->opaque);
}

/* ------------------------------------------------------------------------
 * Aggregate state
 * --------------------------------------------------------------------- */

/* An owned unit is ready once subscribed and (coordination) producing. */
static bool unit_ready(const struct unit *u) {
    return u->state == EB_REDIS_SUBSCRIBED && eb_redis_source_producing(u->src);
}

static enum eb_redis_state aggregate(const eb_redis_topology_t *t) {
    if (t->stopped)
        return EB_REDIS_STOPPED;
    size_t subscribed = 0;
    bool waiting = t->probe && eb_redis_client_state(t->probe) == EB_REDIS_CLIENT_WAITING &&
                   t->nunits == 0;
    size_t mine = 0;
    for (size_t i = 0; i < t->nunits; i++) {
        const struct unit *u = t->units[i];
        if (!u->src || u->releasing)
            continue; /* another replica's, or becoming so */
        mine++;
        subscribed += unit_ready(u);
        waiting |= u->state == EB_REDIS_WAITING;
    }
    /* Owning nothing while others own everything is a standby: ready. */
    if ((mine > 0 && subscribed == mine) || (mine == 0 && t->nunits > 0 && t->h->owns))
        return EB_REDIS_SUBSCRIBED;
    return waiting ? EB_REDIS_WAITING : EB_REDIS_CONNECTING;
}

static void update_state(eb_redis_topology_t *t) {
    enum eb_redis_state st = aggregate(t);
    if (st == t->state)
        return;
    t->state = st;
    if (t->h->on_state && !t->destroying)
        t->h->on_state(st, t->opaque);
}

enum eb_redis_state eb_redis_topology_state(const eb_redis_topology_t *t) {
    return t->state;
}

size_t eb_redis_topology_units(const eb_redis_topology_t *t, size_t *owned_n,
                                size_t *subscribed) {
    size_t n = 0, o = 0;
    for (size_t i = 0; i < t->nunits; i++) {
        const struct unit *u = t->units[i];
        bool mine = u->src && !u->releasing;
        o += mine;
        n += mine && unit_ready(u);
    }
    if (owned_n)
        *owned_n = o;
    if (subscribed)
        *subscribed = n;
    return t->nunits;
}

const struct eb_redis_unit *eb_redis_topology_unit(const eb_redis_topology_t *t, size_t i) {
    return i < t->nunits ? &t->units[i]->info : NULL;
}

bool eb_redis_topology_is_cluster(const eb_redis_topology_t *t) {
    return t->target.topology == EB_REDIS_CLUSTER;
}

const struct eb_redis_unit *eb_redis_topology_node_for_slot(const eb_redis_topology_t *t,
                                                            unsigned slot) {
    if (t->target.topology != EB_REDIS_CLUSTER)
        return t->nunits ? &t->units[0]->info : NULL;
    const struct eb_cluster_master *cm = t->map ? eb_cluster_map_owner(t->map, slot) : NULL;
    if (!cm)
        return NULL;
    for (size_t i = 0; i < t->nunits; i++) {
        if (t->units[i]->info.port == cm->port && strcasecmp(t->units[i]->host, cm->host) == 0)
            return &t->units[i]->info;
    }
    return NULL;
}

/* A unit given up: hand it over (redis_source.h) -- at once when nothing of
 * it is being produced, else when the next owner's marker comes through. */
static void unit_give_up(eb_redis_topology_t *t, struct unit *u) {
    if (u->releasing)
        return;
    eb_log(t->log, EB_LOG_INFO, "redis topology: unit given up; handing it over",
           eb_lf_int("unit", u->info.id), eb_lf_str("node", u->info.node));
    u->releasing = true;
    if (eb_redis_source_release(u->src, t->handover_grace_ms))
        unit_released(t, u);
}

size_t eb_redis_topology_sources(const eb_redis_topology_t *t) {
    size_t n = 0;
    for (size_t i = 0; i < t->nunits; i++)
        n += t->units[i]->src != NULL;
    return n;
}

void eb_redis_topology_ownership_changed(eb_redis_topology_t *t) {
    if (t->stopped)
        return;
    for (size_t i = 0; i < t->nunits; i++) {
        struct unit *u = t->units[i];
        if (u->src && !owned(t, u)) {
            unit_give_up(t, u);
        } else if (u->src && u->releasing) {
            eb_log(t->log, EB_LOG_INFO, "redis topology: unit owned again before its handover ended",
                   eb_lf_int("unit", u->info.id), eb_lf_str("node", u->info.node));
            u->releasing = false;
            eb_redis_source_reclaim(u->src);
        } else if (!u->src && owned(t, u)) {
            eb_log(t->log, EB_LOG_INFO, "redis topology: unit taken over; subscribing",
                   eb_lf_int("unit", u->info.id), eb_lf_str("node", u->info.node));
            unit_open(t, u, 0, NULL);
        }
    }
    update_state(t);
}

/* ------------------------------------------------------------------------
 * Units
 * --------------------------------------------------------------------- */

/* @locality loop thread, inside a unit's source (hot path). */
static void unit_notification(const struct eb_notification *n, void *opaque) {
    const struct unit *u = opaque;
    u->t->h->on_notification(n, u->t->opaque);
}

/* @locality loop thread, inside a unit's source. */
static void unit_state(enum eb_redis_state st, void *opaque) {
    struct unit *u = opaque;
    eb_redis_topology_t *t = u->t;
    u->state = st;
    u->info.subscribed = st == EB_REDIS_SUBSCRIBED;
    if (st == EB_REDIS_SUBSCRIBED && t->h->on_unit_subscribed && !t->destroying)
        t->h->on_unit_subscribed(&u->info, t->opaque);
    /* A unit that lost its master may be looking at a failed-over node:
     * ask the sentinels or the cluster now rather than at the next poll. */
    if (st == EB_REDIS_WAITING)
        poll_now(t);
    update_state(t);
}

/* The unit's turn began or ended (handover.h): readiness follows it.
 * @locality loop thread, inside a unit's source. */
static void unit_turn(bool producing, void *opaque) {
    struct unit *u = opaque;
    (void)producing;
    update_state(u->t);
}

/* May the unit's source claim it (publish its handover marker)? Only
 * while this replica owns it. @locality loop thread, inside the source. */
static bool unit_may_claim(void *opaque) {
    const struct unit *u = opaque;
    const eb_redis_topology_t *t = u->t;
    return !u->releasing && owned(t, u) &&
           (!t->h->may_claim || t->h->may_claim(u->info.id, t->opaque));
}

/* The handover of a unit given up is over: its source goes.
 * @locality loop thread, inside the unit's source. */
static void unit_source_released(void *opaque) {
    struct unit *u = opaque;
    unit_released(u->t, u);
}

static void unit_released(eb_redis_topology_t *t, struct unit *u) {
    if (!u->releasing || !u->src)
        return;
    eb_log(t->log, EB_LOG_INFO, "redis topology: unit handed over; unsubscribing",
           eb_lf_int("unit", u->info.id), eb_lf_str("node", u->info.node));
    unit_retire(t, u);
    u->releasing = false;
    u->state = EB_REDIS_STOPPED;
    if (t->h->on_unit_released && !t->destroying)
        t->h->on_unit_released(&u->info, t->opaque);
    update_state(t);
}

static void unit_free(struct unit *u) {
    if (!u)
        return;
    free(u->host);
    free(u);
}

/* Stop u's source (no notification after this) and destroy it on the next
 * turn of the loop. Returns the gap it hands over (see redis_source.h). */
static int64_t unit_retire(eb_redis_topology_t *t, struct unit *u) {
    int64_t since = 0;
    if (u->src) {
        since = eb_redis_source_stop_handover(u->src);
        struct retired *r = calloc(1, sizeof(*r));
        if (r) {
            r->src = u->src;
            r->next = t->retired;
            t->retired = r;
            event_active(t->ev_reap, 0, 0);
        } else {
            eb_redis_source_destroy(u->src); /* out of memory: stopped, so safe enough */
        }
        u->src = NULL;
    }
    u->releasing = false;
    return since;
}

static struct unit *unit_new(eb_redis_topology_t *t, int32_t id, const char *host, int port,
                             int lowest_slot) {
    char node[300];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(node, sizeof(node), "%s%.256s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    struct unit *u = calloc(1, sizeof(*u));
    if (u) {
        u->t = t;
        u->host = strdup(host);
        u->info.node = eb_strpool_intern(t->names, node);
    }
    if (!u || !u->host || !u->info.node) {
        unit_free(u);
        return NULL;
    }
    u->info.id = id;
    u->info.host = u->host;
    u->info.port = port;
    u->lowest_slot = lowest_slot;
    u->state = EB_REDIS_STOPPED;
    return u;
}

static bool owned(const eb_redis_topology_t *t, const struct unit *u) {
    return eb_redis_topology_owns(t, u->info.id);
}

bool eb_redis_topology_owns(const eb_redis_topology_t *t, int32_t unit) {
    return !t->h->owns || t->h->owns(unit, t->opaque);
}

/* Give u its keyevent source and start it (a started topology), when this
 * replica owns u and it has none. gap_since_ns/gap_cause: a gap it takes
 * over (redis_source.h). false when out of memory (logged). */
static bool unit_open(eb_redis_topology_t *t, struct unit *u, int64_t gap_since_ns,
                      const char *gap_cause) {
    if (u->src || !owned(t, u))
        return true;
    char err[256];
    struct eb_redis_source_conf sc = {
        .host = u->host,
        .port = u->info.port,
        .node = u->info.node,
        .unit = u->info.id,
        .role_interval_ms = t->interval_ms,
        .refuse_cluster = t->target.topology == EB_REDIS_STANDALONE,
        .gap_since_ns = gap_since_ns,
        .gap_cause = gap_cause,
        .username = t->username,
        .password = t->password,
        .tls = t->tls,
        .all_databases = t->all_databases,
        .databases = t->databases,
        .ndatabases = t->ndatabases,
        .events = t->events,
        .configure_notifications = t->configure_notifications,
        .connect_timeout_ms = t->connect_timeout_ms,
        .heartbeat_interval_ms = t->heartbeat_interval_ms,
        .heartbeat_timeout_ms = t->heartbeat_timeout_ms,
        .reconnect_min_ms = t->reconnect_min_ms,
        .reconnect_max_ms = t->reconnect_max_ms,
        .log = t->log,
        .metrics = t->metrics,
        .handover_channel = t->handover_channel,
        .may_claim = unit_may_claim,
        .on_turn = unit_turn,
        .on_released = unit_source_released,
        .on_notification = unit_notification,
        .on_state = unit_state,
        .opaque = u,
    };
    u->src = eb_redis_source_new(t->base, &sc, err, sizeof(err));
    if (!u->src) {
        eb_log(t->log, EB_LOG_ERROR, "redis topology: cannot subscribe to a master",
               eb_lf_str("node", u->info.node), eb_lf_str("error", err));
        return false;
    }
    u->state = EB_REDIS_CONNECTING;
    if (t->started && !t->stopped)
        eb_redis_source_start(u->src);
    return true;
}

static bool units_reserve(eb_redis_topology_t *t, size_t n) {
    if (n <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 4;
    while (cap < n)
        cap *= 2;
    struct unit **p = realloc(t->units, cap * sizeof(*p));
    if (!p)
        return false;
    t->units = p;
    t->cap = cap;
    return true;
}

/* Add a unit, and open it when this replica owns it. */
static bool unit_add(eb_redis_topology_t *t, int32_t id, const char *host, int port,
                     int lowest_slot, int64_t gap_since_ns, const char *cause) {
    if (!units_reserve(t, t->nunits + 1))
        return false;
    struct unit *u = unit_new(t, id, host, port, lowest_slot);
    if (!u) {
        eb_log(t->log, EB_LOG_ERROR, "redis topology: cannot add a master (out of memory)",
               eb_lf_str("host", host), eb_lf_int("port", port));
        return false;
    }
    t->units[t->nunits++] = u;
    eb_metrics_inc(t->m_added);
    unit_open(t, u, gap_since_ns, cause);
    return true;
}

/* Remove units[i]; returns the gap it hands over. */
static int64_t unit_remove(eb_redis_topology_t *t, size_t i) {
    struct unit *u = t->units[i];
    int64_t since = unit_retire(t, u);
    /* The master it served was replaced no earlier than the last answer
     * naming it: expiries the successor announced since then were missed. */
    if (since > 0 && u->confirmed_ns > 0 && u->confirmed_ns < since)
        since = u->confirmed_ns;
    memmove(&t->units[i], &t->units[i + 1], (t->nunits - i - 1) * sizeof(*t->units));
    t->nunits--;
    eb_metrics_inc(t->m_removed);
    unit_free(u);
    return since;
}

/* ------------------------------------------------------------------------
 * Applying what discovery found
 * --------------------------------------------------------------------- */

/* Sentinel: the master is at host:port now. */
static void apply_master(eb_redis_topology_t *t, const char *host, int port) {
    if (t->nunits == 1 && t->units[0]->info.port == port &&
        strcasecmp(t->units[0]->host, host) == 0) {
        t->units[0]->confirmed_ns = t->asked_ns;
        return;
    }
    const char *was = t->nunits ? t->units[0]->info.node : NULL;
    int64_t since = t->nunits ? unit_remove(t, 0) : 0;
    eb_log(t->log, was ? EB_LOG_WARN : EB_LOG_INFO,
           was ? "redis sentinel: the master moved; following it"
               : "redis sentinel: master found",
           eb_lf_str("master_name", t->target.master_name), eb_lf_str("was", was ? was : ""),
           eb_lf_str("host", host), eb_lf_int("port", port));
    if (unit_add(t, 0, host, port, -1, since, "failover (Sentinel switched the master)"))
        t->units[t->nunits - 1]->confirmed_ns = t->asked_ns;
    units_changed(t);
    update_state(t);
}

static int64_t take_handover(struct handover *ho, size_t nho, int lowest) {
    for (size_t i = 0; i < nho; i++) {
        if (ho[i].lowest_slot == lowest && lowest >= 0) {
            int64_t s = ho[i].since_ns;
            ho[i].lowest_slot = -2; /* taken */
            return s;
        }
    }
    return 0;
}

static int lowest_slot_of(const struct eb_cluster_map *m, size_t i) {
    for (unsigned s = 0; s < EB_KEYSLOT_COUNT; s++) {
        if (m->owner[s] == i + 1)
            return (int)s;
    }
    return -1;
}

static struct unit *find_unit(eb_redis_topology_t *t, const char *host, int port, size_t *at) {
    for (size_t i = 0; i < t->nunits; i++) {
        if (t->units[i]->info.port == port && strcasecmp(t->units[i]->host, host) == 0) {
            if (at)
                *at = i;
            return t->units[i];
        }
    }
    return NULL;
}

/* Remember the masters as discovery candidates for the next probe. */
static void remember_masters(eb_redis_topology_t *t, const struct eb_cluster_map *m) {
    size_t seeds = t->target.nnodes, want = seeds + m->nmasters;
    struct eb_redis_addr *c = calloc(want, sizeof(*c));
    if (!c)
        return;
    size_t n = 0;
    for (size_t i = 0; i < seeds; i++)
        c[n++] = t->target.nodes[i];
    for (size_t i = 0; i < m->nmasters; i++) {
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = c[j].port == m->masters[i].port && strcasecmp(c[j].host, m->masters[i].host) == 0;
        if (!dup && (c[n].host = strdup(m->masters[i].host))) {
            c[n].port = m->masters[i].port;
            n++;
        }
    }
    if (t->candidates != t->target.nodes) {
        for (size_t i = seeds; i < t->ncandidates; i++)
            free(t->candidates[i].host);
        free(t->candidates);
    }
    t->candidates = c;
    t->ncandidates = n;
}

/* True when a and b name the same masters (in the same order) serving
 * the same slots. */
static bool same_map(const struct eb_cluster_map *a, const struct eb_cluster_map *b) {
    if (!a || !b || a->nmasters != b->nmasters ||
        memcmp(a->owner, b->owner, sizeof(a->owner)) != 0)
        return false;
    for (size_t i = 0; i < a->nmasters; i++) {
        if (a->masters[i].port != b->masters[i].port ||
            strcasecmp(a->masters[i].host, b->masters[i].host) != 0)
            return false;
    }
    return true;
}

/* Cluster: make the units the masters of m (taken), as a difference; m is
 * kept as the map slots are looked up in. */
static void apply_map(eb_redis_topology_t *t, struct eb_cluster_map *m) {
    struct handover ho[64];
    size_t nho = 0, before = t->nunits;
    bool changed = !same_map(t->map, m);
    /* Gone first: a master no longer listed (failed and replaced, removed,
     * demoted) hands its gap to whoever serves its lowest slot now. */
    for (size_t i = t->nunits; i-- > 0;) {
        struct unit *u = t->units[i];
        bool listed = false;
        for (size_t k = 0; k < m->nmasters && !listed; k++)
            listed = m->masters[k].port == u->info.port &&
                     strcasecmp(m->masters[k].host, u->host) == 0;
        if (listed)
            continue;
        eb_log(t->log, EB_LOG_WARN, "redis cluster: a master is gone; unsubscribing from it",
               eb_lf_str("node", u->info.node), eb_lf_int("unit", u->info.id));
        int lowest = u->lowest_slot;
        int64_t since = unit_remove(t, i);
        changed = true;
        if (nho < sizeof(ho) / sizeof(ho[0]))
            ho[nho++] = (struct handover){lowest, since};
    }
    for (size_t k = 0; k < m->nmasters; k++) {
        const struct eb_cluster_master *cm = &m->masters[k];
        int lowest = lowest_slot_of(m, k);
        struct unit *u = find_unit(t, cm->host, cm->port, NULL);
        if (u) {
            u->info.id = (int32_t)k; /* ranks shift when masters come and go */
            u->lowest_slot = lowest;
            u->confirmed_ns = t->asked_ns;
            continue;
        }
        int64_t since = take_handover(ho, nho, lowest);
        eb_log(t->log, since ? EB_LOG_WARN : EB_LOG_INFO,
               since ? "redis cluster: a new master took over slots; subscribing to it"
                     : "redis cluster: master found; subscribing to it",
               eb_lf_str("host", cm->host), eb_lf_int("port", cm->port), eb_lf_int("unit", (int64_t)k),
               eb_lf_int("slots", (int64_t)cm->nslots), eb_lf_bool("failed", cm->failed));
        if (unit_add(t, (int32_t)k, cm->host, cm->port, lowest, since,
                     "failover (another node serves the slots now)"))
            t->units[t->nunits - 1]->confirmed_ns = t->asked_ns;
        changed = true;
    }
    remember_masters(t, m);
    eb_cluster_map_free(t->map);
    t->map = m;
    if (changed || t->nunits != before)
        units_changed(t);
    if (t->h->on_units)
        t->h->on_units(t->nunits, t->opaque);
    update_state(t);
}

/* ------------------------------------------------------------------------
 * The probe: one sentinel or cluster node at a time
 * --------------------------------------------------------------------- */

/* A discovery problem, said at most once per LOG_EVERY_MS per kind. */
static void discovery_error(eb_redis_topology_t *t, const char *msg, const char *detail,
                            const char *hint) {
    eb_metrics_inc(t->m_errors);
    int64_t now = eb_mono_ms();
    if (strcmp(t->last_error, msg) == 0 && now - t->last_error_log_ms < LOG_EVERY_MS)
        return;
    snprintf(t->last_error, sizeof(t->last_error), "%s", msg);
    t->last_error_log_ms = now;
    eb_log(t->log, EB_LOG_ERROR, msg, eb_lf_str("detail", detail ? detail : ""),
           eb_lf_str("hint", hint ? hint : ""), eb_lf_str("setting", "redis.url"));
}

/* A reply was handled: ask again if something asked meanwhile. */
static void reply_done(eb_redis_topology_t *t) {
    if (t->poll_again && !t->stopped) {
        t->poll_again = false;
        probe_query(t);
    }
}

static void on_sentinel_reply(const redisReply *r, void *opaque) {
    eb_redis_topology_t *t = opaque;
    t->probe_busy = false;
    if (!r || t->stopped)
        return;
    const char *host;
    int port;
    if (eb_redis_reply_master_addr(r, &host, &port)) {
        apply_master(t, host, port);
        reply_done(t);
        return;
    }
    if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY && r->elements == 0))
        discovery_error(t, "redis sentinel does not know the master name", t->target.master_name,
                        EB_REDIS_SENTINEL_NAME_HINT);
    else
        discovery_error(t, "redis sentinel answered unexpectedly",
                        eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "not host, port",
                        NULL);
    t->rotate = true; /* another sentinel may know better */
    event_active(t->ev_reap, 0, 0);
}

static void on_cluster_reply(const redisReply *r, void *opaque) {
    eb_redis_topology_t *t = opaque;
    t->probe_busy = false;
    if (!r || t->stopped)
        return;
    if (eb_redis_reply_is_error(r)) {
        const char *text = eb_redis_reply_text(r);
        if (!t->use_nodes && (strcasestr(text, "unknown subcommand") || strcasestr(text, "unknown command"))) {
            t->use_nodes = true; /* Redis < 7: CLUSTER NODES */
            poll_now(t);
            return;
        }
        discovery_error(t, strcasestr(text, "cluster support disabled")
                               ? "redis.url is a redis-cluster:// URL but the node is not in "
                                 "cluster mode"
                               : "redis cluster topology could not be read",
                        text, "use redis:// for a standalone server");
        return;
    }
    const char *host = eb_redis_client_host(t->probe);
    struct eb_cluster_source src = {host, eb_redis_client_port(t->probe), t->target.tls};
    struct eb_cluster_map *m = NULL;
    char err[256];
    int rc = t->use_nodes
                 ? (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS
                        ? eb_cluster_map_from_nodes(r->str, r->len, &src, &m, err, sizeof(err))
                        : eb_error_set(err, sizeof(err), EB_EPROTO, "CLUSTER NODES is not text"))
                 : eb_cluster_map_from_shards(r, &src, &m, err, sizeof(err));
    if (rc != 0) {
        discovery_error(t, "redis cluster topology could not be read", err, NULL);
        return;
    }
    apply_map(t, m);
    reply_done(t);
}

static void probe_query(eb_redis_topology_t *t) {
    if (!t->probe || t->probe_busy || t->stopped ||
        eb_redis_client_state(t->probe) != EB_REDIS_CLIENT_READY)
        return;
    int rc;
    if (t->target.topology == EB_REDIS_SENTINEL) {
        const char *argv[] = {"SENTINEL", "get-master-addr-by-name", t->target.master_name};
        rc = eb_redis_client_command(t->probe, -1, on_sentinel_reply, t, 3, argv, NULL);
    } else {
        const char *argv[] = {"CLUSTER", t->use_nodes ? "NODES" : "SHARDS"};
        rc = eb_redis_client_command(t->probe, -1, on_cluster_reply, t, 2, argv, NULL);
    }
    t->probe_busy = rc == 0;
    t->asked_ns = eb_mono_ns();
}

/* @locality loop thread (a client's timer or hiredis callback). */
static void on_probe_state(eb_redis_client_t *c, enum eb_redis_client_state st,
                           const struct eb_redis_client_down *d, void *opaque) {
    eb_redis_topology_t *t = opaque;
    if (c != t->probe)
        return; /* an old probe on its way out */
    if (st == EB_REDIS_CLIENT_READY) {
        eb_redis_client_established(c);
        probe_query(t);
    } else if (st == EB_REDIS_CLIENT_WAITING && d) {
        t->probe_busy = false;
        eb_redis_client_log_down(c, d, NULL);
        t->rotate = true; /* the next candidate, on the next turn of the loop */
        event_active(t->ev_reap, 0, 0);
    }
    update_state(t);
}

/* +switch-master on a sentinel's pub/sub: a hint, checked by asking. */
static void on_hint_message(eb_redis_client_t *c, const redisReply *r, void *opaque) {
    eb_redis_topology_t *t = opaque;
    (void)c;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 &&
        eb_redis_reply_is(r->element[0], "message", 7)) {
        eb_log(t->log, EB_LOG_INFO, "redis sentinel: a failover step announced; asking",
               eb_lf_str("master_name", t->target.master_name),
               eb_lf_str("event", r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str
                                                                            : "?"));
        poll_now(t);
    }
}

static void on_hint_state(eb_redis_client_t *c, enum eb_redis_client_state st,
                          const struct eb_redis_client_down *d, void *opaque) {
    eb_redis_topology_t *t = opaque;
    (void)d;
    if (c == t->hint && st == EB_REDIS_CLIENT_READY) {
        /* The failover's steps: a sentinel names the promoted replica as
         * the master from +failover-state-reconf-slaves on, well before
         * +switch-master ends the failover (measured: ~1 s earlier), and
         * every announcement missed meanwhile is lost. */
        const char *argv[] = {"SUBSCRIBE", "+switch-master", "+promoted-slave",
                              "+failover-state-reconf-slaves"};
        eb_redis_client_subscribe(c, 4, argv, NULL);
        eb_redis_client_established(c);
    }
}

static const struct eb_redis_client_handlers probe_handlers = {on_probe_state, NULL};
static const struct eb_redis_client_handlers hint_handlers = {on_hint_state, on_hint_message};

/* Connect the probe (and, for Sentinel, the hint subscriber) to the next
 * candidate. Old ones are stopped here and destroyed by the reaper. */
static void probe_next(eb_redis_topology_t *t) {
    if (t->ncandidates == 0 || t->stopped)
        return;
    const struct eb_redis_addr *a = &t->candidates[t->next_candidate++ % t->ncandidates];
    bool sentinel = t->target.topology == EB_REDIS_SENTINEL;
    char err[256];
    struct eb_redis_client_conf cc = {
        .name = sentinel ? "sentinel" : "cluster topology",
        .client_name = "expiry-bridge:topology",
        .host = a->host,
        .port = a->port,
        .username = sentinel ? t->sentinel_username : t->username,
        .password = sentinel ? t->sentinel_password : t->password,
        .tls = t->tls,
        .kind = EB_REDIS_CLIENT_COMMANDS,
        .connect_timeout_ms = t->connect_timeout_ms,
        .reply_timeout_ms = t->heartbeat_timeout_ms,
        .idle_ping_ms = 0,
        .reconnect_min_ms = t->reconnect_min_ms,
        .reconnect_max_ms = t->reconnect_max_ms,
        .resolver = t->resolver,
        .log = t->log,
        .down_log = &t->probe_log,
        .handlers = &probe_handlers,
        .opaque = t,
    };
    t->old_probe = t->probe;
    t->old_hint = t->hint;
    if (t->old_probe)
        eb_redis_client_stop(t->old_probe);
    if (t->old_hint)
        eb_redis_client_stop(t->old_hint);
    t->probe = eb_redis_client_new(t->base, &cc, err, sizeof(err));
    t->hint = NULL;
    if (t->probe && sentinel) {
        cc.name = "sentinel hint";
        cc.kind = EB_REDIS_CLIENT_SUBSCRIBER;
        cc.handlers = &hint_handlers;
        cc.quiet_attempts = true;
        t->hint = eb_redis_client_new(t->base, &cc, err, sizeof(err));
    }
    if (!t->probe) {
        discovery_error(t, "redis topology: cannot make a connection", err, NULL);
        return;
    }
    t->probe_busy = false;
    eb_redis_client_start(t->probe);
    if (t->hint)
        eb_redis_client_start(t->hint);
}

/* @locality loop thread (libevent, activated on purpose). */
static void on_reap(evutil_socket_t fd, short what, void *arg) {
    eb_redis_topology_t *t = arg;
    (void)fd;
    (void)what;
    while (t->retired) {
        struct retired *r = t->retired;
        t->retired = r->next;
        eb_redis_source_destroy(r->src);
        free(r);
    }
    if (t->rotate && !t->stopped) {
        t->rotate = false;
        probe_next(t);
    }
    eb_redis_client_destroy(t->old_probe);
    eb_redis_client_destroy(t->old_hint);
    t->old_probe = t->old_hint = NULL;
}

/* Ask now (a unit went down, a hint came), and again if already asking. */
static void poll_now(eb_redis_topology_t *t) {
    if (t->target.topology == EB_REDIS_STANDALONE || t->stopped)
        return;
    if (t->probe_busy)
        t->poll_again = true;
    else
        probe_query(t);
}

void eb_redis_topology_poll_now(eb_redis_topology_t *t) {
    if (t && t->started)
        poll_now(t);
}

/* @locality loop thread (libevent timer). */
static void on_poll(evutil_socket_t fd, short what, void *arg) {
    eb_redis_topology_t *t = arg;
    (void)fd;
    (void)what;
    t->poll_again = false;
    probe_query(t);
}

/* ------------------------------------------------------------------------
 * Metrics
 * --------------------------------------------------------------------- */

static double gauge_connected(void *opaque) {
    const eb_redis_topology_t *t = opaque;
    return t->state == EB_REDIS_SUBSCRIBED ? 1 : 0;
}

static double gauge_masters(void *opaque) {
    return (double)((const eb_redis_topology_t *)opaque)->nunits;
}

static double gauge_gap_open_seconds(void *opaque) {
    const eb_redis_topology_t *t = opaque;
    int64_t most = 0;
    for (size_t i = 0; i < t->nunits; i++) {
        int64_t ns = t->units[i]->src ? eb_redis_source_gap_open_ns(t->units[i]->src) : 0;
        if (ns > most)
            most = ns;
    }
    return (double)most / 1e9;
}

static double gauge_gap_open(void *opaque) {
    return gauge_gap_open_seconds(opaque) > 0 ? 1 : 0;
}

static bool register_metrics(eb_redis_topology_t *t) {
    static const struct {
        const char *name, *help;
        double (*fn)(void *);
    } gauges[] = {
        {"eb_redis_connected",
         "1 while every master's keyevent channels are subscribed, else 0 (during a reload's "
         "reconnect: the new connections)",
         gauge_connected},
        {"eb_redis_masters", "Masters the bridge subscribes to (units): 1 unless Cluster",
         gauge_masters},
        {"eb_redis_gap_open",
         "1 while a subscription gap lasts on any master (lost and not back yet), else 0",
         gauge_gap_open},
        {"eb_redis_gap_open_seconds",
         "Seconds the oldest open subscription gap has lasted so far; 0 when there is none",
         gauge_gap_open_seconds},
    };
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
        if (!eb_metrics_register_gauge_fn(t->metrics, gauges[i].name, gauges[i].help,
                                          gauges[i].fn, t))
            return false;
    }
    eb_metric_t *ch = eb_metrics_register(
        t->metrics, EB_METRIC_COUNTER, "eb_redis_topology_changes_total",
        "Masters the bridge started (added) or stopped (removed) subscribing to: start-up, "
        "failovers, masters added to or removed from a Cluster",
        "change", NULL, 0);
    eb_metric_t *er = eb_metrics_register(
        t->metrics, EB_METRIC_COUNTER, "eb_redis_topology_errors_total",
        "Answers of sentinels or cluster nodes the bridge could not use", NULL, NULL, 0);
    if (!ch || !er)
        return false;
    t->m_added = eb_metrics_series(ch, (const char *const[]){"added"});
    t->m_removed = eb_metrics_series(ch, (const char *const[]){"removed"});
    t->m_errors = eb_metrics_series0(er);
    return t->m_added && t->m_removed && t->m_errors;
}

/* ------------------------------------------------------------------------
 * Lifecycle
 * --------------------------------------------------------------------- */

static char *dup_or_null(const char *s, bool *oom) {
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    *oom |= !d;
    return d;
}

static void free_secret(char *s) {
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static bool copy_conf(eb_redis_topology_t *t, const struct eb_redis_topology_conf *c,
                      char *errstr, size_t errstr_size) {
    const struct eb_config_redis *r = c->redis;
    if (eb_redis_url_parse(r->url, &t->target, NULL, errstr, errstr_size) != 0)
        return false;
    bool oom = false;
    t->username = dup_or_null(r->username, &oom);
    t->password = dup_or_null(r->password, &oom);
    t->sentinel_username = dup_or_null(r->sentinel_username, &oom);
    t->sentinel_password = dup_or_null(r->sentinel_password, &oom);
    t->all_databases = r->all_databases;
    if (!r->all_databases && r->ndatabases) {
        t->databases = malloc(r->ndatabases * sizeof(int));
        oom |= !t->databases;
        if (t->databases)
            memcpy(t->databases, r->databases, r->ndatabases * sizeof(int));
        t->ndatabases = r->ndatabases;
    }
    t->events = c->events;
    t->configure_notifications = r->configure_notifications;
    t->connect_timeout_ms = r->connect_timeout_ms;
    t->heartbeat_interval_ms = r->heartbeat_interval_ms;
    t->heartbeat_timeout_ms = r->heartbeat_timeout_ms;
    t->reconnect_min_ms = r->reconnect_min_ms;
    t->reconnect_max_ms = r->reconnect_max_ms;
    t->interval_ms = r->topology_interval_ms > 0 ? r->topology_interval_ms : 1000;
    t->handover_channel = dup_or_null(c->handover_channel, &oom);
    t->handover_grace_ms = c->handover_grace_ms;
    /* The certificates are read now: a file that does not load stops the
     * start (or the reload) here, naming it, before anything connects. */
    if (t->target.tls) {
        struct eb_redis_tls_conf tc = eb_redis_tls_conf_of(r, t->log, t->metrics);
        t->tls = eb_redis_tls_new(&tc, errstr, errstr_size);
        if (!t->tls)
            return false;
        t->tls_insecure = r->tls_insecure_skip_verify;
    }
    /* Discovery starts from the URL's nodes: the sentinels, or the seeds. */
    t->candidates = t->target.nodes;
    t->ncandidates = t->target.topology == EB_REDIS_STANDALONE ? 0 : t->target.nnodes;
    if (oom)
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    return !oom;
}

eb_redis_topology_t *eb_redis_topology_new(struct event_base *base,
                                           const struct eb_redis_topology_conf *c,
                                           char *errstr, size_t errstr_size) {
    if (!base || !c || !c->redis || !c->redis->url || !c->names || !c->handlers ||
        !c->handlers->on_notification || !c->metrics) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                     "redis topology needs a base, a URL, a name pool, metrics and handlers");
        return NULL;
    }
    eb_redis_topology_t *t = calloc(1, sizeof(*t));
    if (!t) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    t->base = base;
    t->names = c->names;
    t->log = c->log;
    t->metrics = c->metrics;
    t->h = c->handlers;
    t->opaque = c->opaque;
    t->state = EB_REDIS_STOPPED;
    if (!copy_conf(t, c, errstr, errstr_size))
        goto err_free;
    t->ev_reap = event_new(base, -1, 0, on_reap, t);
    t->ev_poll = event_new(base, -1, EV_PERSIST, on_poll, t);
    if (!t->ev_reap || !t->ev_poll || !register_metrics(t)) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free;
    }
    if (t->target.topology != EB_REDIS_STANDALONE) {
        t->resolver = eb_redis_resolver_new(base, errstr, errstr_size);
        if (!t->resolver)
            goto err_free;
        return t;
    }
    /* Standalone: its one unit exists from the start. */
    if (!units_reserve(t, 1))
        goto err_free;
    struct unit *u = unit_new(t, 0, t->target.nodes[0].host, t->target.nodes[0].port, -1);
    if (!u) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        goto err_free;
    }
    t->units[t->nunits++] = u;
    return t;

err_free:
    eb_redis_topology_destroy(t);
    return NULL;
}

int eb_redis_topology_start(eb_redis_topology_t *t) {
    if (!t || t->started)
        return EB_ESTATE;
    t->started = true;
    t->state = EB_REDIS_CONNECTING;
    eb_log(t->log, EB_LOG_INFO, "redis topology starting",
           eb_lf_str("topology", eb_redis_url_topology_name(t->target.topology)),
           eb_lf_bool("tls", t->target.tls), eb_lf_int("nodes", (int64_t)t->target.nnodes),
           eb_lf_str("master_name", t->target.master_name ? t->target.master_name : ""));
    if (t->tls_insecure)
        eb_log(t->log, EB_LOG_WARN,
               "redis.tls.insecure_skip_verify is true: Redis servers' certificates are not "
               "verified, so anyone on the network path can pose as Redis and read or change "
               "what the bridge reads; for tests only",
               eb_lf_str("setting", "redis.tls.insecure_skip_verify"));
    for (size_t i = 0; i < t->nunits; i++) {
        eb_metrics_inc(t->m_added);
        unit_open(t, t->units[i], 0, NULL);
    }
    if (t->target.topology != EB_REDIS_STANDALONE) {
        struct timeval tv = eb_ms_tv(t->interval_ms);
        event_add(t->ev_poll, &tv);
        probe_next(t);
    }
    return 0;
}

void eb_redis_topology_stop(eb_redis_topology_t *t) {
    if (!t || t->stopped)
        return;
    t->stopped = true;
    event_del(t->ev_poll);
    for (size_t i = 0; i < t->nunits; i++) {
        if (t->units[i]->src)
            eb_redis_source_stop(t->units[i]->src);
    }
    eb_redis_client_stop(t->probe);
    eb_redis_client_stop(t->hint);
    update_state(t);
}

int eb_redis_topology_set_events(eb_redis_topology_t *t, uint64_t events) {
    int rc = 0;
    for (size_t i = 0; i < t->nunits; i++) {
        int r = t->units[i]->src ? eb_redis_source_set_events(t->units[i]->src, events) : 0;
        if (r)
            rc = r;
    }
    if (rc == 0)
        t->events = events;
    return rc;
}

void eb_redis_topology_destroy(eb_redis_topology_t *t) {
    if (!t)
        return;
    t->destroying = true;
    t->stopped = true;
    for (size_t i = 0; i < t->nunits; i++) {
        eb_redis_source_destroy(t->units[i]->src);
        unit_free(t->units[i]);
    }
    free(t->units);
    while (t->retired) {
        struct retired *r = t->retired;
        t->retired = r->next;
        eb_redis_source_destroy(r->src);
        free(r);
    }
    eb_redis_client_destroy(t->probe);
    eb_redis_client_destroy(t->hint);
    eb_redis_client_destroy(t->old_probe);
    eb_redis_client_destroy(t->old_hint);
    eb_redis_resolver_destroy(t->resolver);
    eb_cluster_map_free(t->map);
    if (t->ev_reap)
        event_free(t->ev_reap);
    if (t->ev_poll)
        event_free(t->ev_poll);
    if (t->metrics)
        eb_metrics_unbind(t->metrics, t);
    if (t->candidates != t->target.nodes) {
        for (size_t i = t->target.nnodes; i < t->ncandidates; i++)
            free(t->candidates[i].host);
        free(t->candidates);
    }
    eb_redis_url_free(&t->target);
    free(t->username);
    free_secret(t->password);
    free(t->sentinel_username);
    free_secret(t->sentinel_password);
    free(t->databases);
    free(t->handover_channel);
    /* Last: hiredis held sessions of it until the connections above went. */
    eb_redis_tls_destroy(t->tls);
    free(t);
}
