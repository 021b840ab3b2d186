/* ledger_sweep.c -- the periodic sweep of the deadline ledger, and the walk
 * over (database, route, ledger) triples it shares with observed mode's
 * SCAN.
 *
 * Each link (one master) sweeps the ledgers its master serves: a route's
 * one ledger, its buckets, or (observed routes on Cluster) the slot
 * ledgers it knows of. Every sweep_interval (and at once after a master's
 * (re)subscription, or when room for tickets frees up after expiries were
 * left in Redis), page by page:
 * eb1_due lists overdue entries no claim holds; an entry that became
 * overdue since the previous pass is only touched (Redis expires the key
 * and announces it: delivered live), one still there on a later pass lost
 * its notification and is claimed with eb1_collect, then produced as
 * `delivery: recovered` (ledger_claims.c). A cycle stops early at the
 * ticket bound and goes on when tickets are freed (ledger_tickets.c).
 *
 * @locality loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/clock.h"
#include "ledger/ledger_internal.h"

/* ------------------------------------------------------------------------
 * Walks over (database, route) pairs
 * --------------------------------------------------------------------- */

/* The databases INFO keyspace reports (databases: all). */
static int *dbs_from_info(const redisReply *r, size_t *n) {
    *n = 0;
    if (!r || r->type != REDIS_REPLY_STRING)
        return NULL;
    size_t cap = 16;
    int *dbs = malloc(cap * sizeof(*dbs));
    if (!dbs)
        return NULL;
    for (const char *p = r->str; (p = strstr(p, "\ndb")) != NULL;) {
        p += 3;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || *end != ':' || v < 0 || v > 65535)
            continue;
        if (*n == cap) {
            int *g = realloc(dbs, cap * 2 * sizeof(*dbs));
            if (!g)
                break;
            dbs = g;
            cap *= 2;
        }
        dbs[(*n)++] = (int)v;
    }
    return dbs;
}

static int *dbs_configured(const eb_ledger_t *l, size_t *n) {
    if (l->cluster) {
        /* Cluster has database 0 only. */
        int *one = malloc(sizeof(*one));
        if (one)
            *one = 0;
        *n = 1;
        return one;
    }
    *n = l->ndatabases;
    int *dbs = malloc((l->ndatabases ? l->ndatabases : 1) * sizeof(*dbs));
    if (dbs && l->ndatabases)
        memcpy(dbs, l->databases, l->ndatabases * sizeof(*dbs));
    return dbs;
}

static bool pass_visits(const struct lroute *lr, enum pass_kind kind) {
    return kind == PASS_LEDGERED ? lr->ledgered : lr->observed;
}

bool eb_ledger_sweep_any_route(const eb_ledger_t *l, enum pass_kind kind) {
    for (size_t i = 0; i < l->nroutes; i++) {
        if (pass_visits(&l->routes[i], kind))
            return true;
    }
    return false;
}

/* Begin a pass from its first pair. Returns 1 when the databases are known
 * and the first step can be sent, 0 when it waits for the reply to INFO
 * keyspace (handled by on_info), -1 when nothing could be sent (the caller
 * ends the pass). */
int eb_ledger_pass_begin(struct ledger_link *k, struct pass *p, eb_ledger_reply_fn *on_info) {
    eb_ledger_t *l = k->l;
    p->running = true;
    p->again = false;
    p->gen++;
    p->start_ns = eb_mono_ns();
    p->di = p->ri = 0;
    p->pi = 0;
    if (l->all_databases && !l->cluster) {
        struct eb_redis_argv a;
        eb_redis_argv_init(&a);
        eb_redis_argv_add_str(&a, "INFO");
        eb_redis_argv_add_str(&a, "keyspace");
        struct lreq *r = eb_ledger_send(l, k, on_info, -1, &a);
        if (!r)
            return -1;
        r->gen = p->gen;
        return 0;
    }
    p->dbs = dbs_configured(l, &p->ndbs);
    return p->dbs ? 1 : -1;
}

/* The reply to a pass's INFO keyspace: 1 when the databases are known and
 * the first step can be sent, 0 when it belongs to an ended pass (ignore
 * it), -1 when the pass cannot go on (the caller ends it). */
int eb_ledger_pass_on_info(struct pass *p, const struct lreq *req, const redisReply *r) {
    if (req->gen != p->gen || !p->running)
        return 0;
    if (!r || eb_redis_reply_is_error(r))
        return -1;
    p->dbs = dbs_from_info(r, &p->ndbs);
    return p->dbs ? 1 : -1;
}

bool eb_ledger_pass_current(const struct pass *p, const struct lreq *req) {
    return p->running && req->gen == p->gen;
}

/* Ledger i of lr: a bucket's last one is the route's own (ledger_internal.h). */
static struct lpart part_of(const struct lroute *lr, unsigned i) {
    if (lr->kind == LK_ROUTE || (lr->kind == LK_BUCKET && i + 1 == lr->nparts))
        return (struct lpart){LK_ROUTE, 0};
    return (struct lpart){lr->kind, (uint16_t)i};
}

struct lpart eb_ledger_pass_part(const eb_ledger_t *l, const struct pass *p) {
    return part_of(&l->routes[p->ri], p->pi);
}

/* True when link k sweeps ledger i of route lr: its master serves the
 * ledger's slot, and a slot ledger is one known to exist. */
static bool part_visited(const eb_ledger_t *l, const struct ledger_link *k,
                         const struct lroute *lr, unsigned i) {
    if (lr->kind == LK_SLOT && !(k->slots && (k->slots[i] & SLOT_KNOWN)))
        return false;
    if (!l->cluster)
        return true;
    return eb_ledger_link_for_slot(l, eb_ledger_part_slot(lr->ls, part_of(lr, i))) == k;
}

/* Skip to the next triple of the pass that is of its kind and k's, from
 * the current one on. False when every one has been visited. A scan
 * (PASS_OBSERVED) visits one "ledger" per route: its prefix. */
bool eb_ledger_pass_seek(const eb_ledger_t *l, const struct ledger_link *k, struct pass *p,
                         enum pass_kind kind) {
    while (p->di < p->ndbs) {
        if (p->ri >= l->nroutes) {
            p->ri = 0;
            p->pi = 0;
            p->di++;
            continue;
        }
        const struct lroute *lr = &l->routes[p->ri];
        unsigned nparts = kind == PASS_OBSERVED ? 1 : lr->nparts;
        if (pass_visits(lr, kind)) {
            while (p->pi < nparts && kind == PASS_LEDGERED && !part_visited(l, k, lr, p->pi))
                p->pi++;
            if (p->pi < nparts)
                return true;
        }
        p->ri++;
        p->pi = 0;
    }
    return false;
}

/* Stop the pass: replies still on their way are ignored. */
void eb_ledger_pass_end(struct pass *p) {
    p->running = false;
    p->gen++;
    free(p->dbs);
    p->dbs = NULL;
}

/* ------------------------------------------------------------------------
 * The sweep
 * --------------------------------------------------------------------- */

static void sweep_step(struct ledger_link *k);

void eb_ledger_sweep_abort(struct ledger_link *k) {
    eb_ledger_pass_end(&k->sw.p);
}

static void on_info_sweep(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct ledger_link *k = req->link;
    (void)l;
    int ready = eb_ledger_pass_on_info(&k->sw.p, req, r);
    if (ready < 0)
        eb_ledger_sweep_abort(k);
    else if (ready > 0)
        sweep_step(k);
}

/* Room in k for one gauge per stats (they are made as routes come). */
static bool gauges_fit(eb_ledger_t *l, struct ledger_link *k) {
    if (k->ngauges >= l->nstats)
        return true;
    struct lgauge *g = realloc(k->gauges, l->nstats * sizeof(*g));
    if (!g)
        return false;
    memset(g + k->ngauges, 0, (l->nstats - k->ngauges) * sizeof(*g));
    k->gauges = g;
    k->ngauges = l->nstats;
    return true;
}

void eb_ledger_sweep_start(eb_ledger_t *l, struct ledger_link *k) {
    struct sweep *s = &k->sw;
    if (!k->ready || l->stopped)
        return;
    if (s->p.running) {
        s->p.again = true;
        return;
    }
    if (!eb_ledger_sweep_any_route(l, PASS_LEDGERED) || !gauges_fit(l, k))
        return;
    s->capped = false;
    s->offset = 0;
    for (size_t i = 0; i < k->ngauges; i++)
        k->gauges[i].cyc_pending = k->gauges[i].cyc_overdue = 0, k->gauges[i].cyc_seen = false;
    if (k->slots) {
        k->cyc_seq = k->seq;
        for (unsigned i = 0; i < 16384; i++)
            k->slots[i] &= (uint8_t)~SLOT_NONEMPTY;
    }
    int ready = eb_ledger_pass_begin(k, &s->p, on_info_sweep);
    if (ready < 0)
        eb_ledger_sweep_abort(k);
    else if (ready > 0)
        sweep_step(k);
}

void eb_ledger_sweep_start_all(eb_ledger_t *l) {
    for (struct ledger_link *k = l->links; k; k = k->next)
        eb_ledger_sweep_start(l, k);
}

/* A complete cycle: slot ledgers it found empty (and that nothing recorded
 * into since it began) are not visited any more. */
static void forget_empty_slots(struct ledger_link *k) {
    for (unsigned i = 0; k->slots && i < 16384; i++) {
        if ((k->slots[i] & (SLOT_KNOWN | SLOT_NONEMPTY)) == SLOT_KNOWN &&
            k->obs_seq[i] <= k->cyc_seq)
            k->slots[i] &= (uint8_t)~SLOT_KNOWN;
    }
}

static void sweep_finish(struct ledger_link *k) {
    eb_ledger_t *l = k->l;
    struct sweep *s = &k->sw;
    double secs = (double)(eb_mono_ns() - s->p.start_ns) / 1e9;
    eb_metrics_observe(l->m_sweep, secs);
    l->total_sweeps++;
    for (size_t i = 0; i < k->ngauges; i++) {
        struct lgauge *g = &k->gauges[i];
        g->pending = g->cyc_seen ? g->cyc_pending : 0;
        g->overdue = g->cyc_seen ? g->cyc_overdue : 0;
        g->seen = g->cyc_seen;
    }
    eb_ledger_gauges_update(l);
    if (!s->capped)
        forget_empty_slots(k);
    if (s->capped)
        l->room_wanted = true; /* go on as soon as tickets are freed */
    bool again = s->p.again;
    eb_ledger_sweep_abort(k);
    if (again)
        eb_ledger_sweep_start(l, k);
}

static void on_due(eb_ledger_t *l, struct lreq *req, const redisReply *r);

/* Send the next eb1_due of the cycle, or finish it. */
static void sweep_step(struct ledger_link *k) {
    eb_ledger_t *l = k->l;
    struct sweep *s = &k->sw;
    if (!eb_ledger_pass_seek(l, k, &s->p, PASS_LEDGERED) || s->capped) {
        sweep_finish(k);
        return;
    }
    struct lstats *ls = l->routes[s->p.ri].ls;
    struct lpart part = eb_ledger_pass_part(l, &s->p);
    struct eb_redis_argv a;
    eb_ledger_fcall_head(l, &a, "eb1_due", 1, ls, part);
    eb_redis_argv_add_size(&a, s->offset);
    eb_redis_argv_add_size(&a, l->batch);
    eb_redis_argv_add_i64(&a, l->sweep_grace_ms);
    struct lreq *r = eb_ledger_send(l, k, on_due, s->p.dbs[s->p.di], &a);
    if (!r) {
        eb_ledger_sweep_abort(k);
        return;
    }
    r->gen = s->p.gen;
    r->part = part;
    r->ls = ls;
}

static void on_touch(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    int64_t dl;
    (void)l;
    if (r && req->ls)
        eb_metrics_inc(req->ls->claims[PATH_SWEEP][eb_ledger_claims_status(r, &dl)]);
}

/* The first pass over an overdue entry only touches its key: a key Redis
 * had not expired yet is expired by the touch and delivered live by its
 * notification (Redis's sampler is slow, the notification is not lost). */
static void sweep_touch(eb_ledger_t *l, struct ledger_link *k, struct lstats *ls,
                        struct lpart part, int db, const redisReply *member, long long dl) {
    struct eb_redis_argv a;
    eb_ledger_fcall_head(l, &a, "eb1_collect", 2, ls, part);
    eb_redis_argv_add_bytes(&a, member->str, member->len);
    eb_redis_argv_add_i64(&a, dl);
    eb_redis_argv_add_i64(&a, l->claim_ttl_ms);
    eb_redis_argv_add_str(&a, "touch");
    struct lreq *r = eb_ledger_send(l, k, on_touch, db, &a);
    if (r)
        r->ls = ls;
}

static void on_collect(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    eb_ledger_claims_on_claim(l, req, req->t, r, true);
}

/* Claim one overdue entry (unless this bridge holds it already); entries
 * that became overdue since the previous pass (deadline after since_ms,
 * Redis's clock) are only touched. */
static void sweep_collect(eb_ledger_t *l, struct ledger_link *k, size_t route,
                          struct lpart part, int db, const redisReply *member,
                          const redisReply *deadline, long long since_ms) {
    struct lstats *ls = l->routes[route].ls;
    long long dl;
    if (member->type != REDIS_REPLY_STRING || !eb_redis_reply_int(deadline, &dl))
        return;
    if (eb_ledger_tickets_find(l, ls, db, member->str, member->len))
        return;
    if (dl > since_ms) {
        sweep_touch(l, k, ls, part, db, member, dl);
        return;
    }
    eb_ledger_ticket_t *t = eb_ledger_tickets_new(l, ls, db, member->str, member->len);
    if (!t)
        return;
    t->recovered = true;
    t->deadline_ms = dl;
    t->part = part;
    eb_ledger_claims_payload_key(l, t, route);
    struct eb_redis_argv a;
    eb_ledger_fcall_head(l, &a, "eb1_collect", t->pkey ? 3 : 2, ls, part);
    eb_redis_argv_add_bytes(&a, member->str, member->len);
    if (t->pkey)
        eb_redis_argv_add_bytes(&a, t->pkey, t->pkey_len);
    eb_redis_argv_add_i64(&a, dl);
    eb_redis_argv_add_i64(&a, l->claim_ttl_ms);
    struct lreq *r = eb_ledger_send(l, k, on_collect, db, &a);
    if (!r) {
        eb_ledger_tickets_free(l, t);
        return;
    }
    r->t = t;
    t->state = T_CLAIMING;
}

/* Parse eb1_due's reply head: {now, pending, overdue, next_offset, more}. */
static bool due_head(const redisReply *r, long long v[5]) {
    if (eb_redis_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 5)
        return false;
    for (int i = 0; i < 5; i++) {
        if (!eb_redis_reply_int(r->element[i], &v[i]))
            return false;
    }
    return true;
}

static void on_due(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct ledger_link *k = req->link;
    struct sweep *s = &k->sw;
    if (!eb_ledger_pass_current(&s->p, req))
        return; /* a cycle that was aborted (reload, reconnect) */
    if (!r) {
        eb_ledger_sweep_abort(k);
        return;
    }
    long long v[5]; /* now, pending, overdue, next, more */
    if (!due_head(r, v)) {
        /* A MOVED here: the ledger's master changed; its new owner's link
         * sweeps it once the topology says so. */
        bool moved = eb_redis_reply_error_is(r, "MOVED");
        if (!moved && eb_ledger_log_allow(l, LOGSLOT_DUE))
            eb_log(l->log, EB_LOG_ERROR, "ledger: sweep step refused by redis",
                   eb_lf_str("route", req->ls->route), eb_lf_str("host", k->host),
                   eb_lf_int("port", k->port), eb_lf_str("detail", eb_ledger_reply_error(r)));
        if (l->topo && (moved || eb_redis_reply_error_is(r, "CLUSTERDOWN")))
            eb_redis_topology_poll_now(l->topo);
        eb_ledger_library_missing(l, req, r);
        s->p.pi++;
        s->offset = 0;
        sweep_step(k);
        return;
    }
    if (s->offset == 0 && req->ls->ord < k->ngauges) {
        struct lgauge *g = &k->gauges[req->ls->ord];
        g->cyc_pending += v[1];
        g->cyc_overdue += v[2];
        g->cyc_seen = true;
        if (req->part.kind == LK_SLOT && k->slots && v[1] > 0)
            k->slots[req->part.n] |= SLOT_NONEMPTY;
    }
    int db = s->p.dbs[s->p.di];
    long long since = v[0] - l->sweep_grace_ms - l->sweep_interval_ms;
    for (size_t i = 5; i + 1 < r->elements; i += 2) {
        if (!eb_ledger_tickets_room(l)) {
            s->capped = true;
            break;
        }
        sweep_collect(l, k, s->p.ri, req->part, db, r->element[i], r->element[i + 1], since);
    }
    if (v[4] && !s->capped) {
        s->offset = (size_t)v[3];
    } else {
        s->p.pi++;
        s->offset = 0;
    }
    sweep_step(k);
}

/* @locality loop thread (libevent timer). */
void eb_ledger_sweep_on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    eb_ledger_sweep_start_all(arg);
}

/* With several replicas, each master's ledgers are swept by the replica
 * that owns the master (and at once by a new owner: on_unit_subscribed);
 * N replicas sweeping every master would cost each master N times the
 * eb1_due calls for the same claims. The others sweep it one time in
 * EB_LEDGER_UNOWNED_SWEEP_EVERY, a backstop for an owner that is stuck
 * without knowing it (the claims keep them from producing twice).
 * @locality loop thread (libevent timer). */
void eb_ledger_sweep_on_interval(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    (void)fd;
    (void)what;
    bool backstop = ++l->sweep_ticks % EB_LEDGER_UNOWNED_SWEEP_EVERY == 0;
    for (struct ledger_link *k = l->links; k; k = k->next) {
        if (backstop || eb_ledger_link_owned(l, k))
            eb_ledger_sweep_start(l, k);
    }
}
