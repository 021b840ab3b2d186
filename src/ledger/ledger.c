/* ledger.c -- the deadline ledger's public API (ledger.h), its
 * configuration and metrics. The jobs themselves live beside it
 * (ledger_internal.h lists them): the masters' connections and routing,
 * claims and acknowledgements, the sweep, observed mode, the install
 * command, names and the payload JSON.
 *
 * Every decision that must be atomic in Redis is one FCALL of the library
 * in config/redis/eb_timers.lua; the ledger only sequences them.
 *
 * @locality loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/keyslot.h"
#include "core/notify.h"
#include "ledger/ledger_internal.h"

/* ------------------------------------------------------------------------
 * Tunables
 * --------------------------------------------------------------------- */

/* The ticket bound: as many timers as Kafka's queue may hold events
 * (kafka.queue.max_events), since a ticket is an event on its way there;
 * at least this many. */
#define MIN_MAX_TICKETS 1000

/* Errors of one kind are logged at most once per this many ms. */
#define LOG_EVERY_MS 5000

static const char *const st_names[ST_COUNT] = {"unknown",   "owed",  "busy",    "done", "changed",
                                               "persisted", "moved", "touched", "error"};
static const char *const path_names[2] = {"live", "sweep"};
static const char *const ack_names[ACK_COUNT] = {"removed", "gone", "rearmed", "error"};

/* ------------------------------------------------------------------------
 * Requests and logs (ledger_internal.h)
 * --------------------------------------------------------------------- */

bool eb_ledger_log_allow(eb_ledger_t *l, unsigned slot) {
    int64_t now = eb_mono_ns() / 1000000;
    if (slot >= LOGSLOT_COUNT)
        return true;
    if (l->last_log_ms[slot] && now - l->last_log_ms[slot] < LOG_EVERY_MS)
        return false;
    l->last_log_ms[slot] = now;
    return true;
}

const char *eb_ledger_reply_error(const redisReply *r) {
    return r && eb_redis_reply_is_error(r) ? eb_redis_reply_text(r) : "unexpected reply";
}

void eb_ledger_gauges_update(eb_ledger_t *l) {
    for (struct lstats *s = l->all_stats; s; s = s->next) {
        int64_t pending = 0, overdue = 0;
        bool seen = false;
        for (const struct ledger_link *k = l->links; k; k = k->next) {
            if (s->ord < k->ngauges && k->gauges[s->ord].seen) {
                pending += k->gauges[s->ord].pending;
                overdue += k->gauges[s->ord].overdue;
                seen = true;
            }
        }
        if (seen) {
            eb_metrics_set(s->pending, (double)pending);
            eb_metrics_set(s->overdue, (double)overdue);
        }
    }
}

/* ------------------------------------------------------------------------
 * Metrics
 * --------------------------------------------------------------------- */

static double gauge_tickets(void *opaque) {
    return (double)((eb_ledger_t *)opaque)->ntickets;
}

static double gauge_connected(void *opaque) {
    return eb_ledger_links_all_ready(opaque) ? 1 : 0;
}

static double gauge_masters(void *opaque) {
    double n = 0;
    for (const struct ledger_link *k = ((eb_ledger_t *)opaque)->links; k; k = k->next)
        n++;
    return n;
}

static double gauge_peak_tickets(void *opaque) {
    return (double)((eb_ledger_t *)opaque)->peak_tickets;
}

static double gauge_max_tickets(void *opaque) {
    return (double)((eb_ledger_t *)opaque)->max_tickets;
}

/* The families with a series per route (and more labels): looked up by
 * get_stats() for every ledger. */
static const struct {
    enum eb_metric_type type;
    const char *name, *labels, *help;
    size_t off;
} route_families[] = {
    {EB_METRIC_GAUGE, "eb_ledger_pending", "route",
     "Timers in the ledger (armed, not yet confirmed by Kafka), as of the last sweep.",
     offsetof(struct eb_ledger, f_pending)},
    {EB_METRIC_GAUGE, "eb_ledger_overdue", "route",
     "Ledger timers past their deadline and not yet confirmed by Kafka, as of the last sweep.",
     offsetof(struct eb_ledger, f_overdue)},
    {EB_METRIC_COUNTER, "eb_ledger_recovered_total", "route",
     "Timers delivered by the sweep (delivery: recovered) and confirmed by Kafka.",
     offsetof(struct eb_ledger, f_recovered)},
    {EB_METRIC_COUNTER, "eb_ledger_acks_total", "route,result",
     "Acknowledgements after Kafka confirmed a timer: removed (the entry went), gone (already "
     "removed), rearmed (the entry now holds a later deadline, kept), error.",
     offsetof(struct eb_ledger, f_acks)},
    {EB_METRIC_COUNTER, "eb_ledger_claims_total", "route,path,result",
     "Claims of timers by path (live notification, sweep) and result: owed (produced), busy "
     "(held by another claim), done (delivered already), changed (a later timer of the key), "
     "unknown (no ledger entry: produced without deadline), persisted/moved (the key lost or "
     "changed its TTL outside the library), error.",
     offsetof(struct eb_ledger, f_claims)},
    {EB_METRIC_COUNTER, "eb_ledger_payload_missing_total", "route",
     "Timers produced with payload: null because the companion key did not exist (or was not "
     "a string or hash).",
     offsetof(struct eb_ledger, f_missing)},
    {EB_METRIC_COUNTER, "eb_ledger_observed_total", "route,op",
     "Observed mode: deadlines recorded (record) and timers forgotten on del/persist (cancel).",
     offsetof(struct eb_ledger, f_observed)},
    {EB_METRIC_COUNTER, "eb_ledger_untagged_total", "route",
     "Expiries of ledgered routes whose key's hash tag names none of the route's ledgers "
     "(ledger.buckets > 1: no {<route>:<bucket>} tag; Redis Cluster: not in its ledger's slot): "
     "forwarded without a deadline, never claimed (docs/ledger.md, \"Redis Cluster\").",
     offsetof(struct eb_ledger, f_untagged)},
    {EB_METRIC_COUNTER, "eb_ledger_deferred_total", "route",
     "Expiry notifications of ledgered routes not claimed because the bridge held "
     "eb_ledger_max_inflight timers already: they stay in the Redis ledger and the sweep "
     "delivers them (delivery: recovered) as room frees.",
     offsetof(struct eb_ledger, f_deferred)},
};

/* Callback gauges: the ledger answers while it lives (unbound at destroy). */
static const struct {
    const char *name, *help;
    double (*fn)(void *opaque);
} gauges[] = {
    {"eb_ledger_inflight", "Timers claimed by this bridge and not yet acknowledged in Redis.",
     gauge_tickets},
    {"eb_ledger_inflight_peak",
     "Most timers the ledger has held at once since start: how close bursts came to "
     "eb_ledger_max_inflight.",
     gauge_peak_tickets},
    {"eb_ledger_max_inflight",
     "The bound of eb_ledger_inflight (kafka.queue.max_events, at least 1000): past it, expired "
     "timers wait in Redis.",
     gauge_max_tickets},
    {"eb_ledger_connected",
     "1 while the ledger's connection to every master is up and the library loaded there, "
     "else 0.",
     gauge_connected},
    {"eb_ledger_masters",
     "Masters the ledger keeps a connection to (standalone and Sentinel: 1; Cluster: every "
     "master).",
     gauge_masters},
};

static int register_metrics(eb_ledger_t *l) {
    eb_metrics_t *m = l->metrics;
    for (size_t i = 0; i < sizeof(route_families) / sizeof(route_families[0]); i++) {
        eb_metric_t *f = eb_metrics_register(m, route_families[i].type, route_families[i].name,
                                             route_families[i].help, route_families[i].labels,
                                             NULL, 0);
        if (!f)
            return EB_ENOMEM;
        *(eb_metric_t **)((char *)l + route_families[i].off) = f;
    }
    eb_metric_t *sweep =
        eb_metrics_register(m, EB_METRIC_HISTOGRAM, "eb_ledger_sweep_duration_seconds",
                            "Duration of one sweep cycle over every ledger and database.", NULL,
                            eb_metrics_latency_buckets, eb_metrics_latency_nbuckets);
    eb_metric_t *skipped = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_ledger_skipped_total",
        "Expiry notifications of ledgered routes left to the sweep because the ledger's Redis "
        "connection was down.",
        NULL, NULL, 0);
    eb_metric_t *loads = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_ledger_function_loads_total",
        "FUNCTION LOAD of the eb_timers library on (re)connect of each master's connection, by "
        "result.",
        "result", NULL, 0);
    eb_metric_t *redirects = eb_metrics_register(
        m, EB_METRIC_COUNTER, "eb_ledger_redirects_total",
        "Ledger commands a master sent elsewhere, by kind: moved (MOVED: the slot lives on another "
        "master), ask (ASK: it is migrating), retry (TRYAGAIN, CLUSTERDOWN, READONLY, MASTERDOWN, "
        "LOADING: a failover in progress), given_up (redirected too often; left for a later "
        "attempt, nothing acknowledged).",
        "kind", NULL, 0);
    if (!sweep || !skipped || !loads || !redirects)
        return EB_ENOMEM;
    static const char *const kinds[] = {"given_up", "moved", "ask", "retry"};
    for (size_t i = 0; i < 4; i++) {
        const char *v[] = {kinds[i]};
        if (!(l->m_redirect[i] = eb_metrics_series(redirects, v)))
            return EB_ENOMEM;
    }
    const char *ok[] = {"ok"}, *failed[] = {"failed"};
    l->m_sweep = eb_metrics_series0(sweep);
    l->m_skipped = eb_metrics_series0(skipped);
    l->m_loads_ok = eb_metrics_series(loads, ok);
    l->m_loads_failed = eb_metrics_series(loads, failed);
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
        if (!eb_metrics_register_gauge_fn(m, gauges[i].name, gauges[i].help, gauges[i].fn, l))
            return EB_ENOMEM;
    }
    return 0;
}

static void free_stats(struct lstats *s) {
    if (s) {
        free(s->route);
        free(s->prefix);
        free(s->lkey);
        free(s);
    }
}

/* The stats of (route, key prefix), created on first use. */
static struct lstats *get_stats(eb_ledger_t *l, const char *route, const char *prefix) {
    prefix = prefix ? prefix : "";
    for (struct lstats *s = l->all_stats; s; s = s->next) {
        if (strcmp(s->route, route) == 0 && strcmp(s->prefix, prefix) == 0)
            return s;
    }
    struct eb_buf k = EB_BUF_INIT;
    eb_ledger_key(&k, prefix, route);
    struct lstats *s = calloc(1, sizeof(*s));
    if (!s || !eb_buf_ok(&k) || !(s->route = strdup(route)) || !(s->prefix = strdup(prefix)) ||
        !(s->lkey = malloc(k.len + 1))) {
        eb_buf_free(&k);
        free_stats(s);
        return NULL;
    }
    memcpy(s->lkey, k.data, k.len);
    s->lkey[k.len] = '\0';
    s->lkey_len = k.len;
    s->lkey_slot = eb_keyslot_of(k.data, k.len);
    eb_buf_free(&k);
    s->ord = l->nstats++;
    const char *r[] = {route};
    s->pending = eb_metrics_series(l->f_pending, r);
    s->overdue = eb_metrics_series(l->f_overdue, r);
    s->recovered = eb_metrics_series(l->f_recovered, r);
    s->payload_missing = eb_metrics_series(l->f_missing, r);
    s->deferred = eb_metrics_series(l->f_deferred, r);
    s->untagged = eb_metrics_series(l->f_untagged, r);
    for (int i = 0; i < ACK_COUNT; i++) {
        const char *v[] = {route, ack_names[i]};
        s->acks[i] = eb_metrics_series(l->f_acks, v);
    }
    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < ST_COUNT; i++) {
            const char *v[] = {route, path_names[p], st_names[i]};
            s->claims[p][i] = eb_metrics_series(l->f_claims, v);
        }
    }
    const char *rec[] = {route, "record"}, *can[] = {route, "cancel"};
    s->observed_record = eb_metrics_series(l->f_observed, rec);
    s->observed_cancel = eb_metrics_series(l->f_observed, can);
    s->next = l->all_stats;
    l->all_stats = s;
    return s;
}

/* ------------------------------------------------------------------------
 * Configuration
 * --------------------------------------------------------------------- */

bool eb_ledger_needed(const struct eb_config *cfg) {
    for (size_t i = 0; i < cfg->nroutes; i++) {
        if (cfg->routes[i].ledger != EB_LEDGER_OFF || cfg->routes[i].payload)
            return true;
    }
    return false;
}

static void free_routes(struct lroute *routes, size_t n) {
    for (size_t i = 0; routes && i < n; i++)
        free(routes[i].scan_match);
    free(routes);
}

static bool str_differs(const char *a, const char *b) {
    return strcmp(a && *a ? a : "", b && *b ? b : "") != 0;
}

/* r's TLS settings as one string (NULL without TLS or when out of memory:
 * *oom says which), to tell whether a reload changed them. */
static char *tls_key(const struct eb_config_redis *r, bool *oom) {
    if (!r->target.tls)
        return NULL;
    char *k = NULL;
    if (asprintf(&k, "%s\x1f%s\x1f%s\x1f%s\x1f%d", r->tls_ca_file ? r->tls_ca_file : "",
                 r->tls_cert_file ? r->tls_cert_file : "", r->tls_key_file ? r->tls_key_file : "",
                 r->tls_server_name ? r->tls_server_name : "", r->tls_insecure_skip_verify) < 0) {
        *oom = true;
        return NULL;
    }
    return k;
}

static bool same_redis(const eb_ledger_t *l, const struct eb_config_redis *r) {
    bool same_dbs =
        l->all_databases == r->all_databases &&
        (r->all_databases || (l->ndatabases == r->ndatabases &&
                              !memcmp(l->databases, r->databases, r->ndatabases * sizeof(int))));
    bool oom = false;
    char *tk = tls_key(r, &oom);
    bool same_tls = !oom && !str_differs(tk, l->tls_key);
    free(tk);
    return l->configured && !str_differs(l->username, r->username) &&
           !str_differs(l->password, r->password) && same_tls && same_dbs &&
           l->connect_timeout_ms == r->connect_timeout_ms &&
           l->reply_timeout_ms == r->heartbeat_timeout_ms &&
           l->reconnect_min_ms == r->reconnect_min_ms && l->reconnect_max_ms == r->reconnect_max_ms;
}

static void free_secret(char *p) {
    if (p) {
        /* A freed secret should not linger in the heap. */
        memset(p, 0, strlen(p));
        free(p);
    }
}

/* Take r's connection settings (other credentials, TLS settings,
 * databases or timings: then every link reconnects; where Redis is comes
 * from the topology). The password is kept even when empty if a user is
 * named: an ACL user with nopass. A TLS file that does not load changes
 * nothing: EB_ECONFIG + errstr. */
static int set_redis(eb_ledger_t *l, const struct eb_config_redis *r, char *errstr,
                     size_t errstr_size) {
    if (same_redis(l, r))
        return 0;
    eb_redis_tls_t *tls = NULL;
    if (r->target.tls) {
        struct eb_redis_tls_conf tc = eb_redis_tls_conf_of(r, l->log, l->metrics);
        if (!(tls = eb_redis_tls_new(&tc, errstr, errstr_size)))
            return EB_ECONFIG;
    }
    bool user = r->username && *r->username, oom = false;
    char *username = user ? strdup(r->username) : NULL;
    char *password = r->password && (*r->password || user) ? strdup(r->password) : NULL;
    char *tk = tls_key(r, &oom);
    size_t ndb = r->all_databases ? 0 : r->ndatabases;
    int *dbs = ndb ? malloc(ndb * sizeof(int)) : NULL;
    if ((user && !username) || (r->password && (*r->password || user) && !password) || oom ||
        (ndb && !dbs)) {
        free(username);
        free_secret(password);
        free(tk);
        free(dbs);
        eb_redis_tls_destroy(tls);
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    }
    if (ndb)
        memcpy(dbs, r->databases, ndb * sizeof(int));
    free(l->username);
    free_secret(l->password);
    free(l->databases);
    l->configured = true;
    l->username = username;
    l->password = password;
    l->all_databases = r->all_databases;
    l->databases = dbs;
    l->ndatabases = ndb;
    l->connect_timeout_ms = r->connect_timeout_ms;
    l->reply_timeout_ms = r->heartbeat_timeout_ms;
    l->reconnect_min_ms = r->reconnect_min_ms;
    l->reconnect_max_ms = r->reconnect_max_ms;
    free(l->tls_key);
    l->tls_key = tk;
    eb_redis_tls_destroy(l->old_tls);
    l->old_tls = l->tls;
    l->tls = tls;
    if (eb_ledger_links_reconnect(l) != 0)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    return 0;
}

/* Which ledgers route lr keeps (ledger_internal.h): on Cluster, an
 * observed route one per slot (its calls name the application's untagged
 * key, so the ledger must be in the key's slot), and so does a payload
 * without a ledger (its claim reads the payload key); an armed route its
 * ledger.buckets; elsewhere one. */
static void place_route(const struct eb_config *cfg, struct lroute *lr) {
    bool cluster = cfg->redis.target.topology == EB_REDIS_CLUSTER;
    size_t buckets = cfg->ledger.buckets ? cfg->ledger.buckets : 1;
    if (cluster && (lr->observed || !lr->ledgered)) {
        lr->kind = LK_SLOT;
        lr->nparts = EB_KEYSLOT_COUNT;
    } else if (lr->ledgered && !lr->observed && buckets > 1) {
        /* the buckets, then the route's own ledger: timers armed there
         * before ledger.buckets was raised are still swept */
        lr->kind = LK_BUCKET;
        lr->nparts = (unsigned)buckets + 1;
    } else {
        lr->kind = LK_ROUTE;
        lr->nparts = 1;
    }
}

/* The ledger's view of cfg's routes: routes[i] for route i, and a router
 * whose rule i renders route i's payload key. */
static int build_routes(eb_ledger_t *l, const struct eb_config *cfg, struct lroute **out,
                        eb_router_t **prouter) {
    struct lroute *routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*routes));
    struct eb_router_rule *rules = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*rules));
    char err[256];
    if (!routes || !rules)
        goto err_free;
    for (size_t i = 0; i < cfg->nroutes; i++) {
        const struct eb_config_route *r = &cfg->routes[i];
        struct lroute *lr = &routes[i];
        lr->cfg = r;
        lr->active = r->ledger != EB_LEDGER_OFF || r->payload;
        lr->ledgered = r->ledger != EB_LEDGER_OFF;
        lr->observed = r->ledger == EB_LEDGER_OBSERVED;
        rules[i] = (struct eb_router_rule){r->name, r->match, r->payload, r->events, NULL};
        if (!lr->active)
            continue;
        place_route(cfg, lr);
        if (!(lr->ls = get_stats(l, r->name, cfg->ledger.key_prefix)))
            goto err_free;
        if (lr->observed) {
            char prefix[1024];
            struct eb_buf pat = EB_BUF_INIT;
            eb_router_literal_prefix(r->match, prefix, sizeof(prefix));
            eb_ledger_scan_pattern(&pat, prefix, strlen(prefix));
            eb_buf_cstr(&pat);
            if (!eb_buf_ok(&pat)) {
                eb_buf_free(&pat);
                goto err_free;
            }
            lr->scan_match = pat.data;
            lr->scan_match_len = pat.len;
        }
    }
    *prouter = eb_router_new(rules, cfg->nroutes, NULL, err, sizeof(err));
    if (!*prouter && cfg->nroutes)
        goto err_free;
    free(rules);
    *out = routes;
    return 0;

err_free:
    free_routes(routes, cfg->nroutes);
    free(rules);
    return EB_ENOMEM;
}

/* Ledger settings that take effect at once: timers follow new periods. */
static void set_ledger(eb_ledger_t *l, const struct eb_config *cfg) {
    l->sweep_grace_ms = cfg->ledger.sweep_grace_ms;
    l->claim_ttl_ms = cfg->ledger.claim_ttl_ms;
    l->remember_ms = cfg->ledger.remember_delivered_ms;
    l->batch = cfg->ledger.sweep_batch ? cfg->ledger.sweep_batch : 500;
    l->max_tickets = cfg->kafka.queue_max_events > MIN_MAX_TICKETS ? cfg->kafka.queue_max_events
                                                                   : MIN_MAX_TICKETS;
    if (l->sweep_interval_ms != cfg->ledger.sweep_interval_ms) {
        l->sweep_interval_ms = cfg->ledger.sweep_interval_ms;
        if (l->started && !l->stopped) {
            struct timeval tv = eb_ms_tv(l->sweep_interval_ms);
            event_add(l->ev_sweep, &tv);
        }
    }
    if (l->started) {
        struct timeval rv = eb_ms_tv(l->claim_ttl_ms / 3 > 0 ? l->claim_ttl_ms / 3 : 1);
        event_add(l->ev_renew, &rv);
    }
}

int eb_ledger_set_config(eb_ledger_t *l, const struct eb_config *cfg, char *errstr,
                         size_t errstr_size) {
    struct lroute *routes = NULL;
    eb_router_t *prouter = NULL;
    int rc = set_redis(l, &cfg->redis, errstr, errstr_size);
    if (rc != 0)
        return rc;
    if (build_routes(l, cfg, &routes, &prouter) != 0)
        return eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
    free_routes(l->routes, l->nroutes);
    eb_router_destroy(l->payload_router);
    l->routes = routes;
    l->nroutes = cfg->nroutes;
    l->payload_router = prouter;
    l->cfg = cfg;
    l->cluster = cfg->redis.target.topology == EB_REDIS_CLUSTER;
    set_ledger(l, cfg);
    /* Route indexes changed meaning: cycles in progress start over, and
     * slot ledgers of routes new to this file are looked for. */
    eb_ledger_links_routes_changed(l);
    return 0;
}

/* ------------------------------------------------------------------------
 * Lifecycle
 * --------------------------------------------------------------------- */

static void free_fields(eb_ledger_t *l) {
    eb_ledger_links_free(l);
    struct event *evs[] = {l->ev_sweep, l->ev_renew, l->acks.ev, l->claims.ev, l->ev_room};
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        if (evs[i])
            event_free(evs[i]);
    }
    eb_ledger_tickets_free_all(l);
    free(l->tags);
    free_routes(l->routes, l->nroutes);
    eb_router_destroy(l->payload_router);
    while (l->all_stats) {
        struct lstats *s = l->all_stats;
        l->all_stats = s->next;
        free_stats(s);
    }
    if (l->metrics)
        eb_metrics_unbind(l->metrics, l);
    free(l->username);
    free_secret(l->password);
    free(l->databases);
    free(l->tls_key);
    /* After the links (freed first above): hiredis held sessions of them. */
    eb_redis_tls_destroy(l->tls);
    eb_redis_tls_destroy(l->old_tls);
    eb_buf_free(&l->kbuf);
    eb_buf_free(&l->pbuf);
    eb_buf_free(&l->jbuf);
    free(l);
}

static bool make_events(eb_ledger_t *l) {
    l->ev_sweep = event_new(l->base, -1, EV_PERSIST, eb_ledger_sweep_on_interval, l);
    l->ev_renew = event_new(l->base, -1, EV_PERSIST, eb_ledger_claims_on_renew_timer, l);
    l->acks.ev = evtimer_new(l->base, eb_ledger_claims_on_ack_timer, l);
    l->claims.ev = evtimer_new(l->base, eb_ledger_claims_on_claim_timer, l);
    l->ev_room = evtimer_new(l->base, eb_ledger_sweep_on_timer, l);
    return l->ev_sweep && l->ev_renew && l->acks.ev && l->claims.ev && l->ev_room;
}

eb_ledger_t *eb_ledger_new(struct event_base *base, const struct eb_ledger_conf *conf,
                           const struct eb_config *cfg, char *errstr, size_t errstr_size) {
    if (!base || !conf || !conf->emit || !conf->metrics || !cfg) {
        eb_error_set(errstr, errstr_size, EB_EINVAL,
                     "ledger needs an event base, an emit callback, metrics and a "
                     "configuration");
        return NULL;
    }
    eb_ledger_t *l = calloc(1, sizeof(*l));
    if (!l) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory");
        return NULL;
    }
    l->base = base;
    l->log = conf->log;
    l->metrics = conf->metrics;
    l->emit = conf->emit;
    l->emit_opaque = conf->opaque;
    l->id_expire = eb_notify_event_id("expire", 6);
    l->id_del = eb_notify_event_id("del", 3);
    l->id_persist = eb_notify_event_id("persist", 7);
    if (!make_events(l) || !eb_ledger_links_init(l) || register_metrics(l) != 0 ||
        !eb_ledger_tickets_init(l)) {
        eb_error_set(errstr, errstr_size, EB_ENOMEM, "out of memory setting up the ledger");
        goto err_free_fields;
    }
    if (eb_ledger_set_config(l, cfg, errstr, errstr_size) != 0)
        goto err_free_fields;
    return l;

err_free_fields:
    free_fields(l);
    return NULL;
}

int eb_ledger_start(eb_ledger_t *l) {
    if (l->started)
        return EB_ESTATE;
    l->started = true;
    struct timeval sweep = eb_ms_tv(l->sweep_interval_ms), renew = eb_ms_tv(l->claim_ttl_ms / 3);
    event_add(l->ev_sweep, &sweep);
    event_add(l->ev_renew, &renew);
    size_t masters = 0;
    for (const struct ledger_link *k = l->links; k; k = k->next)
        masters++;
    eb_log(l->log, EB_LOG_INFO, "ledger starting", eb_lf_int("masters", (int64_t)masters),
           eb_lf_int("sweep_interval_ms", l->sweep_interval_ms),
           eb_lf_int("claim_ttl_ms", l->claim_ttl_ms),
           eb_lf_int("max_inflight", (int64_t)l->max_tickets));
    eb_ledger_links_start(l);
    return 0;
}

void eb_ledger_stop(eb_ledger_t *l) {
    if (!l || l->stopped)
        return;
    l->stopped = true;
    event_del(l->ev_sweep);
    event_del(l->ev_room);
    for (struct ledger_link *k = l->links; k; k = k->next) {
        eb_ledger_sweep_abort(k);
        eb_ledger_scan_abort(k, false);
        eb_ledger_probe_abort(k);
    }
}

bool eb_ledger_busy(const eb_ledger_t *l) {
    return l && l->ntickets > 0 && eb_ledger_links_any_ready(l);
}

void eb_ledger_on_source_state(eb_ledger_t *l, enum eb_redis_state state) {
    bool was = l->source_subscribed;
    l->source_subscribed = state == EB_REDIS_SUBSCRIBED;
    if (!l->source_subscribed || was || l->stopped)
        return;
    /* (Re)subscribed: whatever expired during the gap was not announced to
     * us. Sweep now rather than in up to one interval, and record what
     * observed routes armed meanwhile (each master's own resubscription
     * does the same for it: eb_ledger_on_unit_subscribed()). */
    eb_ledger_sweep_start_all(l);
    eb_ledger_scan_start_all(l);
}

void eb_ledger_log_stats(const eb_ledger_t *l) {
    double pending = 0, overdue = 0;
    for (const struct lstats *s = l->all_stats; s; s = s->next) {
        pending += eb_metrics_value(s->pending);
        overdue += eb_metrics_value(s->overdue);
    }
    eb_log(l->log, EB_LOG_INFO, "ledger stats", eb_lf_bool("connected", eb_ledger_links_all_ready(l)),
           eb_lf_int("pending", (int64_t)pending), eb_lf_int("overdue", (int64_t)overdue),
           eb_lf_int("inflight", (int64_t)l->ntickets),
           eb_lf_int("recovered", (int64_t)l->total_recovered),
           eb_lf_int("acked", (int64_t)l->total_acked),
           eb_lf_int("deferred", (int64_t)l->total_deferred),
           eb_lf_int("sweeps", (int64_t)l->total_sweeps),
           eb_lf_dbl("sweep_p99_s", eb_metrics_quantile(l->m_sweep, 0.99)));
}

void eb_ledger_destroy(eb_ledger_t *l) {
    if (!l)
        return;
    l->destroying = true;
    l->stopped = true;
    /* NULL replies now (free_fields destroys the links first): claims are
     * freed, acks parked; then every ticket goes. Aborts if called from
     * inside a client's callbacks. */
    free_fields(l);
}
