/* ledger_links.c -- the deadline ledger's Redis connections: one per master
 * the topology reports (redis_topology.h), and where each command goes.
 *
 * A link is a redis_client.h command client ("expiry-bridge:ledger") to
 * one master: standalone, the server; Sentinel, the master the sentinels
 * name (a new link after a switch); Cluster, every master. Once a link is
 * READY it loads the function library (FUNCTION LOAD REPLACE: a promoted
 * replica has it replicated, a restarted master without persistence does
 * not, and loading is idempotent) and only then counts as ready. Links are
 * made and retired when the topology says its masters changed; a retired
 * link is stopped at once and destroyed on the next turn of the loop,
 * never inside a callback.
 *
 * Routing. A ledger lives in the slot of its name's hash tag; a command on
 * a ledger goes to the link of the master serving that slot, as the
 * topology's last Cluster map says (one link elsewhere). The map can be
 * stale: a MOVED, ASK or the error of a node in a failover (TRYAGAIN,
 * CLUSTERDOWN, READONLY, MASTERDOWN, LOADING) asks the topology to read the
 * map now, and the command is sent again -- at once to the node a MOVED or
 * ASK names when its link is ready, else after a backoff or as soon as the
 * map changed -- at most MAX_REDIRECTS times; then its handler gets NULL,
 * which every handler reads as "not done: leave it for later" (a claim's
 * entry stays for the sweep, an acknowledgement waits). Nothing is
 * acknowledged that was not delivered.
 *
 * @locality loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/keyslot.h"
#include "ledger/ledger_internal.h"
#include "redis/cluster_map.h"

/* An idle link is PINGed this often, so that the next claim does not find
 * it dead. */
#define IDLE_PING_MS 1000

/* A redirected command is sent again at most this many times: with the
 * backoff below, for about 6.5 s -- longer than a Cluster failover takes
 * (node timeout + election), short enough that an acknowledgement or a
 * claim does not wait for long on a cluster that stays broken (then the
 * entry stays in the ledger, and is delivered again later). */
#define MAX_REDIRECTS 10
#define RETRY_FIRST_MS 50
#define RETRY_MAX_MS 1000

/* ------------------------------------------------------------------------
 * Ledger names and slots
 * --------------------------------------------------------------------- */

void eb_ledger_part_key(const eb_ledger_t *l, const struct lstats *ls, struct lpart part,
                        struct eb_buf *out) {
    eb_buf_reset(out);
    if (part.kind == LK_BUCKET)
        eb_ledger_bucket_key(out, ls->prefix, ls->route, part.n);
    else if (part.kind == LK_SLOT && l->tags)
        eb_ledger_slot_key(out, ls->prefix, ls->route, l->tags->tag[part.n]);
    else
        eb_buf_append(out, ls->lkey, ls->lkey_len);
}

unsigned eb_ledger_part_slot(const struct lstats *ls, struct lpart part) {
    if (part.kind == LK_SLOT)
        return part.n;
    if (part.kind == LK_BUCKET) {
        char tag[300];
        int n = snprintf(tag, sizeof(tag), "%s:%u", ls->route, (unsigned)part.n);
        return eb_keyslot_crc16(tag, n > 0 ? (size_t)n : 0) & (EB_KEYSLOT_COUNT - 1);
    }
    return ls->lkey_slot;
}

void eb_ledger_fcall_head(const eb_ledger_t *l, struct eb_redis_argv *a, const char *fn,
                          size_t numkeys, const struct lstats *ls, struct lpart part) {
    struct eb_buf k = EB_BUF_INIT;
    eb_ledger_part_key(l, ls, part, &k);
    eb_redis_argv_init(a);
    eb_redis_argv_add_str(a, "FCALL");
    eb_redis_argv_add_str(a, fn);
    eb_redis_argv_add_size(a, numkeys);
    if (eb_buf_ok(&k))
        eb_redis_argv_add_copy(a, k.data, k.len);
    else
        a->failed = true;
    eb_buf_free(&k);
}

/* ------------------------------------------------------------------------
 * Finding links
 * --------------------------------------------------------------------- */

static struct ledger_link *find_link(const eb_ledger_t *l, const char *host, int port) {
    for (struct ledger_link *k = l->links; k; k = k->next) {
        if (k->port == port && strcasecmp(k->host, host) == 0)
            return k;
    }
    return NULL;
}

/* The topology's unit of k's master, or NULL when it lists none (or there
 * is no topology). */
static const struct eb_redis_unit *unit_of(const eb_ledger_t *l, const struct ledger_link *k) {
    size_t n = l->topo ? eb_redis_topology_units(l->topo, NULL, NULL) : 0;
    for (size_t i = 0; i < n; i++) {
        const struct eb_redis_unit *u = eb_redis_topology_unit(l->topo, i);
        if (u->port == k->port && strcasecmp(u->host, k->host) == 0)
            return u;
    }
    return NULL;
}

bool eb_ledger_link_owned(const eb_ledger_t *l, const struct ledger_link *k) {
    const struct eb_redis_unit *u = unit_of(l, k);
    return !u || eb_redis_topology_owns(l->topo, u->id);
}

struct ledger_link *eb_ledger_link_for_slot(const eb_ledger_t *l, unsigned slot) {
    if (!l->cluster)
        return l->links;
    return l->slot_link ? l->slot_link[slot & (EB_KEYSLOT_COUNT - 1)] : NULL;
}

bool eb_ledger_links_any_ready(const eb_ledger_t *l) {
    for (const struct ledger_link *k = l->links; k; k = k->next) {
        if (k->ready)
            return true;
    }
    return false;
}

bool eb_ledger_links_all_ready(const eb_ledger_t *l) {
    for (const struct ledger_link *k = l->links; k; k = k->next) {
        if (!k->ready)
            return false;
    }
    return l->links != NULL;
}

/* ------------------------------------------------------------------------
 * Requests
 * --------------------------------------------------------------------- */

static void retry_push(eb_ledger_t *l, struct lreq *req);

static void req_finish(struct lreq *req, const redisReply *r) {
    req->done(req->l, req, r);
    free(req->ts);
    free(req->cmd);
    free(req);
}

static struct lcmd *cmd_copy(const struct eb_redis_argv *a) {
    size_t bytes = 0, n = (size_t)a->argc;
    for (size_t i = 0; i < n; i++)
        bytes += a->argvlen[i];
    struct lcmd *c = malloc(sizeof(*c) + n * (sizeof(char *) + sizeof(size_t)) + bytes);
    if (!c)
        return NULL;
    c->argc = a->argc;
    c->argv = (const char **)(c + 1);
    c->argvlen = (size_t *)(c->argv + n);
    char *d = (char *)(c->argvlen + n);
    for (size_t i = 0; i < n; i++) {
        memcpy(d, a->argv[i], a->argvlen[i]);
        c->argv[i] = d;
        c->argvlen[i] = a->argvlen[i];
        d += a->argvlen[i];
    }
    return c;
}

/* Record on k that slot holds a ledger this process wrote (observed mode on
 * Cluster): its sweep visits it from now on. */
static void mark_observed(struct ledger_link *k, unsigned slot) {
    if (!k->slots)
        return;
    k->slots[slot] |= SLOT_KNOWN;
    k->obs_seq[slot] = ++k->seq;
}

void eb_ledger_observe_sent(struct lreq *req) {
    req->observe = true;
    if (req->link)
        mark_observed(req->link, req->slot);
}

static void on_reply(const redisReply *r, void *opaque);

static void on_ignore(const redisReply *r, void *opaque) {
    (void)r;
    (void)opaque;
}

/* Send req's kept command on k (ASKING first when asking). */
static bool resend(eb_ledger_t *l, struct lreq *req, struct ledger_link *k, bool asking) {
    (void)l;
    if (!k->ready)
        return false;
    if (asking) {
        const char *argv[] = {"ASKING"};
        /* In req's database, so no SELECT comes between: ASKING holds for
         * the next command only. */
        if (eb_redis_client_command(k->client, req->db, on_ignore, NULL, 1, argv, NULL) != 0)
            return false;
    }
    if (eb_redis_client_command(k->client, req->db, on_reply, req, req->cmd->argc,
                                req->cmd->argv, req->cmd->argvlen) != 0)
        return false;
    req->link = k;
    if (req->observe)
        mark_observed(k, req->slot);
    return true;
}

/* A redirection of a routed command: send it again (now, or once the map
 * changed or a backoff passed). False when r is not one. */
static bool follow(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct eb_cluster_redirect rd;
    enum eb_cluster_redirect_kind kind = eb_cluster_redirect_parse(r->str, r->len, &rd);
    if (kind == EB_CLUSTER_REDIRECT_NONE)
        return false;
    eb_metrics_inc(l->m_redirect[kind]);
    if (l->topo)
        eb_redis_topology_poll_now(l->topo);
    if (req->tries >= MAX_REDIRECTS || l->destroying) {
        eb_metrics_inc(l->m_redirect[EB_CLUSTER_REDIRECT_NONE]);
        if (eb_ledger_log_allow(l, LOGSLOT_REDIRECT))
            eb_log(l->log, EB_LOG_WARN,
                   "ledger: a command was redirected too often; left for a later attempt (the "
                   "entry stays in the ledger)",
                   eb_lf_str("detail", eb_redis_reply_text(r)),
                   eb_lf_int("redirections", (int64_t)req->tries));
        req_finish(req, NULL);
        return true;
    }
    req->tries++;
    if (kind == EB_CLUSTER_REDIRECT_MOVED || kind == EB_CLUSTER_REDIRECT_ASK) {
        const char *host = rd.host[0] ? rd.host : req->link ? req->link->host : "";
        struct ledger_link *k = find_link(l, host, rd.port);
        if (k && resend(l, req, k, kind == EB_CLUSTER_REDIRECT_ASK))
            return true;
    }
    retry_push(l, req);
    return true;
}

/* The client's answer to a request. @locality loop thread (inside hiredis,
 * or while the connection closes). */
static void on_reply(const redisReply *r, void *opaque) {
    struct lreq *req = opaque;
    if (r && req->cmd && eb_redis_reply_is_error(r) && follow(req->l, req, r))
        return;
    req_finish(req, r);
}

/* Send a on k; ready_only: only once the library is loaded. */
static struct lreq *send_on(eb_ledger_t *l, struct ledger_link *k, eb_ledger_reply_fn *done,
                            int db, struct eb_redis_argv *a, bool ready_only) {
    struct lreq *req = NULL;
    if (eb_redis_argv_ok(a) && k && k->client && !k->gone && (k->ready || !ready_only) &&
        (req = calloc(1, sizeof(*req)))) {
        req->l = l;
        req->done = done;
        req->link = k;
        req->db = db;
        if (eb_redis_client_command(k->client, db, on_reply, req, a->argc, a->argv, a->argvlen) !=
            0) {
            free(req);
            req = NULL;
        }
    }
    eb_redis_argv_free(a);
    return req;
}

struct lreq *eb_ledger_send(eb_ledger_t *l, struct ledger_link *k, eb_ledger_reply_fn *done,
                            int db, struct eb_redis_argv *a) {
    return send_on(l, k, done, db, a, true);
}

struct lreq *eb_ledger_send_slot(eb_ledger_t *l, unsigned slot, eb_ledger_reply_fn *done, int db,
                                 struct eb_redis_argv *a) {
    struct ledger_link *k = eb_ledger_link_for_slot(l, slot);
    struct lreq *req = NULL;
    if (eb_redis_argv_ok(a) && k && k->ready && (req = calloc(1, sizeof(*req))) &&
        (req->cmd = cmd_copy(a))) {
        req->l = l;
        req->done = done;
        req->db = db;
        req->slot = slot & (EB_KEYSLOT_COUNT - 1);
        if (!resend(l, req, k, false)) {
            free(req->cmd);
            free(req);
            req = NULL;
        }
    } else if (req) {
        free(req);
        req = NULL;
    }
    eb_redis_argv_free(a);
    return req;
}

bool eb_ledger_library_missing(eb_ledger_t *l, const struct lreq *req, const redisReply *r) {
    (void)l;
    if (!r || !eb_redis_reply_is_error(r) ||
        !strstr(eb_redis_reply_text(r), "Function not found") || !req->link)
        return false;
    eb_redis_client_fail(req->link->client, EB_REDIS_DOWN_OWNER,
                         "ledger: the function library vanished (FUNCTION FLUSH?); reconnecting "
                         "to load it again",
                         eb_redis_reply_text(r), NULL);
    return true;
}

/* ------------------------------------------------------------------------
 * Commands waiting to be sent again
 * --------------------------------------------------------------------- */

static void retry_arm(eb_ledger_t *l) {
    if (!l->retry_head || l->destroying)
        return;
    unsigned tries = l->retry_head->tries;
    int ms = RETRY_FIRST_MS << (tries > 5 ? 5 : tries);
    struct timeval tv = eb_ms_tv(ms < RETRY_MAX_MS ? ms : RETRY_MAX_MS);
    evtimer_add(l->ev_retry, &tv);
}

static void retry_push(eb_ledger_t *l, struct lreq *req) {
    req->next = NULL;
    if (l->retry_tail)
        l->retry_tail->next = req;
    else
        l->retry_head = req;
    l->retry_tail = req;
    if (!evtimer_pending(l->ev_retry, NULL))
        retry_arm(l);
}

/* Send what waits to whoever serves its slot now; count: this is the
 * backoff's turn (an attempt), not a change of the map. */
static void retry_flush(eb_ledger_t *l, bool count) {
    struct lreq *req = l->retry_head;
    l->retry_head = l->retry_tail = NULL;
    while (req) {
        struct lreq *next = req->next;
        req->next = NULL;
        struct ledger_link *k = eb_ledger_link_for_slot(l, req->slot);
        if (k && resend(l, req, k, false)) {
            /* sent */
        } else if (count && req->tries >= MAX_REDIRECTS) {
            eb_metrics_inc(l->m_redirect[EB_CLUSTER_REDIRECT_NONE]);
            req_finish(req, NULL);
        } else {
            req->tries += count;
            retry_push(l, req);
        }
        req = next;
    }
    retry_arm(l);
}

/* @locality loop thread (libevent timer). */
static void on_retry(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    retry_flush(arg, true);
}

/* ------------------------------------------------------------------------
 * A link's connection
 * --------------------------------------------------------------------- */

/* Flush waiting acknowledgements and redirected commands on the next turn
 * (a link became ready, or the topology changed). */
static void want_flush(eb_ledger_t *l) {
    if (l->destroying)
        return;
    l->flush_wanted = true;
    event_active(l->ev_reap, 0, 0);
}

static void on_ready(eb_ledger_t *l, struct ledger_link *k) {
    k->ready = true;
    eb_redis_client_established(k->client);
    eb_metrics_inc(l->m_loads_ok);
    int64_t waiting = 0;
    for (const eb_ledger_ticket_t *t = l->ack_wait; t; t = t->wnext)
        waiting++;
    eb_log(l->log, EB_LOG_INFO, "ledger: connected, function library loaded",
           eb_lf_str("host", k->host), eb_lf_int("port", k->port),
           eb_lf_int("acks_waiting", waiting));
    want_flush(l);
    if (l->stopped)
        return;
    eb_ledger_sweep_start(l, k);
    eb_ledger_scan_start(l, k);
    eb_ledger_probe_start(l, k);
}

static void on_load(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct ledger_link *k = req->link;
    if (!r || k->gone)
        return;
    if (eb_redis_reply_is_error(r)) {
        eb_metrics_inc(l->m_loads_failed);
        eb_log(l->log, EB_LOG_ERROR,
               "ledger: cannot load the Redis Function library eb_timers_v1; retrying",
               eb_lf_str("host", k->host), eb_lf_int("port", k->port),
               eb_lf_str("detail", eb_redis_reply_text(r)),
               eb_lf_str("hint", "needs Redis >= 7.0 on a master; an ACL user needs "
                                 "+function|load +fcall and access to the ledger keys"));
        eb_redis_client_fail(k->client, EB_REDIS_DOWN_OWNER, "ledger: function library not loaded",
                             eb_redis_reply_text(r), NULL);
        return;
    }
    on_ready(l, k);
}

/* @locality loop thread (the client's timers, or inside hiredis). */
static void on_client_state(eb_redis_client_t *c, enum eb_redis_client_state st,
                            const struct eb_redis_client_down *d, void *opaque) {
    struct ledger_link *k = opaque;
    eb_ledger_t *l = k->l;
    if (st == EB_REDIS_CLIENT_READY) {
        struct eb_redis_argv load;
        eb_ledger_install_load_args(&load);
        if (!send_on(l, k, on_load, -1, &load, false))
            eb_redis_client_fail(c, EB_REDIS_DOWN_OWNER, "ledger: FUNCTION LOAD not queued",
                                 "out of memory", NULL);
        return;
    }
    if (st != EB_REDIS_CLIENT_WAITING && st != EB_REDIS_CLIENT_STOPPED)
        return;
    k->ready = false;
    eb_ledger_sweep_abort(k);
    eb_ledger_scan_abort(k, true);
    eb_ledger_probe_abort(k);
    if (!k->gone)
        eb_redis_client_log_down(c, d, NULL);
}

static const struct eb_redis_client_handlers client_handlers = {
    .on_state = on_client_state,
    .on_message = NULL,
};

/* A client for k with the current settings. The source's connections to
 * the same server report a failed attempt; the ledger's are debug. */
static eb_redis_client_t *make_client(eb_ledger_t *l, struct ledger_link *k, char *errstr,
                                      size_t errstr_size) {
    struct eb_redis_client_conf cc = {
        .name = "ledger",
        .client_name = "expiry-bridge:ledger",
        .host = k->host,
        .port = k->port,
        .username = l->username,
        .password = l->password,
        .tls = l->tls,
        .kind = EB_REDIS_CLIENT_COMMANDS,
        .connect_timeout_ms = l->connect_timeout_ms,
        .reply_timeout_ms = l->reply_timeout_ms,
        .idle_ping_ms = IDLE_PING_MS,
        .reconnect_min_ms = l->reconnect_min_ms,
        .reconnect_max_ms = l->reconnect_max_ms,
        .log = l->log,
        .quiet_attempts = true,
        .handlers = &client_handlers,
        .opaque = k,
    };
    return eb_redis_client_new(l->base, &cc, errstr, errstr_size);
}

static void link_free(struct ledger_link *k) {
    if (!k)
        return;
    eb_redis_client_destroy(k->client);
    free(k->sw.p.dbs);
    free(k->sc.p.dbs);
    free(k->node);
    free(k->host);
    free(k->slots);
    free(k->obs_seq);
    free(k->gauges);
    free(k);
}

static struct ledger_link *link_new(eb_ledger_t *l, const char *host, int port) {
    char err[256];
    char node[300];
    bool v6 = strchr(host, ':') != NULL;
    snprintf(node, sizeof(node), "%s%.256s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
    struct ledger_link *k = calloc(1, sizeof(*k));
    if (!k || !(k->host = strdup(host)) || !(k->node = strdup(node)))
        goto err_free;
    k->l = l;
    k->port = port;
    if (!(k->client = make_client(l, k, err, sizeof(err)))) {
        eb_log(l->log, EB_LOG_ERROR, "ledger: cannot make a connection", eb_lf_str("host", host),
               eb_lf_int("port", port), eb_lf_str("error", err));
        goto err_free;
    }
    return k;

err_free:
    link_free(k);
    return NULL;
}

/* Out of the list: stopped now (its commands are answered NULL), destroyed
 * on the next turn of the loop. */
static void link_retire(eb_ledger_t *l, struct ledger_link *k) {
    for (struct ledger_link **pp = &l->links; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            break;
        }
    }
    k->gone = true;
    k->ready = false;
    k->next = l->retired;
    l->retired = k;
    eb_ledger_sweep_abort(k);
    eb_ledger_scan_abort(k, false);
    eb_ledger_probe_abort(k);
    eb_redis_client_stop(k->client);
    event_active(l->ev_reap, 0, 0);
}

/* @locality loop thread (libevent, activated on purpose). */
static void on_reap(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    (void)fd;
    (void)what;
    while (l->retired) {
        struct ledger_link *k = l->retired;
        l->retired = k->next;
        link_free(k);
    }
    if (l->flush_wanted && !l->destroying) {
        l->flush_wanted = false;
        eb_ledger_claims_flush_acks(l);
        retry_flush(l, false);
    }
}

/* ------------------------------------------------------------------------
 * Following the topology
 * --------------------------------------------------------------------- */

static bool any_slot_ledgers(const eb_ledger_t *l) {
    for (size_t i = 0; i < l->nroutes; i++) {
        if (l->routes[i].kind == LK_SLOT && l->routes[i].ledgered)
            return true;
    }
    return false;
}

/* Cluster: which link serves each slot; a link that took slots over
 * probes them for slot ledgers (observed routes). */
static void rebuild_slots(eb_ledger_t *l) {
    if (!l->cluster || !l->topo) {
        free(l->slot_link);
        l->slot_link = NULL;
        return;
    }
    if (!l->slot_link && !(l->slot_link = calloc(EB_KEYSLOT_COUNT, sizeof(*l->slot_link))))
        return;
    bool probe = any_slot_ledgers(l);
    for (unsigned s = 0; s < EB_KEYSLOT_COUNT; s++) {
        const struct eb_redis_unit *u = eb_redis_topology_node_for_slot(l->topo, s);
        struct ledger_link *k = u ? find_link(l, u->host, u->port) : NULL;
        l->slot_link[s] = k;
        if (!probe || !k || !k->slots || (k->slots[s] & SLOT_OWNED))
            continue;
        k->slots[s] |= SLOT_OWNED | SLOT_PROBE;
    }
    if (!probe)
        return;
    for (struct ledger_link *k = l->links; k; k = k->next) {
        bool any = false;
        for (unsigned s = 0; k->slots && s < EB_KEYSLOT_COUNT; s++) {
            if (l->slot_link[s] != k)
                k->slots[s] &= (uint8_t) ~(SLOT_OWNED | SLOT_KNOWN | SLOT_PROBE);
            any |= (k->slots[s] & SLOT_PROBE) != 0;
        }
        if (any && k->ready && !l->stopped)
            eb_ledger_probe_start(l, k);
    }
}

/* Per-slot state of a link, for observed routes on Cluster. */
static bool link_slots(eb_ledger_t *l, struct ledger_link *k) {
    if (!l->cluster || !any_slot_ledgers(l) || k->slots)
        return true;
    k->slots = calloc(EB_KEYSLOT_COUNT, sizeof(*k->slots));
    k->obs_seq = calloc(EB_KEYSLOT_COUNT, sizeof(*k->obs_seq));
    return k->slots && k->obs_seq;
}

/* Make the links the masters of the topology, as a difference. */
static void sync_links(eb_ledger_t *l) {
    if (!l->topo || l->destroying)
        return;
    size_t n = eb_redis_topology_units(l->topo, NULL, NULL);
    for (struct ledger_link *k = l->links, *next; k; k = next) {
        next = k->next;
        if (!unit_of(l, k)) {
            eb_log(l->log, EB_LOG_INFO, "ledger: a master left the topology; closing its link",
                   eb_lf_str("host", k->host), eb_lf_int("port", k->port));
            link_retire(l, k);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct eb_redis_unit *u = eb_redis_topology_unit(l->topo, i);
        if (find_link(l, u->host, u->port))
            continue;
        struct ledger_link *k = link_new(l, u->host, u->port);
        if (!k)
            continue;
        k->next = l->links;
        l->links = k;
        if (l->started)
            eb_redis_client_start(k->client);
    }
    for (struct ledger_link *k = l->links; k; k = k->next)
        link_slots(l, k);
    rebuild_slots(l);
    want_flush(l);
}

void eb_ledger_set_topology(eb_ledger_t *l, eb_redis_topology_t *t) {
    bool another = l->topo && t && l->topo != t;
    l->topo = t;
    sync_links(l);
    if (another && !l->stopped) {
        /* Another source: its subscription counts as a new one. */
        eb_ledger_sweep_start_all(l);
        eb_ledger_scan_start_all(l);
    }
}

void eb_ledger_on_units_changed(eb_ledger_t *l) {
    if (l)
        sync_links(l);
}

void eb_ledger_on_unit_subscribed(eb_ledger_t *l, const struct eb_redis_unit *u) {
    if (!l || l->stopped)
        return;
    struct ledger_link *k = find_link(l, u->host, u->port);
    if (!k) {
        sync_links(l);
        k = find_link(l, u->host, u->port);
    }
    if (!k)
        return;
    /* What the master announced while it was not subscribed is lost:
     * sweep its ledgers now, record what observed routes armed meanwhile,
     * and (Cluster) look for slot ledgers this process did not write. */
    eb_ledger_sweep_start(l, k);
    eb_ledger_scan_start(l, k);
    eb_ledger_probe_all_owned(l, k);
    eb_ledger_probe_start(l, k);
}

void eb_ledger_links_routes_changed(eb_ledger_t *l) {
    bool slots = l->cluster && any_slot_ledgers(l);
    if (slots && !l->tags) {
        l->tags = malloc(sizeof(*l->tags));
        if (l->tags && eb_ledger_slot_tags_build(l->tags) != 0) {
            free(l->tags);
            l->tags = NULL;
        }
    }
    for (struct ledger_link *k = l->links; k; k = k->next) {
        eb_ledger_sweep_abort(k);
        eb_ledger_scan_abort(k, false);
        eb_ledger_probe_abort(k);
        link_slots(l, k);
    }
    rebuild_slots(l);
    for (struct ledger_link *k = l->links; k; k = k->next) {
        if (slots)
            eb_ledger_probe_all_owned(l, k);
        if (!k->ready || l->stopped)
            continue;
        eb_ledger_sweep_start(l, k);
        eb_ledger_scan_start(l, k);
        eb_ledger_probe_start(l, k);
    }
}

/* ------------------------------------------------------------------------
 * Lifecycle
 * --------------------------------------------------------------------- */

int eb_ledger_links_reconnect(eb_ledger_t *l) {
    char err[256];
    for (struct ledger_link *k = l->links; k; k = k->next) {
        eb_redis_client_t *c = make_client(l, k, err, sizeof(err));
        if (!c)
            return EB_ENOMEM;
        eb_redis_client_t *old = k->client;
        k->client = c;
        k->ready = false;
        eb_ledger_sweep_abort(k);
        eb_ledger_scan_abort(k, true);
        eb_ledger_probe_abort(k);
        /* Its requests see NULL replies: claims are freed, acknowledgements
         * parked for the new connection. Never from inside its callbacks. */
        eb_redis_client_destroy(old);
        if (l->started) {
            eb_log(l->log, EB_LOG_INFO, "ledger: redis settings changed; reconnecting",
                   eb_lf_str("host", k->host), eb_lf_int("port", k->port));
            eb_redis_client_start(c);
        }
    }
    return 0;
}

void eb_ledger_links_start(eb_ledger_t *l) {
    for (struct ledger_link *k = l->links; k; k = k->next)
        eb_redis_client_start(k->client);
}

bool eb_ledger_links_init(eb_ledger_t *l) {
    l->ev_reap = event_new(l->base, -1, 0, on_reap, l);
    l->ev_retry = evtimer_new(l->base, on_retry, l);
    return l->ev_reap && l->ev_retry;
}

void eb_ledger_links_free(eb_ledger_t *l) {
    /* NULL replies now: claims are freed, acks parked. */
    while (l->links) {
        struct ledger_link *k = l->links;
        l->links = k->next;
        k->ready = false;
        k->gone = true;
        link_free(k);
    }
    while (l->retired) {
        struct ledger_link *k = l->retired;
        l->retired = k->next;
        link_free(k);
    }
    while (l->retry_head) {
        struct lreq *req = l->retry_head;
        l->retry_head = req->next;
        req_finish(req, NULL);
    }
    l->retry_tail = NULL;
    free(l->slot_link);
    l->slot_link = NULL;
    if (l->ev_reap)
        event_free(l->ev_reap);
    if (l->ev_retry)
        event_free(l->ev_retry);
    l->ev_reap = l->ev_retry = NULL;
}
