/* ledger_sweep.c -- the periodic sweep of the deadline ledger, and the walk
 * over (database, route) pairs it shares with observed mode's SCAN.
 *
 * Every sweep_interval (and at once after a (re)subscription, or when room
 * for tickets frees up after expiries were left in Redis), page by page:
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
int eb_ledger_pass_begin(eb_ledger_t *l, struct pass *p, eb_ledger_reply_fn *on_info) {
    p->running = true;
    p->again = false;
    p->gen++;
    p->start_ns = eb_mono_ns();
    p->di = p->ri = 0;
    if (l->all_databases) {
        struct eb_redis_argv a;
        eb_redis_argv_init(&a);
        eb_redis_argv_add_str(&a, "INFO");
        eb_redis_argv_add_str(&a, "keyspace");
        struct lreq *r = eb_ledger_send(l, on_info, -1, &a);
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

/* Skip to the next pair of the pass that is of its kind, from the current
 * one on. False when every pair has been visited. */
bool eb_ledger_pass_seek(const eb_ledger_t *l, struct pass *p, enum pass_kind kind) {
    while (p->di < p->ndbs && (p->ri >= l->nroutes || !pass_visits(&l->routes[p->ri], kind))) {
        if (p->ri >= l->nroutes) {
            p->ri = 0;
            p->di++;
        } else {
            p->ri++;
        }
    }
    return p->di < p->ndbs;
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

static void sweep_step(eb_ledger_t *l);

void eb_ledger_sweep_abort(eb_ledger_t *l) {
    eb_ledger_pass_end(&l->link.sw.p);
}

static void on_info_sweep(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    int ready = eb_ledger_pass_on_info(&l->link.sw.p, req, r);
    if (ready < 0)
        eb_ledger_sweep_abort(l);
    else if (ready > 0)
        sweep_step(l);
}

void eb_ledger_sweep_start(eb_ledger_t *l) {
    struct sweep *s = &l->link.sw;
    if (!l->link.ready || l->stopped)
        return;
    if (s->p.running) {
        s->p.again = true;
        return;
    }
    if (!eb_ledger_sweep_any_route(l, PASS_LEDGERED))
        return;
    s->capped = false;
    s->offset = 0;
    for (struct lstats *ls = l->all_stats; ls; ls = ls->next)
        ls->cyc_pending = ls->cyc_overdue = 0, ls->cyc_seen = false;
    int ready = eb_ledger_pass_begin(l, &s->p, on_info_sweep);
    if (ready < 0)
        eb_ledger_sweep_abort(l);
    else if (ready > 0)
        sweep_step(l);
}

static void sweep_finish(eb_ledger_t *l) {
    struct sweep *s = &l->link.sw;
    double secs = (double)(eb_mono_ns() - s->p.start_ns) / 1e9;
    eb_metrics_observe(l->m_sweep, secs);
    l->total_sweeps++;
    for (struct lstats *ls = l->all_stats; ls; ls = ls->next) {
        if (!ls->cyc_seen)
            continue;
        eb_metrics_set(ls->pending, (double)ls->cyc_pending);
        eb_metrics_set(ls->overdue, (double)ls->cyc_overdue);
    }
    if (s->capped)
        l->room_wanted = true; /* go on as soon as tickets are freed */
    bool again = s->p.again;
    eb_ledger_sweep_abort(l);
    if (again)
        eb_ledger_sweep_start(l);
}

static void on_due(eb_ledger_t *l, struct lreq *req, const redisReply *r);

/* Send the next eb1_due of the cycle, or finish it. */
static void sweep_step(eb_ledger_t *l) {
    struct sweep *s = &l->link.sw;
    if (!eb_ledger_pass_seek(l, &s->p, PASS_LEDGERED) || s->capped) {
        sweep_finish(l);
        return;
    }
    struct lstats *ls = l->routes[s->p.ri].ls;
    struct eb_redis_argv a;
    eb_ledger_fcall_head(&a, "eb1_due", 1, ls);
    eb_redis_argv_add_size(&a, s->offset);
    eb_redis_argv_add_size(&a, l->batch);
    eb_redis_argv_add_i64(&a, l->sweep_grace_ms);
    struct lreq *r = eb_ledger_send(l, on_due, s->p.dbs[s->p.di], &a);
    if (!r) {
        eb_ledger_sweep_abort(l);
        return;
    }
    r->gen = s->p.gen;
}

static void on_touch(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    int64_t dl;
    if (r && req->ls)
        eb_metrics_inc(req->ls->claims[PATH_SWEEP][eb_ledger_claims_status(r, &dl)]);
}

/* The first pass over an overdue entry only touches its key: a key Redis
 * had not expired yet is expired by the touch and delivered live by its
 * notification (Redis's sampler is slow, the notification is not lost). */
static void sweep_touch(eb_ledger_t *l, struct lstats *ls, int db, const redisReply *member,
                        long long dl) {
    struct eb_redis_argv a;
    eb_ledger_fcall_head(&a, "eb1_collect", 2, ls);
    eb_redis_argv_add_bytes(&a, member->str, member->len);
    eb_redis_argv_add_i64(&a, dl);
    eb_redis_argv_add_i64(&a, l->claim_ttl_ms);
    eb_redis_argv_add_str(&a, "touch");
    struct lreq *r = eb_ledger_send(l, on_touch, db, &a);
    if (r)
        r->ls = ls;
}

static void on_collect(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    eb_ledger_claims_on_claim(l, req->t, r, true);
}

/* Claim one overdue entry (unless this bridge holds it already); entries
 * that became overdue since the previous pass (deadline after since_ms,
 * Redis's clock) are only touched. */
static void sweep_collect(eb_ledger_t *l, size_t route, int db, const redisReply *member,
                          const redisReply *deadline, long long since_ms) {
    struct lstats *ls = l->routes[route].ls;
    long long dl;
    if (member->type != REDIS_REPLY_STRING || !eb_redis_reply_int(deadline, &dl))
        return;
    if (eb_ledger_tickets_find(l, ls, db, member->str, member->len))
        return;
    if (dl > since_ms) {
        sweep_touch(l, ls, db, member, dl);
        return;
    }
    eb_ledger_ticket_t *t = eb_ledger_tickets_new(l, ls, db, member->str, member->len);
    if (!t)
        return;
    t->recovered = true;
    t->deadline_ms = dl;
    eb_ledger_claims_payload_key(l, t, route);
    struct eb_redis_argv a;
    eb_ledger_fcall_head(&a, "eb1_collect", t->pkey ? 3 : 2, ls);
    eb_redis_argv_add_bytes(&a, member->str, member->len);
    if (t->pkey)
        eb_redis_argv_add_bytes(&a, t->pkey, t->pkey_len);
    eb_redis_argv_add_i64(&a, dl);
    eb_redis_argv_add_i64(&a, l->claim_ttl_ms);
    struct lreq *r = eb_ledger_send(l, on_collect, db, &a);
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
    struct sweep *s = &l->link.sw;
    if (!eb_ledger_pass_current(&s->p, req))
        return; /* a cycle that was aborted (reload, reconnect) */
    if (!r) {
        eb_ledger_sweep_abort(l);
        return;
    }
    struct lroute *lr = &l->routes[s->p.ri];
    long long v[5]; /* now, pending, overdue, next, more */
    if (!due_head(r, v)) {
        if (eb_ledger_log_allow(l, LOGSLOT_DUE))
            eb_log(l->log, EB_LOG_ERROR, "ledger: sweep step refused by redis",
                   eb_lf_str("route", lr->ls->route),
                   eb_lf_str("detail", eb_ledger_reply_error(r)));
        eb_ledger_library_missing(l, r);
        s->p.ri++;
        s->offset = 0;
        sweep_step(l);
        return;
    }
    if (s->offset == 0) {
        lr->ls->cyc_pending += v[1];
        lr->ls->cyc_overdue += v[2];
        lr->ls->cyc_seen = true;
    }
    int db = s->p.dbs[s->p.di];
    long long since = v[0] - l->sweep_grace_ms - l->sweep_interval_ms;
    for (size_t i = 5; i + 1 < r->elements; i += 2) {
        if (!eb_ledger_tickets_room(l)) {
            s->capped = true;
            break;
        }
        sweep_collect(l, s->p.ri, db, r->element[i], r->element[i + 1], since);
    }
    if (v[4] && !s->capped) {
        s->offset = (size_t)v[3];
    } else {
        s->p.ri++;
        s->offset = 0;
    }
    sweep_step(l);
}

/* @locality loop thread (libevent timer). */
void eb_ledger_sweep_on_timer(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_sweep_start(arg);
}
