/* ledger_claims.c -- a timer's round trip through the bridge: claimed in
 * Redis (eb1_claim for a live expiry; the sweep's eb1_collect comes back
 * here too), handed to the pipeline with its deadline and payload, its
 * claim renewed while Kafka has not confirmed it (eb1_renew), and
 * acknowledged once Kafka did (eb1_ack), which removes the entry.
 *
 * Claims and acknowledgements are batched: what one turn of the event loop
 * collects (a burst of expiries, a burst of delivery reports) becomes one
 * FCALL per (ledger, database) -- Redis runs one Lua call instead of one
 * per timer -- sent to the master serving that ledger (ledger_links.c).
 *
 * Which ledger: a route's one ledger; with ledger.buckets > 1 the bucket
 * the key's hash tag names (`{<route>:<b>}`); observed routes on Cluster,
 * the ledger of the key's slot. On Cluster every key of one FCALL must be
 * in one slot: a key of an armed route whose tag does not place it in its
 * ledger's slot cannot be claimed atomically (the application's eb1_arm
 * could not have recorded it either): it is counted, logged once per
 * route, and forwarded without a deadline.
 *
 * @locality loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "core/clock.h"
#include "core/keyslot.h"
#include "ledger/ledger_internal.h"

/* Timers per eb1_ack / eb1_claim: one burst of delivery reports or of
 * expiries rarely holds more, and one call stays well under a millisecond
 * of Redis time. */
#define ACK_BATCH   256
#define CLAIM_BATCH 256

/* Members per eb1_renew call: one call stays well under a millisecond of
 * Redis time. */
#define RENEW_BATCH 500

/* ------------------------------------------------------------------------
 * Producing a claimed timer
 * --------------------------------------------------------------------- */

/* The bucket of a key whose tag does not name one, or (Cluster) a key not
 * in its ledger's slot: said once per route, counted every time. */
static void untagged(eb_ledger_t *l, const struct lroute *lr, const char *key, size_t len) {
    struct lstats *ls = lr->ls;
    eb_metrics_inc(ls->untagged);
    if (ls->warned_untagged)
        return;
    ls->warned_untagged = true;
    char want[320];
    if (lr->kind == LK_BUCKET)
        snprintf(want, sizeof(want), "{%s:<bucket 0..%u>}", ls->route, lr->nparts - 2);
    else
        snprintf(want, sizeof(want), "the hash tag of its ledger %s", ls->lkey);
    eb_log(l->log, EB_LOG_WARN,
           "ledger: a timer key of a ledgered route has no hash tag naming its ledger; it is "
           "forwarded without its deadline, and its ledger entry (if any) is left to the sweep "
           "(said once per route; eb_ledger_untagged_total counts them)",
           eb_lf_str("route", ls->route), eb_lf_bytes("key", key, len),
           eb_lf_str("expected_tag", want),
           eb_lf_str("hint", "arm timers with keys tagged like their ledger -- the key, its "
                             "payload key and the ledger given to eb1_arm share one tag "
                             "(docs/ledger.md, \"Redis Cluster\")"));
}

bool eb_ledger_claims_part(eb_ledger_t *l, size_t route, const char *key, size_t len,
                           struct lpart *part) {
    const struct lroute *lr = &l->routes[route];
    *part = (struct lpart){lr->kind, 0};
    if (lr->kind == LK_SLOT) {
        part->n = (uint16_t)eb_keyslot_of(key, len);
        return true;
    }
    if (lr->kind == LK_BUCKET) {
        int b = eb_ledger_bucket_of(key, len, lr->cfg->name, lr->nparts - 1);
        if (b >= 0) {
            part->n = (uint16_t)b;
            return true;
        }
        /* `{<route>}`: armed into the route's own ledger (before buckets) */
        size_t tlen;
        const char *tag = eb_keyslot_hashed_part(key, len, &tlen);
        if ((tag != key || tlen != len) && tlen == strlen(lr->cfg->name) &&
            memcmp(tag, lr->cfg->name, tlen) == 0) {
            *part = (struct lpart){LK_ROUTE, 0};
            return true;
        }
    } else if (!l->cluster || !lr->ledgered || eb_keyslot_of(key, len) == lr->ls->lkey_slot) {
        return true;
    }
    untagged(l, lr, key, len);
    return false;
}

void eb_ledger_claims_payload_key(eb_ledger_t *l, eb_ledger_ticket_t *t, size_t route) {
    if (route >= l->nroutes || !l->routes[route].cfg->payload || !l->payload_router)
        return;
    struct eb_match m;
    t->has_payload = true;
    if (!eb_router_match(l->payload_router, t->key, t->key_len, EB_EVENT_EXPIRED_ID, &m) ||
        m.rule != route)
        return;
    eb_buf_reset(&l->pbuf);
    eb_router_render_key(l->payload_router, &m, t->key, t->key_len, t->db, "expired", &l->pbuf);
    if (!eb_buf_ok(&l->pbuf))
        return;
    const struct lroute *lr = &l->routes[route];
    unsigned pslot = eb_keyslot_of(l->pbuf.data, l->pbuf.len);
    if (l->cluster && !lr->ledgered && lr->kind == LK_SLOT) {
        /* A payload without a ledger: its claim reads it in its own slot. */
        t->part.n = (uint16_t)pslot;
    } else if (l->cluster && pslot != eb_ledger_part_slot(t->ls, t->part)) {
        /* One FCALL reads the entry and the payload: not across slots. */
        if (!t->ls->warned_payload_slot) {
            t->ls->warned_payload_slot = true;
            eb_log(l->log, EB_LOG_WARN,
                   "ledger: a payload key is not in the slot of its timer's ledger, so it cannot "
                   "be read with the timer; events of this route carry payload: null (said once "
                   "per route; eb_ledger_payload_missing_total counts them)",
                   eb_lf_str("route", t->ls->route),
                   eb_lf_bytes("payload_key", l->pbuf.data, l->pbuf.len),
                   eb_lf_str("hint", "give the payload key the timer key's hash tag, e.g. "
                                     "payload: \"{key}:payload\" with a tagged timer key"));
        }
        return;
    }
    t->pkey = malloc(l->pbuf.len + 1);
    if (!t->pkey)
        return;
    memcpy(t->pkey, l->pbuf.data, l->pbuf.len);
    t->pkey_len = l->pbuf.len;
}

/* The payload part of a claim reply (kind, values...) as JSON into l->jbuf;
 * false when there was none to embed (null). */
static bool payload_json(eb_ledger_t *l, const redisReply *const *vals, size_t nvals) {
    struct eb_ledger_bytes b[64], *vb = b;
    const char *kind = "missing";
    size_t n = 0;
    if (nvals >= 1 && vals[0]->type == REDIS_REPLY_STRING) {
        kind = vals[0]->str;
        n = nvals - 1;
    }
    if (n > sizeof(b) / sizeof(b[0]) && !(vb = calloc(n, sizeof(*vb))))
        n = 0, kind = "missing", vb = b;
    for (size_t i = 0; i < n; i++) {
        vb[i].p = vals[i + 1]->str ? vals[i + 1]->str : "";
        vb[i].len = vals[i + 1]->str ? vals[i + 1]->len : 0;
    }
    eb_buf_reset(&l->jbuf);
    bool embedded = eb_ledger_payload_json(&l->jbuf, kind, n ? vb : NULL, n);
    if (vb != b)
        free(vb);
    return embedded;
}

/* Hand a claimed timer to the pipeline. vals: the payload part of the
 * reply. The ticket may be gone when this returns. */
static void emit(eb_ledger_t *l, eb_ledger_ticket_t *t, const char *node,
                 const redisReply *const *vals, size_t nvals) {
    struct eb_ledger_timer tm = {
        .node = node,
        .db = t->db,
        .key = t->key,
        .key_len = t->key_len,
        .delivery = t->recovered ? EB_DELIVERY_RECOVERED : EB_DELIVERY_LIVE,
        .deadline_ms = t->deadline_ms,
        .has_payload = t->has_payload,
        .recv_mono_ns = t->recv_mono_ns,
        .recv_real_us = t->recv_real_us,
        .ticket = t,
    };
    if (t->has_payload) {
        if (!payload_json(l, vals, nvals))
            eb_metrics_inc(t->ls->payload_missing);
        else if (eb_buf_ok(&l->jbuf)) {
            tm.payload_json = l->jbuf.data;
            tm.payload_len = l->jbuf.len;
        }
    }
    t->state = T_PRODUCING;
    t->claimed_ns = eb_mono_ns();
    if (!t->recv_mono_ns) {
        t->recv_mono_ns = tm.recv_mono_ns = t->claimed_ns;
        t->recv_real_us = tm.recv_real_us = eb_real_us();
    }
    l->emit(&tm, l->emit_opaque);
}

/* ------------------------------------------------------------------------
 * Batches: one FCALL per (ledger, database)
 * --------------------------------------------------------------------- */

static int cmp_ticket(const void *a, const void *b) {
    const eb_ledger_ticket_t *x = *(eb_ledger_ticket_t *const *)a;
    const eb_ledger_ticket_t *y = *(eb_ledger_ticket_t *const *)b;
    if (x->ls != y->ls)
        return (uintptr_t)x->ls < (uintptr_t)y->ls ? -1 : 1;
    if (x->part.kind != y->part.kind)
        return x->part.kind < y->part.kind ? -1 : 1;
    if (x->part.n != y->part.n)
        return x->part.n < y->part.n ? -1 : 1;
    return (x->db > y->db) - (x->db < y->db);
}

/* One call of send per run of ts[0..n) that shares a ledger and a database
 * (one FCALL names one ledger key, and runs in one database), at most max
 * tickets each. Sorts ts. */
static void send_batches(eb_ledger_t *l, eb_ledger_ticket_t **ts, size_t n, size_t max,
                         void (*send)(eb_ledger_t *l, eb_ledger_ticket_t **ts, size_t n)) {
    qsort(ts, n, sizeof(*ts), cmp_ticket);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && j - i < max && cmp_ticket(&ts[i], &ts[j]) == 0)
            j++;
        send(l, ts + i, j - i);
        i = j;
    }
}

/* The head eb1_ack and eb1_claim share: the ledger key and the payload
 * keys of ts[0..n) that have one (key slots 2, 3, ... in ts order), then
 * arg. The caller appends one group per timer. */
static void batch_head(const eb_ledger_t *l, struct eb_redis_argv *a, const char *fn,
                       eb_ledger_ticket_t *const *ts, size_t n, int64_t arg) {
    size_t npk = 0;
    for (size_t i = 0; i < n; i++)
        npk += ts[i]->pkey != NULL;
    eb_ledger_fcall_head(l, a, fn, 1 + npk, ts[0]->ls, ts[0]->part);
    for (size_t i = 0; i < n; i++) {
        if (ts[i]->pkey)
            eb_redis_argv_add_bytes(a, ts[i]->pkey, ts[i]->pkey_len);
    }
    eb_redis_argv_add_i64(a, arg);
}

/* Send a batch built on batch_head() (freed here) for ts[0..n), which then
 * belong to the request, in state st. False when nothing was sent: the
 * caller still holds the tickets. */
static bool batch_send(eb_ledger_t *l, eb_ledger_reply_fn *done, struct eb_redis_argv *a,
                       eb_ledger_ticket_t **ts, size_t n, enum tstate st) {
    eb_ledger_ticket_t **owned = malloc(n * sizeof(*owned));
    if (!owned) {
        eb_redis_argv_free(a);
        return false;
    }
    struct lreq *r =
        eb_ledger_send_slot(l, eb_ledger_part_slot(ts[0]->ls, ts[0]->part), done, ts[0]->db, a);
    if (!r) {
        free(owned);
        return false;
    }
    memcpy(owned, ts, n * sizeof(*owned));
    r->ts = owned;
    r->nts = n;
    for (size_t i = 0; i < n; i++)
        ts[i]->state = st;
    return true;
}

/* Add t to q in state st; the first push schedules q's timer for the next
 * turn of the loop. */
static void tqueue_push(struct tqueue *q, eb_ledger_ticket_t *t, enum tstate st) {
    static const struct timeval zero = {0, 0};
    t->state = st;
    t->wnext = q->head;
    q->head = t;
    if (q->n++ == 0)
        evtimer_add(q->ev, &zero);
}

/* Empty q. Some master connected: its tickets as an array (*n of them;
 * free it), links cleared. None, or out of memory: NULL, and each ticket
 * went to fallback instead. */
static eb_ledger_ticket_t **tqueue_take(eb_ledger_t *l, struct tqueue *q, size_t *n,
                                        void (*fallback)(eb_ledger_t *l, eb_ledger_ticket_t *t)) {
    eb_ledger_ticket_t *t = q->head;
    *n = q->n;
    q->head = NULL;
    q->n = 0;
    eb_ledger_ticket_t **ts =
        eb_ledger_links_any_ready(l) ? malloc((*n ? *n : 1) * sizeof(*ts)) : NULL;
    for (size_t m = 0; t; m++) {
        eb_ledger_ticket_t *next = t->wnext;
        t->wnext = NULL;
        if (ts)
            ts[m] = t;
        else
            fallback(l, t);
        t = next;
    }
    return ts;
}

/* ------------------------------------------------------------------------
 * Acknowledgements
 * --------------------------------------------------------------------- */

/* Its master is away: keep it until a master is back or the topology
 * changed (the ticket stays in the table, so the sweep does not claim it
 * again meanwhile). */
static void ack_park(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    t->state = T_ACK_WAIT;
    t->wnext = l->ack_wait;
    l->ack_wait = t;
}

/* Acknowledgements wait at most one turn of the loop, so that one burst of
 * delivery reports becomes one FCALL per (ledger, db). */
static void ack_queue(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    tqueue_push(&l->acks, t, T_ACK_QUEUED);
}

static void on_del_payload(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    if (!r)
        ack_park(l, req->t); /* the connection is going away */
    else
        eb_ledger_tickets_free(l, req->t);
}

/* A timer without a ledger entry: only its payload to delete. */
static void ack_del_payload(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    struct eb_redis_argv a;
    eb_redis_argv_init(&a);
    eb_redis_argv_add_str(&a, "DEL");
    eb_redis_argv_add_bytes(&a, t->pkey, t->pkey_len);
    struct lreq *r = eb_ledger_send_slot(l, eb_keyslot_of(t->pkey, t->pkey_len), on_del_payload,
                                         t->db, &a);
    if (!r) {
        ack_park(l, t);
        return;
    }
    r->t = t;
    t->state = T_ACKING;
}

static void ack_result(eb_ledger_t *l, eb_ledger_ticket_t *t, const redisReply *r,
                       const char *detail) {
    long long v;
    enum ack_result res = ACK_ERROR;
    if (r && eb_redis_reply_int(r, &v))
        res = v == 1 ? ACK_REMOVED : v == 2 ? ACK_REARMED : ACK_GONE;
    eb_metrics_inc(t->ls->acks[res]);
    if (res == ACK_REMOVED)
        l->total_acked++;
    if (res == ACK_ERROR && eb_ledger_log_allow(l, LOGSLOT_ACK))
        eb_log(l->log, EB_LOG_ERROR,
               "ledger: acknowledgement refused; the timer stays in the ledger and will be "
               "delivered again",
               eb_lf_str("route", t->ls->route), eb_lf_bytes("key", t->key, t->key_len),
               eb_lf_str("detail", detail));
    eb_ledger_tickets_free(l, t);
}

static void on_acks(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    bool ok = r && !eb_redis_reply_is_error(r) && r->type == REDIS_REPLY_ARRAY &&
              r->elements == req->nts;
    for (size_t i = 0; i < req->nts; i++) {
        if (!r)
            ack_park(l, req->ts[i]);
        else
            ack_result(l, req->ts[i], ok ? r->element[i] : NULL, eb_ledger_reply_error(r));
    }
}

/* One FCALL eb1_ack for ts[0..n) (one ledger, one db): remember_ms, then
 * (member, deadline, payload slot or 0) per timer. */
static void ack_batch(eb_ledger_t *l, eb_ledger_ticket_t **ts, size_t n) {
    struct eb_redis_argv a;
    batch_head(l, &a, "eb1_ack", ts, n, l->remember_ms);
    for (size_t i = 0, slot = 2; i < n; i++) {
        eb_redis_argv_add_bytes(&a, ts[i]->key, ts[i]->key_len);
        eb_redis_argv_add_i64(&a, ts[i]->deadline_ms);
        eb_redis_argv_add_size(&a, ts[i]->pkey ? slot++ : 0);
    }
    if (!batch_send(l, on_acks, &a, ts, n, T_ACKING)) {
        for (size_t i = 0; i < n; i++)
            ack_park(l, ts[i]);
    }
}

/* Send what ack_queue() collected. @locality loop thread (libevent timer). */
void eb_ledger_claims_on_ack_timer(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    size_t n, m = 0;
    /* Not connected: parked, sent when the ledger is back. */
    eb_ledger_ticket_t **all = tqueue_take(l, &l->acks, &n, ack_park);
    if (!all)
        return;
    for (size_t i = 0; i < n; i++) {
        if (all[i]->deadline_ms < 0)
            ack_del_payload(l, all[i]);
        else
            all[m++] = all[i];
    }
    send_batches(l, all, m, ACK_BATCH, ack_batch);
    free(all);
}

void eb_ledger_claims_flush_acks(eb_ledger_t *l) {
    eb_ledger_ticket_t *t = l->ack_wait;
    l->ack_wait = NULL;
    while (t) {
        eb_ledger_ticket_t *next = t->wnext;
        t->wnext = NULL;
        ack_queue(l, t);
        t = next;
    }
}

void eb_ledger_done(eb_ledger_t *l, eb_ledger_ticket_t *t, bool delivered) {
    if (!t)
        return;
    if (!delivered) {
        /* Its claim runs out after claim_ttl; then the sweep retries. */
        eb_ledger_tickets_free(l, t);
        return;
    }
    if (t->recovered) {
        eb_metrics_inc(t->ls->recovered);
        l->total_recovered++;
    }
    if (t->deadline_ms < 0 && !t->pkey) {
        eb_ledger_tickets_free(l, t);
        return;
    }
    ack_queue(l, t);
}

/* ------------------------------------------------------------------------
 * Claims
 * --------------------------------------------------------------------- */

/* Payload part of a claim reply: elements from index 2 on. */
static void claim_payload(const redisReply *r, const redisReply *const **vals, size_t *n) {
    *vals = r->elements > 2 ? (const redisReply *const *)r->element + 2 : NULL;
    *n = r->elements > 2 ? r->elements - 2 : 0;
}

int eb_ledger_claims_status(const redisReply *r, int64_t *deadline) {
    long long v;
    if (eb_redis_reply_is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        !eb_redis_reply_int(r->element[0], &v) || v < 0 || v >= ST_ERROR)
        return ST_ERROR;
    long long d = -1;
    if (r->elements >= 2)
        eb_redis_reply_int(r->element[1], &d);
    *deadline = d;
    return (int)v;
}

void eb_ledger_claims_on_claim(eb_ledger_t *l, const struct lreq *req, eb_ledger_ticket_t *t,
                               const redisReply *r, bool collect) {
    if (!r) {
        eb_ledger_tickets_free(l, t); /* the entry stays: a later sweep takes it */
        return;
    }
    int64_t dl = -1;
    int st = eb_ledger_claims_status(r, &dl);
    eb_metrics_inc(t->ls->claims[collect ? PATH_SWEEP : PATH_LIVE][st]);
    if (st == ST_ERROR) {
        if (eb_ledger_log_allow(l, collect ? LOGSLOT_COLLECT : LOGSLOT_CLAIM))
            eb_log(l->log, EB_LOG_ERROR, "ledger: claim refused by redis",
                   eb_lf_str("route", t->ls->route), eb_lf_bytes("key", t->key, t->key_len),
                   eb_lf_str("detail", eb_ledger_reply_error(r)));
        eb_ledger_library_missing(l, req, r);
        eb_ledger_tickets_free(l, t);
        return;
    }
    if (st == ST_OWED || (st == ST_UNKNOWN && !collect)) {
        const redisReply *const *vals;
        size_t n;
        t->deadline_ms = st == ST_OWED ? dl : -1;
        claim_payload(r, &vals, &n);
        emit(l, t, t->node ? t->node : req && req->link ? req->link->node : NULL, vals, n);
        return;
    }
    eb_ledger_tickets_free(l, t);
}

static void on_claims(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    bool ok = r && !eb_redis_reply_is_error(r) && r->type == REDIS_REPLY_ARRAY &&
              r->elements == req->nts;
    for (size_t i = 0; i < req->nts; i++)
        eb_ledger_claims_on_claim(l, req, req->ts[i], !r ? NULL : ok ? r->element[i] : r, false);
}

/* Not connected when the claims were to go: the entries stay, left to the
 * sweep. */
static void claim_skip(eb_ledger_t *l, eb_ledger_ticket_t *t) {
    eb_metrics_inc(l->m_skipped);
    eb_ledger_tickets_free(l, t);
}

/* One FCALL eb1_claim for ts[0..n) (one ledger, one db): claim_ttl_ms,
 * then (member, payload slot or 0) per timer. */
static void claim_batch(eb_ledger_t *l, eb_ledger_ticket_t **ts, size_t n) {
    struct eb_redis_argv a;
    batch_head(l, &a, "eb1_claim", ts, n, l->claim_ttl_ms);
    for (size_t i = 0, slot = 2; i < n; i++) {
        eb_redis_argv_add_bytes(&a, ts[i]->key, ts[i]->key_len);
        eb_redis_argv_add_size(&a, ts[i]->pkey ? slot++ : 0);
    }
    if (!batch_send(l, on_claims, &a, ts, n, T_CLAIMING)) {
        for (size_t i = 0; i < n; i++)
            claim_skip(l, ts[i]); /* the entries stay: a later sweep takes them */
    }
}

/* Send what eb_ledger_on_expired() collected during one turn of the loop:
 * Redis expires keys in bursts, and one FCALL per burst costs it a
 * fraction of one per timer. @locality loop thread (libevent timer). */
void eb_ledger_claims_on_claim_timer(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    size_t n;
    eb_ledger_ticket_t **ts = tqueue_take(l, &l->claims, &n, claim_skip);
    if (!ts)
        return;
    send_batches(l, ts, n, CLAIM_BATCH, claim_batch);
    free(ts);
}

/* A key that cannot be placed in a ledger (untagged()): forwarded as a
 * notification without a ledger entry would be, without deadline or
 * payload; nothing to acknowledge. */
static void emit_unplaced(eb_ledger_t *l, struct lroute *lr, const struct eb_notification *n) {
    if (!eb_ledger_tickets_room(l)) {
        eb_ledger_tickets_defer(l, lr->ls, "live");
        return;
    }
    eb_ledger_ticket_t *t = eb_ledger_tickets_new(l, lr->ls, n->db, n->key, n->key_len);
    if (!t)
        return;
    t->recv_mono_ns = n->recv_mono_ns;
    t->recv_real_us = n->recv_real_us;
    t->has_payload = lr->cfg->payload != NULL;
    eb_metrics_inc(lr->ls->claims[PATH_LIVE][ST_UNKNOWN]);
    emit(l, t, n->node, NULL, 0);
}

void eb_ledger_on_expired(eb_ledger_t *l, size_t route, const struct eb_notification *n) {
    if (l->stopped || route >= l->nroutes || !l->routes[route].active)
        return;
    struct lroute *lr = &l->routes[route];
    struct lpart part;
    if (!eb_ledger_claims_part(l, route, n->key, n->key_len, &part)) {
        emit_unplaced(l, lr, n);
        return;
    }
    struct ledger_link *k = eb_ledger_link_for_slot(l, eb_ledger_part_slot(lr->ls, part));
    if (!k || !k->ready) {
        eb_metrics_inc(l->m_skipped);
        return;
    }
    if (eb_ledger_tickets_find(l, lr->ls, n->db, n->key, n->key_len))
        return; /* this bridge holds it already (its sweep is collecting it) */
    if (lr->ledgered && !eb_ledger_tickets_room(l)) {
        /* The bound: the entry stays in Redis, unclaimed, for the sweep. A
         * route without a ledger (a payload only) has no entry to fall back
         * on, so it is not held back here: Kafka's queue bound drops what
         * it cannot hold, counted and logged, as for any route. */
        eb_ledger_tickets_defer(l, lr->ls, "live");
        return;
    }
    eb_ledger_ticket_t *t = eb_ledger_tickets_new(l, lr->ls, n->db, n->key, n->key_len);
    if (!t)
        return; /* out of memory: the sweep will deliver it */
    t->recv_mono_ns = n->recv_mono_ns;
    t->recv_real_us = n->recv_real_us;
    t->part = part;
    t->node = n->node;
    eb_ledger_claims_payload_key(l, t, route);
    tqueue_push(&l->claims, t, T_CLAIM_QUEUED);
}

/* ------------------------------------------------------------------------
 * Claim renewals
 * --------------------------------------------------------------------- */

static void on_renew(eb_ledger_t *l, struct lreq *req, const redisReply *r) {
    (void)l;
    (void)req;
    (void)r;
}

/* One FCALL eb1_renew for ts[0..n) (one ledger, one db): claim_ttl_ms,
 * then the members. */
static void renew_batch(eb_ledger_t *l, eb_ledger_ticket_t **ts, size_t n) {
    struct eb_redis_argv a;
    eb_ledger_fcall_head(l, &a, "eb1_renew", 1, ts[0]->ls, ts[0]->part);
    eb_redis_argv_add_i64(&a, l->claim_ttl_ms);
    for (size_t i = 0; i < n; i++)
        eb_redis_argv_add_bytes(&a, ts[i]->key, ts[i]->key_len);
    (void)eb_ledger_send_slot(l, eb_ledger_part_slot(ts[0]->ls, ts[0]->part), on_renew,
                              ts[0]->db, &a);
}

/* Every claim_ttl/3: extend the claims of timers Kafka has not confirmed
 * yet, so an outage longer than a claim does not hand them to another
 * replica. @locality loop thread (libevent timer). */
void eb_ledger_claims_on_renew_timer(evutil_socket_t fd, short what, void *arg) {
    eb_ledger_t *l = arg;
    if (!eb_ledger_links_any_ready(l) || !l->ntickets)
        return;
    int64_t now = eb_mono_ns(), age = (int64_t)l->claim_ttl_ms * 1000000 / 3;
    eb_ledger_ticket_t **due = malloc(l->ntickets * sizeof(*due));
    size_t n = 0;
    if (!due)
        return;
    for (size_t b = 0; b < l->nbuckets; b++) {
        for (eb_ledger_ticket_t *t = l->buckets[b]; t; t = t->hnext) {
            if (t->state == T_PRODUCING && t->deadline_ms >= 0 && now - t->claimed_ns >= age &&
                n < l->ntickets) {
                t->claimed_ns = now;
                due[n++] = t;
            }
        }
    }
    send_batches(l, due, n, RENEW_BATCH, renew_batch);
    free(due);
}
