/* config_checks.c -- the rules across settings. Per section, once it is
 * read: redis (URL vs username, password and databases; settings of one
 * topology or of TLS given without it; heartbeat and reconnect timings;
 * the default CloudEvents source), ledger, coordination, and each route's
 * templates against its pattern. After the walk (step 3): unique route
 * names, plugin references, the router build (which detects ties), and
 * the ledger key prefix on Cluster.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_internal.h"
#include "config/redis_url.h"
#include "core/notify.h"

/* ------------------------------------------------------------------------ */
/* Sections and routes                                                      */
/* ------------------------------------------------------------------------ */

/* A route's templates against its pattern. */
void eb_config_check_route(struct ctx *c, struct eb_config_route *r, const struct seen *s,
                           const char *path) {
    struct {
        const char *key;
        const char *tmpl;
    } t[] = {{"key", r->key}, {"payload", r->payload}};
    c->routes[r - c->cfg->routes].name = eb_config_seen_get(s, "name");
    if (!r->match)
        return;
    for (size_t i = 0; i < 2; i++) {
        char reason[384], what[192];
        size_t off = 0;
        const struct ynode *n = eb_config_seen_get(s, t[i].key);
        if (!t[i].tmpl || !n)
            continue;
        if (eb_router_check_template(t[i].tmpl, r->match, &off, reason, sizeof(reason)) == 0)
            continue;
        unsigned line, col;
        bool expanded = memchr(n->str, '$', n->len) != NULL;
        eb_config_node_pos(n, expanded ? 0 : off, &line, &col);
        eb_config_child_path(what, sizeof(what), path, t[i].key);
        eb_config_errorf(c, line, col, "invalid %s: %s", what, reason);
    }
    /* The ledger delivers expiries; a ledgered route that does not take
     * them would record timers and never forward one live. */
    const struct ynode *ln = eb_config_seen_get(s, "ledger");
    if (r->ledger != EB_LEDGER_OFF && ln && !(r->events & (UINT64_C(1) << EB_EVENT_EXPIRED_ID)))
        err_at(c, ln,
               "invalid %s.ledger: a ledgered route delivers expiries, but its events do not "
               "include expired; expected events to include expired, or ledger: off",
               path);
}

/* The CloudEvents source of a topology when redis.source is not set: stable
 * across failovers, so copies of one expiry delivered by different nodes
 * (or replicas of the bridge) keep one (source, id). Standalone: the
 * server; Sentinel: the monitored name; Cluster: the seeds as written. */
static char *default_source(struct ctx *c, const struct eb_redis_url *u) {
    char buf[1024];
    size_t n = 0;
    const char *scheme = eb_redis_url_scheme(u->topology, false);
    n += (size_t)snprintf(buf, sizeof(buf), "%s://", scheme);
    if (u->topology == EB_REDIS_SENTINEL) {
        snprintf(buf + n, sizeof(buf) - n, "%s", u->master_name);
        return eb_config_xstrdup(c, buf);
    }
    for (size_t i = 0; i < u->nnodes && n < sizeof(buf); i++) {
        bool v6 = strchr(u->nodes[i].host, ':') != NULL;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s%.256s%s:%d", i ? "," : "",
                              v6 ? "[" : "", u->nodes[i].host, v6 ? "]" : "", u->nodes[i].port);
    }
    return eb_config_xstrdup(c, buf);
}

/* Settings that belong to one topology or to TLS, given without it. */
static void check_topology(struct ctx *c, const struct seen *s) {
    struct eb_config_redis *r = &c->cfg->redis;
    const struct eb_redis_url *u = &r->target;
    const struct ynode *sn = eb_config_seen_get(s, "sentinel"), *tn = eb_config_seen_get(s, "tls");
    if (sn && u->topology != EB_REDIS_SENTINEL)
        err_at(c, sn,
               "invalid redis.sentinel: redis.url is a %s:// URL; expected redis.sentinel only "
               "with redis-sentinel:// or rediss-sentinel://",
               eb_redis_url_scheme(u->topology, u->tls));
    if (tn && !u->tls)
        err_at(c, tn,
               "invalid redis.tls: redis.url is a %s:// URL, without TLS; expected "
               "%s:// to use TLS, or no redis.tls",
               eb_redis_url_scheme(u->topology, false), eb_redis_url_scheme(u->topology, true));
    if (tn && (!r->tls_cert_file) != (!r->tls_key_file))
        err_at(c, tn,
               "invalid redis.tls: %s is set without %s; expected both (a client certificate "
               "and its key) or neither",
               r->tls_cert_file ? "cert_file" : "key_file",
               r->tls_cert_file ? "key_file" : "cert_file");
    if (u->topology == EB_REDIS_CLUSTER && !r->all_databases) {
        for (size_t i = 0; i < r->ndatabases; i++) {
            if (r->databases[i] != 0) {
                const struct ynode *dn = eb_config_seen_get(s, "databases");
                err_at(c, dn ? dn : c->url_node,
                       "invalid redis.databases: Redis Cluster has only database 0, and %d is "
                       "listed; expected [0] or all",
                       r->databases[i]);
                break;
            }
        }
    }
}

/* After the redis section: URL vs keys, and timing relations. */
void eb_config_check_redis(struct ctx *c, const struct seen *s) {
    struct eb_config_redis *r = &c->cfg->redis;
    if (!r->host)
        return; /* no valid URL: already reported */
    if (c->url_db >= 0) {
        if (eb_config_seen_get(s, "databases")) {
            err_at(c, c->url_node,
                   "invalid redis.url: it selects database %d and redis.databases is also set; "
                   "expected the databases in one place only",
                   c->url_db);
        } else {
            int *db = malloc(sizeof(*db));
            if (!db) {
                c->oom = c->stop = true;
                return;
            }
            *db = c->url_db;
            free(r->databases);
            r->databases = db;
            r->ndatabases = 1;
            r->all_databases = false;
        }
    }
    if (!r->username && c->url_user) {
        r->username = c->url_user;
        c->url_user = NULL;
    }
    if (!r->password && c->url_pass) {
        r->password = c->url_pass;
        c->url_pass = NULL;
    }
    check_topology(c, s);
    if (!r->source)
        r->source = default_source(c, &r->target);
    const struct ynode *hb = eb_config_seen_get(s, "heartbeat_timeout");
    if (r->heartbeat_timeout_ms <= r->heartbeat_interval_ms) {
        const struct ynode *at = hb ? hb : eb_config_seen_get(s, "heartbeat_interval");
        err_at(c, at ? at : s->map,
               "invalid redis.heartbeat_timeout: %d ms is not longer than "
               "redis.heartbeat_interval (%d ms); expected a longer timeout",
               r->heartbeat_timeout_ms, r->heartbeat_interval_ms);
    }
    if (r->reconnect_max_ms < r->reconnect_min_ms) {
        const struct ynode *mx = eb_config_seen_get(s, "reconnect_max");
        const struct ynode *at = mx ? mx : eb_config_seen_get(s, "reconnect_min");
        err_at(c, at ? at : s->map,
               "invalid redis.reconnect_max: %d ms is less than redis.reconnect_min (%d ms); "
               "expected at least reconnect_min",
               r->reconnect_max_ms, r->reconnect_min_ms);
    }
}

/* Most entries one sweep page may carry: each becomes a pipelined FCALL. */
#define LEDGER_MAX_BATCH 10000
/* Claims are renewed every claim_ttl/3; shorter ones would renew
 * constantly and expire on any hiccup. */
#define LEDGER_MIN_CLAIM_TTL_MS 1000

/* After the ledger section: value ranges and relations. */
/* The group's timings: a session that survives two missed heartbeats and a
 * lease (session - 2 heartbeats, kafka_group.h) left to produce in. */
void eb_config_check_coordination(struct ctx *c, const struct seen *s) {
    const struct eb_config_coordination *co = &c->cfg->coordination;
    if (co->session_timeout_ms < 3 * co->heartbeat_interval_ms) {
        const struct ynode *at = eb_config_seen_get(s, "session_timeout");
        err_at(c,
               at ? at
               : eb_config_seen_get(s, "heartbeat_interval")
                   ? eb_config_seen_get(s, "heartbeat_interval")
                   : s->map,
               "invalid coordination.session_timeout: %d ms is less than three "
               "coordination.heartbeat_interval (%d ms); expected at least three heartbeats per "
               "session",
               co->session_timeout_ms, co->heartbeat_interval_ms);
    }
}

void eb_config_check_ledger(struct ctx *c, const struct seen *s) {
    const struct eb_config_ledger *l = &c->cfg->ledger;
    const struct ynode *at;
    c->ledger_prefix = eb_config_seen_get(s, "key_prefix");
    if ((l->buckets < 1 || l->buckets > EB_CONFIG_LEDGER_MAX_BUCKETS) &&
        (at = eb_config_seen_get(s, "buckets")))
        err_at(c, at, "invalid ledger.buckets: %zu; expected 1 to %d", l->buckets,
               EB_CONFIG_LEDGER_MAX_BUCKETS);
    if (l->buckets > 1 && l->key_prefix && strpbrk(l->key_prefix, "{}") &&
        (at = c->ledger_prefix))
        err_at(c, at,
               "invalid ledger.key_prefix: it holds a '{' or '}', but with ledger.buckets > 1 "
               "each bucket's name carries its own hash tag {<route>:<bucket>}, which must be "
               "the first in the name; expected a prefix without braces");
    if (l->sweep_batch > LEDGER_MAX_BATCH && (at = eb_config_seen_get(s, "sweep_batch")))
        err_at(c, at, "invalid ledger.sweep_batch: %zu is more than %d; expected at most %d",
               l->sweep_batch, LEDGER_MAX_BATCH, LEDGER_MAX_BATCH);
    if (l->claim_ttl_ms < LEDGER_MIN_CLAIM_TTL_MS && (at = eb_config_seen_get(s, "claim_ttl")))
        err_at(c, at, "invalid ledger.claim_ttl: %d ms is less than %d ms; expected at least 1s",
               l->claim_ttl_ms, LEDGER_MIN_CLAIM_TTL_MS);
    if (l->sweep_grace_ms >= l->sweep_interval_ms) {
        at = eb_config_seen_get(s, "sweep_grace");
        at = at ? at : eb_config_seen_get(s, "sweep_interval");
        if (at)
            err_at(c, at,
                   "invalid ledger.sweep_grace: %d ms is not less than ledger.sweep_interval "
                   "(%d ms); expected a shorter grace",
                   l->sweep_grace_ms, l->sweep_interval_ms);
    }
}

/* ------------------------------------------------------------------------ */
/* After the walk                                                           */
/* ------------------------------------------------------------------------ */

struct name_ref {
    const char *name;
    size_t idx;
};

static int cmp_name_ref(const void *a, const void *b) {
    const struct name_ref *x = a, *y = b;
    int d = strcmp(x->name, y->name);
    return d ? d : (x->idx > y->idx) - (x->idx < y->idx);
}

/* Route names must be unique: sort (10,000 routes stay fast), then report
 * each repeat at its own position, in file order. */
static void check_route_names(struct ctx *c) {
    struct eb_config *cfg = c->cfg;
    size_t n = 0;
    struct name_ref *refs = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*refs));
    size_t *first = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*first));
    if (!refs || !first) {
        c->oom = c->stop = true;
        goto out;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        first[i] = SIZE_MAX;
        if (cfg->routes[i].name)
            refs[n++] = (struct name_ref){cfg->routes[i].name, i};
    }
    qsort(refs, n, sizeof(*refs), cmp_name_ref);
    for (size_t i = 1; i < n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(refs[j - 1].name, refs[i].name) == 0)
            j--;
        if (j != i)
            first[refs[i].idx] = refs[j].idx;
    }
    for (size_t i = 0; i < cfg->nroutes && !c->stop; i++) {
        if (first[i] == SIZE_MAX)
            continue;
        const struct ynode *at = c->routes[i].name ? c->routes[i].name : c->routes[i].map;
        err_at(c, at,
               "duplicate route name '%s' (first at line %u); expected a unique name per route",
               cfg->routes[i].name, cfg->routes[first[i]].pos.line);
    }
out:
    free(first);
    free(refs);
}

static void build_router(struct ctx *c) {
    struct eb_config *cfg = c->cfg;
    struct eb_router_rule *rules = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*rules));
    char reason[768];
    size_t bad = 0;
    if (!rules) {
        c->oom = c->stop = true;
        return;
    }
    bool observed = false;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct eb_config_route *r = &cfg->routes[i];
        rules[i] = (struct eb_router_rule){r->name, r->match, r->key, r->events, &cfg->routes[i]};
        cfg->route_events |= r->events;
        observed |= r->ledger == EB_LEDGER_OBSERVED;
    }
    /* Observed mode records deadlines from `expire` and forgets timers on
     * `del` and `persist`: subscribed, but forwarded only if a route asks. */
    if (observed) {
        static const char *const names[] = {"expire", "del", "persist"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            int id = eb_notify_event_id(names[i], strlen(names[i]));
            if (id >= 0)
                cfg->ledger_events |= UINT64_C(1) << id;
        }
    }
    cfg->events = cfg->route_events | cfg->ledger_events;
    cfg->router = eb_router_new(rules, cfg->nroutes, &bad, reason, sizeof(reason));
    if (!cfg->router) {
        if (bad < cfg->nroutes)
            eb_config_errorf(c, cfg->routes[bad].pos.line, cfg->routes[bad].pos.col, "%s", reason);
        else
            eb_config_errorf(c, 1, 1, "%s", reason);
    }
    free(rules);
}

/* Observed routes on Cluster keep one ledger per slot, whose name's first
 * hash tag places it there (docs/ledger.md), and so do routes with a
 * payload but no ledger (their claim reads the payload key in its slot): a
 * key_prefix with a tag of its own would put them all in its slot
 * instead. */
static void check_slot_ledgers(struct ctx *c) {
    const struct eb_config *cfg = c->cfg;
    if (cfg->redis.target.topology != EB_REDIS_CLUSTER || !cfg->ledger.key_prefix ||
        !strpbrk(cfg->ledger.key_prefix, "{}"))
        return;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct eb_config_route *r = &cfg->routes[i];
        if (r->ledger == EB_LEDGER_OBSERVED || (r->ledger == EB_LEDGER_OFF && r->payload)) {
            err_at(c, c->ledger_prefix ? c->ledger_prefix : c->routes[i].map,
                   "invalid ledger.key_prefix: it holds a '{' or '}', but on Redis Cluster "
                   "route '%s' (%s) keeps one ledger per slot whose own hash tag must be the "
                   "first in its name; expected a prefix without braces",
                   r->name, r->ledger == EB_LEDGER_OBSERVED ? "ledger: observed"
                                                            : "a payload without a ledger");
            return;
        }
    }
}

void eb_config_finish(struct ctx *c, const struct ynode *root) {
    struct eb_config *cfg = c->cfg;
    if (cfg->nroutes == 0 && cfg->unrouted_drop)
        err_at(c, root,
               "no routes; expected at least one route under routes, or unrouted: { topic: NAME }");
    if (c->stop)
        return;
    check_route_names(c);
    eb_config_resolve_plugin_refs(c);
    if (c->nerr || c->stop)
        return;
    build_router(c);
    eb_config_check_plugins(c);
    check_slot_ledgers(c);
    /* A file with only an unrouted topic forwards every expiry. */
    if (cfg->nroutes == 0)
        cfg->events = cfg->route_events = UINT64_C(1) << EB_EVENT_EXPIRED_ID;
}
