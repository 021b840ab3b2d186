/* ledger_scan.c -- observed mode: the bridge records deadlines itself, for
 * applications that arm timers with plain SET ... EX (docs/ledger.md,
 * "Armed or observed").
 *
 *   bookkeeping  an `expire` notification of a key an observed route would
 *                deliver -> FCALL eb1_observe records its PEXPIRETIME;
 *                `del`/`persist` -> FCALL eb1_drop forgets it
 *   scan         after every (re)subscription of a master, a SCAN of each
 *                observed route's literal prefix on that master records
 *                what was armed meanwhile
 *   probe        (Cluster) the ledger of a timer is the one of its key's
 *                slot (ledger.h, eb_ledger_slot_key): a link sweeps the slot
 *                ledgers this process wrote to, and after its master was
 *                (re)subscribed or took slots over, an EXISTS of every slot
 *                ledger it serves finds those others wrote (another
 *                replica, a run before a restart), sweep_batch at a time
 *
 * @locality loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/keyslot.h"
#include "ledger/ledger_internal.h"

/* Keys per eb1_observe call: one call stays well under a millisecond of
 * Redis time. */
#define OBSERVE_BATCH 500

/* ------------------------------------------------------------------------
 * Bookkeeping
 * --------------------------------------------------------------------- */

/* An eb1_observe answered NULL recorded nothing (its link went away, or
 * the slot's owner did not answer within the redirections): the SCAN of
 * the slot's master records what exists, as after a gap in notifications
 * (it waits until that link is ready and subscribed). */
static void observe_lost(eb_ledger_t *l, const struct lreq *req) {
    if (l->destroying || l->stopped)
        return;
    struct ledger_link *k = eb_ledger_link_for_slot(l, req->slot);
    if (k && !k->gone)
        eb_ledger_scan_start(l, k);
}

static void on_observe(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    if (!r) {
        observe_lost(l, req);
        return;
    }
    if (eb_redis_reply_is_error(r)) {
        if (eb_ledger_log_allow(l, LOGSLOT_OBSERVE))
            eb_log(l->log, EB_LOG_ERROR, "ledger: observed-mode bookkeeping refused by redis",
                   eb_lf_str("detail", eb_redis_reply_text(r)));
        return;
    }
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        long long v;
        if (eb_redis_reply_int(r->element[i], &v) && v >= 0) {
            eb_metrics_inc(req->ls->observed_record);
            if (req->link)
                req->link->sc.recorded++;
        }
    }
}

static void on_drop(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    long long v;
    if (!r)
        return;
    if (eb_redis_reply_is_error(r))
        on_observe(l, req, r); /* the same log line */
    else if (eb_redis_reply_int(r, &v) && v > 0)
        eb_metrics_add(req->ls->observed_cancel, (double)v);
}

void eb_ledger_on_bookkeeping(eb_ledger_t *l, size_t route, const struct eb_notification *n) {
    if (l->stopped || route >= l->nroutes || !l->routes[route].observed)
        return;
    struct lroute *lr = &l->routes[route];
    /* eb1_observe reads the key's expiry (a key to Redis); eb1_drop only
     * names the member (an argument). */
    bool observe = n->event_id == l->id_expire;
    if (!observe && n->event_id != l->id_del && n->event_id != l->id_persist)
        return;
    struct lpart part;
    if (!eb_ledger_claims_part(l, route, n->key, n->key_len, &part))
        return;
    unsigned slot = eb_ledger_part_slot(lr->ls, part);
    struct ledger_link *k = eb_ledger_link_for_slot(l, slot);
    if (!k || !k->ready) {
        /* Lost bookkeeping is what the next scan is for. */
        if (k)
            k->scan_wanted = true;
        return;
    }
    struct eb_redis_argv a;
    eb_ledger_fcall_head(l, &a, observe ? "eb1_observe" : "eb1_drop", observe ? 2 : 1, lr->ls,
                         part);
    eb_redis_argv_add_bytes(&a, n->key, n->key_len);
    struct lreq *r = eb_ledger_send_slot(l, slot, observe ? on_observe : on_drop, n->db, &a);
    if (!r)
        return;
    r->ls = lr->ls;
    if (observe)
        eb_ledger_observe_sent(r);
}

/* ------------------------------------------------------------------------
 * SCAN
 * --------------------------------------------------------------------- */

static void scan_step(struct ledger_link *k);

void eb_ledger_scan_abort(struct ledger_link *k, bool again) {
    if (k->sc.p.running && again)
        k->scan_wanted = true;
    eb_ledger_pass_end(&k->sc.p);
}

static void on_info_scan(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct ledger_link *k = req->link;
    (void)l;
    int ready = eb_ledger_pass_on_info(&k->sc.p, req, r);
    if (ready < 0)
        eb_ledger_scan_abort(k, true);
    else if (ready > 0)
        scan_step(k);
}

/* True while k's master is subscribed (what it announces is heard). */
static bool subscribed(const eb_ledger_t *l, const struct ledger_link *k) {
    size_t n = l->topo ? eb_redis_topology_units(l->topo, NULL, NULL) : 0;
    for (size_t i = 0; i < n; i++) {
        const struct eb_redis_unit *u = eb_redis_topology_unit(l->topo, i);
        if (u->port == k->port && strcmp(u->host, k->host) == 0)
            return u->subscribed;
    }
    return false;
}

/* Record every observed route's timers that exist now on k's master. Runs
 * only while that master is subscribed (so nothing armed after the scan
 * passes by unseen) and k is ready; otherwise it waits for both. */
void eb_ledger_scan_start(eb_ledger_t *l, struct ledger_link *k) {
    struct scan *s = &k->sc;
    if (!eb_ledger_sweep_any_route(l, PASS_OBSERVED) || l->stopped)
        return;
    if (!k->ready || !subscribed(l, k)) {
        k->scan_wanted = true;
        return;
    }
    if (s->p.running) {
        s->p.again = true;
        return;
    }
    k->scan_wanted = false;
    s->seen = s->recorded = 0;
    snprintf(s->cursor, sizeof(s->cursor), "0");
    int ready = eb_ledger_pass_begin(k, &s->p, on_info_scan);
    if (ready < 0)
        eb_ledger_scan_abort(k, true);
    else if (ready > 0)
        scan_step(k);
}

void eb_ledger_scan_start_all(eb_ledger_t *l) {
    for (struct ledger_link *k = l->links; k; k = k->next)
        eb_ledger_scan_start(l, k);
}

static void scan_finish(struct ledger_link *k) {
    eb_ledger_t *l = k->l;
    struct scan *s = &k->sc;
    eb_log(l->log, EB_LOG_INFO, "ledger: observed-mode scan complete", eb_lf_str("host", k->host),
           eb_lf_int("port", k->port), eb_lf_int("keys_seen", (int64_t)s->seen),
           eb_lf_int("duration_ms", (eb_mono_ns() - s->p.start_ns) / 1000000));
    bool again = s->p.again;
    eb_ledger_scan_abort(k, false);
    if (again)
        eb_ledger_scan_start(l, k);
}

static void on_scan(eb_ledger_t *l, struct lreq *req, const redisReply *r);

static void scan_step(struct ledger_link *k) {
    eb_ledger_t *l = k->l;
    struct scan *s = &k->sc;
    if (!eb_ledger_pass_seek(l, k, &s->p, PASS_OBSERVED)) {
        scan_finish(k);
        return;
    }
    struct lroute *lr = &l->routes[s->p.ri];
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    eb_redis_argv_add_str(&a, "SCAN");
    eb_redis_argv_add_str(&a, s->cursor);
    eb_redis_argv_add_str(&a, "MATCH");
    eb_redis_argv_add_bytes(&a, lr->scan_match, lr->scan_match_len);
    eb_redis_argv_add_str(&a, "COUNT");
    eb_redis_argv_add_size(&a, l->batch);
    struct lreq *r = eb_ledger_send(l, k, on_scan, s->p.dbs[s->p.di], &a);
    if (!r) {
        eb_ledger_scan_abort(k, true);
        return;
    }
    r->gen = s->p.gen;
}

/* One key of a SCAN page that belongs to the route, and its ledger. */
struct okey {
    const char *p;
    size_t len;
    struct lpart part;
};

static int cmp_okey(const void *a, const void *b) {
    const struct okey *x = a, *y = b;
    if (x->part.kind != y->part.kind)
        return x->part.kind < y->part.kind ? -1 : 1;
    return (x->part.n > y->part.n) - (x->part.n < y->part.n);
}

/* FCALL eb1_observe for the keys of one SCAN page that belong to the
 * route (a prefix match is not a pattern match), per ledger (on Cluster,
 * per slot), OBSERVE_BATCH at a time. */
static void scan_observe(eb_ledger_t *l, struct ledger_link *k, size_t route, int db,
                         const redisReply *keys) {
    struct lroute *lr = &l->routes[route];
    struct okey *mine = calloc(keys->elements ? keys->elements : 1, sizeof(*mine));
    size_t n = 0;
    if (!mine)
        return;
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *e = keys->element[i];
        struct eb_match m;
        if (e->type != REDIS_REPLY_STRING)
            continue;
        k->sc.seen++;
        if (eb_router_match(l->cfg->router, e->str, e->len, EB_EVENT_EXPIRED_ID, &m) &&
            m.rule == route && eb_ledger_claims_part(l, route, e->str, e->len, &mine[n].part)) {
            mine[n].p = e->str;
            mine[n].len = e->len;
            n++;
        }
    }
    qsort(mine, n, sizeof(*mine), cmp_okey);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && j - i < OBSERVE_BATCH && cmp_okey(&mine[i], &mine[j]) == 0)
            j++;
        struct eb_redis_argv a;
        eb_ledger_fcall_head(l, &a, "eb1_observe", j - i + 1, lr->ls, mine[i].part);
        for (size_t q = i; q < j; q++)
            eb_redis_argv_add_bytes(&a, mine[q].p, mine[q].len);
        struct lreq *r =
            eb_ledger_send_slot(l, eb_ledger_part_slot(lr->ls, mine[i].part), on_observe, db, &a);
        if (r) {
            r->ls = lr->ls;
            eb_ledger_observe_sent(r);
        }
        i = j;
    }
    free(mine);
}

static void on_scan(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct ledger_link *k = req->link;
    struct scan *s = &k->sc;
    if (!eb_ledger_pass_current(&s->p, req))
        return;
    if (!r) {
        eb_ledger_scan_abort(k, true);
        return;
    }
    if (eb_redis_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        if (eb_ledger_log_allow(l, LOGSLOT_SCAN))
            eb_log(l->log, EB_LOG_ERROR, "ledger: observed-mode SCAN refused by redis",
                   eb_lf_str("host", k->host), eb_lf_int("port", k->port),
                   eb_lf_str("detail", eb_ledger_reply_error(r)));
        s->p.pi++;
        snprintf(s->cursor, sizeof(s->cursor), "0");
        scan_step(k);
        return;
    }
    scan_observe(l, k, s->p.ri, s->p.dbs[s->p.di], r->element[1]);
    snprintf(s->cursor, sizeof(s->cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
    if (strcmp(s->cursor, "0") == 0)
        s->p.pi++;
    scan_step(k);
}

/* ------------------------------------------------------------------------
 * The probe of slot ledgers (observed routes on Cluster)
 * --------------------------------------------------------------------- */

static void probe_step(struct ledger_link *k);

void eb_ledger_probe_abort(struct ledger_link *k) {
    /* Slots still marked SLOT_PROBE are probed by the next one. */
    k->pr.running = false;
    k->pr.gen++;
    k->pr.inflight = 0;
}

void eb_ledger_probe_all_owned(eb_ledger_t *l, struct ledger_link *k) {
    for (unsigned s = 0; k->slots && s < EB_KEYSLOT_COUNT; s++) {
        if (eb_ledger_link_for_slot(l, s) == k)
            k->slots[s] |= SLOT_OWNED | SLOT_PROBE;
    }
}

void eb_ledger_probe_start(eb_ledger_t *l, struct ledger_link *k) {
    struct probe *p = &k->pr;
    if (!k->slots || !k->ready || l->stopped)
        return;
    if (p->running) {
        p->again = true;
        return;
    }
    p->running = true;
    p->again = false;
    p->gen++;
    p->next_slot = 0;
    p->ri = 0;
    p->probed = p->found = 0;
    probe_step(k);
}

static void probe_finish(struct ledger_link *k) {
    eb_ledger_t *l = k->l;
    struct probe *p = &k->pr;
    bool again = p->again;
    eb_log(l->log, EB_LOG_INFO, "ledger: slot ledgers probed", eb_lf_str("host", k->host),
           eb_lf_int("port", k->port), eb_lf_int("probed", (int64_t)p->probed),
           eb_lf_int("found", (int64_t)p->found));
    eb_ledger_probe_abort(k);
    /* What it found is swept now. */
    eb_ledger_sweep_start(l, k);
    if (again)
        eb_ledger_probe_start(l, k);
}

static void on_exists(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct ledger_link *k = req->link;
    struct probe *p = &k->pr;
    long long v;
    (void)l;
    if (!p->running || req->gen != p->gen)
        return;
    if (!r) {
        eb_ledger_probe_abort(k); /* the link went away: it probes again when back */
        return;
    }
    if (eb_redis_reply_int(r, &v) && v > 0) {
        k->slots[req->part.n] |= SLOT_KNOWN;
        p->found++;
    } else if (eb_redis_reply_is_error(r)) {
        /* MOVED: the slot left this master; its new one probes it. Else
         * keep it for the next probe. */
        if (!eb_redis_reply_error_is(r, "MOVED"))
            k->slots[req->part.n] |= SLOT_PROBE;
    }
    if (--p->inflight == 0)
        probe_step(k);
}

/* Send the next batch of EXISTS (sweep_batch of them, pipelined), one per
 * (slot marked SLOT_PROBE, observed route); the next batch after its
 * replies, so the probe never fills the link's queue. */
static void probe_step(struct ledger_link *k) {
    eb_ledger_t *l = k->l;
    struct probe *p = &k->pr;
    struct eb_buf key = EB_BUF_INIT;
    while (p->inflight < l->batch && p->next_slot < EB_KEYSLOT_COUNT) {
        unsigned s = p->next_slot;
        if (!(k->slots[s] & SLOT_PROBE) || eb_ledger_link_for_slot(l, s) != k) {
            p->next_slot++;
            p->ri = 0;
            continue;
        }
        while (p->ri < l->nroutes && !(l->routes[p->ri].kind == LK_SLOT &&
                                       l->routes[p->ri].ledgered))
            p->ri++;
        if (p->ri >= l->nroutes) {
            k->slots[s] &= (uint8_t)~SLOT_PROBE;
            p->next_slot++;
            p->ri = 0;
            continue;
        }
        struct lstats *ls = l->routes[p->ri].ls;
        struct lpart part = {LK_SLOT, (uint16_t)s};
        eb_ledger_part_key(l, ls, part, &key);
        struct eb_redis_argv a;
        eb_redis_argv_init(&a);
        eb_redis_argv_add_str(&a, "EXISTS");
        eb_redis_argv_add_bytes(&a, key.data, key.len);
        struct lreq *r = eb_buf_ok(&key) ? eb_ledger_send(l, k, on_exists, 0, &a) : NULL;
        if (!eb_buf_ok(&key))
            eb_redis_argv_free(&a);
        if (!r) {
            eb_buf_free(&key);
            eb_ledger_probe_abort(k);
            return;
        }
        r->gen = p->gen;
        r->part = part;
        p->inflight++;
        p->probed++;
        p->ri++;
    }
    eb_buf_free(&key);
    if (p->inflight == 0 && p->next_slot >= EB_KEYSLOT_COUNT)
        probe_finish(k);
}
