/* ledger_scan.c -- observed mode: the bridge records deadlines itself, for
 * applications that arm timers with plain SET ... EX (docs/ledger.md,
 * "Armed or observed").
 *
 *   bookkeeping  an `expire` notification of a key an observed route would
 *                deliver -> FCALL eb1_observe records its PEXPIRETIME;
 *                `del`/`persist` -> FCALL eb1_drop forgets it
 *   scan         after every (re)subscription, a SCAN of each observed
 *                route's literal prefix records what was armed meanwhile
 *
 * @locality loop thread only.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "ledger/ledger_internal.h"

/* Keys per eb1_observe call: one call stays well under a millisecond of
 * Redis time. */
#define OBSERVE_BATCH 500

/* ------------------------------------------------------------------------
 * Bookkeeping
 * --------------------------------------------------------------------- */

static void on_observe(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    if (!r)
        return;
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
            l->link.sc.recorded++;
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
    if (!l->link.ready) {
        /* Lost bookkeeping is what the next scan is for. */
        l->scan_wanted = true;
        return;
    }
    /* eb1_observe reads the key's expiry (a key to Redis); eb1_drop only
     * names the member (an argument). */
    bool observe = n->event_id == l->id_expire;
    if (!observe && n->event_id != l->id_del && n->event_id != l->id_persist)
        return;
    struct eb_redis_argv a;
    eb_ledger_fcall_head(&a, observe ? "eb1_observe" : "eb1_drop", observe ? 2 : 1, lr->ls);
    eb_redis_argv_add_bytes(&a, n->key, n->key_len);
    struct lreq *r = eb_ledger_send(l, observe ? on_observe : on_drop, n->db, &a);
    if (r)
        r->ls = lr->ls;
}

/* ------------------------------------------------------------------------
 * SCAN
 * --------------------------------------------------------------------- */

static void scan_step(eb_ledger_t *l);

void eb_ledger_scan_abort(eb_ledger_t *l, bool again) {
    if (l->link.sc.p.running && again)
        l->scan_wanted = true;
    eb_ledger_pass_end(&l->link.sc.p);
}

static void on_info_scan(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    int ready = eb_ledger_pass_on_info(&l->link.sc.p, req, r);
    if (ready < 0)
        eb_ledger_scan_abort(l, true);
    else if (ready > 0)
        scan_step(l);
}

/* Record every observed route's timers that exist now. Runs only while the
 * source is subscribed (so nothing armed after the scan passes by unseen)
 * and the ledger is connected; otherwise it waits for both. */
void eb_ledger_scan_start(eb_ledger_t *l) {
    struct scan *s = &l->link.sc;
    if (!eb_ledger_sweep_any_route(l, PASS_OBSERVED) || l->stopped)
        return;
    if (!l->link.ready || !l->source_subscribed) {
        l->scan_wanted = true;
        return;
    }
    if (s->p.running) {
        s->p.again = true;
        return;
    }
    l->scan_wanted = false;
    s->seen = s->recorded = 0;
    snprintf(s->cursor, sizeof(s->cursor), "0");
    int ready = eb_ledger_pass_begin(l, &s->p, on_info_scan);
    if (ready < 0)
        eb_ledger_scan_abort(l, true);
    else if (ready > 0)
        scan_step(l);
}

static void scan_finish(eb_ledger_t *l) {
    struct scan *s = &l->link.sc;
    eb_log(l->log, EB_LOG_INFO, "ledger: observed-mode scan complete",
           eb_lf_int("keys_seen", (int64_t)s->seen),
           eb_lf_int("duration_ms", (eb_mono_ns() - s->p.start_ns) / 1000000));
    bool again = s->p.again;
    eb_ledger_scan_abort(l, false);
    if (again)
        eb_ledger_scan_start(l);
}

static void on_scan(eb_ledger_t *l, struct lreq *req, const redisReply *r);

static void scan_step(eb_ledger_t *l) {
    struct scan *s = &l->link.sc;
    if (!eb_ledger_pass_seek(l, &s->p, PASS_OBSERVED)) {
        scan_finish(l);
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
    struct lreq *r = eb_ledger_send(l, on_scan, s->p.dbs[s->p.di], &a);
    if (!r) {
        eb_ledger_scan_abort(l, true);
        return;
    }
    r->gen = s->p.gen;
}

/* FCALL eb1_observe for the keys of one SCAN page that belong to the
 * route (a prefix match is not a pattern match), OBSERVE_BATCH at a time. */
static void scan_observe(eb_ledger_t *l, size_t route, int db, const redisReply *keys) {
    struct lroute *lr = &l->routes[route];
    struct eb_redis_argv mine; /* the route's keys, borrowed from the reply */
    eb_redis_argv_init(&mine);
    for (size_t i = 0; i < keys->elements; i++) {
        const redisReply *e = keys->element[i];
        struct eb_match m;
        if (e->type != REDIS_REPLY_STRING)
            continue;
        l->link.sc.seen++;
        if (eb_router_match(l->cfg->router, e->str, e->len, EB_EVENT_EXPIRED_ID, &m) &&
            m.rule == route)
            eb_redis_argv_add_bytes(&mine, e->str, e->len);
    }
    for (int i = 0; eb_redis_argv_ok(&mine) && i < mine.argc; i += OBSERVE_BATCH) {
        int k = mine.argc - i < OBSERVE_BATCH ? mine.argc - i : OBSERVE_BATCH;
        struct eb_redis_argv a;
        eb_ledger_fcall_head(&a, "eb1_observe", (size_t)k + 1, lr->ls);
        for (int j = i; j < i + k; j++)
            eb_redis_argv_add_bytes(&a, mine.argv[j], mine.argvlen[j]);
        struct lreq *r = eb_ledger_send(l, on_observe, db, &a);
        if (r)
            r->ls = lr->ls;
    }
    eb_redis_argv_free(&mine);
}

static void on_scan(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    struct scan *s = &l->link.sc;
    if (!eb_ledger_pass_current(&s->p, req))
        return;
    if (!r) {
        eb_ledger_scan_abort(l, true);
        return;
    }
    if (eb_redis_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        if (eb_ledger_log_allow(l, LOGSLOT_SCAN))
            eb_log(l->log, EB_LOG_ERROR, "ledger: observed-mode SCAN refused by redis",
                   eb_lf_str("detail", eb_ledger_reply_error(r)));
        s->p.ri++;
        snprintf(s->cursor, sizeof(s->cursor), "0");
        scan_step(l);
        return;
    }
    scan_observe(l, s->p.ri, s->p.dbs[s->p.di], r->element[1]);
    snprintf(s->cursor, sizeof(s->cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
    if (strcmp(s->cursor, "0") == 0)
        s->p.ri++;
    scan_step(l);
}
